/*
** The daemon side of the control socket (protocol in ctl_proto.h).
**
** One thread accepts connections and serves them one at a time: requests are
** rare (an operator's wsctl) and tiny, so a thread per client would only add
** ways to exhaust the daemon.  Each connection gets a 2 s I/O timeout so a
** stuck client cannot block the next one.
*/
#ifndef WSFS_CTL_SERVER_H
#define WSFS_CTL_SERVER_H

#include <stdio.h>
#include <stddef.h>

/* Handles one request line (no trailing newline). Writes the reply body
** ("key value" lines) to OUT and returns 0, or returns -errno after writing a
** one-line message (no newline) to ERRMSG. The server writes "ok"/"error". */
typedef int (*ctl_handler_fn)(const char *request, FILE *out,
			      char *errmsg, size_t errlen, void *arg);

struct ctl_server;

/* Binds SOCK_PATH (mode 0600; a stale socket file is replaced only if nothing
** listens on it) and starts the serving thread. */
int ctl_server_start(const char *sock_path, ctl_handler_fn fn, void *arg,
		     struct ctl_server **out, char *err, size_t errlen);

/* The credentials (pid, uid, gid) of the client whose request a handler is
** serving, as the kernel reports them (SO_PEERCRED); -ENOENT outside one. */
struct ucred;
int ctl_server_peer(struct ucred *out);

/* Stops the thread, closes and unlinks the socket, frees SRV. */
void ctl_server_stop(struct ctl_server *srv);

#endif
