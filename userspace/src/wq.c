// SPDX-License-Identifier: MIT
/*
 * wq.c - struct rf_waitq: a spinlock and a FIFO of parked fibers, the one
 * mechanism under every fiber-blocking primitive (sync.c, chan.c, group.c,
 * rf_join()).
 *
 * The protocol, for a primitive built on it:
 *
 *   waiter (fiber context)              waker (any thread)
 *   rf__wq_lock(q)                      rf__wq_lock(q)
 *   condition false?                    change the state
 *     rf__wq_park(q, &wt, deadline,     rf__wq_take_first(q, &wl, res) or
 *                 reason)                 rf__wq_take_all(q, &wl, res):
 *       queues wt, unlocks q, parks       claim, take off the queue
 *       returns 0 / -ETIMEDOUT /        rf__wq_unlock_wake(q, &wl):
 *       -ECANCELED, q unlocked            unlock q, THEN make them ready
 *
 * A waiter's deadline timer or a cancellation races the waker: whoever
 * claims the wait first (an atomic exchange in rf__wait_claim()) owns the
 * hand-off.  The loser does nothing.  When the timer or the cancellation
 * wins, it takes the waiter off the queue under the lock before the fiber
 * can run, so a waker that holds the lock never touches a waiter that has
 * already gone.
 *
 * Lifetime: a woken fiber may free the object it waited on as soon as its
 * call returns (ringfiber.h promises it), and it may run at once on another
 * worker, before the waker's thread gets to its next instruction.  So the
 * rule for every waker: the object is touched only before the first fiber
 * is made ready.  A claimed waiter belongs to its claimer alone (neither its
 * timer nor a cancellation can end its wait any more: they lose the claim)
 * and cannot run until it is made ready, so the waker claims under the
 * lock, releases the lock, its last touch of the object, and only then
 * makes the claimed fibers ready (rf__wq_unlock_wake()); the list it walks
 * lives in the waiters' own rf__waiter, on their stacks, and each entry's
 * link is read before that fiber is made ready.  Making the fiber ready
 * under the lock and having the woken fiber take the lock again before it
 * returns would be correct too, but it makes a fiber on another worker spin
 * while the waker still wakes the rest and kicks their workers (system
 * calls), or while the waker's thread is preempted holding the lock.
 *
 * A call that finds its object ready without parking (a free mutex or
 * permit, a set event, a zero count) reads state that a waker wrote under
 * the lock, perhaps before that waker released it: such a call waits for
 * the lock to be free before it returns (rf__wq_settle()).
 *
 * Every waker, audited against that rule:
 *  - rf_mutex_unlock(), rf_cond_signal/broadcast(), rf_sem_release(),
 *    rf_wg_add/done(), rf_event_set(), rf_chan_send/recv/close() and their
 *    try variants, a group's last member: claim, unlock, make ready.  The
 *    mutex was safe before for a fiber that unlocks it before freeing it
 *    (its rf_mutex_unlock() takes the lock the waker still held), not for
 *    one that frees it held.  A channel was safe before (rf_chan_destroy()
 *    takes the lock), and so was a group (its creator takes the lock again
 *    after every wake-up and frees the group only under it, once no member
 *    is left); they follow the rule all the same.
 *  - rf_join(): the finishing fiber wakes its joiner under the join queue's
 *    lock (rf__wq_wake_first()) and touches itself afterwards, which is
 *    safe because the descriptor lives until both the handle's and the
 *    running stack's references are gone (struct rf_fiber.refs).
 *  - rf_blocking() and the acceptor wake one rf__wait directly: the pool
 *    thread leaves the job alone after the wake-up; an acceptor is only
 *    ever touched on its own worker's thread, where its waiter cannot run
 *    before the completion handler returns.
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
	return rf__list_first_entry(&q->waiters, struct rf__waiter, link);
}

void rf__wq_remove(struct rf_waitq *q, struct rf__waiter *wt)
{
	rf__list_del(&q->waiters, &wt->link);
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
	rf__list_add_tail(&q->waiters, &wt->link);
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

/*
 * Wake the longest waiter that can still be claimed, under the lock.  Only
 * for a queue whose object outlives the wake-up by other means (a fiber's
 * join queue); a primitive's waker uses the three below.
 */
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

/*
 * Claim the longest waiter that can still be claimed (q locked), take it off
 * the queue and add it to @wl with result @res.  The caller may still write
 * into it (a channel's value) before rf__wq_unlock_wake().  NULL if none.
 */
struct rf__waiter *rf__wq_take_first(struct rf_waitq *q, struct rf__wakelist *wl, int res)
{
	struct rf__waiter *wt;

	while ((wt = rf__wq_first(q)) != NULL) {
		rf__wq_remove(q, wt);
		if (!rf__wq_claim(wt))
			continue;	/* its timer or a cancellation has it */
		wt->w.res = res;
		rf__list_add_tail(&wl->waiters, &wt->link);
		return wt;
	}
	return NULL;
}

/* Claim every waiter (q locked). */
void rf__wq_take_all(struct rf_waitq *q, struct rf__wakelist *wl, int res)
{
	while (rf__wq_take_first(q, wl, res))
		;
}

/*
 * Release @q's lock, then make the fibers of @wl ready, oldest first.  The
 * object that holds @q may be gone as soon as the first one is ready: it is
 * not touched again, and neither is a waiter once it is ready.
 */
void rf__wq_unlock_wake(struct rf_waitq *q, struct rf__wakelist *wl)
{
	struct rf__waiter *wt, *next;

	rf__wq_unlock(q);
	/* the next one is read before this one is made ready and may be gone */
	rf__list_for_each_entry_safe(wt, next, &wl->waiters, link)
		rf__wq_deliver(wt, wt->w.res);
}
