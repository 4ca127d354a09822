/*
** Ephemeral scratch: the private, throw-away directories behind the
** ephemeral targets of a workspace, and their wipe.
**
** A daemon's scratch lives in <state>/scratch/<name>.<pid>/, mode 0700, one
** subdirectory per ephemeral target.  Next to it, <state>/scratch/
** .<name>.<pid>.lock is held with flock(LOCK_EX) for the daemon's whole life,
** so the kernel drops it however the daemon dies.  Whether a scratch tree is
** in use is decided by that lock alone, never by the pid (pids are reused):
** a sweep wipes every tree whose lock it can take.
**
** The wipe never follows a symlink and never leaves the tree: every step is
** an *at() call on a directory descriptor opened O_NOFOLLOW | O_DIRECTORY,
** and entries on another filesystem (a mount the host made inside) are
** unmounted by nobody and skipped.  It reports what it removed, and, per
** inode, what the quota had charged for it (quota/charge.h rules; an inode
** with several links is counted once, when its last link goes).
*/
#ifndef WSFS_SCRATCH_H
#define WSFS_SCRATCH_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct wipe_result {
	uint64_t files;		/* non-directories removed (links counted each) */
	uint64_t dirs;		/* directories removed, the roots included */
	uint64_t bytes;		/* apparent sizes of the regular files' inodes */
	uint64_t charge_bytes;	/* what the quota charged, xattrs excluded */
	uint64_t charge_inodes;
	uint64_t skipped;	/* entries left: other filesystems, errors */
};

/* Called once per inode whose last link the wipe removed (DEV, INO), so the
** caller can give back what else it charged (xattrs). */
typedef void (*wipe_inode_fn)(dev_t dev, ino_t ino, void *arg);

struct scratch;

/* Creates <STATE_DIR>/scratch/ (0700) if needed, then this daemon's
** <NAME>.<getpid()>/ and its lock. Returns 0, or -1 with a one-line reason
** in ERR; nothing is left behind on failure. */
int scratch_open(const char *state_dir, const char *name, struct scratch **out,
		 char *err, size_t errlen);

/* The scratch root's path, and a new directory inside it for target number
** INDEX ("<root>/<INDEX>", mode 1777 as a tmpfs would be): its O_RDONLY |
** O_DIRECTORY descriptor, or -errno. */
const char *scratch_path(const struct scratch *s);
int scratch_make_target(struct scratch *s, unsigned int index);

/* Wipes the whole tree, removes the root and the lock file, drops the lock
** and frees S. ON_INODE may be NULL. Returns 0, or -errno of the first
** failure (the wipe goes on past failures and counts them in skipped). */
int scratch_wipe_close(struct scratch *s, struct wipe_result *res,
		       wipe_inode_fn on_inode, void *arg);

/* Wipes every tree under <STATE_DIR>/scratch/ whose lock is free (left by a
** daemon that died), adding what it removed to *TOTAL and the number of
** trees to *TREES. A missing scratch directory is not an error. */
int scratch_sweep(const char *state_dir, struct wipe_result *total,
		  unsigned int *trees);

/* Wipes the contents of directory DIRFD (not DIRFD itself), never
** following symlinks and skipping other filesystems. */
int wipe_contents(int dirfd, struct wipe_result *res, wipe_inode_fn on_inode,
		  void *arg);

#endif
