/*
** Small helpers shared by the daemon and wsctl: name validation, size
** formatting and JSON string escaping.
*/
#ifndef WSFS_UTIL_H
#define WSFS_UTIL_H

#include <stdarg.h>
#include <stdio.h>
#include <stddef.h>

#include "grow.h"

/* A workspace name is 1..64 bytes of [A-Za-z0-9._-], not starting with '.'
** or '-': it becomes a file name under the state directory. */
int ws_name_valid(const char *name);

/* Writes S as a JSON string literal (with quotes) to OUT. Bytes that are not
** valid UTF-8 are written as \u00XX escapes of the byte value. */
void json_write_string(FILE *out, const char *s);

/* snprintf that reports truncation: 0 on success, -ENAMETOOLONG otherwise. */
int str_format(char *buf, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* snprintf into a caller's error buffer, which may be NULL; a truncated
** message is still better than none. */
void set_err(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void set_verr(char *err, size_t errlen, const char *fmt, va_list ap)
	__attribute__((format(printf, 3, 0)));


#endif
