/*
 * Object caches: a chained hash table of conntracks or expectations, sized
 * by HashSize and bounded by HashLimit. Four instances per daemon: internal
 * (this node's kernel) and external (peers' states), each for ct and exp.
 * Owned by the sync engine (src/cache.c).
 */
#ifndef CTD_CACHE_H
#define CTD_CACHE_H

#include <stdbool.h>
#include <stdint.h>
#include "obj.h"

enum obj_kind { OBJ_CT = 0, OBJ_EXP = 1 };
enum obj_state { OBJ_NEW = 0, OBJ_ALIVE = 1, OBJ_DEAD = 2 };

/* Queue linkage for the sync engine's tx and resend queues (src/queue.c). */
struct qnode {
	struct qnode *prev, *next;
	uint32_t seq;               /* sequence number it was last sent with */
	uint8_t  qid;               /* which queue holds it, 0 = none */
	uint8_t  qkind;             /* QN_OBJ or QN_CTL (src/queue.c) */
};

/*
 * 48 bytes + the object (struct ct: 144). Objects come from per-cache slabs
 * (no malloc header), so a cached conntrack costs 192 bytes plus its share
 * of the bucket array.
 */
#define CACHE_HASH_BITS 24
struct cache_obj {
	struct cache_obj *hnext;
	uint32_t kind : 1;          /* enum obj_kind */
	uint32_t state : 2;         /* enum obj_state */
	uint32_t flags : 5;         /* COBJ_F_* */
	uint32_t hash : CACHE_HASH_BITS; /* low bits of the key hash: chain
	                             * mismatches and rehashes never touch the
	                             * key's cache lines */
	uint32_t created;           /* wall-clock seconds: "[active since]" */
	uint32_t updated;           /* monotonic seconds of last create/update */
	uint32_t expires;           /* monotonic seconds (ALARM external), 0 = never */
	struct qnode qn;
	/* followed by struct ct or struct exp */
};

/* cache_obj.flags */
enum {
	COBJ_F_HASHED = 1u << 0,    /* in the hash table (else kept only by a queue) */
	COBJ_F_SEEN   = 1u << 1,    /* reported by the current resync dump */
	COBJ_F_ZSYNPROXY = 1u << 2, /* had an all-zero synproxy block, not stored */
};

static inline struct ct *cobj_ct(struct cache_obj *o) { return (struct ct *)(o + 1); }
static inline struct exp *cobj_exp(struct cache_obj *o) { return (struct exp *)(o + 1); }
static inline const struct ct *cobj_cct(const struct cache_obj *o) { return (const struct ct *)(o + 1); }
static inline const struct exp *cobj_cexp(const struct cache_obj *o) { return (const struct exp *)(o + 1); }

struct cache_stats {                /* as printed by -s cache */
	uint64_t active, objects;
	uint64_t hashed;            /* entries in the hash (-s cache "total entries") */
	uint64_t add_ok, add_fail, add_enomem, add_enospc;
	uint64_t upd_ok, upd_fail, upd_enoent;
	uint64_t del_ok, del_fail, del_enoent;
};

struct cache;

struct cache *cache_new(const char *name, enum obj_kind kind,
			uint32_t hashsize, uint32_t hashlimit);
void cache_free(struct cache *c);
const char *cache_name(const struct cache *c);
enum obj_kind cache_kind(const struct cache *c);

/* Find by key (ct: orig tuple + zone; exp: master + expected tuples). */
struct cache_obj *cache_find(struct cache *c, const void *obj);
/* Start loading obj's bucket: a lookup of it a little later (the next
 * received message) then finds it in the cache instead of waiting for it. */
uint32_t cache_prefetch(const struct cache *c, const void *obj);   /* returns the key's hash */
void cache_prefetch_chain(const struct cache *c, uint32_t hash);
/* Insert a copy of obj (struct ct or struct exp), replacing an existing one
 * with the same key. Returns NULL on ENOMEM/ENOSPC (counted). */
struct cache_obj *cache_add(struct cache *c, const void *obj);
/* Overwrite hashed object o (same key) with obj, as a new entry, keeping
 * its place in any queue. Returns o, or NULL on ENOMEM (o unchanged). */
struct cache_obj *cache_replace(struct cache *c, struct cache_obj *o, const void *obj);
/* Insert a copy of obj when the caller already looked it up and found
 * no entry with its key (saves a second chain walk). */
struct cache_obj *cache_insert(struct cache *c, const void *obj);
/* UPDATE semantics on an entry the caller found (live). */
struct cache_obj *cache_merge(struct cache *c, struct cache_obj *o, const void *obj);
/* Create-or-merge (UPDATE semantics). */
struct cache_obj *cache_update(struct cache *c, const void *obj);
/* Remove from the hash; freed now unless referenced by a queue (qn.qid). */
void cache_del(struct cache *c, struct cache_obj *o);
/* Release an object no longer hashed or queued (finds its cache). */
void cache_obj_free(struct cache_obj *o);
/* Same, when the cache is at hand. */
void cache_obj_release(struct cache *c, struct cache_obj *o);
/* Bytes held by the cache: slabs and bucket array (memory tests). */
size_t cache_mem_bytes(const struct cache *c);
/* Mark a hashed object dead (DESTROY pending): hidden from iteration. */
void cache_mark_dead(struct cache *c, struct cache_obj *o);
/*
 * The stored conntrack as it was given to the cache. ctnetlink-created
 * conntracks (every committed or injected one) carry an all-zero synproxy
 * block; the cache keeps it as a flag instead of a ~130-byte ct_ext per
 * entry. Whoever encodes or writes the object back (wire, kernel) takes
 * this view; printing does not need it. `tmp` and `xbuf` (CACHE_CT_XBUF
 * bytes) are the caller's scratch space; the result is valid until the
 * object changes.
 */
#define CACHE_CT_XBUF (sizeof(struct ct_ext) + CT_LABELS_MAX)
const struct ct *cache_ct_view(const struct cache_obj *o, struct ct *tmp, void *xbuf);

/* Seconds on the monotonic clock, the unit of updated/expires. */
uint32_t cache_now(void);
void cache_flush(struct cache *c);

typedef int (*cache_iter_cb)(struct cache_obj *o, void *arg);  /* != 0 stops */
/* Iterate over live (not dead) objects; the callback may delete the
 * current object. */
int  cache_iterate(struct cache *c, cache_iter_cb cb, void *arg);
/* Resumable iteration over buckets [*pos, *pos + nbuckets); for stepwise
 * commits and streamed dumps. Returns 1 when the end was reached (or the
 * callback stopped it), 0 if more buckets remain. */
int  cache_iterate_step(struct cache *c, uint32_t *pos, uint32_t nbuckets,
			cache_iter_cb cb, void *arg);
uint32_t cache_hashsize(const struct cache *c);
const struct cache_stats *cache_stats(const struct cache *c);
struct cache_stats *cache_stats_mut(struct cache *c);
/* Iterate every hashed object, dead ones included (flush, queue cleanup). */
int  cache_iterate_all(struct cache *c, cache_iter_cb cb, void *arg);

#endif
