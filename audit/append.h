/*
** One-off appends by processes that are not a daemon's writer thread:
** wsctl recording a quota change or an audit query (PCI DSS 10.2.1.3).
** Each append is followed by a signed checkpoint of its chain, so even a
** rarely written chain is always anchored.
*/
#ifndef WSFS_AUDIT_APPEND_H
#define WSFS_AUDIT_APPEND_H

#include <stddef.h>

#include "record.h"

/* Fills what R leaves empty (time_ns 0, host/comm "" or NULL, and uid,
** gid, pid when pid is 0) from the calling process, appends R to chain
** R->ws in <state_dir>/audit.db (created if missing) and checkpoints that
** chain with the state dir's key (created if missing). 0 or -errno, with
** the reason in ERR. */
int audit_append_one(const char *state_dir, struct audit_record *r,
		     char *err, size_t errlen);

/* The caller's identity helpers, shared with the daemon. */
int64_t audit_now_ns(void);
const char *audit_hostname(void);	/* cached; "" if unknown */
/* /proc/PID/comm into BUF (16+ bytes); "" when the process is gone. */
void audit_read_comm(int64_t pid, char *buf, size_t len);

#endif
