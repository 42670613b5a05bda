/*
 * What each control request does: the table from request codes to sync,
 * stats-mode and statistics calls. The server (ctl.c) decides before this
 * whether a request is known and when the reply is complete.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctd.h"
#include "ctl_priv.h"
#include "sync.h"

static void reply_stats(struct ctl_client *c, int req)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	if (!f)
		return;
	if (req == CTL_STATS_METRICS)
		metrics_print(c->srv->d, f);
	else
		stats_print(c->srv->d, req, f);
	fclose(f);
	ctl_buf_append(c, text, len);
	free(text);
}

void ctl_client_refuse(struct ctl_client *c, const char *reason)
{
	ctl_buf_append(c, "", 1);
	ctl_buf_append(c, reason, strlen(reason));
	ctl_buf_append(c, "\n", 1);
}

/* Why the sync engine will ignore this request, or NULL. The engine logs
 * the same reason in 1.4.x's words; the client gets it too. */
static const char *sync_refusal(const struct ctd *d, int req)
{
	bool commit = sync_commit_running(d);

	switch (req) {
	case CTL_CT_COMMIT:
	case CTL_EXP_COMMIT:
	case CTL_ALL_COMMIT:
		return commit ? "commit already in progress, skipping" : NULL;
	case CTL_CT_FLUSH_CACHE:
	case CTL_CT_FLUSH_EXT_CACHE:
	case CTL_ALL_FLUSH_CACHE:
		return commit ? "ignoring flush command, commit still in progress" : NULL;
	case CTL_SEND_BULK:
	case CTL_REQUEST_DUMP:
		return d->conf->mode == SYNC_MODE_ALARM ?
		       "bulk send and resync requests do nothing in ALARM mode" : NULL;
	case CTL_CT_RESYNC_MASTER:
	case CTL_ALL_RESYNC_MASTER:
		return d->conf->disable_internal_cache ?
		       "resync is unsupported in this mode" : NULL;
	default:
		return NULL;
	}
}

static void dispatch_sync(struct ctl_client *c, int req)
{
	struct ctd *d = c->srv->d;
	bool xs = d->conf->expectation_sync;
	const char *why = sync_refusal(d, req);

	if (why)
		ctl_client_refuse(c, why);

	switch (req) {
	case CTL_CT_FLUSH_MASTER:   sync_flush_kernel(d, true, false); break;
	case CTL_EXP_FLUSH_MASTER:  if (xs) sync_flush_kernel(d, false, true); break;
	case CTL_ALL_FLUSH_MASTER:  sync_flush_kernel(d, true, xs); break;
	case CTL_CT_RESYNC_MASTER:  sync_resync_kernel(d, true, false); break;
	case CTL_EXP_RESYNC_MASTER: if (xs) sync_resync_kernel(d, false, true); break;
	case CTL_ALL_RESYNC_MASTER: sync_resync_kernel(d, true, xs); break;
	case CTL_CT_DUMP_INTERNAL:
	case CTL_CT_DUMP_INT_XML:
		if (d->conf->disable_internal_cache)
			ctl_live_dump(c);
		else
			ctl_dump_start(c, false, false, req == CTL_CT_DUMP_INTERNAL ?
				   OBJ_FMT_PLAIN : OBJ_FMT_XML);
		break;
	case CTL_CT_DUMP_EXTERNAL:  ctl_dump_start(c, true, false, OBJ_FMT_PLAIN); break;
	case CTL_CT_DUMP_EXT_XML:   ctl_dump_start(c, true, false, OBJ_FMT_XML); break;
	/* Plain expectation dumps need ExpectationSync; XML ones are always
	 * answered (1.4.x). */
	case CTL_EXP_DUMP_INTERNAL: if (xs) ctl_dump_start(c, false, true, OBJ_FMT_PLAIN); break;
	case CTL_EXP_DUMP_EXTERNAL: if (xs) ctl_dump_start(c, true, true, OBJ_FMT_PLAIN); break;
	case CTL_EXP_DUMP_INT_XML:  ctl_dump_start(c, false, true, OBJ_FMT_XML); break;
	case CTL_EXP_DUMP_EXT_XML:  ctl_dump_start(c, true, true, OBJ_FMT_XML); break;
	case CTL_CT_COMMIT:
	case CTL_EXP_COMMIT:
	case CTL_ALL_COMMIT:
		c->awaiting = true;
		sync_commit(d, req != CTL_EXP_COMMIT, req != CTL_CT_COMMIT, c);
		break;
	case CTL_CT_FLUSH_CACHE:    sync_flush_caches(d, true, true, false); break;
	case CTL_CT_FLUSH_INT_CACHE: sync_flush_caches(d, true, false, false); break;
	case CTL_CT_FLUSH_EXT_CACHE: sync_flush_caches(d, false, true, false); break;
	case CTL_ALL_FLUSH_CACHE:   sync_flush_caches(d, true, true, xs); break;
	case CTL_SEND_BULK:         sync_send_bulk(d); break;
	case CTL_REQUEST_DUMP:      sync_request_resync(d); break;
	case CTL_RESET_TIMERS:      sync_schedule_purge(d); break;
	default:                    reply_stats(c, req); break;
	}
}

static void dispatch_stats(struct ctl_client *c, int req)
{
	struct ctd *d = c->srv->d;

	switch (req) {
	case CTL_CT_DUMP_INTERNAL:  ctl_dump_start(c, false, false, OBJ_FMT_PLAIN); break;
	case CTL_CT_DUMP_INT_XML:   ctl_dump_start(c, false, false, OBJ_FMT_XML); break;
	case CTL_CT_FLUSH_INT_CACHE: stats_mode_flush(d); break;
	case CTL_CT_RESYNC_MASTER:
	case CTL_ALL_RESYNC_MASTER: stats_mode_resync(d); break;
	case CTL_CT_FLUSH_MASTER:
	case CTL_ALL_FLUSH_MASTER:  stats_mode_flush_kernel(d); break;
	default:                    reply_stats(c, req); break;
	}
}

void ctl_dispatch(struct ctl_client *c, int req)
{
	struct ctd *d = c->srv->d;

	if (d->sync)
		dispatch_sync(c, req);
	else if (d->stats)
		dispatch_stats(c, req);
	else
		reply_stats(c, req);    /* runtime, process, metrics */
}
