// SPDX-License-Identifier: MIT
/*
 * watchdog.c - CPU hogs: a fiber that runs too long without giving up its
 * worker is reported, counted, and the fibers queued behind it are handed
 * to the other workers.
 *
 * Fibers are not preempted: a fiber that computes for seconds keeps its
 * worker.  What must not happen is that the other fibers of that worker wait
 * for it, so a monitor thread (one per runtime) samples each worker's switch
 * counter every hog_ns / 4.  When a worker has been inside the same fiber
 * for hog_ns of its thread's CPU time, the monitor sends its thread SIGURG
 * (as Go's sysmon does).
 *
 * CPU time, not wall-clock time: on a loaded machine the kernel preempts a
 * worker's thread for tens of milliseconds, and a fiber that yields every
 * 0.2 ms would look as if it had run all that time.  The monitor reads each
 * worker thread's CPU clock (pthread_getcpuclockid()) when it samples, and
 * keeps the value it read when it last saw the switch counter move: the
 * switch path itself pays nothing.  A fiber's start is thus known to within
 * one sampling period, as before; time its thread spends preempted, or
 * asleep in a system call, does not count.
 * The handler runs on the hog's own thread, so it may use that worker's
 * ring and queues, but only if the fiber was interrupted in its own code,
 * never inside the library (rf__guard_enter() tracks that): then it reports
 * the hog once, enters the kernel to collect completions (with
 * DEFER_TASKRUN nothing else would), makes their fibers ready, and publishes
 * every movable ready fiber for idle workers to steal, waking one.  While
 * the hog runs on, the monitor repeats the rescue every period.
 *
 * The handler allocates nothing, takes no lock other threads could hold
 * while interrupted (the spinlocks it takes are only taken in library code,
 * which it never interrupts), and writes its report with write(2).
 *
 * An idle runtime is left alone: when every worker is parked (asleep in the
 * kernel, so no fiber runs and none can hog), the monitor sleeps on a futex
 * until the first worker wakes (rf__unpark() -> rf__monitor_kick()), instead
 * of waking every period to find nothing.  The two sides are a Dekker pair:
 * the monitor stores monitor_parked and then reads every parked flag, a
 * worker stores its parked flag and then reads monitor_parked, all seq_cst,
 * so at least one of them sees the other.
 */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <linux/futex.h>
#include <sys/syscall.h>

#include "internal.h"

#define RF__HOG_SIGNAL SIGURG

static pthread_once_t rf__hog_once = PTHREAD_ONCE_INIT;
static int rf__hog_err;

static void rf__hog_report(struct rf__worker *wk, struct rf_fiber *f)
{
	uint64_t ns = rf__load_relaxed(&wk->hog_ns_seen);

	rf__put("ringfiber: fiber \"");
	rf__put(f->name);
	rf__put("\" has run ");
	rf__put_num(ns / 1000000, 10);
	rf__put(".");
	rf__put_num(ns / 100000 % 10, 10);
	rf__put(" ms (CPU time) on worker ");
	rf__put_num(wk->id, 10);
	rf__put(" without yielding");
	if (wk->preempt_on && !f->no_preempt)
		rf__put("; it is preempted while other fibers wait");
	else if (wk->rt->nworkers > 1)
		rf__put("; the fibers queued behind it go to other workers");
	rf__put("\n");
}

/*
 * SIGURG: from the monitor (tgkill: the fiber of run_seq hog_seq has run
 * hog_ns), or from the worker's slice timer (SI_TIMER: a hog caught before
 * still runs, preempt.c).
 */
static void rf__hog_handler(int sig, siginfo_t *si, void *uc)
{
	struct rf__worker *wk = rf__tls_wk;
	struct rf_fiber *f;
	int saved_errno = errno;
	bool tick = si && si->si_code == SI_TIMER;
	uint64_t seq;

	if (tick && wk)
		rf__count(&wk->preempt_ticks, 1);
	/* RF_RT_BLOCK_RESCUE's request, whichever SIGURG carried it (rescue.c) */
	if (wk && rf__rescue_signal(wk, si, uc) && !tick)
		goto out;
	if (!wk || !wk->in_user || wk->in_signal || !(f = wk->current))
		goto out;
	/*
	 * The fiber the monitor timed may have switched away since it sent
	 * the signal (or, under TSan, the signal was held until later): the
	 * fiber running now has not hogged, so there is nothing to report or
	 * rescue.  A slice tick for a fiber that has stopped stops the timer.
	 */
	seq = rf__load_relaxed(&wk->run_seq);
	if (tick ? !wk->slice_armed || seq != wk->slice_seq
		 : seq != rf__load_relaxed(&wk->hog_seq)) {
		if (tick)
			rf__preempt_stale_tick(wk);
		goto out;
	}
	wk->in_signal = true;
	if (!tick && wk->hog_reported_seq != seq) {
		wk->hog_reported_seq = seq;
		rf__count(&wk->hogs, 1);
		RF__PROBE(hog, 3, f, wk->id, rf__load_relaxed(&wk->hog_ns_seen));
		rf__hog_report(wk, f);
	}
	if (rf__preempt_tick(wk, f, si, uc)) {
		/* the handler's return enters rf__preempted() */
		wk->in_signal = false;
		goto out;
	}
	if (!tick) {
		/* not preempted (not here, not allowed): the rescue */
		if (wk->has_ring) {
			rf__flush(wk, false);
			rf__reap(wk);
		}
		rf__inbox_drain(wk);
		if (wk->rt->nworkers > 1)
			rf__publish(wk, true);
	}
	wk->in_signal = false;
out:
	errno = saved_errno;
}

static void rf__hog_install(void)
{
	/* on the worker's signal stack: the fiber's may be nearly full */
	rf__hog_err = rf__sigaction_install(RF__HOG_SIGNAL, rf__hog_handler,
					    SA_RESTART | SA_ONSTACK, NULL);
}

static void rf__sleep_ns(int64_t ns)
{
	struct timespec ts = rf__timespec(ns);

	while (clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, &ts) == EINTR)
		;
}

/* A clock in ns: a worker thread's CPU clock, or CLOCK_MONOTONIC; -1 on error. */
static int64_t rf__clock_ns(clockid_t clk)
{
	struct timespec ts;

	if (clock_gettime(clk, &ts) != 0)
		return -1;
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

#define RF__MONITOR_THREAD_NAME "rf-monitor"

/* Is every worker asleep in the kernel? */
static bool rf__all_parked(struct rf_runtime *rt)
{
	for (unsigned int i = 0; i < rt->nworkers; i++)
		if (!__atomic_load_n(&rt->workers[i]->parked, __ATOMIC_SEQ_CST))
			return false;
	return true;
}

/* Every worker is parked: sleep until one is not, or the run ends. */
static void rf__monitor_park(struct rf_runtime *rt)
{
	__atomic_store_n(&rt->monitor_parked, 1, __ATOMIC_SEQ_CST);
	if (rf__all_parked(rt) && !rf__load(&rt->done))
		syscall(SYS_futex, &rt->monitor_parked, FUTEX_WAIT_PRIVATE, 1, NULL, NULL, 0);
	__atomic_store_n(&rt->monitor_parked, 0, __ATOMIC_SEQ_CST);
}

/* A worker woke (rf__unpark()), or the run ends: wake a parked monitor. */
void rf__monitor_kick(struct rf_runtime *rt)
{
	if (__atomic_exchange_n(&rt->monitor_parked, 0, __ATOMIC_SEQ_CST))
		syscall(SYS_futex, &rt->monitor_parked, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

static void *rf__monitor(void *arg)
{
	struct rf_runtime *rt = arg;
	unsigned int n = rt->nworkers;
	uint64_t last_seq[RF_MAX_WORKERS];
	clockid_t clk[RF_MAX_WORKERS];	/* each worker thread's CPU clock */
	int64_t since[RF_MAX_WORKERS];	/* its value when run_seq last moved */
	int64_t period = rt->hog_ns / 4;
	sigset_t all;

	/* the runtime's signals are not for this thread */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	if (period < 1000000)
		period = 1000000;
	if (period > 100000000)
		period = 100000000;
	for (unsigned int i = 0; i < n; i++) {
		/* Linux gives every thread a CPU clock; should it not, wall time */
		if (pthread_getcpuclockid(rt->workers[i]->thread, &clk[i]) != 0)
			clk[i] = CLOCK_MONOTONIC;
		last_seq[i] = rf__load_relaxed(&rt->workers[i]->run_seq);
		since[i] = rf__clock_ns(clk[i]);
	}
	while (!rf__load(&rt->done)) {
		bool refreshed = false;

		if (rt->rescue_fd >= 0)
			rf__rescue_mon_wait(rt, period);	/* a block ends it early */
		else
			rf__sleep_ns(period);
		if (rf__load(&rt->done))
			break;	/* the workers' threads may be gone, and their clocks */
		if (rf__all_parked(rt)) {
			/* no fiber runs: what was timed stays valid (CPU clocks) */
			rf__monitor_park(rt);
			continue;
		}
		for (unsigned int i = 0; i < n; i++) {
			struct rf__worker *wk = rt->workers[i];
			uint64_t seq = rf__load_relaxed(&wk->run_seq);
			int64_t now = rf__clock_ns(clk[i]);

			if (seq != last_seq[i] || now < 0 || since[i] < 0) {
				last_seq[i] = seq;
				since[i] = now;
				continue;
			}
			if (!rf__load_relaxed(&wk->current) || now - since[i] < rt->hog_ns)
				continue;
			/* objects loaded since the last look: tell preempt.c */
			if (!refreshed && (rt->features & RF_FEAT_PREEMPT)) {
				rf__preempt_refresh();
				refreshed = true;
			}
			rf__store_relaxed(&wk->hog_ns_seen, (uint64_t)(now - since[i]));
			rf__store_relaxed(&wk->hog_seq, seq);
			syscall(SYS_tgkill, getpid(), wk->tid, RF__HOG_SIGNAL);
		}
	}
	return NULL;
}

int rf__watchdog_start(struct rf_runtime *rt)
{
	int ret;

	pthread_once(&rf__hog_once, rf__hog_install);
	if (rf__hog_err)
		return rf__hog_err;
	ret = -pthread_create(&rt->monitor, NULL, rf__monitor, rt);
	rt->monitor_started = !ret;
	if (!ret)
		pthread_setname_np(rt->monitor, RF__MONITOR_THREAD_NAME);
	return ret;
}

void rf__watchdog_stop(struct rf_runtime *rt)
{
	if (!rt->monitor_started)
		return;
	/* rt->done is set: a monitor parked meanwhile must see it */
	rf__monitor_kick(rt);
	pthread_join(rt->monitor, NULL);
	rt->monitor_started = false;
}
