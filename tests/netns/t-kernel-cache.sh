#!/bin/bash
# shellcheck disable=SC2034,SC2046,SC2010 # globals read by lib.sh; lists split on purpose
# Kernel side (issue "Kernel side"): the internal cache against the kernel.
#
# Debian's conntrackd runs in namespace fw1, ours in fw2 (override with
# CTD_FW1/CTD_FW2), each namespace gets the same traffic pattern: real TCP
# (FTP with the helper, fixed ports) and UDP, `conntrack -I` entries, an
# ICMP entry (protocol not accepted), entries of an ignored address, an FTP
# expectation whose master is ignored.  Then -i/-i expect/-s are compared
# between the two, and -f, -R, -F, -F expect, expectation removal and an
# event overrun are checked against `conntrack -L` on each side.
set -u
: "${CTD_FW1:=debian}"
: "${CTD_FW2:=ours}"
. "$(dirname "$0")/lib.sh"
need_root t-kernel-cache
lib_init
SIDES="fw1 fw2"
label() { echo "$(ctd_kind_for "$1")@$1"; }

CLI=192.0.2.1 SRV=192.0.2.2 IGN=$FW1_A     # IGN is in every Address Ignore
# kernel lines a daemon with our ctd_conf Filter accepts (TCP/UDP, no
# ignored address on either tuple)
IGN_RE="=($(echo 127.0.0.1 $FW1_A $FW2_A $FW1_B $FW2_B $VIP_A $VIP_B $FW1_S $FW2_S | sed 's/\./\\./g; s/ /|/g')) "
accepted() { grep -E '^(tcp|udp) ' | grep -v -E "$IGN_RE"; }
# "proto src dst sport dport" of the original tuple, sorted
tuples() {
	sed -n -E 's/^([a-z]+) .*(src=[^ ]+ dst=[^ ]+ sport=[0-9]+ dport=[0-9]+).*$/\1 \2/p' |
		sed -E 's/^([a-z]+) .*(src=[^ ]+ dst=[^ ]+ sport=[0-9]+ dport=[0-9]+)$/\1 \2/' | sort
}
# the first tuple only: cut each line before the second "src="
first_tuples() {
	awk '{ s = ""; n = 0; for (i = 1; i <= NF; i++) { if ($i ~ /^src=/ && ++n == 2) break; s = s " " $i } print s }' | tuples
}
kernel_ct() { nsx "$1" conntrack -L 2>/dev/null; }
kernel_exp() { nsx "$1" conntrack -L expect 2>/dev/null; }
cache_tuples() { ctd "$1" -i 2>/dev/null | first_tuples; }
kernel_tuples() { kernel_ct "$1" | accepted | first_tuples; }
cache_is_kernel() { [ "$(cache_tuples "$1")" = "$(kernel_tuples "$1")" ]; }
empty_out() { [ -z "$(ctd "$1" "${@:2}" 2>/dev/null)" ]; }
kernel_has() { kernel_ct "$1" | grep -qF -- "$2"; }
kernel_lacks() { ! kernel_has "$@"; }
kexp_has() { kernel_exp "$1" | grep -qF -- "$2"; }
kexp_lacks() { ! kexp_has "$@"; }
ctd_lacks() { ! ctd_has "$@"; }

side_up() {
	local fw=$1
	single_fw_up "$fw" || return 1
	# local traffic between these addresses crosses lo and is tracked
	nsx "$fw" ip addr add $CLI/24 dev lo
	nsx "$fw" ip addr add $SRV/24 dev lo
	nsx "$fw" ip addr add $IGN/32 dev lo
	nsx "$fw" nft -f - <<-EOF || return 1
	table inet ctdtest {
		ct helper ftp-std {
			type "ftp" protocol tcp
		}
		chain out {
			type filter hook output priority filter; policy accept;
			tcp dport 21 ct helper set "ftp-std"
		}
	}
	EOF
	ctd_conf "$fw" ftfw udp on
	ctd_start "$fw"
}

# ftp FW TAG SRCADDR SPORT: PASV session from SRCADDR:SPORT to the server
ftp() {
	FTP_SRV_NS=$1 FTP_CLI_NS=$1 FTP_SRV_IP=$SRV FTP_BIND=$3 FTP_SPORT=$4 \
		ftp_session_open "$1-$2"
}

traffic() {
	local fw=$1
	FTP_SRV_NS=$fw FTP_SRV_IP=$SRV FTP_PASV_BASE=40001 ftp_server_start || return 1
	ftp "$fw" a $CLI 33001 || return 1      # expectation dport=40001
	ftp "$fw" b $IGN 33002 || return 1      # master ignored: dport=40002
	nsx "$fw" python3 -c '
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("'$SRV'", 5001))
c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); c.bind(("'$CLI'", 5000))
c.sendto(b"ping", ("'$SRV'", 5001)); d, a = s.recvfrom(100); s.sendto(b"pong", a)
c.settimeout(2); c.recvfrom(100)' || return 1
	nsx "$fw" conntrack -I -p tcp -s 198.51.100.1 -d 198.51.100.2 --sport 1000 --dport 80 \
		--state ESTABLISHED -t 600 -u ASSURED 2>/dev/null &&
	nsx "$fw" conntrack -I -p udp -s 198.51.100.3 -d 198.51.100.4 --sport 53 --dport 53 -t 600 2>/dev/null &&
	nsx "$fw" conntrack -I -p icmp -s 198.51.100.5 -d 198.51.100.6 --icmp-type 8 \
		--icmp-code 0 --icmp-id 1 -t 600 2>/dev/null &&
	nsx "$fw" conntrack -I -p tcp -s $IGN -d 198.51.100.7 --sport 2000 --dport 80 \
		--state ESTABLISHED -t 600 2>/dev/null
}

settled() {
	local fw=$1
	ctd_has "$fw" "sport=33001 dport=21" -i && ctd_has "$fw" "src=198.51.100.3" -i &&
		ctd_has "$fw" "src=198.51.100.1" -i && ctd_has "$fw" "dport=40001 " -i expect
}

# ---------------------------------------------------------------- setup
live=""
for fw in $SIDES; do
	if ! side_up "$fw"; then fail "kernel-cache[$(label $fw)]: daemon starts" "$CTD_ERR"; continue; fi
	if ! traffic "$fw"; then fail "kernel-cache[$(label $fw)]: traffic pattern" "$(cat "$T"/ftp-$fw-*.err 2>/dev/null)"; continue; fi
	live="$live $fw"
done
for fw in $live; do
	WHY="-i: $(ctd $fw -i 2>&1 | head -n3 | tr '\n' '|') -i expect: $(ctd $fw -i expect 2>&1 | head -n2)"
	check "kernel-cache[$(label $fw)]: events reach the internal cache" wait_until 10 settled "$fw"
done

# ------------------------------------------ ours vs Debian: same answers
if [ "$(echo $live)" = "fw1 fw2" ]; then
	N="kernel-cache[$CTD_FW2@fw2 vs $CTD_FW1@fw1]"
	for what in "-i" "-i expect"; do
		# shellcheck disable=SC2086
		if diff <(ctd fw1 $what | strip_active) <(ctd fw2 $what | strip_active) >"$T/diff"; then
			pass "$N: conntrackd $what gives the same lines"
		else
			fail "$N: conntrackd $what gives the same lines" "$(grep '^[<>]' "$T/diff" | head -n4 | tr '\n' '|')"
		fi
	done
	for what in "-s ct" "-s expect" "-s cache"; do
		# shellcheck disable=SC2086
		if diff <(ctd fw1 $what | sed -E 's/ *[0-9]+/N/g') <(ctd fw2 $what | sed -E 's/ *[0-9]+/N/g') >"$T/diff"; then
			pass "$N: conntrackd $what has the same fields"
		else
			fail "$N: conntrackd $what has the same fields" "$(grep '^[<>]' "$T/diff" | head -n4 | tr '\n' '|')"
		fi
	done
fi

# ---------------------------------------------------------------- per side
for fw in $live; do
	N="kernel-cache[$(label $fw)]"
	# Filter
	WHY="kernel: $(kernel_ct $fw | grep icmp); cache: $(ctd $fw -i | grep icmp)"
	check "$N: ignored protocol (icmp) is in the kernel, not in the cache" \
		eval "kernel_has $fw 'icmp ' && ctd_lacks $fw 'icmp ' -i"
	WHY="cache has: $(ctd $fw -i | grep -F "=$IGN " | head -n2)"
	check "$N: flows of an ignored address never reach the cache" \
		eval "kernel_has $fw 'src=$IGN dst=198.51.100.7' && ctd_lacks $fw '=$IGN ' -i"
	WHY="kernel: $(kernel_exp $fw | grep -c 'dport=40002 ') cache: $(ctd $fw -i expect | grep 'dport=40002 ')"
	check "$N: an expectation whose master is ignored is ignored" \
		eval "kexp_has $fw 'dport=40002 ' && ctd_lacks $fw 'dport=40002 ' -i expect"

	# -f then -R
	ctd $fw -f >/dev/null 2>&1
	WHY="-i still: $(ctd $fw -i | head -n2 | tr '\n' '|')"
	check "$N: -f empties the internal cache (ct and expect)" \
		wait_until 5 eval "empty_out $fw -i && empty_out $fw -i expect"
	WHY="kernel lost entries"
	check "$N: -f leaves the kernel alone" kernel_has $fw "src=198.51.100.1 "
	ctd $fw -R >/dev/null 2>&1
	WHY="$(diff <(cache_tuples $fw) <(kernel_tuples $fw) | grep '^[<>]' | head -n4 | tr '\n' '|')"
	check "$N: -R refills the cache with exactly the kernel's accepted entries" wait_until 5 cache_is_kernel $fw
	WHY="-i expect: $(ctd $fw -i expect | head -n2)"
	check "$N: -R brings the expectation back, still without the ignored one" \
		wait_until 5 eval "ctd_has $fw 'dport=40001 ' -i expect && ctd_lacks $fw 'dport=40002 ' -i expect"

	# the kernel removes an expectation (consumed by its data connection)
	check "$N: FTP data connection consumes the expectation" ftp_data_connect "$fw-a"
	WHY="kernel still: $(kernel_exp $fw | grep 'dport=40001 ') cache: $(ctd $fw -i expect | grep 'dport=40001 ')"
	check "$N: expectation leaves -i expect when the kernel deletes it" \
		wait_until 5 eval "kexp_lacks $fw 'dport=40001 ' && ctd_lacks $fw 'dport=40001 ' -i expect"

	# -F expect (a fresh accepted expectation), -F
	ftp "$fw" c $CLI 33003 || fail "$N: third FTP session" "$(cat "$T/ftp-$fw-c.err")"
	wait_until 5 ctd_has $fw "dport=40003 " -i expect
	ctd $fw -F expect >/dev/null 2>&1
	WHY="kernel: $(kernel_exp $fw | tr '\n' '|')"
	check "$N: -F expect deletes the kernel's expectation" wait_until 5 kexp_lacks $fw "dport=40003 "
	kernel_exp $fw | grep -c 'dport=' >"$T/$fw.expleft"
	# deleted by another ctnetlink user (conntrack -F expect)
	ftp "$fw" d $CLI 33004 || fail "$N: fourth FTP session" "$(cat "$T/ftp-$fw-d.err")"
	WHY="no dport=40004 in -i expect"
	check "$N: a new expectation enters -i expect" wait_until 5 ctd_has $fw "dport=40004 " -i expect
	nsx $fw conntrack -F expect >/dev/null 2>&1
	WHY="cache still: $(ctd $fw -i expect | grep 'dport=40004 ')"
	check "$N: expectation flushed by conntrack -F expect leaves -i expect" \
		wait_until 5 eval "kexp_lacks $fw 'dport=40004 ' && ctd_lacks $fw 'dport=40004 ' -i expect"
	ctd $fw -F >/dev/null 2>&1
	WHY="left: $(kernel_tuples $fw | head -n3 | tr '\n' '|')"
	check "$N: -F deletes every accepted kernel entry" wait_until 5 eval "[ -z \"\$(kernel_tuples $fw)\" ]"
	WHY="kernel: $(kernel_ct $fw | grep -E 'icmp|198.51.100.7' | tr '\n' '|')"
	check "$N: -F keeps the entries the Filter rejects" \
		eval "kernel_has $fw 'icmp ' && kernel_has $fw 'dst=198.51.100.7 '"
done
if [ "$(echo $live)" = "fw1 fw2" ]; then
	WHY="expectations left after -F expect: $(label fw1) $(cat "$T/fw1.expleft"), $(label fw2) $(cat "$T/fw2.expleft")"
	check "kernel-cache[$CTD_FW2@fw2 vs $CTD_FW1@fw1]: -F expect leaves the same expectations" \
		cmp -s "$T/fw1.expleft" "$T/fw2.expleft"
fi

# ---------------------------------------------------------------- overrun
INJ=$T/inject
if ! cc -O2 -o "$INJ" "$TOP_DIR/bench/inject.c" $(pkg-config --cflags --libs libnetfilter_conntrack libmnl) 2>"$T/inject.err"; then
	skip "kernel-cache: overrun" "bench/inject.c does not build: $(head -n1 "$T/inject.err")"
else
	for fw in $live; do
		N="kernel-cache[$(label $fw)]"
		ctd_stop "$fw"
		nsx "$fw" "$INJ" flush >/dev/null 2>&1
		ctd_conf "$fw" ftfw udp on "NetlinkBufferSize 8192
		NetlinkBufferSizeMaxGrowth 8192
		NetlinkOverrunResync 2"
		if ! ctd_start "$fw"; then fail "$N: restart with a tiny NetlinkBufferSize" "$CTD_ERR"; continue; fi
		out=$(nsx "$fw" "$INJ" create -n 3000 -p tcp -s 100.64.0.1 -b 500 2>&1) ||
			{ fail "$N: burst of 3000 conntracks" "$out"; continue; }
		WHY="cache $(cache_tuples $fw | wc -l), kernel $(kernel_tuples $fw | wc -l); $(diff <(cache_tuples $fw) <(kernel_tuples $fw) | grep -c '^[<>]') differ"
		check "$N: after a 3000-entry burst the cache holds exactly the kernel's entries" \
			wait_until 30 cache_is_kernel $fw
		note "$N: $(ctd $fw -s runtime | grep -E 'netlink overrun|resync' | tr -s '\t ' ' ' | tr '\n' ';')"
	done
fi

finish
