/*
 * Commit (sync-protocol.md §10.4): write the external caches into the
 * kernel. Runs in steps of about COMMIT_STEP entries per loop turn, one
 * kernel batch per step, so sync traffic and clients keep being served; the
 * requesting client is answered when the kernel work is done.
 *
 * A big commit with an internal cache and event sockets leaves the
 * NEW/UPDATE event groups (nl_events_pause): with no NEW listener on the
 * host (netlink's listener mask is per host, not per namespace) the kernel
 * builds no events for our own creations, a third to a half of a create.
 * Right after the client's answer, one resync dump teaches the internal
 * cache what the kernel holds; while it runs, an entry the external cache
 * holds in the same state is cached, not sent back to the peer (commit_ct_known,
 * as an NL_ORIGIN_COMMIT event would have been), and anything else another
 * process created or changed meanwhile is sent (doc/notes/perf.md §2).
 * A commit of expectations alone (-c expect, from COMMIT_EXP_PAUSE_MIN)
 * leaves only the expectation NEW group and resyncs only expectations:
 * the kernel's event for each created expectation is half its cost.
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
#include <linux/netfilter/nf_conntrack_common.h>
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

/* Entries per loop turn: big kernel batches, yet the loop turns several
 * times a second at the kernel's create rate. */
#define COMMIT_STEP 32768

/*
 * When to pause the event groups (see sync_commit()). The resync that
 * follows dumps the whole table of that kind, at ~3 us per entry (the
 * bench's -R); an event costs ~2.6 us of kernel time inside our create,
 * which the client waits for, and then ~2-3 us to read and match. So
 * conntracks are paused from COMMIT_PAUSE_MIN when the commit is at least
 * as big as the internal cache (the dump then covers at most twice what
 * is committed): the answer comes sooner and the total work is about the
 * same or less. Also whenever the commit's events would not fit in the
 * event socket's buffer (EV_TRUESIZE each: 2 MB held 1,638 of them):
 * they pile up while we are inside sendto(), the overrun's resync would
 * then meet the committed entries with no origin to tell them from
 * others' and send them back to the peer. Expectations, whose table is
 * small (nf_conntrack_expect_max, 4096 by default), from
 * COMMIT_EXP_PAUSE_MIN.
 */
#define COMMIT_PAUSE_MIN     2048
#define COMMIT_EXP_PAUSE_MIN 512
#define EV_TRUESIZE          1280

static bool pause_pays(size_t n, size_t table, size_t evbuf)
{
	return n >= COMMIT_PAUSE_MIN && (n >= table || n * EV_TRUESIZE >= evbuf);
}

enum { PH_CT_PLAIN, PH_CT_RELATED, PH_EXP, PH_DONE };

struct commit_state {
	struct sync       *s;
	struct ctl_client *client;
	bool               do_ct, do_exp;
	unsigned           paused;      /* NL_EV_* groups left; resync pending */
	int                phase;
	uint32_t           pos;
	uint32_t           now;         /* monotonic seconds at this step */
	uint64_t           issued, failed;
	uint64_t           related;     /* seen by the first pass: a second is due */
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

/*
 * The stored object, not cache_ct_view(): an all-zero synproxy block (the
 * view's addition) is what the kernel gives every ctnetlink-created
 * conntrack anyway, so sending it would only cost a copy, an allocation
 * in the batch and attribute parsing in the kernel, per entry.
 */
static int commit_ct_one(struct cache_obj *o, void *arg)
{
	struct commit_state *cs = arg;
	const struct ct *ct = cobj_cct(o);
	bool rel = ct_related(ct);

	if (cs->phase == PH_CT_PLAIN && rel)
		cs->related++;
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

/* Rejoin the event groups left for the commit (the daemon stops half-way). */
static void commit_resume_events(struct commit_state *cs)
{
	if (cs->paused)
		nl_events_pause(cs->s->d, cs->paused, false);
}

static void commit_end(struct sync *s)
{
	struct commit_state *cs = s->commit;

	if (cs == NULL)
		return;
	commit_resume_events(cs);
	if (s->d->loop)
		ev_timer_del(s->d->loop, &cs->timer);
	if (cs->client)
		ctl_client_finish(cs->client);
	s->commit = NULL;
	free(cs);
}

/* Buckets holding about COMMIT_STEP entries (the table grows, so a
 * bucket count alone would make steps of any size). */
static uint32_t step_buckets(struct cache *c)
{
	uint64_t n = cache_stats(c)->hashed, hs = cache_hashsize(c);
	uint64_t b = n > COMMIT_STEP ? (uint64_t)COMMIT_STEP * hs / n : hs;

	return b < 1 ? 1 : (uint32_t)b;
}

/* One step; returns true when the kernel work is finished. */
static bool commit_step(struct commit_state *cs)
{
	struct sync *s = cs->s;
	struct cache *c = cs->phase == PH_EXP ? s->ext_exp : s->ext_ct;
	int end;

	cs->now = cache_now();
	end = cache_iterate_step(c, &cs->pos, step_buckets(c),
				 cs->phase == PH_EXP ? commit_exp_one : commit_ct_one, cs);
	if (kbatch_flush(s->commit_kb) < 0)
		log_err("commit: kernel batch failed: %s", strerror(errno));
	if (!end)
		return false;
	cs->pos = 0;
	if (cs->phase == PH_CT_PLAIN && cs->related) {
		cs->phase = PH_CT_RELATED;
		return false;
	}
	if (cs->phase != PH_EXP) {
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

/*
 * The kernel work is done: rejoin the event groups, answer the client,
 * then resync at once, in the same loop turn, so that no later request
 * (a second -c, -f) finds the commit still running. The internal cache
 * learns the kernel table; the peer gets only what others did meanwhile
 * (commit_ct_known).
 */
static void commit_kernel_done(struct commit_state *cs)
{
	if (!cs->paused)
		return;
	nl_events_pause(cs->s->d, cs->paused, false);
	if (cs->client) {
		ctl_client_finish(cs->client);
		cs->client = NULL;
	}
	nl_resync_kinds(cs->s->d, cs->paused);
	cs->paused = 0;
}

static void commit_timer_cb(struct ev_timer *t, void *arg)
{
	struct commit_state *cs = arg;

	if (!commit_step(cs)) {
		ev_timer_add(cs->s->d->loop, t, 0);
		return;
	}
	commit_kernel_done(cs);
	commit_end(cs->s);
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
	/* Pausing needs the internal cache for the resync to fill (without
	 * one, events of other processes would be lost); nl_events_pause()
	 * refuses in polling mode. A small commit keeps the events: the
	 * resync dumps the whole kernel table, which then costs more than
	 * the events it saves and delays the next request. A commit of
	 * expectations alone leaves only their group: the conntrack table
	 * may be far bigger than the expectations to commit. */
	if (!d->conf->disable_internal_cache) {
		size_t nct = ct ? cache_stats(s->ext_ct)->active : 0;
		size_t nexp = exp ? cache_stats(s->ext_exp)->active : 0;

		if (pause_pays(nct + nexp, cache_stats(s->int_ct)->active,
			       d->nl ? nl_stats(d)->bufsize : 0))
			cs->paused = nl_events_pause(d, NL_EV_CT | NL_EV_EXP, true);
		else if (nexp >= COMMIT_EXP_PAUSE_MIN)
			cs->paused = nl_events_pause(d, NL_EV_EXP, true);
	}
	if (d->loop) {
		ev_timer_add(d->loop, &cs->timer, 0);
	} else {
		while (!commit_step(cs))
			;
		commit_kernel_done(cs);
		commit_end(s);
	}
}

/* The kernel's state of a committed conntrack is what the peer sent:
 * compare what the commit wrote and others may change (traffic moves the
 * TCP state and the status, rules the mark). Kernel-only additions (ids,
 * timeouts, counters, CONFIRMED, NAT_DONE) do not count. */
static bool ct_as_committed(const struct ct *x, const struct ct *k)
{
	const uint32_t st = IPS_ASSURED | IPS_SEEN_REPLY;
	size_t alen = x->orig.l3 == AF_INET ? 4 : 16;

	if ((x->have & CT_H_STATUS) && (!(k->have & CT_H_STATUS) ||
	    ((x->status ^ k->status) & st)))
		return false;
	if ((x->have & CT_H_MARK ? x->mark : 0) != (k->have & CT_H_MARK ? k->mark : 0))
		return false;
	if ((x->have & CT_H_TCP_STATE) && (!(k->have & CT_H_TCP_STATE) ||
	    x->tcp_state != k->tcp_state))
		return false;
	if ((x->have & CT_H_SCTP) && (!(k->have & CT_H_SCTP) ||
	    x->sctp_state != k->sctp_state))
		return false;
	if ((x->have & CT_H_DCCP) && (!(k->have & CT_H_DCCP) ||
	    x->dccp_state != k->dccp_state))
		return false;
	if ((x->have & CT_H_HELPER) && x->helper[0] &&
	    strncmp(x->helper, k->helper, sizeof(x->helper)) != 0)
		return false;
	/* NAT: the reply tuple the kernel built from the bindings. */
	if ((x->have & (CT_H_REPL | CT_H_REPL_SYNTH)) && (k->have & CT_H_REPL)) {
		if (memcmp(x->repl.src.b, k->repl.src.b, alen) ||
		    memcmp(x->repl.dst.b, k->repl.dst.b, alen))
			return false;
		if (l4_has_ports(x->orig.l4) && (x->have & CT_H_PORTS) &&
		    (x->repl.sport != k->repl.sport || x->repl.dport != k->repl.dport))
			return false;
	}
	if ((x->have & CT_H_MASTER) && x->ext &&
	    (!(k->have & CT_H_MASTER) || !k->ext ||
	     memcmp(x->ext->master.src.b, k->ext->master.src.b, alen) ||
	     memcmp(x->ext->master.dst.b, k->ext->master.dst.b, alen)))
		return false;
	return true;
}

bool commit_ct_known(struct sync *s, const struct ct *ct)
{
	struct cache_obj *o;

	if (s->commit == NULL || !(s->commit->paused & NL_EV_CT))
		return false;
	o = cache_find(s->ext_ct, ct);
	return o != NULL && o->state != OBJ_DEAD && ct_as_committed(cobj_cct(o), ct);
}

bool commit_exp_known(struct sync *s, const struct exp *e)
{
	struct cache_obj *o;
	const struct exp *x;

	if (s->commit == NULL || !(s->commit->paused & NL_EV_EXP))
		return false;
	o = cache_find(s->ext_exp, e);
	if (o == NULL || o->state == OBJ_DEAD)
		return false;
	x = cobj_cexp(o);
	/* Expectations do not change once created: the key says it, and
	 * the helper (its class and NAT come with it). */
	return !(x->have & EXP_H_HELPER) || strncmp(x->helper, e->helper, sizeof(x->helper)) == 0;
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
