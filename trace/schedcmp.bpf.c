// SPDX-License-Identifier: GPL-2.0
/*
 * schedcmp.bpf.c - the BPF half of schedcmp: one process's OS threads, from
 * the scheduler's tracepoints, and its fibers, from the ringfiber runtime's
 * "batch" USDT probe, counted into one per-CPU struct schedcmp_stats that
 * the loader (trace/schedcmp.c) reads once per interval.
 *
 * Threads.  Like runqlat, a thread's run-queue latency runs from its
 * wake-up (sched_wakeup, sched_wakeup_new) or from the moment it was
 * switched out still runnable (preempted, or yielding) to the switch that
 * puts it back on a CPU.  A preempted task is recognised by the
 * tracepoint's preempt argument, or by a prev_state of TASK_RUNNING; the
 * tracefs format's "R+" (prev_state == TASK_REPORT_MAX, 0x100) is what
 * that looks like to a tracepoint consumer, not to this program, which
 * gets the raw arguments.  On kernels from 5.18 the tracepoint also passes
 * prev_state; before, prev->__state (or ->state) is read, which a
 * concurrent wake-up can already have changed to TASK_WAKING.
 *
 * The cost of a thread's switch is not visible to a tracepoint, so the
 * program measures what surrounds it: for each system call that slept,
 * the time the thread spent on its CPU inside the call (sys_exit - sys_enter
 * minus the time switched out): the call's own work plus both halves of
 * the context switch, an upper bound on the switch's cost.
 *
 * Fibers.  The runtime fills a per-worker buffer with struct rf_trace_rec
 * and hands it over RF_TRACE_BATCH records at a time; each hit is read
 * with one bpf_probe_read_user() into a per-CPU scratch buffer and counted
 * by bpf_loop(), so a fiber switch costs the runtime a record, not a trap.
 *
 * Every program exists twice, as tp_btf (typed, direct arguments) and as
 * raw_tp (older kernels, CO-RE reads); the loader keeps the tp_btf ones
 * where the kernel can attach them and turns the others' autoload off.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include <bpf/usdt.bpf.h>

#include "ringfiber-trace.h"
#include "schedcmp.h"

/* Task states (include/linux/sched.h); vmlinux.h has no #defines. */
#define TASK_RUNNING		0x0000
#define TASK_INTERRUPTIBLE	0x0001
#define TASK_UNINTERRUPTIBLE	0x0002
#define TASK_DEAD		0x0080

#define MAX_THREADS		16384

/* Set by the loader before the load. */
const volatile pid_t targ_tgid = 0;
/* The kernel's sched_switch passes prev_state as its 4th argument. */
const volatile bool targ_prev_state_arg = false;

/* Where one target thread is in its cycle of running and waiting. */
struct tinfo {
	__u64 out_ts;		/* switched out at; 0 while on a CPU */
	__u64 sleep_ts;		/* switched out sleeping at, until woken */
	__u64 rq_ts;		/* runnable since, until it runs */
	__u64 sys_ts;		/* inside a system call since; 0 outside */
	__u64 sys_off_ns;	/* time switched out during that call */
	__u32 out_state;	/* enum schedcmp_tstate of the last switch out */
	__u32 sys_slept;	/* that call slept */
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_THREADS);
	__type(key, __u32);
	__type(value, struct tinfo);
} threads SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct schedcmp_stats);
} stats SEC(".maps");

/* One batch, copied from the target; per CPU, as a batch is too big for
 * the BPF stack. */
struct batch_buf {
	struct rf_trace_rec rec[RF_TRACE_BATCH];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct batch_buf);
} scratch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SCHEDCMP_MAX_WORKERS);
	__type(key, __u64);
	__type(value, struct schedcmp_wseq);
} wseq SEC(".maps");

/* Kernels before 5.14 call task_struct's state "state". */
struct task_struct___o {
	volatile long int state;
} __attribute__((preserve_access_index));

struct task_struct___x {
	unsigned int __state;
} __attribute__((preserve_access_index));

static __always_inline __u64 task_state(struct task_struct *t)
{
	struct task_struct___x *tx = (void *)t;

	if (bpf_core_field_exists(tx->__state))
		return BPF_CORE_READ(tx, __state);
	return BPF_CORE_READ((struct task_struct___o *)t, state);
}

static __always_inline struct schedcmp_stats *stats_get(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&stats, &zero);
}

/* The log2 slot of @v: floor(log2(v)), 0 for 0 and 1, capped. */
static __always_inline __u32 log2_slot(__u64 v)
{
	__u32 r, shift;

	r = (v > 0xffffffffULL) << 5;
	v >>= r;
	shift = (v > 0xffff) << 4;
	v >>= shift;
	r |= shift;
	shift = (v > 0xff) << 3;
	v >>= shift;
	r |= shift;
	shift = (v > 0xf) << 2;
	v >>= shift;
	r |= shift;
	shift = (v > 0x3) << 1;
	v >>= shift;
	r |= shift;
	r |= (v >> 1);
	return r < SCHEDCMP_SLOTS ? r : SCHEDCMP_SLOTS - 1;
}

static __always_inline struct tinfo *tinfo_get(__u32 tid, bool create)
{
	static const struct tinfo zero;
	struct tinfo *ti;

	ti = bpf_map_lookup_elem(&threads, &tid);
	if (ti || !create)
		return ti;
	bpf_map_update_elem(&threads, &tid, &zero, BPF_NOEXIST);
	return bpf_map_lookup_elem(&threads, &tid);
}

static __always_inline void lat_account(struct schedcmp_lat *l, __u64 d)
{
	l->count++;
	l->sum_ns += d;
	l->hist[log2_slot(d)]++;
}

/* A run-queue latency @d of a task that had been @runnable all along. */
static __always_inline void rq_account(struct schedcmp_side *s, __u64 d, bool runnable)
{
	lat_account(&s->rq, d);
	if (runnable)
		lat_account(&s->rq_runnable, d);
}

/* @p was woken, or made runnable for the first time (@new). */
static __always_inline int on_wakeup(struct task_struct *p, bool new)
{
	struct schedcmp_stats *st;
	struct tinfo *ti;
	__u64 now;

	if (BPF_CORE_READ(p, tgid) != targ_tgid)
		return 0;
	st = stats_get();
	if (!st)
		return 0;
	ti = tinfo_get(BPF_CORE_READ(p, pid), true);
	if (!ti) {
		st->threads.bad++;
		return 0;
	}
	now = bpf_ktime_get_ns();
	if (ti->sleep_ts && !new) {
		__u32 s = ti->out_state & (SCHEDCMP_REASONS - 1);

		st->threads.parked_count[s]++;
		st->threads.parked_ns[s] += now - ti->sleep_ts;
		ti->sleep_ts = 0;
	}
	ti->rq_ts = now;
	return 0;
}

/* The kernel switches from @prev, which was in @state, to @next. */
static __always_inline int on_switch(bool preempt, struct task_struct *prev,
				     struct task_struct *next, __u64 state)
{
	struct schedcmp_stats *st = NULL;
	struct tinfo *ti;
	__u64 now = 0;
	__u32 tid, s;

	if (BPF_CORE_READ(prev, tgid) == targ_tgid) {
		st = stats_get();
		if (!st)
			return 0;
		now = bpf_ktime_get_ns();
		tid = BPF_CORE_READ(prev, pid);
		st->threads.switches++;
		if (preempt || state == TASK_RUNNING)
			s = SCHEDCMP_PREEMPTED;
		else if (state & TASK_DEAD)
			s = SCHEDCMP_TSTATES;	/* exiting: forget it */
		else if (state & TASK_INTERRUPTIBLE)
			s = SCHEDCMP_SLEEP;
		else if (state & TASK_UNINTERRUPTIBLE)
			s = SCHEDCMP_DISK;
		else if (!(state & 0xff))
			s = SCHEDCMP_SLEEP;	/* TASK_WAKING: a wake-up is under way */
		else
			s = SCHEDCMP_OTHER;
		if (s == SCHEDCMP_TSTATES) {
			bpf_map_delete_elem(&threads, &tid);
		} else if ((ti = tinfo_get(tid, true))) {
			ti->out_ts = now;
			ti->out_state = s;
			if (s == SCHEDCMP_PREEMPTED) {
				st->threads.involuntary++;
				ti->rq_ts = now;
				ti->sleep_ts = 0;
			} else {
				ti->rq_ts = 0;
				ti->sleep_ts = now;
				if (ti->sys_ts)
					ti->sys_slept = 1;
			}
		} else {
			st->threads.bad++;
		}
	}

	if (BPF_CORE_READ(next, tgid) != targ_tgid)
		return 0;
	tid = BPF_CORE_READ(next, pid);
	ti = tinfo_get(tid, false);
	if (!ti)
		return 0;	/* not seen leaving or waking since tracing began */
	if (!st) {
		st = stats_get();
		if (!st)
			return 0;
		now = bpf_ktime_get_ns();
	}
	if (ti->rq_ts) {
		rq_account(&st->threads, now - ti->rq_ts,
			   ti->out_ts && ti->out_state == SCHEDCMP_PREEMPTED);
		ti->rq_ts = 0;
	}
	if (ti->out_ts) {
		__u64 off = now - ti->out_ts;

		if (ti->out_state == SCHEDCMP_PREEMPTED) {
			st->threads.parked_count[SCHEDCMP_PREEMPTED]++;
			st->threads.parked_ns[SCHEDCMP_PREEMPTED] += off;
		}
		if (ti->sys_ts)
			ti->sys_off_ns += off;
		ti->out_ts = 0;
	}
	ti->sleep_ts = 0;	/* its wake-up, if it slept, was not seen */
	return 0;
}

static __always_inline int on_sys_enter(void)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct tinfo *ti;

	if ((id >> 32) != targ_tgid)
		return 0;
	ti = tinfo_get((__u32)id, true);
	if (!ti)
		return 0;
	ti->sys_ts = bpf_ktime_get_ns();
	ti->sys_off_ns = 0;
	ti->sys_slept = 0;
	return 0;
}

static __always_inline int on_sys_exit(void)
{
	__u64 id = bpf_get_current_pid_tgid(), now, on;
	struct schedcmp_stats *st;
	struct tinfo *ti;
	__u32 tid = (__u32)id;

	if ((id >> 32) != targ_tgid)
		return 0;
	ti = bpf_map_lookup_elem(&threads, &tid);
	if (!ti || !ti->sys_ts)
		return 0;
	if (ti->sys_slept) {
		now = bpf_ktime_get_ns();
		on = now - ti->sys_ts;
		st = stats_get();
		if (st && on >= ti->sys_off_ns) {
			st->threads.sw_count++;
			st->threads.sw_sum_ns += on - ti->sys_off_ns;
		}
	}
	ti->sys_ts = 0;
	return 0;
}

/* sched_switch's prev_state: the argument where the kernel passes it. */
static __always_inline __u64 prev_state(unsigned long long *ctx,
					struct task_struct *prev)
{
	if (targ_prev_state_arg)
		return (unsigned int)ctx[3];
	return task_state(prev);
}

SEC("tp_btf/sched_wakeup")
int BPF_PROG(sched_wakeup_btf, struct task_struct *p)
{
	return on_wakeup(p, false);
}

SEC("tp_btf/sched_wakeup_new")
int BPF_PROG(sched_wakeup_new_btf, struct task_struct *p)
{
	return on_wakeup(p, true);
}

SEC("tp_btf/sched_switch")
int BPF_PROG(sched_switch_btf, bool preempt, struct task_struct *prev,
	     struct task_struct *next)
{
	return on_switch(preempt, prev, next, prev_state(ctx, prev));
}

SEC("tp_btf/sys_enter")
int BPF_PROG(sys_enter_btf)
{
	return on_sys_enter();
}

SEC("tp_btf/sys_exit")
int BPF_PROG(sys_exit_btf)
{
	return on_sys_exit();
}

SEC("raw_tp/sched_wakeup")
int BPF_PROG(sched_wakeup_raw, struct task_struct *p)
{
	return on_wakeup(p, false);
}

SEC("raw_tp/sched_wakeup_new")
int BPF_PROG(sched_wakeup_new_raw, struct task_struct *p)
{
	return on_wakeup(p, true);
}

SEC("raw_tp/sched_switch")
int BPF_PROG(sched_switch_raw, bool preempt, struct task_struct *prev,
	     struct task_struct *next)
{
	return on_switch(preempt, prev, next, prev_state(ctx, prev));
}

SEC("raw_tp/sys_enter")
int BPF_PROG(sys_enter_raw)
{
	return on_sys_enter();
}

SEC("raw_tp/sys_exit")
int BPF_PROG(sys_exit_raw)
{
	return on_sys_exit();
}

/* What the bpf_loop() callbacks of one batch work on. */
struct batch_ctx {
	struct batch_buf *buf;
	struct schedcmp_side *f;
	struct schedcmp_wseq *ws;	/* this worker's record numbers */
	__u64 records;		/* the target's address of the first record */
	__u64 record_size;
	long err;
};

/* The seq after @seq: 0 is skipped (it means "not numbered"). */
static __always_inline __u32 seq_after(__u32 seq)
{
	return seq + 1 ? seq + 1 : 1;
}

/*
 * Check record number @seq against what the worker should have sent next:
 * a gap is records lost; the first record seen is preceded by seq - 1 that
 * the session handed over before we attached.  1 where more was expected,
 * or a number gone back, is a worker that began numbering again (a new
 * tracing session, or a new runtime's worker at the same address): it
 * starts afresh.  0: a library older than the numbers.
 */
static __always_inline void check_seq(struct batch_ctx *c, __u32 seq)
{
	struct schedcmp_wseq *ws = c->ws;
	__u32 gap;

	if (!seq || !ws)
		return;
	if (!ws->next) {
		c->f->lost_attach += seq - 1;
	} else if (seq != ws->next && seq != 1) {
		gap = seq - ws->next;
		if (gap < 0x80000000u)	/* ahead: lost; behind: numbering again */
			c->f->lost_between += gap - (seq < ws->next);	/* 0 skipped */
	}
	ws->next = seq_after(seq);
}

/* Copy record @i of a batch whose records are longer than ours. */
static long read_long_record(__u32 i, void *data)
{
	struct batch_ctx *c = data;

	if (i >= RF_TRACE_BATCH)
		return 1;
	c->err = bpf_probe_read_user(&c->buf->rec[i], sizeof(struct rf_trace_rec),
				     (void *)(c->records + i * c->record_size));
	return c->err ? 1 : 0;
}

/* Count record @i of the batch in the fibers' side. */
static long count_record(__u32 i, void *data)
{
	struct batch_ctx *c = data;
	struct schedcmp_side *f = c->f;
	struct rf_trace_rec *rec;
	__u32 r;

	if (i >= RF_TRACE_BATCH)
		return 1;
	rec = &c->buf->rec[i];
	if (rec->type != RF_TRACE_REC_RUN) {
		f->bad++;
		return 0;
	}
	check_seq(c, rec->seq);
	f->switches++;
	/* A preempted fiber, like a preempted thread, was switched out runnable. */
	if (rec->reason == RF_TRACE_PREEMPT)
		f->involuntary++;
	if (rec->delay_ns == RF_TRACE_UNKNOWN)
		f->unknown++;
	else
		rq_account(f, rec->delay_ns, rec->reason == RF_TRACE_YIELD ||
					     rec->reason == RF_TRACE_MIGRATE ||
					     rec->reason == RF_TRACE_PREEMPT);
	if (rec->switch_ns != RF_TRACE_UNKNOWN) {
		f->sw_count++;
		f->sw_sum_ns += rec->switch_ns;
	}
	/* A newer library's reason gets the "other" row, not a known one's. */
	r = rec->reason < RF_TRACE_REASONS ? rec->reason : SCHEDCMP_REASON_OTHER;
	f->parked_count[r]++;
	/* Parked before tracing began (reason "unknown"): counted, not timed. */
	if (rec->parked_ns != RF_TRACE_UNKNOWN)
		f->parked_ns[r] += rec->parked_ns;
	return 0;
}

/*
 * ringfiber:batch(worker, records, count, record_size).  The records are
 * copied with one read and counted by bpf_loop() (5.17): the verifier
 * checks the callback once, where an open-coded loop of 256 rounds would
 * be walked round by round and overrun its limit.
 */
SEC("usdt")
int BPF_USDT(rf_batch, long worker, long records, long count, long record_size)
{
	struct schedcmp_stats *st = stats_get();
	struct batch_ctx c = {};
	__u32 zero = 0, n;
	__u64 key;

	c.buf = bpf_map_lookup_elem(&scratch, &zero);
	if (!st || !c.buf)
		return 0;
	c.f = &st->fibers;
	c.f->batches++;
	if (count <= 0)
		return 0;
	if (count > RF_TRACE_BATCH || record_size < (long)sizeof(struct rf_trace_rec)) {
		c.f->bad += count;
		return 0;
	}
	n = count;
	key = records;
	c.ws = bpf_map_lookup_elem(&wseq, &key);
	if (!c.ws) {
		struct schedcmp_wseq fresh = { .next = 0, .record_size = record_size };

		bpf_map_update_elem(&wseq, &key, &fresh, BPF_NOEXIST);
		c.ws = bpf_map_lookup_elem(&wseq, &key);
	}
	if (record_size == sizeof(struct rf_trace_rec)) {
		c.err = bpf_probe_read_user(c.buf->rec, n * sizeof(struct rf_trace_rec),
					    (void *)records);
	} else {
		/* A longer record of a later ABI: its first 40 bytes are ours. */
		c.records = records;
		c.record_size = record_size;
		bpf_loop(n, read_long_record, &c, 0);
	}
	if (c.err) {
		c.f->bad += n;
		return 0;
	}
	bpf_loop(n, count_record, &c, 0);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
