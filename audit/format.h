/*
** The output formats of `wsctl audit search` and `export`: an aligned
** table for people, and JSON Lines, CSV and OCSF for machines.
**
** File names may hold any byte but NUL.  The table and CSV show each text
** field escaped so that distinct byte strings always look different and
** the terminal or spreadsheet sees only printable text: a backslash is
** written "\\", and every byte that is not part of a printable UTF-8
** character is written "\xNN" (controls, DEL, C1 controls, bytes that do
** not form UTF-8, and the Unicode line separators and bidirectional
** overrides that could make a line read as something else).
** audit_unescape() gives the exact bytes back.  JSON Lines and OCSF carry
** the exact bytes (base64 where they are not UTF-8), see jsonl.h.
*/
#ifndef WSFS_AUDIT_FORMAT_H
#define WSFS_AUDIT_FORMAT_H

#include <stddef.h>
#include <stdint.h>

#include "record.h"
#include "sink.h"

enum audit_format {
	AUDIT_FORMAT_TABLE,
	AUDIT_FORMAT_JSONL,
	AUDIT_FORMAT_CSV,
	AUDIT_FORMAT_OCSF,
};

/* "table", "jsonl", "csv" or "ocsf"; 0 or -EINVAL. */
int audit_format_parse(const char *name, enum audit_format *out);

/* ---- a growable line buffer ------------------------------------------ */

struct audit_buf {
	char *p;		/* NUL-terminated when not empty */
	size_t len, cap;
	int oom;		/* an append failed: the content is cut short */
};

void audit_buf_reset(struct audit_buf *b);
void audit_buf_free(struct audit_buf *b);
void audit_buf_add(struct audit_buf *b, const char *s, size_t n);
void audit_buf_str(struct audit_buf *b, const char *s);
void audit_buf_printf(struct audit_buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Pads with spaces to WIDTH characters from byte FROM of the buffer
** (characters: UTF-8 sequences count once). */
void audit_buf_pad(struct audit_buf *b, size_t from, size_t width);

/* ---- escaping ------------------------------------------------------- */

enum {
	/* Escape U+2192 too, the table's "path → path2" separator. */
	AUDIT_ESC_ARROW = 1 << 0,
};

/* Appends S to B escaped as described above. */
void audit_escape(struct audit_buf *b, const char *s, unsigned flags);

/* Undoes audit_escape: writes the bytes of IN (LEN bytes) to OUT, which
** holds CAP bytes, and returns their number, or -1 if IN is not something
** audit_escape writes (a lone backslash, bad hex) or does not fit. */
long audit_unescape(const char *in, size_t len, char *out, size_t cap);

/* The local time of TIME_NS as "2026-11-27 17:02:30.123", the table's
** time column and a form --since and --until accept. BUF: 24+ bytes. */
void audit_local_time(int64_t time_ns, char *buf, size_t len);

/* ---- the formats ---------------------------------------------------- */

/* Table (format_table.c): the header line, and one record's line. */
void audit_table_header(struct audit_buf *line);
void audit_table_row(struct audit_buf *line, const struct audit_record *r);

/* CSV (format_csv.c), RFC 4180 with CRLF line ends: the header and one
** record. FIELD quotes one value when it needs quoting. */
void audit_csv_header(struct audit_buf *line);
void audit_csv_row(struct audit_buf *line, struct audit_buf *tmp,
		   const struct audit_record *r);
void audit_csv_field(struct audit_buf *line, const char *s, size_t n);

/* OCSF 1.1 File System Activity (format_ocsf.c). */
struct audit_ocsf_activity {
	int id;			/* activity_id */
	const char *name;	/* activity_name */
};
/* The activity a record maps to (by its op, and for release whether
** anything was written through the handle). */
struct audit_ocsf_activity audit_ocsf_activity(const struct audit_record *r);
/* The OCSF file type_id of the object of R's op: 1 regular file, 2
** folder, 7 symbolic link, 0 unknown. */
int audit_ocsf_file_type(const char *op);
/* One event as a JSON object on one line (no newline), malloc'd; NULL on
** ENOMEM. USER: the uid's name on this host, or NULL. */
char *audit_ocsf_json(const struct audit_record *r, const char *user);

/* Sets KEY of the jansson object OBJ to the exact bytes of S: as a string
** when S is UTF-8, else as KEY_b64, its base64 (the jsonl.h convention).
** 0, or -1 when out of memory. */
struct json_t;
int audit_json_put_exact(struct json_t *obj, const char *key, const char *s);

/* ---- a record stream in any format ---------------------------------- */

struct audit_names;

struct audit_out {
	struct audit_sink *sink;
	enum audit_format fmt;
	struct audit_buf line, tmp;
	struct audit_names *names;	/* uid -> name, for OCSF */
	int64_t records;		/* written so far */
};

/* Starts a stream on SINK (which the caller keeps and closes): the table
** and CSV write their header now. 0 or a negative errno. */
int audit_out_start(struct audit_out *o, struct audit_sink *sink,
		    enum audit_format fmt);
int audit_out_record(struct audit_out *o, const struct audit_record *r);
/* Frees the stream's buffers; the sink stays open. */
void audit_out_end(struct audit_out *o);

/* The user name of UID on this host (cached in NAMES; created on first
** use), or NULL if it has none. */
const char *audit_user_name(struct audit_names **names, int64_t uid);
void audit_names_free(struct audit_names *names);

#endif
