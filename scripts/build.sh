#!/bin/sh
# Out-of-tree builds: build/ (normal) and build-asan/ (--enable-sanitizers).
# Usage: scripts/build.sh [normal|asan|all]   (default: all)
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
	# unit-test binaries too, so the test runner only runs them
	make -s -j"$jobs" -C tests check TESTS= >>make.out 2>&1 || { tail -n 40 make.out >&2; echo "build.sh: building tests failed in $dir" >&2; exit 1; }
	cd "$top"
}

case $what in
normal) build build ;;
asan) build build-asan --enable-sanitizers ;;
all) build build; build build-asan --enable-sanitizers ;;
*) echo "usage: $0 [normal|asan|all]" >&2; exit 1 ;;
esac
