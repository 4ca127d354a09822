/*
** Directories: opendir, readdir, readdirplus, releasedir and fsyncdir.
**
** A directory handle is a DIR stream on the backing directory.  Offsets
** handed to the kernel are the backing filesystem's own d_off cookies (on
** ext4, hash positions), so a listing resumes at the right place even while
** entries are being deleted, and d_ino is the backing inode number, equal to
** the st_ino that getattr reports.
**
** readdirplus looks each entry up as it goes; an entry deleted between the
** backing readdir and that lookup is skipped, as a kernel filesystem would
** not have returned it either.  The kernel may cache listings
** (cache_readdir): every change to a directory passes through this daemon,
** and the kernel drops its cached listing on each one.
*/
#include "merge.h"
#include "union.h"
#include "audit_event.h"
#include "wsfs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct ws_dir {
	DIR *dp;		/* NULL for a union directory */
	off_t offset;
	struct dirent *entry;	/* read but not yet returned */
	struct merge_list merged;	/* a union directory's listing */
};

static struct ws_dir *dir_of(struct fuse_file_info *fi)
{
	return (struct ws_dir *)(uintptr_t)fi->fh;
}

static void close_dir(struct ws_dir *d)
{
	if (d->dp)
		closedir(d->dp);
	merge_list_free(&d->merged);
	free(d);
}

static int open_stream(struct ws_inode *n, struct ws_dir *d)
{
	int fd = inode_open(n, O_RDONLY | O_DIRECTORY);

	if (fd < 0)
		return fd;
	d->dp = fdopendir(fd);
	if (!d->dp) {
		int err = -errno;

		close(fd);
		return err;
	}
	return 0;
}

/* A union directory is listed once, at opendir: offsets are indexes into
** the merged listing, stable for as long as the handle is open. */
static int list_union(struct ws_inode *n, struct ws_dir *d)
{
	int fds[UNION_MAX], cnt = union_dirs(n, fds), r;

	if (cnt < 0)
		return cnt;
	r = merge_list_dirs(fds, (size_t)cnt, &d->merged);
	union_dirs_put(n, fds, cnt);
	return r;
}

static void ws_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct ws_inode *n = inode_of(ino);
	struct ws_dir *d;
	int fd;

	if (op_begin(req, OP_OPENDIR))
		return;
	d = calloc(1, sizeof(*d));
	if (!d) {
		reply_err(req, -ENOMEM);
		return;
	}
	fd = union_merges(n) ? list_union(n, d) : open_stream(n, d);
	if (audit_level == AUDIT_FULL || audit_denial(fd < 0 ? fd : 0))
		audit_node(req, OP_OPENDIR, n, -1, fd < 0 ? fd : 0, NULL);
	if (fd < 0) {
		free(d);
		reply_err(req, fd);
		return;
	}
	fi->fh = (uintptr_t)d;
	/* A shared directory is listed afresh at each opendir. */
	fi->keep_cache = !n->layer->shared;
	fi->cache_readdir = !n->layer->shared;
	inode_pin(n);
	stats_gauge(&ws_stats.open_dirs, 1);
	if (fuse_reply_open(req, fi) != 0) {
		close_dir(d);
		inode_unpin(n);
		stats_gauge(&ws_stats.open_dirs, -1);
	}
}

static int is_dot(const char *name)
{
	return name[0] == '.' && (name[1] == '\0' ||
				  (name[1] == '.' && name[2] == '\0'));
}

/* Adds the pending entry to the reply buffer. Returns its size, 0 to skip an
** entry that vanished, or -errno. When it does not fit, returns a size
** larger than REM and takes back the lookup. */
static ssize_t add_entry(fuse_req_t req, struct ws_inode *dir, struct dirent *de,
			 char *p, size_t rem, int plus)
{
	struct fuse_entry_param e;
	size_t size;
	int err;

	if (!plus || is_dot(de->d_name)) {
		struct stat st;

		memset(&st, 0, sizeof(st));
		st.st_ino = de->d_ino;
		st.st_mode = (mode_t)DTTOIF(de->d_type);
		if (!plus)
			return (ssize_t)fuse_add_direntry(req, p, rem, de->d_name,
							  &st, de->d_off);
		memset(&e, 0, sizeof(e));
		e.attr = st;
		return (ssize_t)fuse_add_direntry_plus(req, p, rem, de->d_name,
						       &e, de->d_off);
	}
	err = inode_lookup(dir, de->d_name, &e);
	if (err == -ENOENT)
		return 0;
	if (err)
		return err;
	size = fuse_add_direntry_plus(req, p, rem, de->d_name, &e, de->d_off);
	if (size > rem)
		inode_forget(inode_of(e.ino), 1);
	return (ssize_t)size;
}

/* Offsets 1 and 2 are "." and "..", then entry I of the listing is
** offset I + 3, so 0 still means "from the start". */
static size_t fill_union(fuse_req_t req, struct ws_inode *dir, struct ws_dir *d,
			 char *buf, size_t size, off_t offset, int plus)
{
	static const char *const dots[] = { ".", ".." };
	size_t rem = size;
	char *p = buf;

	for (off_t i = offset; (size_t)i < d->merged.n + 2; i++) {
		struct dirent de;
		ssize_t used;

		memset(&de, 0, sizeof(de));
		if (i < 2) {
			snprintf(de.d_name, sizeof(de.d_name), "%s", dots[i]);
			de.d_type = DT_DIR;
			de.d_ino = dir->ino;
		} else {
			const struct merge_entry *m = &d->merged.v[i - 2];

			snprintf(de.d_name, sizeof(de.d_name), "%s", m->name);
			de.d_type = m->d_type;
			de.d_ino = plus || m->layer != 0 ? m->ino :
				   union_entry_ino(dir, m->name, m->ino);
		}
		de.d_off = i + 1;
		used = add_entry(req, dir, &de, p, rem, plus);
		if (used < 0 && rem == size)
			return (size_t)used;	/* an error, as -errno */
		if (used < 0 || (size_t)used > rem)
			break;
		p += used;
		rem -= (size_t)used;
	}
	return size - rem;
}

static void do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t offset,
		       struct fuse_file_info *fi, int plus)
{
	struct ws_inode *dir = inode_of(ino);
	struct ws_dir *d = dir_of(fi);
	size_t rem = size;
	char *buf, *p;
	int err = 0;

	buf = calloc(1, size);
	if (!buf) {
		reply_err(req, -ENOMEM);
		return;
	}
	if (!d->dp) {
		size_t used = fill_union(req, dir, d, buf, size, offset, plus);

		if ((ssize_t)used < 0)
			reply_err(req, (int)(ssize_t)used);
		else
			fuse_reply_buf(req, buf, used);
		free(buf);
		return;
	}
	if (offset != d->offset) {
		seekdir(d->dp, offset);
		d->entry = NULL;
		d->offset = offset;
	}
	p = buf;
	for (;;) {
		ssize_t used;

		if (!d->entry) {
			errno = 0;
			d->entry = readdir(d->dp);
			if (!d->entry) {
				err = errno;
				break;
			}
		}
		used = add_entry(req, dir, d->entry, p, rem, plus);
		if (used < 0) {
			err = (int)-used;
			break;
		}
		if ((size_t)used > rem)
			break;
		p += used;
		rem -= (size_t)used;
		d->offset = d->entry->d_off;
		d->entry = NULL;
	}
	/* An error after some entries is reported on the next call instead. */
	if (err && rem == size)
		reply_status(req, err);
	else
		fuse_reply_buf(req, buf, size - rem);
	free(buf);
}

static void ws_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	if (op_begin(req, OP_READDIR))
		return;
	do_readdir(req, ino, size, off, fi, 0);
}

static void ws_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size,
			   off_t off, struct fuse_file_info *fi)
{
	if (op_begin(req, OP_READDIRPLUS))
		return;
	do_readdir(req, ino, size, off, fi, 1);
}

static void ws_releasedir(fuse_req_t req, fuse_ino_t ino,
			  struct fuse_file_info *fi)
{
	struct ws_dir *d = dir_of(fi);

	op_note(req, OP_RELEASEDIR);
	close_dir(d);
	inode_unpin(inode_of(ino));
	stats_gauge(&ws_stats.open_dirs, -1);
	fuse_reply_err(req, 0);
}

static void ws_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync,
			struct fuse_file_info *fi)
{
	struct ws_dir *d = dir_of(fi);
	int fd, r;

	op_note(req, OP_FSYNCDIR);
	(void)ino;
	if (!d->dp) {		/* a union's upper directory syncs with it */
		fuse_reply_err(req, 0);
		return;
	}
	fd = dirfd(d->dp);
	r = datasync ? fdatasync(fd) : fsync(fd);
	reply_status(req, r < 0 ? errno : 0);
}

void ops_dir_register(struct fuse_lowlevel_ops *ops)
{
	ops->opendir = ws_opendir;
	ops->readdir = ws_readdir;
	ops->readdirplus = ws_readdirplus;
	ops->releasedir = ws_releasedir;
	ops->fsyncdir = ws_fsyncdir;
}
