/*
 * Intrusive FIFO queues of the sync engine (tx, control tx, resend). A
 * queued element is either a cache object (its embedded struct qnode) or a
 * control message (struct qctl). An element is on at most one queue; its
 * qnode.qid says which.
 */
#ifndef CTD_QUEUE_H
#define CTD_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "cache.h"

enum { QID_NONE = 0, QID_TX = 1, QID_TXCTL = 2, QID_RS = 3 };
enum { QN_OBJ = 0, QN_CTL = 1 };

struct queue {
	struct qnode head;          /* sentinel: head.next is the oldest */
	uint32_t len, max;
	uint64_t nospace;           /* "not enough space errors" */
	uint8_t  id;
};

struct qctl {                       /* ACK, NACK, RESYNC or ALIVE to send */
	struct qnode qn;
	uint8_t  flags;             /* WF_*, hello bits accumulate on send */
	uint32_t from, to;
};

void queue_init(struct queue *q, uint8_t id, uint32_t max);
static inline bool queue_empty(const struct queue *q) { return q->len == 0; }
static inline struct qnode *queue_head(const struct queue *q)
{
	return q->len ? q->head.next : NULL;
}
/* Next element after n, NULL at the end. */
static inline struct qnode *queue_next(const struct queue *q, const struct qnode *n)
{
	return n->next == &q->head ? NULL : n->next;
}
/* Append n (not on any queue) at the tail. */
void queue_append(struct queue *q, struct qnode *n);
/* Remove n from q (n->qid must be q->id). */
void queue_unlink(struct queue *q, struct qnode *n);

static inline struct cache_obj *qn_obj(struct qnode *n)
{
	return (struct cache_obj *)((char *)n - offsetof(struct cache_obj, qn));
}
static inline struct qctl *qn_ctl(struct qnode *n)
{
	return (struct qctl *)n;    /* qn is the first member */
}

/* Control nodes; *count tracks "allocated queue nodes" of -s queue. */
struct qctl *qctl_new(uint64_t *count, uint8_t flags, uint32_t from, uint32_t to);
void qctl_free(uint64_t *count, struct qctl *c);

/* 32-bit serial arithmetic on sequence numbers. */
static inline bool seq_before(uint32_t a, uint32_t b) { return (int32_t)(a - b) < 0; }
static inline bool seq_after(uint32_t a, uint32_t b) { return (int32_t)(b - a) < 0; }

#endif
