/*
** Copy-on-write unions: the upper directory merged over base trees.
**
** A directory in a union carries the lower directory nodes it merges, top
** first; each is an ordinary node of its lower layer, held by a reference
** of this struct, so its descriptors come from the inode table's handle
** cache like any other.  Every node found through a union also remembers
** its parent and name, which copy-up needs to make its path in the upper.
** The design and what is still to come are in ARCHITECTURE.md, "Layers".
*/
#ifndef WSFS_UNION_H
#define WSFS_UNION_H

#include <stddef.h>
#include <fuse_lowlevel.h>

#include "inode.h"

struct ws_union {
	struct ws_inode *parent;	/* held; NULL at the union root */
	char *name;			/* in PARENT, when first found */
	size_t nlowers;
	struct ws_inode **lowers;	/* held lower directories, top first */
	int rd_fd;			/* union_read_fd's, or -1 */
};

/* Whether DIR merges lower directories. One that merges none (the agent's
** own, or opaque) holds no whiteouts and no copies, so its entries take
** the plain path, at no cost over a workspace without layers. */
static inline int union_merges(const struct ws_inode *dir)
{
	return dir->un && dir->un->nlowers > 0;
}

/* Makes ROOT (the upper's directory at the target) the root of a union
** over the cow layers' roots LOWERS[0..N), top first. */
int union_make_root(struct ws_inode *root, struct ws_layer **lowers, size_t n);

/* inode_lookup for a directory of a union: the upper entry first (a
** whiteout or an internal name is ENOENT), else the first lower that has
** NAME; a directory merges the lowers that have it as a directory too. */
int union_lookup(struct ws_inode *dir, const char *name,
		 struct fuse_entry_param *e);

/* The directories merged at DIR, top first, as descriptors borrowed with
** inode_fd (-1 where the upper has none); UNION_MAX at most. Returns how
** many, or -errno; give them back with union_dirs_put. */
#define UNION_MAX 64
int union_dirs(struct ws_inode *dir, int *fds);
void union_dirs_put(struct ws_inode *dir, const int *fds, int n);

/* Whether a lower directory merged at DIR has NAME: removing or renaming
** it away then needs a whiteout. */
int union_in_lowers(struct ws_inode *dir, const char *name);

/* After NAME left the upper directory DIR (open as PFD), or when it was
** never there: a whiteout hides what the lowers still have under it. */
int union_whiteout(struct ws_inode *dir, int pfd, const char *name);

/* Before making NAME in DIR: removes a whiteout there. *HID says one was
** there, so a directory made in its place must be opaque. */
int union_clear_whiteout(struct ws_inode *dir, int pfd, const char *name,
			 int *hid);
int union_make_opaque(int pfd, const char *name);

/* For rmdir of NAME in DIR: 1 if the merged directory is empty, 0 if not,
** or -errno; then union_clear_dir removes the whiteouts its upper
** directory still holds, so the rmdir can succeed. */
int union_dir_empty(struct ws_inode *dir, const char *name);
int union_clear_dir(int pfd, const char *name);

/* For rename of NAME out of DIR: 1 if it is a directory a lower has
** (EXDEV, as overlayfs without redirect_dir), 0 after copying a file up,
** or -errno. */
int union_is_lower_dir(struct ws_inode *dir, const char *name);

/* The number stat shows for entry NAME of DIR's upper directory, whose
** d_ino is INO: the origin's for a copy, INO otherwise (plain readdir). */
uint64_t union_entry_ino(struct ws_inode *dir, const char *name, uint64_t ino);

/* A read-only descriptor on N's current backing, shared by the handles
** opened before N was copied up; valid until the node goes. */
int union_read_fd(struct ws_inode *n);

/* Drops what U holds; the node it belonged to is being freed. */
void union_free(struct ws_union *u, struct ws_inode *owner);

/* Makes N exist in the upper: its directory chain first, then N itself,
** copied up atomically and charged. The node stays what the agent holds.
** Returns 0 (also when N is not from a lower), or -errno (-EDQUOT...). */
int union_copy_up(struct ws_inode *n);

#endif
