// SPDX-License-Identifier: MIT
/*
 * trace.c - the probes' semaphores and the timed switch path (see trace.h).
 *
 * Only switches are timed here: everything else a tracer learns from a
 * probe at the place it happens (sched.c, loop.c, steal.c, watchdog.c).
 * The two hooks run around rf__switch() only while a tracer is attached to
 * "run", "park" or "batch": rf__trace_switch_out() on the way out of a
 * context, rf__trace_switch_in() once a fiber runs again.
 */
#include "internal.h"

/*
 * The semaphores: sys/sdt.h records each one's address in its probe's note,
 * and the kernel counts attached uprobes there.  A section of their own
 * keeps them together, on one cache line.
 *
 * The probes of the switch path (ready, run, park, batch) share one
 * counter: a switch then asks one question, "is anything timing
 * switches?", with one load, where four separate semaphores cost a yield
 * about 1.3 ns (20%) on the development VM.  Attaching to one of them makes
 * the other sites compute their arguments and pass their no-op
 * instructions; only the attached one traps.
 */
#define RF__DEFINE_SEMAPHORE(name) \
	volatile unsigned short ringfiber_##name##_semaphore __attribute__((section(".probes")))
#define RF__SHARE_SEMAPHORE(name, with) \
	extern volatile unsigned short ringfiber_##name##_semaphore \
		__attribute__((alias("ringfiber_" #with "_semaphore")))

RF__DEFINE_SEMAPHORE(run);
RF__SHARE_SEMAPHORE(ready, run);
RF__SHARE_SEMAPHORE(park, run);
RF__SHARE_SEMAPHORE(batch, run);
RF__DEFINE_SEMAPHORE(spawn);
RF__DEFINE_SEMAPHORE(exit);
RF__DEFINE_SEMAPHORE(kick);
RF__DEFINE_SEMAPHORE(idle);
RF__DEFINE_SEMAPHORE(resume);
RF__DEFINE_SEMAPHORE(steal);
RF__DEFINE_SEMAPHORE(hog);
RF__DEFINE_SEMAPHORE(preempt);

/* Why @f, the fiber @wk is switching away from, stopped. */
static uint8_t rf__trace_reason(const struct rf__worker *wk, const struct rf_fiber *f)
{
	if (f->wait)
		return f->wait->reason;
	if (f->preempted)
		return RF_TRACE_PREEMPT;
	return wk->handoff == f ? RF_TRACE_MIGRATE : RF_TRACE_YIELD;
}

/*
 * @wk is about to switch away from @from (NULL: its loop) to the fiber it
 * chose (or to its loop).  A fiber that did not park (a yield, a
 * migration) is ready from now on; a parked one is made ready by its
 * waker, which stamps tr_ready_ns (rf__trace_ready()).
 */
void rf__trace_switch_out(struct rf__worker *wk, struct rf_fiber *from)
{
	int64_t now = rf__trace_now();

	wk->tr_chosen_ns = now;
	if (!from || rf__state(from) == RF__DONE)
		return;
	from->tr_park_ns = now;
	from->tr_reason = rf__trace_reason(wk, from);
	if (!from->wait)
		from->tr_ready_ns = now;
	RF__PROBE(park, 3, from, wk->id, from->tr_reason);
}

/* ns from @a to @b for a record's 32-bit fields, or RF_TRACE_UNKNOWN. */
static uint32_t rf__trace_span32(int64_t a, int64_t b)
{
	if (!a || !b || b < a)
		return RF_TRACE_UNKNOWN;
	if (b - a >= RF_TRACE_UNKNOWN)
		return RF_TRACE_UNKNOWN - 1;
	return (uint32_t)(b - a);
}

void rf__trace_flush(struct rf__worker *wk)
{
	unsigned int n = wk->tr_nrec;

	if (!n)
		return;
	wk->tr_nrec = 0;
	RF__PROBE(batch, 4, wk->id, wk->tr_buf, n, sizeof(struct rf_trace_rec));
}

/*
 * @f runs again on @wk (or for the first time): report how long it waited
 * to be run, how long it was parked before that, and how long the switch
 * took.  Each stamp is used once: what is not stamped again next time is
 * reported unknown rather than stale.
 */
void rf__trace_switch_in(struct rf__worker *wk, struct rf_fiber *f)
{
	int64_t now = rf__trace_now();
	int64_t chosen = wk->tr_chosen_ns, ready = f->tr_ready_ns, park = f->tr_park_ns;
	uint32_t delay = rf__trace_span32(ready, chosen);
	uint32_t sw = rf__trace_span32(chosen, now);
	uint64_t parked = 0;
	uint8_t reason = f->tr_reason;

	if (park && ready > park)
		parked = (uint64_t)(ready - park);
	wk->tr_chosen_ns = 0;
	f->tr_ready_ns = 0;
	f->tr_park_ns = 0;
	f->tr_reason = RF_TRACE_YIELD;

	RF__PROBE(run, 6, f, wk->id, delay, parked, reason, sw);
	if (RF__PROBE_ON(batch)) {
		struct rf_trace_rec *r = &wk->tr_buf[wk->tr_nrec++];

		r->ts_ns = (uint64_t)now;
		r->fiber = (uint64_t)(uintptr_t)f;
		r->parked_ns = parked;
		r->delay_ns = delay;
		r->switch_ns = sw;
		r->worker = (uint16_t)wk->id;
		r->type = RF_TRACE_REC_RUN;
		r->reason = reason;
		r->pad = 0;
		if (wk->tr_nrec == RF_TRACE_BATCH)
			rf__trace_flush(wk);
	} else {
		wk->tr_nrec = 0;	/* the tracer left: drop what it did not take */
	}
}
