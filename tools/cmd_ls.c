/*
** wsctl ls: every workspace in the registry, live or not.
**
** Stale rows are listed rather than hidden: a workspace whose daemon was
** SIGKILLed leaves its row behind, and an operator chasing a vanished mount
** needs to see it.  The STATE column comes from the lock probe, never from
** the pid, which may have been reused by an unrelated process.
*/
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"
#include "wsctl.h"

#define PID_LEN 24

static const char *state_word(const struct ws_mount *m)
{
	return m->live ? "mounted" : "stale";
}

static int max_int(int a, size_t b)
{
	return (size_t)a > b ? a : (int)b;
}

static void print_table(const struct ws_mount *ms, size_t n)
{
	int wname = 4, wmnt = 10, wpid = 3;
	char pid[PID_LEN];
	size_t i;

	for (i = 0; i < n; i++) {
		snprintf(pid, sizeof(pid), "%ld", (long)ms[i].pid);
		wname = max_int(wname, strlen(ms[i].name));
		wmnt = max_int(wmnt, strlen(ms[i].mountpoint));
		wpid = max_int(wpid, strlen(pid));
	}
	printf("%-*s  %-*s  %-*s  %s\n", wname, "NAME", wmnt, "MOUNTPOINT",
	       wpid, "PID", "STATE");
	for (i = 0; i < n; i++) {
		snprintf(pid, sizeof(pid), "%ld", (long)ms[i].pid);
		wsctl_print_cell(stdout, ms[i].name, wname + 2);
		wsctl_print_cell(stdout, ms[i].mountpoint, wmnt + 2);
		printf("%-*s  %s\n", wpid, pid, state_word(&ms[i]));
	}
}

static void print_json_field(const char *key, const char *val)
{
	printf("\"%s\": ", key);
	json_write_string(stdout, val);
}

static void print_json_mount(const void *item)
{
	const struct ws_mount *m = item;

	fputs("  {", stdout);
	print_json_field("name", m->name);
	fputs(", ", stdout);
	print_json_field("mountpoint", m->mountpoint);
	fputs(", ", stdout);
	print_json_field("upper", m->upper);
	printf(", \"pid\": %ld, \"start_time\": %" PRId64 ", ", (long)m->pid,
	       m->start_time);
	print_json_field("socket", m->socket);
	fputs(", ", stdout);
	print_json_field("state", state_word(m));
	fputc('}', stdout);
}

int cmd_ls(const struct wsctl *ctx, int argc, char **argv)
{
	struct registry *reg;
	struct ws_mount *ms;
	size_t n;
	int json, rc;

	rc = wsctl_parse_args(argc, argv, &json, NULL);
	if (rc != 0)
		return rc < 0 ? WSCTL_OK : rc;
	rc = wsctl_open_registry(ctx, &reg);
	if (rc != 0)
		return rc;
	rc = registry_list(reg, &ms, &n);
	registry_close(reg);
	if (rc < 0)
		return wsctl_registry_err(ctx, rc);
	if (json)
		wsctl_print_json_list(ms, n, sizeof(*ms), print_json_mount);
	else
		print_table(ms, n);
	free(ms);
	return WSCTL_OK;
}
