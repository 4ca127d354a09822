/*
** One lock owner's byte-range locks, as the kernel keeps them.
**
** The kernel arbitrates wsfs's fcntl locks (each owner holds them on an open
** file description of its own, lock_table.h), but it cannot say which
** ranges a given description holds: F_OFD_GETLK looks only for conflicts
** with others. `wsctl locks` needs exactly that list, so each owner keeps a
** mirror, updated after every successful F_OFD_SETLK with the rules POSIX
** gives for one owner: a new lock replaces whatever the owner held in its
** range, an unlock cuts the range out (splitting a lock that spans it), and
** touching or overlapping locks of one type merge. Within one owner nothing
** conflicts, so the mirror never needs to ask the kernel.
**
** Ranges are inclusive; LOCKSET_EOF as an end means "to end of file,
** however far it grows" (l_len 0).
*/
#ifndef WSFS_LOCKSET_H
#define WSFS_LOCKSET_H

#include <stddef.h>
#include <stdint.h>

#define LOCKSET_EOF INT64_MAX

struct lock_range {
	int type;		/* F_RDLCK or F_WRLCK */
	int64_t start;
	int64_t end;		/* inclusive; LOCKSET_EOF: to end of file */
	int64_t since_ns;	/* CLOCK_REALTIME of the oldest lock merged in */
};

struct lockset {
	struct lock_range *v;	/* sorted by start, never overlapping */
	size_t n, cap;
};

/* Applies one F_SETLK of TYPE (F_RDLCK, F_WRLCK or F_UNLCK) over
** [START, END] made at NOW_NS. Returns 0, or -ENOMEM with S unchanged. */
int lockset_apply(struct lockset *s, int type, int64_t start, int64_t end,
		  int64_t now_ns);

/* The inclusive range an F_SETLK's SEEK_SET flock covers: l_len 0 runs to
** LOCKSET_EOF, a negative l_len covers the bytes before l_start. Returns 0,
** or -EINVAL for a range that starts before 0 or ends past LOCKSET_EOF
** (fcntl says EINVAL and EOVERFLOW; the kernel never sends either here). */
int lockset_range(int64_t l_start, int64_t l_len, int64_t *start,
		  int64_t *end);

/* Whether S holds a lock conflicting with TYPE over [START, END]. */
int lockset_conflicts(const struct lockset *s, int type, int64_t start,
		      int64_t end);

void lockset_free(struct lockset *s);

#endif
