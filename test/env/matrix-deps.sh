#!/usr/bin/env bash
# matrix-deps.sh builds other containerd releases (containerd, its
# containerd-shim-runc-v2 and ctr) for the compatibility matrix, cached in
# $HARDEN_CACHE/matrix/<version>/bin. `go install pkg@version` refuses
# these modules (their go.mod has exclude/replace directives), so each is
# built from a copy of its module source, outside the repo.
#
#   test/env/matrix-deps.sh v1.7.35 v2.0.14 ...     (default: every version of the matrix)
set -euo pipefail
HARDEN_CACHE=${HARDEN_CACHE:-/var/cache/harden}
versions=("$@")
((${#versions[@]})) || versions=(v1.7.35 v2.0.14 v2.1.9 v2.2.9 v2.3.7)
log() { printf 'matrix-deps: %s\n' "$*" >&2; }
mkdir -p "$HARDEN_CACHE/matrix/logs" "$HARDEN_CACHE/src"
for v in "${versions[@]}"; do
	out=$HARDEN_CACHE/matrix/$v/bin
	if [[ -x $out/containerd && -x $out/ctr && -x $out/containerd-shim-runc-v2 ]]; then
		continue
	fi
	mod=github.com/containerd/containerd/v2
	[[ $v == v1.* ]] && mod=github.com/containerd/containerd
	log "building containerd $v (a few minutes)"
	dir=$(go mod download -json "$mod@$v" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
	[[ -d $dir ]] || { log "go mod download $mod@$v failed"; exit 1; }
	src=$HARDEN_CACHE/src/containerd-$v
	rm -rf "$src"
	cp -r "$dir" "$src"
	chmod -R u+w "$src"
	if ! (cd "$src" && GOFLAGS="-trimpath -mod=mod" go build -o "$out/" ./cmd/containerd ./cmd/containerd-shim-runc-v2 ./cmd/ctr) >"$HARDEN_CACHE/matrix/logs/$v.log" 2>&1; then
		tail -n 30 "$HARDEN_CACHE/matrix/logs/$v.log" >&2
		log "build of containerd $v failed (log: $HARDEN_CACHE/matrix/logs/$v.log)"
		exit 1
	fi
	rm -rf "$src"
	log "containerd $v: $("$out/containerd" --version)"
done
