/*
** Workspace definitions as YAML (wsdef_yaml.h; the format is wsfs.conf(5)).
**
** Parsing uses libyaml's document API: the whole file becomes a tree of
** nodes that each remember where they started, which is what lets every
** error name its line and column, and aliases come resolved for free (an
** alias is just a second reference to its anchor's node).  The tree is
** then walked once against a fixed schema.  libyaml knows nothing of
** duplicate keys, types or the schema, so all of that is checked here.
**
** Scalars are typed the way YAML 1.2's core schema types them, but only
** where it matters: a boolean must be a plain true or false (so a quoted
** "true" or a YAML 1.1 "yes" is refused rather than guessed at), and an
** empty or "~"/"null" plain scalar is "nothing" and never a string.  Every
** other scalar is taken as the text it is, so a path need never be quoted.
**
** Volumes are turned into layers by the very parsers behind -o layer=,
** -o shared= and -o ephemeral= (fs/layerspec.c), fed the text they would
** get on a command line, and the stack is checked by the daemon's own
** layer_stack_check, so a file cannot declare what a mount would refuse.
** Those parsers' messages quote the text they were given; for the long
** form that text is of our own making, so only the reason is kept and the
** position is moved to the key it is about.
**
** Emitting goes through libyaml's emitter, which picks the quoting a value
** needs (spaces, ':', '#', newlines); strings that a reader would take for
** null, a boolean or a number are forced into double quotes on top.
*/
#include "wsdef_yaml.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <yaml.h>

#include "qparse.h"
#include "wsdef_check.h"

/* Values quoted in messages are cut to this many bytes. */
#define SHOW 200

struct pc {
	yaml_document_t *doc;
	const char *fname;
	char *err;
	size_t errlen;
};

/* What one workspace's checks across the file need. */
struct wsinfo {
	yaml_mark_t upper_at, mnt_at;
};

/* ---- messages ----------------------------------------------------------- */

__attribute__((format(printf, 4, 5)))
static int fail_pos(struct pc *c, unsigned long line, unsigned long col,
		    const char *fmt, ...)
{
	size_t off;
	char *p;
	va_list ap;
	int w;

	w = snprintf(c->err, c->errlen, "%s:%lu:%lu: ", c->fname, line, col);
	off = w < 0 ? 0 : (size_t)w;
	if (off < c->errlen) {
		va_start(ap, fmt);
		(void)vsnprintf(c->err + off, c->errlen - off, fmt, ap);
		va_end(ap);
	}
	/* One line, whatever a quoted value held. */
	for (p = c->err; *p != '\0'; p++) {
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	}
	return -1;
}

#define fail_at(c, mark, ...) \
	fail_pos((c), (mark).line + 1, (mark).column + 1, __VA_ARGS__)

/* ---- nodes -------------------------------------------------------------- */

static yaml_node_t *nd(struct pc *c, int id)
{
	return yaml_document_get_node(c->doc, id);
}

static const char *sval(const yaml_node_t *n)
{
	return (const char *)n->data.scalar.value;
}

static int is_plain(const yaml_node_t *n)
{
	return n->type == YAML_SCALAR_NODE &&
	       n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
}

static int word_in(const char *s, const char *const *words)
{
	for (; *words != NULL; words++) {
		if (strcmp(s, *words) == 0)
			return 1;
	}
	return 0;
}

static const char *const null_words[] = { "", "~", "null", "Null", "NULL",
					  NULL };
static const char *const true_words[] = { "true", "True", "TRUE", NULL };
static const char *const false_words[] = { "false", "False", "FALSE", NULL };

static int is_null(const yaml_node_t *n)
{
	return is_plain(n) && word_in(sval(n), null_words);
}

static const char *kind_of(const yaml_node_t *n)
{
	switch (n->type) {
	case YAML_MAPPING_NODE:
		return "a mapping";
	case YAML_SEQUENCE_NODE:
		return "a list";
	default:
		return is_null(n) ? "empty" : "a single value";
	}
}

/* A scalar's text; NUL bytes (written as "\0" escapes) are refused, as no
** path or option can hold one. */
static int get_text(struct pc *c, const yaml_node_t *n, const char *what,
		    const char **out)
{
	if (n->type != YAML_SCALAR_NODE || is_null(n))
		return fail_at(c, n->start_mark, "%s must be a single value, "
			       "not %s", what, kind_of(n));
	if (strlen(sval(n)) != n->data.scalar.length)
		return fail_at(c, n->start_mark, "%s contains a NUL byte",
			       what);
	*out = sval(n);
	return 0;
}

static int get_bool(struct pc *c, const yaml_node_t *n, const char *what,
		    int *out)
{
	if (is_plain(n) && word_in(sval(n), true_words)) {
		*out = 1;
		return 0;
	}
	if (is_plain(n) && word_in(sval(n), false_words)) {
		*out = 0;
		return 0;
	}
	if (n->type == YAML_SCALAR_NODE && !is_null(n))
		return fail_at(c, n->start_mark, "%s must be true or false, "
			       "not '%.*s'", what, SHOW, sval(n));
	return fail_at(c, n->start_mark, "%s must be true or false, not %s",
		       what, kind_of(n));
}

static int has_control(const char *s)
{
	for (; *s != '\0'; s++) {
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return 1;
	}
	return 0;
}

/*
** Checks that N is a mapping with distinct string keys, each one of
** ALLOWED (NULL-terminated; NULL: any key).  Keys starting "x-" are let
** through when X_KEYS is set: compose files keep their anchors there.
*/
static int check_map(struct pc *c, const yaml_node_t *n, const char *what,
		     const char *const *allowed, int x_keys)
{
	yaml_node_pair_t *p, *q;
	yaml_node_t *k, *k2;
	char list[256];
	size_t i, off = 0;

	if (n->type != YAML_MAPPING_NODE)
		return fail_at(c, n->start_mark, "%s must be a mapping, not %s",
			       what, kind_of(n));
	for (p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top;
	     p++) {
		k = nd(c, p->key);
		if (k->type != YAML_SCALAR_NODE || is_null(k) ||
		    strlen(sval(k)) != k->data.scalar.length)
			return fail_at(c, k->start_mark, "the keys of %s must "
				       "be names, not %s", what, kind_of(k));
		for (q = n->data.mapping.pairs.start; q < p; q++) {
			k2 = nd(c, q->key);
			if (strcmp(sval(k2), sval(k)) == 0)
				return fail_at(c, k->start_mark, "duplicate "
					       "key '%.*s' in %s (first at "
					       "line %lu)", SHOW, sval(k),
					       what,
					       (unsigned long)k2->start_mark.line
					       + 1);
		}
		if (allowed == NULL || word_in(sval(k), allowed) ||
		    (x_keys && strncmp(sval(k), "x-", 2) == 0))
			continue;
		list[0] = '\0';
		for (i = 0, off = 0; allowed[i] != NULL && off < sizeof(list);
		     i++)
			off += (size_t)snprintf(list + off, sizeof(list) - off,
						"%s%s", i ? ", " : "",
						allowed[i]);
		return fail_at(c, k->start_mark, "unknown key '%.*s' in %s; "
			       "allowed: %s", SHOW, sval(k), what, list);
	}
	return 0;
}

/* The value under KEY in the mapping N, or NULL; its key node in *KEYN. */
static yaml_node_t *get(struct pc *c, const yaml_node_t *n, const char *key,
			yaml_node_t **keyn)
{
	yaml_node_pair_t *p;
	yaml_node_t *k;

	for (p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top;
	     p++) {
		k = nd(c, p->key);
		if (strcmp(sval(k), key) == 0) {
			if (keyn != NULL)
				*keyn = k;
			return nd(c, p->value);
		}
	}
	return NULL;
}

/* ---- paths -------------------------------------------------------------- */

/* An absolute path with no "." or ".." component, repeated and trailing
** slashes dropped, into *OUT (malloc'd): the rules of layer targets,
** except that spaces are allowed. */
static int normal_path(struct pc *c, const yaml_node_t *n, const char *what,
		       char **out)
{
	char why[128];
	const char *s;
	int rc;

	*out = NULL;
	if (get_text(c, n, what, &s) < 0)
		return -1;
	rc = layer_path_normalise(s, out, why, sizeof(why));
	if (rc == -EINVAL)
		return fail_at(c, n->start_mark, "%s '%.*s' %s", what, SHOW, s,
			       why);
	return rc;
}

/* The upper must exist: it is stored as its real path, so that "/srv/ws/"
** and a symlink to it are the same upper and re-applying changes nothing. */
static int parse_upper(struct pc *c, const yaml_node_t *n, char **out)
{
	char *norm, *real;
	struct stat st;
	int rc;

	*out = NULL;
	rc = normal_path(c, n, "upper", &norm);
	if (rc < 0)
		return rc;
	real = realpath(norm, NULL);
	if (real == NULL || stat(real, &st) != 0) {
		rc = errno;
		free(real);
		free(norm);
		return fail_at(c, n->start_mark, "upper '%.*s': %s", SHOW,
			       sval(n), strerror(rc));
	}
	free(norm);
	if (!S_ISDIR(st.st_mode)) {
		free(real);
		return fail_at(c, n->start_mark, "upper '%.*s' is not a "
			       "directory", SHOW, sval(n));
	}
	if (has_control(real)) {
		free(real);
		return fail_at(c, n->start_mark, "upper '%.*s' resolves to a "
			       "path with a control character", SHOW, sval(n));
	}
	*out = real;
	return 0;
}

/* ---- volumes ------------------------------------------------------------ */

static const char *const volume_keys[] = {
	"type", "source", "target", "read_only", "mode", NULL,
};

/* The reason in a layer parser's "KIND 'TEXT': REASON", where TEXT is
** what we passed (cut past 240 bytes, so then the whole message). */
static const char *layer_reason(const char *msg, const char *kind,
				const char *text)
{
	size_t k = strlen(kind), t = strlen(text);

	if (t > 240 || strncmp(msg, kind, k) != 0 ||
	    strncmp(msg + k, " '", 2) != 0 || strlen(msg) < k + t + 5 ||
	    strncmp(msg + k + 2 + t, "': ", 3) != 0)
		return msg;
	return msg + k + 2 + t + 3;
}

/* A layer parser's failure in the long form, placed at the key it is
** about. */
static int layer_fail(struct pc *c, const char *msg, const char *kind,
		      const char *text, const yaml_node_t *item,
		      const yaml_node_t *src, const yaml_node_t *tgt)
{
	const char *why = layer_reason(msg, kind, text);
	const yaml_node_t *at = item;

	if (src != NULL && strncmp(why, "source ", 7) == 0)
		at = src;
	else if (tgt != NULL && strncmp(why, "target ", 7) == 0)
		at = tgt;
	return fail_at(c, at->start_mark, "volume: %s", why);
}

/* A source or target the SOURCE:TARGET text must carry whole. */
static int no_colon(struct pc *c, const yaml_node_t *n, const char *what,
		    const char **out)
{
	if (get_text(c, n, what, out) < 0)
		return -1;
	if (strchr(*out, ':') != NULL)
		return fail_at(c, n->start_mark, "%s '%.*s' contains ':', "
			       "which a layer cannot hold (as with -o layer=)",
			       what, SHOW, *out);
	return 0;
}

static int mode_of_long(struct pc *c, const yaml_node_t *item,
			enum layer_mode *mode)
{
	yaml_node_t *mn = get(c, item, "mode", NULL);
	yaml_node_t *rn = get(c, item, "read_only", NULL);
	const char *m;
	int ro = 1, have_ro = 0;

	if (rn != NULL) {
		if (get_bool(c, rn, "read_only", &ro) < 0)
			return -1;
		have_ro = 1;
	}
	if (mn == NULL) {
		/* A writable bind of a host directory is what several
		** workspaces can share; a private writable one is the upper. */
		*mode = ro ? LAYER_RO : LAYER_SHARED;
		return 0;
	}
	if (get_text(c, mn, "mode", &m) < 0)
		return -1;
	if (strcmp(m, "ro") == 0)
		*mode = LAYER_RO;
	else if (strcmp(m, "cow") == 0)
		*mode = LAYER_COW;
	else if (strcmp(m, "shared") == 0)
		*mode = LAYER_SHARED;
	else
		return fail_at(c, mn->start_mark, "unknown volume mode "
			       "'%.*s'; use ro, cow or shared (or type: tmpfs "
			       "for scratch)", SHOW, m);
	if (have_ro && ro != (*mode == LAYER_RO))
		return fail_at(c, rn->start_mark, "read_only: %s conflicts "
			       "with mode: %s (%s)", ro ? "true" : "false", m,
			       *mode == LAYER_RO ?
			       "an ro volume is read-only" :
			       "the workspace can write to it");
	return 0;
}

static int parse_tmpfs(struct pc *c, const yaml_node_t *item,
		       const yaml_node_t *tn, struct layer_spec *out)
{
	yaml_node_t *k = NULL, *v;
	const char *target;
	char msg[1024];
	int ro;

	if ((v = get(c, item, "source", &k)) != NULL)
		return fail_at(c, k->start_mark, "a tmpfs volume has no "
			       "source: it is scratch made at each mount");
	if ((v = get(c, item, "mode", &k)) != NULL)
		return fail_at(c, k->start_mark, "a tmpfs volume takes no "
			       "mode: it is always writable scratch");
	if ((v = get(c, item, "read_only", &k)) != NULL) {
		if (get_bool(c, v, "read_only", &ro) < 0)
			return -1;
		if (ro)
			return fail_at(c, v->start_mark, "a tmpfs volume "
				       "cannot be read-only");
	}
	if (get_text(c, tn, "target", &target) < 0)
		return -1;
	if (layer_spec_parse_ephemeral(target, out, msg, sizeof(msg)) < 0)
		return layer_fail(c, msg, "ephemeral", target, item, NULL, tn);
	if (strcmp(out->target, "/") == 0) {
		layer_spec_free(out);
		return fail_at(c, tn->start_mark, "a tmpfs volume at '/' would "
			       "be the whole workspace; write 'ephemeral: true' "
			       "instead");
	}
	return 0;
}

static int parse_long(struct pc *c, const yaml_node_t *item,
		      struct layer_spec *out)
{
	yaml_node_t *ty, *sn, *tn;
	const char *type = "bind", *src, *tgt;
	enum layer_mode mode = LAYER_RO;
	char msg[1024], *text;
	int rc;

	if (check_map(c, item, "a volume", volume_keys, 0) < 0)
		return -1;
	ty = get(c, item, "type", NULL);
	if (ty != NULL && get_text(c, ty, "type", &type) < 0)
		return -1;
	if (strcmp(type, "bind") != 0 && strcmp(type, "tmpfs") != 0)
		return fail_at(c, ty->start_mark, "unknown volume type '%.*s'; "
			       "use bind or tmpfs", SHOW, type);
	tn = get(c, item, "target", NULL);
	if (tn == NULL)
		return fail_at(c, item->start_mark, "a volume needs 'target'");
	if (strcmp(type, "tmpfs") == 0)
		return parse_tmpfs(c, item, tn, out);
	sn = get(c, item, "source", NULL);
	if (sn == NULL)
		return fail_at(c, item->start_mark, "a bind volume needs "
			       "'source' (or type: tmpfs for scratch)");
	if (no_colon(c, sn, "source", &src) < 0 ||
	    no_colon(c, tn, "target", &tgt) < 0 ||
	    mode_of_long(c, item, &mode) < 0)
		return -1;
	if (asprintf(&text, "%s:%s%s", src, tgt,
		     mode == LAYER_RO ? ":ro" :
		     mode == LAYER_COW ? ":cow" : "") < 0)
		return -ENOMEM;
	if (mode == LAYER_SHARED)
		rc = layer_spec_parse_shared(text, out, msg, sizeof(msg));
	else
		rc = layer_spec_parse(text, out, msg, sizeof(msg));
	if (rc < 0)
		rc = layer_fail(c, msg, mode == LAYER_SHARED ? "shared" :
				"layer", text, item, sn, tn);
	free(text);
	return rc;
}

/* SRC:TARGET[:MODE], with MODE ro (the default, as for -o layer=), cow,
** shared or rw (compose's word for a writable bind, here a shared one). */
static int parse_short(struct pc *c, const yaml_node_t *item,
		       struct layer_spec *out)
{
	const char *text, *c1, *c2, *mode;
	char msg[1024], *st;
	int rc;

	if (get_text(c, item, "a volume", &text) < 0)
		return -1;
	c1 = strchr(text, ':');
	c2 = c1 != NULL ? strchr(c1 + 1, ':') : NULL;
	if (c1 == NULL || (c2 != NULL && strchr(c2 + 1, ':') != NULL))
		return fail_at(c, item->start_mark, "volume '%.*s': the short "
			       "form is SOURCE:TARGET[:ro|cow|shared|rw], and "
			       "paths with ':' cannot be layered", SHOW, text);
	mode = c2 != NULL ? c2 + 1 : "ro";
	if (strcmp(mode, "ro") == 0 || strcmp(mode, "cow") == 0) {
		rc = layer_spec_parse(text, out, msg, sizeof(msg));
	} else if (strcmp(mode, "shared") == 0 || strcmp(mode, "rw") == 0) {
		st = strndup(text, (size_t)(c2 - text));
		if (st == NULL)
			return -ENOMEM;
		rc = layer_spec_parse_shared(st, out, msg, sizeof(msg));
		free(st);
	} else {
		return fail_at(c, item->start_mark, "volume '%.*s': unknown "
			       "mode '%.*s'; use ro, cow, shared or rw", SHOW,
			       text, SHOW, mode);
	}
	if (rc < 0)
		return fail_at(c, item->start_mark, "volume: %s", msg);
	return 0;
}

static int add_layer(struct ws_def *d, size_t *cap, struct layer_spec *s)
{
	if (d->nlayers == *cap) {
		size_t ncap = *cap ? *cap * 2 : 4;
		struct layer_spec *v = realloc(d->layers, ncap * sizeof(*v));

		if (v == NULL) {
			layer_spec_free(s);
			return -ENOMEM;
		}
		d->layers = v;
		*cap = ncap;
	}
	d->layers[d->nlayers++] = *s;
	return 0;
}

static int parse_volumes(struct pc *c, const yaml_node_t *n,
			 struct ws_def *d, size_t *cap)
{
	yaml_node_item_t *it;
	yaml_node_t *item;
	struct layer_spec s;
	int rc;

	if (n->type != YAML_SEQUENCE_NODE)
		return fail_at(c, n->start_mark, "volumes must be a list, not "
			       "%s", kind_of(n));
	for (it = n->data.sequence.items.start;
	     it < n->data.sequence.items.top; it++) {
		item = nd(c, *it);
		if (item->type == YAML_MAPPING_NODE)
			rc = parse_long(c, item, &s);
		else
			rc = parse_short(c, item, &s);
		if (rc == 0)
			rc = add_layer(d, cap, &s);
		if (rc < 0)
			return rc;
	}
	return 0;
}

/* ---- quota, options ----------------------------------------------------- */

static const char *const quota_keys[] = {
	"bytes", "inodes", "soft_bytes", "soft_inodes", "grace", "warn", NULL,
};

/* A warn list as the text qparse_warn reads: "85,95" or "none". */
static int warn_text(struct pc *c, const yaml_node_t *n, char *buf,
		     size_t len)
{
	yaml_node_item_t *it;
	const char *s;
	size_t off = 0;

	if (n->type != YAML_SEQUENCE_NODE) {
		if (get_text(c, n, "warn", &s) < 0)
			return -1;
		snprintf(buf, len, "%s", s);
		return 0;
	}
	buf[0] = '\0';
	for (it = n->data.sequence.items.start;
	     it < n->data.sequence.items.top; it++) {
		if (get_text(c, nd(c, *it), "a warn percentage", &s) < 0)
			return -1;
		if (off < len)
			off += (size_t)snprintf(buf + off, len - off, "%s%s",
						off ? "," : "", s);
	}
	return 0;
}

static int parse_quota(struct pc *c, const yaml_node_t *n,
		       struct quota_limits *lim)
{
	static const struct {
		const char *key;
		size_t offset;
		int (*parse)(const char *, uint64_t *, char *, size_t);
	} f[] = {
		{ "bytes", offsetof(struct quota_limits, bytes), qparse_size },
		{ "inodes", offsetof(struct quota_limits, inodes),
		  qparse_count },
		{ "soft_bytes", offsetof(struct quota_limits, soft_bytes),
		  qparse_size },
		{ "soft_inodes", offsetof(struct quota_limits, soft_inodes),
		  qparse_count },
		{ "grace", offsetof(struct quota_limits, grace_s),
		  qparse_duration },
	};
	char msg[512], text[256];
	const char *s;
	yaml_node_t *v;
	uint64_t val;
	size_t i;

	if (check_map(c, n, "quota", quota_keys, 0) < 0)
		return -1;
	for (i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
		v = get(c, n, f[i].key, NULL);
		if (v == NULL)
			continue;
		if (get_text(c, v, f[i].key, &s) < 0)
			return -1;
		if (f[i].parse(s, &val, msg, sizeof(msg)) < 0)
			return fail_at(c, v->start_mark, "%s: %s", f[i].key,
				       msg);
		memcpy((char *)lim + f[i].offset, &val, sizeof(val));
	}
	v = get(c, n, "warn", NULL);
	if (v != NULL) {
		if (warn_text(c, v, text, sizeof(text)) < 0)
			return -1;
		if (qparse_warn(text, ',', lim, msg, sizeof(msg)) < 0)
			return fail_at(c, v->start_mark, "warn: %s", msg);
	}
	return 0;
}

static int parse_options(struct pc *c, const yaml_node_t *n, char **out)
{
	yaml_node_item_t *it;
	yaml_node_t *item;
	const char *s;
	char msg[512], *buf = NULL, *nbuf;
	size_t used = 0, len;

	*out = NULL;
	if (n->type != YAML_SEQUENCE_NODE)
		return fail_at(c, n->start_mark, "options must be a list, such "
			       "as [allow_other], not %s", kind_of(n));
	for (it = n->data.sequence.items.start;
	     it < n->data.sequence.items.top; it++) {
		item = nd(c, *it);
		if (get_text(c, item, "an option", &s) < 0)
			goto fail;
		if (!wsdef_option_ok(s, msg, sizeof(msg))) {
			fail_at(c, item->start_mark, "%s", msg);
			goto fail;
		}
		len = strlen(s);
		nbuf = realloc(buf, used + len + 2);
		if (nbuf == NULL) {
			free(buf);
			return -ENOMEM;
		}
		buf = nbuf;
		if (used > 0)
			buf[used++] = ',';
		memcpy(buf + used, s, len + 1);
		used += len;
	}
	*out = buf;
	return 0;
fail:
	free(buf);
	return -1;
}

/* ---- a workspace -------------------------------------------------------- */

static const char *const ws_keys[] = {
	"upper", "ephemeral", "mountpoint", "quota", "audit", "options",
	"volumes", NULL,
};

/* The checks on the mountpoint that need the rest of the definition. */
static int check_mountpoint(struct pc *c, const yaml_node_t *n,
			    const struct ws_def *d)
{
	size_t i;

	if (d->upper != NULL && layer_path_within(d->mountpoint, d->upper))
		return fail_at(c, n->start_mark, "mountpoint '%.*s' lies inside "
			       "the upper '%.*s'", SHOW, d->mountpoint, SHOW,
			       d->upper);
	for (i = 0; i < d->nlayers; i++) {
		if (d->layers[i].source != NULL &&
		    layer_path_within(d->mountpoint, d->layers[i].source))
			return fail_at(c, n->start_mark, "mountpoint '%.*s' "
				       "lies inside volume source '%.*s'",
				       SHOW, d->mountpoint, SHOW,
				       d->layers[i].source);
	}
	return 0;
}

static int parse_fields(struct pc *c, const yaml_node_t *key,
			const yaml_node_t *n, struct ws_def *d,
			struct wsinfo *info)
{
	yaml_node_t *v, *k = NULL, *vk = NULL;
	struct layer_spec s;
	const char *audit;
	char msg[PATH_MAX * 2 + 256];
	size_t cap = 0;
	int eph = 0, rc;

	if ((v = get(c, n, "ephemeral", NULL)) != NULL &&
	    get_bool(c, v, "ephemeral", &eph) < 0)
		return -1;
	if ((v = get(c, n, "upper", &k)) != NULL) {
		if (eph)
			return fail_at(c, k->start_mark, "'upper' conflicts "
				       "with 'ephemeral: true': an ephemeral "
				       "workspace has no upper directory");
		info->upper_at = v->start_mark;
		if ((rc = parse_upper(c, v, &d->upper)) < 0)
			return rc;
	} else if (!eph) {
		return fail_at(c, key->start_mark, "workspace '%s' needs "
			       "'upper' (or 'ephemeral: true' for one that is "
			       "all scratch)", d->name);
	}
	if (eph) {
		if (layer_spec_parse_ephemeral(NULL, &s, msg, sizeof(msg)) < 0)
			return fail_at(c, key->start_mark, "%s", msg);
		if ((rc = add_layer(d, &cap, &s)) < 0)
			return rc;
	}
	if ((v = get(c, n, "audit", NULL)) != NULL) {
		if (get_text(c, v, "audit", &audit) < 0)
			return -1;
		if (strcmp(audit, "off") != 0 && strcmp(audit, "meta") != 0 &&
		    strcmp(audit, "full") != 0)
			return fail_at(c, v->start_mark, "audit '%.*s': use "
				       "off, meta or full", SHOW, audit);
		if ((d->audit = strdup(audit)) == NULL)
			return -ENOMEM;
	}
	if ((v = get(c, n, "options", NULL)) != NULL &&
	    (rc = parse_options(c, v, &d->options)) < 0)
		return rc;
	if ((v = get(c, n, "quota", NULL)) != NULL &&
	    (rc = parse_quota(c, v, &d->lim)) < 0)
		return rc;
	if ((v = get(c, n, "volumes", &vk)) != NULL &&
	    (rc = parse_volumes(c, v, d, &cap)) < 0)
		return rc;
	if (layer_stack_check(d->layers, d->nlayers, d->upper, msg,
			      sizeof(msg)) < 0)
		return fail_at(c, (vk ? vk : key)->start_mark, "workspace "
			       "'%s': %s", d->name, msg);
	if ((v = get(c, n, "mountpoint", NULL)) != NULL) {
		info->mnt_at = v->start_mark;
		if ((rc = normal_path(c, v, "mountpoint", &d->mountpoint)) < 0 ||
		    (rc = check_mountpoint(c, v, d)) < 0)
			return rc;
	}
	return 0;
}

static int parse_ws(struct pc *c, const yaml_node_t *key,
		    const yaml_node_t *n, struct ws_def *d,
		    struct wsinfo *info)
{
	char what[WS_NAME_MAX + 32], msg[256];

	if (!wsdef_name_ok(sval(key), msg, sizeof(msg)))
		return fail_at(c, key->start_mark, "%s", msg);
	wsdef_init(d, sval(key));
	if (is_null(n))
		return fail_at(c, key->start_mark, "workspace '%s' is empty: "
			       "give it 'upper' (or 'ephemeral: true')",
			       d->name);
	snprintf(what, sizeof(what), "workspace '%s'", d->name);
	if (check_map(c, n, what, ws_keys, 0) < 0)
		return -1;
	return parse_fields(c, key, n, d, info);
}

/* Two workspaces on one upper would each take the other's files for its
** own; on one mountpoint, the second mount would hide the first. */
static int check_across(struct pc *c, const struct wsdef_yaml_doc *doc,
			const struct wsinfo *info)
{
	const struct ws_def *a, *b;
	size_t i, j;

	for (i = 1; i < doc->n; i++) {
		a = &doc->defs[i];
		for (j = 0; j < i; j++) {
			b = &doc->defs[j];
			if (a->upper != NULL && b->upper != NULL &&
			    (layer_path_within(a->upper, b->upper) ||
			     layer_path_within(b->upper, a->upper)))
				return fail_at(c, info[i].upper_at, "upper "
					       "'%.*s' overlaps the upper of "
					       "workspace '%s' ('%.*s')", SHOW,
					       a->upper, b->name, SHOW,
					       b->upper);
			if (a->mountpoint != NULL && b->mountpoint != NULL &&
			    strcmp(a->mountpoint, b->mountpoint) == 0)
				return fail_at(c, info[i].mnt_at, "mountpoint "
					       "'%.*s' is also workspace '%s''s",
					       SHOW, a->mountpoint, b->name);
		}
	}
	return 0;
}

static const char *const top_keys[] = { "version", "workspaces", NULL };

static int parse_root(struct pc *c, const yaml_node_t *root,
		      struct wsdef_yaml_doc *out)
{
	yaml_node_pair_t *p;
	yaml_node_t *ws, *v, *k = NULL;
	struct wsinfo *info;
	const char *ignored;
	size_t n;
	int rc = 0;

	if (check_map(c, root, "the file", top_keys, 1) < 0)
		return -1;
	if ((v = get(c, root, "version", NULL)) != NULL &&
	    get_text(c, v, "version", &ignored) < 0)
		return -1;
	ws = get(c, root, "workspaces", &k);
	if (ws == NULL)
		return fail_at(c, root->start_mark, "no 'workspaces' key: the "
			       "file must say 'workspaces:' and list them "
			       "under it");
	if (check_map(c, ws, "workspaces", NULL, 0) < 0)
		return -1;
	n = (size_t)(ws->data.mapping.pairs.top - ws->data.mapping.pairs.start);
	if (n == 0)
		return 0;
	out->defs = calloc(n, sizeof(*out->defs));
	out->at = calloc(n, sizeof(*out->at));
	info = calloc(n, sizeof(*info));
	if (out->defs == NULL || out->at == NULL || info == NULL) {
		free(info);
		return -ENOMEM;
	}
	for (p = ws->data.mapping.pairs.start;
	     rc == 0 && p < ws->data.mapping.pairs.top; p++) {
		k = nd(c, p->key);
		out->at[out->n].line = k->start_mark.line + 1;
		out->at[out->n].col = k->start_mark.column + 1;
		rc = parse_ws(c, k, nd(c, p->value), &out->defs[out->n],
			      &info[out->n]);
		/* Counted even on failure: the def may own memory. */
		out->n++;
	}
	if (rc == 0)
		rc = check_across(c, out, info);
	free(info);
	return rc;
}

/* ---- syntax errors ------------------------------------------------------ */

/* libyaml gives reader errors (bad UTF-8, control bytes) as a byte offset
** only; the position is counted from the text, in characters. */
static void offset_pos(const char *text, size_t len, size_t off,
		       unsigned long *line, unsigned long *col)
{
	size_t i;

	*line = 1;
	*col = 1;
	for (i = 0; i < off && i < len; i++) {
		if (text[i] == '\n') {
			(*line)++;
			*col = 1;
		} else if (((unsigned char)text[i] & 0xc0) != 0x80) {
			(*col)++;
		}
	}
}

static int syntax_err(struct pc *c, const yaml_parser_t *p, const char *text,
		      size_t len)
{
	unsigned long line, col;
	const char *problem = p->problem ? p->problem : "invalid YAML";

	if (p->error == YAML_MEMORY_ERROR)
		return -ENOMEM;
	if (p->error == YAML_READER_ERROR) {
		offset_pos(text, len, p->problem_offset, &line, &col);
		if (p->problem_value != -1)
			return fail_pos(c, line, col, "%s (byte 0x%02x)",
					problem, (unsigned)p->problem_value);
		return fail_pos(c, line, col, "%s", problem);
	}
	if (p->context != NULL)
		return fail_at(c, p->problem_mark, "%s (%s at line %lu)",
			       problem, p->context,
			       (unsigned long)p->context_mark.line + 1);
	return fail_at(c, p->problem_mark, "%s", problem);
}

int wsdef_yaml_parse(const char *text, size_t len, const char *fname,
		     struct wsdef_yaml_doc *out, char *err, size_t errlen)
{
	struct pc c = { NULL, fname, err, errlen };
	yaml_document_t doc, extra;
	yaml_parser_t p;
	yaml_node_t *root;
	int rc;

	memset(out, 0, sizeof(*out));
	if (!yaml_parser_initialize(&p))
		return -ENOMEM;
	yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
	if (!yaml_parser_load(&p, &doc)) {
		rc = syntax_err(&c, &p, text, len);
		yaml_parser_delete(&p);
		return rc;
	}
	c.doc = &doc;
	/* The whole stream is read before the first is judged, so a syntax
	** error anywhere is reported as one. */
	if (!yaml_parser_load(&p, &extra)) {
		rc = syntax_err(&c, &p, text, len);
		goto out;
	}
	root = yaml_document_get_root_node(&extra);
	rc = root != NULL ?
		fail_at(&c, extra.start_mark, "a second YAML document; put "
			"every workspace under the one 'workspaces:'") : 0;
	yaml_document_delete(&extra);
	if (rc < 0)
		goto out;
	root = yaml_document_get_root_node(&doc);
	if (root == NULL)
		rc = fail_pos(&c, 1, 1, "the file is empty; it must hold "
			      "'workspaces:' and the workspaces under it");
	else
		rc = parse_root(&c, root, out);
out:
	if (rc < 0)
		wsdef_yaml_doc_free(out);
	yaml_document_delete(&doc);
	yaml_parser_delete(&p);
	return rc;
}

void wsdef_yaml_doc_free(struct wsdef_yaml_doc *doc)
{
	size_t i;

	for (i = 0; doc->defs != NULL && i < doc->n; i++)
		wsdef_free(&doc->defs[i]);
	free(doc->defs);
	free(doc->at);
	memset(doc, 0, sizeof(*doc));
}

int wsdef_yaml_slurp(FILE *in, char **text, size_t *len)
{
	size_t cap = 0, used = 0, got;
	char *buf = NULL, *nbuf;

	*text = NULL;
	*len = 0;
	for (;;) {
		if (cap - used < 4096) {
			cap = cap ? cap * 2 : 65536;
			nbuf = realloc(buf, cap + 1);
			if (nbuf == NULL) {
				free(buf);
				return -ENOMEM;
			}
			buf = nbuf;
		}
		got = fread(buf + used, 1, cap - used, in);
		used += got;
		if (used > WSDEF_YAML_MAX) {
			free(buf);
			return -EFBIG;
		}
		if (got == 0)
			break;
	}
	if (ferror(in)) {
		free(buf);
		return errno ? -errno : -EIO;
	}
	buf[used] = '\0';
	*text = buf;
	*len = used;
	return 0;
}

/* ---- emitting ----------------------------------------------------------- */

/* Plain scalars a YAML reader would not take for a string. */
static int needs_quotes(const char *s)
{
	static const char *const words[] = {
		"~", "null", "Null", "NULL", "true", "True", "TRUE", "false",
		"False", "FALSE", "yes", "Yes", "YES", "no", "No", "NO", "on",
		"On", "ON", "off", "Off", "OFF", "y", "Y", "n", "N", NULL,
	};

	if (*s == '\0' || word_in(s, words) || has_control(s))
		return 1;
	return strchr("0123456789+-.", *s) != NULL;
}

static int ev_scalar(yaml_emitter_t *e, const char *s, int plain_only)
{
	yaml_event_t ev;
	yaml_scalar_style_t style = YAML_ANY_SCALAR_STYLE;

	if (!plain_only && needs_quotes(s))
		style = YAML_DOUBLE_QUOTED_SCALAR_STYLE;
	if (!yaml_scalar_event_initialize(&ev, NULL, NULL,
					  (yaml_char_t *)(uintptr_t)s,
					  (int)strlen(s), 1, 1, style))
		return -1;
	return yaml_emitter_emit(e, &ev) ? 0 : -1;
}

static int ev_map(yaml_emitter_t *e, int start)
{
	yaml_event_t ev;
	int ok = start ?
		yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1,
						    YAML_BLOCK_MAPPING_STYLE) :
		yaml_mapping_end_event_initialize(&ev);

	return ok && yaml_emitter_emit(e, &ev) ? 0 : -1;
}

static int ev_seq(yaml_emitter_t *e, int start, int flow)
{
	yaml_event_t ev;
	int ok = start ?
		yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1, flow ?
			YAML_FLOW_SEQUENCE_STYLE : YAML_BLOCK_SEQUENCE_STYLE) :
		yaml_sequence_end_event_initialize(&ev);

	return ok && yaml_emitter_emit(e, &ev) ? 0 : -1;
}

static int ev_pair(yaml_emitter_t *e, const char *key, const char *val)
{
	return ev_scalar(e, key, 1) < 0 || ev_scalar(e, val, 0) < 0 ? -1 : 0;
}

/* A number or "none", which must stay plain to read back as such. */
static int ev_limit(yaml_emitter_t *e, const char *key, uint64_t v)
{
	char buf[32];

	qformat_value(v, buf, sizeof(buf));
	return ev_scalar(e, key, 1) < 0 || ev_scalar(e, buf, 1) < 0 ? -1 : 0;
}

static int emit_quota(yaml_emitter_t *e, const struct quota_limits *l)
{
	struct quota_limits def;
	char buf[16];
	unsigned int i;
	int rc;

	quota_limits_default(&def);
	rc = ev_scalar(e, "quota", 1);
	if (rc == 0)
		rc = ev_map(e, 1);
	if (rc == 0)
		rc = ev_limit(e, "bytes", l->bytes);
	if (rc == 0)
		rc = ev_limit(e, "inodes", l->inodes);
	/* The rest only when set, to keep the common file short; they are
	** still written whenever they differ, so an edit keeps them. */
	if (rc == 0 && l->soft_bytes != def.soft_bytes)
		rc = ev_limit(e, "soft_bytes", l->soft_bytes);
	if (rc == 0 && l->soft_inodes != def.soft_inodes)
		rc = ev_limit(e, "soft_inodes", l->soft_inodes);
	if (rc == 0 && l->grace_s != def.grace_s)
		rc = ev_limit(e, "grace", l->grace_s);
	if (rc == 0 && (l->nwarn != def.nwarn ||
			memcmp(l->warn, def.warn, l->nwarn * sizeof(l->warn[0]))
			!= 0)) {
		rc = ev_scalar(e, "warn", 1);
		if (rc == 0 && l->nwarn == 0)
			rc = ev_scalar(e, "none", 1);
		else if (rc == 0)
			rc = ev_seq(e, 1, 1);
		for (i = 0; rc == 0 && l->nwarn > 0 && i < l->nwarn; i++) {
			snprintf(buf, sizeof(buf), "%u", l->warn[i]);
			rc = ev_scalar(e, buf, 1);
		}
		if (rc == 0 && l->nwarn > 0)
			rc = ev_seq(e, 0, 1);
	}
	if (rc == 0)
		rc = ev_map(e, 0);
	return rc;
}

static int is_whole_ephemeral(const struct layer_spec *l)
{
	return l->mode == LAYER_EPHEMERAL && strcmp(l->target, "/") == 0;
}

static int emit_volume(yaml_emitter_t *e, const struct layer_spec *l)
{
	int rc = ev_map(e, 1);

	if (rc == 0 && l->mode == LAYER_EPHEMERAL) {
		rc = ev_pair(e, "type", "tmpfs");
		if (rc == 0)
			rc = ev_pair(e, "target", l->target);
	} else if (rc == 0) {
		rc = ev_pair(e, "source", l->source);
		if (rc == 0)
			rc = ev_pair(e, "target", l->target);
		if (rc == 0)
			rc = ev_pair(e, "mode", layer_mode_name(l->mode));
	}
	if (rc == 0)
		rc = ev_map(e, 0);
	return rc;
}

static int emit_options(yaml_emitter_t *e, const char *options)
{
	char *copy, *item, *save = NULL;
	int rc;

	copy = strdup(options);
	if (copy == NULL)
		return -1;
	rc = ev_scalar(e, "options", 1);
	if (rc == 0)
		rc = ev_seq(e, 1, 0);
	for (item = strtok_r(copy, ",", &save); rc == 0 && item != NULL;
	     item = strtok_r(NULL, ",", &save))
		rc = ev_scalar(e, item, 0);
	if (rc == 0)
		rc = ev_seq(e, 0, 0);
	free(copy);
	return rc;
}

static int emit_def(yaml_emitter_t *e, const struct ws_def *d)
{
	size_t i, nvol = 0;
	int rc, eph = 0;

	for (i = 0; i < d->nlayers; i++) {
		if (is_whole_ephemeral(&d->layers[i]))
			eph = 1;
		else
			nvol++;
	}
	rc = ev_scalar(e, d->name, 0);
	if (rc == 0)
		rc = ev_map(e, 1);
	if (rc == 0 && d->upper != NULL)
		rc = ev_pair(e, "upper", d->upper);
	if (rc == 0 && eph)
		rc = ev_scalar(e, "ephemeral", 1) < 0 ||
		     ev_scalar(e, "true", 1) < 0 ? -1 : 0;
	if (rc == 0 && d->mountpoint != NULL)
		rc = ev_pair(e, "mountpoint", d->mountpoint);
	if (rc == 0 && d->audit != NULL)
		rc = ev_pair(e, "audit", d->audit);
	if (rc == 0 && d->options != NULL && d->options[0] != '\0')
		rc = emit_options(e, d->options);
	if (rc == 0)
		rc = emit_quota(e, &d->lim);
	if (rc == 0 && nvol > 0) {
		rc = ev_scalar(e, "volumes", 1);
		if (rc == 0)
			rc = ev_seq(e, 1, 0);
		for (i = 0; rc == 0 && i < d->nlayers; i++) {
			if (!is_whole_ephemeral(&d->layers[i]))
				rc = emit_volume(e, &d->layers[i]);
		}
		if (rc == 0)
			rc = ev_seq(e, 0, 0);
	}
	if (rc == 0)
		rc = ev_map(e, 0);
	return rc;
}

int wsdef_yaml_emit(FILE *out, const struct ws_def *defs, size_t n,
		    char *err, size_t errlen)
{
	yaml_emitter_t e;
	yaml_event_t ev;
	size_t i;
	int rc;

	if (!yaml_emitter_initialize(&e)) {
		snprintf(err, errlen, "%s", strerror(ENOMEM));
		return -1;
	}
	yaml_emitter_set_output_file(&e, out);
	yaml_emitter_set_unicode(&e, 1);
	yaml_emitter_set_indent(&e, 2);
	/* Long paths stay on one line rather than being folded. */
	yaml_emitter_set_width(&e, -1);
	rc = yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING) &&
	     yaml_emitter_emit(&e, &ev) ? 0 : -1;
	if (rc == 0)
		rc = yaml_document_start_event_initialize(&ev, NULL, NULL,
							  NULL, 1) &&
		     yaml_emitter_emit(&e, &ev) ? 0 : -1;
	if (rc == 0)
		rc = ev_map(&e, 1);
	if (rc == 0)
		rc = ev_scalar(&e, "workspaces", 1);
	if (rc == 0)
		rc = ev_map(&e, 1);
	for (i = 0; rc == 0 && i < n; i++)
		rc = emit_def(&e, &defs[i]);
	if (rc == 0)
		rc = ev_map(&e, 0);
	if (rc == 0)
		rc = ev_map(&e, 0);
	if (rc == 0)
		rc = yaml_document_end_event_initialize(&ev, 1) &&
		     yaml_emitter_emit(&e, &ev) ? 0 : -1;
	if (rc == 0)
		rc = yaml_stream_end_event_initialize(&ev) &&
		     yaml_emitter_emit(&e, &ev) ? 0 : -1;
	if (rc == 0 && !yaml_emitter_flush(&e))
		rc = -1;
	if (rc < 0)
		snprintf(err, errlen, "cannot write YAML: %s",
			 e.problem ? e.problem : strerror(errno ? errno : EIO));
	yaml_emitter_delete(&e);
	return rc;
}
