/*
** The client side of the control socket (protocol in ctl_proto.h).
**
** One connection carries one request: connect, write the line, half-close
** the write side so the daemon sees EOF if it reads past the newline, then
** read until the daemon closes.  Every syscall that can wait carries the
** socket's 2 s timeout, so a wedged or paused daemon makes wsctl fail with a
** clear message instead of hanging an operator's terminal or a script.
**
** Writes use MSG_NOSIGNAL: a daemon that dies mid-request must produce an
** error message here, not a SIGPIPE that kills wsctl silently.
*/
#include "ctl_proto.h"
#include "util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#define CTL_TIMEOUT_S 2

/* Maps an I/O errno to a message; a timeout reads better as such than as
** "Resource temporarily unavailable". */
static int io_fail(int e, const char *path, const char *what, char *err,
		   size_t errlen)
{
	if (e == EAGAIN || e == EWOULDBLOCK) {
		set_err(err, errlen, "daemon at %s did not respond within %d s",
			path, CTL_TIMEOUT_S);
		return -ETIMEDOUT;
	}
	set_err(err, errlen, "%s daemon at %s: %s", what, path, strerror(e));
	return -e;
}

static int set_timeouts(int fd)
{
	struct timeval tv = { .tv_sec = CTL_TIMEOUT_S, .tv_usec = 0 };

	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) != 0)
		return -errno;
	if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) != 0)
		return -errno;
	return 0;
}

static int connect_to(const char *path, int *out, char *err, size_t errlen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd, rc;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		set_err(err, errlen, "control socket path %s is too long "
			"(max %zu bytes)", path, sizeof(sa.sun_path) - 1);
		return -ENAMETOOLONG;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		rc = -errno;
		set_err(err, errlen, "cannot create socket: %s", strerror(-rc));
		return rc;
	}
	rc = set_timeouts(fd);
	if (rc < 0) {
		set_err(err, errlen, "cannot set socket timeouts: %s",
			strerror(-rc));
		goto fail;
	}
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		rc = -errno;
		if (rc == -ENOENT || rc == -ECONNREFUSED)
			set_err(err, errlen, "daemon not reachable at %s: %s",
				path, strerror(-rc));
		else
			rc = io_fail(-rc, path, "cannot connect to", err,
				     errlen);
		goto fail;
	}
	*out = fd;
	return 0;
fail:
	(void)close(fd);
	return rc;
}

static int send_all(int fd, const char *buf, size_t len)
{
	ssize_t n;

	while (len > 0) {
		n = send(fd, buf, len, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

static int send_request(int fd, const char *path, const char *cmd, char *err,
			size_t errlen)
{
	size_t len = strlen(cmd);
	char *line;
	int rc;

	line = malloc(len + 2);
	if (line == NULL) {
		set_err(err, errlen, "out of memory");
		return -ENOMEM;
	}
	memcpy(line, cmd, len);
	line[len] = '\n';
	line[len + 1] = '\0';
	rc = send_all(fd, line, len + 1);
	free(line);
	if (rc < 0)
		return io_fail(-rc, path, "cannot write to", err, errlen);
	if (shutdown(fd, SHUT_WR) != 0)
		return io_fail(errno, path, "cannot write to", err, errlen);
	return 0;
}

static int grow(char **buf, size_t *cap)
{
	size_t ncap = *cap * 2;
	char *n;

	/* Room for one byte past the cap, so an oversized reply is seen. */
	if (ncap > CTL_MAX_REPLY + 2)
		ncap = CTL_MAX_REPLY + 2;
	n = realloc(*buf, ncap);
	if (n == NULL)
		return -ENOMEM;
	*buf = n;
	*cap = ncap;
	return 0;
}

/* Reads to EOF into a growing buffer capped at CTL_MAX_REPLY. */
static int read_reply(int fd, const char *path, char **reply, char *err,
		      size_t errlen)
{
	size_t cap = 4096, len = 0;
	char *buf;
	ssize_t n;
	int rc = 0;

	buf = malloc(cap);
	if (buf == NULL) {
		set_err(err, errlen, "out of memory");
		return -ENOMEM;
	}
	for (;;) {
		if (len + 1 == cap && grow(&buf, &cap) < 0) {
			set_err(err, errlen, "out of memory");
			rc = -ENOMEM;
			break;
		}
		n = recv(fd, buf + len, cap - len - 1, 0);
		if (n == 0)
			break;
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = io_fail(errno, path, "cannot read from", err,
				     errlen);
			break;
		}
		len += (size_t)n;
		if (len > CTL_MAX_REPLY) {
			set_err(err, errlen, "reply from daemon at %s exceeds "
				"%d bytes", path, CTL_MAX_REPLY);
			rc = -EMSGSIZE;
			break;
		}
	}
	if (rc < 0) {
		free(buf);
		return rc;
	}
	buf[len] = '\0';
	*reply = buf;
	return 0;
}

int ctl_request(const char *sock_path, const char *cmd, char **reply,
		char *err, size_t errlen)
{
	int fd = -1, rc;

	*reply = NULL;
	if (strchr(cmd, '\n') != NULL || strlen(cmd) >= CTL_MAX_REQUEST) {
		set_err(err, errlen, "invalid control request");
		return -EINVAL;
	}
	rc = connect_to(sock_path, &fd, err, errlen);
	if (rc < 0)
		return rc;
	rc = send_request(fd, sock_path, cmd, err, errlen);
	if (rc == 0)
		rc = read_reply(fd, sock_path, reply, err, errlen);
	/* Nothing was written that close could lose. */
	(void)close(fd);
	return rc;
}
