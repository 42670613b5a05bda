/* Client role: one request to the daemon, its reply copied verbatim. */
#include <errno.h>
#include <stdbool.h>
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
	size_t have = 0;
	bool first = true, refused = false;
	ssize_t n;
	int fd, rc, tries = 0;

	if (!path || !*path || strlen(path) >= sizeof(sun.sun_path))
		goto fail;
	memcpy(sun.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		goto fail;
	/* A full backlog (hundreds of clients at once) is not "daemon down":
	 * retry for about a second. */
	while ((rc = connect(fd, (struct sockaddr *)&sun, sizeof(sun))) < 0 &&
	       errno == EAGAIN && ++tries < 100)
		usleep(10000);
	if (rc < 0 ||
	    send(fd, &req, sizeof(req), MSG_NOSIGNAL) != (ssize_t)sizeof(req)) {
		close(fd);
		goto fail;
	}
	/* Until EOF; a reset (the daemon closed with our bytes unread) ends
	 * the reply like EOF does, as with 1.4.x. A reply starting with NUL
	 * is a refusal (ctl.h): its text is the reason. */
	for (;;) {
		n = read(fd, buf + have, sizeof(buf) - 1 - have);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if (first && buf[0] == '\0')
			refused = true;
		first = false;
		if (refused) {
			have += (size_t)n;
			if (have >= sizeof(buf) - 1)
				break;
			continue;
		}
		if (write_all(out, buf, (size_t)n) < 0)
			break;
	}
	close(fd);
	if (refused) {
		buf[have] = '\0';
		buf[strcspn(buf + 1, "\n") + 1] = '\0';
		log_err("request refused: %s", buf + 1);
		return CTL_EXIT_REFUSED;
	}
	return 0;
fail:
	log_err("can't connect: is conntrackd running? appropriate permissions?");
	return 1;
}

int ctl_request(const char *path, int req)
{
	return ctl_request_fd(path, req, STDOUT_FILENO);
}
