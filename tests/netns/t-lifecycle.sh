#!/bin/bash
# shellcheck disable=SC2034,SC2046,SC2010 # globals read by lib.sh; lists split on purpose
# Daemon lifecycle (issue "Operations" item 1): -d, lock file, -k, SIGTERM,
# console mode + SIGINT, log line format, crash recovery (stale lock and
# socket), keepalived's "backup" branch against a crashed daemon.
#
# CTD_BIN = ours (default) | debian | /path  — the reference must pass too:
#   CTD_BIN=debian bash tests/netns/t-lifecycle.sh
# The daemons start through ctd_daemon (lib.sh): under valgrind with
# CTD_VALGRIND=1, except the one keepalived's script restarts in step 8.
set -u
. "$(dirname "$0")/lib.sh"
need_root t-lifecycle
lib_init
: "${CTD_BIN:=ours}"
CTD_FW1=$CTD_BIN
BIN=$(ctd_bin_for fw1)
N="lifecycle[$CTD_BIN]"

gone() { ! kill -0 "$1" 2>/dev/null; }
no_daemon() { [ -z "$(ctd_pids fw1)" ]; }
# every non-empty log line has the upstream layout
LOGRE='^\[(Mon|Tue|Wed|Thu|Fri|Sat|Sun) (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [ 123][0-9] [0-2][0-9]:[0-5][0-9]:[0-6][0-9] [0-9]{4}\] \(pid=[0-9]+\) \[(info|notice|warning|ERROR)\] '

if [ ! -x "$BIN" ]; then
	fail "$N: daemon binary" "$BIN missing (run scripts/build.sh)"
	finish; exit
fi
single_fw_up || { fail "$N: namespace" "could not create"; finish; exit; }
ctd_conf fw1 ftfw mcast on

# 1. -d starts and answers
if ctd_start fw1; then pass "$N: -d starts, -s answers"; else fail "$N: -d starts, -s answers" "$CTD_ERR"; finish; exit; fi
pid=$(ctd_pids fw1)
WHY="lock $T/fw1.lock or socket $T/fw1.ctl missing"
check "$N: lock file and socket exist" test -e "$T/fw1.lock" -a -S "$T/fw1.ctl"
WHY="lock $(stat -c %a "$T/fw1.lock" 2>&1), socket $(stat -c %a "$T/fw1.ctl" 2>&1), log $(stat -c %a "$T/fw1.log" 2>&1)"
check "$N: lock, socket and log file are mode 0600 (umask 0177)" \
	eval "[ \$(stat -c %a '$T/fw1.lock') = 600 ] && [ \$(stat -c %a '$T/fw1.ctl') = 600 ] && [ \$(stat -c %a '$T/fw1.log') = 600 ]"
WHY="log: $(tail -n4 "$T/fw1.log" | tr '\n' ' ')"
check "$N: log says 'initialization completed' and '-- starting in daemon mode --'" \
	bash -c "grep -q 'initialization completed' '$T/fw1.log' && grep -q -- '-- starting in daemon mode --' '$T/fw1.log'"

# 2. a second -d is refused
ctd_daemon fw1 "$BIN" -C "$T/fw1.conf" -d >"$T/second.out" 2>&1
rc=$?
WHY="exit $rc"
check "$N: second -d with the same lock file exits 1" test $rc -eq 1
WHY="log tail: $(tail -n2 "$T/fw1.log" | tr '\n' ' ')"
check "$N: the refusal is in the log" grep -q "lockfile \`$T/fw1.lock' exists, perhaps conntrackd already running?" "$T/fw1.log"
WHY="pids now: $(ctd_pids fw1 | tr '\n' ' ') (was $pid)"
check "$N: first daemon still serves" ctd_alive fw1

# 3. -k
ctd fw1 -k >/dev/null 2>&1; rc=$?
WHY="exit $rc"; check "$N: -k exits 0" test $rc -eq 0
WHY="pid $pid still alive"; check "$N: -k stops the daemon" wait_until 5 gone "$pid"
WHY="left: $(ls "$T" | grep -E 'fw1\.(lock|ctl)' | tr '\n' ' ')"
check "$N: -k removes socket and lock" test ! -e "$T/fw1.lock" -a ! -e "$T/fw1.ctl"
WHY="log tail: $(tail -n1 "$T/fw1.log")"
check "$N: log says '---- shutdown received ----'" grep -q -- '---- shutdown received ----' "$T/fw1.log"

# 3b. SIGHUP reopens the log (logrotate); 1.4.7 dies on SIGHUP instead
# (DECISIONS.md: fixed), so this part is for ours only.
if [ "$CTD_BIN" != debian ]; then
	if ctd_start fw1; then
		pid=$(ctd_pids fw1)
		mv "$T/fw1.log" "$T/fw1.log.1"
		kill -HUP $pid
		WHY="no new $T/fw1.log after SIGHUP"
		check "$N: SIGHUP reopens the log file" wait_until 5 test -e "$T/fw1.log"
		ctd fw1 -f >/dev/null 2>&1
		WHY="new log: $(cat "$T/fw1.log" 2>/dev/null | tr '\n' '|')"
		check "$N: after SIGHUP the daemon runs and logs to the new file" \
			wait_until 5 grep -q 'flushing caches' "$T/fw1.log"
		cat "$T/fw1.log.1" "$T/fw1.log" > "$T/fw1.log.all" 2>/dev/null && mv "$T/fw1.log.all" "$T/fw1.log"
		ctd_stop fw1
	else
		fail "$N: restart for SIGHUP" "$CTD_ERR"
	fi
fi

# 4. SIGTERM
if ctd_start fw1; then
	pid=$(ctd_pids fw1)
	kill -TERM $pid
	WHY="pid $pid still alive"; check "$N: SIGTERM stops the daemon" wait_until 5 gone "$pid"
	WHY="left: $(ls "$T" | grep -E 'fw1\.(lock|ctl)' | tr '\n' ' ')"
	check "$N: SIGTERM removes socket and lock" test ! -e "$T/fw1.lock" -a ! -e "$T/fw1.ctl"
else
	fail "$N: restart after -k" "$CTD_ERR"
fi

# 5. log format
bad=$(grep -v -E "$LOGRE" "$T/fw1.log" | grep -v '^$' | head -n2)
WHY="lines not in upstream format: $bad"
check "$N: every log line is '[Www Mmm dd hh:mm:ss yyyy] (pid=N) [level] text'" test -z "$bad"
WHY="no notice lines"; check "$N: log has notice lines" grep -q -E "$LOGRE" "$T/fw1.log"

# 6. console mode, SIGINT
ctd_daemon fw1 "$BIN" -C "$T/fw1.conf" >"$T/console.out" 2>"$T/console.err" &
cpid=$!
PIDS="$PIDS $cpid"
if wait_until 10 ctd_alive fw1; then
	WHY="stdout: $(head -n3 "$T/console.out" | tr '\n' ' ')"
	check "$N: console mode prints '-- starting in console mode --' on stdout" \
		grep -q -E -- "$LOGRE-- starting in console mode --" "$T/console.out"
	kill -INT $(ctd_pids fw1)
	WHY="still running"; check "$N: SIGINT stops the console daemon" wait_until 5 gone $cpid
	wait $cpid; rc=$?
	WHY="exit $rc"; check "$N: console daemon exits 0 on SIGINT" test $rc -eq 0
else
	fail "$N: console mode starts" "$(tail -n3 "$T/console.err" | tr '\n' ' ')"
fi

# 6b. systemd Type=notify: READY=1 once serving, STOPPING=1 on -k
sed 's/Systemd off/Systemd on/' "$T/fw1.conf" > "$T/fw1-sd.conf"
python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); s.bind(sys.argv[1]); s.settimeout(30)
open(sys.argv[1] + ".ready", "w").close()
while True:
    try:
        d = s.recv(4096)
    except socket.timeout:
        break
    print(d.decode(errors="replace").replace("\n", " "), flush=True)
' "$T/notify.sock" >"$T/notify.out" 2>&1 &
npid=$!; PIDS="$PIDS $npid"
wait_until 5 test -e "$T/notify.sock.ready"
NOTIFY_SOCKET="$T/notify.sock" ctd_daemon fw1 "$BIN" -C "$T/fw1-sd.conf" >/dev/null 2>&1 &
cpid=$!; PIDS="$PIDS $cpid"
if wait_until 10 nsx fw1 "$BIN" -C "$T/fw1-sd.conf" -s runtime; then
	WHY="notifications: $(tr '\n' '|' <"$T/notify.out")"
	check "$N: Systemd on: READY=1 sent to NOTIFY_SOCKET" wait_until 5 grep -q 'READY=1' "$T/notify.out"
	nsx fw1 "$BIN" -C "$T/fw1-sd.conf" -k >/dev/null 2>&1
	wait_until 5 bash -c "! kill -0 $cpid"
	WHY="notifications: $(tr '\n' '|' <"$T/notify.out")"
	check "$N: Systemd on: STOPPING=1 on -k" wait_until 5 grep -q 'STOPPING=1' "$T/notify.out"
else
	fail "$N: console daemon with Systemd on starts" "no answer on the socket"
fi
kill $npid 2>/dev/null

# 7. crash: SIGKILL leaves lock and socket; recovery after removing the lock
if ctd_start fw1; then
	pid=$(ctd_pids fw1)
	kill -KILL $pid; wait_until 5 gone "$pid"
	WHY="lock or socket gone"; check "$N: SIGKILL leaves stale lock and socket" test -e "$T/fw1.lock" -a -S "$T/fw1.ctl"
	ctd fw1 -s >/dev/null 2>&1; rc=$?
	WHY="exit $rc"; check "$N: -s against a dead daemon exits 1" test $rc -eq 1
	ctd_daemon fw1 "$BIN" -C "$T/fw1.conf" -d >/dev/null 2>&1; rc=$?
	WHY="exit $rc"; check "$N: -d refused while the stale lock exists" test $rc -eq 1
	rm -f "$T/fw1.lock"
	if ctd_start fw1; then pass "$N: -d replaces the stale socket after lock removal"
	else fail "$N: -d replaces the stale socket after lock removal" "$CTD_ERR"; fi
	ctd_stop fw1

	# 8. keepalived "backup" transition on a crashed daemon
	if ctd_start fw1; then
		kill -KILL $(ctd_pids fw1); wait_until 5 no_daemon
		primary_backup_script fw1 backup >"$T/pb.out" 2>&1; rc=$?
		WHY="exit $rc: $(tail -n3 "$T/pb.out" | tr '\n' ' ')"
		check "$N: primary-backup.sh backup restarts a crashed daemon" test $rc -eq 0
		WHY="no answer"; check "$N: daemon serves after the backup transition" ctd_alive fw1
		WHY="log tail: $(tail -n3 "$T/fw1.log" | tr '\n' ' ')"
		check "$N: backup transition logged -t and -n" \
			bash -c "grep -q 'flushing conntrack table in' '$T/fw1.log' && grep -q 'resync requested' '$T/fw1.log'"
		ctd_stop fw1
	fi
else
	fail "$N: start for the crash test" "$CTD_ERR"
fi

finish
