/*
** The caller's process name for audit records, read from /proc/PID/comm
** at the moment of the request.
*/
#ifndef WSFS_AUDIT_CALLER_H
#define WSFS_AUDIT_CALLER_H

#include <stddef.h>
#include <stdint.h>

/* PID's current process name into BUF ("" when the process is gone). */
void caller_comm(int64_t pid, char *buf, size_t len);

/* Closes the cached descriptors (at stop). */
void caller_cache_clear(void);

#endif
