#!/usr/bin/env bash
# demo.sh: one busybox container started by containerd 2.4.2 (`ctr run`), once
# under the plain runc shim (io.containerd.runc.v2) and once under harden
# (io.containerd.harden.v2) with its embedded default policy. What it prints
# is what the kernel reports inside each, the decision harden recorded, and
# what harden refuses. `make demo` runs it after `make deps` and `make build`.
# Everything runs on a private containerd in a temp dir, removed at the end.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
HARDEN_CACHE=${HARDEN_CACHE:-/var/cache/harden}
# shellcheck source=/dev/null
source "$HARDEN_CACHE/env.sh"

bold=$'\e[1m' dim=$'\e[2m' off=$'\e[0m'
[[ -t 1 && -z ${NO_COLOR:-} ]] || bold='' dim='' off=''
say() { printf '\n%s== %s ==%s\n' "$bold" "$*" "$off"; }

work=$(mktemp -d /tmp/hdemo.XXXXXX)
cleanup() {
	"$here/env/containerd.sh" stop "$work/c" >/dev/null 2>&1 || true
	rm -rf "$work"
}
trap cleanup EXIT

# harden's node configuration for this demo: everything inside $work. With
# no PolicyPath and no /etc/harden/policy.yaml the embedded default applies.
cat >"$work/harden.toml" <<TOML
DecisionLog = "$work/decisions.log"
StateDir = "$work/state"
Root = "$work/c/runc"
TOML
export HARDEN_CONFIG=$work/harden.toml
HARDEN_EXTRA_PATH=$repo/bin "$here/env/containerd.sh" start "$work/c" >"$work/containerd-start.log" 2>&1 ||
	{ cat "$work/containerd-start.log" >&2; exit 1; }
# shellcheck source=/dev/null
source "$work/c/env.sh"
ctr() { "$HARDEN_CTR" --address "$CONTAINERD_ADDRESS" "$@" 2> >(grep -v DEPRECATION >&2); }

# The probe: what the kernel says about the container's process, and what
# a few escape steps get.
probe='
caps() { grep "^$1:" /proc/self/status | cut -f2; }
echo "CapBnd (bounding capabilities)=$(caps CapBnd)"
echo "CapEff (effective capabilities)=$(caps CapEff)"
echo "NoNewPrivs=$(caps NoNewPrivs)"
echo "Seccomp (0 off, 2 filter)=$(caps Seccomp)"
if unshare -U true 2>/dev/null; then echo "unshare a user namespace=allowed"; else echo "unshare a user namespace=blocked"; fi
if ping -c1 -W1 127.0.0.1 >/dev/null 2>&1; then echo "raw ICMP socket (ping)=allowed"; else echo "raw ICMP socket (ping)=blocked"; fi
if mknod /tmp/sda b 8 0 2>/dev/null; then echo "mknod a block device=allowed"; else echo "mknod a block device=blocked"; fi
if chroot / true 2>/dev/null; then echo "chroot=allowed"; else echo "chroot=blocked"; fi
'

say "The same busybox container, started with \`ctr run\` under the plain runc shim and under harden"
echo "${dim}containerd 2.4.2, runc 1.4.0; harden policy: embedded default (profile baseline, enforce)${off}"
ctr run --rm $HARDEN_CTR_RUN_FLAGS --runtime io.containerd.runc.v2 "$HARDEN_BUSYBOX_IMAGE" demo-plain sh -c "$probe" >"$work/plain.out"
ctr run --rm $HARDEN_CTR_RUN_FLAGS --runtime io.containerd.harden.v2 "$HARDEN_BUSYBOX_IMAGE" demo-hardened sh -c "$probe" >"$work/hardened.out"
printf '%s%-36s %-20s %-20s%s\n' "$bold" "what the kernel reports" "io.containerd.runc.v2" "io.containerd.harden.v2" "$off"
paste -d'\t' "$work/plain.out" "$work/hardened.out" | while IFS=$'\t' read -r b a; do
	printf '%-36s %-20s %-20s\n' "${b%%=*}" "${b#*=}" "${a#*=}"
done

say "Why: the decision harden recorded for demo-hardened (decision log, one JSON line per decision)"
jq -r 'select(.id == "demo-hardened") |
	"rule \(.decision.rule) -> profile \(.decision.profile), mode \(.decision.mode), backend \(.decision.backend): \(.result)",
	(.changes[] | "  \(.rule): \(.op) \(.path) \(if .op == "set" then "-> \(.after)" else (.before // .after | tostring) end | .[0:70])")' \
	"$work/decisions.log"

say "What harden refuses: \`ctr run --privileged\`"
ctr run --rm $HARDEN_CTR_RUN_FLAGS --privileged --runtime io.containerd.harden.v2 "$HARDEN_BUSYBOX_IMAGE" demo-privileged true 2>&1 |
	sed 's/; rule /;\n    rule /g' || true

echo
echo "${dim}Rerun: make demo. Try a spec: bin/hardenctl diff --spec spec/testdata/engines/docker29-default.json. Policy reference: docs/policy.md${off}"
