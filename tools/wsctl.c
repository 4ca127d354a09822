/*
** wsctl: the operator's view of the wsfs workspaces on a host.
**
** wsctl links libwsstate (the registry and the control-socket client) and
** libwsquota's parsers and store, never libfuse, so it runs anywhere the
** state directory is reachable.  It learns which workspaces exist from
** state.db, whether each is alive from its lock (see registry.c), and
** anything live from the daemon itself over the control socket.
**
** Subcommands follow git's builtin pattern: one function per command in its
** own file, dispatched from the table below.  Exit status is 0 on success,
** 1 for a runtime failure and 2 for a bad command line, and every error is
** a single stderr line starting "wsctl: " so scripts can rely on both.
*/
#include "wsctl.h"
#include "audit_cmds.h"
#include "wsdef.h"
#include "wsdef_args.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GLOBAL_USAGE "wsctl [--state DIR] COMMAND [ARGS]"

static const struct wsctl_cmd commands[] = {
	{ "create", cmd_create, WSDEF_ARGS_SYNOPSIS("NAME"),
	  "declare a workspace", wsdef_args_details },
	{ "set", cmd_set, WSDEF_ARGS_SYNOPSIS("NAME")
	  " [--no-layers] [--no-options]",
	  "change a declared workspace (quota at once, the rest at next mount)",
	  wsdef_args_details },
	{ "edit", cmd_edit, "NAME",
	  "change a declared workspace in $VISUAL or $EDITOR",
	  wsctl_edit_details },
	{ "apply", cmd_apply, "-f FILE [--dry-run]",
	  "declare or update the workspaces described in FILE",
	  wsctl_apply_details },
	{ "mount", cmd_mount, "NAME [MOUNTPOINT] [--foreground]",
	  "mount a declared workspace; returns once the mount is live",
	  wsctl_mount_details },
	{ "umount", cmd_umount, "NAME [--force]",
	  "unmount a workspace and wait for its daemon to finish",
	  wsctl_umount_details },
	{ "rm", cmd_rm, "NAME [--purge [--yes]]",
	  "forget a declared workspace (--purge: and delete its upper)",
	  wsctl_rm_details },
	{ "ls", cmd_ls, "[--json]", "list the workspaces, declared or mounted",
	  NULL },
	{ "top", cmd_top, "[--interval SECONDS] [--iterations N]",
	  "watch the mounted workspaces' usage and activity live", NULL },
	{ "status", cmd_status, "NAME [--json]",
	  "show a running workspace's mount and counters", NULL },
	{ "quota", cmd_quota, "set|show|ls ...",
	  "show or change workspace quotas", wsctl_quota_details },
	{ "locks", cmd_locks, "[NAME] [--json]",
	  "list the advisory locks held and awaited in running workspaces",
	  NULL },
	{ "audit", cmd_audit, "search|report|export|verify|head|key [OPTIONS]",
	  "search, summarize, export and verify the audit log",
	  wsctl_audit_details },
	{ "help", cmd_help, "[COMMAND]",
	  "show this help or a command's usage", NULL },
};

#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

const struct wsctl_cmd *wsctl_find_cmd(const char *name)
{
	size_t i;

	for (i = 0; i < N_COMMANDS; i++) {
		if (strcmp(commands[i].name, name) == 0)
			return &commands[i];
	}
	return NULL;
}

/* The "wsctl: MESSAGE" every error line starts with. */
static void __attribute__((format(printf, 1, 0)))
report(const char *fmt, va_list ap)
{
	fputs("wsctl: ", stderr);
	vfprintf(stderr, fmt, ap);
}

void wsctl_err(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	report(fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

int wsctl_usage_err(const char *cmd, const char *fmt, ...)
{
	const struct wsctl_cmd *c = cmd ? wsctl_find_cmd(cmd) : NULL;
	va_list ap;

	va_start(ap, fmt);
	report(fmt, ap);
	va_end(ap);
	if (c != NULL)
		fprintf(stderr, "; usage: wsctl [--state DIR] %s %s\n", c->name,
			c->args);
	else
		fputs("; usage: " GLOBAL_USAGE "\n", stderr);
	return WSCTL_USAGE;
}

int wsctl_synopsis_err(const char *synopsis, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	report(fmt, ap);
	va_end(ap);
	fprintf(stderr, "; usage: wsctl [--state DIR] %s\n", synopsis);
	return WSCTL_USAGE;
}

static void print_help(FILE *out)
{
	size_t i;

	fputs("usage: " GLOBAL_USAGE "\n\n"
	      "Declare, mount, watch and audit the wsfs workspaces of a state "
	      "directory.\n\n"
	      "Commands:\n", out);
	for (i = 0; i < N_COMMANDS; i++)
		fprintf(out, "  %-8s %s\n", commands[i].name,
			commands[i].summary);
	fputs("\nRun 'wsctl help COMMAND' for a command's arguments.\n"
	      "\nOptions:\n"
	      "  --state DIR            state directory (default:\n"
	      "                         $WSFS_STATE, else /var/lib/wsfs)\n"
	      "  -h, --help             show this help\n"
	      "  -V, --version          show the version\n", out);
}

static void print_cmd_help(FILE *out, const struct wsctl_cmd *c);

void wsctl_print_help_of(const char *cmd)
{
	print_cmd_help(stdout, wsctl_find_cmd(cmd));
}

static void print_cmd_help(FILE *out, const struct wsctl_cmd *c)
{
	if (c == NULL) {
		print_help(out);
		return;
	}
	fprintf(out, "usage: wsctl [--state DIR] %s %s\n\n%c%s.\n", c->name,
		c->args, toupper((unsigned char)c->summary[0]), c->summary + 1);
	if (c->details != NULL)
		fprintf(out, "\n%s", c->details);
}

int cmd_help(const struct wsctl *ctx, int argc, char **argv)
{
	const struct wsctl_cmd *c;

	if (argc > 2)
		return wsctl_usage_err("help", "too many arguments");
	if (argc < 2) {
		print_help(stdout);
		return WSCTL_OK;
	}
	if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
		print_cmd_help(stdout, wsctl_find_cmd("help"));
		return WSCTL_OK;
	}
	c = wsctl_find_cmd(argv[1]);
	if (c == NULL)
		return wsctl_usage_err(NULL, "unknown command '%s'", argv[1]);
	print_cmd_help(stdout, c);
	return WSCTL_OK;
}

static int parse_option(char **argv, const char *arg, int *json)
{
	if (json != NULL && strcmp(arg, "--json") == 0) {
		*json = 1;
		return 0;
	}
	if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
		print_cmd_help(stdout, wsctl_find_cmd(argv[0]));
		return -1;
	}
	return wsctl_usage_err(argv[0], "unknown option '%s'", arg);
}

static const struct wsctl_flag *find_flag(const struct wsctl_flag *flags,
					  const char *arg)
{
	for (; flags != NULL && flags->name != NULL; flags++) {
		if (strcmp(arg, flags->name) == 0 ||
		    (flags->alias != NULL && strcmp(arg, flags->alias) == 0))
			return flags;
	}
	return NULL;
}

int wsctl_parse_flags(int argc, char **argv, const struct wsctl_flag *flags,
		      const char **pos, int min, int max)
{
	const struct wsctl_flag *f;
	int i, npos = 0, opts_done = 0;

	for (i = 1; i < argc; i++) {
		if (!opts_done && strcmp(argv[i], "--") == 0) {
			opts_done = 1;
		} else if (!opts_done && (strcmp(argv[i], "-h") == 0 ||
					  strcmp(argv[i], "--help") == 0)) {
			wsctl_print_help_of(argv[0]);
			return -1;
		} else if (!opts_done && argv[i][0] == '-' && argv[i][1]) {
			f = find_flag(flags, argv[i]);
			if (f == NULL)
				return wsctl_usage_err(argv[0], "unknown option "
						       "'%s'", argv[i]);
			*f->set = 1;
		} else if (npos < max) {
			pos[npos++] = argv[i];
		} else {
			return wsctl_usage_err(argv[0], "unexpected argument "
					       "'%s'", argv[i]);
		}
	}
	if (npos < min)
		return wsctl_usage_err(argv[0], "missing workspace name");
	return 0;
}

int wsctl_parse_args(int argc, char **argv, int *json, const char **name)
{
	int i, npos = 0, opts_done = 0, rc;

	if (json != NULL)
		*json = 0;
	for (i = 1; i < argc; i++) {
		if (!opts_done && strcmp(argv[i], "--") == 0) {
			opts_done = 1;
			continue;
		}
		if (!opts_done && argv[i][0] == '-' && argv[i][1] != '\0') {
			rc = parse_option(argv, argv[i], json);
			if (rc != 0)
				return rc;
			continue;
		}
		if (name == NULL || npos > 0)
			return wsctl_usage_err(argv[0], "unexpected argument "
					       "'%s'", argv[i]);
		*name = argv[i];
		npos++;
	}
	if (name != NULL && npos == 0)
		return wsctl_usage_err(argv[0], "missing workspace name");
	return 0;
}

int wsctl_not_mounted(const struct wsctl *ctx, const char *name)
{
	struct registry *reg;
	struct ws_def d;
	char err[PATH_MAX + 128];
	int declared = 0;

	if (registry_open(ctx->state_dir, 0, &reg, err, sizeof(err)) == 0) {
		declared = wsdef_get(reg, name, &d) == 0;
		if (declared)
			wsdef_free(&d);
		registry_close(reg);
	}
	if (declared) {
		wsctl_err("workspace '%s' is not mounted", name);
		return WSCTL_NOTMOUNTED;
	}
	wsctl_err("no workspace named '%s' in %s", name, ctx->state_dir);
	return WSCTL_NOENT;
}

int wsctl_open_registry_rw(const struct wsctl *ctx, struct registry **reg)
{
	char err[PATH_MAX + 128];

	if (registry_open(ctx->state_dir, 1, reg, err, sizeof(err)) < 0) {
		wsctl_err("%s", err);
		return WSCTL_ERR;
	}
	return 0;
}

int wsctl_open_registry(const struct wsctl *ctx, struct registry **reg)
{
	char err[PATH_MAX + 128];

	if (registry_open(ctx->state_dir, 0, reg, err, sizeof(err)) < 0) {
		wsctl_err("%s", err);
		return WSCTL_ERR;
	}
	return 0;
}

int wsctl_registry_err(const struct wsctl *ctx, int err)
{
	wsctl_err("cannot read the registry in %s: %s", ctx->state_dir,
		  strerror(-err));
	return WSCTL_ERR;
}

int wsctl_parse_u64(const char *s, uint64_t *out)
{
	char *end;

	if (*s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	*out = strtoull(s, &end, 10);
	return errno == 0 && *end == '\0' ? 0 : -EINVAL;
}

void wsctl_print_json_list(const void *items, size_t n, size_t size,
			   void (*print_item)(const void *item))
{
	size_t i;

	if (n == 0) {
		puts("[]");
		return;
	}
	puts("[");
	for (i = 0; i < n; i++) {
		print_item((const char *)items + i * size);
		puts(i + 1 < n ? "," : "");
	}
	puts("]");
}

void wsctl_print_cell(FILE *out, const char *s, int width)
{
	int n = 0;

	for (; *s != '\0'; s++, n++)
		fputc((unsigned char)*s < 0x20 || *s == 0x7f ? '?' : *s, out);
	for (; n < width; n++)
		fputc(' ', out);
}

/*
** Strips the global options.  Returns -1 to continue with the command at
** argv[*next], or an exit status.
*/
static int parse_global(int argc, char **argv, const char **state, int *next)
{
	const char *arg;
	int i;

	for (i = 1; i < argc && argv[i][0] == '-'; i++) {
		arg = argv[i];
		if (strcmp(arg, "--") == 0) {
			i++;
			break;
		} else if (strcmp(arg, "--state") == 0) {
			if (i + 1 >= argc)
				return wsctl_usage_err(NULL, "option '--state' "
						       "needs a directory");
			*state = argv[++i];
		} else if (strncmp(arg, "--state=", 8) == 0) {
			*state = arg + 8;
		} else if (strcmp(arg, "-h") == 0 ||
			   strcmp(arg, "--help") == 0) {
			print_help(stdout);
			return WSCTL_OK;
		} else if (strcmp(arg, "-V") == 0 ||
			   strcmp(arg, "--version") == 0) {
			puts("wsctl " WSFS_VERSION);
			return WSCTL_OK;
		} else {
			return wsctl_usage_err(NULL, "unknown option '%s'",
					       arg);
		}
		if (**state == '\0')
			return wsctl_usage_err(NULL, "empty state directory");
	}
	*next = i;
	return -1;
}

/* Output goes through stdio; a full disk or closed pipe must not turn into
** a silent exit 0. */
static int finish_output(int rc)
{
	if (fflush(stdout) != 0 || ferror(stdout)) {
		wsctl_err("error writing output: %s", strerror(errno));
		return WSCTL_ERR;
	}
	return rc;
}

int main(int argc, char **argv)
{
	const struct wsctl_cmd *cmd;
	const char *state = NULL;
	struct wsctl ctx;
	int next = 0, rc;

	rc = parse_global(argc, argv, &state, &next);
	if (rc >= 0)
		return finish_output(rc);
	if (next >= argc)
		return wsctl_usage_err(NULL, "no command given");
	cmd = wsctl_find_cmd(argv[next]);
	if (cmd == NULL)
		return wsctl_usage_err(NULL, "unknown command '%s'",
				       argv[next]);
	ctx.state_dir = registry_default_dir(state);
	return finish_output(cmd->run(&ctx, argc - next, argv + next));
}
