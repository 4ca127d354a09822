/*
** The workspace quota over a daemon's life: loading limits and ledger at
** mount (or reconciling them by scan), persisting the ledger off the
** request path, answering the control socket, shaping statfs, and saving a
** clean ledger at unmount.
*/
#ifndef WSFS_QUOTA_MOUNT_H
#define WSFS_QUOTA_MOUNT_H

#include <stdio.h>
#include <stddef.h>
#include <sys/statvfs.h>

#include "options.h"
#include "registry.h"

/* Before the mount goes live. Prints its own "wsfs:" error and returns -1. */
int qmount_start(struct registry *reg, const struct ws_options *opt, int upper_fd);

/* Once the log is the daemon's own: how the ledger was set up. */
void qmount_log_setup(void);

/* After the session ended. OPEN_FILES > 0 means orphans may hold charges
** that vanish with the daemon, so the next mount must scan. */
void qmount_stop(unsigned long open_files);

/* Reports the quota as the filesystem's size (see wsfs(8), df). */
void qmount_statfs(struct statvfs *sv);

/* Control-socket commands "quota" and "quota-set KEY=VALUE ...". */
int qmount_ctl_show(FILE *out);
int qmount_ctl_set(const char *args, FILE *out, char *errmsg, size_t errlen);

#endif
