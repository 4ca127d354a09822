/*
** The JSON Lines export and offline bundle (see jsonl.h).
**
** The bundle must re-encode every record to exactly the bytes that were
** hashed, and file names are arbitrary bytes.  JSON strings, though, are
** Unicode: a writer that smuggled invalid UTF-8 through (raw, or as \u00XX
** escapes of byte values, as fs/util.c does for display) would produce
** either invalid JSON or a different string on the way back.  So a field
** that is valid UTF-8 is written as a JSON string, with only the characters
** JSON requires escaped plus the other control characters (so a line stays
** one line and a terminal shows no surprises), and a field that is not is
** written under "<name>_b64" as base64 of its bytes.  A reader tells the two
** apart by the key, never by guessing from the value.
**
** The UTF-8 check is strict (no overlong forms, no surrogates, nothing past
** U+10FFFF) because a JSON parser on the reading side is: whatever it would
** reject or rewrite must go the base64 way.
*/
#include "jsonl.h"

#include "internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Input bytes per base64 chunk: a multiple of 3. */
#define B64_CHUNK 768

/* Length of the UTF-8 sequence at P, or 0 if it is not a valid one. */
static size_t utf8_seq(const unsigned char *p)
{
	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		return (p[1] & 0xc0) == 0x80 ? 2 : 0;
	if (p[0] >= 0xe0 && p[0] <= 0xef) {
		/* E0 needs A0..BF (no overlongs), ED 80..9F (no
		** surrogates). */
		unsigned char lo = p[0] == 0xe0 ? 0xa0 : 0x80;
		unsigned char hi = p[0] == 0xed ? 0x9f : 0xbf;

		return p[1] >= lo && p[1] <= hi && (p[2] & 0xc0) == 0x80
			? 3 : 0;
	}
	if (p[0] >= 0xf0 && p[0] <= 0xf4) {
		unsigned char lo = p[0] == 0xf0 ? 0x90 : 0x80;
		unsigned char hi = p[0] == 0xf4 ? 0x8f : 0xbf;

		return p[1] >= lo && p[1] <= hi && (p[2] & 0xc0) == 0x80 &&
		       (p[3] & 0xc0) == 0x80 ? 4 : 0;
	}
	return 0;
}

int audit_utf8_valid(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n;

	/* A NUL inside a sequence fails the continuation test, so the
	** lookahead never passes the terminator. */
	while (*p != '\0') {
		n = utf8_seq(p);
		if (n == 0)
			return 0;
		p += n;
	}
	return 1;
}

/* The escape for C, one of the characters needs_escape picks out. */
static int escape_char(struct audit_sink *s, unsigned char c)
{
	switch (c) {
	case '"':
		return audit_sink_write(s, "\\\"", 2);
	case '\\':
		return audit_sink_write(s, "\\\\", 2);
	case '\n':
		return audit_sink_write(s, "\\n", 2);
	case '\t':
		return audit_sink_write(s, "\\t", 2);
	case '\r':
		return audit_sink_write(s, "\\r", 2);
	default:
		return audit_sink_printf(s, "\\u%04x", c);
	}
}

static int needs_escape(unsigned char c)
{
	return c < 0x20 || c == '"' || c == '\\' || c == 0x7f;
}

int audit_json_string(struct audit_sink *s, const char *str)
{
	const char *run = str, *p;
	int rc = audit_sink_write(s, "\"", 1);

	for (p = str; rc == 0 && *p != '\0'; p++) {
		if (!needs_escape((unsigned char)*p))
			continue;
		rc = audit_sink_write(s, run, (size_t)(p - run));
		if (rc == 0)
			rc = escape_char(s, (unsigned char)*p);
		run = p + 1;
	}
	if (rc == 0)
		rc = audit_sink_write(s, run, (size_t)(p - run));
	return rc ? rc : audit_sink_write(s, "\"", 1);
}

/* In chunks of a multiple of 3 bytes, which encode to base64 that simply
** concatenates; no allocation, however long the field. */
static int b64_string(struct audit_sink *s, const char *str)
{
	char out[audit_b64_len(B64_CHUNK) + 1];
	size_t n = strlen(str), off, len;

	(void)audit_sink_write(s, "\"", 1);
	for (off = 0; off < n; off += len) {
		len = n - off < B64_CHUNK ? n - off : B64_CHUNK;
		(void)audit_b64_encode((const uint8_t *)str + off, len, out);
		(void)audit_sink_write(s, out, strlen(out));
	}
	return audit_sink_write(s, "\"", 1);
}

/* ,"NAME":"..." or, for bytes that are not UTF-8, ,"NAME_b64":"...". */
static void field_str(struct audit_sink *s, const char *name, const char *v)
{
	int valid;

	if (v == NULL)
		v = "";
	valid = audit_utf8_valid(v);
	(void)audit_sink_printf(s, ",\"%s%s\":", name, valid ? "" : "_b64");
	(void)(valid ? audit_json_string(s, v) : b64_string(s, v));
}

static void field_int(struct audit_sink *s, const char *name, int64_t v)
{
	(void)audit_sink_printf(s, ",\"%s\":%" PRId64, name, v);
}

static void field_hash(struct audit_sink *s, const char *name,
		       const uint8_t h[AUDIT_HASH_LEN])
{
	char hex[2 * AUDIT_HASH_LEN + 1];

	audit_hex(h, AUDIT_HASH_LEN, hex);
	(void)audit_sink_printf(s, ",\"%s\":\"%s\"", name, hex);
}

void audit_format_time(int64_t time_ns, char *buf, size_t len)
{
	int64_t sec = time_ns / 1000000000, ns = time_ns % 1000000000;
	time_t t;
	struct tm tm;
	char date[40];

	/* Floor division, so times before 1970 read correctly. */
	if (ns < 0) {
		ns += 1000000000;
		sec--;
	}
	t = (time_t)sec;
	if (gmtime_r(&t, &tm) == NULL ||
	    strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm) == 0)
		(void)snprintf(date, sizeof(date), "@%" PRId64, sec);
	(void)snprintf(buf, len, "%s.%09" PRId64 "Z", date, ns);
}

/*
** The line writers below ignore each write's result: a sink keeps its first
** error and refuses every later write, so the final write of a line returns
** whatever went wrong anywhere in it.
*/

int audit_jsonl_header(struct audit_sink *s, const char *verifier,
		       const char *host)
{
	(void)audit_sink_printf(s, "{\"type\":\"bundle\",\"version\":1");
	field_str(s, "key", verifier);
	field_str(s, "host", host);
	return audit_sink_write(s, "}\n", 2);
}

int audit_jsonl_start(struct audit_sink *s, const char *ws, int64_t seq,
		      const uint8_t head[AUDIT_HASH_LEN])
{
	(void)audit_sink_printf(s, "{\"type\":\"start\"");
	field_str(s, "ws", ws);
	field_int(s, "seq", seq);
	field_hash(s, "head", head);
	return audit_sink_write(s, "}\n", 2);
}

/* ws, seq, time, time_ns, host, layer, uid, gid, pid, comm. */
static void record_who(struct audit_sink *s, const struct audit_record *r)
{
	char when[48];

	audit_format_time(r->time_ns, when, sizeof(when));
	field_str(s, "ws", r->ws);
	field_int(s, "seq", r->seq);
	(void)audit_sink_printf(s, ",\"time\":\"%s\"", when);
	field_int(s, "time_ns", r->time_ns);
	field_str(s, "host", r->host);
	field_str(s, "layer", r->layer);
	field_int(s, "uid", r->uid);
	field_int(s, "gid", r->gid);
	field_int(s, "pid", r->pid);
	field_str(s, "comm", r->comm);
}

/* op, path, path2, ino, bytes, result, detail, fp, leaf, head. */
static void record_what(struct audit_sink *s, const struct audit_record *r)
{
	field_str(s, "op", r->op);
	field_str(s, "path", r->path);
	field_str(s, "path2", r->path2);
	field_int(s, "ino", r->ino);
	field_int(s, "bytes", r->bytes);
	field_str(s, "result", r->result);
	field_str(s, "detail", r->detail);
	field_str(s, "fp", r->fp);
	field_hash(s, "leaf", r->leaf);
	field_hash(s, "head", r->head);
}

int audit_jsonl_record(struct audit_sink *s, const struct audit_record *r)
{
	(void)audit_sink_printf(s, "{\"type\":\"record\"");
	record_who(s, r);
	record_what(s, r);
	return audit_sink_write(s, "}\n", 2);
}

int audit_jsonl_checkpoint(struct audit_sink *s, const char *ws, int64_t size,
			   int64_t time_ns, const char *note)
{
	(void)audit_sink_printf(s, "{\"type\":\"checkpoint\"");
	field_str(s, "ws", ws);
	field_int(s, "size", size);
	field_int(s, "time_ns", time_ns);
	field_str(s, "note", note);
	return audit_sink_write(s, "}\n", 2);
}
