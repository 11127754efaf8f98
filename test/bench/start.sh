#!/usr/bin/env bash
# start.sh: container start-to-exit latency, `ctr run --rm` of busybox `true`,
# interleaved in one run on one private containerd so all see the same
# machine noise:
#   runc.v2         io.containerd.runc.v2, containerd's own runc shim
#   harden-audit    io.containerd.harden.v2 with an audit-mode policy: harden
#                   decides and records but the spec is unchanged, so this is
#                   harden's own cost
#   harden-enforce  io.containerd.harden.v2 with the embedded default policy:
#                   harden's cost plus what the runtime spends applying the
#                   protections (seccomp filter, masked paths, ...)
# Prints median and p95 per variant and the ratios against runc.v2.
#
#   test/bench/start.sh [ROUNDS]     (default 40 rounds; each round runs all three, order rotating)
#   HARDEN_BENCH_BIN=DIR             harden's binaries (default: the repo's bin/)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
rounds=${1:-40}
HARDEN_CACHE=${HARDEN_CACHE:-/var/cache/harden}
# shellcheck source=/dev/null
source "$HARDEN_CACHE/env.sh"
bin=$(cd "${HARDEN_BENCH_BIN:-$repo/bin}" && pwd)
[[ -x $bin/containerd-shim-harden-v2 ]] ||
	{ echo "no containerd-shim-harden-v2 in $bin: run make build (or set HARDEN_BENCH_BIN)" >&2; exit 1; }

# The work dir holds containerd's root and state, the bundles and harden's
# state. BENCH_TMPDIR moves it (e.g. to a tmpfs, as a node's /run/containerd
# is, where the atomic writes' fsync costs nothing); not under /dev or any
# path the policy refuses as a bind-mount source, or CRI pods are refused.
bench_tmp=${BENCH_TMPDIR:-/tmp}
[[ -d $bench_tmp && -w $bench_tmp ]] || bench_tmp=/tmp
work=$(mktemp -d "$bench_tmp/hbench.XXXXXX")
cleanup() {
	"$repo/test/env/containerd.sh" stop "$work/c" >/dev/null 2>&1 || true
	[ -n "${KEEP:-}" ] || rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP
cat >"$work/harden.toml" <<TOML
DecisionLog = "$work/decisions.log"
StateDir = "$work/state"
Root = "$work/c/runc"
BinaryName = "$HARDEN_RUNC"
TOML
export HARDEN_CONFIG=$work/harden.toml
printf 'apiVersion: harden.dev/v1alpha1\nkind: Policy\ndefaults: {profile: baseline, mode: audit}\n' >"$work/audit.yaml"
chmod 0644 "$work/audit.yaml"
{ cat "$work/harden.toml"; echo "PolicyPath = \"$work/audit.yaml\""; } >"$work/audit.toml"
HARDEN_EXTRA_PATH=$bin "$repo/test/env/containerd.sh" start "$work/c" >"$work/start.log" 2>&1 ||
	{ cat "$work/start.log" >&2; exit 1; }
# shellcheck source=/dev/null
source "$work/c/env.sh"

one() { # one VARIANT ID: appends milliseconds*1000 to VARIANT.txt
	local t0 t1 args=(--runtime io.containerd.harden.v2)
	case $1 in
	runc.v2) args=(--runtime io.containerd.runc.v2) ;;
	harden-audit) args+=(--runtime-config-path "$work/audit.toml") ;;
	esac
	t0=$(date +%s%N)
	# in the background, so a Ctrl-C ends the run (node.sh's ctr_ says why)
	"$HARDEN_CTR" --address "$CONTAINERD_ADDRESS" run --rm $HARDEN_CTR_RUN_FLAGS "${args[@]}" "$HARDEN_BUSYBOX_IMAGE" "$2" true 2>/dev/null &
	wait $!
	t1=$(date +%s%N)
	echo $(((t1 - t0) / 1000)) >>"$work/$1.txt"
}
variants=(runc.v2 harden-audit harden-enforce)
for v in "${variants[@]}"; do one "$v" "warm-$v"; : >"$work/$v.txt"; done # image unpack, first shim start
for i in $(seq 1 "$rounds"); do
	# rotate the order so no variant always runs first
	for k in 0 1 2; do
		v=${variants[$(((i + k) % 3))]}
		one "$v" "$v-$i"
	done
done
stats() { sort -n "$1" | awk '{v[NR] = $1} END {m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; p = v[int(NR * 0.95 + 0.5)]; printf "%.1f %.1f\n", m / 1000, p / 1000}'; }
read -r rm rp < <(stats "$work/runc.v2.txt")
printf '%-30s %10s %10s %14s\n' "ctr run --rm, $rounds rounds" "median ms" "p95 ms" "median ratio"
for v in "${variants[@]}"; do
	read -r m p < <(stats "$work/$v.txt")
	printf '%-30s %10s %10s %14s\n' "$v" "$m" "$p" "$(awk -v a="$m" -v b="$rm" 'BEGIN {printf "%.3f", a / b}')"
done
