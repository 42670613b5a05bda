/*
 * Pure ctnetlink event parsing (owned by src/nl.c): the bytes of one
 * netlink read to struct ct / struct exp, with no socket and no daemon
 * context, so the fuzzer (tests/fuzz/fuzz_nl.c) runs the very code the
 * event sockets use. To be merged into nl.h by its owner.
 */
#ifndef CTD_NL_PARSE_H
#define CTD_NL_PARSE_H

#include <stddef.h>
#include <stdint.h>
#include "nl.h"
#include "obj.h"

struct nl_parse_stats {
	uint64_t received;              /* parsed and handed to a callback */
	uint64_t unknown;               /* not a conntrack/expectation event */
	uint64_t failed;                /* libnetfilter_conntrack refused it */
};

/* portid: the netlink port id of the socket that caused the event. */
typedef void (*nl_ct_fn)(void *arg, enum nl_event ev, uint32_t portid,
			 const struct ct *ct);
typedef void (*nl_exp_fn)(void *arg, enum nl_event ev, uint32_t portid,
			  const struct exp *e);

/*
 * Walk the netlink messages in buf[0..len) (must be 4-byte aligned) and
 * call ct/exp (either may be NULL) for each event; the object is only
 * valid during the call. Truncated or malformed messages are counted in st,
 * never read past len. Returns the number of messages walked.
 */
unsigned nl_parse_event(const void *buf, size_t len, nl_ct_fn ct, nl_exp_fn exp,
			void *arg, struct nl_parse_stats *st);

#endif
