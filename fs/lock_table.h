/*
** Advisory locks: who holds what, and on which open file description.
**
** The kernel arbitrates every lock; this table only decides where each one
** is taken and remembers it for `wsctl locks`. A FUSE lock owner is not a
** process the backing filesystem can see, and the daemon is one process,
** so taking every owner's lock on one descriptor would make all of a
** workspace's agents a single owner that never conflicts with itself. So:
**
**  - fcntl locks (F_SETLK, F_SETLKW, F_GETLK and their OFD forms, which the
**    kernel sends alike) are taken with F_OFD_SETLK on an open file
**    description of the owner's own, opened on the backing file at its
**    first lock. Owners then conflict with each other, with other
**    workspaces' owners and with host processes exactly as on one local
**    filesystem, and merging and splitting follow the kernel's own rules.
**  - flock locks belong to the agent's open file, which is one backing
**    open file description already (fi->fh), so flock() goes straight to it.
**
** Locks are dropped the way the kernel drops them on a local filesystem:
** an owner's fcntl locks when it closes the file (FLUSH carries the owner)
** or when a file it locked through is released (an OFD owner *is* that open
** file); flock locks with the handle's descriptor. When the daemon dies the
** kernel closes every description, so nothing stays held.
**
** One mutex guards the table. It is held only around non-blocking calls;
** a lock that must wait is handed to lock_wait.h with a duplicate
** descriptor of the description, so that the wait holds nothing here.
*/
#ifndef WSFS_LOCK_TABLE_H
#define WSFS_LOCK_TABLE_H

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "inode.h"

enum lock_kind { LOCK_KIND_FCNTL, LOCK_KIND_FLOCK };

/* One lock request, as the handlers decode it. */
struct lock_req {
	enum lock_kind kind;
	uint64_t owner;		/* FUSE lock owner (fcntl) */
	int hfd;		/* the agent's handle: its backing descriptor */
	int type;		/* F_RDLCK, F_WRLCK, F_UNLCK (flock: SH, EX, UN) */
	int64_t start, end;	/* fcntl: inclusive, end LOCKSET_EOF to EOF */
	pid_t pid;		/* the caller, in the daemon's pid namespace */
	int64_t at_ns;		/* when asked (CLOCK_REALTIME) */
};

/* R as the struct flock (SEEK_SET, l_pid 0) the OFD calls take. */
struct flock lock_req_flock(const struct lock_req *r);

/* A request that must wait: the table lists it as a waiter until
** locks_pending_done. FD is a duplicate of the description to lock, or -1
** for a grant whose reply is sent from another thread. */
struct lock_pending;
int lock_pending_fd(const struct lock_pending *p);
const struct lock_req *lock_pending_req(const struct lock_pending *p);
struct ws_inode *lock_pending_inode(const struct lock_pending *p);

/* F_GETLK for owner R->owner: FL (SEEK_SET) is filled with the first
** conflicting lock, its pid when the holder is one of this workspace's
** agents or a host process (0 otherwise), or F_UNLCK. */
int locks_fcntl_test(struct ws_inode *n, const struct lock_req *r,
		     struct flock *fl);

/* F_SETLK / F_SETLKW. Returns 0 when done. With WAIT non-NULL and a
** conflict, returns -EAGAIN with *WAIT set: the caller waits on it and
** ends with locks_pending_done. With WAIT non-NULL and the lock granted,
** returns 0 with *WAIT set to a pending without a descriptor (-1), which
** only carries the reply elsewhere; it too ends with locks_pending_done.
** Otherwise -EAGAIN (conflict), -ENOLCK (too many owners or waiters),
** -EBADF or another -errno. */
int locks_fcntl_set(struct ws_inode *n, const struct lock_req *r,
		    struct lock_pending **wait);

/* flock(LOCK_SH | LOCK_EX | LOCK_UN), the same contract. */
int locks_flock_set(struct ws_inode *n, const struct lock_req *r,
		    struct lock_pending **wait);

/* After the wait: ERR is its result (0: the lock is held). Records it, or
** lets it go if its owner closed the file meanwhile; frees P. */
void locks_pending_done(struct lock_pending *p, int err);

/* At FLUSH: the close of any descriptor drops the owner's fcntl locks on
** the file (POSIX). */
void locks_owner_closed(struct ws_inode *n, uint64_t owner);

/* At RELEASE of the handle HFD: its flock goes, and so do the fcntl locks
** of every owner that locked through it. */
void locks_handle_closed(struct ws_inode *n, int hfd);

/* Whether closes of N must reach the daemon (no FOPEN_NOFLUSH): a shared
** file, or one with locks, where FLUSH is how a close drops locks. */
int locks_want_flush(const struct ws_inode *n);

/* "lock ..." lines for the control socket (ctl_proto.h), and counts. */
void locks_write_kv(FILE *out);
void locks_counts(uint64_t *held, uint64_t *waiting);

/* At unmount, after every waiter has ended: closes what is left. */
void locks_table_clear(void);

#endif
