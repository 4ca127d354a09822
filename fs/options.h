/*
** Command-line and -o options of the wsfs daemon.
**
** wsfs accepts the mount.fuse3 calling convention (`wsfs SOURCE MOUNTPOINT
** -o OPTS`, where SOURCE may name the upper directory) as well as
** `wsfs -o upper=DIR MOUNTPOINT`.  Options wsfs understands are removed from
** the argument list; everything else is libfuse's (allow_other, ro,
** max_threads, -f, -d ...) and is passed on untouched.
*/
#ifndef WSFS_OPTIONS_H
#define WSFS_OPTIONS_H

#include <fuse_lowlevel.h>
#include <stddef.h>

struct ws_options {
	char *upper;		/* absolute path */
	char *mountpoint;	/* absolute path */
	char *name;
	char *state;		/* state directory */
	double timeout;		/* entry/attr cache timeout, seconds */
	size_t fd_cache;	/* cached O_PATH descriptors */
	int read_only;
	int acl;		/* POSIX ACLs enforced by the kernel */
	int writeback;		/* kernel writeback cache */
	int foreground;
	int debug;
	int singlethread;
	int clone_fd;
	unsigned int max_threads;
	unsigned int max_idle_threads;
	int show_help;
	int show_version;
};

/* Parses ARGS into OPT and leaves libfuse's own options in ARGS. Returns 0,
** or -1 after printing a one-line reason to stderr. */
int options_parse(struct fuse_args *args, struct ws_options *opt);
void options_free(struct ws_options *opt);
void options_usage(const char *prog);

#endif
