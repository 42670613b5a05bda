#!/bin/bash
# shellcheck disable=SC2034,SC2046 # globals read by lib.sh; pkg-config output split on purpose
# Commit with the event groups paused (doc/notes/perf.md §2), our daemon on
# both firewalls, FT-FW over UDP:
#
#  * fw1 creates 20,000 conntracks and 50 expectations (with their ftp
#    masters); fw2's external cache holds them all;
#  * fw2 commits them (-c) while another process creates 1,000 conntracks
#    in fw2's kernel at 2,000/s, so some are created while the commit has
#    the NEW/UPDATE groups left: fw2 learns those from the resync after it;
#  * -c returns 0 with everything in the kernel, the log has the usual
#    commit lines; fw2's internal cache then equals fw2's kernel table;
#  * fw1 receives exactly the 1,000 new conntracks, never the 20,000 (nor
#    the 50 expectations) it sent.
#
# Then `-c expect` alone (600 expectations, over COMMIT_EXP_PAUSE_MIN):
# only the expectation NEW group is left, so the kernel sends no event for
# the 600 created; expectations another process creates meanwhile reach
# fw1, the committed ones never come back, and fw2's internal expectation
# cache equals its kernel table.
#
# Then when a conntrack commit pauses (commit.c, pause_pays): 3,000 into an
# empty table pause (one resync, no event for them); 3,000 into a table
# that already holds 5,000 of fw2's own keep the events (no resync: the
# dump would cover more than twice what is committed), unless their events
# would not fit in the event buffer (2 MB holds ~1,600): an overrun's
# resync would send committed entries back to the peer, so that commit
# pauses too. Either way all 3,000 are in the kernel and none is sent back.
set -u
. "$(dirname "$0")/lib.sh"
need_root t-commit
lib_init

INJ=$T_BASE/inject
if ! cc -O2 -o "$INJ" "$TOP_DIR/bench/inject.c" $(pkg-config --cflags --libs libnetfilter_conntrack libmnl) 2>"$T_BASE/inject.err"; then
	skip "t-commit" "bench/inject.c does not build: $(head -n1 "$T_BASE/inject.err")"
	finish; exit
fi
: "${COMMIT_N:=20000}"
E=50 OTHERS=1000
N="commit[paused events]"

# orig tuples of our entries (fw1's: 100.64.x, masters 11.x; the others: 100.65.x)
ours_re='src=(100\.6[45]\.|11\.)'
tuples() { grep -E "$ours_re" | sed -E 's/^[^=]* (src=[^ ]+ dst=[^ ]+ sport=[0-9]+ dport=[0-9]+).*/\1/' | sort; }
int_tuples() { ctd fw2 -i 2>/dev/null | tuples; }
k_tuples() { nsx fw2 conntrack -L 2>/dev/null | tuples; }
cnt() { ctd "$1" "${@:2}" 2>/dev/null | grep -c -E "$ours_re"; }
k_exp() { nsx fw2 conntrack -L expect 2>/dev/null | grep -c proto=; }
int_exp() { ctd fw2 -i expect 2>/dev/null | grep -c proto=; }
ext_exp() { ctd "$1" -e expect 2>/dev/null | grep -c proto=; }
# counters of fw2's -s runtime: rt_field NAME [TEXT] (TEXT: a saved -s runtime)
rt_field() { sed -n -E "s/.*$1:[[:space:]]*([0-9]+).*/\\1/p" <<<"${2-$(ctd fw2 -s runtime 2>/dev/null)}" | head -n1; }
resyncs() { rt_field 'resync with kernel table' "$@"; }
overruns() { rt_field 'netlink overrun' "$@"; }
nlbuf() { rt_field 'current buffer size \(in bytes\)' "$@"; }
events() { rt_field 'events received' "$@"; }
int_is_kernel() { [ "$(int_tuples)" = "$(k_tuples)" ]; }

# two of our daemons, FT-FW over UDP, in a fresh case (or the script ends)
pair_start() {
	new_case "$1"
	pair_up || { fail "$N: namespaces"; finish; exit; }
	ctd_conf fw1 ftfw udp on
	ctd_conf fw2 ftfw udp on
	[ -n "${FW2_NLBUF:-}" ] && sed -i -e "s/NetlinkBufferSize [0-9]*/NetlinkBufferSize $FW2_NLBUF/" \
		-e "s/NetlinkBufferSizeMaxGrowth [0-9]*/NetlinkBufferSizeMaxGrowth $FW2_NLBUF/" "$T/fw2.conf"
	if ! ctd_start fw1 || ! ctd_start fw2; then
		fail "$N: daemons start" "$CTD_ERR"; finish; exit
	fi
}

pair_start "ftfw-udp-$RANDOM"

nsx fw1 "$INJ" create -n "$COMMIT_N" -e $E -s 100.64.0.1 -d 172.16.0.1 -b 250 >/dev/null 2>"$T/inject1.err"
nct=$(nsx fw1 conntrack -L 2>/dev/null | grep -c -E "$ours_re")
WHY="fw2 -e has $(cnt fw2 -e) of $nct conntracks, $(ext_exp fw2) of $E expectations"
if ! wait_until 60 eval "[ \$(cnt fw2 -e) -eq $nct ] && [ \$(ext_exp fw2) -eq $E ]"; then
	fail "$N: fw1's $nct conntracks and $E expectations reach fw2's external cache" "$WHY"
	finish; exit
fi
r0=$(resyncs) e0=$(events)

# others: conntracks in fw2's kernel for 0.5 s; the commit starts 0.2 s in
nsx fw2 "$INJ" create -n $OTHERS -r $((OTHERS * 2)) -p udp -s 100.65.0.1 -d 172.16.0.2 >/dev/null 2>"$T/inject2.err" &
inj_pid=$!
PIDS="$PIDS $inj_pid"
sleep 0.2
ctd fw2 -c >"$T/commit.out" 2>&1
rc=$?
kc=$(nsx fw2 conntrack -L 2>/dev/null | grep -c -E 'src=(100\.64\.|11\.)') ke=$(k_exp)
check "$N: -c returns 0" test "$rc" -eq 0
WHY="right after -c: fw2's kernel has $kc of $nct conntracks, $ke of $E expectations"
check "$N: -c returns with all $nct conntracks and $E expectations in fw2's kernel" \
	eval "[ $kc -eq $nct ] && [ $ke -eq $E ]"
wait_until 10 bash -c "! kill -0 $inj_pid"
wait "$inj_pid" 2>/dev/null

WHY="log: $(grep -E 'ommit' "$T/fw2.log" | tail -n5 | tr '\n' '|')"
check "$N: the log has the usual commit lines" eval \
	"grep -q 'committing all external caches' '$T/fw2.log' && grep -q 'Committed $nct new entries' '$T/fw2.log' &&
	 grep -q 'Committed $E new expectations' '$T/fw2.log' && [ \$(grep -c 'commit has taken' '$T/fw2.log') -eq 2 ]"
WHY="resyncs before -c: $r0, now: $(resyncs)"
check "$N: one resync after the commit" wait_until 10 eval "[ \$(resyncs) -eq $((r0 + 1)) ]"

WHY="fw2 kernel $(k_tuples | wc -l) vs internal cache $(int_tuples | wc -l) entries; diff: $(diff <(k_tuples) <(int_tuples) | head -n4 | tr '\n' '|')"
check "$N: fw2's internal cache equals fw2's kernel table ($((nct + OTHERS)) conntracks)" \
	wait_until 10 eval "int_is_kernel && [ \$(k_tuples | wc -l) -eq $((nct + OTHERS)) ]"
WHY="fw2 kernel $(k_exp), internal cache $(int_exp) expectations"
check "$N: ... and its $E expectations" eval "[ \$(k_exp) -eq $E ] && [ \$(int_exp) -eq $E ]"

learnt=$(( OTHERS - ($(events) - e0) ))
[ "$learnt" -gt 0 ] && note "$N: $learnt of the $OTHERS others were created during the pause (no event: learnt by the resync)" ||
	note "$N: all $OTHERS others came as events: none created during the pause this time"
WHY="fw1 -e has $(cnt fw1 -e) entries of ours, $(ctd fw1 -e 2>/dev/null | grep -c 'dst=172.16.0.2 ') of the $OTHERS others"
check "$N: fw1 receives the $OTHERS conntracks created by another process on fw2" \
	wait_until 10 eval "[ \$(ctd fw1 -e 2>/dev/null | grep -c 'dst=172.16.0.2 ') -eq $OTHERS ]"
sleep 1	# what fw2 would wrongly send back would be on the way by now (no observable to poll)
WHY="fw1 -e has $(cnt fw1 -e) entries of ours (expected $OTHERS), $(ext_exp fw1) expectations"
check "$N: fw1 receives none of the $nct committed conntracks and $E expectations back" \
	eval "[ \$(cnt fw1 -e) -eq $OTHERS ] && [ \$(ext_exp fw1) -eq 0 ]"
topo_down

# ---- -c expect alone --------------------------------------------------
E2=600 OTHERS_E=100
N="commit[-c expect alone]"
k_exp_to() { nsx fw2 conntrack -L expect 2>/dev/null | grep -c "dst=$1 "; }
ext_exp_to() { ctd "$1" -e expect 2>/dev/null | grep -c "dst=$2 "; }
pair_start "exp-only-$RANDOM"
nsx fw1 "$INJ" create -n 0 -e $E2 -d 172.16.0.1 >/dev/null 2>"$T/inject1.err"
WHY="fw2 -e expect has $(ext_exp fw2) of $E2"
if ! wait_until 30 eval "[ \$(ext_exp fw2) -eq $E2 ]"; then
	fail "$N: fw1's $E2 expectations reach fw2's external cache" "$WHY"
	finish; exit
fi
ctd fw2 -c ct >/dev/null 2>&1
wait_until 10 eval "[ \$(cnt fw2 -i) -ge $E2 ]"
r0=$(resyncs) e0=$(events)

# others: expectations (and their masters) in fw2's kernel for ~0.2 s
nsx fw2 "$INJ" create -n 0 -e $OTHERS_E -r $((OTHERS_E * 10)) -d 172.16.0.2 >/dev/null 2>"$T/inject2.err" &
inj_pid=$!
PIDS="$PIDS $inj_pid"
sleep 0.05
ctd fw2 -c expect >"$T/commit.out" 2>&1
rc=$?
ke=$(k_exp_to 172.16.0.1)
check "$N: -c expect returns 0" test "$rc" -eq 0
WHY="right after -c expect: fw2's kernel has $ke of $E2"
check "$N: -c expect returns with all $E2 expectations in fw2's kernel" test "$ke" -eq "$E2"
wait_until 10 bash -c "! kill -0 $inj_pid"
wait "$inj_pid" 2>/dev/null
WHY="log: $(grep -E 'ommit' "$T/fw2.log" | tail -n4 | tr '\n' '|')"
check "$N: the log has the usual commit lines" eval \
	"grep -q 'committing expectation cache' '$T/fw2.log' && grep -q 'Committed $E2 new expectations' '$T/fw2.log'"
WHY="resyncs before: $r0, now: $(resyncs)"
check "$N: one resync after the commit" wait_until 10 eval "[ \$(resyncs) -eq $((r0 + 1)) ]"
# the others make at most 2 x OTHERS_E events (master, expectation)
de=$(( $(events) - e0 ))
WHY="$de events received since -c expect began (the others: at most $((2 * OTHERS_E)))"
check "$N: the kernel sent no events for the $E2 committed expectations (NEW group left)" test "$de" -lt "$E2"
WHY="fw2 kernel $(k_exp) vs internal cache $(int_exp) expectations"
check "$N: fw2's internal cache holds its kernel's $((E2 + OTHERS_E)) expectations" \
	wait_until 10 eval "[ \$(k_exp) -eq $((E2 + OTHERS_E)) ] && [ \$(int_exp) -eq $((E2 + OTHERS_E)) ]"
WHY="fw1 -e expect has $(ext_exp_to fw1 172.16.0.2) of the $OTHERS_E others"
check "$N: fw1 receives the $OTHERS_E expectations another process created on fw2" \
	wait_until 10 eval "[ \$(ext_exp_to fw1 172.16.0.2) -eq $OTHERS_E ]"
sleep 1	# what fw2 would wrongly send back would be on the way by now
WHY="fw1 -e expect has $(ext_exp_to fw1 172.16.0.1) of the $E2 it sent"
check "$N: fw1 receives none of the $E2 committed expectations back" test "$(ext_exp_to fw1 172.16.0.1)" -eq 0
topo_down

# ---- mid-size conntrack commits: pause or not ----------------------------
# commit_case NAME OWN: fw2 holds OWN conntracks of its own (100.66.x), fw1
# sends 3,000 (100.64.x); fw2 -c ct; echo "<resyncs> <events>" deltas.
M=3000
own_cnt() { nsx fw2 conntrack -L 2>/dev/null | grep -c 'src=100\.66\.'; }
commit_case() {
	local own=$2 r0 e0 o0 k rt
	pair_start "$1-$RANDOM"
	if [ "$own" -gt 0 ]; then
		nsx fw2 "$INJ" create -n "$own" -s 100.66.0.1 -d 172.16.0.3 >/dev/null 2>"$T/inject0.err"
		wait_until 30 eval "[ \$(ctd fw2 -i 2>/dev/null | grep -c 'src=100\.66\.') -eq $own ]" ||
			{ fail "$N: fw2's internal cache holds its own $own conntracks" "$(ctd fw2 -i 2>/dev/null | grep -c 'src=100\.66\.')"; return 1; }
	fi
	nsx fw1 "$INJ" create -n $M -s 100.64.0.1 -d 172.16.0.1 >/dev/null 2>"$T/inject1.err"
	WHY="fw2 -e has $(cnt fw2 -e) of $M"
	wait_until 30 eval "[ \$(cnt fw2 -e) -eq $M ]" ||
		{ fail "$N: fw1's $M conntracks reach fw2's external cache" "$WHY"; return 1; }
	rt=$(ctd fw2 -s runtime 2>/dev/null)
	r0=$(resyncs "$rt") e0=$(events "$rt") o0=$(overruns "$rt") CASE_BUF=$(nlbuf "$rt")
	ctd fw2 -c ct >/dev/null 2>&1 || { fail "$N: -c ct returns 0"; return 1; }
	k=$(nsx fw2 conntrack -L 2>/dev/null | grep -c 'src=100\.64\.')
	WHY="fw2's kernel has $k of $M"
	check "$N: -c ct returns with all $M in fw2's kernel" test "$k" -eq $M
	# settled: the internal cache holds everything, by events or by resync
	wait_until 10 eval "[ \$(cnt fw2 -i) -ge $M ]"
	sleep 1	# anything sent back would be on the way by now
	WHY="fw1 -e has $(cnt fw1 -e) entries of fw1's own"
	check "$N: fw1 receives none of the $M back" eval "[ \$(ctd fw1 -e 2>/dev/null | grep -c 'src=100\.64\.') -eq 0 ]"
	note "$N: event buffer at the commit: $CASE_BUF bytes"
	rt=$(ctd fw2 -s runtime 2>/dev/null)
	CASE_DELTA="$(( $(resyncs "$rt") - r0 )) $(( $(events "$rt") - e0 )) $(( $(overruns "$rt") - o0 ))"
	topo_down
}
N="commit[3000 into an empty table]"
if commit_case pause 0; then
	read -r dr de dov <<<"$CASE_DELTA"
	WHY="$dr resyncs, $de events, $dov overruns"
	check "$N: the events were paused: one resync, fewer events than entries, no overrun" eval "[ $dr -eq 1 ] && [ $de -lt $M ] && [ $dov -eq 0 ]"
fi
N="commit[3000 into a table of 5000, 16 MB event buffer]"
if FW2_NLBUF=16777216 commit_case events 5000; then
	read -r dr de dov <<<"$CASE_DELTA"
	WHY="$dr resyncs, $de events, $dov overruns"
	check "$N: the events were kept: no resync, an event per entry" eval "[ $dr -eq 0 ] && [ $de -ge $M ] && [ $dov -eq 0 ]"
fi
N="commit[3000 into a table of 5000, 2 MB event buffer]"
# no growth: a slow daemon (valgrind) overruns while fw2 learns its own 5,000
# and would grow past what 3,000 events need
if FW2_NLBUF=2097152 commit_case overrun 5000; then
	read -r dr de dov <<<"$CASE_DELTA"
	WHY="$dr resyncs, $de events, $dov overruns; event buffer at the commit: $CASE_BUF"
	check "$N: the events, which would overrun the buffer, were paused: one resync" eval "[ $dr -eq 1 ] && [ $de -lt $M ] && [ $dov -eq 0 ]"
fi
finish
