/*
** Creating files as the caller.
**
** The daemon runs as root, but what an agent creates must belong to the
** agent's uid and gid, inherit a setgid directory's group and keep the
** kernel's rules for the setgid bit.  Around mkdir/create/mknod/symlink the
** worker thread switches its filesystem uid and gid (setfsuid/setfsgid are
** per thread) so the backing filesystem assigns ownership itself, atomically,
** exactly as it would for the agent.
**
** Normally a non-zero fsuid drops the filesystem capabilities, and the
** backing fs would then re-check permissions with root's supplementary groups
** instead of the agent's.  cred_init() sets SECBIT_NO_SETUID_FIXUP so the
** capabilities stay: permission checks were already made by the kernel with
** the agent's full credentials (default_permissions), and the FUSE VFS has
** already stripped a setgid bit the agent may not set.
**
** With POSIX ACLs (-o acl) the kernel passes modes unmasked along with the
** caller's umask, because only the backing filesystem knows whether a
** default ACL replaces the umask.  The thread then also takes the caller's
** umask; umask is per process, so each worker thread first unshares its
** filesystem context (CLONE_FS), once.
*/
#ifndef WSFS_CRED_H
#define WSFS_CRED_H

#include <fuse_lowlevel.h>
#include <sys/types.h>

struct cred_saved {
	int switched;
	int umask_set;
	mode_t umask;
	mode_t mask_by_hand;	/* umask the caller must apply itself */
};

/* Call once in the main thread before worker threads exist. Returns 0, or
** -errno when ownership cannot follow the caller (not root). */
int cred_init(void);

/* Called from the INIT handler: the kernel leaves the umask to us. */
void cred_apply_umask(int on);

void cred_enter(fuse_req_t req, struct cred_saved *saved);
void cred_leave(struct cred_saved *saved);

/* The mode to create with: MODE, masked here only if the thread could not
** take the caller's umask. */
static inline mode_t cred_mode(const struct cred_saved *saved, mode_t mode)
{
	return mode & ~saved->mask_by_hand;
}

#endif
