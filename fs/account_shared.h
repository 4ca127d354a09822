/*
** The shared directories' part of a workspace's quota (ARCHITECTURE.md,
** "Shared directories"; the rule is in wsfs(8), SHARED DIRECTORIES).
**
** A workspace pays for what its own requests add to a shared directory,
** exactly as in its upper, and is credited for what its requests take away
** there only up to what it paid for that very file: removing another
** workspace's file, or shrinking it, frees none of this one's quota, or it
** could delete a big file someone else made and write that much more.
** So every shared file this workspace made or grew has a record, keyed by
** (st_dev, st_ino): the data bytes it paid for, and the entry it paid for
** if it made the file. The shared tree belongs to the operator, not to the
** workspace, and no scan could attribute it; so the whole charge is handed
** back at unmount, and a stored ledger, like a scan, covers the workspace's
** own tree alone.
**
** account.c calls these for nodes of shared layers only; each changes the
** ledger as well as the records.
*/
#ifndef WSFS_ACCOUNT_SHARED_H
#define WSFS_ACCOUNT_SHARED_H

#include <stdint.h>
#include <sys/types.h>

#include "inode.h"

/* Making an entry whose making costs BYTES (and one inode): charged before
** the syscall, then either made (on node N) or undone. */
int shared_entry_charge(uint64_t bytes);
void shared_entry_undo(uint64_t bytes);
void shared_entry_made(const struct ws_inode *n, uint64_t bytes);

/* File N's data grows by BYTES: charged (0 or -EDQUOT), or forced for
** growth that already happened. */
int shared_grow(const struct ws_inode *n, uint64_t bytes);
void shared_grow_force(const struct ws_inode *n, uint64_t bytes);

/* File N's data shrinks by BYTES: credited up to what N's record holds. */
void shared_shrink(const struct ws_inode *n, uint64_t bytes);

/* The last link of (DEV, INO) is gone: its record is credited and forgotten. */
void shared_gone(dev_t dev, ino_t ino);

/* What this workspace is charged in shared directories now. */
void shared_usage(uint64_t *bytes, uint64_t *inodes);

/* At unmount, before the ledger is saved: the whole charge goes back. */
void shared_unmount(void);

#endif
