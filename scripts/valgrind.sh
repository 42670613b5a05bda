#!/bin/bash
# Run every unit test of a plain (non-sanitizer) build under valgrind's
# memcheck; any invalid access, use of uninitialised memory or leak
# (definite or possible) fails the test.
#
#   scripts/valgrind.sh BUILD_DIR [test_name ...]
#
# BUILD_DIR is a configured build (e.g. build/); the unit tests are built
# there first.  Prints "PASS: valgrind test_x", "FAIL: valgrind test_x (why)"
# or "SKIP: ..." per test and a summary; exit status 1 if anything failed.
# Logs stay in $VG_LOGS (default: BUILD_DIR/valgrind-logs).
# VG_TIMEOUT (seconds per test, default 900); extra valgrind options in
# VG_OPTS.
set -u
build=${1:-}
if [ -z "$build" ] || [ ! -f "$build/tests/Makefile" ]; then
	echo "usage: $0 BUILD_DIR [test_name ...]   (BUILD_DIR: a configured build)" >&2
	exit 2
fi
build=$(cd "$build" && pwd)
shift
logs=${VG_LOGS:-$build/valgrind-logs}
: "${VG_TIMEOUT:=900}"
n_pass=0 n_fail=0 n_skip=0
pass() { n_pass=$((n_pass + 1)); echo "PASS: $1"; }
fail() { n_fail=$((n_fail + 1)); echo "FAIL: $1${2:+ ($2)}"; }
skip() { n_skip=$((n_skip + 1)); echo "SKIP: $1${2:+ ($2)}"; }

if ! command -v valgrind >/dev/null; then
	skip "valgrind" "valgrind not installed"
	exit 0
fi

if [ $# -gt 0 ]; then
	tests="$*"
else
	# the list the build knows (UNIT_TESTS in tests/Makefile.am)
	tests=$(make -s -C "$build/tests" -f Makefile -f - print-unit <<'EOF' 2>/dev/null
print-unit:
	@echo $(UNIT_TESTS)
EOF
)
	tests=$(for t in $tests; do basename "$t"; done)
fi
if [ -z "$tests" ]; then
	fail "valgrind" "no unit tests in $build (configured without cmocka?)"
	exit 1
fi

mkdir -p "$logs"
for t in $tests; do
	name="valgrind $t"
	if ! make -s -C "$build/tests" "unit/$t" >"$logs/$t.build" 2>&1; then
		fail "$name" "does not build: $(grep -m1 -E 'error' "$logs/$t.build")"
		continue
	fi
	bin=$build/tests/unit/$t
	# memcheck and AddressSanitizer cannot share a process
	if grep -qa '__asan_init' "$bin" 2>/dev/null; then
		skip "$name" "built with sanitizers; use a plain build"
		continue
	fi
	rm -f "$logs/$t".vg.*
	# Children (the tests fork daemons and helpers) are checked too: each
	# process writes its own log, %p = pid.
	( cd "$build/tests" &&
	  timeout "$VG_TIMEOUT" valgrind -q --error-exitcode=99 --leak-check=full \
		--errors-for-leak-kinds=definite,possible --track-origins=yes \
		--trace-children=yes --child-silent-after-fork=no \
		--trace-children-skip='/usr/bin/*,/usr/sbin/*,/bin/*,/sbin/*' \
		--log-file="$logs/$t.vg.%p" ${VG_OPTS:-} "$bin" ) >"$logs/$t.out" 2>&1
	rc=$?
	errs=$(cat "$logs/$t".vg.* 2>/dev/null | grep -E '^==[0-9]+== ' |
	       grep -E 'Invalid|uninitialised|definitely lost|possibly lost|Mismatched|overlap|Syscall param' |
	       grep -vE 'lost: 0 bytes' | head -n 3 | sed 's/^==[0-9]*== //' | tr '\n' ';')
	if [ $rc -eq 124 ]; then
		fail "$name" "timed out after ${VG_TIMEOUT}s; log $logs/$t.out"
	elif [ $rc -eq 99 ] || [ -n "$errs" ]; then
		fail "$name" "memcheck: ${errs:-see $logs/$t.vg.*}"
	elif [ $rc -ne 0 ]; then
		fail "$name" "test failed (exit $rc) under valgrind: $(grep -m2 -E 'FAILED|ERROR|Failure' "$logs/$t.out" | tr '\n' ' ')"
	else
		pass "$name"
	fi
done
echo "# valgrind: $n_pass passed, $n_fail failed, $n_skip skipped (logs: $logs)"
[ "$n_fail" -eq 0 ]
