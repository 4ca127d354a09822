/*
** Advisory locks: the table of owners, flock holders and waiters (design
** in lock_table.h).
**
** A node with any lock state has a struct lock_node, linked into one list
** so `wsctl locks` can walk them; it is freed as soon as it holds nothing,
** so a node without locks costs one NULL pointer and a release one load.
** Every descriptor the table opens counts against a budget: owners and
** waiters each take one, and the daemon's open-file limit is shared with
** the agent's own open files and the descriptor cache.
**
** A caller that passes WAIT gets a pending back for a granted lock too:
** one without a descriptor (lock_pending_fd is -1), not listed, which only
** carries the reply to lock_wait.h's delivery thread. ops_lock.c answers
** grants on shared files that way, since dropping the agent's cached pages may
** wait for reads that only a free libfuse worker can serve.
*/
#include "lock_table.h"

#include "append.h"
#include "audit_event.h"
#include "grow.h"
#include "lockset.h"
#include "log.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

/* Descriptors the table may hold: owners' descriptions plus waiters'
** duplicates. Past it a request fails with ENOLCK, as the kernel says
** when its own lock table is full. */
#define LOCK_FDS_MAX 4096

struct lock_owner {
	struct lock_owner *next;
	uint64_t id;
	int fd;			/* its own description on the backing file */
	int refs;		/* the table's, plus one per pending wait */
	int dropped;		/* closed: a pending wait must not record */
	unsigned int resets;	/* closes while a wait was pending */
	pid_t pid;		/* of its latest lock */
	struct lockset set;
	int *hfds;		/* handles it locked through */
	size_t nhfds, cap;
};

struct flock_holder {
	struct flock_holder *next;
	int hfd;
	int type;		/* LOCK_SH or LOCK_EX */
	pid_t pid;
	int64_t since_ns;
};

struct lock_pending {
	struct lock_pending *next;
	struct lock_node *ln;
	struct lock_owner *owner;	/* fcntl: a reference */
	unsigned int resets;		/* the owner's, when the wait began */
	struct lock_req r;
	int fd;
};

struct lock_node {
	struct lock_node *prev, *next;
	struct ws_inode *inode;
	struct lock_owner *owners;
	struct flock_holder *flocks;
	struct lock_pending *waiting;
	unsigned int delivering;	/* grants whose reply is under way */
};

static struct {
	pthread_mutex_t mu;
	struct lock_node *nodes;
	unsigned int fds;
} T = { .mu = PTHREAD_MUTEX_INITIALIZER };

/* ---- nodes and descriptors --------------------------------------------- */

static struct lock_node *node_get(struct ws_inode *n)
{
	struct lock_node *ln = n->locks;

	if (ln)
		return ln;
	ln = calloc(1, sizeof(*ln));
	if (!ln)
		return NULL;
	ln->inode = n;
	ln->next = T.nodes;
	if (T.nodes)
		T.nodes->prev = ln;
	T.nodes = ln;
	__atomic_store_n(&n->locks, ln, __ATOMIC_RELEASE);
	return ln;
}

static void node_maybe_free(struct lock_node *ln)
{
	if (ln->owners || ln->flocks || ln->waiting || ln->delivering)
		return;
	if (ln->prev)
		ln->prev->next = ln->next;
	else
		T.nodes = ln->next;
	if (ln->next)
		ln->next->prev = ln->prev;
	__atomic_store_n(&ln->inode->locks, NULL, __ATOMIC_RELEASE);
	free(ln);
}

static int fd_take(void)
{
	if (T.fds >= LOCK_FDS_MAX)
		return -ENOLCK;
	T.fds++;
	return 0;
}

static void fd_give(int fd)
{
	close(fd);
	T.fds--;
}

/* The owner's description: read-write where the agent may write, so that
** both lock types can be taken on it (fcntl demands the matching access
** mode); read-only on input layers, where only read locks can come. */
static int open_description(struct ws_inode *n)
{
	int fd = -EROFS;

	if (n->layer->writable)
		fd = inode_open(n, O_RDWR | O_NOATIME | O_NONBLOCK);
	if (fd == -EROFS || fd == -ETXTBSY || fd == -EACCES || fd == -EPERM)
		fd = inode_open(n, O_RDONLY | O_NOATIME | O_NONBLOCK);
	return fd;
}

/* ---- owners --------------------------------------------------------------- */

static struct lock_owner *owner_find(struct lock_node *ln, uint64_t id)
{
	struct lock_owner *o;

	for (o = ln ? ln->owners : NULL; o; o = o->next)
		if (o->id == id)
			return o;
	return NULL;
}

static void owner_put(struct lock_owner *o)
{
	if (--o->refs > 0)
		return;
	lockset_free(&o->set);
	free(o->hfds);
	free(o);
}

/* Takes O out of its node and closes its description, which drops every
** lock it holds; a pending wait keeps the struct until it ends. */
static void owner_drop(struct lock_node *ln, struct lock_owner *o)
{
	struct lock_owner **p;

	for (p = &ln->owners; *p; p = &(*p)->next)
		if (*p == o) {
			*p = o->next;
			break;
		}
	fd_give(o->fd);
	o->fd = -1;
	o->dropped = 1;
	owner_put(o);
}

/* The owner closed the file while one of its threads waits for a lock on
** it. POSIX drops its locks at once, and the description would keep them
** for as long as the wait's duplicate of it lives (a wait that may never
** end if the dropped locks are what it waits behind), so they are
** unlocked; the owner stays, to hold what the wait gets. */
static void owner_reset(struct lock_owner *o)
{
	struct flock fl;

	memset(&fl, 0, sizeof(fl));
	fl.l_type = F_UNLCK;
	fl.l_whence = SEEK_SET;
	if (fcntl(o->fd, F_OFD_SETLK, &fl) < 0)
		ws_log("locks: cannot unlock a closed owner's description: %s",
		       strerror(errno));
	lockset_free(&o->set);
	o->resets++;
}

/* A close by the owner: dropped, or reset while a wait of its is pending. */
static void owner_closed(struct lock_node *ln, struct lock_owner *o)
{
	if (o->refs > 1)
		owner_reset(o);
	else
		owner_drop(ln, o);
}

static int owner_note_handle(struct lock_owner *o, int hfd)
{
	for (size_t i = 0; i < o->nhfds; i++)
		if (o->hfds[i] == hfd)
			return 0;
	if (o->nhfds == o->cap &&
	    grow_array((void **)&o->hfds, &o->cap, sizeof(*o->hfds), 2) < 0)
		return -ENOLCK;
	o->hfds[o->nhfds++] = hfd;
	return 0;
}

static int owner_get(struct lock_node *ln, const struct lock_req *r,
		     struct lock_owner **out)
{
	struct lock_owner *o = owner_find(ln, r->owner);
	int err;

	if (!o) {
		err = fd_take();
		if (err)
			return err;
		o = calloc(1, sizeof(*o));
		if (!o) {
			T.fds--;
			return -ENOLCK;
		}
		o->fd = open_description(ln->inode);
		if (o->fd < 0) {
			err = o->fd;
			T.fds--;
			free(o);
			return err;
		}
		o->id = r->owner;
		o->refs = 1;
		o->next = ln->owners;
		ln->owners = o;
	}
	err = owner_note_handle(o, r->hfd);
	if (err)
		return err;
	*out = o;
	return 0;
}

/* ---- pending waits ------------------------------------------------------ */

int lock_pending_fd(const struct lock_pending *p)
{
	return p->fd;
}

const struct lock_req *lock_pending_req(const struct lock_pending *p)
{
	return &p->r;
}

struct ws_inode *lock_pending_inode(const struct lock_pending *p)
{
	return p->ln->inode;
}

static int pending_new(struct lock_node *ln, struct lock_owner *o,
		       const struct lock_req *r, int fd,
		       struct lock_pending **out)
{
	struct lock_pending *p;
	int err = fd_take();

	if (err)
		return err;
	p = calloc(1, sizeof(*p));
	if (p)
		p->fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	if (!p || p->fd < 0) {
		err = p ? -errno : -ENOLCK;
		free(p);
		T.fds--;
		return err == -EMFILE || err == -ENFILE ? -ENOLCK : err;
	}
	p->ln = ln;
	p->r = *r;
	p->owner = o;
	if (o) {
		o->refs++;
		p->resets = o->resets;
	}
	p->next = ln->waiting;
	ln->waiting = p;
	*out = p;
	return 0;
}

/* A lock granted at once whose reply the caller sends from elsewhere: it
** keeps the node, and nothing else, until locks_pending_done. Without
** memory the caller simply answers on its own thread. */
static void delivery_new(struct lock_node *ln, const struct lock_req *r,
			 struct lock_pending **out)
{
	struct lock_pending *p = calloc(1, sizeof(*p));

	if (!p)
		return;
	p->ln = ln;
	p->r = *r;
	p->fd = -1;
	ln->delivering++;
	*out = p;
}

static void pending_unlink(struct lock_pending *p)
{
	struct lock_pending **q;

	for (q = &p->ln->waiting; *q; q = &(*q)->next)
		if (*q == p) {
			*q = p->next;
			break;
		}
}

/* ---- fcntl locks ---------------------------------------------------------- */

struct flock lock_req_flock(const struct lock_req *r)
{
	struct flock fl;

	memset(&fl, 0, sizeof(fl));
	fl.l_type = (short)r->type;
	fl.l_whence = SEEK_SET;
	fl.l_start = r->start;
	fl.l_len = r->end == LOCKSET_EOF ? 0 : r->end - r->start + 1;
	return fl;
}

/* Which of this workspace's agents holds what the kernel reported. */
static pid_t holder_pid(struct lock_node *ln, uint64_t asker,
			const struct flock *fl)
{
	int64_t start, end;

	/* A host process's POSIX lock names its pid. Every agent's lock is
	** an OFD lock (pid -1), which the owners' mirrors hold exactly as the
	** kernel does: the one with this very range and type is the holder,
	** not one that merely overlaps it (a host's overlapping read lock may
	** be the one reported). */
	if (fl->l_pid > 0)
		return fl->l_pid;
	if (lockset_range(fl->l_start, fl->l_len, &start, &end) < 0)
		return 0;
	for (struct lock_owner *o = ln ? ln->owners : NULL; o; o = o->next) {
		if (o->id == asker)
			continue;
		for (size_t i = 0; i < o->set.n; i++)
			if (o->set.v[i].type == fl->l_type &&
			    o->set.v[i].start == start && o->set.v[i].end == end)
				return o->pid;
	}
	/* Another workspace's agent: its pid would be meaningless in this
	** agent's namespace anyway. */
	return 0;
}

int locks_fcntl_test(struct ws_inode *n, const struct lock_req *r,
		     struct flock *fl)
{
	struct lock_owner *o;
	int fd, err = 0;

	*fl = lock_req_flock(r);
	pthread_mutex_lock(&T.mu);
	o = owner_find(n->locks, r->owner);
	/* Without locks of its own the owner excludes nothing, and the
	** handle's description holds no fcntl locks: ask through it. */
	fd = o ? o->fd : r->hfd;
	if (fcntl(fd, F_OFD_GETLK, fl) < 0)
		err = -errno;
	else if (fl->l_type != F_UNLCK)
		fl->l_pid = holder_pid(n->locks, r->owner, fl);
	pthread_mutex_unlock(&T.mu);
	return err;
}

static int fcntl_unlock(struct ws_inode *n, const struct lock_req *r)
{
	struct lock_owner *o = owner_find(n->locks, r->owner);
	struct flock fl = lock_req_flock(r);

	if (!o)
		return 0;	/* nothing held: unlocking is a no-op */
	if (fcntl(o->fd, F_OFD_SETLK, &fl) < 0)
		return -errno;
	if (lockset_apply(&o->set, F_UNLCK, r->start, r->end, r->at_ns) < 0)
		return 0;	/* the kernel's state is right; the list lags */
	return 0;
}

int locks_fcntl_set(struct ws_inode *n, const struct lock_req *r,
		    struct lock_pending **wait)
{
	struct lock_node *ln;
	struct lock_owner *o;
	struct flock fl = lock_req_flock(r);
	int err;

	pthread_mutex_lock(&T.mu);
	if (r->type == F_UNLCK) {
		err = fcntl_unlock(n, r);
		pthread_mutex_unlock(&T.mu);
		return err;
	}
	ln = node_get(n);
	if (!ln) {
		pthread_mutex_unlock(&T.mu);
		return -ENOLCK;
	}
	err = owner_get(ln, r, &o);
	if (!err) {
		if (fcntl(o->fd, F_OFD_SETLK, &fl) == 0) {
			o->pid = r->pid;
			(void)lockset_apply(&o->set, r->type, r->start, r->end,
					    r->at_ns);
			if (wait)
				delivery_new(ln, r, wait);
		} else {
			err = errno == EACCES ? -EAGAIN : -errno;
			if (err == -EAGAIN && wait) {
				int w = pending_new(ln, o, r, o->fd, wait);

				if (w)
					err = w;
			}
		}
	}
	node_maybe_free(ln);
	pthread_mutex_unlock(&T.mu);
	return err;
}

/* ---- flock ---------------------------------------------------------------- */

static struct flock_holder **holder_slot(struct lock_node *ln, int hfd)
{
	struct flock_holder **h;

	for (h = &ln->flocks; *h; h = &(*h)->next)
		if ((*h)->hfd == hfd)
			break;
	return h;
}

static void holder_forget(struct lock_node *ln, int hfd)
{
	struct flock_holder **h = holder_slot(ln, hfd), *dead = *h;

	if (dead) {
		*h = dead->next;
		free(dead);
	}
}

/* After flock() through HFD succeeded with TYPE (0 for LOCK_UN). */
static void holder_set(struct lock_node *ln, const struct lock_req *r)
{
	struct flock_holder **h = holder_slot(ln, r->hfd);

	if (r->type == LOCK_UN) {
		holder_forget(ln, r->hfd);
		return;
	}
	if (*h && (*h)->type == r->type)
		return;
	if (!*h) {
		*h = calloc(1, sizeof(**h));
		if (!*h)
			return;	/* held all the same; just not listed */
		(*h)->hfd = r->hfd;
	}
	(*h)->type = r->type;
	(*h)->pid = r->pid;
	(*h)->since_ns = r->at_ns;
}

int locks_flock_set(struct ws_inode *n, const struct lock_req *r,
		    struct lock_pending **wait)
{
	struct lock_node *ln;
	int err = 0;

	pthread_mutex_lock(&T.mu);
	ln = node_get(n);
	if (!ln) {
		pthread_mutex_unlock(&T.mu);
		return -ENOLCK;
	}
	if (flock(r->hfd, r->type | (r->type == LOCK_UN ? 0 : LOCK_NB)) == 0) {
		holder_set(ln, r);
		if (wait && r->type != LOCK_UN)
			delivery_new(ln, r, wait);
	} else {
		err = errno == EWOULDBLOCK ? -EAGAIN : -errno;
		/* Linux converts a flock by dropping the old lock first. */
		holder_forget(ln, r->hfd);
		if (err == -EAGAIN && wait) {
			int w = pending_new(ln, NULL, r, r->hfd, wait);

			if (w)
				err = w;
		}
	}
	node_maybe_free(ln);
	pthread_mutex_unlock(&T.mu);
	return err;
}

/* ---- the end of a wait ------------------------------------------------------ */

void locks_pending_done(struct lock_pending *p, int err)
{
	struct lock_node *ln = p->ln;
	struct lock_owner *o = p->owner;
	int held;

	if (p->fd < 0) {
		/* A delivery: the lock was recorded when granted, and what
		** the owner did since (an unlock, a close) stands. */
		pthread_mutex_lock(&T.mu);
		ln->delivering--;
		node_maybe_free(ln);
		pthread_mutex_unlock(&T.mu);
		free(p);
		return;
	}
	pthread_mutex_lock(&T.mu);
	pending_unlink(p);
	held = !err && o && !o->dropped;
	if (!err && p->r.kind == LOCK_KIND_FLOCK)
		holder_set(ln, &p->r);
	/* A reset during the wait may have come just after the grant and
	** unlocked it: take it again, a no-op if it is still held. If another
	** owner has it by now, the close came after the grant and rightly let
	** it go; the wait still succeeded. */
	if (held && p->resets != o->resets) {
		struct flock fl = lock_req_flock(&p->r);

		held = fcntl(o->fd, F_OFD_SETLK, &fl) == 0;
	}
	if (held) {
		o->pid = p->r.pid;
		(void)lockset_apply(&o->set, p->r.type, p->r.start, p->r.end,
				    p->r.at_ns);
	}
	/* If the owner closed meanwhile, this duplicate is the last
	** reference to its description: closing it lets the lock go. */
	fd_give(p->fd);
	if (o)
		owner_put(o);
	node_maybe_free(ln);
	pthread_mutex_unlock(&T.mu);
	free(p);
}

/* ---- closes ------------------------------------------------------------------- */

void locks_owner_closed(struct ws_inode *n, uint64_t owner)
{
	struct lock_node *ln;
	struct lock_owner *o;

	if (!__atomic_load_n(&n->locks, __ATOMIC_ACQUIRE))
		return;
	pthread_mutex_lock(&T.mu);
	ln = n->locks;
	o = owner_find(ln, owner);
	if (o) {
		owner_closed(ln, o);
		node_maybe_free(ln);
	}
	pthread_mutex_unlock(&T.mu);
}

static int used_handle(const struct lock_owner *o, int hfd)
{
	for (size_t i = 0; i < o->nhfds; i++)
		if (o->hfds[i] == hfd)
			return 1;
	return 0;
}

void locks_handle_closed(struct ws_inode *n, int hfd)
{
	struct lock_node *ln;
	struct lock_owner *o, *next;

	if (!__atomic_load_n(&n->locks, __ATOMIC_ACQUIRE))
		return;
	pthread_mutex_lock(&T.mu);
	ln = n->locks;
	if (ln) {
		holder_forget(ln, hfd);
		for (o = ln->owners; o; o = next) {
			next = o->next;
			if (used_handle(o, hfd))
				owner_closed(ln, o);
		}
		node_maybe_free(ln);
	}
	pthread_mutex_unlock(&T.mu);
}

int locks_want_flush(const struct ws_inode *n)
{
	return n->layer->shared || __atomic_load_n(&n->locks, __ATOMIC_ACQUIRE);
}

/* ---- listing ---------------------------------------------------------------- */

static void put_hex(FILE *out, const char *s)
{
	if (!*s)
		fputc('-', out);
	for (; *s; s++)
		fprintf(out, "%02x", (unsigned char)*s);
}

static void list_one(FILE *out, const char *state, const char *kind,
		     const char *type, int64_t start, int64_t end, pid_t pid,
		     int64_t since_ns, const char *path)
{
	char comm[64];

	fprintf(out, "lock %s %s %s %" PRId64 " ", state, kind, type, start);
	if (end == LOCKSET_EOF)
		fputs("eof", out);
	else
		fprintf(out, "%" PRId64, end);
	audit_read_comm(pid, comm, sizeof(comm));
	fprintf(out, " %d %" PRId64 " ", (int)pid, since_ns);
	put_hex(out, comm);
	fputc(' ', out);
	put_hex(out, path);
	fputc('\n', out);
}

static const char *fcntl_type(int type)
{
	return type == F_WRLCK ? "write" : "read";
}

static const char *flock_type(int type)
{
	return type == LOCK_EX ? "exclusive" : "shared";
}

static void list_node(FILE *out, struct lock_node *ln)
{
	char path[4096];

	audit_path_of(ln->inode, path, sizeof(path));
	for (struct lock_owner *o = ln->owners; o; o = o->next)
		for (size_t i = 0; i < o->set.n; i++)
			list_one(out, "held", "fcntl", fcntl_type(o->set.v[i].type),
				 o->set.v[i].start, o->set.v[i].end, o->pid,
				 o->set.v[i].since_ns, path);
	for (struct flock_holder *h = ln->flocks; h; h = h->next)
		list_one(out, "held", "flock", flock_type(h->type), 0,
			 LOCKSET_EOF, h->pid, h->since_ns, path);
	for (struct lock_pending *p = ln->waiting; p; p = p->next) {
		int fc = p->r.kind == LOCK_KIND_FCNTL;

		list_one(out, "waiting", fc ? "fcntl" : "flock",
			 fc ? fcntl_type(p->r.type) : flock_type(p->r.type),
			 fc ? p->r.start : 0, fc ? p->r.end : LOCKSET_EOF,
			 p->r.pid, p->r.at_ns, path);
	}
}

void locks_write_kv(FILE *out)
{
	pthread_mutex_lock(&T.mu);
	for (struct lock_node *ln = T.nodes; ln; ln = ln->next)
		list_node(out, ln);
	pthread_mutex_unlock(&T.mu);
}

void locks_counts(uint64_t *held, uint64_t *waiting)
{
	*held = *waiting = 0;
	pthread_mutex_lock(&T.mu);
	for (struct lock_node *ln = T.nodes; ln; ln = ln->next) {
		for (struct lock_owner *o = ln->owners; o; o = o->next)
			*held += o->set.n;
		for (struct flock_holder *h = ln->flocks; h; h = h->next)
			(*held)++;
		for (struct lock_pending *p = ln->waiting; p; p = p->next)
			(*waiting)++;
	}
	pthread_mutex_unlock(&T.mu);
}

void locks_table_clear(void)
{
	pthread_mutex_lock(&T.mu);
	while (T.nodes) {
		struct lock_node *ln = T.nodes;

		while (ln->owners)
			owner_drop(ln, ln->owners);
		while (ln->flocks)
			holder_forget(ln, ln->flocks->hfd);
		ln->waiting = NULL;	/* every wait has ended by now */
		ln->delivering = 0;
		node_maybe_free(ln);
	}
	pthread_mutex_unlock(&T.mu);
}
