#!/usr/bin/env bash
# explain.sh prints, for each runc test that passes under plain runc but not under harden-runc with
# the enforce policy (the list bats.sh leaves in $CONFORMANCE_OUT/enforce-differences), what it
# takes to explain it: the test's failed assertion, the errors harden-runc and runc printed, and
# the decisions harden recorded for the test's containers (found by the test's private bundle
# directory, runc.XXXXXX, in its output), with the refusal or the changes by rule ID.
#
# Usage: test/conformance/explain.sh [OUT]   (default $CONFORMANCE_OUT, else $HARDEN_CACHE/conformance)
set -euo pipefail

HARDEN_CACHE=${HARDEN_CACHE:-/var/cache/harden}
OUT=${1:-${CONFORMANCE_OUT:-$HARDEN_CACHE/conformance}}
diffs=$OUT/enforce-differences
log=$OUT/enforce/decisions.log
[[ -f $diffs ]] || {
	echo "explain: no $diffs: run test/conformance/bats.sh first" >&2
	exit 2
}

# block prints a test's lines from a TAP file: from its result line to the next result.
block() {
	local tap=$1 name=$2
	tr -d '\r' <"$tap" | awk -v name="$name" '
		/^(not )?ok [0-9]+ / {
			line = $0; sub(/^(not )?ok [0-9]+ /, "", line); sub(/ # [sS][kK][iI][pP]( .*)?$/, "", line)
			inside = (line == name); if (inside) print; next
		}
		inside'
}

while IFS=$'\t' read -r test plain enforce; do
	[[ -n $test ]] || continue
	file=${test%%: *}
	name=${test#*: }
	echo "=== $test (plain runc: $plain, enforce: $enforce)"
	b=$(block "$OUT/enforce/tap/$file.tap" "$name")
	grep -E "failed|level=(error|warning)|harden" <<<"$b" | grep -v '^# --- teardown' | sed 's/^# */    /' | head -12 || true
	[[ -f $log ]] || continue
	for dir in $(grep -oE 'runc\.[A-Za-z0-9]{6}' <<<"$b" | sort -u); do
		jq -r --arg d "/$dir/" '
			select(.bundle != null and (.bundle | contains($d)))
			| "    decision: \(.event) \(.id): \(.result)"
			  + (if .error then " -- \(.error)" else "" end)
			  + (if (.violations // []) != [] then "\n      refused by: " + ([.violations[] | "\(.rule) (\(.field // "")): \(.reason // "")"] | unique | join("; ")) else "" end)
			  + (if (.changes // []) != [] then "\n      changes: " + ([.changes[] | "\(.rule) \(.path)"] | unique | join(", ")) else "" end)' \
			"$log" 2>/dev/null | head -12 || true
	done
	echo
done <"$diffs"
