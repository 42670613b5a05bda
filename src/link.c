/*
 * Link-state watcher: an rtnetlink socket subscribed to RTMGRP_LINK in the
 * event loop. Every link message is checked for length before use and
 * passed on to the channel set, which decides about failover.
 */
#include <errno.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "channel.h"
#include "ev.h"
#include "log.h"

struct link_watch {
	struct chanset *cs;
	struct ev_loop *loop;
	int fd;
	uint64_t bad;                   /* malformed messages seen */
};

static void link_parse(struct link_watch *w, const uint8_t *buf, size_t len)
{
	while (len >= sizeof(struct nlmsghdr)) {
		const struct nlmsghdr *nh = (const struct nlmsghdr *)buf;
		size_t mlen = nh->nlmsg_len, step;

		if (mlen < sizeof(*nh) || mlen > len) {
			if (w->bad++ == 0)
				log_warn("interface watcher: malformed rtnetlink message "
					 "(length %zu of %zu)", mlen, len);
			return;
		}
		if ((nh->nlmsg_type == RTM_NEWLINK || nh->nlmsg_type == RTM_DELLINK) &&
		    mlen >= NLMSG_LENGTH(sizeof(struct ifinfomsg))) {
			const struct ifinfomsg *ifi = NLMSG_DATA(nh);
			unsigned flags = nh->nlmsg_type == RTM_DELLINK ? 0 : ifi->ifi_flags;

			if (ifi->ifi_index > 0)
				chanset_link_event(w->cs, (unsigned)ifi->ifi_index, flags);
		}
		step = NLMSG_ALIGN(mlen);
		if (step >= len)
			return;
		buf += step;
		len -= step;
	}
}

static void link_readable(int fd, int events, void *arg)
{
	struct link_watch *w = arg;
	uint8_t buf[16384];
	int i;

	(void)events;
	for (i = 0; i < 64; i++) {
		ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);

		if (n < 0) {
			/* Lost events: the current link's state is re-read on the next one. */
			if (errno == ENOBUFS)
				continue;
			return;
		}
		if (n == 0)
			return;
		link_parse(w, buf, (size_t)n);
	}
}

struct link_watch *link_watch_open(struct chanset *cs, struct ev_loop *loop)
{
	struct sockaddr_nl sa;
	struct link_watch *w;
	int saved;

	w = calloc(1, sizeof(*w));
	if (!w)
		return NULL;
	w->cs = cs;
	w->loop = loop;
	w->fd = socket(AF_NETLINK, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, NETLINK_ROUTE);
	if (w->fd < 0)
		goto fail;
	memset(&sa, 0, sizeof(sa));
	sa.nl_family = AF_NETLINK;
	sa.nl_groups = RTMGRP_LINK;
	if (bind(w->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    ev_fd_add(loop, w->fd, EV_READ, link_readable, w) < 0)
		goto fail;
	return w;
fail:
	saved = errno;
	if (w->fd >= 0)
		close(w->fd);
	free(w);
	errno = saved;
	return NULL;
}

void link_watch_close(struct link_watch *w)
{
	if (!w)
		return;
	ev_fd_del(w->loop, w->fd);
	close(w->fd);
	free(w);
}
