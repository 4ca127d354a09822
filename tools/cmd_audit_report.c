/*
** wsctl audit report: what each workspace's agent did, in the manner of
** aureport: operations by kind, denials, bytes written, and files created,
** modified, deleted and renamed, per chain over a time range; with --files,
** the list of files changed and their final state (audit_files.c).
**
** The counting is done by SQLite in one GROUP BY over (ws, op, result):
** that returns a few hundred rows however many records the range holds,
** and every figure of the summary is a sum over those rows, so the report
** reads the range once.  Only "modified" needs a second query, because it
** counts distinct paths, not events: a file written a thousand times is
** one modified file.
**
** The definitions, which the man page repeats:
**   created   successful create, mknod, symlink, link and mkdir
**   modified  distinct paths with a release that wrote bytes, or a
**             successful setattr (chmod, chown, truncate, utimes)
**   deleted   successful unlink and rmdir
**   renamed   successful rename
**   denials   results EACCES, EPERM, EROFS, EDQUOT; other errors are
**             counted apart as failures
**   bytes written: the sum of bytes over release records, the bytes that
**             went through each handle
*/
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit_cmds.h"
#include "grow.h"
#include "store.h"

#define ERR_LEN (PATH_MAX + 256)

struct count {
	char *name;
	int64_t n;
};

struct counts {
	struct count *v;
	size_t n, cap;
};

struct chain_report {
	char *ws;
	int64_t records, first_ns, last_ns, bytes_written;
	int64_t created, modified, deleted, renamed;
	struct counts ops, denials, failures;
};

struct report {
	struct chain_report *c;
	size_t n, cap;
};

/* ---- counting ------------------------------------------------------- */

static int counts_add(struct counts *c, const char *name, int64_t n)
{
	size_t i;

	for (i = 0; i < c->n; i++) {
		if (strcmp(c->v[i].name, name) == 0) {
			c->v[i].n += n;
			return 0;
		}
	}
	if (c->n == c->cap &&
	    grow_array((void **)&c->v, &c->cap, sizeof(*c->v), 16) < 0)
		return -ENOMEM;
	c->v[c->n].name = strdup(name);
	if (c->v[c->n].name == NULL)
		return -ENOMEM;
	c->v[c->n++].n = n;
	return 0;
}

static void counts_free(struct counts *c)
{
	size_t i;

	for (i = 0; i < c->n; i++)
		free(c->v[i].name);
	free(c->v);
}

static void report_free(struct report *rep)
{
	size_t i;

	for (i = 0; i < rep->n; i++) {
		free(rep->c[i].ws);
		counts_free(&rep->c[i].ops);
		counts_free(&rep->c[i].denials);
		counts_free(&rep->c[i].failures);
	}
	free(rep->c);
}

/* The report of chain WS, added at the end (rows come in ws order). */
static struct chain_report *chain_of(struct report *rep, const char *ws)
{
	struct chain_report *c;

	if (rep->n > 0 && strcmp(rep->c[rep->n - 1].ws, ws) == 0)
		return &rep->c[rep->n - 1];
	if (rep->n == rep->cap &&
	    grow_array((void **)&rep->c, &rep->cap, sizeof(*rep->c), 8) < 0)
		return NULL;
	c = &rep->c[rep->n];
	memset(c, 0, sizeof(*c));
	c->ws = strdup(ws);
	if (c->ws == NULL)
		return NULL;
	c->first_ns = INT64_MAX;
	c->last_ns = INT64_MIN;
	rep->n++;
	return c;
}

static int is_op(const char *op, const char *const *set)
{
	for (; *set != NULL; set++) {
		if (strcmp(op, *set) == 0)
			return 1;
	}
	return 0;
}

/* The figures one (op, result) group adds to its chain's report. */
static void add_figures(struct chain_report *c, const char *op,
			const char *result, int64_t n, int64_t bytes)
{
	static const char *const creating[] = { "create", "mknod", "symlink",
						"link", "mkdir", NULL };
	static const char *const deleting[] = { "unlink", "rmdir", NULL };
	int ok = strcmp(result, "0") == 0;

	c->records += n;
	if (strcmp(op, "release") == 0)
		c->bytes_written += bytes;
	if (ok && is_op(op, creating))
		c->created += n;
	if (ok && is_op(op, deleting))
		c->deleted += n;
	if (ok && strcmp(op, "rename") == 0)
		c->renamed += n;
}

/* One row: ws, op, result, count, sum(bytes), min(time), max(time). */
static int add_group(struct report *rep, sqlite3_stmt *st)
{
	const char *ws = (const char *)sqlite3_column_text(st, 0);
	const char *op = (const char *)sqlite3_column_text(st, 1);
	const char *result = (const char *)sqlite3_column_text(st, 2);
	int64_t n = sqlite3_column_int64(st, 3);
	struct chain_report *c;
	int rc = 0;

	if (ws == NULL || op == NULL || result == NULL)
		return -ENOMEM;
	c = chain_of(rep, ws);
	if (c == NULL)
		return -ENOMEM;
	add_figures(c, op, result, n, sqlite3_column_int64(st, 4));
	if (sqlite3_column_int64(st, 5) < c->first_ns)
		c->first_ns = sqlite3_column_int64(st, 5);
	if (sqlite3_column_int64(st, 6) > c->last_ns)
		c->last_ns = sqlite3_column_int64(st, 6);
	rc = counts_add(&c->ops, op, n);
	if (rc == 0 && audit_result_denied(result))
		rc = counts_add(&c->denials, result, n);
	else if (rc == 0 && strcmp(result, "0") != 0)
		rc = counts_add(&c->failures, result, n);
	return rc;
}

/* ---- the queries ---------------------------------------------------- */

static int run_query(sqlite3 *db, struct audit_sql *q, struct report *rep,
		     int (*row)(struct report *, sqlite3_stmt *), char *err,
		     size_t errlen)
{
	sqlite3_stmt *st;
	int rc;

	rc = audit_sql_prepare(q, db, &st, err, errlen);
	audit_sql_free(q);
	if (rc < 0)
		return rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (row(rep, st) < 0) {
			sqlite3_finalize(st);
			snprintf(err, errlen, "out of memory");
			return -ENOMEM;
		}
	}
	rc = rc == SQLITE_DONE ? 0 :
	     audit_sql_error(db, "cannot read audit.db", err, errlen);
	sqlite3_finalize(st);
	return rc;
}

static int summarize(sqlite3 *db, const struct audit_filter *f,
		     struct report *rep, char *err, size_t errlen)
{
	struct audit_sql q;

	audit_sql_init(&q);
	audit_sql_add(&q, "SELECT ws, op, result, count(*), sum(bytes), "
		      "min(time_ns), max(time_ns) FROM records WHERE 1");
	audit_sql_filter(&q, f, 0);
	audit_sql_add(&q, " GROUP BY ws, op, result ORDER BY ws, op, result");
	return run_query(db, &q, rep, add_group, err, errlen);
}

/* One row: ws, distinct modified paths. */
static int add_modified(struct report *rep, sqlite3_stmt *st)
{
	const char *ws = (const char *)sqlite3_column_text(st, 0);
	size_t i;

	for (i = 0; ws != NULL && i < rep->n; i++) {
		if (strcmp(rep->c[i].ws, ws) == 0)
			rep->c[i].modified = sqlite3_column_int64(st, 1);
	}
	return ws == NULL ? -ENOMEM : 0;
}

static int count_modified(sqlite3 *db, const struct audit_filter *f,
			  struct report *rep, char *err, size_t errlen)
{
	struct audit_sql q;

	audit_sql_init(&q);
	audit_sql_add(&q, "SELECT ws, count(DISTINCT path) FROM records "
		      "WHERE op IN ('release', 'setattr') AND "
		      "((op = 'release' AND bytes > 0) OR "
		      "(op = 'setattr' AND result = '0'))");
	audit_sql_filter(&q, f, 0);
	audit_sql_add(&q, " GROUP BY ws");
	return run_query(db, &q, rep, add_modified, err, errlen);
}

/* ---- text ----------------------------------------------------------- */

static void print_counts(const char *label, const struct counts *c,
			 int with_total)
{
	int64_t total = 0;
	size_t i;

	for (i = 0; i < c->n; i++)
		total += c->v[i].n;
	printf("%-16s", label);
	if (c->n == 0) {
		puts("none");
		return;
	}
	if (with_total)
		printf("%lld: ", (long long)total);
	for (i = 0; i < c->n; i++)
		printf("%s%s %lld", i ? ", " : "", c->v[i].name,
		       (long long)c->v[i].n);
	putchar('\n');
}

static void print_bytes(int64_t bytes)
{
	static const char *const units[] = { "KiB", "MiB", "GiB", "TiB" };
	double v = (double)bytes;
	int u = -1;

	printf("%-16s%lld", "bytes written:", (long long)bytes);
	while (v >= 1024 && u < 3) {
		v /= 1024;
		u++;
	}
	if (u >= 0)
		printf(" (%.1f %s)", v, units[u]);
	putchar('\n');
}

static void print_chain(const struct chain_report *c)
{
	char first[40], last[40];

	printf("== %s\n", audit_chain_label(c->ws));
	if (c->records > 0) {
		audit_local_time(c->first_ns, first, sizeof(first));
		audit_local_time(c->last_ns, last, sizeof(last));
		printf("%-16s%s .. %s\n", "period:", first, last);
	}
	printf("%-16s%lld\n", "records:", (long long)c->records);
	print_counts("operations:", &c->ops, 0);
	print_counts("denials:", &c->denials, 1);
	print_counts("other failures:", &c->failures, 1);
	print_bytes(c->bytes_written);
	printf("%-16s%lld created, %lld modified, %lld deleted, %lld "
	       "renamed\n", "files:", (long long)c->created,
	       (long long)c->modified, (long long)c->deleted,
	       (long long)c->renamed);
}

/* ---- JSON ----------------------------------------------------------- */

static json_t *counts_json(const struct counts *c)
{
	json_t *o = json_object();
	size_t i;

	for (i = 0; o != NULL && i < c->n; i++) {
		if (json_object_set_new(o, c->v[i].name,
					json_integer(c->v[i].n)) != 0) {
			json_decref(o);
			return NULL;
		}
	}
	return o;
}

static json_t *chain_json(const struct chain_report *c)
{
	json_t *o;

	o = json_pack("{s:s, s:I, s:o, s:o, s:o, s:I, s:{s:I, s:I, s:I, s:I}}",
		      "ws", c->ws, "records", (json_int_t)c->records,
		      "ops", counts_json(&c->ops),
		      "denials", counts_json(&c->denials),
		      "failures", counts_json(&c->failures),
		      "bytes_written", (json_int_t)c->bytes_written,
		      "files", "created", (json_int_t)c->created,
		      "modified", (json_int_t)c->modified,
		      "deleted", (json_int_t)c->deleted,
		      "renamed", (json_int_t)c->renamed);
	if (o != NULL && c->records > 0 &&
	    (json_object_set_new(o, "first_ns", json_integer(c->first_ns)) ||
	     json_object_set_new(o, "last_ns", json_integer(c->last_ns)))) {
		json_decref(o);
		return NULL;
	}
	return o;
}

/* ---- the command ---------------------------------------------------- */

/* With --ws, the chain is reported even when the range holds nothing. */
static int ensure_chain(struct report *rep, const char *ws)
{
	if (ws == NULL || rep->n > 0)
		return 0;
	return chain_of(rep, ws) ? 0 : -ENOMEM;
}

static int gather(struct audit_store *s, struct audit_args *a,
		  struct report *rep)
{
	sqlite3 *db = audit_store_db(s);
	char err[ERR_LEN];
	int rc;

	/* One snapshot: the two queries must count the same records. */
	if (sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
		return audit_cmd_fail(a, EIO, "cannot read audit.db: %s",
				      sqlite3_errmsg(db));
	rc = summarize(db, &a->f, rep, err, sizeof(err));
	if (rc == 0)
		rc = count_modified(db, &a->f, rep, err, sizeof(err));
	if (rc == 0 && ensure_chain(rep, a->f.ws) < 0) {
		rc = -ENOMEM;
		snprintf(err, sizeof(err), "out of memory");
	}
	(void)sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
	return rc < 0 ? audit_cmd_fail(a, rc, "%s", err) : 0;
}

static int print_text(struct audit_store *s, struct audit_args *a,
		      const struct report *rep)
{
	size_t i;
	int rc = 0;

	if (rep->n == 0)
		puts("no audit records in the selected range");
	for (i = 0; rc == 0 && i < rep->n; i++) {
		if (i > 0)
			putchar('\n');
		print_chain(&rep->c[i]);
		if (a->val[AO_FILES] != NULL)
			rc = audit_report_files(s, a, rep->c[i].ws, NULL);
	}
	return rc;
}

static int add_json_chain(struct audit_store *s, struct audit_args *a,
			  const struct chain_report *c, json_t *list)
{
	json_t *o = chain_json(c), *files;

	/* The list holds O from here on; O stays valid while it does. */
	if (o == NULL || json_array_append_new(list, o) != 0)
		return audit_cmd_fail(a, ENOMEM, "out of memory");
	if (a->val[AO_FILES] == NULL)
		return 0;
	files = json_array();
	if (files == NULL || json_object_set_new(o, "changes", files) != 0)
		return audit_cmd_fail(a, ENOMEM, "out of memory");
	return audit_report_files(s, a, c->ws, files);
}

static int print_json(struct audit_store *s, struct audit_args *a,
		      const struct report *rep)
{
	json_t *list = json_array();
	size_t i;
	int rc = list ? 0 : audit_cmd_fail(a, ENOMEM, "out of memory");

	for (i = 0; rc == 0 && i < rep->n; i++)
		rc = add_json_chain(s, a, &rep->c[i], list);
	if (rc == 0 && json_dumpf(list, stdout, JSON_INDENT(2)) != 0)
		rc = audit_cmd_fail(a, EIO, "cannot write the output");
	if (rc == 0)
		putchar('\n');
	json_decref(list);
	return rc;
}

int audit_cmd_report(const struct wsctl *ctx, struct audit_args *a)
{
	struct audit_store *s;
	struct report rep;
	int rc;

	rc = audit_cmd_open(ctx, &s);
	if (rc != 0)
		return rc;
	memset(&rep, 0, sizeof(rep));
	rc = gather(s, a, &rep);
	if (rc == 0 && a->val[AO_JSON] != NULL)
		rc = print_json(s, a, &rep);
	else if (rc == 0)
		rc = print_text(s, a, &rep);
	report_free(&rep);
	audit_store_close(s);
	return rc;
}
