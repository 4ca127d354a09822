/*
** wsctl create NAME ... and wsctl set NAME ...: declare a workspace, or
** change a declared one, from the command line.
**
** Both build the wanted definition (wsdef_args.c) and hand it to
** wsdef_converge(), the same end `edit` and `apply` reach, so every way of
** changing a definition checks, prints and records alike.
*/
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "wsctl.h"
#include "wsdef_args.h"
#include "wsdef_change.h"

static int define(const struct wsctl *ctx, const char *cmd, int argc,
		  char **argv)
{
	struct registry *reg = NULL;
	struct wsdef_args a;
	struct ws_def want;
	char err[256];
	int rc, is_set = strcmp(cmd, "set") == 0;

	rc = wsdef_args_parse(cmd, argc, argv, &a);
	if (rc < 0) {
		wsctl_print_help_of(cmd);
		return WSCTL_OK;
	}
	if (rc != 0)
		return rc;
	if (!wsdef_name_ok(a.name, err, sizeof(err))) {
		wsdef_args_free(&a);
		wsctl_err("%s", err);
		return WSCTL_USAGE;
	}
	if (is_set && a.nothing_given) {
		wsdef_args_free(&a);
		return wsctl_usage_err(cmd, "nothing to change");
	}
	rc = wsctl_open_registry_rw(ctx, &reg);
	if (rc != 0) {
		wsdef_args_free(&a);
		return rc;
	}
	wsdef_init(&want, a.name);
	if (is_set) {
		rc = wsdef_get(reg, a.name, &want);
		if (rc == -ENOENT) {
			wsctl_err("no workspace named '%s'", a.name);
			rc = WSCTL_NOENT;
		} else if (rc < 0) {
			wsctl_err("cannot read workspace '%s': %s", a.name,
				  strerror(-rc));
			rc = WSCTL_ERR;
		}
	}
	if (rc == 0)
		rc = wsdef_args_apply(&a, &want);
	if (rc == 0)
		rc = wsdef_converge(ctx, reg, &want, is_set ?
				    WSDEF_UPDATE_ONLY : WSDEF_CREATE_ONLY,
				    stdout);
	wsdef_free(&want);
	wsdef_args_free(&a);
	registry_close(reg);
	return rc;
}

int cmd_create(const struct wsctl *ctx, int argc, char **argv)
{
	return define(ctx, "create", argc, argv);
}

int cmd_set(const struct wsctl *ctx, int argc, char **argv)
{
	return define(ctx, "set", argc, argv);
}
