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
 * Tracing sessions.  A fiber carries the stamps of its last traced park and
 * ready; once the tracers leave, it may run and park again unstamped, so
 * the stamps of an earlier session are stale in the next.  The runtime
 * keeps when the current session began (the first stamp of it, on any
 * thread), and a stamp is used only if it is not older.  A worker notices
 * the end of a session at its next loop pass (rf__trace_check_end()).
 */

/* The current session's beginning: @now if none had begun. */
int64_t rf__trace_session(struct rf_runtime *rt, int64_t now)
{
	int64_t since = __atomic_load_n(&rt->tr_since_ns, __ATOMIC_RELAXED), zero = 0;

	if (rf__likely(since))
		return since;
	if (__atomic_compare_exchange_n(&rt->tr_since_ns, &zero, now, false, __ATOMIC_RELAXED,
					__ATOMIC_RELAXED))
		return now;
	return zero;	/* another thread began it */
}

/* The tracers left: the next stamp begins a new session. */
void rf__trace_end(struct rf__worker *wk)
{
	int64_t since = wk->tr_since_ns;

	/* unless another worker already ended it, or a new one has begun */
	__atomic_compare_exchange_n(&wk->rt->tr_since_ns, &since, 0, false, __ATOMIC_RELAXED,
				    __ATOMIC_RELAXED);
	wk->tr_since_ns = 0;
}

/*
 * A traced switch on @wk at @now: the session's beginning.  A worker new
 * to the session drops what an earlier tracer left in its buffer and
 * numbers its records from 1 again.
 */
static int64_t rf__trace_begin(struct rf__worker *wk, int64_t now)
{
	int64_t since = rf__trace_session(wk->rt, now);

	if (rf__unlikely(wk->tr_since_ns != since)) {
		wk->tr_since_ns = since;
		wk->tr_nrec = 0;
		wk->tr_seq = 0;		/* its records count from 1 again */
	}
	return since;
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

	rf__trace_begin(wk, now);
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
 * @f runs again on @wk, or for the @first time: report how long it waited
 * to be run, how long it was parked before that, why, and how long the
 * switch took.  Each stamp is used once, and only if it was taken since
 * @wk began timing switches: what was not seen is reported unknown
 * (RF_TRACE_UNKNOWN, RF_TRACE_REASON_UNKNOWN), never as a stale figure or
 * as a first run with nothing parked.
 */
void rf__trace_switch_in(struct rf__worker *wk, struct rf_fiber *f, bool first)
{
	int64_t now, since, chosen, ready, park;
	uint32_t delay, sw;
	uint64_t parked;
	uint8_t reason;

	now = rf__trace_now();
	since = rf__trace_begin(wk, now);
	/* a stamp older than the session was taken for another tracer */
	chosen = wk->tr_chosen_ns >= since ? wk->tr_chosen_ns : 0;
	ready = f->tr_ready_ns >= since ? f->tr_ready_ns : 0;
	park = f->tr_park_ns >= since ? f->tr_park_ns : 0;
	delay = rf__trace_span32(ready, chosen);
	sw = rf__trace_span32(chosen, now);
	if (first) {
		reason = RF_TRACE_NEW;
		parked = 0;
	} else if (park && ready >= park) {
		reason = f->tr_reason;
		parked = (uint64_t)(ready - park);
		if (parked == RF_TRACE_UNKNOWN)
			parked--;
	} else {
		/*
		 * It stopped before we began (or was made ready by a thread
		 * that did not see the tracer yet): we know neither why nor
		 * for how long.  The reason and the time are unknown together.
		 */
		reason = RF_TRACE_REASON_UNKNOWN;
		parked = RF_TRACE_UNKNOWN;
	}
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
		/* 1, 2, ...: a tracer sees a gap as records it lost; 0 is "none" */
		if (++wk->tr_seq == 0)
			wk->tr_seq = 1;
		r->seq = wk->tr_seq;
		if (wk->tr_nrec == RF_TRACE_BATCH)
			rf__trace_flush(wk);
	} else {
		wk->tr_nrec = 0;	/* the tracer left: drop what it did not take */
	}
}
