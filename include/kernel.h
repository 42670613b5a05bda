/*
 * Writing to the kernel: batched conntrack/expectation creation (commit),
 * direct injection (DisableExternalCache), deletion and table flushes.
 * Requests are built straight from struct ct / struct exp (obj_nlbuild.h)
 * into one large buffer and sent in batches over a libmnl socket; errors come back
 * per request (NLM_F_ACK) and are reported through a callback.
 * Owned by src/kernel.c.
 */
#ifndef CTD_KERNEL_H
#define CTD_KERNEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "obj.h"

struct kbatch;

enum kop {
	KOP_CT_CREATE,              /* create; on EEXIST delete + create */
	KOP_CT_UPDATE,              /* update; ENOENT -> create (inject semantics) */
	KOP_CT_DELETE,              /* ENOENT ignored */
	KOP_EXP_CREATE,             /* on EEXIST delete + create */
	KOP_EXP_DELETE,
};

/* Which message of a request an answer belongs to (retry rules). */
enum kstage {
	KST_CREATE,                 /* first create attempt */
	KST_UPDATE,                 /* update of an existing entry */
	KST_DELETE,                 /* delete asked by the caller */
	KST_PRE_DELETE,             /* delete before re-creating (errors ignored) */
	KST_RECREATE,               /* create after the delete ("even when deleting it first") */
	KST_UPD_CREATE,             /* create after update ENOENT ("even if creating it instead") */
};

/* Called once per failed request (after the retry rules of the op). */
typedef void (*kbatch_err_cb)(void *arg, enum kop op, const void *obj, int err);

struct kernel_ct_opts {
	uint32_t commit_timeout;    /* 0 = derive from the object */
	bool tcp_window_tracking;   /* off: set BE_LIBERAL on both directions */
};

/* `origin` tags which socket this is (commit or inject) for event filtering. */
struct kbatch *kbatch_new(kbatch_err_cb cb, void *arg);
void kbatch_free(struct kbatch *b);
uint32_t kbatch_portid(const struct kbatch *b);
/* Queue a request; sends automatically when the buffer is full. The
 * timeout used for ct creation is `timeout` (seconds, 0 = none). */
int  kbatch_ct(struct kbatch *b, enum kop op, const struct ct *ct,
	       uint32_t timeout, const struct kernel_ct_opts *o);
int  kbatch_exp(struct kbatch *b, enum kop op, const struct exp *e, uint32_t timeout);
/* Send what is queued and wait for every answer. Returns the number of
 * failed requests (each already reported), or -1 on socket error. */
int  kbatch_flush(struct kbatch *b);
/* During the error callback: the stage that failed (for the log text). */
enum kstage kbatch_err_stage(const struct kbatch *b);
/* Requests queued and not yet sent. */
size_t kbatch_pending(const struct kbatch *b);
/* Counters since creation. */
uint64_t kbatch_ok(const struct kbatch *b);
uint64_t kbatch_failed(const struct kbatch *b);

/* Delete every kernel conntrack (or expectation) for which accept() says
 * yes (-F, -t). Returns the number deleted or -1. */
typedef bool (*kernel_ct_pred)(const struct ct *ct, void *arg);
long kernel_flush_ct(kernel_ct_pred accept, void *arg, uint32_t *portid);
long kernel_flush_exp(void);

#endif
