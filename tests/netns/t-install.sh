#!/bin/bash
# Packaging (issue "Operations"): `make install DESTDIR=...` from a fresh
# out-of-tree build puts every file an administrator needs where Debian's
# conntrackd package puts it, the installed files work (configs parse with
# the installed binary), and `make distcheck` passes.
#
# Environment:
#   DISTCHECK   1 (default) also runs `make distcheck` (several minutes);
#               0 skips it
#   JOBS        make -j (default: number of CPUs)
# Needs no root and no namespaces; the build happens in a temp dir.
set -u
TOP=$(cd "$(dirname "$0")/../.." && pwd)
: "${DISTCHECK:=1}"
: "${JOBS:=$(nproc 2>/dev/null || echo 2)}"

N_PASS=0; N_FAIL=0; N_SKIP=0
pass() { N_PASS=$((N_PASS + 1)); echo "PASS: $1"; }
fail() { N_FAIL=$((N_FAIL + 1)); echo "FAIL: $1${2:+ ($2)}"; }
skip() { N_SKIP=$((N_SKIP + 1)); echo "SKIP: $1${2:+ ($2)}"; }
finish() {
	echo "# $(basename "$0"): $N_PASS passed, $N_FAIL failed, $N_SKIP skipped"
	[ "$N_FAIL" -eq 0 ]
}

W=$(mktemp -d /tmp/ctd-install.XXXXXX)
cleanup() {
	local rc=$?
	# distcheck leaves read-only trees behind when it fails
	chmod -R u+w "$W" 2>/dev/null
	if [ "${KEEP_TMP:-0}" = 1 ]; then echo "# kept $W" >&2; else rm -rf "$W"; fi
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

B=$W/build D=$W/dest
mkdir -p "$B" "$D"

if [ ! -x "$TOP/configure" ]; then
	skip t-install "no configure script in $TOP (run ./autogen.sh)"
	finish; exit
fi
# tail of a log for a FAIL reason
why() { tail -n "${2:-5}" "$1" | tr '\n' ' '; }

if ! (cd "$B" && "$TOP/configure" -q --prefix=/usr --sysconfdir=/etc \
		--localstatedir=/var) >"$W/configure.log" 2>&1; then
	fail "install: configure" "$(why "$W/configure.log")"
	finish; exit
fi
if ! make -C "$B" -j"$JOBS" >"$W/make.log" 2>&1; then
	fail "install: make" "$(grep -m3 -E 'error|Error' "$W/make.log" | tr '\n' ' ')"
	finish; exit
fi
if make -C "$B" install DESTDIR="$D" >"$W/install.log" 2>&1; then
	pass "install: make install DESTDIR exits 0"
else
	fail "install: make install DESTDIR exits 0" "$(why "$W/install.log")"
	finish; exit
fi

# installed FILE DESCRIPTION [test-op]: the file exists under DESTDIR
installed() {
	local f=$D$1 op=${3:--f}
	if test "$op" "$f"; then pass "install: $2 ($1)"
	else fail "install: $2 ($1)" "missing; installed: $(cd "$D" && find . -type f | head -20 | tr '\n' ' ')"; fi
}

BIN=$D/usr/sbin/conntrackd
installed /usr/sbin/conntrackd "daemon binary" -x
installed /usr/share/man/man8/conntrackd.8 "conntrackd(8) man page"
installed /usr/share/man/man5/conntrackd.conf.5 "conntrackd.conf(5) man page"
installed /usr/lib/systemd/system/conntrackd.service "systemd unit"
installed /etc/conntrackd/conntrackd.conf "sample configuration"
installed /etc/logrotate.d/conntrackd "logrotate snippet"
installed /usr/share/doc/conntrackd/examples/sync/primary-backup.sh "keepalived notify script" -x
installed /usr/share/doc/conntrackd/examples/sync/keepalived.conf "keepalived.conf example"

# the man pages render (a broken .TH or macro would show here)
for m in man8/conntrackd.8 man5/conntrackd.conf.5; do
	if ! command -v man >/dev/null; then skip "install: $m renders" "man not installed"; break; fi
	if out=$(MANWIDTH=80 man -l "$D/usr/share/man/$m" 2>&1 >/dev/null) && [ -z "$out" ] \
	   && MANWIDTH=80 man -l "$D/usr/share/man/$m" 2>/dev/null | grep -q conntrackd; then
		pass "install: $m renders without warnings"
	else
		fail "install: $m renders without warnings" "${out:-empty output}"
	fi
done

U=$D/usr/lib/systemd/system/conntrackd.service
if [ -f "$U" ]; then
	if grep -qx 'Type=notify' "$U" && grep -q '^ExecStart=/usr/sbin/conntrackd ' "$U" \
	   && grep -q -- '-C /etc/conntrackd/conntrackd.conf' "$U" && ! grep -q '@[a-z]*@' "$U"; then
		pass "install: unit is Type=notify and runs /usr/sbin/conntrackd -C /etc/conntrackd/conntrackd.conf"
	else
		fail "install: unit is Type=notify and runs /usr/sbin/conntrackd -C /etc/conntrackd/conntrackd.conf" \
			"$(grep -E '^(Type|Exec)' "$U" | tr '\n' ' ')"
	fi
	if command -v systemd-analyze >/dev/null; then
		# verify needs the ExecStart binary at its real path: check a copy
		# pointing at the installed one
		sed "s|/usr/sbin/conntrackd|$BIN|g" "$U" > "$W/conntrackd.service"
		if out=$(systemd-analyze verify "$W/conntrackd.service" 2>&1 | grep -v -e 'network-online' -e 'keepalived'); [ -z "$out" ]; then
			pass "install: systemd-analyze verify accepts the unit"
		else
			fail "install: systemd-analyze verify accepts the unit" "$(echo "$out" | head -3 | tr '\n' ' ')"
		fi
	fi
fi

# parses FILE NAME: the installed binary accepts it with -T (the examples
# name interfaces this machine lacks: a warning, not an error)
parses() {
	local out
	if out=$("$BIN" -T -C "$1" 2>&1 >/dev/null); then
		pass "install: $2 parses (conntrackd -T)"
	else
		fail "install: $2 parses (conntrackd -T)" "$(echo "$out" | grep -v warning | head -3 | tr '\n' ' ')"
	fi
}
[ -f "$D/etc/conntrackd/conntrackd.conf" ] && parses "$D/etc/conntrackd/conntrackd.conf" /etc/conntrackd/conntrackd.conf
n=0
for c in "$D"/usr/share/doc/conntrackd/examples/*/*/conntrackd.conf \
	 "$D"/usr/share/doc/conntrackd/examples/*/conntrackd.conf; do
	[ -f "$c" ] || continue
	n=$((n + 1))
	parses "$c" "${c#$D/usr/share/doc/conntrackd/}"
done
# every example of the source tree is installed (one per mode at least)
want=$(cd "$TOP/doc" && ls -d sync/*/ stats 2>/dev/null | wc -l)
if [ "$n" -ge "$want" ] && [ "$n" -ge 4 ]; then
	pass "install: $n example configurations installed (source tree has $want)"
else
	fail "install: every example configuration installed" "$n installed, $want in doc/"
fi
if [ -f "$D/etc/logrotate.d/conntrackd" ] && command -v logrotate >/dev/null; then
	if out=$(logrotate -d "$D/etc/logrotate.d/conntrackd" 2>&1) && ! grep -qi 'error' <<<"$out"; then
		pass "install: logrotate -d accepts the snippet"
	else
		fail "install: logrotate -d accepts the snippet" "$(grep -i error <<<"$out" | head -2)"
	fi
fi
sh -n "$D/usr/share/doc/conntrackd/examples/sync/primary-backup.sh" 2>/dev/null &&
	pass "install: primary-backup.sh is valid sh" || fail "install: primary-backup.sh is valid sh"

# An administrator's own configuration survives a re-install and uninstall.
echo "# mine" >> "$D/etc/conntrackd/conntrackd.conf"
make -C "$B" install DESTDIR="$D" >>"$W/install.log" 2>&1
make -C "$B" uninstall DESTDIR="$D" >"$W/uninstall.log" 2>&1
if grep -q '^# mine' "$D/etc/conntrackd/conntrackd.conf" 2>/dev/null; then
	pass "install: re-install and uninstall keep a modified /etc/conntrackd/conntrackd.conf"
else
	fail "install: re-install and uninstall keep a modified /etc/conntrackd/conntrackd.conf"
fi
left=$(cd "$D" && find . -type f ! -path ./etc/conntrackd/conntrackd.conf)
if [ -z "$left" ]; then
	pass "install: make uninstall removes everything else"
else
	fail "install: make uninstall removes everything else" "left: $(echo $left | head -c 300)"
fi

if [ "$DISTCHECK" != 1 ]; then
	skip "distcheck" "DISTCHECK=$DISTCHECK"
	finish; exit
fi
t0=$(date +%s)
if make -C "$B" -j"$JOBS" distcheck >"$W/distcheck.log" 2>&1; then
	pass "distcheck: make distcheck passes ($(( $(date +%s) - t0 )) s)"
else
	fail "distcheck: make distcheck passes" \
		"after $(( $(date +%s) - t0 )) s: $(grep -E -m5 'error|Error|FAIL|No rule' "$W/distcheck.log" | tr '\n' ' ')"
	[ "${VERBOSE:-0}" = 1 ] && tail -n 40 "$W/distcheck.log"
fi
finish
