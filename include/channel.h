/*
 * Sync channels (sync-protocol.md §9): up to four dedicated links of one
 * kind (multicast, UDP or TCP), each with a sending and a receiving socket.
 * All receiving sockets are watched; only the current channel sends.
 * Owned by src/channel.c (core, batching, failover), src/channel_mcast.c,
 * src/channel_udp.c, src/channel_tcp.c, src/link.c (rtnetlink watcher).
 */
#ifndef CTD_CHANNEL_H
#define CTD_CHANNEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "conf.h"

struct ctd;
struct channel;
struct chanset;

struct chan_stats {
	uint64_t bytes_sent, bytes_recv, msgs_sent, msgs_recv;
	uint64_t err_sent, err_recv;
};

/*
 * Receive callback: one chunk of bytes from channel `idx` (a whole datagram,
 * or for TCP whatever recv() returned, already appended to the channel's
 * reassembly buffer). The callback returns how many bytes it consumed; for
 * TCP the rest is kept for the next read. `from` is the sender, printable
 * with chanset_peer_str().
 */
typedef size_t (*chan_recv_cb)(struct ctd *d, unsigned idx, const uint8_t *data,
			       size_t len, const void *from, size_t fromlen);

/* Open every configured channel and register its sockets in d->loop. */
struct chanset *chanset_open(struct ctd *d, chan_recv_cb cb);
void chanset_close(struct chanset *cs);

/*
 * Append one complete message to the current channel's send buffer; the
 * buffer is sent as one datagram (or TCP chunk) when the next message would
 * not fit in MTU-28 (UDP) / MTU-40 (TCP) bytes. Returns 0, -1 on error.
 */
int  chanset_send(struct chanset *cs, const void *msg, size_t len);
/* Send whatever is buffered now (end of a queue drain). */
void chanset_flush(struct chanset *cs);
/* Largest message that fits one datagram on the current channel. */
size_t chanset_mtu_payload(const struct chanset *cs);

/* Make channel idx the current sender (a message arrived on it). */
void chanset_set_current(struct chanset *cs, unsigned idx);
/* The peer talked on link idx: make it current if its interface is usable. */
void chanset_follow_peer(struct chanset *cs, unsigned idx);
unsigned chanset_current(const struct chanset *cs);
unsigned chanset_count(const struct chanset *cs);

/* Text blocks for -s, -s network and -s link, exactly as 1.4.x prints them. */
int  chanset_print_current(const struct chanset *cs, char *buf, size_t len);
int  chanset_print_links(const struct chanset *cs, char *buf, size_t len);
const struct chan_stats *chanset_stats(const struct chanset *cs, unsigned idx);
/* "10.0.0.1:3780" for messages naming a peer. */
const char *chanset_peer_str(const void *from, size_t fromlen, char *buf, size_t len);
/* Error queue (TCP) stats for -s queue: current, max, no-space errors. */
void chanset_errq_stats(const struct chanset *cs, uint64_t *cur, uint64_t *max, uint64_t *nospace);

/*
 * Authenticated sync (doc/auth.md), on with Sync { Options { AuthKeyFile } }.
 * Refused datagrams (TCP: records) are counted by reason over all channels.
 */
struct chan_auth_stats {
	uint64_t accepted;
	uint64_t no_trailer, unknown_key, bad_mac, replay, too_old;
	uint64_t bad_record, error;
};
bool chanset_auth_on(const struct chanset *cs);
const struct chan_auth_stats *chanset_auth_stats(const struct chanset *cs);
/* The "authentication statistics:" block for -s network; writes nothing
 * (returns 0) when authentication is off, so plain output stays 1.4.x's. */
int  chanset_print_auth(const struct chanset *cs, char *buf, size_t len);

/*
 * Stream reassembly (TCP): bytes of one accepted connection accumulate here
 * until the receive callback consumes whole messages. Exposed for the
 * fuzzer (tests/fuzz/fuzz_tcp.c), which drives it without sockets.
 */
#define CHAN_RBUF_SIZE 65536

struct chan_rbuf {
	uint8_t *buf;                   /* CHAN_RBUF_SIZE bytes */
	size_t   len;                   /* bytes held */
	uint64_t resets;                /* stream dropped: callback made no progress on a full buffer */
};

int  chan_rbuf_init(struct chan_rbuf *r);
void chan_rbuf_free(struct chan_rbuf *r);
void chan_rbuf_reset(struct chan_rbuf *r);
/*
 * `added` bytes were just written at buf+len (by recv()): hand the held
 * bytes to cb until it stops consuming; keep the unconsumed tail.
 */
void chan_rbuf_deliver(struct chan_rbuf *r, size_t added, chan_recv_cb cb,
		       struct ctd *d, unsigned idx, const void *from, size_t fromlen);
/* As if `len` bytes arrived in reads of at most the free space each. */
void chan_rbuf_push(struct chan_rbuf *r, const uint8_t *data, size_t len,
		    chan_recv_cb cb, struct ctd *d, unsigned idx,
		    const void *from, size_t fromlen);

/*
 * ---- Internal to the channel modules (channel*.c, link.c) ----
 * Everything below is shared between the transport files and not meant
 * for other modules.
 */
#include <sys/socket.h>
#include "auth.h"
#include "ev.h"

struct chan_chunk {                     /* TCP error queue element */
	struct chan_chunk *next;
	size_t   len, off;              /* off: bytes already sent */
	bool     cont;                  /* rest of a message begun on this connection */
	uint8_t  data[];
};

struct chan_errq {
	struct chan_chunk *head, *tail;
	uint64_t cur, max, nospace;
};

struct channel {
	struct chanset *cs;
	unsigned idx;
	const struct conf_channel *cc;
	int      sfd;                   /* sending socket (TCP: outgoing connection) */
	int      rfd;                   /* receiving socket (TCP: listener) */
	int      afd;                   /* TCP: accepted peer, -1 if none */
	unsigned ifindex;
	size_t   mtu;
	size_t   bufsize;               /* MTU-28 (datagram) or MTU-40 (TCP) */
	struct sockaddr_storage dst;    /* where sends go */
	socklen_t dstlen;
	struct sockaddr_storage peer;   /* TCP: accepted peer */
	socklen_t peerlen;
	struct chan_stats st;
	struct ev_timer coalesce;       /* datagram rfd: re-arms it after a thin read */
	unsigned coalesce_ms;           /* that delay, 0 = none (small receive buffer) */
	/* TCP client */
	bool     connected, connecting;
	struct ev_timer reconnect;
	struct chan_rbuf rbuf;
	struct chan_errq errq;
	/* Authentication: receive window of this link (one sending peer; kept
	 * across TCP reconnections, the sender's counter only grows). */
	struct auth_replay replay;
	bool     auth_drop;             /* TCP: refused record, reset the stream */
	char     err[160];              /* why opening failed */
};

/* Transport hooks, called by channel.c. Open returns 0, or -1 with c->err set. */
int  chan_mcast_open(struct channel *c);
int  chan_udp_open(struct channel *c);
int  chan_tcp_open(struct channel *c);
void chan_tcp_close(struct channel *c);
/* Send one chunk on c: 0 sent or queued, -1 lost. */
int  chan_tcp_send(struct channel *c, const uint8_t *data, size_t len);
bool chan_tcp_server_connected(const struct channel *c);

/* Helpers in channel.c for the transports. */
struct ctd *chan_ctd(const struct channel *c);
int  chan_err(struct channel *c, const char *what, int err);
socklen_t chan_sockaddr(struct sockaddr_storage *ss, int family,
			const union addr *a, uint16_t port, unsigned scope);
void chan_set_bufs(struct channel *c, int fd, bool snd);
void chan_dgram_readable(int fd, int events, void *arg);
size_t chan_deliver(const struct channel *c, const uint8_t *data, size_t len,
		    const void *from, size_t fromlen);
uint8_t *chan_rxbuf(struct channel *c, size_t *cap);
/* Authenticated mode: verify a datagram in place; true = deliver the first
 * *len bytes (shortened to the messages), false = refused (counted, logged). */
bool chan_auth_on(const struct channel *c);
bool chan_auth_datagram(struct channel *c, const uint8_t *data, size_t *len,
			const void *from, socklen_t fromlen);
/* TCP receive callback for authenticated records (see chan_recv_cb). */
size_t chan_auth_stream(struct channel *c, const uint8_t *data, size_t len);

/* link.c: rtnetlink link-state watcher feeding chanset_link_event(). */
struct link_watch;
struct link_watch *link_watch_open(struct chanset *cs, struct ev_loop *loop);
void link_watch_close(struct link_watch *w);
/* An interface changed (flags from RTM_NEWLINK, 0 if deleted). */
void chanset_link_event(struct chanset *cs, unsigned ifindex, unsigned flags);
/* Current interface flags of channel idx (SIOCGIFFLAGS), 0 if unknown. */
unsigned chanset_if_flags(const struct chanset *cs, unsigned idx);

#endif
