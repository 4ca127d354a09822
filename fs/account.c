/*
** Quota accounting for each operation (design in account.h, the charging
** rules in quota/charge.h).
**
** Size locks are striped by node address instead of living in the node: a
** mutex per node would add 40 bytes to each of hundreds of thousands of
** nodes, and two files sharing a stripe only serialize their size changes,
** which take one syscall each.
*/
#include "account.h"

#include "account_shared.h"
#include "charge.h"
#include "ledger.h"
#include "log.h"
#include "xcharge.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>

#define SIZE_STRIPES 64

static pthread_mutex_t size_locks[SIZE_STRIPES] = {
	[0 ... SIZE_STRIPES - 1] = PTHREAD_MUTEX_INITIALIZER
};

static pthread_mutex_t *size_lock(const struct ws_inode *n)
{
	uintptr_t p = (uintptr_t)n;

	return &size_locks[(p >> 6 ^ p >> 12) % SIZE_STRIPES];
}

/* With the lock held: N's size, learned through FD the first time. In a
** shared directory other workspaces change files behind our back, so the
** size is asked every time there. */
static int known_size(struct ws_inode *n, int fd, int64_t *size)
{
	struct stat st;

	if (n->size < 0 || n->layer->shared) {
		if (fstat(fd, &st) < 0)
			return -errno;
		n->size = st.st_size;
	}
	*size = n->size;
	return 0;
}

uint64_t account_xattr_key(const struct ws_layer *l, ino_t ino)
{
	return (uint64_t)ino ^ ((uint64_t)(l && l->scratch) << 62);
}

int account_new(const struct ws_inode *dir, mode_t type)
{
	if (dir->layer->shared)
		return shared_entry_charge(charge_bytes(type, 0));
	return ledger_charge(charge_bytes(type, 0), 1);
}

void account_new_undo(const struct ws_inode *dir, mode_t type)
{
	if (dir->layer->shared)
		shared_entry_undo(charge_bytes(type, 0));
	else
		ledger_release(charge_bytes(type, 0), 1);
}

void account_new_done(const struct ws_inode *dir, const struct ws_inode *n,
		      mode_t type)
{
	if (dir->layer->shared)
		shared_entry_made(n, charge_bytes(type, 0));
}

static int charge_grow(const struct ws_inode *n, uint64_t bytes)
{
	return n->layer->shared ? shared_grow(n, bytes) :
				  ledger_charge(bytes, 0);
}

/* With the lock held and G's old size known: reserves what growing to
** G->want costs; unlocks on refusal. */
static int reserve(struct grow *g)
{
	int r;

	g->reserved = 0;
	if (charge_data(g->want) > charge_data(g->old)) {
		g->reserved = charge_data(g->want) - charge_data(g->old);
		r = charge_grow(g->n, g->reserved);
		if (r) {
			pthread_mutex_unlock(size_lock(g->n));
			return r;
		}
	}
	return 0;
}

static int64_t add_clamped(int64_t a, uint64_t b)
{
	return b > (uint64_t)(INT64_MAX - a) ? INT64_MAX : a + (int64_t)b;
}

static int begin(struct grow *g, struct ws_inode *n, int fd)
{
	int r;

	memset(g, 0, sizeof(*g));
	g->n = n;
	pthread_mutex_lock(size_lock(n));
	r = known_size(n, fd, &g->old);
	if (r < 0)
		pthread_mutex_unlock(size_lock(n));
	return r;
}

/* Settles G to the size the file really has now, and unlocks. */
static void settle(struct grow *g, int64_t now)
{
	uint64_t had = charge_data(g->old) + g->reserved, has = charge_data(now);

	if (had > has && g->n->layer->shared)
		shared_shrink(g->n, had - has);
	else if (had > has)
		ledger_release(had - has, 0);
	else if (has > had && g->n->layer->shared)
		shared_grow_force(g->n, has - had);
	else if (has > had)
		/* Cannot happen: no call grows a file past what it asked
		** for. Charge it anyway so the ledger stays true. */
		ledger_force(has - had, 0);
	g->n->size = now;
	pthread_mutex_unlock(size_lock(g->n));
}

int account_write_begin(struct grow *g, struct ws_inode *n, int fd, off_t off,
			size_t len, int append)
{
	int64_t end;
	int r = begin(g, n, fd);

	if (r < 0)
		return r;
	g->start = append ? g->old : (int64_t)off;
	end = add_clamped(g->start, len);
	g->want = end > g->old ? end : g->old;
	return reserve(g);
}

void account_write_end(struct grow *g, ssize_t res)
{
	int64_t now = g->old;

	if (res > 0) {
		int64_t end = add_clamped(g->start, (uint64_t)res);

		if (end > now)
			now = end;
	}
	settle(g, now);
}

int account_resize_begin(struct grow *g, struct ws_inode *n, int fd, off_t size)
{
	int r = begin(g, n, fd);

	if (r < 0)
		return r;
	g->want = size < 0 ? 0 : (int64_t)size;
	return reserve(g);
}

void account_resize_end(struct grow *g, int err)
{
	settle(g, err ? g->old : g->want);
}

int account_fallocate_begin(struct grow *g, struct ws_inode *n, int fd,
			    int mode, off_t off, off_t len)
{
	const int known = FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE |
			  FALLOC_FL_ZERO_RANGE;
	int64_t end;
	int r;

	if (mode & ~known)
		return -EOPNOTSUPP;
	if (off < 0 || len <= 0)
		return -EINVAL;
	r = begin(g, n, fd);
	if (r < 0)
		return r;
	end = add_clamped((int64_t)off, (uint64_t)len);
	if (mode & FALLOC_FL_KEEP_SIZE) {
		if (!(mode & FALLOC_FL_PUNCH_HOLE) && end > g->old &&
		    ledger_bytes_limited()) {
			pthread_mutex_unlock(size_lock(n));
			return -EOPNOTSUPP;
		}
		g->want = g->old;
	} else {
		g->want = end > g->old ? end : g->old;
	}
	return reserve(g);
}

void account_victim_probe(struct victim *v, struct ws_inode *dir, int pfd,
			  const char *name)
{
	struct statx stx;

	memset(v, 0, sizeof(*v));
	v->layer = dir->layer;
	if (statx(pfd, name, AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT,
		  STATX_TYPE | STATX_NLINK | STATX_INO | STATX_SIZE, &stx) < 0)
		return;
	v->exists = 1;
	v->type = stx.stx_mode & S_IFMT;
	v->nlink = stx.stx_nlink;
	v->size = (int64_t)stx.stx_size;
	v->life.dev = makedev(stx.stx_dev_major, stx.stx_dev_minor);
	v->life.ino = (ino_t)stx.stx_ino;
	if (v->type == S_IFDIR || v->nlink <= 1) {
		inode_removal_begin();
		v->may_free = 1;
		v->life_known = inode_life_take(dir->layer, pfd, name,
						v->life.dev, v->life.ino,
						&v->life) == 0;
	}
}

/* The node of the victim's life, marked gone; NULL if the kernel holds
** none, or if the life could not be taken (the charge is then freed now,
** and a file still open keeps its tracked size to itself). */
static struct ws_inode *victim_node(const struct victim *v, int *orphaned)
{
	*orphaned = 0;
	return v->life_known ? inode_unlinked(&v->life, orphaned) : NULL;
}

/* The size to free is the node's tracked one when it has one: a write
** through a file closed since the probe may have grown the file after it. */
static void victim_gone(const struct victim *v)
{
	struct ws_inode *n;
	int64_t size = v->size;
	int orphaned;

	if (!v->exists)
		return;
	if (v->type == S_IFDIR) {
		(void)victim_node(v, &orphaned);
	} else {
		if (v->nlink > 1)
			return;		/* other names keep the inode */
		n = victim_node(v, &orphaned);
		if (n && !v->layer->shared) {
			pthread_mutex_lock(size_lock(n));
			if (n->size < 0)
				n->size = v->size;
			size = n->size;
			pthread_mutex_unlock(size_lock(n));
		}
		if (orphaned)
			return;
	}
	if (v->layer->shared) {
		/* What this workspace paid for it, and nothing of the xattr
		** table, whose key for this number may be an upper inode's. */
		shared_gone(v->life.dev, v->life.ino);
		return;
	}
	ledger_release(charge_bytes(v->type, size) +
		       xcharge_take(account_xattr_key(v->life.layer,
						      v->life.ino)), 1);
}

void account_victim_end(const struct victim *v, int err)
{
	if (!err)
		victim_gone(v);
	if (v->may_free)
		inode_removal_end();
}

void account_orphan_closed(struct ws_inode *n)
{
	uint64_t bytes;

	pthread_mutex_lock(size_lock(n));
	bytes = charge_data(n->size);
	pthread_mutex_unlock(size_lock(n));
	if (n->layer->shared) {
		shared_gone(n->dev, n->ino);
		return;
	}
	ledger_release(bytes + xcharge_take(account_xattr_key(n->layer,
							      n->ino)), 1);
}

/* The charge NAME has on PATH now, 0 if absent. PATH is the node's magic
** link, which must be followed (lgetxattr would ask the link itself). */
static uint64_t xattr_now(const char *path, const char *name)
{
	ssize_t len = getxattr(path, name, NULL, 0);

	return len < 0 ? 0 : xattr_charge(strlen(name), (size_t)len);
}

static void record_xattr(struct ws_inode *n, uint64_t was, uint64_t is)
{
	uint64_t key = account_xattr_key(n->layer, n->ino);
	uint64_t total = xcharge_get_locked(key) - was + is;

	if (xcharge_set_locked(key, total) < 0)
		ws_log("out of memory recording an xattr charge; the ledger "
		       "will be corrected at the next scan");
}

int account_setxattr(struct ws_inode *n, const char *path, const char *name,
		     const char *value, size_t size, int flags)
{
	uint64_t was, is;
	int r = 0;

	/* Charged per inode, which in a shared directory belongs to no
	** workspace: there, names and values are left to the operator. */
	if (!xattr_charged(name) || n->layer->shared)
		return setxattr(path, name, value, size, flags) < 0 ? -errno : 0;
	xcharge_lock();
	was = xattr_now(path, name);
	is = xattr_charge(strlen(name), size);
	if (is > was)
		r = ledger_charge(is - was, 0);
	if (r == 0 && setxattr(path, name, value, size, flags) < 0) {
		r = -errno;
		if (is > was)
			ledger_release(is - was, 0);
	} else if (r == 0) {
		if (was > is)
			ledger_release(was - is, 0);
		record_xattr(n, was, is);
	}
	xcharge_unlock();
	return r;
}

int account_removexattr(struct ws_inode *n, const char *path, const char *name)
{
	uint64_t was;
	int r = 0;

	if (!xattr_charged(name) || n->layer->shared)
		return removexattr(path, name) < 0 ? -errno : 0;
	xcharge_lock();
	was = xattr_now(path, name);
	if (removexattr(path, name) < 0) {
		r = -errno;
	} else {
		ledger_release(was, 0);
		record_xattr(n, was, 0);
	}
	xcharge_unlock();
	return r;
}
