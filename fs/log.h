/*
** The daemon's log: one line per event on stderr, which is the terminal in
** the foreground and <state>/log/<name>.log once daemonized.
*/
#ifndef WSFS_LOG_H
#define WSFS_LOG_H

void ws_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
