/*
** Unit tests of the audit readers: the time parser (every accepted form
** and every malformed one), the filter values, the SQL a filter becomes
** and what it selects from a real audit.db, the escaping of names with any
** bytes, CSV quoting, and the OCSF mapping.
**
** Times are checked with TZ=UTC so that local-time forms have one answer;
** the zoned forms are checked to be independent of TZ by comparing them
** with TZ set elsewhere.  Query results are checked against a store filled
** with records whose every field is chosen, so each filter's effect is
** known exactly.
*/
#include <errno.h>
#include <jansson.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "format.h"
#include "query.h"
#include "store.h"
#include "testutil.h"

#define NS 1000000000LL
/* 2026-11-27T17:02:30Z */
#define T0 (1795798950LL * NS)

static void use_tz(const char *tz)
{
	CHECK(setenv("TZ", tz, 1) == 0, "setenv");
	tzset();
}

static int64_t parse_ok(const char *s, int64_t now)
{
	char err[256];
	int64_t v = 0;

	if (audit_parse_time(s, now, &v, err, sizeof(err)) != 0)
		test_fail(__FILE__, __LINE__, s, "refused: %s", err);
	return v;
}

static void parse_bad(const char *s)
{
	char err[256] = "";
	int64_t v;

	if (audit_parse_time(s, T0, &v, err, sizeof(err)) != -EINVAL)
		test_fail(__FILE__, __LINE__, s, "accepted as %lld",
			  (long long)v);
	CHECK(strncmp(err, "bad time '", 10) == 0, "message '%s'", err);
}

/* ---- times ---------------------------------------------------------- */

static void test_iso_times(void)
{
	use_tz("UTC0");
	CHECK(parse_ok("2026-11-27T17:02:30Z", 0) == T0, "Z");
	CHECK(parse_ok("2026-11-27t17:02:30z", 0) == T0, "lowercase");
	CHECK(parse_ok("2026-11-27 17:02:30", 0) == T0, "space, local");
	CHECK(parse_ok("2026-11-27T17:02", 0) == T0 - 30 * NS, "no seconds");
	CHECK(parse_ok("2026-11-27", 0) == T0 - (17 * 3600 + 150) * NS,
	      "date only");
	CHECK(parse_ok("2026-11-27T19:02:30+02:00", 0) == T0, "+02:00");
	CHECK(parse_ok("2026-11-27T19:02:30+0200", 0) == T0, "+0200");
	CHECK(parse_ok("2026-11-27T19:02:30+02", 0) == T0, "+02");
	CHECK(parse_ok("2026-11-27T12:32:30-04:30", 0) == T0, "-04:30");
	CHECK(parse_ok("2026-11-27T17:02:30.5Z", 0) == T0 + NS / 2, ".5");
	CHECK(parse_ok("2026-11-27T17:02:30,25Z", 0) == T0 + NS / 4, ",25");
	CHECK(parse_ok("2026-11-27T17:02:30.123456789Z", 0) ==
	      T0 + 123456789, "ns");
	CHECK(parse_ok("2024-02-29", 0) == 1709164800LL * NS, "leap day");
	CHECK(parse_ok("2000-02-29T00:00Z", 0) == 951782400LL * NS, "y2000");
	CHECK(parse_ok("1970-01-01T00:00:00Z", 0) == 0, "epoch");
	CHECK(parse_ok("1969-12-31T23:59:59Z", 0) == -NS, "before epoch");
	/* Zoned times do not depend on TZ; local ones do. */
	use_tz("EST5");
	CHECK(parse_ok("2026-11-27T17:02:30Z", 0) == T0, "Z under EST");
	CHECK(parse_ok("2026-11-27 12:02:30", 0) == T0, "local under EST");
	use_tz("UTC0");
}

static void test_word_times(void)
{
	int64_t midnight = T0 - (17 * 3600 + 150) * NS;

	use_tz("UTC0");
	CHECK(parse_ok("now", T0) == T0, "now");
	CHECK(parse_ok("recent", T0) == T0 - 600 * NS, "recent");
	CHECK(parse_ok("today", T0 + 7) == midnight, "today");
	CHECK(parse_ok("yesterday", T0) == midnight - 86400 * NS, "yesterday");
	CHECK(parse_ok("-2h", T0) == T0 - 7200 * NS, "-2h");
	CHECK(parse_ok("-30m", T0) == T0 - 1800 * NS, "-30m");
	CHECK(parse_ok("-45s", T0) == T0 - 45 * NS, "-45s");
	CHECK(parse_ok("-7d", T0) == T0 - 7 * 86400 * NS, "-7d");
	CHECK(parse_ok("-1w", T0) == T0 - 604800 * NS, "-1w");
	CHECK(parse_ok("-0s", T0) == T0, "-0s");
	use_tz("EST5");
	CHECK(parse_ok("today", T0) == midnight + 5 * 3600 * NS,
	      "local midnight");
	use_tz("UTC0");
}

static void test_bad_times(void)
{
	static const char *const bad[] = {
		"", " ", "now ", " now", "Now", "tomorrow", "soon", "17:00",
		"2026", "2026-11", "2026-1-5", "26-11-27", "2026/11/27",
		"2026-11-27T", "2026-11-27T17", "2026-11-27T17:2",
		"2026-11-27T1:02", "2026-11-27X17:02", "2026-11-27Z",
		"2026-11-27+02:00", "2026-13-01", "2026-00-10", "2026-11-00",
		"2026-11-31", "2026-02-29", "2100-02-29", "2026-11-27T24:00",
		"2026-11-27T17:60", "2026-11-27T17:02:60", "2026-11-27T17:02:3",
		"2026-11-27T17:02:30.", "2026-11-27T17:02:30.1234567890Z",
		"2026-11-27T17:02:30.5.5Z", "2026-11-27T17:02:30ZZ",
		"2026-11-27T17:02:30Z junk", "2026-11-27T17:02:30+",
		"2026-11-27T17:02:30+2", "2026-11-27T17:02:30+02:0",
		"2026-11-27T17:02:30+24:00", "2026-11-27T17:02:30+02:60",
		"2026-11-27T17:02:30+02:00:00", "2026-11-27T17:02:30 +02:00",
		"-2", "-h", "-2x", "-2hh", "2h", "+2h", "--2h", "-2 h", "- 2h",
		"-2H", "-99999999999999999999h", "-9223372036854775807w",
		"9999-12-31T00:00:00Z", "1000-01-01T00:00:00Z",
		"2026-11-27\n", "\xff", "2026-11-27T17:02:30\xc2\xa0",
	};
	char err[256];
	int64_t v;
	size_t i;

	use_tz("UTC0");
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		parse_bad(bad[i]);
	/* The message names the value, without its control bytes. */
	CHECK_RC(audit_parse_time("x\n\x1b[2J", T0, &v, err, sizeof(err)),
		 -EINVAL);
	CHECK(strncmp(err, "bad time 'x??[2J': expected ISO 8601", 36) == 0,
	      "message '%s'", err);
	CHECK(strstr(err, "today") && strstr(err, "recent") &&
	      strstr(err, "-2h"), "message '%s'", err);
	CHECK_RC(audit_parse_time("2026-02-30", T0, &v, err, sizeof(err)),
		 -EINVAL);
	CHECK(strstr(err, "no such day") != NULL, "message '%s'", err);
}

/* ---- filter values -------------------------------------------------- */

static void test_ops(void)
{
	struct audit_filter f;
	char err[1280];

	audit_filter_init(&f);
	CHECK_RC(audit_filter_set_ops(&f, "open", err, sizeof(err)), 0);
	CHECK(f.nops == 1 && strcmp(f.ops[0], "open") == 0, "open");
	CHECK_RC(audit_filter_set_ops(&f, "create,unlink,create,copy-up,"
				      "copy_file_range,audit-search", err,
				      sizeof(err)), 0);
	CHECK(f.nops == 5, "duplicates folded: %zu", f.nops);
	CHECK_RC(audit_filter_set_ops(&f, "open,opne", err, sizeof(err)),
		 -EINVAL);
	CHECK(strncmp(err, "unknown op 'opne'; ops are: open, release,", 41)
	      == 0, "message '%s'", err);
	CHECK(strstr(err, "statfs") != NULL, "whole list: '%s'", err);
	CHECK_RC(audit_filter_set_ops(&f, "", err, sizeof(err)), -EINVAL);
	CHECK_RC(audit_filter_set_ops(&f, "open,", err, sizeof(err)), -EINVAL);
	CHECK_RC(audit_filter_set_ops(&f, ",open", err, sizeof(err)), -EINVAL);
	CHECK_RC(audit_filter_set_ops(&f, "OPEN", err, sizeof(err)), -EINVAL);
	CHECK_RC(audit_filter_set_ops(&f, "open ", err, sizeof(err)), -EINVAL);
	CHECK(audit_op_lookup("rename") != NULL, "rename");
	CHECK(audit_op_lookup("truncate") == NULL, "truncate is setattr");
}

static void test_results(void)
{
	struct audit_filter f;
	char err[256];

	audit_filter_init(&f);
	CHECK_RC(audit_filter_set_result(&f, "ok", err, sizeof(err)), 0);
	CHECK(f.result == AUDIT_RESULT_OK, "ok");
	CHECK_RC(audit_filter_set_result(&f, "denied", err, sizeof(err)), 0);
	CHECK(f.result == AUDIT_RESULT_DENIED, "denied");
	CHECK_RC(audit_filter_set_result(&f, "failed", err, sizeof(err)), 0);
	CHECK(f.result == AUDIT_RESULT_FAILED, "failed");
	CHECK_RC(audit_filter_set_result(&f, "EDQUOT", err, sizeof(err)), 0);
	CHECK(f.result == AUDIT_RESULT_ERRNO && streq(f.errname, "EDQUOT"),
	      "EDQUOT");
	CHECK_RC(audit_filter_set_result(&f, "enoent", err, sizeof(err)), 0);
	CHECK(streq(f.errname, "ENOENT"), "lowercase: %s", f.errname);
	CHECK_RC(audit_filter_set_result(&f, "EWOULDBLOCK", err, sizeof(err)),
		 0);
	CHECK(streq(f.errname, "EAGAIN"), "alias: %s", f.errname);
	CHECK_RC(audit_filter_set_result(&f, "EBOGUS", err, sizeof(err)),
		 -EINVAL);
	CHECK(strncmp(err, "--result 'EBOGUS': expected ok, denied, failed",
		      46) == 0, "message '%s'", err);
	CHECK_RC(audit_filter_set_result(&f, "", err, sizeof(err)), -EINVAL);
	CHECK_RC(audit_filter_set_result(&f, "Denied", err, sizeof(err)),
		 -EINVAL);
	CHECK_RC(audit_filter_set_result(&f, "EACCESSSSSSSSSSSSSSSSSSSSSSSS",
					 err, sizeof(err)), -EINVAL);
}

static void test_numbers(void)
{
	struct audit_filter f;
	char err[256];
	int64_t v;

	CHECK_RC(audit_parse_int("42", 1, "--limit", &v, err, sizeof(err)), 0);
	CHECK(v == 42, "42");
	CHECK_RC(audit_parse_int("0", 0, "--pid", &v, err, sizeof(err)), 0);
	CHECK_RC(audit_parse_int("0", 1, "--limit", &v, err, sizeof(err)),
		 -EINVAL);
	CHECK(strstr(err, "--limit '0'") != NULL, "message '%s'", err);
	CHECK_RC(audit_parse_int("-1", 0, "--pid", &v, err, sizeof(err)),
		 -EINVAL);
	CHECK_RC(audit_parse_int("1e3", 0, "--pid", &v, err, sizeof(err)),
		 -EINVAL);
	CHECK_RC(audit_parse_int(" 1", 0, "--pid", &v, err, sizeof(err)),
		 -EINVAL);
	CHECK_RC(audit_parse_int("", 0, "--pid", &v, err, sizeof(err)),
		 -EINVAL);
	CHECK_RC(audit_parse_int("9223372036854775807", 0, "--pid", &v, err,
				 sizeof(err)), 0);
	CHECK_RC(audit_parse_int("9223372036854775808", 0, "--pid", &v, err,
				 sizeof(err)), -EINVAL);
	audit_filter_init(&f);
	CHECK_RC(audit_filter_set_uid(&f, "1000", err, sizeof(err)), 0);
	CHECK(f.has_uid && f.uid == 1000, "uid");
	CHECK_RC(audit_filter_set_uid(&f, "root", err, sizeof(err)), 0);
	CHECK(f.uid == 0, "root");
	CHECK_RC(audit_filter_set_uid(&f, "no-such-user-xyz", err,
				      sizeof(err)), -EINVAL);
	CHECK(strstr(err, "no such user") != NULL, "message '%s'", err);
	CHECK_RC(audit_filter_set_uid(&f, "12x", err, sizeof(err)), -EINVAL);
	CHECK_RC(audit_filter_set_uid(&f, "4294967296", err, sizeof(err)),
		 -EINVAL);
}

/* ---- the SQL -------------------------------------------------------- */

static void test_sql_text(void)
{
	struct audit_filter f;
	struct audit_sql q;
	char err[256];

	audit_filter_init(&f);
	f.ws = "agent1";
	f.since_ns = 5;
	f.until_ns = 9;
	CHECK_RC(audit_filter_set_ops(&f, "create,unlink", err, sizeof(err)),
		 0);
	f.path_glob = "/src/*'; DROP TABLE records; --";
	f.has_uid = 1;
	f.uid = 1000;
	f.has_pid = 1;
	f.pid = 77;
	f.comm = "py\"thon";
	f.result = AUDIT_RESULT_DENIED;
	audit_sql_init(&q);
	audit_sql_add(&q, "WHERE 1");
	audit_sql_filter(&q, &f, 0);
	CHECK(!q.failed, "built");
	CHECK(streq(q.text, "WHERE 1 AND +ws = ? AND time_ns >= ? AND "
		    "time_ns < ? AND op IN (?, ?) AND (path GLOB ? OR path2 "
		    "GLOB ?) AND uid = ? AND pid = ? AND comm = ? AND result "
		    "!= '0' AND result IN (?, ?, ?, ?)"), "text: %s", q.text);
	CHECK(q.nbinds == 14, "binds %d", q.nbinds);
	CHECK(q.binds[0].is_text && streq(q.binds[0].s, "agent1"), "ws");
	CHECK(!q.binds[1].is_text && q.binds[1].i == 5, "since");
	CHECK(streq(q.binds[5].s, f.path_glob), "glob bound, not pasted");
	CHECK(streq(q.binds[10].s, "EACCES") && streq(q.binds[13].s,
						       "EDQUOT"), "denied");
	audit_sql_free(&q);

	/* A whole chain without a limit is read on the primary key. */
	audit_filter_init(&f);
	f.ws = "agent1";
	audit_sql_init(&q);
	audit_sql_filter(&q, &f, 0);
	CHECK(streq(q.text, " AND ws = ?"), "text: %s", q.text);
	audit_sql_free(&q);
	f.limit = 5;
	audit_sql_init(&q);
	audit_sql_filter(&q, &f, 0);
	CHECK(streq(q.text, " AND +ws = ?"), "text: %s", q.text);
	audit_sql_free(&q);
	f.since_ns = 5;
	f.until_ns = 9;

	/* Per-chain walks leave ws to the caller. */
	audit_sql_init(&q);
	audit_sql_add(&q, "WHERE 1");
	f.result = AUDIT_RESULT_FAILED;
	f.nops = 0;
	f.path_glob = NULL;
	f.has_uid = f.has_pid = 0;
	f.comm = NULL;
	audit_sql_filter(&q, &f, AUDIT_WHERE_NO_WS);
	CHECK(streq(q.text, "WHERE 1 AND time_ns >= ? AND time_ns < ? AND "
		    "result != '0' AND result > '0'"), "text: %s", q.text);
	audit_sql_free(&q);
}

/* A store with records whose fields are all known. */
struct fixture {
	const char *state;
	struct audit_store *s;
	sqlite3 *db;
};

static void add(struct audit_store *s, const char *ws, int64_t t,
		int64_t uid, int64_t pid, const char *comm, const char *op,
		const char *path, const char *path2, const char *result)
{
	struct audit_record r, *p = &r;
	char err[512];

	memset(&r, 0, sizeof(r));
	r.time_ns = t;
	r.host = "h";
	r.ws = ws;
	r.layer = "upper";
	r.uid = uid;
	r.gid = uid;
	r.pid = pid;
	r.comm = comm;
	r.op = op;
	r.path = path;
	r.path2 = path2;
	r.result = result;
	r.detail = "";
	r.fp = "";
	CHECK_RC(audit_store_append(s, &p, 1, err, sizeof(err)), 0);
}

/* A fresh state directory under the test's temporary one. */
static const char *new_state(void)
{
	static char dir[4096];
	static int n;

	snprintf(dir, sizeof(dir), "%s/state%d", test_tmpdir(), n++);
	CHECK(mkdir(dir, 0700) == 0, "mkdir %s", dir);
	return dir;
}

static void fixture_open(struct fixture *x)
{
	char err[512];

	x->state = new_state();
	CHECK_RC(audit_store_open(x->state, AUDIT_STORE_CREATE, &x->s, err,
				  sizeof(err)), 0);
	add(x->s, "a", 100, 1000, 10, "bash", "create", "/x/one", "", "0");
	add(x->s, "b", 150, 1001, 20, "python3", "open", "/y/two", "", "EACCES");
	add(x->s, "a", 200, 1000, 10, "bash", "rename", "/x/one", "/z/one",
	    "0");
	add(x->s, "", 250, 0, 30, "wsctl", "audit-search", "", "", "0");
	add(x->s, "a", 300, 1002, 11, "make", "unlink", "/x/bad\n\xff", "",
	    "ENOENT");
	add(x->s, "b", 300, 1001, 20, "python3", "open", "/x/three", "",
	    "EDQUOT");
	add(x->s, "a", 400, 1000, 12, "ba'sh", "open", "/x/four", "", "0");
	x->db = audit_store_db(x->s);
}

/* "ws:seq ws:seq ..." of what F selects in time order. */
static void selected(struct fixture *x, const struct audit_filter *f,
		     char *out, size_t len)
{
	struct audit_record r;
	sqlite3_stmt *st;
	char err[256];
	size_t off = 0;

	out[0] = '\0';
	CHECK_RC(audit_query_search(x->db, f, &st, err, sizeof(err)), 0);
	while (sqlite3_step(st) == SQLITE_ROW) {
		audit_record_from_row(&r, st, 0);
		off += (size_t)snprintf(out + off, len - off, "%s%s:%lld",
					off ? " " : "", r.ws,
					(long long)r.seq);
	}
	sqlite3_finalize(st);
}

#define EXPECT(x, f, want)						\
	do {								\
		char got_[256];						\
		selected((x), (f), got_, sizeof(got_));			\
		CHECK(streq(got_, (want)), "got '%s', want '%s'", got_,	\
		      (want));						\
	} while (0)

static void test_query_results(void)
{
	struct audit_filter f;
	struct fixture x;
	char err[256];

	fixture_open(&x);
	audit_filter_init(&f);
	EXPECT(&x, &f, "a:1 b:1 a:2 :1 a:3 b:2 a:4");
	f.limit = 3;
	EXPECT(&x, &f, "a:1 b:1 a:2");
	audit_filter_init(&f);
	f.ws = "a";
	EXPECT(&x, &f, "a:1 a:2 a:3 a:4");
	f.ws = "";
	EXPECT(&x, &f, ":1");
	audit_filter_init(&f);
	f.since_ns = 200;
	f.until_ns = 300;
	EXPECT(&x, &f, "a:2 :1");
	audit_filter_init(&f);
	CHECK_RC(audit_filter_set_ops(&f, "open,unlink", err, sizeof(err)), 0);
	EXPECT(&x, &f, "b:1 a:3 b:2 a:4");
	audit_filter_init(&f);
	f.path_glob = "/z/*";
	EXPECT(&x, &f, "a:2");		/* path2 matches */
	f.path_glob = "/x/*";
	EXPECT(&x, &f, "a:1 a:2 a:3 b:2 a:4");
	f.path_glob = "/x/bad\n*";
	EXPECT(&x, &f, "a:3");
	audit_filter_init(&f);
	f.has_uid = 1;
	f.uid = 1001;
	EXPECT(&x, &f, "b:1 b:2");
	audit_filter_init(&f);
	f.has_pid = 1;
	f.pid = 10;
	EXPECT(&x, &f, "a:1 a:2");
	audit_filter_init(&f);
	f.comm = "ba'sh";
	EXPECT(&x, &f, "a:4");
	audit_filter_init(&f);
	f.result = AUDIT_RESULT_OK;
	EXPECT(&x, &f, "a:1 a:2 :1 a:4");
	f.result = AUDIT_RESULT_DENIED;
	EXPECT(&x, &f, "b:1 b:2");
	f.result = AUDIT_RESULT_FAILED;
	EXPECT(&x, &f, "b:1 a:3 b:2");
	CHECK_RC(audit_filter_set_result(&f, "ENOENT", err, sizeof(err)), 0);
	EXPECT(&x, &f, "a:3");
	audit_store_close(x.s);
}

static void test_chain_walks(void)
{
	struct audit_chains *c;
	struct audit_filter f;
	struct fixture x;
	sqlite3_stmt *st;
	char err[256], *ws, all[64] = "";
	int n = 0;

	fixture_open(&x);
	CHECK_RC(audit_chains_open(x.db, &c, err, sizeof(err)), 0);
	while (audit_chains_next(c, &ws, err, sizeof(err)) == 1) {
		strcat(all, "[");
		strcat(all, ws);
		strcat(all, "]");
		free(ws);
	}
	audit_chains_close(c);
	CHECK(streq(all, "[][a][b]"), "chains %s", all);
	audit_filter_init(&f);
	CHECK_RC(audit_query_chain(x.db, &f, "a", 1, 2, &st, err, sizeof(err)),
		 0);
	while (sqlite3_step(st) == SQLITE_ROW)
		CHECK(sqlite3_column_int64(st, 1) == 2 + n++, "seq order");
	sqlite3_finalize(st);
	CHECK(n == 2, "limit: %d", n);
	audit_store_close(x.s);
}

/* The plan of F's search without a limit: a filter on an indexed column
** must not scan the whole table.  (With a limit, SQLite may rightly prefer
** walking the time index in order and stopping early; on a table this
** small that choice depends on page counts, so it is not checked here but
** by tests/bench/audit_query.sh.) */
static void check_plan(sqlite3 *db, const struct audit_filter *f,
		       const char *want)
{
	struct audit_sql q;
	sqlite3_stmt *st;
	char err[256], plan[1024] = "";
	const char *detail;

	audit_sql_init(&q);
	audit_sql_add(&q, "EXPLAIN QUERY PLAN SELECT " AUDIT_RECORD_COLUMNS
		      " FROM records WHERE 1");
	audit_sql_filter(&q, f, 0);
	audit_sql_add(&q, " ORDER BY time_ns, ws, seq");
	CHECK_RC(audit_sql_prepare(&q, db, &st, err, sizeof(err)), 0);
	audit_sql_free(&q);
	while (sqlite3_step(st) == SQLITE_ROW) {
		detail = (const char *)sqlite3_column_text(st, 3);
		strncat(plan, detail, sizeof(plan) - strlen(plan) - 2);
		strcat(plan, ";");
	}
	sqlite3_finalize(st);
	CHECK(strstr(plan, want) != NULL, "plan '%s' lacks '%s'", plan, want);
}

/* Enough records, in many pages, for SQLite to cost a full scan as what it
** is on a real log. */
static void fixture_big(struct fixture *x)
{
	static const char *const ops[] = { "open", "release", "create",
					   "unlink", "rename" };
	static const char *const results[] = { "0", "0", "0", "0", "0", "0",
					       "ENOENT", "EACCES" };
	char err[512], path[64];
	int i;

	x->state = new_state();
	CHECK_RC(audit_store_open(x->state, AUDIT_STORE_CREATE, &x->s, err,
				  sizeof(err)), 0);
	for (i = 0; i < 5000; i++) {
		snprintf(path, sizeof(path), "/src/dir%d/file%d.c", i % 50, i);
		add(x->s, i % 3 ? "a" : "b", 1000 + i, 1000 + i % 4,
		    2000 + i % 40, "cc1", ops[i % 5], path, "",
		    results[i % 8]);
	}
	x->db = audit_store_db(x->s);
}

static void test_plans(void)
{
	struct audit_filter f;
	struct fixture x;
	char err[256];

	fixture_big(&x);
	audit_filter_init(&f);
	f.since_ns = 1;
	check_plan(x.db, &f, "records_time");
	audit_filter_init(&f);
	CHECK_RC(audit_filter_set_ops(&f, "open", err, sizeof(err)), 0);
	f.since_ns = 1;
	check_plan(x.db, &f, "records_op");
	audit_filter_init(&f);
	f.has_uid = 1;
	check_plan(x.db, &f, "records_uid");
	/* No pid index (store.h): a pid search in a time window walks the
	** time index. */
	audit_filter_init(&f);
	f.has_pid = 1;
	f.since_ns = 1;
	check_plan(x.db, &f, "records_time");
	audit_filter_init(&f);
	f.result = AUDIT_RESULT_DENIED;
	check_plan(x.db, &f, "records_failed");
	f.result = AUDIT_RESULT_FAILED;
	check_plan(x.db, &f, "records_failed");
	CHECK_RC(audit_filter_set_result(&f, "ENOENT", err, sizeof(err)), 0);
	check_plan(x.db, &f, "records_failed");
	/* A workspace with a time range: the range, not the whole chain. */
	audit_filter_init(&f);
	f.ws = "a";
	f.since_ns = 1;
	f.until_ns = 2;
	check_plan(x.db, &f, "records_time");
	audit_store_close(x.s);
}

/* ---- escaping ------------------------------------------------------- */

static const char *escaped(const char *s, unsigned flags)
{
	static struct audit_buf b;

	audit_buf_reset(&b);
	audit_escape(&b, s, flags);
	CHECK(!b.oom, "oom");
	return b.p ? b.p : "";
}

static void check_roundtrip(const char *s)
{
	const char *e = escaped(s, AUDIT_ESC_ARROW);
	char back[1024];
	long n;
	size_t i;

	n = audit_unescape(e, strlen(e), back, sizeof(back));
	CHECK(n == (long)strlen(s) && memcmp(back, s, (size_t)n) == 0,
	      "round trip of '%s'", e);
	for (i = 0; e[i] != '\0'; i++)
		CHECK((unsigned char)e[i] >= 0x20 && e[i] != 0x7f,
		      "control byte in '%s'", e);
}

static void test_escape(void)
{
	char s[64];
	int i, j;

	CHECK(streq(escaped("/src/a.c", 0), "/src/a.c"), "plain");
	CHECK(streq(escaped("a\\b", 0), "a\\\\b"), "backslash");
	CHECK(streq(escaped("new\nline\t", 0), "new\\x0aline\\x09"), "ctl");
	CHECK(streq(escaped("\x7f\x1b[2J", 0), "\\x7f\\x1b[2J"), "DEL, ESC");
	CHECK(streq(escaped("bad\xff\xfe", 0), "bad\\xff\\xfe"), "not UTF-8");
	CHECK(streq(escaped("caf\xc3\xa9", 0), "caf\xc3\xa9"), "UTF-8 kept");
	CHECK(streq(escaped("\xe6\x97\xa5\xf0\x9f\x98\x80", 0),
		    "\xe6\x97\xa5\xf0\x9f\x98\x80"), "CJK, emoji kept");
	CHECK(streq(escaped("\xc2\x85", 0), "\\xc2\\x85"), "C1 NEL");
	CHECK(streq(escaped("\xc0\xaf", 0), "\\xc0\\xaf"), "overlong");
	CHECK(streq(escaped("\xed\xa0\x80", 0), "\\xed\\xa0\\x80"),
	      "surrogate");
	CHECK(streq(escaped("\xf4\x90\x80\x80", 0), "\\xf4\\x90\\x80\\x80"),
	      "above U+10FFFF");
	CHECK(streq(escaped("\xe2\x80\xae", 0), "\\xe2\\x80\\xae"), "RLO");
	CHECK(streq(escaped("\xe2\x80\xa8", 0), "\\xe2\\x80\\xa8"), "LS");
	CHECK(streq(escaped("\xef\xbb\xbf", 0), "\\xef\\xbb\\xbf"), "BOM");
	CHECK(streq(escaped("\xc3", 0), "\\xc3"), "cut sequence");
	CHECK(streq(escaped("\xc3(", 0), "\\xc3("), "bad continuation");
	CHECK(streq(escaped("a\xe2\x86\x92" "b", 0), "a\xe2\x86\x92" "b"),
	      "arrow kept");
	CHECK(streq(escaped("a\xe2\x86\x92" "b", AUDIT_ESC_ARROW),
		    "a\\xe2\\x86\\x92b"), "arrow escaped");
	/* The escaped form of a literal "\x41" differs from that of "A". */
	CHECK(!streq(escaped("\\x41", 0), "A"), "no collision");
	CHECK(audit_unescape("\\", 1, s, sizeof(s)) < 0, "lone backslash");
	CHECK(audit_unescape("\\x4", 3, s, sizeof(s)) < 0, "short hex");
	CHECK(audit_unescape("\\xzz", 4, s, sizeof(s)) < 0, "bad hex");
	CHECK(audit_unescape("\\n", 2, s, sizeof(s)) < 0, "unknown escape");
	/* Every pair of bytes, and pseudo-random strings, come back. */
	for (i = 1; i < 256; i++) {
		for (j = 1; j < 256; j += 7) {
			s[0] = (char)i;
			s[1] = (char)j;
			s[2] = '\0';
			check_roundtrip(s);
		}
	}
	srand(7);
	for (i = 0; i < 2000; i++) {
		for (j = 0; j < 40; j++)
			s[j] = (char)(1 + rand() % 255);
		s[40] = '\0';
		check_roundtrip(s);
	}
}

/* ---- CSV ------------------------------------------------------------ */

static void test_csv(void)
{
	struct audit_buf b = { 0 }, tmp = { 0 };
	struct audit_record r;

	audit_csv_field(&b, "plain", 5);
	audit_csv_field(&b, "a,b", 3);
	audit_csv_field(&b, "say \"hi\"", 8);
	audit_csv_field(&b, "\"", 1);
	CHECK(streq(b.p, "plain\"a,b\"\"say \"\"hi\"\"\"\"\"\"\""), "quoting %s",
	      b.p);
	audit_buf_reset(&b);
	audit_csv_header(&b);
	CHECK(streq(b.p, "ws,seq,time,time_ns,host,layer,uid,gid,pid,comm,op,"
		    "path,path2,ino,bytes,result,detail,fp,leaf,head\r\n"),
	      "header %s", b.p);
	memset(&r, 0, sizeof(r));
	r.ws = "";
	r.seq = 3;
	r.time_ns = T0;
	r.host = "h";
	r.layer = "upper";
	r.uid = 1;
	r.comm = "c,o\"mm";
	r.op = "rename";
	r.path = "/a,b\n\xff";
	r.path2 = "/back\\slash";
	r.result = "0";
	r.detail = "";
	r.fp = "";
	memset(r.leaf, 0xab, sizeof(r.leaf));
	audit_buf_reset(&b);
	audit_csv_row(&b, &tmp, &r);
	CHECK(strncmp(b.p, ",3,2026-11-27T17:02:30", 22) == 0, "row %s", b.p);
	CHECK(strstr(b.p, ",\"c,o\"\"mm\",rename,\"/a,b\\x0a\\xff\","
		     "/back\\\\slash,0,0,0,,,abab") != NULL, "row %s", b.p);
	CHECK(strstr(b.p, "\r\n") == b.p + b.len - 2, "one CRLF: %s", b.p);
	CHECK(memchr(b.p, '\n', b.len - 1) == NULL, "no bare newline");
	audit_buf_free(&b);
	audit_buf_free(&tmp);
}

/* ---- OCSF ----------------------------------------------------------- */

static int activity_of(const char *op, int64_t bytes)
{
	struct audit_record r;

	memset(&r, 0, sizeof(r));
	r.op = op;
	r.bytes = bytes;
	r.fp = "";
	return audit_ocsf_activity(&r).id;
}

static void test_ocsf_mapping(void)
{
	static const struct {
		const char *op;
		int id;
	} want[] = {
		{ "create", 1 }, { "mkdir", 1 }, { "mknod", 1 },
		{ "symlink", 1 }, { "link", 1 }, { "read", 2 },
		{ "readdir", 2 }, { "readlink", 2 }, { "write", 3 },
		{ "fallocate", 3 }, { "copy_file_range", 3 }, { "unlink", 4 },
		{ "rmdir", 4 }, { "wipe", 4 }, { "rename", 5 },
		{ "setattr", 6 }, { "setxattr", 6 }, { "removexattr", 6 },
		{ "lookup", 8 }, { "getattr", 8 }, { "getxattr", 8 },
		{ "listxattr", 8 }, { "statfs", 8 }, { "mount", 12 },
		{ "unmount", 13 }, { "open", 14 }, { "opendir", 14 },
		{ "copy-up", 99 }, { "whiteout", 99 }, { "audit-search", 99 },
		{ "quota-set", 99 }, { "quota-threshold", 99 },
		{ "audit-gap", 99 },
	};
	size_t i;

	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		CHECK(activity_of(want[i].op, 0) == want[i].id, "%s -> %d",
		      want[i].op, activity_of(want[i].op, 0));
	CHECK(activity_of("release", 10) == 3, "release that wrote");
	CHECK(activity_of("release", 0) == 99, "release that only read");
	/* Every op the filters know has a deliberate mapping. */
	for (i = 0; audit_op_names[i] != NULL; i++)
		CHECK(activity_of(audit_op_names[i], 1) > 0, "%s",
		      audit_op_names[i]);
	CHECK(audit_ocsf_file_type("mkdir") == 2, "folder");
	CHECK(audit_ocsf_file_type("symlink") == 7, "link");
	CHECK(audit_ocsf_file_type("create") == 1, "file");
	CHECK(audit_ocsf_file_type("unlink") == 0, "unknown");
}

static json_t *ocsf_of(const struct audit_record *r, const char *user)
{
	json_error_t jerr;
	char *text = audit_ocsf_json(r, user);
	json_t *o;

	CHECK(text != NULL, "json");
	CHECK(strchr(text, '\n') == NULL, "one line");
	o = json_loads(text, 0, &jerr);
	CHECK(o != NULL, "parse: %s", jerr.text);
	free(text);
	return o;
}

static json_int_t int_at(json_t *o, const char *path)
{
	json_t *v = json_object_get(o, path);

	CHECK(json_is_integer(v), "%s is not an integer", path);
	return json_integer_value(v);
}

static const char *str_at(json_t *o, const char *path)
{
	json_t *v = json_object_get(o, path);

	CHECK(json_is_string(v), "%s is not a string", path);
	return json_string_value(v);
}

static void test_ocsf_event(void)
{
	struct audit_record r;
	json_t *o, *file, *u;

	memset(&r, 0, sizeof(r));
	r.ws = "agent1";
	r.seq = 42;
	r.time_ns = T0 + 123456789;
	r.host = "box";
	r.layer = "upper";
	r.uid = 1000;
	r.gid = 1000;
	r.pid = 4711;
	r.comm = "python3";
	r.op = "rename";
	r.path = "/src/old.c";
	r.path2 = "/src/bad\xff.c";
	r.result = "EACCES";
	r.detail = "flags=0";
	r.fp = "";
	o = ocsf_of(&r, "alice");
	CHECK(int_at(o, "class_uid") == 1001, "class");
	CHECK(int_at(o, "category_uid") == 1, "category");
	CHECK(int_at(o, "activity_id") == 5, "rename");
	CHECK(streq(str_at(o, "activity_name"), "Rename"), "name");
	CHECK(int_at(o, "type_uid") == 100105, "type_uid");
	CHECK(int_at(o, "time") == (T0 + 123456789) / 1000000, "ms");
	CHECK(int_at(o, "severity_id") == 3, "denial is medium");
	CHECK(int_at(o, "status_id") == 2, "failure");
	CHECK(streq(str_at(o, "status"), "Failure"), "status");
	CHECK(streq(str_at(o, "status_code"), "EACCES"), "code");
	CHECK(streq(str_at(o, "message"),
		    "rename /src/old.c \xe2\x86\x92 /src/bad\\xff.c: EACCES"),
	      "message %s", str_at(o, "message"));
	u = json_object_get(json_object_get(o, "actor"), "user");
	CHECK(streq(str_at(u, "uid"), "1000"), "uid is a string");
	CHECK(streq(str_at(u, "name"), "alice"), "user name");
	u = json_object_get(json_object_get(o, "actor"), "process");
	CHECK(int_at(u, "pid") == 4711, "pid is a number");
	CHECK(streq(str_at(u, "name"), "python3"), "process name");
	u = json_object_get(o, "device");
	CHECK(streq(str_at(u, "hostname"), "box") && int_at(u, "type_id") == 0,
	      "device");
	file = json_object_get(o, "file");
	CHECK(streq(str_at(file, "path"), "/src/old.c"), "path");
	CHECK(streq(str_at(file, "name"), "old.c"), "name");
	CHECK(streq(str_at(file, "parent_folder"), "/src"), "parent");
	CHECK(json_is_integer(json_object_get(file, "type_id")), "type_id");
	file = json_object_get(o, "file_result");
	CHECK(streq(str_at(file, "path"), "/src/bad\\xff.c"), "escaped");
	u = json_object_get(o, "metadata");
	CHECK(streq(str_at(u, "version"), "1.1.0"), "version");
	CHECK(int_at(u, "sequence") == 42, "sequence");
	CHECK(streq(str_at(u, "log_name"), "audit.db"), "log_name");
	CHECK(streq(str_at(json_object_get(u, "product"), "name"), "wsfs"),
	      "product");
	u = json_object_get(o, "unmapped");
	CHECK(streq(str_at(u, "path"), "/src/old.c"), "unmapped path");
	CHECK(json_object_get(u, "path2") == NULL, "no raw path2");
	CHECK(streq(str_at(u, "path2_b64"), "L3NyYy9iYWT/LmM="), "b64");
	CHECK(int_at(u, "seq") == 42 && int_at(u, "time_ns") == r.time_ns,
	      "exact time");
	CHECK(strlen(str_at(u, "leaf")) == 64 && strlen(str_at(u, "head")) ==
	      64, "chain fields");
	json_decref(o);

	/* A successful read of a file at the root, by a user without name. */
	r.op = "open";
	r.path = "/top";
	r.path2 = "";
	r.result = "0";
	o = ocsf_of(&r, NULL);
	CHECK(int_at(o, "activity_id") == 14 && int_at(o, "type_uid") ==
	      100114, "open");
	CHECK(int_at(o, "severity_id") == 1 && int_at(o, "status_id") == 1,
	      "success");
	file = json_object_get(o, "file");
	CHECK(streq(str_at(file, "parent_folder"), "/"), "root parent");
	CHECK(int_at(file, "type_id") == 1, "regular file");
	CHECK(json_object_get(o, "file_result") == NULL, "no second file");
	u = json_object_get(json_object_get(o, "actor"), "user");
	CHECK(json_object_get(u, "name") == NULL, "no name");
	json_decref(o);
}

int main(void)
{
	test_iso_times();
	test_word_times();
	test_bad_times();
	test_ops();
	test_results();
	test_numbers();
	test_sql_text();
	test_query_results();
	test_chain_walks();
	test_plans();
	test_escape();
	test_csv();
	test_ocsf_mapping();
	test_ocsf_event();
	puts("ok");
	return 0;
}
