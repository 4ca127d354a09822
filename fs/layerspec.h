/*
** What a workspace is stacked from: the -o layer= and -o ephemeral= values,
** checked, normalised, and kept with the workspace in state.db.
**
** A layer is SOURCE:TARGET[:MODE].  SOURCE is a directory on the host,
** resolved to its real absolute path at parse time so that a later rename
** of a symlink on the way cannot change what the workspace shows.  TARGET is
** where it appears inside the workspace, written as an absolute path; it is
** normalised (repeated and trailing slashes dropped) and may not contain
** "." or ".." components, so it cannot name anything outside the workspace.
** An ephemeral target has no source: its scratch directory is made under
** the state directory by the daemon at each mount.
**
** This file belongs to libwsstate, so wsctl can read the stored stack
** without linking libfuse.
*/
#ifndef WSFS_LAYERSPEC_H
#define WSFS_LAYERSPEC_H

#include <stddef.h>

enum layer_mode {
	LAYER_RO,		/* read-only input: every change is EROFS */
	LAYER_COW,		/* base tree under the upper, copied up on change */
	LAYER_EPHEMERAL,	/* scratch under the state dir, wiped at unmount */
	LAYER_SHARED,		/* read-write, mounted by several workspaces at once */
};

struct layer_spec {
	enum layer_mode mode;
	char *source;		/* real absolute path; NULL for ephemeral */
	char *target;		/* "/" or "/a/b": no ".", "..", "//", trailing "/" */
};

/* The longest TARGET accepted, in bytes. */
#define LAYER_TARGET_MAX 1024

/* The mode's name as written in options and shown by wsctl. */
const char *layer_mode_name(enum layer_mode mode);

/* Parses one -o layer=TEXT value ("SOURCE:TARGET[:MODE]", MODE "ro" by
** default or "cow"). SOURCE must exist and be a directory. Returns 0, or
** -1 with a one-line reason in ERR ("layer '...': ..."). OUT's strings are
** malloc'd; free with layer_spec_free. */
int layer_spec_parse(const char *text, struct layer_spec *out, char *err,
		     size_t errlen);

/* Parses one -o ephemeral[=TARGET] value; TEXT NULL or "" means the whole
** workspace ("/"). */
int layer_spec_parse_ephemeral(const char *text, struct layer_spec *out,
			       char *err, size_t errlen);

/* Parses one -o shared=TEXT value ("SOURCE:TARGET"): a directory that
** several workspaces mount read-write at once. As for layers, SOURCE must
** be a directory and TARGET may not be "/". */
int layer_spec_parse_shared(const char *text, struct layer_spec *out,
			    char *err, size_t errlen);

/* Checks a whole stack, in the order given, against each other and against
** the upper directory UPPER (NULL when the upper is itself ephemeral):
**  - an ro or shared target may not be "/";
**  - two targets may not be equal or nested, except that several cow
**    layers may share one target;
**  - only one ephemeral "/" and then no upper, and no other layer at "/"
**    except cow ones;
**  - no source may be the upper, inside it, or contain it;
**  - no ro or cow source may be a shared source, inside it, or contain it
**    (it would cache what the shared directory changes).
** Returns 0 or -1 with a one-line reason in ERR. */
int layer_stack_check(const struct layer_spec *v, size_t n, const char *upper,
		      char *err, size_t errlen);

/* An absolute path TEXT with repeated and trailing slashes dropped into
** *OUT (malloc'd); refuses relative paths, control bytes, "." and ".."
** components and components over NAME_MAX.  Returns 0, -ENOMEM, or
** -EINVAL with the reason, to follow "'TEXT' ", in WHY.  A NUL cannot occur
** inside a C string, so the control-byte test covers every byte that could
** end a path early or split a line. */
int layer_path_normalise(const char *text, char **out, char *why,
			 size_t whylen);

/* Whether INNER is OUTER or below it, by whole components ("/a/b" is
** within "/a", "/ab" is not); both absolute and normalised. */
int layer_path_within(const char *inner, const char *outer);

/* What this release can mount of a stack that passed layer_stack_check:
** cow layers at "/" only (unions elsewhere are not built yet).  Returns 0
** or -1 with a one-line reason in ERR. */
int layer_stack_mountable(const struct layer_spec *v, size_t n, char *err,
			  size_t errlen);

void layer_spec_free(struct layer_spec *s);
void layer_stack_free(struct layer_spec *v, size_t n);

struct registry;

/* Replaces the stored stack of workspace NAME with V[0..N). */
int registry_set_layers(struct registry *reg, const char *name,
			const struct layer_spec *v, size_t n, char *err,
			size_t errlen);

/* The statements of registry_set_layers without its checks and its
** transaction, for a caller that writes more in the same transaction
** (wsctl's definitions).  Returns an SQLite result code. */
struct sqlite3;
int layer_stack_write_db(struct sqlite3 *db, const char *name,
			 const struct layer_spec *v, size_t n);

/* The stored stack of NAME, in order; *OUT is NULL and *N 0 if none is
** stored. Free with layer_stack_free. Returns 0 or -errno with ERR. */
int registry_get_layers(struct registry *reg, const char *name,
			struct layer_spec **out, size_t *n, char *err,
			size_t errlen);

#endif
