#!/usr/bin/env bash
# demo.sh: the same busybox container, as containerd's `ctr run` would create
# it, run under runc 1.4.0 before and after harden applies its embedded
# default policy. What it prints is what the kernel reports inside.
# `make demo` runs it after `make deps` and `make build`.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
HARDEN_CACHE=${HARDEN_CACHE:-/var/cache/harden}
# shellcheck source=/dev/null
source "$HARDEN_CACHE/env.sh"
hardenctl=$repo/bin/hardenctl
runc=$HARDEN_RUNC

bold=$'\e[1m' dim=$'\e[2m' off=$'\e[0m'
[[ -t 1 && -z ${NO_COLOR:-} ]] || bold='' dim='' off=''
say() { printf '\n%s== %s ==%s\n' "$bold" "$*" "$off"; }

work=$(mktemp -d /tmp/harden-demo.XXXXXX)
state=$work/runc-state
ids=()
cleanup() {
	for id in "${ids[@]}"; do "$runc" --root "$state" delete --force "$id" >/dev/null 2>&1 || true; done
	rm -rf "$work"
}
trap cleanup EXIT

# The probe the container runs: what the kernel says about this process.
probe='
caps() { grep "^$1:" /proc/self/status | cut -f2; }
echo "CapBnd=$(caps CapBnd)"
echo "CapEff=$(caps CapEff)"
echo "NoNewPrivs=$(caps NoNewPrivs)"
echo "Seccomp=$(caps Seccomp)"
echo "pids.max (fork bomb bound)=$(cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || echo ?)"
if awk "\$5 == \"/proc/interrupts\" { f = 1 } END { exit !f }" /proc/self/mountinfo; then echo "/proc/interrupts (IRQ side channel)=masked"; else echo "/proc/interrupts (IRQ side channel)=readable"; fi
if unshare -U true 2>/dev/null; then echo "unshare(user ns)=allowed"; else echo "unshare(user ns)=blocked"; fi
if ping -c1 -W1 127.0.0.1 >/dev/null 2>&1; then echo "raw ICMP socket (ping)=allowed"; else echo "raw ICMP socket (ping)=blocked"; fi
if mknod /tmp/sda b 8 0 2>/dev/null; then echo "mknod block device=allowed"; else echo "mknod block device=blocked"; fi
'

# make_bundle DIR ID: the captured ctr-run spec, pointed at a private busybox
# rootfs, with the probe as its process and a read-only cgroup mount added so
# the probe can read its own pids limit (ctr's spec has none on cgroup v1).
make_bundle() {
	local dir=$1 id=$2
	mkdir -p "$dir"
	cp -a "$HARDEN_IMAGES/busybox-rootfs" "$dir/rootfs"
	jq --arg root "$dir/rootfs" --arg cg "/harden-demo/$id" --arg probe "$probe" \
		'.root.path = $root | .linux.cgroupsPath = $cg | .process.terminal = false | .process.args = ["/bin/sh", "-c", $probe]
		 | .mounts += [{"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "ro"]}]' \
		"$repo/spec/testdata/engines/ctr-run-default.json" >"$dir/config.json"
}

run() { # run DIR ID
	ids+=("$2")
	"$runc" --root "$state" run --bundle "$1" "$2"
}

say "The container: busybox, with the spec containerd 2.4.2 writes for \`ctr run\` (no seccomp at all)"
echo "${dim}spec: spec/testdata/engines/ctr-run-default.json; policy: harden's embedded default (profile baseline, enforce)${off}"

make_bundle "$work/before" demo-before-$$
cp -a "$work/before/config.json" "$work/original.json"
make_bundle "$work/after" demo-after-$$

say "What harden does to it (hardenctl diff)"
"$hardenctl" diff --spec "$work/after/config.json" || true

"$hardenctl" apply --bundle "$work/after" >/dev/null

say "Inside the container: plain runc vs. hardened"
run "$work/before" demo-before-$$ >"$work/before.out"
run "$work/after" demo-after-$$ >"$work/after.out"
printf '%s%-38s %-20s %-20s%s\n' "$bold" "what the kernel reports" "before (plain)" "after (harden)" "$off"
paste -d'\n' "$work/before.out" "$work/after.out" | paste - - | while IFS=$'\t' read -r b a; do
	printf '%-38s %-20s %-20s\n' "${b%%=*}" "${b#*=}" "${a#*=}"
done

say "What harden refuses: a privileged container (CRI spec with privileged: true)"
"$hardenctl" diff --spec "$repo/spec/testdata/engines/cri-container-privileged.json" 2>/dev/null | sed -n '/^REFUSED/,$p' || true

echo
echo "${dim}Rerun with: make demo. Explain a decision: bin/hardenctl explain --spec FILE. Policy reference: docs/policy.md${off}"
