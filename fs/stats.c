/*
** Operation counters reported by `wsctl status`.
**
** The counters themselves live in one global struct so the hot path in every
** FUSE handler is a single relaxed atomic add (see stats.h).  This file only
** holds the op names and the snapshot writer used by the control socket.
**
** The names are the lowercase libfuse lowlevel operation names, which is what
** an operator reading `ops.copy_file_range 3` expects to grep for.  The table
** is indexed by enum value with designated initializers and checked at
** compile time, so adding an op to the enum without naming it fails the
** build instead of printing a NULL.
**
** Denials are error replies, counted by errno.  Not every error reply is
** one: some are answers that programs ask for as a matter of course, and
** counting them would bury the refusals an operator looks for.  Those are
** ENOENT (a name that is not there: every PATH search and every create
** starts with one), ENODATA and ERANGE (an xattr that is not set, a buffer
** size probe; the kernel asks for security.capability before every
** write), ENOSYS and EOPNOTSUPP (a feature probe: an ACL on a workspace
** without -o acl, an operation the kernel then stops asking for), EINTR
** (the caller gave up, a lock wait interrupted), ENXIO (lseek's
** SEEK_DATA/SEEK_HOLE past the last extent) and ESTALE (the kernel
** retries the lookup itself; the caller never sees it).  Everything else
** (permission, read-only layer, quota, containment, a lock conflict, an
** I/O error, EEXIST or ENOTEMPTY) is a denial, counted under its own name
** when it is in the table and as "other" when not.
*/
#include "stats.h"

#include <errno.h>
#include <inttypes.h>

struct ws_stats ws_stats;

static const char *const op_names[OP__COUNT] = {
	[OP_LOOKUP] = "lookup",
	[OP_FORGET] = "forget",
	[OP_GETATTR] = "getattr",
	[OP_SETATTR] = "setattr",
	[OP_READLINK] = "readlink",
	[OP_MKNOD] = "mknod",
	[OP_MKDIR] = "mkdir",
	[OP_UNLINK] = "unlink",
	[OP_RMDIR] = "rmdir",
	[OP_SYMLINK] = "symlink",
	[OP_RENAME] = "rename",
	[OP_LINK] = "link",
	[OP_OPEN] = "open",
	[OP_READ] = "read",
	[OP_WRITE] = "write",
	[OP_FLUSH] = "flush",
	[OP_RELEASE] = "release",
	[OP_FSYNC] = "fsync",
	[OP_OPENDIR] = "opendir",
	[OP_READDIR] = "readdir",
	[OP_READDIRPLUS] = "readdirplus",
	[OP_RELEASEDIR] = "releasedir",
	[OP_FSYNCDIR] = "fsyncdir",
	[OP_STATFS] = "statfs",
	[OP_SETXATTR] = "setxattr",
	[OP_GETXATTR] = "getxattr",
	[OP_LISTXATTR] = "listxattr",
	[OP_REMOVEXATTR] = "removexattr",
	[OP_CREATE] = "create",
	[OP_FALLOCATE] = "fallocate",
	[OP_LSEEK] = "lseek",
	[OP_COPY_FILE_RANGE] = "copy_file_range",
	[OP_GETLK] = "getlk",
	[OP_SETLK] = "setlk",
	[OP_FLOCK] = "flock",
};

/* Catches an enum entry appended after the last named op. */
_Static_assert(OP_FLOCK + 1 == OP__COUNT,
	       "every enum ws_op needs a name in op_names");

static const struct {
	int err;
	const char *name;
} denials[DENIAL__COUNT] = {
	[DENIAL_EACCES] = { EACCES, "EACCES" },
	[DENIAL_EPERM] = { EPERM, "EPERM" },
	[DENIAL_EROFS] = { EROFS, "EROFS" },
	[DENIAL_EDQUOT] = { EDQUOT, "EDQUOT" },
	[DENIAL_ENOSPC] = { ENOSPC, "ENOSPC" },
	[DENIAL_EXDEV] = { EXDEV, "EXDEV" },
	[DENIAL_ENOLCK] = { ENOLCK, "ENOLCK" },
	[DENIAL_EAGAIN] = { EAGAIN, "EAGAIN" },
	[DENIAL_EIO] = { EIO, "EIO" },
	[DENIAL_ELOOP] = { ELOOP, "ELOOP" },
	[DENIAL_ENAMETOOLONG] = { ENAMETOOLONG, "ENAMETOOLONG" },
	[DENIAL_EBUSY] = { EBUSY, "EBUSY" },
	[DENIAL_ENOTEMPTY] = { ENOTEMPTY, "ENOTEMPTY" },
	[DENIAL_EEXIST] = { EEXIST, "EEXIST" },
	[DENIAL_EINVAL] = { EINVAL, "EINVAL" },
	[DENIAL_EISDIR] = { EISDIR, "EISDIR" },
	[DENIAL_ENOTDIR] = { ENOTDIR, "ENOTDIR" },
	[DENIAL_OTHER] = { 0, "other" },
};

_Static_assert(DENIAL_OTHER + 1 == DENIAL__COUNT,
	       "every enum ws_denial needs an entry in denials");

const char *ws_denial_name(enum ws_denial d)
{
	if ((unsigned int)d >= DENIAL__COUNT || denials[d].name == NULL)
		return "unknown";
	return denials[d].name;
}

void stats_error_reply(int err)
{
	int d;

	switch (err) {
	case 0:
	case ENOENT:
	case ENODATA:
	case ERANGE:
	case ENOSYS:
	case EOPNOTSUPP:
	case EINTR:
	case ENXIO:
	case ESTALE:
		return;
	default:
		break;
	}
	for (d = 0; d < DENIAL_OTHER; d++)
		if (denials[d].err == err)
			break;
	atomic_fetch_add_explicit(&ws_stats.denied[d], 1, memory_order_relaxed);
}

const char *ws_op_name(enum ws_op op)
{
	if ((unsigned int)op >= OP__COUNT || op_names[op] == NULL)
		return "unknown";
	return op_names[op];
}

static uint64_t load_u64(_Atomic uint64_t *v)
{
	return atomic_load_explicit(v, memory_order_relaxed);
}

static int64_t load_i64(_Atomic int64_t *v)
{
	return atomic_load_explicit(v, memory_order_relaxed);
}

void stats_write_kv(FILE *out)
{
	uint64_t n;
	int op, d;

	for (op = 0; op < OP__COUNT; op++) {
		n = load_u64(&ws_stats.ops[op]);
		if (n > 0)
			fprintf(out, "ops.%s %" PRIu64 "\n",
				ws_op_name((enum ws_op)op), n);
	}
	for (d = 0; d < DENIAL__COUNT; d++) {
		n = load_u64(&ws_stats.denied[d]);
		if (n > 0)
			fprintf(out, "denied.%s %" PRIu64 "\n",
				ws_denial_name((enum ws_denial)d), n);
	}
	fprintf(out, "bytes_read %" PRIu64 "\n",
		load_u64(&ws_stats.bytes_read));
	fprintf(out, "bytes_written %" PRIu64 "\n",
		load_u64(&ws_stats.bytes_written));
	fprintf(out, "open_files %" PRId64 "\n",
		load_i64(&ws_stats.open_files));
	fprintf(out, "open_dirs %" PRId64 "\n", load_i64(&ws_stats.open_dirs));
}
