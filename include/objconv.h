/*
 * Conversions between struct ct/exp and libnetfilter_conntrack objects, and
 * the text forms of -i/-e/-x (nfct_snprintf/nfexp_snprintf with the same
 * arguments as conntrackd 1.4.x, so lines match byte for byte).
 * Owned by src/obj_nfct.c and src/obj_print.c.
 */
#ifndef CTD_OBJCONV_H
#define CTD_OBJCONV_H

#include <stdbool.h>
#include <stddef.h>
#include "obj.h"

struct nf_conntrack;
struct nf_expect;
struct nlmsghdr;

/* From a kernel object (event or dump). Returns 0, -1 if unusable (no
 * layer-3 info) or ENOMEM. */
int  ct_from_nfct(struct ct *ct, const struct nf_conntrack *n);
int  exp_from_nfexp(struct exp *e, const struct nf_expect *n);
/* From one ctnetlink message (event or dump): conntracks with the one-pass
 * parser (obj_nlparse.h), expectations through a temporary library
 * object: 0, or -1 if the library refused it, it is unusable or no memory.
 * The caller checks the message's shape first where it is not the kernel's
 * own reply (events: nl.c). */
int  ct_from_nlmsg(struct ct *ct, const struct nlmsghdr *nlh);
/* The same through libnetfilter_conntrack (nfct_nlmsg_parse, then
 * ct_from_nfct): the reference the one-pass parser (obj_nlparse.h) is
 * tested against. */
int  ct_from_nlmsg_nfct(struct ct *ct, const struct nlmsghdr *nlh);
int  exp_from_nlmsg(struct exp *e, const struct nlmsghdr *nlh);
/* To a fresh libnetfilter_conntrack object (caller nfct_destroy()s).
 * ct_to_nfct == ct_to_nfct_mode(ct, CT_NFCT_KERNEL, false). */
struct nf_conntrack *ct_to_nfct(const struct ct *ct);
struct nf_expect *exp_to_nfexp(const struct exp *e);

/* ct_to_nfct_mode(): what the object is for. */
enum ct_nfct_mode {
	/* A request to the kernel (commit, inject): REPL_SYNTH objects get
	 * the inverse of orig as reply plus NAT bindings, IPS_EXPECTED is
	 * cleared, TCP gets BE_LIBERAL unless window tracking, no use/counters. */
	CT_NFCT_KERNEL = 0,
	/* Printing without timeout (-i/-e/-x): REPL_SYNTH has no reply at all. */
	CT_NFCT_PRINT,
	/* Printing with the timeout (log records). */
	CT_NFCT_PRINT_TIMEOUT,
};
struct nf_conntrack *ct_to_nfct_mode(const struct ct *ct, enum ct_nfct_mode mode,
				     bool tcp_window_tracking);
/* with_timeout false: for printing without the timeout. */
struct nf_expect *exp_to_nfexp_mode(const struct exp *e, bool with_timeout);

enum obj_fmt { OBJ_FMT_PLAIN = 0, OBJ_FMT_XML = 1 };

/* The dump line without suffix and newline; timeout omitted, as upstream.
 * Returns the length written (truncated at len-1, like snprintf). */
int  ct_snprintf(char *buf, size_t len, const struct ct *ct, enum obj_fmt f);
int  exp_snprintf(char *buf, size_t len, const struct exp *e, enum obj_fmt f);
/* With the timeout, for object records in the log (commit errors, stats). */
int  ct_snprintf_timeout(char *buf, size_t len, const struct ct *ct);
int  exp_snprintf_timeout(char *buf, size_t len, const struct exp *e);
/* ct_snprintf through libnetfilter_conntrack only (the reference
 * obj_text.c's direct formatter is tested against). */
int  ct_snprintf_nfct(char *buf, size_t len, const struct ct *ct, enum obj_fmt f);
/* obj_text.c: the plain line written directly, as ct_snprintf's contract;
 * -1 for an entry it does not cover (the caller uses the library). */
int  ct_text_plain(char *buf, size_t len, const struct ct *ct);
/* Decimal digits of v at p (no NUL); returns the end. */
char *obj_text_u64(char *p, uint64_t v);

#endif
