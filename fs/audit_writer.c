/*
** The audit writer thread and its queue.
**
** Request threads must not wait on SQLite, so a record leaves them as a
** malloc'd copy pushed on a bounded ring (audit_writer_submit); one thread
** takes whatever has gathered, up to BATCH_MAX, and commits it as one
** transaction.  Under load batches grow by themselves, which is what makes
** a commit per record affordable: group commit without a timer.
**
** Order is kept: records are committed in the order they were queued, and
** every record gets a ticket so that audit_sync=full callers can wait for
** theirs.  A batch that fails to commit stays in the writer's hands and is
** retried as it is (the store assigns sequence numbers only to what it
** commits), so a failure never reorders, duplicates or loses a record.
**
** While commits fail the daemon fails closed by default: audit_writer_closed
** is raised, and the request path refuses new operations with EIO.  With
** audit_fail=alert it keeps serving; records that no longer fit in the ring
** are counted instead of queued, and an audit-gap record carrying that count
** and the times of the first and last one lost is committed ahead of the
** next batch, so the hole is itself on the chain.
**
** Checkpoints are written by this thread too, every cp_records records or
** cp_secs seconds when something new is on the chain, and at stop; each is
** also handed to the anchor (appended to a file, or piped to a command) so a
** copy lives outside the state directory.
*/
#include "audit_writer.h"
#include "append.h"
#include "keys.h"
#include "log.h"
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define QUEUE_MAX (1u << 16)
#define BATCH_MAX 4096
/* A batch smaller than this waits up to LINGER_MS for company before it
** is committed.  A commit costs nearly the same for 1 record as for 4,000
** (it rewrites the last page of the table and of every index), and the
** agent's requests wait on each other, not on the log: with a 2 ms linger
** a create-heavy agent lost a third of its speed to the writer's commits,
** with 200 ms about a tenth (../shared/bench).  audit_sync=full
** never lingers. */
#define LINGER_BATCH 4096
#define LINGER_MS 200
/* The WAL is copied back into audit.db when the writer has nothing to do
** and the WAL holds more than WAL_IDLE_PAGES, or in any case past
** WAL_MAX_PAGES, so that checkpoints (which sync the disk) fall between an
** agent's bursts rather than inside them. */
#define WAL_IDLE_PAGES 256
#define WAL_MAX_PAGES 4096
#define RETRY_MS 250
#define STOP_GRACE_SECS 10

int audit_writer_closed;

static struct {
	struct audit_writer_config cfg;
	struct audit_store *store;
	struct audit_key *key;
	pthread_t thread;
	int started;
	pthread_mutex_t lock;
	pthread_cond_t wake;		/* the writer: records queued, or stop */
	pthread_cond_t room;		/* producers: the ring has space */
	pthread_cond_t done;		/* sync waiters: a commit ended */
	struct audit_record **ring;
	size_t first, count;
	uint64_t tickets;		/* records queued so far */
	uint64_t committed;		/* of those, committed */
	int stopping;
	int idle;			/* the writer waits for a first record */
	int failing;
	uint64_t dropped;		/* alert mode: lost, not yet recorded */
	uint64_t dropped_total;
	int64_t drop_first_ns, drop_last_ns;
	uint64_t since_checkpoint;
	int64_t last_checkpoint_ns;	/* realtime */
	uint64_t checkpoints;
	char error[256];
} W = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.wake = PTHREAD_COND_INITIALIZER,
	.room = PTHREAD_COND_INITIALIZER,
	.done = PTHREAD_COND_INITIALIZER,
};

static void deadline_after_ms(struct timespec *ts, long ms)
{
	clock_gettime(CLOCK_REALTIME, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

/* The daemon's own events (gaps) are the daemon's: its ids, "wsfs". */
static void daemon_identity(struct audit_record *r, const char *op)
{
	memset(r, 0, sizeof(*r));
	r->time_ns = audit_now_ns();
	r->host = W.cfg.host;
	r->ws = W.cfg.ws;
	r->layer = "-";
	r->uid = getuid();
	r->gid = getgid();
	r->pid = getpid();
	r->comm = "wsfs";
	r->op = op;
	r->path = r->path2 = r->detail = r->fp = "";
	r->result = "0";
}

/* Commits BATCH[1..N]; BATCH[0] is free for the gap record, written first
** if records were lost since the last commit. */
static int commit_batch(struct audit_record **batch, size_t n, char *err,
			size_t errlen)
{
	struct audit_record gap;
	char detail[160];
	uint64_t lost;
	int r;

	pthread_mutex_lock(&W.lock);
	lost = W.dropped;
	snprintf(detail, sizeof(detail), "lost=%llu first_ns=%lld last_ns=%lld",
		 (unsigned long long)lost, (long long)W.drop_first_ns,
		 (long long)W.drop_last_ns);
	pthread_mutex_unlock(&W.lock);
	if (!lost)
		return audit_store_append(W.store, batch + 1, n, err, errlen);
	daemon_identity(&gap, "audit-gap");
	gap.bytes = (int64_t)lost;
	gap.detail = detail;
	gap.result = "EIO";
	batch[0] = &gap;
	r = audit_store_append(W.store, batch, n + 1, err, errlen);
	batch[0] = NULL;
	if (r == 0) {
		pthread_mutex_lock(&W.lock);
		W.dropped -= lost;
		pthread_mutex_unlock(&W.lock);
		ws_log("audit: recorded a gap of %llu records", (unsigned long long)lost);
	}
	return r;
}

/* A copy of the checkpoint outside audit.db. Failures are logged: the
** checkpoint itself is already committed. */
static void anchor_to_file(const char *path, const char *note)
{
	size_t len = strlen(note);
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW,
		      0600);

	if (fd < 0) {
		ws_log("audit anchor %s: %s", path, strerror(errno));
		return;
	}
	if (write(fd, note, len) != (ssize_t)len || write(fd, "\n", 1) != 1)
		ws_log("audit anchor %s: short write", path);
	if (close(fd) < 0)
		ws_log("audit anchor %s: %s", path, strerror(errno));
}

static void anchor_to_command(const char *cmd, const char *note)
{
	size_t len = strlen(note);
	int pipefd[2], status;
	pid_t pid;

	if (pipe2(pipefd, O_CLOEXEC) < 0) {
		ws_log("audit anchor command: %s", strerror(errno));
		return;
	}
	pid = fork();
	if (pid < 0) {
		ws_log("audit anchor command: %s", strerror(errno));
		close(pipefd[0]);
		close(pipefd[1]);
		return;
	}
	if (pid == 0) {
		if (dup2(pipefd[0], STDIN_FILENO) < 0)
			_exit(127);
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	close(pipefd[0]);
	if (write(pipefd[1], note, len) != (ssize_t)len)
		ws_log("audit anchor command: short write");
	close(pipefd[1]);
	if (waitpid(pid, &status, 0) < 0)
		ws_log("audit anchor command: %s", strerror(errno));
	else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		ws_log("audit anchor command '%s' failed (status %d)", cmd, status);
}

static void checkpoint(void)
{
	char err[256], *note = NULL;
	int64_t now = audit_now_ns();
	int r;

	r = audit_store_checkpoint(W.store, W.key, W.cfg.host, W.cfg.ws, now,
				   &note, err, sizeof(err));
	pthread_mutex_lock(&W.lock);
	if (r >= 0) {
		W.since_checkpoint = 0;
		W.last_checkpoint_ns = now;
		W.checkpoints += r == 1;
	}
	pthread_mutex_unlock(&W.lock);
	if (r < 0) {
		ws_log("audit checkpoint: %s", err);
		return;
	}
	if (r == 1 && W.cfg.anchor && note) {
		if (W.cfg.anchor[0] == '|')
			anchor_to_command(W.cfg.anchor + 1, note);
		else
			anchor_to_file(W.cfg.anchor, note);
	}
	free(note);
}

static int wal_due(int idle)
{
	int pages = audit_store_wal_pages(W.store);

	return pages > WAL_MAX_PAGES || (idle && pages > WAL_IDLE_PAGES);
}

static void wal_checkpoint(void)
{
	char err[256];

	if (audit_store_wal_checkpoint(W.store, err, sizeof(err)) < 0)
		ws_log("audit: %s", err);
}

/* Called with the lock held: how many queued records end the linger. A
** checkpoint is due every cp_records records, so a batch need not grow
** past the next one. */
static size_t linger_target(void)
{
	uint64_t left = 1;

	if (W.cfg.cp_records > 0 &&
	    (uint64_t)W.cfg.cp_records > W.since_checkpoint)
		left = (uint64_t)W.cfg.cp_records - W.since_checkpoint;
	return left < LINGER_BATCH ? (size_t)left : LINGER_BATCH;
}

/* Called with the lock held. */
static int checkpoint_due(void)
{
	if (W.since_checkpoint == 0)
		return 0;
	if (W.cfg.cp_records > 0 && W.since_checkpoint >= (uint64_t)W.cfg.cp_records)
		return 1;
	return audit_now_ns() - W.last_checkpoint_ns >=
	       (int64_t)W.cfg.cp_secs * 1000000000LL;
}

static size_t take_batch(struct audit_record **batch, size_t n)
{
	while (n < BATCH_MAX && W.count) {
		batch[1 + n++] = W.ring[W.first];
		W.first = (W.first + 1) % QUEUE_MAX;
		W.count--;
	}
	pthread_cond_broadcast(&W.room);
	return n;
}

static void set_failing(int failing, const char *why)
{
	if (failing && !W.failing)
		ws_log("audit: cannot write audit.db: %s; %s", why,
		       W.cfg.fail_alert ? "serving on (audit_fail=alert)" :
		       "refusing file operations with EIO until it can");
	if (!failing && W.failing)
		ws_log("audit: audit.db writable again");
	W.failing = failing;
	if (failing)
		snprintf(W.error, sizeof(W.error), "%s", why);
	__atomic_store_n(&audit_writer_closed, failing && !W.cfg.fail_alert,
			 __ATOMIC_RELAXED);
}

static void give_up(struct audit_record **batch, size_t n)
{
	size_t lost = n + W.count;

	for (size_t i = 1; i <= n; i++)
		free(batch[i]);
	while (W.count) {
		free(W.ring[W.first]);
		W.first = (W.first + 1) % QUEUE_MAX;
		W.count--;
	}
	ws_log("audit: %zu records could not be written at unmount: %s", lost,
	       W.error);
}

static void *writer_main(void *arg)
{
	static struct audit_record *batch[BATCH_MAX + 1];
	struct timespec ts, stop_by = { 0, 0 };
	struct sched_param sp;
	char err[256];
	size_t n = 0;
	int r;

	(void)arg;
	/* Committing can wait; the agent's requests cannot. The writer runs
	** only on a CPU nothing else wants (SCHED_IDLE), so it never delays
	** the wakeup of a request thread or of the agent waiting on one; the
	** bounded queue makes requests wait if it falls too far behind, so
	** the log is never outrun. */
	memset(&sp, 0, sizeof(sp));
	if (pthread_setschedparam(pthread_self(), SCHED_IDLE, &sp) != 0)
		ws_log("audit writer: cannot lower its priority");
	pthread_mutex_lock(&W.lock);
	for (;;) {
		if (n == 0 && W.count == 0) {
			if (W.stopping)
				break;
			if (checkpoint_due() || wal_due(1)) {
				pthread_mutex_unlock(&W.lock);
				if (checkpoint_due())
					checkpoint();
				if (wal_due(1))
					wal_checkpoint();
				pthread_mutex_lock(&W.lock);
				continue;
			}
			W.idle = 1;
			deadline_after_ms(&ts, 1000);
			pthread_cond_timedwait(&W.wake, &W.lock, &ts);
			W.idle = 0;
			continue;
		}
		if (n == 0 && W.count < linger_target() && !W.cfg.sync_full &&
		    !W.stopping) {
			deadline_after_ms(&ts, LINGER_MS);
			pthread_cond_timedwait(&W.wake, &W.lock, &ts);
		}
		n = take_batch(batch, n);
		pthread_mutex_unlock(&W.lock);
		r = commit_batch(batch, n, err, sizeof(err));
		pthread_mutex_lock(&W.lock);
		if (r == 0) {
			for (size_t i = 1; i <= n; i++)
				free(batch[i]);
			W.committed += n;
			W.since_checkpoint += n;
			n = 0;
			set_failing(0, NULL);
			pthread_cond_broadcast(&W.done);
			if (wal_due(0)) {
				pthread_mutex_unlock(&W.lock);
				wal_checkpoint();
				pthread_mutex_lock(&W.lock);
			}
			continue;
		}
		set_failing(1, err);
		pthread_cond_broadcast(&W.done);
		if (W.stopping) {
			if (stop_by.tv_sec == 0)
				deadline_after_ms(&stop_by, STOP_GRACE_SECS * 1000L);
			clock_gettime(CLOCK_REALTIME, &ts);
			if (ts.tv_sec >= stop_by.tv_sec) {
				give_up(batch, n);
				n = 0;
				break;
			}
		}
		deadline_after_ms(&ts, RETRY_MS);
		pthread_cond_timedwait(&W.wake, &W.lock, &ts);
	}
	pthread_mutex_unlock(&W.lock);
	checkpoint();
	return NULL;
}

static int dup_config(const struct audit_writer_config *c)
{
	W.cfg = *c;
	W.cfg.state_dir = strdup(c->state_dir);
	W.cfg.host = strdup(c->host);
	W.cfg.ws = strdup(c->ws);
	W.cfg.anchor = c->anchor ? strdup(c->anchor) : NULL;
	return W.cfg.state_dir && W.cfg.host && W.cfg.ws &&
	       (W.cfg.anchor || !c->anchor) ? 0 : -ENOMEM;
}

static void free_config(void)
{
	free((char *)W.cfg.state_dir);
	free((char *)W.cfg.host);
	free((char *)W.cfg.ws);
	free((char *)W.cfg.anchor);
	memset(&W.cfg, 0, sizeof(W.cfg));
}

static void release_all(void)
{
	if (W.store)
		audit_store_close(W.store);
	if (W.key)
		audit_key_free(W.key);
	W.store = NULL;
	W.key = NULL;
	free(W.ring);
	W.ring = NULL;
	free_config();
}

int audit_writer_start(const struct audit_writer_config *c, char *err,
		       size_t errlen)
{
	int flags = AUDIT_STORE_CREATE | AUDIT_STORE_OWN_CHECKPOINTS |
		    (c->sync_full ? AUDIT_STORE_SYNC_FULL : 0);
	int r;

	if (dup_config(c) < 0) {
		snprintf(err, errlen, "out of memory");
		release_all();
		return -ENOMEM;
	}
	W.ring = calloc(QUEUE_MAX, sizeof(*W.ring));
	if (!W.ring) {
		snprintf(err, errlen, "out of memory");
		release_all();
		return -ENOMEM;
	}
	r = audit_store_open(c->state_dir, flags, &W.store, err, errlen);
	if (r == 0)
		r = audit_key_load(c->state_dir, 1, &W.key, err, errlen);
	if (r < 0) {
		release_all();
		return r;
	}
	W.last_checkpoint_ns = audit_now_ns();
	r = pthread_create(&W.thread, NULL, writer_main, NULL);
	if (r != 0) {
		snprintf(err, errlen, "cannot start the audit writer: %s",
			 strerror(r));
		release_all();
		return -r;
	}
	W.started = 1;
	return 0;
}

/* Alert mode while failing: a record that does not fit is counted, and
** the count goes on the chain as a gap once writing works again. */
static int drop_if_full(const struct audit_record *r)
{
	if (!(W.cfg.fail_alert && W.failing && W.count == QUEUE_MAX))
		return 0;
	if (W.dropped == 0)
		W.drop_first_ns = r->time_ns;
	W.drop_last_ns = r->time_ns;
	W.dropped++;
	W.dropped_total++;
	return 1;
}

static int wait_for_commit(uint64_t ticket)
{
	while (W.committed < ticket) {
		if (W.failing)
			return W.cfg.fail_alert ? 0 : -EIO;
		pthread_cond_wait(&W.done, &W.lock);
	}
	return 0;
}

int audit_writer_submit(const struct audit_record *r)
{
	struct audit_record *copy;
	uint64_t ticket;
	int ret = 0;

	if (!W.started)
		return 0;
	copy = audit_record_dup(r);
	if (!copy)
		return -ENOMEM;
	pthread_mutex_lock(&W.lock);
	while (W.count == QUEUE_MAX && !drop_if_full(r))
		pthread_cond_wait(&W.room, &W.lock);
	if (W.count == QUEUE_MAX) {	/* dropped while waiting */
		pthread_mutex_unlock(&W.lock);
		free(copy);
		return 0;
	}
	W.ring[(W.first + W.count) % QUEUE_MAX] = copy;
	W.count++;
	ticket = ++W.tickets;
	/* A lingering writer is not woken for every record. */
	if (W.idle || W.count >= linger_target() || W.cfg.sync_full)
		pthread_cond_signal(&W.wake);
	if (W.cfg.sync_full)
		ret = wait_for_commit(ticket);
	pthread_mutex_unlock(&W.lock);
	return ret;
}

void audit_writer_stop(void)
{
	if (!W.started)
		return;
	pthread_mutex_lock(&W.lock);
	W.stopping = 1;
	pthread_cond_signal(&W.wake);
	pthread_mutex_unlock(&W.lock);
	pthread_join(W.thread, NULL);
	W.started = 0;
	if (W.dropped)
		ws_log("audit: %llu records were lost while audit.db failed and "
		       "could not be recorded as a gap",
		       (unsigned long long)W.dropped);
	release_all();
}

void audit_writer_write_kv(FILE *out)
{
	pthread_mutex_lock(&W.lock);
	fprintf(out, "audit.queued %zu\n", W.count);
	fprintf(out, "audit.written %llu\n", (unsigned long long)W.committed);
	fprintf(out, "audit.failing %d\n", W.failing);
	fprintf(out, "audit.lost %llu\n", (unsigned long long)W.dropped_total);
	fprintf(out, "audit.checkpoints %llu\n", (unsigned long long)W.checkpoints);
	fprintf(out, "audit.last_checkpoint_ns %lld\n",
		(long long)W.last_checkpoint_ns);
	pthread_mutex_unlock(&W.lock);
}
