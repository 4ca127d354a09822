/*
** Clearing setuid and setgid bits on write and truncate, as the kernel does
** for a local filesystem.
**
** The rule: a write or truncate by a caller without CAP_FSETID clears
** S_ISUID, and clears S_ISGID if the file is group-executable or the caller
** is outside the file's group.  The daemon writes as root, so the backing fs
** never applies the rule by itself.  The FUSE module applies all of it but
** the outsider case (it only knows the group-exec rule), so the daemon adds
** that case.  Callers other than uid 0 are taken as lacking CAP_FSETID,
** which is what an agent in a container is.
**
** (FUSE_HANDLE_KILLPRIV_V2 would let the kernel skip its per-write
** security.capability query, but measured here it removed only a third of
** those queries, and it changes what a no-op chown clears; not worth it.)
*/
#ifndef WSFS_SETID_H
#define WSFS_SETID_H

#include <fuse_lowlevel.h>

/* After a write (or O_TRUNC open) through FD: clears what the rule says and
** tells the kernel its cached mode of node INO is stale. */
void setid_after_write(fuse_req_t req, fuse_ino_t ino, int fd);

/* After a truncate through the O_PATH descriptor PATH_FD; the caller
** replies with fresh attributes, so no invalidation is needed. */
void setid_after_truncate(fuse_req_t req, int path_fd);

extern struct fuse_session *ws_session;

#endif
