/*
 * Cache behaviour the daemon relies on: keys (tuple + zone), replace and
 * merge semantics, HashLimit, dead objects kept while queued, iteration
 * with deletion, stepwise iteration, the -s cache counters, and memory.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <malloc.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <cmocka.h>

#include "cache.h"
#include "queue.h"
#include "wire.h"

static struct ct mkct(uint32_t i, uint16_t zone)
{
	struct ct ct;

	memset(&ct, 0, sizeof(ct));
	ct.orig.l3 = AF_INET;
	ct.orig.l4 = IPPROTO_TCP;
	ct.orig.src.v4 = htonl(0x0a000000 | i);
	ct.orig.dst.v4 = htonl(0x14000001);
	ct.orig.sport = htons((uint16_t)(1024 + (i % 50000)));
	ct.orig.dport = htons(80);
	ct.have = CT_H_ORIG | CT_H_PORTS | CT_H_STATUS | CT_H_TIMEOUT;
	ct.status = 8;
	ct.timeout = 120;
	if (zone) {
		ct.zone = zone;
		ct.have |= CT_H_ZONE;
	}
	return ct;
}

static void add_find_replace(void **state)
{
	struct cache *c = cache_new("internal", OBJ_CT, 64, 1000);
	struct ct a = mkct(1, 0), b = mkct(2, 0);
	struct cache_obj *o, *o2;

	(void)state;
	o = cache_add(c, &a);
	assert_non_null(o);
	assert_int_equal(o->state, OBJ_NEW);
	assert_ptr_equal(cache_find(c, &a), o);
	assert_null(cache_find(c, &b));
	/* same key: replaced, not duplicated */
	a.timeout = 99;
	o2 = cache_add(c, &a);
	assert_non_null(o2);
	assert_ptr_equal(cache_find(c, &a), o2);
	assert_int_equal(cobj_ct(o2)->timeout, 99);
	assert_int_equal(cache_stats(c)->hashed, 1);
	assert_int_equal(cache_stats(c)->active, 1);
	assert_int_equal(cache_stats(c)->objects, 1);
	assert_int_equal(cache_stats(c)->add_ok, 2);
	cache_free(c);
}

static void zone_is_part_of_key(void **state)
{
	struct cache *c = cache_new("external", OBJ_CT, 64, 1000);
	struct ct a = mkct(1, 0), z = mkct(1, 7);

	(void)state;
	assert_non_null(cache_add(c, &a));
	assert_non_null(cache_add(c, &z));
	assert_int_equal(cache_stats(c)->hashed, 2);
	assert_int_equal(cobj_ct(cache_find(c, &z))->zone, 7);
	cache_free(c);
}

static void update_merges_or_creates(void **state)
{
	struct cache *c = cache_new("internal", OBJ_CT, 64, 1000);
	struct ct a = mkct(1, 0), upd = mkct(1, 0);
	struct cache_obj *o;

	(void)state;
	/* create path */
	o = cache_update(c, &a);
	assert_non_null(o);
	assert_int_equal(o->state, OBJ_NEW);
	assert_int_equal(cache_stats(c)->add_ok, 1);
	/* merge: present attributes overwrite, absent ones are kept */
	upd.have = CT_H_ORIG | CT_H_PORTS | CT_H_MARK;
	upd.mark = 42;
	upd.timeout = 0;
	o = cache_update(c, &upd);
	assert_non_null(o);
	assert_int_equal(o->state, OBJ_ALIVE);
	assert_int_equal(cobj_ct(o)->mark, 42);
	assert_true(cobj_ct(o)->have & CT_H_MARK);
	assert_int_equal(cobj_ct(o)->timeout, 120);
	assert_int_equal(cache_stats(c)->upd_ok, 1);
	assert_int_equal(cache_stats(c)->hashed, 1);
	cache_free(c);
}

static int count_cb(struct cache_obj *o, void *arg)
{
	(void)o;
	(*(int *)arg)++;
	return 0;
}

static void delete_and_queued_dead(void **state)
{
	struct cache *c = cache_new("internal", OBJ_CT, 64, 1000);
	struct ct a = mkct(1, 0), b = mkct(2, 0);
	struct cache_obj *oa, *ob;
	int n = 0;

	(void)state;
	oa = cache_add(c, &a);
	ob = cache_add(c, &b);
	cache_del(c, oa);
	assert_null(cache_find(c, &a));
	assert_int_equal(cache_stats(c)->del_ok, 1);
	assert_int_equal(cache_stats(c)->objects, 1);

	/* dead but hashed: hidden from iteration, not "active" */
	cache_mark_dead(c, ob);
	assert_int_equal(cache_stats(c)->active, 0);
	assert_int_equal(cache_stats(c)->hashed, 1);
	cache_iterate(c, count_cb, &n);
	assert_int_equal(n, 0);
	/* a queued object survives its deletion until the queue lets go */
	ob->qn.qid = QID_RS;
	cache_del(c, ob);
	assert_null(cache_find(c, &b));
	assert_int_equal(cache_stats(c)->hashed, 0);
	assert_int_equal(cache_stats(c)->objects, 1);
	assert_int_equal(ob->state, OBJ_DEAD);
	assert_false(ob->flags & COBJ_F_HASHED);
	ob->qn.qid = QID_NONE;
	cache_obj_release(c, ob);
	assert_int_equal(cache_stats(c)->objects, 0);
	cache_free(c);
}

static void hashlimit_is_no_space(void **state)
{
	struct cache *c = cache_new("external", OBJ_CT, 16, 3);
	struct ct ct;

	(void)state;
	for (uint32_t i = 0; i < 3; i++) {
		ct = mkct(i, 0);
		assert_non_null(cache_add(c, &ct));
	}
	ct = mkct(99, 0);
	assert_null(cache_add(c, &ct));
	assert_null(cache_update(c, &ct));
	assert_int_equal(cache_stats(c)->add_fail, 2);
	assert_int_equal(cache_stats(c)->add_enospc, 2);
	assert_int_equal(cache_stats(c)->add_enomem, 0);
	assert_int_equal(cache_stats(c)->hashed, 3);
	/* replacing an existing key still works at the limit */
	ct = mkct(1, 0);
	assert_non_null(cache_add(c, &ct));
	cache_free(c);
}

struct del_arg { struct cache *c; int seen; };

static int del_even(struct cache_obj *o, void *arg)
{
	struct del_arg *a = arg;

	a->seen++;
	if ((ntohl(cobj_ct(o)->orig.src.v4) & 1) == 0)
		cache_del(a->c, o);
	return 0;
}

static void iterate_with_deletion(void **state)
{
	struct cache *c = cache_new("internal", OBJ_CT, 8, 1000);
	struct del_arg a = { c, 0 };
	int n = 0;

	(void)state;
	for (uint32_t i = 0; i < 200; i++) {
		struct ct ct = mkct(i, 0);

		assert_non_null(cache_add(c, &ct));
	}
	cache_iterate(c, del_even, &a);
	assert_int_equal(a.seen, 200);
	cache_iterate(c, count_cb, &n);
	assert_int_equal(n, 100);
	assert_int_equal(cache_stats(c)->del_ok, 100);
	cache_flush(c);
	assert_int_equal(cache_stats(c)->objects, 0);
	assert_int_equal(cache_stats(c)->hashed, 0);
	cache_free(c);
}

static int mark_seen(struct cache_obj *o, void *arg)
{
	(void)arg;
	assert_false(o->flags & COBJ_F_SEEN);       /* visited exactly once */
	o->flags |= COBJ_F_SEEN;
	return 0;
}

static void stepwise_iteration(void **state)
{
	struct cache *c = cache_new("external", OBJ_CT, 64, 5000);
	uint32_t pos = 0;
	int steps = 0, n = 0;

	(void)state;
	for (uint32_t i = 0; i < 1000; i++) {
		struct ct ct = mkct(i, 0);

		assert_non_null(cache_add(c, &ct));
	}
	while (!cache_iterate_step(c, &pos, 10, mark_seen, NULL))
		steps++;
	assert_int_equal(steps + 1, 7);     /* 64 buckets by 10 */
	assert_int_equal(pos, 64);
	assert_int_equal(cache_iterate_step(c, &pos, 10, mark_seen, NULL), 1);
	cache_iterate(c, count_cb, &n);
	assert_int_equal(n, 1000);
	cache_free(c);
}

static void expectation_cache(void **state)
{
	struct cache *c = cache_new("internal", OBJ_EXP, 64, 100);
	struct exp e;
	struct cache_obj *o;

	(void)state;
	memset(&e, 0, sizeof(e));
	e.master.l3 = e.expected.l3 = AF_INET;
	e.master.l4 = e.expected.l4 = IPPROTO_TCP;
	e.master.src.v4 = htonl(0x0a000001);
	e.expected.dport = htons(2000);
	e.have = EXP_H_MASTER | EXP_H_EXPECTED | EXP_H_TIMEOUT;
	e.timeout = 300;
	o = cache_add(c, &e);
	assert_non_null(o);
	assert_int_equal(o->kind, OBJ_EXP);
	e.timeout = 10;
	o = cache_update(c, &e);
	assert_int_equal(cobj_exp(o)->timeout, 10);
	assert_int_equal(cache_stats(c)->hashed, 1);
	e.expected.dport = htons(2001);
	assert_null(cache_find(c, &e));
	cache_free(c);
}

/* ctnetlink-created conntracks carry an all-zero synproxy block: not
 * stored per entry, but given back by cache_ct_view (the wire stays the
 * same byte for byte). */
static void zero_synproxy_not_stored(void **state)
{
	struct cache *c = cache_new("external", OBJ_CT, 64, 100);
	struct ct a = mkct(1, 0), b = mkct(2, 0), upd = mkct(1, 0), tmp;
	uint64_t xbuf[CACHE_CT_XBUF / 8 + 1];
	struct wire_tx_opts wo = { 0 };
	uint8_t m1[512], m2[512];
	const struct ct *v;
	struct cache_obj *o;
	int l1, l2;

	(void)state;
	ct_ext_get(&a, 0);
	a.have |= CT_H_SYNPROXY;                /* all zero */
	o = cache_add(c, &a);
	assert_null(cobj_ct(o)->ext);
	assert_true(o->flags & COBJ_F_ZSYNPROXY);
	v = cache_ct_view(o, &tmp, xbuf);
	assert_true(v->have & CT_H_SYNPROXY);
	l1 = wire_put_ct(m1, sizeof(m1), WT_CT_NEW, 0, 1, &a, &wo);
	l2 = wire_put_ct(m2, sizeof(m2), WT_CT_NEW, 0, 1, v, &wo);
	assert_true(l1 > 0);
	assert_int_equal(l1, l2);
	assert_memory_equal(m1, m2, (size_t)l1);
	/* an update without synproxy keeps it; a real one replaces it */
	upd.have = CT_H_ORIG | CT_H_PORTS | CT_H_MARK;
	upd.mark = 3;
	o = cache_update(c, &upd);
	assert_true(o->flags & COBJ_F_ZSYNPROXY);
	ct_ext_get(&upd, 0)->synproxy[1] = 77;
	upd.have |= CT_H_SYNPROXY;
	o = cache_update(c, &upd);
	assert_false(o->flags & COBJ_F_ZSYNPROXY);
	assert_int_equal(cache_ct_view(o, &tmp, xbuf)->ext->synproxy[1], 77);
	/* a non-zero block is stored as is */
	ct_ext_get(&b, 0)->synproxy[0] = 5;
	b.have |= CT_H_SYNPROXY;
	o = cache_add(c, &b);
	assert_non_null(cobj_ct(o)->ext);
	assert_false(o->flags & COBJ_F_ZSYNPROXY);
	ct_release(&a);
	ct_release(&b);
	ct_release(&upd);
	cache_free(c);
}

/* The large table: 200,000 conntracks in a default-sized cache. */
static void memory_per_entry(void **state)
{
	const uint32_t n = 200000;
	struct cache *c = cache_new("internal", OBJ_CT, 65536, 262144);
	struct mallinfo2 before, after;
	double per;
	size_t mem;

	(void)state;
	before = mallinfo2();
	for (uint32_t i = 0; i < n; i++) {
		struct ct ct = mkct(i, 0);

		ct.orig.dst.v4 = htonl(0x14000000 | (i >> 16));
		if (i % 2) {            /* as ctnetlink-created entries come */
			ct_ext_get(&ct, 0);
			ct.have |= CT_H_SYNPROXY;
		}
		assert_non_null(cache_add(c, &ct));
		ct_release(&ct);
	}
	after = mallinfo2();
	assert_int_equal(cache_stats(c)->hashed, n);
	per = (double)(cache_mem_bytes(c) + (after.uordblks - before.uordblks)) / n;
	print_message("sizeof(cache_obj)=%zu sizeof(ct)=%zu; %.1f bytes per entry "
		      "incl. slab, hash buckets, queue linkage and malloc'd extras (%.1f)\n",
		      sizeof(struct cache_obj), sizeof(struct ct), per,
		      (double)(after.uordblks - before.uordblks) / n);
	assert_true(per <= 200.0);
	/* freed objects are reused, not piled up */
	for (uint32_t i = 0; i < 1000; i++) {
		struct ct ct = mkct(i, 0);

		ct.orig.dst.v4 = htonl(0x14000000 | (i >> 16));
		cache_del(c, cache_find(c, &ct));
	}
	mem = cache_mem_bytes(c);
	for (uint32_t i = 0; i < 1000; i++) {
		struct ct ct = mkct(n + i, 7);

		assert_non_null(cache_add(c, &ct));
	}
	assert_int_equal(cache_mem_bytes(c), mem);
	cache_free(c);
}

/* Growth rehashes from the hash each node keeps: every entry stays
 * findable and deletable, for power-of-two and other table sizes. */
static void growth_keeps_every_entry(void **state)
{
	static const uint32_t sizes[] = { 1024, 1500, 4099 };

	(void)state;
	for (unsigned s = 0; s < 3; s++) {
		const uint32_t n = 40000;
		struct cache *c = cache_new("external", OBJ_CT, sizes[s], 1u << 20);

		for (uint32_t i = 0; i < n; i++) {
			struct ct ct = mkct(i, (uint16_t)(i % 3));

			assert_non_null(cache_add(c, &ct));
		}
		assert_true(cache_hashsize(c) >= 8 * sizes[s]);
		for (uint32_t i = 0; i < n; i += 2) {
			struct ct ct = mkct(i, (uint16_t)(i % 3));
			struct cache_obj *o = cache_find(c, &ct);

			assert_non_null(o);
			cache_del(c, o);
		}
		for (uint32_t i = 0; i < n; i++) {
			struct ct ct = mkct(i, (uint16_t)(i % 3));
			struct cache_obj *o = cache_find(c, &ct);

			if (i % 2) {
				assert_non_null(o);
				assert_true(ct_key_equal(cobj_cct(o), &ct));
			} else {
				assert_null(o);
			}
		}
		assert_int_equal(cache_stats(c)->hashed, n / 2);
		cache_free(c);
	}
}

/* Growth walks the slabs: freed objects (some reused since) and deleted
 * ones a queue still holds must not come back into the table; dead but
 * hashed ones must stay in it. */
static int count_all_cb(struct cache_obj *o, void *arg)
{
	(void)o;
	(*(uint32_t *)arg)++;
	return 0;
}

static void growth_skips_freed_and_queued(void **state)
{
	struct cache *c = cache_new("external", OBJ_CT, 1024, 1u << 20);
	struct ct q = mkct(1, 0), dead = mkct(3, 0);
	struct cache_obj *oq, *od;
	uint32_t n = 0;

	(void)state;
	for (uint32_t i = 0; i < 2000; i++) {
		struct ct ct = mkct(i, 0);

		assert_non_null(cache_add(c, &ct));
	}
	assert_int_equal(cache_hashsize(c), 1024);
	oq = cache_find(c, &q);
	oq->qn.qid = QID_RS;
	od = cache_find(c, &dead);
	cache_mark_dead(c, od);
	for (uint32_t i = 0; i < 2000; i += 2) {
		struct ct ct = mkct(i, 0);

		cache_del(c, cache_find(c, &ct));
	}
	cache_del(c, oq);
	for (uint32_t i = 100000; i < 120000; i++) {
		struct ct ct = mkct(i, 0);

		assert_non_null(cache_add(c, &ct));
	}
	assert_true(cache_hashsize(c) >= 8192);
	assert_null(cache_find(c, &q));
	assert_false(oq->flags & COBJ_F_HASHED);
	assert_ptr_equal(cache_find(c, &dead), od);
	for (uint32_t i = 0; i < 2000; i++) {
		struct ct ct = mkct(i, 0);

		if (i % 2 && i != 1)
			assert_non_null(cache_find(c, &ct));
		else
			assert_null(cache_find(c, &ct));
	}
	cache_iterate_all(c, count_all_cb, &n);
	assert_int_equal(n, cache_stats(c)->hashed);
	assert_int_equal(n, 999 + 20000);
	oq->qn.qid = QID_NONE;
	cache_obj_release(c, oq);
	cache_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(add_find_replace),
		cmocka_unit_test(zone_is_part_of_key),
		cmocka_unit_test(update_merges_or_creates),
		cmocka_unit_test(delete_and_queued_dead),
		cmocka_unit_test(hashlimit_is_no_space),
		cmocka_unit_test(iterate_with_deletion),
		cmocka_unit_test(stepwise_iteration),
		cmocka_unit_test(expectation_cache),
		cmocka_unit_test(zero_synproxy_not_stored),
		cmocka_unit_test(memory_per_entry),
		cmocka_unit_test(growth_keeps_every_entry),
		cmocka_unit_test(growth_skips_freed_and_queued),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
