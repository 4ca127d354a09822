/*
** The JSON Lines export, which is also the offline bundle.
**
** Line 1 names the bundle and carries the signing key:
**   {"type":"bundle","version":1,"key":"<verifier line>","host":"..."}
** then one line per record, in chain order:
**   {"type":"record","ws":"..","seq":N,"time":"2026-11-27T17:02:30.123456789Z",
**    "time_ns":N,"host":"..","layer":"..","uid":N,"gid":N,"pid":N,
**    "comm":"..","op":"..","path":"..","path2":"..","ino":N,"bytes":N,
**    "result":"..","detail":"..","fp":"..","leaf":"<hex>","head":"<hex>"}
** a start line before each chain's first record, with the head the chain
** had before it (all zero when the export starts at seq 1):
**   {"type":"start","ws":"..","seq":N-1,"head":"<hex>"}
** and one per checkpoint:
**   {"type":"checkpoint","ws":"..","size":N,"time_ns":N,"note":"..."}
**
** A string field that is not valid UTF-8 is written as "<name>_b64" holding
** base64 of its exact bytes instead of "<name>", so every byte of a file
** name survives and the record re-encodes to the same leaf.
*/
#ifndef WSFS_AUDIT_JSONL_H
#define WSFS_AUDIT_JSONL_H

#include "checkpoint.h"
#include "record.h"
#include "sink.h"

int audit_jsonl_header(struct audit_sink *s, const char *verifier,
		       const char *host);
int audit_jsonl_start(struct audit_sink *s, const char *ws, int64_t seq,
		      const uint8_t head[AUDIT_HASH_LEN]);
int audit_jsonl_record(struct audit_sink *s, const struct audit_record *r);
int audit_jsonl_checkpoint(struct audit_sink *s, const char *ws, int64_t size,
			   int64_t time_ns, const char *note);

/* Writes a JSON string literal of S: UTF-8 kept, control characters
** escaped. For fields that are known valid UTF-8 (the caller checks with
** audit_utf8_valid). */
int audit_json_string(struct audit_sink *s, const char *str);
int audit_utf8_valid(const char *s);

/* "2026-11-27T17:02:30.123456789Z" into BUF (at least 32 bytes). */
void audit_format_time(int64_t time_ns, char *buf, size_t len);

#endif
