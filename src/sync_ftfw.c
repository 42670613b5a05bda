/*
 * FT-FW (sync-protocol.md §6): sequence tracking, ACK windows, NACK
 * retransmission, HELLO handshake. Wire-compatible with 1.4.7, with two
 * fixes that change no byte on the wire:
 *  - a HELLO from a restarted peer re-sends what it never acknowledged
 *    instead of forgetting it (cold start loses nothing);
 *  - while a peer is talking, the resend queue is never evicted: when it
 *    is full the tx queue stops draining until ACKs free space (flow
 *    control), and a long stall (lost ACKs) retransmits it with backoff.
 *    With nobody talking to us (peer down, or no peer yet) 1.4.7's
 *    eviction of the oldest entries is kept, so memory stays bounded;
 *    the peer's HELLO then gets back what is left, StartupResync the rest.
 */
#include <string.h>

#include "conf.h"
#include "ctd.h"
#include "log.h"
#include "sync_priv.h"

#define RS_STALL_MIN_MS 5000
#define RS_STALL_MAX_MS 60000
#define PEER_SILENT_MS  5000    /* a live peer sends at least one message a second */
/* A larger jump between two HELLO messages is a restarted peer (its first
 * seq is the clock), not loss: no burst keeps a million messages in flight. */
#define HELLO_GAP_MAX   (1u << 20)

static uint32_t ack_window(const struct sync *s)
{
	uint32_t w = s->d->conf->ack_window_size;

	return w ? w : 300;
}

uint8_t ftfw_tx_flags(struct sync *s)
{
	uint8_t f = 0;

	if (s->hello != HELLO_DONE) {
		f |= WF_HELLO;
		s->hello = HELLO_SAY;
	}
	if (s->say_hello_back) {
		f |= WF_HELLO_BACK;
		s->say_hello_back = false;
	}
	return f;
}

void ftfw_obj_sent(struct sync *s, struct cache_obj *o, uint32_t seq)
{
	o->qn.seq = seq;
	queue_append(&s->rsq, &o->qn);
}

void ftfw_ctl_sent(struct sync *s, struct qctl *c, uint32_t seq)
{
	if (c->flags & WF_ALIVE) {      /* ALIVEs are never retransmitted */
		qctl_free(&s->ctl_nodes, c);
		return;
	}
	c->qn.seq = seq;
	queue_append(&s->rsq, &c->qn);
}

/* Move every resend-queue entry back to transmission (objects) or drop it
 * (control messages: a stale ACK/NACK helps nobody). */
static void rs_requeue_all(struct sync *s)
{
	struct qnode *n;

	while ((n = queue_head(&s->rsq)) != NULL) {
		if (n->qkind == QN_CTL) {
			queue_unlink(&s->rsq, n);
			qctl_free(&s->ctl_nodes, qn_ctl(n));
		} else {
			sync_enqueue_obj(s, qn_obj(n));
		}
	}
}

void ftfw_rs_flush(struct sync *s)
{
	rs_requeue_all(s);
}

/* Nobody listens: make room for one entry like 1.4.7 does. */
static void rs_evict_oldest(struct sync *s)
{
	struct qnode *n;

	while (s->rsq.len >= s->rsq.max && (n = queue_head(&s->rsq)) != NULL) {
		queue_unlink(&s->rsq, n);
		s->rsq.nospace++;
		if (n->qkind == QN_CTL)
			qctl_free(&s->ctl_nodes, qn_ctl(n));
		else
			sync_obj_unqueued(s, qn_obj(n));
	}
}

bool ftfw_can_send_obj(struct sync *s)
{
	uint64_t now;

	if (s->rsq.len < s->rsq.max) {
		s->rs_blocked = false;
		return true;
	}
	now = ev_now_ms();
	if (s->last_rx_ms == 0 || now - s->last_rx_ms > PEER_SILENT_MS) {
		rs_evict_oldest(s);
		s->rs_blocked = false;
		return true;
	}
	if (!s->rs_blocked) {
		s->rs_blocked = true;
		s->rs_progress_ms = now;
		s->rsq.nospace++;
		return false;
	}
	if (now - s->rs_progress_ms < s->rs_stall_ms)
		return false;
	/* No ACK for too long: retransmit everything unacknowledged. */
	log_warn("resend queue full and unacknowledged for %u ms, retransmitting %u entries",
		 s->rs_stall_ms, s->rsq.len);
	s->rs_stall_ms = s->rs_stall_ms * 2 > RS_STALL_MAX_MS ? RS_STALL_MAX_MS
							       : s->rs_stall_ms * 2;
	s->rs_progress_ms = now;
	s->rs_blocked = false;
	rs_requeue_all(s);
	return true;
}

static void rs_hole(struct sync *s, struct qnode *n)
{
	if (n->qkind == QN_CTL) {
		queue_unlink(&s->rsq, n);
		qctl_free(&s->ctl_nodes, qn_ctl(n));
	} else {
		sync_enqueue_obj(s, qn_obj(n));
	}
}

/* Entries of the resend queue with seq in [from, to], in order. */
static void rs_range(struct sync *s, uint32_t from, uint32_t to, bool resend)
{
	struct qnode *n, *next;
	bool freed = false;

	for (n = queue_head(&s->rsq); n != NULL; n = next) {
		next = queue_next(&s->rsq, n);
		if (seq_before(n->seq, from)) {
			/* The peer acknowledges in order: what it skipped it
			 * never got and will never ACK or NACK (e.g. lost
			 * while it took our messages as HELLO). 1.4.7 leaves
			 * it here forever; send objects again, drop stale
			 * control messages. */
			if (!resend)
				rs_hole(s, n);
			continue;
		}
		if (seq_after(n->seq, to))
			break;
		if (resend) {
			if (n->qkind == QN_CTL) {
				queue_unlink(&s->rsq, n);
				queue_append(&s->txctl, n);
			} else {
				sync_enqueue_obj(s, qn_obj(n));
			}
		} else {
			queue_unlink(&s->rsq, n);
			if (n->qkind == QN_CTL)
				qctl_free(&s->ctl_nodes, qn_ctl(n));
			else
				sync_obj_unqueued(s, qn_obj(n));
		}
		freed = true;
	}
	if (freed) {
		s->rs_progress_ms = ev_now_ms();
		s->rs_stall_ms = RS_STALL_MIN_MS;
	}
}

static enum rx_result digest(struct sync *s, const struct wire_hdr *h)
{
	if (h->type <= WT_EXP_DEL && (h->flags & ~(WF_HELLO | WF_HELLO_BACK)) == 0)
		return RX_DATA;
	if (h->type != WT_CTL)
		return RX_BAD;
	if (h->flags & (WF_ACK | WF_NACK)) {
		if (seq_before(h->to, h->from))
			return RX_BAD;
		rs_range(s, h->from, h->to, !(h->flags & WF_ACK));
		return RX_CTL;
	}
	if (h->flags & WF_RESYNC) {
		log_notice("resync requested by other node");
		sync_bulk(s);
		return RX_CTL;
	}
	if (h->flags & WF_ALIVE)
		return RX_CTL;
	return RX_BAD;
}

/* Until the peer's HELLO_BACK reaches us, each message we send carries
 * HELLO, and a 1.4.7 receiver skips gap detection for those: its ACKs then
 * cover seqs it never got and we release them. Send the table once more
 * when the handshake completes (once per daemon life; without HELLO now,
 * so the peer NACKs whatever it misses). */
static void hello_done_bulk(struct sync *s)
{
	if ((s->int_ct && cache_stats(s->int_ct)->active) ||
	    (s->int_exp && cache_stats(s->int_exp)->active))
		sync_bulk(s);
}

static void send_ack(struct sync *s, struct peer *p, uint32_t from, uint32_t to)
{
	unsigned n = p->reack_n < PEER_REACK ? p->reack_n : PEER_REACK - 1;

	sync_enqueue_ctl(s, WF_ACK, from, to);
	memmove(p->reack_from + 1, p->reack_from, n * sizeof(*p->reack_from));
	memmove(p->reack_to + 1, p->reack_to, n * sizeof(*p->reack_to));
	p->reack_from[0] = from;
	p->reack_to[0] = to;
	p->reack_n = (uint8_t)(n + 1);
	p->reack_ticks = PEER_REACK_TICKS;
}

/* A message after a gap: applied, then ACK what came before the gap and
 * NACK the gap (§6.4 AFTER). */
static enum rx_result rx_gap(struct sync *s, struct peer *p, const struct wire_hdr *h)
{
	uint32_t expected = p->last + 1;
	enum rx_result r;

	r = digest(s, h);
	if (r == RX_BAD)
		return r;
	if (p->ack_pending)
		send_ack(s, p, p->ack_from, expected - 1);
	sync_enqueue_ctl(s, WF_NACK, expected, h->seq - 1);
	p->window = ack_window(s) - 1;
	p->ack_from = h->seq;
	p->ack_pending = true;
	seqtrack_accept(p, h->seq);
	return r;
}

enum rx_result ftfw_recv(struct sync *s, struct peer *p, const struct wire_hdr *h)
{
	uint32_t w = ack_window(s);
	bool requeue = false;
	enum rx_result r;

	if ((h->flags & WF_HELLO_BACK) && s->hello == HELLO_SAY) {
		s->hello = HELLO_DONE;
		hello_done_bulk(s);
	}
	if (h->flags & WF_HELLO) {
		s->say_hello_back = true;
		if (p->ack_pending && seq_before(h->seq, p->ack_from)) {
			p->window = w - 1;
			p->ack_from = h->seq;
		}
		/* The sender marks every message HELLO until our HELLO_BACK
		 * reaches it, which under loss can be a whole burst. 1.4.7
		 * skips gap detection for all of them, and its next ACK then
		 * covers the lost seqs: the sender releases them, lost for
		 * good. Only the first HELLO of a burst starts a new sequence;
		 * later ones still reveal gaps (a restart's lower base is
		 * BEFORE and taken as in sync). */
		if (p->in_hello && p->tracking && seq_after(h->seq, p->last + 1) &&
		    h->seq - p->last <= HELLO_GAP_MAX) {
			s->seqst.lost += (uint64_t)(h->seq - p->last) + 1;
			return rx_gap(s, p, h);
		}
		/* The peer (re)started: what it never acknowledged is resent
		 * (once per HELLO burst, after this message's own ACK). */
		requeue = !p->in_hello;
		if (requeue)            /* a new sequence: old ranges mean nothing */
			p->reack_n = p->reack_ticks = 0;
		p->in_hello = true;
		goto in_sync;
	}
	p->in_hello = false;
	switch (seqtrack_classify(p, h->seq, &s->seqst)) {
	case SEQ_BEFORE:
		return RX_DROP;
	case SEQ_AFTER:
		return rx_gap(s, p, h);
	default:
		break;
	}
in_sync:
	r = digest(s, h);
	if (r == RX_BAD)
		return r;
	if (requeue)
		rs_requeue_all(s);
	if (!p->ack_pending) {
		p->ack_from = h->seq;
		p->ack_pending = true;
	}
	if (p->window == 0 || --p->window == 0) {
		send_ack(s, p, p->ack_from, h->seq);
		p->window = w;
		p->ack_pending = false;
	}
	seqtrack_accept(p, h->seq);
	return r;
}

void ftfw_alive(struct sync *s)
{
	bool acked = false;

	for (unsigned i = 0; i < s->peers.n; i++) {
		struct peer *p = &s->peers.peers[i];

		if (p->ack_pending && p->tracking) {
			send_ack(s, p, p->ack_from, p->last);
			p->ack_pending = false;
			acked = true;
		} else if (p->reack_ticks && p->tracking) {
			/* ACKing what was ACKed before releases nothing new
			 * on the sender: repeating it is safe (1.4.7 too). */
			p->reack_ticks--;
			for (unsigned j = 0; j < p->reack_n; j++)
				sync_enqueue_ctl(s, WF_ACK, p->reack_from[j],
						 p->reack_to[j]);
			acked = true;
		}
	}
	if (!acked)
		sync_enqueue_ctl(s, WF_ALIVE, 0, 0);
}
