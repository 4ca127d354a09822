/*
** Scratch trees and their wipe; the design is in scratch.h.
**
** The wipe is a depth-first walk over an explicit stack of directories.  A
** directory is read to its end with getdents64 into one shared 64 KiB
** buffer before the walk goes down: its non-directories are removed as they
** are read (an fstatat just before each unlinkat gives the charge and the
** link count), its subdirectories are only noted by name.  So no level keeps
** a buffer or a read position, and a level is a descriptor plus the names of
** the subdirectories still to visit.  Removing entries from a directory
** while reading it is what rm(1) does too: every entry not removed is still
** returned once.
**
** One descriptor per level would let a deep tree (an agent can make a chain
** of 100,000 directories for nothing) run the daemon out of descriptors, so
** at most WIPE_MAX_OPEN levels are open.  Going deeper closes the shallowest
** open level; coming back up to a closed one reopens the path to it from the
** top of the walk, one O_NOFOLLOW name at a time, checking that each step is
** still the directory (device and inode) it was.  The cost is a few extra
** opens per WIPE_KEEP levels of a chain deeper than WIPE_MAX_OPEN.
**
** A subdirectory is opened and checked before anything in it is touched: a
** mount root, or a directory on another device, is left with what it holds
** (statx's mount-root flag also catches a bind mount from the same
** filesystem, which st_dev cannot).  Non-directories are checked by st_dev
** alone; a bind mount over a file cannot be unlinked anyway (EBUSY).
**
** Whatever stays (another filesystem, a failure) is counted once in
** skipped, where it happened; the directories above it are then not even
** tried, so one stuck file does not count every level up to the root.
**
** A lock file is trusted only once the lock is held and the name still
** leads to the locked inode: a sweep unlinks lock files, and a process that
** opened one just before that would otherwise lock an orphan inode while
** the next comer creates and locks a new one under the same name.
*/
#include "scratch.h"

#include "charge.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#define WIPE_BUF (64 * 1024)
#define WIPE_MAX_OPEN 512	/* open levels at most, the top excluded */
#define WIPE_KEEP (WIPE_MAX_OPEN / 2)	/* levels a reopen leaves open */
#define LOCK_TRIES 8
#define DIR_FLAGS (O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)

#ifndef STATX_ATTR_MOUNT_ROOT
#define STATX_ATTR_MOUNT_ROOT 0x00002000	/* Linux 5.8 */
#endif

struct scratch {
	int scr_fd;		/* <state>/scratch */
	int root_fd;		/* <state>/scratch/<name>.<pid> */
	int lock_fd;		/* .<name>.<pid>.lock, flock'd */
	char *path;
	char tree[NAME_MAX + 1];
	char lock[NAME_MAX + 1];
};

struct linux_dirent64 {
	uint64_t d_ino;
	int64_t d_off;
	unsigned short d_reclen;
	unsigned char d_type;
	char d_name[];
};

/* Names of the subdirectories still to visit, each NUL-terminated. */
struct names {
	char *buf;
	size_t len, cap, pos;
};

struct frame {
	int fd;			/* -1 while closed to save descriptors */
	dev_t dev;
	ino_t ino;
	const char *name;	/* in the parent's names; NULL at the top */
	struct names subdirs;
	int left;		/* something inside stays, so this cannot go */
};

struct wipe {
	struct frame *stack;	/* stack[0] is the directory being emptied */
	size_t depth, cap;
	size_t low;		/* levels 1..low-1 are closed, low..depth open */
	dev_t dev;
	unsigned int free_levels;	/* levels 1..free_levels are not charged */
	char *buf;
	struct wipe_result *res;
	wipe_inode_fn on_inode;
	void *arg;
	int err;		/* first failure, -errno */
};

/* ---- The walk's bookkeeping ---- */

static int names_add(struct names *n, const char *name)
{
	size_t len = strlen(name) + 1;

	if (n->len + len > n->cap) {
		size_t cap = n->cap ? n->cap * 2 : 256;
		char *buf;

		while (cap < n->len + len)
			cap *= 2;
		buf = realloc(n->buf, cap);
		if (!buf)
			return -ENOMEM;
		n->buf = buf;
		n->cap = cap;
	}
	memcpy(n->buf + n->len, name, len);
	n->len += len;
	return 0;
}

static const char *names_next(struct names *n)
{
	const char *name;

	if (n->pos >= n->len)
		return NULL;
	name = n->buf + n->pos;
	n->pos += strlen(name) + 1;
	return name;
}

static void names_free(struct names *n)
{
	free(n->buf);
	memset(n, 0, sizeof(*n));
}

static void close_frame(struct frame *f)
{
	if (f->fd >= 0)
		close(f->fd);
	f->fd = -1;
	names_free(&f->subdirs);
}

/* Something in F stays: counted once here, and F is not removed. */
static void leave(struct wipe *w, struct frame *f, int errnum)
{
	w->res->skipped++;
	f->left = 1;
	if (errnum && !w->err)
		w->err = -errnum;
}

static int is_dot(const char *name)
{
	return name[0] == '.' &&
	       (name[1] == '\0' || (name[1] == '.' && name[2] == '\0'));
}

/* Device, inode and whether FD is the root of a mount, from one statx. */
static int dir_identity(int fd, dev_t *dev, ino_t *ino, int *mount_root)
{
	struct statx stx;

	if (statx(fd, "", AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW,
		  STATX_TYPE | STATX_INO, &stx) != 0)
		return -errno;
	*dev = makedev(stx.stx_dev_major, stx.stx_dev_minor);
	*ino = (ino_t)stx.stx_ino;
	*mount_root = (stx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT) &&
		      (stx.stx_attributes & STATX_ATTR_MOUNT_ROOT);
	return 0;
}

static int charged(const struct wipe *w, size_t level)
{
	return level > w->free_levels;
}

/* A non-directory name went.  Its inode's charge goes with its last link
** only, which the fstatat made just before the unlink shows. */
static void count_file(struct wipe *w, size_t level, const struct stat *st)
{
	w->res->files++;
	if (st->st_nlink != 1)
		return;
	if (S_ISREG(st->st_mode))
		w->res->bytes += (uint64_t)st->st_size;
	if (charged(w, level)) {
		w->res->charge_bytes += charge_bytes(st->st_mode, st->st_size);
		w->res->charge_inodes++;
	}
	if (w->on_inode)
		w->on_inode(st->st_dev, st->st_ino, w->arg);
}

static void count_dir(struct wipe *w, size_t level, dev_t dev, ino_t ino)
{
	w->res->dirs++;
	if (charged(w, level)) {
		w->res->charge_bytes += charge_bytes(S_IFDIR, 0);
		w->res->charge_inodes++;
	}
	if (w->on_inode)
		w->on_inode(dev, ino, w->arg);
}

/* ---- One directory's entries ---- */

/* Removes NAME, found in F at LEVEL, unless it is a directory after all
** (d_type was DT_UNKNOWN, or it changed since): returns 1 for that. */
static int remove_other(struct wipe *w, struct frame *f, size_t level,
			const char *name)
{
	struct stat st;

	if (fstatat(f->fd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
		if (errno != ENOENT)
			leave(w, f, errno);
		return 0;
	}
	if (S_ISDIR(st.st_mode))
		return 1;
	if (st.st_dev != w->dev) {
		leave(w, f, 0);
		return 0;
	}
	if (unlinkat(f->fd, name, 0) != 0) {
		if (errno != ENOENT)
			leave(w, f, errno);
		return 0;
	}
	count_file(w, level, &st);
	return 0;
}

static void note_subdir(struct wipe *w, struct frame *f, const char *name)
{
	if (names_add(&f->subdirs, name) != 0)
		leave(w, f, ENOMEM);
}

/* Reads F (at depth LEVEL - 1) to its end: removes what is not a
** directory, notes the subdirectories. */
static void read_dir(struct wipe *w, struct frame *f, size_t level)
{
	for (;;) {
		long n = syscall(SYS_getdents64, f->fd, w->buf, WIPE_BUF);
		long off;

		if (n < 0) {
			leave(w, f, errno);
			return;
		}
		if (n == 0)
			return;
		for (off = 0; off < n;) {
			struct linux_dirent64 *d = (void *)(w->buf + off);

			off += d->d_reclen;
			if (is_dot(d->d_name))
				continue;
			if (d->d_type == DT_DIR ||
			    remove_other(w, f, level, d->d_name))
				note_subdir(w, f, d->d_name);
		}
	}
}

/* ---- Going down and up ---- */

static int push(struct wipe *w, int fd, const char *name, dev_t dev,
		ino_t ino)
{
	struct frame *f;

	if (w->depth + 1 == w->cap) {
		size_t cap = w->cap * 2;
		struct frame *stack = realloc(w->stack, cap * sizeof(*stack));

		if (!stack)
			return -ENOMEM;
		w->stack = stack;
		w->cap = cap;
	}
	f = &w->stack[++w->depth];
	memset(f, 0, sizeof(*f));
	f->fd = fd;
	f->dev = dev;
	f->ino = ino;
	f->name = name;
	if (w->depth - w->low + 1 > WIPE_MAX_OPEN) {
		close(w->stack[w->low].fd);
		w->stack[w->low].fd = -1;
		w->low++;
	}
	return 0;
}

/* A level could not be reopened: what is below the top is given up, and
** the walk goes on with the top's other subdirectories. */
static void abandon(struct wipe *w, int errnum)
{
	while (w->depth > 0)
		close_frame(&w->stack[w->depth--]);
	w->low = 1;
	leave(w, &w->stack[0], errnum);
}

/* Opens NAME in UP and checks it is still the directory F recorded. */
static int reopen_one(const struct frame *up, struct frame *f)
{
	dev_t dev;
	ino_t ino;
	int fd, mount_root, r;

	fd = openat(up->fd, f->name, DIR_FLAGS);
	if (fd < 0)
		return -errno;
	r = dir_identity(fd, &dev, &ino, &mount_root);
	if (r == 0 && (dev != f->dev || ino != f->ino || mount_root))
		r = -ESTALE;
	if (r < 0) {
		close(fd);
		return r;
	}
	f->fd = fd;
	return 0;
}

/* Levels 1..depth are all closed: walks down to them again from the top,
** leaving the deepest WIPE_KEEP of them open. */
static int reopen(struct wipe *w)
{
	size_t keep = w->depth > WIPE_KEEP ? w->depth - WIPE_KEEP + 1 : 1;
	size_t i;

	for (i = 1; i <= w->depth; i++) {
		int r = reopen_one(&w->stack[i - 1], &w->stack[i]);

		if (i > 1 && i - 1 < keep) {
			close(w->stack[i - 1].fd);
			w->stack[i - 1].fd = -1;
		}
		if (r < 0) {
			abandon(w, -r);
			return r;
		}
	}
	w->low = keep;
	return 0;
}

static void descend(struct wipe *w, const char *name)
{
	struct frame *f = &w->stack[w->depth];
	size_t level = w->depth + 1;
	dev_t dev;
	ino_t ino;
	int fd, mount_root, r;

	fd = openat(f->fd, name, DIR_FLAGS);
	if (fd < 0) {
		/* Replaced by a non-directory since it was read; a name that
		** keeps changing type is given up rather than chased. */
		if (errno == ENOTDIR || errno == ELOOP) {
			if (remove_other(w, f, level, name))
				leave(w, f, ESTALE);
		} else if (errno != ENOENT) {
			leave(w, f, errno);
		}
		return;
	}
	r = dir_identity(fd, &dev, &ino, &mount_root);
	if (r == 0 && (dev != w->dev || mount_root))
		r = 1;
	if (r == 0 && push(w, fd, name, dev, ino) != 0)
		r = -ENOMEM;
	if (r != 0) {
		close(fd);
		leave(w, f, r < 0 ? -r : 0);
		return;
	}
	read_dir(w, &w->stack[w->depth], level + 1);
}

/* The deepest level is done: closes it and removes it from its parent,
** unless something in it stays. */
static void ascend(struct wipe *w)
{
	struct frame *f = &w->stack[w->depth], *up;
	const char *name = f->name;
	size_t level = w->depth;
	dev_t dev = f->dev;
	ino_t ino = f->ino;
	int left = f->left;

	close_frame(f);
	w->depth--;
	if (w->depth > 0 && w->low > w->depth && reopen(w) < 0)
		return;
	up = &w->stack[w->depth];
	if (left) {
		up->left = 1;
		return;
	}
	if (unlinkat(up->fd, name, AT_REMOVEDIR) != 0) {
		if (errno != ENOENT)
			leave(w, up, errno);
		return;
	}
	count_dir(w, level, dev, ino);
}

static int step(struct wipe *w)
{
	const char *name = names_next(&w->stack[w->depth].subdirs);

	if (name) {
		descend(w, name);
		return 1;
	}
	if (w->depth == 0)
		return 0;
	ascend(w);
	return 1;
}

/* Empties DIRFD, adding to RES; *LEFT tells whether anything stays.  The
** walk reads its own descriptor of DIRFD, so the caller's offset is left
** alone and a descriptor already read to its end still works. */
static int wipe_tree(int dirfd, unsigned int free_levels,
		     struct wipe_result *res, wipe_inode_fn on_inode,
		     void *arg, int *left)
{
	struct wipe w;
	ino_t ino;
	int fd, mount_root, r;

	*left = 1;
	memset(&w, 0, sizeof(w));
	fd = openat(dirfd, ".", DIR_FLAGS);
	if (fd < 0)
		return -errno;
	r = dir_identity(fd, &w.dev, &ino, &mount_root);
	if (r == 0) {
		w.cap = 64;
		w.stack = calloc(w.cap, sizeof(*w.stack));
		w.buf = malloc(WIPE_BUF);
		if (!w.stack || !w.buf)
			r = -ENOMEM;
	}
	if (r < 0) {
		close(fd);
		free(w.stack);
		free(w.buf);
		return r;
	}
	w.low = 1;
	w.free_levels = free_levels;
	w.res = res;
	w.on_inode = on_inode;
	w.arg = arg;
	w.stack[0].fd = fd;
	w.stack[0].dev = w.dev;
	w.stack[0].ino = ino;
	read_dir(&w, &w.stack[0], 1);
	while (step(&w))
		;
	*left = w.stack[0].left;
	close_frame(&w.stack[0]);
	free(w.stack);
	free(w.buf);
	return w.err;
}

int wipe_contents(int dirfd, struct wipe_result *res, wipe_inode_fn on_inode,
		  void *arg)
{
	struct wipe_result none;
	int left;

	if (!res)
		res = &none;
	memset(res, 0, sizeof(*res));
	return wipe_tree(dirfd, 0, res, on_inode, arg, &left);
}

/* Wipes and removes the tree TREE in SCR_FD.  The tree's own directory and
** its targets (level 1) are not charged: the quota charges only what is
** made inside a target.  -ENOTEMPTY if something had to stay. */
static int remove_tree(int scr_fd, const char *tree, struct wipe_result *res,
		       wipe_inode_fn on_inode, void *arg)
{
	struct stat sst;
	dev_t dev;
	ino_t ino;
	int fd, mount_root, left = 1, r;

	if (fstat(scr_fd, &sst) != 0)
		return -errno;
	fd = openat(scr_fd, tree, DIR_FLAGS);
	if (fd < 0)
		return -errno;
	r = dir_identity(fd, &dev, &ino, &mount_root);
	if (r == 0 && (dev != sst.st_dev || mount_root)) {
		res->skipped++;
		r = -EXDEV;
	}
	if (r == 0)
		r = wipe_tree(fd, 1, res, on_inode, arg, &left);
	close(fd);
	if (r < 0)
		return r;
	if (left)
		return -ENOTEMPTY;
	if (unlinkat(scr_fd, tree, AT_REMOVEDIR) != 0)
		return -errno;
	res->dirs++;
	if (on_inode)
		on_inode(dev, ino, arg);
	return 0;
}

/* ---- Lock files ---- */

/* Takes FD's lock, NAME in DIRFD: 1 if held and NAME still leads to it, 0
** if NAME was unlinked or replaced meanwhile, -EWOULDBLOCK if it is held,
** or -errno. */
static int lock_file(int dirfd, const char *name, int fd)
{
	struct stat a, b;

	if (fstat(fd, &a) != 0)
		return -errno;
	if (!S_ISREG(a.st_mode))
		return -EINVAL;
	if (flock(fd, LOCK_EX | LOCK_NB) != 0)
		return -errno;
	if (fstatat(dirfd, name, &b, AT_SYMLINK_NOFOLLOW) != 0)
		return errno == ENOENT ? 0 : -errno;
	return a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

static int lock_own(struct scratch *s, char *err, size_t errlen)
{
	int i, r = 0;

	for (i = 0; i < LOCK_TRIES; i++) {
		int fd = openat(s->scr_fd, s->lock, O_RDWR | O_CREAT |
				O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0600);

		if (fd < 0) {
			r = -errno;
			break;
		}
		r = lock_file(s->scr_fd, s->lock, fd);
		if (r == 1) {
			s->lock_fd = fd;
			return 0;
		}
		close(fd);
		if (r < 0)
			break;
	}
	if (r == -EWOULDBLOCK)
		set_err(err, errlen, "scratch lock %s is held by another "
			"process", s->lock);
	else
		set_err(err, errlen, "cannot lock scratch %s: %s", s->lock,
			r < 0 ? strerror(-r) : "lock file keeps changing");
	return -1;
}

/* ---- Opening ---- */

/* Not only '/' and dot names: a leading '.' is what marks lock files. */
static int name_valid(const char *name)
{
	return name && name[0] != '\0' && name[0] != '.' &&
	       strchr(name, '/') == NULL;
}

/* Opens <STATE_DIR>/scratch into *OUT, making it if CREATE.  It is where
** trees are wiped, so it must be ours and not writable by others. */
static int scratch_dir_open(const char *state_dir, int create, int *out,
			    char *err, size_t errlen)
{
	struct stat st;
	int sfd, fd, made = 0, r;

	sfd = open(state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (sfd < 0) {
		r = -errno;
		set_err(err, errlen, "cannot open state directory %s: %s",
			state_dir, strerror(-r));
		return r;
	}
	if (create) {
		if (mkdirat(sfd, "scratch", 0700) == 0)
			made = 1;
		else if (errno != EEXIST) {
			r = -errno;
			close(sfd);
			set_err(err, errlen, "cannot create %s/scratch: %s",
				state_dir, strerror(-r));
			return r;
		}
	}
	fd = openat(sfd, "scratch", DIR_FLAGS);
	r = fd < 0 ? -errno : 0;
	close(sfd);
	if (r < 0) {
		set_err(err, errlen, "cannot open %s/scratch%s: %s", state_dir,
			r == -ELOOP || r == -ENOTDIR ?
			" (not a directory, or a symlink)" : "", strerror(-r));
		return r;
	}
	/* mkdir's mode went through the umask. */
	if (made && fchmod(fd, 0700) != 0)
		r = -errno;
	else if (fstat(fd, &st) != 0)
		r = -errno;
	else if (st.st_uid != geteuid() || (st.st_mode & 022))
		r = -EPERM;
	if (r < 0) {
		close(fd);
		set_err(err, errlen, "%s/scratch: %s", state_dir,
			r == -EPERM ? "not owned by this user, or writable by "
			"others" : strerror(-r));
		return r;
	}
	*out = fd;
	return 0;
}

/* Makes the tree, or takes over a stale one left under this pid by a
** daemon that died before any sweep ran: its contents go first. */
static int make_root(struct scratch *s, int *made, char *err, size_t errlen)
{
	struct wipe_result res;
	int r = 0, left = 0;

	if (mkdirat(s->scr_fd, s->tree, 0700) == 0)
		*made = 1;
	else if (errno != EEXIST)
		r = -errno;
	if (r == 0) {
		s->root_fd = openat(s->scr_fd, s->tree, DIR_FLAGS);
		if (s->root_fd < 0)
			r = -errno;
	}
	if (r == 0 && fchmod(s->root_fd, 0700) != 0)
		r = -errno;
	if (r < 0) {
		set_err(err, errlen, "cannot make scratch %s: %s", s->path,
			strerror(-r));
		return -1;
	}
	if (*made)
		return 0;
	memset(&res, 0, sizeof(res));
	r = wipe_tree(s->root_fd, 1, &res, NULL, NULL, &left);
	if (r < 0 || left) {
		set_err(err, errlen, "cannot clear stale scratch %s: %s",
			s->path, strerror(r < 0 ? -r : ENOTEMPTY));
		return -1;
	}
	return 0;
}

/* Gives back what a failed scratch_open made.  Best effort: it is already
** failing, and a stale tree or lock file is what a sweep is for. */
static void undo(struct scratch *s, int made)
{
	if (s->root_fd >= 0)
		close(s->root_fd);
	if (made)
		(void)unlinkat(s->scr_fd, s->tree, AT_REMOVEDIR);
	if (s->lock_fd >= 0) {
		(void)unlinkat(s->scr_fd, s->lock, 0);
		close(s->lock_fd);
	}
	if (s->scr_fd >= 0)
		close(s->scr_fd);
	free(s->path);
	free(s);
}

int scratch_open(const char *state_dir, const char *name, struct scratch **out,
		 char *err, size_t errlen)
{
	struct scratch *s;
	int made = 0;

	*out = NULL;
	if (!name_valid(name)) {
		set_err(err, errlen, "invalid scratch name \"%s\": it must be "
			"non-empty, not start with '.' and have no '/'",
			name ? name : "(null)");
		return -1;
	}
	s = calloc(1, sizeof(*s));
	if (!s) {
		set_err(err, errlen, "out of memory");
		return -1;
	}
	s->scr_fd = s->root_fd = s->lock_fd = -1;
	if (str_format(s->tree, sizeof(s->tree), "%s.%ld", name,
		       (long)getpid()) != 0 ||
	    str_format(s->lock, sizeof(s->lock), ".%s.lock", s->tree) != 0) {
		set_err(err, errlen, "scratch name \"%s\" is too long", name);
		undo(s, 0);
		return -1;
	}
	if (asprintf(&s->path, "%s/scratch/%s", state_dir, s->tree) < 0) {
		s->path = NULL;
		set_err(err, errlen, "out of memory");
		undo(s, 0);
		return -1;
	}
	if (scratch_dir_open(state_dir, 1, &s->scr_fd, err, errlen) < 0 ||
	    lock_own(s, err, errlen) < 0 ||
	    make_root(s, &made, err, errlen) < 0) {
		undo(s, made);
		return -1;
	}
	*out = s;
	return 0;
}

const char *scratch_path(const struct scratch *s)
{
	return s->path;
}

int scratch_make_target(struct scratch *s, unsigned int index)
{
	char name[16];
	int fd, r;

	/* Scratch is what a tmpfs at TARGET would be, and tmpfs mounts (and
	** compose's tmpfs volumes) start as 1777: every agent uid may make
	** files there and none may remove another's.  A root-owned 0755
	** directory would be scratch nobody but root could use. */
	snprintf(name, sizeof(name), "%u", index);
	if (mkdirat(s->root_fd, name, 0700) != 0)
		return -errno;
	fd = openat(s->root_fd, name, DIR_FLAGS);
	/* mkdir's mode went through the umask. */
	if (fd >= 0 && fchmod(fd, 01777) == 0)
		return fd;
	r = -errno;
	if (fd >= 0)
		close(fd);
	(void)unlinkat(s->root_fd, name, AT_REMOVEDIR);
	return r;
}

int scratch_wipe_close(struct scratch *s, struct wipe_result *res,
		       wipe_inode_fn on_inode, void *arg)
{
	struct wipe_result none;
	int r;

	if (!res)
		res = &none;
	memset(res, 0, sizeof(*res));
	if (!s)
		return 0;
	close(s->root_fd);
	r = remove_tree(s->scr_fd, s->tree, res, on_inode, arg);
	/* The lock file goes with its tree (even one that vanished: -ENOENT
	** is still reported); if the tree stays, the next sweep finds both
	** and tries again. */
	if ((r == 0 || r == -ENOENT) && unlinkat(s->scr_fd, s->lock, 0) != 0 &&
	    r == 0)
		r = -errno;
	close(s->lock_fd);
	close(s->scr_fd);
	free(s->path);
	free(s);
	return r;
}

/* ---- The sweep ---- */

/* "<name>.<digits>", the only directories scratch_open makes. */
static int tree_name_valid(const char *name)
{
	const char *dot = strrchr(name, '.');
	const char *p;

	if (name[0] == '.' || !dot || dot == name || dot[1] == '\0')
		return 0;
	for (p = dot + 1; *p; p++) {
		if (*p < '0' || *p > '9')
			return 0;
	}
	return 1;
}

/* The tree a lock file ".<tree>.lock" belongs to, into TREE; 0 if NAME is
** no such lock file. */
static int lock_to_tree(const char *name, char *tree, size_t size)
{
	size_t len = strlen(name);

	if (len < 7 || name[0] != '.' || strcmp(name + len - 5, ".lock") != 0 ||
	    len - 6 >= size)
		return 0;
	memcpy(tree, name + 1, len - 6);
	tree[len - 6] = '\0';
	return tree_name_valid(tree);
}

static void add_result(struct wipe_result *to, const struct wipe_result *r)
{
	to->files += r->files;
	to->dirs += r->dirs;
	to->bytes += r->bytes;
	to->charge_bytes += r->charge_bytes;
	to->charge_inodes += r->charge_inodes;
	to->skipped += r->skipped;
}

/* Wipes TREE and its lock file if the lock is free; a missing lock file
** means an orphaned tree, free as well. */
static int sweep_tree(int scr_fd, const char *tree, struct wipe_result *total,
		      unsigned int *trees)
{
	struct wipe_result res;
	char lock[NAME_MAX + 1];
	int lfd, r;

	if (str_format(lock, sizeof(lock), ".%s.lock", tree) != 0)
		return 0;	/* too long to be one of ours */
	lfd = openat(scr_fd, lock, O_RDONLY | O_NOFOLLOW | O_NONBLOCK |
		     O_CLOEXEC);
	if (lfd < 0 && errno != ENOENT)
		return -errno;
	if (lfd >= 0) {
		r = lock_file(scr_fd, lock, lfd);
		if (r != 1) {
			close(lfd);
			/* In use, or someone else is at it. */
			return r == 0 || r == -EWOULDBLOCK ? 0 : r;
		}
	}
	memset(&res, 0, sizeof(res));
	r = remove_tree(scr_fd, tree, &res, NULL, NULL);
	add_result(total, &res);
	if (r == 0)
		(*trees)++;
	if (r == -ENOTDIR || r == -ELOOP)
		r = 0;		/* not a tree, not ours: left alone */
	else if (r == 0 || r == -ENOENT) {
		r = 0;
		if (lfd >= 0 && unlinkat(scr_fd, lock, 0) != 0 &&
		    errno != ENOENT)
			r = -errno;
	}
	if (lfd >= 0)
		close(lfd);
	return r;
}

static int sweep_entry(int scr_fd, const char *name,
		       struct wipe_result *total, unsigned int *trees)
{
	char tree[NAME_MAX + 1];
	struct stat st;

	if (name[0] != '.')
		return tree_name_valid(name) ?
		       sweep_tree(scr_fd, name, total, trees) : 0;
	if (!lock_to_tree(name, tree, sizeof(tree)))
		return 0;
	/* A lock file whose tree is there is dealt with at the tree's
	** entry; only strays are handled here. */
	if (fstatat(scr_fd, tree, &st, AT_SYMLINK_NOFOLLOW) == 0)
		return 0;
	if (errno != ENOENT)
		return -errno;
	return sweep_tree(scr_fd, tree, total, trees);
}

int scratch_sweep(const char *state_dir, struct wipe_result *total,
		  unsigned int *trees)
{
	struct wipe_result none;
	unsigned int ntrees = 0;
	char *buf;
	int fd, r, first = 0;

	if (!total) {
		memset(&none, 0, sizeof(none));
		total = &none;
	}
	if (!trees)
		trees = &ntrees;
	r = scratch_dir_open(state_dir, 0, &fd, NULL, 0);
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return r;
	buf = malloc(WIPE_BUF);
	if (!buf) {
		close(fd);
		return -ENOMEM;
	}
	for (;;) {
		long n = syscall(SYS_getdents64, fd, buf, WIPE_BUF);
		long off;

		if (n <= 0) {
			if (n < 0 && !first)
				first = -errno;
			break;
		}
		for (off = 0; off < n;) {
			struct linux_dirent64 *d = (void *)(buf + off);

			off += d->d_reclen;
			if (is_dot(d->d_name))
				continue;
			r = sweep_entry(fd, d->d_name, total, trees);
			if (r < 0 && !first)
				first = r;
		}
	}
	free(buf);
	close(fd);
	return first;
}
