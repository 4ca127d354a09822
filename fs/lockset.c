/*
** One lock owner's byte ranges (design in lockset.h).
**
** An owner holds a handful of ranges (SQLite holds at most three), so an
** update rebuilds the sorted array: cut the new range out of every old one,
** insert it, and merge neighbours of one type. Quadratic in theory, a few
** dozen moves in practice, and simple enough to check by eye.
*/
#include "lockset.h"
#include "grow.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

int lockset_range(int64_t l_start, int64_t l_len, int64_t *start,
		  int64_t *end)
{
	if (l_start < 0)
		return -EINVAL;
	if (l_len == 0) {
		*start = l_start;
		*end = LOCKSET_EOF;
	} else if (l_len > 0) {
		if (l_len - 1 > LOCKSET_EOF - l_start)
			return -EINVAL;
		*start = l_start;
		*end = l_start + (l_len - 1);
	} else {
		if (l_len == INT64_MIN || l_start + l_len < 0)
			return -EINVAL;
		*start = l_start + l_len;
		*end = l_start - 1;
	}
	return 0;
}

static int push(struct lock_range **v, size_t *n, size_t *cap,
		const struct lock_range *r)
{
	if (*n == *cap && grow_array((void **)v, cap, sizeof(**v), 4) < 0)
		return -ENOMEM;
	(*v)[(*n)++] = *r;
	return 0;
}

/* What is left of R once [START, END] is cut out: up to two pieces. */
static int keep_outside(struct lock_range **v, size_t *n, size_t *cap,
			const struct lock_range *r, int64_t start, int64_t end)
{
	struct lock_range piece = *r;

	if (r->end < start || r->start > end)
		return push(v, n, cap, r);
	if (r->start < start) {
		piece.end = start - 1;
		if (push(v, n, cap, &piece) < 0)
			return -ENOMEM;
	}
	if (r->end > end) {
		piece = *r;
		piece.start = end + 1;
		if (push(v, n, cap, &piece) < 0)
			return -ENOMEM;
	}
	return 0;
}

static int by_start(const void *a, const void *b)
{
	const struct lock_range *x = a, *y = b;

	return x->start < y->start ? -1 : x->start > y->start;
}

/* Touching ranges of one type are one lock, as the kernel merges them. */
static size_t merge_neighbours(struct lock_range *v, size_t n)
{
	size_t out = 0;

	for (size_t i = 0; i < n; i++) {
		struct lock_range *last = out ? &v[out - 1] : NULL;

		if (last && last->type == v[i].type &&
		    last->end != LOCKSET_EOF && last->end + 1 >= v[i].start) {
			if (v[i].end > last->end)
				last->end = v[i].end;
			if (v[i].since_ns < last->since_ns)
				last->since_ns = v[i].since_ns;
			continue;
		}
		v[out++] = v[i];
	}
	return out;
}

int lockset_apply(struct lockset *s, int type, int64_t start, int64_t end,
		  int64_t now_ns)
{
	struct lock_range *v = NULL, added;
	size_t n = 0, cap = 0;

	int64_t since = now_ns;

	for (size_t i = 0; i < s->n; i++) {
		const struct lock_range *r = &s->v[i];

		/* Re-locking what it holds is not a new lock: keep its age. */
		if (r->type == type && r->start <= end && r->end >= start &&
		    r->since_ns < since)
			since = r->since_ns;
		if (keep_outside(&v, &n, &cap, r, start, end) < 0)
			goto oom;
	}
	if (type != F_UNLCK) {
		added = (struct lock_range){ type, start, end, since };
		if (push(&v, &n, &cap, &added) < 0)
			goto oom;
	}
	if (n > 1)
		qsort(v, n, sizeof(*v), by_start);
	n = merge_neighbours(v, n);
	free(s->v);
	s->v = v;
	s->n = n;
	s->cap = cap;
	return 0;
oom:
	free(v);
	return -ENOMEM;
}

int lockset_conflicts(const struct lockset *s, int type, int64_t start,
		      int64_t end)
{
	for (size_t i = 0; i < s->n; i++) {
		const struct lock_range *r = &s->v[i];

		if (r->end < start || r->start > end)
			continue;
		if (type == F_WRLCK || r->type == F_WRLCK)
			return 1;
	}
	return 0;
}

void lockset_free(struct lockset *s)
{
	free(s->v);
	memset(s, 0, sizeof(*s));
}
