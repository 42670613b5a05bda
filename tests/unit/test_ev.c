/*
 * The event loop (src/ev.c): timers fire in deadline order, callbacks may
 * remove any fd or timer while the loop dispatches, signals arrive as
 * events, the before-sleep hook runs every turn.
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "ev.h"

struct rec {
	int order[16];
	int n;
};

struct tctx {
	struct rec *rec;
	int id;
	struct ev_loop *l;
	struct ev_timer *other;     /* to delete or re-arm from the callback */
};

static void rec_cb(struct ev_timer *t, void *arg)
{
	struct tctx *c = arg;

	c->rec->order[c->rec->n++] = c->id;
}

/* Run until cond() or the deadline; never a bare sleep. */
static void run_for(struct ev_loop *l, int ms, int (*cond)(void *), void *arg)
{
	uint64_t end = ev_now_ms() + (uint64_t)ms;

	while (ev_now_ms() < end && !(cond && cond(arg)))
		ev_run_once(l, 5);
}

static int rec_has(void *arg)
{
	struct rec *r = arg;

	return r->n >= 3;
}

static void test_timer_order(void **state)
{
	struct ev_loop *l = ev_new();
	struct ev_timer t[3];
	struct rec rec = { .n = 0 };
	struct tctx c[3];
	static const int after[3] = { 30, 10, 20 };
	uint64_t t0 = ev_now_ms();
	int i;

	assert_non_null(l);
	for (i = 0; i < 3; i++) {
		c[i] = (struct tctx){ .rec = &rec, .id = i };
		ev_timer_init(&t[i], rec_cb, &c[i]);
		ev_timer_add(l, &t[i], (uint64_t)after[i]);
		assert_true(ev_timer_pending(&t[i]));
	}
	run_for(l, 1000, rec_has, &rec);
	assert_int_equal(rec.n, 3);
	assert_int_equal(rec.order[0], 1);
	assert_int_equal(rec.order[1], 2);
	assert_int_equal(rec.order[2], 0);
	/* Not early: the last one is due at 30 ms. */
	assert_true(ev_now_ms() - t0 >= 30);
	for (i = 0; i < 3; i++)
		assert_false(ev_timer_pending(&t[i]));
	ev_free(l);
}

static void test_timer_del_and_rearm(void **state)
{
	struct ev_loop *l = ev_new();
	struct ev_timer a, b, c;
	struct rec rec = { .n = 0 };
	struct tctx ca = { &rec, 1, l, NULL }, cb = { &rec, 2, l, NULL },
		    cc = { &rec, 3, l, NULL };

	ev_timer_init(&a, rec_cb, &ca);
	ev_timer_init(&b, rec_cb, &cb);
	ev_timer_init(&c, rec_cb, &cc);
	ev_timer_add(l, &a, 10);
	ev_timer_add(l, &b, 15);
	ev_timer_add(l, &c, 20);
	ev_timer_del(l, &b);
	assert_false(ev_timer_pending(&b));
	ev_timer_del(l, &b);                    /* twice is harmless */
	ev_timer_add(l, &a, 40);                /* re-arming moves it */
	run_for(l, 200, rec_has, &rec);
	assert_int_equal(rec.n, 2);
	assert_int_equal(rec.order[0], 3);
	assert_int_equal(rec.order[1], 1);
	ev_free(l);
}

/* A timer callback deleting another timer due in the same turn. */
static void killer_cb(struct ev_timer *t, void *arg)
{
	struct tctx *c = arg;

	c->rec->order[c->rec->n++] = c->id;
	ev_timer_del(c->l, c->other);
}

static void test_timer_del_from_cb(void **state)
{
	struct ev_loop *l = ev_new();
	struct ev_timer a, b;
	struct rec rec = { .n = 0 };
	struct tctx cb = { &rec, 2, l, NULL };
	struct tctx ca = { &rec, 1, l, &b };
	uint64_t end;

	ev_timer_init(&a, killer_cb, &ca);
	ev_timer_init(&b, rec_cb, &cb);
	ev_timer_add(l, &a, 5);
	ev_timer_add(l, &b, 5);
	end = ev_now_ms() + 100;
	while (ev_now_ms() < end)
		ev_run_once(l, 5);
	assert_int_equal(rec.n, 1);
	assert_int_equal(rec.order[0], 1);
	ev_free(l);
}

/* A timer that re-arms itself with 0 ms must not starve the loop forever
 * in one turn (it may run again only in a later turn or the same one, but
 * ev_run_once must return). */
static void self_cb(struct ev_timer *t, void *arg)
{
	struct tctx *c = arg;

	c->rec->n++;
	if (c->rec->n < 5)
		ev_timer_add(c->l, t, 0);
}

static void test_timer_rearm_zero(void **state)
{
	struct ev_loop *l = ev_new();
	struct ev_timer t;
	struct rec rec = { .n = 0 };
	struct tctx c = { &rec, 0, l, NULL };
	int turns = 0;

	ev_timer_init(&t, self_cb, &c);
	ev_timer_add(l, &t, 0);
	while (rec.n < 5 && turns++ < 100)
		ev_run_once(l, 5);
	assert_int_equal(rec.n, 5);
	ev_free(l);
}

struct fdctx {
	struct ev_loop *l;
	int fds[2][2];              /* two pipes */
	int calls[2];
};

static void fd_cb(int fd, int events, void *arg)
{
	struct fdctx *c = arg;
	int which = fd == c->fds[0][0] ? 0 : 1;
	char b;

	c->calls[which]++;
	assert_int_equal(read(fd, &b, 1), 1);
	/* The first one to run removes the other, readable in the same turn. */
	if (which == 0) {
		ev_fd_del(c->l, c->fds[1][0]);
		close(c->fds[1][0]);
		c->fds[1][0] = -1;
	} else {
		ev_fd_del(c->l, c->fds[0][0]);
		close(c->fds[0][0]);
		c->fds[0][0] = -1;
	}
}

static void test_fd_removed_during_dispatch(void **state)
{
	struct fdctx c = { 0 };
	int i;

	c.l = ev_new();
	for (i = 0; i < 2; i++) {
		assert_int_equal(pipe(c.fds[i]), 0);
		assert_int_equal(ev_fd_add(c.l, c.fds[i][0], EV_READ, fd_cb, &c), 0);
		assert_int_equal(write(c.fds[i][1], "x", 1), 1);
	}
	assert_int_equal(ev_run_once(c.l, 100), 0);
	/* Exactly one callback ran: the removed fd was not dispatched. */
	assert_int_equal(c.calls[0] + c.calls[1], 1);
	for (i = 0; i < 2; i++) {
		if (c.fds[i][0] >= 0)
			close(c.fds[i][0]);
		close(c.fds[i][1]);
	}
	ev_free(c.l);
}

struct wctx {
	int reads, writes;
	struct ev_loop *l;
};

static void rw_cb(int fd, int events, void *arg)
{
	struct wctx *c = arg;

	if (events & EV_WRITE) {
		c->writes++;
		ev_fd_mod(c->l, fd, EV_READ);   /* writable interest only once */
	}
	if (events & EV_READ)
		c->reads++;
}

static void test_fd_mod(void **state)
{
	struct wctx c = { 0 };
	int sv[2], i;

	c.l = ev_new();
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(ev_fd_add(c.l, sv[0], EV_READ | EV_WRITE, rw_cb, &c), 0);
	for (i = 0; i < 3; i++)
		ev_run_once(c.l, 10);
	assert_int_equal(c.writes, 1);
	assert_int_equal(c.reads, 0);
	assert_int_equal(ev_fd_mod(c.l, 1000, EV_READ), -1);
	ev_fd_del(c.l, sv[0]);
	close(sv[0]);
	close(sv[1]);
	ev_free(c.l);
}

static void test_fd_limits(void **state)
{
	struct ev_loop *l = ev_new();

	assert_int_equal(ev_fd_add(l, -1, EV_READ, fd_cb, NULL), -1);
	assert_int_equal(ev_fd_add(l, FD_SETSIZE, EV_READ, fd_cb, NULL), -1);
	ev_fd_del(l, -1);                       /* ignored */
	ev_fd_del(l, FD_SETSIZE + 5);
	ev_free(l);
}

static void sig_cb(int signo, void *arg)
{
	int *got = arg;

	*got = signo;
}

static int got_set(void *arg)
{
	return *(int *)arg != 0;
}

static void test_signal(void **state)
{
	struct ev_loop *l = ev_new();
	int got = 0, got2 = 0;

	assert_int_equal(ev_signal_add(l, SIGUSR1, sig_cb, &got), 0);
	assert_int_equal(ev_signal_add(l, SIGUSR2, sig_cb, &got2), 0);
	assert_int_equal(ev_signal_add(l, 0, sig_cb, &got), -1);
	/* Delivered through the loop, not asynchronously. */
	kill(getpid(), SIGUSR1);
	assert_int_equal(got, 0);
	run_for(l, 1000, got_set, &got);
	assert_int_equal(got, SIGUSR1);
	assert_int_equal(got2, 0);
	kill(getpid(), SIGUSR2);
	run_for(l, 1000, got_set, &got2);
	assert_int_equal(got2, SIGUSR2);
	ev_free(l);
}

static void hook_cb(void *arg)
{
	(*(int *)arg)++;
}

static void stop_cb(struct ev_timer *t, void *arg)
{
	ev_stop(arg);
}

static void test_hook_and_stop(void **state)
{
	struct ev_loop *l = ev_new();
	struct ev_timer t;
	int hooks = 0;

	ev_set_before_sleep(l, hook_cb, &hooks);
	ev_timer_init(&t, stop_cb, l);
	ev_timer_add(l, &t, 20);
	assert_int_equal(ev_run(l), 0);        /* returns after ev_stop */
	assert_true(hooks >= 1);
	assert_int_equal(ev_select_failures(l), 0);
	ev_free(l);
}

static void test_run_once_timeout(void **state)
{
	struct ev_loop *l = ev_new();
	uint64_t t0 = ev_now_ms();

	/* Nothing to do: returns after about the timeout, not forever. */
	assert_int_equal(ev_run_once(l, 30), 0);
	assert_true(ev_now_ms() - t0 >= 25);
	assert_true(ev_now_ms() - t0 < 1000);
	ev_free(l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_timer_order),
		cmocka_unit_test(test_timer_del_and_rearm),
		cmocka_unit_test(test_timer_del_from_cb),
		cmocka_unit_test(test_timer_rearm_zero),
		cmocka_unit_test(test_fd_removed_during_dispatch),
		cmocka_unit_test(test_fd_mod),
		cmocka_unit_test(test_fd_limits),
		cmocka_unit_test(test_signal),
		cmocka_unit_test(test_hook_and_stop),
		cmocka_unit_test(test_run_once_timeout),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
