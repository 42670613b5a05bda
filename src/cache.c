/*
 * Object caches: chained hash of struct ct or struct exp behind a lean
 * struct cache_obj header. An object leaves the hash (cache_del) but stays
 * allocated while a sync queue still references it, so a DESTROY can be
 * (re)transmitted from the last known state.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cache.h"

struct cache {
	char              name[16];
	enum obj_kind     kind;
	uint32_t          hashsize, hashlimit, seed;
	struct cache_obj **buckets;
	struct cache_stats st;
};

uint32_t cache_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
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
	c->hashsize = hashsize;
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

static uint32_t obj_hash(const struct cache *c, const void *obj)
{
	if (c->kind == OBJ_CT)
		return ct_hash(obj, c->seed);
	return exp_hash(obj, c->seed);
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

	for (o = c->buckets[h % c->hashsize]; o != NULL; o = o->hnext)
		if (o->hash == h && obj_equal(c, o, obj))
			return o;
	return NULL;
}

void cache_obj_free(struct cache_obj *o)
{
	if (o == NULL)
		return;
	if (o->kind == OBJ_CT)
		ct_release(cobj_ct(o));
	free(o);
}

void cache_obj_release(struct cache *c, struct cache_obj *o)
{
	if (o == NULL)
		return;
	if (c->st.objects > 0)
		c->st.objects--;
	cache_obj_free(o);
}

static void unhash(struct cache *c, struct cache_obj *o)
{
	struct cache_obj **pp = &c->buckets[o->hash % c->hashsize];

	for (; *pp != NULL; pp = &(*pp)->hnext) {
		if (*pp == o) {
			*pp = o->hnext;
			break;
		}
	}
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

static struct cache_obj *obj_new(struct cache *c, const void *obj, uint32_t h)
{
	size_t sz = sizeof(struct cache_obj) +
		(c->kind == OBJ_CT ? sizeof(struct ct) : sizeof(struct exp));
	struct cache_obj *o;

	if (c->st.hashed >= c->hashlimit) {
		c->st.add_fail++;
		c->st.add_enospc++;
		errno = ENOSPC;
		return NULL;
	}
	o = malloc(sz);
	if (o == NULL)
		goto nomem;
	memset(o, 0, sizeof(*o));
	if (c->kind == OBJ_CT) {
		memset(cobj_ct(o), 0, sizeof(struct ct));
		if (ct_copy(cobj_ct(o), obj) < 0) {
			free(o);
			goto nomem;
		}
	} else {
		memcpy(cobj_exp(o), obj, sizeof(struct exp));
	}
	o->kind = (uint8_t)c->kind;
	o->state = OBJ_NEW;
	o->hash = h;
	o->created = (uint32_t)time(NULL);
	o->updated = cache_now();
	o->flags = COBJ_F_HASHED;
	o->hnext = c->buckets[h % c->hashsize];
	c->buckets[h % c->hashsize] = o;
	c->st.hashed++;
	c->st.active++;
	c->st.objects++;
	c->st.add_ok++;
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

struct cache_obj *cache_update(struct cache *c, const void *obj)
{
	struct cache_obj *o = cache_find(c, obj);

	if (o == NULL || o->state == OBJ_DEAD)
		return cache_add(c, obj);
	if (c->kind == OBJ_CT) {
		if (ct_merge(cobj_ct(o), obj) < 0) {
			c->st.upd_fail++;
			errno = ENOMEM;
			return NULL;
		}
	} else {
		memcpy(cobj_exp(o), obj, sizeof(struct exp));
	}
	o->state = OBJ_ALIVE;
	o->updated = cache_now();
	c->st.upd_ok++;
	return o;
}

static int iterate_bucket(struct cache *c, uint32_t b, bool all,
			  cache_iter_cb cb, void *arg)
{
	struct cache_obj *o, *next;

	for (o = c->buckets[b]; o != NULL; o = next) {
		next = o->hnext;
		if (!all && o->state == OBJ_DEAD)
			continue;
		if (cb(o, arg) != 0)
			return 1;
	}
	return 0;
}

int cache_iterate(struct cache *c, cache_iter_cb cb, void *arg)
{
	for (uint32_t b = 0; b < c->hashsize; b++)
		if (iterate_bucket(c, b, false, cb, arg))
			return 1;
	return 0;
}

int cache_iterate_all(struct cache *c, cache_iter_cb cb, void *arg)
{
	for (uint32_t b = 0; b < c->hashsize; b++)
		if (iterate_bucket(c, b, true, cb, arg))
			return 1;
	return 0;
}

int cache_iterate_step(struct cache *c, uint32_t *pos, uint32_t nbuckets,
		       cache_iter_cb cb, void *arg)
{
	uint32_t end;

	if (*pos >= c->hashsize)
		return 1;
	end = c->hashsize - *pos > nbuckets ? *pos + nbuckets : c->hashsize;
	for (; *pos < end; (*pos)++) {
		if (iterate_bucket(c, *pos, false, cb, arg)) {
			*pos = c->hashsize;
			return 1;
		}
	}
	return *pos >= c->hashsize;
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
	free(c->buckets);
	free(c);
}
