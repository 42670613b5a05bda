/*
 * Configuration: loading, value checks called from the grammar, defaults
 * and whole-file validation. Every problem is reported as "FILE:LINE: ..."
 * and counted; conf_load() returns NULL if any was an error, so a daemon
 * never starts on a configuration it half understood.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netdb.h>
#include <sched.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>
#include <unistd.h>

#include "conf.h"
#include "parse.h"

struct cy_chunk {
	struct cy_chunk *next;
	size_t used, size;
	char   data[];
};

/* One line per message, bounded: values quoted in it may be 1 MB long. */
static void vreport(struct cy_state *ps, FILE *f, int line, const char *kind,
		    const char *fmt, va_list ap)
{
	char msg[320];
	int n;

	if (!f)
		return;
	n = vsnprintf(msg, sizeof(msg), fmt, ap);
	if (n >= (int)sizeof(msg))
		memcpy(msg + sizeof(msg) - 4, "...", 4);
	for (char *p = msg; *p; p++)
		if ((unsigned char)*p < 0x20)
			*p = '?';
	fprintf(f, "%s:%d: %s%s\n", ps->name, line, kind, msg);
}

void cy_err(struct cy_state *ps, int line, const char *fmt, ...)
{
	va_list ap;

	if (++ps->nerrors > CY_MAX_ERRORS)
		return;
	va_start(ap, fmt);
	vreport(ps, ps->err, line, "", fmt, ap);
	va_end(ap);
	if (ps->nerrors == CY_MAX_ERRORS && ps->err)
		fprintf(ps->err, "%s:%d: too many errors, not reporting more\n",
			ps->name, line);
}

void cy_warn(struct cy_state *ps, int line, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vreport(ps, ps->warn, line, "warning: ", fmt, ap);
	va_end(ap);
}

/* Token texts live as long as the parse; one allocation per 4 KiB. */
const char *cy_save(struct cy_state *ps, const char *s, size_t len)
{
	struct cy_chunk *c = ps->chunks;
	char *p;

	if (!c || c->size - c->used < len + 1) {
		size_t size = len + 1 > 4096 ? len + 1 : 4096;

		c = malloc(sizeof(*c) + size);
		if (!c)
			return "";
		c->used = 0;
		c->size = size;
		c->next = ps->chunks;
		ps->chunks = c;
	}
	p = c->data + c->used;
	memcpy(p, s, len);
	p[len] = '\0';
	c->used += len + 1;
	return p;
}

void cy_num(struct cy_state *ps, const struct cy_tok *t, const char *key,
	    uint64_t min, uint64_t max, uint32_t *dst)
{
	if (t->big || t->n < min || t->n > max) {
		cy_err(ps, t->line, "%s %s is out of range [%llu, %llu]", key, t->s,
		       (unsigned long long)min, (unsigned long long)max);
		return;
	}
	*dst = (uint32_t)t->n;
}

void cy_path(struct cy_state *ps, const struct cy_tok *t, const char *key,
	     char *dst, size_t size)
{
	size_t len = strlen(t->s);

	if (len >= size) {
		cy_err(ps, t->line, "%s is longer than %zu characters", key, size - 1);
		return;
	}
	if (len < 2) {
		cy_err(ps, t->line, "%s '%s' names no file", key, t->s);
		return;
	}
	memcpy(dst, t->s, len + 1);
}

static const struct {
	const char *name;
	int fac;
} facilities[] = {
	{ "daemon", LOG_DAEMON }, { "local0", LOG_LOCAL0 }, { "local1", LOG_LOCAL1 },
	{ "local2", LOG_LOCAL2 }, { "local3", LOG_LOCAL3 }, { "local4", LOG_LOCAL4 },
	{ "local5", LOG_LOCAL5 }, { "local6", LOG_LOCAL6 }, { "local7", LOG_LOCAL7 },
};

const char *conf_facility_name(int fac)
{
	for (size_t i = 0; i < sizeof(facilities) / sizeof(facilities[0]); i++)
		if (facilities[i].fac == fac)
			return facilities[i].name;
	return NULL;
}

void cy_syslog(struct cy_state *ps, const struct cy_tok *t, bool is_bool, bool stats)
{
	int *dst = stats ? &ps->conf->stats_syslog_facility : &ps->conf->syslog_facility;

	if (is_bool) {
		*dst = t->n ? LOG_DAEMON : -1;
	} else {
		size_t i;

		for (i = 0; i < sizeof(facilities) / sizeof(facilities[0]); i++)
			if (strcmp(facilities[i].name, t->s) == 0)
				break;
		if (i == sizeof(facilities) / sizeof(facilities[0])) {
			cy_warn(ps, t->line, "'%s' is not a known syslog facility, ignoring%s",
				t->s, stats ? "." : "");
			return;
		}
		*dst = facilities[i].fac;
	}
	if (stats) {
		ps->stats_syslog_set = *dst != -1;
		ps->stats_syslog_line = t->line;
	} else {
		ps->gen_syslog_set = *dst != -1;
	}
}

void cy_sched_type(struct cy_state *ps, const struct cy_tok *t)
{
	if (strcasecmp(t->s, "rr") == 0)
		ps->conf->sched_policy = SCHED_RR;
	else if (strcasecmp(t->s, "fifo") == 0)
		ps->conf->sched_policy = SCHED_FIFO;
	else {
		cy_err(ps, t->line, "unknown scheduler `%s'", t->s);
		return;
	}
	ps->conf->sched_type_set = true;
}

void cy_sched_prio(struct cy_state *ps, const struct cy_tok *t)
{
	if (t->big || t->n > 99) {
		cy_err(ps, t->line, "`Priority' must be [0, 99]");
		return;
	}
	ps->conf->sched_priority = (int)t->n;
}

void cy_overrun(struct cy_state *ps, const struct cy_tok *t, bool is_bool)
{
	if (is_bool) {
		ps->overrun_off = !t->n;
		ps->conf->nl_overrun_resync = t->n ? 30 : 0;
		return;
	}
	ps->overrun_off = false;
	cy_num(ps, t, "NetlinkOverrunResync", 0, INT32_MAX, &ps->conf->nl_overrun_resync);
}

void cy_pollsecs(struct cy_state *ps, const struct cy_tok *t)
{
	if (!t->big && t->n == 0) {
		cy_err(ps, t->line, "`PollSecs' clause must be > 0");
		return;
	}
	cy_num(ps, t, "PollSecs", 1, INT32_MAX, &ps->conf->poll_secs);
}

/* Written like chmod(1): the digits are octal whatever the leading zero. */
void cy_unix_mode(struct cy_state *ps, const struct cy_tok *t)
{
	uint32_t m = 0;

	for (const char *p = t->s; *p; p++) {
		if (*p > '7' || m > 0777) {
			cy_err(ps, t->line, "Permissions %s is not an octal mode in [0, 0777]",
			       t->s);
			return;
		}
		m = m * 8 + (uint32_t)(*p - '0');
	}
	if (m > 0777) {
		cy_err(ps, t->line, "Permissions %s is not an octal mode in [0, 0777]", t->s);
		return;
	}
	ps->conf->unix_mode = m;
}

static const char *mode_name(enum sync_mode m)
{
	switch (m) {
	case SYNC_MODE_FTFW:    return "FTFW";
	case SYNC_MODE_ALARM:   return "ALARM";
	case SYNC_MODE_NOTRACK: return "NOTRACK";
	default:                return "none";
	}
}

void cy_mode(struct cy_state *ps, enum sync_mode m, const struct cy_tok *t)
{
	if (t->n) {
		if (m == SYNC_MODE_FTFW)
			cy_warn(ps, t->line, "Now `nack' mode is called `ftfw'. "
				"Please, update your conntrackd.conf file.");
		else
			cy_warn(ps, t->line, "Now `persistent' mode is called `alarm'. "
				"Please, update your conntrackd.conf file.");
	}
	/* 1.4.7 silently picks FTFW > ALARM > NOTRACK; two kinds is a mistake. */
	if (ps->mode_seen != SYNC_MODE_NONE && ps->mode_seen != m) {
		cy_err(ps, t->line, "duplicate Mode: `Mode %s' conflicts with `Mode %s' "
		       "given before", mode_name(m), mode_name(ps->mode_seen));
		return;
	}
	ps->mode_seen = m;
	ps->conf->mode = m;
}

void cy_sync_close(struct cy_state *ps, int line)
{
	if (ps->conf->has_stats)
		cy_err(ps, line, "cannot use both `Stats' and `Sync' clauses in conntrackd.conf");
	ps->conf->has_sync = true;
	if (!ps->sync_line)
		ps->sync_line = line;
}

void cy_stats_close(struct cy_state *ps, int line)
{
	if (ps->conf->has_sync)
		cy_err(ps, line, "cannot use both `Stats' and `Sync' clauses in conntrackd.conf");
	ps->conf->has_stats = true;
}

/* `on'/`off' drop an earlier list; a `{ list }' starts afresh. */
void cy_exp_set(struct cy_state *ps, bool on)
{
	struct ctd_conf *c = ps->conf;

	free(c->exp_helpers);
	c->exp_helpers = NULL;
	c->nexp_helpers = 0;
	c->expectation_sync = on;
}

void cy_exp_name(struct cy_state *ps, const struct cy_tok *t)
{
	struct ctd_conf *c = ps->conf;
	char (*n)[CT_HELPER_MAX];

	if (strlen(t->s) >= CT_HELPER_MAX) {
		cy_err(ps, t->line, "ExpectationSync helper name '%s' is longer than %d "
		       "characters", t->s, CT_HELPER_MAX - 1);
		return;
	}
	for (unsigned i = 0; i < c->nexp_helpers; i++)
		if (strcasecmp(c->exp_helpers[i], t->s) == 0)
			return;
	n = realloc(c->exp_helpers, (c->nexp_helpers + 1) * sizeof(*n));
	if (!n) {
		cy_err(ps, t->line, "out of memory");
		return;
	}
	c->exp_helpers = n;
	snprintf(n[c->nexp_helpers++], CT_HELPER_MAX, "%s", t->s);
}

static const char *chan_name(enum chan_kind k)
{
	switch (k) {
	case CHAN_MCAST: return "Multicast";
	case CHAN_UDP:   return "UDP";
	case CHAN_TCP:   return "TCP";
	default:         return "?";
	}
}

void cy_chan_begin(struct cy_state *ps, enum chan_kind k, bool dflt, int line)
{
	struct ctd_conf *c = ps->conf;
	struct conf_channel *ch;

	if (c->nchannels >= CONF_MAX_CHANNELS) {
		cy_err(ps, line, "too many dedicated links in the configuration file "
		       "(Maximum: %d)", CONF_MAX_CHANNELS);
		ps->chan_over = true;
		ch = &ps->chan_scratch;
	} else {
		ps->chan_over = false;
		ch = &c->channels[c->nchannels];
	}
	memset(ch, 0, sizeof(*ch));
	ch->kind = k;
	ch->is_default = dflt;
	ch->checksum = true;
	ch->line = line;
	ps->chan = ch;
	ps->chan_errors = ps->nerrors;
}

static bool addr_is_mcast(int family, const union addr *a)
{
	if (family == AF_INET)
		return (ntohl(a->v4) >> 28) == 0xe;
	return a->b[0] == 0xff;
}

void cy_chan_end(struct cy_state *ps)
{
	struct ctd_conf *c = ps->conf;
	struct conf_channel *ch = ps->chan;
	const char *kn = chan_name(ch->kind);
	bool bad = false;

	/* A bad line inside the block was reported; "missing X" would repeat it. */
	if (ps->chan_over || ps->nerrors != ps->chan_errors)
		return;
	for (unsigned i = 0; i < c->nchannels; i++)
		if (c->channels[i].kind != ch->kind) {
			cy_err(ps, ch->line, "cannot use `%s' with other dedicated link "
			       "protocols!", kn);
			bad = true;
			break;
		}
	if (!ch->ifname[0]) {
		cy_err(ps, ch->line, "%s block has no Interface", kn);
		bad = true;
	}
	if (ch->kind == CHAN_MCAST) {
		if (!ch->have_addr) {
			cy_err(ps, ch->line, "Multicast block has no IPv4_address or "
			       "IPv6_address (the group)");
			bad = true;
		} else if (!addr_is_mcast(ch->family, &ch->addr)) {
			cy_warn(ps, ch->line, "Multicast group address is not a multicast address");
		}
		if (!ch->port) {
			cy_err(ps, ch->line, "Multicast block has no Group (port)");
			bad = true;
		}
	} else {
		if (!ch->have_dest) {
			cy_err(ps, ch->line, "%s block has no IPv4_Destination_Address or "
			       "IPv6_Destination_Address", kn);
			bad = true;
		}
		if (!ch->port) {
			cy_err(ps, ch->line, "%s block has no Port", kn);
			bad = true;
		}
	}
	if (bad)
		return;
	if (ch->is_default)
		c->default_channel = c->nchannels;
	c->nchannels++;
}

static bool parse_ip(const char *text, int family, union addr *a, int *prefix)
{
	char buf[INET6_ADDRSTRLEN + 8];
	const char *slash = strchr(text, '/');
	size_t len = slash ? (size_t)(slash - text) : strlen(text);

	*prefix = -1;
	if (len >= sizeof(buf))
		return false;
	memcpy(buf, text, len);
	buf[len] = '\0';
	memset(a, 0, sizeof(*a));
	if (inet_pton(family, buf, a) != 1)
		return false;
	if (slash) {
		const char *p = slash + 1;
		int n = 0;

		if (!*p || strlen(p) > 3)
			return false;
		for (; *p; p++)
			n = n * 10 + (*p - '0');
		*prefix = n;
	}
	return true;
}

/* The address text without a prefix, for messages. */
static void ip_report(struct cy_state *ps, const struct cy_tok *t, int family)
{
	cy_err(ps, t->line, "%s is not a valid %s address", t->s,
	       family == AF_INET ? "IPv4" : "IPv6");
}

void cy_chan_ip(struct cy_state *ps, const struct cy_tok *t, int fam,
		enum cy_addr_role role)
{
	struct conf_channel *ch = ps->chan;
	int family = fam == 4 ? AF_INET : AF_INET6;
	union addr a;
	int prefix;

	if (!parse_ip(t->s, family, &a, &prefix)) {
		ip_report(ps, t, family);
		return;
	}
	if (prefix >= 0) {
		cy_err(ps, t->line, "%s: a network prefix is not allowed here", t->s);
		return;
	}
	if (role == CY_IFADDR) {
		if (ch->family == AF_INET6)
			cy_warn(ps, t->line, "your multicast address is IPv6 but is binded "
				"to an IPv4 interface? Surely this is not what you want");
		ch->ifaddr = a;
		ch->have_ifaddr = true;
		return;
	}
	if (ch->family && ch->family != family) {
		cy_err(ps, t->line, "%s block mixes IPv4 and IPv6 addresses",
		       chan_name(ch->kind));
		return;
	}
	if (ch->kind == CHAN_MCAST && family == AF_INET6 && ch->have_ifaddr)
		cy_warn(ps, t->line, "your multicast address is IPv6 but is binded "
			"to an IPv4 interface? Surely this is not what you want");
	ch->family = family;
	if (role == CY_DEST) {
		ch->dest = a;
		ch->have_dest = true;
	} else {
		ch->addr = a;
		ch->have_addr = true;
	}
}

void cy_chan_ip6_iface(struct cy_state *ps, const struct cy_tok *t)
{
	if (ps->chan->family == AF_INET)
		cy_warn(ps, t->line, "your multicast address is IPv4 but is binded to an "
			"IPv6 interface? Surely, this is not what you want");
	cy_warn(ps, t->line, "`IPv6_interface' not required, ignoring");
}

void cy_chan_iface(struct cy_state *ps, const struct cy_tok *t)
{
	struct conf_channel *ch = ps->chan;

	if (strlen(t->s) >= IF_NAMESIZE) {
		cy_err(ps, t->line, "interface name '%s' is longer than %d characters",
		       t->s, IF_NAMESIZE - 1);
		return;
	}
	snprintf(ch->ifname, sizeof(ch->ifname), "%s", t->s);
	/* Clients parse too, often in another namespace: only warn. */
	ch->ifindex = if_nametoindex(ch->ifname);
	if (!ch->ifindex)
		cy_warn(ps, t->line, "%s is an invalid interface", ch->ifname);
}

void cy_chan_port(struct cy_state *ps, const struct cy_tok *t, const char *key)
{
	uint32_t v = 0;

	cy_num(ps, t, key, 1, 65535, &v);
	if (v)
		ps->chan->port = (uint16_t)v;
}

void cy_chan_buf(struct cy_state *ps, const struct cy_tok *t, const char *key,
		 uint32_t *dst)
{
	cy_num(ps, t, key, 0, INT32_MAX, dst);
}

/* Fallback when /etc/protocols is missing (minimal containers). */
static const struct {
	const char *name;
	int proto;
} protos[] = {
	{ "icmp", 1 }, { "igmp", 2 }, { "tcp", 6 }, { "udp", 17 }, { "dccp", 33 },
	{ "gre", 47 }, { "esp", 50 }, { "ah", 51 }, { "ipv6-icmp", 58 },
	{ "sctp", 132 }, { "udplite", 136 },
};

static int proto_lookup(const char *name)
{
	struct protoent pe, *res = NULL;
	char buf[1024];

	if (getprotobyname_r(name, &pe, buf, sizeof(buf), &res) == 0 && res)
		return res->p_proto;
	for (size_t i = 0; i < sizeof(protos) / sizeof(protos[0]); i++)
		if (strcasecmp(protos[i].name, name) == 0)
			return protos[i].proto;
	return -1;
}

const char *conf_proto_name(int proto, char *buf, size_t size)
{
	struct protoent pe, *res = NULL;
	char tmp[1024];

	if (proto == 6)
		return "TCP";
	if (proto == 17)
		return "UDP";
	if (getprotobynumber_r(proto, &pe, tmp, sizeof(tmp), &res) == 0 && res &&
	    proto_lookup(res->p_name) == proto) {
		snprintf(buf, size, "%s", res->p_name);
		return buf;
	}
	for (size_t i = 0; i < sizeof(protos) / sizeof(protos[0]); i++)
		if (protos[i].proto == proto)
			return protos[i].name;
	return NULL;
}

void cy_filter_proto(struct cy_state *ps, const struct cy_tok *t, int proto)
{
	if (proto < 0)
		proto = proto_lookup(t->s);
	if (proto < 0 || proto > 255) {
		cy_warn(ps, t->line, "getprotobyname() cannot find protocol `%s' in "
			"/etc/protocols", t->s);
		return;
	}
	ps->conf->filter.protos[proto] = 1;
}

void cy_filter_addr(struct cy_state *ps, const struct cy_tok *t, int fam)
{
	struct conf_filter *f = &ps->conf->filter;
	int family = fam == 4 ? AF_INET : AF_INET6;
	int full = fam == 4 ? 32 : 128;
	struct conf_addr_filter af = { .family = family };
	struct conf_addr_filter *n;
	int prefix;

	if (!parse_ip(t->s, family, &af.addr, &prefix)) {
		ip_report(ps, t, family);
		return;
	}
	if (prefix > full) {
		cy_err(ps, t->line, "%s is not a valid network: prefix must be [0, %d]",
		       t->s, full);
		return;
	}
	af.prefix = (uint8_t)(prefix < 0 ? full : prefix);
	/* Keep only the network part so equal networks compare equal. */
	for (int bit = af.prefix; bit < full; bit++)
		af.addr.b[bit / 8] &= (uint8_t)~(0x80u >> (bit % 8));
	for (unsigned i = 0; i < f->naddrs; i++) {
		if (f->addrs[i].family == family && f->addrs[i].prefix == af.prefix &&
		    memcmp(&f->addrs[i].addr, &af.addr, sizeof(af.addr)) == 0) {
			if (af.prefix != full) {
				char b[INET6_ADDRSTRLEN];

				inet_ntop(family, &af.addr, b, sizeof(b));
				cy_warn(ps, t->line, "netmask %s is repeated in the ignore pool", b);
			}
			return;
		}
	}
	n = realloc(f->addrs, (f->naddrs + 1) * sizeof(*n));
	if (!n) {
		cy_err(ps, t->line, "cannot create ignore pool!");
		return;
	}
	f->addrs = n;
	f->addrs[f->naddrs++] = af;
}

void cy_helper_num(struct cy_state *ps, const struct cy_tok *t, const char *key,
		   uint32_t *dst)
{
	cy_num(ps, t, key, 0, UINT32_MAX, dst);
}

void cy_helper_policy(struct cy_state *ps, const struct cy_tok *name)
{
	struct conf_helper_policy *n;

	if (strlen(name->s) >= sizeof(ps->pol.name)) {
		cy_err(ps, name->line, "Helper Policy is longer than %zu characters",
		       sizeof(ps->pol.name) - 1);
		goto out;
	}
	n = realloc(ps->h_pols, (ps->h_npols + 1) * sizeof(*n));
	if (!n) {
		cy_err(ps, name->line, "out of memory");
		goto out;
	}
	ps->h_pols = n;
	snprintf(ps->pol.name, sizeof(ps->pol.name), "%s", name->s);
	ps->h_pols[ps->h_npols++] = ps->pol;
out:
	memset(&ps->pol, 0, sizeof(ps->pol));
}

/* Values written before a `Type' belong to the next Type that closes (1.4.7). */
void cy_helper_add(struct cy_state *ps, const struct cy_tok *name,
		   const struct cy_tok *l3, const struct cy_tok *l4)
{
	struct ctd_conf *c = ps->conf;
	struct conf_helper h = { .line = name->line };
	struct conf_helper *n;
	bool ok = true;

	if (strlen(name->s) >= sizeof(h.name)) {
		cy_err(ps, name->line, "helper name '%s' is longer than %zu characters",
		       name->s, sizeof(h.name) - 1);
		ok = false;
	}
	if (strcmp(l3->s, "inet") == 0)
		h.l3 = AF_INET;
	else if (strcmp(l3->s, "inet6") == 0)
		h.l3 = AF_INET6;
	else {
		cy_err(ps, l3->line, "unknown layer 3 protocol");
		ok = false;
	}
	if (strcmp(l4->s, "tcp") == 0)
		h.l4 = 6;
	else if (strcmp(l4->s, "udp") == 0)
		h.l4 = 17;
	else {
		cy_err(ps, l4->line, "unknown layer 4 protocol");
		ok = false;
	}
	if (ok) {
		n = realloc(c->helpers, (c->nhelpers + 1) * sizeof(*n));
		if (!n) {
			cy_err(ps, name->line, "out of memory");
			ok = false;
		} else {
			c->helpers = n;
			snprintf(h.name, sizeof(h.name), "%s", name->s);
			h.queue_num = ps->h_queue_num;
			h.queue_len = ps->h_queue_len;
			h.policies = ps->h_pols;
			h.npolicies = ps->h_npols;
			ps->h_pols = NULL;
			ps->h_npols = 0;
			c->helpers[c->nhelpers++] = h;
		}
	}
	free(ps->h_pols);
	ps->h_pols = NULL;
	ps->h_npols = 0;
	ps->h_queue_num = ps->h_queue_len = 0;
}

static void conf_init(struct ctd_conf *c)
{
	c->syslog_facility = -1;
	c->stats_syslog_facility = -1;
	c->sched_policy = -1;
	c->unix_mode = 0600;
	c->systemd = true;
}

static void set_default(uint32_t *v, uint32_t dflt)
{
	if (*v == 0)
		*v = dflt;
}

/* Defaults for the "zero means unset" keys, then whole-file checks. */
static void conf_finish(struct cy_state *ps, int lastline)
{
	struct ctd_conf *c = ps->conf;

	set_default(&c->hashsize, 65536);
	set_default(&c->hashlimit, 262144);
	if (!ps->overrun_off)
		set_default(&c->nl_overrun_resync, 30);
	set_default(&c->event_iteration_limit, 100);
	set_default(&c->resend_queue_size, 131072);
	set_default(&c->ack_window_size, 300);
	set_default(&c->refresh_time, 60);
	set_default(&c->cache_timeout, 180);
	set_default(&c->purge_timeout, 60);
	set_default(&c->error_queue_length, 128);
	if (!c->lockfile[0])
		snprintf(c->lockfile, sizeof(c->lockfile), "%s", "/var/lock/conntrackd.lock");

	if (c->commit_timeout && c->disable_external_cache) {
		cy_warn(ps, ps->sync_line, "`CommitTimeout' can't be combined with "
			"`DisableExternalCache', ignoring this option. Fix your "
			"configuration file.");
		c->commit_timeout = 0;
	}
	if (ps->gen_syslog_set && ps->stats_syslog_set &&
	    c->syslog_facility != c->stats_syslog_facility)
		cy_warn(ps, ps->stats_syslog_line,
			"conflicting Syslog facility values, defaulting to General");
	if (c->has_sync && c->nchannels == 0 && ps->nerrors == 0)
		cy_err(ps, ps->sync_line, "Sync section has no Multicast, UDP or TCP block");
	if (!c->has_sync && !c->has_stats && ps->nerrors == 0)
		cy_err(ps, lastline, "no Sync or Stats section");
}

static int last_line(const char *buf, size_t len)
{
	int n = 1;

	for (size_t i = 0; i < len; i++)
		if (buf[i] == '\n' && i + 1 < len)
			n++;
	return n;
}

struct ctd_conf *conf_load_buffer(const char *name, const char *buf, size_t len,
				  FILE *err, FILE *warn)
{
	struct cy_state ps = { .name = name, .err = err, .warn = warn };
	struct ctd_conf *c = calloc(1, sizeof(*c));
	int r;

	if (!c) {
		if (err)
			fprintf(err, "%s: out of memory\n", name);
		return NULL;
	}
	snprintf(c->file, sizeof(c->file), "%s", name);
	conf_init(c);
	ps.conf = c;
	if (len > CONF_FILE_MAX) {
		cy_err(&ps, 1, "file is larger than %u bytes", CONF_FILE_MAX);
		conf_free(c);
		return NULL;
	}
	r = cy_run(&ps, buf, len);
	if (r != 0 && ps.nerrors == 0)
		cy_err(&ps, ps.tokline, "cannot parse the file");
	conf_finish(&ps, last_line(buf, len));
	free(ps.h_pols);
	while (ps.chunks) {
		struct cy_chunk *next = ps.chunks->next;

		free(ps.chunks);
		ps.chunks = next;
	}
	if (ps.nerrors) {
		conf_free(c);
		return NULL;
	}
	return c;
}

/* Pipes work too (`-C <(...)`); the size cap keeps /dev/zero from hanging us. */
static char *read_all(int fd, size_t *len)
{
	size_t size = 0;
	char *buf = NULL;

	*len = 0;
	for (;;) {
		ssize_t n;

		if (*len == size) {
			char *nb;

			if (size > CONF_FILE_MAX) {
				errno = EFBIG;
				break;
			}
			size = size ? size * 2 : 65536;
			nb = realloc(buf, size);
			if (!nb)
				break;
			buf = nb;
		}
		n = read(fd, buf + *len, size - *len);
		if (n == 0)
			return buf ? buf : calloc(1, 1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		*len += (size_t)n;
	}
	free(buf);
	return NULL;
}

struct ctd_conf *conf_load(const char *path, FILE *err, FILE *warn)
{
	struct ctd_conf *c;
	size_t len;
	char *buf;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (err)
			fprintf(err, "%s: can't open config file `%s': %s\n", path, path,
				strerror(errno));
		return NULL;
	}
	buf = read_all(fd, &len);
	if (!buf) {
		if (err)
			fprintf(err, "%s: can't read config file `%s': %s\n", path, path,
				errno == EFBIG ? "larger than 16 MiB" : strerror(errno));
		close(fd);
		return NULL;
	}
	close(fd);
	c = conf_load_buffer(path, buf, len, err, warn);
	free(buf);
	return c;
}

void conf_free(struct ctd_conf *c)
{
	if (!c)
		return;
	free(c->filter.addrs);
	free(c->exp_helpers);
	for (unsigned i = 0; i < c->nhelpers; i++)
		free(c->helpers[i].policies);
	free(c->helpers);
	free(c);
}

bool conf_exp_helper_ok(const struct ctd_conf *c, const char *name)
{
	if (!c->expectation_sync)
		return false;
	if (c->nexp_helpers == 0)
		return true;
	if (!name)
		return false;
	for (unsigned i = 0; i < c->nexp_helpers; i++) {
		size_t l = strlen(c->exp_helpers[i]);

		if (strncasecmp(c->exp_helpers[i], name, l) == 0)
			return true;
	}
	return false;
}

static bool chan_equal(const struct conf_channel *a, const struct conf_channel *b)
{
	return a->kind == b->kind && a->is_default == b->is_default &&
	       a->family == b->family && a->have_addr == b->have_addr &&
	       !memcmp(&a->addr, &b->addr, sizeof(a->addr)) &&
	       a->have_dest == b->have_dest &&
	       !memcmp(&a->dest, &b->dest, sizeof(a->dest)) &&
	       a->have_ifaddr == b->have_ifaddr &&
	       !memcmp(&a->ifaddr, &b->ifaddr, sizeof(a->ifaddr)) &&
	       !strcmp(a->ifname, b->ifname) && a->ifindex == b->ifindex &&
	       a->port == b->port && a->sndbuf == b->sndbuf &&
	       a->rcvbuf == b->rcvbuf && a->checksum == b->checksum;
}

/* Order-insensitive: the printer may group what the file interleaved. */
static bool addrs_equal(const struct conf_filter *a, const struct conf_filter *b)
{
	if (a->naddrs != b->naddrs)
		return false;
	for (unsigned i = 0; i < a->naddrs; i++) {
		unsigned j;

		for (j = 0; j < b->naddrs; j++)
			if (a->addrs[i].family == b->addrs[j].family &&
			    a->addrs[i].prefix == b->addrs[j].prefix &&
			    !memcmp(&a->addrs[i].addr, &b->addrs[j].addr,
				    sizeof(a->addrs[i].addr)))
				break;
		if (j == b->naddrs)
			return false;
	}
	return true;
}

static bool filter_equal(const struct conf_filter *a, const struct conf_filter *b)
{
	return a->present == b->present && a->kernelspace == b->kernelspace &&
	       a->proto_policy == b->proto_policy &&
	       !memcmp(a->protos, b->protos, sizeof(a->protos)) &&
	       a->addr_policy == b->addr_policy && addrs_equal(a, b) &&
	       a->state_policy == b->state_policy && a->tcp_states == b->tcp_states;
}

static bool helper_equal(const struct conf_helper *a, const struct conf_helper *b)
{
	if (strcmp(a->name, b->name) || a->l3 != b->l3 || a->l4 != b->l4 ||
	    a->queue_num != b->queue_num || a->queue_len != b->queue_len ||
	    a->npolicies != b->npolicies)
		return false;
	for (unsigned i = 0; i < a->npolicies; i++)
		if (strcmp(a->policies[i].name, b->policies[i].name) ||
		    a->policies[i].expect_max != b->policies[i].expect_max ||
		    a->policies[i].expect_timeout != b->policies[i].expect_timeout)
			return false;
	return true;
}

#define SAME(f) (a->f == b->f)
#define SAMESTR(f) (strcmp(a->f, b->f) == 0)

bool conf_equal(const struct ctd_conf *a, const struct ctd_conf *b)
{
	if (!(SAME(hashsize) && SAME(hashlimit) && SAMESTR(logfile) &&
	      SAME(syslog_facility) && SAMESTR(lockfile) && SAMESTR(unix_path) &&
	      SAME(unix_mode) && SAME(nl_bufsize) && SAME(nl_bufsize_max) &&
	      SAME(nl_overrun_resync) && SAME(nl_events_reliable) && SAME(poll_secs) &&
	      SAME(event_iteration_limit) && SAME(sched_policy) &&
	      SAME(sched_priority) && SAME(sched_type_set) && SAME(systemd) &&
	      filter_equal(&a->filter, &b->filter)))
		return false;
	if (!(SAME(has_sync) && SAME(mode) && SAME(resend_queue_size) &&
	      SAME(ack_window_size) && SAME(refresh_time) && SAME(cache_timeout) &&
	      SAME(commit_timeout) && SAME(purge_timeout) && SAME(startup_resync) &&
	      SAME(disable_internal_cache) && SAME(disable_external_cache) &&
	      SAME(tcp_window_tracking) && SAME(expectation_sync) &&
	      SAME(nexp_helpers) && SAME(error_queue_length) && SAME(nchannels) &&
	      SAME(default_channel) && SAMESTR(auth_key_file)))
		return false;
	for (unsigned i = 0; i < a->nexp_helpers; i++)
		if (strcmp(a->exp_helpers[i], b->exp_helpers[i]))
			return false;
	for (unsigned i = 0; i < a->nchannels; i++)
		if (!chan_equal(&a->channels[i], &b->channels[i]))
			return false;
	if (!(SAME(has_stats) && SAMESTR(stats_logfile) && SAME(stats_syslog_facility) &&
	      SAME(has_helper) && SAME(helper_setup) && SAME(nhelpers)))
		return false;
	for (unsigned i = 0; i < a->nhelpers; i++)
		if (!helper_equal(&a->helpers[i], &b->helpers[i]))
			return false;
	return true;
}
