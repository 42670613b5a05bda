/*
 * General { Filter }: the user-space test applied to every kernel event,
 * dump entry and flush candidate, and the BPF program that "From
 * Kernelspace" attaches to the event socket (a pre-filter only: the
 * user-space test always runs as well).
 */
#include <string.h>
#include <netinet/in.h>
#include <libnetfilter_conntrack/libnetfilter_conntrack.h>

#include "ctd.h"
#include "nl.h"

static bool prefix_match(int l3, const union addr *a, const struct conf_addr_filter *f)
{
	unsigned bits = f->prefix, i;

	if (f->family != l3)
		return false;
	if (l3 == AF_INET) {
		uint32_t m;

		if (bits > 32)
			bits = 32;
		m = bits ? htonl(0xffffffffu << (32 - bits)) : 0;
		return (a->v4 & m) == (f->addr.v4 & m);
	}
	if (bits > 128)
		bits = 128;
	for (i = 0; i < bits / 8; i++)
		if (a->b[i] != f->addr.b[i])
			return false;
	if (bits % 8) {
		uint8_t m = (uint8_t)(0xff << (8 - bits % 8));
		if ((a->b[i] & m) != (f->addr.b[i] & m))
			return false;
	}
	return true;
}

static bool addr_listed(const struct conf_filter *f, int l3, const union addr *a)
{
	for (unsigned i = 0; i < f->naddrs; i++)
		if (prefix_match(l3, a, &f->addrs[i]))
			return true;
	return false;
}

/* The decision on its own, so unit tests can drive it with a bare conf. */
bool filter_ct_accept(const struct conf_filter *f, const struct ct *ct)
{
	bool m;

	if (!f || !f->present)
		return true;
	if (f->proto_policy != FILTER_NONE) {
		m = f->protos[ct->orig.l4];
		if ((f->proto_policy == FILTER_ACCEPT) != m)
			return false;
	}
	if (f->addr_policy != FILTER_NONE) {
		/* Original source or reply source (sync from either side). */
		m = addr_listed(f, ct->orig.l3, &ct->orig.src);
		if (!m && (ct->have & (CT_H_REPL | CT_H_REPL_SYNTH)))
			m = addr_listed(f, ct->repl.l3 ? ct->repl.l3 : ct->orig.l3,
					&ct->repl.src);
		if ((f->addr_policy == FILTER_ACCEPT) != m)
			return false;
	}
	/* Only TCP with a known state is tested: others always pass. */
	if (f->state_policy != FILTER_NONE && ct->orig.l4 == IPPROTO_TCP &&
	    (ct->have & CT_H_TCP_STATE)) {
		m = ct->tcp_state < 16 && (f->tcp_states & (1u << ct->tcp_state));
		if ((f->state_policy == FILTER_ACCEPT) != m)
			return false;
	}
	return true;
}

bool nl_filter_ct(const struct ctd *d, const struct ct *ct)
{
	return filter_ct_accept(d->conf ? &d->conf->filter : NULL, ct);
}

int nl_filter_attach(const struct ctd *d, int fd)
{
	const struct conf_filter *f = &d->conf->filter;
	struct nfct_filter *k = nfct_filter_create();
	int r;

	if (!k)
		return -1;
	if (f->proto_policy != FILTER_NONE) {
		for (unsigned p = 0; p < 256; p++)
			if (f->protos[p])
				nfct_filter_add_attr_u32(k, NFCT_FILTER_L4PROTO, p);
		nfct_filter_set_logic(k, NFCT_FILTER_L4PROTO,
				      f->proto_policy == FILTER_ACCEPT ?
				      NFCT_FILTER_LOGIC_POSITIVE :
				      NFCT_FILTER_LOGIC_NEGATIVE);
	}
	if (f->addr_policy != FILTER_NONE) {
		enum nfct_filter_logic lg = f->addr_policy == FILTER_ACCEPT ?
			NFCT_FILTER_LOGIC_POSITIVE : NFCT_FILTER_LOGIC_NEGATIVE;

		for (unsigned i = 0; i < f->naddrs; i++) {
			const struct conf_addr_filter *a = &f->addrs[i];

			/* The BPF compiler wants host byte order. */
			if (a->family == AF_INET) {
				struct nfct_filter_ipv4 v4 = {
					.addr = ntohl(a->addr.v4),
					.mask = a->prefix ? 0xffffffffu << (32 - (a->prefix > 32 ? 32 : a->prefix)) : 0,
				};
				nfct_filter_add_attr(k, NFCT_FILTER_SRC_IPV4, &v4);
				nfct_filter_add_attr(k, NFCT_FILTER_DST_IPV4, &v4);
			} else if (a->family == AF_INET6) {
				struct nfct_filter_ipv6 v6;
				unsigned len = a->prefix > 128 ? 128 : a->prefix;

				for (int w = 0; w < 4; w++) {
					v6.addr[w] = ntohl(a->addr.v6[w]);
					v6.mask[w] = len >= 32 ? 0xffffffffu :
						     len ? 0xffffffffu << (32 - len) : 0;
					len = len >= 32 ? len - 32 : 0;
				}
				nfct_filter_add_attr(k, NFCT_FILTER_SRC_IPV6, &v6);
				nfct_filter_add_attr(k, NFCT_FILTER_DST_IPV6, &v6);
			}
		}
		nfct_filter_set_logic(k, NFCT_FILTER_SRC_IPV4, lg);
		nfct_filter_set_logic(k, NFCT_FILTER_DST_IPV4, lg);
		nfct_filter_set_logic(k, NFCT_FILTER_SRC_IPV6, lg);
		nfct_filter_set_logic(k, NFCT_FILTER_DST_IPV6, lg);
	}
	if (f->state_policy != FILTER_NONE) {
		for (unsigned s = 0; s < 16; s++)
			if (f->tcp_states & (1u << s)) {
				struct nfct_filter_proto p = {
					.proto = IPPROTO_TCP, .state = (uint16_t)s,
				};
				nfct_filter_add_attr(k, NFCT_FILTER_L4PROTO_STATE, &p);
			}
		nfct_filter_set_logic(k, NFCT_FILTER_L4PROTO_STATE,
				      f->state_policy == FILTER_ACCEPT ?
				      NFCT_FILTER_LOGIC_POSITIVE :
				      NFCT_FILTER_LOGIC_NEGATIVE);
	}
	r = nfct_filter_attach(fd, k);
	nfct_filter_destroy(k);
	return r;
}
