/*
** Reading and replacing the cursor file of `audit search --checkpoint`.
**
** The file is small (one line per chain) and written whole each time, so
** it is read into an array and rewritten through a temporary file and
** rename(2): a pull that dies half way leaves the previous cursor, and the
** next pull then repeats records rather than skipping any, the safe
** direction for an audit feed.  The file is checked strictly when read:
** a cursor that cannot be trusted must stop the pull, not restart it from
** the beginning of every chain.
*/
#include "audit_cursor.h"
#include "grow.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "record.h"

#define WS_HEX_MAX 512

void audit_cursor_free(struct audit_cursor *c)
{
	size_t i;

	for (i = 0; i < c->n; i++)
		free(c->e[i].ws);
	free(c->e);
	memset(c, 0, sizeof(*c));
}

static struct audit_cursor_entry *find(const struct audit_cursor *c,
				       const char *ws)
{
	size_t i;

	for (i = 0; i < c->n; i++) {
		if (strcmp(c->e[i].ws, ws) == 0)
			return &c->e[i];
	}
	return NULL;
}

int64_t audit_cursor_get(const struct audit_cursor *c, const char *ws)
{
	const struct audit_cursor_entry *e = find(c, ws);

	return e ? e->seq : 0;
}

int audit_cursor_set(struct audit_cursor *c, const char *ws, int64_t seq)
{
	struct audit_cursor_entry *e = find(c, ws);

	if (e != NULL) {
		e->seq = seq;
		return 0;
	}
	if (c->n == c->cap &&
	    grow_array((void **)&c->e, &c->cap, sizeof(*c->e), 8) < 0)
		return -ENOMEM;
	c->e[c->n].ws = strdup(ws);
	if (c->e[c->n].ws == NULL)
		return -ENOMEM;
	c->e[c->n++].seq = seq;
	return 0;
}

/* ---- reading -------------------------------------------------------- */

static int hex_nibble(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	return -1;
}

/* "-" or an even number of lowercase hex digits, into WS. */
static int parse_ws_hex(const char *hex, size_t len, char *ws)
{
	size_t i;
	int hi, lo;

	if (len == 1 && hex[0] == '-') {
		ws[0] = '\0';
		return 0;
	}
	if (len == 0 || len % 2 != 0 || len > WS_HEX_MAX)
		return -1;
	for (i = 0; i < len; i += 2) {
		hi = hex_nibble(hex[i]);
		lo = hex_nibble(hex[i + 1]);
		if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
			return -1;
		ws[i / 2] = (char)(hi << 4 | lo);
	}
	ws[len / 2] = '\0';
	return 0;
}

static int parse_seq(const char *s, int64_t *out)
{
	int64_t v = 0;

	if (*s == '\0')
		return -1;
	for (; *s != '\0'; s++) {
		if (*s < '0' || *s > '9' || v > (INT64_MAX - 9) / 10)
			return -1;
		v = v * 10 + (*s - '0');
	}
	*out = v;
	return 0;
}

/* One line, without its newline. */
static int parse_line(struct audit_cursor *c, char *line)
{
	char ws[WS_HEX_MAX / 2 + 1], *space = strchr(line, ' ');
	int64_t seq;

	if (space == NULL ||
	    parse_ws_hex(line, (size_t)(space - line), ws) < 0 ||
	    parse_seq(space + 1, &seq) < 0 || find(c, ws) != NULL)
		return -EINVAL;
	return audit_cursor_set(c, ws, seq);
}

static int load_stream(FILE *f, const char *file, struct audit_cursor *c,
		       char *err, size_t errlen)
{
	char *line = NULL;
	size_t cap = 0, lineno = 0;
	ssize_t n;
	int rc = 0;

	while (rc == 0 && (n = getline(&line, &cap, f)) >= 0) {
		lineno++;
		if (n == 0 || line[n - 1] != '\n') {
			rc = -EINVAL;
			break;
		}
		line[n - 1] = '\0';
		rc = parse_line(c, line);
	}
	if (rc == -EINVAL)
		snprintf(err, errlen, "bad checkpoint file %s: line %zu is not "
			 "\"<workspace in hex, or -> <seq>\"", file, lineno);
	else if (rc < 0)
		snprintf(err, errlen, "cannot read %s: %s", file,
			 strerror(-rc));
	else if (ferror(f)) {
		rc = -EIO;
		snprintf(err, errlen, "cannot read %s: %s", file,
			 strerror(errno));
	}
	free(line);
	return rc;
}

int audit_cursor_load(const char *file, struct audit_cursor *c, char *err,
		      size_t errlen)
{
	FILE *f = fopen(file, "re");
	int rc;

	memset(c, 0, sizeof(*c));
	if (f == NULL && errno == ENOENT)
		return 0;
	if (f == NULL) {
		rc = -errno;
		snprintf(err, errlen, "cannot open %s: %s", file,
			 strerror(errno));
		return rc;
	}
	rc = load_stream(f, file, c, err, errlen);
	fclose(f);
	if (rc < 0)
		audit_cursor_free(c);
	return rc;
}

/* ---- writing -------------------------------------------------------- */

static int cmp_entries(const void *a, const void *b)
{
	return strcmp(((const struct audit_cursor_entry *)a)->ws,
		      ((const struct audit_cursor_entry *)b)->ws);
}

static int write_entries(FILE *f, const struct audit_cursor *c)
{
	struct audit_cursor_entry *sorted;
	char hex[WS_HEX_MAX + 1];
	size_t i, len;

	sorted = malloc((c->n ? c->n : 1) * sizeof(*sorted));
	if (sorted == NULL)
		return -ENOMEM;
	memcpy(sorted, c->e, c->n * sizeof(*sorted));
	qsort(sorted, c->n, sizeof(*sorted), cmp_entries);
	for (i = 0; i < c->n; i++) {
		len = strlen(sorted[i].ws);
		if (len * 2 > WS_HEX_MAX)
			continue;	/* no workspace name is this long */
		audit_hex((const uint8_t *)sorted[i].ws, len, hex);
		fprintf(f, "%s %lld\n", len ? hex : "-",
			(long long)sorted[i].seq);
	}
	free(sorted);
	return 0;
}

/* Writes C to the new file FD (closed here), and syncs it. */
static int write_file(int fd, const struct audit_cursor *c)
{
	FILE *f = fdopen(fd, "w");
	int rc;

	if (f == NULL) {
		rc = -errno;
		close(fd);
		return rc;
	}
	rc = write_entries(f, c);
	errno = 0;
	if (rc == 0 && (fflush(f) != 0 || ferror(f) || fsync(fd) < 0))
		rc = errno ? -errno : -EIO;
	if (fclose(f) != 0 && rc == 0)
		rc = -errno;
	return rc;
}

int audit_cursor_save(const char *file, const struct audit_cursor *c,
		      char *err, size_t errlen)
{
	char tmp[PATH_MAX];
	int fd, rc;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp%ld", file, (long)getpid()) >=
	    (int)sizeof(tmp)) {
		snprintf(err, errlen, "cannot save %s: name too long", file);
		return -ENAMETOOLONG;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	rc = fd < 0 ? -errno : write_file(fd, c);
	if (rc == 0 && rename(tmp, file) < 0)
		rc = -errno;
	if (rc < 0) {
		snprintf(err, errlen, "cannot save %s: %s", file,
			 strerror(-rc));
		if (fd >= 0)
			unlink(tmp);
	}
	return rc;
}
