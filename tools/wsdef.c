/*
** Declared workspaces in state.db: see wsdef.h for why a definition spans
** the workspaces, layers and quotas tables.
**
** Reads take the three tables one after the other on one connection inside
** a read transaction, so a definition read while `wsctl apply` rewrites it
** is either the old one or the new one, never half of each.  Writes use
** BEGIN IMMEDIATE so two writers queue on the busy timeout instead of
** failing a lock upgrade halfway.
**
** A state directory last written by an older wsfs has no workspaces table
** until something opens it for writing; readers treat the missing table as
** "nothing declared" rather than as an error.
*/
#include "wsdef.h"

#include <ctype.h>
#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "grow.h"
#include "sqlutil.h"
#include "qstore.h"

int wsdef_name_ok(const char *name, char *err, size_t errlen)
{
	char shown[WS_NAME_MAX + 9];
	const char *why = NULL;
	size_t i, len = strlen(name);

	if (len == 0)
		why = "it is empty";
	else if (len > WS_NAME_MAX)
		why = "it is longer than 64 bytes";
	else if (name[0] == '.' || name[0] == '-')
		why = "it starts with '.' or '-'";
	for (i = 0; why == NULL && i < len; i++) {
		unsigned char c = (unsigned char)name[i];

		if (!isascii(c) || !(isalnum(c) || c == '.' || c == '_' ||
				     c == '-'))
			why = "use only letters, digits, '.', '_' and '-'";
	}
	if (why == NULL)
		return 1;
	/* The name goes into a one-line message: control bytes are shown
	** as '?' so a newline in it cannot split the line. */
	snprintf(shown, sizeof(shown), "%.*s", WS_NAME_MAX + 8, name);
	for (i = 0; shown[i] != '\0'; i++) {
		if ((unsigned char)shown[i] < ' ' || shown[i] == 0x7f)
			shown[i] = '?';
	}
	snprintf(err, errlen, "invalid workspace name '%s': %s", shown, why);
	return 0;
}

void wsdef_init(struct ws_def *d, const char *name)
{
	memset(d, 0, sizeof(*d));
	snprintf(d->name, sizeof(d->name), "%s", name);
	quota_limits_default(&d->lim);
}

void wsdef_free(struct ws_def *d)
{
	free(d->upper);
	free(d->mountpoint);
	free(d->audit);
	free(d->options);
	layer_stack_free(d->layers, d->nlayers);
	d->upper = d->mountpoint = d->audit = d->options = NULL;
	d->layers = NULL;
	d->nlayers = 0;
}

void wsdef_free_list(struct ws_def *defs, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		wsdef_free(&defs[i]);
	free(defs);
}

static int dup_or_null(const char *s, char **out)
{
	*out = NULL;
	if (s == NULL)
		return 0;
	*out = strdup(s);
	return *out != NULL ? 0 : -ENOMEM;
}

int wsdef_copy(struct ws_def *dst, const struct ws_def *src)
{
	size_t i;
	int rc;

	*dst = *src;
	dst->upper = dst->mountpoint = dst->audit = dst->options = NULL;
	dst->layers = NULL;
	dst->nlayers = 0;
	rc = dup_or_null(src->upper, &dst->upper);
	if (rc == 0)
		rc = dup_or_null(src->mountpoint, &dst->mountpoint);
	if (rc == 0)
		rc = dup_or_null(src->audit, &dst->audit);
	if (rc == 0)
		rc = dup_or_null(src->options, &dst->options);
	if (rc == 0 && src->nlayers > 0) {
		dst->layers = calloc(src->nlayers, sizeof(*dst->layers));
		rc = dst->layers != NULL ? 0 : -ENOMEM;
	}
	for (i = 0; rc == 0 && i < src->nlayers; i++) {
		dst->layers[i].mode = src->layers[i].mode;
		dst->nlayers = i + 1;
		rc = dup_or_null(src->layers[i].source, &dst->layers[i].source);
		if (rc == 0)
			rc = dup_or_null(src->layers[i].target,
					 &dst->layers[i].target);
	}
	if (rc < 0)
		wsdef_free(dst);
	return rc;
}

/* ---- reading ------------------------------------------------------------ */

static int open_db(struct registry *reg, sqlite3 **db)
{
	char err[PATH_MAX + 64];
	int rc = registry_db(reg, db, err, sizeof(err));

	return rc == -ENOENT ? 1 : rc;
}

static int has_table(sqlite3 *db)
{
	sqlite3_stmt *st;
	int rc, found;

	rc = sqlite3_prepare_v2(db, "SELECT 1 FROM sqlite_master WHERE "
				"type = 'table' AND name = 'workspaces'", -1,
				&st, NULL);
	if (rc != SQLITE_OK)
		return -EIO;
	rc = sqlite3_step(st);
	found = rc == SQLITE_ROW;
	sqlite3_finalize(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? found : -EIO;
}

static int row_to_def(sqlite3_stmt *st, struct ws_def *d)
{
	const unsigned char *name = sqlite3_column_text(st, 0);
	int rc;

	wsdef_init(d, name != NULL ? (const char *)name : "");
	rc = sql_column_strdup(st, 1, &d->upper);
	if (rc == 0)
		rc = sql_column_strdup(st, 2, &d->mountpoint);
	if (rc == 0)
		rc = sql_column_strdup(st, 3, &d->audit);
	if (rc == 0)
		rc = sql_column_strdup(st, 4, &d->options);
	d->created = sqlite3_column_int64(st, 5);
	d->updated = sqlite3_column_int64(st, 6);
	if (rc < 0)
		wsdef_free(d);
	return rc;
}

/* The layer stack and quota limits that complete D's row. */
static int read_rest(struct registry *reg, sqlite3 *db, struct ws_def *d)
{
	struct quota_row row;
	char err[256];
	int rc;

	rc = registry_get_layers(reg, d->name, &d->layers, &d->nlayers, err,
				 sizeof(err));
	if (rc < 0)
		return rc;
	rc = qstore_get(db, d->name, &row);
	if (rc == 0)
		d->lim = row.lim;
	return rc == -ENOENT ? 0 : rc;
}

#define SELECT_DEFS "SELECT name, upper, mountpoint, audit, options, " \
		    "created, updated FROM workspaces"

/* Runs SQL (binding NAME if non-NULL) and collects the definitions. */
static int read_defs(struct registry *reg, sqlite3 *db, const char *sql,
		     const char *name, struct ws_def **out, size_t *n)
{
	struct ws_def *v = NULL;
	size_t cap = 0, cnt = 0, i;
	sqlite3_stmt *st;
	int rc;

	rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
	if (rc != SQLITE_OK)
		return -EIO;
	if (name != NULL)
		sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (cnt == cap &&
		    (rc = grow_array((void **)&v, &cap, sizeof(*v), 8)) < 0)
			break;
		rc = row_to_def(st, &v[cnt]);
		if (rc < 0)
			break;
		cnt++;
	}
	sqlite3_finalize(st);
	if (rc == SQLITE_DONE)
		rc = 0;
	else if (rc > 0)
		rc = -EIO;
	for (i = 0; rc == 0 && i < cnt; i++)
		rc = read_rest(reg, db, &v[i]);
	if (rc < 0) {
		wsdef_free_list(v, cnt);
		return rc;
	}
	*out = v;
	*n = cnt;
	return 0;
}

static int read_in_txn(struct registry *reg, const char *sql, const char *name,
		       struct ws_def **out, size_t *n)
{
	sqlite3 *db = NULL;
	int rc;

	*out = NULL;
	*n = 0;
	rc = open_db(reg, &db);
	if (rc != 0)
		return rc > 0 ? 0 : rc;
	rc = sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) == SQLITE_OK ? 0 : -EIO;
	if (rc == 0)
		rc = has_table(db);
	if (rc > 0)
		rc = read_defs(reg, db, sql, name, out, n);
	/* A read transaction has nothing to lose in a failed COMMIT. */
	(void)sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
	sqlite3_close(db);
	return rc;
}

int wsdef_get(struct registry *reg, const char *name, struct ws_def *out)
{
	struct ws_def *v;
	size_t n;
	int rc;

	rc = read_in_txn(reg, SELECT_DEFS " WHERE name = ?1", name, &v, &n);
	if (rc < 0)
		return rc;
	if (n == 0) {
		free(v);
		return -ENOENT;
	}
	*out = v[0];
	free(v);
	return 0;
}

int wsdef_list(struct registry *reg, struct ws_def **out, size_t *n)
{
	return read_in_txn(reg, SELECT_DEFS " ORDER BY name", NULL, out, n);
}

/* ---- writing ------------------------------------------------------------ */

static int bind_text_or_null(sqlite3_stmt *st, int i, const char *s)
{
	return s != NULL ? sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC) :
			   sqlite3_bind_null(st, i);
}

static int exec_stmt(sqlite3 *db, const char *sql, const struct ws_def *d,
		     int64_t now)
{
	sqlite3_stmt *st;
	int rc;

	rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
	if (rc != SQLITE_OK)
		return rc;
	rc = sqlite3_bind_text(st, 1, d->name, -1, SQLITE_STATIC);
	if (rc == SQLITE_OK && sqlite3_bind_parameter_count(st) > 1) {
		bind_text_or_null(st, 2, d->upper);
		bind_text_or_null(st, 3, d->mountpoint);
		bind_text_or_null(st, 4, d->audit);
		bind_text_or_null(st, 5, d->options);
		sqlite3_bind_int64(st, 6, now);
	}
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* The quota row keeps its ledger: only the limits are the definition's. */
static int write_limits(sqlite3 *db, const struct ws_def *d)
{
	struct quota_row row;
	int rc;

	rc = qstore_set_limits(db, d->name, &d->lim);
	if (rc != -ENOENT)
		return rc;
	memset(&row, 0, sizeof(row));
	snprintf(row.name, sizeof(row.name), "%s", d->name);
	snprintf(row.upper, sizeof(row.upper), "%s", d->upper ? d->upper : "");
	row.lim = d->lim;
	return qstore_put(db, &row);
}

static int write_def(sqlite3 *db, const struct ws_def *d, int create)
{
	int64_t now = (int64_t)time(NULL);
	int rc;

	if (create)
		rc = exec_stmt(db, "INSERT INTO workspaces(name, upper, "
			       "mountpoint, audit, options, created, updated) "
			       "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?6)", d, now);
	else
		rc = exec_stmt(db, "INSERT INTO workspaces(name, upper, "
			       "mountpoint, audit, options, created, updated) "
			       "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?6) "
			       "ON CONFLICT(name) DO UPDATE SET "
			       "upper = ?2, mountpoint = ?3, audit = ?4, "
			       "options = ?5, updated = ?6", d, now);
	if (rc == SQLITE_CONSTRAINT)
		return -EEXIST;
	if (rc != SQLITE_OK)
		return -EIO;
	if (layer_stack_write_db(db, d->name, d->layers, d->nlayers) !=
	    SQLITE_OK)
		return -EIO;
	return write_limits(db, d) < 0 ? -EIO : 0;
}

/* Runs WRITE in a BEGIN IMMEDIATE transaction on a fresh connection. */
static int in_write_txn(struct registry *reg,
			int (*write)(sqlite3 *, const struct ws_def *, int),
			const struct ws_def *d, int flag)
{
	char err[PATH_MAX + 64];
	sqlite3 *db = NULL;
	int rc;

	rc = registry_db(reg, &db, err, sizeof(err));
	if (rc < 0)
		return rc;
	if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
		sqlite3_close(db);
		return -EBUSY;
	}
	rc = write(db, d, flag);
	if (rc == 0 && sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
		rc = -EIO;
	if (rc < 0)
		(void)sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	sqlite3_close(db);
	return rc;
}

int wsdef_put(struct registry *reg, const struct ws_def *d, int create)
{
	return in_write_txn(reg, write_def, d, create);
}

static int delete_def(sqlite3 *db, const struct ws_def *d, int unused)
{
	static const char *const sql[] = {
		"DELETE FROM layers WHERE name = ?1",
		"DELETE FROM quotas WHERE name = ?1",
		"DELETE FROM quota_xattrs WHERE name = ?1",
	};
	size_t i;

	(void)unused;
	if (exec_stmt(db, "DELETE FROM workspaces WHERE name = ?1", d, 0) !=
	    SQLITE_OK)
		return -EIO;
	if (sqlite3_changes(db) == 0)
		return -ENOENT;
	for (i = 0; i < sizeof(sql) / sizeof(sql[0]); i++) {
		if (exec_stmt(db, sql[i], d, 0) != SQLITE_OK)
			return -EIO;
	}
	return 0;
}

int wsdef_delete(struct registry *reg, const char *name)
{
	struct ws_def d;

	wsdef_init(&d, name);
	return in_write_txn(reg, delete_def, &d, 0);
}

int wsdef_mountpoint(const struct registry *reg, const struct ws_def *d,
		     char *buf, size_t len)
{
	int n;

	if (d->mountpoint != NULL)
		n = snprintf(buf, len, "%s", d->mountpoint);
	else
		n = snprintf(buf, len, "%s/run/mnt/%s", registry_dir(reg),
			     d->name);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}
