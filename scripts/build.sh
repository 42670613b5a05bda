#!/bin/sh
# Out-of-tree builds: build/ (normal) and build-asan/ (--enable-sanitizers).
# Usage: scripts/build.sh [normal|asan|all]   (default: all)
# Exit 0 all built, 1 the daemon did not build, 3 the daemon built but some
# unit tests did not compile (scripts/test.sh reports those one by one).
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
what=${1:-all}
jobs=$(nproc 2>/dev/null || echo 2)

cd "$top"
# A fresh clone has no configure; regenerate only then (others may be
# building from this tree).
[ -x configure ] || ./autogen.sh >/dev/null 2>&1 || { echo "build.sh: autogen.sh failed" >&2; exit 1; }

build() {	# dir configure-args...
	dir=$1; shift
	mkdir -p "$top/$dir"
	cd "$top/$dir"
	if [ ! -f Makefile ]; then
		"$top/configure" -q "$@" >configure.out 2>&1 || { cat configure.out >&2; echo "build.sh: configure failed in $dir" >&2; exit 1; }
	fi
	make -s -j"$jobs" >make.out 2>&1 || { tail -n 40 make.out >&2; echo "build.sh: make failed in $dir (full log: $dir/make.out)" >&2; exit 1; }
	# unit-test binaries too (-k: one broken test must not hide the others)
	if ! make -s -k -j"$jobs" -C tests check TESTS= >tests.out 2>&1; then
		grep -E 'error|\*\*\*' tests.out | head -n 5 >&2
		echo "build.sh: some unit tests do not compile in $dir (log: $dir/tests.out)" >&2
		tests_broken=1
	fi
	cd "$top"
}
tests_broken=0

case $what in
normal) build build ;;
asan) build build-asan --enable-sanitizers ;;
all) build build; build build-asan --enable-sanitizers ;;
*) echo "usage: $0 [normal|asan|all]" >&2; exit 1 ;;
esac
[ $tests_broken = 0 ] || exit 3
