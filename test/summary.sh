#!/usr/bin/env bash
# summary.sh passes `go test -v` output through and ends it with the line CI
# reads: "N passed, N failed, N skipped" (top-level tests). Skips are listed
# with their reasons so none goes unnoticed. The exit status comes from
# go test through pipefail in the Makefile. With HARDEN_SUMMARY set, the
# counts are also appended to that file, for `make test` to add up.
set -uo pipefail
awk '
{ print }
/^--- PASS: / { pass++ }
/^--- FAIL: / { fail++ }
/^--- SKIP: / { skip++; skipped = skipped "\n  " $3; getline; print; skipped = skipped ": " $0 }
END {
	if (skip > 0) printf "skipped tests:%s\n", skipped
	printf "%d passed, %d failed, %d skipped\n", pass, fail, skip
	if (ENVIRON["HARDEN_SUMMARY"] != "") printf "%d %d %d\n", pass, fail, skip >> ENVIRON["HARDEN_SUMMARY"]
}'
