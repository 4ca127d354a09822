/*
** The audit record's canonical encoding and hashes (see record.h), plus
** the small encodings (hex, base64, errno names) every other part of the
** library shares.
**
** Hashing is on the hot path twice over: the daemon's writer thread hashes
** every record it appends, and verification rehashes every record in the
** log and must run at hundreds of thousands of records a second.  So the
** encoder writes straight into a buffer that each thread keeps for its
** whole life, the SHA-256 implementation is fetched from the provider once
** per process, and each thread reuses one digest context: no record costs
** an allocation or a provider lookup.  The thread-local objects are freed
** by a pthread key destructor when a thread exits.
**
** The encoding itself is deliberately dull (fixed-width big-endian integers,
** length-prefixed byte strings, a version tag up front) so that an auditor
** can re-implement it from the description in record.h in a few lines of
** any language, and so that no two different records encode alike.
*/
#include "record.h"

#include "internal.h"

#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#define ENCODING_TAG "wsfs-audit-1"
#define ENCODING_TAG_LEN (sizeof(ENCODING_TAG) - 1)
#define LEAF_PREFIX 0x00
#define NODE_PREFIX 0x01
/* Enough for a typical record without growing: the tag, 7 integers, 10
** strings' lengths and a few hundred bytes of text. */
#define ENCODE_FIRST_CAP 1024

/* ---- errors ------------------------------------------------------------- */

void audit_set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	(void)vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* ---- hex and base64 ----------------------------------------------------- */

void audit_hex(const uint8_t *in, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 0xf];
	}
	out[2 * n] = '\0';
}

int audit_hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int audit_unhex(const char *in, size_t n, uint8_t *out)
{
	size_t i;
	int hi, lo;

	for (i = 0; i < n; i++) {
		hi = audit_hex_digit(in[2 * i]);
		if (hi < 0)
			return -1;
		lo = audit_hex_digit(in[2 * i + 1]);
		if (lo < 0)
			return -1;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

static const char b64_alphabet[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t audit_b64_encode(const uint8_t *in, size_t n, char *out)
{
	size_t i, o = 0;
	uint32_t v;

	for (i = 0; i + 2 < n; i += 3) {
		v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 |
		    in[i + 2];
		out[o++] = b64_alphabet[v >> 18];
		out[o++] = b64_alphabet[(v >> 12) & 63];
		out[o++] = b64_alphabet[(v >> 6) & 63];
		out[o++] = b64_alphabet[v & 63];
	}
	if (i < n) {
		v = (uint32_t)in[i] << 16;
		if (i + 1 < n)
			v |= (uint32_t)in[i + 1] << 8;
		out[o++] = b64_alphabet[v >> 18];
		out[o++] = b64_alphabet[(v >> 12) & 63];
		out[o++] = i + 1 < n ? b64_alphabet[(v >> 6) & 63] : '=';
		out[o++] = '=';
	}
	out[o] = '\0';
	return o;
}

static int b64_value(char c)
{
	const char *p;

	if (c == '\0')
		return -1;
	p = strchr(b64_alphabet, c);
	return p ? (int)(p - b64_alphabet) : -1;
}

/* One 4-character group; PAD counts its trailing '='. */
static int b64_group(const char *in, int pad, uint32_t *v)
{
	int i, d;

	*v = 0;
	for (i = 0; i < 4; i++) {
		d = i >= 4 - pad ? 0 : b64_value(in[i]);
		if (d < 0)
			return -1;
		*v = *v << 6 | (uint32_t)d;
	}
	return 0;
}

long audit_b64_decode(const char *in, size_t len, uint8_t *out, size_t cap)
{
	size_t i, o = 0;
	uint32_t v;
	int pad = 0, k;

	if (len % 4 != 0)
		return -1;
	if (len > 0 && in[len - 1] == '=')
		pad = len > 1 && in[len - 2] == '=' ? 2 : 1;
	for (i = 0; i < len; i += 4) {
		int last = i + 4 == len;

		if (b64_group(in + i, last ? pad : 0, &v) < 0)
			return -1;
		for (k = 0; k < 3 - (last ? pad : 0); k++) {
			if (o >= cap)
				return -1;
			out[o++] = (uint8_t)(v >> (16 - 8 * k));
		}
	}
	return (long)o;
}

/* ---- errno names -------------------------------------------------------- */

/* Aliases (EWOULDBLOCK, EOPNOTSUPP, EDEADLOCK) share a number on Linux;
** the first entry for a number is the name written, and every entry is
** accepted by audit_errno_from_name. */
static const struct {
	int err;
	const char *name;
} errnames[] = {
	{ EPERM, "EPERM" }, { ENOENT, "ENOENT" }, { ESRCH, "ESRCH" },
	{ EINTR, "EINTR" }, { EIO, "EIO" }, { ENXIO, "ENXIO" },
	{ E2BIG, "E2BIG" }, { ENOEXEC, "ENOEXEC" }, { EBADF, "EBADF" },
	{ ECHILD, "ECHILD" }, { EAGAIN, "EAGAIN" },
	{ EWOULDBLOCK, "EWOULDBLOCK" }, { ENOMEM, "ENOMEM" },
	{ EACCES, "EACCES" }, { EFAULT, "EFAULT" }, { EBUSY, "EBUSY" },
	{ EEXIST, "EEXIST" }, { EXDEV, "EXDEV" }, { ENODEV, "ENODEV" },
	{ ENOTDIR, "ENOTDIR" }, { EISDIR, "EISDIR" }, { EINVAL, "EINVAL" },
	{ ENFILE, "ENFILE" }, { EMFILE, "EMFILE" }, { ENOTTY, "ENOTTY" },
	{ ETXTBSY, "ETXTBSY" }, { EFBIG, "EFBIG" }, { ENOSPC, "ENOSPC" },
	{ ESPIPE, "ESPIPE" }, { EROFS, "EROFS" }, { EMLINK, "EMLINK" },
	{ EPIPE, "EPIPE" }, { EDOM, "EDOM" }, { ERANGE, "ERANGE" },
	{ EDEADLK, "EDEADLK" }, { EDEADLOCK, "EDEADLOCK" },
	{ ENAMETOOLONG, "ENAMETOOLONG" }, { ENOLCK, "ENOLCK" },
	{ ENOSYS, "ENOSYS" }, { ENOTEMPTY, "ENOTEMPTY" }, { ELOOP, "ELOOP" },
	{ ENOMSG, "ENOMSG" }, { ENODATA, "ENODATA" }, { ETIME, "ETIME" },
	{ ENOLINK, "ENOLINK" }, { EPROTO, "EPROTO" },
	{ EBADMSG, "EBADMSG" }, { EOVERFLOW, "EOVERFLOW" },
	{ EILSEQ, "EILSEQ" }, { EUSERS, "EUSERS" },
	{ ENOTSOCK, "ENOTSOCK" }, { ENOTSUP, "ENOTSUP" },
	{ EOPNOTSUPP, "EOPNOTSUPP" }, { EADDRINUSE, "EADDRINUSE" },
	{ ENETDOWN, "ENETDOWN" }, { ECONNABORTED, "ECONNABORTED" },
	{ ECONNRESET, "ECONNRESET" }, { ENOBUFS, "ENOBUFS" },
	{ ENOTCONN, "ENOTCONN" }, { ETIMEDOUT, "ETIMEDOUT" },
	{ ECONNREFUSED, "ECONNREFUSED" }, { EHOSTUNREACH, "EHOSTUNREACH" },
	{ EALREADY, "EALREADY" }, { EINPROGRESS, "EINPROGRESS" },
	{ ESTALE, "ESTALE" }, { EUCLEAN, "EUCLEAN" }, { EDQUOT, "EDQUOT" },
	{ ECANCELED, "ECANCELED" }, { EKEYREJECTED, "EKEYREJECTED" },
	{ EOWNERDEAD, "EOWNERDEAD" }, { ENOTRECOVERABLE, "ENOTRECOVERABLE" },
	{ ENOMEDIUM, "ENOMEDIUM" }, { EREMOTEIO, "EREMOTEIO" },
};

#define N_ERRNAMES (sizeof(errnames) / sizeof(errnames[0]))

const char *audit_errname(int err)
{
	static __thread char other[24];
	size_t i;

	if (err < 0)
		err = -err;
	if (err == 0)
		return "0";
	for (i = 0; i < N_ERRNAMES; i++) {
		if (errnames[i].err == err)
			return errnames[i].name;
	}
	(void)snprintf(other, sizeof(other), "E%d", err);
	return other;
}

/* "E<digits>" as written for errnos without a name. */
static int errno_from_number(const char *name)
{
	const char *p = name + 1;
	long v = 0;

	if (name[0] != 'E' || *p == '\0')
		return -EINVAL;
	for (; *p != '\0'; p++) {
		if (*p < '0' || *p > '9' || v > 100000)
			return -EINVAL;
		v = v * 10 + (*p - '0');
	}
	return v > 0 ? (int)v : -EINVAL;
}

int audit_errno_from_name(const char *name)
{
	size_t i;

	if (strcmp(name, "0") == 0)
		return 0;
	for (i = 0; i < N_ERRNAMES; i++) {
		if (strcmp(errnames[i].name, name) == 0)
			return errnames[i].err;
	}
	return errno_from_number(name);
}

int audit_result_denied(const char *result)
{
	return strcmp(result, "EACCES") == 0 || strcmp(result, "EPERM") == 0 ||
	       strcmp(result, "EROFS") == 0 || strcmp(result, "EDQUOT") == 0;
}

/* ---- duplication -------------------------------------------------------- */

static const char *nz(const char *s)
{
	return s ? s : "";
}

/* The string fields, so dup and encode treat them alike. */
#define N_STRINGS 10
#define N_INTEGERS 7

static void string_fields(const struct audit_record *r,
			  const char *const *out[N_STRINGS])
{
	out[0] = &r->host;
	out[1] = &r->ws;
	out[2] = &r->layer;
	out[3] = &r->comm;
	out[4] = &r->op;
	out[5] = &r->path;
	out[6] = &r->path2;
	out[7] = &r->result;
	out[8] = &r->detail;
	out[9] = &r->fp;
}

struct audit_record *audit_record_dup(const struct audit_record *r)
{
	const char *const *src[N_STRINGS];
	const char *const *dst[N_STRINGS];
	size_t len[N_STRINGS], total = sizeof(*r);
	struct audit_record *copy;
	char *p;
	int i;

	string_fields(r, src);
	for (i = 0; i < N_STRINGS; i++) {
		len[i] = strlen(nz(*src[i])) + 1;
		total += len[i];
	}
	copy = malloc(total);
	if (copy == NULL)
		return NULL;
	*copy = *r;
	string_fields(copy, dst);
	p = (char *)(copy + 1);
	for (i = 0; i < N_STRINGS; i++) {
		memcpy(p, nz(*src[i]), len[i]);
		/* The field pointers are const for readers; this block is
		** ours to point into. */
		*(const char **)dst[i] = p;
		p += len[i];
	}
	return copy;
}

/* ---- canonical encoding ------------------------------------------------- */

static int reserve(uint8_t **buf, size_t *cap, size_t need)
{
	size_t ncap = *cap ? *cap : ENCODE_FIRST_CAP;
	uint8_t *nbuf;

	if (need <= *cap)
		return 0;
	while (ncap < need)
		ncap *= 2;
	nbuf = realloc(*buf, ncap);
	if (nbuf == NULL)
		return -ENOMEM;
	*buf = nbuf;
	*cap = ncap;
	return 0;
}

static uint8_t *put_be(uint8_t *p, uint64_t v, int bytes)
{
	int i;

	for (i = bytes - 1; i >= 0; i--) {
		p[i] = (uint8_t)v;
		v >>= 8;
	}
	return p + bytes;
}

static uint8_t *put_int(uint8_t *p, int64_t v)
{
	return put_be(p, (uint64_t)v, 8);
}

static uint8_t *put_str(uint8_t *p, const char *s, size_t len)
{
	p = put_be(p, len, 4);
	memcpy(p, s, len);
	return p + len;
}

/*
** Appends at offset *USED; the strings are measured first so the buffer
** grows at most once.  A string longer than 4 GiB cannot be a record field
** (paths are at most PATH_MAX), so it is refused rather than truncated.
*/
static size_t encode_at(const struct audit_record *r, uint8_t **buf,
			size_t *cap, size_t used)
{
	const char *const *f[N_STRINGS];
	const char *s[N_STRINGS];
	size_t len[N_STRINGS], total = ENCODING_TAG_LEN + N_INTEGERS * 8;
	uint8_t *p;
	int i;

	string_fields(r, f);
	for (i = 0; i < N_STRINGS; i++) {
		s[i] = nz(*f[i]);
		len[i] = strlen(s[i]);
		if (len[i] > UINT32_MAX)
			return 0;
		total += 4 + len[i];
	}
	if (reserve(buf, cap, used + total) < 0)
		return 0;
	p = *buf + used;
	memcpy(p, ENCODING_TAG, ENCODING_TAG_LEN);
	p += ENCODING_TAG_LEN;
	p = put_int(p, r->seq);
	p = put_int(p, r->time_ns);
	p = put_str(p, s[0], len[0]);		/* host */
	p = put_str(p, s[1], len[1]);		/* ws */
	p = put_str(p, s[2], len[2]);		/* layer */
	p = put_int(p, r->uid);
	p = put_int(p, r->gid);
	p = put_int(p, r->pid);
	p = put_str(p, s[3], len[3]);		/* comm */
	p = put_str(p, s[4], len[4]);		/* op */
	p = put_str(p, s[5], len[5]);		/* path */
	p = put_str(p, s[6], len[6]);		/* path2 */
	p = put_int(p, r->ino);
	p = put_int(p, r->bytes);
	p = put_str(p, s[7], len[7]);		/* result */
	p = put_str(p, s[8], len[8]);		/* detail */
	(void)put_str(p, s[9], len[9]);		/* fp */
	return total;
}

size_t audit_record_encode(const struct audit_record *r, uint8_t **buf,
			   size_t *cap)
{
	return encode_at(r, buf, cap, 0);
}

/* ---- hashing ------------------------------------------------------------ */

struct hash_tls {
	EVP_MD_CTX *ctx;
	uint8_t *buf;
	size_t cap;
};

static pthread_once_t hash_once = PTHREAD_ONCE_INIT;
static pthread_key_t hash_key;
static EVP_MD *sha256;		/* fetched once, kept for the process */
static int hash_key_ok;

static void hash_tls_free(void *p)
{
	struct hash_tls *t = p;

	EVP_MD_CTX_free(t->ctx);
	free(t->buf);
	free(t);
}

static void hash_init(void)
{
	sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
	hash_key_ok = pthread_key_create(&hash_key, hash_tls_free) == 0;
}

/* This thread's context and buffer, made on first use. */
static struct hash_tls *hash_tls(void)
{
	struct hash_tls *t;

	if (pthread_once(&hash_once, hash_init) != 0 || sha256 == NULL ||
	    !hash_key_ok)
		return NULL;
	t = pthread_getspecific(hash_key);
	if (t != NULL)
		return t;
	t = calloc(1, sizeof(*t));
	if (t == NULL)
		return NULL;
	t->ctx = EVP_MD_CTX_new();
	if (t->ctx == NULL || pthread_setspecific(hash_key, t) != 0) {
		hash_tls_free(t);
		return NULL;
	}
	return t;
}

static int digest(struct hash_tls *t, const void *data, size_t len,
		  uint8_t out[AUDIT_HASH_LEN])
{
	if (EVP_DigestInit_ex2(t->ctx, sha256, NULL) != 1 ||
	    EVP_DigestUpdate(t->ctx, data, len) != 1 ||
	    EVP_DigestFinal_ex(t->ctx, out, NULL) != 1)
		return -EIO;
	return 0;
}

int audit_leaf(const struct audit_record *r, uint8_t leaf[AUDIT_HASH_LEN])
{
	struct hash_tls *t = hash_tls();
	size_t len;

	if (t == NULL)
		return -ENOMEM;
	if (reserve(&t->buf, &t->cap, 1) < 0)
		return -ENOMEM;
	t->buf[0] = LEAF_PREFIX;
	len = encode_at(r, &t->buf, &t->cap, 1);
	if (len == 0)
		return -ENOMEM;
	return digest(t, t->buf, len + 1, leaf);
}

/*
** Cannot report failure (the signature is void): on a libcrypto error the
** head is all 0xff, which matches no real head, so verification fails
** loudly rather than vouching for anything.
*/
void audit_head_next(const uint8_t prev[AUDIT_HASH_LEN],
		     const uint8_t leaf[AUDIT_HASH_LEN],
		     uint8_t out[AUDIT_HASH_LEN])
{
	struct hash_tls *t = hash_tls();
	uint8_t node[1 + 2 * AUDIT_HASH_LEN];

	node[0] = NODE_PREFIX;
	memcpy(node + 1, prev, AUDIT_HASH_LEN);
	memcpy(node + 1 + AUDIT_HASH_LEN, leaf, AUDIT_HASH_LEN);
	if (t == NULL || digest(t, node, sizeof(node), out) < 0)
		memset(out, 0xff, AUDIT_HASH_LEN);
}

int audit_sha256(const void *data, size_t len, uint8_t out[AUDIT_HASH_LEN])
{
	struct hash_tls *t = hash_tls();

	if (t == NULL)
		return -ENOMEM;
	return digest(t, data, len, out);
}
