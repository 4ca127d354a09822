/*
** Parsing `wsctl quota` command lines, and turning `set`'s settings into
** limits and into the daemon's "quota-set" request.
**
** Every value is parsed by quota/qparse.c, the parser the daemon's -o
** options and the control socket use, so "10G" cannot mean two things, and
** all of them are checked before anything is sent or written: a command
** line with one bad value changes nothing.  The daemon is sent canonical
** values (plain numbers, "none"), never the operator's spelling.
**
** A setting given twice is an error rather than "last one wins", and a flag
** never takes a following "--word" as its value, so a slip on the command
** line is reported instead of quietly setting something else.  Only the
** settings given are applied (qargs_merge), which is what lets `quota set
** NAME --grace 2h` leave every limit as it was.
*/
#include "quota_args.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "qparse.h"
#include "util.h"
#include "wsctl.h"

const char wsctl_quota_details[] =
	"Commands:\n"
	"  quota set NAME SETTING... [--json]  change limits (live if mounted)\n"
	"  quota show NAME [--json]            show usage, limits and warnings\n"
	"  quota ls [--json]                   every workspace's usage\n"
	"\n"
	"Settings (at least one; --opt VALUE or --opt=VALUE):\n"
	"  --bytes SIZE          hard byte limit\n"
	"  --inodes N            hard inode limit\n"
	"  --soft-bytes SIZE     soft byte limit, enforced after the grace "
	"period\n"
	"  --soft-inodes N       soft inode limit\n"
	"  --grace DURATION      grace period: N[s|m|h|d|w]\n"
	"  --warn P,...          up to 4 ascending percentages 1-100, or none\n"
	"\n"
	"SIZE and N: a whole number with an optional K/KiB, M/MiB, G/GiB or\n"
	"T/TiB suffix (1024-based; SIZE also takes B), or none for no limit.\n";

static const struct {
	const char *flag;
	const char *key;	/* in the "quota-set" request */
} settings[QS_COUNT] = {
	[QS_BYTES] = { "--bytes", "bytes" },
	[QS_INODES] = { "--inodes", "inodes" },
	[QS_SOFT_BYTES] = { "--soft-bytes", "soft_bytes" },
	[QS_SOFT_INODES] = { "--soft-inodes", "soft_inodes" },
	[QS_GRACE] = { "--grace", "grace" },
	[QS_WARN] = { "--warn", "warn" },
};

void qargs_print_help(const char *synopsis)
{
	printf("usage: wsctl [--state DIR] %s\n\n%s", synopsis,
	       wsctl_quota_details);
}

/* ---- the command line --------------------------------------------------- */

static int find_setting(const char *flag, size_t len)
{
	int s;

	for (s = 0; s < QS_COUNT; s++) {
		if (strlen(settings[s].flag) == len &&
		    strncmp(settings[s].flag, flag, len) == 0)
			return s;
	}
	return -1;
}

/* A setting flag at ARGV[*I], with its value inline or in the next word. */
static int take_setting(struct qargs *a, int argc, char **argv, int *i)
{
	const char *arg = argv[*i], *eq = strchr(arg, '=');
	size_t len = eq ? (size_t)(eq - arg) : strlen(arg);
	int s = a->takes_settings ? find_setting(arg, len) : -1;

	if (s < 0)
		return wsctl_synopsis_err(a->synopsis, "unknown option '%s'",
					  arg);
	if (a->val[s] != NULL)
		return wsctl_synopsis_err(a->synopsis, "option '%s' given "
					  "twice", settings[s].flag);
	if (eq != NULL) {
		a->val[s] = eq + 1;
		return 0;
	}
	if (*i + 1 >= argc || strncmp(argv[*i + 1], "--", 2) == 0)
		return wsctl_synopsis_err(a->synopsis, "option '%s' needs a "
					  "value", arg);
	a->val[s] = argv[++*i];
	return 0;
}

static int take_option(struct qargs *a, int argc, char **argv, int *i)
{
	const char *arg = argv[*i];

	if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
		qargs_print_help(a->synopsis);
		return -1;
	}
	if (strcmp(arg, "--json") == 0) {
		if (a->json)
			return wsctl_synopsis_err(a->synopsis, "option "
						  "'--json' given twice");
		a->json = 1;
		return 0;
	}
	if (strncmp(arg, "--json=", 7) == 0)
		return wsctl_synopsis_err(a->synopsis, "option '--json' takes "
					  "no value");
	return take_setting(a, argc, argv, i);
}

static int take_positional(struct qargs *a, const char *arg)
{
	if (!a->takes_name || a->name != NULL)
		return wsctl_synopsis_err(a->synopsis, "unexpected argument "
					  "'%s'", arg);
	if (!ws_name_valid(arg))
		return wsctl_synopsis_err(a->synopsis, "invalid workspace name "
					  "'%s'", arg);
	a->name = arg;
	return 0;
}

int qargs_parse(struct qargs *a, int argc, char **argv)
{
	int i, opts_done = 0, rc;

	for (i = 1; i < argc; i++) {
		if (!opts_done && strcmp(argv[i], "--") == 0) {
			opts_done = 1;
			continue;
		}
		if (!opts_done && argv[i][0] == '-' && argv[i][1] != '\0')
			rc = take_option(a, argc, argv, &i);
		else
			rc = take_positional(a, argv[i]);
		if (rc != 0)
			return rc;
	}
	if (a->takes_name && a->name == NULL)
		return wsctl_synopsis_err(a->synopsis, "missing workspace "
					  "name");
	return 0;
}

/* ---- settings into limits ----------------------------------------------- */

static uint64_t *setting_field(struct quota_limits *l, enum qsetting s)
{
	switch (s) {
	case QS_BYTES:
		return &l->bytes;
	case QS_INODES:
		return &l->inodes;
	case QS_SOFT_BYTES:
		return &l->soft_bytes;
	case QS_SOFT_INODES:
		return &l->soft_inodes;
	case QS_GRACE:
		return &l->grace_s;
	default:
		return NULL;
	}
}

static uint64_t setting_value(const struct quota_limits *l, enum qsetting s)
{
	struct quota_limits copy = *l;

	return *setting_field(&copy, s);
}

static int parse_setting(enum qsetting s, const char *val,
			 struct quota_limits *l, char *err, size_t len)
{
	switch (s) {
	case QS_BYTES:
	case QS_SOFT_BYTES:
		return qparse_size(val, setting_field(l, s), err, len);
	case QS_INODES:
	case QS_SOFT_INODES:
		return qparse_count(val, setting_field(l, s), err, len);
	case QS_GRACE:
		return qparse_duration(val, setting_field(l, s), err, len);
	default:
		return qparse_warn(val, ',', l, err, len);
	}
}

int qargs_limits(const struct qargs *a, struct quota_limits *new)
{
	char err[256];
	int s, given = 0;

	quota_limits_default(new);
	for (s = 0; s < QS_COUNT; s++) {
		if (a->val[s] == NULL)
			continue;
		given++;
		if (parse_setting((enum qsetting)s, a->val[s], new, err,
				  sizeof(err)) < 0) {
			wsctl_err("%s: %s", settings[s].flag, err);
			return WSCTL_USAGE;
		}
	}
	if (given == 0)
		return wsctl_synopsis_err(a->synopsis, "nothing to set: give "
					  "at least one of --bytes, --inodes, "
					  "--soft-bytes, --soft-inodes, "
					  "--grace, --warn");
	return 0;
}

void qargs_merge(const struct qargs *a, const struct quota_limits *new,
		 struct quota_limits *dst)
{
	int s;

	for (s = 0; s < QS_COUNT; s++) {
		if (a->val[s] == NULL)
			continue;
		if (s == QS_WARN) {
			dst->nwarn = new->nwarn;
			memcpy(dst->warn, new->warn, sizeof(dst->warn));
		} else {
			*setting_field(dst, (enum qsetting)s) =
				setting_value(new, (enum qsetting)s);
		}
	}
}

/* "quota-set bytes=65536 warn=85,95": canonical values only. */
int qargs_request(const struct qargs *a, const struct quota_limits *new,
		  char *buf, size_t len)
{
	size_t off;
	char val[64];
	int s, w;

	w = snprintf(buf, len, "quota-set");
	for (s = 0; s < QS_COUNT && w >= 0 && (size_t)w < len; s++) {
		if (a->val[s] == NULL)
			continue;
		if (s == QS_WARN)
			qformat_warn(new, ',', val, sizeof(val));
		else
			qformat_value(setting_value(new, (enum qsetting)s), val,
				      sizeof(val));
		off = (size_t)w;
		w = snprintf(buf + off, len - off, " %s=%s", settings[s].key,
			     val);
		w = w < 0 ? w : w + (int)off;
	}
	return w < 0 || (size_t)w >= len ? -ENAMETOOLONG : 0;
}
