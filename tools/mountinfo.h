/*
** What the kernel has mounted at a path, from /proc/self/mountinfo, for the
** commands that mount and unmount workspaces.
**
** The mount table, not the registry, says whether a path is a mountpoint:
** a daemon killed with SIGKILL leaves its FUSE mount behind (every access
** then fails with ENOTCONN) and no live registry entry, and `wsctl mount`
** must clear exactly such a leftover, and nothing else, before mounting.
*/
#ifndef WSFS_WSCTL_MOUNTINFO_H
#define WSFS_WSCTL_MOUNTINFO_H

#include <stddef.h>

/* The filesystem type mounted at PATH (the topmost mount) into TYPE:
** 1 if PATH is a mountpoint, 0 if not, -errno if the table is unreadable. */
int mountinfo_type_at(const char *path, char *type, size_t len);

/* If PATH holds a wsfs mount whose daemon is gone (the connection answers
** ENOTCONN), detaches it: 1 if it did, 0 if there was none, -errno. */
int mountinfo_clear_dead(const char *path);

#endif
