/*
** Helpers private to libwsaudit.  The library links nothing of libwsstate
** (the daemon's writer thread and wsctl both pull it in on their own), so
** the few small utilities it needs live here rather than in fs/util.c.
*/
#ifndef WSFS_AUDIT_INTERNAL_H
#define WSFS_AUDIT_INTERNAL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* snprintf into a caller's error buffer, which may be NULL. */
void audit_set_err(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Standard base64 with padding.  OUT needs audit_b64_len(N) + 1 bytes;
** returns the length written (without the NUL). */
#define audit_b64_len(n) ((((n) + 2) / 3) * 4)
size_t audit_b64_encode(const uint8_t *in, size_t n, char *out);

/* Strict decoding of LEN characters (padding required, nothing else
** allowed) into OUT, which holds CAP bytes.  Returns the decoded length or
** -1 if IN is not base64 or does not fit. */
long audit_b64_decode(const char *in, size_t len, uint8_t *out, size_t cap);

/* The value of hex digit C (either case), or -1. */
int audit_hex_digit(char c);
/* Hex of exactly 2N characters into N bytes; 0 or -1. */
int audit_unhex(const char *in, size_t n, uint8_t *out);

/* SHA-256 with the thread's reusable context; 0 or -ENOMEM / -EIO. */
int audit_sha256(const void *data, size_t len, uint8_t out[32]);

#endif
