/*
** What a quota counts.  This is the definition wsfs(8) documents; the
** request path and the reconciling scan both use it, so the ledger and a
** fresh scan agree by construction.
**
**   regular file   its apparent size rounded up to 4 KiB, plus 1 inode
**   directory      4 KiB, plus 1 inode (the workspace root is free)
**   symlink        4 KiB, plus 1 inode
**   fifo, socket   1 inode
**   user.* xattr   length of its name plus length of its value, in bytes
**
** Apparent size, not allocated blocks: a sparse file is charged for the
** holes, so holes cannot be used to get bytes for free, and the charge does
** not depend on how the backing filesystem lays data out.  Hard links share
** their inode's charge.  Extended attributes outside user.* (ACLs, security
** labels) are bounded by the backing filesystem's per-inode xattr space and
** are not charged.
*/
#ifndef WSFS_QUOTA_CHARGE_H
#define WSFS_QUOTA_CHARGE_H

#include <stdint.h>
#include <string.h>
#include <sys/stat.h>

#define QUOTA_BLOCK 4096ULL

static inline uint64_t charge_data(int64_t size)
{
	if (size <= 0)
		return 0;
	return ((uint64_t)size + QUOTA_BLOCK - 1) & ~(QUOTA_BLOCK - 1);
}

/* Bytes charged for an inode of type TYPE (S_IFMT bits) and SIZE. */
static inline uint64_t charge_bytes(mode_t type, int64_t size)
{
	switch (type & S_IFMT) {
	case S_IFREG:
		return charge_data(size);
	case S_IFDIR:
	case S_IFLNK:
		return QUOTA_BLOCK;
	default:
		return 0;
	}
}

static inline int xattr_charged(const char *name)
{
	return strncmp(name, "user.", 5) == 0;
}

static inline uint64_t xattr_charge(size_t name_len, size_t value_len)
{
	return (uint64_t)name_len + (uint64_t)value_len;
}

#endif
