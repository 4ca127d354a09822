/*
** The checks a definition passes before it is stored (wsdef_check.h).
**
** They repeat, on purpose, the ones the daemon makes at mount: an operator
** who declares a workspace wants the mistake reported by `create` or
** `apply`, with the field named, not by a mount an hour later.  The layer
** rules are literally the daemon's (layer_stack_check), so the two cannot
** drift; the rest concern fields only a definition has.
*/
#include "wsdef_check.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "wsctl.h"

/* Options with a field of their own in a definition, or that would give
** a second identity to the mount (name, state). */
static const char *const reserved_options[] = {
	"name", "upper", "state", "layer", "shared", "ephemeral", "audit",
	"quota_bytes", "quota_inodes", "quota_soft_bytes", "quota_soft_inodes",
	"quota_grace", "quota_warn", "fsname", "subtype",
};

int wsdef_option_ok(const char *opt, char *err, size_t errlen)
{
	size_t i, keylen = strcspn(opt, "=");
	const unsigned char *p;

	if (*opt == '\0') {
		snprintf(err, errlen, "empty mount option");
		return 0;
	}
	for (p = (const unsigned char *)opt; *p != '\0'; p++) {
		if (*p <= ' ' || *p == ',' || *p == 0x7f) {
			snprintf(err, errlen, "mount option '%s': no spaces, "
				 "commas or control characters", opt);
			return 0;
		}
	}
	for (i = 0; i < sizeof(reserved_options) / sizeof(reserved_options[0]);
	     i++) {
		if (strlen(reserved_options[i]) == keylen &&
		    strncmp(opt, reserved_options[i], keylen) == 0) {
			snprintf(err, errlen, "mount option '%s' has a "
				 "setting of its own; use that instead", opt);
			return 0;
		}
	}
	return 1;
}

static int check_options(const char *options, char *err, size_t errlen)
{
	char *copy, *item, *save = NULL;
	int ok = 1;

	if (options == NULL)
		return 1;
	copy = strdup(options);
	if (copy == NULL) {
		snprintf(err, errlen, "out of memory");
		return 0;
	}
	if (options[0] == '\0' || options[strlen(options) - 1] == ',' ||
	    strstr(options, ",,") != NULL || options[0] == ',') {
		snprintf(err, errlen, "empty mount option in '%s'", options);
		ok = 0;
	}
	for (item = strtok_r(copy, ",", &save); ok && item != NULL;
	     item = strtok_r(NULL, ",", &save))
		ok = wsdef_option_ok(item, err, errlen);
	free(copy);
	return ok;
}

static int check_upper(const struct registry *reg, const struct ws_def *d,
		       char *err, size_t errlen)
{
	const char *state = registry_dir(reg);
	char real_state[PATH_MAX];
	struct stat st;

	if (d->upper == NULL)
		return 1;
	if (d->upper[0] != '/') {
		snprintf(err, errlen, "upper '%s' is not an absolute path",
			 d->upper);
		return 0;
	}
	/* A missing upper is made when the definition is stored. */
	if (stat(d->upper, &st) != 0) {
		if (errno != ENOENT) {
			snprintf(err, errlen, "upper '%s': %s", d->upper,
				 strerror(errno));
			return 0;
		}
	} else if (!S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "upper '%s' is not a directory", d->upper);
		return 0;
	}
	if (realpath(state, real_state) == NULL)
		snprintf(real_state, sizeof(real_state), "%s", state);
	if (layer_path_within(d->upper, real_state) ||
	    layer_path_within(real_state, d->upper)) {
		snprintf(err, errlen, "upper '%s' and the state directory '%s' "
			 "may not lie inside one another: the agent would "
			 "reach the audit key and every quota", d->upper, state);
		return 0;
	}
	return 1;
}

static int check_mountpoint(const struct ws_def *d, char *err, size_t errlen)
{
	size_t i;

	if (d->mountpoint == NULL)
		return 1;
	if (d->mountpoint[0] != '/' || strstr(d->mountpoint, "/../") ||
	    strstr(d->mountpoint, "/./")) {
		snprintf(err, errlen, "mountpoint '%s' must be an absolute "
			 "path without '.' or '..'", d->mountpoint);
		return 0;
	}
	if (d->upper != NULL && layer_path_within(d->mountpoint, d->upper)) {
		snprintf(err, errlen, "mountpoint '%s' lies inside the upper "
			 "'%s'", d->mountpoint, d->upper);
		return 0;
	}
	for (i = 0; i < d->nlayers; i++) {
		if (d->layers[i].source != NULL &&
		    layer_path_within(d->mountpoint, d->layers[i].source)) {
			snprintf(err, errlen, "mountpoint '%s' lies inside "
				 "layer source '%s'", d->mountpoint,
				 d->layers[i].source);
			return 0;
		}
	}
	return 1;
}

static int check_audit(const char *audit, char *err, size_t errlen)
{
	if (audit == NULL || strcmp(audit, "off") == 0 ||
	    strcmp(audit, "meta") == 0 || strcmp(audit, "full") == 0)
		return 1;
	snprintf(err, errlen, "audit level '%s': use off, meta or full", audit);
	return 0;
}

static int whole_ephemeral(const struct ws_def *d)
{
	size_t i;

	for (i = 0; i < d->nlayers; i++) {
		if (d->layers[i].mode == LAYER_EPHEMERAL &&
		    strcmp(d->layers[i].target, "/") == 0)
			return 1;
	}
	return 0;
}

int wsdef_check_msg(const struct registry *reg, const struct ws_def *d,
		    char *err, size_t errlen)
{
	if (!wsdef_name_ok(d->name, err, errlen))
		return -1;
	if (d->upper == NULL && !whole_ephemeral(d)) {
		snprintf(err, errlen, "workspace '%s' needs an upper directory, "
			 "or to be all scratch (ephemeral at /)", d->name);
		return -1;
	}
	if (!check_upper(reg, d, err, errlen) ||
	    !check_mountpoint(d, err, errlen) ||
	    !check_audit(d->audit, err, errlen) ||
	    !check_options(d->options, err, errlen))
		return -1;
	if (layer_stack_check(d->layers, d->nlayers, d->upper, err, errlen) < 0)
		return -1;
	return layer_stack_mountable(d->layers, d->nlayers, err, errlen);
}

int wsdef_check(const struct registry *reg, const struct ws_def *d)
{
	char err[PATH_MAX * 2 + 256];

	if (wsdef_check_msg(reg, d, err, sizeof(err)) == 0)
		return WSCTL_OK;
	wsctl_err("%s", err);
	return WSCTL_USAGE;
}
