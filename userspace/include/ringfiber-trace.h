/* SPDX-License-Identifier: MIT */
/*
 * ringfiber-trace.h - the runtime's tracing interface: its USDT probes and
 * the record a batch of scheduling events is handed over in.
 *
 * This header is an ABI between the library and tracers (the trace/ scripts,
 * trace/schedcmp and its BPF program trace/schedcmp.bpf.c), in the way a
 * kernel UAPI header is: it uses only fixed-size types, it is included by
 * BPF programs (after vmlinux.h) as well as by C programs, and what it
 * describes changes only by addition.  Documentation/tracing.md explains
 * what each probe means and how the tools use them.
 *
 * Every probe is a USDT (statically defined) probe of provider "ringfiber"
 * with a semaphore, so a probe that no tracer has attached costs one load
 * and a not-taken branch.  Arguments (argN as bpftrace names them):
 *
 *   ringfiber:spawn   (fiber, worker, name)          a fiber was created
 *   ringfiber:ready   (fiber, worker, from_worker, waker)
 *                     @fiber was made ready to run on @worker; @from_worker
 *                     is the readying thread's worker id, or -1 on a thread
 *                     that is none (rf_blocking()'s pool, a foreign thread);
 *                     @waker is the fiber that readied it, or 0
 *   ringfiber:run     (fiber, worker, delay_ns, parked_ns, reason, switch_ns)
 *                     @fiber runs again on @worker.  @delay_ns: ready ->
 *                     running (its run-queue latency); @parked_ns: park ->
 *                     ready (0 for a yield or a first run); @reason: why it
 *                     had stopped (enum rf_trace_reason); @switch_ns: the
 *                     switch itself, from the moment the worker chose it to
 *                     its first instruction.  What the runtime did not see
 *                     is reported unknown, never as 0: a time it could not
 *                     measure is RF_TRACE_UNKNOWN (made ready, or parked,
 *                     before tracing began), and a fiber that stopped
 *                     before tracing began has @reason
 *                     RF_TRACE_REASON_UNKNOWN with @parked_ns
 *                     RF_TRACE_UNKNOWN.  @reason RF_TRACE_NEW is only ever
 *                     a fiber's first run.
 *   ringfiber:park    (fiber, worker, reason)        @fiber stops running
 *   ringfiber:exit    (fiber, worker)                @fiber has finished
 *   ringfiber:kick    (from_worker, to_worker)       a sleeping worker is
 *                     woken through the wake back-end (a cross-worker wake)
 *   ringfiber:idle    (worker)                       @worker goes to sleep
 *   ringfiber:resume  (worker, slept_ns)             @worker woke up
 *   ringfiber:steal   (worker, victim, count)        @worker took @count
 *                     fibers from @victim's stealable queue
 *   ringfiber:hog     (fiber, worker, ran_ns)        the watchdog caught
 *                     @fiber running @ran_ns without giving its worker back
 *   ringfiber:preempt (fiber, worker)                @fiber is preempted: its
 *                     worker suspends it and runs the others (its park
 *                     reason is RF_TRACE_PREEMPT)
 *   ringfiber:batch   (worker, records, count, record_size)
 *                     the low-overhead path: @count struct rf_trace_rec
 *                     (@record_size bytes each) at user address @records
 *
 * The per-event probes cost a uprobe trap each (0.6 to 24 us, with the
 * machine and its load: Documentation/tracing.md) while a fiber switch
 * costs nanoseconds.  With only "batch" attached the runtime
 * takes its own timestamps (a vDSO clock read per switch), fills a
 * per-worker buffer and fires the probe once per RF_TRACE_BATCH records, and
 * before its worker sleeps.
 */
#ifndef RINGFIBER_TRACE_H
#define RINGFIBER_TRACE_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

/* Why a fiber stopped running (the @reason of run, park and the records). */
enum rf_trace_reason {
	RF_TRACE_NEW = 0,	/* it had not run yet: its first run */
	RF_TRACE_YIELD = 1,	/* rf_yield(), or the hog rescue moved it */
	RF_TRACE_IO = 2,	/* an io_uring request (read, recv, accept, ...) */
	RF_TRACE_LOCK = 3,	/* mutex, condition variable, semaphore */
	RF_TRACE_CHAN = 4,	/* channel send or receive */
	RF_TRACE_SLEEP = 5,	/* rf_sleep() */
	RF_TRACE_JOIN = 6,	/* rf_join(), rf_group_wait() */
	RF_TRACE_EVENT = 7,	/* wait group, event, other waits */
	RF_TRACE_BLOCKING = 8,	/* rf_blocking(): a call offloaded to a thread */
	RF_TRACE_MIGRATE = 9,	/* moving to another worker */
	RF_TRACE_PREEMPT = 10,	/* preempted: it had run its slice as a hog */
	RF_TRACE_REASON_UNKNOWN = 11,	/* it stopped before tracing began */
	RF_TRACE_REASONS
};

/* The names tools print for enum rf_trace_reason, in order. */
#define RF_TRACE_REASON_NAMES \
	"new", "yield", "io", "lock", "chan", "sleep", "join", "event", "blocking", "migrate", \
	"preempt", "unknown"

/*
 * A time the runtime could not measure: the fiber was made ready, or
 * stopped, before tracing began (or while no tracer was attached).  A
 * measured parked_ns of exactly this value is reported one less.
 */
#define RF_TRACE_UNKNOWN 0xffffffffu

/* Records per batch: the probe fires at most once per this many switches. */
#define RF_TRACE_BATCH 256

/* enum rf_trace_rec_type */
enum rf_trace_rec_type {
	RF_TRACE_REC_RUN = 1,	/* a fiber ran: the "run" probe's arguments */
};

/*
 * struct rf_trace_rec - one scheduling event of the batch path (40 bytes).
 * @ts_ns:     CLOCK_MONOTONIC (bpf_ktime_get_ns()'s clock) when it began
 *             running.
 * @fiber:     the fiber (its address: unique among live fibers).
 * @parked_ns: park -> ready; 0 after a yield or for a first run;
 *             RF_TRACE_UNKNOWN if it parked before tracing began (its
 *             @reason is then RF_TRACE_REASON_UNKNOWN).
 * @delay_ns:  ready -> chosen to run, saturated at RF_TRACE_UNKNOWN - 1;
 *             RF_TRACE_UNKNOWN if it was made ready before tracing began.
 * @switch_ns: chosen -> running, saturated likewise.
 * @worker:    the worker it runs on.
 * @type:      enum rf_trace_rec_type.
 * @reason:    enum rf_trace_reason: why it had stopped.
 * @seq:       the record's number on its worker: 1, 2, 3, ... from the
 *             moment the worker began recording (a tracer attached to
 *             "batch" while none was), skipping 0 when it wraps.  Each
 *             record of a worker is numbered one more than the one
 *             before, so a gap is records a tracer did not get (lost),
 *             and a first record numbered N follows N - 1 that were
 *             handed over before the tracer attached.  0 from a library
 *             older than this field (it was padding).
 */
struct rf_trace_rec {
	__u64 ts_ns;
	__u64 fiber;
	__u64 parked_ns;
	__u32 delay_ns;
	__u32 switch_ns;
	__u16 worker;
	__u8 type;
	__u8 reason;
	__u32 seq;
};

#endif /* RINGFIBER_TRACE_H */
