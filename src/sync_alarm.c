/*
 * ALARM (sync-protocol.md §7): periodic refresh of every internal object,
 * CacheTimeout expiry of external ones, no control messages.
 *
 * Instead of one timer per object (1.4.x), each object's next deadline is
 * kept in cache_obj.expires and a 200 ms tick walks a fifth of each cache,
 * so the whole table is visited once a second at no per-object memory
 * cost. Deadlines therefore fire up to ~1 s late, which RefreshTime (tens
 * of seconds) and CacheTimeout absorb.
 */
#include <stdlib.h>

#include "conf.h"
#include "ctd.h"
#include "sync_priv.h"

enum rx_result alarm_recv(struct sync *s, struct peer *p, const struct wire_hdr *h)
{
	(void)s; (void)p;
	/* Anything with flags is control from another mode: ignored. */
	return h->flags != 0 ? RX_CTL : RX_DATA;
}

void alarm_arm(struct sync *s, struct cache_obj *o)
{
	uint32_t rt = s->d->conf->refresh_time ? s->d->conf->refresh_time : 60;

	o->expires = cache_now() + 1 + (uint32_t)random() % rt;
}

struct tick_arg {
	struct sync  *s;
	struct cache *c;
	uint32_t      now;
};

static int refresh_one(struct cache_obj *o, void *arg)
{
	struct tick_arg *t = arg;

	if ((int32_t)(o->expires - t->now) <= 0) {
		sync_enqueue_obj(t->s, o);
		alarm_arm(t->s, o);
	}
	return 0;
}

static int expire_one(struct cache_obj *o, void *arg)
{
	struct tick_arg *t = arg;

	if (o->expires != 0 && (int32_t)(o->expires - t->now) <= 0)
		cache_del(t->c, o);
	return 0;
}

static void scan(struct sync *s, struct cache *c, uint32_t *pos, uint32_t now,
		 cache_iter_cb cb)
{
	struct tick_arg t = { s, c, now };
	uint32_t slice = cache_hashsize(c) / 5 + 1;

	if (cache_iterate_step(c, pos, slice, cb, &t))
		*pos = 0;
}

void alarm_tick(struct sync *s, uint32_t now)
{
	scan(s, s->int_ct, &s->alarm_pos[0], now, refresh_one);
	scan(s, s->int_exp, &s->alarm_pos[1], now, refresh_one);
	scan(s, s->ext_ct, &s->alarm_pos[2], now, expire_one);
	scan(s, s->ext_exp, &s->alarm_pos[3], now, expire_one);
}
