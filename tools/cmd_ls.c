/*
** wsctl ls: every workspace of the state directory, declared or mounted,
** with its state, usage and mountpoint.
**
** Three sources are joined by name: the definitions (wsdef.c), the mounts
** rows (registry.c) and the quota rows.  A workspace is
**   mounted  while a daemon holds its lock;
**   stale    when its mounts row outlived its daemon (SIGKILL, crash): an
**            operator chasing a vanished mount needs to see it, and
**            `wsctl mount` clears what it left;
**   stopped  when it is declared and no daemon ever claimed it since.
** The STATE column comes from the lock probe, never from the pid, which
** may have been reused by an unrelated process.
**
** Usage comes from the daemon when one answers and from the quota row's
** ledger otherwise (JSON says which), so one wedged daemon cannot hide the
** rest of the list.  Workspaces mounted directly with wsfs, not declared,
** are listed too ("declared": false).
*/
#include <errno.h>
#include <inttypes.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grow.h"
#include "quota_view.h"
#include "util.h"
#include "wsctl.h"
#include "wsdef.h"

#define BAR_WIDTH 10
#define CELL_LEN 64

struct ls_row {
	char name[WS_NAME_MAX + 1];
	const struct ws_mount *m;	/* NULL: never mounted since declared */
	const struct ws_def *def;	/* NULL: mounted without a definition */
	char mountpoint[PATH_MAX];
	struct qview q;
	int have_usage;
};

struct ls_data {
	struct ws_mount *mounts;
	size_t nmounts;
	struct ws_def *defs;
	size_t ndefs;
	struct quota_row *quotas;
	size_t nquotas;
	struct ls_row *rows;
	size_t nrows, cap;
};

static const char *state_word(const struct ls_row *r)
{
	if (r->m == NULL)
		return "stopped";
	return r->m->live ? "mounted" : "stale";
}

/* ---- gathering ---------------------------------------------------------- */

static struct ls_row *find_row(struct ls_data *d, const char *name)
{
	size_t i;

	for (i = 0; i < d->nrows; i++) {
		if (strcmp(d->rows[i].name, name) == 0)
			return &d->rows[i];
	}
	return NULL;
}

static struct ls_row *add_row(struct ls_data *d, const char *name)
{
	struct ls_row *r = find_row(d, name);

	if (r != NULL)
		return r;
	if (d->nrows == d->cap &&
	    grow_array((void **)&d->rows, &d->cap, sizeof(*d->rows), 16) < 0)
		return NULL;
	r = &d->rows[d->nrows++];
	memset(r, 0, sizeof(*r));
	snprintf(r->name, sizeof(r->name), "%s", name);
	return r;
}

static int by_name(const void *a, const void *b)
{
	return strcmp(((const struct ls_row *)a)->name,
		      ((const struct ls_row *)b)->name);
}

static void fill_usage(struct ls_data *d, struct ls_row *r)
{
	size_t i;

	if (r->m != NULL && r->m->live &&
	    qview_from_daemon(r->m, "quota", &r->q, 1) == WSCTL_OK) {
		r->have_usage = 1;
		return;
	}
	for (i = 0; i < d->nquotas; i++) {
		if (strcmp(d->quotas[i].name, r->name) == 0) {
			qview_from_row(&d->quotas[i], r->m && r->m->live, &r->q);
			r->have_usage = 1;
			return;
		}
	}
}

static int load_quotas(struct registry *reg, struct ls_data *d)
{
	char err[PATH_MAX + 64];
	sqlite3 *db = NULL;
	int rc;

	rc = registry_db(reg, &db, err, sizeof(err));
	if (rc == -ENOENT)
		return 0;
	if (rc == 0)
		rc = qstore_list(db, &d->quotas, &d->nquotas);
	sqlite3_close(db);
	return rc;
}

static int load(struct registry *reg, struct ls_data *d)
{
	struct ls_row *r;
	size_t i;
	int rc;

	rc = registry_list(reg, &d->mounts, &d->nmounts);
	if (rc == 0)
		rc = wsdef_list(reg, &d->defs, &d->ndefs);
	if (rc == 0)
		rc = load_quotas(reg, d);
	for (i = 0; rc == 0 && i < d->ndefs; i++) {
		r = add_row(d, d->defs[i].name);
		if (r == NULL)
			return -ENOMEM;
		r->def = &d->defs[i];
		if (wsdef_mountpoint(reg, r->def, r->mountpoint,
				     sizeof(r->mountpoint)) < 0)
			r->mountpoint[0] = '\0';
	}
	for (i = 0; rc == 0 && i < d->nmounts; i++) {
		r = add_row(d, d->mounts[i].name);
		if (r == NULL)
			return -ENOMEM;
		r->m = &d->mounts[i];
		snprintf(r->mountpoint, sizeof(r->mountpoint), "%s",
			 r->m->mountpoint);
	}
	if (rc == 0 && d->nrows > 1)
		qsort(d->rows, d->nrows, sizeof(*d->rows), by_name);
	for (i = 0; rc == 0 && i < d->nrows; i++)
		fill_usage(d, &d->rows[i]);
	return rc;
}

static void free_data(struct ls_data *d)
{
	free(d->mounts);
	wsdef_free_list(d->defs, d->ndefs);
	free(d->quotas);
	free(d->rows);
}

/* ---- the table ---------------------------------------------------------- */

/* "512", "3.5K", "10G": 1024-based, one decimal below 10. */
static void compact(uint64_t v, int is_size, char *buf, size_t len)
{
	static const char units[] = "KMGTPE";
	double x = (double)v;
	int u = -1;

	if (!is_size || v < 1024) {
		snprintf(buf, len, "%" PRIu64, v);
		return;
	}
	while (x >= 1024 && u < 5) {
		x /= 1024;
		u++;
	}
	snprintf(buf, len, x < 10 ? "%.1f%c" : "%.0f%c", x, units[u]);
}

/* "[###-------]30%:3.0M/10G", or "3.0M/-" without a limit. */
static void usage_cell(const struct ls_row *r, enum quota_kind k, char *buf,
		       size_t len)
{
	uint64_t used = r->q.used[k], limit = qview_hard_limit(&r->q, k);
	char u[16], l[16], bar[BAR_WIDTH + 1];
	int fill, i, pct;

	if (!r->have_usage) {
		snprintf(buf, len, "-");
		return;
	}
	compact(used, k == QUOTA_BYTES, u, sizeof(u));
	if (!quota_limited(limit)) {
		snprintf(buf, len, "%s/-", u);
		return;
	}
	compact(limit, k == QUOTA_BYTES, l, sizeof(l));
	pct = limit == 0 ? (used > 0 ? 100 : 0) :
	      (int)((double)used * 100.0 / (double)limit);
	fill = pct >= 100 ? BAR_WIDTH : pct * BAR_WIDTH / 100;
	for (i = 0; i < BAR_WIDTH; i++)
		bar[i] = i < fill ? '#' : '-';
	bar[BAR_WIDTH] = '\0';
	snprintf(buf, len, "[%s]%d%%:%s/%s", bar, pct, u, l);
}

static int max_int(int a, size_t b)
{
	return (size_t)a > b ? a : (int)b;
}

static void pid_cell(const struct ls_row *r, char *buf, size_t len)
{
	if (r->m == NULL)
		snprintf(buf, len, "-");
	else
		snprintf(buf, len, "%ld", (long)r->m->pid);
}

static void print_table(const struct ls_data *d)
{
	int w[5] = { 4, 10, 3, 5, 5 };
	char pid[24], bytes[CELL_LEN], inodes[CELL_LEN];
	const struct ls_row *r;
	size_t i;

	for (i = 0; i < d->nrows; i++) {
		r = &d->rows[i];
		pid_cell(r, pid, sizeof(pid));
		usage_cell(r, QUOTA_BYTES, bytes, sizeof(bytes));
		usage_cell(r, QUOTA_INODES, inodes, sizeof(inodes));
		w[0] = max_int(w[0], strlen(r->name));
		w[1] = max_int(w[1], strlen(r->mountpoint));
		w[2] = max_int(w[2], strlen(pid));
		w[3] = max_int(w[3], strlen(bytes));
		w[4] = max_int(w[4], strlen(inodes));
	}
	printf("%-*s  %-*s  %-*s  %-7s  %-*s  %s\n", w[0], "NAME", w[1],
	       "MOUNTPOINT", w[2], "PID", "STATE", w[3], "BYTES", "INODES");
	for (i = 0; i < d->nrows; i++) {
		r = &d->rows[i];
		pid_cell(r, pid, sizeof(pid));
		usage_cell(r, QUOTA_BYTES, bytes, sizeof(bytes));
		usage_cell(r, QUOTA_INODES, inodes, sizeof(inodes));
		wsctl_print_cell(stdout, r->name, w[0] + 2);
		wsctl_print_cell(stdout, r->mountpoint, w[1] + 2);
		printf("%-*s  %-7s  %-*s  %s\n", w[2], pid, state_word(r), w[3],
		       bytes, inodes);
	}
}

/* ---- JSON --------------------------------------------------------------- */

static void json_field(const char *key, const char *val)
{
	printf(", \"%s\": ", key);
	if (val != NULL)
		json_write_string(stdout, val);
	else
		fputs("null", stdout);
}

static void json_usage(const struct ls_row *r, const char *key,
		       enum quota_kind k)
{
	uint64_t limit = qview_hard_limit(&r->q, k);

	if (!r->have_usage) {
		printf(", \"%s\": null", key);
		return;
	}
	printf(", \"%s\": {\"used\": %" PRIu64 ", \"limit\": ", key,
	       r->q.used[k]);
	if (quota_limited(limit))
		printf("%" PRIu64 "}", limit);
	else
		fputs("null}", stdout);
}

static void print_json_row(const void *item)
{
	const struct ls_row *r = item;
	const char *upper = r->m != NULL ? r->m->upper :
			    r->def != NULL ? r->def->upper : NULL;

	fputs("  {\"name\": ", stdout);
	json_write_string(stdout, r->name);
	json_field("state", state_word(r));
	printf(", \"declared\": %s", r->def != NULL ? "true" : "false");
	json_field("mountpoint", r->mountpoint);
	json_field("upper", upper);
	if (r->m != NULL) {
		printf(", \"pid\": %ld, \"start_time\": %" PRId64,
		       (long)r->m->pid, r->m->start_time);
		json_field("socket", r->m->socket);
	} else {
		fputs(", \"pid\": null, \"start_time\": null, \"socket\": null",
		      stdout);
	}
	json_usage(r, "bytes", QUOTA_BYTES);
	json_usage(r, "inodes", QUOTA_INODES);
	json_field("usage_from", !r->have_usage ? NULL :
		   r->q.live ? "daemon" : "state.db");
	fputc('}', stdout);
}

int cmd_ls(const struct wsctl *ctx, int argc, char **argv)
{
	struct registry *reg;
	struct ls_data d;
	int json, rc;

	rc = wsctl_parse_args(argc, argv, &json, NULL);
	if (rc != 0)
		return rc < 0 ? WSCTL_OK : rc;
	rc = wsctl_open_registry(ctx, &reg);
	if (rc != 0)
		return rc;
	memset(&d, 0, sizeof(d));
	rc = load(reg, &d);
	registry_close(reg);
	if (rc < 0) {
		free_data(&d);
		return wsctl_registry_err(ctx, rc);
	}
	if (json)
		wsctl_print_json_list(d.rows, d.nrows, sizeof(*d.rows),
				      print_json_row);
	else
		print_table(&d);
	free_data(&d);
	return WSCTL_OK;
}
