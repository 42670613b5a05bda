/*
 * ctnetlink event sockets, dumps, overrun recovery and polling mode.
 *
 * Events are read with libmnl; conntracks are parsed in one pass
 * (obj_nlparse.c), expectations with nfexp_nlmsg_parse(). We see
 * the netlink header, so the port id of the socket that caused an event
 * tells us whether it came from our own commit/inject/flush sockets.
 */
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <time.h>
#include <sys/socket.h>
#include <libmnl/libmnl.h>
#include <linux/netlink.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <libnetfilter_conntrack/libnetfilter_conntrack.h>

#include "ctd.h"
#include "log.h"
#include "nl.h"
#include "objconv.h"
#include "obj_nlparse.h"

#ifndef SOL_NETLINK
#define SOL_NETLINK 270
#endif
#ifndef NETLINK_BROADCAST_ERROR
#define NETLINK_BROADCAST_ERROR 4
#endif
#ifndef NETLINK_NO_ENOBUFS
#define NETLINK_NO_ENOBUFS 5
#endif

#define NL_RBUFSZ           (64 * 1024)
/* Event reads: one recvmmsg() takes up to NL_SLOTS events (each event is
 * its own netlink datagram, a few hundred bytes; a slot holds the largest
 * the kernel builds), so the syscall is paid once per batch, not per event. */
#define NL_SLOTS            32
#define NL_SLOTSZ           8192
/*
 * Coalescing: at a paced rate the kernel creates events one by one while
 * we read on the other CPU, so every loop turn found ~3 events and paid a
 * select(), a recvmmsg() and a sendto() of a 3-message datagram for them.
 * A wake-up that yields fewer than NL_COALESCE_MIN events leaves the socket
 * out of select() for NL_COALESCE_MS, so the next read (and datagram) is
 * full. Sync latency grows by at most that; a burst never waits (its reads
 * are full). The buffer holds far more than a millisecond of events.
 */
#define NL_COALESCE_MIN     32
#ifndef NL_COALESCE_MS
#define NL_COALESCE_MS      1
#endif
#define NL_REQ_BUFSZ        8192
/* Without NetlinkBufferSize we start big: an overrun costs a full dump,
 * and a burst at the kernel's full create rate fills 16 MB. */
#define NL_DEFAULT_BUF      (32u * 1024 * 1024)
#define NL_DEFAULT_BUF_MAX  (64u * 1024 * 1024)
/* Overrun resync delay: let the burst drain, then resync (bounded by
 * NetlinkOverrunResync). */
#define NL_OVERRUN_DELAY_MS 200

struct nlsock {
	struct nl *nl;
	struct mnl_socket *s;
	int fd;
	bool exp;
	struct ev_timer coalesce_t;     /* re-arms the fd after a thin read */
};

struct nl {
	struct ctd *d;
	struct nl_sink sink;
	struct nlsock ct, ex;           /* ex.s == NULL without ExpectationSync */
	struct nl_stats st;
	uint32_t bufmax;                /* growth ceiling, bytes */
	bool warned_max;
	uint64_t resync_ms;             /* duration of the last resync */
	uint64_t resync_end;            /* ev_now_ms() when it ended, 0 = never */
	unsigned paused;                /* NL_EV_*: NEW/UPDATE groups left (commit) */
	struct ev_timer resync_t, poll_t;
	char *rbuf;                     /* NL_SLOTS slots of NL_SLOTSZ */
	struct mmsghdr mm[NL_SLOTS];
	struct iovec iov[NL_SLOTS];
};

static const struct nl_stats zero_stats;

static uint32_t rcvbuf_get(int fd)
{
	int v = 0;
	socklen_t l = sizeof(v);

	getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, &l);
	return (uint32_t)v;
}

/* The kernel doubles what is asked: ask for half to get `size`. */
static uint32_t rcvbuf_set(int fd, uint32_t size)
{
	int v = (int)(size / 2);

	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &v, sizeof(v)) < 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, sizeof(v));
	return rcvbuf_get(fd);
}

static enum nl_origin origin(const struct ctd *d, uint32_t pid)
{
	if (!pid)
		return NL_ORIGIN_OTHER;
	if (pid == d->portid_commit)
		return NL_ORIGIN_COMMIT;
	if (pid == d->portid_inject)
		return NL_ORIGIN_INJECT;
	if (pid == d->portid_flush)
		return NL_ORIGIN_FLUSH;
	return NL_ORIGIN_OTHER;
}

/* ---- parsing (pure; see nl_parse_event in nl.h) ---- */

/*
 * Attribute shape check before libnetfilter_conntrack sees a message: the
 * library calls exit() ("ctnetlink kernel ABI is broken") when a known
 * attribute is shorter than its type, which would take the daemon down
 * on one bad message (found by fuzz_nl). We refuse such messages first,
 * with rules at least as strict as the kernel's own policy (UAPI
 * linux/netfilter/nfnetlink_conntrack.h).
 */
enum akind { A_NONE = 0, A_U8, A_U16, A_U32, A_U64, A_V6, A_NEST, A_STR, A_NAME16,
	      A_NAME24, A_ANY };

struct apol {
	uint8_t kind;
	const struct aset *sub;         /* A_NEST */
};
struct aset {
	unsigned max;
	const struct apol *p;
};

#define ASET(name, ...) \
	static const struct apol name##_p[] = { __VA_ARGS__ }; \
	static const struct aset name = { sizeof(name##_p) / sizeof(name##_p[0]) - 1, name##_p }

ASET(a_ip, [1] = { A_U32, NULL }, [2] = { A_U32, NULL }, [3] = { A_V6, NULL },
     [4] = { A_V6, NULL });
ASET(a_proto, [1] = { A_U8, NULL }, [2] = { A_U16, NULL }, [3] = { A_U16, NULL },
     [4] = { A_U16, NULL }, [5] = { A_U8, NULL }, [6] = { A_U8, NULL },
     [7] = { A_U16, NULL }, [8] = { A_U8, NULL }, [9] = { A_U8, NULL });
ASET(a_tuple, [1] = { A_NEST, &a_ip }, [2] = { A_NEST, &a_proto },
     [3] = { A_U16, NULL });
ASET(a_tcp, [1] = { A_U8, NULL }, [2] = { A_U8, NULL }, [3] = { A_U8, NULL },
     [4] = { A_U16, NULL }, [5] = { A_U16, NULL });
ASET(a_dccp, [1] = { A_U8, NULL }, [2] = { A_U8, NULL }, [3] = { A_U64, NULL });
ASET(a_sctp, [1] = { A_U8, NULL }, [2] = { A_U32, NULL }, [3] = { A_U32, NULL });
ASET(a_pinfo, [1] = { A_NEST, &a_tcp }, [2] = { A_NEST, &a_dccp },
     [3] = { A_NEST, &a_sctp });
ASET(a_counters, [1] = { A_U64, NULL }, [2] = { A_U64, NULL }, [3] = { A_U32, NULL },
     [4] = { A_U32, NULL });
ASET(a_help, [1] = { A_NAME16, NULL });
ASET(a_secctx, [1] = { A_STR, NULL });
ASET(a_u32x3, [1] = { A_U32, NULL }, [2] = { A_U32, NULL }, [3] = { A_U32, NULL });
ASET(a_tstamp, [1] = { A_U64, NULL }, [2] = { A_U64, NULL });
ASET(a_ct, [1] = { A_NEST, &a_tuple }, [2] = { A_NEST, &a_tuple },
     [3] = { A_U32, NULL }, [4] = { A_NEST, &a_pinfo }, [5] = { A_NEST, &a_help },
     [7] = { A_U32, NULL }, [8] = { A_U32, NULL }, [9] = { A_NEST, &a_counters },
     [10] = { A_NEST, &a_counters }, [11] = { A_U32, NULL }, [12] = { A_U32, NULL },
     [14] = { A_NEST, &a_tuple }, [15] = { A_NEST, &a_u32x3 },
     [16] = { A_NEST, &a_u32x3 }, [17] = { A_U32, NULL }, [18] = { A_U16, NULL },
     [19] = { A_NEST, &a_secctx }, [20] = { A_NEST, &a_tstamp },
     [21] = { A_U32, NULL }, [22] = { A_ANY, NULL }, [23] = { A_ANY, NULL },
     [24] = { A_NEST, &a_u32x3 }, [25] = { A_ANY, NULL }, [26] = { A_U32, NULL });
ASET(a_expnat, [1] = { A_U32, NULL }, [2] = { A_NEST, &a_tuple });
ASET(a_exp, [1] = { A_NEST, &a_tuple }, [2] = { A_NEST, &a_tuple },
     [3] = { A_NEST, &a_tuple }, [4] = { A_U32, NULL }, [5] = { A_U32, NULL },
     [6] = { A_NAME16, NULL }, [7] = { A_U16, NULL }, [8] = { A_U32, NULL },
     [9] = { A_U32, NULL }, [10] = { A_NEST, &a_expnat }, [11] = { A_NAME24, NULL });

static bool attrs_ok(const uint8_t *p, size_t len, const struct aset *set, int depth)
{
	static const uint8_t size[] = { [A_U8] = 1, [A_U16] = 2, [A_U32] = 4,
					[A_U64] = 8, [A_V6] = 16 };

	if (depth > 8)
		return false;
	/* Same walk as the library's: stop at the first attribute that does
	 * not fit (it ignores the rest; so do we). */
	while (len >= sizeof(struct nlattr)) {
		const struct nlattr *a = (const struct nlattr *)p;
		size_t alen = a->nla_len, step = (alen + 3) & ~(size_t)3;
		size_t plen = alen - sizeof(struct nlattr);
		const uint8_t *pl = p + sizeof(struct nlattr);
		unsigned type = a->nla_type & NLA_TYPE_MASK;
		const struct apol *pol;

		if (alen < sizeof(struct nlattr) || alen > len)
			return true;
		pol = type <= set->max ? &set->p[type] : NULL;
		if (pol && pol->kind != A_NONE) {
			switch (pol->kind) {
			case A_NEST:
				if (plen > 0 && (plen < sizeof(struct nlattr) ||
						 !attrs_ok(pl, plen, pol->sub, depth + 1)))
					return false;
				break;
			case A_STR:
			case A_NAME16:  /* the library asserts on longer names */
			case A_NAME24:
				if (plen == 0 || pl[plen - 1] != '\0' ||
				    (pol->kind == A_NAME16 && plen > 16) ||
				    (pol->kind == A_NAME24 && plen > 24))
					return false;
				break;
			case A_ANY:
				break;
			default:        /* libmnl wants the exact size */
				if (plen != size[pol->kind])
					return false;
			}
		}
		if (step >= len)
			break;
		p += step;
		len -= step;
	}
	return true;
}

/* `avail`: bytes from nlh to the end of the read. The library walks the
 * top-level attributes up to the *aligned* message end, so must we; a
 * last message without its padding would make it read past the buffer. */
static bool msg_ok_set(const struct nlmsghdr *nlh, size_t avail, const struct aset *set)
{
	size_t hdr = NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(struct nfgenmsg));
	size_t end = ((size_t)nlh->nlmsg_len + 3) & ~(size_t)3;

	if (end > avail)
		return false;
	if (end < hdr)
		return nlh->nlmsg_len >= NLMSG_HDRLEN + sizeof(struct nfgenmsg);
	return attrs_ok((const uint8_t *)nlh + hdr, end - hdr, set, 0);
}

bool nl_msg_ok(const struct nlmsghdr *nlh, size_t avail, bool exp)
{
	return msg_ok_set(nlh, avail, exp ? &a_exp : &a_ct);
}

static void parse_ct(const struct nlmsghdr *nlh, size_t avail, enum nl_event ev,
		     nl_ct_fn fn, void *arg, struct nl_parse_stats *st)
{
	struct ct ct;

	if (!nl_msg_ok(nlh, avail, false) || ct_parse_nlmsg(&ct, nlh) != 0) {
		st->failed++;
		return;
	}
	st->received++;
	if (fn)
		fn(arg, ev, nlh->nlmsg_pid, &ct);
	ct_release(&ct);
}

static void parse_exp(const struct nlmsghdr *nlh, size_t avail, enum nl_event ev,
		      nl_exp_fn fn, void *arg, struct nl_parse_stats *st)
{
	struct exp e;

	if (!nl_msg_ok(nlh, avail, true) || exp_from_nlmsg(&e, nlh) != 0) {
		st->failed++;
		return;
	}
	st->received++;
	if (fn)
		fn(arg, ev, nlh->nlmsg_pid, &e);
}

unsigned nl_parse_event(const void *buf, size_t len, nl_ct_fn ct, nl_exp_fn exp,
			void *arg, struct nl_parse_stats *st)
{
	size_t off = 0;
	unsigned n = 0;

	/*
	 * Not mnl_nlmsg_ok/mnl_nlmsg_next: they compare nlmsg_len as an int,
	 * so a length >= 2^31 passes, aligns to 0 and the walk never ends
	 * (and the parser is then told the message is 4 GB long). Found by
	 * fuzz_nl; corpus-nl/hugelen-* is the input.
	 */
	for (; len - off >= sizeof(struct nlmsghdr); n++) {
		const struct nlmsghdr *nlh =
		    (const struct nlmsghdr *)((const char *)buf + off);
		size_t mlen = nlh->nlmsg_len, step = (mlen + 3) & ~(size_t)3, avail;
		uint8_t sub = (uint8_t)(nlh->nlmsg_type >> 8);
		uint8_t t = nlh->nlmsg_type & 0xff;
		bool created = nlh->nlmsg_flags & (NLM_F_CREATE | NLM_F_EXCL);

		if (mlen < sizeof(struct nlmsghdr) || mlen > len - off) {
			st->failed++;   /* truncated or bogus length: drop the rest */
			n++;
			break;
		}
		avail = len - off;
		off += step < avail ? step : avail;
		if (nlh->nlmsg_len < NLMSG_HDRLEN + sizeof(struct nfgenmsg))
			st->unknown++;
		else if (sub == NFNL_SUBSYS_CTNETLINK && t == IPCTNL_MSG_CT_NEW)
			parse_ct(nlh, avail, created ? NL_NEW : NL_UPDATE, ct, arg, st);
		else if (sub == NFNL_SUBSYS_CTNETLINK && t == IPCTNL_MSG_CT_DELETE)
			parse_ct(nlh, avail, NL_DESTROY, ct, arg, st);
		else if (sub == NFNL_SUBSYS_CTNETLINK_EXP && t == IPCTNL_MSG_EXP_NEW)
			parse_exp(nlh, avail, created ? NL_NEW : NL_UPDATE, exp, arg, st);
		else if (sub == NFNL_SUBSYS_CTNETLINK_EXP && t == IPCTNL_MSG_EXP_DELETE)
			parse_exp(nlh, avail, NL_DESTROY, exp, arg, st);
		else
			st->unknown++;
	}
	return n;
}

/* ---- event sockets ---- */

static void event_ct(void *arg, enum nl_event ev, uint32_t portid, const struct ct *ct)
{
	struct nl *nl = arg;

	if (!nl_filter_ct(nl->d, ct))
		nl->st.events_filtered++;
	else if (nl->sink.ct_event)
		nl->sink.ct_event(nl->d, ev, origin(nl->d, portid), ct);
}

static void event_exp(void *arg, enum nl_event ev, uint32_t portid, const struct exp *e)
{
	struct nl *nl = arg;

	if (nl->sink.exp_event)
		nl->sink.exp_event(nl->d, ev, origin(nl->d, portid), e);
}

static void overrun(struct nl *nl, struct nlsock *s)
{
	const struct ctd_conf *c = nl->d->conf;

	nl->st.overruns++;
	if (s == &nl->ct) {
		if ((uint64_t)nl->st.bufsize * 2 > nl->bufmax) {
			if (!nl->warned_max)
				log_warn("netlink event socket buffer size cannot be "
					 "doubled further since it will exceed "
					 "NetlinkBufferSizeMaxGrowth. We are likely to "
					 "be losing events, this may lead to "
					 "unsynchronized replicas. Please, consider "
					 "increasing netlink socket buffer size via "
					 "NetlinkBufferSize and "
					 "NetlinkBufferSizeMaxGrowth clauses in "
					 "conntrackd.conf");
			nl->warned_max = true;
		} else {
			nl->st.bufsize = rcvbuf_set(s->fd, nl->st.bufsize * 2);
			log_notice("netlink event socket buffer size has been "
				   "doubled to %u bytes", nl->st.bufsize);
		}
	} else {
		rcvbuf_set(s->fd, rcvbuf_get(s->fd) * 2 > nl->bufmax ?
			   rcvbuf_get(s->fd) : rcvbuf_get(s->fd) * 2);
	}
	if (c->nl_overrun_resync && !ev_timer_pending(&nl->resync_t)) {
		/* A first overrun resyncs at once: waiting only delays the
		 * peer. Overruns soon after a resync mean a storm: then keep
		 * dumping from eating the daemon, at least 4x the last
		 * resync's duration. */
		uint64_t max = (uint64_t)c->nl_overrun_resync * 1000;
		uint64_t ms = nl->resync_ms * 4;

		if (ms < NL_OVERRUN_DELAY_MS)
			ms = NL_OVERRUN_DELAY_MS;
		if (nl->resync_end == 0 || ev_now_ms() - nl->resync_end > ms)
			ms = 0;
		ev_timer_add(nl->d->loop, &nl->resync_t, ms < max ? ms : max);
	}
}

/* One batch of reads (EventIterationLimit events at most); returns true
 * if the socket may hold more. */
static bool read_events(struct nl *nl, struct nlsock *s)
{
	unsigned budget = nl->d->conf->event_iteration_limit;

	if (!budget)
		budget = 100;
	while (budget > 0) {
		unsigned want = budget < NL_SLOTS ? budget : NL_SLOTS;
		int n = recvmmsg(s->fd, nl->mm, want, MSG_DONTWAIT, NULL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return false;
			budget--;
			if (errno == ENOBUFS) {
				overrun(nl, s);
				continue;
			}
			nl->st.catch_failed++;
			return false;
		}
		for (int i = 0; i < n; i++) {
			struct nl_parse_stats ps = { 0, 0, 0 };

			if (nl->mm[i].msg_hdr.msg_flags & MSG_TRUNC) {
				/* Never seen (events are far below a slot), but
				 * it would be an event lost: resync as for one. */
				nl->st.catch_failed++;
				overrun(nl, s);
				continue;
			}
			nl_parse_event(nl->iov[i].iov_base, nl->mm[i].msg_len, event_ct,
				       event_exp, nl, &ps);
			nl->st.events_received += ps.received;
			nl->st.events_unknown += ps.unknown;
			nl->st.catch_failed += ps.failed;
		}
		budget -= (unsigned)n;
		if ((unsigned)n < want)
			return false;   /* drained: select() says when more come */
	}
	return true;
}

static void readable(int fd, int events, void *arg)
{
	struct nlsock *s = arg;
	struct nl *nl = s->nl;
	uint64_t before;

	(void)events;
	/* An expectation's master was announced first, on the conntrack
	 * socket, which may be waiting out its coalescing delay: read it
	 * first, or the expectation would find no master. */
	if (s->exp && nl->ct.s)
		read_events(nl, &nl->ct);
	before = nl->st.events_received;
	if (!read_events(nl, s) && nl->st.events_received - before < NL_COALESCE_MIN &&
	    ev_fd_mod(nl->d->loop, fd, 0) == 0)
		ev_timer_add(nl->d->loop, &s->coalesce_t, NL_COALESCE_MS);
}

static void coalesce_end(struct ev_timer *t, void *arg)
{
	struct nlsock *s = arg;

	(void)t;
	if (s->s)
		ev_fd_mod(s->nl->d->loop, s->fd, EV_READ);
}

static int sock_open(struct nl *nl, struct nlsock *s, unsigned groups, bool exp)
{
	s->nl = nl;
	s->exp = exp;
	ev_timer_init(&s->coalesce_t, coalesce_end, s);
	s->s = mnl_socket_open(NETLINK_NETFILTER);
	if (!s->s || mnl_socket_bind(s->s, groups, MNL_SOCKET_AUTOPID) < 0) {
		log_err("can't open netlink handler: %s", strerror(errno));
		log_err("no ctnetlink kernel support?");
		return -1;
	}
	s->fd = mnl_socket_get_fd(s->s);
	return 0;
}

static void sock_close(struct nl *nl, struct nlsock *s)
{
	if (!s->s)
		return;
	ev_timer_del(nl->d->loop, &s->coalesce_t);
	ev_fd_del(nl->d->loop, s->fd);
	mnl_socket_close(s->s);
	s->s = NULL;
}

static void resync(struct nl *nl, bool exp)
{
	if (nl->sink.resync_begin)
		nl->sink.resync_begin(nl->d, exp);
	if (exp)
		nl_dump_exp(nl->d);
	else
		nl_dump_ct(nl->d);
	if (nl->sink.resync_done)
		nl->sink.resync_done(nl->d, exp);
}

void nl_resync_kinds(struct ctd *d, unsigned kinds)
{
	struct nl *nl = d->nl;
	uint64_t t0 = ev_now_ms();

	if (!nl)
		return;
	nl->st.resyncs++;
	if (kinds & NL_EV_CT)
		resync(nl, false);
	if ((kinds & NL_EV_EXP) && d->conf->expectation_sync)
		resync(nl, true);
	nl->resync_end = ev_now_ms();
	nl->resync_ms = nl->resync_end - t0;
}

void nl_resync_now(struct ctd *d)
{
	nl_resync_kinds(d, NL_EV_CT | NL_EV_EXP);
}

/*
 * Leave (pause) or rejoin the NEW/UPDATE event groups. While the kernel has
 * no listener for a group it does not build those events at all, which is
 * most of a ctnetlink create's cost: a commit pauses them, then resyncs
 * from a dump. DESTROY stays joined so nothing deleted meanwhile is missed.
 */
static void set_groups(int fd, const unsigned *grp, size_t n, bool join)
{
	for (size_t i = 0; i < n; i++) {
		unsigned g = grp[i];

		setsockopt(fd, SOL_NETLINK, join ? NETLINK_ADD_MEMBERSHIP :
			   NETLINK_DROP_MEMBERSHIP, &g, sizeof(g));
	}
}

unsigned nl_events_pause(struct ctd *d, unsigned kinds, bool pause)
{
	static const unsigned ct_grp[] = { NFNLGRP_CONNTRACK_NEW,
					   NFNLGRP_CONNTRACK_UPDATE };
	static const unsigned ex_grp[] = { NFNLGRP_CONNTRACK_EXP_NEW };
	struct nl *nl = d->nl;
	unsigned change;

	if (!nl || !nl->ct.s)
		return 0;
	if (!nl->ex.s)
		kinds &= ~(unsigned)NL_EV_EXP;
	/* the kinds whose state this call changes */
	change = kinds & (pause ? ~nl->paused : nl->paused);
	if (change & NL_EV_CT)
		set_groups(nl->ct.fd, ct_grp, 2, !pause);
	if (change & NL_EV_EXP)
		set_groups(nl->ex.fd, ex_grp, 1, !pause);
	nl->paused = pause ? nl->paused | change : nl->paused & ~change;
	return change;
}

/*
 * Empty the event sockets before an overrun resync dumps: the kernel
 * reports an overrun (ENOBUFS) only once until the receive queue has been
 * emptied, so events lost while a dump runs on a still-full queue would go
 * unnoticed and never be resynced. Bounded, so a storm cannot starve the
 * resync; the dump that follows covers any overrun seen while draining.
 */
static void drain_events(struct nl *nl)
{
	uint64_t end = ev_now_ms() + NL_OVERRUN_DELAY_MS;
	bool more;

	do {
		more = read_events(nl, &nl->ct);
		if (nl->ex.s && read_events(nl, &nl->ex))
			more = true;
	} while (more && ev_now_ms() < end);
}

static void resync_fire(struct ev_timer *t, void *arg)
{
	struct ctd *d = arg;
	struct nl *nl = d->nl;

	if (nl) {
		drain_events(nl);
		if (ev_timer_pending(t))        /* armed by an overrun just now */
			ev_timer_del(d->loop, t);
	}
	nl_resync_now(d);
}

static void poll_fire(struct ev_timer *t, void *arg)
{
	struct ctd *d = arg;

	nl_resync_now(d);
	ev_timer_add(d->loop, t, (uint64_t)d->conf->poll_secs * 1000);
}

static void buffer_setup(struct nl *nl)
{
	const struct ctd_conf *c = nl->d->conf;

	if (c->nl_bufsize && c->nl_bufsize <= c->nl_bufsize_max) {
		nl->st.bufsize = rcvbuf_set(nl->ct.fd, c->nl_bufsize);
		nl->bufmax = c->nl_bufsize_max;
	} else if (!c->nl_bufsize && !c->nl_bufsize_max) {
		/* Nothing configured: big from the start (doc/notes/kernel.md). */
		nl->st.bufsize = rcvbuf_set(nl->ct.fd, NL_DEFAULT_BUF);
		nl->bufmax = NL_DEFAULT_BUF_MAX;
	} else if (!c->nl_bufsize) {
		/* Only the ceiling given: growing to it in steps would lose
		 * events at every step (doc/notes/perf.md). */
		nl->st.bufsize = rcvbuf_set(nl->ct.fd, c->nl_bufsize_max);
		nl->bufmax = c->nl_bufsize_max;
	} else {
		log_notice("NetlinkBufferSize is either not set or is greater "
			   "than NetlinkBufferSizeMaxGrowth. Using current "
			   "system buffer size");
		nl->st.bufsize = rcvbuf_get(nl->ct.fd);
		nl->bufmax = c->nl_bufsize_max;
	}
	log_notice("netlink event socket buffer size has been set to %u bytes",
		   nl->st.bufsize);
	if (nl->ex.s)
		rcvbuf_set(nl->ex.fd, nl->st.bufsize);
}

int nl_open(struct ctd *d, const struct nl_sink *sink)
{
	const struct ctd_conf *c = d->conf;
	struct nl *nl = calloc(1, sizeof(*nl));
	int one = 1;

	if (!nl || !(nl->rbuf = malloc((size_t)NL_SLOTS * NL_SLOTSZ))) {
		free(nl);
		return -1;
	}
	for (int i = 0; i < NL_SLOTS; i++) {
		nl->iov[i].iov_base = nl->rbuf + (size_t)i * NL_SLOTSZ;
		nl->iov[i].iov_len = NL_SLOTSZ;
		nl->mm[i].msg_hdr.msg_iov = &nl->iov[i];
		nl->mm[i].msg_hdr.msg_iovlen = 1;
	}
	nl->d = d;
	nl->sink = *sink;
	d->nl = nl;
	ev_timer_init(&nl->resync_t, resync_fire, d);
	ev_timer_init(&nl->poll_t, poll_fire, d);

	if (c->poll_secs) {
		log_notice("running in polling mode");
		ev_timer_add(d->loop, &nl->poll_t, (uint64_t)c->poll_secs * 1000);
		return 0;
	}
	if (sock_open(nl, &nl->ct, NF_NETLINK_CONNTRACK_NEW |
		      NF_NETLINK_CONNTRACK_UPDATE | NF_NETLINK_CONNTRACK_DESTROY,
		      false) < 0)
		goto fail;
	if (c->expectation_sync &&
	    sock_open(nl, &nl->ex, NF_NETLINK_CONNTRACK_EXP_NEW |
		      NF_NETLINK_CONNTRACK_EXP_DESTROY, true) < 0)
		goto fail;
	if (c->nl_events_reliable) {
		struct nlsock *v[2] = { &nl->ct, &nl->ex };

		for (int i = 0; i < 2; i++) {
			if (!v[i]->s)
				continue;
			setsockopt(v[i]->fd, SOL_NETLINK, NETLINK_BROADCAST_ERROR,
				   &one, sizeof(one));
			setsockopt(v[i]->fd, SOL_NETLINK, NETLINK_NO_ENOBUFS,
				   &one, sizeof(one));
		}
		log_notice("reliable ctnetlink event delivery is ENABLED.");
	}
	if (c->filter.present) {
		if (c->filter.kernelspace) {
			if (nl_filter_attach(d, nl->ct.fd) < 0)
				log_err("cannot set event filtering: %s",
					strerror(errno));
			log_notice("using kernel-space event filtering");
		} else {
			log_notice("using user-space event filtering");
		}
	}
	buffer_setup(nl);
	if (ev_fd_add(d->loop, nl->ct.fd, EV_READ, readable, &nl->ct) < 0 ||
	    (nl->ex.s && ev_fd_add(d->loop, nl->ex.fd, EV_READ, readable, &nl->ex) < 0))
		goto fail;
	return 0;
fail:
	nl_close(d);
	return -1;
}

void nl_close(struct ctd *d)
{
	struct nl *nl = d->nl;

	if (!nl)
		return;
	sock_close(nl, &nl->ct);
	sock_close(nl, &nl->ex);
	if (d->loop) {
		ev_timer_del(d->loop, &nl->resync_t);
		ev_timer_del(d->loop, &nl->poll_t);
	}
	free(nl->rbuf);
	free(nl);
	d->nl = NULL;
}

void nl_schedule_resync(struct ctd *d, unsigned secs)
{
	struct nl *nl = d->nl;

	if (!nl)
		return;
	ev_timer_del(d->loop, &nl->resync_t);
	ev_timer_add(d->loop, &nl->resync_t, (uint64_t)secs * 1000);
}

/* Synchronous request on a fresh socket: dumps and single gets. */
struct req {
	struct nl *nl;
	struct ctd *d;
	bool exp;
	struct ct *out;         /* nl_get_ct */
	int found;
};

static int dump_cb(const struct nlmsghdr *nlh, void *data)
{
	struct req *r = data;
	struct nl_stats *st = r->nl ? &r->nl->st : NULL;

	if (r->exp) {
		struct exp e;

		if (exp_from_nlmsg(&e, nlh) == 0) {
			if (r->nl && r->nl->sink.exp_dump)
				r->nl->sink.exp_dump(r->d, &e);
		} else if (st) {
			st->dump_unknown++;
		}
	} else {
		struct ct ct;

		memset(&ct, 0, sizeof(ct));
		if (ct_from_nlmsg(&ct, nlh) == 0) {
			if (r->out) {
				*r->out = ct;
				ct.ext = NULL;  /* handed over */
				r->found = 1;
			} else if (nl_filter_ct(r->d, &ct) && r->nl &&
				   r->nl->sink.ct_dump) {
				r->nl->sink.ct_dump(r->d, &ct);
			}
		} else if (st) {
			st->dump_unknown++;
		}
		ct_release(&ct);
	}
	return MNL_CB_OK;
}

static int request(struct req *r, struct nlmsghdr *req)
{
	struct mnl_socket *s = mnl_socket_open(NETLINK_NETFILTER);
	char *buf = malloc(NL_RBUFSZ);
	uint32_t pid;
	int ret = -1;

	if (!s || !buf || mnl_socket_bind(s, 0, MNL_SOCKET_AUTOPID) < 0)
		goto out;
	pid = mnl_socket_get_portid(s);
	if (mnl_socket_sendto(s, req, req->nlmsg_len) < 0)
		goto out;
	for (;;) {
		ssize_t len = mnl_socket_recvfrom(s, buf, NL_RBUFSZ);
		int cr;

		if (len < 0 && errno == EINTR)
			continue;
		if (len < 0)
			goto out;
		cr = mnl_cb_run(buf, (size_t)len, req->nlmsg_seq, pid, dump_cb, r);
		if (cr < 0) {
			/* An interrupted dump (table changed meanwhile) is
			 * still a dump: keep what was delivered. */
			if (errno == EINTR)
				ret = 0;
			goto out;
		}
		if (cr == MNL_CB_STOP)
			break;
	}
	ret = 0;
out:
	{
		int e = errno;

		if (s)
			mnl_socket_close(s);
		free(buf);
		errno = e;
	}
	return ret;
}

static struct nlmsghdr *req_hdr(char *buf, uint16_t type, uint16_t flags, uint8_t family)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct nfgenmsg *nfh;

	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = NLM_F_REQUEST | flags;
	nlh->nlmsg_seq = (uint32_t)time(NULL);
	nfh = mnl_nlmsg_put_extra_header(nlh, sizeof(*nfh));
	nfh->nfgen_family = family;
	nfh->version = NFNETLINK_V0;
	nfh->res_id = 0;
	return nlh;
}

static int dump(struct ctd *d, bool exp)
{
	char buf[NL_REQ_BUFSZ];
	struct req r = { .nl = d->nl, .d = d, .exp = exp };
	struct nlmsghdr *nlh;

	memset(buf, 0, sizeof(buf));
	nlh = req_hdr(buf, exp ? (NFNL_SUBSYS_CTNETLINK_EXP << 8) | IPCTNL_MSG_EXP_GET :
			 (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_GET,
		      NLM_F_DUMP, AF_UNSPEC);
	if (request(&r, nlh) < 0) {
		log_err(exp ? "can't get kernel expect table" :
			"can't get kernel conntrack table");
		return -1;
	}
	return 0;
}

int nl_dump_ct(struct ctd *d)
{
	return dump(d, false);
}

int nl_dump_exp(struct ctd *d)
{
	return dump(d, true);
}

int nl_get_ct(struct ctd *d, const struct ct *key, struct ct *out)
{
	char buf[NL_REQ_BUFSZ];
	struct req r = { .nl = NULL, .d = d, .out = out };
	struct nf_conntrack *n;
	struct nlmsghdr *nlh;
	struct ct k = *key;

	k.have &= CT_H_ORIG | CT_H_PORTS | CT_H_ICMP | CT_H_ZONE;
	k.ext = NULL;
	memset(buf, 0, sizeof(buf));    /* the builder leaves padding unwritten */
	if (!(n = ct_to_nfct_mode(&k, CT_NFCT_PRINT, true)))
		return -1;
	nlh = req_hdr(buf, (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_GET,
		      NLM_F_ACK, key->orig.l3);
	nfct_nlmsg_build(nlh, n);
	nfct_destroy(n);
	if (request(&r, nlh) < 0)
		return errno == ENOENT ? 0 : -1;
	return r.found;
}

const struct nl_stats *nl_stats(const struct ctd *d)
{
	return d->nl ? &d->nl->st : &zero_stats;
}

void nl_note_flush(struct ctd *d)
{
	if (d->nl)
		d->nl->st.flushes++;
}

void nl_note_resync(struct ctd *d)
{
	if (d->nl)
		d->nl->st.resyncs++;
}
