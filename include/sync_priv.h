/*
 * Internals of the sync engine shared by sync.c, the three modes, commit.c
 * and seqtrack.c. Not for other modules (they use sync.h).
 */
#ifndef CTD_SYNC_PRIV_H
#define CTD_SYNC_PRIV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cache.h"
#include "ev.h"
#include "kernel.h"
#include "queue.h"
#include "sync.h"
#include "wire.h"

struct ctd;
struct ctl_client;

/* ---- per-peer receive state (seqtrack.c) ---- */

#define PEER_REACK       4         /* ACK ranges remembered per peer */
#define PEER_REACK_TICKS 3         /* ALIVE ticks they are repeated for */

struct peer {
	uint8_t  addr[16];          /* source address, port ignored */
	uint8_t  family;
	bool     tracking;          /* a sequence number was accepted */
	bool     ack_pending;       /* FT-FW receiver: ACK owed */
	bool     in_hello;          /* its last message carried HELLO */
	uint32_t last;              /* last sequence number accepted */
	uint32_t window;            /* FT-FW: messages left before an ACK */
	uint32_t ack_from;
	/* FT-FW receiver: the last ACK ranges sent, repeated on the next few
	 * ALIVE ticks so that one lost ACK does not leave the sender holding
	 * (and, after a stall, re-sending) what we already have. */
	uint32_t reack_from[PEER_REACK], reack_to[PEER_REACK];
	uint8_t  reack_n, reack_ticks;
	uint64_t last_seen_ms, last_log_ms;
};

#define SEQTRACK_MAX_PEERS 64

struct seqtrack {
	struct peer peers[SEQTRACK_MAX_PEERS];
	unsigned    n;
};

enum seq_class { SEQ_UNSET, SEQ_IN_SYNC, SEQ_AFTER, SEQ_BEFORE };

/* The peer state for a sender address (created on first sight; the least
 * recently seen one is recycled when the table is full). */
struct peer *seqtrack_peer(struct seqtrack *t, const void *from, size_t fromlen,
			   uint32_t window, uint64_t now_ms);
/* Classify s and count lost/before exactly as 1.4.x (lost += gap + 2). */
enum seq_class seqtrack_classify(const struct peer *p, uint32_t s, struct seq_stats *st);
void seqtrack_accept(struct peer *p, uint32_t s);

/* ---- the engine ---- */

enum rx_result { RX_DATA, RX_CTL, RX_BAD, RX_DROP };
enum { HELLO_INIT, HELLO_SAY, HELLO_DONE };


struct commit_state;

/* Where messages go: the channel set, or a test's capture. */
struct sync_tx {
	int  (*send)(void *arg, const void *msg, size_t len);
	void (*flush)(void *arg);
	void *arg;
};

struct sync {
	struct ctd   *d;
	int           mode;                 /* enum sync_mode */
	struct cache *int_ct, *int_exp, *ext_ct, *ext_exp;
	struct queue  txq, txctl, rsq;
	uint64_t      ctl_nodes;
	struct seqtrack peers;
	struct wire_rx_stats rx;
	struct seq_stats seqst;
	struct wire_tx_opts txo;
	struct sync_tx tx;
	bool          tx_dirty;             /* bytes buffered in the channel */
	uint32_t      seq;                  /* next sequence number */
	bool          seq_set;
	uint32_t      drain_budget;         /* objects per loop turn */

	/* FT-FW sender */
	int           hello;
	bool          say_hello_back;
	uint64_t      rs_progress_ms;       /* last time an ACK freed space */
	uint32_t      rs_stall_ms;          /* retransmit after this long blocked */
	bool          rs_blocked;           /* tx stopped: resend queue full */
	uint64_t      last_rx_ms;           /* last well-formed message from a peer */

	struct ev_timer alive_timer, kick_timer, alarm_timer, purge_timer;
	uint32_t      alarm_pos[4];         /* ALARM scan positions */

	struct kbatch *commit_kb, *inject_kb;
	bool          inject_dirty;
	struct kernel_ct_opts kopts;
	struct commit_state *commit;

	bool          resync_active[2];     /* overrun/poll dump running (ct, exp) */
	bool          bulk_direct;          /* -B with DisableInternalCache */
	uint64_t      traffic_bytes, traffic_pkts;

	/* HashLimit refusals, [0] internal (local states), [1] external
	 * (received): logged at the first one, then once a minute */
	uint64_t      full_log_ms[2];       /* 0: none logged yet */
	uint64_t      full_unlogged[2];     /* refusals since that line */
};

/* sync.c */
struct sync *sync_new(struct ctd *d);       /* caches, queues; no sockets */
void sync_free(struct sync *s);
void sync_drain(struct sync *s);             /* the before-sleep hook */
void sync_enqueue_obj(struct sync *s, struct cache_obj *o);
int  sync_enqueue_ctl(struct sync *s, uint8_t flags, uint32_t from, uint32_t to);
void sync_obj_unqueued(struct sync *s, struct cache_obj *o);
struct cache *sync_int_cache(struct sync *s, const struct cache_obj *o);
void sync_bulk(struct sync *s);              /* queue every internal object */
void sync_flush_internal(struct sync *s, struct cache *c);  /* -f internal, -t */
uint32_t sync_next_seq(struct sync *s);
void sync_obj_dequeue(struct sync *s, struct cache_obj *o);  /* from any queue */
/* Encode and send at once, no queue (NOTRACK + DisableInternalCache). */
void sync_send_direct(struct sync *s, uint8_t type, const void *obj);

/* sync_rx.c */
/* c refused entries since its add_enospc counter read `before`: log it,
 * rate-limited (external: received entries; else local states). */
void sync_note_full(struct sync *s, const struct cache *c, uint64_t before, bool external);
size_t sync_recv(struct ctd *d, unsigned idx, const uint8_t *data, size_t len,
		 const void *from, size_t fromlen);
void sync_apply_ct(struct sync *s, uint8_t type, const struct ct *ct);
void sync_apply_exp(struct sync *s, uint8_t type, const struct exp *e);
/* kbatch error callback of the injection batch (DisableExternalCache). */
void sync_inject_err(void *arg, enum kop op, const void *obj, int err);

/* sync_events.c: sync_nl_sink() (sync.h) */

/* sync_ftfw.c */
enum rx_result ftfw_recv(struct sync *s, struct peer *p, const struct wire_hdr *h);
uint8_t ftfw_tx_flags(struct sync *s);
void ftfw_obj_sent(struct sync *s, struct cache_obj *o, uint32_t seq);
void ftfw_ctl_sent(struct sync *s, struct qctl *c, uint32_t seq);
bool ftfw_can_send_obj(struct sync *s);
void ftfw_alive(struct sync *s);             /* 1 s of transmit silence */
void ftfw_rs_flush(struct sync *s);

/* sync_notrack.c */
enum rx_result notrack_recv(struct sync *s, struct peer *p, const struct wire_hdr *h);
void notrack_alive(struct sync *s);

/* sync_alarm.c */
enum rx_result alarm_recv(struct sync *s, struct peer *p, const struct wire_hdr *h);
void alarm_arm(struct sync *s, struct cache_obj *o);
void alarm_tick(struct sync *s, uint32_t now);

/* commit.c */
void commit_free(struct sync *s);
void commit_err_cb(void *arg, enum kop op, const void *obj, int err);
/* While a commit has the event groups paused, until its resync is done:
 * true if the external cache holds this kernel entry in the same state
 * (the commit wrote it), so the resync caches it without sending it back. */
bool commit_ct_known(struct sync *s, const struct ct *ct);
bool commit_exp_known(struct sync *s, const struct exp *e);

#endif
