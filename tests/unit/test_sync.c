/*
 * The sync engine driven the way the daemon drives it, without sockets:
 * kernel events enter through the nl sink, the tx path is captured
 * message by message, and captured bytes are fed to the peer's receive
 * routine, dropping some on the way. Covers the FT-FW state machine
 * (HELLO, ACK window, NACK recovery, flow control, cold start, BEFORE
 * drops, lost-counter quirk), NOTRACK, ALARM refresh and the -s texts.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <unistd.h>
#include <sys/wait.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <cmocka.h>

#include "cache.h"
#include "conf.h"
#include "ev.h"
#include "kernel.h"
#include "log.h"
#include "ctd.h"
#include "nl.h"
#include "queue.h"
#include "sync.h"
#include "sync_priv.h"
#include "wire.h"

#define MAXMSG 4096

struct msg { uint8_t b[512]; size_t len; };

struct node {
	struct ctd d;
	struct ctd_conf conf;
	struct sockaddr_in addr;
	struct msg *out;
	size_t nout, cap;
};

static int cap_send(void *arg, const void *m, size_t len)
{
	struct node *n = arg;

	assert_true(len <= sizeof(n->out[0].b));
	if (n->nout == n->cap) {
		n->cap = n->cap ? n->cap * 2 : 64;
		n->out = realloc(n->out, n->cap * sizeof(*n->out));
		assert_non_null(n->out);
	}
	memcpy(n->out[n->nout].b, m, len);
	n->out[n->nout++].len = len;
	return 0;
}

static void cap_flush(void *arg) { (void)arg; }

static struct node *node_new(int mode, uint8_t ip_last)
{
	struct node *n = calloc(1, sizeof(*n));

	assert_non_null(n);
	n->conf.mode = mode;
	n->conf.hashsize = 1024;
	n->conf.hashlimit = 300000;
	n->conf.resend_queue_size = 131072;
	n->conf.ack_window_size = 300;
	n->conf.refresh_time = 60;
	n->conf.cache_timeout = 180;
	n->conf.purge_timeout = 60;
	n->conf.error_queue_length = 128;
	n->d.conf = &n->conf;
	n->addr.sin_family = AF_INET;
	n->addr.sin_addr.s_addr = htonl(0x0a000000 | ip_last);
	n->addr.sin_port = htons(3780);
	assert_non_null(sync_new(&n->d));
	n->d.sync->tx.send = cap_send;
	n->d.sync->tx.flush = cap_flush;
	n->d.sync->tx.arg = n;
	return n;
}

static void node_free(struct node *n)
{
	sync_free(n->d.sync);
	free(n->out);
	free(n);
}

static struct ct mkct(uint32_t i)
{
	struct ct ct;

	memset(&ct, 0, sizeof(ct));
	ct.orig.l3 = AF_INET;
	ct.orig.l4 = IPPROTO_UDP;
	ct.orig.src.v4 = htonl(0x0a010000 | i);
	ct.orig.dst.v4 = htonl(0x14020202);
	ct.orig.sport = htons((uint16_t)(1000 + i));
	ct.orig.dport = htons(53);
	ct.have = CT_H_ORIG | CT_H_PORTS | CT_H_STATUS | CT_H_TIMEOUT;
	ct.status = 8;
	ct.timeout = 30;
	return ct;
}

static void event(struct node *n, enum nl_event ev, uint32_t i)
{
	struct ct ct = mkct(i);

	sync_nl_sink()->ct_event(&n->d, ev, NL_ORIGIN_OTHER, &ct);
}

static struct wire_hdr hdr_of(const struct msg *m)
{
	struct wire_hdr h;
	struct wire_rx_stats st;

	memset(&st, 0, sizeof(st));
	assert_int_equal(wire_next(m->b, m->len, false, &h, &st), (int)m->len);
	return h;
}

/* Deliver from's captured output to `to`, skipping messages whose index
 * is set in drop (bit i = message i of this batch). Clears from's outbox. */
static void deliver(struct node *from, struct node *to, uint64_t drop)
{
	size_t n = from->nout;

	from->nout = 0;
	for (size_t i = 0; i < n; i++) {
		if (i < 64 && (drop & (1ull << i)))
			continue;
		assert_int_equal(sync_recv(&to->d, 0, from->out[i].b, from->out[i].len,
					   &from->addr, sizeof(from->addr)),
				 from->out[i].len);
	}
}

static uint32_t rs_objects(struct node *n)
{
	uint32_t k = 0;

	for (struct qnode *q = queue_head(&n->d.sync->rsq); q; q = queue_next(&n->d.sync->rsq, q))
		k += q->qkind == QN_OBJ;
	return k;
}

static uint64_t ext_count(struct node *n)
{
	return cache_stats(n->d.sync->ext_ct)->hashed;
}

/* Run both peers until nothing moves: drain, deliver, idle timers. */
static void converge(struct node *a, struct node *b, int rounds)
{
	for (int r = 0; r < rounds; r++) {
		sync_drain(a->d.sync);
		deliver(a, b, 0);
		sync_drain(b->d.sync);
		deliver(b, a, 0);
		/* each side's 1 s idle timer: ACKs what is pending */
		if (queue_empty(&a->d.sync->txq))
			ftfw_alive(a->d.sync);
		if (queue_empty(&b->d.sync->txq))
			ftfw_alive(b->d.sync);
	}
}

/* Handshake done and nothing in flight: ACKs exchanged, outboxes empty. */
static void settle(struct node *a, struct node *b)
{
	converge(a, b, 3);
	for (int r = 0; r < 2; r++) {
		sync_drain(a->d.sync);
		deliver(a, b, 0);
		sync_drain(b->d.sync);
		deliver(b, a, 0);
	}
	assert_int_equal(a->d.sync->rsq.len + b->d.sync->rsq.len <= 2, 1);
}

static void ftfw_basic_and_hello(void **state)
{
	struct node *a = node_new(SYNC_MODE_FTFW, 1), *b = node_new(SYNC_MODE_FTFW, 2);
	struct wire_hdr h;

	(void)state;
	for (uint32_t i = 0; i < 10; i++)
		event(a, NL_NEW, i);
	sync_drain(a->d.sync);
	assert_int_equal(a->nout, 10);
	h = hdr_of(&a->out[0]);
	assert_int_equal(h.type, WT_CT_NEW);
	assert_int_equal(h.flags, WF_HELLO);           /* INIT -> SAY */
	assert_int_equal(hdr_of(&a->out[1]).seq, h.seq + 1);
	assert_int_equal(a->d.sync->rsq.len, 10);
	deliver(a, b, 0);
	assert_int_equal(ext_count(b), 10);

	/* B answers: its first message says HELLO and HELLO_BACK */
	ftfw_alive(b->d.sync);
	sync_drain(b->d.sync);
	assert_int_equal(b->nout, 1);
	h = hdr_of(&b->out[0]);
	assert_int_equal(h.type, WT_CTL);
	assert_int_equal(h.flags, WF_ACK | WF_HELLO | WF_HELLO_BACK);
	deliver(b, a, 0);
	assert_int_equal(a->d.sync->hello, HELLO_DONE);
	assert_int_equal(a->d.sync->rsq.len, 0);        /* everything acked */

	/* A: HELLO_BACK once, then plain */
	ftfw_alive(a->d.sync);
	sync_drain(a->d.sync);
	assert_int_equal(hdr_of(&a->out[0]).flags & (WF_HELLO | WF_HELLO_BACK), WF_HELLO_BACK);
	deliver(a, b, 0);
	assert_int_equal(b->d.sync->hello, HELLO_DONE);
	event(a, NL_UPDATE, 0);
	sync_drain(a->d.sync);
	h = hdr_of(&a->out[0]);
	assert_int_equal(h.flags, 0);
	assert_int_equal(h.type, WT_CT_UPD);
	deliver(a, b, 0);
	assert_int_equal(sync_seq_stats(&b->d)->lost, 0);
	node_free(a);
	node_free(b);
}

static void ftfw_nack_recovers_loss(void **state)
{
	struct node *a = node_new(SYNC_MODE_FTFW, 1), *b = node_new(SYNC_MODE_FTFW, 2);

	(void)state;
	settle(a, b);
	for (uint32_t i = 0; i < 6; i++)
		event(a, NL_NEW, i);
	sync_drain(a->d.sync);
	assert_int_equal(a->nout, 6);
	deliver(a, b, (1u << 1) | (1u << 2) | (1u << 3));   /* lose 3 in the middle */
	assert_int_equal(ext_count(b), 3);
	/* 1.4.x counts gap + 2: lost 3 -> 5 */
	assert_int_equal(sync_seq_stats(&b->d)->lost, 5);
	/* B asks for them (NACK), A resends with new sequence numbers */
	converge(a, b, 4);
	assert_int_equal(ext_count(b), 6);
	assert_int_equal(rs_objects(a), 0);
	assert_int_equal(sync_rx_stats(&b->d)->malformed, 0);
	node_free(a);
	node_free(b);
}

static void ftfw_before_is_dropped(void **state)
{
	struct node *a = node_new(SYNC_MODE_FTFW, 1), *b = node_new(SYNC_MODE_FTFW, 2);
	struct msg old;

	(void)state;
	settle(a, b);
	event(a, NL_NEW, 7);
	sync_drain(a->d.sync);
	old = a->out[0];
	deliver(a, b, 0);
	event(a, NL_DESTROY, 7);
	sync_drain(a->d.sync);
	assert_int_equal(hdr_of(&a->out[0]).type, WT_CT_DEL);
	deliver(a, b, 0);
	assert_int_equal(ext_count(b), 0);
	/* a delayed duplicate of the NEW must not resurrect the entry */
	sync_recv(&b->d, 0, old.b, old.len, &a->addr, sizeof(a->addr));
	assert_int_equal(ext_count(b), 0);
	assert_int_equal(sync_seq_stats(&b->d)->before, 1);
	/* the dead object goes away once acknowledged */
	converge(a, b, 3);
	assert_int_equal(cache_stats(a->d.sync->int_ct)->objects, 0);
	node_free(a);
	node_free(b);
}

static void ftfw_ack_window(void **state)
{
	struct node *a = node_new(SYNC_MODE_FTFW, 1), *b = node_new(SYNC_MODE_FTFW, 2);
	uint32_t first;
	int acks = 0;

	(void)state;
	b->conf.ack_window_size = 5;
	settle(a, b);
	assert_int_equal(b->d.sync->peers.n, 1);
	b->d.sync->peers.peers[0].window = 5;      /* start a fresh window */
	b->d.sync->peers.peers[0].ack_pending = false;
	for (uint32_t i = 0; i < 12; i++)
		event(a, NL_NEW, i);
	sync_drain(a->d.sync);
	first = hdr_of(&a->out[0]).seq;
	deliver(a, b, 0);
	sync_drain(b->d.sync);
	for (size_t i = 0; i < b->nout; i++) {
		struct wire_hdr h = hdr_of(&b->out[i]);

		if (h.type == WT_CTL && (h.flags & WF_ACK)) {
			assert_int_equal(h.to - h.from, 4);
			assert_int_equal(h.from, first + 5 * (uint32_t)acks);
			acks++;
		}
	}
	assert_int_equal(acks, 2);                 /* 12 messages, window 5 */
	deliver(b, a, 0);
	assert_int_equal(rs_objects(a), 2);
	/* the idle timer acknowledges the rest */
	ftfw_alive(b->d.sync);
	sync_drain(b->d.sync);
	deliver(b, a, 0);
	assert_int_equal(rs_objects(a), 0);
	node_free(a);
	node_free(b);
}

/* Every ACK of a burst is lost: the next ALIVE ticks repeat the ranges,
 * so the sender's resend queue still empties without a stall; after
 * PEER_REACK_TICKS the receiver goes back to plain ALIVEs. */
static void ftfw_lost_acks_are_repeated(void **state)
{
	struct node *a = node_new(SYNC_MODE_FTFW, 1), *b = node_new(SYNC_MODE_FTFW, 2);
	struct wire_hdr h;

	(void)state;
	b->conf.ack_window_size = 5;
	settle(a, b);
	b->d.sync->peers.peers[0].window = 5;
	b->d.sync->peers.peers[0].ack_pending = false;
	for (uint32_t i = 0; i < 12; i++)
		event(a, NL_NEW, i);
	sync_drain(a->d.sync);
	deliver(a, b, 0);
	sync_drain(b->d.sync);
	deliver(b, a, ~0ull);                      /* the two window ACKs: lost */
	ftfw_alive(b->d.sync);                      /* the tail's ACK: lost */
	sync_drain(b->d.sync);
	deliver(b, a, ~0ull);
	assert_int_equal(rs_objects(a), 12);
	ftfw_alive(b->d.sync);                      /* repeats all three */
	sync_drain(b->d.sync);
	assert_int_equal(b->nout >= 1, 1);
	deliver(b, a, 0);
	assert_int_equal(rs_objects(a), 0);
	for (int t = 1; t < PEER_REACK_TICKS; t++) {
		ftfw_alive(b->d.sync);
		sync_drain(b->d.sync);
		deliver(b, a, 0);
	}
	ftfw_alive(b->d.sync);                      /* then a plain ALIVE */
	sync_drain(b->d.sync);
	assert_int_equal(b->nout, 1);
	h = hdr_of(&b->out[0]);
	assert_int_equal(h.type, WT_CTL);
	assert_int_equal(h.flags & WF_ACK, 0);
	assert_int_equal(h.flags & WF_ALIVE, WF_ALIVE);
	node_free(a);
	node_free(b);
}

static void ftfw_flow_control_loses_nothing(void **state)
{
	struct node *a = node_new(SYNC_MODE_FTFW, 1), *b = node_new(SYNC_MODE_FTFW, 2);
	const uint32_t n = 5000;
	int rounds = 0;

	(void)state;
	a->conf.resend_queue_size = 64;
	a->d.sync->rsq.max = 64;
	settle(a, b);
	for (uint32_t i = 0; i < n; i++)
		event(a, NL_NEW, i);
	sync_drain(a->d.sync);
	assert_int_equal(a->d.sync->rsq.len, 64);  /* stops at the resend bound */
	assert_true(a->nout >= 63);
	assert_int_equal(a->d.sync->txq.len, n - a->nout);
	assert_int_equal(a->d.sync->rsq.nospace, 1);
	while (ext_count(b) < n && rounds++ < 1000)
		converge(a, b, 1);
	assert_int_equal(ext_count(b), n);
	assert_true(a->d.sync->rsq.len <= 64);
	assert_int_equal(sync_seq_stats(&b->d)->lost, 0);
	node_free(a);
	node_free(b);
}

/* The sender is still saying HELLO when its first batch is lost: the
 * receiver takes the next (HELLO) message without gap detection, so no
 * NACK ever comes. The ACK that skips the lost range brings it back. */
static void ftfw_hole_before_ack_is_resent(void **state)
{
	struct node *a = node_new(SYNC_MODE_FTFW, 1), *b = node_new(SYNC_MODE_FTFW, 2);

	(void)state;
	ftfw_alive(b->d.sync);                  /* B says HELLO, A hears it */
	sync_drain(b->d.sync);
	deliver(b, a, 0);
	for (uint32_t i = 0; i < 5; i++)
		event(a, NL_NEW, i);
	sync_drain(a->d.sync);
	a->nout = 0;                            /* lost */
	ftfw_alive(b->d.sync);                  /* B still in HELLO */
	sync_drain(b->d.sync);
	deliver(b, a, 0);
	for (uint32_t i = 5; i < 10; i++)
		event(a, NL_NEW, i);
	sync_drain(a->d.sync);
	assert_int_equal(hdr_of(&a->out[0]).flags & WF_HELLO, WF_HELLO);
	deliver(a, b, 0);
	assert_int_equal(ext_count(b), 5);
	assert_int_equal(sync_seq_stats(&b->d)->lost, 0);      /* no gap seen */
	converge(a, b, 4);
	assert_int_equal(ext_count(b), 10);
	assert_int_equal(rs_objects(a), 0);
	node_free(a);
	node_free(b);
}

/* The peer talks but its ACKs get lost: after the stall time the resend
 * queue is sent again instead of waiting forever. */
static void ftfw_stall_retransmits(void **state)
{
	struct node *a = node_new(SYNC_MODE_FTFW, 1);
	struct sync *s = a->d.sync;

	(void)state;
	s->rsq.max = 4;
	s->last_rx_ms = ev_now_ms();            /* a peer is talking */
	for (uint32_t i = 0; i < 6; i++)
		event(a, NL_NEW, i);
	sync_drain(s);
	assert_int_equal(a->nout, 4);
	assert_true(s->rs_blocked);
	sync_drain(s);
	assert_int_equal(a->nout, 4);           /* still waiting */
	s->rs_progress_ms -= s->rs_stall_ms + 1;        /* time passes, no ACK */
	s->last_rx_ms = ev_now_ms();
	sync_drain(s);
	assert_int_equal(a->nout, 8);           /* 2 waiting + ... resent */
	assert_int_equal(s->rs_stall_ms, 10000);        /* backoff */
	node_free(a);
}

/* No peer talking: bounded memory as in 1.4.7 (oldest un-acked evicted),
 * instead of piling up dead connections forever. */
static void ftfw_no_peer_stays_bounded(void **state)
{
	struct node *a = node_new(SYNC_MODE_FTFW, 1);

	(void)state;
	a->d.sync->rsq.max = 8;
	for (uint32_t i = 0; i < 20; i++)
		event(a, NL_NEW, i);
	sync_drain(a->d.sync);
	assert_int_equal(a->nout, 20);
	assert_int_equal(a->d.sync->rsq.len, 8);
	assert_int_equal(a->d.sync->rsq.nospace, 12);
	for (uint32_t i = 0; i < 20; i++)
		event(a, NL_DESTROY, i);
	sync_drain(a->d.sync);
	assert_int_equal(a->nout, 40);
	assert_true(cache_stats(a->d.sync->int_ct)->objects <= 8);
	assert_int_equal(cache_stats(a->d.sync->int_ct)->active, 0);
	node_free(a);
}

/* Heavy loss: everything arrives, and the receiver's answers stay few
 * (an ACK per window, an ACK+NACK per gap), not one per message. */
static void ftfw_lossy_bulk_is_quiet(void **state)
{
	struct node *a = node_new(SYNC_MODE_FTFW, 1), *b = node_new(SYNC_MODE_FTFW, 2);
	const uint32_t n = 20000;
	size_t b_msgs = 0;
	int rounds = 0;

	(void)state;
	settle(a, b);
	for (uint32_t i = 0; i < n; i++)
		event(a, NL_NEW, i);
	srandom(7);
	while (ext_count(b) < n && rounds++ < 2000) {
		size_t k = a->nout;

		sync_drain(a->d.sync);
		/* lose one datagram's worth (~15 messages) now and then */
		for (size_t i = k; i < a->nout; i++) {
			if (random() % 100 < 3) {
				size_t j;

				for (j = i; j < a->nout && j < i + 15; j++)
					a->out[j].len = 0;
				i = j;
			}
		}
		for (size_t i = 0; i < a->nout; i++)
			if (a->out[i].len)
				sync_recv(&b->d, 0, a->out[i].b, a->out[i].len,
					  &a->addr, sizeof(a->addr));
		a->nout = 0;
		if (queue_empty(&b->d.sync->txq))
			ftfw_alive(b->d.sync);
		sync_drain(b->d.sync);
		b_msgs += b->nout;
		deliver(b, a, 0);
		if (queue_empty(&a->d.sync->txq))
			ftfw_alive(a->d.sync);
	}
	assert_int_equal(ext_count(b), n);
	print_message("receiver sent %zu messages for %u objects, %d rounds\n", b_msgs, n, rounds);
	assert_true(b_msgs < n / 10);
	node_free(a);
	node_free(b);
}

static void ftfw_cold_start_keeps_unacked(void **state)
{
	struct node *a = node_new(SYNC_MODE_FTFW, 1), *b;

	(void)state;
	for (uint32_t i = 0; i < 5; i++)
		event(a, NL_NEW, i);
	sync_drain(a->d.sync);
	a->nout = 0;                               /* nobody listening yet */
	assert_int_equal(a->d.sync->rsq.len, 5);
	b = node_new(SYNC_MODE_FTFW, 2);
	ftfw_alive(b->d.sync);                     /* B comes up: ALIVE|HELLO */
	sync_drain(b->d.sync);
	assert_int_equal(hdr_of(&b->out[0]).flags, WF_ALIVE | WF_HELLO);
	deliver(b, a, 0);
	/* 1.4.7 forgets the resend queue here; we send it again */
	converge(a, b, 3);
	assert_int_equal(ext_count(b), 5);
	node_free(a);
	node_free(b);
}

static void ftfw_coalescing_and_types(void **state)
{
	struct node *a = node_new(SYNC_MODE_FTFW, 1);

	(void)state;
	event(a, NL_NEW, 1);
	event(a, NL_UPDATE, 1);
	event(a, NL_NEW, 2);
	event(a, NL_DESTROY, 2);
	sync_drain(a->d.sync);
	assert_int_equal(a->nout, 2);
	assert_int_equal(hdr_of(&a->out[0]).type, WT_CT_UPD);  /* NEW+UPDATE */
	assert_int_equal(hdr_of(&a->out[1]).type, WT_CT_DEL);  /* NEW+DESTROY */
	node_free(a);
}

/* A connection that dies and comes back with the same tuple: the stale
 * DESTROY is dropped (a late resend of it would delete the new entry on
 * the peer); a repeated NEW overwrites the live entry in place. */
static void same_tuple_reborn(void **state)
{
	struct node *a = node_new(SYNC_MODE_FTFW, 1), *b = node_new(SYNC_MODE_FTFW, 2);

	(void)state;
	settle(a, b);
	event(a, NL_NEW, 1);
	sync_drain(a->d.sync);
	deliver(a, b, 0);
	event(a, NL_DESTROY, 1);
	event(a, NL_NEW, 1);
	assert_int_equal(cache_stats(a->d.sync->int_ct)->objects, 1);
	sync_drain(a->d.sync);
	assert_int_equal(a->nout, 1);
	assert_int_equal(hdr_of(&a->out[0]).type, WT_CT_NEW);
	deliver(a, b, 0);
	assert_int_equal(ext_count(b), 1);
	/* NEW again while the first is still un-acknowledged */
	event(a, NL_NEW, 1);
	assert_int_equal(cache_stats(a->d.sync->int_ct)->objects, 1);
	assert_int_equal(a->d.sync->txq.len, 1);
	assert_int_equal(rs_objects(a), 0);
	converge(a, b, 3);
	assert_int_equal(ext_count(b), 1);
	assert_int_equal(cache_stats(a->d.sync->int_ct)->active, 1);
	node_free(a);
	node_free(b);
}

static void receive_malformed(void **state)
{
	struct node *b = node_new(SYNC_MODE_FTFW, 2);
	struct sockaddr_in from = { .sin_family = AF_INET };
	uint8_t v2[8] = { 0x20, 0x10, 0x00, 0x08, 0, 0, 0, 1 };
	uint8_t t6[8] = { 0x16, 0x00, 0x00, 0x08, 0, 0, 0, 2 };
	uint8_t trunc[11] = { 0x1a, 0x10, 0x00, 0x08, 0, 0, 0, 3, 1, 2, 3 };
	const struct wire_rx_stats *st = sync_rx_stats(&b->d);

	(void)state;
	sync_recv(&b->d, 0, v2, sizeof(v2), &from, sizeof(from));
	assert_int_equal(st->wrong_version, 1);
	sync_recv(&b->d, 0, t6, sizeof(t6), &from, sizeof(from));
	assert_int_equal(st->bad_header, 1);
	sync_recv(&b->d, 0, trunc, sizeof(trunc), &from, sizeof(from));
	assert_int_equal(st->truncated, 1);
	assert_int_equal(st->malformed, 3);
	/* the ALIVE before the junk was still taken */
	assert_true(b->d.sync->say_hello_back == false);
	node_free(b);
}

/* TCP: messages split across reads are kept until complete. */
static void tcp_stream_in_pieces(void **state)
{
	struct node *a = node_new(SYNC_MODE_NOTRACK, 1), *b = node_new(SYNC_MODE_NOTRACK, 2);
	uint8_t stream[8192], pending[8192];
	size_t slen = 0, plen = 0, pos = 0;

	(void)state;
	b->conf.nchannels = 1;
	b->conf.channels[0].kind = CHAN_TCP;
	for (uint32_t i = 0; i < 20; i++)
		event(a, NL_NEW, i);
	sync_drain(a->d.sync);
	for (size_t i = 0; i < a->nout; i++) {
		memcpy(stream + slen, a->out[i].b, a->out[i].len);
		slen += a->out[i].len;
	}
	/* feed it 7 bytes at a time, as a TCP channel would */
	while (pos < slen) {
		size_t chunk = slen - pos < 7 ? slen - pos : 7, used;

		memcpy(pending + plen, stream + pos, chunk);
		plen += chunk;
		pos += chunk;
		used = sync_recv(&b->d, 0, pending, plen, &a->addr, sizeof(a->addr));
		assert_true(used <= plen);
		memmove(pending, pending + used, plen - used);
		plen -= used;
	}
	assert_int_equal(plen, 0);
	assert_int_equal(ext_count(b), 20);
	assert_int_equal(sync_rx_stats(&b->d)->malformed, 0);
	node_free(a);
	node_free(b);
}

static void two_peers_tracked_apart(void **state)
{
	struct node *a = node_new(SYNC_MODE_NOTRACK, 1), *c = node_new(SYNC_MODE_NOTRACK, 3);
	struct node *b = node_new(SYNC_MODE_NOTRACK, 2);

	(void)state;
	/* two senders with unrelated sequence spaces: no false losses */
	a->d.sync->seq = 1000; a->d.sync->seq_set = true;
	c->d.sync->seq = 900000; c->d.sync->seq_set = true;
	for (uint32_t i = 0; i < 4; i++) {
		event(a, NL_NEW, i);
		event(c, NL_NEW, 100 + i);
		sync_drain(a->d.sync);
		sync_drain(c->d.sync);
		deliver(a, b, 0);
		deliver(c, b, 0);
	}
	assert_int_equal(ext_count(b), 8);
	assert_int_equal(sync_seq_stats(&b->d)->lost, 0);
	assert_int_equal(sync_seq_stats(&b->d)->before, 0);
	node_free(a);
	node_free(b);
	node_free(c);
}

static void notrack_sends_once_and_resyncs(void **state)
{
	struct node *a = node_new(SYNC_MODE_NOTRACK, 1), *b = node_new(SYNC_MODE_NOTRACK, 2);

	(void)state;
	for (uint32_t i = 0; i < 3; i++)
		event(a, NL_NEW, i);
	event(a, NL_DESTROY, 2);
	sync_drain(a->d.sync);
	assert_int_equal(a->nout, 3);
	assert_int_equal(hdr_of(&a->out[0]).flags, 0);        /* no HELLO in NOTRACK */
	assert_int_equal(a->d.sync->rsq.len, 0);
	assert_int_equal(cache_stats(a->d.sync->int_ct)->objects, 2);  /* dead one freed */
	deliver(a, b, 0);
	assert_int_equal(ext_count(b), 2);
	/* B asks for a resync: A sends its whole internal cache */
	sync_request_resync(&b->d);
	sync_drain(b->d.sync);
	assert_int_equal(hdr_of(&b->out[0]).flags, WF_RESYNC);
	deliver(b, a, 0);
	sync_drain(a->d.sync);
	assert_int_equal(a->nout, 2);
	/* NOTRACK answers ACKs with "malformed header" */
	{
		uint8_t ack[16];

		wire_put_ctl(ack, sizeof(ack), WF_ACK, 5, 1, 2);
		sync_recv(&a->d, 0, ack, 16, &b->addr, sizeof(b->addr));
		assert_int_equal(sync_rx_stats(&a->d)->bad_header, 1);
	}
	node_free(a);
	node_free(b);
}

static void alarm_refresh_and_expiry(void **state)
{
	struct node *a = node_new(SYNC_MODE_ALARM, 1), *b = node_new(SYNC_MODE_ALARM, 2);
	uint32_t later;

	(void)state;
	for (uint32_t i = 0; i < 4; i++)
		event(a, NL_NEW, i);
	sync_drain(a->d.sync);
	assert_int_equal(a->nout, 4);
	deliver(a, b, 0);
	assert_int_equal(ext_count(b), 4);
	/* nothing is due yet */
	for (int t = 0; t < 5; t++)
		alarm_tick(a->d.sync, cache_now());
	sync_drain(a->d.sync);
	assert_int_equal(a->nout, 0);
	/* after RefreshTime every entry is sent again, still as NEW */
	later = cache_now() + 61;
	for (int t = 0; t < 5; t++)
		alarm_tick(a->d.sync, later);
	sync_drain(a->d.sync);
	assert_int_equal(a->nout, 4);
	assert_int_equal(hdr_of(&a->out[0]).type, WT_CT_NEW);
	a->nout = 0;
	/* the receiver forgets entries after CacheTimeout */
	later = cache_now() + 181;
	for (int t = 0; t < 5; t++)
		alarm_tick(b->d.sync, later);
	assert_int_equal(ext_count(b), 0);
	assert_int_equal(sync_seq_stats(&b->d)->lost, 0);
	node_free(a);
	node_free(b);
}

static void stats_texts(void **state)
{
	struct node *a = node_new(SYNC_MODE_FTFW, 1);
	char buf[4096];

	(void)state;
	sync_enqueue_ctl(a->d.sync, WF_ACK, 1, 2);
	event(a, NL_NEW, 1);
	sync_drain(a->d.sync);
	sync_print_rsqueue(&a->d, buf, sizeof(buf));
	{
		char want[256];
		uint32_t s0 = hdr_of(&a->out[0]).seq;

		snprintf(want, sizeof(want),
			 "resent queue (len=2)\ncontrol -> seq:%u flags:%u\nobject -> seq:%u\n",
			 s0, WF_ACK | WF_HELLO, s0 + 1);
		assert_string_equal(buf, want);
	}
	sync_print_queues(&a->d, buf, sizeof(buf));
	assert_string_equal(buf,
		"allocated queue nodes:\t\t           1\n\n"
		"queue txqueue:\ncurrent elements:\t\t           0\n"
		"maximum elements:\t\t  2147483647\nnot enough space errors:\t           0\n\n"
		"queue errorq:\ncurrent elements:\t\t           0\n"
		"maximum elements:\t\t         128\nnot enough space errors:\t           0\n\n"
		"queue rsqueue:\ncurrent elements:\t\t           2\n"
		"maximum elements:\t\t      131072\nnot enough space errors:\t           0\n\n");
	node_free(a);
}

static struct exp mkexp(const struct ct *master, const char *helper, uint16_t port)
{
	struct exp e;

	memset(&e, 0, sizeof(e));
	e.master = master->orig;
	e.expected.l3 = e.mask.l3 = AF_INET;
	e.expected.l4 = e.mask.l4 = master->orig.l4;
	e.expected.src.v4 = master->orig.src.v4;
	e.expected.dst.v4 = master->orig.dst.v4;
	e.expected.dport = htons(port);
	e.have = EXP_H_MASTER | EXP_H_EXPECTED | EXP_H_MASK | EXP_H_TIMEOUT | EXP_H_HELPER;
	e.timeout = 300;
	snprintf(e.helper, sizeof(e.helper), "%s", helper);
	return e;
}

/* §11: an expectation is replicated only if its helper is listed and its
 * master is known in the internal cache. */
static void expectation_filters(void **state)
{
	struct node *a = node_new(SYNC_MODE_FTFW, 1);
	char helpers[1][CT_HELPER_MAX] = { "sip" };
	struct ct m = mkct(1), unknown = mkct(2);
	struct exp e1 = mkexp(&m, "ftp", 5000), e2 = mkexp(&unknown, "ftp", 5001);
	struct exp e3 = mkexp(&m, "sip-5061", 5002);

	(void)state;
	a->conf.expectation_sync = true;
	event(a, NL_NEW, 1);
	sync_nl_sink()->exp_event(&a->d, NL_NEW, NL_ORIGIN_OTHER, &e1);
	sync_nl_sink()->exp_event(&a->d, NL_NEW, NL_ORIGIN_OTHER, &e2);
	assert_int_equal(cache_stats(a->d.sync->int_exp)->hashed, 1);  /* master unknown */
	sync_drain(a->d.sync);
	assert_int_equal(a->nout, 2);
	assert_int_equal(hdr_of(&a->out[1]).type, WT_EXP_NEW);
	a->nout = 0;
	/* with a helper list, only prefixes of listed names pass */
	a->conf.exp_helpers = helpers;
	a->conf.nexp_helpers = 1;
	sync_nl_sink()->exp_event(&a->d, NL_NEW, NL_ORIGIN_OTHER, &e3);
	e1.expected.dport = htons(5003);
	sync_nl_sink()->exp_event(&a->d, NL_NEW, NL_ORIGIN_OTHER, &e1);
	assert_int_equal(cache_stats(a->d.sync->int_exp)->hashed, 2);
	/* expectation DESTROY leaves as type 5 */
	sync_nl_sink()->exp_event(&a->d, NL_DESTROY, NL_ORIGIN_OTHER, &e3);
	sync_drain(a->d.sync);
	assert_int_equal(a->nout, 1);
	assert_int_equal(hdr_of(&a->out[0]).type, WT_EXP_DEL);
	a->conf.exp_helpers = NULL;
	a->conf.nexp_helpers = 0;
	node_free(a);
}

/* Overrun resync: what the dump does not report has vanished (DESTROY);
 * what events report meanwhile is not mistaken for vanished. */
static void resync_purges_vanished(void **state)
{
	struct node *a = node_new(SYNC_MODE_FTFW, 1);
	struct ct c0 = mkct(0), c1 = mkct(1);
	const struct nl_sink *sk = sync_nl_sink();
	int types[3] = { 0, 0, 0 };

	(void)state;
	for (uint32_t i = 0; i < 3; i++)
		event(a, NL_NEW, i);
	sync_drain(a->d.sync);
	a->nout = 0;
	/* -R / start-up dumps populate silently */
	{
		struct ct c9 = mkct(9);

		sk->ct_dump(&a->d, &c9);
		sync_drain(a->d.sync);
		assert_int_equal(a->nout, 0);
	}
	/* c1 changed while its event was lost (overrun); c0 did not */
	c1.mark = 42;
	c1.have |= CT_H_MARK;
	sk->resync_begin(&a->d, false);
	sk->ct_dump(&a->d, &c0);
	sk->ct_dump(&a->d, &c1);
	event(a, NL_NEW, 5);                    /* arrives during the dump */
	sk->resync_done(&a->d, false);
	sync_drain(a->d.sync);
	for (size_t i = 0; i < a->nout; i++)
		types[hdr_of(&a->out[i]).type]++;
	/* only what changed is re-sent (1.4.x re-sent every entry) */
	assert_int_equal(types[WT_CT_UPD], 1);
	assert_int_equal(types[WT_CT_NEW], 1);  /* the event's */
	assert_int_equal(types[WT_CT_DEL], 2);  /* 2 and 9 vanished */
	assert_int_equal(cache_stats(a->d.sync->int_ct)->active, 3);
	node_free(a);
}

/* Hostile input: random and mutated datagrams in every mode never crash,
 * never wedge the engine, and are counted. */
static void receive_random_input_survives(void **state)
{
	static const int modes[] = { SYNC_MODE_FTFW, SYNC_MODE_NOTRACK, SYNC_MODE_ALARM };

	(void)state;
	srandom(42);
	for (unsigned m = 0; m < 3; m++) {
		struct node *a = node_new(modes[m], 1), *b = node_new(modes[m], 2);
		uint8_t buf[600];

		for (uint32_t i = 0; i < 50; i++)
			event(a, NL_NEW, i);
		sync_drain(a->d.sync);
		for (int it = 0; it < 20000; it++) {
			size_t len;

			if (it % 2 && a->nout) {
				/* a valid message with a few bytes flipped */
				struct msg *v = &a->out[random() % a->nout];

				len = v->len;
				memcpy(buf, v->b, len);
				for (int k = random() % 4; k >= 0; k--)
					buf[random() % len] ^= (uint8_t)(1u << (random() % 8));
			} else {
				len = (size_t)(random() % sizeof(buf));
				for (size_t k = 0; k < len; k++)
					buf[k] = (uint8_t)random();
				if (len >= 4) {
					buf[0] = (uint8_t)(0x10 | (random() % 16));
					buf[2] = 0;
					buf[3] = (uint8_t)len;
				}
			}
			assert_true(sync_recv(&b->d, 0, buf, len, &a->addr, sizeof(a->addr)) <= len);
			if (it % 100 == 0) {
				if (modes[m] == SYNC_MODE_FTFW)
					ftfw_alive(b->d.sync);
				sync_drain(b->d.sync);
				b->nout = 0;
			}
		}
		assert_true(sync_rx_stats(&b->d)->malformed > 0);
		/* still works afterwards */
		a->nout = 0;
		event(a, NL_UPDATE, 7);
		sync_drain(a->d.sync);
		deliver(a, b, 0);
		node_free(a);
		node_free(b);
	}
}

/* ---- commit against a real kernel, in a private network namespace ---- */

static char logpath[64];

static bool log_has(const char *needle)
{
	char line[2048];
	bool found = false;
	FILE *f = fopen(logpath, "r");

	if (f == NULL)
		return false;
	while (!found && fgets(line, sizeof(line), f))
		found = strstr(line, needle) != NULL;
	fclose(f);
	return found;
}

static int count_kernel(const char *what)
{
	char cmd[128];
	int n = -1;
	FILE *p;

	snprintf(cmd, sizeof(cmd), "conntrack -L %s 2>/dev/null | wc -l", what);
	p = popen(cmd, "r");
	if (p == NULL)
		return -1;
	if (fscanf(p, "%d", &n) != 1)
		n = -1;
	pclose(p);
	return n;
}

static struct ct tcp_ct(uint32_t src, uint16_t sport, uint16_t dport)
{
	struct ct ct;

	memset(&ct, 0, sizeof(ct));
	ct.orig.l3 = AF_INET;
	ct.orig.l4 = IPPROTO_TCP;
	ct.orig.src.v4 = htonl(src);
	ct.orig.dst.v4 = htonl(0x0a620002);
	ct.orig.sport = htons(sport);
	ct.orig.dport = htons(dport);
	ct.have = CT_H_ORIG | CT_H_PORTS | CT_H_STATUS | CT_H_TIMEOUT | CT_H_TCP_STATE;
	ct.status = 0x8 | 0x2 | 0x4;    /* CONFIRMED | SEEN_REPLY | ASSURED */
	ct.tcp_state = 3;
	ct.timeout = 300;
	tuple_invert(&ct.repl, &ct.orig);       /* as the wire decoder does */
	ct.have |= CT_H_REPL_SYNTH;
	return ct;
}

static int commit_setup(void **state)
{
	int fd;

	(void)state;
	if (geteuid() != 0 || unshare(CLONE_NEWNET) < 0)
		return 0;       /* the test skips itself */
	snprintf(logpath, sizeof(logpath), "/tmp/test_sync.%d.log", (int)getpid());
	fd = open(logpath, O_CREAT | O_TRUNC | O_WRONLY, 0600);
	if (fd >= 0)
		close(fd);
	log_open(logpath, -1, false);
	return 0;
}

static int commit_teardown(void **state)
{
	(void)state;
	log_close();
	if (logpath[0] && getenv("KEEP_LOG") == NULL)
		unlink(logpath);
	return 0;
}

static void run_until_commit_done(struct node *n)
{
	uint64_t deadline = ev_now_ms() + 10000;

	while (sync_commit_running(&n->d) && ev_now_ms() < deadline)
		ev_run_once(n->d.loop, 100);
	assert_false(sync_commit_running(&n->d));
}

static void commit_small_hash_includes_expectations(void **state)
{
	struct node *n;
	struct ct master, related, plain;
	struct exp e, orphan;

	(void)state;
	if (logpath[0] == 0) {
		skip();
		return;
	}
	n = node_new(SYNC_MODE_FTFW, 2);
	n->conf.hashsize = 16;                  /* 1.4.7 loses the expectation here */
	n->conf.expectation_sync = true;
	n->d.loop = ev_new();
	n->d.sync->commit_kb = kbatch_new(commit_err_cb, n->d.sync);
	if (n->d.sync->commit_kb == NULL) {
		node_free(n);
		skip();
		return;
	}
	master = tcp_ct(0x0a620001, 41798, 21);
	master.have |= CT_H_HELPER;
	strcpy(master.helper, "ftp");
	plain = tcp_ct(0x0a620005, 40000, 80);
	/* the data connection: related to the master, committed second */
	related = tcp_ct(0x0a620001, 41799, 20);
	ct_ext_get(&related, 0)->master = master.orig;
	related.have |= CT_H_MASTER | CT_H_MASTER_PORTS;
	related.status |= 0x1;                  /* EXPECTED, cleared on commit */
	sync_apply_ct(n->d.sync, WT_CT_NEW, &master);
	sync_apply_ct(n->d.sync, WT_CT_UPD, &related);
	sync_apply_ct(n->d.sync, WT_CT_NEW, &plain);
	ct_release(&related);

	memset(&e, 0, sizeof(e));
	e.master = master.orig;
	e.expected.l3 = e.mask.l3 = AF_INET;
	e.expected.l4 = IPPROTO_TCP;
	e.expected.src.v4 = htonl(0x0a620001);
	e.expected.dst.v4 = htonl(0x0a620002);
	e.expected.dport = htons(51230);
	e.mask.src.v4 = 0xffffffff;
	e.mask.dst.v4 = 0xffffffff;
	e.mask.dport = 0xffff;
	e.mask.l4 = IPPROTO_TCP;
	e.have = EXP_H_MASTER | EXP_H_EXPECTED | EXP_H_MASK | EXP_H_PORTS |
		 EXP_H_TIMEOUT | EXP_H_FLAGS | EXP_H_HELPER;
	e.timeout = 300;
	strcpy(e.helper, "ftp");
	sync_apply_exp(n->d.sync, WT_EXP_NEW, &e);
	/* an expectation whose master is unknown to the kernel: reported */
	orphan = e;
	orphan.master.sport = htons(1);
	orphan.expected.dport = htons(51231);
	sync_apply_exp(n->d.sync, WT_EXP_NEW, &orphan);

	/* a backup's pending "-t" is cancelled when it becomes primary */
	sync_schedule_purge(&n->d);
	assert_true(log_has("flushing conntrack table in 60 secs"));
	assert_true(ev_timer_pending(&n->d.sync->purge_timer));
	sync_commit(&n->d, true, true, NULL);
	assert_true(sync_commit_running(&n->d));
	assert_false(ev_timer_pending(&n->d.sync->purge_timer));
	/* the primary's "-f" while the commit runs is refused, not lost */
	sync_flush_caches(&n->d, true, true, false);
	assert_true(log_has("ignoring flush command, commit still in progress"));
	assert_int_equal(ext_count(n), 3);
	sync_commit(&n->d, true, true, NULL);
	assert_true(log_has("commit already in progress, skipping"));
	run_until_commit_done(n);

	assert_true(log_has("committing all external caches"));
	assert_true(log_has("Committed 3 new entries"));
	assert_true(log_has("Committed 1 new expectations"));
	assert_true(log_has("1 expectations can't be committed"));
	assert_true(log_has("commit-create: No such file or directory"));
	assert_true(log_has("master conntrack"));
	assert_true(log_has("commit has taken 0."));
	assert_int_equal(count_kernel(""), 3);
	assert_int_equal(count_kernel("expect"), 1);

	/* and "-f" afterwards works (1.4.7 keeps refusing it) */
	sync_flush_caches(&n->d, true, true, true);
	assert_int_equal(ext_count(n), 0);
	ev_free(n->d.loop);
	n->d.loop = NULL;
	node_free(n);
}

/* -t: PurgeTimeout later, the kernel table and the internal cache go. */
static void purge_flushes_kernel_and_internal(void **state)
{
	struct node *n;
	struct ct ct = tcp_ct(0x0a620009, 40001, 80);
	uint64_t deadline;

	(void)state;
	if (logpath[0] == 0) {
		skip();
		return;
	}
	n = node_new(SYNC_MODE_FTFW, 2);
	n->conf.purge_timeout = 1;
	n->d.loop = ev_new();
	n->d.sync->commit_kb = kbatch_new(commit_err_cb, n->d.sync);
	assert_non_null(n->d.sync->commit_kb);
	sync_apply_ct(n->d.sync, WT_CT_NEW, &ct);
	sync_commit(&n->d, true, false, NULL);
	run_until_commit_done(n);
	assert_true(count_kernel("") >= 1);
	event(n, NL_NEW, 1);                    /* something in the internal cache */
	assert_int_equal(cache_stats(n->d.sync->int_ct)->hashed, 1);

	sync_schedule_purge(&n->d);
	assert_true(log_has("flushing conntrack table in 1 secs"));
	deadline = ev_now_ms() + 5000;
	while (!log_has("flushing kernel conntrack table (scheduled)") && ev_now_ms() < deadline)
		ev_run_once(n->d.loop, 100);
	assert_true(log_has("flushing kernel conntrack table (scheduled)"));
	/* the deletion runs in a child, listed for -s process */
	assert_int_equal(n->d.nchildren, 1);
	assert_string_equal(n->d.children[0].type, "flush");
	assert_int_equal(n->d.portid_flush, (uint32_t)n->d.children[0].pid);
	waitpid(n->d.children[0].pid, NULL, 0);
	assert_int_equal(count_kernel(""), 0);
	assert_int_equal(cache_stats(n->d.sync->int_ct)->hashed, 0);
	ev_free(n->d.loop);
	n->d.loop = NULL;
	node_free(n);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(ftfw_basic_and_hello),
		cmocka_unit_test(ftfw_nack_recovers_loss),
		cmocka_unit_test(ftfw_lost_acks_are_repeated),
		cmocka_unit_test(ftfw_before_is_dropped),
		cmocka_unit_test(ftfw_ack_window),
		cmocka_unit_test(ftfw_flow_control_loses_nothing),
		cmocka_unit_test(ftfw_no_peer_stays_bounded),
		cmocka_unit_test(ftfw_stall_retransmits),
		cmocka_unit_test(tcp_stream_in_pieces),
		cmocka_unit_test(ftfw_hole_before_ack_is_resent),
		cmocka_unit_test(ftfw_lossy_bulk_is_quiet),
		cmocka_unit_test(ftfw_cold_start_keeps_unacked),
		cmocka_unit_test(ftfw_coalescing_and_types),
		cmocka_unit_test(same_tuple_reborn),
		cmocka_unit_test(receive_malformed),
		cmocka_unit_test(two_peers_tracked_apart),
		cmocka_unit_test(notrack_sends_once_and_resyncs),
		cmocka_unit_test(alarm_refresh_and_expiry),
		cmocka_unit_test(stats_texts),
		cmocka_unit_test(expectation_filters),
		cmocka_unit_test(resync_purges_vanished),
		cmocka_unit_test(receive_random_input_survives),
		cmocka_unit_test_setup_teardown(commit_small_hash_includes_expectations,
						commit_setup, commit_teardown),
		cmocka_unit_test_setup_teardown(purge_flushes_kernel_and_internal,
						commit_setup, commit_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
