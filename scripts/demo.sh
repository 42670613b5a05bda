#!/bin/bash
# Live demo (< 1 min): an FTP session with a pending data connection
# survives the failover of its firewall thanks to conntrackd's FT-FW sync
# with expectations; then the same without expectation sync, where the data
# connection is dropped.
#
# Uses our daemon (build/src/conntrackd); CTD_BIN=/usr/sbin/conntrackd runs
# it with Debian's.  Exit status non-zero if the data connection fails with
# sync on, or unexpectedly succeeds with it off.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)

if [ "$(id -u)" != 0 ]; then echo "demo.sh: run as root (it creates network namespaces)" >&2; exit 1; fi
if [ -t 1 ]; then B=$'\e[1m' G=$'\e[32m' R=$'\e[31m' D=$'\e[2m' N=$'\e[0m'; else B="" G="" R="" D="" N=""; fi
say() { echo; echo "${B}>>> $*${N}"; }
show() { sed "s/^/    ${D}/; s/\$/${N}/"; }
run() { echo "    \$ ${*:2}"; nsx "$1" "${@:2}" 2>&1 | show; }

echo "${B}conntrackd demo: FTP failover between two firewalls${N}"
sh "$top/scripts/deps.sh" || exit 1
if [ -z "${CTD_BIN:-}" ]; then
	echo "building (scripts/build.sh normal) ..."
	sh "$top/scripts/build.sh" normal >/dev/null 2>&1
	case $? in 0|3) ;; *) echo "demo.sh: build failed (see build/make.out)" >&2; exit 1;; esac
	CTD_BIN=$top/build/src/conntrackd
fi
[ -x "$CTD_BIN" ] || { echo "demo.sh: no daemon at $CTD_BIN" >&2; exit 1; }

. "$top/tests/netns/lib.sh"
# shellcheck disable=SC2034 # read by lib.sh
CTD_FW1=$CTD_BIN CTD_FW2=$CTD_BIN
lib_init
trap 'echo; echo "interrupted, cleaning up"; exit 130' INT

rc=0
# act EXPECT(on|off)
act() {
	local exp=$1 port ok
	new_case "demo-$exp"
	say "Topology: client --LAN A-- fw1/fw2 --LAN B-- server; gateway $VIP_A/$VIP_B on fw1; sync link fw1<->fw2"
	topo_up || { echo "topology failed" >&2; return 1; }
	echo "    nftables on both firewalls: forward policy drop, established/related accepted,"
	echo "    new FTP control connections accepted with the 'ftp' conntrack helper attached"
	ftp_server_start || { echo "FTP server did not start" >&2; return 1; }

	say "Start conntrackd on both firewalls: FT-FW over multicast, ExpectationSync $exp"
	ctd_conf fw1 ftfw mcast "$exp"; ctd_conf fw2 ftfw mcast "$exp"
	sed -n '/^Sync/,/^}/p' "$T/fw1.conf" | show
	ctd_start fw1 && ctd_start fw2 || { echo "$CTD_ERR" >&2; return 1; }
	echo "    daemons running: $CTD_BIN"

	say "Client opens an FTP control connection to $SERVER_IP through fw1 and enters passive mode"
	ftp_session_open s1 || return 1
	port=$FTP_PORT
	echo "    server announced data port $port; fw1's FTP helper now expects that connection"
	if [ "$exp" = on ]; then
		wait_until 5 ctd_has fw1 "dport=$port " -i expect
		wait_until 5 ctd_has fw2 "dport=$port " -e expect
	else
		echo "    (without ExpectationSync the daemons neither cache nor send expectations)"
	fi
	say "fw1: conntrackd -i expect (internal cache: what fw1's kernel has)"
	run fw1 "$(ctd_bin_for fw1)" -C "$T/fw1.conf" -i expect
	say "fw2: conntrackd -e expect (external cache: what fw2 received from fw1)"
	run fw2 "$(ctd_bin_for fw2)" -C "$T/fw2.conf" -e expect

	say "fw1 fails: gateway addresses move to fw2, keepalived's notify script runs 'primary' on fw2"
	move_vips_to_fw2
	local before; before=$(wc -l <"$T/fw2.log")
	primary_backup_script fw2 primary 2>&1 | show
	echo "    fw2 log:"
	tail -n +"$((before + 1))" "$T/fw2.log" | show
	say "fw2 kernel: conntrack -L expect"
	run fw2 conntrack -L expect

	say "Client opens the data connection to $SERVER_IP:$port, now through fw2"
	if ftp_data_connect s1; then ok=1; else ok=0; fi
	if [ $ok = 1 ]; then
		echo "    listing received:"; show <"$T/ftp-s1.out"
	else
		echo "    ${R}no listing:${N} $(cat "$T/ftp-s1.err")"
	fi
	if [ "$exp" = on ]; then
		if [ $ok = 1 ]; then echo "${G}${B}OK: the FTP session survived the failover${N}"
		else echo "${R}${B}FAILED: the data connection did not get through fw2${N}"; rc=1; fi
	else
		if [ $ok = 0 ]; then echo "${G}${B}OK: without expectation sync fw2 drops the data connection, as expected${N}"
		else echo "${R}${B}FAILED: the data connection got through without expectation sync${N}"; rc=1; fi
	fi
	topo_down
}

act on || rc=1
say "Same again with ExpectationSync off (negative control)"
act off || rc=1
echo
[ $rc = 0 ] && echo "${B}demo finished: all good${N}" || echo "${R}${B}demo finished with failures${N}"
exit $rc
