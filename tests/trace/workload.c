// SPDX-License-Identifier: MIT
/*
 * workload.c - scheduling workloads with known counts, for testing tracers.
 *
 * The tracing tests (the scripts in tests/trace) run a tracer (a bpftrace
 * script of trace/, or schedcmp) against one of these and compare what it
 * saw with what the workload counted itself, so every counter printed here
 * comes from the workload's own bookkeeping, the runtime's rf_stats or the
 * kernel's rusage: none is derived from the number of rounds asked for.
 *
 * Usage: workload MODE [-n ROUNDS] [-m MS] [-w WORKERS] [-s] [--wait]
 *
 *   futex-pingpong [-n ROUNDS] [-s]
 *	two threads, on the first two CPUs the process may use (-s: both on
 *	the first), hand a token back and forth through a futex; a round is
 *	there and back.  Each thread sleeps in FUTEX_WAIT for the token.
 *   fiber-pingpong [-n ROUNDS] [-w WORKERS]
 *	a runtime with WORKERS workers (default 2); two fibers pinned to
 *	workers 0 and 1 (both on 0 with -w 1) hand a token back and forth
 *	through two rf_sem; a round is there and back.
 *   fiber-hog [-n ROUNDS] [-m MS]
 *	one worker; each round the hog fiber makes the ticker fiber ready
 *	(rf_sem_release), spins MS ms, then yields, so the ticker waits about
 *	MS ms in the run queue every round, by construction.  The hog is
 *	spawned with no_preempt: the runtime never cuts a spin short.
 *   fiber-preempt [-m MS]
 *	one worker; a hog fiber computes, never entering the runtime, until
 *	its worker thread has spent MS ms of CPU time (default 200), beside
 *	two ticker fibers that are ready all along (each yields until the
 *	hog is done).  The watchdog catches the hog after a hog threshold
 *	of FIBER_PREEMPT_HOG_MS of CPU time and the runtime preempts it
 *	every slice (the default RF_DEFAULT_SLICE_NS) while a ticker is
 *	ready, so each preemption lets the tickers run.  Prints the
 *	runtime's own count, preemptions=N (rf_stats.preemptions), with
 *	worker0_preemptions (the same from rf_runtime_worker_stats()), the
 *	tickers' runs while the hog was unfinished (ticks), the CPU time
 *	the hog took (spin_ns), and preempt=0 where this runtime cannot
 *	preempt (RF_FEAT_PREEMPT is off: a TSan build, a static libc).
 *   thread-preempt [-n ROUNDS] [-m MS]
 *	two threads on one CPU (CPU 1 if the process may use it, else its
 *	first): a SCHED_OTHER thread that never blocks, and a SCHED_FIFO one
 *	(needs root or CAP_SYS_NICE) that sleeps MS ms, wakes, spins MS ms,
 *	ROUNDS times.  Each wake-up preempts the busy thread, which then
 *	waits about MS ms in the run queue while still runnable.  Its
 *	busy_run_delay_ns is the kernel's count of that wait, other tasks'
 *	share included (schedstat; -1 without CONFIG_SCHED_INFO).
 *   batch-reasons
 *	no runtime: fires the runtime's "batch" probe once, by hand, with
 *	RF_TRACE_BATCH made-up records whose reasons are 0, 1, ... 255,
 *	every value the record's byte can hold (a newer library's reasons
 *	too), record i with parked_ns = i us, delay_ns 1000, switch_ns 50.
 *	A tracer must count each known reason once and the others as
 *	unknown.  Prints traced=0 (and fires nothing) when no tracer had
 *	raised the probe's semaphore.
 *   fiber-io [-n ROUNDS] [-m MS]
 *	one worker; a "reader" fiber reads a pipe a byte at a time
 *	(rf_read()) while a "writer" fiber, each round, sleeps MS ms
 *	(rf_sleep()), makes one rf_nop() and writes a byte (rf_write()).  So
 *	the ring sees ROUNDS requests each of IORING_OP_NOP, IORING_OP_WRITE
 *	and IORING_OP_READ, and each read waits about MS ms for its byte.
 *	Prints the calls that succeeded: nops, writes, reads.
 *   parked [-n FIBERS] [-w WORKERS]
 *	a runtime with WORKERS workers (default 2); FIBERS fibers (default 8),
 *	pinned round robin to the workers, run and park on an rf_sem; then
 *	"parked PID" is printed and the main fiber parks reading lines from
 *	stdin.  Each line wakes every fiber once, and each parks again; the
 *	main fiber waits until every fiber is back at its rf_sem (they count
 *	themselves back on a wait group), then prints "released K" (K lines
 *	so far) and reads on.  So a line that follows at once (end of file
 *	right after the last line) still finds each fiber parked: it wakes
 *	them a last time, to finish, and joins them.  With one worker (-w 1)
 *	"back" is "parked": the main fiber runs only once each fiber that
 *	counted itself back has switched out; with several, a fiber on
 *	another worker may still be on its way to park.
 *	A tracer attached before a line sees FIBERS + 1 fibers resume that
 *	parked before it attached (the main fiber's read, the fibers'
 *	waits): it cannot know why, nor how long they were parked, and none
 *	of them runs for the first time; the same after a tracer that came
 *	and went, since they ran untraced in between.  Prints fibers=N
 *	lines=K resumed=N*(K+1).
 *   batch-seq
 *	no runtime: fires the "batch" probe by hand three times from one
 *	buffer, 10 records each, numbered (seq) 4-13, 14-23 and 30-39, then
 *	leaves 5 more (40-44) in the buffer unfired, prints its counters
 *	(lost_attach=3 lost_between=6 unflushed=5), and waits for a line or
 *	end of file on stdin before it exits: a tracer that stops meanwhile
 *	finds 5 records it was never handed.  traced=0 as batch-reasons.
 *   idle [-w WORKERS] [-m MS]
 *	a runtime with WORKERS workers (default 2) whose only fiber parks
 *	until a line arrives on stdin (end of file does not count), MS ms
 *	pass (-m; no limit without it), or SIGINT or SIGTERM, which end it
 *	cleanly with its counters.  For attach/detach tests.
 *
 *   --wait	print "ready PID" on stdout, then wait for a line (or EOF) on
 *		stdin before starting, so that a tracer can attach first.
 *
 * Defaults: -n 10000 for the ping-pongs, 20 for fiber-hog,
 * thread-preempt and fiber-io; -m 10 (200 for fiber-preempt).
 *
 * The threads are named (comm) wl-futex0, wl-futex1, wl-fifo and wl-busy,
 * so that a test can pick them out of a trace.
 *
 * At the end one line of key=value counters goes to stdout (and nothing
 * else does, apart from "ready PID"); messages go to stderr.  Exit status:
 * 0 success, 1 failure at run time, 2 bad command line or missing
 * privilege (thread-preempt without SCHED_FIFO).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <ringfiber.h>
#include <ringfiber-trace.h>

/* The runtime's own probe, fired by hand in batch-reasons: its semaphore too. */
#define _SDT_HAS_SEMAPHORES 1
#include <sys/sdt.h>

#include "serve-util.h"

#define PROG "workload"

#define NSEC_PER_MSEC	1000000LL

#define DEFAULT_PINGPONG_ROUNDS	10000
#define DEFAULT_SPIN_ROUNDS	20
#define DEFAULT_MS		10
#define DEFAULT_WORKERS		2
#define DEFAULT_PREEMPT_MS	200
#define DEFAULT_PARKED_FIBERS	8

/* fiber-preempt's hog threshold (rf_runtime_opts.hog_ns): 1 ms of CPU time. */
#define FIBER_PREEMPT_HOG_MS	1

/* Large enough for any test, small enough that a typo does not run for days. */
#define MAX_ROUNDS	100000000UL
#define MAX_MS		10000UL

/* The FIFO thread's priority: any will do, the busy thread has none. */
#define FIFO_PRIO	10

enum mode {
	M_FUTEX_PINGPONG,
	M_FIBER_PINGPONG,
	M_FIBER_HOG,
	M_THREAD_PREEMPT,
	M_FIBER_PREEMPT,
	M_BATCH_REASONS,
	M_IDLE,
	M_FIBER_IO,
	M_PARKED,
	M_BATCH_SEQ,
};

/* Which options each mode takes: one it ignores would be a silent surprise. */
#define OPT_N	(1u << 0)
#define OPT_M	(1u << 1)
#define OPT_W	(1u << 2)
#define OPT_S	(1u << 3)

static const struct {
	const char *name;
	unsigned int opts;
	unsigned long rounds;
	unsigned long ms;	/* the default of -m; 0: DEFAULT_MS */
} modes[] = {
	[M_FUTEX_PINGPONG] = { "futex-pingpong", OPT_N | OPT_S, DEFAULT_PINGPONG_ROUNDS },
	[M_FIBER_PINGPONG] = { "fiber-pingpong", OPT_N | OPT_W, DEFAULT_PINGPONG_ROUNDS },
	[M_FIBER_HOG] = { "fiber-hog", OPT_N | OPT_M, DEFAULT_SPIN_ROUNDS },
	[M_THREAD_PREEMPT] = { "thread-preempt", OPT_N | OPT_M, DEFAULT_SPIN_ROUNDS },
	[M_FIBER_PREEMPT] = { "fiber-preempt", OPT_M, 0, DEFAULT_PREEMPT_MS },
	[M_BATCH_REASONS] = { "batch-reasons", 0, 0 },
	[M_IDLE] = { "idle", OPT_M | OPT_W, 0 },
	[M_FIBER_IO] = { "fiber-io", OPT_N | OPT_M, DEFAULT_SPIN_ROUNDS },
	[M_PARKED] = { "parked", OPT_N | OPT_W, DEFAULT_PARKED_FIBERS },
	[M_BATCH_SEQ] = { "batch-seq", 0, 0 },
};

#define NMODES (sizeof(modes) / sizeof(modes[0]))

struct config {
	enum mode mode;
	unsigned long rounds;
	unsigned long ms;
	int ms_given;
	unsigned int workers;
	int same_cpu;
	int wait;
};

static struct config cfg;

static void usage(FILE *f)
{
	fprintf(f,
		"usage: %s MODE [-n ROUNDS] [-m MS] [-w WORKERS] [-s] [--wait]\n"
		"Run a scheduling workload with known counts; print its counters.\n"
		"\n"
		"  futex-pingpong [-n ROUNDS] [-s]   two threads, a token through a futex\n"
		"  fiber-pingpong [-n ROUNDS] [-w W] two fibers on workers 0 and 1, rf_sem\n"
		"  fiber-hog [-n ROUNDS] [-m MS]     hog spins MS ms with a ticker ready\n"
		"  thread-preempt [-n ROUNDS] [-m MS] SCHED_FIFO thread preempts a busy one\n"
		"  fiber-preempt [-m MS]             a hog computes MS ms (default %d), two\n"
		"                                    ready fibers beside it: it is preempted\n"
		"  batch-reasons                     one made-up batch of records, reasons\n"
		"                                    0 to 255 (for tracers' tests)\n"
		"  idle [-w W] [-m MS]               a runtime parked until a line on stdin,\n"
		"                                    MS ms, or SIGINT/SIGTERM\n"
		"  fiber-io [-n ROUNDS] [-m MS]      per round: sleep MS ms, a nop, a byte\n"
		"                                    through a pipe (rf_write, rf_read)\n"
		"  parked [-n FIBERS] [-w W]         fibers park, \"parked PID\", a line on\n"
		"                                    stdin wakes them (attach tests)\n"
		"  batch-seq                         made-up batches with gaps in their\n"
		"                                    numbers, then waits for stdin\n"
		"\n"
		"  -n ROUNDS  rounds (default %d for ping-pongs, %d otherwise)\n"
		"  -m MS      milliseconds of spin (or of idle time); default %d\n"
		"  -w W       runtime workers (default %d)\n"
		"  -s         futex-pingpong: both threads on one CPU\n"
		"  --wait     print \"ready PID\", wait for a line on stdin, then start\n"
		"  -h         show this help\n"
		"\n"
		"Prints one line of key=value counters on stdout at the end.\n",
		PROG, DEFAULT_PREEMPT_MS, DEFAULT_PINGPONG_ROUNDS, DEFAULT_SPIN_ROUNDS,
		DEFAULT_MS, DEFAULT_WORKERS);
}

static void die(const char *what, int err)
{
	fprintf(stderr, "%s: %s: %s\n", PROG, what, strerror(err));
	exit(1);
}

/*
 * wait_for_go() - the --wait handshake.  stdin is read a byte at a time with
 * read(2), not stdio, so that nothing after the line is consumed: idle
 * mode reads stdin again afterwards.
 */
static void wait_for_go(void)
{
	ssize_t n;
	char c;

	printf("ready %d\n", (int)getpid());
	fflush(stdout);
	for (;;) {
		n = read(STDIN_FILENO, &c, 1);
		if (n == 0 || (n == 1 && c == '\n'))
			return;
		if (n < 0 && errno != EINTR)
			die("reading stdin", errno);
	}
}

/* The CPUs the process may run on, in order; returns how many (>= 1). */
static int allowed_cpus(int *cpus, int max)
{
	cpu_set_t set;
	int i, n = 0;

	if (sched_getaffinity(0, sizeof(set), &set) < 0)
		die("sched_getaffinity", errno);
	for (i = 0; i < CPU_SETSIZE && n < max; i++)
		if (CPU_ISSET(i, &set))
			cpus[n++] = i;
	if (n == 0)
		die("sched_getaffinity", ESRCH);
	return n;
}

static void attr_pin(pthread_attr_t *attr, int cpu)
{
	cpu_set_t set;
	int err;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	err = pthread_attr_setaffinity_np(attr, sizeof(set), &set);
	if (err)
		die("pthread_attr_setaffinity_np", err);
}

/* This thread's context switches so far, as the kernel counts them. */
static void thread_csw(long *vol, long *invol)
{
	struct rusage ru;

	if (getrusage(RUSAGE_THREAD, &ru) < 0)
		die("getrusage", errno);
	*vol = ru.ru_nvcsw;
	*invol = ru.ru_nivcsw;
}

/* ------------------------------------------------------------ futex-pingpong */

/*
 * One futex word holds whose turn it is (0 or 1).  A thread waits with
 * FUTEX_WAIT while the word says "the other's turn", takes its turn, flips
 * the word and always calls FUTEX_WAKE: the wake count then says how many
 * times a sleeper was really there.
 */
static uint32_t turn;

struct futex_player {
	int id;
	pthread_t thread;
	int cpu;
	/* counted by the thread itself */
	unsigned long slept;		/* FUTEX_WAIT returned 0: it slept and was woken */
	unsigned long eagain;		/* FUTEX_WAIT found the turn already flipped */
	unsigned long wake_calls;	/* FUTEX_WAKE calls */
	unsigned long woken;		/* threads those calls woke */
	long nvcsw, nivcsw;		/* rusage deltas over the loop */
};

static long futex(uint32_t *uaddr, int op, uint32_t val)
{
	return syscall(SYS_futex, uaddr, op, val, NULL, NULL, 0);
}

static void futex_wait_turn(struct futex_player *p)
{
	uint32_t other = (uint32_t)!p->id;

	while (__atomic_load_n(&turn, __ATOMIC_ACQUIRE) == other) {
		if (futex(&turn, FUTEX_WAIT_PRIVATE, other) == 0)
			p->slept++;
		else if (errno == EAGAIN)
			p->eagain++;
		else if (errno != EINTR)
			die("FUTEX_WAIT", errno);
	}
}

static void futex_pass_turn(struct futex_player *p)
{
	long n;

	__atomic_store_n(&turn, (uint32_t)!p->id, __ATOMIC_RELEASE);
	n = futex(&turn, FUTEX_WAKE_PRIVATE, 1);
	if (n < 0)
		die("FUTEX_WAKE", errno);
	p->wake_calls++;
	p->woken += (unsigned long)n;
}

/*
 * Player 0 passes first and waits for the token back; player 1 waits, then
 * passes back.  So a round is one hand-off each way and ends where it began.
 */
static void *futex_player_main(void *arg)
{
	struct futex_player *p = arg;
	long v0, i0, v1, i1;
	unsigned long r;

	pthread_setname_np(pthread_self(), p->id ? "wl-futex1" : "wl-futex0");
	thread_csw(&v0, &i0);
	for (r = 0; r < cfg.rounds; r++) {
		if (p->id == 0) {
			futex_pass_turn(p);
			futex_wait_turn(p);
		} else {
			futex_wait_turn(p);
			futex_pass_turn(p);
		}
	}
	thread_csw(&v1, &i1);
	p->nvcsw = v1 - v0;
	p->nivcsw = i1 - i0;
	return NULL;
}

static int run_futex_pingpong(void)
{
	struct futex_player pl[2] = { { .id = 0 }, { .id = 1 } };
	int cpus[2], ncpus = allowed_cpus(cpus, 2);
	pthread_attr_t attr;
	struct rusage self;
	int64_t t0, t1;
	int i, err;

	pl[0].cpu = cpus[0];
	pl[1].cpu = (cfg.same_cpu || ncpus < 2) ? cpus[0] : cpus[1];
	if (!cfg.same_cpu && ncpus < 2)
		fprintf(stderr, "%s: only one CPU: both threads on CPU %d\n", PROG, cpus[0]);

	turn = 0;
	t0 = serve_now();
	for (i = 0; i < 2; i++) {
		pthread_attr_init(&attr);
		attr_pin(&attr, pl[i].cpu);
		err = pthread_create(&pl[i].thread, &attr, futex_player_main, &pl[i]);
		pthread_attr_destroy(&attr);
		if (err)
			die("pthread_create", err);
	}
	for (i = 0; i < 2; i++)
		pthread_join(pl[i].thread, NULL);
	t1 = serve_now();
	/* every switch of the process so far, the exited players' included */
	if (getrusage(RUSAGE_SELF, &self) < 0)
		die("getrusage", errno);

	printf("mode=futex-pingpong rounds=%lu cpu0=%d cpu1=%d waits=%lu eagain=%lu "
	       "wake_calls=%lu wakes=%lu nvcsw=%ld nivcsw=%ld "
	       "self_nvcsw=%ld self_nivcsw=%ld "
	       "waits0=%lu waits1=%lu wall_ns=%" PRId64 "\n",
	       cfg.rounds, pl[0].cpu, pl[1].cpu, pl[0].slept + pl[1].slept,
	       pl[0].eagain + pl[1].eagain, pl[0].wake_calls + pl[1].wake_calls,
	       pl[0].woken + pl[1].woken, pl[0].nvcsw + pl[1].nvcsw,
	       pl[0].nivcsw + pl[1].nivcsw, self.ru_nvcsw, self.ru_nivcsw,
	       pl[0].slept, pl[1].slept, t1 - t0);
	return 0;
}

/* ------------------------------------------------------------ runtime modes */

static struct rf_stats rt_stats;
static struct rf_stats rt_worker0_stats;	/* rf_runtime_worker_stats(rt, 0) */
static int64_t rt_wall_ns;

/*
 * run_runtime() - create a runtime, run @fn as its main fiber, keep its
 * counters in rt_stats and the run's duration in rt_wall_ns.
 * Return: 0, or 1 after a message (the run failed or @fn returned non-NULL).
 */
static int run_runtime(struct rf_runtime_opts *opts, rf_fn fn)
{
	struct rf_runtime *rt;
	void *result = NULL;
	int64_t t0;
	int err;

	err = rf_runtime_create(&rt, opts);
	if (err < 0) {
		fprintf(stderr, "%s: rf_runtime_create: %s\n", PROG, strerror(-err));
		return 1;
	}
	t0 = serve_now();
	err = rf_runtime_run(rt, fn, NULL, &result);
	rt_wall_ns = serve_now() - t0;
	if (rf_runtime_stats(rt, &rt_stats) < 0)
		memset(&rt_stats, 0, sizeof(rt_stats));
	if (rf_runtime_worker_stats(rt, 0, &rt_worker0_stats) < 0)
		memset(&rt_worker0_stats, 0, sizeof(rt_worker0_stats));
	rf_runtime_destroy(rt);
	if (err < 0) {
		fprintf(stderr, "%s: rf_runtime_run: %s\n", PROG, strerror(-err));
		return 1;
	}
	return result ? 1 : 0;	/* the fiber said what went wrong */
}

/* The runtime's counters every runtime mode prints, after its own. */
static void print_rt_stats(void)
{
	printf(" workers=%u runs=%" PRIu64 " switches=%" PRIu64 " remote_wakes=%" PRIu64
	       " wake_calls=%" PRIu64 " sleeps=%" PRIu64 " steals=%" PRIu64 " hogs=%" PRIu64
	       " preemptions=%" PRIu64 " preempt_deferred=%" PRIu64 " wall_ns=%" PRId64 "\n",
	       rt_stats.workers, rt_stats.runs, rt_stats.switches, rt_stats.remote_wakes,
	       rt_stats.wake_calls, rt_stats.sleeps, rt_stats.steals, rt_stats.hogs,
	       rt_stats.preemptions, rt_stats.preempt_deferred, rt_wall_ns);
}

static void *fiber_fail(const char *what, int err)
{
	fprintf(stderr, "%s: %s: %s\n", PROG, what, strerror(-err));
	return (void *)1;
}

/* ------------------------------------------------------------ fiber-pingpong */

static struct rf_sem ping_sem[2];	/* ping_sem[i]: fiber i holds the token */
static unsigned long ping_received[2];	/* hand-offs each fiber received */

static void *ping_fiber(void *arg)
{
	int id = (int)(intptr_t)arg;
	unsigned long r;
	int err;

	for (r = 0; r < cfg.rounds; r++) {
		if (id == 0) {
			rf_sem_release(&ping_sem[1]);
			err = rf_sem_acquire(&ping_sem[0], RF_NO_DEADLINE);
		} else {
			err = rf_sem_acquire(&ping_sem[1], RF_NO_DEADLINE);
			if (!err)
				rf_sem_release(&ping_sem[0]);
		}
		if (err)
			return fiber_fail("rf_sem_acquire", err);
		ping_received[id]++;
	}
	return NULL;
}

static void *fiber_pingpong_main(void *arg)
{
	struct rf_spawn_attr attr = { .pinned = 1 };
	struct rf_fiber *f[2];
	void *res[2] = { NULL, NULL };
	unsigned int w1 = rf_worker_count() > 1 ? 1 : 0;
	int err, i;

	rf_sem_init(&ping_sem[0], 0);
	rf_sem_init(&ping_sem[1], 0);
	/* Pinned, so that an idle worker cannot steal the pair onto one worker. */
	attr.name = "ping";
	err = rf_spawn_on(0, &f[0], ping_fiber, (void *)0, &attr);
	if (err)
		return fiber_fail("rf_spawn_on", err);
	attr.name = "pong";
	err = rf_spawn_on(w1, &f[1], ping_fiber, (void *)1, &attr);
	if (err) {
		/* ping parks forever without pong: cancel it before joining */
		rf_cancel(f[0]);
		rf_join(f[0], NULL, RF_NO_DEADLINE);
		return fiber_fail("rf_spawn_on", err);
	}
	for (i = 0; i < 2; i++)
		rf_join(f[i], &res[i], RF_NO_DEADLINE);
	return (res[0] || res[1]) ? (void *)1 : NULL;
}

static int run_fiber_pingpong(void)
{
	struct rf_runtime_opts opts = { .workers = cfg.workers };
	int rc = run_runtime(&opts, fiber_pingpong_main);

	if (rc)
		return rc;
	printf("mode=fiber-pingpong rounds=%lu handoffs=%lu", cfg.rounds,
	       ping_received[0] + ping_received[1]);
	print_rt_stats();
	return 0;
}

/* ---------------------------------------------------------------- fiber-hog */

static struct rf_sem tick_sem;
static int hog_done;
static int64_t tick_ready_at;		/* rf_now() when the hog readied the ticker */
static unsigned long ticks;
static uint64_t tick_delay_sum, tick_delay_min = UINT64_MAX, tick_delay_max;
static uint64_t hog_spin_sum;
static volatile uint64_t hog_sink;

/*
 * The ticker measures its own run-queue delay: from the hog's release of
 * the semaphore (which makes it ready) to its return from rf_sem_acquire().
 * Both run on the one worker, so no synchronization is needed.
 */
static void *ticker_fiber(void *arg)
{
	uint64_t d;
	int err;

	for (;;) {
		err = rf_sem_acquire(&tick_sem, RF_NO_DEADLINE);
		if (err)
			return fiber_fail("rf_sem_acquire", err);
		if (hog_done)
			return NULL;
		d = (uint64_t)(rf_now() - tick_ready_at);
		ticks++;
		tick_delay_sum += d;
		if (d < tick_delay_min)
			tick_delay_min = d;
		if (d > tick_delay_max)
			tick_delay_max = d;
	}
}

static void *hog_fiber(void *arg)
{
	int64_t spin = (int64_t)cfg.ms * NSEC_PER_MSEC, t0, t1;
	unsigned long r;
	uint64_t n = 0;

	for (r = 0; r < cfg.rounds; r++) {
		/*
		 * Ready the ticker first, then spin: it sits in the run queue
		 * for the whole spin and runs when the hog yields.
		 */
		tick_ready_at = rf_now();
		rf_sem_release(&tick_sem);
		t0 = rf_now();
		do {
			n++;
			t1 = rf_now();
		} while (t1 - t0 < spin);
		hog_spin_sum += (uint64_t)(t1 - t0);
		rf_yield();
	}
	hog_sink = n;
	hog_done = 1;
	rf_sem_release(&tick_sem);
	return NULL;
}

static void *fiber_hog_main(void *arg)
{
	struct rf_spawn_attr attr = { .name = "ticker" };
	struct rf_spawn_attr hog_attr = { .name = "hog", .no_preempt = 1 };
	struct rf_fiber *t, *h;
	void *res[2] = { NULL, NULL };
	int err;

	rf_sem_init(&tick_sem, 0);
	err = rf_spawn(&t, ticker_fiber, NULL, &attr);
	if (err)
		return fiber_fail("rf_spawn", err);
	/* Let the ticker park on the semaphore before the hog starts. */
	rf_yield();
	/* Never preempted: the ticker waits for the whole spin, by construction. */
	err = rf_spawn(&h, hog_fiber, NULL, &hog_attr);
	if (err) {
		rf_cancel(t);
		rf_join(t, NULL, RF_NO_DEADLINE);
		return fiber_fail("rf_spawn", err);
	}
	rf_join(h, &res[0], RF_NO_DEADLINE);
	rf_join(t, &res[1], RF_NO_DEADLINE);
	return (res[0] || res[1]) ? (void *)1 : NULL;
}

static int run_fiber_hog(void)
{
	/*
	 * One worker, so that the ticker has nowhere else to run.  The
	 * watchdog stays at its default: it reports the hog (stats.hogs, the
	 * "hog" probe) but with no other worker its rescue moves nothing, and
	 * the hog may not be preempted (no_preempt).
	 */
	struct rf_runtime_opts opts = { .workers = 1 };
	int rc = run_runtime(&opts, fiber_hog_main);

	if (rc)
		return rc;
	printf("mode=fiber-hog rounds=%lu ms=%lu ticks=%lu spin_ns=%" PRIu64
	       " spin_total_ns=%" PRIu64 " delay_ns=%" PRIu64 " delay_min_ns=%" PRIu64
	       " delay_max_ns=%" PRIu64,
	       cfg.rounds, cfg.ms, ticks, hog_spin_sum / cfg.rounds, hog_spin_sum,
	       ticks ? tick_delay_sum / ticks : 0, ticks ? tick_delay_min : 0, tick_delay_max);
	print_rt_stats();
	return 0;
}

/* ------------------------------------------------------------ thread-preempt */

static int busy_started, busy_stop;	/* atomics */
static uint64_t busy_iter;		/* atomic: the busy thread's progress */
static long busy_nvcsw, busy_nivcsw;
static int64_t busy_run_delay_ns = -1;	/* -1: no schedstat */

/*
 * The calling thread's time spent runnable but waiting for a CPU, in ns:
 * the second field of /proc/thread-self/schedstat (CONFIG_SCHED_INFO), or
 * -1 without it.
 */
static int64_t thread_run_delay_ns(void)
{
	unsigned long long on_cpu, delay;
	FILE *f = fopen("/proc/thread-self/schedstat", "r");
	int n;

	if (!f)
		return -1;
	n = fscanf(f, "%llu %llu", &on_cpu, &delay);
	fclose(f);
	return n == 2 ? (int64_t)delay : -1;
}

static void *busy_main(void *arg)
{
	int64_t d0, d1;
	long v0, i0, v1, i1;

	pthread_setname_np(pthread_self(), "wl-busy");
	thread_csw(&v0, &i0);
	d0 = thread_run_delay_ns();
	__atomic_store_n(&busy_started, 1, __ATOMIC_RELEASE);
	while (!__atomic_load_n(&busy_stop, __ATOMIC_ACQUIRE))
		__atomic_store_n(&busy_iter, busy_iter + 1, __ATOMIC_RELAXED);
	d1 = thread_run_delay_ns();
	thread_csw(&v1, &i1);
	busy_nvcsw = v1 - v0;
	busy_nivcsw = i1 - i0;
	if (d0 >= 0 && d1 >= d0)
		busy_run_delay_ns = d1 - d0;
	return NULL;
}

struct fifo_result {
	unsigned long runs;		/* times the FIFO thread woke and spun */
	unsigned long wakes;		/* times it woke while the busy thread ran */
	unsigned long preemptions;	/* of those, the busy thread was held off */
	uint64_t spin_sum;
	int64_t wall_ns;
};

static void sleep_ns(int64_t ns)
{
	struct timespec ts = { ns / 1000000000LL, ns % 1000000000LL };

	while (clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, &ts) == EINTR)
		;
}

/*
 * A round counts as a preemption when the busy thread made progress in the
 * gap before it (so it had the CPU when the FIFO thread woke) and none
 * during the spin (so it waited, runnable, the whole time).  Something
 * else on the CPU could break either; the count says so instead of
 * assuming.
 */
static void *fifo_main(void *arg)
{
	struct fifo_result *res = arg;
	int64_t spin = (int64_t)cfg.ms * NSEC_PER_MSEC, t0, t1, w0;
	uint64_t before_gap, before_spin, after_spin;
	unsigned long r;

	pthread_setname_np(pthread_self(), "wl-fifo");
	/*
	 * The busy thread cannot start on this CPU until this one sleeps.
	 * The wake-up that finds it started preempts it too (a thread has to
	 * get the CPU once before its first sleep), so it counts in @wakes.
	 */
	do
		sleep_ns(NSEC_PER_MSEC);
	while (!__atomic_load_n(&busy_started, __ATOMIC_ACQUIRE));
	res->wakes++;

	w0 = serve_now();
	after_spin = __atomic_load_n(&busy_iter, __ATOMIC_RELAXED);
	for (r = 0; r < cfg.rounds; r++) {
		before_gap = after_spin;
		sleep_ns(spin);		/* the busy thread runs meanwhile */
		t0 = serve_now();
		before_spin = __atomic_load_n(&busy_iter, __ATOMIC_RELAXED);
		do
			t1 = serve_now();
		while (t1 - t0 < spin);
		after_spin = __atomic_load_n(&busy_iter, __ATOMIC_RELAXED);
		res->runs++;
		res->wakes++;
		res->spin_sum += (uint64_t)(t1 - t0);
		if (before_spin != before_gap && after_spin == before_spin)
			res->preemptions++;
	}
	res->wall_ns = serve_now() - w0;
	return NULL;
}

static int run_thread_preempt(void)
{
	struct sched_param sp = { .sched_priority = FIFO_PRIO };
	struct fifo_result res = { 0 };
	pthread_t busy, fifo;
	pthread_attr_t attr;
	int cpus[2], ncpus = allowed_cpus(cpus, 2);
	int cpu = ncpus > 1 ? cpus[1] : cpus[0];
	int err;

	/*
	 * The FIFO thread first: if the kernel refuses SCHED_FIFO there is
	 * nothing to run, and no busy thread to stop.  It waits until the
	 * busy one has started.
	 */
	pthread_attr_init(&attr);
	attr_pin(&attr, cpu);
	pthread_attr_setinheritsched(&attr, PTHREAD_EXPLICIT_SCHED);
	pthread_attr_setschedpolicy(&attr, SCHED_FIFO);
	pthread_attr_setschedparam(&attr, &sp);
	err = pthread_create(&fifo, &attr, fifo_main, &res);
	pthread_attr_destroy(&attr);
	if (err) {
		fprintf(stderr, "%s: thread-preempt: cannot start a SCHED_FIFO thread: %s%s\n",
			PROG, strerror(err),
			err == EPERM ? " (needs root or CAP_SYS_NICE, and RLIMIT_RTPRIO)" : "");
		return 2;
	}

	pthread_attr_init(&attr);
	attr_pin(&attr, cpu);
	err = pthread_create(&busy, &attr, busy_main, NULL);
	pthread_attr_destroy(&attr);
	if (err)
		die("pthread_create", err);

	pthread_join(fifo, NULL);
	__atomic_store_n(&busy_stop, 1, __ATOMIC_RELEASE);
	pthread_join(busy, NULL);

	printf("mode=thread-preempt rounds=%lu ms=%lu cpu=%d runs=%lu fifo_wakes=%lu preemptions=%lu "
	       "spin_ns=%" PRIu64 " spin_total_ns=%" PRIu64 " busy_nvcsw=%ld busy_nivcsw=%ld "
	       "busy_run_delay_ns=%" PRId64 " wall_ns=%" PRId64 "\n",
	       cfg.rounds, cfg.ms, cpu, res.runs, res.wakes, res.preemptions,
	       res.runs ? res.spin_sum / res.runs : 0, res.spin_sum, busy_nvcsw, busy_nivcsw,
	       busy_run_delay_ns, res.wall_ns);
	return 0;
}

/* ------------------------------------------------------------- fiber-preempt */

#define PREEMPT_TICKERS	2

/* Iterations between two looks at the clock: the hog stays in its own code. */
#define PREEMPT_SPIN_BATCH	4096

static int preempt_hog_done;			/* atomic */
static unsigned long preempt_ticks[PREEMPT_TICKERS];	/* runs while the hog was unfinished */
static uint64_t preempt_spin_ns;
static volatile uint64_t preempt_sink;

/* The calling thread's CPU time in ns: what the hog threshold counts. */
static int64_t thread_cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/*
 * A CPU hog that never enters the runtime: arithmetic in the workload's own
 * code, with a look at its worker thread's CPU clock (in libc, where the
 * runtime defers a preemption) once per PREEMPT_SPIN_BATCH rounds, until
 * that thread has spent MS ms of CPU time.  CPU time, as the hog threshold:
 * on a loaded machine a spin of MS ms of wall-clock time may get too little
 * CPU to reach the threshold at all.  The only way its worker runs anything
 * else before it ends is to preempt it.
 */
static void *preempt_hog_fiber(void *arg)
{
	int64_t spin = (int64_t)cfg.ms * NSEC_PER_MSEC, t0 = thread_cpu_ns(), t1;
	uint64_t x = 0x9e3779b97f4a7c15ULL;

	do {
		for (unsigned int i = 0; i < PREEMPT_SPIN_BATCH; i++)
			x = x * 6364136223846793005ULL + 1442695040888963407ULL;
		t1 = thread_cpu_ns();
	} while (t1 - t0 < spin);
	preempt_sink = x;
	preempt_spin_ns = (uint64_t)(t1 - t0);
	__atomic_store_n(&preempt_hog_done, 1, __ATOMIC_RELEASE);
	return NULL;
}

/* Ready all along: each run while the hog is unfinished is one of its slices given away. */
static void *preempt_ticker_fiber(void *arg)
{
	unsigned long *runs = arg;

	while (!__atomic_load_n(&preempt_hog_done, __ATOMIC_ACQUIRE)) {
		(*runs)++;
		rf_yield();
	}
	return NULL;
}

static void *fiber_preempt_main(void *arg)
{
	struct rf_spawn_attr attr = { .name = "ticker" };
	struct rf_fiber *f[PREEMPT_TICKERS + 1];
	void *res = NULL, *r;
	int err, i, n = 0;

	for (i = 0; i < PREEMPT_TICKERS; i++) {
		err = rf_spawn(&f[n], preempt_ticker_fiber, &preempt_ticks[i], &attr);
		if (err)
			break;
		n++;
	}
	if (n == PREEMPT_TICKERS) {
		attr.name = "hog";
		err = rf_spawn(&f[n], preempt_hog_fiber, NULL, &attr);
		if (!err)
			n++;
	}
	if (err) {
		/* no hog: the tickers would yield forever */
		__atomic_store_n(&preempt_hog_done, 1, __ATOMIC_RELEASE);
		res = fiber_fail("rf_spawn", err);
	}
	for (i = 0; i < n; i++) {
		rf_join(f[i], &r, RF_NO_DEADLINE);
		if (r)
			res = r;
	}
	return res;
}

static int run_fiber_preempt(void)
{
	/*
	 * One worker, so that the tickers can only run when the hog is
	 * preempted; a hog threshold short enough that most of the spin is
	 * cut into slices.
	 */
	struct rf_runtime_opts opts = {
		.workers = 1,
		.hog_ns = FIBER_PREEMPT_HOG_MS * NSEC_PER_MSEC,
	};
	unsigned long ticker_runs = 0;
	int rc = run_runtime(&opts, fiber_preempt_main), i;

	if (rc)
		return rc;
	for (i = 0; i < PREEMPT_TICKERS; i++)
		ticker_runs += preempt_ticks[i];
	printf("mode=fiber-preempt ms=%lu preempt=%d spin_ns=%" PRIu64 " ticks=%lu"
	       " worker0_preemptions=%" PRIu64,
	       cfg.ms, !!(rt_stats.features & RF_FEAT_PREEMPT), preempt_spin_ns, ticker_runs,
	       rt_worker0_stats.preemptions);
	print_rt_stats();
	return 0;
}

/* ------------------------------------------------------------- batch-reasons */

/*
 * The runtime's semaphore of "batch" (userspace/src/trace.c; this program
 * links the runtime statically): a tracer attached to the probe sites
 * named ringfiber:batch raises it, the one below included.
 */
extern volatile unsigned short ringfiber_batch_semaphore;

static int run_batch_reasons(void)
{
	static struct rf_trace_rec rec[RF_TRACE_BATCH];
	unsigned int i, traced = ringfiber_batch_semaphore != 0;
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	for (i = 0; i < RF_TRACE_BATCH; i++) {
		rec[i] = (struct rf_trace_rec){
			.ts_ns = (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec,
			.fiber = 0x1000 + i,
			.parked_ns = (uint64_t)i * 1000,
			.delay_ns = 1000,
			.switch_ns = 50,
			.worker = 0,
			.type = RF_TRACE_REC_RUN,
			.reason = (uint8_t)i,
		};
	}
	if (traced)
		STAP_PROBE4(ringfiber, batch, 0, rec, RF_TRACE_BATCH, sizeof(rec[0]));
	printf("mode=batch-reasons traced=%u records=%u reasons=%u\n", traced,
	       traced ? RF_TRACE_BATCH : 0, RF_TRACE_REASONS);
	return 0;
}

/* ----------------------------------------------------------------- batch-seq */

/* batch-seq's batches: [first seq, count], fired; then the unfired tail. */
static const uint32_t seq_batches[][2] = { { 4, 10 }, { 14, 10 }, { 30, 10 } };
#define SEQ_UNFLUSHED_FIRST	40
#define SEQ_UNFLUSHED		5

static void seq_fill(struct rf_trace_rec *rec, uint32_t first, unsigned int n)
{
	struct timespec ts;
	unsigned int i;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	for (i = 0; i < n; i++)
		rec[i] = (struct rf_trace_rec){
			.ts_ns = (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec,
			.fiber = 0x1000,
			.parked_ns = 0,
			.delay_ns = 1000,
			.switch_ns = 50,
			.worker = 0,
			.type = RF_TRACE_REC_RUN,
			.reason = RF_TRACE_YIELD,
			.seq = first + i,
		};
}

static int run_batch_seq(void)
{
	static struct rf_trace_rec rec[RF_TRACE_BATCH];
	unsigned int traced = ringfiber_batch_semaphore != 0, i, records = 0;
	uint32_t expect = 1, lost_attach = 0, lost_between = 0;
	char line[64];

	for (i = 0; i < sizeof(seq_batches) / sizeof(seq_batches[0]); i++) {
		uint32_t first = seq_batches[i][0], n = seq_batches[i][1];

		seq_fill(rec, first, n);
		if (traced)
			STAP_PROBE4(ringfiber, batch, 0, rec, n, sizeof(rec[0]));
		/* what a tracer must make of them, worked out record by record */
		if (i == 0)
			lost_attach = first - expect;
		else
			lost_between += first - expect;
		expect = first + n;
		records += n;
	}
	seq_fill(rec, SEQ_UNFLUSHED_FIRST, SEQ_UNFLUSHED);
	printf("mode=batch-seq traced=%u records=%u lost_attach=%u lost_between=%u unflushed=%u\n",
	       traced, traced ? records : 0, lost_attach, lost_between,
	       traced ? SEQ_UNFLUSHED : 0);
	fflush(stdout);
	/* A tracer that stops now finds the last records in the buffer. */
	if (!fgets(line, sizeof(line), stdin) && ferror(stdin))
		die("reading stdin", errno);
	return 0;
}

/* --------------------------------------------------------------------- idle */

static const char *idle_end = "?";

/* Far enough to be "never", near enough not to overflow a timespec sum. */
#define IDLE_FOREVER_NS	(365 * 24 * 3600 * 1000000000LL)

/*
 * Park until a line arrives on stdin, -m MS pass, or SIGINT/SIGTERM cancels
 * the fiber.  End of file on stdin does not end it: a shell starts a
 * background job with stdin on /dev/null, and "workload idle &" must still
 * stay up for a tracer to attach.  Both waits are ring requests, so the
 * workers sleep in io_uring_enter() and the runtime sees no deadlock.
 */
static void *idle_main(void *arg)
{
	int64_t deadline = rf_deadline_after(cfg.ms_given ?
					     (int64_t)cfg.ms * NSEC_PER_MSEC : IDLE_FOREVER_NS);
	ssize_t n;
	char c;

	for (;;) {
		n = rf_read(STDIN_FILENO, &c, 1, -1, deadline);
		if (n == 1 && c == '\n') {
			idle_end = "line";
			return NULL;
		}
		if (n == 0)
			n = rf_sleep(deadline);	/* EOF: wait for the rest */
		if (n == -ETIMEDOUT || (n == 0 && rf_now() >= deadline)) {
			idle_end = "timeout";
			return NULL;
		}
		if (n == -ECANCELED) {
			idle_end = "signal";
			return NULL;
		}
		if (n < 0 && n != -EINTR)
			return fiber_fail("reading stdin", (int)n);
	}
}

static int run_idle(void)
{
	struct rf_runtime_opts opts = {
		.workers = cfg.workers,
		.flags = RF_RT_SHUTDOWN_ON_SIGNAL,
	};
	int rc = run_runtime(&opts, idle_main);

	if (rc)
		return rc;
	printf("mode=idle end=%s signal=%d", idle_end, rt_stats.signal);
	print_rt_stats();
	return 0;
}

/* ----------------------------------------------------------------- fiber-io */

static int io_pipe[2];
static unsigned long io_nops, io_writes, io_reads;

/* Reads the pipe a byte at a time until the writer closes it. */
static void *io_reader_fiber(void *arg)
{
	ssize_t n;
	char c;

	for (;;) {
		n = rf_read(io_pipe[0], &c, 1, -1, RF_NO_DEADLINE);
		if (n == 0)
			return NULL;
		if (n < 0)
			return fiber_fail("rf_read", (int)n);
		io_reads++;
	}
}

static void *io_writer_fiber(void *arg)
{
	int64_t ms = (int64_t)cfg.ms * NSEC_PER_MSEC;
	void *res = NULL;
	unsigned long r;
	ssize_t n;
	int err;

	for (r = 0; r < cfg.rounds; r++) {
		err = rf_sleep(rf_deadline_after(ms));
		if (err) {
			res = fiber_fail("rf_sleep", err);
			break;
		}
		err = rf_nop(RF_NO_DEADLINE);
		if (err) {
			res = fiber_fail("rf_nop", err);
			break;
		}
		io_nops++;
		n = rf_write(io_pipe[1], "x", 1, -1, RF_NO_DEADLINE);
		if (n != 1) {
			res = fiber_fail("rf_write", n < 0 ? (int)n : -EIO);
			break;
		}
		io_writes++;
	}
	close(io_pipe[1]);	/* the reader's end of file */
	return res;
}

static void *fiber_io_main(void *arg)
{
	struct rf_spawn_attr attr = { .name = "reader" };
	struct rf_fiber *f[2];
	void *res[2] = { NULL, NULL };
	int err;

	err = rf_spawn(&f[0], io_reader_fiber, NULL, &attr);
	if (err) {
		close(io_pipe[1]);
		return fiber_fail("rf_spawn", err);
	}
	attr.name = "writer";
	err = rf_spawn(&f[1], io_writer_fiber, NULL, &attr);
	if (err) {
		close(io_pipe[1]);	/* the reader ends at end of file */
		rf_join(f[0], NULL, RF_NO_DEADLINE);
		return fiber_fail("rf_spawn", err);
	}
	rf_join(f[1], &res[1], RF_NO_DEADLINE);
	rf_join(f[0], &res[0], RF_NO_DEADLINE);
	return (res[0] || res[1]) ? (void *)1 : NULL;
}

static int run_fiber_io(void)
{
	struct rf_runtime_opts opts = { .workers = 1 };
	int rc;

	if (pipe(io_pipe) < 0)
		die("pipe", errno);
	rc = run_runtime(&opts, fiber_io_main);
	close(io_pipe[0]);
	if (rc)
		return rc;
	printf("mode=fiber-io rounds=%lu ms=%lu nops=%lu writes=%lu reads=%lu", cfg.rounds,
	       cfg.ms, io_nops, io_writes, io_reads);
	print_rt_stats();
	return 0;
}

/* ------------------------------------------------------------------- parked */

static struct rf_sem *parked_sem;	/* one per fiber: a wake-up each */
static struct rf_waitgroup parked_back;	/* fibers not back at their rf_sem yet */
static unsigned long parked_resumed;	/* atomic */
static int parked_done;			/* atomic: the last wake-up */
static unsigned long parked_lines;

static void *parked_fiber(void *arg)
{
	struct rf_sem *sem = arg;
	int err;

	for (;;) {
		/* about to park: the main fiber may wake us again */
		rf_wg_done(&parked_back);
		err = rf_sem_acquire(sem, RF_NO_DEADLINE);
		if (err)
			return fiber_fail("rf_sem_acquire", err);
		__atomic_add_fetch(&parked_resumed, 1, __ATOMIC_SEQ_CST);
		if (__atomic_load_n(&parked_done, __ATOMIC_SEQ_CST))
			return NULL;
	}
}

/* Park reading stdin until a whole line came: 0, or a negative errno. */
static int parked_read_line(void)
{
	ssize_t n;
	char c;

	do {
		n = rf_read(STDIN_FILENO, &c, 1, -1, RF_NO_DEADLINE);
		if (n == 0)
			return -ENODATA;	/* end of file: the last line came */
	} while ((n == 1 && c != '\n') || n == -EINTR);
	return n < 0 ? (int)n : 0;
}

static void *parked_main(void *arg)
{
	struct rf_spawn_attr attr = { .pinned = 1, .name = "parked" };
	struct rf_fiber **f;
	void *res, *ret = NULL;
	unsigned long i, spawned;
	int err = 0;

	f = calloc(cfg.rounds, sizeof(*f));
	parked_sem = calloc(cfg.rounds, sizeof(*parked_sem));
	if (!f || !parked_sem) {
		free(f);
		free(parked_sem);
		return fiber_fail("calloc", -ENOMEM);
	}
	rf_wg_init(&parked_back);
	for (spawned = 0; spawned < cfg.rounds; spawned++) {
		rf_sem_init(&parked_sem[spawned], 0);
		rf_wg_add(&parked_back, 1);
		err = rf_spawn_on((unsigned int)(spawned % rf_worker_count()), &f[spawned],
				  parked_fiber, &parked_sem[spawned], &attr);
		if (err) {
			rf_wg_done(&parked_back);
			break;
		}
	}
	/* Each has run and is parked (or about to: the sleep lets it). */
	rf_wg_wait(&parked_back, RF_NO_DEADLINE);
	rf_sleep(rf_deadline_after(10 * NSEC_PER_MSEC));
	if (!err) {
		printf("parked %d\n", (int)getpid());
		fflush(stdout);
		while ((err = parked_read_line()) == 0) {
			rf_wg_add(&parked_back, (int64_t)spawned);
			for (i = 0; i < spawned; i++)
				rf_sem_release(&parked_sem[i]);
			/*
			 * Not before each is back: a wake-up given while a
			 * fiber still runs is taken without parking, and the
			 * next line's would then find it gone (a tracer would
			 * see one resumption fewer, and not why it stopped).
			 */
			rf_wg_wait(&parked_back, RF_NO_DEADLINE);
			printf("released %lu\n", ++parked_lines);
			fflush(stdout);
		}
		if (err == -ENODATA)
			err = 0;
	}
	__atomic_store_n(&parked_done, 1, __ATOMIC_SEQ_CST);
	for (i = 0; i < spawned; i++)
		rf_sem_release(&parked_sem[i]);
	for (i = 0; i < spawned; i++) {
		rf_join(f[i], &res, RF_NO_DEADLINE);
		if (res)
			ret = res;
	}
	free(f);
	free(parked_sem);
	if (err)
		return fiber_fail(spawned < cfg.rounds ? "rf_spawn_on" : "reading stdin", err);
	return ret;
}

static int run_parked(void)
{
	struct rf_runtime_opts opts = { .workers = cfg.workers };
	int rc = run_runtime(&opts, parked_main);

	if (rc)
		return rc;
	printf("mode=parked fibers=%lu lines=%lu resumed=%lu", cfg.rounds, parked_lines,
	       parked_resumed);
	print_rt_stats();
	return 0;
}

/* --------------------------------------------------------------------- main */

#define bad_usage(...) serve_usage_error(PROG, usage, __VA_ARGS__)

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "wait", no_argument, NULL, 'W' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	unsigned int given = 0, i;
	unsigned long v;
	int opt;

	if (argc < 2)
		bad_usage("%s", "missing MODE");
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
		usage(stdout);
		return 0;
	}
	for (i = 0; i < NMODES; i++)
		if (!strcmp(argv[1], modes[i].name))
			break;
	if (i == NMODES)
		bad_usage("unknown mode '%s'", argv[1]);
	cfg.mode = (enum mode)i;
	cfg.rounds = modes[i].rounds;
	cfg.ms = modes[i].ms ? modes[i].ms : DEFAULT_MS;
	cfg.workers = DEFAULT_WORKERS;

	/* getopt() on what follows MODE: argv[1] plays argv[0]. */
	argc--;
	argv++;
	argv[0] = (char *)PROG;
	while ((opt = getopt_long(argc, argv, "+n:m:w:sh", longopts, NULL)) != -1) {
		switch (opt) {
		case 'n':
			if (serve_parse_ulong(optarg, 1, MAX_ROUNDS, &cfg.rounds) < 0)
				bad_usage("bad round count '%s' (1 to 100000000)", optarg);
			given |= OPT_N;
			break;
		case 'm':
			if (serve_parse_ulong(optarg, 1, MAX_MS, &cfg.ms) < 0)
				bad_usage("bad milliseconds '%s' (1 to 10000)", optarg);
			cfg.ms_given = 1;
			given |= OPT_M;
			break;
		case 'w':
			if (serve_parse_ulong(optarg, 1, RF_MAX_WORKERS, &v) < 0)
				bad_usage("bad worker count '%s' (1 to 256)", optarg);
			cfg.workers = (unsigned int)v;
			given |= OPT_W;
			break;
		case 's':
			cfg.same_cpu = 1;
			given |= OPT_S;
			break;
		case 'W':
			cfg.wait = 1;
			break;
		default:
			serve_usage_exit(usage, opt);
		}
	}
	if (optind < argc)
		bad_usage("unexpected argument '%s'", argv[optind]);
	if (given & ~modes[cfg.mode].opts)
		bad_usage("an option given does not apply to mode %s",
				 modes[cfg.mode].name);

	if (cfg.wait)
		wait_for_go();

	switch (cfg.mode) {
	case M_FUTEX_PINGPONG:
		return run_futex_pingpong();
	case M_FIBER_PINGPONG:
		return run_fiber_pingpong();
	case M_FIBER_HOG:
		return run_fiber_hog();
	case M_THREAD_PREEMPT:
		return run_thread_preempt();
	case M_FIBER_PREEMPT:
		return run_fiber_preempt();
	case M_BATCH_REASONS:
		return run_batch_reasons();
	case M_IDLE:
		return run_idle();
	case M_FIBER_IO:
		return run_fiber_io();
	case M_PARKED:
		return run_parked();
	case M_BATCH_SEQ:
		return run_batch_seq();
	}
	return 2;
}
