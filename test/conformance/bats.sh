#!/usr/bin/env bash
# bats.sh runs runc's own bats integration suite (tests/integration in the runc v1.4.0 Go module)
# against plain runc 1.4.0 and against bin/harden-runc, and compares them (issue 4):
#
#   1. plain     RUNC=$HARDEN_CACHE/bin/runc (runc 1.4.0)
#   2. audit     RUNC=bin/harden-runc, policy {defaults: {profile: baseline, mode: audit}},
#                BinaryName = the same runc 1.4.0
#   3. enforce   RUNC=bin/harden-runc, harden's embedded default policy (baseline, enforce)
#
# Gate: the set of tests passing in run 2 must EQUAL the set passing in run 1 (audit mode must
# change nothing); any difference is printed and the script exits 1. Run 3 does not gate: it
# lists each test that passes under plain runc but not under enforce, with the harden refusal or
# change found for it in the decision log, for docs/conformance.md.
#
# runc's source is never part of this repo: it is copied at run time out of the (read-only) Go
# module cache into $HARDEN_CACHE/src/runc-bats (prepared once, cached by a stamp), made
# writable, its *.sh given their run bit back, its helper binaries built inside the copy
# (tests/cmd/_bin), and tests/integration/testdata/busybox-amd64.tar.xz made from Debian's
# busybox-static with relative applet links (the suite's own get-images.sh would download one).
# The five files that need a Debian rootfs (hooks_so, idmap, ioprio, mounts_propagation,
# scheduler) use $HARDEN_CACHE/images/runc-bats-debian.tar.xz, a Debian 12 minbase that
# debootstrap builds the first time (about two minutes, from Debian's mirror; cached). With
# CONFORMANCE_DEBIAN=0 (or =auto and no cached rootfs) those files are left out of every run
# alike, and the summary says so.
#
# Each .bats file runs under a pseudo-terminal (several tests open /dev/tty):
#   script -qec "bats --tap tests/integration/FILE.bats" /dev/null
# with a per-file timeout. Some tests leave recvtty processes holding the pseudo-terminal, so a
# file's run does not end by itself: once its last result is printed, the recvtty processes this
# run started are ended by pid (every process the run starts carries HARDEN_CONFORMANCE_RUN=<id>
# in its environment, which is how they are told from anything else on the machine).
#
# Every container state goes to the suite's own private --root ($ROOT/state under a temp dir the
# run makes: tests/integration/helpers.bash), harden-runc's DecisionLog and StateDir to the same
# temp dir; it is all removed at the end. Results (TAP per file, results.tsv per run, decision
# logs, summary) stay in $CONFORMANCE_OUT (default $HARDEN_CACHE/conformance).
#
# A test whose result differs between plain runc and harden-runc (audit) is run again, alone, on
# the side where it did not pass, up to CONFORMANCE_RETRIES times (default 2): one that then
# passes is reported as flaky (a few of runc's tests wait on timing: delete.bats' "host pidns"
# ones on a loaded machine), not as a difference. One that never passes is a difference.
#
# Usage: test/conformance/bats.sh [-c] [-f REGEX] [-r RUNS] [FILE.bats ...]
#   -r RUNS     comma-separated subset of plain,audit,enforce (default all three)
#   -c          compare only: no new runs, use the results already in $CONFORMANCE_OUT
#   -f REGEX    only the files whose name matches (for debugging; the gate needs the full suite)
#   FILE.bats   only these files (ditto)
# Environment: HARDEN_CACHE (/var/cache/harden), CONFORMANCE_OUT, CONFORMANCE_FILE_TIMEOUT
# (seconds per .bats file, default 900), CONFORMANCE_DEBIAN (1|auto|0, default 1),
# CONFORMANCE_ENFORCE_FILES (space-separated .bats files for run 3; default: the same as run 1).
set -euo pipefail

HARDEN_CACHE=${HARDEN_CACHE:-/var/cache/harden}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=etc.sh
. "$here/etc.sh"
repo=$(cd "$here/../.." && pwd)
RUNC_VERSION=v1.4.0
RUNC_MODULE=github.com/opencontainers/runc
REAL_RUNC=$HARDEN_CACHE/bin/runc
HARDEN_RUNC=$repo/bin/harden-runc
WORK=$HARDEN_CACHE/src/runc-bats
DEBIAN_TAR=$HARDEN_CACHE/images/runc-bats-debian.tar.xz
OUT=${CONFORMANCE_OUT:-$HARDEN_CACHE/conformance}
FILE_TIMEOUT=${CONFORMANCE_FILE_TIMEOUT:-900}
RETRIES=${CONFORMANCE_RETRIES:-2}
DEBIAN_MODE=${CONFORMANCE_DEBIAN:-1}
# Bump when prepare() or make_busybox_tar() change what they make.
PREPARE_VERSION=3
DEBIAN_FILES=(hooks_so.bats idmap.bats ioprio.bats mounts_propagation.bats scheduler.bats)

log() { printf 'conformance: %s\n' "$*" >&2; }
die() {
	printf 'conformance: ERROR: %s\n' "$*" >&2
	exit 2
}

runs=plain,audit,enforce
filter=
compare_only=0
while getopts 'cr:f:h' opt; do
	case $opt in
	c) compare_only=1 ;;
	r) runs=$OPTARG ;;
	f) filter=$OPTARG ;;
	*) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2 ;;
	esac
done
shift $((OPTIND - 1))
selected=("$@")

[[ $EUID -eq 0 ]] || die "runc's suite runs as root"
# What the suite itself needs (helpers.bash runs gawk for every cgroup test). criu is left out on
# purpose: Debian 12's criu 3.17 cannot run on this kernel ("Failed to fill self vdso symtable"), so
# with it checkpoint.bats would fail for every runtime instead of skipping.
missing=()
for t in bats:bats script:bsdutils jq:jq gawk:gawk xz:xz-utils gcc:gcc; do
	command -v "${t%%:*}" >/dev/null || missing+=("${t#*:}")
done
if ((${#missing[@]})); then
	log "installing ${missing[*]}"
	DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}" >&2 || die "apt-get install ${missing[*]} failed"
fi
command -v go >/dev/null || die "go not found"
[[ -x $REAL_RUNC ]] || die "$REAL_RUNC not found: make deps builds runc $RUNC_VERSION there"
[[ $("$REAL_RUNC" --version | sed -n 1p) == "runc version ${RUNC_VERSION#v}" ]] || die "$REAL_RUNC is not runc ${RUNC_VERSION#v}"
[[ -x $HARDEN_RUNC ]] || die "$HARDEN_RUNC not found: make build"

# --- preparing the copy ---------------------------------------------------------------------

busybox_bin=/bin/busybox # Debian's busybox-static

# make_busybox_tar writes a busybox rootfs like the docker-library one runc's get-images.sh
# downloads (every applet in /bin), but with links relative to /bin/busybox.
make_busybox_tar() {
	local dest=$1 r
	r=$(mktemp -d)
	chmod 0755 "$r" # the container's / (mktemp makes it 0700: no user but root could run anything)
	# No /proc or /sys, as in the image runc's suite downloads (mask.bats replaces them by symlinks).
	mkdir -p "$r"/{bin,dev,etc,home,root,tmp,usr/sbin,var/spool/mail,var/www}
	chmod 1777 "$r/tmp"
	chmod 0700 "$r/root"
	install -m 0755 "$busybox_bin" "$r/bin/busybox"
	local a
	for a in $("$busybox_bin" --list); do
		[[ $a == busybox || -e $r/bin/$a ]] || ln -s busybox "$r/bin/$a"
	done
	write_image_etc "$r"
	touch "$r/etc/hostname" "$r/etc/hosts" "$r/etc/resolv.conf"
	tar --numeric-owner --owner=0 --group=0 --mtime=@1704067200 --sort=name -C "$r" -cJf "$dest.tmp" .
	mv -f "$dest.tmp" "$dest"
	rm -rf "$r"
}

# make_debian_tar builds a Debian 12 minbase rootfs with debootstrap (Debian's mirror), once.
make_debian_tar() {
	command -v debootstrap >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y debootstrap >&2
	local r
	r=$(mktemp -d "$HARDEN_CACHE/images/.debian.XXXXXX")
	log "debootstrap --variant=minbase bookworm (a few minutes, once)"
	debootstrap --variant=minbase bookworm "$r/rootfs" http://deb.debian.org/debian >"$r/debootstrap.log" 2>&1 ||
		{ tail -20 "$r/debootstrap.log" >&2; rm -rf "$r"; die "debootstrap failed"; }
	rm -rf "$r/rootfs/var/cache/apt/archives/"*.deb "$r/rootfs/var/lib/apt/lists/"*
	tar --numeric-owner -C "$r/rootfs" -cf - . | xz -T0 -1 >"$DEBIAN_TAR.tmp"
	mv -f "$DEBIAN_TAR.tmp" "$DEBIAN_TAR"
	rm -rf "$r"
}

prepare() {
	local moddir stamp want
	moddir=$(cd "$repo" && go mod download -json "$RUNC_MODULE@$RUNC_VERSION" | jq -r .Dir)
	[[ -d $moddir/tests/integration ]] || die "no tests/integration in $moddir"
	want=$({
		echo "$RUNC_MODULE@$RUNC_VERSION"
		echo "prepare $PREPARE_VERSION"
		sha256sum "$busybox_bin" | awk '{print $1}'
		go version
	} | sha256sum | awk '{print $1}')
	stamp=$WORK/.harden-stamp
	if [[ -f $stamp && $(cat "$stamp") == "$want" ]]; then
		log "runc's suite is prepared in $WORK"
	else
		log "copying $moddir to $WORK"
		rm -rf "$WORK"
		mkdir -p "$(dirname "$WORK")"
		cp -a "$moddir" "$WORK"
		chmod -R u+w "$WORK"
		find "$WORK" -name '*.sh' -exec chmod a+x {} +
		log "building the suite's helper binaries (tests/cmd/_bin)"
		# -tags seccomp as runc's Makefile (BUILDTAGS): without it seccompagent is a stub and
		# seccomp-notify.bats fails for every runtime.
		(cd "$WORK" && GOFLAGS=-mod=mod go build -tags "seccomp urfave_cli_no_docs" -o tests/cmd/_bin/ ./tests/cmd/...) ||
			die "building runc's tests/cmd failed"
		log "making testdata/busybox-amd64.tar.xz from $busybox_bin"
		make_busybox_tar "$WORK/tests/integration/testdata/busybox-amd64.tar.xz"
		echo "$want" >"$stamp"
	fi
	# The Debian rootfs: get-images.sh looks for testdata/debian-amd64.tar.xz and would download
	# it for every test file. Either the real one, or a stand-in so nothing is fetched (the tests
	# that use it are then not run, in any run).
	mkdir -p "$HARDEN_CACHE/images"
	if [[ $DEBIAN_MODE == 1 && ! -f $DEBIAN_TAR ]]; then
		make_debian_tar
	fi
	local deb=$WORK/tests/integration/testdata/debian-amd64.tar.xz
	rm -f "$deb"
	if [[ $DEBIAN_MODE != 0 && -f $DEBIAN_TAR ]]; then
		ln -s "$DEBIAN_TAR" "$deb"
		have_debian=1
	else
		tar -cJf "$deb" -T /dev/null
		have_debian=0
	fi
}

# --- running ----------------------------------------------------------------------------------

# marked lists the pids of processes whose environment carries this run's marker.
marked() {
	local id=$1 p
	for p in /proc/[0-9]*; do
		if { tr "\0" "\n" <"$p/environ"; } 2>/dev/null | grep -qxF "HARDEN_CONFORMANCE_RUN=$id"; then
			echo "${p#/proc/}"
		fi
	done
}

# end_marked ends (SIGKILL, by pid) the processes carrying the marker, optionally only those
# whose executable is $2; it prints what it ended.
end_marked() {
	local id=$1 only=${2:-} p exe
	for p in $(marked "$id"); do
		[[ $p == "$$" || $p == "$BASHPID" ]] && continue
		exe=$(readlink "/proc/$p/exe" 2>/dev/null) || continue
		[[ -n $only && $exe != "$only" ]] && continue
		kill -KILL "$p" 2>/dev/null && echo "$p $exe"
	done
}

# complete reports whether a TAP file has its plan and that many results.
complete() {
	local tap=$1 plan n
	plan=$(tr -d '\r' <"$tap" | sed -n 's/^1\.\.\([0-9]\+\)$/\1/p' | head -1)
	[[ -n $plan ]] || return 1
	n=$(tr -d '\r' <"$tap" | grep -cE '^(not )?ok [0-9]+ ' || true)
	((n >= plan))
}

# run_file runs one .bats file under a pseudo-terminal and waits for its last result.
run_file() {
	local name=$1 tap=$2 id=$3 spid start ended in fifo
	shift 3 # the rest: environment for the run (NAME=VALUE, or -u NAME)
	start=$SECONDS
	# script's stdin is a FIFO held open here, so it never sees end-of-file: at EOF script
	# sends the terminal an end-of-file character, which a container attached to the
	# terminal then reads (mounts_propagation.bats fails on a NUL byte in its output).
	fifo=$TMPDIR/stdin.$BASHPID
	mkfifo "$fifo"
	exec {in}<>"$fifo"
	: >"$tap"
	local cmd="bats --tap"
	[[ -n $bats_filter ]] && cmd+=" --filter $(printf %q "$bats_filter")"
	cmd+=" tests/integration/$name"
	(cd "$WORK" && exec env "$@" HARDEN_CONFORMANCE_RUN="$id" \
		script -qec "$cmd" /dev/null <&"$in" >"$tap" 2>&1) &
	spid=$!
	while kill -0 "$spid" 2>/dev/null; do
		if complete "$tap"; then
			# The last result is out: give bats a moment to finish its teardown, then end the
			# recvtty processes this run left holding the terminal.
			local t=0
			while kill -0 "$spid" 2>/dev/null && ((t < 10)); do sleep 1; t=$((t + 1)); done
			kill -0 "$spid" 2>/dev/null || break
			ended=$(end_marked "$id" "$WORK/tests/cmd/_bin/recvtty")
			[[ -n $ended ]] && echo "$ended" | sed "s|^|# conformance: ended leftover recvtty |" >>"$tap.leftovers"
			t=0
			while kill -0 "$spid" 2>/dev/null && ((t < 30)); do sleep 1; t=$((t + 1)); done
			if kill -0 "$spid" 2>/dev/null; then
				ended=$(end_marked "$id" | grep -v "^$spid ")
				echo "$ended" | sed "s|^|# conformance: ended leftover |" >>"$tap.leftovers"
			fi
			break
		fi
		if ((SECONDS - start > FILE_TIMEOUT)); then
			echo "# conformance: TIMEOUT after ${FILE_TIMEOUT}s" >>"$tap.leftovers"
			end_marked "$id" | sed "s|^|# conformance: ended |" >>"$tap.leftovers"
			break
		fi
		sleep 1
	done
	wait "$spid" 2>/dev/null || true
	exec {in}>&-
	rm -f "$fifo"
	# Anything the run started and left (a container's runc init, a seccomp agent) goes too.
	ended=$(end_marked "$id")
	[[ -n $ended ]] && echo "$ended" | sed "s|^|# conformance: ended leftover |" >>"$tap.leftovers"
	return 0
}

bats_filter= # run_file: only the tests whose name matches (bats --filter)

# parse_tap turns one file's TAP into "status<TAB>file: name" lines; tests the file declares but
# never reported (a timeout) are "missing".
parse_tap() {
	local name=$1 tap=$2
	tr -d '\r' <"$tap" | awk -v file="$name" '
		/^1\.\.[0-9]+$/ { if (!plan) plan = substr($0, 4) + 0; next }
		/^(not )?ok [0-9]+ / {
			st = "pass"; line = $0
			if (line ~ /^not ok /) { st = "fail"; sub(/^not ok [0-9]+ /, "", line) } else sub(/^ok [0-9]+ /, "", line)
			if (match(line, / # [sS][kK][iI][pP]( |$)/)) { st = "skip"; line = substr(line, 1, RSTART - 1) }
			key = file ": " line
			if (seen[key]++) key = key " #" seen[key]
			print st "\t" key; n++; next
		}
		END { for (i = n + 1; i <= plan; i++) printf "missing\t%s: (test %d of %d never reported)\n", file, i, plan }'
}

# run_suite runs every selected file with RUNC=$2 and writes $OUT/$1/.
run_suite() {
	local mode=$1 runc=$2 cfg=${3:-} dir=$OUT/$1 id name t0
	rm -rf "$dir"
	mkdir -p "$dir/tap"
	id="$mode-$$-$RANDOM"
	local tmp=$tmproot/$mode
	mkdir -p "$tmp/tmp"
	log "run $mode: RUNC=$runc${cfg:+ HARDEN_CONFIG=$cfg} (${#files[@]} files)"
	t0=$SECONDS
	: >"$dir/results.tsv"
	current_id=$id
	local env=(RUNC="$runc" TMPDIR="$tmp/tmp")
	if [[ -n $cfg ]]; then
		env+=(HARDEN_CONFIG="$cfg")
	else
		env=(-u HARDEN_CONFIG "${env[@]}")
	fi
	for name in "${files[@]}"; do
		TMPDIR=$tmp/tmp run_file "$name" "$dir/tap/$name.tap" "$id" "${env[@]}"
		parse_tap "$name" "$dir/tap/$name.tap" >>"$dir/results.tsv"
		local c
		c=$(awk -F'\t' -v f="$name" 'index($2, f ": ") == 1 {n[$1]++} END {printf "%d passed, %d failed, %d skipped%s", n["pass"], n["fail"], n["skip"], n["missing"] ? ", " n["missing"] " missing" : ""}' "$dir/results.tsv")
		printf 'conformance: %-8s %-32s %s\n' "$mode" "$name" "$c" >&2
	done
	echo $((SECONDS - t0)) >"$dir/seconds"
	[[ -n $cfg && -f $tmp/decisions.log ]] && cp "$tmp/decisions.log" "$dir/decisions.log"
	counts "$dir" >"$dir/summary"
	log "run $mode: $(cat "$dir/summary") in $(cat "$dir/seconds")s"
}

counts() {
	awk -F'\t' '{n[$1]++} END {printf "%d passed, %d failed, %d skipped%s\n", n["pass"], n["fail"], n["skip"], n["missing"] ? ", " n["missing"] " missing" : ""}' "$1/results.tsv"
}

# harden_config writes a node configuration for harden-runc into the temp dir.
harden_config() {
	local mode=$1 tmp=$tmproot/$1 policy
	mkdir -p "$tmp/state"
	case $mode in
	audit)
		policy=$tmp/policy.yaml
		cat >"$policy" <<-'EOF'
			apiVersion: harden.dev/v1alpha1
			kind: Policy
			defaults: {profile: baseline, mode: audit}
		EOF
		;;
	enforce)
		# No file there: harden's embedded default policy (baseline, enforce) applies.
		policy=$tmp/no-policy-here.yaml
		;;
	esac
	cat >"$tmp/config.toml" <<-EOF
		PolicyPath = "$policy"
		DecisionLog = "$tmp/decisions.log"
		StateDir = "$tmp/state"
		BinaryName = "$REAL_RUNC"
	EOF
	echo "$tmp/config.toml"
}

# mode_env prints, one a line, the environment run_file gets for a mode (RUNC, HARDEN_CONFIG).
mode_env() {
	local mode=$1
	echo "TMPDIR=$tmproot/$mode/tmp"
	case $mode in
	plain) printf '%s\n' -u HARDEN_CONFIG "RUNC=$REAL_RUNC" ;;
	*) printf '%s\n' "RUNC=$HARDEN_RUNC" "HARDEN_CONFIG=$tmproot/$mode/config.toml" ;;
	esac
}

# retry runs one test ("file.bats: name") again, alone, under a mode, up to RETRIES times, and
# prints the attempt that passed ("" if none did).
retry() {
	local mode=$1 test=$2 file name k tap re st env
	file=${test%%: *}
	name=${test#*: }
	name=${name% #[0-9]*}
	# bats --filter is a regular expression over the test's name: escape it, anchor it.
	re="^$(sed -e 's/[][\\.^$*+?(){}|]/\\&/g' <<<"$name")\$"
	mkdir -p "$OUT/retries/$mode" "$tmproot/$mode/tmp"
	[[ $mode == plain || -f $tmproot/$mode/config.toml ]] || harden_config "$mode" >/dev/null
	mapfile -t env < <(mode_env "$mode")
	for ((k = 1; k <= RETRIES; k++)); do
		tap=$OUT/retries/$mode/$file.$(tr -c 'A-Za-z0-9' _ <<<"$name" | cut -c1-80).$k.tap
		current_id="retry-$mode-$$-$RANDOM"
		bats_filter=$re TMPDIR=$tmproot/$mode/tmp run_file "$file" "$tap" "$current_id" "${env[@]}"
		st=$(parse_tap "$file" "$tap" | awk -F'\t' -v t="$file: $name" '$2 == t {print $1}')
		log "retry $k of $test under $mode: ${st:-not reported}"
		if [[ $st == pass ]]; then
			echo "$k"
			return
		fi
	done
}

# statuses prints "file: name<TAB>status" for a run, sorted.
statuses() { awk -F'\t' '{print $2 "\t" $1}' "$1/results.tsv" | sort; }

# --- main -------------------------------------------------------------------------------------

have_debian=0
prepare

mapfile -t all < <(cd "$WORK/tests/integration" && ls -1 -- *.bats)
files=()
for name in "${all[@]}"; do
	if ((${#selected[@]})); then
		printf '%s\n' "${selected[@]##*/}" | grep -qxF "$name" || continue
	fi
	[[ -n $filter && ! $name =~ $filter ]] && continue
	if ((!have_debian)) && printf '%s\n' "${DEBIAN_FILES[@]}" | grep -qxF "$name"; then
		continue
	fi
	files+=("$name")
done
((${#files[@]})) || die "no test files selected"
((have_debian)) || log "no Debian rootfs ($DEBIAN_TAR): not running ${DEBIAN_FILES[*]} (CONFORMANCE_DEBIAN=1 builds one)"

mkdir -p "$OUT"
# The temp dir is under $OUT, not /tmp: a machine's /tmp may be cleaned while the suite runs.
tmproot=$(mktemp -d "$OUT/.tmp.XXXXXX")
chmod a+x "$tmproot"
run_before=$(ls -A /run/runc 2>/dev/null | sort || true)
cleanup() {
	local m r c
	# Containers a test (or an interrupted run) left in its private --root under the temp dir.
	for r in $(find "$tmproot" -name state.json -path '*/state/*/state.json' 2>/dev/null | xargs -r -n1 dirname | xargs -r -n1 dirname | sort -u); do
		for c in $("$REAL_RUNC" --root "$r" list -q 2>/dev/null); do
			log "deleting leftover container $c (--root $r)"
			"$REAL_RUNC" --root "$r" delete -f "$c" >&2 || true
		done
	done
	# Mounts a failed test may have left under the temp dir (only ours), then the dir.
	for m in $(awk -v p="$tmproot" 'index($5, p) == 1 {print $5}' /proc/self/mountinfo | sort -r); do
		umount -l "$m" 2>/dev/null || true
	done
	rm -rf "$tmproot"
}
trap cleanup EXIT
# Interrupted: end what the current run started (by pid), then clean up.
current_id=
trap '[[ -n $current_id ]] && end_marked "$current_id" >/dev/null; exit 130' INT TERM
((compare_only)) || {
	echo "date: $(date -u +%FT%TZ)"
	echo "kernel: $(uname -r)"
	echo "runc: $("$REAL_RUNC" --version | sed -n 1p)"
	echo "harden-runc: $(cd "$repo" && git describe --always --dirty 2>/dev/null || echo dev)"
	echo "bats: $(bats --version)"
	echo "debian rootfs: $([[ $have_debian == 1 ]] && echo yes || echo "no (not run: ${DEBIAN_FILES[*]})")"
	echo "files: ${files[*]}"
} >"$OUT/environment"

status=0
((compare_only)) && runs_to_do= || runs_to_do=$runs
if [[ ,$runs_to_do, == *,plain,* ]]; then
	run_suite plain "$REAL_RUNC"
fi
if [[ ,$runs_to_do, == *,audit,* ]]; then
	run_suite audit "$HARDEN_RUNC" "$(harden_config audit)"
fi
if [[ ,$runs_to_do, == *,enforce,* ]]; then
	if [[ -n ${CONFORMANCE_ENFORCE_FILES:-} ]]; then
		read -ra files <<<"$CONFORMANCE_ENFORCE_FILES"
	fi
	run_suite enforce "$HARDEN_RUNC" "$(harden_config enforce)"
fi

run_after=$(ls -A /run/runc 2>/dev/null | sort || true)
[[ $run_before == "$run_after" ]] || log "WARNING: /run/runc changed during the run: $(comm -13 <(echo "$run_before") <(echo "$run_after") | tr '\n' ' ')"

# --- comparing ----------------------------------------------------------------------------------

if [[ -f $OUT/plain/results.tsv && -f $OUT/audit/results.tsv && ,$runs, == *,plain,*audit,* ]]; then
	echo "plain runc:          $(cat "$OUT/plain/summary") ($(cat "$OUT/plain/seconds")s)"
	echo "harden-runc (audit): $(cat "$OUT/audit/summary") ($(cat "$OUT/audit/seconds")s)"
	diff=$(join -t $'\t' -a1 -a2 -e absent -o 0,1.2,2.2 <(statuses "$OUT/plain") <(statuses "$OUT/audit") |
		awk -F'\t' '($2 == "pass") != ($3 == "pass")')
	# Run each difference again on the side where the test did not pass: a flake is not one.
	confirmed=
	: >"$OUT/flaky"
	while IFS=$'\t' read -r test p a; do
		[[ -n $test ]] || continue
		side=audit
		[[ $p == pass ]] || side=plain
		k=$(retry "$side" "$test")
		if [[ -n $k ]]; then
			printf '%s\t%s\t%s\tpassed under %s on retry %s\n' "$test" "$p" "$a" "$side" "$k" >>"$OUT/flaky"
		else
			confirmed+=$(printf '%s\t%s\t%s' "$test" "$p" "$a")$'\n'
		fi
	done <<<"$diff"
	diff=${confirmed%$'\n'}
	if [[ -s $OUT/flaky ]]; then
		echo "flaky (differed once, then passed when run again alone; not a difference):"
		sed 's/^/  /' "$OUT/flaky"
	fi
	if [[ -n $diff ]]; then
		echo "DIFFERENCES (test, plain runc, harden-runc audit):"
		echo "$diff" | sed 's/^/  /'
		status=1
	else
		echo "audit: the $(grep -c '^pass' "$OUT/plain/results.tsv") tests passing under plain runc pass under harden-runc (audit), and no others"
	fi
	echo "$diff" >"$OUT/audit-differences"
fi

if [[ -f $OUT/plain/results.tsv && -f $OUT/enforce/results.tsv && ,$runs, == *,enforce,* ]]; then
	echo "harden-runc (enforce, not gating): $(cat "$OUT/enforce/summary") ($(cat "$OUT/enforce/seconds")s)"
	join -t $'\t' -o 0,1.2,2.2 <(statuses "$OUT/plain") <(statuses "$OUT/enforce") |
		awk -F'\t' '$2 == "pass" && $3 != "pass"' >"$OUT/enforce-differences"
	if [[ -s $OUT/enforce-differences ]]; then
		echo "passing under plain runc, not under enforce ($(wc -l <"$OUT/enforce-differences")): see docs/conformance.md for why"
		sed 's/^/  /' "$OUT/enforce-differences"
	fi
	join -t $'\t' -o 0,1.2,2.2 <(statuses "$OUT/plain") <(statuses "$OUT/enforce") |
		awk -F'\t' '$2 != "pass" && $3 == "pass"' | sed 's/^/  passes only under enforce: /'
	if [[ -f $OUT/enforce/decisions.log ]]; then
		echo "enforce refusals by rule (from the decision log):"
		jq -r 'select(.result != null and .result != "hardened" and .result != "audited") | [.event, .result, (.error // "" | .[0:160])] | @tsv' \
			"$OUT/enforce/decisions.log" 2>/dev/null | sort | uniq -c | sort -rn | sed 's/^/  /' || true
	fi
fi
echo "results: $OUT"
exit $status
