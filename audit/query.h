/*
** Selecting audit records: the filters of `wsctl audit search`, `report`
** and `export`, the parsers of their values, and the SQL they become.
**
** A filter is turned into one WHERE clause whose values are all bound
** parameters (never spliced into the text), so a path glob or a process
** name holding quotes, arbitrary bytes or SQL is only ever data.  Text is bound as text with its exact length: audit.db stores
** names as raw bytes in TEXT columns, and a blob would never compare equal.
**
** Two orders are offered.  A search answers in time order (time_ns, ws,
** seq) across every chain, which the time-leading indexes serve.  An
** incremental pull (--after-seq, --checkpoint) and an export walk one chain
** at a time in seq order from a starting point, which the primary key
** (ws, seq) serves; the chains themselves are listed by skipping from one
** ws value to the next in that key, a few page reads each, instead of a
** scan.
*/
#ifndef WSFS_AUDIT_QUERY_H
#define WSFS_AUDIT_QUERY_H

#include <stddef.h>
#include <stdint.h>

struct sqlite3;
struct sqlite3_stmt;

#define AUDIT_QUERY_MAX_OPS 64

enum audit_result_kind {
	AUDIT_RESULT_ANY,
	AUDIT_RESULT_OK,	/* "0" */
	AUDIT_RESULT_DENIED,	/* EACCES, EPERM, EROFS, EDQUOT */
	AUDIT_RESULT_FAILED,	/* anything but "0" */
	AUDIT_RESULT_ERRNO,	/* one errno name */
};

struct audit_filter {
	const char *ws;			/* NULL: every chain; "": the host's */
	int64_t since_ns;		/* INT64_MIN: open */
	int64_t until_ns;		/* INT64_MAX: open (exclusive bound) */
	const char *ops[AUDIT_QUERY_MAX_OPS];	/* static names */
	size_t nops;
	const char *path_glob;		/* path or path2 GLOB this */
	int has_uid, has_pid;
	int64_t uid, pid;
	const char *comm;		/* exact */
	enum audit_result_kind result;
	char errname[24];		/* AUDIT_RESULT_ERRNO: as stored */
	int64_t limit;			/* 0: no limit */
};

/* An empty filter: everything matches. */
void audit_filter_init(struct audit_filter *f);

/* Whether F restricts time. */
int audit_filter_has_time(const struct audit_filter *f);

/* ---- values --------------------------------------------------------------
** Each parser returns 0, or -EINVAL with a one-line reason in ERR (no
** "wsctl:" prefix) that names the value as typed. */

/* A point in time, for --since and --until: ISO 8601 ("2026-11-27",
** "2026-11-27T17:02", "2026-11-27 17:02:30.5+02:00", a zone of Z, +HH,
** +HHMM or +HH:MM; no zone means local time), "now", "today" and
** "yesterday" (local midnight), "recent" (NOW_NS - 10 minutes), or a
** relative "-N" with a unit s, m, h, d or w.  Into *OUT as ns since the
** epoch. */
int audit_parse_time(const char *s, int64_t now_ns, int64_t *out, char *err,
		     size_t errlen);

/* A comma list of op names (duplicates folded) into F->ops. */
int audit_filter_set_ops(struct audit_filter *f, const char *list, char *err,
			 size_t errlen);

/* ok, denied, failed, or an errno name ("EACCES", in any case; an alias
** such as EWOULDBLOCK selects the name records store, EAGAIN). */
int audit_filter_set_result(struct audit_filter *f, const char *s, char *err,
			    size_t errlen);

/* A uid number or a user name known to this host. */
int audit_filter_set_uid(struct audit_filter *f, const char *s, char *err,
			 size_t errlen);

/* A decimal number 0 .. INT64_MAX with no sign, blank or trailing text;
** POSITIVE refuses 0. WHAT names the value in the message. */
int audit_parse_int(const char *s, int positive, const char *what,
		    int64_t *out, char *err, size_t errlen);

/* The op names this build records and filters on, NULL-terminated. */
extern const char *const audit_op_names[];

/* The static name of OP, or NULL if OP is not one. */
const char *audit_op_lookup(const char *op);

/* ---- SQL -----------------------------------------------------------------
** A statement under construction: its text and the values to bind to its
** "?" parameters, in order. */

#define AUDIT_SQL_MAX_BINDS (AUDIT_QUERY_MAX_OPS + 16)

struct audit_sql_bind {
	int is_text;
	int64_t i;
	const char *s;		/* not copied: must outlive the statement */
};

struct audit_sql {
	char *text;
	size_t len, cap;
	int failed;		/* out of memory or too many parameters */
	struct audit_sql_bind binds[AUDIT_SQL_MAX_BINDS];
	int nbinds;
};

void audit_sql_init(struct audit_sql *q);
void audit_sql_free(struct audit_sql *q);
void audit_sql_add(struct audit_sql *q, const char *text);
void audit_sql_int(struct audit_sql *q, int64_t v);	/* "?" bound to V */
void audit_sql_text(struct audit_sql *q, const char *s);

enum {
	/* The caller restricts ws itself (a per-chain walk): F->ws is left out. */
	AUDIT_WHERE_NO_WS = 1 << 0,
	/* Result filters are written so that no index serves them (the
	** search walks the time index instead; see query.c). */
	AUDIT_WHERE_RESULT_SCAN = 1 << 1,
};

/* Appends " AND cond" for every restriction of F but its limit (the caller
** has written "WHERE 1" or its own first condition, and adds ORDER BY and
** LIMIT after). */
void audit_sql_filter(struct audit_sql *q, const struct audit_filter *f,
		      unsigned flags);

/* Prepares Q's text on DB and binds its values. 0, or -EIO / -ENOMEM with
** SQLite's message in ERR. */
int audit_sql_prepare(struct audit_sql *q, struct sqlite3 *db,
		      struct sqlite3_stmt **st, char *err, size_t errlen);

/* The time-ordered search: every record column (AUDIT_RECORD_COLUMNS) of
** the matches, ordered by time_ns, ws, seq, at most F->limit. */
int audit_query_search(struct sqlite3 *db, const struct audit_filter *f,
		       struct sqlite3_stmt **st, char *err, size_t errlen);

/* One chain's matches after seq AFTER in seq order, at most LIMIT (0: all);
** F->ws and F->limit are ignored. */
int audit_query_chain(struct sqlite3 *db, const struct audit_filter *f,
		      const char *ws, int64_t after, int64_t limit,
		      struct sqlite3_stmt **st, char *err, size_t errlen);

/* Lists the chains in ws order without scanning the records: each call
** puts the next chain's name (malloc'd) in *WS and returns 1, or returns 0
** at the end, or -EIO / -ENOMEM with the reason in ERR. */
struct audit_chains;
int audit_chains_open(struct sqlite3 *db, struct audit_chains **out,
		      char *err, size_t errlen);
int audit_chains_next(struct audit_chains *c, char **ws, char *err,
		      size_t errlen);
void audit_chains_close(struct audit_chains *c);

/* SQLite's message for DB into ERR, prefixed with WHAT. Returns -EIO. */
int audit_sql_error(struct sqlite3 *db, const char *what, char *err,
		    size_t errlen);

#endif
