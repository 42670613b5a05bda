/*
 * Conversions struct ct/exp <-> libnetfilter_conntrack and the dump lines
 * (no kernel, no root). Expected lines are the ones conntrackd 1.4.7
 * prints for the same objects (config-and-cli.md §4.1-4.3, observed).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <libnetfilter_conntrack/libnetfilter_conntrack.h>

#include "objconv.h"
#include "conf.h"
#include "nl.h"
#include "obj_nlparse.h"

static uint32_t ip4(const char *s)
{
	struct in_addr a;

	assert_int_equal(inet_pton(AF_INET, s, &a), 1);
	return a.s_addr;
}

static void ip6(union addr *u, const char *s)
{
	assert_int_equal(inet_pton(AF_INET6, s, u->b), 1);
}

/* tcp 10.0.0.1:1000 -> 10.0.0.2:80, established, assured, mark 7. */
static void tcp_ct(struct ct *ct)
{
	memset(ct, 0, sizeof(*ct));
	ct->orig.l3 = AF_INET;
	ct->orig.l4 = IPPROTO_TCP;
	ct->orig.src.v4 = ip4("10.0.0.1");
	ct->orig.dst.v4 = ip4("10.0.0.2");
	ct->orig.sport = htons(1000);
	ct->orig.dport = htons(80);
	ct->repl = ct->orig;
	ct->repl.src = ct->orig.dst;
	ct->repl.dst = ct->orig.src;
	ct->repl.sport = ct->orig.dport;
	ct->repl.dport = ct->orig.sport;
	ct->status = IPS_ASSURED | IPS_SEEN_REPLY | IPS_CONFIRMED;
	ct->timeout = 500;
	ct->mark = 7;
	ct->tcp_state = 3;      /* ESTABLISHED */
	ct->have = CT_H_ORIG | CT_H_PORTS | CT_H_REPL | CT_H_STATUS |
		   CT_H_TIMEOUT | CT_H_MARK | CT_H_TCP_STATE;
}

static void print_internal_line(void **state)
{
	struct ct ct;
	char buf[1024];
	int n;

	(void)state;
	tcp_ct(&ct);
	n = ct_snprintf(buf, sizeof(buf), &ct, OBJ_FMT_PLAIN);
	assert_string_equal(buf, "tcp      6 ESTABLISHED src=10.0.0.1 dst=10.0.0.2 "
			    "sport=1000 dport=80 src=10.0.0.2 dst=10.0.0.1 "
			    "sport=80 dport=1000 [ASSURED] mark=7");
	assert_int_equal(n, (int)strlen(buf));

	/* Log records carry the timeout. */
	ct_snprintf_timeout(buf, sizeof(buf), &ct);
	assert_string_equal(buf, "tcp      6 500 ESTABLISHED src=10.0.0.1 dst=10.0.0.2 "
			    "sport=1000 dport=80 src=10.0.0.2 dst=10.0.0.1 "
			    "sport=80 dport=1000 [ASSURED] mark=7");

	/* Counters (accounting on): in records, never in cache lines. */
	assert_non_null(ct_ext_get(&ct, 0));
	ct.ext->counters[0] = 3;
	ct.ext->counters[1] = 180;
	ct.ext->counters[2] = 2;
	ct.ext->counters[3] = 5000000000ull;
	ct.have |= CT_H_COUNTERS;
	ct_snprintf_timeout(buf, sizeof(buf), &ct);
	assert_string_equal(buf, "tcp      6 500 ESTABLISHED src=10.0.0.1 dst=10.0.0.2 "
			    "sport=1000 dport=80 packets=3 bytes=180 src=10.0.0.2 "
			    "dst=10.0.0.1 sport=80 dport=1000 packets=2 "
			    "bytes=5000000000 [ASSURED] mark=7");
	ct_snprintf(buf, sizeof(buf), &ct, OBJ_FMT_PLAIN);
	assert_string_equal(buf, "tcp      6 ESTABLISHED src=10.0.0.1 dst=10.0.0.2 "
			    "sport=1000 dport=80 src=10.0.0.2 dst=10.0.0.1 "
			    "sport=80 dport=1000 [ASSURED] mark=7");
	ct_release(&ct);
}

static void print_external_line_has_no_reply(void **state)
{
	struct ct ct;
	char buf[2048];

	(void)state;
	tcp_ct(&ct);
	ct.have &= ~CT_H_REPL;
	ct.have |= CT_H_REPL_SYNTH;
	ct_snprintf(buf, sizeof(buf), &ct, OBJ_FMT_PLAIN);
	assert_string_equal(buf, "tcp      6 ESTABLISHED src=10.0.0.1 dst=10.0.0.2 "
			    "sport=1000 dport=80 [ASSURED] mark=7");

	/* XML: an empty reply <meta>, as 1.4.7's external cache. */
	ct_snprintf(buf, sizeof(buf), &ct, OBJ_FMT_XML);
	assert_non_null(strstr(buf, "<meta direction=\"reply\"><layer3 protonum=\"0\" "
			       "protoname=\"unknown\"><src></src><dst></dst></layer3>"));
	assert_non_null(strstr(buf, "<state>ESTABLISHED</state><mark>7</mark><assured/>"));
}

static void print_icmp_v6_and_missing_fields(void **state)
{
	struct ct ct;
	char buf[1024];

	(void)state;
	memset(&ct, 0, sizeof(ct));
	ct.orig.l3 = AF_INET;
	ct.orig.l4 = IPPROTO_ICMP;
	ct.orig.src.v4 = ip4("192.168.10.7");
	ct.orig.dst.v4 = ip4("172.16.1.11");
	ct.orig.itype = 8;
	ct.orig.sport = htons(77);
	ct.repl = ct.orig;
	ct.repl.src = ct.orig.dst;
	ct.repl.dst = ct.orig.src;
	ct.status = 0;
	ct.have = CT_H_ORIG | CT_H_PORTS | CT_H_ICMP | CT_H_REPL | CT_H_STATUS | CT_H_MARK;
	ct_snprintf(buf, sizeof(buf), &ct, OBJ_FMT_PLAIN);
	assert_string_equal(buf, "icmp     1 src=192.168.10.7 dst=172.16.1.11 type=8 "
			    "code=0 id=77 [UNREPLIED] src=172.16.1.11 "
			    "dst=192.168.10.7 type=0 code=0 id=77 mark=0");

	/* IPv6, SYN_SENT, no mark known: no "mark=" at all. */
	memset(&ct, 0, sizeof(ct));
	ct.orig.l3 = AF_INET6;
	ct.orig.l4 = IPPROTO_TCP;
	ip6(&ct.orig.src, "2001:db8::1");
	ip6(&ct.orig.dst, "2001:db8::2");
	ct.orig.sport = htons(40002);
	ct.orig.dport = htons(443);
	ct.tcp_state = 1;
	ct.have = CT_H_ORIG | CT_H_PORTS | CT_H_STATUS | CT_H_TCP_STATE | CT_H_REPL_SYNTH;
	ct_snprintf(buf, sizeof(buf), &ct, OBJ_FMT_PLAIN);
	assert_string_equal(buf, "tcp      6 SYN_SENT src=2001:db8::1 dst=2001:db8::2 "
			    "sport=40002 dport=443 [UNREPLIED]");
}

static void print_truncates_safely(void **state)
{
	struct ct ct;
	char buf[16];
	int n;

	(void)state;
	tcp_ct(&ct);
	memset(buf, 'x', sizeof(buf));
	n = ct_snprintf(buf, sizeof(buf), &ct, OBJ_FMT_PLAIN);
	assert_true(n >= (int)sizeof(buf));
	assert_int_equal(strlen(buf), sizeof(buf) - 1);
	assert_memory_equal(buf, "tcp      6 ESTA", 15);
}

static void roundtrip_every_field(void **state)
{
	struct ct a, b;
	struct ct_ext *x;
	struct nf_conntrack *n;

	(void)state;
	tcp_ct(&a);
	a.secmark = 5;
	a.zone = 9;
	a.wscale_orig = 7;
	a.wscale_repl = 8;
	strcpy(a.helper, "ftp");
	a.have |= CT_H_SECMARK | CT_H_ZONE | CT_H_TCP_WSCALE | CT_H_HELPER |
		  CT_H_MASTER | CT_H_MASTER_PORTS | CT_H_SEQADJ | CT_H_SYNPROXY |
		  CT_H_LABELS;
	x = ct_ext_get(&a, 16);
	assert_non_null(x);
	x->master = a.orig;
	x->master.dport = htons(21);
	for (int i = 0; i < 6; i++)
		x->seqadj[i] = 100 + (uint32_t)i;
	x->synproxy[0] = 1;
	x->synproxy[1] = 2;
	x->synproxy[2] = 3;
	x->labels_len = 16;
	memset(x->labels, 0, 16);
	/* labels 1 and 33: bit 1 of words 0 and 1 */
	{
		uint32_t w[4] = { 2, 2, 0, 0 };
		memcpy(x->labels, w, 16);
	}

	n = ct_to_nfct_mode(&a, CT_NFCT_PRINT_TIMEOUT, true);
	assert_non_null(n);
	assert_int_equal(ct_from_nfct(&b, n), 0);
	nfct_destroy(n);

	assert_int_equal(b.have & ~(uint32_t)(CT_H_SNAT | CT_H_DNAT | CT_H_SPAT | CT_H_DPAT),
			 a.have);
	assert_memory_equal(&b.orig, &a.orig, sizeof(a.orig));
	assert_memory_equal(&b.repl, &a.repl, sizeof(a.repl));
	assert_int_equal(b.status, a.status);
	assert_int_equal(b.timeout, 500);
	assert_int_equal(b.mark, 7);
	assert_int_equal(b.secmark, 5);
	assert_int_equal(b.zone, 9);
	assert_int_equal(b.tcp_state, 3);
	assert_int_equal(b.wscale_orig, 7);
	assert_int_equal(b.wscale_repl, 8);
	assert_string_equal(b.helper, "ftp");
	assert_non_null(b.ext);
	assert_memory_equal(&b.ext->master, &x->master, sizeof(x->master));
	assert_memory_equal(b.ext->seqadj, x->seqadj, sizeof(x->seqadj));
	assert_memory_equal(b.ext->synproxy, x->synproxy, sizeof(x->synproxy));
	assert_true(b.ext->labels_len >= 8);
	{
		uint32_t w0, w1;
		memcpy(&w0, b.ext->labels, 4);
		memcpy(&w1, b.ext->labels + 4, 4);
		assert_int_equal(w0, 2);
		assert_int_equal(w1, 2);
	}
	ct_release(&a);
	ct_release(&b);
}

static void from_nfct_detects_nat(void **state)
{
	struct nf_conntrack *n = nfct_new();
	struct ct ct;

	(void)state;
	nfct_set_attr_u8(n, ATTR_L3PROTO, AF_INET);
	nfct_set_attr_u8(n, ATTR_L4PROTO, IPPROTO_UDP);
	nfct_set_attr_u32(n, ATTR_IPV4_SRC, ip4("10.0.0.7"));
	nfct_set_attr_u32(n, ATTR_IPV4_DST, ip4("10.0.0.8"));
	nfct_set_attr_u16(n, ATTR_PORT_SRC, htons(5000));
	nfct_set_attr_u16(n, ATTR_PORT_DST, htons(5001));
	nfct_set_attr_u8(n, ATTR_REPL_L3PROTO, AF_INET);
	nfct_set_attr_u8(n, ATTR_REPL_L4PROTO, IPPROTO_UDP);
	nfct_set_attr_u32(n, ATTR_REPL_IPV4_SRC, ip4("10.9.9.9"));   /* DNAT */
	nfct_set_attr_u32(n, ATTR_REPL_IPV4_DST, ip4("10.0.0.7"));
	nfct_set_attr_u16(n, ATTR_REPL_PORT_SRC, htons(5001));
	nfct_set_attr_u16(n, ATTR_REPL_PORT_DST, htons(999));        /* SPAT */
	nfct_set_attr_u32(n, ATTR_STATUS, IPS_DST_NAT_DONE | IPS_SRC_NAT_DONE);
	assert_int_equal(ct_from_nfct(&ct, n), 0);
	assert_true(ct.have & CT_H_DNAT);
	assert_true(ct.have & CT_H_SPAT);
	assert_false(ct.have & CT_H_SNAT);
	assert_false(ct.have & CT_H_DPAT);
	assert_false(ct.have & CT_H_MARK);      /* not delivered: not present */
	nfct_destroy(n);

	/* No layer 3: unusable. */
	n = nfct_new();
	nfct_set_attr_u32(n, ATTR_MARK, 1);
	assert_int_equal(ct_from_nfct(&ct, n), -1);
	nfct_destroy(n);
}

static void to_nfct_commit_of_external_entry(void **state)
{
	struct ct ct;
	struct nf_conntrack *n;

	(void)state;
	tcp_ct(&ct);
	/* As decoded from the wire: SNAT to 10.8.8.8:999, DNAT to 10.9.9.9. */
	ct.have &= ~CT_H_REPL;
	ct.have |= CT_H_REPL_SYNTH | CT_H_SNAT | CT_H_DNAT | CT_H_SPAT;
	ct.repl.dst.v4 = ip4("10.8.8.8");
	ct.repl.dport = htons(999);
	ct.repl.src.v4 = ip4("10.9.9.9");
	ct.status |= IPS_EXPECTED;

	n = ct_to_nfct(&ct);
	assert_non_null(n);
	/* Reply = plain inverse; the kernel applies the NAT bindings. */
	assert_int_equal(nfct_get_attr_u32(n, ATTR_REPL_IPV4_SRC), ip4("10.0.0.2"));
	assert_int_equal(nfct_get_attr_u32(n, ATTR_REPL_IPV4_DST), ip4("10.0.0.1"));
	assert_int_equal(nfct_get_attr_u16(n, ATTR_REPL_PORT_SRC), htons(80));
	assert_int_equal(nfct_get_attr_u16(n, ATTR_REPL_PORT_DST), htons(1000));
	assert_int_equal(nfct_get_attr_u32(n, ATTR_SNAT_IPV4), ip4("10.8.8.8"));
	assert_int_equal(nfct_get_attr_u32(n, ATTR_DNAT_IPV4), ip4("10.9.9.9"));
	assert_int_equal(nfct_get_attr_u16(n, ATTR_SNAT_PORT), htons(999));
	assert_false(nfct_attr_is_set(n, ATTR_DNAT_PORT));
	assert_false(nfct_get_attr_u32(n, ATTR_STATUS) & IPS_EXPECTED);
	/* No window tracking: liberal in both directions. */
	assert_int_equal(nfct_get_attr_u8(n, ATTR_TCP_FLAGS_ORIG), 0x08);
	assert_int_equal(nfct_get_attr_u8(n, ATTR_TCP_MASK_ORIG), 0x08);
	assert_int_equal(nfct_get_attr_u8(n, ATTR_TCP_FLAGS_REPL), 0x08);
	assert_int_equal(nfct_get_attr_u8(n, ATTR_TCP_MASK_REPL), 0x08);
	nfct_destroy(n);

	n = ct_to_nfct_mode(&ct, CT_NFCT_KERNEL, true);
	assert_false(nfct_attr_is_set(n, ATTR_TCP_FLAGS_ORIG));
	nfct_destroy(n);

	/* Printing the same object sets no reply attribute at all. */
	n = ct_to_nfct_mode(&ct, CT_NFCT_PRINT, false);
	assert_false(nfct_attr_is_set(n, ATTR_REPL_IPV4_SRC));
	assert_false(nfct_attr_is_set(n, ATTR_REPL_L3PROTO));
	assert_false(nfct_attr_is_set(n, ATTR_TIMEOUT));
	nfct_destroy(n);
}

static void exp_line_and_roundtrip(void **state)
{
	struct exp e, b;
	struct nf_expect *n;
	char buf[1024];

	(void)state;
	memset(&e, 0, sizeof(e));
	e.master.l3 = e.expected.l3 = e.mask.l3 = AF_INET;
	e.master.l4 = e.expected.l4 = e.mask.l4 = IPPROTO_TCP;
	e.master.src.v4 = e.master.dst.v4 = ip4("127.0.0.1");
	e.master.sport = htons(57774);
	e.master.dport = htons(2121);
	e.expected.src.v4 = e.expected.dst.v4 = ip4("127.0.0.1");
	e.expected.dport = htons(50000);
	e.mask.src.v4 = e.mask.dst.v4 = 0xffffffff;
	e.mask.dport = 0xffff;
	e.timeout = 300;
	strcpy(e.helper, "ftp");
	e.have = EXP_H_MASTER | EXP_H_EXPECTED | EXP_H_MASK | EXP_H_PORTS |
		 EXP_H_TIMEOUT | EXP_H_CLASS | EXP_H_HELPER | EXP_H_FLAGS;
	exp_snprintf(buf, sizeof(buf), &e, OBJ_FMT_PLAIN);
	assert_string_equal(buf, "proto=6 src=127.0.0.1 dst=127.0.0.1 sport=0 dport=50000 "
			    "mask-src=255.255.255.255 mask-dst=255.255.255.255 "
			    "sport=0 dport=65535 master-src=127.0.0.1 "
			    "master-dst=127.0.0.1 sport=57774 dport=2121 class=0 "
			    "helper=ftp");
	exp_snprintf_timeout(buf, sizeof(buf), &e);
	assert_true(strncmp(buf, "300 proto=6 ", 12) == 0);

	n = exp_to_nfexp(&e);
	assert_non_null(n);
	assert_int_equal(exp_from_nfexp(&b, n), 0);
	nfexp_destroy(n);
	assert_int_equal(b.have, e.have);
	assert_memory_equal(&b.master, &e.master, sizeof(e.master));
	assert_memory_equal(&b.expected, &e.expected, sizeof(e.expected));
	assert_memory_equal(&b.mask, &e.mask, sizeof(e.mask));
	assert_int_equal(b.timeout, 300);
	assert_string_equal(b.helper, "ftp");
}

/* Filters (General { Filter }, config-and-cli.md §3.5). */
static struct ct udp_from(const char *src, const char *rsrc)
{
	struct ct ct;

	memset(&ct, 0, sizeof(ct));
	ct.orig.l3 = ct.repl.l3 = AF_INET;
	ct.orig.l4 = ct.repl.l4 = IPPROTO_UDP;
	ct.orig.src.v4 = ip4(src);
	ct.orig.dst.v4 = ip4("198.51.100.1");
	ct.repl.src.v4 = ip4(rsrc);
	ct.repl.dst.v4 = ct.orig.src.v4;
	ct.have = CT_H_ORIG | CT_H_PORTS | CT_H_REPL;
	return ct;
}

static void filter_protocol(void **state)
{
	struct conf_filter f;
	struct ct u = udp_from("10.0.0.1", "198.51.100.1"), t;

	(void)state;
	t = u;
	t.orig.l4 = IPPROTO_TCP;
	memset(&f, 0, sizeof(f));
	assert_true(filter_ct_accept(&f, &u));          /* no Filter block */
	f.present = true;
	f.proto_policy = FILTER_ACCEPT;
	f.protos[IPPROTO_TCP] = 1;
	assert_true(filter_ct_accept(&f, &t));
	assert_false(filter_ct_accept(&f, &u));
	f.proto_policy = FILTER_IGNORE;
	assert_false(filter_ct_accept(&f, &t));
	assert_true(filter_ct_accept(&f, &u));
}

static void filter_address(void **state)
{
	struct conf_addr_filter a[3];
	struct conf_filter f;
	struct ct c1 = udp_from("10.0.0.1", "198.51.100.1");     /* orig src in net */
	struct ct c2 = udp_from("192.0.2.1", "10.0.0.200");      /* reply src in net */
	struct ct c3 = udp_from("192.0.2.1", "198.51.100.1");    /* neither */
	struct ct c4 = udp_from("172.16.0.5", "198.51.100.1");   /* host */
	struct ct v6;

	(void)state;
	memset(&f, 0, sizeof(f));
	memset(a, 0, sizeof(a));
	a[0].family = AF_INET;
	a[0].addr.v4 = ip4("10.0.0.0");
	a[0].prefix = 24;
	a[1].family = AF_INET;
	a[1].addr.v4 = ip4("172.16.0.5");
	a[1].prefix = 32;
	a[2].family = AF_INET6;
	ip6(&a[2].addr, "2001:db8:1::");
	a[2].prefix = 48;
	f.present = true;
	f.addrs = a;
	f.naddrs = 3;
	f.addr_policy = FILTER_IGNORE;
	assert_false(filter_ct_accept(&f, &c1));
	assert_false(filter_ct_accept(&f, &c2));
	assert_true(filter_ct_accept(&f, &c3));
	assert_false(filter_ct_accept(&f, &c4));
	f.addr_policy = FILTER_ACCEPT;
	assert_true(filter_ct_accept(&f, &c1));
	assert_false(filter_ct_accept(&f, &c3));

	memset(&v6, 0, sizeof(v6));
	v6.orig.l3 = AF_INET6;
	v6.orig.l4 = IPPROTO_TCP;
	ip6(&v6.orig.src, "2001:db8:1:ffff::1");
	v6.have = CT_H_ORIG;
	assert_true(filter_ct_accept(&f, &v6));
	ip6(&v6.orig.src, "2001:db8:2::1");
	assert_false(filter_ct_accept(&f, &v6));

	/* /0 matches everything of its family. */
	a[0].addr.v4 = 0;
	a[0].prefix = 0;
	assert_true(filter_ct_accept(&f, &c3));
}

static void filter_tcp_state(void **state)
{
	struct conf_filter f;
	struct ct t = udp_from("10.0.0.1", "198.51.100.1"), u = t;

	(void)state;
	t.orig.l4 = IPPROTO_TCP;
	t.have |= CT_H_TCP_STATE;
	t.tcp_state = 3;        /* ESTABLISHED */
	memset(&f, 0, sizeof(f));
	f.present = true;
	f.state_policy = FILTER_ACCEPT;
	f.tcp_states = 1u << 3;
	assert_true(filter_ct_accept(&f, &t));
	t.tcp_state = 7;        /* TIME_WAIT */
	assert_false(filter_ct_accept(&f, &t));
	assert_true(filter_ct_accept(&f, &u));  /* not TCP: passes */
	t.have &= ~CT_H_TCP_STATE;              /* state unknown: passes */
	assert_true(filter_ct_accept(&f, &t));
	f.state_policy = FILTER_IGNORE;
	t.have |= CT_H_TCP_STATE;
	t.tcp_state = 3;
	assert_false(filter_ct_accept(&f, &t));
}

/* ---- one-pass parser against libnetfilter_conntrack's (obj_nlparse.c) ---- */

static uint32_t rng = 2463534242u;

static uint32_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 17;
	rng ^= rng << 5;
	return rng;
}

static bool coin(unsigned pct)
{
	return rnd() % 100 < pct;
}

static void put_rnd(struct nlmsghdr *nlh, uint16_t type, size_t len)
{
	uint8_t b[64];

	for (size_t i = 0; i < len; i++)
		b[i] = coin(30) ? 0 : (uint8_t)rnd();
	mnl_attr_put(nlh, type, len, b);
}

struct gen {
	uint8_t l3, l4;
	union addr a[4];        /* orig src, dst, NATed reply src, dst */
};

static void put_tuple(struct nlmsghdr *nlh, uint16_t type, const struct gen *g, bool reply)
{
	static const uint8_t icmp_types[] = { 8, 0, 13, 3, 128, 129, 135, 200 };
	struct nlattr *t = mnl_attr_nest_start(nlh, type), *n;
	const union addr *src = &g->a[reply ? 2 : 0], *dst = &g->a[reply ? 3 : 1];
	bool v6 = g->l3 == AF_INET6;

	if (coin(95)) {
		n = mnl_attr_nest_start(nlh, CTA_TUPLE_IP);
		if ((!v6 || coin(3)) && coin(96))
			mnl_attr_put(nlh, CTA_IP_V4_SRC, 4, src->b);
		if ((!v6 || coin(3)) && coin(96))
			mnl_attr_put(nlh, CTA_IP_V4_DST, 4, dst->b);
		if ((v6 || coin(3)) && coin(96))
			mnl_attr_put(nlh, CTA_IP_V6_SRC, 16, src->b);
		if ((v6 || coin(3)) && coin(96))
			mnl_attr_put(nlh, CTA_IP_V6_DST, 16, dst->b);
		mnl_attr_nest_end(nlh, n);
	}
	if (coin(95)) {
		bool icmp = g->l4 == IPPROTO_ICMP || g->l4 == IPPROTO_ICMPV6;

		n = mnl_attr_nest_start(nlh, CTA_TUPLE_PROTO);
		if (coin(96))
			mnl_attr_put_u8(nlh, CTA_PROTO_NUM, g->l4);
		if ((!icmp || coin(3)) && coin(96))
			mnl_attr_put_u16(nlh, CTA_PROTO_SRC_PORT, (uint16_t)rnd());
		if ((!icmp || coin(3)) && coin(96))
			mnl_attr_put_u16(nlh, CTA_PROTO_DST_PORT, (uint16_t)rnd());
		if ((icmp && coin(90)) || coin(3)) {
			bool six = g->l4 == IPPROTO_ICMPV6 ? !coin(3) : coin(3);

			if (coin(95))
				mnl_attr_put_u8(nlh, six ? CTA_PROTO_ICMPV6_TYPE : CTA_PROTO_ICMP_TYPE,
						icmp_types[rnd() % sizeof(icmp_types)]);
			if (coin(95))
				mnl_attr_put_u8(nlh, six ? CTA_PROTO_ICMPV6_CODE : CTA_PROTO_ICMP_CODE,
						(uint8_t)(rnd() % 4));
			if (coin(95))
				mnl_attr_put_u16(nlh, six ? CTA_PROTO_ICMPV6_ID : CTA_PROTO_ICMP_ID,
						 (uint16_t)rnd());
		}
		mnl_attr_nest_end(nlh, n);
	}
	if (coin(5))
		mnl_attr_put_u16(nlh, CTA_TUPLE_ZONE, (uint16_t)rnd());
	mnl_attr_nest_end(nlh, t);
}

static void put_u32x3(struct nlmsghdr *nlh, uint16_t type, unsigned pct)
{
	struct nlattr *n = mnl_attr_nest_start(nlh, type);

	for (uint16_t i = 1; i <= 3; i++)
		if (coin(pct))
			mnl_attr_put_u32(nlh, i, coin(40) ? 0 : rnd());
	mnl_attr_nest_end(nlh, n);
}

static void put_counters(struct nlmsghdr *nlh, uint16_t type)
{
	struct nlattr *n = mnl_attr_nest_start(nlh, type);

	if (coin(85))
		mnl_attr_put_u64(nlh, CTA_COUNTERS_PACKETS, ((uint64_t)rnd() << 32) | rnd());
	if (coin(85))
		mnl_attr_put_u64(nlh, CTA_COUNTERS_BYTES, ((uint64_t)rnd() << 32) | rnd());
	if (coin(15))
		mnl_attr_put_u32(nlh, CTA_COUNTERS32_PACKETS, rnd());
	if (coin(15))
		mnl_attr_put_u32(nlh, CTA_COUNTERS32_BYTES, rnd());
	mnl_attr_nest_end(nlh, n);
}

static void put_protoinfo(struct nlmsghdr *nlh, const struct gen *g)
{
	struct nlattr *p = mnl_attr_nest_start(nlh, CTA_PROTOINFO), *n;
	unsigned which = coin(90) ? g->l4 : (unsigned)rnd() % 256;

	if (which == IPPROTO_TCP || coin(3)) {
		n = mnl_attr_nest_start(nlh, CTA_PROTOINFO_TCP);
		if (coin(95))
			mnl_attr_put_u8(nlh, CTA_PROTOINFO_TCP_STATE, (uint8_t)(rnd() % 10));
		if (coin(80))
			mnl_attr_put_u8(nlh, CTA_PROTOINFO_TCP_WSCALE_ORIGINAL, (uint8_t)(rnd() % 15));
		if (coin(80))
			mnl_attr_put_u8(nlh, CTA_PROTOINFO_TCP_WSCALE_REPLY, (uint8_t)(rnd() % 15));
		if (coin(70))
			mnl_attr_put_u16(nlh, CTA_PROTOINFO_TCP_FLAGS_ORIGINAL, (uint16_t)rnd());
		if (coin(70))
			mnl_attr_put_u16(nlh, CTA_PROTOINFO_TCP_FLAGS_REPLY, (uint16_t)rnd());
		mnl_attr_nest_end(nlh, n);
	}
	if (which == IPPROTO_SCTP || coin(3)) {
		n = mnl_attr_nest_start(nlh, CTA_PROTOINFO_SCTP);
		if (coin(95))
			mnl_attr_put_u8(nlh, CTA_PROTOINFO_SCTP_STATE, (uint8_t)(rnd() % 10));
		if (coin(90))
			mnl_attr_put_u32(nlh, CTA_PROTOINFO_SCTP_VTAG_ORIGINAL, rnd());
		if (coin(90))
			mnl_attr_put_u32(nlh, CTA_PROTOINFO_SCTP_VTAG_REPLY, rnd());
		mnl_attr_nest_end(nlh, n);
	}
	if (which == IPPROTO_DCCP || coin(3)) {
		n = mnl_attr_nest_start(nlh, CTA_PROTOINFO_DCCP);
		if (coin(95))
			mnl_attr_put_u8(nlh, CTA_PROTOINFO_DCCP_STATE, (uint8_t)(rnd() % 9));
		if (coin(90))
			mnl_attr_put_u8(nlh, CTA_PROTOINFO_DCCP_ROLE, (uint8_t)(rnd() % 3));
		if (coin(70))
			mnl_attr_put_u64(nlh, CTA_PROTOINFO_DCCP_HANDSHAKE_SEQ,
					 ((uint64_t)rnd() << 32) | rnd());
		mnl_attr_nest_end(nlh, n);
	}
	mnl_attr_nest_end(nlh, p);
}

static void put_top(struct nlmsghdr *nlh, unsigned what, const struct gen *g)
{
	static const char *const helpers[] = { "ftp", "sip", "", "amanda", "a23456789012345" };
	struct nlattr *n;

	switch (what) {
	case 0: if (coin(98)) put_tuple(nlh, CTA_TUPLE_ORIG, g, false); break;
	case 1: if (coin(90)) put_tuple(nlh, CTA_TUPLE_REPLY, g, true); break;
	case 2: if (coin(15)) put_tuple(nlh, CTA_TUPLE_MASTER, g, coin(50)); break;
	case 3:
		if (coin(90))
			mnl_attr_put_u32(nlh, CTA_STATUS, htonl(rnd() & 0x3fff));
		break;
	case 4: if (coin(85)) put_protoinfo(nlh, g); break;
	case 5:
		if (coin(15)) {
			n = mnl_attr_nest_start(nlh, CTA_HELP);
			if (coin(90))
				mnl_attr_put_strz(nlh, CTA_HELP_NAME, helpers[rnd() % 5]);
			if (coin(10))
				put_rnd(nlh, CTA_HELP_INFO, rnd() % 12);
			mnl_attr_nest_end(nlh, n);
		}
		break;
	case 6: if (coin(90)) mnl_attr_put_u32(nlh, CTA_TIMEOUT, htonl(rnd() % 500000)); break;
	case 7: if (coin(50)) mnl_attr_put_u32(nlh, CTA_MARK, coin(30) ? 0 : rnd()); break;
	case 8: if (coin(30)) put_counters(nlh, CTA_COUNTERS_ORIG); break;
	case 9: if (coin(30)) put_counters(nlh, CTA_COUNTERS_REPLY); break;
	case 10: if (coin(50)) mnl_attr_put_u32(nlh, CTA_USE, htonl(1)); break;
	case 11: if (coin(60)) mnl_attr_put_u32(nlh, CTA_ID, rnd()); break;
	case 12: if (coin(10)) put_u32x3(nlh, CTA_NAT_SEQ_ADJ_ORIG, 90); break;
	case 13: if (coin(10)) put_u32x3(nlh, CTA_NAT_SEQ_ADJ_REPLY, 90); break;
	case 14: if (coin(10)) mnl_attr_put_u32(nlh, CTA_SECMARK, rnd()); break;
	case 15: if (coin(20)) mnl_attr_put_u16(nlh, CTA_ZONE, htons((uint16_t)(rnd() % 5))); break;
	case 16:
		if (coin(10)) {
			n = mnl_attr_nest_start(nlh, CTA_SECCTX);
			mnl_attr_put_strz(nlh, CTA_SECCTX_NAME, "system_u:object_r:x_t:s0");
			mnl_attr_nest_end(nlh, n);
		}
		break;
	case 17:
		if (coin(20)) {
			n = mnl_attr_nest_start(nlh, CTA_TIMESTAMP);
			if (coin(90))
				mnl_attr_put_u64(nlh, CTA_TIMESTAMP_START, ((uint64_t)rnd() << 32) | rnd());
			if (coin(40))
				mnl_attr_put_u64(nlh, CTA_TIMESTAMP_STOP, ((uint64_t)rnd() << 32) | rnd());
			mnl_attr_nest_end(nlh, n);
		}
		break;
	case 18:
		if (coin(15)) {
			static const size_t lens[] = { 0, 4, 8, 16, 3, 5, 13, 20, 60 };

			put_rnd(nlh, CTA_LABELS, lens[rnd() % 9]);
		}
		break;
	case 19: if (coin(50)) put_u32x3(nlh, CTA_SYNPROXY, 95); break;
	case 20: if (coin(5)) put_rnd(nlh, 30, rnd() % 9); break;     /* unknown */
	case 21: if (coin(3)) put_rnd(nlh, CTA_NAT_SRC, rnd() % 9); break;
	}
}

#define NTOP 22

/* A random conntrack event: random protocol, family, NAT, attribute order,
 * presence and, rarely, duplicates and misplaced attributes. */
static size_t gen_ct_msg(uint8_t *buf, size_t size)
{
	static const uint8_t l4s[] = { IPPROTO_TCP, IPPROTO_UDP, IPPROTO_ICMP, IPPROTO_ICMPV6,
				       IPPROTO_SCTP, IPPROTO_DCCP, IPPROTO_GRE, IPPROTO_UDPLITE };
	unsigned order[NTOP];
	struct nlmsghdr *nlh;
	struct nfgenmsg *nfg;
	struct gen g;

	memset(buf, 0, size);
	memset(&g, 0, sizeof(g));
	g.l3 = coin(50) ? AF_INET : AF_INET6;
	g.l4 = l4s[rnd() % sizeof(l4s)];
	for (int i = 0; i < 4; i++)
		for (int j = 0; j < 4; j++)
			g.a[i].v6[j] = rnd();
	if (coin(60)) {         /* no NAT: the reply is the inverse */
		g.a[2] = g.a[1];
		g.a[3] = g.a[0];
	}
	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_NEW;
	nfg = mnl_nlmsg_put_extra_header(nlh, sizeof(*nfg));
	nfg->nfgen_family = coin(97) ? g.l3 : (uint8_t)rnd();
	for (unsigned i = 0; i < NTOP; i++)
		order[i] = i;
	if (coin(30))
		for (unsigned i = NTOP - 1; i > 0; i--) {
			unsigned j = rnd() % (i + 1), t = order[i];

			order[i] = order[j];
			order[j] = t;
		}
	for (unsigned i = 0; i < NTOP; i++) {
		put_top(nlh, order[i], &g);
		if (coin(2))
			put_top(nlh, order[i], &g);
	}
	return nlh->nlmsg_len;
}

static void assert_same_ct(const struct ct *a, const struct ct *b)
{
	struct ct x = *a, y = *b;

	x.ext = y.ext = NULL;
	assert_memory_equal(&x, &y, sizeof(x));
	assert_true((a->ext == NULL) == (b->ext == NULL));
	if (a->ext) {
		assert_int_equal(a->ext->labels_len, b->ext->labels_len);
		assert_memory_equal(a->ext, b->ext, sizeof(*a->ext) + a->ext->labels_len);
	}
}

/* Both parsers on one message; returns whether it was accepted. */
static bool compare_parsers(const struct nlmsghdr *nlh)
{
	struct ct a, b;
	int ra, rb;

	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	ra = ct_from_nlmsg_nfct(&a, nlh);
	rb = ct_from_nlmsg(&b, nlh);
	assert_int_equal(ra == 0, rb == 0);
	if (ra == 0)
		assert_same_ct(&a, &b);
	ct_release(&a);
	ct_release(&b);
	return ra == 0;
}

static void nlparse_equals_libnfct(void **state)
{
	static uint8_t buf[8192] __attribute__((aligned(8)));
	unsigned accepted = 0, n = 20000;

	(void)state;
	for (unsigned i = 0; i < n; i++) {
		gen_ct_msg(buf, sizeof(buf));
		accepted += compare_parsers((const struct nlmsghdr *)buf);
	}
	/* Most generated events are usable: the comparison is not vacuous. */
	assert_true(accepted > n / 2);
}

/* Corrupted and truncated messages: what nl_msg_ok() lets through is
 * accepted or refused by both parsers alike, with the same result. */
static void nlparse_malformed_like_libnfct(void **state)
{
	static uint8_t buf[8192] __attribute__((aligned(8)));
	unsigned passed = 0, n = 40000;

	(void)state;
	for (unsigned i = 0; i < n; i++) {
		struct nlmsghdr *nlh = (struct nlmsghdr *)buf;
		size_t len = gen_ct_msg(buf, sizeof(buf));
		unsigned k = 1 + rnd() % 4;

		for (unsigned j = 0; j < k; j++) {
			size_t at = 20 + rnd() % (len - 20);

			switch (rnd() % 4) {
			case 0: buf[at] ^= (uint8_t)(1u << (rnd() % 8)); break;
			case 1: buf[at] = (uint8_t)rnd(); break;
			case 2: buf[at & ~(size_t)3] = (uint8_t)(rnd() % 40); break; /* an nla_len */
			default:
				nlh->nlmsg_len = (uint32_t)(20 + rnd() % (len - 19));
				break;
			}
		}
		if (nlh->nlmsg_len < 20 || nlh->nlmsg_len > len)
			continue;
		if (!nl_msg_ok(nlh, NLMSG_ALIGN(nlh->nlmsg_len), false)) {
			struct ct c;

			memset(&c, 0, sizeof(c));
			assert_int_equal(ct_from_nlmsg(&c, nlh), -1);
			continue;
		}
		passed++;
		compare_parsers(nlh);
	}
	assert_true(passed > n / 10);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(print_internal_line),
		cmocka_unit_test(print_external_line_has_no_reply),
		cmocka_unit_test(print_icmp_v6_and_missing_fields),
		cmocka_unit_test(print_truncates_safely),
		cmocka_unit_test(roundtrip_every_field),
		cmocka_unit_test(from_nfct_detects_nat),
		cmocka_unit_test(to_nfct_commit_of_external_entry),
		cmocka_unit_test(exp_line_and_roundtrip),
		cmocka_unit_test(filter_protocol),
		cmocka_unit_test(filter_address),
		cmocka_unit_test(filter_tcp_state),
		cmocka_unit_test(nlparse_equals_libnfct),
		cmocka_unit_test(nlparse_malformed_like_libnfct),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
