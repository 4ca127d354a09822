/*
** The inode table: what a FUSE node id stands for.
**
** A node id is the address of a struct ws_inode, as in libfuse's
** passthrough_ll, so turning a request's inode number into backing state costs
** nothing.  Nodes are found by their backing identity (st_dev, st_ino) in a
** hash table, so hard links share one node and st_nlink stays right.
**
** The node does NOT pin a descriptor.  This machine's open-file limit is
** 20,000 and cannot be raised, while the kernel may remember hundreds of
** thousands of inodes.  Each node keeps the backing file's NFS-style file
** handle (name_to_handle_at) instead, a few bytes, and O_PATH descriptors live
** in a bounded LRU cache.  A request borrows a descriptor with inode_fd() and
** returns it with inode_fd_put(); one that is not cached is reopened from the
** handle with open_by_handle_at(), which cannot resolve a path and so cannot
** be steered through a symlink.  Lookups open nothing; opens go straight
** from the handle.  A cached descriptor of a node with open files is never
** evicted (its pin), and the kernel passes the open file itself for most
** operations on an unlinked-but-open file.
**
** When the backing filesystem cannot make handles the table falls back to
** pinning one descriptor per node, and says so in the log.
**
** One mutex guards the hash, the lookup counts and the cache.  The critical
** sections are a few pointer moves; the syscalls happen outside it.
*/
#ifndef WSFS_INODE_H
#define WSFS_INODE_H

#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

struct ws_inode;
struct ws_union;
struct lock_node;

/* A backing tree the workspace shows: the upper (index 0), or a tree
** grafted onto a directory of the upper, the way a bind mount covers its
** mountpoint (ro input layers, ephemeral scratch). Set up before the mount
** goes live and never changed after, so requests read it without a lock. */
struct ws_layer {
	unsigned int index;
	int writable;
	int scratch;			/* ephemeral: wiped when the mount ends */
	int cow;			/* a base tree merged under the upper */
	int shared;			/* several workspaces write it: short caches */
	int handles;			/* 0: its nodes pin a descriptor each */
	int mount_fd;			/* O_RDONLY on its root, for open_by_handle_at */
	dev_t dev;
	uint64_t mnt_id;		/* 0 if the kernel does not say */
	struct ws_inode *root;
	const char *target;		/* grafts: where the agent sees it; else NULL */
	dev_t point_dev;		/* grafts: the upper directory covered */
	ino_t point_ino;
};

struct ws_inode {
	struct ws_layer *layer;
	dev_t dev;
	ino_t ino;
	mode_t type;			/* S_IFMT bits; never change */
	int has_btime;			/* birth time tells lives apart */
	int64_t btime_sec;
	uint32_t btime_nsec;
	uint64_t nlookup;		/* kernel references */
	int fd;				/* cached O_PATH descriptor or -1 */
	int fd_users;			/* requests using fd right now */
	int pins;			/* open files and directories */
	int no_fcaps;			/* known to have no security.capability */
	int orphan;			/* unlinked while open; charge freed at last close */
	int gone;			/* its last link was removed through us */
	int permanent;			/* a layer root: never forgotten */
	struct lock_node *locks;	/* advisory locks on it (lock_table.c), or NULL */
	int64_t size;			/* regular files: tracked size, -1 unknown (account.c) */
	struct ws_union *un;		/* in a cow union: union.h; set once */
	ino_t shown_ino;		/* st_ino the agent sees; kept by copy-up */
	int old_fd;			/* the descriptor copy-up retired, or -1 */
	struct ws_inode *hash_next;
	struct ws_inode *lru_prev, *lru_next;
	int handle_type;
	unsigned int handle_len;
	unsigned char handle[];		/* handle_len bytes */
};

/* Sets up the table over the upper directory UPPER_FD (opened O_RDONLY |
** O_DIRECTORY; the table takes ownership). FD_CAP bounds cached descriptors. */
int itab_init(int upper_fd, size_t fd_cap, char *err, size_t errlen);
void itab_destroy(void);

/* Grafts the tree ROOT_FD (O_RDONLY | O_DIRECTORY; the table takes it) onto
** the upper directory (POINT_DEV, POINT_INO): from now on a lookup that
** finds that directory answers with the graft's root. Before serving only. */
struct ws_layer *itab_graft(int root_fd, int writable, dev_t point_dev,
			    ino_t point_ino, char *err, size_t errlen);

/* Adds the cow base tree ROOT_FD (taken) as a layer; union.c merges it. */
struct ws_layer *itab_cow_layer(int root_fd, char *err, size_t errlen);

/* Looks NAME up in DIRFD of LAYER alone, as inode_lookup does for a
** parent of that layer (for union.c, which decides which layer). */
int inode_lookup_in(struct ws_layer *layer, int dirfd, const char *name,
		    struct fuse_entry_param *e);

/* After copy-up: N now stands for its copy, entry NAME of the upper
** directory DIRFD. The node, its lookup count and the number the agent
** sees stay; its backing and its key change. */
int inode_move_to_upper(struct ws_inode *n, int dirfd, const char *name);

/* Gives N its union information U unless it has some already: 0 when U
** was taken, 1 when the caller keeps (and frees) U. */
int inode_attach_union(struct ws_inode *n, struct ws_union *u);

/* The layer grafted on the upper directory (DEV, INO), or NULL. Removing or
** renaming such a directory is EBUSY, as for a mountpoint. */
struct ws_layer *itab_graft_at(dev_t dev, ino_t ino);

struct ws_inode *itab_root(void);
/* Layer I (0: the upper), I < itab_layer_count(). */
struct ws_layer *itab_layer(unsigned int i);
struct ws_layer *itab_upper(void);
unsigned int itab_layer_count(void);

static inline struct ws_inode *inode_of(fuse_ino_t ino)
{
	return ino == FUSE_ROOT_ID ? itab_root() : (struct ws_inode *)(uintptr_t)ino;
}

/* Borrows an O_PATH descriptor for INODE (>= 0), or returns -errno. */
int inode_fd(struct ws_inode *inode);
void inode_fd_put(struct ws_inode *inode);

/* Borrows descriptors for two nodes (link and rename need both): 0 with
** both borrowed, or -errno with neither. */
int inode_fd2(struct ws_inode *a, int *fa, struct ws_inode *b, int *fb);
void inode_fd2_put(struct ws_inode *a, struct ws_inode *b);

/* Registers the entry NAME in PARENT and fills E (ino, attr, timeouts); the
** node's lookup count goes up by one. Never follows a symlink. */
int inode_lookup(struct ws_inode *parent, const char *name,
		 struct fuse_entry_param *e);

/* Like inode_lookup, for a descriptor the caller already holds on the new
** entry in PARENT (after create): no second name resolution, so no race. */
int inode_lookup_fd(struct ws_inode *parent, int fd, struct fuse_entry_param *e);

/* Opens node N with open(2) FLAGS: through its cached descriptor if it has
** one, else straight from its handle. Returns the descriptor or -errno. */
int inode_open(struct ws_inode *n, int flags);

/* Before every write() the kernel asks whether the file has a
** security.capability xattr to clear. For files this daemon created and
** nobody gave one since, the answer is known without a syscall. Accessed
** with relaxed atomics: a stale read only costs the syscall. */
static inline void inode_set_no_fcaps(struct ws_inode *n, int known)
{
	__atomic_store_n(&n->no_fcaps, known, __ATOMIC_RELAXED);
}

static inline int inode_no_fcaps(struct ws_inode *n)
{
	return __atomic_load_n(&n->no_fcaps, __ATOMIC_RELAXED);
}

/* Takes one reference on N for the daemon's own use (a union holding its
** parent and lower directories); inode_forget(N, 1) gives it back. */
void inode_hold(struct ws_inode *inode);

/* Drops N kernel references; frees the node when none are left. */
void inode_forget(struct ws_inode *inode, uint64_t n);

/* While a node has open files, eviction leaves its cached descriptor alone.
** inode_unpin returns 1 when it dropped the last pin of an orphan, whose
** quota charge the caller must now give back. */
void inode_pin(struct ws_inode *inode);
int inode_unpin(struct ws_inode *inode);

/* inode_pin for a file being opened: -ESTALE if its last link is gone and
** nobody has it open, so an open that lost the race with an unlink is
** retried by the kernel from the name (and finds none) instead of reviving
** an inode whose charge was already given back. */
int inode_pin_file(struct ws_inode *inode);

/* Which life of an inode number an entry is. ext4 gives a freed number to
** the next new file at once, so between an unlink's syscall and its
** bookkeeping another request may create a file with the victim's number:
** (dev, ino) alone would then mark the NEW file's node gone. The handle
** carries the generation that tells the two apart. */
struct inode_life {
	struct ws_layer *layer;
	dev_t dev;
	ino_t ino;
	int handle_type;
	unsigned int handle_len;	/* 0 when the table has no handles */
	unsigned char handle[MAX_HANDLE_SZ];
};

/* Records the life of DIRFD's entry NAME in LAYER, whose (DEV, INO) the caller has
** just read; NAME must not be able to change meanwhile (the kernel holds
** the directory's lock during unlink and rename). */
int inode_life_take(struct ws_layer *layer, int dirfd, const char *name,
		    dev_t dev, ino_t ino, struct inode_life *life);

/* Bracket a removal that may free an inode (begin before the syscall, end
** after inode_unlinked or the failure). While none is in flight, every
** freed number's node has left the hash, so a lookup whose birth time
** matches a hashed node can trust it without taking the handle. */
void inode_removal_begin(void);
void inode_removal_end(void);

/* After the last link of LIFE was removed: its node, if the kernel still
** holds one (it does during the unlink request), else NULL. A node with open
** files is marked an orphan and *ORPHANED set: its charge stays until the
** last close. */
struct ws_inode *inode_unlinked(const struct inode_life *life, int *orphaned);

/* The attributes the agent sees; st_ino is the backing inode number. */
int inode_stat(struct ws_inode *inode, struct stat *st);

/* "N" for /proc/self/fd/N, relative to itab_proc_fd(). */
int itab_proc_fd(void);
void fd_name(int fd, char buf[16]);

/* Out of descriptors (EMFILE/ENFILE): closes half the cached ones so the
** caller can retry once. */
void itab_relieve(void);

static inline int fd_exhausted(int err)
{
	return err == EMFILE || err == ENFILE;
}

size_t itab_count(void);
size_t itab_cached_fds(void);
size_t itab_fd_cap(void);

/* Entry and attribute timeouts handed to the kernel. */
extern double ws_entry_timeout;
extern double ws_attr_timeout;

/* A shared directory is changed by other workspaces and the host behind
** this daemon's back, so the kernel may trust what it cached of it only
** briefly: another agent's change of a file's attributes shows within this
** many seconds. Names are not cached at all there: whether a name exists
** is what lock-based programs decide on (SQLite's hot-journal check read
** a journal deleted by the other workspace as present, and replayed it
** over committed data), and a path walk there costs one LOOKUP per name. */
#define WS_SHARED_TIMEOUT 0.5

static inline double ws_attr_timeout_of(const struct ws_inode *n)
{
	return n->layer->shared ? WS_SHARED_TIMEOUT : ws_attr_timeout;
}

static inline double ws_entry_timeout_of(const struct ws_inode *n)
{
	return n->layer->shared ? 0 : ws_entry_timeout;
}

#endif
