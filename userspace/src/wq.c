// SPDX-License-Identifier: MIT
/*
 * wq.c - struct rf_waitq: a spinlock and a FIFO of parked fibers, the one
 * mechanism under every fiber-blocking primitive (sync.c, chan.c).
 *
 * The protocol, for a primitive built on it:
 *
 *   waiter (fiber context)              waker (any thread)
 *   rf__wq_lock(q)                      rf__wq_lock(q)
 *   condition false?                    change the state
 *     rf__wq_park(q, &wt, deadline,     wt = rf__wq_first(q); rf__wq_remove(q, wt)
 *                 reason)
 *       queues wt, unlocks q, parks     if (!rf__wq_wake(wt, 0)) try the next one
 *       returns 0 / -ETIMEDOUT /        rf__wq_unlock(q)
 *       -ECANCELED, q unlocked
 *
 * A waiter's deadline timer or a cancellation races the waker: whoever
 * claims the wait first (an atomic exchange in rf__wait_claim()) owns the
 * hand-off.  The loser does nothing.  When the timer or the cancellation
 * wins, it takes the waiter off the queue under the lock before the fiber
 * can run, so a waker that holds the lock never touches a waiter that has
 * already gone.
 */
#include <errno.h>
#include <string.h>

#include "internal.h"

void rf__wq_lock(struct rf_waitq *q)
{
	rf__spin_lock(&q->lock);
}

void rf__wq_unlock(struct rf_waitq *q)
{
	rf__spin_unlock(&q->lock);
}

struct rf__waiter *rf__wq_first(struct rf_waitq *q)
{
	return q->head;
}

void rf__wq_remove(struct rf_waitq *q, struct rf__waiter *wt)
{
	if (wt->prev)
		wt->prev->next = wt->next;
	else
		q->head = wt->next;
	if (wt->next)
		wt->next->prev = wt->prev;
	else
		q->tail = wt->prev;
	wt->next = wt->prev = NULL;
	wt->q = NULL;
	q->len--;
}

/* The timer or a cancellation won: leave the queue if still on it. */
static void rf__wq_unlink(struct rf__wait *w)
{
	struct rf__waiter *wt = rf__container_of(w, struct rf__waiter, w);
	struct rf_waitq *q = w->source;

	rf__wq_lock(q);
	if (wt->q == q)
		rf__wq_remove(q, wt);
	rf__wq_unlock(q);
}

static int rf__wq_park_wait(struct rf_waitq *q, struct rf__waiter *wt, int64_t deadline,
			    bool nocancel, uint8_t reason)
{
	struct rf__worker *wk = rf__tls_wk;
	struct rf_fiber *cur = wk ? wk->current : NULL;
	int ret;

	if (!cur) {
		rf__wq_unlock(q);
		return -EPERM;
	}
	if (!nocancel && rf__load_relaxed(&cur->cancelled)) {
		rf__wq_unlock(q);
		return -ECANCELED;
	}
	rf__wait_init(&wt->w, cur, RF__WAIT_EVENT);
	/* nocancel: neither rf_cancel() nor the group's deadline ends it */
	wt->w.nocancel = nocancel;
	wt->w.reason = reason;
	wt->w.unlink = rf__wq_unlink;
	wt->w.source = q;
	ret = rf__wait_event_prepare(wk, &wt->w, deadline);
	if (ret) {
		rf__wq_unlock(q);
		return ret;
	}
	wt->q = q;
	wt->next = NULL;
	wt->prev = q->tail;
	if (q->tail)
		((struct rf__waiter *)q->tail)->next = wt;
	else
		q->head = wt;
	q->tail = wt;
	q->len++;
	rf__wq_unlock(q);
	/* wk may be stale after this: the fiber can come back elsewhere */
	return rf__wait_event_finish(wk, &wt->w);
}

int rf__wq_park(struct rf_waitq *q, struct rf__waiter *wt, int64_t deadline, uint8_t reason)
{
	return rf__wq_park_wait(q, wt, deadline, false, reason);
}

/*
 * For the waits that must end in a known state even in a cancelled fiber
 * (rf_cond_wait() getting its mutex back, rf_group_wait() waiting for its
 * fibers): no deadline, and rf_cancel() leaves it alone.
 */
int rf__wq_park_nocancel(struct rf_waitq *q, struct rf__waiter *wt, uint8_t reason)
{
	return rf__wq_park_wait(q, wt, RF_NO_DEADLINE, true, reason);
}

bool rf__wq_claim(struct rf__waiter *wt)
{
	return rf__wait_claim(&wt->w);
}

void rf__wq_deliver(struct rf__waiter *wt, int res)
{
	rf__wait_deliver(&wt->w, res);
}

bool rf__wq_wake(struct rf__waiter *wt, int res)
{
	if (!rf__wq_claim(wt))
		return false;
	rf__wq_deliver(wt, res);
	return true;
}

struct rf__waiter *rf__wq_wake_first(struct rf_waitq *q, int res)
{
	struct rf__waiter *wt;

	while ((wt = rf__wq_first(q)) != NULL) {
		rf__wq_remove(q, wt);
		if (rf__wq_wake(wt, res))
			return wt;
	}
	return NULL;
}
