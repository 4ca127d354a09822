/*
** What each operation does to the quota ledger: the "reserve" and "settle"
** steps of the request path, between resolving the node and replying.
**
** Growth is reserved before the backing syscall and settled after it with
** what really changed, so a refused call changes nothing and a short write
** gives back what it did not use.  The ledger is kept whether or not the
** workspace has limits: a limit set live must start from true usage.
**
** A regular file's charge follows its size, which the node tracks (-1 until
** first needed).  Every size change (write, truncate, fallocate,
** copy_file_range, O_TRUNC) happens under the node's size lock, one of a
** small array of striped mutexes, so the reservation and the syscall act on
** the same old size and concurrent writers on one file cannot both charge
** the same growth.
*/
#ifndef WSFS_ACCOUNT_H
#define WSFS_ACCOUNT_H

#include <stdint.h>
#include <sys/types.h>

#include "inode.h"

/* An open size change: begin reserves and locks, end settles and unlocks. */
struct grow {
	struct ws_inode *n;
	int64_t old;		/* size before */
	int64_t want;		/* size if the call does all it was asked */
	int64_t start;		/* where a write begins */
	uint64_t reserved;	/* bytes charged for want */
};

/* The xattr charge table's key for inode INO of layer L. Scratch may live
** on another filesystem than the upper, so its numbers are kept apart; the
** upper's key is the inode number itself, as the scan and state.db use. */
uint64_t account_xattr_key(const struct ws_layer *l, ino_t ino);

/* Before creating an inode of TYPE in DIR; account_new_undo if the
** syscall fails. */
int account_new(const struct ws_inode *dir, mode_t type);
void account_new_undo(const struct ws_inode *dir, mode_t type);

/* After the entry was made, as node N: in a shared directory, what making
** it cost becomes this workspace's to be credited when it goes. */
void account_new_done(const struct ws_inode *dir, const struct ws_inode *n,
		      mode_t type);

/* Before a write of LEN bytes at OFF (or at end of file if APPEND) through
** FD. Returns 0 with the size lock held, or -EDQUOT/-ENOSPC/-errno. */
int account_write_begin(struct grow *g, struct ws_inode *n, int fd, off_t off,
			size_t len, int append);
/* After it: RES is what the syscall returned (bytes, or -errno). */
void account_write_end(struct grow *g, ssize_t res);

/* Before setting N's size to SIZE (truncate, O_TRUNC; FD is any descriptor
** on N, O_PATH included, to learn the old size). */
int account_resize_begin(struct grow *g, struct ws_inode *n, int fd, off_t size);
/* After: ERR is the syscall's result (0 or -errno). */
void account_resize_end(struct grow *g, int err);

/* Before fallocate(MODE, OFF, LEN): what the mode does to the size.
** Under a byte limit, -EOPNOTSUPP for allocating past end of file without
** growing it: that takes disk space apparent size does not show. */
int account_fallocate_begin(struct grow *g, struct ws_inode *n, int fd,
			    int mode, off_t off, off_t len);

/* An entry about to lose a link (unlink, rmdir, rename's target). */
struct victim {
	const struct ws_layer *layer;	/* the directory's */
	int exists;
	mode_t type;
	nlink_t nlink;
	int64_t size;
	int may_free;		/* a directory, or a file's last link */
	int life_known;		/* life is taken only if may_free */
	struct inode_life life;	/* life.ino is known whenever exists is */
};

/* Looks at NAME in the directory DIR (open as PFD) before removing or
** replacing it;
** every probe must be followed by account_victim_end. */
void account_victim_probe(struct victim *v, struct ws_inode *dir, int pfd,
			  const char *name);
/* After the removal, whose result was ERR (0 or -errno): if it succeeded,
** frees the charge if that was the last link, or leaves it to the last
** close if the file is still open. */
void account_victim_end(const struct victim *v, int err);

/* At a release whose inode_unpin() reported the last close of an orphan. */
void account_orphan_closed(struct ws_inode *n);

/* Extended attributes: PATH is /proc/self/fd/N of the node. */
int account_setxattr(struct ws_inode *n, const char *path, const char *name,
		     const char *value, size_t size, int flags);
int account_removexattr(struct ws_inode *n, const char *path, const char *name);

#endif
