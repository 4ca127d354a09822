/*
** The layers of a mount over its life; the interface is in layer_mount.h.
**
** A layer other than the upper is grafted onto a directory of the upper,
** the way a bind mount covers its mountpoint: the inode table answers a
** lookup of that directory with the layer's root (inode.h), and removing or
** moving the directory is EBUSY.  The directory is made at mount if the
** upper lacks it, so the layout an operator declares needs no preparation;
** it is charged to the quota like any directory the agent makes, because it
** is one more inode in the upper.
**
** Ephemeral targets are directories under <state>/scratch/<name>.<pid>/
** (scratch.h).  Their contents are charged while they live; the wipe at the
** end gives the charge back before the ledger is saved, so a clean ledger
** covers the upper alone and needs no scan next time.
*/
#include "layer_mount.h"
#include "audit_event.h"

#include "account.h"
#include "charge.h"
#include "inode.h"
#include "layerspec.h"
#include "ledger.h"
#include "log.h"
#include "scan.h"
#include "scratch.h"
#include "union.h"
#include "xcharge.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static struct {
	const struct layer_spec *stack;	/* the options' own array */
	size_t n;
	struct ws_layer **grafts;	/* by stack index; NULL if not grafted */
	struct scratch *scratch;
	int whole_ephemeral;
	struct wipe_result swept;	/* logged once the log is ours */
	unsigned int swept_trees;
	int sweep_err;
} LM;

static int is_whole_ephemeral(const struct layer_spec *s)
{
	return s->mode == LAYER_EPHEMERAL && strcmp(s->target, "/") == 0;
}

/* Scratch of daemons that died is wiped by whichever daemon starts next. */
static void sweep(const struct ws_options *opt)
{
	LM.sweep_err = scratch_sweep(opt->state, &LM.swept, &LM.swept_trees);
}

void lmount_log_setup(void)
{
	const struct wipe_result *res = &LM.swept;

	if (LM.sweep_err < 0)
		ws_log("sweeping left-over scratch: %s", strerror(-LM.sweep_err));
	if (LM.swept_trees)
		ws_log("swept %u scratch tree%s left by daemons that died: "
		       "%" PRIu64 " files, %" PRIu64 " directories, %" PRIu64
		       " bytes", LM.swept_trees, LM.swept_trees == 1 ? "" : "s",
		       res->files, res->dirs, res->bytes);
}

/* Given layers replace the stored stack; without any, the stored one is
** shown again, after checking it still fits this upper. */
static int settle_stack(struct registry *reg, struct ws_options *opt)
{
	char err[2 * PATH_MAX + 256];
	int r;

	if (opt->layers_given) {
		r = registry_set_layers(reg, opt->name, opt->layers,
					opt->nlayers, err, sizeof(err));
		if (r < 0) {
			fprintf(stderr, "wsfs: storing the layers: %s\n", err);
			return -1;
		}
		return 0;
	}
	r = registry_get_layers(reg, opt->name, &opt->layers, &opt->nlayers,
				err, sizeof(err));
	if (r < 0) {
		fprintf(stderr, "wsfs: reading the stored layers: %s\n", err);
		return -1;
	}
	if (opt->nlayers && layer_stack_check(opt->layers, opt->nlayers,
					      opt->upper, err, sizeof(err)) < 0) {
		fprintf(stderr, "wsfs: the layers stored for %s do not fit this "
			"mount: %s; give -o layer=/-o ephemeral= to replace "
			"them\n", opt->name, err);
		return -1;
	}
	return 0;
}

/* Whether the real absolute path INNER is OUTER or below it, comparing
** whole components. */
static int path_within(const char *inner, const char *outer)
{
	size_t len = strlen(outer);

	if (strcmp(outer, "/") == 0)
		return 1;
	return strncmp(inner, outer, len) == 0 &&
	       (inner[len] == '\0' || inner[len] == '/');
}

/* The state directory holds every workspace's quota limits, the audit log
** and its signing key: a layer showing it, or a tree that holds it, would
** hand them to an agent running as root, whom no mode bits stop
** (read-write in a shared one). Checked here, on
** the stack given or stored, once the state directory exists (the name
** claim made it); sources are real paths, so it is resolved too. */
static int refuse_state_dir(const struct ws_options *opt)
{
	const char *src, *how;
	char *state;
	int r = 0;

	state = realpath(opt->state, NULL);
	if (!state) {
		fprintf(stderr, "wsfs: state directory '%s': %s\n", opt->state,
			strerror(errno));
		return -1;
	}
	for (size_t i = 0; i < opt->nlayers && r == 0; i++) {
		src = opt->layers[i].source;
		if (!src)
			continue;
		how = strcmp(src, state) == 0 ? "is" :
		      path_within(src, state) ? "is inside" :
		      path_within(state, src) ? "contains" : NULL;
		if (!how)
			continue;
		fprintf(stderr, "wsfs: %s source '%s' %s the state directory "
			"'%s'\n", layer_mode_name(opt->layers[i].mode), src,
			how, state);
		r = -1;
	}
	free(state);
	return r;
}

/* The cow layers, in the order given (the first is on top), merged under
** the upper's root. */
static int make_union(void)
{
	struct ws_layer *lowers[UNION_MAX - 1];
	size_t n = 0;
	char err[256];

	for (size_t i = 0; i < LM.n; i++) {
		const struct layer_spec *s = &LM.stack[i];
		int fd;

		if (s->mode != LAYER_COW)
			continue;
		if (n == UNION_MAX - 1) {
			fprintf(stderr, "wsfs: too many cow layers (at most %d)\n",
				UNION_MAX - 1);
			return -1;
		}
		fd = open(s->source, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd < 0) {
			fprintf(stderr, "wsfs: layer '%s': %s\n", s->source,
				strerror(errno));
			return -1;
		}
		lowers[n] = itab_cow_layer(fd, err, sizeof(err));
		if (!lowers[n]) {
			fprintf(stderr, "wsfs: layer '%s': %s\n", s->source, err);
			return -1;
		}
		n++;
	}
	if (n && union_make_root(itab_root(), lowers, n) < 0) {
		fprintf(stderr, "wsfs: cannot set up the cow layers\n");
		return -1;
	}
	return 0;
}

static int need_scratch(const struct ws_options *opt)
{
	for (size_t i = 0; i < opt->nlayers; i++)
		if (opt->layers[i].mode == LAYER_EPHEMERAL)
			return 1;
	return 0;
}

/* The whole upper is scratch target 0. */
static int make_scratch_upper(struct ws_options *opt)
{
	char *path;
	int fd = scratch_make_target(LM.scratch, 0);

	if (fd < 0) {
		fprintf(stderr, "wsfs: making the ephemeral upper: %s\n",
			strerror(-fd));
		return -1;
	}
	close(fd);
	if (asprintf(&path, "%s/0", scratch_path(LM.scratch)) < 0) {
		fprintf(stderr, "wsfs: out of memory\n");
		return -1;
	}
	free(opt->upper);
	opt->upper = path;
	LM.whole_ephemeral = 1;
	return 0;
}

int lmount_prepare(struct registry *reg, struct ws_options *opt)
{
	char err[PATH_MAX + 256];

	sweep(opt);
	if (settle_stack(reg, opt) < 0 || refuse_state_dir(opt) < 0)
		return -1;
	if (layer_stack_mountable(opt->layers, opt->nlayers, err,
				  sizeof(err)) < 0) {
		fprintf(stderr, "wsfs: %s\n", err);
		return -1;
	}
	LM.stack = opt->layers;
	LM.n = opt->nlayers;
	if (!need_scratch(opt))
		return 0;
	if (scratch_open(opt->state, opt->name, &LM.scratch, err,
			 sizeof(err)) < 0) {
		fprintf(stderr, "wsfs: %s\n", err);
		return -1;
	}
	for (size_t i = 0; i < opt->nlayers; i++)
		if (is_whole_ephemeral(&opt->layers[i]))
			return make_scratch_upper(opt);
	return 0;
}

/* One step down TARGET from DIRFD: the directory COMP, made if missing. */
static int step_into(int dirfd, const char *comp, int *made)
{
	int fd = openat(dirfd, comp, O_PATH | O_DIRECTORY | O_NOFOLLOW |
			O_CLOEXEC);

	if (fd >= 0 || errno != ENOENT)
		return fd < 0 ? -errno : fd;
	if (mkdirat(dirfd, comp, 0755) < 0 && errno != EEXIST)
		return -errno;
	*made += 1;
	fd = openat(dirfd, comp, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

/* The upper directory at TARGET, made with its missing parents; *MADE
** counts the directories made. Never follows a symlink: a target whose
** path crosses one in the upper is refused. */
static int open_point(const char *target, struct stat *st, int *made)
{
	struct ws_inode *root = itab_root();
	char path[LAYER_TARGET_MAX + 1], *comp, *save = NULL;
	int root_fd = inode_fd(root), fd, next;

	if (root_fd < 0)
		return root_fd;
	fd = dup(root_fd);
	inode_fd_put(root);
	if (fd < 0)
		return -errno;
	snprintf(path, sizeof(path), "%s", target);
	for (comp = strtok_r(path, "/", &save); comp;
	     comp = strtok_r(NULL, "/", &save)) {
		next = step_into(fd, comp, made);
		close(fd);
		if (next < 0)
			return next;
		fd = next;
	}
	if (fstat(fd, st) < 0) {
		int e = errno;

		close(fd);
		return -e;
	}
	close(fd);
	return 0;
}

static int open_root(size_t i, const struct layer_spec *s)
{
	int fd;

	if (s->mode == LAYER_EPHEMERAL)
		return scratch_make_target(LM.scratch, (unsigned int)i + 1);
	fd = open(s->source, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

static int graft_one(size_t i, const struct layer_spec *s)
{
	char err[256];
	struct stat st;
	int made = 0, fd, r;

	r = open_point(s->target, &st, &made);
	if (made)
		ledger_force(made * charge_bytes(S_IFDIR, 0), (uint64_t)made);
	if (r < 0) {
		fprintf(stderr, "wsfs: layer target '%s': %s in the upper\n",
			s->target, r == -ENOTDIR || r == -ELOOP ?
			"a part of it is not a directory" : strerror(-r));
		return -1;
	}
	fd = open_root(i, s);
	if (fd < 0) {
		fprintf(stderr, "wsfs: layer '%s' at '%s': %s\n",
			s->source ? s->source : "(scratch)", s->target,
			strerror(-fd));
		return -1;
	}
	LM.grafts[i] = itab_graft(fd, s->mode != LAYER_RO, st.st_dev,
				  st.st_ino, err, sizeof(err));
	if (!LM.grafts[i]) {
		fprintf(stderr, "wsfs: layer at '%s': %s\n", s->target, err);
		return -1;
	}
	LM.grafts[i]->scratch = s->mode == LAYER_EPHEMERAL;
	LM.grafts[i]->shared = s->mode == LAYER_SHARED;
	LM.grafts[i]->target = s->target;
	return 0;
}

int lmount_graft(const struct ws_options *opt)
{
	(void)opt;
	if (LM.whole_ephemeral)
		itab_upper()->scratch = 1;
	if (LM.n == 0)
		return 0;
	LM.grafts = calloc(LM.n, sizeof(*LM.grafts));
	if (!LM.grafts) {
		fprintf(stderr, "wsfs: out of memory\n");
		return -1;
	}
	for (size_t i = 0; i < LM.n; i++)
		if (!is_whole_ephemeral(&LM.stack[i]) &&
		    LM.stack[i].mode != LAYER_COW &&
		    graft_one(i, &LM.stack[i]) < 0)
			return -1;
	return make_union();
}

static void status_ephemeral(FILE *out, size_t i, const struct layer_spec *s)
{
	struct ws_layer *l = is_whole_ephemeral(s) ? itab_upper() : LM.grafts[i];
	struct scan_result res;
	char err[256];

	memset(&res, 0, sizeof(res));
	if (l && quota_measure(l->mount_fd, &res, err, sizeof(err)) < 0)
		ws_log("measuring ephemeral %s: %s", s->target, err);
	fprintf(out, "ephemeral.%zu %s %" PRIu64 " %" PRIu64 "\n", i, s->target,
		res.bytes, res.inodes);
}

void lmount_status(FILE *out)
{
	for (size_t i = 0; i < LM.n; i++) {
		const struct layer_spec *s = &LM.stack[i];

		if (s->mode == LAYER_EPHEMERAL)
			status_ephemeral(out, i, s);
		else
			fprintf(out, "layer.%zu %s %s %s\n", i,
				layer_mode_name(s->mode), s->target, s->source);
	}
}

/* The wipe reports each inode whose last link went; its xattrs' charge is
** in the table under the scratch key. */
static void give_back_xattrs(dev_t dev, ino_t ino, void *arg)
{
	uint64_t *bytes = arg;
	struct ws_layer tag = { .scratch = 1 };

	(void)dev;
	*bytes += xcharge_take(account_xattr_key(&tag, ino));
}

/* The wipe goes on the audit chain: what scratch held when it ended. */
static void wipe_audit(const struct wipe_result *res, int r)
{
	char detail[128];

	snprintf(detail, sizeof(detail), "files=%" PRIu64 " dirs=%" PRIu64 "%s%s",
		 res->files, res->dirs, r < 0 ? " incomplete=" : "",
		 r < 0 ? audit_errname(r) : "");
	audit_daemon_event("wipe", "", (int64_t)res->bytes, detail);
}

void lmount_stop(int charged)
{
	struct wipe_result res;
	struct timespec t0, t1;
	uint64_t xattr_bytes = 0;
	int r;

	free(LM.grafts);
	LM.grafts = NULL;
	if (!LM.scratch)
		return;
	memset(&res, 0, sizeof(res));
	clock_gettime(CLOCK_MONOTONIC, &t0);
	r = scratch_wipe_close(LM.scratch, &res, give_back_xattrs, &xattr_bytes);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	LM.scratch = NULL;
	if (charged)
		ledger_release(res.charge_bytes + xattr_bytes, res.charge_inodes);
	wipe_audit(&res, r);
	ws_log("ephemeral scratch wiped: %" PRIu64 " files, %" PRIu64
	       " directories, %" PRIu64 " bytes in %.3f s%s%s", res.files,
	       res.dirs, res.bytes, (double)(t1.tv_sec - t0.tv_sec) +
	       (double)(t1.tv_nsec - t0.tv_nsec) / 1e9,
	       r < 0 ? "; incomplete: " : "", r < 0 ? strerror(-r) : "");
}
