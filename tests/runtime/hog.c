// SPDX-License-Identifier: MIT
/*
 * hog.c - a fiber that computes without yielding does not starve the
 * others: the watchdog reports it once, and the fibers queued behind it on
 * its worker run on the other worker meanwhile (the rescue, without
 * preemption), or on its own worker (preempted: preempt.c tests that).
 *
 * Hogs are measured in the worker thread's CPU time: a fiber that yields
 * often is never reported, however long the kernel keeps its worker's
 * thread preempted by a busier thread on the same CPU, and a real hog is
 * reported while it shares its CPU.
 *
 * Not run under ThreadSanitizer: TSan delays signals until the interrupted
 * thread makes a call it intercepts, which a hog never does.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <dirent.h>
#include <string.h>
#include <unistd.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>

#include "helpers.h"

#define HOG_MS 300

static int hog_running;			/* atomic */
static int ticks_during[2];		/* atomic: ticker wake-ups while the hog ran */
static volatile uint64_t sink;

static int64_t thread_cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (int64_t)ts.tv_sec * 1000 * MSEC + ts.tv_nsec;
}

/*
 * HOG_MS of wall-clock time and of its thread's CPU time, whichever is
 * later: the watchdog judges CPU time, and a loaded host (the debug
 * kernel's VM beside a build) once gave the hog too little of it in 300 ms
 * to be preempted.
 */
static void *hog(void *arg)
{
	int64_t end = rf_now() + HOG_MS * MSEC;
	int64_t cpu_end = thread_cpu_ns() + HOG_MS * MSEC;
	uint64_t n = 0;

	__atomic_store_n(&hog_running, 1, __ATOMIC_SEQ_CST);
	while (rf_now() < end || thread_cpu_ns() < cpu_end)
		n++;		/* no yield, no blocking call */
	sink = n;
	__atomic_store_n(&hog_running, 0, __ATOMIC_SEQ_CST);
	return NULL;
}

static int ticker_first_worker = -1;

static void *ticker(void *arg)
{
	ticker_first_worker = rf_worker_id();
	for (int i = 0; i < 2 * HOG_MS; i++) {
		if (rf_sleep(rf_deadline_after(MSEC)) != 0)
			break;
		if (__atomic_load_n(&hog_running, __ATOMIC_SEQ_CST))
			__atomic_add_fetch(&ticks_during[rf_worker_id() & 1], 1, __ATOMIC_RELAXED);
	}
	return NULL;
}

static void *hog_main(void *arg)
{
	static const struct rf_spawn_attr hog_attr = { .name = "the-hog" };
	struct rf_fiber *h, *t;

	/*
	 * The ticker parks in a sleep on this worker's ring first; the hog then
	 * runs here.  The ticker's completion waits in this worker's ring: only
	 * the watchdog's rescue can get it to the other worker.
	 */
	if (rf_spawn(&t, ticker, NULL, NULL))
		return (void *)1;
	rf_yield();
	if (rf_spawn(&h, hog, NULL, &hog_attr))
		return (void *)1;
	rf_join(h, NULL, RF_NO_DEADLINE);
	rf_join(t, NULL, RF_NO_DEADLINE);
	return NULL;
}

/* Run with stderr going to a file; return what was written there. */
static int run_capturing(const struct rf_runtime_opts *opts, struct rf_stats *st, char *out,
			 size_t outlen)
{
	char path[] = "/tmp/rf-hog-XXXXXX";
	int fd = mkstemp(path), saved = dup(STDERR_FILENO), rc;
	ssize_t n;

	out[0] = '\0';
	if (fd < 0 || saved < 0)
		return -errno;
	unlink(path);
	fflush(stderr);
	dup2(fd, STDERR_FILENO);
	memset(ticks_during, 0, sizeof(ticks_during));
	rc = run_main(opts, hog_main, NULL, NULL, st);
	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	close(saved);
	n = pread(fd, out, outlen - 1, 0);
	out[n > 0 ? n : 0] = '\0';
	close(fd);
	return rc;
}

/* -------------------------------------------- preempted is not a hog */

#define PREEMPT_HOG_NS (20 * MSEC)

struct preempt_result {
	int run;			/* rf_runtime_run() */
	int competitor;			/* 0: the competitor ran pinned to our CPU */
	uint64_t real_hogs;		/* reported during the real hog */
	uint64_t yielder_hogs;		/* reported while the yielder ran */
	uint64_t yields;
	int64_t max_gap_ns;		/* longest wall time between two yields */
};

static int preempt_cpu;
static int competitor_stop;		/* atomic */

/* Compute for @ns of this thread's CPU time without giving up the worker. */
static void burn_cpu(int64_t ns)
{
	int64_t end = thread_cpu_ns() + ns;
	uint64_t n = 0;

	while (thread_cpu_ns() < end)
		for (int i = 0; i < 1000; i++)
			n++;
	sink = n;
}

static int pin_to(pthread_t t, int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return pthread_setaffinity_np(t, sizeof(set), &set);
}

/* A CPU-bound thread on the worker's CPU: the kernel preempts the worker for it. */
static void *competitor(void *arg)
{
	uint64_t n = 0;

	(void)arg;
	while (!__atomic_load_n(&competitor_stop, __ATOMIC_RELAXED))
		n++;
	sink = n;
	return NULL;
}

static void *preempt_main(void *arg)
{
	struct preempt_result *r = arg;
	int64_t end, last, now;
	uint64_t before;
	pthread_t t;

	r->competitor = pthread_create(&t, NULL, competitor, NULL);
	if (!r->competitor)
		r->competitor = pin_to(t, preempt_cpu);
	if (r->competitor)
		return NULL;

	/* A real hog, its CPU shared half and half: reported. */
	burn_cpu(3 * PREEMPT_HOG_NS);
	r->real_hogs = my_stats().hogs;

	/*
	 * Now the worker's thread gets a small share of the CPU (nice 19
	 * against the competitor's 0): the kernel keeps it preempted for far
	 * longer than hog_ns at a time, in the middle of a fiber's run.  The
	 * fiber yields after every 0.2 ms of its own CPU time.
	 */
	setpriority(PRIO_PROCESS, (id_t)gettid(), 19);
	before = my_stats().hogs;
	end = rf_now() + 1500 * MSEC;
	last = rf_now();
	while (last < end) {
		burn_cpu(MSEC / 5);
		rf_yield();
		r->yields++;
		now = rf_now();
		if (now - last > r->max_gap_ns)
			r->max_gap_ns = now - last;
		last = now;
	}
	r->yielder_hogs = my_stats().hogs - before;

	__atomic_store_n(&competitor_stop, 1, __ATOMIC_RELAXED);
	pthread_join(t, NULL);
	return NULL;
}

/* In a child (its nice value is for good): the result on @fd, stderr on @errfd. */
static int preempt_child(int fd, int errfd)
{
	struct rf_runtime_opts opts = { .workers = 1, .hog_ns = PREEMPT_HOG_NS };
	struct preempt_result r = { .run = -1 };
	cpu_set_t set;

	dup2(errfd, STDERR_FILENO);
	if (sched_getaffinity(0, sizeof(set), &set) != 0)
		return 1;
	for (preempt_cpu = 0; preempt_cpu < CPU_SETSIZE; preempt_cpu++)
		if (CPU_ISSET(preempt_cpu, &set))
			break;
	opts.cpus = &preempt_cpu;	/* pinned: the competitor cannot be avoided */
	opts.ncpus = 1;
	r.run = run_main(&opts, preempt_main, &r, NULL, NULL);
	return write(fd, &r, sizeof(r)) == (ssize_t)sizeof(r) ? 0 : 1;
}

static void test_preempted_is_not_a_hog(void)
{
	char path[] = "/tmp/rf-hog-XXXXXX", err[2048];
	struct preempt_result r = { .run = -1 };
	int p[2], errfd = mkstemp(path), status = -1;
	ssize_t n;
	pid_t pid;

	if (errfd < 0 || pipe(p) != 0) {
		ok(0, "set up the preemption test");
		return;
	}
	unlink(path);
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid == 0) {
		close(p[0]);
		alarm(30);
		_exit(preempt_child(p[1], errfd));
	}
	close(p[1]);
	n = read(p[0], &r, sizeof(r));
	close(p[0]);
	if (pid > 0)
		waitpid(pid, &status, 0);
	n = n == (ssize_t)sizeof(r) ? pread(errfd, err, sizeof(err) - 1, 0) : 0;
	err[n > 0 ? n : 0] = '\0';
	close(errfd);

	if (!ok(pid > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0 && r.run == 0 &&
		r.competitor == 0, "preemption: the run with a competitor on its CPU ends "
		"(status 0x%x, run %d, competitor %d)", status, r.run, r.competitor))
		return;
	is_int(r.real_hogs, 1, "a real hog is reported while a competitor shares its CPU");
	ok(strstr(err, "(CPU time)") != NULL, "the report gives CPU time (%s)", err);
	tap_diag("the yielder: %" PRIu64 " yields, its worker preempted for up to %" PRId64
		 " ms between two", r.yields, (int64_t)(r.max_gap_ns / MSEC));
	if (r.max_gap_ns <= PREEMPT_HOG_NS) {
		tap_skip(1, "the worker was never preempted for longer than hog_ns here");
		return;
	}
	is_int(r.yielder_hogs, 0, "a fiber yielding every 0.2 ms of CPU is no hog, however "
	       "long its worker is preempted");
}

/* ------------------------------------------------------ an idle runtime */

#define IDLE_MS 300

struct idle_result {
	pid_t monitor;		/* the monitor thread's id, 0: not found */
	long woke_idle;		/* its voluntary switches while the workers slept */
	ssize_t rc_read;
	uint64_t hogs_after;
	pthread_t watcher;
	int watcher_rc;
};

static int idle_pipe[2];

/* The thread of this process named @name, or 0. */
static pid_t find_thread(const char *name)
{
	char path[300], comm[32];
	pid_t found = 0;
	struct dirent *d;
	DIR *dir = opendir("/proc/self/task");

	while (dir && !found && (d = readdir(dir))) {
		FILE *f;

		snprintf(path, sizeof(path), "/proc/self/task/%s/comm", d->d_name);
		f = fopen(path, "r");
		if (!f)
			continue;
		if (fgets(comm, sizeof(comm), f) && strncmp(comm, name, strlen(name)) == 0 &&
		    comm[strlen(name)] == '\n')
			found = (pid_t)atoi(d->d_name);
		fclose(f);
	}
	if (dir)
		closedir(dir);
	return found;
}

/* Thread @tid's voluntary context switches so far, or -1. */
static long voluntary_switches(pid_t tid)
{
	char path[64], line[128];
	long n = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/task/%d/status", (int)tid);
	f = fopen(path, "r");
	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "voluntary_ctxt_switches: %ld", &n) == 1)
			break;
	if (f)
		fclose(f);
	return n;
}

/* Outside the runtime: let it go idle, count the monitor's wake-ups meanwhile, end it. */
static void *idle_watcher(void *arg)
{
	struct idle_result *r = arg;
	struct timespec settle = { 0, 20 * MSEC }, idle = { 0, IDLE_MS * MSEC };
	long before;

	/*
	 * The workers spin a little, then sleep; the monitor's next sample
	 * finds them asleep.  Wait until its count of switches has stood
	 * still for a settle period (at most 100 of them: on a loaded host
	 * the workers may take long to get there); a monitor that never
	 * parks never stands still, and is then measured all the same.
	 */
	r->monitor = find_thread("rf-monitor");
	before = r->monitor ? voluntary_switches(r->monitor) : -1;
	for (int i = 0; i < 100 && before >= 0; i++) {
		long then = before;

		nanosleep(&settle, NULL);
		before = voluntary_switches(r->monitor);
		if (before == then)
			break;
	}
	nanosleep(&idle, NULL);
	if (before >= 0)
		r->woke_idle = voluntary_switches(r->monitor) - before;
	if (write(idle_pipe[1], "x", 1) != 1)
		r->woke_idle = -1;
	return NULL;
}

static void *idle_main(void *arg)
{
	struct idle_result *r = arg;
	char c;

	r->watcher_rc = pthread_create(&r->watcher, NULL, idle_watcher, r);
	if (r->watcher_rc)
		return NULL;
	/* every worker sleeps in the kernel until the watcher writes */
	r->rc_read = rf_read(idle_pipe[0], &c, 1, -1, RF_NO_DEADLINE);
	/* and the monitor is back with them: a hog is reported */
	burn_cpu(3 * 20 * MSEC);
	r->hogs_after = my_stats().hogs;
	return NULL;
}

/*
 * The watchdog's monitor samples the workers every hog_ns / 4; with every
 * worker asleep there is nothing to sample, and it sleeps until one wakes.
 */
static void test_idle_monitor(void)
{
	struct rf_runtime_opts opts = { .workers = 2, .hog_ns = 20 * MSEC,
					.flags = RF_RT_NO_PREEMPT };
	struct idle_result r = { .woke_idle = -1, .rc_read = -1 };
	int rc;

	if (!ok(pipe(idle_pipe) == 0, "idle: pipe()"))
		return;
	rc = run_main(&opts, idle_main, &r, NULL, NULL);
	if (!r.watcher_rc)
		pthread_join(r.watcher, NULL);
	close(idle_pipe[0]);
	close(idle_pipe[1]);
	is_int(rc, 0, "idle: the run ends");
	is_int(r.rc_read, 1, "idle: every worker slept until a thread outside wrote to a pipe");
	if (!r.monitor) {
		tap_skip(1, "no thread named rf-monitor in /proc/self/task");
	} else {
		/* sampling every hog_ns / 4 = 5 ms, it would wake some 60 times */
		ok(r.woke_idle >= 0 && r.woke_idle <= 1,
		   "idle: the monitor woke %ld times in %d ms while every worker slept (at most 1)",
		   r.woke_idle, IDLE_MS);
	}
	ok(r.hogs_after >= 1, "idle: then a hog is reported all the same (%llu)",
	   (unsigned long long)r.hogs_after);
}

int main(void)
{
	/* the rescue, which is all a runtime without preemption does */
	struct rf_runtime_opts opts = { .workers = 2, .hog_ns = 20 * MSEC,
					.flags = RF_RT_NO_PREEMPT };
	struct rf_stats st;
	char out[1024];
	int rc;

	test_watchdog(60);
	ring_or_skip_all();

	rc = run_capturing(&opts, &st, out, sizeof(out));
	is_int(rc, 0, "2 workers: the run with a hog ends");
	is_int((int)st.hogs, 1, "the watchdog counted the hog once");
	ok(strstr(out, "\"the-hog\"") && strstr(out, "on worker 0") && strstr(out, " ms "),
	   "it reported the fiber's name, its worker and how long (%s)", out);
	is_int(ticker_first_worker, 0, "the ticker first parked on the hog's worker");
	ok(ticks_during[1] > 0, "the fiber queued behind it ran on worker 1 meanwhile (%d ticks)",
	   ticks_during[1]);
	is_int(ticks_during[0], 0, "and not on the hog's worker");

	opts.workers = 1;
	rc = run_capturing(&opts, &st, out, sizeof(out));
	is_int(rc, 0, "1 worker: the run ends");
	is_int((int)st.hogs, 1, "the hog is reported with one worker too");
	is_int(ticks_during[0] + ticks_during[1], 0,
	       "without preemption nobody else can run meanwhile");
	is_int((int)st.preemptions, 0, "and nothing is preempted");

	/* tests/runtime/preempt.c has the rest: this is the same hog, preempted */
	opts.flags = 0;
	rc = run_capturing(&opts, &st, out, sizeof(out));
	is_int(rc, 0, "1 worker, preemption on: the run ends");
	if (!(st.features & RF_FEAT_PREEMPT)) {
		tap_skip(3, "no preemption in this build (ThreadSanitizer, or static libc)");
	} else {
		ok(st.hogs >= 1, "the hog is reported (%llu times: once per run of hog_ns without a "
		   "switch)", (unsigned long long)st.hogs);
		ok(st.preemptions > 0, "it was preempted (%llu times)",
		   (unsigned long long)st.preemptions);
		ok(ticks_during[0] > 0, "and the ticker ran on its worker meanwhile (%d ticks)",
		   ticks_during[0]);
	}
	opts.flags = RF_RT_NO_PREEMPT;

	opts.workers = 2;
	opts.hog_ns = -1;
	rc = run_capturing(&opts, &st, out, sizeof(out));
	is_int(rc, 0, "no watchdog: the run ends");
	is_int((int)st.hogs, 0, "nothing reported");
	is_str(out, "", "nothing printed");

	test_preempted_is_not_a_hog();
	test_idle_monitor();
	return done_testing();
}
