/*
 * Keys, hashing and ownership helpers for struct ct / struct exp.
 *
 * A conntrack is identified by its original tuple plus its zone (absent
 * zone = 0). Upstream leaves the zone out of the equality test, so entries
 * differing only by zone collide by chance; we key on both.
 */
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <linux/netfilter/nf_conntrack_common.h>
#include <sys/socket.h>

#include "obj.h"

bool
l4_has_ports(uint8_t l4)
{
	switch (l4) {
	case IPPROTO_TCP:
	case IPPROTO_UDP:
	case IPPROTO_UDPLITE:
	case IPPROTO_SCTP:
	case IPPROTO_DCCP:
		return true;
	}
	return false;
}

bool
l4_is_icmp(uint8_t l3, uint8_t l4)
{
	return (l3 == AF_INET && l4 == IPPROTO_ICMP) ||
	    (l3 == AF_INET6 && l4 == IPPROTO_ICMPV6);
}

/* The reply tuple's ICMP fields, derived from the original direction:
 * libnetfilter_conntrack keeps one set of ICMP attributes for both, and
 * both event parsers must give what it gives. */
void
ct_icmp_repl_from_orig(struct ct *ct)
{
	if (!l4_is_icmp(ct->repl.l3, ct->repl.l4))
		return;
	ct->repl.sport = ct->orig.sport;
	ct->repl.dport = 0;
	ct->repl.itype = icmp_reply_type(ct->orig.l3, ct->orig.itype);
	ct->repl.icode = ct->orig.icode;
}

static bool
addr_eq(uint8_t l3, const union addr *a, const union addr *b)
{
	return l3 == AF_INET ? a->v4 == b->v4 : memcmp(a->b, b->b, 16) == 0;
}

/* NAT as the wire encoder sees it (sync-protocol.md §4.6 table). */
uint32_t
ct_nat_bits(const struct ct *ct)
{
	bool st = ct->have & CT_H_STATUS;
	bool s = !st || (ct->status & IPS_SRC_NAT_DONE);
	bool d = !st || (ct->status & IPS_DST_NAT_DONE);
	uint32_t r = 0;

	if (s && !addr_eq(ct->orig.l3, &ct->repl.dst, &ct->orig.src))
		r |= CT_H_SNAT;
	if (d && !addr_eq(ct->orig.l3, &ct->repl.src, &ct->orig.dst))
		r |= CT_H_DNAT;
	if (s && ct->repl.dport != ct->orig.sport)
		r |= CT_H_SPAT;
	if (d && ct->repl.sport != ct->orig.dport)
		r |= CT_H_DPAT;
	return r;
}

static size_t
addr_len(uint8_t l3)
{
	return l3 == AF_INET6 ? 16 : 4;
}

/* murmur3-style word mixing: cheap, and good enough for bucket choice. */
static inline uint32_t
mix(uint32_t h, uint32_t k)
{
	k *= 0xcc9e2d51u;
	k = (k << 15) | (k >> 17);
	k *= 0x1b873593u;
	h ^= k;
	h = (h << 13) | (h >> 19);
	return h * 5 + 0xe6546b64u;
}

static inline uint32_t
fmix(uint32_t h)
{
	h ^= h >> 16;
	h *= 0x85ebca6bu;
	h ^= h >> 13;
	h *= 0xc2b2ae35u;
	h ^= h >> 16;
	return h;
}

/* The layer-4 part of the key, as one word (0 for protocols without one). */
static uint32_t
l4_key(const struct tuple *t)
{
	if (l4_has_ports(t->l4))
		return (uint32_t)t->sport << 16 | t->dport;
	if (l4_is_icmp(t->l3, t->l4))
		return (uint32_t)t->sport << 16 | (uint32_t)t->itype << 8 |
		    t->icode;
	return 0;
}

static uint32_t
tuple_mix(uint32_t h, const struct tuple *t)
{
	uint32_t w;
	size_t i, n = addr_len(t->l3) / 4;

	for (i = 0; i < n; i++) {
		memcpy(&w, &t->src.b[4 * i], 4);
		h = mix(h, w);
		memcpy(&w, &t->dst.b[4 * i], 4);
		h = mix(h, w);
	}
	h = mix(h, (uint32_t)t->l3 << 8 | t->l4);
	return mix(h, l4_key(t));
}

uint32_t
tuple_hash(const struct tuple *t, uint32_t seed)
{
	return fmix(tuple_mix(seed, t));
}

bool
tuple_equal(const struct tuple *a, const struct tuple *b)
{
	size_t n;

	if (a->l3 != b->l3 || a->l4 != b->l4)
		return false;
	n = addr_len(a->l3);
	if (memcmp(a->src.b, b->src.b, n) || memcmp(a->dst.b, b->dst.b, n))
		return false;
	return l4_key(a) == l4_key(b);
}

/*
 * ICMP reply type for a request type, as the kernel inverts ICMP tuples.
 * Types without a reply get 255, which the kernel refuses, like
 * libnetfilter_conntrack does.
 */
uint8_t
icmp_reply_type(uint8_t l3, uint8_t type)
{
	if (l3 == AF_INET) {
		switch (type) {
		case 8: return 0;       /* echo */
		case 0: return 8;
		case 13: return 14;     /* timestamp */
		case 14: return 13;
		case 15: return 16;     /* information */
		case 16: return 15;
		case 17: return 18;     /* address mask */
		case 18: return 17;
		}
	} else {
		switch (type) {
		case 128: return 129;   /* echo */
		case 129: return 128;
		case 139: return 140;   /* node information */
		case 140: return 139;
		}
	}
	return 255;
}

void
tuple_invert(struct tuple *dst, const struct tuple *src)
{
	struct tuple t = *src;          /* dst may alias src */

	t.src = src->dst;
	t.dst = src->src;
	if (l4_is_icmp(src->l3, src->l4)) {
		t.itype = icmp_reply_type(src->l3, src->itype);
	} else {
		t.sport = src->dport;
		t.dport = src->sport;
	}
	*dst = t;
}

static uint16_t
ct_zone(const struct ct *ct)
{
	return (ct->have & CT_H_ZONE) ? ct->zone : 0;
}

uint32_t
ct_hash(const struct ct *ct, uint32_t seed)
{
	return fmix(mix(tuple_mix(seed, &ct->orig), ct_zone(ct)));
}

bool
ct_key_equal(const struct ct *a, const struct ct *b)
{
	return ct_zone(a) == ct_zone(b) && tuple_equal(&a->orig, &b->orig);
}

static uint16_t
exp_zone(const struct exp *e)
{
	return (e->have & EXP_H_ZONE) ? e->zone : 0;
}

uint32_t
exp_hash(const struct exp *e, uint32_t seed)
{
	uint32_t h = tuple_mix(seed, &e->master);

	h = tuple_mix(h, &e->expected);
	return fmix(mix(h, exp_zone(e)));
}

bool
exp_key_equal(const struct exp *a, const struct exp *b)
{
	return exp_zone(a) == exp_zone(b) &&
	    tuple_equal(&a->master, &b->master) &&
	    tuple_equal(&a->expected, &b->expected);
}

struct ct_ext *
ct_ext_get(struct ct *ct, size_t labels_len)
{
	struct ct_ext *x;
	size_t old;

	if (labels_len > CT_LABELS_MAX)
		return NULL;
	if (ct->ext == NULL) {
		x = calloc(1, sizeof(*x) + labels_len);
		if (x == NULL)
			return NULL;
		x->labels_len = labels_len;
		return ct->ext = x;
	}
	old = ct->ext->labels_len;
	if (labels_len <= old)
		return ct->ext;
	/* labels_len doubles as the allocated size: only ever grows here */
	x = realloc(ct->ext, sizeof(*x) + labels_len);
	if (x == NULL)
		return NULL;
	memset(x->labels + old, 0, labels_len - old);
	x->labels_len = labels_len;
	return ct->ext = x;
}

int
ct_copy(struct ct *dst, const struct ct *src)
{
	size_t n;

	*dst = *src;
	if (src->ext == NULL)
		return 0;
	n = sizeof(*src->ext) + src->ext->labels_len;
	dst->ext = malloc(n);
	if (dst->ext == NULL) {
		memset(dst, 0, sizeof(*dst));
		return -1;
	}
	memcpy(dst->ext, src->ext, n);
	return 0;
}

#define NAT_BITS (CT_H_SNAT | CT_H_DNAT | CT_H_SPAT | CT_H_DPAT)

/*
 * UPDATE semantics: what src carries replaces what dst had, the rest of
 * dst stays. A reply tuple rebuilt from the wire never replaces a real one
 * from the kernel (NAT does not change after confirmation).
 */
/* Attributes that live in struct ct_ext. */
#define CT_EXT_BITS (CT_H_MASTER | CT_H_MASTER_PORTS | CT_H_SEQADJ | \
	CT_H_LABELS | CT_H_SYNPROXY | CT_H_COUNTERS | CT_H_TIMESTAMP)

int
ct_merge(struct ct *dst, const struct ct *src)
{
	uint32_t h = src->have;
	struct ct_ext *x;

	if (h & CT_EXT_BITS) {
		if (src->ext == NULL)
			h &= ~CT_EXT_BITS;
		else if (ct_ext_get(dst, (h & CT_H_LABELS) ?
		    src->ext->labels_len : 0) == NULL)
			return -1;
	}
	x = dst->ext;

	if (h & CT_H_ORIG) {
		dst->orig.src = src->orig.src;
		dst->orig.dst = src->orig.dst;
		dst->orig.l3 = src->orig.l3;
		dst->orig.l4 = src->orig.l4;
	}
	if (h & CT_H_PORTS) {
		dst->orig.sport = src->orig.sport;
		dst->orig.dport = src->orig.dport;
	}
	if (h & CT_H_ICMP) {
		dst->orig.sport = src->orig.sport;
		dst->orig.itype = src->orig.itype;
		dst->orig.icode = src->orig.icode;
	}
	if (h & CT_H_REPL) {
		dst->repl = src->repl;
		dst->have &= ~(CT_H_REPL_SYNTH | NAT_BITS);
		dst->have |= CT_H_REPL | (h & NAT_BITS);
	} else if ((h & CT_H_REPL_SYNTH) && !(dst->have & CT_H_REPL)) {
		dst->repl = src->repl;
		dst->have &= ~NAT_BITS;
		dst->have |= CT_H_REPL_SYNTH | (h & NAT_BITS);
	}
	if (h & CT_H_STATUS)
		dst->status = src->status;
	if (h & CT_H_TIMEOUT)
		dst->timeout = src->timeout;
	if (h & CT_H_MARK)
		dst->mark = src->mark;
	if (h & CT_H_SECMARK)
		dst->secmark = src->secmark;
	if (h & CT_H_ID)
		dst->id = src->id;
	if (h & CT_H_ZONE)
		dst->zone = src->zone;
	if (h & CT_H_TCP_STATE)
		dst->tcp_state = src->tcp_state;
	if (h & CT_H_TCP_WSCALE) {
		dst->wscale_orig = src->wscale_orig;
		dst->wscale_repl = src->wscale_repl;
	}
	if (h & CT_H_SCTP) {
		dst->sctp_state = src->sctp_state;
		dst->sctp_vtag_orig = src->sctp_vtag_orig;
		dst->sctp_vtag_repl = src->sctp_vtag_repl;
	}
	if (h & CT_H_DCCP) {
		dst->dccp_state = src->dccp_state;
		dst->dccp_role = src->dccp_role;
	}
	if (h & CT_H_HELPER)
		memcpy(dst->helper, src->helper, sizeof(dst->helper));
	if (h & CT_H_MASTER) {
		x->master.src = src->ext->master.src;
		x->master.dst = src->ext->master.dst;
		x->master.l3 = src->ext->master.l3;
		x->master.l4 = src->ext->master.l4;
	}
	if (h & CT_H_MASTER_PORTS) {
		x->master.sport = src->ext->master.sport;
		x->master.dport = src->ext->master.dport;
	}
	if (h & CT_H_SEQADJ)
		memcpy(x->seqadj, src->ext->seqadj, sizeof(x->seqadj));
	if (h & CT_H_SYNPROXY)
		memcpy(x->synproxy, src->ext->synproxy, sizeof(x->synproxy));
	if (h & CT_H_COUNTERS)
		memcpy(x->counters, src->ext->counters, sizeof(x->counters));
	if (h & CT_H_TIMESTAMP) {
		x->ts_start = src->ext->ts_start;
		x->ts_stop = src->ext->ts_stop;
	}
	if (h & CT_H_LABELS) {
		memcpy(x->labels, src->ext->labels, src->ext->labels_len);
		x->labels_len = src->ext->labels_len;
	}
	dst->have |= h & ~(CT_H_REPL | CT_H_REPL_SYNTH | NAT_BITS);
	return 0;
}

void
ct_release(struct ct *ct)
{
	free(ct->ext);
	memset(ct, 0, sizeof(*ct));
}
