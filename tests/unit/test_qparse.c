/*
** Unit tests for quota/qparse.c: the grammar shared by the daemon's -o
** options, the control socket and wsctl.  Each accepted spelling is checked
** for its exact value; each rejected one for -EINVAL, for leaving the output
** untouched (wsctl relies on that to change nothing on a bad value) and for
** a message that quotes the bad value, so an operator sees what was wrong.
*/
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "qparse.h"
#include "testutil.h"

#define SENTINEL 0x5a5a5a5aULL

typedef int (*parse_fn)(const char *s, uint64_t *out, char *err,
			size_t errlen);

struct good {
	const char *text;
	uint64_t want;
};

static void check_good(parse_fn fn, const char *what, const struct good *g,
		       size_t n)
{
	char err[256];
	uint64_t v;
	size_t i;

	for (i = 0; i < n; i++) {
		v = SENTINEL;
		err[0] = '\0';
		CHECK(fn(g[i].text, &v, err, sizeof(err)) == 0,
		      "%s '%s' rejected: %s", what, g[i].text, err);
		CHECK(v == g[i].want, "%s '%s' gave %llu, want %llu", what,
		      g[i].text, (unsigned long long)v,
		      (unsigned long long)g[i].want);
	}
}

/* The message must quote the whole bad value, as '<value>'. */
static void check_quoted(const char *err, const char *bad)
{
	char quoted[128];

	snprintf(quoted, sizeof(quoted), "'%s'", bad);
	CHECK(strstr(err, quoted) != NULL, "message for '%s' does not quote "
	      "it: %s", bad, err);
}

static void check_bad(parse_fn fn, const char *what, const char *const *bad,
		      size_t n)
{
	char err[256];
	uint64_t v;
	size_t i;

	for (i = 0; i < n; i++) {
		v = SENTINEL;
		err[0] = '\0';
		CHECK_RC(fn(bad[i], &v, err, sizeof(err)), -EINVAL);
		CHECK(v == SENTINEL, "%s '%s': output changed to %llu", what,
		      bad[i], (unsigned long long)v);
		check_quoted(err, bad[i]);
	}
}

static void test_sizes(void)
{
	static const struct good good[] = {
		{ "0", 0 }, { "1", 1 }, { "10G", 10737418240ULL },
		{ "10g", 10737418240ULL }, { "10GiB", 10737418240ULL },
		{ "1KiB", 1024 }, { "1kib", 1024 }, { "1K", 1024 },
		{ "7B", 7 }, { "7b", 7 }, { "3t", 3ULL << 40 },
		{ "2MiB", 2ULL << 20 }, { "none", QUOTA_NONE },
		{ "NONE", QUOTA_NONE },
		{ "9223372036854775807", 9223372036854775807ULL },
		{ "8388607T", 8388607ULL << 40 },
	};
	static const char *const bad[] = {
		"", "-1", "1.5G", "10KB", "10MB", "10 G", " 10G", "G", "0x10",
		"18446744073709551616", "9223372036854775808", "9999999999T",
		"8388608T", "abc", "10GG", "1e3", "+5", "nonesuch",
	};

	check_good(qparse_size, "size", good, sizeof(good) / sizeof(good[0]));
	check_bad(qparse_size, "size", bad, sizeof(bad) / sizeof(bad[0]));
}

static void test_counts(void)
{
	static const struct good good[] = {
		{ "0", 0 }, { "100", 100 }, { "100k", 102400 },
		{ "100K", 102400 }, { "1m", 1048576 }, { "2KiB", 2048 },
		{ "none", QUOTA_NONE },
	};
	static const char *const bad[] = {
		"", "-1", "10B", "1.5k", "10KB", "k", "abc", "0x10",
		"18446744073709551616", "9999999999T",
	};

	check_good(qparse_count, "count", good, sizeof(good) / sizeof(good[0]));
	check_bad(qparse_count, "count", bad, sizeof(bad) / sizeof(bad[0]));
}

static void test_durations(void)
{
	static const struct good good[] = {
		{ "0", 0 }, { "90", 90 }, { "90s", 90 }, { "5m", 300 },
		{ "1h", 3600 }, { "1H", 3600 }, { "2d", 172800 },
		{ "1w", 604800 },
	};
	static const char *const bad[] = {
		"", "-1", "none", "1y", "1.5h", "h", "1 h", "abc",
		"99999999999999999999",
	};

	check_good(qparse_duration, "duration", good,
		   sizeof(good) / sizeof(good[0]));
	check_bad(qparse_duration, "duration", bad,
		  sizeof(bad) / sizeof(bad[0]));
}

static void check_warn(const char *text, char sep, unsigned int n,
		       const unsigned int *want)
{
	struct quota_limits l;
	char err[256] = "";
	unsigned int i;

	quota_limits_default(&l);
	l.nwarn = 77;
	CHECK(qparse_warn(text, sep, &l, err, sizeof(err)) == 0,
	      "warn '%s' rejected: %s", text, err);
	CHECK(l.nwarn == n, "warn '%s': %u thresholds, want %u", text,
	      l.nwarn, n);
	for (i = 0; i < n; i++)
		CHECK(l.warn[i] == want[i], "warn '%s'[%u] = %u, want %u",
		      text, i, l.warn[i], want[i]);
}

static void test_warn(void)
{
	static const char *const bad[] = {
		"", "95,85", "85,85", "0", "101", "1,2,3,4,5", "85,", ",85",
		"85;95", "85 ,95", "-5", "abc", "85:95",
	};
	static const unsigned int w8595[] = { 85, 95 };
	static const unsigned int w100[] = { 100 };
	static const unsigned int w1234[] = { 1, 2, 3, 4 };
	struct quota_limits l, before;
	char err[256];
	size_t i;

	check_warn("85,95", ',', 2, w8595);
	check_warn("85:95", ':', 2, w8595);
	check_warn("100", ',', 1, w100);
	check_warn("1,2,3,4", ',', 4, w1234);
	check_warn("none", ',', 0, NULL);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		quota_limits_default(&l);
		before = l;
		err[0] = '\0';
		CHECK_RC(qparse_warn(bad[i], ',', &l, err, sizeof(err)),
			 -EINVAL);
		CHECK(memcmp(&l, &before, sizeof(l)) == 0,
		      "warn '%s' changed the limits", bad[i]);
		check_quoted(err, bad[i]);
	}
}

static void test_format(void)
{
	struct quota_limits l;
	char buf[64];

	qformat_size(12288, buf, sizeof(buf));
	CHECK(streq(buf, "12 KiB"), "got '%s'", buf);
	qformat_size(10737418240ULL, buf, sizeof(buf));
	CHECK(streq(buf, "10 GiB"), "got '%s'", buf);
	qformat_size(37, buf, sizeof(buf));
	CHECK(streq(buf, "37 B"), "got '%s'", buf);
	qformat_size(1536, buf, sizeof(buf));
	CHECK(streq(buf, "1.5 KiB"), "got '%s'", buf);
	qformat_size(QUOTA_NONE, buf, sizeof(buf));
	CHECK(streq(buf, "none"), "got '%s'", buf);
	qformat_value(65536, buf, sizeof(buf));
	CHECK(streq(buf, "65536"), "got '%s'", buf);
	qformat_value(QUOTA_NONE, buf, sizeof(buf));
	CHECK(streq(buf, "none"), "got '%s'", buf);
	quota_limits_default(&l);
	qformat_warn(&l, ',', buf, sizeof(buf));
	CHECK(streq(buf, "85,95"), "got '%s'", buf);
	qformat_warn(&l, ':', buf, sizeof(buf));
	CHECK(streq(buf, "85:95"), "got '%s'", buf);
	l.nwarn = 0;
	qformat_warn(&l, ',', buf, sizeof(buf));
	CHECK(streq(buf, "none"), "got '%s'", buf);
}

int main(void)
{
	test_sizes();
	test_counts();
	test_durations();
	test_warn();
	test_format();
	return 0;
}
