/*
** Waiting for a lock without holding a worker thread, and giving up when
** the caller is interrupted.
**
** F_SETLKW and a blocking flock may wait for as long as another agent
** holds the lock. Waiting on a libfuse worker would let 10 waiters stall
** every other request of the workspace, so each wait gets a thread of its
** own, which blocks in the kernel (F_OFD_SETLKW or flock) on a duplicate of
** the description, replies, and exits. Waiting in the kernel keeps its
** fairness and wake-ups; polling with F_SETLK would not.
**
** Grants on shared files are answered off the workers too, by one
** delivery thread: see lock_deliver.
**
** A signal to the caller makes the kernel send FUSE_INTERRUPT, and libfuse
** calls us back: the callback sets the wait's cancel flag and signals its
** thread with WAKE_SIGNAL (a no-op handler without SA_RESTART) until the
** thread says it has finished, so a signal that lands just before the
** thread enters the blocking call is sent again rather than lost (libfuse's
** high-level API resends the same way). The caller then gets EINTR, or
** restarts the call if its handler asked for SA_RESTART, as on a local
** filesystem. A killed caller is interrupted the same way.
*/
#ifndef WSFS_LOCK_WAIT_H
#define WSFS_LOCK_WAIT_H

#include <fuse_lowlevel.h>

#include "lock_table.h"

/* Called on the waiting thread with the wait's result (0: the lock is
** held, -EINTR: interrupted, else -errno); it must reply to REQ. */
typedef void (*lock_wait_done_fn)(fuse_req_t req, struct lock_pending *p,
				  int err);

/* Starts waiting for P on a thread of its own. Returns 0, or -errno with
** nothing started (the caller still owns P and must reply). */
int lock_wait_start(fuse_req_t req, struct lock_pending *p,
		    lock_wait_done_fn done);

/* Answers a lock granted at once on a shared file: DONE runs (with 0) on
** the delivery thread. Returns 0, or -errno with P still the caller's. */
int lock_deliver(fuse_req_t req, struct lock_pending *p,
		 lock_wait_done_fn done);

/* At unmount: answers every delivery, interrupts every wait and returns
** when all have ended. */
void lock_wait_shutdown(void);

#endif
