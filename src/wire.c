/*
 * The sync wire codec: header framing, conntrack and expectation TLVs.
 * Layout and rules: doc/wire-protocol.md (sync-protocol.md §1-4).
 *
 * Encoding writes straight into the caller's buffer, checking the room
 * before every attribute. Decoding first validates the whole TLV list and
 * remembers where each id's (last) payload sits, then fills the object, so
 * "later duplicate wins" and attribute order do not matter and a rejected
 * message leaves nothing allocated.
 */
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "wire.h"

#define CEIL4(x)        (((x) + 3u) & ~3u)
#define IPS_SRC_NAT_DONE 0x80u
#define IPS_DST_NAT_DONE 0x100u

/* ---- encoding ---------------------------------------------------------- */

struct wbuf {
	uint8_t *buf;
	size_t   cap, off;
	bool     full;
};

/* Reserve one attribute and return its payload, padding already zeroed. */
static inline uint8_t *
put_attr(struct wbuf *w, uint16_t id, size_t plen)
{
	size_t len = 4 + plen, room = CEIL4(len);
	uint8_t *p;

	if (w->full || room > w->cap - w->off) {
		w->full = true;
		return NULL;
	}
	p = w->buf + w->off;
	p[0] = len >> 8;
	p[1] = len;
	p[2] = id >> 8;
	p[3] = id;
	memset(p + len, 0, room - len);
	w->off += room;
	return p + 4;
}

static inline void
wr_be16(uint8_t *p, uint16_t v)
{
	p[0] = v >> 8;
	p[1] = v;
}

static inline void
wr_be32(uint8_t *p, uint32_t v)
{
	p[0] = v >> 24;
	p[1] = v >> 16;
	p[2] = v >> 8;
	p[3] = v;
}

static inline uint16_t
rd_be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static inline uint32_t
rd_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | p[3];
}

static void
put_u8(struct wbuf *w, uint16_t id, uint8_t v)
{
	uint8_t *p = put_attr(w, id, 1);

	if (p)
		p[0] = v;
}

static void
put_u32(struct wbuf *w, uint16_t id, uint32_t v)
{
	uint8_t *p = put_attr(w, id, 4);

	if (p)
		wr_be32(p, v);
}

static void
put_bytes(struct wbuf *w, uint16_t id, const void *v, size_t n)
{
	uint8_t *p = put_attr(w, id, n);

	if (p)
		memcpy(p, v, n);
}

/* Two network-order 16-bit fields, copied as stored (already BE). */
static void
put_ports(struct wbuf *w, uint16_t id, uint16_t sport, uint16_t dport)
{
	uint8_t *p = put_attr(w, id, 4);

	if (p) {
		memcpy(p, &sport, 2);
		memcpy(p + 2, &dport, 2);
	}
}

/*
 * HO16: upstream byte-swaps a field that is already in network order, so on
 * every little-endian peer the wire carries the reverse of the network
 * bytes (§4.4). raw is the field as stored in memory (network order).
 */
static void
put_ho16(struct wbuf *w, uint16_t id, uint16_t raw)
{
	uint8_t *p = put_attr(w, id, 2), b[2];

	if (p) {
		memcpy(b, &raw, 2);
		p[0] = b[1];
		p[1] = b[0];
	}
}

static void
put_addr_pair(struct wbuf *w, uint16_t id4, uint16_t id6,
    const struct tuple *t)
{
	uint8_t *p;

	if (t->l3 == AF_INET) {
		if ((p = put_attr(w, id4, 8)) != NULL) {
			memcpy(p, t->src.b, 4);
			memcpy(p + 4, t->dst.b, 4);
		}
	} else if (t->l3 == AF_INET6) {
		if ((p = put_attr(w, id6, 32)) != NULL) {
			memcpy(p, t->src.b, 16);
			memcpy(p + 16, t->dst.b, 16);
		}
	}
}

static void
put_hdr(uint8_t *buf, uint8_t type, uint8_t flags, uint16_t len, uint32_t seq)
{
	buf[0] = WIRE_VERSION << 4 | (type & 0x0f);
	buf[1] = flags;
	wr_be16(buf + 2, len);
	wr_be32(buf + 4, seq);
}

/*
 * The raw 16-bit layer-4 fields of a tuple as libnetfilter_conntrack lays
 * them out: for ICMP the source slot is the id and the destination slot
 * holds type and code. Upstream NAT-port detection compares these blindly.
 */
static uint16_t
raw_sport(const struct tuple *t)
{
	return t->sport;
}

static uint16_t
raw_dport(const struct tuple *t)
{
	uint8_t b[2] = { t->itype, t->icode };
	uint16_t v;

	if (t->l4 != IPPROTO_ICMP && t->l4 != IPPROTO_ICMPV6)
		return t->dport;
	memcpy(&v, b, 2);
	return v;
}

static void
set_raw_dport(struct tuple *t, uint16_t v)
{
	uint8_t b[2];

	if (t->l4 != IPPROTO_ICMP && t->l4 != IPPROTO_ICMPV6) {
		t->dport = v;
		return;
	}
	memcpy(b, &v, 2);
	t->itype = b[0];
	t->icode = b[1];
}

static void
put_nat(struct wbuf *w, const struct ct *ct)
{
	const struct tuple *o = &ct->orig, *r = &ct->repl;
	bool known = ct->have & CT_H_STATUS;
	bool snat = !known || (ct->status & IPS_SRC_NAT_DONE);
	bool dnat = !known || (ct->status & IPS_DST_NAT_DONE);
	size_t n;

	if (!(ct->have & (CT_H_REPL | CT_H_REPL_SYNTH)))
		return;
	if (o->l3 == AF_INET || o->l3 == AF_INET6) {
		n = o->l3 == AF_INET ? 4 : 16;
		if (snat && memcmp(r->dst.b, o->src.b, n))
			put_bytes(w, n == 4 ? NTA_SNAT_IPV4 : NTA_SNAT_IPV6,
			    r->dst.b, n);
		if (dnat && memcmp(r->src.b, o->dst.b, n))
			put_bytes(w, n == 4 ? NTA_DNAT_IPV4 : NTA_DNAT_IPV6,
			    r->src.b, n);
	}
	if (snat && raw_dport(r) != raw_sport(o))
		put_ho16(w, NTA_SPAT_PORT, raw_dport(r));
	if (dnat && raw_sport(r) != raw_dport(o))
		put_ho16(w, NTA_DPAT_PORT, raw_sport(r));
}

static void
put_l4(struct wbuf *w, const struct ct *ct, const struct wire_tx_opts *o)
{
	switch (ct->orig.l4) {
	case IPPROTO_TCP:
		put_ports(w, NTA_PORT, ct->orig.sport, ct->orig.dport);
		if (!(ct->have & CT_H_TCP_STATE))
			break;
		put_u8(w, NTA_TCP_STATE, ct->tcp_state);
		if (o && o->tcp_window_tracking) {
			put_u8(w, NTA_TCP_WSCALE_ORIG, ct->wscale_orig);
			put_u8(w, NTA_TCP_WSCALE_REPL, ct->wscale_repl);
		}
		break;
	case IPPROTO_SCTP:
		put_ports(w, NTA_PORT, ct->orig.sport, ct->orig.dport);
		if (!(ct->have & CT_H_SCTP))
			break;
		put_u8(w, NTA_SCTP_STATE, ct->sctp_state);
		put_u32(w, NTA_SCTP_VTAG_ORIG, ct->sctp_vtag_orig);
		put_u32(w, NTA_SCTP_VTAG_REPL, ct->sctp_vtag_repl);
		break;
	case IPPROTO_DCCP:
		put_ports(w, NTA_PORT, ct->orig.sport, ct->orig.dport);
		if (!(ct->have & CT_H_DCCP))
			break;
		put_u8(w, NTA_DCCP_STATE, ct->dccp_state);
		put_u8(w, NTA_DCCP_ROLE, ct->dccp_role);
		break;
	case IPPROTO_UDP:
		put_ports(w, NTA_PORT, ct->orig.sport, ct->orig.dport);
		break;
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6:
		if (!(ct->have & CT_H_ICMP))
			break;
		put_u8(w, NTA_ICMP_TYPE, ct->orig.itype);
		put_u8(w, NTA_ICMP_CODE, ct->orig.icode);
		put_ho16(w, NTA_ICMP_ID, ct->orig.sport);
		break;
	}
}

static void
put_labels(struct wbuf *w, const struct ct_ext *x)
{
	size_t i, n = x->labels_len / 4;
	uint32_t v, any = 0;
	uint8_t *p;

	for (i = 0; i < n; i++) {
		memcpy(&v, x->labels + 4 * i, 4);
		any |= v;
	}
	if (!any || (p = put_attr(w, NTA_LABELS, 4 * n)) == NULL)
		return;
	for (i = 0; i < n; i++) {
		memcpy(&v, x->labels + 4 * i, 4);
		wr_be32(p + 4 * i, v);
	}
}

int
wire_put_ct(uint8_t *buf, size_t cap, enum wire_type t, uint8_t flags,
    uint32_t seq, const struct ct *ct, const struct wire_tx_opts *o)
{
	struct wbuf w = { buf, cap > 0xffff ? 0xffff : cap, WIRE_HDR_LEN, 0 };
	const struct ct_ext *x = ct->ext;
	uint8_t *p;
	size_t i;

	if (cap < WIRE_HDR_LEN)
		return -1;
	if (ct->have & CT_H_ORIG)
		put_addr_pair(&w, NTA_IPV4, NTA_IPV6, &ct->orig);
	put_u32(&w, NTA_STATUS, (ct->have & CT_H_STATUS) ? ct->status : 0);
	put_u8(&w, NTA_L4PROTO, ct->orig.l4);
	put_l4(&w, ct, o);
	if ((ct->have & CT_H_TIMEOUT) && !(o && o->omit_timeout))
		put_u32(&w, NTA_TIMEOUT, ct->timeout);
	if (ct->have & CT_H_MARK)
		put_u32(&w, NTA_MARK, ct->mark);
	if (x && (ct->have & CT_H_MASTER) &&
	    (x->master.l3 == AF_INET || x->master.l3 == AF_INET6)) {
		put_addr_pair(&w, NTA_MASTER_IPV4, NTA_MASTER_IPV6, &x->master);
		put_u8(&w, NTA_MASTER_L4PROTO, x->master.l4);
		if (ct->have & CT_H_MASTER_PORTS)
			put_ports(&w, NTA_MASTER_PORT, x->master.sport,
			    x->master.dport);
	}
	put_nat(&w, ct);
	if (x && (ct->have & CT_H_SEQADJ) &&
	    (p = put_attr(&w, NTA_NAT_SEQ_ADJ, 24)) != NULL)
		for (i = 0; i < 6; i++)
			wr_be32(p + 4 * i, x->seqadj[i]);
	if (ct->have & CT_H_HELPER)
		put_bytes(&w, NTA_HELPER_NAME, ct->helper,
		    strnlen(ct->helper, CT_HELPER_MAX - 1) + 1);
	if (x && (ct->have & CT_H_LABELS))
		put_labels(&w, x);
	if (x && (ct->have & CT_H_SYNPROXY) &&
	    (p = put_attr(&w, NTA_SYNPROXY, 12)) != NULL)
		for (i = 0; i < 3; i++)
			wr_be32(p + 4 * i, x->synproxy[i]);
	if (ct->have & CT_H_ZONE && (p = put_attr(&w, NTA_ZONE, 2)) != NULL)
		wr_be16(p, ct->zone);
	if (w.full)
		return -1;
	put_hdr(buf, t, flags, w.off, seq);
	return w.off;
}

/* Expectation port attributes follow the master's protocol (§4.7). */
static bool
exp_has_ports(const struct exp *e)
{
	switch (e->master.l4) {
	case IPPROTO_TCP:
	case IPPROTO_UDP:
	case IPPROTO_SCTP:
	case IPPROTO_DCCP:
		return true;
	}
	return false;
}

static void
put_exp_tuple(struct wbuf *w, uint16_t id4, const struct tuple *t,
    bool ports)
{
	/* each tuple group is ipv4, ipv6, l4proto, port: ids id4 .. id4+3 */
	put_addr_pair(w, id4, id4 + 1, t);
	put_u8(w, id4 + 2, t->l4);
	if (ports)
		put_ports(w, id4 + 3, t->sport, t->dport);
}

int
wire_put_exp(uint8_t *buf, size_t cap, enum wire_type t, uint8_t flags,
    uint32_t seq, const struct exp *e, const struct wire_tx_opts *o)
{
	struct wbuf w = { buf, cap > 0xffff ? 0xffff : cap, WIRE_HDR_LEN, 0 };
	bool ports = exp_has_ports(e);
	uint8_t *p;

	if (cap < WIRE_HDR_LEN)
		return -1;
	put_exp_tuple(&w, NTA_EXP_MASTER_IPV4, &e->master, ports);
	put_exp_tuple(&w, NTA_EXP_EXPECT_IPV4, &e->expected, ports);
	put_exp_tuple(&w, NTA_EXP_MASK_IPV4, &e->mask, ports);
	if ((e->have & EXP_H_TIMEOUT) && !(o && o->omit_timeout))
		put_u32(&w, NTA_EXP_TIMEOUT, e->timeout);
	put_u32(&w, NTA_EXP_FLAGS, (e->have & EXP_H_FLAGS) ? e->flags : 0);
	if (e->have & EXP_H_CLASS)
		put_u32(&w, NTA_EXP_CLASS, e->class);
	if (e->have & EXP_H_NAT) {
		/* upstream order: address, protocol, port, direction */
		if (e->nat.l3 == AF_INET || (e->have & EXP_H_NAT_ADDR)) {
			if ((p = put_attr(&w, NTA_EXP_NAT_IPV4, 8)) != NULL) {
				memcpy(p, e->nat.src.b, 4);
				memcpy(p + 4, e->nat.dst.b, 4);
			}
		}
		put_u8(&w, NTA_EXP_NAT_L4PROTO, e->nat.l4);
		if (ports)
			put_ports(&w, NTA_EXP_NAT_PORT, e->nat.sport,
			    e->nat.dport);
		put_u32(&w, NTA_EXP_NAT_DIR, e->nat_dir);
	}
	if (e->have & EXP_H_HELPER)
		put_bytes(&w, NTA_EXP_HELPER_NAME, e->helper,
		    strnlen(e->helper, CT_HELPER_MAX - 1) + 1);
	if (e->have & EXP_H_FN)
		put_bytes(&w, NTA_EXP_FN, e->fn,
		    strnlen(e->fn, EXP_FN_MAX - 1) + 1);
	if (w.full)
		return -1;
	put_hdr(buf, t, flags, w.off, seq);
	return w.off;
}

int
wire_put_ctl(uint8_t *buf, size_t cap, uint8_t flags, uint32_t seq,
    uint32_t from, uint32_t to)
{
	bool alive = (flags & WF_ALIVE) &&
	    !(flags & (WF_ACK | WF_NACK | WF_RESYNC));
	size_t len = alive ? WIRE_HDR_LEN : WIRE_CTL_LEN;

	if (cap < len)
		return -1;
	put_hdr(buf, WT_CTL, flags, len, seq);
	if (!alive) {
		wr_be32(buf + 8, from);
		wr_be32(buf + 12, to);
	}
	return len;
}

/* ---- framing ----------------------------------------------------------- */

int
wire_next(const uint8_t *data, size_t len, bool stream,
    struct wire_hdr *hdr, struct wire_rx_stats *st)
{
	size_t mlen;
	bool ctl16;

	if (len == 0)
		return 0;
	if (len < WIRE_HDR_LEN)
		goto short_data;
	mlen = rd_be16(data + 2);
	if (mlen == 0)
		goto bad_size;
	if (mlen > len) {
		if (stream)
			return 0;
		goto bad_size;
	}
	ctl16 = (data[0] & 0x0f) == WT_CTL &&
	    (data[1] & (WF_ACK | WF_NACK | WF_RESYNC));
	if (ctl16) {
		/* remaining bytes are checked before the message's own length:
		 * an 8-byte ACK at the end of a datagram is "truncated" */
		if (len < WIRE_CTL_LEN)
			goto short_data;
		if (mlen < WIRE_CTL_LEN)
			goto bad_size;
	} else if (mlen < WIRE_HDR_LEN)
		goto bad_size;

	hdr->version = data[0] >> 4;
	hdr->type = data[0] & 0x0f;
	hdr->flags = data[1];
	hdr->len = mlen;
	hdr->seq = rd_be32(data + 4);
	hdr->from = ctl16 ? rd_be32(data + 8) : 0;
	hdr->to = ctl16 ? rd_be32(data + 12) : 0;
	return (int)mlen;

short_data:
	if (stream)
		return 0;
	WIRE_RX_BAD(st, truncated);
	return -1;
bad_size:
	WIRE_RX_BAD(st, bad_size);
	return -1;
}

/* ---- attribute validation --------------------------------------------- */

/*
 * Payload size per id: > 0 exact, < 0 maximum payload of a NUL-terminated
 * string, 0 variable (labels). Values follow §4.3 / §4.7.
 */
#define STR(max)        (-(max))
static const int8_t ct_size[NTA_CT_MAX] = {
	[NTA_IPV4] = 8, [NTA_IPV6] = 32, [NTA_L4PROTO] = 1, [NTA_PORT] = 4,
	[NTA_TCP_STATE] = 1, [NTA_STATUS] = 4, [NTA_TIMEOUT] = 4,
	[NTA_MARK] = 4, [NTA_MASTER_IPV4] = 8, [NTA_MASTER_IPV6] = 32,
	[NTA_MASTER_L4PROTO] = 1, [NTA_MASTER_PORT] = 4,
	[NTA_SNAT_IPV4] = 4, [NTA_DNAT_IPV4] = 4, [NTA_SPAT_PORT] = 2,
	[NTA_DPAT_PORT] = 2, [NTA_NAT_SEQ_ADJ] = 24, [NTA_SCTP_STATE] = 1,
	[NTA_SCTP_VTAG_ORIG] = 4, [NTA_SCTP_VTAG_REPL] = 4,
	[NTA_DCCP_STATE] = 1, [NTA_DCCP_ROLE] = 1, [NTA_ICMP_TYPE] = 1,
	[NTA_ICMP_CODE] = 1, [NTA_ICMP_ID] = 2, [NTA_TCP_WSCALE_ORIG] = 1,
	[NTA_TCP_WSCALE_REPL] = 1, [NTA_HELPER_NAME] = STR(12),
	[NTA_LABELS] = 0, [NTA_SNAT_IPV6] = 16, [NTA_DNAT_IPV6] = 16,
	[NTA_SYNPROXY] = 12, [NTA_ZONE] = 2,
};
static const int8_t exp_size[NTA_EXP_MAX] = {
	[NTA_EXP_MASTER_IPV4] = 8, [NTA_EXP_MASTER_IPV6] = 32,
	[NTA_EXP_MASTER_L4PROTO] = 1, [NTA_EXP_MASTER_PORT] = 4,
	[NTA_EXP_EXPECT_IPV4] = 8, [NTA_EXP_EXPECT_IPV6] = 32,
	[NTA_EXP_EXPECT_L4PROTO] = 1, [NTA_EXP_EXPECT_PORT] = 4,
	[NTA_EXP_MASK_IPV4] = 8, [NTA_EXP_MASK_IPV6] = 32,
	[NTA_EXP_MASK_L4PROTO] = 1, [NTA_EXP_MASK_PORT] = 4,
	[NTA_EXP_TIMEOUT] = 4, [NTA_EXP_FLAGS] = 4, [NTA_EXP_CLASS] = 4,
	[NTA_EXP_NAT_IPV4] = 8, [NTA_EXP_NAT_PORT] = 4,
	[NTA_EXP_NAT_L4PROTO] = 1, [NTA_EXP_NAT_DIR] = 4,
	[NTA_EXP_HELPER_NAME] = STR(12), [NTA_EXP_FN] = STR(28),
};
#define LABELS_MAX_PAYLOAD CT_LABELS_MAX

/* Where the last occurrence of each id sits; pos orders competing ids. */
struct attrs {
	const uint8_t *p[NTA_CT_MAX];
	uint16_t len[NTA_CT_MAX];
	uint16_t pos[NTA_CT_MAX];       /* 1-based index in the message */
};

static int
scan(const uint8_t *msg, size_t len, const int8_t *size, unsigned nids,
    struct attrs *a)
{
	size_t off = WIRE_HDR_LEN;
	unsigned idx = 0;

	if (len < WIRE_HDR_LEN)
		return -1;
	memset(a, 0, sizeof(*a));
	/* up to 4 trailing bytes are ignored, as upstream does */
	while (len > off && len - off > 4) {
		size_t nl = rd_be16(msg + off), plen;
		unsigned id = rd_be16(msg + off + 2);
		int sz;

		if (nl > len - off || nl < 4 || id >= nids)
			return -1;
		plen = nl - 4;
		sz = size[id];
		if (sz > 0 && plen != (size_t)sz)
			return -1;
		if (sz < 0 && (plen > (size_t)-sz ||
		    memchr(msg + off + 4, 0, plen) == NULL))
			return -1;      /* too long, or no NUL inside */
		if (sz == 0 && plen > LABELS_MAX_PAYLOAD)
			return -1;
		a->p[id] = msg + off + 4;
		a->len[id] = plen;
		a->pos[id] = ++idx;
		/* padding past the end of the message just ends the loop */
		off += CEIL4(nl);
	}
	return 0;
}

static void
get_addr_pair(struct tuple *t, const struct attrs *a, unsigned id4,
    unsigned id6)
{
	if (a->p[id4] && a->pos[id4] > a->pos[id6]) {
		t->l3 = AF_INET;
		memcpy(t->src.b, a->p[id4], 4);
		memcpy(t->dst.b, a->p[id4] + 4, 4);
	} else if (a->p[id6]) {
		t->l3 = AF_INET6;
		memcpy(t->src.b, a->p[id6], 16);
		memcpy(t->dst.b, a->p[id6] + 16, 16);
	}
}

static void
get_ports(struct tuple *t, const uint8_t *p)
{
	memcpy(&t->sport, p, 2);
	memcpy(&t->dport, p + 2, 2);
}

/* Inverse of put_ho16: back to the network-order field as stored. */
static uint16_t
get_ho16(const uint8_t *p)
{
	uint8_t b[2] = { p[1], p[0] };
	uint16_t v;

	memcpy(&v, b, 2);
	return v;
}

#define HAS(id)         (a.p[id] != NULL)

static int
get_ext(struct ct *ct, const struct attrs *a)
{
	size_t llen = 0;
	struct ct_ext *x;
	unsigned i;
	bool labels = a->p[NTA_LABELS] && a->len[NTA_LABELS] > 0 &&
	    a->len[NTA_LABELS] % 4 == 0;

	if (!a->p[NTA_MASTER_IPV4] && !a->p[NTA_MASTER_IPV6] &&
	    !a->p[NTA_MASTER_L4PROTO] && !a->p[NTA_MASTER_PORT] &&
	    !a->p[NTA_NAT_SEQ_ADJ] && !a->p[NTA_SYNPROXY] && !labels)
		return 0;
	if (labels)
		llen = a->len[NTA_LABELS];
	if ((x = ct_ext_get(ct, llen)) == NULL)
		return -1;
	get_addr_pair(&x->master, a, NTA_MASTER_IPV4, NTA_MASTER_IPV6);
	if (x->master.l3)
		ct->have |= CT_H_MASTER;
	if (a->p[NTA_MASTER_L4PROTO])
		x->master.l4 = a->p[NTA_MASTER_L4PROTO][0];
	if (a->p[NTA_MASTER_PORT]) {
		get_ports(&x->master, a->p[NTA_MASTER_PORT]);
		ct->have |= CT_H_MASTER_PORTS;
	}
	if (a->p[NTA_NAT_SEQ_ADJ]) {
		for (i = 0; i < 6; i++)
			x->seqadj[i] = rd_be32(a->p[NTA_NAT_SEQ_ADJ] + 4 * i);
		ct->have |= CT_H_SEQADJ;
	}
	if (a->p[NTA_SYNPROXY]) {
		for (i = 0; i < 3; i++)
			x->synproxy[i] = rd_be32(a->p[NTA_SYNPROXY] + 4 * i);
		ct->have |= CT_H_SYNPROXY;
	}
	if (labels) {
		for (i = 0; i < llen / 4; i++) {
			uint32_t v = rd_be32(a->p[NTA_LABELS] + 4 * i);

			memcpy(x->labels + 4 * i, &v, 4);
		}
		ct->have |= CT_H_LABELS;
	}
	return 0;
}

/* Reply tuple as the receiver must commit it: inverse + NAT (§4.6). */
static void
synth_repl(struct ct *ct, const struct attrs *a)
{
	struct tuple *r = &ct->repl;

	tuple_invert(r, &ct->orig);
	/* upstream derives the reply ICMP type only from NTA_ICMP_TYPE */
	if ((r->l4 == IPPROTO_ICMP || r->l4 == IPPROTO_ICMPV6) &&
	    !(ct->have & CT_H_ICMP))
		r->itype = 0;
	if (ct->orig.l3 == AF_INET) {
		if (a->p[NTA_SNAT_IPV4]) {
			memcpy(r->dst.b, a->p[NTA_SNAT_IPV4], 4);
			ct->have |= CT_H_SNAT;
		}
		if (a->p[NTA_DNAT_IPV4]) {
			memcpy(r->src.b, a->p[NTA_DNAT_IPV4], 4);
			ct->have |= CT_H_DNAT;
		}
	} else {
		if (a->p[NTA_SNAT_IPV6]) {
			memcpy(r->dst.b, a->p[NTA_SNAT_IPV6], 16);
			ct->have |= CT_H_SNAT;
		}
		if (a->p[NTA_DNAT_IPV6]) {
			memcpy(r->src.b, a->p[NTA_DNAT_IPV6], 16);
			ct->have |= CT_H_DNAT;
		}
	}
	if (a->p[NTA_SPAT_PORT]) {
		set_raw_dport(r, get_ho16(a->p[NTA_SPAT_PORT]));
		ct->have |= CT_H_SPAT;
	}
	if (a->p[NTA_DPAT_PORT]) {
		r->sport = get_ho16(a->p[NTA_DPAT_PORT]);
		ct->have |= CT_H_DPAT;
	}
	ct->have |= CT_H_REPL_SYNTH;
}

int
wire_get_ct(const uint8_t *msg, size_t len, struct ct *ct)
{
	struct attrs a;

	memset(ct, 0, sizeof(*ct));
	if (scan(msg, len, ct_size, NTA_CT_MAX, &a) < 0)
		return -1;

	get_addr_pair(&ct->orig, &a, NTA_IPV4, NTA_IPV6);
	if (ct->orig.l3)
		ct->have |= CT_H_ORIG;
	if (HAS(NTA_L4PROTO))
		ct->orig.l4 = a.p[NTA_L4PROTO][0];
	if (HAS(NTA_PORT)) {
		/* on an ICMP flow this lands where upstream puts it: id and
		 * type/code (the raw layer-4 slots) */
		uint16_t dport;

		memcpy(&ct->orig.sport, a.p[NTA_PORT], 2);
		memcpy(&dport, a.p[NTA_PORT] + 2, 2);
		set_raw_dport(&ct->orig, dport);
		ct->have |= CT_H_PORTS;
	}
	if (HAS(NTA_ICMP_TYPE)) {
		ct->orig.itype = a.p[NTA_ICMP_TYPE][0];
		ct->have |= CT_H_ICMP | CT_H_PORTS;
	}
	if (HAS(NTA_ICMP_CODE))
		ct->orig.icode = a.p[NTA_ICMP_CODE][0];
	if (HAS(NTA_ICMP_ID))
		ct->orig.sport = get_ho16(a.p[NTA_ICMP_ID]);
	if (HAS(NTA_STATUS)) {
		ct->status = rd_be32(a.p[NTA_STATUS]);
		ct->have |= CT_H_STATUS;
	}
	if (HAS(NTA_TIMEOUT)) {
		ct->timeout = rd_be32(a.p[NTA_TIMEOUT]);
		ct->have |= CT_H_TIMEOUT;
	}
	if (HAS(NTA_MARK)) {
		ct->mark = rd_be32(a.p[NTA_MARK]);
		ct->have |= CT_H_MARK;
	}
	if (HAS(NTA_TCP_STATE)) {
		ct->tcp_state = a.p[NTA_TCP_STATE][0];
		ct->have |= CT_H_TCP_STATE;
	}
	if (HAS(NTA_TCP_WSCALE_ORIG) || HAS(NTA_TCP_WSCALE_REPL)) {
		if (HAS(NTA_TCP_WSCALE_ORIG))
			ct->wscale_orig = a.p[NTA_TCP_WSCALE_ORIG][0];
		if (HAS(NTA_TCP_WSCALE_REPL))
			ct->wscale_repl = a.p[NTA_TCP_WSCALE_REPL][0];
		ct->have |= CT_H_TCP_WSCALE;
	}
	if (HAS(NTA_SCTP_STATE) || HAS(NTA_SCTP_VTAG_ORIG) ||
	    HAS(NTA_SCTP_VTAG_REPL)) {
		if (HAS(NTA_SCTP_STATE))
			ct->sctp_state = a.p[NTA_SCTP_STATE][0];
		if (HAS(NTA_SCTP_VTAG_ORIG))
			ct->sctp_vtag_orig = rd_be32(a.p[NTA_SCTP_VTAG_ORIG]);
		if (HAS(NTA_SCTP_VTAG_REPL))
			ct->sctp_vtag_repl = rd_be32(a.p[NTA_SCTP_VTAG_REPL]);
		ct->have |= CT_H_SCTP;
	}
	if (HAS(NTA_DCCP_STATE) || HAS(NTA_DCCP_ROLE)) {
		if (HAS(NTA_DCCP_STATE))
			ct->dccp_state = a.p[NTA_DCCP_STATE][0];
		if (HAS(NTA_DCCP_ROLE))
			ct->dccp_role = a.p[NTA_DCCP_ROLE][0];
		ct->have |= CT_H_DCCP;
	}
	if (HAS(NTA_HELPER_NAME)) {
		/* scan() guaranteed a NUL within at most 12 bytes */
		memcpy(ct->helper, a.p[NTA_HELPER_NAME], a.len[NTA_HELPER_NAME]);
		ct->have |= CT_H_HELPER;
	}
	if (HAS(NTA_ZONE)) {
		ct->zone = rd_be16(a.p[NTA_ZONE]);
		ct->have |= CT_H_ZONE;
	}
	if (ct->have & CT_H_ORIG)
		synth_repl(ct, &a);
	if (get_ext(ct, &a) < 0) {
		ct_release(ct);
		return -1;
	}
	return 0;
}

static void
get_exp_tuple(struct tuple *t, const struct attrs *a, unsigned id4)
{
	get_addr_pair(t, a, id4, id4 + 1);
	if (a->p[id4 + 2])
		t->l4 = a->p[id4 + 2][0];
	if (a->p[id4 + 3])
		get_ports(t, a->p[id4 + 3]);
}

int
wire_get_exp(const uint8_t *msg, size_t len, struct exp *e)
{
	struct attrs a;

	memset(e, 0, sizeof(*e));
	if (scan(msg, len, exp_size, NTA_EXP_MAX, &a) < 0)
		return -1;

	get_exp_tuple(&e->master, &a, NTA_EXP_MASTER_IPV4);
	if (e->master.l3)
		e->have |= EXP_H_MASTER;
	get_exp_tuple(&e->expected, &a, NTA_EXP_EXPECT_IPV4);
	if (e->expected.l3)
		e->have |= EXP_H_EXPECTED;
	get_exp_tuple(&e->mask, &a, NTA_EXP_MASK_IPV4);
	if (e->mask.l3)
		e->have |= EXP_H_MASK;
	if (HAS(NTA_EXP_MASTER_PORT))
		e->have |= EXP_H_PORTS;
	if (HAS(NTA_EXP_TIMEOUT)) {
		e->timeout = rd_be32(a.p[NTA_EXP_TIMEOUT]);
		e->have |= EXP_H_TIMEOUT;
	}
	if (HAS(NTA_EXP_FLAGS)) {
		e->flags = rd_be32(a.p[NTA_EXP_FLAGS]);
		e->have |= EXP_H_FLAGS;
	}
	if (HAS(NTA_EXP_CLASS)) {
		e->class = rd_be32(a.p[NTA_EXP_CLASS]);
		e->have |= EXP_H_CLASS;
	}
	if (HAS(NTA_EXP_NAT_IPV4)) {
		e->nat.l3 = AF_INET;
		memcpy(e->nat.src.b, a.p[NTA_EXP_NAT_IPV4], 4);
		memcpy(e->nat.dst.b, a.p[NTA_EXP_NAT_IPV4] + 4, 4);
		e->have |= EXP_H_NAT | EXP_H_NAT_ADDR;
	}
	if (HAS(NTA_EXP_NAT_L4PROTO)) {
		e->nat.l4 = a.p[NTA_EXP_NAT_L4PROTO][0];
		e->have |= EXP_H_NAT;
	}
	if (HAS(NTA_EXP_NAT_PORT)) {
		get_ports(&e->nat, a.p[NTA_EXP_NAT_PORT]);
		e->have |= EXP_H_NAT;
	}
	if (HAS(NTA_EXP_NAT_DIR)) {
		e->nat_dir = rd_be32(a.p[NTA_EXP_NAT_DIR]);
		e->have |= EXP_H_NAT;
	}
	if (HAS(NTA_EXP_HELPER_NAME)) {
		memcpy(e->helper, a.p[NTA_EXP_HELPER_NAME],
		    a.len[NTA_EXP_HELPER_NAME]);
		e->have |= EXP_H_HELPER;
	}
	if (HAS(NTA_EXP_FN)) {
		memcpy(e->fn, a.p[NTA_EXP_FN], a.len[NTA_EXP_FN]);
		e->have |= EXP_H_FN;
	}
	return 0;
}
