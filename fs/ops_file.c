/*
** Files and their I/O: create, open, read, write, flush, release, fsync,
** fallocate, lseek and copy_file_range.
**
** An open file is a real descriptor on the backing file, kept in fi->fh.
** open() reaches the file through /proc/self/fd/N of the node's O_PATH
** descriptor, never through a name, and pins the node so an unlinked file
** stays reachable while open.  Large reads are spliced, so their contents
** are not copied through the daemon's memory.
**
** The kernel's page cache is kept across opens (keep_cache) because all
** changes to the upper go through this daemon (shared directories are the
** exception); FLUSH is skipped (noflush) because a close has nothing to
** write back, the writeback cache being off so that the quota can fail the
** very write() that crosses it, unless the file may hold locks, which a
** close must drop.
**
** Every call that can change a file's size reserves the growth first and
** settles after (account.h). fi->fh carries the descriptor in its low 32
** bits and, above them, whether it appends, because where an O_APPEND write
** lands (the real end of file) is what it is charged for.
*/
#include "account.h"
#include "cred.h"
#include "lock_table.h"
#include "setid.h"
#include "union.h"
#include "audit_event.h"
#include "wsfs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <linux/falloc.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The flags the backing open gets. O_DIRECT is honoured by the FUSE kernel
** side (the agent's page cache is bypassed); passing it on would make the
** backing fs demand an alignment libfuse's buffers do not have. */
static int backing_flags(int flags)
{
	flags &= ~(O_CREAT | O_EXCL | O_NOCTTY | O_DIRECT);
	/* With the writeback cache the kernel reads pages around partial
	** writes and places appends itself, at explicit offsets. */
	if (ws_opt->writeback) {
		if ((flags & O_ACCMODE) == O_WRONLY)
			flags = (flags & ~O_ACCMODE) | O_RDWR;
		flags &= ~O_APPEND;
	}
	return flags | O_NOFOLLOW | O_CLOEXEC;
}

static int wants_write(int flags)
{
	return (flags & O_ACCMODE) != O_RDONLY || (flags & O_TRUNC);
}

/* A shared file's cached pages are dropped at each open (close-to-open
** consistency, as NFS gives): another workspace may have written it. */
static void set_open_flags(struct fuse_file_info *fi, const struct ws_inode *n)
{
	fi->keep_cache = !n->layer->shared;
	fi->noflush = !locks_want_flush(n);
}

static int opened(struct ws_inode *n)
{
	int err = inode_pin_file(n);

	if (err == 0)
		stats_gauge(&ws_stats.open_files, 1);
	return err;
}

/* The last close of a file unlinked while open frees its charge. */
static void closed(struct ws_inode *n)
{
	if (inode_unpin(n))
		account_orphan_closed(n);
	stats_gauge(&ws_stats.open_files, -1);
}

/* Appends land at the real end of file only when the backing descriptor
** has O_APPEND; with the writeback cache the kernel places them itself. */
static uint64_t fh_make(int fd, int flags)
{
	uint64_t fh = (uint32_t)fd;

	if ((backing_flags(flags) & O_APPEND))
		fh |= FH_APPEND;
	return fh;
}

/* Creates NAME exclusively, so the inode charge is only kept for a file
** that is really new. The kernel sends CREATE only for names it believes
** absent; one that exists after all (changed behind our back) is opened. */
static int create_file(int pfd, const char *name, int flags, mode_t mode,
		       int *created)
{
	int fd;

	*created = 0;
	fd = openat(pfd, name, flags | O_CREAT | O_EXCL, mode);
	if (fd >= 0) {
		*created = 1;
		return fd;
	}
	if (errno != EEXIST || (flags & O_EXCL))
		return -errno;
	fd = openat(pfd, name, flags & ~O_TRUNC, mode);
	return fd < 0 ? -errno : fd;
}

static int create_retrying(int pfd, const char *name, int flags, mode_t mode,
			   int *created)
{
	int fd = create_file(pfd, name, flags, mode, created);

	if (fd < 0 && fd_exhausted(-fd)) {
		itab_relieve();
		fd = create_file(pfd, name, flags, mode, created);
	}
	return fd;
}

/* An existing file opened by CREATE with O_TRUNC is truncated here, under
** its size lock, so its charge is given back. */
static int truncate_existing(struct ws_inode *n, int fd)
{
	struct grow g;
	char path[32];
	int err;

	err = account_resize_begin(&g, n, fd, 0);
	if (err)
		return err;
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	err = truncate(path, 0) < 0 ? -errno : 0;
	account_resize_end(&g, err);
	return err;
}

/* Makes (or, if it appeared meanwhile, opens) NAME in DIR: on success
** *FD is open on it and E holds its entry, with one lookup reference. */
static int create_open(fuse_req_t req, struct ws_inode *dir, const char *name,
		       mode_t mode, int flags, struct fuse_entry_param *e,
		       int *fdp, int *created)
{
	struct cred_saved saved;
	struct ws_inode *n;
	int pfd, fd, err, hid = 0;

	*created = 0;
	err = union_copy_up(dir);
	if (!err)
		err = ws_deny_change(dir);
	if (!err)
		err = account_new(dir, S_IFREG);
	if (err)
		return err;
	pfd = inode_fd(dir);
	if (pfd < 0) {
		account_new_undo(dir, S_IFREG);
		return pfd;
	}
	err = union_clear_whiteout(dir, pfd, name, &hid);
	if (err) {
		inode_fd_put(dir);
		account_new_undo(dir, S_IFREG);
		return err;
	}
	cred_enter(req, &saved);
	fd = create_retrying(pfd, name, backing_flags(flags),
			     cred_mode(&saved, mode), created);
	cred_leave(&saved);
	if (fd < 0 && hid)
		(void)union_whiteout(dir, pfd, name);
	inode_fd_put(dir);
	if (!*created)
		account_new_undo(dir, S_IFREG);
	if (fd < 0)
		return fd;
	err = inode_lookup_fd(dir, fd, e);
	if (err) {
		close(fd);
		return err;
	}
	n = inode_of(e->ino);
	if (*created)
		account_new_done(dir, n, S_IFREG);
	if (!*created && (flags & O_TRUNC))
		err = truncate_existing(n, fd);
	if (!err)
		err = opened(n);
	if (err) {
		close(fd);
		inode_forget(n, 1);
		return err;
	}
	if (*created)
		inode_set_no_fcaps(n, 1);
	*fdp = fd;
	return 0;
}

static void ws_create(fuse_req_t req, fuse_ino_t parent, const char *name,
		      mode_t mode, struct fuse_file_info *fi)
{
	struct ws_inode *dir = inode_of(parent), *n;
	struct fuse_entry_param e;
	int fd = -1, err, created, a;

	if (op_begin(req, OP_CREATE))
		return;
	err = create_open(req, dir, name, mode, fi->flags, &e, &fd, &created);
	if (err || created)
		a = audit_created(req, dir, name, &e, fd, fi->flags, err);
	else
		a = audit_open(req, inode_of(e.ino), fd, fi->flags, 0);
	if (!err && a) {
		/* Done, but not recorded: undone as far as the caller knows. */
		close(fd);
		closed(inode_of(e.ino));
		inode_forget(inode_of(e.ino), 1);
		err = a;
	}
	if (err) {
		reply_err(req, err);
		return;
	}
	n = inode_of(e.ino);
	fi->fh = fh_make(fd, fi->flags);
	set_open_flags(fi, n);
	if (fuse_reply_create(req, &e, fi) != 0) {
		/* The caller is gone: nobody will release or forget this. */
		audit_release(n, fd);
		close(fd);
		closed(n);
		inode_forget(n, 1);
	}
}

/* O_TRUNC gives back the file's charge: the old size is learned through
** the node's O_PATH descriptor and the open done under the size lock. */
static int open_truncating(struct ws_inode *n, int flags)
{
	struct grow g;
	int pfd, fd, err;

	pfd = inode_fd(n);
	if (pfd < 0)
		return pfd;
	err = account_resize_begin(&g, n, pfd, 0);
	inode_fd_put(n);
	if (err)
		return err;
	fd = inode_open(n, flags);
	account_resize_end(&g, fd < 0 ? fd : 0);
	return fd;
}

/* An open by name that raced with another workspace's unlink would reach
** the removed inode through its handle while anyone still holds it open:
** ESTALE makes the kernel look the name up again, and find nothing. */
static int refuse_removed(int fd)
{
	struct stat st;

	if (fstat(fd, &st) == 0 && st.st_nlink == 0) {
		close(fd);
		return -ESTALE;
	}
	return fd;
}

static void ws_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct ws_inode *n = inode_of(ino);
	int fd, err;

	if (op_begin(req, OP_OPEN))
		return;
	if (wants_write(fi->flags) &&
	    ((err = union_copy_up(n)) || (err = ws_deny_change(n)))) {
		audit_open(req, n, -1, fi->flags, err);
		reply_err(req, err);
		return;
	}
	/* Pinned before the backing open: an unlink racing with it must see
	** the file as open and leave its charge to the last close. */
	err = opened(n);
	if (err) {
		audit_open(req, n, -1, fi->flags, err);
		reply_err(req, err);
		return;
	}
	if ((fi->flags & O_TRUNC) && n->type == S_IFREG)
		fd = open_truncating(n, backing_flags(fi->flags));
	else
		fd = inode_open(n, backing_flags(fi->flags));
	if (fd >= 0 && n->layer->shared)
		fd = refuse_removed(fd);
	err = audit_open(req, n, fd, fi->flags, fd < 0 ? fd : 0);
	if (fd >= 0 && err) {
		close(fd);
		fd = err;
	}
	if (fd < 0) {
		closed(n);
		reply_err(req, fd);
		return;
	}
	if (fi->flags & O_TRUNC)
		setid_after_write(req, ino, fd);
	fi->fh = fh_make(fd, fi->flags);
	if (n->layer->cow)
		fi->fh |= FH_LOWER;
	set_open_flags(fi, n);
	if (fuse_reply_open(req, fi) != 0) {
		audit_release(n, fd);
		close(fd);
		closed(n);
	}
}

static void ws_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	op_note(req, OP_RELEASE);
	locks_handle_closed(inode_of(ino), fh_fd(fi));
	audit_release(inode_of(ino), fh_fd(fi));
	close(fh_fd(fi));
	closed(inode_of(ino));
	fuse_reply_err(req, 0);
}

/* Only files that may hold locks get FLUSH (locks_want_flush): closing
** any descriptor of a file drops its owner's fcntl locks on it. */
static void ws_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	op_note(req, OP_FLUSH);
	locks_owner_closed(inode_of(ino), fi->lock_owner);
	fuse_reply_err(req, 0);
}

/* Counting what a splice will carry needs the file size; a cheap fstat keeps
** the status figure exact at end of file. */
static size_t readable_bytes(int fd, size_t size, off_t off)
{
	struct stat st;

	if (fstat(fd, &st) < 0 || off >= st.st_size)
		return 0;
	return (size_t)(st.st_size - off) < size ? (size_t)(st.st_size - off) : size;
}

/* Small reads are copied: a pread into the stack and one write to the device
** beat setting up a splice through a pipe for a page or two. Large reads are
** spliced from the backing page cache without passing through our memory. */
#define SMALL_READ (32 * 1024)

static void read_small(fuse_req_t req, fuse_ino_t ino, int hfd, int fd,
		       size_t size, off_t off)
{
	char buf[SMALL_READ];
	ssize_t n = pread(fd, buf, size, off);

	if (n < 0) {
		reply_status(req, errno);
		return;
	}
	stats_add(&ws_stats.bytes_read, (uint64_t)n);
	/* Before the reply: after it, the request is freed and a release
	** may already be tearing down the handle's record. */
	audit_read(req, inode_of(ino), hfd, off, (size_t)n);
	fuse_reply_buf(req, buf, (size_t)n);
}

static void ws_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct fuse_bufvec buf = FUSE_BUFVEC_INIT(size);
	int fd = fh_fd(fi);
	size_t got;

	if (op_begin(req, OP_READ))
		return;
	if (fh_lower(fi) && !inode_of(ino)->layer->cow) {
		/* Copied up since it was opened: read what the agent wrote. */
		fd = union_read_fd(inode_of(ino));
		if (fd < 0) {
			reply_err(req, fd);
			return;
		}
	}
	if (size <= SMALL_READ) {
		read_small(req, ino, fh_fd(fi), fd, size, off);
		return;
	}
	buf.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
	buf.buf[0].fd = fd;
	buf.buf[0].pos = off;
	got = readable_bytes(fd, size, off);
	stats_add(&ws_stats.bytes_read, got);
	audit_read(req, inode_of(ino), fh_fd(fi), off, got);
	fuse_reply_data(req, &buf, FUSE_BUF_SPLICE_MOVE);
}

/* The written data, when it sits in one piece of our memory (splice
** reads from /dev/fuse are off, so it normally does). */
static const void *buf_memory(const struct fuse_bufvec *b)
{
	if (b->count != 1 || (b->buf[0].flags & FUSE_BUF_IS_FD) || b->off)
		return NULL;
	return b->buf[0].mem;
}

static void ws_write_buf(fuse_req_t req, fuse_ino_t ino,
			 struct fuse_bufvec *in_buf, off_t off,
			 struct fuse_file_info *fi)
{
	size_t len = fuse_buf_size(in_buf);
	struct fuse_bufvec out = FUSE_BUFVEC_INIT(len);
	int fd = fh_fd(fi);
	const void *data;
	struct grow g;
	ssize_t res;
	int err;

	if (op_begin(req, OP_WRITE))
		return;
	err = account_write_begin(&g, inode_of(ino), fd, off, len, fh_append(fi));
	if (err) {
		audit_wrote(req, inode_of(ino), fd, off, NULL, err);
		reply_err(req, err);
		return;
	}
	out.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
	out.buf[0].fd = fd;
	out.buf[0].pos = off;
	/* fuse_buf_copy moves in_buf on: take the data's address first. */
	data = buf_memory(in_buf);
	res = fuse_buf_copy(&out, in_buf, 0);
	account_write_end(&g, res);
	err = audit_wrote(req, inode_of(ino), fd, off, data, res);
	if (res >= 0 && err)
		res = err;
	if (res < 0) {
		reply_err(req, (int)res);
		return;
	}
	stats_add(&ws_stats.bytes_written, (uint64_t)res);
	setid_after_write(req, ino, fd);
	fuse_reply_write(req, (size_t)res);
}

static void ws_fsync(fuse_req_t req, fuse_ino_t ino, int datasync,
		     struct fuse_file_info *fi)
{
	int fd = fh_fd(fi);
	int r;

	op_note(req, OP_FSYNC);
	(void)ino;
	r = datasync ? fdatasync(fd) : fsync(fd);
	reply_status(req, r < 0 ? errno : 0);
}

static void ws_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off,
			 off_t len, struct fuse_file_info *fi)
{
	int fd = fh_fd(fi);
	struct grow g;
	int err;

	if (op_begin(req, OP_FALLOCATE))
		return;
	err = ws_deny_change(inode_of(ino));
	if (!err)
		err = account_fallocate_begin(&g, inode_of(ino), fd, mode, off, len);
	if (!err) {
		err = fallocate(fd, mode, off, len) < 0 ? -errno : 0;
		account_resize_end(&g, err);
	}
	if (audit_denial(err))
		audit_node(req, OP_FALLOCATE, inode_of(ino), fd, err, NULL);
	reply_status(req, -err);
}

static void ws_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence,
		     struct fuse_file_info *fi)
{
	off_t res;

	if (op_begin(req, OP_LSEEK))
		return;
	(void)ino;
	res = lseek(fh_fd(fi), off, whence);
	if (res < 0)
		reply_status(req, errno);
	else
		fuse_reply_lseek(req, res);
}

static void ws_copy_file_range(fuse_req_t req, fuse_ino_t ino_in, off_t off_in,
			       struct fuse_file_info *fi_in, fuse_ino_t ino_out,
			       off_t off_out, struct fuse_file_info *fi_out,
			       size_t len, int flags)
{
	int out_fd = fh_fd(fi_out);
	struct grow g;
	off_t start;
	ssize_t res;
	int err;

	if (op_begin(req, OP_COPY_FILE_RANGE))
		return;
	(void)ino_in;
	err = ws_deny_change(inode_of(ino_out));
	if (!err)
		err = account_write_begin(&g, inode_of(ino_out), out_fd, off_out,
					  len, 0);
	if (err) {
		audit_wrote(req, inode_of(ino_out), out_fd, off_out, NULL, err);
		reply_err(req, err);
		return;
	}
	start = off_out;
	res = copy_file_range(fh_fd(fi_in), &off_in, out_fd, &off_out, len,
			      (unsigned int)flags);
	if (res < 0)
		res = -errno;
	account_write_end(&g, res);
	audit_wrote(req, inode_of(ino_out), out_fd, start, NULL, res);
	if (res < 0) {
		reply_err(req, (int)res);
		return;
	}
	stats_add(&ws_stats.bytes_written, (uint64_t)res);
	fuse_reply_write(req, (size_t)res);
}

void ops_file_register(struct fuse_lowlevel_ops *ops)
{
	ops->create = ws_create;
	ops->open = ws_open;
	ops->release = ws_release;
	ops->flush = ws_flush;
	ops->read = ws_read;
	ops->write_buf = ws_write_buf;
	ops->fsync = ws_fsync;
	ops->fallocate = ws_fallocate;
	ops->lseek = ws_lseek;
	ops->copy_file_range = ws_copy_file_range;
}
