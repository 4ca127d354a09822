/*
** One-off appends for processes that are not a daemon's writer thread
** (see append.h), and the caller-identity helpers the daemon shares.
**
** A one-off append opens the store, appends, checkpoints and closes again
** rather than keeping anything open: wsctl records at most a few events
** per run, and a connection held across a fork or a long pause would only
** add ways to go wrong.  Checkpointing right away matters because such
** chains (the host chain in particular) may not be written again for
** weeks; a record that no signed checkpoint covers can be silently
** dropped from the tail.  The key is loaded before anything is written,
** so a missing or unreadable key leaves no unanchored record behind.
**
** The store is opened with synchronous=FULL: the cost is one extra sync
** per wsctl command, and the event may be the only trace of an operator's
** action.
*/
#include "append.h"

#include "checkpoint.h"
#include "internal.h"
#include "keys.h"
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define HOST_MAX 256
#define COMM_MAX 16

int64_t audit_now_ns(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_REALTIME, &ts) != 0)
		return 0;
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static char hostname[HOST_MAX + 1];
static pthread_once_t hostname_once = PTHREAD_ONCE_INIT;

static void hostname_init(void)
{
	if (gethostname(hostname, HOST_MAX) != 0)
		hostname[0] = '\0';
	/* gethostname need not terminate a truncated name. */
	hostname[HOST_MAX] = '\0';
}

const char *audit_hostname(void)
{
	if (pthread_once(&hostname_once, hostname_init) != 0)
		return "";
	return hostname;
}

void audit_read_comm(int64_t pid, char *buf, size_t len)
{
	char path[64];
	ssize_t n;
	int fd;

	if (len == 0)
		return;
	buf[0] = '\0';
	(void)snprintf(path, sizeof(path), "/proc/%lld/comm", (long long)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	do {
		n = read(fd, buf, len - 1);
	} while (n < 0 && errno == EINTR);
	(void)close(fd);
	if (n <= 0)
		n = 0;
	buf[n] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
}

static int empty(const char *s)
{
	return s == NULL || *s == '\0';
}

/* Fills what the caller left out with the calling process's identity. */
static void fill_identity(struct audit_record *r, char *comm, size_t len)
{
	if (r->time_ns == 0)
		r->time_ns = audit_now_ns();
	if (empty(r->host))
		r->host = audit_hostname();
	if (r->pid == 0) {
		r->pid = getpid();
		r->uid = getuid();
		r->gid = getgid();
	}
	if (empty(r->comm)) {
		audit_read_comm(r->pid, comm, len);
		r->comm = comm;
	}
	if (r->ws == NULL)
		r->ws = "";
	if (empty(r->layer))
		r->layer = "-";
	if (empty(r->result))
		r->result = "0";
}

int audit_append_one(const char *state_dir, struct audit_record *r,
		     char *err, size_t errlen)
{
	struct audit_store *s = NULL;
	struct audit_key *k = NULL;
	const char *caller_comm = r->comm;
	char comm[COMM_MAX + 1];
	int rc;

	fill_identity(r, comm, sizeof(comm));
	rc = audit_key_load(state_dir, 1, &k, err, errlen);
	if (rc < 0)
		return rc;
	rc = audit_store_open(state_dir, AUDIT_STORE_CREATE |
			      AUDIT_STORE_SYNC_FULL, &s, err, errlen);
	if (rc == 0)
		rc = audit_store_append(s, &r, 1, err, errlen);
	if (rc == 0) {
		rc = audit_store_checkpoint(s, k, r->host, r->ws,
					    audit_now_ns(), NULL, err, errlen);
		rc = rc > 0 ? 0 : rc;
	}
	audit_store_close(s);
	audit_key_free(k);
	/* COMM is about to go out of scope; R stays the caller's. */
	if (r->comm == comm)
		r->comm = caller_comm;
	return rc;
}
