#!/bin/bash
# shellcheck disable=SC2034 # globals read by lib.sh
# Refused requests (DECISIONS: "a request the daemon refused should exit
# non-zero with the reason"): our client exits 2 and says why on stderr;
# Debian's 1.4.7 client, talking to our daemon, still sees an empty reply
# and exits 0 (the refusal starts with a NUL byte it never prints).
set -u
. "$(dirname "$0")/lib.sh"
need_root t-refusal
lib_init
CTD_FW1=ours
N="refusal"
DEB=/usr/sbin/conntrackd

single_fw_up || { fail "$N: namespace" "could not create"; finish; exit; }
ctd_conf fw1 alarm mcast on
if ! ctd_start fw1; then fail "$N: daemon starts" "$CTD_ERR"; finish; exit; fi

out=$(ctd fw1 -n 2>"$T/err"); rc=$?
WHY="exit $rc, stderr: $(cat "$T/err")"
check "$N: -n in ALARM mode exits 2 (refused, not 'daemon down')" test "$rc" = 2
check "$N: the reason is on stderr" grep -q "request refused: bulk send and resync requests do nothing in ALARM mode" "$T/err"
WHY="stdout: $out"
check "$N: nothing on stdout" test -z "$out"
check "$N: the daemon still answers -s" ctd_alive fw1

if [ -x "$DEB" ]; then
	out=$(nsx fw1 "$DEB" -C "$T/fw1.conf" -n 2>/dev/null); rc=$?
	WHY="exit $rc, stdout: $(printf '%s' "$out" | od -c | head -n2)"
	check "$N: Debian's client gets an empty reply and exits 0, as from 1.4.7" \
		test "$rc" = 0 -a -z "$out"
else
	skip "$N: Debian's client" "$DEB not installed"
fi

out=$(ctd fw1 -B 2>"$T/err"); rc=$?
WHY="exit $rc, stderr: $(cat "$T/err")"
check "$N: -B in ALARM mode is refused the same way" test "$rc" = 2
out=$(ctd fw1 -s 2>/dev/null); rc=$?
WHY="exit $rc"
check "$N: an accepted request still exits 0" test "$rc" = 0
finish
