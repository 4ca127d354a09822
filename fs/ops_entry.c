/*
** Operations on directory entries: lookup/forget, mkdir, mknod, symlink,
** link, unlink, rmdir and rename.
**
** Every name arrives from the kernel as a single path component and is used
** only as the last argument of an *at() call on the parent's O_PATH
** descriptor, never concatenated into a path, so there is nothing to walk and
** nothing to follow.  New entries are made with the caller's filesystem
** credentials (cred.h), and the reply's node is looked up through a
** descriptor on the new entry rather than by its name where the syscall gives
** us one.
*/
#include "account.h"
#include "cred.h"
#include "union.h"
#include "audit_event.h"
#include "wsfs.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void ws_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fuse_entry_param e;
	int err;

	if (op_begin(req, OP_LOOKUP))
		return;
	err = inode_lookup(inode_of(parent), name, &e);
	if (err && audit_denial(err))
		audit_name(req, OP_LOOKUP, inode_of(parent), name, NULL, err, NULL);
	if (err == -ENOENT) {
		/* A cached negative entry saves the lookup storms of compilers
		** and shells; every creation goes through us and replaces it. */
		memset(&e, 0, sizeof(e));
		e.entry_timeout = ws_entry_timeout_of(inode_of(parent));
		fuse_reply_entry(req, &e);
		return;
	}
	if (err)
		reply_err(req, err);
	else
		fuse_reply_entry(req, &e);
}

static void ws_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	op_note(req, OP_FORGET);
	inode_forget(inode_of(ino), nlookup);
	fuse_reply_none(req);
}

static void ws_forget_multi(fuse_req_t req, size_t count,
			    struct fuse_forget_data *forgets)
{
	audit_current_req = req;
	for (size_t i = 0; i < count; i++) {
		stats_op(OP_FORGET);
		inode_forget(inode_of(forgets[i].ino), forgets[i].nlookup);
	}
	fuse_reply_none(req);
}

/* Runs MAKE in PARENT's directory with the caller's credentials and replies
** with the new entry, found again by NAME. Shared by mkdir, mknod, symlink. */
enum make_kind { MAKE_DIR, MAKE_NODE, MAKE_SYMLINK };

static int make_entry(fuse_req_t req, fuse_ino_t parent, const char *name,
		      enum make_kind kind, mode_t mode, dev_t rdev,
		      const char *target, struct fuse_entry_param *e)
{
	struct ws_inode *dir = inode_of(parent);
	mode_t type = kind == MAKE_DIR ? S_IFDIR :
		      kind == MAKE_SYMLINK ? S_IFLNK : (mode & S_IFMT);
	struct cred_saved saved;
	int pfd, r, hid = 0;

	r = union_copy_up(dir);
	if (!r)
		r = ws_deny_change(dir);
	if (r)
		return r;
	r = account_new(dir, type);
	if (r)
		return r;
	pfd = inode_fd(dir);
	if (pfd < 0) {
		account_new_undo(dir, type);
		return pfd;
	}
	r = union_clear_whiteout(dir, pfd, name, &hid);
	if (r) {
		inode_fd_put(dir);
		account_new_undo(dir, type);
		return r;
	}
	cred_enter(req, &saved);
	switch (kind) {
	case MAKE_DIR:
		r = mkdirat(pfd, name, cred_mode(&saved, mode));
		break;
	case MAKE_NODE:
		r = mknodat(pfd, name, (mode & S_IFMT) | cred_mode(&saved, mode & 07777),
			    rdev);
		break;
	default:
		r = symlinkat(target, pfd, name);
		break;
	}
	r = r < 0 ? -errno : 0;
	cred_leave(&saved);
	/* A directory made where a whiteout hid a lower one must not show
	** the lower's entries; a failed make puts the whiteout back. */
	if (!r && hid && kind == MAKE_DIR)
		r = union_make_opaque(pfd, name);
	if (r && hid)
		(void)union_whiteout(dir, pfd, name);
	inode_fd_put(dir);
	if (r) {
		account_new_undo(dir, type);
		return r;
	}
	r = inode_lookup(dir, name, e);
	if (!r)
		account_new_done(dir, inode_of(e->ino), type);
	return r;
}

static void reply_made(fuse_req_t req, enum ws_op op, fuse_ino_t parent,
		       const char *name, int err, struct fuse_entry_param *e,
		       const char *detail)
{
	int a = audit_name(req, op, inode_of(parent), name, e, err, detail);

	if (!err && a) {
		/* Made, but not recorded: the caller is not told it exists. */
		inode_forget(inode_of(e->ino), 1);
		err = a;
	}
	if (err)
		reply_err(req, err);
	else
		fuse_reply_entry(req, e);
}

static void ws_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name,
		     mode_t mode)
{
	struct fuse_entry_param e;
	char detail[32];

	if (op_begin(req, OP_MKDIR))
		return;
	snprintf(detail, sizeof(detail), "mode=%04o", (unsigned int)(mode & 07777));
	reply_made(req, OP_MKDIR, parent, name,
		   make_entry(req, parent, name, MAKE_DIR, mode, 0, NULL, &e), &e,
		   detail);
}

/* Device nodes would let an agent reach hardware if the workspace were ever
** exposed without nodev, so they are refused outright. FIFOs, sockets and
** plain files are what tools actually make. */
static void ws_mknod(fuse_req_t req, fuse_ino_t parent, const char *name,
		     mode_t mode, dev_t rdev)
{
	struct fuse_entry_param e;
	char detail[64];

	if (op_begin(req, OP_MKNOD))
		return;
	snprintf(detail, sizeof(detail), "mode=%06o rdev=%llu", (unsigned int)mode,
		 (unsigned long long)rdev);
	if (!S_ISFIFO(mode) && !S_ISSOCK(mode) && !S_ISREG(mode)) {
		reply_made(req, OP_MKNOD, parent, name, -EPERM, &e, detail);
		return;
	}
	reply_made(req, OP_MKNOD, parent, name,
		   make_entry(req, parent, name, MAKE_NODE, mode, 0, NULL, &e), &e,
		   detail);
}

static void ws_symlink(fuse_req_t req, const char *target, fuse_ino_t parent,
		       const char *name)
{
	struct fuse_entry_param e;
	char detail[PATH_MAX + 16];

	if (op_begin(req, OP_SYMLINK))
		return;
	snprintf(detail, sizeof(detail), "target=%s", target);
	reply_made(req, OP_SYMLINK, parent, name,
		   make_entry(req, parent, name, MAKE_SYMLINK, 0, 0, target, &e),
		   &e, detail);
}

/* linkat(AT_EMPTY_PATH) links the node itself, whatever its current name is,
** so a rename racing with the link cannot make us link something else. */
static int link_entry(struct ws_inode *n, struct ws_inode *dir,
		      const char *newname, struct fuse_entry_param *e)
{
	int fd, pfd, err;

	err = union_copy_up(n);
	if (!err)
		err = union_copy_up(dir);
	if (!err)
		err = ws_deny_change(dir);
	if (!err)
		err = ws_cross_layer(n, dir);
	if (!err && n->type == S_IFDIR)
		err = -EPERM;
	if (err)
		return err;
	err = inode_fd2(n, &fd, dir, &pfd);
	if (err)
		return err;
	err = linkat(fd, "", pfd, newname, AT_EMPTY_PATH) < 0 ? -errno : 0;
	inode_fd2_put(n, dir);
	return err ? err : inode_lookup(dir, newname, e);
}

static void ws_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent,
		    const char *newname)
{
	struct ws_inode *n = inode_of(ino), *dir = inode_of(newparent);
	struct fuse_entry_param e;
	int err, a;

	if (op_begin(req, OP_LINK))
		return;
	err = link_entry(n, dir, newname, &e);
	a = audit_link(req, n, dir, newname, err);
	if (!err && a) {
		inode_forget(inode_of(e.ino), 1);
		err = a;
	}
	if (err)
		reply_err(req, err);
	else
		fuse_reply_entry(req, &e);
}

/* A directory a layer is grafted on is a mountpoint: it may not be
** removed, replaced or moved (EBUSY, as the kernel says for a mountpoint). */
static int graft_point(const struct ws_inode *dir, int dfd, const char *name)
{
	struct stat st;

	if (dir->layer != itab_upper() || itab_layer_count() < 2 ||
	    fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
	    !S_ISDIR(st.st_mode))
		return 0;
	return itab_graft_at(st.st_dev, st.st_ino) ? -EBUSY : 0;
}

/* Removes NAME from upper directory DIR (PFD); in a union, a name a lower
** still has is then hidden by a whiteout, and a merged directory must be
** empty in the merged view, its upper part holding whiteouts at most. */
static int remove_in_union(struct ws_inode *dir, int pfd, const char *name,
			   int flags, const struct victim *v)
{
	int in_low = union_in_lowers(dir, name), r = 0;

	if ((flags & AT_REMOVEDIR) && in_low) {
		r = union_dir_empty(dir, name);
		if (r == 0)
			return -ENOTEMPTY;
		if (r < 0)
			return r;
		r = v->exists ? union_clear_dir(pfd, name) : 0;
		if (r)
			return r;
	}
	if (v->exists)
		r = unlinkat(pfd, name, flags) < 0 ? -errno : 0;
	else if (!in_low)
		r = -ENOENT;
	if (r == 0 && in_low)
		r = union_whiteout(dir, pfd, name);
	return r;
}

/* The kernel holds the parent's and the victim's inode locks for the whole
** request, so the entry probed is the entry removed. */
static int remove_entry(fuse_ino_t parent, const char *name, int flags)
{
	struct ws_inode *dir = inode_of(parent);
	struct victim v;
	int pfd, r;

	r = union_copy_up(dir);
	if (!r)
		r = ws_deny_change(dir);
	if (r)
		return r;
	pfd = inode_fd(dir);
	if (pfd < 0)
		return pfd;
	account_victim_probe(&v, dir, pfd, name);
	r = v.exists && v.type == S_IFDIR ? graft_point(dir, pfd, name) : 0;
	if (r == 0)
		r = remove_in_union(dir, pfd, name, flags, &v);
	inode_fd_put(dir);
	account_victim_end(&v, r);
	return r;
}

static void ws_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	int err, a;

	if (op_begin(req, OP_UNLINK))
		return;
	err = remove_entry(parent, name, 0);
	a = audit_name(req, OP_UNLINK, inode_of(parent), name, NULL, err, NULL);
	reply_status(req, err ? -err : -a);
}

static void ws_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	int err, a;

	if (op_begin(req, OP_RMDIR))
		return;
	err = remove_entry(parent, name, AT_REMOVEDIR);
	a = audit_name(req, OP_RMDIR, inode_of(parent), name, NULL, err, NULL);
	reply_status(req, err ? -err : -a);
}

/* Renames in the upper; a whiteout at the new name goes first (a directory
** cannot replace a device, and one moved where a lower directory was
** hidden must stay opaque), and one is left at the old name if a lower
** still has it. */
static int rename_in_union(struct ws_inode *from, int ofd, const char *name,
			   struct ws_inode *to, int nfd, const char *newname,
			   unsigned int flags)
{
	int in_low = union_in_lowers(from, name), hid = 0, r;
	struct stat st;

	r = union_clear_whiteout(to, nfd, newname, &hid);
	if (r)
		return r;
	r = renameat2(ofd, name, nfd, newname, flags) < 0 ? -errno : 0;
	if (r == 0 && hid && fstatat(nfd, newname, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	    S_ISDIR(st.st_mode))
		r = union_make_opaque(nfd, newname);
	if (r && hid)
		(void)union_whiteout(to, nfd, newname);
	if (r == 0 && in_low)
		r = union_whiteout(from, ofd, name);
	return r;
}

/* What may stop a rename before it touches anything: cow directories do
** not move (EXDEV: tools copy instead), read-only layers, layer borders. */
static int rename_allowed(struct ws_inode *from, const char *name,
			  struct ws_inode *to, unsigned int flags)
{
	int err = union_copy_up(from);

	if (!err)
		err = union_copy_up(to);
	if (!err && (union_merges(from) || union_merges(to)) &&
	    (flags & RENAME_EXCHANGE))
		err = -EXDEV;
	if (!err && union_merges(from)) {
		err = union_is_lower_dir(from, name);
		if (err > 0)
			err = -EXDEV;
	}
	if (!err)
		err = ws_deny_change(from);
	if (!err)
		err = ws_deny_change(to);
	if (!err)
		err = ws_cross_layer(from, to);
	if (!err && (flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE)))
		err = -EINVAL;
	return err;
}

static int rename_entry(struct ws_inode *from, const char *name,
			struct ws_inode *to, const char *newname,
			unsigned int flags)
{
	struct victim v;
	int ofd, nfd, err;

	err = rename_allowed(from, name, to, flags);
	if (err)
		return err;
	err = inode_fd2(from, &ofd, to, &nfd);
	if (err)
		return err;
	/* A rename over an entry removes one link of the replaced inode. */
	memset(&v, 0, sizeof(v));
	if (!(flags & (RENAME_NOREPLACE | RENAME_EXCHANGE)))
		account_victim_probe(&v, to, nfd, newname);
	err = graft_point(from, ofd, name);
	if (!err)
		err = graft_point(to, nfd, newname);
	if (!err)
		err = rename_in_union(from, ofd, name, to, nfd, newname, flags);
	inode_fd2_put(from, to);
	account_victim_end(&v, err);
	return err;
}

/* RENAME_WHITEOUT is not offered: whiteouts (0/0 character devices) are the
** daemon's own bookkeeping of cow layers (union.h), and one the agent made
** would hide base entries without the daemon knowing. */
static void ws_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
		      fuse_ino_t newparent, const char *newname,
		      unsigned int flags)
{
	struct ws_inode *from = inode_of(parent), *to = inode_of(newparent);
	int err, a;

	if (op_begin(req, OP_RENAME))
		return;
	err = rename_entry(from, name, to, newname, flags);
	a = audit_rename(req, from, name, to, newname, flags, err);
	reply_status(req, err ? -err : -a);
}

void ops_entry_register(struct fuse_lowlevel_ops *ops)
{
	ops->lookup = ws_lookup;
	ops->forget = ws_forget;
	ops->forget_multi = ws_forget_multi;
	ops->mkdir = ws_mkdir;
	ops->mknod = ws_mknod;
	ops->symlink = ws_symlink;
	ops->link = ws_link;
	ops->unlink = ws_unlink;
	ops->rmdir = ws_rmdir;
	ops->rename = ws_rename;
}
