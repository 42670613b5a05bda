/*
 * The one event loop: select() over every fd the daemon owns, monotonic
 * timers, and signals delivered as events (signalfd). Callbacks may add or
 * remove any fd or timer, including their own, while the loop dispatches.
 */
#ifndef CTD_EV_H
#define CTD_EV_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/select.h>

struct ev_loop;
struct ev_timer;

enum { EV_READ = 1, EV_WRITE = 2 };

typedef void (*ev_fd_cb)(int fd, int events, void *arg);
typedef void (*ev_timer_cb)(struct ev_timer *t, void *arg);
typedef void (*ev_signal_cb)(int signo, void *arg);
typedef void (*ev_hook_cb)(void *arg);

struct ev_timer {
	uint64_t     when_ms;       /* monotonic deadline */
	ev_timer_cb  cb;
	void        *arg;
	int          heap_idx;      /* -1 when not armed */
};

struct ev_loop *ev_new(void);
void ev_free(struct ev_loop *l);

/* Watch fd (< FD_SETSIZE) for events; replaces any previous watch. */
int  ev_fd_add(struct ev_loop *l, int fd, int events, ev_fd_cb cb, void *arg);
int  ev_fd_mod(struct ev_loop *l, int fd, int events);
void ev_fd_del(struct ev_loop *l, int fd);

void ev_timer_init(struct ev_timer *t, ev_timer_cb cb, void *arg);
void ev_timer_add(struct ev_loop *l, struct ev_timer *t, uint64_t after_ms);
void ev_timer_del(struct ev_loop *l, struct ev_timer *t);
bool ev_timer_pending(const struct ev_timer *t);

/* Block signo and deliver it through the loop. */
int  ev_signal_add(struct ev_loop *l, int signo, ev_signal_cb cb, void *arg);

/* Called once per loop turn before sleeping (tx queue drain, flushes). */
void ev_set_before_sleep(struct ev_loop *l, ev_hook_cb cb, void *arg);

/* Run until ev_stop(). Returns 0, or -1 if select() failed fatally. */
int  ev_run(struct ev_loop *l);
void ev_stop(struct ev_loop *l);
/* One turn with a maximum wait (tests). */
int  ev_run_once(struct ev_loop *l, int timeout_ms);

uint64_t ev_now_ms(void);   /* CLOCK_MONOTONIC in ms */
uint64_t ev_select_failures(const struct ev_loop *l);

#endif
