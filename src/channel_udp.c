/*
 * Unicast UDP channel (sync-protocol.md §9.3): receive on the local
 * address and port, send from an unbound socket to the peer on that port.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "channel.h"
#include "ctd.h"

/* Only link-local IPv6 needs the interface as scope. */
static unsigned scope_for(const struct channel *c, const union addr *a)
{
	if (c->cc->family != AF_INET6)
		return 0;
	if (a->b[0] == 0xfe && (a->b[1] & 0xc0) == 0x80)
		return c->ifindex;
	return 0;
}

int chan_udp_open(struct channel *c)
{
	const struct conf_channel *cc = c->cc;
	struct sockaddr_storage ss;
	socklen_t sl;
	int fd, on = 1;

	if (!cc->have_dest) {
		snprintf(c->err, sizeof(c->err), "no destination address given");
		return -1;
	}
	fd = socket(cc->family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return chan_err(c, "receive socket", errno);
	c->rfd = fd;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) < 0)
		return chan_err(c, "receive socket", errno);
	chan_set_bufs(c, fd, false);
	sl = chan_sockaddr(&ss, cc->family, cc->have_addr ? &cc->addr : NULL,
			   cc->port, scope_for(c, &cc->addr));
	if (bind(fd, (struct sockaddr *)&ss, sl) < 0)
		return chan_err(c, "receive socket", errno);

	fd = socket(cc->family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return chan_err(c, "send socket", errno);
	c->sfd = fd;
	chan_set_bufs(c, fd, true);
	if (!cc->checksum && cc->family == AF_INET &&
	    setsockopt(fd, SOL_SOCKET, SO_NO_CHECK, &on, sizeof(on)) < 0)
		return chan_err(c, "send socket", errno);
	c->dstlen = chan_sockaddr(&c->dst, cc->family, &cc->dest, cc->port,
				  scope_for(c, &cc->dest));
	if (ev_fd_add(chan_ctd(c)->loop, c->rfd, EV_READ, chan_dgram_readable, c) < 0)
		return chan_err(c, "receive socket", errno);
	return 0;
}
