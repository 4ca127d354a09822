/*
** Reading /proc/self/mountinfo (see mountinfo.h).
**
** Field 5 is the mountpoint and the field after the " - " separator the
** filesystem type; paths are octal-escaped (\040 for a space), so they are
** unescaped before comparing.  The last matching line wins, because a later
** mount on the same path hides the earlier ones.
*/
#include "mountinfo.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>

static void unescape(char *s)
{
	char *out = s;

	for (; *s != '\0'; s++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' &&
		    s[2] >= '0' && s[2] <= '7' && s[3] >= '0' && s[3] <= '7') {
			*out++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 +
					(s[3] - '0'));
			s += 3;
		} else {
			*out++ = *s;
		}
	}
	*out = '\0';
}

/* The mountpoint (field 5) and type (after " - ") of LINE, in place. */
static int split_line(char *line, char **mnt, char **type)
{
	char *save = NULL, *field, *sep;
	int i;

	sep = strstr(line, " - ");
	if (sep == NULL)
		return -1;
	*sep = '\0';
	field = strtok_r(line, " ", &save);
	for (i = 1; field != NULL && i < 5; i++)
		field = strtok_r(NULL, " ", &save);
	if (field == NULL)
		return -1;
	*mnt = field;
	*type = strtok_r(sep + 3, " ", &save);
	return *type != NULL ? 0 : -1;
}

int mountinfo_type_at(const char *path, char *type, size_t len)
{
	char *line = NULL, *mnt, *fstype;
	size_t cap = 0;
	int found = 0;
	FILE *f;

	f = fopen("/proc/self/mountinfo", "re");
	if (f == NULL)
		return -errno;
	while (getline(&line, &cap, f) > 0) {
		line[strcspn(line, "\n")] = '\0';
		if (split_line(line, &mnt, &fstype) < 0)
			continue;
		unescape(mnt);
		if (strcmp(mnt, path) != 0)
			continue;
		snprintf(type, len, "%s", fstype);
		found = 1;
	}
	free(line);
	fclose(f);
	return found;
}

int mountinfo_clear_dead(const char *path)
{
	char type[64];
	struct stat st;
	int rc;

	rc = mountinfo_type_at(path, type, sizeof(type));
	if (rc <= 0)
		return rc;
	if (strcmp(type, "fuse.wsfs") != 0)
		return 0;
	if (stat(path, &st) == 0 || errno != ENOTCONN)
		return 0;
	/* Nothing can be served from a dead connection, so detaching cannot
	** lose data; a plain umount would fail while anything holds it. */
	if (umount2(path, MNT_DETACH) < 0)
		return -errno;
	return 1;
}
