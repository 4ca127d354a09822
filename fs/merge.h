/*
** Merged directories: what a cow directory lists, computed from the real
** directories behind it.  Self-contained (no FUSE, no inode table), so the
** rules can be tested on plain directories.
**
** A merged directory is a stack of real directories, top first: the upper
** directory (absent when the upper has no such directory yet), then the
** lower directories in the order the layers were given.  The rules:
**
**  - A name in a higher directory hides the same name in every directory
**    below it, whatever the types of the two; the higher one is listed.
**  - A whiteout, a character device 0:0, hides its name in every directory
**    below it and is never listed itself.
**  - An opaque directory, one with the xattr "trusted.wsfs.opaque" set to
**    exactly "y", ends the stack: the directories below it are not merged.
**  - Names starting with ".wsfs-" are the daemon's (work directories, temp
**    names) and are never listed, in any directory of the stack.
**
** Nothing here follows a symlink: entries are classified from d_type, and
** fstatat(AT_SYMLINK_NOFOLLOW) where d_type cannot tell.
*/
#ifndef WSFS_MERGE_H
#define WSFS_MERGE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define MERGE_OPAQUE_XATTR "trusted.wsfs.opaque"
#define MERGE_INTERNAL_PREFIX ".wsfs-"

struct merge_entry {
	char *name;
	unsigned char d_type;	/* DT_* from the directory that won */
	unsigned int layer;	/* index in the stack of the directory that won */
	uint64_t ino;		/* d_ino from that directory */
};

struct merge_list {
	struct merge_entry *v;
	size_t n;
	char *names;		/* where the entries' names live; private */
};

/* Lists the merged directory FDS[0..N) (each a directory descriptor, O_PATH
** or readable, or -1 for an absent layer), stopping after the first opaque
** one.  Each directory is read on a descriptor of its own, so the callers'
** positions neither matter nor move.  The result is sorted by name (strcmp),
** so the index of an entry is a stable readdir offset for as long as the
** listing is kept.  A DT_UNKNOWN from the filesystem is replaced by the type
** fstatat finds.  Returns 0 or -errno; on failure *OUT is empty. */
int merge_list_dirs(const int *fds, size_t n, struct merge_list *out);

/* Frees what merge_list_dirs made and empties L; L may be empty already. */
void merge_list_free(struct merge_list *l);

/* Whether NAME is one of the daemon's internal names, never listed. */
int merge_is_internal(const char *name);

/* Whether DIRFD's entry NAME is a whiteout (fstatat, never follows): 1, 0
** (also when NAME does not exist), or -errno. */
int merge_is_whiteout(int dirfd, const char *name);

/* Whether directory FD (O_PATH or readable) is opaque: 1, 0 (also on a
** filesystem without xattrs), or -errno. */
int merge_is_opaque(int fd);

/* How many directories of the stack FDS[0..N) are merged: the index of the
** first opaque one plus one, or N; or -errno when an xattr cannot be read
** (guessing either way would show hidden entries or hide real ones). */
ssize_t merge_depth(const int *fds, size_t n);

/* Whether the merged directory FDS[0..N) is empty, as rmdir needs it: no
** listable entry in any merged directory.  1, 0, or -errno. */
int merge_is_empty(const int *fds, size_t n);

#endif
