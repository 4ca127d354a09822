/*
** Where exports go: a file, plain or zstd-compressed, written in one
** streaming pass so an export of millions of records needs little memory.
** And where bundles come from: a line reader that recognises a zstd frame
** by its magic number and decompresses as it reads.
*/
#ifndef WSFS_AUDIT_SINK_H
#define WSFS_AUDIT_SINK_H

#include <stddef.h>
#include <stdio.h>

struct audit_sink;

/* Opens PATH ("-" for stdout) for writing; ZSTD compresses. */
int audit_sink_open(const char *path, int zstd, struct audit_sink **out,
		    char *err, size_t errlen);
int audit_sink_write(struct audit_sink *s, const void *buf, size_t len);
int audit_sink_printf(struct audit_sink *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Flushes and closes; 0 or the first write error (-errno). */
int audit_sink_close(struct audit_sink *s, char *err, size_t errlen);

struct audit_lines;

/* Opens PATH for reading lines, decompressing a zstd file transparently. */
int audit_lines_open(const char *path, struct audit_lines **out, char *err,
		     size_t errlen);
/* The next line without its newline, NUL-terminated, in a buffer owned by
** the reader (valid until the next call); its number from 1 in *LINENO.
** NULL at the end or on error (audit_lines_error then says which). */
const char *audit_lines_next(struct audit_lines *l, size_t *len,
			     size_t *lineno);
const char *audit_lines_error(const struct audit_lines *l);
void audit_lines_close(struct audit_lines *l);

#endif
