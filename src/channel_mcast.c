/*
 * Multicast channel (sync-protocol.md §9.2). The sending socket is unbound
 * with loopback off, so a node never hears itself; the receiving socket is
 * bound to the group address itself (1.4.9), so unicast to the port is not
 * taken for sync traffic.
 */
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "channel.h"
#include "ctd.h"

static int mcast_recv_socket(struct channel *c)
{
	const struct conf_channel *cc = c->cc;
	struct sockaddr_storage ss;
	socklen_t sl;
	int fd, on = 1;

	fd = socket(cc->family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return chan_err(c, "receive socket", errno);
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) < 0)
		goto fail;
	chan_set_bufs(c, fd, false);
	if (cc->family == AF_INET6) {
		struct ipv6_mreq m;

		memset(&m, 0, sizeof(m));
		memcpy(&m.ipv6mr_multiaddr, cc->addr.b, 16);
		m.ipv6mr_interface = c->ifindex;
		if (setsockopt(fd, IPPROTO_IPV6, IPV6_JOIN_GROUP, &m, sizeof(m)) < 0)
			goto fail;
	} else {
		struct ip_mreqn m;
		int off = 0;

		memset(&m, 0, sizeof(m));
		m.imr_multiaddr.s_addr = cc->addr.v4;
		if (cc->have_ifaddr)
			m.imr_address.s_addr = cc->ifaddr.v4;
		else
			m.imr_ifindex = (int)c->ifindex;
		if (setsockopt(fd, IPPROTO_IP, IP_ADD_MEMBERSHIP, &m, sizeof(m)) < 0)
			goto fail;
		/* Groups joined by other sockets of this host are not ours. */
		setsockopt(fd, IPPROTO_IP, IP_MULTICAST_ALL, &off, sizeof(off));
	}
	sl = chan_sockaddr(&ss, cc->family, &cc->addr, cc->port, c->ifindex);
	if (bind(fd, (struct sockaddr *)&ss, sl) < 0)
		goto fail;
	c->rfd = fd;
	return 0;
fail:
	chan_err(c, "receive socket", errno);
	close(fd);
	return -1;
}

static int mcast_send_socket(struct channel *c)
{
	const struct conf_channel *cc = c->cc;
	int fd, off = 0;

	fd = socket(cc->family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return chan_err(c, "send socket", errno);
	chan_set_bufs(c, fd, true);
	if (cc->family == AF_INET6) {
		int idx = (int)c->ifindex;

		if (setsockopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_IF, &idx, sizeof(idx)) < 0 ||
		    setsockopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_LOOP, &off, sizeof(off)) < 0)
			goto fail;
	} else {
		struct ip_mreqn m;
		unsigned char loop = 0;

		memset(&m, 0, sizeof(m));
		if (cc->have_ifaddr)
			m.imr_address.s_addr = cc->ifaddr.v4;
		else
			m.imr_ifindex = (int)c->ifindex;
		if (setsockopt(fd, IPPROTO_IP, IP_MULTICAST_IF, &m, sizeof(m)) < 0 ||
		    setsockopt(fd, IPPROTO_IP, IP_MULTICAST_LOOP, &loop, sizeof(loop)) < 0)
			goto fail;
		if (!cc->checksum) {
			int one = 1;

			if (setsockopt(fd, SOL_SOCKET, SO_NO_CHECK, &one, sizeof(one)) < 0)
				goto fail;
		}
	}
	c->dstlen = chan_sockaddr(&c->dst, cc->family, &cc->addr, cc->port, c->ifindex);
	c->sfd = fd;
	return 0;
fail:
	chan_err(c, "send socket", errno);
	close(fd);
	return -1;
}

int chan_mcast_open(struct channel *c)
{
	if (mcast_recv_socket(c) < 0)
		return -1;
	if (mcast_send_socket(c) < 0)
		return -1;
	if (ev_fd_add(chan_ctd(c)->loop, c->rfd, EV_READ, chan_dgram_readable, c) < 0)
		return chan_err(c, "receive socket", errno);
	return 0;
}
