/*
** The usage ledger (design in ledger.h).
**
** All state is in one static struct of atomics: a daemon serves exactly one
** workspace, and the request path must not chase a pointer or take a lock
** to charge a write.  The warning thresholds are packed into one 64-bit word
** (a count and four percentages) so a live change can never be seen half
** applied.
*/
#include "ledger.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <time.h>

#define MAX_HOOKS 4

struct hook {
	quota_event_fn fn;
	void *arg;
};

static struct {
	uint64_t used[2];
	uint64_t hard[2];
	uint64_t soft[2];
	uint64_t grace_s;
	uint64_t warn_packed;
	int64_t soft_since[2];
	unsigned int warn_level[2];
	int64_t warned_at[2];
	int errno_code;
	int started;		/* set after ledger_init: limit changes report */
	pthread_mutex_t hooks_lock;
	unsigned int nhooks;
	struct hook hooks[MAX_HOOKS];
} L = { .hooks_lock = PTHREAD_MUTEX_INITIALIZER, .errno_code = EDQUOT };

#define LOAD(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define STORE(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)
#define CAS(p, oldp, v) __atomic_compare_exchange_n((p), (oldp), (v), 0, \
		__ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)

int64_t ledger_now(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_REALTIME_COARSE, &ts) < 0)
		return (int64_t)time(NULL);
	return (int64_t)ts.tv_sec;
}

static uint64_t pack_warn(const struct quota_limits *l)
{
	uint64_t w = l->nwarn;
	unsigned int i;

	for (i = 0; i < l->nwarn && i < QUOTA_MAX_WARN; i++)
		w |= (uint64_t)(l->warn[i] & 0xff) << (8 * (i + 1));
	return w;
}

static unsigned int warn_count(uint64_t packed)
{
	return (unsigned int)(packed & 0xff);
}

static unsigned int warn_pct(uint64_t packed, unsigned int i)
{
	return (unsigned int)((packed >> (8 * (i + 1))) & 0xff);
}

/* PCT percent of LIMIT without overflowing at the top of the range. */
static uint64_t threshold(uint64_t limit, unsigned int pct)
{
	return limit / 100 * pct + limit % 100 * pct / 100;
}

static void emit(const struct quota_event *ev)
{
	struct hook hooks[MAX_HOOKS];
	unsigned int i, n;

	pthread_mutex_lock(&L.hooks_lock);
	n = L.nhooks;
	memcpy(hooks, L.hooks, sizeof(hooks));
	pthread_mutex_unlock(&L.hooks_lock);
	for (i = 0; i < n; i++)
		hooks[i].fn(ev, hooks[i].arg);
}

int ledger_subscribe(quota_event_fn fn, void *arg)
{
	int r = 0;

	pthread_mutex_lock(&L.hooks_lock);
	if (L.nhooks == MAX_HOOKS) {
		r = -ENOSPC;
	} else {
		L.hooks[L.nhooks].fn = fn;
		L.hooks[L.nhooks].arg = arg;
		L.nhooks++;
	}
	pthread_mutex_unlock(&L.hooks_lock);
	return r;
}

/* The highest threshold USED is at or above, 0 for none. */
static unsigned int level_of(uint64_t used, uint64_t hard, uint64_t packed)
{
	unsigned int i, level = 0;

	if (!quota_limited(hard))
		return 0;
	for (i = 0; i < warn_count(packed); i++) {
		uint64_t t = threshold(hard, warn_pct(packed, i));

		if (t > 0 && used >= t)
			level = warn_pct(packed, i);
	}
	return level;
}

/* Keeps a soft limit's grace timer in step with usage after anything that
** may have moved either (a live limit change, a remount). */
static void sync_soft_timer(enum quota_kind k, int64_t now)
{
	uint64_t soft = LOAD(&L.soft[k]);
	int64_t since = LOAD(&L.soft_since[k]);

	if (quota_limited(soft) && LOAD(&L.used[k]) > soft) {
		if (since == 0)
			STORE(&L.soft_since[k], now);
	} else {
		STORE(&L.soft_since[k], 0);
	}
}

static int soft_blocks(enum quota_kind k, uint64_t soft, uint64_t next)
{
	uint64_t grace;
	int64_t since;

	if (!quota_limited(soft) || next <= soft)
		return 0;
	grace = LOAD(&L.grace_s);
	if (grace == 0)
		return 1;
	since = LOAD(&L.soft_since[k]);
	return since != 0 && ledger_now() - since >= (int64_t)grace;
}

static void denied(enum quota_kind k, uint64_t used, uint64_t limit, uint64_t d)
{
	struct quota_event ev = { .type = QUOTA_EV_DENIED, .kind = k,
				  .used = used, .limit = limit, .request = d };

	emit(&ev);
}

/* The events a successful charge from OLD to NEW caused. */
static void after_charge(enum quota_kind k, uint64_t old, uint64_t next,
			 uint64_t hard, uint64_t soft)
{
	uint64_t packed = LOAD(&L.warn_packed);
	struct quota_event ev;
	unsigned int i;
	int64_t zero = 0;

	if (quota_limited(soft) && old <= soft && next > soft &&
	    CAS(&L.soft_since[k], &zero, ledger_now())) {
		memset(&ev, 0, sizeof(ev));
		ev.type = QUOTA_EV_SOFT;
		ev.kind = k;
		ev.used = next;
		ev.limit = soft;
		emit(&ev);
	}
	if (!quota_limited(hard))
		return;
	for (i = 0; i < warn_count(packed); i++) {
		uint64_t t = threshold(hard, warn_pct(packed, i));

		if (t == 0 || old >= t || next < t)
			continue;
		STORE(&L.warn_level[k], warn_pct(packed, i));
		STORE(&L.warned_at[k], ledger_now());
		memset(&ev, 0, sizeof(ev));
		ev.type = QUOTA_EV_WARN;
		ev.kind = k;
		ev.percent = warn_pct(packed, i);
		ev.used = next;
		ev.limit = hard;
		emit(&ev);
	}
}

static int charge_one(enum quota_kind k, uint64_t d)
{
	uint64_t old = LOAD(&L.used[k]), next, hard, soft;

	do {
		hard = LOAD(&L.hard[k]);
		soft = LOAD(&L.soft[k]);
		next = old + d;
		if (next < old || next > QUOTA_MAX_VALUE ||
		    (quota_limited(hard) && next > hard)) {
			denied(k, old, hard, d);
			return -L.errno_code;
		}
		if (soft_blocks(k, soft, next)) {
			denied(k, old, soft, d);
			return -L.errno_code;
		}
	} while (!CAS(&L.used[k], &old, next));
	after_charge(k, old, next, hard, soft);
	return 0;
}

static void release_one(enum quota_kind k, uint64_t d)
{
	uint64_t old = LOAD(&L.used[k]), next, soft;
	int64_t since;

	do {
		/* Never wrap: a huge usage would refuse every charge. */
		next = d > old ? 0 : old - d;
	} while (!CAS(&L.used[k], &old, next));
	soft = LOAD(&L.soft[k]);
	since = LOAD(&L.soft_since[k]);
	if (since != 0 && (!quota_limited(soft) || next <= soft))
		(void)CAS(&L.soft_since[k], &since, 0);
	STORE(&L.warn_level[k], level_of(next, LOAD(&L.hard[k]),
					 LOAD(&L.warn_packed)));
}

int ledger_charge(uint64_t bytes, uint64_t inodes)
{
	int r;

	if (inodes) {
		r = charge_one(QUOTA_INODES, inodes);
		if (r)
			return r;
	}
	if (bytes) {
		r = charge_one(QUOTA_BYTES, bytes);
		if (r) {
			if (inodes)
				release_one(QUOTA_INODES, inodes);
			return r;
		}
	}
	return 0;
}

void ledger_force(uint64_t bytes, uint64_t inodes)
{
	__atomic_add_fetch(&L.used[QUOTA_BYTES], bytes, __ATOMIC_ACQ_REL);
	__atomic_add_fetch(&L.used[QUOTA_INODES], inodes, __ATOMIC_ACQ_REL);
}

void ledger_release(uint64_t bytes, uint64_t inodes)
{
	if (bytes)
		release_one(QUOTA_BYTES, bytes);
	if (inodes)
		release_one(QUOTA_INODES, inodes);
}

/* A lower limit or threshold can put usage over a threshold without any
** charge crossing it; that is a crossing too, reported once like any. */
static void relevel(enum quota_kind k, int64_t now)
{
	unsigned int was = LOAD(&L.warn_level[k]);
	unsigned int is = level_of(LOAD(&L.used[k]), LOAD(&L.hard[k]),
				   LOAD(&L.warn_packed));
	struct quota_event ev;

	STORE(&L.warn_level[k], is);
	if (is <= was || !L.started)
		return;
	STORE(&L.warned_at[k], now);
	memset(&ev, 0, sizeof(ev));
	ev.type = QUOTA_EV_WARN;
	ev.kind = k;
	ev.percent = is;
	ev.used = LOAD(&L.used[k]);
	ev.limit = LOAD(&L.hard[k]);
	emit(&ev);
}

void ledger_set_limits(const struct quota_limits *lim)
{
	int64_t now = ledger_now();
	enum quota_kind k;

	STORE(&L.hard[QUOTA_BYTES], lim->bytes);
	STORE(&L.hard[QUOTA_INODES], lim->inodes);
	STORE(&L.soft[QUOTA_BYTES], lim->soft_bytes);
	STORE(&L.soft[QUOTA_INODES], lim->soft_inodes);
	STORE(&L.grace_s, lim->grace_s);
	STORE(&L.warn_packed, pack_warn(lim));
	for (k = QUOTA_BYTES; k <= QUOTA_INODES; k++) {
		sync_soft_timer(k, now);
		relevel(k, now);
	}
}

void ledger_init(const struct quota_limits *lim, uint64_t used_bytes,
		 uint64_t used_inodes, const int64_t soft_since[2],
		 int errno_code)
{
	L.errno_code = errno_code;
	STORE(&L.used[QUOTA_BYTES], used_bytes);
	STORE(&L.used[QUOTA_INODES], used_inodes);
	STORE(&L.soft_since[QUOTA_BYTES], soft_since ? soft_since[0] : 0);
	STORE(&L.soft_since[QUOTA_INODES], soft_since ? soft_since[1] : 0);
	STORE(&L.warned_at[QUOTA_BYTES], 0);
	STORE(&L.warned_at[QUOTA_INODES], 0);
	STORE(&L.warn_level[QUOTA_BYTES], 0);
	STORE(&L.warn_level[QUOTA_INODES], 0);
	/* Usage found over a threshold at mount was reported by the daemon
	** that put it there. */
	L.started = 0;
	ledger_set_limits(lim);
	L.started = 1;
}

int ledger_bytes_limited(void)
{
	return quota_limited(LOAD(&L.hard[QUOTA_BYTES])) ||
	       quota_limited(LOAD(&L.soft[QUOTA_BYTES]));
}

void ledger_snapshot(struct quota_snapshot *s)
{
	uint64_t packed = LOAD(&L.warn_packed);
	enum quota_kind k;
	unsigned int i;

	memset(s, 0, sizeof(*s));
	s->lim.bytes = LOAD(&L.hard[QUOTA_BYTES]);
	s->lim.inodes = LOAD(&L.hard[QUOTA_INODES]);
	s->lim.soft_bytes = LOAD(&L.soft[QUOTA_BYTES]);
	s->lim.soft_inodes = LOAD(&L.soft[QUOTA_INODES]);
	s->lim.grace_s = LOAD(&L.grace_s);
	s->lim.nwarn = warn_count(packed);
	for (i = 0; i < s->lim.nwarn && i < QUOTA_MAX_WARN; i++)
		s->lim.warn[i] = warn_pct(packed, i);
	for (k = QUOTA_BYTES; k <= QUOTA_INODES; k++) {
		s->used[k] = LOAD(&L.used[k]);
		s->soft_since[k] = LOAD(&L.soft_since[k]);
		s->warn_level[k] = LOAD(&L.warn_level[k]);
		s->warned_at[k] = LOAD(&L.warned_at[k]);
	}
}
