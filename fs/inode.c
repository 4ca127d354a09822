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

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define EVICT_BATCH 32

double ws_entry_timeout = 86400.0;
double ws_attr_timeout = 86400.0;

static struct {
	pthread_mutex_t lock;
	struct ws_inode **buckets;
	size_t nbuckets;
	size_t count;
	size_t cached;		/* nodes with fd >= 0 (root excluded) */
	size_t cap;
	struct ws_inode lru;	/* sentinel: lru.lru_next is the hottest */
	struct ws_inode *root;
	int mount_fd;		/* O_RDONLY on the upper, for open_by_handle_at */
	int proc_fd;		/* /proc/self/fd */
	int handles;		/* 0: the backing fs makes no handles; pin fds */
} itab = { .lock = PTHREAD_MUTEX_INITIALIZER, .mount_fd = -1, .proc_fd = -1 };

static size_t bucket_of(dev_t dev, ino_t ino, size_t nbuckets)
{
	uint64_t h = (uint64_t)ino * 0x9E3779B97F4A7C15ull ^ (uint64_t)dev;

	return (size_t)(h ^ (h >> 29)) & (nbuckets - 1);
}

static struct ws_inode *hash_find(dev_t dev, ino_t ino)
{
	struct ws_inode *n = itab.buckets[bucket_of(dev, ino, itab.nbuckets)];

	while (n && (n->ino != ino || n->dev != dev))
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
			size_t k = bucket_of(n->dev, n->ino, nb);

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
	k = bucket_of(n->dev, n->ino, itab.nbuckets);
	n->hash_next = itab.buckets[k];
	itab.buckets[k] = n;
	itab.count++;
}

static void hash_remove(struct ws_inode *n)
{
	struct ws_inode **pp = &itab.buckets[bucket_of(n->dev, n->ino, itab.nbuckets)];

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

	if (!itab.handles)
		return 0;
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
static void evict_for_emfile(void)
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

static int open_from_handle(struct ws_inode *n)
{
	struct {
		struct file_handle fh;
		unsigned char bytes[MAX_HANDLE_SZ];
	} h;
	int fd;

	h.fh.handle_bytes = n->handle_len;
	h.fh.handle_type = n->handle_type;
	memcpy(h.fh.f_handle, n->handle, n->handle_len);
	fd = open_by_handle_at(itab.mount_fd, &h.fh, O_PATH | O_CLOEXEC);
	if (fd < 0 && (errno == EMFILE || errno == ENFILE)) {
		evict_for_emfile();
		fd = open_by_handle_at(itab.mount_fd, &h.fh, O_PATH | O_CLOEXEC);
	}
	return fd < 0 ? -errno : fd;
}

int inode_fd(struct ws_inode *n)
{
	int victims[EVICT_BATCH];
	int nv = 0, fd, spare = -1;

	pthread_mutex_lock(&itab.lock);
	if (n->fd >= 0) {
		n->fd_users++;
		if (itab.handles && n != itab.root)
			lru_push_hot(n);
		fd = n->fd;
		pthread_mutex_unlock(&itab.lock);
		return fd;
	}
	pthread_mutex_unlock(&itab.lock);

	fd = open_from_handle(n);
	if (fd < 0)
		return fd;

	pthread_mutex_lock(&itab.lock);
	if (n->fd >= 0) {
		spare = fd;	/* another request cached one meanwhile */
	} else {
		n->fd = fd;
		itab.cached++;
		lru_push_hot(n);
		if (itab.cached > itab.cap)
			nv = evict_locked(itab.cap, victims, EVICT_BATCH);
	}
	n->fd_users++;
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
	free(n);
}

void inode_fd_put(struct ws_inode *n)
{
	pthread_mutex_lock(&itab.lock);
	n->fd_users--;
	pthread_mutex_unlock(&itab.lock);
}

void inode_pin(struct ws_inode *n)
{
	pthread_mutex_lock(&itab.lock);
	n->pins++;
	pthread_mutex_unlock(&itab.lock);
}

void inode_unpin(struct ws_inode *n)
{
	pthread_mutex_lock(&itab.lock);
	n->pins--;
	pthread_mutex_unlock(&itab.lock);
}

void inode_forget(struct ws_inode *n, uint64_t count)
{
	int dead = 0;

	if (n == itab.root)
		return;
	pthread_mutex_lock(&itab.lock);
	n->nlookup = count >= n->nlookup ? 0 : n->nlookup - count;
	if (n->nlookup == 0) {
		hash_remove(n);
		if (n->fd >= 0 && n->lru_next) {
			lru_unlink(n);
			itab.cached--;
		}
		dead = 1;
	}
	pthread_mutex_unlock(&itab.lock);
	/* The kernel forgets a node only when no request on it is in flight,
	** so nobody can be borrowing its descriptor here. */
	if (dead)
		free_node(n);
}

static struct ws_inode *node_new(int fd, const struct stat *st, int *err)
{
	struct {
		struct file_handle fh;
		unsigned char bytes[MAX_HANDLE_SZ];
	} h;
	struct ws_inode *n;
	int mount_id;

	h.fh.handle_bytes = MAX_HANDLE_SZ;
	h.fh.handle_type = 0;
	if (itab.handles &&
	    name_to_handle_at(fd, "", &h.fh, &mount_id, AT_EMPTY_PATH) < 0) {
		*err = -errno;
		return NULL;
	}
	if (!itab.handles)
		h.fh.handle_bytes = 0;
	n = calloc(1, sizeof(*n) + h.fh.handle_bytes);
	if (!n) {
		*err = -ENOMEM;
		return NULL;
	}
	n->dev = st->st_dev;
	n->ino = st->st_ino;
	n->type = st->st_mode & S_IFMT;
	n->fd = -1;
	n->handle_type = h.fh.handle_type;
	n->handle_len = h.fh.handle_bytes;
	memcpy(n->handle, h.fh.f_handle, h.fh.handle_bytes);
	return n;
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

/* Caches FD as N's descriptor if it has none; returns 1 if it took FD. */
static int adopt_fd(struct ws_inode *n, int fd)
{
	int victims[EVICT_BATCH];
	int nv = 0, taken = 0;

	pthread_mutex_lock(&itab.lock);
	if (n->fd < 0) {
		n->fd = fd;
		itab.cached++;
		lru_push_hot(n);
		taken = 1;
		if (itab.cached > itab.cap)
			nv = evict_locked(itab.cap, victims, EVICT_BATCH);
	}
	pthread_mutex_unlock(&itab.lock);
	close_all(victims, nv);
	return taken;
}

/* Inserts FRESH unless another request registered the same file meanwhile,
** in which case FRESH is freed and the existing node gets the reference.
** A pinned descriptor in *ADOPT moves into the node that is kept. */
static struct ws_inode *insert_or_find(struct ws_inode *fresh, int *adopt)
{
	struct ws_inode *n;

	pthread_mutex_lock(&itab.lock);
	n = hash_find(fresh->dev, fresh->ino);
	if (n) {
		n->nlookup++;
	} else {
		n = fresh;
		n->nlookup = 1;
		hash_insert(n);
		if (*adopt >= 0) {
			n->fd = *adopt;	/* pinned: never on the LRU */
			*adopt = -1;
		}
	}
	pthread_mutex_unlock(&itab.lock);
	if (n != fresh)
		free(fresh);
	return n;
}

/* Finds or creates the node for FD and takes one lookup reference. If OWNED,
** FD is an O_PATH descriptor the table may keep (it closes it otherwise). */
static int register_fd(int fd, int owned, struct fuse_entry_param *e)
{
	struct ws_inode *n;
	struct stat st;
	int err = 0, adopt = -1;

	if (fstatat(fd, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0) {
		err = -errno;
		goto out;
	}
	if (st.st_dev != itab.root->dev) {
		err = -EXDEV;	/* something is mounted inside the upper */
		goto out;
	}
	pthread_mutex_lock(&itab.lock);
	n = hash_find(st.st_dev, st.st_ino);
	if (n)
		n->nlookup++;
	pthread_mutex_unlock(&itab.lock);

	if (!n) {
		struct ws_inode *fresh = node_new(fd, &st, &err);

		if (!fresh)
			goto out;
		if (!itab.handles) {
			adopt = owned ? fd : reopen_path(fd);
			if (adopt < 0) {
				err = adopt;
				free(fresh);
				goto out;
			}
			owned = 0;
		}
		n = insert_or_find(fresh, &adopt);
	}
	if (owned && itab.handles)
		owned = !adopt_fd(n, fd);
	memset(e, 0, sizeof(*e));
	e->ino = (uintptr_t)n;
	e->attr = st;
	e->attr_timeout = ws_attr_timeout;
	e->entry_timeout = ws_entry_timeout;
out:
	if (adopt >= 0)
		close(adopt);
	if (owned)
		close(fd);
	return err;
}

static int name_is_component(const char *name)
{
	return name[0] && strchr(name, '/') == NULL && strcmp(name, ".") != 0 &&
	       strcmp(name, "..") != 0;
}

int inode_lookup(struct ws_inode *parent, const char *name,
		 struct fuse_entry_param *e)
{
	int pfd, fd;

	if (!name_is_component(name))
		return -EINVAL;
	pfd = inode_fd(parent);
	if (pfd < 0)
		return pfd;
	fd = openat(pfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 && (errno == EMFILE || errno == ENFILE)) {
		evict_for_emfile();
		fd = openat(pfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	}
	if (fd < 0)
		fd = -errno;
	inode_fd_put(parent);
	if (fd < 0)
		return fd;
	return register_fd(fd, 1, e);
}

int inode_lookup_fd(int fd, struct fuse_entry_param *e)
{
	return register_fd(fd, 0, e);
}

int inode_stat(struct ws_inode *n, struct stat *st)
{
	int fd = inode_fd(n);
	int r;

	if (fd < 0)
		return fd;
	r = fstatat(fd, "", st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW);
	r = r < 0 ? -errno : 0;
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
	n = itab.handles ? itab.cached : itab.count;
	pthread_mutex_unlock(&itab.lock);
	return n;
}

size_t itab_fd_cap(void)
{
	return itab.cap;
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

int itab_init(int upper_fd, size_t fd_cap, char *err, size_t errlen)
{
	struct stat st;
	int root_fd;

	itab.mount_fd = upper_fd;
	itab.cap = fd_cap;
	itab.lru.lru_next = itab.lru.lru_prev = &itab.lru;
	itab.nbuckets = 4096;
	itab.buckets = calloc(itab.nbuckets, sizeof(*itab.buckets));
	itab.proc_fd = open("/proc/self/fd", O_PATH | O_DIRECTORY | O_CLOEXEC);
	root_fd = openat(upper_fd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (!itab.buckets || itab.proc_fd < 0 || root_fd < 0 ||
	    fstat(root_fd, &st) < 0) {
		snprintf(err, errlen, "cannot set up the inode table: %s",
			 strerror(errno ? errno : ENOMEM));
		if (root_fd >= 0)
			close(root_fd);
		itab_destroy();
		return -1;
	}
	itab.handles = probe_handles(upper_fd);
	if (!itab.handles)
		ws_log("the upper filesystem gives no usable file handles: "
		       "pinning one descriptor per inode (limit %zu)", fd_cap);
	itab.root = calloc(1, sizeof(*itab.root));
	if (!itab.root) {
		snprintf(err, errlen, "out of memory");
		close(root_fd);
		itab_destroy();
		return -1;
	}
	itab.root->dev = st.st_dev;
	itab.root->ino = st.st_ino;
	itab.root->type = S_IFDIR;
	itab.root->nlookup = 1;
	itab.root->fd = root_fd;
	return 0;
}

void itab_destroy(void)
{
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
	if (itab.root) {
		free_node(itab.root);
		itab.root = NULL;
	}
	if (itab.proc_fd >= 0)
		close(itab.proc_fd);
	if (itab.mount_fd >= 0)
		close(itab.mount_fd);
	itab.proc_fd = itab.mount_fd = -1;
	itab.count = itab.cached = 0;
}
