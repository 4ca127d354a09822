/*
** What the output formats share: a line buffer, the unambiguous escaping
** of names, and a record stream that writes any format to a sink.
**
** Each record is rendered into one line buffer and handed to the sink in a
** single write, so the formats never deal with partial output or with
** whether the sink compresses; the buffer is reused from record to record,
** which keeps a million-record export at one allocation.
**
** The escaping decodes UTF-8 strictly (RFC 3629: no overlong forms, no
** surrogates, nothing above U+10FFFF) because a lenient decoder would let
** two different byte strings print the same.  It escapes only what must
** be escaped, so ordinary names, accented ones included, read as they are.
*/
#include "format.h"
#include "internal.h"

#include <errno.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jsonl.h"

int audit_format_parse(const char *name, enum audit_format *out)
{
	static const char *const names[] = { "table", "jsonl", "csv", "ocsf" };
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (strcmp(name, names[i]) == 0) {
			*out = (enum audit_format)i;
			return 0;
		}
	}
	return -EINVAL;
}

/* ---- the line buffer ------------------------------------------------ */

void audit_buf_reset(struct audit_buf *b)
{
	b->len = 0;
	b->oom = 0;
	if (b->p != NULL)
		b->p[0] = '\0';
}

void audit_buf_free(struct audit_buf *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

static int buf_reserve(struct audit_buf *b, size_t more)
{
	size_t cap;
	char *p;

	if (b->oom)
		return -1;
	if (b->len + more + 1 <= b->cap)
		return 0;
	cap = b->cap ? b->cap : 256;
	while (cap < b->len + more + 1)
		cap *= 2;
	p = realloc(b->p, cap);
	if (p == NULL) {
		b->oom = 1;
		return -1;
	}
	b->p = p;
	b->cap = cap;
	return 0;
}

void audit_buf_add(struct audit_buf *b, const char *s, size_t n)
{
	if (buf_reserve(b, n) < 0)
		return;
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

void audit_buf_str(struct audit_buf *b, const char *s)
{
	audit_buf_add(b, s, strlen(s));
}

void audit_buf_printf(struct audit_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || buf_reserve(b, (size_t)n) < 0)
		return;
	va_start(ap, fmt);
	vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

void audit_buf_pad(struct audit_buf *b, size_t from, size_t width)
{
	size_t chars = 0, i;

	for (i = from; i < b->len; i++)
		chars += ((unsigned char)b->p[i] & 0xC0) != 0x80;
	for (; chars < width; chars++)
		audit_buf_add(b, " ", 1);
}

/* ---- escaping ------------------------------------------------------- */

/* The length of the well-formed UTF-8 sequence at S (2..4 bytes) with its
** code point in *CP, or 0 if the bytes there do not form one. */
static size_t utf8_decode(const unsigned char *s, unsigned *cp)
{
	unsigned char lo = 0x80, hi = 0xBF;
	size_t len, i;
	unsigned v;

	if (s[0] >= 0xC2 && s[0] <= 0xDF) {
		len = 2;
		v = s[0] & 0x1F;
	} else if (s[0] >= 0xE0 && s[0] <= 0xEF) {
		len = 3;
		v = s[0] & 0x0F;
		lo = s[0] == 0xE0 ? 0xA0 : 0x80;
		hi = s[0] == 0xED ? 0x9F : 0xBF;
	} else if (s[0] >= 0xF0 && s[0] <= 0xF4) {
		len = 4;
		v = s[0] & 0x07;
		lo = s[0] == 0xF0 ? 0x90 : 0x80;
		hi = s[0] == 0xF4 ? 0x8F : 0xBF;
	} else {
		return 0;
	}
	for (i = 1; i < len; i++) {
		if (s[i] < (i == 1 ? lo : 0x80) || s[i] > (i == 1 ? hi : 0xBF))
			return 0;
		v = (v << 6) | (s[i] & 0x3F);
	}
	*cp = v;
	return len;
}

/* Whether a non-ASCII code point may be shown as it is: not a C1 control,
** and not one of the invisible formatting characters (zero-width, line
** and paragraph separators, bidirectional controls, BOM) that can make a
** line look like another. */
static int cp_printable(unsigned cp, unsigned flags)
{
	if (cp <= 0x9F || cp == 0x061C || (cp >= 0x200B && cp <= 0x200F))
		return 0;
	if ((cp >= 0x2028 && cp <= 0x202E) || (cp >= 0x2060 && cp <= 0x2069))
		return 0;
	if (cp == 0xFEFF)
		return 0;
	return !(cp == 0x2192 && (flags & AUDIT_ESC_ARROW));
}

static void escape_bytes(struct audit_buf *b, const unsigned char *s,
			 size_t n)
{
	static const char hex[] = "0123456789abcdef";
	char esc[4] = { '\\', 'x', 0, 0 };
	size_t i;

	for (i = 0; i < n; i++) {
		esc[2] = hex[s[i] >> 4];
		esc[3] = hex[s[i] & 15];
		audit_buf_add(b, esc, 4);
	}
}

void audit_escape(struct audit_buf *b, const char *str, unsigned flags)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t run = 0, n;
	unsigned cp;

	/* Runs of characters shown as they are go in with one copy. */
	while (s[run] != '\0') {
		if (s[run] >= 0x20 && s[run] < 0x7F && s[run] != '\\') {
			run++;
			continue;
		}
		n = s[run] >= 0x80 ? utf8_decode(s + run, &cp) : 0;
		if (n > 0 && cp_printable(cp, flags)) {
			run += n;
			continue;
		}
		audit_buf_add(b, (const char *)s, run);
		if (s[run] == '\\')
			audit_buf_add(b, "\\\\", 2);
		else
			escape_bytes(b, s + run, n > 0 ? n : 1);
		s += run + (n > 0 ? n : 1);
		run = 0;
	}
	audit_buf_add(b, (const char *)s, run);
}

long audit_unescape(const char *in, size_t len, char *out, size_t cap)
{
	size_t i = 0, o = 0;
	int hi, lo;

	while (i < len) {
		if (o >= cap)
			return -1;
		if (in[i] != '\\') {
			out[o++] = in[i++];
			continue;
		}
		if (i + 1 < len && in[i + 1] == '\\') {
			out[o++] = '\\';
			i += 2;
			continue;
		}
		if (i + 3 >= len || in[i + 1] != 'x')
			return -1;
		hi = audit_hex_digit(in[i + 2]);
		lo = audit_hex_digit(in[i + 3]);
		if (hi < 0 || lo < 0)
			return -1;
		out[o++] = (char)(hi << 4 | lo);
		i += 4;
	}
	return (long)o;
}

void audit_local_time(int64_t time_ns, char *buf, size_t len)
{
	int64_t secs = time_ns / 1000000000, ns = time_ns % 1000000000;
	time_t t;
	struct tm tm;
	char day[32];

	if (ns < 0) {
		ns += 1000000000;
		secs--;
	}
	t = (time_t)secs;
	if (localtime_r(&t, &tm) == NULL ||
	    strftime(day, sizeof(day), "%Y-%m-%d %H:%M:%S", &tm) == 0) {
		snprintf(buf, len, "@%lld", (long long)time_ns);
		return;
	}
	snprintf(buf, len, "%s.%03d", day, (int)(ns / 1000000));
}

/* ---- user names ----------------------------------------------------- */

#define NAMES_MAX 256

struct audit_names {
	size_t n;
	struct {
		int64_t uid;
		char *name;	/* NULL: the uid has no name here */
	} e[NAMES_MAX];
};

static char *lookup_name(int64_t uid)
{
	struct passwd pw, *res = NULL;
	char buf[4096];

	if (uid < 0 || uid > UINT32_MAX ||
	    getpwuid_r((uid_t)uid, &pw, buf, sizeof(buf), &res) != 0 ||
	    res == NULL)
		return NULL;
	return strdup(pw.pw_name);
}

const char *audit_user_name(struct audit_names **names, int64_t uid)
{
	struct audit_names *c = *names;
	size_t i;

	if (c == NULL) {
		c = calloc(1, sizeof(*c));
		if (c == NULL)
			return NULL;
		*names = c;
	}
	for (i = 0; i < c->n; i++) {
		if (c->e[i].uid == uid)
			return c->e[i].name;
	}
	/* A full cache still answers, just without remembering. */
	if (c->n == NAMES_MAX) {
		free(c->e[NAMES_MAX - 1].name);
		c->n--;
	}
	c->e[c->n].uid = uid;
	c->e[c->n].name = lookup_name(uid);
	return c->e[c->n++].name;
}

void audit_names_free(struct audit_names *names)
{
	size_t i;

	if (names == NULL)
		return;
	for (i = 0; i < names->n; i++)
		free(names->e[i].name);
	free(names);
}

/* ---- the record stream ---------------------------------------------- */

static int flush_line(struct audit_out *o)
{
	if (o->line.oom)
		return -ENOMEM;
	return audit_sink_write(o->sink, o->line.p, o->line.len) < 0 ? -EIO :
	       0;
}

int audit_out_start(struct audit_out *o, struct audit_sink *sink,
		    enum audit_format fmt)
{
	memset(o, 0, sizeof(*o));
	o->sink = sink;
	o->fmt = fmt;
	if (fmt == AUDIT_FORMAT_TABLE)
		audit_table_header(&o->line);
	else if (fmt == AUDIT_FORMAT_CSV)
		audit_csv_header(&o->line);
	else
		return 0;
	return flush_line(o);
}

static int write_ocsf(struct audit_out *o, const struct audit_record *r)
{
	char *json = audit_ocsf_json(r, audit_user_name(&o->names, r->uid));
	int rc;

	if (json == NULL)
		return -ENOMEM;
	audit_buf_str(&o->line, json);
	audit_buf_add(&o->line, "\n", 1);
	free(json);
	rc = flush_line(o);
	return rc;
}

int audit_out_record(struct audit_out *o, const struct audit_record *r)
{
	int rc;

	audit_buf_reset(&o->line);
	switch (o->fmt) {
	case AUDIT_FORMAT_JSONL:
		rc = audit_jsonl_record(o->sink, r) < 0 ? -EIO : 0;
		break;
	case AUDIT_FORMAT_OCSF:
		rc = write_ocsf(o, r);
		break;
	case AUDIT_FORMAT_CSV:
		audit_csv_row(&o->line, &o->tmp, r);
		rc = flush_line(o);
		break;
	default:
		audit_table_row(&o->line, r);
		rc = flush_line(o);
		break;
	}
	if (rc == 0)
		o->records++;
	return rc;
}

void audit_out_end(struct audit_out *o)
{
	audit_buf_free(&o->line);
	audit_buf_free(&o->tmp);
	audit_names_free(o->names);
	o->names = NULL;
}
