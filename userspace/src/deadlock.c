// SPDX-License-Identifier: MIT
/*
 * deadlock.c - a run in which no fiber can ever be woken again: every
 * worker about to sleep with nothing in flight and nothing queued.
 */
#include <pthread.h>

#include "internal.h"

/*
 * About to sleep with no request in flight.  If every worker is in the same
 * state, nothing queued anywhere and no rf_blocking() call running, no
 * fiber can ever be woken: cancel them all once; the second time, end the
 * run.  Returns true if it did either (the caller must not sleep).
 */
bool rf__quiet_enter(struct rf__worker *wk)
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

void rf__quiet_leave(struct rf__worker *wk)
{
	pthread_mutex_lock(&wk->rt->quiet_lock);
	wk->rt->nquiet--;
	pthread_mutex_unlock(&wk->rt->quiet_lock);
}
