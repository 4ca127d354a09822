/*
** The workspace quota over a daemon's life (see quota_mount.h).
**
** Trusting the stored ledger needs proof that nothing changed the tree
** unseen since it was written: the row must say clean (written by a daemon
** that unmounted normally with no open files) and name the same upper
** directory.  Otherwise the tree is scanned before the mount goes live.
** The row is marked unclean before serving, so a crash at any later point
** forces the next scan.
**
** While mounted, a flusher thread writes the ledger every FLUSH_INTERVAL_S
** seconds when it changed: `wsctl quota ls` can then show usage without
** asking every daemon, and no request thread ever waits on SQLite.
*/
#include "quota_mount.h"
#include "audit_event.h"

#include "ledger.h"
#include "log.h"
#include "qparse.h"
#include "qstore.h"
#include "scan.h"
#include "xcharge.h"

#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#define FLUSH_INTERVAL_S 2
#define PROGRESS_AFTER_S 0.3
#define DENIAL_LOG_INTERVAL_S 10

static struct {
	sqlite3 *db;
	char name[QSTORE_NAME_MAX + 1];
	int writeback;
	int syslog;
	pthread_t flusher;
	int flusher_started;
	pthread_mutex_t lock;	/* guards stop and the db handle */
	pthread_cond_t wake;
	int stop;
	uint64_t flushed[2];
	int64_t flushed_since[2];
	int64_t last_denial_log[2];
	char note[512];		/* how the ledger was set up, logged once ready */
} Q = { .lock = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER };

static const char *kind_name(enum quota_kind k)
{
	return k == QUOTA_BYTES ? "byte" : "inode";
}

static void format_amount(enum quota_kind k, uint64_t v, char *buf, size_t len)
{
	if (k == QUOTA_BYTES)
		qformat_size(v, buf, len);
	else
		snprintf(buf, len, "%llu", (unsigned long long)v);
}

/* The log hook: one line per threshold crossing; denials are rate-limited,
** since an agent retrying a write in a loop would flood the log. */
static void log_event(const struct quota_event *ev, void *arg)
{
	char used[32], limit[32];
	int64_t now;

	(void)arg;
	format_amount(ev->kind, ev->used, used, sizeof(used));
	format_amount(ev->kind, ev->limit, limit, sizeof(limit));
	switch (ev->type) {
	case QUOTA_EV_WARN:
		audit_threshold(kind_name(ev->kind), ev->percent, "warn",
				ev->used, ev->limit);
		ws_log("quota warning: workspace %s reached %u%% of its %s limit "
		       "(%s of %s)", Q.name, ev->percent, kind_name(ev->kind),
		       used, limit);
		if (Q.syslog)
			syslog(LOG_WARNING, "workspace %s reached %u%% of its %s "
			       "quota (%s of %s)", Q.name, ev->percent,
			       kind_name(ev->kind), used, limit);
		break;
	case QUOTA_EV_SOFT:
		audit_threshold(kind_name(ev->kind), 100, "soft", ev->used,
				ev->limit);
		ws_log("quota: workspace %s passed its soft %s limit (%s of %s); "
		       "grace period started", Q.name, kind_name(ev->kind), used,
		       limit);
		if (Q.syslog)
			syslog(LOG_WARNING, "workspace %s passed its soft %s quota "
			       "(%s of %s)", Q.name, kind_name(ev->kind), used, limit);
		break;
	case QUOTA_EV_DENIED:
		now = ledger_now();
		if (now - __atomic_load_n(&Q.last_denial_log[ev->kind], __ATOMIC_RELAXED) <
		    DENIAL_LOG_INTERVAL_S)
			break;
		__atomic_store_n(&Q.last_denial_log[ev->kind], now, __ATOMIC_RELAXED);
		ws_log("quota: workspace %s refused growth: %s limit %s, in use %s",
		       Q.name, kind_name(ev->kind), limit, used);
		break;
	}
}

/* ---- mount -------------------------------------------------------------- */

static void merge_options(struct quota_limits *l, const struct ws_options *opt)
{
	const struct quota_limits *o = &opt->quota;

	if (opt->quota_given & QUOTA_OPT_BYTES)
		l->bytes = o->bytes;
	if (opt->quota_given & QUOTA_OPT_INODES)
		l->inodes = o->inodes;
	if (opt->quota_given & QUOTA_OPT_SOFT_BYTES)
		l->soft_bytes = o->soft_bytes;
	if (opt->quota_given & QUOTA_OPT_SOFT_INODES)
		l->soft_inodes = o->soft_inodes;
	if (opt->quota_given & QUOTA_OPT_GRACE)
		l->grace_s = o->grace_s;
	if (opt->quota_given & QUOTA_OPT_WARN) {
		l->nwarn = o->nwarn;
		memcpy(l->warn, o->warn, sizeof(l->warn));
	}
}

static int byte_limits(const struct quota_limits *l)
{
	return quota_limited(l->bytes) || quota_limited(l->soft_bytes);
}

static double elapsed(const struct timespec *t0)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - t0->tv_sec) +
	       (double)(now.tv_nsec - t0->tv_nsec) / 1e9;
}

struct progress {
	struct timespec t0;
	int tty;
	int shown;
};

static void show_progress(const struct scan_result *r, void *arg)
{
	struct progress *p = arg;
	char size[32];

	if (!p->tty || elapsed(&p->t0) < PROGRESS_AFTER_S)
		return;
	qformat_size(r->bytes, size, sizeof(size));
	fprintf(stderr, "\rwsfs: scanning %s: %llu entries, %s   ", Q.name,
		(unsigned long long)r->entries, size);
	p->shown = 1;
}

static int reconcile(int upper_fd, const char *why, struct quota_row *row)
{
	struct scan_result res;
	struct progress p;
	char err[512], size[32];
	int r;

	memset(&p, 0, sizeof(p));
	clock_gettime(CLOCK_MONOTONIC, &p.t0);
	p.tty = isatty(STDERR_FILENO);
	r = quota_scan(upper_fd, show_progress, &p, &res, err, sizeof(err));
	if (p.shown)
		fputc('\n', stderr);
	if (r < 0) {
		fprintf(stderr, "wsfs: cannot count the workspace's usage: %s\n", err);
		return -1;
	}
	row->used_bytes = res.bytes;
	row->used_inodes = res.inodes;
	qformat_size(res.bytes, size, sizeof(size));
	snprintf(Q.note, sizeof(Q.note), "quota: counted %s: %llu inodes, %s "
		 "in %llu entries in %.3f s (%s)", Q.name,
		 (unsigned long long)res.inodes, size,
		 (unsigned long long)res.entries, elapsed(&p.t0), why);
	return 0;
}

static const char *scan_reason(const struct quota_row *row, int found,
			       const struct ws_options *opt)
{
	if (!found)
		return "first mount";
	if (opt->quota_rescan)
		return "quota_rescan given";
	if (!row->clean)
		return "the last daemon did not unmount cleanly";
	if (strcmp(row->upper, opt->upper) != 0)
		return "the upper directory changed";
	return NULL;
}

static void *flusher_main(void *arg);

int qmount_start(struct registry *reg, const struct ws_options *opt, int upper_fd)
{
	struct quota_row row;
	const char *why;
	char err[512];
	int r, found;

	snprintf(Q.name, sizeof(Q.name), "%s", opt->name);
	Q.writeback = opt->writeback;
	Q.syslog = !opt->foreground;
	if (xcharge_init() < 0) {
		fprintf(stderr, "wsfs: out of memory\n");
		return -1;
	}
	r = registry_db(reg, &Q.db, err, sizeof(err));
	if (r < 0) {
		fprintf(stderr, "wsfs: %s\n", err);
		return -1;
	}
	r = qstore_get(Q.db, opt->name, &row);
	if (r < 0 && r != -ENOENT) {
		fprintf(stderr, "wsfs: reading the quota of %s: %s\n", opt->name,
			qstore_errmsg(Q.db));
		return -1;
	}
	found = r == 0;
	if (!found) {
		memset(&row, 0, sizeof(row));
		quota_limits_default(&row.lim);
	}
	merge_options(&row.lim, opt);
	if (opt->writeback && byte_limits(&row.lim)) {
		fprintf(stderr, "wsfs: -o writeback cannot be used with a byte quota: "
			"a write refused during writeback would lose data\n");
		return -1;
	}
	why = scan_reason(&row, found, opt);
	if (why && reconcile(upper_fd, why, &row) < 0)
		return -1;
	if (!why)
		snprintf(Q.note, sizeof(Q.note), "quota: ledger of %s restored from "
			 "a clean unmount", opt->name);
	if (!why && qstore_load_xattrs(Q.db, opt->name) < 0) {
		why = "the saved xattr charges could not be read";
		if (reconcile(upper_fd, why, &row) < 0)
			return -1;
	}
	snprintf(row.name, sizeof(row.name), "%s", opt->name);
	snprintf(row.upper, sizeof(row.upper), "%s", opt->upper);
	row.clean = 0;
	ledger_init(&row.lim, row.used_bytes, row.used_inodes, row.soft_since,
		    opt->quota_errno);
	r = qstore_put(Q.db, &row);
	if (r < 0) {
		fprintf(stderr, "wsfs: saving the quota of %s: %s\n", opt->name,
			qstore_errmsg(Q.db));
		return -1;
	}
	Q.flushed[0] = row.used_bytes;
	Q.flushed[1] = row.used_inodes;
	if (ledger_subscribe(log_event, NULL) < 0)
		return -1;
	if (pthread_create(&Q.flusher, NULL, flusher_main, NULL) != 0) {
		fprintf(stderr, "wsfs: cannot start the quota flusher thread\n");
		return -1;
	}
	Q.flusher_started = 1;
	return 0;
}

void qmount_log_setup(void)
{
	struct quota_snapshot s;
	char used[32], limit[32], ilimit[32];

	ledger_snapshot(&s);
	qformat_value(s.lim.inodes, ilimit, sizeof(ilimit));
	if (Q.note[0])
		ws_log("%s", Q.note);
	qformat_size(s.used[QUOTA_BYTES], used, sizeof(used));
	qformat_size(s.lim.bytes, limit, sizeof(limit));
	ws_log("quota: %s uses %s (limit %s) and %llu inodes (limit %s)", Q.name,
	       used, limit, (unsigned long long)s.used[QUOTA_INODES], ilimit);
}

/* ---- persistence -------------------------------------------------------- */

static void flush_usage(int clean)
{
	struct quota_snapshot s;
	int r;

	ledger_snapshot(&s);
	if (!clean && s.used[0] == Q.flushed[0] && s.used[1] == Q.flushed[1] &&
	    s.soft_since[0] == Q.flushed_since[0] &&
	    s.soft_since[1] == Q.flushed_since[1])
		return;
	r = qstore_set_usage(Q.db, Q.name, s.used[0], s.used[1], s.soft_since, clean);
	if (r < 0) {
		ws_log("quota: cannot save the ledger of %s: %s", Q.name,
		       qstore_errmsg(Q.db));
		return;
	}
	Q.flushed[0] = s.used[0];
	Q.flushed[1] = s.used[1];
	Q.flushed_since[0] = s.soft_since[0];
	Q.flushed_since[1] = s.soft_since[1];
}

static void *flusher_main(void *arg)
{
	struct timespec until;

	(void)arg;
	pthread_mutex_lock(&Q.lock);
	while (!Q.stop) {
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += FLUSH_INTERVAL_S;
		(void)pthread_cond_timedwait(&Q.wake, &Q.lock, &until);
		if (!Q.stop)
			flush_usage(0);
	}
	pthread_mutex_unlock(&Q.lock);
	return NULL;
}

void qmount_stop(unsigned long open_files)
{
	if (Q.flusher_started) {
		pthread_mutex_lock(&Q.lock);
		Q.stop = 1;
		pthread_cond_signal(&Q.wake);
		pthread_mutex_unlock(&Q.lock);
		pthread_join(Q.flusher, NULL);
		Q.flusher_started = 0;
	}
	if (Q.db) {
		int clean = open_files == 0;

		if (!clean)
			ws_log("quota: %lu files were still open at unmount; the "
			       "next mount will recount usage", open_files);
		/* The xattr charges first: a crash between the two writes
		** leaves the row unclean, never clean with stale charges. */
		if (clean && qstore_save_xattrs(Q.db, Q.name) < 0) {
			ws_log("quota: cannot save xattr charges: %s",
			       qstore_errmsg(Q.db));
			clean = 0;
		}
		flush_usage(clean);
		sqlite3_close(Q.db);
		Q.db = NULL;
	}
	xcharge_destroy();
}

/* ---- statfs -------------------------------------------------------------- */

static uint64_t min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

void qmount_statfs(struct statvfs *sv)
{
	struct quota_snapshot s;
	uint64_t unit, blocks, used, room;

	ledger_snapshot(&s);
	if (quota_limited(s.lim.bytes)) {
		unit = sv->f_frsize ? sv->f_frsize : sv->f_bsize;
		if (unit == 0)
			unit = 4096;
		blocks = s.lim.bytes / unit + (s.lim.bytes % unit != 0);
		used = s.used[QUOTA_BYTES] / unit + (s.used[QUOTA_BYTES] % unit != 0);
		room = s.lim.bytes > s.used[QUOTA_BYTES] ?
		       (s.lim.bytes - s.used[QUOTA_BYTES]) / unit : 0;
		sv->f_blocks = blocks;
		sv->f_bfree = blocks > used ? blocks - used : 0;
		sv->f_bavail = min_u64(room, sv->f_bavail);
	}
	if (quota_limited(s.lim.inodes)) {
		room = s.lim.inodes > s.used[QUOTA_INODES] ?
		       s.lim.inodes - s.used[QUOTA_INODES] : 0;
		sv->f_files = s.lim.inodes;
		sv->f_ffree = min_u64(room, sv->f_ffree);
		sv->f_favail = min_u64(room, sv->f_favail);
	}
}

/* ---- control socket ------------------------------------------------------ */

static void put_value(FILE *out, const char *key, uint64_t v)
{
	char buf[32];

	qformat_value(v, buf, sizeof(buf));
	fprintf(out, "%s %s\n", key, buf);
}

int qmount_ctl_show(FILE *out)
{
	static const char *prefix[2] = { "bytes", "inodes" };
	struct quota_snapshot s;
	char warn[64], key[64];
	int k;

	ledger_snapshot(&s);
	fprintf(out, "name %s\n", Q.name);
	for (k = 0; k < 2; k++) {
		snprintf(key, sizeof(key), "%s_used", prefix[k]);
		put_value(out, key, s.used[k]);
		snprintf(key, sizeof(key), "%s_limit", prefix[k]);
		put_value(out, key, k ? s.lim.inodes : s.lim.bytes);
		snprintf(key, sizeof(key), "%s_soft", prefix[k]);
		put_value(out, key, k ? s.lim.soft_inodes : s.lim.soft_bytes);
		fprintf(out, "%s_soft_since %lld\n", prefix[k], (long long)s.soft_since[k]);
		fprintf(out, "%s_warn_level %u\n", prefix[k], s.warn_level[k]);
		fprintf(out, "%s_warned_at %lld\n", prefix[k], (long long)s.warned_at[k]);
	}
	qformat_warn(&s.lim, ',', warn, sizeof(warn));
	fprintf(out, "grace_s %llu\n", (unsigned long long)s.lim.grace_s);
	fprintf(out, "warn %s\n", warn);
	fprintf(out, "now %lld\n", (long long)ledger_now());
	fprintf(out, "xattr_inodes %zu\n", xcharge_count());
	return 0;
}

static int set_one(struct quota_limits *l, const char *key, const char *val,
		   char *err, size_t errlen)
{
	if (strcmp(key, "bytes") == 0)
		return qparse_size(val, &l->bytes, err, errlen);
	if (strcmp(key, "inodes") == 0)
		return qparse_count(val, &l->inodes, err, errlen);
	if (strcmp(key, "soft_bytes") == 0)
		return qparse_size(val, &l->soft_bytes, err, errlen);
	if (strcmp(key, "soft_inodes") == 0)
		return qparse_count(val, &l->soft_inodes, err, errlen);
	if (strcmp(key, "grace") == 0)
		return qparse_duration(val, &l->grace_s, err, errlen);
	if (strcmp(key, "warn") == 0)
		return qparse_warn(val, ',', l, err, errlen);
	snprintf(err, errlen, "unknown quota setting '%.32s'", key);
	return -EINVAL;
}

/* All settings are checked before any is applied: a bad one changes nothing. */
int qmount_ctl_set(const char *args, FILE *out, char *errmsg, size_t errlen)
{
	struct quota_snapshot s;
	struct quota_limits l;
	char buf[1024], *save = NULL, *tok;
	int r;

	ledger_snapshot(&s);
	l = s.lim;
	if (snprintf(buf, sizeof(buf), "%s", args) >= (int)sizeof(buf)) {
		snprintf(errmsg, errlen, "request too long");
		return -EINVAL;
	}
	for (tok = strtok_r(buf, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
		char *eq = strchr(tok, '=');

		if (!eq) {
			snprintf(errmsg, errlen, "expected KEY=VALUE, not '%.32s'", tok);
			return -EINVAL;
		}
		*eq = '\0';
		r = set_one(&l, tok, eq + 1, errmsg, errlen);
		if (r < 0)
			return r;
	}
	if (Q.writeback && byte_limits(&l) && !byte_limits(&s.lim)) {
		snprintf(errmsg, errlen, "workspace %s is mounted with -o writeback, "
			 "which cannot enforce a byte quota", Q.name);
		return -EINVAL;
	}
	pthread_mutex_lock(&Q.lock);
	r = Q.db ? qstore_set_limits(Q.db, Q.name, &l) : -EIO;
	if (r < 0)
		snprintf(errmsg, errlen, "cannot save the quota: %s",
			 Q.db ? qstore_errmsg(Q.db) : "no database");
	else
		ledger_set_limits(&l);
	pthread_mutex_unlock(&Q.lock);
	if (r < 0)
		return r;
	ws_log("quota of %s changed: %s", Q.name, args);
	return qmount_ctl_show(out);
}
