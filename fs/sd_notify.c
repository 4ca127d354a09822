/*
** The service manager's readiness protocol, written out rather than linked.
**
** A manager that wants to know when a service is ready (systemd with
** Type=notify) puts the address of an AF_UNIX datagram socket in
** $NOTIFY_SOCKET: a path, or an abstract name written with a leading '@'.
** The service sends newline-separated VAR=VALUE assignments to it, one
** datagram per message; the kernel attaches the sender's pid, which the
** manager checks against NotifyAccess=.  That is the whole protocol, so it
** is a few lines here instead of a dependency on libsystemd.
**
** wsfs sends two messages:
**
**   READY=1, STATUS=, MAINPID=   once the mount is live, the same moment
**                                 at which a detaching wsfs lets its
**                                 caller go;
**   STOPPING=1, STATUS=           when the session has ended and teardown
**                                 (unmount, ledger, audit) begins.
**
** Who sends READY=1 depends on the mode.  In the foreground (-f, as
** `wsctl mount --foreground` runs it under a unit) the daemon is the
** manager's main process and sends it itself.  When wsfs detaches, the
** process the manager started is the parent, and only it passes a
** NotifyAccess=main check; so the parent sends READY=1 with MAINPID= set
** to the daemon just before it exits, and the manager follows the daemon
** from then on.  The manager reads notifications before child exits for
** exactly this hand-over.
**
** The address is read once, at start-up, and the variable is removed at
** once: a child that inherited it could declare the workspace ready or
** stopping on the daemon's behalf.  Both processes of a detach keep the
** copy made here.
**
** Sending never holds the daemon up for long: the socket has a send
** timeout, so a manager that stopped reading costs at most that, and a
** failure is reported to the caller, which logs it and carries on.  The
** mount works the same whether or not anyone was told.
*/
#include "sd_notify.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#define SEND_TIMEOUT_S 5

static struct {
	int enabled;
	int stopping_sent;
	struct sockaddr_un addr;
	socklen_t addrlen;
	char name[256];		/* workspace name, made safe for STATUS= */
	char mountpoint[1024];	/* likewise; longer ones are cut */
} sdn;

/* A value must not contain a newline (it would start a new assignment,
** say a forged MAINPID=) nor other control bytes the journal would show
** raw.  Cutting a long path is harmless: STATUS= is only for people. */
static void copy_printable(char *dst, size_t len, const char *src)
{
	size_t i;

	for (i = 0; i + 1 < len && src[i] != '\0'; i++)
		dst[i] = (unsigned char)src[i] < 0x20 || src[i] == 0x7f ?
			 '?' : src[i];
	dst[i] = '\0';
}

/* '/path' is a socket file; '@name' is in the abstract namespace, where
** the name is the bytes after a leading NUL and its length is the
** address length (no terminating NUL). */
static int parse_address(const char *text)
{
	size_t len = strlen(text);

	memset(&sdn.addr, 0, sizeof(sdn.addr));
	sdn.addr.sun_family = AF_UNIX;
	if (len < 2 || (text[0] != '/' && text[0] != '@'))
		return -EAFNOSUPPORT;	/* also vsock:, which we do not speak */
	if (len > sizeof(sdn.addr.sun_path) - (text[0] == '/'))
		return -ENAMETOOLONG;
	memcpy(sdn.addr.sun_path, text, len);
	if (text[0] == '@')
		sdn.addr.sun_path[0] = '\0';
	sdn.addrlen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len +
				  (text[0] == '/'));
	return 0;
}

int sdnotify_init(const char *name, const char *mountpoint)
{
	const char *env = getenv("NOTIFY_SOCKET");
	int r;

	sdn.enabled = 0;
	if (env == NULL)
		return 0;
	r = env[0] == '\0' ? 0 : parse_address(env);
	if (env[0] != '\0' && r == 0)
		sdn.enabled = 1;
	/* Removed even when unusable: a child must not try it either. */
	if (unsetenv("NOTIFY_SOCKET") < 0 && r == 0)
		r = -errno;
	copy_printable(sdn.name, sizeof(sdn.name), name ? name : "");
	copy_printable(sdn.mountpoint, sizeof(sdn.mountpoint),
		       mountpoint ? mountpoint : "");
	return r;
}

static int send_message(const char *msg)
{
	struct timeval tv = { .tv_sec = SEND_TIMEOUT_S, .tv_usec = 0 };
	size_t len = strlen(msg);
	ssize_t n;
	int fd, err = 0;

	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0) {
		err = -errno;
		goto out;
	}
	do {
		n = sendto(fd, msg, len, MSG_NOSIGNAL,
			   (const struct sockaddr *)&sdn.addr, sdn.addrlen);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		err = -errno;
	else if ((size_t)n != len)
		err = -EMSGSIZE;	/* a datagram goes whole or not at all */
out:
	if (close(fd) < 0 && err == 0)
		err = -errno;
	return err;
}

int sdnotify_ready(pid_t mainpid)
{
	char msg[sizeof(sdn.name) + sizeof(sdn.mountpoint) + 96];

	if (!sdn.enabled)
		return 0;
	snprintf(msg, sizeof(msg), "READY=1\nSTATUS=workspace %s mounted at %s\n"
		 "MAINPID=%ld\n", sdn.name, sdn.mountpoint, (long)mainpid);
	return send_message(msg);
}

int sdnotify_stopping(void)
{
	char msg[sizeof(sdn.name) + 64];

	if (!sdn.enabled || sdn.stopping_sent)
		return 0;
	sdn.stopping_sent = 1;
	snprintf(msg, sizeof(msg), "STOPPING=1\nSTATUS=workspace %s unmounting\n",
		 sdn.name);
	return send_message(msg);
}
