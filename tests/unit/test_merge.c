/*
** Unit tests for merge.c, on real directories under /var/tmp (or $TMPDIR).
**
** Each test builds its stack of directories by hand and writes out the
** whole listing it expects, in order, with the layer and type of every
** entry; the listing must match it exactly, so an entry that should have
** been hidden shows up as an extra one, and a wrong winner as a wrong layer.
** Inode numbers are checked against an lstat of the winning directory's
** entry.
**
** Whiteouts are character devices 0:0, which only root can make, so the
** test is skipped for anyone else.
*/
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "merge.h"
#include "testutil.h"

#define SKIP_STATUS 77
#define MANY 10000

static int root_fd;

/* What one entry of a listing must be. */
struct want {
	const char *name;
	unsigned int layer;
	unsigned char type;
};

/* ---- Building stacks ---- */

/* Makes directory NAME in DFD and returns its descriptor. */
static int new_dir(int dfd, const char *name)
{
	int fd;

	CHECK(mkdirat(dfd, name, 0755) == 0, "mkdir %s: %s", name,
	      strerror(errno));
	fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	CHECK(fd >= 0, "open %s: %s", name, strerror(errno));
	return fd;
}

/* Makes NAME in DFD: KIND is 'f' (file), 'd' (directory), 'l' (symlink),
** 'p' (fifo), 'w' (whiteout) or 'c' (the character device 1:3). */
static void make(int dfd, const char *name, char kind)
{
	int r;

	switch (kind) {
	case 'f':
		r = mknodat(dfd, name, S_IFREG | 0644, 0);
		break;
	case 'd':
		r = mkdirat(dfd, name, 0755);
		break;
	case 'l':
		r = symlinkat("target", dfd, name);
		break;
	case 'p':
		r = mknodat(dfd, name, S_IFIFO | 0644, 0);
		break;
	case 'w':
		r = mknodat(dfd, name, S_IFCHR | 0600, makedev(0, 0));
		break;
	case 'c':
		r = mknodat(dfd, name, S_IFCHR | 0600, makedev(1, 3));
		break;
	default:
		r = -1;
		errno = EINVAL;
	}
	CHECK(r == 0, "make %s (%c): %s", name, kind, strerror(errno));
}

static void set_opaque(int fd, const char *value)
{
	CHECK(fsetxattr(fd, MERGE_OPAQUE_XATTR, value, strlen(value), 0) == 0,
	      "set opaque: %s", strerror(errno));
}

static void close_all(const int *fds, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (fds[i] >= 0)
			CHECK(close(fds[i]) == 0, "close: %s", strerror(errno));
	}
}

static size_t count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	size_t n = 0;

	CHECK(d != NULL, "opendir /proc/self/fd: %s", strerror(errno));
	while ((e = readdir(d)) != NULL)
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

/* ---- Checking listings ---- */

static void list_ok(const int *fds, size_t n, struct merge_list *l)
{
	CHECK_RC(merge_list_dirs(fds, n, l), 0);
}

static void check_sorted(const struct merge_list *l)
{
	size_t i;

	for (i = 1; i < l->n; i++)
		CHECK(strcmp(l->v[i - 1].name, l->v[i].name) < 0,
		      "entry %zu [%s] is not after [%s]", i, l->v[i].name,
		      l->v[i - 1].name);
}

/* L must be exactly WANT[0..N), in that order; FDS are the stack it was
** listed from, where each entry's inode number is checked. */
static void check_list(const struct merge_list *l, const int *fds,
		       const struct want *want, size_t n, const char *what)
{
	size_t i;

	for (i = 0; i < l->n && i < n; i++) {
		const struct merge_entry *e = &l->v[i];
		struct stat st;

		CHECK(streq(e->name, want[i].name), "%s: entry %zu is [%s], "
		      "want [%s]", what, i, e->name, want[i].name);
		CHECK(e->layer == want[i].layer, "%s: [%s] from layer %u, "
		      "want %u", what, e->name, e->layer, want[i].layer);
		CHECK(e->d_type == want[i].type, "%s: [%s] has type %u, "
		      "want %u", what, e->name, e->d_type, want[i].type);
		CHECK(fstatat(fds[e->layer], e->name, &st,
			      AT_SYMLINK_NOFOLLOW) == 0, "%s: lstat %s: %s",
		      what, e->name, strerror(errno));
		CHECK(e->ino == (uint64_t)st.st_ino, "%s: [%s] has inode %lu, "
		      "want %lu", what, e->name, (unsigned long)e->ino,
		      (unsigned long)st.st_ino);
	}
	CHECK(l->n == n, "%s: %zu entries, want %zu (first extra: [%s])",
	      what, l->n, n, l->n > n ? l->v[n].name : "");
	check_sorted(l);
}

static void expect(const int *fds, size_t nfds, const struct want *want,
		   size_t n, const char *what)
{
	struct merge_list l;

	list_ok(fds, nfds, &l);
	check_list(&l, fds, want, n, what);
	merge_list_free(&l);
	CHECK(l.v == NULL && l.n == 0, "%s: merge_list_free left entries",
	      what);
}

#define NWANT(w) (sizeof(w) / sizeof((w)[0]))

/* ---- Tests ---- */

/* Upper and two lowers sharing names of every type: the highest wins, with
** its own type and inode; the callers' positions do not matter. */
static void test_overlap(void)
{
	static const struct want want[] = {
		{ "a", 0, DT_REG }, { "b", 0, DT_DIR }, { "c", 0, DT_LNK },
		{ "d", 1, DT_REG }, { "e", 1, DT_FIFO }, { "f", 2, DT_REG },
		{ "g", 2, DT_LNK }, { "h", 1, DT_DIR },
	};
	int t = new_dir(root_fd, "overlap");
	int fds[3] = { new_dir(t, "upper"), new_dir(t, "mid"),
		       new_dir(t, "low") };
	int paths[3];
	char buf[4096];
	off_t pos;
	size_t i;

	make(fds[0], "a", 'f');
	make(fds[0], "b", 'd');
	make(fds[0], "c", 'l');
	make(fds[1], "a", 'd');
	make(fds[1], "b", 'f');
	make(fds[1], "d", 'f');
	make(fds[1], "e", 'p');
	make(fds[1], "h", 'd');
	make(fds[2], "a", 'f');
	make(fds[2], "c", 'd');
	make(fds[2], "d", 'd');
	make(fds[2], "e", 'f');
	make(fds[2], "f", 'f');
	make(fds[2], "g", 'l');
	make(fds[2], "h", 'f');
	expect(fds, 3, want, NWANT(want), "overlap");

	/* Callers' descriptors read to their end stay there. */
	for (i = 0; i < 3; i++) {
		while (syscall(SYS_getdents64, fds[i], buf, sizeof(buf)) > 0)
			;
	}
	pos = lseek(fds[0], 0, SEEK_CUR);
	CHECK(pos > 0, "upper's position is %ld", (long)pos);
	expect(fds, 3, want, NWANT(want), "overlap, read to the end");
	CHECK(lseek(fds[0], 0, SEEK_CUR) == pos, "upper's position moved");

	/* O_PATH descriptors, which the inode table holds, do as well. */
	for (i = 0; i < 3; i++) {
		paths[i] = openat(fds[i], ".", O_PATH | O_DIRECTORY |
				  O_CLOEXEC);
		CHECK(paths[i] >= 0, "O_PATH: %s", strerror(errno));
	}
	expect(paths, 3, want, NWANT(want), "overlap, O_PATH");
	close_all(paths, 3);
	close_all(fds, 3);
	close(t);
}

/* Whiteouts in the upper hide a lower file and a lower directory, and are
** not listed; a symlink to a whiteout is no whiteout. */
static void test_whiteout_upper(void)
{
	static const struct want want[] = {
		{ "keep", 1, DT_REG }, { "link", 0, DT_LNK },
	};
	int t = new_dir(root_fd, "wupper");
	int fds[2] = { new_dir(t, "upper"), new_dir(t, "low") };

	make(fds[0], "file", 'w');
	make(fds[0], "dir", 'w');
	make(fds[1], "file", 'f');
	make(fds[1], "dir", 'd');
	make(fds[1], "dir/inner", 'f');
	make(fds[1], "keep", 'f');
	CHECK(symlinkat("file", fds[0], "link") == 0, "symlink: %s",
	      strerror(errno));
	expect(fds, 2, want, NWANT(want), "whiteouts in the upper");

	CHECK_RC(merge_is_whiteout(fds[0], "file"), 1);
	CHECK_RC(merge_is_whiteout(fds[0], "dir"), 1);
	CHECK_RC(merge_is_whiteout(fds[0], "link"), 0);
	CHECK_RC(merge_is_whiteout(fds[1], "file"), 0);
	CHECK_RC(merge_is_whiteout(fds[1], "dir"), 0);
	CHECK_RC(merge_is_whiteout(fds[1], "missing"), 0);
	CHECK_RC(merge_is_whiteout(fds[1], "keep/below"), -ENOTDIR);
	close_all(fds, 2);
	close(t);
}

/* A whiteout in the middle hides the bottom's name only: the upper's own
** entry of that name is still listed. */
static void test_whiteout_middle(void)
{
	static const struct want want[] = {
		{ "both", 0, DT_REG }, { "top", 0, DT_REG },
		{ "y", 2, DT_REG },
	};
	int t = new_dir(root_fd, "wmiddle");
	int fds[3] = { new_dir(t, "upper"), new_dir(t, "mid"),
		       new_dir(t, "low") };

	make(fds[0], "top", 'f');
	make(fds[0], "both", 'f');
	make(fds[1], "both", 'w');
	make(fds[1], "w", 'w');
	make(fds[2], "both", 'd');
	make(fds[2], "w", 'f');
	make(fds[2], "y", 'f');
	expect(fds, 3, want, NWANT(want), "whiteout in the middle");
	close_all(fds, 3);
	close(t);
}

/* An opaque upper ends the stack: nothing below is listed, not even what
** it does not hide.  Only the exact value "y" is a mark. */
static void test_opaque_upper(void)
{
	static const struct want opaque[] = { { "a", 0, DT_REG } };
	static const struct want merged[] = {
		{ "a", 0, DT_REG }, { "b", 1, DT_REG },
	};
	int t = new_dir(root_fd, "oupper");
	int fds[2] = { new_dir(t, "upper"), new_dir(t, "low") };

	make(fds[0], "a", 'f');
	make(fds[1], "a", 'd');
	make(fds[1], "b", 'f');
	expect(fds, 2, merged, NWANT(merged), "no mark yet");
	set_opaque(fds[0], "yes");
	CHECK_RC(merge_is_opaque(fds[0]), 0);
	expect(fds, 2, merged, NWANT(merged), "mark \"yes\"");
	set_opaque(fds[0], "n");
	CHECK_RC(merge_is_opaque(fds[0]), 0);
	expect(fds, 2, merged, NWANT(merged), "mark \"n\"");
	set_opaque(fds[0], "yx");
	CHECK_RC(merge_is_opaque(fds[0]), 0);
	set_opaque(fds[0], "y");
	CHECK_RC(merge_is_opaque(fds[0]), 1);
	CHECK_RC(merge_is_opaque(fds[1]), 0);
	expect(fds, 2, opaque, NWANT(opaque), "opaque upper");
	close_all(fds, 2);
	close(t);
}

/* An opaque middle: the upper and the middle merge, the bottom does not. */
static void test_opaque_middle(void)
{
	static const struct want want[] = {
		{ "m", 1, DT_DIR }, { "u", 0, DT_REG },
	};
	int t = new_dir(root_fd, "omiddle");
	int fds[3] = { new_dir(t, "upper"), new_dir(t, "mid"),
		       new_dir(t, "low") };

	make(fds[0], "u", 'f');
	make(fds[1], "m", 'd');
	make(fds[1], "gone", 'w');
	make(fds[2], "b", 'f');
	make(fds[2], "m", 'f');
	make(fds[2], "u", 'd');
	set_opaque(fds[1], "y");
	expect(fds, 3, want, NWANT(want), "opaque middle");
	close_all(fds, 3);
	close(t);
}

/* ".wsfs-" names are hidden in every layer, whatever their type; names
** that merely look alike are not. */
static void test_internal(void)
{
	static const struct want want[] = {
		{ ".wsfs", 1, DT_REG }, { ".wsfs_x", 2, DT_REG },
		{ "a.wsfs-", 0, DT_REG }, { "x", 2, DT_REG },
	};
	static const char *const kinds = "fdlpw";
	int t = new_dir(root_fd, "internal");
	int fds[3] = { new_dir(t, "upper"), new_dir(t, "mid"),
		       new_dir(t, "low") };
	char name[64];
	size_t i, k;

	for (i = 0; i < 3; i++) {
		for (k = 0; kinds[k]; k++) {
			snprintf(name, sizeof(name), ".wsfs-%c%zu", kinds[k],
				 i);
			make(fds[i], name, kinds[k]);
		}
		make(fds[i], ".wsfs-work", 'd');
		make(fds[i], ".wsfs-", 'f');
	}
	make(fds[0], "a.wsfs-", 'f');
	make(fds[1], ".wsfs", 'f');
	make(fds[2], ".wsfs_x", 'f');
	make(fds[2], "x", 'f');
	CHECK(merge_is_internal(".wsfs-") && merge_is_internal(".wsfs-work"),
	      "internal names not recognised");
	CHECK(!merge_is_internal(".wsfs") && !merge_is_internal("a.wsfs-") &&
	      !merge_is_internal(".WSFS-x"), "internal names too broad");
	expect(fds, 3, want, NWANT(want), "internal names");
	close_all(fds, 3);
	close(t);
}

/* Absent layers (-1) are skipped, and layer indexes still count them. */
static void test_absent(void)
{
	static const struct want want[] = {
		{ "a", 1, DT_REG }, { "b", 3, DT_DIR },
	};
	int t = new_dir(root_fd, "absent");
	int fds[4] = { -1, new_dir(t, "mid"), -1, new_dir(t, "low") };
	int none[2] = { -1, -1 };
	struct merge_list l;

	make(fds[1], "a", 'f');
	make(fds[1], "c", 'w');
	make(fds[3], "a", 'd');
	make(fds[3], "b", 'd');
	make(fds[3], "c", 'f');
	expect(fds, 4, want, NWANT(want), "absent upper and middle");
	list_ok(none, 2, &l);
	CHECK(l.n == 0 && l.v == NULL, "all absent: %zu entries", l.n);
	merge_list_free(&l);
	list_ok(none, 0, &l);
	CHECK(l.n == 0 && l.v == NULL, "no layers: %zu entries", l.n);
	merge_list_free(&l);
	CHECK_RC(merge_is_empty(none, 2), 1);
	CHECK_RC(merge_is_empty(fds, 4), 0);
	close_all(fds, 4);
	close(t);
}

/* Empty directories list nothing; a whiteout that hides nothing is not
** listed either, wherever it is. */
static void test_empty_and_lone_whiteouts(void)
{
	static const struct want want[] = { { "real", 1, DT_REG } };
	int t = new_dir(root_fd, "empty");
	int fds[3] = { new_dir(t, "upper"), new_dir(t, "mid"),
		       new_dir(t, "low") };
	struct merge_list l;

	list_ok(fds, 3, &l);
	CHECK(l.n == 0 && l.v == NULL, "empty stack: %zu entries", l.n);
	merge_list_free(&l);
	CHECK_RC(merge_is_empty(fds, 3), 1);

	make(fds[0], "ghost", 'w');
	make(fds[2], "deep", 'w');
	list_ok(fds, 3, &l);
	CHECK(l.n == 0, "lone whiteouts: %zu entries, first [%s]", l.n,
	      l.n ? l.v[0].name : "");
	merge_list_free(&l);

	make(fds[1], "real", 'f');
	expect(fds, 3, want, NWANT(want), "lone whiteouts and a file");
	close_all(fds, 3);
	close(t);
}

/* A character device that is not 0:0 is an entry like any other, and as
** the higher one it hides the lower name. */
static void test_real_device(void)
{
	static const struct want want[] = {
		{ "dev", 0, DT_CHR }, { "m1", 0, DT_CHR },
		{ "m2", 0, DT_CHR }, { "x", 1, DT_REG },
	};
	int t = new_dir(root_fd, "device");
	int fds[2] = { new_dir(t, "upper"), new_dir(t, "low") };

	make(fds[0], "dev", 'c');
	CHECK(mknodat(fds[0], "m1", S_IFCHR | 0600, makedev(0, 1)) == 0,
	      "mknod: %s", strerror(errno));
	CHECK(mknodat(fds[0], "m2", S_IFCHR | 0600, makedev(1, 0)) == 0,
	      "mknod: %s", strerror(errno));
	make(fds[1], "dev", 'f');
	make(fds[1], "m1", 'f');
	make(fds[1], "x", 'f');
	CHECK_RC(merge_is_whiteout(fds[0], "dev"), 0);
	CHECK_RC(merge_is_whiteout(fds[0], "m1"), 0);
	CHECK_RC(merge_is_whiteout(fds[0], "m2"), 0);
	expect(fds, 2, want, NWANT(want), "real devices");
	CHECK_RC(merge_is_empty(fds, 1), 0);
	close_all(fds, 2);
	close(t);
}

/* Names are bytes: a newline, 0xff and other non-UTF-8 bytes, spaces.
** The order is strcmp's, bytes as unsigned char: "a\tb" before "a\nb"
** (0x09 < 0x0a), and 0xff last, not first as a negative char would be. */
static void test_odd_names(void)
{
	static const struct want want[] = {
		{ " lead", 1, DT_REG }, { "a\tb", 1, DT_DIR },
		{ "a\nb", 0, DT_REG }, { "z", 0, DT_REG },
		{ "\xc3\x28", 1, DT_REG }, { "\xff", 0, DT_DIR },
	};
	int t = new_dir(root_fd, "odd");
	int fds[2] = { new_dir(t, "upper"), new_dir(t, "low") };

	make(fds[0], "a\nb", 'f');
	make(fds[0], "\xff", 'd');
	make(fds[0], "\xfe\n", 'w');
	make(fds[0], "z", 'f');
	make(fds[1], "a\nb", 'd');
	make(fds[1], "\xff", 'f');
	make(fds[1], "\xfe\n", 'f');
	make(fds[1], "a\tb", 'd');
	make(fds[1], "\xc3\x28", 'f');
	make(fds[1], " lead", 'f');
	expect(fds, 2, want, NWANT(want), "odd names");
	close_all(fds, 2);
	close(t);
}

/* Emptiness for rmdir: whiteouts and internal names leave a directory
** empty, anything else in any merged layer does not. */
static void test_is_empty(void)
{
	int t = new_dir(root_fd, "isempty");
	int fds[3] = { new_dir(t, "upper"), new_dir(t, "mid"),
		       new_dir(t, "low") };
	int top[2] = { -1, fds[2] };

	make(fds[0], "a", 'w');
	make(fds[0], "b", 'w');
	make(fds[0], ".wsfs-tmp", 'f');
	make(fds[1], "a", 'f');
	make(fds[1], ".wsfs-work", 'd');
	make(fds[2], "b", 'd');
	make(fds[2], "c", 'w');
	CHECK_RC(merge_is_empty(fds, 3), 1);

	/* Something the whiteouts do not cover, at the bottom. */
	make(fds[2], "d", 'f');
	CHECK_RC(merge_is_empty(fds, 3), 0);
	CHECK_RC(merge_is_empty(top, 2), 0);
	/* ... but below an opaque middle it does not count. */
	set_opaque(fds[1], "y");
	CHECK_RC(merge_is_empty(fds, 3), 1);
	/* A file in the upper decides at once. */
	make(fds[0], "e", 'f');
	CHECK_RC(merge_is_empty(fds, 3), 0);
	CHECK_RC(merge_is_empty(fds, 1), 0);
	close_all(fds, 3);
	close(t);
}

static void test_depth(void)
{
	int t = new_dir(root_fd, "depth");
	int fds[3] = { new_dir(t, "upper"), new_dir(t, "mid"),
		       new_dir(t, "low") };
	int absent[3] = { -1, fds[1], fds[2] };
	int path = openat(fds[1], ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
	int bad[2] = { fds[0], 1000000 }, bad_top[2] = { 1000000, fds[1] };
	struct merge_list l;

	CHECK(path >= 0, "O_PATH: %s", strerror(errno));
	CHECK(merge_depth(fds, 0) == 0, "depth of nothing");
	CHECK(merge_depth(fds, 3) == 3, "no mark: depth %zd",
	      merge_depth(fds, 3));
	set_opaque(fds[2], "y");
	CHECK(merge_depth(fds, 3) == 3, "opaque bottom: depth %zd",
	      merge_depth(fds, 3));
	set_opaque(fds[1], "y");
	CHECK(merge_depth(fds, 3) == 2, "opaque middle: depth %zd",
	      merge_depth(fds, 3));
	CHECK(merge_depth(absent, 3) == 2, "absent upper: depth %zd",
	      merge_depth(absent, 3));
	CHECK_RC(merge_is_opaque(path), 1);
	set_opaque(fds[0], "y");
	CHECK(merge_depth(fds, 3) == 1, "opaque upper: depth %zd",
	      merge_depth(fds, 3));
	CHECK(merge_depth(fds, 1) == 1, "one layer: depth %zd",
	      merge_depth(fds, 1));

	/* A descriptor that is not open is an error, not "not opaque". */
	CHECK_RC(merge_is_opaque(1000000), -EBADF);
	CHECK(merge_depth(bad_top, 2) == -EBADF, "bad descriptor: depth %zd",
	      merge_depth(bad_top, 2));
	CHECK(fremovexattr(fds[0], MERGE_OPAQUE_XATTR) == 0, "removexattr: %s",
	      strerror(errno));
	CHECK_RC(merge_list_dirs(bad, 2, &l), -EBADF);
	CHECK(l.n == 0 && l.v == NULL, "failed listing has entries");
	CHECK_RC(merge_is_empty(bad, 2), -EBADF);
	CHECK(close(path) == 0, "close");
	close_all(fds, 3);
	close(t);
}

/* Three layers of MANY entries, overlapping by half: layer 0 holds
** n[0, MANY) with every tenth a whiteout, layer 1 n[MANY/2, MANY*3/2),
** layer 2 n[MANY, 2*MANY).  Each name's winner is known, so every entry
** is checked, not only the count. */
static void test_many(void)
{
	int t = new_dir(root_fd, "many");
	int fds[3] = { new_dir(t, "upper"), new_dir(t, "mid"),
		       new_dir(t, "low") };
	struct merge_list l;
	char name[32];
	size_t i, k, want = 0;
	long long t0, ms;

	for (i = 0; i < 2 * MANY; i++) {
		snprintf(name, sizeof(name), "n%05zu", i);
		if (i < MANY)
			make(fds[0], name, i % 10 == 9 ? 'w' : 'f');
		if (i >= MANY / 2 && i < MANY * 3 / 2)
			make(fds[1], name, 'd');
		if (i >= MANY)
			make(fds[2], name, 'f');
	}
	t0 = test_now_ms();
	list_ok(fds, 3, &l);
	ms = test_now_ms() - t0;
	printf("merged 3 x %d entries into %zu in %lld ms\n", MANY, l.n, ms);
	for (i = 0, k = 0; i < 2 * MANY; i++) {
		unsigned int layer = i < MANY ? 0 : i < MANY * 3 / 2 ? 1 : 2;

		if (layer == 0 && i % 10 == 9)
			continue;
		want++;
		snprintf(name, sizeof(name), "n%05zu", i);
		CHECK(k < l.n, "listing ends before %s", name);
		CHECK(streq(l.v[k].name, name), "entry %zu is %s, want %s", k,
		      l.v[k].name, name);
		CHECK(l.v[k].layer == layer, "%s from layer %u, want %u", name,
		      l.v[k].layer, layer);
		CHECK(l.v[k].d_type == (layer == 1 ? DT_DIR : DT_REG),
		      "%s has type %u", name, l.v[k].d_type);
		k++;
	}
	CHECK(want == 2 * MANY - MANY / 10, "test's own count %zu", want);
	CHECK(l.n == want, "%zu entries, want %zu", l.n, want);
	merge_list_free(&l);
	CHECK_RC(merge_is_empty(fds, 3), 0);
	close_all(fds, 3);
	close(t);
}

int main(void)
{
	size_t fds;

	if (geteuid() != 0) {
		printf("skipped: whiteouts (mknod 0:0) and trusted xattrs "
		       "need root\n");
		return SKIP_STATUS;
	}
	/* /tmp may be a tmpfs; layers are on a real disk. */
	if (setenv("TMPDIR", "/var/tmp", 0) != 0)
		return 1;
	setvbuf(stdout, NULL, _IOLBF, 0);
	root_fd = open(test_tmpdir(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	CHECK(root_fd >= 0, "open %s: %s", test_tmpdir(), strerror(errno));
	fds = count_fds();
	test_overlap();
	test_whiteout_upper();
	test_whiteout_middle();
	test_opaque_upper();
	test_opaque_middle();
	test_internal();
	test_absent();
	test_empty_and_lone_whiteouts();
	test_real_device();
	test_odd_names();
	test_is_empty();
	test_depth();
	test_many();
	CHECK(count_fds() == fds, "%zu descriptors at start, %zu at the end",
	      fds, count_fds());
	close(root_fd);
	return 0;
}
