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
*/
#include "stats.h"

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
	int op;

	for (op = 0; op < OP__COUNT; op++) {
		n = load_u64(&ws_stats.ops[op]);
		if (n > 0)
			fprintf(out, "ops.%s %" PRIu64 "\n",
				ws_op_name((enum ws_op)op), n);
	}
	fprintf(out, "bytes_read %" PRIu64 "\n",
		load_u64(&ws_stats.bytes_read));
	fprintf(out, "bytes_written %" PRIu64 "\n",
		load_u64(&ws_stats.bytes_written));
	fprintf(out, "open_files %" PRId64 "\n",
		load_i64(&ws_stats.open_files));
	fprintf(out, "open_dirs %" PRId64 "\n", load_i64(&ws_stats.open_dirs));
}
