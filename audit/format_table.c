/*
** The table format: one aligned line per record, for a person at a
** terminal or a pager.
**
** It streams: column widths are fixed in advance (the widest common value
** of each column) rather than measured over the result, so the first line
** of a ten-million-record answer appears at once and memory stays flat.  A
** longer value pushes that one line's later columns right and still leaves
** a blank before the next column, so the line stays readable.  The path
** comes last, unpadded, since its length varies most.
**
** Every text cell goes through audit_escape, so a name with a newline, an
** escape sequence or invalid UTF-8 cannot forge a row or drive the
** terminal, and two different names never look the same; the " → "
** between a rename's two paths is escaped inside the paths themselves, so
** it can only be the separator.  Times are local, in the form --since
** accepts, so a time can be copied from a row into the next query.
*/
#include "format.h"

#define W_TIME 23
#define W_WS 12
#define W_SEQ 8
#define W_UID 6
#define W_PID 7
#define W_COMM 15
#define W_OP 12
#define W_RESULT 6

/* A left-aligned cell of at least WIDTH characters and a blank. */
static void text_cell(struct audit_buf *line, const char *s, size_t width,
		      unsigned flags)
{
	size_t from = line->len;

	audit_escape(line, s, flags);
	audit_buf_pad(line, from, width);
	audit_buf_add(line, " ", 1);
}

static void header_cell(struct audit_buf *line, const char *title,
			size_t width, int right)
{
	if (right)
		audit_buf_printf(line, "%*s ", (int)width, title);
	else
		audit_buf_printf(line, "%-*s ", (int)width, title);
}

void audit_table_header(struct audit_buf *line)
{
	header_cell(line, "TIME", W_TIME, 0);
	header_cell(line, "WS", W_WS, 0);
	header_cell(line, "SEQ", W_SEQ, 1);
	header_cell(line, "UID", W_UID, 1);
	header_cell(line, "PID", W_PID, 1);
	header_cell(line, "COMM", W_COMM, 0);
	header_cell(line, "OP", W_OP, 0);
	header_cell(line, "RESULT", W_RESULT, 0);
	audit_buf_str(line, "PATH\n");
}

void audit_table_row(struct audit_buf *line, const struct audit_record *r)
{
	char when[40];

	audit_local_time(r->time_ns, when, sizeof(when));
	text_cell(line, when, W_TIME, 0);
	/* The host chain has no name; "(host)" cannot be a workspace's. */
	text_cell(line, r->ws[0] ? r->ws : "(host)", W_WS, 0);
	audit_buf_printf(line, "%*lld %*lld %*lld ", W_SEQ, (long long)r->seq,
			 W_UID, (long long)r->uid, W_PID, (long long)r->pid);
	text_cell(line, r->comm, W_COMM, 0);
	text_cell(line, r->op, W_OP, 0);
	text_cell(line, r->result, W_RESULT, 0);
	audit_escape(line, r->path, AUDIT_ESC_ARROW);
	if (r->path2[0] != '\0') {
		audit_buf_str(line, " \xe2\x86\x92 ");
		audit_escape(line, r->path2, AUDIT_ESC_ARROW);
	}
	audit_buf_add(line, "\n", 1);
}
