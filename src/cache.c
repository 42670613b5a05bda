/*
 * Object caches: chained hash of struct ct or struct exp behind a lean
 * struct cache_obj header. An object leaves the hash (cache_del) but stays
 * allocated while a sync queue still references it, so a DESTROY can be
 * (re)transmitted from the last known state.
 *
 * Objects live in 1 MiB slabs aligned on their size: no per-object malloc
 * header, and the owning cache is found from the address alone. Slabs are
 * carved lazily (pages are touched only when used) and kept until the
 * cache is freed, so memory follows the peak, which HashLimit bounds.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/mman.h>

#include "cache.h"

#define SLAB_SIZE  (1u << 20)

struct slab {
	struct cache *c;
	struct slab  *next;
	uint32_t      carved;       /* objects handed out from this slab so far */
	/* Objects start cache-line aligned (192 = 3 lines for a conntrack). */
} __attribute__((aligned(64)));

struct cache {
	char              name[16];
	enum obj_kind     kind;
	uint32_t          hashsize, hashlimit, seed;
	uint32_t          mask;     /* hashsize - 1 if a power of two, else 0 */
	uintptr_t        *buckets;  /* chain head | filter << BUCKET_PTR_BITS */
	struct cache_stats st;
	size_t            objsz;
	uint32_t          per_slab, nslabs;
	struct slab      *slabs;    /* newest first; only the newest has uncarved room */
	struct cache_obj *freelist; /* linked through hnext */
	uint32_t          iterating; /* nested cache_iterate*() calls running */
	bool              step_open; /* a cache_iterate_step() walk is unfinished */
};

/*
 * A bucket is its chain's head pointer with a 16-bit filter in the top
 * bits (user-space pointers fit in 48 bits; slab_map() makes sure): bit
 * (hash >> 20) & 15 is set for every node in the chain. A lookup of a key
 * that is not cached (every new conntrack, on both sides) mostly stops at
 * the bucket instead of loading each node, a cache and TLB miss apiece.
 * Rebuilt from the nodes' stored hashes when a node leaves the chain.
 * Useful up to 2^20 buckets, where bits 20-23 stop differing in a chain.
 */
#define BUCKET_PTR_BITS 48
#define BUCKET_PTR_MASK (((uintptr_t)1 << BUCKET_PTR_BITS) - 1)

static struct cache_obj *b_head(uintptr_t b)
{
	return (struct cache_obj *)(b & BUCKET_PTR_MASK);
}

static uintptr_t b_filter(uintptr_t b)
{
	return b >> BUCKET_PTR_BITS;
}

static uintptr_t filter_bit(uint32_t h)
{
	return (uintptr_t)1 << ((h >> 20) & 15);
}

static uintptr_t b_make(struct cache_obj *head, uintptr_t filter)
{
	return (uintptr_t)head | (head ? filter << BUCKET_PTR_BITS : 0);
}

/* An exactly SLAB_SIZE-aligned mapping: map twice the size, trim both ends. */
static struct slab *slab_map(void)
{
	size_t len = 2 * (size_t)SLAB_SIZE;
	char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char *a;

	if (p == MAP_FAILED)
		return NULL;
	a = (char *)(((uintptr_t)p + SLAB_SIZE - 1) & ~(uintptr_t)(SLAB_SIZE - 1));
	if (a > p)
		munmap(p, (size_t)(a - p));
	if (a + SLAB_SIZE < p + len)
		munmap(a + SLAB_SIZE, (size_t)(p + len - (a + SLAB_SIZE)));
	/* Never seen without an address hint; the bucket filter needs it. */
	if (((uintptr_t)a + SLAB_SIZE - 1) >> BUCKET_PTR_BITS) {
		munmap(a, SLAB_SIZE);
		return NULL;
	}
	return (struct slab *)a;
}

static struct cache_obj *slab_alloc(struct cache *c)
{
	struct cache_obj *o = c->freelist;
	struct slab *sl = c->slabs;

	if (o != NULL) {
		struct cache_obj *next = o->hnext;

		c->freelist = next;
		/* Freed objects are linked in the order they died, scattered
		 * over the slabs: fetch the next one now, so that the next
		 * allocation (and its memset) does not wait for memory. This
		 * load was 96% of obj_new with a recycled freelist. */
		if (next != NULL)
			for (size_t off = 0; off < c->objsz; off += 64)
				__builtin_prefetch((char *)next + off, 1, 3);
		return o;
	}
	if (sl == NULL || sl->carved == c->per_slab) {
		sl = slab_map();
		if (sl == NULL)
			return NULL;
		sl->c = c;
		sl->next = c->slabs;
		sl->carved = 0;
		c->slabs = sl;
		c->nslabs++;
	}
	o = (struct cache_obj *)((char *)(sl + 1) + (size_t)sl->carved * c->objsz);
	sl->carved++;
	return o;
}

static void slab_free(struct cache *c, struct cache_obj *o)
{
	o->flags &= ~COBJ_F_HASHED;     /* maybe_grow() walks the slabs */
	o->hnext = c->freelist;
	c->freelist = o;
}

size_t cache_mem_bytes(const struct cache *c)
{
	return sizeof(*c) + (size_t)c->hashsize * sizeof(*c->buckets) +
		(size_t)c->nslabs * SLAB_SIZE;
}

static uint32_t pow2_mask(uint32_t size)
{
	return (size & (size - 1)) == 0 ? size - 1 : 0;
}

/* Seconds only: the coarse clock is a plain vDSO read (the precise one
 * costs ~50-100 ns in a VM), and this runs for every cached message. */
uint32_t cache_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint32_t)ts.tv_sec;
}

struct cache *cache_new(const char *name, enum obj_kind kind,
			uint32_t hashsize, uint32_t hashlimit)
{
	struct cache *c;
	struct timespec ts;

	if (hashsize == 0)
		hashsize = 1;
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return NULL;
	c->buckets = calloc(hashsize, sizeof(*c->buckets));
	if (c->buckets == NULL) {
		free(c);
		return NULL;
	}
	strncpy(c->name, name, sizeof(c->name) - 1);
	c->kind = kind;
	c->objsz = sizeof(struct cache_obj) +
		(kind == OBJ_CT ? sizeof(struct ct) : sizeof(struct exp));
	c->objsz = (c->objsz + 7) & ~(size_t)7;
	c->per_slab = (uint32_t)((SLAB_SIZE - sizeof(struct slab)) / c->objsz);
	c->hashsize = hashsize;
	c->mask = pow2_mask(hashsize);
	c->hashlimit = hashlimit;
	/* A per-cache seed so peers cannot aim entries at one bucket. */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	c->seed = (uint32_t)(ts.tv_nsec ^ (ts.tv_sec << 16) ^ (uintptr_t)c);
	return c;
}

const char *cache_name(const struct cache *c) { return c->name; }
enum obj_kind cache_kind(const struct cache *c) { return c->kind; }
uint32_t cache_hashsize(const struct cache *c) { return c->hashsize; }
const struct cache_stats *cache_stats(const struct cache *c) { return &c->st; }
struct cache_stats *cache_stats_mut(struct cache *c) { return &c->st; }

/* The key hash as the node stores it (CACHE_HASH_BITS wide). */
#define HASH_MASK ((1u << CACHE_HASH_BITS) - 1)
static uint32_t obj_hash(const struct cache *c, const void *obj)
{
	if (c->kind == OBJ_CT)
		return ct_hash(obj, c->seed) & HASH_MASK;
	return exp_hash(obj, c->seed) & HASH_MASK;
}

static uint32_t bucket_of(const struct cache *c, uint32_t h)
{
	return c->mask ? h & c->mask : h % c->hashsize;
}


static bool obj_equal(const struct cache *c, const struct cache_obj *o,
		      const void *obj)
{
	if (c->kind == OBJ_CT)
		return ct_key_equal(cobj_cct(o), obj);
	return exp_key_equal(cobj_cexp(o), obj);
}

struct cache_obj *cache_find(struct cache *c, const void *obj)
{
	uint32_t h = obj_hash(c, obj);
	struct cache_obj *o;

	uintptr_t b = c->buckets[bucket_of(c, h)];

	if (!(b_filter(b) & filter_bit(h)))
		return NULL;
	for (o = b_head(b); o != NULL; o = o->hnext)
		if (o->hash == h && obj_equal(c, o, obj))
			return o;
	return NULL;
}

uint32_t cache_prefetch(const struct cache *c, const void *obj)
{
	uint32_t h = obj_hash(c, obj);

	__builtin_prefetch(&c->buckets[bucket_of(c, h)], 1, 3);
	return h;
}

/* Once the bucket has arrived: its chain's first node, if the filter says
 * the key may be there (a filter hit was 71% of a receiver's cache_find). */
void cache_prefetch_chain(const struct cache *c, uint32_t h)
{
	uintptr_t b = c->buckets[bucket_of(c, h)];

	if (b_filter(b) & filter_bit(h))
		__builtin_prefetch(b_head(b), 0, 3);
}

void cache_obj_release(struct cache *c, struct cache_obj *o)
{
	if (o == NULL)
		return;
	if (c->st.objects > 0)
		c->st.objects--;
	if (o->kind == OBJ_CT)
		ct_release(cobj_ct(o));
	slab_free(c, o);
}

void cache_obj_free(struct cache_obj *o)
{
	struct slab *sl;

	if (o == NULL)
		return;
	sl = (struct slab *)((uintptr_t)o & ~(uintptr_t)(SLAB_SIZE - 1));
	cache_obj_release(sl->c, o);
}

static void unhash(struct cache *c, struct cache_obj *o)
{
	uintptr_t *bp = &c->buckets[bucket_of(c, o->hash)];
	struct cache_obj *head = b_head(*bp), *prev = NULL, *p;
	uintptr_t filter = 0;

	for (p = head; p != NULL && p != o; p = p->hnext)
		prev = p;
	if (p == o) {
		if (prev != NULL)
			prev->hnext = o->hnext;
		else
			head = o->hnext;
	}
	for (p = head; p != NULL; p = p->hnext)
		filter |= filter_bit(p->hash);
	*bp = b_make(head, filter);
	o->hnext = NULL;
	o->flags &= ~COBJ_F_HASHED;
	c->st.hashed--;
	if (o->state != OBJ_DEAD)
		c->st.active--;
}

void cache_del(struct cache *c, struct cache_obj *o)
{
	if (o->flags & COBJ_F_HASHED) {
		unhash(c, o);
		c->st.del_ok++;
	}
	if (o->qn.qid != 0) {
		/* A queue still points at it: it leaves as DESTROY. */
		o->state = OBJ_DEAD;
		return;
	}
	cache_obj_release(c, o);
}

void cache_mark_dead(struct cache *c, struct cache_obj *o)
{
	if (o->state == OBJ_DEAD)
		return;
	o->state = OBJ_DEAD;
	if (o->flags & COBJ_F_HASHED)
		c->st.active--;
}

#define CT_EXT_HAVE (CT_H_MASTER | CT_H_MASTER_PORTS | CT_H_SEQADJ | CT_H_LABELS | \
		     CT_H_SYNPROXY | CT_H_COUNTERS | CT_H_TIMESTAMP)

/* Drop an ext that holds nothing but an all-zero synproxy block (see
 * cache_ct_view): the common case for ctnetlink-created conntracks. */
static void ct_compact(struct cache_obj *o)
{
	struct ct *ct = cobj_ct(o);
	uint32_t ext = ct->have & CT_EXT_HAVE;

	if (ct->have & CT_H_SYNPROXY)
		o->flags &= ~COBJ_F_ZSYNPROXY;
	if (ct->ext == NULL)
		return;
	if (ext == 0) {
		free(ct->ext);
		ct->ext = NULL;
		return;
	}
	if (ext != CT_H_SYNPROXY ||
	    (ct->ext->synproxy[0] | ct->ext->synproxy[1] | ct->ext->synproxy[2]) != 0)
		return;
	free(ct->ext);
	ct->ext = NULL;
	ct->have &= ~CT_H_SYNPROXY;
	o->flags |= COBJ_F_ZSYNPROXY;
}

/*
 * ct_copy() into a new node, without the ext that ct_compact() would free
 * at once: one holding nothing, or only an all-zero synproxy block (the
 * kernel's for every ctnetlink-created conntrack). A malloc and a free
 * less per new entry, on the sender and on the receiver.
 */
static int ct_store(struct ct *dst, const struct ct *src, bool *zsyn)
{
	const struct ct_ext *x = src->ext;
	uint32_t ext = src->have & CT_EXT_HAVE;

	if (x != NULL && (ext == 0 || (ext == CT_H_SYNPROXY &&
	    (x->synproxy[0] | x->synproxy[1] | x->synproxy[2]) == 0))) {
		*dst = *src;
		dst->ext = NULL;
		if (ext != 0) {
			dst->have &= ~CT_H_SYNPROXY;
			*zsyn = true;
		}
		return 0;
	}
	return ct_copy(dst, src);
}

const struct ct *cache_ct_view(const struct cache_obj *o, struct ct *tmp, void *xbuf)
{
	const struct ct *ct = cobj_cct(o);
	struct ct_ext *x = xbuf;

	if (o->kind != OBJ_CT || !(o->flags & COBJ_F_ZSYNPROXY))
		return ct;
	*tmp = *ct;
	if (ct->ext != NULL && ct->ext->labels_len <= CT_LABELS_MAX)
		memcpy(x, ct->ext, sizeof(*x) + ct->ext->labels_len);
	else
		memset(x, 0, sizeof(*x));
	memset(x->synproxy, 0, sizeof(x->synproxy));
	tmp->ext = x;
	tmp->have |= CT_H_SYNPROXY;
	return tmp;
}

/*
 * HashSize is only the initial size: past 2 entries per bucket the table
 * doubles, rehashed at once (log2 times in a cache's life; ~10 ms at 200k)
 * from the hashes the nodes keep, so a rehash reads one cache line per
 * entry. Never beyond 2^CACHE_HASH_BITS buckets: the stored hash is the
 * bucket index's whole input.
 * Doubling maps bucket b to b or b + old size, so a stepwise walk resumed
 * after a growth skips nothing; growth still waits while one is unfinished
 * (it could see an entry twice) or while a callback runs. Buckets stay
 * below HashLimit, and at <= 8 bytes per entry (doc/notes/perf.md).
 * Tables configured below CACHE_GROW_MIN buckets stay fixed: unit tests
 * rely on exact bucket counts (see doc/notes/perf.md).
 */
#define CACHE_GROW_MIN 1024
static void maybe_grow(struct cache *c)
{
	uint64_t nsize = (uint64_t)c->hashsize * 2;
	uint32_t nmask = pow2_mask((uint32_t)nsize);
	uintptr_t *nb;

	if (c->st.hashed <= nsize || c->hashsize < CACHE_GROW_MIN || nsize > c->hashlimit ||
	    nsize > (1u << CACHE_HASH_BITS) || c->iterating != 0 || c->step_open)
		return;
	nb = calloc((size_t)nsize, sizeof(*nb));
	if (nb == NULL)
		return;         /* longer chains, nothing lost */
	/* Walk the slabs in address order, not the chains: the hardware
	 * prefetcher streams them, where a chain walk misses the cache (and
	 * often the TLB) on every node of a table that outgrew both: the
	 * growths to 200k entries cost one such miss per entry. Freed objects
	 * are not HASHED (slab_free clears it) and are skipped. */
	for (struct slab *sl = c->slabs; sl != NULL; sl = sl->next) {
		char *base = (char *)(sl + 1);

		for (uint32_t i = 0; i < sl->carved; i++) {
			struct cache_obj *o = (struct cache_obj *)(base + (size_t)i * c->objsz);
			uint32_t nbk;

			if (!(o->flags & COBJ_F_HASHED))
				continue;
			nbk = nmask ? o->hash & nmask : o->hash % (uint32_t)nsize;
			o->hnext = b_head(nb[nbk]);
			nb[nbk] = b_make(o, b_filter(nb[nbk]) | filter_bit(o->hash));
		}
	}
	free(c->buckets);
	c->buckets = nb;
	c->hashsize = (uint32_t)nsize;
	c->mask = nmask;
}

static struct cache_obj *obj_new(struct cache *c, const void *obj, uint32_t h)
{
	size_t sz = sizeof(struct cache_obj) +
		(c->kind == OBJ_CT ? sizeof(struct ct) : sizeof(struct exp));
	struct cache_obj *o;
	bool zsyn = false;

	if (c->st.hashed >= c->hashlimit) {
		c->st.add_fail++;
		c->st.add_enospc++;
		errno = ENOSPC;
		return NULL;
	}
	o = slab_alloc(c);
	if (o == NULL)
		goto nomem;
	memset(o, 0, sz);
	if (c->kind == OBJ_CT) {
		if (ct_store(cobj_ct(o), obj, &zsyn) < 0) {
			slab_free(c, o);
			goto nomem;
		}
	} else {
		memcpy(cobj_exp(o), obj, sizeof(struct exp));
	}
	o->kind = (uint8_t)c->kind;
	o->state = OBJ_NEW;
	o->created = (uint32_t)time(NULL);
	o->updated = cache_now();
	o->flags = COBJ_F_HASHED | (zsyn ? COBJ_F_ZSYNPROXY : 0);
	o->hash = h;
	if (c->kind == OBJ_CT)
		ct_compact(o);
	{
		uintptr_t *bp = &c->buckets[bucket_of(c, h)];

		o->hnext = b_head(*bp);
		*bp = b_make(o, b_filter(*bp) | filter_bit(h));
	}
	c->st.hashed++;
	c->st.active++;
	c->st.objects++;
	c->st.add_ok++;
	maybe_grow(c);
	return o;
nomem:
	c->st.add_fail++;
	c->st.add_enomem++;
	errno = ENOMEM;
	return NULL;
}

struct cache_obj *cache_add(struct cache *c, const void *obj)
{
	uint32_t h = obj_hash(c, obj);
	struct cache_obj *old = cache_find(c, obj);

	if (old != NULL) {
		/* Replacing is not a deletion for the counters. */
		unhash(c, old);
		if (old->qn.qid != 0)
			old->state = OBJ_DEAD;
		else
			cache_obj_release(c, old);
	}
	return obj_new(c, obj, h);
}

struct cache_obj *cache_replace(struct cache *c, struct cache_obj *o, const void *obj)
{
	if (c->kind == OBJ_CT) {
		struct ct tmp;

		memset(&tmp, 0, sizeof(tmp));
		if (ct_copy(&tmp, obj) < 0) {
			c->st.add_fail++;
			c->st.add_enomem++;
			errno = ENOMEM;
			return NULL;
		}
		ct_release(cobj_ct(o));
		*cobj_ct(o) = tmp;
		o->flags &= ~COBJ_F_ZSYNPROXY;
		ct_compact(o);
	} else {
		memcpy(cobj_exp(o), obj, sizeof(struct exp));
	}
	if (o->state == OBJ_DEAD && (o->flags & COBJ_F_HASHED))
		c->st.active++;
	o->state = OBJ_NEW;
	o->created = (uint32_t)time(NULL);
	o->updated = cache_now();
	c->st.add_ok++;
	return o;
}

struct cache_obj *cache_insert(struct cache *c, const void *obj)
{
	return obj_new(c, obj, obj_hash(c, obj));
}

struct cache_obj *cache_merge(struct cache *c, struct cache_obj *o, const void *obj)
{
	if (c->kind == OBJ_CT) {
		if (ct_merge(cobj_ct(o), obj) < 0) {
			c->st.upd_fail++;
			errno = ENOMEM;
			return NULL;
		}
		ct_compact(o);
	} else {
		memcpy(cobj_exp(o), obj, sizeof(struct exp));
	}
	o->state = OBJ_ALIVE;
	o->updated = cache_now();
	c->st.upd_ok++;
	return o;
}

struct cache_obj *cache_update(struct cache *c, const void *obj)
{
	struct cache_obj *o = cache_find(c, obj);

	if (o == NULL || o->state == OBJ_DEAD)
		return cache_add(c, obj);
	return cache_merge(c, o, obj);
}

static int iterate_bucket(struct cache *c, uint32_t b, bool all,
			  cache_iter_cb cb, void *arg)
{
	struct cache_obj *o, *next;

	for (o = b_head(c->buckets[b]); o != NULL; o = next) {
		next = o->hnext;
		if (!all && o->state == OBJ_DEAD)
			continue;
		if (cb(o, arg) != 0)
			return 1;
	}
	return 0;
}

static int iterate(struct cache *c, bool all, cache_iter_cb cb, void *arg)
{
	int r = 0;

	c->iterating++;
	for (uint32_t b = 0; b < c->hashsize && r == 0; b++)
		r = iterate_bucket(c, b, all, cb, arg);
	c->iterating--;
	return r;
}

int cache_iterate(struct cache *c, cache_iter_cb cb, void *arg)
{
	return iterate(c, false, cb, arg);
}

int cache_iterate_all(struct cache *c, cache_iter_cb cb, void *arg)
{
	return iterate(c, true, cb, arg);
}

int cache_iterate_step(struct cache *c, uint32_t *pos, uint32_t nbuckets,
		       cache_iter_cb cb, void *arg)
{
	uint32_t end;
	int r = 0;

	if (*pos >= c->hashsize) {
		c->step_open = false;
		return 1;
	}
	c->iterating++;
	end = c->hashsize - *pos > nbuckets ? *pos + nbuckets : c->hashsize;
	for (; *pos < end; (*pos)++) {
		if (iterate_bucket(c, *pos, false, cb, arg)) {
			*pos = c->hashsize;
			r = 1;
			break;
		}
	}
	c->iterating--;
	if (*pos >= c->hashsize)
		r = 1;
	c->step_open = r == 0;
	return r;
}

static int flush_one(struct cache_obj *o, void *arg)
{
	struct cache *c = arg;

	unhash(c, o);
	if (o->qn.qid != 0)
		o->state = OBJ_DEAD;    /* the queue owner frees it */
	else
		cache_obj_release(c, o);
	return 0;
}

void cache_flush(struct cache *c)
{
	cache_iterate_all(c, flush_one, c);
}

void cache_free(struct cache *c)
{
	if (c == NULL)
		return;
	cache_flush(c);
	while (c->slabs) {
		struct slab *sl = c->slabs;

		c->slabs = sl->next;
		munmap(sl, SLAB_SIZE);
	}
	free(c->buckets);
	free(c);
}
