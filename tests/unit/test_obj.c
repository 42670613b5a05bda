/*
 * Object model helpers: what identifies a conntrack/expectation in the
 * caches (zone included, ports only where they exist), and the copy/merge
 * ownership rules the caches rely on.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <linux/netfilter/nf_conntrack_common.h>

#include "obj.h"
#include "objconv.h"

static void
tup4(struct tuple *t, const char *src, const char *dst, uint8_t l4,
    uint16_t sport, uint16_t dport)
{
	memset(t, 0, sizeof(*t));
	assert_int_equal(inet_pton(AF_INET, src, &t->src.v4), 1);
	assert_int_equal(inet_pton(AF_INET, dst, &t->dst.v4), 1);
	t->l3 = AF_INET;
	t->l4 = l4;
	t->sport = htons(sport);
	t->dport = htons(dport);
}

static void
tup6(struct tuple *t, const char *src, const char *dst, uint8_t l4,
    uint16_t sport, uint16_t dport)
{
	memset(t, 0, sizeof(*t));
	assert_int_equal(inet_pton(AF_INET6, src, t->src.b), 1);
	assert_int_equal(inet_pton(AF_INET6, dst, t->dst.b), 1);
	t->l3 = AF_INET6;
	t->l4 = l4;
	t->sport = htons(sport);
	t->dport = htons(dport);
}

static void
mkct(struct ct *ct, uint8_t l4, uint16_t sport, uint16_t dport)
{
	memset(ct, 0, sizeof(*ct));
	tup4(&ct->orig, "10.0.0.1", "10.0.0.2", l4, sport, dport);
	tuple_invert(&ct->repl, &ct->orig);
	ct->have = CT_H_ORIG | CT_H_PORTS | CT_H_REPL;
}

static void
assert_same_key(const struct ct *a, const struct ct *b)
{
	assert_true(ct_key_equal(a, b));
	assert_true(ct_key_equal(b, a));
	assert_int_equal(ct_hash(a, 1234), ct_hash(b, 1234));
}

static void
test_l4_classes(void **state)
{
	(void)state;
	assert_true(l4_has_ports(IPPROTO_TCP));
	assert_true(l4_has_ports(IPPROTO_UDP));
	assert_true(l4_has_ports(IPPROTO_UDPLITE));
	assert_true(l4_has_ports(IPPROTO_SCTP));
	assert_true(l4_has_ports(IPPROTO_DCCP));
	assert_false(l4_has_ports(IPPROTO_GRE));
	assert_false(l4_has_ports(IPPROTO_ICMP));
	assert_true(l4_is_icmp(AF_INET, IPPROTO_ICMP));
	assert_true(l4_is_icmp(AF_INET6, IPPROTO_ICMPV6));
	assert_false(l4_is_icmp(AF_INET6, IPPROTO_ICMP));
	assert_false(l4_is_icmp(AF_INET, IPPROTO_TCP));
}

static void
test_key_ports_and_zone(void **state)
{
	struct ct a, b;

	(void)state;
	mkct(&a, IPPROTO_TCP, 1000, 80);
	mkct(&b, IPPROTO_TCP, 1000, 80);
	/* non-key attributes do not matter */
	b.have |= CT_H_MARK | CT_H_TIMEOUT;
	b.mark = 5;
	b.timeout = 99;
	assert_same_key(&a, &b);

	b.orig.sport = htons(1001);
	assert_false(ct_key_equal(&a, &b));
	b.orig.sport = a.orig.sport;
	b.orig.l4 = IPPROTO_UDP;
	assert_false(ct_key_equal(&a, &b));
	b.orig.l4 = IPPROTO_TCP;
	b.orig.dst.v4 ^= htonl(1);
	assert_false(ct_key_equal(&a, &b));
	b.orig.dst.v4 = a.orig.dst.v4;

	/* zone is part of the key; an absent zone is zone 0 */
	b.have |= CT_H_ZONE;
	b.zone = 0;
	assert_same_key(&a, &b);
	b.zone = 7;
	assert_false(ct_key_equal(&a, &b));
	assert_int_not_equal(ct_hash(&a, 1), ct_hash(&b, 1));
	a.have |= CT_H_ZONE;
	a.zone = 7;
	assert_same_key(&a, &b);
	/* a stale zone value without its presence bit is ignored */
	b.have &= ~CT_H_ZONE;
	a.have &= ~CT_H_ZONE;
	a.zone = 3;
	assert_same_key(&a, &b);

	/* the reply tuple is not part of the key */
	b.repl.src.v4 = htonl(0x01020304);
	assert_same_key(&a, &b);

	/* protocols without ports: stray port values are ignored (the wire
	 * never carries GRE keys, the kernel reports them) */
	mkct(&a, IPPROTO_GRE, 5, 6);
	mkct(&b, IPPROTO_GRE, 0, 0);
	assert_same_key(&a, &b);
}

static void
test_key_icmp(void **state)
{
	struct ct a, b;

	(void)state;
	mkct(&a, IPPROTO_ICMP, 0x1234, 0);
	a.orig.itype = 8;
	mkct(&b, IPPROTO_ICMP, 0x1234, 0);
	b.orig.itype = 8;
	assert_same_key(&a, &b);
	b.orig.sport = htons(0x1235);           /* id */
	assert_false(ct_key_equal(&a, &b));
	b.orig.sport = a.orig.sport;
	b.orig.itype = 13;
	assert_false(ct_key_equal(&a, &b));
	b.orig.itype = 8;
	b.orig.icode = 1;
	assert_false(ct_key_equal(&a, &b));
	/* type/code never count for port protocols */
	mkct(&a, IPPROTO_UDP, 1, 2);
	mkct(&b, IPPROTO_UDP, 1, 2);
	b.orig.itype = 3;
	assert_same_key(&a, &b);
}

static void
test_key_ipv6(void **state)
{
	struct ct a = { 0 }, b = { 0 };

	(void)state;
	tup6(&a.orig, "2001:db8::1", "2001:db8::2", IPPROTO_UDP, 53, 53);
	b = a;
	assert_same_key(&a, &b);
	b.orig.dst.b[15] ^= 1;                  /* last byte counts */
	assert_false(ct_key_equal(&a, &b));
	/* an IPv4 tuple with the same first word is a different key */
	b = a;
	b.orig.l3 = AF_INET;
	assert_false(ct_key_equal(&a, &b));
}

static void
test_hash_spread(void **state)
{
	/* 4096 sequential source ports into 256 buckets: no bucket may hold
	 * more than 4x its share, or the caches degrade to lists */
	unsigned count[256] = { 0 }, max = 0;
	struct ct c;

	(void)state;
	for (unsigned p = 0; p < 4096; p++) {
		mkct(&c, IPPROTO_TCP, 10000 + p, 80);
		count[ct_hash(&c, 0x9e3779b9) & 255]++;
	}
	for (unsigned i = 0; i < 256; i++)
		if (count[i] > max)
			max = count[i];
	assert_true(max <= 64);
	/* the seed changes the hash */
	assert_int_not_equal(ct_hash(&c, 1), ct_hash(&c, 2));
}

static void
test_tuple_invert(void **state)
{
	struct tuple o, r, back;
	static const uint8_t v4[][2] = { { 8, 0 }, { 0, 8 }, { 13, 14 },
		{ 15, 16 }, { 17, 18 }, { 3, 255 } };

	(void)state;
	tup4(&o, "1.2.3.4", "5.6.7.8", IPPROTO_TCP, 1000, 22);
	tuple_invert(&r, &o);
	assert_int_equal(r.src.v4, o.dst.v4);
	assert_int_equal(r.dst.v4, o.src.v4);
	assert_int_equal(ntohs(r.sport), 22);
	assert_int_equal(ntohs(r.dport), 1000);
	tuple_invert(&back, &r);
	assert_memory_equal(&back, &o, sizeof(o));
	/* in place */
	tuple_invert(&r, &r);
	assert_memory_equal(&r, &o, sizeof(o));

	/* ICMP keeps the id and takes the reply type */
	for (size_t i = 0; i < sizeof(v4) / sizeof(v4[0]); i++) {
		tup4(&o, "1.2.3.4", "5.6.7.8", IPPROTO_ICMP, 99, 0);
		o.itype = v4[i][0];
		o.icode = 0;
		tuple_invert(&r, &o);
		assert_int_equal(r.itype, v4[i][1]);
		assert_int_equal(ntohs(r.sport), 99);
		assert_int_equal(r.dport, 0);
	}
	tup6(&o, "::1", "::2", IPPROTO_ICMPV6, 7, 0);
	o.itype = 128;
	tuple_invert(&r, &o);
	assert_int_equal(r.itype, 129);
	assert_true(tuple_equal(&r, &r));
}

static void
test_exp_key(void **state)
{
	struct exp a, b;

	(void)state;
	memset(&a, 0, sizeof(a));
	tup4(&a.master, "10.0.0.1", "10.0.0.2", IPPROTO_TCP, 40000, 21);
	tup4(&a.expected, "10.0.0.2", "10.0.0.1", IPPROTO_TCP, 0, 50000);
	tup4(&a.mask, "255.255.255.255", "255.255.255.255", 6, 0, 0xffff);
	a.have = EXP_H_MASTER | EXP_H_EXPECTED | EXP_H_MASK | EXP_H_TIMEOUT;
	a.timeout = 300;
	b = a;
	b.timeout = 10;                 /* the timeout is never in the key */
	assert_true(exp_key_equal(&a, &b));
	assert_int_equal(exp_hash(&a, 3), exp_hash(&b, 3));
	b.expected.dport = htons(50001);
	assert_false(exp_key_equal(&a, &b));
	b = a;
	b.master.sport = htons(40001);
	assert_false(exp_key_equal(&a, &b));
	b = a;
	b.have |= EXP_H_ZONE;
	b.zone = 2;
	assert_false(exp_key_equal(&a, &b));
}

static void
test_copy_deep(void **state)
{
	struct ct a, b;
	struct ct_ext *x;

	(void)state;
	mkct(&a, IPPROTO_TCP, 1, 2);
	x = ct_ext_get(&a, 16);
	assert_non_null(x);
	assert_int_equal(x->labels_len, 16);
	x->labels[15] = 0x80;
	x->seqadj[2] = 42;
	a.have |= CT_H_LABELS | CT_H_SEQADJ;
	strcpy(a.helper, "ftp");
	a.have |= CT_H_HELPER;

	assert_int_equal(ct_copy(&b, &a), 0);
	assert_non_null(b.ext);
	assert_ptr_not_equal(b.ext, a.ext);
	assert_int_equal(b.ext->labels_len, 16);
	assert_int_equal(b.ext->labels[15], 0x80);
	assert_int_equal(b.ext->seqadj[2], 42);
	assert_string_equal(b.helper, "ftp");
	/* independent: changing or freeing one leaves the other */
	a.ext->labels[15] = 0;
	assert_int_equal(b.ext->labels[15], 0x80);
	ct_release(&a);
	assert_null(a.ext);
	assert_int_equal(a.have, 0);
	assert_int_equal(b.ext->seqadj[2], 42);
	ct_release(&b);

	/* without ext nothing is allocated */
	mkct(&a, IPPROTO_UDP, 1, 2);
	assert_int_equal(ct_copy(&b, &a), 0);
	assert_null(b.ext);
	assert_true(ct_key_equal(&a, &b));
}

static void
test_ext_get_grows(void **state)
{
	struct ct c = { 0 };
	struct ct_ext *x;

	(void)state;
	x = ct_ext_get(&c, 0);
	assert_non_null(x);
	assert_ptr_equal(c.ext, x);
	x->synproxy[1] = 9;
	assert_ptr_equal(ct_ext_get(&c, 0), c.ext);     /* no realloc */
	x = ct_ext_get(&c, 8);
	assert_int_equal(x->labels_len, 8);
	assert_int_equal(x->synproxy[1], 9);            /* kept */
	assert_int_equal(x->labels[7], 0);              /* zeroed */
	assert_null(ct_ext_get(&c, CT_LABELS_MAX + 4)); /* bounded */
	assert_ptr_equal(c.ext, x);                     /* still owned */
	ct_release(&c);
}

static void
test_merge(void **state)
{
	struct ct dst, src;
	struct ct_ext *x;

	(void)state;
	mkct(&dst, IPPROTO_TCP, 1000, 80);
	dst.have |= CT_H_STATUS | CT_H_TIMEOUT | CT_H_MARK | CT_H_TCP_STATE |
	    CT_H_HELPER;
	dst.status = 0xe;
	dst.timeout = 100;
	dst.mark = 1;
	dst.tcp_state = 3;
	strcpy(dst.helper, "ftp");

	/* an update with only timeout and state: the rest stays */
	memset(&src, 0, sizeof(src));
	src.orig = dst.orig;
	src.have = CT_H_TIMEOUT | CT_H_TCP_STATE;
	src.timeout = 7;
	src.tcp_state = 7;
	src.mark = 99;                  /* not present: must not be taken */
	assert_int_equal(ct_merge(&dst, &src), 0);
	assert_int_equal(dst.timeout, 7);
	assert_int_equal(dst.tcp_state, 7);
	assert_int_equal(dst.mark, 1);
	assert_int_equal(dst.status, 0xe);
	assert_string_equal(dst.helper, "ftp");
	assert_true(dst.have & CT_H_MARK);
	assert_null(dst.ext);

	/* ext attributes are copied into a fresh ext of dst */
	x = ct_ext_get(&src, 4);
	x->labels[0] = 5;
	x->synproxy[0] = 11;
	src.have = CT_H_LABELS | CT_H_SYNPROXY | CT_H_MARK;
	src.mark = 2;
	assert_int_equal(ct_merge(&dst, &src), 0);
	assert_non_null(dst.ext);
	assert_ptr_not_equal(dst.ext, src.ext);
	assert_int_equal(dst.ext->labels_len, 4);
	assert_int_equal(dst.ext->labels[0], 5);
	assert_int_equal(dst.ext->synproxy[0], 11);
	assert_int_equal(dst.mark, 2);
	assert_true(dst.have & CT_H_LABELS && dst.have & CT_H_SYNPROXY);

	/* a larger label set later grows dst's ext */
	ct_release(&src);
	memset(&src, 0, sizeof(src));
	x = ct_ext_get(&src, 12);
	x->labels[11] = 1;
	src.have = CT_H_LABELS;
	assert_int_equal(ct_merge(&dst, &src), 0);
	assert_int_equal(dst.ext->labels_len, 12);
	assert_int_equal(dst.ext->labels[11], 1);
	assert_int_equal(dst.ext->synproxy[0], 11);
	ct_release(&src);

	/* a wire-rebuilt reply never replaces the kernel's real one, a real
	 * one replaces a rebuilt one */
	memset(&src, 0, sizeof(src));
	tup4(&src.repl, "9.9.9.9", "8.8.8.8", IPPROTO_TCP, 1, 2);
	src.have = CT_H_REPL_SYNTH | CT_H_SNAT;
	{
		struct tuple keep = dst.repl;

		assert_int_equal(ct_merge(&dst, &src), 0);
		assert_memory_equal(&dst.repl, &keep, sizeof(keep));
		assert_false(dst.have & (CT_H_REPL_SYNTH | CT_H_SNAT));
	}
	dst.have &= ~CT_H_REPL;
	assert_int_equal(ct_merge(&dst, &src), 0);
	assert_memory_equal(&dst.repl, &src.repl, sizeof(src.repl));
	assert_true(dst.have & CT_H_REPL_SYNTH && dst.have & CT_H_SNAT);
	src.have = CT_H_REPL;
	src.repl.src.v4 = htonl(0x0a000002);
	assert_int_equal(ct_merge(&dst, &src), 0);
	assert_true(dst.have & CT_H_REPL);
	assert_false(dst.have & (CT_H_REPL_SYNTH | CT_H_SNAT));
	assert_int_equal(dst.repl.src.v4, htonl(0x0a000002));

	/* a present bit with no ext behind it is ignored, not dereferenced */
	memset(&src, 0, sizeof(src));
	src.have = CT_H_MASTER | CT_H_SEQADJ;
	assert_int_equal(ct_merge(&dst, &src), 0);
	assert_false(dst.have & (CT_H_MASTER | CT_H_SEQADJ));
	ct_release(&dst);
}

/*
 * The direct plain formatter (obj_text.c) against the library path it
 * replaces: byte-identical lines and return values on randomised entries,
 * at full size and truncated. Entries it does not cover must fall back.
 */
static uint64_t rng_s = 0x9e3779b97f4a7c15ull;

static uint32_t
rnd(void)
{
	rng_s ^= rng_s << 13;
	rng_s ^= rng_s >> 7;
	rng_s ^= rng_s << 17;
	return (uint32_t)(rng_s >> 16);
}

static uint16_t
rnd_port(void)
{
	static const uint16_t edge[] = { 0, 1, 9, 10, 99, 100, 65535, 65534 };

	return rnd() % 4 ? (uint16_t)rnd() : edge[rnd() % 8];
}

static void
rnd_addr(union addr *a, uint8_t l3)
{
	memset(a, 0, sizeof(*a));
	if (l3 == AF_INET) {
		static const uint32_t edge[] = { 0, 0xffffffff, 0x0a000001,
		    0x01000000, 0x00010203 };

		a->v4 = rnd() % 4 ? rnd() : edge[rnd() % 5];
		return;
	}
	switch (rnd() % 6) {
	case 0:                                 /* words zero at random */
	case 1:
		for (int w = 0; w < 8; w++)
			if (rnd() % 2) {
				a->b[2 * w] = (uint8_t)(rnd() % 3 ? 0 : rnd());
				a->b[2 * w + 1] = (uint8_t)rnd();
			}
		break;
	case 2:                                 /* v4-mapped / compatible */
		if (rnd() % 2)
			a->b[10] = a->b[11] = 0xff;
		for (int i = 12; i < 16; i++)
			a->b[i] = (uint8_t)(rnd() % 3 ? rnd() : 0);
		break;
	case 3:                                 /* ::, ::1, ::x */
		a->b[15] = (uint8_t)(rnd() % 3);
		a->b[14] = (uint8_t)(rnd() % 2 ? rnd() : 0);
		break;
	default:
		for (int i = 0; i < 16; i++)
			a->b[i] = (uint8_t)rnd();
	}
}

static void
rnd_ct(struct ct *ct)
{
	static const uint8_t l4s[] = { IPPROTO_TCP, IPPROTO_UDP, IPPROTO_UDPLITE,
	    IPPROTO_SCTP, IPPROTO_DCCP, IPPROTO_ICMP, IPPROTO_ICMPV6,
	    IPPROTO_GRE, 0, 2, 4, 41, 50, 200, 255, IPPROTO_TCP, IPPROTO_TCP,
	    IPPROTO_UDP };
	static const uint32_t bits[] = { CT_H_PORTS, CT_H_REPL, CT_H_STATUS,
	    CT_H_TIMEOUT, CT_H_MARK, CT_H_ZONE, CT_H_TCP_WSCALE, CT_H_ICMP, CT_H_SECMARK, CT_H_HELPER,
	    CT_H_ID, CT_H_SNAT, CT_H_DNAT, CT_H_SPAT, CT_H_DPAT };
	static const char *helpers[] = { "ftp", "sip", "h323", "irc",
	    "tftp", "amanda", "netbios-ns", "abcdefghijklmno", "pptp" };
	uint8_t l3 = rnd() % 3 ? AF_INET : AF_INET6;
	struct tuple *o = &ct->orig, *r = &ct->repl;

	memset(ct, 0, sizeof(*ct));
	o->l3 = l3;
	o->l4 = l4s[rnd() % sizeof(l4s)];
	rnd_addr(&o->src, l3);
	rnd_addr(&o->dst, l3);
	o->sport = rnd_port();
	o->dport = rnd_port();
	if (rnd() % 2) {                        /* mostly known ICMP types */
		static const uint8_t it[] = { 0, 8, 13, 14, 15, 16, 17, 18, 3,
		    11, 128, 129, 139, 140, 133, 1 };

		o->itype = it[rnd() % sizeof(it)];
	} else {
		o->itype = (uint8_t)rnd();
	}
	o->icode = (uint8_t)(rnd() % 3 ? rnd() % 4 : rnd());
	ct->have = CT_H_ORIG;
	for (size_t i = 0; i < sizeof(bits) / sizeof(bits[0]); i++)
		if (rnd() % 2)
			ct->have |= bits[i];
	/* the state of the entry's protocol; rarely a foreign one (the
	 * library keeps them in one union: not covered, falls back) */
	if (rnd() % 4)
		ct->have |= o->l4 == IPPROTO_TCP ? CT_H_TCP_STATE :
		    o->l4 == IPPROTO_SCTP ? CT_H_SCTP :
		    o->l4 == IPPROTO_DCCP ? CT_H_DCCP : 0;
	if (rnd() % 20 == 0)
		ct->have |= rnd() % 2 ? CT_H_SCTP : CT_H_DCCP;
	*r = *o;
	r->src = o->dst;
	r->dst = o->src;
	r->sport = o->dport;
	r->dport = o->sport;
	if (rnd() % 4 == 0)                     /* NAT */
		rnd_addr(&r->dst, l3);
	if (rnd() % 4 == 0)
		r->sport = rnd_port();
	if (rnd() % 50 == 0)                    /* odd reply: not covered */
		r->l4 = l4s[rnd() % sizeof(l4s)];
	if (rnd() % 50 == 0)
		r->l3 = r->l3 == AF_INET ? AF_INET6 : AF_INET;
	if (rnd() % 20 == 0)
		ct->have |= CT_H_REPL_SYNTH;
	ct->status = rnd() % 3 ? (rnd() & 0xffff) :
	    (rnd() & (IPS_SEEN_REPLY | IPS_ASSURED | IPS_OFFLOAD |
		      IPS_HW_OFFLOAD));
	ct->timeout = rnd();
	ct->mark = rnd() % 2 ? rnd() : (rnd() % 2 ? 0 : 0xffffffff);
	ct->secmark = rnd() % 2 ? rnd() : 0;
	ct->id = rnd();
	ct->zone = rnd() % 2 ? (uint16_t)rnd() : (uint16_t)(rnd() % 2 ? 0 : 65535);
	ct->tcp_state = (uint8_t)(rnd() % 8 ? rnd() % 10 : rnd() % 16);
	ct->sctp_state = (uint8_t)(rnd() % 8 ? rnd() % 10 : rnd() % 16);
	ct->dccp_state = (uint8_t)(rnd() % 8 ? rnd() % 10 : rnd() % 16);
	ct->dccp_role = (uint8_t)(rnd() % 3);
	ct->sctp_vtag_orig = rnd();
	ct->sctp_vtag_repl = rnd();
	ct->wscale_orig = (uint8_t)(rnd() % 15);
	ct->wscale_repl = (uint8_t)(rnd() % 15);
	if (rnd() % 10 == 0)                    /* all 16 bytes, no NUL */
		memset(ct->helper, 'h', CT_HELPER_MAX);
	else if (rnd() % 8)
		strcpy(ct->helper, helpers[rnd() % 9]);
	if (rnd() % 4 == 0) {                   /* rare attributes in ext */
		size_t ll = rnd() % 2 ? 4 * (1 + rnd() % 8) : 0;
		struct ct_ext *x = ct_ext_get(ct, ll);

		assert_non_null(x);
		for (size_t i = 0; i < ll; i++)
			x->labels[i] = (uint8_t)(rnd() % 3 ? 0 : rnd());
		if (ll)
			ct->have |= CT_H_LABELS;
		x->master = *o;
		for (int i = 0; i < 6; i++)
			x->seqadj[i] = rnd();
		for (int i = 0; i < 3; i++)
			x->synproxy[i] = rnd();
		for (int i = 0; i < 4; i++)
			x->counters[i] = rnd();
		ct->have |= (rnd() % 2 ? CT_H_MASTER | CT_H_MASTER_PORTS : 0) |
		    (rnd() % 2 ? CT_H_SEQADJ : 0) |
		    (rnd() % 2 ? CT_H_SYNPROXY : 0) |
		    (rnd() % 2 ? CT_H_COUNTERS : 0);
		if (rnd() % 8 == 0) {           /* printed against time(): fallback */
			x->ts_start = 1000000000ull * (rnd() % 1000);
			x->ts_stop = x->ts_start + 5000000000ull;
			ct->have |= CT_H_TIMESTAMP;
		}
	}
}

/* Both paths into buffers of size len (canary after): same return, same
 * string, nothing written past len. */
static void
same_line(const struct ct *ct, size_t len)
{
	char a[1100], b[1100];

	memset(a, 0x5a, sizeof(a));
	memset(b, 0x5a, sizeof(b));
	int ra = ct_snprintf_nfct(a, len, ct, OBJ_FMT_PLAIN);
	int rb = ct_snprintf(b, len, ct, OBJ_FMT_PLAIN);

	if (ra != rb || strcmp(a, b) != 0) {
		print_error("len %zu: library %d \"%s\"\n        direct  %d \"%s\"\n",
		    len, ra, a, rb, b);
		fail();
	}
	assert_int_equal((unsigned char)b[len], 0x5a);
}

static void
test_text_equivalence(void **state)
{
	struct ct ct;
	int direct = 0, total = 30000;

	(void)state;
	for (int i = 0; i < total; i++) {
		char t[1024];
		int n;

		rnd_ct(&ct);
		n = ct_text_plain(t, sizeof(t), &ct);
		direct += n >= 0;
		same_line(&ct, 1024);
		if (n > 0) {                    /* truncation around the end */
			same_line(&ct, (size_t)n + 1);
			same_line(&ct, (size_t)n);
			same_line(&ct, 1 + rnd() % (size_t)n);
			if (i % 16 == 0)
				for (size_t l = 1; l <= (size_t)n + 2; l++)
					same_line(&ct, l);
		}
		ct_release(&ct);
	}
	/* most entries must take the direct path, or this tests nothing */
	print_message("%d of %d entries formatted directly\n", direct, total);
	assert_true(direct > total * 3 / 4);
}

/* Every TCP state and every printed status combination, v4 and v6. */
static void
test_text_states(void **state)
{
	struct ct ct;

	(void)state;
	for (int fam = 0; fam < 2; fam++)
		for (unsigned st = 0; st < 12; st++)
			for (uint32_t s = 0; s < 16; s++) {
				memset(&ct, 0, sizeof(ct));
				if (fam)
					tup6(&ct.orig, "::", "::ffff:1.2.3.4",
					    IPPROTO_TCP, 0, 65535);
				else
					tup4(&ct.orig, "0.0.0.0", "255.255.255.255",
					    IPPROTO_TCP, 0, 65535);
				tuple_invert(&ct.repl, &ct.orig);
				ct.have = CT_H_ORIG | CT_H_PORTS | CT_H_REPL |
				    CT_H_STATUS | CT_H_TCP_STATE | CT_H_MARK;
				ct.tcp_state = (uint8_t)st;
				ct.status = ((s & 1) ? IPS_SEEN_REPLY : 0) |
				    ((s & 2) ? IPS_ASSURED : 0) |
				    ((s & 4) ? IPS_OFFLOAD : 0) |
				    ((s & 8) ? IPS_HW_OFFLOAD : 0);
				ct.mark = 0xffffffff;
				same_line(&ct, 1024);
			}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_l4_classes),
		cmocka_unit_test(test_key_ports_and_zone),
		cmocka_unit_test(test_key_icmp),
		cmocka_unit_test(test_key_ipv6),
		cmocka_unit_test(test_hash_spread),
		cmocka_unit_test(test_tuple_invert),
		cmocka_unit_test(test_exp_key),
		cmocka_unit_test(test_copy_deep),
		cmocka_unit_test(test_ext_get_grows),
		cmocka_unit_test(test_merge),
		cmocka_unit_test(test_text_equivalence),
		cmocka_unit_test(test_text_states),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
