/*
** Verification of audit.db and of export bundles (see verify.h).
**
** Both inputs are checked by one walk, so that the two can never disagree
** about what a valid log is.  A source hands the walk one chain at a time:
** first the chain's name, the seq and head it starts after, and all of its
** checkpoints sorted by size, then its records in seq order.  The walk
** recomputes each record's leaf and head, and whenever the chain reaches a
** checkpoint's size it checks the note's signature and compares the note's
** head with the head just computed.  Checkpoints are few (one per batch of
** thousands of records at most), so holding a chain's checkpoints in memory
** is cheap, and the records themselves stream through.
**
** The walk stops at the first failure.  Within a chain that is the first in
** seq order, because a checkpoint is looked at only when the walk reaches
** its size, after every record up to it; a checkpoint beyond the last
** record is looked at when the chain ends, and is either a forgery (bad
** signature) or proof that the tail was cut off.
**
** The database source reads chains in name order with indexed min()
** lookups rather than a DISTINCT scan, and each chain's records by primary
** key.  The bundle source reads the file twice: once for the key line and
** the checkpoint lines, which may come anywhere, and once for the records,
** which an exporter writes in chain order after each chain's start line.
**
** A bundle is untrusted input: every line is parsed by jansson, and a line
** that is not JSON, not an object of a known type or lacks a field is a
** verification failure naming the line, never a crash.
*/
#include "verify.h"
#include "grow.h"
#include "sqlutil.h"

#include "checkpoint.h"
#include "internal.h"
#include "jsonl.h"
#include "sink.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sqlite3.h>

/* A failure in the input itself (a garbled bundle line, a missing range
** start): the walk reports it as a verification failure, not an error. */
#define BAD_INPUT (-EBADMSG)

struct vcp {
	int64_t size;
	char *note;
};

struct vchain {
	char *ws;
	int64_t start_seq;		/* the records begin after this seq */
	uint8_t start_head[AUDIT_HASH_LEN];
	struct vcp *cps;		/* sorted by size */
	size_t ncps, cps_cap;
};

struct vsource {
	/* 1 with the next chain in *C, 0 after the last, or < 0. */
	int (*next_chain)(struct vsource *src, struct vchain *c);
	/* 1 with the chain's next record in *R, 0 at its end, or < 0.
	** R's strings stay valid until the next call. */
	int (*next_record)(struct vsource *src, struct audit_record *r);
	const struct audit_key *key;	/* NULL: none available */
	char why[256];			/* for errors and BAD_INPUT */
};

/* ---- chains and their checkpoints --------------------------------------- */

static void vchain_clear(struct vchain *c)
{
	size_t i;

	for (i = 0; i < c->ncps; i++)
		free(c->cps[i].note);
	free(c->cps);
	free(c->ws);
	memset(c, 0, sizeof(*c));
}

static int vchain_add_cp(struct vchain *c, int64_t size, const char *note)
{
	struct vcp *p;

	if (c->ncps == c->cps_cap &&
	    grow_array((void **)&c->cps, &c->cps_cap, sizeof(*c->cps), 16) < 0)
		return -ENOMEM;
	p = &c->cps[c->ncps];
	p->size = size;
	p->note = strdup(note);
	if (p->note == NULL)
		return -ENOMEM;
	c->ncps++;
	return 0;
}

static int cp_cmp(const void *a, const void *b)
{
	const struct vcp *x = a, *y = b;

	return x->size < y->size ? -1 : x->size > y->size;
}

static void vchain_sort(struct vchain *c)
{
	if (c->ncps > 1)
		qsort(c->cps, c->ncps, sizeof(c->cps[0]), cp_cmp);
}

/* ---- the walk ----------------------------------------------------------- */

struct walk {
	struct vsource *src;
	struct audit_verify_result *res;
	const struct vchain *chain;
	int64_t expect;			/* the next seq */
	uint8_t head[AUDIT_HASH_LEN];	/* head at expect - 1 */
	size_t next_cp;
	int64_t anchored;		/* the last checked checkpoint */
};

static int fail(struct walk *w, int64_t seq, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(struct walk *w, int64_t seq, const char *fmt, ...)
{
	struct audit_verify_result *res = w->res;
	va_list ap;

	res->ok = 0;
	res->bad_seq = seq;
	(void)snprintf(res->bad_ws, sizeof(res->bad_ws), "%s",
		       w->chain && w->chain->ws ? w->chain->ws : "");
	va_start(ap, fmt);
	(void)vsnprintf(res->why, sizeof(res->why), fmt, ap);
	va_end(ap);
	return 1;
}

/* The checkpoint's note, signed by our key, for this chain and size. */
static int check_note(struct walk *w, const struct vcp *cp,
		      struct audit_checkpoint *c)
{
	char why[160];
	int rc;

	if (w->src->key == NULL) {
		(void)snprintf(w->src->why, sizeof(w->src->why), "no public "
			       "key to check checkpoints with");
		return -ENOKEY;
	}
	rc = audit_checkpoint_check(cp->note, w->src->key, c, why,
				    sizeof(why));
	if (rc == -ENOMEM)
		return rc;
	if (rc < 0)
		return fail(w, cp->size, "checkpoint at size %" PRId64 ": %s",
			    cp->size, why);
	if (c->size != cp->size || strcmp(c->ws, w->chain->ws) != 0)
		return fail(w, cp->size, "checkpoint at size %" PRId64 ": its "
			    "note is for chain '%s' size %" PRId64, cp->size,
			    c->ws, c->size);
	return 0;
}

/* At seq CP->size, with W->head the head computed there. 0 if it holds,
** 1 after reporting a failure, < 0 on error. */
static int check_cp(struct walk *w, const struct vcp *cp)
{
	struct audit_checkpoint c;
	int rc = check_note(w, cp, &c);

	if (rc == 0 && memcmp(c.head, w->head, AUDIT_HASH_LEN) != 0)
		rc = fail(w, cp->size, "checkpoint at %" PRId64 " does not "
			  "match the records: records up to %" PRId64 " were "
			  "altered", cp->size, cp->size);
	audit_checkpoint_clear(&c);
	if (rc == 0) {
		w->res->checkpoints++;
		w->anchored = cp->size;
	}
	return rc;
}

static int walk_record(struct walk *w, const struct audit_record *r)
{
	uint8_t leaf[AUDIT_HASH_LEN];
	int rc;

	if (r->seq > w->expect)
		return fail(w, w->expect, "record %" PRId64 " missing",
			    w->expect);
	if (r->seq < w->expect)
		return fail(w, r->seq, "record %" PRId64 " out of order "
			    "(expected %" PRId64 ")", r->seq, w->expect);
	if (strcmp(r->ws, w->chain->ws) != 0)
		return fail(w, r->seq, "record %" PRId64 " belongs to chain "
			    "'%s'", r->seq, r->ws);
	rc = audit_leaf(r, leaf);
	if (rc < 0)
		return rc;
	if (memcmp(leaf, r->leaf, AUDIT_HASH_LEN) != 0)
		return fail(w, r->seq, "record %" PRId64 " does not match its "
			    "hash (edited?)", r->seq);
	audit_head_next(w->head, leaf, w->head);
	if (memcmp(w->head, r->head, AUDIT_HASH_LEN) != 0)
		return fail(w, r->seq, "chain broken at %" PRId64, r->seq);
	w->res->records++;
	w->expect++;
	while (w->next_cp < w->chain->ncps &&
	       w->chain->cps[w->next_cp].size == r->seq) {
		rc = check_cp(w, &w->chain->cps[w->next_cp++]);
		if (rc != 0)
			return rc;
	}
	return 0;
}

/* After the chain's last record: checkpoints beyond it are either forged
** or vouch for records that are gone. */
static int walk_end(struct walk *w)
{
	const struct vcp *cp;
	struct audit_checkpoint c;
	int64_t have = w->expect - 1;
	int rc;

	if (w->next_cp < w->chain->ncps) {
		cp = &w->chain->cps[w->next_cp];
		rc = check_note(w, cp, &c);
		audit_checkpoint_clear(&c);
		if (rc != 0)
			return rc;
		return fail(w, have + 1, "log truncated: checkpoint covers "
			    "%" PRId64 " records, log has %" PRId64, cp->size,
			    have);
	}
	w->res->unanchored += have - w->anchored;
	return 0;
}

/* Skips checkpoints at or before the start: the start head is taken on
** trust, so there is nothing computed to compare them with. */
static void walk_begin(struct walk *w, const struct vchain *c)
{
	w->chain = c;
	w->expect = c->start_seq + 1;
	memcpy(w->head, c->start_head, AUDIT_HASH_LEN);
	w->next_cp = 0;
	while (w->next_cp < c->ncps && c->cps[w->next_cp].size <= c->start_seq)
		w->next_cp++;
	w->anchored = c->start_seq;
}

/* Turns a source's BAD_INPUT into a failure at the current position. */
static int source_rc(struct walk *w, int rc)
{
	if (rc == BAD_INPUT)
		return fail(w, w->expect, "%s", w->src->why);
	return rc;
}

static int walk_chain(struct walk *w, const struct vchain *c)
{
	struct audit_record r;
	int rc;

	walk_begin(w, c);
	w->res->chains++;
	for (;;) {
		rc = w->src->next_record(w->src, &r);
		if (rc <= 0)
			break;
		rc = walk_record(w, &r);
		if (rc != 0)
			return rc;
	}
	if (rc < 0)
		return source_rc(w, rc);
	return walk_end(w);
}

/* 0 when the walk ran to its end or to a failure (RES says which), or a
** negative errno with the reason in ERR. */
static int walk(struct vsource *src, struct audit_verify_result *res,
		char *err, size_t errlen)
{
	struct walk w = { .src = src, .res = res };
	struct vchain c = { 0 };
	int rc;

	res->ok = 1;
	for (;;) {
		rc = src->next_chain(src, &c);
		if (rc <= 0) {
			/* A failure here belongs to the chain being opened,
			** if it got as far as having a name. */
			w.chain = c.ws ? &c : NULL;
			w.expect = c.ws ? c.start_seq : 0;
			rc = source_rc(&w, rc);
			break;
		}
		rc = walk_chain(&w, &c);
		vchain_clear(&c);
		if (rc != 0)
			break;
	}
	vchain_clear(&c);
	if (rc < 0) {
		audit_set_err(err, errlen, "%s", src->why[0] ? src->why
				: strerror(-rc));
		return rc;
	}
	return 0;
}

/* ---- the database source ------------------------------------------------ */

#define NEXT_WS_SQL "SELECT min(ws) FROM (" \
	"SELECT min(ws) AS ws FROM records WHERE ws > ?1 UNION ALL " \
	"SELECT min(ws) FROM checkpoints WHERE ws > ?1)"
#define CPS_SQL "SELECT size, note FROM checkpoints WHERE ws = ? " \
	"AND size BETWEEN ? AND ? ORDER BY size"
#define START_SQL "SELECT head FROM records WHERE ws = ? AND seq = ?"
#define RECORDS_SQL "SELECT " AUDIT_RECORD_COLUMNS " FROM records " \
	"WHERE ws = ? AND seq BETWEEN ? AND ? ORDER BY seq"

struct dbsource {
	struct vsource src;
	sqlite3 *db;
	const struct audit_verify_opts *o;
	sqlite3_stmt *next_ws, *records;
	char *last_ws;		/* the chain before this one; NULL at first */
	int done;
};

static int db_err(struct dbsource *d, int rc, const char *what)
{
	(void)snprintf(d->src.why, sizeof(d->src.why), "audit.db: %s: %s",
		       what, sqlite3_errmsg(d->db));
	return sql_errno(rc);
}

static int64_t range_to(const struct audit_verify_opts *o)
{
	return o->to > 0 ? o->to : INT64_MAX;
}

/* The name of the chain after d->last_ws, into *WS (malloc'd). */
static int db_next_ws(struct dbsource *d, char **ws)
{
	const unsigned char *t;
	int rc;

	*ws = NULL;
	if (d->o->ws != NULL) {
		if (d->done)
			return 0;
		*ws = strdup(d->o->ws);
		return *ws ? 1 : -ENOMEM;
	}
	rc = sqlite3_bind_text(d->next_ws, 1, d->last_ws ? d->last_ws : "",
			       -1, SQLITE_TRANSIENT);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(d->next_ws);
	if (rc == SQLITE_ROW) {
		t = sqlite3_column_text(d->next_ws, 0);
		*ws = t ? strdup((const char *)t) : NULL;
		rc = t == NULL ? 0 : *ws ? 1 : -ENOMEM;
	} else {
		rc = db_err(d, rc, "listing chains");
	}
	(void)sqlite3_reset(d->next_ws);
	return rc;
}

/* min() over ws > '' cannot find the host chain "", so whether it exists
** is asked first, on its own. */
static int db_host_chain_exists(struct dbsource *d)
{
	sqlite3_stmt *st;
	int rc;

	rc = sqlite3_prepare_v2(d->db, "SELECT EXISTS(SELECT 1 FROM records "
				"WHERE ws = '') OR EXISTS(SELECT 1 FROM "
				"checkpoints WHERE ws = '')", -1, &st, NULL);
	if (rc != SQLITE_OK)
		return db_err(d, rc, "listing chains");
	rc = sqlite3_step(st);
	rc = rc == SQLITE_ROW ? sqlite3_column_int(st, 0)
			      : db_err(d, rc, "listing chains");
	(void)sqlite3_finalize(st);
	return rc;
}

static int db_load_cps(struct dbsource *d, struct vchain *c)
{
	const unsigned char *note;
	sqlite3_stmt *st;
	int rc;

	rc = sqlite3_prepare_v2(d->db, CPS_SQL, -1, &st, NULL);
	if (rc != SQLITE_OK)
		return db_err(d, rc, "reading checkpoints");
	(void)sqlite3_bind_text(st, 1, c->ws, -1, SQLITE_STATIC);
	(void)sqlite3_bind_int64(st, 2, c->start_seq + 1);
	(void)sqlite3_bind_int64(st, 3, range_to(d->o));
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		note = sqlite3_column_text(st, 1);
		rc = vchain_add_cp(c, sqlite3_column_int64(st, 0),
				   note ? (const char *)note : "");
		if (rc < 0)
			break;
	}
	if (rc != SQLITE_DONE && rc != -ENOMEM)
		rc = db_err(d, rc, "reading checkpoints");
	(void)sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : rc;
}

/* The stored head of record FROM-1, where a --from range starts. */
static int db_start_head(struct dbsource *d, struct vchain *c)
{
	const void *h;
	sqlite3_stmt *st;
	int rc;

	if (c->start_seq == 0)
		return 0;
	rc = sqlite3_prepare_v2(d->db, START_SQL, -1, &st, NULL);
	if (rc != SQLITE_OK)
		return db_err(d, rc, "reading the range start");
	(void)sqlite3_bind_text(st, 1, c->ws, -1, SQLITE_STATIC);
	(void)sqlite3_bind_int64(st, 2, c->start_seq);
	rc = sqlite3_step(st);
	h = rc == SQLITE_ROW ? sqlite3_column_blob(st, 0) : NULL;
	if (h != NULL && sqlite3_column_bytes(st, 0) == AUDIT_HASH_LEN) {
		memcpy(c->start_head, h, AUDIT_HASH_LEN);
		rc = 0;
	} else if (rc == SQLITE_ROW || rc == SQLITE_DONE) {
		(void)snprintf(d->src.why, sizeof(d->src.why), "record %"
			       PRId64 " missing (the range starts after it)",
			       c->start_seq);
		rc = BAD_INPUT;
	} else {
		rc = db_err(d, rc, "reading the range start");
	}
	(void)sqlite3_finalize(st);
	return rc;
}

static int db_bind_records(struct dbsource *d, const struct vchain *c)
{
	sqlite3_stmt *st = d->records;
	int rc;

	(void)sqlite3_reset(st);
	rc = sqlite3_bind_text(st, 1, c->ws, -1, SQLITE_TRANSIENT);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(st, 2, c->start_seq + 1);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(st, 3, range_to(d->o));
	return rc == SQLITE_OK ? 0 : db_err(d, rc, "reading records");
}

static int db_next_chain(struct vsource *src, struct vchain *c)
{
	struct dbsource *d = (struct dbsource *)src;
	int rc;

	if (d->last_ws == NULL && d->o->ws == NULL && !d->done) {
		d->done = 1;
		rc = db_host_chain_exists(d);
		if (rc < 0)
			return rc;
		c->ws = rc ? strdup("") : NULL;
		if (rc && c->ws == NULL)
			return -ENOMEM;
	}
	if (c->ws == NULL) {
		rc = db_next_ws(d, &c->ws);
		if (rc <= 0)
			return rc;
	}
	d->done = 1;
	free(d->last_ws);
	d->last_ws = strdup(c->ws);
	if (d->last_ws == NULL)
		return -ENOMEM;
	c->start_seq = d->o->from > 1 ? d->o->from - 1 : 0;
	rc = db_start_head(d, c);
	if (rc == 0)
		rc = db_load_cps(d, c);
	if (rc == 0)
		rc = db_bind_records(d, c);
	return rc < 0 ? rc : 1;
}

static int db_next_record(struct vsource *src, struct audit_record *r)
{
	struct dbsource *d = (struct dbsource *)src;
	int rc = sqlite3_step(d->records);

	if (rc == SQLITE_ROW) {
		audit_record_from_row(r, d->records, 0);
		return 1;
	}
	return rc == SQLITE_DONE ? 0 : db_err(d, rc, "reading records");
}

/* The state directory's own key, for a caller that names none: its
** private key's public half, else audit.pub. */
static struct audit_key *db_key(struct audit_store *s)
{
	char path[PATH_MAX];
	struct audit_key *k = NULL;

	if (audit_key_load(audit_store_dir(s), 0, &k, NULL, 0) == 0)
		return k;
	if (snprintf(path, sizeof(path), "%s/keys/audit.pub",
		     audit_store_dir(s)) >= (int)sizeof(path))
		return NULL;
	if (audit_key_load_public(path, &k, NULL, 0) == 0)
		return k;
	return NULL;
}

static int check_opts(const struct audit_verify_opts *o, char *err,
		      size_t errlen)
{
	if ((o->from != 0 || o->to != 0) && o->ws == NULL) {
		audit_set_err(err, errlen, "a seq range needs a workspace");
		return -EINVAL;
	}
	if (o->from < 0 || o->to < 0 || (o->to != 0 && o->to < o->from)) {
		audit_set_err(err, errlen, "bad seq range %" PRId64 "..%"
			      PRId64, o->from, o->to);
		return -EINVAL;
	}
	return 0;
}

int audit_verify_db(struct audit_store *s, const struct audit_verify_opts *o,
		    struct audit_verify_result *res, char *err, size_t errlen)
{
	struct dbsource d = { .src = { db_next_chain, db_next_record, NULL,
				       "" } };
	struct audit_key *own = NULL;
	int rc;

	memset(res, 0, sizeof(*res));
	rc = check_opts(o, err, errlen);
	if (rc < 0)
		return rc;
	d.db = audit_store_db(s);
	d.o = o;
	if (o->pub == NULL)
		own = db_key(s);
	d.src.key = o->pub ? o->pub : own;
	rc = sqlite3_prepare_v2(d.db, NEXT_WS_SQL, -1, &d.next_ws, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v2(d.db, RECORDS_SQL, -1, &d.records,
					NULL);
	/* One read transaction, so the walk sees one consistent log while
	** the daemons go on appending. */
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(d.db, "BEGIN", NULL, NULL, NULL);
	if (rc == SQLITE_OK) {
		rc = walk(&d.src, res, err, errlen);
		(void)sqlite3_exec(d.db, "COMMIT", NULL, NULL, NULL);
	} else {
		audit_set_err(err, errlen, "audit.db: %s",
			      sqlite3_errmsg(d.db));
		rc = sql_errno(rc);
	}
	(void)sqlite3_finalize(d.next_ws);
	(void)sqlite3_finalize(d.records);
	free(d.last_ws);
	audit_key_free(own);
	return rc;
}

/* ---- the bundle source -------------------------------------------------- */

#define N_STR_FIELDS 10

struct bsource {
	struct vsource src;
	const char *path;
	const struct audit_verify_opts *o;
	struct audit_lines *lines;
	struct audit_key *bundle_key;
	struct vchain *chains;		/* checkpoints per chain, pass 1 */
	size_t nchains, chains_cap;
	size_t next_unseen;		/* chains without a start line */
	char **seen;			/* chains walked, to refuse repeats */
	size_t nseen, seen_cap;
	json_t *pending;		/* a start line read ahead */
	size_t pending_line;
	json_t *cur;			/* the current record's line */
	const char *cur_ws;
	int in_chain, eof;
	char *b64[N_STR_FIELDS];	/* decoded *_b64 fields */
	size_t b64_cap[N_STR_FIELDS];
};

static int bad(struct bsource *b, size_t line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int bad(struct bsource *b, size_t line, const char *fmt, ...)
{
	char msg[200];
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	(void)snprintf(b->src.why, sizeof(b->src.why), "%s line %zu: %s",
		       b->path, line, msg);
	return BAD_INPUT;
}

static int lines_err(struct bsource *b)
{
	const char *e = audit_lines_error(b->lines);

	if (e == NULL)
		return 0;
	(void)snprintf(b->src.why, sizeof(b->src.why), "%s", e);
	return -EIO;
}

/* The next line parsed as a JSON object: 1, 0 at the end, or < 0. */
static int next_json(struct bsource *b, json_t **out, size_t *lineno)
{
	json_error_t jerr;
	const char *line;
	size_t len;

	line = audit_lines_next(b->lines, &len, lineno);
	if (line == NULL)
		return lines_err(b);
	*out = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
	if (*out == NULL)
		return bad(b, *lineno, "not valid JSON: %s", jerr.text);
	if (!json_is_object(*out)) {
		json_decref(*out);
		return bad(b, *lineno, "not a JSON object");
	}
	return 1;
}

static const char *line_type(json_t *j)
{
	const char *t = json_string_value(json_object_get(j, "type"));

	return t ? t : "";
}

/* A string field, or its "<name>_b64" form decoded into slot SLOT. */
static int get_str(struct bsource *b, json_t *j, const char *name, int slot,
		   size_t line, const char **out)
{
	char key[32];
	const char *v;
	size_t len;
	long n;

	v = json_string_value(json_object_get(j, name));
	if (v != NULL) {
		*out = v;
		return 0;
	}
	(void)snprintf(key, sizeof(key), "%s_b64", name);
	v = json_string_value(json_object_get(j, key));
	if (v == NULL)
		return bad(b, line, "no string \"%s\"", name);
	len = strlen(v);
	if (b->b64_cap[slot] < len + 1) {
		char *p = realloc(b->b64[slot], len + 1);

		if (p == NULL)
			return -ENOMEM;
		b->b64[slot] = p;
		b->b64_cap[slot] = len + 1;
	}
	n = audit_b64_decode(v, len, (uint8_t *)b->b64[slot], len);
	if (n < 0 || memchr(b->b64[slot], '\0', (size_t)n) != NULL)
		return bad(b, line, "bad base64 in \"%s\"", key);
	b->b64[slot][n] = '\0';
	*out = b->b64[slot];
	return 0;
}

static int get_int(struct bsource *b, json_t *j, const char *name,
		   size_t line, int64_t *out)
{
	json_t *v = json_object_get(j, name);

	if (!json_is_integer(v))
		return bad(b, line, "no integer \"%s\"", name);
	*out = json_integer_value(v);
	return 0;
}

static int get_hash(struct bsource *b, json_t *j, const char *name,
		    size_t line, uint8_t out[AUDIT_HASH_LEN])
{
	const char *v = json_string_value(json_object_get(j, name));

	if (v == NULL || strlen(v) != 2 * AUDIT_HASH_LEN ||
	    audit_unhex(v, AUDIT_HASH_LEN, out) < 0)
		return bad(b, line, "no hash \"%s\"", name);
	return 0;
}

/* -- pass 1: the key and the checkpoints -- */

static struct vchain *chain_for(struct bsource *b, const char *ws)
{
	struct vchain *c;
	size_t i;

	for (i = 0; i < b->nchains; i++) {
		if (strcmp(b->chains[i].ws, ws) == 0)
			return &b->chains[i];
	}
	if (b->nchains == b->chains_cap &&
	    grow_array((void **)&b->chains, &b->chains_cap, sizeof(*b->chains),
		       8) < 0)
		return NULL;
	c = &b->chains[b->nchains];
	memset(c, 0, sizeof(*c));
	c->ws = strdup(ws);
	if (c->ws == NULL)
		return NULL;
	b->nchains++;
	return c;
}

static int read_header(struct bsource *b)
{
	const char *key;
	json_t *j = NULL;
	size_t line = 1;
	char why[200];
	int rc;

	rc = next_json(b, &j, &line);
	if (rc == 0)
		return bad(b, 1, "empty file, not a bundle");
	if (rc < 0)
		return rc;
	rc = 0;
	if (strcmp(line_type(j), "bundle") != 0)
		rc = bad(b, line, "not a bundle header");
	else if (json_integer_value(json_object_get(j, "version")) != 1)
		rc = bad(b, line, "unknown bundle version");
	else if (get_str(b, j, "key", 0, line, &key) == 0 &&
		 audit_key_parse_verifier(key, &b->bundle_key, why,
					  sizeof(why)) < 0)
		rc = bad(b, line, "bad key: %s", why);
	else if (b->bundle_key == NULL)
		rc = BAD_INPUT;
	json_decref(j);
	return rc;
}

static int add_checkpoint(struct bsource *b, json_t *j, size_t line)
{
	struct vchain *c;
	const char *ws, *note;
	int64_t size = 0;
	int rc;

	rc = get_str(b, j, "ws", 0, line, &ws);
	if (rc == 0)
		rc = get_int(b, j, "size", line, &size);
	if (rc == 0)
		rc = get_str(b, j, "note", 1, line, &note);
	if (rc < 0)
		return rc;
	if (b->o->ws != NULL && strcmp(ws, b->o->ws) != 0)
		return 0;
	c = chain_for(b, ws);
	if (c == NULL)
		return -ENOMEM;
	return vchain_add_cp(c, size, note);
}

/* Lines that cannot be checkpoints are skipped without parsing: this pass
** only needs those, and every line is parsed in the second. */
static int scan_checkpoints(struct bsource *b)
{
	const char *text;
	size_t len, line;
	json_t *j;
	int rc;

	while ((text = audit_lines_next(b->lines, &len, &line)) != NULL) {
		if (strstr(text, "\"checkpoint\"") == NULL)
			continue;
		j = json_loadb(text, len, 0, NULL);
		rc = j && strcmp(line_type(j), "checkpoint") == 0
			? add_checkpoint(b, j, line) : 0;
		json_decref(j);
		if (rc < 0)
			return rc;
	}
	return lines_err(b);
}

static int bundle_key_check(struct bsource *b)
{
	if (b->o->pub != NULL && !audit_key_same(b->o->pub, b->bundle_key)) {
		(void)snprintf(b->src.why, sizeof(b->src.why), "the bundle is "
			       "signed by %s, not the given key",
			       audit_key_verifier(b->bundle_key));
		return BAD_INPUT;
	}
	b->src.key = b->bundle_key;
	return 0;
}

static int pass1(struct bsource *b, char *err, size_t errlen)
{
	size_t i;
	int rc;

	rc = audit_lines_open(b->path, &b->lines, err, errlen);
	if (rc < 0)
		return rc;
	rc = read_header(b);
	if (rc == 0)
		rc = bundle_key_check(b);
	if (rc == 0)
		rc = scan_checkpoints(b);
	audit_lines_close(b->lines);
	b->lines = NULL;
	for (i = 0; i < b->nchains; i++)
		vchain_sort(&b->chains[i]);
	return rc;
}

/* -- pass 2: the records -- */

/* Moves chain WS's checkpoints (if any) into C. */
static void take_cps(struct bsource *b, const char *ws, struct vchain *c)
{
	size_t i;

	for (i = 0; i < b->nchains; i++) {
		if (strcmp(b->chains[i].ws, ws) != 0)
			continue;
		c->cps = b->chains[i].cps;
		c->ncps = b->chains[i].ncps;
		c->cps_cap = b->chains[i].cps_cap;
		b->chains[i].cps = NULL;
		b->chains[i].ncps = b->chains[i].cps_cap = 0;
		return;
	}
}

static int mark_seen(struct bsource *b, const char *ws, size_t line)
{
	size_t i;

	for (i = 0; i < b->nseen; i++) {
		if (strcmp(b->seen[i], ws) == 0)
			return bad(b, line, "chain '%s' starts twice", ws);
	}
	if (b->nseen == b->seen_cap &&
	    grow_array((void **)&b->seen, &b->seen_cap, sizeof(*b->seen), 8) < 0)
		return -ENOMEM;
	b->seen[b->nseen] = strdup(ws);
	if (b->seen[b->nseen] == NULL)
		return -ENOMEM;
	b->nseen++;
	return 0;
}

static int was_seen(const struct bsource *b, const char *ws)
{
	size_t i;

	for (i = 0; i < b->nseen; i++) {
		if (strcmp(b->seen[i], ws) == 0)
			return 1;
	}
	return 0;
}

/* Fills C from a start line. */
static int chain_from_start(struct bsource *b, json_t *j, size_t line,
			    struct vchain *c)
{
	const char *ws;
	int rc;

	rc = get_str(b, j, "ws", 0, line, &ws);
	if (rc == 0)
		rc = get_int(b, j, "seq", line, &c->start_seq);
	if (rc == 0)
		rc = get_hash(b, j, "head", line, c->start_head);
	if (rc == 0 && c->start_seq < 0)
		rc = bad(b, line, "negative start seq");
	if (rc == 0)
		rc = mark_seen(b, ws, line);
	if (rc < 0)
		return rc;
	c->ws = strdup(ws);
	if (c->ws == NULL)
		return -ENOMEM;
	take_cps(b, ws, c);
	return 1;
}

/* Lines between records that the walk does not need. */
static int skip_line(struct bsource *b, json_t *j, size_t line)
{
	const char *t = line_type(j);

	if (strcmp(t, "checkpoint") == 0)
		return 1;
	if (strcmp(t, "bundle") == 0)
		return bad(b, line, "a second bundle header");
	return 0;
}

/* The next start or record line, other lines skipped; 1, 0 at the end. */
static int next_walk_line(struct bsource *b, json_t **j, size_t *line)
{
	int rc;

	if (b->pending != NULL) {
		*j = b->pending;
		*line = b->pending_line;
		b->pending = NULL;
		return 1;
	}
	for (;;) {
		rc = next_json(b, j, line);
		if (rc <= 0)
			return rc;
		rc = skip_line(b, *j, *line);
		if (rc == 0)
			return 1;
		json_decref(*j);
		if (rc < 0)
			return rc;
	}
}

/* A chain named only by checkpoints (its records are all gone): walked
** as empty, so that the truncation shows. */
static int unseen_chain(struct bsource *b, struct vchain *c)
{
	struct vchain *u;

	while (b->next_unseen < b->nchains) {
		u = &b->chains[b->next_unseen++];
		if (was_seen(b, u->ws) || u->ncps == 0)
			continue;
		c->ws = strdup(u->ws);
		if (c->ws == NULL)
			return -ENOMEM;
		take_cps(b, u->ws, c);
		return 1;
	}
	return 0;
}

static int wanted(const struct bsource *b, json_t *j)
{
	const char *ws = json_string_value(json_object_get(j, "ws"));

	return b->o->ws == NULL || ws == NULL || strcmp(ws, b->o->ws) == 0;
}

/* A line between chains that is not a start line: a record of a chain
** the caller did not ask for is skipped, anything else is out of place. */
static int outside_chain(struct bsource *b, json_t *j, size_t line)
{
	const char *t = line_type(j);

	if (strcmp(t, "record") == 0 && !wanted(b, j))
		return 0;
	return bad(b, line, "a %s line where a chain's start line should be",
		   *t ? t : "untyped");
}

static int b_next_chain(struct vsource *src, struct vchain *c)
{
	struct bsource *b = (struct bsource *)src;
	size_t line;
	json_t *j;
	int rc;

	for (;;) {
		rc = b->eof ? 0 : next_walk_line(b, &j, &line);
		if (rc < 0)
			return rc;
		if (rc == 0) {
			b->eof = 1;
			return unseen_chain(b, c);
		}
		if (strcmp(line_type(j), "start") != 0) {
			rc = outside_chain(b, j, line);
		} else if (wanted(b, j)) {
			rc = chain_from_start(b, j, line, c);
			b->in_chain = rc > 0;
		}
		json_decref(j);
		if (rc != 0)
			return rc;
	}
}

static int record_strings(struct bsource *b, json_t *j, size_t line,
			  struct audit_record *r)
{
	static const char *const names[N_STR_FIELDS] = {
		"ws", "host", "layer", "comm", "op", "path", "path2",
		"result", "detail", "fp",
	};
	const char **dst[N_STR_FIELDS] = {
		&r->ws, &r->host, &r->layer, &r->comm, &r->op, &r->path,
		&r->path2, &r->result, &r->detail, &r->fp,
	};
	int i, rc;

	for (i = 0; i < N_STR_FIELDS; i++) {
		rc = get_str(b, j, names[i], i, line, dst[i]);
		if (rc < 0)
			return rc;
	}
	return 0;
}

static int record_numbers(struct bsource *b, json_t *j, size_t line,
			  struct audit_record *r)
{
	static const char *const names[] = {
		"seq", "time_ns", "uid", "gid", "pid", "ino", "bytes",
	};
	int64_t *dst[] = {
		&r->seq, &r->time_ns, &r->uid, &r->gid, &r->pid, &r->ino,
		&r->bytes,
	};
	size_t i;
	int rc;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		rc = get_int(b, j, names[i], line, dst[i]);
		if (rc < 0)
			return rc;
	}
	return 0;
}

/* "time" is for people and is not hashed: it must agree with time_ns, or
** a reader of the bundle could be shown a different time. */
static int record_time(struct bsource *b, json_t *j, size_t line,
		       const struct audit_record *r)
{
	const char *t = json_string_value(json_object_get(j, "time"));
	char want[48];

	audit_format_time(r->time_ns, want, sizeof(want));
	if (t != NULL && strcmp(t, want) != 0)
		return bad(b, line, "record %" PRId64 ": \"time\" %s does not "
			   "match time_ns", r->seq, t);
	return 0;
}

static int parse_record(struct bsource *b, json_t *j, size_t line,
			struct audit_record *r)
{
	int rc;

	memset(r, 0, sizeof(*r));
	rc = record_strings(b, j, line, r);
	if (rc == 0)
		rc = record_numbers(b, j, line, r);
	if (rc == 0)
		rc = record_time(b, j, line, r);
	if (rc == 0)
		rc = get_hash(b, j, "leaf", line, r->leaf);
	if (rc == 0)
		rc = get_hash(b, j, "head", line, r->head);
	return rc;
}

static int b_next_record(struct vsource *src, struct audit_record *r)
{
	struct bsource *b = (struct bsource *)src;
	size_t line;
	json_t *j;
	int rc;

	json_decref(b->cur);
	b->cur = NULL;
	if (!b->in_chain)
		return 0;
	rc = next_walk_line(b, &j, &line);
	if (rc <= 0) {
		b->in_chain = 0;
		b->eof = rc == 0;
		return rc;
	}
	if (strcmp(line_type(j), "start") == 0) {
		/* The next chain's: keep it for b_next_chain. */
		b->pending = j;
		b->pending_line = line;
		b->in_chain = 0;
		return 0;
	}
	if (strcmp(line_type(j), "record") != 0) {
		rc = bad(b, line, "unknown line type \"%s\"", line_type(j));
		json_decref(j);
		return rc;
	}
	b->cur = j;
	rc = parse_record(b, j, line, r);
	return rc < 0 ? rc : 1;
}

static void bsource_free(struct bsource *b)
{
	size_t i;

	audit_lines_close(b->lines);
	for (i = 0; i < b->nchains; i++)
		vchain_clear(&b->chains[i]);
	free(b->chains);
	for (i = 0; i < b->nseen; i++)
		free(b->seen[i]);
	free(b->seen);
	for (i = 0; i < N_STR_FIELDS; i++)
		free(b->b64[i]);
	json_decref(b->pending);
	json_decref(b->cur);
	audit_key_free(b->bundle_key);
}

/* A bundle whose header or key is wrong fails as a whole, at seq 0. */
static void fail_bundle(struct bsource *b, struct audit_verify_result *res)
{
	res->ok = 0;
	res->bad_seq = 0;
	res->bad_ws[0] = '\0';
	(void)snprintf(res->why, sizeof(res->why), "%s", b->src.why);
}

int audit_verify_bundle(const char *path, const struct audit_verify_opts *o,
			struct audit_verify_result *res, char *err,
			size_t errlen)
{
	struct bsource b = { .src = { b_next_chain, b_next_record, NULL,
				      "" } };
	int rc;

	memset(res, 0, sizeof(*res));
	if (o->from != 0 || o->to != 0) {
		audit_set_err(err, errlen, "a seq range applies to audit.db "
			      "only");
		return -EINVAL;
	}
	b.path = path;
	b.o = o;
	rc = pass1(&b, err, errlen);
	if (rc == 0)
		rc = audit_lines_open(path, &b.lines, err, errlen);
	if (rc == 0) {
		/* The header was checked in pass 1. */
		size_t len, line;

		if (audit_lines_next(b.lines, &len, &line) == NULL)
			rc = -EIO;
	}
	if (rc == 0) {
		rc = walk(&b.src, res, err, errlen);
	} else if (rc == BAD_INPUT) {
		fail_bundle(&b, res);
		rc = 0;
	} else if (b.src.why[0] != '\0') {
		audit_set_err(err, errlen, "%s", b.src.why);
	}
	bsource_free(&b);
	return rc;
}
