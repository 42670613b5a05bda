/*
 * ctnetlink requests built straight from struct ct / struct exp with
 * libmnl: the same attributes, in the same order, as
 * nfct_nlmsg_build(ct_to_nfct_mode(ct, CT_NFCT_KERNEL, wt)) and
 * nfexp_nlmsg_build(exp_to_nfexp_mode(e, true)), without a library object
 * per entry (allocation, attribute setters, destruction): the commit's
 * per-entry cost in user space. tests/unit/test_kernel.c compares both
 * ways byte for byte. Owned by src/obj_nlbuild.c.
 *
 * The caller has put the netlink and nfgenmsg headers; each function
 * appends attributes (at most NLB_MAX_ATTRS bytes) and returns 0, or -1
 * if the object cannot be expressed (no layer 3/4 protocol the kernel
 * knows), where the library fails too. Padding is left as the buffer
 * holds it: callers hand zeroed buffers.
 */
#ifndef CTD_OBJ_NLBUILD_H
#define CTD_OBJ_NLBUILD_H

#include <stdbool.h>
#include <stdint.h>
#include "obj.h"

struct nlmsghdr;

/* Worst case appended by one call: tuples, NAT, helper, 1024 B of labels. */
#define NLB_MAX_ATTRS 2048

/* A create or update: as CT_NFCT_KERNEL (REPL_SYNTH becomes the inverted
 * tuple plus NAT bindings, IPS_EXPECTED cleared, TCP BE_LIBERAL unless
 * window tracking), with CTA_TIMEOUT = timeout (none if 0). */
int nlb_ct(struct nlmsghdr *nlh, const struct ct *ct, bool tcp_window_tracking,
	   uint32_t timeout);
/* A delete or get: the original tuple and the zone only. */
int nlb_ct_key(struct nlmsghdr *nlh, const struct ct *ct);
/* An expectation; CTA_EXPECT_TIMEOUT = timeout, or the object's if 0. */
int nlb_exp(struct nlmsghdr *nlh, const struct exp *e, uint32_t timeout);

#endif
