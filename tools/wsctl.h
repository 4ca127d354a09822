/*
** Internals shared by wsctl's subcommands.
**
** Each subcommand lives in its own cmd_<name>.c and is listed in the table in
** wsctl.c; main() strips the global options and hands the command its own
** argv, with argv[0] being the command word.  Commands return an exit status
** directly, so the whole program has exactly three outcomes.
*/
#ifndef WSFS_WSCTL_H
#define WSFS_WSCTL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "registry.h"

/* Exit statuses; wsctl(8), EXIT STATUS, documents each. */
#define WSCTL_OK	0	/* success */
#define WSCTL_ERR	1	/* runtime error: I/O, state.db, permissions */
#define WSCTL_USAGE	2	/* the command line or a value in it is wrong */
#define WSCTL_NOENT	3	/* no workspace of that name */
#define WSCTL_EXISTS	4	/* create: the name is already declared */
#define WSCTL_MOUNTED	5	/* mount, rm: the workspace is mounted */
#define WSCTL_NOTMOUNTED 6	/* umount, status: it is not mounted */
#define WSCTL_DAEMON	7	/* the daemon failed to start, or died */
#define WSCTL_BADFILE	8	/* apply, edit: the file is invalid */

struct wsctl {
	const char *state_dir;
};

struct wsctl_cmd {
	const char *name;
	int (*run)(const struct wsctl *ctx, int argc, char **argv);
	const char *args;	/* argument synopsis, e.g. "NAME [--json]" */
	const char *summary;
	const char *details;	/* more help after the summary, or NULL */
};

int cmd_ls(const struct wsctl *ctx, int argc, char **argv);
int cmd_status(const struct wsctl *ctx, int argc, char **argv);
int cmd_quota(const struct wsctl *ctx, int argc, char **argv);
int cmd_locks(const struct wsctl *ctx, int argc, char **argv);
int cmd_help(const struct wsctl *ctx, int argc, char **argv);
int cmd_create(const struct wsctl *ctx, int argc, char **argv);
int cmd_set(const struct wsctl *ctx, int argc, char **argv);
int cmd_mount(const struct wsctl *ctx, int argc, char **argv);
int cmd_umount(const struct wsctl *ctx, int argc, char **argv);
int cmd_rm(const struct wsctl *ctx, int argc, char **argv);
int cmd_edit(const struct wsctl *ctx, int argc, char **argv);
int cmd_apply(const struct wsctl *ctx, int argc, char **argv);
int cmd_top(const struct wsctl *ctx, int argc, char **argv);

/* The texts of `wsctl help quota|apply|edit`, kept next to the code they
** describe. */
extern const char wsctl_quota_details[];
extern const char wsctl_apply_details[];
extern const char wsctl_edit_details[];
extern const char wsctl_mount_details[];
extern const char wsctl_umount_details[];
extern const char wsctl_rm_details[];

/* Prints `wsctl help CMD`, what CMD --help shows too. */
void wsctl_print_help_of(const char *cmd);

const struct wsctl_cmd *wsctl_find_cmd(const char *name);

/* Prints "wsctl: MESSAGE" as one line on stderr. */
void wsctl_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Prints "wsctl: MESSAGE; usage: ..." for command CMD (NULL: the global
** usage) and returns WSCTL_USAGE. */
int wsctl_usage_err(const char *cmd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Like wsctl_usage_err, with the usage given in full: SYNOPSIS is what
** follows "wsctl [--state DIR] ", for commands with subcommands. */
int wsctl_synopsis_err(const char *synopsis, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Parses a subcommand's argv: --json (if JSON is non-NULL), -h/--help, and
** exactly one positional NAME if NAME is non-NULL, none otherwise.  Returns
** 0 to proceed, WSCTL_USAGE after reporting an error, or -1 after printing
** the command's help (the command then exits 0). */
int wsctl_parse_args(int argc, char **argv, int *json, const char **name);

/* A flag a command takes, e.g. { "--force", NULL, &force }. */
struct wsctl_flag {
	const char *name;
	const char *alias;	/* a short form, or NULL */
	int *set;		/* set to 1 when given */
};

/* Parses the argv of command ARGV[0]: the FLAGS (an array ended by a NULL
** name), -h/--help, "--", and MIN to MAX positional arguments into POS.
** Returns 0 to proceed, -1 after printing the command's help, or
** WSCTL_USAGE after reporting the error ("missing workspace name" when
** fewer than MIN are given). */
int wsctl_parse_flags(int argc, char **argv, const struct wsctl_flag *flags,
		      const char **pos, int min, int max);

/* Opens the registry without creating it; reports errors itself and returns
** WSCTL_ERR, else 0. */
int wsctl_open_registry(const struct wsctl *ctx, struct registry **reg);

/* Opens the registry for writing, making the state directory and state.db
** if missing and bringing an older schema up to date; like
** wsctl_open_registry otherwise. */
int wsctl_open_registry_rw(const struct wsctl *ctx, struct registry **reg);

/* Reports that NAME has no live daemon: WSCTL_NOTMOUNTED if it is a
** declared workspace, WSCTL_NOENT ("no workspace named") otherwise. */
int wsctl_not_mounted(const struct wsctl *ctx, const char *name);

/* Reports that the registry in CTX's state directory could not be read
** (ERR: a negative errno) and returns WSCTL_ERR. */
int wsctl_registry_err(const struct wsctl *ctx, int err);

/* A decimal number that fits in 64 bits, with no sign, space or trailing
** text, as the control protocol sends counters.  Returns 0 or -EINVAL. */
int wsctl_parse_u64(const char *s, uint64_t *out);

/* Writes a JSON array of the N items (each SIZE bytes) at ITEMS to
** stdout, one per line: PRINT_ITEM writes one item, indented, with no
** newline. */
void wsctl_print_json_list(const void *items, size_t n, size_t size,
			   void (*print_item)(const void *item));

/* Writes S to OUT with control bytes shown as '?', so a hostile path cannot
** rewrite the terminal or fake table rows; pads to WIDTH bytes. */
void wsctl_print_cell(FILE *out, const char *s, int width);

#endif
