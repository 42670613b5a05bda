/*
 * Lifecycle: lock file, scheduler, signals, daemonising, systemd
 * notification, helper-process bookkeeping and the shutdown sequence
 * (spec config-and-cli.md §6).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ctd.h"
#include "ctl.h"
#include "log.h"
#include "nl.h"
#include "sdnotify.h"
#include "sync.h"

int daemon_lock(struct ctd *d)
{
	const char *path = d->conf->lockfile;
	int fd;

	if (!*path)
		return 0;
	/* Empty, O_EXCL, never considered stale: 1.4.x semantics that the
	 * keepalived script and init scripts rely on. */
	fd = open(path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		log_err("lockfile `%s' exists, perhaps conntrackd already running?",
			path);
		return -1;
	}
	close(fd);
	d->lock_held = true;
	return 0;
}

void daemon_unlock(struct ctd *d)
{
	if (d->lock_held && unlink(d->conf->lockfile) < 0 && errno != ENOENT)
		log_warn("can't remove lockfile `%s': %s", d->conf->lockfile,
			 strerror(errno));
	d->lock_held = false;
}

void daemon_sched(const struct ctd_conf *conf)
{
	struct sched_param p = { 0 };
	int policy;

	if (!conf->sched_type_set || conf->sched_policy < 0) {
		/* A lone Priority is ignored, as in 1.4.x. */
		policy = SCHED_RR;
		p.sched_priority = sched_get_priority_max(SCHED_RR);
	} else {
		policy = conf->sched_policy;
		p.sched_priority = conf->sched_priority;
	}
	if (sched_setscheduler(0, policy, &p) < 0)
		log_warn("scheduler configuration failed: %s. Likely a bug in "
			 "conntrackd, please report it. Continuing with system "
			 "default scheduler.", strerror(errno));
}

/* ---- systemd ---- */

/* A failure is logged once, not at every watchdog tick, until one works. */
void daemon_notify(struct ctd *d, const char *state)
{
	int r;

	if (!d->conf || !d->conf->systemd)
		return;
	r = sdn_notify(state);
	if (r < 0 && !d->notify_failing)
		log_warn("systemd notification `%s' to NOTIFY_SOCKET=%s failed: %s",
			 state, getenv("NOTIFY_SOCKET"), strerror(-r));
	d->notify_failing = r < 0;
}

void daemon_watchdog_prepare(struct ctd *d)
{
	uint64_t usec = 0;
	int r;

	if (!d->conf->systemd)
		return;
	r = sdn_watchdog_enabled(&usec);
	if (r < 0)
		log_warn("failed to get watchdog details from systemd: %s",
			 strerror(-r));
	else if (r > 0)
		d->watchdog_usec = usec;
}

static void watchdog_cb(struct ev_timer *t, void *arg)
{
	struct ctd *d = arg;

	daemon_notify(d, "WATCHDOG=1");
	ev_timer_add(d->loop, t, d->watchdog_usec / 2000);
}

void daemon_watchdog_start(struct ctd *d)
{
	if (!d->watchdog_usec)
		return;
	ev_timer_init(&d->watchdog, watchdog_cb, d);
	ev_timer_add(d->loop, &d->watchdog, d->watchdog_usec / 2000);
}

/* ---- daemonising ---- */

static void stdio_to_null(bool all)
{
	int fd = open("/dev/null", O_RDWR | O_CLOEXEC);

	if (fd < 0)
		return;
	dup2(fd, STDIN_FILENO);
	/* Keep 1 and 2 occupied so no socket can end up there and receive
	 * stray console output. */
	if (all) {
		dup2(fd, STDOUT_FILENO);
		dup2(fd, STDERR_FILENO);
	}
	if (fd > STDERR_FILENO)
		close(fd);
}

int daemon_fork(struct ctd *d)
{
	pid_t pid;

	if (chdir("/") < 0)
		log_warn("Cannot change current directory to /: %s", strerror(errno));
	if (d->console) {
		stdio_to_null(false);
		return 0;
	}
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		log_err("fork has failed: %s", strerror(errno));
		return -1;
	}
	if (pid > 0) {
		if (d->conf->systemd) {
			char msg[32];

			snprintf(msg, sizeof(msg), "MAINPID=%d", (int)pid);
			daemon_notify(d, msg);
		}
		return 1;
	}
	setsid();
	stdio_to_null(true);
	log_set_console(false);
	return 0;
}

/* ---- signals and children ---- */

int ctd_child_add(struct ctd *d, pid_t pid, const char *type,
		  ctd_child_cb done, void *arg)
{
	struct ctd_child *c;

	if (d->nchildren >= CTD_MAX_CHILDREN)
		return -1;
	c = &d->children[d->nchildren++];
	c->pid = pid;
	c->type = type ? type : "any";
	c->done = done;
	c->arg = arg;
	return 0;
}

void daemon_reap(struct ctd *d)
{
	int status;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) != 0) {
		struct ctd_child child = { 0 };
		unsigned i;

		if (pid < 0) {
			if (errno != ECHILD)
				d->rt.wait_failed++;
			return;
		}
		for (i = 0; i < d->nchildren; i++) {
			if (d->children[i].pid != pid)
				continue;
			child = d->children[i];
			d->children[i] = d->children[--d->nchildren];
			break;
		}
		if (WIFSIGNALED(status)) {
			d->rt.child_failed++;
			if (WTERMSIG(status) == SIGSEGV) {
				d->rt.child_segfault++;
				log_err("child process (pid=%d) has aborted, received "
					"signal SIGSEGV (crashed)", (int)pid);
			} else {
				d->rt.child_termsig++;
				log_err("child process (pid=%d) has aborted, received "
					"termination signal (%d)", (int)pid,
					WTERMSIG(status));
			}
		} else if (WIFEXITED(status) && WEXITSTATUS(status) != 0) {
			d->rt.child_failed++;
		}
		if (child.done)
			child.done(d, pid, status, child.arg);
	}
}

static void sig_stop(int signo, void *arg)
{
	ctd_shutdown(arg);
}

/* DECISIONS.md: SIGHUP reopens the log files (logrotate) instead of
 * killing the daemon without clean-up as 1.4.x did. */
static void sig_hup(int signo, void *arg)
{
	if (log_reopen() < 0)
		log_err("can't reopen log files: %s", strerror(errno));
	else
		log_notice("log files reopened");
}

static void sig_chld(int signo, void *arg)
{
	daemon_reap(arg);
}

int daemon_signals(struct ctd *d)
{
	signal(SIGPIPE, SIG_IGN);
	if (ev_signal_add(d->loop, SIGTERM, sig_stop, d) < 0 ||
	    ev_signal_add(d->loop, SIGINT, sig_stop, d) < 0 ||
	    ev_signal_add(d->loop, SIGHUP, sig_hup, d) < 0 ||
	    ev_signal_add(d->loop, SIGCHLD, sig_chld, d) < 0) {
		log_err("can't install signal handlers: %s", strerror(errno));
		return -1;
	}
	return 0;
}

/* ---- shutdown ---- */

void ctd_shutdown(struct ctd *d)
{
	if (d->stopping)
		return;
	d->stopping = true;
	if (d->loop)
		ev_stop(d->loop);
}

int daemon_finish(struct ctd *d)
{
	ctl_close(d);
	if (d->sync)
		sync_fini(d);
	if (d->stats)
		stats_mode_fini(d);
	if (d->nl)
		nl_close(d);
	if (d->loop && d->watchdog_usec && ev_timer_pending(&d->watchdog))
		ev_timer_del(d->loop, &d->watchdog);
	daemon_unlock(d);
	log_notice("---- shutdown received ----");
	log_close();
	daemon_notify(d, "STOPPING=1");
	ev_free(d->loop);
	d->loop = NULL;
	return d->exit_status;
}
