/*
** The daemon side of the control socket (protocol in ctl_proto.h).
**
** A single thread owns the listening socket and serves one connection at a
** time.  Everything it waits on goes through poll() together with the read
** end of a self-pipe: ctl_server_stop() writes one byte into the pipe and the
** thread notices within one poll() call, whether it is idle in accept or
** halfway through a slow client.  The byte is never read back, so the pipe
** stays readable and acts as a level-triggered "stop" flag that no later
** poll() can miss.
**
** Client sockets are non-blocking and each phase of a connection (reading
** the request, writing the reply) has a 2 s deadline, so a client that
** connects and goes quiet delays the next one by at most that long.
**
** The thread is created with every signal blocked.  libfuse's session loop
** relies on SIGINT/SIGTERM interrupting its read() of /dev/fuse in the main
** thread; if the kernel delivered such a signal to this thread instead, the
** daemon would not notice it until the next FUSE request.
**
** Replies are sent with MSG_NOSIGNAL so a client that hangs up early costs
** an EPIPE here rather than a SIGPIPE that would take the daemon down.
*/
#include "ctl_server.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "ctl_proto.h"
#include "util.h"

#define CTL_IO_TIMEOUT_MS 2000
#define CTL_BACKLOG 16
#define CTL_ERRMSG_MAX 512
/* How long the accept loop backs off after an error such as EMFILE, which
** would otherwise make poll() report the same pending connection forever. */
#define CTL_ERROR_BACKOFF_MS 50

struct ctl_server {
	int lfd;
	int wake[2];
	pthread_t thread;
	ctl_handler_fn fn;
	void *arg;
	char path[sizeof(((struct sockaddr_un *)NULL)->sun_path)];
};

static int64_t now_ms(void)
{
	struct timespec ts;

	/* CLOCK_MONOTONIC cannot fail with a valid clock id and pointer. */
	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

	/* An early wake-up only shortens a back-off. */
	(void)nanosleep(&ts, NULL);
}

/*
** Waits until FD is ready for EVENTS, the deadline passes, or a stop is
** requested.  Returns 0 when ready, -ETIMEDOUT, -ECANCELED or -errno.
*/
static int wait_fd(struct ctl_server *srv, int fd, short events,
		   int64_t deadline)
{
	struct pollfd pfd[2];
	int64_t left;
	int n;

	for (;;) {
		left = deadline - now_ms();
		if (left <= 0)
			return -ETIMEDOUT;
		pfd[0] = (struct pollfd){ .fd = fd, .events = events };
		pfd[1] = (struct pollfd){ .fd = srv->wake[0],
					  .events = POLLIN };
		n = poll(pfd, 2, (int)left);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (pfd[1].revents != 0)
			return -ECANCELED;
		/* Errors and hangups are reported by the recv/send that
		** follows, with a proper errno. */
		if (pfd[0].revents != 0)
			return 0;
	}
}

/*
** Reads one request line into BUF (size CTL_MAX_REQUEST + 1), without the
** newline.  A client that closes after a partial line has still sent a
** request.  Returns the length, -E2BIG for an over-long line, -ENODATA for a
** connection closed without a byte, or another -errno.
*/
static ssize_t read_request(struct ctl_server *srv, int fd, char *buf)
{
	int64_t deadline = now_ms() + CTL_IO_TIMEOUT_MS;
	size_t len = 0;
	ssize_t n = 0;
	char *nl;
	int rc;

	for (;;) {
		if (len == CTL_MAX_REQUEST)
			return -E2BIG;
		n = recv(fd, buf + len, CTL_MAX_REQUEST - len, MSG_DONTWAIT);
		if (n == 0)
			break;
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			rc = wait_fd(srv, fd, POLLIN, deadline);
			if (rc < 0)
				return rc;
			continue;
		}
		if (n < 0)
			return -errno;
		nl = memchr(buf + len, '\n', (size_t)n);
		if (nl != NULL) {
			len = (size_t)(nl - buf);
			break;
		}
		len += (size_t)n;
	}
	if (len == 0 && n == 0)
		return -ENODATA;
	buf[len] = '\0';
	/* Tolerate CRLF from hand-driven clients such as socat. */
	if (len > 0 && buf[len - 1] == '\r')
		buf[--len] = '\0';
	return (ssize_t)len;
}

static int send_all(struct ctl_server *srv, int fd, const char *buf,
		    size_t len)
{
	int64_t deadline = now_ms() + CTL_IO_TIMEOUT_MS;
	ssize_t n;
	int rc;

	while (len > 0) {
		n = send(fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			rc = wait_fd(srv, fd, POLLOUT, deadline);
			if (rc < 0)
				return rc;
			continue;
		}
		if (n < 0)
			return -errno;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Turns ERRMSG into one line, so it cannot forge protocol lines. */
static void flatten(char *msg)
{
	for (; *msg != '\0'; msg++) {
		if (*msg == '\n' || *msg == '\r')
			*msg = ' ';
	}
}

static char *error_reply(const char *msg)
{
	char *out;

	if (asprintf(&out, "error %s\n", msg) < 0)
		return NULL;
	return out;
}

static char *ok_reply(const char *body, size_t blen)
{
	int need_nl = blen > 0 && body[blen - 1] != '\n';
	char *out;

	out = malloc(3 + blen + (size_t)need_nl + 1);
	if (out == NULL)
		return NULL;
	memcpy(out, "ok\n", 3);
	memcpy(out + 3, body, blen);
	if (need_nl)
		out[3 + blen] = '\n';
	out[3 + blen + (size_t)need_nl] = '\0';
	return out;
}

/* Runs the handler and frames its outcome; NULL only when out of memory. */
static char *build_reply(struct ctl_server *srv, const char *req)
{
	char errmsg[CTL_ERRMSG_MAX] = "";
	char *body = NULL, *out;
	size_t blen = 0;
	FILE *f;
	int rc;

	f = open_memstream(&body, &blen);
	if (f == NULL)
		return NULL;
	rc = srv->fn(req, f, errmsg, sizeof(errmsg), srv->arg);
	if (fclose(f) != 0) {
		free(body);
		return NULL;
	}
	if (rc < 0) {
		errmsg[sizeof(errmsg) - 1] = '\0';
		if (errmsg[0] == '\0')
			snprintf(errmsg, sizeof(errmsg), "%s", strerror(-rc));
		flatten(errmsg);
		out = error_reply(errmsg);
	} else {
		out = ok_reply(body, blen);
	}
	free(body);
	return out;
}

/* Discards request bytes the client is still sending: closing a unix
** socket with unread data makes the peer's read fail with ECONNRESET,
** which would hide the reply we just sent. */
static void drain(int fd)
{
	char buf[4096];
	ssize_t n;

	do {
		n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
	} while (n > 0 || (n < 0 && errno == EINTR));
}

static void serve_conn(struct ctl_server *srv, int fd)
{
	static const char oom[] = "error out of memory\n";
	char req[CTL_MAX_REQUEST + 1];
	char *reply = NULL;
	ssize_t n;

	n = read_request(srv, fd, req);
	if (n == -E2BIG)
		reply = error_reply("request too long");
	else if (n >= 0)
		reply = build_reply(srv, req);
	else
		return;
	/* A failed send means the client left or timed out; there is no one
	** left to tell. */
	if (reply == NULL)
		(void)send_all(srv, fd, oom, sizeof(oom) - 1);
	else
		(void)send_all(srv, fd, reply, strlen(reply));
	free(reply);
	drain(fd);
}

/* The peer of the connection being served. One thread serves one
** connection at a time, so handlers read it without a lock. */
static __thread int peer_known;
static __thread struct ucred peer_cred;

int ctl_server_peer(struct ucred *out)
{
	if (!peer_known)
		return -ENOENT;
	*out = peer_cred;
	return 0;
}

static void note_peer(int fd)
{
	socklen_t len = sizeof(peer_cred);

	peer_known = getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &peer_cred,
				&len) == 0;
}

static void *serve(void *p)
{
	struct ctl_server *srv = p;
	struct pollfd pfd[2];
	int fd, n;

	for (;;) {
		pfd[0] = (struct pollfd){ .fd = srv->lfd, .events = POLLIN };
		pfd[1] = (struct pollfd){ .fd = srv->wake[0],
					  .events = POLLIN };
		n = poll(pfd, 2, -1);
		if (n < 0) {
			if (errno != EINTR)
				sleep_ms(CTL_ERROR_BACKOFF_MS);
			continue;
		}
		if (pfd[1].revents != 0)
			break;
		if (pfd[0].revents == 0)
			continue;
		fd = accept4(srv->lfd, NULL, NULL,
			     SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd < 0) {
			if (errno != EAGAIN && errno != EINTR &&
			    errno != ECONNABORTED)
				sleep_ms(CTL_ERROR_BACKOFF_MS);
			continue;
		}
		note_peer(fd);
		serve_conn(srv, fd);
		peer_known = 0;
		(void)close(fd);
	}
	return NULL;
}

/*
** Makes PATH free for bind: absent is fine, a socket nobody answers on is a
** leftover of a dead daemon and is removed, anything else is refused.
*/
static int clear_stale_socket(const char *path, const struct sockaddr_un *sa,
			      char *err, size_t errlen)
{
	struct stat st;
	int fd, rc;

	if (lstat(path, &st) != 0) {
		if (errno == ENOENT)
			return 0;
		rc = -errno;
		set_err(err, errlen, "cannot stat %s: %s", path, strerror(-rc));
		return rc;
	}
	if (!S_ISSOCK(st.st_mode)) {
		set_err(err, errlen, "%s exists and is not a socket", path);
		return -EEXIST;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		rc = -errno;
		set_err(err, errlen, "cannot create socket: %s", strerror(-rc));
		return rc;
	}
	/* Non-blocking, so a listener with a full backlog answers EAGAIN at
	** once instead of stalling the mount. */
	rc = connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) == 0 ?
		0 : -errno;
	(void)close(fd);
	if (rc == 0 || rc == -EAGAIN) {
		set_err(err, errlen, "control socket %s is in use", path);
		return -EADDRINUSE;
	}
	if (rc != -ECONNREFUSED) {
		set_err(err, errlen, "cannot probe control socket %s: %s", path,
			strerror(-rc));
		return rc;
	}
	if (unlink(path) != 0 && errno != ENOENT) {
		rc = -errno;
		set_err(err, errlen,
			"cannot remove stale control socket %s: %s", path,
			strerror(-rc));
		return rc;
	}
	return 0;
}

/* The window between bind() and chmod() is harmless: run/ is 0700. */
static int listen_on(struct ctl_server *srv, const struct sockaddr_un *sa,
		     char *err, size_t errlen)
{
	int rc;

	srv->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
			  0);
	if (srv->lfd < 0) {
		rc = -errno;
		set_err(err, errlen, "cannot create socket: %s", strerror(-rc));
		return rc;
	}
	if (bind(srv->lfd, (const struct sockaddr *)sa, sizeof(*sa)) != 0) {
		rc = -errno;
		set_err(err, errlen, "cannot bind control socket %s: %s",
			srv->path, strerror(-rc));
		return rc;
	}
	if (chmod(srv->path, 0600) != 0 || listen(srv->lfd, CTL_BACKLOG) != 0) {
		rc = -errno;
		set_err(err, errlen, "cannot set up control socket %s: %s",
			srv->path, strerror(-rc));
		(void)unlink(srv->path);
		return rc;
	}
	return 0;
}

static void stop_thread(struct ctl_server *srv)
{
	const char c = 0;
	ssize_t n;

	do {
		n = write(srv->wake[1], &c, 1);
	} while (n < 0 && errno == EINTR);
	/* A one-byte write to a pipe nobody has filled cannot fail; should it
	** anyway, cancellation still ends the thread at its next poll(). */
	if (n != 1)
		(void)pthread_cancel(srv->thread);
	(void)pthread_join(srv->thread, NULL);
}

static int start_thread(struct ctl_server *srv, char *err, size_t errlen)
{
	sigset_t all, old;
	int rc;

	if (sigfillset(&all) != 0)
		return -EINVAL;
	rc = pthread_sigmask(SIG_SETMASK, &all, &old);
	if (rc != 0) {
		set_err(err, errlen, "cannot block signals: %s", strerror(rc));
		return -rc;
	}
	rc = pthread_create(&srv->thread, NULL, serve, srv);
	if (rc != 0) {
		set_err(err, errlen, "cannot start control thread: %s",
			strerror(rc));
		(void)pthread_sigmask(SIG_SETMASK, &old, NULL);
		return -rc;
	}
	rc = pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		set_err(err, errlen, "cannot restore signal mask: %s",
			strerror(rc));
		stop_thread(srv);
		return -rc;
	}
	return 0;
}

static void free_server(struct ctl_server *srv)
{
	if (srv->lfd >= 0)
		(void)close(srv->lfd);
	if (srv->wake[0] >= 0)
		(void)close(srv->wake[0]);
	if (srv->wake[1] >= 0)
		(void)close(srv->wake[1]);
	free(srv);
}

int ctl_server_start(const char *sock_path, ctl_handler_fn fn, void *arg,
		     struct ctl_server **out, char *err, size_t errlen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct ctl_server *srv;
	int rc;

	*out = NULL;
	if (strlen(sock_path) >= sizeof(sa.sun_path)) {
		set_err(err, errlen, "control socket path %s is too long "
			"(max %zu bytes)", sock_path, sizeof(sa.sun_path) - 1);
		return -ENAMETOOLONG;
	}
	memcpy(sa.sun_path, sock_path, strlen(sock_path) + 1);
	srv = calloc(1, sizeof(*srv));
	if (srv == NULL) {
		set_err(err, errlen, "out of memory");
		return -ENOMEM;
	}
	srv->lfd = srv->wake[0] = srv->wake[1] = -1;
	srv->fn = fn;
	srv->arg = arg;
	memcpy(srv->path, sa.sun_path, sizeof(srv->path));
	if (pipe2(srv->wake, O_CLOEXEC) != 0) {
		rc = -errno;
		set_err(err, errlen, "cannot create pipe: %s", strerror(-rc));
		goto fail;
	}
	rc = clear_stale_socket(sock_path, &sa, err, errlen);
	if (rc == 0)
		rc = listen_on(srv, &sa, err, errlen);
	if (rc < 0)
		goto fail;
	rc = start_thread(srv, err, errlen);
	if (rc < 0) {
		(void)unlink(srv->path);
		goto fail;
	}
	*out = srv;
	return 0;
fail:
	free_server(srv);
	return rc;
}

void ctl_server_stop(struct ctl_server *srv)
{
	if (srv == NULL)
		return;
	stop_thread(srv);
	(void)unlink(srv->path);
	free_server(srv);
}
