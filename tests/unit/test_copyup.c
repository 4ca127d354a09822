/*
** Unit tests for copyup.c, on real files under /var/tmp (or $TMPDIR).
**
** Each test builds a "lower" and an "upper" directory by hand, copies
** entries of the lower up with copyup() and compares the copy with its
** source field by field: data byte for byte, the hole map, owner, mode,
** nanosecond times and every xattr's value.  Every failure case then
** lists the upper directory, so a temporary name left behind shows up as
** an extra entry, and checks the quota hooks saw one reserve and, for a
** failure after it, one release of the same figures.
**
** The upper is opened O_PATH, as the daemon holds its directories.  Owners,
** trusted.* xattrs and device nodes need root: the test is skipped
** (exit 77) without it; one child drops to nobody to see a copy it cannot
** chown fail.  ACL and security.* cases are skipped where the
** filesystem refuses them; the fallback test (no O_TMPFILE, no
** copy_file_range, forced with seccomp in a child) where seccomp is not
** available.
*/
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "charge.h"
#include "copyup.h"
#include "testutil.h"

#define SKIP_STATUS 77
#define MiB (1024 * 1024)
#define LIST_MAX 4096
#define OWNER_UID 1234
#define OWNER_GID 5678

static const char origin[] = "layer=2\0handle=\x01\x02\xff";
#define ORIGIN_LEN (sizeof(origin) - 1)

static const struct timespec atime_want = { 1000000000, 123456789 };
static const struct timespec mtime_want = { 1500000000, 987654321 };

static int have_acl = 1;	/* the filesystem takes POSIX ACLs */
static int have_security = 1;	/* and security.* names for root */
static char outside[PATH_MAX];	/* what a planted symlink points at */

/* ---- Fixtures ---- */

struct env {
	char lower[PATH_MAX], upper[PATH_MAX];
	int lfd, ufd;		/* lfd for reading, ufd O_PATH */
};

/* What the quota hooks were called with. */
struct spy {
	int reserve_ret;
	int reserves, releases;
	uint64_t rbytes, rinodes, lbytes, linodes;
};

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

static void env_make(struct env *e, const char *name)
{
	char base[PATH_MAX];

	pathf(base, "%s/%s", test_tmpdir(), name);
	CHECK(mkdir(base, 0755) == 0, "mkdir %s: %s", base, strerror(errno));
	pathf(e->lower, "%s/lower", base);
	pathf(e->upper, "%s/upper", base);
	CHECK(mkdir(e->lower, 0755) == 0, "mkdir %s", e->lower);
	CHECK(mkdir(e->upper, 0755) == 0, "mkdir %s", e->upper);
	e->lfd = open(e->lower, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	e->ufd = open(e->upper, O_PATH | O_DIRECTORY | O_CLOEXEC);
	CHECK(e->lfd >= 0 && e->ufd >= 0, "open %s: %s", base,
	      strerror(errno));
}

static void env_close(struct env *e)
{
	close(e->lfd);
	close(e->ufd);
}

static int spy_reserve(uint64_t bytes, uint64_t inodes, void *arg)
{
	struct spy *s = arg;

	s->reserves++;
	s->rbytes = bytes;
	s->rinodes = inodes;
	return s->reserve_ret;
}

static void spy_release(uint64_t bytes, uint64_t inodes, void *arg)
{
	struct spy *s = arg;

	s->releases++;
	s->lbytes = bytes;
	s->linodes = inodes;
}

/* An O_PATH descriptor of NAME in DFD, as the daemon holds lower entries. */
static int src_open(int dfd, const char *name)
{
	int fd = openat(dfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);

	CHECK(fd >= 0, "open %s: %s", name, strerror(errno));
	return fd;
}

static struct copyup_req req_for(int src, int dst, const char *name,
				 struct spy *spy)
{
	struct copyup_req r = {
		.src_fd = src, .dst_dirfd = dst, .name = name,
		.origin = origin, .origin_len = ORIGIN_LEN,
		.reserve = spy_reserve, .release = spy_release, .arg = spy,
	};

	memset(spy, 0, sizeof(*spy));
	return r;
}

/* Copies NAME of E's lower to NAME in its upper, expecting WANT. */
static void copy_expect(struct env *e, const char *name, int replace,
			int want, struct spy *spy)
{
	int src = src_open(e->lfd, name);
	struct copyup_req r = req_for(src, e->ufd, name, spy);

	r.replace = replace;
	CHECK_RC(copyup(&r), want);
	close(src);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The names in directory PATH, sorted and joined with ','. */
static const char *listing(const char *path)
{
	static char out[LIST_MAX];
	char *names[64];
	size_t n = 0, i, len = 0;
	struct dirent *d;
	DIR *dir = opendir(path);

	CHECK(dir != NULL, "opendir %s: %s", path, strerror(errno));
	while ((d = readdir(dir)) != NULL) {
		if (strcmp(d->d_name, ".") == 0 || strcmp(d->d_name, "..") == 0)
			continue;
		CHECK(n < 64, "too many entries in %s", path);
		names[n] = strdup(d->d_name);
		CHECK(names[n] != NULL, "strdup");
		n++;
	}
	closedir(dir);
	qsort(names, n, sizeof(names[0]), cmp_str);
	out[0] = '\0';
	for (i = 0; i < n; i++) {
		int w = snprintf(out + len, sizeof(out) - len, "%s%s",
				 i ? "," : "", names[i]);

		CHECK(w >= 0 && (size_t)w < sizeof(out) - len, "listing");
		len += (size_t)w;
		free(names[i]);
	}
	return out;
}

static void check_listing(const char *path, const char *want)
{
	const char *got = listing(path);

	CHECK(streq(got, want), "%s holds [%s], want [%s]", path, got, want);
}

static void check_spy(const struct spy *s, int reserves, int releases,
		      uint64_t bytes, uint64_t inodes)
{
	CHECK(s->reserves == reserves, "%d reserves, want %d", s->reserves,
	      reserves);
	CHECK(s->releases == releases, "%d releases, want %d", s->releases,
	      releases);
	if (reserves)
		CHECK(s->rbytes == bytes && s->rinodes == inodes,
		      "reserved %lu bytes %lu inodes, want %lu %lu",
		      (unsigned long)s->rbytes, (unsigned long)s->rinodes,
		      (unsigned long)bytes, (unsigned long)inodes);
	if (releases)
		CHECK(s->lbytes == bytes && s->linodes == inodes,
		      "released %lu bytes %lu inodes, want %lu %lu",
		      (unsigned long)s->lbytes, (unsigned long)s->linodes,
		      (unsigned long)bytes, (unsigned long)inodes);
}

/* ---- Building sources ---- */

static void fill(unsigned char *buf, size_t len, unsigned int seed)
{
	size_t i;

	for (i = 0; i < len; i++)
		buf[i] = (unsigned char)((i * 131 + (i >> 12) * 7 + seed) ^
					 (i >> 8));
}

static void write_at(int fd, size_t len, off_t off, unsigned int seed)
{
	unsigned char *buf = malloc(len);

	CHECK(buf != NULL, "malloc");
	fill(buf, len, seed);
	CHECK(pwrite(fd, buf, len, off) == (ssize_t)len, "pwrite: %s",
	      strerror(errno));
	free(buf);
}

static void set_times(const char *path)
{
	struct timespec ts[2] = { atime_want, mtime_want };

	CHECK(utimensat(AT_FDCWD, path, ts, AT_SYMLINK_NOFOLLOW) == 0,
	      "utimensat %s: %s", path, strerror(errno));
}

static void set_owner(const char *path)
{
	CHECK(lchown(path, OWNER_UID, OWNER_GID) == 0, "lchown %s: %s", path,
	      strerror(errno));
}

static void set_x(const char *path, const char *name, const void *value,
		  size_t len)
{
	CHECK(lsetxattr(path, name, value, len, 0) == 0, "lsetxattr %s %s: %s",
	      path, name, strerror(errno));
}

/* A POSIX ACL xattr value (the kernel's little-endian layout). */
struct acl_ent {
	uint16_t tag, perm;
	uint32_t id;
};

#define ACL_USER_OBJ 0x01
#define ACL_USER 0x02
#define ACL_GROUP_OBJ 0x04
#define ACL_MASK 0x10
#define ACL_OTHER 0x20
#define NO_ID 0xffffffffu

static size_t acl_value(char *buf, uint32_t user, unsigned int user_perm,
			unsigned int mask)
{
	const struct acl_ent ents[] = {
		{ ACL_USER_OBJ, 7, NO_ID },
		{ ACL_USER, (uint16_t)user_perm, user },
		{ ACL_GROUP_OBJ, 5, NO_ID },
		{ ACL_MASK, (uint16_t)mask, NO_ID },
		{ ACL_OTHER, 1, NO_ID },
	};
	uint32_t version = 2;

	memcpy(buf, &version, sizeof(version));
	memcpy(buf + sizeof(version), ents, sizeof(ents));
	return sizeof(version) + sizeof(ents);
}

/* Sets ACL NAME on PATH; 0, or -1 where the filesystem has no ACLs. */
static int set_acl(const char *path, const char *name, uint32_t user,
		   unsigned int mask)
{
	char buf[64];
	size_t len = acl_value(buf, user, 6, mask);

	if (!have_acl)
		return -1;
	if (setxattr(path, name, buf, len, 0) != 0) {
		CHECK(errno == EOPNOTSUPP, "setxattr %s %s: %s", path, name,
		      strerror(errno));
		have_acl = 0;
		printf("skipped the ACL checks: no POSIX ACLs on %s\n", path);
		return -1;
	}
	return 0;
}

static void set_security(const char *path)
{
	if (!have_security)
		return;
	if (lsetxattr(path, "security.x", "sec", 3, 0) != 0) {
		have_security = 0;
		printf("skipped security.x: %s\n", strerror(errno));
	}
}

/* The lower's "file": 1 MiB of data, a 2 MiB hole, 2 MiB of data and a
** 1 MiB hole at the end; mode 02751, owner 1234:5678, user.a, trusted.b
** (binary), security.x, an access ACL, and trusted.wsfs.opaque, which is
** wsfs's own and must not be copied.  Returns its size. */
static off_t make_big_file(struct env *e, const char *name)
{
	static const char bin[] = "b\0\xff\x01";
	char p[PATH_MAX];
	int fd;

	pathf(p, "%s/%s", e->lower, name);
	fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	CHECK(fd >= 0, "create %s: %s", p, strerror(errno));
	write_at(fd, 1 * MiB, 0, 1);
	write_at(fd, 2 * MiB, 3 * MiB, 2);
	CHECK(ftruncate(fd, 6 * MiB) == 0, "ftruncate");
	CHECK(close(fd) == 0, "close");
	set_owner(p);
	set_x(p, "user.a", "alpha", 5);
	set_x(p, "trusted.b", bin, sizeof(bin) - 1);
	set_x(p, "trusted.wsfs.opaque", "y", 1);
	set_security(p);
	(void)set_acl(p, "system.posix_acl_access", OWNER_UID, 7);
	/* After chown (which clears setgid) and the ACL (which sets the
	** group bits); the ACL's mask becomes r-x. */
	CHECK(chmod(p, 02751) == 0, "chmod");
	set_times(p);
	return 6 * MiB;
}

/* ---- Comparing ---- */

static void lstat_ok(const char *path, struct stat *st)
{
	CHECK(lstat(path, st) == 0, "lstat %s: %s", path, strerror(errno));
}

/* The xattrs of PATH as "name=hex;" sorted by name, trusted.wsfs.* left
** out; *ORIGIN_OUT gets whether trusted.wsfs.origin is ORIGIN. */
static char *xattr_dump(const char *path, int *origin_out)
{
	char list[LIST_MAX], *names[64], *out;
	size_t n = 0, i, off, len = 0, cap = 65536;
	ssize_t ll = llistxattr(path, list, sizeof(list));

	CHECK(ll >= 0, "llistxattr %s: %s", path, strerror(errno));
	out = calloc(1, cap);
	CHECK(out != NULL, "calloc");
	*origin_out = 0;
	for (off = 0; off < (size_t)ll; off += strlen(list + off) + 1) {
		CHECK(n < 64, "too many xattrs");
		names[n++] = list + off;
	}
	qsort(names, n, sizeof(names[0]), cmp_str);
	for (i = 0; i < n; i++) {
		unsigned char val[1024];
		ssize_t vl = lgetxattr(path, names[i], val, sizeof(val));
		ssize_t j;

		CHECK(vl >= 0, "lgetxattr %s %s: %s", path, names[i],
		      strerror(errno));
		if (strcmp(names[i], COPYUP_ORIGIN_XATTR) == 0) {
			*origin_out = vl == (ssize_t)ORIGIN_LEN &&
				      memcmp(val, origin, ORIGIN_LEN) == 0;
			continue;
		}
		if (strncmp(names[i], "trusted.wsfs.", 13) == 0)
			continue;
		len += (size_t)snprintf(out + len, cap - len, "%s=", names[i]);
		for (j = 0; j < vl; j++)
			len += (size_t)snprintf(out + len, cap - len, "%02x",
						val[j]);
		len += (size_t)snprintf(out + len, cap - len, ";");
		CHECK(len < cap, "xattr dump too long");
	}
	return out;
}

/* Owner, type and mode, nanosecond times and xattrs of DST are SRC's, and
** DST carries the origin. */
static void check_meta(const char *src, const char *dst)
{
	struct stat a, b;
	char *xa, *xb;
	int oa, ob;

	lstat_ok(src, &a);
	lstat_ok(dst, &b);
	CHECK(a.st_ino != b.st_ino, "%s is %s itself", dst, src);
	CHECK(a.st_mode == b.st_mode, "%s mode %o, source %o", dst,
	      (unsigned int)b.st_mode, (unsigned int)a.st_mode);
	CHECK(a.st_uid == b.st_uid && a.st_gid == b.st_gid,
	      "%s owner %u:%u, source %u:%u", dst, (unsigned int)b.st_uid,
	      (unsigned int)b.st_gid, (unsigned int)a.st_uid,
	      (unsigned int)a.st_gid);
	CHECK(a.st_size == b.st_size || S_ISDIR(a.st_mode),
	      "%s size %ld, source %ld", dst, (long)b.st_size,
	      (long)a.st_size);
	CHECK(b.st_mtim.tv_sec == mtime_want.tv_sec &&
	      b.st_mtim.tv_nsec == mtime_want.tv_nsec,
	      "%s mtime %ld.%09ld", dst, (long)b.st_mtim.tv_sec,
	      b.st_mtim.tv_nsec);
	CHECK(b.st_atim.tv_sec == atime_want.tv_sec &&
	      b.st_atim.tv_nsec == atime_want.tv_nsec,
	      "%s atime %ld.%09ld", dst, (long)b.st_atim.tv_sec,
	      b.st_atim.tv_nsec);
	xa = xattr_dump(src, &oa);
	xb = xattr_dump(dst, &ob);
	CHECK(streq(xa, xb), "%s xattrs [%s], source [%s]", dst, xb, xa);
	CHECK(ob, "%s lacks the origin", dst);
	free(xa);
	free(xb);
}

static int has_xattr(const char *path, const char *name)
{
	return lgetxattr(path, name, NULL, 0) >= 0;
}

/* Bytes of the two files are equal, and so are their maps of data and
** holes (SEEK_DATA/SEEK_HOLE). */
static void check_data(const char *src, const char *dst)
{
	int a = open(src, O_RDONLY | O_CLOEXEC), b = open(dst, O_RDONLY |
							  O_CLOEXEC);
	char *ba = malloc(MiB), *bb = malloc(MiB);
	off_t off = 0, size, pa, pb;

	CHECK(a >= 0 && b >= 0 && ba && bb, "open %s, %s", src, dst);
	size = lseek(a, 0, SEEK_END);
	CHECK(size == lseek(b, 0, SEEK_END), "%s has another size", dst);
	while (off < size) {
		ssize_t na = pread(a, ba, MiB, off);
		ssize_t nb = pread(b, bb, MiB, off);

		CHECK(na > 0 && na == nb, "read at %ld", (long)off);
		CHECK(memcmp(ba, bb, (size_t)na) == 0,
		      "%s differs in the MiB at %ld", dst, (long)off);
		off += na;
	}
	for (off = 0; off < size;) {
		pa = lseek(a, off, SEEK_DATA);
		pb = lseek(b, off, SEEK_DATA);
		CHECK(pa == pb, "data after %ld: source %ld, copy %ld",
		      (long)off, (long)pa, (long)pb);
		if (pa < 0)
			break;
		pa = lseek(a, pa, SEEK_HOLE);
		pb = lseek(b, pb, SEEK_HOLE);
		CHECK(pa == pb, "hole after %ld: source %ld, copy %ld",
		      (long)off, (long)pa, (long)pb);
		off = pa;
	}
	free(ba);
	free(bb);
	close(a);
	close(b);
}

/* ---- Tests ---- */

static void test_regular(void)
{
	struct env e;
	struct spy spy;
	struct copyup_req r;
	struct stat st;
	char src[PATH_MAX], dst[PATH_MAX];
	uint64_t bytes, inodes, want;
	int fd;

	env_make(&e, "regular");
	make_big_file(&e, "file");
	want = charge_data(6 * MiB) + xattr_charge(6, 5);
	fd = src_open(e.lfd, "file");
	CHECK_RC(copyup_charge(fd, &bytes, &inodes), 0);
	CHECK(bytes == want && inodes == 1, "charge %lu bytes %lu inodes, "
	      "want %lu 1", (unsigned long)bytes, (unsigned long)inodes,
	      (unsigned long)want);
	r = req_for(fd, e.ufd, "file", &spy);
	r.fsync = 1;
	CHECK_RC(copyup(&r), 0);
	close(fd);
	check_spy(&spy, 1, 0, want, 1);

	pathf(src, "%s/file", e.lower);
	pathf(dst, "%s/file", e.upper);
	check_listing(e.upper, "file");
	check_meta(src, dst);
	/* Read with O_NOATIME: the source's atime (older than its mtime,
	** which relatime would update) is untouched.  Checked before
	** check_data reads it. */
	lstat_ok(src, &st);
	CHECK(st.st_atim.tv_sec == atime_want.tv_sec &&
	      st.st_atim.tv_nsec == atime_want.tv_nsec,
	      "copying moved the source's atime");
	check_data(src, dst);
	lstat_ok(dst, &st);
	CHECK(st.st_nlink == 1, "copy has %lu links",
	      (unsigned long)st.st_nlink);
	CHECK(st.st_mode == (S_IFREG | 02751), "mode %o",
	      (unsigned int)st.st_mode);
	CHECK(has_xattr(dst, "user.a") && has_xattr(dst, "trusted.b"),
	      "user.a or trusted.b missing");
	CHECK(!have_acl || has_xattr(dst, "system.posix_acl_access"),
	      "the ACL was not copied");
	CHECK(!have_security || has_xattr(dst, "security.x"),
	      "security.x was not copied");
	CHECK(!has_xattr(dst, "trusted.wsfs.opaque"),
	      "wsfs's own xattr was copied");
	env_close(&e);
}

/* An empty file, in an upper whose default ACL the copy would inherit. */
static void test_empty_file(void)
{
	struct env e;
	struct spy spy;
	char src[PATH_MAX], dst[PATH_MAX];
	int fd;

	env_make(&e, "empty");
	(void)set_acl(e.upper, "system.posix_acl_default", OWNER_UID, 7);
	pathf(src, "%s/empty", e.lower);
	fd = open(src, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	CHECK(fd >= 0, "create %s", src);
	close(fd);
	set_owner(src);
	CHECK(chmod(src, 0640) == 0, "chmod");
	set_times(src);
	copy_expect(&e, "empty", 0, 0, &spy);
	check_spy(&spy, 1, 0, 0, 1);
	pathf(dst, "%s/empty", e.upper);
	check_listing(e.upper, "empty");
	check_meta(src, dst);
	CHECK(!has_xattr(dst, "system.posix_acl_access"),
	      "the copy kept an ACL inherited from the upper");
	env_close(&e);
}

static void test_directory(void)
{
	struct env e;
	struct spy spy;
	char src[PATH_MAX], dst[PATH_MAX], p[PATH_MAX];

	env_make(&e, "dir");
	(void)set_acl(e.upper, "system.posix_acl_default", 4321, 7);
	pathf(src, "%s/dir", e.lower);
	CHECK(mkdir(src, 0700) == 0, "mkdir %s", src);
	pathf(p, "%s/child", src);
	CHECK(mknod(p, S_IFREG | 0644, 0) == 0, "mknod %s", p);
	pathf(p, "%s/sub", src);
	CHECK(mkdir(p, 0755) == 0, "mkdir %s", p);
	set_owner(src);
	set_x(src, "user.d", "delta", 5);
	set_x(src, "trusted.e", "", 0);
	(void)set_acl(src, "system.posix_acl_default", OWNER_UID, 7);
	CHECK(chmod(src, 03775) == 0, "chmod");
	set_times(src);

	copy_expect(&e, "dir", 0, 0, &spy);
	check_spy(&spy, 1, 0, QUOTA_BLOCK + xattr_charge(6, 5), 1);
	pathf(dst, "%s/dir", e.upper);
	check_listing(e.upper, "dir");
	/* Before anything reads the copy, which would move its atime. */
	check_meta(src, dst);
	check_listing(dst, "");
	CHECK(has_xattr(dst, "trusted.e"), "an empty xattr was not copied");
	CHECK(!has_xattr(dst, "system.posix_acl_access"),
	      "the copy kept an access ACL inherited from the upper");
	env_close(&e);
}

static void test_symlink(void)
{
	struct env e;
	struct spy spy;
	char src[PATH_MAX], dst[PATH_MAX], target[PATH_MAX];
	ssize_t n;

	env_make(&e, "symlink");
	pathf(src, "%s/sl", e.lower);
	CHECK(symlink("some/where/../x", src) == 0, "symlink %s", src);
	set_owner(src);
	set_x(src, "trusted.s", "sym", 3);
	set_times(src);
	copy_expect(&e, "sl", 0, 0, &spy);
	check_spy(&spy, 1, 0, QUOTA_BLOCK, 1);
	pathf(dst, "%s/sl", e.upper);
	check_listing(e.upper, "sl");
	/* Before readlink, which moves the copy's atime. */
	check_meta(src, dst);
	n = readlink(dst, target, sizeof(target) - 1);
	CHECK(n >= 0, "readlink %s: %s", dst, strerror(errno));
	target[n] = '\0';
	CHECK(streq(target, "some/where/../x"), "target [%s]", target);
	env_close(&e);
}

static void test_fifo_socket(void)
{
	struct env e;
	struct spy spy;
	char src[PATH_MAX], dst[PATH_MAX];

	env_make(&e, "special");
	pathf(src, "%s/fifo", e.lower);
	CHECK(mkfifo(src, 0600) == 0, "mkfifo %s", src);
	set_owner(src);
	set_x(src, "trusted.f", "fifo", 4);
	CHECK(chmod(src, 0604) == 0, "chmod");
	set_times(src);
	copy_expect(&e, "fifo", 0, 0, &spy);
	check_spy(&spy, 1, 0, 0, 1);
	pathf(dst, "%s/fifo", e.upper);
	check_meta(src, dst);

	pathf(src, "%s/sock", e.lower);
	CHECK(mknod(src, S_IFSOCK | 0600, 0) == 0, "mknod %s", src);
	set_owner(src);
	CHECK(chmod(src, 0755) == 0, "chmod");
	set_times(src);
	copy_expect(&e, "sock", 0, 0, &spy);
	pathf(dst, "%s/sock", e.upper);
	check_meta(src, dst);
	check_listing(e.upper, "fifo,sock");
	env_close(&e);
}

static void test_device_refused(void)
{
	struct env e;
	struct spy spy;
	uint64_t bytes, inodes;
	char p[PATH_MAX];
	int fd;

	env_make(&e, "device");
	pathf(p, "%s/null", e.lower);
	CHECK(mknod(p, S_IFCHR | 0666, makedev(1, 3)) == 0, "mknod %s", p);
	pathf(p, "%s/wh", e.lower);
	CHECK(mknod(p, S_IFCHR, makedev(0, 0)) == 0, "mknod %s", p);
	pathf(p, "%s/blk", e.lower);
	CHECK(mknod(p, S_IFBLK | 0600, makedev(7, 0)) == 0, "mknod %s", p);
	copy_expect(&e, "null", 0, -EPERM, &spy);
	check_spy(&spy, 0, 0, 0, 0);
	copy_expect(&e, "wh", 1, -EPERM, &spy);
	copy_expect(&e, "blk", 0, -EPERM, &spy);
	check_spy(&spy, 0, 0, 0, 0);
	fd = src_open(e.lfd, "null");
	CHECK_RC(copyup_charge(fd, &bytes, &inodes), -EPERM);
	close(fd);
	check_listing(e.upper, "");
	env_close(&e);
}

/* The lower entries every failure case is tried with: one per way of
** being made and published. */
static const char *const kinds[] = { "file", "empty", "dir", "sl", "fifo" };
#define NKINDS (sizeof(kinds) / sizeof(kinds[0]))

static void make_kinds(struct env *e)
{
	char p[PATH_MAX];
	int fd;

	make_big_file(e, "file");
	pathf(p, "%s/empty", e->lower);
	fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	CHECK(fd >= 0, "create %s", p);
	close(fd);
	pathf(p, "%s/dir", e->lower);
	CHECK(mkdir(p, 0755) == 0, "mkdir %s", p);
	pathf(p, "%s/dir/child", e->lower);
	CHECK(mknod(p, S_IFREG | 0644, 0) == 0, "mknod %s", p);
	pathf(p, "%s/sl", e->lower);
	CHECK(symlink("target", p) == 0, "symlink %s", p);
	pathf(p, "%s/fifo", e->lower);
	CHECK(mkfifo(p, 0644) == 0, "mkfifo %s", p);
}

static void charge_of(struct env *e, const char *name, uint64_t *bytes,
		      uint64_t *inodes)
{
	int fd = src_open(e->lfd, name);

	CHECK_RC(copyup_charge(fd, bytes, inodes), 0);
	close(fd);
}

/* NAME in the upper holds "precious", as a file. */
static void make_precious(struct env *e, const char *name)
{
	char p[PATH_MAX];
	int fd;

	pathf(p, "%s/%s", e->upper, name);
	fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	CHECK(fd >= 0 && write(fd, "precious", 8) == 8, "create %s", p);
	close(fd);
}

static void check_precious(struct env *e, const char *name)
{
	char p[PATH_MAX], buf[16];
	ssize_t n;
	int fd;

	pathf(p, "%s/%s", e->upper, name);
	fd = open(p, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	CHECK(fd >= 0, "open %s: %s", p, strerror(errno));
	n = read(fd, buf, sizeof(buf));
	close(fd);
	CHECK(n == 8 && memcmp(buf, "precious", 8) == 0,
	      "%s was changed", p);
}

static void make_whiteout(struct env *e, const char *name)
{
	CHECK(mknodat(e->ufd, name, S_IFCHR, makedev(0, 0)) == 0,
	      "mknod whiteout %s: %s", name, strerror(errno));
}

/* A taken NAME without replace: EEXIST, the entry untouched, nothing
** else left, and the reservation given back. */
static void test_exists(void)
{
	struct env e;
	struct spy spy;
	uint64_t bytes, inodes;
	size_t i;

	env_make(&e, "exists");
	make_kinds(&e);
	for (i = 0; i < NKINDS; i++) {
		make_precious(&e, kinds[i]);
		charge_of(&e, kinds[i], &bytes, &inodes);
		copy_expect(&e, kinds[i], 0, -EEXIST, &spy);
		check_spy(&spy, 1, 1, bytes, inodes);
		check_precious(&e, kinds[i]);
	}
	check_listing(e.upper, "dir,empty,fifo,file,sl");
	env_close(&e);
}

static void check_type(struct env *e, const char *name, mode_t type)
{
	char p[PATH_MAX];
	struct stat st;

	pathf(p, "%s/%s", e->upper, name);
	lstat_ok(p, &st);
	CHECK((st.st_mode & S_IFMT) == type, "%s has type %o, want %o", p,
	      (unsigned int)(st.st_mode & S_IFMT), (unsigned int)type);
}

static void test_replace(void)
{
	static const mode_t types[NKINDS] = { S_IFREG, S_IFREG, S_IFDIR,
					      S_IFLNK, S_IFIFO };
	struct env e;
	struct spy spy;
	char p[PATH_MAX], q[PATH_MAX];
	uint64_t bytes, inodes;
	size_t i;

	env_make(&e, "replace");
	make_kinds(&e);
	/* Every kind over a whiteout. */
	for (i = 0; i < NKINDS; i++) {
		make_whiteout(&e, kinds[i]);
		copy_expect(&e, kinds[i], 1, 0, &spy);
		check_spy(&spy, 1, 0, spy.rbytes, 1);
		check_type(&e, kinds[i], types[i]);
	}
	check_listing(e.upper, "dir,empty,fifo,file,sl");
	pathf(p, "%s/file", e.lower);
	pathf(q, "%s/file", e.upper);
	check_data(p, q);
	pathf(q, "%s/dir", e.upper);
	check_listing(q, "");

	/* A directory over an empty directory, not over a full one. */
	CHECK(mkdirat(e.ufd, "dir2", 0700) == 0, "mkdir");
	CHECK(renameat(e.lfd, "dir", e.lfd, "dir2") == 0, "rename");
	copy_expect(&e, "dir2", 1, 0, &spy);
	check_type(&e, "dir2", S_IFDIR);
	pathf(q, "%s/dir2", e.upper);
	check_listing(q, "");
	CHECK(mkdirat(e.ufd, "dir3", 0700) == 0, "mkdir");
	make_precious(&e, "dir3/keep");
	CHECK(renameat(e.lfd, "dir2", e.lfd, "dir3") == 0, "rename");
	charge_of(&e, "dir3", &bytes, &inodes);
	spy.rbytes = 0;
	{
		int src = src_open(e.lfd, "dir3"), r;
		struct copyup_req req = req_for(src, e.ufd, "dir3", &spy);

		req.replace = 1;
		r = copyup(&req);
		CHECK(r == -ENOTEMPTY || r == -EEXIST, "over a full directory: "
		      "%s", test_errname(r));
		close(src);
	}
	check_spy(&spy, 1, 1, bytes, inodes);
	check_precious(&e, "dir3/keep");
	/* A directory over anything else: EEXIST. */
	make_precious(&e, "dir4");
	CHECK(renameat(e.lfd, "dir3", e.lfd, "dir4") == 0, "rename");
	copy_expect(&e, "dir4", 1, -EEXIST, &spy);
	check_spy(&spy, 1, 1, bytes, inodes);
	check_precious(&e, "dir4");

	/* A file over a file replaces it; over a directory it cannot
	** (EISDIR, found after the copy was linked under a temporary name,
	** which must go). */
	make_precious(&e, "empty2");
	CHECK(renameat(e.lfd, "empty", e.lfd, "empty2") == 0, "rename");
	copy_expect(&e, "empty2", 1, 0, &spy);
	pathf(q, "%s/empty2", e.upper);
	{
		struct stat st;

		lstat_ok(q, &st);
		CHECK(S_ISREG(st.st_mode) && st.st_size == 0,
		      "the file was not replaced");
	}
	CHECK(mkdirat(e.ufd, "empty3", 0700) == 0, "mkdir");
	CHECK(renameat(e.lfd, "empty2", e.lfd, "empty3") == 0, "rename");
	charge_of(&e, "empty3", &bytes, &inodes);
	copy_expect(&e, "empty3", 1, -EISDIR, &spy);
	check_spy(&spy, 1, 1, bytes, inodes);
	check_listing(e.upper, "dir,dir2,dir3,dir4,empty,empty2,empty3,fifo,"
		      "file,sl");
	pathf(q, "%s/empty3", e.upper);
	check_listing(q, "");
	env_close(&e);
}

/* The reserve hook refuses: its error, nothing made, nothing released. */
static void test_quota_refused(void)
{
	struct env e;
	struct spy spy;
	size_t i;

	env_make(&e, "quota");
	make_kinds(&e);
	for (i = 0; i < NKINDS; i++) {
		int src = src_open(e.lfd, kinds[i]);
		struct copyup_req r = req_for(src, e.ufd, kinds[i], &spy);
		uint64_t bytes, inodes;

		spy.reserve_ret = -EDQUOT;
		CHECK_RC(copyup(&r), -EDQUOT);
		close(src);
		charge_of(&e, kinds[i], &bytes, &inodes);
		check_spy(&spy, 1, 0, bytes, inodes);
	}
	check_listing(e.upper, "");
	env_close(&e);
}

/* A failure after the data is in: an origin over the kernel's 64 KiB xattr
** limit.  Nothing is left, the reservation goes back; with replace, the
** whiteout it was to replace stays. */
static void test_late_failure(void)
{
	struct env e;
	struct spy spy;
	char *big = calloc(1, 65537);
	size_t i;
	int replace;

	CHECK(big != NULL, "calloc");
	env_make(&e, "late");
	make_kinds(&e);
	for (replace = 0; replace <= 1; replace++) {
		for (i = 0; replace && i < NKINDS; i++)
			make_whiteout(&e, kinds[i]);
		for (i = 0; i < NKINDS; i++) {
			int src = src_open(e.lfd, kinds[i]), r;
			struct copyup_req req = req_for(src, e.ufd, kinds[i],
							&spy);
			uint64_t bytes, inodes;

			req.origin = big;
			req.origin_len = 65537;
			req.replace = replace;
			req.fsync = replace;
			r = copyup(&req);
			CHECK(r == -E2BIG || r == -ERANGE || r == -ENOSPC,
			      "%s: %s", kinds[i], test_errname(r));
			close(src);
			charge_of(&e, kinds[i], &bytes, &inodes);
			check_spy(&spy, 1, 1, bytes, inodes);
			check_listing(e.upper, replace ?
				      "dir,empty,fifo,file,sl" : "");
		}
	}
	for (i = 0; i < NKINDS; i++)
		check_type(&e, kinds[i], S_IFCHR);
	free(big);
	env_close(&e);
}

static void test_bad_names(void)
{
	static const char *const bad[] = { "", ".", "..", "a/b", "/", "a/",
					   NULL };
	struct env e;
	struct spy spy;
	struct copyup_req r;
	size_t i;
	int src;

	env_make(&e, "names");
	make_kinds(&e);
	src = src_open(e.lfd, "file");
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		r = req_for(src, e.ufd, bad[i], &spy);
		r.replace = 1;
		CHECK(copyup(&r) == -EINVAL, "name [%s] accepted",
		      bad[i] ? bad[i] : "NULL");
		check_spy(&spy, 0, 0, 0, 0);
	}
	r = req_for(src, e.ufd, "file", &spy);
	r.origin = NULL;
	CHECK_RC(copyup(&r), -EINVAL);
	check_spy(&spy, 0, 0, 0, 0);
	close(src);
	check_listing(e.upper, "");
	check_listing(e.lower, "dir,empty,fifo,file,sl");
	env_close(&e);
}

/* A symlink planted at NAME in the upper is never followed: without
** replace every kind gets EEXIST, and the directory it points at stays
** empty; a file with replace replaces the link itself. */
static void test_symlink_at_name(void)
{
	struct env e;
	struct spy spy;
	char p[PATH_MAX], target[PATH_MAX];
	size_t i;
	ssize_t n;

	env_make(&e, "planted");
	make_kinds(&e);
	for (i = 0; i < NKINDS; i++) {
		pathf(p, "%s/%s", outside, kinds[i]);
		CHECK(symlinkat(p, e.ufd, kinds[i]) == 0, "symlink");
		copy_expect(&e, kinds[i], 0, -EEXIST, &spy);
		check_spy(&spy, 1, 1, spy.rbytes, 1);
		check_type(&e, kinds[i], S_IFLNK);
	}
	/* A directory does not replace a symlink either. */
	copy_expect(&e, "dir", 1, -EEXIST, &spy);
	check_listing(outside, "");
	check_listing(e.upper, "dir,empty,fifo,file,sl");

	pathf(p, "%s/file", outside);
	copy_expect(&e, "file", 1, 0, &spy);
	check_type(&e, "file", S_IFREG);
	check_listing(outside, "");
	pathf(p, "%s/dir", e.upper);
	n = readlink(p, target, sizeof(target) - 1);
	CHECK(n > 0, "readlink %s", p);
	target[n] = '\0';
	pathf(p, "%s/dir", outside);
	CHECK(streq(target, p), "the planted link now says [%s]", target);
	env_close(&e);
}

/* Without the right to chown, the copy fails rather than come out with
** the wrong owner, and leaves nothing.  The child becomes nobody; it works
** only on descriptors the parent opened, since the test's directory is
** 0700. */
static void unprivileged_child(struct env *e)
{
	static const char *const names[] = { "file", "dir", "fifo" };
	struct spy spy;
	size_t i;

	if (setgroups(0, NULL) != 0 || setresgid(65534, 65534, 65534) != 0 ||
	    setresuid(65534, 65534, 65534) != 0)
		_exit(2);
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		int src = src_open(e->lfd, names[i]);
		struct copyup_req r = req_for(src, e->ufd, names[i], &spy);

		/* No trusted.* origin, which nobody may set either: the
		** owner alone must fail it. */
		r.origin = NULL;
		r.origin_len = 0;
		CHECK_RC(copyup(&r), -EPERM);
		check_spy(&spy, 1, 1, spy.rbytes, 1);
		close(src);
	}
	_exit(0);
}

static void test_unprivileged(void)
{
	struct env e;
	char p[PATH_MAX];
	pid_t pid;
	int status, fd;

	env_make(&e, "nobody");
	CHECK(chown(e.upper, 65534, 65534) == 0, "chown %s", e.upper);
	pathf(p, "%s/file", e.lower);
	fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	CHECK(fd >= 0 && write(fd, "data", 4) == 4, "create %s", p);
	close(fd);
	set_owner(p);
	pathf(p, "%s/dir", e.lower);
	CHECK(mkdir(p, 0755) == 0, "mkdir %s", p);
	set_owner(p);
	pathf(p, "%s/fifo", e.lower);
	CHECK(mkfifo(p, 0644) == 0, "mkfifo %s", p);
	set_owner(p);
	pid = fork();
	CHECK(pid >= 0, "fork: %s", strerror(errno));
	if (pid == 0)
		unprivileged_child(&e);
	CHECK(waitpid(pid, &status, 0) == pid, "waitpid: %s", strerror(errno));
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	      "the unprivileged child failed (status %#x)", status);
	check_listing(e.upper, "");
	env_close(&e);
}

/* ---- Without O_TMPFILE and copy_file_range ---- */

#if defined(__x86_64__)
#define TEST_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define TEST_ARCH AUDIT_ARCH_AARCH64
#endif

#ifdef TEST_ARCH
/* openat with O_TMPFILE fails with EOPNOTSUPP, as on a filesystem without
** it, and copy_file_range with ENOSYS, as on an old kernel. */
static int deny_fast_paths(void)
{
	const unsigned int tmp = O_TMPFILE & ~O_DIRECTORY;
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
			 offsetof(struct seccomp_data, arch)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, TEST_ARCH, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
			 offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_copy_file_range, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_openat, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		/* The low half of the flags, on a little-endian machine. */
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
			 offsetof(struct seccomp_data, args[2])),
		BPF_STMT(BPF_ALU | BPF_AND | BPF_K, tmp),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, tmp, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EOPNOTSUPP),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = { sizeof(f) / sizeof(f[0]), f };

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
		return -1;
	return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog);
}

static void fallback_child(struct env *e)
{
	struct spy spy;
	char p[PATH_MAX], q[PATH_MAX];
	char *big = calloc(1, 65537);
	int src;

	CHECK(big != NULL, "calloc");
	if (deny_fast_paths() != 0)
		_exit(SKIP_STATUS);
	CHECK(openat(e->ufd, ".", O_TMPFILE | O_WRONLY, 0600) < 0 &&
	      errno == EOPNOTSUPP, "O_TMPFILE still works");
	CHECK(copy_file_range(0, NULL, 1, NULL, 1, 0) < 0 && errno == ENOSYS,
	      "copy_file_range still works");

	copy_expect(e, "file", 0, 0, &spy);
	pathf(p, "%s/file", e->lower);
	pathf(q, "%s/file", e->upper);
	check_meta(p, q);
	check_data(p, q);
	make_whiteout(e, "empty");
	copy_expect(e, "empty", 1, 0, &spy);
	check_type(e, "empty", S_IFREG);
	make_precious(e, "fifo");
	CHECK(renameat(e->lfd, "empty", e->lfd, "fifo") == 0, "rename");
	copy_expect(e, "fifo", 0, -EEXIST, &spy);
	check_spy(&spy, 1, 1, 0, 1);
	check_precious(e, "fifo");

	CHECK(renameat(e->lfd, "file", e->lfd, "late") == 0, "rename");
	src = src_open(e->lfd, "late");
	{
		struct copyup_req r = req_for(src, e->ufd, "late", &spy);

		r.origin = big;
		r.origin_len = 65537;
		CHECK(copyup(&r) < 0, "an oversized origin was set");
	}
	close(src);
	check_spy(&spy, 1, 1, spy.rbytes, 1);
	check_listing(e->upper, "empty,fifo,file");
	free(big);
	_exit(0);
}

static void test_fallbacks(void)
{
	struct env e;
	pid_t pid;
	int status;

	env_make(&e, "fallback");
	make_kinds(&e);
	pid = fork();
	CHECK(pid >= 0, "fork: %s", strerror(errno));
	if (pid == 0)
		fallback_child(&e);
	CHECK(waitpid(pid, &status, 0) == pid, "waitpid: %s", strerror(errno));
	if (WIFEXITED(status) && WEXITSTATUS(status) == SKIP_STATUS)
		printf("skipped the fallback test: no seccomp here\n");
	else
		CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		      "the fallback child failed (status %#x)", status);
	env_close(&e);
}
#else
static void test_fallbacks(void)
{
	printf("skipped the fallback test: no seccomp filter for this "
	       "architecture\n");
}
#endif

static size_t count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	size_t n = 0;

	CHECK(d != NULL, "opendir /proc/self/fd");
	while (readdir(d) != NULL)
		n++;
	closedir(d);
	return n;
}

int main(void)
{
	size_t fds;

	if (geteuid() != 0) {
		printf("skipped: copy-up sets owners and trusted.* xattrs, "
		       "which needs root\n");
		return SKIP_STATUS;
	}
	/* /tmp may be a tmpfs; uppers are on a real disk. */
	if (setenv("TMPDIR", "/var/tmp", 0) != 0)
		return 1;
	setvbuf(stdout, NULL, _IOLBF, 0);
	pathf(outside, "%s/outside", test_tmpdir());
	CHECK(mkdir(outside, 0755) == 0, "mkdir %s", outside);
	fds = count_fds();
	test_regular();
	test_empty_file();
	test_directory();
	test_symlink();
	test_fifo_socket();
	test_device_refused();
	test_exists();
	test_replace();
	test_quota_refused();
	test_late_failure();
	test_bad_names();
	test_symlink_at_name();
	test_unprivileged();
	test_fallbacks();
	CHECK(count_fds() == fds, "%zu descriptors at start, %zu at the end",
	      fds, count_fds());
	check_listing(outside, "");
	return 0;
}
