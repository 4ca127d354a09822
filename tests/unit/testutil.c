/*
** Shared helpers for the unit tests; see testutil.h.
*/
#include "testutil.h"

#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static char tmp_root[PATH_MAX];
static pid_t tmp_owner;

void test_fail(const char *file, int line, const char *expr,
	       const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s:%d: check failed: %s: ", file, line, expr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

const char *test_errname(int rc)
{
	return rc < 0 ? strerror(-rc) : "ok";
}

static int rm_entry(const char *path, const struct stat *st, int flag,
		    struct FTW *ftw)
{
	if (remove(path) != 0)
		fprintf(stderr, "cannot remove %s: %s\n", path,
			strerror(errno));
	return 0;
}

static void rm_tmp_root(void)
{
	/* A forked child that exited normally must not delete the parent's
	** directory. */
	if (getpid() != tmp_owner || tmp_root[0] == '\0')
		return;
	if (nftw(tmp_root, rm_entry, 16, FTW_DEPTH | FTW_PHYS) != 0)
		fprintf(stderr, "cannot clean up %s\n", tmp_root);
}

const char *test_tmpdir(void)
{
	const char *base = getenv("TMPDIR");

	if (tmp_root[0] != '\0')
		return tmp_root;
	if (base == NULL || base[0] == '\0')
		base = "/tmp";
	if (snprintf(tmp_root, sizeof(tmp_root), "%s/wsfs-unit-XXXXXX",
		     base) >= (int)sizeof(tmp_root) ||
	    mkdtemp(tmp_root) == NULL) {
		fprintf(stderr, "cannot create a temporary directory in %s\n",
			base);
		exit(1);
	}
	tmp_owner = getpid();
	if (atexit(rm_tmp_root) != 0) {
		fprintf(stderr, "atexit failed\n");
		exit(1);
	}
	return tmp_root;
}

long long test_now_ms(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0) {
		perror("clock_gettime");
		exit(1);
	}
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int streq(const char *a, const char *b)
{
	return a != NULL && b != NULL && strcmp(a, b) == 0;
}
