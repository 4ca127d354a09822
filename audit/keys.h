/*
** The Ed25519 key that signs audit checkpoints.
**
** The private key lives in <state>/keys/audit.key (PKCS#8 PEM, mode 0600, in
** a 0700 directory) and never enters a workspace; it is created on first
** use.  Its public half is written beside it as audit.pub in the signed-note
** verifier format, one line:
**
**     NAME+KEYID+BASE64(0x01 || 32-byte public key)
**
** where NAME is "<hostname>/wsfs" and KEYID the first 4 bytes (8 hex digits)
** of SHA-256(NAME || "\n" || 0x01 || public key).  That same line is what
** `wsctl audit key` prints and what `--pubkey FILE` accepts (a PEM public key
** is accepted too).
*/
#ifndef WSFS_AUDIT_KEYS_H
#define WSFS_AUDIT_KEYS_H

#include <stddef.h>
#include <stdint.h>

struct audit_key;

/* Loads <state>/keys/audit.key, creating keys/ and the key pair when CREATE
** is set and none exists (O_EXCL, so two daemons racing agree on one). */
int audit_key_load(const char *state_dir, int create, struct audit_key **out,
		   char *err, size_t errlen);

/* A public key alone, from FILE (verifier line or PEM), for verification. */
int audit_key_load_public(const char *file, struct audit_key **out,
			  char *err, size_t errlen);

/* A public key from a verifier line (as stored in an export bundle). */
int audit_key_parse_verifier(const char *line, struct audit_key **out,
			     char *err, size_t errlen);

void audit_key_free(struct audit_key *k);

/* Whether the key can sign (has its private half). */
int audit_key_can_sign(const struct audit_key *k);

/* The verifier line (static inside K). */
const char *audit_key_verifier(const struct audit_key *k);

/* The 4-byte key id, as in signature lines. */
uint32_t audit_key_id(const struct audit_key *k);

/* The key's name, or NULL for a key read from a bare PEM public key: such
** a key accepts the name a signature line gives. */
const char *audit_key_name(const struct audit_key *k);

/* The key id K would have under NAME (for keys without a name of their
** own). */
uint32_t audit_key_id_for(const struct audit_key *k, const char *name);

/* Whether A and B hold the same public key (names aside). */
int audit_key_same(const struct audit_key *a, const struct audit_key *b);

/* 0, or -EIO (no private key, libcrypto failure). */
int audit_key_sign(const struct audit_key *k, const void *msg, size_t len,
		   uint8_t sig[64]);

/* 1 if SIG is K's signature of MSG, else 0. */
int audit_key_verify(const struct audit_key *k, const void *msg, size_t len,
		     const uint8_t sig[64]);

#endif
