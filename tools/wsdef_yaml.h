/*
** Workspace definitions as YAML: the file `wsctl apply -f` reads and
** `wsctl edit` writes and reads back.  wsfs.conf(5) is the format's
** reference.
**
** Parsing and emitting only: nothing here opens state.db, talks to a
** daemon or prints, so the whole file can be judged before anything is
** changed, and tests can drive it directly.
*/
#ifndef WSFS_WSCTL_WSDEF_YAML_H
#define WSFS_WSCTL_WSDEF_YAML_H

#include <stddef.h>
#include <stdio.h>

#include "wsdef.h"

/* Files larger than this are refused before parsing: a definition file
** of thousands of workspaces is a few MiB, and libyaml keeps the whole
** document in memory. */
#define WSDEF_YAML_MAX (16u << 20)

/* Where a workspace's name was written, 1-based. */
struct wsdef_yaml_pos {
	unsigned long line, col;
};

/* The workspaces of one file, in file order. */
struct wsdef_yaml_doc {
	struct ws_def *defs;
	struct wsdef_yaml_pos *at;	/* at[i]: where defs[i]'s name is */
	size_t n;
};

/*
** Parses LEN bytes at TEXT, read from the file FNAME (used in messages
** only).  Every workspace is checked as far as can be without state.db:
** its keys, types and values, its layer stack (with the daemon's rules),
** and that no two workspaces share a name, an upper or a mountpoint.
** Returns 0, or -1 with one line "FNAME:LINE:COL: message" in ERR (the
** first problem found), or -ENOMEM.  Free the result with
** wsdef_yaml_doc_free.
*/
int wsdef_yaml_parse(const char *text, size_t len, const char *fname,
		     struct wsdef_yaml_doc *out, char *err, size_t errlen);

void wsdef_yaml_doc_free(struct wsdef_yaml_doc *doc);

/* Reads all of IN (at most WSDEF_YAML_MAX bytes) into a malloc'd,
** NUL-terminated buffer.  Returns 0, -EFBIG or -errno. */
int wsdef_yaml_slurp(FILE *in, char **text, size_t *len);

/*
** Writes DEFS[0..N) to OUT as one document that wsdef_yaml_parse reads
** back into the same definitions.  Returns 0, or -1 with the reason in
** ERR.
*/
int wsdef_yaml_emit(FILE *out, const struct ws_def *defs, size_t n,
		    char *err, size_t errlen);

#endif
