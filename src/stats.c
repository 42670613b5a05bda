/* The -s text blocks, byte for byte as conntrackd 1.4.x prints them. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "cache.h"
#include "channel.h"
#include "ctd.h"
#include "ctl.h"
#include "nl.h"
#include "sync.h"
#include "wire.h"

typedef unsigned long long ull;

void stats_uptime(char *buf, size_t len, uint64_t secs)
{
	ull days = secs / 86400, h = (secs / 3600) % 24, m = (secs / 60) % 60;
	int n = 0;

	if (days > 0)
		n = snprintf(buf, len, "%llu %s ", days, days > 1 ? "days" : "day");
	if (n < 0 || (size_t)n >= len)
		return;
	if (h > 0)
		snprintf(buf + n, len - (size_t)n, "%llu h %llu min", h, m);
	else
		snprintf(buf + n, len - (size_t)n, "%llu min", m);
}

void stats_fmt_cache(FILE *f, const char *name, const struct cache_stats *s)
{
	fprintf(f, "cache %s:\n"
		"current active connections:\t%12llu\n"
		"connections created:\t\t%12llu\tfailed:\t%12llu\n"
		"connections updated:\t\t%12llu\tfailed:\t%12llu\n"
		"connections destroyed:\t\t%12llu\tfailed:\t%12llu\n\n",
		name, (ull)s->active, (ull)s->add_ok, (ull)s->add_fail,
		(ull)s->upd_ok, (ull)s->upd_fail, (ull)s->del_ok, (ull)s->del_fail);
}

void stats_fmt_bypass(FILE *f, const struct cache_stats *s)
{
	fprintf(f, "internal bypass:\n"
		"connections new:\t\t%12llu\n"
		"connections updated:\t\t%12llu\n"
		"connections destroyed:\t\t%12llu\n\n",
		(ull)s->add_ok, (ull)s->upd_ok, (ull)s->del_ok);
}

void stats_fmt_inject(FILE *f, const struct cache_stats *s)
{
	fprintf(f, "external inject:\n"
		"connections created:\t\t%12llu\tfailed:\t%12llu\n"
		"connections updated:\t\t%12llu\tfailed:\t%12llu\n"
		"connections destroyed:\t\t%12llu\tfailed:\t%12llu\n\n",
		(ull)s->add_ok, (ull)s->add_fail, (ull)s->upd_ok,
		(ull)s->upd_fail, (ull)s->del_ok, (ull)s->del_fail);
}

void stats_fmt_cache_ext(FILE *f, const char *name, const struct cache_stats *s)
{
	fprintf(f, "cache:%s\tactive objects:\t\t%12llu\n"
		"\tactive/total entries:\t\t%12llu/%12llu\n"
		"\tcreation OK/failed:\t\t%12llu/%12llu\n"
		"\t\tno memory available:\t%12llu\n"
		"\t\tno space left in cache:\t%12llu\n"
		"\tupdate OK/failed:\t\t%12llu/%12llu\n"
		"\t\tentry not found:\t%12llu\n"
		"\tdeletion created/failed:\t%12llu/%12llu\n"
		"\t\tentry not found:\t%12llu\n\n",
		name, (ull)s->objects, (ull)s->active, (ull)s->hashed,
		(ull)s->add_ok, (ull)s->add_fail, (ull)s->add_enomem,
		(ull)s->add_enospc, (ull)s->upd_ok, (ull)s->upd_fail,
		(ull)s->upd_enoent, (ull)s->del_ok, (ull)s->del_fail,
		(ull)s->del_enoent);
}

void stats_fmt_traffic(FILE *f, uint64_t bytes, uint64_t packets)
{
	fprintf(f, "traffic processed:\n%20llu Bytes      %20llu Pckts\n\n",
		(ull)bytes, (ull)packets);
}

void stats_fmt_msgtrack(FILE *f, uint64_t malformed, uint64_t lost)
{
	fprintf(f, "message tracking:\n%20llu Malformed msgs %20llu Lost msgs\n\n",
		(ull)malformed, (ull)lost);
}

void stats_fmt_network(FILE *f, const struct wire_rx_stats *rx,
		       uint64_t tx_malformed, const struct seq_stats *seq)
{
	fprintf(f, "network statistics:\n"
		"\trecv:\n"
		"\t\tMalformed messages:\t%20llu\n"
		"\t\tWrong protocol version:\t%20llu\n"
		"\t\tMalformed header:\t%20llu\n"
		"\t\tMalformed payload:\t%20llu\n"
		"\t\tBad message type:\t%20llu\n"
		"\t\tTruncated message:\t%20llu\n"
		"\t\tBad message size:\t%20llu\n"
		"\tsend:\n"
		"\t\tMalformed messages:\t%20llu\n\n"
		"sequence tracking statistics:\n"
		"\trecv:\n"
		"\t\tPackets lost:\t\t%20llu\n"
		"\t\tPackets before:\t\t%20llu\n\n",
		(ull)rx->malformed, (ull)rx->wrong_version, (ull)rx->bad_header,
		(ull)rx->bad_payload, (ull)rx->bad_type, (ull)rx->truncated,
		(ull)rx->bad_size, (ull)tx_malformed, (ull)seq->lost,
		(ull)seq->before);
}

void stats_fmt_runtime(FILE *f, uint64_t uptime, const struct nl_stats *nl,
		       const struct runtime_stats *rt)
{
	char up[64];

	stats_uptime(up, sizeof(up), uptime);
	fprintf(f, "daemon uptime: %s\n\n"
		"netlink stats:\n"
		"\tevents received:\t%20llu\n"
		"\tevents filtered:\t%20llu\n"
		"\tevents unknown type:\t\t%12llu\n"
		"\tcatch event failed:\t\t%12llu\n"
		"\tdump unknown type:\t\t%12llu\n"
		"\tnetlink overrun:\t\t%12llu\n"
		"\tflush kernel table:\t\t%12llu\n"
		"\tresync with kernel table:\t%12llu\n"
		"\tcurrent buffer size (in bytes):\t%12llu\n\n"
		"runtime stats:\n"
		"\tchild process failed:\t\t%12llu\n"
		"\t\tchild process segfault:\t%12llu\n"
		"\t\tchild process termsig:\t%12llu\n"
		"\tselect failed:\t\t\t%12llu\n"
		"\twait failed:\t\t\t%12llu\n"
		"\tlocal read failed:\t\t%12llu\n"
		"\tlocal unknown request:\t\t%12llu\n\n",
		up, (ull)nl->events_received, (ull)nl->events_filtered,
		(ull)nl->events_unknown, (ull)nl->catch_failed,
		(ull)nl->dump_unknown, (ull)nl->overruns, (ull)nl->flushes,
		(ull)nl->resyncs, (ull)nl->bufsize,
		(ull)rt->child_failed, (ull)rt->child_segfault,
		(ull)rt->child_termsig, (ull)rt->select_failed,
		(ull)rt->wait_failed, (ull)rt->local_read_failed,
		(ull)rt->local_unknown_request);
}

void stats_fmt_process(FILE *f, const struct ctd *d)
{
	unsigned i;

	for (i = 0; i < d->nchildren; i++)
		fprintf(f, "PID=%d type=%s\n", (int)d->children[i].pid,
			d->children[i].type);
}

/* Text producers of other modules fill a caller buffer with snprintf
 * semantics; retry once with the size they asked for. */
static void put_text(FILE *f, const struct ctd *d,
		     int (*fn)(const struct ctd *, char *, size_t))
{
	char small[8192], *big;
	int n = fn(d, small, sizeof(small));

	if (n <= 0)
		return;
	if ((size_t)n < sizeof(small)) {
		fwrite(small, 1, (size_t)n, f);
		return;
	}
	big = malloc((size_t)n + 1);
	if (!big)
		return;
	n = fn(d, big, (size_t)n + 1);
	if (n > 0)
		fwrite(big, 1, (size_t)n, f);
	free(big);
}

static void put_chan(FILE *f, const struct ctd *d, bool links)
{
	char buf[8192];
	int n;

	if (!d->chans)
		return;
	n = links ? chanset_print_links(d->chans, buf, sizeof(buf))
		  : chanset_print_current(d->chans, buf, sizeof(buf));
	if (n > 0)
		fwrite(buf, 1, (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1, f);
}

/* Beyond 1.4.x, and only when AuthKeyFile is set: plain output stays 1.4.x's. */
static void put_auth(FILE *f, const struct ctd *d)
{
	char buf[2048];
	int n;

	if (!d->chans || !chanset_auth_on(d->chans))
		return;
	n = chanset_print_auth(d->chans, buf, sizeof(buf));
	if (n > 0)
		fwrite(buf, 1, (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1, f);
}

static const struct cache_stats zero_stats;

static const struct cache_stats *cstats(const struct ctd *d, bool ext, bool exp)
{
	struct cache *c = sync_cache(d, ext, exp);

	return c ? cache_stats(c) : &zero_stats;
}

static void sync_caches_block(FILE *f, const struct ctd *d, bool exp)
{
	const struct ctd_conf *conf = d->conf;

	if (conf->disable_internal_cache)
		stats_fmt_bypass(f, cstats(d, false, exp));
	else
		stats_fmt_cache(f, "internal", cstats(d, false, exp));
	if (conf->disable_external_cache)
		stats_fmt_inject(f, cstats(d, true, exp));
	else
		stats_fmt_cache(f, "external", cstats(d, true, exp));
}

static void sync_general(FILE *f, const struct ctd *d, bool exp)
{
	const struct wire_rx_stats *rx = sync_rx_stats(d);
	const struct seq_stats *seq = sync_seq_stats(d);

	sync_caches_block(f, d, exp);
	stats_fmt_traffic(f, sync_traffic_bytes(d), sync_traffic_packets(d));
	put_chan(f, d, false);
	stats_fmt_msgtrack(f, rx ? rx->malformed : 0, seq ? seq->lost : 0);
}

static void runtime(FILE *f, const struct ctd *d)
{
	static const struct nl_stats none;
	const struct nl_stats *nl = d->nl ? nl_stats(d) : NULL;
	struct runtime_stats rt = d->rt;
	time_t now = time(NULL);

	if (d->loop)
		rt.select_failed += ev_select_failures(d->loop);
	stats_fmt_runtime(f, now > d->started ? (uint64_t)(now - d->started) : 0,
			  nl ? nl : &none, &rt);
}

static void print_sync(struct ctd *d, int req, FILE *f)
{
	static const struct wire_rx_stats rx0;
	static const struct seq_stats seq0;
	const struct ctd_conf *conf = d->conf;

	switch (req) {
	case CTL_STATS:
		sync_general(f, d, false);
		break;
	case CTL_EXP_STATS:
		if (conf->expectation_sync)
			sync_general(f, d, true);
		break;
	case CTL_STATS_NETWORK: {
		const struct wire_rx_stats *rx = sync_rx_stats(d);
		const struct seq_stats *seq = sync_seq_stats(d);

		stats_fmt_network(f, rx ? rx : &rx0, 0, seq ? seq : &seq0);
		put_auth(f, d);
		put_chan(f, d, false);
		break;
	}
	case CTL_STATS_CACHE:
		if (conf->disable_internal_cache)
			stats_fmt_bypass(f, cstats(d, false, false));
		else
			stats_fmt_cache_ext(f, "internal", cstats(d, false, false));
		if (conf->disable_external_cache)
			stats_fmt_inject(f, cstats(d, true, false));
		else
			stats_fmt_cache_ext(f, "external", cstats(d, true, false));
		break;
	case CTL_STATS_LINK:
		put_chan(f, d, true);
		break;
	case CTL_STATS_RSQUEUE:
		put_text(f, d, sync_print_rsqueue);
		break;
	case CTL_STATS_QUEUE:
		put_text(f, d, sync_print_queues);
		break;
	}
}

static void print_stats_mode(struct ctd *d, int req, FILE *f)
{
	struct cache *c = stats_mode_cache(d);
	const struct cache_stats *s = c ? cache_stats(c) : &zero_stats;

	switch (req) {
	case CTL_STATS:
		stats_fmt_cache(f, "stats", s);
		stats_fmt_traffic(f, stats_mode_bytes(d), stats_mode_packets(d));
		break;
	case CTL_STATS_CACHE:
		stats_fmt_cache_ext(f, "stats", s);
		break;
	}
}

void stats_print(struct ctd *d, int req, FILE *f)
{
	switch (req) {
	case CTL_STATS_RUNTIME:
		runtime(f, d);
		return;
	case CTL_STATS_PROCESS:
		stats_fmt_process(f, d);
		return;
	}
	if (d->sync)
		print_sync(d, req, f);
	else if (d->stats)
		print_stats_mode(d, req, f);
}
