/*
** The SQLite conventions every store of wsfs shares (state.db, audit.db):
** result codes as errno values, and switching a database to WAL.
*/
#ifndef WSFS_SQLUTIL_H
#define WSFS_SQLUTIL_H

struct sqlite3;

/* An SQLite result code (extended codes too) as a negative errno. */
int sql_errno(int rc);

/* Switches DB to WAL journal mode. Returns an SQLite result code; *IS_WAL
** says whether WAL is in effect (it is not on a filesystem that cannot do
** it). Waits up to TIMEOUT_MS while other connections keep the switch
** from taking its lock. */
int sql_enable_wal(struct sqlite3 *db, int timeout_ms, int *is_wal);

/* Column COL of the current row of ST as a malloc'd string in *OUT, NULL
** for an SQL NULL.  Returns 0 or -ENOMEM. */
struct sqlite3_stmt;
int sql_column_strdup(struct sqlite3_stmt *st, int col, char **out);

#endif
