/*
** wsctl rm NAME [--purge [--yes]]: forget a declared workspace.
**
** A mounted workspace is refused: its daemon holds the quota row and the
** layer stack, and would write them back.  The definition, layer stack and
** quota rows go in one transaction; the audit records stay, since the log
** is append-only, and an "undefine" record is added to them.
**
** --purge also deletes the upper directory, after a yes on the terminal or
** with --yes (a script without a terminal must say --yes; guessing is not
** an option when the answer deletes an agent's work).  The deletion uses
** the ephemeral wipe (fs/scratch.c): descriptors all the way down, never a
** symlink followed and never another filesystem entered, so a link the
** agent planted in its upper cannot point the purge at the host.
*/
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "append.h"
#include "scratch.h"
#include "wsctl.h"
#include "wsdef.h"

const char wsctl_rm_details[] =
	"Refused while the workspace is mounted.  Its audit records stay.\n"
	"\n"
	"Options:\n"
	"  --purge   also delete its upper directory and everything in it\n"
	"  --yes     do not ask (needed without a terminal)\n";

static int confirmed(const char *upper)
{
	char answer[16];

	fprintf(stderr, "delete %s and everything in it? [y/N] ", upper);
	fflush(stderr);
	if (fgets(answer, sizeof(answer), stdin) == NULL)
		return 0;
	return answer[0] == 'y' || answer[0] == 'Y';
}

static int purge_upper(const char *upper)
{
	struct wipe_result res;
	int fd, rc;

	fd = open(upper, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return WSCTL_OK;
		wsctl_err("cannot open the upper %s: %s", upper,
			  strerror(errno));
		return WSCTL_ERR;
	}
	memset(&res, 0, sizeof(res));
	rc = wipe_contents(fd, &res, NULL, NULL);
	close(fd);
	if (rc == 0 && rmdir(upper) < 0)
		rc = -errno;
	if (rc < 0 || res.skipped > 0) {
		wsctl_err("the upper %s was only partly deleted (%llu entries "
			  "left): %s", upper, (unsigned long long)res.skipped,
			  rc < 0 ? strerror(-rc) : "other filesystems inside");
		return WSCTL_ERR;
	}
	printf("deleted %s (%llu files, %llu directories)\n", upper,
	       (unsigned long long)res.files,
	       (unsigned long long)res.dirs + 1);
	return WSCTL_OK;
}

static void record(const struct wsctl *ctx, const char *name, int purged)
{
	struct audit_record r;
	char err[256];

	memset(&r, 0, sizeof(r));
	r.ws = name;
	r.op = "undefine";
	r.detail = purged ? "purge=1" : "purge=0";
	if (audit_append_one(ctx->state_dir, &r, err, sizeof(err)) < 0)
		wsctl_err("warning: '%s' was removed but the removal is not in "
			  "the audit log: %s", name, err);
}

static int check_unmounted(struct registry *reg, const char *name)
{
	struct ws_mount m;

	if (registry_get(reg, name, &m) == 0 && m.live) {
		wsctl_err("workspace '%s' is mounted at %s; unmount it first "
			  "(wsctl umount %s)", name, m.mountpoint, name);
		return WSCTL_MOUNTED;
	}
	return WSCTL_OK;
}

int cmd_rm(const struct wsctl *ctx, int argc, char **argv)
{
	const char *name = NULL;
	int purge = 0, yes = 0, rc;
	const struct wsctl_flag flags[] = {
		{ "--purge", NULL, &purge }, { "--yes", "-y", &yes },
		{ NULL, NULL, NULL },
	};
	struct registry *reg;
	struct ws_def d;

	rc = wsctl_parse_flags(argc, argv, flags, &name, 1, 1);
	if (rc != 0)
		return rc < 0 ? WSCTL_OK : rc;
	if (yes && !purge)
		return wsctl_usage_err("rm", "--yes only goes with --purge");
	rc = wsctl_open_registry(ctx, &reg);
	if (rc != 0)
		return rc;
	rc = wsdef_get(reg, name, &d);
	if (rc < 0) {
		registry_close(reg);
		if (rc != -ENOENT) {
			wsctl_err("cannot read workspace '%s': %s", name,
				  strerror(-rc));
			return WSCTL_ERR;
		}
		wsctl_err("no workspace named '%s'", name);
		return WSCTL_NOENT;
	}
	rc = check_unmounted(reg, name);
	if (rc == WSCTL_OK && purge && d.upper != NULL && !yes) {
		if (!isatty(STDIN_FILENO)) {
			rc = wsctl_usage_err("rm", "--purge deletes %s: confirm "
					     "with --yes when not on a terminal",
					     d.upper);
		} else if (!confirmed(d.upper)) {
			wsctl_err("nothing removed");
			rc = WSCTL_ERR;
		}
	}
	if (rc == WSCTL_OK) {
		rc = wsdef_delete(reg, name);
		if (rc < 0)
			wsctl_err("cannot remove workspace '%s': %s", name,
				  strerror(-rc));
		rc = rc < 0 ? WSCTL_ERR : WSCTL_OK;
	}
	if (rc == WSCTL_OK) {
		record(ctx, name, purge);
		printf("removed %s\n", name);
		if (purge && d.upper != NULL)
			rc = purge_upper(d.upper);
	}
	wsdef_free(&d);
	registry_close(reg);
	return rc;
}
