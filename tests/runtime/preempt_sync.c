// SPDX-License-Identifier: MIT
/*
 * preempt_sync.c - preemption while other fibers hold and wait for the
 * runtime's synchronization, stress across workers with stealing on, and
 * the API that turns preemption off.
 *
 *  - rf_mutex: hogs compute inside and outside a critical section; a hog
 *    is preempted while it holds the mutex, the fibers of its worker that
 *    want it park, the hog resumes and releases.  rf_cond (a bounded
 *    buffer whose producers compute while holding its mutex), channels
 *    (producers compute between sends), rf_sem (holders compute inside),
 *    and rf_blocking() results that come back while the waiting fiber's
 *    worker runs a preempted hog.  Every item is delivered once, every
 *    protected counter is exact, nothing deadlocks; with one worker and
 *    with several.
 *  - Stress: four workers (more than this machine's CPUs) and hundreds of
 *    fibers mixing hogs of random length, yields, sleeps, channel traffic,
 *    a mutex and joins; each fiber's checksum equals the one computed
 *    without the runtime, the workers' counters add up to the runtime's,
 *    and a preempted fiber always resumes on its own thread.
 *  - rf_preempt_disable()/rf_preempt_enable() nest and count per fiber;
 *    rf_spawn_attr.no_preempt, RF_RT_NO_PREEMPT and hog_ns < 0 preempt
 *    nothing.
 *
 * A fiber can only be preempted in this program's own code, so the hogs
 * compute in crunch(), which calls nothing.  Whether a fiber was preempted
 * is never timed: with the other fibers pinned to the hog's worker, any of
 * them that runs while the hog is in the middle of a computation with no
 * call into the runtime proves it.  The checks that need preemption skip
 * where RF_FEAT_PREEMPT is absent (ThreadSanitizer); the rest still run.
 */
#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <sys/wait.h>

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#include <sanitizer/common_interface_defs.h>
#define HAVE_SANITIZER 1
#endif

#include "helpers.h"

#define ND RF_NO_DEADLINE

/* The hog threshold of every runtime here: short, so that tests are too. */
#define HOG_NS (2 * MSEC)

#define NO_PREEMPT_WHY "RF_FEAT_PREEMPT is absent in this build (ThreadSanitizer, or static libc)"

static int preempt_on;		/* a runtime with HOG_NS preempts here */
static uint64_t iters_per_ms;	/* of crunch(), measured at start */
static volatile uint64_t sink;	/* what a computation whose result is unused made */

static const struct rf_spawn_attr pinned_attr = { .name = "pinned", .pinned = 1 };

static uint64_t load64(const uint64_t *p)
{
	return __atomic_load_n(p, __ATOMIC_RELAXED);
}

static void add64(uint64_t *p, uint64_t n)
{
	__atomic_add_fetch(p, n, __ATOMIC_RELAXED);
}

static int load_int(const int *p)
{
	return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

static void store_int(int *p, int v)
{
	__atomic_store_n(p, v, __ATOMIC_RELEASE);
}

/*
 * crunch() - @n steps of xorshift64*, a chain no compiler shortens: the
 * code a hog runs.  It calls nothing, so a fiber can be preempted anywhere
 * in it.  The empty asm keeps the compiler from taking it for a pure
 * function, which it could drop when the result is unused or move across
 * the calls around it.
 */
static __attribute__((noinline)) uint64_t crunch(uint64_t x, uint64_t n)
{
	for (uint64_t i = 0; i < n; i++) {
		__asm__ volatile("" : "+r"(x));
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		x = x * 0x2545f4914f6cdd1dULL + i;
	}
	return x;
}

static uint64_t ms_iters(double ms)
{
	return (uint64_t)(ms * (double)iters_per_ms);
}

/*
 * Go on computing inside a critical section until some fiber has run beside
 * it (*@seen moved), for at most @max_ms more.  Where a preemption lands is
 * up to the monitor's sampling, not to us: in a 6.12-rt guest under TCG
 * one run in five preempted the hog (the "preempted" check passed)
 * only outside its 8 ms section, and no waiter saw the mutex held.  Holding
 * on until the event is seen makes the check about preemption, not about
 * the sampling's phase; a runtime that never preempts still fails it after
 * @max_ms.
 */
static uint64_t crunch_until_seen(uint64_t acc, const uint64_t *seen, int max_ms)
{
	for (int i = 0; i < max_ms && !load64(seen); i++)
		acc = crunch(acc, ms_iters(1));
	return acc;
}

static int64_t thread_cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

#define CALIBRATE_ROUNDS 5

/*
 * How many crunch() steps take a millisecond of CPU time here (sizes work
 * only): the fastest of CALIBRATE_ROUNDS measurements.  In a VM the guest
 * counts as its thread's CPU time the time the host kept its vCPU off the
 * CPU; one measurement taken during a burst of host load came out 25 times
 * too low (12,171 steps a millisecond against 287,260 in the next run), the
 * "8 ms" a hog holds the mutex was then 0.3 ms, under HOG_NS, and nothing
 * was preempted.  Too many steps only make a computation longer.
 */
static void calibrate(void)
{
	uint64_t x = 1, best = 0;

	for (int r = 0; r < CALIBRATE_ROUNDS; r++) {
		uint64_t n = 1 << 16, rate;
		int64_t t0, t;

		for (;;) {
			t0 = thread_cpu_ns();
			x = crunch(x, n);
			t = thread_cpu_ns() - t0;
			if (t >= 20 * MSEC || n >= (1ull << 40))
				break;
			n *= 2;
		}
		rate = n * MSEC / (uint64_t)(t > 0 ? t : 1);
		if (rate > best)
			best = rate;
	}
	iters_per_ms = best;
	if (!iters_per_ms || x == 42)
		iters_per_ms = 1;
}

/*
 * The watchdog reports every hog on stderr, and these tests make hundreds.
 * While a runtime runs, stderr goes to a file; afterwards the reports are
 * counted and anything else is copied to stderr, as it is when a
 * sanitizer ends the program.
 */
static int capture_fd = -1, saved_stderr = -1;
static uint64_t hog_lines;	/* hog reports seen so far */

/*
 * Is @line (@len bytes, its newline included) made of hog reports only?
 * Reports written by several workers at once interleave their pieces.
 */
static int hog_report_only(const char *line, size_t len)
{
	static const char *const pieces[] = {
		"ringfiber: fiber \"", "\" has run ", " ms (CPU time) on worker ", " without yielding",
		"; it is preempted while other fibers wait", "; the fibers queued behind it go",
	};
	char l[512];
	size_t i;

	if (len >= sizeof(l))
		return 0;
	memcpy(l, line, len);
	l[len] = '\0';
	for (i = 0; i < ARRAY_SIZE(pieces); i++)
		if (strstr(l, pieces[i]))
			return 1;
	/* what is left of a line between two reports' pieces: names and numbers */
	for (i = 0; i < len; i++)
		if (l[i] == ' ' || l[i] == ':')
			return 0;
	return 1;
}

static void capture_end(void)
{
	static const char report[] = "ringfiber: fiber \"";
	char buf[4096], line[512];
	size_t ll = 0, match = 0;
	ssize_t n;
	off_t off = 0;

	if (capture_fd < 0)
		return;
	fflush(stderr);
	dup2(saved_stderr, STDERR_FILENO);
	close(saved_stderr);
	while ((n = pread(capture_fd, buf, sizeof(buf), off)) > 0) {
		off += n;
		for (ssize_t i = 0; i < n; i++) {
			/* each report's first piece, wherever it landed */
			match = buf[i] == report[match] ? match + 1 : buf[i] == report[0];
			if (match == sizeof(report) - 1) {
				hog_lines++;
				match = 0;
			}
			if (ll < sizeof(line))
				line[ll++] = buf[i];
			if (buf[i] != '\n' && ll < sizeof(line))
				continue;
			if (!hog_report_only(line, ll) && write(STDERR_FILENO, line, ll) < 0)
				break;
			ll = 0;
		}
	}
	if (ll && !hog_report_only(line, ll) && write(STDERR_FILENO, line, ll) < 0)
		ll = 0;
	close(capture_fd);
	capture_fd = -1;
}

static void capture_begin(void)
{
	char path[] = "/tmp/rf-preempt-sync-XXXXXX";

	fflush(stderr);
	capture_fd = mkstemp(path);
	if (capture_fd < 0)
		return;
	unlink(path);
	saved_stderr = dup(STDERR_FILENO);
	if (saved_stderr < 0) {
		close(capture_fd);
		capture_fd = -1;
		return;
	}
	dup2(capture_fd, STDERR_FILENO);
}

/* run_main(), its hog reports counted rather than printed. */
static int run_quiet(const struct rf_runtime_opts *opts, rf_fn fn, void *arg, void **result,
		     struct rf_stats *after)
{
	int rc;

	capture_begin();
	rc = run_main(opts, fn, arg, result, after);
	capture_end();
	return rc;
}

/* A runtime for the checks that want preemption: HOG_NS, @workers workers. */
static struct rf_runtime_opts hog_opts(unsigned int workers)
{
	struct rf_runtime_opts o = { .workers = workers, .hog_ns = HOG_NS };

	return o;
}

/* How many workers each group of checks runs with. */
static const unsigned int worker_counts[] = { 1, 3 };

/* The checks a run with preemption makes: it ended, and preempted (or skip). */
static void check_run(int rc, const struct rf_stats *st, const char *what)
{
	is_int(rc, 0, tn("%s: the run ends", what));
	is_int(st->fibers, 0, tn("%s: no fiber left", what));
	if (preempt_on)
		ok(st->preemptions > 0, "%s", tn("%s: fibers were preempted (%" PRIu64 " times)",
						 what, st->preemptions));
	else
		tap_skip(1, NO_PREEMPT_WHY);
}

/* ------------------------------------------------------------- rf_mutex */

#define MTX_HOGS 1		/* per worker */
#define MTX_WAITERS 3		/* per worker */
#define MTX_HOG_ROUNDS 4
#define MTX_WAITER_ROUNDS 40

struct mtx_test {
	struct rf_mutex m;
	uint64_t counter;	/* under m: read, computed over, written back */
	int holder_worker;	/* atomic: worker of the hog inside m, or -1 */
	uint64_t seen_held;	/* atomic: waiters that ran beside a hog holding m */
	int errors;		/* atomic */
};

static void *mtx_hog(void *arg)
{
	struct mtx_test *t = arg;
	uint64_t acc = (uint64_t)rf_worker_id() + 1;

	for (int r = 0; r < MTX_HOG_ROUNDS; r++) {
		uint64_t v;

		if (rf_mutex_lock(&t->m, ND)) {
			__atomic_add_fetch(&t->errors, 1, __ATOMIC_RELAXED);
			break;
		}
		/* a read-modify-write across 8 ms: a second holder would lose it */
		v = t->counter;
		store_int(&t->holder_worker, rf_worker_id());
		acc = crunch(acc ^ v, ms_iters(8));
		acc = crunch_until_seen(acc, &t->seen_held, 200);
		store_int(&t->holder_worker, -1);
		t->counter = v + 1;
		rf_mutex_unlock(&t->m);
		acc = crunch(acc, ms_iters(3));
	}
	return (void *)(uintptr_t)acc;
}

static void *mtx_waiter(void *arg)
{
	struct mtx_test *t = arg;
	int me = rf_worker_id();

	for (int r = 0; r < MTX_WAITER_ROUNDS; r++) {
		/* pinned beside the hog: it holds m here only if it was preempted */
		if (load_int(&t->holder_worker) == me)
			add64(&t->seen_held, 1);
		if (rf_mutex_lock(&t->m, ND)) {
			__atomic_add_fetch(&t->errors, 1, __ATOMIC_RELAXED);
			break;
		}
		t->counter++;
		rf_mutex_unlock(&t->m);
		rf_yield();
	}
	return NULL;
}

static void *mtx_main(void *arg)
{
	struct mtx_test *t = arg;
	unsigned int nw = (unsigned int)rf_worker_count();
	struct rf_fiber *f[64];
	unsigned int n = 0;

	for (unsigned int w = 0; w < nw; w++) {
		for (int i = 0; i < MTX_WAITERS; i++)
			if (rf_spawn_on(w, &f[n], mtx_waiter, t, &pinned_attr) == 0)
				n++;
		for (int i = 0; i < MTX_HOGS; i++)
			if (rf_spawn_on(w, &f[n], mtx_hog, t, &pinned_attr) == 0)
				n++;
	}
	for (unsigned int i = 0; i < n; i++)
		rf_join(f[i], NULL, ND);
	return (void *)(uintptr_t)n;
}

static void test_mutex(unsigned int workers)
{
	struct rf_runtime_opts o = hog_opts(workers);
	struct mtx_test t = { .holder_worker = -1 };
	struct rf_stats st;
	void *res = NULL;
	int rc;

	rf_mutex_init(&t.m);
	rc = run_quiet(&o, mtx_main, &t, &res, &st);
	check_run(rc, &st, "rf_mutex");
	is_int((uintptr_t)res, workers * (MTX_HOGS + MTX_WAITERS), tn("rf_mutex: every fiber ran"));
	is_int(t.errors, 0, tn("rf_mutex: every lock succeeded"));
	is_int(t.counter, workers * (MTX_HOGS * MTX_HOG_ROUNDS + MTX_WAITERS * MTX_WAITER_ROUNDS),
	       tn("rf_mutex: the protected counter counts every increment"));
	if (preempt_on)
		ok(t.seen_held > 0, "%s",
		   tn("rf_mutex: fibers ran beside a hog preempted while it held the mutex "
		      "(%" PRIu64 " times), then waited for it", t.seen_held));
	else
		tap_skip(1, NO_PREEMPT_WHY);
}

/* -------------------------------------------------------------- rf_cond */

#define BB_CAP 4
#define BB_PRODUCERS 2		/* per worker */
#define BB_CONSUMERS 2		/* per worker */
#define BB_ITEMS 24		/* per producer */
#define BB_MAX_ITEMS (8 * BB_PRODUCERS * BB_ITEMS)

/* A bounded buffer: an rf_mutex and two rf_conds. */
struct bb_test {
	struct rf_mutex m;
	struct rf_cond not_full, not_empty;
	unsigned int head, len;
	int closed;
	uint64_t buf[BB_CAP];
	unsigned int seen[BB_MAX_ITEMS];	/* under m */
	unsigned int received;			/* under m */
	int next_producer;			/* atomic */
	int producer_in_cs;	/* atomic: worker of a producer computing inside m, or -1 */
	uint64_t seen_held;	/* atomic: fibers that ran beside it */
	uint64_t trylock_ok;	/* atomic: rf_mutex_trylock() succeeded beside it */
	int done;		/* atomic: the watchers end */
	int errors;		/* atomic */
};

static void *bb_producer(void *arg)
{
	struct bb_test *t = arg;
	int p = __atomic_fetch_add(&t->next_producer, 1, __ATOMIC_RELAXED);
	uint64_t acc = (uint64_t)p + 1;

	for (int i = 0; i < BB_ITEMS; i++) {
		uint64_t item = (uint64_t)p * BB_ITEMS + (uint64_t)i;

		if (rf_mutex_lock(&t->m, ND))
			goto fail;
		while (t->len == BB_CAP)
			if (rf_cond_wait(&t->not_full, &t->m, ND))
				goto fail_locked;
		/* the item's "work" is done holding the mutex (every 4th: 6 ms) */
		store_int(&t->producer_in_cs, rf_worker_id());
		acc = crunch(acc, ms_iters(i % 4 == 0 ? 6 : 0.05));
		if (i % 4 == 0)
			acc = crunch_until_seen(acc, &t->seen_held, 200);
		store_int(&t->producer_in_cs, -1);
		t->buf[(t->head + t->len++) % BB_CAP] = item;
		rf_cond_signal(&t->not_empty);
		rf_mutex_unlock(&t->m);
		acc = crunch(acc, ms_iters(i % 3 == 0 ? 2 : 0.1));
	}
	return (void *)(uintptr_t)acc;
fail_locked:
	rf_mutex_unlock(&t->m);
fail:
	__atomic_add_fetch(&t->errors, 1, __ATOMIC_RELAXED);
	return NULL;
}

static void *bb_consumer(void *arg)
{
	struct bb_test *t = arg;
	int me = rf_worker_id();

	for (;;) {
		uint64_t item;

		if (load_int(&t->producer_in_cs) == me)
			add64(&t->seen_held, 1);
		if (rf_mutex_lock(&t->m, ND))
			break;
		while (!t->len && !t->closed)
			if (rf_cond_wait(&t->not_empty, &t->m, ND))
				break;
		if (!t->len) {
			rf_mutex_unlock(&t->m);
			break;
		}
		item = t->buf[t->head];
		t->head = (t->head + 1) % BB_CAP;
		t->len--;
		if (item < BB_MAX_ITEMS)
			t->seen[item]++;
		t->received++;
		rf_cond_signal(&t->not_full);
		rf_mutex_unlock(&t->m);
		rf_yield();	/* ready when a producer is preempted holding m */
	}
	return NULL;
}

/*
 * Always ready beside the producers of its worker: one caught computing
 * while it holds the mutex is preempted, and the mutex stays held.
 */
static void *bb_watcher(void *arg)
{
	struct bb_test *t = arg;
	int me = rf_worker_id();

	while (!load_int(&t->done)) {
		if (load_int(&t->producer_in_cs) == me) {
			add64(&t->seen_held, 1);
			if (rf_mutex_trylock(&t->m) == 0) {
				add64(&t->trylock_ok, 1);
				rf_mutex_unlock(&t->m);
			}
		}
		rf_yield();
	}
	return NULL;
}

static void *bb_main(void *arg)
{
	struct bb_test *t = arg;
	unsigned int nw = (unsigned int)rf_worker_count();
	struct rf_fiber *prod[64], *cons[64], *watch[8];
	unsigned int np = 0, nc = 0, nwatch = 0;

	for (unsigned int w = 0; w < nw; w++) {
		if (rf_spawn_on(w, &watch[nwatch], bb_watcher, t, &pinned_attr) == 0)
			nwatch++;
		for (int i = 0; i < BB_CONSUMERS; i++)
			if (rf_spawn_on(w, &cons[nc], bb_consumer, t, &pinned_attr) == 0)
				nc++;
		for (int i = 0; i < BB_PRODUCERS; i++)
			if (rf_spawn_on(w, &prod[np], bb_producer, t, &pinned_attr) == 0)
				np++;
	}
	for (unsigned int i = 0; i < np; i++)
		rf_join(prod[i], NULL, ND);
	rf_mutex_lock(&t->m, ND);
	t->closed = 1;
	rf_cond_broadcast(&t->not_empty);
	rf_mutex_unlock(&t->m);
	for (unsigned int i = 0; i < nc; i++)
		rf_join(cons[i], NULL, ND);
	store_int(&t->done, 1);
	for (unsigned int i = 0; i < nwatch; i++)
		rf_join(watch[i], NULL, ND);
	return (void *)(uintptr_t)(np + nc + nwatch);
}

static void test_cond(unsigned int workers)
{
	struct rf_runtime_opts o = hog_opts(workers);
	struct bb_test *t = calloc(1, sizeof(*t));
	unsigned int items = workers * BB_PRODUCERS * BB_ITEMS, once = 0;
	struct rf_stats st;
	void *res = NULL;
	int rc;

	if (!t) {
		ok(0, "calloc");
		return;
	}
	rf_mutex_init(&t->m);
	rf_cond_init(&t->not_full);
	rf_cond_init(&t->not_empty);
	t->producer_in_cs = -1;
	rc = run_quiet(&o, bb_main, t, &res, &st);
	check_run(rc, &st, "rf_cond");
	is_int((uintptr_t)res, workers * (BB_PRODUCERS + BB_CONSUMERS + 1),
	       tn("rf_cond: every fiber ran"));
	is_int(t->errors, 0, tn("rf_cond: every producer's lock and wait succeeded"));
	for (unsigned int i = 0; i < items; i++)
		once += t->seen[i] == 1;
	is_int(t->received, items, tn("rf_cond: as many items received as produced"));
	is_int(once, items, tn("rf_cond: each item received exactly once"));
	is_int(t->trylock_ok, 0, tn("rf_cond: the mutex of a preempted producer stays held"));
	if (preempt_on)
		ok(t->seen_held > 0, "%s",
		   tn("rf_cond: fibers ran beside a producer preempted while it held the mutex "
		      "(%" PRIu64 " times)", t->seen_held));
	else
		tap_skip(1, NO_PREEMPT_WHY);
	free(t);
}

/* ------------------------------------------------------------- channels */

#define CH_PRODUCERS 2		/* per worker */
#define CH_CONSUMERS 2		/* per worker */
#define CH_ITEMS 30		/* per producer */
#define CH_MAX_PRODUCERS (8 * CH_PRODUCERS)

struct ch_test {
	struct rf_chan *ch;
	int next_producer;		/* atomic */
	int hogging[8];			/* atomic: a producer of worker i computes */
	uint64_t beside_hog;		/* atomic: receives beside a hogging producer */
	unsigned int seen[CH_MAX_PRODUCERS * CH_ITEMS];	/* atomic */
	uint64_t out_of_order;		/* atomic */
	int errors;			/* atomic */
};

static void *ch_producer(void *arg)
{
	struct ch_test *t = arg;
	int p = __atomic_fetch_add(&t->next_producer, 1, __ATOMIC_RELAXED), me = rf_worker_id();
	uint64_t acc = (uint64_t)p * 7919 + 1;

	for (int i = 0; i < CH_ITEMS; i++) {
		/* before every 5th send 5 ms: more than HOG_NS without a switch */
		__atomic_add_fetch(&t->hogging[me], 1, __ATOMIC_RELAXED);
		acc = crunch(acc, ms_iters(i % 5 == 4 ? 5 : 0.1));
		__atomic_sub_fetch(&t->hogging[me], 1, __ATOMIC_RELAXED);
		if (rf_chan_send(t->ch, (void *)(uintptr_t)(p * CH_ITEMS + i + 1), ND)) {
			__atomic_add_fetch(&t->errors, 1, __ATOMIC_RELAXED);
			break;
		}
	}
	return (void *)(uintptr_t)acc;
}

static void *ch_consumer(void *arg)
{
	struct ch_test *t = arg;
	int last[CH_MAX_PRODUCERS], me = rf_worker_id(), rc;
	void *v;

	for (int p = 0; p < CH_MAX_PRODUCERS; p++)
		last[p] = -1;
	while ((rc = rf_chan_recv(t->ch, &v, ND)) == 0) {
		uintptr_t id = (uintptr_t)v - 1;

		if (__atomic_load_n(&t->hogging[me], __ATOMIC_RELAXED))
			add64(&t->beside_hog, 1);
		if (id >= CH_MAX_PRODUCERS * CH_ITEMS) {
			__atomic_add_fetch(&t->errors, 1, __ATOMIC_RELAXED);
			continue;
		}
		__atomic_add_fetch(&t->seen[id], 1, __ATOMIC_RELAXED);
		/* one producer's items reach any one consumer in order */
		if ((int)(id % CH_ITEMS) <= last[id / CH_ITEMS])
			add64(&t->out_of_order, 1);
		last[id / CH_ITEMS] = (int)(id % CH_ITEMS);
	}
	if (rc != -EPIPE)
		__atomic_add_fetch(&t->errors, 1, __ATOMIC_RELAXED);
	return NULL;
}

static void *ch_main(void *arg)
{
	struct ch_test *t = arg;
	unsigned int nw = (unsigned int)rf_worker_count();
	struct rf_fiber *prod[64], *cons[64];
	unsigned int np = 0, nc = 0;

	for (unsigned int w = 0; w < nw; w++) {
		for (int i = 0; i < CH_CONSUMERS; i++)
			if (rf_spawn_on(w, &cons[nc], ch_consumer, t, &pinned_attr) == 0)
				nc++;
		for (int i = 0; i < CH_PRODUCERS; i++)
			if (rf_spawn_on(w, &prod[np], ch_producer, t, &pinned_attr) == 0)
				np++;
	}
	for (unsigned int i = 0; i < np; i++)
		rf_join(prod[i], NULL, ND);
	rf_chan_close(t->ch);
	for (unsigned int i = 0; i < nc; i++)
		rf_join(cons[i], NULL, ND);
	return (void *)(uintptr_t)(np + nc);
}

static void test_chan(unsigned int workers)
{
	struct rf_runtime_opts o = hog_opts(workers);
	struct ch_test *t = calloc(1, sizeof(*t));
	unsigned int items = workers * CH_PRODUCERS * CH_ITEMS, once = 0;
	struct rf_stats st;
	void *res = NULL;
	int rc;

	if (!t || rf_chan_create(&t->ch, 16)) {
		ok(0, "set up the channel test");
		free(t);
		return;
	}
	rc = run_quiet(&o, ch_main, t, &res, &st);
	check_run(rc, &st, "channel");
	is_int((uintptr_t)res, workers * (CH_PRODUCERS + CH_CONSUMERS), tn("channel: every fiber ran"));
	is_int(t->errors, 0, tn("channel: every send succeeded, receives end with -EPIPE"));
	for (unsigned int i = 0; i < items; i++)
		once += t->seen[i] == 1;
	is_int(once, items, tn("channel: each item received exactly once"));
	is_int(t->out_of_order, 0, tn("channel: each producer's items in order"));
	if (preempt_on)
		ok(t->beside_hog > 0, "%s",
		   tn("channel: consumers received beside a producer preempted between sends "
		      "(%" PRIu64 " times)", t->beside_hog));
	else
		tap_skip(1, NO_PREEMPT_WHY);
	rf_chan_destroy(t->ch);
	free(t);
}

/* --------------------------------------------------------------- rf_sem */

#define SEM_PERMITS 2
#define SEM_FIBERS 3		/* per worker */
#define SEM_ROUNDS 6

struct sem_test {
	struct rf_sem sem;
	int inside;		/* atomic */
	int max_inside;		/* atomic */
	uint64_t passes;	/* atomic */
	int errors;		/* atomic */
};

static void *sem_fiber(void *arg)
{
	struct sem_test *t = arg;
	uint64_t acc = (uint64_t)rf_worker_id() + 11;

	for (int r = 0; r < SEM_ROUNDS; r++) {
		int in, max;

		if (rf_sem_acquire(&t->sem, ND)) {
			__atomic_add_fetch(&t->errors, 1, __ATOMIC_RELAXED);
			break;
		}
		in = __atomic_add_fetch(&t->inside, 1, __ATOMIC_SEQ_CST);
		max = __atomic_load_n(&t->max_inside, __ATOMIC_RELAXED);
		while (in > max && !__atomic_compare_exchange_n(&t->max_inside, &max, in, 0,
								__ATOMIC_RELAXED, __ATOMIC_RELAXED))
			;
		acc = crunch(acc, ms_iters(3));
		__atomic_sub_fetch(&t->inside, 1, __ATOMIC_SEQ_CST);
		add64(&t->passes, 1);
		rf_sem_release(&t->sem);
		acc = crunch(acc, ms_iters(1));
	}
	return (void *)(uintptr_t)acc;
}

static void *sem_main(void *arg)
{
	struct sem_test *t = arg;
	unsigned int nw = (unsigned int)rf_worker_count();
	struct rf_fiber *f[64];
	unsigned int n = 0;

	for (unsigned int w = 0; w < nw; w++)
		for (int i = 0; i < SEM_FIBERS; i++)
			if (rf_spawn_on(w, &f[n], sem_fiber, t, &pinned_attr) == 0)
				n++;
	for (unsigned int i = 0; i < n; i++)
		rf_join(f[i], NULL, ND);
	return (void *)(uintptr_t)n;
}

static void test_sem(unsigned int workers)
{
	struct rf_runtime_opts o = hog_opts(workers);
	struct sem_test t = { 0 };
	struct rf_stats st;
	void *res = NULL;
	int rc;

	rf_sem_init(&t.sem, SEM_PERMITS);
	rc = run_quiet(&o, sem_main, &t, &res, &st);
	check_run(rc, &st, "rf_sem");
	is_int((uintptr_t)res, workers * SEM_FIBERS, tn("rf_sem: every fiber ran"));
	is_int(t.errors, 0, tn("rf_sem: every acquire succeeded"));
	is_int(t.passes, workers * SEM_FIBERS * SEM_ROUNDS, tn("rf_sem: every pass counted"));
	ok(t.max_inside >= 1 && t.max_inside <= SEM_PERMITS, "%s",
	   tn("rf_sem: never more than %d holders at once (saw %d)", SEM_PERMITS, t.max_inside));
	if (preempt_on && workers == 1)
		is_int(t.max_inside, SEM_PERMITS,
		       tn("rf_sem: a holder preempted inside, another fiber of its worker entered"));
	else if (workers == 1)
		tap_skip(1, NO_PREEMPT_WHY);
	is_int(t.sem.count, SEM_PERMITS, tn("rf_sem: every permit back"));
}

/* ---------------------------------------------------------- rf_blocking */

#define BL_FIBERS 3		/* per worker */
#define BL_CALLS 20		/* per fiber */

struct bl_worker {
	int hog_running;	/* atomic */
	int fibers_left;	/* atomic: blocking fibers of this worker not done */
	uint64_t while_hog;	/* atomic: results that came back while the hog ran */
	int hog_saw_done;
};

struct bl_test {
	struct bl_worker w[8];
	uint64_t calls;		/* atomic: results that were right */
	int errors;		/* atomic */
};

/* On a pool thread: a little computation the fiber can check. */
static void *bl_call(void *arg)
{
	return (void *)(uintptr_t)crunch((uint64_t)(uintptr_t)arg, 1000);
}

static void *bl_fiber(void *arg)
{
	struct bl_test *t = arg;
	struct bl_worker *bw = &t->w[rf_worker_id()];

	for (uintptr_t i = 1; i <= BL_CALLS; i++) {
		uintptr_t in = i * 1000003u + (uintptr_t)rf_worker_id();
		void *res = NULL;

		if (rf_blocking(bl_call, (void *)in, &res) ||
		    (uintptr_t)res != (uintptr_t)crunch(in, 1000))
			__atomic_add_fetch(&t->errors, 1, __ATOMIC_RELAXED);
		else
			add64(&t->calls, 1);
		if (load_int(&bw->hog_running))
			add64(&bw->while_hog, 1);
	}
	__atomic_sub_fetch(&bw->fibers_left, 1, __ATOMIC_RELEASE);
	return NULL;
}

/*
 * The hog computes until its worker's blocking fibers are done: they can
 * only be (one worker: preemption is all that lets them run; several: they
 * are pinned beside it).  Without preemption it stops after 20 ms.
 */
static void *bl_hog(void *arg)
{
	struct bl_test *t = arg;
	struct bl_worker *bw = &t->w[rf_worker_id()];
	uint64_t acc = 5;
	int all_done = 0;

	store_int(&bw->hog_running, 1);
	for (double ms = 0; ms < (preempt_on ? 20000 : 20) && !all_done; ms += 0.1) {
		acc = crunch(acc, ms_iters(0.1));
		all_done = __atomic_load_n(&bw->fibers_left, __ATOMIC_ACQUIRE) == 0;
	}
	bw->hog_saw_done = all_done;
	store_int(&bw->hog_running, 0);
	return (void *)(uintptr_t)acc;
}

static void *bl_main(void *arg)
{
	struct bl_test *t = arg;
	unsigned int nw = (unsigned int)rf_worker_count();
	struct rf_fiber *f[64];
	unsigned int n = 0;

	for (unsigned int w = 0; w < nw; w++)
		t->w[w].fibers_left = BL_FIBERS;
	for (unsigned int w = 0; w < nw; w++) {
		for (int i = 0; i < BL_FIBERS; i++)
			if (rf_spawn_on(w, &f[n], bl_fiber, t, &pinned_attr) == 0)
				n++;
		if (rf_spawn_on(w, &f[n], bl_hog, t, &pinned_attr) == 0)
			n++;
	}
	for (unsigned int i = 0; i < n; i++)
		rf_join(f[i], NULL, ND);
	return (void *)(uintptr_t)n;
}

static void test_blocking(unsigned int workers)
{
	struct rf_runtime_opts o = hog_opts(workers);
	struct bl_test t = { 0 };
	uint64_t while_hog = 0;
	struct rf_stats st;
	void *res = NULL;
	int rc, saw_done = 0;

	rc = run_quiet(&o, bl_main, &t, &res, &st);
	check_run(rc, &st, "rf_blocking");
	is_int((uintptr_t)res, workers * (BL_FIBERS + 1), tn("rf_blocking: every fiber ran"));
	is_int(t.errors, 0, tn("rf_blocking: every call returned its own result"));
	is_int(t.calls, workers * BL_FIBERS * BL_CALLS, tn("rf_blocking: every call came back"));
	for (unsigned int w = 0; w < workers; w++) {
		while_hog += t.w[w].while_hog;
		saw_done += t.w[w].hog_saw_done;
	}
	if (preempt_on) {
		is_int(saw_done, workers,
		       tn("rf_blocking: each hog saw its worker's calls end while it computed"));
		ok(while_hog > 0, "%s",
		   tn("rf_blocking: results reached fibers while their worker's hog was preempted "
		      "(%" PRIu64 " of them)", while_hog));
	} else {
		tap_skip(2, NO_PREEMPT_WHY);
	}
}

/* --------------------------------------------------------------- stress */

#define ST_WORKERS 4		/* more than this machine's 2 CPUs: stealing */
#define ST_STEPS 12
#define ST_CONSUMERS 4

struct st_test;

struct st_fiber {
	struct st_test *t;
	unsigned int idx;
	uint64_t sum;			/* the fiber's checksum */
	uint64_t want;			/* the same, computed without the runtime */
	uint64_t recv_sum, recv_n;	/* atomic: what consumers got from it */
	uint64_t want_recv_sum, want_recv_n;
	uint64_t want_locked;
	int errors;
};

struct st_test {
	struct rf_chan *ch;
	struct rf_mutex m;
	uint64_t locked;		/* under m */
	struct st_fiber *f;
	unsigned int n;
	uint64_t segments;		/* atomic: hog segments run */
	uint64_t moved;			/* atomic: segments that ended on another thread */
	uint64_t preempted_segments;	/* atomic: others ran on its thread meanwhile */
	int consumer_errors;		/* atomic */
};

/*
 * The fiber that last ran on this thread marks it here (every fiber of the
 * stress does, whenever it starts a step).
 */
static __thread uint64_t tls_owner;

/* This thread's tls_owner, its address computed afresh at each call. */
static __attribute__((noinline)) uint64_t *tls_owner_addr(void)
{
	uint64_t *p = &tls_owner;

	__asm__ volatile("" : "+r"(p));
	return p;
}

static uint64_t rng_next(uint64_t *s)
{
	*s += 0x9e3779b97f4a7c15ULL;
	uint64_t z = *s;

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static uint64_t fold(uint64_t a, uint64_t b)
{
	return (a ^ b) * 0x100000001b3ULL + 1;
}

/*
 * A hog segment: the thread-local address is taken before, held across a
 * computation that makes no call at all, and compared after with the
 * address computed afresh, as is the thread id.  Only preemption can
 * suspend the fiber in there; if it were then resumed by another worker
 * (stolen while preempted), both would differ.  If another fiber marked
 * the thread meanwhile, this one was preempted (and resumed here).
 */
static uint64_t hog_segment(struct st_test *t, uint64_t marker, uint64_t x, uint64_t n)
{
	uint64_t *held = tls_owner_addr();
	pid_t tid = gettid();

	*held = marker;
	x = crunch(x, n);
	if (held != tls_owner_addr() || gettid() != tid)
		add64(&t->moved, 1);
	else if (*held != marker)
		add64(&t->preempted_segments, 1);
	add64(&t->segments, 1);
	return x;
}

static void *st_child(void *arg)
{
	*tls_owner_addr() = (uint64_t)(uintptr_t)arg;
	return (void *)(uintptr_t)crunch((uint64_t)(uintptr_t)arg, ms_iters(0.2));
}

/*
 * One fiber's steps, chosen by a generator seeded with its index.  With
 * @t NULL: no runtime, only what the steps compute (the expected values).
 */
static void st_steps(struct st_test *t, struct st_fiber *sf)
{
	uint64_t rng = sf->idx * 2654435761u + 1, sum = sf->idx, marker = sf->idx + 1;
	int run = t != NULL;

	for (unsigned int s = 0; s < ST_STEPS; s++) {
		uint64_t r = rng_next(&rng), r2 = rng_next(&rng);
		struct rf_fiber *child;
		void *res;

		if (run)
			*tls_owner_addr() = marker;
		switch (r % 16) {
		case 0 ... 4:	/* a hog of 0 to 4 ms */
			if (run)
				sum = hog_segment(t, marker, sum, ms_iters((double)(r2 % 41) / 10));
			else
				sum = crunch(sum, ms_iters((double)(r2 % 41) / 10));
			break;
		case 5 ... 7:
			if (run && rf_yield())
				sf->errors++;
			sum = fold(sum, 1);
			break;
		case 8 ... 9:
			if (run && rf_sleep(rf_deadline_after((int64_t)(r2 % 200) * 1000)))
				sf->errors++;
			sum = fold(sum, 2);
			break;
		case 10 ... 11:	/* a message to the consumers */
			if (run) {
				if (rf_chan_send(t->ch, (void *)(uintptr_t)(sf->idx * 64 + s + 1), ND))
					sf->errors++;
			} else {
				sf->want_recv_sum += s + 1;
				sf->want_recv_n++;
			}
			sum = fold(sum, 3);
			break;
		case 12 ... 13:	/* a child that computes, joined */
			if (run) {
				res = NULL;
				if (rf_spawn(&child, st_child, (void *)(uintptr_t)r2, NULL) ||
				    rf_join(child, &res, ND))
					sf->errors++;
				sum = fold(sum, (uint64_t)(uintptr_t)res);
			} else {
				sum = fold(sum, crunch((uint64_t)(uintptr_t)r2, ms_iters(0.2)));
			}
			break;
		default:	/* a short computation under a mutex */
			if (run) {
				if (rf_mutex_lock(&t->m, ND)) {
					sf->errors++;
					break;
				}
				t->locked++;
				sum = crunch(sum, ms_iters(0.2));
				rf_mutex_unlock(&t->m);
			} else {
				sf->want_locked++;
				sum = crunch(sum, ms_iters(0.2));
			}
			break;
		}
	}
	if (run)
		sf->sum = sum;
	else
		sf->want = sum;
}

static void *st_fiber_fn(void *arg)
{
	struct st_fiber *sf = arg;

	st_steps(sf->t, sf);
	return NULL;
}

static void *st_consumer(void *arg)
{
	struct st_test *t = arg;
	void *v;
	int rc;

	while ((rc = rf_chan_recv(t->ch, &v, ND)) == 0) {
		uintptr_t id = (uintptr_t)v - 1, idx = id / 64;

		*tls_owner_addr() = ~(uint64_t)0;
		if (idx >= t->n) {
			__atomic_add_fetch(&t->consumer_errors, 1, __ATOMIC_RELAXED);
			continue;
		}
		add64(&t->f[idx].recv_sum, id % 64 + 1);
		add64(&t->f[idx].recv_n, 1);
	}
	if (rc != -EPIPE)
		__atomic_add_fetch(&t->consumer_errors, 1, __ATOMIC_RELAXED);
	return NULL;
}

static void *st_main(void *arg)
{
	struct st_test *t = arg;
	struct rf_fiber **fs = calloc(t->n, sizeof(*fs)), *cons[ST_CONSUMERS];
	unsigned int n = 0, nc = 0;

	if (!fs)
		return NULL;
	for (int i = 0; i < ST_CONSUMERS; i++)
		if (rf_spawn(&cons[nc], st_consumer, t, NULL) == 0)
			nc++;
	/* all on this worker: the others steal them */
	for (unsigned int i = 0; i < t->n; i++)
		if (rf_spawn(&fs[n], st_fiber_fn, &t->f[i], NULL) == 0)
			n++;
	for (unsigned int i = 0; i < n; i++)
		rf_join(fs[i], NULL, ND);
	rf_chan_close(t->ch);
	for (unsigned int i = 0; i < nc; i++)
		rf_join(cons[i], NULL, ND);
	free(fs);
	return (void *)(uintptr_t)(n + nc);
}

/* The counters rf_runtime_worker_stats() splits by worker. */
#define WORKER_COUNTERS(X) \
	X(fibers) X(inflight) X(switches) X(runs) X(enters) X(sqes) X(cqes) \
	X(stacks_mapped) X(stacks_pooled) X(remote_wakes) X(wake_calls) X(wake_errors) \
	X(sleeps) X(steals) X(hogs) X(preemptions) X(preempt_deferred) X(preempt_ticks)

/* The workers' counters of @rt add up to its own; each worker's header is right. */
static void check_worker_stats(struct rf_runtime *rt, const char *what)
{
	struct rf_stats all, one, sum = { 0 };
	char bad[512] = "";
	size_t bl = 0;
	int header_ok = 1;

	if (rf_runtime_stats(rt, &all)) {
		ok(0, "%s: rf_runtime_stats()", what);
		return;
	}
	for (unsigned int i = 0; i < all.workers; i++) {
		if (rf_runtime_worker_stats(rt, i, &one)) {
			header_ok = 0;
			continue;
		}
		header_ok &= one.workers == 1 && one.features == all.features &&
			     one.wake_backend == all.wake_backend && one.signal == all.signal;
#define ADD(c) sum.c += one.c;
		WORKER_COUNTERS(ADD)
#undef ADD
	}
#define CMP(c) \
	if (sum.c != all.c && bl < sizeof(bad) - 64) \
		bl += (size_t)snprintf(bad + bl, sizeof(bad) - bl, " %s %" PRIu64 "/%" PRIu64, \
				       #c, sum.c, all.c);
	WORKER_COUNTERS(CMP)
#undef CMP
	ok(header_ok, "%s: rf_runtime_worker_stats() of each of the %u workers: 1 worker, "
	   "the runtime's features", what, all.workers);
	if (!ok(bl == 0, "%s: the workers' counters add up to rf_runtime_stats()", what))
		tap_diag("  sum/runtime:%s", bad);
	is_int(rf_runtime_worker_stats(rt, all.workers, &one), -EINVAL,
	       "rf_runtime_worker_stats() of worker n -> -EINVAL");
}

static void test_stress(void)
{
	struct rf_runtime_opts o = hog_opts(ST_WORKERS);
	struct st_test t = { 0 };
	unsigned int sums_ok = 0, recv_ok = 0, errors = 0;
	uint64_t want_locked = 0;
	struct rf_runtime *rt = NULL;
	struct rf_stats st;
	void *res = NULL;
	int rc;

	t.n = test_quick() ? 64 : 160;
	t.f = calloc(t.n, sizeof(*t.f));
	rf_mutex_init(&t.m);
	if (!t.f || rf_chan_create(&t.ch, 8) || rf_runtime_create(&rt, &o)) {
		ok(0, "set up the stress");
		free(t.f);
		return;
	}
	for (unsigned int i = 0; i < t.n; i++) {
		t.f[i].idx = i;
		st_steps(NULL, &t.f[i]);	/* the expected values */
		want_locked += t.f[i].want_locked;
		t.f[i].t = &t;
	}
	capture_begin();
	rc = rf_runtime_run(rt, st_main, &t, &res);
	capture_end();
	is_int(rc, 0, "stress: the run ends");
	is_int((uintptr_t)res, t.n + ST_CONSUMERS, "stress: every fiber ran");
	for (unsigned int i = 0; i < t.n; i++) {
		struct st_fiber *sf = &t.f[i];

		errors += sf->errors != 0;
		sums_ok += sf->sum == sf->want;
		recv_ok += sf->recv_sum == sf->want_recv_sum && sf->recv_n == sf->want_recv_n;
	}
	is_int(errors, 0, "stress: every yield, sleep, send, spawn, join and lock succeeded");
	is_int(t.consumer_errors, 0, "stress: every message was well-formed, receives end with -EPIPE");
	is_int(sums_ok, t.n, "stress: every fiber's checksum equals the one computed without the runtime");
	is_int(recv_ok, t.n, "stress: every fiber's messages received once each");
	is_int(t.locked, want_locked, "stress: the mutex-protected count is exact");
	ok(t.segments > 0, "stress: %" PRIu64 " hog segments ran", t.segments);
	is_int(t.moved, 0, "stress: no hog segment ended on another thread than it began on");
	check_worker_stats(rt, "stress");
	if (rf_runtime_stats(rt, &st) == 0) {
		is_int(st.fibers, 0, "stress: no fiber left");
		tap_diag("stress: %" PRIu64 " steals, %" PRIu64 " preemptions, %" PRIu64
			 " deferred, %" PRIu64 " hogs reported, %" PRIu64 " of %" PRIu64
			 " segments preempted", st.steals, st.preemptions, st.preempt_deferred,
			 st.hogs, t.preempted_segments, t.segments);
		if (preempt_on) {
			ok(st.preemptions > 0, "stress: fibers were preempted (%" PRIu64 " times)",
			   st.preemptions);
			ok(t.preempted_segments > 0, "stress: segments preempted and resumed on their "
			   "own thread (%" PRIu64 ")", t.preempted_segments);
		} else {
			tap_skip(2, NO_PREEMPT_WHY);
		}
	}
	rf_runtime_destroy(rt);
	rf_chan_destroy(t.ch);
	free(t.f);
}

/* ------------------------------------------------------------------ API */

/* Most work a hog does while it waits for something only preemption brings. */
#define API_MAX_MS 5000.0

struct api_test {
	int stop;			/* atomic: the ticker ends */
	uint64_t ticks;			/* atomic: the ticker's turns */
	struct rf_event parked, release;
	/* what the fibers saw, checked after the run */
	int disable_rc[3], enable_rc[3], extra_enable_rc;
	int deferred_reached[2];	/* disabled: the worker deferred preemption */
	uint64_t ticks_disabled[2];	/* the ticker's turns meanwhile */
	int preempted_after_enable;
	uint64_t preempt_count_after_enable;
	int other_disable_rc, other_enable_rc[2], main_enable_rc, main_preempted;
	int np_rc[3], np_reported;
	uint64_t np_ticks, np_preemptions;
};

static void *ticker(void *arg)
{
	struct api_test *a = arg;

	while (!load_int(&a->stop)) {
		add64(&a->ticks, 1);
		rf_yield();
	}
	return NULL;
}

/* This worker's counters, read from one of its fibers. */
static struct rf_stats worker_stats(void)
{
	struct rf_stats st;

	if (rf_runtime_worker_stats(NULL, (unsigned int)rf_worker_id(), &st))
		memset(&st, 0xff, sizeof(st));
	return st;
}

/*
 * Compute until this worker's counter at @off has grown by @by, or until
 * the ticker has run (@off < 0), with no call that could switch fibers.
 * Return: non-zero if that happened within API_MAX_MS of work.
 */
static int hog_until(struct api_test *a, long off, uint64_t by)
{
	struct rf_stats st = worker_stats();
	uint64_t start = off < 0 ? load64(&a->ticks) : *(uint64_t *)((char *)&st + off);
	uint64_t x = 1, step = ms_iters(0.1) + 1;

	for (double ms = 0; ms < API_MAX_MS; ms += 0.1) {
		x = crunch(x, step);
		if (off < 0) {
			if (load64(&a->ticks) != start)
				break;
		} else {
			st = worker_stats();
			if (*(uint64_t *)((char *)&st + off) >= start + by)
				break;
		}
	}
	sink = x;
	return off < 0 ? load64(&a->ticks) != start
		       : *(uint64_t *)((char *)&st + off) >= start + by;
}

#define DEFERRED ((long)offsetof(struct rf_stats, preempt_deferred))
#define HOGS ((long)offsetof(struct rf_stats, hogs))
#define TICKER (-1L)

static void *api_other(void *arg)
{
	struct api_test *a = arg;

	a->other_disable_rc = rf_preempt_disable();
	rf_event_set(&a->parked);
	rf_event_wait(&a->release, ND);	/* parked with one level of its own */
	a->other_enable_rc[0] = rf_preempt_enable();
	a->other_enable_rc[1] = rf_preempt_enable();
	return NULL;
}

static void *api_no_preempt(void *arg)
{
	struct api_test *a = arg;
	uint64_t t0, p0;

	a->np_rc[0] = rf_preempt_disable();
	a->np_rc[1] = rf_preempt_enable();
	a->np_rc[2] = rf_preempt_enable();	/* the attribute is no level */
	t0 = load64(&a->ticks);
	p0 = worker_stats().preemptions;
	if (preempt_on)
		a->np_reported = hog_until(a, HOGS, 1);
	else
		sink = crunch(1, ms_iters(10));
	a->np_ticks = load64(&a->ticks) - t0;
	a->np_preemptions = worker_stats().preemptions - p0;
	return NULL;
}

static void *api_main(void *arg)
{
	static const struct rf_spawn_attr np_attr = { .name = "no_preempt", .no_preempt = 1 };
	struct api_test *a = arg;
	struct rf_fiber *tk, *other, *np;
	uint64_t t0, p0;

	if (rf_spawn(&tk, ticker, a, NULL))
		return NULL;
	rf_yield();
	for (int i = 0; i < 3; i++)
		a->disable_rc[i] = rf_preempt_disable();
	/* three levels, then one: the worker finds a hog it may not stop */
	for (int pass = 0; pass < 2; pass++) {
		t0 = load64(&a->ticks);
		if (preempt_on)
			a->deferred_reached[pass] = hog_until(a, DEFERRED, 3);
		a->ticks_disabled[pass] = load64(&a->ticks) - t0;
		if (pass == 0) {
			a->enable_rc[0] = rf_preempt_enable();
			a->enable_rc[1] = rf_preempt_enable();
		}
	}
	a->enable_rc[2] = rf_preempt_enable();
	p0 = worker_stats().preemptions;
	if (preempt_on)
		a->preempted_after_enable = hog_until(a, TICKER, 0);
	a->preempt_count_after_enable = worker_stats().preemptions - p0;
	a->extra_enable_rc = rf_preempt_enable();

	/* another fiber's level does not keep this one from being preempted */
	if (rf_spawn(&other, api_other, a, NULL) == 0) {
		rf_event_wait(&a->parked, ND);
		a->main_enable_rc = rf_preempt_enable();
		if (preempt_on)
			a->main_preempted = hog_until(a, TICKER, 0);
		rf_event_set(&a->release);
		rf_join(other, NULL, ND);
	}

	if (rf_spawn(&np, api_no_preempt, a, &np_attr) == 0)
		rf_join(np, NULL, ND);
	store_int(&a->stop, 1);
	rf_join(tk, NULL, ND);
	return NULL;
}

static void test_api(void)
{
	struct rf_runtime_opts o = hog_opts(1);
	struct api_test a = { 0 };
	struct rf_stats st;
	int rc;

	rf_event_init(&a.parked);
	rf_event_init(&a.release);
	rc = run_quiet(&o, api_main, &a, NULL, &st);
	is_int(rc, 0, "api: the run ends");
	ok(a.disable_rc[0] == 0 && a.disable_rc[1] == 0 && a.disable_rc[2] == 0,
	   "api: rf_preempt_disable() three times -> 0 each");
	ok(a.enable_rc[0] == 0 && a.enable_rc[1] == 0 && a.enable_rc[2] == 0,
	   "api: rf_preempt_enable() three times -> 0 each");
	is_int(a.extra_enable_rc, -EINVAL, "api: a fourth rf_preempt_enable() -> -EINVAL");
	is_int(a.main_enable_rc, -EINVAL,
	       "api: rf_preempt_enable() while another fiber has disabled -> -EINVAL");
	ok(a.other_disable_rc == 0 && a.other_enable_rc[0] == 0, "api: that fiber's own level "
	   "survives its parking: disable -> 0, enable -> 0");
	is_int(a.other_enable_rc[1], -EINVAL, "api: and its second enable -> -EINVAL");
	ok(a.np_rc[0] == 0 && a.np_rc[1] == 0, "api: no_preempt fiber: disable, enable -> 0, 0");
	is_int(a.np_rc[2], -EINVAL, "api: no_preempt is no disable level: enable -> -EINVAL");
	if (!preempt_on) {
		tap_skip(10, NO_PREEMPT_WHY);
		return;
	}
	ok(a.deferred_reached[0], "api: 3 levels: the worker deferred preempting the hog");
	is_int(a.ticks_disabled[0], 0, "api: 3 levels: nothing else ran on its worker meanwhile");
	ok(a.deferred_reached[1], "api: 1 level left: deferred again");
	is_int(a.ticks_disabled[1], 0, "api: 1 level left: nothing else ran meanwhile");
	ok(a.preempted_after_enable, "api: after the third enable, the hog is preempted");
	ok(a.preempt_count_after_enable > 0, "api: and counted (%" PRIu64 ")",
	   a.preempt_count_after_enable);
	ok(a.main_preempted, "api: a fiber is preempted while another one has disabled");
	ok(a.np_reported, "api: a no_preempt hog is reported");
	ok(a.np_ticks == 0 && a.np_preemptions == 0,
	   "api: but never preempted (%" PRIu64 " ticker turns, %" PRIu64 " preemptions)",
	   a.np_ticks, a.np_preemptions);
	ok(st.preempt_deferred > 0, "api: rf_stats.preempt_deferred counts the deferrals (%" PRIu64
	   ")", st.preempt_deferred);
}

/* A runtime that never preempts: a hog keeps its worker, nothing is counted. */
struct nop_test {
	struct api_test a;
	int wait_report;
	int reported;
	uint64_t ticks_during;
};

static void *nop_main(void *arg)
{
	struct nop_test *n = arg;
	struct rf_fiber *tk;
	uint64_t t0;

	if (rf_spawn(&tk, ticker, &n->a, NULL))
		return NULL;
	rf_yield();
	t0 = load64(&n->a.ticks);
	if (n->wait_report)
		n->reported = hog_until(&n->a, HOGS, 1);
	else
		sink = crunch(1, ms_iters(10));
	n->ticks_during = load64(&n->a.ticks) - t0;
	store_int(&n->a.stop, 1);
	rf_join(tk, NULL, ND);
	return NULL;
}

/* @report: 1 wait until the hog is reported, 0 none is (no watchdog), -1 do not look */
static void test_never_preempts(const char *what, const struct rf_runtime_opts *o, int report)
{
	struct nop_test n = { .wait_report = report > 0 };
	struct rf_stats st;
	int rc;

	rc = run_quiet(o, nop_main, &n, NULL, &st);
	is_int(rc, 0, tn("%s: the run ends", what));
	ok(!(st.features & RF_FEAT_PREEMPT), "%s: rf_stats.features lacks RF_FEAT_PREEMPT", what);
	if (report > 0)
		ok(n.reported, "%s: the hog is reported (hogs %" PRIu64 ")", what, st.hogs);
	else if (report == 0)
		is_int(st.hogs, 0, tn("%s: no hog reported (no watchdog)", what));
	else
		tap_skip(1, "no preemption here: the watchdog's signal may be held back "
			 "(ThreadSanitizer)");
	is_int(n.ticks_during, 0, tn("%s: nothing else ran on the hog's worker meanwhile", what));
	is_int(st.preemptions, 0, tn("%s: rf_stats.preemptions is 0", what));
	is_int(st.preempt_deferred, 0, tn("%s: rf_stats.preempt_deferred is 0", what));
}

/* ------------------------------------------ the library's own locks */

/*
 * rf_key_create() and rf_key_delete() take a process-wide pthread mutex.
 * A hog that calls them is caught by the slice timer inside them as often
 * as anywhere; if it were preempted holding the mutex, the next fiber of
 * its worker to call them would block the worker's thread for good.
 */
#define KEY_TICKS 200

struct key_test {
	int stop;		/* atomic */
	uint64_t ticks;		/* atomic: the ticker's turns */
	int errors;
};

static void *key_hog(void *arg)
{
	struct key_test *k = arg;
	uint64_t x = 1;

	for (int i = 0; i < 1000000 && load64(&k->ticks) < KEY_TICKS; i++) {
		rf_key_t key;

		if (rf_key_create(&key, NULL) || rf_key_delete(key))
			k->errors++;
		x = crunch(x, ms_iters(0.001));
	}
	sink = x;
	store_int(&k->stop, 1);
	return NULL;
}

static void *key_ticker(void *arg)
{
	struct key_test *k = arg;

	while (!load_int(&k->stop)) {
		rf_key_t key;

		if (rf_key_create(&key, NULL) == 0)
			rf_key_delete(key);
		add64(&k->ticks, 1);
		rf_yield();
	}
	return NULL;
}

static void *key_main(void *arg)
{
	struct rf_fiber *t, *h;

	if (rf_spawn(&t, key_ticker, arg, NULL) || rf_spawn(&h, key_hog, arg, NULL))
		return NULL;
	rf_join(h, NULL, ND);
	rf_join(t, NULL, ND);
	return NULL;
}

/* In a child: a worker blocked for good must fail the check, not hang the test. */
static void test_key_lock(void)
{
	struct rf_runtime_opts o = hog_opts(1);
	struct key_test k = { 0 };
	int p[2], status = -1;
	pid_t pid;

	if (!preempt_on) {
		tap_skip(2, NO_PREEMPT_WHY);
		return;
	}
	if (pipe(p)) {
		ok(0, "pipe");
		return;
	}
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid == 0) {
		close(p[0]);
		signal(SIGALRM, SIG_DFL);	/* not the test's watchdog: no "Bail out!" */
		alarm(10);
		capture_begin();
		run_main(&o, key_main, &k, NULL, NULL);
		capture_end();
		_exit(write(p[1], &k, sizeof(k)) == (ssize_t)sizeof(k) ? 0 : 1);
	}
	close(p[1]);
	if (pid < 0 || read(p[0], &k, sizeof(k)) != (ssize_t)sizeof(k))
		k.errors = -1;
	close(p[0]);
	if (pid > 0)
		waitpid(pid, &status, 0);
	if (!ok(WIFEXITED(status) && WEXITSTATUS(status) == 0 && k.errors == 0,
		"rf_key_create()/rf_key_delete() in a preempted hog and beside it: no deadlock"))
		tap_diag("  child status 0x%x (killed by signal %d: 14 is its 10 s alarm)", status,
			 WIFSIGNALED(status) ? WTERMSIG(status) : 0);
	ok(k.ticks >= KEY_TICKS, "and the hog was preempted (%" PRIu64 " turns of the other fiber)",
	   k.ticks);
}

/* ----------------------------------------------------------------- main */

int main(void)
{
	struct rf_runtime_opts o = hog_opts(1);
	struct rf_runtime *rt = NULL;
	struct rf_stats st;
	char name[32];

	test_watchdog(test_quick() ? 240 : 120);
	atexit(capture_end);
#ifdef HAVE_SANITIZER
	__sanitizer_set_death_callback(capture_end);
#endif
	calibrate();
	if (rf_runtime_create(&rt, &o) == 0 && rf_runtime_stats(rt, &st) == 0)
		preempt_on = !!(st.features & RF_FEAT_PREEMPT);
	rf_runtime_destroy(rt);
	tap_diag("preemption %s; crunch(): %" PRIu64 " steps a millisecond", preempt_on ? "on" :
		 "off (" NO_PREEMPT_WHY ")", iters_per_ms);

	for (size_t i = 0; i < ARRAY_SIZE(worker_counts); i++) {
		snprintf(name, sizeof(name), "%u worker%s", worker_counts[i],
			 worker_counts[i] > 1 ? "s" : "");
		test_config_name = name;
		test_mutex(worker_counts[i]);
		test_cond(worker_counts[i]);
		test_chan(worker_counts[i]);
		test_sem(worker_counts[i]);
		test_blocking(worker_counts[i]);
	}
	test_config_name = NULL;
	test_stress();
	test_api();
	test_key_lock();

	o.flags = RF_RT_NO_PREEMPT;
	test_never_preempts("RF_RT_NO_PREEMPT", &o, preempt_on ? 1 : -1);
	o.flags = 0;
	o.hog_ns = -1;
	test_never_preempts("hog_ns < 0", &o, 0);
	tap_diag("%" PRIu64 " hog reports of the watchdog kept off stderr", hog_lines);
	return done_testing();
}
