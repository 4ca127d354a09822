/*
** Readiness notification to a service manager ($NOTIFY_SOCKET), so that a
** systemd unit of Type=notify is "started" exactly when the mount is live.
*/
#ifndef WSFS_SD_NOTIFY_H
#define WSFS_SD_NOTIFY_H

#include <sys/types.h>

/* Takes the notification address from $NOTIFY_SOCKET and removes the
** variable from the environment, so that no process the daemon starts
** (an audit_anchor command, fusermount3) can speak for it.  NAME and
** MOUNTPOINT go into the STATUS= lines.  Call once, before any thread or
** child exists.  Returns 0, also when there is no manager to notify, or a
** negative errno if the address is unusable (notification is then off). */
int sdnotify_init(const char *name, const char *mountpoint);

/* The mount is live: sends READY=1, a STATUS= line and MAINPID=MAINPID,
** the process the manager must watch from now on.  Returns 0 or a
** negative errno; nothing is sent if init found no address. */
int sdnotify_ready(pid_t mainpid);

/* The daemon has begun to unmount: sends STOPPING=1 (once). */
int sdnotify_stopping(void);

#endif
