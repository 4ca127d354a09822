/*
** wsctl audit report --files: the files an agent changed and where they
** ended up, "what did this agent do" as a list of paths.
**
** This cannot be a GROUP BY path: a rename moves a file, and everything
** under a renamed directory, to a new name, so a path's history is only
** known by replaying the chain in seq order.  The replay keeps one entry
** per path currently known (a hash table, so a chain of millions of
** records costs one pass and memory in proportion to the files touched),
** and only the records that change files are read (successful create,
** mknod, symlink, link, mkdir, release that wrote, setattr, rename, unlink,
** rmdir).
**
** A rename of a directory must move the entries below it.  Scanning every
** entry on every rename would make a run of renames quadratic, so the
** directories that have entries below them are kept in a second set, and
** only a rename of one of those scans.  The set only grows (an entry moved
** away leaves its old ancestors in it), which can cost a needless scan but
** never a missed move.
**
** The state shown for each path is its final one: deleted if the last
** event removed it, else created if the agent created it, else modified
** (content or attributes), else renamed (moved only).  The fingerprint is
** that of the last release that had one, cleared by a later truncation or
** removal, since it would no longer describe the file.
*/
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit_cmds.h"
#include "grow.h"
#include "store.h"

#define ERR_LEN (PATH_MAX + 256)
#define FP_LEN 33

struct change {
	char *from;		/* the path it had when first seen, if moved */
	const char *last_op;	/* static */
	int64_t time_ns, seq;
	char fp[FP_LEN];
	unsigned created : 1, changed : 1, deleted : 1, moved : 1;
};

/* ---- a string-keyed hash table -------------------------------------- */

struct node {
	char *key;
	struct change *val;	/* NULL in the directory set */
	struct node *next;
};

struct map {
	struct node **b;
	size_t nb, n;
};

static uint64_t hash_key(const char *s)
{
	uint64_t h = 1469598103934665603ULL;	/* FNV-1a */

	for (; *s != '\0'; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

static struct node *map_find(const struct map *m, const char *key)
{
	struct node *n;

	if (m->nb == 0)
		return NULL;
	for (n = m->b[hash_key(key) % m->nb]; n != NULL; n = n->next) {
		if (strcmp(n->key, key) == 0)
			return n;
	}
	return NULL;
}

static int map_grow(struct map *m)
{
	size_t nb = m->nb ? 2 * m->nb : 1024, i;
	struct node **b = calloc(nb, sizeof(*b)), *n, *next;

	if (b == NULL)
		return -ENOMEM;
	for (i = 0; i < m->nb; i++) {
		for (n = m->b[i]; n != NULL; n = next) {
			next = n->next;
			n->next = b[hash_key(n->key) % nb];
			b[hash_key(n->key) % nb] = n;
		}
	}
	free(m->b);
	m->b = b;
	m->nb = nb;
	return 0;
}

/* Adds KEY (copied) with VAL; the key must not be present. */
static struct node *map_add(struct map *m, const char *key,
			    struct change *val)
{
	struct node *n;
	size_t i;

	if (m->n >= m->nb && map_grow(m) < 0)
		return NULL;
	n = malloc(sizeof(*n));
	if (n == NULL)
		return NULL;
	n->key = strdup(key);
	if (n->key == NULL) {
		free(n);
		return NULL;
	}
	n->val = val;
	i = hash_key(key) % m->nb;
	n->next = m->b[i];
	m->b[i] = n;
	m->n++;
	return n;
}

/* Unlinks KEY's node and returns it (the caller frees it), or NULL. */
static struct node *map_take(struct map *m, const char *key)
{
	struct node **p;
	struct node *n;

	if (m->nb == 0)
		return NULL;
	for (p = &m->b[hash_key(key) % m->nb]; *p != NULL; p = &(*p)->next) {
		if (strcmp((*p)->key, key) == 0) {
			n = *p;
			*p = n->next;
			m->n--;
			return n;
		}
	}
	return NULL;
}

static void change_free(struct change *c)
{
	if (c != NULL)
		free(c->from);
	free(c);
}

static void map_free(struct map *m)
{
	struct node *n, *next;
	size_t i;

	for (i = 0; i < m->nb; i++) {
		for (n = m->b[i]; n != NULL; n = next) {
			next = n->next;
			change_free(n->val);
			free(n->key);
			free(n);
		}
	}
	free(m->b);
	memset(m, 0, sizeof(*m));
}

/* ---- the replay ----------------------------------------------------- */

struct replay {
	struct map files;	/* path -> change */
	struct map dirs;	/* directories with files below them */
};

/* Notes every ancestor directory of PATH ("/a" and "/a/b" of "/a/b/c"). */
static int add_ancestors(struct replay *r, const char *path)
{
	char dir[PATH_MAX];
	const char *p;
	size_t len;

	if (path[0] == '\0')
		return 0;
	for (p = strchr(path + 1, '/'); p != NULL; p = strchr(p + 1, '/')) {
		len = (size_t)(p - path);
		if (len == 0 || len >= sizeof(dir))
			continue;
		memcpy(dir, path, len);
		dir[len] = '\0';
		if (map_find(&r->dirs, dir) == NULL &&
		    map_add(&r->dirs, dir, NULL) == NULL)
			return -ENOMEM;
	}
	return 0;
}

/* Puts C at PATH, replacing (and freeing) whatever was there. */
static int place(struct replay *r, const char *path, struct change *c)
{
	struct node *old = map_take(&r->files, path);

	if (old != NULL) {
		change_free(old->val);
		free(old->key);
		free(old);
	}
	if (map_add(&r->files, path, c) == NULL) {
		change_free(c);
		return -ENOMEM;
	}
	return add_ancestors(r, path);
}

/* The entry of PATH, created empty when there is none. */
static struct change *touch(struct replay *r, const char *path)
{
	struct node *n = map_find(&r->files, path);
	struct change *c;

	if (n != NULL)
		return n->val;
	c = calloc(1, sizeof(*c));
	if (c == NULL || place(r, path, c) < 0)
		return NULL;
	return c;
}

/* Takes PATH's entry out (or makes one for a file not seen before, which
** remembers PATH as where it came from). */
static struct change *take_entry(struct replay *r, const char *path)
{
	struct node *n = map_take(&r->files, path);
	struct change *c;

	if (n != NULL) {
		c = n->val;
		free(n->key);
		free(n);
		return c;
	}
	return calloc(1, sizeof(struct change));
}

struct moved {
	char *suffix;		/* what follows the old prefix */
	struct change *c;
};

/* Takes out every entry below directory DIR ("DIR/..."), into *OUT. */
static int take_below(struct replay *r, const char *dir, struct moved **out,
		      size_t *nout)
{
	size_t len = strlen(dir), i, cap = 0;
	struct node **p, *n;

	*out = NULL;
	*nout = 0;
	if (map_find(&r->dirs, dir) == NULL)
		return 0;
	for (i = 0; i < r->files.nb; i++) {
		for (p = &r->files.b[i]; (n = *p) != NULL;) {
			if (strncmp(n->key, dir, len) != 0 || n->key[len] != '/') {
				p = &n->next;
				continue;
			}
			if (*nout == cap &&
			    grow_array((void **)out, &cap, sizeof(**out), 16) < 0)
				return -ENOMEM;
			*p = n->next;
			r->files.n--;
			/* The key, cut to what follows DIR, is the suffix. */
			memmove(n->key, n->key + len, strlen(n->key + len) + 1);
			(*out)[*nout].suffix = n->key;
			(*out)[(*nout)++].c = n->val;
			free(n);
		}
	}
	return 0;
}

/* Puts the entries taken by take_below under directory DIR. */
static int put_below(struct replay *r, const char *dir, struct moved *v,
		     size_t n)
{
	char path[PATH_MAX];
	size_t i;
	int rc = 0;

	for (i = 0; i < n; i++) {
		if (rc == 0 && snprintf(path, sizeof(path), "%s%s", dir,
					v[i].suffix) < (int)sizeof(path)) {
			v[i].c->moved = 1;
			rc = place(r, path, v[i].c);
		} else {
			change_free(v[i].c);
		}
		free(v[i].suffix);
	}
	free(v);
	return rc;
}

struct event {
	int64_t seq, time_ns, bytes;
	const char *op, *path, *path2, *fp, *detail;
};

/* Marks C as last changed by event E. */
static void stamp(struct change *c, const struct event *e)
{
	c->last_op = audit_op_lookup(e->op);
	c->time_ns = e->time_ns;
	c->seq = e->seq;
}

/* Takes OLD's entry out for a move, and notes where it came from. */
static struct change *take_moving(struct replay *r, const char *old,
				  const struct event *e)
{
	struct change *c = take_entry(r, old);

	if (c == NULL)
		return NULL;
	if (c->from == NULL && !c->created && (c->from = strdup(old)) == NULL) {
		change_free(c);
		return NULL;
	}
	c->moved = 1;
	stamp(c, e);
	return c;
}

/* Moves an entry and its directory's entries from OLD to NEW; with
** EXCHANGE, NEW's go to OLD at the same time (RENAME_EXCHANGE). */
static int move(struct replay *r, const char *old, const char *new,
		int exchange, const struct event *e)
{
	struct change *a, *b = NULL;
	struct moved *va = NULL, *vb = NULL;
	size_t na = 0, nb = 0;
	int rc;

	a = take_moving(r, old, e);
	if (a != NULL && exchange)
		b = take_moving(r, new, e);
	if (a == NULL || (exchange && b == NULL)) {
		change_free(a);
		return -ENOMEM;
	}
	rc = take_below(r, old, &va, &na);
	if (rc == 0 && exchange)
		rc = take_below(r, new, &vb, &nb);
	if (rc == 0)
		rc = place(r, new, a);
	else
		change_free(a);
	if (exchange && rc == 0)
		rc = place(r, old, b);
	else if (exchange)
		change_free(b);
	rc = put_below(r, new, va, na) < 0 ? -ENOMEM : rc;
	rc = put_below(r, old, vb, nb) < 0 ? -ENOMEM : rc;
	return rc;
}

static int in_set(const char *op, const char *const *set)
{
	for (; *set != NULL; set++) {
		if (strcmp(op, *set) == 0)
			return 1;
	}
	return 0;
}

/* Whether a detail string ("key=value ...") holds the word KEY. */
static int detail_has(const char *detail, const char *key)
{
	size_t len = strlen(key);
	const char *p;

	for (p = strstr(detail, key); p != NULL; p = strstr(p + 1, key)) {
		if ((p == detail || p[-1] == ' ') &&
		    (p[len] == '=' || p[len] == ' ' || p[len] == '\0'))
			return 1;
	}
	return 0;
}

/* Creation, writing, attributes and removal: all on one path. */
static struct change *apply_in_place(struct replay *r, const struct event *e)
{
	static const char *const creating[] = { "create", "mknod", "symlink",
						"mkdir", NULL };
	int link = strcmp(e->op, "link") == 0;
	struct change *c = touch(r, link ? e->path2 : e->path);

	if (c == NULL)
		return NULL;
	if (link || in_set(e->op, creating)) {
		c->created = 1;
		c->deleted = 0;
		c->fp[0] = '\0';
	} else if (strcmp(e->op, "release") == 0) {
		c->changed = 1;
		if (e->fp[0] != '\0')
			snprintf(c->fp, sizeof(c->fp), "%s", e->fp);
	} else if (strcmp(e->op, "setattr") == 0) {
		c->changed = 1;
		if (detail_has(e->detail, "size"))
			c->fp[0] = '\0';
	} else {
		c->deleted = 1;
		c->fp[0] = '\0';
	}
	return c;
}

static int apply(struct replay *r, const struct event *e)
{
	struct change *c;

	if (strcmp(e->op, "release") == 0 && e->bytes == 0 && e->fp[0] == 0)
		return 0;	/* a handle that only read */
	if (strcmp(e->op, "rename") == 0) {
		if (e->path2[0] == '\0' || strcmp(e->path, e->path2) == 0)
			return 0;
		return move(r, e->path, e->path2,
			    detail_has(e->detail, "exchange"), e);
	}
	c = apply_in_place(r, e);
	if (c == NULL)
		return -ENOMEM;
	stamp(c, e);
	return 0;
}

/* ---- reading the chain ---------------------------------------------- */

static int prepare(sqlite3 *db, const struct audit_filter *f, const char *ws,
		   sqlite3_stmt **st, char *err, size_t errlen)
{
	struct audit_sql q;
	int rc;

	audit_sql_init(&q);
	audit_sql_add(&q, "SELECT seq, time_ns, op, path, path2, bytes, fp, "
		      "detail FROM records WHERE ws = ");
	audit_sql_text(&q, ws);
	audit_sql_add(&q, " AND result = '0' AND op IN ('create', 'mknod', "
		      "'symlink', 'link', 'mkdir', 'release', 'setattr', "
		      "'rename', 'unlink', 'rmdir')");
	audit_sql_filter(&q, f, AUDIT_WHERE_NO_WS);
	audit_sql_add(&q, " ORDER BY seq");
	rc = audit_sql_prepare(&q, db, st, err, errlen);
	audit_sql_free(&q);
	return rc;
}

static const char *text_col(sqlite3_stmt *st, int col)
{
	const char *s = (const char *)sqlite3_column_text(st, col);

	return s ? s : "";
}

static int replay_chain(sqlite3 *db, const struct audit_filter *f,
			const char *ws, struct replay *r, char *err,
			size_t errlen)
{
	sqlite3_stmt *st;
	struct event e;
	int rc;

	rc = prepare(db, f, ws, &st, err, errlen);
	if (rc < 0)
		return rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		e.seq = sqlite3_column_int64(st, 0);
		e.time_ns = sqlite3_column_int64(st, 1);
		e.op = text_col(st, 2);
		e.path = text_col(st, 3);
		e.path2 = text_col(st, 4);
		e.bytes = sqlite3_column_int64(st, 5);
		e.fp = text_col(st, 6);
		e.detail = text_col(st, 7);
		if (apply(r, &e) < 0) {
			sqlite3_finalize(st);
			snprintf(err, errlen, "out of memory");
			return -ENOMEM;
		}
	}
	rc = rc == SQLITE_DONE ? 0 :
	     audit_sql_error(db, "cannot read audit.db", err, errlen);
	sqlite3_finalize(st);
	return rc;
}

/* ---- output --------------------------------------------------------- */

static const char *state_of(const struct change *c)
{
	if (c->deleted)
		return "deleted";
	if (c->created)
		return "created";
	if (c->changed)
		return "modified";
	return "renamed";
}

static int cmp_nodes(const void *a, const void *b)
{
	return strcmp((*(struct node *const *)a)->key,
		      (*(struct node *const *)b)->key);
}

/* The entries in path order; NULL (and *N 0) when there are none. */
static struct node **sorted(const struct map *m, size_t *n, int *oom)
{
	struct node **v, *p;
	size_t i, k = 0;

	*n = 0;
	*oom = 0;
	if (m->n == 0)
		return NULL;
	v = malloc(m->n * sizeof(*v));
	if (v == NULL) {
		*oom = 1;
		return NULL;
	}
	for (i = 0; i < m->nb; i++) {
		for (p = m->b[i]; p != NULL; p = p->next)
			v[k++] = p;
	}
	qsort(v, k, sizeof(*v), cmp_nodes);
	*n = k;
	return v;
}

static void print_change(struct audit_buf *line, const struct node *n)
{
	const struct change *c = n->val;
	char when[40];

	audit_buf_reset(line);
	audit_local_time(c->time_ns, when, sizeof(when));
	audit_buf_printf(line, "  %-8s  %-8s  %-23s  %-32s  ", state_of(c),
			 c->last_op ? c->last_op : "?", when,
			 c->fp[0] ? c->fp : "-");
	if (c->from != NULL) {
		audit_escape(line, c->from, AUDIT_ESC_ARROW);
		audit_buf_str(line, " \xe2\x86\x92 ");
	}
	audit_escape(line, n->key, AUDIT_ESC_ARROW);
	if (!line->oom)
		puts(line->p);
}

static void print_changes(struct node **v, size_t n)
{
	struct audit_buf line = { 0 };
	size_t i;

	printf("%-16s%zu\n", "changed files:", n);
	if (n > 0)
		printf("  %-8s  %-8s  %-23s  %-32s  %s\n", "STATE", "LAST",
		       "TIME", "FINGERPRINT", "PATH");
	for (i = 0; i < n; i++)
		print_change(&line, v[i]);
	audit_buf_free(&line);
}

static json_t *change_json(const struct node *n)
{
	const struct change *c = n->val;
	json_t *o = json_pack("{s:s, s:s, s:I, s:I, s:o}", "state",
			      state_of(c), "last_op",
			      c->last_op ? c->last_op : "?", "seq",
			      (json_int_t)c->seq, "time_ns",
			      (json_int_t)c->time_ns, "fp",
			      c->fp[0] ? json_string(c->fp) : json_null());

	if (o == NULL || audit_json_put_exact(o, "path", n->key) != 0 ||
	    (c->from != NULL &&
	     audit_json_put_exact(o, "from", c->from) != 0)) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static int add_changes(json_t *out, struct node **v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (json_array_append_new(out, change_json(v[i])) != 0)
			return -ENOMEM;
	}
	return 0;
}

int audit_report_files(struct audit_store *s, struct audit_args *a,
		       const char *ws, struct json_t *out)
{
	struct replay r;
	struct node **v;
	char err[ERR_LEN];
	size_t n;
	int rc, oom;

	memset(&r, 0, sizeof(r));
	rc = replay_chain(audit_store_db(s), &a->f, ws, &r, err, sizeof(err));
	if (rc < 0) {
		map_free(&r.files);
		map_free(&r.dirs);
		return audit_cmd_fail(a, rc, "%s", err);
	}
	v = sorted(&r.files, &n, &oom);
	if (!oom && out == NULL)
		print_changes(v, n);
	else if (!oom)
		oom = add_changes(out, v, n) < 0;
	free(v);
	map_free(&r.files);
	map_free(&r.dirs);
	return oom ? audit_cmd_fail(a, ENOMEM, "out of memory") : 0;
}
