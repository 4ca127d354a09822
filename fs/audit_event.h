/*
** The request side of the audit log: turns what a handler did into a
** record (who asked, on which path, with what result) and hands it to the
** writer thread (audit_writer.h).
**
** Levels (-o audit=): off records nothing; meta (the default) records every
** change to the tree, every open with its release (bytes read and written
** through that handle and a fingerprint of what it wrote), copy-ups,
** whiteouts, the daemon's own events and every denial; full adds each read
** and write call, opendir and readlink.
**
** Handlers call these after their backing syscall, with its result; each
** returns at once when the level does not want the record.  Those that
** return an int give 0, or -EIO (-ENOMEM) when the record could not be
** kept: with audit_sync=full and audit_fail=closed, an operation whose
** record is not committed must not be reported as done, so the handler
** undoes what it can (an open is closed, a new entry forgotten) and
** replies with that error.  Paths are
** found by reading the backing descriptor's name in /proc/self/fd, which
** the kernel keeps current across renames, and are shown from the
** workspace root, layer targets included.
*/
#ifndef WSFS_AUDIT_EVENT_H
#define WSFS_AUDIT_EVENT_H

#include <fuse_lowlevel.h>
#include <stdint.h>
#include <sys/types.h>

#include "audit_writer.h"
#include "inode.h"
#include "stats.h"

enum audit_level { AUDIT_OFF, AUDIT_META, AUDIT_FULL };

extern enum audit_level audit_level;

/* The request this thread is serving, for records of work it causes
** deeper down (copy-up, whiteouts, quota thresholds). */
extern __thread fuse_req_t audit_current_req;

/* Every handler that acts for a caller starts here: counts the operation,
** notes the request, and refuses it with EIO while the audit log fails
** closed. Returns 1 when it has replied (the handler must return). */
static inline int op_begin(fuse_req_t req, enum ws_op op)
{
	stats_op(op);
	audit_current_req = req;
	if (!audit_failing())
		return 0;
	stats_error_reply(EIO);
	fuse_reply_err(req, EIO);
	return 1;
}

/* For handlers that must never be refused (forget, release, flush):
** counts and notes the request only. */
static inline void op_note(fuse_req_t req, enum ws_op op)
{
	stats_op(op);
	audit_current_req = req;
}

struct ws_options;

/* Starts the writer, learns each layer's backing root, and records
** audit-start and mount. Before the session serves; -1 after printing why. */
int audit_events_start(const struct ws_options *opt);
/* Records unmount (HOW: "clean", a signal, an error). */
void audit_events_unmount(const char *how);
/* Records audit-stop, drains the queue, writes the last checkpoint. */
void audit_events_stop(void);

/* Entry operations on NAME in DIR: create, mkdir, mknod, symlink, unlink,
** rmdir. E is the new entry (NULL when none). DETAIL may be NULL. */
int audit_name(fuse_req_t req, enum ws_op op, struct ws_inode *dir,
		const char *name, const struct fuse_entry_param *e, int err,
		const char *detail);
int audit_link(fuse_req_t req, struct ws_inode *n, struct ws_inode *dir,
		const char *newname, int err);
int audit_rename(fuse_req_t req, struct ws_inode *from, const char *name,
		  struct ws_inode *to, const char *newname, unsigned int flags,
		  int err);
/* An operation on node N (setattr, setxattr, removexattr, and denials of
** any other operation). FD: a descriptor on N to name it by, or -1. */
int audit_node(fuse_req_t req, enum ws_op op, struct ws_inode *n, int fd,
		int err, const char *detail);
/* Operations that change nothing are recorded when they are denied:
** permission, read-only layer, or quota (EDQUOT, or ENOSPC with
** quota_errno=enospc). */
static inline int audit_denial(int err)
{
	return audit_level != AUDIT_OFF &&
	       (err == -EACCES || err == -EPERM || err == -EROFS ||
		err == -EDQUOT || err == -ENOSPC);
}

/* Opens: the handle's record is kept (by backing descriptor FD) until its
** release, which records what went through it. CREATED: made by this open
** (create). Called on failures too (FD < 0) to record the denial. */
/* N's path in the workspace, layer targets included ("?" if unknown). */
void audit_path_of(struct ws_inode *n, char *buf, size_t len);

int audit_open(fuse_req_t req, struct ws_inode *n, int fd, int flags,
		int err);
int audit_created(fuse_req_t req, struct ws_inode *dir, const char *name,
		   const struct fuse_entry_param *e, int fd, int flags, int err);
void audit_release(struct ws_inode *n, int fd);
/* A write of RES bytes at OFF through FD from BUF (memory, or NULL when
** the data did not pass through our memory). */
int audit_wrote(fuse_req_t req, struct ws_inode *n, int fd, off_t off,
		 const void *buf, ssize_t res);
void audit_read(fuse_req_t req, struct ws_inode *n, int fd, off_t off,
		size_t bytes);

/* Work done on behalf of audit_current_req. */
void audit_copy_up(struct ws_inode *n, int err);
void audit_whiteout(struct ws_inode *dir, const char *name, int err);

/* The daemon's own events (wipe, quota thresholds, quota changes made by
** an operator through the control socket: UID/PID of the peer, or -1 for
** the daemon itself). */
void audit_daemon_event(const char *op, const char *path, int64_t bytes,
			const char *detail);
/* A quota threshold crossed upward by audit_current_req's growth. */
void audit_threshold(const char *kind, unsigned int percent, const char *what,
		     uint64_t used, uint64_t limit);
void audit_peer_event(const char *op, int64_t uid, int64_t gid, int64_t pid,
		      const char *detail);

#endif
