/*
** wsctl audit head and wsctl audit key: the two things an operator copies
** off the host to make the log checkable later.
**
** `head` prints the latest signed checkpoint of a chain exactly as stored,
** a C2SP signed note that any verifier of that format can check against
** the key; kept elsewhere, it proves what the chain held at that moment
** even if the whole of audit.db is later rewritten.  `key` prints the
** verifier line of the signing key (keys.h); it never creates a key, since
** a key made by a query would vouch for nothing.
*/
#include <errno.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

#include "audit_cmds.h"
#include "keys.h"
#include "store.h"

#define ERR_LEN (PATH_MAX + 256)

/* The note as stored, with exactly one newline at its end. */
static void print_note(const char *note)
{
	size_t len = strlen(note);

	fputs(note, stdout);
	if (len == 0 || note[len - 1] != '\n')
		putchar('\n');
}

/* One chain's latest checkpoint. */
static int head_of(struct audit_args *a, sqlite3 *db, const char *ws)
{
	sqlite3_stmt *st;
	const char *note;
	int rc;

	rc = sqlite3_prepare_v2(db, "SELECT note FROM checkpoints WHERE "
				"ws = ? ORDER BY size DESC LIMIT 1", -1, &st,
				NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_text(st, 1, ws, (int)strlen(ws),
				       SQLITE_STATIC);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		note = (const char *)sqlite3_column_text(st, 0);
		print_note(note ? note : "");
		rc = SQLITE_OK;
	} else if (rc == SQLITE_DONE) {
		rc = audit_cmd_fail(a, ENOENT, "no checkpoint of %s %s yet",
				    ws[0] ? "workspace" : "the",
				    ws[0] ? ws : "host chain");
		sqlite3_finalize(st);
		return rc;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_OK)
		return audit_cmd_fail(a, EIO, "cannot read audit.db: %s",
				      sqlite3_errmsg(db));
	return 0;
}

/* Every chain's latest checkpoint, each under "== <chain>".  SQLite
** returns the note of the row holding max(size) for each group. */
static int heads_of_all(struct audit_args *a, sqlite3 *db)
{
	sqlite3_stmt *st;
	const char *ws, *note;
	int rc, any = 0;

	rc = sqlite3_prepare_v2(db, "SELECT ws, max(size), note FROM "
				"checkpoints GROUP BY ws ORDER BY ws", -1, &st,
				NULL);
	while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		ws = (const char *)sqlite3_column_text(st, 0);
		note = (const char *)sqlite3_column_text(st, 2);
		printf("%s== %s\n", any ? "\n" : "",
		       audit_chain_label(ws ? ws : ""));
		print_note(note ? note : "");
		any = 1;
		rc = SQLITE_OK;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return audit_cmd_fail(a, EIO, "cannot read audit.db: %s",
				      sqlite3_errmsg(db));
	if (!any)
		return audit_cmd_fail(a, ENOENT, "no checkpoints in the audit "
				      "log yet");
	return 0;
}

int audit_cmd_head(const struct wsctl *ctx, struct audit_args *a)
{
	struct audit_store *s;
	int rc;

	rc = audit_cmd_open(ctx, &s);
	if (rc != 0)
		return rc;
	if (a->f.ws != NULL)
		rc = head_of(a, audit_store_db(s), a->f.ws);
	else
		rc = heads_of_all(a, audit_store_db(s));
	audit_store_close(s);
	return rc;
}

int audit_cmd_key(const struct wsctl *ctx, struct audit_args *a)
{
	char err[ERR_LEN], pub[PATH_MAX];
	struct audit_key *k;
	int rc;

	rc = audit_key_load(ctx->state_dir, 0, &k, err, sizeof(err));
	/* The private key may have been moved off the host; audit.pub stays. */
	if (rc < 0 && snprintf(pub, sizeof(pub), "%s/keys/audit.pub",
			       ctx->state_dir) < (int)sizeof(pub))
		rc = audit_key_load_public(pub, &k, err, sizeof(err));
	if (rc == -ENOENT)
		return audit_cmd_fail(a, ENOENT, "no audit key in %s/keys (no "
				      "workspace has been mounted with "
				      "auditing)", ctx->state_dir);
	if (rc < 0)
		return audit_cmd_fail(a, -rc, "cannot load the audit key: %s",
				      err);
	puts(audit_key_verifier(k));
	audit_key_free(k);
	return WSCTL_OK;
}
