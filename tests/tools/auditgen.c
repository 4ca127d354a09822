/*
** auditgen: fills an audit.db with synthetic records, for the integration
** tests and the audit benchmark.
**
**   auditgen --state DIR --ws NAME -n COUNT [--batch B]
**            [--checkpoint-every N] [--weird]
**
** Records go through audit_store_append in batches, exactly as the daemon's
** writer thread sends them, so the rate printed at the end is the store's
** real append rate.  The contents are meant to look like an agent's day:
** a handful of processes and users, mostly opens and writes under a few
** source directories, now and then a denial (EACCES, EROFS, EDQUOT), times
** spread evenly over the last 24 hours in seq order.  The generator is
** deterministic (a fixed-seed xorshift), so two runs produce the same log
** apart from the times.  --weird mixes in paths with newlines, tabs and
** bytes that are not UTF-8.
*/
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "append.h"
#include "keys.h"
#include "record.h"
#include "store.h"

#define DAY_NS (86400LL * 1000000000LL)
#define PATH_LEN 256

struct gen_opts {
	const char *state;
	const char *ws;
	long long count, batch, cp_every;
	int weird;
};

static const char *const ops[] = {
	"open", "open", "open", "write", "write", "read", "create", "unlink",
	"rename", "mkdir", "setattr", "truncate", "symlink", "link",
};
static const char *const comms[] = {
	"python3", "make", "cc1", "git", "bash", "node", "cargo", "pytest",
};
static const char *const dirs[] = {
	"/src", "/src/lib", "/tests", "/build/obj", "/docs", "/.git/objects",
};
static const char *const exts[] = { ".c", ".h", ".py", ".o", ".md", "" };
static const char *const weird_names[] = {
	"new\nline", "tab\there", "bad\xff\xfe", "caf\xc3\xa9",
	"\x01ctl", "quote\"q",
};

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static const char *pick(const char *const *v, size_t n)
{
	return v[rnd() % n];
}

#define PICK(v) pick(v, sizeof(v) / sizeof(v[0]))

static const char *pick_result(void)
{
	unsigned r = (unsigned)(rnd() % 1000);

	if (r < 20)
		return "EACCES";
	if (r < 30)
		return "EROFS";
	if (r < 35)
		return "EDQUOT";
	if (r < 60)
		return "ENOENT";
	if (r < 62)
		return "EPERM";
	return "0";
}

/* One record in SLOT's buffers; I is its index in the run. */
struct slot {
	struct audit_record r;
	char path[PATH_LEN], path2[PATH_LEN], detail[64], fp[33];
};

static void make_path(char *buf, int weird)
{
	if (weird && rnd() % 10 == 0)
		(void)snprintf(buf, PATH_LEN, "%s/%s%u", PICK(dirs),
			       PICK(weird_names), (unsigned)(rnd() % 100));
	else
		(void)snprintf(buf, PATH_LEN, "%s/file%u%s", PICK(dirs),
			       (unsigned)(rnd() % 5000), PICK(exts));
}

static void fill(struct slot *s, const struct gen_opts *o, long long i,
		 int64_t start_ns)
{
	struct audit_record *r = &s->r;
	uint64_t proc = rnd() % 40;

	memset(r, 0, sizeof(*r));
	r->time_ns = start_ns + (int64_t)(DAY_NS / o->count) * i;
	r->host = audit_hostname();
	r->ws = o->ws;
	r->layer = rnd() % 8 ? "upper" : "ro";
	r->uid = 1000 + (int64_t)(proc % 4);
	r->gid = 1000;
	r->pid = 2000 + (int64_t)proc;
	r->comm = comms[proc % (sizeof(comms) / sizeof(comms[0]))];
	r->op = PICK(ops);
	make_path(s->path, o->weird);
	r->path = s->path;
	s->path2[0] = '\0';
	if (strcmp(r->op, "rename") == 0 || strcmp(r->op, "link") == 0)
		make_path(s->path2, o->weird);
	r->path2 = s->path2;
	r->ino = 100 + (int64_t)(rnd() % 100000);
	r->bytes = strcmp(r->op, "write") == 0 ? (int64_t)(rnd() % 65536) : 0;
	r->result = pick_result();
	s->detail[0] = '\0';
	if (strcmp(r->op, "open") == 0)
		(void)snprintf(s->detail, sizeof(s->detail), "flags=%s",
			       rnd() % 3 ? "rdonly" : "wronly|creat");
	r->detail = s->detail;
	s->fp[0] = '\0';
	if (r->bytes > 0)
		(void)snprintf(s->fp, sizeof(s->fp), "%016" PRIx64 "%016"
			       PRIx64, rnd(), rnd());
	r->fp = s->fp;
}

static void usage(void)
{
	fputs("usage: auditgen --state DIR --ws NAME -n COUNT [--batch B] "
	      "[--checkpoint-every N] [--weird]\n", stderr);
	exit(2);
}

static long long number(const char *s)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < 0)
		usage();
	return v;
}

static void parse(int argc, char **argv, struct gen_opts *o)
{
	int i;

	memset(o, 0, sizeof(*o));
	o->batch = 1000;
	o->count = -1;
	for (i = 1; i < argc; i++) {
		int more = i + 1 < argc;

		if (strcmp(argv[i], "--state") == 0 && more)
			o->state = argv[++i];
		else if (strcmp(argv[i], "--ws") == 0 && more)
			o->ws = argv[++i];
		else if (strcmp(argv[i], "-n") == 0 && more)
			o->count = number(argv[++i]);
		else if (strcmp(argv[i], "--batch") == 0 && more)
			o->batch = number(argv[++i]);
		else if (strcmp(argv[i], "--checkpoint-every") == 0 && more)
			o->cp_every = number(argv[++i]);
		else if (strcmp(argv[i], "--weird") == 0)
			o->weird = 1;
		else
			usage();
	}
	if (o->state == NULL || o->ws == NULL || o->count < 0 ||
	    o->batch < 1)
		usage();
}

static double now_s(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Checkpoints when the run has crossed another multiple of cp_every. */
static int maybe_checkpoint(struct audit_store *s, const struct audit_key *k,
			    const struct gen_opts *o, long long done,
			    long long *last, int final)
{
	char err[512];
	int rc;

	if (k == NULL || (!final && done - *last < o->cp_every))
		return 0;
	*last = done;
	rc = audit_store_checkpoint(s, k, audit_hostname(), o->ws,
				    audit_now_ns(), NULL, err, sizeof(err));
	if (rc < 0)
		fprintf(stderr, "auditgen: %s\n", err);
	return rc < 0 ? rc : 0;
}

static int run(const struct gen_opts *o, struct audit_store *s,
	       const struct audit_key *k, struct slot *slots,
	       struct audit_record **ptrs)
{
	int64_t start_ns = audit_now_ns() - DAY_NS;
	long long done = 0, last_cp = 0, n, j;
	char err[512];
	int rc;

	while (done < o->count) {
		n = o->count - done < o->batch ? o->count - done : o->batch;
		for (j = 0; j < n; j++)
			fill(&slots[j], o, done + j, start_ns);
		rc = audit_store_append(s, ptrs, (size_t)n, err, sizeof(err));
		if (rc < 0) {
			fprintf(stderr, "auditgen: %s\n", err);
			return rc;
		}
		done += n;
		rc = maybe_checkpoint(s, k, o, done, &last_cp, 0);
		if (rc < 0)
			return rc;
	}
	return done > last_cp ? maybe_checkpoint(s, k, o, done, &last_cp, 1)
			      : 0;
}

int main(int argc, char **argv)
{
	struct audit_record **ptrs;
	struct audit_store *s = NULL;
	struct audit_key *k = NULL;
	struct gen_opts o;
	struct slot *slots;
	char err[512];
	double t0, dt;
	long long i;
	int rc;

	parse(argc, argv, &o);
	slots = calloc((size_t)o.batch, sizeof(*slots));
	ptrs = calloc((size_t)o.batch, sizeof(*ptrs));
	if (slots == NULL || ptrs == NULL) {
		fputs("auditgen: out of memory\n", stderr);
		return 1;
	}
	for (i = 0; i < o.batch; i++)
		ptrs[i] = &slots[i].r;
	rc = o.cp_every > 0 ? audit_key_load(o.state, 1, &k, err, sizeof(err))
			    : 0;
	if (rc == 0)
		rc = audit_store_open(o.state, AUDIT_STORE_CREATE, &s, err,
				      sizeof(err));
	if (rc < 0) {
		fprintf(stderr, "auditgen: %s\n", err);
		return 1;
	}
	t0 = now_s();
	rc = run(&o, s, k, slots, ptrs);
	dt = now_s() - t0;
	audit_store_close(s);
	audit_key_free(k);
	free(slots);
	free(ptrs);
	if (rc < 0)
		return 1;
	printf("appended %lld records in %.2f s (%.0f records/s)\n", o.count,
	       dt, dt > 0 ? (double)o.count / dt : 0.0);
	return 0;
}
