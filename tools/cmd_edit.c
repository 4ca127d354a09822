/*
** wsctl edit NAME: change a declared workspace in an editor, as `kubectl
** edit` and `crontab -e` do.
**
** The definition is written in the very format `apply` reads (one
** workspace under "workspaces:"), so what an operator learns in one serves
** in the other, and read back by the same parser, so its errors carry the
** temporary file's line numbers.  The file is private (mkstemps, 0600, in
** $TMPDIR) and is kept whenever the edit cannot be applied, and named in
** the message, so a long edit is never lost to a typo.
**
** The editor runs through /bin/sh as git runs it ("$EDITOR" "$@"), so
** EDITOR may carry arguments ("code --wait", "emacs -nw").  While it runs,
** wsctl ignores SIGINT and SIGQUIT as system(3) does: a ^C meant for the
** editor must not kill wsctl and strand the file.
**
** Comparing the bytes before and after decides "unchanged": an editor quit
** without saving changes nothing and says so, without a converge that
** could only report the same.
*/
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "wsctl.h"
#include "wsdef_change.h"
#include "wsdef_yaml.h"

/* `wsctl help edit`; wired into the command table in wsctl.c. */
const char wsctl_edit_details[] =
	"Opens the definition, in the format of `wsctl apply` (wsfs.conf(5)),\n"
	"in $VISUAL, else $EDITOR, else vi, and applies what is saved.  An\n"
	"invalid file is kept in $TMPDIR and named in the error (status 8).\n";

static const char header[] =
	"# Save and quit to apply; quit without saving to change nothing.\n"
	"# Quota changes reach a mounted workspace at once, the rest at its\n"
	"# next mount.  The format is described in wsfs.conf(5).\n";

/* The definition of D as the editor will show it, in *TEXT. */
static int render(const struct ws_def *d, char **text, size_t *len)
{
	char err[256];
	FILE *out;
	int rc;

	out = open_memstream(text, len);
	if (out == NULL) {
		wsctl_err("cannot render workspace '%s': %s", d->name,
			  strerror(errno));
		return WSCTL_ERR;
	}
	fputs(header, out);
	rc = wsdef_yaml_emit(out, d, 1, err, sizeof(err));
	if (fclose(out) != 0 && rc == 0) {
		snprintf(err, sizeof(err), "%s", strerror(errno));
		rc = -1;
	}
	if (rc < 0) {
		wsctl_err("cannot render workspace '%s': %s", d->name, err);
		free(*text);
		*text = NULL;
		return WSCTL_ERR;
	}
	return WSCTL_OK;
}

/* Writes TEXT to a new private file; its name is left in PATH. */
static int write_temp(const char *name, const char *text, size_t len,
		      char *path, size_t pathlen)
{
	const char *dir = getenv("TMPDIR");
	ssize_t w;
	size_t off = 0;
	int fd;

	if (dir == NULL || dir[0] != '/')
		dir = "/tmp";
	if ((size_t)snprintf(path, pathlen, "%s/wsctl-edit-%s-XXXXXX.yaml",
			     dir, name) >= pathlen) {
		wsctl_err("TMPDIR '%s' is too long", dir);
		return WSCTL_ERR;
	}
	fd = mkstemps(path, 5);
	if (fd < 0) {
		wsctl_err("cannot make a file in %s: %s", dir, strerror(errno));
		return WSCTL_ERR;
	}
	while (off < len) {
		w = write(fd, text + off, len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			wsctl_err("cannot write %s: %s", path, strerror(errno));
			(void)close(fd);
			(void)unlink(path);
			return WSCTL_ERR;
		}
		off += (size_t)w;
	}
	if (close(fd) != 0) {
		wsctl_err("cannot write %s: %s", path, strerror(errno));
		(void)unlink(path);
		return WSCTL_ERR;
	}
	return WSCTL_OK;
}

static const char *editor_cmd(void)
{
	const char *e = getenv("VISUAL");

	if (e == NULL || *e == '\0')
		e = getenv("EDITOR");
	return e != NULL && *e != '\0' ? e : "vi";
}

/* Runs the editor on PATH and waits; WSCTL_OK if it exited 0. */
static int run_editor(const char *path)
{
	struct sigaction ign, old_int, old_quit;
	const char *editor = editor_cmd();
	char *script;
	pid_t pid;
	int status, rc = WSCTL_OK;

	if (asprintf(&script, "%s \"$@\"", editor) < 0) {
		wsctl_err("cannot run the editor: %s", strerror(ENOMEM));
		return WSCTL_ERR;
	}
	memset(&ign, 0, sizeof(ign));
	ign.sa_handler = SIG_IGN;
	sigemptyset(&ign.sa_mask);
	(void)sigaction(SIGINT, &ign, &old_int);
	(void)sigaction(SIGQUIT, &ign, &old_quit);
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		(void)sigaction(SIGINT, &old_int, NULL);
		(void)sigaction(SIGQUIT, &old_quit, NULL);
		execl("/bin/sh", "sh", "-c", script, editor, path,
		      (char *)NULL);
		_exit(127);
	}
	if (pid < 0) {
		wsctl_err("cannot run the editor: %s", strerror(errno));
		rc = WSCTL_ERR;
	}
	while (pid > 0 && waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR) {
			wsctl_err("cannot wait for the editor: %s",
				  strerror(errno));
			rc = WSCTL_ERR;
			break;
		}
	}
	(void)sigaction(SIGINT, &old_int, NULL);
	(void)sigaction(SIGQUIT, &old_quit, NULL);
	free(script);
	if (rc == WSCTL_OK && WIFEXITED(status) && WEXITSTATUS(status) != 0) {
		wsctl_err("the editor '%s' exited with status %d; nothing was "
			  "changed", editor, WEXITSTATUS(status));
		rc = WSCTL_ERR;
	} else if (rc == WSCTL_OK && WIFSIGNALED(status)) {
		wsctl_err("the editor '%s' was killed by signal %d; nothing "
			  "was changed", editor, WTERMSIG(status));
		rc = WSCTL_ERR;
	}
	return rc;
}

static int read_back(const char *path, char **text, size_t *len)
{
	FILE *in = fopen(path, "r");
	int rc;

	if (in == NULL) {
		wsctl_err("cannot read %s back: %s; nothing was changed", path,
			  strerror(errno));
		return WSCTL_ERR;
	}
	rc = wsdef_yaml_slurp(in, text, len);
	(void)fclose(in);
	if (rc < 0) {
		wsctl_err("cannot read %s back: %s; nothing was changed", path,
			  rc == -EFBIG ? "it is too large" : strerror(-rc));
		return rc == -EFBIG ? WSCTL_BADFILE : WSCTL_ERR;
	}
	return WSCTL_OK;
}

/* Parses the edited file; the one workspace, still named NAME, in *DOC. */
static int parse_edit(const char *path, const char *name, const char *text,
		      size_t len, struct wsdef_yaml_doc *doc)
{
	char err[PATH_MAX * 3 + 512];
	int rc;

	rc = wsdef_yaml_parse(text, len, path, doc, err, sizeof(err));
	if (rc < -1) {
		wsctl_err("cannot parse %s: %s", path, strerror(-rc));
		return WSCTL_ERR;
	}
	if (rc == 0 && doc->n != 1) {
		snprintf(err, sizeof(err), "%s:%lu:%lu: the file must hold "
			 "exactly one workspace, '%s'", path,
			 doc->n > 1 ? doc->at[1].line : 1UL,
			 doc->n > 1 ? doc->at[1].col : 1UL, name);
		rc = -1;
	} else if (rc == 0 && strcmp(doc->defs[0].name, name) != 0) {
		snprintf(err, sizeof(err), "%s:%lu:%lu: the workspace must "
			 "stay named '%s' (edit cannot rename)", path,
			 doc->at[0].line, doc->at[0].col, name);
		rc = -1;
	}
	if (rc == 0)
		return WSCTL_OK;
	wsdef_yaml_doc_free(doc);
	wsctl_err("%s; the edit is kept in %s", err, path);
	return WSCTL_BADFILE;
}

/* Everything after the file is written; PATH is removed unless kept. */
static int edit_file(const struct wsctl *ctx, struct registry *reg,
		     const char *name, const char *path, const char *before,
		     size_t blen)
{
	struct wsdef_yaml_doc doc;
	char *after = NULL;
	size_t alen;
	int rc, keep = 0;

	rc = run_editor(path);
	if (rc == WSCTL_OK)
		rc = read_back(path, &after, &alen);
	if (rc == WSCTL_OK && alen == blen && memcmp(after, before, blen) == 0) {
		printf("unchanged %s\n", name);
	} else if (rc == WSCTL_OK) {
		rc = parse_edit(path, name, after, alen, &doc);
		keep = rc != WSCTL_OK;
		if (rc == WSCTL_OK) {
			rc = wsdef_converge(ctx, reg, &doc.defs[0],
					    WSDEF_UPDATE_ONLY, stdout);
			wsdef_yaml_doc_free(&doc);
			if (rc != WSCTL_OK) {
				keep = 1;
				wsctl_err("the edit is kept in %s", path);
			}
		}
	}
	free(after);
	if (!keep)
		(void)unlink(path);
	return rc;
}

int cmd_edit(const struct wsctl *ctx, int argc, char **argv)
{
	char path[PATH_MAX], err[256], *text = NULL;
	const char *name = NULL;
	struct registry *reg = NULL;
	struct ws_def def;
	size_t len = 0;
	int rc;

	rc = wsctl_parse_args(argc, argv, NULL, &name);
	if (rc != 0)
		return rc < 0 ? WSCTL_OK : rc;
	if (!wsdef_name_ok(name, err, sizeof(err)))
		return wsctl_usage_err("edit", "%s", err);
	rc = wsctl_open_registry(ctx, &reg);
	if (rc != WSCTL_OK)
		return rc;
	rc = wsdef_get(reg, name, &def);
	if (rc == -ENOENT) {
		wsctl_err("no workspace named '%s'", name);
		rc = WSCTL_NOENT;
	} else if (rc < 0) {
		rc = wsctl_registry_err(ctx, rc);
	} else {
		rc = render(&def, &text, &len);
		wsdef_free(&def);
	}
	if (rc == WSCTL_OK)
		rc = write_temp(name, text, len, path, sizeof(path));
	if (rc == WSCTL_OK)
		rc = edit_file(ctx, reg, name, path, text, len);
	free(text);
	registry_close(reg);
	return rc;
}
