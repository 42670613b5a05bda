/*
 * The sync engine core: start-up and shutdown, queues, the transmit path
 * shared by the three modes (queue drain once per loop turn), timers and
 * client requests. Kernel events are in sync_events.c, received messages
 * in sync_rx.c.
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

void sync_obj_dequeue(struct sync *s, struct cache_obj *o)
{
	struct queue *q = queue_of(s, o->qn.qid);

	if (q != NULL)
		queue_unlink(q, &o->qn);
}

void sync_enqueue_obj(struct sync *s, struct cache_obj *o)
{
	if (o->qn.qid == QID_TX)
		return;             /* coalesced: leaves once, with its latest state */
	sync_obj_dequeue(s, o);
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
void sync_send_direct(struct sync *s, uint8_t type, const void *obj)
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
		s->inject_kb = kbatch_new(sync_inject_err, s);
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
		sync_obj_dequeue(s, o);
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
