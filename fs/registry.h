/*
** The workspace registry in <state>/state.db, shared by every daemon on a host
** and by wsctl.
**
** A mounted daemon owns its workspace name through an exclusive flock on
** <state>/run/<name>.lock, held for the daemon's whole life; the kernel drops
** it when the process dies however it dies.  The `mounts` row only describes
** the mount (mountpoint, upper, pid, socket); whether it is live is always
** decided by the lock, never by the row or the pid, so a stale row of a
** SIGKILLed daemon, or a recycled pid, cannot be mistaken for a live mount.
** Claiming a name whose lock is free replaces the stale row.
**
** state.db is opened in WAL mode with a busy timeout, so many daemons and
** wsctl can use it at once.
*/
#ifndef WSFS_REGISTRY_H
#define WSFS_REGISTRY_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define WS_NAME_MAX 64

struct ws_mount {
	char name[WS_NAME_MAX + 1];
	char mountpoint[PATH_MAX];
	char upper[PATH_MAX];
	char socket[PATH_MAX];
	pid_t pid;
	int64_t start_time;	/* seconds since the epoch */
	int live;		/* registry_list/get: 1 while the daemon holds its lock */
};

struct registry;

/* Opens (CREATE != 0: creates, with run/ and mode 0700) the state directory
** DIR and its state.db. Missing directory without CREATE: -ENOENT. */
int registry_open(const char *dir, int create, struct registry **out,
		  char *err, size_t errlen);
void registry_close(struct registry *reg);

/* Takes the name's lock and writes its row. -EBUSY, with the holder's
** mountpoint and pid in ERR, if another live daemon has the name. The lock
** stays held until registry_release() or process exit. */
int registry_claim(struct registry *reg, const struct ws_mount *m,
		   char *err, size_t errlen);

/* Deletes the row and drops the lock taken by registry_claim. */
int registry_release(struct registry *reg, const char *name);

/* All rows, sorted by name, with `live` filled in. *OUT is malloc'd. */
int registry_list(struct registry *reg, struct ws_mount **out, size_t *n);

/* One row; -ENOENT if unknown. */
int registry_get(struct registry *reg, const char *name, struct ws_mount *out);

const char *registry_dir(const struct registry *reg);

/* A new connection to state.db (WAL, busy timeout set) for the modules that
** keep their own tables in it (quota/qstore.c); close with sqlite3_close.
** -ENOENT if no daemon has created state.db yet. */
struct sqlite3;
int registry_db(struct registry *reg, struct sqlite3 **db, char *err,
		size_t errlen);

/* <state>/run/<name><suffix> into BUF; -ENAMETOOLONG if it does not fit. */
int registry_run_path(const struct registry *reg, const char *name,
		      const char *suffix, char *buf, size_t len);

/* The state directory to use: EXPLICIT if non-NULL, else $WSFS_STATE, else
** /var/lib/wsfs. */
const char *registry_default_dir(const char *explicit_dir);

#endif
