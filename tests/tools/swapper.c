/*
** swapper: a hostile host-side process for the escape tests.
**
** Usage: swapper SECONDS PATH_A PATH_B [PATH_A2 PATH_B2 ...]
**
** Atomically exchanges each pair of paths with renameat2(RENAME_EXCHANGE) in
** a tight loop for SECONDS (fractions allowed), so that a name the daemon
** looks up is a directory at one instant and a symlink to somewhere outside
** its upper directory the next.  With several pairs, they are swapped round
** robin.  Prints the number of completed exchanges and exits 0; an exchange
** that fails exits 1 (both names must exist all the time).  Each pair is
** swapped an even number of times, so every pair ends as it started.
*/
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE (1 << 1)
#endif

static int exchange(const char *a, const char *b)
{
	return (int)syscall(SYS_renameat2, AT_FDCWD, a, AT_FDCWD, b,
			    RENAME_EXCHANGE);
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	if (argc < 4 || (argc - 2) % 2) {
		fprintf(stderr, "usage: swapper SECONDS A B [A2 B2 ...]\n");
		return 2;
	}
	double end = now() + atof(argv[1]);
	int npairs = (argc - 2) / 2;
	unsigned long n = 0;
	do {
		for (int k = 0; k < 64; k++) {
			for (int p = 0; p < npairs; p++) {
				const char *a = argv[2 + 2 * p], *b = argv[3 + 2 * p];
				/* two exchanges: back to the start each round */
				for (int t = 0; t < 2; t++) {
					if (exchange(a, b) < 0) {
						fprintf(stderr, "swapper: renameat2 %s %s: %s\n",
							a, b, strerror(errno));
						return 1;
					}
					n++;
				}
			}
		}
	} while (now() < end);
	printf("%lu\n", n);
	return 0;
}
