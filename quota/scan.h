/*
** The reconciling scan: a fresh count of what the writable tree holds,
** by the rules of charge.h.
**
** It runs before the mount goes live when the ledger cannot be trusted (the
** last daemon did not shut down cleanly, or the tree is not the one the
** ledger was kept for).  Directories are queued as file handles rather than
** open descriptors, so a tree of any depth or width is walked with two
** descriptors open; nothing is ever resolved by path, so symlinks in the
** tree are never followed; and other mounts inside the tree are skipped, as
** the daemon refuses them too.  The scan also rebuilds the xattr charge
** table (xcharge.h).
*/
#ifndef WSFS_QUOTA_SCAN_H
#define WSFS_QUOTA_SCAN_H

#include <stddef.h>
#include <stdint.h>

struct scan_result {
	uint64_t bytes;
	uint64_t inodes;
	uint64_t entries;	/* names visited, hard links included */
	uint64_t skipped;	/* entries on other mounts */
};

/* Called every few thousand entries with the running totals. */
typedef void (*scan_progress_fn)(const struct scan_result *sofar, void *arg);

/* Scans the tree under ROOT_FD (a directory descriptor; not charged itself).
** Returns 0, or -errno with a one-line reason in ERR. */
int quota_scan(int root_fd, scan_progress_fn progress, void *arg,
	       struct scan_result *out, char *err, size_t errlen);

/* Counts the tree under ROOT_FD by the same rules without touching the
** xattr charge table: what part of the usage one subtree holds. */
int quota_measure(int root_fd, struct scan_result *out, char *err,
		  size_t errlen);

#endif
