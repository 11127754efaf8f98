#!/usr/bin/env bash
# node.sh: issue 7's node-level benchmarks, in start.sh's style (private
# containerd instances, variants interleaved round by round with the order
# rotating, medians and p95, ratios against io.containerd.runc.v2):
#
#   start  `ctr run --rm busybox true`, start to exit, for
#            runc.v2         containerd's runc shim, runc 1.4
#            runc.v2-a       the same on the second containerd (below), the
#                            control for runc-audit, which runs there
#            harden-audit    harden's shim, audit-mode policy (harden's own cost)
#            harden-enforce  harden's shim, embedded default policy (baseline)
#            runc-audit      the runc shim with BinaryName = harden-runc, audit
#            runc-enforce    the same, enforce (embedded default policy)
#            crun, runsc     crun 1.8 and runsc (gVisor) under the runc shim,
#                            without harden: the runtimes' own cost
#            harden-crun     harden's shim, enforce, a rule picking backend crun
#            harden-runsc    harden's shim, enforce, a rule picking backend runsc
#          ratios against runc.v2, and harden-crun/crun, harden-runsc/runsc,
#          runc-audit/runc.v2-a (harden-runc against runc on one containerd);
#          then one trivial invocation of each runtime binary (`list`)
#   cri    CRI (crictl) create + start of a busybox `true` until it exited,
#          in one pod per handler (CNI bridge network; set up once):
#          runc, harden (enforce), harden-audit
#   exec   `ctr task exec true` in one long-running container per variant
#   conc   $CONC `ctr run --rm true` at once: wall time of the batch, and
#          all must succeed (runc.v2, harden and harden-runc, audit and enforce)
#   rss    shim memory of a `ctr run -d` sleeping container: VmRSS, PSS
#          (shared pages divided among the processes mapping them) and
#          private memory
#   scale  start latency with N containers already running (N in $SCALE_NS),
#          runc.v2 against harden (audit, enforce)
#
# At the end: harden's own time per decision (hardenMicros in the decision
# records the run wrote), median and p95 per section, variant and event.
#
# Both runtimes of each crun and runsc pair run through the same kind of sh
# script: runsc needs global flags under the runc shim (--network=none here,
# see test/e2e/runtimes_test.go), which harden's shim puts in a script
# (node.Config.RuntimeBinary) and the baseline in an equivalent one; crun 1.8
# refuses the spec ctr writes (ociVersion 1.3.0: "unknown version specified"),
# which harden adapts and the baseline's script rewrites (sed) before create.
# harden-crun's CrunPath is that same script, so the pair differs by harden
# only. The start section times the scripts' own cost (`crun` against the
# script, one `list`).
#
# containerd passes its environment (HARDEN_CONFIG) to the shims and, through
# the runc shim, to harden-runc, so the mode of harden-runc is fixed per
# containerd: a second private containerd, whose HARDEN_CONFIG names an
# audit-mode policy, serves runc-audit. Both are idle while the other works,
# so the interleaving still holds. Everything (containers, pods, shims, both
# containerds, mounts) is removed at the end, also on failure or Ctrl-C.
#
#   test/bench/node.sh [SECTION...]      (default: start cri exec conc rss scale)
#   ROUNDS=30 CRI_ROUNDS=$ROUNDS EXEC_ROUNDS=40 CONC_ROUNDS=5 CONC=20 RSS_N=3
#   SCALE_ROUNDS=10 SCALE_NS="1 50 200" BG_BATCH=10 INV_RUNS=30
#   (the defaults: about 12 min on 2 quiet vCPUs, estimated; each section prints its time)
#   HARDEN_BENCH_BIN=DIR   harden's binaries (default: the repo's bin/)
#   KEEP=1                 keep the work directory (logs, raw timings)
# shellcheck disable=SC2317 # functions called through interleave and batch
set -Eeuo pipefail
trap 'echo "node.sh: line $LINENO failed: $BASH_COMMAND" >&2' ERR
export LC_ALL=C # EPOCHREALTIME with a '.', sort -n
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
sections=("$@")
((${#sections[@]})) || sections=(start cri exec conc rss scale)
ROUNDS=${ROUNDS:-30} CRI_ROUNDS=${CRI_ROUNDS:-${ROUNDS}} EXEC_ROUNDS=${EXEC_ROUNDS:-40}
CONC_ROUNDS=${CONC_ROUNDS:-5} CONC=${CONC:-20} RSS_N=${RSS_N:-3} INV_RUNS=${INV_RUNS:-30}
SCALE_ROUNDS=${SCALE_ROUNDS:-10} SCALE_NS=${SCALE_NS:-"1 50 200"} BG_BATCH=${BG_BATCH:-10}
HARDEN_CACHE=${HARDEN_CACHE:-/var/cache/harden}
# shellcheck source=/dev/null
source "$HARDEN_CACHE/env.sh"
bin=$(cd "${HARDEN_BENCH_BIN:-$repo/bin}" && pwd)
wrapper=$bin/harden-runc
[[ -x $wrapper && -x $bin/containerd-shim-harden-v2 ]] ||
	{ echo "no harden-runc and containerd-shim-harden-v2 in $bin: run make build (or set HARDEN_BENCH_BIN)" >&2; exit 1; }
for s in "${sections[@]}"; do
	case $s in
	start | runcstart | cri | exec | conc | rss | scale) ;; # runcstart: start's earlier name
	*) echo "unknown section $s (start cri exec conc rss scale)" >&2; exit 2 ;;
	esac
done

# The work dir holds containerd's root and state, the bundles and harden's
# state. BENCH_TMPDIR moves it (e.g. to a tmpfs, as a node's /run/containerd
# is, where the atomic writes' fsync costs nothing); not under /dev or any
# path the policy refuses as a bind-mount source, or CRI pods are refused.
bench_tmp=${BENCH_TMPDIR:-/tmp}
[[ -d $bench_tmp && -w $bench_tmp ]] || bench_tmp=/tmp
work=$(mktemp -d "$bench_tmp/hnode.XXXXXX")
mkdir -p "$work/log" "$work/err" "$work/rt"

# batch N FN ARG...: FN ARG for every ARG, N at a time in the background;
# fails when one did.
batch() {
	local n=$1 fn=$2 a p fails=0
	shift 2
	local pids=()
	for a; do
		"$fn" "$a" &
		pids+=($!)
		((${#pids[@]} < n)) && continue
		for p in "${pids[@]}"; do wait "$p" || fails=$((fails + 1)); done
		pids=()
	done
	for p in "${pids[@]}"; do wait "$p" || fails=$((fails + 1)); done
	((fails == 0))
}

# Removal, by containerd's records: every task and container of namespace
# default, pods through the CRI; then what a runtime other than runc keeps
# (containerd.sh stop force-deletes leftovers with runc only).
rm_ctr() { # rm_ctr ID (addr set): kill and delete the task, remove the container
	"$HARDEN_CTR" --address "$addr" task rm -f "$1" >/dev/null 2>&1 || true
	"$HARDEN_CTR" --address "$addr" c rm "$1" >/dev/null 2>&1 || true
}
cleanup() {
	set +e
	trap '' PIPE # the reader (tee) may be gone after a Ctrl-C
	local c b ns id r
	for c in c a; do
		addr=$work/$c/containerd.sock
		[[ -S $addr ]] || continue
		if [[ $c == c ]]; then
			"$HARDEN_CRICTL" --config "$work/c/crictl.yaml" rmp --all --force >/dev/null 2>&1
		fi
		# shellcheck disable=SC2046
		batch "$BG_BATCH" rm_ctr $("$HARDEN_CTR" --address "$addr" c ls -q 2>/dev/null)
		for b in "$work/$c/state/io.containerd.runtime.v2.task"/*/*; do
			[[ -d $b ]] || continue
			id=${b##*/} ns=${b%/*} ns=${ns##*/}
			for r in "$HARDEN_RUNSC" "$HARDEN_CRUN"; do
				[[ -x $r ]] && "$r" --root "$work/$c/runc/$ns" delete --force "$id" >/dev/null 2>&1
			done
		done
		"$repo/test/env/containerd.sh" stop "$work/$c" >>"$work/stop.log" 2>&1 ||
			{ echo "containerd.sh stop $work/$c failed:" >&2; tail -5 "$work/stop.log" >&2; }
	done
	if [ -n "${KEEP:-}" ]; then echo "kept $work" >&2; else rm -rf --one-file-system "$work"; fi
}
trap cleanup EXIT
trap 'echo "node.sh: interrupted; cleaning up" >&2; exit 130' INT TERM HUP

# Runtime scripts (see the header): runsc with the flags that work here,
# crun with the spec version crun 1.8 accepts. Same content as the script
# harden writes for runsc.
runsc_flags=(--oci-seccomp --network=none)
printf '#!/bin/sh\n# node.sh: runsc with its global flags, as harden writes it\nexec %s"$@"\n' \
	"$(printf "'%s' " "$HARDEN_RUNSC" "${runsc_flags[@]}")" >"$work/rt/runsc"
cat >"$work/rt/crun" <<SH
#!/bin/sh
# node.sh: crun 1.8.1 refuses ociVersion > 1.1 ("unknown version specified");
# on create and run, lower the bundle's ociVersion (harden's crun adaptation
# does the same) before exec'ing crun.
b= prev=
for a; do
	case \$prev in --bundle | -b) b=\$a ;; esac
	case \$a in --bundle=*) b=\${a#--bundle=} ;; esac
	prev=\$a
done
[ -z "\$b" ] || sed -i 's/"ociVersion": *"[^"]*"/"ociVersion":"1.1.0"/' "\$b/config.json"
exec '$HARDEN_CRUN' "\$@"
SH
chmod 0755 "$work/rt/runsc" "$work/rt/crun"

# Policies (root-owned, not group/other-writable, as harden requires).
policy() { # policy NAME MODE [BACKEND]
	{
		printf 'apiVersion: harden.dev/v1alpha1\nkind: Policy\nfailurePolicy: deny\n'
		printf 'defaults: {profile: baseline, mode: %s, backend: runc}\n' "$2"
		[[ -z ${3:-} ]] || printf 'rules:\n  - name: bench-%s\n    match: {engineNamespaces: [default]}\n    profile: baseline\n    backend: %s\n' "$3" "$3"
	} >"$work/$1.yaml"
	chmod 0644 "$work/$1.yaml"
}
policy audit audit
policy crun enforce crun
policy runsc enforce runsc
# Node configurations (HARDEN_CONFIG) of the two containerds: c runs harden
# with the embedded default policy, a with the audit policy. Decision logs
# per containerd, per shim variant and per CRI handler tell the variants
# apart (in c's log by the record's entry: shim or harden-runc).
# A PolicyPath that does not exist means the embedded default policy, also
# on a host with an /etc/harden/policy.yaml.
cat >"$work/enforce.toml" <<TOML
PolicyPath = "$work/embedded-default-policy.yaml"
DecisionLog = "$work/log/c.log"
StateDir = "$work/state"
Root = "$work/c/runc"
BinaryName = "$HARDEN_RUNC"
TOML
cat >"$work/audit.toml" <<TOML
PolicyPath = "$work/audit.yaml"
DecisionLog = "$work/log/a.log"
StateDir = "$work/state-a"
Root = "$work/a/runc"
BinaryName = "$HARDEN_RUNC"
TOML
# `ctr run --runtime-config-path` files: merged over c's node configuration.
printf 'PolicyPath = "%s"\nDecisionLog = "%s"\n' "$work/audit.yaml" "$work/log/harden-audit.log" >"$work/v-harden-audit.toml"
printf 'PolicyPath = "%s"\nDecisionLog = "%s"\nCrunPath = "%s"\n' "$work/crun.yaml" "$work/log/harden-crun.log" "$work/rt/crun" >"$work/v-harden-crun.toml"
printf 'PolicyPath = "%s"\nDecisionLog = "%s"\nRunscPath = "%s"\nRunscFlags = [%s]\n' "$work/runsc.yaml" "$work/log/harden-runsc.log" \
	"$HARDEN_RUNSC" "$(printf '"%s", ' "${runsc_flags[@]}" | sed 's/, $//')" >"$work/v-harden-runsc.toml"
# CRI handlers on c (containerd.sh appends this to its config).
cri_handler() { # cri_handler NAME [TOML LINE...]
	local h=$1 l
	shift
	printf '[plugins."io.containerd.cri.v1.runtime".containerd.runtimes.%s]\n  runtime_type = "io.containerd.harden.v2"\n' "\"$h\""
	printf '  [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.%s.options]\n' "\"$h\""
	printf '    Root = "@DIR@/runc"\n    BinaryName = "%s"\n    StateDir = "%s"\n    RuntimeHandler = "%s"\n' "$HARDEN_RUNC" "$work/state" "$h"
	printf '    DecisionLog = "%s"\n' "$work/log/cri-$h.log"
	for l; do printf '    %s\n' "$l"; done
}
{ cri_handler harden; cri_handler harden-audit "PolicyPath = \"$work/audit.yaml\""; } >"$work/cri-extra.toml"

# Both shims run from copies private to this run: containerd finds them
# first on its PATH (HARDEN_EXTRA_PATH). Other users' shims of the same
# files would otherwise share their pages (the rss section's PSS).
mkdir -p "$work/shims"
cp "$bin/containerd-shim-harden-v2" "$HARDEN_SHIM_RUNC" "$work/shims/"
HARDEN_CONFIG=$work/enforce.toml HARDEN_EXTRA_PATH=$work/shims "$repo/test/env/containerd.sh" start "$work/c" "$work/cri-extra.toml" >"$work/start-c.log" 2>&1 ||
	{ cat "$work/start-c.log" >&2; exit 1; }
HARDEN_CONFIG=$work/audit.toml HARDEN_EXTRA_PATH=$work/shims "$repo/test/env/containerd.sh" start "$work/a" >"$work/start-a.log" 2>&1 ||
	{ cat "$work/start-a.log" >&2; exit 1; }

# args VARIANT: sets addr, fifo and the ctr run flags of VARIANT.
args() {
	addr=$work/c/containerd.sock
	local dir=$work/c
	case $1 in
	runc.v2) rargs=(--runtime io.containerd.runc.v2) ;;
	harden-audit | harden-crun | harden-runsc) rargs=(--runtime io.containerd.harden.v2 --runtime-config-path "$work/v-$1.toml") ;;
	harden-enforce) rargs=(--runtime io.containerd.harden.v2) ;;
	runc-enforce) rargs=(--runtime io.containerd.runc.v2 --runc-binary "$wrapper") ;;
	runc-audit) dir=$work/a addr=$work/a/containerd.sock rargs=(--runtime io.containerd.runc.v2 --runc-binary "$wrapper") ;;
	runc.v2-a) dir=$work/a addr=$work/a/containerd.sock rargs=(--runtime io.containerd.runc.v2) ;;
	crun | runsc) rargs=(--runtime io.containerd.runc.v2 --runc-binary "$work/rt/$1") ;;
	*) echo "unknown variant $1" >&2; exit 1 ;;
	esac
	fifo=$dir/fifo # ctr's default is the host's /run/containerd/fifo
	rargs=(--runc-root "$dir/runc" --fifo-dir "$fifo" "${rargs[@]}")
}
# ctr_ runs ctr in the background and waits for it: `ctr run` catches
# SIGINT (to forward it to the container) and exits normally, and bash then
# ignores the Ctrl-C its foreground child handled; a wait returns at once
# and lets the INT trap end the run (commands started with & ignore SIGINT).
ctr_() {
	"$HARDEN_CTR" --address "$addr" "$@" &
	wait $!
}
crictl_() { "$HARDEN_CRICTL" --config "$work/c/crictl.yaml" "$@"; }
# stats FILE [DIV]: median, p95 and count of the numbers in FILE, divided by DIV (default 1000: µs -> ms)
stats() { sort -n "$1" | awk -v d="${2:-1000}" '{v[NR] = $1} END {if (!NR) {print "- - 0"; exit} m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; p = v[int(NR * 0.95 + 0.5)]; if (p == "") p = v[NR]; printf "%.1f %.1f %d\n", m / d, p / d, NR}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (b + 0 == 0) print "-"; else printf "%.3f", a / b}'; }
# report TITLE DIR BASE VARIANT...: median and p95 (µs in DIR/VARIANT.txt, shown in ms), ratio to BASE
report() {
	local title=$1 d=$2 base=$3 bm m p n v
	shift 3
	read -r bm _ _ < <(stats "$d/$base.txt")
	printf '\n%-40s %10s %10s %5s %14s\n' "$title" "median ms" "p95 ms" "n" "ratio"
	for v; do
		read -r m p n < <(stats "$d/$v.txt")
		printf '%-40s %10s %10s %5s %14s\n' "$v" "$m" "$p" "$n" "$(ratio "$m" "$bm")"
	done
}
# pairs DIR A/B...: the ratio of A's median to B's
pairs() {
	local d=$1 ab ma mb
	shift
	for ab; do
		read -r ma _ _ < <(stats "$d/${ab%/*}.txt")
		read -r mb _ _ < <(stats "$d/${ab#*/}.txt")
		printf '%-40s %10s %10s %5s %14s\n' "${ab%/*} / ${ab#*/}" "" "" "" "$(ratio "$ma" "$mb")"
	done
}
# interleave ROUNDS FN VARIANT...: FN VARIANT ROUND, order rotating each round
interleave() {
	local rounds=$1 fn=$2 i k nv
	shift 2
	local vs=("$@")
	nv=${#vs[@]}
	for ((i = 1; i <= rounds; i++)); do
		for ((k = 0; k < nv; k++)); do
			"$fn" "${vs[$(((i + k) % nv))]}" "$i"
		done
	done
}
us() { echo "${EPOCHREALTIME/./}"; } # wall clock, microseconds

# Decision records: mark remembers how far each log has been read; harvest
# SECTION appends "SECTION VARIANT EVENT MICROS" for the records since.
declare -A seen
mark() {
	local f
	for f in "$work"/log/*.log; do [[ -f $f ]] && seen[$f]=$(wc -l <"$f"); done
	return 0
}
harvest() {
	local f tag
	for f in "$work"/log/*.log; do
		[[ -f $f ]] || continue
		tag=${f##*/} tag=${tag%.log}
		tail -n +$((${seen[$f]:-0} + 1)) "$f" | jq -r --arg s "$1" --arg t "$tag" '
			[$s,
			 (if $t == "c" then (if .entry == "harden-runc" then "runc-enforce" else "harden-enforce" end)
			  elif $t == "a" then "runc-audit" else $t end),
			 .event, (.hardenMicros // "-" | tostring)] | @tsv' >>"$work/micros.tsv"
	done
	mark
}

# run_rm VARIANT ID: one `ctr run --rm true`, microseconds appended to $out/VARIANT.txt
run_rm() {
	local t0 t1
	args "$1"
	t0=$(us)
	ctr_ run --rm "${rargs[@]}" "$HARDEN_BUSYBOX_IMAGE" "$2" true >/dev/null 2>"$work/err/$2" ||
		{ echo "ctr run $1 $2 failed: $(cat "$work/err/$2")" >&2; exit 1; }
	t1=$(us)
	echo $((t1 - t0)) >>"$out/$1.txt"
}
# run_d VARIANT ID: a sleeping container
run_d() {
	args "$1"
	ctr_ run -d "${rargs[@]}" "$HARDEN_BUSYBOX_IMAGE" "$2" sleep 100000 >/dev/null 2>"$work/err/$2" ||
		{ echo "ctr run -d $1 $2 failed: $(cat "$work/err/$2")" >&2; exit 1; }
}
rm_d() { args "$1"; rm_ctr "$2"; } # rm_d VARIANT ID

sec_start() {
	out=$work/start
	mkdir -p "$out"
	local all=(runc.v2 harden-audit harden-enforce runc.v2-a runc-audit runc-enforce crun harden-crun runsc harden-runsc) v
	for v in "${all[@]}"; do run_rm "$v" "warm-$v"; : >"$out/$v.txt"; done
	mark
	start_round() { run_rm "$1" "s-$1-$2"; }
	interleave "$ROUNDS" start_round "${all[@]}"
	harvest start
	report "ctr run --rm, $ROUNDS rounds" "$out" runc.v2 "${all[@]}"
	pairs "$out" harden-crun/crun harden-runsc/runsc runc-audit/runc.v2-a
	# Where harden-runc's time goes: the runc shim runs its binary several
	# times per container; and what the crun script adds to both crun
	# variants. One trivial invocation of each, in an empty root.
	local b t0 t1 i
	mkdir -p "$work/inv/root"
	local bins=("$HARDEN_RUNC" "$wrapper" "$HARDEN_CRUN" "$work/rt/crun") names=(runc harden-runc crun "crun script")
	for ((i = 0; i < INV_RUNS; i++)); do
		for b in 0 1 2 3; do
			t0=$(us)
			HARDEN_CONFIG=$work/enforce.toml "${bins[b]}" --root "$work/inv/root" list >/dev/null
			t1=$(us)
			echo $((t1 - t0)) >>"$work/inv/$b.txt"
		done
	done
	printf '\n%-40s %10s %10s %5s\n' "one \`BIN --root R list\`, $INV_RUNS runs" "median ms" "p95 ms" "n"
	for b in 0 1 2 3; do
		read -r m p n < <(stats "$work/inv/$b.txt")
		printf '%-40s %10s %10s %5s\n' "${names[b]}" "$m" "$p" "$n"
	done
}

# cri_one HANDLER ROUND: crictl create + start of `true` in HANDLER's pod,
# timed until the container exited (the exit time the shim reported,
# status.finishedAt, so the polling does not blur it); and until crictl
# start returned.
cri_one() {
	local h=$1 t0 t1 id st fin code i
	printf '{"metadata": {"name": "b-%s"}, "image": {"image": "%s"}, "command": ["true"]}\n' "$2" "$HARDEN_BUSYBOX_IMAGE" >"$work/cri-ctr.json"
	t0=$(us)
	if ! id=$(crictl_ create --no-pull "${pod[$h]}" "$work/cri-ctr.json" "$work/cri-pod-$h.json" 2>"$work/err/cri") ||
		! crictl_ start "$id" >/dev/null 2>"$work/err/cri"; then
		echo "CRI create/start on $h failed: $(cat "$work/err/cri")" >&2
		exit 1
	fi
	t1=$(us)
	for ((i = 0; ; i++)); do
		read -r st fin code < <(crictl_ inspect -o go-template --template '{{.status.state}} {{.status.finishedAt}} {{.status.exitCode}}' "$id" 2>/dev/null) || true
		[[ $st == CONTAINER_EXITED ]] && break
		((i < 1500)) || { echo "CRI container $id on $h did not exit within 30 s (state $st)" >&2; exit 1; }
		sleep 0.02
	done
	[[ $code == 0 ]] || { echo "CRI container $id on $h exited with $code" >&2; exit 1; }
	fin=$(date -d "$fin" +%s%N)
	echo $((fin / 1000 - t0)) >>"$out/$h.txt"
	echo $((t1 - t0)) >>"$out/started/$h.txt"
	crictl_ rm "$id" >/dev/null 2>&1
}

sec_cri() {
	out=$work/cri
	mkdir -p "$out/started"
	local hs=(runc harden harden-audit) h
	declare -gA pod
	for h in "${hs[@]}"; do
		# a pod network from containerd.sh's CNI bridge (harden's baseline
		# refuses host network); the pod is set up once, outside the timing
		printf '{"metadata": {"name": "bench-%s", "namespace": "bench", "uid": "bench-%s-%s", "attempt": 0}}\n' \
			"$h" "$h" "$$" >"$work/cri-pod-$h.json"
		pod[$h]=$(crictl_ runp --runtime "$h" "$work/cri-pod-$h.json" 2>"$work/err/cri") ||
			{ echo "crictl runp --runtime $h failed: $(cat "$work/err/cri")" >&2; exit 1; }
	done
	for h in "${hs[@]}"; do cri_one "$h" warm; : >"$out/$h.txt"; : >"$out/started/$h.txt"; done
	mark
	interleave "$CRI_ROUNDS" cri_one "${hs[@]}"
	harvest cri
	for h in "${hs[@]}"; do
		crictl_ stopp "${pod[$h]}" >/dev/null 2>&1
		crictl_ rmp "${pod[$h]}" >/dev/null 2>&1
	done
	report "CRI create+start to exit, $CRI_ROUNDS rounds" "$out" runc "${hs[@]}"
	report "CRI create+start (start returned)" "$out/started" runc "${hs[@]}"
}

sec_exec() {
	out=$work/exec
	mkdir -p "$out"
	local vs=(runc.v2 harden-audit harden-enforce runc-audit runc-enforce) v
	for v in "${vs[@]}"; do run_d "$v" "x-$v"; done
	sleep 1
	for v in "${vs[@]}"; do args "$v"; ctr_ task exec --fifo-dir "$fifo" --exec-id warm "x-$v" true 2>/dev/null; : >"$out/$v.txt"; done
	exec_round() {
		local t0 t1
		args "$1"
		t0=$(us)
		ctr_ task exec --fifo-dir "$fifo" --exec-id "e$2" "x-$1" true 2>"$work/err/exec" ||
			{ echo "ctr task exec in x-$1 failed: $(cat "$work/err/exec")" >&2; exit 1; }
		t1=$(us)
		echo $((t1 - t0)) >>"$out/$1.txt"
	}
	mark
	interleave "$EXEC_ROUNDS" exec_round "${vs[@]}"
	harvest exec
	for v in "${vs[@]}"; do rm_d "$v" "x-$v"; done
	report "ctr task exec true, $EXEC_ROUNDS rounds" "$out" runc.v2 "${vs[@]}"
}

sec_conc() {
	out=$work/conc
	mkdir -p "$out"
	local vs=(runc.v2 harden-audit harden-enforce runc-audit runc-enforce) v
	: >"$work/conc-ok"
	conc_round() {
		local t0 t1 j pids=() fails=0
		args "$1"
		t0=$(us)
		for ((j = 1; j <= CONC; j++)); do
			ctr_ run --rm "${rargs[@]}" "$HARDEN_BUSYBOX_IMAGE" "c-$1-$2-$j" true >/dev/null 2>>"$out/$1.err" &
			pids+=($!)
		done
		for j in "${pids[@]}"; do wait "$j" || fails=$((fails + 1)); done
		t1=$(us)
		echo $((t1 - t0)) >>"$out/$1.txt"
		echo "$1 $((CONC - fails))" >>"$work/conc-ok"
	}
	for v in "${vs[@]}"; do conc_round "$v" 0; : >"$out/$v.txt"; done
	: >"$work/conc-ok"
	mark
	interleave "$CONC_ROUNDS" conc_round "${vs[@]}"
	harvest conc
	report "$CONC concurrent ctr run --rm, $CONC_ROUNDS rounds" "$out" runc.v2 "${vs[@]}"
	printf '%-40s' "succeeded"
	for v in "${vs[@]}"; do printf ' %s %s/%s;' "$v" "$(awk -v v="$v" '$1 == v {s += $2} END {print s + 0}' "$work/conc-ok")" $((CONC * CONC_ROUNDS)); done
	echo
	# the errors of failed creations, if any (ctr's cgroup v1 warning aside)
	cat "$out"/*.err 2>/dev/null | grep -v 'level=warning' | sort | uniq -c | head -5 || true
}

# shim_pid ID (addr set): the shim serving container ID, the parent of its
# init process (the shim is the subreaper of the container it runs)
shim_pid() {
	local pid ppid
	pid=$(ctr_ task ls 2>/dev/null | awk -v id="$1" '$1 == id {print $2}')
	[[ -n $pid && -r /proc/$pid/stat ]] || return 0
	ppid=$(sed 's/.*) //' "/proc/$pid/stat" | cut -d' ' -f2)
	[[ $(readlink "/proc/$ppid/exe") == */containerd-shim-* ]] && echo "$ppid"
	return 0
}
# mem PID: VmRSS RssAnon RssFile Pss Pss_Anon Pss_File Private (KiB)
mem() {
	{ grep -E '^(VmRSS|RssAnon|RssFile):' "/proc/$1/status"; grep -E '^(Pss|Pss_Anon|Pss_File|Private_Clean|Private_Dirty):' "/proc/$1/smaps_rollup"; } |
		awk '{k[$1] = $2} END {print k["VmRSS:"], k["RssAnon:"], k["RssFile:"], k["Pss:"], k["Pss_Anon:"], k["Pss_File:"], k["Private_Clean:"] + k["Private_Dirty:"]}'
}

sec_rss() {
	# runc.v2 gets twice RSS_N containers, so that each shim binary is mapped
	# by as many processes as the other (harden-audit and harden-enforce run
	# the same one): PSS divides a binary's shared pages among them. The
	# shims run from copies in the work dir (see shims/ above), so no other
	# user's shim of the same file takes a share.
	local vs=(runc.v2 harden-audit harden-enforce) v r pid exe col
	declare -A count=([runc.v2]=$((2 * RSS_N)) [harden-audit]=$RSS_N [harden-enforce]=$RSS_N) base
	for ((r = 1; r <= 2 * RSS_N; r++)); do
		for v in "${vs[@]}"; do
			if ((r <= count[$v])); then run_d "$v" "m-$v-$r"; fi
		done
	done
	sleep 3
	local cols=(VmRSS RssAnon RssFile Pss Pss_Anon Pss_File Private)
	printf '\nshim memory after 3 s, KiB, median per variant (Private = Private_Clean + Private_Dirty)\n'
	printf '%-16s' variant
	printf ' %9s' "${cols[@]}" "VmRSS/r" "Pss/r"
	printf '  shims  binary (processes running it)\n'
	for v in "${vs[@]}"; do
		: >"$work/mem-$v"
		args "$v"
		for ((r = 1; r <= count[$v]; r++)); do
			pid=$(shim_pid "m-$v-$r")
			[[ -n $pid ]] || { echo "no shim found for m-$v-$r" >&2; exit 1; }
			exe=$(readlink "/proc/$pid/exe")
			mem "$pid" >>"$work/mem-$v"
		done
		local meds=()
		for col in 1 2 3 4 5 6 7; do
			meds+=("$(cut -d' ' -f"$col" "$work/mem-$v" | sort -n | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}')")
		done
		if [[ $v == runc.v2 ]]; then base=([rss]=${meds[0]} [pss]=${meds[3]}); fi
		printf '%-16s' "$v"
		printf ' %9s' "${meds[@]}" "$(ratio "${meds[0]}" "${base[rss]}")" "$(ratio "${meds[3]}" "${base[pss]}")"
		printf '  %5s  %s (%s)\n' "${count[$v]}" "$exe" "$({ find /proc/[0-9]*/exe -maxdepth 0 -lname "$exe" 2>/dev/null || true; } | wc -l)"
	done
	for v in "${vs[@]}"; do printf '%-16s VmRSS %s; Pss %s\n' "$v" "$(cut -d' ' -f1 "$work/mem-$v" | tr '\n' ' ')" "$(cut -d' ' -f4 "$work/mem-$v" | tr '\n' ' ')"; done
	for v in "${vs[@]}"; do
		for ((r = 1; r <= count[$v]; r++)); do rm_d "$v" "m-$v-$r"; done
	done
}

sec_scale() {
	local vs=(runc.v2 harden-audit harden-enforce) n have=0 j t0
	bg_start() { run_d "${vs[$(($1 % 3))]}" "bg-$1"; }
	bg_rm() { rm_d "${vs[$(($1 % 3))]}" "bg-$1"; }
	for n in $SCALE_NS; do
		# background containers, a third under each variant, BG_BATCH at a time
		t0=$(us)
		batch "$BG_BATCH" bg_start $(seq $((have + 1)) "$n") || { echo "starting background containers failed" >&2; exit 1; }
		printf '\n(%s background containers started in %.1f s; %s MiB available)\n' $((n - have)) "$(ratio $(($(us) - t0)) 1000000)" \
			$(($(awk '/^MemAvailable/ {print $2}' /proc/meminfo) / 1024))
		have=$n
		out=$work/scale-$n
		mkdir -p "$out"
		for v in "${vs[@]}"; do run_rm "$v" "warm$n-$v"; : >"$out/$v.txt"; done
		scale_round() { run_rm "$1" "n$n-$1-$2"; }
		mark
		interleave "$SCALE_ROUNDS" scale_round "${vs[@]}"
		harvest "scale-$n"
		report "ctr run --rm with $n running, $SCALE_ROUNDS rounds" "$out" runc.v2 "${vs[@]}"
	done
	t0=$(us)
	batch "$BG_BATCH" bg_rm $(seq 1 "$have") || true
	printf '(%s background containers removed in %.1f s)\n' "$have" "$(ratio $(($(us) - t0)) 1000000)"
}

# hardenMicros: harden's own time per decision, from the records.
micros_report() {
	[[ -s $work/micros.tsv ]] || return 0
	printf '\n%-40s %10s %10s %5s %s\n' "hardenMicros (harden's own time)" "median µs" "p95 µs" "n" "without hardenMicros"
	# sections in run order; variants and events sorted within each
	awk -F'\t' '!($1 in sec) {sec[$1] = ++n} !k[$1 FS $2 FS $3]++ {print sec[$1] "\t" $1 "\t" $2 "\t" $3}' "$work/micros.tsv" |
		sort -t$'\t' -k1,1n -k3,3 -k4,4 | cut -f2- | while IFS=$'\t' read -r s v e; do
		awk -F'\t' -v s="$s" -v v="$v" -v e="$e" '$1 == s && $2 == v && $3 == e && $4 != "-" {print $4}' "$work/micros.tsv" >"$work/m.txt"
		read -r m p n < <(stats "$work/m.txt" 1)
		[[ $n == 0 ]] || { m=$(printf '%.0f' "$m") p=$(printf '%.0f' "$p"); }
		printf '%-40s %10s %10s %5s %s\n' "$s $v $e" "$m" "$p" "$n" \
			"$(awk -F'\t' -v s="$s" -v v="$v" -v e="$e" '$1 == s && $2 == v && $3 == e && $4 == "-" {c++} END {print c + 0}' "$work/micros.tsv")"
	done
}

echo "node.sh: $(date -u +%FT%TZ), load $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) CPUs, $(($(awk '/^MemAvailable/ {print $2}' /proc/meminfo) / 1024)) MiB available"
echo "sections: ${sections[*]}; ROUNDS=$ROUNDS CRI_ROUNDS=$CRI_ROUNDS EXEC_ROUNDS=$EXEC_ROUNDS CONC_ROUNDS=$CONC_ROUNDS CONC=$CONC RSS_N=$RSS_N SCALE_ROUNDS=$SCALE_ROUNDS SCALE_NS=\"$SCALE_NS\" BG_BATCH=$BG_BATCH INV_RUNS=$INV_RUNS"
echo "harden: $bin (harden-runc built $(date -u -r "$wrapper" +%FT%TZ), shim $(date -u -r "$bin/containerd-shim-harden-v2" +%FT%TZ); both shims run from copies in $work/shims)"
# crun makes its state root even for --version: give it one in the work dir, not /run/crun.
echo "containerd $("$HARDEN_CONTAINERD" --version | awk '{print $3}'), runc $("$HARDEN_RUNC" --version | awk 'NR == 1 {print $3}'), crun $("$HARDEN_CRUN" --root "$work/crun-version" --version | awk 'NR == 1 {print $3}'), runsc $("$HARDEN_RUNSC" --version | awk 'NR == 1 {print $3}') (flags ${runsc_flags[*]})"
for s in "${sections[@]}"; do
	[[ $s == runcstart ]] && s=start
	t0=$(us)
	"sec_$s"
	echo "($s: $((($(us) - t0) / 1000000)) s)"
done
micros_report
