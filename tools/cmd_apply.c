/*
** wsctl apply -f FILE [--dry-run]: declare or update every workspace a
** YAML file describes (the format is wsfs.conf(5), parsed by wsdef_yaml.c).
**
** All or nothing, as far as checking can make it so: the whole file is
** parsed and every workspace checked (by the parser, then by wsdef_check
** against the state directory) before the first one is converged.  A
** converge can still fail later for reasons no check can see (a full
** disk, a daemon refusing a limit); apply then goes on with the others,
** since each workspace is stored in its own transaction anyway, and exits
** with the first failure's status.
**
** Apply never deletes: a workspace missing from the file is left as it
** is.  Files are often split per team or generated per host, and deleting
** what one file does not mention would let the wrong file remove another
** team's workspaces and their uppers' meaning with them.
*/
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wsctl.h"
#include "wsdef_change.h"
#include "wsdef_check.h"
#include "wsdef_yaml.h"

/* `wsctl help apply`; wired into the command table in wsctl.c. */
const char wsctl_apply_details[] =
	"FILE ('-': standard input) is YAML, described in wsfs.conf(5):\n"
	"\n"
	"  workspaces:\n"
	"    agent1:\n"
	"      upper: /srv/ws/agent1\n"
	"      quota: {bytes: 10G, inodes: 100k}\n"
	"      volumes:\n"
	"        - /data/docs:/input          # SRC:TARGET[:ro|cow|shared|rw]\n"
	"        - {type: tmpfs, target: /tmp}\n"
	"\n"
	"The whole file is checked first: one error (FILE:LINE:COL, status 8)\n"
	"changes nothing.  Workspaces not in the file are left alone.\n"
	"  --dry-run    print what would change, change nothing\n";

struct apply_args {
	const char *file;
	int dry_run;
};

static int take_file(struct apply_args *a, const char *val)
{
	if (a->file != NULL)
		return wsctl_usage_err("apply", "option '-f' given twice");
	if (val == NULL || *val == '\0' || (val[0] == '-' && val[1] != '\0'))
		return wsctl_usage_err("apply", "option '-f' needs a file (or "
				       "'-' for standard input)");
	a->file = val;
	return 0;
}

static int parse_args(int argc, char **argv, struct apply_args *a)
{
	const char *arg;
	int i, rc = 0;

	for (i = 1; i < argc && rc == 0; i++) {
		arg = argv[i];
		if (strcmp(arg, "-f") == 0 || strcmp(arg, "--file") == 0) {
			rc = take_file(a, i + 1 < argc ? argv[++i] : NULL);
		} else if (strncmp(arg, "--file=", 7) == 0) {
			rc = take_file(a, arg + 7);
		} else if (strncmp(arg, "-f", 2) == 0) {
			rc = take_file(a, arg + 2);
		} else if (strcmp(arg, "--dry-run") == 0) {
			if (a->dry_run)
				rc = wsctl_usage_err("apply", "option "
						     "'--dry-run' given twice");
			a->dry_run = 1;
		} else if (strcmp(arg, "-h") == 0 ||
			   strcmp(arg, "--help") == 0) {
			char *help_argv[] = { "help", "apply", NULL };

			(void)cmd_help(NULL, 2, help_argv);
			return -1;
		} else if (arg[0] == '-') {
			rc = wsctl_usage_err("apply", "unknown option '%s'",
					     arg);
		} else {
			rc = wsctl_usage_err("apply", "unexpected argument "
					     "'%s'", arg);
		}
	}
	if (rc == 0 && a->file == NULL)
		rc = wsctl_usage_err("apply", "missing -f FILE");
	return rc;
}

/* The file's bytes; "-" is standard input.  Reports its own errors. */
static int read_file(const char *file, char **text, size_t *len)
{
	FILE *in = strcmp(file, "-") == 0 ? stdin : fopen(file, "r");
	int rc;

	if (in == NULL) {
		wsctl_err("cannot read %s: %s", file, strerror(errno));
		return WSCTL_ERR;
	}
	rc = wsdef_yaml_slurp(in, text, len);
	if (in != stdin)
		(void)fclose(in);
	if (rc == -EFBIG) {
		wsctl_err("%s: larger than %u MiB; split it", file,
			  WSDEF_YAML_MAX >> 20);
		return WSCTL_BADFILE;
	}
	if (rc < 0) {
		wsctl_err("cannot read %s: %s", file, strerror(-rc));
		return WSCTL_ERR;
	}
	return WSCTL_OK;
}

static int open_state(const struct wsctl *ctx, int dry_run,
		      struct registry **reg)
{
	char err[PATH_MAX + 128];

	/* A dry run must leave the state directory exactly as it was. */
	if (dry_run)
		return wsctl_open_registry(ctx, reg);
	if (registry_open(ctx->state_dir, 1, reg, err, sizeof(err)) < 0) {
		wsctl_err("%s", err);
		return WSCTL_ERR;
	}
	return WSCTL_OK;
}

static int converge_all(const struct wsctl *ctx, struct registry *reg,
			const char *shown, const struct wsdef_yaml_doc *doc,
			int dry_run)
{
	unsigned int flags = dry_run ? WSDEF_DRY_RUN : 0;
	char err[PATH_MAX * 2 + 256];
	int rc, first = WSCTL_OK;
	size_t i;

	/* What the parser cannot know (the state directory) is checked for
	** every workspace before the first is touched. */
	for (i = 0; i < doc->n; i++) {
		if (wsdef_check_msg(reg, &doc->defs[i], err, sizeof(err)) < 0) {
			wsctl_err("%s:%lu:%lu: %s", shown, doc->at[i].line,
				  doc->at[i].col, err);
			return WSCTL_BADFILE;
		}
	}
	for (i = 0; i < doc->n; i++) {
		rc = wsdef_converge(ctx, reg, &doc->defs[i], flags, stdout);
		if (rc != WSCTL_OK && first == WSCTL_OK)
			first = rc;
	}
	return first;
}

int cmd_apply(const struct wsctl *ctx, int argc, char **argv)
{
	struct apply_args a = { NULL, 0 };
	struct wsdef_yaml_doc doc;
	struct registry *reg = NULL;
	char err[PATH_MAX * 2 + 512], *text = NULL;
	const char *shown;
	size_t len;
	int rc;

	rc = parse_args(argc, argv, &a);
	if (rc != 0)
		return rc < 0 ? WSCTL_OK : rc;
	rc = read_file(a.file, &text, &len);
	if (rc != WSCTL_OK)
		return rc;
	shown = strcmp(a.file, "-") == 0 ? "<stdin>" : a.file;
	rc = wsdef_yaml_parse(text, len, shown, &doc, err, sizeof(err));
	free(text);
	if (rc == -1) {
		wsctl_err("%s", err);
		return WSCTL_BADFILE;
	}
	if (rc < 0) {
		wsctl_err("cannot parse %s: %s", shown, strerror(-rc));
		return WSCTL_ERR;
	}
	rc = open_state(ctx, a.dry_run, &reg);
	if (rc == WSCTL_OK)
		rc = converge_all(ctx, reg, shown, &doc, a.dry_run);
	registry_close(reg);
	wsdef_yaml_doc_free(&doc);
	return rc;
}
