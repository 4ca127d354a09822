/*
** Bringing a stored definition to a wanted one: the common end of `wsctl
** create`, `set`, `edit` and `apply`.
**
** The change is computed field by field, printed, and (unless dry-running)
** stored.  Quota limits reach a mounted workspace's daemon at once, over its
** control socket, exactly as `wsctl quota set` does; the upper, mountpoint,
** audit level, options and layer stack take effect at the next mount, and
** the printed line says so.
*/
#ifndef WSFS_WSCTL_WSDEF_CHANGE_H
#define WSFS_WSCTL_WSDEF_CHANGE_H

#include <stdio.h>

#include "wsctl.h"
#include "wsdef.h"

enum {
	WSDEF_DRY_RUN = 1 << 0,	/* print, change nothing */
	WSDEF_CREATE_ONLY = 1 << 1,	/* an existing name is WSCTL_EXISTS */
	WSDEF_UPDATE_ONLY = 1 << 2,	/* an unknown name is WSCTL_NOENT */
};

/*
** Checks WANT (name, upper, layer stack against each other and the upper,
** the state directory not inside any of them) and makes the stored
** definition of WANT->name equal to it.  Prints to OUT one line per change:
**   "create NAME"                 (then one indented line per field set)
**   "update NAME: FIELD OLD -> NEW [(live)|(at next mount)]"
**   "unchanged NAME"
** With WSDEF_DRY_RUN the lines start "would " and nothing is written.
** Returns a WSCTL_* exit status, having reported any error itself.
*/
int wsdef_converge(const struct wsctl *ctx, struct registry *reg,
		   const struct ws_def *want, unsigned int flags, FILE *out);

#endif
