/*
 * One-pass ctnetlink parser: a conntrack message (event or dump) straight
 * into struct ct, with no libnetfilter_conntrack object in between (no
 * allocation, no per-attribute callbacks). Owned by src/obj_nlparse.c.
 */
#ifndef CTD_OBJ_NLPARSE_H
#define CTD_OBJ_NLPARSE_H

#include "obj.h"

struct nlmsghdr;

/*
 * The message must have passed nl_msg_ok() (attribute shapes checked,
 * nothing past its aligned end). Gives exactly what ct_from_nlmsg_nfct()
 * (libnetfilter_conntrack's parser, then ct_from_nfct) gives, including
 * the library's quirks (tests/unit/test_nfct.c compares the two):
 * 0, -1 if unusable (no layer-3 addresses, oversized labels) or ENOMEM.
 */
int ct_parse_nlmsg(struct ct *ct, const struct nlmsghdr *nlh);

#endif
