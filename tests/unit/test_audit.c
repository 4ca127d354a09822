/*
** Unit tests for libwsaudit: the record encoding and hashes, the signing
** key, checkpoints, the store, verification and the JSON Lines bundle.
**
** The encoding test spells out the expected bytes field by field from the
** description in record.h, and the leaf and head of that record were
** computed once with openssl(1) over those bytes and are pinned here: the
** point is that the format cannot drift without this test noticing, since
** outside tools re-verify logs from the written spec alone.
**
** Tamper tests edit audit.db behind the library's back through a separate
** SQLite connection (dropping the append-only triggers first where they
** would get in the way), as an intruder with root would, and check that
** verification names the first bad seq and why.
*/
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "append.h"
#include "checkpoint.h"
#include "jsonl.h"
#include "keys.h"
#include "record.h"
#include "sink.h"
#include "store.h"
#include "testutil.h"
#include "verify.h"

#define WS_A "alpha"
#define WS_B "beta"
#define HOST "testhost"

/* ---- helpers ------------------------------------------------------------ */

static const char *new_state(void)
{
	static char buf[8][PATH_MAX];
	static int next;
	char *dir = buf[next++ % 8];

	snprintf(dir, PATH_MAX, "%s/state%d", test_tmpdir(), next);
	CHECK(mkdir(dir, 0700) == 0, "mkdir %s: %s", dir, strerror(errno));
	return dir;
}

static void fill_record(struct audit_record *r, const char *ws, int i)
{
	/* One buffer per record of the largest batch (append_n). */
	static char paths[64][64];
	char *path = paths[i % 64];

	memset(r, 0, sizeof(*r));
	snprintf(path, 64, "/src/file%d.c", i);
	r->time_ns = 1700000000000000000LL + (int64_t)i * 1000;
	r->host = HOST;
	r->ws = ws;
	r->layer = "upper";
	r->uid = 1000 + i % 3;
	r->gid = 1000;
	r->pid = 100 + i;
	r->comm = "make";
	r->op = i % 2 ? "write" : "open";
	r->path = path;
	r->path2 = "";
	r->ino = 10 + i;
	r->bytes = i % 2 ? 4096 : 0;
	r->result = i % 7 == 3 ? "EACCES" : "0";
	r->detail = "";
	r->fp = "";
}

/* Appends N records to WS in one batch. */
static void append_n(struct audit_store *s, const char *ws, int first, int n)
{
	struct audit_record recs[64], *ptrs[64];
	char err[256];
	int i;

	CHECK(n <= 64, "batch too big");
	for (i = 0; i < n; i++) {
		fill_record(&recs[i], ws, first + i);
		ptrs[i] = &recs[i];
	}
	CHECK_RC(audit_store_append(s, ptrs, (size_t)n, err, sizeof(err)), 0);
}

static void checkpoint(struct audit_store *s, const struct audit_key *k,
		       const char *ws, int want)
{
	char err[256];

	CHECK_RC(audit_store_checkpoint(s, k, HOST, ws, 1700000001000000000LL,
					NULL, err, sizeof(err)), want);
}

static sqlite3 *raw_open(const char *state)
{
	char path[PATH_MAX];
	sqlite3 *db;

	snprintf(path, sizeof(path), "%s/audit.db", state);
	CHECK(sqlite3_open(path, &db) == SQLITE_OK, "open %s", path);
	return db;
}

static void raw_exec(sqlite3 *db, const char *sql)
{
	char *msg = NULL;

	CHECK(sqlite3_exec(db, sql, NULL, NULL, &msg) == SQLITE_OK,
	      "%s: %s", sql, msg ? msg : "?");
}

static void drop_triggers(sqlite3 *db)
{
	raw_exec(db, "DROP TRIGGER records_no_update;"
		 "DROP TRIGGER records_no_delete;"
		 "DROP TRIGGER checkpoints_no_update;"
		 "DROP TRIGGER checkpoints_no_delete;");
}

/* ---- encoding and hashes ------------------------------------------------ */

/* The record whose bytes and hashes are pinned below. */
static void known_record(struct audit_record *r)
{
	memset(r, 0, sizeof(*r));
	r->seq = 1;
	r->time_ns = 1700000000123456789LL;
	r->host = "h";
	r->ws = "w";
	r->layer = "upper";
	r->uid = 1000;
	r->gid = 1000;
	r->pid = 42;
	r->comm = "sh";
	r->op = "open";
	r->path = "/a";
	r->path2 = "";
	r->ino = 7;
	r->bytes = 0;
	r->result = "0";
	r->detail = NULL;	/* NULL encodes as "" */
	r->fp = "";
}

static const char known_bytes[] =
	"wsfs-audit-1"
	"\x00\x00\x00\x00\x00\x00\x00\x01"	/* seq 1 */
	"\x17\x97\x9c\xfe\x3d\x85\xcd\x15"	/* 1700000000123456789 */
	"\x00\x00\x00\x01" "h"			/* host */
	"\x00\x00\x00\x01" "w"			/* ws */
	"\x00\x00\x00\x05" "upper"		/* layer */
	"\x00\x00\x00\x00\x00\x00\x03\xe8"	/* uid 1000 */
	"\x00\x00\x00\x00\x00\x00\x03\xe8"	/* gid 1000 */
	"\x00\x00\x00\x00\x00\x00\x00\x2a"	/* pid 42 */
	"\x00\x00\x00\x02" "sh"			/* comm */
	"\x00\x00\x00\x04" "open"		/* op */
	"\x00\x00\x00\x02" "/a"			/* path */
	"\x00\x00\x00\x00"			/* path2 "" */
	"\x00\x00\x00\x00\x00\x00\x00\x07"	/* ino 7 */
	"\x00\x00\x00\x00\x00\x00\x00\x00"	/* bytes 0 */
	"\x00\x00\x00\x01" "0"			/* result */
	"\x00\x00\x00\x00"			/* detail "" */
	"\x00\x00\x00\x00";			/* fp "" */

/* sha256(0x00 || known_bytes) and sha256(0x01 || 32 zero bytes || leaf),
** from openssl dgst -sha256. */
#define KNOWN_LEAF \
	"dfebbff5feec206d3a52e74f12c1960a9a2f01aeba59feffe205c3205cf01433"
#define KNOWN_HEAD \
	"129c89e8aae8e6d2646eef545cae710fad0c6ab39ce722d630a627c53ef4db9f"

static void test_encoding(void)
{
	struct audit_record r;
	uint8_t *buf = NULL;
	size_t cap = 0, len;

	known_record(&r);
	len = audit_record_encode(&r, &buf, &cap);
	CHECK(len == sizeof(known_bytes) - 1, "encoded %zu bytes, expected %zu",
	      len, sizeof(known_bytes) - 1);
	CHECK(memcmp(buf, known_bytes, len) == 0, "encoding differs");
	free(buf);
}

static void test_hashes(void)
{
	uint8_t leaf[AUDIT_HASH_LEN], head[AUDIT_HASH_LEN];
	uint8_t zero[AUDIT_HASH_LEN] = { 0 };
	char hex[2 * AUDIT_HASH_LEN + 1];
	struct audit_record r;

	known_record(&r);
	CHECK_RC(audit_leaf(&r, leaf), 0);
	audit_hex(leaf, AUDIT_HASH_LEN, hex);
	CHECK(streq(hex, KNOWN_LEAF), "leaf %s", hex);
	audit_head_next(zero, leaf, head);
	audit_hex(head, AUDIT_HASH_LEN, hex);
	CHECK(streq(hex, KNOWN_HEAD), "head %s", hex);
	/* Any field change changes the leaf. */
	r.ino = 8;
	CHECK_RC(audit_leaf(&r, head), 0);
	CHECK(memcmp(head, leaf, AUDIT_HASH_LEN) != 0, "ino not hashed");
}

static void test_dup_and_names(void)
{
	struct audit_record r, *d;

	known_record(&r);
	d = audit_record_dup(&r);
	CHECK(d != NULL, "dup");
	CHECK(streq(d->path, "/a") && streq(d->detail, "") &&
	      d->path != r.path && d->pid == 42, "dup contents");
	free(d);
	CHECK(streq(audit_errname(0), "0"), "0");
	CHECK(streq(audit_errname(EDQUOT), "EDQUOT"), "EDQUOT");
	CHECK(streq(audit_errname(-EACCES), "EACCES"), "-EACCES");
	CHECK(streq(audit_errname(4000), "E4000"), "unnamed");
	CHECK(audit_errno_from_name("EROFS") == EROFS, "EROFS");
	CHECK(audit_errno_from_name("EOPNOTSUPP") == EOPNOTSUPP, "alias");
	CHECK(audit_errno_from_name("E4000") == 4000, "E4000");
	CHECK(audit_errno_from_name("0") == 0, "0");
	CHECK(audit_errno_from_name("EBOGUS") == -EINVAL, "bogus");
	CHECK(audit_errno_from_name("E") == -EINVAL, "E");
	CHECK(audit_result_denied("EDQUOT") && !audit_result_denied("ENOENT") &&
	      !audit_result_denied("0"), "denied");
}

/* ---- keys and checkpoints ----------------------------------------------- */

static void test_keys(void)
{
	const char *state = new_state();
	struct audit_key *k, *k2, *pub;
	char path[PATH_MAX], err[256], line[512];
	struct stat st;
	uint8_t sig[64];
	FILE *f;

	CHECK_RC(audit_key_load(state, 0, &k, err, sizeof(err)), -ENOENT);
	CHECK_RC(audit_key_load(state, 1, &k, err, sizeof(err)), 0);
	CHECK(audit_key_can_sign(k), "private key");
	snprintf(path, sizeof(path), "%s/keys", state);
	CHECK(stat(path, &st) == 0 && (st.st_mode & 07777) == 0700,
	      "keys/ mode %o", st.st_mode & 07777);
	snprintf(path, sizeof(path), "%s/keys/audit.key", state);
	CHECK(stat(path, &st) == 0 && (st.st_mode & 07777) == 0600,
	      "audit.key mode %o", st.st_mode & 07777);
	/* Loading again gives the same key. */
	CHECK_RC(audit_key_load(state, 1, &k2, err, sizeof(err)), 0);
	CHECK(audit_key_same(k, k2) && audit_key_id(k) == audit_key_id(k2) &&
	      streq(audit_key_verifier(k), audit_key_verifier(k2)), "reload");
	audit_key_free(k2);
	/* audit.pub holds the verifier line. */
	snprintf(path, sizeof(path), "%s/keys/audit.pub", state);
	f = fopen(path, "r");
	CHECK(f != NULL && fgets(line, sizeof(line), f) != NULL, "audit.pub");
	fclose(f);
	line[strcspn(line, "\n")] = '\0';
	CHECK(streq(line, audit_key_verifier(k)), "pub line %s", line);
	CHECK(strstr(line, "/wsfs+") != NULL, "key name in %s", line);
	CHECK_RC(audit_key_load_public(path, &pub, err, sizeof(err)), 0);
	CHECK(!audit_key_can_sign(pub) && audit_key_same(pub, k), "pub");
	CHECK_RC(audit_key_sign(k, "msg", 3, sig), 0);
	CHECK(audit_key_verify(pub, "msg", 3, sig), "verify");
	CHECK(!audit_key_verify(pub, "msh", 3, sig), "verify other msg");
	CHECK_RC(audit_key_sign(pub, "msg", 3, sig), -EIO);
	audit_key_free(pub);
	/* A damaged line is refused: wrong key id. */
	line[strlen(line) - 50] ^= 1;
	CHECK(audit_key_parse_verifier(line, &pub, err, sizeof(err)) < 0,
	      "damaged verifier accepted");
	CHECK(audit_key_parse_verifier("nonsense", &pub, err,
				       sizeof(err)) == -EINVAL, "nonsense");
	audit_key_free(k);
}

/* Two processes creating the key at once agree on one. */
static void test_key_race(void)
{
	const char *state = new_state();
	struct audit_key *k;
	char err[256], ver[4][512];
	int fds[4][2], i, st;
	pid_t pid[4];

	for (i = 0; i < 4; i++) {
		CHECK(pipe(fds[i]) == 0, "pipe");
		pid[i] = fork();
		CHECK(pid[i] >= 0, "fork");
		if (pid[i] == 0) {
			if (audit_key_load(state, 1, &k, err, sizeof(err)) < 0)
				_exit(1);
			if (write(fds[i][1], audit_key_verifier(k),
				  strlen(audit_key_verifier(k)) + 1) < 0)
				_exit(1);
			_exit(0);
		}
		close(fds[i][1]);
	}
	for (i = 0; i < 4; i++) {
		ssize_t n = read(fds[i][0], ver[i], sizeof(ver[i]) - 1);

		CHECK(n > 0, "child %d said nothing", i);
		ver[i][n] = '\0';
		close(fds[i][0]);
		CHECK(waitpid(pid[i], &st, 0) == pid[i] && WIFEXITED(st) &&
		      WEXITSTATUS(st) == 0, "child %d failed", i);
		CHECK(streq(ver[i], ver[0]), "children disagree");
	}
}

#define NOTE_START HOST "/wsfs/" WS_A "\n42\n" \
	"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n" \
	"time 123456789\n\n\xe2\x80\x94 "

static void test_checkpoint_notes(void)
{
	const char *state = new_state(), *other = new_state();
	struct audit_key *k, *k2, *pub;
	uint8_t head[AUDIT_HASH_LEN];
	struct audit_checkpoint c;
	char err[256], why[256], *note, *bad, *p;
	int i;

	for (i = 0; i < AUDIT_HASH_LEN; i++)
		head[i] = (uint8_t)i;
	CHECK_RC(audit_key_load(state, 1, &k, err, sizeof(err)), 0);
	CHECK_RC(audit_key_load(other, 1, &k2, err, sizeof(err)), 0);
	CHECK_RC(audit_key_parse_verifier(audit_key_verifier(k), &pub, err,
					  sizeof(err)), 0);
	note = audit_checkpoint_sign(k, HOST, WS_A, 42, head, 123456789);
	CHECK(note != NULL, "sign");
	CHECK(strncmp(note, NOTE_START, strlen(NOTE_START)) == 0, "note %s",
	      note);
	CHECK_RC(audit_checkpoint_check(note, pub, &c, why, sizeof(why)), 0);
	CHECK(streq(c.ws, WS_A) && c.size == 42 && c.time_ns == 123456789 &&
	      memcmp(c.head, head, AUDIT_HASH_LEN) == 0 &&
	      streq(c.origin, HOST "/wsfs/" WS_A) && streq(c.note, note),
	      "parsed");
	audit_checkpoint_clear(&c);
	/* Another key's signature is not ours. */
	CHECK_RC(audit_checkpoint_check(note, k2, &c, why, sizeof(why)),
		 -EBADMSG);
	CHECK(c.size == 42, "filled on a bad signature");
	audit_checkpoint_clear(&c);
	/* A changed size breaks the signature. */
	bad = strdup(note);
	p = strstr(bad, "\n42\n");
	p[2] = '3';
	CHECK_RC(audit_checkpoint_check(bad, pub, &c, why, sizeof(why)),
		 -EBADMSG);
	CHECK(streq(why, "bad signature"), "why %s", why);
	audit_checkpoint_clear(&c);
	/* Malformed notes. */
	strcpy(bad, note);
	p = strstr(bad, "\n42\n");
	p[1] = 'x';
	CHECK_RC(audit_checkpoint_check(bad, pub, &c, why, sizeof(why)),
		 -EINVAL);
	CHECK_RC(audit_checkpoint_check("x\n\n", pub, &c, why, sizeof(why)),
		 -EINVAL);
	CHECK_RC(audit_checkpoint_check("", pub, &c, why, sizeof(why)),
		 -EINVAL);
	strcpy(bad, note);
	bad[strlen(bad) - 3] = '\0';	/* cut the signature short */
	CHECK_RC(audit_checkpoint_check(bad, pub, &c, why, sizeof(why)),
		 -EINVAL);
	free(bad);
	free(note);
	/* The host chain's origin has no workspace part. */
	note = audit_checkpoint_sign(k, HOST, "", 1, head, 5);
	CHECK(strncmp(note, HOST "/wsfs\n1\n", 13) == 0, "host note");
	CHECK_RC(audit_checkpoint_check(note, pub, &c, why, sizeof(why)), 0);
	CHECK(streq(c.ws, ""), "host ws");
	audit_checkpoint_clear(&c);
	free(note);
	audit_key_free(pub);
	audit_key_free(k);
	audit_key_free(k2);
}

/* ---- the store ---------------------------------------------------------- */

static void test_store_append(void)
{
	const char *state = new_state();
	uint8_t head[AUDIT_HASH_LEN], prev[AUDIT_HASH_LEN] = { 0 };
	struct audit_record r[3], *p[3];
	struct audit_store *s;
	char err[256], path[PATH_MAX];
	struct stat st;
	int64_t seq;

	CHECK_RC(audit_store_open(state, 0, &s, err, sizeof(err)), -ENOENT);
	CHECK_RC(audit_store_open(state, AUDIT_STORE_CREATE, &s, err,
				  sizeof(err)), 0);
	snprintf(path, sizeof(path), "%s/audit.db", state);
	CHECK(stat(path, &st) == 0 && (st.st_mode & 07777) == 0600,
	      "audit.db mode %o", st.st_mode & 07777);
	CHECK_RC(audit_store_tail(s, WS_A, &seq, head), 0);
	CHECK(seq == 0, "empty tail");
	/* One batch across two chains. */
	fill_record(&r[0], WS_A, 0);
	fill_record(&r[1], WS_B, 1);
	fill_record(&r[2], WS_A, 2);
	p[0] = &r[0], p[1] = &r[1], p[2] = &r[2];
	CHECK_RC(audit_store_append(s, p, 3, err, sizeof(err)), 0);
	CHECK(r[0].seq == 1 && r[1].seq == 1 && r[2].seq == 2, "seqs %lld "
	      "%lld %lld", (long long)r[0].seq, (long long)r[1].seq,
	      (long long)r[2].seq);
	audit_head_next(prev, r[0].leaf, head);
	CHECK(memcmp(head, r[0].head, AUDIT_HASH_LEN) == 0, "head 1");
	audit_head_next(r[0].head, r[2].leaf, head);
	CHECK(memcmp(head, r[2].head, AUDIT_HASH_LEN) == 0, "head 2");
	CHECK_RC(audit_store_tail(s, WS_A, &seq, head), 0);
	CHECK(seq == 2 && memcmp(head, r[2].head, AUDIT_HASH_LEN) == 0,
	      "tail A");
	CHECK_RC(audit_store_tail(s, WS_B, &seq, head), 0);
	CHECK(seq == 1, "tail B");
	audit_store_close(s);
	/* A second connection continues the chains. */
	CHECK_RC(audit_store_open(state, AUDIT_STORE_CREATE, &s, err,
				  sizeof(err)), 0);
	append_n(s, WS_A, 3, 5);
	CHECK_RC(audit_store_tail(s, WS_A, &seq, head), 0);
	CHECK(seq == 7, "tail after reopen %lld", (long long)seq);
	audit_store_close(s);
	/* Readers cannot write. */
	CHECK_RC(audit_store_open(state, AUDIT_STORE_READONLY, &s, err,
				  sizeof(err)), 0);
	fill_record(&r[0], WS_A, 9);
	CHECK_RC(audit_store_append(s, p, 1, err, sizeof(err)), -EROFS);
	audit_store_close(s);
}

/* A failed batch commits nothing and leaves the records retryable. */
static void test_store_rollback(void)
{
	const char *state = new_state();
	struct audit_record r[2], *p[2];
	struct audit_store *s;
	uint8_t head[AUDIT_HASH_LEN];
	char err[256];
	sqlite3 *db;
	int64_t seq;

	CHECK_RC(audit_store_open(state, AUDIT_STORE_CREATE, &s, err,
				  sizeof(err)), 0);
	append_n(s, WS_A, 0, 2);
	/* A trigger refusing the batch's second record. */
	db = raw_open(state);
	raw_exec(db, "CREATE TRIGGER injected BEFORE INSERT ON records WHEN "
		 "NEW.path = '/src/file3.c' BEGIN SELECT RAISE(ABORT, "
		 "'injected failure'); END");
	fill_record(&r[0], WS_A, 2);
	fill_record(&r[1], WS_A, 3);
	p[0] = &r[0], p[1] = &r[1];
	CHECK(audit_store_append(s, p, 2, err, sizeof(err)) < 0, "appended");
	CHECK(strstr(err, "injected failure") != NULL, "err %s", err);
	CHECK(r[0].seq == 0 && r[1].seq == 0, "seq not restored");
	CHECK_RC(audit_store_tail(s, WS_A, &seq, head), 0);
	CHECK(seq == 2, "tail %lld", (long long)seq);
	raw_exec(db, "DROP TRIGGER injected");
	sqlite3_close(db);
	CHECK_RC(audit_store_append(s, p, 2, err, sizeof(err)), 0);
	CHECK(r[0].seq == 3 && r[1].seq == 4, "retry");
	audit_store_close(s);
}

static void test_triggers(void)
{
	const char *state = new_state();
	struct audit_store *s;
	struct audit_key *k;
	char err[256];
	sqlite3 *db;

	CHECK_RC(audit_key_load(state, 1, &k, err, sizeof(err)), 0);
	CHECK_RC(audit_store_open(state, AUDIT_STORE_CREATE, &s, err,
				  sizeof(err)), 0);
	append_n(s, WS_A, 0, 3);
	checkpoint(s, k, WS_A, 1);
	checkpoint(s, k, WS_A, 0);	/* nothing new */
	append_n(s, WS_A, 3, 1);
	checkpoint(s, k, WS_A, 1);
	db = raw_open(state);
	CHECK(sqlite3_exec(db, "UPDATE records SET path = 'x'", NULL, NULL,
			   NULL) == SQLITE_CONSTRAINT, "record updated");
	CHECK(sqlite3_exec(db, "DELETE FROM records", NULL, NULL, NULL) ==
	      SQLITE_CONSTRAINT, "record deleted");
	CHECK(sqlite3_exec(db, "UPDATE checkpoints SET size = 1", NULL, NULL,
			   NULL) == SQLITE_CONSTRAINT, "checkpoint updated");
	CHECK(sqlite3_exec(db, "DELETE FROM checkpoints", NULL, NULL, NULL) ==
	      SQLITE_CONSTRAINT, "checkpoint deleted");
	sqlite3_close(db);
	audit_store_close(s);
	audit_key_free(k);
}

static void test_append_one(void)
{
	const char *state = new_state();
	struct audit_record r;
	struct audit_store *s;
	uint8_t head[AUDIT_HASH_LEN];
	sqlite3_stmt *st;
	char err[256];
	int64_t seq;

	memset(&r, 0, sizeof(r));
	r.ws = "";
	r.op = "audit-verify";
	r.detail = "--ws alpha";
	CHECK_RC(audit_append_one(state, &r, err, sizeof(err)), 0);
	CHECK(r.seq == 1 && r.pid == getpid() && r.time_ns > 0, "filled");
	CHECK_RC(audit_append_one(state, &r, err, sizeof(err)), 0);
	CHECK(r.seq == 2, "second seq");
	CHECK_RC(audit_store_open(state, AUDIT_STORE_READONLY, &s, err,
				  sizeof(err)), 0);
	CHECK_RC(audit_store_tail(s, "", &seq, head), 0);
	CHECK(seq == 2, "host tail");
	CHECK(sqlite3_prepare_v2(audit_store_db(s), "SELECT count(*), "
				 "max(size) FROM checkpoints WHERE ws = ''",
				 -1, &st, NULL) == SQLITE_OK, "prepare");
	CHECK(sqlite3_step(st) == SQLITE_ROW &&
	      sqlite3_column_int(st, 0) == 2 &&
	      sqlite3_column_int(st, 1) == 2, "every append checkpointed");
	sqlite3_finalize(st);
	CHECK(sqlite3_prepare_v2(audit_store_db(s), "SELECT "
				 AUDIT_RECORD_COLUMNS " FROM records WHERE ws = '' AND seq = 1", -1,
				 &st, NULL) == SQLITE_OK, "prepare");
	CHECK(sqlite3_step(st) == SQLITE_ROW, "row");
	{
		struct audit_record back;
		uint8_t leaf[AUDIT_HASH_LEN];

		audit_record_from_row(&back, st, 0);
		CHECK(streq(back.op, "audit-verify") &&
		      streq(back.detail, "--ws alpha") &&
		      streq(back.layer, "-") && streq(back.result, "0") &&
		      back.comm[0] != '\0', "row contents");
		CHECK_RC(audit_leaf(&back, leaf), 0);
		CHECK(memcmp(leaf, back.leaf, AUDIT_HASH_LEN) == 0, "leaf");
	}
	sqlite3_finalize(st);
	audit_store_close(s);
}


/* ---- verification ------------------------------------------------------- */

/*
** The log every verification test starts from: chain alpha has 45 records
** with checkpoints at 10, 20, 30 and 40 (so 5 unanchored), chain beta 7
** records checkpointed at 7, and the host chain one record from
** audit_append_one.
*/
static void make_log(const char *state)
{
	struct audit_store *s;
	struct audit_key *k;
	struct audit_record r;
	char err[256];
	int i;

	CHECK_RC(audit_key_load(state, 1, &k, err, sizeof(err)), 0);
	CHECK_RC(audit_store_open(state, AUDIT_STORE_CREATE, &s, err,
				  sizeof(err)), 0);
	for (i = 0; i < 4; i++) {
		append_n(s, WS_A, 10 * i, 10);
		checkpoint(s, k, WS_A, 1);
	}
	append_n(s, WS_A, 40, 5);
	append_n(s, WS_B, 0, 7);
	checkpoint(s, k, WS_B, 1);
	audit_store_close(s);
	audit_key_free(k);
	memset(&r, 0, sizeof(r));
	r.op = "audit-search";
	CHECK_RC(audit_append_one(state, &r, err, sizeof(err)), 0);
}

static void verify_db(const char *state, const char *ws, int64_t from,
		      int64_t to, struct audit_verify_result *res)
{
	struct audit_verify_opts o = { ws, from, to, NULL };
	struct audit_store *s;
	char err[256];

	CHECK_RC(audit_store_open(state, AUDIT_STORE_READONLY, &s, err,
				  sizeof(err)), 0);
	CHECK_RC(audit_verify_db(s, &o, res, err, sizeof(err)), 0);
	audit_store_close(s);
}

static void expect_fail(const struct audit_verify_result *res,
			const char *ws, int64_t seq, const char *why)
{
	CHECK(!res->ok, "verified, expected a failure at %s seq %lld", ws,
	      (long long)seq);
	CHECK(streq(res->bad_ws, ws) && res->bad_seq == seq &&
	      strstr(res->why, why) != NULL,
	      "failed at '%s' seq %lld: %s; expected '%s' seq %lld: %s",
	      res->bad_ws, (long long)res->bad_seq, res->why, ws,
	      (long long)seq, why);
}

/* A tampered copy of a fresh log, edited with SQL. */
static const char *tampered(const char *sql)
{
	const char *state = new_state();
	sqlite3 *db;

	make_log(state);
	db = raw_open(state);
	drop_triggers(db);
	raw_exec(db, sql);
	sqlite3_close(db);
	return state;
}

static void test_verify_ok(void)
{
	const char *state = new_state();
	struct audit_verify_result res;

	make_log(state);
	verify_db(state, NULL, 0, 0, &res);
	CHECK(res.ok, "failed: %s seq %lld: %s", res.bad_ws,
	      (long long)res.bad_seq, res.why);
	CHECK(res.records == 53 && res.checkpoints == 6 && res.chains == 3 &&
	      res.unanchored == 5, "records %lld checkpoints %lld chains "
	      "%lld unanchored %lld", (long long)res.records,
	      (long long)res.checkpoints, (long long)res.chains,
	      (long long)res.unanchored);
	verify_db(state, WS_B, 0, 0, &res);
	CHECK(res.ok && res.records == 7 && res.checkpoints == 1 &&
	      res.unanchored == 0, "beta alone");
	verify_db(state, WS_A, 15, 35, &res);
	CHECK(res.ok && res.records == 21 && res.checkpoints == 2 &&
	      res.unanchored == 5, "range: %lld records %lld checkpoints "
	      "%lld unanchored", (long long)res.records,
	      (long long)res.checkpoints, (long long)res.unanchored);
}

static void test_verify_tampered(void)
{
	struct audit_verify_result res;
	const char *state;

	state = tampered("UPDATE records SET path = '/evil' "
			 "WHERE ws = 'alpha' AND seq = 17");
	verify_db(state, NULL, 0, 0, &res);
	expect_fail(&res, WS_A, 17, "record 17 does not match its hash "
		    "(edited?)");
	/* A range starting after the edit trusts the stored head. */
	verify_db(state, WS_A, 18, 0, &res);
	CHECK(res.ok, "range after the edit: %s", res.why);
	verify_db(state, WS_B, 0, 0, &res);
	CHECK(res.ok, "other chain: %s", res.why);

	state = tampered("DELETE FROM records WHERE ws = 'alpha' AND seq = 23");
	verify_db(state, NULL, 0, 0, &res);
	expect_fail(&res, WS_A, 23, "record 23 missing");

	/* Swapping two records' places. */
	state = tampered("UPDATE records SET seq = -seq WHERE ws = 'alpha' AND "
			 "seq IN (12, 13);"
			 "UPDATE records SET seq = 13 WHERE ws = 'alpha' AND "
			 "seq = -12;"
			 "UPDATE records SET seq = 12 WHERE ws = 'alpha' AND "
			 "seq = -13;");
	verify_db(state, NULL, 0, 0, &res);
	expect_fail(&res, WS_A, 12, "record 12 does not match its hash");

	state = tampered("DELETE FROM records WHERE ws = 'alpha' AND seq > 35");
	verify_db(state, NULL, 0, 0, &res);
	expect_fail(&res, WS_A, 36, "log truncated: checkpoint covers 40 "
		    "records, log has 35");

	/* All of a chain gone, its checkpoints left. */
	state = tampered("DELETE FROM records WHERE ws = 'beta'");
	verify_db(state, NULL, 0, 0, &res);
	expect_fail(&res, WS_B, 1, "log truncated: checkpoint covers 7 "
		    "records, log has 0");

	/* A checkpoint's note edited: its signature no longer holds. */
	state = tampered("UPDATE checkpoints SET note = replace(note, "
			 "char(10) || '20' || char(10), char(10) || '21' || "
			 "char(10)) WHERE ws = 'alpha' AND size = 20");
	verify_db(state, NULL, 0, 0, &res);
	expect_fail(&res, WS_A, 20, "checkpoint at size 20: bad signature");
}

/* Renumbers or rewrites alpha from FROM on with correct leaves and heads,
** as someone without the key can. */
static void recompute_chain(const char *state, int64_t from)
{
	uint8_t head[AUDIT_HASH_LEN], leaf[AUDIT_HASH_LEN];
	sqlite3_stmt *sel, *upd;
	struct audit_record r;
	sqlite3 *db = raw_open(state);

	CHECK(sqlite3_prepare_v2(db, "SELECT " AUDIT_RECORD_COLUMNS " FROM "
				 "records WHERE ws = 'alpha' AND seq >= ? - 1 "
				 "ORDER BY seq", -1, &sel, NULL) == SQLITE_OK,
	      "prepare");
	CHECK(sqlite3_prepare_v2(db, "UPDATE records SET leaf = ?, head = ? "
				 "WHERE ws = 'alpha' AND seq = ?", -1, &upd,
				 NULL) == SQLITE_OK, "prepare");
	sqlite3_bind_int64(sel, 1, from);
	raw_exec(db, "BEGIN");
	CHECK(sqlite3_step(sel) == SQLITE_ROW, "row before FROM");
	audit_record_from_row(&r, sel, 0);
	memcpy(head, r.head, AUDIT_HASH_LEN);
	while (sqlite3_step(sel) == SQLITE_ROW) {
		audit_record_from_row(&r, sel, 0);
		CHECK_RC(audit_leaf(&r, leaf), 0);
		audit_head_next(head, leaf, head);
		sqlite3_bind_blob(upd, 1, leaf, AUDIT_HASH_LEN, SQLITE_STATIC);
		sqlite3_bind_blob(upd, 2, head, AUDIT_HASH_LEN, SQLITE_STATIC);
		sqlite3_bind_int64(upd, 3, r.seq);
		CHECK(sqlite3_step(upd) == SQLITE_DONE, "update");
		sqlite3_reset(upd);
	}
	raw_exec(db, "COMMIT");
	sqlite3_finalize(sel);
	sqlite3_finalize(upd);
	sqlite3_close(db);
}

/* Replaces alpha's checkpoints from SIZE on with notes signed by another
** key over the (recomputed) chain. */
static void forge_checkpoints(const char *state, int64_t size)
{
	const char *other = new_state();
	struct audit_key *k2;
	uint8_t head[AUDIT_HASH_LEN];
	char err[256], sql[256], *note;
	sqlite3_stmt *st;
	sqlite3 *db;
	int64_t sz;

	CHECK_RC(audit_key_load(other, 1, &k2, err, sizeof(err)), 0);
	db = raw_open(state);
	CHECK(sqlite3_prepare_v2(db, "SELECT size, (SELECT head FROM records "
				 "WHERE ws = 'alpha' AND seq = size) FROM "
				 "checkpoints WHERE ws = 'alpha' AND size >= ?",
				 -1, &st, NULL) == SQLITE_OK, "prepare");
	sqlite3_bind_int64(st, 1, size);
	while (sqlite3_step(st) == SQLITE_ROW) {
		sz = sqlite3_column_int64(st, 0);
		memcpy(head, sqlite3_column_blob(st, 1), AUDIT_HASH_LEN);
		note = audit_checkpoint_sign(k2, HOST, WS_A, sz, head, 1);
		CHECK(note != NULL, "sign");
		snprintf(sql, sizeof(sql), "UPDATE checkpoints SET note = ?1 "
			 "WHERE ws = 'alpha' AND size = %lld", (long long)sz);
		{
			sqlite3_stmt *u;

			CHECK(sqlite3_prepare_v2(db, sql, -1, &u, NULL) ==
			      SQLITE_OK, "prepare");
			sqlite3_bind_text(u, 1, note, -1, SQLITE_STATIC);
			CHECK(sqlite3_step(u) == SQLITE_DONE, "update");
			sqlite3_finalize(u);
		}
		free(note);
	}
	sqlite3_finalize(st);
	sqlite3_close(db);
	audit_key_free(k2);
}

static void test_verify_forged(void)
{
	struct audit_verify_result res;
	const char *state;

	/* Record 25 edited and the chain recomputed without the key: the
	** checkpoint at 30 no longer matches. */
	state = tampered("UPDATE records SET uid = 0 WHERE ws = 'alpha' AND "
			 "seq = 25");
	recompute_chain(state, 25);
	verify_db(state, NULL, 0, 0, &res);
	expect_fail(&res, WS_A, 30, "checkpoint at 30 does not match the "
		    "records: records up to 30 were altered");

	/* The same, with the checkpoints re-signed by another key. */
	state = tampered("UPDATE records SET uid = 0 WHERE ws = 'alpha' AND "
			 "seq = 25");
	recompute_chain(state, 25);
	forge_checkpoints(state, 30);
	verify_db(state, NULL, 0, 0, &res);
	expect_fail(&res, WS_A, 30, "checkpoint at size 30: not signed by "
		    "this key");

	/* A forged record inserted at 30 and the later ones moved up one,
	** all with correct hashes: the checkpoint at 30 signed the old
	** record 30. */
	state = tampered("UPDATE records SET seq = -seq WHERE ws = 'alpha' AND "
			 "seq >= 30;"
			 "UPDATE records SET seq = 1 - seq WHERE seq < 0;"
			 "INSERT INTO records SELECT ws, 30, time_ns, host, "
			 "layer, 0, 0, 1, 'forged', op, '/forged', path2, "
			 "ino, bytes, result, detail, fp, leaf, head FROM "
			 "records WHERE ws = 'alpha' AND seq = 29;");
	recompute_chain(state, 30);
	verify_db(state, NULL, 0, 0, &res);
	expect_fail(&res, WS_A, 30, "checkpoint at 30 does not match");
}

/* ---- bundles ------------------------------------------------------------ */

/* What `wsctl audit export --format jsonl` writes: the header, each chain
** from its start, then the checkpoints. */
static void export_bundle(const char *state, const char *path, int zstd)
{
	static const char *const chains[] = { "", WS_A, WS_B };
	uint8_t zero[AUDIT_HASH_LEN] = { 0 };
	struct audit_record r;
	struct audit_store *s;
	struct audit_sink *out;
	struct audit_key *k;
	sqlite3_stmt *st;
	char err[256];
	size_t i;

	CHECK_RC(audit_key_load(state, 0, &k, err, sizeof(err)), 0);
	CHECK_RC(audit_store_open(state, AUDIT_STORE_READONLY, &s, err,
				  sizeof(err)), 0);
	CHECK_RC(audit_sink_open(path, zstd, &out, err, sizeof(err)), 0);
	CHECK_RC(audit_jsonl_header(out, audit_key_verifier(k), HOST), 0);
	CHECK(sqlite3_prepare_v2(audit_store_db(s), "SELECT "
				 AUDIT_RECORD_COLUMNS " FROM records WHERE "
				 "ws = ? ORDER BY seq", -1, &st, NULL) ==
	      SQLITE_OK, "prepare");
	for (i = 0; i < 3; i++) {
		CHECK_RC(audit_jsonl_start(out, chains[i], 0, zero), 0);
		sqlite3_bind_text(st, 1, chains[i], -1, SQLITE_STATIC);
		while (sqlite3_step(st) == SQLITE_ROW) {
			audit_record_from_row(&r, st, 0);
			CHECK_RC(audit_jsonl_record(out, &r), 0);
		}
		sqlite3_reset(st);
	}
	sqlite3_finalize(st);
	CHECK(sqlite3_prepare_v2(audit_store_db(s), "SELECT ws, size, "
				 "time_ns, note FROM checkpoints", -1, &st,
				 NULL) == SQLITE_OK, "prepare");
	while (sqlite3_step(st) == SQLITE_ROW)
		CHECK_RC(audit_jsonl_checkpoint(out,
			(const char *)sqlite3_column_text(st, 0),
			sqlite3_column_int64(st, 1),
			sqlite3_column_int64(st, 2),
			(const char *)sqlite3_column_text(st, 3)), 0);
	sqlite3_finalize(st);
	CHECK_RC(audit_sink_close(out, err, sizeof(err)), 0);
	audit_store_close(s);
	audit_key_free(k);
}

static void verify_bundle(const char *path, const struct audit_key *pub,
			  struct audit_verify_result *res)
{
	struct audit_verify_opts o = { NULL, 0, 0, pub };
	char err[256];

	CHECK_RC(audit_verify_bundle(path, &o, res, err, sizeof(err)), 0);
}

static char *read_file(const char *path, size_t *len)
{
	char *buf;
	FILE *f = fopen(path, "r");

	CHECK(f != NULL, "open %s", path);
	buf = malloc(1 << 20);
	*len = fread(buf, 1, 1 << 20, f);
	buf[*len] = '\0';
	fclose(f);
	return buf;
}

static void write_file(const char *path, const char *buf, size_t len)
{
	FILE *f = fopen(path, "w");

	CHECK(f != NULL && fwrite(buf, 1, len, f) == len, "write %s", path);
	fclose(f);
}

/* Rewrites the bundle at PATH with the first FROM replaced by TO. */
static void edit_file(const char *path, const char *from, const char *to)
{
	size_t len;
	char *buf = read_file(path, &len), *p = strstr(buf, from), *out;

	CHECK(p != NULL, "'%s' not in %s", from, path);
	out = malloc(len + strlen(to) + 1);
	memcpy(out, buf, (size_t)(p - buf));
	strcpy(out + (p - buf), to);
	strcat(out, p + strlen(from));
	write_file(path, out, strlen(out));
	free(buf);
	free(out);
}

static void test_bundle_round_trip(void)
{
	const char *state = new_state(), *other = new_state();
	struct audit_verify_result res;
	struct audit_key *k2;
	char path[PATH_MAX], err[256];
	int zstd;

	make_log(state);
	for (zstd = 0; zstd <= 1; zstd++) {
		snprintf(path, sizeof(path), "%s/bundle%d.jsonl%s", state, zstd,
			 zstd ? ".zst" : "");
		export_bundle(state, path, zstd);
		verify_bundle(path, NULL, &res);
		CHECK(res.ok, "bundle failed: %s seq %lld: %s", res.bad_ws,
		      (long long)res.bad_seq, res.why);
		CHECK(res.records == 53 && res.checkpoints == 6 &&
		      res.unanchored == 5, "bundle counts %lld %lld %lld",
		      (long long)res.records, (long long)res.checkpoints,
		      (long long)res.unanchored);
	}
	/* zstd really was used. */
	{
		size_t len;
		char *buf = read_file(path, &len);

		CHECK(len > 4 && memcmp(buf, "\x28\xb5\x2f\xfd", 4) == 0,
		      "not zstd");
		free(buf);
	}
	/* Another given key does not match the bundle's own. */
	CHECK_RC(audit_key_load(other, 1, &k2, err, sizeof(err)), 0);
	verify_bundle(path, k2, &res);
	CHECK(!res.ok && strstr(res.why, "not the given key"), "why %s",
	      res.why);
	audit_key_free(k2);

	/* An edited record line. */
	snprintf(path, sizeof(path), "%s/bundle0.jsonl", state);
	edit_file(path, "/src/file16.c", "/src/file99.c");
	verify_bundle(path, NULL, &res);
	expect_fail(&res, WS_A, 17, "record 17 does not match its hash");
}

static void test_bundle_garbage(void)
{
	const char *state = new_state();
	struct audit_verify_result res;
	char path[PATH_MAX], err[256];
	struct audit_verify_opts o = { 0 };

	make_log(state);
	snprintf(path, sizeof(path), "%s/b.jsonl", state);
	export_bundle(state, path, 0);
	edit_file(path, "{\"type\":\"record\",\"ws\":\"alpha\",\"seq\":5,",
		  "{\"type\":\"record\",\"ws\":\"alpha\",\"seq\":5,,");
	verify_bundle(path, NULL, &res);
	CHECK(!res.ok && streq(res.bad_ws, WS_A) && res.bad_seq == 5 &&
	      strstr(res.why, "line 9: not valid JSON") != NULL,
	      "garbled: '%s' %lld %s", res.bad_ws, (long long)res.bad_seq,
	      res.why);

	export_bundle(state, path, 0);
	edit_file(path, "\"type\":\"record\"", "\"type\":\"recorx\"");
	verify_bundle(path, NULL, &res);
	CHECK(!res.ok && strstr(res.why, "line 3: unknown line type "
				"\"recorx\"") != NULL, "unknown: %s", res.why);

	export_bundle(state, path, 0);
	edit_file(path, ",\"leaf\":", ",\"leag\":");
	verify_bundle(path, NULL, &res);
	CHECK(!res.ok && strstr(res.why, "no hash \"leaf\"") != NULL,
	      "missing field: %s", res.why);

	write_file(path, "not json\n", 9);
	verify_bundle(path, NULL, &res);
	CHECK(!res.ok && strstr(res.why, "line 1") != NULL, "header: %s",
	      res.why);
	write_file(path, "", 0);
	verify_bundle(path, NULL, &res);
	CHECK(!res.ok && strstr(res.why, "empty") != NULL, "empty: %s",
	      res.why);
	/* Truncated zstd. */
	snprintf(path, sizeof(path), "%s/b.jsonl.zst", state);
	export_bundle(state, path, 1);
	CHECK(truncate(path, 100) == 0, "truncate");
	CHECK(audit_verify_bundle(path, &o, &res, err, sizeof(err)) < 0 ||
	      !res.ok, "truncated zstd verified");
	CHECK_RC(audit_verify_bundle("/nonexistent/b", &o, &res, err,
				     sizeof(err)), -ENOENT);
}

/* Names with newlines, tabs, quotes and bytes that are not UTF-8. */
static void test_bundle_weird_names(void)
{
	static const char *const weird[] = {
		"/a\nb", "/tab\there", "/quote\"back\\slash", "/\xff\xfe\x80",
		"/caf\xc3\xa9", "/\xed\xa0\x80surrogate", "/ctl\x01\x1f\x7f",
		"/\xf0\x9f\x98\x80", "/overlong\xc0\xaf",
	};
	const char *state = new_state();
	struct audit_record recs[9], *p[9];
	struct audit_verify_result res;
	struct audit_store *s;
	struct audit_key *k;
	char path[PATH_MAX], err[256];
	size_t i, len;
	char *text;

	CHECK_RC(audit_key_load(state, 1, &k, err, sizeof(err)), 0);
	CHECK_RC(audit_store_open(state, AUDIT_STORE_CREATE, &s, err,
				  sizeof(err)), 0);
	for (i = 0; i < 9; i++) {
		fill_record(&recs[i], WS_A, (int)i);
		recs[i].path = weird[i];
		recs[i].path2 = weird[8 - i];
		recs[i].comm = weird[(i + 3) % 9];
		p[i] = &recs[i];
	}
	CHECK_RC(audit_store_append(s, p, 9, err, sizeof(err)), 0);
	checkpoint(s, k, WS_A, 1);
	audit_store_close(s);
	audit_key_free(k);
	for (i = 0; i < 2; i++) {
		snprintf(path, sizeof(path), "%s/w.jsonl%s", state,
			 i ? ".zst" : "");
		export_bundle(state, path, (int)i);
		verify_bundle(path, NULL, &res);
		CHECK(res.ok && res.records == 9 && res.checkpoints == 1,
		      "weird bundle: %s", res.why);
	}
	text = read_file(path, &len);
	free(text);
	snprintf(path, sizeof(path), "%s/w.jsonl", state);
	text = read_file(path, &len);
	CHECK(strstr(text, "\"path\":\"/a\\nb\"") != NULL, "newline escaped");
	CHECK(strstr(text, "\"path\":\"/tab\\there\"") != NULL, "tab");
	CHECK(strstr(text, "\"path\":\"/caf\xc3\xa9\"") != NULL, "UTF-8 kept");
	CHECK(strstr(text, "\"path_b64\":\"L//+gA==\"") != NULL, "b64");
	CHECK(strstr(text, "\\u0001\\u001f\\u007f") != NULL, "controls");
	CHECK(strchr(text, '\x01') == NULL, "raw control byte");
	free(text);
}

static void test_json_bits(void)
{
	char buf[48];

	audit_format_time(1700000000123456789LL, buf, sizeof(buf));
	CHECK(streq(buf, "2023-11-14T22:13:20.123456789Z"), "time %s", buf);
	audit_format_time(-1, buf, sizeof(buf));
	CHECK(streq(buf, "1969-12-31T23:59:59.999999999Z"), "time %s", buf);
	CHECK(audit_utf8_valid("") && audit_utf8_valid("abc\xc3\xa9") &&
	      audit_utf8_valid("\xf4\x8f\xbf\xbf"), "valid");
	CHECK(!audit_utf8_valid("\xf4\x90\x80\x80") &&
	      !audit_utf8_valid("\xe0\x80\xaf") && !audit_utf8_valid("\xc3") &&
	      !audit_utf8_valid("\xed\xbf\xbf"), "invalid");
}

/* A line longer than the reader's buffers and than its first line size. */
static void test_long_lines(void)
{
	const char *state = new_state();
	struct audit_lines *l;
	struct audit_sink *out;
	char path[PATH_MAX], err[256], *big;
	const char *line;
	size_t len, lineno, n = 300000;
	int z;

	big = malloc(n + 1);
	memset(big, 'x', n);
	big[n] = '\0';
	for (z = 0; z <= 1; z++) {
		snprintf(path, sizeof(path), "%s/long%d", state, z);
		CHECK_RC(audit_sink_open(path, z, &out, err, sizeof(err)), 0);
		CHECK_RC(audit_sink_printf(out, "short\n%s\n\nlast", big), 0);
		CHECK_RC(audit_sink_close(out, err, sizeof(err)), 0);
		CHECK_RC(audit_lines_open(path, &l, err, sizeof(err)), 0);
		line = audit_lines_next(l, &len, &lineno);
		CHECK(line && streq(line, "short") && lineno == 1, "line 1");
		line = audit_lines_next(l, &len, &lineno);
		CHECK(line && len == n && streq(line, big) && lineno == 2,
		      "long line");
		line = audit_lines_next(l, &len, &lineno);
		CHECK(line && len == 0 && lineno == 3, "empty line");
		line = audit_lines_next(l, &len, &lineno);
		CHECK(line && streq(line, "last") && lineno == 4, "last");
		CHECK(audit_lines_next(l, &len, &lineno) == NULL &&
		      audit_lines_error(l) == NULL, "end");
		audit_lines_close(l);
	}
	free(big);
}

int main(void)
{
	if (setenv("TMPDIR", "/var/tmp", 0) != 0)
		return 1;
	setvbuf(stdout, NULL, _IOLBF, 0);
	test_encoding();
	test_hashes();
	test_dup_and_names();
	test_keys();
	test_key_race();
	test_checkpoint_notes();
	test_store_append();
	test_store_rollback();
	test_triggers();
	test_append_one();
	test_verify_ok();
	test_verify_tampered();
	test_verify_forged();
	test_json_bits();
	test_long_lines();
	test_bundle_round_trip();
	test_bundle_garbage();
	test_bundle_weird_names();
	printf("ok\n");
	return 0;
}
