/*
** wsctl mount NAME [MOUNTPOINT] [--foreground]: start a daemon for a
** declared workspace.
**
** The definition becomes one wsfs command line: name, state directory,
** upper, every layer in order, audit level and the extra options, with the
** commas and backslashes in paths escaped as libfuse's option parser
** expects.  Passing the whole stack, rather than letting the daemon read
** the stored one, keeps what `wsctl mount` runs equal to what an operator
** would type, and readable in `ps`.
**
** Without --foreground wsfs detaches on its own and exits only once the
** mount is live (or has failed), so waiting for it is waiting for the
** mount; its stderr comes back through a pipe and its last line is the
** reason shown on failure.  With --foreground wsctl execs wsfs -f in its
** own place, keeping the PID, which is what a systemd unit of Type=notify
** wants as its main process.
**
** The daemon binary is looked for in $WSFS_DAEMON, next to wsctl (an
** installed tree), in ../fs/ of wsctl's directory (the build tree), and in
** the sbindir wsctl was configured with.
*/
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mountinfo.h"
#include "wsctl.h"
#include "wsdef.h"

#ifndef WSFS_SBINDIR
#define WSFS_SBINDIR "/usr/local/sbin"
#endif

const char wsctl_mount_details[] =
	"MOUNTPOINT defaults to the declared one, else <state>/run/mnt/NAME;\n"
	"it is made if missing, and a mount a dead daemon left there is\n"
	"cleared first.\n"
	"\n"
	"Options:\n"
	"  --foreground   run the daemon in wsctl's place, with its pid\n"
	"                 (what the wsfs@.service unit uses)\n";

/* BUF = DIR + SUFFIX if that names an executable. */
static int try_path(char *buf, size_t len, const char *dir, const char *suffix)
{
	int n = snprintf(buf, len, "%s%s", dir, suffix);

	return n > 0 && (size_t)n < len && access(buf, X_OK) == 0;
}

static int find_daemon(char *buf, size_t len)
{
	const char *env = getenv("WSFS_DAEMON");
	char self[PATH_MAX];
	ssize_t n;
	char *slash;

	if (env != NULL && env[0] != '\0')
		return try_path(buf, len, env, "") ? 0 : -ENOENT;
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n > 0) {
		self[n] = '\0';
		slash = strrchr(self, '/');
		if (slash != NULL) {
			*slash = '\0';
			if (try_path(buf, len, self, "/wsfs") ||
			    try_path(buf, len, self, "/../fs/wsfs"))
				return 0;
		}
	}
	return try_path(buf, len, WSFS_SBINDIR, "/wsfs") ? 0 : -ENOENT;
}

/* ---- the daemon's command line ------------------------------------------ */

struct optbuf {
	char *s;
	size_t len, cap;
	int failed;
};

static void put_raw(struct optbuf *b, const char *s, int escape)
{
	for (; *s != '\0'; s++) {
		if (b->len + 3 > b->cap) {
			size_t cap = b->cap ? b->cap * 2 : 256;
			char *grown = realloc(b->s, cap);

			if (grown == NULL) {
				b->failed = 1;
				return;
			}
			b->s = grown;
			b->cap = cap;
		}
		if (escape && (*s == ',' || *s == '\\'))
			b->s[b->len++] = '\\';
		b->s[b->len++] = *s;
		b->s[b->len] = '\0';
	}
}

/* Appends ",KEY=VALUE" (or "KEY=VALUE" first), VALUE escaped. */
static void put_opt(struct optbuf *b, const char *key, const char *value)
{
	if (b->len > 0)
		put_raw(b, ",", 0);
	put_raw(b, key, 0);
	if (value != NULL) {
		put_raw(b, "=", 0);
		put_raw(b, value, 1);
	}
}

static void put_layer(struct optbuf *b, const struct layer_spec *l)
{
	char *v;
	size_t len;

	if (l->mode == LAYER_EPHEMERAL) {
		put_opt(b, "ephemeral", strcmp(l->target, "/") == 0 ? NULL :
			l->target);
		return;
	}
	len = strlen(l->source) + strlen(l->target) + 8;
	v = malloc(len);
	if (v == NULL) {
		b->failed = 1;
		return;
	}
	if (l->mode == LAYER_SHARED)
		snprintf(v, len, "%s:%s", l->source, l->target);
	else
		snprintf(v, len, "%s:%s:%s", l->source, l->target,
			 layer_mode_name(l->mode));
	put_opt(b, l->mode == LAYER_SHARED ? "shared" : "layer", v);
	free(v);
}

static char *daemon_options(const struct registry *reg,
			    const struct ws_def *d)
{
	struct optbuf b = { NULL, 0, 0, 0 };
	size_t i;

	put_opt(&b, "name", d->name);
	put_opt(&b, "state", registry_dir(reg));
	if (d->upper != NULL)
		put_opt(&b, "upper", d->upper);
	for (i = 0; i < d->nlayers; i++)
		put_layer(&b, &d->layers[i]);
	if (d->audit != NULL)
		put_opt(&b, "audit", d->audit);
	if (d->options != NULL) {
		put_raw(&b, ",", 0);
		put_raw(&b, d->options, 0);
	}
	if (b.failed) {
		free(b.s);
		return NULL;
	}
	return b.s;
}

/* ---- running it --------------------------------------------------------- */

/* Reads the child's stderr to EOF, keeping its last line in LAST. */
static void drain(int fd, char *last, size_t len)
{
	char buf[4096], line[1024];
	size_t used = 0;
	ssize_t n, i;

	last[0] = '\0';
	while ((n = read(fd, buf, sizeof(buf))) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		for (i = 0; i < n; i++) {
			if (buf[i] == '\n') {
				line[used] = '\0';
				if (used > 0)
					snprintf(last, len, "%s", line);
				used = 0;
			} else if (used + 1 < sizeof(line)) {
				line[used++] = buf[i];
			}
		}
	}
	if (used > 0) {
		line[used] = '\0';
		snprintf(last, len, "%s", line);
	}
}

static void child_exec(const char *daemon, char *const argv[], int errfd)
{
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);

	if (null < 0 || dup2(null, STDIN_FILENO) < 0 ||
	    dup2(null, STDOUT_FILENO) < 0 ||
	    (errfd >= 0 && dup2(errfd, STDERR_FILENO) < 0))
		_exit(127);
	execv(daemon, argv);
	fprintf(stderr, "wsfs: cannot run %s: %s\n", daemon, strerror(errno));
	_exit(127);
}

static int run_detached(const char *name, const char *daemon,
			char *const argv[])
{
	char last[1024];
	int pipefd[2], status;
	pid_t pid;

	if (pipe2(pipefd, O_CLOEXEC) < 0) {
		wsctl_err("pipe: %s", strerror(errno));
		return WSCTL_ERR;
	}
	pid = fork();
	if (pid < 0) {
		wsctl_err("fork: %s", strerror(errno));
		close(pipefd[0]);
		close(pipefd[1]);
		return WSCTL_ERR;
	}
	if (pid == 0)
		child_exec(daemon, argv, pipefd[1]);
	close(pipefd[1]);
	drain(pipefd[0], last, sizeof(last));
	close(pipefd[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return WSCTL_OK;
	wsctl_err("cannot mount workspace '%s': %s", name,
		  last[0] != '\0' ? (strncmp(last, "wsfs: ", 6) == 0 ?
				     last + 6 : last) : "the daemon failed");
	return WSCTL_DAEMON;
}

/* ---- the command -------------------------------------------------------- */

/* Makes the mountpoint if missing and clears a dead daemon's mount there. */
static int prepare_mountpoint(const char *name, const char *path)
{
	char type[64];
	int rc;

	if (path[0] != '/') {
		wsctl_err("mountpoint '%s' is not an absolute path", path);
		return WSCTL_USAGE;
	}
	rc = mountinfo_clear_dead(path);
	if (rc < 0) {
		wsctl_err("cannot clear the dead mount at %s: %s", path,
			  strerror(-rc));
		return WSCTL_ERR;
	}
	if (rc > 0)
		fprintf(stderr, "wsctl: cleared the mount a dead daemon left at "
			"%s\n", path);
	rc = mountinfo_type_at(path, type, sizeof(type));
	if (rc > 0) {
		wsctl_err("cannot mount workspace '%s': %s already has a %s "
			  "mount", name, path, type);
		return WSCTL_MOUNTED;
	}
	if (mkdir(path, 0755) < 0 && errno != EEXIST) {
		wsctl_err("cannot make mountpoint %s: %s", path,
			  strerror(errno));
		return WSCTL_ERR;
	}
	return WSCTL_OK;
}

/* <state>/run/mnt, for the default mountpoints.  <state> is 0700, so only
** root reaches them by path; containers get them by bind mount. */
static int make_default_parent(const struct registry *reg)
{
	char path[PATH_MAX];

	if (snprintf(path, sizeof(path), "%s/run/mnt", registry_dir(reg)) >=
	    (int)sizeof(path)) {
		wsctl_err("state directory path too long");
		return WSCTL_USAGE;
	}
	if (mkdir(path, 0755) < 0 && errno != EEXIST) {
		wsctl_err("cannot make %s: %s", path, strerror(errno));
		return WSCTL_ERR;
	}
	return WSCTL_OK;
}

static int already_mounted(struct registry *reg, const char *name)
{
	struct ws_mount m;

	if (registry_get(reg, name, &m) == 0 && m.live) {
		wsctl_err("workspace '%s' is already mounted at %s (pid %ld)",
			  name, m.mountpoint, (long)m.pid);
		return WSCTL_MOUNTED;
	}
	return WSCTL_OK;
}

static int start(struct registry *reg, const struct ws_def *d,
		 const char *mountpoint, int foreground)
{
	char daemon[PATH_MAX], *opts;
	char *argv[6];
	int rc, n = 0;

	rc = find_daemon(daemon, sizeof(daemon));
	if (rc < 0) {
		wsctl_err("cannot find the wsfs daemon (set WSFS_DAEMON): %s",
			  strerror(-rc));
		return WSCTL_DAEMON;
	}
	opts = daemon_options(reg, d);
	if (opts == NULL) {
		wsctl_err("out of memory");
		return WSCTL_ERR;
	}
	argv[n++] = "wsfs";
	if (foreground)
		argv[n++] = "-f";
	argv[n++] = "-o";
	argv[n++] = opts;
	argv[n++] = (char *)mountpoint;
	argv[n] = NULL;
	if (foreground) {
		fflush(NULL);
		execv(daemon, argv);
		wsctl_err("cannot run %s: %s", daemon, strerror(errno));
		free(opts);
		return WSCTL_DAEMON;
	}
	rc = run_detached(d->name, daemon, argv);
	free(opts);
	return rc;
}

int cmd_mount(const struct wsctl *ctx, int argc, char **argv)
{
	const char *pos[2] = { NULL, NULL }, *name, *mp_arg;
	int fg = 0, rc;
	const struct wsctl_flag flags[] = {
		{ "--foreground", NULL, &fg }, { NULL, NULL, NULL },
	};
	char mountpoint[PATH_MAX];
	struct registry *reg;
	struct ws_def d;

	rc = wsctl_parse_flags(argc, argv, flags, pos, 1, 2);
	if (rc != 0)
		return rc < 0 ? WSCTL_OK : rc;
	name = pos[0];
	mp_arg = pos[1];
	rc = wsctl_open_registry_rw(ctx, &reg);
	if (rc != 0)
		return rc;
	rc = wsdef_get(reg, name, &d);
	if (rc < 0) {
		if (rc == -ENOENT)
			wsctl_err("no workspace named '%s' (declare it with "
				  "wsctl create)", name);
		else
			wsctl_err("cannot read workspace '%s': %s", name,
				  strerror(-rc));
		registry_close(reg);
		return rc == -ENOENT ? WSCTL_NOENT : WSCTL_ERR;
	}
	rc = already_mounted(reg, name);
	if (rc == WSCTL_OK) {
		if (mp_arg != NULL)
			snprintf(mountpoint, sizeof(mountpoint), "%s", mp_arg);
		else if (wsdef_mountpoint(reg, &d, mountpoint,
					  sizeof(mountpoint)) < 0)
			rc = WSCTL_USAGE;
	}
	if (rc == WSCTL_OK && mp_arg == NULL && d.mountpoint == NULL)
		rc = make_default_parent(reg);
	if (rc == WSCTL_OK)
		rc = prepare_mountpoint(name, mountpoint);
	if (rc == WSCTL_OK)
		rc = start(reg, &d, mountpoint, fg);
	if (rc == WSCTL_OK)
		printf("mounted %s at %s\n", name, mountpoint);
	wsdef_free(&d);
	registry_close(reg);
	return rc;
}
