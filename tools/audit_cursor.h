/*
** The cursor file of `wsctl audit search --checkpoint FILE`: per chain,
** the seq of the last record a pull has seen, so the next pull starts
** after it (like ausearch --checkpoint).
**
** One line per chain, "<ws in hex> <seq>", with "-" for the host chain,
** whose name is empty.  Hex keeps any name on one line and the file easy to
** read back; seqs rather than times make the cursor exact, since a chain's
** seqs are gap-free and never reused while times can tie.
*/
#ifndef WSFS_WSCTL_AUDIT_CURSOR_H
#define WSFS_WSCTL_AUDIT_CURSOR_H

#include <stddef.h>
#include <stdint.h>

struct audit_cursor {
	size_t n, cap;
	struct audit_cursor_entry {
		char *ws;
		int64_t seq;
	} *e;
};

/* Reads FILE into C (empty if FILE does not exist). 0, -EINVAL for a
** malformed file or another negative errno, with the reason in ERR. */
int audit_cursor_load(const char *file, struct audit_cursor *c, char *err,
		      size_t errlen);

/* The seq stored for WS, 0 if none. */
int64_t audit_cursor_get(const struct audit_cursor *c, const char *ws);

/* 0 or -ENOMEM. */
int audit_cursor_set(struct audit_cursor *c, const char *ws, int64_t seq);

/* Replaces FILE atomically (a temporary file beside it, fsync, rename), so
** a crash leaves the old cursor or the new one, never a torn one. */
int audit_cursor_save(const char *file, const struct audit_cursor *c,
		      char *err, size_t errlen);

void audit_cursor_free(struct audit_cursor *c);

#endif
