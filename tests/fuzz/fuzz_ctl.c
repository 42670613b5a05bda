/*
 * libFuzzer target for the control plane's inputs: the command line
 * (argv from NUL-separated words), the request decoder fed in arbitrary
 * chunks, and the real server state machine driven over a UNIX socket with
 * the input as the client's bytes (partial, extra, unknown requests).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include "cache.h"
#include "ctd.h"
#include "ctl.h"
#include "log.h"

static struct ctd d;
static struct ctd_conf conf;
static FILE *null_out;

static void fuzz_init(void)
{
	unsigned i;

	/* Keep the console quiet: log lines go nowhere. */
	log_open("", -1, false);
	null_out = fopen("/dev/null", "w");
	snprintf(conf.unix_path, sizeof(conf.unix_path),
		 "/tmp/ctd-fuzz-ctl-%d.sock", (int)getpid());
	conf.hashsize = 64;
	conf.unix_mode = 0600;
	conf.hashlimit = 1024;
	d.conf = &conf;
	d.loop = ev_new();
	if (!d.loop || ctl_open(&d) < 0 || stats_mode_new(&d) < 0)
		abort();
	for (i = 0; i < 20; i++) {
		struct ct ct = { 0 };

		ct.orig.l3 = AF_INET;
		ct.orig.l4 = IPPROTO_TCP;
		ct.orig.src.v4 = htonl(0x0a000001 + i);
		ct.orig.dst.v4 = htonl(0x0a000101);
		ct.orig.sport = htons(1000 + i);
		ct.orig.dport = htons(80);
		ct.have = CT_H_ORIG | CT_H_PORTS;
		cache_add(stats_mode_cache(&d), &ct);
	}
}

static void fuzz_cli(const uint8_t *data, size_t size)
{
	char *buf = malloc(size + 1), *argv[64];
	int argc = 0;
	size_t i, start = 0;
	struct cli o;

	if (!buf)
		return;
	memcpy(buf, data, size);
	buf[size] = '\0';
	argv[argc++] = "conntrackd";
	for (i = 0; i <= size && argc < 63; i++) {
		if (i == size || buf[i] == '\0') {
			buf[i] = '\0';
			argv[argc++] = buf + start;
			start = i + 1;
		}
	}
	argv[argc] = NULL;
	if (cli_parse(&o, argc, argv, null_out) < 0 && o.role == CLI_REQUEST &&
	    o.req < 0)
		abort();        /* a client role always carries a request */
	free(buf);
}

static void fuzz_feed(const uint8_t *data, size_t size)
{
	struct ctl_reqbuf rb = { .n = 0 };
	size_t off = 0;
	int req = 0, done = 0;

	while (off < size) {
		size_t n = 1 + data[off] % 5;

		off++;
		if (n > size - off)
			n = size - off;
		done = ctl_req_feed(&rb, data + off, n, &req);
		off += n;
		if (done)
			break;
	}
	if (done && rb.n != 4)
		abort();
	if (done)
		(void)ctl_req_known(req);
}

/* The input is what a client writes; close after it, read the reply. */
static void fuzz_server(const uint8_t *data, size_t size)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	char reply[65536];
	int fd, turn;

	strcpy(sun.sun_path, conf.unix_path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return;
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		close(fd);
		return;
	}
	if (size > 4096)
		size = 4096;
	if (size && send(fd, data, size, MSG_NOSIGNAL) < 0) {
		close(fd);
		return;
	}
	shutdown(fd, SHUT_WR);
	for (turn = 0; turn < 200; turn++) {
		ssize_t n;

		ev_run_once(d.loop, 0);
		n = recv(fd, reply, sizeof(reply), MSG_DONTWAIT);
		if (n == 0 || (n < 0 && errno != EAGAIN))
			break;
	}
	close(fd);
	for (turn = 0; turn < 4; turn++)
		ev_run_once(d.loop, 0);
	d.stopping = false;     /* -k only marks the daemon as stopping */
	if (ctl_client_count(&d) > CTL_MAX_CLIENTS)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;

	if (!ready) {
		fuzz_init();
		ready = 1;
	}
	if (size == 0)
		return 0;
	switch (data[0] % 3) {
	case 0:
		fuzz_cli(data + 1, size - 1);
		break;
	case 1:
		fuzz_feed(data + 1, size - 1);
		break;
	default:
		fuzz_server(data + 1, size - 1);
		break;
	}
	return 0;
}
