/*
 * The daemon's user-facing surface: -s text against the 1.4.7 transcripts
 * of the spec, the command-line table, and the control socket server with
 * real UNIX sockets (silent clients, garbage, many clients, streamed dumps,
 * both clients: ours and Debian's).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "cache.h"
#include "ctd.h"
#include "log.h"
#include "ctl.h"
#include "nl.h"
#include "sync.h"
#include "wire.h"

/* Transcripts copied verbatim from shared/spec/config-and-cli.md §1.3, §4.4. */
static const char T_S_CACHES_TRAFFIC[] =
	"cache internal:\n"
	"current active connections:\t           9\n"
	"connections created:\t\t           9\tfailed:\t           0\n"
	"connections updated:\t\t           2\tfailed:\t           0\n"
	"connections destroyed:\t\t           0\tfailed:\t           0\n"
	"\n"
	"cache external:\n"
	"current active connections:\t           0\n"
	"connections created:\t\t           0\tfailed:\t           0\n"
	"connections updated:\t\t           0\tfailed:\t           0\n"
	"connections destroyed:\t\t           0\tfailed:\t           0\n"
	"\n"
	"traffic processed:\n"
	"                   0 Bytes                         0 Pckts\n"
	"\n"
;

static const char T_S_MSGTRACK[] =
	"message tracking:\n"
	"                   0 Malformed msgs                    0 Lost msgs\n"
	"\n"
;

static const char T_NETWORK[] =
	"network statistics:\n"
	"\trecv:\n"
	"\t\tMalformed messages:\t                   0\n"
	"\t\tWrong protocol version:\t                   0\n"
	"\t\tMalformed header:\t                   0\n"
	"\t\tMalformed payload:\t                   0\n"
	"\t\tBad message type:\t                   0\n"
	"\t\tTruncated message:\t                   0\n"
	"\t\tBad message size:\t                   0\n"
	"\tsend:\n"
	"\t\tMalformed messages:\t                   0\n"
	"\n"
	"sequence tracking statistics:\n"
	"\trecv:\n"
	"\t\tPackets lost:\t\t                   0\n"
	"\t\tPackets before:\t\t                   0\n"
	"\n"
;

static const char T_CACHE[] =
	"cache:internal\tactive objects:\t\t           9\n"
	"\tactive/total entries:\t\t           9/           9\n"
	"\tcreation OK/failed:\t\t           9/           0\n"
	"\t\tno memory available:\t           0\n"
	"\t\tno space left in cache:\t           0\n"
	"\tupdate OK/failed:\t\t           2/           0\n"
	"\t\tentry not found:\t           0\n"
	"\tdeletion created/failed:\t           0/           0\n"
	"\t\tentry not found:\t           0\n"
	"\n"
	"cache:external\tactive objects:\t\t           0\n"
	"\tactive/total entries:\t\t           0/           0\n"
	"\tcreation OK/failed:\t\t           0/           0\n"
	"\t\tno memory available:\t           0\n"
	"\t\tno space left in cache:\t           0\n"
	"\tupdate OK/failed:\t\t           0/           0\n"
	"\t\tentry not found:\t           0\n"
	"\tdeletion created/failed:\t           0/           0\n"
	"\t\tentry not found:\t           0\n"
	"\n"
;

static const char T_RUNTIME[] =
	"daemon uptime: 0 min\n"
	"\n"
	"netlink stats:\n"
	"\tevents received:\t                  14\n"
	"\tevents filtered:\t                   0\n"
	"\tevents unknown type:\t\t           0\n"
	"\tcatch event failed:\t\t           0\n"
	"\tdump unknown type:\t\t           0\n"
	"\tnetlink overrun:\t\t           0\n"
	"\tflush kernel table:\t\t           0\n"
	"\tresync with kernel table:\t           0\n"
	"\tcurrent buffer size (in bytes):\t     2097152\n"
	"\n"
	"runtime stats:\n"
	"\tchild process failed:\t\t           0\n"
	"\t\tchild process segfault:\t           0\n"
	"\t\tchild process termsig:\t           0\n"
	"\tselect failed:\t\t\t           0\n"
	"\twait failed:\t\t\t           0\n"
	"\tlocal read failed:\t\t           0\n"
	"\tlocal unknown request:\t\t           0\n"
	"\n"
;

static const char T_USAGE[] =
	"Connection tracking userspace daemon v1.4.7\n"
	"Usage: conntrackd [commands] [options]\n"
	"\n"
	"General commands:\n"
	"  -d, run in daemon mode\n"
	"  -C [configfile], configuration file path\n"
	"  -v, display conntrackd version\n"
	"  -h, display this help information\n"
	"\n"
	"Client mode commands:\n"
	"  -c [ct|expect], commit external cache to conntrack table\n"
	"  -f [internal|external], flush internal and external cache\n"
	"  -F [ct|expect], flush kernel conntrack table\n"
	"  -i [ct|expect], display content of the internal cache\n"
	"  -e [ct|expect], display the content of the external cache\n"
	"  -k, kill conntrack daemon\n"
	"  -s  [network|cache|runtime|link|rsqueue|queue|ct|expect], dump statistics\n"
	"  -R [ct|expect], resync with kernel conntrack table\n"
	"  -n, request resync with other node (only FT-FW and NOTRACK modes)\n"
	"  -B, force a bulk send to other replica firewalls\n"
	"  -x, dump cache in XML format (requires -i or -e)\n"
	"  -t, reset the kernel timeout (see PurgeTimeout clause)\n"
	"\n"
;

/* ---- helpers ---- */

static char *capture(void (*fn)(FILE *, void *), void *arg)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	assert_non_null(f);
	fn(f, arg);
	fclose(f);
	return text;
}

static void fmt_s_caches(FILE *f, void *arg)
{
	struct cache_stats in = { .active = 9, .objects = 9, .add_ok = 9, .upd_ok = 2 };
	struct cache_stats ex = { 0 };

	stats_fmt_cache(f, "internal", &in);
	stats_fmt_cache(f, "external", &ex);
	stats_fmt_traffic(f, 0, 0);
}

static void fmt_msgtrack(FILE *f, void *arg)
{
	stats_fmt_msgtrack(f, 0, 0);
}

static void fmt_network(FILE *f, void *arg)
{
	struct wire_rx_stats rx = { 0 };
	struct seq_stats seq = { 0 };

	stats_fmt_network(f, &rx, 0, &seq);
}

static void fmt_cache(FILE *f, void *arg)
{
	struct cache_stats in = { .active = 9, .objects = 9, .hashed = 9,
				  .add_ok = 9, .upd_ok = 2 };
	struct cache_stats ex = { 0 };

	stats_fmt_cache_ext(f, "internal", &in);
	stats_fmt_cache_ext(f, "external", &ex);
}

static void fmt_runtime(FILE *f, void *arg)
{
	struct nl_stats nl = { .events_received = 14, .bufsize = 2097152 };
	struct runtime_stats rt = { 0 };

	stats_fmt_runtime(f, 59, &nl, &rt);
}

static void fmt_usage(FILE *f, void *arg)
{
	cli_usage(f, "conntrackd");
}

static void check_fmt(void (*fn)(FILE *, void *), const char *want)
{
	char *got = capture(fn, NULL);

	assert_string_equal(got, want);
	free(got);
}

static void test_stats_text(void **state)
{
	check_fmt(fmt_s_caches, T_S_CACHES_TRAFFIC);
	check_fmt(fmt_msgtrack, T_S_MSGTRACK);
	check_fmt(fmt_network, T_NETWORK);
	check_fmt(fmt_cache, T_CACHE);
	check_fmt(fmt_runtime, T_RUNTIME);
	check_fmt(fmt_usage, T_USAGE);
}

/* Values wider than the field are printed in full, never truncated. */
static void fmt_wide(FILE *f, void *arg)
{
	struct cache_stats s = { .active = 1234567890123ULL };

	stats_fmt_cache(f, "internal", &s);
}

static void test_stats_wide(void **state)
{
	char *got = capture(fmt_wide, NULL);

	assert_non_null(strstr(got, "current active connections:\t1234567890123\n"));
	free(got);
}

static void test_uptime(void **state)
{
	static const struct { uint64_t s; const char *t; } c[] = {
		{ 0, "0 min" }, { 59, "0 min" }, { 900, "15 min" },
		{ 2 * 3600 + 5 * 60, "2 h 5 min" }, { 86400, "1 day 0 min" },
		{ 3 * 86400 + 4 * 3600, "3 days 4 h 0 min" },
		{ 86400 + 3600 + 60, "1 day 1 h 1 min" },
	};
	char buf[64];
	size_t i;

	for (i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		stats_uptime(buf, sizeof(buf), c[i].s);
		assert_string_equal(buf, c[i].t);
	}
}

/* ---- command line ---- */

static void test_cli_table(void **state)
{
	static const struct {
		const char *args;
		int ret, role, req;
	} c[] = {
		{ "", -1, CLI_CONSOLE, -1 },
		{ "-d", -1, CLI_DAEMON, -1 },
		{ "-dfoo", -1, CLI_DAEMON, -1 },
		{ "-T", -1, CLI_CONFTEST, -1 },
		{ "-T -s", 1, 0, 0 },
		{ "-d -s", 1, 0, 0 },
		{ "-s -d", 1, 0, 0 },
		{ "-i -x", -1, CLI_REQUEST, 24 },
		{ "-i ct -x", -1, CLI_REQUEST, 24 },
		{ "-e -x", -1, CLI_REQUEST, 25 },
		{ "-i expect -x", -1, CLI_REQUEST, 47 },
		{ "-e expect -x", -1, CLI_REQUEST, 48 },
		{ "-x -i", 1, 0, 0 },
		{ "-x", 1, 0, 0 },
		{ "-s -x", 1, 0, 0 },
		{ "-ix", -1, CLI_REQUEST, 16 },
		{ "-i", -1, CLI_REQUEST, 16 },
		{ "-e", -1, CLI_REQUEST, 17 },
		{ "-i -e", -1, CLI_REQUEST, 17 },       /* last one wins */
		{ "-c -f", -1, CLI_REQUEST, 45 },
		{ "-c", -1, CLI_REQUEST, 46 },
		{ "-c ct", -1, CLI_REQUEST, 18 },
		{ "-c exp", -1, CLI_REQUEST, 42 },
		{ "-c e", -1, CLI_REQUEST, 42 },
		{ "-c foo", 1, 0, 0 },                  /* foo: unknown option */
		{ "-i foo", 1, 0, 0 },
		{ "-f", -1, CLI_REQUEST, 45 },
		{ "-f i", -1, CLI_REQUEST, 33 },
		{ "-f external", -1, CLI_REQUEST, 34 },
		{ "-f foo", 1, 0, 0 },
		{ "-F", -1, CLI_REQUEST, 43 },
		{ "-F ct", -1, CLI_REQUEST, 0 },
		{ "-F expect", -1, CLI_REQUEST, 38 },
		{ "-R", -1, CLI_REQUEST, 44 },
		{ "-R c", -1, CLI_REQUEST, 1 },
		{ "-R expect", -1, CLI_REQUEST, 39 },
		{ "-k", -1, CLI_REQUEST, 20 },
		{ "-n", -1, CLI_REQUEST, 23 },
		{ "-B", -1, CLI_REQUEST, 22 },
		{ "-t", -1, CLI_REQUEST, 26 },
		{ "-s", -1, CLI_REQUEST, 21 },
		{ "-s ct", -1, CLI_REQUEST, 21 },
		{ "-s n", -1, CLI_REQUEST, 28 },
		{ "-s c", -1, CLI_REQUEST, 29 },        /* cache before ct */
		{ "-s r", -1, CLI_REQUEST, 30 },        /* runtime before rsqueue */
		{ "-s rs", -1, CLI_REQUEST, 32 },
		{ "-s m", -1, CLI_REQUEST, 31 },        /* multicast, not metrics */
		{ "-s multicast", -1, CLI_REQUEST, 31 },
		{ "-s link", -1, CLI_REQUEST, 31 },
		{ "-s p", -1, CLI_REQUEST, 35 },
		{ "-s q", -1, CLI_REQUEST, 36 },
		{ "-s e", -1, CLI_REQUEST, 37 },
		{ "-s me", -1, CLI_REQUEST, 200 },
		{ "-s metrics", -1, CLI_REQUEST, 200 },
		{ "-s bogus", 1, 0, 0 },
		{ "-o", 1, 0, 0 },
		{ "--help", 1, 0, 0 },
		{ "foo", 1, 0, 0 },
		{ "-v", 0, 0, 0 },
		{ "-h", 0, 0, 0 },
		{ "-h --bogus", 0, 0, 0 },              /* acts when reached */
		{ "-C", 1, 0, 0 },                      /* 1.4.9: missing file name */
		{ "-s -C /tmp/x.conf", -1, CLI_REQUEST, 21 },
	};
	FILE *null = fopen("/dev/null", "w");
	size_t i;

	assert_non_null(null);
	for (i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		char buf[128], *argv[16], *tok;
		int argc = 0, r;
		struct cli o;

		snprintf(buf, sizeof(buf), "%s", c[i].args);
		argv[argc++] = "conntrackd";
		for (tok = strtok(buf, " "); tok && argc < 15; tok = strtok(NULL, " "))
			argv[argc++] = tok;
		argv[argc] = NULL;
		r = cli_parse(&o, argc, argv, null);
		if (r != c[i].ret)
			fail_msg("`%s': returned %d, want %d", c[i].args, r, c[i].ret);
		if (r == -1 && ((int)o.role != c[i].role || o.req != c[i].req))
			fail_msg("`%s': role %d req %d, want role %d req %d",
				 c[i].args, o.role, o.req, c[i].role, c[i].req);
	}
	fclose(null);
}

static void test_cli_conf_path(void **state)
{
	char *argv[] = { "conntrackd", "-C", "/a", "-C", "-weird", "-s", NULL };
	char *argv2[] = { "conntrackd", "-k", NULL };
	FILE *null = fopen("/dev/null", "w");
	struct cli o;

	/* -C takes the next word even if it starts with '-'; the last wins. */
	assert_int_equal(cli_parse(&o, 6, argv, null), -1);
	assert_string_equal(o.conf, "-weird");
	assert_int_equal(cli_parse(&o, 2, argv2, null), -1);
	assert_string_equal(o.conf, "/etc/conntrackd/conntrackd.conf");
	fclose(null);
}

/* ---- control socket server ---- */

struct fx {
	struct ctd      d;
	struct ctd_conf conf;
};

static int fx_setup(void **state)
{
	static int seq;
	struct fx *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	snprintf(f->conf.unix_path, sizeof(f->conf.unix_path),
		 "/tmp/ctd-test-ctl-%d-%d.sock", (int)getpid(), seq++);
	unlink(f->conf.unix_path);
	f->conf.hashsize = 65536;
	f->conf.hashlimit = 262144;
	f->conf.unix_mode = 0600;
	f->d.conf = &f->conf;
	f->d.loop = ev_new();
	f->d.started = time(NULL);
	if (!f->d.loop || ctl_open(&f->d) < 0)
		return -1;
	*state = f;
	return 0;
}

static int fx_teardown(void **state)
{
	struct fx *f = *state;

	ctl_close(&f->d);
	stats_mode_fini(&f->d);
	ev_free(f->d.loop);
	unlink(f->conf.unix_path);
	free(f);
	return 0;
}

struct cl {
	int    fd;
	char  *buf;
	size_t len;
	bool   eof;
};

static void cl_open(struct fx *f, struct cl *c)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int r;

	memset(c, 0, sizeof(*c));
	strcpy(sun.sun_path, f->conf.unix_path);
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
	assert_true(c->fd >= 0);
	/* A full backlog answers EAGAIN: let the server accept, retry. */
	for (r = 0; r < 500; r++) {
		if (connect(c->fd, (struct sockaddr *)&sun, sizeof(sun)) == 0)
			return;
		assert_int_equal(errno, EAGAIN);
		ev_run_once(f->d.loop, 10);
	}
	fail_msg("cannot connect to %s", f->conf.unix_path);
}

static void cl_send(struct cl *c, const void *p, size_t n)
{
	assert_int_equal(send(c->fd, p, n, MSG_NOSIGNAL), (ssize_t)n);
}

static void cl_req(struct cl *c, int req)
{
	cl_send(c, &req, sizeof(req));
}

static void cl_pump(struct cl *c)
{
	char tmp[65536];
	ssize_t n;

	while (!c->eof) {
		n = read(c->fd, tmp, sizeof(tmp));     /* sockets and pipes */
		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0) {
			c->eof = true;
			return;
		}
		c->buf = realloc(c->buf, c->len + (size_t)n + 1);
		assert_non_null(c->buf);
		memcpy(c->buf + c->len, tmp, (size_t)n);
		c->len += (size_t)n;
		c->buf[c->len] = '\0';
	}
}

static void cl_free(struct cl *c)
{
	if (c->fd >= 0)
		close(c->fd);
	free(c->buf);
	c->fd = -1;
	c->buf = NULL;
}

/* Run the server loop until every client in cs[0..n) saw EOF, or fail. */
static void run_until_eof(struct fx *f, struct cl *cs, int n, int ms)
{
	uint64_t end = ev_now_ms() + (uint64_t)ms;
	int i, done;

	for (;;) {
		for (i = 0, done = 0; i < n; i++) {
			cl_pump(&cs[i]);
			done += cs[i].eof;
		}
		if (done == n)
			return;
		if (ev_now_ms() > end)
			fail_msg("%d of %d clients still waiting after %d ms", n - done, n, ms);
		ev_run_once(f->d.loop, 10);
	}
}

static void test_socket_file(void **state)
{
	struct fx *f = *state;
	struct stat st;

	assert_int_equal(lstat(f->conf.unix_path, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0600);
	/* Clean shutdown removes the socket file. */
	ctl_close(&f->d);
	assert_int_equal(lstat(f->conf.unix_path, &st), -1);
	assert_int_equal(errno, ENOENT);

	/* UNIX { Permissions 0660 } (beyond 1.4.x), whatever the umask. */
	f->conf.unix_mode = 0660;
	umask(0177);
	assert_int_equal(ctl_open(&f->d), 0);
	assert_int_equal(lstat(f->conf.unix_path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0660);
	assert_int_equal(umask(0177), 0177);    /* restored */
}

static void test_socket_stale_and_symlink(void **state)
{
	struct fx *f = *state;
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	char target[128];
	int fd;

	/* A stale socket (daemon killed) is replaced silently. */
	ctl_close(&f->d);
	strcpy(sun.sun_path, f->conf.unix_path);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	close(fd);
	assert_int_equal(ctl_open(&f->d), 0);
	ctl_close(&f->d);

	/* A symlink planted at the path is refused, its target untouched. */
	snprintf(target, sizeof(target), "%s.target", f->conf.unix_path);
	fd = open(target, O_CREAT | O_WRONLY, 0600);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(symlink(target, f->conf.unix_path), 0);
	assert_int_equal(ctl_open(&f->d), -1);
	assert_int_equal(access(target, F_OK), 0);
	unlink(f->conf.unix_path);
	unlink(target);
	assert_int_equal(ctl_open(&f->d), 0);
}

static void test_runtime_reply(void **state)
{
	struct fx *f = *state;
	struct cl c;

	cl_open(f, &c);
	cl_req(&c, CTL_STATS_RUNTIME);
	run_until_eof(f, &c, 1, 2000);
	assert_non_null(c.buf);
	assert_true(strncmp(c.buf, "daemon uptime: 0 min\n\nnetlink stats:\n", 37) == 0);
	assert_non_null(strstr(c.buf, "\tlocal read failed:\t\t           0\n"));
	cl_free(&c);
}

/* The fix of 1.4.x's worst control-socket flaw: a client that connects and
 * says nothing no longer freezes the daemon. */
static void test_silent_client(void **state)
{
	struct fx *f = *state;
	struct cl silent, talker;
	uint64_t t0 = ev_now_ms();

	cl_open(f, &silent);
	ev_run_once(f->d.loop, 10);
	cl_open(f, &talker);
	cl_req(&talker, CTL_STATS_RUNTIME);
	run_until_eof(f, &talker, 1, 1000);
	assert_non_null(talker.buf);
	assert_false(silent.eof);
	assert_true(ev_now_ms() - t0 < CTL_READ_DEADLINE_MS);
	assert_int_equal(f->d.rt.local_read_failed, 0);

	/* After the deadline the silent one is dropped and counted. */
	run_until_eof(f, &silent, 1, CTL_READ_DEADLINE_MS + 1500);
	assert_int_equal(silent.len, 0);
	assert_int_equal(f->d.rt.local_read_failed, 1);
	assert_int_equal(ctl_client_count(&f->d), 0);
	cl_free(&silent);
	cl_free(&talker);
}

static void test_garbage(void **state)
{
	struct fx *f = *state;
	struct cl c[4];
	int req = CTL_STATS_RUNTIME, unknown = 99, neg = -1;
	char extra[12];

	/* Partial request then hang-up: a failed read, nothing answered. */
	cl_open(f, &c[0]);
	cl_send(&c[0], "\x1e\x00", 2);
	shutdown(c[0].fd, SHUT_WR);
	/* Unknown codes: empty reply, counted. */
	cl_open(f, &c[1]);
	cl_send(&c[1], &unknown, sizeof(unknown));
	cl_open(f, &c[2]);
	cl_send(&c[2], &neg, sizeof(neg));
	/* Extra bytes after the request are ignored; the reply arrives whole. */
	cl_open(f, &c[3]);
	memcpy(extra, &req, 4);
	memset(extra + 4, 0xff, 8);
	cl_send(&c[3], extra, sizeof(extra));
	run_until_eof(f, c, 4, 2000);

	assert_int_equal(c[0].len, 0);
	assert_int_equal(c[1].len, 0);
	assert_int_equal(c[2].len, 0);
	assert_non_null(c[3].buf);
	assert_non_null(strstr(c[3].buf, "runtime stats:\n"));
	assert_int_equal(c[3].buf[c[3].len - 1], '\n');
	assert_int_equal(f->d.rt.local_read_failed, 1);
	assert_int_equal(f->d.rt.local_unknown_request, 2);
	for (int i = 0; i < 4; i++)
		cl_free(&c[i]);
}

static void tick_cb(struct ev_timer *t, void *arg)
{
	*(bool *)arg = true;
}

static void test_many_clients(void **state)
{
	enum { N = 200 };
	struct fx *f = *state;
	struct cl *c = calloc(N, sizeof(*c));
	struct ev_timer tick;
	int i, served = 0, refused = 0;
	bool fired = false;
	uint64_t t0 = ev_now_ms();

	assert_non_null(c);
	/* A timer due in 1 ms fires while clients pour in. */
	ev_timer_init(&tick, tick_cb, &fired);
	ev_timer_add(f->d.loop, &tick, 1);
	for (i = 0; i < N; i++) {
		cl_open(f, &c[i]);
		cl_req(&c[i], CTL_STATS_RUNTIME);
	}
	run_until_eof(f, c, N, 5000);
	assert_true(fired);
	assert_true(ev_now_ms() - t0 < 3000);
	for (i = 0; i < N; i++) {
		if (c[i].buf && strstr(c[i].buf, "runtime stats:"))
			served++;
		else if (c[i].buf && strstr(c[i].buf, "too many"))
			refused++;
	}
	assert_int_equal(served + refused, N);
	assert_true(served >= CTL_MAX_CLIENTS);
	assert_int_equal(ctl_client_count(&f->d), 0);
	for (i = 0; i < N; i++)
		cl_free(&c[i]);
	free(c);
}

static void test_kill(void **state)
{
	struct fx *f = *state;
	struct cl c;

	cl_open(f, &c);
	cl_req(&c, CTL_KILL);
	run_until_eof(f, &c, 1, 2000);
	assert_int_equal(c.len, 0);
	assert_true(f->d.stopping);
	cl_free(&c);
}

/* Stats mode: -s and -s cache name the cache `stats', unsupported requests
 * are answered empty. */
static void test_stats_mode_requests(void **state)
{
	struct fx *f = *state;
	struct cl c[3];

	assert_int_equal(stats_mode_new(&f->d), 0);
	cl_open(f, &c[0]);
	cl_req(&c[0], CTL_STATS);
	cl_open(f, &c[1]);
	cl_req(&c[1], CTL_STATS_CACHE);
	cl_open(f, &c[2]);
	cl_req(&c[2], CTL_STATS_NETWORK);
	run_until_eof(f, c, 3, 2000);
	assert_non_null(c[0].buf);
	assert_true(strncmp(c[0].buf, "cache stats:\ncurrent active connections:", 40) == 0);
	assert_non_null(strstr(c[0].buf, "traffic processed:\n"));
	assert_non_null(c[1].buf);
	assert_true(strncmp(c[1].buf, "cache:stats\tactive objects:", 27) == 0);
	assert_int_equal(c[2].len, 0);
	for (int i = 0; i < 3; i++)
		cl_free(&c[i]);
}

static void fill_stats(struct fx *f, unsigned n)
{
	struct cache *cache = stats_mode_cache(&f->d);
	unsigned i;

	for (i = 0; i < n; i++) {
		struct ct ct = { 0 };

		ct.orig.l3 = AF_INET;
		ct.orig.l4 = IPPROTO_UDP;
		ct.orig.src.v4 = htonl(0x0a000000 + i);
		ct.orig.dst.v4 = htonl(0xc0a80001);
		ct.orig.sport = htons((uint16_t)(1024 + i % 50000));
		ct.orig.dport = htons(53);
		ct.have = CT_H_ORIG | CT_H_PORTS;
		assert_non_null(cache_add(cache, &ct));
	}
}

static unsigned count_lines(const char *s, size_t len, const char *must);

static void mkct(struct ct *ct, unsigned i)
{
	memset(ct, 0, sizeof(*ct));
	ct->orig.l3 = AF_INET;
	ct->orig.l4 = IPPROTO_TCP;
	ct->orig.src.v4 = htonl(0x0a000000 + i);
	ct->orig.dst.v4 = htonl(0x0a000101);
	ct->orig.sport = htons((uint16_t)(1000 + i));
	ct->orig.dport = htons(80);
	ct->have = CT_H_ORIG | CT_H_PORTS;
}

static char *slurp(const char *path)
{
	FILE *fp = fopen(path, "r");
	char *buf = calloc(1, 65536);

	assert_non_null(fp);
	assert_non_null(buf);
	if (fread(buf, 1, 65535, fp) == 0)
		buf[0] = '\0';
	fclose(fp);
	return buf;
}

/* Stats mode: a flow that ends is logged and counted; a resync purges (and
 * logs) what the kernel no longer has. */
static void test_stats_mode_flows(void **state)
{
	struct fx *f = *state;
	const struct nl_sink *sink = stats_mode_sink();
	struct cache *cache;
	struct ct ct[3];
	struct ct_ext *ext;
	char path[128], *log;
	unsigned i;

	snprintf(path, sizeof(path), "%s.stats.log", f->conf.unix_path);
	unlink(path);
	assert_int_equal(log_open_stats(path, -1), 0);
	assert_int_equal(stats_mode_new(&f->d), 0);
	cache = stats_mode_cache(&f->d);
	for (i = 0; i < 3; i++) {
		mkct(&ct[i], i + 1);
		sink->ct_event(&f->d, NL_NEW, NL_ORIGIN_OTHER, &ct[i]);
	}
	assert_int_equal(cache_stats(cache)->active, 3);

	ext = ct_ext_get(&ct[0], 0);
	assert_non_null(ext);
	ext->counters[0] = 1;
	ext->counters[1] = 100;
	ext->counters[2] = 2;
	ext->counters[3] = 200;
	ct[0].have |= CT_H_COUNTERS;
	sink->ct_event(&f->d, NL_DESTROY, NL_ORIGIN_OTHER, &ct[0]);
	assert_int_equal(cache_stats(cache)->active, 2);
	assert_int_equal(stats_mode_bytes(&f->d), 300);
	assert_int_equal(stats_mode_packets(&f->d), 3);

	sink->resync_begin(&f->d, false);
	sink->ct_dump(&f->d, &ct[1]);
	sink->resync_done(&f->d, false);
	assert_int_equal(cache_stats(cache)->active, 1);
	assert_non_null(cache_find(cache, &ct[1]));

	log_close();
	log = slurp(path);
	assert_int_equal(count_lines(log, strlen(log), "\ttcp      6 "), 2);
	assert_non_null(strstr(log, "src=10.0.0.1 dst=10.0.1.1 sport=1001 dport=80"));
	assert_non_null(strstr(log, "packets=1 bytes=100"));
	assert_non_null(strstr(log, "src=10.0.0.3 dst=10.0.1.1 sport=1003 dport=80"));
	assert_null(strstr(log, "src=10.0.0.2 "));
	free(log);
	unlink(path);
	ct_release(&ct[0]);
}

static unsigned count_lines(const char *s, size_t len, const char *must)
{
	unsigned n = 0;
	const char *p = s, *e;

	while (p < s + len && (e = memchr(p, '\n', (size_t)(s + len - p)))) {
		char line[1200];
		size_t l = (size_t)(e - p);

		if (l >= sizeof(line))
			l = sizeof(line) - 1;
		memcpy(line, p, l);
		line[l] = '\0';
		if (must && !strstr(line, must))
			fail_msg("line without `%s': %s", must, line);
		n++;
		p = e + 1;
	}
	return n;
}

/* 200k entries are streamed; while the reader does not read, the loop
 * keeps answering other clients. */
static void test_streamed_dump(void **state)
{
	enum { N = 200000 };
	struct fx *f = *state;
	struct cl dump, other;
	uint64_t t0;

	assert_int_equal(stats_mode_new(&f->d), 0);
	fill_stats(f, N);
	cl_open(f, &dump);
	cl_req(&dump, CTL_CT_DUMP_INTERNAL);
	for (int i = 0; i < 20; i++)
		ev_run_once(f->d.loop, 5);      /* the socket buffer fills up */

	cl_open(f, &other);
	cl_req(&other, CTL_STATS_RUNTIME);
	t0 = ev_now_ms();
	run_until_eof(f, &other, 1, 1000);
	assert_true(ev_now_ms() - t0 < 1000);
	assert_non_null(strstr(other.buf, "runtime stats:"));
	assert_false(dump.eof);

	run_until_eof(f, &dump, 1, 60000);
	assert_int_equal(count_lines(dump.buf, dump.len, " [active since "), N);
	assert_true(strncmp(dump.buf, "udp      17 src=10.", 19) == 0);
	cl_free(&dump);
	cl_free(&other);
}

static void test_xml_dump(void **state)
{
	struct fx *f = *state;
	struct cl c;

	assert_int_equal(stats_mode_new(&f->d), 0);
	fill_stats(f, 10);
	cl_open(f, &c);
	cl_req(&c, CTL_CT_DUMP_INT_XML);
	run_until_eof(f, &c, 1, 2000);
	assert_int_equal(count_lines(c.buf, c.len, "<flow>"), 10);
	assert_null(strstr(c.buf, "active since"));
	cl_free(&c);
}

/* A reader that shuts down its sending side after the request (socat,
 * nc -N) still receives the whole reply. */
static void test_half_closed_reader(void **state)
{
	struct fx *f = *state;
	struct cl c;

	assert_int_equal(stats_mode_new(&f->d), 0);
	fill_stats(f, 30000);
	cl_open(f, &c);
	cl_req(&c, CTL_CT_DUMP_INTERNAL);
	shutdown(c.fd, SHUT_WR);
	run_until_eof(f, &c, 1, 10000);
	assert_int_equal(count_lines(c.buf, c.len, " [active since "), 30000);
	cl_free(&c);
}

/* A reader that disappears in the middle of a dump costs nothing. */
static void test_reader_goes_away(void **state)
{
	struct fx *f = *state;
	struct cl c, other;

	assert_int_equal(stats_mode_new(&f->d), 0);
	fill_stats(f, 50000);
	cl_open(f, &c);
	cl_req(&c, CTL_CT_DUMP_INTERNAL);
	for (int i = 0; i < 5; i++)
		ev_run_once(f->d.loop, 5);
	cl_free(&c);
	for (int i = 0; i < 50 && ctl_client_count(&f->d); i++)
		ev_run_once(f->d.loop, 5);
	assert_int_equal(ctl_client_count(&f->d), 0);
	cl_open(f, &other);
	cl_req(&other, CTL_STATS_RUNTIME);
	run_until_eof(f, &other, 1, 1000);
	assert_non_null(other.buf);
	cl_free(&other);
}

/* Our client against our server (the client blocks: run it in a child). */
static void test_client_roundtrip(void **state)
{
	struct fx *f = *state;
	struct cl out = { .fd = -1 };
	int p[2], status = -1;
	uint64_t end;
	pid_t pid;

	assert_int_equal(pipe(p), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(p[0]);
		_exit(ctl_request_fd(f->conf.unix_path, CTL_STATS_RUNTIME, p[1]));
	}
	close(p[1]);
	out.fd = p[0];
	fcntl(p[0], F_SETFL, O_NONBLOCK);
	end = ev_now_ms() + 3000;
	while (!out.eof && ev_now_ms() < end) {
		ev_run_once(f->d.loop, 10);
		cl_pump(&out);
	}
	if (!out.eof)
		kill(pid, SIGKILL);     /* never leave a blocked child behind */
	assert_true(out.eof);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	assert_non_null(out.buf);
	assert_true(strncmp(out.buf, "daemon uptime: ", 15) == 0);
	cl_free(&out);
}

static void test_client_no_daemon(void **state)
{
	int devnull = open("/dev/null", O_WRONLY);

	assert_int_equal(ctl_request_fd("/tmp/ctd-test-nobody-listens.sock",
					CTL_STATS, devnull), 1);
	assert_int_equal(ctl_request_fd("", CTL_STATS, devnull), 1);
	close(devnull);
}

/* Debian's conntrackd 1.4.7 as the client of our server. */
static void test_debian_client(void **state)
{
	static const char debian[] = "/usr/sbin/conntrackd";
	struct fx *f = *state;
	char cfg[128];
	struct cl out = { .fd = -1 };
	int p[2], status = -1;
	uint64_t end;
	FILE *fp;
	pid_t pid;

	if (access(debian, X_OK) < 0)
		skip();
	snprintf(cfg, sizeof(cfg), "%s.conf", f->conf.unix_path);
	fp = fopen(cfg, "w");
	assert_non_null(fp);
	fprintf(fp, "General {\n\tUNIX {\n\t\tPath %s\n\t}\n}\n", f->conf.unix_path);
	fclose(fp);
	assert_int_equal(pipe(p), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		dup2(p[1], 1);
		close(p[0]);
		execl(debian, debian, "-C", cfg, "-s", "runtime", (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	out.fd = p[0];
	fcntl(p[0], F_SETFL, O_NONBLOCK);
	end = ev_now_ms() + 5000;
	while (!out.eof && ev_now_ms() < end) {
		ev_run_once(f->d.loop, 10);
		cl_pump(&out);
	}
	unlink(cfg);
	if (!out.eof)
		kill(pid, SIGKILL);
	assert_true(out.eof);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	assert_non_null(out.buf);
	assert_true(strncmp(out.buf, "daemon uptime: ", 15) == 0);
	cl_free(&out);
}

static void test_req_feed(void **state)
{
	struct ctl_reqbuf rb = { .n = 0 };
	int want = CTL_STATS_LINK, req = -7;
	const unsigned char *p = (const unsigned char *)&want;

	assert_int_equal(ctl_req_feed(&rb, p, 1, &req), 0);
	assert_int_equal(ctl_req_feed(&rb, p + 1, 0, &req), 0);
	assert_int_equal(ctl_req_feed(&rb, p + 1, 2, &req), 0);
	assert_int_equal(ctl_req_feed(&rb, p + 3, 1, &req), 1);
	assert_int_equal(req, CTL_STATS_LINK);
	assert_true(ctl_req_known(CTL_STATS_METRICS));
	assert_true(ctl_req_known(CTL_EXP_DUMP_EXT_XML));
	assert_false(ctl_req_known(2));
	assert_false(ctl_req_known(49));
	assert_false(ctl_req_known(-1));
}

static void test_metrics(void **state)
{
	struct fx *f = *state;
	struct cl c;

	assert_int_equal(stats_mode_new(&f->d), 0);
	fill_stats(f, 3);
	cl_open(f, &c);
	cl_req(&c, CTL_STATS_METRICS);
	run_until_eof(f, &c, 1, 2000);
	assert_non_null(c.buf);
	assert_non_null(strstr(c.buf, "# TYPE conntrackd_cache_entries gauge\n"));
	assert_non_null(strstr(c.buf,
		"conntrackd_cache_entries{cache=\"stats\",kind=\"ct\"} 3\n"));
	assert_non_null(strstr(c.buf, "# TYPE conntrackd_cache_created_total counter\n"));
	assert_non_null(strstr(c.buf,
		"conntrackd_cache_created_total{cache=\"stats\",kind=\"ct\"} 3\n"));
	assert_true(c.len > 6 && strcmp(c.buf + c.len - 6, "# EOF\n") == 0);
	/* The exposition format itself, when Prometheus' checker is installed. */
	if (system("command -v promtool >/dev/null 2>&1") == 0) {
		char path[128], cmd[256];
		FILE *fp;

		snprintf(path, sizeof(path), "%s.prom", f->conf.unix_path);
		fp = fopen(path, "w");
		assert_non_null(fp);
		fwrite(c.buf, 1, c.len, fp);
		fclose(fp);
		snprintf(cmd, sizeof(cmd), "promtool check metrics < %s", path);
		assert_int_equal(system(cmd), 0);
		unlink(path);
	}
	cl_free(&c);
}

/* ---- lifecycle pieces (daemon.c) ---- */

static void test_lock_file(void **state)
{
	struct ctd_conf conf = { 0 };
	struct ctd d = { .conf = &conf }, d2 = { .conf = &conf };
	struct stat st;
	char target[CONF_PATH_MAX + 16];

	snprintf(conf.lockfile, sizeof(conf.lockfile), "/tmp/ctd-test-lock-%d",
		 (int)getpid());
	unlink(conf.lockfile);
	assert_int_equal(daemon_lock(&d), 0);
	assert_int_equal(stat(conf.lockfile, &st), 0);
	assert_int_equal(st.st_size, 0);                /* empty, as 1.4.x */
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(daemon_lock(&d2), -1);         /* never "stale" */
	daemon_unlock(&d2);                             /* not ours: kept */
	assert_int_equal(access(conf.lockfile, F_OK), 0);
	daemon_unlock(&d);
	assert_int_equal(access(conf.lockfile, F_OK), -1);

	/* A symlink planted at the path is not followed. */
	snprintf(target, sizeof(target), "%s.target", conf.lockfile);
	unlink(target);
	assert_int_equal(symlink(target, conf.lockfile), 0);
	assert_int_equal(daemon_lock(&d), -1);
	assert_int_equal(access(target, F_OK), -1);
	unlink(conf.lockfile);
}

static int done_calls;

static void child_done(struct ctd *d, pid_t pid, int status, void *arg)
{
	done_calls++;
}

static pid_t spawn(int how)
{
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		struct rlimit rl = { 0, 0 };

		setrlimit(RLIMIT_CORE, &rl);
		if (how == SIGSEGV || how == SIGTERM) {
			signal(how, SIG_DFL);
			sigset_t all;
			sigfillset(&all);
			sigprocmask(SIG_UNBLOCK, &all, NULL);
			kill(getpid(), how);
		}
		_exit(how);
	}
	return pid;
}

/* Wait (with a deadline) until the child is a zombie, without reaping it. */
static void await_zombie(pid_t pid)
{
	uint64_t end = ev_now_ms() + 5000;
	siginfo_t si;

	do {
		memset(&si, 0, sizeof(si));
		assert_int_equal(waitid(P_PID, (id_t)pid, &si,
					WEXITED | WNOHANG | WNOWAIT), 0);
		if (si.si_pid == pid)
			return;
		poll(NULL, 0, 5);
	} while (ev_now_ms() < end);
	fail_msg("child %d did not end", (int)pid);
}

static void test_children(void **state)
{
	struct ctd_conf conf = { 0 };
	struct ctd d = { .conf = &conf };
	pid_t ok, bad, segv, term;
	char *text;
	size_t len;
	FILE *f;

	ok = spawn(0);
	bad = spawn(3);
	segv = spawn(SIGSEGV);
	term = spawn(SIGTERM);
	assert_int_equal(ctd_child_add(&d, ok, "flush", child_done, NULL), 0);
	assert_int_equal(ctd_child_add(&d, bad, NULL, child_done, NULL), 0);
	assert_int_equal(ctd_child_add(&d, segv, "commit", NULL, NULL), 0);
	assert_int_equal(ctd_child_add(&d, term, "any", NULL, NULL), 0);

	f = open_memstream(&text, &len);
	stats_fmt_process(f, &d);
	fclose(f);
	assert_non_null(strstr(text, "type=flush\n"));
	assert_non_null(strstr(text, "type=any\n"));
	assert_int_equal(count_lines(text, len, "PID="), 4);
	free(text);

	await_zombie(ok);
	await_zombie(bad);
	await_zombie(segv);
	await_zombie(term);
	daemon_reap(&d);
	assert_int_equal(d.nchildren, 0);
	assert_int_equal(done_calls, 2);
	assert_int_equal(d.rt.child_failed, 3);
	assert_int_equal(d.rt.child_segfault, 1);
	assert_int_equal(d.rt.child_termsig, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_stats_text),
		cmocka_unit_test(test_stats_wide),
		cmocka_unit_test(test_uptime),
		cmocka_unit_test(test_cli_table),
		cmocka_unit_test(test_cli_conf_path),
		cmocka_unit_test(test_req_feed),
		cmocka_unit_test(test_client_no_daemon),
		cmocka_unit_test(test_lock_file),
		cmocka_unit_test(test_children),
#define S(t) cmocka_unit_test_setup_teardown(t, fx_setup, fx_teardown)
		S(test_socket_file),
		S(test_socket_stale_and_symlink),
		S(test_runtime_reply),
		S(test_silent_client),
		S(test_garbage),
		S(test_many_clients),
		S(test_kill),
		S(test_stats_mode_requests),
		S(test_stats_mode_flows),
		S(test_streamed_dump),
		S(test_xml_dump),
		S(test_half_closed_reader),
		S(test_reader_goes_away),
		S(test_client_roundtrip),
		S(test_debian_client),
		S(test_metrics),
#undef S
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
