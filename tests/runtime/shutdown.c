// SPDX-License-Identifier: MIT
/*
 * shutdown.c - rf_runtime_shutdown() always ends the run, whoever calls it
 * and whenever.
 *
 * Rounds of a runtime with two workers whose fibers keep spawning fibers
 * that park (rf_poll() on a pipe nobody writes, rf_sleep() for an hour,
 * rf_event_wait() on an event nobody sets) while the shutdown comes from a
 * fiber, from a plain thread, or from a plain thread that calls it while
 * rf_runtime_run() is still starting, on each wake back-end there is: each
 * ends its workers' sleeps its own way, and one run follows another on the
 * same workers, so what a run leaves armed must not take the next one's
 * wake-ups.  Then rounds where a signal handler calls it while the fibers
 * spawn, wake each other across workers and do I/O (with a ring and
 * without): the handler interrupts the library anywhere, holding its locks.
 * Then child processes with threads of their own, started before the run,
 * that get SIGTERM or SIGINT under RF_RT_SHUTDOWN_ON_SIGNAL and must exit 0.
 *
 * Every run must return 0 with every parked call ended by -ECANCELED: a
 * fiber that escapes the cancellation hangs the run, and the round's
 * watchdog bails out naming the round.  This program also runs under
 * ThreadSanitizer (make check-tsan), without the signals: it runs a
 * signal's handler only when the fiber the signal interrupted runs again.
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
#include <string.h>
#include <sys/wait.h>

#include "helpers.h"

/* Each round must end well within this (the watchdog's alarm, re-armed per round). */
#define ROUND_LIMIT_S (test_quick() ? 120 : 10)

/* Under the sanitizers each fiber costs milliseconds: fewer rounds and fibers. */
static unsigned int rounds_scale(unsigned int n)
{
	return test_quick() ? (n / 15 ? n / 15 : 1) : n;
}

static unsigned int rnd(unsigned int *s)
{
	*s = *s * 1103515245u + 12345u;
	return *s >> 16;
}

static const char *round_what;
static unsigned int round_no;
static pid_t round_child;		/* a child process to kill if the round hangs */

static void round_hung(int sig)
{
	char msg[160];
	int n = snprintf(msg, sizeof(msg), "Bail out! round %u (%s) never returned\n", round_no,
			 round_what);
	ssize_t w = write(STDOUT_FILENO, msg, (size_t)n);

	(void)w;
	(void)sig;
	if (round_child > 0)
		kill(round_child, SIGKILL);
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
static bool no_ring;			/* RF_RT_NO_RING: no I/O, only events */

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
	switch (no_ring ? 2 : kind % 3) {
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

#define SPAWNS_PER_SPAWNER (test_quick() ? 24u : 150u)

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
	int after_rc;		/* STOP_FIBER: what the stopper's next call returned */
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
	r->after_rc = rf_nop(RF_NO_DEADLINE);
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
/*
 * none_failed() - check that none of the rounds' @what failed (@bad counts
 * those that did) and, if some did, say what the last of them returned.
 */
static void none_failed(unsigned int bad, int last, const char *name, const char *what)
{
	is_int(bad, 0, name);
	if (bad)
		tap_diag("  the last failed %s returned %d", what, last);
}

/*
 * The wake back-end wake_backends[@i] is one to test: RF_WAKE_BACKEND, which
 * overrides rf_runtime_opts.wake_backend, names no other.
 */
static bool backend_wanted(unsigned int i)
{
	const char *env = getenv("RF_WAKE_BACKEND");

	return !env || !*env || !strcmp(env, "auto") || !strcmp(env, wake_backends[i].name);
}

static void test_spawn_vs_shutdown(enum stopper how, unsigned int rounds, unsigned int backend)
{
	struct rf_runtime_opts opts = { .workers = 2, .stack_pool = 1024,
					.wake_backend = wake_backends[backend].id };
	unsigned int bad_rc = 0, bad_shutdown = 0, escaped = 0, spawn_failed = 0, left = 0;
	unsigned int mid = 0, early = 0;
	unsigned long parked = 0;
	unsigned int bad_after = 0;
	int last_rc = 0, last_shutdown = 0, last_after = 0;
	bool threaded = how != STOP_FIBER;
	/* the checks below, as many as a skip must count */
	unsigned int checks = how == STOP_FIBER ? 7 : 6;
	struct rf_runtime *rt;
	char what[128];
	int rc;

	test_config_name = wake_backends[backend].name;
	snprintf(what, sizeof(what), "[%s] spawns racing a shutdown by %s",
		 wake_backends[backend].name, stopper_name[how]);
	if (!backend_wanted(backend)) {
		tap_skip(checks, tn("RF_WAKE_BACKEND chooses another back-end"));
		goto out;
	}
	rc = rf_runtime_create(&rt, &opts);
	if (rc == -EOPNOTSUPP) {
		tap_skip(checks, tn("this back-end is not available here"));
		goto out;
	}
	if (rc) {
		ok(0, "%s", tn("rf_runtime_create() -> %d", rc));
		goto out;
	}
	for (unsigned int i = 0; i < rounds; i++) {
		struct round r = { .how = how, .seed = i * 7919u + (unsigned int)how, .rt = rt,
				   .shutdown_rc = 1, .after_rc = -ECANCELED };
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
		if (r.after_rc != -ECANCELED) {
			bad_after++;
			last_after = r.after_rc;
		}
		escaped += C.other;
		spawn_failed += C.spawn_errors;
		left += (unsigned int)st.fibers;
		parked += C.parked;
		mid += C.spawned_before < C.spawned;
		early += r.esrch > 0;
	}
	is_int(rf_runtime_shutdown(rt), -ESRCH, tn("rf_runtime_shutdown() between runs -> -ESRCH"));
	rf_runtime_destroy(rt);
	tap_diag("%s: %u rounds (%u with fibers spawned after the call), %lu parked calls", what,
		 rounds, mid, parked);
	if (how == STOP_THREAD_EARLY)
		tap_diag("  in %u rounds the call came before the run had started (-ESRCH)", early);
	none_failed(bad_rc, last_rc, tn("every run returned 0"), "run");
	none_failed(bad_shutdown, last_shutdown, tn("every rf_runtime_shutdown() returned 0"),
		    "call");
	if (how == STOP_FIBER) {
		is_int(bad_after, 0,
		       tn("the calling fiber's next call returned -ECANCELED at once"));
		if (bad_after)
			tap_diag("  the last one returned %d", last_after);
	}
	is_int(escaped, 0, tn("every parked call returned -ECANCELED"));
	is_int(spawn_failed, 0, tn("every rf_spawn() succeeded"));
	is_int(left, 0, tn("no fiber left after a run"));
out:
	test_config_name = NULL;
}

/* ------------------------------------------ from a signal handler */

/*
 * A signal handler calls rf_runtime_shutdown() while the fibers spawn,
 * wake each other across workers and do I/O: the handler interrupts
 * whatever a worker does, the library's own code and locks included.
 */
static struct rf_runtime *handler_rt;
static int handler_rc;			/* atomic: what the call returned; 1 = not called */

static void shutdown_handler(int sig)
{
	int saved = errno;

	__atomic_store_n(&handler_rc, rf_runtime_shutdown(handler_rt), __ATOMIC_RELAXED);
	errno = saved;
	(void)sig;
}

/* ping-pong partners: each side releases the other's semaphore */
static struct rf_sem ping_sem[2];

static void *hot_pinger(void *arg)
{
	uintptr_t side = (uintptr_t)arg;
	int rc;

	while ((rc = rf_sem_acquire(&ping_sem[side], RF_NO_DEADLINE)) == 0)
		rf_sem_release(&ping_sem[!side]);
	count_result(rc);
	return NULL;
}

static void *quick_child(void *arg)
{
	return arg;
}

/* spawn and join, spawn detached, I/O: until cancelled */
static void *hot_spawner(void *arg)
{
	static const struct rf_spawn_attr child = { .name = "child", .detached = 1,
						    .stack_size = RF_MIN_STACK_SIZE };
	unsigned int seed = (unsigned int)(uintptr_t)arg;
	struct rf_fiber *f;
	int rc;

	for (;;) {
		count_spawn(rf_spawn(NULL, quick_child, NULL, &child));
		if (rf_spawn_on(rnd(&seed) % 2, &f, quick_child, NULL, NULL) == 0) {
			rc = rf_join(f, NULL, RF_NO_DEADLINE);
			if (rc)
				break;
		}
		if (no_ring)
			continue;
		rc = rf_nop(RF_NO_DEADLINE);
		if (rc)
			break;
		if (rnd(&seed) % 8 == 0 &&
		    (rc = rf_sleep(rf_deadline_after((int64_t)(rnd(&seed) % 20) * 1000))))
			break;
	}
	count_result(rc);
	return NULL;
}

static void *hot_main(void *arg)
{
	static const struct rf_spawn_attr hot = { .name = "hot", .detached = 1 };
	unsigned int seed = (unsigned int)(uintptr_t)arg;

	rf_sem_init(&ping_sem[0], 1);
	rf_sem_init(&ping_sem[1], 0);
	count_spawn(rf_spawn_on(0, NULL, hot_pinger, (void *)0, &hot));
	count_spawn(rf_spawn_on(1, NULL, hot_pinger, (void *)1, &hot));
	for (unsigned int i = 0; i < 4; i++)
		count_spawn(rf_spawn_on(i % 2, NULL, hot_spawner, (void *)(uintptr_t)(seed + i),
					&hot));
	for (unsigned int i = 0; i < 20; i++)
		count_spawn(rf_spawn_on(i % 2, NULL, parker, (void *)(uintptr_t)(i % 3), &detached));
	__atomic_store_n(&C.spawned_before, 1, __ATOMIC_RELEASE);	/* hot now */
	park_once(seed);
	return NULL;
}

struct kill_plan {
	pthread_t target;		/* the thread running the runtime (worker 0) */
	unsigned int seed;
};

static void *signal_sender(void *arg)
{
	struct kill_plan *k = arg;
	unsigned int seed = k->seed;
	int64_t end;

	while (!__atomic_load_n(&C.spawned_before, __ATOMIC_ACQUIRE))
		;
	end = rf_now() + (int64_t)(rnd(&seed) % 2000) * 1000;
	while (rf_now() < end)
		;
	/* to the process (any thread that does not block it: a worker), or to worker 0 */
	if (seed & 1)
		kill(getpid(), SIGUSR1);
	else
		pthread_kill(k->target, SIGUSR1);
	return NULL;
}

static void test_shutdown_from_handler(unsigned int rounds, unsigned int flags)
{
	struct rf_runtime_opts opts = { .workers = 2, .flags = flags };
	struct sigaction sa = { .sa_handler = shutdown_handler, .sa_flags = SA_RESTART };
	unsigned int bad_rc = 0, bad_call = 0, escaped = 0, spawn_failed = 0;
	int last_rc = 0, last_call = 0;
	sigset_t usr1, old;
	int rc;

	sigemptyset(&sa.sa_mask);
	sigaction(SIGUSR1, &sa, NULL);
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	rc = rf_runtime_create(&handler_rt, &opts);
	if (rc) {
		ok(0, "rf_runtime_create() -> %d", rc);
		return;
	}
	no_ring = flags & RF_RT_NO_RING;
	for (unsigned int i = 0; i < rounds; i++) {
		struct kill_plan k = { .target = pthread_self(), .seed = i * 104729u + 17 };
		pthread_t th;

		memset(&C, 0, sizeof(C));
		__atomic_store_n(&handler_rc, 1, __ATOMIC_RELAXED);
		round_start(flags & RF_RT_NO_RING ? "a signal handler, no ring" : "a signal handler",
			    i);
		/* the sender blocks SIGUSR1: it lands on a worker */
		pthread_sigmask(SIG_BLOCK, &usr1, &old);
		rc = pthread_create(&th, NULL, signal_sender, &k);
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		if (rc) {
			ok(0, "pthread_create()");
			break;
		}
		rc = rf_runtime_run(handler_rt, hot_main, (void *)(uintptr_t)k.seed, NULL);
		alarm(0);
		pthread_join(th, NULL);
		if (rc) {
			bad_rc++;
			last_rc = rc;
		}
		if (__atomic_load_n(&handler_rc, __ATOMIC_RELAXED)) {
			bad_call++;
			last_call = handler_rc;
		}
		escaped += C.other;
		spawn_failed += C.spawn_errors;
	}
	rf_runtime_destroy(handler_rt);
	signal(SIGUSR1, SIG_DFL);
	no_ring = false;
	tap_diag("rf_runtime_shutdown() from a signal handler%s: %u rounds",
		 flags & RF_RT_NO_RING ? ", without a ring" : "", rounds);
	none_failed(bad_rc, last_rc, "every run returned 0", "run");
	none_failed(bad_call, last_call, "every call in the handler returned 0", "call");
	is_int(escaped, 0, "every blocking call ended by the shutdown returned -ECANCELED");
	is_int(spawn_failed, 0, "every rf_spawn() succeeded");
}

/* ------------------------------------------- RF_RT_SHUTDOWN_ON_SIGNAL */

/*
 * A child process (this program again, "sig-child MODE FD") whose own
 * threads, started before the run, block nothing, runs a runtime with
 * RF_RT_SHUTDOWN_ON_SIGNAL, tells the parent on FD that its fibers are
 * parked, and exits 0 only if the run returned 0 with rf_stats.signal set
 * and every parked call cancelled.  The signal comes from the parent to
 * the process (SIGTERM or SIGINT), or from a fiber to one of those threads
 * (pthread_kill()), or to a process whose threads all block it but the
 * runtime's: it must shut the run down, never kill the process.
 */
enum sig_mode {
	SIG_TERM, SIG_INT, SIG_TO_THREAD, SIG_TERM_NO_RING, SIG_TERM_BLOCKED, SIG_MODES
};

static const char *const sig_mode_name[SIG_MODES] = {
	[SIG_TERM] = "SIGTERM to the process",
	[SIG_INT] = "SIGINT to the process",
	[SIG_TO_THREAD] = "SIGTERM to a thread started before the run",
	[SIG_TERM_NO_RING] = "SIGTERM to the process, no ring",
	[SIG_TERM_BLOCKED] = "SIGTERM to a process that blocked it before making its threads",
};

#define CHILD_THREADS 4

static pthread_t child_threads[CHILD_THREADS];

static void *idle_thread(void *arg)
{
	for (;;)
		pause();
	return arg;
}

struct sig_child {
	enum sig_mode mode;
	int ready_fd;
};

static void *sig_child_main(void *arg)
{
	struct sig_child *c = arg;

	for (unsigned int i = 0; i < 12; i++)
		count_spawn(rf_spawn_on(i % 2, NULL, parker, (void *)(uintptr_t)(i % 3), &detached));
	rf_yield();
	if (write(c->ready_fd, "r", 1) != 1)
		return (void *)1;
	if (c->mode == SIG_TO_THREAD)
		pthread_kill(child_threads[CHILD_THREADS - 1], SIGTERM);
	/*
	 * Without a ring nothing is in flight while the fibers wait on events:
	 * the runtime would take that for a deadlock.  Run until the signal.
	 */
	while (no_ring && !my_stats().signal)
		rf_yield();
	park_once(0);
	return NULL;
}

/* Exit status: 0, or what went wrong (the parent prints it). */
enum { CHILD_OK, CHILD_SETUP, CHILD_RUN_RC, CHILD_NO_SIGNAL, CHILD_ESCAPED };

static int sig_child(enum sig_mode mode, int ready_fd)
{
	struct rf_runtime_opts opts = { .workers = 2, .flags = RF_RT_SHUTDOWN_ON_SIGNAL };
	struct sig_child c = { .mode = mode, .ready_fd = ready_fd };
	int want = mode == SIG_INT ? SIGINT : SIGTERM;
	struct rf_runtime *rt;
	struct rf_stats st;
	void *res = NULL;
	int rc;

	if (mode == SIG_TERM_BLOCKED) {
		/* as a program that reads its signals with sigwait() or a signalfd does */
		sigset_t set;

		sigemptyset(&set);
		sigaddset(&set, SIGTERM);
		sigaddset(&set, SIGINT);
		pthread_sigmask(SIG_BLOCK, &set, NULL);
	}
	for (int i = 0; i < CHILD_THREADS; i++)
		if (pthread_create(&child_threads[i], NULL, idle_thread, NULL))
			return CHILD_SETUP;
	if (mode == SIG_TERM_NO_RING)
		opts.flags |= RF_RT_NO_RING;
	no_ring = mode == SIG_TERM_NO_RING;
	if (rf_runtime_create(&rt, &opts))
		return CHILD_SETUP;
	rc = rf_runtime_run(rt, sig_child_main, &c, &res);
	rf_runtime_stats(rt, &st);
	rf_runtime_destroy(rt);
	if (rc || res)
		return CHILD_RUN_RC;
	if (st.signal != want)
		return CHILD_NO_SIGNAL;
	if (C.other || C.spawn_errors)
		return CHILD_ESCAPED;
	return CHILD_OK;
}

static const char *child_status(int status, char *buf, size_t len)
{
	static const char *const why[] = {
		[CHILD_SETUP] = "set-up failed",
		[CHILD_RUN_RC] = "the run did not return 0",
		[CHILD_NO_SIGNAL] = "rf_stats.signal is not the signal",
		[CHILD_ESCAPED] = "a parked call did not return -ECANCELED",
	};

	if (WIFSIGNALED(status))
		snprintf(buf, len, "killed by signal %d (%s): exit status %d in a shell",
			 WTERMSIG(status), strsignal(WTERMSIG(status)), 128 + WTERMSIG(status));
	else if (WIFEXITED(status) && (size_t)WEXITSTATUS(status) < ARRAY_SIZE(why) &&
		 why[WEXITSTATUS(status)])
		snprintf(buf, len, "exited %d: %s", WEXITSTATUS(status), why[WEXITSTATUS(status)]);
	else
		snprintf(buf, len, "status 0x%x", status);
	return buf;
}

static void test_shutdown_on_signal(enum sig_mode mode, unsigned int rounds)
{
	unsigned int bad = 0;
	char what[128], last[128] = "";

	snprintf(what, sizeof(what), "RF_RT_SHUTDOWN_ON_SIGNAL, %s", sig_mode_name[mode]);
	for (unsigned int i = 0; i < rounds; i++) {
		char mode_arg[16], fd_arg[16], b;
		int pfd[2], status = -1;
		pid_t pid;

		if (pipe2(pfd, O_CLOEXEC)) {
			ok(0, "pipe2()");
			return;
		}
		snprintf(mode_arg, sizeof(mode_arg), "%d", (int)mode);
		snprintf(fd_arg, sizeof(fd_arg), "%d", pfd[1]);
		round_start(what, i);
		fflush(stdout);
		pid = fork();
		if (pid == 0) {
			/* the write end survives the exec */
			if (fcntl(pfd[1], F_SETFD, 0) == 0)
				execl("/proc/self/exe", "shutdown", "sig-child", mode_arg, fd_arg,
				      (char *)NULL);
			_exit(CHILD_SETUP);
		}
		close(pfd[1]);
		round_child = pid;
		if (pid > 0 && read(pfd[0], &b, 1) == 1 && mode != SIG_TO_THREAD)
			kill(pid, mode == SIG_INT ? SIGINT : SIGTERM);
		close(pfd[0]);
		if (pid > 0)
			waitpid(pid, &status, 0);
		round_child = 0;
		alarm(0);
		if (!WIFEXITED(status) || WEXITSTATUS(status) != CHILD_OK) {
			bad++;
			child_status(status, last, sizeof(last));
		}
	}
	tap_diag("%s: %u rounds, with %d threads of the program's own", what, rounds,
		 CHILD_THREADS);
	is_int(bad, 0, "every process exited 0 after a clean shutdown");
	if (bad)
		tap_diag("  the last bad one: %s", last);
}

/* -------------------------------------------- the cost of the shutdown */

/*
 * Cancelling a fiber that sleeps, or waits on an event with a deadline,
 * must not cost a request to the kernel: the kernel finds the timeout to
 * cancel or remove by walking the ring's list of timeouts, so one request
 * per fiber made the shutdown of n such fibers quadratic (40,000 sleepers:
 * 14 s).  Counted, not timed: the requests the shutdown submits
 * (rf_stats.sqes) must be a small fraction of the fibers it cancels.
 */
struct cost {
	unsigned int n;
	int kind;			/* 0: rf_sleep(), 1: rf_event_wait() with a deadline */
	unsigned int parking;		/* atomic: waiters about to park */
	uint64_t sqes_before;		/* when every waiter was parked */
};

static void *cost_waiter(void *arg)
{
	struct cost *c = arg;
	int64_t hour = rf_deadline_after(3600 * 1000 * MSEC);

	__atomic_add_fetch(&c->parking, 1, __ATOMIC_RELAXED);
	if (c->kind == 0)
		count_result(rf_sleep(hour));
	else
		count_result(rf_event_wait(&never_set, hour));
	return NULL;
}

static void *cost_main(void *arg)
{
	struct cost *c = arg;

	for (unsigned int i = 0; i < c->n; i++)
		count_spawn(rf_spawn_on(i % 2, NULL, cost_waiter, c, &detached));
	while (__atomic_load_n(&c->parking, __ATOMIC_RELAXED) < c->n)
		rf_yield();
	/* the last of them park on the other worker meanwhile */
	rf_sleep(rf_deadline_after(20 * MSEC));
	c->sqes_before = my_stats().sqes;
	rf_runtime_shutdown(NULL);
	return NULL;
}

static void test_shutdown_cost(int kind)
{
	struct rf_runtime_opts opts = { .workers = 2 };
	struct cost c = { .n = test_quick() ? 500 : 4000, .kind = kind };
	const char *what = kind == 0 ? "sleeping" : "waiting on an event with a deadline";
	struct rf_stats st;
	uint64_t requests;
	int rc;

	memset(&C, 0, sizeof(C));
	round_start("the cost of the shutdown", (unsigned int)kind);
	rc = run_main(&opts, cost_main, &c, NULL, &st);
	alarm(0);
	requests = st.sqes - c.sqes_before;
	tap_diag("the shutdown of %u fibers %s submitted %" PRIu64 " requests", c.n, what,
		 requests);
	is_int(rc, 0, tn("the run returned 0"));
	is_int(C.cancelled, c.n, tn("every one of them returned -ECANCELED"));
	ok(requests < c.n / 10, "%s",
	   tn("cancelling them took no request per fiber (%" PRIu64 " for %u)", requests, c.n));
}

/*
 * ThreadSanitizer queues an asynchronous signal on the fiber that was
 * running when it came and runs the handler only when that fiber runs
 * again: for a fiber that has parked for good, never.
 */
#ifdef __SANITIZE_THREAD__
static const bool under_tsan = true;
#else
static const bool under_tsan = false;
#endif

/* With arguments, only the sections named (spawn-fiber, spawn-thread, spawn-early,
 * handler, handler-noring, signal, cost). */
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

	if (pipe2(pfd, O_CLOEXEC)) {
		perror("pipe2");
		return 1;
	}
	never_fd = pfd[0];
	if (argc == 4 && !strcmp(argv[1], "sig-child"))
		return sig_child((enum sig_mode)atoi(argv[2]), atoi(argv[3]));
	ring_or_skip_all();

	for (unsigned int b = 0; b < ARRAY_SIZE(wake_backends); b++) {
		if (wanted(argc, argv, "spawn-fiber"))
			test_spawn_vs_shutdown(STOP_FIBER, rounds, b);
		if (wanted(argc, argv, "spawn-thread"))
			test_spawn_vs_shutdown(STOP_THREAD, rounds, b);
		if (wanted(argc, argv, "spawn-early"))
			test_spawn_vs_shutdown(STOP_THREAD_EARLY, rounds, b);
	}
	if (wanted(argc, argv, "cost")) {
		test_shutdown_cost(0);
		test_shutdown_cost(1);
	}
	if (under_tsan) {
		tap_skip(4 + 4 + SIG_MODES, "signal handlers under ThreadSanitizer run only when "
			 "the fiber they interrupted runs again (the plain and ASan builds run "
			 "these)");
		return done_testing();
	}
	if (wanted(argc, argv, "handler"))
		test_shutdown_from_handler(rounds, 0);
	if (wanted(argc, argv, "handler-noring"))
		test_shutdown_from_handler(rounds, RF_RT_NO_RING);
	for (int m = 0; m < SIG_MODES; m++)
		if (wanted(argc, argv, "signal"))
			test_shutdown_on_signal((enum sig_mode)m, rounds_scale(60));

	close(pfd[0]);
	close(pfd[1]);
	return done_testing();
}
