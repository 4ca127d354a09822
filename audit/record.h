/*
** One audit record, and the canonical byte encoding its hash is taken over.
**
** A record says who (host, workspace, uid, gid, pid, process name) did what
** (operation, path, second path, inode, bytes, detail, content fingerprint)
** with which result (0, or the errno name) and when (UTC, nanoseconds).
** Every text field is a NUL-terminated byte string: file names may hold any
** byte but NUL, so no field needs a length of its own, and nothing is
** re-encoded on the way to the database or into the hash.
**
** CANONICAL ENCODING (version 1).  What leaf_n hashes; an outside tool can
** re-verify a log from this description alone:
**
**   "wsfs-audit-1"                (12 bytes, no terminator)
**   then each field, in this order:
**     seq, time_ns                       integers
**     host, ws, layer                    strings
**     uid, gid, pid                      integers
**     comm, op, path, path2              strings
**     ino, bytes                         integers
**     result, detail, fp                 strings
**   integer: 8 bytes, big-endian two's complement
**   string:  4-byte big-endian length, then that many bytes (no NUL)
**
**   leaf_n = SHA-256(0x00 || encoding of record n)
**   head_n = SHA-256(0x01 || head_{n-1} || leaf_n),  head_0 = 32 zero bytes
**
** Each workspace has its own chain (ws = its name; seq counts from 1); the
** host's own events (wsctl queries without a workspace) use ws "".
*/
#ifndef WSFS_AUDIT_RECORD_H
#define WSFS_AUDIT_RECORD_H

#include <stddef.h>
#include <stdint.h>

#define AUDIT_HASH_LEN 32

struct audit_record {
	int64_t seq;		/* set by audit_store_append */
	int64_t time_ns;	/* UTC, since the epoch */
	const char *host;
	const char *ws;		/* "" for the host chain */
	const char *layer;	/* upper, ro, cow, ephemeral, or "-" */
	int64_t uid, gid, pid;
	const char *comm;	/* caller's process name; "" if unknown */
	const char *op;		/* open, create, rename, mount ... */
	const char *path;	/* workspace path, "/" based; "" if none */
	const char *path2;	/* rename and link target; "" if none */
	int64_t ino;		/* inode number the agent sees; 0 if none */
	int64_t bytes;		/* bytes written (or read), 0 if none */
	const char *result;	/* "0" or an errno name: "EACCES" */
	const char *detail;	/* op-specific "key=value key=value"; "" if none */
	const char *fp;		/* XXH3-128 of content, 32 hex digits; "" if none */
	uint8_t leaf[AUDIT_HASH_LEN];	/* set by audit_store_append */
	uint8_t head[AUDIT_HASH_LEN];
};

/* A copy of R in one malloc'd block (strings included; NULL strings become
** ""), so a queue can own it and free() it. NULL on ENOMEM. */
struct audit_record *audit_record_dup(const struct audit_record *r);

/* Appends the canonical encoding of R to *BUF (capacity *CAP, grown with
** realloc). Returns the encoded length, or 0 on ENOMEM. */
size_t audit_record_encode(const struct audit_record *r, uint8_t **buf,
			   size_t *cap);

/* leaf = SHA-256(0x00 || encoding). 0, or -ENOMEM / -EIO. */
int audit_leaf(const struct audit_record *r, uint8_t leaf[AUDIT_HASH_LEN]);

/* out = SHA-256(0x01 || prev || leaf). */
void audit_head_next(const uint8_t prev[AUDIT_HASH_LEN],
		     const uint8_t leaf[AUDIT_HASH_LEN],
		     uint8_t out[AUDIT_HASH_LEN]);

/* "0" for 0, else the errno's symbolic name ("EDQUOT") for a positive or
** negative errno; "E<number>" for one without a name. Static storage for
** known names, a thread-local buffer otherwise. */
const char *audit_errname(int err);

/* The reverse of audit_errname, for queries: the positive errno for a name
** ("EDQUOT", an alias such as "EWOULDBLOCK", or "E<number>"), 0 for "0",
** -EINVAL for anything else. */
int audit_errno_from_name(const char *name);

/* Whether RESULT is a denial: EACCES, EPERM, EROFS or EDQUOT. */
int audit_result_denied(const char *result);

/* Hex of N bytes into OUT (2N+1 bytes). */
void audit_hex(const uint8_t *in, size_t n, char *out);

#endif
