/*
** The per-inode xattr charge table (see xcharge.h): a chained hash under
** one mutex.  Few inodes carry user xattrs and the calls that touch the
** table (setxattr, removexattr, the last unlink of a file) are rare next to
** reads and writes, so a single lock costs nothing measurable.
*/
#include "xcharge.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

struct entry {
	uint64_t ino;
	uint64_t bytes;
	struct entry *next;
};

static struct {
	pthread_mutex_t lock;
	struct entry **buckets;
	size_t nbuckets;
	size_t count;
} X = { .lock = PTHREAD_MUTEX_INITIALIZER };

#define INITIAL_BUCKETS 256

static size_t slot(uint64_t ino, size_t n)
{
	/* Inode numbers are dense; a multiplicative mix spreads runs. */
	return (size_t)((ino * 0x9E3779B97F4A7C15ULL) >> 20) & (n - 1);
}

int xcharge_init(void)
{
	X.buckets = calloc(INITIAL_BUCKETS, sizeof(*X.buckets));
	if (!X.buckets)
		return -ENOMEM;
	X.nbuckets = INITIAL_BUCKETS;
	X.count = 0;
	return 0;
}

static void free_all(void)
{
	size_t i;

	for (i = 0; i < X.nbuckets; i++) {
		struct entry *e = X.buckets[i], *next;

		for (; e; e = next) {
			next = e->next;
			free(e);
		}
		X.buckets[i] = NULL;
	}
	X.count = 0;
}

void xcharge_destroy(void)
{
	pthread_mutex_lock(&X.lock);
	if (X.buckets)
		free_all();
	free(X.buckets);
	X.buckets = NULL;
	X.nbuckets = 0;
	pthread_mutex_unlock(&X.lock);
}

void xcharge_clear(void)
{
	pthread_mutex_lock(&X.lock);
	if (X.buckets)
		free_all();
	pthread_mutex_unlock(&X.lock);
}

static struct entry **find(uint64_t ino)
{
	struct entry **p = &X.buckets[slot(ino, X.nbuckets)];

	while (*p && (*p)->ino != ino)
		p = &(*p)->next;
	return p;
}

/* Doubling keeps chains short; a failed grow only leaves them longer. */
static void grow(void)
{
	size_t n = X.nbuckets * 2, i;
	struct entry **b = calloc(n, sizeof(*b));

	if (!b)
		return;
	for (i = 0; i < X.nbuckets; i++) {
		struct entry *e = X.buckets[i], *next;

		for (; e; e = next) {
			size_t s = slot(e->ino, n);

			next = e->next;
			e->next = b[s];
			b[s] = e;
		}
	}
	free(X.buckets);
	X.buckets = b;
	X.nbuckets = n;
}

uint64_t xcharge_get_locked(uint64_t ino)
{
	struct entry **p;

	if (!X.buckets)
		return 0;
	p = find(ino);
	return *p ? (*p)->bytes : 0;
}

int xcharge_set_locked(uint64_t ino, uint64_t bytes)
{
	struct entry **p, *e;

	if (!X.buckets)
		return -ENOMEM;
	p = find(ino);
	if (*p) {
		if (bytes) {
			(*p)->bytes = bytes;
		} else {
			e = *p;
			*p = e->next;
			free(e);
			X.count--;
		}
		return 0;
	}
	if (!bytes)
		return 0;
	e = malloc(sizeof(*e));
	if (!e)
		return -ENOMEM;
	e->ino = ino;
	e->bytes = bytes;
	e->next = *p;
	*p = e;
	if (++X.count > X.nbuckets)
		grow();
	return 0;
}

void xcharge_lock(void)
{
	pthread_mutex_lock(&X.lock);
}

void xcharge_unlock(void)
{
	pthread_mutex_unlock(&X.lock);
}

uint64_t xcharge_get(uint64_t ino)
{
	uint64_t v;

	pthread_mutex_lock(&X.lock);
	v = xcharge_get_locked(ino);
	pthread_mutex_unlock(&X.lock);
	return v;
}

int xcharge_set(uint64_t ino, uint64_t bytes)
{
	int r;

	pthread_mutex_lock(&X.lock);
	r = xcharge_set_locked(ino, bytes);
	pthread_mutex_unlock(&X.lock);
	return r;
}

uint64_t xcharge_take(uint64_t ino)
{
	uint64_t v;

	pthread_mutex_lock(&X.lock);
	v = xcharge_get_locked(ino);
	if (v)
		(void)xcharge_set_locked(ino, 0);
	pthread_mutex_unlock(&X.lock);
	return v;
}

void xcharge_each(void (*fn)(uint64_t ino, uint64_t bytes, void *arg), void *arg)
{
	size_t i;

	pthread_mutex_lock(&X.lock);
	for (i = 0; i < X.nbuckets; i++) {
		struct entry *e;

		for (e = X.buckets[i]; e; e = e->next)
			fn(e->ino, e->bytes, arg);
	}
	pthread_mutex_unlock(&X.lock);
}

size_t xcharge_count(void)
{
	size_t n;

	pthread_mutex_lock(&X.lock);
	n = X.count;
	pthread_mutex_unlock(&X.lock);
	return n;
}
