/*
 * The control server's internals, shared by ctl.c (socket, clients,
 * buffers), ctl_dispatch.c (what each request does) and ctl_dump.c
 * (streamed dumps). Nothing else includes this.
 */
#ifndef CTD_CTL_PRIV_H
#define CTD_CTL_PRIV_H

#include "ctl.h"
#include <stdbool.h>
#include <sys/types.h>
#include <time.h>

#include "conf.h"
#include "ev.h"
#include "objconv.h"

struct ctl_client {
	struct ctl        *srv;         /* NULL once the server closed */
	struct ctl_client *prev, *next;
	int                fd;          /* -1 once the connection is gone */
	struct ctl_reqbuf  rb;
	int                req;
	struct ev_timer    deadline;
	char              *buf;
	size_t             len, off, cap;
	bool               dispatched;
	bool               finished;    /* no more output will be added */
	bool               awaiting;    /* commit: sync calls ctl_client_finish */
	bool               in_dispatch;
	bool               rd_eof;      /* reader half-closed after its request */
	size_t             extra;       /* bytes received after the request */
	uint64_t           started_us;  /* when the request was dispatched */
	struct {
		bool     on, ext, exp, alarm;
		enum obj_fmt fmt;
		uint32_t pos;
		time_t   wall;
		uint64_t mono;
	} dump;
};

struct ctl {
	struct ctd        *d;
	int                fd;
	char               path[CONF_UNIX_PATH_MAX];
	dev_t              dev;         /* of the socket file we created */
	ino_t              ino;
	struct ctl_client *clients;
	unsigned           n;
	time_t             last_full_warn;
};

/* ctl.c: append to the reply; the client is closed if it passes CTL_BUF_MAX. */
void ctl_buf_append(struct ctl_client *c, const char *p, size_t n);
/* ctl_dispatch.c: act on a known request (reply buffered, or a dump started). */
void ctl_dispatch(struct ctl_client *c, int req);
/* ctl_dump.c */
void ctl_dump_start(struct ctl_client *c, bool ext, bool exp, enum obj_fmt fmt);
void ctl_dump_produce(struct ctl_client *c);   /* up to CTL_BUF_HIGH buffered */
void ctl_live_dump(struct ctl_client *c);      /* -i without internal cache */

#endif
