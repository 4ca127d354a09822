/*
** wsctl audit export: records out of audit.db into a file, and in JSON
** Lines a bundle that `wsctl audit verify --bundle` checks offline, on a
** machine that has nothing but the file.
**
** A bundle must let the verifier recompute every head, so it never holds
** a chain with holes: --since and --until select, per chain, the seq range
** from the first matching record to the last, and every record of that
** range is exported, whatever its time.  Before a chain's first record
** comes a start line with the head of the record just before it (zeros
** from seq 1), and each checkpoint whose size lies in the range follows
** the record it covers, so a streaming verifier compares it with the head
** it has just computed.  The key's verifier line heads the file; the
** verifier trusts it only as far as the operator trusts the key (--pubkey
** pins it).
**
** Everything is read in one transaction, so a daemon appending meanwhile
** cannot make the records and checkpoints of a chain disagree.  A failed
** export removes its partial file: half a bundle must not pass for one.
** CSV and OCSF exports hold the same records without the chain's start
** lines, key and checkpoints; they are for other tools, not verification.
*/
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "append.h"
#include "grow.h"
#include "audit_cmds.h"
#include "jsonl.h"
#include "keys.h"
#include "sink.h"
#include "store.h"

#define ERR_LEN (PATH_MAX + 256)

struct range {
	char *ws;
	int64_t first, last;
};

struct export {
	struct audit_args *a;
	sqlite3 *db;
	struct audit_sink *sink;
	struct audit_out out;		/* csv, ocsf */
	struct range *r;
	size_t n, cap;
	int64_t records, checkpoints;
	int write_failed;
};

static int db_fail(struct export *x)
{
	return audit_cmd_fail(x->a, EIO, "cannot read audit.db: %s",
			      sqlite3_errmsg(x->db));
}

/* ---- which records ---------------------------------------------------- */

static int add_range(struct export *x, const char *ws, int64_t first,
		     int64_t last)
{
	if (x->n == x->cap &&
	    grow_array((void **)&x->r, &x->cap, sizeof(*x->r), 8) < 0)
		return audit_cmd_fail(x->a, ENOMEM, "out of memory");
	x->r[x->n].ws = strdup(ws);
	if (x->r[x->n].ws == NULL)
		return audit_cmd_fail(x->a, ENOMEM, "out of memory");
	x->r[x->n].first = first;
	x->r[x->n++].last = last;
	return 0;
}

/* The first or last seq of chain WS (0 if it is empty). */
static int chain_end(struct export *x, const char *ws, int last, int64_t *seq)
{
	sqlite3_stmt *st;
	int rc;

	rc = sqlite3_prepare_v2(x->db, last ?
				"SELECT seq FROM records WHERE ws = ? ORDER BY "
				"seq DESC LIMIT 1" :
				"SELECT seq FROM records WHERE ws = ? ORDER BY "
				"seq LIMIT 1", -1, &st, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_text(st, 1, ws, (int)strlen(ws),
				       SQLITE_STATIC);
	*seq = 0;
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*seq = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : db_fail(x);
}

static int whole_chain(struct export *x, const char *ws)
{
	int64_t first, last;

	if (chain_end(x, ws, 0, &first) != 0 || chain_end(x, ws, 1, &last) != 0)
		return WSCTL_ERR;
	return first > 0 ? add_range(x, ws, first, last) : 0;
}

/* Without a time range: every chain (or --ws's) whole. */
static int whole_chains(struct export *x)
{
	struct audit_chains *c;
	char err[ERR_LEN], *ws;
	int rc = 0, more;

	if (x->a->f.ws != NULL)
		return whole_chain(x, x->a->f.ws);
	if (audit_chains_open(x->db, &c, err, sizeof(err)) < 0)
		return audit_cmd_fail(x->a, EIO, "%s", err);
	while (rc == 0 && (more = audit_chains_next(c, &ws, err,
						    sizeof(err))) != 0) {
		if (more < 0) {
			rc = audit_cmd_fail(x->a, -more, "%s", err);
			break;
		}
		rc = whole_chain(x, ws);
		free(ws);
	}
	audit_chains_close(c);
	return rc;
}

/* With a time range: per chain, its first to its last match. */
static int matched_ranges(struct export *x)
{
	struct audit_sql q;
	sqlite3_stmt *st;
	char err[ERR_LEN];
	const char *ws;
	int rc;

	audit_sql_init(&q);
	audit_sql_add(&q, "SELECT ws, min(seq), max(seq) FROM records "
		      "WHERE 1");
	audit_sql_filter(&q, &x->a->f, 0);
	audit_sql_add(&q, " GROUP BY ws ORDER BY ws");
	rc = audit_sql_prepare(&q, x->db, &st, err, sizeof(err));
	audit_sql_free(&q);
	if (rc < 0)
		return audit_cmd_fail(x->a, rc, "%s", err);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		ws = (const char *)sqlite3_column_text(st, 0);
		if (add_range(x, ws ? ws : "", sqlite3_column_int64(st, 1),
			      sqlite3_column_int64(st, 2)) != 0) {
			sqlite3_finalize(st);
			return WSCTL_ERR;
		}
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : db_fail(x);
}

/* ---- writing a chain ---------------------------------------------------- */

/* The head after record SEQ of WS: the chain's state before the range. */
static int head_before(struct export *x, const char *ws, int64_t seq,
		       uint8_t head[AUDIT_HASH_LEN])
{
	sqlite3_stmt *st;
	const void *blob;
	int rc;

	memset(head, 0, AUDIT_HASH_LEN);
	if (seq <= 0)
		return 0;
	rc = sqlite3_prepare_v2(x->db, "SELECT head FROM records WHERE ws = ? "
				"AND seq = ?", -1, &st, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_text(st, 1, ws, (int)strlen(ws),
				       SQLITE_STATIC);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(st, 2, seq);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		blob = sqlite3_column_blob(st, 0);
		if (blob != NULL &&
		    sqlite3_column_bytes(st, 0) == AUDIT_HASH_LEN)
			memcpy(head, blob, AUDIT_HASH_LEN);
	}
	sqlite3_finalize(st);
	/* A missing record leaves zeros, which the verifier then rejects. */
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : db_fail(x);
}

static int prepare_range(struct export *x, const char *sql,
			 const struct range *r, sqlite3_stmt **st)
{
	int rc;

	rc = sqlite3_prepare_v2(x->db, sql, -1, st, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_text(*st, 1, r->ws, (int)strlen(r->ws),
				       SQLITE_STATIC);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(*st, 2, r->first);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(*st, 3, r->last);
	if (rc != SQLITE_OK) {
		sqlite3_finalize(*st);
		*st = NULL;
		return db_fail(x);
	}
	return 0;
}

static int write_failed(struct export *x)
{
	x->write_failed = 1;
	return WSCTL_ERR;
}

/* Writes the checkpoints of CP's statement up to size UPTO; *STEP holds
** the statement's last result (SQLITE_ROW: a checkpoint not yet written). */
static int checkpoints_upto(struct export *x, const struct range *r,
			    sqlite3_stmt *cp, int *step, int64_t upto)
{
	const char *note;

	while (*step == SQLITE_ROW && sqlite3_column_int64(cp, 0) <= upto) {
		note = (const char *)sqlite3_column_text(cp, 2);
		if (audit_jsonl_checkpoint(x->sink, r->ws,
					   sqlite3_column_int64(cp, 0),
					   sqlite3_column_int64(cp, 1),
					   note ? note : "") < 0)
			return write_failed(x);
		x->checkpoints++;
		*step = sqlite3_step(cp);
	}
	return *step == SQLITE_ROW || *step == SQLITE_DONE ? 0 : db_fail(x);
}

static int write_record(struct export *x, const struct audit_record *r)
{
	int rc;

	if (x->a->format == AUDIT_FORMAT_JSONL)
		rc = audit_jsonl_record(x->sink, r);
	else
		rc = audit_out_record(&x->out, r);
	if (rc < 0)
		return write_failed(x);
	x->records++;
	return 0;
}

/* The records of range R, each followed by the checkpoints it ends. */
static int write_records(struct export *x, const struct range *r,
			 sqlite3_stmt *recs, sqlite3_stmt *cp)
{
	int cstep = cp ? sqlite3_step(cp) : SQLITE_DONE, rstep, rc = 0;
	struct audit_record rec;

	while (rc == 0 && (rstep = sqlite3_step(recs)) == SQLITE_ROW) {
		audit_record_from_row(&rec, recs, 0);
		rc = write_record(x, &rec);
		if (rc == 0 && cp != NULL)
			rc = checkpoints_upto(x, r, cp, &cstep, rec.seq);
	}
	if (rc == 0 && rstep != SQLITE_DONE)
		rc = db_fail(x);
	if (rc == 0 && cp != NULL)
		rc = checkpoints_upto(x, r, cp, &cstep, r->last);
	return rc;
}

static int write_chain(struct export *x, const struct range *r)
{
	int bundle = x->a->format == AUDIT_FORMAT_JSONL;
	sqlite3_stmt *recs = NULL, *cp = NULL;
	uint8_t head[AUDIT_HASH_LEN];
	int rc = 0;

	if (bundle) {
		rc = head_before(x, r->ws, r->first - 1, head);
		if (rc == 0 && audit_jsonl_start(x->sink, r->ws, r->first - 1,
						 head) < 0)
			rc = write_failed(x);
		if (rc == 0)
			rc = prepare_range(x, "SELECT size, time_ns, note FROM "
					   "checkpoints WHERE ws = ? AND size "
					   "BETWEEN ? AND ? ORDER BY size", r,
					   &cp);
	}
	if (rc == 0)
		rc = prepare_range(x, "SELECT " AUDIT_RECORD_COLUMNS " FROM "
				   "records WHERE ws = ? AND seq BETWEEN ? AND "
				   "? ORDER BY seq", r, &recs);
	if (rc == 0)
		rc = write_records(x, r, recs, cp);
	sqlite3_finalize(recs);
	sqlite3_finalize(cp);
	return rc;
}

/* ---- the command ---------------------------------------------------- */

/* The signing key's public half: from the key pair, or from audit.pub
** alone when the private key has been moved off the host. */
static int load_verifier(const struct wsctl *ctx, struct audit_args *a,
			 struct audit_key **k)
{
	char err[ERR_LEN], pub[PATH_MAX];

	if (audit_key_load(ctx->state_dir, 0, k, err, sizeof(err)) == 0)
		return 0;
	if (snprintf(pub, sizeof(pub), "%s/keys/audit.pub", ctx->state_dir) <
	    (int)sizeof(pub) &&
	    audit_key_load_public(pub, k, err, sizeof(err)) == 0)
		return 0;
	return audit_cmd_fail(a, ENOENT, "no audit key in %s/keys, so the "
			      "export could not be verified: %s",
			      ctx->state_dir, err);
}

static int find_ranges(struct export *x)
{
	return audit_filter_has_time(&x->a->f) ? matched_ranges(x) :
	       whole_chains(x);
}

static int write_all(struct export *x, const struct audit_key *k)
{
	size_t i;
	int rc = 0;

	if (k != NULL && audit_jsonl_header(x->sink, audit_key_verifier(k),
					    audit_hostname()) < 0)
		return write_failed(x);
	if (k == NULL && audit_out_start(&x->out, x->sink, x->a->format) < 0)
		return write_failed(x);
	for (i = 0; rc == 0 && i < x->n; i++)
		rc = write_chain(x, &x->r[i]);
	return rc;
}

/* One snapshot for the ranges and everything in them. */
static int export_snapshot(struct export *x, const struct audit_key *k)
{
	int rc;

	if (sqlite3_exec(x->db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
		return db_fail(x);
	rc = find_ranges(x);
	if (rc == 0)
		rc = write_all(x, k);
	(void)sqlite3_exec(x->db, "COMMIT", NULL, NULL, NULL);
	return rc;
}

static int export_to_sink(struct export *x, const struct audit_key *k)
{
	const char *file = x->a->val[AO_OUTPUT];
	char err[ERR_LEN];
	int rc;

	if (audit_sink_open(file, x->a->val[AO_ZSTD] != NULL, &x->sink, err,
			    sizeof(err)) < 0)
		return audit_cmd_fail(x->a, EIO, "%s", err);
	rc = export_snapshot(x, k);
	audit_out_end(&x->out);
	if (audit_sink_close(x->sink, err, sizeof(err)) < 0 &&
	    (rc == 0 || x->write_failed))
		rc = audit_cmd_fail(x->a, EIO, "cannot write %s: %s", file,
				    err);
	if (rc != 0 && strcmp(file, "-") != 0)
		(void)unlink(file);
	return rc;
}

static void free_ranges(struct export *x)
{
	size_t i;

	for (i = 0; i < x->n; i++)
		free(x->r[i].ws);
	free(x->r);
}

int audit_cmd_export(const struct wsctl *ctx, struct audit_args *a)
{
	const char *file = a->val[AO_OUTPUT];
	struct audit_store *store;
	struct audit_key *k = NULL;
	struct export x;
	void (*old)(int);
	int rc;

	rc = audit_cmd_open(ctx, &store);
	if (rc != 0)
		return rc;
	if (a->format == AUDIT_FORMAT_JSONL)
		rc = load_verifier(ctx, a, &k);
	if (rc != 0) {
		audit_store_close(store);
		return rc;
	}
	memset(&x, 0, sizeof(x));
	x.a = a;
	x.db = audit_store_db(store);
	old = signal(SIGPIPE, SIG_IGN);
	rc = export_to_sink(&x, k);
	signal(SIGPIPE, old);
	if (rc == 0)
		fprintf(stderr, "exported %lld records, %lld checkpoints to "
			"%s\n", (long long)x.records, (long long)x.checkpoints,
			strcmp(file, "-") == 0 ? "standard output" : file);
	free_ranges(&x);
	audit_key_free(k);
	audit_store_close(store);
	return rc;
}
