/* SPDX-License-Identifier: MIT */
/*
 * blocking.c - rf_blocking(): the call's result reaches the fiber, the call
 * runs on a pool thread (named, with the runtime's signals blocked), other
 * fibers of the same worker keep running while it blocks, many calls at
 * once all complete, the pool never runs more calls at once than it has
 * threads, a fiber cancelled while it waits still gets its result (and the
 * cancellation at its next blocking call) while one cancelled before the
 * call gets -ECANCELED and runs nothing, getaddrinfo() works through it, a
 * fiber waiting for the pool is not a deadlock, and the pool's threads end
 * with the run.
 *
 * Runs with two workers, with one, and with one and no ring (rf_blocking()
 * itself needs no io_uring).
 */
#include <dirent.h>
#include <netdb.h>
#include <pthread.h>
#include <sched.h>
#include <sys/syscall.h>
#include <time.h>

#include "helpers.h"

#define ND RF_NO_DEADLINE
#define NMANY 64
#define POOL_THREADS 4

struct config {
	const char *name;
	unsigned int workers;
	unsigned int flags;
	int ring;
};

static const struct config configs[] = {
	{ "2 workers", 2, 0, 1 },
	{ "1 worker", 1, 0, 1 },
	{ "1 worker, no ring", 1, RF_RT_NO_RING, 0 },
};

static const struct config *cfg;

static pid_t my_tid(void)
{
	return (pid_t)syscall(SYS_gettid);
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static void *sleep_arg_ms(void *arg)
{
	sleep_ms((long)(intptr_t)arg);
	return arg;
}

/*
 * Park about a millisecond, so other fibers and threads run.  Without a
 * ring there is no timer: a pool thread sleeps for us instead (polling
 * with rf_yield() alone would hold the worker and trip the hog watchdog).
 */
static void pause_fiber(void)
{
	if (cfg->ring)
		rf_sleep(rf_deadline_after(MSEC));
	else
		rf_blocking(sleep_arg_ms, (void *)1, NULL);
}

/* Threads of this process named "rf-blocking" now, or -1. */
static int count_pool_threads(void)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;
	char path[300], name[32];
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)) != NULL) {
		FILE *fp;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%s/comm", e->d_name);
		fp = fopen(path, "r");
		if (!fp)
			continue;	/* the thread just ended */
		if (fgets(name, sizeof(name), fp) && strcmp(name, "rf-blocking\n") == 0)
			n++;
		fclose(fp);
	}
	closedir(d);
	return n;
}

/* ----------------------------------------------------------- the result */

/* What a call saw of the thread it ran on. */
struct thread_info {
	pid_t tid;
	char name[32];
	int sigs_blocked;	/* SIGINT, SIGTERM and SIGURG all blocked */
	int blocking_rc;	/* rf_blocking() called from the pool thread */
	int worker_id;		/* rf_worker_id() there */
	int self_null;		/* rf_self() there is NULL */
	int ncpus;		/* CPUs the thread may run on */
};

/* CPUs the process may run on, read before any runtime pins a thread. */
static int process_cpus;

static int allowed_cpus(void)
{
	cpu_set_t set;

	if (sched_getaffinity(0, sizeof(set), &set) != 0)
		return -1;
	return CPU_COUNT(&set);
}

static void *inspect_thread(void *arg)
{
	struct thread_info *ti = arg;
	sigset_t set;

	ti->tid = my_tid();
	if (pthread_getname_np(pthread_self(), ti->name, sizeof(ti->name)) != 0)
		strcpy(ti->name, "?");
	ti->sigs_blocked = pthread_sigmask(SIG_BLOCK, NULL, &set) == 0 &&
			   sigismember(&set, SIGINT) == 1 && sigismember(&set, SIGTERM) == 1 &&
			   sigismember(&set, SIGURG) == 1;
	ti->blocking_rc = rf_blocking(inspect_thread, NULL, NULL);
	ti->worker_id = rf_worker_id();
	ti->self_null = rf_self() == NULL;
	ti->ncpus = allowed_cpus();
	return ti;
}

static void *double_it(void *arg)
{
	return (void *)((intptr_t)arg * 2);
}

static int side_effect;

static void *set_side_effect(void *arg)
{
	__atomic_store_n(&side_effect, (int)(intptr_t)arg, __ATOMIC_RELAXED);
	return NULL;
}

static void test_result(void)
{
	struct thread_info ti;
	uint64_t calls0 = my_stats().blocking_calls;
	void *res = NULL;
	int rc, n, want_cpus;

	rc = rf_blocking(double_it, (void *)21, &res);
	is_int(rc, 0, tn("rf_blocking() -> 0"));
	is_int((intptr_t)res, 42, tn("rf_blocking() returns fn's result"));

	side_effect = 0;
	is_int(rf_blocking(set_side_effect, (void *)7, NULL), 0,
	       tn("rf_blocking() with a NULL result pointer -> 0"));
	is_int(__atomic_load_n(&side_effect, __ATOMIC_RELAXED), 7, tn("and fn ran"));

	memset(&ti, 0, sizeof(ti));
	res = NULL;
	rc = rf_blocking(inspect_thread, &ti, &res);
	is_int(rc, 0, tn("rf_blocking(inspect the thread) -> 0"));
	ok(res == &ti, "%s", tn("the result is the pointer fn returned"));
	ok(ti.tid != 0 && ti.tid != my_tid(), "%s",
	   tn("fn ran on another thread than the fiber's worker (%d, %d)", (int)ti.tid,
	      (int)my_tid()));
	is_str(ti.name, "rf-blocking", tn("the pool thread is named rf-blocking"));
	ok(ti.sigs_blocked, "%s", tn("the pool thread blocks SIGINT, SIGTERM and SIGURG"));
	is_int(ti.blocking_rc, -EPERM, tn("rf_blocking() on a pool thread -> -EPERM"));
	is_int(ti.worker_id, -EPERM, tn("rf_worker_id() on a pool thread -> -EPERM"));
	ok(ti.self_null, "%s", tn("rf_self() on a pool thread is NULL"));
	/* The workers are pinned to distinct CPUs: the pool may use them all. */
	want_cpus = rf_worker_count() < process_cpus ? rf_worker_count() : process_cpus;
	ok(ti.ncpus >= want_cpus, "%s",
	   tn("the pool thread may run on every worker's CPU (%d of %d)", ti.ncpus, want_cpus));

	is_int(my_stats().blocking_calls - calls0, 3, tn("stats count 3 blocking calls"));
	n = count_pool_threads();
	is_int(n, POOL_THREADS, tn("the pool has its %d threads", POOL_THREADS));

	is_int(rf_blocking(NULL, NULL, &res), -EINVAL, tn("rf_blocking(NULL fn) -> -EINVAL"));
}

/* A lone fiber waiting for the pool: the workers sleep, it is no deadlock. */
static void test_alone(void)
{
	void *res = NULL;

	is_int(rf_blocking(sleep_arg_ms, (void *)50, &res), 0,
	       tn("rf_blocking(sleep 50 ms) with nothing else to run -> 0"));
	is_int((intptr_t)res, 50, tn("and returns fn's result"));
}

/* ------------------------------------------------------------- progress */

static int progress_done;
static long ticks, yields;

static void *ticker(void *arg)
{
	while (!__atomic_load_n(&progress_done, __ATOMIC_ACQUIRE)) {
		pause_fiber();
		__atomic_add_fetch(&ticks, 1, __ATOMIC_RELAXED);
	}
	return (void *)(intptr_t)rf_worker_id();
}

static void *yielder(void *arg)
{
	while (!__atomic_load_n(&progress_done, __ATOMIC_ACQUIRE)) {
		__atomic_add_fetch(&yields, 1, __ATOMIC_RELAXED);
		rf_yield();
	}
	return (void *)(intptr_t)rf_worker_id();
}

struct blocker {
	int rc;
	void *res;
	long dticks, dyields;
	int wid_before, wid_after;
};

static void *blocker(void *arg)
{
	struct blocker *b = arg;
	long t0, y0;

	/* Let the others start first. */
	rf_yield();
	b->wid_before = rf_worker_id();
	t0 = __atomic_load_n(&ticks, __ATOMIC_RELAXED);
	y0 = __atomic_load_n(&yields, __ATOMIC_RELAXED);
	b->rc = rf_blocking(sleep_arg_ms, (void *)200, &b->res);
	b->dticks = __atomic_load_n(&ticks, __ATOMIC_RELAXED) - t0;
	b->dyields = __atomic_load_n(&yields, __ATOMIC_RELAXED) - y0;
	b->wid_after = rf_worker_id();
	__atomic_store_n(&progress_done, 1, __ATOMIC_RELEASE);
	return NULL;
}

/*
 * While one fiber waits 200 ms in rf_blocking(), a fiber pinned to the same
 * worker keeps running: one that sleeps (the worker goes to sleep in the
 * kernel between its ticks, and the pool thread must wake it) and one that
 * only yields (the worker never sleeps).
 */
static void progress_case(int with_yielder)
{
	const struct rf_spawn_attr attr = { .pinned = 1 };
	struct rf_fiber *ft = NULL, *fy = NULL, *fb = NULL;
	struct blocker b;
	void *wt = NULL, *wy = NULL;
	int rc;

	memset(&b, 0, sizeof(b));
	progress_done = 0;
	ticks = yields = 0;
	rc = rf_spawn_on(0, &ft, ticker, NULL, &attr);
	if (!rc && with_yielder)
		rc = rf_spawn_on(0, &fy, yielder, NULL, &attr);
	if (!rc)
		rc = rf_spawn_on(0, &fb, blocker, &b, &attr);
	is_int(rc, 0, tn("spawn the pinned fibers (yielder: %d)", with_yielder));
	if (rc)
		__atomic_store_n(&progress_done, 1, __ATOMIC_RELEASE);
	if (fb)
		rf_join(fb, NULL, ND);
	if (fy)
		rf_join(fy, &wy, ND);
	if (ft)
		rf_join(ft, &wt, ND);
	if (rc)
		return;
	is_int(b.rc, 0, tn("rf_blocking(sleep 200 ms) -> 0 (yielder: %d)", with_yielder));
	is_int((intptr_t)b.res, 200, tn("its result (yielder: %d)", with_yielder));
	is_int(b.wid_before, 0, tn("the blocking fiber ran on worker 0"));
	is_int(b.wid_after, 0, tn("and came back on worker 0"));
	is_int((intptr_t)wt, 0, tn("the ticker ran on worker 0"));
	ok(b.dticks > 0, "%s",
	   tn("the ticker made progress meanwhile (%ld ticks, yielder: %d)", b.dticks,
	      with_yielder));
	if (with_yielder) {
		is_int((intptr_t)wy, 0, tn("the yielder ran on worker 0"));
		ok(b.dyields > 0, "%s", tn("the yielder made progress meanwhile (%ld)", b.dyields));
	}
}

static void test_progress(void)
{
	progress_case(0);
	/*
	 * Without a ring the ticker waits in the pool too, and a yielder
	 * alone on its worker never switches (rf_yield() has nothing to
	 * switch to): the hog watchdog would report it.
	 */
	if (cfg->ring)
		progress_case(1);
}

/* --------------------------------------------------------- many at once */

static int running, max_running;

static void *counted_square(void *arg)
{
	intptr_t x = (intptr_t)arg;
	int now = __atomic_add_fetch(&running, 1, __ATOMIC_SEQ_CST);
	int max = __atomic_load_n(&max_running, __ATOMIC_RELAXED);

	while (now > max &&
	       !__atomic_compare_exchange_n(&max_running, &max, now, 0, __ATOMIC_RELAXED,
					    __ATOMIC_RELAXED))
		;
	sleep_ms(2);
	__atomic_sub_fetch(&running, 1, __ATOMIC_SEQ_CST);
	return (void *)(x * x);
}

struct many {
	intptr_t x;
	int rc;
	void *res;
};

static void *many_fiber(void *arg)
{
	struct many *m = arg;

	m->rc = rf_blocking(counted_square, (void *)m->x, &m->res);
	return NULL;
}

/* @n fibers over every worker call rf_blocking() at once. */
static void many_case(int n, int pool_threads)
{
	struct many m[NMANY];
	struct rf_fiber *f[NMANY];
	uint64_t calls0 = my_stats().blocking_calls;
	int i, spawned = 0, bad_rc = 0, bad_res = 0, rc = 0;
	int workers = rf_worker_count();

	running = max_running = 0;
	for (i = 0; i < n; i++) {
		m[i].x = i + 1;
		m[i].rc = 1;
		m[i].res = NULL;
		rc = rf_spawn_on((unsigned int)(i % workers), &f[i], many_fiber, &m[i], NULL);
		if (rc)
			break;
		spawned++;
	}
	is_int(rc, 0, tn("spawn %d fibers", n));
	for (i = 0; i < spawned; i++) {
		rf_join(f[i], NULL, ND);
		bad_rc += m[i].rc != 0;
		bad_res += (intptr_t)m[i].res != m[i].x * m[i].x;
	}
	is_int(bad_rc, 0, tn("%d concurrent rf_blocking() calls all -> 0", n));
	is_int(bad_res, 0, tn("each got its own result"));
	is_int(my_stats().blocking_calls - calls0, spawned, tn("stats count them all"));
	ok(max_running >= 1 && max_running <= pool_threads, "%s",
	   tn("at most %d calls ran at once (%d)", pool_threads, max_running));
}

static void test_many(void)
{
	many_case(NMANY, POOL_THREADS);
}

/* ---------------------------------------------------------- cancellation */

struct cancel_case {
	int started, release;
	int self_cancel;	/* the victim cancels itself before the call */
	int rc_block, rc_sleep, rc_event;
	void *res;
};

static void *wait_for_release(void *arg)
{
	struct cancel_case *c = arg;
	int i;

	__atomic_store_n(&c->started, 1, __ATOMIC_RELEASE);
	/* Bounded, so a broken test fails instead of hanging the pool. */
	for (i = 0; i < 5000 && !__atomic_load_n(&c->release, __ATOMIC_ACQUIRE); i++)
		sleep_ms(1);
	return (void *)0x1234;
}

static void *cancel_victim(void *arg)
{
	struct cancel_case *c = arg;
	struct rf_event never = RF_EVENT_INIT;

	if (c->self_cancel) {
		rf_cancel(rf_self());
		__atomic_store_n(&c->release, 1, __ATOMIC_RELEASE);
	}
	c->rc_block = rf_blocking(wait_for_release, c, &c->res);
	c->rc_sleep = cfg->ring ? rf_sleep(rf_deadline_after(5000 * MSEC)) : -ECANCELED;
	c->rc_event = rf_event_wait(&never, ND);
	return NULL;
}

static void cancel_case(int self_cancel)
{
	struct cancel_case c;
	struct rf_fiber *f;
	int64_t t_end;
	int rc;

	memset(&c, 0, sizeof(c));
	c.self_cancel = self_cancel;
	/* On the last worker: with two, the cancel crosses workers. */
	rc = rf_spawn_on((unsigned int)(rf_worker_count() - 1), &f, cancel_victim, &c, NULL);
	is_int(rc, 0, tn("spawn the victim"));
	if (rc)
		return;
	if (!self_cancel) {
		t_end = rf_deadline_after(5000 * MSEC);
		while (!__atomic_load_n(&c.started, __ATOMIC_ACQUIRE) && rf_now() < t_end)
			pause_fiber();
		ok(c.started, "%s", tn("fn started on a pool thread"));
		is_int(rf_cancel(f), 0, tn("rf_cancel() the fiber inside rf_blocking()"));
		/*
		 * Give the cancellation time to reach the fiber's worker
		 * while fn still runs (the checks hold either way).
		 */
		t_end = rf_deadline_after(20 * MSEC);
		while (rf_now() < t_end)
			pause_fiber();
		__atomic_store_n(&c.release, 1, __ATOMIC_RELEASE);
	}
	is_int(rf_join(f, NULL, ND), 0, tn("join the victim"));
	if (self_cancel) {
		is_int(c.rc_block, -ECANCELED,
		       tn("rf_blocking() of a cancelled fiber -> -ECANCELED"));
		ok(!c.started && !c.res, "%s", tn("and fn did not run"));
	} else {
		is_int(c.rc_block, 0, tn("rf_blocking() of a cancelled-while-waiting fiber -> 0"));
		is_int((intptr_t)c.res, 0x1234, tn("and gets fn's result"));
	}
	if (cfg->ring)
		is_int(c.rc_sleep, -ECANCELED, tn("the next rf_sleep() -> -ECANCELED"));
	is_int(c.rc_event, -ECANCELED, tn("the next rf_event_wait() -> -ECANCELED"));
}

static void test_cancel(void)
{
	cancel_case(0);
	cancel_case(1);
}

/* --------------------------------------------------------------- groups */

struct grouped {
	int rc_block;
	void *res;
	int rc_after;
};

static int grouped_task(void *arg)
{
	struct grouped *gr = arg;

	gr->rc_block = rf_blocking(sleep_arg_ms, (void *)300, &gr->res);
	gr->rc_after = rf_event_wait(&(struct rf_event)RF_EVENT_INIT, ND);
	return 0;
}

/*
 * A group's deadline bounds its fibers' blocking calls, but it cannot stop
 * a pool thread: rf_blocking() in a group fiber whose deadline passes still
 * returns only once fn has returned, with its result; the deadline shows
 * at the next blocking call.
 */
static void test_group_deadline(void)
{
	struct grouped gr;
	struct rf_group *g = NULL;
	int rc;

	memset(&gr, 0, sizeof(gr));
	rc = rf_group_create(&g, rf_deadline_after(50 * MSEC));
	is_int(rc, 0, tn("rf_group_create(deadline in 50 ms)"));
	if (rc)
		return;
	rc = rf_group_spawn(g, grouped_task, &gr, NULL);
	is_int(rc, 0, tn("spawn a group fiber that calls rf_blocking(sleep 300 ms)"));
	rc = rf_group_wait(g);
	ok(rc == -ETIMEDOUT || rc == -ECANCELED || rc == 0, "%s",
	   tn("rf_group_wait() -> %d", rc));
	is_int(gr.rc_block, 0, tn("rf_blocking() past the group's deadline -> 0"));
	is_int((intptr_t)gr.res, 300, tn("and gets fn's result"));
	ok(gr.rc_after == -ETIMEDOUT || gr.rc_after == -ECANCELED, "%s",
	   tn("the next blocking call sees the deadline (%d)", gr.rc_after));
}

/* ----------------------------------------------------------- getaddrinfo */

struct gai {
	int rc;
	struct addrinfo *ai;
};

static void *gai_localhost(void *arg)
{
	struct gai *g = arg;
	struct addrinfo hints;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	g->rc = getaddrinfo("localhost", "80", &hints, &g->ai);
	return g;
}

static void test_getaddrinfo(void)
{
	struct gai g = { 0, NULL };
	struct addrinfo *ai;
	int good = 1, rc;

	rc = rf_blocking(gai_localhost, &g, NULL);
	is_int(rc, 0, tn("rf_blocking(getaddrinfo) -> 0"));
	if (rc)
		return;
	if (g.rc != 0) {
		char why[160];

		snprintf(why, sizeof(why), "getaddrinfo(\"localhost\") fails here: %s",
			 gai_strerror(g.rc));
		tap_skip(1, why);
		return;
	}
	for (ai = g.ai; ai; ai = ai->ai_next)
		good &= ai->ai_family == AF_INET || ai->ai_family == AF_INET6;
	ok(g.ai && good, "%s", tn("getaddrinfo(\"localhost\") gives IPv4/IPv6 addresses"));
	freeaddrinfo(g.ai);
}

/* ---------------------------------------------------------------- driver */

static void *blocking_main(void *arg)
{
	test_result();
	test_alone();
	test_progress();
	test_many();
	test_cancel();
	if (cfg->ring)		/* a group's deadline needs a timer */
		test_group_deadline();
	test_getaddrinfo();
	return (void *)0x600d;
}

static struct rf_runtime_opts opts_of(const struct config *c)
{
	struct rf_runtime_opts o = { .workers = c->workers, .flags = c->flags };

	return o;
}

/* Pool threads of a run that is over: gone (they may take a moment to be reaped). */
static void no_pool_threads_left(const char *after)
{
	int i, n = count_pool_threads();

	for (i = 0; i < 200 && n > 0; i++) {
		sleep_ms(10);
		n = count_pool_threads();
	}
	is_int(n, 0, tn("no rf-blocking thread is left after %s", after));
}

static void *one_pool_thread_main(void *arg)
{
	many_case(8, 1);
	return NULL;
}

static void *blocking_once(void *arg)
{
	void *res = NULL;
	int rc = rf_blocking(double_it, arg, &res);

	return rc ? NULL : res;
}

/* One runtime, two runs: the pool ends with the first and starts again. */
static void test_two_runs(void)
{
	struct rf_runtime_opts o = opts_of(cfg);
	struct rf_runtime *rt = NULL;
	void *res;
	int rc;

	rc = rf_runtime_create(&rt, &o);
	is_int(rc, 0, tn("rf_runtime_create() for two runs"));
	if (rc)
		return;
	res = NULL;
	is_int(rf_runtime_run(rt, blocking_once, (void *)5, &res), 0, tn("first run -> 0"));
	is_int((intptr_t)res, 10, tn("first run's rf_blocking() result"));
	no_pool_threads_left("the first run");
	res = NULL;
	is_int(rf_runtime_run(rt, blocking_once, (void *)6, &res), 0, tn("second run -> 0"));
	is_int((intptr_t)res, 12, tn("second run's rf_blocking() result"));
	rf_runtime_destroy(rt);
	no_pool_threads_left("the second run");
}

int main(void)
{
	struct rf_runtime_opts o;
	struct rf_stats st;
	size_t i;
	void *res;
	int rc, have_ring;

	test_watchdog(60);
	process_cpus = allowed_cpus();

	is_int(rf_blocking(double_it, NULL, NULL), -EPERM,
	       "rf_blocking() outside a fiber -> -EPERM");
	is_int(rf_blocking(NULL, NULL, NULL), -EPERM,
	       "rf_blocking(NULL fn) outside a fiber -> -EPERM");

	have_ring = runtime_has_ring(NULL);
	for (i = 0; i < ARRAY_SIZE(configs); i++) {
		cfg = &configs[i];
		test_config_name = cfg->name;
		if (cfg->ring && !have_ring) {
			tap_skip(1, tn("the runtime gets no io_uring ring here"));
			continue;
		}
		o = opts_of(cfg);
		res = NULL;
		rc = run_main(&o, blocking_main, NULL, &res, &st);
		is_int(rc, 0, tn("rf_runtime_run() -> 0"));
		ok(res == (void *)0x600d, "%s", tn("the main fiber finished"));
		is_int(st.fibers, 0, tn("no fiber left after the run"));
		no_pool_threads_left("the run");
		test_two_runs();
	}

	cfg = have_ring ? &configs[0] : &configs[2];
	test_config_name = "1 pool thread";
	o = opts_of(cfg);
	o.blocking_threads = 1;
	rc = run_main(&o, one_pool_thread_main, NULL, NULL, NULL);
	is_int(rc, 0, tn("rf_runtime_run() -> 0"));
	no_pool_threads_left("the run");

	test_config_name = NULL;
	return done_testing();
}
