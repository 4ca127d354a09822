/*
** Unit tests for lockset.c: one lock owner's byte ranges, as the kernel
** keeps them.
**
** The reference is the kernel itself. Every lock a test applies to a
** lockset is also taken with F_OFD_SETLK on one open file description of a
** scratch file, and the ranges the kernel then holds for it (/proc/locks
** lists them merged and split as the kernel keeps them) must be the set's.
** Conflicts are compared with F_OFD_GETLK from a second description, and
** lockset_range with how fcntl(2) reads the same struct flock. Scripted
** cases say what is expected in words; a long seeded random walk then
** looks for any sequence where the two disagree.
**
** lockset.c allocates through grow_array(), which calls reallocarray():
** the one below can be told to fail, to check that a failed update leaves
** the set as it was.
*/
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "lockset.h"
#include "testutil.h"

#define EOF_ LOCKSET_EOF

/* ---- allocation failures ------------------------------------------------ */

static int fail_after = -1;	/* allocations left before one fails; -1 never */

void *reallocarray(void *p, size_t n, size_t size)
{
	if (fail_after == 0) {
		errno = ENOMEM;
		return NULL;
	}
	if (fail_after > 0)
		fail_after--;
	if (size != 0 && n > SIZE_MAX / size) {
		errno = ENOMEM;
		return NULL;
	}
	return realloc(p, n * size);
}

/* ---- rendering ---------------------------------------------------------- */

struct krange {
	int type;
	int64_t start, end;
};

static void render_one(char **p, size_t *left, int type, int64_t start,
		       int64_t end)
{
	int n;

	if (end == EOF_)
		n = snprintf(*p, *left, "%c%" PRId64 "-EOF",
			     type == F_WRLCK ? 'W' : 'R', start);
	else
		n = snprintf(*p, *left, "%c%" PRId64 "-%" PRId64,
			     type == F_WRLCK ? 'W' : 'R', start, end);
	CHECK(n > 0 && (size_t)n < *left, "rendering overflow");
	*p += n;
	*left -= (size_t)n;
}

/* "W0-9 R20-EOF": the set's ranges in order, for messages and checks. */
static const char *render(const struct lockset *s, char *buf, size_t len)
{
	char *p = buf;
	size_t left = len;

	buf[0] = '\0';
	for (size_t i = 0; i < s->n; i++) {
		if (i > 0) {
			CHECK(left > 1, "rendering overflow");
			*p++ = ' ';
			*p = '\0';
			left--;
		}
		render_one(&p, &left, s->v[i].type, s->v[i].start,
			   s->v[i].end);
	}
	return buf;
}

/* The set's own invariants: sorted, apart, no touching pair of one type,
** valid types and ranges. */
static void check_sound(const struct lockset *s)
{
	char buf[4096];

	for (size_t i = 0; i < s->n; i++) {
		const struct lock_range *r = &s->v[i];

		CHECK(r->type == F_RDLCK || r->type == F_WRLCK, "type %d in %s",
		      r->type, render(s, buf, sizeof(buf)));
		CHECK(r->start >= 0 && r->start <= r->end, "range %zu of %s",
		      i, render(s, buf, sizeof(buf)));
		if (i == 0)
			continue;
		CHECK(s->v[i - 1].end < r->start, "overlap in %s",
		      render(s, buf, sizeof(buf)));
		CHECK(s->v[i - 1].type != r->type ||
		      s->v[i - 1].end + 1 < r->start,
		      "unmerged neighbours in %s", render(s, buf, sizeof(buf)));
	}
	CHECK(s->n <= s->cap, "n %zu > cap %zu", s->n, s->cap);
}

#define EXPECT(s, want)							\
	do {								\
		char got_[4096];					\
		check_sound(s);						\
		CHECK(streq(render((s), got_, sizeof(got_)), (want)),	\
		      "set is '%s', expected '%s'", got_, (want));	\
	} while (0)

/* ---- the kernel's side -------------------------------------------------- */

struct kfile {
	int fd;			/* the owner's description */
	int other;		/* a second description, for F_OFD_GETLK */
	unsigned int major, minor;
	unsigned long ino;
	int usable;		/* /proc/locks readable */
};

static struct flock flock_of(int type, int64_t l_start, int64_t l_len)
{
	struct flock fl;

	memset(&fl, 0, sizeof(fl));
	fl.l_type = (short)type;
	fl.l_whence = SEEK_SET;
	fl.l_start = l_start;
	fl.l_len = l_len;
	return fl;
}

static int64_t len_of(int64_t start, int64_t end)
{
	return end == EOF_ ? 0 : end - start + 1;
}

static void kfile_open(struct kfile *k)
{
	char path[4096];
	struct stat st;
	FILE *f;

	snprintf(path, sizeof(path), "%s/locked", test_tmpdir());
	k->fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	CHECK(k->fd >= 0, "open %s: %s", path, strerror(errno));
	k->other = open(path, O_RDWR | O_CLOEXEC);
	CHECK(k->other >= 0, "open %s: %s", path, strerror(errno));
	CHECK(fstat(k->fd, &st) == 0, "fstat: %s", strerror(errno));
	k->major = major(st.st_dev);
	k->minor = minor(st.st_dev);
	k->ino = (unsigned long)st.st_ino;
	f = fopen("/proc/locks", "re");
	k->usable = f != NULL;
	if (f)
		fclose(f);
	else
		fprintf(stderr, "test_lockset: /proc/locks: %s; comparing "
			"with the kernel through F_OFD_GETLK only\n",
			strerror(errno));
}

static void kfile_close(struct kfile *k)
{
	CHECK(close(k->fd) == 0 && close(k->other) == 0, "close: %s",
	      strerror(errno));
}

/* F_OFD_SETLK on the owner's description; 0 or -errno. */
static int k_setlk(struct kfile *k, int type, int64_t l_start, int64_t l_len)
{
	struct flock fl = flock_of(type, l_start, l_len);

	return fcntl(k->fd, F_OFD_SETLK, &fl) == 0 ? 0 : -errno;
}

static int cmp_krange(const void *a, const void *b)
{
	const struct krange *x = a, *y = b;

	return x->start < y->start ? -1 : x->start > y->start;
}

/* What the kernel holds on the scratch file, rendered like render(). Only
** the owner's description holds locks there. */
static const char *k_render(struct kfile *k, char *buf, size_t len)
{
	struct krange v[256];
	char line[512], kind[32], rw[32], end[32];
	unsigned int maj, min;
	unsigned long ino;
	long long start;
	size_t n = 0, left = len;
	char *p = buf;
	FILE *f;
	int pid;

	f = fopen("/proc/locks", "re");
	CHECK(f != NULL, "/proc/locks: %s", strerror(errno));
	while (fgets(line, sizeof(line), f)) {
		/* Blocked waiters are "N: -> ..."; none wait on this file. */
		if (sscanf(line, "%*d: %31s %*s %31s %d %x:%x:%lu %lld %31s",
			   kind, rw, &pid, &maj, &min, &ino, &start, end) != 8)
			continue;
		if (ino != k->ino || maj != k->major || min != k->minor)
			continue;
		CHECK(strcmp(kind, "OFDLCK") == 0, "not an OFD lock: %s", line);
		CHECK(n < sizeof(v) / sizeof(v[0]), "too many kernel locks");
		v[n].type = strcmp(rw, "WRITE") == 0 ? F_WRLCK : F_RDLCK;
		v[n].start = start;
		v[n].end = strcmp(end, "EOF") == 0 ? EOF_ : strtoll(end, NULL, 10);
		n++;
	}
	fclose(f);
	qsort(v, n, sizeof(v[0]), cmp_krange);
	buf[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		if (i > 0) {
			CHECK(left > 1, "rendering overflow");
			*p++ = ' ';
			*p = '\0';
			left--;
		}
		render_one(&p, &left, v[i].type, v[i].start, v[i].end);
	}
	return buf;
}

/* Whether the kernel sees a lock of the owner conflicting with TYPE over
** [START, END], asked from the second description. */
static int k_conflicts(struct kfile *k, int type, int64_t start, int64_t end)
{
	struct flock fl = flock_of(type, start, len_of(start, end));

	CHECK(fcntl(k->other, F_OFD_GETLK, &fl) == 0, "F_OFD_GETLK: %s",
	      strerror(errno));
	return fl.l_type != F_UNLCK;
}

static void same_as_kernel(struct kfile *k, const struct lockset *s,
			   const char *step)
{
	char mine[4096], kern[4096];

	check_sound(s);
	if (!k->usable)
		return;
	render(s, mine, sizeof(mine));
	k_render(k, kern, sizeof(kern));
	CHECK(streq(mine, kern), "after %s: set '%s', kernel '%s'", step,
	      mine, kern);
}

/* Applies an F_SETLK of TYPE with L_START/L_LEN to both, at NOW. */
static void both(struct kfile *k, struct lockset *s, int type,
		 int64_t l_start, int64_t l_len, int64_t now)
{
	char step[128];
	int64_t start, end;

	snprintf(step, sizeof(step), "%s %" PRId64 "/%" PRId64,
		 type == F_UNLCK ? "unlock" : type == F_WRLCK ? "write" :
		 "read", l_start, l_len);
	CHECK_RC(lockset_range(l_start, l_len, &start, &end), 0);
	CHECK_RC(k_setlk(k, type, l_start, l_len), 0);
	CHECK_RC(lockset_apply(s, type, start, end, now), 0);
	same_as_kernel(k, s, step);
}

static void clear_both(struct kfile *k, struct lockset *s)
{
	both(k, s, F_UNLCK, 0, 0, 0);
	EXPECT(s, "");
}

/* ---- lockset_range ------------------------------------------------------ */

static void range_ok(int64_t l_start, int64_t l_len, int64_t want_start,
		     int64_t want_end)
{
	int64_t start = -7, end = -7;

	CHECK_RC(lockset_range(l_start, l_len, &start, &end), 0);
	CHECK(start == want_start && end == want_end,
	      "%" PRId64 "/%" PRId64 " gave [%" PRId64 ", %" PRId64 "]",
	      l_start, l_len, start, end);
}

static void test_range(struct kfile *k)
{
	int64_t start, end;

	range_ok(0, 0, 0, EOF_);
	range_ok(100, 0, 100, EOF_);
	range_ok(10, 5, 10, 14);
	range_ok(10, 1, 10, 10);
	range_ok(10, -5, 5, 9);		/* the bytes before l_start */
	range_ok(10, -10, 0, 9);
	range_ok(0, INT64_MAX, 0, INT64_MAX - 1);
	/* a range ending on the last offset is a lock to EOF, as in the
	** kernel, which keeps OFFSET_MAX for both */
	range_ok(1, INT64_MAX, 1, EOF_);
	range_ok(INT64_MAX, 1, INT64_MAX, EOF_);
	range_ok(INT64_MAX, 0, INT64_MAX, EOF_);
	range_ok(INT64_MAX, INT64_MIN + 1, 0, INT64_MAX - 1);

	/* What fcntl refuses: a negative start, a negative length reaching
	** before 0. The kernel says EINVAL for both. */
	CHECK_RC(lockset_range(-1, 5, &start, &end), -EINVAL);
	CHECK_RC(k_setlk(k, F_WRLCK, -1, 5), -EINVAL);
	CHECK_RC(lockset_range(-1, 0, &start, &end), -EINVAL);
	CHECK_RC(lockset_range(10, -11, &start, &end), -EINVAL);
	CHECK_RC(k_setlk(k, F_WRLCK, 10, -11), -EINVAL);
	CHECK_RC(lockset_range(0, -1, &start, &end), -EINVAL);
	CHECK_RC(lockset_range(5, INT64_MIN, &start, &end), -EINVAL);
	CHECK_RC(k_setlk(k, F_WRLCK, 5, INT64_MIN), -EINVAL);
	/* An end past the largest offset: lockset says EINVAL, the kernel
	** EOVERFLOW. The daemon never sees such a range (the kernel refuses
	** it before FUSE is asked), so only the refusal matters. */
	CHECK_RC(lockset_range(2, INT64_MAX, &start, &end), -EINVAL);
	CHECK_RC(k_setlk(k, F_WRLCK, 2, INT64_MAX), -EOVERFLOW);
	CHECK_RC(lockset_range(INT64_MAX, 2, &start, &end), -EINVAL);
	CHECK_RC(k_setlk(k, F_WRLCK, INT64_MAX, 2), -EOVERFLOW);

	/* The kernel reads the accepted ones the same way. */
	{
		struct lockset s = { 0 };
		static const int64_t cases[][2] = {
			{ 10, -5 }, { 10, -10 }, { 1, INT64_MAX },
			{ INT64_MAX, 1 }, { 0, INT64_MAX }, { 7, 3 },
		};

		for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
			both(k, &s, F_WRLCK, cases[i][0], cases[i][1], 1);
			clear_both(k, &s);
		}
		lockset_free(&s);
	}
}

/* ---- scripted cases ----------------------------------------------------- */

static int64_t since_at(const struct lockset *s, int64_t offset)
{
	for (size_t i = 0; i < s->n; i++)
		if (s->v[i].start <= offset && offset <= s->v[i].end)
			return s->v[i].since_ns;
	test_fail(__FILE__, __LINE__, "since_at", "no range holds %" PRId64,
		  offset);
}

static void test_split_and_unlock(struct kfile *k)
{
	struct lockset s = { 0 };

	both(k, &s, F_WRLCK, 0, 100, 10);
	EXPECT(&s, "W0-99");
	both(k, &s, F_UNLCK, 40, 20, 20);		/* the middle */
	EXPECT(&s, "W0-39 W60-99");
	CHECK(since_at(&s, 0) == 10 && since_at(&s, 99) == 10,
	      "pieces of a split lock keep its time");
	both(k, &s, F_UNLCK, 0, 1, 30);			/* first byte */
	both(k, &s, F_UNLCK, 99, 1, 30);		/* last byte */
	EXPECT(&s, "W1-39 W60-98");
	both(k, &s, F_UNLCK, 30, 40, 30);		/* across the gap */
	EXPECT(&s, "W1-29 W70-98");
	both(k, &s, F_UNLCK, 200, 10, 30);		/* nothing there */
	EXPECT(&s, "W1-29 W70-98");
	both(k, &s, F_UNLCK, 0, 0, 30);			/* everything */
	EXPECT(&s, "");
	CHECK(s.n == 0, "empty set has %zu ranges", s.n);
	lockset_free(&s);
	CHECK(s.v == NULL && s.n == 0 && s.cap == 0, "lockset_free");
}

static void test_merge(struct kfile *k)
{
	struct lockset s = { 0 };

	both(k, &s, F_RDLCK, 0, 10, 300);
	both(k, &s, F_RDLCK, 10, 10, 100);		/* touching after */
	EXPECT(&s, "R0-19");
	CHECK(since_at(&s, 5) == 100, "merged: the oldest time");
	both(k, &s, F_RDLCK, 15, 15, 200);		/* overlapping */
	EXPECT(&s, "R0-29");
	CHECK(since_at(&s, 0) == 100, "merged: the oldest time");
	both(k, &s, F_RDLCK, 40, 10, 50);
	EXPECT(&s, "R0-29 R40-49");
	CHECK(since_at(&s, 0) == 100 && since_at(&s, 40) == 50, "apart");
	both(k, &s, F_RDLCK, 30, 10, 400);		/* fills the gap */
	EXPECT(&s, "R0-49");
	CHECK(since_at(&s, 45) == 50, "merged: the oldest time");
	both(k, &s, F_RDLCK, 60, 5, 60);
	both(k, &s, F_RDLCK, 55, 5, 70);		/* touching before */
	EXPECT(&s, "R0-49 R55-64");
	CHECK(since_at(&s, 55) == 60, "merged: the oldest time");
	/* a write lock next to read locks touches but does not merge */
	both(k, &s, F_WRLCK, 50, 5, 80);
	EXPECT(&s, "R0-49 W50-54 R55-64");
	both(k, &s, F_WRLCK, 65, 0, 90);		/* to EOF, touching */
	EXPECT(&s, "R0-49 W50-54 R55-64 W65-EOF");
	clear_both(k, &s);
	lockset_free(&s);
}

static void test_replace_type(struct kfile *k)
{
	struct lockset s = { 0 };

	both(k, &s, F_RDLCK, 0, 100, 10);
	both(k, &s, F_WRLCK, 40, 20, 20);		/* upgrade a middle */
	EXPECT(&s, "R0-39 W40-59 R60-99");
	CHECK(since_at(&s, 0) == 10 && since_at(&s, 50) == 20 &&
	      since_at(&s, 99) == 10, "the new piece has its own time");
	both(k, &s, F_RDLCK, 50, 20, 30);		/* downgrade a part */
	EXPECT(&s, "R0-39 W40-49 R50-99");
	CHECK(since_at(&s, 55) == 10, "merged: the oldest time");
	both(k, &s, F_WRLCK, 0, 0, 40);			/* all of it */
	EXPECT(&s, "W0-EOF");
	CHECK(since_at(&s, 0) == 20,
	      "taken over a write lock it held: that lock's time");
	both(k, &s, F_WRLCK, 0, 0, 45);			/* again, all of it */
	CHECK(since_at(&s, 0) == 20, "re-locked: still held since then");
	both(k, &s, F_RDLCK, 10, 10, 50);
	EXPECT(&s, "W0-9 R10-19 W20-EOF");
	clear_both(k, &s);
	lockset_free(&s);
}

static void test_eof(struct kfile *k)
{
	struct lockset s = { 0 };

	both(k, &s, F_WRLCK, 100, 0, 10);
	EXPECT(&s, "W100-EOF");
	both(k, &s, F_UNLCK, 200, 0, 20);		/* unlock the tail */
	EXPECT(&s, "W100-199");
	both(k, &s, F_WRLCK, 150, 0, 30);		/* to EOF again */
	EXPECT(&s, "W100-EOF");
	both(k, &s, F_UNLCK, 150, 50, 40);		/* a hole in it */
	EXPECT(&s, "W100-149 W200-EOF");
	both(k, &s, F_RDLCK, 0, 0, 50);			/* under all of it */
	EXPECT(&s, "R0-EOF");
	both(k, &s, F_UNLCK, 0, 1, 60);
	EXPECT(&s, "R1-EOF");
	/* negative lengths: the bytes before l_start */
	both(k, &s, F_WRLCK, 20, -10, 70);
	EXPECT(&s, "R1-9 W10-19 R20-EOF");
	both(k, &s, F_UNLCK, 10, -9, 80);
	EXPECT(&s, "W10-19 R20-EOF");
	clear_both(k, &s);
	lockset_free(&s);
}

static void conflicts_both(struct kfile *k, const struct lockset *s, int type,
			   int64_t start, int64_t end, int want)
{
	int got = lockset_conflicts(s, type, start, end);
	char buf[4096];

	CHECK(got == want, "%s over [%" PRId64 ", %" PRId64 "] against %s: "
	      "%d, expected %d", type == F_WRLCK ? "write" : "read", start,
	      end, render(s, buf, sizeof(buf)), got, want);
	CHECK(k_conflicts(k, type, start, end) == want, "the kernel says %d",
	      !want);
}

static void test_conflicts(struct kfile *k)
{
	struct lockset s = { 0 };

	conflicts_both(k, &s, F_WRLCK, 0, EOF_, 0);	/* nothing held */
	both(k, &s, F_RDLCK, 0, 10, 1);
	both(k, &s, F_WRLCK, 20, 10, 1);
	both(k, &s, F_RDLCK, 100, 0, 1);
	EXPECT(&s, "R0-9 W20-29 R100-EOF");
	conflicts_both(k, &s, F_RDLCK, 0, 9, 0);	/* read/read */
	conflicts_both(k, &s, F_WRLCK, 0, 9, 1);	/* write/read */
	conflicts_both(k, &s, F_WRLCK, 9, 9, 1);	/* one byte */
	conflicts_both(k, &s, F_WRLCK, 10, 19, 0);	/* the gap */
	conflicts_both(k, &s, F_RDLCK, 10, 19, 0);
	conflicts_both(k, &s, F_RDLCK, 15, 20, 1);	/* read/write */
	conflicts_both(k, &s, F_RDLCK, 29, 29, 1);
	conflicts_both(k, &s, F_WRLCK, 30, 99, 0);
	conflicts_both(k, &s, F_RDLCK, 30, EOF_, 0);
	conflicts_both(k, &s, F_WRLCK, 30, EOF_, 1);
	conflicts_both(k, &s, F_RDLCK, 100, EOF_, 0);
	conflicts_both(k, &s, F_WRLCK, INT64_MAX - 1, EOF_, 1);
	conflicts_both(k, &s, F_RDLCK, 0, EOF_, 1);
	clear_both(k, &s);
	lockset_free(&s);
}

/* ---- out of memory ------------------------------------------------------ */

static void test_enomem(void)
{
	struct lockset s = { 0 };
	char before[4096], after[4096];
	int failed = 0;

	/* Enough ranges that the split below needs a new array of several
	** growth steps. */
	for (int64_t i = 0; i < 20; i++)
		CHECK_RC(lockset_apply(&s, i % 2 ? F_RDLCK : F_WRLCK, i * 10,
				       i * 10 + 4, i), 0);
	render(&s, before, sizeof(before));
	for (int n = 0; n < 64; n++) {
		int rc;

		fail_after = n;
		rc = lockset_apply(&s, F_UNLCK, 2, 2, 99);
		fail_after = -1;
		if (rc == 0)
			break;
		CHECK_RC(rc, -ENOMEM);
		CHECK(streq(render(&s, after, sizeof(after)), before),
		      "a failed update changed the set: '%s'", after);
		check_sound(&s);
		failed++;
	}
	CHECK(failed > 0, "no allocation could be made to fail");
	CHECK(s.n == 21 && s.v[0].end == 1 && s.v[1].start == 3,
	      "the update after the failures: %s",
	      render(&s, after, sizeof(after)));
	lockset_free(&s);
}

/* ---- random walk against the kernel ------------------------------------- */

static uint64_t rng = 0x9e3779b97f4a7c15ULL;

static uint64_t next_rand(void)
{
	/* xorshift64*: fixed seed, so a failure is reproducible */
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return rng * 0x2545f4914f6cdd1dULL;
}

static int64_t pick(int64_t n)
{
	return (int64_t)(next_rand() % (uint64_t)n);
}

static void test_random(struct kfile *k)
{
	static const int types[] = { F_RDLCK, F_WRLCK, F_UNLCK };
	struct lockset s = { 0 };
	int64_t start, end;

	for (int step = 0; step < 3000; step++) {
		int type = types[pick(3)];
		int64_t l_start = pick(48), l_len;

		switch (pick(6)) {
		case 0:
			l_len = 0;			/* to EOF */
			break;
		case 1:
			l_len = -pick(l_start + 1);	/* backwards, or 0 */
			break;
		default:
			l_len = 1 + pick(12);
			break;
		}
		both(k, &s, type, l_start, l_len, step);
		/* ask about a random range both ways */
		type = pick(2) ? F_RDLCK : F_WRLCK;
		start = pick(60);
		end = pick(8) == 0 ? EOF_ : start + pick(10);
		conflicts_both(k, &s, type, start, end,
			       lockset_conflicts(&s, type, start, end));
	}
	clear_both(k, &s);
	lockset_free(&s);
}

int main(void)
{
	struct kfile k;

	kfile_open(&k);
	test_range(&k);
	test_split_and_unlock(&k);
	test_merge(&k);
	test_replace_type(&k);
	test_eof(&k);
	test_conflicts(&k);
	test_enomem();
	test_random(&k);
	kfile_close(&k);
	return 0;
}
