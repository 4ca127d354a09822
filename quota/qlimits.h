/*
** A workspace's quota limits, as the daemon enforces them, state.db stores
** them and wsctl shows them.
**
** Every limit is a 64-bit count with QUOTA_NONE for "no limit", so an
** unlimited workspace and a limit of 0 (nothing may grow) stay distinct.
** Warning thresholds are percentages of the hard limits, ascending.
*/
#ifndef WSFS_QUOTA_LIMITS_H
#define WSFS_QUOTA_LIMITS_H

#include <stdint.h>

#define QUOTA_NONE UINT64_MAX
#define QUOTA_MAX_WARN 4
#define QUOTA_DEFAULT_GRACE_S 3600
#define QUOTA_MAX_VALUE ((uint64_t)INT64_MAX)	/* SQLite integers are signed */

struct quota_limits {
	uint64_t bytes;			/* hard limits */
	uint64_t inodes;
	uint64_t soft_bytes;		/* soft limits, enforced after grace_s */
	uint64_t soft_inodes;
	uint64_t grace_s;
	unsigned int nwarn;
	unsigned int warn[QUOTA_MAX_WARN];	/* percent, ascending, 1..100 */
};

/* No limits, default grace and the default 85% and 95% warnings. */
void quota_limits_default(struct quota_limits *l);

static inline int quota_limited(uint64_t limit)
{
	return limit != QUOTA_NONE;
}

#endif
