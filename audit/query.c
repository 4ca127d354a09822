/*
** Filters for the audit readers: their values, and the SQL they become.
**
** Every value a user types is checked here, before audit.db is opened, so a
** typo is a usage error (exit 2) with one line saying what was wrong rather
** than an empty result that looks like "nothing happened".  Op names and
** errno names are checked against the names records actually carry: a
** filter on a name no record can hold is always a mistake.
**
** Times are parsed by hand rather than with strptime(3): its %z and
** fraction support vary, it accepts trailing garbage unless checked, and
** its field ranges are loose ("2026-02-30" passes).  Here the whole string
** must match one of the documented forms, and each field is range checked,
** so `--since 2026-1-5` or `--until 17:00` are errors, not guesses.  A time
** without a zone is local time, as ISO 8601 says and as `today` is; the
** arithmetic for zoned times is done on civil days directly so it does not
** depend on TZ.
**
** The SQL is built as text plus a list of values to bind, in step, so the
** numbering of "?" parameters can never drift from the values.  Nothing a
** user typed is ever pasted into the text.
*/
#include "query.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <pwd.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "record.h"
#include "store.h"

#define NS_PER_S 1000000000LL
#define RECENT_S (10 * 60)

/* ---- the op names --------------------------------------------------- */

const char *const audit_op_names[] = {
	"open", "release", "create", "mkdir", "mknod", "symlink", "link",
	"unlink", "rmdir", "rename", "setattr", "setxattr", "removexattr",
	"copy-up", "whiteout", "mount", "unmount", "audit-start", "audit-stop",
	"audit-gap", "quota-set", "quota-threshold", "wipe", "audit-search",
	"audit-report", "audit-export", "audit-verify", "audit-head",
	"audit-key", "read", "write", "lookup", "getattr", "getxattr",
	"listxattr", "readdir", "opendir", "readlink", "fallocate",
	"copy_file_range", "statfs", NULL,
};

const char *audit_op_lookup(const char *op)
{
	size_t i;

	for (i = 0; audit_op_names[i] != NULL; i++) {
		if (strcmp(audit_op_names[i], op) == 0)
			return audit_op_names[i];
	}
	return NULL;
}

/* ---- filters -------------------------------------------------------- */

void audit_filter_init(struct audit_filter *f)
{
	memset(f, 0, sizeof(*f));
	f->since_ns = INT64_MIN;
	f->until_ns = INT64_MAX;
}

int audit_filter_has_time(const struct audit_filter *f)
{
	return f->since_ns != INT64_MIN || f->until_ns != INT64_MAX;
}

/* VALUE as it goes into an error message: at most 64 bytes, control bytes
** shown as '?', so a hostile argument cannot rewrite the terminal. */
static const char *shown(const char *value, char *buf, size_t len)
{
	size_t i;

	for (i = 0; value[i] != '\0' && i + 1 < len && i < 64; i++) {
		unsigned char c = (unsigned char)value[i];

		buf[i] = c < 0x20 || c == 0x7f ? '?' : (char)c;
	}
	buf[i] = '\0';
	return buf;
}

/* Writes "<what> '<value>': <why>" into ERR and returns -EINVAL. */
static int bad_value(char *err, size_t errlen, const char *what,
		     const char *value, const char *why)
{
	char buf[72];

	if (err != NULL && errlen > 0)
		snprintf(err, errlen, "%s '%s': %s", what,
			 shown(value, buf, sizeof(buf)), why);
	return -EINVAL;
}

int audit_parse_int(const char *s, int positive, const char *what,
		    int64_t *out, char *err, size_t errlen)
{
	int64_t v = 0;
	const char *p;

	if (*s == '\0')
		return bad_value(err, errlen, what, s, "expected a number");
	for (p = s; *p != '\0'; p++) {
		if (*p < '0' || *p > '9')
			return bad_value(err, errlen, what, s,
					 "expected a number");
		if (v > (INT64_MAX - (*p - '0')) / 10)
			return bad_value(err, errlen, what, s, "too large");
		v = v * 10 + (*p - '0');
	}
	if (positive && v == 0)
		return bad_value(err, errlen, what, s,
				 "expected a number above 0");
	*out = v;
	return 0;
}

/* Adds the static name of one op, unless already there. */
static int add_op(struct audit_filter *f, const char *name, size_t len,
		  char *err, size_t errlen)
{
	char word[32];
	const char *op;
	size_t i;

	if (len == 0 || len >= sizeof(word))
		op = NULL;
	else {
		memcpy(word, name, len);
		word[len] = '\0';
		op = audit_op_lookup(word);
	}
	if (op == NULL) {
		char list[1024] = "", buf[72];
		size_t off = 0;

		for (i = 0; audit_op_names[i] != NULL && off < sizeof(list); i++)
			off += (size_t)snprintf(list + off, sizeof(list) - off,
						"%s%s", i ? ", " : "",
						audit_op_names[i]);
		snprintf(word, sizeof(word), "%.*s", (int)(len < 31 ? len : 31),
			 name);
		if (err != NULL && errlen > 0)
			snprintf(err, errlen, "unknown op '%s'; ops are: %s",
				 shown(word, buf, sizeof(buf)), list);
		return -EINVAL;
	}
	for (i = 0; i < f->nops; i++) {
		if (f->ops[i] == op)
			return 0;
	}
	if (f->nops >= AUDIT_QUERY_MAX_OPS)
		return bad_value(err, errlen, "--op", name, "too many ops");
	f->ops[f->nops++] = op;
	return 0;
}

int audit_filter_set_ops(struct audit_filter *f, const char *list, char *err,
			 size_t errlen)
{
	const char *p = list, *comma;
	int rc;

	f->nops = 0;
	for (;;) {
		comma = strchr(p, ',');
		rc = add_op(f, p, comma ? (size_t)(comma - p) : strlen(p), err,
			    errlen);
		if (rc < 0)
			return rc;
		if (comma == NULL)
			return 0;
		p = comma + 1;
	}
}

int audit_filter_set_result(struct audit_filter *f, const char *s, char *err,
			    size_t errlen)
{
	char upper[24];
	size_t i;
	int e;

	if (strcmp(s, "ok") == 0 || strcmp(s, "0") == 0) {
		f->result = AUDIT_RESULT_OK;
		return 0;
	}
	if (strcmp(s, "denied") == 0 || strcmp(s, "failed") == 0) {
		f->result = s[0] == 'd' ? AUDIT_RESULT_DENIED :
			    AUDIT_RESULT_FAILED;
		return 0;
	}
	for (i = 0; s[i] != '\0' && i + 1 < sizeof(upper); i++)
		upper[i] = (char)toupper((unsigned char)s[i]);
	upper[i] = '\0';
	e = s[i] == '\0' ? audit_errno_from_name(upper) : -EINVAL;
	if (e <= 0)
		return bad_value(err, errlen, "--result", s, "expected ok, "
				 "denied, failed or an errno name such as "
				 "EACCES");
	f->result = AUDIT_RESULT_ERRNO;
	snprintf(f->errname, sizeof(f->errname), "%s", audit_errname(e));
	return 0;
}

int audit_filter_set_uid(struct audit_filter *f, const char *s, char *err,
			 size_t errlen)
{
	struct passwd pw, *res = NULL;
	char buf[4096];
	int64_t v;

	if (*s >= '0' && *s <= '9') {
		if (audit_parse_int(s, 0, "--uid", &v, err, errlen) < 0)
			return -EINVAL;
		if (v > UINT32_MAX)
			return bad_value(err, errlen, "--uid", s, "too large");
		f->uid = v;
		f->has_uid = 1;
		return 0;
	}
	if (*s == '\0' || getpwnam_r(s, &pw, buf, sizeof(buf), &res) != 0 ||
	    res == NULL)
		return bad_value(err, errlen, "--uid", s, "no such user");
	f->uid = (int64_t)pw.pw_uid;
	f->has_uid = 1;
	return 0;
}

/* ---- times ---------------------------------------------------------- */

/* Exactly N digits at *P, as a number; advances *P. */
static int take_digits(const char **p, int n, int *out)
{
	int i, v = 0;

	for (i = 0; i < n; i++) {
		if ((*p)[i] < '0' || (*p)[i] > '9')
			return -1;
		v = v * 10 + ((*p)[i] - '0');
	}
	*p += n;
	*out = v;
	return 0;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
** days_from_civil), so zoned times need neither timegm nor TZ. */
static int64_t days_from_civil(int64_t y, int m, int d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static int days_in_month(int y, int m)
{
	static const int days[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31,
				    30, 31 };
	int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

	return m == 2 && leap ? 29 : days[m - 1];
}

struct civil {
	int y, mo, d, h, mi, s;
	long frac_ns;
	int has_zone;
	int zone_s;		/* east of UTC */
};

/* "YYYY-MM-DD" at *P. */
static int take_date(const char **p, struct civil *c)
{
	if (take_digits(p, 4, &c->y) < 0 || *(*p)++ != '-' ||
	    take_digits(p, 2, &c->mo) < 0 || *(*p)++ != '-' ||
	    take_digits(p, 2, &c->d) < 0)
		return -1;
	return 0;
}

/* ".fraction" or ",fraction" (ISO allows both), 1 to 9 digits. */
static int take_fraction(const char **p, struct civil *c)
{
	long scale = 100000000;
	int n = 0;

	if (**p != '.' && **p != ',')
		return 0;
	for ((*p)++; **p >= '0' && **p <= '9'; (*p)++, n++) {
		if (n == 9)
			return -1;
		c->frac_ns += (**p - '0') * scale;
		scale /= 10;
	}
	return n == 0 ? -1 : 0;
}

/* "HH:MM[:SS[.frac]]" at *P. */
static int take_clock(const char **p, struct civil *c)
{
	if (take_digits(p, 2, &c->h) < 0 || *(*p)++ != ':' ||
	    take_digits(p, 2, &c->mi) < 0)
		return -1;
	if (**p != ':')
		return 0;
	(*p)++;
	if (take_digits(p, 2, &c->s) < 0)
		return -1;
	return take_fraction(p, c);
}

/* "Z", "+HH", "+HHMM" or "+HH:MM" (or "-..."), or nothing. */
static int take_zone(const char **p, struct civil *c)
{
	int sign, hh, mm = 0;

	if (**p == '\0')
		return 0;
	c->has_zone = 1;
	if (**p == 'Z' || **p == 'z') {
		(*p)++;
		return 0;
	}
	if (**p != '+' && **p != '-')
		return -1;
	sign = *(*p)++ == '-' ? -1 : 1;
	if (take_digits(p, 2, &hh) < 0)
		return -1;
	if (**p == ':')
		(*p)++;
	if (**p != '\0' && take_digits(p, 2, &mm) < 0)
		return -1;
	if (hh > 23 || mm > 59)
		return -1;
	c->zone_s = sign * (hh * 3600 + mm * 60);
	return 0;
}

/* The syntax of an ISO 8601 time; 0 if S is one (ranges unchecked). */
static int scan_iso(const char *s, struct civil *c)
{
	const char *p = s;

	memset(c, 0, sizeof(*c));
	if (take_date(&p, c) < 0)
		return -1;
	if (*p == '\0')
		return 0;
	if (*p != 'T' && *p != 't' && *p != ' ')
		return -1;
	p++;
	if (take_clock(&p, c) < 0 || take_zone(&p, c) < 0)
		return -1;
	return *p == '\0' ? 0 : -1;
}

/* Why C's fields are out of range, or NULL if they are not. */
static const char *civil_range_error(const struct civil *c)
{
	if (c->mo < 1 || c->mo > 12)
		return "month out of range";
	if (c->d < 1 || c->d > days_in_month(c->y, c->mo))
		return "no such day in that month";
	if (c->h > 23 || c->mi > 59 || c->s > 59)
		return "time of day out of range";
	return NULL;
}

/* Seconds and nanoseconds into ns, if they fit in 64 bits. */
static int to_ns(int64_t secs, long frac_ns, int64_t *out)
{
	if (secs > INT64_MAX / NS_PER_S - 1 || secs < INT64_MIN / NS_PER_S + 1)
		return -1;
	*out = secs * NS_PER_S + frac_ns;
	return 0;
}

/* A civil time in the local zone, by mktime (DST decided by it). */
static int local_secs(const struct civil *c, int64_t *secs)
{
	struct tm tm;
	time_t t;

	memset(&tm, 0, sizeof(tm));
	tm.tm_year = c->y - 1900;
	tm.tm_mon = c->mo - 1;
	tm.tm_mday = c->d;
	tm.tm_hour = c->h;
	tm.tm_min = c->mi;
	tm.tm_sec = c->s;
	tm.tm_isdst = -1;
	errno = 0;
	t = mktime(&tm);
	if (t == (time_t)-1 && errno != 0)
		return -1;
	*secs = (int64_t)t;
	return 0;
}

static int parse_iso(const char *s, int64_t *out, char *err, size_t errlen)
{
	const char *why;
	struct civil c;
	int64_t secs;

	if (scan_iso(s, &c) < 0)
		return 1;
	why = civil_range_error(&c);
	if (why != NULL)
		return bad_value(err, errlen, "bad time", s, why);
	if (c.has_zone)
		secs = days_from_civil(c.y, c.mo, c.d) * 86400 + c.h * 3600 +
		       c.mi * 60 + c.s - c.zone_s;
	else if (local_secs(&c, &secs) < 0)
		return bad_value(err, errlen, "bad time", s, "out of range");
	if (to_ns(secs, c.frac_ns, out) < 0)
		return bad_value(err, errlen, "bad time", s, "out of range");
	return 0;
}

/* Local midnight DAYS_BACK days before the day of NOW_NS. */
static int local_midnight(int64_t now_ns, int days_back, int64_t *out)
{
	time_t now = (time_t)(now_ns / NS_PER_S);
	struct tm tm;
	time_t t;

	if (localtime_r(&now, &tm) == NULL)
		return -1;
	tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
	tm.tm_mday -= days_back;
	tm.tm_isdst = -1;
	t = mktime(&tm);
	if (t == (time_t)-1)
		return -1;
	return to_ns((int64_t)t, 0, out);
}

/* "-N<unit>": 1 if S is not of that form, else 0 or -EINVAL. */
static int parse_relative(const char *s, int64_t now_ns, int64_t *out,
			  char *err, size_t errlen)
{
	static const char units[] = "smhdw";
	static const int64_t unit_s[] = { 1, 60, 3600, 86400, 604800 };
	const char *u;
	int64_t n = 0;
	const char *p;

	if (s[0] != '-' || s[1] < '0' || s[1] > '9')
		return 1;
	for (p = s + 1; *p >= '0' && *p <= '9'; p++) {
		if (n > (INT64_MAX - 9) / 10)
			return bad_value(err, errlen, "bad time", s,
					 "too far back");
		n = n * 10 + (*p - '0');
	}
	u = *p != '\0' && p[1] == '\0' ? strchr(units, *p) : NULL;
	if (u == NULL)
		return 1;
	if (n > INT64_MAX / NS_PER_S / unit_s[u - units] ||
	    now_ns < INT64_MIN + n * unit_s[u - units] * NS_PER_S)
		return bad_value(err, errlen, "bad time", s, "too far back");
	*out = now_ns - n * unit_s[u - units] * NS_PER_S;
	return 0;
}

/* now, today, yesterday, recent: 1 if S is none of them. */
static int parse_word(const char *s, int64_t now_ns, int64_t *out)
{
	if (strcmp(s, "now") == 0) {
		*out = now_ns;
		return 0;
	}
	if (strcmp(s, "recent") == 0) {
		*out = now_ns - RECENT_S * NS_PER_S;
		return 0;
	}
	if (strcmp(s, "today") == 0 || strcmp(s, "yesterday") == 0)
		return local_midnight(now_ns, s[0] == 'y', out) < 0 ? -1 : 0;
	return 1;
}

int audit_parse_time(const char *s, int64_t now_ns, int64_t *out, char *err,
		     size_t errlen)
{
	int rc;

	rc = parse_word(s, now_ns, out);
	if (rc < 0)
		return bad_value(err, errlen, "bad time", s, "out of range");
	if (rc == 0)
		return 0;
	rc = parse_relative(s, now_ns, out, err, errlen);
	if (rc <= 0)
		return rc;
	rc = parse_iso(s, out, err, errlen);
	if (rc <= 0)
		return rc;
	return bad_value(err, errlen, "bad time", s, "expected ISO 8601 "
			 "(2026-11-27T17:02:30Z), now, today, yesterday, "
			 "recent or -2h (s, m, h, d, w)");
}

/* ---- building SQL --------------------------------------------------- */

void audit_sql_init(struct audit_sql *q)
{
	memset(q, 0, sizeof(*q));
}

void audit_sql_free(struct audit_sql *q)
{
	free(q->text);
	q->text = NULL;
}

void audit_sql_add(struct audit_sql *q, const char *text)
{
	size_t n = strlen(text), cap;
	char *p;

	if (q->failed)
		return;
	if (q->len + n + 1 > q->cap) {
		cap = q->cap ? q->cap : 256;
		while (cap < q->len + n + 1)
			cap *= 2;
		p = realloc(q->text, cap);
		if (p == NULL) {
			q->failed = 1;
			return;
		}
		q->text = p;
		q->cap = cap;
	}
	memcpy(q->text + q->len, text, n + 1);
	q->len += n;
}

static struct audit_sql_bind *next_bind(struct audit_sql *q)
{
	if (q->nbinds >= AUDIT_SQL_MAX_BINDS) {
		q->failed = 1;
		return NULL;
	}
	audit_sql_add(q, "?");
	return &q->binds[q->nbinds++];
}

void audit_sql_int(struct audit_sql *q, int64_t v)
{
	struct audit_sql_bind *b = next_bind(q);

	if (b == NULL)
		return;
	b->is_text = 0;
	b->i = v;
}

void audit_sql_text(struct audit_sql *q, const char *s)
{
	struct audit_sql_bind *b = next_bind(q);

	if (b == NULL)
		return;
	b->is_text = 1;
	b->s = s;
}

/* " AND <column> <op> ?" with an integer. */
static void cond_int(struct audit_sql *q, const char *lhs, int64_t v)
{
	audit_sql_add(q, " AND ");
	audit_sql_add(q, lhs);
	audit_sql_int(q, v);
}

static void cond_text(struct audit_sql *q, const char *lhs, const char *s)
{
	audit_sql_add(q, " AND ");
	audit_sql_add(q, lhs);
	audit_sql_text(q, s);
}

/* " AND <column> IN (?, ...)", or "= ?" for one value. */
static void cond_in(struct audit_sql *q, const char *column,
		    const char *const *vals, size_t n)
{
	size_t i;

	if (n == 1) {
		audit_sql_add(q, " AND ");
		audit_sql_add(q, column);
		audit_sql_add(q, " = ");
		audit_sql_text(q, vals[0]);
		return;
	}
	audit_sql_add(q, " AND ");
	audit_sql_add(q, column);
	audit_sql_add(q, " IN (");
	for (i = 0; i < n; i++) {
		audit_sql_add(q, i ? ", " : "");
		audit_sql_text(q, vals[i]);
	}
	audit_sql_add(q, ")");
}

/*
** The result filters.  audit.db indexes only failed records (the partial
** index records_failed, WHERE result != '0'), and SQLite uses a partial
** index only when the query repeats its condition word for word, so that
** condition is written out as literal text (a constant, not a value the
** user typed).  "failed" becomes a range, result > '0' (every errno name
** sorts after "0"), so the index is searched rather than scanned.  Going
** through the index costs in proportion to the matches however rare they
** are, which is what a search for denials on a real log needs.
*/
static void cond_result(struct audit_sql *q, const struct audit_filter *f,
			unsigned flags)
{
	static const char *const denied[] = { "EACCES", "EPERM", "EROFS",
					      "EDQUOT" };
	int scan = flags & AUDIT_WHERE_RESULT_SCAN;

	switch (f->result) {
	case AUDIT_RESULT_OK:
		cond_text(q, "result = ", "0");
		break;
	case AUDIT_RESULT_DENIED:
		audit_sql_add(q, scan ? "" : " AND result != '0'");
		cond_in(q, scan ? "+result" : "result", denied, 4);
		break;
	case AUDIT_RESULT_FAILED:
		audit_sql_add(q, scan ? " AND +result > '0'" :
			      " AND result != '0' AND result > '0'");
		break;
	case AUDIT_RESULT_ERRNO:
		audit_sql_add(q, scan ? "" : " AND result != '0'");
		cond_text(q, scan ? "+result = " : "result = ", f->errname);
		break;
	default:
		break;
	}
}

/*
** Which index answers "ws = ?".  Without statistics SQLite takes an
** equality on the primary key's first column for the most selective term,
** but one workspace's chain may be nearly the whole log: for a time range
** it would read the whole chain and sort it, where the time index reads
** only the range.  So with a time range, or a limit (the time index then
** stops after LIMIT matches instead of sorting the chain), the primary key
** is ruled out with SQLite's unary "+", which keeps the term a filter.
** Only a whole-chain read without a limit keeps the primary key.
*/
static void cond_ws(struct audit_sql *q, const struct audit_filter *f)
{
	if (audit_filter_has_time(f) || f->limit > 0)
		cond_text(q, "+ws = ", f->ws);
	else
		cond_text(q, "ws = ", f->ws);
}

void audit_sql_filter(struct audit_sql *q, const struct audit_filter *f,
		      unsigned flags)
{
	if (f->ws != NULL && !(flags & AUDIT_WHERE_NO_WS))
		cond_ws(q, f);
	if (f->since_ns != INT64_MIN)
		cond_int(q, "time_ns >= ", f->since_ns);
	if (f->until_ns != INT64_MAX)
		cond_int(q, "time_ns < ", f->until_ns);
	if (f->nops > 0)
		cond_in(q, "op", f->ops, f->nops);
	if (f->path_glob != NULL) {
		cond_text(q, "(path GLOB ", f->path_glob);
		audit_sql_add(q, " OR path2 GLOB ");
		audit_sql_text(q, f->path_glob);
		audit_sql_add(q, ")");
	}
	if (f->has_uid)
		cond_int(q, "uid = ", f->uid);
	if (f->has_pid)
		cond_int(q, "pid = ", f->pid);
	if (f->comm != NULL)
		cond_text(q, "comm = ", f->comm);
	cond_result(q, f, flags);
}

int audit_sql_error(struct sqlite3 *db, const char *what, char *err,
		    size_t errlen)
{
	if (err != NULL && errlen > 0)
		snprintf(err, errlen, "%s: %s", what, sqlite3_errmsg(db));
	return -EIO;
}

static int bind_all(struct audit_sql *q, sqlite3_stmt *st)
{
	const struct audit_sql_bind *b;
	int i, rc;

	for (i = 0; i < q->nbinds; i++) {
		b = &q->binds[i];
		if (b->is_text)
			rc = sqlite3_bind_text(st, i + 1, b->s,
					       (int)strlen(b->s),
					       SQLITE_STATIC);
		else
			rc = sqlite3_bind_int64(st, i + 1, b->i);
		if (rc != SQLITE_OK)
			return rc;
	}
	return SQLITE_OK;
}

int audit_sql_prepare(struct audit_sql *q, struct sqlite3 *db,
		      struct sqlite3_stmt **st, char *err, size_t errlen)
{
	*st = NULL;
	if (q->failed || q->text == NULL) {
		if (err != NULL && errlen > 0)
			snprintf(err, errlen, "cannot build the query: out of "
				 "memory or too many values");
		return -ENOMEM;
	}
	if (sqlite3_prepare_v2(db, q->text, (int)q->len, st, NULL) !=
	    SQLITE_OK)
		return audit_sql_error(db, "cannot query audit.db", err,
				       errlen);
	if (bind_all(q, *st) != SQLITE_OK) {
		audit_sql_error(db, "cannot query audit.db", err, errlen);
		sqlite3_finalize(*st);
		*st = NULL;
		return -EIO;
	}
	return 0;
}

/* ---- the queries ---------------------------------------------------- */

/* One number from SQL (a count, a max), or -1. */
static int64_t scalar(sqlite3 *db, struct audit_sql *q)
{
	sqlite3_stmt *st;
	int64_t v = -1;

	if (audit_sql_prepare(q, db, &st, NULL, 0) < 0)
		return -1;
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

/*
** Whether a limited search on a result filter should walk the time index
** rather than the failed-records index.  The index costs in proportion to
** its matches (each is looked up and sorted by time); the walk in
** proportion to LIMIT * records / matches (it stops after LIMIT matches).
** Neither wins always: denials are usually rare (index), but a log where
** every twentieth call fails would sort hundreds of thousands of rows for
** a page of 100.  Without statistics SQLite cannot tell, so ask: the
** matches are counted on the index alone, which is cheap, and the records
** estimated from the largest rowid.
*/
static int result_walk_cheaper(sqlite3 *db, const struct audit_filter *f)
{
	struct audit_filter only;
	struct audit_sql q;
	int64_t matches, total;

	if (f->limit <= 0 || f->result == AUDIT_RESULT_ANY ||
	    f->result == AUDIT_RESULT_OK)
		return 0;
	audit_filter_init(&only);
	only.result = f->result;
	memcpy(only.errname, f->errname, sizeof(only.errname));
	audit_sql_init(&q);
	audit_sql_add(&q, "SELECT count(*) FROM records WHERE 1");
	cond_result(&q, &only, 0);
	matches = scalar(db, &q);
	audit_sql_free(&q);
	audit_sql_init(&q);
	audit_sql_add(&q, "SELECT max(rowid) FROM records");
	total = scalar(db, &q);
	audit_sql_free(&q);
	if (matches <= 0 || total <= 0)
		return 0;
	return (double)matches * (double)matches >
	       (double)f->limit * (double)total;
}

int audit_query_search(struct sqlite3 *db, const struct audit_filter *f,
		       struct sqlite3_stmt **st, char *err, size_t errlen)
{
	unsigned flags = 0;
	struct audit_sql q;
	int rc;

	if (result_walk_cheaper(db, f))
		flags |= AUDIT_WHERE_RESULT_SCAN;
	audit_sql_init(&q);
	audit_sql_add(&q, "SELECT " AUDIT_RECORD_COLUMNS
		      " FROM records WHERE 1");
	audit_sql_filter(&q, f, flags);
	audit_sql_add(&q, " ORDER BY time_ns, ws, seq");
	if (f->limit > 0) {
		audit_sql_add(&q, " LIMIT ");
		audit_sql_int(&q, f->limit);
	}
	rc = audit_sql_prepare(&q, db, st, err, errlen);
	audit_sql_free(&q);
	return rc;
}

int audit_query_chain(struct sqlite3 *db, const struct audit_filter *f,
		      const char *ws, int64_t after, int64_t limit,
		      struct sqlite3_stmt **st, char *err, size_t errlen)
{
	struct audit_sql q;
	int rc;

	audit_sql_init(&q);
	audit_sql_add(&q, "SELECT " AUDIT_RECORD_COLUMNS
		      " FROM records WHERE ws = ");
	audit_sql_text(&q, ws);
	cond_int(&q, "seq > ", after);
	audit_sql_filter(&q, f, AUDIT_WHERE_NO_WS);
	audit_sql_add(&q, " ORDER BY seq");
	if (limit > 0) {
		audit_sql_add(&q, " LIMIT ");
		audit_sql_int(&q, limit);
	}
	rc = audit_sql_prepare(&q, db, st, err, errlen);
	audit_sql_free(&q);
	return rc;
}

/* ---- listing the chains --------------------------------------------- */

struct audit_chains {
	sqlite3 *db;
	sqlite3_stmt *first, *next;
	char *last;		/* the chain returned before; NULL at first */
};

int audit_chains_open(struct sqlite3 *db, struct audit_chains **out,
		      char *err, size_t errlen)
{
	struct audit_chains *c = calloc(1, sizeof(*c));

	*out = NULL;
	if (c == NULL)
		return -ENOMEM;
	c->db = db;
	if (sqlite3_prepare_v2(db, "SELECT ws FROM records ORDER BY ws "
			       "LIMIT 1", -1, &c->first, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, "SELECT ws FROM records WHERE ws > ? "
			       "ORDER BY ws LIMIT 1", -1, &c->next, NULL) !=
	    SQLITE_OK) {
		audit_sql_error(db, "cannot list the chains", err, errlen);
		audit_chains_close(c);
		return -EIO;
	}
	*out = c;
	return 0;
}

int audit_chains_next(struct audit_chains *c, char **ws, char *err,
		      size_t errlen)
{
	sqlite3_stmt *st = c->last ? c->next : c->first;
	const char *name;
	int rc;

	*ws = NULL;
	sqlite3_reset(st);
	if (c->last != NULL &&
	    sqlite3_bind_text(st, 1, c->last, (int)strlen(c->last),
			      SQLITE_STATIC) != SQLITE_OK)
		return audit_sql_error(c->db, "cannot list the chains", err,
				       errlen);
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE)
		return 0;
	if (rc != SQLITE_ROW)
		return audit_sql_error(c->db, "cannot list the chains", err,
				       errlen);
	name = (const char *)sqlite3_column_text(st, 0);
	*ws = strdup(name ? name : "");
	sqlite3_reset(st);
	if (*ws == NULL)
		return -ENOMEM;
	free(c->last);
	c->last = strdup(*ws);
	if (c->last == NULL) {
		free(*ws);
		*ws = NULL;
		return -ENOMEM;
	}
	return 1;
}

void audit_chains_close(struct audit_chains *c)
{
	if (c == NULL)
		return;
	sqlite3_finalize(c->first);
	sqlite3_finalize(c->next);
	free(c->last);
	free(c);
}
