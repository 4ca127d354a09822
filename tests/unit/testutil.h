/*
** Minimal check harness for the unit tests.
**
** A failed check prints where and what failed and exits 1 at once: the
** tests build on earlier steps, so carrying on after a failure only adds
** noise.  Temporary directories are removed by an atexit handler, which is
** why forked children in the tests must leave with _exit().
*/
#ifndef WSFS_TESTUTIL_H
#define WSFS_TESTUTIL_H

#include <stddef.h>

#define CHECK(cond, ...)						\
	do {								\
		if (!(cond))						\
			test_fail(__FILE__, __LINE__, #cond, __VA_ARGS__); \
	} while (0)

/* Checks that EXPR evaluates to WANT (an int such as 0 or -EBUSY). */
#define CHECK_RC(expr, want)						\
	do {								\
		int rc_ = (expr);					\
		if (rc_ != (want))					\
			test_fail(__FILE__, __LINE__, #expr,		\
				  "returned %d (%s), expected %d", rc_,	\
				  test_errname(rc_), (want));		\
	} while (0)

__attribute__((noreturn, format(printf, 4, 5)))
void test_fail(const char *file, int line, const char *expr,
	       const char *fmt, ...);

const char *test_errname(int rc);

/* A fresh directory under $TMPDIR (or /tmp), removed at exit. */
const char *test_tmpdir(void);

/* Milliseconds on the monotonic clock. */
long long test_now_ms(void);

/* String equality that tolerates NULL, for use inside CHECK. */
int streq(const char *a, const char *b);

#endif
