/* Client role: one request to the daemon, its reply copied verbatim. */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "ctl.h"
#include "log.h"

static int write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

int ctl_request_fd(const char *path, int req, int out)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	char buf[65536];
	ssize_t n;
	int fd;

	if (!path || !*path || strlen(path) >= sizeof(sun.sun_path))
		goto fail;
	memcpy(sun.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		goto fail;
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 ||
	    send(fd, &req, sizeof(req), MSG_NOSIGNAL) != (ssize_t)sizeof(req)) {
		close(fd);
		goto fail;
	}
	/* Until EOF; a reset (the daemon closed with our bytes unread) ends
	 * the reply like EOF does, as with 1.4.x. */
	for (;;) {
		n = read(fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if (write_all(out, buf, (size_t)n) < 0)
			break;
	}
	close(fd);
	return 0;
fail:
	log_err("can't connect: is conntrackd running? appropriate permissions?");
	return 1;
}

int ctl_request(const char *path, int req)
{
	return ctl_request_fd(path, req, STDOUT_FILENO);
}
