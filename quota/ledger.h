/*
** The usage ledger: how many bytes and inodes a workspace uses, and the
** atomic reservation that keeps usage within its limits.
**
** Usage is two 64-bit counters changed only by compare-and-swap.  A charge
** reads the counter, checks the sum against the limits in force, and swaps
** the sum in; if another thread got there first the loop sees the new value
** and checks again.  So concurrent writers can never jointly pass a limit,
** not even by one byte, and nobody waits on a lock.  Releases always
** succeed: deletes and truncation must work on a workspace over its quota.
**
** Limits are atomics too, so `wsctl quota set` takes effect at the next
** charge.  A soft limit may be passed for grace_s seconds from the charge
** that first crossed it; after that it refuses growth like a hard one, until
** usage drops back under it.
**
** Crossing a warning threshold upward is detected by the one charge whose
** swap crossed it, so each crossing is reported exactly once; dropping back
** under re-arms it.  Reports go to the subscribed event hooks (the log
** today, the audit log and metrics later).
*/
#ifndef WSFS_QUOTA_LEDGER_H
#define WSFS_QUOTA_LEDGER_H

#include <stdint.h>

#include "qlimits.h"

enum quota_kind { QUOTA_BYTES = 0, QUOTA_INODES = 1 };

enum quota_event_type {
	QUOTA_EV_WARN,		/* usage rose to threshold `percent` of the hard limit */
	QUOTA_EV_SOFT,		/* usage rose past the soft limit; grace starts */
	QUOTA_EV_DENIED,	/* a charge was refused */
};

struct quota_event {
	enum quota_event_type type;
	enum quota_kind kind;
	unsigned int percent;	/* QUOTA_EV_WARN */
	uint64_t used;		/* usage after (or, if denied, before) the charge */
	uint64_t limit;		/* the limit concerned */
	uint64_t request;	/* the growth asked for */
};

typedef void (*quota_event_fn)(const struct quota_event *ev, void *arg);

/* What `wsctl quota show` and statfs read. */
struct quota_snapshot {
	struct quota_limits lim;
	uint64_t used[2];		/* indexed by enum quota_kind */
	int64_t soft_since[2];		/* epoch seconds usage passed the soft limit, 0 */
	unsigned int warn_level[2];	/* highest threshold usage is at or above, 0 */
	int64_t warned_at[2];		/* epoch seconds of the last upward crossing */
};

/* Starts with LIM and usage USED_BYTES / USED_INODES; SOFT_SINCE carries
** grace timers over a remount (0: none running). ERRNO_CODE is what a
** refused charge returns (EDQUOT or ENOSPC). */
void ledger_init(const struct quota_limits *lim, uint64_t used_bytes,
		 uint64_t used_inodes, const int64_t soft_since[2],
		 int errno_code);

/* Takes effect for the next charge. Usage may end up above the new limits;
** growth then fails until it drops. */
void ledger_set_limits(const struct quota_limits *lim);

/* Reserves BYTES and INODES together: 0, or -EDQUOT/-ENOSPC with nothing
** reserved. */
int ledger_charge(uint64_t bytes, uint64_t inodes);

/* Adds usage without checking limits, for growth that already happened. */
void ledger_force(uint64_t bytes, uint64_t inodes);

/* Gives back what a charge took, or what a deletion frees. */
void ledger_release(uint64_t bytes, uint64_t inodes);

void ledger_snapshot(struct quota_snapshot *s);

/* Whether a hard or soft byte limit is in force. */
int ledger_bytes_limited(void);

/* At most a handful of hooks; returns -ENOSPC when full. Hooks run on the
** request thread that caused the event and must not block. */
int ledger_subscribe(quota_event_fn fn, void *arg);

/* Today's epoch seconds; a test clock could be added here. */
int64_t ledger_now(void);

#endif
