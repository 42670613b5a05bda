#!/bin/bash
# Fault tests (issue "Hardening", item 4), our daemon on both firewalls in
# FT-FW over UDP, joined by the sync link only:
#
#  1. kernel table full during commit: fw2's kernel refuses creations
#     (its namespace filled up to nf_conntrack_max) while its external
#     cache holds 2,000 entries;
#  2. HashLimit reached: fw2 (HashLimit 1000) receives 3,000 entries;
#     2i: fw1 (HashLimit 1000) sees 3,000 kernel entries;
#  3. our own SIGKILL and restart: StartupResync refills fw2's external cache;
#  4. link flapping: the sync link goes down/up 5 times during a burst;
#  5. t-failover (FT-FW/UDP) and t-sync run with the ASan+UBSan daemon.
#
#  6. expectation events read before their masters' (fw1's daemon
#     stopped during a burst): every expectation is kept.
# SCENARIOS="1 2" picks some (default: 1 2 2i 3 4 6; 5 takes longer).
# Scenario 1 touches no global sysctl: it fills fw2's own namespace (~100 MB
# of kernel memory at the default 262,144, freed with the namespace).
set -u
. "$(dirname "$0")/lib.sh"
need_root t-faults
lib_init
: "${SCENARIOS:=1 2 2i 3 4 6}"
: "${CTD_ASAN:=$TOP_DIR/build-asan/src/conntrackd}"

INJ=$T_BASE/inject
if ! cc -O2 -o "$INJ" "$TOP_DIR/bench/inject.c" $(pkg-config --cflags --libs libnetfilter_conntrack libmnl) 2>"$T_BASE/inject.err"; then
	skip "t-faults" "bench/inject.c does not build: $(head -n1 "$T_BASE/inject.err")"
	finish; exit
fi
SRC=100.64.0.1 DST=172.16.0.1    # inject's entries: $SRC + i -> $DST

tuples() { awk -v d="dst=$DST" '{ for (i = 1; i <= NF; i++) if ($i ~ /^src=/) {
	if ($(i + 1) == d) print $i, $(i + 1), $(i + 2), $(i + 3); break } }' | sort; }
ext_ct() { ctd "$1" -e 2>/dev/null | tuples; }
int_ct() { ctd "$1" -i 2>/dev/null | tuples; }
k_ct() { nsx "$1" conntrack -L 2>/dev/null | tuples; }
k_count() { nsx "$1" conntrack -C 2>/dev/null; }
k_total() { nsx "$1" "$INJ" count | sed -n -E 's/^ct=([0-9]+) .*/\1/p'; }
cache_active() { ctd "$1" -s cache 2>/dev/null | awk -v c="cache:$2" '$1 == c { print $NF; exit }'; }
ext_active_ge() { [ "$(cache_active "$1" external)" -ge "$2" ] 2>/dev/null; }
# -s cache counter of the external cache: "no space left in cache" etc.
ext_stat() { ctd "$1" -s cache 2>/dev/null | awk -v f="$2" '
	/^cache:external/ { e = 1 } /^cache:internal/ { e = 0 }
	e && index($0, f) { print $NF; exit }'; }
inject() { nsx fw1 "$INJ" create -p tcp -s $SRC -d $DST -b 250 "$@" >>"$T/inject.out" 2>&1; }

start_pair() {	# NAME: fresh namespaces, both daemons (CONF_HOOK FW edits a config)
	new_case "$1-$RANDOM"
	pair_up || { fail "$1: namespaces"; return 1; }
	ctd_conf fw1 ftfw udp off
	ctd_conf fw2 ftfw udp off
	[ -n "${CONF_HOOK:-}" ] && { $CONF_HOOK fw1; $CONF_HOOK fw2; }
	if ! ctd_start fw1 || ! ctd_start fw2; then
		fail "$1: daemons start" "$CTD_ERR"; topo_down; return 1
	fi
}

# ---------------------------------------------- 1. kernel table full
# nf_conntrack_max is global (read-only inside a namespace on 6.x kernels)
# but the kernel compares it with each namespace's own count, so fw2's
# namespace is filled up to it with ASSURED established entries, which
# neither early_drop nor the GC may evict; then -c must meet ENOMEM.  The
# fill comes from a range fw2's Filter ignores (BPF on the event socket):
# fw2's daemon never sees it, the sync carries only fw1's entries.
FILL_SRC=10.128.0.1 FILL_NET=10.128.0.0/9 FILL_DST=172.17.0.1
fill_filter_fw2() {
	[ "$1" = fw2 ] && sed -i -e "/Address Ignore {/a IPv4_address $FILL_NET" "$T/fw2.conf"
	return 0
}
ns_ct_count() { nsx "$1" cat /proc/sys/net/netfilter/nf_conntrack_count; }
# ct_max_of FW: the limit FW's namespace enforces; a kernel that lets a
# namespace lower it gets FAULTS_CT_MAX (a smaller, quicker fill)
ct_max_of() {
	nsx "$1" sysctl -qw net.netfilter.nf_conntrack_max="${FAULTS_CT_MAX:-5000}" 2>/dev/null
	nsx "$1" cat /proc/sys/net/netfilter/nf_conntrack_max
}

scenario_1() {
	local N="table-full" n=2000 max fill out rc failed p avail_kb lines
	CONF_HOOK=fill_filter_fw2 start_pair tablefull || return
	inject -n $n
	wait_until 20 ext_active_ge fw2 $n
	WHY="fw2 external holds $(cache_active fw2 external) of $n"
	check "$N: fw2's external cache holds the $n conntracks" ext_active_ge fw2 $n
	max=$(ct_max_of fw2)
	# ~400 B of kernel memory per entry (conntrack + hash); the namespace's
	# deletion frees them
	avail_kb=$(awk '/^MemAvailable:/ { print $2 }' /proc/meminfo)
	if [ "${max:-0}" -le 0 ] || [ $(( max / 2 + 262144 )) -gt "${avail_kb:-0}" ]; then
		skip "$N: commit into a full kernel table" "nf_conntrack_max ${max:-?}: filling it needs ~$(( max / 2048 )) MB, $(( ${avail_kb:-0} / 1024 )) MB available"
		topo_down; return
	fi
	# max + 100: the last 100 must be refused, which proves the table full
	fill=$(( max - $(ns_ct_count fw2) + 100 ))
	out=$(nsx fw2 "$INJ" create -p tcp -s $FILL_SRC -d $FILL_DST -b 1000 -n $fill 2>&1)
	p=$(ns_ct_count fw2)
	note "$N: filled fw2's namespace: $out"
	WHY="count $p, nf_conntrack_max $max; inject: $out"
	check "$N: fw2's namespace is full ($p of nf_conntrack_max $max; the kernel refuses more: ENOMEM)" \
		eval '[ "$p" -eq "$max" ] && grep -q "last_error=\"Cannot allocate memory\"" <<<"$out"'
	WHY="fw2 internal cache holds $(cache_active fw2 internal)"
	check "$N: fw2's daemon ignores the fill (Filter): its internal cache stays empty" \
		test "$(cache_active fw2 internal)" -lt 100
	out=$(timeout 30 ip netns exec "$NS_FW2" "$(ctd_bin_for fw2)" -C "$T/fw2.conf" -c 2>&1); rc=$?
	wait_until 10 grep -q "commit has taken" "$T/fw2.log"
	p=$(ns_ct_count fw2)
	WHY="rc $rc: $out"
	check "$N: conntrackd -c returns (no hang, exit 0) with the kernel table full" test $rc -eq 0
	failed=$(sed -n -E "s/.* ([0-9]+) entries can't be committed.*/\1/p" "$T/fw2.log" | tail -n1)
	WHY="fw2 log: $(grep -i commit "$T/fw2.log" | tail -n3 | tr '\n' '|')"
	check "$N: the log reports \"N entries can't be committed\" with N = $n (N=${failed:-none})" \
		test "${failed:-0}" -eq $n
	WHY="no commit-create error with an errno text in fw2's log"
	check "$N: the log names the kernel's error (commit-create: ...)" \
		grep -q -E "commit-create: .*(memory|space|full|table)" "$T/fw2.log"
	note "$N: $(grep -c 'commit-create' "$T/fw2.log") commit-create lines, e.g. $(grep -m1 'commit-create' "$T/fw2.log")"
	WHY="fw2's kernel holds $p"
	check "$N: fw2's kernel holds at most nf_conntrack_max ($max) entries" test "${p:-99999999}" -le "$max"
	WHY="fw2 -s runtime does not answer"
	check "$N: fw2's daemon stays up" ctd_alive fw2
	same_set "$N: the refused commit loses nothing: fw2 -e still equals fw1's kernel" \
		"ext_ct fw2" "k_ct fw1"
	inject -n 100 -o $n
	WHY="fw2 external holds $(cache_active fw2 external) of $((n + 100))"
	check "$N: fw2 keeps syncing (100 new conntracks arrive)" \
		wait_until 10 ext_active_ge fw2 $((n + 100))
	# the control: room again, the same cache commits in full
	# (only the fill is in fw2's kernel: flush it all)
	nsx fw2 "$INJ" flush >/dev/null 2>&1
	lines=$(wc -l <"$T/fw2.log")
	out=$(timeout 30 ip netns exec "$NS_FW2" "$(ctd_bin_for fw2)" -C "$T/fw2.conf" -c 2>&1); rc=$?
	wait_until 10 eval 'tail -n +$((lines + 1)) "$T/fw2.log" | grep -q "commit has taken"'
	WHY="rc $rc: $out; fw2 log: $(tail -n +$((lines + 1)) "$T/fw2.log" | grep -i commit | tail -n2 | tr '\n' '|')"
	check "$N: control: with the fill flushed, -c commits every entry (fw2's kernel equals fw1's)" \
		eval '[ $rc -eq 0 ] && ! tail -n +$((lines + 1)) "$T/fw2.log" | grep -q "can.t be committed" && [ "$(k_ct fw2)" = "$(k_ct fw1)" ]'
	topo_down
}

# ---------------------------------------------- 2. HashLimit reached
limit_fw2() { [ "$1" = fw2 ] && sed -i -e 's/HashLimit .*/HashLimit 1000/' "$T/fw2.conf"; return 0; }
scenario_2() {
	local N="hashlimit" n=3000 full lines
	CONF_HOOK=limit_fw2 start_pair hashlimit || return
	inject -n $n
	WHY="fw1 internal holds $(cache_active fw1 internal)"
	wait_until 20 eval "[ \"\$(cache_active fw1 internal)\" -ge $n ]"
	# fw2 has seen every message once its counters stop moving
	wait_until 20 eval '[ $(( $(ext_stat fw2 "no space left in cache") + $(cache_active fw2 external) )) -ge '$n' ]'
	full=$(ext_stat fw2 "no space left in cache")
	WHY="-s cache: $(ctd fw2 -s cache 2>&1 | grep -A12 external | tr '\n\t' '  ')"
	check "$N: fw2's -s cache counts the refusals (no space left in cache: ${full:-?})" \
		test "${full:-0}" -gt 0
	lines=$(grep -c -i -E 'hashlimit|cache (is )?full|no space' "$T/fw2.log")
	WHY="$lines lines: $(grep -i -E 'hashlimit|cache (is )?full|no space' "$T/fw2.log" | head -n2 | tr '\n' '|')"
	check "$N: fw2 logs the full cache exactly once (not once per entry)" test "$lines" -eq 1
	note "$N: $(grep -i -E 'hashlimit|cache (is )?full|no space' "$T/fw2.log" | head -n1)"
	WHY="fw2 -s runtime does not answer"
	check "$N: fw2's daemon stays up" ctd_alive fw2
	lines=$(ext_ct fw2 | wc -l)
	WHY="fw2 -e lists $lines"
	check "$N: fw2 -e lists at most 1000 entries ($lines)" test "$lines" -le 1000 -a "$lines" -gt 0
	WHY="$(comm -23 <(ext_ct fw2) <(k_ct fw1) | head -n3 | tr '\n' '|')"
	check "$N: every entry fw2 kept is one of fw1's kernel (none corrupted)" \
		eval '[ -z "$(comm -23 <(ext_ct fw2) <(k_ct fw1))" ]'
	topo_down
}

# the sender's side: kernel events beyond fw1's HashLimit (internal cache)
limit_fw1() { [ "$1" = fw1 ] && sed -i -e 's/HashLimit .*/HashLimit 1000/' "$T/fw1.conf"; return 0; }
scenario_2i() {
	local N="hashlimit-internal" n=3000 full lines
	CONF_HOOK=limit_fw1 start_pair hashlimit-int || return
	inject -n $n
	wait_until 10 eval '[ $(( $(ctd fw1 -s cache 2>/dev/null | awk "/no space left in cache/ { print \$NF; exit }") + $(cache_active fw1 internal) )) -ge '$n' ]'
	full=$(ctd fw1 -s cache 2>/dev/null | awk '/no space left in cache/ { print $NF; exit }')
	WHY="-s cache internal: no space left in cache: ${full:-?}"
	check "$N: fw1's -s cache counts the kernel entries it could not keep (${full:-?})" test "${full:-0}" -gt 0
	WHY="fw2 -s runtime does not answer"
	check "$N: both daemons stay up" eval 'ctd_alive fw1 && ctd_alive fw2'
	lines=$(grep -c -i -E 'hashlimit|cache (is )?full|no space' "$T/fw1.log")
	WHY="$lines matching lines in fw1's log"
	check "$N: fw1 logs its full internal cache once" test "$lines" -eq 1
	topo_down
}

# --------------------------------------- 3. our SIGKILL, StartupResync
resync_fw2() { [ "$1" = fw2 ] && sed -i -e 's/Mode FTFW { }/Mode FTFW {\n\t\tStartupResync on\n\t}/' "$T/fw2.conf"; return 0; }
scenario_3() {
	local N="startup-resync" p
	CONF_HOOK=resync_fw2 start_pair resync || return
	inject -n 2000
	wait_until 20 ext_active_ge fw2 2000
	for p in $(ctd_pids fw2); do kill -9 "$p"; done
	wait_until 5 eval '[ -z "$(ctd_pids fw2)" ]'
	# entries born and gone while fw2's daemon is dead
	inject -n 500 -o 2000
	nsx fw1 conntrack -D -s 100.64.0.5 >/dev/null 2>&1
	wait_until 10 eval '[ "$(int_ct fw1)" = "$(k_ct fw1)" ]'
	rm -f "$T/fw2.lock"
	if ! ctd_start fw2; then fail "$N: fw2 restarts after SIGKILL (stale lock removed)" "$CTD_ERR"; topo_down; return; fi
	wait_until 20 eval '[ "$(ext_ct fw2)" = "$(int_ct fw1)" ]'
	same_set "$N: fw2 SIGKILLed and restarted: StartupResync alone makes fw2 -e equal fw1 -i" \
		"ext_ct fw2" "int_ct fw1"
	topo_down

	# the control: the same without StartupResync leaves fw2 without the
	# entries fw1 had already delivered (the HELLO only resends fw1's queue)
	start_pair noresync || return
	inject -n 2000
	wait_until 20 ext_active_ge fw2 2000
	for p in $(ctd_pids fw2); do kill -9 "$p"; done
	wait_until 5 eval '[ -z "$(ctd_pids fw2)" ]'
	rm -f "$T/fw2.lock"
	if ! ctd_start fw2; then fail "$N: fw2 restarts after SIGKILL" "$CTD_ERR"; topo_down; return; fi
	WHY="fw2 -e holds $(ext_ct fw2 | wc -l) entries without StartupResync"
	check "$N: control: without StartupResync the restarted fw2 stays incomplete for 3 s" \
		eval '! wait_until 3 eval "[ \"\$(ext_ct fw2)\" = \"\$(int_ct fw1)\" ]"'
	topo_down
}

# ------------------------------------------------ 4. link flapping
scenario_4() {
	local N="link-flap" ip i during lost
	start_pair flap || return
	inject -n 5000 -r 2500 &	# ~2 s: the five flaps land inside it
	ip=$!
	wait_until 5 ext_active_ge fw2 200
	for i in 1 2 3 4 5; do
		ip -n "$NS_FW1" link set sync0 down
		sleep 0.1	# the scenario's flap period, not a wait for a state
		ip -n "$NS_FW1" link set sync0 up
		sleep 0.1
	done
	during=$(k_total fw1)
	wait "$ip"
	WHY="fw1's kernel already had $during conntracks after the last flap"
	check "$N: the flaps happened during the burst ($during of 5000 created by then)" \
		test "${during:-5000}" -lt 5000
	note "$N: after 5 flaps fw1's kernel has $(k_ct fw1 | wc -l), fw2's external cache $(cache_active fw2 external)"
	# FT-FW promises delivery of every message it sent (resend queue,
	# NACK/ALIVE): no -n here
	wait_until 30 eval '[ "$(ext_ct fw2)" = "$(k_ct fw1)" ]'
	same_set "$N: sync link flapped 5 times during 5,000 conntracks: fw2 -e equals fw1's kernel (no -n)" \
		"ext_ct fw2" "k_ct fw1"
	lost=$(ctd fw2 -s network 2>/dev/null | awk '/Packets lost:/ { print $NF }')
	WHY="fw2 -s network Packets lost: ${lost:-?}"
	check "$N: the flaps cost datagrams (fw2 counts ${lost:-?} lost) that FT-FW made good" \
		test "${lost:-0}" -gt 0
	WHY="fw1 log: $(tail -n3 "$T/fw1.log" | tr '\n' '|')"
	check "$N: fw1 logs the link loss (no dedicated links available!, $(grep -c 'no dedicated links available' "$T/fw1.log") times)" \
		grep -q 'no dedicated links available' "$T/fw1.log"
	note "$N: fw2 Packets lost $(ctd fw2 -s network 2>/dev/null | awk '/Packets lost:/ { print $NF }'); fw1 $(ctd fw1 -s queue 2>/dev/null | grep -i -E 'errorq|rsqueue' | tr -s '\n\t ' ' '); fw1 log: $(grep -c -i -E 'link|send|sendto' "$T/fw1.log") link/send lines"
	topo_down
}

# ------------------- 6. expectation events read before their masters'
# A daemon that lags (load, valgrind; here SIGSTOP, with an event buffer
# big enough for no overrun) reads the expectation socket while its
# masters' NEW events still wait in the conntrack socket.  exp_wanted()
# (src/sync_events.c) dropped every such expectation for good until
# a0b5a18 (it now asks the kernel for the master).  1.4.7 keeps all 100.
exp_sync_big_nlbuf() {
	sed -i -e 's/ExpectationSync off/ExpectationSync on/' "$T/$1.conf"
	[ "$1" = fw1 ] && sed -i -e 's/NetlinkBufferSize .*/NetlinkBufferSize 16777216/' \
		-e 's/NetlinkBufferSizeMaxGrowth .*/NetlinkBufferSizeMaxGrowth 16777216/' "$T/fw1.conf"
	return 0
}
int_exp() { ctd "$1" -i expect 2>/dev/null | tuples; }
ext_exp() { ctd "$1" -e expect 2>/dev/null | tuples; }
k_exp() { nsx "$1" conntrack -L expect 2>/dev/null | tuples; }
scenario_6() {
	local N="exp-before-master" p
	CONF_HOOK=exp_sync_big_nlbuf start_pair exp-order || return
	for p in $(ctd_pids fw1); do kill -STOP "$p"; done
	inject -n 5000 -e 100
	for p in $(ctd_pids fw1); do kill -CONT "$p"; done
	wait_until 20 eval '[ "$(int_exp fw1 | wc -l)" -ge 100 ]'
	note "$N: fw1 -s runtime: $(ctd fw1 -s runtime 2>/dev/null | grep -E 'overrun|resync' | tr -s '\t\n ' ' ')"
	same_set "$N: fw1 stopped during 5000 conntracks + 100 expectations (no overrun): fw1 -i expect equals its kernel" \
		"int_exp fw1" "k_exp fw1"
	wait_until 10 eval '[ "$(ext_exp fw2)" = "$(k_exp fw1)" ]'
	same_set "$N: ... and fw2 -e expect" "ext_exp fw2" "k_exp fw1"
	topo_down
}

# ------------------------------------------------ 5. sanitizers
scenario_5() {
	local N="asan" dir rc t
	if [ ! -x "$CTD_ASAN" ]; then
		skip "$N: t-failover and t-sync under ASan+UBSan" "$CTD_ASAN missing (bash scripts/build.sh asan)"; return
	fi
	dir=$T_BASE/asan
	mkdir -p "$dir"
	for t in failover sync; do
		# log_path: a daemon that forked (-d) has no stderr left
		(
			export ASAN_OPTIONS="detect_leaks=1:halt_on_error=1:log_path=$dir/asan-$t"
			export UBSAN_OPTIONS="print_stacktrace=1:log_path=$dir/ubsan-$t"
			# "ours" on both sides, ours being the sanitized binary (a path
			# would end up in the case names and socket paths)
			export CTD_FW1=ours CTD_FW2=ours CTD_OURS="$CTD_ASAN" CTD_VALGRIND=0
			if [ $t = failover ]; then
				CASES=ftfw:udp NEGATIVE=0 HASH_QUIRK=0 KEEP_TMP=1 bash "$LIB_DIR/t-failover.sh"
			else
				KEEP_TMP=1 bash "$LIB_DIR/t-sync.sh"
			fi
		) >"$dir/$t.out" 2>&1
		rc=$?
		WHY="exit $rc: $(grep -E '^FAIL' "$dir/$t.out" | head -n3 | tr '\n' '|')"
		check "$N: t-$t passes with the ASan+UBSan daemon" test $rc -eq 0
		# reports land in log_path files, or in kept .out/.log files
		WHY="$(cat "$dir"/*san-$t* 2>/dev/null | grep -m2 -E 'ERROR|runtime error' | tr '\n' '|')"
		check "$N: no sanitizer report from the daemons in t-$t" \
			eval "! ls $dir/*san-$t* >/dev/null 2>&1 && ! grep -q -E 'AddressSanitizer|LeakSanitizer|runtime error:' $dir/$t.out"
	done
	# the kept temp dirs of the sub-runs: daemons' own logs and outputs
	for t in $(grep -h -o -E '# kept /tmp/[^ ]+' "$dir"/*.out | awk '{print $3}'); do
		if grep -r -q -E 'AddressSanitizer|LeakSanitizer|runtime error:' "$t" 2>/dev/null; then
			fail "$N: sanitizer report in $t" "$(grep -r -m1 -h -E 'AddressSanitizer|LeakSanitizer|runtime error:' "$t")"
		fi
		rm -rf "$t"
	done
}

for s in $SCENARIOS; do
	t0=$(date +%s)
	"scenario_$s"
	note "scenario $s took $(( $(date +%s) - t0 )) s"
done
finish
