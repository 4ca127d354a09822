/*
** Signed checkpoints in the signed-note form (see checkpoint.h).
**
** The note format is borrowed from transparency logs so that generic tools
** and people can read it: four text lines saying which log, how long, which
** head and when, then a signature line naming the key.  Parsing is strict
** (exactly four body lines, canonical decimal numbers, exact base64 of 32
** bytes) because the note is the trust anchor: any text a lenient parser
** would accept in two spellings is text an attacker could vary without
** touching the signature's meaning.
**
** A note may carry several signature lines (the format allows cosigners);
** the one whose name and key id belong to our key is checked, and others
** are ignored.  A note with no such line is reported as not signed by the
** key, which is different from a forged signature.
*/
#include "checkpoint.h"

#include "internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EM_DASH "\xe2\x80\x94"
#define SIG_PREFIX EM_DASH " "
#define SIG_PREFIX_LEN (sizeof(SIG_PREFIX) - 1)
#define SIG_LEN 64
#define KEYSIG_LEN (4 + SIG_LEN)
#define BODY_LINES 4

/* ---- signing ------------------------------------------------------------ */

static char *body_text(const char *host, const char *ws, int64_t size,
		       const uint8_t head[AUDIT_HASH_LEN], int64_t time_ns)
{
	char b64[audit_b64_len(AUDIT_HASH_LEN) + 1];
	char *body = NULL;

	(void)audit_b64_encode(head, AUDIT_HASH_LEN, b64);
	if (asprintf(&body, "%s/wsfs%s%s\n%" PRId64 "\n%s\ntime %" PRId64 "\n",
		     host, *ws ? "/" : "", ws, size, b64, time_ns) < 0)
		return NULL;
	return body;
}

char *audit_checkpoint_sign(const struct audit_key *k, const char *host,
			    const char *ws, int64_t size,
			    const uint8_t head[AUDIT_HASH_LEN], int64_t time_ns)
{
	uint8_t keysig[KEYSIG_LEN];
	char b64[audit_b64_len(KEYSIG_LEN) + 1];
	uint32_t id = audit_key_id(k);
	const char *name = audit_key_name(k);
	char *body, *note = NULL;

	if (name == NULL || !audit_key_can_sign(k))
		return NULL;
	body = body_text(host, ws, size, head, time_ns);
	if (body == NULL)
		return NULL;
	keysig[0] = (uint8_t)(id >> 24);
	keysig[1] = (uint8_t)(id >> 16);
	keysig[2] = (uint8_t)(id >> 8);
	keysig[3] = (uint8_t)id;
	if (audit_key_sign(k, body, strlen(body), keysig + 4) == 0) {
		(void)audit_b64_encode(keysig, sizeof(keysig), b64);
		if (asprintf(&note, "%s\n" SIG_PREFIX "%s %s\n", body, name,
			     b64) < 0)
			note = NULL;
	}
	free(body);
	return note;
}

/* ---- parsing ------------------------------------------------------------ */

void audit_checkpoint_clear(struct audit_checkpoint *c)
{
	free(c->origin);
	free(c->ws);
	free(c->note);
	memset(c, 0, sizeof(*c));
}

/* A canonical non-negative decimal of LEN bytes: no sign, no leading
** zero, no overflow. */
static int parse_count(const char *s, size_t len, int64_t *out)
{
	int64_t v = 0;
	size_t i;

	if (len == 0 || (len > 1 && s[0] == '0'))
		return -1;
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9' || v > (INT64_MAX - 9) / 10)
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return 0;
}

/* "<host>/wsfs" or "<host>/wsfs/<ws>": the workspace, malloc'd. */
static char *origin_ws(const char *origin)
{
	const char *p = strchr(origin, '/');

	if (p == NULL || strncmp(p, "/wsfs", 5) != 0)
		return NULL;
	p += 5;
	if (*p == '\0')
		return strdup("");
	if (*p != '/' || p[1] == '\0' || strchr(p + 1, '/') != NULL)
		return NULL;
	return strdup(p + 1);
}

static int origin_valid(const char *s, size_t len)
{
	size_t i;

	if (len == 0)
		return 0;
	for (i = 0; i < len; i++) {
		if ((unsigned char)s[i] < ' ')
			return 0;
	}
	return 1;
}

/* Splits the body (up to the blank line) into its four lines. */
static int split_body(const char *note, size_t body_len,
		      const char *line[BODY_LINES], size_t len[BODY_LINES])
{
	const char *p = note, *end = note + body_len, *nl;
	int i;

	for (i = 0; i < BODY_LINES; i++) {
		nl = memchr(p, '\n', (size_t)(end - p));
		if (nl == NULL)
			return -1;
		line[i] = p;
		len[i] = (size_t)(nl - p);
		p = nl + 1;
	}
	return p == end ? 0 : -1;
}

static int parse_body(const char *note, size_t body_len,
		      struct audit_checkpoint *out, char *why, size_t whylen)
{
	const char *line[BODY_LINES];
	size_t len[BODY_LINES];

	if (split_body(note, body_len, line, len) < 0) {
		audit_set_err(why, whylen, "checkpoint note does not have "
			      "four body lines");
		return -EINVAL;
	}
	if (!origin_valid(line[0], len[0]) ||
	    (out->origin = strndup(line[0], len[0])) == NULL ||
	    (out->ws = origin_ws(out->origin)) == NULL) {
		audit_set_err(why, whylen, "checkpoint note has a malformed "
			      "origin line");
		return -EINVAL;
	}
	if (parse_count(line[1], len[1], &out->size) < 0) {
		audit_set_err(why, whylen, "checkpoint note has a malformed "
			      "size line");
		return -EINVAL;
	}
	if (audit_b64_decode(line[2], len[2], out->head, AUDIT_HASH_LEN) !=
	    AUDIT_HASH_LEN) {
		audit_set_err(why, whylen, "checkpoint note has a malformed "
			      "head line");
		return -EINVAL;
	}
	if (len[3] < 5 || memcmp(line[3], "time ", 5) != 0 ||
	    parse_count(line[3] + 5, len[3] - 5, &out->time_ns) < 0) {
		audit_set_err(why, whylen, "checkpoint note has a malformed "
			      "time line");
		return -EINVAL;
	}
	return 0;
}

struct sigline {
	const char *name;
	size_t name_len;
	uint8_t keysig[KEYSIG_LEN];
};

/* One "— NAME BASE64" line of LEN bytes. */
static int parse_sigline(const char *s, size_t len, struct sigline *sl)
{
	const char *sp;

	if (len < SIG_PREFIX_LEN || memcmp(s, SIG_PREFIX, SIG_PREFIX_LEN) != 0)
		return -1;
	s += SIG_PREFIX_LEN;
	len -= SIG_PREFIX_LEN;
	sp = memchr(s, ' ', len);
	if (sp == NULL || sp == s)
		return -1;
	sl->name = s;
	sl->name_len = (size_t)(sp - s);
	if (audit_b64_decode(sp + 1, len - sl->name_len - 1, sl->keysig,
			     KEYSIG_LEN) != KEYSIG_LEN)
		return -1;
	return 0;
}

/* Whether SL claims to be by K: its name and key id. */
static int sigline_is_ours(const struct sigline *sl,
			   const struct audit_key *k)
{
	const char *name = audit_key_name(k);
	char buf[256];
	uint32_t id = (uint32_t)sl->keysig[0] << 24 |
		      (uint32_t)sl->keysig[1] << 16 |
		      (uint32_t)sl->keysig[2] << 8 | sl->keysig[3];

	if (sl->name_len >= sizeof(buf))
		return 0;
	memcpy(buf, sl->name, sl->name_len);
	buf[sl->name_len] = '\0';
	if (name != NULL)
		return strcmp(buf, name) == 0 && id == audit_key_id(k);
	return id == audit_key_id_for(k, buf);
}

/*
** Walks the signature lines after the blank line.  0 when one of them is
** K's valid signature of the body, -EBADMSG when K's is wrong or absent,
** -EINVAL when a line is malformed.
*/
static int check_signatures(const char *note, size_t body_len,
			    const struct audit_key *k, char *why,
			    size_t whylen)
{
	const char *p = note + body_len + 1, *nl;
	struct sigline sl;
	int seen = 0;

	if (*p == '\0') {
		audit_set_err(why, whylen, "checkpoint note is not signed");
		return -EINVAL;
	}
	for (; *p != '\0'; p = nl + 1) {
		nl = strchr(p, '\n');
		if (nl == NULL || parse_sigline(p, (size_t)(nl - p), &sl) < 0) {
			audit_set_err(why, whylen, "checkpoint note has a "
				      "malformed signature line");
			return -EINVAL;
		}
		if (k == NULL || !sigline_is_ours(&sl, k))
			continue;
		seen = 1;
		if (audit_key_verify(k, note, body_len, sl.keysig + 4))
			return 0;
	}
	if (k == NULL)
		return 0;
	audit_set_err(why, whylen, seen ? "bad signature"
					: "not signed by this key");
	return -EBADMSG;
}

int audit_checkpoint_check(const char *note, const struct audit_key *k,
			   struct audit_checkpoint *out, char *why,
			   size_t whylen)
{
	const char *blank = strstr(note, "\n\n");
	size_t body_len;
	int rc;

	memset(out, 0, sizeof(*out));
	if (blank == NULL) {
		audit_set_err(why, whylen, "checkpoint note has no blank line "
			      "before its signature");
		return -EINVAL;
	}
	body_len = (size_t)(blank - note) + 1;
	rc = parse_body(note, body_len, out, why, whylen);
	if (rc == 0 && (out->note = strdup(note)) == NULL) {
		audit_set_err(why, whylen, "out of memory");
		rc = -ENOMEM;
	}
	if (rc < 0) {
		audit_checkpoint_clear(out);
		return rc;
	}
	rc = check_signatures(note, body_len, k, why, whylen);
	if (rc == -EINVAL)
		audit_checkpoint_clear(out);
	return rc;
}
