/*
 * The daemon context: the one object every module receives. No module keeps
 * state in globals; everything that lives as long as the daemon hangs here.
 */
#ifndef CTD_CTD_H
#define CTD_CTD_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>
#include <time.h>

#include "conf.h"
#include "ev.h"

struct nl;
struct sync;
struct chanset;
struct ctl;
struct ctd;
struct stats_mode;
struct cache;
struct nl_sink;

/* Helper processes (forked flushers), listed by -s process and reaped on
 * SIGCHLD. type is printed as is: "any", "flush", "commit". */
#define CTD_MAX_CHILDREN 16
typedef void (*ctd_child_cb)(struct ctd *d, pid_t pid, int status, void *arg);
struct ctd_child {
	pid_t        pid;
	const char  *type;
	ctd_child_cb done;
	void        *arg;
};

struct runtime_stats {              /* -s runtime "runtime stats" */
	uint64_t child_failed, child_segfault, child_termsig;
	uint64_t select_failed, wait_failed;
	uint64_t local_read_failed, local_unknown_request;
};

struct ctd {
	struct ctd_conf  *conf;
	struct ev_loop   *loop;
	struct nl        *nl;           /* kernel side (nl.h) */
	struct sync      *sync;         /* sync mode (sync.h); NULL in stats mode */
	struct chanset   *chans;        /* sync channels (channel.h) */
	struct stats_mode *stats;       /* stats mode; NULL in sync mode */
	struct ctl       *ctl;          /* control socket server (ctl.h) */
	struct runtime_stats rt;
	time_t            started;      /* wall clock, for "daemon uptime" */
	bool              console;      /* not daemonised */
	bool              stopping;
	/* Netlink port ids of our own writing sockets, for event origin. */
	uint32_t          portid_commit, portid_inject, portid_flush;

	/* Owned by the daemon core (daemon.c); others use the functions. */
	struct ctd_child  children[CTD_MAX_CHILDREN];
	unsigned          nchildren;
	struct ev_timer   watchdog;     /* systemd WATCHDOG=1 */
	uint64_t          watchdog_usec;
	bool              notify_failing; /* last systemd notification failed (logged once) */
	bool              lock_held;    /* we created conf->lockfile */
	int               exit_status;  /* returned by main after ev_run */
	/* Commits as the control socket saw them (request to ctl_client_finish). */
	uint64_t          commits;
	uint64_t          last_commit_us;
};

/* Register a forked helper; done() (may be NULL) runs when it is reaped.
 * Returns -1 if the table is full (the child is still reaped, unlisted). */
int  ctd_child_add(struct ctd *d, pid_t pid, const char *type,
		   ctd_child_cb done, void *arg);

/* ---- command line (cli.c) ---- */
enum cli_role { CLI_CONSOLE = 0, CLI_DAEMON, CLI_REQUEST, CLI_CONFTEST };

#define CLI_PATH_MAX 4096
struct cli {
	enum cli_role role;
	int      req;               /* enum ctl_req, -1 until chosen */
	char     conf[CLI_PATH_MAX + 1];
};

/* Parse argv exactly as conntrackd 1.4.x (spec config-and-cli.md §1.1).
 * Usage and version text go to `out`, errors are logged. Returns -1 to go
 * on, or the exit status when the process must stop now. */
int  cli_parse(struct cli *o, int argc, char **argv, FILE *out);
void cli_usage(FILE *out, const char *argv0);

/* ---- lifecycle (daemon.c) ---- */
int  daemon_lock(struct ctd *d);        /* O_EXCL lock file; -1 logged */
void daemon_unlock(struct ctd *d);
void daemon_sched(const struct ctd_conf *conf);
int  daemon_signals(struct ctd *d);     /* TERM/INT/HUP/CHLD via the loop, PIPE ignored */
/* Fork once; the parent sends MAINPID and returns 1 (it then exits 0), the
 * child detaches and returns 0; -1 on failure (logged). */
int  daemon_fork(struct ctd *d);
void daemon_notify(struct ctd *d, const char *state);
void daemon_watchdog_prepare(struct ctd *d);    /* before fork */
void daemon_watchdog_start(struct ctd *d);      /* after fork */
void daemon_reap(struct ctd *d);                /* SIGCHLD */
/* Tear everything down in the order of spec §6.5; returns the exit status. */
int  daemon_finish(struct ctd *d);

/* ---- statistics text (stats.c) ---- */
struct cache_stats;
struct wire_rx_stats;
struct seq_stats;
struct nl_stats;

void stats_uptime(char *buf, size_t len, uint64_t secs);
void stats_fmt_cache(FILE *f, const char *name, const struct cache_stats *s);
void stats_fmt_bypass(FILE *f, const struct cache_stats *s);
void stats_fmt_inject(FILE *f, const struct cache_stats *s);
void stats_fmt_cache_ext(FILE *f, const char *name, const struct cache_stats *s);
void stats_fmt_traffic(FILE *f, uint64_t bytes, uint64_t packets);
void stats_fmt_msgtrack(FILE *f, uint64_t malformed, uint64_t lost);
void stats_fmt_network(FILE *f, const struct wire_rx_stats *rx,
		       uint64_t tx_malformed, const struct seq_stats *seq);
void stats_fmt_runtime(FILE *f, uint64_t uptime, const struct nl_stats *nl,
		       const struct runtime_stats *rt);
void stats_fmt_process(FILE *f, const struct ctd *d);
/* The whole reply to a -s request (codes 21, 28-32, 35-37), mode aware.
 * Writes nothing for requests the mode does not serve. */
void stats_print(struct ctd *d, int req, FILE *f);

/* ---- stats mode (stats_mode.c) ---- */
int  stats_mode_init(struct ctd *d);
int  stats_mode_new(struct ctd *d);     /* the cache only, no netlink (tests) */
void stats_mode_fini(struct ctd *d);
struct cache *stats_mode_cache(const struct ctd *d);
void stats_mode_flush(struct ctd *d);           /* -f internal */
void stats_mode_resync(struct ctd *d);          /* -R */
void stats_mode_flush_kernel(struct ctd *d);    /* -F */
uint64_t stats_mode_bytes(const struct ctd *d);
uint64_t stats_mode_packets(const struct ctd *d);
const struct nl_sink *stats_mode_sink(void);

/* ---- OpenMetrics text (metrics.c), beyond upstream: -s metrics ---- */
void metrics_print(struct ctd *d, FILE *f);

/* Clean shutdown: -k, SIGTERM, SIGINT (daemon.c). */
void ctd_shutdown(struct ctd *d);

#endif
