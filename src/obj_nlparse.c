/*
 * One-pass ctnetlink conntrack parser (obj_nlparse.h).
 *
 * Why: on the sender, libnetfilter_conntrack's parser (a callback and a
 * validation per attribute, an allocated object) followed by ct_from_nfct
 * (a getter per field) was a quarter of the CPU per event. Here the
 * attributes are collected once into small pointer tables and read straight
 * into struct ct.
 *
 * The result must equal ct_from_nlmsg_nfct()'s bit for bit, so the walk and
 * the library's quirks are reproduced on purpose:
 *  - attributes are walked as libmnl does: stop at the first one that does
 *    not fit, up to the unaligned end of the message or nest; the last
 *    attribute of a type wins;
 *  - a tuple's layer-4 fields share storage as the library's unions do
 *    (ICMP type/code overwrite the destination port's bytes, the ICMP id
 *    the source port), and the ICMP attributes are flagged for the whole
 *    object but read from the original tuple;
 *  - a missing optional field reads as 0 where ct_from_nfct reads it anyway.
 * Sizes were checked by nl_msg_ok(); every read still checks its length.
 */
#include <errno.h>
#include <string.h>
#include <endian.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <linux/netlink.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <linux/netfilter/nf_conntrack_common.h>

#include "obj_nlparse.h"

#define AHDR      ((size_t)sizeof(struct nlattr))
#define TB_MAX    31    /* largest attribute type looked at, any level */

typedef const struct nlattr *tb_t[TB_MAX + 1];

/* libmnl's walk over [p, p+len): the last attribute of a type wins; types
 * above max (the level's largest known type) are not looked at. */
static void collect(const void *p, size_t len, tb_t tb, unsigned max)
{
	const uint8_t *c = p;

	memset(tb, 0, (max + 1) * sizeof(tb[0]));
	while (len >= AHDR) {
		const struct nlattr *a = (const struct nlattr *)c;
		size_t alen = a->nla_len, step = (alen + 3) & ~(size_t)3;
		unsigned type = a->nla_type & NLA_TYPE_MASK;

		if (alen < AHDR || alen > len)
			return;
		if (type <= max)
			tb[type] = a;
		if (step >= len)
			return;
		c += step;
		len -= step;
	}
}

static const uint8_t *pl(const struct nlattr *a) { return (const uint8_t *)a + AHDR; }
static size_t plen(const struct nlattr *a) { return a->nla_len - AHDR; }

static void nest(const struct nlattr *a, tb_t tb, unsigned max)
{
	collect(pl(a), plen(a), tb, max);
}

_Static_assert(CTA_MAX <= TB_MAX && CTA_PROTO_MAX <= TB_MAX, "tb_t too small");

/* Fixed-size reads: false (message refused) on any other size. */
static bool rd(const struct nlattr *a, void *v, size_t n)
{
	if (plen(a) != n)
		return false;
	memcpy(v, pl(a), n);
	return true;
}

static bool rd_u32(const struct nlattr *a, uint32_t *v)
{
	uint32_t be;

	if (!rd(a, &be, 4))
		return false;
	*v = ntohl(be);
	return true;
}

static bool rd_u64(const struct nlattr *a, uint64_t *v)
{
	uint64_t be;

	if (!rd(a, &be, 8))
		return false;
	*v = be64toh(be);
	return true;
}

/* A tuple as the library holds it. */
enum { T_PRESENT = 1, T_V4S = 2, T_V4D = 4, T_V6S = 8, T_V6D = 16, T_L4 = 32,
       T_PS = 64, T_PD = 128 };
enum { I_TYPE = 1, I_CODE = 2, I_ID = 4 };     /* object-wide ICMP flags */

struct ltuple {
	union addr src, dst;
	uint8_t ps[2], pd[2];   /* l4src / l4dst unions, network order */
	uint8_t l4;
	unsigned set;
};

static bool parse_tuple(const struct nlattr *t, struct ltuple *lt, unsigned *icmp)
{
	tb_t tb, s;
	const struct nlattr *a;

	lt->set |= T_PRESENT;
	nest(t, tb, CTA_TUPLE_MAX);
	if (tb[CTA_TUPLE_IP]) {
		nest(tb[CTA_TUPLE_IP], s, CTA_IP_MAX);
		if ((a = s[CTA_IP_V4_SRC]) && (lt->set |= T_V4S, !rd(a, lt->src.b, 4)))
			return false;
		if ((a = s[CTA_IP_V4_DST]) && (lt->set |= T_V4D, !rd(a, lt->dst.b, 4)))
			return false;
		if ((a = s[CTA_IP_V6_SRC]) && (lt->set |= T_V6S, !rd(a, lt->src.b, 16)))
			return false;
		if ((a = s[CTA_IP_V6_DST]) && (lt->set |= T_V6D, !rd(a, lt->dst.b, 16)))
			return false;
	}
	if (!tb[CTA_TUPLE_PROTO])
		return true;
	nest(tb[CTA_TUPLE_PROTO], s, CTA_PROTO_MAX);
	/* The library's order: later writes win in the shared bytes. */
	if ((a = s[CTA_PROTO_NUM]) && (lt->set |= T_L4, !rd(a, &lt->l4, 1)))
		return false;
	if ((a = s[CTA_PROTO_SRC_PORT]) && (lt->set |= T_PS, !rd(a, lt->ps, 2)))
		return false;
	if ((a = s[CTA_PROTO_DST_PORT]) && (lt->set |= T_PD, !rd(a, lt->pd, 2)))
		return false;
	if ((a = s[CTA_PROTO_ICMP_TYPE]) && (*icmp |= I_TYPE, !rd(a, &lt->pd[0], 1)))
		return false;
	if ((a = s[CTA_PROTO_ICMP_CODE]) && (*icmp |= I_CODE, !rd(a, &lt->pd[1], 1)))
		return false;
	if ((a = s[CTA_PROTO_ICMP_ID]) && (*icmp |= I_ID, !rd(a, lt->ps, 2)))
		return false;
	if ((a = s[CTA_PROTO_ICMPV6_TYPE]) && (*icmp |= I_TYPE, !rd(a, &lt->pd[0], 1)))
		return false;
	if ((a = s[CTA_PROTO_ICMPV6_CODE]) && (*icmp |= I_CODE, !rd(a, &lt->pd[1], 1)))
		return false;
	if ((a = s[CTA_PROTO_ICMPV6_ID]) && (*icmp |= I_ID, !rd(a, lt->ps, 2)))
		return false;
	return true;
}

/* ct_from_nfct's tuple_get(): bit 0 addresses + l4 known, bit 1 ports. */
static int tuple_take(struct tuple *t, const struct ltuple *lt, uint8_t family)
{
	int r = 0;

	memset(t, 0, sizeof(*t));
	if (!(lt->set & T_PRESENT))
		return 0;
	t->l3 = family;
	if (lt->set & T_L4)
		t->l4 = lt->l4;
	if (t->l3 == AF_INET && (lt->set & (T_V4S | T_V4D)) == (T_V4S | T_V4D)) {
		t->src.v4 = lt->src.v4;
		t->dst.v4 = lt->dst.v4;
		r |= 1;
	} else if (t->l3 == AF_INET6 &&
		   (lt->set & (T_V6S | T_V6D)) == (T_V6S | T_V6D)) {
		t->src = lt->src;
		t->dst = lt->dst;
		r |= 1;
	}
	if (!(lt->set & T_L4))
		r &= ~1;
	if ((lt->set & (T_PS | T_PD)) == (T_PS | T_PD)) {
		memcpy(&t->sport, lt->ps, 2);
		memcpy(&t->dport, lt->pd, 2);
		r |= 2;
	}
	return r;
}

/* Everything ct_from_nfct reads, as the library would hold it. */
struct lct {
	struct ltuple orig, repl, master;
	unsigned icmp;
	const struct nlattr *status, *timeout, *mark, *secmark, *id, *zone;
	unsigned pinfo;                         /* P_* present */
	uint8_t pi[16];                         /* the library's protoinfo union */
	const struct nlattr *helper;
	const struct nlattr *seq[2][3];         /* [dir][pos, before, after] */
	const struct nlattr *syn[3];            /* isn, its, tsoff */
	const struct nlattr *cnt[2][2];         /* [dir][packets, bytes] */
	const struct nlattr *ts_start, *ts_stop;
	const struct nlattr *labels;
};

/*
 * TCP, SCTP and DCCP protoinfo share one union in the library: the state
 * byte is common, and e.g. a DCCP role or handshake overwrites SCTP vtag
 * bytes. Modelled as its bytes, written in the library's order.
 */
enum { P_TCP_STATE = 1, P_WS_ORIG = 2, P_WS_REPL = 4, P_SCTP_STATE = 8,
       P_DCCP_STATE = 16, P_VTAG_O = 32, P_VTAG_R = 64, P_DCCP_ROLE = 128 };
enum { PI_STATE = 0, PI_TCP_FLAGS = 1, PI_WS = 5, PI_VTAG = 4, PI_DCCP_ROLE = 1,
       PI_DCCP_HS = 8 };

static bool pi_u8(const struct nlattr *a, struct lct *l, unsigned off, unsigned bit)
{
	l->pinfo |= bit;
	return rd(a, &l->pi[off], 1);
}

static bool pi_u32(const struct nlattr *a, struct lct *l, unsigned off, unsigned bit)
{
	uint32_t v;

	l->pinfo |= bit;
	if (!rd_u32(a, &v))
		return false;
	memcpy(&l->pi[off], &v, 4);
	return true;
}

static bool protoinfo(const struct nlattr *p, struct lct *l)
{
	tb_t tb, s;
	const struct nlattr *a;

	nest(p, tb, CTA_PROTOINFO_MAX);
	if (tb[CTA_PROTOINFO_TCP]) {
		nest(tb[CTA_PROTOINFO_TCP], s, CTA_PROTOINFO_TCP_MAX);
		if ((a = s[CTA_PROTOINFO_TCP_STATE]) && !pi_u8(a, l, PI_STATE, P_TCP_STATE))
			return false;
		if ((a = s[CTA_PROTOINFO_TCP_WSCALE_ORIGINAL]) && !pi_u8(a, l, PI_WS, P_WS_ORIG))
			return false;
		if ((a = s[CTA_PROTOINFO_TCP_WSCALE_REPLY]) && !pi_u8(a, l, PI_WS + 1, P_WS_REPL))
			return false;
		if ((a = s[CTA_PROTOINFO_TCP_FLAGS_ORIGINAL]) && !rd(a, &l->pi[PI_TCP_FLAGS], 2))
			return false;
		if ((a = s[CTA_PROTOINFO_TCP_FLAGS_REPLY]) && !rd(a, &l->pi[PI_TCP_FLAGS + 2], 2))
			return false;
	}
	if (tb[CTA_PROTOINFO_SCTP]) {
		nest(tb[CTA_PROTOINFO_SCTP], s, CTA_PROTOINFO_SCTP_MAX);
		if ((a = s[CTA_PROTOINFO_SCTP_STATE]) && !pi_u8(a, l, PI_STATE, P_SCTP_STATE))
			return false;
		if ((a = s[CTA_PROTOINFO_SCTP_VTAG_ORIGINAL]) && !pi_u32(a, l, PI_VTAG, P_VTAG_O))
			return false;
		if ((a = s[CTA_PROTOINFO_SCTP_VTAG_REPLY]) && !pi_u32(a, l, PI_VTAG + 4, P_VTAG_R))
			return false;
	}
	if (tb[CTA_PROTOINFO_DCCP]) {
		uint64_t hs;

		nest(tb[CTA_PROTOINFO_DCCP], s, CTA_PROTOINFO_DCCP_MAX);
		if ((a = s[CTA_PROTOINFO_DCCP_STATE]) && !pi_u8(a, l, PI_STATE, P_DCCP_STATE))
			return false;
		if ((a = s[CTA_PROTOINFO_DCCP_ROLE]) && !pi_u8(a, l, PI_DCCP_ROLE, P_DCCP_ROLE))
			return false;
		if ((a = s[CTA_PROTOINFO_DCCP_HANDSHAKE_SEQ])) {
			if (!rd_u64(a, &hs))
				return false;
			memcpy(&l->pi[PI_DCCP_HS], &hs, 8);
		}
	}
	return true;
}

/* Counters: the 64-bit attribute wins over the 32-bit one. */
static void counters(const struct nlattr *c, const struct nlattr *out[2])
{
	tb_t s;

	nest(c, s, CTA_COUNTERS_MAX);
	out[0] = s[CTA_COUNTERS_PACKETS] ? s[CTA_COUNTERS_PACKETS] : s[CTA_COUNTERS32_PACKETS];
	out[1] = s[CTA_COUNTERS_BYTES] ? s[CTA_COUNTERS_BYTES] : s[CTA_COUNTERS32_BYTES];
}

static bool rd_cnt(const struct nlattr *a, uint64_t *v)
{
	uint32_t v32;

	*v = 0;
	if (a == NULL)
		return true;
	if (plen(a) == 8)
		return rd_u64(a, v);
	if (!rd_u32(a, &v32))
		return false;
	*v = v32;
	return true;
}

static bool collect_ct(const struct nlmsghdr *nlh, struct lct *l)
{
	size_t hdr = NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(struct nfgenmsg));
	size_t end = nlh->nlmsg_len;
	tb_t tb, s;

	memset(l, 0, sizeof(*l));
	if (nlh->nlmsg_len < NLMSG_HDRLEN + sizeof(struct nfgenmsg))
		return false;
	if (end > hdr)
		collect((const uint8_t *)nlh + hdr, end - hdr, tb, CTA_MAX);
	else
		memset(tb, 0, sizeof(tb));
	if (tb[CTA_TUPLE_ORIG] && !parse_tuple(tb[CTA_TUPLE_ORIG], &l->orig, &l->icmp))
		return false;
	if (tb[CTA_TUPLE_REPLY] && !parse_tuple(tb[CTA_TUPLE_REPLY], &l->repl, &l->icmp))
		return false;
	if (tb[CTA_TUPLE_MASTER] && !parse_tuple(tb[CTA_TUPLE_MASTER], &l->master, &l->icmp))
		return false;
	for (int dir = 0; dir < 2; dir++) {
		const struct nlattr *a = tb[dir ? CTA_NAT_SEQ_ADJ_REPLY : CTA_NAT_SEQ_ADJ_ORIG];

		if (a == NULL)
			continue;
		nest(a, s, CTA_NAT_SEQ_MAX);
		l->seq[dir][0] = s[CTA_NAT_SEQ_CORRECTION_POS];
		l->seq[dir][1] = s[CTA_NAT_SEQ_OFFSET_BEFORE];
		l->seq[dir][2] = s[CTA_NAT_SEQ_OFFSET_AFTER];
	}
	l->status = tb[CTA_STATUS];
	if (tb[CTA_PROTOINFO] && !protoinfo(tb[CTA_PROTOINFO], l))
		return false;
	l->timeout = tb[CTA_TIMEOUT];
	l->mark = tb[CTA_MARK];
	l->secmark = tb[CTA_SECMARK];
	if (tb[CTA_COUNTERS_ORIG])
		counters(tb[CTA_COUNTERS_ORIG], l->cnt[0]);
	if (tb[CTA_COUNTERS_REPLY])
		counters(tb[CTA_COUNTERS_REPLY], l->cnt[1]);
	l->id = tb[CTA_ID];
	if (tb[CTA_HELP]) {
		nest(tb[CTA_HELP], s, CTA_HELP_MAX);
		l->helper = s[CTA_HELP_NAME];
	}
	l->zone = tb[CTA_ZONE];
	if (tb[CTA_TIMESTAMP]) {
		nest(tb[CTA_TIMESTAMP], s, CTA_TIMESTAMP_MAX);
		l->ts_start = s[CTA_TIMESTAMP_START];
		l->ts_stop = s[CTA_TIMESTAMP_STOP];
	}
	/* The library refuses labels longer than its 65536-bit bitmask. */
	if (tb[CTA_LABELS] && plen(tb[CTA_LABELS]) > 8192)
		return false;
	if (tb[CTA_LABELS] && plen(tb[CTA_LABELS]) > 0)
		l->labels = tb[CTA_LABELS];
	if (tb[CTA_SYNPROXY]) {
		nest(tb[CTA_SYNPROXY], s, CTA_SYNPROXY_MAX);
		l->syn[0] = s[CTA_SYNPROXY_ISN];
		l->syn[1] = s[CTA_SYNPROXY_ITS];
		l->syn[2] = s[CTA_SYNPROXY_TSOFF];
	}
	return true;
}

/* Labels: bytes as delivered, the length rounded up to 32-bit words (at
 * most CT_LABELS_MAX); none at all when no bit is set. */
static size_t labels_len(const struct nlattr *a)
{
	size_t n = a ? plen(a) : 0;

	for (size_t i = 0; i < n; i++)
		if (pl(a)[i]) {
			n = (n + 3) & ~(size_t)3;
			return n > CT_LABELS_MAX ? CT_LABELS_MAX : n;
		}
	return 0;
}

#define OPT_U8(a, dst)  do { if ((a) && !rd((a), &(dst), 1)) goto bad; } while (0)
#define OPT_U32(a, dst) do { if ((a) && !rd_u32((a), &(dst))) goto bad; } while (0)

static int take(struct ct *ct, const struct lct *l, uint8_t family)
{
	size_t llen = labels_len(l->labels);
	struct ct_ext *x;
	struct tuple m;
	uint16_t zone;
	int r;

	r = tuple_take(&ct->orig, &l->orig, family);
	if ((ct->orig.l3 != AF_INET && ct->orig.l3 != AF_INET6) || !(r & 1))
		return -1;
	ct->have |= CT_H_ORIG;
	if (l4_is_icmp(ct->orig.l3, ct->orig.l4)) {
		ct->orig.sport = ct->orig.dport = 0;
		if (l->icmp & I_TYPE) {
			ct->orig.itype = l->orig.pd[0];
			ct->orig.icode = (l->icmp & I_CODE) ? l->orig.pd[1] : 0;
			if (l->icmp & I_ID)
				memcpy(&ct->orig.sport, l->orig.ps, 2);
			ct->have |= CT_H_PORTS | CT_H_ICMP;
		}
	} else if (r & 2) {
		ct->have |= CT_H_PORTS;
	}

	r = tuple_take(&ct->repl, &l->repl, family);
	if (r & 1) {
		ct->have |= CT_H_REPL;
		ct_icmp_repl_from_orig(ct);
	} else {
		memset(&ct->repl, 0, sizeof(ct->repl));
	}

	if (l->status) {
		OPT_U32(l->status, ct->status);
		ct->have |= CT_H_STATUS;
	}
	if ((ct->have & (CT_H_REPL | CT_H_ORIG)) == (CT_H_REPL | CT_H_ORIG))
		ct->have |= ct_nat_bits(ct);
	if (!l4_has_ports(ct->orig.l4))
		ct->have &= ~(CT_H_SPAT | CT_H_DPAT);

	if (l->timeout) {
		OPT_U32(l->timeout, ct->timeout);
		ct->have |= CT_H_TIMEOUT;
	}
	if (l->mark) {
		OPT_U32(l->mark, ct->mark);
		ct->have |= CT_H_MARK;
	}
	if (l->secmark) {
		OPT_U32(l->secmark, ct->secmark);
		ct->have |= CT_H_SECMARK;
	}
	if (l->id) {
		OPT_U32(l->id, ct->id);
		ct->have |= CT_H_ID;
	}
	if (l->zone) {
		if (!rd(l->zone, &zone, 2))
			goto bad;
		ct->zone = ntohs(zone);
		ct->have |= CT_H_ZONE;
	}
	if (l->pinfo & P_TCP_STATE) {
		ct->tcp_state = l->pi[PI_STATE];
		ct->have |= CT_H_TCP_STATE;
	}
	if ((l->pinfo & (P_WS_ORIG | P_WS_REPL)) == (P_WS_ORIG | P_WS_REPL)) {
		ct->wscale_orig = l->pi[PI_WS];
		ct->wscale_repl = l->pi[PI_WS + 1];
		ct->have |= CT_H_TCP_WSCALE;
	}
	if (l->pinfo & P_SCTP_STATE) {
		ct->sctp_state = l->pi[PI_STATE];
		/* The library's getters read 0 for an attribute not delivered. */
		if (l->pinfo & P_VTAG_O)
			memcpy(&ct->sctp_vtag_orig, &l->pi[PI_VTAG], 4);
		if (l->pinfo & P_VTAG_R)
			memcpy(&ct->sctp_vtag_repl, &l->pi[PI_VTAG + 4], 4);
		ct->have |= CT_H_SCTP;
	}
	if (l->pinfo & P_DCCP_STATE) {
		ct->dccp_state = l->pi[PI_STATE];
		ct->dccp_role = (l->pinfo & P_DCCP_ROLE) ? l->pi[PI_DCCP_ROLE] : 0;
		ct->have |= CT_H_DCCP;
	}
	if (l->helper && plen(l->helper) > 0 && pl(l->helper)[0]) {
		size_t n = strnlen((const char *)pl(l->helper), plen(l->helper));

		memcpy(ct->helper, pl(l->helper), n < CT_HELPER_MAX - 1 ? n : CT_HELPER_MAX - 1);
		ct->have |= CT_H_HELPER;
	}

	/* Rare attributes live in ext, sized for the labels from the start. */
	if (l->master.set & T_PRESENT) {
		r = tuple_take(&m, &l->master, family);
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
	if (l->seq[0][0] && l->seq[1][2]) {
		if (!(x = ct_ext_get(ct, llen)))
			goto nomem;
		for (int i = 0; i < 6; i++)
			OPT_U32(l->seq[i / 3][i % 3], x->seqadj[i]);
		ct->have |= CT_H_SEQADJ;
	}
	if (l->syn[0] && l->syn[1] && l->syn[2]) {
		if (!(x = ct_ext_get(ct, llen)))
			goto nomem;
		OPT_U32(l->syn[1], x->synproxy[0]);
		OPT_U32(l->syn[0], x->synproxy[1]);
		OPT_U32(l->syn[2], x->synproxy[2]);
		ct->have |= CT_H_SYNPROXY;
	}
	if (l->cnt[0][0] && l->cnt[1][0]) {
		if (!(x = ct_ext_get(ct, llen)))
			goto nomem;
		for (int i = 0; i < 4; i++)
			if (!rd_cnt(l->cnt[i / 2][i % 2], &x->counters[i]))
				goto bad;
		ct->have |= CT_H_COUNTERS;
	}
	if (l->ts_start) {
		if (!(x = ct_ext_get(ct, llen)))
			goto nomem;
		if (!rd_u64(l->ts_start, &x->ts_start) ||
		    (l->ts_stop && !rd_u64(l->ts_stop, &x->ts_stop)))
			goto bad;
		ct->have |= CT_H_TIMESTAMP;
	}
	if (llen) {
		size_t n = plen(l->labels) < llen ? plen(l->labels) : llen;

		if (!(x = ct_ext_get(ct, llen)))
			goto nomem;
		memset(x->labels, 0, llen);
		memcpy(x->labels, pl(l->labels), n);
		x->labels_len = (uint16_t)llen;
		ct->have |= CT_H_LABELS;
	}
	return 0;
bad:
	ct_release(ct);
	return -1;
nomem:
	ct_release(ct);
	return ENOMEM;
}

int ct_parse_nlmsg(struct ct *ct, const struct nlmsghdr *nlh)
{
	const struct nfgenmsg *nfg = (const struct nfgenmsg *)((const uint8_t *)nlh + NLMSG_HDRLEN);
	struct lct l;

	memset(ct, 0, sizeof(*ct));
	if (!collect_ct(nlh, &l))
		return -1;
	return take(ct, &l, nfg->nfgen_family);
}
