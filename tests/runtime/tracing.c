// SPDX-License-Identifier: MIT
/*
 * tracing.c - the runtime's own side of tracing, without a tracer.
 *
 * The tracers' tests (tests/trace/) need root and BPF.  This one checks
 * what the runtime does by itself: rf_stats.runs, the count every tracer is
 * compared with, and the timed switch path that a tracer turns on, run
 * across workers under ThreadSanitizer (make check-tsan): the ready stamp
 * is written by the waker's thread and read by the worker that runs the
 * fiber.
 *
 * White-box in one place: the kernel raises a probe's semaphore when a
 * uprobe is attached; here the test raises it itself, so the runtime takes
 * its timestamps and fills its trace records while no tracer traps (the
 * probe sites stay no-ops).
 */
#include <stdlib.h>

#include "helpers.h"

/* userspace/src/trace.c: shared by the ready, run, park and batch probes. */
extern volatile unsigned short ringfiber_run_semaphore;

#define YIELDERS 4

struct yield_arg {
	int rounds;
};

static void *yielder(void *p)
{
	const struct yield_arg *a = p;

	for (int i = 0; i < a->rounds; i++)
		rf_yield();
	return NULL;
}

/* YIELDERS fibers yield to each other on one worker; main joins them. */
static void *yield_main(void *p)
{
	struct rf_fiber *f[YIELDERS];
	int spawned = 0;

	for (int i = 0; i < YIELDERS; i++)
		if (rf_spawn(&f[i], yielder, p, NULL) == 0)
			spawned++;
	for (int i = 0; i < spawned; i++)
		rf_join(f[i], NULL, RF_NO_DEADLINE);
	return (void *)(intptr_t)spawned;
}

struct pingpong {
	struct rf_chan *ping, *pong;
	int rounds;
	int bad;
};

static void *pinger(void *p)
{
	struct pingpong *pp = p;

	for (intptr_t i = 0; i < pp->rounds; i++) {
		void *v = NULL;

		if (rf_chan_send(pp->ping, (void *)(i + 1), RF_NO_DEADLINE) ||
		    rf_chan_recv(pp->pong, &v, RF_NO_DEADLINE) || v != (void *)(i + 2))
			pp->bad++;
	}
	return NULL;
}

static void *ponger(void *p)
{
	struct pingpong *pp = p;

	for (int i = 0; i < pp->rounds; i++) {
		void *v = NULL;

		if (rf_chan_recv(pp->ping, &v, RF_NO_DEADLINE) ||
		    rf_chan_send(pp->pong, (char *)v + 1, RF_NO_DEADLINE))
			pp->bad++;
	}
	return NULL;
}

static void *blocking_job(void *p)
{
	return p;
}

/* Ping-pong across two workers, a sleep and an offloaded call: every stamp. */
static void *cross_main(void *p)
{
	struct pingpong *pp = p;
	struct rf_fiber *a, *b;
	void *r = NULL;

	if (rf_chan_create(&pp->ping, 0) || rf_chan_create(&pp->pong, 0))
		return (void *)-1;
	if (rf_spawn_on(0, &a, pinger, pp, NULL) || rf_spawn_on(1, &b, ponger, pp, NULL))
		return (void *)-1;
	rf_sleep(rf_deadline_after(MSEC));
	if (rf_blocking(blocking_job, pp, &r) || r != pp)
		pp->bad++;
	rf_join(a, NULL, RF_NO_DEADLINE);
	rf_join(b, NULL, RF_NO_DEADLINE);
	rf_chan_destroy(pp->ping);
	rf_chan_destroy(pp->pong);
	return NULL;
}

static void check_yield_runs(const char *what)
{
	struct yield_arg a = { .rounds = test_quick() ? 200 : 2000 };
	uint64_t want = (uint64_t)YIELDERS * (uint64_t)a.rounds;
	struct rf_runtime_opts opts = { .workers = 1 };
	struct rf_stats st;
	void *res = NULL;
	int rc = run_main(&opts, yield_main, &a, &res, &st);

	is_int(rc, 0, tn("%s: the yield run ends", what));
	is_int((intptr_t)res, YIELDERS, tn("%s: %d yielders ran", what, YIELDERS));
	/*
	 * Each yield with another fiber ready is one switch into a fiber; the
	 * last yields of the last fiber find nobody and switch nowhere; the
	 * first runs, main's and the loop's rounds add a few.
	 */
	ok(st.runs >= want - YIELDERS && st.runs <= want + 4 * YIELDERS + 64,
	   "%s: rf_stats.runs %llu counts the %llu yields (+ first runs)", what,
	   (unsigned long long)st.runs, (unsigned long long)want);
	ok(st.runs <= st.switches, "%s: runs (%llu) <= switches (%llu)", what,
	   (unsigned long long)st.runs, (unsigned long long)st.switches);
}

static void check_cross(const char *what)
{
	struct rf_runtime_opts opts = { .workers = 2 };
	struct pingpong pp = { .rounds = test_quick() ? 200 : 2000 };
	struct rf_stats st;
	void *res = NULL;
	int rc = run_main(&opts, cross_main, &pp, &res, &st);

	is_int(rc, 0, tn("%s: the cross-worker run ends", what));
	ok(res == NULL && pp.bad == 0, "%s: every value crossed intact", what);
	ok(st.runs >= (uint64_t)pp.rounds,
	   "%s: %d round trips took at least as many runs (%llu)", what, pp.rounds,
	   (unsigned long long)st.runs);
}

int main(void)
{
	test_watchdog(120);

	check_yield_runs("untraced");
	check_cross("untraced");

	ringfiber_run_semaphore = 1;	/* as if a tracer attached to "batch" */
	check_yield_runs("timed");
	check_cross("timed");
	ringfiber_run_semaphore = 0;
	return done_testing();
}
