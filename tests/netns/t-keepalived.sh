#!/bin/bash
# keepalived integration (issue "Operations").
#
# Namespace scenario of lib.sh (client, fw1, fw2, server), FT-FW over
# multicast, ExpectationSync on, FTP helper on both firewalls, passive FTP.
#   upstream  Debian's /usr/share/doc/conntrackd/examples/sync/primary-backup.sh,
#             unchanged but for its three variables, drives our daemons
#             MASTER -> BACKUP -> MASTER: fw1 primary, failover to fw2,
#             failback to fw1; an FTP expectation survives each failover
#             (conntrack -L expect on the new primary shows it and the data
#             connection opens through it).
#   ours      the same with doc/sync/primary-backup.sh (variables from the
#             environment, as documented in doc/keepalived.md).
#   vrrp      real keepalived (VRRP unicast between fw1 and fw2 on LAN A,
#             both gateway addresses as VIPs) calling our notify script;
#             fw1's keepalived is stopped and the expectation survives.
#             SKIP when keepalived is not installed.
#   vrrp-noexp  negative control: the same with ExpectationSync off, the
#             data connection must be dropped by fw2.
#
# Environment: CASES (default "upstream ours vrrp vrrp-noexp"), CTD_FW1 and
# CTD_FW2 (ours|debian|path: mixed pairs under keepalived, as during an
# upgrade), VERBOSE, KEEP_TMP.
set -u
. "$(dirname "$0")/lib.sh"
need_root t-keepalived
lib_init

: "${CASES:=upstream ours vrrp vrrp-noexp}"
UPSTREAM=/usr/share/doc/conntrackd/examples/sync/primary-backup.sh
OURS=$TOP_DIR/doc/sync/primary-backup.sh

other() { [ "$1" = fw1 ] && echo fw2 || echo fw1; }

# checkw NAME WHY CMD...: like check, but WHY is shell code run only on
# failure, so the reason shows the state after CMD's waiting
checkw() {
	local _name=$1 _why=$2
	shift 2
	if "$@"; then pass "$_name"
	else fail "$_name" "$(eval "$_why" 2>&1 | tr '\n' ' ' | cut -c1-400)"; fi
}

# notify_script KIND FW: path of an executable notify script for FW that
# keepalived (or this test) can call with primary|backup|fault.
#   upstream: Debian's script with CONNTRACKD_BIN/LOCK/CONFIG substituted
#   ours:     a wrapper exporting the three variables, then our script as is
# Either way logger is the lib's stub (stderr), PATH set for it.
notify_script() {
	local kind=$1 fw=$2 out=$T/notify-$1-$2.sh bin
	bin=$(ctd_bin_for "$fw")
	case $kind in
	upstream)
		sed -e "s|^CONNTRACKD_BIN=.*|CONNTRACKD_BIN=$bin|" \
		    -e "s|^CONNTRACKD_LOCK=.*|CONNTRACKD_LOCK=$T/$fw.lock|" \
		    -e "s|^CONNTRACKD_CONFIG=.*|CONNTRACKD_CONFIG=$T/$fw.conf|" \
		    "$UPSTREAM" > "$T/primary-backup-upstream-$fw.sh"
		# nothing else changed: only the three assignments differ
		if diff "$UPSTREAM" "$T/primary-backup-upstream-$fw.sh" | grep '^[<>]' |
		   grep -qv '^[<>] CONNTRACKD_\(BIN\|LOCK\|CONFIG\)='; then
			echo "notify_script: substitution changed more than the three variables" >&2
			return 1
		fi
		cat > "$out" <<-EOF
		#!/bin/sh
		export PATH="$T_BASE/bin:\$PATH"
		echo "\$(date +%s.%N) \$*" >> "$T/notify-$fw.calls"
		exec sh "$T/primary-backup-upstream-$fw.sh" "\$@" 2>>"$T/notify-$fw.err"
		EOF
		;;
	ours)
		cat > "$out" <<-EOF
		#!/bin/sh
		export PATH="$T_BASE/bin:\$PATH"
		export CONNTRACKD_BIN="$bin" CONNTRACKD_LOCK="$T/$fw.lock" CONNTRACKD_CONFIG="$T/$fw.conf"
		echo "\$(date +%s.%N) \$*" >> "$T/notify-$fw.calls"
		exec sh "$OURS" "\$@" 2>>"$T/notify-$fw.err"
		EOF
		;;
	esac
	chmod +x "$out"
	echo "$out"
}

# move_vips FROM TO: the floating addresses and the hosts' ARP entries
# (what keepalived's address handling and gratuitous ARP do)
move_vips() {
	local from=$1 to=$2 mac_a mac_b
	ip -n "$(ns_of "$from")" addr del $VIP_A/24 dev lan-a 2>/dev/null
	ip -n "$(ns_of "$from")" addr del $VIP_B/24 dev lan-b 2>/dev/null
	ip -n "$(ns_of "$to")" addr add $VIP_A/24 dev lan-a
	ip -n "$(ns_of "$to")" addr add $VIP_B/24 dev lan-b
	mac_a=$(nsx "$to" cat /sys/class/net/lan-a/address)
	mac_b=$(nsx "$to" cat /sys/class/net/lan-b/address)
	ip -n "$NS_CLIENT" neigh replace $VIP_A lladdr "$mac_a" dev br0 nud reachable
	ip -n "$NS_SERVER" neigh replace $VIP_B lladdr "$mac_b" dev br0 nud reachable
}

# notify KIND FW STATE: run FW's notify script in FW's namespace
notify() {
	nsx "$2" "$T/notify-$1-$2.sh" "$3" >>"$T/$2.client" 2>&1
}

# notify_clean NAME FW: the script ran without an ERROR from logger
notify_clean() {
	WHY="$(grep -h ERROR "$T/notify-$2.err" 2>/dev/null | head -2 | tr '\n' ' ')"
	check "$1" eval "! grep -q ERROR '$T/notify-$2.err' 2>/dev/null"
}

# expect_survives NAME NEWPRIMARY TAG PORT: after the failover the new
# primary's kernel has the expectation and the data connection of session
# TAG gets the listing through it
expect_survives() {
	local name=$1 fw=$2 tag=$3 port=$4 out
	out=$(nsx "$fw" conntrack -L expect 2>/dev/null)
	WHY="conntrack -L expect on $fw: ${out:-<empty>}; $(grep -i commit "$T/$fw.log" | tail -n3 | tr '\n' ' ')"
	check "$name: conntrack -L expect on $fw (new primary) shows dport=$port" grep -q "dport=$port " <<<"$out"
	checkw "$name: data connection through $fw gets the listing" \
		'echo "client: $(cat "$T/ftp-$tag.err")"' ftp_data_connect "$tag"
	WHY="$(nsx "$fw" conntrack -L -p tcp 2>/dev/null | tr '\n' ' ')"
	check "$name: $fw tracked the data connection" \
		bash -c "ip netns exec $(ns_of "$fw") conntrack -L -p tcp --dport $port 2>/dev/null | grep -q 'dport=$port '"
}

# synced NAME PRIMARY TAG: session TAG's expectation is in the primary's
# internal cache and the backup's external cache; sets PORT
synced() {
	local name=$1 fw=$2 tag=$3 bk
	bk=$(other "$fw")
	PORT=$FTP_PORT
	checkw "$name: $fw -i expect shows session $tag's expectation" \
		'echo "no dport=$PORT: $(ctd "$fw" -i expect | head -3)"' \
		wait_until 5 ctd_has "$fw" "dport=$PORT " -i expect
	checkw "$name: $bk -e expect shows it" \
		'echo "no dport=$PORT: $(ctd "$bk" -e expect | head -3)"' \
		wait_until 5 ctd_has "$bk" "dport=$PORT " -e expect
}

# exp_metric_matches FW internal|external -i|-e: conntrackd_cache_entries
# for that expectation cache equals the number of lines -i/-e expect prints
exp_metric_matches() {
	local m n
	m=$(ctd "$1" -s metrics | awk -v s="conntrackd_cache_entries{cache=\"$2\",kind=\"exp\"}" '$1 == s {print $2}')
	n=$(ctd "$1" "$3" expect | grep -c 'dport=')
	[ -n "$m" ] && [ "$m" = "$n" ] && [ "$n" -gt 0 ] && return 0
	WHY="$1: metrics $2 exp=${m:-<absent>}, $3 expect lists $n"
	return 1
}

# ---------------------------------------------- script-driven transitions
run_script_case() {
	local kind=$1 name="keepalived[$1 script]"
	new_case "$kind"
	if [ "$kind" = upstream ] && [ ! -f "$UPSTREAM" ]; then
		skip "$name" "$UPSTREAM missing (Debian package conntrackd)"
		return
	fi
	if ! topo_up; then fail "$name: topology" "see stderr"; topo_down; return; fi
	ftp_server_start || { fail "$name: ftp server" "did not start"; topo_down; return; }
	ctd_conf fw1 ftfw mcast on
	ctd_conf fw2 ftfw mcast on
	if ! notify_script "$kind" fw1 >/dev/null || ! notify_script "$kind" fw2 >/dev/null; then
		fail "$name: notify scripts" "see stderr"; topo_down; return
	fi
	if ! ctd_start fw1 || ! ctd_start fw2; then
		fail "$name: daemons start" "$CTD_ERR"; topo_down; return
	fi
	# keepalived's start: fw1 MASTER, fw2 BACKUP
	notify "$kind" fw1 primary; notify "$kind" fw2 backup
	notify_clean "$name: start: fw1 primary, fw2 backup without errors" fw1

	# 1: MASTER fw1 -> fw2
	ftp_session_open s1 || { fail "$name: FTP session through fw1" "no PASV reply"; topo_down; return; }
	synced "$name: 1" fw1 s1
	# monitoring sees the expectation caches as -i/-e list them
	if [ "$CTD_FW1:$CTD_FW2" = ours:ours ]; then
		exp_metric_matches fw1 internal -i && exp_metric_matches fw2 external -e
		check "$name: 1: -s metrics counts the expectations -i/-e list" test $? = 0
	else
		skip "$name: 1: -s metrics counts the expectations" "1.4.7 has no -s metrics"
	fi
	notify "$kind" fw1 backup
	move_vips fw1 fw2
	notify "$kind" fw2 primary
	notify_clean "$name: 1: fw1 backup, fw2 primary without errors" fw2
	WHY="$(tail -n5 "$T/fw2.log" | tr '\n' ' ')"
	check "$name: 1: fw2 committed (log)" grep -q 'committing all external caches' "$T/fw2.log"
	expect_survives "$name: 1" fw2 s1 "$PORT"

	# 2: back to fw1 (fw2 BACKUP, fw1 MASTER again)
	ftp_session_open s2 || { fail "$name: FTP session through fw2" "no PASV reply"; topo_down; return; }
	synced "$name: 2" fw2 s2
	notify "$kind" fw2 backup
	move_vips fw2 fw1
	notify "$kind" fw1 primary
	notify_clean "$name: 2: fw2 backup, fw1 primary without errors" fw1
	expect_survives "$name: 2" fw1 s2 "$PORT"
	WHY="$(grep -c . "$T/notify-fw1.calls" 2>/dev/null) calls on fw1"
	check "$name: both daemons still answer after MASTER->BACKUP->MASTER" \
		bash -c "ip netns exec $NS_FW1 $(ctd_bin_for fw1) -C $T/fw1.conf -s >/dev/null && ip netns exec $NS_FW2 $(ctd_bin_for fw2) -C $T/fw2.conf -s >/dev/null"
	[ "${KEEP_TMP:-0}" = 1 ] && note "logs in $T"
	topo_down
}

# --------------------------------------------------------- real keepalived
# ka_conf FW PRIO: VRRP over LAN A, unicast to the other firewall (no
# multicast leaves our namespaces), both gateways as VIPs, notify scripts
ka_conf() {
	local fw=$1 prio=$2 me peer ns=$T/notify-ours-$1.sh
	case $fw in fw1) me=$FW1_A; peer=$FW2_A;; fw2) me=$FW2_A; peer=$FW1_A;; esac
	cat > "$T/ka-$fw.conf" <<-EOF
	global_defs {
		router_id ctdtest_$fw
		script_user root
		vrrp_garp_master_delay 1
		vrrp_garp_master_repeat 3
	}
	vrrp_instance GW {
		state BACKUP
		interface lan-a
		virtual_router_id 61
		priority $prio
		advert_int 1
		unicast_src_ip $me
		unicast_peer {
			$peer
		}
		virtual_ipaddress {
			$VIP_A/24 dev lan-a
			$VIP_B/24 dev lan-b
		}
		notify_master "$ns primary"
		notify_backup "$ns backup"
		notify_fault "$ns fault"
	}
	EOF
}

ka_start() {
	local fw=$1
	# direct exec (not through a shell function) so that $! is keepalived
	ip netns exec "$(ns_of "$fw")" keepalived -n -l -D -P -f "$T/ka-$fw.conf" -p "$T/ka-$fw.pid" \
		-r "$T/ka-$fw-vrrp.pid" -c "$T/ka-$fw-chk.pid" >"$T/ka-$fw.log" 2>&1 &
	eval "KA_PID_$fw=$!"
	PIDS="$PIDS $!"
}

has_vip() { nsx "$1" ip -4 addr show dev lan-a | grep -q " $VIP_A/"; }
called() { grep -q " $2\$" "$T/notify-$1.calls" 2>/dev/null; }
committed() { grep -q 'committing all external caches' "$T/$1.log"; }
# the client's ARP entry for the gateway points at FW (gratuitous ARP)
arp_at() {
	local mac
	mac=$(nsx "$1" cat /sys/class/net/lan-a/address)
	ip -n "$NS_CLIENT" neigh show $VIP_A | grep -q "lladdr $mac"
}

# run_vrrp_case on|off: ExpectationSync on (the expectation survives) or
# off (negative control: fw2 drops the data connection)
run_vrrp_case() {
	local exp=$1 name="keepalived[vrrp expect=$1]" p
	if ! command -v keepalived >/dev/null; then
		skip "$name" "keepalived not installed (Debian package keepalived)"
		return
	fi
	new_case "vrrp-$exp"
	if ! topo_up; then fail "$name: topology" "see stderr"; topo_down; return; fi
	ftp_server_start || { fail "$name: ftp server" "did not start"; topo_down; return; }
	# keepalived owns the gateway addresses from now on
	ip -n "$NS_FW1" addr del $VIP_A/24 dev lan-a
	ip -n "$NS_FW1" addr del $VIP_B/24 dev lan-b
	ctd_conf fw1 ftfw mcast "$exp"
	ctd_conf fw2 ftfw mcast "$exp"
	notify_script ours fw1 >/dev/null; notify_script ours fw2 >/dev/null
	if ! ctd_start fw1 || ! ctd_start fw2; then
		fail "$name: daemons start" "$CTD_ERR"; topo_down; return
	fi
	ka_conf fw1 150; ka_conf fw2 100
	ka_start fw1; ka_start fw2
	checkw "$name: fw1 becomes VRRP MASTER and holds the VIPs" \
		'echo "fw1 keepalived: $(tail -n3 "$T/ka-fw1.log")"' wait_until 10 has_vip fw1
	checkw "$name: keepalived ran primary-backup.sh primary on fw1" \
		'echo "calls: $(cat "$T/notify-fw1.calls")"' wait_until 5 called fw1 primary
	checkw "$name: keepalived ran primary-backup.sh backup on fw2" \
		'echo "calls: $(cat "$T/notify-fw2.calls"); $(tail -n3 "$T/ka-fw2.log")"' wait_until 5 called fw2 backup
	if has_vip fw2; then fail "$name: fw2 does not hold the VIPs while fw1 is MASTER"; fi
	# the client may still have the address from topo_up: it is fw1's MAC
	wait_until 5 arp_at fw1 || ip -n "$NS_CLIENT" neigh flush $VIP_A

	if ! ftp_session_open s1; then
		fail "$name: FTP session through fw1" "no PASV reply"; topo_down; return
	fi
	if [ "$exp" = on ]; then
		synced "$name" fw1 s1
	else
		PORT=$FTP_PORT
		# the control connection (not the absent expectation) reached fw2
		wait_until 5 ctd_has fw2 "dport=21 " -e
	fi

	# fw1's keepalived goes away (priority 0 advert): fw2 takes over
	eval "p=\$KA_PID_fw1"
	kill -TERM "$p"
	wait_until 5 bash -c "! kill -0 $p"
	checkw "$name: fw1's keepalived stopped, fw2 becomes MASTER with the VIPs" \
		'echo "fw2 keepalived: $(tail -n3 "$T/ka-fw2.log")"' wait_until 10 has_vip fw2
	checkw "$name: keepalived ran primary-backup.sh primary on fw2" \
		'echo "calls: $(cat "$T/notify-fw2.calls")"' wait_until 5 called fw2 primary
	checkw "$name: fw2 committed its external caches" \
		'tail -n4 "$T/fw2.log"' wait_until 5 committed fw2
	notify_clean "$name: notify scripts ran without errors" fw2
	# keepalived's gratuitous ARP moves the client; the server side too
	if wait_until 5 arp_at fw2; then
		pass "$name: gratuitous ARP from fw2 moved the client's gateway entry"
	else
		fail "$name: gratuitous ARP from fw2 moved the client's gateway entry" \
			"$(ip -n "$NS_CLIENT" neigh show $VIP_A)"
	fi
	# the data connection must leave only once the script has finished
	# (keepalived does not wait for it)
	if [ "$exp" = on ]; then
		wait_until 5 bash -c "ip netns exec $NS_FW2 conntrack -L expect 2>/dev/null | grep -q 'dport=$PORT '"
		expect_survives "$name" fw2 s1 "$PORT"
	else
		WHY="$(nsx fw2 conntrack -L expect 2>/dev/null | tr '\n' ' ')"
		check "$name: no expectation in fw2's kernel" \
			bash -c "! ip netns exec $NS_FW2 conntrack -L expect 2>/dev/null | grep -q 'dport=$PORT '"
		if ftp_data_connect s1; then
			fail "$name: fw2 drops the data connection (negative control)" "listing arrived"
		else
			checkw "$name: fw2 drops the data connection (negative control)" \
				'echo "client said: $(cat "$T/ftp-s1.err")"' grep -q "data connection" "$T/ftp-s1.err"
		fi
	fi
	[ "${KEEP_TMP:-0}" = 1 ] && note "logs in $T"
	topo_down
}

for c in $CASES; do
	case $c in
	upstream|ours) run_script_case "$c";;
	vrrp) run_vrrp_case on;;
	vrrp-noexp) run_vrrp_case off;;
	*) fail "t-keepalived: unknown case $c";;
	esac
done
finish
