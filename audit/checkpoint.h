/*
** Signed checkpoints: a chain's size and head, signed, in the C2SP
** signed-note form, so a copy kept off the host (-o audit_anchor) proves
** what the log held at that moment even if the whole database is rewritten.
**
**     <host>/wsfs/<ws>            origin ("<host>/wsfs" for the host chain)
**     <size>                      records in the chain (its last seq)
**     <base64 head_size>
**     time <ns since the epoch>
**                                 (empty line)
**     — <key name> <base64(key id, 4 bytes BE || signature, 64 bytes)>
**
** The signature covers the text up to and including the line "time ...\n".
*/
#ifndef WSFS_AUDIT_CHECKPOINT_H
#define WSFS_AUDIT_CHECKPOINT_H

#include <stdint.h>

#include "keys.h"
#include "record.h"

struct audit_checkpoint {
	char *origin;
	char *ws;		/* derived from the origin */
	int64_t size;
	uint8_t head[AUDIT_HASH_LEN];
	int64_t time_ns;
	char *note;		/* the whole signed note */
};

/* A signed note for the given state, malloc'd; NULL on failure. */
char *audit_checkpoint_sign(const struct audit_key *k, const char *host,
			    const char *ws, int64_t size,
			    const uint8_t head[AUDIT_HASH_LEN], int64_t time_ns);

/* Parses NOTE into OUT and checks its signature with K. 0 if well formed
** and signed by K; -EINVAL (malformed) or -EBADMSG (bad signature) with
** the reason in WHY. OUT is filled whenever parsing succeeded. */
int audit_checkpoint_check(const char *note, const struct audit_key *k,
			   struct audit_checkpoint *out, char *why,
			   size_t whylen);

void audit_checkpoint_clear(struct audit_checkpoint *c);

#endif
