# shellcheck shell=bash
# lib.sh: functions shared by test/env/containerd.sh, dockerd.sh and capture-specs.sh.
# Sourced, not run. Every function acts only on processes, mounts and files that belong to the
# private daemon instance rooted at the directory it is given.

HARDEN_CACHE=${HARDEN_CACHE:-/var/cache/harden}
if [[ -f $HARDEN_CACHE/env.sh ]]; then
	# shellcheck disable=SC1091
	. "$HARDEN_CACHE/env.sh"
fi
HARDEN_BIN=${HARDEN_BIN:-$HARDEN_CACHE/bin}
HARDEN_IMAGES=${HARDEN_IMAGES:-$HARDEN_CACHE/images}

log() { printf '%s: %s\n' "${0##*/}" "$*" >&2; }
die() {
	printf '%s: ERROR: %s\n' "${0##*/}" "$*" >&2
	exit 1
}

# abs_dir DIR prints DIR as an absolute path without a trailing slash (it need not exist).
abs_dir() {
	local d=$1
	[[ $d == /* ]] || d=$PWD/$d
	d=$(realpath -m "$d")
	[[ $d != / ]] || die "refusing to use / as an instance directory"
	echo "$d"
}

# pid_alive PID EXE succeeds when PID runs and its executable is EXE (guards against pid reuse).
pid_alive() {
	local pid=$1 exe=$2
	[[ -n $pid && -d /proc/$pid ]] || return 1
	[[ $(readlink "/proc/$pid/exe" 2>/dev/null) == "$exe" ]]
}

# stop_pid PID [TIMEOUT]: SIGTERM, wait up to TIMEOUT seconds (default 10), then SIGKILL.
stop_pid() {
	local pid=$1 t=${2:-10} i
	kill -TERM "$pid" 2>/dev/null || return 0
	for ((i = 0; i < t * 10; i++)); do
		[[ -d /proc/$pid ]] || return 0
		# a zombie child of ours is gone as far as we care
		[[ $(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) == Z ]] && return 0
		sleep 0.1
	done
	log "pid $pid did not stop after SIGTERM in ${t}s; sending SIGKILL"
	kill -KILL "$pid" 2>/dev/null || true
	for ((i = 0; i < 50; i++)); do
		[[ -d /proc/$pid ]] || return 0
		sleep 0.1
	done
}

# pids_with_arg FLAG VALUE prints pids of processes whose argv holds FLAG followed by VALUE
# (how shims are found: `containerd-shim-runc-v2 -namespace NS -address ADDR ...`).
pids_with_arg() {
	local flag=$1 value=$2 p i
	local -a a
	for p in /proc/[0-9]*; do
		mapfile -d '' -t a 2>/dev/null <"$p/cmdline" || continue
		for ((i = 0; i + 1 < ${#a[@]}; i++)); do
			if [[ ${a[i]} == "$flag" && ${a[i + 1]} == "$value" ]]; then
				echo "${p#/proc/}"
				break
			fi
		done
	done
	return 0
}

# live_pids_named NAME... prints pids of running (not zombie) processes whose comm is a NAME.
live_pids_named() {
	local names=" $* "
	ps -eo pid=,stat=,comm= | while read -r pid stat comm; do
		[[ $stat == Z* ]] && continue
		[[ $names == *" $comm "* ]] && echo "$pid"
	done
	return 0
}

# mounts_under DIR prints the mount points at or below DIR, deepest first.
mounts_under() {
	local dir=$1
	awk -v d="$dir" '{
		# mountinfo field 5 is the mount point, with spaces etc. as octal escapes
		m = $5; gsub(/\\040/, " ", m); gsub(/\\011/, "\t", m); gsub(/\\012/, "\n", m); gsub(/\\134/, "\\", m)
		if (m == d || index(m, d "/") == 1) print length(m) "\t" m
	}' /proc/self/mountinfo | sort -rn | cut -f2-
}

# umount_under DIR unmounts everything mounted at or below DIR (lazily if it stays busy).
umount_under() {
	local dir=$1 m
	while IFS= read -r m; do
		[[ -n $m ]] || continue
		umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || log "cannot unmount $m"
	done < <(mounts_under "$dir")
	[[ -z $(mounts_under "$dir") ]] || die "mounts left under $dir: $(mounts_under "$dir" | tr '\n' ' ')"
}

# cleanup_bundles TASKDIR RUNC: for every shim bundle TASKDIR/NS/ID left behind (containerd gone),
# force-delete the container with runc (kills its processes, removes its cgroups) under the runc
# root recorded in the bundle's options.json (default /run/containerd/runc), and remove a shim
# socket the bundle's address file names under /run/containerd/s.
cleanup_bundles() {
	local taskdir=$1 runc=$2 b ns id root addr
	[[ -d $taskdir ]] || return 0
	for b in "$taskdir"/*/*/; do
		[[ -d $b ]] || continue
		b=${b%/}
		id=${b##*/}
		ns=${b%/*} && ns=${ns##*/}
		root=
		[[ -f $b/options.json ]] && root=$(jq -r '.Root // .root // empty' "$b/options.json" 2>/dev/null || true)
		root=${root:-/run/containerd/runc}
		if [[ -d $root/$ns/$id ]]; then
			log "force-deleting leftover container $ns/$id (runc root $root/$ns)"
			"$runc" --root "$root/$ns" delete --force "$id" >/dev/null 2>&1 || true
		fi
		for addr in "$b/address" "$b/bootstrap.json"; do
			[[ -f $addr ]] || continue
			addr=$(grep -o 'unix://[^"]*' "$addr" | head -n1 || true)
			addr=${addr#unix://}
			[[ $addr == /run/containerd/s/* && -S $addr ]] && rm -f "$addr"
		done
	done
	return 0
}

# kill_shims ADDRESS stops the shim processes that serve the containerd listening at ADDRESS.
kill_shims() {
	local addr=$1 p
	for p in $(pids_with_arg -address "$addr"); do
		log "stopping leftover shim pid $p ($(tr '\0' ' ' 2>/dev/null <"/proc/$p/cmdline" | cut -c1-80))"
		stop_pid "$p" 3
	done
}

# remove_instance DIR MARKER removes DIR, but only if it carries MARKER (our own instance root)
# and nothing is mounted below it any more.
remove_instance() {
	local dir=$1 marker=$2
	[[ -f $dir/$marker ]] || die "$dir has no $marker; not removing it"
	[[ -z $(mounts_under "$dir") ]] || die "mounts left under $dir"
	rm -rf --one-file-system "$dir"
}

# wait_for DESCRIPTION TIMEOUT CMD...: retry CMD every 0.2s until it succeeds or TIMEOUT seconds.
wait_for() {
	local what=$1 t=$2 i
	shift 2
	for ((i = 0; i < t * 5; i++)); do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.2
	done
	log "timed out after ${t}s waiting for $what"
	return 1
}
