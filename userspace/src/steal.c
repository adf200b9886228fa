// SPDX-License-Identifier: MIT
/*
 * steal.c - work stealing: busy workers publish ready fibers, idle workers
 * take them.
 *
 * A worker's run queue is its own: no lock, no atomic on the path from one
 * fiber to the next.  Beside it, each worker has a small locked queue of
 * fibers any worker may take (its stealable queue).  A worker moves the
 * back half of its run queue there from its loop when another worker is
 * idle (rt->nidle), and all of it when the hog rescue runs (watchdog.c);
 * an idle worker takes half of the first non-empty stealable queue it
 * finds, its own first.  An offer still there at the worker's next pass
 * while another worker counts idle goes back to the front of its run queue
 * (rf__reclaim()): a worker counted idle may be one the host keeps off its
 * CPU, and the fibers it does not take must not wait while their worker
 * runs the others.  Pinned fibers,
 * fibers a request on their worker's ring still owes a completion
 * (bound), and preempted fibers not yet resumed (preempt.c) are never
 * published.
 */
#include "internal.h"

static bool rf__movable(const struct rf_fiber *f)
{
	return !f->pinned && !f->bound && !f->preempted;
}

/*
 * Move fibers from @wk's run queue to its stealable queue: the back half,
 * or every movable one if @all.  Runs on @wk's thread.
 */
void rf__publish(struct rf__worker *wk, bool all)
{
	struct rf__runq keep = { 0 }, give = { 0 };
	uint64_t n = wk->runq.len, skip = all ? 0 : n - n / 2;
	struct rf_fiber *f;

	if (!n || (!all && n < 2))
		return;
	while ((f = rf__runq_pop(&wk->runq)) != NULL) {
		if (skip) {
			skip--;
			rf__runq_push(&keep, f);
		} else if (rf__movable(f)) {
			rf__runq_push(&give, f);
		} else {
			rf__runq_push(&keep, f);
		}
	}
	wk->runq = keep;
	if (!give.len)
		return;
	rf__spin_lock(&wk->steal_lock);
	if (wk->steal_tail)
		wk->steal_tail->next = give.head;
	else
		wk->steal_head = give.head;
	wk->steal_tail = give.tail;
	/*
	 * The parking protocol (rf__kick()): a sequentially consistent write
	 * here and load of parked in rf__kick_idle(), as an inbox push does
	 * with its compare-and-swap.  A plain store and the unlock's release
	 * would let the load of parked pass them (x86 does): an idle worker
	 * could read steal_len 0 after storing parked while we read parked 0;
	 * it would sleep, unkicked, with these fibers here until we run dry.
	 */
	__atomic_add_fetch(&wk->steal_len, (uint32_t)give.len, __ATOMIC_SEQ_CST);
	rf__spin_unlock(&wk->steal_lock);
	rf__kick_idle(wk);
}

/*
 * Take up to half (at least one) of @from's stealable fibers for @wk, all
 * of them if @from is @wk, onto the back of @into.
 */
static uint64_t rf__take(struct rf__worker *wk, struct rf__worker *from, struct rf__runq *into)
{
	uint64_t n, got = 0;

	if (!rf__load_relaxed(&from->steal_len))
		return 0;
	rf__spin_lock(&from->steal_lock);
	n = from->steal_len;
	if (from != wk)
		n = n - n / 2;
	while (got < n) {
		struct rf_fiber *f = from->steal_head;

		from->steal_head = f->next;
		rf__store(&f->wk, wk);
		rf__runq_push(into, f);
		got++;
	}
	if (!from->steal_head)
		from->steal_tail = NULL;
	rf__store_relaxed(&from->steal_len, from->steal_len - (uint32_t)got);
	rf__spin_unlock(&from->steal_lock);
	/*
	 * A canceller that still read @from as their worker only marked
	 * them: order our stores of f->wk before their checks of the mark
	 * (see rf__cancel_fiber()).  ThreadSanitizer has no model of fences
	 * (and says so): it checks the atomics themselves.
	 */
#ifndef __SANITIZE_THREAD__
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
#endif
	return got;
}

/*
 * @wk's own offer, published at an earlier pass of its loop, is still there:
 * nobody took it.  The other workers that count as idle may not be running
 * at all (the host keeps a thread off its CPU for milliseconds), and @wk
 * would publish from its run queue again and again while these fibers wait.
 * Put them back at the front of the run queue: they were ready before any
 * fiber there was made ready again.  Runs on @wk's thread.
 */
void rf__reclaim(struct rf__worker *wk)
{
	struct rf__runq back = { 0 };

	if (!rf__take(wk, wk, &back))
		return;
	back.tail->next = wk->runq.head;
	if (!wk->runq.tail)
		wk->runq.tail = back.tail;
	wk->runq.head = back.head;
	wk->runq.len += back.len;
}

/* An idle worker looks for work: its own published fibers, then others'. */
bool rf__steal(struct rf__worker *wk)
{
	struct rf_runtime *rt = wk->rt;
	unsigned int n = rt->nworkers;
	uint64_t got;

	if (rf__take(wk, wk, &wk->runq))
		return true;
	for (unsigned int i = 0; i < n; i++) {
		struct rf__worker *v = rt->workers[(wk->steal_from + i) % n];

		if (v == wk)
			continue;
		got = rf__take(wk, v, &wk->runq);
		if (got) {
			wk->steal_from = (wk->steal_from + i) % n;
			rf__count(&wk->steals, got);
			RF__PROBE(steal, 3, wk->id, v->id, got);
			return true;
		}
	}
	return false;
}

bool rf__stealable_anywhere(struct rf_runtime *rt)
{
	/* seq_cst: the sleeper's side of the protocol (see rf__publish()) */
	for (unsigned int i = 0; i < rt->nworkers; i++)
		if (__atomic_load_n(&rt->workers[i]->steal_len, __ATOMIC_SEQ_CST))
			return true;
	return false;
}

/* Work was published: wake one sleeping worker, unless one is awake and idle. */
void rf__kick_idle(struct rf__worker *from)
{
	struct rf_runtime *rt = from->rt;

	for (unsigned int i = 0; i < rt->nworkers; i++) {
		struct rf__worker *v = rt->workers[i];

		if (v != from && __atomic_load_n(&v->parked, __ATOMIC_SEQ_CST)) {
			rf__kick(from, v);
			return;
		}
	}
}
