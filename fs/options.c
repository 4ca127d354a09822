/*
** Parsing of the daemon's command line.
**
** libfuse's fuse_opt does the tokenising.  wsfs's own keys are consumed
** here; libfuse's pass through to fuse_parse_cmdline() and
** fuse_session_new().  Two options are forced rather than offered:
** default_permissions, because the daemon acts as root and relies on the
** kernel to check the caller's permissions, and nosuid/nodev, because an
** agent must not gain privilege or reach devices through its workspace.
** `suid` and `dev` are ignored with a warning rather than refused, because
** mount.fuse3 adds them on its own to every mount root makes from fstab.
*/
#include "metrics.h"
#include "options.h"
#include "qparse.h"
#include "registry.h"
#include "util.h"

#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <unistd.h>

enum {
	KEY_NONOPT_, KEY_RO, KEY_SUIDDEV, KEY_ACL, KEY_WRITEBACK, KEY_HELP, KEY_VERSION, KEY_DEFPERM,
	KEY_RESCAN, KEY_LAYER, KEY_EPHEMERAL, KEY_EPHEMERAL_AT, KEY_SHARED,
};

/* The quota options, kept as text until parse_quota() checks them. */
enum { Q_BYTES, Q_INODES, Q_SOFT_BYTES, Q_SOFT_INODES, Q_GRACE, Q_WARN, Q_ERRNO, Q_COUNT };

/* The audit options, kept as text until parse_audit() checks them. */
enum { AU_LEVEL, AU_SYNC, AU_FAIL, AU_ANCHOR, AU_CP_RECORDS, AU_CP_SECS, AU_COUNT };

/* fuse_opt hands one pointer to both the offsets and the key callback, so
** the options being filled sit at the start of the parser's state. */
struct parse_state {
	struct ws_options o;
	struct ws_options *opt;
	char *positional[3];
	int npositional;
	unsigned long fd_cache;
	char *timeout;		/* as given; parsed by parse_timeout() */
	char *quota[Q_COUNT];	/* as given; parsed by parse_quota() */
	char *audit[AU_COUNT];	/* as given; parsed by parse_audit() */
	char *metrics_interval;	/* as given; parsed by parse_metrics() */
	int failed;
};

static const struct fuse_opt ws_opt_spec[] = {
	{ "upper=%s", offsetof(struct parse_state, o.upper), 0 },
	{ "name=%s", offsetof(struct parse_state, o.name), 0 },
	{ "state=%s", offsetof(struct parse_state, o.state), 0 },
	{ "timeout=%s", offsetof(struct parse_state, timeout), 0 },
	{ "quota_bytes=%s", offsetof(struct parse_state, quota[Q_BYTES]), 0 },
	{ "quota_inodes=%s", offsetof(struct parse_state, quota[Q_INODES]), 0 },
	{ "quota_soft_bytes=%s", offsetof(struct parse_state, quota[Q_SOFT_BYTES]), 0 },
	{ "quota_soft_inodes=%s", offsetof(struct parse_state, quota[Q_SOFT_INODES]), 0 },
	{ "quota_grace=%s", offsetof(struct parse_state, quota[Q_GRACE]), 0 },
	{ "quota_warn=%s", offsetof(struct parse_state, quota[Q_WARN]), 0 },
	{ "quota_errno=%s", offsetof(struct parse_state, quota[Q_ERRNO]), 0 },
	FUSE_OPT_KEY("quota_rescan", KEY_RESCAN),
	{ "audit=%s", offsetof(struct parse_state, audit[AU_LEVEL]), 0 },
	{ "audit_sync=%s", offsetof(struct parse_state, audit[AU_SYNC]), 0 },
	{ "audit_fail=%s", offsetof(struct parse_state, audit[AU_FAIL]), 0 },
	{ "audit_anchor=%s", offsetof(struct parse_state, audit[AU_ANCHOR]), 0 },
	{ "audit_checkpoint=%s", offsetof(struct parse_state, audit[AU_CP_RECORDS]), 0 },
	{ "audit_checkpoint_secs=%s", offsetof(struct parse_state, audit[AU_CP_SECS]), 0 },
	{ "metrics=%s", offsetof(struct parse_state, o.metrics_file), 0 },
	{ "metrics_interval=%s", offsetof(struct parse_state, metrics_interval), 0 },
	FUSE_OPT_KEY("layer=", KEY_LAYER),
	FUSE_OPT_KEY("ephemeral", KEY_EPHEMERAL),
	FUSE_OPT_KEY("ephemeral=", KEY_EPHEMERAL_AT),
	FUSE_OPT_KEY("shared=", KEY_SHARED),
	FUSE_OPT_KEY("ro", KEY_RO),
	FUSE_OPT_KEY("suid", KEY_SUIDDEV),
	FUSE_OPT_KEY("dev", KEY_SUIDDEV),
	FUSE_OPT_KEY("acl", KEY_ACL),
	FUSE_OPT_KEY("writeback", KEY_WRITEBACK),
	FUSE_OPT_KEY("default_permissions", KEY_DEFPERM),
	FUSE_OPT_KEY("-h", KEY_HELP),
	FUSE_OPT_KEY("--help", KEY_HELP),
	FUSE_OPT_KEY("-V", KEY_VERSION),
	FUSE_OPT_KEY("--version", KEY_VERSION),
	FUSE_OPT_END
};

static const struct fuse_opt ws_fd_cache_spec[] = {
	{ "fd_cache=%lu", offsetof(struct parse_state, fd_cache), 0 },
	FUSE_OPT_END
};

static int add_layer(struct parse_state *ps, int key, const char *arg);

static int parse_key(void *data, const char *arg, int key, struct fuse_args *out)
{
	struct parse_state *ps = data;

	(void)out;
	switch (key) {
	case FUSE_OPT_KEY_NONOPT:
		if (ps->npositional == 2) {
			fprintf(stderr, "wsfs: too many arguments: '%s'\n", arg);
			ps->failed = 1;
			return -1;
		}
		ps->positional[ps->npositional] = strdup(arg);
		if (!ps->positional[ps->npositional]) {
			ps->failed = 1;
			return -1;
		}
		ps->npositional++;
		return 0;
	case KEY_RO:
		ps->o.read_only = 1;
		return 1;
	case KEY_SUIDDEV:
		fprintf(stderr, "wsfs: ignoring '%s': workspaces are always mounted "
			"nosuid,nodev\n", arg);
		return 0;
	case KEY_ACL:
		ps->o.acl = 1;
		return 0;
	case KEY_WRITEBACK:
		ps->o.writeback = 1;
		return 0;
	case KEY_DEFPERM:
		return 0;	/* always added below */
	case KEY_RESCAN:
		ps->o.quota_rescan = 1;
		return 0;
	case KEY_LAYER:
	case KEY_EPHEMERAL:
	case KEY_EPHEMERAL_AT:
	case KEY_SHARED:
		return add_layer(ps, key, arg);
	case KEY_HELP:
		ps->o.show_help = 1;
		return 0;
	case KEY_VERSION:
		ps->o.show_version = 1;
		return 0;
	default:
		return 1;
	}
}

void options_usage(const char *prog)
{
	printf("usage: %s [-f] [-d] [-o OPTION[,OPTION...]] [UPPER] MOUNTPOINT\n\n"
	       "wsfs options:\n"
	       "    -o upper=DIR       writable backing directory (or UPPER)\n"
	       "    -o name=NAME       workspace name (default: mountpoint's basename)\n"
	       "    -o state=DIR       state directory (default: $WSFS_STATE or /var/lib/wsfs)\n"
	       "    -o timeout=SECS    kernel entry/attribute cache timeout (default 86400)\n"
	       "    -o fd_cache=N      cached backing descriptors (default: half the fd limit)\n"
	       "    -o acl             POSIX ACLs (system.posix_acl_* xattrs)\n"
	       "    -o writeback       kernel writeback cache (faster small writes;\n"
	       "                       write errors may surface at fsync/close)\n"
	       "    -o ro              read-only workspace\n"
	       "    -o quota_bytes=SIZE        hard byte limit (K/M/G/T, 1024-based; none)\n"
	       "    -o quota_inodes=N          hard inode limit\n"
	       "    -o quota_soft_bytes=SIZE   soft byte limit, hard after the grace period\n"
	       "    -o quota_soft_inodes=N     soft inode limit\n"
	       "    -o quota_grace=DURATION    grace period (s/m/h/d/w; default 1h)\n"
	       "    -o quota_warn=P[:P...]     warning thresholds in percent (default 85:95)\n"
	       "    -o quota_errno=edquot|enospc  error for a refused call (default edquot)\n"
	       "    -o quota_rescan    recount usage at mount even after a clean unmount\n"
	       "    -o layer=SOURCE:TARGET[:ro]  show directory SOURCE read-only at TARGET\n"
	       "                       (repeatable; kept with the workspace)\n"
	       "    -o ephemeral=TARGET  scratch at TARGET, wiped when the mount ends\n"
	       "    -o ephemeral       the whole workspace is scratch (no upper=)\n"
	       "    -o shared=SOURCE:TARGET  directory SOURCE read-write at TARGET, for\n"
	       "                       several workspaces at once (repeatable)\n"
	       "    -o audit=off|meta|full     what the audit log records (default meta)\n"
	       "    -o audit_sync=normal|full  full: each operation waits for its record's\n"
	       "                               commit (synchronous=FULL)\n"
	       "    -o audit_fail=closed|alert closed: refuse operations with EIO while the\n"
	       "                               log cannot be written (default); alert: go on\n"
	       "                               and record the gap\n"
	       "    -o audit_anchor=FILE|'|CMD'  append each signed checkpoint to FILE, or\n"
	       "                               pipe it to CMD\n"
	       "    -o audit_checkpoint=N      checkpoint every N records (default 10000)\n"
	       "    -o audit_checkpoint_secs=T ... or every T seconds (default 60)\n"
	       "    -o metrics=FILE    keep FILE (an absolute path, e.g. NAME.prom in\n"
	       "                       node_exporter's textfile directory) current in\n"
	       "                       the Prometheus text format\n"
	       "    -o metrics_interval=SECS  rewrite it every SECS seconds, 1-3600\n"
	       "                       (default 5)\n\n"
	       "libfuse options:\n", prog);
	fuse_cmdline_help();
	fuse_lowlevel_help();
}

/* A positive decimal count up to MAX, with no sign or trailing text. */
static int parse_count(const char *key, const char *text, long max, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = text[0] >= '0' && text[0] <= '9' ? strtol(text, &end, 10) : -1;
	if (v < 1 || v > max || errno || *end) {
		fprintf(stderr, "wsfs: %s=%s: expected a whole number from 1 to "
			"%ld\n", key, text, max);
		return -1;
	}
	*out = v;
	return 0;
}

static int parse_choice(const char *key, const char *text, const char *a,
			const char *b, const char *c, int *out)
{
	const char *names[] = { a, b, c };

	for (int i = 0; i < 3; i++)
		if (names[i] && strcmp(text, names[i]) == 0) {
			*out = i;
			return 0;
		}
	fprintf(stderr, "wsfs: %s=%s: expected %s or %s%s%s\n", key, text, a, b,
		c ? " or " : "", c ? c : "");
	return -1;
}

/* The anchor gets a copy of every checkpoint: a file named by an absolute
** path (a relative one would depend on the daemon's directory), or a
** command after '|'. */
static int parse_anchor(const char *text)
{
	if ((text[0] == '|' && text[1] != '\0') || text[0] == '/')
		return 0;
	fprintf(stderr, "wsfs: audit_anchor=%s: expected an absolute path or "
		"'|command'\n", text);
	return -1;
}

static int parse_audit(struct parse_state *ps, struct ws_options *opt)
{
	char **a = ps->audit;
	int sync = 0, fail = 0;

	opt->audit_level = 1;
	opt->audit_cp_records = 10000;
	opt->audit_cp_secs = 60;
	if ((a[AU_LEVEL] && parse_choice("audit", a[AU_LEVEL], "off", "meta",
					 "full", &opt->audit_level) < 0) ||
	    (a[AU_SYNC] && parse_choice("audit_sync", a[AU_SYNC], "normal",
					"full", NULL, &sync) < 0) ||
	    (a[AU_FAIL] && parse_choice("audit_fail", a[AU_FAIL], "closed",
					"alert", NULL, &fail) < 0) ||
	    (a[AU_ANCHOR] && parse_anchor(a[AU_ANCHOR]) < 0) ||
	    (a[AU_CP_RECORDS] && parse_count("audit_checkpoint", a[AU_CP_RECORDS],
					     100000000L, &opt->audit_cp_records) < 0) ||
	    (a[AU_CP_SECS] && parse_count("audit_checkpoint_secs", a[AU_CP_SECS],
					  86400L, &opt->audit_cp_secs) < 0))
		return -1;
	opt->audit_sync_full = sync;
	opt->audit_fail_alert = fail;
	if (a[AU_ANCHOR]) {
		opt->audit_anchor = a[AU_ANCHOR];
		a[AU_ANCHOR] = NULL;
	}
	return 0;
}

/* The metrics file is checked here, before the daemon detaches, so a
** path that cannot work is a usage error on the caller's terminal. */
static int parse_metrics(struct parse_state *ps, struct ws_options *opt)
{
	char err[PATH_MAX + 128];
	long secs = 5;

	if (ps->metrics_interval &&
	    parse_count("metrics_interval", ps->metrics_interval, 3600L,
			&secs) < 0)
		return -1;
	if (ps->metrics_interval && !opt->metrics_file) {
		fprintf(stderr, "wsfs: metrics_interval=%s: needs metrics=FILE\n",
			ps->metrics_interval);
		return -1;
	}
	if (opt->metrics_file &&
	    metrics_check_path(opt->metrics_file, err, sizeof(err)) < 0) {
		fprintf(stderr, "wsfs: %s\n", err);
		return -1;
	}
	opt->metrics_interval = (unsigned int)secs;
	return 0;
}

/* A plain decimal number of seconds, 0 to 10^7: fuse_opt's %lf would take
** "nan", "-5" or "0x10" and give no wsfs: message for garbage. */
static int parse_timeout(const char *text, double *out)
{
	char *end;
	double t;

	if (!text) {
		*out = 86400.0;
		return 0;
	}
	errno = 0;
	t = strtod(text, &end);
	if (errno || end == text || *end || !isfinite(t) || t < 0 || t > 1e7 ||
	    strpbrk(text, "xXnN")) {
		fprintf(stderr, "wsfs: invalid timeout '%s': give seconds from 0 "
			"to 10000000\n", text);
		return -1;
	}
	*out = t;
	return 0;
}

/* Options override what state.db holds for the workspace; the ones not
** given keep their stored values (quota_mount.c merges them). */
static int parse_quota(struct parse_state *ps, struct ws_options *opt)
{
	static const char *names[Q_COUNT] = {
		"quota_bytes", "quota_inodes", "quota_soft_bytes",
		"quota_soft_inodes", "quota_grace", "quota_warn", "quota_errno",
	};
	struct quota_limits *l = &opt->quota;
	char err[256];
	int i, r = 0;

	quota_limits_default(l);
	opt->quota_errno = EDQUOT;
	for (i = 0; i < Q_COUNT && r == 0; i++) {
		const char *v = ps->quota[i];

		if (!v)
			continue;
		switch (i) {
		case Q_BYTES:
			r = qparse_size(v, &l->bytes, err, sizeof(err));
			break;
		case Q_INODES:
			r = qparse_count(v, &l->inodes, err, sizeof(err));
			break;
		case Q_SOFT_BYTES:
			r = qparse_size(v, &l->soft_bytes, err, sizeof(err));
			break;
		case Q_SOFT_INODES:
			r = qparse_count(v, &l->soft_inodes, err, sizeof(err));
			break;
		case Q_GRACE:
			r = qparse_duration(v, &l->grace_s, err, sizeof(err));
			break;
		case Q_WARN:
			r = qparse_warn(v, ':', l, err, sizeof(err));
			break;
		default:
			if (strcasecmp(v, "edquot") == 0) {
				opt->quota_errno = EDQUOT;
			} else if (strcasecmp(v, "enospc") == 0) {
				opt->quota_errno = ENOSPC;
			} else {
				snprintf(err, sizeof(err), "expected 'edquot' or "
					 "'enospc', not '%.32s'", v);
				r = -1;
			}
			break;
		}
		if (r == 0 && i != Q_ERRNO)
			opt->quota_given |= 1u << i;
		if (r)
			fprintf(stderr, "wsfs: %s: %s\n", names[i], err);
	}
	return r ? -1 : 0;
}

/* Layers are parsed as they come, so their order (which is their stacking
** order) is the order given. */
static int add_layer(struct parse_state *ps, int key, const char *arg)
{
	struct layer_spec spec, *grown;
	char err[PATH_MAX + 256];
	int r;

	if (key == KEY_LAYER)
		r = layer_spec_parse(arg + strlen("layer="), &spec, err,
				     sizeof(err));
	else if (key == KEY_SHARED)
		r = layer_spec_parse_shared(arg + strlen("shared="), &spec, err,
					    sizeof(err));
	else
		r = layer_spec_parse_ephemeral(key == KEY_EPHEMERAL ? NULL :
					       arg + strlen("ephemeral="),
					       &spec, err, sizeof(err));
	if (r < 0) {
		fprintf(stderr, "wsfs: %s\n", err);
		ps->failed = 1;
		return -1;
	}
	grown = realloc(ps->o.layers, (ps->o.nlayers + 1) * sizeof(*grown));
	if (!grown) {
		layer_spec_free(&spec);
		ps->failed = 1;
		return -1;
	}
	grown[ps->o.nlayers++] = spec;
	ps->o.layers = grown;
	ps->o.layers_given = 1;
	return 0;
}

/* The whole upper is scratch: the daemon makes it under the state dir. */
static int whole_ephemeral(const struct ws_options *opt)
{
	for (size_t i = 0; i < opt->nlayers; i++)
		if (opt->layers[i].mode == LAYER_EPHEMERAL &&
		    strcmp(opt->layers[i].target, "/") == 0)
			return 1;
	return 0;
}

static int check_layers(const struct ws_options *opt)
{
	char err[2 * PATH_MAX + 256];

	if (!opt->layers_given)
		return 0;
	if (layer_stack_check(opt->layers, opt->nlayers, opt->upper, err,
			      sizeof(err)) < 0) {
		fprintf(stderr, "wsfs: %s\n", err);
		return -1;
	}
	return 0;
}

static size_t default_fd_cache(void)
{
	struct rlimit rl;
	size_t n;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY)
		return 8192;
	n = (size_t)rl.rlim_cur / 2;
	if (n < 64)
		n = 64;
	if (n > 65536)
		n = 65536;
	return n;
}

static int resolve_dir(const char *what, const char *path, char **out)
{
	char *real = realpath(path, NULL);

	if (!real) {
		fprintf(stderr, "wsfs: %s '%s': %s\n", what, path, strerror(errno));
		return -1;
	}
	free(*out);
	*out = real;
	return 0;
}

/* mount.fuse3 passes the fstab source first; "wsfs" or "none" mean none. */
static int take_positional(struct parse_state *ps)
{
	struct ws_options *opt = ps->opt;
	const char *source = NULL, *mnt;

	if (ps->npositional == 0) {
		fprintf(stderr, "wsfs: no mountpoint given (see wsfs --help)\n");
		return -1;
	}
	mnt = ps->positional[ps->npositional - 1];
	if (ps->npositional == 2)
		source = ps->positional[0];
	if (source && strcmp(source, "wsfs") != 0 && strcmp(source, "none") != 0 &&
	    !opt->upper) {
		opt->upper = strdup(source);
		if (!opt->upper)
			return -1;
	}
	if (!opt->upper && !whole_ephemeral(opt)) {
		fprintf(stderr, "wsfs: no upper directory: give -o upper=DIR "
			"(or -o ephemeral for a workspace that keeps nothing)\n");
		return -1;
	}
	if (resolve_dir("mountpoint", mnt, &opt->mountpoint) < 0 ||
	    (opt->upper &&
	     resolve_dir("upper directory", opt->upper, &opt->upper) < 0))
		return -1;
	return 0;
}

static int choose_name(struct ws_options *opt)
{
	if (!opt->name) {
		char *copy = strdup(opt->mountpoint);

		if (!copy)
			return -1;
		opt->name = strdup(basename(copy));
		free(copy);
		if (!opt->name)
			return -1;
		if (!ws_name_valid(opt->name)) {
			fprintf(stderr, "wsfs: cannot use the mountpoint's name '%s' "
				"as a workspace name; give -o name=NAME\n", opt->name);
			return -1;
		}
	}
	if (!ws_name_valid(opt->name)) {
		fprintf(stderr, "wsfs: invalid workspace name '%s': use 1-%d of "
			"A-Z a-z 0-9 . _ - (not starting with . or -)\n",
			opt->name, WS_NAME_MAX);
		return -1;
	}
	return 0;
}

static int add_fuse_defaults(struct fuse_args *args, const struct ws_options *opt)
{
	char fsname[WS_NAME_MAX + 32];

	snprintf(fsname, sizeof(fsname), "-ofsname=wsfs:%s,subtype=wsfs", opt->name);
	if (fuse_opt_add_arg(args, "-odefault_permissions,nosuid,nodev") < 0 ||
	    fuse_opt_add_arg(args, fsname) < 0 ||
	    fuse_opt_add_arg(args, opt->mountpoint) < 0)
		return -1;
	return 0;
}

/* The daemon changes to / when it detaches, so a relative state directory is
** anchored to the caller's working directory first. */
static int absolute_state_dir(struct ws_options *opt)
{
	const char *dir = registry_default_dir(opt->state);
	char cwd[PATH_MAX], *abs;

	if (dir[0] == '/') {
		abs = strdup(dir);
	} else {
		if (!getcwd(cwd, sizeof(cwd))) {
			fprintf(stderr, "wsfs: getcwd: %s\n", strerror(errno));
			return -1;
		}
		if (asprintf(&abs, "%s/%s", cwd, dir) < 0)
			abs = NULL;
	}
	if (!abs)
		return -1;
	free(opt->state);
	opt->state = abs;
	return 0;
}

static int parse_cmdline(struct fuse_args *args, struct ws_options *opt)
{
	struct fuse_cmdline_opts co;

	memset(&co, 0, sizeof(co));
	if (fuse_parse_cmdline(args, &co) != 0)
		return -1;
	opt->foreground = co.foreground;
	opt->debug = co.debug;
	opt->singlethread = co.singlethread;
	opt->clone_fd = co.clone_fd;
	opt->max_threads = co.max_threads;
	opt->max_idle_threads = co.max_idle_threads;
	free(co.mountpoint);
	return 0;
}

int options_parse(struct fuse_args *args, struct ws_options *opt)
{
	struct parse_state ps;
	int ret = -1;

	memset(&ps, 0, sizeof(ps));
	ps.opt = opt;
	if (fuse_opt_parse(args, &ps, ws_opt_spec, parse_key) < 0 ||
	    fuse_opt_parse(args, &ps, ws_fd_cache_spec, NULL) < 0)
		ps.failed = 1;
	*opt = ps.o;
	if (ps.failed)
		goto out;
	if (opt->show_help || opt->show_version) {
		ret = 0;
		goto out;
	}
	if (parse_timeout(ps.timeout, &opt->timeout) < 0 ||
	    parse_quota(&ps, opt) < 0 || parse_audit(&ps, opt) < 0 ||
	    parse_metrics(&ps, opt) < 0)
		goto out;
	opt->fd_cache = ps.fd_cache ? ps.fd_cache : default_fd_cache();
	if (opt->fd_cache < 16) {
		fprintf(stderr, "wsfs: fd_cache=%zu is too small (minimum 16)\n",
			opt->fd_cache);
		goto out;
	}
	if (take_positional(&ps) < 0 || check_layers(opt) < 0 ||
	    choose_name(opt) < 0)
		goto out;
	if (absolute_state_dir(opt) < 0 || add_fuse_defaults(args, opt) < 0 ||
	    parse_cmdline(args, opt) < 0)
		goto out;
	ret = 0;
out:
	for (int i = 0; i < ps.npositional; i++)
		free(ps.positional[i]);
	free(ps.timeout);
	free(ps.metrics_interval);
	for (int i = 0; i < Q_COUNT; i++)
		free(ps.quota[i]);
	for (int i = 0; i < AU_COUNT; i++)
		free(ps.audit[i]);
	return ret;
}

void options_free(struct ws_options *opt)
{
	free(opt->upper);
	free(opt->mountpoint);
	free(opt->name);
	free(opt->state);
	free(opt->audit_anchor);
	free(opt->metrics_file);
	layer_stack_free(opt->layers, opt->nlayers);
	memset(opt, 0, sizeof(*opt));
}
