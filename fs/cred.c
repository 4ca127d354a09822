/*
** Per-request filesystem credentials; see cred.h for why this works and why
** the securebit is needed.
*/
#include "cred.h"

#include "log.h"

#include <errno.h>
#include <linux/securebits.h>
#include <sched.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/fsuid.h>
#include <sys/prctl.h>
#include <unistd.h>

static int cred_enabled;
static int umask_from_caller;
static __thread int thread_fs_private;	/* 1: unshared, -1: unshare failed */

void cred_apply_umask(int on)
{
	umask_from_caller = on;
}

static void enter_umask(fuse_req_t req, struct cred_saved *saved)
{
	mode_t mask = fuse_req_ctx(req)->umask;

	if (thread_fs_private == 0) {
		if (unshare(CLONE_FS) == 0) {
			thread_fs_private = 1;
		} else {
			thread_fs_private = -1;
			ws_log("unshare(CLONE_FS): %s; umask applied without "
			       "default ACLs", strerror(errno));
		}
	}
	if (thread_fs_private < 0) {
		saved->mask_by_hand = mask;
		return;
	}
	saved->umask = umask(mask);
	saved->umask_set = 1;
}

int cred_init(void)
{
	if (geteuid() != 0)
		return -EPERM;
	if (prctl(PR_SET_SECUREBITS, SECBIT_NO_SETUID_FIXUP |
		  SECBIT_NO_SETUID_FIXUP_LOCKED) < 0)
		return -errno;
	cred_enabled = 1;
	return 0;
}

void cred_enter(fuse_req_t req, struct cred_saved *saved)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);

	saved->switched = 0;
	saved->umask_set = 0;
	saved->mask_by_hand = 0;
	if (umask_from_caller)
		enter_umask(req, saved);
	if (!cred_enabled || (ctx->uid == 0 && ctx->gid == 0))
		return;
	/* setfsgid first: the order does not matter with the securebit set,
	** but it keeps the uid switch last and the undo symmetrical. */
	setfsgid(ctx->gid);
	setfsuid(ctx->uid);
	saved->switched = 1;
}

void cred_leave(struct cred_saved *saved)
{
	if (saved->umask_set) {
		umask(saved->umask);
		saved->umask_set = 0;
	}
	if (!saved->switched)
		return;
	setfsuid(0);
	setfsgid(0);
	saved->switched = 0;
}
