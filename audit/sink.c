/*
** Export sinks and the bundle line reader (see sink.h).
**
** Both directions stream: an export of millions of records, or a bundle
** read back for verification, holds one buffer of compressed and one of
** plain bytes, never the whole file.  A sink remembers its first error and
** refuses further writes, so an exporter can write a million lines without
** checking each and still learn at close time that the disk filled up.
**
** The reader decides between plain text and zstd by the frame magic in the
** first four bytes, so a compressed bundle needs no flag and no file name
** convention.  Concatenated zstd frames (as `cat a.zst b.zst` makes) read
** as one stream.  Lines have no fixed limit: a path is at most 4096 bytes,
** but JSON escaping can make a line six times as long as its fields, so the
** line buffer simply grows, up to a cap that only garbage can reach.
*/
#include "sink.h"

#include "internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <zstd.h>

#define ZSTD_LEVEL 3
#define PRINTF_STACK 512
/* No line of a bundle comes near this; a file that does is not one. */
#define LINE_MAX_BYTES (64u << 20)
#define LINE_FIRST_CAP 4096

static const uint8_t zstd_magic[4] = { 0x28, 0xb5, 0x2f, 0xfd };

/* ---- writing ------------------------------------------------------------ */

struct audit_sink {
	FILE *f;
	int is_stdout;
	ZSTD_CCtx *cctx;
	void *zbuf;		/* compressed output */
	size_t zcap;
	int err;		/* first error, -errno */
	const char *path;
};

static int sink_fail(struct audit_sink *s, int err)
{
	if (s->err == 0)
		s->err = err;
	return s->err;
}

static int open_file(const char *path, struct audit_sink *s)
{
	if (strcmp(path, "-") == 0) {
		s->f = stdout;
		s->is_stdout = 1;
		return 0;
	}
	s->f = fopen(path, "we");
	return s->f ? 0 : -errno;
}

static int setup_zstd(struct audit_sink *s)
{
	s->cctx = ZSTD_createCCtx();
	s->zcap = ZSTD_CStreamOutSize();
	s->zbuf = malloc(s->zcap);
	if (s->cctx == NULL || s->zbuf == NULL)
		return -ENOMEM;
	if (ZSTD_isError(ZSTD_CCtx_setParameter(s->cctx,
						ZSTD_c_compressionLevel,
						ZSTD_LEVEL)) ||
	    ZSTD_isError(ZSTD_CCtx_setParameter(s->cctx, ZSTD_c_checksumFlag,
						1)))
		return -EINVAL;
	return 0;
}

static void sink_free(struct audit_sink *s)
{
	if (s->f != NULL && !s->is_stdout)
		(void)fclose(s->f);
	ZSTD_freeCCtx(s->cctx);
	free(s->zbuf);
	free(s);
}

int audit_sink_open(const char *path, int zstd, struct audit_sink **out,
		    char *err, size_t errlen)
{
	struct audit_sink *s = calloc(1, sizeof(*s));
	int rc;

	if (s == NULL) {
		audit_set_err(err, errlen, "out of memory");
		return -ENOMEM;
	}
	s->path = path;
	rc = open_file(path, s);
	if (rc < 0) {
		audit_set_err(err, errlen, "cannot create %s: %s", path,
			      strerror(-rc));
		sink_free(s);
		return rc;
	}
	rc = zstd ? setup_zstd(s) : 0;
	if (rc < 0) {
		audit_set_err(err, errlen, "cannot set up zstd compression");
		sink_free(s);
		return rc;
	}
	*out = s;
	return 0;
}

static int put_raw(struct audit_sink *s, const void *buf, size_t len)
{
	if (len > 0 && fwrite(buf, 1, len, s->f) != len)
		return sink_fail(s, errno ? -errno : -EIO);
	return 0;
}

/* Runs the compressor over IN with MODE, writing what it produces; for
** ZSTD_e_end until the frame is complete. */
static int compress(struct audit_sink *s, ZSTD_inBuffer *in,
		    ZSTD_EndDirective mode)
{
	ZSTD_outBuffer o;
	size_t left;

	do {
		o.dst = s->zbuf;
		o.size = s->zcap;
		o.pos = 0;
		left = ZSTD_compressStream2(s->cctx, &o, in, mode);
		if (ZSTD_isError(left))
			return sink_fail(s, -EIO);
		if (put_raw(s, s->zbuf, o.pos) < 0)
			return s->err;
	} while (mode == ZSTD_e_end ? left != 0 : in->pos < in->size);
	return 0;
}

int audit_sink_write(struct audit_sink *s, const void *buf, size_t len)
{
	ZSTD_inBuffer in = { buf, len, 0 };

	if (s->err != 0)
		return s->err;
	if (s->cctx == NULL)
		return put_raw(s, buf, len);
	return compress(s, &in, ZSTD_e_continue);
}

int audit_sink_printf(struct audit_sink *s, const char *fmt, ...)
{
	char stack[PRINTF_STACK], *buf = stack;
	va_list ap;
	int n, rc;

	va_start(ap, fmt);
	n = vsnprintf(stack, sizeof(stack), fmt, ap);
	va_end(ap);
	if (n < 0)
		return sink_fail(s, -EINVAL);
	if ((size_t)n >= sizeof(stack)) {
		buf = malloc((size_t)n + 1);
		if (buf == NULL)
			return sink_fail(s, -ENOMEM);
		va_start(ap, fmt);
		(void)vsnprintf(buf, (size_t)n + 1, fmt, ap);
		va_end(ap);
	}
	rc = audit_sink_write(s, buf, (size_t)n);
	if (buf != stack)
		free(buf);
	return rc;
}

static int finish(struct audit_sink *s)
{
	ZSTD_inBuffer in = { NULL, 0, 0 };

	if (s->cctx != NULL && s->err == 0)
		(void)compress(s, &in, ZSTD_e_end);
	if (fflush(s->f) != 0)
		(void)sink_fail(s, -errno);
	if (!s->is_stdout) {
		if (fclose(s->f) != 0)
			(void)sink_fail(s, -errno);
		s->f = NULL;
	}
	return s->err;
}

int audit_sink_close(struct audit_sink *s, char *err, size_t errlen)
{
	int rc;

	if (s == NULL)
		return 0;
	rc = finish(s);
	if (rc < 0)
		audit_set_err(err, errlen, "writing %s: %s",
			      s->is_stdout ? "standard output" : s->path,
			      strerror(-rc));
	sink_free(s);
	return rc;
}

/* ---- reading ------------------------------------------------------------ */

struct audit_lines {
	FILE *f;
	ZSTD_DCtx *dctx;
	size_t frame_left;	/* 0 between frames, else more is due */
	/* Raw file bytes (compressed or not). */
	uint8_t *in;
	size_t in_cap, in_pos, in_len;
	/* Plain bytes ready to be split into lines. */
	uint8_t *out;		/* ours when decompressing, else into IN */
	uint8_t *zout;		/* the decompression buffer, if any */
	size_t out_cap, out_pos, out_len;
	int eof;
	/* The current line. */
	char *line;
	size_t line_cap;
	size_t lineno;
	char error[256];
	const char *path;
};

static int fill_in(struct audit_lines *l)
{
	size_t n;

	if (l->in_pos < l->in_len || l->eof)
		return 0;
	n = fread(l->in, 1, l->in_cap, l->f);
	if (n == 0 && ferror(l->f)) {
		audit_set_err(l->error, sizeof(l->error), "reading %s: %s",
			      l->path, strerror(errno));
		return -EIO;
	}
	l->in_pos = 0;
	l->in_len = n;
	l->eof = n == 0;
	return 0;
}

/* Makes more plain bytes available: 1 if some, 0 at the end, <0 error. */
static int fill_out_zstd(struct audit_lines *l)
{
	ZSTD_outBuffer o = { l->out, l->out_cap, 0 };
	ZSTD_inBuffer i;
	int rc;

	while (o.pos == 0) {
		rc = fill_in(l);
		if (rc < 0)
			return rc;
		if (l->eof && l->in_pos >= l->in_len) {
			if (l->frame_left != 0) {
				audit_set_err(l->error, sizeof(l->error),
					      "%s: truncated zstd stream",
					      l->path);
				return -EIO;
			}
			return 0;
		}
		i.src = l->in;
		i.size = l->in_len;
		i.pos = l->in_pos;
		l->frame_left = ZSTD_decompressStream(l->dctx, &o, &i);
		l->in_pos = i.pos;
		if (ZSTD_isError(l->frame_left)) {
			audit_set_err(l->error, sizeof(l->error),
				      "%s: bad zstd data: %s", l->path,
				      ZSTD_getErrorName(l->frame_left));
			return -EIO;
		}
	}
	l->out_pos = 0;
	l->out_len = o.pos;
	return 1;
}

static int fill_out_plain(struct audit_lines *l)
{
	int rc = fill_in(l);

	if (rc < 0)
		return rc;
	if (l->in_pos >= l->in_len)
		return 0;
	/* Plain files are split straight out of the input buffer. */
	l->out = l->in + l->in_pos;
	l->out_pos = 0;
	l->out_len = l->in_len - l->in_pos;
	l->in_pos = l->in_len;
	return 1;
}

static int fill_out(struct audit_lines *l)
{
	if (l->out_pos < l->out_len)
		return 1;
	return l->dctx ? fill_out_zstd(l) : fill_out_plain(l);
}

static int line_reserve(struct audit_lines *l, size_t need)
{
	size_t cap = l->line_cap ? l->line_cap : LINE_FIRST_CAP;
	char *p;

	if (need <= l->line_cap)
		return 0;
	if (need > LINE_MAX_BYTES) {
		audit_set_err(l->error, sizeof(l->error), "%s: line %zu is "
			      "longer than %u bytes", l->path, l->lineno,
			      LINE_MAX_BYTES);
		return -E2BIG;
	}
	while (cap < need)
		cap *= 2;
	p = realloc(l->line, cap);
	if (p == NULL) {
		audit_set_err(l->error, sizeof(l->error), "out of memory");
		return -ENOMEM;
	}
	l->line = p;
	l->line_cap = cap;
	return 0;
}

/* Sniffs the first bytes for the zstd magic. */
static int detect(struct audit_lines *l)
{
	int rc = fill_in(l);

	if (rc < 0)
		return rc;
	if (l->in_len < sizeof(zstd_magic) ||
	    memcmp(l->in, zstd_magic, sizeof(zstd_magic)) != 0)
		return 0;
	l->dctx = ZSTD_createDCtx();
	l->out_cap = ZSTD_DStreamOutSize();
	l->zout = malloc(l->out_cap);
	l->out = l->zout;
	if (l->dctx == NULL || l->zout == NULL) {
		audit_set_err(l->error, sizeof(l->error), "out of memory");
		return -ENOMEM;
	}
	return 0;
}

int audit_lines_open(const char *path, struct audit_lines **out, char *err,
		     size_t errlen)
{
	struct audit_lines *l = calloc(1, sizeof(*l));
	int rc;

	if (l == NULL) {
		audit_set_err(err, errlen, "out of memory");
		return -ENOMEM;
	}
	l->path = path;
	l->in_cap = ZSTD_DStreamInSize();
	l->in = malloc(l->in_cap);
	l->f = fopen(path, "re");
	if (l->in == NULL || l->f == NULL) {
		rc = l->in ? -errno : -ENOMEM;
		audit_set_err(err, errlen, "cannot open %s: %s", path,
			      strerror(-rc));
		audit_lines_close(l);
		return rc;
	}
	rc = detect(l);
	if (rc < 0) {
		audit_set_err(err, errlen, "%s", l->error);
		audit_lines_close(l);
		return rc;
	}
	*out = l;
	return 0;
}

const char *audit_lines_next(struct audit_lines *l, size_t *len,
			     size_t *lineno)
{
	size_t used = 0, n;
	uint8_t *nl;
	int rc;

	l->lineno++;
	for (;;) {
		rc = fill_out(l);
		if (rc < 0 || (rc == 0 && used == 0))
			return NULL;
		if (rc == 0)
			break;
		nl = memchr(l->out + l->out_pos, '\n', l->out_len - l->out_pos);
		n = nl ? (size_t)(nl - (l->out + l->out_pos))
		       : l->out_len - l->out_pos;
		if (line_reserve(l, used + n + 1) < 0)
			return NULL;
		memcpy(l->line + used, l->out + l->out_pos, n);
		used += n;
		l->out_pos += n + (nl ? 1 : 0);
		if (nl != NULL)
			break;
	}
	if (line_reserve(l, used + 1) < 0)
		return NULL;
	l->line[used] = '\0';
	*len = used;
	*lineno = l->lineno;
	return l->line;
}

const char *audit_lines_error(const struct audit_lines *l)
{
	return l->error[0] ? l->error : NULL;
}

void audit_lines_close(struct audit_lines *l)
{
	if (l == NULL)
		return;
	if (l->f != NULL)
		(void)fclose(l->f);
	ZSTD_freeDCtx(l->dctx);
	free(l->in);
	free(l->zout);
	free(l->line);
	free(l);
}
