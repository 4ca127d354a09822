/*
** Attributes: getattr, setattr, readlink and statfs.
**
** setattr prefers the open file's own descriptor when the kernel passes one
** (ftruncate on a file opened for writing must work even if its mode no
** longer allows opening it).  Without one it acts on the node's O_PATH
** descriptor: fchownat and utimensat take it with AT_EMPTY_PATH; chmod and
** truncate go through /proc/self/fd/N, which names the node itself and
** involves no path of the backing tree.
**
** Permission rules (who may chmod, chown, set times, the setgid-clearing on
** chown and chmod) are enforced by the kernel before the request reaches us,
** because wsfs always mounts with default_permissions.
*/
#include "account.h"
#include "quota_mount.h"
#include "setid.h"
#include "union.h"
#include "audit_event.h"
#include "wsfs.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

static void ws_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct stat st;
	int err;

	if (op_begin(req, OP_GETATTR))
		return;
	if (fi && !fh_lower(fi))
		err = fstat(fh_fd(fi), &st) < 0 ? -errno : 0;
	else
		err = inode_stat(inode_of(ino), &st);
	if (audit_denial(err))
		audit_node(req, OP_GETATTR, inode_of(ino), -1, err, NULL);
	st.st_ino = inode_of(ino)->shown_ino;
	if (err)
		reply_err(req, err);
	else
		fuse_reply_attr(req, &st, ws_attr_timeout_of(inode_of(ino)));
}

static int set_mode(int fd, int ofd, mode_t mode)
{
	char name[16];

	if (ofd >= 0)
		return fchmod(ofd, mode) < 0 ? -errno : 0;
	fd_name(fd, name);
	return fchmodat(itab_proc_fd(), name, mode, 0) < 0 ? -errno : 0;
}

static int set_size(int fd, int ofd, off_t size)
{
	char path[32];

	if (ofd >= 0)
		return ftruncate(ofd, size) < 0 ? -errno : 0;
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	return truncate(path, size) < 0 ? -errno : 0;
}

/* Truncation reserves growth first and gives back what shrinking frees. */
static int resize(struct ws_inode *n, int fd, int ofd, off_t size)
{
	struct grow g;
	int err;

	if (n->type != S_IFREG)
		return set_size(fd, ofd, size);
	err = account_resize_begin(&g, n, fd, size);
	if (err)
		return err;
	err = set_size(fd, ofd, size);
	account_resize_end(&g, err);
	return err;
}

static int set_times(int fd, int ofd, const struct stat *attr, int valid)
{
	struct timespec ts[2];

	ts[0].tv_sec = ts[1].tv_sec = 0;
	ts[0].tv_nsec = ts[1].tv_nsec = UTIME_OMIT;
	if (valid & FUSE_SET_ATTR_ATIME_NOW)
		ts[0].tv_nsec = UTIME_NOW;
	else if (valid & FUSE_SET_ATTR_ATIME)
		ts[0] = attr->st_atim;
	if (valid & FUSE_SET_ATTR_MTIME_NOW)
		ts[1].tv_nsec = UTIME_NOW;
	else if (valid & FUSE_SET_ATTR_MTIME)
		ts[1] = attr->st_mtim;
	if (ofd >= 0)
		return futimens(ofd, ts) < 0 ? -errno : 0;
	return utimensat(fd, "", ts, AT_EMPTY_PATH) < 0 ? -errno : 0;
}

/* Applies the changes through FD, which is the open file's descriptor OFD
** when the kernel passed one (no descriptor to borrow then), and fills ST
** with the result. */
static int apply_setattr(fuse_req_t req, struct ws_inode *n, int fd, int ofd,
			 const struct stat *attr, int valid, struct stat *st)
{
	int err = 0;

	if (valid & FUSE_SET_ATTR_MODE)
		err = set_mode(fd, ofd, attr->st_mode);
	if (!err && (valid & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID))) {
		uid_t uid = (valid & FUSE_SET_ATTR_UID) ? attr->st_uid : (uid_t)-1;
		gid_t gid = (valid & FUSE_SET_ATTR_GID) ? attr->st_gid : (gid_t)-1;

		if (fchownat(fd, "", uid, gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0)
			err = -errno;
	}
	if (!err && (valid & FUSE_SET_ATTR_SIZE)) {
		err = resize(n, fd, ofd, attr->st_size);
		if (!err)
			setid_after_truncate(req, fd);
	}
	if (!err && (valid & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME |
			      FUSE_SET_ATTR_ATIME_NOW | FUSE_SET_ATTR_MTIME_NOW)))
		err = set_times(fd, ofd, attr, valid);
	if (!err && fstatat(fd, "", st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0)
		err = -errno;
	st->st_ino = n->shown_ino;
	return err;
}

/* Which fields a setattr changed, and to what, for its audit record. */
static void setattr_detail(int valid, const struct stat *attr, char *buf,
			   size_t len)
{
	size_t used = (size_t)snprintf(buf, len, "fields=");
	const char *sep = "";

#define ADD(...) do { if (used < len) used += (size_t)snprintf(buf + used, len - used, __VA_ARGS__); } while (0)
	if (valid & FUSE_SET_ATTR_MODE) {
		ADD("%smode=%04o", sep, (unsigned int)(attr->st_mode & 07777));
		sep = ",";
	}
	if (valid & FUSE_SET_ATTR_UID) {
		ADD("%suid=%u", sep, (unsigned int)attr->st_uid);
		sep = ",";
	}
	if (valid & FUSE_SET_ATTR_GID) {
		ADD("%sgid=%u", sep, (unsigned int)attr->st_gid);
		sep = ",";
	}
	if (valid & FUSE_SET_ATTR_SIZE) {
		ADD("%ssize=%lld", sep, (long long)attr->st_size);
		sep = ",";
	}
	if (valid & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_ATIME_NOW)) {
		ADD("%satime", sep);
		sep = ",";
	}
	if (valid & (FUSE_SET_ATTR_MTIME | FUSE_SET_ATTR_MTIME_NOW))
		ADD("%smtime", sep);
#undef ADD
}

static int setattr_node(fuse_req_t req, struct ws_inode *n, struct stat *attr,
			int valid, struct fuse_file_info *fi, struct stat *st)
{
	int fd, err;

	err = union_copy_up(n);
	if (!err)
		err = ws_deny_change(n);
	if (err)
		return err;
	/* A descriptor opened on a base tree must never be written through. */
	if (fi && !fh_lower(fi))
		return apply_setattr(req, n, fh_fd(fi), fh_fd(fi), attr, valid, st);
	fd = inode_fd(n);
	if (fd < 0)
		return fd;
	err = apply_setattr(req, n, fd, -1, attr, valid, st);
	inode_fd_put(n);
	return err;
}

static void ws_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr,
		       int valid, struct fuse_file_info *fi)
{
	struct ws_inode *n = inode_of(ino);
	char detail[160];
	struct stat st;
	int err, a;

	if (op_begin(req, OP_SETATTR))
		return;
	err = setattr_node(req, n, attr, valid, fi, &st);
	if (audit_level != AUDIT_OFF) {
		setattr_detail(valid, attr, detail, sizeof(detail));
		a = audit_node(req, OP_SETATTR, n, -1, err, detail);
		if (!err)
			err = a;
	}
	if (err)
		reply_err(req, err);
	else
		fuse_reply_attr(req, &st, ws_attr_timeout_of(n));
}

static void ws_readlink(fuse_req_t req, fuse_ino_t ino)
{
	struct ws_inode *n = inode_of(ino);
	char buf[PATH_MAX + 1];
	ssize_t len;
	int fd;

	if (op_begin(req, OP_READLINK))
		return;
	fd = inode_fd(n);
	if (fd < 0) {
		reply_err(req, fd);
		return;
	}
	len = readlinkat(fd, "", buf, sizeof(buf));
	if (len < 0)
		len = -errno;
	if (audit_level == AUDIT_FULL || (len < 0 && audit_denial((int)len)))
		audit_node(req, OP_READLINK, n, fd, len < 0 ? (int)len : 0, NULL);
	inode_fd_put(n);
	if (len < 0) {
		reply_err(req, (int)len);
	} else if ((size_t)len >= sizeof(buf)) {
		reply_err(req, -ENAMETOOLONG);
	} else {
		buf[len] = '\0';
		fuse_reply_readlink(req, buf);
	}
}

static void ws_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct ws_inode *root = itab_root();
	struct statvfs sv;
	int fd, err;

	op_note(req, OP_STATFS);
	(void)ino;
	fd = inode_fd(root);
	if (fd < 0) {
		reply_err(req, fd);
		return;
	}
	err = fstatvfs(fd, &sv) < 0 ? -errno : 0;
	inode_fd_put(root);
	if (err) {
		reply_err(req, err);
		return;
	}
	qmount_statfs(&sv);
	fuse_reply_statfs(req, &sv);
}

void ops_attr_register(struct fuse_lowlevel_ops *ops)
{
	ops->getattr = ws_getattr;
	ops->setattr = ws_setattr;
	ops->readlink = ws_readlink;
	ops->statfs = ws_statfs;
}
