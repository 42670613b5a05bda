/*
 * Sync channels between two network namespaces joined by veth pairs:
 * A is the test's own namespace (unshare), B a named one (ip netns). Both
 * channel sets share one event loop; the test switches namespace with
 * setns() only while opening B's sockets, which stay in B afterwards.
 * Needs root; every wait is a poll with a deadline.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "channel.h"
#include "conf.h"
#include "ctd.h"
#include "ev.h"
#include "log.h"

#define MAXREC 4096

/* One daemon: its context first, so the receive callback can find the rest. */
struct side {
	struct ctd d;
	struct ctd_conf *conf;
	struct chanset *cs;
	unsigned nmsgs;
	uint32_t seq[MAXREC];
	uint16_t mlen[MAXREC];
	unsigned midx[MAXREC];
	unsigned ndgrams;
	size_t dlen[MAXREC];
	unsigned ncalls;
	unsigned nframes;               /* well-framed messages, any content */
};

static struct ev_loop *loop;
static int ns_a = -1, ns_b = -1;
static char nsname[64];
static char logpath[128];

static int sh(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
	char cmd[512];
	va_list ap;
	int rc;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	rc = system(cmd);
	if (rc != 0)
		fprintf(stderr, "command failed (%d): %s\n", rc, cmd);
	return rc;
}

static void put_msg(uint8_t *b, uint32_t seq, uint16_t len)
{
	memset(b, 0, len);
	b[0] = 0x10;
	b[2] = (uint8_t)(len >> 8);
	b[3] = (uint8_t)len;
	b[4] = (uint8_t)(seq >> 24);
	b[5] = (uint8_t)(seq >> 16);
	b[6] = (uint8_t)(seq >> 8);
	b[7] = (uint8_t)seq;
	if (len > 8)
		b[len - 1] = (uint8_t)seq;     /* a tail byte to prove nothing was cut */
}

/* Split whole messages off the chunk; an incomplete tail stays (TCP). */
static size_t record(struct ctd *d, unsigned idx, const uint8_t *data, size_t len,
		     const void *from, size_t fromlen)
{
	struct side *s = (struct side *)d;
	size_t off = 0;

	(void)from;
	(void)fromlen;
	s->ncalls++;
	if (s->d.conf->channels[idx].kind != CHAN_TCP && s->ndgrams < MAXREC)
		s->dlen[s->ndgrams++] = len;
	while (len - off >= 8) {
		uint16_t ml = (uint16_t)(data[off + 2] << 8 | data[off + 3]);
		uint32_t seq = (uint32_t)data[off + 4] << 24 | (uint32_t)data[off + 5] << 16 |
			       (uint32_t)data[off + 6] << 8 | data[off + 7];

		if (ml < 8)
			return len;
		if (ml > len - off)
			break;
		s->nframes++;
		if (s->nmsgs < MAXREC && (ml == 8 || data[off + ml - 1] == (uint8_t)seq)) {
			s->seq[s->nmsgs] = seq;
			s->mlen[s->nmsgs] = ml;
			s->midx[s->nmsgs] = idx;
			s->nmsgs++;
		}
		off += ml;
	}
	return off;
}

static void reset_rec(struct side *s)
{
	s->nmsgs = s->ndgrams = s->ncalls = s->nframes = 0;
}

/* Run the loop until cond(arg) or the deadline; returns cond's last value. */
static bool pump(bool (*cond)(void *), void *arg, int ms)
{
	uint64_t end = ev_now_ms() + (uint64_t)ms;

	while (!cond(arg)) {
		uint64_t now = ev_now_ms();

		if (now >= end)
			return false;
		ev_run_once(loop, (int)(end - now < 50 ? end - now : 50));
	}
	return true;
}

static bool never(void *arg)
{
	(void)arg;
	return false;
}

struct want { struct side *s; unsigned n; };

static bool got_n(void *arg)
{
	struct want *w = arg;

	return w->s->nmsgs >= w->n;
}

static bool wait_msgs(struct side *s, unsigned n, int ms)
{
	struct want w = { s, n };

	return pump(got_n, &w, ms);
}

static unsigned if_flags(const char *ifname)
{
	struct ifreq ifr;
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	unsigned f = 0;

	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	if (fd >= 0 && ioctl(fd, SIOCGIFFLAGS, &ifr) == 0)
		f = (unsigned short)ifr.ifr_flags;
	if (fd >= 0)
		close(fd);
	return f;
}

static bool links_running(void *arg)
{
	(void)arg;
	return (if_flags("va0") & IFF_RUNNING) && (if_flags("va1") & IFF_RUNNING);
}

/* ---- configuration by hand: the channel layer must not depend on the parser ---- */

static void v4(union addr *a, const char *s)
{
	memset(a, 0, sizeof(*a));
	assert_int_equal(inet_pton(AF_INET, s, &a->v4), 1);
}

static struct conf_channel *add_chan(struct ctd_conf *c, enum chan_kind k,
				     const char *ifname, uint16_t port)
{
	struct conf_channel *ch = &c->channels[c->nchannels++];

	ch->kind = k;
	ch->family = AF_INET;
	snprintf(ch->ifname, sizeof(ch->ifname), "%s", ifname);
	ch->port = port;
	ch->checksum = true;
	ch->line = 40 + (int)c->nchannels;
	return ch;
}

static struct ctd_conf *new_conf(void)
{
	struct ctd_conf *c = calloc(1, sizeof(*c));

	assert_non_null(c);
	snprintf(c->file, sizeof(c->file), "test.conf");
	c->event_iteration_limit = 100;
	c->error_queue_length = 128;
	c->has_sync = true;
	return c;
}

/* Multicast: both sides on group 225.0.0.50, link n (ca<n>/cb<n>). */
static void mcast_conf(struct ctd_conf *c, bool a_side, unsigned n, uint16_t port)
{
	char ifn[8], ip[16];
	struct conf_channel *ch;

	snprintf(ifn, sizeof(ifn), "v%c%u", a_side ? 'a' : 'b', n);
	snprintf(ip, sizeof(ip), "10.77.%u.%u", n, a_side ? 1 : 2);
	ch = add_chan(c, CHAN_MCAST, ifn, port);
	v4(&ch->addr, "225.0.0.50");
	ch->have_addr = true;
	v4(&ch->ifaddr, ip);
	ch->have_ifaddr = true;
}

static void peer_conf(struct ctd_conf *c, enum chan_kind k, bool a_side, unsigned n,
		      uint16_t port)
{
	char ifn[8], me[16], peer[16];
	struct conf_channel *ch;

	snprintf(ifn, sizeof(ifn), "v%c%u", a_side ? 'a' : 'b', n);
	snprintf(me, sizeof(me), "10.77.%u.%u", n, a_side ? 1 : 2);
	snprintf(peer, sizeof(peer), "10.77.%u.%u", n, a_side ? 2 : 1);
	ch = add_chan(c, k, ifn, port);
	v4(&ch->addr, me);
	ch->have_addr = true;
	v4(&ch->dest, peer);
	ch->have_dest = true;
}

static void side_init(struct side *s, struct ctd_conf *c)
{
	memset(s, 0, sizeof(*s));
	s->conf = c;
	s->d.conf = c;
	s->d.loop = loop;
}

/* Two sides with one peer channel of kind K between them on PORT. */
static void pair_conf(struct side *a, struct side *b, enum chan_kind k, uint16_t port)
{
	side_init(a, new_conf());
	side_init(b, new_conf());
	peer_conf(a->conf, k, true, 0, port);
	peer_conf(b->conf, k, false, 0, port);
}

static struct chanset *open_in(int ns, struct side *s)
{
	struct chanset *cs;

	assert_int_equal(setns(ns, CLONE_NEWNET), 0);
	cs = chanset_open(&s->d, record);
	assert_int_equal(setns(ns_a, CLONE_NEWNET), 0);
	s->cs = cs;
	s->d.chans = cs;
	return cs;
}

static void side_close(struct side *s)
{
	chanset_close(s->cs);
	s->cs = NULL;
	free(s->conf);
	s->conf = NULL;
}

/* Send `count` messages of `len` bytes starting at seq, then flush. */
static void send_msgs(struct side *s, uint32_t seq, unsigned count, uint16_t len, bool flush)
{
	uint8_t buf[8192];
	unsigned i;

	for (i = 0; i < count; i++) {
		put_msg(buf, seq + i, len);
		assert_int_equal(chanset_send(s->cs, buf, len), 0);
	}
	if (flush)
		chanset_flush(s->cs);
}

static void check_seqs(const struct side *s, uint32_t seq, unsigned count, uint16_t len)
{
	unsigned i;

	assert_int_equal(s->nmsgs, count);
	for (i = 0; i < count; i++) {
		assert_int_equal(s->seq[i], seq + i);
		assert_int_equal(s->mlen[i], len);
	}
}

static char *read_log(void)
{
	static char buf[16384];
	FILE *f = fopen(logpath, "r");
	size_t n = 0;

	if (f) {
		n = fread(buf, 1, sizeof(buf) - 1, f);
		fclose(f);
	}
	buf[n] = '\0';
	return buf;
}

/* ---- tests ---- */

static void test_mcast_both_ways(void **state)
{
	struct side a, b;

	(void)state;
	side_init(&a, new_conf());
	side_init(&b, new_conf());
	mcast_conf(a.conf, true, 0, 3780);
	mcast_conf(b.conf, false, 0, 3780);
	assert_non_null(open_in(ns_a, &a));
	assert_non_null(open_in(ns_b, &b));

	send_msgs(&a, 1000, 3, 100, true);
	assert_true(wait_msgs(&b, 3, 3000));
	check_seqs(&b, 1000, 3, 100);
	assert_int_equal(b.ndgrams, 1);         /* batched into one datagram */
	assert_int_equal(b.dlen[0], 300);

	send_msgs(&b, 2000, 2, 64, true);
	assert_true(wait_msgs(&a, 2, 3000));
	check_seqs(&a, 2000, 2, 64);

	/* Loopback is off: neither side hears itself. */
	pump(never, NULL, 200);
	assert_int_equal(a.nmsgs, 2);
	assert_int_equal(b.nmsgs, 3);
	assert_int_equal(chanset_stats(a.cs, 0)->msgs_sent, 1);
	assert_int_equal(chanset_stats(a.cs, 0)->bytes_sent, 300);
	assert_int_equal(chanset_stats(a.cs, 0)->msgs_recv, 1);
	assert_int_equal(chanset_stats(a.cs, 0)->bytes_recv, 128);
	side_close(&a);
	side_close(&b);
}

static void test_batching_mtu(void **state)
{
	struct side a, b;

	(void)state;
	pair_conf(&a, &b, CHAN_UDP, 3781);
	assert_non_null(open_in(ns_a, &a));
	assert_non_null(open_in(ns_b, &b));

	/* veth MTU 1500: datagrams stay strictly below 1472 bytes. */
	assert_int_equal(chanset_mtu_payload(a.cs), 1471);

	/* Nothing leaves before the buffer fills or is flushed. */
	send_msgs(&a, 1, 10, 100, false);
	pump(never, NULL, 150);
	assert_int_equal(b.ndgrams, 0);
	assert_int_equal(chanset_stats(a.cs, 0)->msgs_sent, 0);

	/* 20 x 100 bytes: 14 fit below 1472, the 15th starts a new datagram. */
	send_msgs(&a, 11, 10, 100, false);
	assert_true(wait_msgs(&b, 14, 3000));
	assert_int_equal(b.ndgrams, 1);
	assert_int_equal(b.dlen[0], 1400);
	chanset_flush(a.cs);
	assert_true(wait_msgs(&b, 20, 3000));
	check_seqs(&b, 1, 20, 100);
	assert_int_equal(b.ndgrams, 2);
	assert_int_equal(b.dlen[1], 600);

	/* Exactly filling: 1400 + 68 = 1468 < 1472 stays in one datagram. */
	reset_rec(&b);
	send_msgs(&a, 100, 14, 100, false);
	send_msgs(&a, 114, 1, 68, true);
	assert_true(wait_msgs(&b, 15, 3000));
	assert_int_equal(b.ndgrams, 1);
	assert_int_equal(b.dlen[0], 1468);

	/* An oversized message is sent whole, alone. */
	reset_rec(&b);
	send_msgs(&a, 200, 1, 100, false);
	send_msgs(&a, 201, 1, 2000, true);
	assert_true(wait_msgs(&b, 2, 3000));
	assert_int_equal(b.ndgrams, 2);
	assert_int_equal(b.dlen[0], 100);
	assert_int_equal(b.dlen[1], 2000);
	assert_int_equal(b.mlen[1], 2000);
	side_close(&a);
	side_close(&b);
}

static void test_udp_both_ways_and_stats_text(void **state)
{
	struct side a, b;
	char txt[1024], want[1024];

	(void)state;
	pair_conf(&a, &b, CHAN_UDP, 3782);
	a.conf->channels[0].checksum = false;
	assert_non_null(open_in(ns_a, &a));
	assert_non_null(open_in(ns_b, &b));

	send_msgs(&a, 7, 4, 16, true);
	assert_true(wait_msgs(&b, 4, 3000));
	check_seqs(&b, 7, 4, 16);
	send_msgs(&b, 9, 1, 8, true);
	assert_true(wait_msgs(&a, 1, 3000));
	check_seqs(&a, 9, 1, 8);

	chanset_print_current(a.cs, txt, sizeof(txt));
	snprintf(want, sizeof(want),
		 "UDP traffic (active device=va0):\n"
		 "%20u Bytes sent %20u Bytes recv\n"
		 "%20u Pckts sent %20u Pckts recv\n"
		 "%20u Error send %20u Error recv\n\n", 64, 8, 1, 1, 0, 0);
	assert_string_equal(txt, want);
	assert_string_equal(txt,
		"UDP traffic (active device=va0):\n"
		"                  64 Bytes sent                    8 Bytes recv\n"
		"                   1 Pckts sent                    1 Pckts recv\n"
		"                   0 Error send                    0 Error recv\n\n");
	/* Truncated output reports the length it needed, like snprintf. */
	assert_int_equal(chanset_print_current(a.cs, txt, 10), (int)strlen(want));
	assert_int_equal(strlen(txt), 9);
	side_close(&a);
	side_close(&b);
}

/* A large receive buffer turns on receive coalescing: after a thin read
 * the socket leaves select() for a few ms; the timer must put it back, so
 * every later datagram still arrives (liveness only, no timing asserted). */
static void test_udp_coalesced_reads_resume(void **state)
{
	struct side a, b;

	(void)state;
	pair_conf(&a, &b, CHAN_UDP, 3783);
	b.conf->channels[0].rcvbuf = 4 << 20;
	assert_non_null(open_in(ns_a, &a));
	assert_non_null(open_in(ns_b, &b));
	for (unsigned i = 0; i < 5; i++) {
		send_msgs(&a, 100 + i, 1, 16, true);
		assert_true(wait_msgs(&b, i + 1, 3000));
	}
	check_seqs(&b, 100, 5, 16);
	assert_int_equal(b.ndgrams, 5);
	side_close(&a);
	side_close(&b);
}

struct tcp_pair { struct side *a, *b; };

static bool tcp_all_connected(void *arg)
{
	struct tcp_pair *p = arg;
	char ta[512], tb[512];

	chanset_print_current(p->a->cs, ta, sizeof(ta));
	chanset_print_current(p->b->cs, tb, sizeof(tb));
	return strstr(ta, "server=connected client=connected:") &&
	       strstr(tb, "server=connected client=connected:");
}

static bool a_client_down(void *arg)
{
	struct tcp_pair *p = arg;
	char ta[512];

	chanset_print_current(p->a->cs, ta, sizeof(ta));
	return strstr(ta, "client=disconnected:") != NULL;
}

static void test_tcp_reassembly_reconnect(void **state)
{
	struct side a, b;
	struct tcp_pair p = { &a, &b };
	uint64_t cur, max, nospace, errs;
	char txt[512];
	unsigned i;

	(void)state;
	pair_conf(&a, &b, CHAN_TCP, 3783);
	assert_non_null(open_in(ns_a, &a));
	assert_non_null(open_in(ns_b, &b));
	chanset_print_current(a.cs, txt, sizeof(txt));
	assert_non_null(strstr(txt, "TCP traffic (active device=va0) server="));
	assert_true(pump(tcp_all_connected, &p, 5000));

	/* A burst far larger than one segment: recv() sees messages cut anywhere. */
	for (i = 0; i < 600; i++)
		send_msgs(&a, 5000 + i, 1, (uint16_t)(8 + 4 * (i % 97)), false);
	send_msgs(&a, 6000, 1, 3000, false);    /* larger than the MTU */
	chanset_flush(a.cs);
	assert_true(wait_msgs(&b, 601, 5000));
	for (i = 0; i < 600; i++) {
		assert_int_equal(b.seq[i], 5000 + i);
		assert_int_equal(b.mlen[i], 8 + 4 * (i % 97));
	}
	assert_int_equal(b.seq[600], 6000);
	assert_int_equal(b.mlen[600], 3000);

	send_msgs(&b, 70, 3, 40, true);
	assert_true(wait_msgs(&a, 3, 3000));
	check_seqs(&a, 70, 3, 40);

	/* The peer restarts: A notices, queues what it sends meanwhile, reconnects. */
	chanset_close(b.cs);
	b.cs = NULL;
	assert_true(pump(a_client_down, &p, 3000));
	errs = chanset_stats(a.cs, 0)->err_sent;
	send_msgs(&a, 300, 2, 24, true);
	send_msgs(&a, 302, 1, 24, true);
	chanset_errq_stats(a.cs, &cur, &max, &nospace);
	assert_int_equal(cur, 2);
	assert_int_equal(max, 128);
	assert_int_equal(nospace, 0);
	/* Counted as send errors, as 1.4.x does while disconnected. */
	assert_int_equal(chanset_stats(a.cs, 0)->err_sent, errs + 2);

	reset_rec(&b);
	assert_non_null(open_in(ns_b, &b));
	assert_true(pump(tcp_all_connected, &p, 5000));
	assert_true(wait_msgs(&b, 3, 3000));
	check_seqs(&b, 300, 3, 24);
	chanset_errq_stats(a.cs, &cur, &max, &nospace);
	assert_int_equal(cur, 0);
	side_close(&a);
	side_close(&b);
}

static void test_tcp_errq_bounded(void **state)
{
	struct side a;
	uint64_t cur, max, nospace;
	unsigned i;

	(void)state;
	side_init(&a, new_conf());
	a.conf->error_queue_length = 4;
	peer_conf(a.conf, CHAN_TCP, true, 0, 3784);     /* nobody listens on B */
	assert_non_null(open_in(ns_a, &a));
	for (i = 0; i < 10; i++)
		send_msgs(&a, i, 1, 16, true);
	chanset_errq_stats(a.cs, &cur, &max, &nospace);
	assert_int_equal(cur, 4);
	assert_int_equal(max, 4);
	assert_int_equal(nospace, 6);
	side_close(&a);
}

struct cur_want { struct chanset *cs; unsigned idx; };

static bool current_is(void *arg)
{
	struct cur_want *w = arg;

	return chanset_current(w->cs) == w->idx;
}

static void test_failover(void **state)
{
	struct side a, b;
	struct cur_want w;
	char txt[2048];

	(void)state;
	side_init(&a, new_conf());
	side_init(&b, new_conf());
	peer_conf(a.conf, CHAN_UDP, true, 0, 3785);
	peer_conf(a.conf, CHAN_UDP, true, 1, 3786);
	peer_conf(b.conf, CHAN_UDP, false, 0, 3785);
	peer_conf(b.conf, CHAN_UDP, false, 1, 3786);
	assert_non_null(open_in(ns_a, &a));
	assert_non_null(open_in(ns_b, &b));
	assert_int_equal(chanset_count(a.cs), 2);
	assert_int_equal(chanset_current(a.cs), 0);

	send_msgs(&a, 1, 1, 8, true);
	assert_true(wait_msgs(&b, 1, 3000));
	assert_int_equal(b.midx[0], 0);

	assert_int_equal(sh("ip link set va0 down"), 0);
	w.cs = a.cs;
	w.idx = 1;
	assert_true(pump(current_is, &w, 3000));
	assert_non_null(strstr(read_log(), "device `va1' becomes dedicated link"));

	chanset_print_links(a.cs, txt, sizeof(txt));
	assert_string_equal(txt,
		"UDP traffic device=va0 status=DOWN role=BACKUP:\n"
		"                   8 Bytes sent                    0 Bytes recv\n"
		"                   1 Pckts sent                    0 Pckts recv\n"
		"                   0 Error send                    0 Error recv\n\n"
		"UDP traffic device=va1 status=RUNNING role=ACTIVE:\n"
		"                   0 Bytes sent                    0 Bytes recv\n"
		"                   0 Pckts sent                    0 Pckts recv\n"
		"                   0 Error send                    0 Error recv\n\n");
	/* B's end lost its carrier, so B moved to link 1 on its own. */
	w.cs = b.cs;
	assert_true(pump(current_is, &w, 3000));
	chanset_print_links(b.cs, txt, sizeof(txt));
	assert_non_null(strstr(txt, "UDP traffic device=vb0 status=NO-CARRIER role=BACKUP:\n"));
	assert_non_null(strstr(txt, "UDP traffic device=vb1 status=RUNNING role=ACTIVE:\n"));

	/* Sending goes on over the other link. */
	send_msgs(&a, 2, 2, 8, true);
	assert_true(wait_msgs(&b, 3, 3000));
	assert_int_equal(b.midx[1], 1);
	assert_int_equal(b.midx[2], 1);

	send_msgs(&b, 50, 1, 8, true);
	assert_true(wait_msgs(&a, 1, 3000));
	assert_int_equal(a.midx[0], 1);

	/* Nothing left to fail over to. */
	assert_int_equal(sh("ip link set va1 down"), 0);
	pump(never, NULL, 300);
	assert_non_null(strstr(read_log(), "no dedicated links available!"));
	assert_int_equal(chanset_current(a.cs), 1);

	/* The first link back is taken at once. */
	assert_int_equal(sh("ip link set va0 up"), 0);
	w.cs = a.cs;
	w.idx = 0;
	assert_true(pump(current_is, &w, 5000));
	assert_int_equal(sh("ip link set va1 up"), 0);
	assert_true(pump(links_running, NULL, 5000));
	side_close(&a);
	side_close(&b);
}

static void v6(union addr *a, const char *s)
{
	memset(a, 0, sizeof(*a));
	assert_int_equal(inet_pton(AF_INET6, s, a->b), 1);
}

static void test_mcast_ipv6(void **state)
{
	struct side a, b;
	struct conf_channel *ch;

	(void)state;
	side_init(&a, new_conf());
	side_init(&b, new_conf());
	ch = add_chan(a.conf, CHAN_MCAST, "va0", 3790);
	ch->family = AF_INET6;
	v6(&ch->addr, "ff02::3780");
	ch->have_addr = true;
	ch = add_chan(b.conf, CHAN_MCAST, "vb0", 3790);
	ch->family = AF_INET6;
	v6(&ch->addr, "ff02::3780");
	ch->have_addr = true;
	assert_non_null(open_in(ns_a, &a));
	assert_non_null(open_in(ns_b, &b));

	send_msgs(&a, 10, 2, 32, true);
	assert_true(wait_msgs(&b, 2, 3000));
	check_seqs(&b, 10, 2, 32);
	send_msgs(&b, 20, 1, 8, true);
	assert_true(wait_msgs(&a, 1, 3000));
	check_seqs(&a, 20, 1, 8);
	pump(never, NULL, 150);
	assert_int_equal(a.nmsgs, 1);
	assert_int_equal(b.nmsgs, 2);
	/* IPv6 and UDP headers: 1500 - 28 is still the batching limit (1.4.x). */
	assert_int_equal(chanset_mtu_payload(a.cs), 1471);
	side_close(&a);
	side_close(&b);
}

static void test_udp_ipv6(void **state)
{
	struct side a, b;
	struct conf_channel *ch;

	(void)state;
	side_init(&a, new_conf());
	side_init(&b, new_conf());
	ch = add_chan(a.conf, CHAN_UDP, "va0", 3791);
	ch->family = AF_INET6;
	v6(&ch->addr, "fd77:0::1");
	ch->have_addr = true;
	v6(&ch->dest, "fd77:0::2");
	ch->have_dest = true;
	ch = add_chan(b.conf, CHAN_UDP, "vb0", 3791);
	ch->family = AF_INET6;
	v6(&ch->addr, "fd77:0::2");
	ch->have_addr = true;
	v6(&ch->dest, "fd77:0::1");
	ch->have_dest = true;
	assert_non_null(open_in(ns_a, &a));
	assert_non_null(open_in(ns_b, &b));
	send_msgs(&a, 1, 3, 12, true);
	assert_true(wait_msgs(&b, 3, 3000));
	check_seqs(&b, 1, 3, 12);
	send_msgs(&b, 4, 1, 8, true);
	assert_true(wait_msgs(&a, 1, 3000));
	side_close(&a);
	side_close(&b);
}

/* What was batched before the switch leaves on the new current link. */
static void test_follow_peer(void **state)
{
	struct side a, b;

	(void)state;
	side_init(&a, new_conf());
	side_init(&b, new_conf());
	mcast_conf(a.conf, true, 0, 3792);
	mcast_conf(a.conf, true, 1, 3793);
	mcast_conf(b.conf, false, 0, 3792);
	mcast_conf(b.conf, false, 1, 3793);
	a.conf->default_channel = 1;
	assert_non_null(open_in(ns_a, &a));
	assert_non_null(open_in(ns_b, &b));
	assert_int_equal(chanset_current(a.cs), 1);     /* the Default one */
	assert_int_equal(chanset_current(b.cs), 0);

	send_msgs(&a, 1, 2, 16, false);
	chanset_set_current(a.cs, 0);
	chanset_set_current(a.cs, 7);                   /* no such link: ignored */
	assert_int_equal(chanset_current(a.cs), 0);
	chanset_flush(a.cs);
	assert_true(wait_msgs(&b, 2, 3000));
	assert_int_equal(b.ndgrams, 1);
	assert_int_equal(b.midx[0], 0);
	assert_int_equal(b.midx[1], 0);
	assert_int_equal(chanset_stats(a.cs, 1)->msgs_sent, 0);
	assert_int_equal(chanset_stats(a.cs, 0)->msgs_sent, 1);
	side_close(&a);
	side_close(&b);
}

static size_t refuse(struct ctd *d, unsigned idx, const uint8_t *data, size_t len,
		     const void *from, size_t fromlen)
{
	(void)d; (void)idx; (void)data; (void)len; (void)from; (void)fromlen;
	return 0;
}

/* Stream reassembly without sockets: any split gives the same messages. */
static void test_rbuf_splits(void **state)
{
	static uint8_t stream[400000];
	struct chan_rbuf r;
	struct side *s = calloc(1, sizeof(*s));
	struct ctd_conf *c = new_conf();
	size_t len = 0, off;
	unsigned round, i, n = 0;

	(void)state;
	assert_non_null(s);
	add_chan(c, CHAN_TCP, "va0", 1);
	s->d.conf = c;
	for (i = 0; len < sizeof(stream) - 70000; i++, n++) {
		uint16_t ml = (uint16_t)(i % 50 == 49 ? 60000 : 8 + 4 * (i % 77));

		put_msg(stream + len, i, ml);
		len += ml;
	}
	assert_int_equal(chan_rbuf_init(&r), 0);
	srand(1);
	for (round = 0; round < 20; round++) {
		reset_rec(s);
		for (off = 0; off < len; ) {
			size_t k = round == 0 ? len : (size_t)(rand() % (round < 10 ? 40 : 9000)) + 1;

			if (k > len - off)
				k = len - off;
			chan_rbuf_push(&r, stream + off, k, record, &s->d, 0, NULL, 0);
			off += k;
		}
		assert_int_equal(r.len, 0);
		assert_int_equal(s->nmsgs, n);
		for (i = 0; i < n; i++)
			assert_int_equal(s->seq[i], i);
	}
	/* Half a message waits for the rest. */
	reset_rec(s);
	put_msg(stream, 1, 60000);
	chan_rbuf_push(&r, stream, 30000, record, &s->d, 0, NULL, 0);
	assert_int_equal(s->nmsgs, 0);
	assert_int_equal(r.len, 30000);
	chan_rbuf_push(&r, stream + 30000, 30000, record, &s->d, 0, NULL, 0);
	assert_int_equal(s->nmsgs, 1);
	assert_int_equal(r.len, 0);
	/* A callback that never consumes cannot wedge the buffer. */
	for (i = 0; i < 3; i++)
		chan_rbuf_push(&r, stream, 30000, refuse, &s->d, 0, NULL, 0);
	assert_int_equal(r.resets, 1);
	assert_int_equal(r.len, 90000 - CHAN_RBUF_SIZE);
	chan_rbuf_free(&r);
	free(c);
	free(s);
}

struct dgram_want { struct side *s; unsigned n; };

static bool got_dgrams(void *arg)
{
	struct dgram_want *w = arg;

	return w->s->ndgrams >= w->n;
}

/* A flood on one channel cannot starve the rest of the loop. */
static void test_iteration_limit(void **state)
{
	struct side a, b;
	struct dgram_want w = { &b, 1 };
	unsigned i;

	(void)state;
	pair_conf(&a, &b, CHAN_UDP, 3794);
	b.conf->event_iteration_limit = 2;
	assert_non_null(open_in(ns_a, &a));
	assert_non_null(open_in(ns_b, &b));
	for (i = 0; i < 6; i++)
		send_msgs(&a, i, 1, 8, true);
	assert_true(pump(got_dgrams, &w, 3000));
	assert_true(b.ndgrams <= 2);
	w.n = 6;
	assert_true(pump(got_dgrams, &w, 3000));
	check_seqs(&b, 0, 6, 8);
	side_close(&a);
	side_close(&b);
}

/* Packet socket on `ifname` in namespace ns: sees the datagrams as sent. */
static int capture_open(int ns, const char *ifname)
{
	struct sockaddr_ll sll;
	int fd;

	assert_int_equal(setns(ns, CLONE_NEWNET), 0);
	fd = socket(AF_PACKET, SOCK_DGRAM | SOCK_NONBLOCK, htons(ETH_P_IP));
	memset(&sll, 0, sizeof(sll));
	sll.sll_family = AF_PACKET;
	sll.sll_protocol = htons(ETH_P_IP);
	sll.sll_ifindex = (int)if_nametoindex(ifname);
	assert_true(fd >= 0 && sll.sll_ifindex > 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sll, sizeof(sll)), 0);
	assert_int_equal(setns(ns_a, CLONE_NEWNET), 0);
	return fd;
}

/* UDP checksum field of the first incoming datagram to `port`, or -1. */
static int capture_csum(int fd, uint16_t port)
{
	uint8_t pkt[2048];
	struct sockaddr_ll from;
	socklen_t fl = sizeof(from);
	ssize_t n;

	while ((n = recvfrom(fd, pkt, sizeof(pkt), 0, (struct sockaddr *)&from, &fl)) > 0) {
		size_t ihl = (size_t)(pkt[0] & 0x0f) * 4;

		fl = sizeof(from);
		if (from.sll_pkttype == PACKET_OUTGOING || (size_t)n < ihl + 8 ||
		    pkt[9] != IPPROTO_UDP || (pkt[ihl + 2] << 8 | pkt[ihl + 3]) != port)
			continue;
		return pkt[ihl + 6] << 8 | pkt[ihl + 7];
	}
	return -1;
}

/* `Checksum off` sends IPv4 datagrams with a zero UDP checksum; `on` does not. */
static void test_checksum_option(void **state)
{
	struct side a, b;
	int cap_b, cap_a, csum;

	(void)state;
	pair_conf(&a, &b, CHAN_UDP, 3795);
	a.conf->channels[0].checksum = false;
	assert_non_null(open_in(ns_a, &a));
	assert_non_null(open_in(ns_b, &b));
	cap_b = capture_open(ns_b, "vb0");
	cap_a = capture_open(ns_a, "va0");

	send_msgs(&a, 1, 1, 8, true);
	assert_true(wait_msgs(&b, 1, 3000));
	assert_int_equal(capture_csum(cap_b, 3795), 0);
	send_msgs(&b, 2, 1, 8, true);
	assert_true(wait_msgs(&a, 1, 3000));
	csum = capture_csum(cap_a, 3795);
	assert_true(csum > 0);
	close(cap_a);
	close(cap_b);
	side_close(&a);
	side_close(&b);
}

static bool errq_empty(void *arg)
{
	uint64_t cur, max, nospace;

	chanset_errq_stats(arg, &cur, &max, &nospace);
	return cur == 0;
}

/*
 * A burst larger than the socket buffers while the peer is not reading:
 * sends would block, chunks (one partly sent) wait in the error queue and
 * drain when the socket is writable. With a short queue, whole chunks are
 * dropped and counted, but the stream the peer sees stays well formed.
 */
static void tcp_burst(unsigned qlen, bool expect_drops)
{
	struct side a, b;
	struct tcp_pair p = { &a, &b };
	uint64_t cur, max, nospace;
	unsigned i;

	/* Jumbo MTU: a chunk (two 4000-byte messages) exceeds the send buffer. */
	assert_int_equal(sh("ip link set va0 mtu 9000 && ip -n %s link set vb0 mtu 9000", nsname), 0);
	pair_conf(&a, &b, CHAN_TCP, 3796);
	a.conf->error_queue_length = qlen;
	a.conf->channels[0].sndbuf = 4096;
	b.conf->channels[0].rcvbuf = 4096;
	assert_non_null(open_in(ns_a, &a));
	assert_non_null(open_in(ns_b, &b));
	assert_true(pump(tcp_all_connected, &p, 5000));
	assert_int_equal(chanset_mtu_payload(a.cs), 9000 - 40 - 1);

	send_msgs(&a, 0, 1000, 4000, true);     /* 4 MB, nobody reads meanwhile */
	chanset_errq_stats(a.cs, &cur, &max, &nospace);
	assert_true(cur > 0);
	assert_true(pump(errq_empty, a.cs, 10000));
	chanset_errq_stats(a.cs, &cur, &max, &nospace);
	assert_true(wait_msgs(&b, 1000 - 2 * (unsigned)nospace, 5000));
	pump(never, NULL, 100);
	assert_int_equal(b.nmsgs, 1000 - 2 * nospace);   /* two messages per chunk */
	for (i = 1; i < b.nmsgs; i++)
		assert_true(b.seq[i] > b.seq[i - 1]);
	if (expect_drops)
		assert_true(nospace > 0);
	else
		assert_int_equal(nospace, 0);
	side_close(&a);
	side_close(&b);
}

/*
 * A fresh loop per test: a test that fails halfway leaves its channels
 * registered in its own loop, not in the next test's.
 */
static int loop_new(void **state)
{
	(void)state;
	loop = ev_new();
	return loop ? 0 : -1;
}

static int loop_free(void **state)
{
	(void)state;
	ev_free(loop);
	loop = NULL;
	return 0;
}

/* Also after a failed assertion, so later tests find both links up. */
static int links_up(void **state)
{
	bool ok = sh("ip link set va0 up && ip link set va1 up") == 0 &&
		  pump(links_running, NULL, 5000);

	loop_free(state);
	return ok ? 0 : -1;
}

/* Also after a failed assertion, so later tests see MTU 1500 again. */
static int restore_mtu(void **state)
{
	loop_free(state);
	return sh("ip link set va0 mtu 1500 && ip -n %s link set vb0 mtu 1500", nsname);
}

static void test_tcp_backpressure(void **state)
{
	(void)state;
	tcp_burst(1000, false);
	tcp_burst(16, true);
}

/* ---- interop with Debian's conntrackd 1.4.7, when installed ---- */

#define DEBIAN_CTD "/usr/sbin/conntrackd"

static pid_t io_pid;            /* the Debian daemon we started, 0 if none */
static char io_dir[128];

static pid_t debian_start(const char *dir, const char *block)
{
	char conf[256], out[256];
	FILE *f;
	pid_t pid;

	snprintf(conf, sizeof(conf), "%s/c.conf", dir);
	snprintf(out, sizeof(out), "%s/out", dir);
	f = fopen(conf, "w");
	assert_non_null(f);
	fprintf(f, "Sync {\n Mode FTFW { }\n %s\n}\nGeneral {\n Systemd off\n"
		" LogFile %s/log\n LockFile %s/lock\n UNIX { Path %s/sock }\n}\n",
		block, dir, dir, dir);
	fclose(f);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		if (setns(ns_b, CLONE_NEWNET) < 0 || !freopen(out, "w", stdout) ||
		    !freopen(out, "a", stderr))
			_exit(126);
		execl(DEBIAN_CTD, "conntrackd", "-C", conf, (char *)NULL);
		_exit(127);
	}
	io_pid = pid;
	return pid;
}

static void debian_stop(pid_t pid)
{
	uint64_t end = ev_now_ms() + 5000;
	int st;

	kill(pid, SIGTERM);
	while (waitpid(pid, &st, WNOHANG) == 0) {
		if (ev_now_ms() > end) {
			kill(pid, SIGKILL);
			waitpid(pid, &st, 0);
			break;
		}
		pump(never, NULL, 20);
	}
	io_pid = 0;
}

/* After a failed assertion too: no daemon or files left behind. */
static int io_cleanup(void **state)
{
	(void)state;
	if (io_pid > 0)
		debian_stop(io_pid);
	if (io_dir[0])
		sh("rm -rf %s", io_dir);
	io_dir[0] = '\0';
	return 0;
}

static int io_teardown(void **state)
{
	io_cleanup(state);
	return loop_free(state);
}

/* Numbers from Debian's `-s`: datagrams (or reads) received, malformed. */
static bool debian_stats(const char *dir, unsigned long long *recv,
			 unsigned long long *malformed)
{
	char cmd[300], line[256];
	FILE *p;
	bool in_chan = false, ok = false;

	snprintf(cmd, sizeof(cmd), DEBIAN_CTD " -C %s/c.conf -s 2>&1", dir);
	p = popen(cmd, "r");
	if (!p)
		return false;
	while (fgets(line, sizeof(line), p)) {
		unsigned long long x, y;

		if (strstr(line, "traffic (active device=vb0)"))
			in_chan = true;
		else if (in_chan && sscanf(line, " %llu Pckts sent %llu Pckts recv", &x, &y) == 2)
			*recv = y, in_chan = false, ok = true;
		else if (sscanf(line, " %llu Malformed msgs", &x) == 1)
			*malformed = x;
	}
	pclose(p);
	return ok;
}

struct io { struct side *a; unsigned sent; };

/* Keep sending ALIVE until Debian's daemon has answered something. */
static bool alive_until_answer(void *arg)
{
	struct io *io = arg;
	uint8_t m[8] = { 0x1a, 0x10, 0, 8, 0, 0, 0, 0 };

	if (io->a->nframes > 0)
		return true;
	m[7] = (uint8_t)io->sent++;
	chanset_send(io->a->cs, m, sizeof(m));
	chanset_flush(io->a->cs);
	pump(never, NULL, 100);
	return false;
}

static void interop_one(enum chan_kind k)
{
	static const char *const blocks[] = {
		[CHAN_MCAST] = "Multicast {\n IPv4_address 225.0.0.50\n IPv4_interface 10.77.0.2\n"
			       " Group 3797\n Interface vb0\n }",
		[CHAN_UDP] = "UDP {\n IPv4_address 10.77.0.2\n IPv4_Destination_Address 10.77.0.1\n"
			     " Port 3797\n Interface vb0\n }",
		[CHAN_TCP] = "TCP {\n IPv4_address 10.77.0.2\n IPv4_Destination_Address 10.77.0.1\n"
			     " Port 3797\n Interface vb0\n }",
	};
	char *dir = io_dir;
	struct side a;
	struct io io = { &a, 0 };
	unsigned long long recv = 0, malformed = 99;
	pid_t pid;

	snprintf(io_dir, sizeof(io_dir), "/tmp/ctdchan-%d-io%d", (int)getpid(), (int)k);
	assert_int_equal(sh("mkdir -p %s", dir), 0);
	side_init(&a, new_conf());
	if (k == CHAN_MCAST)
		mcast_conf(a.conf, true, 0, 3797);
	else
		peer_conf(a.conf, k, true, 0, 3797);
	assert_non_null(open_in(ns_a, &a));
	pid = debian_start(dir, blocks[k]);

	/* Its answers (ACK, HELLO) reach us and parse as whole messages. */
	assert_true(pump(alive_until_answer, &io, 8000));
	pump(never, NULL, 200);
	/* And it took our datagrams as well-formed sync traffic. */
	assert_true(debian_stats(dir, &recv, &malformed));
	assert_true(recv >= 1);
	assert_int_equal(malformed, 0);
	debian_stop(pid);
	side_close(&a);
	io_cleanup(NULL);
}

static void test_debian_interop(void **state)
{
	(void)state;
	if (access(DEBIAN_CTD, X_OK) != 0)
		skip();
	interop_one(CHAN_MCAST);
	interop_one(CHAN_UDP);
	interop_one(CHAN_TCP);
}

/* The parser's view of a channel block opens and talks as the hand-made one. */
static void from_config(const char *text, struct side *b)
{
	struct side a;
	struct ctd_conf *c;

	c = conf_load_buffer("inline.conf", text, strlen(text), stderr, stderr);
	assert_non_null(c);
	side_init(&a, c);
	assert_non_null(open_in(ns_a, &a));
	assert_non_null(open_in(ns_b, b));
	send_msgs(&a, 40, 3, 20, true);
	assert_true(wait_msgs(b, 3, 3000));
	check_seqs(b, 40, 3, 20);
	send_msgs(b, 50, 1, 12, true);
	assert_true(wait_msgs(&a, 1, 3000));
	check_seqs(&a, 50, 1, 12);
	chanset_close(a.cs);
	conf_free(c);
	side_close(b);
}

static void test_from_config(void **state)
{
	struct side b;

	(void)state;
	side_init(&b, new_conf());
	peer_conf(b.conf, CHAN_UDP, false, 0, 3798);
	from_config("Sync {\n\tMode FTFW { }\n\tUDP Default {\n"
		    "\t\tIPv4_address 10.77.0.1\n\t\tIPv4_Destination_Address 10.77.0.2\n"
		    "\t\tPort 3798\n\t\tInterface va0\n\t\tChecksum off\n\t}\n}\n"
		    "General {\n\tLockFile /tmp/ctdchan-unused.lock\n}\n", &b);

	side_init(&b, new_conf());
	mcast_conf(b.conf, false, 0, 3799);
	from_config("Sync {\n\tMode FTFW { }\n\tMulticast {\n"
		    "\t\tIPv4_address 225.0.0.50\n\t\tGroup 3799\n"
		    "\t\tIPv4_interface 10.77.0.1\n\t\tInterface va0\n"
		    "\t\tSndSocketBuffer 1249280\n\t\tRcvSocketBuffer 1249280\n\t}\n}\n"
		    "General {\n\tLockFile /tmp/ctdchan-unused.lock\n}\n", &b);

	side_init(&b, new_conf());
	peer_conf(b.conf, CHAN_TCP, false, 0, 3800);
	from_config("Sync {\n\tMode NOTRACK { }\n\tTCP {\n"
		    "\t\tIPv4_address 10.77.0.1\n\t\tIPv4_Destination_Address 10.77.0.2\n"
		    "\t\tPort 3800\n\t\tInterface va0\n\t}\n}\n"
		    "General {\n\tLockFile /tmp/ctdchan-unused.lock\n}\n", &b);
}

static void test_tcp_ipv6(void **state)
{
	struct side a, b;
	struct tcp_pair p = { &a, &b };
	struct conf_channel *ch;

	(void)state;
	side_init(&a, new_conf());
	side_init(&b, new_conf());
	ch = add_chan(a.conf, CHAN_TCP, "va0", 3801);
	ch->family = AF_INET6;
	v6(&ch->addr, "fd77:0::1");
	ch->have_addr = true;
	v6(&ch->dest, "fd77:0::2");
	ch->have_dest = true;
	ch = add_chan(b.conf, CHAN_TCP, "vb0", 3801);
	ch->family = AF_INET6;
	v6(&ch->addr, "fd77:0::2");
	ch->have_addr = true;
	v6(&ch->dest, "fd77:0::1");
	ch->have_dest = true;
	assert_non_null(open_in(ns_a, &a));
	assert_non_null(open_in(ns_b, &b));
	assert_true(pump(tcp_all_connected, &p, 5000));
	send_msgs(&a, 1, 5, 200, true);
	assert_true(wait_msgs(&b, 5, 3000));
	check_seqs(&b, 1, 5, 200);
	send_msgs(&b, 9, 1, 8, true);
	assert_true(wait_msgs(&a, 1, 3000));
	side_close(&a);
	side_close(&b);
}

/* An interface that disappears (RTM_DELLINK) fails over like one going down. */
static void test_failover_deleted_link(void **state)
{
	struct side a;
	struct cur_want w;
	struct conf_channel *ch;

	(void)state;
	assert_int_equal(sh("ip link add vx0 type veth peer name vx1 && "
			    "ip addr add 10.78.0.1/24 dev vx0 && ip link set vx0 up && "
			    "ip link set vx1 up"), 0);
	/* The veth carrier comes up asynchronously: a link without it at
	 * start-up is (rightly) not chosen, so wait for it, 2 s at most. */
	assert_int_equal(sh("for i in $(seq 100); do "
			    "ip -o link show vx0 | grep -q 'state UP' && exit 0; "
			    "sleep 0.02; done; exit 1"), 0);
	side_init(&a, new_conf());
	ch = add_chan(a.conf, CHAN_UDP, "vx0", 3802);
	v4(&ch->addr, "10.78.0.1");
	ch->have_addr = true;
	v4(&ch->dest, "10.78.0.2");
	ch->have_dest = true;
	peer_conf(a.conf, CHAN_UDP, true, 0, 3802);
	assert_non_null(open_in(ns_a, &a));
	assert_int_equal(chanset_current(a.cs), 0);
	assert_int_equal(sh("ip link del vx0"), 0);
	w.cs = a.cs;
	w.idx = 1;
	assert_true(pump(current_is, &w, 3000));
	assert_non_null(strstr(read_log(), "device `va0' becomes dedicated link"));
	side_close(&a);
}

/* The Default link is down when the daemon starts: the other one is used. */
static void test_down_at_start(void **state)
{
	struct side a;

	(void)state;
	assert_int_equal(sh("ip link set va0 down"), 0);
	side_init(&a, new_conf());
	peer_conf(a.conf, CHAN_UDP, true, 0, 3803);
	peer_conf(a.conf, CHAN_UDP, true, 1, 3803);
	assert_non_null(open_in(ns_a, &a));
	assert_int_equal(chanset_current(a.cs), 1);
	side_close(&a);
}

static void test_open_errors(void **state)
{
	struct side a;
	const char *log;

	(void)state;
	side_init(&a, new_conf());
	peer_conf(a.conf, CHAN_UDP, true, 0, 3787);
	snprintf(a.conf->channels[0].ifname, IF_NAMESIZE, "nosuch0");
	assert_null(open_in(ns_a, &a));
	log = read_log();
	assert_non_null(strstr(log, "can't open channel socket: interface 'nosuch0' not found "
				"(UDP block at test.conf:41)"));
	free(a.conf);

	/* An address this host does not have: the real reason, never "Success". */
	side_init(&a, new_conf());
	peer_conf(a.conf, CHAN_UDP, true, 0, 3787);
	v4(&a.conf->channels[0].addr, "10.77.9.9");
	assert_null(open_in(ns_a, &a));
	log = read_log();
	assert_non_null(strstr(log, "can't open channel socket: receive socket: "
				"Cannot assign requested address (UDP block at test.conf:41)"));
	assert_null(strstr(log, "Success"));
	free(a.conf);

	/* A second channel failing closes the first one again. */
	side_init(&a, new_conf());
	mcast_conf(a.conf, true, 0, 3788);
	mcast_conf(a.conf, true, 1, 3788);
	snprintf(a.conf->channels[1].ifname, IF_NAMESIZE, "nosuch1");
	assert_null(open_in(ns_a, &a));
	assert_non_null(strstr(read_log(), "interface 'nosuch1' not found (Multicast block at test.conf:42)"));
	free(a.conf);
	side_init(&a, new_conf());
	mcast_conf(a.conf, true, 0, 3788);
	assert_non_null(open_in(ns_a, &a));
	side_close(&a);
}

static void test_peer_str(void **state)
{
	struct sockaddr_in s4;
	struct sockaddr_in6 s6;
	char buf[64];

	(void)state;
	memset(&s4, 0, sizeof(s4));
	s4.sin_family = AF_INET;
	s4.sin_port = htons(3780);
	inet_pton(AF_INET, "10.0.0.1", &s4.sin_addr);
	assert_string_equal(chanset_peer_str(&s4, sizeof(s4), buf, sizeof(buf)), "10.0.0.1:3780");
	memset(&s6, 0, sizeof(s6));
	s6.sin6_family = AF_INET6;
	s6.sin6_port = htons(3781);
	inet_pton(AF_INET6, "fe80::1", &s6.sin6_addr);
	assert_string_equal(chanset_peer_str(&s6, sizeof(s6), buf, sizeof(buf)), "[fe80::1]:3781");
	/* A short sockaddr is not read past its end. */
	assert_string_equal(chanset_peer_str(&s6, 8, buf, sizeof(buf)), "unknown peer");
}


/* ---- authenticated sync (doc/auth.md) ---- */

#define KEY_A "1 00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n"
#define KEY_B "1 ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100\n"

static unsigned count_lines(const char *needle)
{
	char line[512];
	unsigned n = 0;
	FILE *f = fopen(logpath, "r");

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		n += strstr(line, needle) != NULL;
	fclose(f);
	return n;
}

static void key_file(char *path, size_t len, const char *tag, const char *text,
		     mode_t mode)
{
	FILE *f;

	snprintf(path, len, "/tmp/ctdchan-%d-%s.key", (int)getpid(), tag);
	unlink(path);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	assert_int_equal(chmod(path, mode), 0);
}

/* Send raw bytes to B's UDP port from A's namespace, as an intruder would. */
static void inject(uint16_t port, const void *buf, size_t len)
{
	struct sockaddr_in sa;
	int fd = socket(AF_INET, SOCK_DGRAM, 0);

	assert_true(fd >= 0);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons(port);
	inet_pton(AF_INET, "10.77.0.2", &sa.sin_addr);
	assert_int_equal(sendto(fd, buf, len, 0, (struct sockaddr *)&sa, sizeof(sa)),
			 (ssize_t)len);
	close(fd);
}

struct auth_want { struct side *s; uint64_t (*get)(const struct chan_auth_stats *); uint64_t n; };

static bool auth_reached(void *arg)
{
	struct auth_want *w = arg;

	return w->get(chanset_auth_stats(w->s->cs)) >= w->n;
}

static uint64_t g_no_trailer(const struct chan_auth_stats *a) { return a->no_trailer; }
static uint64_t g_bad_mac(const struct chan_auth_stats *a) { return a->bad_mac; }
static uint64_t g_unknown(const struct chan_auth_stats *a) { return a->unknown_key; }
static uint64_t g_replay(const struct chan_auth_stats *a) { return a->replay; }
static uint64_t g_accepted(const struct chan_auth_stats *a) { return a->accepted; }

static void test_auth_udp(void **state)
{
	struct side a, b;
	char ka[128], kb[128], txt[1024];
	struct auth_want w;
	struct auth_ctx forger;
	uint8_t msg[256];
	unsigned i;
	int n;

	(void)state;
	key_file(ka, sizeof(ka), "a", "# test key\n" KEY_A, 0600);
	key_file(kb, sizeof(kb), "b", KEY_A, 0600);
	pair_conf(&a, &b, CHAN_UDP, 3790);
	snprintf(a.conf->auth_key_file, sizeof(a.conf->auth_key_file), "%s", ka);
	snprintf(b.conf->auth_key_file, sizeof(b.conf->auth_key_file), "%s", kb);
	assert_non_null(open_in(ns_a, &a));
	assert_non_null(open_in(ns_b, &b));
	assert_true(chanset_auth_on(a.cs));

	/* Signed batches arrive whole; the callback never sees the trailer,
	 * and a datagram with its trailer still fits the 1500-byte MTU. */
	send_msgs(&a, 100, 60, 100, true);
	assert_true(wait_msgs(&b, 60, 3000));
	check_seqs(&b, 100, 60, 100);
	for (i = 0; i < b.ndgrams; i++) {
		assert_true(b.dlen[i] + AUTH_TRAILER_LEN <= 1500 - 28);
		assert_int_equal(b.dlen[i] % 100, 0);
	}
	assert_true(chanset_stats(a.cs, 0)->bytes_sent ==
		    60 * 100 + (uint64_t)b.ndgrams * AUTH_TRAILER_LEN);

	/* A plain 1.4.x datagram (an intruder) is refused and counted. */
	reset_rec(&b);
	put_msg(msg, 7, 16);
	inject(3790, msg, 16);
	w = (struct auth_want){ &b, g_no_trailer, 1 };
	assert_true(pump(auth_reached, &w, 3000));

	/* Signed with the wrong key, or naming a key B does not have. */
	auth_init(&forger, 1);
	assert_int_equal(auth_add_key(&forger, 1, "wrong", 5), 0);
	n = auth_sign(&forger, msg, 16, sizeof(msg));
	inject(3790, msg, (size_t)n);
	w = (struct auth_want){ &b, g_bad_mac, 1 };
	assert_true(pump(auth_reached, &w, 3000));
	auth_init(&forger, 1);
	assert_int_equal(auth_add_key(&forger, 9, "x", 1), 0);
	put_msg(msg, 7, 16);
	n = auth_sign(&forger, msg, 16, sizeof(msg));
	inject(3790, msg, (size_t)n);
	w = (struct auth_want){ &b, g_unknown, 1 };
	assert_true(pump(auth_reached, &w, 3000));
	assert_int_equal(b.nmsgs, 0);

	/* Correctly signed with the right key: once accepted, then a replay. */
	auth_init(&forger, (uint64_t)1 << 62);   /* above A's counter */
	assert_int_equal(auth_add_key(&forger, 1,
		"\x00\x11\x22\x33\x44\x55\x66\x77\x88\x99\xaa\xbb\xcc\xdd\xee\xff"
		"\x00\x11\x22\x33\x44\x55\x66\x77\x88\x99\xaa\xbb\xcc\xdd\xee\xff", 32), 0);
	put_msg(msg, 8, 16);
	n = auth_sign(&forger, msg, 16, sizeof(msg));
	inject(3790, msg, (size_t)n);
	assert_true(wait_msgs(&b, 1, 3000));
	inject(3790, msg, (size_t)n);
	w = (struct auth_want){ &b, g_replay, 1 };
	assert_true(pump(auth_reached, &w, 3000));
	assert_int_equal(b.nmsgs, 1);
	/* A's real counter is now below the window: its traffic is refused
	 * as too old, which is what replay protection must do. */
	assert_int_equal(chanset_auth_stats(b.cs)->too_old, 0);

	/* A burst of 40 forgeries from one host: counted one by one, logged
	 * at most once a second for that host (whatever its source ports). */
	{
		unsigned before = count_lines("refused data from 10.77.0.1:"), after;
		uint64_t bad = chanset_auth_stats(b.cs)->bad_mac;

		auth_init(&forger, 1);
		assert_int_equal(auth_add_key(&forger, 1, "wrong", 5), 0);
		for (i = 0; i < 40; i++) {
			put_msg(msg, 100 + i, 16);
			n = auth_sign(&forger, msg, 16, sizeof(msg));
			inject(3790, msg, (size_t)n);
		}
		w = (struct auth_want){ &b, g_bad_mac, bad + 40 };
		assert_true(pump(auth_reached, &w, 3000));
		after = count_lines("refused data from 10.77.0.1:");
		assert_true(after - before <= 2);
	}

	chanset_print_auth(b.cs, txt, sizeof(txt));
	assert_non_null(strstr(txt, "authentication statistics:\n"));
	assert_non_null(strstr(txt, "No trailer:"));
	assert_non_null(strstr(txt, "Bad MAC:\t\t                  41\n"));
	assert_non_null(strstr(txt, "Replayed:\t\t                   1\n"));
	/* The log names the peer and the reason. */
	assert_non_null(strstr(read_log(), "refused data from 10.77.0.1:"));
	assert_non_null(strstr(read_log(), "bad HMAC"));
	assert_non_null(strstr(read_log(), "no authentication trailer"));
	side_close(&a);
	side_close(&b);
	unlink(ka);
	unlink(kb);
}

static void test_auth_wrong_key_and_off(void **state)
{
	struct side a, b;
	char ka[128], kb[128], txt[256];
	struct auth_want w;

	(void)state;
	key_file(ka, sizeof(ka), "a", KEY_A, 0600);
	key_file(kb, sizeof(kb), "b", KEY_B, 0600);
	pair_conf(&a, &b, CHAN_UDP, 3791);
	snprintf(a.conf->auth_key_file, sizeof(a.conf->auth_key_file), "%s", ka);
	snprintf(b.conf->auth_key_file, sizeof(b.conf->auth_key_file), "%s", kb);
	assert_non_null(open_in(ns_a, &a));
	assert_non_null(open_in(ns_b, &b));
	send_msgs(&a, 1, 5, 40, true);
	send_msgs(&a, 6, 5, 40, true);
	w = (struct auth_want){ &b, g_bad_mac, 2 };
	assert_true(pump(auth_reached, &w, 3000));
	assert_int_equal(b.nmsgs, 0);
	assert_int_equal(chanset_auth_stats(b.cs)->accepted, 0);
	side_close(&b);

	/* Without a key file nothing is added: plain 1.4.x datagrams and no
	 * statistics block. A's signed datagram is then just 48 bytes of
	 * trailing garbage to the wire decoder; here the callback sees it all. */
	side_init(&b, new_conf());
	peer_conf(b.conf, CHAN_UDP, false, 0, 3791);
	assert_non_null(open_in(ns_b, &b));
	assert_false(chanset_auth_on(b.cs));
	assert_int_equal(chanset_print_auth(b.cs, txt, sizeof(txt)), 0);
	assert_string_equal(txt, "");
	send_msgs(&a, 20, 1, 40, true);
	assert_true(wait_msgs(&b, 1, 3000));
	assert_int_equal(b.dlen[0], 40 + AUTH_TRAILER_LEN);
	reset_rec(&a);
	send_msgs(&b, 30, 1, 40, true);
	w = (struct auth_want){ &a, g_no_trailer, 1 };
	assert_true(pump(auth_reached, &w, 3000));
	assert_int_equal(chanset_stats(b.cs, 0)->bytes_sent, 40);
	side_close(&a);
	side_close(&b);
	unlink(ka);
	unlink(kb);
}

static void test_auth_tcp(void **state)
{
	struct side a, b;
	struct tcp_pair p = { &a, &b };
	char ka[128], kb[128];
	struct auth_want w;
	unsigned i;

	(void)state;
	key_file(ka, sizeof(ka), "a", KEY_A, 0600);
	key_file(kb, sizeof(kb), "b", "2 abcd\n" KEY_A, 0600);
	pair_conf(&a, &b, CHAN_TCP, 3792);
	snprintf(a.conf->auth_key_file, sizeof(a.conf->auth_key_file), "%s", ka);
	snprintf(b.conf->auth_key_file, sizeof(b.conf->auth_key_file), "%s", kb);
	assert_non_null(open_in(ns_a, &a));
	assert_non_null(open_in(ns_b, &b));
	assert_true(pump(tcp_all_connected, &p, 5000));
	/* Records are reassembled from a stream cut anywhere; B signs with
	 * key 2 (its first line), which A does not hold. */
	for (i = 0; i < 600; i++)
		send_msgs(&a, 5000 + i, 1, (uint16_t)(8 + 4 * (i % 97)), false);
	chanset_flush(a.cs);
	assert_true(wait_msgs(&b, 600, 5000));
	for (i = 0; i < 600; i++)
		assert_int_equal(b.mlen[i], 8 + 4 * (i % 97));
	w = (struct auth_want){ &b, g_accepted, 2 };
	assert_true(pump(auth_reached, &w, 1000));
	send_msgs(&b, 70, 3, 40, true);
	w = (struct auth_want){ &a, g_unknown, 1 };
	assert_true(pump(auth_reached, &w, 3000));
	assert_int_equal(a.nmsgs, 0);
	side_close(&a);
	side_close(&b);
	unlink(ka);
	unlink(kb);
}

/* The key file is refused, naming it and why, before any socket opens. */
static void test_auth_key_file_checks(void **state)
{
	static const struct { const char *text; mode_t mode; const char *why; } bad[] = {
		{ KEY_A, 0640, "group or other may access it" },
		{ KEY_A, 0604, "group or other may access it" },
		{ "1 abc\n", 0600, ":1: key must be an even number of hex digits" },
		{ "# c\n\n0 abcd\n", 0600, ":3: expected `ID HEXKEY'" },
		{ "1 ab\n1 cd\n", 0600, ":2: key id used twice" },
		{ "# nothing\n", 0600, "no key in the file" },
	};
	char path[128], link[160], want[256];
	struct side s;
	unsigned i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		key_file(path, sizeof(path), "bad", bad[i].text, bad[i].mode);
		side_init(&s, new_conf());
		peer_conf(s.conf, CHAN_UDP, true, 0, 3793);
		snprintf(s.conf->auth_key_file, sizeof(s.conf->auth_key_file), "%s", path);
		assert_null(open_in(ns_a, &s));
		snprintf(want, sizeof(want), "AuthKeyFile %s", path);
		assert_non_null(strstr(read_log(), want));
		assert_non_null(strstr(read_log(), bad[i].why));
		free(s.conf);
	}
	/* Not owned by root. */
	key_file(path, sizeof(path), "bad", KEY_A, 0600);
	assert_int_equal(chown(path, 65534, 65534), 0);
	side_init(&s, new_conf());
	peer_conf(s.conf, CHAN_UDP, true, 0, 3793);
	snprintf(s.conf->auth_key_file, sizeof(s.conf->auth_key_file), "%s", path);
	assert_null(open_in(ns_a, &s));
	assert_non_null(strstr(read_log(), "not owned by root"));
	/* A symlink to a perfectly good key is not followed. */
	assert_int_equal(chown(path, 0, 0), 0);
	snprintf(link, sizeof(link), "%s.lnk", path);
	unlink(link);
	assert_int_equal(symlink(path, link), 0);
	snprintf(s.conf->auth_key_file, sizeof(s.conf->auth_key_file), "%s", link);
	assert_null(open_in(ns_a, &s));
	assert_non_null(strstr(read_log(), "is a symbolic link (refused)"));
	/* A directory. */
	snprintf(s.conf->auth_key_file, sizeof(s.conf->auth_key_file), "/tmp");
	assert_null(open_in(ns_a, &s));
	assert_non_null(strstr(read_log(), "AuthKeyFile /tmp: not a regular file"));
	/* The good file opens. */
	snprintf(s.conf->auth_key_file, sizeof(s.conf->auth_key_file), "%s", path);
	assert_non_null(open_in(ns_a, &s));
	side_close(&s);
	unlink(link);
	unlink(path);
}

/* ---- namespaces ---- */

static void drop_ns(void)
{
	if (nsname[0])
		sh("ip netns del %s", nsname);  /* also removes the veth pairs */
	nsname[0] = '\0';
}

static int setup(void **state)
{
	char path[128];

	(void)state;
	if (geteuid() != 0) {
		fprintf(stderr, "test_channel needs root (network namespaces)\n");
		return -1;
	}
	if (unshare(CLONE_NEWNET) < 0)
		return -1;
	ns_a = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	snprintf(nsname, sizeof(nsname), "ctdchan-%d", (int)getpid());
	snprintf(logpath, sizeof(logpath), "/tmp/ctdchan-%d.log", (int)getpid());
	if (sh("ip link set lo up") || sh("ip netns add %s", nsname))
		return -1;
	atexit(drop_ns);        /* even if setup fails halfway */
	/*
	 * No duplicate address detection: IPv6 is usable at once; and IPv6
	 * addresses survive the failover test's link down.
	 */
	if (sh("sysctl -qw net.ipv6.conf.default.accept_dad=0 "
	       "net.ipv6.conf.default.keep_addr_on_down=1") ||
	    sh("ip netns exec %s sysctl -qw net.ipv6.conf.default.accept_dad=0 "
	       "net.ipv6.conf.default.keep_addr_on_down=1", nsname))
		return -1;
	snprintf(path, sizeof(path), "/run/netns/%s", nsname);
	ns_b = open(path, O_RDONLY | O_CLOEXEC);
	if (ns_b < 0)
		return -1;
	for (unsigned n = 0; n < 2; n++) {
		if (sh("ip link add va%u type veth peer name vb%u netns %s", n, n, nsname) ||
		    sh("ip addr add 10.77.%u.1/24 dev va%u && ip link set va%u up", n, n, n) ||
		    sh("ip addr add fd77:%u::1/64 dev va%u nodad", n, n) ||
		    sh("ip -n %s addr add 10.77.%u.2/24 dev vb%u && ip -n %s link set vb%u up "
		       "&& ip -n %s link set lo up", nsname, n, n, nsname, n, nsname) ||
		    sh("ip -n %s addr add fd77:%u::2/64 dev vb%u nodad", nsname, n, n))
			return -1;
	}
	loop = ev_new();
	if (!loop || log_open(logpath, -1, false) < 0)
		return -1;
	if (!pump(links_running, NULL, 5000))
		return -1;
	loop_free(NULL);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	log_close();
	unlink(logpath);
	if (ns_b >= 0)
		close(ns_b);
	drop_ns();
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_peer_str),
		cmocka_unit_test_setup_teardown(test_auth_udp, loop_new, loop_free),
		cmocka_unit_test_setup_teardown(test_auth_wrong_key_and_off, loop_new, loop_free),
		cmocka_unit_test_setup_teardown(test_auth_tcp, loop_new, loop_free),
		cmocka_unit_test_setup_teardown(test_auth_key_file_checks, loop_new, loop_free),
		cmocka_unit_test_setup_teardown(test_rbuf_splits, loop_new, loop_free),
		cmocka_unit_test_setup_teardown(test_mcast_both_ways, loop_new, loop_free),
		cmocka_unit_test_setup_teardown(test_batching_mtu, loop_new, loop_free),
		cmocka_unit_test_setup_teardown(test_udp_both_ways_and_stats_text, loop_new, loop_free),
		cmocka_unit_test_setup_teardown(test_udp_coalesced_reads_resume, loop_new, loop_free),
		cmocka_unit_test_setup_teardown(test_tcp_reassembly_reconnect, loop_new, loop_free),
		cmocka_unit_test_setup_teardown(test_tcp_errq_bounded, loop_new, loop_free),
		cmocka_unit_test_setup_teardown(test_tcp_backpressure, loop_new, restore_mtu),
		cmocka_unit_test_setup_teardown(test_mcast_ipv6, loop_new, loop_free),
		cmocka_unit_test_setup_teardown(test_udp_ipv6, loop_new, loop_free),
		cmocka_unit_test_setup_teardown(test_follow_peer, loop_new, loop_free),
		cmocka_unit_test_setup_teardown(test_iteration_limit, loop_new, loop_free),
		cmocka_unit_test_setup_teardown(test_checksum_option, loop_new, loop_free),
		cmocka_unit_test_setup_teardown(test_failover, loop_new, links_up),
		cmocka_unit_test_setup_teardown(test_from_config, loop_new, loop_free),
		cmocka_unit_test_setup_teardown(test_tcp_ipv6, loop_new, loop_free),
		cmocka_unit_test_setup_teardown(test_failover_deleted_link, loop_new, loop_free),
		cmocka_unit_test_setup_teardown(test_down_at_start, loop_new, links_up),
		cmocka_unit_test_setup_teardown(test_open_errors, loop_new, loop_free),
		cmocka_unit_test_setup_teardown(test_debian_interop, loop_new, io_teardown),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
