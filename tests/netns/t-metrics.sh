#!/bin/bash
# `conntrackd -s metrics` (issue "Operations"): what node_exporter's textfile
# collector would read from a running FT-FW pair with traffic is accepted
# by real Prometheus parsers (promtool check metrics: parse and lint;
# python3-prometheus-client's text parser), and its numbers are the ones
# `-s` and `-s cache` print, including sequence gaps from a lossy sync link.
#
# Environment:
#   N_FLOWS             conntracks inserted on fw1 (default 40)
#   STRICT_OPENMETRICS  1: the OpenMetrics 1.0 parser must accept it too
#                       (default: its verdict is reported as a SKIP)
#   NO_PYPROM           1: act as if python3-prometheus-client were missing
#                       (promtool parses; values read from the text)
set -u
. "$(dirname "$0")/lib.sh"
need_root t-metrics
lib_init

: "${N_FLOWS:=40}"
PY=/usr/bin/python3
HAVE_PROMTOOL=0; HAVE_PYPROM=0
command -v promtool >/dev/null && HAVE_PROMTOOL=1
$PY -c 'import prometheus_client.parser' 2>/dev/null && HAVE_PYPROM=1 && [ "${NO_PYPROM:-0}" = 0 ] || HAVE_PYPROM=0
if [ $HAVE_PROMTOOL = 0 ] && [ $HAVE_PYPROM = 0 ]; then
	skip t-metrics "no Prometheus parser: install prometheus (promtool) or python3-prometheus-client"
	finish; exit
fi

# metric FILE NAME [LABELS]: value of the sample NAME{LABELS} (labels as
# k="v",... in any order), parsed by prometheus_client; empty if absent
metric() {
	if [ $HAVE_PYPROM = 0 ]; then
		# promtool has parsed the file; labels given in output order
		local sel=$2 kv
		if [ -n "${3:-}" ]; then
			sel="$sel{"
			for kv in ${3//,/ }; do sel="$sel${kv%%=*}=\"${kv#*=}\","; done
			sel="${sel%,}}"
		fi
		awk -v s="$sel" '$1 == s {print $2; exit}' "$1"
		return
	fi
	$PY - "$@" <<-'EOF'
	import sys
	from prometheus_client.parser import text_string_to_metric_families
	path, name = sys.argv[1], sys.argv[2]
	want = {}
	if len(sys.argv) > 3 and sys.argv[3]:
	    for kv in sys.argv[3].split(","):
	        k, v = kv.split("=", 1)
	        want[k] = v.strip('"')
	for fam in text_string_to_metric_families(open(path).read()):
	    for s in fam.samples:
	        if s.name == name and s.labels == want:
	            v = s.value
	            print(int(v) if v == int(v) else v)
	            sys.exit(0)
	EOF
}

# numbers from the classic output, as 1.4.x prints them
s_cache_active() {  # FILE internal|external -> "current active connections"
	awk -v c="cache $2:" '$0 == c {f=1; next} f && /current active connections/ {print $NF; exit}' "$1"
}
s_cache_created() {
	awk -v c="cache $2:" '$0 == c {f=1; next} f && /connections created/ {print $3; exit}' "$1"
}
s_chan() {  # FILE "Bytes sent"|"Bytes recv"|"Pckts sent"|"Pckts recv"
	case $2 in
	"Bytes sent") awk '/traffic \(active device/ {getline; print $1; exit}' "$1";;
	"Bytes recv") awk '/traffic \(active device/ {getline; print $4; exit}' "$1";;
	"Pckts sent") awk '/traffic \(active device/ {getline; getline; print $1; exit}' "$1";;
	"Pckts recv") awk '/traffic \(active device/ {getline; getline; print $4; exit}' "$1";;
	esac
}
s_cachefile_total() {  # -s cache FILE internal|external -> total of "active/total entries"
	awk -v c="cache:$2" '$1 == c {f=1; next} f && /active\/total entries/ {print $NF; exit}' "$1"
}

# parsers FW TAG: the metrics of FW (saved as $T/TAG.prom) pass both parsers
parsers() {
	local fw=$1 tag=$2 f=$T/$2.prom out
	if ! ctd "$fw" -s metrics > "$f" 2>"$T/$tag.err" || [ ! -s "$f" ]; then
		fail "metrics[$tag]: -s metrics answers" "$(cat "$T/$tag.err")"
		return 1
	fi
	if [ $HAVE_PROMTOOL = 1 ]; then
		if out=$(promtool check metrics < "$f" 2>&1); then
			pass "metrics[$tag]: promtool check metrics (parse and lint) accepts $(grep -vc '^#' "$f") samples"
		else
			fail "metrics[$tag]: promtool check metrics accepts it" "$(echo "$out" | head -3 | tr '\n' ' ')"
		fi
	else
		skip "metrics[$tag]: promtool check metrics" "promtool not installed (Debian package prometheus)"
	fi
	if [ $HAVE_PYPROM = 1 ]; then
		if out=$($PY -c '
import sys
from prometheus_client.parser import text_string_to_metric_families
fams = list(text_string_to_metric_families(open(sys.argv[1]).read()))
assert fams, "no families"
for f in fams:
    assert f.name.startswith("conntrackd_"), f.name
    assert f.type in ("counter", "gauge"), (f.name, f.type)
    assert f.samples, f.name + " has no samples"
    for s in f.samples:
        assert s.value >= 0, (s.name, s.value)
print(len(fams))' "$f" 2>&1); then
			pass "metrics[$tag]: prometheus_client text parser reads $out families, all typed, non-negative"
		else
			fail "metrics[$tag]: prometheus_client text parser reads it" "$(echo "$out" | tail -1)"
		fi
		if out=$($PY -c '
import sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families
list(text_string_to_metric_families(open(sys.argv[1]).read()))' "$f" 2>&1); then
			pass "metrics[$tag]: OpenMetrics 1.0 parser accepts it"
		elif [ "${STRICT_OPENMETRICS:-0}" = 1 ]; then
			fail "metrics[$tag]: OpenMetrics 1.0 parser accepts it" "$(echo "$out" | tail -1)"
		else
			skip "metrics[$tag]: OpenMetrics 1.0 parser" "Prometheus text only: $(echo "$out" | tail -1)"
		fi
	else
		skip "metrics[$tag]: prometheus_client parser" "python3-prometheus-client not installed${NO_PYPROM:+ (NO_PYPROM=$NO_PYPROM)}"
	fi
}

# eq NAME GOT WANT
eq() {
	if [ -n "$2" ] && [ "$2" = "$3" ]; then pass "$1 ($2)"; else fail "$1" "metrics ${2:-<absent>}, expected ${3:-<absent>}"; fi
}
# between NAME LOW GOT HIGH: a counter read between two -s snapshots
between() {
	if [ -n "$3" ] && [ -n "$2" ] && [ -n "$4" ] && [ "$2" -le "$3" ] && [ "$3" -le "$4" ]; then
		pass "$1 ($2 <= $3 <= $4)"
	else
		fail "$1" "metrics ${3:-<absent>} not within -s ${2:-?}..${4:-?}"
	fi
}

new_case ftfw
pair_up || { fail "metrics: topology"; finish; exit; }
ctd_conf fw1 ftfw mcast on
ctd_conf fw2 ftfw mcast on
if ! ctd_start fw1 || ! ctd_start fw2; then
	fail "metrics: daemons start" "$CTD_ERR"
	finish; exit
fi

# traffic: N_FLOWS conntracks on fw1 (kernel events, synced to fw2), a
# few of them then destroyed
for i in $(seq 1 "$N_FLOWS"); do
	nsx fw1 conntrack -I -p tcp -s 10.9.$((i / 250)).$((i % 250 + 1)) -d 10.8.0.1 \
		--sport $((20000 + i)) --dport 80 --state ESTABLISHED -u SEEN_REPLY,ASSURED \
		-t 300 >/dev/null 2>&1
done
N_DEL=5
for i in $(seq 1 $N_DEL); do
	nsx fw1 conntrack -D -p tcp -s 10.9.0.$((i + 1)) --sport $((20000 + i)) >/dev/null 2>&1
done
N_LIVE=$((N_FLOWS - N_DEL))
ext_count() { [ "$(s_cache_active <(ctd fw2 -s) external)" = "$N_LIVE" ]; }
WHY="fw2 external cache: $(s_cache_active <(ctd fw2 -s) external)"
check "metrics: fw2's external cache holds the $N_LIVE live flows" wait_until 10 ext_count

# FT-FW keeps destroyed entries until the peer acknowledges them: wait for
# that, so -s cache and the metrics see the same objects
settled() { ctd fw1 -s cache | awk '/active\/total entries/ {sub(/.*:/, ""); gsub(/[ \t]/, ""); split($0, a, "/"); n++; if (a[1] != a[2]) bad=1} END {exit !(n && !bad)}'; }
wait_until 10 settled || note "fw1 still holds unacknowledged objects"

# fw1: internal cache and channel counters
ctd fw1 -s > "$T/fw1.s1"
parsers fw1 fw1
ctd fw1 -s > "$T/fw1.s2"
ctd fw1 -s cache > "$T/fw1.cache"
P=$T/fw1.prom
eq "metrics[fw1]: cache_entries{internal,ct} = -s current active connections" \
	"$(metric "$P" conntrackd_cache_entries 'cache=internal,kind=ct')" "$(s_cache_active "$T/fw1.s2" internal)"
eq "metrics[fw1]: cache_entries{internal,ct} = the live flows" \
	"$(metric "$P" conntrackd_cache_entries 'cache=internal,kind=ct')" "$N_LIVE"
eq "metrics[fw1]: cache_created_total{internal,ct} = -s connections created" \
	"$(metric "$P" conntrackd_cache_created_total 'cache=internal,kind=ct')" "$(s_cache_created "$T/fw1.s2" internal)"
eq "metrics[fw1]: cache_objects{internal,ct} = -s cache total entries" \
	"$(metric "$P" conntrackd_cache_objects 'cache=internal,kind=ct')" "$(s_cachefile_total "$T/fw1.cache" internal)"
for k in "Bytes sent:sent_bytes" "Pckts sent:sent_packets" "Bytes recv:received_bytes" "Pckts recv:received_packets"; do
	between "metrics[fw1]: channel_${k#*:}_total within the -s ${k%%:*} before and after" \
		"$(s_chan "$T/fw1.s1" "${k%%:*}")" \
		"$(metric "$P" "conntrackd_channel_${k#*:}_total" 'channel=0,device=sync0')" \
		"$(s_chan "$T/fw1.s2" "${k%%:*}")"
done
eq "metrics[fw1]: channel_active{sync0} = 1" \
	"$(metric "$P" conntrackd_channel_active 'channel=0,device=sync0')" 1
eq "metrics[fw1]: control_clients counts the asking client" \
	"$(metric "$P" conntrackd_control_clients)" 1
ev=$(metric "$P" conntrackd_netlink_events_total)
if [ -n "$ev" ] && [ "$ev" -ge "$N_FLOWS" ]; then
	pass "metrics[fw1]: netlink_events_total counts the kernel events ($ev >= $N_FLOWS)"
else
	fail "metrics[fw1]: netlink_events_total counts the kernel events" "${ev:-<absent>} < $N_FLOWS"
fi

# fw2: external cache, then a commit shows up in commits_total
ctd fw2 -c >/dev/null 2>&1
ctd fw2 -s > "$T/fw2.s"
parsers fw2 fw2
P=$T/fw2.prom
eq "metrics[fw2]: cache_entries{external,ct} = -s current active connections" \
	"$(metric "$P" conntrackd_cache_entries 'cache=external,kind=ct')" "$(s_cache_active "$T/fw2.s" external)"
eq "metrics[fw2]: cache_created_total{external,ct} = -s connections created" \
	"$(metric "$P" conntrackd_cache_created_total 'cache=external,kind=ct')" "$(s_cache_created "$T/fw2.s" external)"
eq "metrics[fw2]: commits_total after one -c" "$(metric "$P" conntrackd_commits_total)" 1
d=$(metric "$P" conntrackd_last_commit_duration_seconds)
if [ -n "$d" ] && $PY -c "import sys; sys.exit(not (0 < float('$d') < 10))"; then
	pass "metrics[fw2]: last_commit_duration_seconds is the commit's duration (${d}s)"
else
	fail "metrics[fw2]: last_commit_duration_seconds is the commit's duration" "got ${d:-<absent>}"
fi
n=$(nsx fw2 conntrack -L -p tcp --dport 80 2>/dev/null | grep -c 'dport=80 ')
eq "metrics[fw2]: the commit put the live flows in fw2's kernel" "$n" "$N_LIVE"

# losses on the sync link show up as sequence gaps, the number -s prints
s_lost() { awk '/Malformed msgs/ {print $4; exit}' "$1"; }
sync_loss fw2 50
for i in $(seq 1 "$N_FLOWS"); do
	nsx fw1 conntrack -I -p udp -s 10.6.$((i / 250)).$((i % 250 + 1)) -d 10.8.0.1 \
		--sport $((30000 + i)) --dport 53 -t 300 >/dev/null 2>&1
done
nsx fw2 nft delete table inet ctdloss
N_ALL=$((N_LIVE + N_FLOWS))
all_synced() { [ "$(s_cache_active <(ctd fw2 -s) external)" = "$N_ALL" ]; }
fw2_ext() { s_cache_active <(ctd fw2 -s) external; }
if wait_until 15 all_synced; then
	pass "metrics[loss]: FT-FW recovered the $N_FLOWS flows sent over a 50% lossy link"
else
	fail "metrics[loss]: FT-FW recovered the flows sent over a 50% lossy link" \
		"fw2 external cache: $(fw2_ext), want $N_ALL"
fi
ctd fw2 -s > "$T/fw2.l1"
parsers fw2 loss
ctd fw2 -s > "$T/fw2.l2"
lost=$(metric "$T/loss.prom" conntrackd_sync_lost_messages_total)
between "metrics[loss]: sync_lost_messages_total within -s Lost msgs before and after" \
	"$(s_lost "$T/fw2.l1")" "$lost" "$(s_lost "$T/fw2.l2")"
if [ -n "$lost" ] && [ "$lost" -gt 0 ]; then
	pass "metrics[loss]: the losses are counted ($lost)"
else
	fail "metrics[loss]: the losses are counted" "sync_lost_messages_total=${lost:-<absent>}"
fi
eq "metrics[loss]: cache_entries{external,ct} after recovery" \
	"$(metric "$T/loss.prom" conntrackd_cache_entries 'cache=external,kind=ct')" "$N_ALL"

# a Stats-mode daemon (no sync): the cache families, no channel ones
ctd_stop fw1
cat > "$T/fw1.conf" <<EOF
Stats {
	LogFile off
	Syslog off
}
General {
	Systemd off
	HashSize 8192
	HashLimit 65536
	LockFile $T/fw1.lock
	UNIX { Path $T/fw1.ctl }
	Filter From Kernelspace { Protocol Accept { TCP } }
}
EOF
if ctd_start fw1; then
	nsx fw1 conntrack -I -p tcp -s 10.7.0.1 -d 10.7.0.2 --sport 1 --dport 2 \
		--state ESTABLISHED -u SEEN_REPLY -t 300 >/dev/null 2>&1
	parsers fw1 stats
	got=$(metric "$T/stats.prom" conntrackd_cache_entries 'cache=stats,kind=ct')
	if [ -n "$got" ] && ! grep -q '^conntrackd_channel' "$T/stats.prom"; then
		pass "metrics[stats]: Stats mode exports its cache ($got entries) and no channel families"
	else
		fail "metrics[stats]: Stats mode exports its cache and no channel families" \
			"cache_entries{stats}=${got:-<absent>}; $(grep -c '^conntrackd_channel' "$T/stats.prom") channel samples"
	fi
else
	fail "metrics[stats]: Stats-mode daemon starts" "$CTD_ERR"
fi
finish
