/*
 * TCP channel (sync-protocol.md §9.4). Each node listens for its peer and
 * keeps one outgoing connection to it: we send only on the outgoing one and
 * receive only on the accepted one. Chunks that cannot be sent wait in the
 * error queue and go out first once the connection is back.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "channel.h"
#include "ctd.h"
#include "log.h"

#define RECONNECT_MS 1000

static void tcp_connect(struct channel *c);

static uint64_t errq_limit(const struct channel *c)
{
	uint32_t n = chan_ctd(c)->conf->error_queue_length;

	return n ? n : 128;
}

static void errq_pop(struct chan_errq *q)
{
	struct chan_chunk *k = q->head;

	q->head = k->next;
	if (!q->head)
		q->tail = NULL;
	q->cur--;
	free(k);
}

static bool chunk_begun(const struct chan_chunk *k)
{
	return k->off > 0 || k->cont;
}

/*
 * Queue what could not be sent. When full, the oldest whole chunk goes; a
 * begun head stays, or the peer would see half a message. Only the head
 * can be begun.
 */
static void errq_push(struct channel *c, const uint8_t *data, size_t len, bool cont)
{
	struct chan_errq *q = &c->errq;
	struct chan_chunk *k;

	if (q->head && q->cur >= errq_limit(c)) {
		q->nospace++;
		if (!chunk_begun(q->head)) {
			errq_pop(q);
		} else if (q->head->next) {
			struct chan_chunk *old = q->head->next;

			q->head->next = old->next;
			if (q->tail == old)
				q->tail = q->head;
			q->cur--;
			free(old);
		} else if (!cont) {
			return;         /* limit 1 and the head is begun */
		}
	}
	k = malloc(sizeof(*k) + len);
	if (!k) {
		q->nospace++;
		return;
	}
	k->next = NULL;
	k->len = len;
	k->off = 0;
	k->cont = cont;
	memcpy(k->data, data, len);
	if (q->tail)
		q->tail->next = k;
	else
		q->head = k;
	q->tail = k;
	q->cur++;
}

static void errq_free(struct chan_errq *q)
{
	while (q->head)
		errq_pop(q);
}

static void client_events(struct channel *c)
{
	struct ev_loop *l = chan_ctd(c)->loop;

	if (c->sfd < 0)
		return;
	if (c->connecting || (c->connected && c->errq.head))
		ev_fd_mod(l, c->sfd, EV_READ | EV_WRITE);
	else
		ev_fd_mod(l, c->sfd, EV_READ);
}

static void client_drop(struct channel *c)
{
	struct ev_loop *l = chan_ctd(c)->loop;

	if (c->sfd >= 0) {
		ev_fd_del(l, c->sfd);
		close(c->sfd);
		c->sfd = -1;
	}
	c->connected = c->connecting = false;
	/* The rest of a half-sent message means nothing to a new connection. */
	if (c->errq.head && chunk_begun(c->errq.head))
		errq_pop(&c->errq);
	ev_timer_add(l, &c->reconnect, RECONNECT_MS);
}

/* Send queued chunks in order; stop at the first that would block. */
static void errq_drain(struct channel *c)
{
	struct chan_errq *q = &c->errq;

	while (c->connected && q->head) {
		struct chan_chunk *k = q->head;
		ssize_t n = send(c->sfd, k->data + k->off, k->len - k->off,
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
				break;
			c->st.err_sent++;
			client_drop(c);
			break;
		}
		c->st.bytes_sent += (uint64_t)n;
		k->off += (size_t)n;
		if (k->off == k->len) {
			c->st.msgs_sent++;
			errq_pop(q);
		}
	}
	client_events(c);
}

static void client_ready(int fd, int events, void *arg)
{
	struct channel *c = arg;

	if (c->connecting && (events & EV_WRITE)) {
		int err = 0;
		socklen_t el = sizeof(err);

		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0)
			err = errno;
		if (err != 0) {
			client_drop(c);
			return;
		}
		c->connecting = false;
		c->connected = true;
	}
	if (events & EV_READ) {
		/* The peer never writes here: readable means closed or reset. */
		uint8_t junk[512];
		ssize_t n = recv(fd, junk, sizeof(junk), MSG_DONTWAIT);

		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK &&
			       errno != EINTR)) {
			client_drop(c);
			return;
		}
	}
	if (c->connected)
		errq_drain(c);
	else
		client_events(c);
}

static void reconnect_fire(struct ev_timer *t, void *arg)
{
	struct channel *c = arg;

	(void)t;
	if (c->sfd < 0)
		tcp_connect(c);
}

static void tcp_connect(struct channel *c)
{
	const struct conf_channel *cc = c->cc;
	struct ev_loop *l = chan_ctd(c)->loop;
	int fd, on = 1;

	fd = socket(cc->family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		ev_timer_add(l, &c->reconnect, RECONNECT_MS);
		return;
	}
	setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on));
	chan_set_bufs(c, fd, true);
	c->sfd = fd;
	if (ev_fd_add(l, fd, EV_READ, client_ready, c) < 0) {
		client_drop(c);
		return;
	}
	if (connect(fd, (struct sockaddr *)&c->dst, c->dstlen) == 0) {
		c->connected = true;
		errq_drain(c);
	} else if (errno == EINPROGRESS || errno == EALREADY || errno == EINTR) {
		c->connecting = true;
		client_events(c);
	} else {
		client_drop(c);
	}
}

int chan_tcp_send(struct channel *c, const uint8_t *data, size_t len)
{
	ssize_t n;

	/* As 1.4.x, a chunk that cannot go out now counts as a send error. */
	if (c->connected && c->errq.head)
		errq_drain(c);
	if (!c->connected || c->errq.head) {
		c->st.err_sent++;
		errq_push(c, data, len, false);
		client_events(c);
		return 0;
	}
	n = send(c->sfd, data, len, MSG_NOSIGNAL | MSG_DONTWAIT);
	if (n < 0) {
		c->st.err_sent++;
		if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
			client_drop(c);
		errq_push(c, data, len, false);
		client_events(c);
		return 0;
	}
	c->st.bytes_sent += (uint64_t)n;
	if ((size_t)n < len) {
		errq_push(c, data + n, len - (size_t)n, true);
		client_events(c);
		return 0;
	}
	c->st.msgs_sent++;
	return 0;
}

/* ---- receiving side ---- */

static void server_drop(struct channel *c)
{
	if (c->afd < 0)
		return;
	ev_fd_del(chan_ctd(c)->loop, c->afd);
	close(c->afd);
	c->afd = -1;
	chan_rbuf_reset(&c->rbuf);
}

static size_t rbuf_cb(struct ctd *d, unsigned idx, const uint8_t *data, size_t len,
		      const void *from, size_t fromlen);

static void server_readable(int fd, int events, void *arg)
{
	struct channel *c = arg;
	struct ctd *d = chan_ctd(c);
	ssize_t n;

	(void)events;
	n = recv(fd, c->rbuf.buf + c->rbuf.len, CHAN_RBUF_SIZE - c->rbuf.len,
		 MSG_DONTWAIT);
	if (n < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
			return;
		c->st.err_recv++;
		server_drop(c);
		return;
	}
	if (n == 0) {
		server_drop(c);
		return;
	}
	c->st.bytes_recv += (uint64_t)n;
	c->st.msgs_recv++;
	chan_rbuf_deliver(&c->rbuf, (size_t)n, rbuf_cb, d, c->idx, c, 0);
	/* Reset only now: the buffer must not change under its own loop. */
	if (c->auth_drop)
		server_drop(c);
}

/* Trampoline: the rbuf passes the channel as `from`; give the real peer. */
static size_t rbuf_cb(struct ctd *d, unsigned idx, const uint8_t *data, size_t len,
		      const void *from, size_t fromlen)
{
	const struct channel *c = from;

	(void)d;
	(void)idx;
	(void)fromlen;
	if (chan_auth_on(c))
		return chan_auth_stream((struct channel *)c, data, len);
	return chan_deliver(c, data, len, &c->peer, c->peerlen);
}

static void listener_readable(int fd, int events, void *arg)
{
	struct channel *c = arg;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	int nfd;

	(void)events;
	nfd = accept4(fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (nfd < 0)
		return;
	/* One peer at a time: a new connection means the peer restarted. */
	server_drop(c);
	if (ev_fd_add(chan_ctd(c)->loop, nfd, EV_READ, server_readable, c) < 0) {
		close(nfd);
		return;
	}
	c->afd = nfd;
	c->peer = ss;
	c->peerlen = sl;
	c->auth_drop = false;
}

int chan_tcp_open(struct channel *c)
{
	const struct conf_channel *cc = c->cc;
	struct ev_loop *l = chan_ctd(c)->loop;
	struct sockaddr_storage ss;
	socklen_t sl;
	int fd, on = 1;

	if (!cc->have_dest) {
		snprintf(c->err, sizeof(c->err), "no destination address given");
		return -1;
	}
	ev_timer_init(&c->reconnect, reconnect_fire, c);
	if (chan_rbuf_init(&c->rbuf) < 0)
		return chan_err(c, NULL, errno);
	fd = socket(cc->family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return chan_err(c, "listening socket", errno);
	c->rfd = fd;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on)) < 0)
		return chan_err(c, "listening socket", errno);
	chan_set_bufs(c, fd, false);
	sl = chan_sockaddr(&ss, cc->family, cc->have_addr ? &cc->addr : NULL,
			   cc->port, c->ifindex);
	if (bind(fd, (struct sockaddr *)&ss, sl) < 0 || listen(fd, 1) < 0)
		return chan_err(c, "listening socket", errno);
	if (ev_fd_add(l, fd, EV_READ, listener_readable, c) < 0)
		return chan_err(c, "listening socket", errno);
	c->dstlen = chan_sockaddr(&c->dst, cc->family, &cc->dest, cc->port, c->ifindex);
	tcp_connect(c);
	return 0;
}

void chan_tcp_close(struct channel *c)
{
	struct ctd *d = chan_ctd(c);

	server_drop(c);
	if (c->reconnect.cb)
		ev_timer_del(d->loop, &c->reconnect);
	errq_free(&c->errq);
	chan_rbuf_free(&c->rbuf);
	c->connected = c->connecting = false;
}

bool chan_tcp_server_connected(const struct channel *c)
{
	return c->afd >= 0;
}
