/*
** Merged directories; the rules are in merge.h.
**
** A listing is made by sorting, not by a set of hidden names.  Every
** directory of the stack is read to its end with getdents64 (one 64 KiB
** buffer for all of them) on a descriptor opened for the purpose, and each
** entry that is not a dot or internal name is kept as (name, layer, type,
** inode), whiteouts too.  One sort by (name, layer) then puts every name's
** entries together, highest directory first: the first of each run wins and
** the rest are hidden by it, and a winner that is a whiteout hides the run
** without being listed.  The result must come out sorted anyway (its
** indexes are readdir offsets), so the sort is paid for once either way,
** and the merge itself is one pass with no hash table to write, size or get
** wrong.  What it costs is the hidden entries' names until the sort is
** done; the listing that is kept holds only the winners' names, packed in
** one buffer.
**
** An entry whose d_type is DT_CHR may be a whiteout, and one that is
** DT_UNKNOWN may be anything, so those two, and only those, are looked at
** with fstatat(AT_SYMLINK_NOFOLLOW); a DT_UNKNOWN is listed with the type
** that shows.  An entry that is gone by then is taken as never read.
**
** Each directory is read on openat(fd, ".") rather than on a dup: a dup
** shares the caller's file offset, which would have to be rewound (and
** would then be moved under the caller), and a caller's O_PATH descriptor
** cannot be read at all.
*/
#include "merge.h"

#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#define MERGE_BUF (64 * 1024)
#define DIR_FLAGS (O_RDONLY | O_DIRECTORY | O_CLOEXEC)

struct linux_dirent64 {
	uint64_t d_ino;
	int64_t d_off;
	unsigned short d_reclen;
	unsigned char d_type;
	char d_name[];
};

/* Called for each entry of a directory that counts for merging (whiteouts
** included, with type DT_WHT).  Returns 0 to go on, 1 to stop the read, or
** -errno. */
typedef int (*entry_fn)(const char *name, unsigned char type, uint64_t ino,
			void *arg);

/* One entry read from one directory of the stack, before merging. */
struct raw {
	size_t off;		/* of its name in the builder's names */
	uint64_t ino;
	unsigned int layer;
	unsigned char type;	/* DT_*, or DT_WHT for a whiteout */
};

/* Everything read from the stack so far.  Names are kept as offsets, since
** the buffer moves as it grows. */
struct builder {
	char *names;
	size_t len, cap;
	struct raw *v;
	size_t n, vcap;
	unsigned int layer;	/* of the directory being read */
};

/* ---- Single entries and directories ---- */

static int is_dot(const char *name)
{
	return name[0] == '.' &&
	       (name[1] == '\0' || (name[1] == '.' && name[2] == '\0'));
}

int merge_is_internal(const char *name)
{
	return strncmp(name, MERGE_INTERNAL_PREFIX,
		       sizeof(MERGE_INTERNAL_PREFIX) - 1) == 0;
}

static int stat_is_whiteout(const struct stat *st)
{
	return S_ISCHR(st->st_mode) && st->st_rdev == makedev(0, 0);
}

int merge_is_whiteout(int dirfd, const char *name)
{
	struct stat st;

	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
		return errno == ENOENT ? 0 : -errno;
	return stat_is_whiteout(&st);
}

int merge_is_opaque(int fd)
{
	char v[2];
	ssize_t len = fgetxattr(fd, MERGE_OPAQUE_XATTR, v, sizeof(v));

	/* An O_PATH descriptor has no xattr calls; a readable one of the
	** same directory has. */
	if (len < 0 && errno == EBADF) {
		int dfd = openat(fd, ".", DIR_FLAGS), err;

		if (dfd < 0)
			return -errno;
		len = fgetxattr(dfd, MERGE_OPAQUE_XATTR, v, sizeof(v));
		err = errno;
		close(dfd);
		errno = err;
	}
	if (len < 0) {
		/* No mark, no xattrs on that filesystem, or a value longer
		** than "y": not opaque. */
		if (errno == ENODATA || errno == ENOTSUP || errno == ERANGE)
			return 0;
		return -errno;
	}
	return len == 1 && v[0] == 'y';
}

ssize_t merge_depth(const int *fds, size_t n)
{
	size_t i;

	/* The last directory's mark would end nothing, so it is not read. */
	for (i = 0; i + 1 < n; i++) {
		int r;

		if (fds[i] < 0)
			continue;
		r = merge_is_opaque(fds[i]);
		if (r < 0)
			return r;
		if (r)
			return (ssize_t)i + 1;
	}
	return (ssize_t)n;
}

/* The type of entry NAME in DFD as merging sees it, from its d_type TYPE:
** DT_WHT for a whiteout, the real type where TYPE was DT_UNKNOWN,
** DT_UNKNOWN (0) for an entry gone since it was read, or -errno. */
static int classify(int dfd, const char *name, unsigned char type)
{
	struct stat st;

	if (type != DT_CHR && type != DT_UNKNOWN)
		return type;
	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
		return errno == ENOENT ? DT_UNKNOWN : -errno;
	if (stat_is_whiteout(&st))
		return DT_WHT;
	return IFTODT(st.st_mode);
}

/* Calls FN for each entry of directory FD that counts, reading it on a
** descriptor of its own into BUF (MERGE_BUF bytes).  Returns 0, 1 if FN
** stopped the read, or -errno. */
static int read_dir(int fd, char *buf, entry_fn fn, void *arg)
{
	int dfd = openat(fd, ".", DIR_FLAGS), r = 0;

	if (dfd < 0)
		return -errno;
	while (r == 0) {
		long n = syscall(SYS_getdents64, dfd, buf, MERGE_BUF);
		long off;

		if (n < 0)
			r = -errno;
		if (n <= 0)
			break;
		for (off = 0; off < n && r == 0;) {
			struct linux_dirent64 *d = (void *)(buf + off);
			int type;

			off += d->d_reclen;
			if (is_dot(d->d_name) || merge_is_internal(d->d_name))
				continue;
			type = classify(dfd, d->d_name, d->d_type);
			if (type < 0)
				r = type;
			else if (type != DT_UNKNOWN)
				r = fn(d->d_name, (unsigned char)type,
				       d->d_ino, arg);
		}
	}
	close(dfd);
	return r;
}

/* ---- The listing ---- */

static int builder_add(const char *name, unsigned char type, uint64_t ino,
		       void *arg)
{
	struct builder *b = arg;
	size_t len = strlen(name) + 1;
	struct raw *e;
	int r;

	while (b->len + len > b->cap) {
		r = grow_array((void **)&b->names, &b->cap, 1, MERGE_BUF);
		if (r < 0)
			return r;
	}
	if (b->n == b->vcap) {
		r = grow_array((void **)&b->v, &b->vcap, sizeof(*b->v), 256);
		if (r < 0)
			return r;
	}
	e = &b->v[b->n++];
	e->off = b->len;
	e->ino = ino;
	e->layer = b->layer;
	e->type = type;
	memcpy(b->names + b->len, name, len);
	b->len += len;
	return 0;
}

/* By name, then highest directory (lowest index) first. */
static int cmp_raw(const void *pa, const void *pb, void *names)
{
	const struct raw *a = pa, *b = pb;
	const char *base = names;
	int c = strcmp(base + a->off, base + b->off);

	if (c != 0)
		return c;
	return (a->layer > b->layer) - (a->layer < b->layer);
}

/* Sorts what B read and moves the winners to the front of B->v: the first
** entry of each name, unless it is a whiteout.  Returns how many there are
** and, in *BYTES, the size of their names. */
static size_t pick_winners(struct builder *b, size_t *bytes)
{
	const char *prev = NULL;
	size_t i, k = 0;

	*bytes = 0;
	if (b->n == 0)
		return 0;	/* qsort_r must not be given a null array */
	qsort_r(b->v, b->n, sizeof(*b->v), cmp_raw, b->names);
	for (i = 0; i < b->n; i++) {
		const char *name = b->names + b->v[i].off;

		/* Hidden by the entry before it: a higher directory's, or
		** the same one read twice when it moved during the read. */
		if (prev && strcmp(prev, name) == 0)
			continue;
		prev = name;
		if (b->v[i].type == DT_WHT)
			continue;
		*bytes += strlen(name) + 1;
		b->v[k++] = b->v[i];
	}
	return k;
}

/* Makes OUT from the winners in B, with their names packed in one buffer. */
static int build_list(struct builder *b, struct merge_list *out)
{
	size_t bytes, pos = 0, i, n = pick_winners(b, &bytes);

	if (n == 0)
		return 0;
	out->v = calloc(n, sizeof(*out->v));
	out->names = malloc(bytes);
	if (!out->v || !out->names) {
		merge_list_free(out);
		return -ENOMEM;
	}
	for (i = 0; i < n; i++) {
		const char *name = b->names + b->v[i].off;
		size_t len = strlen(name) + 1;

		memcpy(out->names + pos, name, len);
		out->v[i].name = out->names + pos;
		out->v[i].d_type = b->v[i].type;
		out->v[i].layer = b->v[i].layer;
		out->v[i].ino = b->v[i].ino;
		pos += len;
	}
	out->n = n;
	return 0;
}

/* merge_list_dirs on the DEPTH directories already known to be merged. */
static int list_merged(const int *fds, size_t depth, struct merge_list *out)
{
	struct builder b;
	char *buf = malloc(MERGE_BUF);
	size_t i;
	int r = 0;

	memset(out, 0, sizeof(*out));
	if (!buf)
		return -ENOMEM;
	memset(&b, 0, sizeof(b));
	for (i = 0; i < depth && r == 0; i++) {
		if (fds[i] < 0)
			continue;
		b.layer = (unsigned int)i;
		r = read_dir(fds[i], buf, builder_add, &b);
	}
	free(buf);
	if (r == 0)
		r = build_list(&b, out);
	free(b.names);
	free(b.v);
	return r;
}

int merge_list_dirs(const int *fds, size_t n, struct merge_list *out)
{
	ssize_t depth;

	memset(out, 0, sizeof(*out));
	/* Layer indexes must fit struct merge_entry. */
	if (n > UINT_MAX)
		return -EINVAL;
	depth = merge_depth(fds, n);
	if (depth < 0)
		return (int)depth;
	return list_merged(fds, (size_t)depth, out);
}

void merge_list_free(struct merge_list *l)
{
	free(l->v);
	free(l->names);
	memset(l, 0, sizeof(*l));
}

/* ---- Emptiness ---- */

static int stop_at_entry(const char *name, unsigned char type, uint64_t ino,
			 void *arg)
{
	return type != DT_WHT;
}

int merge_is_empty(const int *fds, size_t n)
{
	struct merge_list l;
	ssize_t depth;
	size_t top;
	char *buf;
	int r;

	if (n > UINT_MAX)
		return -EINVAL;
	depth = merge_depth(fds, n);
	if (depth < 0)
		return (int)depth;
	for (top = 0; top < (size_t)depth && fds[top] < 0; top++)
		;
	if (top == (size_t)depth)
		return 1;
	/* Nothing is above the top directory, so any entry in it that is not
	** a whiteout decides at once; only one holding whiteouts alone needs
	** the whole stack merged to see what they leave. */
	buf = malloc(MERGE_BUF);
	if (!buf)
		return -ENOMEM;
	r = read_dir(fds[top], buf, stop_at_entry, NULL);
	free(buf);
	if (r != 0)
		return r < 0 ? r : 0;
	r = list_merged(fds + top, (size_t)depth - top, &l);
	if (r < 0)
		return r;
	r = l.n == 0;
	merge_list_free(&l);
	return r;
}
