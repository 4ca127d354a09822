/*
** SQLite helpers shared by the state registry and the audit store.
**
** journal_mode is a query as well as a setting: it answers with the mode in
** effect, which stays "delete" on filesystems that cannot do WAL.  Leaving
** rollback mode needs an exclusive lock, and when other connections hold
** the file SQLite may fail that upgrade with SQLITE_BUSY at once rather
** than wait in the busy handler (waiting there could deadlock).  Several
** daemons starting together on a fresh state directory hit exactly this,
** so the waiting the busy timeout would have done is done here.
*/
#include "sqlutil.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define WAL_RETRY_MS 10

int sql_errno(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_NOMEM:
		return -ENOMEM;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return -EAGAIN;
	case SQLITE_PERM:
	case SQLITE_AUTH:
	case SQLITE_READONLY:
		return -EACCES;
	case SQLITE_FULL:
		return -ENOSPC;
	case SQLITE_CANTOPEN:
		return -ENOENT;
	case SQLITE_CORRUPT:
	case SQLITE_NOTADB:
		return -EUCLEAN;
	case SQLITE_TOOBIG:
		return -E2BIG;
	default:
		return -EIO;
	}
}

/* One attempt at switching to WAL; *IS_WAL tells whether it took. */
static int wal_try(sqlite3 *db, int *is_wal)
{
	const unsigned char *mode;
	sqlite3_stmt *st;
	int rc;

	*is_wal = 0;
	rc = sqlite3_prepare_v2(db, "PRAGMA journal_mode=WAL", -1, &st, NULL);
	if (rc != SQLITE_OK)
		return rc;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		mode = sqlite3_column_text(st, 0);
		*is_wal = mode != NULL &&
			  strcmp((const char *)mode, "wal") == 0;
		rc = SQLITE_OK;
	}
	(void)sqlite3_finalize(st);
	return rc;
}

int sql_enable_wal(sqlite3 *db, int timeout_ms, int *is_wal)
{
	const struct timespec pause = { 0, WAL_RETRY_MS * 1000 * 1000 };
	int rc = SQLITE_OK;

	*is_wal = 0;
	for (int i = 0; i < timeout_ms / WAL_RETRY_MS; i++) {
		rc = wal_try(db, is_wal);
		if ((rc & 0xff) != SQLITE_BUSY)
			break;
		/* An early wake-up only shortens the wait. */
		(void)nanosleep(&pause, NULL);
	}
	return rc;
}

int sql_column_strdup(sqlite3_stmt *st, int col, char **out)
{
	const unsigned char *t = sqlite3_column_text(st, col);

	*out = NULL;
	if (t == NULL)
		return sqlite3_column_type(st, col) == SQLITE_NULL ? 0 :
		       -ENOMEM;
	*out = strdup((const char *)t);
	return *out != NULL ? 0 : -ENOMEM;
}
