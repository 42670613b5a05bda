/*
 * Channel set: opens the configured dedicated links, batches outgoing
 * messages into datagrams below the MTU, counts traffic, switches the
 * current link on failover, and prints the -s / -s link blocks.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "channel.h"
#include "ctd.h"
#include "ev.h"
#include "log.h"

#define CHAN_MTU_DEFAULT 1500
#define CHAN_MAX_MSG     65535   /* the header's length field is 16 bits */
#define AUTH_LOG_PEERS   16      /* peers with their own log rate limit */
#define AUTH_LOG_BURST   8       /* refusal lines per second, all peers */

struct auth_log_peer {                  /* "at most once a second per peer and reason" */
	struct sockaddr_storage addr;
	socklen_t len;
	enum auth_result why;
	time_t    last;
	uint64_t  quiet;                /* refusals not logged since */
};

struct chanset {
	struct ctd   *d;
	chan_recv_cb  cb;
	struct channel ch[CONF_MAX_CHANNELS];
	unsigned      n, cur;
	bool          no_link_logged;   /* say it once per outage */
	struct link_watch *link;
	/* One send buffer: it always belongs to the current channel. */
	uint8_t       sbuf[CHAN_MAX_MSG + 1];
	size_t        slen;
	uint8_t       rx[CHAN_RBUF_SIZE];       /* datagram receive buffer */
	/* Authenticated sync (doc/auth.md); off = wire identical to 1.4.x. */
	bool          auth_on;
	struct auth_ctx auth;
	struct chan_auth_stats ast;
	struct auth_log_peer logpeer[AUTH_LOG_PEERS];
	time_t        log_sec;
	unsigned      log_lines;
	/* Record header + largest message + trailer. */
	uint8_t       abuf[AUTH_REC_HDR_LEN + CHAN_MAX_MSG + 1 + AUTH_TRAILER_LEN];
};

static const char *kind_block(enum chan_kind k)
{
	switch (k) {
	case CHAN_MCAST: return "Multicast";
	case CHAN_UDP:   return "UDP";
	case CHAN_TCP:   return "TCP";
	default:         return "channel";
	}
}

static const char *kind_stats(enum chan_kind k)
{
	switch (k) {
	case CHAN_MCAST: return "multicast";
	case CHAN_UDP:   return "UDP";
	case CHAN_TCP:   return "TCP";
	default:         return "unknown";
	}
}

struct ctd *chan_ctd(const struct channel *c)
{
	return c->cs->d;
}

uint8_t *chan_rxbuf(struct channel *c, size_t *cap)
{
	*cap = sizeof(c->cs->rx);
	return c->cs->rx;
}

/* Record why opening failed; `err` is an errno value. Always returns -1. */
int chan_err(struct channel *c, const char *what, int err)
{
	if (what)
		snprintf(c->err, sizeof(c->err), "%s: %s", what, strerror(err));
	else
		snprintf(c->err, sizeof(c->err), "%s", strerror(err));
	return -1;
}

socklen_t chan_sockaddr(struct sockaddr_storage *ss, int family,
			const union addr *a, uint16_t port, unsigned scope)
{
	memset(ss, 0, sizeof(*ss));
	if (family == AF_INET6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
		if (a)
			memcpy(&s6->sin6_addr, a->b, 16);
		s6->sin6_scope_id = scope;
		return sizeof(*s6);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)ss;

		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		if (a)
			s4->sin_addr.s_addr = a->v4;
		return sizeof(*s4);
	}
}

/* Forced sizes need CAP_NET_ADMIN; without it the plain option still helps. */
void chan_set_bufs(struct channel *c, int fd, bool snd)
{
	int v = (int)(snd ? c->cc->sndbuf : c->cc->rcvbuf);

	if (v <= 0)
		return;
	if (setsockopt(fd, SOL_SOCKET, snd ? SO_SNDBUFFORCE : SO_RCVBUFFORCE,
		       &v, sizeof(v)) == 0)
		return;
	if (setsockopt(fd, SOL_SOCKET, snd ? SO_SNDBUF : SO_RCVBUF, &v, sizeof(v)) < 0)
		log_warn("cannot set %s socket buffer to %d bytes: %s",
			 snd ? "send" : "receive", v, strerror(errno));
}

size_t chan_deliver(const struct channel *c, const uint8_t *data, size_t len,
		    const void *from, size_t fromlen)
{
	if (!c->cs->cb)
		return len;
	return c->cs->cb(c->cs->d, c->idx, data, len, from, fromlen);
}

/*
 * Datagram channels: each datagram is handed over whole. At a paced rate
 * the peer sends a few datagrams at a time (its own reads are coalesced
 * 1 ms apart), and every wake-up (select, a context switch, cold caches and
 * TLB after the other tasks ran) costs more than decoding them. A read that
 * finds fewer than CHAN_COALESCE_MIN datagrams leaves the socket out of
 * select() for c->coalesce_ms, so the next wake-up takes a whole run of
 * them: 0.0062 -> 0.0026 wake-ups per entry at 50k entries/s with 8 ms.
 * FT-FW's timers (ACK window, NACK, HELLO, resend stall) are seconds or
 * message counts, not milliseconds; a full read (a burst) never waits. The
 * delay is bounded by what the receive buffer absorbs at
 * CHAN_COALESCE_BYTES_MS (about 1 Gbit/s of datagrams at their kernel
 * size): none with the kernel's default buffer, 8 ms from 2 MB.
 */
#define CHAN_COALESCE_MIN      32
#define CHAN_COALESCE_MAX_MS   8
#define CHAN_COALESCE_BYTES_MS (256u << 10)

static void coalesce_setup(struct channel *c)
{
	int v = 0;
	socklen_t len = sizeof(v);
	unsigned ms = 0;

	if (c->rfd >= 0 && getsockopt(c->rfd, SOL_SOCKET, SO_RCVBUF, &v, &len) == 0 && v > 0)
		ms = (unsigned)v / CHAN_COALESCE_BYTES_MS;
	c->coalesce_ms = ms < CHAN_COALESCE_MAX_MS ? ms : CHAN_COALESCE_MAX_MS;
}

static void coalesce_end(struct ev_timer *t, void *arg)
{
	struct channel *c = arg;

	(void)t;
	if (c->rfd >= 0)
		ev_fd_mod(c->cs->d->loop, c->rfd, EV_READ);
}

void chan_dgram_readable(int fd, int events, void *arg)
{
	struct channel *c = arg;
	struct chanset *cs = c->cs;
	unsigned limit = cs->d->conf->event_iteration_limit;
	unsigned i;

	(void)events;
	if (limit == 0)
		limit = 100;
	for (i = 0; i < limit; i++) {
		struct sockaddr_storage from;
		socklen_t fromlen = sizeof(from);
		ssize_t n = recvfrom(fd, cs->rx, sizeof(cs->rx), MSG_DONTWAIT,
				     (struct sockaddr *)&from, &fromlen);

		if (n < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
				c->st.err_recv++;
			break;
		}
		c->st.bytes_recv += (uint64_t)n;
		c->st.msgs_recv++;
		size_t len = (size_t)n;
		if (cs->auth_on && !chan_auth_datagram(c, cs->rx, &len, &from, fromlen))
			continue;
		if (cs->cb)
			cs->cb(cs->d, c->idx, cs->rx, len, &from, fromlen);
		if (cs->d->stopping)
			return;
	}
	if (i < CHAN_COALESCE_MIN && i < limit && i > 0 && c->coalesce_ms && fd == c->rfd &&
	    ev_fd_mod(cs->d->loop, fd, 0) == 0)
		ev_timer_add(cs->d->loop, &c->coalesce, c->coalesce_ms);
}

/* ---- stream reassembly ---- */

int chan_rbuf_init(struct chan_rbuf *r)
{
	memset(r, 0, sizeof(*r));
	r->buf = malloc(CHAN_RBUF_SIZE);
	return r->buf ? 0 : -1;
}

void chan_rbuf_free(struct chan_rbuf *r)
{
	free(r->buf);
	r->buf = NULL;
	r->len = 0;
}

void chan_rbuf_reset(struct chan_rbuf *r)
{
	r->len = 0;
}

void chan_rbuf_deliver(struct chan_rbuf *r, size_t added, chan_recv_cb cb,
		       struct ctd *d, unsigned idx, const void *from, size_t fromlen)
{
	size_t off = 0;

	if (added > CHAN_RBUF_SIZE - r->len)
		added = CHAN_RBUF_SIZE - r->len;
	r->len += added;
	while (off < r->len) {
		size_t used = cb(d, idx, r->buf + off, r->len - off, from, fromlen);

		if (used == 0)
			break;
		if (used > r->len - off)
			used = r->len - off;
		off += used;
	}
	if (off > 0) {
		memmove(r->buf, r->buf + off, r->len - off);
		r->len -= off;
	}
	/* A full buffer nobody consumes can never complete: start over. */
	if (r->len == CHAN_RBUF_SIZE) {
		r->len = 0;
		r->resets++;
	}
}

void chan_rbuf_push(struct chan_rbuf *r, const uint8_t *data, size_t len,
		    chan_recv_cb cb, struct ctd *d, unsigned idx,
		    const void *from, size_t fromlen)
{
	while (len > 0) {
		size_t n = CHAN_RBUF_SIZE - r->len;

		if (n > len)
			n = len;
		memcpy(r->buf + r->len, data, n);
		chan_rbuf_deliver(r, n, cb, d, idx, from, fromlen);
		data += n;
		len -= n;
	}
}

/* ---- opening ---- */

static int if_query(int fd, const char *ifname, unsigned long req, struct ifreq *ifr)
{
	memset(ifr, 0, sizeof(*ifr));
	snprintf(ifr->ifr_name, sizeof(ifr->ifr_name), "%s", ifname);
	return ioctl(fd, req, ifr);
}

/* Interface lookups go through our own socket so they happen in its netns. */
static int chan_resolve_if(struct channel *c)
{
	struct ifreq ifr;
	int fd, saved;

	c->mtu = CHAN_MTU_DEFAULT;
	if (c->cc->ifname[0] == '\0') {
		snprintf(c->err, sizeof(c->err), "no `Interface' given");
		return -1;
	}
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return chan_err(c, NULL, errno);
	if (if_query(fd, c->cc->ifname, SIOCGIFINDEX, &ifr) < 0) {
		saved = errno;
		close(fd);
		if (saved == ENODEV)
			snprintf(c->err, sizeof(c->err), "interface '%s' not found",
				 c->cc->ifname);
		else
			chan_err(c, c->cc->ifname, saved);
		return -1;
	}
	c->ifindex = (unsigned)ifr.ifr_ifindex;
	if (if_query(fd, c->cc->ifname, SIOCGIFMTU, &ifr) == 0 && ifr.ifr_mtu > 68)
		c->mtu = (size_t)ifr.ifr_mtu;
	close(fd);
	return 0;
}

static void chan_close_one(struct chanset *cs, struct channel *c)
{
	struct ev_loop *l = cs->d->loop;

	if (c->cc && c->cc->kind == CHAN_TCP)
		chan_tcp_close(c);
	if (c->sfd >= 0) {
		ev_fd_del(l, c->sfd);
		close(c->sfd);
	}
	ev_timer_del(l, &c->coalesce);
	if (c->rfd >= 0) {
		ev_fd_del(l, c->rfd);
		close(c->rfd);
	}
	c->sfd = c->rfd = -1;
}

struct chanset *chanset_open(struct ctd *d, chan_recv_cb cb)
{
	struct ctd_conf *conf = d->conf;
	struct chanset *cs;
	unsigned i;

	if (conf->nchannels == 0) {
		log_err("can't open channel socket: no dedicated link (Multicast, UDP "
			"or TCP block) in the Sync section");
		return NULL;
	}
	cs = calloc(1, sizeof(*cs));
	if (!cs) {
		log_err("can't open channel socket: %s", strerror(errno));
		return NULL;
	}
	cs->d = d;
	cs->cb = cb;
	if (conf->auth_key_file[0]) {
		char why[CONF_PATH_MAX + 128];
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		auth_init(&cs->auth, (uint64_t)ts.tv_sec * 1000000 +
			  (uint64_t)ts.tv_nsec / 1000);
		if (auth_load_file(&cs->auth, conf->auth_key_file, why,
				   sizeof(why)) < 0) {
			log_err("can't open channel socket: %s", why);
			free(cs);
			return NULL;
		}
		cs->auth_on = true;
	}
	for (i = 0; i < CONF_MAX_CHANNELS; i++) {
		cs->ch[i].sfd = cs->ch[i].rfd = cs->ch[i].afd = -1;
		ev_timer_init(&cs->ch[i].coalesce, coalesce_end, &cs->ch[i]);
	}
	for (i = 0; i < conf->nchannels && i < CONF_MAX_CHANNELS; i++) {
		struct channel *c = &cs->ch[i];
		int rc;

		c->cs = cs;
		c->idx = i;
		c->cc = &conf->channels[i];
		cs->n = i + 1;
		rc = chan_resolve_if(c);
		if (rc == 0) {
			switch (c->cc->kind) {
			case CHAN_MCAST: rc = chan_mcast_open(c); break;
			case CHAN_UDP:   rc = chan_udp_open(c); break;
			case CHAN_TCP:   rc = chan_tcp_open(c); break;
			default:
				snprintf(c->err, sizeof(c->err), "unknown channel kind");
				rc = -1;
			}
		}
		if (rc < 0) {
			log_err("can't open channel socket: %s (%s block at %s:%d)",
				c->err, kind_block(c->cc->kind), conf->file, c->cc->line);
			chanset_close(cs);
			return NULL;
		}
		c->bufsize = c->mtu - (c->cc->kind == CHAN_TCP ? 40 : 28);
		if (c->cc->kind != CHAN_TCP)
			coalesce_setup(c);
		/* The trailer (and TCP record header) must fit the same MTU. */
		if (cs->auth_on)
			c->bufsize -= AUTH_TRAILER_LEN +
				      (c->cc->kind == CHAN_TCP ? AUTH_REC_HDR_LEN : 0);
	}
	if (cs->auth_on)
		log_notice("sync authentication on: %u key(s) from %s, signing with key id %u",
			   cs->auth.nkeys, conf->auth_key_file,
			   cs->auth.keys[cs->auth.tx].id);
	cs->cur = conf->default_channel < cs->n ? conf->default_channel : 0;
	cs->link = link_watch_open(cs, d->loop);
	if (!cs->link)
		log_warn("can't open interface watcher: %s; link failover disabled",
			 strerror(errno));
	/* A link already down at start-up sends no event: look now. */
	chanset_link_event(cs, cs->ch[cs->cur].ifindex, 0);
	return cs;
}

void chanset_close(struct chanset *cs)
{
	unsigned i;

	if (!cs)
		return;
	link_watch_close(cs->link);
	for (i = 0; i < cs->n; i++)
		chan_close_one(cs, &cs->ch[i]);
	OPENSSL_cleanse(&cs->auth, sizeof(cs->auth));
	free(cs);
}

/* ---- sending ---- */

static void chan_send_now(struct channel *c, const uint8_t *buf, size_t len)
{
	ssize_t n;

	if (len == 0)
		return;
	if (c->cs->auth_on) {
		uint8_t *a = c->cs->abuf;
		int r;

		if (c->cc->kind == CHAN_TCP) {
			memcpy(a + AUTH_REC_HDR_LEN, buf, len);
			r = auth_seal_record(&c->cs->auth, a, len, sizeof(c->cs->abuf));
		} else {
			memcpy(a, buf, len);
			r = auth_sign(&c->cs->auth, a, len, sizeof(c->cs->abuf));
		}
		if (r < 0) {            /* only a message beyond the record limit */
			c->st.err_sent++;
			return;
		}
		buf = a;
		len = (size_t)r;
	}
	if (c->cc->kind == CHAN_TCP) {
		chan_tcp_send(c, buf, len);
		return;
	}
	n = sendto(c->sfd, buf, len, 0, (struct sockaddr *)&c->dst, c->dstlen);
	if (n < 0) {
		c->st.err_sent++;
		return;
	}
	c->st.bytes_sent += (uint64_t)n;
	c->st.msgs_sent++;
}

int chanset_send(struct chanset *cs, const void *msg, size_t len)
{
	struct channel *c = &cs->ch[cs->cur];

	if (len == 0 || len > CHAN_MAX_MSG) {
		errno = EMSGSIZE;
		return -1;
	}
	if (cs->slen > 0 && cs->slen + len >= c->bufsize) {
		chan_send_now(c, cs->sbuf, cs->slen);
		cs->slen = 0;
	}
	memcpy(cs->sbuf + cs->slen, msg, len);
	cs->slen += len;
	/* An oversized message goes alone, never split across datagrams. */
	if (cs->slen >= c->bufsize) {
		chan_send_now(c, cs->sbuf, cs->slen);
		cs->slen = 0;
	}
	return 0;
}

void chanset_flush(struct chanset *cs)
{
	chan_send_now(&cs->ch[cs->cur], cs->sbuf, cs->slen);
	cs->slen = 0;
}

size_t chanset_mtu_payload(const struct chanset *cs)
{
	return cs->ch[cs->cur].bufsize - 1;
}

/* ---- current channel and failover ---- */

void chanset_set_current(struct chanset *cs, unsigned idx)
{
	if (idx >= cs->n || idx == cs->cur)
		return;
	/* What was batched for the old link leaves on the new one. */
	cs->cur = idx;
	if (cs->slen >= cs->ch[idx].bufsize)
		chanset_flush(cs);
}

unsigned chanset_current(const struct chanset *cs)
{
	return cs->cur;
}

unsigned chanset_count(const struct chanset *cs)
{
	return cs->n;
}

unsigned chanset_if_flags(const struct chanset *cs, unsigned idx)
{
	const struct channel *c;
	struct ifreq ifr;
	int fd;

	if (idx >= cs->n)
		return 0;
	c = &cs->ch[idx];
	fd = c->sfd >= 0 ? c->sfd : c->rfd;
	if (fd < 0 || if_query(fd, c->cc->ifname, SIOCGIFFLAGS, &ifr) < 0)
		return 0;
	return (unsigned)(unsigned short)ifr.ifr_flags;
}

static bool flags_usable(unsigned f)
{
	return (f & IFF_UP) && (f & IFF_RUNNING);
}

/* A datagram read from a link that has gone down since it arrived (it sat
 * in the socket's queue, e.g. during a coalescing delay) must not take the
 * sync back to that link. */
void chanset_follow_peer(struct chanset *cs, unsigned idx)
{
	if (idx >= cs->n || idx == cs->cur)
		return;
	if (cs->ch[idx].cc->ifname[0] && !flags_usable(chanset_if_flags(cs, idx)))
		return;
	chanset_set_current(cs, idx);
}

/*
 * The current link lost UP+RUNNING: move to the first other link, in
 * configuration order, whose interface is up and running. Unlike 1.4.x we
 * do not pick a link that is up without carrier (nothing gets through it),
 * and while no link is usable any of ours coming back is taken at once.
 */
void chanset_link_event(struct chanset *cs, unsigned ifindex, unsigned flags)
{
	struct channel *cur = &cs->ch[cs->cur];
	bool ours = false;
	unsigned i;

	(void)flags;    /* the message may be stale: the interface's state now counts */
	for (i = 0; i < cs->n; i++)
		ours |= cs->ch[i].ifindex == ifindex;
	if (!ours)
		return;
	if (flags_usable(chanset_if_flags(cs, cs->cur))) {
		cs->no_link_logged = false;
		return;
	}
	for (i = 0; i < cs->n; i++) {
		struct channel *c = &cs->ch[i];

		if (i == cs->cur || c->ifindex == cur->ifindex)
			continue;
		if (flags_usable(chanset_if_flags(cs, i))) {
			log_notice("device `%s' becomes dedicated link", c->cc->ifname);
			cs->no_link_logged = false;
			chanset_set_current(cs, i);
			return;
		}
	}
	if (!cs->no_link_logged)
		log_err("no dedicated links available!");
	cs->no_link_logged = true;
}

/* ---- statistics ---- */

static int print_counters(const struct chan_stats *s, char *buf, size_t len)
{
	return snprintf(buf, len,
			"%20llu Bytes sent %20llu Bytes recv\n"
			"%20llu Pckts sent %20llu Pckts recv\n"
			"%20llu Error send %20llu Error recv\n\n",
			(unsigned long long)s->bytes_sent, (unsigned long long)s->bytes_recv,
			(unsigned long long)s->msgs_sent, (unsigned long long)s->msgs_recv,
			(unsigned long long)s->err_sent, (unsigned long long)s->err_recv);
}

/* snprintf-style accumulation: returns the length the full text needs. */
static size_t advance(char **p, size_t *left, int n)
{
	size_t k;

	if (n < 0)
		return 0;
	k = (size_t)n;
	if (k >= *left) {
		*p += *left;
		*left = 0;
	} else {
		*p += k;
		*left -= k;
	}
	return k;
}

int chanset_print_current(const struct chanset *cs, char *buf, size_t len)
{
	const struct channel *c = &cs->ch[cs->cur];
	char *p = buf;
	size_t left = len, total = 0;
	int n;

	if (c->cc->kind == CHAN_TCP)
		n = snprintf(p, left, "TCP traffic (active device=%s) server=%s client=%s:\n",
			     c->cc->ifname,
			     chan_tcp_server_connected(c) ? "connected" : "disconnected",
			     c->connected ? "connected" : "disconnected");
	else
		n = snprintf(p, left, "%s traffic (active device=%s):\n",
			     kind_stats(c->cc->kind), c->cc->ifname);
	total += advance(&p, &left, n);
	total += advance(&p, &left, print_counters(&c->st, p, left));
	return (int)total;
}

int chanset_print_links(const struct chanset *cs, char *buf, size_t len)
{
	char *p = buf;
	size_t left = len, total = 0;
	unsigned i;

	for (i = 0; i < cs->n; i++) {
		const struct channel *c = &cs->ch[i];
		unsigned f = chanset_if_flags(cs, i);
		const char *status = (f & IFF_RUNNING) ? "RUNNING" :
				     (f & IFF_UP) ? "NO-CARRIER" : "DOWN";
		int n = snprintf(p, left, "%s traffic device=%s status=%s role=%s:\n",
				 kind_stats(c->cc->kind), c->cc->ifname, status,
				 i == cs->cur ? "ACTIVE" : "BACKUP");

		total += advance(&p, &left, n);
		total += advance(&p, &left, print_counters(&c->st, p, left));
	}
	return (int)total;
}

const struct chan_stats *chanset_stats(const struct chanset *cs, unsigned idx)
{
	return idx < cs->n ? &cs->ch[idx].st : NULL;
}

const char *chanset_peer_str(const void *from, size_t fromlen, char *buf, size_t len)
{
	const struct sockaddr *sa = from;
	char a[INET6_ADDRSTRLEN];

	if (!buf || len == 0)
		return "";
	if (sa && sa->sa_family == AF_INET && fromlen >= sizeof(struct sockaddr_in)) {
		const struct sockaddr_in *s4 = from;

		inet_ntop(AF_INET, &s4->sin_addr, a, sizeof(a));
		snprintf(buf, len, "%s:%u", a, ntohs(s4->sin_port));
	} else if (sa && sa->sa_family == AF_INET6 &&
		   fromlen >= sizeof(struct sockaddr_in6)) {
		const struct sockaddr_in6 *s6 = from;

		inet_ntop(AF_INET6, &s6->sin6_addr, a, sizeof(a));
		snprintf(buf, len, "[%s]:%u", a, ntohs(s6->sin6_port));
	} else {
		snprintf(buf, len, "unknown peer");
	}
	return buf;
}

void chanset_errq_stats(const struct chanset *cs, uint64_t *cur, uint64_t *max,
			uint64_t *nospace)
{
	unsigned i;

	*cur = *nospace = 0;
	*max = cs->d->conf->error_queue_length ? cs->d->conf->error_queue_length : 128;
	for (i = 0; i < cs->n; i++) {
		*cur += cs->ch[i].errq.cur;
		*nospace += cs->ch[i].errq.nospace;
	}
}

/* ---- authentication ---- */

bool chan_auth_on(const struct channel *c)
{
	return c->cs->auth_on;
}

bool chanset_auth_on(const struct chanset *cs)
{
	return cs->auth_on;
}

const struct chan_auth_stats *chanset_auth_stats(const struct chanset *cs)
{
	return &cs->ast;
}

static void auth_count(struct chanset *cs, enum auth_result r)
{
	struct chan_auth_stats *a = &cs->ast;

	switch (r) {
	case AUTH_OK:          a->accepted++; break;
	case AUTH_NO_TRAILER:  a->no_trailer++; break;
	case AUTH_UNKNOWN_KEY: a->unknown_key++; break;
	case AUTH_BAD_MAC:     a->bad_mac++; break;
	case AUTH_REPLAY:      a->replay++; break;
	case AUTH_TOO_OLD:     a->too_old++; break;
	case AUTH_BAD_RECORD:  a->bad_record++; break;
	case AUTH_ERROR:       a->error++; break;
	}
}

/* The rate limit is per host: a sender changing source ports is one peer. */
static socklen_t host_key(struct sockaddr_storage *k, const void *from, socklen_t len)
{
	memset(k, 0, sizeof(*k));
	if (len > sizeof(*k))
		len = sizeof(*k);
	memcpy(k, from, len);
	if (k->ss_family == AF_INET && len >= sizeof(struct sockaddr_in))
		((struct sockaddr_in *)k)->sin_port = 0;
	else if (k->ss_family == AF_INET6 && len >= sizeof(struct sockaddr_in6))
		((struct sockaddr_in6 *)k)->sin6_port = 0;
	return len;
}

/*
 * Log a refusal at most once a second per peer address and reason, and at most
 * AUTH_LOG_BURST lines a second overall (a flood from spoofed addresses
 * must not flood the log). Lines not written are summed in the next one.
 */
static void auth_log(struct channel *c, enum auth_result r, const void *from,
		     socklen_t fromlen)
{
	struct chanset *cs = c->cs;
	struct auth_log_peer *p = NULL, *oldest = &cs->logpeer[0];
	struct sockaddr_storage key;
	socklen_t klen = host_key(&key, from, fromlen);
	struct timespec ts;
	char peer[INET6_ADDRSTRLEN + 16];
	unsigned i;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	for (i = 0; i < AUTH_LOG_PEERS; i++) {
		struct auth_log_peer *q = &cs->logpeer[i];

		if (q->len && q->why == r && q->len == klen &&
		    memcmp(&q->addr, &key, klen) == 0) {
			p = q;
			break;
		}
		if (q->last < oldest->last || (oldest->len && !q->len))
			oldest = q;
	}
	if (!p) {
		p = oldest;
		memset(p, 0, sizeof(*p));
		p->addr = key;
		p->len = klen;
		p->why = r;
	} else if (ts.tv_sec == p->last) {
		p->quiet++;
		return;
	}
	if (ts.tv_sec != cs->log_sec) {
		cs->log_sec = ts.tv_sec;
		cs->log_lines = 0;
	}
	if (cs->log_lines >= AUTH_LOG_BURST) {
		p->quiet++;
		return;
	}
	cs->log_lines++;
	p->last = ts.tv_sec;
	chanset_peer_str(from, fromlen, peer, sizeof(peer));
	if (p->quiet)
		log_warn("sync authentication: refused data from %s on %s: %s "
			 "(and %llu more refusals not logged)", peer,
			 c->cc->ifname, auth_strerror(r),
			 (unsigned long long)p->quiet);
	else
		log_warn("sync authentication: refused data from %s on %s: %s",
			 peer, c->cc->ifname, auth_strerror(r));
	p->quiet = 0;
}

bool chan_auth_datagram(struct channel *c, const uint8_t *data, size_t *len,
			const void *from, socklen_t fromlen)
{
	enum auth_result r;
	size_t plen = 0;

	r = auth_verify(&c->cs->auth, &c->replay, data, *len, &plen);
	auth_count(c->cs, r);
	if (r != AUTH_OK) {
		auth_log(c, r, from, fromlen);
		return false;
	}
	*len = plen;
	return true;
}

/*
 * One authentic record at a time goes to the sync callback, whose messages
 * never span records. A refused record ends the connection: after it the
 * stream has no trustworthy boundary. auth_drop tells the TCP code to reset
 * once the reassembly buffer is done with us.
 */
size_t chan_auth_stream(struct channel *c, const uint8_t *data, size_t len)
{
	const uint8_t *msgs;
	size_t mlen, off = 0;
	enum auth_result r = AUTH_OK;
	int n;

	if (c->auth_drop)
		return len;
	n = auth_open_record(&c->cs->auth, &c->replay, data, len, &msgs, &mlen, &r);
	if (n == 0)
		return 0;
	if (n < 0) {
		auth_count(c->cs, r);
		auth_log(c, r, &c->peer, c->peerlen);
		c->auth_drop = true;
		return len;
	}
	auth_count(c->cs, AUTH_OK);
	while (off < mlen) {
		size_t used = chan_deliver(c, msgs + off, mlen - off, &c->peer,
					   c->peerlen);

		if (used == 0 || used > mlen - off)
			break;  /* a partial message in a record: signed garbage */
		off += used;
	}
	return (size_t)n;
}

int chanset_print_auth(const struct chanset *cs, char *buf, size_t len)
{
	const struct chan_auth_stats *a = &cs->ast;

	if (!cs->auth_on) {
		if (len)
			buf[0] = '\0';
		return 0;
	}
	return snprintf(buf, len,
			"authentication statistics:\n"
			"\trecv:\n"
			"\t\tAccepted:\t\t%20llu\n"
			"\t\tNo trailer:\t\t%20llu\n"
			"\t\tUnknown key id:\t\t%20llu\n"
			"\t\tBad MAC:\t\t%20llu\n"
			"\t\tReplayed:\t\t%20llu\n"
			"\t\tOlder than window:\t%20llu\n"
			"\t\tBad TCP record:\t\t%20llu\n\n",
			(unsigned long long)a->accepted,
			(unsigned long long)a->no_trailer,
			(unsigned long long)a->unknown_key,
			(unsigned long long)a->bad_mac,
			(unsigned long long)a->replay,
			(unsigned long long)a->too_old,
			(unsigned long long)a->bad_record);
}
