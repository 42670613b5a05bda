/*
 * Stats mode (spec config-and-cli.md §8): one cache of the current
 * conntracks, fed by the start-up dump and by events; each flow that ends
 * is written as an object record to the Stats log. No peers, no channels.
 */
#include <stdlib.h>

#include "cache.h"
#include "ctd.h"
#include "kernel.h"
#include "log.h"
#include "nl.h"
#include "objconv.h"

struct stats_mode {
	struct cache *cache;
	uint64_t      bytes, packets;   /* of ended flows, with accounting */
	bool          resyncing;
};

/* Counters, timeout and use count change all the time; the cache keeps
 * the identity and state of a flow only. */
static void store(struct ctd *d, const struct ct *ct)
{
	struct stats_mode *s = d->stats;
	struct cache_obj *o;
	struct ct tmp = *ct;

	tmp.have &= ~(CT_H_TIMEOUT | CT_H_COUNTERS);
	o = cache_update(s->cache, &tmp);
	if (o && s->resyncing)
		o->flags |= COBJ_F_SEEN;
}

static void account(struct stats_mode *s, const struct ct *ct)
{
	if (!(ct->have & CT_H_COUNTERS) || !ct->ext)
		return;
	s->packets += ct->ext->counters[0] + ct->ext->counters[2];
	s->bytes += ct->ext->counters[1] + ct->ext->counters[3];
}

/* As 1.4.x: the destroy event itself is the record (it carries the final
 * counters and, like the kernel, omits a zero mark). */
static void log_flow(const struct ct *ct)
{
	char text[1024];
	struct ct m = *ct;

	m.have &= ~(CT_H_TIMEOUT);
	if (ct_snprintf_timeout(text, sizeof(text), &m) > 0)
		log_record(true, text);
}

static void ct_event(struct ctd *d, enum nl_event ev, enum nl_origin origin,
		     const struct ct *ct)
{
	struct stats_mode *s = d->stats;
	struct cache_obj *o;

	if (ev != NL_DESTROY) {
		store(d, ct);
		return;
	}
	o = cache_find(s->cache, ct);
	if (!o)
		return;
	account(s, ct);
	log_flow(ct);
	cache_del(s->cache, o);
}

static void exp_event(struct ctd *d, enum nl_event ev, enum nl_origin o,
		      const struct exp *e)
{
	/* Stats mode never follows expectations (1.4.x). */
}

static void ct_dump(struct ctd *d, const struct ct *ct)
{
	store(d, ct);
}

static void exp_dump(struct ctd *d, const struct exp *e)
{
}

static void resync_begin(struct ctd *d, bool exp)
{
	if (!exp)
		d->stats->resyncing = true;
}

static int purge_unseen(struct cache_obj *o, void *arg)
{
	struct ctd *d = arg;

	if (o->flags & COBJ_F_SEEN) {
		o->flags &= ~COBJ_F_SEEN;
		return 0;
	}
	log_flow(cobj_cct(o));
	cache_del(d->stats->cache, o);
	return 0;
}

static void resync_done(struct ctd *d, bool exp)
{
	if (exp || !d->stats->resyncing)
		return;
	d->stats->resyncing = false;
	cache_iterate(d->stats->cache, purge_unseen, d);
}

static const struct nl_sink sink = {
	.ct_event = ct_event,
	.exp_event = exp_event,
	.ct_dump = ct_dump,
	.exp_dump = exp_dump,
	.resync_begin = resync_begin,
	.resync_done = resync_done,
};

const struct nl_sink *stats_mode_sink(void)
{
	return &sink;
}

int stats_mode_new(struct ctd *d)
{
	struct stats_mode *s = calloc(1, sizeof(*s));

	if (s)
		s->cache = cache_new("stats", OBJ_CT, d->conf->hashsize,
				     d->conf->hashlimit);
	if (!s || !s->cache) {
		free(s);
		log_err("can't allocate memory for the stats");
		return -1;
	}
	d->stats = s;
	return 0;
}

int stats_mode_init(struct ctd *d)
{
	if (stats_mode_new(d) < 0)
		return -1;
	if (nl_open(d, &sink) < 0)
		return -1;
	if (nl_dump_ct(d) < 0) {
		log_err("can't get kernel conntrack table");
		return -1;
	}
	return 0;
}

void stats_mode_fini(struct ctd *d)
{
	struct stats_mode *s = d->stats;

	if (!s)
		return;
	if (d->nl)
		nl_close(d);
	cache_free(s->cache);
	free(s);
	d->stats = NULL;
}

struct cache *stats_mode_cache(const struct ctd *d)
{
	return d->stats ? d->stats->cache : NULL;
}

uint64_t stats_mode_bytes(const struct ctd *d)
{
	return d->stats ? d->stats->bytes : 0;
}

uint64_t stats_mode_packets(const struct ctd *d)
{
	return d->stats ? d->stats->packets : 0;
}

void stats_mode_flush(struct ctd *d)
{
	log_notice("flushing caches");
	cache_flush(d->stats->cache);
}

/* A dump refreshes the cache; flows gone from the kernel are logged. */
void stats_mode_resync(struct ctd *d)
{
	log_notice("resync with master conntrack table");
	resync_begin(d, false);
	if (nl_dump_ct(d) < 0) {
		log_err("can't get kernel conntrack table");
		d->stats->resyncing = false;
		return;
	}
	resync_done(d, false);
}

static bool flush_pred(const struct ct *ct, void *arg)
{
	return nl_filter_ct(arg, ct);
}

/* Entries rejected by the configured Filter are kept, as 1.4.x. */
void stats_mode_flush_kernel(struct ctd *d)
{
	log_notice("flushing kernel conntrack table");
	if (kernel_flush_ct(flush_pred, d, &d->portid_flush) < 0)
		log_err("cannot flush kernel conntrack table");
}
