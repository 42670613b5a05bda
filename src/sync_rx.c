/*
 * The receive path (the channels' chan_recv_cb): framing, version and
 * sequence checks through the mode, then the message applied to the
 * external cache or, with DisableExternalCache, injected into the kernel.
 */
#include <errno.h>
#include <string.h>

#include "channel.h"
#include "conf.h"
#include "ctd.h"
#include "kernel.h"
#include "log.h"
#include "objconv.h"
#include "sync_priv.h"

/* -s "external inject" reads these counters of the (empty) external cache:
 * ok is counted when queued and taken back when the kernel refuses. */
void sync_inject_err(void *arg, enum kop op, const void *obj, int err)
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

static void inject_exp(struct sync *s, uint8_t type, const struct exp *e)
{
	if (kbatch_exp(s->inject_kb, type == WT_EXP_DEL ? KOP_EXP_DELETE : KOP_EXP_CREATE,
		       e, (e->have & EXP_H_TIMEOUT) ? e->timeout : 0) < 0) {
		log_warn("could not queue a kernel request: %s", strerror(errno));
		return;
	}
	count_inject(cache_stats_mut(s->ext_exp), type);
	s->inject_dirty = true;
}

/* ALARM: a received entry lives CacheTimeout seconds from its last message. */
static void ext_refreshed(struct sync *s, struct cache_obj *o)
{
	if (o != NULL && s->mode == SYNC_MODE_ALARM)
		o->expires = cache_now() + s->d->conf->cache_timeout;
}

static void ext_del(struct cache *c, const void *obj)
{
	struct cache_obj *o = cache_find(c, obj);

	if (o != NULL) {
		cache_del(c, o);
	} else {
		cache_stats_mut(c)->del_fail++;
		cache_stats_mut(c)->del_enoent++;
	}
}

/*
 * A full external cache refuses every new entry the peer sends: say so at
 * the first refusal, then at most once a minute with the count, so a burst
 * cannot flood the log (-s cache keeps the exact figure).
 */
#define FULL_LOG_PERIOD_MS 60000

void sync_note_full(struct sync *s, const struct cache *c, uint64_t before, bool external)
{
	static const char *const what[2] = {
		"local states are neither cached nor synced",
		"entries received from the peer are dropped",
	};
	uint64_t now, n = cache_stats(c)->add_enospc - before;
	int i = external ? 1 : 0;

	if (n == 0)
		return;
	s->full_unlogged[i] += n;
	now = ev_now_ms();
	if (s->full_log_ms[i] != 0 && now - s->full_log_ms[i] < FULL_LOG_PERIOD_MS)
		return;
	if (s->full_log_ms[i] == 0)
		log_warn("%s cache full (HashLimit %u): %s (counted in -s cache)",
			 external ? "external" : "internal", s->d->conf->hashlimit,
			 what[i]);
	else
		log_warn("%s cache full (HashLimit %u): %llu entries refused "
			 "in the last %u s", external ? "external" : "internal",
			 s->d->conf->hashlimit, (unsigned long long)s->full_unlogged[i],
			 (unsigned)((now - s->full_log_ms[i]) / 1000));
	s->full_log_ms[i] = now ? now : 1;
	s->full_unlogged[i] = 0;
}

void sync_apply_ct(struct sync *s, uint8_t type, const struct ct *ct)
{
	struct cache_obj *o;
	uint64_t full = cache_stats(s->ext_ct)->add_enospc;

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
		ext_del(s->ext_ct, ct);
		return;
	}
	if (o == NULL)
		sync_note_full(s, s->ext_ct, full, true);
	ext_refreshed(s, o);
}

void sync_apply_exp(struct sync *s, uint8_t type, const struct exp *e)
{
	struct cache_obj *o;
	uint64_t full;

	if (s->d->conf->disable_external_cache) {
		if (s->inject_kb)
			inject_exp(s, type, e);
		return;
	}
	if (type == WT_EXP_DEL) {
		ext_del(s->ext_exp, e);
		return;
	}
	/* NEW and UPDATE both replace the whole expectation (§10.2). */
	full = cache_stats(s->ext_exp)->add_enospc;
	o = cache_add(s->ext_exp, e);
	if (o == NULL)
		sync_note_full(s, s->ext_exp, full, true);
	ext_refreshed(s, o);
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

static void bad_payload(struct sync *s)
{
	s->rx.bad_payload++;
	s->rx.malformed++;
}

/*
 * A conntrack message decoded one message ahead, so that its bucket is
 * loaded (cache_prefetch) while the current message is applied: the bucket
 * load of a new key was most of the receiver's lookup cost (a cache miss
 * per entry on a table of 1 MB and more). Decoding is pure; the mode
 * still judges each message in order, and a message it drops is only
 * released.
 */
struct ahead {
	size_t     off;                 /* offset of the decoded message, or SIZE_MAX */
	int        rc;                  /* wire_get_ct() result */
	uint32_t   hash;                /* prefetched bucket's key hash (rc == 0) */
	struct ct  ct;
};

static void ahead_drop(struct ahead *a)
{
	if (a->off != SIZE_MAX)
		ct_release(&a->ct);
	a->off = SIZE_MAX;
}

static void ahead_load(struct sync *s, struct ahead *a, const uint8_t *data,
		       size_t len, size_t off, bool stream)
{
	struct wire_rx_stats scratch;   /* counted when the message's turn comes */
	struct wire_hdr h;

	if (off >= len || s->d->conf->disable_external_cache)
		return;
	if (wire_next(data + off, len - off, stream, &h, &scratch) <= 0 ||
	    h.version != WIRE_VERSION || h.type > WT_CT_DEL)
		return;
	memset(&a->ct, 0, sizeof(a->ct));
	a->off = off;
	a->rc = wire_get_ct(data + off, h.len, &a->ct);
	if (a->rc == 0)
		a->hash = cache_prefetch(s->ext_ct, &a->ct);
}

static void apply_msg(struct sync *s, const uint8_t *msg, const struct wire_hdr *h,
		      struct ahead *a, size_t off)
{
	if (h->type <= WT_CT_DEL) {
		struct ct ct;
		struct ct *p = &ct;
		int rc;

		if (a->off == off) {
			p = &a->ct;
			rc = a->rc;
		} else {
			memset(&ct, 0, sizeof(ct));
			rc = wire_get_ct(msg, h->len, &ct);
		}
		if (rc < 0)
			bad_payload(s);
		else
			sync_apply_ct(s, h->type, p);
		if (p == &a->ct)
			ahead_drop(a);
		else
			ct_release(&ct);
	} else {
		struct exp e;

		memset(&e, 0, sizeof(e));
		if (wire_get_exp(msg, h->len, &e) < 0)
			bad_payload(s);
		else
			sync_apply_exp(s, h->type, &e);
	}
}

size_t sync_recv(struct ctd *d, unsigned idx, const uint8_t *data, size_t len,
		 const void *from, size_t fromlen)
{
	struct sync *s = d->sync;
	bool stream = idx < d->conf->nchannels && d->conf->channels[idx].kind == CHAN_TCP;
	struct wire_rx_stats before = s->rx;
	uint64_t now = ev_now_ms();     /* once per datagram, not per message */
	struct peer *p;
	struct ahead ahead[2] = { { .off = SIZE_MAX }, { .off = SIZE_MAX } };
	unsigned ai = 0;                /* ahead[ai]: the current message's slot */
	size_t off = 0;

	p = seqtrack_peer(&s->peers, from, fromlen,
			  d->conf->ack_window_size ? d->conf->ack_window_size : 300, now);
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
			s->last_rx_ms = now;
			if (d->chans)
				chanset_follow_peer(d->chans, idx);
			if (h.type > WT_EXP_DEL) {
				s->rx.bad_type++;
				s->rx.malformed++;
				break;
			}
			if (ahead[ai].off != off)
				ahead_drop(&ahead[ai]);
			else if (ahead[ai].rc == 0)
				/* its bucket had the last message's time to
				 * arrive; the next decode hides this load */
				cache_prefetch_chain(s->ext_ct, ahead[ai].hash);
			ahead_drop(&ahead[ai ^ 1]);
			ahead_load(s, &ahead[ai ^ 1], data, len, off + (size_t)n, stream);
			apply_msg(s, data + off, &h, &ahead[ai], off);
			ai ^= 1;
			break;
		case RX_CTL:
			s->last_rx_ms = now;
			if (d->chans)
				chanset_follow_peer(d->chans, idx);
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
	ahead_drop(&ahead[0]);
	ahead_drop(&ahead[1]);
	if (s->rx.malformed != before.malformed)
		log_malformed(s, p, from, fromlen, &before);
	return off;
}
