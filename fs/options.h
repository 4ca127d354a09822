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

#include "layerspec.h"
#include "qlimits.h"

/* Which quota limits the -o options set; the others come from state.db. */
enum {
	QUOTA_OPT_BYTES = 1 << 0,
	QUOTA_OPT_INODES = 1 << 1,
	QUOTA_OPT_SOFT_BYTES = 1 << 2,
	QUOTA_OPT_SOFT_INODES = 1 << 3,
	QUOTA_OPT_GRACE = 1 << 4,
	QUOTA_OPT_WARN = 1 << 5,
};

struct ws_options {
	char *upper;		/* absolute path; NULL for a whole-ephemeral one */
	char *mountpoint;	/* absolute path */
	char *name;
	char *state;		/* state directory */
	double timeout;		/* entry/attr cache timeout, seconds */
	size_t fd_cache;	/* cached O_PATH descriptors */
	int read_only;
	int acl;		/* POSIX ACLs enforced by the kernel */
	int writeback;		/* kernel writeback cache */
	struct quota_limits quota;	/* the quota_* options given */
	unsigned int quota_given;	/* QUOTA_OPT_* bits: which were given */
	int quota_errno;	/* EDQUOT or ENOSPC */
	int quota_rescan;	/* scan even after a clean unmount */
	int audit_level;	/* enum audit_level: 0 off, 1 meta, 2 full */
	int audit_sync_full;
	int audit_fail_alert;
	char *audit_anchor;	/* NULL, an absolute path, or "|command" */
	long audit_cp_records;
	long audit_cp_secs;
	char *metrics_file;	/* -o metrics=: NULL, or an absolute path */
	unsigned int metrics_interval;	/* seconds between its rewrites */
	struct layer_spec *layers;	/* -o layer= and -o ephemeral, in order */
	size_t nlayers;
	int layers_given;	/* given: they replace the stored stack */
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
