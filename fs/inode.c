/*
** The inode table; the design is explained in inode.h.
**
** Locking: `itab.lock` guards every field of every node except the immutable
** identity (dev, ino, type, handle).  Syscalls that may block (opening a
** descriptor from a handle, closing evicted ones) run outside the lock; the
** code re-checks the node after re-taking it.
**
** Eviction walks the LRU list from its cold end and skips descriptors that a
** request is using or that an open file pins, so the cache may briefly exceed
** its cap by the number of requests in flight, never by more.
*/
#include "inode.h"
#include "log.h"
#include "union.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#define EVICT_BATCH 32
#define MAX_LAYERS 64

double ws_entry_timeout = 86400.0;
double ws_attr_timeout = 86400.0;

static struct {
	pthread_mutex_t lock;
	struct ws_inode **buckets;
	size_t nbuckets;
	size_t count;
	size_t cached;		/* nodes on the LRU (with fd >= 0) */
	size_t pinned;		/* nodes of layers without handles */
	size_t cap;
	struct ws_inode lru;	/* sentinel: lru.lru_next is the hottest */
	struct ws_inode *root;	/* the upper's root */
	struct ws_layer *layers[MAX_LAYERS];	/* [0] is the upper */
	unsigned int nlayers;
	int proc_fd;		/* /proc/self/fd */
	int removals;		/* in flight; atomic, outside the lock */
	int destroying;		/* itab_destroy: nodes go in any order */
} itab = { .lock = PTHREAD_MUTEX_INITIALIZER, .proc_fd = -1 };

/* One source tree may be grafted twice, so the layer is part of the key:
** each graft's nodes answer for their own layer's rules. */
static size_t bucket_of(const struct ws_layer *l, dev_t dev, ino_t ino,
			size_t nbuckets)
{
	uint64_t h = (uint64_t)ino * 0x9E3779B97F4A7C15ull ^ (uint64_t)dev ^
		     (uint64_t)l->index << 48;

	return (size_t)(h ^ (h >> 29)) & (nbuckets - 1);
}

static struct ws_inode *hash_find(const struct ws_layer *l, dev_t dev,
				  ino_t ino)
{
	struct ws_inode *n = itab.buckets[bucket_of(l, dev, ino, itab.nbuckets)];

	while (n && (n->ino != ino || n->dev != dev || n->layer != l))
		n = n->hash_next;
	return n;
}

/* Doubling keeps chains short; a failed allocation just keeps them longer. */
static void hash_grow(void)
{
	size_t nb = itab.nbuckets * 2;
	struct ws_inode **b = calloc(nb, sizeof(*b));

	if (!b)
		return;
	for (size_t i = 0; i < itab.nbuckets; i++) {
		struct ws_inode *n = itab.buckets[i];

		while (n) {
			struct ws_inode *next = n->hash_next;
			size_t k = bucket_of(n->layer, n->dev, n->ino, nb);

			n->hash_next = b[k];
			b[k] = n;
			n = next;
		}
	}
	free(itab.buckets);
	itab.buckets = b;
	itab.nbuckets = nb;
}

static void hash_insert(struct ws_inode *n)
{
	size_t k;

	if (itab.count >= itab.nbuckets * 2)
		hash_grow();
	k = bucket_of(n->layer, n->dev, n->ino, itab.nbuckets);
	n->hash_next = itab.buckets[k];
	itab.buckets[k] = n;
	itab.count++;
}

static void hash_remove(struct ws_inode *n)
{
	struct ws_inode **pp =
		&itab.buckets[bucket_of(n->layer, n->dev, n->ino, itab.nbuckets)];

	while (*pp && *pp != n)
		pp = &(*pp)->hash_next;
	if (*pp) {
		*pp = n->hash_next;
		itab.count--;
	}
}

static void lru_unlink(struct ws_inode *n)
{
	if (!n->lru_next)
		return;
	n->lru_prev->lru_next = n->lru_next;
	n->lru_next->lru_prev = n->lru_prev;
	n->lru_prev = n->lru_next = NULL;
}

static void lru_push_hot(struct ws_inode *n)
{
	lru_unlink(n);
	n->lru_next = itab.lru.lru_next;
	n->lru_prev = &itab.lru;
	itab.lru.lru_next->lru_prev = n;
	itab.lru.lru_next = n;
}

/* Detaches up to MAX idle descriptors from the cold end of the LRU into
** VICTIMS, for the caller to close outside the lock. */
static int evict_locked(size_t target, int *victims, int max)
{
	struct ws_inode *n = itab.lru.lru_prev;
	int nv = 0, scanned = 0;

	while (n != &itab.lru && itab.cached > target && nv < max &&
	       scanned < 4 * max) {
		struct ws_inode *prev = n->lru_prev;

		scanned++;
		if (n->fd_users == 0 && n->pins == 0) {
			victims[nv++] = n->fd;
			n->fd = -1;
			lru_unlink(n);
			itab.cached--;
		}
		n = prev;
	}
	return nv;
}

static void close_all(const int *fds, int n)
{
	for (int i = 0; i < n; i++)
		close(fds[i]);
}

/* Called when the process is out of descriptors: give back half the cache. */
void itab_relieve(void)
{
	int victims[EVICT_BATCH];
	int n;

	do {
		pthread_mutex_lock(&itab.lock);
		n = evict_locked(itab.cached / 2, victims, EVICT_BATCH);
		pthread_mutex_unlock(&itab.lock);
		close_all(victims, n);
	} while (n == EVICT_BATCH);
}

/* Room for any handle the kernel makes. */
struct handle_buf {
	struct file_handle fh;
	unsigned char bytes[MAX_HANDLE_SZ];
};

/* Whether node N was made from this handle. A table without handles pins
** a descriptor in every node, which keeps its inode and so its number from
** being reused: the number alone then names one life. */
static int same_handle(const struct ws_inode *n, int type, unsigned int len,
		       const unsigned char *bytes)
{
	if (!n->layer->handles)
		return 1;
	return n->handle_type == type && n->handle_len == len &&
	       memcmp(n->handle, bytes, len) == 0;
}

/* A node whose handle no longer opens its file (deleted behind our back, or
** paired with another file's handle by a racing rename) must not be found
** by the next lookup: the kernel answers ESTALE with a revalidating retry,
** and that lookup then makes a fresh node. */
static void unhash_stale(struct ws_inode *n)
{
	pthread_mutex_lock(&itab.lock);
	if (hash_find(n->layer, n->dev, n->ino) == n)
		hash_remove(n);
	pthread_mutex_unlock(&itab.lock);
}

/* Opens node N from its handle with FLAGS. The handle may have been taken
** by name a moment after the node's stat (inode_lookup), so a rename racing
** in between could have paired this node with another file's handle: the
** identity check makes such a node fail with ESTALE instead of acting on
** the wrong file. */
static int open_from_handle(struct ws_inode *n, int flags)
{
	struct handle_buf h;
	struct stat st;
	int fd;

	h.fh.handle_bytes = n->handle_len;
	h.fh.handle_type = n->handle_type;
	memcpy(h.fh.f_handle, n->handle, n->handle_len);
	fd = open_by_handle_at(n->layer->mount_fd, &h.fh, flags | O_CLOEXEC);
	if (fd < 0 && fd_exhausted(errno)) {
		itab_relieve();
		fd = open_by_handle_at(n->layer->mount_fd, &h.fh,
				       flags | O_CLOEXEC);
	}
	/* The kernel keeps ENOMEM apart when it cannot decode a handle; for
	** an inode that is being deleted that is what it reports, and what the
	** caller must hear is that the node is gone. */
	if (fd < 0) {
		fd = -errno;
	} else if (fstat(fd, &st) < 0 || st.st_ino != n->ino ||
		   st.st_dev != n->dev) {
		close(fd);
		fd = -ESTALE;
	}
	if (fd == -ESTALE)
		unhash_stale(n);
	return fd;
}

int inode_fd(struct ws_inode *n)
{
	int victims[EVICT_BATCH];
	int nv = 0, fd, spare = -1;

	pthread_mutex_lock(&itab.lock);
	if (n->fd >= 0) {
		n->fd_users++;
		if (n->layer->handles && !n->permanent)
			lru_push_hot(n);
		fd = n->fd;
		pthread_mutex_unlock(&itab.lock);
		return fd;
	}
	pthread_mutex_unlock(&itab.lock);

	fd = open_from_handle(n, O_PATH);
	if (fd < 0)
		return fd;

	pthread_mutex_lock(&itab.lock);
	/* Our reference goes first, so the eviction below cannot pick the
	** descriptor we are about to return. */
	n->fd_users++;
	if (n->fd >= 0) {
		spare = fd;	/* another request cached one meanwhile */
	} else {
		n->fd = fd;
		itab.cached++;
		lru_push_hot(n);
		if (itab.cached > itab.cap)
			nv = evict_locked(itab.cap, victims, EVICT_BATCH);
	}
	fd = n->fd;
	pthread_mutex_unlock(&itab.lock);
	if (spare >= 0)
		close(spare);
	close_all(victims, nv);
	return fd;
}

static void free_node(struct ws_inode *n)
{
	if (n->fd >= 0)
		close(n->fd);
	if (n->old_fd >= 0)
		close(n->old_fd);
	if (n->un)
		union_free(n->un, n);
	free(n);
}

void inode_fd_put(struct ws_inode *n)
{
	pthread_mutex_lock(&itab.lock);
	n->fd_users--;
	pthread_mutex_unlock(&itab.lock);
}

int inode_fd2(struct ws_inode *a, int *fa, struct ws_inode *b, int *fb)
{
	*fa = inode_fd(a);
	if (*fa < 0)
		return *fa;
	*fb = inode_fd(b);
	if (*fb < 0) {
		inode_fd_put(a);
		return *fb;
	}
	return 0;
}

void inode_fd2_put(struct ws_inode *a, struct ws_inode *b)
{
	inode_fd_put(b);
	inode_fd_put(a);
}

void inode_pin(struct ws_inode *n)
{
	pthread_mutex_lock(&itab.lock);
	n->pins++;
	pthread_mutex_unlock(&itab.lock);
}

int inode_pin_file(struct ws_inode *n)
{
	int r = 0;

	pthread_mutex_lock(&itab.lock);
	if (n->gone && n->pins == 0)
		r = -ESTALE;
	else
		n->pins++;
	pthread_mutex_unlock(&itab.lock);
	return r;
}

int inode_unpin(struct ws_inode *n)
{
	int last_orphan = 0;

	pthread_mutex_lock(&itab.lock);
	n->pins--;
	if (n->pins == 0 && n->orphan) {
		n->orphan = 0;
		last_orphan = 1;
	}
	pthread_mutex_unlock(&itab.lock);
	return last_orphan;
}

/* Marking and the last unpin take the same lock, so a close racing with
** the unlink either sees the mark or leaves the pin for the unlink to see.
**
** No name leads to this life of the inode any more, so its node leaves the
** hash now (the kernel keeps using it by address): a new file that is given
** the freed number must get a node of its own. The node hashed under the
** number may already be that new file's, which is why the life is matched
** and not just the number. */
void inode_removal_begin(void)
{
	__atomic_add_fetch(&itab.removals, 1, __ATOMIC_SEQ_CST);
}

void inode_removal_end(void)
{
	__atomic_sub_fetch(&itab.removals, 1, __ATOMIC_SEQ_CST);
}

struct ws_inode *inode_unlinked(const struct inode_life *life, int *orphaned)
{
	struct ws_inode *n;

	*orphaned = 0;
	pthread_mutex_lock(&itab.lock);
	n = hash_find(life->layer, life->dev, life->ino);
	if (n && !same_handle(n, life->handle_type, life->handle_len,
			      life->handle))
		n = NULL;
	if (n) {
		hash_remove(n);
		n->gone = 1;
		if (n->pins > 0) {
			n->orphan = 1;
			*orphaned = 1;
		}
	}
	pthread_mutex_unlock(&itab.lock);
	return n;
}

void inode_hold(struct ws_inode *n)
{
	pthread_mutex_lock(&itab.lock);
	n->nlookup++;
	pthread_mutex_unlock(&itab.lock);
}

void inode_forget(struct ws_inode *n, uint64_t count)
{
	int dead = 0;

	if (itab.destroying || n->permanent)
		return;
	pthread_mutex_lock(&itab.lock);
	n->nlookup = count >= n->nlookup ? 0 : n->nlookup - count;
	if (n->nlookup == 0) {
		hash_remove(n);
		if (n->fd >= 0 && n->lru_next) {
			lru_unlink(n);
			itab.cached--;
		} else if (n->fd >= 0 && !n->layer->handles) {
			itab.pinned--;
		}
		dead = 1;
	}
	pthread_mutex_unlock(&itab.lock);
	/* The kernel forgets a node only when no request on it is in flight,
	** so nobody can be borrowing its descriptor here. */
	if (dead)
		free_node(n);
}

/* What tells one life of an inode number from the next: ext4 gives a freed
** number to the next new file at once, while the kernel may still hold our
** node for the old one. A different birth time proves another life cheaply;
** an equal one proves nothing on a coarse clock, so the handle (which holds
** a generation) decides. */
struct ident {
	struct stat st;
	uint64_t mnt_id;	/* 0 if the kernel does not say */
	int64_t btime_sec;
	uint32_t btime_nsec;
	int has_btime;
};

static int stat_ident(int dirfd, const char *name, struct ident *id)
{
	struct statx stx;
	int flags = AT_SYMLINK_NOFOLLOW | (name[0] ? 0 : AT_EMPTY_PATH);

	memset(id, 0, sizeof(*id));
	if (statx(dirfd, name, flags,
		  STATX_BASIC_STATS | STATX_BTIME | STATX_MNT_ID, &stx) < 0)
		return -errno;
	id->st.st_dev = makedev(stx.stx_dev_major, stx.stx_dev_minor);
	id->st.st_ino = stx.stx_ino;
	id->st.st_mode = stx.stx_mode;
	id->st.st_nlink = stx.stx_nlink;
	id->st.st_uid = stx.stx_uid;
	id->st.st_gid = stx.stx_gid;
	id->st.st_rdev = makedev(stx.stx_rdev_major, stx.stx_rdev_minor);
	id->st.st_size = (off_t)stx.stx_size;
	id->st.st_blksize = stx.stx_blksize;
	id->st.st_blocks = (blkcnt_t)stx.stx_blocks;
	id->st.st_atim.tv_sec = stx.stx_atime.tv_sec;
	id->st.st_atim.tv_nsec = stx.stx_atime.tv_nsec;
	id->st.st_mtim.tv_sec = stx.stx_mtime.tv_sec;
	id->st.st_mtim.tv_nsec = stx.stx_mtime.tv_nsec;
	id->st.st_ctim.tv_sec = stx.stx_ctime.tv_sec;
	id->st.st_ctim.tv_nsec = stx.stx_ctime.tv_nsec;
	id->mnt_id = (stx.stx_mask & STATX_MNT_ID) ? stx.stx_mnt_id : 0;
	id->has_btime = (stx.stx_mask & STATX_BTIME) != 0;
	id->btime_sec = stx.stx_btime.tv_sec;
	id->btime_nsec = stx.stx_btime.tv_nsec;
	return 0;
}

/* Whatever is mounted inside the upper, the workspace's own mountpoint
** included, is not part of the workspace. A bind mount of the upper's own
** filesystem shares its st_dev, so the mount id decides where the kernel
** reports one. */
static int inside_layer_mount(const struct ws_layer *l, const struct ident *id)
{
	if (id->st.st_dev != l->dev)
		return 0;
	return !id->mnt_id || !l->mnt_id || id->mnt_id == l->mnt_id;
}

static struct ws_inode *node_new(struct ws_layer *l, const struct ident *id,
				 const struct handle_buf *h)
{
	/* A node of a cow layer takes its copy's handle at copy-up, which may
	** be longer. */
	size_t room = l->cow ? MAX_HANDLE_SZ : h->fh.handle_bytes;
	struct ws_inode *n = calloc(1, sizeof(*n) + room);

	if (!n)
		return NULL;
	n->layer = l;
	n->shown_ino = id->st.st_ino;
	n->old_fd = -1;
	n->dev = id->st.st_dev;
	n->ino = id->st.st_ino;
	n->type = id->st.st_mode & S_IFMT;
	n->has_btime = id->has_btime;
	n->btime_sec = id->btime_sec;
	n->btime_nsec = id->btime_nsec;
	n->fd = -1;
	n->size = -1;
	n->handle_type = h->fh.handle_type;
	n->handle_len = h->fh.handle_bytes;
	memcpy(n->handle, h->fh.f_handle, h->fh.handle_bytes);
	return n;
}

/* The handle of DIRFD's entry NAME (of DIRFD itself if NAME is ""). Without
** handle support an empty one: such nodes pin a descriptor instead. */
static int take_handle(const struct ws_layer *l, int dirfd, const char *name,
		       struct handle_buf *h)
{
	int mount_id;

	h->fh.handle_bytes = MAX_HANDLE_SZ;
	h->fh.handle_type = 0;
	if (!l->handles) {
		h->fh.handle_bytes = 0;
		return 0;
	}
	if (name_to_handle_at(dirfd, name, &h->fh, &mount_id,
			      name[0] ? 0 : AT_EMPTY_PATH) < 0)
		return -errno;
	return 0;
}

int inode_life_take(struct ws_layer *layer, int dirfd, const char *name,
		    dev_t dev, ino_t ino, struct inode_life *life)
{
	struct handle_buf h;
	int err = take_handle(layer, dirfd, name, &h);

	memset(life, 0, sizeof(*life));
	life->layer = layer;
	life->dev = dev;
	life->ino = ino;
	if (err)
		return err;
	life->handle_type = h.fh.handle_type;
	life->handle_len = h.fh.handle_bytes;
	memcpy(life->handle, h.fh.f_handle, h.fh.handle_bytes);
	return 0;
}

/* Whether node N stands for the inode that ID and then its handle H were
** read from. A different birth time settles it without the handle; so does
** an equal one when H is NULL, which find_or_make passes only when no
** removal was in flight at the statx. Returns 1 (same life), 0 (another
** life), or -1 when a handle taken BY_NAME disagrees: that is either
** another life born in the same clock tick or a rename between the statx
** and the handle, and only a descriptor on the entry can say which. */
static int life_of(const struct ws_inode *n, const struct ident *id,
		   const struct handle_buf *h, int by_name)
{
	if (n->has_btime && id->has_btime &&
	    (n->btime_sec != id->btime_sec || n->btime_nsec != id->btime_nsec))
		return 0;
	if (!h || same_handle(n, h->fh.handle_type, h->fh.handle_bytes,
			      h->fh.f_handle))
		return 1;
	return by_name ? -1 : 0;
}

/* Takes a reference on the node of ID's current life into *OUT (NULL if
** there is none yet); -EAGAIN if life_of cannot tell. A node of an earlier
** life of the same number is unhashed: the kernel keeps it until it forgets
** it, and requests on it fail with ESTALE (see open_from_handle). */
static int find_locked(struct ws_layer *l, const struct ident *id,
		       const struct handle_buf *h, int by_name,
		       struct ws_inode **out)
{
	struct ws_inode *n = hash_find(l, id->st.st_dev, id->st.st_ino);
	int same;

	*out = NULL;
	if (!n)
		return 0;
	same = life_of(n, id, h, by_name);
	if (same < 0)
		return -EAGAIN;
	if (same == 0) {
		hash_remove(n);
		return 0;
	}
	n->nlookup++;
	*out = n;
	return 0;
}

/* Without handles a node must own an O_PATH descriptor for its whole life. */
static int reopen_path(int fd)
{
	char name[16];
	int r;

	fd_name(fd, name);
	r = openat(itab.proc_fd, name, O_PATH | O_CLOEXEC);
	return r < 0 ? -errno : r;
}

/* Inserts FRESH unless another request registered the same life meanwhile,
** in which case FRESH is freed and the existing node gets the reference.
** A pinned descriptor in *ADOPT moves into the node that is kept. */
static int insert_or_find(struct ws_inode *fresh, const struct ident *id,
			  const struct handle_buf *h, int by_name, int *adopt,
			  struct ws_inode **out)
{
	struct ws_inode *n;
	int err;

	pthread_mutex_lock(&itab.lock);
	err = find_locked(fresh->layer, id, h, by_name, &n);
	if (!err && !n) {
		n = fresh;
		n->nlookup = 1;
		hash_insert(n);
		if (*adopt >= 0) {
			n->fd = *adopt;	/* pinned: never on the LRU */
			*adopt = -1;
			itab.pinned++;
		}
	}
	pthread_mutex_unlock(&itab.lock);
	if (n != fresh)
		free(fresh);
	*out = n;
	return err;
}

static void fill_entry(struct fuse_entry_param *e, struct ws_inode *n,
		       const struct stat *st)
{
	memset(e, 0, sizeof(*e));
	e->ino = (uintptr_t)n;
	e->attr = *st;
	e->attr.st_ino = n->shown_ino;
	e->attr_timeout = ws_attr_timeout_of(n);
	e->entry_timeout = ws_entry_timeout_of(n);
}

/* A graft's root answers for the directory it covers, as a bind mount's
** root does for its mountpoint. Roots are never forgotten, so no lookup
** count is kept for them. */
static int graft_entry(struct ws_layer *g, struct fuse_entry_param *e)
{
	struct ident id;
	int err = stat_ident(g->root->fd, "", &id);

	if (err)
		return err;
	fill_entry(e, g->root, &id.st);
	return 0;
}

static int find_or_make(struct ws_layer *l, int dirfd, const char *name,
			int *pin, struct fuse_entry_param *e);

/* Settles what a name could not: statx and handle on one descriptor read
** the same inode, whatever renames race with us. */
static int find_by_descriptor(struct ws_layer *l, int dirfd, const char *name,
			      int *pin, struct fuse_entry_param *e)
{
	int fd = openat(dirfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	int err;

	if (fd < 0 && fd_exhausted(errno)) {
		itab_relieve();
		fd = openat(dirfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	}
	if (fd < 0)
		return -errno;
	err = find_or_make(l, fd, "", pin, e);
	close(fd);
	return err;
}

/* Finds or creates the node of DIRFD's entry NAME ("" with an fd on the
** file itself) and takes one lookup reference. A known node costs one
** statx, and a name_to_handle_at more while a removal is in flight or the
** filesystem has no birth times; a new node always takes the handle. *PIN,
** if >= 0, is an O_PATH descriptor for a table without handles to keep; it
** is consumed.
**
** A node made by name can still pair one file's statx with another's
** handle if a rename lands between the two; open_from_handle's identity
** check turns such a node into ESTALE, and the kernel looks the name up
** again. */
static int find_or_make(struct ws_layer *l, int dirfd, const char *name,
			int *pin, struct fuse_entry_param *e)
{
	struct ws_inode *n, *fresh;
	struct handle_buf h;
	struct ident id;
	int err, have_handle = 0, by_name = name[0] != '\0';

	err = stat_ident(dirfd, name, &id);
	if (err)
		return err;
	if (!inside_layer_mount(l, &id))
		return -EXDEV;
	if (l->index == 0 && itab.nlayers > 1 && S_ISDIR(id.st.st_mode)) {
		struct ws_layer *g = itab_graft_at(id.st.st_dev, id.st.st_ino);

		if (g)
			return graft_entry(g, e);
	}
	/* In a shared directory other workspaces remove files without
	** bracketing it here, so the handle always decides. */
	if (!id.has_btime || l->shared ||
	    __atomic_load_n(&itab.removals, __ATOMIC_SEQ_CST) > 0) {
		err = take_handle(l, dirfd, name, &h);
		if (err)
			return err;
		have_handle = 1;
	}
	pthread_mutex_lock(&itab.lock);
	err = find_locked(l, &id, have_handle ? &h : NULL, by_name, &n);
	pthread_mutex_unlock(&itab.lock);
	if (!err && !n) {
		if (!have_handle && (err = take_handle(l, dirfd, name, &h)))
			return err;
		fresh = node_new(l, &id, &h);
		if (!fresh)
			return -ENOMEM;
		err = insert_or_find(fresh, &id, &h, by_name, pin, &n);
	}
	if (err == -EAGAIN)
		return find_by_descriptor(l, dirfd, name, pin, e);
	if (err)
		return err;
	fill_entry(e, n, &id.st);
	return 0;
}

static int name_is_component(const char *name)
{
	return name[0] && strchr(name, '/') == NULL && strcmp(name, ".") != 0 &&
	       strcmp(name, "..") != 0;
}

/* Without handles a node needs its own descriptor from the start. */
static int lookup_pinned(struct ws_layer *l, int pfd, const char *name,
			 struct fuse_entry_param *e)
{
	int fd = openat(pfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	int err;

	if (fd < 0 && fd_exhausted(errno)) {
		itab_relieve();
		fd = openat(pfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	}
	if (fd < 0)
		return -errno;
	err = find_or_make(l, fd, "", &fd, e);
	if (fd >= 0)
		close(fd);
	return err;
}

/* No descriptor is opened: most looked-up entries (find, ls -l, rm -rf) are
** never opened, and those that are get one from their handle on demand. The
** statx and the handle are taken by name, so a rename between the two can
** pair them wrongly; open_from_handle catches that. */
static int lookup_by_handle(struct ws_layer *l, int pfd, const char *name,
			    struct fuse_entry_param *e)
{
	int no_pin = -1;

	return find_or_make(l, pfd, name, &no_pin, e);
}

int inode_lookup_in(struct ws_layer *layer, int dirfd, const char *name,
		    struct fuse_entry_param *e)
{
	return layer->handles ? lookup_by_handle(layer, dirfd, name, e)
			      : lookup_pinned(layer, dirfd, name, e);
}

int inode_move_to_upper(struct ws_inode *n, int dirfd, const char *name)
{
	struct ws_layer *up = itab_upper();
	struct handle_buf h;
	struct ident id;
	int err = stat_ident(dirfd, name, &id);

	if (!err)
		err = take_handle(up, dirfd, name, &h);
	if (err)
		return err;
	pthread_mutex_lock(&itab.lock);
	hash_remove(n);
	if (n->fd >= 0 && n->lru_next) {
		lru_unlink(n);
		itab.cached--;
	}
	/* A request may still be using the lower descriptor: it stays open
	** until the node goes. */
	n->old_fd = n->fd;
	n->fd = -1;
	n->layer = up;
	n->dev = id.st.st_dev;
	n->ino = id.st.st_ino;
	n->has_btime = id.has_btime;
	n->btime_sec = id.btime_sec;
	n->btime_nsec = id.btime_nsec;
	n->handle_type = h.fh.handle_type;
	n->handle_len = h.fh.handle_bytes;
	memcpy(n->handle, h.fh.f_handle, h.fh.handle_bytes);
	n->size = -1;
	hash_insert(n);
	pthread_mutex_unlock(&itab.lock);
	return 0;
}

int inode_attach_union(struct ws_inode *n, struct ws_union *u)
{
	int kept = 1;

	pthread_mutex_lock(&itab.lock);
	if (!n->un) {
		n->un = u;
		kept = 0;
	}
	pthread_mutex_unlock(&itab.lock);
	return kept;
}

int inode_lookup(struct ws_inode *parent, const char *name,
		 struct fuse_entry_param *e)
{
	int pfd, err;

	if (!name_is_component(name))
		return -EINVAL;
	if (union_merges(parent))
		return union_lookup(parent, name, e);
	pfd = inode_fd(parent);
	if (pfd < 0)
		return pfd;
	err = parent->layer->handles ? lookup_by_handle(parent->layer, pfd, name, e)
				     : lookup_pinned(parent->layer, pfd, name, e);
	inode_fd_put(parent);
	return err;
}

int inode_open(struct ws_inode *n, int flags)
{
	char name[16];
	int fd, pfd;

	pthread_mutex_lock(&itab.lock);
	pfd = n->fd;
	if (pfd >= 0)
		n->fd_users++;
	pthread_mutex_unlock(&itab.lock);
	if (pfd < 0)
		return open_from_handle(n, flags);
	fd_name(pfd, name);
	/* The magic link is the node itself; O_NOFOLLOW would refuse it. */
	fd = openat(itab.proc_fd, name, (flags & ~O_NOFOLLOW) | O_CLOEXEC);
	if (fd < 0 && fd_exhausted(errno)) {
		itab_relieve();
		fd = openat(itab.proc_fd, name, (flags & ~O_NOFOLLOW) | O_CLOEXEC);
	}
	if (fd < 0)
		fd = -errno;
	inode_fd_put(n);
	return fd;
}

int inode_lookup_fd(struct ws_inode *parent, int fd, struct fuse_entry_param *e)
{
	int pin = -1, err;

	if (!parent->layer->handles) {
		pin = reopen_path(fd);
		if (pin < 0)
			return pin;
	}
	err = find_or_make(parent->layer, fd, "", &pin, e);
	if (pin >= 0)
		close(pin);
	return err;
}

int inode_stat(struct ws_inode *n, struct stat *st)
{
	int fd = inode_fd(n);
	int r;

	if (fd < 0)
		return fd;
	r = fstatat(fd, "", st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW);
	r = r < 0 ? -errno : 0;
	st->st_ino = n->shown_ino;
	inode_fd_put(n);
	return r;
}

struct ws_inode *itab_root(void)
{
	return itab.root;
}

int itab_proc_fd(void)
{
	return itab.proc_fd;
}

void fd_name(int fd, char buf[16])
{
	snprintf(buf, 16, "%d", fd);
}

size_t itab_count(void)
{
	size_t n;

	pthread_mutex_lock(&itab.lock);
	n = itab.count;
	pthread_mutex_unlock(&itab.lock);
	return n;
}

size_t itab_cached_fds(void)
{
	size_t n;

	pthread_mutex_lock(&itab.lock);
	n = itab.cached + itab.pinned;
	pthread_mutex_unlock(&itab.lock);
	return n;
}

size_t itab_fd_cap(void)
{
	return itab.cap;
}

static uint64_t mount_id_of(int fd)
{
	struct statx stx;

	if (statx(fd, "", AT_EMPTY_PATH, STATX_MNT_ID, &stx) < 0 ||
	    !(stx.stx_mask & STATX_MNT_ID))
		return 0;
	return stx.stx_mnt_id;
}

static int probe_handles(int fd)
{
	struct {
		struct file_handle fh;
		unsigned char bytes[MAX_HANDLE_SZ];
	} h;
	int mount_id, probe;

	h.fh.handle_bytes = MAX_HANDLE_SZ;
	if (name_to_handle_at(fd, "", &h.fh, &mount_id, AT_EMPTY_PATH) < 0)
		return 0;
	probe = open_by_handle_at(fd, &h.fh, O_PATH | O_CLOEXEC);
	if (probe < 0)
		return 0;	/* e.g. no CAP_DAC_READ_SEARCH */
	close(probe);
	return 1;
}

/* A layer over the directory DIR_FD (O_RDONLY | O_DIRECTORY; taken), with
** its root node. */
static struct ws_layer *layer_new(int dir_fd, int writable, char *err,
				  size_t errlen)
{
	struct ws_layer *l = calloc(1, sizeof(*l));
	struct ws_inode *root = calloc(1, sizeof(*root));
	int root_fd = openat(dir_fd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
	struct stat st;

	if (!l || !root || root_fd < 0 || fstat(root_fd, &st) < 0) {
		snprintf(err, errlen, "cannot set up a layer: %s",
			 strerror(errno ? errno : ENOMEM));
		if (root_fd >= 0)
			close(root_fd);
		free(root);
		free(l);
		close(dir_fd);
		return NULL;
	}
	l->writable = writable;
	l->mount_fd = dir_fd;
	l->handles = probe_handles(dir_fd);
	l->dev = st.st_dev;
	l->mnt_id = mount_id_of(dir_fd);
	root->layer = l;
	root->dev = st.st_dev;
	root->ino = st.st_ino;
	root->shown_ino = st.st_ino;
	root->old_fd = -1;
	root->type = S_IFDIR;
	root->nlookup = 1;
	root->fd = root_fd;
	root->permanent = 1;
	l->root = root;
	return l;
}

static void layer_free(struct ws_layer *l)
{
	free_node(l->root);
	close(l->mount_fd);
	free(l);
}

static int add_layer(struct ws_layer *l, char *err, size_t errlen)
{
	if (itab.nlayers == MAX_LAYERS) {
		snprintf(err, errlen, "too many layers (at most %d)",
			 MAX_LAYERS - 1);
		layer_free(l);
		return -1;
	}
	l->index = itab.nlayers;
	itab.layers[itab.nlayers++] = l;
	if (!l->handles)
		ws_log("layer %u gives no usable file handles: pinning one "
		       "descriptor per inode (limit %zu)", l->index, itab.cap);
	return 0;
}

int itab_init(int upper_fd, size_t fd_cap, char *err, size_t errlen)
{
	struct ws_layer *upper;

	itab.cap = fd_cap;
	itab.lru.lru_next = itab.lru.lru_prev = &itab.lru;
	itab.nbuckets = 4096;
	itab.buckets = calloc(itab.nbuckets, sizeof(*itab.buckets));
	itab.proc_fd = open("/proc/self/fd", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (!itab.buckets || itab.proc_fd < 0) {
		snprintf(err, errlen, "cannot set up the inode table: %s",
			 strerror(errno ? errno : ENOMEM));
		close(upper_fd);
		itab_destroy();
		return -1;
	}
	upper = layer_new(upper_fd, 1, err, errlen);
	if (!upper || add_layer(upper, err, errlen) < 0) {
		itab_destroy();
		return -1;
	}
	itab.root = upper->root;
	return 0;
}

struct ws_layer *itab_graft(int root_fd, int writable, dev_t point_dev,
			    ino_t point_ino, char *err, size_t errlen)
{
	struct ws_layer *l = layer_new(root_fd, writable, err, errlen);

	if (!l)
		return NULL;
	l->point_dev = point_dev;
	l->point_ino = point_ino;
	if (add_layer(l, err, errlen) < 0)
		return NULL;
	return l;
}

struct ws_layer *itab_cow_layer(int root_fd, char *err, size_t errlen)
{
	struct ws_layer *l = layer_new(root_fd, 0, err, errlen);

	if (!l)
		return NULL;
	l->cow = 1;
	if (add_layer(l, err, errlen) < 0)
		return NULL;
	return l;
}

struct ws_layer *itab_graft_at(dev_t dev, ino_t ino)
{
	for (unsigned int i = 1; i < itab.nlayers; i++) {
		struct ws_layer *l = itab.layers[i];

		if (l->point_ino == ino && l->point_dev == dev)
			return l;
	}
	return NULL;
}

unsigned int itab_layer_count(void)
{
	return itab.nlayers;
}

struct ws_layer *itab_layer(unsigned int i)
{
	return i < itab.nlayers ? itab.layers[i] : NULL;
}

struct ws_layer *itab_upper(void)
{
	return itab.nlayers ? itab.layers[0] : NULL;
}

void itab_destroy(void)
{
	itab.destroying = 1;
	if (itab.buckets) {
		for (size_t i = 0; i < itab.nbuckets; i++) {
			struct ws_inode *n = itab.buckets[i];

			while (n) {
				struct ws_inode *next = n->hash_next;

				free_node(n);
				n = next;
			}
		}
		free(itab.buckets);
		itab.buckets = NULL;
	}
	for (unsigned int i = 0; i < itab.nlayers; i++)
		layer_free(itab.layers[i]);
	itab.nlayers = 0;
	itab.root = NULL;
	if (itab.proc_fd >= 0)
		close(itab.proc_fd);
	itab.proc_fd = -1;
	itab.count = itab.cached = itab.pinned = 0;
	itab.destroying = 0;
}
