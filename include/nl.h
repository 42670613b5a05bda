/*
 * The kernel side: ctnetlink event sockets (conntracks, expectations),
 * dumps, resync after overruns, polling mode, and the user-space filter.
 * Events are converted to struct ct / struct exp and handed to the mode
 * through the callbacks in struct nl_sink. Owned by src/nl.c, src/filter.c,
 * src/obj_nfct.c.
 */
#ifndef CTD_NL_H
#define CTD_NL_H

#include <stdbool.h>
#include <stdint.h>
#include "obj.h"

struct ctd;
struct nl;

enum nl_event { NL_NEW = 0, NL_UPDATE = 1, NL_DESTROY = 2 };

/* Who caused a kernel event (netlink portid of the originating socket). */
enum nl_origin {
	NL_ORIGIN_OTHER = 0,        /* kernel or other processes: cache and send */
	NL_ORIGIN_COMMIT,           /* our commit socket: cache, never send */
	NL_ORIGIN_INJECT,           /* our inject socket: ignore */
	NL_ORIGIN_FLUSH,            /* our flush socket: mark dead, no DESTROY */
};

struct nl_sink {                    /* implemented by the mode (sync or stats) */
	void (*ct_event)(struct ctd *d, enum nl_event ev, enum nl_origin o,
			 const struct ct *ct);
	void (*exp_event)(struct ctd *d, enum nl_event ev, enum nl_origin o,
			  const struct exp *e);
	/* A dump entry (start-up, -R, overrun resync, polling). */
	void (*ct_dump)(struct ctd *d, const struct ct *ct);
	void (*exp_dump)(struct ctd *d, const struct exp *e);
	/* Around an overrun/poll resync dump: entries not reported between
	 * begin and done have vanished from the kernel (purge them). */
	void (*resync_begin)(struct ctd *d, bool exp);
	void (*resync_done)(struct ctd *d, bool exp);
};

struct nl_stats {                   /* -s runtime "netlink stats" */
	uint64_t events_received, events_filtered, events_unknown;
	uint64_t catch_failed, dump_unknown, overruns, flushes, resyncs;
	uint32_t bufsize;
};

/* Open event sockets (and the expectation one when ExpectationSync) and
 * register them in d->loop. Logs the start-up lines of §5.2. */
int  nl_open(struct ctd *d, const struct nl_sink *sink);
void nl_close(struct ctd *d);

/* Synchronous dumps through the sink's *_dump callbacks (start-up, -R). */
int  nl_dump_ct(struct ctd *d);
int  nl_dump_exp(struct ctd *d);
/* Schedule a resync from a kernel dump now (overrun) or after `secs`. */
void nl_schedule_resync(struct ctd *d, unsigned secs);
/* Resync right away: resync_begin, dump (conntracks, then expectations with
 * ExpectationSync), resync_done; counted in "resync with kernel table". */
void nl_resync_now(struct ctd *d);
/* The same for some kinds only (NL_EV_CT, NL_EV_EXP). */
void nl_resync_kinds(struct ctd *d, unsigned kinds);

enum { NL_EV_CT = 1, NL_EV_EXP = 2 };
/* Leave (pause=true) or rejoin the conntrack NEW/UPDATE (NL_EV_CT) and/or
 * expectation NEW (NL_EV_EXP) event groups (DESTROY stays joined): the
 * kernel then builds no events for our own commit. The caller resyncs those
 * kinds (nl_resync_kinds) after rejoining. Returns the kinds whose state
 * changed (none in polling mode, or if already in that state). */
unsigned nl_events_pause(struct ctd *d, unsigned kinds, bool pause);

/* Filters (user space), as configured in General { Filter }. */
bool nl_filter_ct(const struct ctd *d, const struct ct *ct);     /* true = accept */
struct conf_filter;
bool filter_ct_accept(const struct conf_filter *f, const struct ct *ct); /* NULL = accept */
/* From Kernelspace: attach the equivalent BPF program to an event socket. */
int  nl_filter_attach(const struct ctd *d, int fd);

/* Fetch one conntrack from the kernel by its original tuple (expectation
 * master checks with DisableInternalCache). Returns 1 found, 0 not, -1 error. */
int  nl_get_ct(struct ctd *d, const struct ct *key, struct ct *out);

const struct nl_stats *nl_stats(const struct ctd *d);
/* For -s runtime: callers of kernel_flush_ct() (-F, -t) and of a plain
 * nl_dump_ct() resync (-R) report them here ("flush kernel table",
 * "resync with kernel table"); nl_resync_now() counts itself. */
void nl_note_flush(struct ctd *d);
void nl_note_resync(struct ctd *d);

/*
 * Pure ctnetlink event parsing: the bytes of one netlink read to struct ct /
 * struct exp, with no socket and no daemon context, so the fuzzer
 * (tests/fuzz/fuzz_nl.c) runs the very code the event sockets use.
 */
struct nlmsghdr;
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

/* True if libnetfilter_conntrack can parse this message without reading
 * past `avail` bytes or calling exit()/assert() on bad attribute sizes. */
bool nl_msg_ok(const struct nlmsghdr *nlh, size_t avail, bool exp);

#endif
