#!/usr/bin/env bash
# deps.sh installs everything harden's integration and end-to-end tests need, on Debian 12, as root.
#
#   test/env/deps.sh            # what `make deps` runs; idempotent, seconds when nothing changed
#
# It installs Debian packages (docker.io 20.10, crun, runsc, podman, ...), builds the pinned
# upstream tools (containerd 2.4, runc 1.4 with seccomp, crictl/critest, dockerd 29) from the Go
# module proxy into ${HARDEN_CACHE:-/var/cache/harden}/bin, builds the local test images
# (test/images/build.sh), makes crun usable on this cgroup v1 hybrid host, and writes
# $HARDEN_CACHE/env.sh, which tests source to find every tool. docs/environment.md explains it all.
set -euo pipefail

HARDEN_CACHE=${HARDEN_CACHE:-/var/cache/harden}
export HARDEN_CACHE
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)

# Pinned upstream versions. Bumping one rebuilds that tool (stamps are keyed by version).
CONTAINERD_VERSION=v2.4.2
RUNC_VERSION=v1.4.0
CRITOOLS_VERSION=v1.37.0
MOBY_VERSION=v2.0.0-beta.24 # github.com/moby/moby/v2: the Docker 29 line

# Debian packages. docker.io pulls Debian's containerd 1.6 and runc 1.1.5 (Docker 20.10's engine).
APT_REQUIRED=(libseccomp-dev pkg-config bats crun runsc docker.io podman busybox-static jq
	iptables util-linux containernetworking-plugins docker-registry
	iproute2 procps bsdextrautils) # ip, ps and column for the helper scripts
APT_OPTIONAL=(skopeo)
# apparmor: apparmor_parser validates the generated harden-default profile text (the kernel here has no AppArmor).
APT_REQUIRED+=(apparmor shellcheck)

# Daemons whose packages might start them in postinst; we stop any that appear during install.
DAEMONS=(/usr/sbin/dockerd /usr/bin/containerd /usr/bin/docker-registry)

BIN=$HARDEN_CACHE/bin
STAMPS=$HARDEN_CACHE/stamps
LOGS=$HARDEN_CACHE/logs
SRC=$HARDEN_CACHE/src

log() { printf 'deps: %s\n' "$*" >&2; }
die() {
	printf 'deps: ERROR: %s\n' "$*" >&2
	exit 1
}

set -E
trap 'die "command failed (line $LINENO): $BASH_COMMAND"' ERR
own_policy= # a policy-rc.d this run created
trap 'if [[ -n $own_policy ]]; then rm -f "$own_policy"; fi' EXIT

[[ $(id -u) == 0 ]] || die "must run as root (installs Debian packages, mounts a cgroup hierarchy)"
command -v go >/dev/null || die "go not found in PATH (expected /usr/local/go/bin)"
mkdir -p "$BIN" "$STAMPS" "$LOGS" "$SRC"
# One deps run at a time (parallel make, two terminals): the second waits for the first.
exec 9>"$HARDEN_CACHE/.lock"
flock 9

# --- Debian packages ------------------------------------------------------------------------

pkg_installed() { [[ $(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null) == installed ]]; }

pkg_candidate() { apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ {print $2}'; }

# pids_of EXE... prints the pids of running processes whose executable is one of EXE.
pids_of() {
	local p exe want
	for p in /proc/[0-9]*; do
		exe=$(readlink "$p/exe" 2>/dev/null) || continue
		for want in "$@"; do
			[[ $exe == "$want" ]] && echo "${p#/proc/}"
		done
	done
	return 0
}

install_packages() {
	local missing=() p cand
	for p in "${APT_REQUIRED[@]}"; do
		pkg_installed "$p" || missing+=("$p")
	done
	# An optional package the current lists do not offer is not worth an apt-get update on
	# every run; with no lists at all (fresh machine) it is.
	for p in "${APT_OPTIONAL[@]}"; do
		pkg_installed "$p" && continue
		cand=$(pkg_candidate "$p")
		if [[ -n $cand && $cand != "(none)" ]] || ! compgen -G '/var/lib/apt/lists/*_Packages*' >/dev/null; then
			missing+=("$p")
		fi
	done
	((${#missing[@]})) || return 0

	log "apt: missing ${missing[*]}; updating package lists"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq >"$LOGS/apt-update.log" 2>&1 || {
		tail -n 20 "$LOGS/apt-update.log" >&2
		die "apt-get update failed (log: $LOGS/apt-update.log)"
	}
	local want=()
	for p in "${missing[@]}"; do
		cand=$(pkg_candidate "$p")
		if [[ -z $cand || $cand == "(none)" ]]; then
			if [[ " ${APT_OPTIONAL[*]} " == *" $p "* ]]; then
				log "apt: optional package $p is not available; skipping"
				continue
			fi
			die "apt: package $p has no installation candidate (apt-cache policy $p)"
		fi
		want+=("$p")
	done
	((${#want[@]})) || return 0

	# Keep package maintainer scripts from starting daemons: invoke-rc.d honours policy-rc.d
	# (exit 101 = action forbidden). Only install our own if none exists, and always remove it.
	local policy=/usr/sbin/policy-rc.d
	if [[ ! -e $policy ]]; then
		printf '#!/bin/sh\n# harden test/env/deps.sh: no daemon starts during install\nexit 101\n' >"$policy"
		chmod 755 "$policy"
		own_policy=$policy # removed below, or by the EXIT trap if we are interrupted
	fi
	local before
	before=" $(pids_of "${DAEMONS[@]}" | tr '\n' ' ') "

	log "apt: installing ${want[*]}"
	local rc=0
	apt-get install -y -qq --no-install-recommends \
		-o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
		"${want[@]}" >"$LOGS/apt-install.log" 2>&1 || rc=$?
	if [[ -n $own_policy ]]; then
		rm -f "$own_policy"
		own_policy=
	fi

	# Stop whatever the install started anyway (only daemons that were not running before).
	for p in $(pids_of "${DAEMONS[@]}"); do
		[[ $before == *" $p "* ]] && continue
		log "apt: stopping daemon started by package install: pid $p ($(readlink "/proc/$p/exe" 2>/dev/null))"
		kill "$p" 2>/dev/null || true
	done

	if ((rc != 0)); then
		tail -n 30 "$LOGS/apt-install.log" >&2
		die "apt-get install failed (log: $LOGS/apt-install.log)"
	fi
}

# --- Go builds ----------------------------------------------------------------------------

# Every build runs outside the repo, with the module proxy, -trimpath, and its own log.
go_env() {
	export GOWORK=off GO111MODULE=on
	export GOFLAGS="-trimpath -buildvcs=false"
	export CGO_ENABLED=1
}

# stamp NAME VERSION BIN... succeeds when NAME was built at VERSION and its binaries exist.
stamp_ok() {
	local name=$1 version=$2 b
	shift 2
	[[ -f $STAMPS/$name@$version ]] || return 1
	for b in "$@"; do [[ -x $BIN/$b ]] || return 1; done
}

# install_built DIR BIN... moves binaries from a staging DIR into $BIN (atomic rename per file).
install_built() {
	local dir=$1 b
	shift
	for b in "$@"; do
		[[ -x $dir/$b ]] || {
			echo "missing built binary $dir/$b"
			return 1
		}
		mv -f "$dir/$b" "$BIN/.$b.new" && mv -f "$BIN/.$b.new" "$BIN/$b"
	done
}

build_containerd() {
	local stage=$SRC/containerd@$CONTAINERD_VERSION/bin pkg=github.com/containerd/containerd/v2
	rm -rf "$stage" && mkdir -p "$stage"
	GOBIN=$stage go install \
		-ldflags "-X $pkg/version.Version=$CONTAINERD_VERSION -X $pkg/version.Revision=modproxy" \
		"$pkg/cmd/containerd@$CONTAINERD_VERSION" \
		"$pkg/cmd/containerd-shim-runc-v2@$CONTAINERD_VERSION" \
		"$pkg/cmd/ctr@$CONTAINERD_VERSION"
	install_built "$stage" containerd containerd-shim-runc-v2 ctr
}

build_runc() {
	local stage=$SRC/runc@$RUNC_VERSION/bin
	rm -rf "$stage" && mkdir -p "$stage"
	# Without the seccomp tag runc refuses every config that has a seccomp profile.
	GOBIN=$stage go install -tags seccomp \
		-ldflags "-X main.version=${RUNC_VERSION#v} -X main.gitCommit=modproxy" \
		"github.com/opencontainers/runc@$RUNC_VERSION"
	install_built "$stage" runc
}

build_crictl() {
	local stage=$SRC/crictl@$CRITOOLS_VERSION/bin
	rm -rf "$stage" && mkdir -p "$stage"
	GOBIN=$stage go install \
		-ldflags "-X sigs.k8s.io/cri-tools/pkg/version.Version=$CRITOOLS_VERSION" \
		"sigs.k8s.io/cri-tools/cmd/crictl@$CRITOOLS_VERSION"
	install_built "$stage" crictl
}

# critest's package holds only _test.go files: compile the test binary from a scratch module.
build_critest() {
	local mod=$SRC/critest@$CRITOOLS_VERSION
	rm -rf "$mod" && mkdir -p "$mod/bin"
	(
		cd "$mod"
		go mod init harden.local/critest
		go get -t "sigs.k8s.io/cri-tools/cmd/critest@$CRITOOLS_VERSION"
		go test -c -o bin/critest \
			-ldflags "-X sigs.k8s.io/cri-tools/pkg/version.Version=$CRITOOLS_VERSION" \
			sigs.k8s.io/cri-tools/cmd/critest
	)
	install_built "$mod/bin" critest
}

# The Docker 29 engine from the moby/moby/v2 module. Built as dockerd29 so it never shadows
# Debian's /usr/sbin/dockerd (20.10). The btrfs graph driver (cgo, kernel headers) is left out:
# the tests never use it, and it is one less C dependency.
build_dockerd29() {
	local stage=$SRC/dockerd@$MOBY_VERSION/bin pkg=github.com/moby/moby/v2
	rm -rf "$stage" && mkdir -p "$stage"
	GOBIN=$stage go install -tags "$DOCKERD_TAGS" \
		-ldflags "-X $pkg/dockerversion.Version=$MOBY_VERSION -X $pkg/dockerversion.GitCommit=modproxy" \
		"$pkg/cmd/dockerd@$MOBY_VERSION"
	mv "$stage/dockerd" "$stage/dockerd29"
	install_built "$stage" dockerd29
}
DOCKERD_TAGS="exclude_graphdriver_btrfs"

# run_builds NAME... builds every tool whose stamp is missing, in parallel, one log each.
run_builds() {
	local name version bins pids=() names=() failed=()
	for name in "$@"; do
		case $name in
		containerd) version=$CONTAINERD_VERSION bins="containerd containerd-shim-runc-v2 ctr" ;;
		runc) version=$RUNC_VERSION bins=runc ;;
		crictl) version=$CRITOOLS_VERSION bins=crictl ;;
		critest) version=$CRITOOLS_VERSION bins=critest ;;
		dockerd29) version=$MOBY_VERSION bins=dockerd29 ;;
		esac
		# shellcheck disable=SC2086
		stamp_ok "$name" "$version" $bins && continue
		log "build: $name@$version (log: $LOGS/$name@$version.log)"
		(
			trap - ERR # the parent reports the failure with this log's tail
			cd "$SRC"
			go_env
			set -x
			"build_$name"
			: >"$STAMPS/$name@$version"
		) >"$LOGS/$name@$version.log" 2>&1 &
		pids+=($!)
		names+=("$name@$version")
	done
	local i
	for i in "${!pids[@]}"; do
		if wait "${pids[$i]}"; then
			log "build: ${names[$i]} done"
		else
			failed+=("${names[$i]}")
		fi
	done
	if ((${#failed[@]})); then
		for name in "${failed[@]}"; do
			printf '\n--- last 40 lines of %s ---\n' "$LOGS/$name.log" >&2
			tail -n 40 "$LOGS/$name.log" >&2
		done
		die "build failed: ${failed[*]} (logs in $LOGS)"
	fi
}

# --- host quirks --------------------------------------------------------------------------

# crun refuses a hybrid cgroup host while any controller is attached to the v2 mount ("drop all
# controllers from cgroupv2"). Here hugetlb sits on /sys/fs/cgroup/unified; mounting it as a v1
# hierarchy moves it off the v2 mount. Only done when the v2 mount really carries a controller.
fix_cgroups() {
	local unified=/sys/fs/cgroup/unified c
	[[ -f $unified/cgroup.controllers ]] || return 0 # pure v1 or pure v2: nothing to do
	local controllers
	read -r -a controllers <"$unified/cgroup.controllers" || true
	for c in "${controllers[@]}"; do
		if [[ -d /sys/fs/cgroup/$c ]] && mountpoint -q "/sys/fs/cgroup/$c"; then
			die "cgroup controller $c is on the v2 mount but /sys/fs/cgroup/$c is already mounted"
		fi
		log "cgroup: mounting controller $c as a v1 hierarchy at /sys/fs/cgroup/$c (for crun)"
		mkdir -p "/sys/fs/cgroup/$c"
		mount -t cgroup -o "$c" cgroup "/sys/fs/cgroup/$c" ||
			die "mount cgroup v1 $c at /sys/fs/cgroup/$c failed; crun will refuse this host"
	done
	[[ -z $(cat "$unified/cgroup.controllers") ]] ||
		die "controllers still on $unified: $(cat "$unified/cgroup.controllers")"
}

# --- verification -------------------------------------------------------------------------

verify_runc_seccomp() {
	local enabled
	enabled=$("$BIN/runc" features | jq -r '.linux.seccomp.enabled') ||
		die "runc features failed"
	[[ $enabled == true ]] || die "$BIN/runc was built without seccomp (runc features: seccomp.enabled=$enabled)"
}

# verify_crun runs a real container with crun from the busybox rootfs the image build made.
verify_crun() {
	local rootfs=$HARDEN_CACHE/images/busybox-rootfs tmp out
	[[ -x $rootfs/bin/sh ]] || die "busybox rootfs missing at $rootfs"
	tmp=$(mktemp -d /tmp/harden-crun.XXXXXX)
	# shellcheck disable=SC2064
	trap "crun --root '$tmp/state' delete -f harden-deps-check >/dev/null 2>&1 || true; rm -rf '$tmp'" RETURN
	mkdir -p "$tmp/bundle" "$tmp/state"
	(cd "$tmp/bundle" && crun spec)
	jq --arg r "$rootfs" '.root = {path: $r, readonly: true} | .process.terminal = false
		| .process.args = ["/bin/sh", "-c", "echo crun-ok"]' \
		"$tmp/bundle/config.json" >"$tmp/bundle/config.json.new"
	mv "$tmp/bundle/config.json.new" "$tmp/bundle/config.json"
	out=$(crun --root "$tmp/state" run -b "$tmp/bundle" harden-deps-check </dev/null 2>&1) ||
		die "crun run failed: $out"
	[[ $out == crun-ok ]] || die "crun run printed $out, want crun-ok"
}

# --- env.sh and summary -------------------------------------------------------------------

write_env() {
	local f=$HARDEN_CACHE/env.sh
	cat >"$f.new" <<EOF
# Generated by test/env/deps.sh; source it to find harden's test tools. Do not edit.
export HARDEN_CACHE=$HARDEN_CACHE
export HARDEN_BIN=$BIN
export HARDEN_CONTAINERD=$BIN/containerd
export HARDEN_CTR=$BIN/ctr
export HARDEN_SHIM_RUNC=$BIN/containerd-shim-runc-v2
export HARDEN_RUNC=$BIN/runc
export HARDEN_CRICTL=$BIN/crictl
export HARDEN_CRITEST=$BIN/critest
export HARDEN_DOCKERD29=$BIN/dockerd29
export HARDEN_DOCKERD20=/usr/sbin/dockerd
export HARDEN_CONTAINERD16=/usr/bin/containerd
export HARDEN_RUNC_DEBIAN=/usr/sbin/runc
export HARDEN_DOCKER=$(command -v docker)
export HARDEN_CRUN=$(command -v crun)
export HARDEN_RUNSC=$(command -v runsc)
export HARDEN_PODMAN=$(command -v podman)
export HARDEN_IMAGES=$HARDEN_CACHE/images
export HARDEN_BUSYBOX_ROOTFS=$HARDEN_CACHE/images/busybox-rootfs
export HARDEN_BUSYBOX_IMAGE=$(cat "$HARDEN_CACHE/images/busybox.name")
export HARDEN_PAUSE_IMAGE=$(cat "$HARDEN_CACHE/images/pause.name")
export HARDEN_CONTAINERD_VERSION=$CONTAINERD_VERSION
export HARDEN_RUNC_VERSION=$RUNC_VERSION
export HARDEN_CRITOOLS_VERSION=$CRITOOLS_VERSION
export HARDEN_MOBY_VERSION=$MOBY_VERSION
EOF
	mv "$f.new" "$f"
}

# debver PKG prints the installed Debian version of PKG (running `crun --version` would create /run/crun).
debver() { dpkg-query -W -f='${Version}' "$1"; }

summary() {
	# shellcheck disable=SC1091
	. "$HARDEN_CACHE/env.sh"
	{
		printf 'tool\tversion\tpath\n'
		printf 'containerd\t%s\t%s\n' "$("$HARDEN_CONTAINERD" --version | awk '{print $3}')" "$HARDEN_CONTAINERD"
		printf 'ctr\t%s\t%s\n' "$("$HARDEN_CTR" --version | awk '{print $3}')" "$HARDEN_CTR"
		printf 'containerd-shim-runc-v2\t%s\t%s\n' "$("$HARDEN_SHIM_RUNC" -v | awk '/Version:/ {print $2}')" "$HARDEN_SHIM_RUNC"
		printf 'runc\t%s\t%s\n' "$("$HARDEN_RUNC" --version | awk 'NR==1 {print $3}')" "$HARDEN_RUNC"
		printf 'crictl\t%s\t%s\n' "$("$HARDEN_CRICTL" --version | awk '{print $3}')" "$HARDEN_CRICTL"
		printf 'critest\t%s\t%s\n' "$CRITOOLS_VERSION" "$HARDEN_CRITEST"
		printf 'dockerd29\t%s\t%s\n' "$("$HARDEN_DOCKERD29" --version | awk '{print $3}' | tr -d ,)" "$HARDEN_DOCKERD29"
		printf 'dockerd20 (docker.io)\t%s\t%s\n' "$(debver docker.io)" "$HARDEN_DOCKERD20"
		printf 'containerd (debian)\t%s\t%s\n' "$(debver containerd)" "$HARDEN_CONTAINERD16"
		printf 'runc (debian)\t%s\t%s\n' "$(debver runc)" "$HARDEN_RUNC_DEBIAN"
		printf 'docker (client)\t%s\t%s\n' "$("$HARDEN_DOCKER" --version | awk '{print $3}' | tr -d ,)" "$HARDEN_DOCKER"
		printf 'crun\t%s\t%s\n' "$(debver crun)" "$HARDEN_CRUN"
		printf 'runsc\t%s\t%s\n' "$(debver runsc)" "$HARDEN_RUNSC"
		printf 'podman\t%s\t%s\n' "$(debver podman)" "$HARDEN_PODMAN"
		printf 'bats\t%s\t%s\n' "$(debver bats)" "$(command -v bats)"
		if command -v skopeo >/dev/null; then
			printf 'skopeo\t%s\t%s\n' "$(debver skopeo)" "$(command -v skopeo)"
		fi
		printf 'images\t%s, %s\t%s\n' "$HARDEN_BUSYBOX_IMAGE" "$HARDEN_PAUSE_IMAGE" "$HARDEN_IMAGES"
	} | column -t -s $'\t' >&2
	log "environment: . $HARDEN_CACHE/env.sh"
}

main() {
	local start=$SECONDS
	install_packages
	run_builds containerd runc crictl critest dockerd29
	verify_runc_seccomp
	fix_cgroups
	PATH=$BIN:$PATH "$repo/test/images/build.sh"
	verify_crun
	write_env
	summary
	log "done in $((SECONDS - start))s"
}

main "$@"
