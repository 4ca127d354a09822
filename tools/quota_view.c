/*
** Building a struct qview from a state.db row or a daemon's "quota" reply.
**
** The daemon's reply is trusted only whole: every key qmount_ctl_show()
** sends is required, so a daemon that answers half a view is reported as
** malformed rather than shown with zeros that look like real figures.  Keys
** this wsctl does not know are skipped, so a newer daemon can add some.
**
** A row holds less than a daemon knows.  Figures only a daemon has (when a
** warning fired) are left out for a stopped workspace rather than guessed;
** the warning level itself follows from usage and limits and is recomputed
** the way the ledger does it, so a row and a daemon agree on it.
*/
#include "quota_view.h"

#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ctl_proto.h"
#include "qparse.h"
#include "wsctl.h"

#define ERR_LEN (PATH_MAX + 256)

/* ---- from a state.db row ------------------------------------------------ */

/* The ledger's threshold: PCT percent of LIMIT, without overflow. */
static uint64_t threshold(uint64_t limit, unsigned int pct)
{
	return limit / 100 * pct + limit % 100 * pct / 100;
}

static unsigned int warn_level(const struct quota_limits *l, uint64_t used,
			       uint64_t hard)
{
	unsigned int i, level = 0;

	if (!quota_limited(hard))
		return 0;
	for (i = 0; i < l->nwarn; i++) {
		uint64_t t = threshold(hard, l->warn[i]);

		if (t > 0 && used >= t)
			level = l->warn[i];
	}
	return level;
}

/*
** The row's grace timers are the daemon's as of its last flush; a soft
** limit changed since, here, is only reconciled with them at the next mount
** (ledger_set_limits), so they are read in the light of the limits.
*/
void qview_from_row(const struct quota_row *r, int mounted, struct qview *v)
{
	enum quota_kind k;
	int over;

	memset(v, 0, sizeof(*v));
	snprintf(v->name, sizeof(v->name), "%s", r->name);
	v->mounted = mounted;
	v->lim = r->lim;
	v->used[QUOTA_BYTES] = r->used_bytes;
	v->used[QUOTA_INODES] = r->used_inodes;
	v->now = (int64_t)time(NULL);
	for (k = QUOTA_BYTES; k <= QUOTA_INODES; k++) {
		over = quota_limited(qview_soft_limit(v, k)) &&
		       v->used[k] > qview_soft_limit(v, k);
		v->soft_since[k] = over ? r->soft_since[k] : 0;
		v->grace_pending[k] = over && r->soft_since[k] == 0;
		v->warn_level[k] = warn_level(&v->lim, v->used[k],
					      qview_hard_limit(v, k));
	}
}

/* ---- from the daemon's reply -------------------------------------------- */

enum vtype { V_U64, V_LIMIT, V_I64, V_UINT };

struct reply_key {
	const char *key;
	enum vtype type;
	size_t off;
};

#define RK(k, t, f) { k, t, offsetof(struct qview, f) }

/* The keys of qmount_ctl_show(); all are required, others are ignored. */
static const struct reply_key reply_keys[] = {
	RK("bytes_used", V_U64, used[QUOTA_BYTES]),
	RK("bytes_limit", V_LIMIT, lim.bytes),
	RK("bytes_soft", V_LIMIT, lim.soft_bytes),
	RK("bytes_soft_since", V_I64, soft_since[QUOTA_BYTES]),
	RK("bytes_warn_level", V_UINT, warn_level[QUOTA_BYTES]),
	RK("bytes_warned_at", V_I64, warned_at[QUOTA_BYTES]),
	RK("inodes_used", V_U64, used[QUOTA_INODES]),
	RK("inodes_limit", V_LIMIT, lim.inodes),
	RK("inodes_soft", V_LIMIT, lim.soft_inodes),
	RK("inodes_soft_since", V_I64, soft_since[QUOTA_INODES]),
	RK("inodes_warn_level", V_UINT, warn_level[QUOTA_INODES]),
	RK("inodes_warned_at", V_I64, warned_at[QUOTA_INODES]),
	RK("grace_s", V_U64, lim.grace_s),
	RK("now", V_I64, now),
};

#define N_REPLY_KEYS (sizeof(reply_keys) / sizeof(reply_keys[0]))
#define WARN_BIT (1u << N_REPLY_KEYS)
#define ALL_KEYS ((WARN_BIT << 1) - 1)

static int parse_i64(const char *s, int64_t *out)
{
	long long v;
	char *end;

	if (*s != '-' && (*s < '0' || *s > '9'))
		return -EINVAL;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || *end != '\0' || end == s)
		return -EINVAL;
	*out = v;
	return 0;
}

/* A V_U64, V_LIMIT or V_UINT value; only a limit may be "none". */
static int parse_unsigned(enum vtype type, const char *val, uint64_t *out)
{
	if (type == V_LIMIT && strcmp(val, "none") == 0) {
		*out = QUOTA_NONE;
		return 0;
	}
	if (wsctl_parse_u64(val, out) < 0)
		return -EINVAL;
	return type == V_UINT && *out > UINT_MAX ? -EINVAL : 0;
}

static int store_value(const struct reply_key *rk, const char *val,
		       struct qview *v)
{
	char *field = (char *)v + rk->off;
	unsigned int w;
	uint64_t u;
	int64_t i;

	if (rk->type == V_I64) {
		if (parse_i64(val, &i) < 0)
			return -EINVAL;
		memcpy(field, &i, sizeof(i));
		return 0;
	}
	if (parse_unsigned(rk->type, val, &u) < 0)
		return -EINVAL;
	if (rk->type == V_UINT) {
		w = (unsigned int)u;
		memcpy(field, &w, sizeof(w));
	} else {
		memcpy(field, &u, sizeof(u));
	}
	return 0;
}

/* One "key value" line: a known key is recorded in *SEEN and its value
** stored; an unknown key is skipped.  Returns -EINVAL for a bad value. */
static int parse_line(char *line, struct qview *v, unsigned int *seen)
{
	char *sp = strchr(line, ' ');
	size_t i;

	if (sp == NULL)
		return 0;
	*sp = '\0';
	if (strcmp(line, "warn") == 0) {
		*seen |= WARN_BIT;
		return qparse_warn(sp + 1, ',', &v->lim, NULL, 0);
	}
	for (i = 0; i < N_REPLY_KEYS; i++) {
		if (strcmp(line, reply_keys[i].key) != 0)
			continue;
		*seen |= 1u << i;
		return store_value(&reply_keys[i], sp + 1, v);
	}
	return 0;
}

/*
** Turns TEXT (modified in place) into V.  Returns 0; 1 with *DERR pointing
** at the daemon's message for an "error" reply; -EPROTO for anything else.
*/
static int parse_reply(char *text, struct qview *v, const char **derr)
{
	unsigned int seen = 0;
	char *line, *save = NULL;

	line = strtok_r(text, "\n", &save);
	if (line != NULL && strncmp(line, "error ", 6) == 0) {
		*derr = line + 6;
		return 1;
	}
	if (line == NULL || strcmp(line, "ok") != 0)
		return -EPROTO;
	while ((line = strtok_r(NULL, "\n", &save)) != NULL) {
		if (parse_line(line, v, &seen) < 0)
			return -EPROTO;
	}
	return seen == ALL_KEYS ? 0 : -EPROTO;
}

int qview_from_daemon(const struct ws_mount *m, const char *request,
		      struct qview *v, int quiet)
{
	char err[ERR_LEN], *text = NULL;
	const char *derr = NULL;
	int rc;

	if (ctl_request(m->socket, request, &text, err, sizeof(err)) < 0) {
		if (!quiet)
			wsctl_err("%s", err);
		free(text);
		return WSCTL_ERR;
	}
	memset(v, 0, sizeof(*v));
	rc = parse_reply(text, v, &derr);
	if (rc == 1 && !quiet)
		wsctl_err("workspace '%s': %s", m->name, derr);
	else if (rc < 0 && !quiet)
		wsctl_err("malformed quota reply from the daemon at %s",
			  m->socket);
	free(text);
	if (rc != 0)
		return WSCTL_ERR;
	snprintf(v->name, sizeof(v->name), "%s", m->name);
	v->mounted = v->live = 1;
	return WSCTL_OK;
}
