/*
 * The plain -i/-e line of a conntrack written straight from struct ct,
 * byte for byte what nfct_snprintf(NFCT_T_UNKNOWN, NFCT_O_PLAIN, 0) prints
 * for the object ct_to_nfct_mode(CT_NFCT_PRINT) builds (libnetfilter_conntrack
 * 1.0.9's snprintf_default.c): building, printing through printf and
 * destroying that object was ~70% of a dump's CPU. What is not covered here
 * returns -1 and goes the library way (obj_print.c); tests/unit/test_obj.c
 * compares both on randomised entries.
 */
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <linux/netfilter/nf_conntrack_common.h>

#include "objconv.h"

#ifndef IPPROTO_UDPLITE
#define IPPROTO_UDPLITE 136
#endif

/* The longest line: two v6 tuples, GRE keys, every tag; see ct_text_plain. */
#define TEXT_MAX 512

char *obj_text_u64(char *p, uint64_t v)
{
	char t[20];
	int n = 0;

	do {
		t[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	while (n)
		*p++ = t[--n];
	return p;
}

static char *put_s(char *p, const char *s, size_t n)
{
	memcpy(p, s, n);
	return p + n;
}
#define PUT_LIT(p, lit) put_s((p), (lit), sizeof(lit) - 1)

static char *put_hex(char *p, unsigned v)
{
	static const char hx[] = "0123456789abcdef";
	char t[8];
	int n = 0;

	do {
		t[n++] = hx[v & 15];
		v >>= 4;
	} while (v);
	while (n)
		*p++ = t[--n];
	return p;
}

/* The library's protocol names ("%-8s %u "); others print "unknown". */
static const char *proto_name(uint8_t l4)
{
	switch (l4) {
	case IPPROTO_TCP:       return "tcp";
	case IPPROTO_UDP:       return "udp";
	case IPPROTO_UDPLITE:   return "udplite";
	case IPPROTO_ICMP:      return "icmp";
	case IPPROTO_ICMPV6:    return "icmpv6";
	case IPPROTO_SCTP:      return "sctp";
	case IPPROTO_GRE:       return "gre";
	case IPPROTO_DCCP:      return "dccp";
	}
	return "unknown";
}

static const char *const tcp_states[10] = {
	"NONE", "SYN_SENT", "SYN_RECV", "ESTABLISHED", "FIN_WAIT",
	"CLOSE_WAIT", "LAST_ACK", "TIME_WAIT", "CLOSE", "SYN_SENT2",
};
static const char *const sctp_states[10] = {
	"NONE", "CLOSED", "COOKIE_WAIT", "COOKIE_ECHOED", "ESTABLISHED",
	"SHUTDOWN_SENT", "SHUTDOWN_RECD", "SHUTDOWN_ACK_SENT", "HEARTBEAT_SENT",
	"HEARTBEAT_ACKED",
};
static const char *const dccp_states[10] = {
	"NONE", "REQUEST", "RESPOND", "PARTOPEN", "OPEN", "CLOSEREQ", "CLOSING",
	"TIMEWAIT", "IGNORE", "INVALID",
};

static char *put_state(char *p, const char *s)
{
	p = put_s(p, s, strlen(s));
	*p++ = ' ';
	return p;
}

static char *put_v4(char *p, uint32_t a)
{
	const uint8_t *b = (const uint8_t *)&a;

	for (int i = 0; i < 4; i++) {
		p = obj_text_u64(p, b[i]);
		*p++ = i < 3 ? '.' : ' ';
	}
	return p;
}

/* v6 through inet_ntop, as the library: its zero-run and v4-mapped rules
 * are exactly glibc's, and v6 lines are not the common case. */
static char *put_addrs(char *p, const struct tuple *t)
{
	char s[INET6_ADDRSTRLEN];

	if (t->l3 == AF_INET) {
		p = put_v4(PUT_LIT(p, "src="), t->src.v4);
		return put_v4(PUT_LIT(p, "dst="), t->dst.v4);
	}
	inet_ntop(AF_INET6, t->src.b, s, sizeof(s));
	p = put_s(PUT_LIT(p, "src="), s, strlen(s));
	inet_ntop(AF_INET6, t->dst.b, s, sizeof(s));
	p = put_s(PUT_LIT(p, " dst="), s, strlen(s));
	*p++ = ' ';
	return p;
}

/* Layer 4 of one direction. ports: whether the object got them (else the
 * library's zeroed fields print). ICMP goes through icmp_line(). */
static char *put_l4(char *p, const struct tuple *t, bool ports)
{
	unsigned s = ports ? ntohs(t->sport) : 0, d = ports ? ntohs(t->dport) : 0;

	switch (t->l4) {
	case IPPROTO_TCP: case IPPROTO_UDP: case IPPROTO_UDPLITE:
	case IPPROTO_SCTP: case IPPROTO_DCCP:
		p = obj_text_u64(PUT_LIT(p, "sport="), s);
		p = obj_text_u64(PUT_LIT(p, " dport="), d);
		*p++ = ' ';
		break;
	case IPPROTO_GRE:
		p = put_hex(PUT_LIT(p, "srckey=0x"), s);
		p = put_hex(PUT_LIT(p, " dstkey=0x"), d);
		*p++ = ' ';
		break;
	}
	return p;
}

static char *put_icmp(char *p, unsigned type, unsigned code, unsigned id)
{
	p = obj_text_u64(PUT_LIT(p, "type="), type);
	p = obj_text_u64(PUT_LIT(p, " code="), code);
	p = obj_text_u64(PUT_LIT(p, " id="), id);
	*p++ = ' ';
	return p;
}

/*
 * The reply type the library's ICMP setter derives (its invmap tables):
 * 255 when the query has no reply; -1 where the library would index past
 * its tables (v4 types > 18, v6 types outside 128..140): not covered.
 */
static int icmp_repl_type(uint8_t l3, uint8_t type)
{
	if (l3 == AF_INET) {
		static const uint8_t m[][2] = {
			{8, 0}, {0, 8}, {13, 14}, {14, 13}, {15, 16}, {16, 15},
			{17, 18}, {18, 17},
		};
		if (type > 18)
			return -1;
		for (size_t i = 0; i < sizeof(m) / sizeof(m[0]); i++)
			if (m[i][0] == type)
				return m[i][1];
		return 255;
	}
	if (type < 128 || type > 140)
		return -1;
	switch (type) {
	case 128: return 129;
	case 129: return 128;
	case 139: return 140;
	case 140: return 139;
	}
	return 255;
}

/* The whole line plus the trailing blank the library deletes; NULL if not
 * covered. p has TEXT_MAX bytes. */
static char *line(char *p, const struct ct *ct)
{
	const struct tuple *o = &ct->orig, *r = &ct->repl;
	bool icmp = (o->l3 == AF_INET && o->l4 == IPPROTO_ICMP) ||
		    (o->l3 == AF_INET6 && o->l4 == IPPROTO_ICMPV6);
	bool ports = (ct->have & CT_H_PORTS) && !icmp;
	bool icmp_set = icmp && (ct->have & (CT_H_ICMP | CT_H_PORTS));
	bool repl = !(ct->have & CT_H_REPL_SYNTH) && (ct->have & CT_H_REPL);
	uint32_t st = ct->have & (CT_H_TCP_STATE | CT_H_SCTP | CT_H_DCCP);
	int rtype = 0;
	const char *name;

	if (o->l3 != AF_INET && o->l3 != AF_INET6)
		return NULL;
	/* ICMP numbers under the other family: the library reads ports as
	 * type/code bytes. Timestamps print a delta against time(): both rare. */
	if (!icmp && (o->l4 == IPPROTO_ICMP || o->l4 == IPPROTO_ICMPV6))
		return NULL;
	if (ct->have & CT_H_TIMESTAMP)
		return NULL;
	if (repl && (r->l3 != o->l3 || r->l4 != o->l4))
		return NULL;
	if (icmp_set && (rtype = icmp_repl_type(o->l3, o->itype)) < 0)
		return NULL;
	/* The library keeps the three states in one union: with more than
	 * one set, the last one set prints for all. */
	if (st & (st - 1))
		return NULL;
	if (((ct->have & CT_H_TCP_STATE) && ct->tcp_state >= 10) ||
	    ((ct->have & CT_H_SCTP) && ct->sctp_state >= 10) ||
	    ((ct->have & CT_H_DCCP) && ct->dccp_state >= 10))
		return NULL;

	name = proto_name(o->l4);
	p = put_s(p, name, strlen(name));
	for (size_t n = strlen(name); n < 8; n++)
		*p++ = ' ';
	*p++ = ' ';
	p = obj_text_u64(p, o->l4);
	*p++ = ' ';
	if (ct->have & CT_H_TCP_STATE)
		p = put_state(p, tcp_states[ct->tcp_state]);
	if (ct->have & CT_H_SCTP)
		p = put_state(p, sctp_states[ct->sctp_state]);
	if (ct->have & CT_H_DCCP)
		p = put_state(p, dccp_states[ct->dccp_state]);

	p = put_addrs(p, o);
	if (icmp)
		p = icmp_set ? put_icmp(p, o->itype, o->icode, ntohs(o->sport)) :
			       put_icmp(p, 0, 0, 0);
	else
		p = put_l4(p, o, ports);
	if ((ct->have & CT_H_STATUS) && !(ct->status & IPS_SEEN_REPLY))
		p = PUT_LIT(p, "[UNREPLIED] ");
	if (repl) {
		p = put_addrs(p, r);
		if (icmp)       /* the setters filled the reply side too */
			p = icmp_set ? put_icmp(p, (unsigned)rtype, o->icode,
						ntohs(o->sport)) :
				       put_icmp(p, 0, 0, 0);
		else
			p = put_l4(p, r, ports);
	}
	if (ct->have & CT_H_STATUS) {
		if (ct->status & IPS_HW_OFFLOAD)
			p = PUT_LIT(p, "[HW_OFFLOAD] ");
		else if (ct->status & IPS_OFFLOAD)
			p = PUT_LIT(p, "[OFFLOAD] ");
		else if (ct->status & IPS_ASSURED)
			p = PUT_LIT(p, "[ASSURED] ");
	}
	if (ct->have & CT_H_MARK)
		p = obj_text_u64(PUT_LIT(p, "mark="), ct->mark), *p++ = ' ';
	if (ct->have & CT_H_SECMARK)
		p = obj_text_u64(PUT_LIT(p, "secmark="), ct->secmark), *p++ = ' ';
	if (ct->have & CT_H_ZONE)
		p = obj_text_u64(PUT_LIT(p, "zone="), ct->zone), *p++ = ' ';
	if ((ct->have & CT_H_HELPER) && ct->helper[0]) {
		p = PUT_LIT(p, "helper=");
		p = put_s(p, ct->helper, strnlen(ct->helper, CT_HELPER_MAX - 1));
		*p++ = ' ';
	}
	/* Not printed by the plain printer with flags 0 or without a label
	 * map: master, seqadj, synproxy, wscale, id, labels. */
	return p;
}

int ct_text_plain(char *buf, size_t len, const struct ct *ct)
{
	char tmp[TEXT_MAX];
	char *dst = len >= TEXT_MAX ? buf : tmp;
	char *end = line(dst, ct);
	size_t n;

	if (!end)
		return -1;
	n = (size_t)(end - dst) - 1;    /* the library drops the last blank */
	if (dst == tmp && len) {
		size_t c = n < len - 1 ? n : len - 1;

		memcpy(buf, tmp, c);
		buf[c] = '\0';
	} else if (dst == buf) {
		buf[n] = '\0';
	}
	return (int)n;
}
