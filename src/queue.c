/*
 * Intrusive doubly linked FIFOs: O(1) append and unlink, so coalescing
 * (an object already queued is moved, not duplicated) and NACK ranges
 * cost nothing per element beyond the qnode the cache object carries.
 */
#include <stdlib.h>

#include "queue.h"

void queue_init(struct queue *q, uint8_t id, uint32_t max)
{
	q->head.prev = q->head.next = &q->head;
	q->head.qid = id;
	q->len = 0;
	q->max = max;
	q->nospace = 0;
	q->id = id;
}

void queue_append(struct queue *q, struct qnode *n)
{
	n->prev = q->head.prev;
	n->next = &q->head;
	q->head.prev->next = n;
	q->head.prev = n;
	n->qid = q->id;
	q->len++;
}

void queue_unlink(struct queue *q, struct qnode *n)
{
	n->prev->next = n->next;
	n->next->prev = n->prev;
	n->prev = n->next = NULL;
	n->qid = QID_NONE;
	q->len--;
}

struct qctl *qctl_new(uint64_t *count, uint8_t flags, uint32_t from, uint32_t to)
{
	struct qctl *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return NULL;
	c->qn.qkind = QN_CTL;
	c->flags = flags;
	c->from = from;
	c->to = to;
	(*count)++;
	return c;
}

void qctl_free(uint64_t *count, struct qctl *c)
{
	if (c == NULL)
		return;
	(*count)--;
	free(c);
}
