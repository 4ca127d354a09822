/*
** audit.db: the records and the checkpoints, in SQLite (WAL), mode 0600.
**
**   records(ws TEXT, seq INTEGER, time_ns INTEGER, host TEXT, layer TEXT,
**           uid INTEGER, gid INTEGER, pid INTEGER, comm TEXT, op TEXT,
**           path TEXT, path2 TEXT, ino INTEGER, bytes INTEGER, result TEXT,
**           detail TEXT, fp TEXT, leaf BLOB, head BLOB,
**           PRIMARY KEY (ws, seq))
**   checkpoints(ws TEXT, size INTEGER, head BLOB, time_ns INTEGER,
**               note TEXT, PRIMARY KEY (ws, size))
**   meta(key TEXT PRIMARY KEY, value TEXT)          schema_version = 1
**
** Every column is NOT NULL; text columns hold the record's bytes exactly as
** given (bound with their length, never validated as UTF-8), so queries must
** bind text, not blobs.  Indexes: records(time_ns), records(op, time_ns),
** records(uid, time_ns), and records(result,
** time_ns) WHERE result != '0': a partial index, because nearly every
** record succeeds and a full one would cost every insert for entries no
** query uses (queries on failures must say result != '0' to use it).
** There is no pid index: a host has many processes, so each commit would
** dirty one leaf page per process in the batch, and with it the writer
** ran at two thirds of its speed; pids are reused, so a search by pid is
** only meaningful with --since, and the time index serves it.
** Triggers abort every UPDATE and DELETE on both tables: an accident guard
** only; the chain and the signed checkpoints are the real protection.
**
** Appends run in BEGIN IMMEDIATE transactions that read each chain's tail
** from the table itself, so any number of writers (the daemons, wsctl) may
** append to any chain, and a chain continues after a crash from whatever was
** committed.
*/
#ifndef WSFS_AUDIT_STORE_H
#define WSFS_AUDIT_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "keys.h"
#include "record.h"

struct audit_store;
struct sqlite3;
struct sqlite3_stmt;

enum {
	AUDIT_STORE_CREATE = 1 << 0,	/* create audit.db (0600) if missing */
	AUDIT_STORE_READONLY = 1 << 1,	/* readers: search, verify, export */
	AUDIT_STORE_SYNC_FULL = 1 << 2,	/* synchronous=FULL (default NORMAL) */
	AUDIT_STORE_OWN_CHECKPOINTS = 1 << 3,	/* no automatic WAL checkpoints */
};

/* Opens <state_dir>/audit.db. -ENOENT without CREATE if it does not exist. */
int audit_store_open(const char *state_dir, int flags,
		     struct audit_store **out, char *err, size_t errlen);
void audit_store_close(struct audit_store *s);

/* Appends RECS (any mix of chains, in order) in one transaction: sets each
** record's seq, leaf and head. 0, or a negative errno with the reason in
** ERR (nothing committed then; the records may be retried as they are). */
int audit_store_append(struct audit_store *s, struct audit_record **recs,
		       size_t n, char *err, size_t errlen);

/* Signs and stores a checkpoint of chain WS if it has records no checkpoint
** covers yet. 1 written (the note in *NOTE, malloc'd, if NOTE), 0 nothing
** new, or a negative errno. */
int audit_store_checkpoint(struct audit_store *s, const struct audit_key *k,
			   const char *host, const char *ws, int64_t time_ns,
			   char **note, char *err, size_t errlen);

/* With AUDIT_STORE_OWN_CHECKPOINTS: the WAL's size in pages after the last
** commit, and a PASSIVE checkpoint (it never waits for readers; one that
** could not finish is retried at the next call). */
int audit_store_wal_pages(const struct audit_store *s);
int audit_store_wal_checkpoint(struct audit_store *s, char *err,
			       size_t errlen);

/* The chain's last seq (0 if empty). */
int audit_store_tail(struct audit_store *s, const char *ws, int64_t *seq,
		     uint8_t head[AUDIT_HASH_LEN]);

/* For readers that build their own queries (search, report, export). */
struct sqlite3 *audit_store_db(struct audit_store *s);

/* The state directory the store was opened in (no trailing slash). */
const char *audit_store_dir(const struct audit_store *s);

/* Fills R from the current row of a statement that selected the records
** columns in table order (ws, seq, ..., head) starting at column COL. The
** strings point into the statement's row: valid until its next step. */
void audit_record_from_row(struct audit_record *r, struct sqlite3_stmt *st,
			   int col);

/* The column list in table order, for SELECTs matching the above. */
#define AUDIT_RECORD_COLUMNS \
	"ws, seq, time_ns, host, layer, uid, gid, pid, comm, op, path, " \
	"path2, ino, bytes, result, detail, fp, leaf, head"

#endif
