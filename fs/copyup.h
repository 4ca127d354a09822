/*
** Copy-up: the primitive a cow layer uses to bring one entry of a lower
** layer into the upper before it is changed.
**
** The copy is atomic as seen by name: NAME appears in the upper directory
** complete (data, owner, mode, times, extended attributes and the origin
** xattr) or not at all.  A regular file is built as an O_TMPFILE inode and
** linked in when it is whole; anything else is built under a temporary name
** (COPYUP_TEMP_PREFIX plus random hex, which merge.h's ".wsfs-" rule keeps
** out of listings) and renamed over NAME.  A directory
** is copied empty: cow copies children up one by one, on demand.
**
** Every operation in the upper is an *at() call on DST_DIRFD with a single
** component, or goes through /proc/self/fd/N of a descriptor opened
** O_NOFOLLOW, so nothing in the upper is ever followed.  Device nodes are
** refused (EPERM), as everywhere in wsfs.
**
** Extended attributes copied: user.*, trusted.*, security.* and the POSIX
** ACLs (system.posix_acl_*); names under trusted.wsfs. are wsfs's own
** bookkeeping and are never copied.  Other namespaces are skipped.  An ACL
** the copy inherited from a default ACL of DST_DIRFD, which the source does
** not have, is removed, so the copy's ACLs are the source's.
**
** The module knows nothing of FUSE or the inode table: the caller holds
** whatever locks make NAME stable, and hides the temporary names from the
** agent.  The lower is assumed not to change during a copy (as overlayfs
** assumes): a source that ends before the size it had when it was charged
** fails the copy with ESTALE.
*/
#ifndef WSFS_COPYUP_H
#define WSFS_COPYUP_H

#include <stddef.h>
#include <stdint.h>

#define COPYUP_ORIGIN_XATTR "trusted.wsfs.origin"
#define COPYUP_TEMP_PREFIX ".wsfs-cu."

struct copyup_req {
	int src_fd;		/* the lower entry: O_PATH, any type */
	int dst_dirfd;		/* upper directory for NAME; O_PATH is fine */
	const char *name;	/* a single path component */
	/* The value of COPYUP_ORIGIN_XATTR on the copy; may be NULL. */
	const void *origin;
	size_t origin_len;
	int fsync;		/* sync the copy before it appears, the
				** directory after */
	int replace;		/* NAME may exist: see copyup() */
	/* Quota hooks, may be NULL: reserve before anything is made, release
	** with the same figures if the copy then fails. reserve returns 0 or
	** -errno. */
	int (*reserve)(uint64_t bytes, uint64_t inodes, void *arg);
	void (*release)(uint64_t bytes, uint64_t inodes, void *arg);
	void *arg;
};

/* Copies REQ->src_fd to REQ->name in REQ->dst_dirfd.  Returns 0 or -errno;
** on failure nothing is left behind in DST_DIRFD and the reservation has
** been released.
**
** Without replace, an existing NAME (of any type, a symlink included, never
** followed) fails with EEXIST.  With replace, a non-directory copy replaces
** whatever non-directory NAME is (rename(2) rules: a directory gives
** EISDIR); a directory copy replaces an empty directory (a non-empty one
** gives ENOTEMPTY or EEXIST) or a whiteout, a 0:0 character device (as in
** merge.h).  Anything else stays and gives EEXIST.
**
** The exceptions to "nothing left behind", where the error is returned with
** the copy in place and still charged (the victim of a replace cannot be
** brought back): fsync is set and syncing DST_DIRFD after the copy appeared
** fails (only the copy's durability is then unknown); or a directory
** swapped with a whiteout can neither remove it nor swap back (a second
** RENAME_EXCHANGE failing right after the first, which leaves the whiteout
** under a temporary name).
**
** Errors of note: EINVAL (bad name, or origin_len without origin), EPERM
** (a device node, or not allowed to give the copy the source's owner or
** trusted.* xattrs), EEXIST, ESTALE (the source changed while copied), and
** whatever the reserve hook or the filesystem returns. */
int copyup(const struct copyup_req *req);

/* What copyup() reserves for SRC_FD: quota/charge.h's charge_bytes() for its
** type and size plus the charge of its user.* xattrs, and 1 inode.  Returns
** 0 or -errno (EPERM for a device node). */
int copyup_charge(int src_fd, uint64_t *bytes, uint64_t *inodes);

#endif
