/*
** The reconciling scan (design in scan.h).
**
** Breadth-first over a queue of file handles: a directory is opened from
** its handle with open_by_handle_at(), read to the end with getdents64, and
** closed before the next one, so only the directory being read is open.
** Entries are examined with statx relative to that directory with
** AT_SYMLINK_NOFOLLOW; xattrs through /proc/self/fd/N/NAME, where only the
** last component is a name and l*xattr() does not follow it.
**
** Inodes with more than one link are remembered by number so each is
** charged once however many names it has.
*/
#include "scan.h"

#include "charge.h"
#include "xcharge.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <unistd.h>

#define HANDLE_MAX 128		/* MAX_HANDLE_SZ in the kernel */
#define DENTS_BUF (64 * 1024)
#define XATTR_LIST_MAX_LEN 65536
#define PROGRESS_EVERY 4096

struct handle {
	struct file_handle fh;
	unsigned char bytes[HANDLE_MAX];
};

struct queue {
	struct handle **items;
	size_t head, tail, cap;
};

struct inoset {
	uint64_t *slots;	/* 0 = empty; inode 0 never exists */
	size_t cap, count;
};

struct scan {
	int root_fd;		/* a real descriptor: O_PATH is refused as mount_fd */
	int root_mnt;
	struct queue q;
	struct inoset linked;
	struct scan_result res;
	scan_progress_fn progress;
	void *arg;
	char *dents;
	char *xlist;
	char *err;
	size_t errlen;
	int record;		/* rebuild the xattr charge table as we go */
};

struct linux_dirent64 {
	uint64_t d_ino;
	int64_t d_off;
	unsigned short d_reclen;
	unsigned char d_type;
	char d_name[];
};

static int fail(struct scan *s, int errnum, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(struct scan *s, int errnum, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(s->err, s->errlen, fmt, ap);
	va_end(ap);
	if (n >= 0 && (size_t)n < s->errlen)
		snprintf(s->err + n, s->errlen - (size_t)n, ": %s",
			 strerror(errnum));
	return -errnum;
}

static int queue_push(struct queue *q, struct handle *h)
{
	if (q->tail == q->cap) {
		size_t live = q->tail - q->head;

		if (q->head > q->cap / 2) {
			memmove(q->items, q->items + q->head, live * sizeof(*q->items));
		} else {
			size_t cap = q->cap ? q->cap * 2 : 1024;
			struct handle **items = realloc(q->items, cap * sizeof(*items));

			if (!items)
				return -ENOMEM;
			q->items = items;
			q->cap = cap;
			memmove(q->items, q->items + q->head, live * sizeof(*q->items));
		}
		q->head = 0;
		q->tail = live;
	}
	q->items[q->tail++] = h;
	return 0;
}

static struct handle *queue_pop(struct queue *q)
{
	return q->head == q->tail ? NULL : q->items[q->head++];
}

static void queue_free(struct queue *q)
{
	struct handle *h;

	while ((h = queue_pop(q)))
		free(h);
	free(q->items);
}

static size_t ino_slot(uint64_t ino, size_t cap)
{
	return (size_t)((ino * 0x9E3779B97F4A7C15ULL) >> 17) & (cap - 1);
}

/* Adds INO; returns 1 if it was new, 0 if seen before, -ENOMEM. */
static int inoset_add(struct inoset *set, uint64_t ino)
{
	size_t i;

	if ((set->count + 1) * 2 > set->cap) {
		size_t cap = set->cap ? set->cap * 2 : 4096, j;
		uint64_t *slots = calloc(cap, sizeof(*slots));

		if (!slots)
			return -ENOMEM;
		for (j = 0; j < set->cap; j++) {
			if (!set->slots[j])
				continue;
			for (i = ino_slot(set->slots[j], cap); slots[i];
			     i = (i + 1) & (cap - 1))
				;
			slots[i] = set->slots[j];
		}
		free(set->slots);
		set->slots = slots;
		set->cap = cap;
	}
	for (i = ino_slot(ino, set->cap); set->slots[i]; i = (i + 1) & (set->cap - 1)) {
		if (set->slots[i] == ino)
			return 0;
	}
	set->slots[i] = ino;
	set->count++;
	return 1;
}

/* The user.* xattr charge of NAME in directory DFD. Files whose xattrs
** cannot be listed (the backing fs has none) are charged nothing. */
static int xattr_bytes(struct scan *s, int dfd, const char *name, uint64_t *out)
{
	char path[64 + NAME_MAX];
	ssize_t len, off = 0;

	*out = 0;
	snprintf(path, sizeof(path), "/proc/self/fd/%d/%s", dfd, name);
	len = llistxattr(path, s->xlist, XATTR_LIST_MAX_LEN);
	if (len < 0)
		return errno == ENOTSUP || errno == ENOENT ? 0 : -errno;
	while (off < len) {
		const char *x = s->xlist + off;
		size_t n = strnlen(x, (size_t)(len - off));
		ssize_t v;

		off += (ssize_t)n + 1;
		if (!xattr_charged(x))
			continue;
		v = lgetxattr(path, x, NULL, 0);
		if (v < 0) {
			if (errno == ENODATA)
				continue;
			return -errno;
		}
		*out += xattr_charge(n, (size_t)v);
	}
	return 0;
}

static int charge_xattrs(struct scan *s, int dfd, const char *name, uint64_t ino)
{
	uint64_t bytes;
	int r = xattr_bytes(s, dfd, name, &bytes);

	if (r < 0)
		return fail(s, -r, "listing the xattrs of %s", name);
	if (bytes == 0)
		return 0;
	s->res.bytes += bytes;
	if (s->record && xcharge_set(ino, bytes) < 0)
		return fail(s, ENOMEM, "recording xattr charges");
	return 0;
}

static int visit_dir(struct scan *s, int dfd, const char *name)
{
	struct handle *h = malloc(sizeof(*h));
	struct stat st;
	int mnt, r;

	if (!h)
		return fail(s, ENOMEM, "queueing directories");
	h->fh.handle_bytes = HANDLE_MAX;
	if (name_to_handle_at(dfd, name, &h->fh, &mnt, 0) < 0) {
		r = errno;
		free(h);
		if (r == ENOENT)
			return 0;	/* removed under us by an operator */
		return fail(s, r, "taking a handle of directory %s", name);
	}
	if (mnt != s->root_mnt) {
		free(h);
		s->res.skipped++;
		return 0;
	}
	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		r = errno;
		free(h);
		return r == ENOENT ? 0 : fail(s, r, "stat of directory %s", name);
	}
	s->res.bytes += charge_bytes(S_IFDIR, 0);
	s->res.inodes++;
	r = charge_xattrs(s, dfd, name, (uint64_t)st.st_ino);
	if (r < 0 || (r = queue_push(&s->q, h)) < 0) {
		free(h);
		return r < 0 && r != -ENOMEM ? r : fail(s, ENOMEM, "queueing directories");
	}
	return 0;
}

static int visit_other(struct scan *s, int dfd, const char *name)
{
	struct statx stx;
	int r;

	if (statx(dfd, name, AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT,
		  STATX_TYPE | STATX_SIZE | STATX_NLINK | STATX_INO |
		  STATX_MNT_ID, &stx) < 0)
		return errno == ENOENT ? 0 : fail(s, errno, "stat of %s", name);
	if (S_ISDIR(stx.stx_mode))
		return visit_dir(s, dfd, name);
	/* A cow whiteout (a 0:0 device only the daemon makes) is bookkeeping,
	** not something the agent stored. */
	if (S_ISCHR(stx.stx_mode) && stx.stx_rdev_major == 0 &&
	    stx.stx_rdev_minor == 0)
		return 0;
	if ((stx.stx_mask & STATX_MNT_ID) && (int)stx.stx_mnt_id != s->root_mnt) {
		s->res.skipped++;
		return 0;
	}
	if (stx.stx_nlink > 1) {
		r = inoset_add(&s->linked, stx.stx_ino);
		if (r < 0)
			return fail(s, ENOMEM, "remembering hard links");
		if (r == 0)
			return 0;
	}
	s->res.bytes += charge_bytes(stx.stx_mode, (int64_t)stx.stx_size);
	s->res.inodes++;
	if (S_ISREG(stx.stx_mode))
		return charge_xattrs(s, dfd, name, stx.stx_ino);
	return 0;
}

static int is_dot(const char *n)
{
	return n[0] == '.' && (n[1] == '\0' || (n[1] == '.' && n[2] == '\0'));
}

static int read_dir(struct scan *s, int dfd)
{
	for (;;) {
		long n = syscall(SYS_getdents64, dfd, s->dents, DENTS_BUF);
		long off = 0;

		if (n < 0)
			return fail(s, errno, "reading a directory");
		if (n == 0)
			return 0;
		while (off < n) {
			struct linux_dirent64 *d = (void *)(s->dents + off);
			int r = 0;

			off += d->d_reclen;
			if (is_dot(d->d_name))
				continue;
			r = d->d_type == DT_DIR ? visit_dir(s, dfd, d->d_name)
						: visit_other(s, dfd, d->d_name);
			if (r < 0)
				return r;
			if (++s->res.entries % PROGRESS_EVERY == 0 && s->progress)
				s->progress(&s->res, s->arg);
		}
	}
}

/* The root's own 4 KiB and inode are free (it is the workspace itself),
** but its user xattrs are charged like anyone's. */
static int walk(struct scan *s)
{
	struct handle *h;
	struct stat st;
	int dfd, r;

	dfd = openat(s->root_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return fail(s, errno, "opening the tree's root");
	r = fstat(dfd, &st) < 0 ? fail(s, errno, "stat of the tree's root") : 0;
	if (r == 0)
		r = charge_xattrs(s, dfd, ".", (uint64_t)st.st_ino);
	if (r == 0)
		r = read_dir(s, dfd);
	close(dfd);
	while (r == 0 && (h = queue_pop(&s->q))) {
		dfd = open_by_handle_at(s->root_fd, &h->fh,
					O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		free(h);
		if (dfd < 0) {
			if (errno == ESTALE || errno == ENOENT)
				continue;	/* removed since it was queued */
			return fail(s, errno, "opening a directory by handle");
		}
		r = read_dir(s, dfd);
		close(dfd);
	}
	return r;
}

static int root_mount_id(struct scan *s)
{
	struct handle h;

	h.fh.handle_bytes = HANDLE_MAX;
	if (name_to_handle_at(s->root_fd, "", &h.fh, &s->root_mnt, AT_EMPTY_PATH) < 0)
		return fail(s, errno, "taking a handle of the tree's root "
			    "(the scan needs a filesystem with file handles)");
	return 0;
}

static int scan_tree(int root_fd, int record, scan_progress_fn progress,
		     void *arg, struct scan_result *out, char *err,
		     size_t errlen)
{
	struct scan s;
	int r;

	memset(&s, 0, sizeof(s));
	s.record = record;
	s.err = err;
	s.errlen = errlen;
	s.root_fd = openat(root_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (s.root_fd < 0)
		return fail(&s, errno, "opening the tree's root");
	s.progress = progress;
	s.arg = arg;
	s.dents = malloc(DENTS_BUF);
	s.xlist = malloc(XATTR_LIST_MAX_LEN);
	if (!s.dents || !s.xlist) {
		r = fail(&s, ENOMEM, "starting the scan");
		goto out;
	}
	if (record)
		xcharge_clear();
	r = root_mount_id(&s);
	if (r == 0)
		r = walk(&s);
	if (r == 0)
		*out = s.res;
out:
	queue_free(&s.q);
	free(s.linked.slots);
	free(s.dents);
	free(s.xlist);
	close(s.root_fd);
	return r;
}

int quota_scan(int root_fd, scan_progress_fn progress, void *arg,
	       struct scan_result *out, char *err, size_t errlen)
{
	return scan_tree(root_fd, 1, progress, arg, out, err, errlen);
}

int quota_measure(int root_fd, struct scan_result *out, char *err,
		  size_t errlen)
{
	return scan_tree(root_fd, 0, NULL, NULL, out, err, errlen);
}
