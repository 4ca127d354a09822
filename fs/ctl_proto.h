/*
** The control-socket protocol between a wsfs daemon and wsctl.
**
** A client connects to run/<name>.sock under the state directory, writes one
** request line (a command word and space-separated arguments, at most
** CTL_MAX_REQUEST bytes, ending in '\n') and reads until EOF.  The reply's
** first line is "ok" or "error <one-line message>"; after "ok" come zero or
** more "key value" lines, where the key has no spaces and the value runs to
** the end of the line.  Flat key/value lines keep both ends free of a JSON
** parser: wsctl renders them as a table or as JSON itself.
**
** Commands today: "status".  Later issues add their own command words.
*/
#ifndef WSFS_CTL_PROTO_H
#define WSFS_CTL_PROTO_H

#include <stddef.h>

#define CTL_MAX_REQUEST 4096
#define CTL_MAX_REPLY   (1 << 20)

/* Sends CMD (without the newline) to the daemon at SOCK_PATH and returns its
** whole reply in a malloc'd NUL-terminated string in *REPLY.  Returns 0, or
** -errno with a one-line explanation in ERR. A 2 s timeout applies to each
** read and write so a wedged daemon cannot hang wsctl. */
int ctl_request(const char *sock_path, const char *cmd, char **reply,
		char *err, size_t errlen);

#endif
