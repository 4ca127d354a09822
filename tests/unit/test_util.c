/*
** Unit tests for util.c: workspace-name validation, JSON string escaping
** (control bytes, quotes, valid and invalid UTF-8) and str_format's
** truncation report.
*/
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "util.h"

static void test_names(void)
{
	static const char *const good[] = {
		"a", "ws1", "A.b_c-d", "0", "agent-7", "x.", "a..b",
	};
	static const char *const bad[] = {
		"", ".", "..", ".hidden", "-x", "a/b", "/", "a b", "a\n",
		"caf\xc3\xa9", "a:b", "a\\b", "*", "a\x7f",
	};
	char longest[66];
	size_t i;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		CHECK(ws_name_valid(good[i]), "'%s' should be valid", good[i]);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK(!ws_name_valid(bad[i]), "'%s' should be invalid", bad[i]);
	CHECK(!ws_name_valid(NULL), "NULL should be invalid");

	memset(longest, 'n', 64);
	longest[64] = '\0';
	CHECK(ws_name_valid(longest), "a 64-byte name should be valid");
	longest[64] = 'n';
	longest[65] = '\0';
	CHECK(!ws_name_valid(longest), "a 65-byte name should be invalid");
}

/* Returns what json_write_string writes for S; the caller frees it. */
static char *json_of(const char *s)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f;

	f = open_memstream(&buf, &len);
	CHECK(f != NULL, "open_memstream failed");
	json_write_string(f, s);
	CHECK(fclose(f) == 0, "fclose of memstream failed");
	return buf;
}

static void check_json(const char *in, const char *want, const char *what)
{
	char *got = json_of(in);

	CHECK(streq(got, want), "%s: got [%s], want [%s]", what, got, want);
	free(got);
}

static void test_json_ascii(void)
{
	check_json("", "\"\"", "empty string");
	check_json("plain text", "\"plain text\"", "plain");
	check_json("a\"b\\c/d", "\"a\\\"b\\\\c/d\"", "quote and backslash");
	check_json("\n\t\r\b\f", "\"\\n\\t\\r\\b\\f\"", "short escapes");
	check_json("\x01x\x1f", "\"\\u0001x\\u001f\"", "control bytes");
	check_json("\x1b[2J", "\"\\u001b[2J\"", "terminal escape");
	check_json("del\x7f", "\"del\\u007f\"", "DEL");
}

static void test_json_utf8(void)
{
	check_json("caf\xc3\xa9", "\"caf\xc3\xa9\"", "2-byte UTF-8");
	check_json("\xe2\x82\xac", "\"\xe2\x82\xac\"", "3-byte UTF-8");
	check_json("\xf0\x9f\x98\x80", "\"\xf0\x9f\x98\x80\"", "4-byte UTF-8");
	check_json("\xef\xbf\xbf", "\"\xef\xbf\xbf\"", "U+FFFF");
	check_json("\xf4\x8f\xbf\xbf", "\"\xf4\x8f\xbf\xbf\"", "U+10FFFF");
}

static void test_json_invalid_utf8(void)
{
	check_json("\xff", "\"\\u00ff\"", "0xff byte");
	check_json("a\x80z", "\"a\\u0080z\"", "stray continuation byte");
	check_json("x\xc3", "\"x\\u00c3\"", "sequence cut by end of string");
	check_json("\xe2\x82z", "\"\\u00e2\\u0082z\"", "sequence cut short");
	check_json("\xc0\xaf", "\"\\u00c0\\u00af\"", "overlong '/'");
	check_json("\xe0\x80\xaf", "\"\\u00e0\\u0080\\u00af\"",
		   "overlong 3-byte");
	check_json("\xed\xa0\x80", "\"\\u00ed\\u00a0\\u0080\"", "surrogate");
	check_json("\xf4\x90\x80\x80", "\"\\u00f4\\u0090\\u0080\\u0080\"",
		   "above U+10FFFF");
	check_json("\xf8\x88\x80\x80\x80",
		   "\"\\u00f8\\u0088\\u0080\\u0080\\u0080\"", "5-byte form");
	check_json("\xc3\"", "\"\\u00c3\\\"\"", "lead byte before a quote");
}

static void test_str_format(void)
{
	char buf[8];

	CHECK_RC(str_format(buf, sizeof(buf), "%s-%d", "ab", 12), 0);
	CHECK(streq(buf, "ab-12"), "got '%s'", buf);
	CHECK_RC(str_format(buf, sizeof(buf), "%s", "1234567"), 0);
	CHECK(streq(buf, "1234567"), "got '%s'", buf);
	CHECK_RC(str_format(buf, sizeof(buf), "%s", "12345678"), -ENAMETOOLONG);
	CHECK_RC(str_format(buf, sizeof(buf), "%s", "a much longer string"),
		 -ENAMETOOLONG);
	CHECK(strlen(buf) < sizeof(buf), "truncated output not terminated");
}

int main(void)
{
	test_names();
	test_json_ascii();
	test_json_utf8();
	test_json_invalid_utf8();
	test_str_format();
	return 0;
}
