/*
** wsfs: the workspace filesystem daemon.
**
** main() parses the command line, builds the operation table from the
** operation families and hands over to daemon_run().  The FUSE capabilities
** are chosen here, in init, because they are policy: what the kernel may
** cache and which data paths it uses.
*/
#include "cred.h"
#include "daemon.h"
#include "log.h"
#include "wsfs.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>

const struct ws_options *ws_opt;

/* Capabilities:
** - no writeback cache unless -o writeback: each write() reaches us, so a
**   quota can refuse the very call that crosses it; with it the kernel
**   buffers writes and sends them later, in pages, which is much faster for
**   small writes but moves write errors to fsync/close;
** - fcntl and flock locks come to the daemon, which takes them on the
**   backing files (lock_table.h): kept in the kernel, they would exclude
**   nobody outside this one mount;
** - splice for large read replies (ops_file.c copies small ones), not for
**   write requests: libfuse would splice every request into a pipe first,
**   which costs more than it saves for the small requests that dominate;
** - parallel directory operations, readdirplus when the kernel thinks it
**   pays, cached symlink targets, async direct I/O, atomic O_TRUNC;
** - POSIX ACLs only with -o acl: the kernel then fetches each inode's ACL
**   with one more request before its first permission check. */
static void ws_init(void *userdata, struct fuse_conn_info *conn)
{
	(void)userdata;
	conn->want &= ~(FUSE_CAP_WRITEBACK_CACHE | FUSE_CAP_SPLICE_READ |
			FUSE_CAP_EXPORT_SUPPORT | FUSE_CAP_POSIX_ACL |
			FUSE_CAP_DONT_MASK | FUSE_CAP_HANDLE_KILLPRIV |
			FUSE_CAP_AUTO_INVAL_DATA);
	conn->want |= conn->capable &
		(FUSE_CAP_SPLICE_WRITE | FUSE_CAP_SPLICE_MOVE |
		 FUSE_CAP_PARALLEL_DIROPS | FUSE_CAP_READDIRPLUS |
		 FUSE_CAP_READDIRPLUS_AUTO | FUSE_CAP_CACHE_SYMLINKS |
		 FUSE_CAP_ASYNC_DIO | FUSE_CAP_ATOMIC_O_TRUNC |
		 FUSE_CAP_POSIX_LOCKS | FUSE_CAP_FLOCK_LOCKS);
	if (ws_opt->acl) {
		const unsigned int acl = FUSE_CAP_POSIX_ACL | FUSE_CAP_DONT_MASK;

		if ((conn->capable & acl) == acl)
			conn->want |= acl;
		else
			ws_log("the kernel offers no POSIX ACL support: -o acl ignored");
	}
	if (ws_opt->writeback)
		conn->want |= conn->capable & FUSE_CAP_WRITEBACK_CACHE;
	cred_apply_umask((conn->want & FUSE_CAP_DONT_MASK) != 0);
}

static void raise_fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
			fprintf(stderr, "wsfs: warning: cannot raise the fd limit: %s\n",
				strerror(errno));
	}
}

int main(int argc, char *argv[])
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	struct fuse_lowlevel_ops ops;
	struct ws_options opt;
	int status;

	memset(&opt, 0, sizeof(opt));
	memset(&ops, 0, sizeof(ops));
	raise_fd_limit();
	/* The kernel has already applied the caller's umask to every mode we
	** receive; applying the daemon's own on top would apply it twice. */
	umask(0);
	if (options_parse(&args, &opt) < 0) {
		fuse_opt_free_args(&args);
		options_free(&opt);
		return WS_EXIT_USAGE;
	}
	if (opt.show_help || opt.show_version) {
		if (opt.show_help)
			options_usage(argv[0]);
		else
			printf("wsfs %s (libfuse %s)\n", WSFS_VERSION,
			       fuse_pkgversion());
		fuse_opt_free_args(&args);
		options_free(&opt);
		return WS_EXIT_OK;
	}
	ws_opt = &opt;
	ws_entry_timeout = ws_attr_timeout = opt.timeout;
	ops.init = ws_init;
	ops_entry_register(&ops);
	ops_attr_register(&ops);
	ops_xattr_register(&ops);
	ops_file_register(&ops);
	ops_dir_register(&ops);
	ops_lock_register(&ops);
	status = daemon_run(&opt, &args, &ops);
	fuse_opt_free_args(&args);
	options_free(&opt);
	return status;
}
