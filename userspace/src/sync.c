// SPDX-License-Identifier: MIT
/*
 * sync.c - the fiber-blocking toolkit: mutex, condition variable, counting
 * semaphore, wait group and event, each a struct rf_waitq (wq.c) and a word
 * of state.
 *
 * The state word is written under the queue's lock, so that a waiter that
 * checks it and queues itself under that lock cannot miss the change that
 * would have woken it.  Where a try can succeed without waiting (a free
 * mutex, a free permit, a set event) it is a single atomic operation with no
 * lock: such a state means nobody is queued (a waiter queues only while the
 * state says "wait", and a waker hands its mutex or permit to a queued
 * fiber before it ever makes the state say "free"), so skipping the queue
 * cannot overtake anyone.
 *
 * Wakers hand over directly: rf_mutex_unlock() gives the mutex to the
 * longest waiter (the mutex stays locked), rf_sem_release() gives its permit
 * to the longest waiter; a waiter whose deadline or cancellation won the
 * race is skipped (rf__wq_take_first()).  That is what makes both FIFO-fair.
 *
 * A woken fiber may free the object at once (see wq.c): every waker claims
 * its waiters under the lock and makes them ready only after releasing it
 * (rf__wq_unlock_wake()), and a call that succeeds without parking waits
 * for the lock to be free before it returns (rf__wq_settle()), since the
 * waker whose state change it saw may not have released it yet.
 *
 * A cancelled fiber's waiting calls return -ECANCELED even where they would
 * not have to wait (ringfiber.h: every blocking call does); the try
 * variants never wait and still work, for a cancelled fiber's clean-up.
 *
 * Lock order: a condition variable's queue, then its mutex's queue.
 */
#include <errno.h>
#include <string.h>

#include "internal.h"

/*
 * A try of @obj's state that needs no lock (a free mutex taken, a permit
 * taken, a wait group at zero, an event set): true when the call is done.
 */
typedef bool rf__try_fn(void *obj);

/* @try @obj, whose queue is @q, without the lock: a waker may still hold that. */
static inline bool rf__try_settled(struct rf_waitq *q, rf__try_fn *try, void *obj)
{
	if (!try(obj))
		return false;
	rf__wq_settle(q);
	return true;
}

/*
 * rf__wait_until() - the waiting calls' common part: 0 once @try(@obj)
 * succeeds, tried without @q's lock, then under it, then after each wake-up
 * as the waker hands over (rf__wq_park() returns 0 for that); else a
 * negative errno (rf__may_wait(), the deadline, a cancellation).
 */
static inline int rf__wait_until(struct rf_waitq *q, rf__try_fn *try, void *obj,
				 int64_t deadline, uint8_t reason)
{
	struct rf__waiter wt;
	int ret = rf__may_wait();

	if (ret)
		return ret;
	if (rf__try_settled(q, try, obj))
		return 0;
	rf__wq_lock(q);
	if (try(obj)) {
		rf__wq_unlock(q);
		return 0;
	}
	return rf__wq_park(q, &wt, deadline, reason);
}

/* ------------------------------------------------------------------ mutex */

/* Take @mutex (a struct rf_mutex) if it is free. */
static inline bool rf__mutex_try(void *mutex)
{
	struct rf_mutex *m = mutex;
	unsigned int zero = 0;

	return __atomic_compare_exchange_n(&m->locked, &zero, 1, false, __ATOMIC_ACQUIRE,
					   __ATOMIC_RELAXED);
}

RF_EXPORT void rf_mutex_init(struct rf_mutex *m)
{
	if (m)
		memset(m, 0, sizeof(*m));
}

RF_EXPORT int rf_mutex_lock(struct rf_mutex *m, int64_t deadline)
{
	RF__GUARD();
	if (!m)
		return -EINVAL;
	/* 0 after parking: rf_mutex_unlock() handed the mutex to us, still locked */
	return rf__wait_until(&m->q, rf__mutex_try, m, deadline, RF_TRACE_LOCK);
}

RF_EXPORT int rf_mutex_trylock(struct rf_mutex *m)
{
	RF__GUARD();
	if (!m)
		return -EINVAL;
	return rf__try_settled(&m->q, rf__mutex_try, m) ? 0 : -EBUSY;
}

RF_EXPORT int rf_mutex_unlock(struct rf_mutex *m)
{
	struct rf__wakelist wl = RF__WAKELIST_INIT;

	RF__GUARD();
	if (!m)
		return -EINVAL;
	rf__wq_lock(&m->q);
	if (!rf__load_relaxed(&m->locked)) {
		rf__wq_unlock(&m->q);
		return -EPERM;
	}
	if (!rf__wq_take_first(&m->q, &wl, 0))
		rf__store(&m->locked, 0);
	rf__wq_unlock_wake(&m->q, &wl);
	return 0;
}

/*
 * Lock @m whatever happens, for rf_cond_wait(): a cancelled fiber's
 * rf_mutex_lock() returns -ECANCELED at once, and one past its group's
 * deadline -ETIMEDOUT, yet the mutex must be held when rf_cond_wait()
 * returns.  Parks with a wait that neither ends; should the core ever refuse
 * to park, it polls with rf_yield() instead, which lets the holder run.
 */
static void rf__mutex_lock_nocancel(struct rf_mutex *m)
{
	struct rf__waiter wt;

	for (;;) {
		if (rf__try_settled(&m->q, rf__mutex_try, m))
			return;
		rf__wq_lock(&m->q);
		if (rf__mutex_try(m)) {
			rf__wq_unlock(&m->q);
			return;
		}
		if (rf__wq_park_nocancel(&m->q, &wt, RF_TRACE_LOCK) == 0)
			return;		/* handed over */
		rf_yield();
	}
}

/* ----------------------------------------------------- condition variable */

RF_EXPORT void rf_cond_init(struct rf_cond *c)
{
	if (c)
		memset(c, 0, sizeof(*c));
}

RF_EXPORT int rf_cond_wait(struct rf_cond *c, struct rf_mutex *m, int64_t deadline)
{
	struct rf__waiter wt;
	struct rf_fiber *cur;
	int ret;

	RF__GUARD();
	if (!c || !m)
		return -EINVAL;
	cur = rf__cur();
	if (!cur || !rf__load_relaxed(&m->locked))
		return -EPERM;
	/* Would only unlock and lock again: keep the mutex, as promised. */
	if (rf__load_relaxed(&cur->cancelled))
		return -ECANCELED;
	/*
	 * Queue on @c before the mutex is free: a signaller must take the
	 * mutex to change the predicate, then @c's lock to signal, and by then
	 * we are queued.
	 */
	rf__wq_lock(&c->q);
	ret = rf_mutex_unlock(m);
	if (ret) {
		rf__wq_unlock(&c->q);
		return ret;
	}
	ret = rf__wq_park(&c->q, &wt, deadline, RF_TRACE_LOCK);
	rf__mutex_lock_nocancel(m);
	return ret;
}

/* Wake the longest waiter of @c, or with @all every waiter. */
static int rf__cond_wake(struct rf_cond *c, bool all)
{
	struct rf__wakelist wl = RF__WAKELIST_INIT;

	if (!c)
		return -EINVAL;
	rf__wq_lock(&c->q);
	if (all)
		rf__wq_take_all(&c->q, &wl, 0);
	else
		rf__wq_take_first(&c->q, &wl, 0);
	rf__wq_unlock_wake(&c->q, &wl);
	return 0;
}

RF_EXPORT int rf_cond_signal(struct rf_cond *c)
{
	RF__GUARD();
	return rf__cond_wake(c, false);
}

RF_EXPORT int rf_cond_broadcast(struct rf_cond *c)
{
	RF__GUARD();
	return rf__cond_wake(c, true);
}

/* -------------------------------------------------------------- semaphore */

/* Take a permit of @sem (a struct rf_sem) if it has one. */
static inline bool rf__sem_try(void *sem)
{
	struct rf_sem *s = sem;
	int64_t c = rf__load_relaxed(&s->count);

	while (c > 0)
		if (__atomic_compare_exchange_n(&s->count, &c, c - 1, true, __ATOMIC_ACQUIRE,
						__ATOMIC_RELAXED))
			return true;
	return false;
}

RF_EXPORT int rf_sem_init(struct rf_sem *s, int64_t count)
{
	if (!s || count < 0)
		return -EINVAL;
	memset(s, 0, sizeof(*s));
	s->count = count;
	return 0;
}

RF_EXPORT int rf_sem_acquire(struct rf_sem *s, int64_t deadline)
{
	RF__GUARD();
	if (!s)
		return -EINVAL;
	/* 0 after parking: rf_sem_release() handed its permit to us */
	return rf__wait_until(&s->q, rf__sem_try, s, deadline, RF_TRACE_LOCK);
}

RF_EXPORT int rf_sem_tryacquire(struct rf_sem *s)
{
	RF__GUARD();
	if (!s)
		return -EINVAL;
	return rf__try_settled(&s->q, rf__sem_try, s) ? 0 : -EAGAIN;
}

RF_EXPORT int rf_sem_release(struct rf_sem *s)
{
	struct rf__wakelist wl = RF__WAKELIST_INIT;
	int ret = 0;

	RF__GUARD();
	if (!s)
		return -EINVAL;
	rf__wq_lock(&s->q);
	if (!rf__wq_take_first(&s->q, &wl, 0)) {
		/* Only releases, all under the lock, make the count grow. */
		if (rf__load_relaxed(&s->count) == INT64_MAX)
			ret = -EOVERFLOW;
		else
			__atomic_fetch_add(&s->count, 1, __ATOMIC_RELEASE);
	}
	rf__wq_unlock_wake(&s->q, &wl);
	return ret;
}

/* ------------------------------------------------------------- wait group */

RF_EXPORT void rf_wg_init(struct rf_waitgroup *wg)
{
	if (wg)
		memset(wg, 0, sizeof(*wg));
}

RF_EXPORT int rf_wg_add(struct rf_waitgroup *wg, int64_t delta)
{
	struct rf__wakelist wl = RF__WAKELIST_INIT;
	int64_t n;

	RF__GUARD();
	if (!wg)
		return -EINVAL;
	rf__wq_lock(&wg->q);
	if (__builtin_add_overflow(rf__load_relaxed(&wg->count), delta, &n) || n < 0) {
		rf__wq_unlock(&wg->q);
		return -EINVAL;
	}
	rf__store(&wg->count, n);
	if (n == 0)
		rf__wq_take_all(&wg->q, &wl, 0);
	rf__wq_unlock_wake(&wg->q, &wl);
	return 0;
}

RF_EXPORT int rf_wg_done(struct rf_waitgroup *wg)
{
	return rf_wg_add(wg, -1);
}

/* Is @waitgroup (a struct rf_waitgroup) at zero? */
static inline bool rf__wg_zero(void *waitgroup)
{
	struct rf_waitgroup *wg = waitgroup;

	return rf__load(&wg->count) == 0;
}

RF_EXPORT int rf_wg_wait(struct rf_waitgroup *wg, int64_t deadline)
{
	RF__GUARD();
	if (!wg)
		return -EINVAL;
	return rf__wait_until(&wg->q, rf__wg_zero, wg, deadline, RF_TRACE_EVENT);
}

/* ------------------------------------------------------------------ event */

RF_EXPORT void rf_event_init(struct rf_event *e)
{
	if (e)
		memset(e, 0, sizeof(*e));
}

RF_EXPORT int rf_event_set(struct rf_event *e)
{
	struct rf__wakelist wl = RF__WAKELIST_INIT;

	RF__GUARD();
	if (!e)
		return -EINVAL;
	rf__wq_lock(&e->q);
	rf__store(&e->set, 1);
	rf__wq_take_all(&e->q, &wl, 0);
	rf__wq_unlock_wake(&e->q, &wl);
	return 0;
}

RF_EXPORT int rf_event_clear(struct rf_event *e)
{
	RF__GUARD();
	if (!e)
		return -EINVAL;
	rf__store(&e->set, 0);
	return 0;
}

/* Is @event (a struct rf_event) set? */
static inline bool rf__event_is_set(void *event)
{
	struct rf_event *e = event;

	return rf__load(&e->set);
}

RF_EXPORT int rf_event_is_set(struct rf_event *e)
{
	if (!e)
		return -EINVAL;
	/* settled: a poller may free it once it sees it set */
	return rf__try_settled(&e->q, rf__event_is_set, e);
}

RF_EXPORT int rf_event_wait(struct rf_event *e, int64_t deadline)
{
	RF__GUARD();
	if (!e)
		return -EINVAL;
	return rf__wait_until(&e->q, rf__event_is_set, e, deadline, RF_TRACE_EVENT);
}
