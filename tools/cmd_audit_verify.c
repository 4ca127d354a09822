/*
** wsctl audit verify: check the audit log's hash chains and signed
** checkpoints, in audit.db or in an export bundle read offline.
**
** The command is a thin shell around audit_verify_db/_bundle: it parses
** the options, prints one line (or one JSON object) and sets the exit
** status: 0 verified, 1 failed or could not run, 2 bad command line.  Its
** own option parser is separate from the other audit subcommands' because
** its options (a seq range, a key, a bundle) mean nothing to them.
**
** Running a verification is itself an access to the audit trail, so it is
** recorded in the host chain afterwards (op "audit-verify", the arguments
** as the detail, and EBADMSG as the result when the log failed).  That
** write is best effort: its failure is a warning and never changes what
** the verification reported.  A bundle checked on a machine with no wsfs
** state directory records nothing, since creating one there would be a
** surprise.
*/
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "append.h"
#include "audit_cmds.h"
#include "keys.h"
#include "record.h"
#include "store.h"
#include "util.h"
#include "verify.h"
#include "wsctl.h"

#define SYN_VERIFY "audit verify [--ws W] [--from SEQ] [--to SEQ] " \
	"[--pubkey FILE] [--bundle FILE] [--json]"
#define DETAIL_MAX 4096

struct verify_args {
	const char *ws;
	const char *pubkey;
	const char *bundle;
	int64_t from, to;
	int json;
};

static void print_help(void)
{
	fputs("usage: wsctl [--state DIR] " SYN_VERIFY "\n\n"
	      "Recompute every record's hash and the hash chains, check every\n"
	      "checkpoint's signature, and check that each checkpoint matches\n"
	      "the records it covers.  Reports the first failure.\n\n"
	      "  --ws W          only workspace W's chain ('' for the host's)\n"
	      "  --from SEQ      start at SEQ (trusting the stored head before "
	      "it)\n"
	      "  --to SEQ        stop after SEQ\n"
	      "  --pubkey FILE   the key to check signatures with (audit.pub\n"
	      "                  line or PEM; default: the state directory's)\n"
	      "  --bundle FILE   verify an export bundle instead of audit.db\n"
	      "  --json          print the result as JSON\n", stdout);
}

/* The value of option ARGV[*I] (as "--opt VALUE" or "--opt=VALUE"), or
** NULL if ARGV[*I] is not OPT. */
static const char *opt_value(int argc, char **argv, int *i, const char *opt,
			     int *missing)
{
	size_t n = strlen(opt);

	if (strncmp(argv[*i], opt, n) != 0)
		return NULL;
	if (argv[*i][n] == '=')
		return argv[*i] + n + 1;
	if (argv[*i][n] != '\0')
		return NULL;
	if (*i + 1 >= argc) {
		*missing = 1;
		return NULL;
	}
	return argv[++*i];
}

static int parse_seq(const char *opt, const char *val, int64_t *out)
{
	uint64_t v;

	if (wsctl_parse_u64(val, &v) < 0 || v == 0 || v > INT64_MAX)
		return wsctl_synopsis_err(SYN_VERIFY, "%s needs a seq (a "
					  "number from 1), not '%s'", opt,
					  val);
	*out = (int64_t)v;
	return 0;
}

/* One option at ARGV[*I]: 0, -1 for help, or WSCTL_USAGE. */
static int parse_one(int argc, char **argv, int *i, struct verify_args *a)
{
	const char *arg = argv[*i], *v;
	int missing = 0;

	if (strcmp(arg, "--json") == 0) {
		a->json = 1;
		return 0;
	}
	if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0)
		return -1;
	if ((v = opt_value(argc, argv, i, "--ws", &missing)) != NULL) {
		a->ws = v;
		return 0;
	}
	if ((v = opt_value(argc, argv, i, "--from", &missing)) != NULL)
		return parse_seq("--from", v, &a->from);
	if ((v = opt_value(argc, argv, i, "--to", &missing)) != NULL)
		return parse_seq("--to", v, &a->to);
	if ((v = opt_value(argc, argv, i, "--pubkey", &missing)) != NULL) {
		a->pubkey = v;
		return 0;
	}
	if ((v = opt_value(argc, argv, i, "--bundle", &missing)) != NULL) {
		a->bundle = v;
		return 0;
	}
	if (missing)
		return wsctl_synopsis_err(SYN_VERIFY, "option '%s' needs a "
					  "value", arg);
	return wsctl_synopsis_err(SYN_VERIFY, "%s '%s'", arg[0] == '-'
				  ? "unknown option" : "unexpected argument",
				  arg);
}

static int check_args(const struct verify_args *a)
{
	if (a->ws != NULL && a->ws[0] != '\0' && !ws_name_valid(a->ws))
		return wsctl_synopsis_err(SYN_VERIFY, "invalid workspace name "
					  "'%s'", a->ws);
	if ((a->from || a->to) && a->ws == NULL)
		return wsctl_synopsis_err(SYN_VERIFY, "--from and --to need "
					  "--ws");
	if ((a->from || a->to) && a->bundle != NULL)
		return wsctl_synopsis_err(SYN_VERIFY, "--from and --to apply "
					  "to audit.db, not to a bundle");
	if (a->to && a->from > a->to)
		return wsctl_synopsis_err(SYN_VERIFY, "--from %" PRId64 " is "
					  "after --to %" PRId64, a->from,
					  a->to);
	return 0;
}

static int parse_args(int argc, char **argv, struct verify_args *a)
{
	int i, rc;

	memset(a, 0, sizeof(*a));
	for (i = 1; i < argc; i++) {
		rc = parse_one(argc, argv, &i, a);
		if (rc != 0)
			return rc;
	}
	return check_args(a);
}

/* ---- running ------------------------------------------------------------ */

static int load_pubkey(const struct verify_args *a, struct audit_key **k)
{
	char err[512];

	*k = NULL;
	if (a->pubkey == NULL)
		return 0;
	if (audit_key_load_public(a->pubkey, k, err, sizeof(err)) < 0) {
		wsctl_err("%s", err);
		return WSCTL_ERR;
	}
	return 0;
}

/* 0 when the walk ran (RES says how it went), else WSCTL_ERR after
** reporting; *ERRNUM is what to record. */
static int run_db(const struct wsctl *ctx, const struct audit_verify_opts *o,
		  struct audit_verify_result *res, int *errnum)
{
	struct audit_store *s;
	char err[512];
	int rc;

	rc = audit_store_open(ctx->state_dir, AUDIT_STORE_READONLY, &s, err,
			      sizeof(err));
	if (rc == -ENOENT) {
		wsctl_err("no audit log in %s (audit.db does not exist)",
			  ctx->state_dir);
		*errnum = -rc;
		return WSCTL_ERR;
	}
	if (rc == 0) {
		rc = audit_verify_db(s, o, res, err, sizeof(err));
		audit_store_close(s);
	}
	if (rc < 0) {
		wsctl_err("%s", err);
		*errnum = -rc;
		return WSCTL_ERR;
	}
	return 0;
}

static int run_bundle(const char *path, const struct audit_verify_opts *o,
		      struct audit_verify_result *res, int *errnum)
{
	char err[512];
	int rc = audit_verify_bundle(path, o, res, err, sizeof(err));

	if (rc < 0) {
		wsctl_err("%s", err);
		*errnum = -rc;
		return WSCTL_ERR;
	}
	return 0;
}

static const char *chain_label(const char *ws)
{
	return ws[0] != '\0' ? ws : "(host)";
}

static void print_text(const struct audit_verify_result *r)
{
	if (!r->ok) {
		if (r->bad_seq == 0 && r->bad_ws[0] == '\0')
			printf("FAILED: %s\n", r->why);
		else
			printf("FAILED: %s seq %" PRId64 ": %s\n",
			       chain_label(r->bad_ws), r->bad_seq, r->why);
		return;
	}
	printf("OK: %" PRId64 " records, %" PRId64 " checkpoints", r->records,
	       r->checkpoints);
	if (r->unanchored > 0)
		printf(" (%" PRId64 " records after the last checkpoint)",
		       r->unanchored);
	putchar('\n');
}

static void print_json(const struct audit_verify_result *r)
{
	printf("{\n  \"ok\": %s,\n  \"records\": %" PRId64 ",\n"
	       "  \"checkpoints\": %" PRId64 ",\n  \"chains\": %" PRId64 ",\n"
	       "  \"unanchored\": %" PRId64, r->ok ? "true" : "false",
	       r->records, r->checkpoints, r->chains, r->unanchored);
	if (!r->ok) {
		fputs(",\n  \"ws\": ", stdout);
		json_write_string(stdout, r->bad_ws);
		printf(",\n  \"seq\": %" PRId64 ",\n  \"why\": ", r->bad_seq);
		json_write_string(stdout, r->why);
	}
	fputs("\n}\n", stdout);
}

/* ---- recording the query ------------------------------------------------ */

static void join_args(int argc, char **argv, char *buf, size_t len)
{
	size_t used = 0;
	int i, n;

	buf[0] = '\0';
	for (i = 1; i < argc && used < len; i++) {
		n = snprintf(buf + used, len - used, "%s%s", i > 1 ? " " : "",
			     argv[i]);
		if (n < 0)
			break;
		used += (size_t)n;
	}
}

static int dir_exists(const char *dir)
{
	struct stat st;

	return stat(dir, &st) == 0 && S_ISDIR(st.st_mode);
}

static void record_query(const struct wsctl *ctx, int argc, char **argv,
			 int errnum)
{
	char detail[DETAIL_MAX], err[512];
	struct audit_record r;

	if (!dir_exists(ctx->state_dir))
		return;
	join_args(argc, argv, detail, sizeof(detail));
	memset(&r, 0, sizeof(r));
	r.ws = "";
	r.layer = "-";
	r.op = "audit-verify";
	r.path = "";
	r.path2 = "";
	r.result = audit_errname(errnum);
	r.detail = detail;
	r.fp = "";
	if (audit_append_one(ctx->state_dir, &r, err, sizeof(err)) < 0)
		fprintf(stderr, "wsctl: warning: could not record this query "
			"in the audit log: %s\n", err);
}

int cmd_audit_verify(const struct wsctl *ctx, int argc, char **argv)
{
	struct audit_verify_result res;
	struct audit_verify_opts o;
	struct verify_args a;
	struct audit_key *pub;
	int rc, errnum = 0;

	rc = parse_args(argc, argv, &a);
	if (rc != 0) {
		if (rc < 0)
			print_help();
		return rc < 0 ? WSCTL_OK : rc;
	}
	rc = load_pubkey(&a, &pub);
	if (rc == 0) {
		o.ws = a.ws;
		o.from = a.from;
		o.to = a.to;
		o.pub = pub;
		rc = a.bundle ? run_bundle(a.bundle, &o, &res, &errnum)
			      : run_db(ctx, &o, &res, &errnum);
	} else {
		errnum = EINVAL;
	}
	if (rc == 0) {
		if (a.json)
			print_json(&res);
		else
			print_text(&res);
		rc = res.ok ? WSCTL_OK : WSCTL_ERR;
		errnum = res.ok ? 0 : EBADMSG;
	}
	audit_key_free(pub);
	/* Flushed first, so the result is out even if recording hangs on a
	** busy database. */
	(void)fflush(stdout);
	record_query(ctx, argc, argv, errnum);
	return rc;
}
