/*
** The daemon's life: detaching, claiming the workspace name, mounting,
** serving, and undoing all of it at the end.
*/
#ifndef WSFS_DAEMON_H
#define WSFS_DAEMON_H

#include <fuse_lowlevel.h>

#include "options.h"

/* Exit statuses of wsfs(8). */
enum {
	WS_EXIT_OK = 0,
	WS_EXIT_USAGE = 1,	/* bad command line or option */
	WS_EXIT_SETUP = 2,	/* could not mount: upper, state, name, mount(2) */
	WS_EXIT_RUNTIME = 3,	/* the session ended with an error */
};

/* Runs the workspace until it is unmounted; returns an exit status. ARGS
** holds the libfuse options left over after options_parse(). */
int daemon_run(struct ws_options *opt, struct fuse_args *args,
	       const struct fuse_lowlevel_ops *ops);

#endif
