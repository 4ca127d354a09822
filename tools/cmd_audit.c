/*
** wsctl audit: the command line of every audit subcommand, and the record
** each one leaves behind.
**
** All subcommands share one option table and one parser, so `--since -2h`
** means the same to search, report and export, and every value is checked
** before audit.db is touched: a bad filter is a usage error (exit 2) with
** one line naming it, never an empty answer.  Options a subcommand does not
** take are refused rather than ignored, and an option given twice is an
** error, as in `quota set`.  Values may start with a single '-' (a
** relative time, "-o -") but never with "--", so a forgotten value does not
** swallow the next option.
**
** Reading the audit trail is itself an auditable event (PCI DSS
** 10.2.1.3).  After a subcommand has run, one record goes to the host chain
** (ws "") with op audit-<subcommand>, the workspace asked about as its
** path and the arguments as its detail.  Only when audit.db already
** existed: a query on a host with no log must not create one, and a usage
** error queried nothing.  A failure to record is reported on stderr but
** does not change the exit status, since the answer has already been given.
*/
#include "audit_cmds.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "append.h"
#include "store.h"
#include "util.h"

#define SYN_SEARCH "audit search [--ws W] [--since T] [--until T] " \
	"[--op OP,...] [--path GLOB] [--uid USER] [--pid N] [--comm NAME] " \
	"[--result R] [--limit N] [--after-seq N | --checkpoint FILE] " \
	"[--format table|jsonl|csv|ocsf]"
#define SYN_REPORT "audit report [--ws W] [--since T] [--until T] " \
	"[--files] [--json]"
#define SYN_EXPORT "audit export -o FILE [--ws W] [--since T] [--until T] " \
	"[--format jsonl|csv|ocsf] [--zstd]"
#define SYN_HEAD "audit head [--ws W]"
#define SYN_KEY "audit key"
#define SYN_AUDIT "audit search|report|export|verify|head|key [OPTIONS]"

const char wsctl_audit_details[] =
	"Commands:\n"
	"  audit search [FILTER...] [--limit N] [--after-seq N | --checkpoint "
	"FILE]\n"
	"               [--format table|jsonl|csv|ocsf]\n"
	"                        find records, oldest first\n"
	"  audit report [--ws W] [--since T] [--until T] [--files] [--json]\n"
	"                        per-workspace summary of what was done\n"
	"  audit export -o FILE [--ws W] [--since T] [--until T]\n"
	"               [--format jsonl|csv|ocsf] [--zstd]\n"
	"                        write records (jsonl: a verifiable bundle)\n"
	"  audit verify [--ws W] [--from SEQ] [--to SEQ] [--pubkey FILE]\n"
	"               [--bundle FILE] [--json]\n"
	"                        check the chains and their signed checkpoints\n"
	"  audit head [--ws W]   the latest signed checkpoint of each chain\n"
	"  audit key             the public key that signs the checkpoints\n"
	"\n"
	"Filters (search; report and export take --ws, --since and --until):\n"
	"  --ws W              one workspace's chain; '' or '(host)' for the\n"
	"                      host's own (wsctl's) events\n"
	"  --since T           records at or after T\n"
	"  --until T           records before T\n"
	"  --op OP,...         these ops only: open, release, create, mkdir,\n"
	"                      mknod, symlink, link, unlink, rmdir, rename,\n"
	"                      setattr, setxattr, removexattr, copy-up,\n"
	"                      whiteout, mount, unmount, wipe, read, write,\n"
	"                      lookup, getattr, getxattr, listxattr, readdir,\n"
	"                      opendir, readlink, fallocate, copy_file_range,\n"
	"                      statfs, quota-set, quota-threshold, audit-start,\n"
	"                      audit-stop, audit-gap, audit-search,\n"
	"                      audit-report, audit-export, audit-verify,\n"
	"                      audit-head, audit-key\n"
	"  --path GLOB         the path or the second path matches GLOB\n"
	"                      (* ? [...], case-sensitive)\n"
	"  --uid USER          the caller's uid, a number or a user name\n"
	"  --pid N             the caller's pid\n"
	"  --comm NAME         the caller's process name, exactly\n"
	"  --result R          ok, denied (EACCES, EPERM, EROFS, EDQUOT),\n"
	"                      failed (any error), or an errno name\n"
	"  --limit N           at most N records\n"
	"  --after-seq N       records after seq N of the --ws chain\n"
	"  --checkpoint FILE   only records newer than the cursor in FILE,\n"
	"                      which is then advanced (incremental pulls)\n"
	"\n"
	"T: ISO 8601 (2026-11-27, 2026-11-27T17:02, 2026-11-27 17:02:30.5Z,\n"
	"...+02:00; without a zone, local time), now, today, yesterday, recent\n"
	"(10 minutes ago), or -N with a unit s, m, h, d or w (-2h).\n"
	"\n"
	"Formats (--format; search: table, export: jsonl by default):\n"
	"  table   aligned columns; backslash as \\\\, unprintable bytes as "
	"\\xNN\n"
	"  jsonl   one JSON object per record; export adds the key and the\n"
	"          checkpoints, making a bundle `audit verify --bundle` checks\n"
	"  csv     RFC 4180 with a header row, text escaped as in table\n"
	"  ocsf    OCSF 1.1 File System Activity (class 1001), one per line\n"
	"\n"
	"Other options:\n"
	"  -o, --output FILE   export: the file to write, - for standard "
	"output\n"
	"  --zstd              export: compress with zstd\n"
	"  --files             report: the files changed and their final state\n"
	"  --json              report, verify: print JSON\n"
	"\n"
	"Every search, report, export, verify, head and key is itself recorded\n"
	"in the host chain.\n";

/* ---- the options ---------------------------------------------------- */

#define BIT(o) (1u << (o))
#define FILTER_OPTS (BIT(AO_WS) | BIT(AO_SINCE) | BIT(AO_UNTIL))

static const struct {
	const char *flag;
	const char *alias;	/* a short form, or NULL */
	int takes_value;
} options[AO_COUNT] = {
	[AO_WS] = { "--ws", NULL, 1 },
	[AO_SINCE] = { "--since", NULL, 1 },
	[AO_UNTIL] = { "--until", NULL, 1 },
	[AO_OP] = { "--op", NULL, 1 },
	[AO_PATH] = { "--path", NULL, 1 },
	[AO_UID] = { "--uid", NULL, 1 },
	[AO_PID] = { "--pid", NULL, 1 },
	[AO_COMM] = { "--comm", NULL, 1 },
	[AO_RESULT] = { "--result", NULL, 1 },
	[AO_LIMIT] = { "--limit", NULL, 1 },
	[AO_AFTER_SEQ] = { "--after-seq", NULL, 1 },
	[AO_CHECKPOINT] = { "--checkpoint", NULL, 1 },
	[AO_FORMAT] = { "--format", NULL, 1 },
	[AO_OUTPUT] = { "--output", "-o", 1 },
	[AO_ZSTD] = { "--zstd", NULL, 0 },
	[AO_FILES] = { "--files", NULL, 0 },
	[AO_JSON] = { "--json", NULL, 0 },
};

struct subcommand {
	const char *name;
	const char *synopsis;
	unsigned opts;		/* BIT(AO_...) of the options it takes */
	int (*run)(const struct wsctl *ctx, struct audit_args *a);
};

static const struct subcommand subcommands[] = {
	{ "search", SYN_SEARCH, FILTER_OPTS | BIT(AO_OP) | BIT(AO_PATH) |
	  BIT(AO_UID) | BIT(AO_PID) | BIT(AO_COMM) | BIT(AO_RESULT) |
	  BIT(AO_LIMIT) | BIT(AO_AFTER_SEQ) | BIT(AO_CHECKPOINT) |
	  BIT(AO_FORMAT), audit_cmd_search },
	{ "report", SYN_REPORT, FILTER_OPTS | BIT(AO_FILES) | BIT(AO_JSON),
	  audit_cmd_report },
	{ "export", SYN_EXPORT, FILTER_OPTS | BIT(AO_FORMAT) | BIT(AO_OUTPUT) |
	  BIT(AO_ZSTD), audit_cmd_export },
	{ "head", SYN_HEAD, BIT(AO_WS), audit_cmd_head },
	{ "key", SYN_KEY, 0, audit_cmd_key },
};

#define N_SUBCOMMANDS (sizeof(subcommands) / sizeof(subcommands[0]))

static void print_help(const char *synopsis)
{
	printf("usage: wsctl [--state DIR] %s\n\n%s", synopsis,
	       wsctl_audit_details);
}

/* The option ARG names (without any "=value"), or -1. */
static int find_option(const char *arg, size_t len)
{
	int o;

	for (o = 0; o < AO_COUNT; o++) {
		if ((strlen(options[o].flag) == len &&
		     strncmp(options[o].flag, arg, len) == 0) ||
		    (options[o].alias && strlen(options[o].alias) == len &&
		     strncmp(options[o].alias, arg, len) == 0))
			return o;
	}
	return -1;
}

/* An option at ARGV[*I], with its value inline or in the next word. */
static int take_option(const struct subcommand *sc, struct audit_args *a,
		       int argc, char **argv, int *i)
{
	const char *arg = argv[*i], *eq = strchr(arg, '=');
	size_t len = eq ? (size_t)(eq - arg) : strlen(arg);
	int o = find_option(arg, len);

	if (o < 0 || !(sc->opts & BIT(o)))
		return wsctl_synopsis_err(sc->synopsis, "unknown option '%.*s' "
					  "for audit %s", (int)len, arg,
					  sc->name);
	if (a->val[o] != NULL)
		return wsctl_synopsis_err(sc->synopsis, "option '%s' given "
					  "twice", options[o].flag);
	if (!options[o].takes_value) {
		if (eq != NULL)
			return wsctl_synopsis_err(sc->synopsis, "option '%s' "
						  "takes no value",
						  options[o].flag);
		a->val[o] = "1";
		return 0;
	}
	if (eq != NULL) {
		a->val[o] = eq + 1;
		return 0;
	}
	if (*i + 1 >= argc || strncmp(argv[*i + 1], "--", 2) == 0)
		return wsctl_synopsis_err(sc->synopsis, "option '%s' needs a "
					  "value", options[o].flag);
	a->val[o] = argv[++*i];
	return 0;
}

/* ARGV[0] is the subcommand. 0, -1 after help, or WSCTL_USAGE. */
static int parse_argv(const struct subcommand *sc, struct audit_args *a,
		      int argc, char **argv)
{
	int i, rc;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-h") == 0 ||
		    strcmp(argv[i], "--help") == 0) {
			print_help(sc->synopsis);
			return -1;
		}
		if (argv[i][0] != '-' || argv[i][1] == '\0')
			return wsctl_synopsis_err(sc->synopsis, "unexpected "
						  "argument '%s'", argv[i]);
		rc = take_option(sc, a, argc, argv, &i);
		if (rc != 0)
			return rc;
	}
	return 0;
}

/* ---- the values ----------------------------------------------------- */

static int value_err(const char *msg)
{
	wsctl_err("%s", msg);
	return WSCTL_USAGE;
}

/* --ws: a workspace name, or the host chain as '' or "(host)". */
static int parse_ws(struct audit_args *a)
{
	const char *ws = a->val[AO_WS];

	if (ws == NULL)
		return 0;
	if (ws[0] == '\0' || strcmp(ws, "(host)") == 0) {
		a->f.ws = "";
		return 0;
	}
	if (!ws_name_valid(ws))
		return wsctl_synopsis_err(a->synopsis, "invalid workspace name "
					  "'%s'", ws);
	a->f.ws = ws;
	return 0;
}

static int parse_times(struct audit_args *a)
{
	int64_t now = audit_now_ns();
	char err[256];

	if (a->val[AO_SINCE] != NULL &&
	    audit_parse_time(a->val[AO_SINCE], now, &a->f.since_ns, err,
			     sizeof(err)) < 0)
		return value_err(err);
	if (a->val[AO_UNTIL] != NULL &&
	    audit_parse_time(a->val[AO_UNTIL], now, &a->f.until_ns, err,
			     sizeof(err)) < 0)
		return value_err(err);
	if (a->f.since_ns > a->f.until_ns) {
		wsctl_err("--since '%s' is after --until '%s'",
			  a->val[AO_SINCE], a->val[AO_UNTIL]);
		return WSCTL_USAGE;
	}
	return 0;
}

/* The filters only search takes. */
static int parse_filters(struct audit_args *a)
{
	char err[1280];
	int rc = 0;

	if (a->val[AO_OP] != NULL)
		rc = audit_filter_set_ops(&a->f, a->val[AO_OP], err,
					  sizeof(err));
	if (rc == 0 && a->val[AO_UID] != NULL)
		rc = audit_filter_set_uid(&a->f, a->val[AO_UID], err,
					  sizeof(err));
	if (rc == 0 && a->val[AO_PID] != NULL) {
		rc = audit_parse_int(a->val[AO_PID], 0, "--pid", &a->f.pid,
				     err, sizeof(err));
		a->f.has_pid = rc == 0;
	}
	if (rc == 0 && a->val[AO_RESULT] != NULL)
		rc = audit_filter_set_result(&a->f, a->val[AO_RESULT], err,
					     sizeof(err));
	if (rc == 0 && a->val[AO_LIMIT] != NULL)
		rc = audit_parse_int(a->val[AO_LIMIT], 1, "--limit",
				     &a->f.limit, err, sizeof(err));
	if (rc == 0 && a->val[AO_AFTER_SEQ] != NULL)
		rc = audit_parse_int(a->val[AO_AFTER_SEQ], 0, "--after-seq",
				     &a->after_seq, err, sizeof(err));
	if (rc < 0)
		return value_err(err);
	a->f.path_glob = a->val[AO_PATH];
	a->f.comm = a->val[AO_COMM];
	return 0;
}

/* Combinations that cannot mean anything. */
static int check_combinations(const char *sub, struct audit_args *a)
{
	if (a->val[AO_AFTER_SEQ] != NULL && a->f.ws == NULL)
		return wsctl_synopsis_err(a->synopsis, "--after-seq needs "
					  "--ws: seqs count per chain");
	if (a->val[AO_AFTER_SEQ] != NULL && a->val[AO_CHECKPOINT] != NULL)
		return wsctl_synopsis_err(a->synopsis, "--after-seq and "
					  "--checkpoint both say where to "
					  "start; give one");
	if (a->val[AO_CHECKPOINT] != NULL && a->val[AO_CHECKPOINT][0] == 0)
		return wsctl_synopsis_err(a->synopsis, "--checkpoint needs a "
					  "file name");
	if (strcmp(sub, "export") == 0 && (a->val[AO_OUTPUT] == NULL ||
					   a->val[AO_OUTPUT][0] == '\0'))
		return wsctl_synopsis_err(a->synopsis, "export needs -o FILE "
					  "(- for standard output)");
	return 0;
}

static int parse_format(const char *sub, struct audit_args *a)
{
	const char *name = a->val[AO_FORMAT];
	int is_export = strcmp(sub, "export") == 0;

	a->format = is_export ? AUDIT_FORMAT_JSONL : AUDIT_FORMAT_TABLE;
	if (name == NULL)
		return 0;
	if (audit_format_parse(name, &a->format) < 0 ||
	    (is_export && a->format == AUDIT_FORMAT_TABLE)) {
		wsctl_err("--format '%s': expected %s", name,
			  is_export ? "jsonl, csv or ocsf" :
			  "table, jsonl, csv or ocsf");
		return WSCTL_USAGE;
	}
	return 0;
}

static int parse_values(const char *sub, struct audit_args *a)
{
	int rc;

	audit_filter_init(&a->f);
	rc = parse_ws(a);
	if (rc == 0)
		rc = parse_times(a);
	if (rc == 0)
		rc = parse_filters(a);
	if (rc == 0)
		rc = parse_format(sub, a);
	if (rc == 0)
		rc = check_combinations(sub, a);
	return rc;
}

/* ---- shared by the subcommands -------------------------------------- */

const char *audit_chain_label(const char *ws)
{
	return ws[0] != '\0' ? ws : "(host)";
}

int audit_cmd_fail(struct audit_args *a, int err, const char *fmt, ...)
{
	va_list ap;

	a->err = err < 0 ? -err : err;
	fputs("wsctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return WSCTL_ERR;
}

int audit_cmd_open(const struct wsctl *ctx, struct audit_store **s)
{
	char err[PATH_MAX + 256];
	int rc;

	rc = audit_store_open(ctx->state_dir, AUDIT_STORE_READONLY, s, err,
			      sizeof(err));
	if (rc == -ENOENT) {
		wsctl_err("no audit log in %s (no workspace has been mounted "
			  "with auditing)", ctx->state_dir);
		return WSCTL_ERR;
	}
	if (rc < 0) {
		wsctl_err("cannot open the audit log in %s: %s", ctx->state_dir,
			  err);
		return WSCTL_ERR;
	}
	return 0;
}

/* ---- recording the query -------------------------------------------- */

/* Whether ARG reads back as one shell word without quoting. */
static int shell_plain(const char *arg)
{
	const char *p;

	if (*arg == '\0')
		return 0;
	for (p = arg; *p != '\0'; p++) {
		if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
			    "0123456789-_./:=,+@%^", *p))
			return 0;
	}
	return 1;
}

/* ARG in single quotes, each ' written as '\''. */
static void shell_quote(struct audit_buf *b, const char *arg)
{
	const char *q;

	audit_buf_add(b, "'", 1);
	while ((q = strchr(arg, '\'')) != NULL) {
		audit_buf_add(b, arg, (size_t)(q - arg));
		audit_buf_str(b, "'\\''");
		arg = q + 1;
	}
	audit_buf_str(b, arg);
	audit_buf_add(b, "'", 1);
}

/* "--ws agent1 --since -2h": the arguments after the subcommand (which
** the op names), as a shell would need them to run the query again. */
static void join_args(struct audit_buf *b, int argc, char **argv)
{
	int i;

	for (i = 1; i < argc; i++) {
		if (i > 1)
			audit_buf_add(b, " ", 1);
		if (shell_plain(argv[i]))
			audit_buf_str(b, argv[i]);
		else
			shell_quote(b, argv[i]);
	}
}

static void record_query(const struct wsctl *ctx, const struct audit_args *a,
			 int rc, int argc, char **argv)
{
	struct audit_record r;
	struct audit_buf detail = { 0 };
	char op[32], err[PATH_MAX + 256];

	snprintf(op, sizeof(op), "audit-%s", argv[0]);
	join_args(&detail, argc, argv);
	memset(&r, 0, sizeof(r));
	r.ws = "";
	r.layer = "-";
	r.op = op;
	r.path = a->f.ws ? a->f.ws : "";
	r.path2 = "";
	r.result = rc == WSCTL_OK ? "0" : audit_errname(a->err ? a->err : EIO);
	r.detail = detail.oom || detail.p == NULL ? "" : detail.p;
	r.fp = "";
	if (audit_append_one(ctx->state_dir, &r, err, sizeof(err)) < 0)
		fprintf(stderr, "wsctl: warning: this query was not recorded "
			"in the audit log: %s\n", err);
	audit_buf_free(&detail);
}

static int audit_db_exists(const struct wsctl *ctx)
{
	char path[PATH_MAX];

	if (snprintf(path, sizeof(path), "%s/audit.db", ctx->state_dir) >=
	    (int)sizeof(path))
		return 0;
	return access(path, F_OK) == 0;
}

/* ---- dispatch ------------------------------------------------------- */

static int run_subcommand(const struct wsctl *ctx,
			  const struct subcommand *sc, int argc, char **argv)
{
	struct audit_args a;
	int rc, had_log;

	memset(&a, 0, sizeof(a));
	a.synopsis = sc->synopsis;
	rc = parse_argv(sc, &a, argc, argv);
	if (rc != 0)
		return rc < 0 ? WSCTL_OK : rc;
	rc = parse_values(sc->name, &a);
	if (rc != 0)
		return rc;
	had_log = audit_db_exists(ctx);
	rc = sc->run(ctx, &a);
	/* Output first: the record must not be held up by, or hold up, the
	** answer, and a broken pipe is the answer's failure, not the log's. */
	fflush(stdout);
	if (had_log && rc != WSCTL_USAGE)
		record_query(ctx, &a, rc, argc, argv);
	return rc;
}

int cmd_audit(const struct wsctl *ctx, int argc, char **argv)
{
	size_t i;

	if (argc < 2)
		return wsctl_synopsis_err(SYN_AUDIT, "missing audit command "
					  "(search, report, export, verify, "
					  "head or key)");
	if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
		wsctl_print_help_of("audit");
		return WSCTL_OK;
	}
	if (strcmp(argv[1], "verify") == 0)
		return cmd_audit_verify(ctx, argc - 1, argv + 1);
	for (i = 0; i < N_SUBCOMMANDS; i++) {
		if (strcmp(argv[1], subcommands[i].name) == 0)
			return run_subcommand(ctx, &subcommands[i], argc - 1,
					      argv + 1);
	}
	return wsctl_synopsis_err(SYN_AUDIT, "unknown audit command '%s'",
				  argv[1]);
}
