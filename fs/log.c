/*
** Timestamped log lines on stderr.  One fprintf per line under stdio's own
** stream lock keeps lines from different threads whole.
*/
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <time.h>

void ws_log(const char *fmt, ...)
{
	char msg[1024], stamp[32];
	struct tm tm;
	time_t now = time(NULL);
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (!localtime_r(&now, &tm) ||
	    !strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm))
		stamp[0] = '\0';
	fprintf(stderr, "%s wsfs: %s\n", stamp, msg);
}
