/*
** wsctl top: the mounted workspaces' usage and activity, refreshed live.
**
** Every interval, top lists the registry, asks each live daemon for its
** "status" and "quota" replies (the same ones `wsctl status` and `wsctl
** quota show` render) and prints one table row per workspace, busiest
** first.  Rates are differences of the daemon's counters divided by the
** difference of its own uptime_s, so they are measured on the daemon's
** clock, between the moments the counters were read, and a slow reply
** cannot inflate them.  The first frame has no earlier sample and shows
** the averages since each mount, as vmstat's first line shows averages
** since boot; so does the first frame after a workspace is remounted (a
** new pid or start time).
**
** Workspaces whose daemon is gone (the registry's lock probe says stale)
** are not rows: they have no usage to watch, and `wsctl ls` lists them.
** The title line counts them, so none vanishes unnoticed.  A live daemon
** that does not answer keeps its row, with "-" in every figure.
**
** On a terminal each frame clears the screen and redraws in place, and
** "q" (or SIGINT) ends the command; otherwise frames are plain text, one
** after the other, separated by a blank line and free of escape codes, so
** that scripts and tests can read them.  --iterations N stops after N
** frames.
*/
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "ctl_proto.h"
#include "qlimits.h"
#include "qparse.h"
#include "util.h"
#include "wsctl.h"

#define TOP_DEFAULT_INTERVAL 2.0
#define TOP_MIN_INTERVAL 0.1
#define TOP_MAX_INTERVAL 3600.0

/* One workspace at one moment. */
struct sample {
	char name[WS_NAME_MAX + 1];
	pid_t pid;
	int64_t start_time;
	int answered;		/* both replies came and parsed */
	double uptime;		/* the daemon's uptime_s when it answered */
	uint64_t used[2], limit[2];	/* bytes, inodes; QUOTA_NONE: no limit */
	uint64_t ops, bytes_read, bytes_written, denials;
	int64_t open_files;
	uint64_t locks_held, locks_waiting;
	int has_audit;
	uint64_t audit_queued;
	/* Filled by rate(): per second since the last sample, or since the
	** mount on a first sight. */
	double ops_rate, read_rate, write_rate;
};

struct frame {
	struct sample *s;
	size_t n;
	size_t stale;		/* registry rows whose daemon is gone */
	size_t silent;		/* live daemons that did not answer */
};

static volatile sig_atomic_t stop_requested;

static void on_stop_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

/* ---- arguments ------------------------------------------------------------ */

static int parse_interval(const char *text, double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(text, &end);
	if (errno || end == text || *end || !isfinite(v) ||
	    v < TOP_MIN_INTERVAL || v > TOP_MAX_INTERVAL ||
	    strpbrk(text, "xXnN"))
		return wsctl_usage_err("top", "--interval %s: give seconds from "
				       "0.1 to 3600", text);
	*out = v;
	return 0;
}

static int parse_iterations(const char *text, uint64_t *out)
{
	if (wsctl_parse_u64(text, out) < 0 || *out == 0 || *out > INT32_MAX)
		return wsctl_usage_err("top", "--iterations %s: give a whole "
				       "number from 1 to %d", text, INT32_MAX);
	return 0;
}

/* The value of option NAME at ARGV[*I] (--name V or --name=V), or NULL if
** ARGV[*I] is not that option; *MISSING is set when V is absent. */
static const char *option_value(int argc, char **argv, int *i,
				const char *name, int *missing)
{
	size_t len = strlen(name);
	const char *arg = argv[*i];

	if (strncmp(arg, name, len) != 0)
		return NULL;
	if (arg[len] == '=')
		return arg + len + 1;
	if (arg[len] != '\0')
		return NULL;
	if (*i + 1 >= argc) {
		*missing = 1;
		return NULL;
	}
	return argv[++*i];
}

/* Returns 0 to run, -1 after printing help, or WSCTL_USAGE. */
static int parse_top_args(const struct wsctl *ctx, int argc, char **argv,
			  double *interval, uint64_t *iterations)
{
	const char *v;
	int missing = 0, rc;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			char *help[] = { "help", "top", NULL };

			cmd_help(ctx, 2, help);
			return -1;
		}
		if ((v = option_value(argc, argv, &i, "--interval", &missing))) {
			rc = parse_interval(v, interval);
		} else if ((v = option_value(argc, argv, &i, "--iterations",
					     &missing))) {
			rc = parse_iterations(v, iterations);
		} else if (missing) {
			return wsctl_usage_err("top", "%s needs a value", argv[i]);
		} else if (argv[i][0] == '-') {
			return wsctl_usage_err("top", "unknown option '%s'",
					       argv[i]);
		} else {
			return wsctl_usage_err("top", "unexpected argument '%s'",
					       argv[i]);
		}
		if (rc != 0)
			return rc;
	}
	return 0;
}

/* ---- asking the daemons --------------------------------------------------- */

/* Calls FN for each "key value" line of an "ok" reply; -EPROTO otherwise. */
static int each_kv(char *reply, void (*fn)(struct sample *, const char *,
					   const char *),
		   struct sample *s)
{
	char *line, *nl, *sp;

	nl = strchr(reply, '\n');
	if (!nl || (size_t)(nl - reply) != 2 || strncmp(reply, "ok", 2) != 0)
		return -EPROTO;
	for (line = nl + 1; *line; line = nl) {
		nl = strchr(line, '\n');
		if (nl)
			*nl++ = '\0';
		else
			nl = line + strlen(line);
		sp = strchr(line, ' ');
		if (!sp)
			continue;
		*sp = '\0';
		fn(s, line, sp + 1);
	}
	return 0;
}

static uint64_t as_u64(const char *val)
{
	uint64_t n;

	return wsctl_parse_u64(val, &n) == 0 ? n : 0;
}

static void status_kv(struct sample *s, const char *key, const char *val)
{
	if (strncmp(key, "ops.", 4) == 0)
		s->ops += as_u64(val);
	else if (strncmp(key, "denied.", 7) == 0)
		s->denials += as_u64(val);
	else if (strcmp(key, "uptime_s") == 0)
		s->uptime = strtod(val, NULL);
	else if (strcmp(key, "bytes_read") == 0)
		s->bytes_read = as_u64(val);
	else if (strcmp(key, "bytes_written") == 0)
		s->bytes_written = as_u64(val);
	else if (strcmp(key, "open_files") == 0)
		s->open_files = strtoll(val, NULL, 10);
	else if (strcmp(key, "locks.held") == 0)
		s->locks_held = as_u64(val);
	else if (strcmp(key, "locks.waiting") == 0)
		s->locks_waiting = as_u64(val);
	else if (strcmp(key, "audit.queued") == 0) {
		s->audit_queued = as_u64(val);
		s->has_audit = 1;
	}
}

static uint64_t as_limit(const char *val)
{
	uint64_t n;

	return wsctl_parse_u64(val, &n) == 0 ? n : QUOTA_NONE;
}

static void quota_kv(struct sample *s, const char *key, const char *val)
{
	if (strcmp(key, "bytes_used") == 0)
		s->used[0] = as_u64(val);
	else if (strcmp(key, "bytes_limit") == 0)
		s->limit[0] = as_limit(val);
	else if (strcmp(key, "inodes_used") == 0)
		s->used[1] = as_u64(val);
	else if (strcmp(key, "inodes_limit") == 0)
		s->limit[1] = as_limit(val);
}

static int ask(const char *socket, const char *cmd, struct sample *s,
	       void (*fn)(struct sample *, const char *, const char *))
{
	char err[512], *reply;
	int r;

	if (ctl_request(socket, cmd, &reply, err, sizeof(err)) < 0)
		return -1;
	r = each_kv(reply, fn, s);
	free(reply);
	return r;
}

static void sample_one(const struct ws_mount *m, struct sample *s)
{
	memset(s, 0, sizeof(*s));
	snprintf(s->name, sizeof(s->name), "%s", m->name);
	s->pid = m->pid;
	s->start_time = m->start_time;
	s->limit[0] = s->limit[1] = QUOTA_NONE;
	s->answered = ask(m->socket, "status", s, status_kv) == 0 &&
		      ask(m->socket, "quota", s, quota_kv) == 0;
}

static int collect(const struct wsctl *ctx, struct frame *f)
{
	struct registry *reg;
	struct ws_mount *ms;
	size_t n;
	int rc;

	memset(f, 0, sizeof(*f));
	rc = wsctl_open_registry(ctx, &reg);
	if (rc != 0)
		return rc;
	rc = registry_list(reg, &ms, &n);
	registry_close(reg);
	if (rc < 0)
		return wsctl_registry_err(ctx, rc);
	f->s = calloc(n ? n : 1, sizeof(*f->s));
	if (!f->s) {
		free(ms);
		wsctl_err("out of memory");
		return WSCTL_ERR;
	}
	for (size_t i = 0; i < n; i++) {
		if (!ms[i].live) {
			f->stale++;
			continue;
		}
		sample_one(&ms[i], &f->s[f->n]);
		if (!f->s[f->n].answered)
			f->silent++;
		f->n++;
	}
	free(ms);
	return 0;
}

/* ---- rates ------------------------------------------------------------------ */

static const struct sample *earlier(const struct frame *prev,
				    const struct sample *s)
{
	for (size_t i = 0; prev && i < prev->n; i++) {
		const struct sample *p = &prev->s[i];

		if (p->answered && p->pid == s->pid &&
		    p->start_time == s->start_time && strcmp(p->name, s->name) == 0)
			return p;
	}
	return NULL;
}

static double per_second(uint64_t now, uint64_t then, double secs)
{
	return now >= then && secs > 0 ? (double)(now - then) / secs : 0.0;
}

static void rate(struct sample *s, const struct sample *p)
{
	struct sample zero;

	if (!s->answered)
		return;
	if (!p || s->uptime <= p->uptime) {
		memset(&zero, 0, sizeof(zero));
		p = &zero;
	}
	s->ops_rate = per_second(s->ops, p->ops, s->uptime - p->uptime);
	s->read_rate = per_second(s->bytes_read, p->bytes_read,
				  s->uptime - p->uptime);
	s->write_rate = per_second(s->bytes_written, p->bytes_written,
				   s->uptime - p->uptime);
}

/* Busiest first; silent daemons last; then by name, for a stable order. */
static int busier_first(const void *a, const void *b)
{
	const struct sample *x = a, *y = b;

	if (x->answered != y->answered)
		return y->answered - x->answered;
	if (x->ops_rate != y->ops_rate)
		return x->ops_rate < y->ops_rate ? 1 : -1;
	return strcmp(x->name, y->name);
}

/* ---- printing --------------------------------------------------------------- */

enum column {
	C_NAME, C_USED, C_LIMIT, C_USE, C_INODES, C_ILIMIT, C_IUSE, C_OPS,
	C_READ, C_WRITE, C_OPEN, C_LOCKS, C_DENIED, C_AUDITQ, C_COUNT
};

static const char *const headings[C_COUNT] = {
	"NAME", "USED", "LIMIT", "USE%", "INODES", "ILIMIT", "IUSE%", "OPS/S",
	"READ/S", "WRITE/S", "OPEN", "LOCKS", "DENIED", "AUDITQ",
};

#define CELL_MAX (WS_NAME_MAX + 8)	/* a name is the widest cell */

static void percent_cell(uint64_t used, uint64_t limit, char *buf, size_t len)
{
	if (!quota_limited(limit) || limit == 0)
		snprintf(buf, len, "-");
	else
		snprintf(buf, len, "%.0f%%", 100.0 * (double)used / (double)limit);
}

static void rate_size_cell(double per_s, char *buf, size_t len)
{
	qformat_size((uint64_t)(per_s + 0.5), buf, len);
}

static void fill_cells(const struct sample *s, char cells[C_COUNT][CELL_MAX])
{
	snprintf(cells[C_NAME], CELL_MAX, "%s", s->name);
	if (!s->answered) {
		for (int c = C_USED; c < C_COUNT; c++)
			snprintf(cells[c], CELL_MAX, "-");
		return;
	}
	qformat_size(s->used[0], cells[C_USED], CELL_MAX);
	qformat_size(s->limit[0], cells[C_LIMIT], CELL_MAX);
	percent_cell(s->used[0], s->limit[0], cells[C_USE], CELL_MAX);
	snprintf(cells[C_INODES], CELL_MAX, "%" PRIu64, s->used[1]);
	qformat_value(s->limit[1], cells[C_ILIMIT], CELL_MAX);
	percent_cell(s->used[1], s->limit[1], cells[C_IUSE], CELL_MAX);
	snprintf(cells[C_OPS], CELL_MAX, "%.1f", s->ops_rate);
	rate_size_cell(s->read_rate, cells[C_READ], CELL_MAX);
	rate_size_cell(s->write_rate, cells[C_WRITE], CELL_MAX);
	snprintf(cells[C_OPEN], CELL_MAX, "%" PRId64, s->open_files);
	snprintf(cells[C_LOCKS], CELL_MAX, "%" PRIu64 "/%" PRIu64,
		 s->locks_held, s->locks_waiting);
	snprintf(cells[C_DENIED], CELL_MAX, "%" PRIu64, s->denials);
	if (s->has_audit)
		snprintf(cells[C_AUDITQ], CELL_MAX, "%" PRIu64, s->audit_queued);
	else
		snprintf(cells[C_AUDITQ], CELL_MAX, "-");
}

/* The name is left-aligned, figures right-aligned, two spaces between
** columns (no cell holds two spaces in a row, so a script can split on
** them). */
static void print_row(char cells[C_COUNT][CELL_MAX], const int *width)
{
	for (int c = 0; c < C_COUNT; c++) {
		int pad = width[c] - (int)strlen(cells[c]);

		if (c == C_NAME) {
			wsctl_print_cell(stdout, cells[c], 0);
			printf("%*s", pad, "");
		} else {
			printf("  %*s%s", pad, "", cells[c]);
		}
	}
	fputc('\n', stdout);
}

static void print_frame(const struct frame *f, double interval, int tty,
			int first)
{
	char (*cells)[C_COUNT][CELL_MAX];
	char head[C_COUNT][CELL_MAX];
	int width[C_COUNT];
	char clock[16];
	time_t now = time(NULL);
	struct tm tm;

	if (tty)
		fputs("\033[H\033[2J", stdout);
	else if (!first)
		fputc('\n', stdout);
	if (localtime_r(&now, &tm) == NULL ||
	    strftime(clock, sizeof(clock), "%H:%M:%S", &tm) == 0)
		snprintf(clock, sizeof(clock), "?");
	printf("wsctl top - %s, every %gs: %zu mounted", clock, interval, f->n);
	if (f->silent)
		printf(" (%zu not answering)", f->silent);
	printf(", %zu stale not shown%s\n", f->stale,
	       first ? "; rates since mount" : "");
	cells = calloc(f->n ? f->n : 1, sizeof(*cells));
	if (!cells) {
		wsctl_err("out of memory");
		return;
	}
	for (int c = 0; c < C_COUNT; c++) {
		snprintf(head[c], CELL_MAX, "%s", headings[c]);
		width[c] = (int)strlen(head[c]);
	}
	for (size_t i = 0; i < f->n; i++) {
		fill_cells(&f->s[i], cells[i]);
		for (int c = 0; c < C_COUNT; c++)
			if ((int)strlen(cells[i][c]) > width[c])
				width[c] = (int)strlen(cells[i][c]);
	}
	print_row(head, width);
	for (size_t i = 0; i < f->n; i++)
		print_row(cells[i], width);
	free(cells);
	fflush(stdout);
}

/* ---- the loop ------------------------------------------------------------------ */

struct keyboard {
	int raw;		/* stdin switched to non-canonical mode */
	struct termios saved;
};

/* On a terminal, "q" is read without waiting for Enter. */
static void keyboard_open(struct keyboard *kb)
{
	struct termios t;

	kb->raw = 0;
	if (!isatty(STDIN_FILENO) || tcgetattr(STDIN_FILENO, &kb->saved) < 0)
		return;
	t = kb->saved;
	t.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
	t.c_cc[VMIN] = 0;
	t.c_cc[VTIME] = 0;
	if (tcsetattr(STDIN_FILENO, TCSANOW, &t) == 0)
		kb->raw = 1;
}

static void keyboard_close(struct keyboard *kb)
{
	if (kb->raw)
		tcsetattr(STDIN_FILENO, TCSANOW, &kb->saved);
}

/* Waits SECONDS, or less if "q" is typed or a stop signal comes; returns
** 1 to stop. */
static int wait_or_quit(const struct keyboard *kb, double seconds)
{
	struct timespec end, now;
	struct pollfd pfd = { .fd = STDIN_FILENO, .events = POLLIN };
	char c;
	int ms;

	clock_gettime(CLOCK_MONOTONIC, &end);
	end.tv_sec += (time_t)seconds;
	end.tv_nsec += (long)((seconds - (double)(time_t)seconds) * 1e9);
	if (end.tv_nsec >= 1000000000L) {
		end.tv_sec++;
		end.tv_nsec -= 1000000000L;
	}
	while (!stop_requested) {
		clock_gettime(CLOCK_MONOTONIC, &now);
		ms = (int)((end.tv_sec - now.tv_sec) * 1000 +
			   (end.tv_nsec - now.tv_nsec) / 1000000);
		if (ms <= 0)
			return 0;
		if (poll(kb->raw ? &pfd : NULL, kb->raw ? 1 : 0, ms) > 0 &&
		    read(STDIN_FILENO, &c, 1) == 1 && (c == 'q' || c == 'Q'))
			return 1;
	}
	return 1;
}

static void catch_stop_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop_signal;	/* no SA_RESTART: poll must wake */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
}

int cmd_top(const struct wsctl *ctx, int argc, char **argv)
{
	double interval = TOP_DEFAULT_INTERVAL;
	uint64_t iterations = 0, shown = 0;
	struct frame prev, cur;
	struct keyboard kb;
	int tty = isatty(STDOUT_FILENO), rc;

	rc = parse_top_args(ctx, argc, argv, &interval, &iterations);
	if (rc != 0)
		return rc < 0 ? WSCTL_OK : rc;
	catch_stop_signals();
	keyboard_open(&kb);
	memset(&prev, 0, sizeof(prev));
	rc = WSCTL_OK;
	while (!stop_requested) {
		rc = collect(ctx, &cur);
		if (rc != 0)
			break;
		for (size_t i = 0; i < cur.n; i++)
			rate(&cur.s[i], shown ? earlier(&prev, &cur.s[i]) : NULL);
		qsort(cur.s, cur.n, sizeof(*cur.s), busier_first);
		print_frame(&cur, interval, tty, shown == 0);
		free(prev.s);
		prev = cur;
		if (++shown == iterations || wait_or_quit(&kb, interval))
			break;
	}
	free(prev.s);
	keyboard_close(&kb);
	return rc;
}
