#!/usr/bin/env bash
# build.sh builds harden's local test images (no registry is reachable from the test machines)
# into ${HARDEN_CACHE:-/var/cache/harden}/images:
#
#   busybox-rootfs/  busybox-static with relative applet links, /etc/passwd (root, user 1000,
#                    nobody 65534), /tmp; for `ctr run --rootfs`, runc and crun bundles
#   busybox.tar      that rootfs as an image archive named $BUSYBOX_NAME, Cmd ["sh"]
#   pause.tar        a pod sandbox image named $PAUSE_NAME (containerd 2.4.2's default
#                    sandbox image), holding only a static /pause that blocks until SIGTERM
#   *.name           the image names, for scripts
#
# Each archive is both an OCI image layout (ctr images import, Docker >= 25, skopeo oci-archive:)
# and a docker-save archive (Docker 20.10 docker load); see mkimage/main.go. The build is
# deterministic and cached: it reruns only when one of its inputs (this script, the Go sources,
# the busybox binary, the Go version) changes. Called by test/env/deps.sh.
set -euo pipefail

HARDEN_CACHE=${HARDEN_CACHE:-/var/cache/harden}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
out=$HARDEN_CACHE/images

BUSYBOX_NAME=docker.io/library/busybox:harden-test
# containerd v2.4.2 internal/cri/config/config.go: DefaultSandboxImage.
PAUSE_NAME=registry.k8s.io/pause:3.10.2
BUSYBOX_BIN=${BUSYBOX_BIN:-/bin/busybox} # from Debian's busybox-static
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-1704067200} # 2024-01-01T00:00:00Z, fixed

log() { printf 'images: %s\n' "$*" >&2; }
die() {
	printf 'images: ERROR: %s\n' "$*" >&2
	exit 1
}

[[ -x $BUSYBOX_BIN ]] || die "$BUSYBOX_BIN not found (apt-get install busybox-static)"
if LC_ALL=C readelf -l "$BUSYBOX_BIN" 2>/dev/null | grep -q 'Requesting program interpreter'; then
	die "$BUSYBOX_BIN is dynamically linked; need busybox-static"
fi

inputs() {
	{
		sha256sum "$here/build.sh" "$here/mkimage/main.go" "$here/pause/main.go" "$BUSYBOX_BIN" | awk '{print $1}'
		go version
		echo "$BUSYBOX_NAME $PAUSE_NAME $SOURCE_DATE_EPOCH"
	} | sha256sum | awk '{print $1}'
}

want=$(inputs)
if [[ -f $out/.inputs && $(cat "$out/.inputs") == "$want" && -f $out/busybox.tar && -f $out/pause.tar &&
	-x $out/busybox-rootfs/bin/sh ]]; then
	log "up to date in $out"
	exit 0
fi

mkdir -p "$out"
work=$(mktemp -d "$out/.build.XXXXXX")
trap 'rm -rf "$work"' EXIT

log "building tools"
(
	cd "$repo"
	export CGO_ENABLED=0 GOFLAGS="-trimpath -buildvcs=false"
	go build -o "$work/mkimage" ./test/images/mkimage
	go build -ldflags "-s -w -buildid=" -o "$work/pause" ./test/images/pause
)

# busybox rootfs. Applet links are relative (../bin/busybox): `busybox --install -s` makes
# absolute ones, which resolve against the host's root when followed from outside the container.
log "building busybox rootfs"
rootfs=$work/busybox-rootfs
mkdir -p "$rootfs"/{bin,sbin,usr/bin,usr/sbin,etc,root,home/user,proc,sys,dev,run,var/tmp,tmp}
chmod 1777 "$rootfs/tmp" "$rootfs/var/tmp"
chmod 0700 "$rootfs/root"
install -m 0755 "$BUSYBOX_BIN" "$rootfs/bin/busybox"
for applet in $("$BUSYBOX_BIN" --list-full); do
	[[ $applet == bin/busybox ]] && continue
	dir=$(dirname "$applet")
	target=busybox
	[[ $dir == bin ]] || target=$(sed -e 's#[^/]*#..#g' <<<"$dir")/bin/busybox
	[[ -e $rootfs/$applet || -L $rootfs/$applet ]] || ln -s "$target" "$rootfs/$applet"
done
cat >"$rootfs/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
user:x:1000:1000:user:/home/user:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
EOF
cat >"$rootfs/etc/group" <<'EOF'
root:x:0:
user:x:1000:
nogroup:x:65534:
EOF
printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n' >"$rootfs/etc/hosts"
: >"$rootfs/etc/resolv.conf"
echo harden-test >"$rootfs/etc/hostname"
chown 1000:1000 "$rootfs/home/user"
[[ -x $rootfs/bin/sh && -L $rootfs/bin/sh ]] || die "busybox rootfs has no /bin/sh"

log "packing $BUSYBOX_NAME"
"$work/mkimage" -rootfs "$rootfs" -name "$BUSYBOX_NAME" -o "$work/busybox.tar" -cmd '["sh"]'

log "packing $PAUSE_NAME"
mkdir -p "$work/pause-rootfs"
install -m 0755 "$work/pause" "$work/pause-rootfs/pause"
"$work/mkimage" -rootfs "$work/pause-rootfs" -name "$PAUSE_NAME" -o "$work/pause.tar" \
	-entrypoint '["/pause"]' -user 65535:65535

echo "$BUSYBOX_NAME" >"$work/busybox.name"
echo "$PAUSE_NAME" >"$work/pause.name"

# Swap the results into place. The old rootfs is moved aside first so that a reader never sees
# a half-written tree.
rm -rf "$out/busybox-rootfs.old"
[[ -d $out/busybox-rootfs ]] && mv "$out/busybox-rootfs" "$out/busybox-rootfs.old"
mv "$rootfs" "$out/busybox-rootfs"
rm -rf "$out/busybox-rootfs.old"
for f in busybox.tar pause.tar busybox.name pause.name; do mv -f "$work/$f" "$out/$f"; done
echo "$want" >"$out/.inputs"
log "built in $out: $(cd "$out" && sha256sum busybox.tar pause.tar | awk '{printf "%s %s  ", $2, substr($1, 1, 12)}')"
