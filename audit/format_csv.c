/*
** The CSV format (RFC 4180): a header row naming every record field, then
** one row per record, lines ending in CRLF as the RFC says.
**
** Text fields are escaped as in the table (audit_escape), which leaves no
** CR or LF inside a field and keeps a byte string recoverable exactly
** (audit_unescape); the RFC's own quoting is then applied on top, only to
** fields that hold a comma or a double quote, so most rows are plain.  The
** two layers never interfere: the escaping never produces a quote or a
** comma, and the quoting never touches a backslash.  The chain fields
** (leaf, head) are hex so a row can be checked against the chain.
*/
#include "format.h"

#include <string.h>

#include "jsonl.h"

static const char *const columns[] = {
	"ws", "seq", "time", "time_ns", "host", "layer", "uid", "gid", "pid",
	"comm", "op", "path", "path2", "ino", "bytes", "result", "detail",
	"fp", "leaf", "head",
};

void audit_csv_field(struct audit_buf *line, const char *s, size_t n)
{
	const char *q;

	if (memchr(s, ',', n) == NULL && memchr(s, '"', n) == NULL &&
	    memchr(s, '\r', n) == NULL && memchr(s, '\n', n) == NULL) {
		audit_buf_add(line, s, n);
		return;
	}
	audit_buf_add(line, "\"", 1);
	while ((q = memchr(s, '"', n)) != NULL) {
		audit_buf_add(line, s, (size_t)(q - s) + 1);
		audit_buf_add(line, "\"", 1);
		n -= (size_t)(q - s) + 1;
		s = q + 1;
	}
	audit_buf_add(line, s, n);
	audit_buf_add(line, "\"", 1);
}

void audit_csv_header(struct audit_buf *line)
{
	size_t i;

	for (i = 0; i < sizeof(columns) / sizeof(columns[0]); i++) {
		if (i > 0)
			audit_buf_add(line, ",", 1);
		audit_buf_str(line, columns[i]);
	}
	audit_buf_add(line, "\r\n", 2);
}

/* An escaped text field, quoted as needed, and its separator. */
static void text(struct audit_buf *line, struct audit_buf *tmp,
		 const char *s, const char *sep)
{
	audit_buf_reset(tmp);
	audit_escape(tmp, s, 0);
	if (tmp->oom)
		line->oom = 1;
	audit_csv_field(line, tmp->p ? tmp->p : "", tmp->len);
	audit_buf_str(line, sep);
}

static void number(struct audit_buf *line, int64_t v)
{
	audit_buf_printf(line, "%lld,", (long long)v);
}

static void hash(struct audit_buf *line, const uint8_t h[AUDIT_HASH_LEN],
		 const char *sep)
{
	char hex[2 * AUDIT_HASH_LEN + 1];

	audit_hex(h, AUDIT_HASH_LEN, hex);
	audit_buf_str(line, hex);
	audit_buf_str(line, sep);
}

void audit_csv_row(struct audit_buf *line, struct audit_buf *tmp,
		   const struct audit_record *r)
{
	char when[40];

	audit_format_time(r->time_ns, when, sizeof(when));
	text(line, tmp, r->ws, ",");
	number(line, r->seq);
	text(line, tmp, when, ",");
	number(line, r->time_ns);
	text(line, tmp, r->host, ",");
	text(line, tmp, r->layer, ",");
	number(line, r->uid);
	number(line, r->gid);
	number(line, r->pid);
	text(line, tmp, r->comm, ",");
	text(line, tmp, r->op, ",");
	text(line, tmp, r->path, ",");
	text(line, tmp, r->path2, ",");
	number(line, r->ino);
	number(line, r->bytes);
	text(line, tmp, r->result, ",");
	text(line, tmp, r->detail, ",");
	text(line, tmp, r->fp, ",");
	hash(line, r->leaf, ",");
	hash(line, r->head, "\r\n");
}
