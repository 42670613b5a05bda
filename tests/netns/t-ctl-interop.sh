#!/bin/bash
# shellcheck disable=SC2034,SC2046,SC2010 # globals read by lib.sh; lists split on purpose
# Control-socket interoperability and robustness:
#  * Debian's client against our daemon, our client against Debian's daemon:
#    same answers (counter values masked) and exit codes as Debian/Debian;
#  * a client that connects and sends nothing does not stall our daemon;
#  * garbage, short and unknown requests do not kill it.
# CTD_ROBUST_DEBIAN=1 also runs the robustness part against Debian's daemon
# (1.4.7 is documented to stall on a silent client; informational only).
set -u
. "$(dirname "$0")/lib.sh"
need_root t-ctl-interop
lib_init

OURS=$CTD_OURS DEB=$CTD_DEBIAN
REQS=("-s" "-s cache" "-s network" "-s runtime" "-s link" "-s queue" "-s rsqueue" \
      "-s expect" "-s process" "-i" "-e" "-i expect" "-e expect" "-i -x" "-e expect -x" \
      "-i exp" "-s net" "-e e" "-i expectation")

single_fw_up || { fail "ctl-interop: namespace"; finish; exit; }
ctd_conf fw1 ftfw mcast on

# mask counters (numbers and their padding) so layouts compare exactly, and
# the binary's path (usage text shows argv[0])
mask() { sed -E -e "s|$OURS|conntrackd|g; s|$DEB|conntrackd|g" -e 's/ *[0-9]+/N/g'; }

# collect DAEMONKIND CLIENTBIN TAG: run every request, store output + rc
collect() {
	local tag=$3 i=0 r
	for r in "${REQS[@]}"; do
		# shellcheck disable=SC2086
		timeout 5 ip netns exec "$NS_FW1" "$2" -C "$T/fw1.conf" $r >"$T/$tag.$i" 2>"$T/$tag.$i.err"
		echo $? >"$T/$tag.$i.rc"
		i=$((i + 1))
	done
}

# compare TAG_A TAG_B LABEL
compare() {
	local a=$1 b=$2 label=$3 i=0 r
	for r in "${REQS[@]}"; do
		if [ ! -f "$T/$b.$i" ]; then i=$((i + 1)); continue; fi
		if [ "$(cat "$T/$a.$i.rc")" != "$(cat "$T/$b.$i.rc")" ]; then
			fail "$label: conntrackd $r" "exit $(cat "$T/$b.$i.rc"), reference $(cat "$T/$a.$i.rc")"
		elif diff <(mask <"$T/$a.$i") <(mask <"$T/$b.$i") >"$T/diff" 2>&1; then
			pass "$label: conntrackd $r"
		else
			fail "$label: conntrackd $r" "differs from reference: $(head -n4 "$T/diff" | tr '\n\t' '| ')"
		fi
		i=$((i + 1))
	done
}

have_ours=0; [ -x "$OURS" ] && have_ours=1

# --- reference daemon
CTD_FW1=debian
if ctd_start fw1; then
	collect debian "$DEB" deb-deb
	if [ $have_ours = 1 ]; then
		collect debian "$OURS" deb-ours
		compare deb-deb deb-ours "our client -> Debian daemon"
	else
		fail "our client -> Debian daemon" "$OURS missing (run scripts/build.sh)"
	fi
	ctd_stop fw1
else
	fail "ctl-interop: Debian daemon starts" "$CTD_ERR"
fi

# silent_client_ok LABEL: a silent connection must not block a second client
silent_client_ok() {
	local label=$1 spid rc
	ip netns exec "$NS_FW1" python3 -c '
import socket, sys, time
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); time.sleep(8)' "$T/fw1.ctl" &
	spid=$!; PIDS="$PIDS $spid"
	sleep 0.3	# let the silent client be accepted first (not a wait for a result)
	timeout 3 ip netns exec "$NS_FW1" "$DEB" -C "$T/fw1.conf" -s runtime >/dev/null 2>&1
	rc=$?
	kill $spid 2>/dev/null; wait $spid 2>/dev/null
	WHY="second client's -s got no answer within 3 s (rc $rc)"
	check "$label: a silent client does not stall the daemon" test $rc -eq 0
}

# poke NAME PYTHON-BYTES: send raw bytes, then the daemon must still answer
poke() {
	local label=$1 name=$2 bytes=$3 pid0 pid1
	pid0=$(ctd_pids fw1)
	ip netns exec "$NS_FW1" timeout 5 python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.settimeout(3)
s.sendall(eval(sys.argv[2]))
try:
    while s.recv(4096): pass
except OSError: pass' "$T/fw1.ctl" "$bytes" >/dev/null 2>&1
	pid1=$(ctd_pids fw1)
	WHY="daemon gone or not answering after $name (pid $pid0 -> ${pid1:-none})"
	check "$label: survives $name" wait_until 3 ctd_alive fw1
}

robustness() {
	local label=$1
	silent_client_ok "$label"
	poke "$label" "64 garbage bytes" "bytes(range(200, 256)) + b'garbage!'"
	poke "$label" "a 2-byte request" "b'\\x15\\x00'"
	poke "$label" "unknown request 99" "(99).to_bytes(4, 'little')"
	poke "$label" "request -1" "b'\\xff\\xff\\xff\\xff'"
	poke "$label" "an empty connection" "b''"
	poke "$label" "1 MB of zeros" "bytes(1 << 20)"
	WHY="runtime stats: $(ctd fw1 -s runtime 2>&1 | grep -i 'local' | tr '\n\t' '  ')"
	check "$label: -s runtime still answers after the abuse" ctd_has fw1 "local read failed" -s runtime
}

# --- our daemon
if [ $have_ours = 1 ]; then
	CTD_FW1=ours
	if ctd_start fw1; then
		collect ours "$DEB" ours-deb
		compare deb-deb ours-deb "Debian client -> our daemon"
		collect ours "$OURS" ours-ours
		compare deb-deb ours-ours "our client -> our daemon"
		robustness "our daemon"
		ctd_stop fw1
	else
		fail "ctl-interop: our daemon starts" "$CTD_ERR"
	fi
else
	fail "Debian client -> our daemon" "$OURS missing (run scripts/build.sh)"
fi

if [ "${CTD_ROBUST_DEBIAN:-0}" = 1 ]; then
	CTD_FW1=debian
	ctd_start fw1 && robustness "Debian daemon (reference)"
	ctd_stop fw1
fi

# --- no daemon: both clients exit 1 with the same message
for kind in debian ours; do
	CTD_FW1=$kind
	bin=$(ctd_bin_for fw1)
	[ -x "$bin" ] || continue
	nsx fw1 "$bin" -C "$T/fw1.conf" -s >/dev/null 2>"$T/nod.err"; rc=$?
	WHY="exit $rc, stderr: $(cat "$T/nod.err")"
	check "$kind client: no daemon -> exit 1 + can't connect message" \
		bash -c "[ $rc -eq 1 ] && grep -q \"can't connect: is conntrackd running? appropriate permissions?\" '$T/nod.err'"
done

finish
