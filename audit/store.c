/*
** audit.db (see store.h for the schema and its rules).
**
** The store is written by many processes (each workspace's daemon, wsctl
** recording its own queries) and every one of them must extend a chain from
** its true tail.  No process can cache a tail across transactions, then:
** each append takes the write lock first (BEGIN IMMEDIATE) and only then
** reads the tails of the chains its batch touches, remembering them for the
** rest of that transaction only.  A batch from a daemon almost always holds
** one chain, so that costs one indexed lookup per batch.
**
** Throughput comes from batching (one transaction, so one WAL sync, per
** batch), from statements prepared once per connection and reused, and from
** binding every string with its length and SQLITE_STATIC, so SQLite copies
** each byte once, into the page.
**
** The file is created 0600 by open(2) before SQLite sees it: SQLite would
** create it with the process umask applied to 0644, and the log names every
** file the agents touched.  The WAL and shared-memory files take the
** database's mode from SQLite itself.
**
** Like state.db (fs/registry.c), audit.db runs in WAL mode so readers
** (search, verify, export) never block the writers, with a busy timeout
** long enough to ride out a large export's checkpoint.
*/
#include "store.h"
#include "grow.h"
#include "sqlutil.h"

#include "checkpoint.h"
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#define SCHEMA_VERSION "1"
#define BUSY_TIMEOUT_MS 10000
/* Page cache per connection (negative: KiB).  A reader's long verify or
** export keeps index pages resident in 16 MiB.  A writer only appends: it
** touches the right edges of six b-trees, a few dozen pages, and every
** daemon has one, so it keeps its memory small. */
#define CACHE_PRAGMA "PRAGMA cache_size=-16384"
#define WRITER_CACHE_PRAGMA "PRAGMA cache_size=-2048"
/* 16 KiB pages: a record is a few hundred bytes and every append touches
** the right edge of seven b-trees (table, primary key, five indexes);
** bigger pages mean fewer splits and shallower trees, measured at about
** 15% more appends and 40% faster verification than 4 KiB.  Only takes
** effect when the file is created. */
#define PAGE_PRAGMA "PRAGMA page_size=16384"
/* Checkpoint the WAL into the database every 2048 pages (32 MiB) rather
** than SQLite's 1000 (16 MiB at this page size), and cut it back to that
** afterwards: the hot right-edge pages are copied back less often. */
#define WRITER_PRAGMAS "PRAGMA wal_autocheckpoint=2048;" \
	"PRAGMA journal_size_limit=33554432"
/* A daemon's writer checkpoints when it chooses (audit_store_wal_*): a
** checkpoint syncs the disk, and one in the middle of an agent's burst of
** file creation stalls the agent's own metadata behind it. */
#define OWN_CHECKPOINT_PRAGMAS "PRAGMA wal_autocheckpoint=0;" \
	"PRAGMA journal_size_limit=33554432"

static const char schema_sql[] =
	"CREATE TABLE IF NOT EXISTS records("
	"ws TEXT NOT NULL, seq INTEGER NOT NULL, time_ns INTEGER NOT NULL, "
	"host TEXT NOT NULL, layer TEXT NOT NULL, uid INTEGER NOT NULL, "
	"gid INTEGER NOT NULL, pid INTEGER NOT NULL, comm TEXT NOT NULL, "
	"op TEXT NOT NULL, path TEXT NOT NULL, path2 TEXT NOT NULL, "
	"ino INTEGER NOT NULL, bytes INTEGER NOT NULL, result TEXT NOT NULL, "
	"detail TEXT NOT NULL, fp TEXT NOT NULL, leaf BLOB NOT NULL, "
	"head BLOB NOT NULL, PRIMARY KEY (ws, seq));"
	"CREATE TABLE IF NOT EXISTS checkpoints("
	"ws TEXT NOT NULL, size INTEGER NOT NULL, head BLOB NOT NULL, "
	"time_ns INTEGER NOT NULL, note TEXT NOT NULL, "
	"PRIMARY KEY (ws, size));"
	"CREATE TABLE IF NOT EXISTS meta("
	"key TEXT PRIMARY KEY, value TEXT NOT NULL);"
	"CREATE INDEX IF NOT EXISTS records_time ON records(time_ns);"
	"CREATE INDEX IF NOT EXISTS records_op ON records(op, time_ns);"
	"CREATE INDEX IF NOT EXISTS records_uid ON records(uid, time_ns);"
	"CREATE INDEX IF NOT EXISTS records_failed ON records(result, time_ns) WHERE result != '0';"
	"CREATE TRIGGER IF NOT EXISTS records_no_update BEFORE UPDATE ON "
	"records BEGIN SELECT RAISE(ABORT, 'audit records are append-only'); "
	"END;"
	"CREATE TRIGGER IF NOT EXISTS records_no_delete BEFORE DELETE ON "
	"records BEGIN SELECT RAISE(ABORT, 'audit records are append-only'); "
	"END;"
	"CREATE TRIGGER IF NOT EXISTS checkpoints_no_update BEFORE UPDATE ON "
	"checkpoints BEGIN SELECT RAISE(ABORT, 'audit checkpoints are "
	"append-only'); END;"
	"CREATE TRIGGER IF NOT EXISTS checkpoints_no_delete BEFORE DELETE ON "
	"checkpoints BEGIN SELECT RAISE(ABORT, 'audit checkpoints are "
	"append-only'); END;"
	"INSERT OR IGNORE INTO meta(key, value) "
	"VALUES('schema_version', '" SCHEMA_VERSION "');";

#define INSERT_SQL "INSERT INTO records(" AUDIT_RECORD_COLUMNS ") VALUES " \
	"(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
#define TAIL_SQL "SELECT seq, head FROM records WHERE ws = ? " \
	"ORDER BY seq DESC LIMIT 1"
#define LAST_CP_SQL "SELECT max(size) FROM checkpoints WHERE ws = ?"
#define INSERT_CP_SQL "INSERT INTO checkpoints(ws, size, head, time_ns, " \
	"note) VALUES (?,?,?,?,?)"

/* A chain's tail as read inside the current transaction. */
struct tail {
	const char *ws;		/* points into a record of the batch */
	int64_t seq;
	uint8_t head[AUDIT_HASH_LEN];
};

struct audit_store {
	sqlite3 *db;
	int readonly;
	int wal_pages;		/* AUDIT_STORE_OWN_CHECKPOINTS: frames in the WAL */
	sqlite3_stmt *insert, *tail, *last_cp, *insert_cp;
	struct tail *tails;	/* reused from batch to batch */
	size_t ntails, tails_cap;
	char dir[PATH_MAX];
	char path[PATH_MAX];
};

/* ---- opening ------------------------------------------------------------ */

static int db_fail(struct audit_store *s, int rc, const char *what,
		   char *err, size_t errlen)
{
	audit_set_err(err, errlen, "%s: %s: %s", s->path, what,
		      sqlite3_errmsg(s->db));
	return sql_errno(rc);
}

static int exec(struct audit_store *s, const char *sql, const char *what,
		char *err, size_t errlen)
{
	int rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);

	return rc == SQLITE_OK ? 0 : db_fail(s, rc, what, err, errlen);
}

/* Creates the file with our mode if missing, so SQLite never picks one. */
static int precreate(const char *path)
{
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);

	if (fd < 0)
		return -errno;
	return close(fd) < 0 ? -errno : 0;
}

/* Several processes may open a fresh audit.db at once: see sqlutil.c. */
static int set_wal(struct audit_store *s, char *err, size_t errlen)
{
	int is_wal, rc = sql_enable_wal(s->db, BUSY_TIMEOUT_MS, &is_wal);

	if (rc != SQLITE_OK)
		return db_fail(s, rc, "enabling WAL", err, errlen);
	if (!is_wal) {
		audit_set_err(err, errlen, "%s: cannot use WAL journal mode",
			      s->path);
		return -EIO;
	}
	return 0;
}

static int check_version(struct audit_store *s, char *err, size_t errlen)
{
	const unsigned char *v;
	sqlite3_stmt *st;
	int rc;

	rc = sqlite3_prepare_v2(s->db, "SELECT value FROM meta WHERE key = "
				"'schema_version'", -1, &st, NULL);
	if (rc != SQLITE_OK)
		return db_fail(s, rc, "reading schema version", err, errlen);
	rc = sqlite3_step(st);
	v = rc == SQLITE_ROW ? sqlite3_column_text(st, 0) : NULL;
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		rc = db_fail(s, rc, "reading schema version", err, errlen);
	} else if (v == NULL ||
		   strcmp((const char *)v, SCHEMA_VERSION) != 0) {
		audit_set_err(err, errlen, "%s has schema version %s; this "
			      "build knows version " SCHEMA_VERSION, s->path,
			      v ? (const char *)v : "(none)");
		rc = -EPROTO;
	} else {
		rc = 0;
	}
	(void)sqlite3_finalize(st);
	return rc;
}

/* BEGIN IMMEDIATE: two writers creating the schema queue on the busy
** timeout instead of deadlocking on a read-to-write upgrade. */
static int init_schema(struct audit_store *s, char *err, size_t errlen)
{
	int rc;

	rc = exec(s, "BEGIN IMMEDIATE", "creating schema", err, errlen);
	if (rc < 0)
		return rc;
	rc = exec(s, schema_sql, "creating schema", err, errlen);
	if (rc == 0)
		rc = check_version(s, err, errlen);
	if (rc == 0)
		rc = exec(s, "COMMIT", "creating schema", err, errlen);
	if (rc < 0)
		(void)sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	return rc;
}

static int prepare(struct audit_store *s, const char *sql, sqlite3_stmt **st,
		   char *err, size_t errlen)
{
	int rc = sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT,
				    st, NULL);

	return rc == SQLITE_OK ? 0 : db_fail(s, rc, "preparing", err, errlen);
}

static int prepare_all(struct audit_store *s, char *err, size_t errlen)
{
	int rc = prepare(s, TAIL_SQL, &s->tail, err, errlen);

	if (rc == 0 && !s->readonly)
		rc = prepare(s, INSERT_SQL, &s->insert, err, errlen);
	if (rc == 0 && !s->readonly)
		rc = prepare(s, LAST_CP_SQL, &s->last_cp, err, errlen);
	if (rc == 0 && !s->readonly)
		rc = prepare(s, INSERT_CP_SQL, &s->insert_cp, err, errlen);
	return rc;
}

static int set_paths(struct audit_store *s, const char *dir, char *err,
		     size_t errlen)
{
	size_t len;
	int n;

	n = snprintf(s->dir, sizeof(s->dir), "%s", dir);
	if (n >= 0 && (size_t)n < sizeof(s->dir)) {
		len = strlen(s->dir);
		while (len > 1 && s->dir[len - 1] == '/')
			s->dir[--len] = '\0';
		n = snprintf(s->path, sizeof(s->path), "%s/audit.db", s->dir);
	}
	if (n < 0 || (size_t)n >= sizeof(s->path)) {
		audit_set_err(err, errlen, "state directory path %s is too "
			      "long", dir);
		return -ENAMETOOLONG;
	}
	return 0;
}

/* Without CREATE the file must exist: readers must not conjure an empty
** log out of a typo, and SQLite would create one even read-write. */
static int open_file(struct audit_store *s, int flags, char *err,
		     size_t errlen)
{
	int oflags, rc;

	if (flags & AUDIT_STORE_CREATE) {
		rc = precreate(s->path);
		if (rc < 0) {
			audit_set_err(err, errlen, "cannot create %s: %s",
				      s->path, strerror(-rc));
			return rc;
		}
	} else if (access(s->path, F_OK) != 0) {
		rc = -errno;
		audit_set_err(err, errlen, rc == -ENOENT ? "%s does not exist"
			      : "cannot access %s", s->path);
		return rc;
	}
	oflags = s->readonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE;
	rc = sqlite3_open_v2(s->path, &s->db, oflags | SQLITE_OPEN_NOMUTEX,
			     NULL);
	if (rc != SQLITE_OK)
		return db_fail(s, rc, "opening", err, errlen);
	rc = sqlite3_busy_timeout(s->db, BUSY_TIMEOUT_MS);
	if (rc != SQLITE_OK)
		return db_fail(s, rc, "setting busy timeout", err, errlen);
	return 0;
}

/* SQLite calls this after each commit with the WAL's size in pages. */
static int count_wal_pages(void *arg, sqlite3 *db, const char *name, int pages)
{
	struct audit_store *s = arg;

	(void)db;
	(void)name;
	s->wal_pages = pages;
	return SQLITE_OK;
}

static int configure(struct audit_store *s, int flags, char *err,
		     size_t errlen)
{
	int rc = exec(s, s->readonly ? CACHE_PRAGMA : WRITER_CACHE_PRAGMA,
		      "setting cache size", err, errlen);

	if (rc < 0 || s->readonly)
		return rc;
	rc = exec(s, PAGE_PRAGMA, "setting page size", err, errlen);
	if (rc == 0)
		rc = set_wal(s, err, errlen);
	if (rc == 0)
		rc = exec(s, flags & AUDIT_STORE_OWN_CHECKPOINTS ?
			  OWN_CHECKPOINT_PRAGMAS : WRITER_PRAGMAS,
			  "setting WAL checkpoints", err, errlen);
	if (rc == 0 && (flags & AUDIT_STORE_OWN_CHECKPOINTS))
		sqlite3_wal_hook(s->db, count_wal_pages, s);
	if (rc == 0)
		rc = exec(s, flags & AUDIT_STORE_SYNC_FULL ?
			  "PRAGMA synchronous=FULL" :
			  "PRAGMA synchronous=NORMAL",
			  "setting synchronous", err, errlen);
	if (rc == 0)
		rc = init_schema(s, err, errlen);
	return rc;
}

int audit_store_open(const char *state_dir, int flags,
		     struct audit_store **out, char *err, size_t errlen)
{
	struct audit_store *s;
	int rc;

	s = calloc(1, sizeof(*s));
	if (s == NULL) {
		audit_set_err(err, errlen, "out of memory");
		return -ENOMEM;
	}
	s->readonly = !!(flags & AUDIT_STORE_READONLY);
	if (s->readonly)
		flags &= ~AUDIT_STORE_CREATE;
	rc = set_paths(s, state_dir, err, errlen);
	if (rc == 0)
		rc = open_file(s, flags, err, errlen);
	if (rc == 0)
		rc = configure(s, flags, err, errlen);
	if (rc == 0 && s->readonly)
		rc = check_version(s, err, errlen);
	if (rc == 0)
		rc = prepare_all(s, err, errlen);
	if (rc < 0) {
		audit_store_close(s);
		return rc;
	}
	*out = s;
	return 0;
}

void audit_store_close(struct audit_store *s)
{
	if (s == NULL)
		return;
	(void)sqlite3_finalize(s->insert);
	(void)sqlite3_finalize(s->tail);
	(void)sqlite3_finalize(s->last_cp);
	(void)sqlite3_finalize(s->insert_cp);
	/* Only fails with unfinalized statements, and all are gone. */
	(void)sqlite3_close(s->db);
	free(s->tails);
	free(s);
}

struct sqlite3 *audit_store_db(struct audit_store *s)
{
	return s->db;
}

const char *audit_store_dir(const struct audit_store *s)
{
	return s->dir;
}

/* ---- tails -------------------------------------------------------------- */

static void bind_str(sqlite3_stmt *st, int col, const char *v)
{
	if (v == NULL)
		v = "";
	(void)sqlite3_bind_text(st, col, v, (int)strlen(v), SQLITE_STATIC);
}

/* Reads WS's tail into SEQ and HEAD (0 and zeros for an empty chain). */
static int read_tail(struct audit_store *s, const char *ws, int64_t *seq,
		     uint8_t head[AUDIT_HASH_LEN])
{
	const void *blob;
	int rc;

	bind_str(s->tail, 1, ws);
	rc = sqlite3_step(s->tail);
	*seq = 0;
	memset(head, 0, AUDIT_HASH_LEN);
	if (rc == SQLITE_ROW) {
		*seq = sqlite3_column_int64(s->tail, 0);
		blob = sqlite3_column_blob(s->tail, 1);
		if (blob != NULL &&
		    sqlite3_column_bytes(s->tail, 1) == AUDIT_HASH_LEN)
			memcpy(head, blob, AUDIT_HASH_LEN);
		rc = SQLITE_DONE;
	}
	(void)sqlite3_reset(s->tail);
	(void)sqlite3_clear_bindings(s->tail);
	return rc == SQLITE_DONE ? 0 : rc;
}

int audit_store_wal_pages(const struct audit_store *s)
{
	return s->wal_pages;
}

int audit_store_wal_checkpoint(struct audit_store *s, char *err,
			       size_t errlen)
{
	int rc = sqlite3_wal_checkpoint_v2(s->db, NULL,
					   SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);

	if (rc != SQLITE_OK && rc != SQLITE_BUSY)
		return db_fail(s, rc, "checkpointing the WAL", err, errlen);
	if (rc == SQLITE_OK)
		s->wal_pages = 0;
	return 0;
}

int audit_store_tail(struct audit_store *s, const char *ws, int64_t *seq,
		     uint8_t head[AUDIT_HASH_LEN])
{
	int rc = read_tail(s, ws, seq, head);

	return rc == 0 ? 0 : sql_errno(rc);
}

/* The batch's cached tail of WS, read from the table on first use. */
static int batch_tail(struct audit_store *s, const char *ws,
		      struct tail **out)
{
	struct tail *t;
	size_t i;
	int rc;

	for (i = 0; i < s->ntails; i++) {
		if (strcmp(s->tails[i].ws, ws) == 0) {
			*out = &s->tails[i];
			return 0;
		}
	}
	if (s->ntails == s->tails_cap &&
	    grow_array((void **)&s->tails, &s->tails_cap, sizeof(*s->tails),
		       8) < 0)
		return SQLITE_NOMEM;
	t = &s->tails[s->ntails];
	t->ws = ws;
	rc = read_tail(s, ws, &t->seq, t->head);
	if (rc != 0)
		return rc;
	s->ntails++;
	*out = t;
	return 0;
}

/* ---- appending ---------------------------------------------------------- */

static void bind_record(sqlite3_stmt *st, const struct audit_record *r)
{
	bind_str(st, 1, r->ws);
	(void)sqlite3_bind_int64(st, 2, r->seq);
	(void)sqlite3_bind_int64(st, 3, r->time_ns);
	bind_str(st, 4, r->host);
	bind_str(st, 5, r->layer);
	(void)sqlite3_bind_int64(st, 6, r->uid);
	(void)sqlite3_bind_int64(st, 7, r->gid);
	(void)sqlite3_bind_int64(st, 8, r->pid);
	bind_str(st, 9, r->comm);
	bind_str(st, 10, r->op);
	bind_str(st, 11, r->path);
	bind_str(st, 12, r->path2);
	(void)sqlite3_bind_int64(st, 13, r->ino);
	(void)sqlite3_bind_int64(st, 14, r->bytes);
	bind_str(st, 15, r->result);
	bind_str(st, 16, r->detail);
	bind_str(st, 17, r->fp);
	(void)sqlite3_bind_blob(st, 18, r->leaf, AUDIT_HASH_LEN,
				SQLITE_STATIC);
	(void)sqlite3_bind_blob(st, 19, r->head, AUDIT_HASH_LEN,
				SQLITE_STATIC);
}

/* Chains R onto its tail and inserts it; SQLITE_DONE on success. */
static int append_record(struct audit_store *s, struct audit_record *r,
			 char *err, size_t errlen)
{
	struct tail *t;
	int rc;

	rc = batch_tail(s, r->ws ? r->ws : "", &t);
	if (rc != 0)
		return rc;
	r->seq = t->seq + 1;
	rc = audit_leaf(r, r->leaf);
	if (rc < 0) {
		audit_set_err(err, errlen, "hashing a record: %s",
			      strerror(-rc));
		return SQLITE_NOMEM;
	}
	audit_head_next(t->head, r->leaf, r->head);
	bind_record(s->insert, r);
	rc = sqlite3_step(s->insert);
	(void)sqlite3_reset(s->insert);
	if (rc != SQLITE_DONE)
		return rc;
	t->seq = r->seq;
	memcpy(t->head, r->head, AUDIT_HASH_LEN);
	return SQLITE_DONE;
}

/* After a failed batch: back to the state the caller handed in, so a retry
** starts clean. */
static void unassign(struct audit_record **recs, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		recs[i]->seq = 0;
		memset(recs[i]->leaf, 0, AUDIT_HASH_LEN);
		memset(recs[i]->head, 0, AUDIT_HASH_LEN);
	}
}

int audit_store_append(struct audit_store *s, struct audit_record **recs,
		       size_t n, char *err, size_t errlen)
{
	size_t i;
	int rc;

	if (s->readonly) {
		audit_set_err(err, errlen, "%s is open read-only", s->path);
		return -EROFS;
	}
	if (n == 0)
		return 0;
	if (err != NULL && errlen > 0)
		err[0] = '\0';
	rc = exec(s, "BEGIN IMMEDIATE", "appending", err, errlen);
	if (rc < 0)
		return rc;
	s->ntails = 0;
	for (i = 0; i < n; i++) {
		rc = append_record(s, recs[i], err, errlen);
		if (rc != SQLITE_DONE)
			break;
	}
	(void)sqlite3_clear_bindings(s->insert);
	s->ntails = 0;
	if (rc == SQLITE_DONE) {
		rc = sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL);
		if (rc == SQLITE_OK)
			return 0;
	}
	/* A hashing failure has already said why; SQLite errors say it
	** here, before the rollback can replace the message. */
	if (rc != SQLITE_NOMEM || err == NULL || errlen == 0 || err[0] == '\0')
		(void)db_fail(s, rc, "appending", err, errlen);
	(void)sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	unassign(recs, n);
	return sql_errno(rc);
}

/* ---- checkpoints -------------------------------------------------------- */

static int last_checkpoint(struct audit_store *s, const char *ws,
			   int64_t *size)
{
	int rc;

	bind_str(s->last_cp, 1, ws);
	rc = sqlite3_step(s->last_cp);
	*size = 0;
	if (rc == SQLITE_ROW) {
		*size = sqlite3_column_int64(s->last_cp, 0);
		rc = SQLITE_DONE;
	}
	(void)sqlite3_reset(s->last_cp);
	(void)sqlite3_clear_bindings(s->last_cp);
	return rc == SQLITE_DONE ? 0 : rc;
}

static int insert_checkpoint(struct audit_store *s, const char *ws,
			     int64_t size, const uint8_t head[AUDIT_HASH_LEN],
			     int64_t time_ns, const char *note)
{
	sqlite3_stmt *st = s->insert_cp;
	int rc;

	bind_str(st, 1, ws);
	(void)sqlite3_bind_int64(st, 2, size);
	(void)sqlite3_bind_blob(st, 3, head, AUDIT_HASH_LEN, SQLITE_STATIC);
	(void)sqlite3_bind_int64(st, 4, time_ns);
	bind_str(st, 5, note);
	rc = sqlite3_step(st);
	(void)sqlite3_reset(st);
	(void)sqlite3_clear_bindings(st);
	return rc == SQLITE_DONE ? 0 : rc;
}

/* Inside the transaction: 1 written (*NOTE set), 0 nothing new, or a
** SQLite error code negated. */
static int checkpoint_locked(struct audit_store *s, const struct audit_key *k,
			     const char *host, const char *ws,
			     int64_t time_ns, char **note, char *err,
			     size_t errlen)
{
	uint8_t head[AUDIT_HASH_LEN];
	int64_t seq, last;
	int rc;

	rc = read_tail(s, ws, &seq, head);
	if (rc == 0)
		rc = last_checkpoint(s, ws, &last);
	if (rc != 0)
		return db_fail(s, rc, "checkpointing", err, errlen);
	if (seq <= last)
		return 0;
	*note = audit_checkpoint_sign(k, host, ws, seq, head, time_ns);
	if (*note == NULL) {
		audit_set_err(err, errlen, "cannot sign a checkpoint of chain "
			      "'%s'", ws);
		return -EIO;
	}
	rc = insert_checkpoint(s, ws, seq, head, time_ns, *note);
	if (rc != 0)
		return db_fail(s, rc, "checkpointing", err, errlen);
	return 1;
}

int audit_store_checkpoint(struct audit_store *s, const struct audit_key *k,
			   const char *host, const char *ws, int64_t time_ns,
			   char **note, char *err, size_t errlen)
{
	char *text = NULL;
	int rc, wrote;

	if (s->readonly) {
		audit_set_err(err, errlen, "%s is open read-only", s->path);
		return -EROFS;
	}
	rc = exec(s, "BEGIN IMMEDIATE", "checkpointing", err, errlen);
	if (rc < 0)
		return rc;
	wrote = checkpoint_locked(s, k, host, ws, time_ns, &text, err,
				  errlen);
	rc = wrote >= 0 ? exec(s, "COMMIT", "checkpointing", err, errlen)
			: wrote;
	if (rc < 0) {
		(void)sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
		free(text);
		return rc;
	}
	if (note != NULL)
		*note = text;
	else
		free(text);
	return wrote;
}

/* ---- reading ------------------------------------------------------------ */

static const char *col_text(sqlite3_stmt *st, int col)
{
	const unsigned char *t = sqlite3_column_text(st, col);

	return t ? (const char *)t : "";
}

/* A hash column of the wrong size (only a hand-edited file has one) reads
** as all 0xff, which matches nothing, so verification reports it. */
static void col_hash(sqlite3_stmt *st, int col, uint8_t out[AUDIT_HASH_LEN])
{
	const void *b = sqlite3_column_blob(st, col);

	if (b != NULL && sqlite3_column_bytes(st, col) == AUDIT_HASH_LEN)
		memcpy(out, b, AUDIT_HASH_LEN);
	else
		memset(out, 0xff, AUDIT_HASH_LEN);
}

void audit_record_from_row(struct audit_record *r, struct sqlite3_stmt *st,
			   int col)
{
	r->ws = col_text(st, col + 0);
	r->seq = sqlite3_column_int64(st, col + 1);
	r->time_ns = sqlite3_column_int64(st, col + 2);
	r->host = col_text(st, col + 3);
	r->layer = col_text(st, col + 4);
	r->uid = sqlite3_column_int64(st, col + 5);
	r->gid = sqlite3_column_int64(st, col + 6);
	r->pid = sqlite3_column_int64(st, col + 7);
	r->comm = col_text(st, col + 8);
	r->op = col_text(st, col + 9);
	r->path = col_text(st, col + 10);
	r->path2 = col_text(st, col + 11);
	r->ino = sqlite3_column_int64(st, col + 12);
	r->bytes = sqlite3_column_int64(st, col + 13);
	r->result = col_text(st, col + 14);
	r->detail = col_text(st, col + 15);
	r->fp = col_text(st, col + 16);
	col_hash(st, col + 17, r->leaf);
	col_hash(st, col + 18, r->head);
}
