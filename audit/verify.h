/*
** Verification: recompute every leaf and head, check each checkpoint's
** signature, and check that every checkpoint's head is the head computed
** at its size, so that records edited, deleted, inserted, reordered or cut
** off after a checkpoint, a chain recomputed without the key, and a forged
** or replaced checkpoint are all found.  The same walk serves audit.db and
** an export bundle read offline.
**
** Records after a chain's last checkpoint are reported as unanchored (they
** verify as a chain, but nothing signed vouches for them yet); that is not
** a failure, as the daemon checkpoints at least every T seconds and at
** unmount.
*/
#ifndef WSFS_AUDIT_VERIFY_H
#define WSFS_AUDIT_VERIFY_H

#include <stdint.h>

#include "keys.h"
#include "store.h"

struct audit_verify_opts {
	const char *ws;		/* NULL: every chain */
	int64_t from, to;	/* seq range, 0 = open; needs ws */
	const struct audit_key *pub;
};

struct audit_verify_result {
	int64_t records;	/* records checked */
	int64_t checkpoints;	/* checkpoints checked */
	int64_t chains;
	int64_t unanchored;	/* records after each chain's last checkpoint */
	int ok;
	char bad_ws[72];	/* the first failure: chain, seq and why */
	int64_t bad_seq;
	char why[256];
};

/* 0 when the walk ran (RES->ok says whether the log verified), or a
** negative errno when it could not run (unreadable db, bad arguments),
** with the reason in ERR. */
int audit_verify_db(struct audit_store *s, const struct audit_verify_opts *o,
		    struct audit_verify_result *res, char *err, size_t errlen);

/* The same on an export bundle; its own key line is used unless O->pub is
** given (then the bundle's key must match it). */
int audit_verify_bundle(const char *path, const struct audit_verify_opts *o,
			struct audit_verify_result *res, char *err,
			size_t errlen);

#endif
