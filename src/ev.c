/* select()-based event loop with a binary heap of monotonic timers. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "ev.h"

struct ev_fd {
	ev_fd_cb cb;
	void    *arg;
	int      events;
};

struct ev_loop {
	struct ev_fd     fds[FD_SETSIZE];
	int              maxfd;
	struct ev_timer **heap;
	int              nheap, capheap;
	int              sigfd;
	sigset_t         sigmask;
	ev_signal_cb     sigcb[65];
	void            *sigarg[65];
	ev_hook_cb       before_sleep;
	void            *before_sleep_arg;
	bool             stop;
	uint64_t         select_failed;
};

uint64_t ev_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

struct ev_loop *ev_new(void)
{
	struct ev_loop *l = calloc(1, sizeof(*l));

	if (!l)
		return NULL;
	l->maxfd = -1;
	l->sigfd = -1;
	sigemptyset(&l->sigmask);
	return l;
}

void ev_free(struct ev_loop *l)
{
	if (!l)
		return;
	if (l->sigfd >= 0)
		close(l->sigfd);
	free(l->heap);
	free(l);
}

int ev_fd_add(struct ev_loop *l, int fd, int events, ev_fd_cb cb, void *arg)
{
	if (fd < 0 || fd >= FD_SETSIZE) {
		errno = EMFILE;
		return -1;
	}
	l->fds[fd].cb = cb;
	l->fds[fd].arg = arg;
	l->fds[fd].events = events;
	if (fd > l->maxfd)
		l->maxfd = fd;
	return 0;
}

int ev_fd_mod(struct ev_loop *l, int fd, int events)
{
	if (fd < 0 || fd >= FD_SETSIZE || !l->fds[fd].cb) {
		errno = EBADF;
		return -1;
	}
	l->fds[fd].events = events;
	return 0;
}

void ev_fd_del(struct ev_loop *l, int fd)
{
	if (fd < 0 || fd >= FD_SETSIZE)
		return;
	memset(&l->fds[fd], 0, sizeof(l->fds[fd]));
	while (l->maxfd >= 0 && !l->fds[l->maxfd].cb)
		l->maxfd--;
}

/* ---- timers: binary min-heap on when_ms ---- */

static void heap_swap(struct ev_loop *l, int a, int b)
{
	struct ev_timer *t = l->heap[a];

	l->heap[a] = l->heap[b];
	l->heap[b] = t;
	l->heap[a]->heap_idx = a;
	l->heap[b]->heap_idx = b;
}

static void heap_up(struct ev_loop *l, int i)
{
	while (i > 0) {
		int p = (i - 1) / 2;

		if (l->heap[p]->when_ms <= l->heap[i]->when_ms)
			break;
		heap_swap(l, i, p);
		i = p;
	}
}

static void heap_down(struct ev_loop *l, int i)
{
	for (;;) {
		int c = 2 * i + 1, m = i;

		if (c < l->nheap && l->heap[c]->when_ms < l->heap[m]->when_ms)
			m = c;
		if (c + 1 < l->nheap && l->heap[c + 1]->when_ms < l->heap[m]->when_ms)
			m = c + 1;
		if (m == i)
			return;
		heap_swap(l, i, m);
		i = m;
	}
}

void ev_timer_init(struct ev_timer *t, ev_timer_cb cb, void *arg)
{
	memset(t, 0, sizeof(*t));
	t->cb = cb;
	t->arg = arg;
	t->heap_idx = -1;
}

bool ev_timer_pending(const struct ev_timer *t)
{
	return t->heap_idx >= 0;
}

void ev_timer_del(struct ev_loop *l, struct ev_timer *t)
{
	int i = t->heap_idx;

	if (i < 0)
		return;
	l->nheap--;
	if (i != l->nheap) {
		l->heap[i] = l->heap[l->nheap];
		l->heap[i]->heap_idx = i;
		heap_down(l, i);
		heap_up(l, i);
	}
	t->heap_idx = -1;
}

void ev_timer_add(struct ev_loop *l, struct ev_timer *t, uint64_t after_ms)
{
	ev_timer_del(l, t);
	if (l->nheap == l->capheap) {
		int cap = l->capheap ? l->capheap * 2 : 64;
		struct ev_timer **h = realloc(l->heap, sizeof(*h) * cap);

		if (!h)
			abort();        /* cannot keep the promise of a timer */
		l->heap = h;
		l->capheap = cap;
	}
	t->when_ms = ev_now_ms() + after_ms;
	t->heap_idx = l->nheap;
	l->heap[l->nheap++] = t;
	heap_up(l, t->heap_idx);
}

static void run_timers(struct ev_loop *l)
{
	uint64_t now = ev_now_ms();

	while (l->nheap > 0 && l->heap[0]->when_ms <= now) {
		struct ev_timer *t = l->heap[0];

		ev_timer_del(l, t);
		t->cb(t, t->arg);
	}
}

/* ---- signals ---- */

static void sig_read(int fd, int events, void *arg)
{
	struct ev_loop *l = arg;
	struct signalfd_siginfo si;

	while (read(fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		int s = (int)si.ssi_signo;

		if (s > 0 && s < 65 && l->sigcb[s])
			l->sigcb[s](s, l->sigarg[s]);
	}
}

int ev_signal_add(struct ev_loop *l, int signo, ev_signal_cb cb, void *arg)
{
	int fd;

	if (signo <= 0 || signo >= 65) {
		errno = EINVAL;
		return -1;
	}
	sigaddset(&l->sigmask, signo);
	if (sigprocmask(SIG_BLOCK, &l->sigmask, NULL) < 0)
		return -1;
	fd = signalfd(l->sigfd, &l->sigmask, SFD_NONBLOCK | SFD_CLOEXEC);
	if (fd < 0)
		return -1;
	l->sigfd = fd;
	l->sigcb[signo] = cb;
	l->sigarg[signo] = arg;
	return ev_fd_add(l, fd, EV_READ, sig_read, l);
}

void ev_set_before_sleep(struct ev_loop *l, ev_hook_cb cb, void *arg)
{
	l->before_sleep = cb;
	l->before_sleep_arg = arg;
}

/* ---- the loop ---- */

int ev_run_once(struct ev_loop *l, int timeout_ms)
{
	fd_set rd, wr;
	struct timeval tv, *tvp = NULL;
	int n, fd, maxfd;

	if (l->before_sleep)
		l->before_sleep(l->before_sleep_arg);

	if (l->nheap > 0) {
		uint64_t now = ev_now_ms(), when = l->heap[0]->when_ms;
		uint64_t wait = when > now ? when - now : 0;

		if (timeout_ms >= 0 && (uint64_t)timeout_ms < wait)
			wait = (uint64_t)timeout_ms;
		tv.tv_sec = (time_t)(wait / 1000);
		tv.tv_usec = (suseconds_t)((wait % 1000) * 1000);
		tvp = &tv;
	} else if (timeout_ms >= 0) {
		tv.tv_sec = timeout_ms / 1000;
		tv.tv_usec = (timeout_ms % 1000) * 1000;
		tvp = &tv;
	}

	FD_ZERO(&rd);
	FD_ZERO(&wr);
	maxfd = l->maxfd;
	for (fd = 0; fd <= maxfd; fd++) {
		if (!l->fds[fd].cb)
			continue;
		if (l->fds[fd].events & EV_READ)
			FD_SET(fd, &rd);
		if (l->fds[fd].events & EV_WRITE)
			FD_SET(fd, &wr);
	}
	n = select(maxfd + 1, &rd, &wr, NULL, tvp);
	if (n < 0) {
		if (errno == EINTR)
			return 0;
		l->select_failed++;
		return -1;
	}
	/* A callback may delete or replace any fd: re-check before each call. */
	for (fd = 0; n > 0 && fd <= maxfd; fd++) {
		int ev = 0;

		if (FD_ISSET(fd, &rd))
			ev |= EV_READ;
		if (FD_ISSET(fd, &wr))
			ev |= EV_WRITE;
		if (!ev)
			continue;
		n--;
		ev &= l->fds[fd].events;
		if (ev && l->fds[fd].cb)
			l->fds[fd].cb(fd, ev, l->fds[fd].arg);
	}
	run_timers(l);
	return 0;
}

int ev_run(struct ev_loop *l)
{
	l->stop = false;
	while (!l->stop) {
		if (ev_run_once(l, -1) < 0 && l->select_failed > 1000)
			return -1;
	}
	return 0;
}

void ev_stop(struct ev_loop *l)
{
	l->stop = true;
}

uint64_t ev_select_failures(const struct ev_loop *l)
{
	return l->select_failed;
}
