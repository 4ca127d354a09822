/*
** Quota rows in state.db (see qstore.h).  The table itself is created by
** the registry's schema (fs/registry.c), which owns the file's versioning.
** Limits are stored as NULL for "none", so the column reads naturally in
** sqlite3(1); the warning list as text ("85,95" or "none").
*/
#include "qstore.h"

#include "qparse.h"
#include "xcharge.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define COLUMNS "name, bytes, inodes, soft_bytes, soft_inodes, grace, warn, " \
	"used_bytes, used_inodes, soft_bytes_since, soft_inodes_since, clean, " \
	"upper, updated"

/* Callers report qstore_errmsg(); the errno only says whether retrying
** (another writer held the database) could help. */
static int to_errno(int rc)
{
	rc &= 0xff;
	return rc == SQLITE_BUSY || rc == SQLITE_LOCKED ? -EAGAIN : -EIO;
}

const char *qstore_errmsg(struct sqlite3 *db)
{
	return sqlite3_errmsg(db);
}

static void bind_limit(sqlite3_stmt *st, int col, uint64_t v)
{
	if (quota_limited(v))
		sqlite3_bind_int64(st, col, (sqlite3_int64)v);
	else
		sqlite3_bind_null(st, col);
}

static uint64_t column_limit(sqlite3_stmt *st, int col)
{
	if (sqlite3_column_type(st, col) == SQLITE_NULL)
		return QUOTA_NONE;
	return (uint64_t)sqlite3_column_int64(st, col);
}

static uint64_t column_count(sqlite3_stmt *st, int col)
{
	sqlite3_int64 v = sqlite3_column_int64(st, col);

	return v < 0 ? 0 : (uint64_t)v;
}

static void copy_text(sqlite3_stmt *st, int col, char *dst, size_t size)
{
	const unsigned char *t = sqlite3_column_text(st, col);

	snprintf(dst, size, "%s", t ? (const char *)t : "");
}

static void read_row(sqlite3_stmt *st, struct quota_row *r)
{
	char warn[64];

	memset(r, 0, sizeof(*r));
	copy_text(st, 0, r->name, sizeof(r->name));
	r->lim.bytes = column_limit(st, 1);
	r->lim.inodes = column_limit(st, 2);
	r->lim.soft_bytes = column_limit(st, 3);
	r->lim.soft_inodes = column_limit(st, 4);
	r->lim.grace_s = column_count(st, 5);
	copy_text(st, 6, warn, sizeof(warn));
	/* A hand-edited warn column falls back to the defaults. */
	if (qparse_warn(warn, ',', &r->lim, NULL, 0) < 0) {
		struct quota_limits d;

		quota_limits_default(&d);
		r->lim.nwarn = d.nwarn;
		memcpy(r->lim.warn, d.warn, sizeof(d.warn));
	}
	r->used_bytes = column_count(st, 7);
	r->used_inodes = column_count(st, 8);
	r->soft_since[0] = sqlite3_column_int64(st, 9);
	r->soft_since[1] = sqlite3_column_int64(st, 10);
	r->clean = sqlite3_column_int(st, 11);
	copy_text(st, 12, r->upper, sizeof(r->upper));
	r->updated = sqlite3_column_int64(st, 13);
}

int qstore_get(sqlite3 *db, const char *name, struct quota_row *row)
{
	sqlite3_stmt *st;
	int rc;

	rc = sqlite3_prepare_v2(db, "SELECT " COLUMNS " FROM quotas WHERE name = ?",
				-1, &st, NULL);
	if (rc != SQLITE_OK)
		return to_errno(rc);
	sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		read_row(st, row);
	sqlite3_finalize(st);
	if (rc == SQLITE_ROW)
		return 0;
	return rc == SQLITE_DONE ? -ENOENT : to_errno(rc);
}

static int step_done(sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);

	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : to_errno(rc);
}

int qstore_put(sqlite3 *db, const struct quota_row *row)
{
	char warn[64];
	sqlite3_stmt *st;
	int rc;

	rc = sqlite3_prepare_v2(db, "INSERT OR REPLACE INTO quotas(" COLUMNS ") "
				"VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?)", -1, &st, NULL);
	if (rc != SQLITE_OK)
		return to_errno(rc);
	qformat_warn(&row->lim, ',', warn, sizeof(warn));
	sqlite3_bind_text(st, 1, row->name, -1, SQLITE_TRANSIENT);
	bind_limit(st, 2, row->lim.bytes);
	bind_limit(st, 3, row->lim.inodes);
	bind_limit(st, 4, row->lim.soft_bytes);
	bind_limit(st, 5, row->lim.soft_inodes);
	sqlite3_bind_int64(st, 6, (sqlite3_int64)row->lim.grace_s);
	sqlite3_bind_text(st, 7, warn, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 8, (sqlite3_int64)row->used_bytes);
	sqlite3_bind_int64(st, 9, (sqlite3_int64)row->used_inodes);
	sqlite3_bind_int64(st, 10, row->soft_since[0]);
	sqlite3_bind_int64(st, 11, row->soft_since[1]);
	sqlite3_bind_int(st, 12, row->clean);
	sqlite3_bind_text(st, 13, row->upper, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 14, (sqlite3_int64)time(NULL));
	return step_done(st);
}

int qstore_set_limits(sqlite3 *db, const char *name,
		      const struct quota_limits *lim)
{
	char warn[64];
	sqlite3_stmt *st;
	int rc;

	/* A grace timer belongs to the soft limit it was started under: a
	** new soft limit starts its own at the next mount. */
	rc = sqlite3_prepare_v2(db, "UPDATE quotas SET "
				"soft_bytes_since = CASE WHEN soft_bytes IS ?3 "
				"THEN soft_bytes_since ELSE 0 END, "
				"soft_inodes_since = CASE WHEN soft_inodes IS ?4 "
				"THEN soft_inodes_since ELSE 0 END, "
				"bytes = ?1, inodes = ?2, soft_bytes = ?3, "
				"soft_inodes = ?4, grace = ?5, warn = ?6, "
				"updated = ?7 WHERE name = ?8", -1, &st, NULL);
	if (rc != SQLITE_OK)
		return to_errno(rc);
	qformat_warn(lim, ',', warn, sizeof(warn));
	bind_limit(st, 1, lim->bytes);
	bind_limit(st, 2, lim->inodes);
	bind_limit(st, 3, lim->soft_bytes);
	bind_limit(st, 4, lim->soft_inodes);
	sqlite3_bind_int64(st, 5, (sqlite3_int64)lim->grace_s);
	sqlite3_bind_text(st, 6, warn, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 7, (sqlite3_int64)time(NULL));
	sqlite3_bind_text(st, 8, name, -1, SQLITE_TRANSIENT);
	rc = step_done(st);
	if (rc == 0 && sqlite3_changes(db) == 0)
		return -ENOENT;
	return rc;
}

int qstore_set_usage(sqlite3 *db, const char *name, uint64_t bytes,
		     uint64_t inodes, const int64_t soft_since[2], int clean)
{
	sqlite3_stmt *st;
	int rc;

	rc = sqlite3_prepare_v2(db, "UPDATE quotas SET used_bytes = ?, "
				"used_inodes = ?, soft_bytes_since = ?, "
				"soft_inodes_since = ?, clean = ?, updated = ? "
				"WHERE name = ?", -1, &st, NULL);
	if (rc != SQLITE_OK)
		return to_errno(rc);
	sqlite3_bind_int64(st, 1, (sqlite3_int64)bytes);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)inodes);
	sqlite3_bind_int64(st, 3, soft_since[0]);
	sqlite3_bind_int64(st, 4, soft_since[1]);
	sqlite3_bind_int(st, 5, clean);
	sqlite3_bind_int64(st, 6, (sqlite3_int64)time(NULL));
	sqlite3_bind_text(st, 7, name, -1, SQLITE_TRANSIENT);
	rc = step_done(st);
	if (rc == 0 && sqlite3_changes(db) == 0)
		return -ENOENT;
	return rc;
}

int qstore_list(sqlite3 *db, struct quota_row **rows, size_t *n)
{
	struct quota_row *arr = NULL, *bigger;
	size_t cap = 0, count = 0;
	sqlite3_stmt *st;
	int rc;

	*rows = NULL;
	*n = 0;
	rc = sqlite3_prepare_v2(db, "SELECT " COLUMNS " FROM quotas ORDER BY name",
				-1, &st, NULL);
	if (rc != SQLITE_OK)
		return to_errno(rc);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (count == cap) {
			cap = cap ? cap * 2 : 8;
			bigger = realloc(arr, cap * sizeof(*arr));
			if (!bigger) {
				rc = SQLITE_NOMEM;
				break;
			}
			arr = bigger;
		}
		read_row(st, &arr[count++]);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		free(arr);
		return to_errno(rc);
	}
	*rows = arr;
	*n = count;
	return 0;
}

struct save_ctx {
	sqlite3_stmt *st;
	int rc;
};

static void save_one(uint64_t ino, uint64_t bytes, void *arg)
{
	struct save_ctx *c = arg;

	if (c->rc != SQLITE_DONE)
		return;
	sqlite3_reset(c->st);
	sqlite3_bind_int64(c->st, 2, (sqlite3_int64)ino);
	sqlite3_bind_int64(c->st, 3, (sqlite3_int64)bytes);
	c->rc = sqlite3_step(c->st);
}

int qstore_save_xattrs(sqlite3 *db, const char *name)
{
	struct save_ctx c = { NULL, SQLITE_DONE };
	sqlite3_stmt *del;
	int rc;

	rc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
	if (rc != SQLITE_OK)
		return to_errno(rc);
	rc = sqlite3_prepare_v2(db, "DELETE FROM quota_xattrs WHERE name = ?", -1,
				&del, NULL);
	if (rc == SQLITE_OK) {
		sqlite3_bind_text(del, 1, name, -1, SQLITE_TRANSIENT);
		rc = step_done(del) == 0 ? SQLITE_OK : SQLITE_ERROR;
	}
	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v2(db, "INSERT INTO quota_xattrs(name, ino, bytes) "
					"VALUES(?,?,?)", -1, &c.st, NULL);
	if (rc == SQLITE_OK) {
		sqlite3_bind_text(c.st, 1, name, -1, SQLITE_TRANSIENT);
		xcharge_each(save_one, &c);
		sqlite3_finalize(c.st);
		rc = c.rc == SQLITE_DONE ? SQLITE_OK : c.rc;
	}
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
	if (rc != SQLITE_OK) {
		(void)sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
		return to_errno(rc);
	}
	return 0;
}

int qstore_load_xattrs(sqlite3 *db, const char *name)
{
	sqlite3_stmt *st;
	int rc, r = 0;

	xcharge_clear();
	rc = sqlite3_prepare_v2(db, "SELECT ino, bytes FROM quota_xattrs "
				"WHERE name = ?", -1, &st, NULL);
	if (rc != SQLITE_OK)
		return to_errno(rc);
	sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
	while (r == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW)
		r = xcharge_set((uint64_t)sqlite3_column_int64(st, 0),
				column_count(st, 1));
	sqlite3_finalize(st);
	if (r < 0)
		return r;
	return rc == SQLITE_DONE ? 0 : to_errno(rc);
}
