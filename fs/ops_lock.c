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
** lock. Not on the request's own inode lock path (SETLK takes none). */
static void granted(struct ws_inode *n, int type)
{
	if (!n->layer->shared || type == F_UNLCK || type == LOCK_UN ||
	    !ws_session)
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
	int type = lock_pending_req(p)->type;

	locks_pending_done(p, err);
	if (!err)
		granted(n, type);
	fuse_reply_err(req, -err);
}

static void ws_setlk(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi,
		     struct flock *lock, int sleep)
{
	struct ws_inode *n = inode_of(ino);
	struct lock_pending *wait = NULL;
	struct lock_req r;
	int err;

	if (op_begin(req, OP_SETLK))
		return;
	err = fcntl_request(req, fi, lock, &r);
	if (!err)
		err = locks_fcntl_set(n, &r, sleep ? &wait : NULL);
	if (err == -EAGAIN && wait) {
		err = lock_wait_start(req, wait, wait_done);
		if (!err)
			return;
		locks_pending_done(wait, err);
	}
	if (!err)
		granted(n, r.type);
	fuse_reply_err(req, err < 0 ? -err : 0);
}

static void ws_flock(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi,
		     int op)
{
	struct ws_inode *n = inode_of(ino);
	struct lock_pending *wait = NULL;
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
	err = locks_flock_set(n, &r, (op & LOCK_NB) ? NULL : &wait);
	if (err == -EAGAIN && wait) {
		err = lock_wait_start(req, wait, wait_done);
		if (!err)
			return;
		locks_pending_done(wait, err);
	}
	if (!err)
		granted(n, r.type);
	fuse_reply_err(req, err < 0 ? -err : 0);
}

void ops_lock_register(struct fuse_lowlevel_ops *ops)
{
	ops->getlk = ws_getlk;
	ops->setlk = ws_setlk;
	ops->flock = ws_flock;
}
