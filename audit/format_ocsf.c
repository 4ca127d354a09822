/*
** The OCSF format: each record as an OCSF 1.1 File System Activity event
** (class 1001, category 1 System Activity), one JSON object per line, for
** SIEMs that speak the Open Cybersecurity Schema Framework.
**
** OCSF describes what happened to a file in a small set of activities, so
** the mapping from wsfs ops is many-to-one (see the table below and the
** wsctl(8) man page, which must agree):
**
**   1 Create          create mknod symlink link mkdir
**   2 Read            read readdir readlink
**   3 Update          write fallocate copy_file_range, and a release
**                     that wrote through its handle (bytes or a fingerprint)
**   4 Delete          unlink rmdir wipe
**   5 Rename          rename
**   6 Set Attributes  setattr setxattr removexattr
**   8 Get Attributes  lookup getattr getxattr listxattr statfs
**  12 Mount           mount
**  13 Unmount         unmount
**  14 Open            open opendir
**  99 Other           everything else: a release that only read, copy-up
**                     and whiteout (overlay bookkeeping behind another
**                     op), the audit-*, quota-* events
**
** OCSF's typed fields are filled from the record where the meaning matches
** (actor.user.uid is a string in OCSF, the pid a number; time is in ms),
** and a denial is severity 3 (Medium) where everything else is 1
** (Informational).  Because a mapping loses detail, `unmapped` carries the
** whole wsfs record, chain hashes included, with the exact bytes of every
** text field: as is when it is UTF-8, else as "<field>_b64" like the JSON
** Lines export.  The OCSF fields themselves show non-UTF-8 names escaped
** (format.h), since a JSON string cannot hold such bytes.
*/
#include "format.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "jsonl.h"

#define OCSF_VERSION "1.1.0"
#define CLASS_UID 1001
#define ACT_OTHER 99

enum file_type { FT_UNKNOWN = 0, FT_FILE = 1, FT_FOLDER = 2, FT_LINK = 7 };

static const struct {
	const char *op;
	int activity;
	enum file_type type;
} op_map[] = {
	{ "create", 1, FT_FILE }, { "mknod", 1, FT_UNKNOWN },
	{ "symlink", 1, FT_LINK }, { "link", 1, FT_UNKNOWN },
	{ "mkdir", 1, FT_FOLDER },
	{ "read", 2, FT_FILE }, { "readdir", 2, FT_FOLDER },
	{ "readlink", 2, FT_LINK },
	{ "write", 3, FT_FILE }, { "fallocate", 3, FT_FILE },
	{ "copy_file_range", 3, FT_FILE }, { "release", 3, FT_FILE },
	{ "unlink", 4, FT_UNKNOWN }, { "rmdir", 4, FT_FOLDER },
	{ "wipe", 4, FT_UNKNOWN },
	{ "rename", 5, FT_UNKNOWN },
	{ "setattr", 6, FT_UNKNOWN }, { "setxattr", 6, FT_UNKNOWN },
	{ "removexattr", 6, FT_UNKNOWN },
	{ "lookup", 8, FT_UNKNOWN }, { "getattr", 8, FT_UNKNOWN },
	{ "getxattr", 8, FT_UNKNOWN }, { "listxattr", 8, FT_UNKNOWN },
	{ "statfs", 8, FT_UNKNOWN },
	{ "mount", 12, FT_FOLDER }, { "unmount", 13, FT_FOLDER },
	{ "open", 14, FT_FILE }, { "opendir", 14, FT_FOLDER },
};

#define N_OPS (sizeof(op_map) / sizeof(op_map[0]))

static const char *activity_name(int id)
{
	switch (id) {
	case 1: return "Create";
	case 2: return "Read";
	case 3: return "Update";
	case 4: return "Delete";
	case 5: return "Rename";
	case 6: return "Set Attributes";
	case 8: return "Get Attributes";
	case 12: return "Mount";
	case 13: return "Unmount";
	case 14: return "Open";
	default: return "Other";
	}
}

static const char *file_type_name(int type)
{
	switch (type) {
	case FT_FILE: return "Regular File";
	case FT_FOLDER: return "Folder";
	case FT_LINK: return "Symbolic Link";
	default: return "Unknown";
	}
}

static int op_index(const char *op)
{
	size_t i;

	for (i = 0; i < N_OPS; i++) {
		if (strcmp(op_map[i].op, op) == 0)
			return (int)i;
	}
	return -1;
}

struct audit_ocsf_activity audit_ocsf_activity(const struct audit_record *r)
{
	struct audit_ocsf_activity a = { ACT_OTHER, "Other" };
	int i = op_index(r->op);

	if (i < 0)
		return a;
	/* A release that wrote nothing is only a close. */
	if (strcmp(r->op, "release") == 0 && r->bytes == 0 && r->fp[0] == 0)
		return a;
	a.id = op_map[i].activity;
	a.name = activity_name(a.id);
	return a;
}

int audit_ocsf_file_type(const char *op)
{
	int i = op_index(op);

	return i < 0 ? FT_UNKNOWN : (int)op_map[i].type;
}

/* ---- JSON helpers --------------------------------------------------- */

/* Sets KEY to V (stolen), noting a failure (V NULL included) in *OK. */
static void put(json_t *o, const char *key, json_t *v, int *ok)
{
	if (json_object_set_new(o, key, v) != 0)
		*ok = 0;
}

/* S as a JSON string: as it is when it is UTF-8, else escaped. */
static json_t *shown_string(const char *s)
{
	struct audit_buf b = { 0 };
	json_t *v;

	if (audit_utf8_valid(s)) {
		v = json_string(s);
		if (v != NULL)
			return v;
	}
	audit_escape(&b, s, 0);
	v = b.oom ? NULL : json_string(b.p ? b.p : "");
	audit_buf_free(&b);
	return v;
}

int audit_json_put_exact(json_t *o, const char *key, const char *s)
{
	size_t n = strlen(s);
	char name[64], *b64;
	int rc;

	if (audit_utf8_valid(s))
		return json_object_set_new(o, key, json_stringn(s, n));
	b64 = malloc(audit_b64_len(n) + 1);
	if (b64 == NULL)
		return -1;
	audit_b64_encode((const uint8_t *)s, n, b64);
	snprintf(name, sizeof(name), "%s_b64", key);
	rc = json_object_set_new(o, name, json_string(b64));
	free(b64);
	return rc;
}

/* The exact bytes of S in O, noting a failure in *OK. */
static void put_exact(json_t *o, const char *key, const char *s, int *ok)
{
	if (audit_json_put_exact(o, key, s) != 0)
		*ok = 0;
}

static json_t *hex_string(const uint8_t h[AUDIT_HASH_LEN])
{
	char hex[2 * AUDIT_HASH_LEN + 1];

	audit_hex(h, AUDIT_HASH_LEN, hex);
	return json_string(hex);
}

/* ---- the event's objects -------------------------------------------- */

static json_t *actor(const struct audit_record *r, const char *user, int *ok)
{
	json_t *a = json_object(), *u = json_object(), *p = json_object();
	char uid[24];

	snprintf(uid, sizeof(uid), "%lld", (long long)r->uid);
	put(u, "uid", json_string(uid), ok);
	if (user != NULL)
		put(u, "name", shown_string(user), ok);
	put(p, "pid", json_integer(r->pid), ok);
	if (r->comm[0] != '\0')
		put(p, "name", shown_string(r->comm), ok);
	put(a, "user", u, ok);
	put(a, "process", p, ok);
	return a;
}

static json_t *device(const struct audit_record *r, int *ok)
{
	json_t *d = json_object();

	put(d, "hostname", shown_string(r->host), ok);
	put(d, "type_id", json_integer(0), ok);
	put(d, "type", json_string("Unknown"), ok);
	return d;
}

/* "/a/b" into parent "/a" and name "b"; "/a" into "/" and "a". */
static void put_names(json_t *f, const char *path, int *ok)
{
	const char *slash = strrchr(path, '/');
	json_t *parent;
	char *dir;

	if (slash == NULL || slash[1] == '\0') {
		put(f, "name", shown_string(path), ok);
		return;
	}
	put(f, "name", shown_string(slash + 1), ok);
	dir = strndup(path, slash == path ? 1 : (size_t)(slash - path));
	parent = dir ? shown_string(dir) : NULL;
	put(f, "parent_folder", parent, ok);
	free(dir);
}

static json_t *hashes(const char *fp, int *ok)
{
	json_t *list = json_array(), *h = json_object();

	put(h, "algorithm_id", json_integer(99), ok);
	put(h, "algorithm", json_string("XXH3-128"), ok);
	put(h, "value", shown_string(fp), ok);
	if (json_array_append_new(list, h) != 0)
		*ok = 0;
	return list;
}

static json_t *file(const char *path, int type, const char *fp, int *ok)
{
	json_t *f = json_object();

	if (path[0] != '\0')
		put(f, "path", shown_string(path), ok);
	put_names(f, path, ok);
	put(f, "type_id", json_integer(type), ok);
	put(f, "type", json_string(file_type_name(type)), ok);
	if (fp != NULL && fp[0] != '\0')
		put(f, "hashes", hashes(fp, ok), ok);
	return f;
}

static json_t *metadata(const struct audit_record *r, int *ok)
{
	json_t *m = json_object(), *p = json_object();

	put(p, "name", json_string("wsfs"), ok);
	put(p, "vendor_name", json_string("wsfs"), ok);
	put(p, "version", json_string(WSFS_VERSION), ok);
	put(m, "version", json_string(OCSF_VERSION), ok);
	put(m, "product", p, ok);
	put(m, "log_name", json_string("audit.db"), ok);
	put(m, "sequence", json_integer(r->seq), ok);
	return m;
}

/* The whole record, nothing mapped away. */
static json_t *unmapped(const struct audit_record *r, int *ok)
{
	json_t *u = json_object();

	put_exact(u, "ws", r->ws, ok);
	put(u, "seq", json_integer(r->seq), ok);
	put(u, "time_ns", json_integer(r->time_ns), ok);
	put_exact(u, "host", r->host, ok);
	put_exact(u, "layer", r->layer, ok);
	put(u, "uid", json_integer(r->uid), ok);
	put(u, "gid", json_integer(r->gid), ok);
	put(u, "pid", json_integer(r->pid), ok);
	put_exact(u, "comm", r->comm, ok);
	put_exact(u, "op", r->op, ok);
	put_exact(u, "path", r->path, ok);
	put_exact(u, "path2", r->path2, ok);
	put(u, "ino", json_integer(r->ino), ok);
	put(u, "bytes", json_integer(r->bytes), ok);
	put_exact(u, "result", r->result, ok);
	put_exact(u, "detail", r->detail, ok);
	put_exact(u, "fp", r->fp, ok);
	put(u, "leaf", hex_string(r->leaf), ok);
	put(u, "head", hex_string(r->head), ok);
	return u;
}

/* "rename /a → /b: EACCES", names escaped. */
static json_t *message(const struct audit_record *r)
{
	struct audit_buf b = { 0 };
	json_t *v;

	audit_escape(&b, r->op, 0);
	if (r->path[0] != '\0') {
		audit_buf_add(&b, " ", 1);
		audit_escape(&b, r->path, AUDIT_ESC_ARROW);
	}
	if (r->path2[0] != '\0') {
		audit_buf_str(&b, " \xe2\x86\x92 ");
		audit_escape(&b, r->path2, AUDIT_ESC_ARROW);
	}
	if (strcmp(r->result, "0") != 0) {
		audit_buf_str(&b, ": ");
		audit_escape(&b, r->result, 0);
	}
	v = b.oom ? NULL : json_string(b.p ? b.p : "");
	audit_buf_free(&b);
	return v;
}

static void put_class(json_t *e, const struct audit_record *r, int *ok)
{
	struct audit_ocsf_activity a = audit_ocsf_activity(r);
	char type_name[64];

	snprintf(type_name, sizeof(type_name), "File System Activity: %s",
		 a.name);
	put(e, "class_uid", json_integer(CLASS_UID), ok);
	put(e, "class_name", json_string("File System Activity"), ok);
	put(e, "category_uid", json_integer(1), ok);
	put(e, "category_name", json_string("System Activity"), ok);
	put(e, "activity_id", json_integer(a.id), ok);
	put(e, "activity_name", json_string(a.name), ok);
	put(e, "type_uid", json_integer(CLASS_UID * 100 + a.id), ok);
	put(e, "type_name", json_string(type_name), ok);
}

static void put_outcome(json_t *e, const struct audit_record *r, int *ok)
{
	int success = strcmp(r->result, "0") == 0;
	int denied = audit_result_denied(r->result);

	put(e, "severity_id", json_integer(denied ? 3 : 1), ok);
	put(e, "severity", json_string(denied ? "Medium" : "Informational"),
	    ok);
	put(e, "status_id", json_integer(success ? 1 : 2), ok);
	put(e, "status", json_string(success ? "Success" : "Failure"), ok);
	put(e, "status_code", shown_string(r->result), ok);
}

static json_t *event(const struct audit_record *r, const char *user, int *ok)
{
	int type = audit_ocsf_file_type(r->op);
	json_t *e = json_object();

	put_class(e, r, ok);
	put(e, "time", json_integer(r->time_ns / 1000000), ok);
	put_outcome(e, r, ok);
	put(e, "message", message(r), ok);
	put(e, "actor", actor(r, user, ok), ok);
	put(e, "device", device(r, ok), ok);
	put(e, "file", file(r->path, type, r->fp, ok), ok);
	/* The second name of a rename or link is where the file ends up. */
	if (r->path2[0] != '\0')
		put(e, "file_result", file(r->path2, type, NULL, ok), ok);
	put(e, "metadata", metadata(r, ok), ok);
	put(e, "unmapped", unmapped(r, ok), ok);
	return e;
}

char *audit_ocsf_json(const struct audit_record *r, const char *user)
{
	int ok = 1;
	json_t *e = event(r, user, &ok);
	char *text = NULL;

	if (e != NULL && ok)
		text = json_dumps(e, JSON_COMPACT);
	json_decref(e);
	return text;
}
