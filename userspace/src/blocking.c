// SPDX-License-Identifier: MIT
/*
 * blocking.c - rf_blocking(): run a call that blocks its thread on a small
 * pool of OS threads, and park only the calling fiber meanwhile.
 *
 * A job lives on the calling fiber's stack: the fiber queues it, parks on
 * its event wait, and the pool thread that ran the call wakes it from
 * outside the runtime (rf__wait_event_wake() pushes the fiber to its
 * worker's inbox and kicks the worker if it sleeps).  The fiber cannot
 * return, and its stack cannot go away, before that wake-up: the wait is
 * marked nocancel, it has no deadline, and the pool thread is the only one
 * that ever wakes it.  After the wake-up the thread never touches the job
 * again.
 *
 * The pool starts on the first rf_blocking() of a run and rf__pool_stop()
 * ends it when the run is over, so a runtime that never calls rf_blocking()
 * has no extra threads, and no thread outlives the run that needed it.
 *
 * The deadlock detector counts a worker as quiet when it sleeps with nothing
 * in its ring; a fiber waiting for a pool thread leaves nothing there, so
 * rt->blocking_busy tells the detector that a wake-up is still to come.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>

#include "internal.h"

#define RF__POOL_THREAD_NAME "rf-blocking"

/* One rf_blocking() call: on the calling fiber's stack. */
struct rf__job {
	rf_fn fn;
	void *arg;
	void *result;
	struct rf__wait w;
	struct rf__job *next;
};

struct rf__pool {
	struct rf_runtime *rt;
	pthread_mutex_t lock;
	pthread_cond_t cond;		/* a job was queued, or stop was set */
	struct rf__job *head, *tail;	/* FIFO of jobs no thread took yet */
	bool stop;			/* the run is over: exit once idle */
	unsigned int nthreads;		/* threads started */
	pthread_t threads[];
};

static void *rf__pool_thread(void *arg)
{
	struct rf__pool *p = arg;
	struct rf_runtime *rt = p->rt;
	struct rf__job *job;

	pthread_setname_np(pthread_self(), RF__POOL_THREAD_NAME);
	pthread_mutex_lock(&p->lock);
	for (;;) {
		while (!p->head && !p->stop)
			pthread_cond_wait(&p->cond, &p->lock);
		job = p->head;
		if (!job)
			break;		/* stop, and nothing left to run */
		p->head = job->next;
		if (!p->head)
			p->tail = NULL;
		pthread_mutex_unlock(&p->lock);

		job->result = job->fn(job->arg);
		/* Counted before the wake-up: the caller may read its stats next. */
		__atomic_add_fetch(&rt->blocking_calls, 1, __ATOMIC_RELAXED);
		rf__wait_event_wake(&job->w, 0);
		/*
		 * The job is gone now (the fiber may have returned).  Only now
		 * may busy drop: the deadlock detector must never see zero
		 * while a wake-up is still to come.  Idle workers look at
		 * their inboxes again after reading blocking_busy, so the
		 * wake-up we just sent cannot be missed either.
		 */
		__atomic_sub_fetch(&rt->blocking_busy, 1, __ATOMIC_SEQ_CST);

		pthread_mutex_lock(&p->lock);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

/* Tell the threads to finish, join them, free @p (its queue is empty). */
static void rf__pool_free(struct rf__pool *p)
{
	unsigned int i;

	pthread_mutex_lock(&p->lock);
	p->stop = true;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
	for (i = 0; i < p->nthreads; i++)
		pthread_join(p->threads[i], NULL);
	pthread_cond_destroy(&p->cond);
	pthread_mutex_destroy(&p->lock);
	free(p);
}

/*
 * Where the pool's threads may run: on any CPU of the workers.  A thread
 * inherits the affinity of the one that creates it, a worker pinned to one
 * CPU: left so, every call would compete with that one worker for its CPU
 * while the others' stay idle.  Unpinned workers leave nothing to widen.
 * Return: true if @attr was given a CPU set.
 */
static bool rf__pool_affinity(struct rf_runtime *rt, pthread_attr_t *attr)
{
	cpu_set_t set;
	unsigned int i;

	CPU_ZERO(&set);
	for (i = 0; i < rt->nworkers; i++) {
		int cpu = rt->workers[i]->cpu;

		if (cpu < 0 || cpu >= CPU_SETSIZE)
			return false;
		CPU_SET(cpu, &set);
	}
	return rt->nworkers && pthread_attr_setaffinity_np(attr, sizeof(set), &set) == 0;
}

/*
 * Start the pool with rt->blocking_threads threads; rt->pool_lock is held.
 * A pool with fewer threads than asked for (but at least one) still works,
 * only with less parallelism.
 */
static int rf__pool_start(struct rf_runtime *rt, struct rf__pool **pp)
{
	unsigned int want = rt->blocking_threads ? rt->blocking_threads : 1;
	sigset_t block, old;
	pthread_attr_t attr;
	bool use_attr;
	struct rf__pool *p;
	int err = 0;

	p = calloc(1, sizeof(*p) + want * sizeof(p->threads[0]));
	if (!p)
		return -ENOMEM;
	p->rt = rt;
	if (pthread_mutex_init(&p->lock, NULL)) {
		free(p);
		return -ENOMEM;
	}
	if (pthread_cond_init(&p->cond, NULL)) {
		pthread_mutex_destroy(&p->lock);
		free(p);
		return -ENOMEM;
	}

	/*
	 * The runtime's signals (SIGINT/SIGTERM for the graceful shutdown,
	 * SIGURG for the hog rescue) are meant for the workers: the threads
	 * inherit a mask that blocks them, so none is ever delivered to a
	 * thread that is stuck in somebody's blocking call.
	 */
	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGURG);
	pthread_sigmask(SIG_BLOCK, &block, &old);
	use_attr = pthread_attr_init(&attr) == 0;
	if (use_attr && !rf__pool_affinity(rt, &attr)) {
		pthread_attr_destroy(&attr);
		use_attr = false;
	}
	while (p->nthreads < want) {
		err = pthread_create(&p->threads[p->nthreads], use_attr ? &attr : NULL,
				     rf__pool_thread, p);
		if (err)
			break;
		/*
		 * The thread names itself before it takes a job; naming it
		 * here too means anyone who looks (ps, gdb, /proc) once this
		 * call returns sees the name, not the worker's it inherited.
		 */
		pthread_setname_np(p->threads[p->nthreads], RF__POOL_THREAD_NAME);
		p->nthreads++;
	}
	if (use_attr)
		pthread_attr_destroy(&attr);
	pthread_sigmask(SIG_SETMASK, &old, NULL);

	if (!p->nthreads) {
		pthread_cond_destroy(&p->cond);
		pthread_mutex_destroy(&p->lock);
		free(p);
		return err == ENOMEM ? -ENOMEM : -EAGAIN;
	}
	*pp = p;
	return 0;
}

/* The run's pool, started on first use. */
static int rf__pool_get(struct rf_runtime *rt, struct rf__pool **pp)
{
	struct rf__pool *p = __atomic_load_n(&rt->pool, __ATOMIC_ACQUIRE);
	int ret = 0;

	if (rf__likely(p)) {
		*pp = p;
		return 0;
	}
	pthread_mutex_lock(&rt->pool_lock);
	p = rt->pool;
	if (!p) {
		ret = rf__pool_start(rt, &p);
		if (!ret)
			__atomic_store_n(&rt->pool, p, __ATOMIC_RELEASE);
	}
	pthread_mutex_unlock(&rt->pool_lock);
	*pp = p;
	return ret;
}

RF_EXPORT int rf_blocking(rf_fn fn, void *arg, void **result)
{
	RF__GUARD();
	struct rf__worker *wk = rf__tls_wk;
	struct rf_fiber *cur = wk ? wk->current : NULL;
	struct rf_runtime *rt;
	struct rf__pool *p;
	struct rf__job job;
	int ret;

	if (!cur)
		return -EPERM;
	if (!fn)
		return -EINVAL;
	/* a cancelled fiber starts nothing it would have to wait for */
	if (rf__load_relaxed(&cur->cancelled))
		return -ECANCELED;
	rt = wk->rt;
	ret = rf__pool_get(rt, &p);
	if (ret)
		return ret;

	job.fn = fn;
	job.arg = arg;
	job.result = NULL;
	job.next = NULL;
	rf__wait_init(&job.w, cur, RF__WAIT_EVENT);
	/* A cancel must not wake us: the thread may still be using the job. */
	job.w.nocancel = true;
	job.w.reason = RF_TRACE_BLOCKING;

	/* Busy before the job is visible: the detector must see it first. */
	__atomic_add_fetch(&rt->blocking_busy, 1, __ATOMIC_SEQ_CST);
	/*
	 * No deadline either: rf__wait_event_prepare() does not cap a
	 * nocancel wait with the group's deadline, whose timer would let us
	 * return while the thread still uses the job.  The deadline shows at
	 * the next blocking call instead.
	 */
	ret = rf__wait_event_prepare(wk, &job.w, RF_NO_DEADLINE);
	if (ret) {
		__atomic_sub_fetch(&rt->blocking_busy, 1, __ATOMIC_SEQ_CST);
		return ret;
	}

	pthread_mutex_lock(&p->lock);
	if (p->tail)
		p->tail->next = &job;
	else
		p->head = &job;
	p->tail = &job;
	pthread_cond_signal(&p->cond);
	pthread_mutex_unlock(&p->lock);

	/* wk may be stale after this: the fiber can come back elsewhere. */
	ret = rf__wait_event_finish(wk, &job.w);
	if (result)
		*result = job.result;
	return ret;
}

void rf__pool_stop(struct rf_runtime *rt)
{
	struct rf__pool *p;

	pthread_mutex_lock(&rt->pool_lock);
	p = rt->pool;
	__atomic_store_n(&rt->pool, NULL, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&rt->pool_lock);
	if (p)
		rf__pool_free(p);
}
