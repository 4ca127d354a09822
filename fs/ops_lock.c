/*
** Advisory locks: getlk, setlk and flock (the table is lock_table.h, the
** waiting lock_wait.h).
**
** The kernel sends fcntl locks of both kinds, process-owned and OFD, as
** SETLK/GETLK with a lock owner, and flock as SETLK with FUSE_LK_FLOCK,
** which libfuse turns into the flock operation. Locks on shared
** directories also make this workspace's cached pages of the file stale:
** another workspace may have written it while the lock was free, and
** whoever waits for a lock does so to read what the last holder left.
** Dropping them waits for pages being read in, whose READ requests need a
** free libfuse worker: on a worker, enough concurrent grants would take
** every worker and hang the workspace. So a grant on a shared file is
** answered by lock_wait.h's delivery thread.
*/
#include "lock_table.h"
#include "lock_wait.h"
#include "lockset.h"
#include "setid.h"
#include "wsfs.h"
#include "audit_event.h"

#include <errno.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Pages and attributes this workspace cached may predate another
** workspace's writes: drop them before the caller learns it holds the
** lock. Not on the request's own inode lock path (SETLK takes none).
** The kind decides what an unlock is: LOCK_EX has F_UNLCK's value. */
static void granted(struct ws_inode *n, const struct lock_req *r)
{
	int unlock = r->kind == LOCK_KIND_FLOCK ? r->type == LOCK_UN :
						  r->type == F_UNLCK;

	if (!n->layer->shared || unlock || !ws_session)
		return;
	(void)fuse_lowlevel_notify_inval_inode(ws_session, (uintptr_t)n, 0, 0);
}

static int fcntl_request(fuse_req_t req, struct fuse_file_info *fi,
			 const struct flock *lock, struct lock_req *r)
{
	r->kind = LOCK_KIND_FCNTL;
	r->owner = fi->lock_owner;
	r->hfd = fh_fd(fi);
	r->type = lock->l_type;
	r->pid = lock->l_pid > 0 ? lock->l_pid : fuse_req_ctx(req)->pid;
	r->at_ns = now_ns();
	if (r->type != F_RDLCK && r->type != F_WRLCK && r->type != F_UNLCK)
		return -EINVAL;
	return lockset_range(lock->l_start, lock->l_len, &r->start, &r->end);
}

static void ws_getlk(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi,
		     struct flock *lock)
{
	struct lock_req r;
	struct flock fl;
	int err;

	if (op_begin(req, OP_GETLK))
		return;
	err = fcntl_request(req, fi, lock, &r);
	if (!err)
		err = locks_fcntl_test(inode_of(ino), &r, &fl);
	if (err)
		reply_err(req, err);
	else
		fuse_reply_lock(req, &fl);
}

/* The end of a wait, on its own thread. */
static void wait_done(fuse_req_t req, struct lock_pending *p, int err)
{
	struct ws_inode *n = lock_pending_inode(p);
	struct lock_req r = *lock_pending_req(p);	/* P is freed below */

	locks_pending_done(p, err);
	if (!err)
		granted(n, &r);
	reply_status(req, -err);
}

/* What the table handed back in P, if anything: a wait for the lock (ERR
** -EAGAIN), which goes to a thread when the caller may SLEEP, or a grant
** (ERR 0), whose reply goes to a thread when the file is SHARED. Returns
** 1 when that thread owns the reply; otherwise P is done with and *ERR is
** what to answer here. */
static int hand_off(fuse_req_t req, struct lock_pending *p, int *err,
		    int sleep, int shared)
{
	int w;

	if (!p)
		return 0;
	if (*err ? sleep : shared) {
		w = *err ? lock_wait_start(req, p, wait_done) :
			   lock_deliver(req, p, wait_done);
		if (!w)
			return 1;
		if (*err)
			*err = w;	/* cannot wait */
		/* and a grant is answered here after all */
	}
	locks_pending_done(p, *err);
	return 0;
}

static void ws_setlk(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi,
		     struct flock *lock, int sleep)
{
	struct ws_inode *n = inode_of(ino);
	struct lock_pending *p = NULL;
	int shared = n->layer->shared;
	struct lock_req r;
	int err;

	if (op_begin(req, OP_SETLK))
		return;
	err = fcntl_request(req, fi, lock, &r);
	if (!err)
		err = locks_fcntl_set(n, &r, sleep || shared ? &p : NULL);
	if (hand_off(req, p, &err, sleep, shared))
		return;
	if (!err)
		granted(n, &r);
	reply_status(req, err < 0 ? -err : 0);
}

static void ws_flock(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi,
		     int op)
{
	struct ws_inode *n = inode_of(ino);
	struct lock_pending *p = NULL;
	int shared = n->layer->shared, sleep = !(op & LOCK_NB);
	struct lock_req r;
	int err;

	if (op_begin(req, OP_FLOCK))
		return;
	memset(&r, 0, sizeof(r));
	r.kind = LOCK_KIND_FLOCK;
	r.owner = fi->lock_owner;
	r.hfd = fh_fd(fi);
	r.type = op & (LOCK_SH | LOCK_EX | LOCK_UN);
	r.end = LOCKSET_EOF;
	r.pid = fuse_req_ctx(req)->pid;
	r.at_ns = now_ns();
	if (r.type != LOCK_SH && r.type != LOCK_EX && r.type != LOCK_UN) {
		reply_err(req, -EINVAL);
		return;
	}
	err = locks_flock_set(n, &r, sleep || shared ? &p : NULL);
	if (hand_off(req, p, &err, sleep, shared))
		return;
	if (!err)
		granted(n, &r);
	reply_status(req, err < 0 ? -err : 0);
}

void ops_lock_register(struct fuse_lowlevel_ops *ops)
{
	ops->getlk = ws_getlk;
	ops->setlk = ws_setlk;
	ops->flock = ws_flock;
}
