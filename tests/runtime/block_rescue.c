// SPDX-License-Identifier: MIT
/*
 * block_rescue.c - RF_RT_BLOCK_RESCUE: a fiber that blocks its worker in a
 * plain system call (no rf_blocking()) does not stop the fibers queued
 * behind it.
 *
 * Fiber A makes fiber B ready on its own worker and then read()s an empty
 * pipe, which only B writes: without the rescue this never ends (a guard
 * thread of the test writes the pipe after GUARD_S seconds and the check
 * fails); with it, the module tells the monitor that A's worker blocked,
 * the monitor signals that worker, and its handler suspends A in its
 * read() as preemption suspends a hog: the worker runs B, and A's read()
 * is restarted (SA_RESTART) when A runs again and returns B's byte.  With
 * one worker and with two (B then runs on A's worker).  Then the same with
 * A in nanosleep(), which signal(7) says is never restarted: it returns
 * EINTR at the rescue, as documented.  And A blocked in fread(), which
 * holds the stream's lock: A is not suspended there, and with two workers
 * B is handed to the other worker instead (with one, B waits, and the
 * worker is asked once, not again and again).  And a worker that only
 * sleeps in its own idle sleep is never asked.
 *
 * The rescue needs /dev/rfwake with block notification (RFWAKE_FEAT_WATCH):
 * that part runs in the test VM (tests/rfwake/vm.sh) and is skipped
 * elsewhere.  What needs no module runs everywhere: the flag's errors, and
 * RF_BLOCK_RESCUE=1's fallback.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <semaphore.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "helpers.h"

/* How long a deadlocked case waits before the guard ends it (no timing check). */
#define GUARD_S 60
/* The case that is meant to stay blocked: long enough for a storm to show. */
#define STUCK_S 3

static int pipefd[2];
static int a_worker, b_worker;		/* atomic */
static int b_ran;			/* atomic */
static ssize_t a_read;
static int a_errno;
static int sleep_rc, sleep_errno;

static sem_t guard_done;
static int guard_fired;			/* atomic */
static int guard_s = GUARD_S;

/* The guard: if A is still blocked after GUARD_S seconds, release it. */
static void *guard(void *arg)
{
	struct timespec until;
	char c = 'g';

	(void)arg;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += guard_s;
	while (sem_timedwait(&guard_done, &until) != 0) {
		if (errno == ETIMEDOUT) {
			__atomic_store_n(&guard_fired, 1, __ATOMIC_SEQ_CST);
			if (write(pipefd[1], &c, 1) != 1)
				break;
			break;
		}
	}
	return NULL;
}

static FILE *stream;
static void *writer(void *arg);

/* A, blocked inside stdio (its lock held): never suspended there. */
static void *freader(void *arg)
{
	struct rf_fiber *b;
	char c;

	(void)arg;
	__atomic_store_n(&a_worker, rf_worker_id(), __ATOMIC_SEQ_CST);
	if (rf_spawn(&b, writer, NULL, NULL))
		return (void *)1;
	a_read = (ssize_t)fread(&c, 1, 1, stream);
	a_errno = errno;
	return b;
}

static void *writer(void *arg)
{
	char c = 'b';

	(void)arg;
	__atomic_store_n(&b_worker, rf_worker_id(), __ATOMIC_SEQ_CST);
	__atomic_store_n(&b_ran, 1, __ATOMIC_SEQ_CST);
	if (write(pipefd[1], &c, 1) != 1)
		return (void *)1;
	return NULL;
}

/* A: B is made ready here, on A's worker; then A blocks its thread in read(). */
static void *reader(void *arg)
{
	struct rf_fiber *b;
	char c;

	(void)arg;
	__atomic_store_n(&a_worker, rf_worker_id(), __ATOMIC_SEQ_CST);
	if (rf_spawn(&b, writer, NULL, NULL))
		return (void *)1;
	a_read = read(pipefd[0], &c, 1);	/* the worker's thread blocks here */
	a_errno = errno;
	return b;
}

/* A again, blocked in nanosleep(): B only sets its flag. */
static void *marker(void *arg)
{
	(void)arg;
	__atomic_store_n(&b_worker, rf_worker_id(), __ATOMIC_SEQ_CST);
	__atomic_store_n(&b_ran, 1, __ATOMIC_SEQ_CST);
	return NULL;
}

static void *sleeper(void *arg)
{
	struct timespec ts = { .tv_sec = GUARD_S }, rem;
	struct rf_fiber *b;

	(void)arg;
	__atomic_store_n(&a_worker, rf_worker_id(), __ATOMIC_SEQ_CST);
	if (rf_spawn(&b, marker, NULL, NULL))
		return (void *)1;
	sleep_rc = nanosleep(&ts, &rem);
	sleep_errno = errno;
	return b;
}

/* The main fiber: run @fn as A, then join A and the B it made. */
static void *run_ab(void *arg)
{
	rf_fn fn = (rf_fn)arg;
	struct rf_fiber *a, *b = NULL;
	void *res = NULL;

	if (rf_spawn(&a, fn, NULL, NULL))
		return (void *)1;
	if (rf_join(a, (void **)&b, RF_NO_DEADLINE) || !b || b == (void *)1)
		return (void *)2;
	if (rf_join(b, &res, RF_NO_DEADLINE) || res)
		return (void *)3;
	return NULL;
}

static void reset(void)
{
	a_worker = b_worker = -1;
	b_ran = 0;
	a_read = -1;
	a_errno = sleep_errno = 0;
	sleep_rc = 1;
	guard_fired = 0;
}

/* A (@fn) blocks on the pipe with B ready behind it, with a guard thread. */
static void pipe_case(const struct rf_runtime_opts *opts, rf_fn fn, const char *what,
		      struct rf_stats *st)
{
	pthread_t g;
	void *res = (void *)-1;
	int rc;

	reset();
	if (pipe(pipefd) != 0 || sem_init(&guard_done, 0, 0) != 0 ||
	    pthread_create(&g, NULL, guard, NULL) != 0) {
		ok(0, "%s", tn("pipe, semaphore and guard thread"));
		exit(1);
	}
	stream = fdopen(pipefd[0], "r");
	setvbuf(stream, NULL, _IONBF, 0);
	rc = run_main(opts, run_ab, (void *)fn, &res, st);
	sem_post(&guard_done);
	pthread_join(g, NULL);
	is_int(rc, 0, tn("%s: the run ends cleanly", what));
	ok(res == NULL, "%s", tn("%s: A and B were joined", what));
	if (guard_s == GUARD_S)
		ok(!__atomic_load_n(&guard_fired, __ATOMIC_SEQ_CST),
		   "%s", tn("%s: B ran while A's worker was blocked (no %d-s guard)", what, GUARD_S));
	sem_destroy(&guard_done);
	fclose(stream);		/* and pipefd[0] */
	close(pipefd[1]);
}

static void rescue_cases(unsigned int workers)
{
	struct rf_runtime_opts opts = { .workers = workers, .flags = RF_RT_BLOCK_RESCUE };
	struct rf_stats st;
	void *res = (void *)-1;
	bool suspends;
	int rc;

	test_config_name = workers > 1 ? "2 workers" : "1 worker";

	/* read(): suspended, restarted when A runs again, returns what B wrote */
	pipe_case(&opts, reader, "read()", &st);
	suspends = st.features & RF_FEAT_PREEMPT;
	is_int((int)a_read, 1, tn("the blocked read() went on (SA_RESTART) and returned B's byte"));
	ok(a_read == 1 || a_errno != EINTR, "%s", tn("read() did not fail with EINTR"));
	ok(st.block_rescues >= 1, "%s", tn("rescues counted: %llu",
					   (unsigned long long)st.block_rescues));
	ok(st.features & RF_FEAT_BLOCK_RESCUE, "%s", tn("RF_FEAT_BLOCK_RESCUE in the features"));
	if (workers > 1 && suspends)
		is_int(b_worker, a_worker, tn("A suspended in read(): B ran on A's worker"));
	else if (workers > 1)
		ok(b_worker != a_worker, "%s", tn("no preemption: B ran on the other worker"));

	/* fread(): stdio's lock is held; with two workers B goes elsewhere */
	if (workers > 1) {
		pipe_case(&opts, freader, "fread()", &st);
		is_int((int)a_read, 1, tn("fread() returned B's byte"));
		ok(b_worker != a_worker && b_worker >= 0,
		   "%s", tn("A not suspended inside stdio: B ran on the other worker (A %d, B %d)",
			    a_worker, b_worker));
	} else {
		/*
		 * One worker, A inside stdio: nothing can be done until A
		 * returns (the guard writes after STUCK_S s), and the monitor
		 * must not interrupt A's call again and again meanwhile.
		 */
		guard_s = STUCK_S;
		pipe_case(&opts, freader, "fread()", &st);
		guard_s = GUARD_S;
		ok(__atomic_load_n(&guard_fired, __ATOMIC_SEQ_CST),
		   "%s", tn("A not suspended inside stdio: B waited for A (the guard wrote)"));
		ok(st.block_rescues >= 1 && st.block_rescues <= 2,
		   "%s", tn("one rescue request while A stayed blocked %d s, not a storm (%llu)",
			    STUCK_S, (unsigned long long)st.block_rescues));
	}

	/* nanosleep(): never restarted, returns EINTR at the rescue */
	reset();
	rc = run_main(&opts, run_ab, (void *)sleeper, &res, &st);
	is_int(rc, 0, tn("the sleeper's run ends cleanly"));
	ok(res == NULL, "%s", tn("the sleeper and its fiber were joined"));
	ok(sleep_rc == -1 && sleep_errno == EINTR,
	   "%s", tn("nanosleep() returned EINTR at the rescue (rc %d, errno %d)",
		    sleep_rc, sleep_errno));
	ok(__atomic_load_n(&b_ran, __ATOMIC_SEQ_CST), "%s", tn("the fiber behind it ran"));
	test_config_name = NULL;
}

/*
 * Nothing blocks: a fiber sleeps 1 ms at a time through the ring, so its
 * worker keeps going to sleep in the kernel (its own idle sleep, not a
 * block to report) and waking to a completion.  No rescue request may
 * reach it: one would only cut its sleep short.
 */
static void *napper(void *arg)
{
	(void)arg;
	for (int i = 0; i < 300; i++)
		if (rf_sleep(rf_deadline_after(MSEC)) != 0)
			return (void *)1;
	return NULL;
}

static void idle_case(void)
{
	/* the shortest sampling period: the monitor looks every millisecond */
	struct rf_runtime_opts opts = { .workers = 1, .flags = RF_RT_BLOCK_RESCUE,
					.hog_ns = 4 * MSEC };
	struct rf_stats st;
	void *res = (void *)-1;

	is_int(run_main(&opts, napper, NULL, &res, &st), 0, "idle sleeps: the run ends");
	ok(res == NULL, "300 sleeps of 1 ms");
	ok(st.sleeps > 0, "the worker slept in the kernel (%llu times)",
	   (unsigned long long)st.sleeps);
	is_int((int)st.block_rescues, 0, "no rescue request reached a worker in its idle sleep");
}

/* What needs no module: the flag's errors, the environment's fallback. */
static int flag_cases(void)
{
	struct rf_runtime_opts opts = { .workers = 1, .flags = RF_RT_BLOCK_RESCUE };
	struct rf_runtime *rt = NULL;
	struct rf_stats st;
	int have, rc;

	rc = rf_runtime_create(&rt, &opts);
	ok(rc == 0 || rc == -EOPNOTSUPP, "RF_RT_BLOCK_RESCUE: 0 or -EOPNOTSUPP (got %d)", rc);
	have = rc == 0;
	if (rt) {
		rf_runtime_stats(rt, &st);
		ok(st.features & RF_FEAT_BLOCK_RESCUE, "the flag, granted, shows in the features");
		rf_runtime_destroy(rt);
		rt = NULL;
	}
	opts.hog_ns = -1;
	is_int(rf_runtime_create(&rt, &opts), -EINVAL,
	       "RF_RT_BLOCK_RESCUE without the watchdog (hog_ns < 0): -EINVAL");
	if (rt)
		rf_runtime_destroy(rt);
	rt = NULL;

	opts.hog_ns = 0;
	opts.flags = 0;
	rc = rf_runtime_create(&rt, &opts);
	is_int(rc, 0, "no flag, no environment: created");
	if (rt) {
		rf_runtime_stats(rt, &st);
		ok(!(st.features & RF_FEAT_BLOCK_RESCUE), "no flag: no rescue");
		rf_runtime_destroy(rt);
		rt = NULL;
	}
	setenv("RF_BLOCK_RESCUE", "1", 1);
	rc = rf_runtime_create(&rt, &opts);
	is_int(rc, 0, "RF_BLOCK_RESCUE=1: created, with or without the module");
	if (rt) {
		rf_runtime_stats(rt, &st);
		is_int(!!(st.features & RF_FEAT_BLOCK_RESCUE), have,
		       "RF_BLOCK_RESCUE=1: the rescue is on exactly where the flag works");
		rf_runtime_destroy(rt);
	}
	unsetenv("RF_BLOCK_RESCUE");
	return have;
}

int main(void)
{
	test_watchdog(4 * GUARD_S + 60);
	if (!runtime_has_ring(NULL)) {
		tap_skip_all("no io_uring");
		return 0;
	}
	if (!flag_cases()) {
		tap_skip(1, "no /dev/rfwake with block notification (RFWAKE_FEAT_WATCH): "
			 "load module/rfwake.ko (the VM suite does)");
		return done_testing();
	}
	rescue_cases(2);
	rescue_cases(1);
	idle_case();
	return done_testing();
}
