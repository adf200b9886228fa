// SPDX-License-Identifier: MIT
/*
 * loop.c - the worker loop, and what a worker does when it has nothing to
 * run: spin for a while, then park and sleep in the kernel.
 */
#include "internal.h"

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
	if (wk->rxpool && rf__rxpool_has_work(wk))
		return true;	/* receivers' fibers to start, buffers released elsewhere (recv.c) */
	return rt->nworkers > 1 && rf__stealable_anywhere(rt);
}

/* Sleep until kicked (or a completion arrives). */
static void rf__sleep(struct rf__worker *wk)
{
	/* RF_RT_BLOCK_RESCUE: this block is no news (rescue.c) */
	rf__rescue_arm(wk, 0);
	if (wk->has_ring)
		rf__flush(wk, true);
	else
		rf__futex_sleep(wk);	/* no ring: the futex back-end's word is all there is */
	rf__rescue_arm(wk, 1);
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
	if (wk->slice_armed)
		rf__preempt_stale_tick(wk);	/* no hog runs: the slice timer stops */
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
		rf__unpark(wk);
		goto out;
	}
	quiet = !wk->inflight;
	if (quiet && rf__quiet_enter(wk)) {
		rf__unpark(wk);
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
	rf__unpark(wk);
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
void rf__loop(struct rf__worker *wk)
{
	struct rf_runtime *rt = wk->rt;

	while (!rf__load(&rt->done)) {
		if (rf__unlikely(rf__stop_pending(rt)))
			rf__stop_fibers(wk);
		/* a shutdown starts parked receivers' fibers, cancelled (recv.c) */
		if (rf__unlikely(wk->rxpool && rf__receivers_parked(wk)) &&
		    (rf__load(&rt->run_state) & RF__RUN_STOP))
			rf__receivers_unpark_all(wk);
		rf__inbox_drain(wk);
		rf__trace_check_end(wk);
		if (wk->has_ring) {
			/* submit what fibers prepared; run deferred completions */
			if (wk->unsubmitted || rf__kernel_has_completions(wk))
				rf__flush(wk, false);
			rf__reap(wk);
		}
		/*
		 * A preempted hog runs again once a pass finds nothing else
		 * ready (what became ready while the others ran, a request
		 * that arrived meanwhile, is served in the same preemption,
		 * not after the hog's next slice), or once it has waited a
		 * slice: behind what the reap made ready.
		 */
		if (wk->preempted.head && (!wk->runq.head ||
		    rf__trace_now() - wk->preempted_at_ns >= rt->slice_ns))
			rf__preempt_requeue(wk);
		/*
		 * A fiber the block rescue suspended in its system call
		 * (rescue.c) goes back into it when nothing else is ready.
		 */
		if (rf__unlikely(wk->rescued.head) && !wk->runq.head) {
			wk->runq = wk->rescued;
			wk->rescued = (struct rf__runq){ 0 };
		}
		if (!wk->runq.head) {
			if (rt->nworkers > 1 && rf__steal(wk))
				continue;
			rf__idle(wk);
			continue;
		}
		/*
		 * Someone is idle: offer it half of our queue.  If our last
		 * offer is still there, whoever counts as idle did not run to
		 * take it (an idle worker takes before it polls or sleeps):
		 * run the offer first, and offer nothing this pass.
		 * Publishing again at every pass would leave one fiber here
		 * and the rest waiting in the offer (the run queue need not
		 * run dry: fibers that yield, or whose requests complete
		 * during the enter, are ready again at the next pass).  With
		 * nobody idle, what is left of an offer comes back too.
		 */
		if (rf__load_relaxed(&rt->nidle)) {
			if (rf__load_relaxed(&wk->steal_len))
				rf__reclaim(wk);
			else if (wk->runq.len > 1)
				rf__publish(wk, false);
		} else if (rf__load_relaxed(&wk->steal_len)) {
			/*
			 * Nobody idle to take what we offered (or what the hog
			 * rescue published).  It stays for the first worker to
			 * run dry, but not for ever: fibers that only yield, or
			 * a preempted hog's turns, may keep every worker from
			 * running dry, and the offer would starve.  After
			 * RF__OFFER_PASSES passes of ours, it comes back.
			 */
			if (++wk->offer_passes >= RF__OFFER_PASSES) {
				wk->offer_passes = 0;
				rf__reclaim(wk);
			}
		}
		if (!rf__load_relaxed(&wk->steal_len))
			wk->offer_passes = 0;
		wk->budget = RF__SWITCH_BUDGET;
		rf__loop_switch_to(wk, rf__runq_pop(&wk->runq));
	}
	rf__trace_flush(wk);
}
