/*
** wsctl audit search: records matching filters, in the manner of ausearch
** and CloudTrail's lookup-events.
**
** There are three ways through the log, chosen by the options:
**
**   plain          every chain at once in time order (time_ns, ws, seq),
**                  which the time-leading indexes answer without sorting
**                  the whole log, so --limit stops early;
**   --after-seq N  one chain from seq N on, in seq order, on the primary
**                  key: the cheapest way to resume a feed;
**   --checkpoint   the same for every chain, starting after the seq a
**                  cursor file remembers for it, and advancing the file.
**
** The whole search runs inside one read transaction, so the cursor written
** at the end describes exactly the snapshot that was printed, even while
** daemons keep appending.  A chain's cursor moves to the chain's end as of
** that snapshot when every match up to there has been printed (records
** that did not match are "seen" as well, so the next pull does not scan
** them again), but only to the last record printed when --limit cut the
** pull short or --until may still admit later matches.
**
** Output goes through a sink on standard output; SIGPIPE is ignored while
** searching so that `| head` ends the output with an error rather than
** killing wsctl before the query is recorded.
*/
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#include "audit_cmds.h"
#include "audit_cursor.h"
#include "sink.h"
#include "store.h"

#define ERR_LEN (PATH_MAX + 256)

struct search {
	struct audit_args *a;
	sqlite3 *db;
	struct audit_out out;
	struct audit_cursor cur;	/* --checkpoint */
	int64_t printed;
	int write_failed;	/* the sink has the error, reported at close */
};

/* Prints every row of ST; the last seq printed goes to *LAST. */
static int emit_rows(struct search *s, sqlite3_stmt *st, int64_t *last)
{
	struct audit_record r;
	int rc;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		audit_record_from_row(&r, st, 0);
		if (audit_out_record(&s->out, &r) < 0) {
			s->write_failed = 1;
			return WSCTL_ERR;
		}
		s->printed++;
		if (last != NULL)
			*last = r.seq;
	}
	if (rc != SQLITE_DONE)
		return audit_cmd_fail(s->a, EIO, "cannot read audit.db: %s",
				      sqlite3_errmsg(s->db));
	return 0;
}

static int search_time(struct search *s)
{
	sqlite3_stmt *st;
	char err[ERR_LEN];
	int rc;

	if (audit_query_search(s->db, &s->a->f, &st, err, sizeof(err)) < 0)
		return audit_cmd_fail(s->a, EIO, "%s", err);
	rc = emit_rows(s, st, NULL);
	sqlite3_finalize(st);
	return rc;
}

/* Chain WS after seq AFTER, within what is left of --limit. */
static int search_chain(struct search *s, const char *ws, int64_t after,
			int64_t *last)
{
	int64_t limit = s->a->f.limit;
	sqlite3_stmt *st;
	char err[ERR_LEN];
	int rc;

	if (limit > 0)
		limit -= s->printed;
	if (audit_query_chain(s->db, &s->a->f, ws, after, limit, &st, err,
			      sizeof(err)) < 0)
		return audit_cmd_fail(s->a, EIO, "%s", err);
	*last = after;
	rc = emit_rows(s, st, last);
	sqlite3_finalize(st);
	return rc;
}

/* The last seq of chain WS in this snapshot. */
static int chain_end(struct search *s, const char *ws, int64_t *end)
{
	sqlite3_stmt *st;
	int rc;

	rc = sqlite3_prepare_v2(s->db, "SELECT max(seq) FROM records WHERE "
				"ws = ?", -1, &st, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_text(st, 1, ws, (int)strlen(ws),
				       SQLITE_STATIC);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*end = sqlite3_column_int64(st, 0);
		rc = SQLITE_OK;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_OK)
		return audit_cmd_fail(s->a, EIO, "cannot read audit.db: %s",
				      sqlite3_errmsg(s->db));
	return 0;
}

static int limit_reached(const struct search *s)
{
	return s->a->f.limit > 0 && s->printed >= s->a->f.limit;
}

/* One chain of a --checkpoint pull, and where its cursor goes. */
static int pull_chain(struct search *s, struct audit_cursor *cur,
		      const char *ws)
{
	int64_t last, end = 0;
	int rc;

	rc = search_chain(s, ws, audit_cursor_get(cur, ws), &last);
	if (rc == 0 && !limit_reached(s) && s->a->f.until_ns == INT64_MAX)
		rc = chain_end(s, ws, &end);
	if (rc != 0)
		return rc;
	if (audit_cursor_set(cur, ws, last > end ? last : end) < 0)
		return audit_cmd_fail(s->a, ENOMEM, "out of memory");
	return 0;
}

static int pull_all(struct search *s, struct audit_cursor *cur)
{
	struct audit_chains *chains;
	char err[ERR_LEN], *ws;
	int rc, more;

	if (s->a->f.ws != NULL)
		return pull_chain(s, cur, s->a->f.ws);
	if (audit_chains_open(s->db, &chains, err, sizeof(err)) < 0)
		return audit_cmd_fail(s->a, EIO, "%s", err);
	rc = 0;
	while (rc == 0 && !limit_reached(s) &&
	       (more = audit_chains_next(chains, &ws, err, sizeof(err))) != 0) {
		if (more < 0) {
			rc = audit_cmd_fail(s->a, -more, "%s", err);
			break;
		}
		rc = pull_chain(s, cur, ws);
		free(ws);
	}
	audit_chains_close(chains);
	return rc;
}

/* The cursor is saved only after the output reached the sink's end, so a
** failed pull is repeated rather than lost. */
static int save_cursor(struct search *s)
{
	char err[ERR_LEN];

	if (audit_cursor_save(s->a->val[AO_CHECKPOINT], &s->cur, err,
			      sizeof(err)) < 0)
		return audit_cmd_fail(s->a, EIO, "%s", err);
	return 0;
}

/* Before anything is printed: a bad cursor file is a usage error. */
static int load_cursor(struct search *s)
{
	char err[ERR_LEN];
	int rc;

	if (s->a->val[AO_CHECKPOINT] == NULL)
		return 0;
	rc = audit_cursor_load(s->a->val[AO_CHECKPOINT], &s->cur, err,
			       sizeof(err));
	if (rc == -EINVAL) {
		wsctl_err("%s", err);
		return WSCTL_USAGE;
	}
	if (rc < 0)
		return audit_cmd_fail(s->a, rc, "%s", err);
	return 0;
}

static int run_search(struct search *s)
{
	int64_t last;

	if (s->a->val[AO_CHECKPOINT] != NULL)
		return pull_all(s, &s->cur);
	if (s->a->val[AO_AFTER_SEQ] != NULL)
		return search_chain(s, s->a->f.ws, s->a->after_seq, &last);
	return search_time(s);
}

/* One snapshot for the whole search (see the top of the file). */
static int in_snapshot(struct search *s)
{
	int rc;

	if (sqlite3_exec(s->db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
		return audit_cmd_fail(s->a, EIO, "cannot read audit.db: %s",
				      sqlite3_errmsg(s->db));
	rc = run_search(s);
	(void)sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL);
	return rc;
}

static int search_to_stdout(struct search *s)
{
	struct audit_sink *sink;
	char err[ERR_LEN];
	int rc;

	if (audit_sink_open("-", 0, &sink, err, sizeof(err)) < 0)
		return audit_cmd_fail(s->a, EIO, "%s", err);
	rc = audit_out_start(&s->out, sink, s->a->format);
	if (rc < 0)
		rc = audit_cmd_fail(s->a, EIO, "cannot write the output");
	else
		rc = in_snapshot(s);
	audit_out_end(&s->out);
	if (audit_sink_close(sink, err, sizeof(err)) < 0 &&
	    (rc == 0 || s->write_failed))
		return audit_cmd_fail(s->a, EIO, "cannot write the output: %s",
				      err);
	if (rc == 0 && s->a->val[AO_CHECKPOINT] != NULL)
		rc = save_cursor(s);
	return rc;
}

int audit_cmd_search(const struct wsctl *ctx, struct audit_args *a)
{
	struct audit_store *store;
	struct search s;
	void (*old)(int);
	int rc;

	memset(&s, 0, sizeof(s));
	s.a = a;
	rc = load_cursor(&s);
	if (rc == 0)
		rc = audit_cmd_open(ctx, &store);
	if (rc != 0) {
		audit_cursor_free(&s.cur);
		return rc;
	}
	s.db = audit_store_db(store);
	old = signal(SIGPIPE, SIG_IGN);
	rc = search_to_stdout(&s);
	signal(SIGPIPE, old);
	audit_store_close(store);
	audit_cursor_free(&s.cur);
	return rc;
}
