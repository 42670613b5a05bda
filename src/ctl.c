/*
 * The control socket server. Unlike 1.4.x, which read each request with a
 * blocking read() and forked for dumps, every client here is a small state
 * machine driven by the event loop: read 4 bytes (with a deadline), act,
 * write the reply as the socket drains, streaming large dumps a slice of the
 * hash table at a time. A slow or silent client never stalls the daemon.
 * What a request does is in ctl_dispatch.c, the dumps in ctl_dump.c.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "ctd.h"
#include "ctl_priv.h"
#include "log.h"
#include "sync.h"

static void client_progress(struct ctl_client *c);

/* Read interest only until the reader half-closes: a client may shut down
 * its sending side after the request and still wait for the reply. */
static void client_watch(struct ctl_client *c, bool write)
{
	ev_fd_mod(c->srv->d->loop, c->fd,
		  (c->rd_eof ? 0 : EV_READ) | (write ? EV_WRITE : 0));
}

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* ---- request decoding ---- */

int ctl_req_feed(struct ctl_reqbuf *r, const void *data, size_t len, int *req)
{
	size_t take = sizeof(r->b) - r->n;

	if (r->n >= sizeof(r->b))
		take = 0;
	if (take > len)
		take = len;
	if (take)
		memcpy(r->b + r->n, data, take);
	r->n += (unsigned)take;
	if (r->n < sizeof(r->b))
		return 0;
	memcpy(req, r->b, sizeof(*req));        /* host order, as 1.4.x */
	return 1;
}

int ctl_req_known(int req)
{
	return (req >= CTL_CT_FLUSH_MASTER && req <= CTL_CT_RESYNC_MASTER) ||
	       (req >= CTL_CT_DUMP_INTERNAL && req <= CTL_EXP_DUMP_EXT_XML) ||
	       req == CTL_STATS_METRICS;
}

unsigned ctl_client_count(const struct ctd *d)
{
	return d->ctl ? d->ctl->n : 0;
}

/* ---- client lifetime ---- */

static void client_unlink(struct ctl_client *c)
{
	struct ctl *s = c->srv;

	if (!s)
		return;
	if (c->prev)
		c->prev->next = c->next;
	else
		s->clients = c->next;
	if (c->next)
		c->next->prev = c->prev;
	c->prev = c->next = NULL;
	s->n--;
	c->srv = NULL;
}

static void client_close_fd(struct ctl_client *c)
{
	char junk[256];
	int i;

	if (c->fd < 0)
		return;
	if (c->srv) {
		ev_fd_del(c->srv->d->loop, c->fd);
		ev_timer_del(c->srv->d->loop, &c->deadline);
	}
	/* Unread request bytes would make close() send a reset that can
	 * destroy reply data still in flight: discard them first (bounded, a
	 * client writing without pause must not hold the loop). */
	for (i = 0; i < 16 && recv(c->fd, junk, sizeof(junk), MSG_DONTWAIT) > 0; i++)
		;
	close(c->fd);
	c->fd = -1;
	c->dump.on = false;
	free(c->buf);
	c->buf = NULL;
	c->len = c->off = c->cap = 0;
}

/* Frees the client unless sync still holds it for ctl_client_finish. */
static void client_drop(struct ctl_client *c)
{
	client_close_fd(c);
	if (c->awaiting || c->in_dispatch)
		return;
	client_unlink(c);
	free(c);
}

static int buf_reserve(struct ctl_client *c, size_t more)
{
	size_t need, cap;
	char *p;

	if (c->off > 0 && c->off == c->len)
		c->off = c->len = 0;
	need = c->len + more;
	if (need <= c->cap)
		return 0;
	if (need > CTL_BUF_MAX)
		return -1;
	cap = c->cap ? c->cap : 4096;
	while (cap < need)
		cap *= 2;
	p = realloc(c->buf, cap);
	if (!p)
		return -1;
	c->buf = p;
	c->cap = cap;
	return 0;
}

void ctl_buf_append(struct ctl_client *c, const char *p, size_t n)
{
	if (c->fd < 0 || n == 0)
		return;
	if (buf_reserve(c, n) < 0) {
		log_warn("control client: reply exceeds %d bytes or no memory, dropping it",
			 CTL_BUF_MAX);
		client_close_fd(c);
		return;
	}
	memcpy(c->buf + c->len, p, n);
	c->len += n;
}

void ctl_client_write(struct ctl_client *c, const char *buf, size_t len)
{
	if (!c || len == 0)
		return;
	ctl_buf_append(c, buf, len);
	if (c->fd >= 0 && !c->in_dispatch && c->srv)
		client_watch(c, true);
}

void ctl_client_printf(struct ctl_client *c, const char *fmt, ...)
{
	char small[1024], *p = small;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(small)) {
		p = malloc((size_t)n + 1);
		if (!p)
			return;
		va_start(ap, fmt);
		vsnprintf(p, (size_t)n + 1, fmt, ap);
		va_end(ap);
	}
	ctl_client_write(c, p, (size_t)n);
	if (p != small)
		free(p);
}

void ctl_client_finish(struct ctl_client *c)
{
	if (!c)
		return;
	if (c->awaiting && c->srv) {
		c->srv->d->commits++;
		c->srv->d->last_commit_us = now_us() - c->started_us;
	}
	c->awaiting = false;
	c->finished = true;
	if (!c->srv || c->fd < 0) {
		if (!c->in_dispatch) {
			client_drop(c);
		}
		return;
	}
	if (!c->in_dispatch)
		client_progress(c);
}

/* ---- writing ---- */

/* Write what is buffered, produce more dump lines, and close when done.
 * A bounded amount per call so one fast reader cannot monopolise the loop. */
static void client_progress(struct ctl_client *c)
{
	int rounds = 8;

	if (c->fd < 0 || !c->srv) {
		if (c->finished && !c->awaiting)
			client_drop(c);
		return;
	}
	while (rounds-- > 0) {
		if (c->off < c->len) {
			ssize_t w = send(c->fd, c->buf + c->off, c->len - c->off,
					 MSG_NOSIGNAL | MSG_DONTWAIT);

			if (w < 0 && (errno == EAGAIN || errno == EINTR))
				break;
			if (w < 0) {            /* reader went away */
				client_drop(c);
				return;
			}
			c->off += (size_t)w;
			if (c->off < c->len)
				break;
			c->off = c->len = 0;
		}
		if (!c->dump.on)
			break;
		ctl_dump_produce(c);
		if (c->fd < 0)
			break;
	}
	if (c->fd < 0) {
		client_drop(c);
		return;
	}
	if (c->off < c->len || c->dump.on) {
		client_watch(c, true);
		return;
	}
	if (c->finished && !c->awaiting) {
		client_drop(c);
		return;
	}
	client_watch(c, false);                 /* to notice a hang-up */
}

static void dispatch(struct ctl_client *c, int req)
{
	struct ctd *d = c->srv->d;

	c->req = req;
	c->dispatched = true;
	c->started_us = now_us();
	ev_timer_del(d->loop, &c->deadline);
	if (req == CTL_KILL) {
		c->finished = true;
		client_drop(c);         /* no reply, as 1.4.x */
		ctd_shutdown(d);
		return;
	}
	if (!ctl_req_known(req)) {
		d->rt.local_unknown_request++;
		c->finished = true;
		client_progress(c);
		return;
	}
	c->in_dispatch = true;
	ctl_dispatch(c, req);
	c->in_dispatch = false;
	if (!c->awaiting)
		c->finished = true;
	client_progress(c);
}

/* ---- reading ---- */

static void client_cb(int fd, int events, void *arg)
{
	struct ctl_client *c = arg;
	char in[64];
	ssize_t n;
	int req;

	if (events & EV_READ) {
		n = recv(fd, in, sizeof(in), MSG_DONTWAIT);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			goto write;
		if (n == 0 && c->dispatched) {
			c->rd_eof = true;
			client_watch(c, c->off < c->len || c->dump.on);
			goto write;
		}
		if (n <= 0) {
			/* Hang-up before a full request is a failed read;
			 * a reset after it means the reader is gone. */
			if (!c->dispatched)
				c->srv->d->rt.local_read_failed++;
			client_drop(c);
			return;
		}
		if (!c->dispatched) {
			if (ctl_req_feed(&c->rb, in, (size_t)n, &req)) {
				dispatch(c, req);
				return;
			}
		} else if ((c->extra += (size_t)n) > 4096) {
			/* Bytes after the request are ignored, as 1.4.x; a
			 * client that keeps sending is no longer read at all. */
			c->rd_eof = true;
			client_watch(c, c->off < c->len || c->dump.on);
		}
	}
write:
	if (events & EV_WRITE)
		client_progress(c);
}

static void deadline_cb(struct ev_timer *t, void *arg)
{
	struct ctl_client *c = arg;

	c->srv->d->rt.local_read_failed++;
	client_drop(c);
}

static void too_many(struct ctl *s, int fd)
{
	static const char msg[] = "conntrackd: too many control clients, try again later\n";
	time_t now = time(NULL);

	ssize_t r;

	char junk[64];
	int i;

	/* Best effort: the client sees EOF either way. Its request is read
	 * first so that close() does not reset the line away. */
	for (i = 0; i < 16 && recv(fd, junk, sizeof(junk), MSG_DONTWAIT) > 0; i++)
		;
	r = send(fd, msg, sizeof(msg) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
	(void)r;
	close(fd);
	if (now != s->last_full_warn) {
		s->last_full_warn = now;
		log_warn("control socket: %u clients connected, refusing more",
			 s->n);
	}
}

static void accept_cb(int fd, int events, void *arg)
{
	struct ctl *s = arg;
	int burst;

	for (burst = 0; burst < 128; burst++) {
		struct ctl_client *c;
		int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (cfd < 0) {
			if (errno != EAGAIN && errno != EINTR &&
			    errno != ECONNABORTED)
				log_warn("control socket: accept: %s", strerror(errno));
			return;
		}
		if (s->n >= CTL_MAX_CLIENTS) {
			too_many(s, cfd);
			continue;
		}
		c = calloc(1, sizeof(*c));
		if (!c || ev_fd_add(s->d->loop, cfd, EV_READ, client_cb, c) < 0) {
			log_warn("control socket: cannot serve client: %s",
				 c ? strerror(errno) : "out of memory");
			free(c);
			close(cfd);
			continue;
		}
		c->fd = cfd;
		c->srv = s;
		c->next = s->clients;
		if (s->clients)
			s->clients->prev = c;
		s->clients = c;
		s->n++;
		ev_timer_init(&c->deadline, deadline_cb, c);
		ev_timer_add(s->d->loop, &c->deadline, CTL_READ_DEADLINE_MS);
	}
}

/* ---- the listening socket ---- */

/* Remove a stale socket left by a crash; anything else at the path (a
 * planted symlink, a regular file) is refused rather than replaced. */
static int clear_path(const char *path)
{
	struct stat st;

	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : -1;
	if (S_ISLNK(st.st_mode)) {
		log_err("unix socket path `%s' is a symbolic link, refusing to follow it",
			path);
		errno = ELOOP;
		return -1;
	}
	if (!S_ISSOCK(st.st_mode)) {
		log_err("unix socket path `%s' exists and is not a socket", path);
		errno = EEXIST;
		return -1;
	}
	return unlink(path);
}

int ctl_open(struct ctd *d)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	const char *path = d->conf->unix_path;
	mode_t mode = d->conf->unix_mode & 0777;  /* conf default: 0600 */
	struct stat st;
	struct ctl *s;
	mode_t old;
	int fd, r;

	if (!*path) {
		log_warn("no UNIX { Path } configured: control socket disabled, "
			 "clients cannot reach this daemon");
		return 0;
	}
	if (strlen(path) >= sizeof(sun.sun_path)) {
		log_err("unix socket path `%s' is too long", path);
		goto fail;
	}
	memcpy(sun.sun_path, path, strlen(path) + 1);
	if (clear_path(path) < 0)
		goto fail;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		goto fail;
	/* The mode is set by the umask at bind time: no window in which the
	 * socket exists with wider permissions, no chmod() through a path. */
	old = umask(~mode & 0777);
	r = bind(fd, (struct sockaddr *)&sun, sizeof(sun));
	umask(old);
	if (r < 0 || listen(fd, 100) < 0 || fstat(fd, &st) < 0 ||
	    lstat(path, &st) < 0) {
		log_err("can't open unix socket `%s': %s", path, strerror(errno));
		close(fd);
		goto fail;
	}
	s = calloc(1, sizeof(*s));
	if (!s) {
		close(fd);
		unlink(path);
		goto fail;
	}
	s->d = d;
	s->fd = fd;
	s->dev = st.st_dev;
	s->ino = st.st_ino;
	snprintf(s->path, sizeof(s->path), "%s", path);
	if (ev_fd_add(d->loop, fd, EV_READ, accept_cb, s) < 0) {
		close(fd);
		unlink(path);
		free(s);
		goto fail;
	}
	d->ctl = s;
	return 0;
fail:
	log_err("can't open unix socket!");
	return -1;
}

void ctl_close(struct ctd *d)
{
	struct ctl *s = d->ctl;
	struct stat st;

	if (!s)
		return;
	ev_fd_del(d->loop, s->fd);
	close(s->fd);
	/* Only our own socket: another daemon may have replaced it. */
	if (lstat(s->path, &st) == 0 && st.st_dev == s->dev && st.st_ino == s->ino)
		unlink(s->path);
	while (s->clients) {
		struct ctl_client *c = s->clients;

		client_close_fd(c);
		client_unlink(c);
		/* Held by a running commit: freed by its ctl_client_finish. */
		if (!c->awaiting)
			free(c);
	}
	free(s);
	d->ctl = NULL;
}
