/*
 * Streamed dumps of the caches for -i/-e/-x: produced a slice of the hash
 * table at a time, only while the client's buffer is below CTL_BUF_HIGH,
 * so a large table never holds the loop; and the live kernel dump that
 * stands in for -i when there is no internal cache.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <libnetfilter_conntrack/libnetfilter_conntrack.h>

#include "cache.h"
#include "ctd.h"
#include "ctl_priv.h"
#include "log.h"
#include "objconv.h"
#include "sync.h"

static struct cache *dump_cache(struct ctl_client *c)
{
	struct ctd *d = c->srv->d;

	if (d->sync)
		return sync_cache(d, c->dump.ext, c->dump.exp);
	if (d->stats && !c->dump.ext && !c->dump.exp)
		return stats_mode_cache(d);
	return NULL;
}

static int dump_one(struct cache_obj *o, void *arg)
{
	struct ctl_client *c = arg;
	char line[1024 + 96];
	int n;

	if (o->state == OBJ_DEAD)       /* kept only for retransmission */
		return 0;
	if (o->kind == OBJ_CT)
		n = ct_snprintf(line, 1024, cobj_cct(o), c->dump.fmt);
	else
		n = exp_snprintf(line, 1024, cobj_cexp(o), c->dump.fmt);
	if (n < 0)
		return 0;
	if (n > 1023)
		n = 1023;
	if (c->dump.fmt == OBJ_FMT_PLAIN) {     /* no printf: once per line */
		char *p = line + n;

		if (c->dump.alarm && o->expires) {
			uint64_t left = o->expires > c->dump.mono ?
					o->expires - c->dump.mono : 0;

			memcpy(p, " [expires in ", 13);
			p = obj_text_u64(p + 13, left);
			memcpy(p, "s]", 2);
			p += 2;
		}
		memcpy(p, " [active since ", 15);
		p = obj_text_u64(p + 15, c->dump.wall > (time_t)o->created ?
					 (uint64_t)(c->dump.wall - (time_t)o->created) : 0);
		memcpy(p, "s]", 2);
		n = (int)(p + 2 - line);
	}
	line[n++] = '\n';
	ctl_buf_append(c, line, (size_t)n);
	return c->fd < 0;
}

/* Fill the buffer up to CTL_BUF_HIGH; a few hundred buckets per step keeps
 * each call short even with long chains. */
void ctl_dump_produce(struct ctl_client *c)
{
	struct cache *cache = dump_cache(c);

	if (!cache) {
		c->dump.on = false;
		return;
	}
	c->dump.wall = time(NULL);
	c->dump.mono = cache_now();
	while (c->dump.on && c->fd >= 0 && c->len - c->off < CTL_BUF_HIGH) {
		if (c->dump.pos >= cache_hashsize(cache) ||
		    cache_iterate_step(cache, &c->dump.pos, 256, dump_one, c) == 1)
			c->dump.on = false;
	}
}

void ctl_dump_start(struct ctl_client *c, bool ext, bool exp, enum obj_fmt fmt)
{
	const struct ctd_conf *conf = c->srv->d->conf;

	c->dump.on = true;
	c->dump.ext = ext;
	c->dump.exp = exp;
	c->dump.fmt = fmt;
	c->dump.alarm = ext && !exp && conf->mode == SYNC_MODE_ALARM;
	c->dump.pos = 0;
}

/* NOTRACK with DisableInternalCache has no internal cache: -i shows the
 * kernel table itself, with timeouts and use counts, plain even with -x
 * (1.4.x). Synchronous, like the kernel dump it is; bounded by CTL_BUF_MAX. */
static int live_one(enum nf_conntrack_msg_type type, struct nf_conntrack *n,
		    void *arg)
{
	struct ctl_client *c = arg;
	char line[1024 + 2];
	int len;

	/* The kernel's object as is: timeout and use= included. */
	len = nfct_snprintf(line, 1024, n, NFCT_T_UNKNOWN, NFCT_O_PLAIN, 0);
	if (len < 0)
		return NFCT_CB_CONTINUE;
	if (len > 1023)
		len = 1023;
	line[len++] = '\n';
	ctl_buf_append(c, line, (size_t)len);
	return c->fd < 0 ? NFCT_CB_STOP : NFCT_CB_CONTINUE;
}

void ctl_live_dump(struct ctl_client *c)
{
	struct nfct_handle *h = nfct_open(CONNTRACK, 0);
	uint32_t family = AF_UNSPEC;

	if (!h) {
		log_err("can't open netlink handler: %s", strerror(errno));
		return;
	}
	nfct_callback_register(h, NFCT_T_ALL, live_one, c);
	if (nfct_query(h, NFCT_Q_DUMP, &family) < 0)
		log_err("can't get kernel conntrack table");
	nfct_close(h);
}
