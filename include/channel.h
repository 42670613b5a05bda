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

#endif
