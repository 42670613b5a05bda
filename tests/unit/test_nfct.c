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
#include <libnetfilter_conntrack/libnetfilter_conntrack.h>

#include "objconv.h"
#include "conf.h"
#include "nl.h"

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
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
