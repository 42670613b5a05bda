/*
 * inject: create many distinct conntracks / expectations through batched
 * ctnetlink, as fast as the kernel takes them or paced at a given rate.
 *
 *   inject create [-n N] [-e E] [-r rate] [-p tcp|udp] [-o offset] [-b batch]
 *                 [-s srcbase] [-d dst] [-t timeout] [-A]
 *   inject rate   [same]   create, print the kernel's create rate, flush
 *   inject count  [-w target -T secs]  conntracks and expectations in the
 *                 table of the current netns (optionally wait for target)
 *   inject flush              flush conntracks and expectations
 *
 * Output is one "key=value ..." line so scripts can parse it.
 * Entry i gets source address srcbase+i, so N entries are distinct and
 * spread over the hash; expectation masters use 11.0.0.0/8 (ftp, port 21).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <libmnl/libmnl.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <libnetfilter_conntrack/libnetfilter_conntrack.h>
#include <libnetfilter_conntrack/libnetfilter_conntrack_tcp.h>

#define BUFSZ	(1 << 20)	/* one send batch; 500 requests ~ 100 KB */
#define SOCKBUF	(32 << 20)	/* acks of a whole batch must fit */

struct opts {
	unsigned n, e, rate, batch, offset, timeout;
	int proto;
	int ack;
	uint32_t srcbase, dst;
	long wait_target;
	unsigned wait_secs;
};

struct inj {
	struct mnl_socket *nl;
	char *buf;
	size_t off;
	unsigned queued;	/* requests in buf */
	unsigned pending;	/* requests sent, ack not yet read */
	unsigned seq;
	unsigned long errors;
	int last_err;
	int ack;
};

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
	fprintf(stderr, "inject: %s: %s\n", what, strerror(errno));
	exit(2);
}

static void inj_open(struct inj *j, int ack)
{
	int one = 1, sz = SOCKBUF;

	memset(j, 0, sizeof(*j));
	j->ack = ack;
	j->nl = mnl_socket_open(NETLINK_NETFILTER);
	if (j->nl == NULL)
		die("netlink socket");
	if (mnl_socket_bind(j->nl, 0, MNL_SOCKET_AUTOPID) < 0)
		die("netlink bind");
	/* FORCE variants need CAP_NET_ADMIN; fall back to the capped ones. */
	if (setsockopt(mnl_socket_get_fd(j->nl), SOL_SOCKET, SO_RCVBUFFORCE,
		       &sz, sizeof(sz)) < 0)
		setsockopt(mnl_socket_get_fd(j->nl), SOL_SOCKET, SO_RCVBUF,
			   &sz, sizeof(sz));
	if (setsockopt(mnl_socket_get_fd(j->nl), SOL_SOCKET, SO_SNDBUFFORCE,
		       &sz, sizeof(sz)) < 0)
		setsockopt(mnl_socket_get_fd(j->nl), SOL_SOCKET, SO_SNDBUF,
			   &sz, sizeof(sz));
	/* Acks carry only the header, not a copy of each request. */
	mnl_socket_setsockopt(j->nl, NETLINK_CAP_ACK, &one, sizeof(one));
	j->buf = malloc(BUFSZ);
	if (j->buf == NULL)
		die("malloc");
	j->seq = (unsigned)time(NULL);
}

static struct nlmsghdr *inj_put(struct inj *j, int subsys, int type,
				int flags, int family)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(j->buf + j->off);
	struct nfgenmsg *nfg;

	nlh->nlmsg_type = (subsys << 8) | type;
	nlh->nlmsg_flags = NLM_F_REQUEST | flags | (j->ack ? NLM_F_ACK : 0);
	nlh->nlmsg_seq = ++j->seq;
	nfg = mnl_nlmsg_put_extra_header(nlh, sizeof(*nfg));
	nfg->nfgen_family = family;
	nfg->version = NFNETLINK_V0;
	nfg->res_id = 0;
	return nlh;
}

static void inj_commit(struct inj *j, struct nlmsghdr *nlh)
{
	j->off += NLMSG_ALIGN(nlh->nlmsg_len);
	j->queued++;
}

/* Read acks (or, without NLM_F_ACK, whatever errors are queued). */
static void inj_drain(struct inj *j, int block)
{
	static char rb[1 << 16];
	int fd = mnl_socket_get_fd(j->nl);

	while (j->pending > 0 || !block) {
		ssize_t r = recv(fd, rb, sizeof(rb), block ? 0 : MSG_DONTWAIT);
		struct nlmsghdr *nlh;
		int len;

		if (r < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN && !block)
				return;
			if (errno == ENOBUFS) {	/* acks lost: count them gone */
				fprintf(stderr, "inject: ack buffer overrun\n");
				j->pending = 0;
				return;
			}
			die("recv");
		}
		len = (int)r;
		for (nlh = (struct nlmsghdr *)rb; mnl_nlmsg_ok(nlh, len);
		     nlh = mnl_nlmsg_next(nlh, &len)) {
			if (nlh->nlmsg_type == NLMSG_ERROR) {
				struct nlmsgerr *e = mnl_nlmsg_get_payload(nlh);

				if (mnl_nlmsg_get_payload_len(nlh) < sizeof(int)) {
					fprintf(stderr, "inject: truncated netlink "
						"error message (%u bytes)\n",
						nlh->nlmsg_len);
					exit(2);
				}
				if (e->error != 0) {
					j->errors++;
					j->last_err = -e->error;
				}
				if (j->pending > 0)
					j->pending--;
			}
		}
	}
}

static void inj_flush(struct inj *j)
{
	if (j->off == 0)
		return;
	if (mnl_socket_sendto(j->nl, j->buf, j->off) < 0)
		die("sendto");
	j->pending += j->queued;
	j->off = 0;
	j->queued = 0;
	if (j->ack)
		inj_drain(j, 1);
	else
		inj_drain(j, 0);
}

static void set_tuple(struct nf_conntrack *ct, int proto, uint32_t s,
		      uint32_t d, uint16_t sp, uint16_t dp)
{
	nfct_set_attr_u8(ct, ATTR_L3PROTO, AF_INET);
	nfct_set_attr_u32(ct, ATTR_IPV4_SRC, htonl(s));
	nfct_set_attr_u32(ct, ATTR_IPV4_DST, htonl(d));
	nfct_set_attr_u8(ct, ATTR_L4PROTO, proto);
	nfct_set_attr_u16(ct, ATTR_PORT_SRC, htons(sp));
	nfct_set_attr_u16(ct, ATTR_PORT_DST, htons(dp));
	nfct_set_attr_u8(ct, ATTR_REPL_L3PROTO, AF_INET);
	nfct_set_attr_u32(ct, ATTR_REPL_IPV4_SRC, htonl(d));
	nfct_set_attr_u32(ct, ATTR_REPL_IPV4_DST, htonl(s));
	nfct_set_attr_u8(ct, ATTR_REPL_L4PROTO, proto);
	nfct_set_attr_u16(ct, ATTR_REPL_PORT_SRC, htons(dp));
	nfct_set_attr_u16(ct, ATTR_REPL_PORT_DST, htons(sp));
}

static void put_ct(struct inj *j, const struct opts *o, unsigned i,
		   int master)
{
	struct nf_conntrack *ct = nfct_new();
	struct nlmsghdr *nlh;
	uint32_t src = (master ? 0x0b000001u : o->srcbase) + i;
	int proto = master ? IPPROTO_TCP : o->proto;

	if (ct == NULL)
		die("nfct_new");
	set_tuple(ct, proto, src, o->dst, 1024 + i % 60000,
		  master ? 21 : 80);
	nfct_set_attr_u32(ct, ATTR_TIMEOUT, o->timeout);
	nfct_set_attr_u32(ct, ATTR_STATUS, IPS_SEEN_REPLY | IPS_ASSURED);
	if (proto == IPPROTO_TCP)
		nfct_set_attr_u8(ct, ATTR_TCP_STATE,
				 TCP_CONNTRACK_ESTABLISHED);
	if (master)
		nfct_set_attr(ct, ATTR_HELPER_NAME, "ftp");
	nlh = inj_put(j, NFNL_SUBSYS_CTNETLINK, IPCTNL_MSG_CT_NEW,
		      NLM_F_CREATE | NLM_F_EXCL, AF_INET);
	nfct_nlmsg_build(nlh, ct);
	inj_commit(j, nlh);
	nfct_destroy(ct);
}

/* The data connection an FTP client announced: client -> server:port. */
static void put_exp(struct inj *j, const struct opts *o, unsigned i)
{
	struct nf_conntrack *m = nfct_new(), *t = nfct_new(), *k = nfct_new();
	struct nf_expect *exp = nfexp_new();
	uint32_t src = 0x0b000001u + i;
	struct nlmsghdr *nlh;

	if (!m || !t || !k || !exp)
		die("nfexp_new");
	set_tuple(m, IPPROTO_TCP, src, o->dst, 1024 + i % 60000, 21);

	nfct_set_attr_u8(t, ATTR_L3PROTO, AF_INET);
	nfct_set_attr_u32(t, ATTR_IPV4_SRC, htonl(src));
	nfct_set_attr_u32(t, ATTR_IPV4_DST, htonl(o->dst));
	nfct_set_attr_u8(t, ATTR_L4PROTO, IPPROTO_TCP);
	nfct_set_attr_u16(t, ATTR_PORT_SRC, 0);
	nfct_set_attr_u16(t, ATTR_PORT_DST, htons(20000 + i % 40000));

	nfct_set_attr_u8(k, ATTR_L3PROTO, AF_INET);
	nfct_set_attr_u32(k, ATTR_IPV4_SRC, 0xffffffff);
	nfct_set_attr_u32(k, ATTR_IPV4_DST, 0xffffffff);
	nfct_set_attr_u8(k, ATTR_L4PROTO, IPPROTO_TCP);
	nfct_set_attr_u16(k, ATTR_PORT_SRC, 0);
	nfct_set_attr_u16(k, ATTR_PORT_DST, 0xffff);

	nfexp_set_attr(exp, ATTR_EXP_MASTER, m);
	nfexp_set_attr(exp, ATTR_EXP_EXPECTED, t);
	nfexp_set_attr(exp, ATTR_EXP_MASK, k);
	nfexp_set_attr_u32(exp, ATTR_EXP_TIMEOUT, o->timeout);
	nfexp_set_attr(exp, ATTR_EXP_HELPER_NAME, "ftp");

	nlh = inj_put(j, NFNL_SUBSYS_CTNETLINK_EXP, IPCTNL_MSG_EXP_NEW,
		      NLM_F_CREATE | NLM_F_EXCL, AF_INET);
	nfexp_nlmsg_build(nlh, exp);
	inj_commit(j, nlh);
	nfct_destroy(m);
	nfct_destroy(t);
	nfct_destroy(k);
	nfexp_destroy(exp);
}

static void pace(double t0, unsigned done, unsigned rate)
{
	double due = t0 + (double)done / rate, d = due - now();
	struct timespec ts;

	if (d <= 0)
		return;
	ts.tv_sec = (time_t)d;
	ts.tv_nsec = (long)((d - ts.tv_sec) * 1e9);
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* kind: 0 conntrack, 1 ftp master, 2 expectation */
static double run(struct inj *j, const struct opts *o, unsigned count,
		  int kind)
{
	unsigned batch = o->batch, i;
	double t0 = now();

	/* Paced: small batches so the rate is smooth at 10 ms granularity. */
	if (o->rate && batch > o->rate / 100 + 1)
		batch = o->rate / 100 + 1;
	for (i = 0; i < count; i++) {
		if (kind == 2)
			put_exp(j, o, i);
		else
			put_ct(j, o, i + (kind == 0 ? o->offset : 0), kind);
		if (j->queued >= batch || BUFSZ - j->off < 4096) {
			inj_flush(j);
			if (o->rate)
				pace(t0, i + 1, o->rate);
		}
	}
	inj_flush(j);
	if (!j->ack)	/* late errors: give the kernel a moment to post them */
		inj_drain(j, 0);
	return now() - t0;
}

static long count_file(const char *path, int lines)
{
	FILE *f = fopen(path, "r");
	long n = 0;
	int c;

	if (f == NULL)
		return -1;
	if (lines) {
		while ((c = getc(f)) != EOF)
			n += c == '\n';
	} else if (fscanf(f, "%ld", &n) != 1) {
		n = -1;
	}
	fclose(f);
	return n;
}

/* Count by dump: what a user would see with conntrack -L, without parsing. */
static long dump_count(struct inj *j, int subsys, int type)
{
	static char rb[1 << 17];
	int fd = mnl_socket_get_fd(j->nl), saved = j->ack;
	struct nlmsghdr *nlh;
	long n = 0;

	j->ack = 0;
	nlh = inj_put(j, subsys, type, NLM_F_DUMP, AF_UNSPEC);
	inj_commit(j, nlh);
	j->ack = saved;
	if (mnl_socket_sendto(j->nl, j->buf, j->off) < 0)
		die("sendto dump");
	j->off = 0;
	j->queued = 0;
	for (;;) {
		ssize_t r = recv(fd, rb, sizeof(rb), 0);
		int len;

		if (r < 0) {
			if (errno == EINTR)
				continue;
			die("recv dump");
		}
		len = (int)r;
		for (nlh = (struct nlmsghdr *)rb; mnl_nlmsg_ok(nlh, len);
		     nlh = mnl_nlmsg_next(nlh, &len)) {
			if (nlh->nlmsg_type == NLMSG_DONE)
				return n;
			if (nlh->nlmsg_type == NLMSG_ERROR) {
				if (mnl_nlmsg_get_payload_len(nlh) < sizeof(int))
					errno = EPROTO;
				else
					errno = -((struct nlmsgerr *)
						  mnl_nlmsg_get_payload(nlh))->error;
				die("dump");
			}
			n++;
		}
	}
}

static int do_count(const struct opts *o)
{
	struct inj j;
	double t0 = now(), deadline = t0 + o->wait_secs;
	long ct, exp;

	inj_open(&j, 0);
	if (o->wait_target >= 0) {
		/* Poll the O(1) counter, then confirm with a real dump. */
		for (;;) {
			ct = count_file("/proc/sys/net/netfilter/"
					"nf_conntrack_count", 0);
			if (ct >= o->wait_target || now() >= deadline)
				break;
			usleep(2000);
		}
	}
	ct = dump_count(&j, NFNL_SUBSYS_CTNETLINK, IPCTNL_MSG_CT_GET);
	exp = dump_count(&j, NFNL_SUBSYS_CTNETLINK_EXP, IPCTNL_MSG_EXP_GET);
	printf("ct=%ld exp=%ld secs=%.6f\n", ct, exp, now() - t0);
	return o->wait_target >= 0 && ct < o->wait_target ? 1 : 0;
}

static int do_flush(void)
{
	struct inj j;

	inj_open(&j, 1);
	inj_commit(&j, inj_put(&j, NFNL_SUBSYS_CTNETLINK_EXP,
			       IPCTNL_MSG_EXP_DELETE, 0, AF_UNSPEC));
	inj_commit(&j, inj_put(&j, NFNL_SUBSYS_CTNETLINK,
			       IPCTNL_MSG_CT_DELETE, 0, AF_UNSPEC));
	inj_flush(&j);
	printf("flushed errors=%lu\n", j.errors);
	return j.errors ? 1 : 0;
}

/* A number for option -c, or exit naming the option. */
static unsigned long num(int c, const char *arg)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(arg, &end, 0);
	if (errno || end == arg || *end != '\0' || arg[0] == '-') {
		fprintf(stderr, "inject: -%c %s: not a non-negative number\n",
			c, arg);
		exit(2);
	}
	return v;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: inject create|rate [-n N] [-e E] [-r rate] [-p tcp|udp]\n"
		"              [-o offset] [-b batch] [-s srcbase] [-d dst]\n"
		"              [-t timeout] [-A]\n"
		"       inject count [-w target -T secs]\n"
		"       inject flush\n");
	exit(2);
}

int main(int argc, char **argv)
{
	struct opts o = {
		.n = 10000, .batch = 500, .timeout = 3600,
		.proto = IPPROTO_TCP, .ack = 1, .wait_target = -1,
		.wait_secs = 30,
	};
	struct in_addr a;
	const char *cmd;
	struct inj j;
	double t_ct = 0, t_m = 0, t_e = 0;
	int c;

	if (argc < 2)
		usage();
	cmd = argv[1];
	inet_pton(AF_INET, "10.0.0.1", &a);
	o.srcbase = ntohl(a.s_addr);
	inet_pton(AF_INET, "172.16.0.1", &a);
	o.dst = ntohl(a.s_addr);
	optind = 2;
	while ((c = getopt(argc, argv, "n:e:r:p:o:b:s:d:t:Aw:T:")) != -1) {
		switch (c) {
		case 'n': o.n = num(c, optarg); break;
		case 'e': o.e = num(c, optarg); break;
		case 'r': o.rate = num(c, optarg); break;
		case 'o': o.offset = num(c, optarg); break;
		case 'b': o.batch = num(c, optarg); break;
		case 't': o.timeout = num(c, optarg); break;
		case 'A': o.ack = 0; break;
		case 'w': o.wait_target = (long)num(c, optarg); break;
		case 'T': o.wait_secs = num(c, optarg); break;
		case 'p':
			if (!strcmp(optarg, "tcp"))
				o.proto = IPPROTO_TCP;
			else if (!strcmp(optarg, "udp"))
				o.proto = IPPROTO_UDP;
			else
				usage();
			break;
		case 's':
		case 'd':
			if (inet_pton(AF_INET, optarg, &a) != 1) {
				fprintf(stderr, "inject: -%c %s: not an IPv4 "
					"address\n", c, optarg);
				return 2;
			}
			*(c == 's' ? &o.srcbase : &o.dst) = ntohl(a.s_addr);
			break;
		default:
			usage();
		}
	}
	if (o.batch == 0)
		o.batch = 1;
	if (!strcmp(cmd, "count"))
		return do_count(&o);
	if (!strcmp(cmd, "flush"))
		return do_flush();
	if (strcmp(cmd, "create") && strcmp(cmd, "rate"))
		usage();

	inj_open(&j, o.ack);
	if (o.n)
		t_ct = run(&j, &o, o.n, 0);
	if (o.e) {
		t_m = run(&j, &o, o.e, 1);
		t_e = run(&j, &o, o.e, 2);
	}
	printf("created=%u masters=%u exp=%u errors=%lu secs=%.6f rate=%.0f "
	       "exp_secs=%.6f exp_rate=%.0f",
	       o.n, o.e, o.e, j.errors, t_ct, t_ct > 0 ? o.n / t_ct : 0,
	       t_e, t_e > 0 ? o.e / t_e : 0);
	if (j.errors)
		printf(" last_error=\"%s\"", strerror(j.last_err));
	printf(" master_secs=%.6f\n", t_m);
	if (!strcmp(cmd, "rate")) {
		fflush(stdout);
		return do_flush();
	}
	return j.errors ? 1 : 0;
}
