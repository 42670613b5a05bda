/*
 * libFuzzer target for ctnetlink event parsing. The input is what one
 * recv() on an event socket returns; it goes through nl_parse_event(), the
 * function the daemon's event sockets use (the one-pass conntrack parser of
 * obj_nlparse.c; libnetfilter_conntrack's for expectations). Every object
 * that comes out is printed (-i / -e text and XML, log records) and encoded
 * for the sync wire, as the daemon would; what we encode must decode again.
 * Each conntrack message nl_msg_ok() accepts is also parsed the library's
 * way (ct_from_nlmsg_nfct): both must accept or refuse it, with the same
 * struct ct.
 *
 * Seeds: tests/fuzz/corpus-nl/, real events captured from the kernel
 * (conntrack -E style: new/update/destroy of TCP, UDP, ICMP, NAT, helper
 * and expectation messages).
 */
#include <stdlib.h>
#include <string.h>

#include <linux/netlink.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>

#include "nl.h"
#include "objconv.h"
#include "obj_nlparse.h"
#include "wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)        do { if (!(c)) abort(); } while (0)

static void on_ct(void *arg, enum nl_event ev, uint32_t portid, const struct ct *ct)
{
	static const struct wire_tx_opts o = { false, true };
	static char txt[4096];
	static uint8_t msg[4096];
	struct ct back, copy;
	int n;

	(void)arg;
	(void)portid;
	CHECK(ct_snprintf(txt, sizeof(txt), ct, OBJ_FMT_PLAIN) >= 0);
	CHECK(ct_snprintf(txt, sizeof(txt), ct, OBJ_FMT_XML) >= 0);
	CHECK(ct_snprintf_timeout(txt, sizeof(txt), ct) >= 0);
	n = wire_put_ct(msg, sizeof(msg), ev == NL_DESTROY ? WT_CT_DEL : WT_CT_NEW,
			0, 1, ct, &o);
	if (n > 0) {
		CHECK(wire_get_ct(msg, (size_t)n, &back) == 0);
		/* Known finding (doc/notes/hardening.md, corpus-nl/noaddr-*):
		 * ct_from_nfct() accepts an event without original addresses
		 * and the message then carries none; the family is lost. */
		if (ct->have & CT_H_ORIG)
			CHECK(back.orig.l3 == ct->orig.l3 &&
			      back.orig.l4 == ct->orig.l4);
		ct_release(&back);
	}
	if (ct_copy(&copy, ct) == 0)
		ct_release(&copy);
}

static void on_exp(void *arg, enum nl_event ev, uint32_t portid, const struct exp *e)
{
	static const struct wire_tx_opts o = { false, true };
	static char txt[4096];
	static uint8_t msg[4096];
	struct exp back;
	int n;

	(void)arg;
	(void)portid;
	CHECK(exp_snprintf(txt, sizeof(txt), e, OBJ_FMT_PLAIN) >= 0);
	CHECK(exp_snprintf(txt, sizeof(txt), e, OBJ_FMT_XML) >= 0);
	CHECK(exp_snprintf_timeout(txt, sizeof(txt), e) >= 0);
	n = wire_put_exp(msg, sizeof(msg), ev == NL_DESTROY ? WT_EXP_DEL : WT_EXP_NEW,
			 0, 1, e, &o);
	if (n > 0)
		(void)wire_get_exp(msg, (size_t)n, &back);
}

static void same_ct(const struct ct *a, const struct ct *b)
{
	struct ct x = *a, y = *b;

	x.ext = y.ext = NULL;
	CHECK(memcmp(&x, &y, sizeof(x)) == 0);
	CHECK((a->ext == NULL) == (b->ext == NULL));
	if (a->ext)
		CHECK(a->ext->labels_len == b->ext->labels_len &&
		      memcmp(a->ext, b->ext, sizeof(*a->ext) + a->ext->labels_len) == 0);
}

/* Differential check of the one-pass parser against the library's. */
static void compare_parsers(const uint8_t *buf, size_t len)
{
	size_t off = 0;

	while (len - off >= sizeof(struct nlmsghdr)) {
		const struct nlmsghdr *nlh = (const struct nlmsghdr *)(buf + off);
		size_t mlen = nlh->nlmsg_len, step = (mlen + 3) & ~(size_t)3;
		struct ct a, b;
		int ra, rb;

		if (mlen < sizeof(struct nlmsghdr) || mlen > len - off)
			return;
		if ((nlh->nlmsg_type >> 8) == NFNL_SUBSYS_CTNETLINK &&
		    mlen >= NLMSG_HDRLEN + sizeof(struct nfgenmsg) &&
		    nl_msg_ok(nlh, len - off, false)) {
			memset(&a, 0, sizeof(a));
			ra = ct_from_nlmsg_nfct(&a, nlh);
			rb = ct_parse_nlmsg(&b, nlh);
			CHECK((ra == 0) == (rb == 0));
			if (ra == 0)
				same_ct(&a, &b);
			ct_release(&a);
			ct_release(&b);
		}
		if (step >= len - off)
			return;
		off += step;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* The socket read buffer is aligned; so is ours. */
	static uint32_t buf[65536 / 4];
	struct nl_parse_stats st = { 0, 0, 0 };
	unsigned n;

	if (size > sizeof(buf))
		size = sizeof(buf);
	memcpy(buf, data, size);
	n = nl_parse_event(buf, size, on_ct, on_exp, NULL, &st);
	CHECK(st.received + st.unknown + st.failed == n);
	compare_parsers((const uint8_t *)buf, size);
	return 0;
}
