/*
** Layer specifications: parsing -o layer= and -o ephemeral= values, checking
** a whole stack, and keeping it in state.db (see layerspec.h).
**
** Everything is decided here, once, at mount time, so that the daemon's
** lookup path can trust what it is given: a TARGET is normalised into the
** only spelling it will ever be compared in ("/a/b", never "/a//b/" or
** "/a/./b"), and ".." is refused outright rather than resolved, because a
** target that climbs could only mean a place outside the workspace.  A
** SOURCE is resolved with realpath() at parse time: the daemon opens that
** exact directory, and a symlink renamed later cannot redirect it.
**
** Control bytes are refused in targets and sources alike.  Both end up on
** one line of the control protocol ("layer.N MODE TARGET SOURCE") and in
** log lines, where a newline would forge a record.  Error messages quote
** what the user typed, so they are scrubbed of control bytes too and always
** stay on one line.
**
** Stack rules (layer_stack_check) come from how the daemon merges: a cow
** layer is a base tree that the upper covers, so several cow layers may
** share a target and merge there, while an ro or ephemeral target is a
** tree of its own grafted at its target, which must not overlap any other.
** A target of "/" is the exception to nesting: cow "/" is a base under the
** whole workspace, and ephemeral "/" stands in for the upper, so both sit
** beneath every other target rather than competing with it.
**
** The stack is stored in state.db's `layers` table, whose schema belongs to
** fs/registry.c (which owns the file's versioning).  The statements live
** here, like the quota rows in quota/qstore.c, and use their own connection
** from registry_db(), closed before returning: no SQLite connection outlives
** a call (see registry.c for why).  Rows read back are validated as strictly
** as user input, since state.db is a file anyone with root can edit.
*/
#include "layerspec.h"
#include "sqlutil.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "registry.h"
#include "util.h"

/* Quoted values are cut to this many bytes: a message must keep its reason,
** which comes after the quotes, within a caller's modest buffer. */
#define QUOTE_MAX 240
#define REASON_MAX (4 * QUOTE_MAX)

/* ---- messages ----------------------------------------------------------- */

/* Replaces control bytes by '?', so a quoted value cannot break the
** message's single line or drive a terminal. */
static void scrub(char *s)
{
	for (; *s != '\0'; s++) {
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			*s = '?';
	}
}

static int has_control(const char *s)
{
	for (; *s != '\0'; s++) {
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return 1;
	}
	return 0;
}

struct quote {
	char buf[QUOTE_MAX + sizeof("...")];
};

/* S, or its first QUOTE_MAX bytes and "..." in Q; the cut is moved back to
** a character boundary so the message stays valid UTF-8. */
static const char *clip(const char *s, struct quote *q)
{
	size_t n = QUOTE_MAX;

	if (strlen(s) <= QUOTE_MAX)
		return s;
	while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
		n--;
	memcpy(q->buf, s, n);
	memcpy(q->buf + n, "...", sizeof("..."));
	return q->buf;
}

__attribute__((format(printf, 3, 4)))
static void say(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	set_verr(err, errlen, fmt, ap);
	va_end(ap);
	if (err != NULL && errlen > 0)
		scrub(err);
}

/* What is being parsed, for the "layer '...': " prefix of its errors. */
struct pctx {
	const char *kind;	/* "layer" or "ephemeral" */
	const char *text;	/* the value as given */
	char *err;
	size_t errlen;
};

__attribute__((format(printf, 2, 3)))
static int bad(const struct pctx *c, const char *fmt, ...)
{
	char reason[REASON_MAX];
	struct quote q;
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	say(c->err, c->errlen, "%s '%s': %s", c->kind, clip(c->text, &q),
	    reason);
	return -1;
}

/* ---- paths -------------------------------------------------------------- */

static int is_root(const char *path)
{
	return strcmp(path, "/") == 0;
}

/* Whether INNER is OUTER or below it, comparing whole components: "/a/b"
** is within "/a", "/ab" is not.  Both are absolute and normalised. */
static int path_within(const char *inner, const char *outer)
{
	size_t len = strlen(outer);

	if (is_root(outer))
		return 1;
	return strncmp(inner, outer, len) == 0 &&
	       (inner[len] == '\0' || inner[len] == '/');
}

int layer_path_within(const char *inner, const char *outer)
{
	return path_within(inner, outer);
}

static int paths_related(const char *a, const char *b)
{
	return path_within(a, b) || path_within(b, a);
}

int layer_path_normalise(const char *text, char **out, char *why,
			 size_t whylen)
{
	const char *p = text;
	size_t len, used = 0;
	char *buf;

	*out = NULL;
	if (text[0] != '/') {
		snprintf(why, whylen, "is not an absolute path");
		return -EINVAL;
	}
	if (has_control(text)) {
		snprintf(why, whylen, "contains a control character");
		return -EINVAL;
	}
	/* The result is never longer than the text, plus the lone "/". */
	buf = malloc(strlen(text) + 2);
	if (buf == NULL) {
		snprintf(why, whylen, "%s", strerror(ENOMEM));
		return -ENOMEM;
	}
	for (;;) {
		while (*p == '/')
			p++;
		if (*p == '\0')
			break;
		len = strcspn(p, "/");
		if ((len == 1 && p[0] == '.') ||
		    (len == 2 && p[0] == '.' && p[1] == '.')) {
			snprintf(why, whylen, "has a '%.*s' component",
				 (int)len, p);
			goto invalid;
		}
		if (len > NAME_MAX) {
			snprintf(why, whylen, "has a component longer than "
				 "%d bytes", NAME_MAX);
			goto invalid;
		}
		buf[used++] = '/';
		memcpy(buf + used, p, len);
		used += len;
		p += len;
	}
	if (used == 0)
		buf[used++] = '/';
	buf[used] = '\0';
	*out = buf;
	return 0;
invalid:
	free(buf);
	return -EINVAL;
}

/*
** Normalises the target TEXT into *OUT (malloc'd): layer_path_normalise's
** rules, no space, and at most LAYER_TARGET_MAX bytes.  Returns 0, -ENOMEM,
** or -EINVAL with the reason, to follow "target '...' ", in WHY.
*/
static int target_normalise(const char *text, char **out, char *why,
			    size_t whylen)
{
	int rc = layer_path_normalise(text, out, why, whylen);

	if (rc < 0)
		return rc;
	/* The status reply is "layer.N MODE TARGET SOURCE": a space in the
	** target would make it ambiguous where the source begins. */
	if (strchr(*out, ' ')) {
		snprintf(why, whylen, "contains a space");
		goto invalid;
	}
	if (strlen(*out) > LAYER_TARGET_MAX) {
		snprintf(why, whylen, "is longer than %d bytes",
			 LAYER_TARGET_MAX);
		goto invalid;
	}
	return 0;
invalid:
	free(*out);
	*out = NULL;
	return -EINVAL;
}

/* Whether TARGET is already in the form target_normalise gives, for specs
** that come from callers or from state.db rather than from a parse.  Out of
** memory counts as "no": the caller fails either way. */
static int target_is_normal(const char *target)
{
	char why[128];
	char *norm;
	int same;

	if (target == NULL || target_normalise(target, &norm, why,
					       sizeof(why)) < 0)
		return 0;
	same = strcmp(norm, target) == 0;
	free(norm);
	return same;
}

/* Resolves SOURCE (absolute, as given) to the directory it names. */
static int source_resolve(const struct pctx *c, const char *source,
			  char **out)
{
	struct quote q;
	const char *shown = clip(source, &q);
	struct stat st;
	char *real;

	*out = NULL;
	if (source[0] != '/')
		return bad(c, "source '%s' is not an absolute path", shown);
	if (has_control(source))
		return bad(c, "source '%s' contains a control character",
			   shown);
	real = realpath(source, NULL);
	if (real == NULL)
		return bad(c, "source '%s': %s", shown, strerror(errno));
	if (stat(real, &st) != 0) {
		bad(c, "source '%s': %s", shown, strerror(errno));
		goto fail;
	}
	if (!S_ISDIR(st.st_mode)) {
		bad(c, "source '%s' is not a directory", shown);
		goto fail;
	}
	/* A symlink on the way may lead to a name the text did not show. */
	if (has_control(real)) {
		bad(c, "source '%s' resolves to a path with a control "
		    "character", shown);
		goto fail;
	}
	*out = real;
	return 0;
fail:
	free(real);
	return -1;
}

/* ---- parsing ------------------------------------------------------------ */

const char *layer_mode_name(enum layer_mode mode)
{
	switch (mode) {
	case LAYER_RO:
		return "ro";
	case LAYER_COW:
		return "cow";
	case LAYER_EPHEMERAL:
		return "ephemeral";
	case LAYER_SHARED:
		return "shared";
	}
	return "?";
}

/* Any mode by name; the callers decide which ones they accept. */
static int mode_from_name(const char *name, enum layer_mode *mode)
{
	static const enum layer_mode all[] = {
		LAYER_RO, LAYER_COW, LAYER_EPHEMERAL, LAYER_SHARED,
	};
	size_t i;

	for (i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
		if (strcmp(name, layer_mode_name(all[i])) == 0) {
			*mode = all[i];
			return 0;
		}
	}
	return -EINVAL;
}

static int parse_mode(const struct pctx *c, const char *name,
		      enum layer_mode *mode)
{
	struct quote q;

	if (mode_from_name(name, mode) < 0)
		return bad(c, "unknown mode '%s'; use ro or cow",
			   clip(name, &q));
	if (*mode == LAYER_EPHEMERAL)
		return bad(c, "mode '%s' is not accepted here; use ro or cow "
			   "(an ephemeral target is given as ephemeral=TARGET)",
			   name);
	if (*mode == LAYER_SHARED)
		return bad(c, "mode '%s' is not accepted here; use ro or cow "
			   "(a shared directory is given as shared=SOURCE:TARGET)",
			   name);
	return 0;
}

static int parse_target(const struct pctx *c, const char *target, char **out)
{
	struct quote q;
	char why[128];
	int rc;

	rc = target_normalise(target, out, why, sizeof(why));
	if (rc < 0)
		return bad(c, "target '%s' %s", clip(target, &q), why);
	return 0;
}

/* The three fields of SOURCE:TARGET[:MODE], copied out of TEXT. */
struct fields {
	char *source;
	char *target;
	const char *mode;	/* points into the text, or "ro" */
};

static int split_fields(const struct pctx *c, struct fields *f)
{
	const char *text = c->text, *c1, *c2;

	memset(f, 0, sizeof(*f));
	c1 = strchr(text, ':');
	if (c1 == NULL)
		return bad(c, "no target; the form is SOURCE:TARGET[:MODE]");
	c2 = strchr(c1 + 1, ':');
	if (c2 != NULL && strchr(c2 + 1, ':') != NULL)
		return bad(c, "too many ':'; the form is SOURCE:TARGET[:MODE] "
			   "and paths with ':' cannot be layered");
	f->mode = c2 != NULL ? c2 + 1 : "ro";
	f->source = strndup(text, (size_t)(c1 - text));
	f->target = c2 != NULL ? strndup(c1 + 1, (size_t)(c2 - c1 - 1)) :
				 strdup(c1 + 1);
	if (f->source == NULL || f->target == NULL)
		return bad(c, "%s", strerror(ENOMEM));
	return 0;
}

static void fields_free(struct fields *f)
{
	free(f->source);
	free(f->target);
}

/* SOURCE:TARGET[:MODE] into OUT, for a layer= (SHARED 0: MODE read from
** the text) or a shared= value (SHARED 1: no MODE). The cheap checks come
** first, so a typo is reported before any I/O. */
static int parse_source_target(const struct pctx *c, int shared,
			       struct layer_spec *out)
{
	struct layer_spec s = { shared ? LAYER_SHARED : LAYER_RO, NULL, NULL };
	struct fields f;
	int rc;

	memset(out, 0, sizeof(*out));
	/* Before split_fields, whose messages offer a MODE: a shared
	** directory has none. */
	if (shared && strchr(c->text, ':') == NULL)
		return bad(c, "no target; the form is SOURCE:TARGET");
	if (shared && strchr(c->text, ':') != strrchr(c->text, ':'))
		return bad(c, "too many ':'; the form is SOURCE:TARGET and "
			   "paths with ':' cannot be shared");
	rc = split_fields(c, &f);
	if (rc == 0 && f.source[0] == '\0')
		rc = bad(c, "empty source");
	if (rc == 0 && f.target[0] == '\0')
		rc = bad(c, "empty target");
	if (rc == 0 && !shared)
		rc = parse_mode(c, f.mode, &s.mode);
	if (rc == 0)
		rc = parse_target(c, f.target, &s.target);
	if (rc == 0)
		rc = source_resolve(c, f.source, &s.source);
	fields_free(&f);
	if (rc < 0) {
		layer_spec_free(&s);
		return -1;
	}
	*out = s;
	return 0;
}

int layer_spec_parse(const char *text, struct layer_spec *out, char *err,
		     size_t errlen)
{
	struct pctx c = { "layer", text ? text : "", err, errlen };

	return parse_source_target(&c, 0, out);
}

int layer_spec_parse_shared(const char *text, struct layer_spec *out,
			    char *err, size_t errlen)
{
	struct pctx c = { "shared", text ? text : "", err, errlen };

	return parse_source_target(&c, 1, out);
}

int layer_spec_parse_ephemeral(const char *text, struct layer_spec *out,
			       char *err, size_t errlen)
{
	struct pctx c = { "ephemeral", text ? text : "", err, errlen };
	char *target;

	memset(out, 0, sizeof(*out));
	if (parse_target(&c, c.text[0] != '\0' ? c.text : "/", &target) < 0)
		return -1;
	out->mode = LAYER_EPHEMERAL;
	out->source = NULL;
	out->target = target;
	return 0;
}

void layer_spec_free(struct layer_spec *s)
{
	if (s == NULL)
		return;
	free(s->source);
	free(s->target);
	s->source = NULL;
	s->target = NULL;
}

void layer_stack_free(struct layer_spec *v, size_t n)
{
	size_t i;

	if (v == NULL)
		return;
	for (i = 0; i < n; i++)
		layer_spec_free(&v[i]);
	free(v);
}

/* ---- the stack ---------------------------------------------------------- */

/* A spec as the parsers make them: known mode, normalised target, a real
** absolute source exactly when the mode has one. */
static int spec_is_sound(const struct layer_spec *s)
{
	if (s->mode != LAYER_RO && s->mode != LAYER_COW &&
	    s->mode != LAYER_EPHEMERAL && s->mode != LAYER_SHARED)
		return 0;
	if (!target_is_normal(s->target))
		return 0;
	if (s->mode == LAYER_EPHEMERAL)
		return s->source == NULL;
	return s->source != NULL && s->source[0] == '/' &&
	       !has_control(s->source);
}

static int check_one(const struct layer_spec *s, size_t i, char *err,
		     size_t errlen)
{
	struct quote q;

	if (!spec_is_sound(s)) {
		say(err, errlen, "layer %zu is malformed (not made by the "
		    "layer parser)", i);
		return -1;
	}
	if (s->mode == LAYER_RO && is_root(s->target)) {
		say(err, errlen, "ro layer '%s' cannot be at '/': an ro "
		    "workspace root could not hold the upper; use cow for a "
		    "base tree under the whole workspace", clip(s->source, &q));
		return -1;
	}
	if (s->mode == LAYER_SHARED && is_root(s->target)) {
		say(err, errlen, "shared directory '%s' cannot be at '/': the "
		    "workspace root holds the upper; give a target such as "
		    "/shared", clip(s->source, &q));
		return -1;
	}
	return 0;
}

/*
** Two targets conflict when equal or nested, except that cow layers may
** share a target (they merge), and that a target of "/" conflicts with
** nothing by nesting: cow "/" is a base tree under the whole workspace and
** ephemeral "/" is the upper itself, so inputs and scratch go on top of
** either.  Two ephemeral "/" and ro "/" are refused before this is asked.
*/
static int check_pair(const struct layer_spec *a, const struct layer_spec *b,
		      char *err, size_t errlen)
{
	struct quote qa, qb;

	if (is_root(a->target) || is_root(b->target))
		return 0;
	if (strcmp(a->target, b->target) == 0) {
		if (a->mode == LAYER_COW && b->mode == LAYER_COW)
			return 0;
		say(err, errlen, "layers overlap: '%s' and '%s' (only cow "
		    "layers may share a target)", clip(a->target, &qa),
		    clip(b->target, &qb));
		return -1;
	}
	if (paths_related(a->target, b->target)) {
		say(err, errlen, "layers overlap: '%s' and '%s'",
		    clip(a->target, &qa), clip(b->target, &qb));
		return -1;
	}
	return 0;
}

static int check_upper_presence(const struct layer_spec *v, size_t n,
				const char *upper, char *err, size_t errlen)
{
	size_t i, eph_root = 0;

	for (i = 0; i < n; i++) {
		if (v[i].mode == LAYER_EPHEMERAL && is_root(v[i].target))
			eph_root++;
	}
	if (eph_root > 1) {
		say(err, errlen, "ephemeral with no target given twice");
		return -1;
	}
	if (eph_root == 1 && upper != NULL) {
		say(err, errlen, "ephemeral with no target makes the whole "
		    "upper ephemeral; do not give upper= too");
		return -1;
	}
	if (eph_root == 0 && upper == NULL) {
		say(err, errlen, "no upper directory: give upper=DIR, or "
		    "ephemeral with no target for a throw-away one");
		return -1;
	}
	return 0;
}

/* UPPER as sources are kept: real and absolute.  An upper that does not
** resolve (not made yet) is compared as written, less trailing slashes. */
static char *upper_real(const char *upper)
{
	char *real = realpath(upper, NULL);
	size_t len;

	if (real != NULL)
		return real;
	real = strdup(upper);
	if (real == NULL)
		return NULL;
	len = strlen(real);
	while (len > 1 && real[len - 1] == '/')
		real[--len] = '\0';
	return real;
}

/* How SOURCE lies relative to the upper REAL, or NULL if apart. */
static const char *relation(const char *source, const char *real)
{
	if (strcmp(source, real) == 0)
		return "is";
	if (path_within(source, real))
		return "is inside";
	if (path_within(real, source))
		return "contains";
	return NULL;
}

/* The upper is written through while sources are read: a source that is,
** holds, or sits in the upper would show the workspace its own writes. */
static int check_sources(const struct layer_spec *v, size_t n,
			 const char *upper, char *err, size_t errlen)
{
	struct quote qs, qu;
	const char *how;
	char *real;
	size_t i;
	int rc = 0;

	real = upper_real(upper);
	if (real == NULL) {
		say(err, errlen, "%s", strerror(ENOMEM));
		return -1;
	}
	for (i = 0; i < n && rc == 0; i++) {
		how = v[i].source ? relation(v[i].source, real) : NULL;
		if (how == NULL)
			continue;
		say(err, errlen, "%s source '%s' %s the upper '%s'",
		    v[i].mode == LAYER_SHARED ? "shared" : "layer",
		    clip(v[i].source, &qs), how, clip(real, &qu));
		rc = -1;
	}
	free(real);
	return rc;
}

/* A shared source changes while the workspace runs, through the workspace
** itself among others, and only shared nodes are cached briefly: an ro or
** cow layer showing any part of it would keep showing what it first read,
** for as long as the kernel caches it. Shared layers may overlap each
** other. */
static int check_shared_sources(const struct layer_spec *v, size_t n,
				char *err, size_t errlen)
{
	struct quote qs, qo;
	const char *how;
	size_t i, j;

	for (i = 0; i < n; i++) {
		if (v[i].mode != LAYER_SHARED)
			continue;
		for (j = 0; j < n; j++) {
			if (v[j].mode == LAYER_SHARED || v[j].source == NULL)
				continue;
			how = relation(v[j].source, v[i].source);
			if (how == NULL)
				continue;
			say(err, errlen, "%s layer source '%s' %s the shared "
			    "directory '%s', whose changes it would not show",
			    layer_mode_name(v[j].mode),
			    clip(v[j].source, &qo), how,
			    clip(v[i].source, &qs));
			return -1;
		}
	}
	return 0;
}

int layer_stack_check(const struct layer_spec *v, size_t n, const char *upper,
		      char *err, size_t errlen)
{
	size_t i, j;

	for (i = 0; i < n; i++) {
		if (check_one(&v[i], i, err, errlen) < 0)
			return -1;
	}
	if (check_upper_presence(v, n, upper, err, errlen) < 0)
		return -1;
	for (i = 0; i < n; i++) {
		for (j = i + 1; j < n; j++) {
			if (check_pair(&v[i], &v[j], err, errlen) < 0)
				return -1;
		}
	}
	if (upper != NULL && check_sources(v, n, upper, err, errlen) < 0)
		return -1;
	return check_shared_sources(v, n, err, errlen);
}

int layer_stack_mountable(const struct layer_spec *v, size_t n, char *err,
			  size_t errlen)
{
	struct quote q;
	size_t i;

	/* Unions are built at the workspace root only, for now. */
	for (i = 0; i < n; i++) {
		if (v[i].mode == LAYER_COW && !is_root(v[i].target)) {
			say(err, errlen, "layer '%s:%s:cow': cow layers are "
			    "supported at '/' only", clip(v[i].source, &q),
			    v[i].target);
			return -1;
		}
	}
	return 0;
}

/* ---- state.db ----------------------------------------------------------- */

/* Reports a failed statement and gives its errno. */
static int db_fail(struct registry *reg, sqlite3 *db, int rc,
		   const char *what, const char *name, char *err,
		   size_t errlen)
{
	say(err, errlen, "%s/state.db: %s the layers of '%s': %s",
	    registry_dir(reg), what, name, sqlite3_errmsg(db));
	return sql_errno(rc);
}

static void db_close(sqlite3 *db)
{
	/* sqlite3_close only fails with unfinalized statements, and every
	** function here finalizes before returning. */
	(void)sqlite3_close(db);
}

static int bind_spec(sqlite3_stmt *st, const char *name, size_t pos,
		     const struct layer_spec *s)
{
	int rc;

	rc = sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(st, 2, (sqlite3_int64)pos);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_text(st, 3, layer_mode_name(s->mode), -1,
				       SQLITE_STATIC);
	if (rc == SQLITE_OK)
		rc = s->source != NULL ?
			sqlite3_bind_text(st, 4, s->source, -1, SQLITE_STATIC) :
			sqlite3_bind_null(st, 4);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_text(st, 5, s->target, -1, SQLITE_STATIC);
	return rc;
}

static int delete_rows(sqlite3 *db, const char *name)
{
	sqlite3_stmt *st;
	int rc;

	rc = sqlite3_prepare_v2(db, "DELETE FROM layers WHERE name = ?1", -1,
				&st, NULL);
	if (rc != SQLITE_OK)
		return rc;
	rc = sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static int insert_rows(sqlite3 *db, const char *name,
		       const struct layer_spec *v, size_t n)
{
	sqlite3_stmt *st;
	size_t i;
	int rc;

	rc = sqlite3_prepare_v2(db, "INSERT INTO layers"
				"(name, position, mode, source, target) "
				"VALUES(?1, ?2, ?3, ?4, ?5)", -1, &st, NULL);
	if (rc != SQLITE_OK)
		return rc;
	for (i = 0; i < n && rc == SQLITE_OK; i++) {
		rc = bind_spec(st, name, i, &v[i]);
		if (rc == SQLITE_OK)
			rc = sqlite3_step(st);
		if (rc == SQLITE_DONE)
			rc = sqlite3_reset(st);
	}
	sqlite3_finalize(st);
	return rc;
}

int layer_stack_write_db(sqlite3 *db, const char *name,
			 const struct layer_spec *v, size_t n)
{
	int rc = delete_rows(db, name);

	return rc == SQLITE_OK ? insert_rows(db, name, v, n) : rc;
}

/* BEGIN IMMEDIATE takes the write lock up front, so a concurrent writer
** makes us wait on the busy timeout instead of failing an upgrade. */
static int write_stack(struct registry *reg, sqlite3 *db, const char *name,
		       const struct layer_spec *v, size_t n, char *err,
		       size_t errlen)
{
	int rc;

	rc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
	if (rc != SQLITE_OK)
		return db_fail(reg, db, rc, "storing", name, err, errlen);
	rc = layer_stack_write_db(db, name, v, n);
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
	if (rc == SQLITE_OK)
		return 0;
	/* The message first: a rollback would replace it. */
	rc = db_fail(reg, db, rc, "storing", name, err, errlen);
	/* Nothing more to report if the rollback fails too; closing the
	** connection rolls back anyway. */
	(void)sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	return rc;
}

int registry_set_layers(struct registry *reg, const char *name,
			const struct layer_spec *v, size_t n, char *err,
			size_t errlen)
{
	sqlite3 *db = NULL;
	size_t i;
	int rc;

	if (!ws_name_valid(name)) {
		say(err, errlen, "invalid workspace name '%.*s'", WS_NAME_MAX,
		    name ? name : "");
		return -EINVAL;
	}
	for (i = 0; i < n; i++) {
		if (!spec_is_sound(&v[i])) {
			say(err, errlen, "workspace '%s': layer %zu is "
			    "malformed (not made by the layer parser)", name, i);
			return -EINVAL;
		}
	}
	rc = registry_db(reg, &db, err, errlen);
	if (rc < 0)
		return rc;
	rc = write_stack(reg, db, name, v, n, err, errlen);
	db_close(db);
	return rc;
}

/* One row into S; -EUCLEAN for a row the parsers could not have made. */
static int row_to_spec(sqlite3_stmt *st, struct layer_spec *s)
{
	const unsigned char *mode = sqlite3_column_text(st, 1);
	int rc;

	memset(s, 0, sizeof(*s));
	if (mode == NULL || mode_from_name((const char *)mode, &s->mode) < 0)
		return -EUCLEAN;
	rc = sql_column_strdup(st, 2, &s->source);
	if (rc == 0)
		rc = sql_column_strdup(st, 3, &s->target);
	if (rc == 0 && !spec_is_sound(s))
		rc = -EUCLEAN;
	if (rc < 0)
		layer_spec_free(s);
	return rc;
}

static int read_stack(struct registry *reg, sqlite3 *db, const char *name,
		      struct layer_spec **out, size_t *n, char *err,
		      size_t errlen)
{
	struct layer_spec *v = NULL;
	size_t cap = 0, cnt = 0;
	sqlite3_stmt *st;
	int rc;

	rc = sqlite3_prepare_v2(db, "SELECT position, mode, source, target "
				"FROM layers WHERE name = ?1 ORDER BY position",
				-1, &st, NULL);
	if (rc != SQLITE_OK)
		return db_fail(reg, db, rc, "reading", name, err, errlen);
	rc = sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (cnt == cap &&
		    (rc = grow_array((void **)&v, &cap, sizeof(*v), 4)) < 0)
			break;
		rc = row_to_spec(st, &v[cnt]);
		if (rc == -EUCLEAN)
			say(err, errlen, "%s/state.db: layer %lld of '%s' is "
			    "malformed", registry_dir(reg),
			    (long long)sqlite3_column_int64(st, 0), name);
		if (rc < 0)
			break;
		cnt++;
		rc = SQLITE_OK;
	}
	if (rc == SQLITE_DONE) {
		sqlite3_finalize(st);
		*out = v;
		*n = cnt;
		return 0;
	}
	if (rc == -ENOMEM)
		say(err, errlen, "%s", strerror(ENOMEM));
	else if (rc > 0)
		rc = db_fail(reg, db, rc, "reading", name, err, errlen);
	sqlite3_finalize(st);
	layer_stack_free(v, cnt);
	return rc;
}

int registry_get_layers(struct registry *reg, const char *name,
			struct layer_spec **out, size_t *n, char *err,
			size_t errlen)
{
	char path[PATH_MAX];
	sqlite3 *db = NULL;
	int rc;

	*out = NULL;
	*n = 0;
	if (!ws_name_valid(name)) {
		say(err, errlen, "invalid workspace name '%.*s'", WS_NAME_MAX,
		    name ? name : "");
		return -EINVAL;
	}
	/* No daemon has run here yet, so none has stored a stack. */
	if (str_format(path, sizeof(path), "%s/state.db",
		       registry_dir(reg)) == 0 &&
	    access(path, F_OK) != 0 && errno == ENOENT)
		return 0;
	rc = registry_db(reg, &db, err, errlen);
	if (rc < 0)
		return rc;
	rc = read_stack(reg, db, name, out, n, err, errlen);
	db_close(db);
	return rc;
}
