/*
** wsctl locks: the advisory locks held and awaited through each mounted
** workspace.
**
** Each daemon answers "locks" on its control socket with one line per lock
** (lock_table.c): state, kind, type, range, pid, since, and the process
** name and path hex-encoded, since both may hold spaces or newlines. wsctl
** asks every live workspace (or the one named), and prints one table or
** one JSON array for all of them. A workspace whose daemon does not answer
** is reported on stderr and the others are still shown.
*/
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ctl_proto.h"
#include "grow.h"
#include "util.h"
#include "wsctl.h"

struct lock_row {
	const char *ws;
	char state[16], kind[8], type[16];
	int64_t start, end;	/* end -1: to end of file */
	long pid;
	int64_t since_ns;
	char comm[64];
	char path[PATH_MAX];
};

static int unhex(const char *s, char *out, size_t len)
{
	size_t n = 0;

	if (strcmp(s, "-") == 0) {
		out[0] = '\0';
		return 0;
	}
	for (; s[0] && s[1]; s += 2) {
		unsigned int byte;

		if (n + 1 >= len || sscanf(s, "%2x", &byte) != 1)
			return -EINVAL;
		out[n++] = (char)byte;
	}
	out[n] = '\0';
	return *s ? -EINVAL : 0;
}

static int parse_line(const char *line, const char *ws, struct lock_row *r)
{
	char end[24], comm[160], path[2 * PATH_MAX + 2];
	int used = 0;

	memset(r, 0, sizeof(*r));
	r->ws = ws;
	if (sscanf(line, "lock %15s %7s %15s %" SCNd64 " %23s %ld %" SCNd64
		   " %159s %8191s%n", r->state, r->kind, r->type, &r->start,
		   end, &r->pid, &r->since_ns, comm, path, &used) != 9 ||
	    line[used] != '\0')
		return -EINVAL;
	if (strcmp(end, "eof") == 0)
		r->end = -1;
	else if (sscanf(end, "%" SCNd64, &r->end) != 1)
		return -EINVAL;
	if (unhex(comm, r->comm, sizeof(r->comm)) < 0 ||
	    unhex(path, r->path, sizeof(r->path)) < 0)
		return -EINVAL;
	return 0;
}

struct rows {
	struct lock_row *v;
	size_t n, cap;
};

/* Adds the locks in one daemon's reply TEXT. */
static int add_reply(struct rows *rows, const char *ws, char *text)
{
	char *line, *save = NULL;
	int first = 1;

	for (line = strtok_r(text, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		if (first) {
			first = 0;
			if (strncmp(line, "error ", 6) == 0) {
				wsctl_err("workspace '%s': %s", ws, line + 6);
				return -EIO;
			}
			if (strcmp(line, "ok") != 0)
				return -EINVAL;
			continue;
		}
		if (rows->n == rows->cap &&
		    grow_array((void **)&rows->v, &rows->cap, sizeof(*rows->v),
			       16) < 0)
			return -ENOMEM;
		if (parse_line(line, ws, &rows->v[rows->n]) < 0)
			return -EINVAL;
		rows->n++;
	}
	return first ? -EINVAL : 0;
}

static int by_place(const void *a, const void *b)
{
	const struct lock_row *x = a, *y = b;
	int c = strcmp(x->ws, y->ws);

	if (!c)
		c = strcmp(x->path, y->path);
	if (!c)
		c = strcmp(x->state, y->state);	/* held before waiting */
	if (!c)
		c = x->start < y->start ? -1 : x->start > y->start;
	if (!c)
		c = x->since_ns < y->since_ns ? -1 : x->since_ns > y->since_ns;
	return c;
}

static void format_range(const struct lock_row *r, char *buf, size_t len)
{
	if (r->end < 0)
		snprintf(buf, len, "%" PRId64 "-EOF", r->start);
	else
		snprintf(buf, len, "%" PRId64 "-%" PRId64, r->start, r->end);
}

static void format_since(int64_t ns, char *buf, size_t len)
{
	time_t t = (time_t)(ns / 1000000000);
	struct tm tm;

	if (!localtime_r(&t, &tm) ||
	    strftime(buf, len, "%Y-%m-%d %H:%M:%S", &tm) == 0)
		snprintf(buf, len, "?");
}

static int width(int w, const char *s)
{
	int n = (int)strlen(s);

	return n > w ? n : w;
}

static void print_table(const struct rows *rows)
{
	int ww = 9, wp = 4, wt = 4, wr = 5, wc = 7;
	char range[48], since[32], pid[24];

	for (size_t i = 0; i < rows->n; i++) {
		const struct lock_row *r = &rows->v[i];

		format_range(r, range, sizeof(range));
		ww = width(ww, r->ws);
		wp = width(wp, r->path);
		wt = width(wt, r->type);
		wr = width(wr, range);
		wc = width(wc, r->comm);
	}
	printf("%-*s  %-*s  %-5s  %-*s  %-*s  %-7s  %-*s  %-19s  %s\n", ww,
	       "WORKSPACE", wp, "PATH", "KIND", wt, "TYPE", wr, "RANGE", "PID",
	       wc, "COMMAND", "SINCE", "STATE");
	for (size_t i = 0; i < rows->n; i++) {
		const struct lock_row *r = &rows->v[i];

		format_range(r, range, sizeof(range));
		format_since(r->since_ns, since, sizeof(since));
		snprintf(pid, sizeof(pid), "%ld", r->pid);
		wsctl_print_cell(stdout, r->ws, ww + 2);
		wsctl_print_cell(stdout, r->path, wp + 2);
		printf("%-5s  %-*s  %-*s  %-7s  ", r->kind, wt, r->type, wr,
		       range, pid);
		wsctl_print_cell(stdout, r->comm, wc + 2);
		printf("%-19s  %s\n", since, r->state);
	}
}

static void print_json_row(const void *item)
{
	const struct lock_row *r = item;

	fputs("  {\"workspace\": ", stdout);
	json_write_string(stdout, r->ws);
	fputs(", \"path\": ", stdout);
	json_write_string(stdout, r->path);
	printf(", \"state\": \"%s\", \"kind\": \"%s\", \"type\": \"%s\", "
	       "\"start\": %" PRId64 ", \"end\": ", r->state, r->kind, r->type,
	       r->start);
	if (r->end < 0)
		fputs("null", stdout);
	else
		printf("%" PRId64, r->end);
	printf(", \"pid\": %ld, \"command\": ", r->pid);
	json_write_string(stdout, r->comm);
	printf(", \"since_ns\": %" PRId64 "}", r->since_ns);
}

/* Asks one workspace; the text must outlive ROWS (rows point into WS). */
static int ask(const struct ws_mount *m, struct rows *rows)
{
	char err[PATH_MAX + 128];
	char *text;
	int rc;

	if (ctl_request(m->socket, "locks", &text, err, sizeof(err)) < 0) {
		wsctl_err("workspace '%s': %s", m->name, err);
		return -EIO;
	}
	rc = add_reply(rows, m->name, text);
	if (rc == -EINVAL)
		wsctl_err("workspace '%s': malformed reply from %s", m->name,
			  m->socket);
	else if (rc == -ENOMEM)
		wsctl_err("out of memory");
	free(text);
	return rc;
}

/* NAME is optional: parsed here, since wsctl_parse_args wants it or not. */
static int parse(int argc, char **argv, int *json, const char **name)
{
	int positional = 0;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0) {
			positional += argc - i - 1;
			break;
		}
		if (argv[i][0] != '-' || argv[i][1] == '\0')
			positional++;
	}
	*name = NULL;
	return wsctl_parse_args(argc, argv, json, positional ? name : NULL);
}

int cmd_locks(const struct wsctl *ctx, int argc, char **argv)
{
	struct rows rows = { NULL, 0, 0 };
	const char *name;
	struct registry *reg;
	struct ws_mount *ms;
	size_t n, asked = 0;
	int json, rc, failed = 0;

	rc = parse(argc, argv, &json, &name);
	if (rc != 0)
		return rc < 0 ? WSCTL_OK : rc;
	if (name && !ws_name_valid(name))
		return wsctl_usage_err("locks", "invalid workspace name '%s'",
				       name);
	rc = wsctl_open_registry(ctx, &reg);
	if (rc != 0)
		return rc;
	rc = registry_list(reg, &ms, &n);
	registry_close(reg);
	if (rc < 0)
		return wsctl_registry_err(ctx, rc);
	for (size_t i = 0; i < n; i++) {
		if (name && strcmp(name, ms[i].name) != 0)
			continue;
		asked++;
		if (!ms[i].live) {
			if (name) {
				wsctl_err("workspace '%s' is not running (its "
					  "daemon, pid %ld, is gone)", name,
					  (long)ms[i].pid);
				failed = WSCTL_NOTMOUNTED;
			}
			continue;
		}
		if (ask(&ms[i], &rows) < 0)
			failed = WSCTL_ERR;
	}
	if (name && asked == 0)
		failed = wsctl_not_mounted(ctx, name);
	if (rows.n > 1)
		qsort(rows.v, rows.n, sizeof(*rows.v), by_place);
	if (json)
		wsctl_print_json_list(rows.v, rows.n, sizeof(*rows.v),
				      print_json_row);
	else if (!failed || rows.n)
		print_table(&rows);
	free(rows.v);
	free(ms);
	return failed;	/* a WSCTL_* status */
}
