/*
** Copy-up; the contract is in copyup.h.
**
** The source is read once, before anything is made: its stat, the values
** of the xattrs that will be copied and a symlink's target go into a
** struct source.  The charge is computed from that and the very same
** values are written, so what is reserved is what the copy holds even if
** someone changes the lower's xattrs meanwhile.
**
** The copy is made where no name leads to it yet: a regular file is an
** O_TMPFILE inode (or, on a filesystem without O_TMPFILE, a file created
** O_EXCL under a temporary name), anything else an entry under a temporary
** name, opened O_NOFOLLOW at once and checked for its type.  Everything
** after that acts on that descriptor: fchownat(AT_EMPTY_PATH), and chmod,
** *setxattr and utimensat on /proc/self/fd/N, which the kernel resolves to
** the inode itself, a symlink included (the f*() calls refuse the O_PATH
** descriptor a symlink, fifo or socket is held by).  So only the moment
** between making a temporary name and opening it goes by name, and the
** agent cannot reach those names (the ".wsfs-" rule of merge.h).
**
** Metadata goes in this order, each step for a reason:
**   owner   first, since chown clears the setuid and setgid bits and
**           security.capability;
**   xattrs  then, ACLs included; setting an access ACL rewrites the group
**           bits of the mode;
**   mode    after both, so the bits are exactly the source's;
**   times   last, since writing the data moved mtime and every other step
**           moves ctime (which cannot be set, and is not).
**
** Holes are kept: the copy is first extended to the source's size, which
** allocates nothing, and only the extents SEEK_DATA finds are copied.
** copy_file_range on a filesystem without reflinks reads a hole as zeros
** and would write them out.  Where copy_file_range is refused (another
** filesystem on older kernels, or none at all) a read/write loop takes over.
**
** Publishing: a linked O_TMPFILE inode goes straight to NAME with linkat,
** which never replaces; with replace, and NAME taken, it is linked under a
** temporary name and renamed over NAME.  A named copy is renamed with
** RENAME_NOREPLACE, or plainly with replace.  A directory cannot be renamed
** over a non-directory, so a directory replacing a whiteout swaps places
** with it (RENAME_EXCHANGE) and removes it from the temporary name; if what
** it swapped out is no whiteout after all (NAME changed since it was
** looked at), it swaps back and fails.
*/
#include "copyup.h"

#include "charge.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#define PROC_LEN 32		/* "/proc/self/fd/" and an int */
#define TEMP_LEN (sizeof(COPYUP_TEMP_PREFIX) + 16)	/* and 16 hex digits */
#define TEMP_TRIES 16
#define XATTR_TRIES 8		/* a list or value that keeps growing */
#define RW_BUF (128 * 1024)
#define CHUNK_MAX (1L << 30)	/* per copy_file_range call */
#define OURS_PREFIX "trusted.wsfs."

static const char *const acl_names[] = {
	"system.posix_acl_access", "system.posix_acl_default",
};

struct xattr {
	const char *name;	/* in struct source's names */
	char *value;		/* NULL when empty */
	size_t len;
};

struct source {
	int fd;			/* the caller's descriptor */
	struct stat st;
	char proc[PROC_LEN];	/* /proc/self/fd/<fd> */
	char *names;		/* listxattr()'s NUL-separated list */
	struct xattr *xattrs;	/* those that are copied */
	size_t nxattrs;
	char *target;		/* a symlink's, NUL-terminated */
	uint64_t bytes, inodes;	/* the charge */
};

/* The copy being built. */
struct copy {
	const struct copyup_req *req;
	const struct source *src;
	int fd;			/* O_TMPFILE, the directory, or O_PATH */
	char proc[PROC_LEN];
	int tmpfile;		/* fd is an O_TMPFILE inode */
	char temp[TEMP_LEN];	/* the copy's temporary name, "" if none */
	int in_place;		/* NAME is the copy */
};

/* Data copying state of a regular file. */
struct data {
	int in, out;
	int slow;		/* copy_file_range refused: read and write */
	char *buf;		/* RW_BUF bytes, once slow */
};

static void proc_path(int fd, char buf[PROC_LEN])
{
	snprintf(buf, PROC_LEN, "/proc/self/fd/%d", fd);
}

static int has_prefix(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

static int name_valid(const char *name)
{
	return name && name[0] != '\0' && strchr(name, '/') == NULL &&
	       strcmp(name, ".") != 0 && strcmp(name, "..") != 0;
}

static int xattr_copied(const char *name)
{
	if (has_prefix(name, OURS_PREFIX))
		return 0;
	return has_prefix(name, "user.") || has_prefix(name, "trusted.") ||
	       has_prefix(name, "security.") ||
	       has_prefix(name, "system.posix_acl_");
}

/* ---- Reading the source ---- */

/* The xattr list of PATH (NAME NULL) or the value of NAME, into a new
** buffer *OUT of *LEN bytes; *OUT is NULL when empty.  A filesystem without
** xattrs has an empty list. */
static int fetch(const char *path, const char *name, char **out, size_t *len)
{
	int i;

	*out = NULL;
	*len = 0;
	for (i = 0; i < XATTR_TRIES; i++) {
		ssize_t n = name ? getxattr(path, name, NULL, 0) :
				   listxattr(path, NULL, 0);
		char *buf;

		if (n < 0)
			return !name && errno == ENOTSUP ? 0 : -errno;
		if (n == 0)
			return 0;
		buf = malloc((size_t)n);
		if (!buf)
			return -ENOMEM;
		n = name ? getxattr(path, name, buf, (size_t)n) :
			   listxattr(path, buf, (size_t)n);
		if (n > 0) {
			*out = buf;
			*len = (size_t)n;
			return 0;
		}
		free(buf);
		if (n == 0)
			return 0;
		/* ERANGE: it grew between the two calls. */
		if (errno != ERANGE)
			return -errno;
	}
	return -ESTALE;
}

/* The offset of the name after the one at OFF in LIST of LEN bytes. */
static size_t next_name(const char *list, size_t len, size_t off)
{
	return off + strnlen(list + off, len - off) + 1;
}

static int read_xattrs(struct source *src)
{
	size_t len, off, count = 0;
	int r;

	r = fetch(src->proc, NULL, &src->names, &len);
	if (r < 0 || !src->names)
		return r;
	for (off = 0; off < len; off = next_name(src->names, len, off))
		count++;
	src->xattrs = calloc(count, sizeof(*src->xattrs));
	if (!src->xattrs)
		return -ENOMEM;
	for (off = 0; off < len; off = next_name(src->names, len, off)) {
		struct xattr *x = &src->xattrs[src->nxattrs];
		const char *name = src->names + off;

		/* The last name of a list cut short would lack its NUL. */
		if (next_name(src->names, len, off) > len)
			return -EIO;
		if (!xattr_copied(name))
			continue;
		r = fetch(src->proc, name, &x->value, &x->len);
		/* Removed since the list was read: not copied, not charged. */
		if (r == -ENODATA)
			continue;
		if (r < 0)
			return r;
		x->name = name;
		src->nxattrs++;
	}
	return 0;
}

static int read_target(struct source *src)
{
	char buf[PATH_MAX];
	ssize_t n = readlinkat(src->fd, "", buf, sizeof(buf));

	if (n < 0)
		return -errno;
	if ((size_t)n >= sizeof(buf))
		return -ENAMETOOLONG;
	src->target = strndup(buf, (size_t)n);
	return src->target ? 0 : -ENOMEM;
}

static void source_charge(struct source *src)
{
	size_t i;

	src->bytes = charge_bytes(src->st.st_mode, src->st.st_size);
	for (i = 0; i < src->nxattrs; i++) {
		const struct xattr *x = &src->xattrs[i];

		if (xattr_charged(x->name))
			src->bytes += xattr_charge(strlen(x->name), x->len);
	}
	src->inodes = 1;
}

static void source_free(struct source *src)
{
	size_t i;

	for (i = 0; i < src->nxattrs; i++)
		free(src->xattrs[i].value);
	free(src->xattrs);
	free(src->names);
	free(src->target);
	memset(src, 0, sizeof(*src));
}

/* Fills SRC from FD; SRC is to be freed whatever this returns. */
static int source_read(int fd, struct source *src)
{
	int r;

	memset(src, 0, sizeof(*src));
	src->fd = fd;
	if (fstat(fd, &src->st) != 0)
		return -errno;
	/* wsfs refuses devices; sockets and fifos are only names. */
	if (S_ISCHR(src->st.st_mode) || S_ISBLK(src->st.st_mode))
		return -EPERM;
	proc_path(fd, src->proc);
	r = read_xattrs(src);
	if (r == 0 && S_ISLNK(src->st.st_mode))
		r = read_target(src);
	if (r == 0)
		source_charge(src);
	return r;
}

/* ---- Making the copy ---- */

static int temp_name(char name[TEMP_LEN])
{
	uint64_t rnd;
	ssize_t n = getrandom(&rnd, sizeof(rnd), 0);

	if (n != (ssize_t)sizeof(rnd))
		return n < 0 ? -errno : -EIO;
	snprintf(name, TEMP_LEN, COPYUP_TEMP_PREFIX "%016llx",
		 (unsigned long long)rnd);
	return 0;
}

/* Creates the copy's entry as C->temp: an empty directory, a fifo, a
** socket, the symlink, or (without O_TMPFILE) an empty file, which is
** opened in the same call. */
static int make_entry(struct copy *c)
{
	int dirfd = c->req->dst_dirfd;
	mode_t type = c->src->st.st_mode & S_IFMT;
	int r;

	switch (type) {
	case S_IFREG:
		c->fd = openat(dirfd, c->temp, O_WRONLY | O_CREAT | O_EXCL |
			       O_NOFOLLOW | O_CLOEXEC, 0600);
		return c->fd < 0 ? -errno : 0;
	case S_IFDIR:
		r = mkdirat(dirfd, c->temp, 0700);
		break;
	case S_IFLNK:
		r = symlinkat(c->src->target, dirfd, c->temp);
		break;
	case S_IFIFO:
	case S_IFSOCK:
		r = mknodat(dirfd, c->temp, type | 0600, 0);
		break;
	default:
		return -EPERM;
	}
	return r != 0 ? -errno : 0;
}

/* Makes the copy's entry under a new temporary name; on failure C->temp
** is "" (nothing to clean up). */
static int make_temp(struct copy *c)
{
	int i, r = -EEXIST;

	for (i = 0; i < TEMP_TRIES && r == -EEXIST; i++) {
		r = temp_name(c->temp);
		if (r == 0)
			r = make_entry(c);
	}
	if (r < 0)
		c->temp[0] = '\0';
	return r;
}

/* Opens the entry just made as C->temp, without following it, and checks
** it is of the type made: a directory for reading (so it can be synced),
** the rest O_PATH. */
static int open_temp(struct copy *c)
{
	mode_t type = c->src->st.st_mode & S_IFMT;
	int flags = O_NOFOLLOW | O_CLOEXEC;
	struct stat st;

	flags |= type == S_IFDIR ? O_RDONLY | O_DIRECTORY : O_PATH;
	c->fd = openat(c->req->dst_dirfd, c->temp, flags);
	if (c->fd < 0)
		return -errno;
	if (fstat(c->fd, &st) != 0)
		return -errno;
	return (st.st_mode & S_IFMT) == type ? 0 : -ESTALE;
}

/* The regular file's inode: O_TMPFILE where the filesystem has it. */
static int make_file(struct copy *c)
{
	c->fd = openat(c->req->dst_dirfd, ".", O_TMPFILE | O_WRONLY |
		       O_CLOEXEC, 0600);
	if (c->fd >= 0) {
		c->tmpfile = 1;
		return 0;
	}
	/* EISDIR: a kernel that predates O_TMPFILE saw O_DIRECTORY. */
	if (errno != EOPNOTSUPP && errno != EISDIR)
		return -errno;
	return make_temp(c);
}

static int create(struct copy *c)
{
	int r;

	if (S_ISREG(c->src->st.st_mode))
		r = make_file(c);
	else {
		r = make_temp(c);
		if (r == 0)
			r = open_temp(c);
	}
	if (c->fd >= 0)
		proc_path(c->fd, c->proc);
	return r;
}

/* ---- Data ---- */

/* Opens the source for reading through its magic link (O_NOFOLLOW would
** refuse the link itself), without touching its atime where allowed. */
static int open_source(const struct source *src, int *out)
{
	int flags = O_RDONLY | O_CLOEXEC | O_NOATIME;
	struct stat st;
	int fd, r = 0;

	fd = open(src->proc, flags);
	/* O_NOATIME needs the owner or CAP_FOWNER. */
	if (fd < 0 && errno == EPERM)
		fd = open(src->proc, flags & ~O_NOATIME);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) != 0)
		r = -errno;
	else if (st.st_dev != src->st.st_dev || st.st_ino != src->st.st_ino)
		r = -ESTALE;
	if (r < 0) {
		close(fd);
		return r;
	}
	*out = fd;
	return 0;
}

static ssize_t copy_rw(struct data *d, off_t off, off_t len)
{
	size_t want = len < RW_BUF ? (size_t)len : RW_BUF, done = 0;
	ssize_t n;

	if (!d->buf) {
		d->buf = malloc(RW_BUF);
		if (!d->buf)
			return -ENOMEM;
	}
	do
		n = pread(d->in, d->buf, want, off);
	while (n < 0 && errno == EINTR);
	if (n <= 0)
		return n < 0 ? -errno : 0;
	while (done < (size_t)n) {
		ssize_t w = pwrite(d->out, d->buf + done, (size_t)n - done,
				   off + (off_t)done);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		if (w == 0)
			return -EIO;
		done += (size_t)w;
	}
	return n;
}

/* Bytes copied at OFF by one call, 0 at the source's end, or -errno. */
static ssize_t copy_some(struct data *d, off_t off, off_t len)
{
	for (;;) {
		loff_t in = off, out = off;
		ssize_t n;

		if (d->slow)
			return copy_rw(d, off, len);
		n = copy_file_range(d->in, &in, d->out, &out,
				    (size_t)(len < CHUNK_MAX ? len : CHUNK_MAX),
				    0);
		if (n >= 0)
			return n;
		if (errno == EXDEV || errno == EOPNOTSUPP || errno == EINVAL ||
		    errno == ENOSYS)
			d->slow = 1;
		else if (errno != EINTR)
			return -errno;
	}
}

static int copy_range(struct data *d, off_t off, off_t len)
{
	while (len > 0) {
		ssize_t n = copy_some(d, off, len);

		if (n < 0)
			return (int)n;
		/* The source ends before the size it was charged for. */
		if (n == 0)
			return -ESTALE;
		off += n;
		len -= n;
	}
	return 0;
}

/* The next data extent of IN at or after POS and below SIZE: 1 with
** [*START, *END), or 0 when only holes are left.  A filesystem that cannot
** tell holes has all of it as one extent. */
static int next_extent(int in, off_t pos, off_t size, off_t *start,
		       off_t *end)
{
	off_t s = lseek(in, pos, SEEK_DATA), e;

	if (s < 0) {
		if (errno == ENXIO)
			return 0;
		if (errno != EINVAL)
			return -errno;
		*start = pos;
		*end = size;
		return 1;
	}
	if (s >= size)
		return 0;
	e = lseek(in, s, SEEK_HOLE);
	if (e < 0)
		return -errno;
	if (e <= s)
		return -ESTALE;
	*start = s;
	*end = e < size ? e : size;
	return 1;
}

static int copy_data(struct copy *c)
{
	struct data d = { .out = c->fd };
	off_t size = c->src->st.st_size, pos = 0;
	off_t start = 0, end = 0;
	int r;

	r = open_source(c->src, &d.in);
	if (r < 0)
		return r;
	/* The size first: what no extent covers stays a hole. */
	if (ftruncate(d.out, size) != 0)
		r = -errno;
	while (r == 0 && pos < size) {
		r = next_extent(d.in, pos, size, &start, &end);
		if (r <= 0)
			break;
		r = copy_range(&d, start, end - start);
		pos = end;
	}
	close(d.in);
	free(d.buf);
	return r;
}

/* ---- Metadata ---- */

static int has_xattr(const struct source *src, const char *name)
{
	size_t i;

	for (i = 0; i < src->nxattrs; i++) {
		if (strcmp(src->xattrs[i].name, name) == 0)
			return 1;
	}
	return 0;
}

/* An ACL the copy inherited from a default ACL of the upper directory is
** not the source's. */
static int drop_inherited_acls(struct copy *c)
{
	size_t i;

	for (i = 0; i < sizeof(acl_names) / sizeof(acl_names[0]); i++) {
		if (has_xattr(c->src, acl_names[i]))
			continue;
		if (removexattr(c->proc, acl_names[i]) != 0 &&
		    errno != ENODATA && errno != EOPNOTSUPP)
			return -errno;
	}
	return 0;
}

static int set_xattrs(struct copy *c)
{
	const struct copyup_req *req = c->req;
	size_t i;
	int r = 0;

	/* Symlinks never carry ACLs. */
	if (!S_ISLNK(c->src->st.st_mode))
		r = drop_inherited_acls(c);
	for (i = 0; r == 0 && i < c->src->nxattrs; i++) {
		const struct xattr *x = &c->src->xattrs[i];

		if (setxattr(c->proc, x->name, x->value, x->len, 0) != 0)
			r = -errno;
	}
	if (r == 0 && req->origin &&
	    setxattr(c->proc, COPYUP_ORIGIN_XATTR, req->origin,
		     req->origin_len, 0) != 0)
		r = -errno;
	return r;
}

static int set_meta(struct copy *c)
{
	const struct stat *st = &c->src->st;
	struct timespec ts[2] = { st->st_atim, st->st_mtim };
	int r;

	/* EPERM when not root: a copy with the wrong owner is no copy. */
	if (fchownat(c->fd, "", st->st_uid, st->st_gid, AT_EMPTY_PATH) != 0)
		return -errno;
	r = set_xattrs(c);
	if (r < 0)
		return r;
	/* A symlink has no mode of its own to set. */
	if (!S_ISLNK(st->st_mode) && chmod(c->proc, st->st_mode & 07777) != 0)
		return -errno;
	if (utimensat(AT_FDCWD, c->proc, ts, 0) != 0)
		return -errno;
	return 0;
}

/* ---- Publishing ---- */

static int sync_dir(int dirfd)
{
	int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int r = 0;

	if (fd < 0)
		return -errno;
	if (fsync(fd) != 0)
		r = -errno;
	close(fd);
	return r;
}

/* A whiteout is a 0:0 character device, as in merge.h. */
static int is_whiteout(const struct stat *st)
{
	return S_ISCHR(st->st_mode) && st->st_rdev == makedev(0, 0);
}

static int rename_temp(struct copy *c, unsigned int flags)
{
	int dirfd = c->req->dst_dirfd;

	if (renameat2(dirfd, c->temp, dirfd, c->req->name, flags) != 0)
		return -errno;
	c->temp[0] = '\0';
	c->in_place = 1;
	return 0;
}

/* Puts directory C->temp in place of the whiteout at NAME. */
static int replace_whiteout(struct copy *c)
{
	int dirfd = c->req->dst_dirfd;
	struct stat st;
	int r;

	if (renameat2(dirfd, c->temp, dirfd, c->req->name,
		      RENAME_EXCHANGE) != 0)
		return -errno;
	/* C->temp now names what NAME held. */
	if (fstatat(dirfd, c->temp, &st, AT_SYMLINK_NOFOLLOW) != 0)
		r = -errno;
	else
		r = is_whiteout(&st) ? 1 : -EEXIST;
	if (r > 0 && unlinkat(dirfd, c->temp, 0) == 0) {
		c->temp[0] = '\0';
		c->in_place = 1;
		return 0;
	}
	if (r > 0)
		r = -errno;
	if (renameat2(dirfd, c->temp, dirfd, c->req->name,
		      RENAME_EXCHANGE) != 0) {
		/* The exchange that just worked failed backwards: the copy
		** stays at NAME and what it replaced at C->temp, neither
		** removed, since neither may be ours to remove. */
		c->temp[0] = '\0';
		c->in_place = 1;
	}
	return r;
}

static int publish_dir(struct copy *c)
{
	struct stat st;

	if (!c->req->replace)
		return rename_temp(c, RENAME_NOREPLACE);
	if (fstatat(c->req->dst_dirfd, c->req->name, &st,
		    AT_SYMLINK_NOFOLLOW) != 0)
		return errno == ENOENT ? rename_temp(c, RENAME_NOREPLACE) :
					 -errno;
	/* The kernel refuses a directory that is not empty. */
	if (S_ISDIR(st.st_mode))
		return rename_temp(c, 0);
	/* Not a whiteout: EEXIST, unless NAME just went. */
	return is_whiteout(&st) ? replace_whiteout(c) :
				  rename_temp(c, RENAME_NOREPLACE);
}

static int link_tmpfile(struct copy *c, const char *name)
{
	if (linkat(AT_FDCWD, c->proc, c->req->dst_dirfd, name,
		   AT_SYMLINK_FOLLOW) != 0)
		return -errno;
	return 0;
}

/* Links the O_TMPFILE inode as NAME; with replace and NAME taken, under a
** temporary name first, renamed over NAME, since linkat never replaces. */
static int publish_tmpfile(struct copy *c)
{
	int i, r = link_tmpfile(c, c->req->name);

	if (r == 0)
		c->in_place = 1;
	if (r != -EEXIST || !c->req->replace)
		return r;
	for (i = 0; i < TEMP_TRIES && r == -EEXIST; i++) {
		r = temp_name(c->temp);
		if (r == 0)
			r = link_tmpfile(c, c->temp);
	}
	if (r < 0) {
		c->temp[0] = '\0';
		return r;
	}
	return rename_temp(c, 0);
}

static int publish(struct copy *c)
{
	if (c->tmpfile)
		return publish_tmpfile(c);
	if (S_ISDIR(c->src->st.st_mode))
		return publish_dir(c);
	return rename_temp(c, c->req->replace ? 0 : RENAME_NOREPLACE);
}

/* ---- The whole ---- */

static int copy_entry(const struct copyup_req *req, const struct source *src)
{
	struct copy c = { .req = req, .src = src, .fd = -1 };
	int r;

	r = create(&c);
	if (r == 0 && S_ISREG(src->st.st_mode))
		r = copy_data(&c);
	if (r == 0)
		r = set_meta(&c);
	/* A symlink, fifo or socket has no data and an O_PATH descriptor
	** fsync refuses; its inode goes to disk with the directory's
	** journal commit on ext4 and xfs. */
	if (r == 0 && req->fsync && (S_ISREG(src->st.st_mode) ||
				     S_ISDIR(src->st.st_mode)) &&
	    fsync(c.fd) != 0)
		r = -errno;
	if (r == 0)
		r = publish(&c);
	/* Already failing: the first error is the one to report, and a
	** temporary name that cannot be removed is all that can be left. */
	if (r < 0 && c.temp[0] != '\0')
		(void)unlinkat(req->dst_dirfd, c.temp,
			       S_ISDIR(src->st.st_mode) ? AT_REMOVEDIR : 0);
	if (c.fd >= 0)
		close(c.fd);
	if (r < 0 && !c.in_place && req->reserve && req->release)
		req->release(src->bytes, src->inodes, req->arg);
	/* In place now, whatever the sync says: see copyup.h. */
	if (r == 0 && req->fsync)
		r = sync_dir(req->dst_dirfd);
	return r;
}

int copyup(const struct copyup_req *req)
{
	struct source src;
	int r;

	if (!name_valid(req->name) || (!req->origin && req->origin_len))
		return -EINVAL;
	r = source_read(req->src_fd, &src);
	if (r == 0 && req->reserve)
		r = req->reserve(src.bytes, src.inodes, req->arg);
	if (r == 0)
		r = copy_entry(req, &src);
	source_free(&src);
	return r;
}

int copyup_charge(int src_fd, uint64_t *bytes, uint64_t *inodes)
{
	struct source src;
	int r = source_read(src_fd, &src);

	if (r == 0) {
		*bytes = src.bytes;
		*inodes = src.inodes;
	}
	source_free(&src);
	return r;
}
