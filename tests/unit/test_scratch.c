/*
** Unit tests for scratch.c, on real files under /var/tmp (or $TMPDIR).
**
** Every tree is built by hand with the *at() calls and its expected
** counts and charges are written out from quota/charge.h's rules, so a
** wrong link count, level or type shows up as a wrong number.  Next to the
** trees lives an "outside" directory that symlinks, hard links and bind
** mounts point at; it must come through every wipe and sweep untouched.
**
** Children that must die holding a scratch are SIGKILLed; the others
** leave with _exit() (testutil.h).  The mount test needs a mount namespace
** (root, or an unprivileged user namespace) and the immutable-file test
** needs root on a filesystem with chattr; each says so and is skipped
** where it cannot run.
*/
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/fs.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "charge.h"
#include "scratch.h"
#include "testutil.h"

#define SKIP_STATUS 77
#define SEEN_MAX 1024

static char outside[PATH_MAX];

/* What the wipe reported through on_inode. */
struct seen {
	size_t calls;
	ino_t ino[SEEN_MAX];
};

static void record(dev_t dev, ino_t ino, void *arg)
{
	struct seen *seen = arg;

	(void)dev;
	if (seen->calls < SEEN_MAX)
		seen->ino[seen->calls] = ino;
	seen->calls++;
}

static size_t times_seen(const struct seen *seen, ino_t ino)
{
	size_t i, n = 0;

	for (i = 0; i < seen->calls && i < SEEN_MAX; i++)
		n += seen->ino[i] == ino;
	return n;
}

/* ---- Files ---- */

static void pathf(char *buf, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void pathf(char *buf, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, PATH_MAX, fmt, ap);
	va_end(ap);
	CHECK(n > 0 && n < PATH_MAX, "path too long: %s", fmt);
}

static int exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0;
}

/* A file of SIZE bytes of data (not a hole) named NAME in DFD. */
static void mkfile(int dfd, const char *name, size_t size)
{
	char buf[4096];
	int fd;

	memset(buf, 'x', sizeof(buf));
	fd = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	CHECK(fd >= 0, "create %s: %s", name, strerror(errno));
	while (size > 0) {
		size_t n = size < sizeof(buf) ? size : sizeof(buf);

		CHECK(write(fd, buf, n) == (ssize_t)n, "write %s: %s", name,
		      strerror(errno));
		size -= n;
	}
	CHECK(close(fd) == 0, "close %s: %s", name, strerror(errno));
}

static void mkfile_path(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);

	CHECK(fd >= 0, "create %s: %s", path, strerror(errno));
	CHECK(write(fd, text, strlen(text)) == (ssize_t)strlen(text),
	      "write %s", path);
	CHECK(close(fd) == 0, "close %s", path);
}

static void check_text(const char *path, const char *want)
{
	char buf[256];
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	CHECK(fd >= 0, "open %s: %s", path, strerror(errno));
	n = read(fd, buf, sizeof(buf) - 1);
	CHECK(n >= 0, "read %s", path);
	buf[n] = '\0';
	close(fd);
	CHECK(streq(buf, want), "%s holds [%s], want [%s]", path, buf, want);
}

/* Makes directory NAME in DFD and returns its descriptor. */
static int mkdir_open(int dfd, const char *name)
{
	int fd;

	CHECK(mkdirat(dfd, name, 0755) == 0, "mkdir %s: %s", name,
	      strerror(errno));
	fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	CHECK(fd >= 0, "open %s: %s", name, strerror(errno));
	return fd;
}

static size_t count_entries(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *e;
	size_t n = 0;

	CHECK(d != NULL, "opendir %s: %s", path, strerror(errno));
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			n++;
	}
	closedir(d);
	return n;
}

static size_t count_fds(void)
{
	return count_entries("/proc/self/fd");
}

static void check_mode(const char *path, mode_t want)
{
	struct stat st;

	CHECK(lstat(path, &st) == 0, "lstat %s: %s", path, strerror(errno));
	CHECK(st.st_mode == want, "%s has mode %o, want %o", path,
	      (unsigned int)st.st_mode, (unsigned int)want);
}

static void make_state(char *state, const char *name)
{
	pathf(state, "%s/%s", test_tmpdir(), name);
	CHECK(mkdir(state, 0700) == 0, "mkdir %s: %s", state, strerror(errno));
}

/* <OUTSIDE>: canary, odir/inner and victim, which the tree links to. */
static void make_outside(void)
{
	char p[PATH_MAX];

	make_state(outside, "outside");
	pathf(p, "%s/canary", outside);
	mkfile_path(p, "alive\n");
	pathf(p, "%s/odir", outside);
	CHECK(mkdir(p, 0755) == 0, "mkdir %s", p);
	pathf(p, "%s/odir/inner", outside);
	mkfile_path(p, "inner\n");
	pathf(p, "%s/victim", outside);
	mkfile_path(p, "victim\n");
}

static void check_outside(void)
{
	char p[PATH_MAX];
	struct stat st;

	CHECK(count_entries(outside) == 3, "outside has %zu entries",
	      count_entries(outside));
	pathf(p, "%s/canary", outside);
	check_text(p, "alive\n");
	pathf(p, "%s/odir/inner", outside);
	check_text(p, "inner\n");
	pathf(p, "%s/victim", outside);
	check_text(p, "victim\n");
	CHECK(stat(p, &st) == 0 && st.st_nlink == 1, "victim has %lu links",
	      (unsigned long)st.st_nlink);
}

static void lock_path(char *buf, const char *state, const char *name,
		      long pid)
{
	pathf(buf, "%s/scratch/.%s.%ld.lock", state, name, pid);
}

static void check_result(const struct wipe_result *r,
			 const struct wipe_result *want, const char *what)
{
	CHECK(r->files == want->files, "%s: files %lu, want %lu", what,
	      (unsigned long)r->files, (unsigned long)want->files);
	CHECK(r->dirs == want->dirs, "%s: dirs %lu, want %lu", what,
	      (unsigned long)r->dirs, (unsigned long)want->dirs);
	CHECK(r->bytes == want->bytes, "%s: bytes %lu, want %lu", what,
	      (unsigned long)r->bytes, (unsigned long)want->bytes);
	CHECK(r->charge_bytes == want->charge_bytes,
	      "%s: charge_bytes %lu, want %lu", what,
	      (unsigned long)r->charge_bytes,
	      (unsigned long)want->charge_bytes);
	CHECK(r->charge_inodes == want->charge_inodes,
	      "%s: charge_inodes %lu, want %lu", what,
	      (unsigned long)r->charge_inodes,
	      (unsigned long)want->charge_inodes);
	CHECK(r->skipped == want->skipped, "%s: skipped %lu, want %lu", what,
	      (unsigned long)r->skipped, (unsigned long)want->skipped);
}

static struct scratch *open_ok(const char *state, const char *name)
{
	struct scratch *s = NULL;
	char err[512] = "";

	CHECK(scratch_open(state, name, &s, err, sizeof(err)) == 0,
	      "scratch_open %s: %s", name, err);
	CHECK(s != NULL, "scratch_open gave no handle");
	return s;
}

/* ---- Opening ---- */

static void test_bad_names(void)
{
	static const char *const bad[] = { "", ".", "..", "a/b", "/", ".x" };
	char state[PATH_MAX], p[PATH_MAX], err[512], want[64], name[300];
	struct scratch *s;
	size_t i;

	make_state(state, "names");
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		s = (struct scratch *)&s;
		err[0] = '\0';
		CHECK(scratch_open(state, bad[i], &s, err, sizeof(err)) == -1,
		      "name '%s' accepted", bad[i]);
		CHECK(s == NULL, "handle left for '%s'", bad[i]);
		snprintf(want, sizeof(want), "\"%s\"", bad[i]);
		CHECK(strstr(err, want) != NULL, "'%s': message [%s]", bad[i],
		      err);
	}
	memset(name, 'n', 250);
	name[250] = '\0';
	CHECK(scratch_open(state, name, &s, err, sizeof(err)) == -1,
	      "a 250-byte name makes a lock name over NAME_MAX");
	CHECK(strstr(err, "too long") != NULL, "message [%s]", err);
	/* Names are checked before anything is made. */
	pathf(p, "%s/scratch", state);
	CHECK(!exists(p), "a bad name left %s", p);
}

static void test_layout(void)
{
	struct wipe_result res;
	struct seen seen = { 0 };
	struct scratch *s, *s2;
	char state[PATH_MAX], p[PATH_MAX], lock[PATH_MAX], err[512];
	mode_t old;
	int fd, t0, tmax;

	make_state(state, "layout");
	/* Under umask 077 only an explicit chmod gives a target 0755. */
	old = umask(077);
	s = open_ok(state, "ws");
	pathf(p, "%s/scratch/ws.%ld", state, (long)getpid());
	CHECK(streq(scratch_path(s), p), "path %s, want %s", scratch_path(s),
	      p);
	check_mode(p, S_IFDIR | 0700);
	lock_path(lock, state, "ws", (long)getpid());
	check_mode(lock, S_IFREG | 0600);
	pathf(p, "%s/scratch", state);
	check_mode(p, S_IFDIR | 0700);

	/* The lock is held; flock conflicts across open file descriptions
	** even within this process. */
	fd = open(lock, O_RDONLY | O_CLOEXEC);
	CHECK(fd >= 0, "open %s", lock);
	CHECK(flock(fd, LOCK_EX | LOCK_NB) == -1 && errno == EWOULDBLOCK,
	      "scratch lock is not held");
	close(fd);
	s2 = (struct scratch *)&s2;
	CHECK(scratch_open(state, "ws", &s2, err, sizeof(err)) == -1,
	      "the same name and pid opened twice");
	CHECK(s2 == NULL, "handle left by a failed open");
	CHECK(strstr(err, "held by another process") != NULL, "message [%s]",
	      err);
	CHECK(exists(scratch_path(s)) && exists(lock),
	      "a failed open removed the live tree or its lock");

	t0 = scratch_make_target(s, 0);
	CHECK(t0 >= 0, "make_target 0: %s", test_errname(t0));
	pathf(p, "%s/0", scratch_path(s));
	check_mode(p, S_IFDIR | 01777);
	CHECK_RC(scratch_make_target(s, 0), -EEXIST);
	tmax = scratch_make_target(s, 4294967295u);
	CHECK(tmax >= 0, "make_target max: %s", test_errname(tmax));
	pathf(p, "%s/4294967295", scratch_path(s));
	check_mode(p, S_IFDIR | 01777);
	close(t0);
	close(tmax);
	umask(old);

	CHECK_RC(scratch_wipe_close(s, &res, record, &seen), 0);
	/* The root and both targets, none of them charged. */
	check_result(&res, &(struct wipe_result){ .dirs = 3 }, "layout");
	CHECK(seen.calls == 3, "on_inode called %zu times", seen.calls);
	pathf(p, "%s/scratch/ws.%ld", state, (long)getpid());
	CHECK(!exists(p), "tree left after wipe_close");
	CHECK(!exists(lock), "lock file left after wipe_close");
	pathf(p, "%s/scratch", state);
	CHECK(count_entries(p) == 0, "%s is not empty", p);

	memset(&res, 0xff, sizeof(res));
	CHECK_RC(scratch_wipe_close(NULL, &res, NULL, NULL), 0);
	check_result(&res, &(struct wipe_result){ 0 }, "NULL scratch");
}

/* A tree under this very pid is what a crashed daemon leaves when its pid
** comes round again before any sweep: opening takes it over, empty. */
static void test_stale_tree(void)
{
	struct wipe_result res;
	struct scratch *s;
	char state[PATH_MAX], p[PATH_MAX];
	int fd, t;

	make_state(state, "stale");
	pathf(p, "%s/scratch", state);
	CHECK(mkdir(p, 0700) == 0, "mkdir %s", p);
	pathf(p, "%s/scratch/st.%ld", state, (long)getpid());
	CHECK(mkdir(p, 0700) == 0, "mkdir %s", p);
	fd = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	CHECK(fd >= 0, "open %s", p);
	t = mkdir_open(fd, "0");
	mkfile(t, "f", 100);
	close(mkdir_open(t, "sub"));
	pathf(p, "%s/canary", outside);
	CHECK(symlinkat(p, t, "sl") == 0, "symlink");
	close(t);
	close(fd);

	s = open_ok(state, "st");
	CHECK(count_entries(scratch_path(s)) == 0, "stale tree not emptied");
	check_outside();
	CHECK_RC(scratch_wipe_close(s, &res, NULL, NULL), 0);
	check_result(&res, &(struct wipe_result){ .dirs = 1 }, "stale");
}

/* Nothing of scratch_open may go through a symlink: not the scratch
** directory, not the lock file (O_CREAT would make its target), not the
** tree. */
static void test_symlinks_refused(void)
{
	char state[PATH_MAX], p[PATH_MAX], q[PATH_MAX], err[512];
	struct wipe_result total = { 0 };
	unsigned int trees = 0;
	struct scratch *s;

	make_state(state, "symscratch");
	pathf(p, "%s/scratch", state);
	CHECK(symlink(outside, p) == 0, "symlink %s", p);
	CHECK(scratch_open(state, "ws", &s, err, sizeof(err)) == -1,
	      "a symlinked scratch directory was used");
	CHECK(strstr(err, "scratch") != NULL, "message [%s]", err);
	CHECK(scratch_sweep(state, &total, &trees) < 0,
	      "sweep went through a symlinked scratch directory");
	CHECK(trees == 0, "sweep counted %u trees", trees);
	check_outside();

	make_state(state, "symlock");
	pathf(p, "%s/scratch", state);
	CHECK(mkdir(p, 0700) == 0, "mkdir %s", p);
	pathf(q, "%s/made-through-lock", outside);
	lock_path(p, state, "ws", (long)getpid());
	CHECK(symlink(q, p) == 0, "symlink %s", p);
	CHECK(scratch_open(state, "ws", &s, err, sizeof(err)) == -1,
	      "a symlinked lock file was used");
	CHECK(!exists(q), "O_CREAT went through the lock symlink");
	CHECK(unlink(p) == 0, "unlink %s", p);

	pathf(p, "%s/scratch/ws.%ld", state, (long)getpid());
	CHECK(symlink(outside, p) == 0, "symlink %s", p);
	CHECK(scratch_open(state, "ws", &s, err, sizeof(err)) == -1,
	      "a symlinked tree was used");
	CHECK(strstr(err, p) != NULL, "message [%s]", err);
	lock_path(q, state, "ws", (long)getpid());
	CHECK(!exists(q), "a failed open left its lock file");
	check_outside();
}

/* ---- Counting ---- */

/* A 300-level chain under DFD, with LEAF (10 bytes) at the bottom. */
static void make_chain(int dfd, int levels, const char *leaf)
{
	int fd = dup(dfd), i;

	CHECK(fd >= 0, "dup");
	for (i = 0; i < levels; i++) {
		int next = mkdir_open(fd, "d");

		close(fd);
		fd = next;
	}
	mkfile(fd, leaf, 10);
	close(fd);
}

static ino_t ino_at(int dfd, const char *name)
{
	struct stat st;

	CHECK(fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0, "stat %s",
	      name);
	return st.st_ino;
}

static void test_counts(void)
{
	struct wipe_result res, want = { 0 };
	struct seen seen = { 0 };
	struct scratch *s;
	char state[PATH_MAX], p[PATH_MAX], lock[PATH_MAX];
	ino_t linked, symlinked, victim;
	int t0, t1, sub;

	make_state(state, "counts");
	s = open_ok(state, "counts");
	t0 = scratch_make_target(s, 0);
	t1 = scratch_make_target(s, 1);
	CHECK(t0 >= 0 && t1 >= 0, "make_target");

	mkfile(t0, "empty", 0);
	mkfile(t0, "one", 1);
	mkfile(t0, "page", 4096);
	mkfile(t0, "page1", 4097);
	mkfile(t0, "big", 100000);
	/* Sparse: charged for its apparent size, holes and all. */
	mkfile(t0, "sparse", 0);
	{
		int fd = openat(t0, "sparse", O_WRONLY | O_CLOEXEC);

		CHECK(fd >= 0 && ftruncate(fd, 10 << 20) == 0, "truncate");
		close(fd);
	}
	/* Three names of one inode, in three directories. */
	mkfile(t0, "linked", 5000);
	sub = mkdir_open(t0, "sub");
	CHECK(linkat(t0, "linked", sub, "link2", 0) == 0, "link2");
	CHECK(linkat(t0, "linked", t1, "link3", 0) == 0, "link3");
	linked = ino_at(t0, "linked");
	/* A name of an inode outside: never its last link. */
	pathf(p, "%s/victim", outside);
	CHECK(linkat(AT_FDCWD, p, t0, "outlink", 0) == 0, "outlink: %s",
	      strerror(errno));
	victim = ino_at(t0, "outlink");
	/* Symlinks out of the tree, which the wipe must not follow. */
	CHECK(symlinkat(outside, t0, "sl_dir") == 0, "sl_dir");
	pathf(p, "%s/canary", outside);
	CHECK(symlinkat(p, t0, "sl_file") == 0, "sl_file");
	CHECK(symlinkat("/nonexistent/x", t0, "sl_dangling") == 0, "dangle");
	CHECK(symlinkat("../../../../outside", t0, "sl_up") == 0, "sl_up");
	CHECK(symlinkat(outside, sub, "evil") == 0, "evil");
	/* A hard link to a symlink (linkat does not follow by default). */
	CHECK(linkat(t0, "sl_file", t0, "sl_file2", 0) == 0, "sl_file2");
	symlinked = ino_at(t0, "sl_file");
	CHECK(mkfifoat(t0, "fifo", 0644) == 0, "mkfifo");
	CHECK(mknodat(t0, "sock", S_IFSOCK | 0644, 0) == 0, "mknod sock");
	make_chain(sub, 300, "leaf");
	close(mkdir_open(t1, "emptydir"));
	close(sub);
	close(t0);
	close(t1);

	/* Every name but the directories. */
	want.files = 11 + 6 + 2;
	/* sub, the chain, emptydir; then the targets and the root. */
	want.dirs = 302 + 2 + 1;
	want.bytes = 0 + 1 + 4096 + 4097 + 100000 + (10 << 20) + 5000 + 10;
	want.charge_bytes = charge_data(1) + charge_data(4096) +
			    charge_data(4097) + charge_data(100000) +
			    charge_data(10 << 20) + charge_data(5000) +
			    charge_data(10) + 5 * QUOTA_BLOCK +
			    302 * QUOTA_BLOCK;
	/* 8 regular, 5 symlinks, fifo and socket, 302 directories. */
	want.charge_inodes = 8 + 5 + 2 + 302;
	CHECK(want.charge_bytes == 10616832 + 307 * 4096,
	      "the test's own sum is off: %lu",
	      (unsigned long)want.charge_bytes);

	pathf(p, "%s", scratch_path(s));
	lock_path(lock, state, "counts", (long)getpid());
	CHECK_RC(scratch_wipe_close(s, &res, record, &seen), 0);
	check_result(&res, &want, "counts");
	CHECK(seen.calls == 15 + 305, "on_inode called %zu times", seen.calls);
	CHECK(times_seen(&seen, linked) == 1, "linked reported %zu times",
	      times_seen(&seen, linked));
	CHECK(times_seen(&seen, symlinked) == 1, "symlink reported %zu times",
	      times_seen(&seen, symlinked));
	CHECK(times_seen(&seen, victim) == 0, "outside inode reported");
	CHECK(!exists(p), "tree left");
	CHECK(!exists(lock), "lock left");
	check_outside();
}

/* wipe_contents charges everything under the directory it is given, and
** reads its own descriptor: one already read to the end still works. */
static void test_wipe_contents(void)
{
	struct wipe_result res;
	char dir[PATH_MAX];
	int fd, sub;

	make_state(dir, "contents");
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	CHECK(fd >= 0, "open %s", dir);
	mkfile(fd, "a", 5);
	sub = mkdir_open(fd, "sub");
	mkfile(sub, "b", 4097);
	close(sub);
	CHECK(count_entries(dir) == 2, "setup");
	{
		char buf[4096];

		while (syscall(SYS_getdents64, fd, buf, sizeof(buf)) > 0)
			;
	}
	CHECK_RC(wipe_contents(fd, &res, NULL, NULL), 0);
	check_result(&res, &(struct wipe_result){
		.files = 2, .dirs = 1, .bytes = 4102,
		.charge_bytes = 4096 + 8192 + 4096, .charge_inodes = 3 },
		"wipe_contents");
	CHECK(count_entries(dir) == 0, "not emptied");
	close(fd);
}

/* Deeper than the descriptors the wipe may hold: with the limit at 1024
** a walk that kept one descriptor per level would fail with EMFILE.  2000
** levels of "d/" still fit in PATH_MAX, so testutil's cleanup can remove
** what a failed wipe leaves. */
static void deep_child(const char *state)
{
	struct rlimit rl = { 1024, 1024 };
	struct wipe_result res, want = { 0 };
	struct scratch *s;
	size_t fds;
	int t, fd, i;

	CHECK(setrlimit(RLIMIT_NOFILE, &rl) == 0, "setrlimit: %s",
	      strerror(errno));
	s = open_ok(state, "deep");
	t = scratch_make_target(s, 0);
	CHECK(t >= 0, "make_target");
	fd = t;
	for (i = 1; i <= 2000; i++) {
		int next = mkdir_open(fd, "d");

		close(fd);
		fd = next;
		mkfile(fd, "f", 0);
		/* A side branch, visited on the way up after a reopen. */
		if (i % 250 == 0) {
			int b = mkdir_open(fd, "b");

			mkfile(b, "g", 0);
			close(b);
		}
	}
	close(fd);
	fds = count_fds();
	CHECK_RC(scratch_wipe_close(s, &res, NULL, NULL), 0);
	want.files = 2000 + 8;
	want.dirs = 2000 + 8 + 2;
	want.charge_inodes = 2008 + 2008;
	want.charge_bytes = 2008 * QUOTA_BLOCK;
	check_result(&res, &want, "deep");
	/* The scratch's own three (scratch dir, root, lock) went with it. */
	CHECK(count_fds() == fds - 3, "%zu descriptors before, %zu after",
	      fds, count_fds());
	_exit(0);
}

static void test_deep(void)
{
	char state[PATH_MAX], p[PATH_MAX];
	pid_t pid;
	int status;

	make_state(state, "deep");
	pid = fork();
	CHECK(pid >= 0, "fork");
	if (pid == 0)
		deep_child(state);
	CHECK(waitpid(pid, &status, 0) == pid, "waitpid");
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	      "deep child status %#x", status);
	pathf(p, "%s/scratch", state);
	CHECK(count_entries(p) == 0, "deep tree or lock left");
}

/* ---- Other filesystems ---- */

static int write_text(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC), r;

	if (fd < 0)
		return -1;
	r = write(fd, text, strlen(text)) == (ssize_t)strlen(text) ? 0 : -1;
	close(fd);
	return r;
}

/* A private mount namespace, as root or through a user namespace. */
static int enter_mount_ns(void)
{
	char map[64];
	uid_t uid = geteuid();
	gid_t gid = getegid();

	if (uid == 0) {
		if (unshare(CLONE_NEWNS) != 0)
			return -1;
	} else {
		if (unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0)
			return -1;
		snprintf(map, sizeof(map), "0 %u 1", (unsigned int)uid);
		if (write_text("/proc/self/setgroups", "deny") != 0 ||
		    write_text("/proc/self/uid_map", map) != 0)
			return -1;
		snprintf(map, sizeof(map), "0 %u 1", (unsigned int)gid);
		if (write_text("/proc/self/gid_map", map) != 0)
			return -1;
	}
	return mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL);
}

/* In the child's namespace: a tmpfs and a bind mount of <outside>/odir
** (same filesystem, same st_dev) inside a target, both left alone. */
static void mount_child(const char *state)
{
	struct wipe_result res;
	struct scratch *s;
	char root[PATH_MAX], tmp[PATH_MAX], bind[PATH_MAX], p[PATH_MAX];
	int t, fd;

	if (enter_mount_ns() != 0)
		_exit(SKIP_STATUS);
	s = open_ok(state, "mnt");
	t = scratch_make_target(s, 0);
	CHECK(t >= 0, "make_target");
	mkfile(t, "plain", 10);
	close(mkdir_open(t, "tmp"));
	close(mkdir_open(t, "bind"));
	close(t);
	pathf(root, "%s", scratch_path(s));
	pathf(tmp, "%s/0/tmp", root);
	pathf(bind, "%s/0/bind", root);
	pathf(p, "%s/odir", outside);
	if (mount("tmpfs", tmp, "tmpfs", 0, "size=1m") != 0 ||
	    mount(p, bind, NULL, MS_BIND, NULL) != 0)
		_exit(SKIP_STATUS);
	fd = open(tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	CHECK(fd >= 0, "open tmpfs");
	mkfile(fd, "in_tmpfs", 3);
	close(fd);

	CHECK_RC(scratch_wipe_close(s, &res, NULL, NULL), -ENOTEMPTY);
	check_result(&res, &(struct wipe_result){
		.files = 1, .bytes = 10, .charge_bytes = 4096,
		.charge_inodes = 1, .skipped = 2 }, "mounts");
	pathf(p, "%s/in_tmpfs", tmp);
	CHECK(exists(p), "the wipe went into a tmpfs mounted inside");
	pathf(p, "%s/inner", bind);
	CHECK(exists(p), "the wipe went into a bind mount");
	check_outside();
	CHECK(umount2(tmp, 0) == 0 && umount2(bind, 0) == 0, "umount: %s",
	      strerror(errno));
	_exit(0);
}

static void test_mounts(void)
{
	struct wipe_result total = { 0 };
	unsigned int trees = 0;
	char state[PATH_MAX], p[PATH_MAX];
	pid_t pid;
	int status;

	make_state(state, "mounts");
	pid = fork();
	CHECK(pid >= 0, "fork");
	if (pid == 0)
		mount_child(state);
	CHECK(waitpid(pid, &status, 0) == pid, "waitpid");
	if (WIFEXITED(status) && WEXITSTATUS(status) == SKIP_STATUS) {
		printf("skipped the mount test: no mount namespace here\n");
		return;
	}
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	      "mount child status %#x", status);
	/* What stayed, now bare directories: a sweep finishes the job, and
	** the lock file, kept while its tree stayed, goes with it. */
	lock_path(p, state, "mnt", (long)pid);
	CHECK(exists(p), "lock file removed while its tree stayed");
	CHECK_RC(scratch_sweep(state, &total, &trees), 0);
	CHECK(trees == 1, "swept %u trees", trees);
	check_result(&total, &(struct wipe_result){
		.dirs = 4, .charge_bytes = 2 * 4096, .charge_inodes = 2 },
		"sweep after mounts");
	pathf(p, "%s/scratch", state);
	CHECK(count_entries(p) == 0, "sweep left something");
	check_outside();
}

/* A failure does not stop the wipe: an immutable file stays, counted in
** skipped, everything else goes, and the first errno is returned. */
static void test_failure_goes_on(void)
{
	struct wipe_result res, total = { 0 };
	unsigned int trees = 0;
	struct scratch *s;
	char state[PATH_MAX], root[PATH_MAX], p[PATH_MAX];
	int t, fd, sub, flags, set, r;

	make_state(state, "immutable");
	s = open_ok(state, "imm");
	pathf(root, "%s", scratch_path(s));
	t = scratch_make_target(s, 0);
	CHECK(t >= 0, "make_target");
	mkfile(t, "a", 1);
	mkfile(t, "stuck", 1);
	mkfile(t, "b", 1);
	sub = mkdir_open(t, "sub");
	mkfile(sub, "c", 1);
	close(sub);
	fd = openat(t, "stuck", O_RDONLY | O_CLOEXEC);
	CHECK(fd >= 0, "open stuck");
	set = ioctl(fd, FS_IOC_GETFLAGS, &flags) == 0;
	if (set) {
		flags |= FS_IMMUTABLE_FL;
		set = ioctl(fd, FS_IOC_SETFLAGS, &flags) == 0;
	}
	if (!set) {
		close(fd);
		close(t);
		CHECK_RC(scratch_wipe_close(s, &res, NULL, NULL), 0);
		printf("skipped the immutable-file test: chattr +i refused\n");
		return;
	}
	r = scratch_wipe_close(s, &res, NULL, NULL);
	/* Undone before any check can fail, or the cleanup could not go. */
	flags &= ~FS_IMMUTABLE_FL;
	CHECK(ioctl(fd, FS_IOC_SETFLAGS, &flags) == 0, "chattr -i: %s",
	      strerror(errno));
	close(fd);
	close(t);
	CHECK_RC(r, -EPERM);
	check_result(&res, &(struct wipe_result){
		.files = 3, .dirs = 1, .bytes = 3, .charge_bytes = 3 * 4096 +
		4096, .charge_inodes = 4, .skipped = 1 }, "immutable");
	pathf(p, "%s/0/stuck", root);
	CHECK(exists(p), "stuck file gone");
	pathf(p, "%s/0", root);
	CHECK(count_entries(p) == 1, "more than the stuck file stayed");
	/* The lock was dropped with the handle: a sweep takes the rest. */
	CHECK_RC(scratch_sweep(state, &total, &trees), 0);
	CHECK(trees == 1, "swept %u trees", trees);
	check_result(&total, &(struct wipe_result){
		.files = 1, .dirs = 2, .bytes = 1, .charge_bytes = 4096,
		.charge_inodes = 1 }, "sweep after immutable");
	pathf(p, "%s/scratch", state);
	CHECK(count_entries(p) == 0, "sweep left something");
}

/* ---- Sweeping ---- */

/* Child side: opens scratch NAME with one target holding a 10-byte file
** and a directory, reports on READY, then waits on GO. */
static void holder_child(const char *state, const char *name, int ready,
			 int go)
{
	struct scratch *s;
	char err[512], c = 'y';
	int t;

	if (scratch_open(state, name, &s, err, sizeof(err)) != 0)
		_exit(10);
	t = scratch_make_target(s, 0);
	if (t < 0 || mkdirat(t, "sub", 0755) != 0)
		_exit(11);
	mkfile(t, "f", 10);
	if (write(ready, &c, 1) != 1)
		_exit(12);
	/* Until the parent closes its end or kills us; never wipes. */
	if (read(go, &c, 1) < 0)
		_exit(13);
	_exit(0);
}

static pid_t spawn_holder(const char *state, const char *name, int *go_w)
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
		holder_child(state, name, ready[1], go[0]);
	}
	close(ready[1]);
	close(go[0]);
	CHECK(read(ready[0], &c, 1) == 1 && c == 'y',
	      "holder of %s failed", name);
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

static void test_sweep(void)
{
	static const struct wipe_result one_holder = {
		.files = 1, .dirs = 3, .bytes = 10, .charge_bytes = 2 * 4096,
		.charge_inodes = 2 };
	struct wipe_result total = { 0 };
	unsigned int trees = 0;
	struct scratch *self;
	char state[PATH_MAX], scr[PATH_MAX], p[PATH_MAX];
	pid_t dead, alive;
	int go_dead, go_alive, held, fd;

	make_state(state, "sweep");
	pathf(scr, "%s/scratch", state);
	CHECK_RC(scratch_sweep(state, &total, &trees), 0);
	CHECK(trees == 0, "swept %u trees without a scratch directory", trees);
	pathf(p, "%s/missing", state);
	CHECK_RC(scratch_sweep(p, &total, &trees), 0);

	self = open_ok(state, "self");
	fd = scratch_make_target(self, 0);
	CHECK(fd >= 0, "make_target");
	mkfile(fd, "mine", 1);
	close(fd);
	dead = spawn_holder(state, "dead", &go_dead);
	alive = spawn_holder(state, "alive", &go_alive);
	CHECK(kill(dead, SIGKILL) == 0, "kill: %s", strerror(errno));
	reap(dead, SIGKILL);
	close(go_dead);
	pathf(p, "%s/dead.%ld/0/f", scr, (long)dead);
	CHECK(exists(p), "SIGKILL took the tree with it?");

	/* Strays and things that are not ours. */
	pathf(p, "%s/.ghost.123.lock", scr);
	mkfile_path(p, "");
	pathf(p, "%s/.held.5.lock", scr);
	mkfile_path(p, "");
	held = open(p, O_RDONLY | O_CLOEXEC);
	CHECK(held >= 0 && flock(held, LOCK_EX) == 0, "hold %s", p);
	pathf(p, "%s/notatree", scr);
	CHECK(mkdir(p, 0700) == 0, "mkdir %s", p);
	pathf(p, "%s/notatree/keep", scr);
	mkfile_path(p, "keep");
	pathf(p, "%s/evil.7", scr);
	CHECK(symlink(outside, p) == 0, "symlink %s", p);
	pathf(p, "%s/file.9", scr);
	mkfile_path(p, "file");

	CHECK_RC(scratch_sweep(state, &total, &trees), 0);
	CHECK(trees == 1, "swept %u trees, want only the dead one", trees);
	check_result(&total, &one_holder, "first sweep");
	pathf(p, "%s/dead.%ld", scr, (long)dead);
	CHECK(!exists(p), "dead tree left");
	lock_path(p, state, "dead", (long)dead);
	CHECK(!exists(p), "dead lock file left");
	pathf(p, "%s/alive.%ld/0/f", scr, (long)alive);
	CHECK(exists(p), "a live tree was swept");
	lock_path(p, state, "alive", (long)alive);
	CHECK(exists(p), "a live lock file was swept");
	pathf(p, "%s/0/mine", scratch_path(self));
	CHECK(exists(p), "the caller's own tree was swept");
	pathf(p, "%s/.ghost.123.lock", scr);
	CHECK(!exists(p), "stray free lock file left");
	pathf(p, "%s/.held.5.lock", scr);
	CHECK(exists(p), "stray held lock file removed");
	pathf(p, "%s/notatree/keep", scr);
	CHECK(exists(p), "a directory not named like a tree was swept");
	pathf(p, "%s/evil.7", scr);
	CHECK(exists(p), "a symlink named like a tree was removed");
	pathf(p, "%s/file.9", scr);
	CHECK(exists(p), "a file named like a tree was removed");
	check_outside();

	/* The holder exits without wiping: its tree is free now. */
	close(go_alive);
	reap(alive, 0);
	memset(&total, 0, sizeof(total));
	trees = 0;
	CHECK_RC(scratch_sweep(state, &total, &trees), 0);
	CHECK(trees == 1, "second sweep: %u trees", trees);
	check_result(&total, &one_holder, "second sweep");
	pathf(p, "%s/alive.%ld", scr, (long)alive);
	CHECK(!exists(p), "alive tree left after its holder exited");

	CHECK_RC(scratch_wipe_close(self, NULL, NULL, NULL), 0);
	close(held);
	trees = 0;
	CHECK_RC(scratch_sweep(state, NULL, &trees), 0);
	CHECK(trees == 0, "third sweep: %u trees", trees);
	pathf(p, "%s/.held.5.lock", scr);
	CHECK(!exists(p), "stray lock file left once free");
	CHECK(count_entries(scr) == 3, "scratch holds %zu entries, want the "
	      "3 foreign ones", count_entries(scr));
	check_outside();
}

/* ---- Scale ---- */

static void test_many(void)
{
	struct wipe_result res, want = { 0 };
	struct scratch *s;
	char state[PATH_MAX], name[32];
	long long t0;
	int t, flat, i, j;

	make_state(state, "many");
	s = open_ok(state, "many");
	t = scratch_make_target(s, 0);
	CHECK(t >= 0, "make_target");
	flat = mkdir_open(t, "flat");
	for (i = 0; i < 40000; i++) {
		snprintf(name, sizeof(name), "f%05d", i);
		CHECK(mknodat(flat, name, S_IFREG | 0644, 0) == 0, "mknod %s: %s",
		      name, strerror(errno));
	}
	close(flat);
	for (i = 0; i < 100; i++) {
		int d;

		snprintf(name, sizeof(name), "d%02d", i);
		d = mkdir_open(t, name);
		for (j = 0; j < 100; j++) {
			snprintf(name, sizeof(name), "g%03d", j);
			CHECK(mknodat(d, name, S_IFREG | 0644, 0) == 0,
			      "mknod %s", name);
		}
		close(d);
	}
	close(t);
	t0 = test_now_ms();
	CHECK_RC(scratch_wipe_close(s, &res, NULL, NULL), 0);
	printf("wiped 50000 files in %lld ms\n", test_now_ms() - t0);
	want.files = 50000;
	want.dirs = 101 + 2;
	want.charge_bytes = 101 * QUOTA_BLOCK;
	want.charge_inodes = 50000 + 101;
	check_result(&res, &want, "50k");
}

int main(void)
{
	size_t fds;

	/* /tmp may be a tmpfs; the daemon's state is on a real disk. */
	if (setenv("TMPDIR", "/var/tmp", 0) != 0)
		return 1;
	setvbuf(stdout, NULL, _IOLBF, 0);
	make_outside();
	fds = count_fds();
	test_bad_names();
	test_layout();
	test_stale_tree();
	test_symlinks_refused();
	test_counts();
	test_wipe_contents();
	test_deep();
	test_mounts();
	test_failure_goes_on();
	test_sweep();
	test_many();
	CHECK(count_fds() == fds, "%zu descriptors at start, %zu at the end",
	      fds, count_fds());
	check_outside();
	return 0;
}
