/*
 * Configuration language: the shipped examples parse, every bad config in
 * tests/conf/bad fails at the line its first comment names, all errors of
 * a file are reported, print -> parse gives the same configuration, and
 * no input (garbage, NUL bytes, 1 MB lines, deep nesting) crashes it.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "conf.h"

#ifndef CONF_DIR
#define CONF_DIR "tests/conf"
#endif
#ifndef EXAMPLES_DIR
#define EXAMPLES_DIR "doc/sync"
#endif

/* Captured diagnostics of one parse. */
struct diag {
	char  *text;
	size_t len;
	FILE  *f;
};

static void diag_open(struct diag *d)
{
	d->text = NULL;
	d->len = 0;
	d->f = open_memstream(&d->text, &d->len);
	assert_non_null(d->f);
}

static void diag_close(struct diag *d)
{
	fclose(d->f);
}

static unsigned count_lines(const char *s, const char *needle)
{
	unsigned n = 0;

	for (const char *p = s; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : p) {
		const char *e = strchr(p, '\n');
		size_t l = e ? (size_t)(e - p) : strlen(p);

		if (!needle || memmem(p, l, needle, strlen(needle)))
			n++;
	}
	return n;
}

static struct ctd_conf *load_file(const char *path, struct diag *err, struct diag *warn)
{
	struct ctd_conf *c;

	diag_open(err);
	diag_open(warn);
	c = conf_load(path, err->f, warn->f);
	diag_close(err);
	diag_close(warn);
	return c;
}

static struct ctd_conf *load_str(const char *text, struct diag *err, struct diag *warn)
{
	struct ctd_conf *c;

	diag_open(err);
	diag_open(warn);
	c = conf_load_buffer("t.conf", text, strlen(text), err->f, warn->f);
	diag_close(err);
	diag_close(warn);
	return c;
}

static struct ctd_conf *must_load(const char *path)
{
	struct diag err, warn;
	struct ctd_conf *c = load_file(path, &err, &warn);

	if (!c)
		fail_msg("%s did not parse:\n%s", path, err.text);
	assert_int_equal(err.len, 0);
	free(err.text);
	free(warn.text);
	return c;
}

/* Print, parse the printout, compare. */
static void assert_round_trip(const struct ctd_conf *c)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	struct diag err, warn;
	struct ctd_conf *again;

	assert_non_null(f);
	conf_print(c, f);
	fclose(f);
	diag_open(&err);
	diag_open(&warn);
	again = conf_load_buffer("printed", buf, len, err.f, warn.f);
	diag_close(&err);
	diag_close(&warn);
	if (!again)
		fail_msg("printout of %s does not parse:\n%s\n--\n%s", c->file, err.text, buf);
	if (!conf_equal(c, again))
		fail_msg("printout of %s parses into a different config:\n%s", c->file, buf);
	conf_free(again);
	free(buf);
	free(err.text);
	free(warn.text);
}

static const char *const examples[] = {
	EXAMPLES_DIR "/ftfw/conntrackd.conf",
	EXAMPLES_DIR "/alarm/conntrackd.conf",
	EXAMPLES_DIR "/notrack/conntrackd.conf",
	EXAMPLES_DIR "/ftfw-expect/conntrackd.conf",
	EXAMPLES_DIR "/../stats/conntrackd.conf",
};

static void test_examples_parse(void **state)
{
	struct ctd_conf *c;
	union addr a;

	(void)state;
	c = must_load(examples[0]);
	assert_true(c->has_sync);
	assert_int_equal(c->mode, SYNC_MODE_FTFW);
	assert_int_equal(c->hashsize, 32768);
	assert_int_equal(c->hashlimit, 131072);
	assert_string_equal(c->lockfile, "/var/lock/conntrack.lock");
	assert_string_equal(c->logfile, "/var/log/conntrackd.log");
	assert_string_equal(c->unix_path, "/var/run/conntrackd.ctl");
	assert_int_equal(c->nl_bufsize, 2097152);
	assert_int_equal(c->nl_bufsize_max, 8388608);
	assert_int_equal(c->nchannels, 1);
	assert_int_equal(c->channels[0].kind, CHAN_MCAST);
	assert_int_equal(c->channels[0].family, AF_INET);
	inet_pton(AF_INET, "225.0.0.50", &a);
	assert_int_equal(c->channels[0].addr.v4, a.v4);
	inet_pton(AF_INET, "192.168.100.100", &a);
	assert_true(c->channels[0].have_ifaddr);
	assert_int_equal(c->channels[0].ifaddr.v4, a.v4);
	assert_int_equal(c->channels[0].port, 3780);
	assert_string_equal(c->channels[0].ifname, "eth2");
	assert_int_equal(c->channels[0].sndbuf, 1249280);
	assert_true(c->channels[0].checksum);
	assert_true(c->filter.present);
	assert_false(c->filter.kernelspace);
	assert_int_equal(c->filter.proto_policy, FILTER_ACCEPT);
	assert_true(c->filter.protos[6]);
	assert_true(c->filter.protos[132]);	/* SCTP */
	assert_true(c->filter.protos[33]);	/* DCCP */
	assert_false(c->filter.protos[17]);
	assert_int_equal(c->filter.addr_policy, FILTER_IGNORE);
	assert_int_equal(c->filter.naddrs, 6);
	assert_int_equal(c->filter.addrs[0].prefix, 32);
	assert_false(c->expectation_sync);
	conf_free(c);

	c = must_load(examples[1]);
	assert_int_equal(c->mode, SYNC_MODE_ALARM);
	assert_int_equal(c->refresh_time, 15);
	assert_int_equal(c->cache_timeout, 180);
	conf_free(c);

	c = must_load(examples[2]);
	assert_int_equal(c->mode, SYNC_MODE_NOTRACK);
	conf_free(c);

	c = must_load(examples[3]);
	assert_int_equal(c->mode, SYNC_MODE_FTFW);
	assert_true(c->startup_resync);
	assert_true(c->expectation_sync);
	assert_int_equal(c->nexp_helpers, 3);
	assert_true(conf_exp_helper_ok(c, "ftp"));
	assert_true(conf_exp_helper_ok(c, "sip-5060"));
	assert_false(conf_exp_helper_ok(c, "irc"));
	conf_free(c);

	c = must_load(examples[4]);
	assert_true(c->has_stats);
	assert_false(c->has_sync);
	assert_int_equal(c->hashsize, 8192);
	assert_int_equal(c->hashlimit, 65535);
	assert_string_equal(c->stats_logfile, "/var/log/conntrackd-stats.log");
	conf_free(c);
}

/* Files in CONF_DIR/<sub>, sorted, NULL-terminated; caller frees. */
static char **list_dir(const char *sub, unsigned *n)
{
	char dir[512];
	struct dirent **ents;
	char **out;
	int m;

	snprintf(dir, sizeof(dir), "%s/%s", CONF_DIR, sub);
	m = scandir(dir, &ents, NULL, alphasort);
	assert_true(m >= 0);
	out = calloc((size_t)m + 1, sizeof(*out));
	*n = 0;
	for (int i = 0; i < m; i++) {
		size_t l = strlen(ents[i]->d_name);

		if (l > 5 && strcmp(ents[i]->d_name + l - 5, ".conf") == 0) {
			out[*n] = malloc(strlen(dir) + l + 2);
			sprintf(out[*n], "%s/%s", dir, ents[i]->d_name);
			(*n)++;
		}
		free(ents[i]);
	}
	free(ents);
	return out;
}

static void free_list(char **l)
{
	for (char **p = l; *p; p++)
		free(*p);
	free(l);
}

/* First line "# expect: LINE: text": an error line "PATH:LINE: ...text..." must exist. */
static void check_bad(const char *path)
{
	char first[512], want[600];
	struct diag err, warn;
	struct ctd_conf *c;
	FILE *f = fopen(path, "r");
	char *colon, *text;
	int line;

	assert_non_null(f);
	assert_non_null(fgets(first, sizeof(first), f));
	fclose(f);
	first[strcspn(first, "\n")] = '\0';
	if (strncmp(first, "# expect: ", 10) != 0)
		fail_msg("%s: first line is not '# expect: LINE: text'", path);
	line = atoi(first + 10);
	colon = strstr(first + 10, ": ");
	if (line <= 0 || !colon)
		fail_msg("%s: bad expect line '%s'", path, first);
	text = colon + 2;

	c = load_file(path, &err, &warn);
	if (c)
		fail_msg("%s parsed although it is bad", path);
	snprintf(want, sizeof(want), "%s:%d: ", path, line);
	for (char *p = err.text; p && *p; ) {
		char *e = strchr(p, '\n');

		if (e)
			*e = '\0';
		if (strncmp(p, want, strlen(want)) == 0 && strstr(p, text))
			goto found;
		/* Every message names the file and a line. */
		if (strncmp(p, path, strlen(path)) != 0)
			fail_msg("%s: message without file:line: '%s'", path, p);
		p = e ? e + 1 : NULL;
	}
	fail_msg("%s: no error '%s%s'; got:\n%s", path, want, text, err.text);
found:
	free(err.text);
	free(warn.text);
}

static void test_bad_corpus(void **state)
{
	unsigned n;
	char **files = list_dir("bad", &n);

	(void)state;
	assert_true(n >= 45);
	for (unsigned i = 0; i < n; i++)
		check_bad(files[i]);
	free_list(files);
}

static void test_all_errors_reported(void **state)
{
	static const char text[] =
		"General {\n"
		"\tHashSize 8192\n"
		"\tFooBar 1\n"			/* 3: unknown keyword */
		"\tLockFile /run/x.lock\n"
		"\tHashLimit 99999999999999999999999\n"	/* 5: out of range */
		"}\n"
		"Sync {\n"
		"\tMode FTFW { }\n"
		"\tUDP {\n"
		"\t\tIPv4_address 10.0.0.1\n"
		"\t\tIPv4_Destination_Address 10.0.0.300\n"	/* 11: bad address */
		"\t\tPort 3780\n"
		"\t\tInterface lo\n"
		"\t}\n"
		"}\n";
	struct diag err, warn;
	struct ctd_conf *c = load_str(text, &err, &warn);

	(void)state;
	assert_null(c);
	assert_int_equal(count_lines(err.text, NULL), 3);
	assert_int_equal(count_lines(err.text, "t.conf:3: "), 1);
	assert_int_equal(count_lines(err.text, "unknown keyword 'FooBar'"), 1);
	assert_int_equal(count_lines(err.text, "t.conf:5: HashLimit"), 1);
	assert_int_equal(count_lines(err.text, "t.conf:11: 10.0.0.300 is not a valid IPv4"), 1);
	free(err.text);
	free(warn.text);

	/* A missing value is blamed on its key; the next line still parses. */
	c = load_str("General {\n"
		     "\tHashSize\n"		/* 2 */
		     "\tLockFile /run/x.lock\n"
		     "\tFoo\n"			/* 4 */
		     "\tUNIX {\n"
		     "\t\tPath\n"		/* 6 */
		     "\t}\n"
		     "\tHashLimit\n"		/* 8 */
		     "}\n", &err, &warn);
	assert_null(c);
	assert_int_equal(count_lines(err.text, NULL), 4);
	assert_int_equal(count_lines(err.text, "t.conf:2: missing value after 'HashSize': expected number"), 1);
	assert_int_equal(count_lines(err.text, "t.conf:4: syntax error at 'Foo': unknown keyword 'Foo' in General block"), 1);
	assert_int_equal(count_lines(err.text, "t.conf:6: missing value after 'Path': expected path"), 1);
	assert_int_equal(count_lines(err.text, "t.conf:8: missing value after 'HashLimit'"), 1);
	free(err.text);
	free(warn.text);
}

static void test_round_trip(void **state)
{
	unsigned n;
	char **files = list_dir("good", &n);
	struct ctd_conf *c, *d;

	(void)state;
	assert_true(n >= 4);
	for (unsigned i = 0; i < n; i++) {
		c = must_load(files[i]);
		assert_round_trip(c);
		conf_free(c);
	}
	free_list(files);
	for (size_t i = 0; i < sizeof(examples) / sizeof(examples[0]); i++) {
		c = must_load(examples[i]);
		assert_round_trip(c);
		conf_free(c);
	}
	/* conf_equal must see a difference, or the round trip proves nothing. */
	c = must_load(examples[0]);
	d = must_load(examples[0]);
	assert_true(conf_equal(c, d));
	d->channels[0].port++;
	assert_false(conf_equal(c, d));
	d->channels[0].port--;
	d->filter.addrs[2].addr.b[3] ^= 1;
	assert_false(conf_equal(c, d));
	conf_free(c);
	conf_free(d);
}

static const char minimal[] =
	"Sync {\n"
	"\tUDP {\n"
	"\t\tIPv4_address 10.0.0.1\n"
	"\t\tIPv4_Destination_Address 10.0.0.2\n"
	"\t\tPort 3780\n"
	"\t\tInterface lo\n"
	"\t}\n"
	"}\n";

static void test_defaults(void **state)
{
	struct diag err, warn;
	char text[1024];
	struct ctd_conf *c = load_str(minimal, &err, &warn);

	(void)state;
	assert_non_null(c);
	assert_int_equal(warn.len, 0);	/* lo exists: no warning */
	assert_int_equal(c->hashsize, 65536);
	assert_int_equal(c->hashlimit, 262144);
	assert_string_equal(c->lockfile, "/var/lock/conntrackd.lock");
	assert_string_equal(c->logfile, "");
	assert_string_equal(c->unix_path, "");
	assert_int_equal(c->unix_mode, 0600);
	assert_int_equal(c->nl_overrun_resync, 30);
	assert_int_equal(c->event_iteration_limit, 100);
	assert_int_equal(c->poll_secs, 0);
	assert_int_equal(c->resend_queue_size, 131072);
	assert_int_equal(c->ack_window_size, 300);
	assert_int_equal(c->refresh_time, 60);
	assert_int_equal(c->cache_timeout, 180);
	assert_int_equal(c->commit_timeout, 0);
	assert_int_equal(c->purge_timeout, 60);
	assert_int_equal(c->error_queue_length, 128);
	assert_true(c->systemd);
	assert_int_equal(c->syslog_facility, -1);
	assert_int_equal(c->stats_syslog_facility, -1);
	assert_int_equal(c->sched_policy, -1);
	assert_false(c->sched_type_set);
	assert_int_equal(c->mode, SYNC_MODE_NONE);
	assert_true(c->channels[0].checksum);
	assert_int_equal(c->channels[0].ifindex, if_nametoindex("lo"));
	assert_int_not_equal(c->channels[0].ifindex, 0);
	assert_int_equal(c->default_channel, 0);
	assert_false(c->has_helper);
	conf_free(c);
	free(err.text);
	free(warn.text);

	/* Zero means "unset" for these keys. */
	snprintf(text, sizeof(text), "General {\n HashSize 0\n HashLimit 0\n"
		 " EventIterationLimit 0\n NetlinkOverrunResync 0\n}\n%s", minimal);
	c = load_str(text, &err, &warn);
	assert_non_null(c);
	assert_int_equal(c->hashsize, 65536);
	assert_int_equal(c->hashlimit, 262144);
	assert_int_equal(c->event_iteration_limit, 100);
	assert_int_equal(c->nl_overrun_resync, 30);
	conf_free(c);
	free(err.text);
	free(warn.text);
}

static void test_last_value_wins(void **state)
{
	char text[2048];
	struct diag err, warn;
	struct ctd_conf *c;

	(void)state;
	snprintf(text, sizeof(text),
		 "General {\n LockFile /run/a.lock\n LogFile /var/log/a.log\n Syslog local1\n}\n"
		 "General {\n LockFile /run/b.lock\n LogFile off\n Syslog bogus\n"
		 " NetlinkOverrunResync off\n UNIX { Path /run/a.ctl }\n UNIX { Path /run/b.ctl }\n}\n"
		 "%s", minimal);
	c = load_str(text, &err, &warn);
	assert_non_null(c);
	assert_string_equal(c->lockfile, "/run/b.lock");
	assert_string_equal(c->logfile, "/var/log/a.log");	/* off is a no-op */
	assert_int_equal(c->syslog_facility, LOG_LOCAL1);	/* unknown keeps old */
	assert_int_equal(count_lines(warn.text, "t.conf:9: warning: 'bogus' is not a known syslog facility, ignoring"), 1);
	assert_int_equal(c->nl_overrun_resync, 0);
	assert_string_equal(c->unix_path, "/run/b.ctl");
	conf_free(c);
	free(err.text);
	free(warn.text);
}

/* The scanner quirks DECISIONS.md fixes: read the sane way. */
static void test_quirks_fixed(void **state)
{
	struct ctd_conf *c;
	struct diag err, warn;
	char path[512];

	(void)state;
	snprintf(path, sizeof(path), "%s/good/quirks-crlf.conf", CONF_DIR);
	c = load_file(path, &err, &warn);
	assert_non_null(c);
	assert_int_equal(err.len, 0);
	assert_int_equal(c->hashsize, 4096);
	assert_int_equal(c->hashlimit, 1000);		/* a TAB ends the path */
	assert_string_equal(c->lockfile, "/run/ctd-quirk2.lock");
	assert_int_equal(c->mode, SYNC_MODE_ALARM);	/* `persistent', lower case */
	assert_string_equal(c->channels[0].ifname, "bad");	/* hex-looking names */
	assert_string_equal(c->channels[1].ifname, "cafe");
	assert_int_equal(c->channels[0].family, AF_INET6);
	assert_true(c->channels[0].is_default);
	assert_int_equal(c->default_channel, 0);
	assert_int_equal(count_lines(warn.text, ":16: warning: bad is an invalid interface"), 1);
	assert_int_equal(count_lines(warn.text, ":12: warning: Now `persistent' mode is called `alarm'"), 1);
	conf_free(c);
	free(err.text);
	free(warn.text);

	/* Other mode-name casings and the nack alias. */
	static const char *const modes[] = { "ftfw", "FtFw", "NACK", "Alarm", "PERSISTENT",
					     "notrack", "NoTrack" };
	static const enum sync_mode want[] = { SYNC_MODE_FTFW, SYNC_MODE_FTFW, SYNC_MODE_FTFW,
					       SYNC_MODE_ALARM, SYNC_MODE_ALARM,
					       SYNC_MODE_NOTRACK, SYNC_MODE_NOTRACK };
	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		char text[1024];

		snprintf(text, sizeof(text), "Sync { Mode %s { }\n%s", modes[i], minimal + 6);
		c = load_str(text, &err, &warn);
		assert_non_null(c);
		assert_int_equal(c->mode, want[i]);
		conf_free(c);
		free(err.text);
		free(warn.text);
	}
}

static void test_warnings(void **state)
{
	char text[2048];
	struct diag err, warn;
	struct ctd_conf *c;

	(void)state;
	snprintf(text, sizeof(text),
		 "Sync {\n"
		 " Mode nack {\n"
		 "  CommitTimeout 5\n"
		 "  DisableExternalCache on\n"
		 " }\n"
		 " Multicast {\n"
		 "  IPv4_address 225.0.0.1\n"
		 "  Group 3780\n"
		 "  Interface nosuchif0\n"
		 "  IPv6_interface fe80::1\n"
		 " }\n"
		 "}\n");
	c = load_str(text, &err, &warn);
	assert_non_null(c);
	assert_int_equal(err.len, 0);
	assert_int_equal(count_lines(warn.text, "t.conf:2: warning: Now `nack' mode is called `ftfw'. Please, update your conntrackd.conf file."), 1);
	assert_int_equal(count_lines(warn.text, "t.conf:9: warning: nosuchif0 is an invalid interface"), 1);
	assert_int_equal(count_lines(warn.text, "t.conf:10: warning: `IPv6_interface' not required, ignoring"), 1);
	assert_int_equal(count_lines(warn.text, "warning: `CommitTimeout' can't be combined with `DisableExternalCache'"), 1);
	assert_int_equal(c->commit_timeout, 0);
	assert_int_equal(c->channels[0].ifindex, 0);
	assert_int_equal(c->mode, SYNC_MODE_FTFW);
	conf_free(c);
	free(err.text);
	free(warn.text);
}

static void test_exp_helper_ok(void **state)
{
	char text[2048];
	struct diag err, warn;
	struct ctd_conf *c;

	(void)state;
	c = load_str(minimal, &err, &warn);
	assert_false(conf_exp_helper_ok(c, "ftp"));	/* default off */
	conf_free(c);
	free(err.text);
	free(warn.text);

	snprintf(text, sizeof(text), "%.*s Options { ExpectationSync on }\n}\n",
		 (int)sizeof(minimal) - 4, minimal);
	c = load_str(text, &err, &warn);
	assert_non_null(c);
	assert_true(conf_exp_helper_ok(c, "anything"));
	conf_free(c);
	free(err.text);
	free(warn.text);

	snprintf(text, sizeof(text), "%.*s Options { ExpectationSync { }\n}\n}\n",
		 (int)sizeof(minimal) - 4, minimal);
	c = load_str(text, &err, &warn);
	assert_non_null(c);
	assert_true(conf_exp_helper_ok(c, "irc"));	/* empty list: all */
	conf_free(c);
	free(err.text);
	free(warn.text);

	snprintf(text, sizeof(text), "%.*s Options { ExpectationSync { SIP ftp ftp q.931 }\n}\n}\n",
		 (int)sizeof(minimal) - 4, minimal);
	c = load_str(text, &err, &warn);
	assert_non_null(c);
	assert_int_equal(c->nexp_helpers, 3);		/* duplicate ignored */
	assert_true(conf_exp_helper_ok(c, "sip"));
	assert_true(conf_exp_helper_ok(c, "sip-5060"));	/* case-insensitive prefix */
	assert_true(conf_exp_helper_ok(c, "FTP-21"));
	assert_true(conf_exp_helper_ok(c, "Q.931"));
	assert_false(conf_exp_helper_ok(c, "si"));
	assert_false(conf_exp_helper_ok(c, "h245"));
	conf_free(c);
	free(err.text);
	free(warn.text);

	snprintf(text, sizeof(text), "%.*s Options { ExpectationSync { ftp }\nExpectationSync off }\n}\n",
		 (int)sizeof(minimal) - 4, minimal);
	c = load_str(text, &err, &warn);
	assert_non_null(c);
	assert_false(conf_exp_helper_ok(c, "ftp"));
	conf_free(c);
	free(err.text);
	free(warn.text);
}

static void test_full_config_values(void **state)
{
	char path[512];
	struct ctd_conf *c;
	union addr a;

	(void)state;
	snprintf(path, sizeof(path), "%s/good/full-udp.conf", CONF_DIR);
	c = must_load(path);
	assert_string_equal(c->logfile, "/var/log/ctd-test.log");
	assert_int_equal(c->syslog_facility, LOG_LOCAL3);
	assert_int_equal(c->unix_mode, 0660);
	assert_int_equal(c->nl_overrun_resync, 0);
	assert_true(c->nl_events_reliable);
	assert_int_equal(c->poll_secs, 5);
	assert_int_equal(c->sched_policy, SCHED_FIFO);
	assert_int_equal(c->sched_priority, 50);
	assert_true(c->sched_type_set);
	assert_false(c->systemd);
	assert_true(c->filter.kernelspace);
	assert_int_equal(c->filter.proto_policy, FILTER_IGNORE);
	assert_true(c->filter.protos[1] && c->filter.protos[6] && c->filter.protos[17]);
	assert_int_equal(c->filter.addr_policy, FILTER_ACCEPT);
	assert_int_equal(c->filter.naddrs, 4);
	assert_int_equal(c->filter.addrs[0].prefix, 8);
	assert_int_equal(c->filter.addrs[2].family, AF_INET6);
	assert_int_equal(c->filter.addrs[2].prefix, 10);
	assert_int_equal(c->filter.state_policy, FILTER_ACCEPT);
	assert_int_equal(c->filter.tcp_states, (1u << 3) | (1u << 8) | (1u << 1) | (1u << 9));
	assert_int_equal(c->mode, SYNC_MODE_NOTRACK);
	assert_true(c->disable_internal_cache && c->disable_external_cache && c->startup_resync);
	assert_int_equal(c->purge_timeout, 15);
	assert_int_equal(c->nchannels, 2);
	assert_int_equal(c->default_channel, 1);
	assert_false(c->channels[0].checksum);
	assert_int_equal(c->channels[1].family, AF_INET6);
	inet_pton(AF_INET6, "fd00::2", &a);
	assert_memory_equal(&c->channels[1].dest, &a, 16);
	assert_int_equal(c->channels[1].port, 3782);
	assert_true(c->tcp_window_tracking);
	assert_string_equal(c->auth_key_file, "/etc/conntrackd/sync.key");
	conf_free(c);

	snprintf(path, sizeof(path), "%s/good/helper-stats.conf", CONF_DIR);
	c = must_load(path);
	assert_true(c->has_stats && c->has_helper && c->helper_setup);
	assert_int_equal(c->syslog_facility, LOG_DAEMON);
	assert_int_equal(c->stats_syslog_facility, LOG_LOCAL2);
	assert_int_equal(c->nhelpers, 2);
	assert_string_equal(c->helpers[0].name, "ftp");
	assert_int_equal(c->helpers[0].l3, AF_INET);
	assert_int_equal(c->helpers[0].l4, 6);
	assert_int_equal(c->helpers[0].queue_len, 10240);
	assert_int_equal(c->helpers[0].npolicies, 1);
	assert_int_equal(c->helpers[0].policies[0].expect_timeout, 300);
	assert_int_equal(c->helpers[1].l3, AF_INET6);
	assert_int_equal(c->helpers[1].queue_num, 5);	/* written before its Type */
	assert_int_equal(c->helpers[1].npolicies, 2);
	conf_free(c);

	snprintf(path, sizeof(path), "%s/good/tcp-alarm.conf", CONF_DIR);
	c = must_load(path);
	assert_int_equal(c->channels[0].kind, CHAN_TCP);
	assert_int_equal(c->error_queue_length, 512);
	assert_int_equal(c->commit_timeout, 5);
	assert_int_equal(c->purge_timeout, 20);
	assert_int_equal(c->refresh_time, 15);
	assert_int_equal(c->sched_policy, -1);
	assert_int_equal(c->sched_priority, 10);
	assert_int_equal(c->nl_overrun_resync, 7);
	conf_free(c);
}

static void test_missing_file(void **state)
{
	struct diag err, warn;
	struct ctd_conf *c = load_file("/nonexistent/ctd.conf", &err, &warn);

	(void)state;
	assert_null(c);
	assert_int_equal(count_lines(err.text, "can't open config file `/nonexistent/ctd.conf'"), 1);
	free(err.text);
	free(warn.text);

	c = load_file("/", &err, &warn);
	assert_null(c);
	assert_int_equal(count_lines(err.text, "/: can't read config file `/'"), 1);
	free(err.text);
	free(warn.text);

	/* A pipe is read to its end, like a file. */
	int fds[2];
	char path[64];

	assert_int_equal(pipe(fds), 0);
	assert_int_equal(write(fds[1], minimal, strlen(minimal)), (ssize_t)strlen(minimal));
	close(fds[1]);
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fds[0]);
	c = load_file(path, &err, &warn);
	close(fds[0]);
	assert_non_null(c);
	assert_int_equal(c->channels[0].port, 3780);
	conf_free(c);
	free(err.text);
	free(warn.text);
}

static void parse_junk(const char *buf, size_t len)
{
	FILE *null = fopen("/dev/null", "w");
	struct diag err;
	struct ctd_conf *c;

	assert_non_null(null);
	diag_open(&err);
	c = conf_load_buffer("junk", buf, len, err.f, null);
	diag_close(&err);
	fclose(null);
	if (c) {
		assert_int_equal(err.len, 0);
		conf_free(c);
	} else {
		/* Reported, and bounded even for megabytes of garbage. */
		assert_true(err.len > 0);
		assert_true(count_lines(err.text, NULL) <= 52);
	}
	free(err.text);
}

static void test_never_crashes(void **state)
{
	size_t big = 1u << 20;
	char *buf = malloc(big + 64);
	unsigned seed = 12345;

	(void)state;
	assert_non_null(buf);
	/* 1 MB line, a 1 MB path, deep nesting, braces only, NUL bytes. */
	memset(buf, 'a', big);
	parse_junk(buf, big);
	memcpy(buf, "General { LockFile /", 20);
	parse_junk(buf, big);
	for (size_t i = 0; i + 18 <= big; i += 18)
		memcpy(buf + i, "Type a inet tcp { ", 18);
	memcpy(buf, "Helper { ", 9);
	parse_junk(buf, big);
	memset(buf, '{', big);
	parse_junk(buf, big);
	memset(buf, '}', big);
	parse_junk(buf, big);
	memset(buf, 0, big);
	parse_junk(buf, big);
	/* Random bytes, and random damage to a valid config. */
	for (int round = 0; round < 2000; round++) {
		size_t len = sizeof(minimal) - 1;

		memcpy(buf, minimal, len);
		for (int k = 0; k < 1 + round % 8; k++) {
			seed = seed * 1103515245 + 12345;
			buf[(seed >> 8) % len] = (char)(seed >> 16);
		}
		parse_junk(buf, len);
		for (size_t i = 0; i < 256; i++) {
			seed = seed * 1103515245 + 12345;
			buf[i] = (char)(seed >> 16);
		}
		parse_junk(buf, 256);
	}
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_examples_parse),
		cmocka_unit_test(test_bad_corpus),
		cmocka_unit_test(test_all_errors_reported),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_last_value_wins),
		cmocka_unit_test(test_quirks_fixed),
		cmocka_unit_test(test_warnings),
		cmocka_unit_test(test_exp_helper_ok),
		cmocka_unit_test(test_full_config_values),
		cmocka_unit_test(test_missing_file),
		cmocka_unit_test(test_never_crashes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
