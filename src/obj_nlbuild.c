/*
 * ctnetlink requests from struct ct / struct exp (see obj_nlbuild.h).
 * Presence follows obj_nfct.c's ct_to_nfct_mode()/exp_to_nfexp_mode(): an
 * attribute goes out only when its CT_H_* / EXP_H_* bit says so; tuples
 * always carry both ports (or the ICMP type, code and id), zero when
 * unknown, as libnetfilter_conntrack sends them.
 */
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <linux/netfilter/nf_conntrack_common.h>

#include "obj_nlbuild.h"

#ifndef IP_CT_TCP_FLAG_BE_LIBERAL
#define IP_CT_TCP_FLAG_BE_LIBERAL 0x08
#endif

/* One direction's tuple as the library holds it. */
struct ntuple {
	uint8_t l3, l4;
	const union addr *src, *dst;
	uint16_t sport, dport;          /* network order; ICMP: id in sport */
	uint8_t itype, icode;
};

static const union addr zero_addr;

static int put_tuple_raw(struct nlmsghdr *nlh, const struct ntuple *t)
{
	struct nlattr *ip, *proto;

	ip = mnl_attr_nest_start(nlh, CTA_TUPLE_IP);
	if (t->l3 == AF_INET) {
		mnl_attr_put_u32(nlh, CTA_IP_V4_SRC, t->src->v4);
		mnl_attr_put_u32(nlh, CTA_IP_V4_DST, t->dst->v4);
	} else if (t->l3 == AF_INET6) {
		mnl_attr_put(nlh, CTA_IP_V6_SRC, 16, t->src->b);
		mnl_attr_put(nlh, CTA_IP_V6_DST, 16, t->dst->b);
	} else {
		mnl_attr_nest_cancel(nlh, ip);
		return -1;
	}
	mnl_attr_nest_end(nlh, ip);

	proto = mnl_attr_nest_start(nlh, CTA_TUPLE_PROTO);
	mnl_attr_put_u8(nlh, CTA_PROTO_NUM, t->l4);
	switch (t->l4) {
	case IPPROTO_TCP:
	case IPPROTO_UDP:
	case IPPROTO_SCTP:
	case IPPROTO_DCCP:
	case IPPROTO_GRE:
	case IPPROTO_UDPLITE:
		mnl_attr_put_u16(nlh, CTA_PROTO_SRC_PORT, t->sport);
		mnl_attr_put_u16(nlh, CTA_PROTO_DST_PORT, t->dport);
		break;
	case IPPROTO_ICMP:
		mnl_attr_put_u8(nlh, CTA_PROTO_ICMP_CODE, t->icode);
		mnl_attr_put_u8(nlh, CTA_PROTO_ICMP_TYPE, t->itype);
		mnl_attr_put_u16(nlh, CTA_PROTO_ICMP_ID, t->sport);
		break;
	case IPPROTO_ICMPV6:
		mnl_attr_put_u8(nlh, CTA_PROTO_ICMPV6_CODE, t->icode);
		mnl_attr_put_u8(nlh, CTA_PROTO_ICMPV6_TYPE, t->itype);
		mnl_attr_put_u16(nlh, CTA_PROTO_ICMPV6_ID, t->sport);
		break;
	default:
		mnl_attr_nest_cancel(nlh, proto);
		return -1;
	}
	mnl_attr_nest_end(nlh, proto);
	return 0;
}

/* A nested tuple; on failure nothing of it stays in the message. */
static int put_tuple(struct nlmsghdr *nlh, uint16_t type, const struct ntuple *t)
{
	struct nlattr *nest = mnl_attr_nest_start(nlh, type);

	if (put_tuple_raw(nlh, t) < 0) {
		mnl_attr_nest_cancel(nlh, nest);
		return -1;
	}
	mnl_attr_nest_end(nlh, nest);
	return 0;
}

/* A tuple with what is known of it: addresses always, ports if `ports`. */
static void ntuple_of(struct ntuple *n, const struct tuple *t, bool addrs, bool ports)
{
	memset(n, 0, sizeof(*n));
	n->l3 = t->l3;
	n->l4 = t->l4;
	n->src = addrs ? &t->src : &zero_addr;
	n->dst = addrs ? &t->dst : &zero_addr;
	if (ports) {
		n->sport = t->sport;
		n->dport = t->dport;
		/* the library's l4 union: ICMP type and code share the
		 * destination port's bytes */
		memcpy(&n->itype, (const uint8_t *)&t->dport, 1);
		memcpy(&n->icode, (const uint8_t *)&t->dport + 1, 1);
	}
}

static void put_nat(struct nlmsghdr *nlh, uint16_t type, const struct ct *ct,
		    const union addr *a, const uint16_t *port)
{
	struct nlattr *nest = mnl_attr_nest_start(nlh, type);

	if (a != NULL) {
		if (ct->orig.l3 == AF_INET)
			mnl_attr_put_u32(nlh, CTA_NAT_MINIP, a->v4);
		else
			mnl_attr_put(nlh, CTA_NAT_V6_MINIP, 16, a->b);
	}
	if (port != NULL) {
		struct nlattr *p = mnl_attr_nest_start(nlh, CTA_NAT_PROTO);

		if (ct->orig.l4 == IPPROTO_TCP || ct->orig.l4 == IPPROTO_UDP) {
			mnl_attr_put_u16(nlh, CTA_PROTONAT_PORT_MIN, *port);
			mnl_attr_put_u16(nlh, CTA_PROTONAT_PORT_MAX, *port);
		}
		mnl_attr_nest_end(nlh, p);
	}
	mnl_attr_nest_end(nlh, nest);
}

static void put_protoinfo(struct nlmsghdr *nlh, const struct ct *ct, bool liberal)
{
	struct nlattr *nest, *p;
	uint8_t fl[2] = { IP_CT_TCP_FLAG_BE_LIBERAL, IP_CT_TCP_FLAG_BE_LIBERAL };

	switch (ct->orig.l4) {
	case IPPROTO_TCP:
		if (!(ct->have & (CT_H_TCP_STATE | CT_H_TCP_WSCALE)) && !liberal)
			return;
		nest = mnl_attr_nest_start(nlh, CTA_PROTOINFO);
		p = mnl_attr_nest_start(nlh, CTA_PROTOINFO_TCP);
		if (ct->have & CT_H_TCP_STATE)
			mnl_attr_put_u8(nlh, CTA_PROTOINFO_TCP_STATE, ct->tcp_state);
		if (liberal) {  /* struct nf_ct_tcp_flags: flags, mask */
			mnl_attr_put(nlh, CTA_PROTOINFO_TCP_FLAGS_ORIGINAL, 2, fl);
			mnl_attr_put(nlh, CTA_PROTOINFO_TCP_FLAGS_REPLY, 2, fl);
		}
		if (ct->have & CT_H_TCP_WSCALE) {
			mnl_attr_put_u8(nlh, CTA_PROTOINFO_TCP_WSCALE_ORIGINAL, ct->wscale_orig);
			mnl_attr_put_u8(nlh, CTA_PROTOINFO_TCP_WSCALE_REPLY, ct->wscale_repl);
		}
		break;
	case IPPROTO_SCTP:
		if (!(ct->have & CT_H_SCTP))
			return;
		nest = mnl_attr_nest_start(nlh, CTA_PROTOINFO);
		p = mnl_attr_nest_start(nlh, CTA_PROTOINFO_SCTP);
		mnl_attr_put_u8(nlh, CTA_PROTOINFO_SCTP_STATE, ct->sctp_state);
		mnl_attr_put_u32(nlh, CTA_PROTOINFO_SCTP_VTAG_ORIGINAL, htonl(ct->sctp_vtag_orig));
		mnl_attr_put_u32(nlh, CTA_PROTOINFO_SCTP_VTAG_REPLY, htonl(ct->sctp_vtag_repl));
		break;
	case IPPROTO_DCCP:
		if (!(ct->have & CT_H_DCCP))
			return;
		nest = mnl_attr_nest_start(nlh, CTA_PROTOINFO);
		p = mnl_attr_nest_start(nlh, CTA_PROTOINFO_DCCP);
		mnl_attr_put_u8(nlh, CTA_PROTOINFO_DCCP_STATE, ct->dccp_state);
		mnl_attr_put_u8(nlh, CTA_PROTOINFO_DCCP_ROLE, ct->dccp_role);
		break;
	default:
		return;
	}
	mnl_attr_nest_end(nlh, p);
	mnl_attr_nest_end(nlh, nest);
}

static void put_seqadj(struct nlmsghdr *nlh, uint16_t type, const uint32_t *v)
{
	struct nlattr *nest = mnl_attr_nest_start(nlh, type);

	mnl_attr_put_u32(nlh, CTA_NAT_SEQ_CORRECTION_POS, htonl(v[0]));
	mnl_attr_put_u32(nlh, CTA_NAT_SEQ_OFFSET_BEFORE, htonl(v[1]));
	mnl_attr_put_u32(nlh, CTA_NAT_SEQ_OFFSET_AFTER, htonl(v[2]));
	mnl_attr_nest_end(nlh, nest);
}

static void put_strz(struct nlmsghdr *nlh, uint16_t type, const char *s, size_t max)
{
	char b[64];
	size_t n = strnlen(s, max - 1);

	memcpy(b, s, n);
	b[n] = '\0';
	mnl_attr_put(nlh, type, n + 1, b);
}

/* Original and reply tuples; ICMP type/code/id as the library derives
 * them from the original tuple (reply type: the kernel's inversion). */
static int put_tuples(struct nlmsghdr *nlh, const struct ct *ct, bool kernel)
{
	bool icmp = l4_is_icmp(ct->orig.l3, ct->orig.l4);
	bool ports = (ct->have & CT_H_PORTS) && !icmp;
	bool icmp_set = icmp && (ct->have & (CT_H_ICMP | CT_H_PORTS));
	bool synth = ct->have & CT_H_REPL_SYNTH;
	struct ntuple o, r;
	struct tuple inv;

	ntuple_of(&o, &ct->orig, true, ports);
	if (icmp_set) {
		o.itype = ct->orig.itype;
		o.icode = ct->orig.icode;
		o.sport = ct->orig.sport;
	}
	if (put_tuple(nlh, CTA_TUPLE_ORIG, &o) < 0)
		return -1;
	if (!synth && (ct->have & CT_H_REPL)) {
		ntuple_of(&r, &ct->repl, true, ports);
	} else if (synth && kernel) {
		inv = ct->orig;
		inv.src = ct->orig.dst;
		inv.dst = ct->orig.src;
		inv.sport = ct->orig.dport;
		inv.dport = ct->orig.sport;
		ntuple_of(&r, &inv, true, ports);
	} else {
		return 0;
	}
	if (icmp_set) {
		tuple_invert(&inv, &ct->orig);
		r.itype = inv.itype;
		r.icode = ct->orig.icode;
		r.sport = ct->orig.sport;
	}
	return put_tuple(nlh, CTA_TUPLE_REPLY, &r);
}

int nlb_ct(struct nlmsghdr *nlh, const struct ct *ct, bool tcp_window_tracking,
	   uint32_t timeout)
{
	const struct ct_ext *x = ct->ext;
	bool synth = ct->have & CT_H_REPL_SYNTH;
	bool ports = (ct->have & CT_H_PORTS) && !l4_is_icmp(ct->orig.l3, ct->orig.l4);

	if (put_tuples(nlh, ct, true) < 0)
		return -1;
	if (x && (ct->have & CT_H_MASTER)) {
		struct ntuple m;

		ntuple_of(&m, &x->master, true, (ct->have & CT_H_MASTER_PORTS) &&
			  l4_has_ports(x->master.l4));
		put_tuple(nlh, CTA_TUPLE_MASTER, &m);   /* dropped if unusable, as the library does */
	}
	if (ct->have & CT_H_STATUS)
		mnl_attr_put_u32(nlh, CTA_STATUS,
				 htonl((ct->status & ~IPS_EXPECTED) | IPS_CONFIRMED));
	if (timeout)
		mnl_attr_put_u32(nlh, CTA_TIMEOUT, htonl(timeout));
	if (ct->have & CT_H_MARK)
		mnl_attr_put_u32(nlh, CTA_MARK, htonl(ct->mark));
	if (ct->have & CT_H_SECMARK)
		mnl_attr_put_u32(nlh, CTA_SECMARK, htonl(ct->secmark));
	put_protoinfo(nlh, ct, ct->orig.l4 == IPPROTO_TCP && !tcp_window_tracking);
	if (synth) {
		bool sa = ct->have & CT_H_SNAT, sp = ports && (ct->have & CT_H_SPAT);
		bool da = ct->have & CT_H_DNAT, dp = ports && (ct->have & CT_H_DPAT);

		if (sa || sp)
			put_nat(nlh, CTA_NAT_SRC, ct, sa ? &ct->repl.dst : NULL,
				sp ? &ct->repl.dport : NULL);
		if (da || dp)
			put_nat(nlh, CTA_NAT_DST, ct, da ? &ct->repl.src : NULL,
				dp ? &ct->repl.sport : NULL);
	}
	if (x && (ct->have & CT_H_SEQADJ)) {
		put_seqadj(nlh, CTA_NAT_SEQ_ADJ_ORIG, &x->seqadj[0]);
		put_seqadj(nlh, CTA_NAT_SEQ_ADJ_REPLY, &x->seqadj[3]);
	}
	if ((ct->have & CT_H_HELPER) && ct->helper[0]) {
		struct nlattr *nest = mnl_attr_nest_start(nlh, CTA_HELP);

		put_strz(nlh, CTA_HELP_NAME, ct->helper, CT_HELPER_MAX);
		mnl_attr_nest_end(nlh, nest);
	}
	if (ct->have & CT_H_ZONE)
		mnl_attr_put_u16(nlh, CTA_ZONE, htons(ct->zone));
	if (x && (ct->have & CT_H_LABELS) && x->labels_len) {
		/* the library's bitmask: whole 32-bit words */
		size_t len = ((size_t)x->labels_len + 3) / 4 * 4;
		uint8_t b[CT_LABELS_MAX + 4];

		if (len > sizeof(b))
			len = sizeof(b);
		memset(b, 0, len);
		memcpy(b, x->labels, x->labels_len < len ? x->labels_len : len);
		mnl_attr_put(nlh, CTA_LABELS, len, b);
	}
	if (x && (ct->have & CT_H_SYNPROXY)) {
		struct nlattr *nest = mnl_attr_nest_start(nlh, CTA_SYNPROXY);

		mnl_attr_put_u32(nlh, CTA_SYNPROXY_ISN, htonl(x->synproxy[1]));
		mnl_attr_put_u32(nlh, CTA_SYNPROXY_ITS, htonl(x->synproxy[0]));
		mnl_attr_put_u32(nlh, CTA_SYNPROXY_TSOFF, htonl(x->synproxy[2]));
		mnl_attr_nest_end(nlh, nest);
	}
	return 0;
}

int nlb_ct_key(struct nlmsghdr *nlh, const struct ct *ct)
{
	struct ct k = *ct;

	k.have &= CT_H_ORIG | CT_H_PORTS | CT_H_ICMP | CT_H_ZONE;
	if (put_tuples(nlh, &k, false) < 0)
		return -1;
	if (k.have & CT_H_ZONE)
		mnl_attr_put_u16(nlh, CTA_ZONE, htons(k.zone));
	return 0;
}

int nlb_exp(struct nlmsghdr *nlh, const struct exp *e, uint32_t timeout)
{
	bool ports = e->have & EXP_H_PORTS;
	struct ntuple t;

	if (!(e->have & EXP_H_MASTER) && !(e->have & EXP_H_EXPECTED))
		return -1;
	/* An unusable tuple is left out, as the library does. Class, NAT and
	 * fn are not sent: libnetfilter_conntrack 1.0.9's builder (what
	 * commits sent before) leaves them out too, and test_kernel holds
	 * both to the same bytes. */
	if (e->have & EXP_H_EXPECTED) {
		ntuple_of(&t, &e->expected, true, ports);
		put_tuple(nlh, CTA_EXPECT_TUPLE, &t);
	}
	if (e->have & EXP_H_MASTER) {
		ntuple_of(&t, &e->master, true, ports);
		put_tuple(nlh, CTA_EXPECT_MASTER, &t);
	}
	if (e->have & EXP_H_MASK) {
		ntuple_of(&t, &e->mask, true, ports);
		put_tuple(nlh, CTA_EXPECT_MASK, &t);
	}
	if (timeout || (e->have & EXP_H_TIMEOUT))
		mnl_attr_put_u32(nlh, CTA_EXPECT_TIMEOUT,
				 htonl(timeout ? timeout : e->timeout));
	if (e->have & EXP_H_FLAGS)
		mnl_attr_put_u32(nlh, CTA_EXPECT_FLAGS, htonl(e->flags));
	if (e->have & EXP_H_ZONE)
		mnl_attr_put_u16(nlh, CTA_EXPECT_ZONE, htons(e->zone));
	if ((e->have & EXP_H_HELPER) && e->helper[0])
		put_strz(nlh, CTA_EXPECT_HELP_NAME, e->helper, CT_HELPER_MAX);
	return 0;
}
