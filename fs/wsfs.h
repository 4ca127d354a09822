/*
** What every operation file shares: the daemon's configuration and the
** registration of the operation handlers.
**
** Operations are grouped by family, one small function per operation, as in
** libfuse's passthrough_ll: entries (ops_entry.c), attributes (ops_attr.c),
** extended attributes (ops_xattr.c), files and I/O (ops_file.c) and
** directories (ops_dir.c) and advisory locks (ops_lock.c).  Each family fills its part of the operation
** table through a *_register() function so main.c need not know them all.
**
** Layer policy and quota reservation plug in between the resolve step
** (inode_fd) and the one backing syscall each handler makes, and the audit
** record after it; see ARCHITECTURE.md, "The request path".
*/
#ifndef WSFS_H
#define WSFS_H

#include <errno.h>
#include <fuse_lowlevel.h>

#include "inode.h"
#include "options.h"
#include "stats.h"

extern const struct ws_options *ws_opt;

void ops_entry_register(struct fuse_lowlevel_ops *ops);
void ops_attr_register(struct fuse_lowlevel_ops *ops);
void ops_xattr_register(struct fuse_lowlevel_ops *ops);
void ops_file_register(struct fuse_lowlevel_ops *ops);
void ops_dir_register(struct fuse_lowlevel_ops *ops);
void ops_lock_register(struct fuse_lowlevel_ops *ops);

/* Replies with an error, mapping 0 / positive values defensively to EIO so a
** bug can never look like success. */
static inline void reply_err(fuse_req_t req, int neg_errno)
{
	int err = neg_errno < 0 ? -neg_errno : EIO;

	stats_error_reply(err);
	fuse_reply_err(req, err);
}

/* Replies ERR (a positive errno, or 0 for success) to a request whose only
** reply is a status, counting it if it is a denial. */
static inline void reply_status(fuse_req_t req, int err)
{
	if (err != 0)
		stats_error_reply(err);
	fuse_reply_err(req, err);
}

/* An open file's fi->fh: the backing descriptor in the low 32 bits, flags
** above (ops_file.c). */
#define FH_APPEND (1ULL << 32)
/* Opened (read-only) on a cow layer's file: after a copy-up the descriptor
** still reads the original, so reads and stats go through the node. */
#define FH_LOWER (1ULL << 33)

static inline int fh_fd(const struct fuse_file_info *fi)
{
	return (int)(fi->fh & 0xffffffffu);
}

static inline int fh_append(const struct fuse_file_info *fi)
{
	return (fi->fh & FH_APPEND) != 0;
}

static inline int fh_lower(const struct fuse_file_info *fi)
{
	return fi && (fi->fh & FH_LOWER) != 0;
}

/* -EROFS when N may not be changed: the whole workspace is mounted
** read-only (a request may slip past the kernel's own MS_RDONLY check), or N
** belongs to a read-only input layer. */
static inline int ws_deny_change(const struct ws_inode *n)
{
	return ws_opt->read_only || !n->layer->writable ? -EROFS : 0;
}

/* Layers are separate trees, like separate mounts: nothing moves or links
** between them. */
static inline int ws_cross_layer(const struct ws_inode *a,
				 const struct ws_inode *b)
{
	return a->layer != b->layer ? -EXDEV : 0;
}

#endif
