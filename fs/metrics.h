/*
** The Prometheus metrics file (-o metrics=FILE): see metrics.c.
*/
#ifndef WSFS_METRICS_H
#define WSFS_METRICS_H

#include <stddef.h>
#include <stdio.h>

/* Writes the workspace's figures in the control protocol's "key value"
** form: to STATUS what the "status" command replies, to QUOTA what the
** "quota" command replies. Called on the metrics thread. */
typedef void (*metrics_source_fn)(FILE *status, FILE *quota, void *arg);

/* Checks at option time that PATH can name the metrics file: absolute, not
** a directory, in a directory that exists. Returns 0, or -1 with a
** one-line reason in ERR. */
int metrics_check_path(const char *path, char *err, size_t errlen);

/* Writes the file once (so a mount that cannot write it fails) and starts
** the thread that rewrites it every INTERVAL_S seconds. Returns 0, or -1
** with a one-line reason in ERR. */
int metrics_start(const char *path, unsigned int interval_s,
		  metrics_source_fn source, void *arg, char *err, size_t errlen);

/* Stops the thread and writes the final file, with wsfs_mounted 0. Call
** after the session has ended and before what SOURCE reads is torn down.
** Does nothing if metrics_start() did not succeed. */
void metrics_stop(void);

#endif
