/*
** Declared workspaces: the definitions `wsctl create`, `set`, `edit` and
** `apply` keep in state.db, and `wsctl mount` starts a daemon from.
**
** A definition is spread over three tables on purpose.  The `workspaces`
** row holds what only wsctl uses (upper, mountpoint, audit level, extra
** mount options).  The layer stack lives in the `layers` rows the daemon
** already reads when it is mounted without -o layer= (fs/layerspec.c), and
** the limits in the `quotas` row the daemon enforces (quota/qstore.c), so a
** definition and a running daemon can never hold two different copies of
** either.  wsdef_put() writes all three in one transaction.
**
** Names of declared workspaces are stricter than the daemon's: ASCII
** letters, digits, '.', '_' and '-', not starting with '.' or '-', at most
** WS_NAME_MAX bytes, so a name is also a safe file name, systemd instance
** name and Prometheus label value without escaping.
*/
#ifndef WSFS_WSCTL_WSDEF_H
#define WSFS_WSCTL_WSDEF_H

#include <stddef.h>
#include <stdint.h>

#include "layerspec.h"
#include "qlimits.h"
#include "registry.h"

struct ws_def {
	char name[WS_NAME_MAX + 1];
	char *upper;		/* real absolute path; NULL: all ephemeral */
	char *mountpoint;	/* absolute path; NULL: the default */
	char *audit;		/* "off", "meta", "full"; NULL: daemon default */
	char *options;		/* extra -o options, comma-separated; NULL: none */
	struct layer_spec *layers;	/* in stack order */
	size_t nlayers;
	struct quota_limits lim;
	int64_t created;	/* epoch seconds; filled by wsdef_get/list */
	int64_t updated;
};

/* Returns 1 if NAME is a valid declared-workspace name, else 0 with the
** reason in ERR ("invalid workspace name '...': ..."). */
int wsdef_name_ok(const char *name, char *err, size_t errlen);

/* An empty definition named NAME: no upper, no layers, no limits. */
void wsdef_init(struct ws_def *d, const char *name);

/* Frees what D owns and leaves it empty (safe to call twice). */
void wsdef_free(struct ws_def *d);

/* A deep copy of SRC into DST; -ENOMEM. */
int wsdef_copy(struct ws_def *dst, const struct ws_def *src);

/* NAME's definition; -ENOENT if NAME was never declared. */
int wsdef_get(struct registry *reg, const char *name, struct ws_def *out);

/* Every definition, sorted by name; free each and the array with
** wsdef_free_list. */
int wsdef_list(struct registry *reg, struct ws_def **out, size_t *n);
void wsdef_free_list(struct ws_def *defs, size_t n);

/* Writes D whole: its row, its layer stack and its quota limits (the
** ledger columns of an existing quota row are kept).  CREATE: -EEXIST if
** the name is already declared. */
int wsdef_put(struct registry *reg, const struct ws_def *d, int create);

/* Removes NAME's definition, layer stack and quota row.  -ENOENT if it is
** not declared.  The audit records stay: the log is append-only. */
int wsdef_delete(struct registry *reg, const char *name);

/* The mountpoint D is mounted at by default: D's own, else
** <state>/run/mnt/<name>. */
int wsdef_mountpoint(const struct registry *reg, const struct ws_def *d,
		     char *buf, size_t len);

#endif
