/*
** wsctl status NAME: ask a running daemon for its figures.
**
** The registry says where the daemon's control socket is and, through the
** lock, whether anyone is there to answer; only then is the socket tried, so
** a dead workspace gets a message about the daemon rather than a connection
** error.  The reply is the protocol's flat "key value" list (ctl_proto.h).
** Keys are printed in the order the daemon sent them and unknown keys are
** shown as they come, so a daemon that learns a new counter needs no wsctl
** change.  Only a few well-known keys get friendlier formatting, and three
** families of keys are grouped where their first member comes: "ops.<op>"
** as a list for people and a nested object for JSON consumers, and the
** layer stack ("layer.N MODE TARGET SOURCE") and the usage of ephemeral
** targets ("ephemeral.N TARGET BYTES INODES") as sections of a line each
** and as JSON arrays of objects.
**
** A SOURCE is the rest of its line, so it may hold spaces; a TARGET is
** taken up to the next space.  An ephemeral line is split from the right
** instead, its two counts being the last words, so there the TARGET may
** hold spaces.
*/
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ctl_proto.h"
#include "qparse.h"
#include "util.h"
#include "wsctl.h"

enum group {
	G_NONE,		/* a key of its own */
	G_OPS,		/* ops.<op> COUNT */
	G_LAYER,	/* layer.N MODE TARGET SOURCE */
	G_EPHEMERAL,	/* ephemeral.N TARGET BYTES INODES */
	G_COUNT,
};

/* Each group's key prefix, whether only a number may follow it, and its
** name as a section and a JSON key.  Numbered groups leave room for other
** keys under the same prefix ("ephemeral.wiped"), shown as they come. */
static const struct {
	const char *prefix;
	int numbered;
	const char *name;
} groups[G_COUNT] = {
	[G_OPS] = { "ops.", 0, "ops" },
	[G_LAYER] = { "layer.", 1, "layers" },
	[G_EPHEMERAL] = { "ephemeral.", 1, "ephemeral" },
};

#define OPS_PREFIX_LEN (sizeof("ops.") - 1)

struct kv {
	const char *key;
	const char *val;
	enum group group;
	/* G_LAYER: mode, target, source; G_EPHEMERAL: target, bytes,
	** inodes.  Missing fields are "". */
	const char *f[3];
};

struct reply {
	struct kv *kv;
	size_t n;
	const char *error;	/* set for an "error MSG" reply */
};

static int all_digits(const char *s)
{
	if (*s == '\0')
		return 0;
	for (; *s != '\0'; s++) {
		if (*s < '0' || *s > '9')
			return 0;
	}
	return 1;
}

static enum group group_of(const char *key)
{
	size_t len;
	int g;

	for (g = G_OPS; g < G_COUNT; g++) {
		len = strlen(groups[g].prefix);
		if (strncmp(key, groups[g].prefix, len) == 0 &&
		    (!groups[g].numbered || all_digits(key + len)))
			return (enum group)g;
	}
	return G_NONE;
}

/* Cuts the first word off *REST: returns it and leaves *REST after the
** space, or "" when there is no space (the word is then all of *REST). */
static const char *cut_word(char **rest)
{
	char *word = *rest, *sp = strchr(word, ' ');

	if (sp == NULL) {
		*rest = word + strlen(word);
		return word;
	}
	*sp = '\0';
	*rest = sp + 1;
	return word;
}

/* Cuts the last word off S: returns it, or "" when S has no space. */
static const char *cut_last_word(char *s)
{
	char *sp = strrchr(s, ' ');

	if (sp == NULL)
		return "";
	*sp = '\0';
	return sp + 1;
}

/* Splits a grouped value in place into the fields of KV. */
static void split_fields(struct kv *kv, char *val)
{
	switch (kv->group) {
	case G_LAYER:
		kv->f[0] = cut_word(&val);
		kv->f[1] = cut_word(&val);
		kv->f[2] = val;
		break;
	case G_EPHEMERAL:
		kv->f[2] = cut_last_word(val);
		kv->f[1] = cut_last_word(val);
		kv->f[0] = val;
		/* "TARGET BYTES": the one count is the bytes. */
		if (kv->f[1][0] == '\0') {
			kv->f[1] = kv->f[2];
			kv->f[2] = "";
		}
		break;
	default:
		break;
	}
}

/* Splits REPLY in place into its status line and key/value lines. */
static int parse_reply(char *text, struct reply *r)
{
	char *line = text, *nl, *sp;
	size_t cap = 0;
	struct kv *nkv;

	memset(r, 0, sizeof(*r));
	nl = strchr(line, '\n');
	if (nl != NULL)
		*nl = '\0';
	if (strncmp(line, "error ", 6) == 0) {
		r->error = line + 6;
		return 0;
	}
	if (strcmp(line, "ok") != 0 || nl == NULL)
		return -EPROTO;
	for (line = nl + 1; *line != '\0'; line = nl + 1) {
		nl = strchr(line, '\n');
		if (nl == NULL)
			nl = line + strlen(line) - 1;
		else
			*nl = '\0';
		if (*line == '\0')
			continue;
		if (r->n == cap) {
			cap = cap ? cap * 2 : 32;
			nkv = reallocarray(r->kv, cap, sizeof(*nkv));
			if (nkv == NULL)
				return -ENOMEM;
			r->kv = nkv;
		}
		sp = strchr(line, ' ');
		if (sp != NULL)
			*sp = '\0';
		memset(&r->kv[r->n], 0, sizeof(r->kv[r->n]));
		r->kv[r->n].key = line;
		r->kv[r->n].val = sp ? sp + 1 : "";
		r->kv[r->n].group = group_of(line);
		split_fields(&r->kv[r->n], sp ? sp + 1 : line + strlen(line));
		r->n++;
	}
	return 0;
}

static void format_duration(const char *val, char *buf, size_t len)
{
	unsigned long long t, d, h, m, s;
	double secs;
	char *end;

	secs = strtod(val, &end);
	if (end == val || *end != '\0' || !(secs >= 0) || secs > 1e15) {
		snprintf(buf, len, "%s", val);
		return;
	}
	if (secs < 60) {
		snprintf(buf, len, "%.1fs", secs);
		return;
	}
	t = (unsigned long long)secs;
	d = t / 86400;
	h = t / 3600 % 24;
	m = t / 60 % 60;
	s = t % 60;
	if (d > 0)
		snprintf(buf, len, "%llud %02lluh %02llum %02llus", d, h, m, s);
	else if (h > 0)
		snprintf(buf, len, "%lluh %02llum %02llus", h, m, s);
	else
		snprintf(buf, len, "%llum %02llus", m, s);
}

static void format_bytes(const char *val, char *buf, size_t len)
{
	static const char *const units[] = {
		"KiB", "MiB", "GiB", "TiB", "PiB",
	};
	uint64_t n;
	double v;
	size_t u = 0;

	if (wsctl_parse_u64(val, &n) < 0 || n < 1024) {
		snprintf(buf, len, "%s", val);
		return;
	}
	v = (double)n / 1024;
	while (v >= 1024 && u + 1 < sizeof(units) / sizeof(units[0])) {
		v /= 1024;
		u++;
	}
	snprintf(buf, len, "%s (%.1f %s)", val, v, units[u]);
}

static void format_time(const char *val, char *buf, size_t len)
{
	char date[64];
	uint64_t n;
	time_t t;
	struct tm tm;

	if (wsctl_parse_u64(val, &n) < 0 || n > INT64_MAX) {
		snprintf(buf, len, "%s", val);
		return;
	}
	t = (time_t)n;
	if (localtime_r(&t, &tm) == NULL ||
	    strftime(date, sizeof(date), "%Y-%m-%d %H:%M:%S %z", &tm) == 0) {
		snprintf(buf, len, "%s", val);
		return;
	}
	snprintf(buf, len, "%s (%s)", val, date);
}

/* The label shown for KEY: uptime_s is shown formatted, so not in seconds. */
static const char *human_key(const char *key)
{
	return strcmp(key, "uptime_s") == 0 ? "uptime" : key;
}

static void human_value(const struct kv *kv, char *buf, size_t len)
{
	if (strcmp(kv->key, "uptime_s") == 0)
		format_duration(kv->val, buf, len);
	else if (strcmp(kv->key, "bytes_read") == 0 ||
		 strcmp(kv->key, "bytes_written") == 0)
		format_bytes(kv->val, buf, len);
	else if (strcmp(kv->key, "start_time") == 0)
		format_time(kv->val, buf, len);
	else
		snprintf(buf, len, "%s", kv->val);
}

static void print_label(const char *key, int width)
{
	/* Values start one column after the colon of the longest key. */
	wsctl_print_cell(stdout, key, 0);
	fputc(':', stdout);
	wsctl_print_cell(stdout, "", width - (int)strlen(key) + 1);
}

static void print_ops(const struct reply *r)
{
	int kw = 0, vw = 0;
	size_t i;

	for (i = 0; i < r->n; i++) {
		if (r->kv[i].group != G_OPS)
			continue;
		if ((int)strlen(r->kv[i].key + OPS_PREFIX_LEN) > kw)
			kw = (int)strlen(r->kv[i].key + OPS_PREFIX_LEN);
		if ((int)strlen(r->kv[i].val) > vw)
			vw = (int)strlen(r->kv[i].val);
	}
	fputs("ops:\n", stdout);
	for (i = 0; i < r->n; i++) {
		if (r->kv[i].group != G_OPS)
			continue;
		fputs("  ", stdout);
		wsctl_print_cell(stdout, r->kv[i].key + OPS_PREFIX_LEN, kw + 2);
		fprintf(stdout, "%*s", vw - (int)strlen(r->kv[i].val), "");
		wsctl_print_cell(stdout, r->kv[i].val, 0);
		fputc('\n', stdout);
	}
}

/* The widest of field F over the members of group G. */
static int field_width(const struct reply *r, enum group g, int f)
{
	int w = 0;
	size_t i;

	for (i = 0; i < r->n; i++) {
		if (r->kv[i].group == g && (int)strlen(r->kv[i].f[f]) > w)
			w = (int)strlen(r->kv[i].f[f]);
	}
	return w;
}

/* One line per layer: mode, target, source, in aligned columns. */
static void print_layers(const struct reply *r)
{
	int mw = field_width(r, G_LAYER, 0), tw = field_width(r, G_LAYER, 1);
	const struct kv *kv;
	size_t i;

	fputs("layers:\n", stdout);
	for (i = 0; i < r->n; i++) {
		kv = &r->kv[i];
		if (kv->group != G_LAYER)
			continue;
		fputs("  ", stdout);
		wsctl_print_cell(stdout, kv->f[0], mw + 2);
		/* No trailing blanks when a daemon sent no source. */
		wsctl_print_cell(stdout, kv->f[1], kv->f[2][0] ? tw + 2 : 0);
		wsctl_print_cell(stdout, kv->f[2], 0);
		fputc('\n', stdout);
	}
}

/* A byte count in quota's units ("1.5 MiB", as `quota show` prints usage);
** anything that is not a count is shown as it came. */
static void format_usage(const char *val, char *buf, size_t len)
{
	uint64_t n;

	if (wsctl_parse_u64(val, &n) < 0 || n == QUOTA_NONE)
		snprintf(buf, len, "%s", val);
	else
		qformat_size(n, buf, len);
}

/* One line per ephemeral target: target, bytes and inodes in use, with
** the counts right-aligned. */
static void print_ephemeral(const struct reply *r)
{
	int tw = field_width(r, G_EPHEMERAL, 0), iw, bw = 0;
	char usage[64];
	const struct kv *kv;
	size_t i;

	iw = field_width(r, G_EPHEMERAL, 2);
	for (i = 0; i < r->n; i++) {
		if (r->kv[i].group != G_EPHEMERAL)
			continue;
		format_usage(r->kv[i].f[1], usage, sizeof(usage));
		if ((int)strlen(usage) > bw)
			bw = (int)strlen(usage);
	}
	fputs("ephemeral:\n", stdout);
	for (i = 0; i < r->n; i++) {
		kv = &r->kv[i];
		if (kv->group != G_EPHEMERAL)
			continue;
		format_usage(kv->f[1], usage, sizeof(usage));
		fputs("  ", stdout);
		wsctl_print_cell(stdout, kv->f[0], tw + 2);
		printf("%*s", bw - (int)strlen(usage), "");
		wsctl_print_cell(stdout, usage, 0);
		printf("  %*s", iw - (int)strlen(kv->f[2]), "");
		wsctl_print_cell(stdout, kv->f[2], 0);
		fputs(" inodes\n", stdout);
	}
}

static void print_group(const struct reply *r, enum group g)
{
	switch (g) {
	case G_OPS:
		print_ops(r);
		break;
	case G_LAYER:
		print_layers(r);
		break;
	case G_EPHEMERAL:
		print_ephemeral(r);
		break;
	default:
		break;
	}
}

static void print_human(const struct reply *r)
{
	char val[PATH_MAX + 64];
	int done[G_COUNT] = { 0 };
	int width = 3;
	size_t i;

	for (i = 0; i < r->n; i++) {
		if (r->kv[i].group == G_NONE &&
		    (int)strlen(human_key(r->kv[i].key)) > width)
			width = (int)strlen(human_key(r->kv[i].key));
	}
	for (i = 0; i < r->n; i++) {
		if (r->kv[i].group != G_NONE) {
			if (!done[r->kv[i].group])
				print_group(r, r->kv[i].group);
			done[r->kv[i].group] = 1;
			continue;
		}
		human_value(&r->kv[i], val, sizeof(val));
		if (val[0] == '\0') {
			wsctl_print_cell(stdout, human_key(r->kv[i].key), 0);
			fputs(":\n", stdout);
			continue;
		}
		print_label(human_key(r->kv[i].key), width);
		wsctl_print_cell(stdout, val, 0);
		fputc('\n', stdout);
	}
	/* Sections other than ops appear only when sent: a daemon that
	** predates layers sends none either, so "none" could be wrong. */
	if (!done[G_OPS]) {
		print_label("ops", width);
		fputs("none\n", stdout);
	}
}

static int skip_digits(const char **p)
{
	const char *start = *p;

	while (**p >= '0' && **p <= '9')
		(*p)++;
	return *p > start;
}

/* Exactly the JSON number grammar (RFC 8259 section 6), so whatever is
** printed bare is guaranteed to parse. */
static int is_json_number(const char *s)
{
	if (*s == '-')
		s++;
	if (*s == '0')
		s++;
	else if (!skip_digits(&s))
		return 0;
	if (*s == '.') {
		s++;
		if (!skip_digits(&s))
			return 0;
	}
	if (*s == 'e' || *s == 'E') {
		s++;
		if (*s == '+' || *s == '-')
			s++;
		if (!skip_digits(&s))
			return 0;
	}
	return *s == '\0';
}

/* Keys whose values are text even when they look numeric: a workspace may
** well be named "2024". */
static int is_text_key(const char *key)
{
	static const char *const text[] = {
		"name", "mountpoint", "upper", "socket", "state",
	};
	size_t i;

	for (i = 0; i < sizeof(text) / sizeof(text[0]); i++) {
		if (strcmp(key, text[i]) == 0)
			return 1;
	}
	return 0;
}

static void json_value(const char *key, const char *val)
{
	if (!is_text_key(key) && is_json_number(val))
		fputs(val, stdout);
	else
		json_write_string(stdout, val);
}

static void print_json_ops(const struct reply *r)
{
	const char *sep = "\n";
	size_t i;

	fputs("  \"ops\": {", stdout);
	for (i = 0; i < r->n; i++) {
		if (r->kv[i].group != G_OPS)
			continue;
		printf("%s    ", sep);
		json_write_string(stdout, r->kv[i].key + OPS_PREFIX_LEN);
		fputs(": ", stdout);
		json_value(r->kv[i].key, r->kv[i].val);
		sep = ",\n";
	}
	fputs(*sep == ',' ? "\n  }" : "}", stdout);
}

/* A count as a JSON number, or as a string if it is not one. */
static void json_count(const char *val)
{
	uint64_t n;

	if (wsctl_parse_u64(val, &n) == 0)
		fputs(val, stdout);
	else
		json_write_string(stdout, val);
}

static void json_field(const char *sep, const char *name, const char *val,
		       int count)
{
	fputs(sep, stdout);
	json_write_string(stdout, name);
	fputs(": ", stdout);
	if (count)
		json_count(val);
	else
		json_write_string(stdout, val);
}

/* The members of G as an array of objects, one a line. */
static void print_json_array(const struct reply *r, enum group g)
{
	static const char *const names[G_COUNT][3] = {
		[G_LAYER] = { "mode", "target", "source" },
		[G_EPHEMERAL] = { "target", "bytes", "inodes" },
	};
	const char *sep = "\n";
	size_t i;
	int f;

	fputs("  ", stdout);
	json_write_string(stdout, groups[g].name);
	fputs(": [", stdout);
	for (i = 0; i < r->n; i++) {
		if (r->kv[i].group != g)
			continue;
		printf("%s    {", sep);
		for (f = 0; f < 3; f++)
			json_field(f ? ", " : "", names[g][f], r->kv[i].f[f],
				   g == G_EPHEMERAL && f > 0);
		fputc('}', stdout);
		sep = ",\n";
	}
	fputs("\n  ]", stdout);
}

static void print_json(const struct reply *r)
{
	int done[G_COUNT] = { 0 };
	const char *sep = "\n";
	enum group g;
	size_t i;

	fputc('{', stdout);
	for (i = 0; i < r->n; i++) {
		g = r->kv[i].group;
		if (g != G_NONE && done[g])
			continue;
		fputs(sep, stdout);
		sep = ",\n";
		done[g] = 1;
		if (g == G_OPS) {
			print_json_ops(r);
		} else if (g != G_NONE) {
			print_json_array(r, g);
		} else {
			fputs("  ", stdout);
			json_write_string(stdout, r->kv[i].key);
			fputs(": ", stdout);
			json_value(r->kv[i].key, r->kv[i].val);
		}
	}
	if (!done[G_OPS]) {
		fputs(sep, stdout);
		print_json_ops(r);
	}
	fputs("\n}\n", stdout);
}

/* Finds NAME in the registry and checks its daemon is alive. */
static int lookup(const struct wsctl *ctx, const char *name, struct ws_mount *m)
{
	struct registry *reg;
	int rc;

	rc = wsctl_open_registry(ctx, &reg);
	if (rc != 0)
		return rc;
	rc = registry_get(reg, name, m);
	registry_close(reg);
	if (rc == -ENOENT)
		return wsctl_not_mounted(ctx, name);
	if (rc < 0)
		return wsctl_registry_err(ctx, rc);
	if (!m->live) {
		wsctl_err("workspace '%s' is not running (its daemon, pid %ld, "
			  "is gone)", name, (long)m->pid);
		return WSCTL_NOTMOUNTED;
	}
	return 0;
}

static int show(const struct ws_mount *m, char *text, int json)
{
	struct reply r;
	int rc;

	rc = parse_reply(text, &r);
	if (rc < 0) {
		free(r.kv);
		if (rc == -ENOMEM)
			wsctl_err("out of memory");
		else
			wsctl_err("malformed reply from the daemon at %s",
				  m->socket);
		return WSCTL_ERR;
	}
	if (r.error != NULL) {
		free(r.kv);
		wsctl_err("%s", r.error);
		return WSCTL_ERR;
	}
	if (json)
		print_json(&r);
	else
		print_human(&r);
	free(r.kv);
	return WSCTL_OK;
}

int cmd_status(const struct wsctl *ctx, int argc, char **argv)
{
	char err[PATH_MAX + 128];
	const char *name = NULL;
	struct ws_mount m;
	char *text;
	int json, rc;

	rc = wsctl_parse_args(argc, argv, &json, &name);
	if (rc != 0)
		return rc < 0 ? WSCTL_OK : rc;
	if (!ws_name_valid(name))
		return wsctl_usage_err("status", "invalid workspace name '%s'",
				       name);
	rc = lookup(ctx, name, &m);
	if (rc != 0)
		return rc;
	if (ctl_request(m.socket, "status", &text, err, sizeof(err)) < 0) {
		wsctl_err("%s", err);
		return WSCTL_ERR;
	}
	rc = show(&m, text, json);
	free(text);
	return rc;
}
