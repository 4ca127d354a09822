/*
** setuid/setgid clearing; see setid.h for the rule and who applies which part.
**
** The check costs one fstat and is skipped for root callers; the caller's
** group list (read from /proc by libfuse) is only fetched for the rare file
** that is setgid without group-exec.
*/
#include "inode.h"
#include "log.h"
#include "setid.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

struct fuse_session *ws_session;

static int caller_in_group(fuse_req_t req, gid_t gid)
{
	gid_t groups[64];
	int n;

	if (fuse_req_ctx(req)->gid == gid)
		return 1;
	n = fuse_req_getgroups(req, 64, groups);
	if (n < 0)
		return 0;	/* unknown: clearing is the safe side */
	if (n > 64)
		n = 64;
	for (int i = 0; i < n; i++)
		if (groups[i] == gid)
			return 1;
	return 0;
}

static mode_t bits_to_clear(fuse_req_t req, const struct stat *st)
{
	mode_t mode = st->st_mode, clear = 0;

	if (S_ISREG(mode) && (mode & (S_ISGID | S_IXGRP)) == S_ISGID &&
	    !caller_in_group(req, st->st_gid))
		clear |= S_ISGID;
	return clear;
}

void setid_after_write(fuse_req_t req, fuse_ino_t ino, int fd)
{
	struct stat st;
	mode_t clear;

	if (fuse_req_ctx(req)->uid == 0 || fstat(fd, &st) < 0)
		return;
	clear = bits_to_clear(req, &st);
	if (!clear)
		return;
	if (fchmod(fd, st.st_mode & 07777 & ~clear) < 0) {
		ws_log("cannot clear setuid/setgid after a write: %s",
		       strerror(errno));
		return;
	}
	if (ws_session)
		fuse_lowlevel_notify_inval_inode(ws_session, ino, -1, 0);
}

void setid_after_truncate(fuse_req_t req, int path_fd)
{
	struct stat st;
	char name[16];
	mode_t clear;

	if (fuse_req_ctx(req)->uid == 0 ||
	    fstatat(path_fd, "", &st, AT_EMPTY_PATH) < 0)
		return;
	clear = bits_to_clear(req, &st);
	if (!clear)
		return;
	fd_name(path_fd, name);
	if (fchmodat(itab_proc_fd(), name, st.st_mode & 07777 & ~clear, 0) < 0)
		ws_log("cannot clear setuid/setgid after a truncate: %s",
		       strerror(errno));
}
