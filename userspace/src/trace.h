/* SPDX-License-Identifier: MIT */
/*
 * trace.h - the runtime's USDT probes and its batched trace records.
 *
 * The probes and the record are described for tracers in
 * userspace/include/ringfiber-trace.h; this file is how the library fires
 * them.  Every probe has a semaphore, a counter the kernel raises while a
 * uprobe is attached to it (USDT's ref_ctr_offset), so the untraced cost of
 * a probe site is one load and a branch that is not taken.
 *
 * Two ways to follow the scheduler:
 *  - per event: "run", "park", "ready"... each a uprobe trap (about 0.6 us
 *    here), fine for a few thousand events a second;
 *  - batched: with "batch" attached, the runtime timestamps switches itself
 *    (CLOCK_MONOTONIC from the vDSO, the clock bpf_ktime_get_ns() reads),
 *    writes one struct rf_trace_rec per fiber resumption into a per-worker
 *    buffer, and fires "batch" once per RF_TRACE_BATCH records and before
 *    its worker sleeps: one trap per 256 switches.
 *
 * Timestamps: a fiber's ready time is taken where it is made ready (any
 * thread), its park time and the "chosen" time where its worker switches
 * away from it or to it, its run time once it runs.  Each is written by one
 * thread before the hand-off that publishes the fiber (inbox push, run
 * queue, steal lock), so the reader sees it without further ordering.
 */
#ifndef RF_TRACE_H
#define RF_TRACE_H

#define _SDT_HAS_SEMAPHORES 1
#include <sys/sdt.h>
#include <time.h>

#include "ringfiber-trace.h"

/*
 * Declares a probe's semaphore; trace.c defines them all.  Hidden: read
 * PC-relative, not through the GOT (two dependent loads in the .so).
 */
#define RF__PROBE_SEMAPHORE(name) \
	extern volatile unsigned short ringfiber_##name##_semaphore \
		__attribute__((visibility("hidden")))

RF__PROBE_SEMAPHORE(spawn);
RF__PROBE_SEMAPHORE(ready);
RF__PROBE_SEMAPHORE(run);
RF__PROBE_SEMAPHORE(park);
RF__PROBE_SEMAPHORE(exit);
RF__PROBE_SEMAPHORE(kick);
RF__PROBE_SEMAPHORE(idle);
RF__PROBE_SEMAPHORE(resume);
RF__PROBE_SEMAPHORE(steal);
RF__PROBE_SEMAPHORE(hog);
RF__PROBE_SEMAPHORE(preempt);
RF__PROBE_SEMAPHORE(batch);

/* Is a tracer attached to probe @name? */
#define RF__PROBE_ON(name) (ringfiber_##name##_semaphore != 0)

/* Fire probe @name if a tracer is attached: RF__PROBE(run, 6, a, b, ...). */
#define RF__PROBE(name, n, ...)						\
	do {								\
		if (rf__unlikely(RF__PROBE_ON(name)))			\
			STAP_PROBE##n(ringfiber, name, __VA_ARGS__);	\
	} while (0)

/* CLOCK_MONOTONIC in ns, without the PLT trip rf_now() costs in the .so. */
static inline int64_t rf__trace_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/*
 * Must switches be timed: is any probe that reports them attached?  One
 * load: ready, run, park and batch share their semaphore (trace.c).
 */
static inline bool rf__trace_switches(void)
{
	return rf__unlikely(RF__PROBE_ON(run));
}

int64_t rf__trace_session(struct rf_runtime *rt, int64_t now);

/* The fiber @f is made ready on @home by the calling thread's worker @self. */
static inline void rf__trace_ready(struct rf_fiber *f, struct rf__worker *home,
				   struct rf__worker *self)
{
	if (rf__trace_switches()) {
		f->tr_ready_ns = rf__trace_now();
		rf__trace_session(f->rt, f->tr_ready_ns);
	}
	RF__PROBE(ready, 4, f, home->id, self ? (int)self->id : -1,
		  self ? self->current : NULL);
}

void rf__trace_switch_out(struct rf__worker *wk, struct rf_fiber *from);
void rf__trace_switch_in(struct rf__worker *wk, struct rf_fiber *f, bool first);
void rf__trace_flush(struct rf__worker *wk);

void rf__trace_end(struct rf__worker *wk);

/*
 * Once per loop pass: a worker that was timing switches notices that the
 * tracers left, so that the next one starts afresh (trace.c).  One load
 * of the worker's own field while nothing is traced.
 */
static inline void rf__trace_check_end(struct rf__worker *wk)
{
	if (rf__unlikely(wk->tr_since_ns) && !rf__trace_switches())
		rf__trace_end(wk);
}

#endif /* RF_TRACE_H */
