/*
** Parsing and printing of the values operators type: sizes, inode counts,
** durations and warning thresholds.
**
** One parser serves the daemon's -o options, wsctl's flags and the control
** socket, so "10G" means the same everywhere.  Suffixes are 1024-based
** (K = KiB = 1024, M = MiB, G = GiB, T = TiB), case-insensitive, and "none"
** means no limit.  "KB"/"MB" are refused rather than guessed at, because
** half the world reads them as powers of 1000.  Every parser rejects
** negatives, fractions, overflow and trailing garbage with a message that
** names the bad value.
*/
#ifndef WSFS_QUOTA_QPARSE_H
#define WSFS_QUOTA_QPARSE_H

#include <stddef.h>
#include <stdint.h>

#include "qlimits.h"

/* A byte size: digits with an optional B/K/KiB/M/MiB/G/GiB/T/TiB suffix, or
** "none" (QUOTA_NONE). Returns 0, or -EINVAL with a message in ERR. */
int qparse_size(const char *s, uint64_t *out, char *err, size_t errlen);

/* An inode count: like a size, without the B suffix. */
int qparse_count(const char *s, uint64_t *out, char *err, size_t errlen);

/* A duration: digits with an optional s/m/h/d/w suffix (plain = seconds). */
int qparse_duration(const char *s, uint64_t *out, char *err, size_t errlen);

/* Warning thresholds: up to QUOTA_MAX_WARN ascending percentages 1..100
** separated by SEP (',' for wsctl, ':' inside -o options), or "none". */
int qparse_warn(const char *s, char sep, struct quota_limits *l, char *err,
		size_t errlen);

/* "10 GiB", "512 KiB", "37 B": exact when possible, else one decimal. */
void qformat_size(uint64_t v, char *buf, size_t len);

/* Canonical machine forms: a number or "none"; "85,95" or "none". */
void qformat_value(uint64_t v, char *buf, size_t len);
void qformat_warn(const struct quota_limits *l, char sep, char *buf, size_t len);

#endif
