/*
** Quota rows in state.db: each workspace's limits and its persisted ledger.
**
** A row exists for every workspace name a daemon has ever mounted, so
** "unknown name" has a precise meaning for wsctl.  The daemon writes its
** row at mount (clean = 0), every couple of seconds while usage changes
** (off the request path, from its flusher thread), and once more at a clean
** unmount with clean = 1.  Only a row that says clean, for the same upper
** directory, lets the next mount trust the ledger and skip the scan.
*/
#ifndef WSFS_QUOTA_QSTORE_H
#define WSFS_QUOTA_QSTORE_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#include "qlimits.h"

#define QSTORE_NAME_MAX 64

struct sqlite3;

struct quota_row {
	char name[QSTORE_NAME_MAX + 1];
	struct quota_limits lim;
	uint64_t used_bytes;
	uint64_t used_inodes;
	int64_t soft_since[2];		/* bytes, inodes; 0 = no grace running */
	int clean;
	char upper[PATH_MAX];
	int64_t updated;		/* epoch seconds of the last write */
};

/* -ENOENT if NAME has no row. */
int qstore_get(struct sqlite3 *db, const char *name, struct quota_row *row);

/* Inserts or replaces the whole row. */
int qstore_put(struct sqlite3 *db, const struct quota_row *row);

/* Changes only the limits; -ENOENT if NAME has no row. */
int qstore_set_limits(struct sqlite3 *db, const char *name,
		      const struct quota_limits *lim);

/* Changes only the ledger columns. */
int qstore_set_usage(struct sqlite3 *db, const char *name, uint64_t bytes,
		     uint64_t inodes, const int64_t soft_since[2], int clean);

/* All rows sorted by name; *ROWS is malloc'd. */
int qstore_list(struct sqlite3 *db, struct quota_row **rows, size_t *n);

/* Replaces NAME's saved xattr charges with the xcharge table / loads them
** into it. */
int qstore_save_xattrs(struct sqlite3 *db, const char *name);
int qstore_load_xattrs(struct sqlite3 *db, const char *name);

/* The last SQLite error of DB as text. */
const char *qstore_errmsg(struct sqlite3 *db);

#endif
