// SPDX-License-Identifier: MIT
/*
 * runtime.c - creating a runtime (probing io_uring), running its workers,
 * the worker loop, idling and sleeping, deadlock detection, shutdown.
 */
#include <errno.h>
#include <linux/futex.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "compat.h"
#include "internal.h"

#ifdef __SANITIZE_THREAD__
#include <sanitizer/tsan_interface.h>
#endif

#define RF__DEFAULT_RING_ENTRIES 256
/* A request and its linked deadline timer must fit in the queue together. */
#define RF__MIN_RING_ENTRIES 2
#define RF__MAX_RING_ENTRIES 32768
#define RF__DEFAULT_STACK_POOL 256
#define RF__DEFAULT_BLOCKING_THREADS 4

#define RF__KNOWN_FLAGS (RF_RT_NO_DEFER_TASKRUN | RF_RT_NO_COOP_TASKRUN | \
			 RF_RT_NO_MULTISHOT_ACCEPT | RF_RT_NO_GUARD_MADVISE | \
			 RF_RT_NO_OVERFLOW_HANDLER | RF_RT_NO_RING | RF_RT_NO_PIN | \
			 RF_RT_SHUTDOWN_ON_SIGNAL)

static const struct {
	unsigned int setup, features, unless;
} rf__ring_tries[] = {
	/*
	 * 1. SINGLE_ISSUER + DEFER_TASKRUN (6.1): completions are processed
	 *    only when the worker asks, in its own context, never by
	 *    interrupting it;
	 * 2. COOP_TASKRUN (5.19): no inter-processor interrupt to run task work;
	 * 3. nothing: plain ring (5.5+; IORING_FEAT_NODROP is required).
	 * TASKRUN_FLAG goes with 1 and 2: the kernel raises IORING_SQ_TASKRUN
	 * when completions wait to be processed, so the loop enters only when
	 * needed.  Each worker makes its own ring, on its own thread, at the
	 * start of a run: SINGLE_ISSUER then binds it to that thread.
	 */
	{ IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_TASKRUN_FLAG,
	  RF_FEAT_SINGLE_ISSUER | RF_FEAT_DEFER_TASKRUN, RF_RT_NO_DEFER_TASKRUN },
	{ IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG,
	  RF_FEAT_COOP_TASKRUN, RF_RT_NO_COOP_TASKRUN },
	{ 0, 0, 0 },
};

#define RF__FEAT_SETUP_MASK (RF_FEAT_SINGLE_ISSUER | RF_FEAT_DEFER_TASKRUN | \
			     RF_FEAT_COOP_TASKRUN | RF_FEAT_SUBMIT_ALL)

/*
 * Make a ring with the best setup the kernel takes; with @features already
 * probed, make exactly that one again.
 */
static int rf__ring_init(struct io_uring *ring, unsigned int entries, unsigned int flags,
			 unsigned int *features, bool probe)
{
	int ret = -EINVAL;

	for (size_t i = 0; i < sizeof(rf__ring_tries) / sizeof(rf__ring_tries[0]); i++) {
		unsigned int want = rf__ring_tries[i].features;
		struct io_uring_params p;

		if (flags & rf__ring_tries[i].unless)
			continue;
		if (!probe && (*features & (RF_FEAT_SINGLE_ISSUER | RF_FEAT_COOP_TASKRUN)) !=
			      (want & (RF_FEAT_SINGLE_ISSUER | RF_FEAT_COOP_TASKRUN)))
			continue;
		memset(&p, 0, sizeof(p));
		p.flags = rf__ring_tries[i].setup | IORING_SETUP_CQSIZE;
		if (probe || (*features & RF_FEAT_SUBMIT_ALL))
			p.flags |= IORING_SETUP_SUBMIT_ALL;
		/* the kernel caps the CQ at 2 * IORING_MAX_ENTRIES (65536) */
		p.cq_entries = entries * 4 > 65536 ? 65536 : entries * 4;
		ret = io_uring_queue_init_params(entries, ring, &p);
		if (ret == -EINVAL && probe) {
			/* SUBMIT_ALL is 5.18: try once more without it */
			p.flags &= ~IORING_SETUP_SUBMIT_ALL;
			ret = io_uring_queue_init_params(entries, ring, &p);
		} else if (ret == 0 && probe) {
			*features |= RF_FEAT_SUBMIT_ALL;
		}
		if (ret == 0) {
			if (!(p.features & IORING_FEAT_NODROP)) {
				/* Before 5.5 a full CQ drops completions: fibers would hang. */
				io_uring_queue_exit(ring);
				return -ENOSYS;
			}
			if (probe) {
				*features |= RF_FEAT_RING | want;
				if (p.features & IORING_FEAT_CQE_SKIP)
					*features |= RF_FEAT_CQE_SKIP;
			}
			return 0;
		}
		if (ret == -ENOSYS || ret == -EPERM)
			return ret;	/* no io_uring at all (or disabled by sysctl) */
	}
	return ret;
}

/* Learn what the kernel has, with a ring made for the purpose. */
static int rf__probe(struct rf_runtime *rt)
{
	struct io_uring ring;
	struct io_uring_probe *probe;
	int ret = rf__ring_init(&ring, 8, rt->flags, &rt->features, true);

	if (ret)
		return ret;
	probe = io_uring_get_probe_ring(&ring);
	if (probe) {
		if (io_uring_opcode_supported(probe, IORING_OP_MSG_RING))
			rt->features |= RF_FEAT_MSG_RING;
		if (io_uring_opcode_supported(probe, IORING_OP_FUTEX_WAIT))
			rt->features |= RF_FEAT_FUTEX_WAIT;
		/* a ring like the workers' is what the module has to work with */
		if (io_uring_opcode_supported(probe, IORING_OP_URING_CMD) && rf__rfwake_probe(&ring))
			rt->features |= RF_FEAT_RFWAKE;
		io_uring_free_probe(probe);
	}
	io_uring_queue_exit(&ring);
	return 0;
}

static const struct rf__wake_ops *rf__wake_backends[RF_WAKE_NR] = {
	[RF_WAKE_MSG_RING] = &rf__wake_msg_ring,
	[RF_WAKE_EVENTFD] = &rf__wake_eventfd,
	[RF_WAKE_FUTEX] = &rf__wake_futex,
	[RF_WAKE_RFWAKE] = &rf__wake_rfwake,
};

/*
 * RF_WAKE_AUTO's order of preference.  rfwake first where it works: a wake
 * is one ioctl from any thread, with no armed read besides its command, and
 * nothing submitted early from the waker's ring.  Measured only under qemu TCG so far, where rfwake and msg_ring
 * take turns being faster (wake_<be>_nospin_ns, wake_<be>_pool_ns in
 * rf-bench; Documentation/scheduler.md).  eventfd works wherever io_uring
 * does, so futex is only ever used when asked for.
 */
static const unsigned int rf__wake_auto_order[] = {
	RF_WAKE_RFWAKE, RF_WAKE_MSG_RING, RF_WAKE_EVENTFD, RF_WAKE_FUTEX,
};

/* RF_WAKE_BACKEND (see ringfiber.h): 0 and *want set, or -EINVAL. */
static int rf__wake_from_env(unsigned int *want)
{
	const char *name = secure_getenv("RF_WAKE_BACKEND");

	if (!name || !*name)
		return 0;
	if (!strcmp(name, "auto")) {
		*want = RF_WAKE_AUTO;
		return 0;
	}
	for (unsigned int id = RF_WAKE_AUTO + 1; id < RF_WAKE_NR; id++) {
		if (!strcmp(name, rf__wake_backends[id]->name)) {
			*want = id;
			return 0;
		}
	}
	return -EINVAL;
}

static int rf__use_wake(struct rf_runtime *rt, unsigned int id)
{
	const struct rf__wake_ops *ops = rf__wake_backends[id];
	int ret;

	if (!ops->available(rt))
		return -EOPNOTSUPP;
	if (ops->open) {
		ret = ops->open(rt);
		if (ret)
			return ret;
	}
	rt->wake_id = id;
	rt->wake = ops;
	return 0;
}

static int rf__pick_wake(struct rf_runtime *rt, unsigned int want)
{
	int ret = -EOPNOTSUPP;

	if (want >= RF_WAKE_NR)
		return -EINVAL;
	if (!(rt->features & RF_FEAT_RING)) {
		/* no ring to sleep in: workers sleep on their futex word */
		rt->wake_id = RF_WAKE_FUTEX;
		rt->wake = &rf__wake_futex;
		return 0;
	}
	if (want != RF_WAKE_AUTO)
		return rf__use_wake(rt, want);
	/* one that is there but cannot serve this runtime: the next one */
	for (size_t i = 0; i < sizeof(rf__wake_auto_order) / sizeof(rf__wake_auto_order[0]); i++) {
		ret = rf__use_wake(rt, rf__wake_auto_order[i]);
		if (!ret)
			break;
	}
	return ret;
}

/* The CPUs of the process's affinity mask, in order. */
static int rf__default_cpus(int **cpusp, unsigned int *np)
{
	cpu_set_t set;
	unsigned int n = 0;
	int *cpus;

	if (sched_getaffinity(0, sizeof(set), &set) != 0)
		return -errno;
	cpus = calloc(CPU_SETSIZE, sizeof(*cpus));
	if (!cpus)
		return -ENOMEM;
	for (int c = 0; c < CPU_SETSIZE; c++)
		if (CPU_ISSET(c, &set))
			cpus[n++] = c;
	*cpusp = cpus;
	*np = n;
	return 0;
}

static void rf__free_runtime(struct rf_runtime *rt)
{
	if (rt->workers) {
		for (unsigned int i = 0; i < rt->nworkers; i++)
			free(rt->workers[i]);
		free(rt->workers);
	}
	free(rt->cpus);
	if (rt->stop_fd >= 0)
		close(rt->stop_fd);
	if (rt->wake && rt->wake->close)
		rt->wake->close(rt);
	pthread_mutex_destroy(&rt->quiet_lock);
	pthread_mutex_destroy(&rt->pool_lock);
	pthread_mutex_destroy(&rt->monitor_lock);
	pthread_cond_destroy(&rt->monitor_cond);
	free(rt);
}

RF_EXPORT int rf_runtime_create(struct rf_runtime **rtp, const struct rf_runtime_opts *opts)
{
	struct rf_runtime_opts o = { 0 };
	struct rf_runtime *rt;
	int *cpus = NULL;
	unsigned int ncpus = 0;
	int ret;

	if (!rtp)
		return -EINVAL;
	if (opts)
		o = *opts;
	if (o.flags & ~RF__KNOWN_FLAGS)
		return -EINVAL;
	if (!o.stack_size)
		o.stack_size = RF_DEFAULT_STACK_SIZE;
	if (o.stack_size < RF_MIN_STACK_SIZE || o.stack_size > RF_MAX_STACK_SIZE)
		return -EINVAL;
	if (!o.ring_entries)
		o.ring_entries = RF__DEFAULT_RING_ENTRIES;
	if (o.ring_entries < RF__MIN_RING_ENTRIES || o.ring_entries > RF__MAX_RING_ENTRIES ||
	    (o.ring_entries & (o.ring_entries - 1)))
		return -EINVAL;
	if (!o.stack_pool)
		o.stack_pool = RF__DEFAULT_STACK_POOL;
	if (o.workers > RF_MAX_WORKERS || o.wake_backend >= RF_WAKE_NR ||
	    (o.ncpus && !o.cpus) || (o.cpus && !o.ncpus) || o.ncpus > CPU_SETSIZE)
		return -EINVAL;
	for (unsigned int i = 0; i < o.ncpus; i++)
		if (o.cpus[i] < 0 || o.cpus[i] >= CPU_SETSIZE)
			return -EINVAL;
	if (!o.blocking_threads)
		o.blocking_threads = RF__DEFAULT_BLOCKING_THREADS;
	if (o.blocking_threads > 1024)
		return -EINVAL;
	/* after the checks: a bad opts.wake_backend is bad input either way */
	ret = rf__wake_from_env(&o.wake_backend);
	if (ret)
		return ret;

	if (o.cpus) {
		cpus = malloc(o.ncpus * sizeof(*cpus));
		if (!cpus)
			return -ENOMEM;
		memcpy(cpus, o.cpus, o.ncpus * sizeof(*cpus));
		ncpus = o.ncpus;
	} else {
		ret = rf__default_cpus(&cpus, &ncpus);
		if (ret)
			return ret;
	}
	if (!o.workers)
		o.workers = ncpus ? (ncpus > RF_MAX_WORKERS ? RF_MAX_WORKERS : ncpus) : 1;
	else if (!o.cpus && o.workers < ncpus)
		/*
		 * Fewer workers than CPUs and no CPU named: pinning them to the
		 * first CPUs would stack every such process on CPU 0.  Let the
		 * kernel place them.
		 */
		o.flags |= RF_RT_NO_PIN;

	rt = calloc(1, sizeof(*rt));
	if (!rt) {
		free(cpus);
		return -ENOMEM;
	}
	pthread_mutex_init(&rt->quiet_lock, NULL);
	pthread_mutex_init(&rt->pool_lock, NULL);
	pthread_mutex_init(&rt->monitor_lock, NULL);
	pthread_cond_init(&rt->monitor_cond, NULL);
	rt->wake_fd = -1;
	rt->stop_fd = -1;
	rt->flags = o.flags;
	rt->page_size = (size_t)sysconf(_SC_PAGESIZE);
	rt->stack_size = (o.stack_size + rt->page_size - 1) / rt->page_size * rt->page_size;
	rt->ring_entries = o.ring_entries;
	rt->idle_spin_ns = o.idle_spin_ns ? o.idle_spin_ns : RF_DEFAULT_IDLE_SPIN_NS;
	rt->hog_ns = o.hog_ns ? o.hog_ns : RF_DEFAULT_HOG_NS;
	rt->blocking_threads = o.blocking_threads;
	rt->nworkers = o.workers;
	rt->cpus = cpus;

	rt->workers = calloc(rt->nworkers, sizeof(*rt->workers));
	if (!rt->workers) {
		ret = -ENOMEM;
		goto err;
	}
	for (unsigned int i = 0; i < rt->nworkers; i++) {
		struct rf__worker *wk = aligned_alloc(RF__CACHELINE,
						      (sizeof(*wk) + RF__CACHELINE - 1) &
						      ~(size_t)(RF__CACHELINE - 1));

		if (!wk) {
			ret = -ENOMEM;
			goto err;
		}
		memset(wk, 0, sizeof(*wk));
		wk->rt = rt;
		wk->id = i;
		wk->page_size = rt->page_size;
		wk->stack_pool_max = o.stack_pool;
		wk->steal_from = i + 1;
		wk->cpu = (rt->flags & RF_RT_NO_PIN) || !ncpus ? -1 : cpus[i % ncpus];
		rt->workers[i] = wk;
	}

	if (!(o.flags & RF_RT_NO_GUARD_MADVISE) && rf__guard_madvise_works())
		rt->features |= RF_FEAT_GUARD_MADVISE;
	if (!(o.flags & RF_RT_NO_OVERFLOW_HANDLER)) {
		ret = rf__overflow_handler_install();
		if (ret)
			goto err;
	}
	if (!(o.flags & RF_RT_NO_RING)) {
		ret = rf__probe(rt);
		if (ret && ret != -ENOSYS && ret != -EPERM)
			goto err;
		/* no io_uring: schedule fibers anyway; I/O returns -ENOSYS */
		if (ret == 0 && !(o.flags & RF_RT_NO_MULTISHOT_ACCEPT))
			rt->features |= RF_FEAT_MULTISHOT_ACCEPT;	/* confirmed on first use */
	}
	ret = rf__pick_wake(rt, o.wake_backend);
	if (ret)
		goto err;
	if (rt->features & RF_FEAT_RING) {
		/* what rf_runtime_shutdown() wakes the workers' rings with */
		rt->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (rt->stop_fd < 0) {
			ret = -errno;
			goto err;
		}
	}
	*rtp = rt;
	return 0;

err:
	rf__free_runtime(rt);
	return ret;
}

/* ------------------------------------------------------ a worker's life */

/* Completions are waiting in the kernel (deferred task work, CQ overflow). */
static bool rf__kernel_has_completions(struct rf__worker *wk)
{
	return IO_URING_READ_ONCE(*wk->ring.sq.kflags) &
	       (IORING_SQ_TASKRUN | IORING_SQ_CQ_OVERFLOW);
}

/* Anything for an idle worker to do? */
static bool rf__has_work(struct rf__worker *wk)
{
	struct rf_runtime *rt = wk->rt;

	/*
	 * seq_cst, as the store of parked before the re-check: a relaxed load
	 * may be satisfied before that store is seen (aarch64 does), and miss
	 * what a waker that read parked == 0 had published.
	 */
	if (__atomic_load_n(&wk->inbox, __ATOMIC_SEQ_CST) ||
	    __atomic_load_n(&rt->done, __ATOMIC_SEQ_CST))
		return true;
	if (wk->has_ring && (io_uring_cq_ready(&wk->ring) || rf__kernel_has_completions(wk)))
		return true;
	return rt->nworkers > 1 && rf__stealable_anywhere(rt);
}

static void rf__for_each_fiber(struct rf_runtime *rt, struct rf__worker *self,
			       void (*fn)(struct rf__worker *, struct rf_fiber *))
{
	for (unsigned int i = 0; i < rt->nworkers; i++) {
		struct rf__worker *wk = rt->workers[i];
		struct rf_fiber *f;

		rf__spin_lock(&wk->all_lock);
		rf__list_for_each_entry(f, &wk->all, all_link)
			fn(self, f);
		rf__spin_unlock(&wk->all_lock);
	}
}

static void rf__cancel_one(struct rf__worker *self, struct rf_fiber *f)
{
	if (rf__state(f) != RF__DONE)
		rf__cancel_fiber(self, f);
}

void rf__run_over(struct rf_runtime *rt)
{
	struct rf__worker *self = rf__tls_wk;

	__atomic_store_n(&rt->done, 1, __ATOMIC_SEQ_CST);
	for (unsigned int i = 0; i < rt->nworkers; i++)
		if (rt->workers[i] != self)
			rf__kick(self, rt->workers[i]);
}

/*
 * rf_runtime_shutdown() marked the run, and no worker has cancelled its
 * fibers yet.  Sequentially consistent: without a ring, the mark and the
 * futex word the shutdown sets after it are what a sleeping worker sees.
 */
static bool rf__stop_pending(struct rf_runtime *rt)
{
	return (__atomic_load_n(&rt->run_state, __ATOMIC_SEQ_CST) &
		(RF__RUN_STOP | RF__RUN_STOPPED)) == RF__RUN_STOP;
}

/*
 * The real work of rf_runtime_shutdown(), in a worker's loop, where no
 * lock is held and no fiber's state is half changed: the first worker to
 * see the mark cancels every fiber.
 */
static void rf__stop_fibers(struct rf__worker *wk)
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

/*
 * About to sleep with no request in flight.  If every worker is in the same
 * state, nothing queued anywhere and no rf_blocking() call running, no
 * fiber can ever be woken: cancel them all once; the second time, end the
 * run.  Returns true if it did either (the caller must not sleep).
 */
static bool rf__quiet_enter(struct rf__worker *wk)
{
	struct rf_runtime *rt = wk->rt;
	bool acted = false;

	pthread_mutex_lock(&rt->quiet_lock);
	rt->nquiet++;
	if (rt->nquiet == rt->nworkers && !__atomic_load_n(&rt->blocking_busy, __ATOMIC_SEQ_CST) &&
	    !rf__load_relaxed(&rt->done) && !rf__stop_pending(rt)) {
		bool queued = false;

		for (unsigned int i = 0; i < rt->nworkers; i++)
			if (rf__load(&rt->workers[i]->inbox))
				queued = true;
		if (!queued && !rf__stealable_anywhere(rt)) {
			if (!rt->deadlock_cancelled) {
				rt->deadlock_cancelled = true;
				rf__for_each_fiber(rt, wk, rf__cancel_one);
			} else {
				rt->deadlocked = true;
				rf__run_over(rt);
			}
			acted = true;
		}
	}
	if (acted)
		rt->nquiet--;
	pthread_mutex_unlock(&rt->quiet_lock);
	return acted;
}

static void rf__quiet_leave(struct rf__worker *wk)
{
	pthread_mutex_lock(&wk->rt->quiet_lock);
	wk->rt->nquiet--;
	pthread_mutex_unlock(&wk->rt->quiet_lock);
}

/* Sleep until kicked (or a completion arrives). */
static void rf__sleep(struct rf__worker *wk)
{
	if (wk->has_ring) {
		rf__flush(wk, true);
		return;
	}
	/* no ring: the futex back-end's word is all there is */
	rf__futex_sleep(wk);
}

/*
 * Nothing ready: poll for work for idle_spin_ns (a kick then costs the
 * waker no system call and us no wake-up latency), then park: raise the
 * parked flag, look once more, and sleep in the kernel.
 */
static void rf__idle(struct rf__worker *wk)
{
	struct rf_runtime *rt = wk->rt;
	bool quiet;

	__atomic_add_fetch(&rt->nidle, 1, __ATOMIC_SEQ_CST);
	if (rt->idle_spin_ns > 0 && wk->has_ring) {
		int64_t end = rf__time_add(rf_now(), rt->idle_spin_ns);
		unsigned int spins = 0;

		while (!rf__has_work(wk)) {
			rf__cpu_relax();
			if (!(++spins & 63) && rf_now() >= end)
				break;
		}
	}
	if (rf__has_work(wk))
		goto out;
	/* no SQE was free to re-arm the back-end: no kick could wake us */
	if (rf__unlikely(wk->wake_unarmed) && rt->wake->arm && rt->wake->arm(wk))
		goto out;	/* the loop flushes and we try again */
	__atomic_store_n(&wk->parked, 1, __ATOMIC_SEQ_CST);
	if (rf__has_work(wk)) {
		__atomic_store_n(&wk->parked, 0, __ATOMIC_SEQ_CST);
		goto out;
	}
	quiet = !wk->inflight;
	if (quiet && rf__quiet_enter(wk)) {
		__atomic_store_n(&wk->parked, 0, __ATOMIC_SEQ_CST);
		goto out;
	}
	/* a tracer gets what we recorded before we sleep, not after */
	rf__trace_flush(wk);
	if (rf__unlikely(RF__PROBE_ON(idle) | RF__PROBE_ON(resume))) {
		int64_t slept = rf__trace_now();

		RF__PROBE(idle, 1, wk->id);
		rf__sleep(wk);
		RF__PROBE(resume, 2, wk->id, rf__trace_now() - slept);
	} else {
		rf__sleep(wk);
	}
	__atomic_store_n(&wk->parked, 0, __ATOMIC_SEQ_CST);
	if (quiet)
		rf__quiet_leave(wk);
	rf__count(&wk->sleeps, 1);
out:
	__atomic_sub_fetch(&rt->nidle, 1, __ATOMIC_SEQ_CST);
}

/*
 * The worker loop: runs on the thread's own stack whenever the run queue is
 * empty or the switch budget is spent.
 */
static void rf__loop(struct rf__worker *wk)
{
	struct rf_runtime *rt = wk->rt;

	while (!rf__load(&rt->done)) {
		if (rf__unlikely(rf__stop_pending(rt)))
			rf__stop_fibers(wk);
		rf__inbox_drain(wk);
		if (wk->has_ring) {
			/* submit what fibers prepared; run deferred completions */
			if (wk->unsubmitted || rf__kernel_has_completions(wk))
				rf__flush(wk, false);
			rf__reap(wk);
		}
		if (!wk->runq.head) {
			if (rt->nworkers > 1 && rf__steal(wk))
				continue;
			rf__idle(wk);
			continue;
		}
		/* someone is idle: offer it half of our queue */
		if (wk->runq.len > 1 && rf__load_relaxed(&rt->nidle))
			rf__publish(wk, false);
		wk->budget = RF__SWITCH_BUDGET;
		rf__loop_switch_to(wk, rf__runq_pop(&wk->runq));
	}
	rf__trace_flush(wk);
}

static int rf__pin(struct rf__worker *wk)
{
	cpu_set_t set;

	if (wk->cpu < 0)
		return 0;
	CPU_ZERO(&set);
	CPU_SET(wk->cpu, &set);
	return -pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

/* Keep a poll of rt->stop_fd in the ring: rf_runtime_shutdown() completes it. */
static int rf__stop_arm(struct rf__worker *wk)
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

/* On the worker's own thread: its ring, back-end, signal stack. */
static int rf__worker_setup(struct rf__worker *wk)
{
	struct rf_runtime *rt = wk->rt;
	int ret;

	rf__tls_wk = wk;
	wk->tid = gettid();
	wk->thread = pthread_self();
	wk->in_user = false;
	ret = rf__pin(wk);
	if (ret)
		return ret;
#ifdef __SANITIZE_ADDRESS__
	{
		pthread_attr_t attr;
		void *addr;

		if (pthread_getattr_np(pthread_self(), &attr) == 0) {
			pthread_attr_getstack(&attr, &addr, &wk->thread_stack_size);
			wk->thread_stack_bottom = addr;
			pthread_attr_destroy(&attr);
		}
	}
#endif
#ifdef __SANITIZE_THREAD__
	wk->tsan_loop_fiber = __tsan_get_current_fiber();
#endif
	if (!(rt->flags & RF_RT_NO_OVERFLOW_HANDLER)) {
		ret = rf__altstack_enter(wk);
		if (ret)
			return ret;
	}
	if (rt->features & RF_FEAT_RING) {
		ret = rf__ring_init(&wk->ring, rt->ring_entries, rt->flags, &rt->features, false);
		if (ret)
			return ret;
		wk->has_ring = true;
		rf__timer_reset(wk);
		ret = rt->wake->setup(wk);
		if (ret)
			return ret;
		ret = rf__stop_arm(wk);
		if (ret)
			return ret;
	}
	return 0;
}

static void rf__worker_teardown(struct rf__worker *wk)
{
	struct rf_runtime *rt = wk->rt;

	/* with a ring, while it is still there */
	rt->wake->teardown(wk);
	if (wk->has_ring) {
		/* cancels what is still armed: acceptors, the shutdown's poll */
		io_uring_queue_exit(&wk->ring);
		wk->has_ring = false;
		rf__acceptors_destroy(wk);
	}
	wk->inflight = 0;
	wk->unsubmitted = 0;
	__atomic_store_n(&wk->parked, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&wk->wake_pending, 0, __ATOMIC_RELAXED);
	rf__altstack_leave(wk);
	rf__tls_wk = NULL;
}

/* Every worker thread waits here until all rings are up. */
struct rf__start {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	unsigned int ready;
	int error;
	bool go;
	unsigned int started;	/* worker threads, worker 0 included */
	unsigned int stopped;	/* of which out of their loops */
};

/*
 * Wait until every worker has left its loop.  Only then may a worker close
 * what its back-end needs: until then another worker may still kick it
 * (the last fiber's exit kicks every worker).
 */
static void rf__stop_barrier(struct rf__start *st)
{
	pthread_mutex_lock(&st->lock);
	st->stopped++;
	pthread_cond_broadcast(&st->cond);
	while (st->stopped < st->started)
		pthread_cond_wait(&st->cond, &st->lock);
	pthread_mutex_unlock(&st->lock);
}

static struct rf__start *rf__start_of(struct rf_runtime *rt)
{
	return (struct rf__start *)rt->start;
}

static void *rf__worker_thread(void *arg)
{
	struct rf__worker *wk = arg;
	struct rf__start *st = rf__start_of(wk->rt);
	int ret = rf__worker_setup(wk);
	bool go;

	pthread_mutex_lock(&st->lock);
	if (ret && !st->error)
		st->error = ret;
	st->ready++;
	pthread_cond_broadcast(&st->cond);
	while (!st->go)
		pthread_cond_wait(&st->cond, &st->lock);
	go = !st->error;
	pthread_mutex_unlock(&st->lock);
	if (go)
		rf__loop(wk);
	rf__stop_barrier(st);
	rf__worker_teardown(wk);
	return NULL;
}

/*
 * Once the run is over no fiber is left to call rf_join(): free the
 * finished fibers nobody joined.  Fibers a deadlock left parked stay for
 * rf_runtime_destroy().
 */
static void rf__free_unjoined(struct rf_runtime *rt)
{
	for (unsigned int i = 0; i < rt->nworkers; i++) {
		struct rf__worker *wk = rt->workers[i];
		struct rf_fiber *f, *next;

		rf__list_for_each_entry_safe(f, next, &wk->all, all_link) {
			if (rf__state(f) == RF__DONE) {
				rf__all_unlink(f);
				rf__fiber_put(wk, f);
			}
		}
	}
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
static int rf__signals_take(struct rf_runtime *rt, sigset_t *old)
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
static int rf__signals_give(struct rf_runtime *rt)
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

RF_EXPORT int rf_runtime_run(struct rf_runtime *rt, rf_fn fn, void *arg, void **result)
{
	struct rf__start st = { .error = 0 };
	struct rf__worker *wk0;
	sigset_t oldmask;
	cpu_set_t oldcpus;
	bool restore_cpus;
	unsigned int started = 1;
	uint32_t state;
	int ret, sig;

	if (!rt || !fn)
		return -EINVAL;
	if (rf__tls_wk)
		return -EBUSY;
	/* a new run, not shut down yet: from now on rf_runtime_shutdown() applies */
	state = rf__load(&rt->run_state);
	do {
		if (state & RF__RUN_ON)
			return -EBUSY;
	} while (!__atomic_compare_exchange_n(&rt->run_state, &state,
					      (state | (RF__RUN_ONE - 1)) + 1 + RF__RUN_ON, false,
					      __ATOMIC_SEQ_CST, __ATOMIC_ACQUIRE));
	if (rt->stop_fd >= 0) {
		uint64_t v;

		/*
		 * The last run's shutdown, if any.  One for this run that we
		 * drain too is seen all the same: no worker has reached its
		 * loop, which looks at the mark first.
		 */
		if (read(rt->stop_fd, &v, sizeof(v)) < 0)
			(void)v;
	}
	wk0 = rt->workers[0];
	rt->done = 0;
	rt->nlive = 0;
	rt->nidle = 0;
	rt->nquiet = 0;
	rf__store_relaxed(&rt->signal, 0);
	rt->deadlock_cancelled = false;
	rt->deadlocked = false;
	rt->main_result = NULL;
	pthread_mutex_init(&st.lock, NULL);
	pthread_cond_init(&st.cond, NULL);
	rt->start = &st;

	restore_cpus = wk0->cpu >= 0 &&
		       pthread_getaffinity_np(pthread_self(), sizeof(oldcpus), &oldcpus) == 0;
	ret = rf__signals_take(rt, &oldmask);
	if (!ret)
		ret = rf__worker_setup(wk0);
	if (ret)
		goto out;
	for (unsigned int i = 1; i < rt->nworkers; i++) {
		struct rf__worker *wk = rt->workers[i];
		int err = -pthread_create(&wk->thread, NULL, rf__worker_thread, wk);

		if (err) {
			ret = err;
			break;
		}
		started++;
	}
	pthread_mutex_lock(&st.lock);
	st.started = started;
	while (st.ready < started - 1)
		pthread_cond_wait(&st.cond, &st.lock);
	if (!ret)
		ret = st.error;
	if (!ret)
		ret = rf__spawn(wk0, wk0, NULL, fn, arg, NULL, true);
	if (ret)
		st.error = ret;
	st.go = true;
	pthread_cond_broadcast(&st.cond);
	pthread_mutex_unlock(&st.lock);

	if (!ret) {
		if (rt->hog_ns > 0 && rt->nworkers > 0)
			rf__watchdog_start(rt);
		rf__loop(wk0);
	}
	/* the others leave their loops too (rt->done), or never entered them */
	rf__run_over(rt);
	rf__stop_barrier(&st);
	for (unsigned int i = 1; i < started; i++)
		pthread_join(rt->workers[i]->thread, NULL);
	rf__watchdog_stop(rt);
	rf__pool_stop(rt);
	rf__free_unjoined(rt);
	if (!ret && rt->deadlock_cancelled)
		ret = -EDEADLK;
out:
	rf__worker_teardown(wk0);
	sig = rf__signals_give(rt);
	pthread_sigmask(SIG_SETMASK, &oldmask, NULL);
	if (sig)
		raise(sig);
	if (restore_cpus)
		pthread_setaffinity_np(pthread_self(), sizeof(oldcpus), &oldcpus);
	rt->start = NULL;
	pthread_cond_destroy(&st.cond);
	pthread_mutex_destroy(&st.lock);
	__atomic_and_fetch(&rt->run_state, ~(uint32_t)(RF__RUN_ON | RF__RUN_STOP | RF__RUN_STOPPED),
			   __ATOMIC_SEQ_CST);
	if (result)
		*result = rt->main_result;
	return ret;
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

RF_EXPORT void rf_runtime_destroy(struct rf_runtime *rt)
{
	if (!rt || (rf__load(&rt->run_state) & RF__RUN_ON))
		return;
	for (unsigned int i = 0; i < rt->nworkers; i++) {
		struct rf__worker *wk = rt->workers[i];

		/* Fibers left by a deadlocked run: nothing will ever resume them. */
		struct rf_fiber *f, *next;

		rf__list_for_each_entry_safe(f, next, &wk->all, all_link) {
			rf__list_del(&wk->all, &f->all_link);
			rf__stack_free(wk, f);
		}
		rf__stack_pool_drain(wk);
	}
	rf__free_runtime(rt);
}

RF_EXPORT int rf_runtime_stats(struct rf_runtime *rt, struct rf_stats *st)
{
	if (!rt)
		rt = rf__tls_wk ? rf__tls_wk->rt : NULL;
	if (!rt || !st)
		return -EINVAL;
	memset(st, 0, sizeof(*st));
	st->features = rf__load_relaxed(&rt->features);
	st->workers = rt->nworkers;
	st->wake_backend = rt->wake_id;
	for (unsigned int i = 0; i < rt->nworkers; i++) {
		struct rf__worker *wk = rt->workers[i];

		st->fibers += rf__load_relaxed(&wk->nfibers);
		st->inflight += rf__load_relaxed(&wk->inflight);
		st->switches += rf__load_relaxed(&wk->switches);
		st->runs += rf__load_relaxed(&wk->switches) - rf__load_relaxed(&wk->loop_switches);
		st->enters += rf__load_relaxed(&wk->enters);
		st->sqes += rf__load_relaxed(&wk->sqes);
		st->cqes += rf__load_relaxed(&wk->cqes);
		st->stacks_mapped += rf__load_relaxed(&wk->stacks_mapped);
		st->stacks_pooled += rf__load_relaxed(&wk->stacks_pooled);
		st->remote_wakes += rf__load_relaxed(&wk->remote_wakes);
		st->wake_calls += rf__load_relaxed(&wk->wake_calls);
		st->wake_errors += rf__load_relaxed(&wk->wake_errors);
		st->sleeps += rf__load_relaxed(&wk->sleeps);
		st->steals += rf__load_relaxed(&wk->steals);
	}
	st->hogs = rf__load_relaxed(&rt->hogs);
	st->blocking_calls = rf__load_relaxed(&rt->blocking_calls);
	st->signal = rf__load_relaxed(&rt->signal);
	return 0;
}

RF_EXPORT int64_t rf_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

RF_EXPORT int64_t rf_deadline_after(int64_t ns)
{
	if (ns < 0)
		return RF_NO_DEADLINE;
	return rf__time_add(rf_now(), ns);
}
