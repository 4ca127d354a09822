/*
** The one setgid rule the FUSE kernel module leaves out.
**
** On a write or truncate by a caller without CAP_FSETID, Linux clears the
** setuid bit, and the setgid bit if the file is group-executable OR the
** caller is outside the file's group.  The FUSE module implements all of
** that except the last case (it only knows the group-exec rule), and the
** daemon itself writes as root, so the backing fs clears nothing.  wsfs
** completes the rule here.  Callers other than uid 0 are taken as lacking
** CAP_FSETID, which is what an agent in a container is.
*/
#ifndef WSFS_SETID_H
#define WSFS_SETID_H

#include <fuse_lowlevel.h>

/* After a write through FD by REQ's caller: clears S_ISGID on the file of
** node INO if the rule above says so, and tells the kernel its cached mode
** is stale. Returns 1 if it changed the mode. */
int setid_after_write(fuse_req_t req, fuse_ino_t ino, int fd);

/* The same for a truncate done through the node's O_PATH descriptor; the
** caller replies with fresh attributes, so no invalidation is needed. */
int setid_after_truncate(fuse_req_t req, int path_fd);

extern struct fuse_session *ws_session;

#endif
