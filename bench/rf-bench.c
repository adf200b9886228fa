/* SPDX-License-Identifier: MIT */
/*
 * rf-bench - the fiber core's figures, one per line: `name value unit`.
 *
 *   rf-bench [--json] [--quick] [--parked N]
 *   rf-bench --features [--json]
 *
 * --features prints, instead of figures, what the runtime picked on this
 * kernel with the default options: the kernel's release, each RF_FEAT_*
 * feature (yes or no) and the wake back-end RF_WAKE_AUTO chose, one per
 * line (`feature_<name> yes`), or one JSON object.  Nothing is timed.
 *
 * Each timed figure is the best of several trials (the least disturbed run
 * on a noisy machine); peers are measured in the same run, interleaved with
 * ours, so ratios compare like with like.  A figure that cannot be measured
 * here prints `name n/a (why)` (null in --json, the reason on stderr): never
 * a made-up number.
 *   switch_ns        one direction of a raw rf__switch ping-pong between
 *                    two fibers running the same loop
 *   boost_switch_ns  the same ping-pong with Boost.Context's jump_fcontext
 *   switch_ratio     switch_ns / boost_switch_ns
 *   switch_main_ns   ping-pong between the main stack and one fiber (two
 *                    call sites: the return predictor misses; see switch.S)
 *   boost_switch_main_ns  the same with jump_fcontext
 *   yield_ns         one rf_yield with two fibers ready
 *   spawn_join_ns    rf_spawn + rf_join of an empty fiber, stacks pooled
 *   parked_bytes     RSS growth per fiber with N fibers parked in rf_sleep
 *   io_nop_ns        one IORING_OP_NOP round trip per fiber, 64 fibers
 *   io_enters_per_op io_uring_enter calls per operation in that run
 *   preempt_ns       one preemption, from the signal to the other fiber
 *                    running: a hog and an always-ready competitor,
 *                    the default slice_ns; timestamps of the CPU's
 *                    cycle counter (see "preemption" below)
 *   preempt_p50_ns   the median of the same (the mean is the figure;
 *                    the median shows how much of it a few long gaps are)
 *   preempt_resume_ns  the way back, the competitor's last rf_yield() to
 *                    the preempted hog running again (rt_sigreturn)
 * The figures above run on one worker (.workers = 1).  The ones below need
 * CPUs 0 and 1 (n/a otherwise) and run two workers pinned there:
 *   wake_<be>_ns     cross-worker wake-up, one direction (round trip / 2) of
 *                    an rf_sem ping-pong between two fibers pinned to workers
 *                    0 and 1; <be> is the back-end: msgring, eventfd, futex,
 *                    rfwake (the module's /dev/rfwake, n/a without it);
 *                    idle workers spin first (the default idle_spin_ns)
 *   wake_<be>_nospin_ns  the same with idle_spin_ns = -1 (sleep at once)
 *   wake_<be>[_nospin]_syscall_frac  of those remote wakes, the fraction
 *                    that had to wake a sleeping worker with a system call
 *                    (stats wake_calls / remote_wakes, over every trial)
 *   wake_<be>_pool_ns  a thread with no ring (an rf_blocking() pool thread
 *                    pinned to CPU 1) wakes a fiber on a sleeping worker
 *                    (CPU 0, no spin) with rf_sem_release; the fiber answers
 *                    through a futex: round trip / 2.  The answer costs the
 *                    same for every back-end: the differences are the kick
 *                    from outside the runtime (msgring and eventfd: a
 *                    write to the worker's eventfd; rfwake: one ioctl)
 *   thread_wake_ns   the same ping-pong between two pthreads pinned to CPUs
 *                    0 and 1, each sleeping on its own futex (the peer)
 *   wake_ratio       default back-end's wake_<be>_ns / thread_wake_ns
 *                    (target <= 0.5); the default is what RF_WAKE_AUTO picks
 *                    here (rfwake where /dev/rfwake works)
 *   chan_ns          per message through an rf_chan of capacity 64, from a
 *                    producer fiber on worker 0 to a consumer on worker 1
 *   steal_speedup    time for 64 CPU-bound fibers (50 us chunks between
 *                    rf_yield calls) spawned on worker 0: one worker (on
 *                    CPU 0 or 1, the faster) / two workers, the second
 *                    stealing (target >= 1.8)
 *   steal_count      fibers stolen (stats.steals) in that two-worker run
 *   steal_1worker_ms, steal_2workers_ms  the two times (500 ms of work, 50
 *                    with --quick: more on one worker means a shared CPU)
 * Thread hand-off: two OS threads ping-pong, each waking the other and going
 * to sleep in one step, both pinned to CPU 0 (_samecpu: the hand-off is a
 * context switch) or to CPUs 0 and 1 (_crosscpu: a wake-up of another CPU).
 * One direction (round trip / 2) each:
 *   handoff_futex_<pin>_ns   FUTEX_WAKE the peer, FUTEX_WAIT on our word (the
 *                    wait is skipped when the answer came first, as in
 *                    thread_wake_ns)
 *   handoff_rfwake_swap_<pin>_ns   one RFWAKE_IOC_SWAP (wake the peer, wait on
 *                    ourselves) with the scheduler's sync-wake hint
 *   handoff_rfwake_nosync_<pin>_ns the same with RFWAKE_SWAP_NOSYNC
 *   handoff_swap_vs_futex_<pin>    swap / futex (< 1: SWAP is faster)
 *   handoff_sync_vs_nosync_<pin>   swap / nosync (< 1: the hint helps)
 * The rfwake figures need /dev/rfwake (the module loaded, the device open to
 * this user: Documentation/rfwake.md); they are n/a, with the reason,
 * otherwise.  Under emulation (qemu TCG) absolute times mean little: compare
 * the ratios, which come from the same run.
 *
 * RF_WAKE_BACKEND is ignored (unset, with a note): every back-end is
 * measured by name.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <linux/futex.h>
#include <linux/rfwake.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>
#if defined(__x86_64__)
#include <x86intrin.h>	/* __rdtsc() */
#endif

#include "bench-common.h"
#include "ringfiber.h"
#include "switch.h"	/* rf__switch: the raw switch, linked from the static library */

/* Boost.Context's C-ABI entry points (boost/context/detail/fcontext.hpp). */
typedef void *fcontext_t;
typedef struct {
	fcontext_t fctx;
	void *data;
} transfer_t;
transfer_t jump_fcontext(fcontext_t const to, void *vp);
fcontext_t make_fcontext(void *sp, size_t size, void (*fn)(transfer_t));

#define TRIALS 7
#define STACK_SIZE (64 * 1024)

struct figure {
	const char *name;
	double value;
	const char *unit;
	const char *na;		/* why there is no value, or NULL */
};

static struct figure figures[64];
static int nfigures;
static long scale = 1;	/* --quick divides iteration counts */

static void add(const char *name, double value, const char *unit)
{
	figures[nfigures++] = (struct figure){ name, value, unit, NULL };
}

static void add_na(const char *name, const char *unit, const char *why)
{
	figures[nfigures++] = (struct figure){ name, 0, unit, why };
}

static void *map_stack(void)
{
	void *p = mmap(NULL, STACK_SIZE, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED) {
		perror("rf-bench: mmap");
		exit(1);
	}
	return p;
}

/*
 * Two kinds of ping-pong for each switch:
 *  - fiber-to-fiber: two contexts run the same loop, so each resumes at the
 *    call site the other left from: the scheduler's case (every fiber parks
 *    through the same functions);
 *  - main-to-fiber: the thread's main stack and one context, from two
 *    different call sites.
 */

/* ---------------------------------------------------- raw switch: ours */
static void *main_sp, *peer_sp, *pp_sp[2];
static long pp_left;

static void rf_pingpong(void *arg)
{
	int me = (int)(uintptr_t)arg;

	while (pp_left-- > 0)
		rf__switch(&pp_sp[me], pp_sp[!me]);
	rf__switch(&pp_sp[me], main_sp);
}

static double bench_rf_f2f(char *s1, char *s2, long n)
{
	double t0, t1;

	pp_sp[0] = rf__ctx_init(s1 + STACK_SIZE, rf_pingpong, (void *)0);
	pp_sp[1] = rf__ctx_init(s2 + STACK_SIZE, rf_pingpong, (void *)1);
	pp_left = 2 * n;
	t0 = now_ns();
	rf__switch(&main_sp, pp_sp[0]);
	t1 = now_ns();
	return (t1 - t0) / (2.0 * n);
}

static void rf_peer(void *arg)
{
	for (;;)
		rf__switch(&peer_sp, main_sp);
}

static double bench_rf_switch(char *stack, long n)
{
	double t0, t1;

	peer_sp = rf__ctx_init(stack + STACK_SIZE, rf_peer, NULL);
	t0 = now_ns();
	for (long i = 0; i < n; i++)
		rf__switch(&main_sp, peer_sp);
	t1 = now_ns();
	return (t1 - t0) / (2.0 * n);
}

/* --------------------------------------------------- raw switch: Boost */
static void boost_peer(transfer_t t)
{
	for (;;)
		t = jump_fcontext(t.fctx, NULL);
}

static fcontext_t boost_main;
static long boost_left;

static void boost_pingpong(transfer_t t)
{
	if (t.data) {
		/* the first side: entered from main, handed the second side */
		boost_main = t.fctx;
		t = jump_fcontext((fcontext_t)t.data, NULL);
	}
	while (boost_left-- > 0)
		t = jump_fcontext(t.fctx, NULL);
	jump_fcontext(boost_main, NULL);
}

static double bench_boost_f2f(char *s1, char *s2, long n)
{
	fcontext_t a = make_fcontext(s1 + STACK_SIZE, STACK_SIZE, boost_pingpong);
	fcontext_t b = make_fcontext(s2 + STACK_SIZE, STACK_SIZE, boost_pingpong);
	double t0, t1;

	/* the first jump (main -> a) and a's first jump to b are not counted */
	boost_left = 2 * n - 1;
	t0 = now_ns();
	jump_fcontext(a, b);
	t1 = now_ns();
	return (t1 - t0) / (2.0 * n);
}

static double bench_boost_switch(char *stack, long n)
{
	fcontext_t peer = make_fcontext(stack + STACK_SIZE, STACK_SIZE, boost_peer);
	double t0, t1;

	t0 = now_ns();
	for (long i = 0; i < n; i++)
		peer = jump_fcontext(peer, NULL).fctx;
	t1 = now_ns();
	return (t1 - t0) / (2.0 * n);
}

/* -------------------------------------------------- scheduler figures */
struct sched_bench {
	long n;
	double result_ns;
	double parked_bytes;
	double enters_per_op;
	int err;
};

static void *yield_main(void *arg)
{
	struct sched_bench *b = arg;
	struct rf_fiber *f[2];
	double t0;

	t0 = now_ns();
	for (int i = 0; i < 2; i++)
		if ((b->err = rf_spawn(&f[i], yielder, &b->n, NULL)))
			return NULL;
	for (int i = 0; i < 2; i++)
		rf_join(f[i], NULL, RF_NO_DEADLINE);
	b->result_ns = (now_ns() - t0) / (2.0 * b->n);
	return NULL;
}

static void *spawn_join_main(void *arg)
{
	struct sched_bench *b = arg;
	struct rf_fiber *f;
	double t0;

	/* warm the pool */
	if ((b->err = rf_spawn(&f, empty, NULL, NULL)))
		return NULL;
	rf_join(f, NULL, RF_NO_DEADLINE);
	t0 = now_ns();
	for (long i = 0; i < b->n; i++) {
		if ((b->err = rf_spawn(&f, empty, NULL, NULL)))
			return NULL;
		rf_join(f, NULL, RF_NO_DEADLINE);
	}
	b->result_ns = (now_ns() - t0) / b->n;
	return NULL;
}

static void *nopper(void *arg)
{
	long n = *(long *)arg;

	for (long i = 0; i < n; i++)
		if (rf_nop(RF_NO_DEADLINE))
			abort();
	return NULL;
}

#define NOP_FIBERS 64

static void *nop_main(void *arg)
{
	struct sched_bench *b = arg;
	struct rf_fiber *f[NOP_FIBERS];
	struct rf_stats s0, s1;
	long per = b->n / NOP_FIBERS;
	double t0;

	rf_runtime_stats(NULL, &s0);
	t0 = now_ns();
	for (int i = 0; i < NOP_FIBERS; i++)
		if ((b->err = rf_spawn(&f[i], nopper, &per, NULL)))
			return NULL;
	for (int i = 0; i < NOP_FIBERS; i++)
		rf_join(f[i], NULL, RF_NO_DEADLINE);
	b->result_ns = (now_ns() - t0) / (double)(per * NOP_FIBERS);
	rf_runtime_stats(NULL, &s1);
	b->enters_per_op = (double)(s1.enters - s0.enters) / (double)(per * NOP_FIBERS);
	return NULL;
}

static long rss_bytes(void)
{
	long pages = 0, resident = 0;
	FILE *f = fopen("/proc/self/statm", "r");

	if (!f)
		return -1;
	if (fscanf(f, "%ld %ld", &pages, &resident) != 2)
		resident = -1;
	fclose(f);
	return resident * sysconf(_SC_PAGESIZE);
}

static void *sleeper(void *arg)
{
	rf_sleep(rf_deadline_after(3600ll * 1000000000));	/* until cancelled */
	return NULL;
}

static void *parked_main(void *arg)
{
	struct sched_bench *b = arg;
	struct rf_fiber **f = calloc(b->n, sizeof(*f));
	struct rf_spawn_attr attr = { .name = "sleeper" };
	long before, after, spawned = 0;

	if (!f) {
		b->err = -ENOMEM;
		return NULL;
	}
	memset(f, 0, b->n * sizeof(*f));	/* fault the array in before measuring */
	before = rss_bytes();
	for (; spawned < b->n; spawned++) {
		if ((b->err = rf_spawn(&f[spawned], sleeper, NULL, &attr)))
			break;
		/* let them park as we go: spawning them all is no hog */
		if (spawned % 1024 == 1023)
			rf_yield();
	}
	rf_yield();	/* every sleeper runs once and parks */
	after = rss_bytes();
	if (!b->err)
		b->parked_bytes = (double)(after - before) / b->n;
	for (long i = 0; i < spawned; i++) {
		rf_cancel(f[i]);
		if (i % 1024 == 1023)
			rf_yield();
	}
	for (long i = 0; i < spawned; i++)
		rf_join(f[i], NULL, RF_NO_DEADLINE);
	free(f);
	return NULL;
}

static int run_sched(rf_fn fn, struct sched_bench *b, const struct rf_runtime_opts *opts)
{
	struct rf_runtime *rt;
	int ret = rf_runtime_create(&rt, opts);

	if (ret)
		return ret;
	ret = rf_runtime_run(rt, fn, b, NULL);
	rf_runtime_destroy(rt);
	return ret ? ret : b->err;
}

static void die(const char *what, int err)
{
	fprintf(stderr, "rf-bench: %s: %s\n", what, strerror(-err));
	if (err == -ENOMEM || err == -EAGAIN)
		fprintf(stderr, "rf-bench: out of memory or mappings: see vm.max_map_count "
			"in Documentation/fiber-core.md\n");
	exit(1);
}

/* ------------------------------------------------------- preemption */
/*
 * preempt_ns: what one preemption costs, from the signal to the other
 * fiber running.  One worker runs a hog, which never gives the worker up,
 * and a competitor, which is always ready (it only rf_yield()s), so every
 * slice tick (the default slice_ns, hog_ns = 1 ms to catch the hog soon)
 * preempts the hog: the cycle a server's hog goes through.  (With a slice
 * shorter than a preemption and the competitor's turn, ticks would also
 * land while the hog is away, which is not what a preemption costs.)  Both read one clock, the CPU's cycle counter
 * (rdtsc, cntvct_el0: an instruction of our own code, where the hog may be
 * stopped, unlike clock_gettime() in the vDSO), converted to ns against
 * CLOCK_MONOTONIC.  The hog stores its latest reading in a loop a few ns
 * long; the competitor, each time it runs, takes the time since the hog's
 * last reading: that gap holds the timer's interrupt, the signal's
 * delivery, the handler, the move of its frame, rf__preempted(), the trip
 * through the worker's loop and the switch; not the timer's own lateness
 * (the hog runs on meanwhile), and at most one loop iteration too much.
 * Only the competitor's first turn after the hog ran is timed: a
 * preempted hog waits until a pass of the loop finds nothing else ready,
 * or for a slice, so an always-ready competitor runs many turns before
 * the hog's next one.  preempt_resume_ns is the way back: from just
 * before the competitor's last rf_yield() to the hog's first reading
 * after it: the loop's pass that gives the hog its turn, a switch and the
 * trampoline's rt_sigreturn.  Each figure is the mean over PREEMPT_COUNT
 * timed preemptions (or those of PREEMPT_MAX_NS), the best (lowest) mean
 * of TRIALS runs (preempt_p50_ns: the best median); each timed turn must
 * have followed a preemption (stats.preemptions says so).
 */
#define PREEMPT_COUNT 2000
#define PREEMPT_MAX_NS (500 * 1000 * 1000.0)
#define PREEMPT_MIN_TIMED 10

#if defined(__x86_64__)
#define HAVE_CYCLES 1
static inline uint64_t cycles(void)
{
	return __rdtsc();
}
#elif defined(__aarch64__)
#define HAVE_CYCLES 1
static inline uint64_t cycles(void)
{
	uint64_t v;

	__asm__ __volatile__("isb; mrs %0, cntvct_el0" : "=r"(v) : : "memory");
	return v;
}
#else
#define HAVE_CYCLES 0
static inline uint64_t cycles(void)
{
	return 0;
}
#endif

struct preempt_bench {
	long want;			/* preemptions to time */
	/* the two fibers', on one worker: volatile is enough */
	volatile uint64_t hog_last;	/* the hog's latest reading */
	volatile uint64_t yield_at;	/* the competitor's, before its rf_yield() */
	volatile long runs;		/* competitor runs that followed a preemption */
	volatile int hog_started, stop;
	uint64_t end;			/* cycles: the competitor stops here */
	uint64_t out_cycles, back_cycles;
	uint64_t out[PREEMPT_COUNT];	/* each timed preemption, for the median */
	long out_n, back_n;
	uint64_t preemptions;		/* stats.preemptions over the run */
	bool supported;			/* RF_FEAT_PREEMPT */
	int err;
};

static void *preempt_hog(void *arg)
{
	struct preempt_bench *b = arg;
	long seen = 0, runs;
	uint64_t t;

	b->hog_started = 1;
	while (!b->stop) {
		/* runs first: a reading after it is later than its yield_at */
		runs = b->runs;
		t = cycles();
		if (runs != seen) {
			b->back_cycles += t - b->yield_at;
			b->back_n++;
			seen = runs;
		}
		b->hog_last = t;
	}
	return NULL;
}

static void *preempt_competitor(void *arg)
{
	struct preempt_bench *b = arg;
	uint64_t t;

	for (;;) {
		t = cycles();
		/*
		 * The hog has run since our last turn, and it never yields: we
		 * run because it was preempted.  (The turns before the hog's
		 * next one, while it waits for the worker, are not timed.)
		 */
		if (b->hog_started && b->hog_last > b->yield_at) {
			b->out_cycles += t - b->hog_last;
			b->out[b->out_n++] = t - b->hog_last;
			b->runs++;
		}
		if (b->hog_started && (b->out_n == b->want || t > b->end))
			break;
		b->yield_at = cycles();
		rf_yield();
	}
	b->stop = 1;
	return NULL;
}

static void *preempt_main(void *arg)
{
	struct preempt_bench *b = arg;
	struct rf_fiber *hog, *competitor;
	struct rf_stats s0, s1;

	rf_runtime_stats(NULL, &s0);
	b->supported = s0.features & RF_FEAT_PREEMPT;
	if (!b->supported)
		return NULL;
	if ((b->err = rf_spawn(&hog, preempt_hog, b, NULL)))
		return NULL;
	if ((b->err = rf_spawn(&competitor, preempt_competitor, b, NULL))) {
		b->stop = 1;
		rf_join(hog, NULL, RF_NO_DEADLINE);
		return NULL;
	}
	rf_join(competitor, NULL, RF_NO_DEADLINE);
	rf_join(hog, NULL, RF_NO_DEADLINE);
	rf_runtime_stats(NULL, &s1);
	b->preemptions = s1.preemptions - s0.preemptions;
	return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* ns per cycle-counter tick, against CLOCK_MONOTONIC over 50 ms. */
static double cycle_ns(void)
{
	double t0 = now_ns(), t1;
	uint64_t c0 = cycles(), c1;

	do {
		t1 = now_ns();
		c1 = cycles();
	} while (t1 - t0 < 50e6);
	return c1 > c0 ? (t1 - t0) / (double)(c1 - c0) : 0;
}

static void preempt_figures(void)
{
	const struct rf_runtime_opts opts = {
		.workers = 1,
		.hog_ns = 1000 * 1000,
	};
	double out = 1e30, p50 = 1e30, back = 1e30;
	double per_tick = HAVE_CYCLES ? cycle_ns() : 0;
	static struct preempt_bench b;	/* its samples: too big for the stack */
	struct rf_runtime *rt;
	const char *why = NULL;
	int ret, timed = 0;

	if (per_tick <= 0)
		why = "no cycle counter read here (x86_64 and aarch64 only)";
	for (int t = 0; t < TRIALS && !why; t++) {
		memset(&b, 0, sizeof(b));
		b.want = PREEMPT_COUNT / scale;
		/* not scaled by --quick: on a loaded machine few are timed */
		b.end = cycles() + (uint64_t)(PREEMPT_MAX_NS / per_tick);
		if ((ret = rf_runtime_create(&rt, &opts)))
			die("preempt: runtime", ret);
		ret = rf_runtime_run(rt, preempt_main, &b, NULL);
		rf_runtime_destroy(rt);
		if (ret || b.err)
			die("preempt", ret ? ret : b.err);
		if (!b.supported)
			why = "no preemption here (RF_FEAT_PREEMPT: TSan, a static libc)";
		else if (b.preemptions < (uint64_t)b.out_n || !b.back_n)
			why = "the hog ran on without a preemption";
		else if (b.out_n >= PREEMPT_MIN_TIMED) {
			timed++;
			out = best(out, b.out_cycles * per_tick / b.out_n);
			qsort(b.out, b.out_n, sizeof(b.out[0]), cmp_u64);
			p50 = best(p50, b.out[b.out_n / 2] * per_tick);
			back = best(back, b.back_cycles * per_tick / b.back_n);
		}
	}
	if (!why && !timed)
		why = "too few preemptions timed";
	if (why) {
		add_na("preempt_ns", "ns", why);
		add_na("preempt_p50_ns", "ns", why);
		add_na("preempt_resume_ns", "ns", why);
		return;
	}
	add("preempt_ns", out, "ns");
	add("preempt_p50_ns", p50, "ns");
	add("preempt_resume_ns", back, "ns");
}

/* ------------------------------------------------- multi-core figures */
/*
 * Everything below runs two workers pinned to CPUs 0 and 1 (or, for the
 * one-worker half of steal_speedup, one worker on CPU 0 or CPU 1).
 */
static const int cpus01[2] = { 0, 1 };

/* Why CPUs 0 and 1 cannot both be used here, or NULL when they can. */
static const char *cross_cpu_why(void)
{
	cpu_set_t set;

	if (sysconf(_SC_NPROCESSORS_ONLN) < 2)
		return "fewer than 2 CPUs online";
	if (sched_getaffinity(0, sizeof(set), &set) == 0 &&
	    (!CPU_ISSET(0, &set) || !CPU_ISSET(1, &set)))
		return "CPUs 0 and 1 are not both in this process's affinity mask";
	return NULL;
}

static struct rf_runtime_opts two_workers(unsigned int backend, int64_t idle_spin_ns)
{
	return (struct rf_runtime_opts){
		.workers = 2,
		.cpus = cpus01,
		.ncpus = 2,
		.wake_backend = backend,
		.idle_spin_ns = idle_spin_ns,
	};
}

/*
 * Runs @fn as the main fiber of a fresh runtime made with @opts; the stats
 * of the whole run go to @st if not NULL.  rf_runtime_create()'s error is
 * returned as is (-EOPNOTSUPP: the kernel lacks the wake back-end).
 */
static int run_mc(rf_fn fn, void *arg, int *err, const struct rf_runtime_opts *opts,
		  struct rf_stats *st)
{
	struct rf_runtime *rt;
	int ret = rf_runtime_create(&rt, opts);

	if (ret)
		return ret;
	ret = rf_runtime_run(rt, fn, arg, NULL);
	if (!ret && st)
		ret = rf_runtime_stats(rt, st);
	rf_runtime_destroy(rt);
	return ret ? ret : *err;
}

/* ---- wake_<be>_ns: an rf_sem ping-pong between workers 0 and 1 */
#define WAKE_WARMUP 100
/*
 * Timed round trips per trial: fewer where each side sleeps in the kernel
 * (microseconds a trip) than where idle workers spin (a fraction of one).
 */
#define SPIN_ROUNDS 100000
#define SLEEPY_ROUNDS 2000

struct wake_bench {
	long n;				/* timed round trips */
	struct rf_sem ping, pong;	/* 0 -> 1, 1 -> 0 */
	struct rf_fiber *a, *b;
	double ns;			/* one direction */
	uint64_t remote_wakes, wake_calls;
	unsigned int backend;		/* what the runtime reports it uses */
	int err;
};

/* Either side, on an error: stop the other rather than leave it parked. */
static void *wake_fail(struct wake_bench *b, struct rf_fiber *peer, int err)
{
	if (!b->err)
		b->err = err;
	if (peer)
		rf_cancel(peer);
	return NULL;
}

static void *wake_side_a(void *arg)	/* worker 0: serves, times */
{
	struct wake_bench *b = arg;
	struct rf_stats s0 = { 0 }, s1;
	double t0 = 0;
	int err;

	for (long i = 0; i < WAKE_WARMUP + b->n; i++) {
		if (i == WAKE_WARMUP) {
			rf_runtime_stats(NULL, &s0);
			t0 = now_ns();
		}
		if ((err = rf_sem_release(&b->ping)) ||
		    (err = rf_sem_acquire(&b->pong, RF_NO_DEADLINE)))
			return wake_fail(b, b->b, err);
	}
	b->ns = (now_ns() - t0) / (2.0 * b->n);
	rf_runtime_stats(NULL, &s1);
	b->remote_wakes = s1.remote_wakes - s0.remote_wakes;
	b->wake_calls = s1.wake_calls - s0.wake_calls;
	b->backend = s1.wake_backend;
	return NULL;
}

static void *wake_side_b(void *arg)	/* worker 1: returns the ball */
{
	struct wake_bench *b = arg;
	int err;

	for (long i = 0; i < WAKE_WARMUP + b->n; i++)
		if ((err = rf_sem_acquire(&b->ping, RF_NO_DEADLINE)) ||
		    (err = rf_sem_release(&b->pong)))
			return wake_fail(b, b->a, err);
	return NULL;
}

static void *wake_main(void *arg)
{
	struct wake_bench *b = arg;
	struct rf_spawn_attr attr = { .name = "ping", .pinned = 1 };
	int err;

	/* a cannot run before b exists: it is queued behind us on worker 0 */
	if ((b->err = rf_spawn_on(0, &b->a, wake_side_a, b, &attr)))
		return NULL;
	attr.name = "pong";
	if ((err = rf_spawn_on(1, &b->b, wake_side_b, b, &attr))) {
		wake_fail(b, b->a, err);
		b->b = NULL;
	}
	rf_join(b->a, NULL, RF_NO_DEADLINE);
	if (b->b)
		rf_join(b->b, NULL, RF_NO_DEADLINE);
	return NULL;
}

/* ---- thread_wake_ns: the same ping-pong between two pthreads */
/*
 * Runs @side_a and @side_b on two threads pinned to @cpus[0] and @cpus[1].
 * Returns 0 or a negative errno (the threads could not be made or pinned).
 */
static int thread_pair(void *(*side_a)(void *), void *(*side_b)(void *), void *arg,
		       const int cpus[2])
{
	void *(*side[2])(void *) = { side_a, side_b };
	pthread_t th[2];
	int ret = 0, started = 0;

	for (int i = 0; i < 2 && !ret; i++) {
		pthread_attr_t attr;
		cpu_set_t set;

		CPU_ZERO(&set);
		CPU_SET(cpus[i], &set);
		if ((ret = pthread_attr_init(&attr)))
			break;
		ret = pthread_attr_setaffinity_np(&attr, sizeof(set), &set);
		if (!ret)
			ret = pthread_create(&th[i], &attr, side[i], arg);
		pthread_attr_destroy(&attr);
		if (!ret)
			started++;
	}
	if (ret && started) {
		/* side a alone would wait forever: play side b's part here */
		side_b(arg);
	}
	for (int i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	return -ret;
}

static int thread_pingpong(struct futex_pingpong *b)
{
	return thread_pair(futex_pingpong_a, futex_pingpong_b, b, cpus01);
}

/* ---- wake_<be>_pool_ns: a thread with no ring wakes a sleeping worker */
/*
 * An rf_blocking() pool thread (pinned to CPU 1: no ring of its own, as any
 * application thread) releases an rf_sem a fiber waits on, on the one worker
 * (CPU 0, never spinning, so each release wakes it through the back-end);
 * the fiber answers through a futex (thread_post), the same for every
 * back-end.  The pool job keeps the run from looking deadlocked.
 */
struct pool_bench {
	long n;				/* timed round trips */
	struct rf_sem ping;		/* pool thread -> fiber */
	struct {
		uint32_t word;
	} __attribute__((aligned(64))) pong;	/* fiber -> pool thread */
	double ns;			/* one direction */
	int err;
};

static void *pool_side_fiber(void *arg)
{
	struct pool_bench *b = arg;

	for (long i = 0; i < WAKE_WARMUP + b->n; i++) {
		int err = rf_sem_acquire(&b->ping, RF_NO_DEADLINE);

		if (err && !b->err)
			b->err = err;
		/* answer even after a failure: the thread must not wait forever */
		thread_post(&b->pong.word);
	}
	return NULL;
}

static void *pool_side_thread(void *arg)
{
	struct pool_bench *b = arg;
	cpu_set_t set, old;
	bool restore = pthread_getaffinity_np(pthread_self(), sizeof(old), &old) == 0;
	double t0 = 0;
	int err;

	CPU_ZERO(&set);
	CPU_SET(cpus01[1], &set);
	err = pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
	for (long i = 0; i < WAKE_WARMUP + b->n; i++) {
		if (i == WAKE_WARMUP)
			t0 = now_ns();
		rf_sem_release(&b->ping);
		thread_take(&b->pong.word);
	}
	b->ns = (now_ns() - t0) / (2.0 * b->n);
	if (err && !b->err)
		b->err = -err;
	/* the pool thread goes back to the pool as it came */
	if (restore)
		pthread_setaffinity_np(pthread_self(), sizeof(old), &old);
	return NULL;
}

static void *pool_main(void *arg)
{
	struct pool_bench *b = arg;
	struct rf_spawn_attr attr = { .name = "pool-pong", .pinned = 1 };
	struct rf_fiber *f;
	int err;

	if ((b->err = rf_spawn(&f, pool_side_fiber, b, &attr)))
		return NULL;
	if ((err = rf_blocking(pool_side_thread, b, NULL))) {
		b->err = err;
		rf_cancel(f);
	}
	rf_join(f, NULL, RF_NO_DEADLINE);
	return NULL;
}

/* ---- chan_ns: rf_chan from worker 0 to worker 1 */
#define CHAN_CAPACITY 64
#define CHAN_MESSAGES 1000000

struct chan_bench {
	long n;
	struct rf_chan *ch;
	double t0, t1;
	int err;
};

static void *chan_producer(void *arg)
{
	struct chan_bench *b = arg;
	int err;

	b->t0 = now_ns();
	for (long i = 1; i <= b->n; i++) {
		if ((err = rf_chan_send(b->ch, (void *)(uintptr_t)i, RF_NO_DEADLINE))) {
			if (!b->err)
				b->err = err;
			rf_chan_close(b->ch);	/* the consumer drains, then stops */
			break;
		}
	}
	return NULL;
}

static void *chan_consumer(void *arg)
{
	struct chan_bench *b = arg;
	void *v;
	int err;

	for (long i = 1; i <= b->n; i++) {
		if ((err = rf_chan_recv(b->ch, &v, RF_NO_DEADLINE)) ||
		    (err = (uintptr_t)v == (uintptr_t)i ? 0 : -EPROTO)) {
			/* -EPROTO: a value lost, duplicated or out of order */
			if (!b->err)
				b->err = err;
			rf_chan_close(b->ch);	/* the producer's send fails */
			return NULL;
		}
	}
	b->t1 = now_ns();
	return NULL;
}

static void *chan_main(void *arg)
{
	struct chan_bench *b = arg;
	struct rf_spawn_attr attr = { .name = "producer", .pinned = 1 };
	struct rf_fiber *p, *c;

	if ((b->err = rf_chan_create(&b->ch, CHAN_CAPACITY)))
		return NULL;
	if ((b->err = rf_spawn_on(0, &p, chan_producer, b, &attr)))
		goto out;
	attr.name = "consumer";
	if ((b->err = rf_spawn_on(1, &c, chan_consumer, b, &attr))) {
		rf_cancel(p);
		rf_join(p, NULL, RF_NO_DEADLINE);
		goto out;
	}
	rf_join(p, NULL, RF_NO_DEADLINE);
	rf_join(c, NULL, RF_NO_DEADLINE);
out:
	rf_chan_destroy(b->ch);
	return NULL;
}

/* ---- steal_speedup: CPU-bound fibers on one worker, then on two */
#define STEAL_FIBERS 64
#define STEAL_CHUNK_NS 50000		/* work between two rf_yield calls */
#define STEAL_TOTAL_NS 500000000	/* all the work, on one worker */

struct steal_bench {
	long chunks;			/* per fiber */
	long iters;			/* per chunk */
	double ns;
	int err;
};

/* Arithmetic the compiler can neither drop nor fold: a 64-bit LCG. */
static uint64_t crunch(uint64_t x, long iters)
{
	for (long i = 0; i < iters; i++) {
		x = x * 6364136223846793005ull + 1442695040888963407ull;
		__asm__ __volatile__("" : "+r"(x));
	}
	return x;
}

/* Iterations of crunch() in STEAL_CHUNK_NS on this CPU (fastest of five). */
static long crunch_calibrate(void)
{
	const long iters = 200000;
	double t, fastest = 1e30;

	for (int i = 0; i < 5; i++) {
		t = now_ns();
		crunch(i, iters);
		t = now_ns() - t;
		fastest = t < fastest ? t : fastest;
	}
	return (long)(iters * STEAL_CHUNK_NS / fastest) + 1;
}

static void *cruncher(void *arg)
{
	struct steal_bench *b = arg;
	uint64_t x = (uintptr_t)rf_self();

	for (long i = 0; i < b->chunks; i++) {
		x = crunch(x, b->iters);
		rf_yield();
	}
	return (void *)(uintptr_t)x;
}

static void *steal_main(void *arg)
{
	struct steal_bench *b = arg;
	struct rf_fiber *f[STEAL_FIBERS];
	int n = 0;
	double t0 = now_ns();

	/* on this worker (0), stealable: an idle worker may take them */
	for (; n < STEAL_FIBERS; n++)
		if ((b->err = rf_spawn(&f[n], cruncher, b, NULL)))
			break;
	for (int i = 0; i < n; i++)
		rf_join(f[i], NULL, RF_NO_DEADLINE);
	b->ns = now_ns() - t0;
	return NULL;
}

/* ---- rfwake: the device the rfwake figures need */
static char rfwake_why_buf[160];

/* Why /dev/rfwake cannot be used here, or NULL when it can. */
static const char *rfwake_why(void)
{
	struct rfwake_info info = { .abi_version = 0 };
	const char *why = NULL;
	int fd = open("/dev/" RFWAKE_DEVICE_NAME, O_RDWR | O_CLOEXEC);

	if (fd < 0) {
		if (errno == ENOENT)
			return "no /dev/rfwake: the rfwake module is not loaded";
		snprintf(rfwake_why_buf, sizeof(rfwake_why_buf), "/dev/rfwake: %s",
			 strerror(errno));
		return rfwake_why_buf;
	}
	if (ioctl(fd, RFWAKE_IOC_INFO, &info) < 0) {
		snprintf(rfwake_why_buf, sizeof(rfwake_why_buf), "RFWAKE_IOC_INFO: %s",
			 strerror(errno));
		why = rfwake_why_buf;
	} else if (info.abi_version != RFWAKE_ABI_VERSION) {
		snprintf(rfwake_why_buf, sizeof(rfwake_why_buf),
			 "/dev/rfwake speaks ABI %u, rf-bench %d", info.abi_version,
			 RFWAKE_ABI_VERSION);
		why = rfwake_why_buf;
	}
	close(fd);
	return why;
}

/* ---- handoff_*: one OS thread handing the CPU to another */
/*
 * Side a wakes b and waits; b, woken, wakes a and waits; and so on.  With
 * rfwake each step is one RFWAKE_IOC_SWAP; with futexes it is thread_post()
 * (FUTEX_WAKE) then thread_take() (FUTEX_WAIT), the peer of thread_wake_ns.
 * No wait has a deadline, as no futex wait has one: a deadline arms an
 * hrtimer for every wait, which is not what is being compared.  A side that
 * fails unregisters both waiters instead, so the other's wait ends with
 * -EIDRM rather than never.  Each wait must return exactly one wake
 * (count 1): anything else is a lost or duplicated hand-off (-EPROTO).
 */

enum { HO_FUTEX, HO_SWAP, HO_NOSYNC, NHO };
enum { PIN_SAME, PIN_CROSS, NPIN };

struct swap_bench {
	int fd;				/* the rfwake domain */
	uint32_t id[2];			/* the waiters of sides a and b */
	uint32_t flags;			/* 0 or RFWAKE_SWAP_NOSYNC */
	long n;				/* timed round trips */
	double ns;			/* one direction */
	int err;			/* the first failure */
};

/* An rfwake ioctl, restarted on a signal: >= 0 or a negative errno. */
static int rfwake_ioctl(int fd, unsigned long req, void *arg)
{
	int ret;

	do
		ret = ioctl(fd, req, arg);
	while (ret < 0 && errno == EINTR);
	return ret < 0 ? -errno : ret;
}

static void swap_fail(struct swap_bench *b, int err)
{
	if (!__atomic_compare_exchange_n(&b->err, &(int){ 0 }, err, false, __ATOMIC_RELAXED,
					 __ATOMIC_RELAXED))
		return;		/* the other side failed first: it unregistered */
	for (int i = 0; i < 2; i++) {
		struct rfwake_unregister u = { .id = b->id[i] };

		rfwake_ioctl(b->fd, RFWAKE_IOC_UNREGISTER, &u);
	}
}

/* Wake side @to, wait on side @me: one SWAP.  0 or a negative errno. */
static int swap_once(struct swap_bench *b, int me, int to)
{
	struct rfwake_swap s = {
		.wake_id = b->id[to],
		.wait_id = b->id[me],
		.flags = b->flags,
	};
	int ret = rfwake_ioctl(b->fd, RFWAKE_IOC_SWAP, &s);

	if (ret < 0)
		return ret;
	return s.count == 1 ? 0 : -EPROTO;
}

static void *swap_side_a(void *arg)
{
	struct swap_bench *b = arg;
	double t0 = 0;
	int err;

	for (long i = 0; i < WAKE_WARMUP + b->n; i++) {
		if (i == WAKE_WARMUP)
			t0 = now_ns();
		if ((err = swap_once(b, 0, 1))) {
			swap_fail(b, err);
			return NULL;
		}
	}
	b->ns = (now_ns() - t0) / (2.0 * b->n);
	return NULL;
}

static void *swap_side_b(void *arg)
{
	struct swap_bench *b = arg;
	struct rfwake_wait w = { .id = b->id[1] };
	struct rfwake_target last = { .id = b->id[0] };
	int err = rfwake_ioctl(b->fd, RFWAKE_IOC_WAIT, &w);

	if (!err && w.count != 1)
		err = -EPROTO;
	for (long i = 1; !err && i < WAKE_WARMUP + b->n; i++)
		err = swap_once(b, 1, 0);
	/* a's last SWAP waits for this one */
	if (!err)
		err = rfwake_ioctl(b->fd, RFWAKE_IOC_WAKE, &last) < 0 ? -errno : 0;
	if (err)
		swap_fail(b, err);
	return NULL;
}

/* The domain and its two waiters; the fd, or a negative errno. */
static int swap_domain(uint32_t id[2])
{
	int fd = open("/dev/" RFWAKE_DEVICE_NAME, O_RDWR | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	for (int i = 0; i < 2; i++) {
		struct rfwake_register reg = { .flags = 0 };
		int ret = rfwake_ioctl(fd, RFWAKE_IOC_REGISTER, &reg);

		if (ret < 0) {
			close(fd);
			return ret;
		}
		id[i] = reg.id;
	}
	return fd;
}

static void handoff(void)
{
	static const char *const ns_names[NHO][NPIN] = {
		[HO_FUTEX] = { "handoff_futex_samecpu_ns", "handoff_futex_crosscpu_ns" },
		[HO_SWAP] = { "handoff_rfwake_swap_samecpu_ns", "handoff_rfwake_swap_crosscpu_ns" },
		[HO_NOSYNC] = { "handoff_rfwake_nosync_samecpu_ns",
				"handoff_rfwake_nosync_crosscpu_ns" },
	};
	static const char *const swap_vs_futex[NPIN] = { "handoff_swap_vs_futex_samecpu",
							  "handoff_swap_vs_futex_crosscpu" };
	static const char *const sync_vs_nosync[NPIN] = { "handoff_sync_vs_nosync_samecpu",
							   "handoff_sync_vs_nosync_crosscpu" };
	static const int cpus00[2] = { 0, 0 };
	static char fail_why[NHO][NPIN][96];
	static char domain_why[128];
	const int *pin_cpus[NPIN] = { cpus00, cpus01 };
	double ns[NHO][NPIN];
	const char *na[NHO][NPIN];
	const char *rf_why = rfwake_why();
	struct swap_bench sb = { .fd = -1 };
	cpu_set_t set;

	for (int p = 0; p < NPIN; p++)
		for (int h = 0; h < NHO; h++) {
			ns[h][p] = 1e30;
			na[h][p] = NULL;
		}
	if (sched_getaffinity(0, sizeof(set), &set) == 0 && !CPU_ISSET(0, &set))
		for (int h = 0; h < NHO; h++)
			na[h][PIN_SAME] = "CPU 0 is not in this process's affinity mask";
	for (int h = 0; h < NHO; h++)
		if (!na[h][PIN_CROSS])
			na[h][PIN_CROSS] = cross_cpu_why();
	if (!rf_why) {
		sb.fd = swap_domain(sb.id);
		if (sb.fd < 0) {
			snprintf(domain_why, sizeof(domain_why),
				 "a domain with two waiters: %s", strerror(-sb.fd));
			rf_why = domain_why;
		}
	}
	for (int p = 0; p < NPIN; p++)
		for (int h = HO_SWAP; h < NHO; h++)
			if (!na[h][p])
				na[h][p] = rf_why;

	/* the methods interleaved in every trial: like compared with like */
	for (int t = 0; t < TRIALS; t++) {
		for (int p = 0; p < NPIN; p++) {
			for (int h = 0; h < NHO; h++) {
				int ret;

				if (na[h][p])
					continue;
				if (h == HO_FUTEX) {
					struct futex_pingpong tb = { .n = SLEEPY_ROUNDS / scale, .warmup = WAKE_WARMUP };

					ret = thread_pair(futex_pingpong_a, futex_pingpong_b, &tb,
							  pin_cpus[p]);
					if (!ret)
						ns[h][p] = best(ns[h][p], tb.ns);
				} else {
					sb.n = SLEEPY_ROUNDS / scale;
					sb.flags = h == HO_NOSYNC ? RFWAKE_SWAP_NOSYNC : 0;
					sb.err = 0;
					ret = thread_pair(swap_side_a, swap_side_b, &sb, pin_cpus[p]);
					if (!ret)
						ret = sb.err;
					if (sb.err) {
						/* its waiters are gone: a new domain for the rest */
						close(sb.fd);
						sb.fd = swap_domain(sb.id);
						if (sb.fd < 0)
							for (int q = 0; q < NPIN; q++)
								for (int k = HO_SWAP; k < NHO; k++)
									if (!na[k][q])
										na[k][q] = "no new rfwake domain after a failure";
					}
					if (!ret)
						ns[h][p] = best(ns[h][p], sb.ns);
				}
				if (ret) {
					snprintf(fail_why[h][p], sizeof(fail_why[h][p]), "%s: %s",
						 h == HO_FUTEX ? "pinning two threads" :
						 "RFWAKE_IOC_SWAP ping-pong", strerror(-ret));
					na[h][p] = fail_why[h][p];
				}
			}
		}
	}
	if (sb.fd >= 0)
		close(sb.fd);

	for (int p = 0; p < NPIN; p++) {
		for (int h = 0; h < NHO; h++) {
			if (na[h][p])
				add_na(ns_names[h][p], "ns", na[h][p]);
			else
				add(ns_names[h][p], ns[h][p], "ns");
		}
		if (na[HO_SWAP][p] || na[HO_FUTEX][p])
			add_na(swap_vs_futex[p], "x", na[HO_SWAP][p] ? na[HO_SWAP][p] :
			       na[HO_FUTEX][p]);
		else
			add(swap_vs_futex[p], ns[HO_SWAP][p] / ns[HO_FUTEX][p], "x");
		if (na[HO_SWAP][p] || na[HO_NOSYNC][p])
			add_na(sync_vs_nosync[p], "x", na[HO_SWAP][p] ? na[HO_SWAP][p] :
			       na[HO_NOSYNC][p]);
		else
			add(sync_vs_nosync[p], ns[HO_SWAP][p] / ns[HO_NOSYNC][p], "x");
	}
}

/* ---- driving them */
enum { BE_MSGRING, BE_EVENTFD, BE_FUTEX, BE_RFWAKE, NBE };

static const struct backend {
	unsigned int id;		/* RF_WAKE_* */
	const char *lacks;		/* the n/a reason for -EOPNOTSUPP */
} backends[NBE] = {
	[BE_MSGRING] = { RF_WAKE_MSG_RING, "the kernel lacks IORING_OP_MSG_RING (Linux 5.18)" },
	[BE_EVENTFD] = { RF_WAKE_EVENTFD, "the runtime refused the eventfd back-end" },
	[BE_FUTEX] = { RF_WAKE_FUTEX, "the kernel lacks IORING_OP_FUTEX_WAIT (Linux 6.7)" },
	/* rfwake_why() says more when it can */
	[BE_RFWAKE] = { RF_WAKE_RFWAKE, "the runtime found no working /dev/rfwake" },
};

/* Each back-end under each idle policy: the figures' names. */
static const struct wake_case {
	int be;
	int64_t idle_spin_ns;
	const char *ns_name, *frac_name;
} wake_cases[] = {
	{ BE_MSGRING, 0, "wake_msgring_ns", "wake_msgring_syscall_frac" },
	{ BE_MSGRING, -1, "wake_msgring_nospin_ns", "wake_msgring_nospin_syscall_frac" },
	{ BE_EVENTFD, 0, "wake_eventfd_ns", "wake_eventfd_syscall_frac" },
	{ BE_EVENTFD, -1, "wake_eventfd_nospin_ns", "wake_eventfd_nospin_syscall_frac" },
	{ BE_FUTEX, 0, "wake_futex_ns", "wake_futex_syscall_frac" },
	{ BE_FUTEX, -1, "wake_futex_nospin_ns", "wake_futex_nospin_syscall_frac" },
	{ BE_RFWAKE, 0, "wake_rfwake_ns", "wake_rfwake_syscall_frac" },
	{ BE_RFWAKE, -1, "wake_rfwake_nospin_ns", "wake_rfwake_nospin_syscall_frac" },
};
#define NWAKE (sizeof(wake_cases) / sizeof(wake_cases[0]))

struct wake_result {
	double ns;
	uint64_t remote_wakes, wake_calls;	/* summed over the trials */
	const char *na;
};

static const char *const pool_names[NBE] = {
	[BE_MSGRING] = "wake_msgring_pool_ns",
	[BE_EVENTFD] = "wake_eventfd_pool_ns",
	[BE_FUTEX] = "wake_futex_pool_ns",
	[BE_RFWAKE] = "wake_rfwake_pool_ns",
};

/* Why back-end @be cannot be measured (rf_runtime_create() said -EOPNOTSUPP). */
static const char *backend_lacks(int be)
{
	if (be == BE_RFWAKE && rfwake_why())
		return rfwake_why();
	return backends[be].lacks;
}

/* The back-end RF_WAKE_AUTO picks here, as rf_stats reports it. */
static void *report_backend(void *arg)
{
	struct rf_stats st;
	int ret = rf_runtime_stats(NULL, &st);

	*(unsigned int *)arg = ret ? RF_WAKE_NR : st.wake_backend;
	return NULL;
}

static void multicore(void)
{
	struct wake_result wr[NWAKE], pr[NBE];
	double thread_ns = 1e30, chan = 1e30, steal_t[2] = { 1e30, 1e30 };
	uint64_t steals = 0, hogs = 0;
	unsigned int auto_be = RF_WAKE_NR;
	const char *why = cross_cpu_why();
	const char *thread_na = NULL;
	long steal_iters = 0;
	int noerr = 0, ret;

	for (size_t c = 0; c < NWAKE; c++)
		wr[c] = (struct wake_result){ .ns = 1e30, .na = why };
	for (int be = 0; be < NBE; be++)
		pr[be] = (struct wake_result){ .ns = 1e30, .na = why };
	if (!why) {
		struct rf_runtime_opts o = two_workers(RF_WAKE_AUTO, 0);

		if ((ret = run_mc(report_backend, &auto_be, &noerr, &o, NULL)))
			die("default wake back-end", ret);
		steal_iters = crunch_calibrate();
	}
	for (int t = 0; !why && t < TRIALS; t++) {
		struct futex_pingpong tb = { .n = SLEEPY_ROUNDS / scale, .warmup = WAKE_WARMUP };
		struct chan_bench cb = { .n = CHAN_MESSAGES / scale };
		struct rf_runtime_opts o;

		for (size_t c = 0; c < NWAKE; c++) {
			const struct wake_case *wc = &wake_cases[c];
			struct wake_bench b = {
				.n = (wc->idle_spin_ns < 0 ? SLEEPY_ROUNDS : SPIN_ROUNDS) / scale,
			};

			if (wr[c].na)
				continue;
			o = two_workers(backends[wc->be].id, wc->idle_spin_ns);
			ret = run_mc(wake_main, &b, &b.err, &o, NULL);
			if (ret == -EOPNOTSUPP && t == 0) {
				wr[c].na = backend_lacks(wc->be);
				continue;
			}
			if (ret)
				die(wc->ns_name, ret);
			if (b.backend != backends[wc->be].id) {
				fprintf(stderr, "rf-bench: %s: asked for wake back-end %u, "
					"the runtime reports %u\n", wc->ns_name,
					backends[wc->be].id, b.backend);
				exit(1);
			}
			wr[c].ns = best(wr[c].ns, b.ns);
			wr[c].remote_wakes += b.remote_wakes;
			wr[c].wake_calls += b.wake_calls;
		}

		for (int be = 0; be < NBE; be++) {
			struct pool_bench pb = { .n = SLEEPY_ROUNDS / scale };
			struct rf_runtime_opts po = {
				.workers = 1,
				.cpus = cpus01,
				.ncpus = 1,
				.wake_backend = backends[be].id,
				.idle_spin_ns = -1,
			};
			struct rf_stats st;

			if (pr[be].na)
				continue;
			ret = run_mc(pool_main, &pb, &pb.err, &po, &st);
			if (ret == -EOPNOTSUPP && t == 0) {
				pr[be].na = backend_lacks(be);
				continue;
			}
			if (ret)
				die(pool_names[be], ret);
			if (st.wake_backend != backends[be].id) {
				fprintf(stderr, "rf-bench: %s: asked for wake back-end %u, "
					"the runtime reports %u\n", pool_names[be],
					backends[be].id, st.wake_backend);
				exit(1);
			}
			pr[be].ns = best(pr[be].ns, pb.ns);
		}

		if (!thread_na) {
			if ((ret = thread_pingpong(&tb))) {
				/* could not pin two threads to CPUs 0 and 1 */
				thread_na = "no pthread could be pinned to CPU 0 or 1";
			} else {
				thread_ns = best(thread_ns, tb.ns);
			}
		}

		o = two_workers(RF_WAKE_AUTO, 0);
		if ((ret = run_mc(chan_main, &cb, &cb.err, &o, NULL)))
			die("chan", ret);
		chan = best(chan, (cb.t1 - cb.t0) / cb.n);
	}
	/*
	 * The one-worker run alternates between CPU 0 and CPU 1: one of them
	 * may be busy with something else for a while (another program pinned
	 * there, a vCPU its host shares), and the baseline is what one worker
	 * does on a CPU of its own.
	 */
	for (int t = 0; !why && t < TRIALS; t++) {
		for (unsigned int w = 1; w <= 2; w++) {
			struct steal_bench sb = {
				.chunks = STEAL_TOTAL_NS / scale / STEAL_FIBERS / STEAL_CHUNK_NS,
				.iters = steal_iters,
			};
			struct rf_runtime_opts o = {
				.workers = w,
				.cpus = w == 1 ? &cpus01[t % 2] : cpus01,
				.ncpus = w,
			};
			struct rf_stats st;

			if ((ret = run_mc(steal_main, &sb, &sb.err, &o, &st)))
				die("steal", ret);
			if (sb.ns < steal_t[w - 1]) {
				steal_t[w - 1] = sb.ns;
				if (w == 2)
					steals = st.steals;
			}
			hogs += st.hogs;
		}
	}
	if (hogs)
		fprintf(stderr, "rf-bench: steal_speedup: the watchdog reported %llu hog(s) "
			"in fibers that yield every %d us\n", (unsigned long long)hogs,
			STEAL_CHUNK_NS / 1000);

	for (size_t c = 0; c < NWAKE; c++) {
		const struct wake_case *wc = &wake_cases[c];

		if (wr[c].na) {
			add_na(wc->ns_name, "ns", wr[c].na);
			add_na(wc->frac_name, "fraction", wr[c].na);
			continue;
		}
		add(wc->ns_name, wr[c].ns, "ns");
		if (wr[c].remote_wakes)
			add(wc->frac_name, (double)wr[c].wake_calls / wr[c].remote_wakes,
			    "fraction");
		else
			add_na(wc->frac_name, "fraction", "stats counted no remote wake");
	}
	for (int be = 0; be < NBE; be++) {
		if (pr[be].na)
			add_na(pool_names[be], "ns", pr[be].na);
		else
			add(pool_names[be], pr[be].ns, "ns");
	}
	if (why || thread_na) {
		add_na("thread_wake_ns", "ns", why ? why : thread_na);
		add_na("wake_ratio", "x", why ? why : thread_na);
	} else {
		const struct wake_result *dflt = NULL;

		add("thread_wake_ns", thread_ns, "ns");
		/* the default back-end under the default idle policy */
		for (size_t c = 0; c < NWAKE; c++)
			if (backends[wake_cases[c].be].id == auto_be && !wake_cases[c].idle_spin_ns)
				dflt = &wr[c];
		if (dflt && !dflt->na)
			add("wake_ratio", dflt->ns / thread_ns, "x");
		else
			add_na("wake_ratio", "x", "the default back-end was not measured");
	}
	if (why) {
		add_na("chan_ns", "ns", why);
		add_na("steal_speedup", "x", why);
		add_na("steal_count", "steals", why);
		add_na("steal_1worker_ms", "ms", why);
		add_na("steal_2workers_ms", "ms", why);
	} else {
		add("chan_ns", chan, "ns");
		add("steal_speedup", steal_t[0] / steal_t[1], "x");
		add("steal_count", (double)steals, "steals");
		add("steal_1worker_ms", steal_t[0] / 1e6, "ms");
		add("steal_2workers_ms", steal_t[1] / 1e6, "ms");
	}
}

/* ------------------------------------------------------------ --features */

static const struct {
	unsigned int bit;
	const char *name;
} feature_names[] = {
	{ RF_FEAT_RING, "ring" },
	{ RF_FEAT_SINGLE_ISSUER, "single_issuer" },
	{ RF_FEAT_DEFER_TASKRUN, "defer_taskrun" },
	{ RF_FEAT_COOP_TASKRUN, "coop_taskrun" },
	{ RF_FEAT_MULTISHOT_ACCEPT, "multishot_accept" },
	{ RF_FEAT_GUARD_MADVISE, "guard_madvise" },
	{ RF_FEAT_CQE_SKIP, "cqe_skip" },
	{ RF_FEAT_SUBMIT_ALL, "submit_all" },
	{ RF_FEAT_MSG_RING, "msg_ring" },
	{ RF_FEAT_FUTEX_WAIT, "futex_wait" },
	{ RF_FEAT_RFWAKE, "rfwake" },
	{ RF_FEAT_BUF_RING, "buf_ring" },
	{ RF_FEAT_MULTISHOT_RECV, "multishot_recv" },
	{ RF_FEAT_PREEMPT, "preempt" },
	{ RF_FEAT_BLOCK_RESCUE, "block_rescue" },
};

static const char *const wake_backend_names[] = {
	[RF_WAKE_AUTO] = "auto",
	[RF_WAKE_MSG_RING] = "msg_ring",
	[RF_WAKE_EVENTFD] = "eventfd",
	[RF_WAKE_FUTEX] = "futex",
	[RF_WAKE_RFWAKE] = "rfwake",
};

static void *features_main(void *arg)
{
	(void)arg;
	return NULL;
}

/* A default runtime, one run of nothing: its rf_stats say what it picked. */
static int print_features(bool json)
{
	struct rf_runtime *rt = NULL;
	const char *backend = "unknown";
	struct rf_stats st;
	struct utsname u;
	int ret;

	ret = rf_runtime_create(&rt, &(struct rf_runtime_opts){ .workers = 1 });
	if (!ret)
		ret = rf_runtime_run(rt, features_main, NULL, NULL);
	if (!ret)
		ret = rf_runtime_stats(rt, &st);
	rf_runtime_destroy(rt);
	if (ret) {
		fprintf(stderr, "rf-bench: --features: the runtime failed: %s\n", strerror(-ret));
		return 1;
	}
	if (uname(&u) != 0)
		strcpy(u.release, "unknown");
	if (st.wake_backend < sizeof(wake_backend_names) / sizeof(wake_backend_names[0]) &&
	    wake_backend_names[st.wake_backend])
		backend = wake_backend_names[st.wake_backend];
	if (json) {
		printf("{\"kernel\": \"%s\", \"wake_backend\": \"%s\", \"features\": {", u.release,
		       backend);
		for (size_t i = 0; i < sizeof(feature_names) / sizeof(feature_names[0]); i++)
			printf("%s\"%s\": %s", i ? ", " : "", feature_names[i].name,
			       st.features & feature_names[i].bit ? "true" : "false");
		printf("}}\n");
		return 0;
	}
	printf("kernel %s\n", u.release);
	for (size_t i = 0; i < sizeof(feature_names) / sizeof(feature_names[0]); i++)
		printf("feature_%s %s\n", feature_names[i].name,
		       st.features & feature_names[i].bit ? "yes" : "no");
	printf("wake_backend %s\n", backend);
	return 0;
}

/* On stderr with exit status 2 even after -h: what rf-bench has always done. */
static void usage(FILE *to, int status)
{
	fprintf(stderr, "usage: rf-bench [--json] [--quick] [--parked N]\n"
		"       rf-bench --features [--json]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	double rf_sw = 1e30, boost_sw = 1e30, rf_main = 1e30, boost_main_sw = 1e30;
	double yield = 1e30, sj = 1e30, nop = 1e30, epo = 0;
	/* .workers = 1: the default is one worker per CPU */
	const struct rf_runtime_opts one = { .workers = 1 };
	struct sched_bench b;
	long parked = 100000;
	const struct bench_count counts[] = { { "parked", 'p', 10000000, &parked } };
	bool json = false, quick = false;
	char *stack1, *stack2, *stack3, *stack4;
	int width = 0, ret;
	char num[32];

	/* --features [--json], in either order: nothing else goes with it */
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--features") != 0)
			continue;
		if (argc > 3 || (argc == 3 && strcmp(argv[3 - i], "--json") != 0))
			usage(stderr, 2);
		return print_features(argc == 3);
	}
	bench_parse_args(argc, argv, "jqp:h", counts, 1, &json, &quick, usage);
	if (quick)
		scale = 10;
	if (getenv("RF_WAKE_BACKEND")) {
		/* it would force one back-end on every run, named or not */
		fprintf(stderr, "rf-bench: ignoring RF_WAKE_BACKEND=%s: every back-end is "
			"measured by name\n", getenv("RF_WAKE_BACKEND"));
		unsetenv("RF_WAKE_BACKEND");
	}

	stack1 = map_stack();
	stack2 = map_stack();
	stack3 = map_stack();
	stack4 = map_stack();
	for (int t = 0; t < TRIALS; t++) {
		rf_sw = best(rf_sw, bench_rf_f2f(stack1, stack2, 5000000 / scale));
		boost_sw = best(boost_sw, bench_boost_f2f(stack3, stack4, 5000000 / scale));
		rf_main = best(rf_main, bench_rf_switch(stack1, 5000000 / scale));
		boost_main_sw = best(boost_main_sw, bench_boost_switch(stack3, 5000000 / scale));
	}
	for (int t = 0; t < TRIALS; t++) {
		memset(&b, 0, sizeof(b));
		b.n = 2000000 / scale;
		if ((ret = run_sched(yield_main, &b, &one)))
			die("yield", ret);
		yield = best(yield, b.result_ns);

		memset(&b, 0, sizeof(b));
		b.n = 1000000 / scale;
		if ((ret = run_sched(spawn_join_main, &b, &one)))
			die("spawn/join", ret);
		sj = best(sj, b.result_ns);

		memset(&b, 0, sizeof(b));
		b.n = 640000 / scale;
		if ((ret = run_sched(nop_main, &b, &one)))
			die("io_nop", ret);
		if (b.result_ns < nop) {
			nop = b.result_ns;
			epo = b.enters_per_op;
		}
	}
	memset(&b, 0, sizeof(b));
	b.n = parked;
	if ((ret = run_sched(parked_main, &b, &one)))
		die("parked fibers", ret);

	add("switch_ns", rf_sw, "ns");
	add("boost_switch_ns", boost_sw, "ns");
	add("switch_ratio", rf_sw / boost_sw, "x");
	add("switch_main_ns", rf_main, "ns");
	add("boost_switch_main_ns", boost_main_sw, "ns");
	add("yield_ns", yield, "ns");
	add("spawn_join_ns", sj, "ns");
	add("parked_fibers", (double)parked, "fibers");
	add("parked_bytes", b.parked_bytes, "bytes");
	add("io_nop_ns", nop, "ns");
	add("io_enters_per_op", epo, "calls");
	preempt_figures();
	multicore();
	handoff();

	for (int i = 0; i < nfigures; i++)
		if ((int)strlen(figures[i].name) > width)
			width = strlen(figures[i].name);
	if (json) {
		printf("{");
		for (int i = 0; i < nfigures; i++) {
			snprintf(num, sizeof(num), "%.6g", figures[i].value);
			bench_json_member(i, figures[i].name, figures[i].na ? NULL : num);
		}
		printf("}\n");
		/* the reasons stay visible without breaking the object: each once */
		for (int i = 0; i < nfigures; i++) {
			int seen = 0;

			for (int j = 0; j < i && !seen; j++)
				seen = figures[j].na == figures[i].na;
			if (!figures[i].na || seen)
				continue;
			fprintf(stderr, "rf-bench: n/a (%s):", figures[i].na);
			for (int j = i; j < nfigures; j++)
				if (figures[j].na == figures[i].na)
					fprintf(stderr, " %s", figures[j].name);
			fprintf(stderr, "\n");
		}
	} else {
		for (int i = 0; i < nfigures; i++) {
			if (figures[i].na)
				printf("%-*s %10s (%s)\n", width, figures[i].name, "n/a",
				       figures[i].na);
			else
				printf("%-*s %10.6g %s\n", width, figures[i].name,
				       figures[i].value, figures[i].unit);
		}
	}
	return 0;
}
