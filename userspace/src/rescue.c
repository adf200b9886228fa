// SPDX-License-Identifier: MIT
/*
 * rescue.c - RF_RT_BLOCK_RESCUE: the fibers of a worker blocked in the
 * kernel are handed on (Documentation/rfwake.md, "The runtime's side").
 *
 * A fiber that calls read() on an empty pipe, or a library that does,
 * stops its worker's thread and every fiber queued on it.  User space
 * cannot see that happen; the module rfwake can (block notification): each
 * worker watches its own thread (RFWAKE_IOC_WATCH), and a block while its
 * armed[] word is set wakes the watchdog's monitor thread, which waits on
 * the rescue's own domain instead of sleeping.  The monitor looks at every
 * worker whose seq[] word is odd (blocked now): one with ready fibers, an
 * inbox or completions waiting in its ring gets the runtime's signal
 * (SIGURG, SI_QUEUE) with its rescue_req set; one with nothing to do is
 * looked at again at the next sample (hog_ns / 4) or block.  (Polling its
 * ring's descriptor too, one-shot, made the monitor spin now and then in
 * the test VM and starve the hog tests: not done.)  The handler
 * (rf__rescue_signal(), from watchdog.c's) runs on the blocked thread,
 * which may use its own ring and queues.  Where the fiber stands in one of
 * libc's plain system-call wrappers called from its own code, it is
 * suspended there as a preempted fiber (preempt.c,
 * rf__preempt_blocked()): the worker runs its other fibers on its own
 * thread and ring, and the call goes on when the fiber runs again (the
 * kernel restarts it, SA_RESTART, or it returns EINTR where signal(7) says
 * it is never restarted).  Elsewhere in the fiber's own code (a lock, stdio)
 * it is not suspended; with two or more workers the handler then does what
 * the hog rescue does: collect completions, make their fibers ready and
 * publish every movable ready fiber for the other workers, waking one.
 *
 * At most one rescue per worker is in flight: rescue_req is set before the
 * signal and cleared by the handler; a thread in an uninterruptible sleep
 * takes the signal when that sleep ends.  Signals of one number coalesce:
 * whichever SIGURG arrives (the hog watchdog's, a slice tick), the handler
 * looks at rescue_req first.
 *
 * A worker's own idle sleep is no block to report: loop.c clears armed[]
 * around it.  Other blocks inside the library (a page fault in a new
 * stack, the deadlock check's mutex) may notify; they are short, and the
 * handler does nothing where the fiber is not in its own code.
 *
 * The domain is the rescue's own, whatever the wake back-end: its only
 * waiter woken is the monitor, so the domain's poll (EPOLLIN while a wake
 * is pending) is the monitor's news.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/rfwake.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "internal.h"

#define RF__RESCUE_PATH "/dev/" RFWAKE_DEVICE_NAME
/* The runtime's signal (watchdog.c's RF__HOG_SIGNAL), and our value in it. */
#define RF__RESCUE_SIGNAL SIGURG
#define RF__RESCUE_SIVAL 0x72657363	/* "resc" */
/* The epoll datum of the domain. */
#define RF__RESCUE_EP_DOMAIN UINT32_MAX
#define RF__RESCUE_WATCH_SIZE 8192

/* RF_BLOCK_RESCUE=1 in the environment asks for the rescue. */
bool rf__rescue_from_env(void)
{
	const char *v = secure_getenv("RF_BLOCK_RESCUE");

	return v && !strcmp(v, "1");
}

/* Why an RF_BLOCK_RESCUE=1 runtime runs without it: said once per process. */
static void rf__rescue_report(int err)
{
	static uint32_t reported;

	if (__atomic_exchange_n(&reported, 1, __ATOMIC_RELAXED))
		return;
	rf__put("ringfiber: RF_BLOCK_RESCUE=1: ");
	if (err == -EOPNOTSUPP)
		rf__put(RF__RESCUE_PATH " is missing or has no block notification "
			"(RFWAKE_FEAT_WATCH)");
	else
		rf__put("setting it up failed");
	rf__put(" (error -");
	rf__put_num((unsigned int)-err, 10);
	rf__put("); running without it\n");
}

/* Register a waiter in the rescue's domain: its id, or a negative errno. */
static int64_t rf__rescue_register(int fd)
{
	struct rfwake_register reg = { .flags = 0 };

	if (ioctl(fd, RFWAKE_IOC_REGISTER, &reg) < 0)
		return -errno;
	return reg.id;
}

static int rf__rescue_try_open(struct rf_runtime *rt)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u32 = RF__RESCUE_EP_DOMAIN };
	struct rfwake_watch_shared *ws;
	struct rfwake_info info = { .abi_version = 0 };
	int64_t id;
	int fd;

	if (rt->hog_ns < 0)
		return -EINVAL;		/* the monitor is the watchdog's */
	fd = open(RF__RESCUE_PATH, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return errno == EMFILE || errno == ENFILE || errno == ENOMEM ? -errno : -EOPNOTSUPP;
	rt->rescue_fd = fd;
	if (ioctl(fd, RFWAKE_IOC_INFO, &info) < 0 || info.abi_version != RFWAKE_ABI_VERSION ||
	    !(info.features & RFWAKE_FEAT_WATCH) || !(info.features & RFWAKE_FEAT_POLL) ||
	    info.max_waiters < rt->nworkers + 1)
		return -EOPNOTSUPP;
	ws = mmap(NULL, RF__RESCUE_WATCH_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
		  RFWAKE_WATCH_OFFSET);
	if (ws == MAP_FAILED)
		return errno == ENOMEM ? -ENOMEM : -EOPNOTSUPP;
	rt->rescue_pages = ws;
	id = rf__rescue_register(fd);
	if (id < 0)
		return (int)id;
	rt->rescue_monitor_id = (uint32_t)id;
	for (unsigned int i = 0; i < rt->nworkers; i++) {
		struct rf__worker *wk = rt->workers[i];

		id = rf__rescue_register(fd);
		if (id < 0)
			return (int)id;
		wk->rescue_id = (uint32_t)id;
		wk->rescue_armed = &ws->armed[id];
		wk->rescue_seq = &ws->seq[id];
	}
	rf__preempt_block_calls_init();
	rt->rescue_epfd = epoll_create1(EPOLL_CLOEXEC);
	if (rt->rescue_epfd < 0)
		return -errno;
	if (epoll_ctl(rt->rescue_epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
		return -errno;
	return 0;
}

/*
 * In rf_runtime_create(), for RF_RT_BLOCK_RESCUE or RF_BLOCK_RESCUE=1
 * (@fallback: then a failure is reported and the runtime goes on without).
 */
int rf__rescue_open(struct rf_runtime *rt, bool fallback)
{
	int ret = rf__rescue_try_open(rt);

	if (!ret) {
		rt->features |= RF_FEAT_BLOCK_RESCUE;
		return 0;
	}
	rf__rescue_close(rt);
	if (!fallback)
		return ret;
	/* a runtime made without the watchdog asked for no monitor: say nothing */
	if (ret != -EINVAL)
		rf__rescue_report(ret);
	return 0;
}

/* Undo rf__rescue_open(); closing the domain ends its registrations. */
void rf__rescue_close(struct rf_runtime *rt)
{
	if (rt->rescue_epfd >= 0)
		close(rt->rescue_epfd);
	rt->rescue_epfd = -1;
	if (rt->rescue_pages)
		munmap(rt->rescue_pages, RF__RESCUE_WATCH_SIZE);
	rt->rescue_pages = NULL;
	if (rt->rescue_fd >= 0)
		close(rt->rescue_fd);
	rt->rescue_fd = -1;
	for (unsigned int i = 0; rt->workers && i < rt->nworkers; i++) {
		if (rt->workers[i]) {
			rt->workers[i]->rescue_armed = NULL;
			rt->workers[i]->rescue_seq = NULL;
		}
	}
	rt->features &= ~RF_FEAT_BLOCK_RESCUE;
}

/* On the worker's thread at the start of a run: watch it, armed. */
int rf__rescue_setup(struct rf__worker *wk)
{
	struct rf_runtime *rt = wk->rt;
	struct rfwake_watch w = {
		.watch_id = wk->rescue_id,
		.notify_id = rt->rescue_monitor_id,
		.payload = 1ull << (wk->id % 64),
	};

	__atomic_store_n(&wk->rescue_req, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&wk->rescue_stuck_seq, UINT64_MAX, __ATOMIC_RELAXED);
	if (rt->rescue_fd < 0)
		return 0;
	if (ioctl(rt->rescue_fd, RFWAKE_IOC_WATCH, &w) < 0)
		return -errno;
	wk->rescue_watched = true;
	rf__rescue_arm(wk, 1);
	return 0;
}

/* On the worker's thread at the end of a run. */
void rf__rescue_teardown(struct rf__worker *wk)
{
	if (!wk->rescue_watched)
		return;
	rf__rescue_arm(wk, 0);
	ioctl(wk->rt->rescue_fd, RFWAKE_IOC_UNWATCH);
	wk->rescue_watched = false;
}

/*
 * From the runtime's signal handler, on @wk's thread: if the monitor asked
 * for a rescue, do it (where the fiber was interrupted in its own code) and
 * say so.  The same steps as the hog rescue (watchdog.c).
 */
bool rf__rescue_signal(struct rf__worker *wk, siginfo_t *si, void *uc)
{
	bool helped = false;

	if (!__atomic_load_n(&wk->rescue_req, __ATOMIC_ACQUIRE))
		return false;
	if (wk->in_user && !wk->in_signal && wk->current &&
	    rf__preempt_blocked(wk, wk->current, si, uc)) {
		/* the handler's return suspends the fiber: its worker runs the others */
		helped = true;
	} else if (wk->in_user && !wk->in_signal && wk->current && wk->rt->nworkers > 1) {
		wk->in_signal = true;
		if (wk->has_ring) {
			rf__flush(wk, false);
			rf__reap(wk);
		}
		rf__inbox_drain(wk);
		rf__publish(wk, true);
		/* what is left cannot move (pinned): asking again would not help */
		helped = !wk->runq.head;
		wk->in_signal = false;
	}
	/*
	 * Nothing could be done (the fiber stands where it may not be
	 * suspended, inside the runtime, and no other worker can take what is
	 * ready): the monitor leaves this worker alone until it switches
	 * fibers, instead of interrupting its call again and again.
	 */
	if (!helped)
		__atomic_store_n(&wk->rescue_stuck_seq, rf__load_relaxed(&wk->run_seq),
				 __ATOMIC_RELAXED);
	rf__count(&wk->block_rescues, 1);
	/* the next block may be rescued: the handler's work is done */
	__atomic_store_n(&wk->rescue_req, 0, __ATOMIC_RELEASE);
	return true;
}

/*
 * Has blocked worker @wk anything its thread would run?  Read from the
 * monitor: @wk's thread is blocked (its seq[] odd, stored by the kernel
 * after the thread's last store), so its run queue holds still; should it
 * have run again meanwhile, the worst is a rescue that finds nothing.
 */
static bool rf__rescue_has_work(struct rf__worker *wk)
{
	if (__atomic_load_n(&wk->runq.len, __ATOMIC_RELAXED) ||
	    __atomic_load_n(&wk->inbox, __ATOMIC_ACQUIRE))
		return true;
	return wk->has_ring && (io_uring_cq_ready(&wk->ring) || rf__kernel_has_completions(wk));
}

/* Ask @wk's thread to rescue its fibers: at most one request in flight. */
static void rf__rescue_request(struct rf__worker *wk)
{
	siginfo_t si;

	memset(&si, 0, sizeof(si));
	si.si_signo = RF__RESCUE_SIGNAL;
	si.si_code = SI_QUEUE;
	si.si_pid = getpid();
	si.si_uid = getuid();
	si.si_value.sival_int = RF__RESCUE_SIVAL;
	__atomic_store_n(&wk->rescue_req, 1, __ATOMIC_SEQ_CST);
	if (syscall(SYS_rt_tgsigqueueinfo, getpid(), wk->tid, RF__RESCUE_SIGNAL, &si) != 0)
		__atomic_store_n(&wk->rescue_req, 0, __ATOMIC_RELAXED);
}

/* Every blocked worker: rescue it if it has work. */
static void rf__rescue_scan(struct rf_runtime *rt)
{
	for (unsigned int i = 0; i < rt->nworkers; i++) {
		struct rf__worker *wk = rt->workers[i];

		if (!wk->rescue_watched || !(__atomic_load_n(wk->rescue_seq, __ATOMIC_ACQUIRE) & 1))
			continue;
		/* asleep in its own idle sleep, which a completion ends: no news */
		if (!__atomic_load_n(wk->rescue_armed, __ATOMIC_RELAXED))
			continue;
		if (__atomic_load_n(&wk->rescue_req, __ATOMIC_ACQUIRE))
			continue;	/* one in flight */
		if (__atomic_load_n(&wk->rescue_stuck_seq, __ATOMIC_RELAXED) ==
		    rf__load_relaxed(&wk->run_seq))
			continue;	/* the last rescue could not help this fiber */
		if (rf__rescue_has_work(wk))
			rf__rescue_request(wk);
	}
}

/*
 * The monitor's wait between two samples (watchdog.c), @ns at most: a
 * block ends it early.  A blocked worker with nothing to do is looked at
 * again at the next sample (or block).
 */
void rf__rescue_mon_wait(struct rf_runtime *rt, int64_t ns)
{
	struct epoll_event ev[16];
	int ms = (int)((ns + 999999) / 1000000);
	int n = epoll_wait(rt->rescue_epfd, ev, 16, ms);

	if (n < 0) {
		struct timespec ts = rf__timespec(ns);

		/* should not happen (the monitor blocks every signal): no spin */
		nanosleep(&ts, NULL);
		n = 0;
	}
	for (int k = 0; k < n; k++) {
		if (ev[k].data.u32 == RF__RESCUE_EP_DOMAIN) {
			struct rfwake_wait w = {
				.id = rt->rescue_monitor_id,
				.flags = RFWAKE_WAIT_NONBLOCK,
			};

			/* take the pending wake: its news is in seq[] */
			ioctl(rt->rescue_fd, RFWAKE_IOC_WAIT, &w);
		}
	}
	rf__rescue_scan(rt);
}
