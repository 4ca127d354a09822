/*
** Per-request filesystem credentials; see cred.h for why this works and why
** the securebit is needed.
*/
#include "cred.h"

#include <errno.h>
#include <linux/securebits.h>
#include <sys/fsuid.h>
#include <sys/prctl.h>
#include <unistd.h>

static int cred_enabled;

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
	if (!saved->switched)
		return;
	setfsuid(0);
	setfsgid(0);
	saved->switched = 0;
}
