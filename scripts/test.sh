#!/bin/bash
# The project's test command:
#   deps -> build (build/, build-asan/) -> unit tests (make check) in both
#   builds -> real-kernel scenarios tests/netns/t-*.sh -> fuzz smoke.
# Every check prints "PASS: x", "FAIL: x (why)" or "SKIP: x (why)"; the last
# line is "N passed, N failed, N skipped"; exit status 1 if anything failed.
#
# Environment: SKIP_DEPS=1, SKIP_ASAN=1, SKIP_NETNS=1, SKIP_FUZZ=1,
# SKIP_DEMO=1, SKIP_VALGRIND=1 (unit tests and scenarios under valgrind),
# SKIP_NETNS_VALGRIND=1 (only the scenarios under valgrind),
# SKIP_NETNS_PLAIN=1 (the timing-sensitive scenarios, PLAIN_NETNS, run again
# with the plain daemon after the ASan pass), SKIP_BENCH=1 to
# leave a stage out (it is then reported as SKIP); NETNS_ONLY="t-failover ..."
# to run only those scenarios (in both netns stages); VG_NETNS: the list run
# under valgrind.  Scenario variables (CTD_FW1, CTD_FW2, ...) pass through.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 1
exec </dev/null

n_pass=0 n_fail=0 n_skip=0
pass() { n_pass=$((n_pass + 1)); echo "PASS: $1"; }
fail() { n_fail=$((n_fail + 1)); echo "FAIL: $1${2:+ ($2)}"; }
skip() { n_skip=$((n_skip + 1)); echo "SKIP: $1${2:+ ($2)}"; }
stage() { echo "== $* ($(date -u +%T))"; }

# count PASS/FAIL/SKIP lines of a child's output (already printed)
tally() {
	local p f s
	p=$(grep -c '^PASS: ' "$1"); f=$(grep -c '^FAIL: ' "$1"); s=$(grep -c '^SKIP: ' "$1")
	n_pass=$((n_pass + p)); n_fail=$((n_fail + f)); n_skip=$((n_skip + s))
	[ $((p + f + s)) -gt 0 ]
}

tmp=$(mktemp -d /tmp/ctd-test.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

# ------------------------------------------------------------------ deps
stage deps
if [ "${SKIP_DEPS:-0}" = 1 ]; then
	skip "deps" "SKIP_DEPS=1"
elif sh scripts/deps.sh >"$tmp/deps.out" 2>&1; then
	pass "deps (scripts/deps.sh)"
else
	fail "deps (scripts/deps.sh)" "$(tail -n3 "$tmp/deps.out" | tr '\n' ' ')"
fi

# ------------------------------------------------------------------ build
unit_list() {
	sed -n '/^UNIT_TESTS *=/,/^[^\t ]*$/p' tests/Makefile.am |
		tr ' \t\\' '\n\n\n' | grep '^unit/test_'
}

# unit_tests DIR LABEL: build each unit test alone (one broken test or
# module must not hide the others), run the ones that built with make check.
unit_tests() {
	local dir=$1 label=$2 t built="" line name
	for t in $(unit_list); do
		if make -s -C "$dir/tests" "$t" >"$tmp/$label-$(basename "$t").build" 2>&1; then
			built="$built $t"
		else
			fail "$label: $t" "does not build: $(grep -m1 -E 'error|undefined|\*\*\*' "$tmp/$label-$(basename "$t").build" || tail -n1 "$tmp/$label-$(basename "$t").build")"
		fi
	done
	[ -n "$built" ] || return 0
	# a hung unit test must not hang the whole run
	make -s -j2 -C "$dir/tests" check check_PROGRAMS="$built" TESTS="$built" \
		LOG_COMPILER="timeout -k 5 ${UNIT_TIMEOUT:-60}" >"$tmp/$label.check" 2>&1
	for t in $built; do
		line=$(grep -E "^(PASS|FAIL|SKIP|XFAIL|XPASS|ERROR): $t\$" "$tmp/$label.check" | head -n1)
		name="$label: $t"
		case $line in
		PASS:*|XFAIL:*) pass "$name";;
		SKIP:*) skip "$name" "test skipped itself";;
		"") fail "$name" "no result from make check";;
		*)
			if grep -q 'exit status: 124' "$dir/tests/$t.log" 2>/dev/null; then
				fail "$name" "timed out after ${UNIT_TIMEOUT:-60}s"; continue
			fi
			fail "$name" "$(grep -h -E '^\[  (FAILED|ERROR) +\]|ERROR:|runtime error|AddressSanitizer' "$dir/tests/$t.log" 2>/dev/null | head -n3 | tr '\n' ' ')"
			;;
		esac
	done
}

stage "build (scripts/build.sh normal)"
sh scripts/build.sh normal >"$tmp/build.out" 2>&1; rc=$?
if [ $rc -eq 0 ] || [ $rc -eq 3 ]; then
	pass "build: build/ (daemon)"
else
	fail "build: build/" "$(grep -m2 -E 'error|failed' "$tmp/build.out" | tr '\n' ' ')"
fi
stage "unit tests (build/)"
if [ -f build/tests/Makefile ]; then unit_tests build unit; else fail "unit tests" "build/ not configured"; fi

if [ "${SKIP_ASAN:-0}" = 1 ]; then
	skip "build: build-asan/" "SKIP_ASAN=1"
else
	stage "build (scripts/build.sh asan)"
	sh scripts/build.sh asan >"$tmp/build-asan.out" 2>&1; rc=$?
	if [ $rc -eq 0 ] || [ $rc -eq 3 ]; then
		pass "build: build-asan/ (daemon)"
	else
		fail "build: build-asan/" "$(grep -m2 -E 'error|failed' "$tmp/build-asan.out" | tr '\n' ' ')"
	fi
	stage "unit tests (build-asan/)"
	if [ -f build-asan/tests/Makefile ]; then
		ASAN_OPTIONS=detect_leaks=1 unit_tests build-asan unit-asan
	else
		fail "unit-asan tests" "build-asan/ not configured"
	fi
fi

# ------------------------------------------------------------------ netns
# run_scenario FILE OUT TAG: one scenario, output in OUT.out/OUT.err, its
# checks tallied; an exit without a FAIL line is a failure named NAME+TAG.
run_scenario() {
	local t=$1 out=$2 tag=$3 n rc
	n=$(basename "$t" .sh)
	timeout -k 10 400 bash "$t" 2>"$out.err" | tee "$out.out"
	rc=${PIPESTATUS[0]}
	tally "$out.out" || { [ $rc -eq 0 ] && skip "$n$tag" "reported nothing"; }
	if [ $rc -ne 0 ] && ! grep -q '^FAIL: ' "$out.out"; then
		fail "$n$tag" "exit $rc: $(tail -n2 "$out.err" | tr '\n' ' ')"
	fi
}

if [ "${SKIP_NETNS:-0}" = 1 ]; then
	skip "netns scenarios" "SKIP_NETNS=1"
elif [ "$(id -u)" != 0 ]; then
	skip "netns scenarios" "need root"
else
	# The scenarios run our daemon from the ASan+UBSan build when there is
	# one, so the whole suite doubles as a sanitizer run; daemons started
	# with -d have no stderr, hence report files (checked after the loop).
	san_dir="$tmp/sanitizer-reports"
	mkdir -p "$san_dir"
	if [ "${NETNS_PLAIN:-0}" != 1 ] && [ -x build-asan/src/conntrackd ]; then
		export CTD_OURS="$top/build-asan/src/conntrackd"
		export ASAN_OPTIONS="detect_leaks=1:log_path=$san_dir/asan"
		export UBSAN_OPTIONS="print_stacktrace=1:log_path=$san_dir/ubsan"
		echo "scenarios use $CTD_OURS (ASan+UBSan; NETNS_PLAIN=1 for build/)"
	fi
	for t in tests/netns/t-*.sh; do
		n=$(basename "$t" .sh)
		if [ -n "${NETNS_ONLY:-}" ] && ! grep -qw -- "$n" <<<"$NETNS_ONLY"; then continue; fi
		stage "scenario $n"
		run_scenario "$t" "$tmp/$n" ""
	done
	if [ -n "${ASAN_OPTIONS:-}" ]; then
		if ls "$san_dir"/* >/dev/null 2>&1; then
			fail "sanitizers: daemons in the scenarios" "reports: $(head -n 12 "$san_dir"/* | tr '\n' ' ' | cut -c1-600)"
		else
			pass "sanitizers: no ASan/UBSan report from any daemon in the scenarios"
		fi
		unset CTD_OURS ASAN_OPTIONS UBSAN_OPTIONS
		# ASan (and valgrind, below) slow the daemon down enough to hide
		# races that need its full speed (the link-failover one, e7378d4):
		# the timing-sensitive scenarios once more with the plain build.
		if [ "${SKIP_NETNS_PLAIN:-0}" = 1 ]; then
			skip "timing-sensitive scenarios with the plain daemon" "SKIP_NETNS_PLAIN=1"
		elif [ -x build/src/conntrackd ]; then
			export CTD_OURS="$top/build/src/conntrackd"
			for n in ${PLAIN_NETNS:-t-reliable t-burst t-commit}; do
				t=tests/netns/$n.sh
				[ -f "$t" ] || { fail "$n (plain daemon)" "no such scenario"; continue; }
				if [ -n "${NETNS_ONLY:-}" ] && ! grep -qw -- "$n" <<<"$NETNS_ONLY"; then continue; fi
				stage "scenario $n with the plain daemon"
				run_scenario "$t" "$tmp/$n.plain" " (plain daemon)"
			done
			unset CTD_OURS
		fi
	fi
fi

# ------------------------------------------------------------------ fuzz
stage "fuzz smoke"
if [ "${SKIP_FUZZ:-0}" = 1 ]; then
	skip "fuzz smoke" "SKIP_FUZZ=1"
elif ! command -v clang >/dev/null; then
	skip "fuzz smoke" "clang missing"
elif [ -f tests/fuzz/run-smoke.sh ]; then
	timeout -k 10 300 bash tests/fuzz/run-smoke.sh 2>"$tmp/fuzz.err" | tee "$tmp/fuzz.out"
	rc=${PIPESTATUS[0]}
	tally "$tmp/fuzz.out" || true
	if [ $rc -ne 0 ] && ! grep -q '^FAIL: ' "$tmp/fuzz.out"; then
		fail "fuzz smoke" "exit $rc: $(tail -n2 "$tmp/fuzz.err" | tr '\n' ' ')"
	fi
else
	# No smoke script in the tree: build the libFuzzer targets with clang in
	# build-fuzz/ and give each a fixed number of runs over its seed corpus
	# (new inputs go to a temp dir, never into the tree).
	mkdir -p build-fuzz
	if { [ -f build-fuzz/Makefile ] || (cd build-fuzz && CC=clang ../configure -q --enable-fuzz >configure.out 2>&1); } &&
	   make -s -j2 -C build-fuzz/src >build-fuzz/make.out 2>&1; then
		for f in $(sed -n 's/^FUZZERS *= *//p; s/^noinst_PROGRAMS *= *\(fuzz\/.*\)/\1/p' tests/Makefile.am | tr ' ' '\n' | grep '^fuzz/' | sort -u); do
			name=$(basename "$f")
			if ! make -s -C build-fuzz/tests "$f" >"$tmp/$name.build" 2>&1; then
				fail "fuzz smoke: $name" "does not build: $(grep -m1 -E 'error|undefined' "$tmp/$name.build")"
				continue
			fi
			mkdir -p "$tmp/corpus-$name"
			seeds=tests/fuzz/corpus-${name#fuzz_}
			[ -d "$seeds" ] || seeds=""
			mkdir -p build-fuzz/crashes
			if timeout -k 5 120 "build-fuzz/tests/$f" -runs="${FUZZ_RUNS:-20000}" -max_total_time=60 \
				-artifact_prefix="$top/build-fuzz/crashes/$name-" \
				"$tmp/corpus-$name" $seeds >"$tmp/$name.log" 2>&1; then
				pass "fuzz smoke: $name (${FUZZ_RUNS:-20000} runs${seeds:+, seeds $seeds})"
			else
				fail "fuzz smoke: $name" "$(grep -m2 -E 'ERROR|SUMMARY|runtime error' "$tmp/$name.log" | tr '\n' ' '); reproducer in build-fuzz/crashes/"
			fi
		done
	else
		fail "fuzz smoke" "build-fuzz/ does not build (clang --enable-fuzz): $(tail -n2 build-fuzz/make.out 2>/dev/null | tr '\n' ' ')"
	fi
fi

# ------------------------------------------------------------------ demo
# The README's main job must stay green: it exits non-zero if the data
# connection fails after the failover, or passes without expectation sync.
stage "demo (scripts/demo.sh)"
if [ "${SKIP_DEMO:-0}" = 1 ]; then
	skip "demo" "SKIP_DEMO=1"
elif [ "$(id -u)" != 0 ]; then
	skip "demo" "need root"
elif CTD_BIN="$top/build/src/conntrackd" timeout -k 10 300 bash scripts/demo.sh >"$tmp/demo.out" 2>&1; then
	pass "demo: FTP expectation survives the failover; without expectation sync the data connection is dropped"
else
	fail "demo" "scripts/demo.sh exit $?: $(grep -E '^(FAIL|OK|demo)' "$tmp/demo.out" | tail -n3 | tr '\n' ' ')"
fi

# ------------------------------------------------------------------ valgrind
# memcheck over every unit test (the kernel and channel ones included).
stage "valgrind (unit tests)"
if [ "${SKIP_VALGRIND:-0}" = 1 ]; then
	skip "valgrind" "SKIP_VALGRIND=1"
elif [ ! -f build/tests/Makefile ]; then
	fail "valgrind" "build/ not configured"
else
	VG_TIMEOUT=300 bash scripts/valgrind.sh build ${VG_TESTS:-} >"$tmp/vg.out" 2>&1
	grep -E '^(PASS|FAIL|SKIP): ' "$tmp/vg.out"
	tally "$tmp/vg.out" || fail "valgrind" "$(tail -n2 "$tmp/vg.out" | tr '\n' ' ')"
fi

# ------------------------------------------------------- netns + valgrind
# Our daemon (plain build/, the daemon only: clients and tools stay native)
# under memcheck; tests/netns/lib.sh (CTD_VALGRIND=1) fails a scenario on
# any error or definite leak.  The scenarios mostly wait, so VG_LANES (2)
# of them run at once, longest first, to fit ~4 min on 2 cores; each one's
# results are printed when all are done.  Which scenarios run and why the
# others do not: README "Tests", doc/notes/hardening.md.  VG_NETNS picks
# others; "name:VAR=x,VAR=y" sets variables for one of them (the Debian
# pairs of t-sync and t-failover run in the ASan stage only).
: "${VG_NETNS:=t-reliable t-sync:CTD_FW1=ours,CTD_FW2=ours t-hostile-peer t-nat t-failover:CTD_FW1=ours,CTD_FW2=ours t-keepalived t-faults t-auth t-hostile-client t-channels t-kernel-cache t-commit t-burst:BURST_N=2000 t-lifecycle t-ctl-interop t-metrics t-refusal}"
# the harness must see what memcheck sees: a daemon with a definite leak
# and a read after free (from a preloaded constructor) must FAIL
vg_selftest() {
	local d=$tmp/vg-selftest
	mkdir -p "$d"
	cat >"$d/bad.c" <<-'EOF'
	#define _GNU_SOURCE
	#include <errno.h>
	#include <stdlib.h>
	#include <string.h>
	static volatile char sink;
	__attribute__((constructor)) static void bad(void)
	{
		char *p;
		if (strcmp(program_invocation_short_name, "conntrackd"))
			return;
		p = malloc(40);	/* definitely lost */
		p = malloc(8);
		free(p);
		sink = p[1];	/* invalid read */
	}
	EOF
	if ! cc -shared -fPIC -O0 -o "$d/bad.so" "$d/bad.c" 2>"$d/cc.err"; then
		fail "valgrind harness self-test" "cc: $(head -n1 "$d/cc.err")"; return
	fi
	LD_PRELOAD=$d/bad.so CTD_VALGRIND=1 CTD_OURS="$top/build/src/conntrackd" \
		timeout -k 10 120 bash tests/netns/t-refusal.sh >"$d/out" 2>&1
	if grep '^FAIL: valgrind:' "$d/out" | grep -q 'definitely lost' &&
	   grep '^FAIL: valgrind:' "$d/out" | grep -q 'Invalid read'; then
		pass "valgrind harness self-test: a daemon with a definite leak and an invalid read fails its scenario"
	else
		fail "valgrind harness self-test" "no FAIL for the planted errors: $(grep -E '^(PASS|FAIL): valgrind' "$d/out" | head -n2 | tr '\n' ' ')"
	fi
}
# vg_one ENTRY: one scenario under valgrind, results in $tmp/vg-NAME.*
vg_one() {
	local e=$1 n=${1%%:*} vars="" t0
	[ "$n" != "$e" ] && vars=${e#*:}
	t0=$(date +%s)
	# shellcheck disable=SC2046 # VAR=x words for env
	env $(tr ',' ' ' <<<"$vars") CTD_VALGRIND=1 CTD_OURS="$top/build/src/conntrackd" \
		timeout -k 10 300 bash "tests/netns/$n.sh" >"$tmp/vg-$n.raw" 2>"$tmp/vg-$n.err"
	echo $? >"$tmp/vg-$n.rc"
	echo "$(( $(date +%s) - t0 ))" >"$tmp/vg-$n.secs"
}
# a lane takes the next entry from the queue file until it is empty
vg_lane() {
	local e
	while e=$( (flock 9; e=$(head -n1 "$tmp/vg-queue"); [ -n "$e" ] || exit 1
		sed -i 1d "$tmp/vg-queue"; echo "$e") 9>"$tmp/vg-queue.lock"); do
		vg_one "$e"
	done
}
stage "netns scenarios under valgrind"
if [ "${SKIP_VALGRIND:-0}" = 1 ] || [ "${SKIP_NETNS:-0}" = 1 ] || [ "${SKIP_NETNS_VALGRIND:-0}" = 1 ]; then
	skip "netns scenarios under valgrind" "SKIP_VALGRIND, SKIP_NETNS or SKIP_NETNS_VALGRIND"
elif [ "$(id -u)" != 0 ]; then
	skip "netns scenarios under valgrind" "need root"
elif ! command -v valgrind >/dev/null; then
	fail "netns scenarios under valgrind" "valgrind missing (scripts/deps.sh)"
elif [ ! -x build/src/conntrackd ]; then
	fail "netns scenarios under valgrind" "build/src/conntrackd missing"
else
	[ -z "${NETNS_ONLY:-}" ] && vg_selftest
	: >"$tmp/vg-queue"
	for e in $VG_NETNS; do
		if [ -n "${NETNS_ONLY:-}" ] && ! grep -qw -- "${e%%:*}" <<<"$NETNS_ONLY"; then continue; fi
		echo "$e" >>"$tmp/vg-queue"
	done
	echo "under valgrind, ${VG_LANES:-2} at a time: $(tr '\n' ' ' <"$tmp/vg-queue")"
	lanes=""
	for i in $(seq "${VG_LANES:-2}"); do vg_lane & lanes="$lanes $!"; done
	# shellcheck disable=SC2086
	wait $lanes
	for e in $VG_NETNS; do
		n=${e%%:*} vars=""
		[ "$n" != "$e" ] && vars=${e#*:}
		[ -f "$tmp/vg-$n.rc" ] || continue
		rc=$(cat "$tmp/vg-$n.rc")
		stage "scenario $n under valgrind${vars:+ ($vars)}: $(cat "$tmp/vg-$n.secs") s"
		sed -E "s/^(PASS|FAIL|SKIP): /\1: [valgrind] /" "$tmp/vg-$n.raw" | tee "$tmp/vg-$n.out"
		tally "$tmp/vg-$n.out" || { [ "$rc" -eq 0 ] && skip "$n under valgrind" "reported nothing"; }
		if [ "$rc" -ne 0 ] && ! grep -q '^FAIL: ' "$tmp/vg-$n.out"; then
			fail "$n under valgrind" "exit $rc: $(tail -n2 "$tmp/vg-$n.err" | tr '\n' ' ')"
		fi
	done
fi

# ------------------------------------------------------------------ bench
# The benchmark's smoke run (small N): that it works, not how fast.
stage "bench smoke"
if [ "${SKIP_BENCH:-0}" = 1 ]; then
	skip "bench smoke" "SKIP_BENCH=1"
elif CTD_OURS="$top/build/src/conntrackd" timeout -k 10 300 bash bench/run.sh --smoke >"$tmp/bench.out" 2>&1; then
	pass "bench smoke (bench/run.sh --smoke: $(grep -c . "$tmp/bench.out") lines of report)"
else
	fail "bench smoke" "bench/run.sh --smoke exit $?: $(tail -n3 "$tmp/bench.out" | tr '\n' ' ')"
fi

echo "$n_pass passed, $n_fail failed, $n_skip skipped"
[ "$n_fail" -eq 0 ]
