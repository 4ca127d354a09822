/*
** Whether a wanted definition can be stored: the checks `wsctl create`,
** `set`, `edit` and `apply` all make before anything is written.
*/
#ifndef WSFS_WSCTL_WSDEF_CHECK_H
#define WSFS_WSCTL_WSDEF_CHECK_H

#include "wsdef.h"

/* Checks D against the rules in wsctl(8): name, upper, mountpoint, audit
** level, options and the layer stack.  Returns WSCTL_OK, or WSCTL_USAGE
** after reporting the first problem on one line. */
int wsdef_check(const struct registry *reg, const struct ws_def *d);

/* The same checks, with the first problem's one-line reason put in ERR
** instead of printed: 0, or -1. */
int wsdef_check_msg(const struct registry *reg, const struct ws_def *d,
		    char *err, size_t errlen);

/* Whether OPT (one -o option, without commas) may be stored as an extra
** option: 1, or 0 with the reason in ERR.  The options a definition has
** fields for (name, upper, layer, quota_bytes...) are refused, so a
** definition never holds two values for one setting. */
int wsdef_option_ok(const char *opt, char *err, size_t errlen);

#endif
