/*
 * The UNIX control socket: conntrackd 1.4.x framing (one host-order int
 * request, text reply until close), served from the event loop without
 * ever blocking it. Owned by src/ctl.c (server),
 * src/ctl_dispatch.c, src/ctl_dump.c and src/ctl_client.c.
 */
#ifndef CTD_CTL_H
#define CTD_CTL_H

#include <stddef.h>
#include <stdint.h>

enum ctl_req {
	CTL_CT_FLUSH_MASTER = 0, CTL_CT_RESYNC_MASTER = 1,
	CTL_CT_DUMP_INTERNAL = 16, CTL_CT_DUMP_EXTERNAL = 17, CTL_CT_COMMIT = 18,
	CTL_CT_FLUSH_CACHE = 19, CTL_KILL = 20, CTL_STATS = 21, CTL_SEND_BULK = 22,
	CTL_REQUEST_DUMP = 23, CTL_CT_DUMP_INT_XML = 24, CTL_CT_DUMP_EXT_XML = 25,
	CTL_RESET_TIMERS = 26, CTL_DEBUG_INFO = 27, CTL_STATS_NETWORK = 28,
	CTL_STATS_CACHE = 29, CTL_STATS_RUNTIME = 30, CTL_STATS_LINK = 31,
	CTL_STATS_RSQUEUE = 32, CTL_CT_FLUSH_INT_CACHE = 33,
	CTL_CT_FLUSH_EXT_CACHE = 34, CTL_STATS_PROCESS = 35, CTL_STATS_QUEUE = 36,
	CTL_EXP_STATS = 37, CTL_EXP_FLUSH_MASTER = 38, CTL_EXP_RESYNC_MASTER = 39,
	CTL_EXP_DUMP_INTERNAL = 40, CTL_EXP_DUMP_EXTERNAL = 41, CTL_EXP_COMMIT = 42,
	CTL_ALL_FLUSH_MASTER = 43, CTL_ALL_RESYNC_MASTER = 44,
	CTL_ALL_FLUSH_CACHE = 45, CTL_ALL_COMMIT = 46,
	CTL_EXP_DUMP_INT_XML = 47, CTL_EXP_DUMP_EXT_XML = 48,
	/* Beyond upstream (documented in conntrackd.8). */
	CTL_STATS_METRICS = 200,    /* OpenMetrics text of every counter */
};

struct ctd;
struct ctl_client;

int  ctl_open(struct ctd *d);   /* bind/listen on General { UNIX { Path } } */
void ctl_close(struct ctd *d);

/* Reply text to a client (buffered, written as the socket allows). */
void ctl_client_write(struct ctl_client *c, const char *buf, size_t len);
void ctl_client_printf(struct ctl_client *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* The reply is complete: close once everything was written. */
void ctl_client_finish(struct ctl_client *c);

/*
 * A refused request (e.g. a flush while a commit runs) is answered with a
 * reply that starts with a NUL byte, then the reason and a newline.
 * conntrackd 1.4.x's client prints replies as C strings, so it shows
 * nothing, as before; ours prints the reason on stderr and exits with
 * CTL_EXIT_REFUSED (not 1, which keepalived scripts read as "daemon down").
 */
#define CTL_EXIT_REFUSED 2
void ctl_client_refuse(struct ctl_client *c, const char *reason);

/* Client role: send one request to the daemon and copy the reply to stdout.
 * Returns 0, or 1 if the daemon could not be reached (message logged). */
int  ctl_request(const char *path, int req);
/* Same, copying the reply to fd `out` (tests). */
int  ctl_request_fd(const char *path, int req, int out);

/* Limits of the server (beyond upstream, which served one blocking client). */
#define CTL_MAX_CLIENTS     64
#define CTL_READ_DEADLINE_MS 2000       /* the 4-byte request must arrive by then */
#define CTL_BUF_HIGH        (64 * 1024) /* stop producing a dump above this */
#define CTL_BUF_MAX         (16 * 1024 * 1024)  /* drop a client buffering more */

/* Request decoding, exposed for the fuzzer and tests: feed bytes as they
 * arrive; returns 1 with *req set once 4 bytes were seen, 0 for more. */
struct ctl_reqbuf {
	unsigned char b[4];
	unsigned      n;
};
int  ctl_req_feed(struct ctl_reqbuf *r, const void *data, size_t len, int *req);
/* True if the code names a request of §2.3 or CTL_STATS_METRICS. */
int  ctl_req_known(int req);
unsigned ctl_client_count(const struct ctd *d);



#endif
