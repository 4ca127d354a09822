/*
** Copy-on-write unions; the design is in union.h and ARCHITECTURE.md.
**
** What is here is the merged view: lookup through the stack and the
** directories readdir merges.  Copy-up, whiteouts made by unlink and
** rename, and opaque directories made by mkdir are the next step; until
** then every node of a lower layer is read-only (its layer is not
** writable), so a change to one fails with EROFS rather than reaching a
** source.
*/
#include "union.h"

#include "merge.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

void union_free(struct ws_union *u)
{
	for (size_t i = 0; i < u->nlowers; i++)
		inode_forget(u->lowers[i], 1);
	if (u->parent)
		inode_forget(u->parent, 1);
	free(u->lowers);
	free(u->name);
	free(u);
}

static struct ws_union *union_new(size_t cap)
{
	struct ws_union *u = calloc(1, sizeof(*u));

	if (!u)
		return NULL;
	if (cap && !(u->lowers = calloc(cap, sizeof(*u->lowers)))) {
		free(u);
		return NULL;
	}
	return u;
}

int union_make_root(struct ws_inode *root, struct ws_layer **lowers, size_t n)
{
	struct ws_union *u = union_new(n);

	if (!u)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		u->lowers[u->nlowers++] = lowers[i]->root;
	if (inode_attach_union(root, u)) {
		union_free(u);
		return -EEXIST;
	}
	return 0;
}

static int is_upper(const struct ws_inode *n)
{
	return n->layer == itab_upper();
}

/* Looks NAME up in directory node D of its own layer alone. */
static int lookup_one(struct ws_inode *d, const char *name,
		      struct fuse_entry_param *e)
{
	int fd = inode_fd(d), r;

	if (fd < 0)
		return fd;
	r = inode_lookup_in(d->layer, fd, name, e);
	inode_fd_put(d);
	return r;
}

static int whiteout_in(struct ws_inode *d, const char *name)
{
	int fd = inode_fd(d), r;

	if (fd < 0)
		return fd;
	r = merge_is_whiteout(fd, name);
	inode_fd_put(d);
	return r;
}

static int opaque(struct ws_inode *d)
{
	int fd = inode_fd(d), r;

	if (fd < 0)
		return fd;
	r = merge_is_opaque(fd);
	inode_fd_put(d);
	return r;
}

/* Adds to U the lower directories of DIR from index FROM on that have NAME
** as a directory, stopping at the first that has it as anything else. */
static int merge_below(struct ws_union *u, struct ws_inode *dir, size_t from,
		       const char *name)
{
	struct fuse_entry_param e;
	int r;

	for (size_t i = from; i < dir->un->nlowers; i++) {
		r = lookup_one(dir->un->lowers[i], name, &e);
		if (r == -ENOENT)
			continue;
		if (r < 0)
			return r;
		if (!S_ISDIR(e.attr.st_mode)) {
			inode_forget(inode_of(e.ino), 1);
			break;
		}
		u->lowers[u->nlowers++] = inode_of(e.ino);
	}
	return 0;
}

/* Gives node N, found as NAME in DIR (in the upper when FROM is -1, else in
** lower FROM), its place in the union. */
static int place(struct ws_inode *dir, const char *name, struct ws_inode *n,
		 long from)
{
	struct ws_union *u;
	int r = 0;

	/* A graft's root hides whatever the lowers have at its target. */
	if (n->un || (!is_upper(n) && !n->layer->cow))
		return 0;
	u = union_new(n->type == S_IFDIR ? dir->un->nlowers + 1 : 0);
	if (!u || !(u->name = strdup(name))) {
		if (u)
			union_free(u);
		return -ENOMEM;
	}
	inode_hold(dir);
	u->parent = dir;
	if (n->type == S_IFDIR) {
		if (from >= 0) {
			inode_hold(n);
			u->lowers[u->nlowers++] = n;
			r = merge_below(u, dir, (size_t)from + 1, name);
		} else {
			r = opaque(n);
			if (r == 0)
				r = merge_below(u, dir, 0, name);
		}
	}
	if (r < 0 || inode_attach_union(n, u))
		union_free(u);
	return r < 0 ? r : 0;
}

/* Takes back the lookup reference E holds when the lookup as a whole fails
** after it. */
static int failed(struct fuse_entry_param *e, int err)
{
	inode_forget(inode_of(e->ino), 1);
	return err;
}

int union_lookup(struct ws_inode *dir, const char *name,
		 struct fuse_entry_param *e)
{
	int r;

	if (merge_is_internal(name))
		return -ENOENT;
	if (is_upper(dir)) {
		r = whiteout_in(dir, name);
		if (r != 0)
			return r < 0 ? r : -ENOENT;
		r = lookup_one(dir, name, e);
		if (r == 0) {
			r = place(dir, name, inode_of(e->ino), -1);
			return r < 0 ? failed(e, r) : 0;
		}
		if (r != -ENOENT)
			return r;
	}
	for (size_t i = 0; i < dir->un->nlowers; i++) {
		r = lookup_one(dir->un->lowers[i], name, e);
		if (r == -ENOENT)
			continue;
		if (r < 0)
			return r;
		r = place(dir, name, inode_of(e->ino), (long)i);
		return r < 0 ? failed(e, r) : 0;
	}
	return -ENOENT;
}

/* The stack's I-th directory: the upper one (NULL when DIR came from a
** lower and has none yet), then the lowers. */
static struct ws_inode *stack_dir(struct ws_inode *dir, size_t i)
{
	if (i == 0)
		return is_upper(dir) ? dir : NULL;
	return dir->un->lowers[i - 1];
}

int union_in_lowers(struct ws_inode *dir, const char *name)
{
	struct fuse_entry_param e;
	int r;

	if (!dir->un || dir->type != S_IFDIR)
		return 0;
	for (size_t i = 0; i < dir->un->nlowers; i++) {
		r = lookup_one(dir->un->lowers[i], name, &e);
		if (r == 0) {
			inode_forget(inode_of(e.ino), 1);
			return 1;
		}
	}
	return 0;
}

int union_dirs(struct ws_inode *dir, int *fds)
{
	size_t depth = dir->un->nlowers + 1;
	int n;

	if (depth > UNION_MAX)
		depth = UNION_MAX;
	for (n = 0; (size_t)n < depth; n++) {
		struct ws_inode *d = stack_dir(dir, (size_t)n);

		fds[n] = d ? inode_fd(d) : -1;
		if (d && fds[n] < 0) {
			int err = fds[n];

			union_dirs_put(dir, fds, n);
			return err;
		}
	}
	return n;
}

void union_dirs_put(struct ws_inode *dir, const int *fds, int n)
{
	for (int i = 0; i < n; i++) {
		struct ws_inode *d = stack_dir(dir, (size_t)i);

		if (d && fds[i] >= 0)
			inode_fd_put(d);
	}
}
