#!/usr/bin/env bash
# node.sh: the rest of issue 7's node-level benchmarks, in start.sh's style
# (private containerd, variants interleaved round by round with the order
# rotating, medians and p95, ratios against io.containerd.runc.v2):
#
#   runcstart  `ctr run --rm busybox true` start to exit for runc.v2, the
#              harden shim (audit, enforce) and the runc shim with
#              BinaryName = bin/harden-runc (--runc-binary), audit and enforce
#   exec       `ctr task exec true` latency in one long-running container per
#              variant
#   conc       20 `ctr run --rm true` started at once: wall time of the batch,
#              and all 20 must succeed
#   rss        VmRSS of the shim process of a `ctr run -d` sleeping container
#   scale      start latency with N containers already running (N in $SCALE_NS)
#
# containerd passes its environment (HARDEN_CONFIG) to the shims and, through
# the runc shim, to harden-runc, so the mode of harden-runc is fixed per
# containerd: a second private containerd, whose HARDEN_CONFIG names an
# audit-mode policy, serves the harden-runc-audit variant. Both are idle
# while the other works, so the interleaving still holds.
#
#   test/bench/node.sh [SECTION...]      (default: runcstart exec conc rss scale)
#   ROUNDS=10 EXEC_ROUNDS=30 CONC_ROUNDS=3 SCALE_ROUNDS=8 SCALE_NS="1 50"
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
sections=("$@")
((${#sections[@]})) || sections=(runcstart exec conc rss scale)
ROUNDS=${ROUNDS:-10} EXEC_ROUNDS=${EXEC_ROUNDS:-30} CONC_ROUNDS=${CONC_ROUNDS:-3}
SCALE_ROUNDS=${SCALE_ROUNDS:-8} SCALE_NS=${SCALE_NS:-"1 50"} CONC=${CONC:-20}
HARDEN_CACHE=${HARDEN_CACHE:-/var/cache/harden}
# shellcheck source=/dev/null
source "$HARDEN_CACHE/env.sh"
wrapper=$repo/bin/harden-runc
[[ -x $wrapper && -x $repo/bin/containerd-shim-harden-v2 ]] || { echo "run make build first" >&2; exit 1; }

work=$(mktemp -d /tmp/hnode.XXXXXX)
cleanup() {
	set +e
	for c in c a; do
		[[ -S $work/$c/containerd.sock ]] || continue
		for id in $("$HARDEN_CTR" --address "$work/$c/containerd.sock" task ls -q 2>/dev/null); do
			"$HARDEN_CTR" --address "$work/$c/containerd.sock" task rm -f "$id" >/dev/null 2>&1
		done
		for id in $("$HARDEN_CTR" --address "$work/$c/containerd.sock" c ls -q 2>/dev/null); do
			"$HARDEN_CTR" --address "$work/$c/containerd.sock" c rm "$id" >/dev/null 2>&1
		done
		"$repo/test/env/containerd.sh" stop "$work/$c" >/dev/null 2>&1
	done
	[ -n "${KEEP:-}" ] || rm -rf "$work"
}
trap cleanup EXIT

# Node configurations: enforce (embedded default policy) and audit.
for m in enforce audit; do
	cat >"$work/$m.toml" <<TOML
DecisionLog = "$work/decisions-$m.log"
StateDir = "$work/state-$m"
Root = "$work/c/runc"
BinaryName = "$HARDEN_RUNC"
TOML
done
printf 'apiVersion: harden.dev/v1alpha1\nkind: Policy\ndefaults: {profile: baseline, mode: audit}\n' >"$work/audit.yaml"
chmod 0644 "$work/audit.yaml"
echo "PolicyPath = \"$work/audit.yaml\"" >>"$work/audit.toml"
# The second containerd keeps runc state under its own root.
sed -i "s|^Root = .*|Root = \"$work/a/runc\"|" "$work/audit.toml"
# the harden shim's audit variant on the main containerd: same Root as enforce
sed "s|^Root = .*|Root = \"$work/c/runc\"|" "$work/audit.toml" >"$work/shim-audit.toml"

HARDEN_CONFIG=$work/enforce.toml HARDEN_EXTRA_PATH=$repo/bin "$repo/test/env/containerd.sh" start "$work/c" >"$work/start-c.log" 2>&1 ||
	{ cat "$work/start-c.log" >&2; exit 1; }
HARDEN_CONFIG=$work/audit.toml HARDEN_EXTRA_PATH=$repo/bin "$repo/test/env/containerd.sh" start "$work/a" >"$work/start-a.log" 2>&1 ||
	{ cat "$work/start-a.log" >&2; exit 1; }

# args VARIANT: sets addr and the ctr run flags of VARIANT.
args() {
	addr=$work/c/containerd.sock
	local dir=$work/c
	case $1 in
	runc.v2) rargs=(--runtime io.containerd.runc.v2) ;;
	harden-audit) rargs=(--runtime io.containerd.harden.v2 --runtime-config-path "$work/shim-audit.toml") ;;
	harden-enforce) rargs=(--runtime io.containerd.harden.v2) ;;
	runc-enforce) rargs=(--runtime io.containerd.runc.v2 --runc-binary "$wrapper") ;;
	runc-audit) dir=$work/a addr=$work/a/containerd.sock rargs=(--runtime io.containerd.runc.v2 --runc-binary "$wrapper") ;;
	*) echo "unknown variant $1" >&2; exit 1 ;;
	esac
	rargs=(--runc-root "$dir/runc" --fifo-dir "$dir/fifo" "${rargs[@]}")
}
ctr_() { "$HARDEN_CTR" --address "$addr" "$@"; }
now() { date +%s%N; }
stats() { sort -n "$1" | awk '{v[NR] = $1} END {m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; p = v[int(NR * 0.95 + 0.5)]; if (p == "") p = v[NR]; printf "%.1f %.1f %d\n", m / 1000, p / 1000, NR}'; }
# report TITLE DIR VARIANT...: median, p95 (microseconds in DIR/VARIANT.txt, shown in ms), ratio
report() {
	local title=$1 d=$2 rm rp n m p
	shift 2
	read -r rm rp n < <(stats "$d/runc.v2.txt")
	printf '\n%-34s %10s %10s %6s %14s\n' "$title" "median ms" "p95 ms" "n" "median ratio"
	for v in "$@"; do
		read -r m p n < <(stats "$d/$v.txt")
		printf '%-34s %10s %10s %6s %14s\n' "$v" "$m" "$p" "$n" "$(awk -v a="$m" -v b="$rm" 'BEGIN {printf "%.3f", a / b}')"
	done
}
# interleave ROUNDS FN VARIANT...: FN VARIANT ROUND, order rotating each round
interleave() {
	local rounds=$1 fn=$2 i k nv
	shift 2
	local vs=("$@")
	nv=${#vs[@]}
	for i in $(seq 1 "$rounds"); do
		for k in $(seq 0 $((nv - 1))); do
			"$fn" "${vs[$(((i + k) % nv))]}" "$i"
		done
	done
}

# run_rm VARIANT ID: one `ctr run --rm true`, microseconds appended to $out/VARIANT.txt
run_rm() {
	local t0 t1
	args "$1"
	t0=$(now)
	ctr_ run --rm "${rargs[@]}" "$HARDEN_BUSYBOX_IMAGE" "$2" true >/dev/null 2>"$work/err" ||
		{ echo "ctr run $1 $2 failed: $(cat "$work/err")" >&2; exit 1; }
	t1=$(now)
	echo $(((t1 - t0) / 1000)) >>"$out/$1.txt"
}
start_round() { run_rm "$1" "s-$1-$2"; }

# run_d VARIANT ID: a sleeping container
run_d() {
	args "$1"
	ctr_ run -d "${rargs[@]}" "$HARDEN_BUSYBOX_IMAGE" "$2" sleep 100000 >/dev/null 2>"$work/err" ||
		{ echo "ctr run -d $1 $2 failed: $(cat "$work/err")" >&2; exit 1; }
}
rm_d() { # rm_d VARIANT ID
	args "$1"
	ctr_ task rm -f "$2" >/dev/null 2>&1 || true
	ctr_ c rm "$2" >/dev/null 2>&1 || true
}

all=(runc.v2 harden-audit harden-enforce runc-audit runc-enforce)

sec_runcstart() {
	out=$work/runcstart
	mkdir -p "$out"
	for v in "${all[@]}"; do run_rm "$v" "warm-$v"; : >"$out/$v.txt"; done
	interleave "$ROUNDS" start_round "${all[@]}"
	report "ctr run --rm, $ROUNDS rounds" "$out" "${all[@]}"
	# Where harden-runc's time goes: the runc shim runs its binary several
	# times per container; time one trivial invocation of each.
	local b t0 t1 i
	mkdir -p "$work/inv"
	for i in $(seq 1 30); do
		for b in "$HARDEN_RUNC" "$wrapper"; do
			t0=$(now)
			HARDEN_CONFIG=$work/enforce.toml "$b" --root "$work/c/runc/default" list >/dev/null
			t1=$(now)
			echo $(((t1 - t0) / 1000)) >>"$work/inv/${b##*/}.txt"
		done
	done
	printf '\n%-34s %10s %10s %6s\n' "one \`BIN --root R list\`, 30 runs" "median ms" "p95 ms" "n"
	for b in runc harden-runc; do
		read -r m p n < <(stats "$work/inv/$b.txt")
		printf '%-34s %10s %10s %6s\n' "$b" "$m" "$p" "$n"
	done
}

sec_exec() {
	out=$work/exec
	mkdir -p "$out"
	local vs=(runc.v2 harden-audit harden-enforce runc-audit runc-enforce) v
	for v in "${vs[@]}"; do run_d "$v" "x-$v"; done
	sleep 1
	for v in "${vs[@]}"; do args "$v"; ctr_ task exec --exec-id warm "x-$v" true 2>/dev/null; : >"$out/$v.txt"; done
	exec_round() {
		local t0 t1
		args "$1"
		t0=$(now)
		ctr_ task exec --exec-id "e$2" "x-$1" true 2>/dev/null
		t1=$(now)
		echo $(((t1 - t0) / 1000)) >>"$out/$1.txt"
	}
	interleave "$EXEC_ROUNDS" exec_round "${vs[@]}"
	for v in "${vs[@]}"; do rm_d "$v" "x-$v"; done
	report "ctr task exec true, $EXEC_ROUNDS rounds" "$out" "${vs[@]}"
}

sec_conc() {
	out=$work/conc
	mkdir -p "$out"
	local vs=(runc.v2 harden-enforce runc-enforce) v
	: >"$work/conc-fail"
	conc_round() {
		local t0 t1 j pids=() fails=0
		args "$1"
		t0=$(now)
		for j in $(seq 1 "$CONC"); do
			ctr_ run --rm "${rargs[@]}" "$HARDEN_BUSYBOX_IMAGE" "c-$1-$2-$j" true >/dev/null 2>>"$out/$1.err" &
			pids+=($!)
		done
		for j in "${pids[@]}"; do wait "$j" || fails=$((fails + 1)); done
		t1=$(now)
		echo $(((t1 - t0) / 1000)) >>"$out/$1.txt"
		echo "$1 round $2: $((CONC - fails))/$CONC succeeded" >>"$work/conc-fail"
	}
	for v in "${vs[@]}"; do conc_round "$v" 0; : >"$out/$v.txt"; done
	: >"$work/conc-fail"
	interleave "$CONC_ROUNDS" conc_round "${vs[@]}"
	report "$CONC concurrent ctr run --rm, $CONC_ROUNDS rounds" "$out" "${vs[@]}"
	cat "$work/conc-fail"
}

# shim_pid ID: the long-running shim serving container ID (its -id argument)
shim_pid() {
	local p
	for p in /proc/[0-9]*; do
		tr '\0' ' ' <"$p/cmdline" 2>/dev/null | grep -qE "^[^ ]*containerd-shim-[a-z]+-v2 .*-id $1 " || continue
		tr '\0' ' ' <"$p/cmdline" | grep -q ' start' && continue
		echo "${p#/proc/}"
		return
	done
}

sec_rss() {
	local vs=(runc.v2 harden-audit harden-enforce) v r pid
	printf '\n%-34s %s\n' "shim VmRSS after 3 s, KiB (3 containers each)" "values, median, ratio"
	for r in 1 2 3; do for v in "${vs[@]}"; do run_d "$v" "m-$v-$r"; done; done
	sleep 3
	declare -A med
	for v in "${vs[@]}"; do
		local vals=()
		for r in 1 2 3; do
			pid=$(shim_pid "m-$v-$r")
			vals+=("$(awk '/^VmRSS/ {print $2}' "/proc/$pid/status") ($(awk '/^RssAnon|^RssFile/ {printf "%s%s ", $1, $2}' "/proc/$pid/status")$(tr '\0' ' ' <"/proc/$pid/cmdline" | cut -d' ' -f1 | xargs basename))")
		done
		med[$v]=$(printf '%s\n' "${vals[@]}" | awk '{print $1}' | sort -n | sed -n 2p)
		printf '%-34s %s | median %s | ratio %s\n' "$v" "${vals[*]}" "${med[$v]}" "$(awk -v a="${med[$v]}" -v b="${med[runc.v2]}" 'BEGIN {printf "%.3f", a / b}')"
	done
	for r in 1 2 3; do for v in "${vs[@]}"; do rm_d "$v" "m-$v-$r"; done; done
}

sec_scale() {
	local vs=(runc.v2 harden-enforce) n have=0 j v
	for n in $SCALE_NS; do
		# background containers, half under each shim
		for j in $(seq $((have + 1)) "$n"); do
			v=${vs[$((j % 2))]}
			run_d "$v" "bg-$j-$v"
		done
		have=$n
		out=$work/scale-$n
		mkdir -p "$out"
		for v in "${vs[@]}"; do run_rm "$v" "warm$n-$v"; : >"$out/$v.txt"; done
		scale_round() { run_rm "$1" "n$n-$1-$2"; }
		interleave "$SCALE_ROUNDS" scale_round "${vs[@]}"
		report "ctr run --rm with $n running, $SCALE_ROUNDS rounds" "$out" "${vs[@]}"
	done
	for j in $(seq 1 "$have"); do v=${vs[$((j % 2))]}; rm_d "$v" "bg-$j-$v"; done
}

echo "node.sh: $(date -u +%FT%TZ), load $(cut -d' ' -f1-3 /proc/loadavg), harden bin built $(date -u -r "$wrapper" +%FT%TZ)"
for s in "${sections[@]}"; do
	t0=$(now)
	"sec_$s"
	echo "($s: $((($(now) - t0) / 1000000000)) s)"
done
