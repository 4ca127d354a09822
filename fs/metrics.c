/*
** The Prometheus metrics file (-o metrics=FILE, -o metrics_interval=SECS).
**
** The daemon keeps FILE current in the Prometheus text exposition format,
** version 0.0.4, the convention of node_exporter's textfile collector: the
** operator points the collector's directory at FILE's directory and names
** FILE something.prom.  It is written once before the mount is reported
** ready, every interval after that, and once more when the mount ends.
**
** Where the figures come from.  The file is made from the very replies the
** control socket gives to "status" and "quota" (daemon.c hands us the
** function that writes them), parsed back from their "key value" lines.
** So a figure in the file is the figure `wsctl status --json` or `wsctl
** quota show --json` shows at the same moment by construction, not by
** keeping two lists of counters in step, and exporting a new status key
** is one line in the family table below.
**
** Why a thread.  Gathering the figures takes the locks a status request
** takes (inode table, lock table, audit queue) and the write may wait on a
** slow disk; neither belongs on a FUSE worker.  A thread of its own sleeps
** on a condition variable on CLOCK_MONOTONIC (a clock step neither stalls
** nor floods it) and wakes every interval, or at once when asked to stop.
** It holds each lock only as long as one status reply does.
**
** Why rename.  A scraper reads whenever it likes.  The text is built in
** memory, written to FILE.tmp.<pid> in the same directory (the collector
** reads only *.prom, so it never sees the temporary) and renamed over FILE:
** rename(2) within one directory is atomic, so a reader opens either the
** old file or the new one, whole.  No fsync: the file is rewritten within
** seconds, and a crash that loses the last copy loses nothing a scrape
** needs.  The file is 0644: node_exporter seldom runs as root, and nothing
** in it is secret (paths and counts).
**
** At unmount the file is rewritten with wsfs_mounted 0 and the final
** counters, not removed.  node_exporter serves whatever the directory
** holds, so a removed file would drop the last interval's work from the
** counters and make a clean unmount look like a workspace that never
** existed; with the final file, "unmounted" (wsfs_mounted 0) and "the
** daemon died" (wsfs_mounted 1 in a file whose mtime,
** node_textfile_mtime_seconds, has stopped) are told apart.  Removing the
** file of a workspace that is gone for good is the operator's call.
**
** Naming follows the Prometheus conventions: prefix wsfs_, base units
** (bytes, seconds), _total on counters, the label workspace="NAME" on
** every sample so that many workspaces can share one collector directory,
** and op= and errno= on the two families broken down that way.  Every op
** and every errno of the denial table (stats.c) is written, zero or not,
** so that rate() has a starting point.  A limit that is not set is left
** out rather than written as +Inf: used / limit then yields no series
** instead of a misleading 0.  Audit families are absent with -o audit=off,
** and the last checkpoint's time until there is one.
*/
#include "metrics.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "stats.h"

/* One "key value" reply, split in place. */
struct kv_reply {
	char *text;
	size_t len;
	struct kv {
		const char *key;
		const char *val;
	} *kv;
	size_t n;
};

enum reply_id { FROM_STATUS, FROM_QUOTA };

enum conversion {
	AS_IS,		/* the value as the daemon wrote it */
	LIMIT,		/* as is, but left out when "none" */
	NS_TO_SECONDS,	/* nanoseconds to seconds; left out when 0 */
};

/* The families that are one sample taken from one key. */
static const struct family {
	const char *name;
	const char *type;
	enum reply_id from;
	const char *key;
	enum conversion conv;
	const char *help;
} families[] = {
	{ "wsfs_start_time_seconds", "gauge", FROM_STATUS, "start_time", AS_IS,
	  "When the daemon started, in seconds since the epoch." },
	{ "wsfs_uptime_seconds", "gauge", FROM_STATUS, "uptime_s", AS_IS,
	  "Seconds since the daemon started." },
	{ "wsfs_quota_used_bytes", "gauge", FROM_QUOTA, "bytes_used", AS_IS,
	  "Bytes charged to the workspace's quota." },
	{ "wsfs_quota_limit_bytes", "gauge", FROM_QUOTA, "bytes_limit", LIMIT,
	  "Hard byte limit (absent when there is none)." },
	{ "wsfs_quota_soft_limit_bytes", "gauge", FROM_QUOTA, "bytes_soft",
	  LIMIT, "Soft byte limit (absent when there is none)." },
	{ "wsfs_quota_used_inodes", "gauge", FROM_QUOTA, "inodes_used", AS_IS,
	  "Inodes charged to the workspace's quota." },
	{ "wsfs_quota_limit_inodes", "gauge", FROM_QUOTA, "inodes_limit", LIMIT,
	  "Hard inode limit (absent when there is none)." },
	{ "wsfs_quota_soft_limit_inodes", "gauge", FROM_QUOTA, "inodes_soft",
	  LIMIT, "Soft inode limit (absent when there is none)." },
	{ "wsfs_read_bytes_total", "counter", FROM_STATUS, "bytes_read", AS_IS,
	  "Bytes read through the mount." },
	{ "wsfs_written_bytes_total", "counter", FROM_STATUS, "bytes_written",
	  AS_IS, "Bytes written through the mount." },
	{ "wsfs_open_files", "gauge", FROM_STATUS, "open_files", AS_IS,
	  "Files open through the mount." },
	{ "wsfs_open_dirs", "gauge", FROM_STATUS, "open_dirs", AS_IS,
	  "Directories open through the mount." },
	{ "wsfs_locks_held", "gauge", FROM_STATUS, "locks.held", AS_IS,
	  "Advisory lock ranges and flocks held through the mount." },
	{ "wsfs_locks_waiting", "gauge", FROM_STATUS, "locks.waiting", AS_IS,
	  "Blocking lock requests waiting." },
	{ "wsfs_shared_bytes", "gauge", FROM_STATUS, "shared.bytes", AS_IS,
	  "Bytes this workspace created in shared directories." },
	{ "wsfs_shared_inodes", "gauge", FROM_STATUS, "shared.inodes", AS_IS,
	  "Inodes this workspace created in shared directories." },
	{ "wsfs_cached_inodes", "gauge", FROM_STATUS, "cached_inodes", AS_IS,
	  "Nodes in the daemon's inode table." },
	{ "wsfs_cached_fds", "gauge", FROM_STATUS, "cached_fds", AS_IS,
	  "Backing descriptors the daemon holds." },
	{ "wsfs_fd_cache_limit", "gauge", FROM_STATUS, "fd_cache_limit", AS_IS,
	  "Most backing descriptors the daemon keeps cached." },
	{ "wsfs_audit_queued_records", "gauge", FROM_STATUS, "audit.queued",
	  AS_IS, "Audit records waiting for the writer." },
	{ "wsfs_audit_written_records_total", "counter", FROM_STATUS,
	  "audit.written", AS_IS, "Audit records committed to audit.db." },
	{ "wsfs_audit_lost_records_total", "counter", FROM_STATUS, "audit.lost",
	  AS_IS, "Audit records lost while audit.db could not be written." },
	{ "wsfs_audit_failing", "gauge", FROM_STATUS, "audit.failing", AS_IS,
	  "1 while audit.db cannot be written." },
	{ "wsfs_audit_checkpoints_total", "counter", FROM_STATUS,
	  "audit.checkpoints", AS_IS, "Signed audit checkpoints written." },
	{ "wsfs_audit_last_checkpoint_timestamp_seconds", "gauge", FROM_STATUS,
	  "audit.last_checkpoint_ns", NS_TO_SECONDS,
	  "When the last audit checkpoint was signed, in seconds since the "
	  "epoch." },
};

static struct {
	pthread_mutex_t mu;
	pthread_cond_t wake;	/* on CLOCK_MONOTONIC */
	pthread_t thread;
	int started;
	int stopping;
	char *path;
	char *tmp_path;
	unsigned int interval_s;
	metrics_source_fn source;
	void *arg;
	int failing;		/* the last write failed (logged once a streak) */
} M = { .mu = PTHREAD_MUTEX_INITIALIZER };

/* ---- reading the replies ------------------------------------------------ */

/* Splits R->text into key/value pairs; lines without a space are skipped. */
static int kv_split(struct kv_reply *r)
{
	size_t lines = 1;
	char *line, *nl, *sp;

	for (size_t i = 0; i < r->len; i++)
		if (r->text[i] == '\n')
			lines++;
	r->kv = calloc(lines, sizeof(*r->kv));
	if (!r->kv)
		return -ENOMEM;
	for (line = r->text; line && *line; line = nl) {
		nl = strchr(line, '\n');
		if (nl)
			*nl++ = '\0';
		sp = strchr(line, ' ');
		if (!sp)
			continue;
		*sp = '\0';
		r->kv[r->n].key = line;
		r->kv[r->n].val = sp + 1;
		r->n++;
	}
	return 0;
}

static const char *kv_get(const struct kv_reply *r, const char *key)
{
	for (size_t i = 0; i < r->n; i++)
		if (strcmp(r->kv[i].key, key) == 0)
			return r->kv[i].val;
	return NULL;
}

static void kv_free(struct kv_reply *r)
{
	free(r->text);
	free(r->kv);
	memset(r, 0, sizeof(*r));
}

/* Asks the daemon for its "status" and "quota" replies. */
static int take_snapshot(struct kv_reply *status, struct kv_reply *quota)
{
	FILE *st = open_memstream(&status->text, &status->len);
	FILE *qt = st ? open_memstream(&quota->text, &quota->len) : NULL;
	int r = 0;

	if (!qt) {
		if (st)
			fclose(st);
		return -ENOMEM;
	}
	M.source(st, qt, M.arg);
	if (fclose(st) != 0)
		r = -ENOMEM;
	if (fclose(qt) != 0)
		r = -ENOMEM;
	if (r == 0)
		r = kv_split(status);
	if (r == 0)
		r = kv_split(quota);
	return r;
}

/* ---- writing the exposition format --------------------------------------- */

/* A decimal the way the daemon writes numbers: -?D+(.D+)?, which is also a
** valid Prometheus value. */
static int is_decimal(const char *s)
{
	const char *digits;

	if (*s == '-')
		s++;
	for (digits = s; *s >= '0' && *s <= '9'; s++)
		;
	if (s == digits)
		return 0;
	if (*s == '.') {
		for (digits = ++s; *s >= '0' && *s <= '9'; s++)
			;
		if (s == digits)
			return 0;
	}
	return *s == '\0';
}

/* Length of the well-formed UTF-8 sequence at S (RFC 3629's table), or 0. */
static size_t utf8_len(const unsigned char *s)
{
	unsigned char lo = 0x80, hi = 0xBF;
	size_t len;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xC2 && s[0] <= 0xDF)
		len = 2;
	else if (s[0] >= 0xE0 && s[0] <= 0xEF)
		len = 3;
	else if (s[0] >= 0xF0 && s[0] <= 0xF4)
		len = 4;
	else
		return 0;
	if (s[0] == 0xE0)
		lo = 0xA0;
	else if (s[0] == 0xED)
		hi = 0x9F;
	else if (s[0] == 0xF0)
		lo = 0x90;
	else if (s[0] == 0xF4)
		hi = 0x8F;
	if (s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < len; i++)
		if (s[i] < 0x80 || s[i] > 0xBF)
			return 0;
	return len;
}

/* A label value: the format escapes backslash, double quote and newline,
** and must be UTF-8; a path is bytes, so a byte that is not part of a
** well-formed sequence becomes U+FFFD. */
static void put_label_value(FILE *out, const char *value)
{
	const unsigned char *s = (const unsigned char *)value;
	size_t n;

	while (*s) {
		if (*s == '\\' || *s == '"') {
			fputc('\\', out);
			fputc(*s++, out);
		} else if (*s == '\n') {
			fputs("\\n", out);
			s++;
		} else if ((n = utf8_len(s)) == 0) {
			fputs("\xEF\xBF\xBD", out);
			s++;
		} else {
			fwrite(s, 1, n, out);
			s += n;
		}
	}
}

struct label {
	const char *name;
	const char *value;
};

static void put_header(FILE *out, const char *name, const char *type,
		       const char *help)
{
	fprintf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* One sample: workspace="WS" first, then the N labels of EXTRA. */
static void put_sample(FILE *out, const char *name, const char *ws,
		       const struct label *extra, size_t n, const char *value)
{
	fprintf(out, "%s{workspace=\"", name);
	put_label_value(out, ws);
	fputc('"', out);
	for (size_t i = 0; i < n; i++) {
		fprintf(out, ",%s=\"", extra[i].name);
		put_label_value(out, extra[i].value);
		fputc('"', out);
	}
	fprintf(out, "} %s\n", value);
}

/* The value of F, or NULL when F has no sample this time. BUF holds a
** converted value. */
static const char *family_value(const struct family *f,
				const struct kv_reply *status,
				const struct kv_reply *quota, char *buf,
				size_t len)
{
	const char *v = kv_get(f->from == FROM_STATUS ? status : quota, f->key);
	size_t digits;

	if (!v)
		return NULL;
	if (f->conv == LIMIT && strcmp(v, "none") == 0)
		return NULL;
	if (f->conv == NS_TO_SECONDS) {
		digits = strspn(v, "0123456789");
		if (digits == 0 || v[digits] != '\0' || strspn(v, "0") == digits)
			return NULL;
		if (digits <= 9)
			snprintf(buf, len, "0.%.*s%s", (int)(9 - digits),
				 "000000000", v);
		else
			snprintf(buf, len, "%.*s.%s", (int)(digits - 9), v,
				 v + digits - 9);
		return buf;
	}
	return is_decimal(v) ? v : NULL;
}

static void put_families(FILE *out, const char *ws, int mounted,
			 const struct kv_reply *status,
			 const struct kv_reply *quota)
{
	struct label info[2] = {
		{ "mountpoint", kv_get(status, "mountpoint") },
		{ "upper", kv_get(status, "upper") },
	};
	char key[64], buf[64];
	const char *v;

	put_header(out, "wsfs_mounted", "gauge",
		   "1 while the workspace is mounted; 0 in the file written at "
		   "unmount.");
	put_sample(out, "wsfs_mounted", ws, NULL, 0, mounted ? "1" : "0");
	put_header(out, "wsfs_info", "gauge",
		   "Always 1; the labels say where the workspace is.");
	for (size_t i = 0; i < 2; i++)
		if (!info[i].value)
			info[i].value = "";
	put_sample(out, "wsfs_info", ws, info, 2, "1");

	for (size_t i = 0; i < sizeof(families) / sizeof(families[0]); i++) {
		const struct family *f = &families[i];

		v = family_value(f, status, quota, buf, sizeof(buf));
		if (!v)
			continue;
		put_header(out, f->name, f->type, f->help);
		put_sample(out, f->name, ws, NULL, 0, v);
	}

	put_header(out, "wsfs_operations_total", "counter",
		   "FUSE requests served, by operation.");
	for (int op = 0; op < OP__COUNT; op++) {
		struct label l = { "op", ws_op_name((enum ws_op)op) };

		snprintf(key, sizeof(key), "ops.%s", l.value);
		v = kv_get(status, key);
		put_sample(out, "wsfs_operations_total", ws, &l, 1,
			   v && is_decimal(v) ? v : "0");
	}
	put_header(out, "wsfs_denials_total", "counter",
		   "Requests refused, by errno (see wsfs(8), METRICS).");
	for (int d = 0; d < DENIAL__COUNT; d++) {
		struct label l = { "errno", ws_denial_name((enum ws_denial)d) };

		snprintf(key, sizeof(key), "denied.%s", l.value);
		v = kv_get(status, key);
		put_sample(out, "wsfs_denials_total", ws, &l, 1,
			   v && is_decimal(v) ? v : "0");
	}
}

/* ---- the file ------------------------------------------------------------ */

static int write_all(int fd, const char *p, size_t len)
{
	ssize_t n;

	while (len > 0) {
		n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int replace_file(const char *text, size_t len)
{
	int fd, r;

	fd = open(M.tmp_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC |
		  O_NOFOLLOW, 0644);
	if (fd < 0)
		return -errno;
	r = write_all(fd, text, len);
	if (close(fd) < 0 && r == 0)
		r = -errno;
	if (r == 0 && rename(M.tmp_path, M.path) < 0)
		r = -errno;
	if (r < 0)
		unlink(M.tmp_path);
	return r;
}

/* Builds the file's text from a fresh snapshot and puts it in place. */
static int write_metrics(int mounted)
{
	struct kv_reply status, quota;
	char *text = NULL;
	size_t len = 0;
	const char *ws;
	FILE *out;
	int r;

	memset(&status, 0, sizeof(status));
	memset(&quota, 0, sizeof(quota));
	r = take_snapshot(&status, &quota);
	if (r < 0)
		goto out;
	out = open_memstream(&text, &len);
	if (!out) {
		r = -ENOMEM;
		goto out;
	}
	ws = kv_get(&status, "name");
	put_families(out, ws ? ws : "", mounted, &status, &quota);
	if (fclose(out) != 0) {
		r = -ENOMEM;
		goto out;
	}
	r = replace_file(text, len);
out:
	free(text);
	kv_free(&status);
	kv_free(&quota);
	return r;
}

/* Logs the first failure of a streak and the recovery, not every retry. */
static void note_result(int r)
{
	if (r < 0 && !M.failing)
		ws_log("metrics: cannot write %s: %s (will retry)", M.path,
		       strerror(-r));
	else if (r == 0 && M.failing)
		ws_log("metrics: %s is written again", M.path);
	M.failing = r < 0;
}

static void *metrics_main(void *unused)
{
	struct timespec next, now;
	int r;

	(void)unused;
	clock_gettime(CLOCK_MONOTONIC, &next);
	pthread_mutex_lock(&M.mu);
	while (!M.stopping) {
		next.tv_sec += M.interval_s;
		/* After a write slower than the interval, start afresh
		** instead of catching up with a burst. */
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (next.tv_sec < now.tv_sec)
			next = now;
		r = 0;
		while (!M.stopping && r != ETIMEDOUT)
			r = pthread_cond_timedwait(&M.wake, &M.mu, &next);
		if (M.stopping)
			break;
		pthread_mutex_unlock(&M.mu);
		note_result(write_metrics(1));
		pthread_mutex_lock(&M.mu);
	}
	pthread_mutex_unlock(&M.mu);
	return NULL;
}

static void forget_config(void)
{
	free(M.path);
	free(M.tmp_path);
	M.path = M.tmp_path = NULL;
}

int metrics_check_path(const char *path, char *err, size_t errlen)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(path, '/');
	struct stat st;

	if (path[0] != '/') {
		snprintf(err, errlen, "metrics=%s: give an absolute path", path);
		return -1;
	}
	if (strlen(path) >= PATH_MAX - 32 || slash[1] == '\0') {
		snprintf(err, errlen, "metrics=%s: not a file name", path);
		return -1;
	}
	snprintf(dir, sizeof(dir), "%.*s", slash == path ? 1 : (int)(slash - path),
		 path);
	if (stat(dir, &st) < 0) {
		snprintf(err, errlen, "metrics=%s: directory %s: %s", path, dir,
			 strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "metrics=%s: %s is not a directory", path,
			 dir);
		return -1;
	}
	if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "metrics=%s: is a directory", path);
		return -1;
	}
	return 0;
}

int metrics_start(const char *path, unsigned int interval_s,
		  metrics_source_fn source, void *arg, char *err, size_t errlen)
{
	pthread_condattr_t attr;
	sigset_t all, old;
	int r;

	M.path = strdup(path);
	if (!M.path || asprintf(&M.tmp_path, "%s.tmp.%d", path,
				(int)getpid()) < 0) {
		M.tmp_path = NULL;
		forget_config();
		snprintf(err, errlen, "metrics: out of memory");
		return -1;
	}
	M.interval_s = interval_s;
	M.source = source;
	M.arg = arg;
	M.stopping = 0;
	r = write_metrics(1);
	if (r < 0) {
		snprintf(err, errlen, "cannot write the metrics file %s: %s",
			 path, strerror(-r));
		forget_config();
		return -1;
	}
	if ((r = pthread_condattr_init(&attr)) != 0 ||
	    (r = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC)) != 0 ||
	    (r = pthread_cond_init(&M.wake, &attr)) != 0) {
		snprintf(err, errlen, "metrics: %s", strerror(r));
		forget_config();
		return -1;
	}
	pthread_condattr_destroy(&attr);
	/* The stop signals belong to the daemon's signal thread. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	r = pthread_create(&M.thread, NULL, metrics_main, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r != 0) {
		snprintf(err, errlen, "cannot start the metrics thread: %s",
			 strerror(r));
		pthread_cond_destroy(&M.wake);
		forget_config();
		return -1;
	}
	M.started = 1;
	return 0;
}

void metrics_stop(void)
{
	int r;

	if (!M.started)
		return;
	pthread_mutex_lock(&M.mu);
	M.stopping = 1;
	pthread_cond_signal(&M.wake);
	pthread_mutex_unlock(&M.mu);
	pthread_join(M.thread, NULL);
	pthread_cond_destroy(&M.wake);
	M.started = 0;
	r = write_metrics(0);
	if (r < 0)
		ws_log("metrics: cannot write the final %s: %s", M.path,
		       strerror(-r));
	forget_config();
}
