// SPDX-License-Identifier: MIT
/*
 * runtime.c - creating a runtime (its options), running its workers (their
 * threads, the start and stop barriers), destroying it, its statistics.
 * The rest of a runtime's life: setup.c (probing, rings, a worker's set-up),
 * loop.c (the worker loop, idling), deadlock.c, shutdown.c (and signals).
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

#define RF__DEFAULT_RING_ENTRIES 256
/* A request and its linked deadline timer must fit in the queue together. */
#define RF__MIN_RING_ENTRIES 2
#define RF__MAX_RING_ENTRIES 32768
#define RF__DEFAULT_STACK_POOL 256
#define RF__DEFAULT_BLOCKING_THREADS 4

#define RF__KNOWN_FLAGS (RF_RT_NO_DEFER_TASKRUN | RF_RT_NO_COOP_TASKRUN | \
			 RF_RT_NO_MULTISHOT_ACCEPT | RF_RT_NO_GUARD_MADVISE | \
			 RF_RT_NO_OVERFLOW_HANDLER | RF_RT_NO_RING | RF_RT_NO_PIN | \
			 RF_RT_SHUTDOWN_ON_SIGNAL | RF_RT_NO_BUF_RING | RF_RT_NO_MULTISHOT_RECV | \
			 RF_RT_NO_PREEMPT | RF_RT_BLOCK_RESCUE)

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
	rf__rescue_close(rt);	/* it reads the workers */
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
	free(rt);
}

/*
 * Check the caller's options and fill in the defaults.  RF_WAKE_BACKEND is
 * read after the checks: a bad opts.wake_backend is bad input either way.
 */
static int rf__opts_check(struct rf_runtime_opts *o)
{
	if (o->flags & ~RF__KNOWN_FLAGS)
		return -EINVAL;
	if (!o->stack_size)
		o->stack_size = RF_DEFAULT_STACK_SIZE;
	if (o->stack_size < RF_MIN_STACK_SIZE || o->stack_size > RF_MAX_STACK_SIZE)
		return -EINVAL;
	if (!o->ring_entries)
		o->ring_entries = RF__DEFAULT_RING_ENTRIES;
	if (o->ring_entries < RF__MIN_RING_ENTRIES || o->ring_entries > RF__MAX_RING_ENTRIES ||
	    (o->ring_entries & (o->ring_entries - 1)))
		return -EINVAL;
	if (!o->stack_pool)
		o->stack_pool = RF__DEFAULT_STACK_POOL;
	if (o->workers > RF_MAX_WORKERS || o->wake_backend >= RF_WAKE_NR ||
	    (o->ncpus && !o->cpus) || (o->cpus && !o->ncpus) || o->ncpus > CPU_SETSIZE)
		return -EINVAL;
	for (unsigned int i = 0; i < o->ncpus; i++)
		if (o->cpus[i] < 0 || o->cpus[i] >= CPU_SETSIZE)
			return -EINVAL;
	if (!o->blocking_threads)
		o->blocking_threads = RF__DEFAULT_BLOCKING_THREADS;
	if (o->blocking_threads > 1024)
		return -EINVAL;
	if (!o->slice_ns)
		o->slice_ns = RF_DEFAULT_SLICE_NS;
	if (o->slice_ns < RF_MIN_SLICE_NS ||
	    o->slice_ns > (o->hog_ns > 0 ? o->hog_ns : RF_DEFAULT_HOG_NS))
		return -EINVAL;
	return rf__wake_from_env(&o->wake_backend);
}

/*
 * The CPUs the workers go on (the caller's, or the process's affinity
 * mask) in a new array, and the number of workers if the caller left it
 * to us.
 */
static int rf__cpus_choose(struct rf_runtime_opts *o, int **cpusp, unsigned int *ncpusp)
{
	unsigned int ncpus = 0;
	int *cpus = NULL;
	int ret;

	if (o->cpus) {
		cpus = malloc(o->ncpus * sizeof(*cpus));
		if (!cpus)
			return -ENOMEM;
		memcpy(cpus, o->cpus, o->ncpus * sizeof(*cpus));
		ncpus = o->ncpus;
	} else {
		ret = rf__default_cpus(&cpus, &ncpus);
		if (ret)
			return ret;
	}
	if (!o->workers)
		o->workers = ncpus ? (ncpus > RF_MAX_WORKERS ? RF_MAX_WORKERS : ncpus) : 1;
	else if (!o->cpus && o->workers < ncpus)
		/*
		 * Fewer workers than CPUs and no CPU named: pinning them to the
		 * first CPUs would stack every such process on CPU 0.  Let the
		 * kernel place them.
		 */
		o->flags |= RF_RT_NO_PIN;
	*cpusp = cpus;
	*ncpusp = ncpus;
	return 0;
}

/* The runtime and its workers, as @o says; it owns @cpus from here on. */
static int rf__runtime_alloc(struct rf_runtime **rtp, const struct rf_runtime_opts *o,
			     int *cpus, unsigned int ncpus)
{
	struct rf_runtime *rt = calloc(1, sizeof(*rt));

	if (!rt) {
		free(cpus);
		return -ENOMEM;
	}
	pthread_mutex_init(&rt->quiet_lock, NULL);
	pthread_mutex_init(&rt->pool_lock, NULL);
	rt->wake_fd = -1;
	rt->stop_fd = -1;
	rt->rescue_fd = -1;
	rt->rescue_epfd = -1;
	rt->flags = o->flags;
	rt->page_size = (size_t)sysconf(_SC_PAGESIZE);
	rt->stack_size = (o->stack_size + rt->page_size - 1) / rt->page_size * rt->page_size;
	rt->ring_entries = o->ring_entries;
	rt->idle_spin_ns = o->idle_spin_ns ? o->idle_spin_ns : RF_DEFAULT_IDLE_SPIN_NS;
	rt->hog_ns = o->hog_ns ? o->hog_ns : RF_DEFAULT_HOG_NS;
	rt->slice_ns = o->slice_ns;
	rt->blocking_threads = o->blocking_threads;
	rt->rx_size = RF_DEFAULT_RECV_BUF_SIZE;
	rt->rx_count = RF_DEFAULT_RECV_BUFS;
	rt->nworkers = o->workers;
	rt->cpus = cpus;
	*rtp = rt;

	rt->workers = calloc(rt->nworkers, sizeof(*rt->workers));
	if (!rt->workers)
		return -ENOMEM;
	for (unsigned int i = 0; i < rt->nworkers; i++) {
		struct rf__worker *wk = aligned_alloc(RF__CACHELINE,
						      (sizeof(*wk) + RF__CACHELINE - 1) &
						      ~(size_t)(RF__CACHELINE - 1));

		if (!wk)
			return -ENOMEM;
		memset(wk, 0, sizeof(*wk));
		wk->rt = rt;
		wk->id = i;
		wk->page_size = rt->page_size;
		wk->stack_pool_max = o->stack_pool;
		wk->steal_from = i + 1;
		wk->cpu = (rt->flags & RF_RT_NO_PIN) || !ncpus ? -1 : cpus[i % ncpus];
		rt->workers[i] = wk;
	}
	return 0;
}

RF_EXPORT int rf_runtime_create(struct rf_runtime **rtp, const struct rf_runtime_opts *opts)
{
	RF__GUARD();	/* from a fiber: never preempted holding preempt.c's lock */
	struct rf_runtime_opts o = { 0 };
	struct rf_runtime *rt = NULL;
	unsigned int ncpus;
	int *cpus;
	int ret;

	if (!rtp)
		return -EINVAL;
	if (opts)
		o = *opts;
	ret = rf__opts_check(&o);
	if (ret)
		return ret;
	ret = rf__cpus_choose(&o, &cpus, &ncpus);
	if (ret)
		return ret;
	ret = rf__runtime_alloc(&rt, &o, cpus, ncpus);
	if (!ret)
		ret = rf__runtime_probe(rt, o.wake_backend);
	if (!ret)
		ret = rf__stop_open(rt);
	/* preemption needs the watchdog to find hogs (preempt.c) */
	if (!ret && !(rt->flags & RF_RT_NO_PREEMPT) && rt->hog_ns > 0 && rf__preempt_supported())
		rt->features |= RF_FEAT_PREEMPT;
	/* opt-in: the flag fails where it cannot be had, the environment says why */
	if (!ret && ((rt->flags & RF_RT_BLOCK_RESCUE) || rf__rescue_from_env()))
		ret = rf__rescue_open(rt, !(rt->flags & RF_RT_BLOCK_RESCUE));
	if (ret) {
		if (rt)
			rf__free_runtime(rt);
		return ret;
	}
	*rtp = rt;
	return 0;
}

/* ------------------------------------------------------ a worker's life */

void rf__for_each_fiber(struct rf_runtime *rt, struct rf__worker *self,
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

void rf__cancel_one(struct rf__worker *self, struct rf_fiber *f)
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

RF_EXPORT void rf_runtime_destroy(struct rf_runtime *rt)
{
	RF__GUARD();
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

/* Add worker @wk's counters to @st. */
static void rf__worker_stats_add(const struct rf__worker *wk, struct rf_stats *st)
{
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
	st->hogs += rf__load_relaxed(&wk->hogs);
	st->preemptions += rf__load_relaxed(&wk->preemptions);
	st->preempt_deferred += rf__load_relaxed(&wk->preempt_deferred);
	st->preempt_ticks += rf__load_relaxed(&wk->preempt_ticks);
	st->block_rescues += rf__load_relaxed(&wk->block_rescues);
}

/* What rf_stats holds for the whole runtime, counters zero. */
static struct rf_runtime *rf__stats_begin(struct rf_runtime *rt, struct rf_stats *st)
{
	if (!rt)
		rt = rf__tls_wk ? rf__tls_wk->rt : NULL;
	if (!rt || !st)
		return NULL;
	memset(st, 0, sizeof(*st));
	st->features = rf__load_relaxed(&rt->features);
	st->workers = rt->nworkers;
	st->wake_backend = rt->wake_id;
	st->signal = rf__load_relaxed(&rt->signal);
	return rt;
}

RF_EXPORT int rf_runtime_stats(struct rf_runtime *rt, struct rf_stats *st)
{
	rt = rf__stats_begin(rt, st);
	if (!rt)
		return -EINVAL;
	for (unsigned int i = 0; i < rt->nworkers; i++)
		rf__worker_stats_add(rt->workers[i], st);
	st->blocking_calls = rf__load_relaxed(&rt->blocking_calls);
	return 0;
}

RF_EXPORT int rf_runtime_worker_stats(struct rf_runtime *rt, unsigned int worker,
				      struct rf_stats *st)
{
	rt = rf__stats_begin(rt, st);
	if (!rt || worker >= rt->nworkers)
		return -EINVAL;
	st->workers = 1;
	rf__worker_stats_add(rt->workers[worker], st);
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
