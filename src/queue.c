/*
 * Intrusive doubly linked FIFOs: O(1) append and unlink, so coalescing
 * (an object already queued is moved, not duplicated) and NACK ranges
 * cost nothing per element beyond the qnode the cache object carries.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "channel.h"
#include "conf.h"
#include "ctd.h"
#include "queue.h"
#include "sync_priv.h"

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

/* ---- -s rsqueue and -s queue ---- */

/* Append to a fixed text buffer; output stops cleanly when it is full. */
static void __attribute__((format(printf, 4, 5)))
bufcat(char *buf, size_t len, size_t *off, const char *fmt, ...)
{
	va_list ap;
	int r;

	if (*off >= len)
		return;
	va_start(ap, fmt);
	r = vsnprintf(buf + *off, len - *off, fmt, ap);
	va_end(ap);
	if (r < 0)
		return;
	*off += (size_t)r < len - *off ? (size_t)r : len - *off - 1;
}

int sync_print_rsqueue(const struct ctd *d, char *buf, size_t len)
{
	const struct sync *s = d->sync;
	size_t off = 0;
	struct qnode *n;

	if (s == NULL || s->mode != SYNC_MODE_FTFW || len == 0)
		return 0;
	buf[0] = '\0';
	bufcat(buf, len, &off, "resent queue (len=%u)\n", s->rsq.len);
	for (n = queue_head(&s->rsq); n != NULL; n = queue_next(&s->rsq, n)) {
		if (n->qkind == QN_CTL)
			bufcat(buf, len, &off, "control -> seq:%u flags:%u\n",
			       n->seq, qn_ctl(n)->flags);
		else
			bufcat(buf, len, &off, "object -> seq:%u\n", n->seq);
	}
	return (int)off;
}

static void print_queue(char *buf, size_t len, size_t *off, const char *name,
			uint64_t cur, uint64_t max, uint64_t nospc)
{
	bufcat(buf, len, off, "queue %s:\ncurrent elements:\t\t%12llu\n"
	       "maximum elements:\t\t%12llu\nnot enough space errors:\t%12llu\n\n",
	       name, (unsigned long long)cur, (unsigned long long)max,
	       (unsigned long long)nospc);
}

int sync_print_queues(const struct ctd *d, char *buf, size_t len)
{
	const struct sync *s = d->sync;
	uint64_t ecur = 0, emax = 0, enospc = 0;
	size_t off = 0;

	if (s == NULL || len == 0)
		return 0;
	buf[0] = '\0';
	if (d->chans)
		chanset_errq_stats(d->chans, &ecur, &emax, &enospc);
	else
		emax = d->conf->error_queue_length;
	bufcat(buf, len, &off, "allocated queue nodes:\t\t%12llu\n\n",
	       (unsigned long long)s->ctl_nodes);
	print_queue(buf, len, &off, "txqueue", s->txq.len + s->txctl.len, s->txq.max,
		    s->txq.nospace + s->txctl.nospace);
	print_queue(buf, len, &off, "errorq", ecur, emax, enospc);
	if (s->mode == SYNC_MODE_FTFW)
		print_queue(buf, len, &off, "rsqueue", s->rsq.len, s->rsq.max, s->rsq.nospace);
	return (int)off;
}
