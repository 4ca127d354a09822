/*
** Lock waits on threads of their own (design in lock_wait.h).
**
** Each wait is a detached thread with a small stack. Threads inherit the
** signal mask of the libfuse worker that starts them, which blocks every
** signal, so a waiting thread unblocks WAKE_SIGNAL for itself first.
**
** Grants on shared files are answered by one long-lived delivery thread
** (lock_deliver): dropping the agent's cached pages may wait for reads
** that need a free libfuse worker, so it must not run on one, and a thread
** per grant would double what an uncontended lock costs there. Deliveries
** are answered in order; one that waits for a read holds up the next ones
** only until a worker has served that read.
*/
#include "lock_wait.h"

#include "log.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>

#define WAKE_SIGNAL SIGUSR2
/* How often an interrupted wait's thread is signalled again. */
#define RESEND_NS (10 * 1000 * 1000)
#define WAIT_STACK (256 * 1024)

struct lock_wait {
	struct lock_wait *next;
	fuse_req_t req;
	struct lock_pending *p;
	lock_wait_done_fn done;
	pthread_t thread;
	int started;		/* THREAD is valid */
	int finished;		/* the blocking call has returned */
	atomic_int cancel;
};

struct delivery {
	struct delivery *next;
	fuse_req_t req;
	struct lock_pending *p;
	lock_wait_done_fn done;
};

static struct {
	pthread_mutex_t mu;
	pthread_cond_t cond;
	struct delivery *head, **tail;
	pthread_t thread;
	int started;
	int stopping;
} D = {
	.mu = PTHREAD_MUTEX_INITIALIZER,
	.cond = PTHREAD_COND_INITIALIZER,
	.tail = &D.head,
};

static struct {
	pthread_mutex_t mu;
	pthread_cond_t cond;
	struct lock_wait *active;
	unsigned int count;
	pthread_once_t once;
	int handler_err;
} W = {
	.mu = PTHREAD_MUTEX_INITIALIZER,
	.cond = PTHREAD_COND_INITIALIZER,
	.once = PTHREAD_ONCE_INIT,
};

static void wake_handler(int sig)
{
	(void)sig;	/* only there to make the blocking call return EINTR */
}

static void install_handler(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = wake_handler;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = 0;	/* no SA_RESTART: the call must come back */
	if (sigaction(WAKE_SIGNAL, &sa, NULL) < 0)
		W.handler_err = errno;
}

static void deadline_after(struct timespec *ts, long ns)
{
	clock_gettime(CLOCK_REALTIME, ts);
	ts->tv_nsec += ns;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

/* With W.mu held: signals W's thread until it has left its blocking call. */
static void cancel_locked(struct lock_wait *w)
{
	struct timespec ts;

	atomic_store(&w->cancel, 1);
	while (w->started && !w->finished &&
	       !pthread_equal(w->thread, pthread_self())) {
		pthread_kill(w->thread, WAKE_SIGNAL);
		deadline_after(&ts, RESEND_NS);
		pthread_cond_timedwait(&W.cond, &W.mu, &ts);
	}
}

/* libfuse calls this (with the request's lock held) on FUSE_INTERRUPT. */
static void on_interrupt(fuse_req_t req, void *data)
{
	(void)req;
	pthread_mutex_lock(&W.mu);
	cancel_locked(data);
	pthread_mutex_unlock(&W.mu);
}

static int block_for_lock(struct lock_wait *w)
{
	const struct lock_req *r = lock_pending_req(w->p);
	int fd = lock_pending_fd(w->p), rc;
	struct flock fl = lock_req_flock(r);

	for (;;) {
		if (atomic_load(&w->cancel))
			return -EINTR;
		if (r->kind == LOCK_KIND_FLOCK)
			rc = flock(fd, r->type);
		else
			rc = fcntl(fd, F_OFD_SETLKW, &fl);
		if (rc == 0)
			return 0;
		if (errno != EINTR)
			return -errno;
	}
}

static void unlink_wait(struct lock_wait *w)
{
	struct lock_wait **q;

	for (q = &W.active; *q; q = &(*q)->next)
		if (*q == w) {
			*q = w->next;
			break;
		}
	W.count--;
	pthread_cond_broadcast(&W.cond);
}

static void *wait_main(void *arg)
{
	struct lock_wait *w = arg;
	sigset_t wake;
	int err;

	sigemptyset(&wake);
	sigaddset(&wake, WAKE_SIGNAL);
	pthread_sigmask(SIG_UNBLOCK, &wake, NULL);
	pthread_mutex_lock(&W.mu);
	w->thread = pthread_self();
	w->started = 1;
	pthread_mutex_unlock(&W.mu);
	/* Calls on_interrupt at once if the interrupt came already. */
	fuse_req_interrupt_func(w->req, on_interrupt, w);
	err = block_for_lock(w);
	pthread_mutex_lock(&W.mu);
	w->finished = 1;
	pthread_cond_broadcast(&W.cond);
	pthread_mutex_unlock(&W.mu);
	/* Takes the request's lock: a callback still running ends first. */
	fuse_req_interrupt_func(w->req, NULL, NULL);
	w->done(w->req, w->p, err);
	pthread_mutex_lock(&W.mu);
	unlink_wait(w);
	pthread_mutex_unlock(&W.mu);
	free(w);
	return NULL;
}

int lock_wait_start(fuse_req_t req, struct lock_pending *p,
		    lock_wait_done_fn done)
{
	struct lock_wait *w;
	pthread_attr_t attr;
	pthread_t t;
	int r;

	pthread_once(&W.once, install_handler);
	if (W.handler_err)
		return -W.handler_err;
	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->req = req;
	w->p = p;
	w->done = done;
	r = pthread_attr_init(&attr);
	if (r)
		goto fail;
	r = pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (!r)
		r = pthread_attr_setstacksize(&attr, WAIT_STACK);
	pthread_mutex_lock(&W.mu);
	if (!r) {
		r = pthread_create(&t, &attr, wait_main, w);
		if (!r) {
			w->next = W.active;
			W.active = w;
			W.count++;
		}
	}
	pthread_mutex_unlock(&W.mu);
	pthread_attr_destroy(&attr);
	if (r)
		goto fail;
	return 0;
fail:
	free(w);
	return r == EAGAIN ? -ENOLCK : -r;
}

static void *deliver_main(void *arg)
{
	struct delivery *d;

	(void)arg;
	pthread_mutex_lock(&D.mu);
	for (;;) {
		while (!D.head && !D.stopping)
			pthread_cond_wait(&D.cond, &D.mu);
		d = D.head;
		if (!d)
			break;		/* stopping, and nothing left */
		D.head = d->next;
		if (!D.head)
			D.tail = &D.head;
		pthread_mutex_unlock(&D.mu);
		d->done(d->req, d->p, 0);
		free(d);
		pthread_mutex_lock(&D.mu);
	}
	pthread_mutex_unlock(&D.mu);
	return NULL;
}

int lock_deliver(fuse_req_t req, struct lock_pending *p,
		 lock_wait_done_fn done)
{
	struct delivery *d = calloc(1, sizeof(*d));
	int r = 0;

	if (!d)
		return -ENOMEM;
	d->req = req;
	d->p = p;
	d->done = done;
	pthread_mutex_lock(&D.mu);
	if (D.stopping)
		r = -ESHUTDOWN;
	else if (!D.started) {
		r = -pthread_create(&D.thread, NULL, deliver_main, NULL);
		D.started = r == 0;
	}
	if (r == 0) {
		*D.tail = d;
		D.tail = &d->next;
		pthread_cond_signal(&D.cond);
	}
	pthread_mutex_unlock(&D.mu);
	if (r)
		free(d);
	return r;
}

/* Answers what is queued, then ends the delivery thread. */
static void deliver_shutdown(void)
{
	int started;

	pthread_mutex_lock(&D.mu);
	D.stopping = 1;
	started = D.started;
	pthread_cond_signal(&D.cond);
	pthread_mutex_unlock(&D.mu);
	if (started)
		pthread_join(D.thread, NULL);
}

void lock_wait_shutdown(void)
{
	struct timespec ts;

	deliver_shutdown();
	pthread_mutex_lock(&W.mu);
	while (W.count) {
		for (struct lock_wait *w = W.active; w; w = w->next) {
			atomic_store(&w->cancel, 1);
			if (w->started && !w->finished)
				pthread_kill(w->thread, WAKE_SIGNAL);
		}
		deadline_after(&ts, RESEND_NS);
		pthread_cond_timedwait(&W.cond, &W.mu, &ts);
	}
	pthread_mutex_unlock(&W.mu);
}
