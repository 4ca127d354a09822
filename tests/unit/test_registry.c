/*
** Unit tests for registry.c.
**
** Liveness is the point of the registry, so most of these tests fork real
** processes: a child claims a name and the parent checks what it sees while
** the child lives, after it is SIGKILLed, and after it exits without
** releasing.  Within one process, two registry handles have two open file
** descriptions of the lock file and so conflict like two daemons would.
**
** Children never touch a parent's sqlite connection (SQLite forbids using a
** connection across fork); each opens its own handle.
*/
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sqlite3.h>

#include "registry.h"
#include "testutil.h"

#define N_RACERS 8

static char state[PATH_MAX];

static void make_mount(struct ws_mount *m, const char *name, pid_t pid)
{
	memset(m, 0, sizeof(*m));
	snprintf(m->name, sizeof(m->name), "%s", name);
	snprintf(m->mountpoint, sizeof(m->mountpoint), "/mnt/%s", name);
	snprintf(m->upper, sizeof(m->upper), "/srv/upper/%s", name);
	/* The socket path is only stored, never used, in these tests. */
	snprintf(m->socket, sizeof(m->socket), "/run/wsfs-test/%s.sock", name);
	m->pid = pid;
	m->start_time = 1700000000 + pid;
}

static struct registry *open_reg(int create)
{
	struct registry *reg = NULL;
	char err[512] = "";

	CHECK_RC(registry_open(state, create, &reg, err, sizeof(err)), 0);
	CHECK(reg != NULL, "no handle; err '%s'", err);
	return reg;
}

static void check_mode(const char *path, mode_t want)
{
	struct stat st;

	CHECK(stat(path, &st) == 0, "stat %s: %s", path, strerror(errno));
	CHECK(S_ISDIR(st.st_mode), "%s is not a directory", path);
	CHECK((st.st_mode & 07777) == want, "%s has mode %o, want %o", path,
	      (unsigned int)(st.st_mode & 07777), (unsigned int)want);
}

/* Runs SQL on state.db with its own connection and returns the first
** column of the first row, or "" if none. */
static void query(const char *sql, char *out, size_t len)
{
	char path[PATH_MAX + 16];
	sqlite3_stmt *st;
	sqlite3 *db;

	snprintf(path, sizeof(path), "%s/state.db", state);
	CHECK(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) ==
	      SQLITE_OK, "cannot open %s", path);
	CHECK(sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK,
	      "prepare '%s': %s", sql, sqlite3_errmsg(db));
	out[0] = '\0';
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
		snprintf(out, len, "%s", sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	CHECK(sqlite3_close(db) == SQLITE_OK, "sqlite3_close");
}

static void test_open_missing(void)
{
	struct registry *reg = (struct registry *)1;
	char err[512] = "", want[PATH_MAX + 64];
	struct stat st;

	CHECK_RC(registry_open(state, 0, &reg, err, sizeof(err)), -ENOENT);
	CHECK(reg == NULL, "handle returned on failure");
	snprintf(want, sizeof(want), "state directory %s does not exist",
		 state);
	CHECK(streq(err, want), "message '%s'", err);
	CHECK(stat(state, &st) != 0 && errno == ENOENT,
	      "create=0 created the directory");
}

static void test_open_create(void)
{
	char path[PATH_MAX + 16], buf[64], slash[PATH_MAX + 2];
	struct registry *reg;

	reg = open_reg(1);
	check_mode(state, 0700);
	snprintf(path, sizeof(path), "%s/run", state);
	check_mode(path, 0700);
	CHECK(streq(registry_dir(reg), state), "dir '%s'", registry_dir(reg));
	registry_close(reg);

	query("PRAGMA journal_mode", buf, sizeof(buf));
	CHECK(streq(buf, "wal"), "journal_mode is '%s'", buf);
	query("SELECT value FROM meta WHERE key='schema_version'", buf,
	      sizeof(buf));
	CHECK(streq(buf, "4"), "schema_version is '%s'", buf);

	/* Opening again must not fail on the existing schema, and trailing
	** slashes must not leak into derived paths. */
	snprintf(slash, sizeof(slash), "%s/", state);
	CHECK_RC(registry_open(slash, 0, &reg, NULL, 0), 0);
	CHECK(streq(registry_dir(reg), state), "dir '%s'", registry_dir(reg));
	registry_close(reg);
}

static void test_paths(void)
{
	char buf[PATH_MAX], want[PATH_MAX + 32], small[8];
	struct registry *reg = open_reg(0);

	CHECK_RC(registry_run_path(reg, "w1", ".sock", buf, sizeof(buf)), 0);
	snprintf(want, sizeof(want), "%s/run/w1.sock", state);
	CHECK(streq(buf, want), "run path '%s'", buf);
	CHECK_RC(registry_run_path(reg, "w1", ".sock", small, sizeof(small)),
		 -ENAMETOOLONG);
	CHECK_RC(registry_run_path(reg, "../x", ".lock", buf, sizeof(buf)),
		 -EINVAL);
	registry_close(reg);
}

static void test_default_dir(void)
{
	CHECK(streq(registry_default_dir("/x"), "/x"), "explicit dir ignored");
	CHECK(unsetenv("WSFS_STATE") == 0, "unsetenv");
	CHECK(streq(registry_default_dir(NULL), "/var/lib/wsfs"), "default");
	CHECK(setenv("WSFS_STATE", "", 1) == 0, "setenv");
	CHECK(streq(registry_default_dir(NULL), "/var/lib/wsfs"),
	      "empty WSFS_STATE not ignored");
	CHECK(setenv("WSFS_STATE", "/env/state", 1) == 0, "setenv");
	CHECK(streq(registry_default_dir(NULL), "/env/state"), "env ignored");
	CHECK(streq(registry_default_dir("/y"), "/y"), "explicit beats env");
	CHECK(unsetenv("WSFS_STATE") == 0, "unsetenv");
}

static void check_same(const struct ws_mount *a, const struct ws_mount *b)
{
	CHECK(streq(a->name, b->name), "name '%s'", a->name);
	CHECK(streq(a->mountpoint, b->mountpoint), "mnt '%s'", a->mountpoint);
	CHECK(streq(a->upper, b->upper), "upper '%s'", a->upper);
	CHECK(streq(a->socket, b->socket), "socket '%s'", a->socket);
	CHECK(a->pid == b->pid, "pid %ld", (long)a->pid);
	CHECK(a->start_time == b->start_time, "start_time %lld",
	      (long long)a->start_time);
}

static void test_claim_two_handles(void)
{
	struct registry *a = open_reg(0), *b = open_reg(0);
	struct ws_mount m, other, got, *list;
	char err[512] = "", want[512];
	size_t n;

	make_mount(&m, "w1", getpid());
	CHECK_RC(registry_claim(a, &m, err, sizeof(err)), 0);
	CHECK_RC(registry_get(b, "w1", &got), 0);
	check_same(&got, &m);
	CHECK(got.live == 1, "claimed workspace not live");

	make_mount(&other, "w1", 4242);
	CHECK_RC(registry_claim(b, &other, err, sizeof(err)), -EBUSY);
	snprintf(want, sizeof(want),
		 "workspace 'w1' is already mounted at /mnt/w1 by pid %ld",
		 (long)getpid());
	CHECK(streq(err, want), "message '%s'", err);
	CHECK_RC(registry_get(a, "w1", &got), 0);
	CHECK(got.pid == getpid(), "failed claim overwrote the row");

	/* One claim per handle. */
	make_mount(&other, "w9", 1);
	CHECK_RC(registry_claim(a, &other, err, sizeof(err)), -EALREADY);
	/* A non-owner may not release a live name. */
	CHECK_RC(registry_release(b, "w1"), -EBUSY);

	CHECK_RC(registry_list(b, &list, &n), 0);
	CHECK(n == 1 && streq(list[0].name, "w1") && list[0].live,
	      "list: n=%zu", n);
	free(list);

	CHECK_RC(registry_release(a, "w1"), 0);
	CHECK_RC(registry_get(b, "w1", &got), -ENOENT);
	make_mount(&other, "w1", 4242);
	CHECK_RC(registry_claim(b, &other, err, sizeof(err)), 0);
	CHECK_RC(registry_get(a, "w1", &got), 0);
	CHECK(got.pid == 4242 && got.live, "new owner not visible");

	/* Closing a handle gives its claim up; the row stays, stale. */
	registry_close(b);
	CHECK_RC(registry_get(a, "w1", &got), 0);
	CHECK(got.live == 0, "closed handle still live");
	CHECK_RC(registry_claim(a, &m, err, sizeof(err)), 0);
	CHECK_RC(registry_release(a, "w1"), 0);
	registry_close(a);
}

static void test_bad_claims(void)
{
	struct registry *reg = open_reg(0);
	struct ws_mount m, got;
	char err[512] = "";

	make_mount(&m, "../evil", 1);
	CHECK_RC(registry_claim(reg, &m, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "invalid workspace name") != NULL, "message '%s'",
	      err);
	make_mount(&m, ".hidden", 1);
	CHECK_RC(registry_claim(reg, &m, err, sizeof(err)), -EINVAL);
	CHECK_RC(registry_get(reg, "../evil", &got), -EINVAL);
	CHECK_RC(registry_release(reg, "a/b"), -EINVAL);
	registry_close(reg);
}

/* Child side of a fork test: claims NAME, reports on READY, waits on GO. */
static void child_claim(const char *name, int ready, int go)
{
	struct registry *reg;
	struct ws_mount m;
	char err[512], c = 'x';

	if (registry_open(state, 0, &reg, err, sizeof(err)) != 0)
		_exit(10);
	make_mount(&m, name, getpid());
	c = registry_claim(reg, &m, err, sizeof(err)) == 0 ? 'y' : 'n';
	if (write(ready, &c, 1) != 1)
		_exit(11);
	/* Blocks until the parent closes its end (or kills us). */
	if (read(go, &c, 1) < 0)
		_exit(12);
	_exit(0);
}

/* Forks a child that claims NAME and holds it; returns its pid and the
** write end of its "go" pipe. */
static pid_t spawn_claimer(const char *name, int *go_w)
{
	int ready[2], go[2];
	pid_t pid;
	char c;

	CHECK(pipe(ready) == 0 && pipe(go) == 0, "pipe: %s", strerror(errno));
	pid = fork();
	CHECK(pid >= 0, "fork: %s", strerror(errno));
	if (pid == 0) {
		close(ready[0]);
		close(go[1]);
		child_claim(name, ready[1], go[0]);
	}
	close(ready[1]);
	close(go[0]);
	CHECK(read(ready[0], &c, 1) == 1, "child died before claiming");
	CHECK(c == 'y', "child's claim of '%s' failed", name);
	close(ready[0]);
	*go_w = go[1];
	return pid;
}

static void reap(pid_t pid, int want_sig)
{
	int status;

	CHECK(waitpid(pid, &status, 0) == pid, "waitpid: %s", strerror(errno));
	if (want_sig)
		CHECK(WIFSIGNALED(status) && WTERMSIG(status) == want_sig,
		      "child status %#x", status);
	else
		CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		      "child status %#x", status);
}

static void test_child_killed(void)
{
	struct registry *reg = open_reg(0);
	char err[512] = "", want[512];
	struct ws_mount m, got;
	pid_t pid;
	int go;

	pid = spawn_claimer("w2", &go);
	CHECK_RC(registry_get(reg, "w2", &got), 0);
	CHECK(got.live == 1 && got.pid == pid, "live=%d pid=%ld", got.live,
	      (long)got.pid);
	make_mount(&m, "w2", getpid());
	CHECK_RC(registry_claim(reg, &m, err, sizeof(err)), -EBUSY);
	snprintf(want, sizeof(want), "by pid %ld", (long)pid);
	CHECK(strstr(err, want) != NULL, "message '%s'", err);

	CHECK(kill(pid, SIGKILL) == 0, "kill: %s", strerror(errno));
	reap(pid, SIGKILL);
	close(go);

	CHECK_RC(registry_get(reg, "w2", &got), 0);
	CHECK(got.live == 0, "SIGKILLed daemon still live");
	CHECK(got.pid == pid, "stale row lost");
	CHECK_RC(registry_claim(reg, &m, err, sizeof(err)), 0);
	CHECK_RC(registry_get(reg, "w2", &got), 0);
	CHECK(got.live == 1 && got.pid == getpid(), "stale row not replaced");
	CHECK_RC(registry_release(reg, "w2"), 0);
	registry_close(reg);
}

static void test_child_exits(void)
{
	struct registry *reg = open_reg(0);
	struct ws_mount got, *list;
	size_t n, i;
	pid_t pid;
	int go;

	pid = spawn_claimer("w3", &go);
	close(go);
	reap(pid, 0);

	CHECK_RC(registry_list(reg, &list, &n), 0);
	for (i = 0; i < n && !streq(list[i].name, "w3"); i++)
		;
	CHECK(i < n, "stale row missing from list");
	CHECK(list[i].live == 0, "exited daemon listed live");
	free(list);
	/* Anyone may clean up a stale row. */
	CHECK_RC(registry_release(reg, "w3"), 0);
	CHECK_RC(registry_get(reg, "w3", &got), -ENOENT);
	registry_close(reg);
}

/* A row without any lock file (say, restored from a backup) is stale, and
** probing it must not create the lock file. */
static void test_row_without_lock(void)
{
	struct registry *reg = open_reg(0);
	char path[PATH_MAX], buf[8];
	struct ws_mount got;
	struct stat st;

	query("INSERT INTO mounts VALUES('ghost', '/m', '/u', 1, 2, '/s')",
	      buf, sizeof(buf));
	CHECK_RC(registry_get(reg, "ghost", &got), 0);
	CHECK(got.live == 0, "lockless row live");
	CHECK_RC(registry_run_path(reg, "ghost", ".lock", path, sizeof(path)),
		 0);
	CHECK(stat(path, &st) != 0 && errno == ENOENT,
	      "probe created %s", path);
	CHECK_RC(registry_release(reg, "ghost"), 0);
	registry_close(reg);
}

/* Child side of the race: opens a possibly fresh state dir, claims, reports
** the result and holds the claim until GO closes. */
static void racer(int ready, int go)
{
	struct registry *reg;
	struct ws_mount m;
	char err[512], c;

	if (registry_open(state, 1, &reg, err, sizeof(err)) != 0) {
		fprintf(stderr, "racer %ld: %s\n", (long)getpid(), err);
		c = 'o';
	} else {
		make_mount(&m, "race", getpid());
		switch (registry_claim(reg, &m, err, sizeof(err))) {
		case 0:
			c = 'y';
			break;
		case -EBUSY:
			c = 'b';
			break;
		default:
			c = 'e';
			break;
		}
	}
	if (write(ready, &c, 1) != 1)
		_exit(11);
	if (read(go, &c, 1) < 0)
		_exit(12);
	_exit(0);
}

static void count_racers(int ready, int *won, int *busy)
{
	char c;
	int i;

	*won = *busy = 0;
	for (i = 0; i < N_RACERS; i++) {
		CHECK(read(ready, &c, 1) == 1, "a racer died");
		CHECK(c == 'y' || c == 'b', "racer failed with '%c'", c);
		*won += c == 'y';
		*busy += c == 'b';
	}
}

/* Many daemons starting at once on a fresh state directory: schema creation
** must not fail on SQLITE_BUSY, and exactly one may win the name. */
static void test_race(void)
{
	pid_t pids[N_RACERS];
	int ready[2], go[2], i, won, busy;

	CHECK(pipe(ready) == 0 && pipe(go) == 0, "pipe: %s", strerror(errno));
	for (i = 0; i < N_RACERS; i++) {
		pids[i] = fork();
		CHECK(pids[i] >= 0, "fork: %s", strerror(errno));
		if (pids[i] == 0) {
			close(ready[0]);
			close(go[1]);
			racer(ready[1], go[0]);
		}
	}
	close(ready[1]);
	close(go[0]);
	count_racers(ready[0], &won, &busy);
	close(ready[0]);
	close(go[1]);
	for (i = 0; i < N_RACERS; i++)
		reap(pids[i], 0);
	CHECK(won == 1 && busy == N_RACERS - 1, "won=%d busy=%d", won, busy);
}

int main(void)
{
	const char *tmp = test_tmpdir();

	/* Nested, so create=1 has to make parents too. */
	snprintf(state, sizeof(state), "%s/var/lib/state", tmp);
	test_open_missing();
	test_open_create();
	test_paths();
	test_default_dir();
	test_claim_two_handles();
	test_bad_claims();
	test_child_killed();
	test_child_exits();
	test_row_without_lock();

	snprintf(state, sizeof(state), "%s/race", tmp);
	test_race();
	return 0;
}
