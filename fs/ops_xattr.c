/*
** Extended attributes.
**
** The *xattr() calls take a path, so they are aimed at /proc/self/fd/N of the
** node's O_PATH descriptor: the kernel resolves that magic link to the node
** itself (a symlink node included, not its target), so no name in the
** backing tree is resolved.  Which namespaces work (user.*, trusted.*,
** security.*) is whatever the backing filesystem allows to root.
**
** POSIX ACL names are refused unless the workspace is mounted with -o acl:
** only then does the kernel enforce ACLs (FUSE_CAP_POSIX_ACL); stored
** unseen by it, an ACL would grant nothing yet suggest otherwise.  With -o
** acl the backing filesystem keeps the mode in sync with the access ACL.
*/
#include "account.h"
#include "union.h"
#include "audit_event.h"
#include "wsfs.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>

static int is_acl_name(const char *name)
{
	return !ws_opt->acl && (strcmp(name, "system.posix_acl_access") == 0 ||
				strcmp(name, "system.posix_acl_default") == 0);
}

static int is_fcaps_name(const char *name)
{
	return strcmp(name, "security.capability") == 0;
}

/* Replies to a get or list request; with SIZE 0 the kernel asked for the
** length alone. */
static void reply_xattr(fuse_req_t req, ssize_t len, size_t size,
			const char *buf)
{
	if (len < 0)
		reply_err(req, (int)len);
	else if (size == 0)
		fuse_reply_xattr(req, (size_t)len);
	else
		fuse_reply_buf(req, buf, (size_t)len);
}

static void proc_path(int fd, char buf[32])
{
	snprintf(buf, 32, "/proc/self/fd/%d", fd);
}

/* cow layers' marks (origin, opaque): an agent, even root, neither reads
** nor forges them. */
#define INTERNAL_XATTR "trusted.wsfs."

static int internal_xattr(const char *name)
{
	return strncmp(name, INTERNAL_XATTR, sizeof(INTERNAL_XATTR) - 1) == 0;
}

static int setxattr_node(struct ws_inode *n, const char *name,
			 const char *value, size_t size, int flags)
{
	char path[32];
	int fd, err;

	err = internal_xattr(name) ? -EPERM : union_copy_up(n);
	if (!err)
		err = ws_deny_change(n);
	if (!err && is_acl_name(name))
		err = -EOPNOTSUPP;
	if (err)
		return err;
	if (is_fcaps_name(name))
		inode_set_no_fcaps(n, 0);
	fd = inode_fd(n);
	if (fd < 0)
		return fd;
	proc_path(fd, path);
	err = account_setxattr(n, path, name, value, size, flags);
	inode_fd_put(n);
	return err;
}

/* The attribute's name and value size; values may be secrets, so they
** stay out of the log. */
static void xattr_detail(const char *name, size_t size, char *buf, size_t len)
{
	snprintf(buf, len, "name=%s size=%zu", name, size);
}

static void ws_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
			const char *value, size_t size, int flags)
{
	struct ws_inode *n = inode_of(ino);
	char detail[XATTR_NAME_MAX + 32];
	int err, a;

	if (op_begin(req, OP_SETXATTR))
		return;
	err = setxattr_node(n, name, value, size, flags);
	if (audit_level != AUDIT_OFF) {
		xattr_detail(name, size, detail, sizeof(detail));
		a = audit_node(req, OP_SETXATTR, n, -1, err, detail);
		if (!err)
			err = a;
	}
	reply_status(req, -err);
}

/* With SIZE 0 the kernel asks only how big the value is. */
static void ws_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
			size_t size)
{
	struct ws_inode *n = inode_of(ino);
	char path[32];
	char *buf = NULL;
	ssize_t len;
	int fd;

	if (op_begin(req, OP_GETXATTR))
		return;
	if (is_acl_name(name) || internal_xattr(name) ||
	    (is_fcaps_name(name) && inode_no_fcaps(n))) {
		reply_err(req, -ENODATA);
		return;
	}
	if (size && !(buf = malloc(size))) {
		reply_err(req, -ENOMEM);
		return;
	}
	fd = inode_fd(n);
	if (fd < 0) {
		free(buf);
		reply_err(req, fd);
		return;
	}
	proc_path(fd, path);
	len = getxattr(path, name, buf, size);
	if (len < 0)
		len = -errno;
	if (len < 0 && audit_denial((int)len))
		audit_node(req, OP_GETXATTR, n, fd, (int)len, NULL);
	inode_fd_put(n);
	reply_xattr(req, len, size, buf);
	free(buf);
}

/* The backing fs lists trusted.* names to us because we are root; the
** kernel would hide them from a caller without CAP_SYS_ADMIN, and for FUSE it
** leaves that to us. Non-root callers are treated as unprivileged; even
** root never sees the daemon's own trusted.wsfs.* marks. Returns the new
** length of the NUL-separated LIST without names starting with PREFIX. */
static size_t hide_names(char *list, size_t len, const char *prefix)
{
	size_t in = 0, out = 0, plen = strlen(prefix);

	while (in < len) {
		size_t n = strnlen(list + in, len - in) + 1;

		if (strncmp(list + in, prefix, plen) != 0) {
			memmove(list + out, list + in, n);
			out += n;
		}
		in += n;
	}
	return out;
}

/* Without a buffer the kernel only asks for the size; the size of the
** filtered list is only known after reading the whole list. */
static ssize_t list_names(const char *path, fuse_req_t req, char *buf,
			  size_t size)
{
	char *all;
	ssize_t len;

	const char *hidden = fuse_req_ctx(req)->uid == 0 ? INTERNAL_XATTR :
			     "trusted.";

	len = listxattr(path, NULL, 0);
	if (len <= 0)
		return len;
	all = malloc((size_t)len);
	if (!all) {
		errno = ENOMEM;
		return -1;
	}
	len = listxattr(path, all, (size_t)len);
	if (len > 0)
		len = (ssize_t)hide_names(all, (size_t)len, hidden);
	if (len > 0 && size) {
		if ((size_t)len > size) {
			free(all);
			errno = ERANGE;
			return -1;
		}
		memcpy(buf, all, (size_t)len);
	}
	free(all);
	return len;
}

static void ws_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	struct ws_inode *n = inode_of(ino);
	char path[32];
	char *buf = NULL;
	ssize_t len;
	int fd;

	if (op_begin(req, OP_LISTXATTR))
		return;
	if (size && !(buf = malloc(size))) {
		reply_err(req, -ENOMEM);
		return;
	}
	fd = inode_fd(n);
	if (fd < 0) {
		free(buf);
		reply_err(req, fd);
		return;
	}
	proc_path(fd, path);
	len = list_names(path, req, buf, size);
	if (len < 0)
		len = -errno;
	inode_fd_put(n);
	reply_xattr(req, len, size, buf);
	free(buf);
}

static int removexattr_node(struct ws_inode *n, const char *name)
{
	char path[32];
	int fd, err;

	err = internal_xattr(name) ? -ENODATA : union_copy_up(n);
	if (!err)
		err = ws_deny_change(n);
	if (err)
		return err;
	if (is_fcaps_name(name))
		inode_set_no_fcaps(n, 0);
	fd = inode_fd(n);
	if (fd < 0)
		return fd;
	proc_path(fd, path);
	err = account_removexattr(n, path, name);
	inode_fd_put(n);
	return err;
}

static void ws_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	struct ws_inode *n = inode_of(ino);
	char detail[XATTR_NAME_MAX + 32];
	int err, a;

	if (op_begin(req, OP_REMOVEXATTR))
		return;
	err = removexattr_node(n, name);
	if (audit_level != AUDIT_OFF) {
		xattr_detail(name, 0, detail, sizeof(detail));
		a = audit_node(req, OP_REMOVEXATTR, n, -1, err, detail);
		if (!err)
			err = a;
	}
	reply_status(req, -err);
}

void ops_xattr_register(struct fuse_lowlevel_ops *ops)
{
	ops->setxattr = ws_setxattr;
	ops->getxattr = ws_getxattr;
	ops->listxattr = ws_listxattr;
	ops->removexattr = ws_removexattr;
}
