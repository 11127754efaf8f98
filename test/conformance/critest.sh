#!/usr/bin/env bash
# critest.sh runs critest (cri-tools v1.37.0, the CRI validation suite) against ONE private
# containerd 2.4 with three CRI runtime handlers, and compares them (issue 5):
#
#   runc          io.containerd.runc.v2 with runc 1.4.0 (test/env/containerd.sh's own handler)
#   harden-audit  bin/containerd-shim-harden-v2 in the form `hardenctl install containerd
#                 --runc-type` writes: runtime_type io.containerd.runc.v2, runtime_path the
#                 shim, so containerd sends runc options (user-namespace pods need them);
#                 harden's settings from the node file (HARDEN_CONFIG): the same runc,
#                 policy {defaults: {profile: baseline, mode: audit}}
#   harden        io.containerd.harden.v2 (the installer's default form), its options naming
#                 a PolicyPath that does not exist: the embedded default policy (baseline,
#                 enforce)
#
# Gate: the set of specs that pass with harden-audit must EQUAL the set that passes with runc
# (audit mode must change nothing); every difference is printed and the script exits 1. The
# harden (enforce) run does not gate: each spec that passes with runc and not with harden is
# printed with its failure and the decisions harden logged while it ran (rule IDs).
# A spec that differs is first run again, alone (--ginkgo.focus), on the side where it did not
# pass, CONFORMANCE_CRI_RETRIES times (default 1); one that then passes is reported as flaky.
#
# Setup (all of it under a temp dir, $HARDEN_CACHE/critest/run.XXXXXX, removed at the end):
#   - test/conformance/critest-images.sh builds the images critest pulls (cached in
#     $HARDEN_CACHE/images/critest); they are imported into containerd's k8s.io namespace with
#     `ctr images import` under critest's names before each handler's run.
#   - containerd's CRI PullImage asks the registry even for an image it has (tested: with
#     busybox imported, `crictl pull` of it fails "dial tcp: lookup registry-1.docker.io ... no
#     such host"), and critest's image specs remove an image and pull it again. So a registry
#     (Debian's docker-registry, distribution 2.8) listens on a free port of 127.0.0.1, skopeo
#     copies the images into it, and containerd's registry hosts directory (certs.d) sends
#     registry.k8s.io, k8s.gcr.io, gcr.io and docker.io there, with no fallback to the internet.
#   - harden's decision logs, state dir and node configuration (HARDEN_CONFIG) are in the temp
#     dir; nothing reads /etc/harden or writes /var/log/harden or /run/harden.
#   - critest runs with TMPDIR in the temp dir (its log dirs, seccomp profiles, mount points).
#   - NRI is on, on a private socket in the temp dir (test/conformance/critest-config.sh edits
#     containerd.sh's config; containerd.sh turns NRI off because its default socket is
#     host-wide), so critest's NRI specs run (--nri-socket).
#   - The whole script runs in a private IPC namespace (unshare --ipc; containerd, its shims and
#     containers inherit it): critest's HostIpc specs create a System V shared memory segment
#     with `ipcmk -M` on the "host" and never remove it; in a private namespace the segment is
#     freed with the namespace when the run ends, and the machine's real IPC namespace is not
#     touched. "Host IPC" for the containers is then that namespace, which is what the spec checks.
#   - The specs listed in test/conformance/critest-skip.txt (each with its reason) are skipped
#     for every handler alike.
#
# Results go to $CONFORMANCE_CRI_OUT (default $HARDEN_CACHE/conformance-cri): per handler
# results.tsv (spec, passed|failed|skipped, note), report.json (ginkgo), junit.xml, critest.log,
# seconds, summary, and for the harden handlers decisions.log; then summary.md (the results
# table), containerd.log, registry.log, environment, audit-differences, enforce-differences,
# enforce-explained.txt, flaky, retries/.
#
# Usage: test/conformance/critest.sh [-c] [-r HANDLERS] [-f REGEX]
#   -c           compare only: no containerd, no runs; compare the results stored in the output
#                directory (a retry is looked up in retries/, not run)
#   -r HANDLERS  comma-separated subset of runc,harden-audit,harden (default all three); a
#                comparison whose other side was not run uses that side's stored results
#   -f REGEX     only the specs whose whole name matches (--ginkgo.focus; for debugging: the
#                gate needs all), e.g. -f '.*HostPID.*'
# Environment: HARDEN_CACHE (/var/cache/harden), CONFORMANCE_CRI_OUT, CONFORMANCE_CRI_SEED (ginkgo
# seed, default 1: every handler runs the specs in the same order), CONFORMANCE_CRI_TIMEOUT
# (ginkgo suite timeout per run, default 3h), CONFORMANCE_CRI_RETRIES (default 1),
# CONFORMANCE_CRI_BIN (the directory holding the containerd-shim-harden-v2 to test; default bin/).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)

handlers=runc,harden-audit,harden
focus=
compare_only=0
while getopts 'cr:f:h' opt; do
	case $opt in
	c) compare_only=1 ;;
	r) handlers=$OPTARG ;;
	f) focus=$OPTARG ;;
	*) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2 ;;
	esac
done
shift $((OPTIND - 1))
(($# == 0)) || { echo "critest.sh: unexpected arguments: $*" >&2; exit 2; }

# Everything from here runs in a private IPC namespace (see above). unshare(CLONE_NEWIPC) needs no
# fork, so this process itself (same pid) continues in it.
if ((!compare_only)) && [[ ${HARDEN_CRITEST_IPCNS:-} != "$$" ]]; then
	[[ $EUID -eq 0 ]] || { echo "critest.sh: ERROR: run as root (containers, mounts, namespaces)" >&2; exit 2; }
	exec env HARDEN_CRITEST_IPCNS=$$ unshare --ipc -- "$BASH" "$0" -r "$handlers" ${focus:+-f "$focus"}
fi

# lib.sh: log, die, pid_alive, stop_pid, umount_under, wait_for; it sources $HARDEN_CACHE/env.sh.
# shellcheck source-path=SCRIPTDIR source=../env/lib.sh
. "$here/../env/lib.sh"
log() { printf 'critest: %s\n' "$*" >&2; }
die() {
	printf 'critest: ERROR: %s\n' "$*" >&2
	exit 2
}

# Decision logs and ginkgo report times are compared as text: keep every process in UTC.
export TZ=UTC
# join and sort must agree on the order of spec names.
export LC_ALL=C
OUT=${CONFORMANCE_CRI_OUT:-$HARDEN_CACHE/conformance-cri}
SEED=${CONFORMANCE_CRI_SEED:-1}
TIMEOUT=${CONFORMANCE_CRI_TIMEOUT:-3h}
RETRIES=${CONFORMANCE_CRI_RETRIES:-1}
SKIP_FILE=$here/critest-skip.txt
CRITEST=${HARDEN_CRITEST:-$HARDEN_BIN/critest}
CRICTL=${HARDEN_CRICTL:-$HARDEN_BIN/crictl}
CTR=${HARDEN_CTR:-$HARDEN_BIN/ctr}
RUNC=${HARDEN_RUNC:-$HARDEN_BIN/runc}
# The directory containerd finds containerd-shim-harden-v2 in (first on its PATH).
SHIM_DIR=${CONFORMANCE_CRI_BIN:-$repo/bin}
SHIM=$SHIM_DIR/containerd-shim-harden-v2
IMAGES=${CRITEST_IMAGES:-$HARDEN_CACHE/images/critest}
ALL_HANDLERS=(runc harden-audit harden)

for h in ${handlers//,/ }; do
	printf '%s\n' "${ALL_HANDLERS[@]}" | grep -qxF -- "$h" || die "unknown handler $h (want runc, harden-audit, harden)"
done
command -v jq >/dev/null || die "jq not found: run make deps"
[[ -f $SKIP_FILE ]] || die "$SKIP_FILE not found"
if ((!compare_only)); then
	for t in "$CRITEST" "$CRICTL" "$CTR" "$RUNC" "${HARDEN_CONTAINERD:-$HARDEN_BIN/containerd}"; do
		[[ -x $t ]] || die "$t not found: run make deps"
	done
	[[ -x $SHIM && -x $SHIM_DIR/hardenctl ]] || die "$SHIM or $SHIM_DIR/hardenctl not found: run make build"
	missing=()
	for t in docker-registry:docker-registry skopeo:skopeo curl:curl ipcmk:util-linux ss:iproute2; do
		command -v "${t%%:*}" >/dev/null || missing+=("${t#*:}")
	done
	((${#missing[@]} == 0)) || die "missing ${missing[*]}: run make deps (or apt-get install ${missing[*]})"
fi

# --- the exclusion list ---------------------------------------------------------------------

# skip_regexes prints the regular expressions of critest-skip.txt, one a line, and fails on an
# entry without a reason (a comment line right above it).
skip_regexes() {
	awk '
		/^[ \t]*$/ { prev = ""; next }
		/^#/ { prev = "#"; next }
		{
			if (prev != "#") { printf "critest-skip.txt line %d has no # reason comment above it: %s\n", NR, $0 > "/dev/stderr"; bad = 1 }
			print; prev = "re"
		}
		END { exit bad }' "$SKIP_FILE"
}
mapfile -t skips < <(skip_regexes) || true
skip_regexes >/dev/null || die "fix $SKIP_FILE"
# ginkgo matches --ginkgo.focus and --ginkgo.skip against "SUITE SPEC" (the suite description,
# a space, the spec's full name; ginkgo internal/focus.go), so every expression is anchored to a
# whole spec name here: an entry excludes exactly the specs whose full name it matches.
SUITE="CRI validation" # cmd/critest: ginkgo.RunSpecs(t, "CRI validation")
whole() { printf '^%s (?:%s)$' "$SUITE" "$1"; }
skip_flags=()
for re in "${skips[@]}"; do
	skip_flags+=(--ginkgo.skip "$(whole "$re")")
done

# --- the environment ------------------------------------------------------------------------

tmp='' cdir='' hdir='' regdir='' sock='' reg=''
reg_pid=
critest_pid=
containerd_started=0

# run_state lists what this run must leave as it found it: the host's runtime state directories.
run_state() {
	local d
	for d in /run/containerd /run/runc /run/harden /run/netns /run/nri /var/run/nri; do
		[[ -e $d ]] && find "$d" -maxdepth 2 2>/dev/null
	done | sort
	return 0
}

# shellcheck disable=SC2317 # invoked by the EXIT trap
cleanup() {
	local rc=$? m
	trap - EXIT INT TERM
	if [[ -n $critest_pid ]] && kill -0 "$critest_pid" 2>/dev/null; then
		log "ending critest pid $critest_pid"
		stop_pid "$critest_pid" 30
	fi
	if ((containerd_started)); then
		[[ -f $cdir/containerd.log ]] && cp "$cdir/containerd.log" "$OUT/containerd.log"
		"$here/../env/containerd.sh" stop "$cdir" || log "WARNING: containerd.sh stop $cdir failed"
	fi
	if [[ -n $reg_pid ]] && pid_alive "$reg_pid" "$(command -v docker-registry)"; then
		stop_pid "$reg_pid" 10
	fi
	[[ -n $regdir && -f $regdir/registry.log ]] && cp "$regdir/registry.log" "$OUT/registry.log"
	# Mounts critest's specs may have left under their TMPDIR (mount propagation specs). Only
	# under the temp dir, and only once it exists: mounts_under "" would list every mount.
	if [[ -n $tmp && -d $tmp && $tmp == "$HARDEN_CACHE"/critest/run.* ]]; then
		while IFS= read -r m; do
			[[ -n $m ]] && { umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || log "cannot unmount $m"; }
		done < <(mounts_under "$tmp")
		if [[ -z $(mounts_under "$tmp") ]]; then
			rm -rf --one-file-system "$tmp"
		else
			log "WARNING: mounts left under $tmp; not removing it"
		fi
	fi
	local run_after
	run_after=$(run_state)
	if [[ $run_before != "$run_after" ]]; then
		log "WARNING: host runtime state changed during the run (another engine on this machine, or a leak):"
		diff <(echo "$run_before") <(echo "$run_after") | grep '^[<>]' | sed 's/^/  /' >&2 || true
	fi
	exit "$rc"
}

# setup makes the temp dir, builds and serves the images, writes harden's configuration and
# starts containerd (see the header). cleanup (the EXIT trap) undoes all of it.
setup() {
	mkdir -p "$HARDEN_CACHE/critest"
	# Short: containerd.sh keeps shim sockets in DIR/s only while that path is at most 42 bytes.
	tmp=$(mktemp -d "$HARDEN_CACHE/critest/run.XXXXXX")
	# mktemp makes it 0700: the user-namespace specs run the container's root as uid 1000+ on
	# the host, which must be able to reach the rootfs under containerd's state dir in here.
	chmod 0755 "$tmp"
	# containerd.sh splits HARDEN_CONFIG_EDIT (below) into words.
	[[ $tmp != *[[:space:]]* ]] || die "the temp dir has a space in its path: $tmp"
	cdir=$tmp/c     # containerd.sh instance
	hdir=$tmp/h     # harden: configs, policies, decision logs, state
	regdir=$tmp/reg # the loopback registry
	sock=$cdir/containerd.sock
	mkdir -p "$hdir/state" "$regdir" "$tmp/tmp"

	log "images: test/conformance/critest-images.sh"
	"$here/critest-images.sh"
	[[ -f $IMAGES/images.tsv ]] || die "no $IMAGES/images.tsv"
	setup_registry
	setup_harden
	setup_containerd
}

# setup_registry starts the loopback registry on a port the kernel picks and pushes every image
# under every name critest uses (the path after the registry host is kept).
setup_registry() {
	local port='' file refs ref
	cat >"$regdir/config.yml" <<-EOF
		version: 0.1
		log:
		  level: warn
		storage:
		  filesystem:
		    rootdirectory: $regdir/data
		  delete:
		    enabled: true
		http:
		  addr: 127.0.0.1:0
		  secret: critest-$$
	EOF
	setsid docker-registry serve "$regdir/config.yml" </dev/null >"$regdir/registry.log" 2>&1 &
	reg_pid=$!
	for _ in $(seq 1 150); do
		port=$(ss -Htlnp 2>/dev/null | awk -v p="pid=$reg_pid," 'index($0, p) {n = split($4, a, ":"); print a[n]; exit}')
		[[ -n $port ]] && break
		kill -0 "$reg_pid" 2>/dev/null || break
		sleep 0.2
	done
	[[ -n $port ]] || { cat "$regdir/registry.log" >&2; die "docker-registry did not start"; }
	reg=127.0.0.1:$port
	wait_for "registry $reg" 30 curl -fsS "http://$reg/v2/" || die "registry $reg does not answer"
	log "registry pid $reg_pid on $reg"
	while IFS=$'\t' read -r file refs; do
		for ref in $refs; do
			skopeo --insecure-policy copy -q --dest-tls-verify=false "oci-archive:$IMAGES/$file" "docker://$reg/${ref#*/}" \
				>>"$regdir/skopeo.log" 2>&1 || { tail -5 "$regdir/skopeo.log" >&2; die "skopeo copy $file to $reg/${ref#*/} failed"; }
		done
	done <"$IMAGES/images.tsv"
}

# setup_harden writes harden's node configuration (HARDEN_CONFIG) and the two CRI runtime handlers,
# one in each form `hardenctl install containerd` writes:
#   - harden-audit, --runc-type: containerd sends runc options, which carry none of harden's
#     settings, so they all come from the node file: the audit policy, its decision log, and
#     RuntimeHandler.
#   - harden: io.containerd.harden.v2; CRI copies the handler's options table into the shim's
#     runtime options (ConfigBody), on top of the node file: its own policy and decision log.
setup_harden() {
	cat >"$hdir/audit-policy.yaml" <<-'EOF'
		apiVersion: harden.dev/v1alpha1
		kind: Policy
		defaults: {profile: baseline, mode: audit}
	EOF
	mkdir -p "$hdir/harden-audit" "$hdir/harden"
	cat >"$hdir/node.toml" <<-EOF
		PolicyPath = "$hdir/audit-policy.yaml"
		DecisionLog = "$hdir/harden-audit/decisions.log"
		StateDir = "$hdir/state"
		BinaryName = "$RUNC"
		Root = "$cdir/runc"
		RuntimeHandler = "harden-audit"
	EOF
	# The installer's own block, cut out of a scratch file of containerd 2's layout.
	printf 'version = 3\n' >"$hdir/scratch.toml"
	"$SHIM_DIR/hardenctl" install containerd --runc-type --handler harden-audit --bin-dir "$SHIM_DIR" \
		--config "$hdir/scratch.toml" >"$hdir/install.log" 2>&1 || { cat "$hdir/install.log" >&2; die "hardenctl install containerd --runc-type failed"; }
	{
		sed -n '/^# BEGIN harden runtime harden-audit /,/^# END harden runtime harden-audit$/p' "$hdir/scratch.toml"
		# No file there: the embedded default policy (baseline, enforce) applies.
		harden_runtime harden "$hdir/no-policy-here.yaml"
	} >"$hdir/containerd-extra.toml"
	grep -q 'runtime_path = ' "$hdir/containerd-extra.toml" || die "no runc-type block in $hdir/scratch.toml"
	[[ ! -e $hdir/no-policy-here.yaml ]] || die "$hdir/no-policy-here.yaml exists"
}

# harden_runtime NAME POLICY prints a CRI runtime handler of type io.containerd.harden.v2.
harden_runtime() {
	local name=$1 policy=$2 t='[plugins."io.containerd.cri.v1.runtime".containerd.runtimes."'$1'"]'
	cat <<-EOF
		$t
		  runtime_type = "io.containerd.harden.v2"
		  ${t%]}.options]
		    Root = "@DIR@/runc"
		    BinaryName = "$RUNC"
		    PolicyPath = "$policy"
		    DecisionLog = "$hdir/$name/decisions.log"
		    StateDir = "$hdir/state"
		    RuntimeHandler = "$name"
	EOF
}

# setup_containerd starts the private containerd with the harden handlers and NRI on a private
# socket (critest-config.sh edits containerd.sh's config), points the registry names critest
# pulls from at the loopback registry, and checks one pull through CRI.
setup_containerd() {
	local host first
	log "starting containerd in $cdir"
	containerd_started=1
	HARDEN_CONFIG=$hdir/node.toml HARDEN_EXTRA_PATH=$SHIM_DIR HARDEN_CONFIG_EDIT="$here/critest-config.sh $tmp/nri" \
		"$here/../env/containerd.sh" start "$cdir" "$hdir/containerd-extra.toml"
	# server is the registry itself, so nothing falls back to the real host.
	for host in registry.k8s.io k8s.gcr.io gcr.io docker.io; do
		mkdir -p "$cdir/certs.d/$host"
		cat >"$cdir/certs.d/$host/hosts.toml" <<-EOF
			# test/conformance/critest.sh: $host is served by the loopback registry of this run.
			server = "http://$reg"
			[host."http://$reg"]
			  capabilities = ["pull", "resolve"]
		EOF
	done
	first=$(awk -F'\t' 'NR == 1 {split($2, r, " "); print r[1]}' "$IMAGES/images.tsv")
	crictl_ pull "$first" >/dev/null 2>>"$tmp/pull.log" || { cat "$tmp/pull.log" >&2; die "CRI pull of $first through $reg failed"; }
}

ctr_() { "$CTR" --address "$sock" -n k8s.io "$@"; }
crictl_() { "$CRICTL" --runtime-endpoint "unix://$sock" --image-endpoint "unix://$sock" --timeout 60s "$@"; }

# reset_images imports every image again (critest's image specs remove some), and removes any
# pod left by a previous run, so each handler starts from the same state.
reset_images() {
	local file refs first ref
	crictl_ rmp --all --force >/dev/null 2>&1 || true
	while IFS=$'\t' read -r file refs; do
		ctr_ images import "$IMAGES/$file" >>"$tmp/import.log" 2>&1 || die "ctr images import $file failed (log: $tmp/import.log)"
		first=${refs%% *}
		for ref in ${refs#"$first"}; do
			ctr_ images tag --force "$first" "$ref" >>"$tmp/import.log" 2>&1 || die "ctr images tag $first $ref failed"
		done
	done <"$IMAGES/images.tsv"
}

# --- running critest --------------------------------------------------------------------------

# run_critest HANDLER DIR [GINKGO FLAGS...]: one critest run; its report and log go to DIR.
run_critest() {
	local handler=$1 dir=$2 rc=0
	shift 2
	mkdir -p "$dir" "$tmp/tmp/$handler"
	TMPDIR=$tmp/tmp/$handler "$CRITEST" \
		--runtime-endpoint "unix://$sock" --image-endpoint "unix://$sock" --runtime-handler "$handler" \
		--nri-socket "$tmp/nri/nri.sock" \
		--ginkgo.no-color --ginkgo.v --ginkgo.seed "$SEED" --ginkgo.timeout "$TIMEOUT" \
		--ginkgo.json-report "$dir/report.json" --ginkgo.junit-report "$dir/junit.xml" \
		"${skip_flags[@]}" "$@" </dev/null >"$dir/critest.log" 2>&1 &
	critest_pid=$!
	wait "$critest_pid" || rc=$?
	critest_pid=
	[[ -f $dir/report.json ]] || { tail -20 "$dir/critest.log" >&2; die "critest ($handler) wrote no report (exit $rc): $dir/critest.log"; }
	return 0
}

# results REPORT: "spec<TAB>passed|failed|skipped<TAB>note" for every validation spec (not the
# benchmarks critest always filters out). A skipped spec's note is its own Skip message, or
# "not run" when ginkgo filtered it (critest-skip.txt, or -f).
results() {
	jq -r '
		.[0].SpecReports[]
		| select(.LeafNodeType == "It" and (.LeafNodeLocation.FileName | contains("/pkg/benchmark/") | not))
		| ((.ContainerHierarchyTexts + [.LeafNodeText]) | join(" ")) as $name
		| (if .State == "passed" then "passed" elif .State == "skipped" or .State == "pending" then "skipped" else "failed" end) as $st
		| ((.Failure.Message // "") | gsub("[\t\n]+"; " ") | .[0:300]) as $msg
		| [$name, $st, (if $st == "skipped" and $msg == "" then "not run" elif $st == "failed" and $msg == "" then .State else $msg end)]
		| @tsv' "$1" | sort
}

counts() {
	awk -F'\t' '{n[$2]++} END {printf "%d passed, %d failed, %d skipped\n", n["passed"], n["failed"], n["skipped"]}' "$1"
}

run_handler() {
	local h=$1 dir=$OUT/$1 t0
	rm -rf "$dir" "$OUT/retries/$h"
	mkdir -p "$dir"
	reset_images
	log "run $h: critest --runtime-handler $h${focus:+ --ginkgo.focus $focus} (${#skips[@]} exclusions)"
	t0=$SECONDS
	run_critest "$h" "$dir" ${focus:+--ginkgo.focus "$(whole "$focus")"}
	echo $((SECONDS - t0)) >"$dir/seconds"
	results "$dir/report.json" >"$dir/results.tsv"
	counts "$dir/results.tsv" >"$dir/summary"
	if [[ -f $hdir/$h/decisions.log ]]; then
		cp "$hdir/$h/decisions.log" "$dir/decisions.log"
	fi
	# What the run left behind (critest cleans up after each spec; a leftover is worth a look).
	{ crictl_ pods -q; crictl_ ps -a -q; } >"$dir/leftovers" 2>/dev/null || true
	if [[ -s $dir/leftovers ]]; then
		log "run $h left $(wc -l <"$dir/leftovers") pods/containers (removed before the next run)"
	fi
	log "run $h: $(cat "$dir/summary") in $(cat "$dir/seconds")s"
}

# retry HANDLER SPEC runs one spec again, alone, up to RETRIES times, and sets retried to
# "passed" if it passed once (not in a subshell: an interrupt must find critest's pid).
retried=
slug() { tr -c 'A-Za-z0-9' _ <<<"$1" | cut -c1-100; }
retry() {
	local h=$1 spec=$2 dir k st
	retried=failed
	for ((k = 1; k <= RETRIES; k++)); do
		dir=$OUT/retries/$h/$(slug "$spec").$k
		if ((compare_only)); then
			# -c: what an earlier run's retry found, if it made one.
			[[ -f $dir/report.json ]] || return 0
			st=$(results "$dir/report.json" | awk -F'\t' -v s="$spec" '$1 == s {print $2}')
			if [[ $st == passed ]]; then
				retried=passed
				return
			fi
			continue
		fi
		rm -rf "$dir"
		# ginkgo's focus is a regular expression over the spec's full name: escape it.
		# shellcheck disable=SC2001 # one sed expression escapes every RE2 metacharacter
		run_critest "$h" "$dir" --ginkgo.focus "$(whole "$(sed -e 's/[][\\.^$*+?(){}|]/\\&/g' <<<"$spec")")"
		if [[ -f $hdir/$h/decisions.log ]]; then
			cp "$hdir/$h/decisions.log" "$dir/decisions.log"
		fi
		st=$(results "$dir/report.json" | awk -F'\t' -v s="$spec" '$1 == s {print $2}')
		log "retry $k of \"$spec\" with $h: ${st:-not reported}"
		if [[ $st == passed ]]; then
			retried=passed
			return
		fi
	done
}

# --- main -----------------------------------------------------------------------------------

mkdir -p "$OUT"
if ((!compare_only)); then
	run_before=$(run_state)
	trap cleanup EXIT
	trap 'log "interrupted"; exit 130' INT TERM
	setup
	{
		echo "date: $(date -u +%FT%TZ)"
		echo "kernel: $(uname -r)"
		echo "cgroup: $([[ $(stat -fc %T /sys/fs/cgroup) == cgroup2fs ]] && echo v2 || echo "v1 (hybrid)")"
		echo "containerd: $("${HARDEN_CONTAINERD:-$HARDEN_BIN/containerd}" --version)"
		echo "runc: $("$RUNC" --version | sed -n 1p)"
		echo "critest: $("$CRITEST" --version 2>/dev/null | grep -m1 'critest version' || echo unknown)"
		echo "harden: $(cd "$repo" && git describe --always --dirty 2>/dev/null || echo dev); shim $SHIM (sha256 $(sha256sum "$SHIM" | cut -c1-12))"
		echo "ginkgo seed: $SEED"
		echo "focus: ${focus:-none}"
		echo "exclusions: ${#skips[@]} (critest-skip.txt sha256 $(sha256sum "$SKIP_FILE" | cut -c1-12))"
		echo "registry: docker-registry $(dpkg-query -W -f '${Version}' docker-registry 2>/dev/null) on $reg"
	} >"$OUT/environment"
	for h in "${ALL_HANDLERS[@]}"; do
		if [[ ,$handlers, == *,$h,* ]]; then
			run_handler "$h"
		fi
	done
fi

# --- comparing ----------------------------------------------------------------------------------

# joined A B: "spec<TAB>statusA<TAB>statusB" for specs run on both sides (neither "not run").
joined() {
	join -t $'\t' -o 0,1.2,2.2 \
		<(awk -F'\t' '$3 != "not run" {print $1 "\t" $2}' "$OUT/$1/results.tsv") \
		<(awk -F'\t' '$3 != "not run" {print $1 "\t" $2}' "$OUT/$2/results.tsv")
}
# unequal A B: specs run on one side and not on the other (a different -f or exclusion list):
# those results are not comparable.
unequal() {
	join -t $'\t' -a1 -a2 -e absent -o 0,1.2,2.2 \
		<(awk -F'\t' '{print $1 "\t" ($3 == "not run" ? "not run" : "run")}' "$OUT/$1/results.tsv") \
		<(awk -F'\t' '{print $1 "\t" ($3 == "not run" ? "not run" : "run")}' "$OUT/$2/results.tsv") |
		awk -F'\t' '$2 != $3 {print "  " $1 " (" $2 " with '"$1"', " $3 " with '"$2"')"}'
}
note() { awk -F'\t' -v s="$2" '$1 == s {print $3}' "$OUT/$1/results.tsv"; }
# show HANDLER STATUS SPEC prints a side of a difference, with the failure or skip message.
show() {
	if [[ $2 == passed ]]; then
		echo "    $1: passed"
	else
		echo "    $1: $2 -- $(note "$1" "$3")"
	fi
}

# Each skip entry should match something: a typo would silently run an impossible spec.
for re in "${skips[@]}"; do
	if [[ -f $OUT/runc/results.tsv ]] && ! cut -f1 "$OUT/runc/results.tsv" | grep -qE -- "^($re)\$"; then
		log "WARNING: critest-skip.txt entry matches no spec: $re"
	fi
done

status=0
: >"$OUT/flaky"
# The results table (docs/conformance-cri.md).
{
	echo "| handler | passed | failed | skipped | time |"
	echo "|---|---|---|---|---|"
	for h in "${ALL_HANDLERS[@]}"; do
		[[ -f $OUT/$h/results.tsv ]] || continue
		awk -F'\t' -v h="$h" -v t="$(cat "$OUT/$h/seconds")" '{n[$2]++}
			END {printf "| %s | %d | %d | %d | %d s |\n", h, n["passed"], n["failed"], n["skipped"], t}' "$OUT/$h/results.tsv"
	done
} | tee "$OUT/summary.md"
if [[ -f $OUT/runc/results.tsv && -f $OUT/harden-audit/results.tsv ]]; then
	echo "runc:                 $(cat "$OUT/runc/summary") ($(cat "$OUT/runc/seconds")s)"
	echo "harden-audit:         $(cat "$OUT/harden-audit/summary") ($(cat "$OUT/harden-audit/seconds")s)"
	cov=$(unequal runc harden-audit)
	if [[ -n $cov ]]; then
		echo "AUDIT GATE FAILED: $(wc -l <<<"$cov") specs ran with one handler only (results from runs with a different -f or exclusion list); run both again:"
		echo "$cov"
		status=1
	fi
	: >"$OUT/audit-differences"
	while IFS=$'\t' read -r spec a b; do
		[[ -n $spec ]] || continue
		side=harden-audit
		[[ $a == passed ]] || side=runc
		retry "$side" "$spec"
		if [[ $retried == passed ]]; then
			printf '%s\trunc %s, harden-audit %s\tpassed with %s when run again alone\n' "$spec" "$a" "$b" "$side" >>"$OUT/flaky"
		else
			printf '%s\t%s\t%s\n' "$spec" "$a" "$b" >>"$OUT/audit-differences"
		fi
	done < <(joined runc harden-audit | awk -F'\t' '($2 == "passed") != ($3 == "passed")')
	if [[ -s $OUT/audit-differences ]]; then
		echo "AUDIT GATE FAILED: specs whose result differs between runc and harden-audit:"
		while IFS=$'\t' read -r spec a b; do
			echo "  $spec"
			show runc "$a" "$spec"
			show harden-audit "$b" "$spec"
		done <"$OUT/audit-differences"
		status=1
	elif [[ -z $cov ]]; then
		echo "audit gate passed: the $(awk -F'\t' '$2 == "passed"' "$OUT/runc/results.tsv" | wc -l) specs passing with runc pass with harden-audit, and no others"
	fi
fi

# decisions_during RUNDIR SPEC prints, one a line, the decisions harden logged while SPEC ran in
# the run whose report and decision log are in RUNDIR (between ginkgo's start and end times of the
# spec; runs are sequential): the refusals with their rule IDs and fields, and for the others the
# rules that changed the spec (a seccomp.profile change also says what it replaced).
decisions_during() {
	local dir=$1 spec=$2 win report=$1/report.json
	[[ -f $dir/decisions.log && -f $report ]] || return 0
	win=$(jq -r --arg s "$spec" '
		.[0].SpecReports[] | select(((.ContainerHierarchyTexts + [.LeafNodeText]) | join(" ")) == $s)
		| "\(.StartTime)\t\(.EndTime)"' "$report" | head -1)
	[[ -n $win ]] || return 0
	jq -r --arg from "${win%%$'\t'*}" --arg to "${win#*$'\t'}" '
		def secs: capture("^(?<s>[^.Z+]+)(?<f>\\.[0-9]+)?") | ((.s + "Z") | fromdateiso8601) + ((.f // "0") | tonumber);
		select((.time | secs) >= ($from | secs) and (.time | secs) <= ($to | secs))
		| "      \(.event) \(.identity.containerType // "?") \((.id // "")[0:12]): \(.result)"
		  + if (.violations // []) != [] then
		      ", refused by " + ([.violations[] | "\(.rule) (\(.field))"] | unique | join(", "))
		    elif .result == "error" then " -- \((.error // "")[0:200])"
		    else
		      (if (.changes // []) != [] then ", changed by " + ([.changes[] | .rule] | unique | join(", ")) else "" end)
		      + ([.changes[]? | select(.rule == "seccomp.profile") | " [seccomp: \(.before | tostring) -> \(.after | tostring)]"] | join(""))
		    end' \
		"$dir/decisions.log" 2>/dev/null
}

if [[ -f $OUT/runc/results.tsv && -f $OUT/harden/results.tsv ]]; then
	echo "harden (enforce, not gating): $(cat "$OUT/harden/summary") ($(cat "$OUT/harden/seconds")s)"
	cov=$(unequal runc harden)
	if [[ -n $cov ]]; then
		echo "WARNING: $(wc -l <<<"$cov") specs ran with one handler only (not compared):"
		echo "$cov"
	fi
	: >"$OUT/enforce-differences"
	while IFS=$'\t' read -r spec a b; do
		[[ -n $spec ]] || continue
		retry harden "$spec"
		if [[ $retried == passed ]]; then
			printf '%s\trunc %s, harden %s\tpassed with harden when run again alone\n' "$spec" "$a" "$b" >>"$OUT/flaky"
		else
			printf '%s\t%s\t%s\n' "$spec" "$a" "$b" >>"$OUT/enforce-differences"
		fi
	done < <(joined runc harden | awk -F'\t' '$2 == "passed" && $3 != "passed"')
	{
		echo "passing with runc, not with harden (enforce): $(wc -l <"$OUT/enforce-differences")"
		while IFS=$'\t' read -r spec a b; do
			echo "  $spec"
			show harden "$b" "$spec"
			d=$(decisions_during "$OUT/harden" "$spec")
			again=("$OUT/retries/harden/$(slug "$spec")".*)
			if [[ -z $d && -d ${again[-1]} ]]; then
				d=$(decisions_during "${again[-1]}" "$spec") # the main run's window had none
			fi
			echo "    harden's decisions while it ran:"
			echo "${d:-      (none)}"
		done <"$OUT/enforce-differences"
		joined runc harden | awk -F'\t' '$2 != "passed" && $3 == "passed" {print "  passes only with harden: " $1}'
	} | tee "$OUT/enforce-explained.txt"
	if [[ -f $OUT/harden/decisions.log ]]; then
		echo "enforce refusals by rule (decision log):"
		jq -r 'select(.result == "refused" or .result == "error") | (.violations // [{rule: "error"}])[] | .rule' "$OUT/harden/decisions.log" |
			sort | uniq -c | sort -rn | sed 's/^/  /'
	fi
fi
if [[ -s $OUT/flaky ]]; then
	echo "flaky (differed once, then passed when run again alone; not counted as differences):"
	sed 's/^/  /' "$OUT/flaky"
fi
echo "results: $OUT"
exit $status
