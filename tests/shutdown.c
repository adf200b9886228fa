// SPDX-License-Identifier: MIT
/*
 * shutdown.c - rf_runtime_shutdown() always ends the run, whoever calls it
 * and whenever.
 *
 * Rounds of a runtime with two workers whose fibers keep spawning fibers
 * that park (rf_poll() on a pipe nobody writes, rf_sleep() for an hour,
 * rf_event_wait() on an event nobody sets) while the shutdown comes from a
 * fiber, from a plain thread, or from a plain thread that calls it while
 * rf_runtime_run() is still starting.  Every run must return 0 with every
 * parked call ended by -ECANCELED: a fiber that escapes the cancellation
 * hangs the run, and the round's watchdog bails out naming the round.
 * This program also runs under ThreadSanitizer (make check-tsan).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>

#include "helpers.h"

/* Each round must end well within this (the watchdog's alarm, re-armed per round). */
#define ROUND_LIMIT_S (test_quick() ? 120 : 10)

static unsigned int rounds_scale(unsigned int n)
{
	return test_quick() ? (n / 10 ? n / 10 : 1) : n;
}

static unsigned int rnd(unsigned int *s)
{
	*s = *s * 1103515245u + 12345u;
	return *s >> 16;
}

static const char *round_what;
static unsigned int round_no;

static void round_hung(int sig)
{
	char msg[160];
	int n = snprintf(msg, sizeof(msg), "Bail out! round %u (%s) never returned\n", round_no,
			 round_what);
	ssize_t w = write(STDOUT_FILENO, msg, (size_t)n);

	(void)w;
	(void)sig;
	_exit(1);
}

static void round_start(const char *what, unsigned int no)
{
	round_what = what;
	round_no = no;
	signal(SIGALRM, round_hung);
	alarm(ROUND_LIMIT_S);
}

/* --------------------------------------------------- spawners and parkers */

/* What one round's fibers report; reset before each round. */
struct census {
	unsigned int parked;		/* parking calls made */
	unsigned int cancelled;		/* of which returned -ECANCELED */
	unsigned int other;		/* of which returned anything else */
	int last_other;			/* what the last of those returned */
	unsigned int spawn_errors;
	int last_spawn_error;
	unsigned int spawned;		/* atomic: parkers spawned */
	unsigned int spawned_before;	/* of which before the shutdown was called */
};

static struct census C;
static int never_fd = -1;		/* the read end of a pipe nobody writes */
static struct rf_event never_set;

static void count_result(int rc)
{
	__atomic_add_fetch(&C.parked, 1, __ATOMIC_RELAXED);
	if (rc == -ECANCELED) {
		__atomic_add_fetch(&C.cancelled, 1, __ATOMIC_RELAXED);
	} else {
		__atomic_add_fetch(&C.other, 1, __ATOMIC_RELAXED);
		__atomic_store_n(&C.last_other, rc, __ATOMIC_RELAXED);
	}
}

static void count_spawn(int rc)
{
	if (!rc)
		__atomic_add_fetch(&C.spawned, 1, __ATOMIC_RELAXED);
	if (rc) {
		__atomic_add_fetch(&C.spawn_errors, 1, __ATOMIC_RELAXED);
		__atomic_store_n(&C.last_spawn_error, rc, __ATOMIC_RELAXED);
	}
}

/* Park in one of three ways, which every cancellation must end. */
static void park_once(unsigned int kind)
{
	switch (kind % 3) {
	case 0:
		count_result(rf_poll(never_fd, POLLIN, RF_NO_DEADLINE));
		break;
	case 1:
		count_result(rf_sleep(rf_deadline_after(3600 * 1000 * MSEC)));
		break;
	default:
		count_result(rf_event_wait(&never_set, RF_NO_DEADLINE));
		break;
	}
}

static const struct rf_spawn_attr detached = { .name = "parker", .detached = 1,
					       .stack_size = RF_MIN_STACK_SIZE };

/* A parker first spawns one more parker (on the other worker), then parks. */
static void *parker(void *arg)
{
	uintptr_t depth = (uintptr_t)arg;

	if (depth)
		count_spawn(rf_spawn_on((unsigned int)(rf_worker_id() + 1) % 2, NULL, parker,
					(void *)(depth - 1), &detached));
	park_once((unsigned int)depth + (unsigned int)rf_worker_id());
	return NULL;
}

/* ThreadSanitizer makes each fiber cost milliseconds: fewer of them there */
#define SPAWNS_PER_SPAWNER (test_quick() ? 40u : 150u)

/* Keeps spawning parkers, on both workers, then parks itself. */
static void *spawner(void *arg)
{
	unsigned int seed = (unsigned int)(uintptr_t)arg;

	for (unsigned int i = 0; i < SPAWNS_PER_SPAWNER; i++) {
		count_spawn(rf_spawn_on(rnd(&seed) % 2, NULL, parker, (void *)(uintptr_t)(i % 3),
					&detached));
		if (rnd(&seed) % 4 == 0)
			rf_yield();
	}
	park_once(seed);
	return NULL;
}

/* How a round's shutdown is made. */
enum stopper {
	STOP_FIBER,		/* a fiber of the run calls rf_runtime_shutdown(NULL) */
	STOP_THREAD,		/* a thread started before the run, once fibers spawn */
	STOP_THREAD_EARLY,	/* that thread, from before rf_runtime_run() starts */
};

struct round {
	enum stopper how;
	unsigned int seed;
	struct rf_runtime *rt;
	int shutdown_rc;	/* what rf_runtime_shutdown() returned */
	unsigned int esrch;	/* STOP_THREAD_EARLY: calls made before the run began */
};

/* Spin up to @max_ns, a random time: where in a spawn the shutdown lands. */
static void short_spin(unsigned int *seed, unsigned int max_ns)
{
	int64_t end = rf_now() + rnd(seed) % max_ns;

	while (rf_now() < end)
		;
}

static void *stopper_fiber(void *arg)
{
	struct round *r = arg;
	unsigned int seed = r->seed, n = rnd(&seed) % 64;

	while (n--)
		rf_yield();
	C.spawned_before = __atomic_load_n(&C.spawned, __ATOMIC_RELAXED);
	r->shutdown_rc = rf_runtime_shutdown(NULL);
	return NULL;
}

static void *round_main(void *arg)
{
	struct round *r = arg;
	static const struct rf_spawn_attr sp = { .name = "spawner", .detached = 1 };

	count_spawn(rf_spawn_on(0, NULL, spawner, (void *)(uintptr_t)(r->seed * 2 + 1), &sp));
	count_spawn(rf_spawn_on(1, NULL, spawner, (void *)(uintptr_t)(r->seed * 2 + 2), &sp));
	if (r->how == STOP_FIBER) {
		static const struct rf_spawn_attr st = { .name = "stopper", .detached = 1 };

		count_spawn(rf_spawn_on(r->seed % 2, NULL, stopper_fiber, r, &st));
	}
	park_once(r->seed);
	return NULL;
}

static void *stopper_thread(void *arg)
{
	struct round *r = arg;
	unsigned int seed = r->seed, after = 1 + rnd(&seed) % SPAWNS_PER_SPAWNER;
	int rc;

	if (r->how == STOP_THREAD_EARLY) {
		/* from before the run starts until it is there to shut down */
		while ((rc = rf_runtime_shutdown(r->rt)) == -ESRCH)
			r->esrch++;
		C.spawned_before = __atomic_load_n(&C.spawned, __ATOMIC_RELAXED);
		r->shutdown_rc = rc;
		return NULL;
	}
	/* after a random number of spawns, at a random point of the next one */
	while (__atomic_load_n(&C.spawned, __ATOMIC_ACQUIRE) < after)
		;
	short_spin(&seed, 3000);
	C.spawned_before = __atomic_load_n(&C.spawned, __ATOMIC_RELAXED);
	r->shutdown_rc = rf_runtime_shutdown(r->rt);
	return NULL;
}

static const char *const stopper_name[] = {
	[STOP_FIBER] = "a fiber",
	[STOP_THREAD] = "a plain thread",
	[STOP_THREAD_EARLY] = "a plain thread, while the run starts",
};

/*
 * One runtime runs every round, one run after another: the stacks of a
 * round's fibers are pooled (so spawning is quick and the shutdown lands
 * inside a spawn more often), and a shutdown meant for one run must not
 * stop the next.
 */
static void test_spawn_vs_shutdown(enum stopper how, unsigned int rounds)
{
	struct rf_runtime_opts opts = { .workers = 2, .stack_pool = 1024 };
	unsigned int bad_rc = 0, bad_shutdown = 0, escaped = 0, spawn_failed = 0, left = 0;
	unsigned int mid = 0, early = 0;
	unsigned long parked = 0;
	int last_rc = 0, last_shutdown = 0;
	bool threaded = how != STOP_FIBER;
	struct rf_runtime *rt;
	char what[96];
	int rc;

	snprintf(what, sizeof(what), "spawns racing a shutdown by %s", stopper_name[how]);
	rc = rf_runtime_create(&rt, &opts);
	if (rc) {
		ok(0, "rf_runtime_create() -> %d", rc);
		return;
	}
	for (unsigned int i = 0; i < rounds; i++) {
		struct round r = { .how = how, .seed = i * 7919u + (unsigned int)how, .rt = rt,
				   .shutdown_rc = 1 };
		struct rf_stats st = { .fibers = 0 };
		pthread_t th;

		memset(&C, 0, sizeof(C));
		round_start(what, i);
		if (threaded && pthread_create(&th, NULL, stopper_thread, &r)) {
			ok(0, "pthread_create()");
			break;
		}
		rc = rf_runtime_run(rt, round_main, &r, NULL);
		alarm(0);
		if (threaded)
			pthread_join(th, NULL);
		rf_runtime_stats(rt, &st);
		if (rc) {
			bad_rc++;
			last_rc = rc;
		}
		if (r.shutdown_rc) {
			bad_shutdown++;
			last_shutdown = r.shutdown_rc;
		}
		escaped += C.other;
		spawn_failed += C.spawn_errors;
		left += (unsigned int)st.fibers;
		parked += C.parked;
		mid += C.spawned_before < C.spawned;
		early += r.esrch > 0;
	}
	is_int(rf_runtime_shutdown(rt), -ESRCH, "rf_runtime_shutdown() between runs -> -ESRCH");
	rf_runtime_destroy(rt);
	tap_diag("%s: %u rounds (%u with fibers spawned after the call), %lu parked calls", what,
		 rounds, mid, parked);
	if (how == STOP_THREAD_EARLY)
		tap_diag("  in %u rounds the call came before the run had started (-ESRCH)", early);
	is_int(bad_rc, 0, "every run returned 0");
	if (bad_rc)
		tap_diag("  the last failed run returned %d", last_rc);
	is_int(bad_shutdown, 0, "every rf_runtime_shutdown() returned 0");
	if (bad_shutdown)
		tap_diag("  the last failed call returned %d", last_shutdown);
	is_int(escaped, 0, "every parked call returned -ECANCELED");
	is_int(spawn_failed, 0, "every rf_spawn() succeeded");
	is_int(left, 0, "no fiber left after a run");
}

/* With arguments, only the sections named (spawn-fiber, spawn-thread, spawn-early). */
static bool wanted(int argc, char **argv, const char *name)
{
	if (argc < 2)
		return true;
	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], name))
			return true;
	return false;
}

int main(int argc, char **argv)
{
	int pfd[2];
	unsigned int rounds = rounds_scale(300);

	ring_or_skip_all();
	if (pipe2(pfd, O_CLOEXEC)) {
		perror("pipe2");
		return 1;
	}
	never_fd = pfd[0];

	if (wanted(argc, argv, "spawn-fiber"))
		test_spawn_vs_shutdown(STOP_FIBER, rounds);
	if (wanted(argc, argv, "spawn-thread"))
		test_spawn_vs_shutdown(STOP_THREAD, rounds);
	if (wanted(argc, argv, "spawn-early"))
		test_spawn_vs_shutdown(STOP_THREAD_EARLY, rounds);

	close(pfd[0]);
	close(pfd[1]);
	return done_testing();
}
