/*
** Helpers shared by the daemon and wsctl.
**
** Workspace names end up as file names under <state>/run and inside error
** messages, so the accepted alphabet is deliberately tiny: no separators, no
** leading dot (hidden files, "." and "..") and no leading dash (option
** confusion in shell scripts that pass the name on).
**
** JSON output must stay valid whatever bytes a path holds: Linux paths are
** byte strings, not UTF-8.  Valid UTF-8 sequences pass through untouched so
** ordinary names stay readable; every byte that is not part of a well-formed
** sequence (stray continuation bytes, truncated or overlong sequences,
** surrogates, code points above U+10FFFF) is written as a \u00XX escape of the
** raw byte, which keeps the output parseable and the original byte
** recoverable by a consumer that knows the convention.
*/
#include "util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>

#include "registry.h"

static int name_char_ok(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
}

int ws_name_valid(const char *name)
{
	size_t i;

	if (name == NULL || name[0] == '\0' || name[0] == '.' || name[0] == '-')
		return 0;
	for (i = 0; name[i] != '\0'; i++) {
		if (i >= WS_NAME_MAX || !name_char_ok((unsigned char)name[i]))
			return 0;
	}
	return 1;
}

/*
** Length of the well-formed UTF-8 sequence starting at S (1..4), or 0 if the
** bytes there do not form one.  Follows the table in RFC 3629 section 4, which
** is what rules out overlong forms and surrogates by restricting the second
** byte's range.
*/
static size_t utf8_seq_len(const unsigned char *s)
{
	unsigned char lo = 0x80, hi = 0xBF;
	size_t len, i;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xC2 && s[0] <= 0xDF) {
		len = 2;
	} else if (s[0] >= 0xE0 && s[0] <= 0xEF) {
		len = 3;
		if (s[0] == 0xE0)
			lo = 0xA0;
		else if (s[0] == 0xED)
			hi = 0x9F;
	} else if (s[0] >= 0xF0 && s[0] <= 0xF4) {
		len = 4;
		if (s[0] == 0xF0)
			lo = 0x90;
		else if (s[0] == 0xF4)
			hi = 0x8F;
	} else {
		return 0;
	}
	if (s[1] < lo || s[1] > hi)
		return 0;
	/* The NUL terminator fails this test, so we never read past it. */
	for (i = 2; i < len; i++) {
		if (s[i] < 0x80 || s[i] > 0xBF)
			return 0;
	}
	return len;
}

static void json_write_escape(FILE *out, unsigned char c)
{
	switch (c) {
	case '"':
		fputs("\\\"", out);
		break;
	case '\\':
		fputs("\\\\", out);
		break;
	case '\b':
		fputs("\\b", out);
		break;
	case '\f':
		fputs("\\f", out);
		break;
	case '\n':
		fputs("\\n", out);
		break;
	case '\r':
		fputs("\\r", out);
		break;
	case '\t':
		fputs("\\t", out);
		break;
	default:
		fprintf(out, "\\u%04x", (unsigned int)c);
		break;
	}
}

static int json_needs_escape(unsigned char c)
{
	/* DEL is legal JSON, but escaping it keeps terminals sane. */
	return c < 0x20 || c == '"' || c == '\\' || c == 0x7F;
}

void json_write_string(FILE *out, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t len;

	fputc('"', out);
	while (*p != '\0') {
		if (json_needs_escape(*p)) {
			json_write_escape(out, *p);
			p++;
			continue;
		}
		len = utf8_seq_len(p);
		if (len == 0) {
			fprintf(out, "\\u%04x", (unsigned int)*p);
			p++;
			continue;
		}
		fwrite(p, 1, len, out);
		p += len;
	}
	fputc('"', out);
}

int str_format(char *buf, size_t len, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, len, fmt, ap);
	va_end(ap);
	/* An encoding error leaves BUF unusable just like truncation does. */
	if (n < 0 || (size_t)n >= len) {
		if (n < 0 && len > 0)
			buf[0] = '\0';
		return -ENAMETOOLONG;
	}
	return 0;
}

void set_verr(char *err, size_t errlen, const char *fmt, va_list ap)
{
	if (err == NULL || errlen == 0)
		return;
	(void)vsnprintf(err, errlen, fmt, ap);
}

void set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	set_verr(err, errlen, fmt, ap);
	va_end(ap);
}
