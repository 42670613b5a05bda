/*
 * The sync engine core: start-up, kernel events into the internal cache,
 * received messages into the external cache (or the kernel), and the
 * transmit path shared by the three modes (queue drain once per loop turn).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "channel.h"
#include "conf.h"
#include "ctd.h"
#include "kernel.h"
#include "log.h"
#include "nl.h"
#include "objconv.h"
#include "sync_priv.h"

#define SYNC_DRAIN_BUDGET 1024     /* objects per loop turn, keeps the loop serving */
#define SYNC_MSG_MAX      4096

static int chan_send(void *arg, const void *msg, size_t len)
{
	struct ctd *d = arg;

	return d->chans ? chanset_send(d->chans, msg, len) : -1;
}

static void chan_flush(void *arg)
{
	struct ctd *d = arg;

	if (d->chans)
		chanset_flush(d->chans);
}

uint32_t sync_next_seq(struct sync *s)
{
	if (!s->seq_set) {
		/* 1.4.x starts at the Unix time; peers don't care, keep it. */
		s->seq = (uint32_t)time(NULL);
		s->seq_set = true;
	}
	return s->seq++;
}

struct cache *sync_int_cache(struct sync *s, const struct cache_obj *o)
{
	return o->kind == OBJ_CT ? s->int_ct : s->int_exp;
}

static struct queue *queue_of(struct sync *s, uint8_t qid)
{
	switch (qid) {
	case QID_TX:    return &s->txq;
	case QID_TXCTL: return &s->txctl;
	case QID_RS:    return &s->rsq;
	}
	return NULL;
}

/* An object left its last queue: a dead one can go now. */
void sync_obj_unqueued(struct sync *s, struct cache_obj *o)
{
	struct cache *c = sync_int_cache(s, o);

	if (o->state != OBJ_DEAD)
		return;
	if (o->flags & COBJ_F_HASHED)
		cache_del(c, o);
	else
		cache_obj_release(c, o);
}

static void obj_dequeue(struct sync *s, struct cache_obj *o)
{
	struct queue *q = queue_of(s, o->qn.qid);

	if (q != NULL)
		queue_unlink(q, &o->qn);
}

void sync_enqueue_obj(struct sync *s, struct cache_obj *o)
{
	if (o->qn.qid == QID_TX)
		return;             /* coalesced: leaves once, with its latest state */
	obj_dequeue(s, o);
	o->qn.qkind = QN_OBJ;
	queue_append(&s->txq, &o->qn);
}

int sync_enqueue_ctl(struct sync *s, uint8_t flags, uint32_t from, uint32_t to)
{
	struct qctl *c = qctl_new(&s->ctl_nodes, flags, from, to);

	if (c == NULL) {
		s->txctl.nospace++;
		return -1;
	}
	queue_append(&s->txctl, &c->qn);
	return 0;
}

static int bulk_one(struct cache_obj *o, void *arg)
{
	sync_enqueue_obj(arg, o);
	return 0;
}

void sync_bulk(struct sync *s)
{
	struct ctd *d = s->d;

	if (d->conf->disable_internal_cache) {
		/* No cache: re-send the kernel table, every entry as NEW. */
		s->bulk_direct = true;
		nl_dump_ct(d);
		s->bulk_direct = false;
		return;
	}
	log_notice("sending bulk update");
	cache_iterate(s->int_ct, bulk_one, s);
	cache_iterate(s->int_exp, bulk_one, s);
}

/* ---- transmit ---- */

static int tx_msg(struct sync *s, const uint8_t *msg, int len)
{
	if (len <= 0)
		return -1;
	s->tx_dirty = true;
	return s->tx.send(s->tx.arg, msg, (size_t)len);
}

static uint8_t obj_type(const struct cache_obj *o)
{
	uint8_t base = o->kind == OBJ_CT ? WT_CT_NEW : WT_EXP_NEW;

	switch (o->state) {
	case OBJ_NEW:   return base;
	case OBJ_ALIVE: return base + 1;
	default:        return base + 2;
	}
}

static int build_obj(struct sync *s, uint8_t *buf, size_t cap, uint8_t type,
		     uint8_t flags, uint32_t seq, const void *obj)
{
	if (type <= WT_CT_DEL)
		return wire_put_ct(buf, cap, type, flags, seq, obj, &s->txo);
	return wire_put_exp(buf, cap, type, flags, seq, obj, &s->txo);
}

static uint8_t tx_flags(struct sync *s)
{
	return s->mode == SYNC_MODE_FTFW ? ftfw_tx_flags(s) : 0;
}

static void send_ctl(struct sync *s, struct qctl *c)
{
	uint8_t buf[WIRE_CTL_LEN];
	uint32_t seq = sync_next_seq(s);
	int len;

	c->flags |= tx_flags(s);
	len = wire_put_ctl(buf, sizeof(buf), c->flags, seq, c->from, c->to);
	tx_msg(s, buf, len);
	if (s->mode == SYNC_MODE_FTFW)
		ftfw_ctl_sent(s, c, seq);
	else
		qctl_free(&s->ctl_nodes, c);
}

static void send_obj(struct sync *s, struct cache_obj *o)
{
	uint64_t xbuf[CACHE_CT_XBUF / 8 + 1];
	uint8_t buf[SYNC_MSG_MAX];
	struct ct tmp;
	uint32_t seq = sync_next_seq(s);
	int len;

	len = build_obj(s, buf, sizeof(buf), obj_type(o), tx_flags(s), seq,
			o->kind == OBJ_CT ? (const void *)cache_ct_view(o, &tmp, xbuf)
					  : (const void *)(o + 1));
	if (len < 0) {
		/* Never retransmittable: give the number back, no gap for the peer. */
		s->seq--;
		log_warn("sync: cannot encode a %s message, not sent",
			 o->kind == OBJ_CT ? "conntrack" : "expectation");
		o->qn.qid = QID_NONE;
		sync_obj_unqueued(s, o);
		return;
	}
	tx_msg(s, buf, len);
	if (s->mode == SYNC_MODE_FTFW) {
		ftfw_obj_sent(s, o, seq);
	} else {
		o->qn.qid = QID_NONE;
		sync_obj_unqueued(s, o);
	}
}

/* More objects wait: come back soon. NOTRACK has no loss recovery, so a
 * bulk is paced (one budget per 2 ms, ~500k messages/s) to give the
 * receiver a chance; FT-FW recovers losses and runs at full speed. */
static void kick(struct sync *s)
{
	if (s->d->loop && !ev_timer_pending(&s->kick_timer))
		ev_timer_add(s->d->loop, &s->kick_timer,
			     s->mode == SYNC_MODE_NOTRACK ? 2 : 0);
}

void sync_drain(struct sync *s)
{
	uint32_t budget = s->drain_budget;
	bool sent = false;
	struct qnode *n;

	while ((n = queue_head(&s->txctl)) != NULL) {
		queue_unlink(&s->txctl, n);
		send_ctl(s, qn_ctl(n));
		sent = true;
	}
	while ((n = queue_head(&s->txq)) != NULL && budget > 0) {
		if (s->mode == SYNC_MODE_FTFW && !ftfw_can_send_obj(s))
			break;      /* flow control: wait for ACKs, lose nothing */
		queue_unlink(&s->txq, n);
		send_obj(s, qn_obj(n));
		sent = true;
		budget--;
	}
	if (budget == 0 && !queue_empty(&s->txq))
		kick(s);
	if (s->tx_dirty) {
		/* includes messages built straight from events (bypass) */
		s->tx.flush(s->tx.arg);
		s->tx_dirty = false;
		sent = true;
	}
	if (sent && s->d->loop && s->mode != SYNC_MODE_ALARM)
		ev_timer_add(s->d->loop, &s->alive_timer, 1000);
	if (s->inject_dirty && s->inject_kb) {
		kbatch_flush(s->inject_kb);
		s->inject_dirty = false;
	}
}

static void before_sleep(void *arg)
{
	struct ctd *d = arg;

	if (d->sync)
		sync_drain(d->sync);
}

static void kick_cb(struct ev_timer *t, void *arg)
{
	(void)t; (void)arg;         /* the wake-up alone makes the loop drain */
}

static void alive_cb(struct ev_timer *t, void *arg)
{
	struct sync *s = arg;

	if (s->mode == SYNC_MODE_FTFW)
		ftfw_alive(s);
	else
		notrack_alive(s);
	ev_timer_add(s->d->loop, t, 1000);
}

static void alarm_cb(struct ev_timer *t, void *arg)
{
	struct sync *s = arg;

	alarm_tick(s, cache_now());
	ev_timer_add(s->d->loop, t, 200);
}

/* Messages built straight from events (NOTRACK + DisableInternalCache). */
static void send_direct(struct sync *s, uint8_t type, const void *obj)
{
	uint8_t buf[SYNC_MSG_MAX];
	int len = build_obj(s, buf, sizeof(buf), type, 0, sync_next_seq(s), obj);

	if (len < 0) {
		s->seq--;
		log_warn("sync: cannot encode a message, not sent");
	} else {
		tx_msg(s, buf, len);
	}
}

/* ---- kernel events (internal cache) ---- */

static void after_change(struct sync *s, struct cache_obj *o, enum nl_origin org)
{
	/* Reported by the kernel: not "vanished" for a resync running now. */
	o->flags |= COBJ_F_SEEN;
	if (s->mode == SYNC_MODE_ALARM)
		alarm_arm(s, o);
	if (org == NL_ORIGIN_OTHER)
		sync_enqueue_obj(s, o);
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
	obj_dequeue(s, o);
	cache_del(c, o);
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
	if (o != NULL && o->state != OBJ_DEAD)
		return cache_replace(c, o, obj);
	if (o != NULL) {
		obj_dequeue(s, o);
		cache_del(c, o);
	}
	return cache_insert(c, obj);
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
		send_direct(s, WT_CT_NEW + (uint8_t)ev, ct);
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
		o = cache_find(s->int_ct, ct);
		if (o == NULL || o->state == OBJ_DEAD) {
			struct cache_stats *st = cache_stats_mut(s->int_ct);

			st->del_fail++;
			st->del_enoent++;
			break;
		}
		destroy_obj(s, s->int_ct, o, org == NL_ORIGIN_OTHER);
		break;
	}
}

/* §11: helper list, and the master must be known here first. */
static bool exp_wanted(struct sync *s, const struct exp *e)
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
	return m != NULL && m->state != OBJ_DEAD;
}

static void on_exp_event(struct ctd *d, enum nl_event ev, enum nl_origin org,
			 const struct exp *e)
{
	struct sync *s = d->sync;
	struct cache_obj *o;

	if (s == NULL || org == NL_ORIGIN_INJECT)
		return;
	if (ev != NL_DESTROY && !exp_wanted(s, e))
		return;
	if (d->conf->disable_internal_cache) {
		if (org == NL_ORIGIN_OTHER) {
			send_direct(s, WT_EXP_NEW + (uint8_t)ev, e);
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
		o = cache_find(s->int_exp, e);
		if (o == NULL || o->state == OBJ_DEAD) {
			struct cache_stats *st = cache_stats_mut(s->int_exp);

			st->del_fail++;
			st->del_enoent++;
			break;
		}
		destroy_obj(s, s->int_exp, o, org == NL_ORIGIN_OTHER);
		break;
	}
}

/* Dumps: start-up and -R populate silently; an overrun/poll resync sends. */
static void on_ct_dump(struct ctd *d, const struct ct *ct)
{
	struct sync *s = d->sync;
	struct cache_obj *o;

	if (s == NULL)
		return;
	if (d->conf->disable_internal_cache) {
		if (s->bulk_direct)
			send_direct(s, WT_CT_NEW, ct);
		return;
	}
	o = int_update(s, s->int_ct, ct);
	if (o == NULL)
		return;
	o->flags |= COBJ_F_SEEN;
	if (s->mode == SYNC_MODE_ALARM)
		alarm_arm(s, o);
	if (s->resync_active[0])
		sync_enqueue_obj(s, o);
}

static void on_exp_dump(struct ctd *d, const struct exp *e)
{
	struct sync *s = d->sync;
	struct cache_obj *o;

	if (s == NULL || d->conf->disable_internal_cache || !exp_wanted(s, e))
		return;
	o = int_update(s, s->int_exp, e);
	if (o == NULL)
		return;
	o->flags |= COBJ_F_SEEN;
	if (s->mode == SYNC_MODE_ALARM)
		alarm_arm(s, o);
	if (s->resync_active[1])
		sync_enqueue_obj(s, o);
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

/* ---- received messages (external cache or kernel) ---- */

/* -s "external inject" reads these counters of the (empty) external cache:
 * ok is counted when queued and taken back when the kernel refuses. */
static void inject_err(void *arg, enum kop op, const void *obj, int err)
{
	struct sync *s = arg;
	struct cache_stats *st = cache_stats_mut(op <= KOP_CT_DELETE ? s->ext_ct : s->ext_exp);
	char text[1024];

	switch (op) {
	case KOP_CT_CREATE:
	case KOP_EXP_CREATE:
		st->add_ok -= st->add_ok > 0;
		st->add_fail++;
		log_warn("could not add new %s entry, even when deleting it first: %s",
			 op == KOP_CT_CREATE ? "ct" : "exp", strerror(err));
		break;
	case KOP_CT_UPDATE:
		st->upd_ok -= st->upd_ok > 0;
		st->upd_fail++;
		log_warn("could not update ct entry, even if creating it instead: %s",
			 strerror(err));
		break;
	case KOP_CT_DELETE:
	case KOP_EXP_DELETE:
		st->del_ok -= st->del_ok > 0;
		st->del_fail++;
		if (op == KOP_CT_DELETE)
			log_warn("could not destroy ct entry: %s", strerror(err));
		else
			log_warn("could not delete exp entry: %s", strerror(err));
		break;
	}
	if (op <= KOP_CT_DELETE)
		ct_snprintf_timeout(text, sizeof(text), obj);
	else
		exp_snprintf_timeout(text, sizeof(text), obj);
	log_record(false, text);
}

static void count_inject(struct cache_stats *st, uint8_t type)
{
	switch (type % 3) {
	case 0:  st->add_ok++; break;
	case 1:  st->upd_ok++; break;
	default: st->del_ok++; break;
	}
}

static void inject_ct(struct sync *s, uint8_t type, const struct ct *ct)
{
	static const enum kop ops[] = { KOP_CT_CREATE, KOP_CT_UPDATE, KOP_CT_DELETE };
	uint32_t t = (ct->have & CT_H_TIMEOUT) ? ct->timeout : 0;

	if (kbatch_ct(s->inject_kb, ops[type], ct, t, &s->kopts) < 0) {
		log_warn("could not queue a kernel request: %s", strerror(errno));
		return;
	}
	count_inject(cache_stats_mut(s->ext_ct), type);
	s->inject_dirty = true;
}

void sync_apply_ct(struct sync *s, uint8_t type, const struct ct *ct)
{
	struct cache_obj *o;

	if (s->d->conf->disable_external_cache) {
		if (s->inject_kb)
			inject_ct(s, type, ct);
		return;
	}
	switch (type) {
	case WT_CT_NEW:
		o = cache_add(s->ext_ct, ct);
		break;
	case WT_CT_UPD:
		o = cache_update(s->ext_ct, ct);
		break;
	default:
		o = cache_find(s->ext_ct, ct);
		if (o != NULL) {
			cache_del(s->ext_ct, o);
		} else {
			cache_stats_mut(s->ext_ct)->del_fail++;
			cache_stats_mut(s->ext_ct)->del_enoent++;
		}
		return;
	}
	if (o != NULL && s->mode == SYNC_MODE_ALARM)
		o->expires = cache_now() + s->d->conf->cache_timeout;
}

void sync_apply_exp(struct sync *s, uint8_t type, const struct exp *e)
{
	struct cache_obj *o;

	if (s->d->conf->disable_external_cache) {
		if (s->inject_kb == NULL)
			return;
		if (kbatch_exp(s->inject_kb, type == WT_EXP_DEL ? KOP_EXP_DELETE : KOP_EXP_CREATE,
			       e, (e->have & EXP_H_TIMEOUT) ? e->timeout : 0) < 0) {
			log_warn("could not queue a kernel request: %s", strerror(errno));
			return;
		}
		count_inject(cache_stats_mut(s->ext_exp), type);
		s->inject_dirty = true;
		return;
	}
	if (type == WT_EXP_DEL) {
		o = cache_find(s->ext_exp, e);
		if (o != NULL) {
			cache_del(s->ext_exp, o);
		} else {
			cache_stats_mut(s->ext_exp)->del_fail++;
			cache_stats_mut(s->ext_exp)->del_enoent++;
		}
		return;
	}
	/* NEW and UPDATE both replace the whole expectation (§10.2). */
	o = cache_add(s->ext_exp, e);
	if (o != NULL && s->mode == SYNC_MODE_ALARM)
		o->expires = cache_now() + s->d->conf->cache_timeout;
}

static const char *malformed_cause(const struct wire_rx_stats *a,
				   const struct wire_rx_stats *b)
{
	if (a->wrong_version != b->wrong_version) return "wrong protocol version";
	if (a->bad_header != b->bad_header) return "malformed header";
	if (a->bad_payload != b->bad_payload) return "malformed payload";
	if (a->bad_type != b->bad_type) return "bad message type";
	if (a->truncated != b->truncated) return "truncated message";
	if (a->bad_size != b->bad_size) return "bad message size";
	return "malformed message";
}

static void log_malformed(struct sync *s, struct peer *p, const void *from,
			  size_t fromlen, const struct wire_rx_stats *before)
{
	uint64_t now = ev_now_ms();
	char peer[96];

	if (p != NULL) {
		if (p->last_log_ms != 0 && now - p->last_log_ms < 1000)
			return;
		p->last_log_ms = now;
	}
	chanset_peer_str(from, fromlen, peer, sizeof(peer));
	log_warn("sync: %s from %s, ignored", malformed_cause(before, &s->rx), peer);
}

static enum rx_result mode_recv(struct sync *s, struct peer *p, const struct wire_hdr *h)
{
	switch (s->mode) {
	case SYNC_MODE_ALARM:   return alarm_recv(s, p, h);
	case SYNC_MODE_NOTRACK: return notrack_recv(s, p, h);
	default:                return ftfw_recv(s, p, h);
	}
}

static void apply_msg(struct sync *s, const uint8_t *msg, const struct wire_hdr *h)
{
	if (h->type <= WT_CT_DEL) {
		struct ct ct;

		memset(&ct, 0, sizeof(ct));
		if (wire_get_ct(msg, h->len, &ct) < 0) {
			s->rx.bad_payload++;
			s->rx.malformed++;
		} else {
			sync_apply_ct(s, h->type, &ct);
		}
		ct_release(&ct);
	} else {
		struct exp e;

		memset(&e, 0, sizeof(e));
		if (wire_get_exp(msg, h->len, &e) < 0) {
			s->rx.bad_payload++;
			s->rx.malformed++;
		} else {
			sync_apply_exp(s, h->type, &e);
		}
	}
}

size_t sync_recv(struct ctd *d, unsigned idx, const uint8_t *data, size_t len,
		 const void *from, size_t fromlen)
{
	struct sync *s = d->sync;
	bool stream = idx < d->conf->nchannels && d->conf->channels[idx].kind == CHAN_TCP;
	struct wire_rx_stats before = s->rx;
	struct peer *p;
	size_t off = 0;

	p = seqtrack_peer(&s->peers, from, fromlen,
			  d->conf->ack_window_size ? d->conf->ack_window_size : 300,
			  ev_now_ms());
	while (off < len) {
		struct wire_hdr h;
		int n = wire_next(data + off, len - off, stream, &h, &s->rx);

		if (n == 0)
			break;          /* stream: wait for the rest */
		if (n < 0) {
			off = len;      /* discard the rest of the datagram/stream */
			break;
		}
		if (h.version != WIRE_VERSION) {
			s->rx.wrong_version++;
			s->rx.malformed++;
			off += (size_t)n;
			continue;
		}
		switch (mode_recv(s, p, &h)) {
		case RX_DATA:
			s->last_rx_ms = ev_now_ms();
			if (d->chans)
				chanset_set_current(d->chans, idx);
			if (h.type > WT_EXP_DEL) {
				s->rx.bad_type++;
				s->rx.malformed++;
				break;
			}
			apply_msg(s, data + off, &h);
			break;
		case RX_CTL:
			s->last_rx_ms = ev_now_ms();
			if (d->chans)
				chanset_set_current(d->chans, idx);
			break;
		case RX_BAD:
			s->rx.bad_header++;
			s->rx.malformed++;
			break;
		case RX_DROP:
			break;
		}
		off += (size_t)n;
	}
	if (s->rx.malformed != before.malformed)
		log_malformed(s, p, from, fromlen, &before);
	return off;
}

/* ---- life cycle ---- */

struct sync *sync_new(struct ctd *d)
{
	const struct ctd_conf *cf = d->conf;
	struct sync *s = calloc(1, sizeof(*s));

	if (s == NULL)
		return NULL;
	s->d = d;
	s->mode = cf->mode == SYNC_MODE_NONE ? SYNC_MODE_FTFW : cf->mode;
	s->int_ct = cache_new("internal", OBJ_CT, cf->hashsize, cf->hashlimit);
	s->int_exp = cache_new("internal", OBJ_EXP, cf->hashsize, cf->hashlimit);
	s->ext_ct = cache_new("external", OBJ_CT, cf->hashsize, cf->hashlimit);
	s->ext_exp = cache_new("external", OBJ_EXP, cf->hashsize, cf->hashlimit);
	if (!s->int_ct || !s->int_exp || !s->ext_ct || !s->ext_exp) {
		sync_free(s);
		return NULL;
	}
	queue_init(&s->txq, QID_TX, 2147483647u);
	queue_init(&s->txctl, QID_TXCTL, 2147483647u);
	queue_init(&s->rsq, QID_RS, cf->resend_queue_size ? cf->resend_queue_size : 131072);
	s->txo.omit_timeout = cf->commit_timeout != 0;
	s->txo.tcp_window_tracking = cf->tcp_window_tracking;
	s->kopts.tcp_window_tracking = cf->tcp_window_tracking;
	s->tx.send = chan_send;
	s->tx.flush = chan_flush;
	s->tx.arg = d;
	s->drain_budget = SYNC_DRAIN_BUDGET;
	s->hello = HELLO_INIT;
	s->rs_stall_ms = 5000;
	ev_timer_init(&s->alive_timer, alive_cb, s);
	ev_timer_init(&s->kick_timer, kick_cb, s);
	ev_timer_init(&s->alarm_timer, alarm_cb, s);
	ev_timer_init(&s->purge_timer, NULL, d);
	d->sync = s;
	return s;
}

static void drop_queue(struct sync *s, struct queue *q)
{
	struct qnode *n;

	while ((n = queue_head(q)) != NULL) {
		queue_unlink(q, n);
		if (n->qkind == QN_CTL)
			qctl_free(&s->ctl_nodes, qn_ctl(n));
		else
			sync_obj_unqueued(s, qn_obj(n));
	}
}

void sync_free(struct sync *s)
{
	if (s == NULL)
		return;
	if (s->d->loop) {
		ev_timer_del(s->d->loop, &s->alive_timer);
		ev_timer_del(s->d->loop, &s->kick_timer);
		ev_timer_del(s->d->loop, &s->alarm_timer);
		ev_timer_del(s->d->loop, &s->purge_timer);
	}
	commit_free(s);
	drop_queue(s, &s->txctl);
	drop_queue(s, &s->txq);
	drop_queue(s, &s->rsq);
	cache_free(s->int_ct);
	cache_free(s->int_exp);
	cache_free(s->ext_ct);
	cache_free(s->ext_exp);
	if (s->commit_kb)
		kbatch_free(s->commit_kb);
	if (s->inject_kb)
		kbatch_free(s->inject_kb);
	if (s->d->sync == s)
		s->d->sync = NULL;
	free(s);
}

int sync_init(struct ctd *d)
{
	const struct ctd_conf *cf = d->conf;
	struct sync *s;

	s = sync_new(d);
	if (s == NULL) {
		log_err("can't allocate memory for sync");
		return -1;
	}
	if (cf->disable_internal_cache)
		log_notice("disabling internal cache");
	if (cf->disable_external_cache) {
		log_notice("disabling external cache");
		s->inject_kb = kbatch_new(inject_err, s);
		if (s->inject_kb == NULL) {
			log_err("can't open netlink handler: %s", strerror(errno));
			goto fail;
		}
		d->portid_inject = kbatch_portid(s->inject_kb);
	}
	s->commit_kb = kbatch_new(commit_err_cb, s);
	if (s->commit_kb == NULL) {
		log_err("can't create handler to commit");
		goto fail;
	}
	d->portid_commit = kbatch_portid(s->commit_kb);
	d->chans = chanset_open(d, sync_recv);
	if (d->chans == NULL)
		goto fail;
	if (nl_open(d, sync_nl_sink()) < 0)
		goto fail;
	if (!cf->disable_internal_cache) {
		if (nl_dump_ct(d) < 0) {
			log_err("can't get kernel conntrack table");
			goto fail;
		}
		if (cf->expectation_sync && nl_dump_exp(d) < 0) {
			log_err("can't get kernel expect table");
			goto fail;
		}
	}
	ev_set_before_sleep(d->loop, before_sleep, d);
	if (s->mode == SYNC_MODE_ALARM)
		ev_timer_add(d->loop, &s->alarm_timer, 200);
	else
		ev_timer_add(d->loop, &s->alive_timer, 1000);
	/* StartupResync: main.c requests it once the loop is about to run. */
	return 0;
fail:
	sync_fini(d);
	return -1;
}

void sync_fini(struct ctd *d)
{
	struct sync *s = d->sync;

	if (s == NULL)
		return;
	if (d->loop)
		ev_set_before_sleep(d->loop, NULL, NULL);
	sync_drain(s);
	if (d->chans) {
		chanset_close(d->chans);
		d->chans = NULL;
	}
	nl_close(d);
	sync_free(s);
}

/* ---- client requests ---- */

void sync_request_resync(struct ctd *d)
{
	struct sync *s = d->sync;

	if (s == NULL || s->mode == SYNC_MODE_ALARM)
		return;
	log_notice("resync requested");
	sync_enqueue_ctl(s, WF_RESYNC, 0, 0);
}

void sync_send_bulk(struct ctd *d)
{
	struct sync *s = d->sync;

	if (s == NULL || s->mode == SYNC_MODE_ALARM)
		return;
	sync_bulk(s);
}

static int dequeue_one(struct cache_obj *o, void *arg)
{
	struct sync *s = arg;

	if (o->qn.qid != QID_NONE) {
		obj_dequeue(s, o);
		o->qn.qid = QID_NONE;
	}
	return 0;
}

void sync_flush_internal(struct sync *s, struct cache *c)
{
	/* Nothing flushed may leave later as a DESTROY. */
	cache_iterate_all(c, dequeue_one, s);
	cache_flush(c);
}

void sync_flush_caches(struct ctd *d, bool internal, bool external, bool exp)
{
	struct sync *s = d->sync;

	if (s == NULL)
		return;
	if (external && sync_commit_running(d)) {
		log_err("ignoring flush command, commit still in progress");
		return;
	}
	if (internal && external)
		log_notice("flushing caches");
	else if (internal)
		log_notice("flushing internal cache");
	else if (external)
		log_notice("flushing external cache");
	if (internal) {
		if (ev_timer_pending(&s->purge_timer))
			ev_timer_del(d->loop, &s->purge_timer);
		sync_flush_internal(s, s->int_ct);
		if (exp)
			sync_flush_internal(s, s->int_exp);
	}
	if (external) {
		cache_flush(s->ext_ct);
		if (exp)
			cache_flush(s->ext_exp);
	}
}

void sync_resync_kernel(struct ctd *d, bool ct, bool exp)
{
	struct sync *s = d->sync;

	if (s == NULL)
		return;
	if (d->conf->disable_internal_cache) {
		log_notice("resync is unsupported in this mode");
		return;
	}
	if (ct) {
		log_notice("resync with master conntrack table");
		if (nl_dump_ct(d) < 0)
			log_err("can't get kernel conntrack table");
	}
	if (exp && d->conf->expectation_sync) {
		log_notice("resync with master expect table");
		if (nl_dump_exp(d) < 0)
			log_err("can't get kernel expect table");
	}
}

/* ---- statistics ---- */

const struct wire_rx_stats *sync_rx_stats(const struct ctd *d)
{
	static const struct wire_rx_stats zero;

	return d->sync ? &d->sync->rx : &zero;
}

const struct seq_stats *sync_seq_stats(const struct ctd *d)
{
	static const struct seq_stats zero;

	return d->sync ? &d->sync->seqst : &zero;
}

struct cache *sync_cache(const struct ctd *d, bool external, bool exp)
{
	const struct sync *s = d->sync;

	if (s == NULL)
		return NULL;
	if (external)
		return exp ? s->ext_exp : s->ext_ct;
	return exp ? s->int_exp : s->int_ct;
}

uint64_t sync_traffic_bytes(const struct ctd *d)
{
	return d->sync ? d->sync->traffic_bytes : 0;
}

uint64_t sync_traffic_packets(const struct ctd *d)
{
	return d->sync ? d->sync->traffic_pkts : 0;
}
