/*
** Process names of callers, cheaply and without going stale.
**
** An agent works in bursts: one process makes thousands of requests in a
** row, and opening /proc/PID/comm for each record would triple the
** syscalls the audit adds to a request.  So the descriptor is kept: a
** small table maps recent pids to an open /proc/PID/comm, and each record
** does one pread on it.  The read still happens per request, so a process
** that execs or renames itself (prctl) is named as it is now, not as it
** was.  A descriptor outlives its process harmlessly: once the process has
** exited, reading it fails with ESRCH, so a recycled pid is never named
** after its previous owner; the entry is then reopened for the new one.
**
** The table is tiny and LRU by slot age; one mutex covers it, held across
** the pread (a microsecond) so that an eviction cannot close a descriptor
** another thread is reading.
*/
#include "audit_caller.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define SLOTS 32

/* fd 0 marks an empty slot: descriptor 0 is the daemon's stdin, never a
** /proc file. */
static struct {
	pthread_mutex_t lock;
	struct { int64_t pid; int fd; uint64_t used; } slot[SLOTS];
	uint64_t clock;
} C = { .lock = PTHREAD_MUTEX_INITIALIZER };

static int open_comm(int64_t pid)
{
	char path[48];

	snprintf(path, sizeof(path), "/proc/%lld/comm", (long long)pid);
	return open(path, O_RDONLY | O_CLOEXEC);
}

/* The slot for PID, (re)opened as needed; -1 if the process is gone. */
static int slot_for(int64_t pid)
{
	int oldest = 0, fd;

	for (int i = 0; i < SLOTS; i++) {
		if (C.slot[i].fd > 0 && C.slot[i].pid == pid)
			return i;
		if (C.slot[i].used < C.slot[oldest].used)
			oldest = i;
	}
	fd = open_comm(pid);
	if (fd < 0)
		return -1;
	if (C.slot[oldest].fd > 0)
		close(C.slot[oldest].fd);
	C.slot[oldest].pid = pid;
	C.slot[oldest].fd = fd;
	return oldest;
}

static ssize_t read_slot(int i, char *buf, size_t len)
{
	ssize_t n;

	do {
		n = pread(C.slot[i].fd, buf, len - 1, 0);
	} while (n < 0 && errno == EINTR);
	return n;
}

void caller_comm(int64_t pid, char *buf, size_t len)
{
	ssize_t n = -1;
	int i;

	buf[0] = '\0';
	if (pid <= 0 || len < 2)
		return;
	pthread_mutex_lock(&C.lock);
	i = slot_for(pid);
	if (i >= 0) {
		n = read_slot(i, buf, len);
		if (n < 0) {
			/* The process this descriptor named is gone; the pid
			** may belong to a new one. */
			close(C.slot[i].fd);
			C.slot[i].fd = 0;
			C.slot[i].used = 0;
			i = slot_for(pid);
			n = i >= 0 ? read_slot(i, buf, len) : -1;
		}
		if (i >= 0)
			C.slot[i].used = ++C.clock;
	}
	pthread_mutex_unlock(&C.lock);
	if (n <= 0)
		n = 0;
	buf[n] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
}

void caller_cache_clear(void)
{
	pthread_mutex_lock(&C.lock);
	for (int i = 0; i < SLOTS; i++) {
		if (C.slot[i].fd > 0)
			close(C.slot[i].fd);
		C.slot[i].fd = 0;
		C.slot[i].pid = 0;
		C.slot[i].used = 0;
	}
	pthread_mutex_unlock(&C.lock);
}
