/*
** Copy-on-write unions; the design is in union.h and ARCHITECTURE.md.
**
** Lookup walks the stack; copy-up moves a node from its lower entry to a
** copy in the upper (fs/copyup.c makes the copy); whiteouts and opaque
** marks record in the upper what the agent removed.  A node of a lower
** layer is never writable itself (its layer is not), so a handler that
** forgot to copy up first fails with EROFS instead of reaching a source.
*/
#include "union.h"
#include "audit_event.h"

#include "copyup.h"
#include "ledger.h"
#include "merge.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

/* What an upper copy records of where it came from, so a remount shows
** the number the agent saw before. */
struct origin {
	uint32_t layer;
	uint32_t zero;
	uint64_t ino;
};

/* Copy-ups are rare and each is one file: one at a time keeps two
** requests from copying the same node, or a child before its parent. */
static pthread_mutex_t copy_lock = PTHREAD_MUTEX_INITIALIZER;

/* A directory found in a lower is its own first lower: that entry is not
** a reference (it would keep the node alive forever). */
void union_free(struct ws_union *u, struct ws_inode *owner)
{
	for (size_t i = 0; i < u->nlowers; i++)
		if (u->lowers[i] != owner)
			inode_forget(u->lowers[i], 1);
	if (u->parent)
		inode_forget(u->parent, 1);
	if (u->rd_fd >= 0)
		close(u->rd_fd);
	free(u->lowers);
	free(u->name);
	free(u);
}

static struct ws_union *union_new(size_t cap)
{
	struct ws_union *u = calloc(1, sizeof(*u));

	if (!u)
		return NULL;
	u->rd_fd = -1;
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
		union_free(u, root);
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

static void read_origin(struct ws_inode *n)
{
	struct origin o;
	char path[32];
	int fd = inode_fd(n);
	ssize_t len;

	if (fd < 0)
		return;
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	len = getxattr(path, COPYUP_ORIGIN_XATTR, &o, sizeof(o));
	inode_fd_put(n);
	if (len == (ssize_t)sizeof(o) && o.zero == 0)
		n->shown_ino = (ino_t)o.ino;
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
	if (from < 0) {
		read_origin(n);
		if (n->type != S_IFDIR)
			return 0;	/* an upper file needs nothing else */
	}
	u = union_new(n->type == S_IFDIR ? dir->un->nlowers + 1 : 0);
	if (!u || !(u->name = strdup(name))) {
		if (u)
			union_free(u, n);
		return -ENOMEM;
	}
	inode_hold(dir);
	u->parent = dir;
	if (n->type == S_IFDIR) {
		if (from >= 0) {
			u->lowers[u->nlowers++] = n;
			r = merge_below(u, dir, (size_t)from + 1, name);
		} else {
			r = opaque(n);
			if (r == 0)
				r = merge_below(u, dir, 0, name);
		}
	}
	/* An upper directory that merges nothing takes the plain path. */
	if (r < 0 || (from < 0 && u->nlowers == 0) || inode_attach_union(n, u))
		union_free(u, n);
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
			/* place() may have learned the copy's origin. */
			e->attr.st_ino = inode_of(e->ino)->shown_ino;
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

static int reserve(uint64_t bytes, uint64_t inodes, void *arg)
{
	(void)arg;
	return ledger_charge(bytes, inodes);
}

static void release(uint64_t bytes, uint64_t inodes, void *arg)
{
	(void)arg;
	ledger_release(bytes, inodes);
}

/* A directory found in a lower was its own first lower; now that the node
** stands for the upper copy, that lower needs a node of its own. */
static void keep_own_lower(struct ws_inode *n, struct ws_layer *low, int sfd)
{
	struct fuse_entry_param e;

	if (n->type != S_IFDIR || !n->un->nlowers || n->un->lowers[0] != n)
		return;
	if (inode_lookup_in(low, sfd, "", &e) == 0) {
		n->un->lowers[0] = inode_of(e.ino);
		return;
	}
	/* Without it the directory merges the lowers below only. */
	memmove(n->un->lowers, n->un->lowers + 1,
		(n->un->nlowers - 1) * sizeof(*n->un->lowers));
	n->un->nlowers--;
}

static int copy_locked(struct ws_inode *n)
{
	struct ws_inode *parent = n->un->parent;
	struct ws_layer *low = n->layer;
	struct copyup_req req;
	struct origin o;
	int pfd, sfd, r;

	pfd = inode_fd(parent);
	if (pfd < 0)
		return pfd;
	sfd = inode_fd(n);
	if (sfd < 0) {
		inode_fd_put(parent);
		return sfd;
	}
	memset(&o, 0, sizeof(o));
	o.layer = low->index;
	o.ino = n->shown_ino;
	memset(&req, 0, sizeof(req));
	req.src_fd = sfd;
	req.dst_dirfd = pfd;
	req.name = n->un->name;
	req.origin = &o;
	req.origin_len = sizeof(o);
	req.fsync = 1;
	req.replace = 1;
	req.reserve = reserve;
	req.release = release;
	r = copyup(&req);
	if (r == 0)
		r = inode_move_to_upper(n, pfd, n->un->name);
	if (r == 0)
		keep_own_lower(n, low, sfd);
	inode_fd_put(n);
	inode_fd_put(parent);
	return r;
}

int union_copy_up(struct ws_inode *n)
{
	int r, copied;

	if (!n->un || is_upper(n))
		return 0;
	if (!n->un->parent)
		return -EROFS;
	r = union_copy_up(n->un->parent);
	if (r)
		return r;
	pthread_mutex_lock(&copy_lock);
	copied = !is_upper(n);
	r = copied ? copy_locked(n) : 0;
	pthread_mutex_unlock(&copy_lock);
	if (copied)
		audit_copy_up(n, r);
	return r;
}

int union_whiteout(struct ws_inode *dir, int pfd, const char *name)
{
	int r;

	if (!union_in_lowers(dir, name))
		return 0;
	r = mknodat(pfd, name, S_IFCHR | 0000, makedev(0, 0)) < 0 ? -errno : 0;
	audit_whiteout(dir, name, r);
	return r;
}

int union_clear_whiteout(struct ws_inode *dir, int pfd, const char *name,
			 int *hid)
{
	int r;

	*hid = 0;
	if (!union_merges(dir))
		return 0;
	r = merge_is_whiteout(pfd, name);
	if (r <= 0)
		return r;
	if (unlinkat(pfd, name, 0) < 0)
		return -errno;
	*hid = 1;
	return 0;
}

int union_make_opaque(int pfd, const char *name)
{
	char path[64 + 256];

	snprintf(path, sizeof(path), "/proc/self/fd/%d/%s", pfd, name);
	return lsetxattr(path, MERGE_OPAQUE_XATTR, "y", 1, 0) < 0 ? -errno : 0;
}

int union_dir_empty(struct ws_inode *dir, const char *name)
{
	struct fuse_entry_param e;
	struct ws_inode *n;
	int fds[UNION_MAX], cnt, r;

	r = union_lookup(dir, name, &e);
	if (r < 0)
		return r;
	n = inode_of(e.ino);
	if (n->type != S_IFDIR) {
		r = -ENOTDIR;
	} else if (!union_merges(n)) {
		r = 1;		/* no lowers: rmdir itself decides */
	} else {
		cnt = union_dirs(n, fds);
		r = cnt < 0 ? cnt : merge_is_empty(fds, (size_t)cnt);
		if (cnt >= 0)
			union_dirs_put(n, fds, cnt);
	}
	inode_forget(n, 1);
	return r;
}

int union_clear_dir(int pfd, const char *name)
{
	int fd = openat(pfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
			O_CLOEXEC);
	struct dirent *de;
	DIR *dp;
	int r = 0;

	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	dp = fdopendir(fd);
	if (!dp) {
		r = -errno;
		close(fd);
		return r;
	}
	while ((de = readdir(dp)) != NULL) {
		if (merge_is_whiteout(fd, de->d_name) == 1 &&
		    unlinkat(fd, de->d_name, 0) < 0) {
			r = -errno;
			break;
		}
	}
	closedir(dp);
	return r;
}

int union_is_lower_dir(struct ws_inode *dir, const char *name)
{
	struct fuse_entry_param e;
	struct ws_inode *n;
	int r;

	if (!dir->un)
		return 0;
	r = union_lookup(dir, name, &e);
	if (r < 0)
		return r == -ENOENT ? 0 : r;
	n = inode_of(e.ino);
	r = n->type == S_IFDIR && n->un && n->un->nlowers > 0;
	if (!r)
		r = union_copy_up(n);	/* a file moves as its copy */
	inode_forget(n, 1);
	return r;
}

int union_read_fd(struct ws_inode *n)
{
	int fd = __atomic_load_n(&n->un->rd_fd, __ATOMIC_ACQUIRE), none = -1;

	if (fd >= 0)
		return fd;
	fd = inode_open(n, O_RDONLY);
	if (fd < 0)
		return fd;
	if (!__atomic_compare_exchange_n(&n->un->rd_fd, &none, fd, 0,
					 __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
		close(fd);
		fd = none;
	}
	return fd;
}

uint64_t union_entry_ino(struct ws_inode *dir, const char *name, uint64_t ino)
{
	char path[64 + 256];
	struct origin o;
	ssize_t len;
	int fd;

	if (!is_upper(dir) || (fd = inode_fd(dir)) < 0)
		return ino;
	snprintf(path, sizeof(path), "/proc/self/fd/%d/%s", fd, name);
	len = lgetxattr(path, COPYUP_ORIGIN_XATTR, &o, sizeof(o));
	inode_fd_put(dir);
	return len == (ssize_t)sizeof(o) && o.zero == 0 ? o.ino : ino;
}
