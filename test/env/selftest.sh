#!/usr/bin/env bash
# selftest.sh checks the private daemon helpers: each one is started and stopped twice with a
# running container inside, and afterwards no process of the instance may run, nothing may be
# mounted under its directory, the directory must be gone and /run must look as before.
#
#   test/env/selftest.sh        # as root, after test/env/deps.sh; about a minute
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$here/lib.sh"

CTR=${HARDEN_CTR:-$HARDEN_BIN/ctr}
CRICTL=${HARDEN_CRICTL:-$HARDEN_BIN/crictl}
DOCKER=${HARDEN_DOCKER:-$(command -v docker)}
IMAGE=$(cat "$HARDEN_IMAGES/busybox.name")
root=$(mktemp -d /tmp/harden-selftest.XXXXXX)
trap 'rm -rf "$root"' EXIT
passed=0 failed=0
# Containers sleep for this many seconds, so that their processes can be recognised.
token=$((100000 + $$))

# /run before, minus what mount(8) itself keeps there.
run_listing() { find /run -maxdepth 2 -not -path '/run/mount*' -not -path '/run/user*' | sort; }

# leftovers DIR prints what an instance left: live processes naming DIR or running a test
# container's sleep, mounts under DIR, the directory itself.
leftovers() {
	local dir=$1 p
	for p in /proc/[0-9]*; do
		[[ $(awk '{print $3}' "$p/stat" 2>/dev/null) == Z ]] && continue
		if tr '\0' ' ' 2>/dev/null <"$p/cmdline" | grep -qF -e "$dir" -e "sleep $token"; then
			echo "process ${p#/proc/}: $(tr '\0' ' ' 2>/dev/null <"$p/cmdline" | cut -c1-100)"
		fi
	done
	mounts_under "$dir" | sed 's/^/mount: /'
	[[ ! -e $dir ]] || echo "directory $dir still exists"
}

check() {
	local name=$1 dir=$2 before=$3 left
	left=$(leftovers "$dir")
	if [[ $(run_listing) != "$before" ]]; then
		left+=$'\n'"/run changed: $(diff <(echo "$before") <(run_listing) | grep '^[<>]' | tr '\n' ' ')"
	fi
	if [[ -z ${left//$'\n'/} ]]; then
		passed=$((passed + 1))
		log "ok: $name"
	else
		failed=$((failed + 1))
		log "FAIL: $name: $left"
	fi
}

for round in 1 2; do
	before=$(run_listing)
	dir=$root/c$round
	"$here/containerd.sh" start "$dir" 2>/dev/null
	# shellcheck disable=SC1091
	. "$dir/env.sh"
	# shellcheck disable=SC2086
	"$CTR" run -d $HARDEN_CTR_RUN_FLAGS "$IMAGE" st sleep "$token" >/dev/null 2>&1
	printf '{"metadata":{"name":"p","namespace":"default","uid":"p","attempt":0},"log_directory":"%s","linux":{}}' \
		"$dir/logs" >"$root/pod.json"
	"$CRICTL" --config "$CRI_CONFIG_FILE" runp "$root/pod.json" >/dev/null 2>&1
	"$here/containerd.sh" stop "$dir" 2>/dev/null
	check "containerd round $round (ctr container + CRI pod)" "$dir" "$before"

	for v in 20 29; do
		before=$(run_listing)
		dir=$root/d$v-$round
		"$here/dockerd.sh" start "$dir" "$v" 2>/dev/null
		DOCKER_HOST=unix://$dir/docker.sock "$DOCKER" run -d "$IMAGE" sleep "$token" >/dev/null
		"$here/dockerd.sh" stop "$dir" 2>/dev/null
		check "docker $v round $round (running container)" "$dir" "$before"
	done
done
echo "selftest: $passed passed, $failed failed"
((failed == 0))
