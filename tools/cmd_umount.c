/*
** wsctl umount NAME [--force]: unmount a workspace and wait until its
** daemon has finished.
**
** A plain umount(2) is tried first: it fails with EBUSY while any process
** still has a file or directory open in the workspace, which is the answer
** an operator wants before pulling a disk from under an agent.  --force
** asks the daemon to stop instead (SIGTERM), which detaches the mount
** lazily and ends the session whatever is open.
**
** Either way the command returns only once the daemon has released its
** registry lock, which it does last, after the ephemeral layers are wiped
** and the audit log is flushed; a caller that runs `wsctl umount` and then
** looks at the scratch directory or the audit log sees the final state.
** The lock, not the pid, is what is awaited (see fs/registry.h).
*/
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <time.h>
#include <unistd.h>

#include "mountinfo.h"
#include "wsctl.h"
#include "wsdef.h"

#define WAIT_LIMIT_S 120
#define POLL_NS (20 * 1000 * 1000)

const char wsctl_umount_details[] =
	"Its ephemeral layers are wiped and its audit records written before\n"
	"this returns.  While a process still uses the workspace the unmount\n"
	"fails (exit 5).\n"
	"\n"
	"Options:\n"
	"  --force   stop the daemon even while files are open in the "
	"workspace\n";

static int wait_released(struct registry *reg, const char *name)
{
	const struct timespec pause = { 0, POLL_NS };
	struct ws_mount m;
	time_t deadline = time(NULL) + WAIT_LIMIT_S;

	while (registry_get(reg, name, &m) == 0 && m.live) {
		if (time(NULL) > deadline) {
			wsctl_err("workspace '%s' is unmounted but its daemon "
				  "(pid %ld) has not finished after %d s", name,
				  (long)m.pid, WAIT_LIMIT_S);
			return WSCTL_DAEMON;
		}
		nanosleep(&pause, NULL);
	}
	return WSCTL_OK;
}

static int stop_daemon(const struct ws_mount *m)
{
	if (kill(m->pid, SIGTERM) < 0 && errno != ESRCH) {
		wsctl_err("cannot stop the daemon of '%s' (pid %ld): %s",
			  m->name, (long)m->pid, strerror(errno));
		return WSCTL_ERR;
	}
	return WSCTL_OK;
}

static int unmount_live(const struct ws_mount *m, int force)
{
	if (force)
		return stop_daemon(m);
	if (umount2(m->mountpoint, UMOUNT_NOFOLLOW) == 0)
		return WSCTL_OK;
	if (errno == EBUSY) {
		wsctl_err("workspace '%s' is busy: a process still uses %s "
			  "(see fuser -vm %s; --force stops it anyway)", m->name,
			  m->mountpoint, m->mountpoint);
		return WSCTL_MOUNTED;
	}
	/* Not ours to unmount (no CAP_SYS_ADMIN) or already gone from the
	** table: the daemon unmounts itself on SIGTERM. */
	return stop_daemon(m);
}

/* No live daemon: clears a dead one's leftover mount, else says why not. */
static int unmount_dead(struct registry *reg, const char *name)
{
	struct ws_mount m;
	struct ws_def d;
	int rc;

	if (registry_get(reg, name, &m) == 0) {
		rc = mountinfo_clear_dead(m.mountpoint);
		if (rc > 0) {
			printf("cleared the mount the dead daemon of %s left at "
			       "%s\n", name, m.mountpoint);
			return WSCTL_OK;
		}
	}
	if (wsdef_get(reg, name, &d) == 0) {
		wsdef_free(&d);
		wsctl_err("workspace '%s' is not mounted", name);
		return WSCTL_NOTMOUNTED;
	}
	wsctl_err("no workspace named '%s'", name);
	return WSCTL_NOENT;
}

int cmd_umount(const struct wsctl *ctx, int argc, char **argv)
{
	const char *name = NULL;
	int force = 0, rc;
	const struct wsctl_flag flags[] = {
		{ "--force", NULL, &force }, { NULL, NULL, NULL },
	};
	struct registry *reg;
	struct ws_mount m;

	rc = wsctl_parse_flags(argc, argv, flags, &name, 1, 1);
	if (rc != 0)
		return rc < 0 ? WSCTL_OK : rc;
	rc = wsctl_open_registry(ctx, &reg);
	if (rc != 0)
		return rc;
	if (registry_get(reg, name, &m) == 0 && m.live) {
		rc = unmount_live(&m, force);
		if (rc == WSCTL_OK)
			rc = wait_released(reg, name);
		if (rc == WSCTL_OK)
			printf("unmounted %s from %s\n", name, m.mountpoint);
	} else {
		rc = unmount_dead(reg, name);
	}
	registry_close(reg);
	return rc;
}
