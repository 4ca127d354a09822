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
** changes to the upper go through this daemon; FLUSH is skipped (noflush)
** because a close has nothing to write back: the writeback cache is off so
** that a later quota can fail the very write() that crosses it.
*/
#include "cred.h"
#include "setid.h"
#include "wsfs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
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

static void set_open_flags(struct fuse_file_info *fi)
{
	fi->keep_cache = 1;
	fi->noflush = 1;
}

static void opened(struct ws_inode *n)
{
	inode_pin(n);
	stats_gauge(&ws_stats.open_files, 1);
}

static void ws_create(fuse_req_t req, fuse_ino_t parent, const char *name,
		      mode_t mode, struct fuse_file_info *fi)
{
	struct ws_inode *dir = inode_of(parent);
	struct fuse_entry_param e;
	struct cred_saved saved;
	int pfd, fd, err;

	stats_op(OP_CREATE);
	if (ws_read_only()) {
		reply_err(req, -EROFS);
		return;
	}
	pfd = inode_fd(dir);
	if (pfd < 0) {
		reply_err(req, pfd);
		return;
	}
	cred_enter(req, &saved);
	mode = cred_mode(&saved, mode);
	fd = openat(pfd, name, backing_flags(fi->flags) | O_CREAT, mode);
	if (fd < 0 && fd_exhausted(errno)) {
		itab_relieve();
		fd = openat(pfd, name, backing_flags(fi->flags) | O_CREAT, mode);
	}
	if (fd < 0)
		fd = -errno;
	cred_leave(&saved);
	inode_fd_put(dir);
	if (fd < 0) {
		reply_err(req, fd);
		return;
	}
	err = inode_lookup_fd(fd, &e);
	if (err) {
		close(fd);
		reply_err(req, err);
		return;
	}
	inode_set_no_fcaps(inode_of(e.ino), 1);
	fi->fh = (uint64_t)fd;
	set_open_flags(fi);
	opened(inode_of(e.ino));
	if (fuse_reply_create(req, &e, fi) != 0) {
		/* The caller is gone: nobody will release or forget this. */
		close(fd);
		inode_unpin(inode_of(e.ino));
		stats_gauge(&ws_stats.open_files, -1);
		inode_forget(inode_of(e.ino), 1);
	}
}

static void ws_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct ws_inode *n = inode_of(ino);
	int fd;

	stats_op(OP_OPEN);
	if (ws_read_only() && wants_write(fi->flags)) {
		reply_err(req, -EROFS);
		return;
	}
	fd = inode_open(n, backing_flags(fi->flags));
	if (fd < 0) {
		reply_err(req, fd);
		return;
	}
	if (fi->flags & O_TRUNC)
		setid_after_write(req, ino, fd);
	fi->fh = (uint64_t)fd;
	set_open_flags(fi);
	opened(n);
	if (fuse_reply_open(req, fi) != 0) {
		close(fd);
		inode_unpin(n);
		stats_gauge(&ws_stats.open_files, -1);
	}
}

static void ws_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	stats_op(OP_RELEASE);
	close((int)fi->fh);
	inode_unpin(inode_of(ino));
	stats_gauge(&ws_stats.open_files, -1);
	fuse_reply_err(req, 0);
}

static void ws_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	stats_op(OP_FLUSH);
	(void)ino;
	(void)fi;
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

static void read_small(fuse_req_t req, int fd, size_t size, off_t off)
{
	char buf[SMALL_READ];
	ssize_t n = pread(fd, buf, size, off);

	if (n < 0) {
		fuse_reply_err(req, errno);
		return;
	}
	stats_add(&ws_stats.bytes_read, (uint64_t)n);
	fuse_reply_buf(req, buf, (size_t)n);
}

static void ws_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct fuse_bufvec buf = FUSE_BUFVEC_INIT(size);
	int fd = (int)fi->fh;

	stats_op(OP_READ);
	(void)ino;
	if (size <= SMALL_READ) {
		read_small(req, fd, size, off);
		return;
	}
	buf.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
	buf.buf[0].fd = fd;
	buf.buf[0].pos = off;
	stats_add(&ws_stats.bytes_read, readable_bytes(fd, size, off));
	fuse_reply_data(req, &buf, FUSE_BUF_SPLICE_MOVE);
}

static void ws_write_buf(fuse_req_t req, fuse_ino_t ino,
			 struct fuse_bufvec *in_buf, off_t off,
			 struct fuse_file_info *fi)
{
	struct fuse_bufvec out = FUSE_BUFVEC_INIT(fuse_buf_size(in_buf));
	ssize_t res;

	stats_op(OP_WRITE);
	out.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
	out.buf[0].fd = (int)fi->fh;
	out.buf[0].pos = off;
	res = fuse_buf_copy(&out, in_buf, 0);
	if (res < 0) {
		reply_err(req, (int)res);
		return;
	}
	stats_add(&ws_stats.bytes_written, (uint64_t)res);
	setid_after_write(req, ino, (int)fi->fh);
	fuse_reply_write(req, (size_t)res);
}

static void ws_fsync(fuse_req_t req, fuse_ino_t ino, int datasync,
		     struct fuse_file_info *fi)
{
	int fd = (int)fi->fh;
	int r;

	stats_op(OP_FSYNC);
	(void)ino;
	r = datasync ? fdatasync(fd) : fsync(fd);
	fuse_reply_err(req, r < 0 ? errno : 0);
}

static void ws_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off,
			 off_t len, struct fuse_file_info *fi)
{
	stats_op(OP_FALLOCATE);
	(void)ino;
	if (ws_read_only()) {
		reply_err(req, -EROFS);
		return;
	}
	if (fallocate((int)fi->fh, mode, off, len) < 0)
		fuse_reply_err(req, errno);
	else
		fuse_reply_err(req, 0);
}

static void ws_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence,
		     struct fuse_file_info *fi)
{
	off_t res;

	stats_op(OP_LSEEK);
	(void)ino;
	res = lseek((int)fi->fh, off, whence);
	if (res < 0)
		fuse_reply_err(req, errno);
	else
		fuse_reply_lseek(req, res);
}

static void ws_copy_file_range(fuse_req_t req, fuse_ino_t ino_in, off_t off_in,
			       struct fuse_file_info *fi_in, fuse_ino_t ino_out,
			       off_t off_out, struct fuse_file_info *fi_out,
			       size_t len, int flags)
{
	ssize_t res;

	stats_op(OP_COPY_FILE_RANGE);
	(void)ino_in;
	(void)ino_out;
	if (ws_read_only()) {
		reply_err(req, -EROFS);
		return;
	}
	res = copy_file_range((int)fi_in->fh, &off_in, (int)fi_out->fh, &off_out,
			      len, (unsigned int)flags);
	if (res < 0) {
		fuse_reply_err(req, errno);
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
