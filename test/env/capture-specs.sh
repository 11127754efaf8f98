#!/usr/bin/env bash
# capture-specs.sh records the OCI specs that real engines hand to the runtime, as golden inputs
# for harden's spec tests (spec/testdata/engines/, described in its README.md).
#
#   test/env/capture-specs.sh [OUTDIR]     # default: spec/testdata/engines
#   HARDEN_CAPTURE_ENGINES="containerd docker20 docker29"   # the default; a subset recaptures less
#
# It starts private engines with test/env/containerd.sh and dockerd.sh under the fixed directory
# /tmp/harden-capture (fixed so that paths inside the specs stay the same from one capture to
# the next), creates containers, copies each bundle's config.json while the container runs, and
# saves it as 2-space-indented JSON. Exec process specs and update resources are caught by
# test/env/runc-capture, a runc stand-in the engines use as their runtime binary for those
# captures. Everything is stopped and removed at the end, also on failure.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$here/lib.sh"

out=$(abs_dir "${1:-$repo/spec/testdata/engines}")
work=/tmp/harden-capture
CTR=${HARDEN_CTR:-$HARDEN_BIN/ctr}
CRICTL=${HARDEN_CRICTL:-$HARDEN_BIN/crictl}
DOCKER=${HARDEN_DOCKER:-$(command -v docker)}
IMAGE=$(cat "$HARDEN_IMAGES/busybox.name")
WRAPPER=$here/runc-capture

[[ ! -e $work ]] || die "$work exists: another capture is running, or a failed one left it (stop its engines with test/env/{containerd,dockerd}.sh stop, then remove it)"
mkdir -p "$work/cap" "$out"
export HARDEN_CAPTURE_DIR=$work/cap # read by runc-capture in the shims' environment

cleanup() {
	local rc=$?
	local d
	for d in d29 d20; do
		if [[ -f $work/$d/.harden-dockerd ]]; then "$here/dockerd.sh" stop "$work/$d" || true; fi
	done
	if [[ -f $work/c/.harden-containerd ]]; then "$here/containerd.sh" stop "$work/c" || true; fi
	if [[ -z $(mounts_under "$work") ]]; then rm -rf --one-file-system "$work"; fi
	exit "$rc"
}
trap cleanup EXIT

# save NAME FILE writes FILE as pretty JSON to $out/NAME.
save() {
	local name=$1 src=$2
	[[ -s $src ]] || die "nothing captured for $name ($src missing)"
	jq --indent 2 . "$src" >"$out/.$name.new"
	mv "$out/.$name.new" "$out/$name"
	log "captured $name"
}

# one_capture KIND ID prints the single capture file runc-capture wrote for container ID.
one_capture() {
	local f
	local files=("$work/cap/$1-${2//\//_}-"*.json)
	f=${files[0]}
	[[ -f $f ]] || die "runc-capture wrote no $1 file for $2 (files: $(cd "$work/cap" && echo *))"
	echo "$f"
}

# --- containerd 2.4: ctr and CRI ------------------------------------------------------------

capture_containerd() {
	local dir=$work/c tasks
	HARDEN_CRI_RUNC_BINARY=$WRAPPER "$here/containerd.sh" start "$dir"
	tasks=$dir/state/io.containerd.runtime.v2.task
	ctr_() { "$CTR" --address "$dir/containerd.sock" "$@"; }
	local runflags=(--runc-root "$dir/runc" --fifo-dir "$dir/fifo")

	ctr_ run -d "${runflags[@]}" "$IMAGE" ctr-default sleep 3600 >/dev/null
	save ctr-run-default.json "$tasks/default/ctr-default/config.json"

	ctr_ run -d "${runflags[@]}" --runc-binary "$WRAPPER" "$IMAGE" ctr-exec sleep 3600 >/dev/null
	ctr_ task exec --fifo-dir "$dir/fifo" --exec-id probe ctr-exec true
	save exec-process-ctr.json "$(one_capture exec-process ctr-exec)"

	local crictl=("$CRICTL" --config "$dir/crictl.yaml")
	# cri_pod CASE NAMESPACE POD_LINUX_JSON CTR_LINUX_JSON: run pod "web" with container "app",
	# save the sandbox and container specs as cri-sandbox-CASE.json/cri-container-CASE.json
	# (CASE "" gives cri-sandbox.json, cri-container.json), leave the ids in $pod and $ctr.
	cri_pod() {
		local case=$1 ns=$2 podlinux=$3 ctrlinux=$4 sfx=
		[[ -n $case ]] && sfx=-$case
		mkdir -p "$work/cri/$ns$sfx"
		jq -n --arg ns "$ns" --arg logs "$work/cri/$ns$sfx" --argjson linux "$podlinux" '{
			metadata: {name: "web", namespace: $ns, uid: ("web-" + $ns), attempt: 0},
			hostname: "web", log_directory: $logs, linux: $linux}' >"$work/cri/pod$sfx.json"
		jq -n --arg image "$IMAGE" --argjson linux "$ctrlinux" '{
			metadata: {name: "app"}, image: {image: $image}, command: ["sleep", "3600"],
			log_path: "app.log", linux: $linux}' >"$work/cri/ctr$sfx.json"
		pod=$("${crictl[@]}" runp "$work/cri/pod$sfx.json")
		ctr=$("${crictl[@]}" create "$pod" "$work/cri/ctr$sfx.json" "$work/cri/pod$sfx.json")
		"${crictl[@]}" start "$ctr" >/dev/null 2>&1
	}
	cri_rm() {
		"${crictl[@]}" stopp "$pod" >/dev/null 2>&1
		"${crictl[@]}" rmp "$pod" >/dev/null 2>&1
	}
	local pod ctr
	cri_pod "" default '{}' '{}'
	save cri-sandbox.json "$tasks/k8s.io/$pod/config.json"
	save cri-container.json "$tasks/k8s.io/$ctr/config.json"
	"${crictl[@]}" update --memory 1073741824 "$ctr" >/dev/null 2>&1
	save update-resources-cri.json "$(one_capture update-resources "$ctr")"
	"${crictl[@]}" exec "$ctr" true >/dev/null 2>&1
	save exec-process-cri.json "$(one_capture exec-process "$ctr")"
	cri_rm

	cri_pod restricted-ns payments '{}' '{}'
	save cri-container-restricted-ns.json "$tasks/k8s.io/$ctr/config.json"
	cri_rm

	cri_pod privileged default '{"security_context": {"privileged": true}}' \
		'{"security_context": {"privileged": true}}'
	save cri-sandbox-privileged.json "$tasks/k8s.io/$pod/config.json"
	save cri-container-privileged.json "$tasks/k8s.io/$ctr/config.json"
	cri_rm

	cri_pod hostpid default '{"security_context": {"namespace_options": {"pid": 2}}}' \
		'{"security_context": {"namespace_options": {"pid": 2}}}'
	# The sandbox has no pid namespace; the container joins the sandbox's (= the host's) by path.
	save cri-sandbox-hostpid.json "$tasks/k8s.io/$pod/config.json"
	save cri-container-hostpid.json "$tasks/k8s.io/$ctr/config.json"
	cri_rm

	"$here/containerd.sh" stop "$dir"
}

# --- Docker 20.10 (Debian) ------------------------------------------------------------------

capture_docker20() {
	local dir=$work/d20 id
	"$here/dockerd.sh" start "$dir" 20
	id=$(DOCKER_HOST=unix://$dir/docker.sock "$DOCKER" run -d "$IMAGE" sleep 3600)
	save docker20-default.json "$dir/exec/containerd/daemon/io.containerd.runtime.v2.task/moby/$id/config.json"
	"$here/dockerd.sh" stop "$dir"
}

# --- Docker 29 ------------------------------------------------------------------------------

capture_docker29() {
	local dir=$work/d29 tasks id
	jq -n --arg w "$WRAPPER" '{runtimes: {capture: {path: $w}}}' >"$work/d29-daemon.json"
	"$here/dockerd.sh" start "$dir" 29 "$work/d29-daemon.json"
	tasks=$dir/containerd/state/io.containerd.runtime.v2.task/moby
	docker_() { DOCKER_HOST=unix://$dir/docker.sock "$DOCKER" "$@"; }

	id=$(docker_ run -d "$IMAGE" sleep 3600)
	save docker29-default.json "$tasks/$id/config.json"
	id=$(docker_ run -d --privileged "$IMAGE" sleep 3600)
	save docker29-privileged.json "$tasks/$id/config.json"
	id=$(docker_ run -d --pid=host "$IMAGE" sleep 3600)
	save docker29-hostpid.json "$tasks/$id/config.json"
	id=$(docker_ run -d --network=host "$IMAGE" sleep 3600)
	save docker29-hostnet.json "$tasks/$id/config.json"
	# The engine's own API socket, mounted where containers usually get it.
	id=$(docker_ run -d -v "$dir/docker.sock:/var/run/docker.sock" "$IMAGE" sleep 3600)
	save docker29-docker-sock.json "$tasks/$id/config.json"

	id=$(docker_ run -d --runtime capture "$IMAGE" sleep 3600)
	docker_ exec "$id" true
	save exec-process-docker29.json "$(one_capture exec-process "$id")"
	# `docker update --memory 1g` alone is refused here: "Memory limit should be smaller than
	# already set memoryswap limit, update the memoryswap at the same time".
	docker_ update --memory 1g --memory-swap 2g "$id" >/dev/null
	save update-resources-docker29.json "$(one_capture update-resources "$id")"

	"$here/dockerd.sh" stop "$dir"
}

for engine in ${HARDEN_CAPTURE_ENGINES:-containerd docker20 docker29}; do
	"capture_$engine"
done
log "specs written to $out"
