/*
** The daemon's lifecycle.
**
** `wsfs` must return 0 only when the mount is live and must say why when it
** cannot mount, so the detach happens FIRST: the parent forks at once and
** waits on a pipe.  The child does all the work that can fail (state dir,
** name claim, inode table, mount, control socket), reporting errors on the
** inherited stderr, and writes one byte to the pipe when the mount is up.
** The parent then exits 0; if the child dies instead, the parent exits with
** the child's status.  Nothing is shared across the fork: SQLite and the
** /proc/self descriptors are opened in the child.  A service manager
** ($NOTIFY_SOCKET) hears READY=1 at that same moment, from the parent or,
** in the foreground, from the daemon, and STOPPING=1 when the session ends
** (sd_notify.c).
**
** The end of a mount is the same whatever causes it: fusermount3 -u and
** umount end the session loop; SIGTERM, SIGINT and SIGHUP are taken by a
** thread of ours with sigwait(), which asks the loop to exit and then pokes
** the mount with a statfs so that a worker blocked reading /dev/fuse wakes
** up and sees it.  (libfuse's own handlers leave a signal that is ignored
** when the daemon starts, as under nohup, ignored, and a worker that misses
** the exit flag sleeps until the next request.)
** Teardown then stops the control socket, unmounts, and releases the name.
** A SIGKILLed daemon leaves its name lock to the kernel (released), its
** registry row (stale, detected by the lock) and a dead mount, which the
** next daemon with the same name and mountpoint detaches.
*/
#include "audit_event.h"
#include "cred.h"
#include "account_shared.h"
#include "ctl_server.h"
#include "lock_table.h"
#include "lock_wait.h"
#include "daemon.h"
#include "inode.h"
#include "layer_mount.h"
#include "log.h"
#include "metrics.h"
#include "quota_mount.h"
#include "registry.h"
#include "sd_notify.h"
#include "setid.h"
#include "stats.h"

#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct ws_daemon {
	struct ws_options *opt;
	sigset_t stop_signals;
	pthread_t signal_thread;
	int signal_thread_started;
	struct registry *reg;
	struct fuse_session *se;
	struct ctl_server *ctl;
	struct timespec started;
	time_t start_time;
	char socket_path[PATH_MAX];
	int claimed;
	int quota_started;
	int audit_started;
	const char *stop_reason;	/* the signal's name, set by signal_main */
	int mounted;
	int ready_fd;
};

/* ---- detaching ---------------------------------------------------------- */

/* Returns in the child (with *READY_FD set) or exits in the parent. */
static void detach(int *ready_fd)
{
	int pipefd[2];
	pid_t pid;
	char byte;
	ssize_t n;
	int status;

	if (pipe2(pipefd, O_CLOEXEC) < 0) {
		fprintf(stderr, "wsfs: pipe: %s\n", strerror(errno));
		exit(WS_EXIT_SETUP);
	}
	pid = fork();
	if (pid < 0) {
		fprintf(stderr, "wsfs: fork: %s\n", strerror(errno));
		exit(WS_EXIT_SETUP);
	}
	if (pid == 0) {
		close(pipefd[0]);
		*ready_fd = pipefd[1];
		if (setsid() < 0)
			fprintf(stderr, "wsfs: setsid: %s\n", strerror(errno));
		return;
	}
	close(pipefd[1]);
	do {
		n = read(pipefd[0], &byte, 1);
	} while (n < 0 && errno == EINTR);
	if (n == 1) {
		/* We are the service manager's main process, not the daemon. */
		status = sdnotify_ready(pid);
		if (status < 0)
			fprintf(stderr, "wsfs: warning: cannot notify the service "
				"manager: %s\n", strerror(-status));
		_exit(WS_EXIT_OK);
	}
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (WIFEXITED(status) && WEXITSTATUS(status) != 0)
		_exit(WEXITSTATUS(status));
	fprintf(stderr, "wsfs: the daemon ended before the mount was ready\n");
	_exit(WS_EXIT_SETUP);
}

/* From here on the daemon's messages go to <state>/log/<name>.log. */
static int redirect_output(struct ws_daemon *d)
{
	char dir[PATH_MAX], path[PATH_MAX + 64];
	int null_fd, log_fd;

	snprintf(dir, sizeof(dir), "%s/log", d->opt->state);
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return -errno;
	snprintf(path, sizeof(path), "%s/%s.log", dir, d->opt->name);
	null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null_fd < 0)
		return -errno;
	log_fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (log_fd < 0) {
		int err = -errno;

		close(null_fd);
		return err;
	}
	if (dup2(null_fd, STDIN_FILENO) < 0 || dup2(log_fd, STDOUT_FILENO) < 0 ||
	    dup2(log_fd, STDERR_FILENO) < 0) {
		int err = -errno;

		close(null_fd);
		close(log_fd);
		return err;
	}
	close(null_fd);
	close(log_fd);
	return 0;
}

static int signal_ready(struct ws_daemon *d)
{
	int err;

	if (d->ready_fd < 0)
		return 0;
	err = redirect_output(d);
	if (err < 0) {
		fprintf(stderr, "wsfs: cannot open the log under %s/log: %s\n",
			d->opt->state, strerror(-err));
		return err;
	}
	if (chdir("/") < 0)
		ws_log("chdir /: %s", strerror(errno));
	if (write(d->ready_fd, "R", 1) != 1)
		ws_log("cannot tell the parent we are ready: %s", strerror(errno));
	close(d->ready_fd);
	d->ready_fd = -1;
	return 0;
}

/* ---- control socket ----------------------------------------------------- */

static double seconds_since(const struct timespec *t0)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - t0->tv_sec) +
	       (double)(now.tv_nsec - t0->tv_nsec) / 1e9;
}

/* LAYERS: with the layer stack and ephemeral usage, which costs a scan of
** each ephemeral tree and is left out of the metrics file. */
static void write_status(struct ws_daemon *d, FILE *out, int layers)
{
	uint64_t held, waiting;

	fprintf(out, "name %s\n", d->opt->name);
	fprintf(out, "mountpoint %s\n", d->opt->mountpoint);
	fprintf(out, "upper %s\n", d->opt->upper);
	fprintf(out, "pid %d\n", (int)getpid());
	fprintf(out, "start_time %lld\n", (long long)d->start_time);
	fprintf(out, "uptime_s %.3f\n", seconds_since(&d->started));
	fprintf(out, "read_only %d\n", d->opt->read_only);
	stats_write_kv(out);
	fprintf(out, "cached_inodes %zu\n", itab_count());
	fprintf(out, "cached_fds %zu\n", itab_cached_fds());
	fprintf(out, "fd_cache_limit %zu\n", itab_fd_cap());
	locks_counts(&held, &waiting);
	fprintf(out, "locks.held %" PRIu64 "\n", held);
	fprintf(out, "locks.waiting %" PRIu64 "\n", waiting);
	shared_usage(&held, &waiting);
	fprintf(out, "shared.bytes %" PRIu64 "\n", held);
	fprintf(out, "shared.inodes %" PRIu64 "\n", waiting);
	if (layers)
		lmount_status(out);
	fprintf(out, "audit.level %s\n", d->opt->audit_level == AUDIT_FULL ? "full" :
		d->opt->audit_level == AUDIT_META ? "meta" : "off");
	if (d->audit_started)
		audit_writer_write_kv(out);
}

/* An operator's quota change goes on the workspace's audit chain with the
** identity the kernel vouches for on the socket. */
static int quota_set(const char *args, FILE *out, char *errmsg, size_t errlen)
{
	struct ucred peer;
	char detail[512];
	int r = qmount_ctl_set(args, out, errmsg, errlen);

	if (ctl_server_peer(&peer) < 0) {
		peer.uid = (uid_t)-1;
		peer.gid = (gid_t)-1;
		peer.pid = 0;
	}
	snprintf(detail, sizeof(detail), "%s%s%s", args, r < 0 ? " error=" : "",
		 r < 0 ? audit_errname(r) : "");
	audit_peer_event("quota-set", peer.uid, peer.gid, peer.pid, detail);
	return r;
}

static int handle_request(const char *request, FILE *out, char *errmsg,
			  size_t errlen, void *arg)
{
	struct ws_daemon *d = arg;

	if (strcmp(request, "status") == 0) {
		write_status(d, out, 1);
		return 0;
	}
	if (strcmp(request, "quota") == 0)
		return qmount_ctl_show(out);
	if (strcmp(request, "locks") == 0) {
		locks_write_kv(out);
		return 0;
	}
	if (strncmp(request, "quota-set ", 10) == 0)
		return quota_set(request + 10, out, errmsg, errlen);
	snprintf(errmsg, errlen, "unknown command '%.64s'", request);
	return -EINVAL;
}

/* The metrics file is made from the same replies (metrics.c). */
static void metrics_source(FILE *status, FILE *quota, void *arg)
{
	write_status(arg, status, 0);
	qmount_ctl_show(quota);
}

/* ---- setup and teardown ------------------------------------------------- */

static int claim_name(struct ws_daemon *d)
{
	struct ws_mount m;
	char err[512];
	int r;

	r = registry_open(d->opt->state, 1, &d->reg, err, sizeof(err));
	if (r < 0) {
		fprintf(stderr, "wsfs: %s\n", err);
		return r;
	}
	r = registry_run_path(d->reg, d->opt->name, ".sock", d->socket_path,
			      sizeof(d->socket_path));
	if (r < 0) {
		fprintf(stderr, "wsfs: state directory path too long\n");
		return r;
	}
	memset(&m, 0, sizeof(m));
	snprintf(m.name, sizeof(m.name), "%s", d->opt->name);
	snprintf(m.mountpoint, sizeof(m.mountpoint), "%s", d->opt->mountpoint);
	snprintf(m.upper, sizeof(m.upper), "%s", d->opt->upper);
	snprintf(m.socket, sizeof(m.socket), "%s", d->socket_path);
	m.pid = getpid();
	m.start_time = d->start_time;
	r = registry_claim(d->reg, &m, err, sizeof(err));
	if (r < 0) {
		fprintf(stderr, "wsfs: %s\n", err);
		return r;
	}
	d->claimed = 1;
	return 0;
}

/* mountinfo escapes space, tab, newline and backslash as \ooo. */
static void unescape_octal(char *s)
{
	char *out = s;

	for (; *s; s++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' &&
		    s[2] <= '7' && s[3] >= '0' && s[3] <= '7') {
			*out++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
			s += 3;
		} else {
			*out++ = *s;
		}
	}
	*out = '\0';
}

/* If LINE (one /proc/self/mountinfo entry) is a wsfs mount at MOUNTPOINT,
** copies its workspace name to NAME and returns 1. Fields: id parent
** maj:min root mountpoint opts... - type source superopts. */
static int wsfs_mount_at(char *line, const char *mountpoint, char *name,
			 size_t namelen)
{
	char *save = NULL, *field, *mnt = NULL, *type, *source;
	int i = 0;

	for (field = strtok_r(line, " ", &save); field && strcmp(field, "-") != 0;
	     field = strtok_r(NULL, " ", &save))
		if (i++ == 4)
			mnt = field;
	type = strtok_r(NULL, " ", &save);
	source = strtok_r(NULL, " ", &save);
	if (!mnt || !type || !source || strcmp(type, "fuse.wsfs") != 0 ||
	    strncmp(source, "wsfs:", 5) != 0)
		return 0;
	unescape_octal(mnt);
	unescape_octal(source);
	if (strcmp(mnt, mountpoint) != 0)
		return 0;
	snprintf(name, namelen, "%s", source + 5);
	return 1;
}

/* The name of the topmost wsfs workspace mounted at MOUNTPOINT into NAME;
** returns 0 if there is none. */
static int top_wsfs_mount(const char *mountpoint, char *name, size_t namelen)
{
	char line[4 * PATH_MAX], found[WS_NAME_MAX + 1];
	FILE *f = fopen("/proc/self/mountinfo", "re");
	int any = 0;

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (wsfs_mount_at(line, mountpoint, found, sizeof(found))) {
			snprintf(name, namelen, "%s", found);
			any = 1;	/* later lines are mounted on top */
		}
	fclose(f);
	return any;
}

/* A daemon killed with SIGKILL leaves its mount behind, answering ENOTCONN
** once the kernel has closed its /dev/fuse. We hold the name's lock now, so
** every mount of this name at our mountpoint belongs to a dead daemon, even
** one whose descriptors the kernel has not finished closing: those are
** detached. Another workspace's mount there is refused, not hidden. */
static int clear_mountpoint(const char *mountpoint, const char *name)
{
	char top[WS_NAME_MAX + 1];

	while (top_wsfs_mount(mountpoint, top, sizeof(top))) {
		if (strcmp(top, name) != 0) {
			fprintf(stderr, "wsfs: %s is in use by workspace '%s'\n",
				mountpoint, top);
			return -1;
		}
		if (umount2(mountpoint, MNT_DETACH) < 0) {
			fprintf(stderr, "wsfs: cannot detach the dead mount of %s "
				"at %s: %s\n", name, mountpoint, strerror(errno));
			return -1;
		}
		ws_log("detached a dead mount of %s at %s", name, mountpoint);
	}
	return 0;
}

/* Created before detaching: it only parses libfuse's options, so a bad
** option is reported as a usage error by the process the caller waits for. */
static int new_session(struct ws_daemon *d, struct fuse_args *args,
		       const struct fuse_lowlevel_ops *ops)
{
	d->se = fuse_session_new(args, ops, sizeof(*ops), d);
	if (!d->se) {
		fprintf(stderr, "wsfs: invalid libfuse options (see wsfs --help)\n");
		return -1;
	}
	return 0;
}

static void *signal_main(void *arg)
{
	struct ws_daemon *d = arg;
	struct statfs sfs;
	int sig;

	if (sigwait(&d->stop_signals, &sig) != 0)
		return NULL;
	ws_log("%s: unmounting", strsignal(sig));
	__atomic_store_n(&d->stop_reason, sig == SIGTERM ? "SIGTERM" :
			 sig == SIGINT ? "SIGINT" : "SIGHUP", __ATOMIC_RELEASE);
	fuse_session_exit(d->se);
	if (statfs(d->opt->mountpoint, &sfs) < 0)
		ws_log("statfs after %s: %s", strsignal(sig), strerror(errno));
	return NULL;
}

/* Called before any other thread exists, so every thread libfuse starts
** inherits the blocked mask and only signal_main() receives the signals. */
static int block_stop_signals(struct ws_daemon *d)
{
	static const int sigs[] = { SIGTERM, SIGINT, SIGHUP };
	struct sigaction dfl, ign;

	memset(&dfl, 0, sizeof(dfl));
	memset(&ign, 0, sizeof(ign));
	dfl.sa_handler = SIG_DFL;
	ign.sa_handler = SIG_IGN;
	sigemptyset(&d->stop_signals);
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
		if (sigaction(sigs[i], &dfl, NULL) < 0)
			return -errno;
		sigaddset(&d->stop_signals, sigs[i]);
	}
	if (sigaction(SIGPIPE, &ign, NULL) < 0)
		return -errno;
	return -pthread_sigmask(SIG_BLOCK, &d->stop_signals, NULL);
}

static int start_signal_thread(struct ws_daemon *d)
{
	int r = pthread_create(&d->signal_thread, NULL, signal_main, d);

	if (r != 0) {
		fprintf(stderr, "wsfs: cannot start the signal thread: %s\n",
			strerror(r));
		return -1;
	}
	d->signal_thread_started = 1;
	return 0;
}

/* The signal thread may be blocked in sigwait (a normal unmount) or in its
** statfs poke; it holds nothing, so it is cancelled rather than joined on. */
static void stop_signal_thread(struct ws_daemon *d)
{
	if (!d->signal_thread_started)
		return;
	pthread_cancel(d->signal_thread);
	pthread_join(d->signal_thread, NULL);
	d->signal_thread_started = 0;
}

static int start_session(struct ws_daemon *d)
{
	if (clear_mountpoint(d->opt->mountpoint, d->opt->name) < 0)
		return -1;
	if (fuse_session_mount(d->se, d->opt->mountpoint) != 0) {
		fprintf(stderr, "wsfs: cannot mount at %s\n", d->opt->mountpoint);
		return -1;
	}
	d->mounted = 1;
	ws_session = d->se;
	return start_signal_thread(d);
}

/* The ledger must be true before the first request: a scan, if needed,
** runs here, with the caller's terminal still attached for its progress. */
static int start_quota(struct ws_daemon *d)
{
	struct ws_inode *root = itab_root();
	int fd = inode_fd(root), r;

	if (fd < 0) {
		fprintf(stderr, "wsfs: upper directory: %s\n", strerror(-fd));
		return -1;
	}
	r = qmount_start(d->reg, d->opt, fd);
	inode_fd_put(root);
	if (r < 0)
		return -1;
	d->quota_started = 1;
	return 0;
}

/* After the layers are in place (records name paths through them) and
** before the first request, so the mount itself is on the chain. */
static int start_audit(struct ws_daemon *d)
{
	if (audit_events_start(d->opt) < 0)
		return -1;
	d->audit_started = 1;
	return 0;
}

static int start_control(struct ws_daemon *d)
{
	char err[512];

	if (ctl_server_start(d->socket_path, handle_request, d, &d->ctl, err,
			     sizeof(err)) < 0) {
		fprintf(stderr, "wsfs: %s\n", err);
		return -1;
	}
	return 0;
}

static int start_metrics(struct ws_daemon *d)
{
	char err[PATH_MAX + 128];

	if (!d->opt->metrics_file)
		return 0;
	if (metrics_start(d->opt->metrics_file, d->opt->metrics_interval,
			  metrics_source, d, err, sizeof(err)) < 0) {
		fprintf(stderr, "wsfs: %s\n", err);
		return -1;
	}
	return 0;
}

static int open_upper(const struct ws_options *opt, char *err, size_t errlen)
{
	int fd = open(opt->upper, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0) {
		snprintf(err, errlen, "upper directory '%s': %s", opt->upper,
			 strerror(errno));
		return -1;
	}
	if (itab_init(fd, opt->fd_cache, err, errlen) < 0)
		return -1;
	return 0;
}

static int serve(struct ws_daemon *d)
{
	struct fuse_loop_config *cfg;
	int r;

	if (d->opt->singlethread)
		return fuse_session_loop(d->se);
	cfg = fuse_loop_cfg_create();
	if (!cfg) {
		ws_log("cannot allocate the loop configuration");
		return -ENOMEM;
	}
	fuse_loop_cfg_set_clone_fd(cfg, (unsigned int)d->opt->clone_fd);
	/* fuse_parse_cmdline leaves UINT_MAX when max_threads is not given. */
	if (d->opt->max_threads && d->opt->max_threads != UINT_MAX)
		fuse_loop_cfg_set_max_threads(cfg, d->opt->max_threads);
	if (d->opt->max_idle_threads && d->opt->max_idle_threads != UINT_MAX)
		fuse_loop_cfg_set_idle_threads(cfg, d->opt->max_idle_threads);
	r = fuse_session_loop_mt(d->se, cfg);
	fuse_loop_cfg_destroy(cfg);
	return r;
}

static void teardown(struct ws_daemon *d)
{
	if (d->ctl)
		ctl_server_stop(d->ctl);
	if (d->se) {
		/* Waits reply through the session: end them while it lives. */
		lock_wait_shutdown();
		ws_session = NULL;
		if (d->mounted)
			fuse_session_unmount(d->se);
		stop_signal_thread(d);
		fuse_session_destroy(d->se);
	}
	/* No request runs now, and what the figures come from still lives. */
	metrics_stop();
	locks_table_clear();
	lmount_stop(d->quota_started);
	if (d->quota_started)
		shared_unmount();
	if (d->quota_started)
		qmount_stop(__atomic_load_n(&ws_stats.open_files, __ATOMIC_RELAXED));
	if (d->audit_started)
		audit_events_stop();
	if (d->claimed && registry_release(d->reg, d->opt->name) < 0)
		ws_log("could not remove %s from the registry", d->opt->name);
	if (d->reg)
		registry_close(d->reg);
	itab_destroy();
	if (d->ready_fd >= 0)
		close(d->ready_fd);
}

int daemon_run(struct ws_options *opt, struct fuse_args *args,
	       const struct fuse_lowlevel_ops *ops)
{
	struct ws_daemon d;
	char err[512];
	int r, nr, status = WS_EXIT_SETUP;

	memset(&d, 0, sizeof(d));
	d.opt = opt;
	d.ready_fd = -1;
	d.start_time = time(NULL);
	clock_gettime(CLOCK_MONOTONIC, &d.started);
	r = sdnotify_init(opt->name, opt->mountpoint);
	if (r < 0)
		fprintf(stderr, "wsfs: warning: NOTIFY_SOCKET ignored: %s\n",
			strerror(-r));
	if (new_session(&d, args, ops) < 0) {
		status = WS_EXIT_USAGE;
		goto out;
	}
	if (!opt->foreground)
		detach(&d.ready_fd);
	r = block_stop_signals(&d);
	if (r < 0) {
		fprintf(stderr, "wsfs: cannot block the stop signals: %s\n",
			strerror(-r));
		goto out;
	}
	r = cred_init();
	if (r < 0)
		fprintf(stderr, "wsfs: warning: files will be owned by the daemon's "
			"user, not the caller (%s)\n", strerror(-r));
	if (claim_name(&d) < 0 || lmount_prepare(d.reg, opt) < 0)
		goto out;
	if (open_upper(opt, err, sizeof(err)) < 0) {
		fprintf(stderr, "wsfs: %s\n", err);
		goto out;
	}
	if (start_quota(&d) < 0 || lmount_graft(opt) < 0 ||
	    start_audit(&d) < 0 || start_session(&d) < 0 ||
	    start_control(&d) < 0 || start_metrics(&d) < 0 ||
	    signal_ready(&d) < 0)
		goto out;
	/* Detached, the parent has told the manager (see detach()). */
	if (opt->foreground && (r = sdnotify_ready(getpid())) < 0)
		ws_log("cannot notify the service manager: %s", strerror(-r));
	ws_log("workspace %s mounted at %s (upper %s, pid %d)", opt->name,
	       opt->mountpoint, opt->upper, (int)getpid());
	qmount_log_setup();
	lmount_log_setup();
	r = serve(&d);
	if ((nr = sdnotify_stopping()) < 0)
		ws_log("cannot notify the service manager: %s", strerror(-nr));
	/* A signal makes libfuse report its number; that is a clean stop. */
	status = r < 0 ? WS_EXIT_RUNTIME : WS_EXIT_OK;
	ws_log("workspace %s unmounting (%s)", opt->name,
	       r < 0 ? strerror(-r) : "clean");
	audit_events_unmount(r < 0 ? strerror(-r) : __atomic_load_n(&d.stop_reason, __ATOMIC_ACQUIRE) ?
			     d.stop_reason : "clean");
out:
	teardown(&d);
	return status;
}
