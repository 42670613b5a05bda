/*
 * Batched writes to ctnetlink. Requests are built straight into one large
 * buffer (obj_nlbuild.c: no library object per entry) and sent with a
 * single sendto(); the kernel handles them in order
 * while we are inside sendto(), so every answer is queued on our socket
 * when it returns. Each request has its own sequence number, so error
 * answers map back to the queued objects (see KB_ACK_EVERY), and the retry rules
 * (EEXIST -> delete + create, update ENOENT -> create, ...) run as a
 * follow-up batch.
 */
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <poll.h>
#include <time.h>
#include <sys/socket.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <libnetfilter_conntrack/libnetfilter_conntrack.h>

#include "kernel.h"
#include "obj_nlbuild.h"
#include "objconv.h"

#ifndef NETLINK_CAP_ACK
#define NETLINK_CAP_ACK 10
#endif

#ifndef KB_BUFSZ
#define KB_BUFSZ        (256 * 1024)
#endif
#define KB_MSG_ROOM     (8 * 1024)      /* worst case for one request */
#define KB_RCVBUF       (16 * 1024 * 1024)
#define KB_ACK_WAIT_MS  1000
#define KB_RBUFSZ       (64 * 1024)
/*
 * The kernel answers a failed request whether or not it asked for an ACK,
 * in order. So only the last request of a batch asks for one: its answer
 * is the barrier after which every unanswered request has succeeded. This
 * saves one answer (allocation, copy, recv) per request; set to 1 to ACK
 * every request instead.
 */
#ifndef KB_ACK_EVERY
#define KB_ACK_EVERY    0
#endif

struct kreq {
	uint32_t seq;
	uint8_t  op;            /* enum kop asked by the caller */
	uint8_t  stage;         /* enum kstage of this message */
	bool     wt;            /* TCP window tracking */
	bool     answered;
	int      err;
	uint32_t timeout;
	union {
		struct ct ct;
		struct exp exp;
	} o;
};

struct kreqv {
	struct kreq *v;
	size_t n, cap;
};

struct kbatch {
	struct mnl_socket *nl;
	uint32_t portid;
	uint32_t seq;
	kbatch_err_cb cb;
	void *arg;
	char *buf;
	size_t len;
	char *rbuf;             /* answers */
	size_t last;            /* offset of the last request in buf */
	size_t cap;             /* bytes per batch (<= KB_BUFSZ) */
	struct kreqv pend;      /* requests in buf, in order */
	struct kreqv retry;     /* follow-ups of the last batch */
	uint64_t ok, failed;
	enum kstage err_stage;  /* valid during the callback */
	int sock_err;
};

static bool is_ct(uint8_t op)
{
	return op == KOP_CT_CREATE || op == KOP_CT_UPDATE || op == KOP_CT_DELETE;
}

static void req_release(struct kreq *r)
{
	if (is_ct(r->op) && r->o.ct.ext) {
		free(r->o.ct.ext);
		r->o.ct.ext = NULL;
	}
}

static struct kreq *reqv_push(struct kreqv *v)
{
	if (v->n == v->cap) {
		size_t cap = v->cap ? v->cap * 2 : 1024;
		struct kreq *p = realloc(v->v, cap * sizeof(*p));
		if (!p)
			return NULL;
		v->v = p;
		v->cap = cap;
	}
	memset(&v->v[v->n], 0, sizeof(v->v[0]));
	return &v->v[v->n++];
}

struct kbatch *kbatch_new(kbatch_err_cb cb, void *arg)
{
	struct kbatch *b = calloc(1, sizeof(*b));
	int one = 1, sz = KB_RCVBUF;

	if (!b)
		return NULL;
	/* zeroed: the message builder leaves attribute padding unwritten */
	b->buf = calloc(1, KB_BUFSZ);
	b->rbuf = malloc(KB_RBUFSZ);
	b->nl = mnl_socket_open(NETLINK_NETFILTER);
	if (!b->buf || !b->rbuf || !b->nl || mnl_socket_bind(b->nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		kbatch_free(b);
		return NULL;
	}
	/* Answers to a whole batch must fit: force a large receive buffer
	 * (root), else take what the system allows. */
	if (setsockopt(mnl_socket_get_fd(b->nl), SOL_SOCKET, SO_RCVBUFFORCE,
		       &sz, sizeof(sz)) < 0)
		setsockopt(mnl_socket_get_fd(b->nl), SOL_SOCKET, SO_RCVBUF,
			   &sz, sizeof(sz));
	/* One sendto() carries the whole buffer: the send buffer must hold it. */
	sz = KB_BUFSZ * 2;
	if (setsockopt(mnl_socket_get_fd(b->nl), SOL_SOCKET, SO_SNDBUFFORCE,
		       &sz, sizeof(sz)) < 0)
		setsockopt(mnl_socket_get_fd(b->nl), SOL_SOCKET, SO_SNDBUF,
			   &sz, sizeof(sz));
	{
		/* Without the privilege to force it, batch what fits (the
		 * kernel refuses a datagram above sndbuf - 32). */
		socklen_t l = sizeof(sz);

		b->cap = KB_BUFSZ;
		if (getsockopt(mnl_socket_get_fd(b->nl), SOL_SOCKET, SO_SNDBUF,
			       &sz, &l) == 0 && (size_t)sz / 2 < b->cap)
			b->cap = (size_t)sz / 2;
		if (b->cap < 2 * KB_MSG_ROOM)
			b->cap = 2 * KB_MSG_ROOM;
	}
	/* Error answers without the echoed request: smaller, faster. */
	mnl_socket_setsockopt(b->nl, NETLINK_CAP_ACK, &one, sizeof(one));
	b->portid = mnl_socket_get_portid(b->nl);
	b->seq = (uint32_t)time(NULL);
	b->cb = cb;
	b->arg = arg;
	return b;
}

static void reqv_clear(struct kreqv *v)
{
	for (size_t i = 0; i < v->n; i++)
		req_release(&v->v[i]);
	v->n = 0;
}

void kbatch_free(struct kbatch *b)
{
	if (!b)
		return;
	reqv_clear(&b->pend);
	reqv_clear(&b->retry);
	free(b->pend.v);
	free(b->retry.v);
	if (b->nl)
		mnl_socket_close(b->nl);
	free(b->buf);
	free(b->rbuf);
	free(b);
}

uint32_t kbatch_portid(const struct kbatch *b)
{
	return b->portid;
}

uint64_t kbatch_ok(const struct kbatch *b)
{
	return b->ok;
}

uint64_t kbatch_failed(const struct kbatch *b)
{
	return b->failed;
}

enum kstage kbatch_err_stage(const struct kbatch *b)
{
	return b->err_stage;
}

static struct nlmsghdr *put_hdr(struct kbatch *b, uint16_t type, uint16_t flags,
				uint8_t family, uint32_t seq)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(b->buf + b->len);
	struct nfgenmsg *nfh;

	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = NLM_F_REQUEST | flags;
#if KB_ACK_EVERY
	nlh->nlmsg_flags |= NLM_F_ACK;
#endif
	nlh->nlmsg_seq = seq;
	nfh = mnl_nlmsg_put_extra_header(nlh, sizeof(*nfh));
	nfh->nfgen_family = family;
	nfh->version = NFNETLINK_V0;
	nfh->res_id = 0;
	return nlh;
}

static int build_ct(struct kbatch *b, const struct kreq *r)
{
	const struct ct *ct = &r->o.ct;
	struct nlmsghdr *nlh;
	struct ct tmp;
	int ret;

	switch (r->stage) {
	case KST_CREATE:
	case KST_RECREATE:
	case KST_UPD_CREATE:
		nlh = put_hdr(b, (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_NEW,
			      NLM_F_CREATE | NLM_F_EXCL, ct->orig.l3, r->seq);
		ret = nlb_ct(nlh, ct, r->wt, r->timeout);
		break;
	case KST_UPDATE:
		/* The kernel refuses to change NAT, helper and master of an
		 * existing entry: leave them out. */
		tmp = *ct;
		tmp.have &= ~(CT_H_SNAT | CT_H_DNAT | CT_H_SPAT | CT_H_DPAT |
			      CT_H_HELPER | CT_H_MASTER | CT_H_MASTER_PORTS);
		tmp.status &= ~(IPS_NAT_MASK | IPS_NAT_DONE_MASK);
		nlh = put_hdr(b, (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_NEW,
			      0, ct->orig.l3, r->seq);
		ret = nlb_ct(nlh, &tmp, r->wt, r->timeout);
		break;
	default:        /* KST_DELETE, KST_PRE_DELETE: only what identifies it */
		nlh = put_hdr(b, (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_DELETE,
			      0, ct->orig.l3, r->seq);
		ret = nlb_ct_key(nlh, ct);
		break;
	}
	if (ret < 0)
		return -1;
	b->len += MNL_ALIGN(nlh->nlmsg_len);
	return 0;
}

static int build_exp(struct kbatch *b, const struct kreq *r)
{
	const struct exp *e = &r->o.exp;
	bool del = r->stage == KST_DELETE || r->stage == KST_PRE_DELETE;
	struct nlmsghdr *nlh;

	nlh = put_hdr(b, (NFNL_SUBSYS_CTNETLINK_EXP << 8) |
		      (del ? IPCTNL_MSG_EXP_DELETE : IPCTNL_MSG_EXP_NEW),
		      del ? 0 : NLM_F_CREATE | NLM_F_EXCL, e->master.l3, r->seq);
	if (nlb_exp(nlh, e, del ? 0 : r->timeout) < 0)
		return -1;
	b->len += MNL_ALIGN(nlh->nlmsg_len);
	return 0;
}

/* Build request r (already in b->pend) into the buffer. */
static int build(struct kbatch *b, struct kreq *r)
{
	size_t at = b->len;
	int ret;

	r->seq = ++b->seq;
	ret = is_ct(r->op) ? build_ct(b, r) : build_exp(b, r);
	if (ret == 0)
		b->last = at;
	else    /* a half-written message stays outside len: wipe it */
		memset(b->buf + at, 0, KB_MSG_ROOM);
	return ret;
}

static void report(struct kbatch *b, struct kreq *r, int err)
{
	b->failed++;
	b->err_stage = r->stage;
	if (b->cb)
		b->cb(b->arg, r->op, is_ct(r->op) ? (const void *)&r->o.ct :
		      (const void *)&r->o.exp, err);
}

static int recv_answers(struct kbatch *b)
{
	char *rbuf = b->rbuf;
	size_t left = b->pend.n;
	uint32_t seq0 = b->pend.n ? b->pend.v[0].seq : 0;
	struct kreq *barrier = b->pend.n ? &b->pend.v[b->pend.n - 1] : NULL;
	int fd = mnl_socket_get_fd(b->nl);
	int waited = 0;

	while (left && !barrier->answered) {
		ssize_t rl = recv(fd, rbuf, KB_RBUFSZ, MSG_DONTWAIT);
		struct nlmsghdr *nlh;
		int len = (int)rl;

		if (rl < 0) {
			struct pollfd p = { .fd = fd, .events = POLLIN };

			if (errno == EINTR)
				continue;
			if (errno == ENOBUFS) {
				/* Answers were dropped: the affected requests
				 * stay unanswered and are reported below. */
				b->sock_err = ENOBUFS;
				continue;
			}
			if (errno != EAGAIN)
				return -1;
			/* All answers are normally queued before sendto()
			 * returns; wait a little in case they are not. */
			if (b->sock_err || waited >= KB_ACK_WAIT_MS)
				break;
			if (poll(&p, 1, 100) == 0)
				waited += 100;
			continue;
		}
		for (nlh = (struct nlmsghdr *)rbuf; mnl_nlmsg_ok(nlh, len);
		     nlh = mnl_nlmsg_next(nlh, &len)) {
			const struct nlmsgerr *e;
			uint32_t i = nlh->nlmsg_seq - seq0;

			if (nlh->nlmsg_type != NLMSG_ERROR ||
			    nlh->nlmsg_len < NLMSG_HDRLEN + sizeof(*e) ||
			    i >= b->pend.n || b->pend.v[i].answered)
				continue;
			e = mnl_nlmsg_get_payload(nlh);
			b->pend.v[i].answered = true;
			b->pend.v[i].err = -e->error;
			left--;
		}
	}
	/* Answers come in order: everything before the barrier that got
	 * no error answer has succeeded. */
	if (barrier && barrier->answered && !KB_ACK_EVERY)
		for (size_t i = 0; i + 1 < b->pend.n; i++)
			if (!b->pend.v[i].answered) {
				b->pend.v[i].answered = true;
				b->pend.v[i].err = 0;
			}
	return 0;
}

/* The follow-up now owns the object's extension. */
static void moved(struct kreq *r)
{
	if (is_ct(r->op))
		r->o.ct.ext = NULL;
}

/* What to do with an answered request: 1 = follow-ups queued, 0 = done. */
static int settle(struct kbatch *b, struct kreq *r)
{
	int err = r->answered ? r->err : (b->sock_err ? b->sock_err : ETIMEDOUT);
	struct kreq *d, *c;

	if (!err) {
		/* A pre-delete is an internal step, not a request. */
		if (r->stage != KST_PRE_DELETE)
			b->ok++;
		return 0;
	}
	switch (r->stage) {
	case KST_PRE_DELETE:
		return 0;       /* gone already: fine */
	case KST_DELETE:
		if (err == ENOENT)
			return 0;
		break;
	case KST_CREATE:
		if (err != EEXIST)
			break;
		/* delete + create */
		__attribute__((fallthrough));
	case KST_UPDATE:
		if (r->stage == KST_UPDATE && err == ENOENT) {
			if (!(c = reqv_push(&b->retry)))
				break;
			*c = *r;
			c->stage = KST_UPD_CREATE;
			c->answered = false;
			moved(r);
			return 1;
		}
		if (!(d = reqv_push(&b->retry)))
			break;
		*d = *r;
		d->stage = KST_PRE_DELETE;
		d->answered = false;
		moved(d);       /* the create keeps it */
		if (!(c = reqv_push(&b->retry))) {
			b->retry.n--;
			break;
		}
		*c = *r;
		c->stage = KST_RECREATE;
		c->answered = false;
		moved(r);
		return 1;
	default:
		break;
	}
	report(b, r, err);
	return 0;
}

/* Follow-ups, in order, become the next batch(es): as many as fit. */
static void fill_from_retry(struct kbatch *b)
{
	size_t i = 0;

	while (i < b->retry.n && b->len + KB_MSG_ROOM <= b->cap) {
		struct kreq *r = reqv_push(&b->pend);

		if (!r)
			break;
		*r = b->retry.v[i++];
		if (build(b, r) < 0) {
			if (r->stage != KST_PRE_DELETE)
				report(b, r, EINVAL);
			req_release(r);
			b->pend.n--;
		}
	}
	if (i > 0 && i < b->retry.n)
		memmove(b->retry.v, b->retry.v + i, (b->retry.n - i) * sizeof(*b->retry.v));
	b->retry.n -= i;
}

static int send_pending(struct kbatch *b)
{
	int before = (int)b->failed;

	while (b->pend.n) {
		size_t off = 0;

		b->sock_err = 0;
		((struct nlmsghdr *)(b->buf + b->last))->nlmsg_flags |= NLM_F_ACK;
		while (off < b->len) {
			ssize_t s = sendto(mnl_socket_get_fd(b->nl), b->buf + off,
					   b->len - off, 0, NULL, 0);
			/* The kernel takes the whole buffer in one go; a
			 * failure here means the socket is unusable. */
			if (s < 0 && errno == EINTR)
				continue;
			if (s < 0) {
				b->sock_err = errno;
				break;
			}
			off += (size_t)s;
		}
		if (!b->sock_err && recv_answers(b) < 0)
			b->sock_err = errno;

		for (size_t i = 0; i < b->pend.n; i++) {
			settle(b, &b->pend.v[i]);
			req_release(&b->pend.v[i]);
		}
		b->pend.n = 0;
		memset(b->buf, 0, b->len);
		b->len = 0;
		fill_from_retry(b);
	}
	return (int)b->failed - before;
}

static int queue(struct kbatch *b, struct kreq *tmpl)
{
	struct kreq *r;

	if (b->len + KB_MSG_ROOM > b->cap && send_pending(b) < 0)
		return -1;
	if (!(r = reqv_push(&b->pend))) {
		req_release(tmpl);
		return -1;
	}
	*r = *tmpl;
	if (build(b, r) < 0) {
		req_release(r);
		b->pend.n--;
		return -1;
	}
	return 0;
}

int kbatch_ct(struct kbatch *b, enum kop op, const struct ct *ct,
	      uint32_t timeout, const struct kernel_ct_opts *o)
{
	struct kreq r;

	if (!is_ct((uint8_t)op) || !(ct->have & CT_H_ORIG) ||
	    (ct->orig.l3 != AF_INET && ct->orig.l3 != AF_INET6)) {
		errno = EINVAL;
		return -1;
	}
	memset(&r, 0, sizeof(r));
	r.op = (uint8_t)op;
	r.stage = op == KOP_CT_CREATE ? KST_CREATE :
		  op == KOP_CT_UPDATE ? KST_UPDATE : KST_DELETE;
	r.wt = o ? o->tcp_window_tracking : false;
	r.timeout = timeout;
	if (!r.timeout && o && o->commit_timeout)
		r.timeout = o->commit_timeout;
	if (!r.timeout && (ct->have & CT_H_TIMEOUT))
		r.timeout = ct->timeout;
	r.o.ct = *ct;
	if (ct->ext && op != KOP_CT_DELETE) {
		size_t sz = sizeof(*ct->ext) + ct->ext->labels_len;

		if (!(r.o.ct.ext = malloc(sz)))
			return -1;
		memcpy(r.o.ct.ext, ct->ext, sz);
	} else {
		r.o.ct.ext = NULL;
		if (op == KOP_CT_DELETE)
			r.o.ct.have &= ~(CT_H_MASTER | CT_H_MASTER_PORTS |
					 CT_H_SEQADJ | CT_H_LABELS |
					 CT_H_SYNPROXY | CT_H_COUNTERS);
	}
	return queue(b, &r);
}

int kbatch_exp(struct kbatch *b, enum kop op, const struct exp *e, uint32_t timeout)
{
	struct kreq r;

	if ((op != KOP_EXP_CREATE && op != KOP_EXP_DELETE) ||
	    !(e->have & EXP_H_MASTER)) {
		errno = EINVAL;
		return -1;
	}
	memset(&r, 0, sizeof(r));
	r.op = (uint8_t)op;
	r.stage = op == KOP_EXP_CREATE ? KST_CREATE : KST_DELETE;
	r.timeout = timeout ? timeout :
		    (e->have & EXP_H_TIMEOUT) ? e->timeout : 0;
	r.o.exp = *e;
	return queue(b, &r);
}

int kbatch_flush(struct kbatch *b)
{
	int r = send_pending(b);

	if (b->sock_err && b->sock_err != ENOBUFS) {
		errno = b->sock_err;
		return -1;
	}
	return r;
}

size_t kbatch_pending(const struct kbatch *b)
{
	return b->pend.n;
}

/* Dumps for the flushes: one socket dumps while a kbatch deletes. */
struct flush_ctx {
	kernel_ct_pred accept;
	void *arg;
	struct kbatch *kb;
	long n;
	bool exp;
};

static int flush_cb(const struct nlmsghdr *nlh, void *data)
{
	struct flush_ctx *f = data;

	if (f->exp) {
		struct exp e;

		if (exp_from_nlmsg(&e, nlh) == 0 &&
		    kbatch_exp(f->kb, KOP_EXP_DELETE, &e, 0) == 0)
			f->n++;
	} else {
		struct ct ct;

		memset(&ct, 0, sizeof(ct));
		if (ct_from_nlmsg(&ct, nlh) == 0 &&
		    (!f->accept || f->accept(&ct, f->arg)) &&
		    kbatch_ct(f->kb, KOP_CT_DELETE, &ct, 0, NULL) == 0)
			f->n++;
		ct_release(&ct);
	}
	return MNL_CB_OK;
}

static long flush_table(bool exp, kernel_ct_pred accept, void *arg, uint32_t *portid)
{
	struct flush_ctx f = { .accept = accept, .arg = arg, .exp = exp };
	char *buf = NULL;
	struct mnl_socket *nl = NULL;
	struct nlmsghdr *nlh;
	struct nfgenmsg *nfh;
	uint32_t seq = (uint32_t)time(NULL), pid;
	long ret = -1;
	ssize_t len;

	if (!(f.kb = kbatch_new(NULL, NULL)))
		return -1;
	if (portid)
		*portid = kbatch_portid(f.kb);
	buf = malloc(MNL_SOCKET_BUFFER_SIZE * 4);
	nl = mnl_socket_open(NETLINK_NETFILTER);
	if (!buf || !nl || mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0)
		goto out;
	pid = mnl_socket_get_portid(nl);
	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = exp ? (NFNL_SUBSYS_CTNETLINK_EXP << 8) | IPCTNL_MSG_EXP_GET :
				(NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_GET;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	nlh->nlmsg_seq = seq;
	nfh = mnl_nlmsg_put_extra_header(nlh, sizeof(*nfh));
	nfh->nfgen_family = AF_UNSPEC;
	nfh->version = NFNETLINK_V0;
	if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0)
		goto out;
	for (;;) {
		int r;

		len = mnl_socket_recvfrom(nl, buf, MNL_SOCKET_BUFFER_SIZE * 4);
		if (len < 0 && errno == EINTR)
			continue;
		if (len < 0)
			goto out;
		r = mnl_cb_run(buf, (size_t)len, seq, pid, flush_cb, &f);
		if (r < 0)
			goto out;
		if (r == MNL_CB_STOP)
			break;
	}
	if (kbatch_flush(f.kb) < 0)
		goto out;
	/* Entries that vanished meanwhile are not errors (ENOENT ignored). */
	ret = (long)kbatch_ok(f.kb);
out:
	if (nl)
		mnl_socket_close(nl);
	free(buf);
	kbatch_free(f.kb);
	return ret;
}

long kernel_flush_ct(kernel_ct_pred accept, void *arg, uint32_t *portid)
{
	return flush_table(false, accept, arg, portid);
}

long kernel_flush_exp(void)
{
	return flush_table(true, NULL, NULL, NULL);
}
