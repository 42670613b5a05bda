/*
 * The daemon context: the one object every module receives. No module keeps
 * state in globals; everything that lives as long as the daemon hangs here.
 */
#ifndef CTD_CTD_H
#define CTD_CTD_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "conf.h"
#include "ev.h"

struct nl;
struct sync;
struct chanset;
struct ctl;
struct stats_mode;

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
};

/* Clean shutdown: -k, SIGTERM, SIGINT (daemon.c). */
void ctd_shutdown(struct ctd *d);

#endif
