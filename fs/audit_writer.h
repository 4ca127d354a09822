/*
** The daemon's audit writer: a bounded queue and one thread that commits
** what request threads put in it, in batches (group commit).
**
** The log never drops a record silently.  A full queue makes the request
** wait.  When audit.db cannot be written the writer keeps the batch and
** retries; meanwhile, by default, the daemon fails closed (audit_failing()
** turns every new operation into EIO), or, with audit_fail=alert, keeps
** serving, drops what no longer fits and writes an audit-gap record saying
** how many records were lost, and when, as soon as writing works again.
*/
#ifndef WSFS_AUDIT_WRITER_H
#define WSFS_AUDIT_WRITER_H

#include <stdint.h>
#include <stdio.h>

#include "record.h"

struct audit_writer_config {
	const char *state_dir;
	const char *host;
	const char *ws;
	int sync_full;		/* each submit waits for its commit */
	int fail_alert;		/* keep serving while audit.db fails */
	const char *anchor;	/* checkpoint copies: a file, or "|command" */
	long cp_records;	/* checkpoint after this many records ... */
	long cp_secs;		/* ... or this many seconds */
};

int audit_writer_start(const struct audit_writer_config *c, char *err,
		       size_t errlen);

/* Queues a copy of R. 0, or -EIO in audit_sync=full mode when its commit
** failed and the daemon fails closed (the caller's operation then reports
** EIO), or -ENOMEM. */
int audit_writer_submit(const struct audit_record *r);

/* Drains the queue, writes a last checkpoint and stops the thread. */
void audit_writer_stop(void);

/* Whether new operations must be refused (fail closed, writes failing). */
static inline int audit_failing(void)
{
	extern int audit_writer_closed;

	return __atomic_load_n(&audit_writer_closed, __ATOMIC_RELAXED);
}

/* "audit.KEY VALUE" lines for the control protocol's status reply. */
void audit_writer_write_kv(FILE *out);

#endif
