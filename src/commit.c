/*
 * Commit (sync-protocol.md §10.4): write the external caches into the
 * kernel. Runs in steps of COMMIT_STEP buckets per loop turn, one kernel
 * batch per step, so sync traffic and clients keep being served; the
 * requesting client is answered when everything is done.
 *
 * Unlike 1.4.7 (config-and-cli.md §5.4) the step machine is the same for
 * every HashSize: expectations are always committed when asked and the
 * "in progress" state always ends.
 *
 * Also here, the other writes to the kernel a client asks for: -F and the
 * -t purge.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/wait.h>

#include "conf.h"
#include "ctd.h"
#include "ctl.h"
#include "log.h"
#include "nl.h"
#include "objconv.h"
#include "sync_priv.h"

#define COMMIT_STEP 8192

enum { PH_CT_PLAIN, PH_CT_RELATED, PH_EXP, PH_DONE };

struct commit_state {
	struct sync       *s;
	struct ctl_client *client;
	bool               do_ct, do_exp;
	int                phase;
	uint32_t           pos;
	uint32_t           now;         /* monotonic seconds at this step */
	uint64_t           issued, failed;
	struct timespec    start;
	struct ev_timer    timer;
};

void commit_err_cb(void *arg, enum kop op, const void *obj, int err)
{
	struct sync *s = arg;
	char text[1024];

	if (s->commit)
		s->commit->failed++;
	log_err("commit-%s: %s", op == KOP_CT_DELETE || op == KOP_EXP_DELETE ?
		"destroy" : "create", strerror(err));
	if (op <= KOP_CT_DELETE)
		ct_snprintf_timeout(text, sizeof(text), obj);
	else
		exp_snprintf_timeout(text, sizeof(text), obj);
	log_record(false, text);
	if (op == KOP_EXP_CREATE && err == ENOENT)
		log_warn("expectation not committed: its master conntrack is not in the kernel");
}

/* A related conntrack needs its master in the kernel first (pass 2). */
static bool ct_related(const struct ct *ct)
{
	if (!(ct->have & CT_H_MASTER) || ct->ext == NULL)
		return false;
	return (ct->have & CT_H_MASTER_PORTS) || !l4_has_ports(ct->ext->master.l4);
}

/* CommitTimeout, else what is left of the cached timeout (60 s if none). */
static uint32_t commit_timeout(const struct commit_state *cs,
			       const struct cache_obj *o, bool has, uint32_t cached)
{
	uint32_t ct = cs->s->d->conf->commit_timeout;
	int64_t left;

	if (ct)
		return ct;
	if (!has)
		return 60;      /* 1.4.x sends a request the kernel refuses */
	left = (int64_t)cached - (int64_t)(uint32_t)(cs->now - o->updated);
	if (left == 0)
		return cached;
	return left < 0 ? 60 : (uint32_t)left;
}

static int commit_ct_one(struct cache_obj *o, void *arg)
{
	struct commit_state *cs = arg;
	uint64_t xbuf[CACHE_CT_XBUF / 8 + 1];
	struct ct tmp;
	const struct ct *ct = cache_ct_view(o, &tmp, xbuf);
	bool rel = ct_related(ct);

	if (rel != (cs->phase == PH_CT_RELATED))
		return 0;
	cs->issued++;
	if (kbatch_ct(cs->s->commit_kb, KOP_CT_CREATE, ct,
		      commit_timeout(cs, o, ct->have & CT_H_TIMEOUT, ct->timeout),
		      &cs->s->kopts) < 0)
		cs->failed++;
	return 0;
}

static int commit_exp_one(struct cache_obj *o, void *arg)
{
	struct commit_state *cs = arg;
	const struct exp *e = cobj_cexp(o);

	cs->issued++;
	if (kbatch_exp(cs->s->commit_kb, KOP_EXP_CREATE, e,
		       commit_timeout(cs, o, e->have & EXP_H_TIMEOUT, e->timeout)) < 0)
		cs->failed++;
	return 0;
}

static void phase_report(struct commit_state *cs, bool exp)
{
	struct timespec end;
	uint64_t ok = cs->issued - (cs->failed > cs->issued ? cs->issued : cs->failed);
	long sec, usec;

	clock_gettime(CLOCK_MONOTONIC, &end);
	sec = end.tv_sec - cs->start.tv_sec;
	usec = (end.tv_nsec - cs->start.tv_nsec) / 1000;
	if (usec < 0) {
		usec += 1000000;
		sec--;
	}
	if (exp) {
		log_notice("Committed %llu new expectations", (unsigned long long)ok);
		if (cs->failed)
			log_notice("%llu expectations can't be committed",
				   (unsigned long long)cs->failed);
	} else {
		log_notice("Committed %llu new entries", (unsigned long long)ok);
		if (cs->failed)
			log_notice("%llu entries can't be committed",
				   (unsigned long long)cs->failed);
	}
	log_notice("commit has taken %lu.%06lu seconds", (unsigned long)sec,
		   (unsigned long)usec);
	cs->issued = cs->failed = 0;
	clock_gettime(CLOCK_MONOTONIC, &cs->start);
}

static void commit_end(struct sync *s)
{
	struct commit_state *cs = s->commit;

	if (cs == NULL)
		return;
	if (s->d->loop)
		ev_timer_del(s->d->loop, &cs->timer);
	if (cs->client)
		ctl_client_finish(cs->client);
	s->commit = NULL;
	free(cs);
}

/* One step; returns true when the whole commit is finished. */
static bool commit_step(struct commit_state *cs)
{
	struct sync *s = cs->s;
	int end;

	cs->now = cache_now();
	if (cs->phase == PH_EXP)
		end = cache_iterate_step(s->ext_exp, &cs->pos, COMMIT_STEP, commit_exp_one, cs);
	else
		end = cache_iterate_step(s->ext_ct, &cs->pos, COMMIT_STEP, commit_ct_one, cs);
	if (kbatch_flush(s->commit_kb) < 0)
		log_err("commit: kernel batch failed: %s", strerror(errno));
	if (!end)
		return false;
	cs->pos = 0;
	if (cs->phase == PH_CT_PLAIN) {
		cs->phase = PH_CT_RELATED;
		return false;
	}
	if (cs->phase == PH_CT_RELATED) {
		phase_report(cs, false);
		if (cs->do_exp) {
			cs->phase = PH_EXP;
			return false;
		}
	} else {
		phase_report(cs, true);
	}
	cs->phase = PH_DONE;
	return true;
}

static void commit_timer_cb(struct ev_timer *t, void *arg)
{
	struct commit_state *cs = arg;

	if (commit_step(cs))
		commit_end(cs->s);
	else
		ev_timer_add(cs->s->d->loop, t, 0);
}

void sync_commit(struct ctd *d, bool ct, bool exp, struct ctl_client *c)
{
	struct sync *s = d->sync;
	struct commit_state *cs;

	if (s == NULL) {
		if (c)
			ctl_client_finish(c);
		return;
	}
	if (s->commit != NULL) {
		log_notice("commit already in progress, skipping");
		if (c)
			ctl_client_finish(c);
		return;
	}
	if (ct && exp)
		log_notice("committing all external caches");
	else if (ct)
		log_notice("committing conntrack cache");
	else if (exp)
		log_notice("committing expectation cache");
	exp = exp && d->conf->expectation_sync;
	if ((!ct && !exp) || d->conf->disable_external_cache || s->commit_kb == NULL) {
		if (c)
			ctl_client_finish(c);
		return;
	}
	/* A commit makes this node primary: a scheduled purge is obsolete. */
	if (d->loop && ev_timer_pending(&s->purge_timer))
		ev_timer_del(d->loop, &s->purge_timer);
	cs = calloc(1, sizeof(*cs));
	if (cs == NULL) {
		log_err("commit: %s", strerror(ENOMEM));
		if (c)
			ctl_client_finish(c);
		return;
	}
	cs->s = s;
	cs->client = c;
	cs->do_ct = ct;
	cs->do_exp = exp;
	cs->phase = ct ? PH_CT_PLAIN : PH_EXP;
	clock_gettime(CLOCK_MONOTONIC, &cs->start);
	ev_timer_init(&cs->timer, commit_timer_cb, cs);
	s->commit = cs;
	if (d->loop) {
		ev_timer_add(d->loop, &cs->timer, 0);
	} else {
		while (!commit_step(cs))
			;
		commit_end(s);
	}
}

bool sync_commit_running(const struct ctd *d)
{
	return d->sync != NULL && d->sync->commit != NULL;
}

/* Shutdown: ctl_close() left a waiting client for us to finish (and free). */
void commit_free(struct sync *s)
{
	commit_end(s);
}

/* ---- -F and -t ---- */

static bool flush_pred(const struct ct *ct, void *arg)
{
	return nl_filter_ct(arg, ct);
}

static void flush_kernel_now(struct ctd *d, bool ct, bool exp)
{
	if (ct && kernel_flush_ct(flush_pred, d, &d->portid_flush) < 0)
		log_err("cannot flush kernel conntrack table: %s", strerror(errno));
	if (exp && kernel_flush_exp() < 0)
		log_err("cannot flush kernel expect table: %s", strerror(errno));
}

static void flush_done(struct ctd *d, pid_t pid, int status, void *arg)
{
	(void)d; (void)pid; (void)arg;
	if (WIFEXITED(status) && (WEXITSTATUS(status) & 1))
		log_err("cannot flush kernel conntrack table");
	if (WIFEXITED(status) && (WEXITSTATUS(status) & 2))
		log_err("cannot flush kernel expect table");
}

/*
 * -F and -t delete from the kernel in a child, as 1.4.x does: a 200k table
 * takes seconds and the loop must keep syncing meanwhile. The child's
 * first netlink socket (its kbatch) is auto-bound to the child's pid,
 * which is how the parent tells the DESTROY events it causes (FLUSH
 * origin: no DESTROY sent to the peer).
 */
static void flush_kernel(struct ctd *d, bool ct, bool exp)
{
	pid_t pid = fork();

	if (pid < 0) {
		log_err("fork has failed: %s", strerror(errno));
		flush_kernel_now(d, ct, exp);
		return;
	}
	if (pid == 0) {
		int rc = 0;

		/* Drop inherited descriptors: a client waiting for EOF on its
		 * connection must not wait for this child too. */
		close_range(3, ~0u, 0);
		if (ct && kernel_flush_ct(flush_pred, d, &d->portid_flush) < 0)
			rc = 1;
		if (exp && kernel_flush_exp() < 0)
			rc |= 2;
		_exit(rc);
	}
	d->portid_flush = (uint32_t)pid;
	ctd_child_add(d, pid, "flush", flush_done, NULL);
}

void sync_flush_kernel(struct ctd *d, bool ct, bool exp)
{
	exp = exp && d->conf->expectation_sync;
	if (ct)
		log_notice("flushing kernel conntrack table");
	if (exp)
		log_notice("flushing kernel expect table");
	if (ct || exp)
		flush_kernel(d, ct, exp);
}

static void purge_cb(struct ev_timer *t, void *arg)
{
	struct ctd *d = arg;
	struct sync *s = d->sync;

	(void)t;
	log_notice("flushing kernel conntrack table (scheduled)");
	flush_kernel(d, true, false);
	if (s != NULL)
		sync_flush_internal(s, s->int_ct);
}

void sync_schedule_purge(struct ctd *d)
{
	struct sync *s = d->sync;
	uint32_t secs = d->conf->purge_timeout;

	if (s == NULL || ev_timer_pending(&s->purge_timer))
		return;
	log_notice("flushing conntrack table in %u secs", secs);
	ev_timer_init(&s->purge_timer, purge_cb, d);
	ev_timer_add(d->loop, &s->purge_timer, (uint64_t)secs * 1000);
}
