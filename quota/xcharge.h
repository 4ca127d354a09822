/*
** What each inode's user.* extended attributes are charged, by inode number.
**
** An xattr's charge is the length of its name plus the length of its value.
** When the last link of a file goes, its xattrs go with it, and the ledger
** must give their charge back.  Asking the backing file at every unlink
** would add a listxattr to every deletion; instead the few inodes that carry
** user xattrs are remembered here.  The table is persisted at a clean
** unmount and rebuilt by the reconciling scan after a crash, so it always
** covers exactly the inodes with user xattrs.
*/
#ifndef WSFS_QUOTA_XCHARGE_H
#define WSFS_QUOTA_XCHARGE_H

#include <stddef.h>
#include <stdint.h>

int xcharge_init(void);
void xcharge_destroy(void);
void xcharge_clear(void);

/* The inode's current charge (0 if none). */
uint64_t xcharge_get(uint64_t ino);

/* Sets the inode's charge; 0 forgets it. Returns 0 or -ENOMEM. */
int xcharge_set(uint64_t ino, uint64_t bytes);

/* Forgets the inode and returns what it was charged. */
uint64_t xcharge_take(uint64_t ino);

/* Calls FN for every inode with a charge, under the table's lock. */
void xcharge_each(void (*fn)(uint64_t ino, uint64_t bytes, void *arg), void *arg);

size_t xcharge_count(void);

/* Holds the table's lock across a read-modify-write of one inode's xattrs,
** so two setxattr calls on the same file cannot both charge the same old
** value. Not recursive with the calls above; use the _locked forms. */
void xcharge_lock(void);
void xcharge_unlock(void);
uint64_t xcharge_get_locked(uint64_t ino);
int xcharge_set_locked(uint64_t ino, uint64_t bytes);

#endif
