#!/bin/bash
# shellcheck disable=SC2034,SC2046,SC2010 # globals read by lib.sh; lists split on purpose
# An established, source-NATed TCP connection survives the failover: fw1
# and fw2 both SNAT the client LAN to the floating address VIP_B; the server
# answers to VIP_B, which moves to fw2, so fw2 can only un-NAT the replies
# with the NAT binding it got from conntrackd.  Negative control: the same
# failover without the commit breaks the connection.
# Pairs: CTD_FW1/CTD_FW2 (default ours->ours, debian->ours, ours->debian);
# CASES "mode:channel ..." (default ftfw:mcast notrack:udp).
set -u
. "$(dirname "$0")/lib.sh"
need_root t-nat
lib_init
: "${CASES:=ftfw:mcast notrack:udp}"
if [ -n "$(printenv CTD_FW1)$(printenv CTD_FW2)" ]; then
	PAIRS="$CTD_FW1:$CTD_FW2"
else
	PAIRS="ours:ours debian:ours ours:debian"
fi
PORT=7777

nat_rules() {
	nsx "$1" nft -f - <<-EOF
	table ip ctdnat {
		chain post {
			type nat hook postrouting priority srcnat; policy accept;
			oifname "lan-b" ip saddr 10.1.0.0/24 snat to $VIP_B
		}
	}
	table inet ctdtest {
		chain forward {
			tcp dport $PORT ct state new accept
		}
	}
	EOF
}

echo_server() {
	nsx server python3 -c '
import socket, sys, threading
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind((sys.argv[1], int(sys.argv[2]))); srv.listen(8)
open(sys.argv[3], "w").close()
def serve(c, a):
    print("peer %s:%d" % a, flush=True)
    while True:
        d = c.recv(100)
        if not d: break
        c.sendall(d)
while True:
    c, a = srv.accept(); threading.Thread(target=serve, args=(c, a), daemon=True).start()
' $SERVER_IP $PORT "$T/echo.ready" >"$T/echo.log" 2>&1 &
	PIDS="$PIDS $!"
	wait_until 5 test -e "$T/echo.ready"
}

# client: one echo before, waits for $T/go, one echo after (5 s deadline)
echo_client() {
	nsx client python3 -c '
import os, socket, sys, time
c = socket.create_connection((sys.argv[1], int(sys.argv[2])), 5); c.settimeout(5)
c.sendall(b"before"); assert c.recv(100) == b"before"
open(sys.argv[3], "w").write("%d\n" % c.getsockname()[1])
while not os.path.exists(sys.argv[4]): time.sleep(0.05)
try:
    c.sendall(b"after"); d = c.recv(100)
except OSError as e:
    sys.exit("after failover: %s" % e)
sys.exit(0 if d == b"after" else "after failover: got %r" % d)
' $SERVER_IP $PORT "$T/cli.port" "$T/go" 2>"$T/cli.err" &
	CLI_PID=$!
	PIDS="$PIDS $CLI_PID"
	wait_until 5 test -s "$T/cli.port"
}

client_done() { ! kill -0 "$CLI_PID" 2>/dev/null; }

run_case() {
	local k1=$1 k2=$2 mode=$3 chan=$4 commit=$5 sport rc
	local name="nat[$k1->$k2 $mode/$chan${commit:+}]"
	[ "$commit" = no ] && name="nat[$k1->$k2 $mode/$chan, no commit]"
	CTD_FW1=$k1 CTD_FW2=$k2
	new_case "$k1-$k2-$mode-$chan-$commit"
	topo_up || { fail "$name: topology"; topo_down; return; }
	nat_rules fw1 && nat_rules fw2 || { fail "$name: nft NAT rules"; topo_down; return; }
	echo_server || { fail "$name: echo server"; topo_down; return; }
	ctd_conf fw1 "$mode" "$chan" on
	ctd_conf fw2 "$mode" "$chan" on
	if ! ctd_start fw1 || ! ctd_start fw2; then fail "$name: daemons start" "$CTD_ERR"; topo_down; return; fi
	if ! echo_client; then fail "$name: connection through fw1" "$(cat "$T/cli.err")"; topo_down; return; fi
	sport=$(cat "$T/cli.port")
	WHY="server log: $(cat "$T/echo.log")"
	check "$name: the server sees the client as $VIP_B (SNAT on fw1)" grep -q "peer $VIP_B:" "$T/echo.log"
	WHY="fw2 -e: $(ctd fw2 -e 2>&1 | grep "dport=$PORT" | head -n1)"
	check "$name: fw2's external cache has the NATed connection" \
		wait_until 5 ctd_has fw2 "sport=$sport dport=$PORT" -e
	move_vips_to_fw2
	if [ "$commit" = yes ]; then
		ctd fw2 -c >/dev/null 2>&1
		WHY="fw2 kernel: $(nsx fw2 conntrack -L -p tcp --dport $PORT 2>/dev/null)"
		check "$name: after -c fw2's kernel has it with the NAT binding (reply to $VIP_B)" \
			eval "nsx fw2 conntrack -L -p tcp --dport $PORT 2>/dev/null | grep 'sport=$sport ' | grep -q 'dst=$VIP_B '"
	fi
	touch "$T/go"
	wait_until 10 client_done
	wait "$CLI_PID" 2>/dev/null; rc=$?
	if [ "$commit" = yes ]; then
		WHY="$(cat "$T/cli.err")"
		check "$name: the established connection keeps working through fw2" test $rc -eq 0
	else
		WHY="the connection survived without a commit"
		check "$name: without the commit the connection breaks (negative control)" test $rc -ne 0
	fi
	topo_down
}

for pair in $PAIRS; do
	for c in $CASES; do
		run_case "${pair%%:*}" "${pair#*:}" "${c%%:*}" "${c#*:}" yes
	done
	run_case "${pair%%:*}" "${pair#*:}" ftfw mcast no
done
finish
