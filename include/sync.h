/*
 * The sync engine: internal and external caches, the tx and resend queues,
 * and the three modes (FT-FW, ALARM, NOTRACK) behind one ops table.
 * It is the nl_sink of a sync-mode daemon and the receiver of channel data.
 * Owned by src/sync.c, src/sync_ftfw.c, src/sync_alarm.c, src/sync_notrack.c,
 * src/queue.c, src/seqtrack.c, src/commit.c, src/cache.c.
 */
#ifndef CTD_SYNC_H
#define CTD_SYNC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "nl.h"
#include "wire.h"

struct ctd;
struct sync;
struct ctl_client;

struct seq_stats {                  /* -s network "sequence tracking" */
	uint64_t lost, before;
};

/* Everything a sync-mode daemon needs: caches, channels, nl_open() with
 * this engine as sink, the start-up kernel dump, timers. Logs the start-up
 * lines; returns -1 after logging the cause. */
int  sync_init(struct ctd *d);
void sync_fini(struct ctd *d);
const struct nl_sink *sync_nl_sink(void);

/* Client requests (ctl.c dispatches here). Text replies go to `out`
 * (ctl_client_write); commit replies when done (ctl_client_finish). */
void sync_commit(struct ctd *d, bool ct, bool exp, struct ctl_client *c);
void sync_flush_caches(struct ctd *d, bool internal, bool external, bool exp);
void sync_resync_kernel(struct ctd *d, bool ct, bool exp);   /* -R */
void sync_request_resync(struct ctd *d);                     /* -n */
void sync_send_bulk(struct ctd *d);                          /* -B */
void sync_schedule_purge(struct ctd *d);                     /* -t */
void sync_flush_kernel(struct ctd *d, bool ct, bool exp);    /* -F */
bool sync_commit_running(const struct ctd *d);

/* Statistics access for -s. */
const struct wire_rx_stats *sync_rx_stats(const struct ctd *d);
const struct seq_stats *sync_seq_stats(const struct ctd *d);
struct cache *sync_cache(const struct ctd *d, bool external, bool exp);
int  sync_print_rsqueue(const struct ctd *d, char *buf, size_t len);
int  sync_print_queues(const struct ctd *d, char *buf, size_t len);
uint64_t sync_traffic_bytes(const struct ctd *d);
uint64_t sync_traffic_packets(const struct ctd *d);

#endif
