/*
** One workspace's quota as `wsctl quota` shows it, whoever answered.
**
** A running daemon and a state.db row both know a workspace's limits and
** usage, in different shapes.  Each is turned into a struct qview once, and
** everything that prints works from the view alone (quota_print.c), so
** `show` and `ls` look the same whichever source answered.  Its per-kind
** arrays are indexed by the ledger's enum quota_kind, like the daemon's
** quota_snapshot they mirror.
*/
#ifndef WSFS_WSCTL_QUOTA_VIEW_H
#define WSFS_WSCTL_QUOTA_VIEW_H

#include <stdint.h>

#include "ledger.h"
#include "qlimits.h"
#include "qstore.h"
#include "registry.h"

struct qview {
	char name[QSTORE_NAME_MAX + 1];
	int mounted;		/* a daemon holds the name's lock */
	int live;		/* the figures came from that daemon */
	struct quota_limits lim;
	uint64_t used[2];	/* indexed by enum quota_kind */
	int64_t soft_since[2];	/* 0: under the soft limit */
	int grace_pending[2];	/* over it, timer starts at the next mount */
	unsigned int warn_level[2];
	int64_t warned_at[2];	/* 0: unknown or never */
	int64_t now;		/* the clock the figures were read at */
};

static inline uint64_t qview_hard_limit(const struct qview *v,
					enum quota_kind k)
{
	return k == QUOTA_BYTES ? v->lim.bytes : v->lim.inodes;
}

static inline uint64_t qview_soft_limit(const struct qview *v,
					enum quota_kind k)
{
	return k == QUOTA_BYTES ? v->lim.soft_bytes : v->lim.soft_inodes;
}

/* Fills V from a state.db row; MOUNTED says whether a daemon holds the
** name's lock (one that did not answer, for `quota ls`). */
void qview_from_row(const struct quota_row *r, int mounted, struct qview *v);

/* Sends REQUEST ("quota" or a "quota-set ...") to M's daemon and fills V
** from its answer.  Returns WSCTL_OK, or WSCTL_ERR after reporting why on
** stderr unless QUIET. */
int qview_from_daemon(const struct ws_mount *m, const char *request,
		      struct qview *v, int quiet);

#endif
