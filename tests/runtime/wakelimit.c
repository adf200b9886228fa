// SPDX-License-Identifier: MIT
/*
 * wakelimit.c - wake-ups at the process's descriptor limit.
 *
 * A sleeping worker must be woken however the waker is placed and whatever
 * the process is short of: from a thread that is no worker (rf_event_set()
 * from a pthread, the rf_blocking() pool), from another worker, while no
 * descriptor is free and after they are free again.  The msg_ring back-end
 * once made a ring for such threads on their first wake-up; made at the
 * limit, it failed, the failure was kept for good and nothing reported it,
 * and the worker's wake_pending stayed set, so even the other workers'
 * wake-ups of it were lost from then on.
 *
 * Each back-end runs in a child of its own (a fresh process, with its own
 * descriptor limit).  The fiber that is woken waits with no deadline, and
 * its worker has nothing else that could complete: only the wake-up can get
 * it going.  So that a lost wake-up fails the test instead of hanging it, a
 * rescuer thread waits WAKE_BOUND_MS for it and then writes to a pipe whose
 * read is armed on the same worker; a wake-up that needed the rescue fails.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "helpers.h"

/* Generous: a wake-up takes microseconds; this only keeps the test from hanging. */
#define WAKE_BOUND_MS 3000
/* How long a waker lets the woken fiber's worker go to sleep first. */
#define SETTLE_MS 50
#define MAX_FILLERS 4096
#define STR_(x) #x
#define STR(x) STR_(x)

enum { ROUND_PTHREAD, ROUND_PTHREAD_LIMIT_FREED, ROUND_WORKER, ROUND_BLOCKING, NROUNDS };

static const char *const round_names[NROUNDS] = {
	[ROUND_PTHREAD] = "rf_event_set() from a pthread, no descriptor free",
	[ROUND_PTHREAD_LIMIT_FREED] = "rf_event_set() from a pthread, descriptors free again",
	[ROUND_WORKER] = "rf_event_set() from another worker, no descriptor free",
	[ROUND_BLOCKING] = "rf_blocking() returns, no descriptor free",
};

struct round_result {
	int ret;		/* what the woken call returned */
	int rescued;		/* the rescuer had to wake the worker */
	int64_t latency_ns;	/* from the wake-up call to the fiber running */
};

struct child_result {
	int run;
	int limit_reached;		/* open() failed with EMFILE */
	uint64_t wake_errors;
	struct round_result r[NROUNDS];
};

/* The state of one child. */
static struct child_result res;
static int keeper_pipe[2] = { -1, -1 };
static int keeper_stop;			/* atomic */
static int fillers[MAX_FILLERS], nfillers;
static struct rf_event ev;
static int woken;			/* atomic: the round's fiber runs */
static int64_t wake_called_ns;		/* atomic: when the waker called */

/* Keeps a read armed on worker 0: the rescuer's way in, never the test's. */
static void *keeper(void *arg)
{
	char c;

	(void)arg;
	while (!__atomic_load_n(&keeper_stop, __ATOMIC_ACQUIRE))
		if (rf_read(keeper_pipe[0], &c, 1, -1, RF_NO_DEADLINE) <= 0)
			break;
	return NULL;
}

/* Waits WAKE_BOUND_MS for the round's fiber; then wakes its worker by the pipe. */
static void *rescuer(void *arg)
{
	int *rescued = arg;
	int64_t end = rf_now() + WAKE_BOUND_MS * MSEC;
	const struct timespec tick = { 0, MSEC };

	while (!__atomic_load_n(&woken, __ATOMIC_ACQUIRE) && rf_now() < end)
		nanosleep(&tick, NULL);
	if (!__atomic_load_n(&woken, __ATOMIC_ACQUIRE)) {
		*rescued = 1;
		if (write(keeper_pipe[1], "r", 1) != 1)
			return NULL;
	}
	return NULL;
}

static void settle(void)
{
	const struct timespec ts = { 0, SETTLE_MS * MSEC };

	nanosleep(&ts, NULL);
}

static void *pthread_waker(void *arg)
{
	(void)arg;
	settle();
	__atomic_store_n(&wake_called_ns, rf_now(), __ATOMIC_RELEASE);
	rf_event_set(&ev);
	return NULL;
}

static void *fiber_waker(void *arg)
{
	(void)arg;
	rf_sleep(rf_deadline_after(SETTLE_MS * MSEC));	/* on this worker's ring */
	__atomic_store_n(&wake_called_ns, rf_now(), __ATOMIC_RELEASE);
	rf_event_set(&ev);
	return NULL;
}

static void *blocking_job(void *arg)
{
	(void)arg;
	settle();
	__atomic_store_n(&wake_called_ns, rf_now(), __ATOMIC_RELEASE);
	return NULL;	/* the pool thread wakes the caller now */
}

/* Fill the descriptor table: every open() fails with EMFILE until released. */
static void exhaust_descriptors(void)
{
	int fd;

	while (nfillers < MAX_FILLERS && (fd = open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0)
		fillers[nfillers++] = fd;
	if (open("/dev/null", O_RDONLY | O_CLOEXEC) < 0 && errno == EMFILE)
		res.limit_reached++;
}

static void release_descriptors(void)
{
	while (nfillers)
		close(fillers[--nfillers]);
}

/* One round: the fiber on worker 0 is woken as @kind says. */
static void run_round(int kind)
{
	struct round_result *r = &res.r[kind];
	pthread_t resc, waker;
	int waker_started = 0;

	__atomic_store_n(&woken, 0, __ATOMIC_RELEASE);
	rf_event_init(&ev);
	if (pthread_create(&resc, NULL, rescuer, &r->rescued) != 0) {
		r->ret = -EAGAIN;
		return;
	}
	if (kind == ROUND_BLOCKING) {
		r->ret = rf_blocking(blocking_job, NULL, NULL);
	} else {
		if (kind == ROUND_WORKER) {
			struct rf_fiber *f;

			if (rf_spawn_on(1, &f, fiber_waker, NULL, NULL) == 0)
				rf_detach(f);
		} else {
			waker_started = pthread_create(&waker, NULL, pthread_waker, NULL) == 0;
		}
		/* no deadline: nothing but the wake-up (or the rescue) ends this */
		r->ret = rf_event_wait(&ev, RF_NO_DEADLINE);
	}
	r->latency_ns = rf_now() - __atomic_load_n(&wake_called_ns, __ATOMIC_ACQUIRE);
	__atomic_store_n(&woken, 1, __ATOMIC_RELEASE);
	pthread_join(resc, NULL);
	if (waker_started)
		pthread_join(waker, NULL);
}

/* Pinned to worker 0, beside the keeper: the rounds' fiber. */
static void *rounds(void *arg)
{
	(void)arg;
	exhaust_descriptors();
	run_round(ROUND_PTHREAD);
	release_descriptors();
	run_round(ROUND_PTHREAD_LIMIT_FREED);
	exhaust_descriptors();
	run_round(ROUND_WORKER);
	run_round(ROUND_BLOCKING);
	release_descriptors();
	res.wake_errors = my_stats().wake_errors;
	__atomic_store_n(&keeper_stop, 1, __ATOMIC_RELEASE);
	if (write(keeper_pipe[1], "x", 1) != 1)
		return NULL;
	return NULL;
}

static void *child_main(void *arg)
{
	static const struct rf_spawn_attr pinned = { .pinned = 1 };
	struct rf_fiber *k, *r;

	(void)arg;
	if (rf_spawn_on(0, &k, keeper, NULL, &pinned) != 0)
		return NULL;
	if (rf_spawn_on(0, &r, rounds, NULL, &pinned) == 0)
		rf_join(r, NULL, RF_NO_DEADLINE);
	rf_join(k, NULL, RF_NO_DEADLINE);
	return NULL;
}

static int child(unsigned int backend, int out)
{
	struct rf_runtime_opts opts = {
		.workers = 2,
		.wake_backend = backend,
		.idle_spin_ns = -1,	/* sleep at once: every wake-up is a kick */
	};
	struct rlimit lim;

	alarm(60);
	memset(&res, 0, sizeof(res));
	for (int i = 0; i < NROUNDS; i++)
		res.r[i].ret = -999;
	if (pipe2(keeper_pipe, O_CLOEXEC) != 0 || getrlimit(RLIMIT_NOFILE, &lim) != 0)
		return 2;
	/* a small table, so that filling it is quick */
	lim.rlim_cur = 256;
	if (setrlimit(RLIMIT_NOFILE, &lim) != 0)
		return 2;
	res.run = run_main(&opts, child_main, NULL, NULL, NULL);
	return write(out, &res, sizeof(res)) == (ssize_t)sizeof(res) ? 0 : 2;
}

static void test_backend(unsigned int i)
{
	struct rf_runtime_opts probe = { .wake_backend = wake_backends[i].id };
	struct rf_runtime *rt = NULL;
	struct child_result cr;
	int p[2], status = -1, rc;
	ssize_t n = 0;
	pid_t pid;

	test_config_name = wake_backends[i].name;
	rc = rf_runtime_create(&rt, &probe);
	if (rc == -EOPNOTSUPP) {
		tap_skip(NROUNDS + 3, "this back-end is not available here");
		return;
	}
	if (rc == 0)
		rf_runtime_destroy(rt);
	memset(&cr, 0, sizeof(cr));
	if (pipe(p) != 0) {
		ok(0, "%s", tn("a pipe for the child"));
		return;
	}
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid == 0) {
		close(p[0]);
		_exit(child(wake_backends[i].id, p[1]));
	}
	close(p[1]);
	if (pid > 0)
		n = read(p[0], &cr, sizeof(cr));
	close(p[0]);
	if (pid > 0)
		waitpid(pid, &status, 0);
	if (!ok(n == (ssize_t)sizeof(cr) && WIFEXITED(status) && WEXITSTATUS(status) == 0 &&
		cr.run == 0, "%s", tn("the child's run ends (status 0x%x, run %d)", status, cr.run)))
		return;
	ok(cr.limit_reached == 2, "%s", tn("the descriptor table was full twice (%d)",
					  cr.limit_reached));
	for (int k = 0; k < NROUNDS; k++) {
		const struct round_result *r = &cr.r[k];

		ok(r->ret == 0 && !r->rescued, "%s",
		   tn("%s: woken by it in %.3f ms%s (returned %d)", round_names[k],
		      (double)r->latency_ns / MSEC,
		      r->rescued ? ", NOT by the wake-up: the rescuer woke the worker after "
				   STR(WAKE_BOUND_MS) " ms" : "", r->ret));
	}
	is_int(cr.wake_errors, 0, tn("rf_stats.wake_errors: no wake-up failed"));
}

int main(void)
{
	test_watchdog(300);
	ring_or_skip_all();
	for (unsigned int i = 0; i < ARRAY_SIZE(wake_backends); i++)
		test_backend(i);
	return done_testing();
}
