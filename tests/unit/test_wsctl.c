/*
** End-to-end tests of the wsctl command line, without a FUSE mount.
**
** This process plays the daemon: it claims a workspace in a scratch state
** directory and answers "status" on the workspace's control socket with the
** real ctl_server, while a forked child leaves a stale row behind.  wsctl
** (its path is argv[1]) is then run as a separate program and its exit
** status, stdout and stderr are checked.  The status reply can be switched
** to one that also carries a layer stack and ephemeral usage.
*/
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ctl_server.h"
#include "registry.h"
#include "testutil.h"

#define MAX_ARGS 16

struct result {
	int status;
	char out[65536];
	char err[65536];
};

static const char *wsctl;
static char state[PATH_MAX];
static int daemon_fails;
static int with_layers;

/* Layer and ephemeral lines, split up and out of order as a daemon may
** send them, with a space in a source and a target, an escape byte in a
** target, and a key that only shares the "ephemeral." prefix. */
static const char layer_reply[] =
	"name alpha\nmountpoint /mnt/alpha\nupper /srv/alpha\n"
	"layer.0 cow / /srv/base tree\nlayer.1 ro /in /srv/data/in\n"
	"layer.2 ro /esc\x1b /srv/x\nephemeral.0 /tmp 1572864 12\n"
	"pid %ld\nops.lookup 3\nephemeral.1 /scratch dir 0 0\n"
	"ephemeral.wiped 5\nopen_files 1\n";

static int handler(const char *req, FILE *out, char *errmsg, size_t errlen,
		   void *arg)
{
	if (strcmp(req, "status") != 0 || daemon_fails) {
		snprintf(errmsg, errlen, "daemon is sad");
		return -EIO;
	}
	if (with_layers) {
		fprintf(out, layer_reply, (long)getpid());
		return 0;
	}
	fprintf(out, "name alpha\nmountpoint /mnt/alpha\nupper /srv/alpha\n"
		"pid %ld\nstart_time 1700000000\nuptime_s 3725.5\n"
		"ops.lookup 3\nops.getattr 12\nbytes_read 2048\n"
		"bytes_written 0\nopen_files 1\nopen_dirs 0\ncached_inodes 5\n"
		"cached_fds 2\nfd_cache_limit 1024\nfuture_key some text\n",
		(long)getpid());
	return 0;
}

/* Drains both pipes until EOF; the outputs are small but must not be able
** to deadlock the child on a full pipe. */
static void collect(int outfd, int errfd, struct result *r)
{
	struct pollfd p[2] = { { outfd, POLLIN, 0 }, { errfd, POLLIN, 0 } };
	size_t len[2] = { 0, 0 };
	char *buf[2] = { r->out, r->err };
	int open_fds = 2, i;
	ssize_t n;

	while (open_fds > 0) {
		CHECK(poll(p, 2, 10000) > 0, "wsctl hung");
		for (i = 0; i < 2; i++) {
			if (p[i].fd < 0 || p[i].revents == 0)
				continue;
			n = read(p[i].fd, buf[i] + len[i],
				 sizeof(r->out) - 1 - len[i]);
			CHECK(n >= 0, "read: %s", strerror(errno));
			if (n == 0) {
				close(p[i].fd);
				p[i].fd = -1;
				open_fds--;
			}
			len[i] += (size_t)n;
		}
	}
	r->out[len[0]] = '\0';
	r->err[len[1]] = '\0';
}

/* Runs wsctl with the NULL-terminated arguments; ENV_STATE, if not NULL,
** becomes $WSFS_STATE. */
static void run(struct result *r, const char *env_state, ...)
{
	char *argv[MAX_ARGS];
	int out[2], err[2], argc = 1;
	va_list ap;
	pid_t pid;

	argv[0] = (char *)wsctl;
	va_start(ap, env_state);
	while ((argv[argc] = va_arg(ap, char *)) != NULL)
		CHECK(++argc < MAX_ARGS, "too many arguments");
	va_end(ap);

	CHECK(pipe(out) == 0 && pipe(err) == 0, "pipe: %s", strerror(errno));
	pid = fork();
	CHECK(pid >= 0, "fork: %s", strerror(errno));
	if (pid == 0) {
		if (dup2(out[1], 1) < 0 || dup2(err[1], 2) < 0)
			_exit(126);
		if (env_state ? setenv("WSFS_STATE", env_state, 1) :
				unsetenv("WSFS_STATE"))
			_exit(126);
		execv(wsctl, argv);
		_exit(127);
	}
	close(out[1]);
	close(err[1]);
	collect(out[0], err[0], r);
	CHECK(waitpid(pid, &r->status, 0) == pid, "waitpid");
	CHECK(WIFEXITED(r->status), "wsctl died: %#x", r->status);
	r->status = WEXITSTATUS(r->status);
}

/* Checks a failure: exit code CODE, nothing on stdout and exactly one
** stderr line, equal to WANT if WANT is given, else just "wsctl: "-prefixed. */
static void check_fail(const struct result *r, int code, const char *want)
{
	const char *nl = strchr(r->err, '\n');

	CHECK(r->status == code, "exit %d, want %d; stderr [%s]", r->status,
	      code, r->err);
	CHECK(r->out[0] == '\0', "stdout not empty: [%s]", r->out);
	CHECK(strncmp(r->err, "wsctl: ", 7) == 0 && nl != NULL &&
	      nl[1] == '\0', "stderr not one 'wsctl:' line: [%s]", r->err);
	if (want != NULL)
		CHECK(streq(r->err, want), "stderr [%s], want [%s]", r->err,
		      want);
}

static void check_ok(const struct result *r)
{
	CHECK(r->status == 0, "exit %d; stderr [%s]", r->status, r->err);
	CHECK(r->err[0] == '\0', "stderr not empty: [%s]", r->err);
}

/* Column of NEEDLE in the line of TEXT that starts with PREFIX. */
static long column(const char *text, const char *prefix, const char *needle)
{
	const char *line = text, *hit;

	while (line != NULL && strncmp(line, prefix, strlen(prefix)) != 0) {
		line = strchr(line, '\n');
		if (line != NULL)
			line++;
	}
	CHECK(line != NULL, "no line starting '%s' in [%s]", prefix, text);
	hit = strstr(line, needle);
	CHECK(hit != NULL && memchr(line, '\n', (size_t)(hit - line)) == NULL,
	      "'%s' not on the '%s' line", needle, prefix);
	return hit - line;
}

static void test_ls(const char *beta_pid)
{
	char want[PATH_MAX + 16];
	struct result r;

	run(&r, NULL, "--state", state, "ls", NULL);
	check_ok(&r);
	CHECK(strncmp(r.out, "NAME ", 5) == 0, "header: [%s]", r.out);
	CHECK(column(r.out, "NAME", "MOUNTPOINT") ==
	      column(r.out, "alpha ", "/mnt/alpha"), "columns misaligned");
	CHECK(column(r.out, "NAME", "STATE") ==
	      column(r.out, "beta ", "stale"), "columns misaligned");
	CHECK(column(r.out, "NAME", "PID") ==
	      column(r.out, "beta ", beta_pid), "columns misaligned");
	CHECK(column(r.out, "NAME", "STATE") ==
	      column(r.out, "alpha ", "mounted"), "columns misaligned");
	CHECK(strstr(r.out, "\nalpha ") < strstr(r.out, "\nbeta "),
	      "not sorted: [%s]", r.out);

	run(&r, state, "ls", NULL);
	check_ok(&r);
	CHECK(strstr(r.out, "\nalpha ") != NULL, "WSFS_STATE ignored");
	snprintf(want, sizeof(want), "--state=%s", state);
	run(&r, "/nonexistent", want, "ls", NULL);
	check_ok(&r);
	CHECK(strstr(r.out, "\nalpha ") != NULL, "--state= ignored");

	run(&r, NULL, "--state", state, "ls", "--json", NULL);
	check_ok(&r);
	CHECK(strncmp(r.out, "[\n", 2) == 0 && strstr(r.out, "\n]\n") != NULL,
	      "json: [%s]", r.out);
	snprintf(want, sizeof(want), "\"pid\": %ld, ", (long)getpid());
	CHECK(strstr(r.out, "{\"name\": \"alpha\", \"state\": \"mounted\", "
		     "\"declared\": false, \"mountpoint\": \"/mnt/alpha\", "
		     "\"upper\": \"/srv/alpha\", ") != NULL &&
	      strstr(r.out, want) != NULL &&
	      strstr(r.out, "{\"name\": \"beta\", \"state\": \"stale\", ")
	      != NULL, "json: [%s]", r.out);
}

static void test_ls_edges(const char *tmp)
{
	char empty[PATH_MAX], missing[PATH_MAX], want[PATH_MAX + 64];
	struct result r;

	snprintf(empty, sizeof(empty), "%s/empty", tmp);
	CHECK(mkdir(empty, 0700) == 0, "mkdir: %s", strerror(errno));
	run(&r, NULL, "--state", empty, "ls", NULL);
	check_ok(&r);
	CHECK(streq(r.out, "NAME  MOUNTPOINT  PID  STATE    BYTES  INODES\n"),
	      "[%s]", r.out);
	run(&r, NULL, "--state", empty, "ls", "--json", NULL);
	check_ok(&r);
	CHECK(streq(r.out, "[]\n"), "[%s]", r.out);

	snprintf(missing, sizeof(missing), "%s/missing", tmp);
	snprintf(want, sizeof(want),
		 "wsctl: state directory %s does not exist\n", missing);
	run(&r, NULL, "--state", missing, "ls", NULL);
	check_fail(&r, 1, want);
	run(&r, NULL, "--state", missing, "status", "alpha", NULL);
	check_fail(&r, 1, want);
	CHECK(access(missing, F_OK) != 0, "wsctl created the state dir");
}

static void test_status(void)
{
	struct result r;
	char want[128];

	run(&r, NULL, "--state", state, "status", "alpha", NULL);
	check_ok(&r);
	snprintf(want, sizeof(want), "\npid:            %ld\n", (long)getpid());
	CHECK(strncmp(r.out, "name:           alpha\n", 22) == 0 &&
	      strstr(r.out, want) != NULL &&
	      strstr(r.out, "\nuptime:         1h 02m 05s\n") != NULL &&
	      strstr(r.out, "\nops:\n  lookup    3\n  getattr  12\n"
		     "bytes_read:     2048 (2.0 KiB)\n") != NULL &&
	      strstr(r.out, "\nfd_cache_limit: 1024\n") != NULL &&
	      strstr(r.out, "\nfuture_key:     some text\n") != NULL,
	      "status: [%s]", r.out);

	run(&r, NULL, "--state", state, "status", "--json", "alpha", NULL);
	check_ok(&r);
	snprintf(want, sizeof(want), "\n  \"pid\": %ld,\n", (long)getpid());
	CHECK(strncmp(r.out, "{\n  \"name\": \"alpha\",\n", 21) == 0 &&
	      strstr(r.out, want) != NULL &&
	      strstr(r.out, "\n  \"uptime_s\": 3725.5,\n  \"ops\": {\n"
		     "    \"lookup\": 3,\n    \"getattr\": 12\n  },\n"
		     "  \"bytes_read\": 2048,\n") != NULL &&
	      strstr(r.out, "\n  \"future_key\": \"some text\"\n}\n") != NULL,
	      "status --json: [%s]", r.out);
}

static void test_status_layers(void)
{
	char want[2048];
	struct result r;

	with_layers = 1;
	run(&r, NULL, "--state", state, "status", "alpha", NULL);
	check_ok(&r);
	snprintf(want, sizeof(want),
		 "name:            alpha\n"
		 "mountpoint:      /mnt/alpha\n"
		 "upper:           /srv/alpha\n"
		 "layers:\n"
		 "  cow  /      /srv/base tree\n"
		 "  ro   /in    /srv/data/in\n"
		 "  ro   /esc?  /srv/x\n"
		 "ephemeral:\n"
		 "  /tmp          1.5 MiB  12 inodes\n"
		 "  /scratch dir      0 B   0 inodes\n"
		 "pid:             %ld\n"
		 "ops:\n"
		 "  lookup  3\n"
		 "ephemeral.wiped: 5\n"
		 "open_files:      1\n", (long)getpid());
	CHECK(streq(r.out, want), "status: [%s], want [%s]", r.out, want);

	run(&r, NULL, "--state", state, "status", "--json", "alpha", NULL);
	check_ok(&r);
	snprintf(want, sizeof(want),
		 "{\n"
		 "  \"name\": \"alpha\",\n"
		 "  \"mountpoint\": \"/mnt/alpha\",\n"
		 "  \"upper\": \"/srv/alpha\",\n"
		 "  \"layers\": [\n"
		 "    {\"mode\": \"cow\", \"target\": \"/\", "
		 "\"source\": \"/srv/base tree\"},\n"
		 "    {\"mode\": \"ro\", \"target\": \"/in\", "
		 "\"source\": \"/srv/data/in\"},\n"
		 "    {\"mode\": \"ro\", \"target\": \"/esc\\u001b\", "
		 "\"source\": \"/srv/x\"}\n"
		 "  ],\n"
		 "  \"ephemeral\": [\n"
		 "    {\"target\": \"/tmp\", \"bytes\": 1572864, "
		 "\"inodes\": 12},\n"
		 "    {\"target\": \"/scratch dir\", \"bytes\": 0, "
		 "\"inodes\": 0}\n"
		 "  ],\n"
		 "  \"pid\": %ld,\n"
		 "  \"ops\": {\n"
		 "    \"lookup\": 3\n"
		 "  },\n"
		 "  \"ephemeral.wiped\": 5,\n"
		 "  \"open_files\": 1\n"
		 "}\n", (long)getpid());
	CHECK(streq(r.out, want), "status --json: [%s], want [%s]", r.out,
	      want);
	with_layers = 0;
}

static void test_status_errors(const char *beta_pid)
{
	char want[PATH_MAX + 128];
	struct result r;

	snprintf(want, sizeof(want), "wsctl: workspace 'beta' is not running "
		 "(its daemon, pid %s, is gone)\n", beta_pid);
	run(&r, NULL, "--state", state, "status", "beta", NULL);
	check_fail(&r, 6, want);

	snprintf(want, sizeof(want), "wsctl: no workspace named 'nosuch' in "
		 "%s\n", state);
	run(&r, NULL, "--state", state, "status", "nosuch", NULL);
	check_fail(&r, 3, want);

	daemon_fails = 1;
	run(&r, NULL, "--state", state, "status", "alpha", NULL);
	daemon_fails = 0;
	check_fail(&r, 1, "wsctl: daemon is sad\n");
}

static void test_usage(void)
{
	struct result r;

	run(&r, NULL, "--state", state, "status", NULL);
	check_fail(&r, 2, NULL);
	run(&r, NULL, "--state", state, "status", "a", "b", NULL);
	check_fail(&r, 2, NULL);
	run(&r, NULL, "--state", state, "status", "../x", NULL);
	check_fail(&r, 2, NULL);
	run(&r, NULL, "--state", state, "ls", "extra", NULL);
	check_fail(&r, 2, NULL);
	run(&r, NULL, "--state", state, "ls", "--bogus", NULL);
	check_fail(&r, 2, NULL);
	run(&r, NULL, "--state", state, "frob", NULL);
	check_fail(&r, 2, NULL);
	CHECK(strstr(r.err, "unknown command 'frob'") != NULL, "[%s]", r.err);
	run(&r, NULL, NULL);
	check_fail(&r, 2, NULL);
	run(&r, NULL, "--state", NULL);
	check_fail(&r, 2, NULL);
	run(&r, NULL, "--frob", "ls", NULL);
	check_fail(&r, 2, NULL);
	run(&r, NULL, "help", "frob", NULL);
	check_fail(&r, 2, NULL);
}

static void test_help(void)
{
	struct result r;

	run(&r, NULL, "--version", NULL);
	check_ok(&r);
	CHECK(streq(r.out, "wsctl " WSFS_VERSION "\n"), "[%s]", r.out);
	run(&r, NULL, "--help", NULL);
	check_ok(&r);
	CHECK(strncmp(r.out, "usage: wsctl [--state DIR] COMMAND", 34) == 0 &&
	      strstr(r.out, "\n  status   show a running") != NULL &&
	      strstr(r.out, "\n  mount    ") != NULL, "[%s]", r.out);
	run(&r, NULL, "help", NULL);
	check_ok(&r);
	CHECK(strncmp(r.out, "usage: wsctl", 12) == 0, "[%s]", r.out);
	run(&r, NULL, "help", "status", NULL);
	check_ok(&r);
	CHECK(strncmp(r.out,
		      "usage: wsctl [--state DIR] status NAME [--json]\n",
		      48) == 0, "[%s]", r.out);
	run(&r, NULL, "ls", "--help", NULL);
	check_ok(&r);
	CHECK(strncmp(r.out, "usage: wsctl [--state DIR] ls [--json]\n", 39) ==
	      0, "[%s]", r.out);
}

/* Leaves a stale "beta" row: a child claims it and exits without release. */
static pid_t make_stale_beta(void)
{
	struct registry *reg;
	struct ws_mount m = { .name = "beta", .mountpoint = "/mnt/beta",
			      .upper = "/srv/beta", .socket = "/nowhere" };
	int status;
	pid_t pid;

	pid = fork();
	CHECK(pid >= 0, "fork");
	if (pid == 0) {
		m.pid = getpid();
		if (registry_open(state, 0, &reg, NULL, 0) != 0 ||
		    registry_claim(reg, &m, NULL, 0) != 0)
			_exit(1);
		_exit(0);
	}
	CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
	      WEXITSTATUS(status) == 0, "beta child failed");
	return pid;
}

int main(int argc, char **argv)
{
	const char *tmp = test_tmpdir();
	struct ctl_server *srv;
	struct registry *reg;
	struct ws_mount m = { .name = "alpha", .mountpoint = "/mnt/alpha",
			      .upper = "/srv/alpha", .start_time = 1700000000 };
	char err[512] = "", beta_pid[24], want[PATH_MAX + 128];
	struct result r;

	CHECK(argc == 2, "usage: test_wsctl PATH-TO-WSCTL");
	wsctl = argv[1];
	snprintf(state, sizeof(state), "%s/state", tmp);
	CHECK_RC(registry_open(state, 1, &reg, err, sizeof(err)), 0);
	m.pid = getpid();
	CHECK_RC(registry_run_path(reg, "alpha", ".sock", m.socket,
				   sizeof(m.socket)), 0);
	CHECK_RC(registry_claim(reg, &m, err, sizeof(err)), 0);
	CHECK_RC(ctl_server_start(m.socket, handler, NULL, &srv, err,
				  sizeof(err)), 0);
	snprintf(beta_pid, sizeof(beta_pid), "%ld", (long)make_stale_beta());

	test_ls(beta_pid);
	test_ls_edges(tmp);
	test_status();
	test_status_layers();
	test_status_errors(beta_pid);
	test_usage();
	test_help();

	/* Alive by its lock but its socket is gone. */
	ctl_server_stop(srv);
	snprintf(want, sizeof(want), "wsctl: daemon not reachable at %s: %s\n",
		 m.socket, strerror(ENOENT));
	run(&r, NULL, "--state", state, "status", "alpha", NULL);
	check_fail(&r, 1, want);

	CHECK_RC(registry_release(reg, "alpha"), 0);
	registry_close(reg);
	return 0;
}
