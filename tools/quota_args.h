/*
** The command line of `wsctl quota set|show|ls`: flags, the workspace name,
** and the limit settings of `set`, turned into limits and into the daemon's
** "quota-set" request.
*/
#ifndef WSFS_WSCTL_QUOTA_ARGS_H
#define WSFS_WSCTL_QUOTA_ARGS_H

#include <stddef.h>

#include "qlimits.h"

/* The settings `quota set` takes; indexes qargs.val. */
enum qsetting {
	QS_BYTES, QS_INODES, QS_SOFT_BYTES, QS_SOFT_INODES, QS_GRACE, QS_WARN,
	QS_COUNT
};

struct qargs {
	const char *synopsis;	/* for usage errors and help */
	int takes_settings;	/* set by the caller before parsing */
	int takes_name;
	const char *name;
	const char *val[QS_COUNT];	/* as typed; NULL if not given */
	int json;
};

/* Prints the help of the quota subcommand whose usage is SYNOPSIS. */
void qargs_print_help(const char *synopsis);

/* Parses a subcommand's ARGV (ARGV[0] being the subcommand) into A, whose
** synopsis and takes_* fields the caller has set.  Returns 0 to proceed,
** -1 after printing help, or WSCTL_USAGE after reporting the error. */
int qargs_parse(struct qargs *a, int argc, char **argv);

/* Parses every given setting into NEW, defaults elsewhere.  Returns 0, or
** WSCTL_USAGE after reporting the first bad value or that none was given. */
int qargs_limits(const struct qargs *a, struct quota_limits *new);

/* Copies the settings given in A from NEW into DST, leaving the rest. */
void qargs_merge(const struct qargs *a, const struct quota_limits *new,
		 struct quota_limits *dst);

/* Writes the "quota-set" request for the settings given in A, with NEW's
** canonical values.  Returns 0, or -ENAMETOOLONG if LEN is too small. */
int qargs_request(const struct qargs *a, const struct quota_limits *new,
		  char *buf, size_t len);

#endif
