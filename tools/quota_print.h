/*
** Rendering quota views for `wsctl quota`: the lines of `show`, the table of
** `ls`, and the JSON of both.
*/
#ifndef WSFS_WSCTL_QUOTA_PRINT_H
#define WSFS_WSCTL_QUOTA_PRINT_H

#include <stddef.h>

#include "quota_view.h"

/* Prints one workspace's quota, as lines for people or as a JSON object. */
void qview_print(const struct qview *v, int json);

/* Prints N workspaces' quotas as a table or a JSON array.  Returns an exit
** status (the table needs memory). */
int qview_print_list(const struct qview *v, size_t n, int json);

#endif
