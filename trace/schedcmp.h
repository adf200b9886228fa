/* SPDX-License-Identifier: MIT */
/*
 * schedcmp.h - what schedcmp's BPF program (schedcmp.bpf.c) and its loader
 * (trace/schedcmp.c) share: the counters the program keeps, one copy per
 * CPU, and the loader sums, diffs and prints once per interval.
 *
 * Included after vmlinux.h by the BPF program and after <linux/types.h> by
 * the loader, like ringfiber-trace.h, and after it: its enum rf_trace_reason
 * indexes the fibers' parked-time arrays.
 */
#ifndef SCHEDCMP_H
#define SCHEDCMP_H

/*
 * Run-queue latency histogram slots: slot 0 holds 0 and 1 ns, slot k
 * (k >= 1) holds [2^k, 2^(k+1)) ns; the last one also holds everything
 * longer (2^39 ns is about 9 minutes).
 */
#define SCHEDCMP_SLOTS 40

/*
 * Rows of the parked-time arrays: enough for either side's reasons.  The
 * fibers' last row, SCHEDCMP_REASON_OTHER, holds every reason this
 * schedcmp has no name for (a newer library's, RF_TRACE_REASONS or above):
 * such a record is counted there, never in a known reason's row.
 */
#define SCHEDCMP_REASONS 16
#define SCHEDCMP_REASON_OTHER (SCHEDCMP_REASONS - 1)

/*
 * Why a target thread left its CPU (the threads' rows of "time parked").
 * SLEEP and DISK are times from the switch out to the wake-up, the span a
 * fiber's parked_ns covers; PREEMPTED is the time from the switch out to
 * the switch back in, all of it spent runnable on a run queue.
 */
enum schedcmp_tstate {
	SCHEDCMP_SLEEP = 0,	/* TASK_INTERRUPTIBLE ("S") */
	SCHEDCMP_DISK = 1,	/* TASK_UNINTERRUPTIBLE ("D") */
	SCHEDCMP_PREEMPTED = 2,	/* still runnable: preempted or yielded */
	SCHEDCMP_OTHER = 3,	/* stopped, traced, ... */
	SCHEDCMP_TSTATES
};

#define SCHEDCMP_TSTATE_NAMES "sleep(S)", "disk(D)", "preempted", "other"

_Static_assert(RF_TRACE_REASONS <= SCHEDCMP_REASON_OTHER,
	       "a row for every enum rf_trace_reason, and one for the others");
_Static_assert(SCHEDCMP_TSTATES <= SCHEDCMP_REASONS, "a row for every thread state");

/*
 * struct schedcmp_lat - a set of latencies.
 * @count:   how many.
 * @sum_ns:  their sum.
 * @hist:    their log2 histogram (SCHEDCMP_SLOTS).
 */
struct schedcmp_lat {
	__u64 count;
	__u64 sum_ns;
	__u64 hist[SCHEDCMP_SLOTS];
};

/*
 * struct schedcmp_side - the counters of one side, threads or fibers.
 * @switches:  threads: switches out of a target thread; fibers: RUN
 *             records, one per switch into a fiber (rf_stats.runs).
 * @involuntary: threads: of @switches, those that left the thread runnable
 *             (preempted, or sched_yield()); fibers: of @switches, those
 *             into a fiber that had been preempted (reason
 *             RF_TRACE_PREEMPT), one per rf_stats.preemptions.
 * @rq:        run-queue latencies (threads: wake-up or preemption ->
 *             running; fibers: ready -> chosen, the records' delay_ns).
 * @rq_runnable: of @rq, those of a thread or fiber that had stopped without
 *             waiting for anything: a preempted or yielding thread, a fiber
 *             that was preempted, yielded or migrated.  The rest followed a
 *             wake-up.
 * @sw_count:  switches timed.  Threads: system calls that slept, whose
 *             on-CPU time (syscall time minus time off the CPU) is the
 *             cost of the switch and of the call around it.  Fibers:
 *             records whose switch_ns is known.
 * @sw_sum_ns: their sum.
 * @parked_count: per reason (fibers: enum rf_trace_reason, and
 *             SCHEDCMP_REASON_OTHER for any other; threads: enum
 *             schedcmp_tstate), how many stops it ended.
 * @parked_ns: per reason, the time parked.
 * @unknown:   fibers: records with an unknown delay (made ready before
 *             tracing began); threads: 0.
 * @batches:   fibers: "batch" probe hits; threads: 0.
 * @bad:       records or events that could not be read or made no sense
 *             (threads: the thread map was full).
 * @lost_attach: fibers: records numbered before the first one a worker
 *             handed to us (struct rf_trace_rec's seq): switches its
 *             tracing session saw before we attached, none of ours when
 *             schedcmp was the first tracer; threads: 0.
 * @lost_between: fibers: records missing between two a worker handed
 *             to us (gaps in seq); threads: 0.
 */
struct schedcmp_side {
	__u64 switches;
	__u64 involuntary;
	struct schedcmp_lat rq;
	struct schedcmp_lat rq_runnable;
	__u64 sw_count;
	__u64 sw_sum_ns;
	__u64 parked_count[SCHEDCMP_REASONS];
	__u64 parked_ns[SCHEDCMP_REASONS];
	__u64 unknown;
	__u64 batches;
	__u64 bad;
	__u64 lost_attach;
	__u64 lost_between;
};

/*
 * The "wseq" map: per worker, keyed by the address of its record buffer
 * (the batch probe's @records, unique to a worker while it lives), the
 * record numbers seen so far.
 * @next:        the seq the worker's next record should carry.
 * @record_size: the batch's record size, for reading the buffer at detach.
 */
struct schedcmp_wseq {
	__u32 next;
	__u32 record_size;
};

#define SCHEDCMP_MAX_WORKERS 4096

/* The value of the per-CPU "stats" map's only entry. */
struct schedcmp_stats {
	struct schedcmp_side threads;
	struct schedcmp_side fibers;
};

#endif /* SCHEDCMP_H */
