/*
 * struct ct / struct exp <-> libnetfilter_conntrack objects.
 *
 * Presence is carried both ways: an attribute is read only when the library
 * says it is set, and written only when its CT_H_* / EXP_H_* bit is on, so a
 * dump line or a wire message shows exactly what the kernel delivered.
 */
#include <string.h>
#include <errno.h>
#include <endian.h>
#include <netinet/in.h>
#include <libmnl/libmnl.h>
#include <libnetfilter_conntrack/libnetfilter_conntrack.h>

#include "objconv.h"
#include "obj_nlparse.h"
#include "nl.h"

#ifndef IP_CT_TCP_FLAG_BE_LIBERAL
#define IP_CT_TCP_FLAG_BE_LIBERAL 0x08
#endif


/* Attribute ids of one tuple direction. */
struct tattrs {
	int l3, l4, v4src, v4dst, v6src, v6dst, psrc, pdst;
};

static const struct tattrs ORIG = {
	ATTR_ORIG_L3PROTO, ATTR_ORIG_L4PROTO, ATTR_ORIG_IPV4_SRC, ATTR_ORIG_IPV4_DST,
	ATTR_ORIG_IPV6_SRC, ATTR_ORIG_IPV6_DST, ATTR_ORIG_PORT_SRC, ATTR_ORIG_PORT_DST,
};
static const struct tattrs REPL = {
	ATTR_REPL_L3PROTO, ATTR_REPL_L4PROTO, ATTR_REPL_IPV4_SRC, ATTR_REPL_IPV4_DST,
	ATTR_REPL_IPV6_SRC, ATTR_REPL_IPV6_DST, ATTR_REPL_PORT_SRC, ATTR_REPL_PORT_DST,
};
static const struct tattrs MASTER = {
	ATTR_MASTER_L3PROTO, ATTR_MASTER_L4PROTO, ATTR_MASTER_IPV4_SRC,
	ATTR_MASTER_IPV4_DST, ATTR_MASTER_IPV6_SRC, ATTR_MASTER_IPV6_DST,
	ATTR_MASTER_PORT_SRC, ATTR_MASTER_PORT_DST,
};

#define ISSET(n, a) nfct_attr_is_set((n), (enum nf_conntrack_attr)(a))

/* Bit 0: l3 + both addresses + l4 known, bit 1: both ports known. */
static int tuple_get(struct tuple *t, const struct nf_conntrack *n,
		     const struct tattrs *a)
{
	int r = 0;

	memset(t, 0, sizeof(*t));
	if (!ISSET(n, a->l3))
		return 0;
	t->l3 = nfct_get_attr_u8(n, a->l3);
	if (ISSET(n, a->l4))
		t->l4 = nfct_get_attr_u8(n, a->l4);
	if (t->l3 == AF_INET && ISSET(n, a->v4src) && ISSET(n, a->v4dst)) {
		t->src.v4 = nfct_get_attr_u32(n, a->v4src);
		t->dst.v4 = nfct_get_attr_u32(n, a->v4dst);
		r |= 1;
	} else if (t->l3 == AF_INET6 && ISSET(n, a->v6src) && ISSET(n, a->v6dst)) {
		memcpy(t->src.b, nfct_get_attr(n, a->v6src), 16);
		memcpy(t->dst.b, nfct_get_attr(n, a->v6dst), 16);
		r |= 1;
	}
	if (!ISSET(n, a->l4))
		r &= ~1;
	if (ISSET(n, a->psrc) && ISSET(n, a->pdst)) {
		t->sport = nfct_get_attr_u16(n, a->psrc);
		t->dport = nfct_get_attr_u16(n, a->pdst);
		r |= 2;
	}
	return r;
}

static void tuple_set(struct nf_conntrack *n, const struct tuple *t,
		      const struct tattrs *a, bool ports)
{
	nfct_set_attr_u8(n, a->l3, t->l3);
	nfct_set_attr_u8(n, a->l4, t->l4);
	if (t->l3 == AF_INET) {
		nfct_set_attr_u32(n, a->v4src, t->src.v4);
		nfct_set_attr_u32(n, a->v4dst, t->dst.v4);
	} else if (t->l3 == AF_INET6) {
		nfct_set_attr(n, a->v6src, t->src.b);
		nfct_set_attr(n, a->v6dst, t->dst.b);
	}
	if (ports) {
		nfct_set_attr_u16(n, a->psrc, t->sport);
		nfct_set_attr_u16(n, a->pdst, t->dport);
	}
}

/* Labels: host-order 32-bit words, bit n of word n / 32 is label n (obj.h). */
static void label_set(uint8_t *l, unsigned n)
{
	uint32_t w;

	memcpy(&w, l + (n / 32) * 4, 4);
	w |= 1u << (n % 32);
	memcpy(l + (n / 32) * 4, &w, 4);
}

static bool label_test(const uint8_t *l, unsigned n)
{
	uint32_t w;

	memcpy(&w, l + (n / 32) * 4, 4);
	return w & (1u << (n % 32));
}

int ct_from_nfct(struct ct *ct, const struct nf_conntrack *n)
{
	const struct nfct_bitmask *lb = NULL;
	size_t llen = 0;
	struct ct_ext *x;
	int r;

	memset(ct, 0, sizeof(*ct));
	if (nfct_attr_is_set(n, ATTR_CONNLABELS) &&
	    (lb = nfct_get_attr(n, ATTR_CONNLABELS))) {
		unsigned max = nfct_bitmask_maxbit(lb);

		for (unsigned i = 0; i <= max; i++)
			if (nfct_bitmask_test_bit(lb, i)) {
				llen = (max / 32 + 1) * 4;
				break;
			}
		if (llen > CT_LABELS_MAX)
			llen = CT_LABELS_MAX;
	}
	r = tuple_get(&ct->orig, n, &ORIG);
	/* Without addresses there is nothing to cache, sync or commit. */
	if ((ct->orig.l3 != AF_INET && ct->orig.l3 != AF_INET6) || !(r & 1))
		return -1;
	if (r & 1)
		ct->have |= CT_H_ORIG;
	if (l4_is_icmp(ct->orig.l3, ct->orig.l4)) {
		ct->orig.sport = ct->orig.dport = 0;
		if (nfct_attr_is_set(n, ATTR_ICMP_TYPE)) {
			ct->orig.itype = nfct_get_attr_u8(n, ATTR_ICMP_TYPE);
			ct->orig.icode = nfct_get_attr_u8(n, ATTR_ICMP_CODE);
			ct->orig.sport = nfct_get_attr_u16(n, ATTR_ICMP_ID);
			ct->have |= CT_H_PORTS | CT_H_ICMP;
		}
	} else if (r & 2) {
		ct->have |= CT_H_PORTS;
	}

	r = tuple_get(&ct->repl, n, &REPL);
	if (r & 1) {
		ct->have |= CT_H_REPL;
		ct_icmp_repl_from_orig(ct);
	} else {
		memset(&ct->repl, 0, sizeof(ct->repl));
	}

	if (nfct_attr_is_set(n, ATTR_STATUS)) {
		ct->status = nfct_get_attr_u32(n, ATTR_STATUS);
		ct->have |= CT_H_STATUS;
	}
	if ((ct->have & (CT_H_REPL | CT_H_ORIG)) == (CT_H_REPL | CT_H_ORIG))
		ct->have |= ct_nat_bits(ct);
	if (!l4_has_ports(ct->orig.l4))
		ct->have &= ~(CT_H_SPAT | CT_H_DPAT);

	if (nfct_attr_is_set(n, ATTR_TIMEOUT)) {
		ct->timeout = nfct_get_attr_u32(n, ATTR_TIMEOUT);
		ct->have |= CT_H_TIMEOUT;
	}
	if (nfct_attr_is_set(n, ATTR_MARK)) {
		ct->mark = nfct_get_attr_u32(n, ATTR_MARK);
		ct->have |= CT_H_MARK;
	}
	if (nfct_attr_is_set(n, ATTR_SECMARK)) {
		ct->secmark = nfct_get_attr_u32(n, ATTR_SECMARK);
		ct->have |= CT_H_SECMARK;
	}
	if (nfct_attr_is_set(n, ATTR_ID)) {
		ct->id = nfct_get_attr_u32(n, ATTR_ID);
		ct->have |= CT_H_ID;
	}
	/* use= is never printed for cached objects (1.4.7): not kept. */
	if (nfct_attr_is_set(n, ATTR_ZONE)) {
		ct->zone = nfct_get_attr_u16(n, ATTR_ZONE);
		ct->have |= CT_H_ZONE;
	}
	if (nfct_attr_is_set(n, ATTR_TCP_STATE)) {
		ct->tcp_state = nfct_get_attr_u8(n, ATTR_TCP_STATE);
		ct->have |= CT_H_TCP_STATE;
	}
	if (nfct_attr_is_set(n, ATTR_TCP_WSCALE_ORIG) &&
	    nfct_attr_is_set(n, ATTR_TCP_WSCALE_REPL)) {
		ct->wscale_orig = nfct_get_attr_u8(n, ATTR_TCP_WSCALE_ORIG);
		ct->wscale_repl = nfct_get_attr_u8(n, ATTR_TCP_WSCALE_REPL);
		ct->have |= CT_H_TCP_WSCALE;
	}
	if (nfct_attr_is_set(n, ATTR_SCTP_STATE)) {
		ct->sctp_state = nfct_get_attr_u8(n, ATTR_SCTP_STATE);
		ct->sctp_vtag_orig = nfct_get_attr_u32(n, ATTR_SCTP_VTAG_ORIG);
		ct->sctp_vtag_repl = nfct_get_attr_u32(n, ATTR_SCTP_VTAG_REPL);
		ct->have |= CT_H_SCTP;
	}
	if (nfct_attr_is_set(n, ATTR_DCCP_STATE)) {
		ct->dccp_state = nfct_get_attr_u8(n, ATTR_DCCP_STATE);
		ct->dccp_role = nfct_get_attr_u8(n, ATTR_DCCP_ROLE);
		ct->have |= CT_H_DCCP;
	}
	if (nfct_attr_is_set(n, ATTR_HELPER_NAME)) {
		const char *h = nfct_get_attr(n, ATTR_HELPER_NAME);
		if (h && h[0]) {
			strncpy(ct->helper, h, CT_HELPER_MAX - 1);
			ct->have |= CT_H_HELPER;
		}
	}

	/* Rare attributes live in ext. */
	if (nfct_attr_is_set(n, ATTR_MASTER_L3PROTO)) {
		struct tuple m;
		r = tuple_get(&m, n, &MASTER);
		if (r & 1) {
			if (!(x = ct_ext_get(ct, llen)))
				goto nomem;
			x->master = m;
			ct->have |= CT_H_MASTER;
			if (r & 2)
				ct->have |= CT_H_MASTER_PORTS;
			else
				x->master.sport = x->master.dport = 0;
		}
	}
	if (nfct_attr_is_set(n, ATTR_ORIG_NAT_SEQ_CORRECTION_POS) &&
	    nfct_attr_is_set(n, ATTR_REPL_NAT_SEQ_OFFSET_AFTER)) {
		static const int a[6] = {
			ATTR_ORIG_NAT_SEQ_CORRECTION_POS, ATTR_ORIG_NAT_SEQ_OFFSET_BEFORE,
			ATTR_ORIG_NAT_SEQ_OFFSET_AFTER, ATTR_REPL_NAT_SEQ_CORRECTION_POS,
			ATTR_REPL_NAT_SEQ_OFFSET_BEFORE, ATTR_REPL_NAT_SEQ_OFFSET_AFTER,
		};
		if (!(x = ct_ext_get(ct, llen)))
			goto nomem;
		for (int i = 0; i < 6; i++)
			x->seqadj[i] = nfct_get_attr_u32(n, a[i]);
		ct->have |= CT_H_SEQADJ;
	}
	if (nfct_attr_is_set(n, ATTR_SYNPROXY_ISN) &&
	    nfct_attr_is_set(n, ATTR_SYNPROXY_ITS) &&
	    nfct_attr_is_set(n, ATTR_SYNPROXY_TSOFF)) {
		if (!(x = ct_ext_get(ct, llen)))
			goto nomem;
		x->synproxy[0] = nfct_get_attr_u32(n, ATTR_SYNPROXY_ITS);
		x->synproxy[1] = nfct_get_attr_u32(n, ATTR_SYNPROXY_ISN);
		x->synproxy[2] = nfct_get_attr_u32(n, ATTR_SYNPROXY_TSOFF);
		ct->have |= CT_H_SYNPROXY;
	}
	if (nfct_attr_is_set(n, ATTR_ORIG_COUNTER_PACKETS) &&
	    nfct_attr_is_set(n, ATTR_REPL_COUNTER_PACKETS)) {
		if (!(x = ct_ext_get(ct, llen)))
			goto nomem;
		x->counters[0] = nfct_get_attr_u64(n, ATTR_ORIG_COUNTER_PACKETS);
		x->counters[1] = nfct_get_attr_u64(n, ATTR_ORIG_COUNTER_BYTES);
		x->counters[2] = nfct_get_attr_u64(n, ATTR_REPL_COUNTER_PACKETS);
		x->counters[3] = nfct_get_attr_u64(n, ATTR_REPL_COUNTER_BYTES);
		ct->have |= CT_H_COUNTERS;
	}
	if (nfct_attr_is_set(n, ATTR_TIMESTAMP_START)) {
		if (!(x = ct_ext_get(ct, llen)))
			goto nomem;
		x->ts_start = nfct_get_attr_u64(n, ATTR_TIMESTAMP_START);
		if (nfct_attr_is_set(n, ATTR_TIMESTAMP_STOP))
			x->ts_stop = nfct_get_attr_u64(n, ATTR_TIMESTAMP_STOP);
		ct->have |= CT_H_TIMESTAMP;
	}
	if (llen) {
		if (!(x = ct_ext_get(ct, llen)))
			goto nomem;
		memset(x->labels, 0, llen);
		for (unsigned i = 0; i < llen * 8; i++)
			if (nfct_bitmask_test_bit(lb, i))
				label_set(x->labels, i);
		x->labels_len = (uint16_t)llen;
		ct->have |= CT_H_LABELS;
	}
	return 0;
nomem:
	ct_release(ct);
	return ENOMEM;
}

static struct nfct_bitmask *labels_to_bitmask(const struct ct_ext *x)
{
	unsigned bits = (unsigned)x->labels_len * 8;
	struct nfct_bitmask *b;

	if (!bits || !(b = nfct_bitmask_new(bits - 1)))
		return NULL;
	for (unsigned i = 0; i < bits; i++)
		if (label_test(x->labels, i))
			nfct_bitmask_set_bit(b, i);
	return b;
}

/*
 * counters have no working setter in libnetfilter_conntrack (the
 * value is ignored but the attribute marked, printing "use=0"): feed them
 * through its netlink parser instead, which only adds what it finds.
 */
static void set_read_only(struct nf_conntrack *n, const struct ct *ct)
{
	char buf[256] __attribute__((aligned(4)));
	struct nlmsghdr *nlh;
	struct nlattr *nest;

	if (!((ct->have & CT_H_COUNTERS) && ct->ext))
		return;
	memset(buf, 0, sizeof(buf));
	nlh = mnl_nlmsg_put_header(buf);
	if ((ct->have & CT_H_COUNTERS) && ct->ext) {
		for (int dir = 0; dir < 2; dir++) {
			nest = mnl_attr_nest_start(nlh, dir ? CTA_COUNTERS_REPLY :
							      CTA_COUNTERS_ORIG);
			mnl_attr_put_u64(nlh, CTA_COUNTERS_PACKETS,
					 htobe64(ct->ext->counters[2 * dir]));
			mnl_attr_put_u64(nlh, CTA_COUNTERS_BYTES,
					 htobe64(ct->ext->counters[2 * dir + 1]));
			mnl_attr_nest_end(nlh, nest);
		}
	}
	nfct_payload_parse(mnl_nlmsg_get_payload(nlh),
			   nlh->nlmsg_len - MNL_NLMSG_HDRLEN, ct->orig.l3, n);
}

static void icmp_set(struct nf_conntrack *n, const struct tuple *t)
{
	/* The library derives the reply type/id from these (l3 first). */
	nfct_set_attr_u8(n, ATTR_ICMP_TYPE, t->itype);
	nfct_set_attr_u8(n, ATTR_ICMP_CODE, t->icode);
	nfct_set_attr_u16(n, ATTR_ICMP_ID, t->sport);
}

struct nf_conntrack *ct_to_nfct_mode(const struct ct *ct, enum ct_nfct_mode mode,
				     bool tcp_window_tracking)
{
	struct nf_conntrack *n = nfct_new();
	bool icmp = l4_is_icmp(ct->orig.l3, ct->orig.l4);
	bool synth = ct->have & CT_H_REPL_SYNTH;
	bool ports = (ct->have & CT_H_PORTS) && !icmp;

	if (!n)
		return NULL;
	tuple_set(n, &ct->orig, &ORIG, ports);
	if (icmp && (ct->have & (CT_H_ICMP | CT_H_PORTS)))
		icmp_set(n, &ct->orig);

	if (!synth && (ct->have & CT_H_REPL)) {
		tuple_set(n, &ct->repl, &REPL, ports);
	} else if (synth && mode == CT_NFCT_KERNEL) {
		/* The kernel computes the NATed reply from the bindings. */
		struct tuple inv = ct->orig;

		inv.src = ct->orig.dst;
		inv.dst = ct->orig.src;
		inv.sport = ct->orig.dport;
		inv.dport = ct->orig.sport;
		tuple_set(n, &inv, &REPL, ports);
		if (ct->orig.l3 == AF_INET) {
			if (ct->have & CT_H_SNAT)
				nfct_set_attr_u32(n, ATTR_SNAT_IPV4, ct->repl.dst.v4);
			if (ct->have & CT_H_DNAT)
				nfct_set_attr_u32(n, ATTR_DNAT_IPV4, ct->repl.src.v4);
		} else {
			if (ct->have & CT_H_SNAT)
				nfct_set_attr(n, ATTR_SNAT_IPV6, ct->repl.dst.b);
			if (ct->have & CT_H_DNAT)
				nfct_set_attr(n, ATTR_DNAT_IPV6, ct->repl.src.b);
		}
		if (ports && (ct->have & CT_H_SPAT))
			nfct_set_attr_u16(n, ATTR_SNAT_PORT, ct->repl.dport);
		if (ports && (ct->have & CT_H_DPAT))
			nfct_set_attr_u16(n, ATTR_DNAT_PORT, ct->repl.sport);
	}

	if (ct->have & CT_H_STATUS) {
		uint32_t st = ct->status;
		if (mode == CT_NFCT_KERNEL)
			st &= ~IPS_EXPECTED;
		nfct_set_attr_u32(n, ATTR_STATUS, st);
	}
	if ((ct->have & CT_H_TIMEOUT) && mode != CT_NFCT_PRINT)
		nfct_set_attr_u32(n, ATTR_TIMEOUT, ct->timeout);
	if (ct->have & CT_H_MARK)
		nfct_set_attr_u32(n, ATTR_MARK, ct->mark);
	if (ct->have & CT_H_SECMARK)
		nfct_set_attr_u32(n, ATTR_SECMARK, ct->secmark);
	/* The id only shows in XML dumps of the internal cache, as in 1.4.7. */
	if ((ct->have & CT_H_ID) && mode != CT_NFCT_KERNEL)
		nfct_set_attr_u32(n, ATTR_ID, ct->id);
	if ((ct->have & CT_H_TIMESTAMP) && ct->ext && mode != CT_NFCT_KERNEL) {
		nfct_set_attr_u64(n, ATTR_TIMESTAMP_START, ct->ext->ts_start);
		if (ct->ext->ts_stop)
			nfct_set_attr_u64(n, ATTR_TIMESTAMP_STOP, ct->ext->ts_stop);
	}
	/* conntrackd 1.4.7 prints neither use nor counters for cached
	 * objects (observed); log records (timeout printer) carry them. */
	if (mode == CT_NFCT_PRINT_TIMEOUT)
		set_read_only(n, ct);
	if (ct->have & CT_H_ZONE)
		nfct_set_attr_u16(n, ATTR_ZONE, ct->zone);
	if (ct->have & CT_H_TCP_STATE)
		nfct_set_attr_u8(n, ATTR_TCP_STATE, ct->tcp_state);
	if (ct->have & CT_H_TCP_WSCALE) {
		nfct_set_attr_u8(n, ATTR_TCP_WSCALE_ORIG, ct->wscale_orig);
		nfct_set_attr_u8(n, ATTR_TCP_WSCALE_REPL, ct->wscale_repl);
	}
	if (mode == CT_NFCT_KERNEL && ct->orig.l4 == IPPROTO_TCP &&
	    !tcp_window_tracking) {
		nfct_set_attr_u8(n, ATTR_TCP_FLAGS_ORIG, IP_CT_TCP_FLAG_BE_LIBERAL);
		nfct_set_attr_u8(n, ATTR_TCP_MASK_ORIG, IP_CT_TCP_FLAG_BE_LIBERAL);
		nfct_set_attr_u8(n, ATTR_TCP_FLAGS_REPL, IP_CT_TCP_FLAG_BE_LIBERAL);
		nfct_set_attr_u8(n, ATTR_TCP_MASK_REPL, IP_CT_TCP_FLAG_BE_LIBERAL);
	}
	if (ct->have & CT_H_SCTP) {
		nfct_set_attr_u8(n, ATTR_SCTP_STATE, ct->sctp_state);
		nfct_set_attr_u32(n, ATTR_SCTP_VTAG_ORIG, ct->sctp_vtag_orig);
		nfct_set_attr_u32(n, ATTR_SCTP_VTAG_REPL, ct->sctp_vtag_repl);
	}
	if (ct->have & CT_H_DCCP) {
		nfct_set_attr_u8(n, ATTR_DCCP_STATE, ct->dccp_state);
		nfct_set_attr_u8(n, ATTR_DCCP_ROLE, ct->dccp_role);
	}
	if ((ct->have & CT_H_HELPER) && ct->helper[0]) {
		char h[CT_HELPER_MAX];
		memcpy(h, ct->helper, CT_HELPER_MAX);
		h[CT_HELPER_MAX - 1] = '\0';
		nfct_set_attr(n, ATTR_HELPER_NAME, h);
	}
	if (ct->ext) {
		const struct ct_ext *x = ct->ext;

		if (ct->have & CT_H_MASTER)
			tuple_set(n, &x->master, &MASTER,
				  (ct->have & CT_H_MASTER_PORTS) &&
				  l4_has_ports(x->master.l4));
		if (ct->have & CT_H_SEQADJ) {
			nfct_set_attr_u32(n, ATTR_ORIG_NAT_SEQ_CORRECTION_POS, x->seqadj[0]);
			nfct_set_attr_u32(n, ATTR_ORIG_NAT_SEQ_OFFSET_BEFORE, x->seqadj[1]);
			nfct_set_attr_u32(n, ATTR_ORIG_NAT_SEQ_OFFSET_AFTER, x->seqadj[2]);
			nfct_set_attr_u32(n, ATTR_REPL_NAT_SEQ_CORRECTION_POS, x->seqadj[3]);
			nfct_set_attr_u32(n, ATTR_REPL_NAT_SEQ_OFFSET_BEFORE, x->seqadj[4]);
			nfct_set_attr_u32(n, ATTR_REPL_NAT_SEQ_OFFSET_AFTER, x->seqadj[5]);
		}
		if (ct->have & CT_H_SYNPROXY) {
			nfct_set_attr_u32(n, ATTR_SYNPROXY_ITS, x->synproxy[0]);
			nfct_set_attr_u32(n, ATTR_SYNPROXY_ISN, x->synproxy[1]);
			nfct_set_attr_u32(n, ATTR_SYNPROXY_TSOFF, x->synproxy[2]);
		}
		if ((ct->have & CT_H_LABELS) && x->labels_len) {
			struct nfct_bitmask *b = labels_to_bitmask(x);
			if (b)  /* the object takes ownership */
				nfct_set_attr(n, ATTR_CONNLABELS, b);
		}
	}
	return n;
}

struct nf_conntrack *ct_to_nfct(const struct ct *ct)
{
	return ct_to_nfct_mode(ct, CT_NFCT_KERNEL, false);
}

/* Expectations: the master/expected/mask/nat tuples are conntrack objects. */
static int exp_tuple_get(struct tuple *t, const struct nf_expect *e, int attr)
{
	const struct nf_conntrack *n;

	memset(t, 0, sizeof(*t));
	if (!nfexp_attr_is_set(e, attr) || !(n = nfexp_get_attr(e, attr)))
		return 0;
	return tuple_get(t, n, &ORIG) | 4;
}

int exp_from_nfexp(struct exp *e, const struct nf_expect *n)
{
	int rm, rx, rk, rn;

	memset(e, 0, sizeof(*e));
	rm = exp_tuple_get(&e->master, n, ATTR_EXP_MASTER);
	rx = exp_tuple_get(&e->expected, n, ATTR_EXP_EXPECTED);
	rk = exp_tuple_get(&e->mask, n, ATTR_EXP_MASK);
	if (!(rm & 4) || (e->master.l3 != AF_INET && e->master.l3 != AF_INET6))
		return -1;
	if (rm & 1)
		e->have |= EXP_H_MASTER;
	if (rx & 1)
		e->have |= EXP_H_EXPECTED;
	if (rk & 4) {
		/* The kernel reports the mask's l3 but it may lack l4. */
		if (!e->mask.l3)
			e->mask.l3 = e->master.l3;
		if (!e->mask.l4)
			e->mask.l4 = e->expected.l4;
		e->have |= EXP_H_MASK;
	}
	if ((rm & 2) && (rx & 2) && (rk & 2))
		e->have |= EXP_H_PORTS;
	rn = exp_tuple_get(&e->nat, n, ATTR_EXP_NAT_TUPLE);
	if (rn & 4) {
		e->have |= EXP_H_NAT;
		if (rn & 1)
			e->have |= EXP_H_NAT_ADDR;
		if (nfexp_attr_is_set(n, ATTR_EXP_NAT_DIR))
			e->nat_dir = nfexp_get_attr_u32(n, ATTR_EXP_NAT_DIR);
	}
	if (nfexp_attr_is_set(n, ATTR_EXP_TIMEOUT)) {
		e->timeout = nfexp_get_attr_u32(n, ATTR_EXP_TIMEOUT);
		e->have |= EXP_H_TIMEOUT;
	}
	if (nfexp_attr_is_set(n, ATTR_EXP_FLAGS)) {
		e->flags = nfexp_get_attr_u32(n, ATTR_EXP_FLAGS);
		e->have |= EXP_H_FLAGS;
	}
	if (nfexp_attr_is_set(n, ATTR_EXP_CLASS)) {
		e->class = nfexp_get_attr_u32(n, ATTR_EXP_CLASS);
		e->have |= EXP_H_CLASS;
	}
	if (nfexp_attr_is_set(n, ATTR_EXP_ZONE)) {
		e->zone = nfexp_get_attr_u16(n, ATTR_EXP_ZONE);
		e->have |= EXP_H_ZONE;
	}
	if (nfexp_attr_is_set(n, ATTR_EXP_HELPER_NAME)) {
		const char *h = nfexp_get_attr(n, ATTR_EXP_HELPER_NAME);
		if (h && h[0]) {
			strncpy(e->helper, h, CT_HELPER_MAX - 1);
			e->have |= EXP_H_HELPER;
		}
	}
	if (nfexp_attr_is_set(n, ATTR_EXP_FN)) {
		const char *f = nfexp_get_attr(n, ATTR_EXP_FN);
		if (f && f[0]) {
			strncpy(e->fn, f, EXP_FN_MAX - 1);
			e->have |= EXP_H_FN;
		}
	}
	return 0;
}

static int exp_tuple_set(struct nf_expect *e, int attr, const struct tuple *t,
			 bool addrs, bool ports)
{
	struct nf_conntrack *n = nfct_new();

	if (!n)
		return -1;
	if (addrs) {
		tuple_set(n, t, &ORIG, ports);
	} else {    /* NAT tuple without address: direction/ports only */
		nfct_set_attr_u8(n, ATTR_ORIG_L3PROTO, t->l3);
		nfct_set_attr_u8(n, ATTR_ORIG_L4PROTO, t->l4);
		if (ports) {
			nfct_set_attr_u16(n, ATTR_ORIG_PORT_SRC, t->sport);
			nfct_set_attr_u16(n, ATTR_ORIG_PORT_DST, t->dport);
		}
	}
	nfexp_set_attr(e, attr, n);     /* copied by the library */
	nfct_destroy(n);
	return 0;
}

struct nf_expect *exp_to_nfexp_mode(const struct exp *e, bool with_timeout)
{
	struct nf_expect *n = nfexp_new();
	bool ports = e->have & EXP_H_PORTS;

	if (!n)
		return NULL;
	if (((e->have & EXP_H_MASTER) &&
	     exp_tuple_set(n, ATTR_EXP_MASTER, &e->master, true, ports) < 0) ||
	    ((e->have & EXP_H_EXPECTED) &&
	     exp_tuple_set(n, ATTR_EXP_EXPECTED, &e->expected, true, ports) < 0) ||
	    ((e->have & EXP_H_MASK) &&
	     exp_tuple_set(n, ATTR_EXP_MASK, &e->mask, true, ports) < 0) ||
	    ((e->have & EXP_H_NAT) &&
	     exp_tuple_set(n, ATTR_EXP_NAT_TUPLE, &e->nat,
			   e->have & EXP_H_NAT_ADDR, ports) < 0)) {
		nfexp_destroy(n);
		return NULL;
	}
	if (e->have & EXP_H_NAT)
		nfexp_set_attr_u32(n, ATTR_EXP_NAT_DIR, e->nat_dir);
	if ((e->have & EXP_H_TIMEOUT) && with_timeout)
		nfexp_set_attr_u32(n, ATTR_EXP_TIMEOUT, e->timeout);
	if (e->have & EXP_H_FLAGS)
		nfexp_set_attr_u32(n, ATTR_EXP_FLAGS, e->flags);
	if (e->have & EXP_H_CLASS)
		nfexp_set_attr_u32(n, ATTR_EXP_CLASS, e->class);
	if (e->have & EXP_H_ZONE)
		nfexp_set_attr_u16(n, ATTR_EXP_ZONE, e->zone);
	if ((e->have & EXP_H_HELPER) && e->helper[0]) {
		char h[CT_HELPER_MAX];
		memcpy(h, e->helper, CT_HELPER_MAX);
		h[CT_HELPER_MAX - 1] = '\0';
		nfexp_set_attr(n, ATTR_EXP_HELPER_NAME, h);
	}
	if ((e->have & EXP_H_FN) && e->fn[0]) {
		char f[EXP_FN_MAX];
		memcpy(f, e->fn, EXP_FN_MAX);
		f[EXP_FN_MAX - 1] = '\0';
		nfexp_set_attr(n, ATTR_EXP_FN, f);
	}
	return n;
}

struct nf_expect *exp_to_nfexp(const struct exp *e)
{
	return exp_to_nfexp_mode(e, true);
}

int ct_from_nlmsg(struct ct *ct, const struct nlmsghdr *nlh)
{
	/* Dumps and flushes come here without the event path's check. */
	if (!nl_msg_ok(nlh, NLMSG_ALIGN(nlh->nlmsg_len), false)) {
		memset(ct, 0, sizeof(*ct));
		return -1;
	}
	return ct_parse_nlmsg(ct, nlh) == 0 ? 0 : -1;
}

int ct_from_nlmsg_nfct(struct ct *ct, const struct nlmsghdr *nlh)
{
	struct nf_conntrack *n;
	int r = -1;

	/* Dumps and flushes come here without the event path's check. */
	if (!nl_msg_ok(nlh, NLMSG_ALIGN(nlh->nlmsg_len), false))
		return -1;
	n = nfct_new();
	if (n && nfct_nlmsg_parse(nlh, n) >= 0 && ct_from_nfct(ct, n) == 0)
		r = 0;
	if (n)
		nfct_destroy(n);
	return r;
}

int exp_from_nlmsg(struct exp *e, const struct nlmsghdr *nlh)
{
	struct nf_expect *n;
	int r = -1;

	if (!nl_msg_ok(nlh, NLMSG_ALIGN(nlh->nlmsg_len), true))
		return -1;
	n = nfexp_new();
	if (n && nfexp_nlmsg_parse(nlh, n) >= 0 && exp_from_nfexp(e, n) == 0)
		r = 0;
	if (n)
		nfexp_destroy(n);
	return r;
}
