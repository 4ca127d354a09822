/*
** wsctl quota set|show|ls: a workspace's limits, changed live or at rest.
**
** A workspace's quota lives in two places: the running daemon's ledger and
** its row in state.db's `quotas` table.  While a daemon runs, only it may
** write the limits, because it is the one enforcing them: a change goes over
** the control socket ("quota-set"), and the daemon applies it to the next
** charge and saves the row itself.  Writing state.db under a live daemon
** would change nothing it enforces until its next mount.  With no daemon,
** the row is the whole truth and is updated directly, for the next mount to
** load.  Whether a daemon runs is decided by the registry's lock probe, as
** everywhere in wsctl.  (A daemon starting between the probe and the write
** may load the row just before it changes; `quota show` then tells.)
**
** This file only decides which of the two to ask or change.  The command
** line and its values are quota_args.c's, and both sources are turned into
** one struct qview (quota_view.c) that one set of printers renders
** (quota_print.c), so `show` and `ls` look the same whichever answered.
*/
#include <errno.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl_proto.h"
#include "append.h"
#include "qstore.h"
#include "quota_args.h"
#include "quota_print.h"
#include "quota_view.h"
#include "wsctl.h"

#define SYN_SET "quota set NAME [--bytes SIZE] [--inodes N] " \
	"[--soft-bytes SIZE] [--soft-inodes N] [--grace DURATION] " \
	"[--warn P,...] [--json]"
#define SYN_SHOW "quota show NAME [--json]"
#define SYN_LS "quota ls [--json]"

#define ERR_LEN (PATH_MAX + 256)

/* ---- finding a workspace ------------------------------------------------ */

struct target {
	struct registry *reg;
	struct ws_mount m;
	int has_mount;		/* a `mounts` row exists */
};

/* Opens the registry and reads NAME's mounts row, if any. */
static int find_target(const struct wsctl *ctx, const char *name,
		       struct target *t)
{
	int rc;

	memset(t, 0, sizeof(*t));
	rc = wsctl_open_registry(ctx, &t->reg);
	if (rc != 0)
		return rc;
	rc = registry_get(t->reg, name, &t->m);
	if (rc == 0) {
		t->has_mount = 1;
		return 0;
	}
	if (rc == -ENOENT)
		return 0;
	registry_close(t->reg);
	t->reg = NULL;
	return wsctl_registry_err(ctx, rc);
}

static int unknown_name(const struct wsctl *ctx, const char *name)
{
	wsctl_err("no workspace named '%s' in %s", name, ctx->state_dir);
	return WSCTL_NOENT;
}

/* Connects to state.db; *DB stays NULL (and 0 is returned) if there is none. */
static int open_db(const struct wsctl *ctx, struct registry *reg,
		   sqlite3 **db)
{
	char err[ERR_LEN];
	int rc;

	rc = registry_db(reg, db, err, sizeof(err));
	if (rc == -ENOENT)
		return 0;
	if (rc < 0) {
		wsctl_err("cannot open the quota store in %s: %s",
			  ctx->state_dir, err);
		return WSCTL_ERR;
	}
	return 0;
}

static int db_error(const struct wsctl *ctx, sqlite3 *db, const char *what,
		    const char *name)
{
	wsctl_err("cannot %s the quota of '%s' in %s: %s", what, name,
		  ctx->state_dir, qstore_errmsg(db));
	return WSCTL_ERR;
}

/*
** Reads NAME's row into ROW.  Returns 0, 1 if it has none (reported only
** when there is no mounts row either: then the name is unknown), or an exit
** status.
*/
static int read_row(const struct wsctl *ctx, const struct target *t,
		    const char *name, sqlite3 **db, struct quota_row *row)
{
	int rc;

	rc = open_db(ctx, t->reg, db);
	if (rc != 0)
		return rc;
	rc = *db ? qstore_get(*db, name, row) : -ENOENT;
	if (rc == -ENOENT && (!t->has_mount || *db == NULL))
		return unknown_name(ctx, name);
	if (rc == -ENOENT)
		return 1;
	if (rc < 0)
		return db_error(ctx, *db, "read", name);
	return 0;
}

/* ---- showing the answer ------------------------------------------------- */

/* Sends REQUEST to M's daemon and prints the quota it answers with. */
static int print_live(const struct ws_mount *m, const char *request, int json)
{
	struct qview v;
	int rc;

	rc = qview_from_daemon(m, request, &v, 0);
	if (rc == WSCTL_OK)
		qview_print(&v, json);
	return rc;
}

static int print_stored(const struct quota_row *row, int json)
{
	struct qview v;

	qview_from_row(row, 0, &v);
	qview_print(&v, json);
	return WSCTL_OK;
}

/* ---- quota set ---------------------------------------------------------- */

static int set_live(const struct qargs *a, const struct target *t,
		    const struct quota_limits *new)
{
	char req[CTL_MAX_REQUEST];

	if (qargs_request(a, new, req, sizeof(req)) < 0) {
		wsctl_err("quota request too long");
		return WSCTL_ERR;
	}
	return print_live(&t->m, req, a->json);
}

/*
** A name with a stale mounts row but no quota row (its daemon died before
** its quota started) gets one now; clean = 0 makes the next mount count.
*/
static int create_row(sqlite3 *db, const struct target *t,
		      const struct qargs *a, const struct quota_limits *new,
		      struct quota_row *row)
{
	memset(row, 0, sizeof(*row));
	snprintf(row->name, sizeof(row->name), "%s", t->m.name);
	snprintf(row->upper, sizeof(row->upper), "%s", t->m.upper);
	quota_limits_default(&row->lim);
	qargs_merge(a, new, &row->lim);
	return qstore_put(db, row);
}

/* A change to a workspace that is not mounted goes on its audit chain
** from here, as the daemon records one made through its socket. The
** stored limits are already saved: a failure to record is reported, not
** undone. */
static void record_stored_change(const struct wsctl *ctx, const struct qargs *a,
				 const struct quota_limits *new)
{
	char req[CTL_MAX_REQUEST], detail[CTL_MAX_REQUEST + 16], err[256];
	struct audit_record r;

	if (qargs_request(a, new, req, sizeof(req)) < 0)
		snprintf(req, sizeof(req), "quota-set ?");
	snprintf(detail, sizeof(detail), "%s mounted=0",
		 req + sizeof("quota-set ") - 1);
	memset(&r, 0, sizeof(r));
	r.ws = a->name;
	r.op = "quota-set";
	r.detail = detail;
	if (audit_append_one(ctx->state_dir, &r, err, sizeof(err)) < 0)
		wsctl_err("warning: the change was saved but not recorded in "
			  "the audit log: %s", err);
}

static int set_stored(const struct wsctl *ctx, const struct qargs *a,
		      const struct target *t, const struct quota_limits *new)
{
	struct quota_row row;
	sqlite3 *db = NULL;
	int rc;

	rc = read_row(ctx, t, a->name, &db, &row);
	if (rc == 1) {
		rc = create_row(db, t, a, new, &row) < 0 ?
		     db_error(ctx, db, "save", a->name) : 0;
	} else if (rc == 0) {
		qargs_merge(a, new, &row.lim);
		rc = qstore_set_limits(db, a->name, &row.lim) < 0 ?
		     db_error(ctx, db, "save", a->name) : 0;
	}
	sqlite3_close(db);
	if (rc != 0)
		return rc;
	record_stored_change(ctx, a, new);
	return print_stored(&row, a->json);
}

static int quota_set(const struct wsctl *ctx, const struct qargs *a)
{
	struct quota_limits new;
	struct target t;
	int rc;

	rc = qargs_limits(a, &new);
	if (rc != 0)
		return rc;
	rc = find_target(ctx, a->name, &t);
	if (rc != 0)
		return rc;
	if (t.has_mount && t.m.live)
		rc = set_live(a, &t, &new);
	else
		rc = set_stored(ctx, a, &t, &new);
	registry_close(t.reg);
	return rc;
}

/* ---- quota show --------------------------------------------------------- */

static int show_stored(const struct wsctl *ctx, const struct qargs *a,
		       const struct target *t)
{
	struct quota_row row;
	sqlite3 *db = NULL;
	int rc;

	rc = read_row(ctx, t, a->name, &db, &row);
	sqlite3_close(db);
	if (rc == 1) {
		wsctl_err("workspace '%s' has no quota record yet; its next "
			  "mount creates one", a->name);
		return WSCTL_ERR;
	}
	if (rc != 0)
		return rc;
	return print_stored(&row, a->json);
}

static int quota_show(const struct wsctl *ctx, const struct qargs *a)
{
	struct target t;
	int rc;

	rc = find_target(ctx, a->name, &t);
	if (rc != 0)
		return rc;
	if (t.has_mount && t.m.live)
		rc = print_live(&t.m, "quota", a->json);
	else
		rc = show_stored(ctx, a, &t);
	registry_close(t.reg);
	return rc;
}

/* ---- quota ls ----------------------------------------------------------- */

struct ls_data {
	struct quota_row *rows;
	size_t nrows;
	struct ws_mount *mounts;
	size_t nmounts;
	struct qview *views;
};

static const struct ws_mount *find_mount(const struct ls_data *d,
					 const char *name)
{
	size_t i;

	for (i = 0; i < d->nmounts; i++) {
		if (strcmp(d->mounts[i].name, name) == 0)
			return &d->mounts[i];
	}
	return NULL;
}

/* Live figures where a daemon answers, the stored row otherwise: one
** wedged daemon must not hide every other workspace, so the listing goes on
** and the row is marked (STATE "mounted*", JSON "source": "state.db"). */
static void fill_view(const struct ls_data *d, size_t i, struct qview *v)
{
	const struct ws_mount *m = find_mount(d, d->rows[i].name);

	if (m != NULL && m->live &&
	    qview_from_daemon(m, "quota", v, 1) == WSCTL_OK)
		return;
	qview_from_row(&d->rows[i], m != NULL && m->live, v);
}

static int load_ls(const struct wsctl *ctx, struct ls_data *d)
{
	struct registry *reg;
	sqlite3 *db = NULL;
	int rc;

	memset(d, 0, sizeof(*d));
	rc = wsctl_open_registry(ctx, &reg);
	if (rc != 0)
		return rc;
	rc = open_db(ctx, reg, &db);
	if (rc == 0 && db != NULL && qstore_list(db, &d->rows, &d->nrows) < 0)
		rc = db_error(ctx, db, "list", "every workspace");
	if (rc == 0 && db != NULL) {
		rc = registry_list(reg, &d->mounts, &d->nmounts);
		rc = rc < 0 ? wsctl_registry_err(ctx, rc) : 0;
	}
	sqlite3_close(db);
	registry_close(reg);
	return rc;
}

static void free_ls(struct ls_data *d)
{
	free(d->rows);
	free(d->mounts);
	free(d->views);
}

static int quota_ls(const struct wsctl *ctx, const struct qargs *a)
{
	struct ls_data d;
	size_t i;
	int rc;

	rc = load_ls(ctx, &d);
	if (rc == 0 && d.nrows > 0) {
		d.views = calloc(d.nrows, sizeof(*d.views));
		if (d.views == NULL) {
			wsctl_err("out of memory");
			rc = WSCTL_ERR;
		}
	}
	for (i = 0; rc == 0 && i < d.nrows; i++)
		fill_view(&d, i, &d.views[i]);
	if (rc == 0)
		rc = qview_print_list(d.views, d.nrows, a->json);
	free_ls(&d);
	return rc;
}

/* ---- dispatch ----------------------------------------------------------- */

static const struct {
	const char *name;
	const char *synopsis;
	int takes_settings;
	int takes_name;
	int (*run)(const struct wsctl *ctx, const struct qargs *a);
} subcommands[] = {
	{ "set", SYN_SET, 1, 1, quota_set },
	{ "show", SYN_SHOW, 0, 1, quota_show },
	{ "ls", SYN_LS, 0, 0, quota_ls },
};

int cmd_quota(const struct wsctl *ctx, int argc, char **argv)
{
	struct qargs a;
	size_t i;
	int rc;

	if (argc < 2)
		return wsctl_usage_err("quota", "missing quota command (set, "
				       "show or ls)");
	if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
		wsctl_print_help_of("quota");
		return WSCTL_OK;
	}
	for (i = 0; i < sizeof(subcommands) / sizeof(subcommands[0]); i++) {
		if (strcmp(argv[1], subcommands[i].name) != 0)
			continue;
		memset(&a, 0, sizeof(a));
		a.synopsis = subcommands[i].synopsis;
		a.takes_settings = subcommands[i].takes_settings;
		a.takes_name = subcommands[i].takes_name;
		rc = qargs_parse(&a, argc - 1, argv + 1);
		if (rc != 0)
			return rc < 0 ? WSCTL_OK : rc;
		return subcommands[i].run(ctx, &a);
	}
	return wsctl_usage_err("quota", "unknown quota command '%s'", argv[1]);
}
