/*
** Rendering quota views: `quota show` lines, the `quota ls` table, and JSON.
**
** Printers work from struct qview alone, so a stopped workspace and a
** running one read alike.  The source shows only where it matters: whether
** a daemon runs, and a daemon that did not answer `ls` (STATE "mounted*",
** JSON "source": "state.db"), because its stored figures lag its own.  Sizes
** use qparse's 1024-based units, the ones `quota set` takes, and "none" for
** no limit, so what is shown reads the way it is typed.
**
** JSON says "no limit" as null rather than QUOTA_NONE, which as a number
** would read as a real, huge limit; and it carries raw counts and epoch
** seconds, leaving units and time zones to the consumer.  Workspace names
** go through wsctl_print_cell in human output, because a name is chosen by
** whoever mounted the workspace, not by the operator reading the table.
*/
#include "quota_print.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "qparse.h"
#include "util.h"
#include "wsctl.h"

#define BAR_SHOW 20
#define BAR_LS 10
#define LABEL_W 16

/* ---- values ------------------------------------------------------------- */

/* A limit of 0 (nothing may grow) counts as full. */
static double percent(uint64_t used, uint64_t limit)
{
	if (limit == 0)
		return 100.0;
	return 100.0 * (double)used / (double)limit;
}

static void format_bar(double pct, int width, char *buf, size_t len)
{
	int fill, i;

	fill = pct >= 100.0 ? width : (int)(pct * width / 100.0);
	if ((size_t)width + 3 > len) {
		buf[0] = '\0';
		return;
	}
	buf[0] = '[';
	for (i = 0; i < width; i++)
		buf[i + 1] = i < fill ? '#' : '-';
	buf[width + 1] = ']';
	buf[width + 2] = '\0';
}

static void format_amount(enum quota_kind k, uint64_t v, char *buf, size_t len)
{
	if (k == QUOTA_BYTES)
		qformat_size(v, buf, len);
	else
		qformat_value(v, buf, len);
}

static void format_time(int64_t t, char *buf, size_t len)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (localtime_r(&tt, &tm) == NULL ||
	    strftime(buf, len, "%Y-%m-%d %H:%M:%S", &tm) == 0)
		snprintf(buf, len, "%" PRId64, t);
}

/* The largest unit that divides S exactly, so the text is valid --grace. */
static void format_duration(uint64_t s, char *buf, size_t len)
{
	static const struct { uint64_t secs; char unit; } units[] = {
		{ 7 * 86400, 'w' }, { 86400, 'd' }, { 3600, 'h' }, { 60, 'm' },
	};
	size_t i;

	for (i = 0; s != 0 && i < sizeof(units) / sizeof(units[0]); i++) {
		if (s % units[i].secs == 0) {
			snprintf(buf, len, "%llu%c",
				 (unsigned long long)(s / units[i].secs),
				 units[i].unit);
			return;
		}
	}
	snprintf(buf, len, "%llus", (unsigned long long)s);
}

/* When the grace period that began at SINCE ends; INT64_MAX if never
** representable (a row is not trusted to hold sane numbers). */
static int64_t grace_end(int64_t since, uint64_t grace)
{
	if (since < 0 || grace > (uint64_t)(INT64_MAX - since))
		return INT64_MAX;
	return since + (int64_t)grace;
}

/* ---- quota show, for people --------------------------------------------- */

static void label(const char *text)
{
	printf("%-*s", LABEL_W, text);
}

static void print_usage_line(const struct qview *v, enum quota_kind k)
{
	char used[32], limit[32], bar[BAR_SHOW + 3];
	uint64_t hard = qview_hard_limit(v, k);
	double pct;

	label(k == QUOTA_BYTES ? "bytes:" : "inodes:");
	format_amount(k, v->used[k], used, sizeof(used));
	if (!quota_limited(hard)) {
		printf("%s, no limit\n", used);
		return;
	}
	format_amount(k, hard, limit, sizeof(limit));
	pct = percent(v->used[k], hard);
	format_bar(pct, BAR_SHOW, bar, sizeof(bar));
	printf("%s of %s %s %.1f%%\n", used, limit, bar, pct);
}

static void print_soft_line(const struct qview *v, enum quota_kind k)
{
	char buf[32];

	label(k == QUOTA_BYTES ? "soft bytes:" : "soft inodes:");
	format_amount(k, qview_soft_limit(v, k), buf, sizeof(buf));
	puts(quota_limited(qview_soft_limit(v, k)) ? buf : "none");
}

static void print_grace_state(const struct qview *v, enum quota_kind k)
{
	char since[32], until[32];
	int64_t end;

	if (v->grace_pending[k]) {
		label(k == QUOTA_BYTES ? "bytes grace:" : "inodes grace:");
		puts("over the soft limit; the grace period starts at the next "
		     "mount");
		return;
	}
	if (v->soft_since[k] == 0)
		return;
	end = grace_end(v->soft_since[k], v->lim.grace_s);
	format_time(v->soft_since[k], since, sizeof(since));
	label(k == QUOTA_BYTES ? "bytes grace:" : "inodes grace:");
	printf("over the soft limit since %s; ", since);
	if (end <= v->now) {
		puts("grace expired: soft limit now enforced");
		return;
	}
	format_time(end, until, sizeof(until));
	printf("grace ends %s\n", until);
}

static void print_warn_state(const struct qview *v, enum quota_kind k)
{
	char when[32];

	if (v->warn_level[k] == 0)
		return;
	label(k == QUOTA_BYTES ? "bytes warning:" : "inodes warning:");
	printf("%s at or above %u%%", k == QUOTA_BYTES ? "bytes" : "inodes",
	       v->warn_level[k]);
	if (v->warned_at[k] != 0) {
		format_time(v->warned_at[k], when, sizeof(when));
		printf(" since %s", when);
	}
	putchar('\n');
}

static void print_warn_list(const struct quota_limits *l)
{
	unsigned int i;

	label("warnings at:");
	if (l->nwarn == 0)
		fputs("none", stdout);
	for (i = 0; i < l->nwarn; i++)
		printf("%s%u%%", i ? ", " : "", l->warn[i]);
	putchar('\n');
}

static void print_human(const struct qview *v)
{
	char grace[32];
	enum quota_kind k;

	label("workspace:");
	wsctl_print_cell(stdout, v->name, 0);
	printf(" (%s)\n", v->mounted ? "mounted" : "not mounted");
	print_usage_line(v, QUOTA_BYTES);
	print_usage_line(v, QUOTA_INODES);
	print_soft_line(v, QUOTA_BYTES);
	print_soft_line(v, QUOTA_INODES);
	format_duration(v->lim.grace_s, grace, sizeof(grace));
	label("grace period:");
	puts(grace);
	print_warn_list(&v->lim);
	for (k = QUOTA_BYTES; k <= QUOTA_INODES; k++) {
		print_grace_state(v, k);
		print_warn_state(v, k);
	}
}

/* ---- JSON --------------------------------------------------------------- */

static void json_limit(const char *key, uint64_t v)
{
	if (quota_limited(v))
		printf("\"%s\": %llu", key, (unsigned long long)v);
	else
		printf("\"%s\": null", key);
}

static void json_kind(const struct qview *v, enum quota_kind k)
{
	uint64_t hard = qview_hard_limit(v, k);

	printf("\"%s\": {\"used\": %llu, ", k == QUOTA_BYTES ? "bytes" : "inodes",
	       (unsigned long long)v->used[k]);
	json_limit("limit", hard);
	fputs(", ", stdout);
	json_limit("soft", qview_soft_limit(v, k));
	if (v->soft_since[k] != 0)
		printf(", \"soft_since\": %" PRId64, v->soft_since[k]);
	else
		fputs(", \"soft_since\": null", stdout);
	if (quota_limited(hard))
		printf(", \"percent\": %.1f", percent(v->used[k], hard));
	else
		fputs(", \"percent\": null", stdout);
	printf(", \"warn_level\": %u, ", v->warn_level[k]);
	if (v->warned_at[k] != 0)
		printf("\"warned_at\": %" PRId64 "}", v->warned_at[k]);
	else
		fputs("\"warned_at\": null}", stdout);
}

static void print_json(const struct qview *v, const char *indent)
{
	unsigned int i;

	printf("%s{\"name\": ", indent);
	json_write_string(stdout, v->name);
	printf(", \"mounted\": %s, \"source\": \"%s\",\n%s ", v->mounted ?
	       "true" : "false", v->live ? "daemon" : "state.db", indent);
	json_kind(v, QUOTA_BYTES);
	printf(",\n%s ", indent);
	json_kind(v, QUOTA_INODES);
	printf(",\n%s \"grace_s\": %llu, \"warn\": [", indent,
	       (unsigned long long)v->lim.grace_s);
	for (i = 0; i < v->lim.nwarn; i++)
		printf("%s%u", i ? ", " : "", v->lim.warn[i]);
	fputs("]}", stdout);
}

/* An element of the `quota ls --json` array. */
static void print_json_item(const void *item)
{
	print_json(item, "  ");
}

void qview_print(const struct qview *v, int json)
{
	if (!json) {
		print_human(v);
		return;
	}
	print_json(v, "");
	putchar('\n');
}

/* ---- the quota ls table ------------------------------------------------- */

struct ls_cells {
	char bytes[80];
	char bbar[BAR_LS + 16];
	char inodes[64];
	char ipct[16];
};

static const char *ls_state(const struct qview *v)
{
	if (!v->mounted)
		return "stopped";
	return v->live ? "mounted" : "mounted*";
}

static void usage_cells(const struct qview *v, enum quota_kind k, char *amount,
			size_t alen, char *bar, size_t blen)
{
	char used[32], limit[32], b[BAR_LS + 3];
	uint64_t hard = qview_hard_limit(v, k);
	double pct;

	format_amount(k, v->used[k], used, sizeof(used));
	format_amount(k, hard, limit, sizeof(limit));
	snprintf(amount, alen, "%s/%s", used, limit);
	bar[0] = '\0';
	if (!quota_limited(hard))
		return;
	pct = percent(v->used[k], hard);
	format_bar(pct, BAR_LS, b, sizeof(b));
	if (k == QUOTA_BYTES)
		snprintf(bar, blen, "%s %5.1f%%", b, pct);
	else
		snprintf(bar, blen, "%5.1f%%", pct);
}

static void widen(int *w, const char *s)
{
	if ((int)strlen(s) > *w)
		*w = (int)strlen(s);
}

static void print_ls_row(const struct qview *v, const struct ls_cells *c,
			 int wname, int wb, int wbar, int wi)
{
	wsctl_print_cell(stdout, v->name, wname + 2);
	printf("%-8s  %-*s  %-*s  ", ls_state(v), wb, c->bytes, wbar, c->bbar);
	if (c->ipct[0] != '\0')
		printf("%-*s  %s\n", wi, c->inodes, c->ipct);
	else
		printf("%s\n", c->inodes);
}

static void print_ls_table(const struct qview *v, struct ls_cells *c,
			   size_t n)
{
	int wname = 4, wb = 5, wbar = 0, wi = 6, marked = 0;
	size_t i;

	for (i = 0; i < n; i++) {
		usage_cells(&v[i], QUOTA_BYTES, c[i].bytes, sizeof(c[i].bytes),
			    c[i].bbar, sizeof(c[i].bbar));
		usage_cells(&v[i], QUOTA_INODES, c[i].inodes, sizeof(c[i].inodes),
			    c[i].ipct, sizeof(c[i].ipct));
		widen(&wname, v[i].name);
		widen(&wb, c[i].bytes);
		widen(&wbar, c[i].bbar);
		widen(&wi, c[i].inodes);
		marked |= v[i].mounted && !v[i].live;
	}
	printf("%-*s  %-8s  %-*s  %s\n", wname, "NAME", "STATE",
	       wb + 2 + wbar, "BYTES", "INODES");
	for (i = 0; i < n; i++)
		print_ls_row(&v[i], &c[i], wname, wb, wbar, wi);
	if (marked)
		puts("* the daemon did not answer; stored figures shown");
}

int qview_print_list(const struct qview *v, size_t n, int json)
{
	struct ls_cells *cells;

	if (json) {
		wsctl_print_json_list(v, n, sizeof(*v), print_json_item);
		return WSCTL_OK;
	}
	cells = calloc(n ? n : 1, sizeof(*cells));
	if (cells == NULL) {
		wsctl_err("out of memory");
		return WSCTL_ERR;
	}
	print_ls_table(v, cells, n);
	free(cells);
	return WSCTL_OK;
}
