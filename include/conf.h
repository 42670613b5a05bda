/*
 * The parsed configuration: plain data, no globals. The parser (parse.y,
 * lex.l) fills a fresh struct ctd_conf; conf.c applies documented defaults,
 * validates, and prints it back (config test, round-trip tests).
 */
#ifndef CTD_CONF_H
#define CTD_CONF_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <net/if.h>
#include "obj.h"

#define CONF_PATH_MAX      256   /* LogFile, LockFile */
#define CONF_UNIX_PATH_MAX 108   /* sun_path incl. NUL */
#define CONF_MAX_CHANNELS  4
#define CONF_DEFAULT_FILE  "/etc/conntrackd/conntrackd.conf"
#define CONF_HASH_MAX      (1u << 26) /* HashSize/HashLimit ceiling: beyond is a typo */
#define CONF_FILE_MAX      (16u << 20) /* largest config file read */

enum sync_mode { SYNC_MODE_NONE = 0, SYNC_MODE_FTFW, SYNC_MODE_ALARM, SYNC_MODE_NOTRACK };
enum chan_kind { CHAN_NONE = 0, CHAN_MCAST, CHAN_UDP, CHAN_TCP };
enum filter_policy { FILTER_NONE = 0, FILTER_ACCEPT, FILTER_IGNORE };

struct conf_channel {
	enum chan_kind kind;
	bool     is_default;
	int      family;                 /* AF_INET / AF_INET6 of the addresses */
	union addr addr;                 /* mcast: group; udp/tcp: local bind address */
	bool     have_addr;
	union addr dest;                 /* udp/tcp: peer */
	bool     have_dest;
	union addr ifaddr;               /* mcast IPv4_interface */
	bool     have_ifaddr;
	char     ifname[IF_NAMESIZE];
	unsigned ifindex;                /* looked up at parse time, 0 if unknown */
	uint16_t port;                   /* mcast Group / udp,tcp Port */
	uint32_t sndbuf, rcvbuf;         /* 0 = system default */
	bool     checksum;               /* default on */
	int      line;                   /* where the block starts, for messages */
};

struct conf_addr_filter {
	int      family;
	union addr addr;
	uint8_t  prefix;                 /* 32/128 for hosts */
};

struct conf_filter {
	bool     present;
	bool     kernelspace;            /* From Kernelspace */
	enum filter_policy proto_policy;
	uint8_t  protos[256];            /* 1 = listed */
	enum filter_policy addr_policy;
	struct conf_addr_filter *addrs;
	unsigned naddrs;
	enum filter_policy state_policy;
	uint16_t tcp_states;             /* bit n = kernel TCP state n listed */
};

struct conf_helper_policy {
	char     name[16];
	uint32_t expect_max, expect_timeout;
};

struct conf_helper {
	char     name[16];
	int      l3;                     /* AF_INET / AF_INET6 */
	uint8_t  l4;
	uint32_t queue_num, queue_len;
	struct conf_helper_policy *policies;
	unsigned npolicies;
	int      line;
};

struct ctd_conf {
	char     file[4096];             /* the file that was read */

	/* General */
	uint32_t hashsize;               /* default 65536 */
	uint32_t hashlimit;              /* default 262144 */
	char     logfile[CONF_PATH_MAX + 1];     /* "" = no log file */
	int      syslog_facility;        /* -1 = off, else LOG_DAEMON / LOG_LOCALn */
	char     lockfile[CONF_PATH_MAX + 1];    /* default /var/lock/conntrackd.lock */
	char     unix_path[CONF_UNIX_PATH_MAX];  /* "" = none */
	uint32_t unix_mode;              /* beyond upstream: socket mode, default 0600 */
	uint32_t nl_bufsize;             /* 0 = system default */
	uint32_t nl_bufsize_max;         /* 0 = no growth */
	uint32_t nl_overrun_resync;      /* seconds, 0 = disabled; default 30 */
	bool     nl_events_reliable;
	uint32_t poll_secs;              /* 0 = event mode */
	uint32_t event_iteration_limit;  /* default 100 */
	int      sched_policy;           /* -1 = default (SCHED_RR 99) */
	int      sched_priority;
	bool     sched_type_set;
	bool     systemd;                /* default on */
	struct conf_filter filter;

	/* Sync */
	bool     has_sync;
	enum sync_mode mode;             /* NONE -> defaults to FTFW with a warning */
	uint32_t resend_queue_size;      /* FTFW, default 131072 */
	uint32_t ack_window_size;        /* FTFW, default 300 */
	uint32_t refresh_time;           /* ALARM, default 60 */
	uint32_t cache_timeout;          /* ALARM, default 180 */
	uint32_t commit_timeout;         /* 0 = unset */
	uint32_t purge_timeout;          /* default 60 */
	bool     startup_resync;
	bool     disable_internal_cache; /* NOTRACK only */
	bool     disable_external_cache; /* FTFW, NOTRACK */
	bool     tcp_window_tracking;
	bool     expectation_sync;       /* on, or a helper list */
	char   (*exp_helpers)[CT_HELPER_MAX]; /* NULL/0 = all helpers */
	unsigned nexp_helpers;
	uint32_t error_queue_length;     /* TCP, default 128 */
	struct conf_channel channels[CONF_MAX_CHANNELS];
	unsigned nchannels;
	unsigned default_channel;        /* index into channels */

	/* Beyond upstream: authenticated sync (doc/auth.md). */
	char     auth_key_file[CONF_PATH_MAX + 1]; /* "" = off */

	/* Stats */
	bool     has_stats;
	char     stats_logfile[CONF_PATH_MAX + 1];
	int      stats_syslog_facility;  /* -1 = off */

	/* Helper (parsed, refused at start-up) */
	bool     has_helper;
	bool     helper_setup;           /* Helper { Setup on } */
	struct conf_helper *helpers;
	unsigned nhelpers;
};

/*
 * Parse `path` into a freshly allocated configuration. Every error is
 * reported through `err` (one line each, "file:line: message"); warnings
 * go to `warn`. Returns NULL if there was any error. Both streams may be
 * the same. The result has defaults applied and passed validation.
 */
struct ctd_conf *conf_load(const char *path, FILE *err, FILE *warn);
/* Same from a memory buffer (unit tests, fuzzing); `name` is used in messages. */
struct ctd_conf *conf_load_buffer(const char *name, const char *buf, size_t len,
				  FILE *err, FILE *warn);
void conf_free(struct ctd_conf *conf);
/* Print the effective configuration in conntrackd.conf syntax (parses back equal). */
void conf_print(const struct ctd_conf *conf, FILE *out);
/* True if expectation events from helper `name` are to be synced. */
bool conf_exp_helper_ok(const struct ctd_conf *conf, const char *name);
/* True if both describe the same effective configuration (`file` ignored). */
bool conf_equal(const struct ctd_conf *a, const struct ctd_conf *b);
/* Names as the configuration writes them; NULL if unknown. */
const char *conf_facility_name(int facility);
const char *conf_proto_name(int proto, char *buf, size_t size);

#endif
