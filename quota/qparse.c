/*
** Parsers for operator-typed quota values (see qparse.h for the grammar).
**
** Numbers are read digit by digit with an explicit overflow check rather
** than with strtoull, which accepts leading blanks, signs ("-1" becomes
** 2^64-1) and hex, none of which an operator means.
*/
#include "qparse.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

struct suffix {
	const char *name;
	uint64_t mult;
};

static const struct suffix size_suffixes[] = {
	{ "", 1 }, { "b", 1 },
	{ "k", 1ULL << 10 }, { "kib", 1ULL << 10 },
	{ "m", 1ULL << 20 }, { "mib", 1ULL << 20 },
	{ "g", 1ULL << 30 }, { "gib", 1ULL << 30 },
	{ "t", 1ULL << 40 }, { "tib", 1ULL << 40 },
	{ NULL, 0 }
};

/* Inode counts share the multipliers; "B" (bytes) makes no sense there. */
static const struct suffix count_suffixes[] = {
	{ "", 1 },
	{ "k", 1ULL << 10 }, { "kib", 1ULL << 10 },
	{ "m", 1ULL << 20 }, { "mib", 1ULL << 20 },
	{ "g", 1ULL << 30 }, { "gib", 1ULL << 30 },
	{ "t", 1ULL << 40 }, { "tib", 1ULL << 40 },
	{ NULL, 0 }
};

static const struct suffix duration_suffixes[] = {
	{ "", 1 }, { "s", 1 }, { "m", 60 }, { "h", 3600 },
	{ "d", 86400 }, { "w", 7 * 86400 },
	{ NULL, 0 }
};

static int fail(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

/* Digits, then a suffix from TABLE; the product must fit QUOTA_MAX_VALUE. */
static int parse_scaled(const char *s, const struct suffix *table,
			const char *what, const char *hint, uint64_t *out,
			char *err, size_t errlen)
{
	const char *p = s;
	uint64_t v = 0;
	size_t i;

	if (*p == '-')
		return fail(err, errlen, "invalid %s '%.64s': must not be negative",
			    what, s);
	if (*p < '0' || *p > '9')
		return fail(err, errlen, "invalid %s '%.64s': expected %s", what,
			    s, hint);
	while (*p >= '0' && *p <= '9') {
		unsigned int d = (unsigned int)(*p - '0');

		if (v > (QUOTA_MAX_VALUE - d) / 10)
			return fail(err, errlen, "invalid %s '%.64s': too large",
				    what, s);
		v = v * 10 + d;
		p++;
	}
	if (*p == '.' || *p == ',')
		return fail(err, errlen, "invalid %s '%.64s': fractions are not "
			    "accepted; use a smaller unit", what, s);
	for (i = 0; table[i].name; i++) {
		if (strcasecmp(p, table[i].name) != 0)
			continue;
		if (v != 0 && table[i].mult > QUOTA_MAX_VALUE / v)
			return fail(err, errlen, "invalid %s '%.64s': too large",
				    what, s);
		*out = v * table[i].mult;
		return 0;
	}
	return fail(err, errlen, "invalid %s '%.64s': unknown unit '%.16s'; "
		    "expected %s", what, s, p, hint);
}

int qparse_size(const char *s, uint64_t *out, char *err, size_t errlen)
{
	if (strcasecmp(s, "none") == 0) {
		*out = QUOTA_NONE;
		return 0;
	}
	return parse_scaled(s, size_suffixes, "size",
			    "a whole number with an optional B, K, KiB, M, MiB, "
			    "G, GiB, T or TiB suffix (1024-based), or 'none'",
			    out, err, errlen);
}

int qparse_count(const char *s, uint64_t *out, char *err, size_t errlen)
{
	if (strcasecmp(s, "none") == 0) {
		*out = QUOTA_NONE;
		return 0;
	}
	return parse_scaled(s, count_suffixes, "inode count",
			    "a whole number with an optional K, M, G or T "
			    "suffix (1024-based), or 'none'", out, err, errlen);
}

int qparse_duration(const char *s, uint64_t *out, char *err, size_t errlen)
{
	return parse_scaled(s, duration_suffixes, "duration",
			    "a whole number with an optional s, m, h, d or w "
			    "suffix", out, err, errlen);
}

int qparse_warn(const char *s, char sep, struct quota_limits *l, char *err,
		size_t errlen)
{
	unsigned int warn[QUOTA_MAX_WARN], n = 0;
	const char *p = s;

	if (strcasecmp(s, "none") == 0) {
		l->nwarn = 0;
		return 0;
	}
	for (;;) {
		unsigned int v = 0;
		const char *start = p;

		while (*p >= '0' && *p <= '9' && p - start < 4)
			v = v * 10 + (unsigned int)(*p++ - '0');
		if (p == start || (*p != sep && *p != '\0'))
			return fail(err, errlen, "invalid warning thresholds "
				    "'%.64s': expected up to %d ascending "
				    "percentages 1-100 separated by '%c', or "
				    "'none'", s, QUOTA_MAX_WARN, sep);
		if (v < 1 || v > 100)
			return fail(err, errlen, "invalid warning threshold %u "
				    "in '%.64s': must be 1-100", v, s);
		if (n == QUOTA_MAX_WARN)
			return fail(err, errlen, "invalid warning thresholds "
				    "'%.64s': at most %d", s, QUOTA_MAX_WARN);
		if (n > 0 && v <= warn[n - 1])
			return fail(err, errlen, "invalid warning thresholds "
				    "'%.64s': must be ascending", s);
		warn[n++] = v;
		if (*p == '\0')
			break;
		p++;
	}
	memcpy(l->warn, warn, n * sizeof(warn[0]));
	l->nwarn = n;
	return 0;
}

void qformat_size(uint64_t v, char *buf, size_t len)
{
	static const char *units[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
	unsigned int u = 0;
	uint64_t div = 1;

	if (v == QUOTA_NONE) {
		snprintf(buf, len, "none");
		return;
	}
	while (u + 1 < sizeof(units) / sizeof(units[0]) && v / div >= 1024) {
		div <<= 10;
		u++;
	}
	if (v % div == 0)
		snprintf(buf, len, "%llu %s", (unsigned long long)(v / div), units[u]);
	else
		snprintf(buf, len, "%.1f %s", (double)v / (double)div, units[u]);
}

void qformat_value(uint64_t v, char *buf, size_t len)
{
	if (v == QUOTA_NONE)
		snprintf(buf, len, "none");
	else
		snprintf(buf, len, "%llu", (unsigned long long)v);
}

void qformat_warn(const struct quota_limits *l, char sep, char *buf, size_t len)
{
	size_t off = 0;
	unsigned int i;

	if (l->nwarn == 0) {
		snprintf(buf, len, "none");
		return;
	}
	buf[0] = '\0';
	for (i = 0; i < l->nwarn && off < len; i++) {
		int w = i ? snprintf(buf + off, len - off, "%c%u", sep, l->warn[i])
			  : snprintf(buf + off, len - off, "%u", l->warn[i]);

		if (w < 0)
			break;
		off += (size_t)w;
	}
}

void quota_limits_default(struct quota_limits *l)
{
	memset(l, 0, sizeof(*l));
	l->bytes = l->inodes = QUOTA_NONE;
	l->soft_bytes = l->soft_inodes = QUOTA_NONE;
	l->grace_s = QUOTA_DEFAULT_GRACE_S;
	l->nwarn = 2;
	l->warn[0] = 85;
	l->warn[1] = 95;
}
