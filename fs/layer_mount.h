/*
** The layers of a workspace over a daemon's life: settling which stack to
** show (given options replace the stored one), sweeping scratch that dead
** daemons left, grafting each layer onto its target, reporting them, and
** wiping this daemon's scratch when the mount ends.
*/
#ifndef WSFS_LAYER_MOUNT_H
#define WSFS_LAYER_MOUNT_H

#include <stdio.h>

#include "options.h"
#include "registry.h"

/* Before the upper is opened. For a whole-ephemeral workspace it sets
** OPT->upper to the scratch directory made for it. Prints its own "wsfs:"
** error and returns -1. */
int lmount_prepare(struct registry *reg, struct ws_options *opt);

/* Once the inode table and the quota are up: makes each target's directory
** in the upper if missing (charged like any directory) and grafts the
** layer there. Prints its own "wsfs:" error and returns -1. */
int lmount_graft(const struct ws_options *opt);

/* Once the log is the daemon's own: what the sweep found. */
void lmount_log_setup(void);

/* "layer.N MODE TARGET SOURCE" and "ephemeral.N TARGET BYTES INODES"
** lines for the control socket's status reply. */
void lmount_status(FILE *out);

/* After the session ended: wipes this daemon's scratch and logs what went.
** With CHARGED, what the wipe removed is given back to the quota ledger
** first, so the ledger saved after it covers the upper alone. */
void lmount_stop(int charged);

#endif
