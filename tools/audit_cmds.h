/*
** `wsctl audit`: reading the audit log (search, report, export), showing
** its anchors (head, key), and verifying it (verify).
**
** cmd_audit.c parses every subcommand's command line into one struct
** audit_args, so an option means the same everywhere and is checked the
** same way, runs the subcommand, and then records the query in the host
** chain (PCI DSS 10.2.1.3: access to audit trails is itself audited).
*/
#ifndef WSFS_WSCTL_AUDIT_CMDS_H
#define WSFS_WSCTL_AUDIT_CMDS_H

#include "format.h"
#include "query.h"
#include "wsctl.h"

struct audit_store;

int cmd_audit(const struct wsctl *ctx, int argc, char **argv);
int cmd_audit_verify(const struct wsctl *ctx, int argc, char **argv);

/* The text of `wsctl help audit`. */
extern const char wsctl_audit_details[];

/* The options, indexing audit_args.val. */
enum audit_opt {
	AO_WS, AO_SINCE, AO_UNTIL, AO_OP, AO_PATH, AO_UID, AO_PID, AO_COMM,
	AO_RESULT, AO_LIMIT, AO_AFTER_SEQ, AO_CHECKPOINT, AO_FORMAT,
	AO_OUTPUT, AO_ZSTD, AO_FILES, AO_JSON,
	AO_COUNT
};

struct audit_args {
	const char *synopsis;		/* for usage errors */
	const char *val[AO_COUNT];	/* as typed; flags "1"; NULL if not */
	struct audit_filter f;		/* the filter options, parsed */
	enum audit_format format;
	int64_t after_seq;
	int err;			/* errno to record when failing */
};

/* Opens <state>/audit.db read-only; reports a missing log or an error and
** returns WSCTL_ERR, else 0. */
int audit_cmd_open(const struct wsctl *ctx, struct audit_store **s);

/* Reports a runtime failure ("wsctl: MESSAGE") and returns WSCTL_ERR. */
int audit_cmd_fail(struct audit_args *a, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

int audit_cmd_search(const struct wsctl *ctx, struct audit_args *a);
int audit_cmd_report(const struct wsctl *ctx, struct audit_args *a);
int audit_cmd_export(const struct wsctl *ctx, struct audit_args *a);
int audit_cmd_head(const struct wsctl *ctx, struct audit_args *a);
int audit_cmd_key(const struct wsctl *ctx, struct audit_args *a);

/* --files of `audit report`: the paths chain WS changed in the filter's
** time range and their final state, printed (or, with JSON, put into the
** jansson array OUT). 0 or WSCTL_ERR. */
struct json_t;
int audit_report_files(struct audit_store *s, struct audit_args *a,
		       const char *ws, struct json_t *out);

/* The display name of a chain: "(host)" for the host chain. */
const char *audit_chain_label(const char *ws);

#endif
