/*
** fsx: a random-operation file-system exerciser for the wsfs test suite.
**
** One test file (and a second, read-only source file for copy_file_range)
** is driven by a seeded stream of random operations: write, read, truncate
** up and down, MAP_SHARED writes with msync, mmap reads, fallocate (plain,
** KEEP_SIZE, PUNCH_HOLE, ZERO_RANGE), copy_file_range, fsync/fdatasync and
** close+reopen.  Every byte the file system returns is compared with an
** in-memory model of what the file must contain, and the file's size is
** checked after every operation.  On the first difference the last operations
** are printed and the program exits 1; an unexpected syscall failure exits 2.
** Success prints the op count and the seed and exits 0.
**
** Usage: fsx [options] FILE
**   -S seed   random seed (default: from time and pid; always printed)
**   -N ops    number of operations (default 10000)
**   -l len    maximum file size (default 256 KiB)
**   -o len    maximum length of one operation (default 64 KiB)
**   -c n      close and reopen on average every n ops (0: never; default 100)
**   -f n      full-file verification every n ops (default 1000)
**   -Z        O_DIRECT for read/write (offsets and lengths aligned to 4 KiB)
**   -M        no mmap operations
**   -F        no fallocate operations
**   -C        no copy_file_range
**   -s        strict: an operation the file system does not support
**             (EOPNOTSUPP/ENOSYS/EXDEV) is a failure instead of being
**             disabled with a note (ZERO_RANGE is always optional)
**   -v        print every operation
**   -q        print only failures and the final line
*/
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/falloc.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#define LOG_DEPTH 20
#define DIO_ALIGN 4096

enum op_kind {
	OP_WRITE, OP_READ, OP_READ2, OP_WRITE2, OP_TRUNC, OP_MAPWRITE,
	OP_MAPREAD, OP_FALLOC, OP_FALLOC_KEEP, OP_PUNCH, OP_ZERO, OP_COPY,
	OP_FSYNC, OP_REOPEN, OP_VERIFY, OP_NKINDS
};

static const char *op_names[OP_NKINDS] = {
	"write", "read", "read(fd2)", "write(fd2)", "truncate", "mapwrite",
	"mapread", "fallocate", "falloc_keep", "punch_hole", "zero_range",
	"copy_range", "fsync", "reopen", "verify",
};

struct logent {
	long n;
	enum op_kind kind;
	uint64_t off, len, arg;
	uint64_t size_before, size_after;
	long ret;
};

static struct logent oplog[LOG_DEPTH];
static long opnum;

static char *fname, *srcname;
static int fd = -1, fd2 = -1, srcfd = -1;
static unsigned char *good;	/* model of FILE */
static unsigned char *srcdata;	/* model of FILE.src */
static unsigned char *buf;	/* I/O buffer (aligned) */
static uint64_t file_size, src_size;
static uint64_t maxlen = 256 * 1024, maxoplen = 64 * 1024;
static long numops = 10000, reopen_every = 100, verify_every = 1000;
static uint64_t seed;
static int odirect, no_mmap, no_falloc, no_copy, strict, verbose, quiet;
static int disabled[OP_NKINDS];
static long counts[OP_NKINDS];
static long pagesize;

/* --- deterministic PRNG (xoshiro256**, seeded through splitmix64) --- */
static uint64_t rs[4];

static uint64_t splitmix(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

static uint64_t rnd(void)
{
	uint64_t r = rotl(rs[1] * 5, 7) * 9, t = rs[1] << 17;
	rs[2] ^= rs[0];
	rs[3] ^= rs[1];
	rs[1] ^= rs[2];
	rs[0] ^= rs[3];
	rs[2] ^= t;
	rs[3] = rotl(rs[3], 45);
	return r;
}

/* uniform in [0, n) ; n > 0 */
static uint64_t rnd_below(uint64_t n)
{
	return rnd() % n;
}

static void fill_random(unsigned char *p, uint64_t n)
{
	while (n >= 8) {
		uint64_t r = rnd();
		memcpy(p, &r, 8);
		p += 8;
		n -= 8;
	}
	if (n) {
		uint64_t r = rnd();
		memcpy(p, &r, n);
	}
}

/* --- logging and failure --- */
static struct logent *log_begin(enum op_kind k, uint64_t off, uint64_t len,
				uint64_t arg)
{
	struct logent *e = &oplog[opnum % LOG_DEPTH];
	e->n = opnum;
	e->kind = k;
	e->off = off;
	e->len = len;
	e->arg = arg;
	e->size_before = file_size;
	e->size_after = file_size;
	e->ret = 0;
	return e;
}

static void print_ent(FILE *out, const struct logent *e)
{
	fprintf(out, "  #%-7ld %-11s off=0x%-7" PRIx64 " len=0x%-6" PRIx64
		" (end 0x%" PRIx64 ")", e->n, op_names[e->kind], e->off, e->len,
		e->off + e->len);
	if (e->kind == OP_COPY)
		fprintf(out, " src_off=0x%" PRIx64, e->arg);
	else if (e->kind == OP_TRUNC)
		fprintf(out, " new_size=0x%" PRIx64, e->arg);
	else if (e->kind == OP_FSYNC)
		fprintf(out, " %s", e->arg ? "fdatasync" : "fsync");
	fprintf(out, " size 0x%" PRIx64 "->0x%" PRIx64 " ret=%ld\n",
		e->size_before, e->size_after, e->ret);
}

static void dump_log(void)
{
	long first = opnum >= LOG_DEPTH - 1 ? opnum - (LOG_DEPTH - 1) : 0;
	fprintf(stderr, "last %ld operations (seed %" PRIu64 ", file %s):\n",
		opnum - first + 1, seed, fname);
	for (long i = first; i <= opnum; i++)
		print_ent(stderr, &oplog[i % LOG_DEPTH]);
}

static void __attribute__((noreturn, format(printf, 2, 3)))
fail(int code, const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "fsx: FAILURE at op #%ld: ", opnum);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	dump_log();
	exit(code);
}

/* syscall failure */
#define SYSFAIL(what) fail(2, "%s: %s (errno %d)", what, strerror(errno), errno)

static int unsupported(int e)
{
	return e == EOPNOTSUPP || e == ENOSYS || e == EXDEV;
}

static void disable(enum op_kind k, int e)
{
	if (strict && k != OP_ZERO)
		fail(2, "%s not supported: %s", op_names[k], strerror(e));
	if (!disabled[k] && !quiet)
		fprintf(stderr, "fsx: note: %s not supported (%s), disabled\n",
			op_names[k], strerror(e));
	disabled[k] = 1;
}

/* compare LEN bytes read at OFF with the model */
static void check_buf(const unsigned char *got, uint64_t off, uint64_t len,
		      const char *how)
{
	if (memcmp(got, good + off, len) == 0)
		return;
	uint64_t i = 0, bad = 0, last = 0;
	while (i < len && got[i] == good[off + i])
		i++;
	for (uint64_t j = i; j < len; j++)
		if (got[j] != good[off + j]) {
			bad++;
			last = j;
		}
	fprintf(stderr, "fsx: %s mismatch at file offset 0x%" PRIx64
		" (%" PRIu64 " bad bytes, last bad at 0x%" PRIx64 ")\n",
		how, off + i, bad, off + last);
	fprintf(stderr, "  offset     expected got\n");
	for (uint64_t j = i; j < len && j < i + 16; j++)
		fprintf(stderr, "  0x%-8" PRIx64 " 0x%02x     0x%02x%s\n", off + j,
			good[off + j], got[j],
			good[off + j] != got[j] ? "  <--" : "");
	fail(1, "data mismatch (%s of 0x%" PRIx64 "+0x%" PRIx64 ")", how, off,
	     len);
}

static void check_size(const char *when)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		SYSFAIL("fstat");
	if ((uint64_t)st.st_size != file_size)
		fail(1, "size mismatch %s: file system says 0x%" PRIx64
		     ", model says 0x%" PRIx64, when, (uint64_t)st.st_size,
		     file_size);
}

static void open_files(void)
{
	int flags = O_RDWR | (odirect ? O_DIRECT : 0);
	fd = open(fname, flags);
	if (fd < 0)
		SYSFAIL("open");
	fd2 = open(fname, O_RDWR);
	if (fd2 < 0)
		SYSFAIL("open (second handle)");
}

static void close_files(void)
{
	if (close(fd) < 0)
		SYSFAIL("close");
	if (close(fd2) < 0)
		SYSFAIL("close (second handle)");
	fd = fd2 = -1;
}

/* pick an op range: offset in [0, limit), length in [1, maxoplen] */
static void pick_range(uint64_t limit, uint64_t *off, uint64_t *len)
{
	*off = limit ? rnd_below(limit) : 0;
	*len = 1 + rnd_below(maxoplen);
	if (odirect) {
		*off &= ~(uint64_t)(DIO_ALIGN - 1);
		*len = (*len + DIO_ALIGN - 1) & ~(uint64_t)(DIO_ALIGN - 1);
	}
	if (*off + *len > maxlen)
		*len = maxlen - *off;
}

/* --- operations --- */
static void do_write(int use_fd2)
{
	uint64_t off, len;
	pick_range(maxlen, &off, &len);
	if (len == 0)
		return;
	int wfd = use_fd2 ? fd2 : fd;
	struct logent *e = log_begin(use_fd2 ? OP_WRITE2 : OP_WRITE, off, len, 0);
	fill_random(buf, len);
	uint64_t done = 0;
	while (done < len) {
		ssize_t r = pwrite(wfd, buf + done, len - done, off + done);
		if (r < 0)
			SYSFAIL("pwrite");
		if (r == 0)
			fail(2, "pwrite returned 0");
		done += r;
	}
	e->ret = done;
	memcpy(good + off, buf, len);
	if (off + len > file_size)
		file_size = off + len;
	e->size_after = file_size;
}

static void do_read(int use_fd2)
{
	if (file_size == 0)
		return;
	uint64_t off, len;
	/* sometimes read across EOF to check short reads */
	pick_range(rnd_below(8) == 0 ? maxlen : file_size, &off, &len);
	if (len == 0)
		return;
	int rfd = use_fd2 ? fd2 : fd;
	struct logent *e = log_begin(use_fd2 ? OP_READ2 : OP_READ, off, len, 0);
	uint64_t expect = off >= file_size ? 0 :
		(off + len > file_size ? file_size - off : len);
	uint64_t done = 0;
	while (done < len) {
		ssize_t r = pread(rfd, buf + done, len - done, off + done);
		if (r < 0)
			SYSFAIL("pread");
		if (r == 0)
			break;
		done += r;
	}
	e->ret = done;
	if (done != expect)
		fail(1, "short/long read: got 0x%" PRIx64 " bytes, expected 0x%"
		     PRIx64, done, expect);
	check_buf(buf, off, done, use_fd2 ? "read(fd2)" : "read");
}

static void do_truncate(void)
{
	/* half the time shrink below the current size, else anything */
	uint64_t ns;
	if (file_size && rnd_below(2))
		ns = rnd_below(file_size);
	else
		ns = rnd_below(maxlen + 1);
	if (odirect)
		ns &= ~(uint64_t)(DIO_ALIGN - 1);
	struct logent *e = log_begin(OP_TRUNC, 0, 0, ns);
	if (ftruncate(rnd_below(2) ? fd : fd2, ns) < 0)
		SYSFAIL("ftruncate");
	if (ns < file_size)
		memset(good + ns, 0, file_size - ns);
	file_size = ns;
	e->size_after = file_size;
}

static void do_mapwrite(void)
{
	uint64_t off, len;
	pick_range(maxlen, &off, &len);
	if (len == 0)
		return;
	struct logent *e = log_begin(OP_MAPWRITE, off, len, 0);
	if (off + len > file_size) {
		/* a mapping cannot extend a file: grow it first, as fsx does */
		if (ftruncate(fd, off + len) < 0)
			SYSFAIL("ftruncate (mapwrite extend)");
		file_size = off + len;
	}
	uint64_t pg = off & ~(uint64_t)(pagesize - 1);
	uint64_t mlen = off + len - pg;
	unsigned char *m = mmap(NULL, mlen, PROT_READ | PROT_WRITE, MAP_SHARED,
				fd2, pg);
	if (m == MAP_FAILED)
		SYSFAIL("mmap (write)");
	fill_random(good + off, len);
	memcpy(m + (off - pg), good + off, len);
	if (msync(m, mlen, MS_SYNC) < 0)
		SYSFAIL("msync");
	if (munmap(m, mlen) < 0)
		SYSFAIL("munmap");
	e->size_after = file_size;
}

static void do_mapread(void)
{
	if (file_size == 0)
		return;
	uint64_t off, len;
	pick_range(file_size, &off, &len);
	if (off + len > file_size)
		len = file_size - off;
	if (len == 0)
		return;
	struct logent *e = log_begin(OP_MAPREAD, off, len, 0);
	uint64_t pg = off & ~(uint64_t)(pagesize - 1);
	uint64_t mlen = off + len - pg;
	unsigned char *m = mmap(NULL, mlen, PROT_READ, MAP_SHARED, fd, pg);
	if (m == MAP_FAILED)
		SYSFAIL("mmap (read)");
	memcpy(buf, m + (off - pg), len);
	if (munmap(m, mlen) < 0)
		SYSFAIL("munmap");
	e->ret = len;
	check_buf(buf, off, len, "mapread");
}

static void do_falloc(enum op_kind k)
{
	uint64_t off, len;
	pick_range(maxlen, &off, &len);
	if (len == 0)
		return;
	int mode = 0;
	switch (k) {
	case OP_FALLOC_KEEP: mode = FALLOC_FL_KEEP_SIZE; break;
	case OP_PUNCH: mode = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE; break;
	case OP_ZERO: mode = FALLOC_FL_ZERO_RANGE; break;
	default: break;
	}
	struct logent *e = log_begin(k, off, len, mode);
	if (fallocate(rnd_below(2) ? fd : fd2, mode, off, len) < 0) {
		if (unsupported(errno)) {
			e->ret = -errno;
			disable(k, errno);
			return;
		}
		SYSFAIL(op_names[k]);
	}
	uint64_t end = off + len;
	if (k == OP_PUNCH || k == OP_ZERO) {
		uint64_t zend = end < file_size ? end : file_size;
		if (k == OP_ZERO)
			zend = end;
		if (zend > off)
			memset(good + off, 0, zend - off);
	}
	if ((k == OP_FALLOC || k == OP_ZERO) && end > file_size)
		file_size = end;
	e->size_after = file_size;
}

static void do_copy(void)
{
	uint64_t off, len, soff = rnd_below(src_size + src_size / 8 + 1);
	pick_range(maxlen, &off, &len);
	if (len == 0)
		return;
	struct logent *e = log_begin(OP_COPY, off, len, soff);
	loff_t in = soff, out = off;
	/* the O_DIRECT handle would need aligned source offsets: use fd2 */
	int dfd = odirect || rnd_below(2) ? fd2 : fd;
	ssize_t r = copy_file_range(srcfd, &in, dfd, &out, len, 0);
	if (r < 0) {
		if (unsupported(errno)) {
			e->ret = -errno;
			disable(OP_COPY, errno);
			return;
		}
		SYSFAIL("copy_file_range");
	}
	e->ret = r;
	uint64_t avail = soff >= src_size ? 0 : src_size - soff;
	if ((uint64_t)r > len || (uint64_t)r > avail)
		fail(1, "copy_file_range copied 0x%zx bytes, at most 0x%" PRIx64
		     " possible", r, len < avail ? len : avail);
	if (r == 0 && avail > 0)
		fail(1, "copy_file_range copied nothing though 0x%" PRIx64
		     " source bytes were available", avail);
	if ((uint64_t)in != soff + r || (uint64_t)out != off + r)
		fail(1, "copy_file_range offsets not advanced by %zd", r);
	memcpy(good + off, srcdata + soff, r);
	if (r > 0 && off + r > file_size)
		file_size = off + r;
	e->size_after = file_size;
}

static void do_fsync(void)
{
	int data = rnd_below(2);
	struct logent *e = log_begin(OP_FSYNC, 0, 0, data);
	if ((data ? fdatasync(fd) : fsync(fd2)) < 0)
		SYSFAIL(data ? "fdatasync" : "fsync");
	(void)e;
}

static void do_reopen(void)
{
	log_begin(OP_REOPEN, 0, 0, 0);
	close_files();
	open_files();
	check_size("after reopen");
}

static void do_verify(void)
{
	struct logent *e = log_begin(OP_VERIFY, 0, file_size, 0);
	uint64_t done = 0;
	int vfd = open(fname, O_RDONLY);
	if (vfd < 0)
		SYSFAIL("open (verify)");
	for (;;) {
		ssize_t r = pread(vfd, buf + done, maxlen + DIO_ALIGN - done, done);
		if (r < 0)
			SYSFAIL("pread (verify)");
		if (r == 0)
			break;
		done += r;
	}
	close(vfd);
	e->ret = done;
	if (done != file_size)
		fail(1, "whole-file read returned 0x%" PRIx64 " bytes, model size 0x%"
		     PRIx64, done, file_size);
	check_buf(buf, 0, done, "verify");
}

static void make_source(void)
{
	size_t n = strlen(fname) + 5;
	srcname = malloc(n);
	snprintf(srcname, n, "%s.src", fname);
	srcdata = malloc(maxlen);
	src_size = maxlen / 2 + rnd_below(maxlen / 2 + 1);
	fill_random(srcdata, src_size);
	int s = open(srcname, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (s < 0)
		SYSFAIL("create source file");
	uint64_t done = 0;
	while (done < src_size) {
		ssize_t r = pwrite(s, srcdata + done, src_size - done, done);
		if (r <= 0)
			SYSFAIL("write source file");
		done += r;
	}
	if (fsync(s) < 0)
		SYSFAIL("fsync source file");
	close(s);
	srcfd = open(srcname, O_RDONLY);
	if (srcfd < 0)
		SYSFAIL("open source file");
}

static void usage(void)
{
	fprintf(stderr, "usage: fsx [-S seed] [-N ops] [-l maxlen] [-o maxoplen] "
		"[-c reopen] [-f verify] [-ZMFCsvq] FILE\n");
	exit(2);
}

static uint64_t num(const char *s)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 0);
	if (errno || end == s)
		usage();
	if (*end == 'k' || *end == 'K')
		v *= 1024;
	else if (*end == 'm' || *end == 'M')
		v *= 1024 * 1024;
	return v;
}

int main(int argc, char **argv)
{
	int c, have_seed = 0;
	while ((c = getopt(argc, argv, "S:N:l:o:c:f:ZMFCsvq")) != -1) {
		switch (c) {
		case 'S': seed = num(optarg); have_seed = 1; break;
		case 'N': numops = num(optarg); break;
		case 'l': maxlen = num(optarg); break;
		case 'o': maxoplen = num(optarg); break;
		case 'c': reopen_every = num(optarg); break;
		case 'f': verify_every = num(optarg); break;
		case 'Z': odirect = 1; break;
		case 'M': no_mmap = 1; break;
		case 'F': no_falloc = 1; break;
		case 'C': no_copy = 1; break;
		case 's': strict = 1; break;
		case 'v': verbose = 1; break;
		case 'q': quiet = 1; break;
		default: usage();
		}
	}
	if (optind != argc - 1 || maxlen < 2 || maxoplen < 1)
		usage();
	fname = argv[optind];
	pagesize = sysconf(_SC_PAGESIZE);
	if (odirect) {
		maxlen = (maxlen + DIO_ALIGN - 1) & ~(uint64_t)(DIO_ALIGN - 1);
		if (maxoplen < DIO_ALIGN)
			maxoplen = DIO_ALIGN;
	}
	if (maxoplen > maxlen)
		maxoplen = maxlen;
	if (!have_seed) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		seed = ((uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^
			(uint64_t)getpid()) % 1000000007ULL;
	}
	uint64_t x = seed;
	for (int i = 0; i < 4; i++)
		rs[i] = splitmix(&x);

	good = calloc(1, maxlen);
	if (posix_memalign((void **)&buf, DIO_ALIGN, maxlen + DIO_ALIGN))
		SYSFAIL("posix_memalign");
	if (!good)
		SYSFAIL("calloc");

	int cfd = open(fname, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (cfd < 0)
		SYSFAIL("create test file");
	close(cfd);
	make_source();
	open_files();

	if (!quiet)
		printf("fsx: seed %" PRIu64 " ops %ld maxlen %" PRIu64
		       " maxoplen %" PRIu64 "%s\n", seed, numops, maxlen,
		       maxoplen, odirect ? " O_DIRECT" : "");

	/* weights of the random op mix */
	static const struct { enum op_kind k; int w; } mix[] = {
		{ OP_WRITE, 20 }, { OP_READ, 20 }, { OP_READ2, 6 },
		{ OP_WRITE2, 4 }, { OP_TRUNC, 6 }, { OP_MAPWRITE, 8 },
		{ OP_MAPREAD, 8 }, { OP_FALLOC, 3 }, { OP_FALLOC_KEEP, 3 },
		{ OP_PUNCH, 4 }, { OP_ZERO, 3 }, { OP_COPY, 8 }, { OP_FSYNC, 3 },
	};
	int total_w = 0;
	for (size_t i = 0; i < sizeof(mix) / sizeof(mix[0]); i++)
		total_w += mix[i].w;

	for (opnum = 0; opnum < numops; opnum++) {
		enum op_kind k;
		if (reopen_every && rnd_below(reopen_every) == 0) {
			k = OP_REOPEN;
		} else if (verify_every && opnum % verify_every == verify_every - 1) {
			k = OP_VERIFY;
		} else {
			int w = rnd_below(total_w);
			size_t i = 0;
			while (w >= mix[i].w)
				w -= mix[i++].w;
			k = mix[i].k;
		}
		if ((no_mmap && (k == OP_MAPWRITE || k == OP_MAPREAD)) ||
		    (no_falloc && (k >= OP_FALLOC && k <= OP_ZERO)) ||
		    (no_copy && k == OP_COPY) || disabled[k]) {
			/* switched off: do a read instead */
			k = OP_READ;
		}
		switch (k) {
		case OP_WRITE: do_write(0); break;
		case OP_WRITE2: do_write(1); break;
		case OP_READ: do_read(0); break;
		case OP_READ2: do_read(1); break;
		case OP_TRUNC: do_truncate(); break;
		case OP_MAPWRITE: do_mapwrite(); break;
		case OP_MAPREAD: do_mapread(); break;
		case OP_FALLOC: case OP_FALLOC_KEEP: case OP_PUNCH: case OP_ZERO:
			do_falloc(k); break;
		case OP_COPY: do_copy(); break;
		case OP_FSYNC: do_fsync(); break;
		case OP_REOPEN: do_reopen(); break;
		case OP_VERIFY: do_verify(); break;
		default: break;
		}
		counts[k]++;
		if (verbose)
			print_ent(stdout, &oplog[opnum % LOG_DEPTH]);
		check_size("after operation");
	}
	do_verify();	/* logged as op #numops */
	close_files();
	close(srcfd);

	if (!quiet) {
		printf("fsx: op counts:");
		for (int k = 0; k < OP_NKINDS; k++)
			printf(" %s=%ld%s", op_names[k], counts[k],
			       disabled[k] ? "(disabled)" : "");
		printf("\n");
	}
	printf("fsx: %ld operations passed, seed %" PRIu64 "\n", numops, seed);
	return 0;
}
