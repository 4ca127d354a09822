/*
** wsdef_converge(): make a stored definition equal a wanted one, saying
** what changed.  See wsdef_change.h for the contract.
**
** The whole wanted definition is checked before anything is written, with
** the same layer rules the daemon applies at mount (layer_stack_check), so
** a definition that is stored is one that can be mounted, modulo what can
** change on disk in between.  Each field is then compared on its own and
** reported as one line; the lines are the interface `apply --dry-run`
** shows operators, so they name the field, the old and the new value, and
** when the change takes effect.
**
** Quota limits are the only part of a definition a running daemon can
** take at once.  They are stored first and then sent to the daemon, so a
** daemon that dies in between still finds the new limits at its next mount.
** Every stored change also goes on the workspace's audit chain ("define"
** and, from cmd_rm.c, "undefine"), because who widened a quota or added an
** input is exactly what an auditor asks.
*/
#include "wsdef_change.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "append.h"
#include "ctl_proto.h"
#include "qparse.h"
#include "wsdef_check.h"

/* What one converge changes, collected before anything is printed. */
struct delta {
	FILE *out;
	const char *verb;	/* "update" or "would update" */
	const char *name;
	const char *when;	/* " (at next mount)" while mounted, else "" */
	int changes;
	char detail[1024];	/* "field,field" for the audit record */
};

static const char *show(const char *s, const char *none)
{
	return s != NULL ? s : none;
}

static int same_str(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

static void note_field(struct delta *dl, const char *field)
{
	size_t len = strlen(dl->detail);

	dl->changes++;
	snprintf(dl->detail + len, sizeof(dl->detail) - len, "%s%s",
		 len > 0 ? "," : "", field);
}

static void text_change(struct delta *dl, const char *field, const char *old,
			const char *new, const char *none)
{
	if (same_str(old, new))
		return;
	note_field(dl, field);
	fprintf(dl->out, "%s %s: %s %s -> %s%s\n", dl->verb, dl->name, field,
		show(old, none), show(new, none), dl->when);
}

static void format_layer(const struct layer_spec *l, char *buf, size_t len)
{
	if (l->mode == LAYER_EPHEMERAL)
		snprintf(buf, len, "%s ephemeral", l->target);
	else
		snprintf(buf, len, "%s %s %s", l->target,
			 layer_mode_name(l->mode), l->source);
}

static int same_layers(const struct ws_def *a, const struct ws_def *b)
{
	size_t i;

	if (a->nlayers != b->nlayers)
		return 0;
	for (i = 0; i < a->nlayers; i++) {
		if (a->layers[i].mode != b->layers[i].mode ||
		    !same_str(a->layers[i].source, b->layers[i].source) ||
		    !same_str(a->layers[i].target, b->layers[i].target))
			return 0;
	}
	return 1;
}

static void print_layers(FILE *out, const char *prefix,
			 const struct ws_def *d)
{
	char buf[PATH_MAX + LAYER_TARGET_MAX + 32];
	size_t i;

	if (d->nlayers == 0)
		fprintf(out, "%s(none)\n", prefix);
	for (i = 0; i < d->nlayers; i++) {
		format_layer(&d->layers[i], buf, sizeof(buf));
		fprintf(out, "%s%s\n", prefix, buf);
	}
}

static void layers_change(struct delta *dl, const struct ws_def *old,
			  const struct ws_def *new)
{
	if (same_layers(old, new))
		return;
	note_field(dl, "layers");
	fprintf(dl->out, "%s %s: layers%s\n", dl->verb, dl->name, dl->when);
	print_layers(dl->out, "  - ", old);
	print_layers(dl->out, "  + ", new);
}

/* ---- quota limits ------------------------------------------------------- */

static const struct {
	const char *key;	/* as in the "quota-set" request */
	size_t offset;
	int is_size;
} limit_fields[] = {
	{ "bytes", offsetof(struct quota_limits, bytes), 1 },
	{ "inodes", offsetof(struct quota_limits, inodes), 0 },
	{ "soft_bytes", offsetof(struct quota_limits, soft_bytes), 1 },
	{ "soft_inodes", offsetof(struct quota_limits, soft_inodes), 0 },
	{ "grace", offsetof(struct quota_limits, grace_s), 0 },
};

#define N_LIMIT_FIELDS (sizeof(limit_fields) / sizeof(limit_fields[0]))

static uint64_t limit_at(const struct quota_limits *l, size_t i)
{
	uint64_t v;

	memcpy(&v, (const char *)l + limit_fields[i].offset, sizeof(v));
	return v;
}

static void format_limit(const struct quota_limits *l, size_t i, char *buf,
			 size_t len)
{
	uint64_t v = limit_at(l, i);

	if (!quota_limited(v))
		snprintf(buf, len, "none");
	else if (limit_fields[i].is_size)
		qformat_size(v, buf, len);
	else
		qformat_value(v, buf, len);
}

static int same_warn(const struct quota_limits *a, const struct quota_limits *b)
{
	return a->nwarn == b->nwarn &&
	       memcmp(a->warn, b->warn, a->nwarn * sizeof(a->warn[0])) == 0;
}

/* Prints each changed limit and builds the daemon's "quota-set" request
** for them in REQ; returns how many changed. */
static int limits_change(struct delta *dl, const struct quota_limits *old,
			 const struct quota_limits *new, int live, char *req,
			 size_t reqlen)
{
	const char *when = live ? " (live)" : "";
	char a[64], b[64];
	size_t i, off;
	int n = 0;

	off = (size_t)snprintf(req, reqlen, "quota-set");
	for (i = 0; i < N_LIMIT_FIELDS; i++) {
		if (limit_at(old, i) == limit_at(new, i))
			continue;
		format_limit(old, i, a, sizeof(a));
		format_limit(new, i, b, sizeof(b));
		note_field(dl, limit_fields[i].key);
		fprintf(dl->out, "%s %s: %s %s -> %s%s\n", dl->verb, dl->name,
			limit_fields[i].key, a, b, when);
		qformat_value(limit_at(new, i), a, sizeof(a));
		if (off < reqlen)
			off += (size_t)snprintf(req + off, reqlen - off,
						" %s=%s", limit_fields[i].key, a);
		n++;
	}
	if (!same_warn(old, new)) {
		qformat_warn(old, ',', a, sizeof(a));
		qformat_warn(new, ',', b, sizeof(b));
		note_field(dl, "warn");
		fprintf(dl->out, "%s %s: warn %s -> %s%s\n", dl->verb, dl->name,
			a, b, when);
		if (off < reqlen)
			off += (size_t)snprintf(req + off, reqlen - off,
						" warn=%s", b);
		n++;
	}
	return n;
}

/* ---- the daemon --------------------------------------------------------- */

/* The live mount of NAME, if any: 1 and M filled, 0 if none. */
static int find_live(struct registry *reg, const char *name,
		     struct ws_mount *m)
{
	return registry_get(reg, name, m) == 0 && m->live;
}

static int send_limits(const struct ws_mount *m, const char *req)
{
	char err[512], *reply = NULL;
	int rc;

	rc = ctl_request(m->socket, req, &reply, err, sizeof(err));
	if (rc < 0) {
		wsctl_err("workspace '%s': the new limits are stored but the "
			  "daemon did not take them: %s", m->name, err);
		return WSCTL_DAEMON;
	}
	if (strncmp(reply, "error ", 6) == 0) {
		reply[strcspn(reply, "\n")] = '\0';
		wsctl_err("workspace '%s': the new limits are stored but the "
			  "daemon refused them: %s", m->name, reply + 6);
		free(reply);
		return WSCTL_DAEMON;
	}
	free(reply);
	return WSCTL_OK;
}

/* ---- create, update ----------------------------------------------------- */

static void record(const struct wsctl *ctx, const char *name, const char *op,
		   const char *detail)
{
	struct audit_record r;
	char err[256];

	memset(&r, 0, sizeof(r));
	r.ws = name;
	r.op = op;
	r.detail = detail;
	if (audit_append_one(ctx->state_dir, &r, err, sizeof(err)) < 0)
		wsctl_err("warning: workspace '%s' was changed but the change "
			  "is not in the audit log: %s", name, err);
}

static int store(struct registry *reg, const struct ws_def *d, int create)
{
	int rc;

	if (d->upper != NULL && mkdir(d->upper, 0755) < 0 && errno != EEXIST) {
		wsctl_err("cannot make the upper directory %s: %s", d->upper,
			  strerror(errno));
		return WSCTL_ERR;
	}
	rc = wsdef_put(reg, d, create);

	if (rc == -EEXIST) {
		wsctl_err("workspace '%s' already exists", d->name);
		return WSCTL_EXISTS;
	}
	if (rc < 0) {
		wsctl_err("cannot store workspace '%s' in %s/state.db: %s",
			  d->name, registry_dir(reg), strerror(-rc));
		return WSCTL_ERR;
	}
	return WSCTL_OK;
}

static void print_created(FILE *out, const char *verb, const struct ws_def *d)
{
	char a[64];
	size_t i;

	fprintf(out, "%s %s\n", verb, d->name);
	fprintf(out, "  upper %s\n", show(d->upper, "(none: all ephemeral)"));
	if (d->mountpoint != NULL)
		fprintf(out, "  mountpoint %s\n", d->mountpoint);
	if (d->audit != NULL)
		fprintf(out, "  audit %s\n", d->audit);
	if (d->options != NULL)
		fprintf(out, "  options %s\n", d->options);
	for (i = 0; i < N_LIMIT_FIELDS; i++) {
		if (!quota_limited(limit_at(&d->lim, i)) ||
		    strcmp(limit_fields[i].key, "grace") == 0)
			continue;
		format_limit(&d->lim, i, a, sizeof(a));
		fprintf(out, "  %s %s\n", limit_fields[i].key, a);
	}
	if (d->nlayers > 0)
		print_layers(out, "  layer ", d);
}

static int create(const struct wsctl *ctx, struct registry *reg,
		  const struct ws_def *want, unsigned int flags, FILE *out)
{
	int rc;

	print_created(out, flags & WSDEF_DRY_RUN ? "would create" : "create",
		      want);
	if (flags & WSDEF_DRY_RUN)
		return WSCTL_OK;
	rc = store(reg, want, 1);
	if (rc == WSCTL_OK)
		record(ctx, want->name, "define", "created");
	return rc;
}

static int update(const struct wsctl *ctx, struct registry *reg,
		  const struct ws_def *old, const struct ws_def *want,
		  unsigned int flags, FILE *out)
{
	char req[CTL_MAX_REQUEST];
	struct delta dl;
	struct ws_mount m;
	int live, nlimits, rc;

	live = find_live(reg, want->name, &m);
	memset(&dl, 0, sizeof(dl));
	dl.out = out;
	dl.verb = flags & WSDEF_DRY_RUN ? "would update" : "update";
	dl.name = want->name;
	dl.when = live ? " (at next mount)" : "";
	text_change(&dl, "upper", old->upper, want->upper,
		    "(none: all ephemeral)");
	text_change(&dl, "mountpoint", old->mountpoint, want->mountpoint,
		    "(default)");
	text_change(&dl, "audit", old->audit, want->audit, "(default)");
	text_change(&dl, "options", old->options, want->options, "(none)");
	layers_change(&dl, old, want);
	nlimits = limits_change(&dl, &old->lim, &want->lim, live, req,
				sizeof(req));
	if (dl.changes == 0) {
		fprintf(out, "unchanged %s\n", want->name);
		return WSCTL_OK;
	}
	if (flags & WSDEF_DRY_RUN)
		return WSCTL_OK;
	rc = store(reg, want, 0);
	if (rc != WSCTL_OK)
		return rc;
	record(ctx, want->name, "define", dl.detail);
	if (nlimits > 0 && live)
		return send_limits(&m, req);
	return WSCTL_OK;
}

int wsdef_converge(const struct wsctl *ctx, struct registry *reg,
		   const struct ws_def *want, unsigned int flags, FILE *out)
{
	struct ws_def old;
	int rc;

	rc = wsdef_check(reg, want);
	if (rc != WSCTL_OK)
		return rc;
	rc = wsdef_get(reg, want->name, &old);
	if (rc == -ENOENT) {
		if (flags & WSDEF_UPDATE_ONLY) {
			wsctl_err("no workspace named '%s'", want->name);
			return WSCTL_NOENT;
		}
		return create(ctx, reg, want, flags, out);
	}
	if (rc < 0) {
		wsctl_err("cannot read workspace '%s' from %s/state.db: %s",
			  want->name, registry_dir(reg), strerror(-rc));
		return WSCTL_ERR;
	}
	if (flags & WSDEF_CREATE_ONLY) {
		wsdef_free(&old);
		wsctl_err("workspace '%s' already exists", want->name);
		return WSCTL_EXISTS;
	}
	rc = update(ctx, reg, &old, want, flags, out);
	wsdef_free(&old);
	return rc;
}
