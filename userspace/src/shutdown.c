// SPDX-License-Identifier: MIT
/*
 * shutdown.c - rf_runtime_shutdown(): marking a run, waking its workers
 * (the eventfd every ring polls), the worker that cancels every fiber; and
 * RF_RT_SHUTDOWN_ON_SIGNAL, the SIGINT and SIGTERM handler that calls it.
 */
#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "internal.h"

/*
 * rf_runtime_shutdown() marked the run, and no worker has cancelled its
 * fibers yet.  Sequentially consistent: without a ring, the mark and the
 * futex word the shutdown sets after it are what a sleeping worker sees.
 */
bool rf__stop_pending(struct rf_runtime *rt)
{
	return (__atomic_load_n(&rt->run_state, __ATOMIC_SEQ_CST) &
		(RF__RUN_STOP | RF__RUN_STOPPED)) == RF__RUN_STOP;
}

/*
 * The real work of rf_runtime_shutdown(), in a worker's loop, where no
 * lock is held and no fiber's state is half changed: the first worker to
 * see the mark cancels every fiber.
 */
void rf__stop_fibers(struct rf__worker *wk)
{
	struct rf_runtime *rt = wk->rt;
	uint32_t state = rf__load(&rt->run_state);

	do {
		if ((state & (RF__RUN_STOP | RF__RUN_STOPPED)) != RF__RUN_STOP)
			return;
	} while (!__atomic_compare_exchange_n(&rt->run_state, &state, state | RF__RUN_STOPPED,
					      false, __ATOMIC_SEQ_CST, __ATOMIC_ACQUIRE));
	rf__for_each_fiber(rt, wk, rf__cancel_one);
}

/* With rings: the eventfd rf_runtime_shutdown() wakes the workers' rings with. */
int rf__stop_open(struct rf_runtime *rt)
{
	if (!(rt->features & RF_FEAT_RING))
		return 0;
	rt->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	return rt->stop_fd < 0 ? -errno : 0;
}

/* Keep a poll of rt->stop_fd in the ring: rf_runtime_shutdown() completes it. */
int rf__stop_arm(struct rf__worker *wk)
{
	struct io_uring_sqe *sqe = rf__get_sqe_internal(wk);

	if (!sqe)
		return -EBUSY;
	io_uring_prep_poll_add(sqe, wk->rt->stop_fd, POLLIN);
	sqe->user_data = rf__ud(NULL, RF__UD_STOP);
	return 0;
}

/*
 * The shutdown's wake-up: the loop, which this completion brings around,
 * does the rest.  The eventfd stays readable, so that every worker's poll
 * completes.  A write meant for a run that ended before it landed (a
 * shutdown call racing the end of the run) is drained first, then the
 * mark looked at: a real shutdown's write comes after its mark.
 */
void rf__stop_complete(struct rf__worker *wk, const struct io_uring_cqe *cqe)
{
	struct rf_runtime *rt = wk->rt;
	uint64_t v;

	if (rf__load(&rt->run_state) & RF__RUN_STOP || cqe->res == -ECANCELED)
		return;
	if (read(rt->stop_fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		return;
	if (!(__atomic_load_n(&rt->run_state, __ATOMIC_SEQ_CST) & RF__RUN_STOP) &&
	    !rf__load_relaxed(&rt->done))
		rf__stop_arm(wk);
}

/*
 * RF_RT_SHUTDOWN_ON_SIGNAL: a handler for SIGINT and SIGTERM, installed
 * while at least one run with the flag is in progress, shuts down every
 * such run.  A process-directed signal goes to any one thread that does
 * not block it, and a library cannot block signals in threads it did not
 * start, so the handler runs wherever the signal lands; it only does what
 * is async-signal-safe (rf_runtime_shutdown()).  The runs it serves are a
 * list that the handler walks without a lock: a run leaves the list under
 * rf__sig_lock, then waits until no handler is in the walk, so that none
 * can still be reading it when rf_runtime_run() returns.
 */
static pthread_mutex_t rf__sig_lock = PTHREAD_MUTEX_INITIALIZER;
static struct rf_runtime *rf__sig_runs;		/* atomic head, linked through sig_next */
static unsigned int rf__sig_walkers;		/* atomic: handlers in the walk */
static int rf__sig_unclaimed;			/* atomic: a signal that found no run */
static struct sigaction rf__sig_old[2];		/* SIGINT's and SIGTERM's before */
static const int rf__sig_nums[2] = { SIGINT, SIGTERM };

static void rf__sig_handler(int sig)
{
	int saved_errno = errno;
	struct rf_runtime *rt;
	bool claimed = false;

	__atomic_add_fetch(&rf__sig_walkers, 1, __ATOMIC_SEQ_CST);
	for (rt = __atomic_load_n(&rf__sig_runs, __ATOMIC_SEQ_CST); rt;
	     rt = __atomic_load_n(&rt->sig_next, __ATOMIC_ACQUIRE)) {
		int none = 0;

		__atomic_compare_exchange_n(&rt->signal, &none, sig, false, __ATOMIC_RELAXED,
					    __ATOMIC_RELAXED);
		rf_runtime_shutdown(rt);
		claimed = true;
	}
	/* between the last run's end and the old handler's return: see rf__signals_give() */
	if (!claimed)
		__atomic_store_n(&rf__sig_unclaimed, sig, __ATOMIC_RELAXED);
	__atomic_sub_fetch(&rf__sig_walkers, 1, __ATOMIC_SEQ_CST);
	errno = saved_errno;
}

/*
 * At the start of a run: with the flag, serve @rt and let this thread (so
 * every worker thread, which inherits its mask) take the two signals.
 * *@old gets the mask to restore.
 */
int rf__signals_take(struct rf_runtime *rt, sigset_t *old)
{
	struct sigaction sa;
	sigset_t set;
	int ret = 0;

	sigemptyset(&set);
	pthread_sigmask(SIG_BLOCK, &set, old);
	if (!(rt->flags & RF_RT_SHUTDOWN_ON_SIGNAL))
		return 0;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = rf__sig_handler;
	/* on the worker's signal stack, where there is one: a fiber's may be nearly full */
	sa.sa_flags = SA_RESTART | SA_ONSTACK;
	sigemptyset(&sa.sa_mask);
	for (int i = 0; i < 2; i++) {
		sigaddset(&sa.sa_mask, rf__sig_nums[i]);
		sigaddset(&set, rf__sig_nums[i]);
	}
	pthread_mutex_lock(&rf__sig_lock);
	/* on the list first: the handler never finds it empty while it is ours */
	rt->sig_next = rf__sig_runs;
	__atomic_store_n(&rf__sig_runs, rt, __ATOMIC_SEQ_CST);
	if (!rt->sig_next) {
		for (int i = 0; i < 2 && !ret; i++)
			if (sigaction(rf__sig_nums[i], &sa, &rf__sig_old[i]))
				ret = -errno;
		if (ret) {
			sigaction(SIGINT, &rf__sig_old[0], NULL);
			__atomic_store_n(&rf__sig_runs, NULL, __ATOMIC_SEQ_CST);
			goto out;
		}
	}
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);
out:
	pthread_mutex_unlock(&rf__sig_lock);
	return ret;
}

/* Until no handler is in its walk of the list (a few instructions away). */
static void rf__signals_quiesce(void)
{
	while (__atomic_load_n(&rf__sig_walkers, __ATOMIC_SEQ_CST))
		sched_yield();
}

/*
 * At the end of a run: stop serving @rt; the last run puts the old
 * handlers back.  Return: a signal that came after the last run left the
 * list and before the old handlers were back, for the caller to raise
 * again once its mask is restored (the program's own disposition then
 * acts on it, as if the run had never caught it), or 0.
 */
int rf__signals_give(struct rf_runtime *rt)
{
	struct rf_runtime **pp;
	int sig = 0;

	if (!(rt->flags & RF_RT_SHUTDOWN_ON_SIGNAL))
		return 0;
	pthread_mutex_lock(&rf__sig_lock);
	for (pp = &rf__sig_runs; *pp && *pp != rt; pp = &(*pp)->sig_next)
		;
	if (!*pp) {
		/* rf__signals_take() failed */
		pthread_mutex_unlock(&rf__sig_lock);
		return 0;
	}
	__atomic_store_n(pp, rt->sig_next, __ATOMIC_SEQ_CST);
	/* a handler may still hold @rt */
	rf__signals_quiesce();
	if (!rf__sig_runs) {
		for (int i = 0; i < 2; i++)
			sigaction(rf__sig_nums[i], &rf__sig_old[i], NULL);
		/* one that found the list empty has stored what it got */
		rf__signals_quiesce();
		sig = __atomic_exchange_n(&rf__sig_unclaimed, 0, __ATOMIC_RELAXED);
	}
	pthread_mutex_unlock(&rf__sig_lock);
	return sig;
}

/*
 * Wake the workers so that one of them sees the mark (async-signal-safe):
 * the eventfd every ring polls, or without rings a kick of the futex
 * back-end, whose word each worker sleeps on (set after the mark: see
 * rf__stop_pending()).
 */
static void rf__stop_kick(struct rf_runtime *rt)
{
	if (rt->stop_fd >= 0) {
		uint64_t one = 1;
		ssize_t n = write(rt->stop_fd, &one, sizeof(one));

		(void)n;	/* the counter cannot overflow: one write per run */
		return;
	}
	for (unsigned int i = 0; i < rt->nworkers; i++)
		rt->wake->kick(NULL, rt->workers[i]);
}

/*
 * Async-signal-safe: a compare-and-swap on the run's state, a store to the
 * calling fiber and a system call.  The workers do the rest from their
 * loops (rf__stop_fibers()), where no lock is held and nothing is half
 * done, which a signal handler interrupting the library could not know.
 */
RF_EXPORT int rf_runtime_shutdown(struct rf_runtime *rt)
{
	struct rf__worker *self = rf__tls_wk;
	int saved_errno = errno;
	uint32_t state;

	if (!rt)
		rt = self ? self->rt : NULL;
	if (!rt)
		return -EINVAL;
	/* the run we see running is the one we stop (see rf__spawn()) */
	state = rf__load(&rt->run_state);
	do {
		if (!(state & RF__RUN_ON))
			return -ESRCH;
		if (state & RF__RUN_STOP)
			return 0;
	} while (!__atomic_compare_exchange_n(&rt->run_state, &state, state | RF__RUN_STOP, false,
					      __ATOMIC_SEQ_CST, __ATOMIC_ACQUIRE));
	/* the caller's own later calls fail at once, as after rf_cancel() of itself */
	if (self && self->rt == rt && self->current)
		__atomic_store_n(&self->current->cancelled, 1, __ATOMIC_SEQ_CST);
	rf__stop_kick(rt);
	errno = saved_errno;
	return 0;
}
