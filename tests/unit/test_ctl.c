/*
** Unit tests for the control socket: ctl_server.c against ctl_client.c, plus
** hand-made clients for the cases the real client refuses to produce
** (over-long lines, CRLF, idle and vanishing peers), and stats.c, whose
** output is what the "status" command sends.
*/
#include <errno.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "ctl_proto.h"
#include "ctl_server.h"
#include "stats.h"
#include "testutil.h"

#define STOP_BUDGET_MS 100

static char sock[PATH_MAX];

static int handler(const char *req, FILE *out, char *errmsg, size_t errlen,
		   void *arg)
{
	atomic_int *calls = arg;

	atomic_fetch_add(calls, 1);
	if (strcmp(req, "status") == 0) {
		fprintf(out, "name test\nuptime_s 1.5\n");
		stats_write_kv(out);
		return 0;
	}
	if (strcmp(req, "fail") == 0) {
		snprintf(errmsg, errlen, "boom\nforged line");
		return -EIO;
	}
	if (strcmp(req, "quiet-fail") == 0)
		return -ENOENT;
	if (strcmp(req, "nonl") == 0) {
		fputs("k v", out);
		return 0;
	}
	if (strcmp(req, "big") == 0 || strcmp(req, "huge") == 0) {
		/* About 0.85 MiB, just under the reply cap, or 1.5 MiB. */
		int n = req[0] == 'b' ? 60000 : 100000;

		for (int i = 0; i < n; i++)
			fprintf(out, "key%d value\n", i);
		return 0;
	}
	fprintf(out, "req %s\n", req);
	return 0;
}

static char *request(const char *cmd)
{
	char err[512] = "", *reply = NULL;

	CHECK_RC(ctl_request(sock, cmd, &reply, err, sizeof(err)), 0);
	CHECK(reply != NULL, "no reply to '%s': %s", cmd, err);
	return reply;
}

static void check_reply(const char *cmd, const char *want)
{
	char *got = request(cmd);

	CHECK(streq(got, want), "'%s': got [%s] want [%s]", cmd, got, want);
	free(got);
}

static void set_sun_path(struct sockaddr_un *sa, const char *path)
{
	CHECK(strlen(path) < sizeof(sa->sun_path), "%s is too long", path);
	memcpy(sa->sun_path, path, strlen(path) + 1);
}

static int raw_connect(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	set_sun_path(&sa, sock);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	CHECK(fd >= 0, "socket: %s", strerror(errno));
	CHECK(connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0,
	      "connect: %s", strerror(errno));
	return fd;
}

/* Sends DATA as is and returns the whole reply; the caller frees it. */
static char *raw_request(const char *data, size_t len)
{
	char *buf = calloc(1, 65536);
	size_t got = 0;
	ssize_t n;
	int fd = raw_connect();

	CHECK(buf != NULL, "calloc");
	CHECK(send(fd, data, len, MSG_NOSIGNAL) == (ssize_t)len, "send: %s",
	      strerror(errno));
	CHECK(shutdown(fd, SHUT_WR) == 0, "shutdown: %s", strerror(errno));
	while ((n = recv(fd, buf + got, 65535 - got, 0)) > 0)
		got += (size_t)n;
	CHECK(n == 0, "recv: %s", strerror(errno));
	close(fd);
	return buf;
}

static void test_stats_names(void)
{
	CHECK(streq(ws_op_name(OP_LOOKUP), "lookup"), "OP_LOOKUP");
	CHECK(streq(ws_op_name(OP_COPY_FILE_RANGE), "copy_file_range"),
	      "OP_COPY_FILE_RANGE");
	CHECK(streq(ws_op_name(OP_READDIRPLUS), "readdirplus"), "READDIRPLUS");
	CHECK(streq(ws_op_name(OP__COUNT), "unknown"), "out of range");
	for (int i = 0; i < OP__COUNT; i++) {
		const char *n = ws_op_name((enum ws_op)i);

		CHECK(!streq(n, "unknown"), "op %d has no name", i);
		for (const char *p = n; *p; p++)
			CHECK((*p >= 'a' && *p <= 'z') || *p == '_',
			      "op name '%s' is not lowercase", n);
		for (int j = 0; j < i; j++)
			CHECK(!streq(n, ws_op_name((enum ws_op)j)),
			      "duplicate op name '%s'", n);
	}
}

static void test_status_reply(void)
{
	char *r;

	stats_op(OP_LOOKUP);
	stats_op(OP_LOOKUP);
	stats_op(OP_LOOKUP);
	stats_op(OP_COPY_FILE_RANGE);
	stats_add(&ws_stats.bytes_read, 10);
	stats_gauge(&ws_stats.open_files, 2);
	stats_gauge(&ws_stats.open_files, -1);
	r = request("status");
	CHECK(streq(r, "ok\nname test\nuptime_s 1.5\nops.lookup 3\n"
		    "ops.copy_file_range 1\nbytes_read 10\nbytes_written 0\n"
		    "open_files 1\nopen_dirs 0\n"), "status reply [%s]", r);
	free(r);
}

static void test_replies(void)
{
	char cmd[CTL_MAX_REQUEST + 8], want[CTL_MAX_REQUEST + 16], err[512];
	char *reply;
	size_t len;

	check_reply("fail", "error boom forged line\n");
	check_reply("quiet-fail", "error No such file or directory\n");
	check_reply("nonl", "ok\nk v\n");
	check_reply("", "ok\nreq \n");
	check_reply("echo a b  c", "ok\nreq echo a b  c\n");

	/* The longest line the protocol allows passes intact. */
	memset(cmd, 'x', CTL_MAX_REQUEST - 1);
	cmd[CTL_MAX_REQUEST - 1] = '\0';
	snprintf(want, sizeof(want), "ok\nreq %s\n", cmd);
	check_reply(cmd, want);
	/* One more byte and the client refuses to send it. */
	strcat(cmd, "x");
	CHECK_RC(ctl_request(sock, cmd, &reply, err, sizeof(err)), -EINVAL);
	CHECK_RC(ctl_request(sock, "a\nb", &reply, err, sizeof(err)), -EINVAL);

	reply = request("big");
	len = strlen(reply);
	CHECK(len > 880000 && strncmp(reply, "ok\nkey0 value\n", 14) == 0 &&
	      strcmp(reply + len - 15, "key59999 value\n") == 0,
	      "big reply mangled (%zu bytes)", len);
	free(reply);
	CHECK_RC(ctl_request(sock, "huge", &reply, err, sizeof(err)),
		 -EMSGSIZE);
	CHECK(reply == NULL, "reply set on failure");
}

static void test_raw_clients(void)
{
	char line[CTL_MAX_REQUEST + 2];
	char *r;

	memset(line, 'y', sizeof(line));
	line[sizeof(line) - 1] = '\n';
	r = raw_request(line, sizeof(line));
	CHECK(streq(r, "error request too long\n"), "long line: [%s]", r);
	free(r);

	r = raw_request("echo hi\r\n", 9);
	CHECK(streq(r, "ok\nreq echo hi\n"), "CRLF: [%s]", r);
	free(r);

	/* No newline, then EOF: still one request. */
	r = raw_request("echo eof", 8);
	CHECK(streq(r, "ok\nreq echo eof\n"), "EOF-terminated: [%s]", r);
	free(r);

	/* Only the first line counts. */
	r = raw_request("echo one\necho two\n", 18);
	CHECK(streq(r, "ok\nreq echo one\n"), "two lines: [%s]", r);
	free(r);
}

/* A client that hangs up before reading its reply must not hurt the
** server (no SIGPIPE, no wedged thread). */
static void test_vanishing_client(atomic_int *calls)
{
	int before = atomic_load(calls), fd, i;

	fd = raw_connect();
	CHECK(send(fd, "big\n", 4, MSG_NOSIGNAL) == 4, "send");
	close(fd);
	for (i = 0; i < 200 && atomic_load(calls) == before; i++)
		usleep(10000);
	CHECK(atomic_load(calls) == before + 1,
	      "request from vanished client not seen");
	check_reply("echo still alive", "ok\nreq echo still alive\n");
}

/* An idle client is dropped after the 2 s timeout and the next one served. */
static void test_idle_client(void)
{
	long long t0 = test_now_ms(), dt;
	int fd = raw_connect();

	usleep(1000000);
	check_reply("echo after idle", "ok\nreq echo after idle\n");
	dt = test_now_ms() - t0;
	CHECK(dt >= 1900 && dt < 3500, "served after %lld ms", dt);
	close(fd);
}

static void test_client_errors(const char *dir)
{
	char err[512] = "", want[PATH_MAX + 128], path[PATH_MAX];
	char *reply = (char *)1;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	long long t0;
	int fd;

	snprintf(path, sizeof(path), "%s/none.sock", dir);
	CHECK_RC(ctl_request(path, "status", &reply, err, sizeof(err)),
		 -ENOENT);
	CHECK(reply == NULL, "reply set on failure");
	snprintf(want, sizeof(want), "daemon not reachable at %s: %s", path,
		 strerror(ENOENT));
	CHECK(streq(err, want), "message '%s'", err);

	/* Bound but never listening: what a dead daemon leaves behind. */
	snprintf(path, sizeof(path), "%s/dead.sock", dir);
	set_sun_path(&sa, path);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	CHECK(fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0,
	      "bind: %s", strerror(errno));
	close(fd);
	CHECK_RC(ctl_request(path, "status", &reply, err, sizeof(err)),
		 -ECONNREFUSED);
	CHECK(strncmp(err, "daemon not reachable at ", 24) == 0,
	      "message '%s'", err);

	/* Listening but never answering: the 2 s timeout must fire. */
	snprintf(path, sizeof(path), "%s/mute.sock", dir);
	set_sun_path(&sa, path);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	CHECK(fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
	      listen(fd, 4) == 0, "listen: %s", strerror(errno));
	t0 = test_now_ms();
	CHECK_RC(ctl_request(path, "status", &reply, err, sizeof(err)),
		 -ETIMEDOUT);
	CHECK(test_now_ms() - t0 < 3000, "timeout took too long");
	CHECK(strstr(err, "did not respond") != NULL, "message '%s'", err);
	close(fd);
}

static void test_start_errors(const char *dir, atomic_int *calls)
{
	char err[512] = "", want[PATH_MAX + 64], path[PATH_MAX];
	struct ctl_server *srv = (struct ctl_server *)1;
	char longpath[200];
	FILE *f;

	CHECK_RC(ctl_server_start(sock, handler, calls, &srv, err,
				  sizeof(err)), -EADDRINUSE);
	CHECK(srv == NULL, "handle returned on failure");
	snprintf(want, sizeof(want), "control socket %s is in use", sock);
	CHECK(streq(err, want), "message '%s'", err);

	memset(longpath, 'p', sizeof(longpath) - 1);
	longpath[0] = '/';
	longpath[sizeof(longpath) - 1] = '\0';
	CHECK_RC(ctl_server_start(longpath, handler, calls, &srv, err,
				  sizeof(err)), -ENAMETOOLONG);
	CHECK(strstr(err, "too long") != NULL, "message '%s'", err);

	snprintf(path, sizeof(path), "%s/regular", dir);
	f = fopen(path, "w");
	CHECK(f != NULL && fclose(f) == 0, "cannot create %s", path);
	CHECK_RC(ctl_server_start(path, handler, calls, &srv, err,
				  sizeof(err)), -EEXIST);
	CHECK(access(path, F_OK) == 0, "a regular file was removed");
}

/* A socket file left by a dead daemon is replaced. */
static void test_stale_socket(const char *dir, atomic_int *calls)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct ctl_server *srv;
	char err[512] = "", path[PATH_MAX];
	int fd;

	snprintf(path, sizeof(path), "%s/stale.sock", dir);
	set_sun_path(&sa, path);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	CHECK(fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0,
	      "bind: %s", strerror(errno));
	close(fd);
	CHECK_RC(ctl_server_start(sa.sun_path, handler, calls, &srv, err,
				  sizeof(err)), 0);
	ctl_server_stop(srv);
	CHECK(access(sa.sun_path, F_OK) != 0, "stale.sock left after stop");
}

static void check_stop_prompt(struct ctl_server *srv, const char *what)
{
	long long t0 = test_now_ms(), dt;

	ctl_server_stop(srv);
	dt = test_now_ms() - t0;
	CHECK(dt < STOP_BUDGET_MS, "stop %s took %lld ms", what, dt);
	CHECK(access(sock, F_OK) != 0 && errno == ENOENT,
	      "socket file left after stop");
}

static struct ctl_server *start(atomic_int *calls)
{
	struct ctl_server *srv = NULL;
	char err[512] = "";
	struct stat st;

	CHECK_RC(ctl_server_start(sock, handler, calls, &srv, err,
				  sizeof(err)), 0);
	CHECK(stat(sock, &st) == 0 && S_ISSOCK(st.st_mode),
	      "no socket at %s", sock);
	CHECK((st.st_mode & 0777) == 0600, "socket mode %o",
	      (unsigned int)(st.st_mode & 0777));
	return srv;
}

int main(void)
{
	const char *dir = test_tmpdir();
	struct ctl_server *srv;
	atomic_int calls = 0;
	int fd;

	snprintf(sock, sizeof(sock), "%s/ctl.sock", dir);
	test_stats_names();

	srv = start(&calls);
	test_status_reply();
	test_replies();
	test_raw_clients();
	test_vanishing_client(&calls);
	test_start_errors(dir, &calls);
	test_idle_client();
	check_stop_prompt(srv, "when idle");

	/* Stop while a client sits in the middle of its 2 s timeout. */
	srv = start(&calls);
	fd = raw_connect();
	usleep(50000);
	check_stop_prompt(srv, "with a silent client connected");
	close(fd);

	test_stale_socket(dir, &calls);
	test_client_errors(dir);
	return 0;
}
