/*
** The command line of `wsctl create` and `wsctl set`.
**
** Both take the same options; `create` applies them to an empty
** definition, `set` to the stored one.  The command line is read in two
** steps, first into a list of (option, value) pairs and the NAME, then
** applied, because `set` can only load the definition once it knows NAME,
** and NAME may come after the options.
**
** Layer options (--layer, --shared, --ephemeral) given to `set` replace the
** whole stack, in the order given, since a stack is ordered and "add one
** layer" would leave no way to say where; --no-layers empties it.  The same
** goes for --option and --no-options.
*/
#include "wsdef_args.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "grow.h"
#include "qparse.h"
#include "wsctl.h"
#include "wsdef_check.h"

const char wsdef_args_details[] =
	"Options:\n"
	"  --upper DIR              the writable directory (made if missing)\n"
	"  --mountpoint DIR         where `wsctl mount` mounts it (default:\n"
	"                           <state>/run/mnt/NAME)\n"
	"  --layer SRC:TARGET[:MODE]  a read-only (ro, the default) or\n"
	"                           copy-on-write (cow) input at TARGET\n"
	"  --shared SRC:TARGET      a directory several workspaces write at once\n"
	"  --ephemeral [TARGET]     scratch at TARGET, wiped at unmount; without\n"
	"                           TARGET (and without --upper) all of it\n"
	"  --bytes SIZE             hard byte quota (K, M, G, T suffixes; none)\n"
	"  --inodes N               hard inode quota (none: no limit)\n"
	"  --audit off|meta|full    what the audit log records (default meta)\n"
	"  --option OPT             an extra wsfs -o option, e.g. allow_other\n"
	"  --allow-other            let other users (the agent) in: the same as\n"
	"                           --option allow_other\n"
	"  --no-layers              set: remove every layer\n"
	"  --no-options             set: remove every extra option\n"
	"\n"
	"Layer options given to set replace the whole stack, in order.  Quota\n"
	"changes reach a mounted workspace at once; the rest at its next mount.\n";

enum arg_kind {
	A_UPPER, A_MOUNTPOINT, A_LAYER, A_SHARED, A_EPHEMERAL, A_BYTES,
	A_INODES, A_AUDIT, A_OPTION, A_ALLOW_OTHER, A_NO_LAYERS, A_NO_OPTIONS,
};

static const struct {
	const char *flag;
	enum arg_kind kind;
	int has_value;		/* 2: optional, taken if it starts with '/' */
	int set_only;
} flags[] = {
	{ "--upper", A_UPPER, 1, 0 },
	{ "--mountpoint", A_MOUNTPOINT, 1, 0 },
	{ "--layer", A_LAYER, 1, 0 },
	{ "--shared", A_SHARED, 1, 0 },
	{ "--ephemeral", A_EPHEMERAL, 2, 0 },
	{ "--bytes", A_BYTES, 1, 0 },
	{ "--inodes", A_INODES, 1, 0 },
	{ "--audit", A_AUDIT, 1, 0 },
	{ "--option", A_OPTION, 1, 0 },
	{ "--allow-other", A_ALLOW_OTHER, 0, 0 },
	{ "--no-layers", A_NO_LAYERS, 0, 1 },
	{ "--no-options", A_NO_OPTIONS, 0, 1 },
};

#define N_FLAGS (sizeof(flags) / sizeof(flags[0]))

struct arg {
	enum arg_kind kind;
	const char *flag;
	const char *value;	/* NULL for flags without one */
};

struct parsed {
	struct arg *v;
	size_t n, cap;
	const char *name;
};

static int find_flag(const char *word, size_t len)
{
	size_t i;

	for (i = 0; i < N_FLAGS; i++) {
		if (strlen(flags[i].flag) == len &&
		    strncmp(word, flags[i].flag, len) == 0)
			return (int)i;
	}
	return -1;
}

static int push(struct parsed *p, int f, const char *value)
{
	if (p->n == p->cap &&
	    grow_array((void **)&p->v, &p->cap, sizeof(*p->v), 8) < 0) {
		wsctl_err("out of memory");
		return WSCTL_ERR;
	}
	p->v[p->n].kind = flags[f].kind;
	p->v[p->n].flag = flags[f].flag;
	p->v[p->n].value = value;
	p->n++;
	return 0;
}

/* One option word at ARGV[*I]; may take ARGV[*I + 1] as its value. */
static int parse_flag(const char *cmd, int is_set, int argc, char **argv,
		      int *i, struct parsed *p)
{
	const char *word = argv[*i], *eq = strchr(word, '=');
	size_t len = eq ? (size_t)(eq - word) : strlen(word);
	int f = find_flag(word, len);

	if (f < 0 || (flags[f].set_only && !is_set))
		return wsctl_usage_err(cmd, "unknown option '%s'", word);
	if (eq != NULL) {
		if (!flags[f].has_value)
			return wsctl_usage_err(cmd, "option '%s' takes no "
					       "value", flags[f].flag);
		return push(p, f, eq + 1);
	}
	if (flags[f].has_value == 2) {
		if (*i + 1 < argc && argv[*i + 1][0] == '/')
			return push(p, f, argv[++*i]);
		return push(p, f, NULL);
	}
	if (flags[f].has_value) {
		if (*i + 1 >= argc)
			return wsctl_usage_err(cmd, "option '%s' needs a value",
					       word);
		return push(p, f, argv[++*i]);
	}
	return push(p, f, NULL);
}

static int parse_words(const char *cmd, int is_set, int argc, char **argv,
		       struct parsed *p)
{
	int i, rc, opts_done = 0;

	for (i = 1; i < argc; i++) {
		if (!opts_done && strcmp(argv[i], "--") == 0) {
			opts_done = 1;
		} else if (!opts_done && (strcmp(argv[i], "-h") == 0 ||
					  strcmp(argv[i], "--help") == 0)) {
			return -1;
		} else if (!opts_done && argv[i][0] == '-' &&
			   argv[i][1] != '\0') {
			rc = parse_flag(cmd, is_set, argc, argv, &i, p);
			if (rc != 0)
				return rc;
		} else if (p->name == NULL) {
			p->name = argv[i];
		} else {
			return wsctl_usage_err(cmd, "unexpected argument '%s'",
					       argv[i]);
		}
	}
	if (p->name == NULL)
		return wsctl_usage_err(cmd, "missing workspace name");
	return 0;
}

/* ---- applying ----------------------------------------------------------- */

static int replace_str(char **dst, const char *src)
{
	char *copy = src ? strdup(src) : NULL;

	if (src != NULL && copy == NULL) {
		wsctl_err("out of memory");
		return WSCTL_ERR;
	}
	free(*dst);
	*dst = copy;
	return 0;
}

/* The upper as a real absolute path, so that a later symlink swap on the
** way cannot redirect the workspace.  A missing upper is resolved through
** its parent; wsdef_converge makes it once the whole definition checks. */
static int set_upper(struct ws_def *d, const char *flag, const char *value)
{
	char real[PATH_MAX], parent[PATH_MAX], *slash;
	const char *base;

	if (value[0] != '/') {
		wsctl_err("%s '%s': give an absolute path", flag, value);
		return WSCTL_USAGE;
	}
	if (realpath(value, real) != NULL)
		return replace_str(&d->upper, real);
	if (errno != ENOENT || strlen(value) >= sizeof(parent))
		goto fail;
	snprintf(parent, sizeof(parent), "%s", value);
	while (strlen(parent) > 1 && parent[strlen(parent) - 1] == '/')
		parent[strlen(parent) - 1] = '\0';
	slash = strrchr(parent, '/');
	base = slash + 1;
	if (*base == '\0' || strcmp(base, ".") == 0 || strcmp(base, "..") == 0) {
		errno = EINVAL;
		goto fail;
	}
	*slash = '\0';
	if (realpath(slash == parent ? "/" : parent, real) == NULL)
		goto fail;
	if (strlen(real) + strlen(base) + 2 > sizeof(real)) {
		errno = ENAMETOOLONG;
		goto fail;
	}
	strcat(strcmp(real, "/") == 0 ? real : strcat(real, "/"), base);
	return replace_str(&d->upper, real);
fail:
	wsctl_err("%s '%s': %s", flag, value, strerror(errno));
	return WSCTL_USAGE;
}

static int add_layer(struct ws_def *d, const struct arg *a)
{
	struct layer_spec spec;
	char err[PATH_MAX + 256];
	void *grown;
	int rc;

	if (a->kind == A_LAYER)
		rc = layer_spec_parse(a->value, &spec, err, sizeof(err));
	else if (a->kind == A_SHARED)
		rc = layer_spec_parse_shared(a->value, &spec, err, sizeof(err));
	else
		rc = layer_spec_parse_ephemeral(a->value, &spec, err,
						sizeof(err));
	if (rc < 0) {
		wsctl_err("%s: %s", a->flag, err);
		return WSCTL_USAGE;
	}
	grown = realloc(d->layers, (d->nlayers + 1) * sizeof(*d->layers));
	if (grown == NULL) {
		layer_spec_free(&spec);
		wsctl_err("out of memory");
		return WSCTL_ERR;
	}
	d->layers = grown;
	d->layers[d->nlayers++] = spec;
	return 0;
}

static int append_option(struct ws_def *d, const char *opt)
{
	char err[512], *joined;
	size_t len;

	if (!wsdef_option_ok(opt, err, sizeof(err))) {
		wsctl_err("--option: %s", err);
		return WSCTL_USAGE;
	}
	if (d->options == NULL)
		return replace_str(&d->options, opt);
	len = strlen(d->options) + strlen(opt) + 2;
	joined = malloc(len);
	if (joined == NULL) {
		wsctl_err("out of memory");
		return WSCTL_ERR;
	}
	snprintf(joined, len, "%s,%s", d->options, opt);
	free(d->options);
	d->options = joined;
	return 0;
}

static int set_limit(const struct arg *a, uint64_t *field)
{
	char err[256];
	int rc;

	rc = a->kind == A_BYTES ? qparse_size(a->value, field, err, sizeof(err))
				: qparse_count(a->value, field, err, sizeof(err));
	if (rc < 0) {
		wsctl_err("%s: %s", a->flag, err);
		return WSCTL_USAGE;
	}
	return 0;
}

static void clear_layers(struct ws_def *d)
{
	layer_stack_free(d->layers, d->nlayers);
	d->layers = NULL;
	d->nlayers = 0;
}

static int has_kind(const struct parsed *p, enum arg_kind a, enum arg_kind b,
		    enum arg_kind c)
{
	size_t i;

	for (i = 0; i < p->n; i++) {
		if (p->v[i].kind == a || p->v[i].kind == b ||
		    p->v[i].kind == c)
			return 1;
	}
	return 0;
}

static int apply_arg(struct ws_def *d, const struct arg *a)
{
	switch (a->kind) {
	case A_UPPER:
		return set_upper(d, a->flag, a->value);
	case A_MOUNTPOINT:
		return replace_str(&d->mountpoint, a->value);
	case A_LAYER:
	case A_SHARED:
	case A_EPHEMERAL:
		return add_layer(d, a);
	case A_BYTES:
		return set_limit(a, &d->lim.bytes);
	case A_INODES:
		return set_limit(a, &d->lim.inodes);
	case A_AUDIT:
		return replace_str(&d->audit, a->value);
	case A_OPTION:
		return append_option(d, a->value);
	case A_ALLOW_OTHER:
		return append_option(d, "allow_other");
	case A_NO_LAYERS:
	case A_NO_OPTIONS:
		return 0;	/* handled before the others */
	}
	return WSCTL_ERR;
}

/* A whole-ephemeral layer goes first, where the YAML form (ephemeral:
** true) puts it, so that `edit` of a definition made here reads back
** equal instead of reporting a reordered stack. */
static void whole_ephemeral_first(struct ws_def *d)
{
	struct layer_spec eph;
	size_t i;

	for (i = 1; i < d->nlayers; i++) {
		if (d->layers[i].mode != LAYER_EPHEMERAL ||
		    strcmp(d->layers[i].target, "/") != 0)
			continue;
		eph = d->layers[i];
		memmove(&d->layers[1], &d->layers[0], i * sizeof(eph));
		d->layers[0] = eph;
		return;
	}
}

static int apply_all(const struct parsed *p, struct ws_def *d)
{
	size_t i;
	int rc;

	if (has_kind(p, A_LAYER, A_SHARED, A_EPHEMERAL) ||
	    has_kind(p, A_NO_LAYERS, A_NO_LAYERS, A_NO_LAYERS))
		clear_layers(d);
	if (has_kind(p, A_OPTION, A_ALLOW_OTHER, A_NO_OPTIONS))
		(void)replace_str(&d->options, NULL);
	for (i = 0; i < p->n; i++) {
		rc = apply_arg(d, &p->v[i]);
		if (rc != 0)
			return rc;
	}
	whole_ephemeral_first(d);
	return 0;
}

int wsdef_args_parse(const char *cmd, int argc, char **argv,
		     struct wsdef_args *out)
{
	struct parsed p;
	int rc;

	memset(&p, 0, sizeof(p));
	memset(out, 0, sizeof(*out));
	rc = parse_words(cmd, strcmp(cmd, "set") == 0, argc, argv, &p);
	if (rc != 0) {
		free(p.v);
		return rc;
	}
	out->name = p.name;
	out->priv = p.v;
	out->n = p.n;
	out->nothing_given = p.n == 0;
	return 0;
}

int wsdef_args_apply(const struct wsdef_args *a, struct ws_def *d)
{
	struct parsed p;

	memset(&p, 0, sizeof(p));
	p.v = a->priv;
	p.n = a->n;
	p.name = a->name;
	return apply_all(&p, d);
}

void wsdef_args_free(struct wsdef_args *a)
{
	free(a->priv);
	a->priv = NULL;
}
