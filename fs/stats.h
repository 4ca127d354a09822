/*
** Live counters that `wsctl status` reports.
**
** Every FUSE operation bumps one relaxed atomic counter: no lock is taken on
** the request path and the figures are only ever read as a snapshot by the
** control-socket thread, so torn cross-counter views are acceptable.
*/
#ifndef WSFS_STATS_H
#define WSFS_STATS_H

#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>

enum ws_op {
	OP_LOOKUP, OP_FORGET, OP_GETATTR, OP_SETATTR, OP_READLINK, OP_MKNOD,
	OP_MKDIR, OP_UNLINK, OP_RMDIR, OP_SYMLINK, OP_RENAME, OP_LINK,
	OP_OPEN, OP_READ, OP_WRITE, OP_FLUSH, OP_RELEASE, OP_FSYNC,
	OP_OPENDIR, OP_READDIR, OP_READDIRPLUS, OP_RELEASEDIR, OP_FSYNCDIR,
	OP_STATFS, OP_SETXATTR, OP_GETXATTR, OP_LISTXATTR, OP_REMOVEXATTR,
	OP_CREATE, OP_FALLOCATE, OP_LSEEK, OP_COPY_FILE_RANGE,
	OP_GETLK, OP_SETLK, OP_FLOCK,
	OP__COUNT
};

/* The errnos that denials are counted under (stats.c says which error
** replies are denials); any other denial is counted as DENIAL_OTHER. */
enum ws_denial {
	DENIAL_EACCES, DENIAL_EPERM, DENIAL_EROFS, DENIAL_EDQUOT, DENIAL_ENOSPC,
	DENIAL_EXDEV, DENIAL_ENOLCK, DENIAL_EAGAIN, DENIAL_EIO, DENIAL_ELOOP,
	DENIAL_ENAMETOOLONG, DENIAL_EBUSY, DENIAL_ENOTEMPTY, DENIAL_EEXIST,
	DENIAL_EINVAL, DENIAL_EISDIR, DENIAL_ENOTDIR, DENIAL_OTHER,
	DENIAL__COUNT
};

struct ws_stats {
	_Atomic uint64_t ops[OP__COUNT];
	_Atomic uint64_t bytes_read;
	_Atomic uint64_t bytes_written;
	_Atomic int64_t open_files;
	_Atomic int64_t open_dirs;
	_Atomic uint64_t denied[DENIAL__COUNT];
};

extern struct ws_stats ws_stats;

const char *ws_op_name(enum ws_op op);
/* "EACCES" ..., "other". */
const char *ws_denial_name(enum ws_denial d);

/* Counts an error reply of ERR (a positive errno) if it is a denial. Called
** by every path that replies an error to the kernel (reply_err and
** reply_status in wsfs.h, op_begin). */
void stats_error_reply(int err);

static inline void stats_op(enum ws_op op)
{
	atomic_fetch_add_explicit(&ws_stats.ops[op], 1, memory_order_relaxed);
}

static inline void stats_add(_Atomic uint64_t *counter, uint64_t n)
{
	atomic_fetch_add_explicit(counter, n, memory_order_relaxed);
}

static inline void stats_gauge(_Atomic int64_t *gauge, int64_t delta)
{
	atomic_fetch_add_explicit(gauge, delta, memory_order_relaxed);
}

/* Writes "ops.<name> N" and "denied.<ERRNO> N" lines (non-zero ones
** only) plus byte and open counters in the control protocol's key/value
** form. */
void stats_write_kv(FILE *out);

#endif
