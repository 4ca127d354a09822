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
};

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
** it needs a whiteout, which is not built yet (EROFS until then). */
int union_in_lowers(struct ws_inode *dir, const char *name);

/* Drops what U holds; the node it belonged to is being freed. */
void union_free(struct ws_union *u);

#endif
