/*
** The workspace registry: <state>/state.db plus one lock file per name.
**
** Two separate mechanisms answer two separate questions.  The `mounts` table
** in state.db describes a mount (mountpoint, upper, pid, control socket) so
** wsctl can find it.  Whether that mount is alive is answered only by the
** kernel: the daemon holds an exclusive flock on <state>/run/<name>.lock for
** its whole life, and the kernel drops that lock when the last descriptor of
** the open file description goes away, however the process died.  A row
** whose lock is free is therefore stale by definition, and a recycled pid in
** a stale row can never make it look alive.
**
** Probing liveness takes a shared, non-blocking flock on a fresh open of the
** lock file: it succeeds only if nobody holds the exclusive lock.  Because
** flock locks belong to open file descriptions, the probe conflicts with a
** claim held by the very same process through another descriptor, so the
** answer is the same whether the prober is the daemon itself or wsctl.
**
** A probe holds its shared lock for a few microseconds, which is enough to
** make a concurrent claimant's non-blocking exclusive flock fail.  Claims
** therefore retry for a short while before reporting the name as taken: a
** real holder keeps the lock for its lifetime, a prober does not.
**
** Lock files are never unlinked.  Unlinking a lock file that another process
** has just opened lets two processes lock two different inodes under the same
** name, each believing it owns the workspace.
**
** Each handle holds at most one claim; one daemon serves one workspace.  The
** claim's descriptor lives in the handle, so registry_close() drops it along
** with everything else the handle owns.
**
** No SQLite connection outlives a single registry call: each call opens
** state.db, does its work and closes it again.  A daemon claims its name
** before it daemonizes, and SQLite connections must not cross fork() (the
** child would inherit, then lose, the parent's POSIX locks on the database).
** The claim itself is only a flock'd descriptor, which fork shares safely.
** Opening state.db costs well under a millisecond, and registry calls happen
** only at mount, unmount and wsctl time.
**
** state.db runs in WAL mode with synchronous=NORMAL and a 5 s busy timeout:
** many daemons and wsctl processes open it concurrently, readers must never
** wait for a writer, and a power cut may lose the last registration (the
** lock files, not the rows, decide liveness) but cannot corrupt the file.
*/
#include "registry.h"
#include "sqlutil.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "util.h"

#define SCHEMA_VERSION "4"
#define BUSY_TIMEOUT_MS 5000
#define CLAIM_RETRIES 20
#define CLAIM_RETRY_NS (5 * 1000 * 1000)
#define DEFAULT_STATE_DIR "/var/lib/wsfs"

struct registry {
	int lock_fd;		/* -1 unless this handle holds a claim */
	char lock_name[WS_NAME_MAX + 1];
	char dir[PATH_MAX];
};

static const char schema_sql[] =
	"CREATE TABLE IF NOT EXISTS mounts("
	"name TEXT PRIMARY KEY, mountpoint TEXT NOT NULL, upper TEXT NOT NULL, "
	"pid INTEGER NOT NULL, start_time INTEGER NOT NULL, "
	"socket TEXT NOT NULL);"
	"CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT);"
	/* Quota limits and the persisted ledger, one row per workspace name
	** ever mounted; NULL limits mean "none". */
	"CREATE TABLE IF NOT EXISTS quotas("
	"name TEXT PRIMARY KEY, bytes INTEGER, inodes INTEGER, "
	"soft_bytes INTEGER, soft_inodes INTEGER, grace INTEGER NOT NULL, "
	"warn TEXT NOT NULL, used_bytes INTEGER NOT NULL DEFAULT 0, "
	"used_inodes INTEGER NOT NULL DEFAULT 0, "
	"soft_bytes_since INTEGER NOT NULL DEFAULT 0, "
	"soft_inodes_since INTEGER NOT NULL DEFAULT 0, "
	"clean INTEGER NOT NULL DEFAULT 0, upper TEXT NOT NULL DEFAULT '', "
	"updated INTEGER NOT NULL DEFAULT 0);"
	/* The inodes carrying charged xattrs, saved at a clean unmount. */
	"CREATE TABLE IF NOT EXISTS quota_xattrs("
	"name TEXT NOT NULL, ino INTEGER NOT NULL, bytes INTEGER NOT NULL, "
	"PRIMARY KEY(name, ino));"
	/* The layer stack a workspace was mounted with (fs/layerspec.c),
	** one row per layer in stack order; source is NULL for ephemeral
	** targets. */
	"CREATE TABLE IF NOT EXISTS layers("
	"name TEXT NOT NULL, position INTEGER NOT NULL, mode TEXT NOT NULL, "
	"source TEXT, target TEXT NOT NULL, PRIMARY KEY(name, position));"
	/* Declared workspaces (wsctl create/apply, tools/wsdef.c): what
	** wsctl mount starts a daemon with, besides the layers and quotas
	** rows above. NULL upper: the whole workspace is ephemeral. */
	"CREATE TABLE IF NOT EXISTS workspaces("
	"name TEXT PRIMARY KEY, upper TEXT, mountpoint TEXT, audit TEXT, "
	"options TEXT, created INTEGER NOT NULL, updated INTEGER NOT NULL);"
	"INSERT OR IGNORE INTO meta(key, value) "
	"VALUES('schema_version', '" SCHEMA_VERSION "');"
	/* Version 1 had only mounts and meta, version 2 lacked layers,
	** version 3 lacked workspaces; every
	** change since only added tables, which the statements above have
	** just created, so both are upgraded in place. */
	"UPDATE meta SET value = '" SCHEMA_VERSION "' "
	"WHERE key = 'schema_version' AND value IN ('1', '2', '3');";

#define SELECT_MOUNTS \
	"SELECT name, mountpoint, upper, pid, start_time, socket FROM mounts"

/* Makes DIR if missing; an existing non-directory is an error. */
static int make_dir(const char *dir, mode_t mode)
{
	struct stat st;

	if (mkdir(dir, mode) == 0)
		return 0;
	if (errno != EEXIST)
		return -errno;
	if (stat(dir, &st) != 0)
		return -errno;
	return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
}

/*
** mkdir -p, except that only DIR itself gets the private mode: parents such
** as /var/lib are shared system directories.
*/
static int make_dir_parents(const char *dir, mode_t leaf_mode)
{
	char buf[PATH_MAX];
	char *p;
	int rc;

	rc = str_format(buf, sizeof(buf), "%s", dir);
	if (rc < 0)
		return rc;
	for (p = buf + 1; *p != '\0'; p++) {
		if (*p != '/' || p[-1] == '/')
			continue;
		*p = '\0';
		rc = make_dir(buf, 0755);
		*p = '/';
		if (rc < 0)
			return rc;
	}
	return make_dir(buf, leaf_mode);
}

/* Copies DIR without trailing slashes, for tidy derived paths and messages. */
static int set_dir(struct registry *reg, const char *dir)
{
	size_t len;
	int rc;

	rc = str_format(reg->dir, sizeof(reg->dir), "%s", dir);
	if (rc < 0)
		return rc;
	len = strlen(reg->dir);
	while (len > 1 && reg->dir[len - 1] == '/')
		reg->dir[--len] = '\0';
	return 0;
}

/* Without CREATE the directory must already be there: wsctl must not
** conjure an empty state directory out of a typo. */
static int check_dir(const struct registry *reg, char *err, size_t errlen)
{
	struct stat st;
	int rc;

	if (stat(reg->dir, &st) != 0) {
		rc = -errno;
		if (rc == -ENOENT)
			set_err(err, errlen, "state directory %s does not exist",
				reg->dir);
		else
			set_err(err, errlen,
				"cannot access state directory %s: %s",
				reg->dir, strerror(-rc));
		return rc;
	}
	if (!S_ISDIR(st.st_mode)) {
		set_err(err, errlen, "state directory %s is not a directory",
			reg->dir);
		return -ENOTDIR;
	}
	return 0;
}

static int create_dirs(const struct registry *reg, char *err, size_t errlen)
{
	char run[PATH_MAX];
	int rc;

	rc = make_dir_parents(reg->dir, 0700);
	if (rc < 0) {
		set_err(err, errlen, "cannot create state directory %s: %s",
			reg->dir, strerror(-rc));
		return rc;
	}
	rc = str_format(run, sizeof(run), "%s/run", reg->dir);
	if (rc == 0)
		rc = make_dir(run, 0700);
	if (rc < 0) {
		set_err(err, errlen, "cannot create %s/run: %s", reg->dir,
			strerror(-rc));
		return rc;
	}
	return 0;
}

static int db_fail(const struct registry *reg, sqlite3 *db, int rc,
		   const char *what, char *err, size_t errlen)
{
	set_err(err, errlen, "%s/state.db: %s: %s", reg->dir, what,
		sqlite3_errmsg(db));
	return sql_errno(rc);
}

/* Several daemons may open a fresh state directory at once: see sqlutil.c. */
static int db_set_wal(const struct registry *reg, sqlite3 *db, char *err,
		      size_t errlen)
{
	int is_wal, rc = sql_enable_wal(db, BUSY_TIMEOUT_MS, &is_wal);

	if (rc != SQLITE_OK)
		return db_fail(reg, db, rc, "enabling WAL", err, errlen);
	if (!is_wal) {
		set_err(err, errlen, "%s/state.db: cannot use WAL journal mode",
			reg->dir);
		return -EIO;
	}
	return 0;
}

static int db_check_version(const struct registry *reg, sqlite3 *db,
			    char *err, size_t errlen)
{
	const unsigned char *v;
	sqlite3_stmt *st;
	int rc;

	rc = sqlite3_prepare_v2(db,
		"SELECT value FROM meta WHERE key = 'schema_version'", -1, &st,
		NULL);
	if (rc != SQLITE_OK)
		return db_fail(reg, db, rc, "reading schema version", err,
			       errlen);
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		rc = db_fail(reg, db, rc, "reading schema version", err,
			     errlen);
		sqlite3_finalize(st);
		return rc;
	}
	v = sqlite3_column_text(st, 0);
	rc = 0;
	if (v == NULL || strcmp((const char *)v, SCHEMA_VERSION) != 0) {
		set_err(err, errlen, "%s/state.db has schema version %s; this "
			"build knows version " SCHEMA_VERSION, reg->dir,
			v ? (const char *)v : "(none)");
		rc = -EPROTO;
	}
	sqlite3_finalize(st);
	return rc;
}

/* BEGIN IMMEDIATE takes the write lock up front, so two daemons creating the
** schema at once queue on the busy timeout instead of deadlocking on a
** read-to-write upgrade. */
static int db_init_schema(const struct registry *reg, sqlite3 *db, char *err,
			  size_t errlen)
{
	int rc;

	rc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
	if (rc != SQLITE_OK)
		return db_fail(reg, db, rc, "creating schema", err, errlen);
	rc = sqlite3_exec(db, schema_sql, NULL, NULL, NULL);
	if (rc != SQLITE_OK) {
		rc = db_fail(reg, db, rc, "creating schema", err, errlen);
		goto rollback;
	}
	rc = db_check_version(reg, db, err, errlen);
	if (rc < 0)
		goto rollback;
	rc = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
	if (rc != SQLITE_OK) {
		rc = db_fail(reg, db, rc, "creating schema", err, errlen);
		goto rollback;
	}
	return 0;
rollback:
	/* Nothing more to report if the rollback fails too; the connection
	** is about to be closed, which rolls back anyway. */
	(void)sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	return rc;
}

static void db_close(sqlite3 *db)
{
	/* sqlite3_close only fails with unfinalized statements, and every
	** function here finalizes before returning. */
	(void)sqlite3_close(db);
}

/*
** Opens state.db for one registry call.  INIT (registry_open only) may
** create the file and sets up WAL and the schema; journal_mode=WAL is
** persistent, so later connections only need the per-connection settings,
** and they refuse to create a state.db that has vanished meanwhile.
*/
static int db_connect(const struct registry *reg, int init, sqlite3 **out,
		      char *err, size_t errlen)
{
	int flags = SQLITE_OPEN_READWRITE | (init ? SQLITE_OPEN_CREATE : 0);
	char path[PATH_MAX];
	sqlite3 *db = NULL;
	int rc;

	rc = str_format(path, sizeof(path), "%s/state.db", reg->dir);
	if (rc < 0) {
		set_err(err, errlen, "state directory path %s is too long",
			reg->dir);
		return rc;
	}
	rc = sqlite3_open_v2(path, &db, flags, NULL);
	if (rc != SQLITE_OK) {
		set_err(err, errlen, "cannot open %s: %s", path,
			db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
		rc = sql_errno(rc);
		goto fail;
	}
	rc = sqlite3_busy_timeout(db, BUSY_TIMEOUT_MS);
	if (rc != SQLITE_OK) {
		rc = db_fail(reg, db, rc, "setting busy timeout", err, errlen);
		goto fail;
	}
	rc = init ? db_set_wal(reg, db, err, errlen) : 0;
	if (rc < 0)
		goto fail;
	rc = sqlite3_exec(db, "PRAGMA synchronous=NORMAL", NULL, NULL, NULL);
	if (rc != SQLITE_OK) {
		rc = db_fail(reg, db, rc, "setting synchronous", err, errlen);
		goto fail;
	}
	rc = init ? db_init_schema(reg, db, err, errlen) : 0;
	if (rc < 0)
		goto fail;
	*out = db;
	return 0;
fail:
	db_close(db);
	return rc;
}

static int db_exists(const struct registry *reg);

int registry_db(struct registry *reg, sqlite3 **db, char *err, size_t errlen)
{
	*db = NULL;
	if (!db_exists(reg)) {
		set_err(err, errlen, "%s has no state.db yet", reg->dir);
		return -ENOENT;
	}
	return db_connect(reg, 0, db, err, errlen);
}

static int db_exists(const struct registry *reg)
{
	char path[PATH_MAX];

	return str_format(path, sizeof(path), "%s/state.db", reg->dir) == 0 &&
	       access(path, F_OK) == 0;
}

int registry_open(const char *dir, int create, struct registry **out,
		  char *err, size_t errlen)
{
	struct registry *reg;
	sqlite3 *db = NULL;
	int rc;

	*out = NULL;
	reg = calloc(1, sizeof(*reg));
	if (reg == NULL) {
		set_err(err, errlen, "out of memory");
		return -ENOMEM;
	}
	reg->lock_fd = -1;
	rc = set_dir(reg, dir);
	if (rc < 0) {
		set_err(err, errlen, "state directory path %s is too long",
			dir);
		goto fail;
	}
	rc = create ? create_dirs(reg, err, errlen) :
		      check_dir(reg, err, errlen);
	if (rc < 0)
		goto fail;
	/* A reader (wsctl) must not write: a state directory no daemon has
	** used yet simply has no workspaces. */
	if (create || db_exists(reg)) {
		rc = db_connect(reg, create, &db, err, errlen);
		if (rc < 0)
			goto fail;
		db_close(db);
	}
	*out = reg;
	return 0;
fail:
	free(reg);
	return rc;
}

void registry_close(struct registry *reg)
{
	if (reg == NULL)
		return;
	/* The lock file was never written to; closing it only drops the
	** claim, which is what closing the handle means. */
	if (reg->lock_fd >= 0)
		(void)close(reg->lock_fd);
	free(reg);
}

const char *registry_dir(const struct registry *reg)
{
	return reg->dir;
}

int registry_run_path(const struct registry *reg, const char *name,
		      const char *suffix, char *buf, size_t len)
{
	if (!ws_name_valid(name))
		return -EINVAL;
	return str_format(buf, len, "%s/run/%s%s", reg->dir, name, suffix);
}

const char *registry_default_dir(const char *explicit_dir)
{
	const char *env;

	if (explicit_dir != NULL)
		return explicit_dir;
	env = getenv("WSFS_STATE");
	if (env != NULL && env[0] != '\0')
		return env;
	return DEFAULT_STATE_DIR;
}

/* Copies a TEXT column into a fixed field; a value that does not fit cannot
** have been written by registry_claim, so it is reported as corruption. */
static int copy_col(sqlite3_stmt *st, int col, char *dst, size_t size)
{
	const unsigned char *v = sqlite3_column_text(st, col);

	if (v == NULL)
		return sqlite3_errcode(sqlite3_db_handle(st)) == SQLITE_NOMEM ?
			-ENOMEM : -EUCLEAN;
	if (str_format(dst, size, "%s", (const char *)v) < 0)
		return -EUCLEAN;
	return 0;
}

static int row_to_mount(sqlite3_stmt *st, struct ws_mount *m)
{
	int rc;

	memset(m, 0, sizeof(*m));
	rc = copy_col(st, 0, m->name, sizeof(m->name));
	if (rc == 0)
		rc = copy_col(st, 1, m->mountpoint, sizeof(m->mountpoint));
	if (rc == 0)
		rc = copy_col(st, 2, m->upper, sizeof(m->upper));
	if (rc == 0)
		rc = copy_col(st, 5, m->socket, sizeof(m->socket));
	if (rc < 0)
		return rc;
	m->pid = (pid_t)sqlite3_column_int64(st, 3);
	m->start_time = sqlite3_column_int64(st, 4);
	return 0;
}

/* Sets *LIVE from the name's lock; see the header comment for why a shared
** probe is the right test. */
static int probe_live(const struct registry *reg, const char *name, int *live)
{
	char path[PATH_MAX];
	int fd, rc;

	*live = 0;
	/* A name that could not have been claimed has no lock file, and must
	** not be turned into a path. */
	if (!ws_name_valid(name))
		return 0;
	rc = registry_run_path(reg, name, ".lock", path, sizeof(path));
	if (rc < 0)
		return rc;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	if (flock(fd, LOCK_SH | LOCK_NB) != 0) {
		if (errno == EWOULDBLOCK)
			*live = 1;
		else
			rc = -errno;
	}
	/* Closing a read-only descriptor cannot lose data; it also drops the
	** probe's shared lock. */
	(void)close(fd);
	return rc;
}

/* Reads NAME's row without probing; 1 if found, 0 if absent, or -errno. */
static int read_row(sqlite3 *db, const char *name, struct ws_mount *m)
{
	sqlite3_stmt *st;
	int rc;

	rc = sqlite3_prepare_v2(db, SELECT_MOUNTS " WHERE name = ?1", -1, &st,
				NULL);
	if (rc != SQLITE_OK)
		return sql_errno(rc);
	rc = sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		rc = row_to_mount(st, m);
		if (rc == 0)
			rc = 1;
	} else if (rc == SQLITE_DONE) {
		rc = 0;
	} else {
		rc = sql_errno(rc);
	}
	sqlite3_finalize(st);
	return rc;
}

int registry_get(struct registry *reg, const char *name, struct ws_mount *out)
{
	sqlite3 *db = NULL;
	int rc;

	if (!ws_name_valid(name))
		return -EINVAL;
	if (!db_exists(reg))
		return -ENOENT;
	rc = db_connect(reg, 0, &db, NULL, 0);
	if (rc < 0)
		return rc;
	rc = read_row(db, name, out);
	db_close(db);
	if (rc < 0)
		return rc;
	if (rc == 0)
		return -ENOENT;
	return probe_live(reg, name, &out->live);
}

static int list_rows(sqlite3 *db, struct ws_mount **out, size_t *n)
{
	struct ws_mount *arr = NULL;
	size_t cap = 0, cnt = 0;
	sqlite3_stmt *st;
	int rc;

	rc = sqlite3_prepare_v2(db, SELECT_MOUNTS " ORDER BY name", -1, &st,
				NULL);
	if (rc != SQLITE_OK)
		return sql_errno(rc);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (cnt == cap &&
		    (rc = grow_array((void **)&arr, &cap, sizeof(*arr), 8)) < 0)
			goto fail;
		rc = row_to_mount(st, &arr[cnt]);
		if (rc < 0)
			goto fail;
		cnt++;
	}
	if (rc != SQLITE_DONE) {
		rc = sql_errno(rc);
		goto fail;
	}
	sqlite3_finalize(st);
	*out = arr;
	*n = cnt;
	return 0;
fail:
	sqlite3_finalize(st);
	free(arr);
	return rc;
}

int registry_list(struct registry *reg, struct ws_mount **out, size_t *n)
{
	struct ws_mount *arr = NULL;
	size_t i, cnt = 0;
	sqlite3 *db = NULL;
	int rc;

	*out = NULL;
	*n = 0;
	if (!db_exists(reg))
		return 0;
	rc = db_connect(reg, 0, &db, NULL, 0);
	if (rc < 0)
		return rc;
	rc = list_rows(db, &arr, &cnt);
	db_close(db);
	if (rc < 0)
		return rc;
	for (i = 0; i < cnt; i++) {
		rc = probe_live(reg, arr[i].name, &arr[i].live);
		if (rc < 0) {
			free(arr);
			return rc;
		}
	}
	*out = arr;
	*n = cnt;
	return 0;
}

static int write_row(sqlite3 *db, const struct ws_mount *m)
{
	sqlite3_stmt *st;
	int rc;

	rc = sqlite3_prepare_v2(db,
		"INSERT OR REPLACE INTO mounts"
		"(name, mountpoint, upper, pid, start_time, socket) "
		"VALUES(?1, ?2, ?3, ?4, ?5, ?6)", -1, &st, NULL);
	if (rc != SQLITE_OK)
		return rc;
	rc = sqlite3_bind_text(st, 1, m->name, -1, SQLITE_STATIC);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_text(st, 2, m->mountpoint, -1, SQLITE_STATIC);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_text(st, 3, m->upper, -1, SQLITE_STATIC);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(st, 4, m->pid);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(st, 5, m->start_time);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_text(st, 6, m->socket, -1, SQLITE_STATIC);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static int delete_row(const struct registry *reg, const char *name)
{
	sqlite3_stmt *st;
	sqlite3 *db = NULL;
	int rc;

	rc = db_connect(reg, 0, &db, NULL, 0);
	if (rc < 0)
		return rc;
	rc = sqlite3_prepare_v2(db, "DELETE FROM mounts WHERE name = ?1", -1,
				&st, NULL);
	if (rc == SQLITE_OK) {
		rc = sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
		if (rc == SQLITE_OK)
			rc = sqlite3_step(st);
		sqlite3_finalize(st);
	}
	db_close(db);
	return rc == SQLITE_DONE ? 0 : sql_errno(rc);
}

/* Non-blocking exclusive flock, retried briefly so that a concurrent
** liveness probe is not mistaken for a live owner. */
static int lock_exclusive(int fd)
{
	const struct timespec pause = { 0, CLAIM_RETRY_NS };
	int i;

	for (i = 0; i < CLAIM_RETRIES; i++) {
		if (flock(fd, LOCK_EX | LOCK_NB) == 0)
			return 0;
		if (errno != EWOULDBLOCK && errno != EINTR)
			return -errno;
		/* An early wake-up only shortens the wait. */
		(void)nanosleep(&pause, NULL);
	}
	return -EWOULDBLOCK;
}

static int open_lock(const struct registry *reg, const char *name, int *fd,
		     char *err, size_t errlen)
{
	char path[PATH_MAX];
	int rc;

	rc = str_format(path, sizeof(path), "%s/run", reg->dir);
	if (rc == 0)
		rc = make_dir(path, 0700);
	if (rc == 0)
		rc = registry_run_path(reg, name, ".lock", path, sizeof(path));
	if (rc < 0) {
		set_err(err, errlen, "cannot prepare %s/run: %s", reg->dir,
			strerror(-rc));
		return rc;
	}
	*fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (*fd < 0) {
		rc = -errno;
		set_err(err, errlen, "cannot open %s: %s", path, strerror(-rc));
		return rc;
	}
	return 0;
}

static void describe_holder(const struct registry *reg, const char *name,
			    char *err, size_t errlen)
{
	struct ws_mount m;
	sqlite3 *db = NULL;
	int rc;

	rc = db_connect(reg, 0, &db, NULL, 0);
	if (rc == 0) {
		rc = read_row(db, name, &m);
		db_close(db);
	}
	if (rc == 1)
		set_err(err, errlen,
			"workspace '%s' is already mounted at %s by pid %ld",
			name, m.mountpoint, (long)m.pid);
	else
		set_err(err, errlen, "workspace '%s' is already in use by "
			"another process", name);
}

static int check_mount(const struct ws_mount *m, char *err, size_t errlen)
{
	if (!ws_name_valid(m->name)) {
		set_err(err, errlen, "invalid workspace name '%.*s': use 1-%d "
			"of [A-Za-z0-9._-], not starting with '.' or '-'",
			WS_NAME_MAX, m->name, WS_NAME_MAX);
		return -EINVAL;
	}
	if (strnlen(m->mountpoint, sizeof(m->mountpoint)) ==
	    sizeof(m->mountpoint) ||
	    strnlen(m->upper, sizeof(m->upper)) == sizeof(m->upper) ||
	    strnlen(m->socket, sizeof(m->socket)) == sizeof(m->socket)) {
		set_err(err, errlen, "workspace '%s': unterminated path",
			m->name);
		return -EINVAL;
	}
	return 0;
}

/* Takes NAME's lock into REG, or explains who has it. */
static int take_lock(struct registry *reg, const char *name, char *err,
		     size_t errlen)
{
	int fd, rc;

	rc = open_lock(reg, name, &fd, err, errlen);
	if (rc < 0)
		return rc;
	rc = lock_exclusive(fd);
	if (rc < 0) {
		(void)close(fd);
		if (rc != -EWOULDBLOCK) {
			set_err(err, errlen, "cannot lock workspace '%s': %s",
				name, strerror(-rc));
			return rc;
		}
		describe_holder(reg, name, err, errlen);
		return -EBUSY;
	}
	reg->lock_fd = fd;
	memcpy(reg->lock_name, name, strlen(name) + 1);
	return 0;
}

static void drop_lock(struct registry *reg)
{
	(void)close(reg->lock_fd);
	reg->lock_fd = -1;
}

int registry_claim(struct registry *reg, const struct ws_mount *m,
		   char *err, size_t errlen)
{
	int rc, fresh = 0;
	sqlite3 *db = NULL;

	rc = check_mount(m, err, errlen);
	if (rc < 0)
		return rc;
	if (reg->lock_fd >= 0 && strcmp(reg->lock_name, m->name) != 0) {
		set_err(err, errlen, "this registry handle already holds "
			"workspace '%s'", reg->lock_name);
		return -EALREADY;
	}
	if (reg->lock_fd < 0) {
		rc = take_lock(reg, m->name, err, errlen);
		if (rc < 0)
			return rc;
		fresh = 1;
	}
	rc = db_connect(reg, 0, &db, err, errlen);
	if (rc == 0) {
		rc = write_row(db, m);
		if (rc != SQLITE_OK)
			rc = db_fail(reg, db, rc, "registering workspace", err,
				     errlen);
		db_close(db);
	}
	/* A claim without its row would be invisible to wsctl. */
	if (rc < 0 && fresh)
		drop_lock(reg);
	return rc;
}

/* Removes NAME's row on behalf of a handle that does not hold its lock: only
** allowed, and only safe, while nobody else holds it either. */
static int release_unowned(const struct registry *reg, const char *name)
{
	char path[PATH_MAX];
	int fd, rc;

	rc = registry_run_path(reg, name, ".lock", path, sizeof(path));
	if (rc < 0)
		return rc;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return errno == ENOENT ? delete_row(reg, name) : -errno;
	rc = lock_exclusive(fd);
	if (rc == 0)
		rc = delete_row(reg, name);
	else if (rc == -EWOULDBLOCK)
		rc = -EBUSY;
	(void)close(fd);
	return rc;
}

int registry_release(struct registry *reg, const char *name)
{
	int rc;

	if (!ws_name_valid(name))
		return -EINVAL;
	if (reg->lock_fd < 0 || strcmp(reg->lock_name, name) != 0)
		return release_unowned(reg, name);
	/* Delete while still holding the lock, so the row removed is ours
	** and not that of a successor that claimed the name meanwhile. */
	rc = delete_row(reg, name);
	drop_lock(reg);
	return rc;
}
