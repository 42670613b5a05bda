/*
 * Beyond upstream: every counter in the Prometheus text exposition format
 * (`conntrackd -s metrics`, request CTL_STATS_METRICS), for node_exporter's
 * textfile collector or a tiny HTTP shim; checked with promtool. It is not
 * strict OpenMetrics 1.0 (family names keep `_total'), though it ends with
 * OpenMetrics' `# EOF', a plain comment to Prometheus parsers.
 */
#include <stdio.h>
#include <time.h>

#include "cache.h"
#include "channel.h"
#include "ctd.h"
#include "ctl.h"
#include "nl.h"
#include "sync.h"
#include "wire.h"

typedef unsigned long long ull;

struct mcache {
	const char *name, *kind;
	const struct cache_stats *s;
};

/* The Prometheus text format names a counter family like its samples,
 * with the `_total' suffix (promtool and node_exporter's textfile collector
 * expect that). */
static void family(FILE *f, const char *name, const char *type, const char *help)
{
	const char *sfx = type[0] == 'c' ? "_total" : "";

	fprintf(f, "# HELP conntrackd_%s%s %s\n# TYPE conntrackd_%s%s %s\n",
		name, sfx, help, name, sfx, type);
}

static void single(FILE *f, const char *name, const char *type,
		   const char *help, uint64_t v)
{
	family(f, name, type, help);
	fprintf(f, "conntrackd_%s%s %llu\n", name,
		type[0] == 'c' ? "_total" : "", (ull)v);
}

static unsigned list_caches(const struct ctd *d, struct mcache *out)
{
	static const char *const names[] = { "internal", "external" };
	unsigned n = 0;
	int ext, exp;

	if (d->stats && stats_mode_cache(d)) {
		out[n].name = "stats";
		out[n].kind = "ct";
		out[n++].s = cache_stats(stats_mode_cache(d));
	}
	if (!d->sync)
		return n;
	for (exp = 0; exp < 2; exp++)
		for (ext = 0; ext < 2; ext++) {
			struct cache *c = sync_cache(d, ext, exp);

			if (!c)
				continue;
			out[n].name = names[ext];
			out[n].kind = exp ? "exp" : "ct";
			out[n++].s = cache_stats(c);
		}
	return n;
}

#define CACHE_FIELD(fld, mname, type, help) do {                                \
	family(f, mname, type, help);                                           \
	for (i = 0; i < n; i++)                                                 \
		fprintf(f, "conntrackd_%s%s{cache=\"%s\",kind=\"%s\"} %llu\n",   \
			mname, type[0] == 'c' ? "_total" : "", mc[i].name,      \
			mc[i].kind, (ull)mc[i].s->fld);                        \
} while (0)

static void caches(FILE *f, const struct ctd *d)
{
	struct mcache mc[5];
	unsigned i, n = list_caches(d, mc);

	if (!n)
		return;
	CACHE_FIELD(active, "cache_entries", "gauge", "Live entries in the cache.");
	CACHE_FIELD(objects, "cache_objects", "gauge",
		    "Allocated objects, including dead ones kept for retransmission.");
	CACHE_FIELD(add_ok, "cache_created", "counter", "Entries created.");
	CACHE_FIELD(add_fail, "cache_create_failed", "counter", "Failed creations.");
	CACHE_FIELD(add_enospc, "cache_full", "counter",
		    "Creations refused because HashLimit was reached.");
	CACHE_FIELD(upd_ok, "cache_updated", "counter", "Entries updated.");
	CACHE_FIELD(upd_fail, "cache_update_failed", "counter", "Failed updates.");
	CACHE_FIELD(del_ok, "cache_destroyed", "counter", "Entries destroyed.");
	CACHE_FIELD(del_fail, "cache_destroy_failed", "counter", "Failed deletions.");
}

static void channels(FILE *f, const struct ctd *d)
{
	static const struct {
		const char *name, *help;
		size_t off;
	} fld[] = {
#define F(n, h, m) { n, h, __builtin_offsetof(struct chan_stats, m) }
		F("channel_sent_bytes", "Bytes sent on a sync channel.", bytes_sent),
		F("channel_received_bytes", "Bytes received on a sync channel.", bytes_recv),
		F("channel_sent_packets", "Datagrams or chunks sent on a sync channel.", msgs_sent),
		F("channel_received_packets", "Datagrams or chunks received on a sync channel.", msgs_recv),
		F("channel_send_errors", "Send errors on a sync channel.", err_sent),
		F("channel_receive_errors", "Receive errors on a sync channel.", err_recv),
#undef F
	};
	unsigned i, k, n;

	if (!d->chans)
		return;
	n = chanset_count(d->chans);
	family(f, "channel_active", "gauge", "1 for the channel currently sending.");
	for (i = 0; i < n; i++)
		fprintf(f, "conntrackd_channel_active{channel=\"%u\",device=\"%s\"} %d\n",
			i, i < d->conf->nchannels ? d->conf->channels[i].ifname : "",
			chanset_current(d->chans) == i);
	for (k = 0; k < sizeof(fld) / sizeof(fld[0]); k++) {
		family(f, fld[k].name, "counter", fld[k].help);
		for (i = 0; i < n; i++) {
			const struct chan_stats *cs = chanset_stats(d->chans, i);
			uint64_t v = cs ? *(const uint64_t *)((const char *)cs + fld[k].off) : 0;

			fprintf(f, "conntrackd_%s_total{channel=\"%u\",device=\"%s\"} %llu\n",
				fld[k].name, i,
				i < d->conf->nchannels ? d->conf->channels[i].ifname : "",
				(ull)v);
		}
	}
}

static void sync_counters(FILE *f, const struct ctd *d)
{
	const struct wire_rx_stats *rx = sync_rx_stats(d);
	const struct seq_stats *seq = sync_seq_stats(d);

	single(f, "sync_traffic_bytes", "counter",
	       "Bytes of destroyed flows (kernel accounting).", sync_traffic_bytes(d));
	single(f, "sync_traffic_packets", "counter",
	       "Packets of destroyed flows (kernel accounting).", sync_traffic_packets(d));
	if (rx) {
		family(f, "sync_malformed", "counter",
		       "Malformed sync messages received, by cause.");
		fprintf(f, "conntrackd_sync_malformed_total{cause=\"wrong_version\"} %llu\n"
			"conntrackd_sync_malformed_total{cause=\"bad_header\"} %llu\n"
			"conntrackd_sync_malformed_total{cause=\"bad_payload\"} %llu\n"
			"conntrackd_sync_malformed_total{cause=\"bad_type\"} %llu\n"
			"conntrackd_sync_malformed_total{cause=\"truncated\"} %llu\n"
			"conntrackd_sync_malformed_total{cause=\"bad_size\"} %llu\n",
			(ull)rx->wrong_version, (ull)rx->bad_header,
			(ull)rx->bad_payload, (ull)rx->bad_type,
			(ull)rx->truncated, (ull)rx->bad_size);
	}
	if (seq) {
		single(f, "sync_lost_messages", "counter",
		       "Sequence gaps seen on receive (1.4.x accounting).", seq->lost);
		single(f, "sync_before_messages", "counter",
		       "Messages received with an old sequence number.", seq->before);
	}
}

static void netlink(FILE *f, const struct ctd *d)
{
	const struct nl_stats *s = d->nl ? nl_stats(d) : NULL;

	if (!s)
		return;
	single(f, "netlink_events", "counter", "Kernel events received.", s->events_received);
	single(f, "netlink_events_filtered", "counter", "Kernel events dropped by the Filter.",
	       s->events_filtered);
	single(f, "netlink_events_unknown", "counter", "Kernel events of unknown type.",
	       s->events_unknown);
	single(f, "netlink_catch_failed", "counter", "Failed event reads.", s->catch_failed);
	single(f, "netlink_dump_unknown", "counter", "Dump entries of unknown type.",
	       s->dump_unknown);
	single(f, "netlink_overruns", "counter", "Event socket overruns (lost events).",
	       s->overruns);
	single(f, "netlink_kernel_flushes", "counter", "Kernel table flushes.", s->flushes);
	single(f, "netlink_resyncs", "counter", "Resyncs from a kernel table dump.", s->resyncs);
	single(f, "netlink_buffer_bytes", "gauge", "Event socket receive buffer size.",
	       s->bufsize);
}

void metrics_print(struct ctd *d, FILE *f)
{
	time_t now = time(NULL);

	single(f, "uptime_seconds", "gauge", "Seconds since initialisation completed.",
	       now > d->started ? (uint64_t)(now - d->started) : 0);
	caches(f, d);
	if (d->sync) {
		sync_counters(f, d);
		single(f, "commits", "counter", "Commits requested with -c and finished.",
		       d->commits);
		family(f, "last_commit_duration_seconds", "gauge",
		       "Duration of the last commit, request to completion.");
		fprintf(f, "conntrackd_last_commit_duration_seconds %llu.%06llu\n",
			(ull)(d->last_commit_us / 1000000), (ull)(d->last_commit_us % 1000000));
	}
	channels(f, d);
	netlink(f, d);
	single(f, "control_clients", "gauge", "Control socket clients connected.",
	       ctl_client_count(d));
	single(f, "control_read_failed", "counter",
	       "Control clients that sent no complete request in time.",
	       d->rt.local_read_failed);
	single(f, "control_unknown_requests", "counter", "Unknown control requests.",
	       d->rt.local_unknown_request);
	single(f, "child_failed", "counter", "Helper processes that failed.",
	       d->rt.child_failed);
	single(f, "select_failed", "counter", "Failed select() calls.",
	       d->rt.select_failed + (d->loop ? ev_select_failures(d->loop) : 0));
	fputs("# EOF\n", f);
}
