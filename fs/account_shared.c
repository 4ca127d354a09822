/*
** The shared directories' part of the quota (design in account_shared.h).
**
** Records live in a tsearch tree under one mutex: only requests in shared
** directories that change sizes or entries reach it. Out of memory, a
** charge stays in the ledger without a record, so no removal can credit
** it before unmount: the error falls on the limit's side.
*/
#include "account_shared.h"

#include "ledger.h"
#include "log.h"

#include <errno.h>
#include <pthread.h>
#include <search.h>
#include <stdatomic.h>
#include <stdlib.h>

struct shared_file {
	dev_t dev;
	ino_t ino;
	uint64_t bytes;		/* data paid for, less data credited */
	uint64_t made_bytes;	/* what making the entry cost, if we made it */
	int made;		/* we made it: its inode is ours to credit */
};

static _Atomic uint64_t used[2];	/* indexed by enum quota_kind */
/* Entries charged whose syscall has not returned yet. */
static _Atomic uint64_t pending[2];

static pthread_mutex_t files_lock = PTHREAD_MUTEX_INITIALIZER;
static void *files;

static void add(_Atomic uint64_t *c, uint64_t n)
{
	atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

/* Takes up to N from *C; returns what it took. */
static uint64_t take(_Atomic uint64_t *c, uint64_t n)
{
	uint64_t cur = atomic_load_explicit(c, memory_order_relaxed), took;

	do {
		took = n < cur ? n : cur;
	} while (!atomic_compare_exchange_weak_explicit(c, &cur, cur - took,
							memory_order_relaxed,
							memory_order_relaxed));
	return took;
}

static int file_cmp(const void *a, const void *b)
{
	const struct shared_file *x = a, *y = b;

	if (x->dev != y->dev)
		return x->dev < y->dev ? -1 : 1;
	return x->ino < y->ino ? -1 : x->ino > y->ino;
}

/* With files_lock held: N's record, made if need be; NULL out of memory. */
static struct shared_file *record_of(dev_t dev, ino_t ino, int make)
{
	struct shared_file key = { .dev = dev, .ino = ino }, *f;
	void *slot = tfind(&key, &files, file_cmp);

	if (slot)
		return *(struct shared_file **)slot;
	if (!make)
		return NULL;
	f = malloc(sizeof(*f));
	if (!f)
		return NULL;
	*f = key;
	slot = tsearch(f, &files, file_cmp);
	if (!slot) {
		free(f);
		return NULL;
	}
	return f;
}

static void record_forget(struct shared_file *f)
{
	(void)tdelete(f, &files, file_cmp);
	free(f);
}

static void no_record(void)
{
	ws_log("out of memory recording a shared file's charge; it is kept "
	       "until unmount");
}

int shared_entry_charge(uint64_t bytes)
{
	int r = ledger_charge(bytes, 1);

	if (r == 0) {
		add(&pending[QUOTA_BYTES], bytes);
		add(&pending[QUOTA_INODES], 1);
		add(&used[QUOTA_BYTES], bytes);
		add(&used[QUOTA_INODES], 1);
	}
	return r;
}

void shared_entry_undo(uint64_t bytes)
{
	uint64_t inodes = take(&pending[QUOTA_INODES], 1);

	bytes = take(&pending[QUOTA_BYTES], bytes);
	(void)take(&used[QUOTA_BYTES], bytes);
	(void)take(&used[QUOTA_INODES], inodes);
	ledger_release(bytes, inodes);
}

void shared_entry_made(const struct ws_inode *n, uint64_t bytes)
{
	struct shared_file *f;

	pthread_mutex_lock(&files_lock);
	f = record_of(n->dev, n->ino, 1);
	if (f && !f->made) {
		f->made = 1;
		f->made_bytes = take(&pending[QUOTA_BYTES], bytes);
		(void)take(&pending[QUOTA_INODES], 1);
	}
	pthread_mutex_unlock(&files_lock);
	if (!f)
		no_record();
}

static void grown(const struct ws_inode *n, uint64_t bytes)
{
	struct shared_file *f;

	add(&used[QUOTA_BYTES], bytes);
	pthread_mutex_lock(&files_lock);
	f = record_of(n->dev, n->ino, 1);
	if (f)
		f->bytes += bytes;
	pthread_mutex_unlock(&files_lock);
	if (!f)
		no_record();
}

int shared_grow(const struct ws_inode *n, uint64_t bytes)
{
	int r = ledger_charge(bytes, 0);

	if (r == 0)
		grown(n, bytes);
	return r;
}

void shared_grow_force(const struct ws_inode *n, uint64_t bytes)
{
	ledger_force(bytes, 0);
	grown(n, bytes);
}

void shared_shrink(const struct ws_inode *n, uint64_t bytes)
{
	struct shared_file *f;
	uint64_t took = 0;

	pthread_mutex_lock(&files_lock);
	f = record_of(n->dev, n->ino, 0);
	if (f) {
		took = bytes < f->bytes ? bytes : f->bytes;
		f->bytes -= took;
		if (f->bytes == 0 && !f->made)
			record_forget(f);
	}
	pthread_mutex_unlock(&files_lock);
	(void)take(&used[QUOTA_BYTES], took);
	ledger_release(took, 0);
}

void shared_gone(dev_t dev, ino_t ino)
{
	struct shared_file *f;
	uint64_t bytes = 0, inodes = 0;

	pthread_mutex_lock(&files_lock);
	f = record_of(dev, ino, 0);
	if (f) {
		bytes = f->bytes + f->made_bytes;
		inodes = f->made ? 1 : 0;
		record_forget(f);
	}
	pthread_mutex_unlock(&files_lock);
	bytes = take(&used[QUOTA_BYTES], bytes);
	inodes = take(&used[QUOTA_INODES], inodes);
	ledger_release(bytes, inodes);
}

void shared_usage(uint64_t *bytes, uint64_t *inodes)
{
	*bytes = atomic_load_explicit(&used[QUOTA_BYTES], memory_order_relaxed);
	*inodes = atomic_load_explicit(&used[QUOTA_INODES],
				       memory_order_relaxed);
}

void shared_unmount(void)
{
	uint64_t bytes = take(&used[QUOTA_BYTES], UINT64_MAX);

	ledger_release(bytes, take(&used[QUOTA_INODES], UINT64_MAX));
	(void)take(&pending[QUOTA_BYTES], UINT64_MAX);
	(void)take(&pending[QUOTA_INODES], UINT64_MAX);
	pthread_mutex_lock(&files_lock);
	tdestroy(files, free);
	files = NULL;
	pthread_mutex_unlock(&files_lock);
}
