/*
** Process names of callers, cheaply and without going stale.
**
** An agent works in bursts: one process makes thousands of requests in a
** row, and opening /proc/PID/comm for each record would triple the
** syscalls the audit adds to a request.  So the descriptor is kept: each
** worker thread has a small table mapping recent pids to an open
** /proc/PID/comm, and each record does one pread on it.  The read still
** happens per request, so a process that execs or renames itself (prctl)
** is named as it is now, not as it was.  A descriptor outlives its process
** harmlessly: once the process has exited, reading it fails with ESRCH, so
** a recycled pid is never named after its previous owner; the entry is
** then reopened for the new one.
**
** The table is per thread, so requests never wait on each other for it (a
** shared one under a mutex made concurrent requests queue behind each
** other's pread); a thread's descriptors are closed when it exits, and all
** of them at stop.
*/
#include "audit_caller.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SLOTS 8

struct comm_table {
	struct { int64_t pid; int fd; uint64_t used; } slot[SLOTS];
	uint64_t clock;
	struct comm_table *next;	/* every thread's table, for stop */
};

static pthread_key_t table_key;
static pthread_once_t table_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t tables_lock = PTHREAD_MUTEX_INITIALIZER;
static struct comm_table *tables;

static void close_table(struct comm_table *t)
{
	for (int i = 0; i < SLOTS; i++) {
		if (t->slot[i].fd > 0)
			close(t->slot[i].fd);
		t->slot[i].fd = 0;
		t->slot[i].pid = 0;
	}
}

static void unlink_table(struct comm_table *t)
{
	struct comm_table **p;

	pthread_mutex_lock(&tables_lock);
	for (p = &tables; *p; p = &(*p)->next)
		if (*p == t) {
			*p = t->next;
			break;
		}
	pthread_mutex_unlock(&tables_lock);
}

/* A worker thread ends: its descriptors go with it. */
static void drop_table(void *arg)
{
	struct comm_table *t = arg;

	unlink_table(t);
	close_table(t);
	free(t);
}

static void make_key(void)
{
	if (pthread_key_create(&table_key, drop_table) != 0)
		abort();
}

static struct comm_table *my_table(void)
{
	struct comm_table *t;

	pthread_once(&table_once, make_key);
	t = pthread_getspecific(table_key);
	if (t)
		return t;
	t = calloc(1, sizeof(*t));
	if (!t || pthread_setspecific(table_key, t) != 0) {
		free(t);
		return NULL;
	}
	pthread_mutex_lock(&tables_lock);
	t->next = tables;
	tables = t;
	pthread_mutex_unlock(&tables_lock);
	return t;
}

static int open_comm(int64_t pid)
{
	char path[48];

	snprintf(path, sizeof(path), "/proc/%lld/comm", (long long)pid);
	return open(path, O_RDONLY | O_CLOEXEC);
}

/* fd 0 marks an empty slot: descriptor 0 is the daemon's stdin, never a
** /proc file. Returns PID's slot, (re)opened as needed; -1 if the process
** is gone. */
static int slot_for(struct comm_table *t, int64_t pid)
{
	int oldest = 0, fd;

	for (int i = 0; i < SLOTS; i++) {
		if (t->slot[i].fd > 0 && t->slot[i].pid == pid)
			return i;
		if (t->slot[i].used < t->slot[oldest].used)
			oldest = i;
	}
	fd = open_comm(pid);
	if (fd < 0)
		return -1;
	if (t->slot[oldest].fd > 0)
		close(t->slot[oldest].fd);
	t->slot[oldest].pid = pid;
	t->slot[oldest].fd = fd;
	return oldest;
}

static ssize_t read_slot(struct comm_table *t, int i, char *buf, size_t len)
{
	ssize_t n;

	do {
		n = pread(t->slot[i].fd, buf, len - 1, 0);
	} while (n < 0 && errno == EINTR);
	return n;
}

static ssize_t read_comm(struct comm_table *t, int64_t pid, char *buf,
			 size_t len)
{
	ssize_t n = -1;
	int i = slot_for(t, pid);

	if (i < 0)
		return -1;
	n = read_slot(t, i, buf, len);
	if (n < 0) {
		/* The process this descriptor named is gone; the pid may
		** belong to a new one. */
		close(t->slot[i].fd);
		t->slot[i].fd = 0;
		t->slot[i].used = 0;
		i = slot_for(t, pid);
		n = i >= 0 ? read_slot(t, i, buf, len) : -1;
	}
	if (i >= 0)
		t->slot[i].used = ++t->clock;
	return n;
}

void caller_comm(int64_t pid, char *buf, size_t len)
{
	struct comm_table *t;
	ssize_t n = -1;

	buf[0] = '\0';
	if (pid <= 0 || len < 2)
		return;
	t = my_table();
	if (t) {
		n = read_comm(t, pid, buf, len);
	} else {
		int fd = open_comm(pid);

		if (fd >= 0) {
			n = pread(fd, buf, len - 1, 0);
			close(fd);
		}
	}
	if (n <= 0)
		n = 0;
	buf[n] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
}

/* At stop no request runs, so every thread's table can be emptied from
** here; the tables themselves go with their threads. */
void caller_cache_clear(void)
{
	pthread_mutex_lock(&tables_lock);
	for (struct comm_table *t = tables; t; t = t->next)
		close_table(t);
	pthread_mutex_unlock(&tables_lock);
}
