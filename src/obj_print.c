/*
 * The text forms of -i/-e/-x and of log records: libnetfilter_conntrack's
 * printers called exactly as conntrackd 1.4.x calls them (message type
 * unknown, flags 0), on an object built from what the cache holds.
 */
#include <stdio.h>
#include <libnetfilter_conntrack/libnetfilter_conntrack.h>

#include "objconv.h"

static int put(char *buf, size_t len, int r)
{
	if (r < 0) {            /* no object, or the library failed: print nothing */
		if (len)
			buf[0] = '\0';
		return 0;
	}
	if (len && (size_t)r >= len)
		buf[len - 1] = '\0';
	return r;
}

static unsigned out_type(enum obj_fmt f)
{
	return f == OBJ_FMT_XML ? NFCT_O_XML : NFCT_O_PLAIN;
}

/* No object (out of memory): an empty line, as put() gives for a failure. */
static int ct_print(char *buf, size_t len, const struct ct *ct,
		    enum ct_nfct_mode mode, enum obj_fmt f)
{
	struct nf_conntrack *n = ct_to_nfct_mode(ct, mode, true);
	int r;

	if (!n)
		return put(buf, len, -1);
	r = nfct_snprintf(buf, len, n, NFCT_T_UNKNOWN, out_type(f), 0);
	nfct_destroy(n);
	return put(buf, len, r);
}

int ct_snprintf_nfct(char *buf, size_t len, const struct ct *ct, enum obj_fmt f)
{
	return ct_print(buf, len, ct, CT_NFCT_PRINT, f);
}

/* Plain lines are written directly where obj_text.c covers the entry
 * (the common case, and most of a dump's CPU); XML keeps the library. */
int ct_snprintf(char *buf, size_t len, const struct ct *ct, enum obj_fmt f)
{
	int r;

	if (f == OBJ_FMT_PLAIN && (r = ct_text_plain(buf, len, ct)) >= 0)
		return r;
	return ct_snprintf_nfct(buf, len, ct, f);
}

/* For log records: with the timeout and counters when known. */
int ct_snprintf_timeout(char *buf, size_t len, const struct ct *ct)
{
	return ct_print(buf, len, ct, CT_NFCT_PRINT_TIMEOUT, OBJ_FMT_PLAIN);
}

static int exp_print(char *buf, size_t len, const struct exp *e, bool timeout,
		     enum obj_fmt f)
{
	struct nf_expect *n = exp_to_nfexp_mode(e, timeout);
	int r;

	if (!n)
		return put(buf, len, -1);
	r = nfexp_snprintf(buf, len, n, NFCT_T_UNKNOWN, out_type(f), 0);
	nfexp_destroy(n);
	return put(buf, len, r);
}

int exp_snprintf(char *buf, size_t len, const struct exp *e, enum obj_fmt f)
{
	return exp_print(buf, len, e, false, f);
}

int exp_snprintf_timeout(char *buf, size_t len, const struct exp *e)
{
	return exp_print(buf, len, e, true, OBJ_FMT_PLAIN);
}
