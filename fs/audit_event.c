/*
** Audit records built on the request path.
**
** Everything here runs on a FUSE worker thread, so it does no I/O to the
** log: it fills a record on the stack and audit_writer_submit() copies it
** into the writer's queue.  What it does do is name things.
**
** Who: fuse_req_ctx() gives the caller's uid, gid and pid; the process name
** is read from /proc/PID/comm at that moment (audit_caller.c), so an exec
** later does not relabel the record.  A release arrives without a caller (the kernel sends
** it when the last reference goes), so each open file keeps its opener's
** identity until then.
**
** Where: the path is the kernel's own name for the backing descriptor
** (/proc/self/fd/N), which follows renames and carries no symlink
** resolution of ours; the layer's backing root is cut off and its target
** put in front, so records show workspace paths, "/input/a.csv" rather
** than the host's "/srv/data/a.csv".
**
** What went through a handle: bytes read and written, and an XXH3-128
** fingerprint of the content.  Writes that run from offset 0 without a
** hole or an overlap feed a streaming hash, so a file written start to end
** is fingerprinted without reading it back; any other pattern is hashed
** from the file at release when it is small (REHASH_MAX), and left
** unfingerprinted otherwise.  Open files are found by their backing
** descriptor, which is unique while the file is open, in a table as large
** as the descriptor limit, like the kernel's own file table.
*/
#include "audit_event.h"
#include "audit_caller.h"
#include "append.h"
#include "log.h"
#include "options.h"
#include "union.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#define REHASH_MAX (1 << 20)
#define WS_PATH_MAX (PATH_MAX + 256)

enum audit_level audit_level = AUDIT_OFF;
__thread fuse_req_t audit_current_req;

struct layer_name {
	char *root;		/* the backing root as /proc shows it */
	size_t root_len;
	const char *target;	/* "" for the upper and cow layers */
	const char *kind;
};

struct audit_handle {
	pthread_mutex_t lock;
	int64_t uid, gid, pid;
	char comm[32];
	int flags;
	int created;
	uint64_t bytes_read;
	uint64_t bytes_written;
	XXH3_state_t *hash;
	uint64_t next_off;	/* where a streaming hash expects the next write */
	int streaming;
	uint64_t gen;		/* names_generation() when path was taken */
	char path[];		/* its path at open */
};

static struct {
	const char *host;
	const char *ws;
	struct layer_name layers[64];
	unsigned int nlayers;
	struct audit_handle **handles;
	size_t nhandles;
} A;

/* ---- naming ----------------------------------------------------------- */

static const char *layer_kind(const struct ws_layer *l)
{
	if (l->scratch)
		return "ephemeral";
	if (l->cow)
		return "cow";
	if (l->shared)
		return "shared";
	if (!l->writable)
		return "ro";
	return "upper";
}

static int learn_layer(unsigned int i)
{
	struct ws_layer *l = itab_layer(i);
	char link[PATH_MAX], name[16];
	ssize_t k;

	fd_name(l->mount_fd, name);
	k = readlinkat(itab_proc_fd(), name, link, sizeof(link) - 1);
	if (k < 0)
		return -errno;
	link[k] = '\0';
	A.layers[i].root = strdup(link);
	if (!A.layers[i].root)
		return -ENOMEM;
	/* A root at "/" has nothing to cut off. */
	A.layers[i].root_len = strcmp(link, "/") == 0 ? 0 : (size_t)k;
	A.layers[i].target = l->target ? l->target : "";
	A.layers[i].kind = layer_kind(l);
	return 0;
}

static void cut_deleted(struct ws_inode *n, char *link, size_t *len)
{
	static const char suffix[] = " (deleted)";
	size_t sl = sizeof(suffix) - 1;

	if ((n->gone || n->orphan) && *len > sl &&
	    strcmp(link + *len - sl, suffix) == 0) {
		*len -= sl;
		link[*len] = '\0';
	}
}

/* N's workspace path, from FD (any descriptor on N). */
static void path_of_fd(struct ws_inode *n, int fd, char *buf, size_t len)
{
	const struct layer_name *ln = &A.layers[n->layer->index];
	char link[PATH_MAX], name[16];
	const char *rel;
	size_t k;
	ssize_t r;

	fd_name(fd, name);
	r = readlinkat(itab_proc_fd(), name, link, sizeof(link) - 1);
	if (r < 0 || n->layer->index >= A.nlayers) {
		snprintf(buf, len, "?");
		return;
	}
	k = (size_t)r;
	link[k] = '\0';
	cut_deleted(n, link, &k);
	if (strncmp(link, ln->root, ln->root_len) != 0 ||
	    (link[ln->root_len] != '\0' && link[ln->root_len] != '/')) {
		/* Moved out from under its root by the host: say where. */
		snprintf(buf, len, "?%s", link);
		return;
	}
	rel = link + ln->root_len;
	if (!ln->target[0] && !rel[0])
		rel = "/";
	snprintf(buf, len, "%s%s", ln->target, rel);
}

/* Bumped after every rename and rmdir: a path learned before the bump may
** be stale, one learned after it is not (until the next). Paths are read
** from the kernel only when this says the remembered one may be wrong. */
static uint64_t names_changed;

static uint64_t names_generation(void)
{
	return __atomic_load_n(&names_changed, __ATOMIC_ACQUIRE);
}

static void names_change(void)
{
	__atomic_add_fetch(&names_changed, 1, __ATOMIC_ACQ_REL);
}

/* Paths the log named lately, by node. An agent works on one file or one
** directory for several requests in a row (tar: create, write, chmod,
** chown, utimes, release), often on different worker threads, and asking
** the kernel again costs a readlink each time. A slot is trusted only for
** the same node in the same names generation: same address, inode number
** and birth time (a freed node's address and a freed inode number may
** both come back, for another file, after an unlink, which does not bump
** the generation). Direct-mapped and small: a miss costs no more than no
** cache. */
#define PATH_SLOTS 1024
#define PATH_SLOT_LEN 232

static struct {
	pthread_mutex_t lock;
	struct {
		const struct ws_inode *n;
		ino_t ino;
		int64_t btime_sec;
		uint32_t btime_nsec;
		uint64_t gen;
		char path[PATH_SLOT_LEN];
	} slot[PATH_SLOTS];
} P = { .lock = PTHREAD_MUTEX_INITIALIZER };

static unsigned int path_slot(const struct ws_inode *n)
{
	uintptr_t a = (uintptr_t)n;

	return (unsigned int)((a >> 4) ^ (a >> 14)) % PATH_SLOTS;
}

static int path_cached(const struct ws_inode *n, uint64_t gen, char *buf,
		       size_t len)
{
	unsigned int i = path_slot(n);
	int hit;

	if (!n->has_btime)
		return 0;
	pthread_mutex_lock(&P.lock);
	hit = P.slot[i].n == n && P.slot[i].ino == n->ino &&
	      P.slot[i].btime_sec == n->btime_sec &&
	      P.slot[i].btime_nsec == n->btime_nsec && P.slot[i].gen == gen;
	if (hit)
		snprintf(buf, len, "%s", P.slot[i].path);
	pthread_mutex_unlock(&P.lock);
	return hit;
}

/* GEN: the generation read before PATH was learned. */
static void path_remember(const struct ws_inode *n, uint64_t gen,
			  const char *path)
{
	unsigned int i = path_slot(n);
	size_t len = strlen(path);

	if (len >= PATH_SLOT_LEN || path[0] != '/' || !n->has_btime)
		return;		/* long, "?", or no way to tell lives apart */
	pthread_mutex_lock(&P.lock);
	P.slot[i].n = n;
	P.slot[i].ino = n->ino;
	P.slot[i].btime_sec = n->btime_sec;
	P.slot[i].btime_nsec = n->btime_nsec;
	P.slot[i].gen = gen;
	memcpy(P.slot[i].path, path, len + 1);
	pthread_mutex_unlock(&P.lock);
}

static void path_of_node(struct ws_inode *n, char *buf, size_t len)
{
	uint64_t gen = names_generation();
	int fd;

	if (path_cached(n, gen, buf, len))
		return;
	fd = inode_fd(n);
	if (fd < 0) {
		snprintf(buf, len, "?");
		return;
	}
	path_of_fd(n, fd, buf, len);
	inode_fd_put(n);
	path_remember(n, gen, buf);
}

void audit_path_of(struct ws_inode *n, char *buf, size_t len)
{
	path_of_node(n, buf, len);
}

/* N's path, through FD (a descriptor on N the caller holds, or -1). */
static void path_with_fd(struct ws_inode *n, int fd, char *buf, size_t len)
{
	uint64_t gen = names_generation();

	if (fd < 0) {
		path_of_node(n, buf, len);
		return;
	}
	if (path_cached(n, gen, buf, len))
		return;
	path_of_fd(n, fd, buf, len);
	path_remember(n, gen, buf);
}

static void path_in_dir(struct ws_inode *dir, const char *name, char *buf,
			size_t len)
{
	char dpath[WS_PATH_MAX];

	path_of_node(dir, dpath, sizeof(dpath));
	/* Longer than any path the kernel passes; cut rather than fail. */
	if (snprintf(buf, len, "%s/%s", strcmp(dpath, "/") == 0 ? "" : dpath,
		     name) >= (int)len)
		buf[len - 1] = '\0';
}

/* ---- records ---------------------------------------------------------- */

struct event {
	struct audit_record r;
	char comm[32];
	char path[WS_PATH_MAX];
	char path2[WS_PATH_MAX];
};

static void event_init(struct event *ev, const char *op, const char *layer)
{
	memset(&ev->r, 0, sizeof(ev->r));
	ev->r.time_ns = audit_now_ns();
	ev->r.host = A.host;
	ev->r.ws = A.ws;
	ev->r.layer = layer;
	ev->r.op = op;
	ev->r.comm = ev->comm;
	ev->r.path = ev->path;
	ev->r.path2 = ev->path2;
	ev->r.result = "0";
	ev->r.detail = "";
	ev->r.fp = "";
	ev->comm[0] = ev->path[0] = ev->path2[0] = '\0';
}

static void event_caller(struct event *ev, fuse_req_t req)
{
	const struct fuse_ctx *c = req ? fuse_req_ctx(req) : NULL;

	if (!c) {
		ev->r.uid = getuid();
		ev->r.gid = getgid();
		ev->r.pid = getpid();
		snprintf(ev->comm, sizeof(ev->comm), "wsfs");
		return;
	}
	ev->r.uid = c->uid;
	ev->r.gid = c->gid;
	ev->r.pid = c->pid;
	caller_comm(c->pid, ev->comm, sizeof(ev->comm));
}

static const char *layer_of(const struct ws_inode *n)
{
	return n->layer->index < A.nlayers ? A.layers[n->layer->index].kind : "?";
}

static int event_submit(struct event *ev, int err, const char *detail)
{
	int r;

	ev->r.result = audit_errname(err);
	if (detail)
		ev->r.detail = detail;
	r = audit_writer_submit(&ev->r);
	if (r == -ENOMEM)
		ws_log("audit: out of memory queueing a %s record", ev->r.op);
	return r;
}

int audit_name(fuse_req_t req, enum ws_op op, struct ws_inode *dir,
		const char *name, const struct fuse_entry_param *e, int err,
		const char *detail)
{
	struct event ev;

	if (audit_level == AUDIT_OFF)
		return 0;
	event_init(&ev, ws_op_name(op), layer_of(dir));
	event_caller(&ev, req);
	path_in_dir(dir, name, ev.path, sizeof(ev.path));
	if (!err && op == OP_RMDIR)
		names_change();
	if (!err && e)
		ev.r.ino = (int64_t)e->attr.st_ino;
	return event_submit(&ev, err, detail);
}

int audit_link(fuse_req_t req, struct ws_inode *n, struct ws_inode *dir,
		const char *newname, int err)
{
	struct event ev;

	if (audit_level == AUDIT_OFF)
		return 0;
	event_init(&ev, "link", layer_of(dir));
	event_caller(&ev, req);
	path_of_node(n, ev.path, sizeof(ev.path));
	path_in_dir(dir, newname, ev.path2, sizeof(ev.path2));
	ev.r.ino = (int64_t)n->shown_ino;
	return event_submit(&ev, err, NULL);
}

int audit_rename(fuse_req_t req, struct ws_inode *from, const char *name,
		  struct ws_inode *to, const char *newname, unsigned int flags,
		  int err)
{
	struct event ev;

	if (audit_level == AUDIT_OFF)
		return 0;
	if (!err)
		names_change();
	event_init(&ev, "rename", layer_of(from));
	event_caller(&ev, req);
	path_in_dir(from, name, ev.path, sizeof(ev.path));
	path_in_dir(to, newname, ev.path2, sizeof(ev.path2));
	return event_submit(&ev, err, flags & RENAME_EXCHANGE ? "flags=exchange" :
			       flags & RENAME_NOREPLACE ? "flags=noreplace" : NULL);
}

static int node_event(fuse_req_t req, const char *op, struct ws_inode *n,
		       int fd, int err, const char *detail)
{
	struct event ev;

	event_init(&ev, op, layer_of(n));
	event_caller(&ev, req);
	path_with_fd(n, fd, ev.path, sizeof(ev.path));
	ev.r.ino = (int64_t)n->shown_ino;
	return event_submit(&ev, err, detail);
}

int audit_node(fuse_req_t req, enum ws_op op, struct ws_inode *n, int fd,
		int err, const char *detail)
{
	if (audit_level == AUDIT_OFF)
		return 0;
	return node_event(req, ws_op_name(op), n, fd, err, detail);
}

void audit_copy_up(struct ws_inode *n, int err)
{
	if (audit_level != AUDIT_OFF)
		(void)node_event(audit_current_req, "copy-up", n, -1, err, NULL);
}

void audit_whiteout(struct ws_inode *dir, const char *name, int err)
{
	struct event ev;

	if (audit_level == AUDIT_OFF)
		return;
	event_init(&ev, "whiteout", "upper");
	event_caller(&ev, audit_current_req);
	path_in_dir(dir, name, ev.path, sizeof(ev.path));
	event_submit(&ev, err, NULL);
}

static void daemon_event(const char *op, const char *path, int64_t bytes,
			 const char *detail)
{
	struct event ev;

	event_init(&ev, op, "-");
	event_caller(&ev, NULL);
	snprintf(ev.path, sizeof(ev.path), "%s", path ? path : "");
	ev.r.bytes = bytes;
	event_submit(&ev, 0, detail);
}

void audit_daemon_event(const char *op, const char *path, int64_t bytes,
			const char *detail)
{
	if (audit_level != AUDIT_OFF)
		daemon_event(op, path, bytes, detail);
}

void audit_threshold(const char *kind, unsigned int percent, const char *what,
		     uint64_t used, uint64_t limit)
{
	char detail[160];
	struct event ev;

	if (audit_level == AUDIT_OFF)
		return;
	event_init(&ev, "quota-threshold", "-");
	event_caller(&ev, audit_current_req);
	ev.r.bytes = (int64_t)used;
	snprintf(detail, sizeof(detail), "kind=%s %s=%u%% used=%llu limit=%llu",
		 kind, what, percent, (unsigned long long)used,
		 (unsigned long long)limit);
	event_submit(&ev, 0, detail);
}

void audit_peer_event(const char *op, int64_t uid, int64_t gid, int64_t pid,
		      const char *detail)
{
	struct event ev;

	if (audit_level == AUDIT_OFF)
		return;
	event_init(&ev, op, "-");
	ev.r.uid = uid;
	ev.r.gid = gid;
	ev.r.pid = pid;
	caller_comm(pid, ev.comm, sizeof(ev.comm));
	event_submit(&ev, 0, detail);
}

/* ---- open files ------------------------------------------------------- */

static void flags_text(int flags, char *buf, size_t len)
{
	static const struct { int bit; const char *name; } bits[] = {
		{ O_CREAT, "O_CREAT" }, { O_EXCL, "O_EXCL" },
		{ O_TRUNC, "O_TRUNC" }, { O_APPEND, "O_APPEND" },
		{ O_DIRECT, "O_DIRECT" }, { O_SYNC, "O_SYNC" },
		{ O_NOATIME, "O_NOATIME" },
	};
	int acc = flags & O_ACCMODE;
	size_t used;

	used = (size_t)snprintf(buf, len, "flags=%s", acc == O_RDONLY ? "O_RDONLY" :
				acc == O_WRONLY ? "O_WRONLY" : "O_RDWR");
	for (size_t i = 0; i < sizeof(bits) / sizeof(bits[0]) && used < len; i++)
		if ((flags & bits[i].bit) == bits[i].bit)
			used += (size_t)snprintf(buf + used, len - used, "|%s",
						 bits[i].name);
}

static struct audit_handle *handle_of(int fd)
{
	if (fd < 0 || (size_t)fd >= A.nhandles)
		return NULL;
	return __atomic_load_n(&A.handles[fd], __ATOMIC_ACQUIRE);
}

static void keep_handle(int fd, const struct event *ev, int flags, int created,
			uint64_t gen)
{
	size_t plen = strlen(ev->path) + 1;
	struct audit_handle *h;

	if (fd < 0 || (size_t)fd >= A.nhandles)
		return;
	h = calloc(1, sizeof(*h) + plen);
	if (!h) {
		ws_log("audit: out of memory for an open file's record");
		return;
	}
	pthread_mutex_init(&h->lock, NULL);
	h->uid = ev->r.uid;
	h->gid = ev->r.gid;
	h->pid = ev->r.pid;
	memcpy(h->comm, ev->comm, sizeof(h->comm));
	h->flags = flags;
	h->created = created;
	h->streaming = 1;
	h->gen = gen;
	memcpy(h->path, ev->path, plen);
	__atomic_store_n(&A.handles[fd], h, __ATOMIC_RELEASE);
}

static int open_event(fuse_req_t req, const char *op, struct ws_inode *n,
		       int fd, int flags, int created, int err,
		       struct ws_inode *dir, const char *name, int64_t ino)
{
	uint64_t gen = names_generation();
	char detail[128];
	struct event ev;
	int r;

	event_init(&ev, op, layer_of(dir ? dir : n));
	event_caller(&ev, req);
	if (dir) {
		path_in_dir(dir, name, ev.path, sizeof(ev.path));
		if (n)
			path_remember(n, gen, ev.path);
	} else {
		path_with_fd(n, fd, ev.path, sizeof(ev.path));
	}
	ev.r.ino = ino;
	flags_text(flags, detail, sizeof(detail));
	r = event_submit(&ev, err, detail);
	if (!err && !r)
		keep_handle(fd, &ev, flags, created, gen);
	return r;
}

int audit_open(fuse_req_t req, struct ws_inode *n, int fd, int flags, int err)
{
	if (audit_level == AUDIT_OFF)
		return 0;
	return open_event(req, "open", n, err ? -1 : fd, flags, 0, err, NULL,
			  NULL, (int64_t)n->shown_ino);
}

int audit_created(fuse_req_t req, struct ws_inode *dir, const char *name,
		   const struct fuse_entry_param *e, int fd, int flags, int err)
{
	struct ws_inode *n = !err && e ? inode_of(e->ino) : NULL;

	if (audit_level == AUDIT_OFF)
		return 0;
	return open_event(req, "create", n, err ? -1 : fd, flags | O_CREAT, 1,
			  err, dir, name, n ? (int64_t)n->shown_ino : 0);
}

static void hash_hex(XXH128_hash_t h, char out[33])
{
	XXH128_canonical_t c;

	XXH128_canonicalFromHash(&c, h);
	audit_hex(c.digest, sizeof(c.digest), out);
}

/* The whole file's hash, read back through a read-only reopen (the handle
** itself may be write-only). O_NOATIME: the audit reading a file is not
** the agent accessing it, and must not show in its atime. */
static int rehash(int fd, char out[33])
{
	XXH3_state_t *st = XXH3_createState();
	char name[16], buf[65536];
	ssize_t k;
	int rfd;

	if (!st)
		return -ENOMEM;
	fd_name(fd, name);
	rfd = openat(itab_proc_fd(), name, O_RDONLY | O_NOATIME | O_CLOEXEC);
	if (rfd < 0 || XXH3_128bits_reset(st) != XXH_OK) {
		if (rfd >= 0)
			close(rfd);
		XXH3_freeState(st);
		return -EIO;
	}
	while ((k = read(rfd, buf, sizeof(buf))) > 0)
		(void)XXH3_128bits_update(st, buf, (size_t)k);
	close(rfd);
	if (k == 0)
		hash_hex(XXH3_128bits_digest(st), out);
	XXH3_freeState(st);
	return k == 0 ? 0 : -EIO;
}

/* The size quota accounting tracks (every change to it goes through us),
** or the file's own when it is not tracked. */
static int64_t file_size(struct ws_inode *n, int fd)
{
	int64_t size = __atomic_load_n(&n->size, __ATOMIC_RELAXED);
	struct stat st;

	if (size >= 0)
		return size;
	return fstat(fd, &st) < 0 ? -1 : (int64_t)st.st_size;
}

static void fingerprint(struct audit_handle *h, struct ws_inode *n, int fd,
			char out[33])
{
	int64_t size;

	out[0] = '\0';
	if (!(h->bytes_written || h->created || (h->flags & O_TRUNC)))
		return;
	size = file_size(n, fd);
	if (size < 0)
		return;
	if (h->hash && h->streaming && h->next_off == (uint64_t)size) {
		hash_hex(XXH3_128bits_digest(h->hash), out);
		return;
	}
	if (size <= REHASH_MAX && rehash(fd, out) < 0)
		out[0] = '\0';
}

void audit_release(struct ws_inode *n, int fd)
{
	struct audit_handle *h = handle_of(fd);
	char detail[64], fp[33];
	struct event ev;

	if (!h)
		return;
	__atomic_store_n(&A.handles[fd], NULL, __ATOMIC_RELEASE);
	event_init(&ev, "release", layer_of(n));
	ev.r.uid = h->uid;
	ev.r.gid = h->gid;
	ev.r.pid = h->pid;
	memcpy(ev.comm, h->comm, sizeof(ev.comm));
	if (h->gen == names_generation())
		snprintf(ev.path, sizeof(ev.path), "%s", h->path);
	else
		path_of_fd(n, fd, ev.path, sizeof(ev.path));
	ev.r.ino = (int64_t)n->shown_ino;
	ev.r.bytes = (int64_t)h->bytes_written;
	fingerprint(h, n, fd, fp);
	ev.r.fp = fp;
	snprintf(detail, sizeof(detail), "read=%llu written=%llu",
		 (unsigned long long)h->bytes_read,
		 (unsigned long long)h->bytes_written);
	event_submit(&ev, 0, detail);
	if (h->hash)
		XXH3_freeState(h->hash);
	pthread_mutex_destroy(&h->lock);
	free(h);
}

/* Feeds the streaming hash while writes run on from offset 0. */
static void hash_write(struct audit_handle *h, off_t off, const void *buf,
		       size_t len)
{
	if (!h->streaming)
		return;
	if (!buf || (uint64_t)off != h->next_off) {
		h->streaming = 0;
		return;
	}
	if (!h->hash) {
		h->hash = XXH3_createState();
		if (!h->hash || XXH3_128bits_reset(h->hash) != XXH_OK) {
			h->streaming = 0;
			return;
		}
	}
	(void)XXH3_128bits_update(h->hash, buf, len);
	h->next_off += len;
}

static int call_event(fuse_req_t req, const char *op, struct ws_inode *n,
		       int fd, off_t off, int64_t bytes, int err)
{
	char detail[48];
	struct event ev;

	event_init(&ev, op, layer_of(n));
	event_caller(&ev, req);
	path_with_fd(n, fd, ev.path, sizeof(ev.path));
	ev.r.ino = (int64_t)n->shown_ino;
	ev.r.bytes = bytes;
	snprintf(detail, sizeof(detail), "offset=%lld", (long long)off);
	return event_submit(&ev, err, detail);
}

int audit_wrote(fuse_req_t req, struct ws_inode *n, int fd, off_t off,
		 const void *buf, ssize_t res)
{
	struct audit_handle *h;

	if (audit_level == AUDIT_OFF)
		return 0;
	h = handle_of(fd);
	if (h && res > 0) {
		pthread_mutex_lock(&h->lock);
		h->bytes_written += (uint64_t)res;
		hash_write(h, off, buf, (size_t)res);
		pthread_mutex_unlock(&h->lock);
	}
	if (audit_level == AUDIT_FULL || (res < 0 && audit_denial((int)res)))
		return call_event(req, "write", n, fd, off, res > 0 ? res : 0,
				  res < 0 ? (int)res : 0);
	return 0;
}

void audit_read(fuse_req_t req, struct ws_inode *n, int fd, off_t off,
		size_t bytes)
{
	struct audit_handle *h;

	if (audit_level == AUDIT_OFF)
		return;
	h = handle_of(fd);
	if (h)
		__atomic_add_fetch(&h->bytes_read, bytes, __ATOMIC_RELAXED);
	if (audit_level == AUDIT_FULL)
		(void)call_event(req, "read", n, fd, off, (int64_t)bytes, 0);
}

/* ---- lifecycle -------------------------------------------------------- */

static int setup_handles(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return -errno;
	A.nhandles = rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > (1u << 20) ?
		     (1u << 20) : (size_t)rl.rlim_cur;
	A.handles = calloc(A.nhandles, sizeof(*A.handles));
	return A.handles ? 0 : -ENOMEM;
}

static void mount_detail(const struct ws_options *opt, char *buf, size_t len)
{
	size_t used = (size_t)snprintf(buf, len,
		"mountpoint=%s upper=%s audit=%s audit_sync=%s audit_fail=%s%s",
		opt->mountpoint, opt->upper ? opt->upper : "(ephemeral)",
		opt->audit_level == AUDIT_FULL ? "full" : "meta",
		opt->audit_sync_full ? "full" : "normal",
		opt->audit_fail_alert ? "alert" : "closed",
		opt->read_only ? " ro" : "");

	for (size_t i = 0; i < opt->nlayers && used < len; i++) {
		const struct layer_spec *s = &opt->layers[i];

		used += (size_t)snprintf(buf + used, len - used, " layer=%s:%s:%s",
					 s->source ? s->source : "", s->target,
					 layer_mode_name(s->mode));
	}
}

static void free_layers(void)
{
	for (unsigned int i = 0; i < A.nlayers; i++)
		free(A.layers[i].root);
	A.nlayers = 0;
}

int audit_events_start(const struct ws_options *opt)
{
	struct audit_writer_config c;
	char err[512], detail[4096];
	int r;

	/* Paths are learned whatever the level: `wsctl locks` shows them. */
	for (unsigned int i = 0; i < itab_layer_count(); i++) {
		r = learn_layer(i);
		if (r < 0) {
			fprintf(stderr, "wsfs: audit: layer %u: %s\n", i, strerror(-r));
			free_layers();
			return -1;
		}
		A.nlayers = i + 1;
	}
	if (opt->audit_level == AUDIT_OFF)
		return 0;
	A.host = audit_hostname();
	A.ws = opt->name;
	if (setup_handles() < 0) {
		fprintf(stderr, "wsfs: audit: out of memory\n");
		free_layers();
		return -1;
	}
	memset(&c, 0, sizeof(c));
	c.state_dir = opt->state;
	c.host = A.host;
	c.ws = opt->name;
	c.sync_full = opt->audit_sync_full;
	c.fail_alert = opt->audit_fail_alert;
	c.anchor = opt->audit_anchor;
	c.cp_records = opt->audit_cp_records;
	c.cp_secs = opt->audit_cp_secs;
	if (audit_writer_start(&c, err, sizeof(err)) < 0) {
		fprintf(stderr, "wsfs: audit log: %s\n", err);
		free(A.handles);
		A.handles = NULL;
		free_layers();
		return -1;
	}
	audit_level = opt->audit_level;
	mount_detail(opt, detail, sizeof(detail));
	daemon_event("audit-start", "", 0, detail);
	daemon_event("mount", opt->mountpoint, 0, detail);
	return 0;
}

void audit_events_unmount(const char *how)
{
	char detail[128];

	if (audit_level == AUDIT_OFF)
		return;
	snprintf(detail, sizeof(detail), "how=%s", how);
	daemon_event("unmount", "", 0, detail);
}

void audit_events_stop(void)
{
	if (audit_level == AUDIT_OFF) {
		free_layers();
		return;
	}
	daemon_event("audit-stop", "", 0, NULL);
	audit_level = AUDIT_OFF;
	audit_writer_stop();
	for (size_t i = 0; i < A.nhandles; i++)
		if (A.handles[i]) {
			XXH3_freeState(A.handles[i]->hash);
			free(A.handles[i]);
		}
	free(A.handles);
	A.handles = NULL;
	free_layers();
	caller_cache_clear();
}
