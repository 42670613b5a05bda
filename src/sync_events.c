/*
 * Kernel events and dumps into the internal cache (the nl_sink of sync
 * mode): what changed is queued for the peer, expectations are filtered by
 * helper and master, a resync purges what the kernel no longer reports.
 */
#include <stdbool.h>
#include <string.h>

#include "conf.h"
#include "ctd.h"
#include "nl.h"
#include "sync_priv.h"

/* Reported by the kernel: not "vanished" for a resync running now. */
static void seen(struct sync *s, struct cache_obj *o, bool send)
{
	o->flags |= COBJ_F_SEEN;
	if (s->mode == SYNC_MODE_ALARM)
		alarm_arm(s, o);
	if (send)
		sync_enqueue_obj(s, o);
}

static void after_change(struct sync *s, struct cache_obj *o, enum nl_origin org)
{
	seen(s, o, org == NL_ORIGIN_OTHER);
}

static void destroy_obj(struct sync *s, struct cache *c, struct cache_obj *o, bool send)
{
	if (o->state == OBJ_DEAD)
		return;
	if (send) {
		cache_mark_dead(c, o);
		sync_enqueue_obj(s, o);
		return;
	}
	sync_obj_dequeue(s, o);
	cache_del(c, o);
}

static void int_destroy(struct sync *s, struct cache *c, const void *obj,
			enum nl_origin org)
{
	struct cache_obj *o = cache_find(c, obj);

	if (o == NULL || o->state == OBJ_DEAD) {
		struct cache_stats *st = cache_stats_mut(c);

		st->del_fail++;
		st->del_enoent++;
		return;
	}
	destroy_obj(s, c, o, org == NL_ORIGIN_OTHER);
}

static void count_traffic(struct sync *s, const struct ct *ct)
{
	if ((ct->have & CT_H_COUNTERS) && ct->ext) {
		s->traffic_pkts += ct->ext->counters[0] + ct->ext->counters[2];
		s->traffic_bytes += ct->ext->counters[1] + ct->ext->counters[3];
	}
}

/* -s "internal bypass" reads these counters of the (empty) internal cache. */
static void count_bypass(struct cache_stats *st, enum nl_event ev)
{
	if (ev == NL_NEW)
		st->add_ok++;
	else if (ev == NL_UPDATE)
		st->upd_ok++;
	else
		st->del_ok++;
}

/* A NEW entry: a live one with the same key is overwritten in place (its
 * queue position kept); a dead one's pending DESTROY is superseded and
 * dropped, so a late retransmission of it cannot delete the new entry on
 * the peer. */
static struct cache_obj *fresh_at(struct sync *s, struct cache *c,
				  struct cache_obj *o, const void *obj)
{
	uint64_t before = cache_stats(c)->add_enospc;
	struct cache_obj *n;

	if (o != NULL && o->state != OBJ_DEAD)
		return cache_replace(c, o, obj);
	if (o != NULL) {
		sync_obj_dequeue(s, o);
		cache_del(c, o);
	}
	n = cache_insert(c, obj);
	if (n == NULL)
		sync_note_full(s, c, before, false);
	return n;
}

static struct cache_obj *int_fresh(struct sync *s, struct cache *c, const void *obj)
{
	return fresh_at(s, c, cache_find(c, obj), obj);
}

/* UPDATE semantics on the internal cache (one lookup per event). */
static struct cache_obj *int_update(struct sync *s, struct cache *c, const void *obj)
{
	struct cache_obj *o = cache_find(c, obj);

	if (o != NULL && o->state != OBJ_DEAD)
		return cache_merge(c, o, obj);
	return fresh_at(s, c, o, obj);
}

static void on_ct_event(struct ctd *d, enum nl_event ev, enum nl_origin org,
			const struct ct *ct)
{
	struct sync *s = d->sync;
	struct cache_obj *o;

	if (s == NULL || org == NL_ORIGIN_INJECT)
		return;
	if (ev == NL_DESTROY)
		count_traffic(s, ct);
	if (d->conf->disable_internal_cache) {
		if (org != NL_ORIGIN_OTHER)
			return;
		sync_send_direct(s, WT_CT_NEW + (uint8_t)ev, ct);
		count_bypass(cache_stats_mut(s->int_ct), ev);
		return;
	}
	switch (ev) {
	case NL_NEW:
		if ((o = int_fresh(s, s->int_ct, ct)) != NULL)
			after_change(s, o, org);
		break;
	case NL_UPDATE:
		if ((o = int_update(s, s->int_ct, ct)) != NULL)
			after_change(s, o, org);
		break;
	case NL_DESTROY:
		int_destroy(s, s->int_ct, ct, org);
		break;
	}
}

/*
 * The master is not cached yet: the two event sockets are read
 * independently, and a daemon that lags (load, a stop) can read an
 * expectation while its master's NEW event still waits on the conntrack
 * socket. Dropping the expectation would lose it for good (no later event,
 * no overrun to resync), so fetch the master from the kernel and handle it
 * as its event; the queued NEW event later just refreshes it.
 */
static struct cache_obj *master_from_kernel(struct sync *s, const struct ct *key,
					    enum nl_origin org)
{
	struct ctd *d = s->d;
	struct ct out;

	memset(&out, 0, sizeof(out));
	if (nl_get_ct(d, key, &out) == 1 && nl_filter_ct(d, &out))
		on_ct_event(d, NL_NEW, org, &out);
	ct_release(&out);
	return cache_find(s->int_ct, key);
}

/* §11: helper list, and the master must be known here first. */
static bool exp_wanted(struct sync *s, const struct exp *e, enum nl_origin org)
{
	struct ctd *d = s->d;
	struct ct key;
	struct cache_obj *m;

	if (!conf_exp_helper_ok(d->conf, e->helper))
		return false;
	if (!(e->have & EXP_H_MASTER) || e->master.l3 == 0)
		return false;
	memset(&key, 0, sizeof(key));
	key.orig = e->master;
	key.have = CT_H_ORIG | (l4_has_ports(e->master.l4) ? CT_H_PORTS : 0);
	if (e->have & EXP_H_ZONE) {
		key.zone = e->zone;
		key.have |= CT_H_ZONE;
	}
	if (d->conf->disable_internal_cache) {
		struct ct out;
		int r;

		memset(&out, 0, sizeof(out));
		r = nl_get_ct(d, &key, &out);
		ct_release(&out);
		/* 1.4.x inverts this test; forward when the master exists. */
		return r == 1;
	}
	m = cache_find(s->int_ct, &key);
	if (m == NULL || m->state == OBJ_DEAD)
		m = master_from_kernel(s, &key, org);
	return m != NULL && m->state != OBJ_DEAD;
}

static void on_exp_event(struct ctd *d, enum nl_event ev, enum nl_origin org,
			 const struct exp *e)
{
	struct sync *s = d->sync;
	struct cache_obj *o;

	if (s == NULL || org == NL_ORIGIN_INJECT)
		return;
	if (ev != NL_DESTROY && !exp_wanted(s, e, org))
		return;
	if (d->conf->disable_internal_cache) {
		if (org == NL_ORIGIN_OTHER) {
			sync_send_direct(s, WT_EXP_NEW + (uint8_t)ev, e);
			count_bypass(cache_stats_mut(s->int_exp), ev);
		}
		return;
	}
	switch (ev) {
	case NL_NEW:
	case NL_UPDATE:
		if ((o = int_fresh(s, s->int_exp, e)) != NULL) {
			if (ev == NL_UPDATE)
				o->state = OBJ_ALIVE;
			after_change(s, o, org);
		}
		break;
	case NL_DESTROY:
		int_destroy(s, s->int_exp, e, org);
		break;
	}
}

static bool ct_ext_unused(const struct ct *ct)
{
	const uint32_t ext = CT_H_MASTER | CT_H_MASTER_PORTS | CT_H_SEQADJ |
		CT_H_LABELS | CT_H_SYNPROXY | CT_H_COUNTERS | CT_H_TIMESTAMP;

	if (ct->ext == NULL)
		return (ct->have & ext & ~CT_H_SYNPROXY) == 0;
	if ((ct->have & ext) & ~CT_H_SYNPROXY)
		return false;
	return (ct->ext->synproxy[0] | ct->ext->synproxy[1] |
		ct->ext->synproxy[2]) == 0;
}

/*
 * A dumped conntrack the cache already holds in the same state: the peer
 * was sent that state already, so an overrun resync need not queue it
 * again (only the timeout moved). Entries with extensions are always
 * resent: comparing those is not worth the risk.
 */
static bool ct_unchanged(const struct cache_obj *o, const struct ct *n)
{
	const struct ct *c = cobj_cct(o);
	const uint32_t ignore = CT_H_TIMEOUT | CT_H_ID | CT_H_SYNPROXY;

	if (o->state == OBJ_DEAD || !ct_ext_unused(c) || !ct_ext_unused(n))
		return false;
	if ((c->have & ~ignore) != (n->have & ~ignore))
		return false;
	if ((n->have & (CT_H_REPL | CT_H_REPL_SYNTH)) && !tuple_equal(&c->repl, &n->repl))
		return false;
	return c->status == n->status && c->mark == n->mark &&
		c->secmark == n->secmark && c->tcp_state == n->tcp_state &&
		c->wscale_orig == n->wscale_orig && c->wscale_repl == n->wscale_repl &&
		c->sctp_state == n->sctp_state && c->sctp_vtag_orig == n->sctp_vtag_orig &&
		c->sctp_vtag_repl == n->sctp_vtag_repl && c->dccp_state == n->dccp_state &&
		c->dccp_role == n->dccp_role &&
		strncmp(c->helper, n->helper, sizeof(c->helper)) == 0;
}

/* Dumps: start-up and -R populate silently; an overrun/poll resync sends
 * what changed. */
static void on_ct_dump(struct ctd *d, const struct ct *ct)
{
	struct sync *s = d->sync;
	struct cache_obj *o;
	bool send;

	if (s == NULL)
		return;
	if (d->conf->disable_internal_cache) {
		if (s->bulk_direct)
			sync_send_direct(s, WT_CT_NEW, ct);
		return;
	}
	send = s->resync_active[0] && !commit_ct_known(s, ct);
	o = cache_find(s->int_ct, ct);
	if (send && o != NULL && ct_unchanged(o, ct)) {
		send = false;
		o = cache_merge(s->int_ct, o, ct);
	} else if (o != NULL && o->state != OBJ_DEAD) {
		o = cache_merge(s->int_ct, o, ct);
	} else {
		o = fresh_at(s, s->int_ct, o, ct);
	}
	if (o != NULL)
		seen(s, o, send);
}

static void on_exp_dump(struct ctd *d, const struct exp *e)
{
	struct sync *s = d->sync;
	struct cache_obj *o;

	if (s == NULL || d->conf->disable_internal_cache ||
	    !exp_wanted(s, e, NL_ORIGIN_OTHER))
		return;
	o = int_update(s, s->int_exp, e);
	if (o != NULL)
		seen(s, o, s->resync_active[1] && !commit_exp_known(s, e));
}

static int clear_seen(struct cache_obj *o, void *arg)
{
	(void)arg;
	o->flags &= ~COBJ_F_SEEN;
	return 0;
}

struct purge_arg { struct sync *s; struct cache *c; };

static int purge_unseen(struct cache_obj *o, void *arg)
{
	struct purge_arg *pa = arg;

	if (!(o->flags & COBJ_F_SEEN))
		destroy_obj(pa->s, pa->c, o, true);
	return 0;
}

static void on_resync_begin(struct ctd *d, bool exp)
{
	struct sync *s = d->sync;

	if (s == NULL || d->conf->disable_internal_cache)
		return;
	s->resync_active[exp] = true;
	cache_iterate(exp ? s->int_exp : s->int_ct, clear_seen, NULL);
}

static void on_resync_done(struct ctd *d, bool exp)
{
	struct sync *s = d->sync;
	struct purge_arg pa;

	if (s == NULL || !s->resync_active[exp])
		return;
	s->resync_active[exp] = false;
	pa.s = s;
	pa.c = exp ? s->int_exp : s->int_ct;
	cache_iterate(pa.c, purge_unseen, &pa);
}

static const struct nl_sink sink = {
	.ct_event = on_ct_event,
	.exp_event = on_exp_event,
	.ct_dump = on_ct_dump,
	.exp_dump = on_exp_dump,
	.resync_begin = on_resync_begin,
	.resync_done = on_resync_done,
};

const struct nl_sink *sync_nl_sink(void)
{
	return &sink;
}
