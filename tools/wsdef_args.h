/*
** The options `wsctl create` and `wsctl set` share, turned into a wanted
** definition (tools/wsdef.h).
*/
#ifndef WSFS_WSCTL_WSDEF_ARGS_H
#define WSFS_WSCTL_WSDEF_ARGS_H

#include <stddef.h>

#include "wsdef.h"

#define WSDEF_ARGS_SYNOPSIS(first) \
	first " [--upper DIR] [--mountpoint DIR] " \
	"[--layer SRC:TARGET[:MODE]]... [--shared SRC:TARGET]... " \
	"[--ephemeral [TARGET]]... [--bytes N] [--inodes N] " \
	"[--audit off|meta|full] [--option OPT]... [--allow-other]"

extern const char wsdef_args_details[];

struct wsdef_args {
	const char *name;	/* the NAME argument */
	int nothing_given;	/* no option at all */
	void *priv;		/* the parsed options, in order */
	size_t n;
};

/* Reads ARGV of command CMD ("create" or "set").  Returns 0, -1 when -h
** or --help was asked for, or WSCTL_USAGE after reporting the error. */
int wsdef_args_parse(const char *cmd, int argc, char **argv,
		     struct wsdef_args *out);

/* Applies the parsed options to D, in order (see wsdef_args.c for how
** layer and option lists are replaced).  Returns 0 or a WSCTL_* status
** after reporting the error. */
int wsdef_args_apply(const struct wsdef_args *a, struct ws_def *d);

void wsdef_args_free(struct wsdef_args *a);

#endif
