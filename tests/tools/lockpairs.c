/*
** lockpairs: times uncontended lock+unlock pairs on one file, for
** tests/bench/locks.sh.
**
**   lockpairs flock|fcntl|ofd FILE PAIRS
**
** Prints "KIND PAIRS NS" where NS is the mean nanoseconds per pair. A pair
** is flock(LOCK_EX) + flock(LOCK_UN), or an F_SETLK (F_OFD_SETLK) write
** lock of the whole file and its unlock, each one syscall. A tenth as many
** pairs run first, untimed, so first-lock setup is not counted.
*/
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

enum kind { K_FLOCK, K_FCNTL, K_OFD };

static int lock_once(enum kind k, int fd, int lock)
{
	struct flock fl;

	if (k == K_FLOCK)
		return flock(fd, lock ? LOCK_EX : LOCK_UN);
	memset(&fl, 0, sizeof(fl));
	fl.l_type = lock ? F_WRLCK : F_UNLCK;
	fl.l_whence = SEEK_SET;
	return fcntl(fd, k == K_OFD ? F_OFD_SETLK : F_SETLK, &fl);
}

static int pairs(enum kind k, int fd, long n)
{
	for (long i = 0; i < n; i++)
		if (lock_once(k, fd, 1) < 0 || lock_once(k, fd, 0) < 0)
			return -1;
	return 0;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	enum kind k;
	double t0, t1;
	long n;
	int fd;

	if (argc != 4 || (n = strtol(argv[3], NULL, 10)) <= 0) {
		fprintf(stderr, "usage: lockpairs flock|fcntl|ofd FILE PAIRS\n");
		return 2;
	}
	if (strcmp(argv[1], "flock") == 0)
		k = K_FLOCK;
	else if (strcmp(argv[1], "fcntl") == 0)
		k = K_FCNTL;
	else if (strcmp(argv[1], "ofd") == 0)
		k = K_OFD;
	else {
		fprintf(stderr, "lockpairs: unknown kind '%s'\n", argv[1]);
		return 2;
	}
	fd = open(argv[2], O_RDWR | O_CREAT, 0644);
	if (fd < 0) {
		fprintf(stderr, "lockpairs: %s: %s\n", argv[2], strerror(errno));
		return 1;
	}
	if (pairs(k, fd, n / 10 + 1) < 0)
		goto fail;
	t0 = now();
	if (pairs(k, fd, n) < 0)
		goto fail;
	t1 = now();
	printf("%s %ld %.0f\n", argv[1], n, (t1 - t0) * 1e9 / (double)n);
	close(fd);
	return 0;
fail:
	fprintf(stderr, "lockpairs: %s on %s: %s\n", argv[1], argv[2],
		strerror(errno));
	close(fd);
	return 1;
}
