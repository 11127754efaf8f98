#!/usr/bin/env bash
# all.sh: what `make bench` runs, in one go on this machine: harden's
# in-process decision cost (Go benchmarks in profiles/), start.sh (ctr run
# start to exit, runc shim against harden's) and node.sh (every variant and
# section of issue 7). The output is printed and kept in
# $HARDEN_CACHE/bench/<UTC time>.txt.
#
#   test/bench/all.sh                       (make bench; about 15-20 min on 2 quiet vCPUs)
#   GO_BENCH_COUNT=6 START_ROUNDS=40 SECTIONS="start cri exec conc rss scale"
#   ROUNDS, CRI_ROUNDS, EXEC_ROUNDS, CONC_ROUNDS, CONC, RSS_N, SCALE_ROUNDS,
#   SCALE_NS, BG_BATCH, INV_RUNS, HARDEN_BENCH_BIN: passed on to node.sh
#   (and HARDEN_BENCH_BIN to start.sh); see there
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
HARDEN_CACHE=${HARDEN_CACHE:-/var/cache/harden}
export HARDEN_CACHE
GO=${GO:-go}
GO_BENCH_COUNT=${GO_BENCH_COUNT:-6}
START_ROUNDS=${START_ROUNDS:-40}
read -r -a sections <<<"${SECTIONS:-start cri exec conc rss scale}"
mkdir -p "$HARDEN_CACHE/bench"
out=$HARDEN_CACHE/bench/$(date -u +%Y%m%dT%H%M%SZ).txt

# run CMD...: print the command line, then run it
run() {
	printf '\n$ %s\n' "$*"
	"$@"
}

main() {
	local v set=()
	for v in GO_BENCH_COUNT START_ROUNDS SECTIONS ROUNDS CRI_ROUNDS EXEC_ROUNDS CONC_ROUNDS CONC RSS_N SCALE_ROUNDS SCALE_NS BG_BATCH INV_RUNS HARDEN_BENCH_BIN; do
		[[ -z ${!v:-} ]] && continue
		if [[ ${!v} == *[[:space:]]* ]]; then set+=("$v='${!v}'"); else set+=("$v=${!v}"); fi
	done
	if [[ -n ${MAKELEVEL:-} ]]; then
		echo "command: make bench${MAKEFLAGS:+ (MAKEFLAGS: $MAKEFLAGS)}"
	fi
	echo "command: ${set[*]:+${set[*]} }test/bench/all.sh"
	echo "started $(date -u +%FT%TZ) on $(hostname), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg); commit $(git -C "$repo" describe --always --dirty 2>/dev/null || echo unknown); output $out"
	cd "$repo"
	run "$GO" test -run '^$' -bench . -benchmem -count "$GO_BENCH_COUNT" ./profiles/...
	run test/bench/start.sh "$START_ROUNDS"
	run test/bench/node.sh "${sections[@]}"
	echo
	echo "finished $(date -u +%FT%TZ), load $(cut -d' ' -f1-3 /proc/loadavg); output in $out"
}

main 2>&1 | tee -i "$out" # -i: keep writing while node.sh cleans up after a Ctrl-C
