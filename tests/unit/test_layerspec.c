/*
** Unit tests for layerspec.c: parsing -o layer= and -o ephemeral= values,
** checking stacks, and storing them in state.db, including the upgrade of
** older state.db files that predate the layers table.
**
** Sources must exist, so the tests build a small tree under a scratch
** directory; the scratch directory itself may sit behind a symlink (a /tmp
** on another mount), so expected sources are always compared with its
** realpath.
*/
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "layerspec.h"
#include "registry.h"
#include "testutil.h"

#define MAX_STACK 8

/* Short enough that every path built from them fits PATH_MAX. */
static char tmp[1024];		/* realpath of the scratch directory */
static char src1[1100], src2[1100], upper[1100];

static void make_dir(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));

static void make_dir(const char *fmt, ...)
{
	char path[PATH_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(path, sizeof(path), fmt, ap);
	va_end(ap);
	CHECK(mkdir(path, 0755) == 0, "mkdir %s: %s", path, strerror(errno));
}

static void setup_tree(void)
{
	char *real = realpath(test_tmpdir(), NULL);
	FILE *f;

	CHECK(real != NULL && strlen(real) < sizeof(tmp), "realpath: %s",
	      strerror(errno));
	snprintf(tmp, sizeof(tmp), "%s", real);
	free(real);
	snprintf(src1, sizeof(src1), "%s/src1", tmp);
	snprintf(src2, sizeof(src2), "%s/src 2", tmp);
	snprintf(upper, sizeof(upper), "%s/up", tmp);
	make_dir("%s", src1);
	make_dir("%s", src2);
	make_dir("%s", upper);
	make_dir("%s/inner", upper);
	make_dir("%s/upx", tmp);
	make_dir("%s/src1/sub", tmp);
	CHECK(chdir(tmp) == 0, "chdir: %s", strerror(errno));
	CHECK(symlink("src1", "link1") == 0, "symlink: %s", strerror(errno));
	CHECK(symlink("up", "uplink") == 0, "symlink: %s", strerror(errno));
	f = fopen("file", "w");
	CHECK(f != NULL && fclose(f) == 0, "cannot create %s/file", tmp);
}

/* ---- parsing ------------------------------------------------------------ */

static void parse_ok(const char *text, enum layer_mode mode,
		     const char *source, const char *target)
{
	struct layer_spec s;
	char err[512] = "";

	CHECK(layer_spec_parse(text, &s, err, sizeof(err)) == 0,
	      "'%s' refused: %s", text, err);
	CHECK(s.mode == mode, "'%s': mode %s", text, layer_mode_name(s.mode));
	CHECK(streq(s.source, source), "'%s': source '%s', want '%s'", text,
	      s.source, source);
	CHECK(streq(s.target, target), "'%s': target '%s', want '%s'", text,
	      s.target, target);
	layer_spec_free(&s);
	CHECK(s.source == NULL && s.target == NULL, "free left pointers");
}

/* Checks that TEXT is refused with a one-line message that starts with
** "layer 'TEXT': " (control bytes shown as '?') and contains WANT. */
static void parse_bad(const char *text, const char *want)
{
	char err[2048] = "", prefix[1200];
	struct layer_spec s;
	char *p;

	CHECK(layer_spec_parse(text, &s, err, sizeof(err)) == -1,
	      "'%s' accepted", text);
	CHECK(s.source == NULL && s.target == NULL, "'%s': output set", text);
	/* Long values are quoted in part (see QUOTE_MAX in layerspec.c). */
	if (strlen(text) > 240)
		snprintf(prefix, sizeof(prefix), "layer '%.240s...': ", text);
	else
		snprintf(prefix, sizeof(prefix), "layer '%s': ", text);
	for (p = prefix; *p != '\0'; p++) {
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	}
	CHECK(strncmp(err, prefix, strlen(prefix)) == 0, "'%s': message '%s'",
	      text, err);
	CHECK(strstr(err, want) != NULL, "'%s': message '%s' lacks '%s'",
	      text, err, want);
	for (p = err; *p != '\0'; p++)
		CHECK((unsigned char)*p >= 0x20 && *p != 0x7f,
		      "control byte in '%s'", err);
}

static void test_parse_good(void)
{
	char text[PATH_MAX + 64], want[PATH_MAX];

	snprintf(text, sizeof(text), "%s:/in", src1);
	parse_ok(text, LAYER_RO, src1, "/in");
	snprintf(text, sizeof(text), "%s:/in:ro", src1);
	parse_ok(text, LAYER_RO, src1, "/in");
	snprintf(text, sizeof(text), "%s://a//b///:cow", src1);
	parse_ok(text, LAYER_COW, src1, "/a/b");
	snprintf(text, sizeof(text), "%s:/:cow", src1);
	parse_ok(text, LAYER_COW, src1, "/");
	snprintf(text, sizeof(text), "%s:///:cow", src1);
	parse_ok(text, LAYER_COW, src1, "/");
	/* Names that merely start with dots are ordinary names. */
	snprintf(text, sizeof(text), "%s:/.git/.../..x/x..", src1);
	parse_ok(text, LAYER_RO, src1, "/.git/.../..x/x..");
	/* A space would make the status reply's target ambiguous. */
	snprintf(text, sizeof(text), "%s:/with space", src2);
	parse_bad(text, "target '/with space' contains a space");

	/* Sources are resolved: symlinks, "." and "..", trailing slashes. */
	snprintf(text, sizeof(text), "%s/link1:/in", tmp);
	parse_ok(text, LAYER_RO, src1, "/in");
	snprintf(text, sizeof(text), "%s/./src1/sub/..//:/in", tmp);
	parse_ok(text, LAYER_RO, src1, "/in");
	parse_ok("/:/host", LAYER_RO, "/", "/host");
	snprintf(want, sizeof(want), "%s/sub", src1);
	snprintf(text, sizeof(text), "%s/link1/sub:/in:cow", tmp);
	parse_ok(text, LAYER_COW, want, "/in");
}

static void test_parse_bad(void)
{
	char text[PATH_MAX + 64], want[PATH_MAX + 64];
	char err[512];
	struct layer_spec s;

	parse_bad("/nope-wsfs-test:/in", "source '/nope-wsfs-test': "
		  "No such file or directory");
	CHECK(layer_spec_parse("/nope-wsfs-test:/in", &s, err,
			       sizeof(err)) == -1, "accepted");
	CHECK(streq(err, "layer '/nope-wsfs-test:/in': source "
		    "'/nope-wsfs-test': No such file or directory"),
	      "message '%s'", err);
	snprintf(text, sizeof(text), "%s/file:/in", tmp);
	snprintf(want, sizeof(want), "source '%s/file' is not a directory",
		 tmp);
	parse_bad(text, want);
	snprintf(text, sizeof(text), "%s/file/x:/in", tmp);
	parse_bad(text, "Not a directory");
	parse_bad("src1:/in", "source 'src1' is not an absolute path");
	parse_bad("./src1:/in", "source './src1' is not an absolute path");

	/* The fields themselves. */
	snprintf(text, sizeof(text), "%s", src1);
	parse_bad(text, "no target");
	snprintf(text, sizeof(text), "%s:/in:ro:x", src1);
	parse_bad(text, "too many ':'");
	parse_bad(":/in", "empty source");
	snprintf(text, sizeof(text), "%s:", src1);
	parse_bad(text, "empty target");
	snprintf(text, sizeof(text), "%s::cow", src1);
	parse_bad(text, "empty target");
	parse_bad("", "no target");
	parse_bad(":", "empty source");
	CHECK(layer_spec_parse(NULL, &s, err, sizeof(err)) == -1 &&
	      strncmp(err, "layer '': ", 10) == 0, "NULL: '%s'", err);

	/* Modes: only ro and cow, named in the message. */
	snprintf(text, sizeof(text), "%s:/in:rw", src1);
	parse_bad(text, "unknown mode 'rw'; use ro or cow");
	snprintf(text, sizeof(text), "%s:/in:", src1);
	parse_bad(text, "unknown mode ''; use ro or cow");
	snprintf(text, sizeof(text), "%s:/in:RO", src1);
	parse_bad(text, "unknown mode 'RO'");
	snprintf(text, sizeof(text), "%s:/in:ephemeral", src1);
	parse_bad(text, "mode 'ephemeral' is not accepted here; use ro or cow");
}

static void test_parse_targets(void)
{
	char text[PATH_MAX + 4096], target[4096];
	size_t len;

	snprintf(text, sizeof(text), "%s:in", src1);
	parse_bad(text, "target 'in' is not an absolute path");
	snprintf(text, sizeof(text), "%s:/a/../b", src1);
	parse_bad(text, "target '/a/../b' has a '..' component");
	snprintf(text, sizeof(text), "%s:/..", src1);
	parse_bad(text, "target '/..' has a '..' component");
	snprintf(text, sizeof(text), "%s:/a/./b", src1);
	parse_bad(text, "target '/a/./b' has a '.' component");
	snprintf(text, sizeof(text), "%s:/a/.", src1);
	parse_bad(text, "target '/a/.' has a '.' component");
	snprintf(text, sizeof(text), "%s:/a\nb", src1);
	parse_bad(text, "target '/a?b' contains a control character");
	snprintf(text, sizeof(text), "%s:/a\tb:cow", src1);
	parse_bad(text, "contains a control character");
	snprintf(text, sizeof(text), "%s:/a\x7f", src1);
	parse_bad(text, "contains a control character");

	/* One component of NAME_MAX bytes is fine, one more is not. */
	target[0] = '/';
	memset(target + 1, 'n', NAME_MAX);
	target[NAME_MAX + 1] = '\0';
	snprintf(text, sizeof(text), "%s:%s", src1, target);
	parse_ok(text, LAYER_RO, src1, target);
	strcat(target, "n");
	snprintf(text, sizeof(text), "%s:%s", src1, target);
	parse_bad(text, "has a component longer than 255 bytes");

	/* LAYER_TARGET_MAX bytes after normalising, so extra slashes do not
	** count against it. */
	for (len = 0; len + 101 <= LAYER_TARGET_MAX - 14; len += 101) {
		target[len] = '/';
		memset(target + len + 1, 'c', 100);
	}
	target[len++] = '/';
	memset(target + len, 'd', LAYER_TARGET_MAX - len);
	target[LAYER_TARGET_MAX] = '\0';
	CHECK(strlen(target) == LAYER_TARGET_MAX, "built %zu", strlen(target));
	snprintf(text, sizeof(text), "%s:%s", src1, target);
	parse_ok(text, LAYER_RO, src1, target);
	snprintf(text, sizeof(text), "%s:%s///", src1, target);
	parse_ok(text, LAYER_RO, src1, target);
	snprintf(text, sizeof(text), "%s:%sd", src1, target);
	parse_bad(text, "is longer than 1024 bytes");

	/* Sources with control bytes would break the status reply's line. */
	snprintf(text, sizeof(text), "%s/a\nb:/in", tmp);
	parse_bad(text, "contains a control character");
}

static void test_parse_small_err(void)
{
	struct layer_spec s;
	char err[8];

	CHECK(layer_spec_parse("nope:/x", &s, err, sizeof(err)) == -1, "ok");
	CHECK(streq(err, "layer '"), "truncated to '%s'", err);
	CHECK(layer_spec_parse("nope:/x", &s, NULL, 0) == -1, "ok");
	CHECK(layer_spec_parse_ephemeral("x", &s, NULL, 0) == -1, "ok");
}

static void eph_ok(const char *text, const char *target)
{
	struct layer_spec s;
	char err[512] = "";

	CHECK(layer_spec_parse_ephemeral(text, &s, err, sizeof(err)) == 0,
	      "'%s' refused: %s", text ? text : "(null)", err);
	CHECK(s.mode == LAYER_EPHEMERAL, "mode %s", layer_mode_name(s.mode));
	CHECK(s.source == NULL, "source '%s'", s.source);
	CHECK(streq(s.target, target), "target '%s', want '%s'", s.target,
	      target);
	layer_spec_free(&s);
}

static void eph_bad(const char *text, const char *want)
{
	struct layer_spec s;
	char err[512] = "";

	CHECK(layer_spec_parse_ephemeral(text, &s, err, sizeof(err)) == -1,
	      "'%s' accepted", text);
	CHECK(s.source == NULL && s.target == NULL, "output set");
	CHECK(streq(err, want), "message '%s', want '%s'", err, want);
}

static void test_parse_ephemeral(void)
{
	eph_ok(NULL, "/");
	eph_ok("", "/");
	eph_ok("/", "/");
	eph_ok("//", "/");
	eph_ok("/scratch/", "/scratch");
	eph_ok("//tmp//x", "/tmp/x");
	eph_ok("/a:b", "/a:b");
	eph_bad("tmp", "ephemeral 'tmp': target 'tmp' is not an absolute "
		"path");
	eph_bad("/a/..", "ephemeral '/a/..': target '/a/..' has a '..' "
		"component");
	eph_bad("/a\n/b", "ephemeral '/a?/b': target '/a?/b' contains a "
		"control character");
	CHECK(streq(layer_mode_name(LAYER_RO), "ro") &&
	      streq(layer_mode_name(LAYER_COW), "cow") &&
	      streq(layer_mode_name(LAYER_EPHEMERAL), "ephemeral"), "names");
}

/* ---- stacks ------------------------------------------------------------- */

/*
** Builds a stack from the NULL-terminated items and checks it against
** UPPER_DIR.  An item "e:TARGET" is an ephemeral value, "e:" the whole
** upper; any other item is a layer value, in which "@1" and "@2" at the
** start stand for the two source directories.  Returns layer_stack_check's
** result, with its message in ERR.
*/
static int stack(const char *upper_dir, char *err, size_t errlen, ...)
{
	struct layer_spec v[MAX_STACK];
	char text[PATH_MAX + 64], perr[512];
	const char *item;
	size_t n = 0;
	va_list ap;
	int rc;

	va_start(ap, errlen);
	while ((item = va_arg(ap, const char *)) != NULL) {
		CHECK(n < MAX_STACK, "stack too big");
		if (strncmp(item, "e:", 2) == 0) {
			rc = layer_spec_parse_ephemeral(item + 2, &v[n], perr,
							sizeof(perr));
		} else {
			if (strncmp(item, "@1", 2) == 0)
				snprintf(text, sizeof(text), "%s%s", src1,
					 item + 2);
			else if (strncmp(item, "@2", 2) == 0)
				snprintf(text, sizeof(text), "%s%s", src2,
					 item + 2);
			else
				snprintf(text, sizeof(text), "%s", item);
			rc = layer_spec_parse(text, &v[n], perr, sizeof(perr));
		}
		CHECK(rc == 0, "item '%s': %s", item, perr);
		n++;
	}
	va_end(ap);
	err[0] = '\0';
	rc = layer_stack_check(v, n, upper_dir, err, errlen);
	CHECK(rc == 0 || rc == -1, "returned %d", rc);
	CHECK(rc == 0 || strchr(err, '\n') == NULL, "multi-line '%s'", err);
	while (n > 0)
		layer_spec_free(&v[--n]);
	return rc;
}

#define STACK_OK(up, ...)						\
	do {								\
		char e_[1024];						\
		CHECK(stack(up, e_, sizeof(e_), __VA_ARGS__, NULL) == 0, \
		      "refused: %s", e_);				\
	} while (0)

/* Refused, with a message containing WANT. */
#define STACK_BAD(up, want, ...)					\
	do {								\
		char e_[1024];						\
		CHECK(stack(up, e_, sizeof(e_), __VA_ARGS__, NULL) == -1, \
		      "accepted");					\
		CHECK(strstr(e_, want) != NULL, "message '%s' lacks '%s'", \
		      e_, want);					\
	} while (0)

static void test_stack_targets(void)
{
	char err[512];

	CHECK(layer_stack_check(NULL, 0, upper, err, sizeof(err)) == 0,
	      "empty stack: %s", err);
	STACK_OK(upper, "@1:/in", "@2:/out");
	STACK_OK(upper, "@1:/in", "@1:/in2");		/* one source twice */
	STACK_OK(upper, "@1:/a", "@2:/ab");		/* not nested */
	STACK_OK(upper, "@1:/a/b", "@2:/a/bc:cow", "e:/a/b-c");
	/* cow layers may share a target: they merge. */
	STACK_OK(upper, "@1:/base:cow", "@2:/base:cow");
	STACK_OK(upper, "@1:/:cow", "@2:/:cow");
	/* cow "/" is under everything. */
	STACK_OK(upper, "@1:/:cow", "@2:/in", "e:/tmp", "@2:/base:cow");
	STACK_OK(upper, "@1:/:cow", "@2:/in/deep/er");

	STACK_BAD(upper, "ro layer '", "@1:/");
	STACK_BAD(upper, "cannot be at '/'", "@1:/:cow", "@2:/:ro");
	STACK_BAD(upper, "layers overlap: '/in' and '/in/sub'",
		  "@1:/in", "@2:/in/sub");
	STACK_BAD(upper, "layers overlap: '/in/sub' and '/in'",
		  "@1:/:cow", "@1:/in/sub", "@2:/in");
	STACK_BAD(upper, "layers overlap: '/in' and '/in'", "@1:/in", "@2:/in");
	STACK_BAD(upper, "layers overlap: '/in' and '/in'",
		  "@1:/in:cow", "@2:/in");
	STACK_BAD(upper, "layers overlap: '/in' and '/in'",
		  "@1:/in", "@2:/in:cow");
	STACK_BAD(upper, "layers overlap: '/a' and '/a/b'",
		  "@1:/a:cow", "@2:/a/b:cow");
	STACK_BAD(upper, "layers overlap: '/a/b' and '/a'",
		  "@1:/a/b:cow", "@2:/a:cow");
	STACK_BAD(upper, "layers overlap: '/a' and '/a/tmp'",
		  "@1:/a:cow", "e:/a/tmp");
	STACK_BAD(upper, "layers overlap: '/t' and '/t'", "e:/t", "e:/t");
	STACK_BAD(upper, "layers overlap: '/t' and '/t/u'", "e:/t", "e:/t/u");
	STACK_BAD(upper, "layers overlap: '/t/u' and '/t'", "e:/t/u", "@1:/t");
}

static void test_stack_upper(void)
{
	char err[512], up[PATH_MAX + 16], item[PATH_MAX];

	/* Ephemeral "/" is the upper: inputs and scratch go on top of it. */
	STACK_OK(NULL, "e:");
	STACK_OK(NULL, "e:/", "@1:/in", "@2:/:cow", "e:/tmp", "@2:/b:cow");
	STACK_BAD(upper, "ephemeral with no target makes the whole upper "
		  "ephemeral; do not give upper= too", "e:");
	STACK_BAD(NULL, "no upper directory", "@1:/in");
	CHECK(layer_stack_check(NULL, 0, NULL, err, sizeof(err)) == -1 &&
	      strstr(err, "no upper directory") != NULL, "'%s'", err);
	STACK_BAD(NULL, "ephemeral with no target given twice", "e:", "e:/");
	STACK_BAD(NULL, "cannot be at '/'", "e:", "@1:/");

	/* Sources and the upper, by real path and whole components. */
	snprintf(up, sizeof(up), "%s/src1", tmp);
	STACK_BAD(up, "is the upper", "@1:/in");
	STACK_BAD(up, "contains the upper", "@1/..:/in");
	snprintf(up, sizeof(up), "%s/src1/sub", tmp);
	STACK_BAD(up, "contains the upper", "@2:/x", "@1:/in");
	snprintf(up, sizeof(up), "%s/link1/sub/", tmp);
	STACK_BAD(up, "contains the upper", "@1:/in");
	snprintf(item, sizeof(item), "%s/inner:/in", upper);
	STACK_BAD(upper, "is inside the upper", item);
	snprintf(item, sizeof(item), "%s/uplink/inner:/in", tmp);
	STACK_BAD(upper, "is inside the upper", item);
	snprintf(up, sizeof(up), "%s/uplink", tmp);
	snprintf(item, sizeof(item), "%s:/in", upper);
	STACK_BAD(up, "is the upper", item);
	snprintf(item, sizeof(item), "%s/upx:/in", tmp);
	STACK_OK(upper, item);
	/* An upper not made yet is compared as written. */
	snprintf(up, sizeof(up), "%s/src1/new//", tmp);
	STACK_BAD(up, "contains the upper", "@1:/in");
	STACK_BAD("/", "is inside the upper '/'", "@1:/in");
	STACK_BAD(upper, "layer source '/' contains the upper", "/:/host");
}

static void test_stack_messages(void)
{
	char want[PATH_MAX * 2];
	char err[1024];

	CHECK(stack(upper, err, sizeof(err), "@1:/in", "@2:/in/sub", NULL) ==
	      -1, "accepted");
	CHECK(streq(err, "layers overlap: '/in' and '/in/sub'"), "'%s'", err);
	snprintf(want, sizeof(want), "%s/inner:/in", upper);
	CHECK(stack(upper, err, sizeof(err), want, NULL) == -1, "accepted");
	snprintf(want, sizeof(want), "layer source '%s/inner' is inside the "
		 "upper '%s'", upper, upper);
	CHECK(streq(err, want), "'%s'", err);
}

static void test_stack_malformed(void)
{
	struct layer_spec v[2] = {
		{ LAYER_RO, src1, (char *)"/a//b" },
		{ LAYER_EPHEMERAL, src1, (char *)"/e" },
	};
	char err[512];

	CHECK(layer_stack_check(v, 1, upper, err, sizeof(err)) == -1 &&
	      strstr(err, "layer 0 is malformed") != NULL, "'%s'", err);
	CHECK(layer_stack_check(v + 1, 1, upper, err, sizeof(err)) == -1 &&
	      strstr(err, "layer 0 is malformed") != NULL, "'%s'", err);
	v[0].target = NULL;
	CHECK(layer_stack_check(v, 1, upper, err, sizeof(err)) == -1, "ok");
	v[0].target = (char *)"/a";
	v[0].source = (char *)"rel";
	CHECK(layer_stack_check(v, 1, upper, err, sizeof(err)) == -1, "ok");
}

/* ---- state.db ----------------------------------------------------------- */

static struct registry *open_reg(const char *dir, int create)
{
	struct registry *reg = NULL;
	char err[512] = "";

	CHECK(registry_open(dir, create, &reg, err, sizeof(err)) == 0,
	      "registry_open %s: %s", dir, err);
	return reg;
}

/* Runs SQL on DIR/state.db with its own connection; the first column of
** the first row goes to OUT ("" if none). */
static void sql(const char *dir, const char *stmt, char *out, size_t len)
{
	char path[PATH_MAX + 16];
	sqlite3_stmt *st;
	sqlite3 *db;
	int rc;

	snprintf(path, sizeof(path), "%s/state.db", dir);
	CHECK(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE |
			      SQLITE_OPEN_CREATE, NULL) == SQLITE_OK,
	      "cannot open %s", path);
	if (out == NULL) {
		CHECK(sqlite3_exec(db, stmt, NULL, NULL, NULL) == SQLITE_OK,
		      "'%s': %s", stmt, sqlite3_errmsg(db));
	} else {
		CHECK(sqlite3_prepare_v2(db, stmt, -1, &st, NULL) == SQLITE_OK,
		      "prepare '%s': %s", stmt, sqlite3_errmsg(db));
		out[0] = '\0';
		rc = sqlite3_step(st);
		CHECK(rc == SQLITE_ROW || rc == SQLITE_DONE, "'%s': %s", stmt,
		      sqlite3_errmsg(db));
		if (rc == SQLITE_ROW && sqlite3_column_text(st, 0) != NULL)
			snprintf(out, len, "%s", sqlite3_column_text(st, 0));
		sqlite3_finalize(st);
	}
	CHECK(sqlite3_close(db) == SQLITE_OK, "sqlite3_close");
}

static void check_spec(const struct layer_spec *s, enum layer_mode mode,
		       const char *source, const char *target)
{
	CHECK(s->mode == mode, "mode %s", layer_mode_name(s->mode));
	CHECK(source == NULL ? s->source == NULL : streq(s->source, source),
	      "source '%s', want '%s'", s->source, source);
	CHECK(streq(s->target, target), "target '%s', want '%s'", s->target,
	      target);
}

static void parse3(struct layer_spec v[3])
{
	char text[PATH_MAX + 64], err[512] = "";

	snprintf(text, sizeof(text), "%s:/in", src1);
	CHECK(layer_spec_parse(text, &v[0], err, sizeof(err)) == 0, "%s", err);
	snprintf(text, sizeof(text), "%s:/:cow", src2);
	CHECK(layer_spec_parse(text, &v[1], err, sizeof(err)) == 0, "%s", err);
	CHECK(layer_spec_parse_ephemeral("/tmp", &v[2], err, sizeof(err)) == 0,
	      "%s", err);
}

static void test_registry_roundtrip(const char *dir)
{
	struct layer_spec in[3], *out = (struct layer_spec *)1, bad;
	struct registry *reg = open_reg(dir, 1);
	char err[512] = "", buf[64];
	size_t n = 99;

	/* Nothing stored yet. */
	CHECK_RC(registry_get_layers(reg, "w1", &out, &n, err, sizeof(err)), 0);
	CHECK(out == NULL && n == 0, "n=%zu", n);

	parse3(in);
	CHECK_RC(registry_set_layers(reg, "w1", in, 3, err, sizeof(err)), 0);
	CHECK_RC(registry_set_layers(reg, "w2", in + 2, 1, err, sizeof(err)),
		 0);
	CHECK_RC(registry_get_layers(reg, "w1", &out, &n, err, sizeof(err)), 0);
	CHECK(n == 3, "n=%zu", n);
	check_spec(&out[0], LAYER_RO, src1, "/in");
	check_spec(&out[1], LAYER_COW, src2, "/");
	check_spec(&out[2], LAYER_EPHEMERAL, NULL, "/tmp");
	layer_stack_free(out, n);
	sql(dir, "SELECT group_concat(mode || ' ' || target || ' ' || "
	    "position, ',') FROM (SELECT * FROM layers WHERE name = 'w1' "
	    "ORDER BY position)", buf, sizeof(buf));
	CHECK(streq(buf, "ro /in 0,cow / 1,ephemeral /tmp 2"), "rows '%s'",
	      buf);

	/* Replacing keeps nothing of the old stack, and other names alone. */
	CHECK_RC(registry_set_layers(reg, "w1", in + 1, 1, err, sizeof(err)),
		 0);
	CHECK_RC(registry_get_layers(reg, "w1", &out, &n, err, sizeof(err)), 0);
	CHECK(n == 1, "n=%zu", n);
	check_spec(&out[0], LAYER_COW, src2, "/");
	layer_stack_free(out, n);
	CHECK_RC(registry_get_layers(reg, "w2", &out, &n, err, sizeof(err)), 0);
	CHECK(n == 1, "n=%zu", n);
	check_spec(&out[0], LAYER_EPHEMERAL, NULL, "/tmp");
	layer_stack_free(out, n);
	CHECK_RC(registry_set_layers(reg, "w1", NULL, 0, err, sizeof(err)), 0);
	CHECK_RC(registry_get_layers(reg, "w1", &out, &n, err, sizeof(err)), 0);
	CHECK(out == NULL && n == 0, "n=%zu after clearing", n);
	CHECK_RC(registry_get_layers(reg, "unknown", &out, &n, err,
				     sizeof(err)), 0);
	CHECK(out == NULL && n == 0, "n=%zu for an unknown name", n);

	/* Bad input changes nothing. */
	CHECK_RC(registry_set_layers(reg, "../x", in, 1, err, sizeof(err)),
		 -EINVAL);
	CHECK(strstr(err, "'../x'") != NULL, "'%s'", err);
	CHECK_RC(registry_get_layers(reg, "../x", &out, &n, err, sizeof(err)),
		 -EINVAL);
	bad = in[0];
	bad.target = (char *)"/in/";
	CHECK_RC(registry_set_layers(reg, "w2", &bad, 1, err, sizeof(err)),
		 -EINVAL);
	CHECK(strstr(err, "malformed") != NULL, "'%s'", err);
	CHECK_RC(registry_get_layers(reg, "w2", &out, &n, err, sizeof(err)), 0);
	CHECK(n == 1 && out[0].mode == LAYER_EPHEMERAL, "w2 changed");
	layer_stack_free(out, n);

	/* A hand-edited row is refused, not trusted. */
	sql(dir, "INSERT INTO layers VALUES('w3', 0, 'rw', '/x', '/y')",
	    NULL, 0);
	CHECK_RC(registry_get_layers(reg, "w3", &out, &n, err, sizeof(err)),
		 -EUCLEAN);
	CHECK(out == NULL && n == 0 && strstr(err, "'w3'") != NULL, "'%s'",
	      err);
	sql(dir, "UPDATE layers SET mode = 'ro', target = '/y/../z' "
	    "WHERE name = 'w3'", NULL, 0);
	CHECK_RC(registry_get_layers(reg, "w3", &out, &n, err, sizeof(err)),
		 -EUCLEAN);
	sql(dir, "UPDATE layers SET target = '/z', source = NULL "
	    "WHERE name = 'w3'", NULL, 0);
	CHECK_RC(registry_get_layers(reg, "w3", &out, &n, err, sizeof(err)),
		 -EUCLEAN);

	layer_stack_free(NULL, 0);
	for (n = 0; n < 3; n++)
		layer_spec_free(&in[n]);
	registry_close(reg);
}

/* A state directory no daemon has used has no state.db, hence no layers. */
static void test_registry_no_db(const char *dir)
{
	struct layer_spec *out = NULL, one;
	struct registry *reg;
	char err[512] = "";
	size_t n = 7;

	make_dir("%s", dir);
	reg = open_reg(dir, 0);
	CHECK_RC(registry_get_layers(reg, "w1", &out, &n, err, sizeof(err)), 0);
	CHECK(out == NULL && n == 0, "n=%zu", n);
	CHECK(layer_spec_parse_ephemeral(NULL, &one, err, sizeof(err)) == 0,
	      "%s", err);
	CHECK_RC(registry_set_layers(reg, "w1", &one, 1, err, sizeof(err)),
		 -ENOENT);
	CHECK(strstr(err, "no state.db") != NULL, "'%s'", err);
	layer_spec_free(&one);
	registry_close(reg);
}

/* The schema of version 1 (mounts and meta) and what versions 2 and 3
** added. */
static const char v1_sql[] =
	"CREATE TABLE mounts(name TEXT PRIMARY KEY, mountpoint TEXT NOT NULL, "
	"upper TEXT NOT NULL, pid INTEGER NOT NULL, "
	"start_time INTEGER NOT NULL, socket TEXT NOT NULL);"
	"CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT);"
	"INSERT INTO mounts VALUES('old', '/mnt/old', '/srv/old', 1, 2, '/s');";
static const char v2_sql[] =
	"CREATE TABLE quotas(name TEXT PRIMARY KEY, bytes INTEGER, "
	"inodes INTEGER, soft_bytes INTEGER, soft_inodes INTEGER, "
	"grace INTEGER NOT NULL, warn TEXT NOT NULL, "
	"used_bytes INTEGER NOT NULL DEFAULT 0, "
	"used_inodes INTEGER NOT NULL DEFAULT 0, "
	"soft_bytes_since INTEGER NOT NULL DEFAULT 0, "
	"soft_inodes_since INTEGER NOT NULL DEFAULT 0, "
	"clean INTEGER NOT NULL DEFAULT 0, upper TEXT NOT NULL DEFAULT '', "
	"updated INTEGER NOT NULL DEFAULT 0);"
	"CREATE TABLE quota_xattrs(name TEXT NOT NULL, ino INTEGER NOT NULL, "
	"bytes INTEGER NOT NULL, PRIMARY KEY(name, ino));"
	"INSERT INTO quotas(name, bytes, grace, warn) "
	"VALUES('old', 1024, 3600, '85,95');";
static const char v3_sql[] =
	"CREATE TABLE layers(name TEXT NOT NULL, position INTEGER NOT NULL, "
	"mode TEXT NOT NULL, source TEXT, target TEXT NOT NULL, "
	"PRIMARY KEY(name, position));";

static void make_old_db(const char *dir, int version)
{
	char stmt[128];

	make_dir("%s", dir);
	make_dir("%s/run", dir);
	sql(dir, v1_sql, NULL, 0);
	if (version >= 2)
		sql(dir, v2_sql, NULL, 0);
	if (version >= 3)
		sql(dir, v3_sql, NULL, 0);
	snprintf(stmt, sizeof(stmt), "INSERT INTO meta VALUES("
		 "'schema_version', '%d')", version);
	sql(dir, stmt, NULL, 0);
}

static void test_upgrade(const char *dir, int version)
{
	struct layer_spec in[3], *out;
	struct registry *reg;
	char err[512] = "", buf[64];
	struct ws_mount m;
	size_t n;

	make_old_db(dir, version);

	/* A reader (wsctl) never writes, so it does not upgrade either. */
	reg = open_reg(dir, 0);
	registry_close(reg);
	sql(dir, "SELECT value FROM meta WHERE key = 'schema_version'", buf,
	    sizeof(buf));
	CHECK(buf[0] == '0' + version && buf[1] == '\0', "version '%s'", buf);

	reg = open_reg(dir, 1);
	sql(dir, "SELECT value FROM meta WHERE key = 'schema_version'", buf,
	    sizeof(buf));
	CHECK(streq(buf, "4"), "version %d upgraded to '%s'", version, buf);
	sql(dir, "SELECT count(*) FROM meta", buf, sizeof(buf));
	CHECK(streq(buf, "1"), "%s meta rows", buf);
	/* What was there survives. */
	CHECK_RC(registry_get(reg, "old", &m), 0);
	CHECK(streq(m.mountpoint, "/mnt/old"), "mountpoint '%s'",
	      m.mountpoint);
	sql(dir, "SELECT count(*) FROM quotas", buf, sizeof(buf));
	CHECK(streq(buf, version >= 2 ? "1" : "0"), "%s quota rows", buf);

	parse3(in);
	CHECK_RC(registry_set_layers(reg, "old", in, 3, err, sizeof(err)), 0);
	CHECK_RC(registry_get_layers(reg, "old", &out, &n, err, sizeof(err)),
		 0);
	CHECK(n == 3, "n=%zu", n);
	check_spec(&out[1], LAYER_COW, src2, "/");
	layer_stack_free(out, n);
	for (n = 0; n < 3; n++)
		layer_spec_free(&in[n]);
	registry_close(reg);

	/* Opening the upgraded file again changes nothing. */
	reg = open_reg(dir, 1);
	sql(dir, "SELECT value FROM meta WHERE key = 'schema_version'", buf,
	    sizeof(buf));
	CHECK(streq(buf, "4"), "version '%s'", buf);
	registry_close(reg);
}

/* A file from a newer build is left alone. */
static void test_newer_schema(const char *dir)
{
	struct registry *reg = NULL;
	char err[512] = "", buf[64];

	make_old_db(dir, 2);
	sql(dir, "UPDATE meta SET value = '5'", NULL, 0);
	CHECK_RC(registry_open(dir, 1, &reg, err, sizeof(err)), -EPROTO);
	CHECK(reg == NULL && strstr(err, "schema version 5") != NULL, "'%s'",
	      err);
	sql(dir, "SELECT count(*) FROM sqlite_master WHERE name = 'layers'",
	    buf, sizeof(buf));
	CHECK(streq(buf, "0"), "layers table created in a newer file");
}

int main(void)
{
	char dir[PATH_MAX + 16];

	setup_tree();
	test_parse_good();
	test_parse_bad();
	test_parse_targets();
	test_parse_small_err();
	test_parse_ephemeral();
	test_stack_targets();
	test_stack_upper();
	test_stack_messages();
	test_stack_malformed();

	snprintf(dir, sizeof(dir), "%s/state", tmp);
	test_registry_roundtrip(dir);
	snprintf(dir, sizeof(dir), "%s/empty", tmp);
	test_registry_no_db(dir);
	snprintf(dir, sizeof(dir), "%s/v1", tmp);
	test_upgrade(dir, 1);
	snprintf(dir, sizeof(dir), "%s/v2", tmp);
	test_upgrade(dir, 2);
	snprintf(dir, sizeof(dir), "%s/v3", tmp);
	test_upgrade(dir, 3);
	snprintf(dir, sizeof(dir), "%s/v5", tmp);
	test_newer_schema(dir);
	return 0;
}
