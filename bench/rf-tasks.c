/* SPDX-License-Identifier: MIT */
/*
 * rf-tasks - the seeds' "Key Differences" table, measured here: OS threads
 * (pthreads, default attributes) against ringfiber fibers, one figure per
 * line: `name value unit [(note)]`.
 *
 *   rf-tasks [--json] [--quick] [--tasks N] [--max-threads N] [--max-fibers N]
 *
 * Nothing is a constant: every value comes from this run, and a figure that
 * cannot be measured prints `name n/a (why)` (null in --json, the reason in
 * its "notes" object).  Timed figures are the best of several trials (the
 * least disturbed run on a noisy machine).  Fibers run on one worker.
 *
 * Memory per task: N tasks (--tasks, default 10,000; 2,000 with --quick)
 * are made and left blocked (threads on a futex, fibers in rf_event_wait);
 * every component is the growth divided by N, the median of 3 calm runs
 * out of 10 at most (the system-wide counters also move with other
 * processes: a run is calm when the system's task count moved by exactly
 * our own tasks; with no calm run, kstack, slab and total are n/a).
 *   <m>_mem_rss_bytes         the process's resident memory (statm)
 *   <m>_mem_kstack_bytes      /proc/meminfo KernelStack: each thread's
 *                             kernel stack (system-wide)
 *   <m>_mem_pagetables_bytes  VmPTE of /proc/self/status: this process's
 *                             page tables (what /proc/meminfo PageTables
 *                             counts, without the other processes)
 *   <m>_mem_slab_bytes        /proc/meminfo SUnreclaim: task_struct and the
 *                             other kernel objects of a thread (system-wide)
 *   <m>_mem_total_bytes       rss + kstack + pagetables + slab: user memory
 *                             and the kernel's own, per task
 *   <m>_mem_vsize_bytes       address space reserved (VmSize): the stack
 *                             size a task could grow to, not memory used
 * <m> is `thread`, `fiber` (RF_DEFAULT_STACK_SIZE stacks) or
 * `fiber_minstack` (RF_MIN_STACK_SIZE stacks).
 *   mem_ratio                 thread_mem_total_bytes / fiber_mem_total_bytes
 *
 * Creation: N tasks that return at once are made and joined, at most 1,000
 * alive at a time, for both models (so both pay for fresh stacks beyond
 * their caches: glibc's 40 MiB stack cache, the runtime's 256-stack pool).
 *   thread_create_ns, fiber_create_ns, fiber_minstack_create_ns  per task
 *   create_ratio              thread_create_ns / fiber_create_ns
 *   thread_create_reuse_ns, fiber_create_reuse_ns  the same with one task
 *                             alive at a time: the stack comes from the cache
 *   create_reuse_ratio        thread_create_reuse_ns / fiber_create_reuse_ns
 *
 * Switch: one direction of a hand-off between two tasks on one CPU.
 *   thread_switch_ns          two threads pinned to one CPU ping-pong
 *                             through futexes: round trip / 2
 *   fiber_switch_ns           two fibers rf_yield to each other: per yield
 *   switch_ratio              thread_switch_ns / fiber_switch_ns
 *
 * How many can exist: tasks that block are made until creation fails, a cap
 * (--max-threads, default 100,000; --max-fibers, default 1,000,000 or
 * 100,000 with --quick), a time budget (10 s, 3 s with --quick) or a memory
 * budget (a quarter of what MemAvailable, or the memory cgroup, leaves) is
 * reached (fibers: a cap the measured fiber_mem_total_bytes says would not
 * fit is lowered first, and the note says so).  The note says which, with
 * the limits that apply (threads-max,
 * pid_max, RLIMIT_NPROC, vm.max_map_count).  Threads stop short of the
 * system-wide and per-user task limits (2,048 kept free) so that the
 * machine's other processes can still fork; vm.max_map_count is this
 * process's own and is reached when it comes first.  Everything is joined
 * before the next figure.
 *   thread_max, thread64k_max  tasks (default stacks; 64 KiB stacks)
 *   thread_max_ms, thread64k_max_ms  time to make them
 *   fiber_max                  fibers parked on one rf_event
 *   fiber_max_rss_bytes        the process's RSS with them all parked
 *   fiber_max_ms               time to spawn them and see them all parked
 *   max_ratio                  fiber_max / thread_max
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "bench-common.h"
#include "ringfiber.h"

#define CREATE_TRIALS 3
#define SWITCH_TRIALS 5
#define CREATE_BATCH 1000	/* most tasks alive at once while timing creation */
#define CHECK_EVERY 256		/* tasks between budget checks while counting */
#define THREAD_HEADROOM 2048	/* task slots left free for everyone else */
#define SMALL_THREAD_STACK (64 * 1024)

struct figure {
	char name[40];
	double value;
	const char *unit;
	char *note;		/* n/a: why; otherwise a remark, or NULL */
	bool na;
};

static struct figure figures[64];
static int nfigures;

static struct figure *add(const char *name, double value, const char *unit)
{
	struct figure *f = &figures[nfigures++];

	*f = (struct figure){ .value = value, .unit = unit };
	snprintf(f->name, sizeof(f->name), "%s", name);
	return f;
}

/* A remark on @f, printf-style; lost (not fatal) without memory. */
static void note(struct figure *f, const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		s = NULL;
	va_end(ap);
	free(f->note);
	f->note = s;
}

static struct figure *add_na(const char *name, const char *unit, const char *why)
{
	struct figure *f = add(name, 0, unit);

	f->na = true;
	note(f, "%s", why);
	return f;
}

/* @a / @b, n/a when either is missing (or @b is not positive). */
static void add_ratio(const char *name, const struct figure *a, const struct figure *b)
{
	if (a->na || b->na)
		note(add_na(name, "x", ""), "%s is n/a", a->na ? a->name : b->name);
	else if (b->value <= 0)
		note(add_na(name, "x", ""), "%s is not positive", b->name);
	else
		add(name, a->value / b->value, "x");
}

/* --------------------------------------------------------- /proc and /sys */
/*
 * Read with open/read into the caller's buffer: no malloc, no new mapping,
 * so this works while vm.max_map_count is exhausted.  Returns bytes read or -1.
 */
static ssize_t read_text(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n, got = 0;

	if (fd < 0)
		return -1;
	while (got < (ssize_t)size - 1 && (n = read(fd, buf + got, size - 1 - got)) > 0)
		got += n;
	close(fd);
	buf[got] = '\0';
	return got;
}

static long read_long(const char *path)
{
	char buf[64];

	if (read_text(path, buf, sizeof(buf)) <= 0)
		return -1;
	return strtol(buf, NULL, 10);
}

/* A `Key:   123 kB` line of /proc/meminfo, in bytes; -1 if absent. */
static long meminfo(const char *key)
{
	static char buf[8192];
	size_t len = strlen(key);
	char *p = buf;

	if (read_text("/proc/meminfo", buf, sizeof(buf)) <= 0)
		return -1;
	while (p && *p) {
		if (!strncmp(p, key, len) && p[len] == ':')
			return strtol(p + len + 1, NULL, 10) * 1024;
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	return -1;
}

struct mem_snap {
	long rss, vsize, pagetables;	/* this process */
	long kstack, slab;		/* system-wide */
	long tasks;			/* on the system: who else moved them */
};

static long system_tasks(void);

static int mem_snap(struct mem_snap *m)
{
	long page = sysconf(_SC_PAGESIZE), size, resident;
	char buf[4096];
	char *pte;

	if (read_text("/proc/self/statm", buf, sizeof(buf)) <= 0 ||
	    sscanf(buf, "%ld %ld", &size, &resident) != 2)
		return -1;
	m->rss = resident * page;
	m->vsize = size * page;
	if (read_text("/proc/self/status", buf, sizeof(buf)) <= 0 ||
	    !(pte = strstr(buf, "\nVmPTE:")))
		return -1;
	m->pagetables = strtol(pte + 7, NULL, 10) * 1024;
	m->kstack = meminfo("KernelStack");
	m->slab = meminfo("SUnreclaim");
	m->tasks = system_tasks();
	return m->kstack < 0 || m->slab < 0 ? -1 : 0;
}

/* Lines of /proc/self/maps: this process's mappings. */
static long map_count(void)
{
	char buf[65536];
	long lines = 0;
	int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -1;
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		for (ssize_t i = 0; i < n; i++)
			lines += buf[i] == '\n';
	close(fd);
	return lines;
}

/* Tasks (threads) on the whole system: the 4th field of /proc/loadavg. */
static long system_tasks(void)
{
	char buf[128];
	char *slash;

	if (read_text("/proc/loadavg", buf, sizeof(buf)) <= 0 || !(slash = strchr(buf, '/')))
		return -1;
	return strtol(slash + 1, NULL, 10);
}

/* Threads of every process whose real uid is ours: what RLIMIT_NPROC counts. */
static long user_tasks(void)
{
	DIR *d = opendir("/proc");
	struct dirent *de;
	uid_t me = getuid();
	long total = 0;

	if (!d)
		return -1;
	while ((de = readdir(d))) {
		char path[288], buf[4096];
		char *uid, *thr;

		if (de->d_name[0] < '0' || de->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/status", de->d_name);
		if (read_text(path, buf, sizeof(buf)) <= 0)
			continue;	/* gone meanwhile */
		uid = strstr(buf, "\nUid:");
		thr = strstr(buf, "\nThreads:");
		if (uid && thr && (uid_t)strtoul(uid + 5, NULL, 10) == me)
			total += strtol(thr + 9, NULL, 10);
	}
	closedir(d);
	return total;
}

/*
 * Bytes this process may still use: what MemAvailable says, or less when its
 * memory cgroup (v2 memory.max, v1 memory.limit_in_bytes) leaves less.
 */
static long mem_room(void)
{
	char buf[4096], path[4200];
	long room = meminfo("MemAvailable");
	char *line = buf;

	if (read_text("/proc/self/cgroup", buf, sizeof(buf)) <= 0)
		return room;
	while (line && *line) {
		char *nl = strchr(line, '\n'), *rel = strrchr(line, ':');
		const char *v2 = !strncmp(line, "0::", 3) ? "" : NULL;
		long limit = -1, usage = -1;

		if (nl)
			*nl = '\0';
		if (rel && v2) {
			snprintf(path, sizeof(path), "/sys/fs/cgroup%s/memory.max", rel + 1);
			limit = read_long(path);	/* "max" reads as 0: ignored below */
			snprintf(path, sizeof(path), "/sys/fs/cgroup%s/memory.current", rel + 1);
			usage = read_long(path);
		} else if (rel && strstr(line, ":memory:")) {
			snprintf(path, sizeof(path), "/sys/fs/cgroup/memory%s/memory.limit_in_bytes",
				 rel + 1);
			limit = read_long(path);
			snprintf(path, sizeof(path), "/sys/fs/cgroup/memory%s/memory.usage_in_bytes",
				 rel + 1);
			usage = read_long(path);
		}
		if (limit > 0 && usage >= 0 && limit - usage < room)
			room = limit > usage ? limit - usage : 0;
		line = nl ? nl + 1 : NULL;
	}
	return room;
}

/* ---------------------------------------------------------------- threads */
/*
 * A herd of threads blocked on one futex word (the gate) until released:
 * the seeds' server with one OS thread per waiting client.
 */
static uint32_t herd_gate;
static long herd_started;

static void *herd_member(void *arg)
{
	__atomic_add_fetch(&herd_started, 1, __ATOMIC_RELAXED);
	while (!__atomic_load_n(&herd_gate, __ATOMIC_ACQUIRE))
		futex(&herd_gate, FUTEX_WAIT_PRIVATE, 0);
	return NULL;
}

/* Wait (up to 30 s) until @n herd members run; false if they never did. */
static bool herd_wait_started(long n)
{
	double give_up = now_ns() + 30e9;
	struct timespec ms = { 0, 1000000 };

	while (__atomic_load_n(&herd_started, __ATOMIC_RELAXED) < n) {
		if (now_ns() > give_up)
			return false;
		nanosleep(&ms, NULL);
	}
	return true;
}

static void herd_release(pthread_t *th, long n)
{
	__atomic_store_n(&herd_gate, 1, __ATOMIC_RELEASE);
	futex(&herd_gate, FUTEX_WAKE_PRIVATE, INT_MAX);
	for (long i = 0; i < n; i++)
		pthread_join(th[i], NULL);
	herd_gate = 0;
	herd_started = 0;
}

/* Growth from @a to @b per task, one figure per component. */
static const char *const mem_parts[6] = { "rss", "kstack", "pagetables", "slab", "total",
					   "vsize" };

/*
 * The system-wide counters move with every other process too.  A run is
 * calm when the system's task count changed by exactly the tasks we made:
 * the figures are the median of MEM_RUNS calm runs, out of MEM_TRIES at most.
 */
#define MEM_RUNS 3
#define MEM_TRIES 10

struct mem_runs {
	double v[MEM_TRIES][6];		/* per task, in mem_parts order */
	bool calm[MEM_TRIES];
	int runs, calm_runs;
};

/* Adds the run from @a to @b with @n tasks (@own of them threads). */
static void mem_runs_add(struct mem_runs *r, const struct mem_snap *a, const struct mem_snap *b,
			 long n, long own)
{
	double *v = r->v[r->runs];

	v[0] = (double)(b->rss - a->rss) / n;
	v[1] = (double)(b->kstack - a->kstack) / n;
	v[2] = (double)(b->pagetables - a->pagetables) / n;
	v[3] = (double)(b->slab - a->slab) / n;
	v[4] = v[0] + v[1] + v[2] + v[3];
	v[5] = (double)(b->vsize - a->vsize) / n;
	r->calm[r->runs] = a->tasks >= 0 && b->tasks - a->tasks == own;
	r->calm_runs += r->calm[r->runs];
	r->runs++;
}

static bool mem_runs_done(const struct mem_runs *r)
{
	return r->calm_runs >= MEM_RUNS || r->runs == MEM_TRIES;
}

static double median(double *x, int k)
{
	for (int i = 1; i < k; i++)
		for (int j = i; j > 0 && x[j - 1] > x[j]; j--) {
			double t = x[j];

			x[j] = x[j - 1];
			x[j - 1] = t;
		}
	return k % 2 ? x[k / 2] : (x[k / 2 - 1] + x[k / 2]) / 2;
}

/*
 * One figure per component: the median of the calm runs.  Without one, the
 * system-wide components (and so the total) are n/a: what other processes
 * did swamps ours; this process's own counters still count.
 */
static void add_mem(const char *model, const struct mem_runs *r, long n, struct figure **total)
{
	bool any_calm = r->calm_runs > 0;
	double med[6];
	char name[40];
	int k = 0;

	for (int i = 0; i < 6; i++) {
		double x[MEM_TRIES];

		k = 0;
		for (int t = 0; t < r->runs; t++)
			if (r->calm[t] || !any_calm)
				x[k++] = r->v[t][i];
		med[i] = median(x, k);
	}
	/* the total of the figures shown, not the median of the runs' totals */
	med[4] = med[0] + med[1] + med[2] + med[3];
	for (int i = 0; i < 6; i++) {
		bool system_wide = i == 1 || i == 3 || i == 4;
		struct figure *f;

		snprintf(name, sizeof(name), "%s_mem_%s_bytes", model, mem_parts[i]);
		if (system_wide && !any_calm) {
			f = add_na(name, "B", "");
			note(f, "other processes made or ended tasks during all %d runs: the "
			     "system-wide counters measured them, not us", r->runs);
		} else {
			f = add(name, med[i], "B");
		}
		if (i == 4)
			*total = f;
		if (i == 0)
			note(f, "%ld tasks, median of %d runs", n, k);
		if ((i == 1 || i == 3) && any_calm)
			note(f, "system-wide counter");
	}
}

static void add_mem_na(const char *model, const char *why, struct figure **total)
{
	char name[40];

	for (int i = 0; i < 6; i++) {
		struct figure *f;

		snprintf(name, sizeof(name), "%s_mem_%s_bytes", model, mem_parts[i]);
		f = add_na(name, "B", why);
		if (i == 4)
			*total = f;
	}
}

static long thread_headroom(char *which, size_t size);

static struct figure *thread_mem(long n)
{
	pthread_t *th = calloc(n, sizeof(*th));
	struct mem_runs runs = { .runs = 0 };
	struct figure *total;
	char why[256], which[128];

	if (thread_headroom(which, sizeof(which)) < n) {
		free(th);
		snprintf(why, sizeof(why), "%ld threads would leave fewer than %d task slots "
			 "free under %s", n, THREAD_HEADROOM, which);
		add_mem_na("thread", why, &total);
		return total;
	}
	if (!th) {
		add_mem_na("thread", "no memory for the thread handles", &total);
		return total;
	}
	memset(th, 0, n * sizeof(*th));	/* fault the array in before measuring */
	while (!mem_runs_done(&runs)) {
		struct mem_snap a, b;
		long made = 0;
		int err = 0;

		if (mem_snap(&a)) {
			free(th);
			add_mem_na("thread", "/proc/self/statm, status or /proc/meminfo unreadable",
				   &total);
			return total;
		}
		for (; made < n; made++)
			if ((err = pthread_create(&th[made], NULL, herd_member, NULL)))
				break;
		if (!herd_wait_started(made) && !err)
			err = ETIMEDOUT;
		if (!err && mem_snap(&b))
			err = EIO;
		herd_release(th, made);
		if (err) {
			free(th);
			snprintf(why, sizeof(why), "%ld of %ld threads: %s", made, n,
				 strerror(err));
			add_mem_na("thread", why, &total);
			return total;
		}
		mem_runs_add(&runs, &a, &b, n, n);
	}
	free(th);
	add_mem("thread", &runs, n, &total);
	return total;
}

/* ns per pthread_create + pthread_join, @batch (<= CREATE_BATCH) alive at most. */
static struct figure *thread_create(const char *name, long n, long batch_max)
{
	pthread_t th[CREATE_BATCH];
	double ns = 1e30;
	char why[96];

	for (int t = 0; t < CREATE_TRIALS; t++) {
		double t0 = now_ns();

		for (long done = 0; done < n;) {
			long batch = n - done < batch_max ? n - done : batch_max, made;
			int err = 0;

			for (made = 0; made < batch; made++)
				if ((err = pthread_create(&th[made], NULL, empty, NULL)))
					break;
			for (long i = 0; i < made; i++)
				pthread_join(th[i], NULL);
			if (err) {
				snprintf(why, sizeof(why), "pthread_create: %s", strerror(err));
				return add_na(name, "ns", why);
			}
			done += batch;
		}
		ns = best(ns, (now_ns() - t0) / n);
	}
	return add(name, ns, "ns");
}

/* untimed hand-offs before the timed ones: both threads reach their loop */
#define PINGPONG_WARMUP 1000

static struct figure *thread_switch(long rounds)
{
	double ns = 1e30;
	cpu_set_t mask, one;
	char why[96];
	int cpu = -1;

	if (sched_getaffinity(0, sizeof(mask), &mask) == 0)
		for (int c = 0; c < CPU_SETSIZE && cpu < 0; c++)
			if (CPU_ISSET(c, &mask))
				cpu = c;
	if (cpu < 0)
		return add_na("thread_switch_ns", "ns", "no CPU in this process's affinity mask");
	CPU_ZERO(&one);
	CPU_SET(cpu, &one);
	for (int t = 0; t < SWITCH_TRIALS; t++) {
		struct futex_pingpong p = { .n = rounds, .warmup = PINGPONG_WARMUP };
		void *(*side[2])(void *) = { futex_pingpong_a, futex_pingpong_b };
		pthread_t th[2];
		int err = 0, started = 0;

		for (int i = 0; i < 2 && !err; i++) {
			pthread_attr_t attr;

			if ((err = pthread_attr_init(&attr)))
				break;
			err = pthread_attr_setaffinity_np(&attr, sizeof(one), &one);
			if (!err)
				err = pthread_create(&th[i], &attr, side[i], &p);
			pthread_attr_destroy(&attr);
			if (!err)
				started++;
		}
		if (err && started)
			futex_pingpong_b(&p);	/* side a alone would wait forever */
		for (int i = 0; i < started; i++)
			pthread_join(th[i], NULL);
		if (err) {
			snprintf(why, sizeof(why), "two threads pinned to CPU %d: %s", cpu,
				 strerror(err));
			return add_na("thread_switch_ns", "ns", why);
		}
		ns = best(ns, p.ns);
	}
	return add("thread_switch_ns", ns, "ns");
}

/*
 * Why pthread_create said @err with @made threads alive: the limits that
 * apply, the one we are at first.  Read before the herd is released.
 */
static void limit_reason(char *buf, size_t size, int err, long made)
{
	long maps = map_count(), max_maps = read_long("/proc/sys/vm/max_map_count");
	long tmax = read_long("/proc/sys/kernel/threads-max"), sys = system_tasks();
	long pid_max = read_long("/proc/sys/kernel/pid_max");
	struct rlimit nproc = { 0, 0 };
	const char *likely = "memory or a pids cgroup";

	getrlimit(RLIMIT_NPROC, &nproc);
	/* pid allocation skips the first 300 pids once it wraps around */
	if (max_maps > 0 && maps >= max_maps - 16)
		likely = "vm.max_map_count";
	else if (pid_max > 0 && sys >= pid_max - 400)
		likely = "kernel.pid_max";
	else if (tmax > 0 && sys >= tmax - 16)
		likely = "kernel.threads-max";
	else if (geteuid() != 0 && nproc.rlim_cur != RLIM_INFINITY &&
		 user_tasks() >= (long)nproc.rlim_cur - 16)
		likely = "RLIMIT_NPROC";
	snprintf(buf, size, "%s after %ld: likely %s; vm.max_map_count %ld (maps now %ld), "
		 "kernel.pid_max %ld, threads-max %ld (tasks now %ld), RLIMIT_NPROC %ld%s",
		 err == EAGAIN ? "EAGAIN" : strerror(err), made, likely, max_maps, maps, pid_max,
		 tmax, sys, nproc.rlim_cur == RLIM_INFINITY ? -1L : (long)nproc.rlim_cur,
		 geteuid() == 0 ? " (not enforced for root)" : "");
}

/*
 * How many more threads leave THREAD_HEADROOM task slots to everyone else
 * under the system-wide and per-user limits (vm.max_map_count is this
 * process's own: reaching it harms nobody).  @which: the nearest limit,
 * with its value.
 */
static long thread_headroom(char *which, size_t size)
{
	static const char *const sysctl[] = { "/proc/sys/kernel/threads-max",
					      "/proc/sys/kernel/pid_max" };
	long sys = system_tasks(), room = LONG_MAX;
	struct rlimit nproc;

	which[0] = '\0';
	for (int i = 0; i < 2; i++) {
		long limit = read_long(sysctl[i]);

		if (limit > 0 && sys >= 0 && limit - sys - THREAD_HEADROOM < room) {
			room = limit - sys - THREAD_HEADROOM;
			snprintf(which, size, "kernel.%s %ld (%ld tasks on the system when checked)",
				 strrchr(sysctl[i], '/') + 1, limit, sys);
		}
	}
	if (geteuid() != 0 && getrlimit(RLIMIT_NPROC, &nproc) == 0 &&
	    nproc.rlim_cur != RLIM_INFINITY) {
		long users = user_tasks();

		if (users >= 0 && (long)nproc.rlim_cur - users - THREAD_HEADROOM < room) {
			room = (long)nproc.rlim_cur - users - THREAD_HEADROOM;
			snprintf(which, size, "RLIMIT_NPROC %ld (%ld tasks of this user when checked)",
				 (long)nproc.rlim_cur, users);
		}
	}
	return room < 0 ? 0 : room;
}

struct budget {
	double seconds;
	long bytes;	/* growth of rss + kernel memory allowed */
};

static long mem_used(const struct mem_snap *a)
{
	struct mem_snap b;

	if (mem_snap(&b))
		return 0;
	return (b.rss - a->rss) + (b.kstack - a->kstack) + (b.pagetables - a->pagetables) +
	       (b.slab - a->slab);
}

static struct figure *thread_max(const char *name, const char *ms_name, size_t stack, long cap,
		       const struct budget *bud)
{
	char which[128];
	long room = thread_headroom(which, sizeof(which)), made = 0;
	long want = cap < room ? cap : room;
	pthread_t *th = calloc(want ? want : 1, sizeof(*th));
	pthread_attr_t attr, *ap = NULL;
	struct mem_snap a;
	struct figure *f;
	char why[512], limit[480];
	double t0, ms;
	int err = 0;

	if (!th) {
		add_na(ms_name, "ms", "no memory for the thread handles");
		return add_na(name, "tasks", "no memory for the thread handles");
	}
	memset(th, 0, (want ? want : 1) * sizeof(*th));
	if (mem_snap(&a)) {
		free(th);
		add_na(ms_name, "ms", "no memory budget without /proc/self/statm, status, meminfo");
		return add_na(name, "tasks",
			      "no memory budget without /proc/self/statm, status, meminfo");
	}
	if (stack) {
		if ((err = pthread_attr_init(&attr)))
			goto bad_attr;
		ap = &attr;
		if ((err = pthread_attr_setstacksize(&attr, stack)))
			goto bad_attr;
	}
	snprintf(why, sizeof(why), "stopped: cap %ld (--max-threads)", cap);
	if (room < cap)
		snprintf(why, sizeof(why), "stopped: %ld, to leave %d task slots free under %s",
			 want, THREAD_HEADROOM, which);
	t0 = now_ns();
	for (; made < want; made++) {
		if ((err = pthread_create(&th[made], ap, herd_member, NULL))) {
			limit_reason(limit, sizeof(limit), err, made);
			snprintf(why, sizeof(why), "stopped: %s", limit);
			break;
		}
		if (made % CHECK_EVERY == CHECK_EVERY - 1) {
			long used;

			/* other processes (another rf-tasks?) take task slots too */
			if (made + 1 < want && thread_headroom(which, sizeof(which)) == 0) {
				snprintf(why, sizeof(why), "stopped: %ld, to leave %d task slots "
					 "free under %s", made + 1, THREAD_HEADROOM, which);
				made++;
				break;
			}
			if (now_ns() - t0 > bud->seconds * 1e9) {
				snprintf(why, sizeof(why), "stopped: time budget %.0f s",
					 bud->seconds);
				made++;
				break;
			}
			if ((used = mem_used(&a)) > bud->bytes) {
				snprintf(why, sizeof(why), "stopped: memory budget %ld MiB "
					 "(used %ld MiB)", bud->bytes >> 20, used >> 20);
				made++;
				break;
			}
		}
	}
	ms = (now_ns() - t0) / 1e6;
	herd_release(th, made);
	if (ap)
		pthread_attr_destroy(ap);
	free(th);
	f = add(name, made, "tasks");
	note(f, "%s", why);
	add(ms_name, ms, "ms");
	return f;

bad_attr:
	snprintf(why, sizeof(why), "a %zu-byte stack attribute: %s", stack, strerror(err));
	if (ap)
		pthread_attr_destroy(ap);
	free(th);
	add_na(ms_name, "ms", why);
	return add_na(name, "tasks", why);
}

/* ----------------------------------------------------------------- fibers */
struct fiber_job {
	long n;			/* tasks or rounds */
	long batch;		/* most alive at once (creation) */
	size_t stack;		/* 0: the runtime's default */
	const struct budget *bud;
	struct rf_event gate;
	long started;
	/* results */
	struct mem_snap a, b;
	double ns;
	long made;
	int err;
	char why[256];
};

static void *parker(void *arg)
{
	struct fiber_job *j = arg;

	j->started++;	/* one worker: no other thread touches it */
	rf_event_wait(&j->gate, RF_NO_DEADLINE);
	return NULL;
}

/* Spawns up to j->n parked fibers into @f; sets j->made, j->err, j->why. */
static void park_fibers(struct fiber_job *j, struct rf_fiber **f, bool counting)
{
	struct rf_spawn_attr attr = { .name = "parker", .stack_size = j->stack };
	double t0 = now_ns();

	for (j->made = 0; j->made < j->n; j->made++) {
		if ((j->err = rf_spawn(&f[j->made], parker, j, &attr))) {
			snprintf(j->why, sizeof(j->why), "stopped: rf_spawn: %s after %ld "
				 "(vm.max_map_count %ld, maps now %ld)", strerror(-j->err),
				 j->made, read_long("/proc/sys/vm/max_map_count"), map_count());
			break;
		}
		if (j->made % 1024 != 1023)
			continue;
		rf_yield();	/* let them park as we go: spawning them all is no hog */
		if (!counting)
			continue;
		if (now_ns() - t0 > j->bud->seconds * 1e9) {
			snprintf(j->why, sizeof(j->why), "stopped: time budget %.0f s",
				 j->bud->seconds);
			j->made++;
			break;
		}
		if (mem_used(&j->a) > j->bud->bytes) {
			snprintf(j->why, sizeof(j->why), "stopped: memory budget %ld MiB",
				 j->bud->bytes >> 20);
			j->made++;
			break;
		}
	}
	while (j->started < j->made)
		rf_yield();	/* every fiber runs once and parks */
}

static void unpark_fibers(struct fiber_job *j, struct rf_fiber **f)
{
	rf_event_set(&j->gate);
	for (long i = 0; i < j->made; i++) {
		rf_join(f[i], NULL, RF_NO_DEADLINE);
		if (i % 1024 == 1023)
			rf_yield();	/* unmapping stacks takes a while: no hog */
	}
}

/*
 * The handles of @j->n fibers, faulted in, then the memory before any is
 * spawned in @j->a: what fiber_mem_main() and fiber_max_main() start with.
 * Return: the handles, or NULL with @j->err set and @nomem_why or
 * @snap_why in @j->why.
 */
static struct rf_fiber **fiber_handles(struct fiber_job *j, const char *nomem_why,
				       const char *snap_why)
{
	struct rf_fiber **f = calloc(j->n, sizeof(*f));

	if (!f) {
		j->err = -ENOMEM;
		snprintf(j->why, sizeof(j->why), "%s", nomem_why);
		return NULL;
	}
	memset(f, 0, j->n * sizeof(*f));	/* fault the array in before measuring */
	if (mem_snap(&j->a)) {
		j->err = -EIO;
		snprintf(j->why, sizeof(j->why), "%s", snap_why);
		free(f);
		return NULL;
	}
	return f;
}

static void *fiber_mem_main(void *arg)
{
	struct fiber_job *j = arg;
	struct rf_fiber **f = fiber_handles(j, "no memory for the fiber handles",
					    "/proc/self/statm, status or /proc/meminfo unreadable");

	if (!f)
		return NULL;
	park_fibers(j, f, false);
	if (!j->err && mem_snap(&j->b)) {
		j->err = -EIO;
		snprintf(j->why, sizeof(j->why),
			 "/proc/self/statm, status or /proc/meminfo unreadable");
	}
	unpark_fibers(j, f);
	free(f);
	return NULL;
}

static void *fiber_create_main(void *arg)
{
	struct fiber_job *j = arg;
	struct rf_spawn_attr attr = { .stack_size = j->stack };
	struct rf_fiber *f[CREATE_BATCH];

	j->ns = 1e30;
	for (int t = 0; t < CREATE_TRIALS; t++) {
		double t0 = now_ns();

		for (long done = 0; done < j->n;) {
			long batch = j->n - done < j->batch ? j->n - done : j->batch, made;

			/*
			 * The yields keep the watchdog quiet while fresh stacks
			 * are mapped; the fibers they let run stay unjoined, so
			 * their stacks stay taken until the batch is joined.
			 */
			for (made = 0; made < batch; made++) {
				if ((j->err = rf_spawn(&f[made], empty, NULL, &attr)))
					break;
				if (made % 256 == 255)
					rf_yield();
			}
			for (long i = 0; i < made; i++) {
				rf_join(f[i], NULL, RF_NO_DEADLINE);
				if (i % 256 == 255)
					rf_yield();
			}
			if (j->err) {
				snprintf(j->why, sizeof(j->why), "rf_spawn: %s", strerror(-j->err));
				return NULL;
			}
			done += batch;
		}
		j->ns = best(j->ns, (now_ns() - t0) / j->n);
	}
	return NULL;
}

static void *fiber_switch_main(void *arg)
{
	struct fiber_job *j = arg;

	j->ns = 1e30;
	for (int t = 0; t < SWITCH_TRIALS; t++) {
		struct rf_fiber *f[2];
		int spawned = 0;
		double t0 = now_ns();

		for (; spawned < 2; spawned++)
			if ((j->err = rf_spawn(&f[spawned], yielder, &j->n, NULL)))
				break;
		for (int i = 0; i < spawned; i++)
			rf_join(f[i], NULL, RF_NO_DEADLINE);
		if (j->err) {
			snprintf(j->why, sizeof(j->why), "rf_spawn: %s", strerror(-j->err));
			return NULL;
		}
		j->ns = best(j->ns, (now_ns() - t0) / (2.0 * j->n));
	}
	return NULL;
}

static void *fiber_max_main(void *arg)
{
	struct fiber_job *j = arg;
	struct rf_fiber **f;
	char nomem_why[64];
	double t0;

	snprintf(nomem_why, sizeof(nomem_why), "no memory for %ld fiber handles", j->n);
	f = fiber_handles(j, nomem_why,
			  "no memory budget without /proc/self/statm, status, meminfo");
	if (!f)
		return NULL;
	t0 = now_ns();
	park_fibers(j, f, true);
	j->ns = now_ns() - t0;
	if (mem_snap(&j->b))
		j->b.rss = -1;
	unpark_fibers(j, f);
	free(f);
	return NULL;
}

/* Runs @fn as the main fiber of a fresh one-worker runtime. */
static int run_fiber_job(rf_fn fn, struct fiber_job *j)
{
	const struct rf_runtime_opts one = { .workers = 1 };
	struct rf_runtime *rt;
	int ret = rf_runtime_create(&rt, &one);

	rf_event_init(&j->gate);
	j->started = 0;
	j->made = 0;
	j->err = 0;
	j->why[0] = '\0';
	if (ret) {
		snprintf(j->why, sizeof(j->why), "rf_runtime_create: %s", strerror(-ret));
		return ret;
	}
	ret = rf_runtime_run(rt, fn, j, NULL);
	rf_runtime_destroy(rt);
	if (ret && !j->err)
		snprintf(j->why, sizeof(j->why), "rf_runtime_run: %s", strerror(-ret));
	return ret ? ret : j->err;
}

static struct figure *fiber_mem(const char *model, long n, size_t stack)
{
	struct fiber_job j = { .n = n, .stack = stack };
	struct mem_runs runs = { .runs = 0 };
	struct figure *total;

	while (!mem_runs_done(&runs)) {
		if (run_fiber_job(fiber_mem_main, &j)) {
			add_mem_na(model, j.why, &total);
			return total;
		}
		mem_runs_add(&runs, &j.a, &j.b, n, 0);
	}
	add_mem(model, &runs, n, &total);
	return total;
}

static struct figure *fiber_create(const char *name, long n, long batch, size_t stack)
{
	struct fiber_job j = { .n = n, .batch = batch, .stack = stack };

	if (run_fiber_job(fiber_create_main, &j))
		return add_na(name, "ns", j.why);
	return add(name, j.ns, "ns");
}

static struct figure *fiber_switch(long rounds)
{
	struct fiber_job j = { .n = rounds };

	if (run_fiber_job(fiber_switch_main, &j))
		return add_na("fiber_switch_ns", "ns", j.why);
	return add("fiber_switch_ns", j.ns, "ns");
}

/*
 * @per_fiber: the measured fiber_mem_total_bytes (0 if unknown): a cap that
 * would need more than the memory budget is lowered before starting.
 */
static struct figure *fiber_max(long cap, const struct budget *bud, double per_fiber)
{
	struct fiber_job j = { .n = cap, .bud = bud };
	char capped[256] = "";
	struct figure *f;
	int ret;

	if (per_fiber > 0 && cap * per_fiber > bud->bytes) {
		j.n = (long)(bud->bytes / per_fiber);
		snprintf(capped, sizeof(capped), "capped at %ld: %ld x %.0f B (fiber_mem_total_bytes) "
			 "would exceed the memory budget of %ld MiB; ", j.n, cap, per_fiber,
			 bud->bytes >> 20);
	}
	ret = run_fiber_job(fiber_max_main, &j);
	if (ret && !j.made) {
		add_na("fiber_max_rss_bytes", "B", j.why);
		add_na("fiber_max_ms", "ms", j.why);
		return add_na("fiber_max", "tasks", j.why);
	}
	if (!j.why[0])
		snprintf(j.why, sizeof(j.why), "stopped: cap %ld%s", j.n,
			 capped[0] ? "" : " (--max-fibers)");
	f = add("fiber_max", j.made, "tasks");
	note(f, "%s%s", capped, j.why);
	if (j.b.rss < 0)
		add_na("fiber_max_rss_bytes", "B", "/proc/self/statm unreadable");
	else
		note(add("fiber_max_rss_bytes", j.b.rss, "B"), "growth %.0f B per fiber",
		     j.made ? (double)(j.b.rss - j.a.rss) / j.made : 0.0);
	add("fiber_max_ms", j.ns / 1e6, "ms");
	return f;
}

/* ------------------------------------------------------------------ output */
/* Whole numbers (and anything >= 100,000) without a fraction or exponent. */
static const char *format_number(char *buf, size_t size, double v)
{
	if (v < 1e15 && v > -1e15 && (v == (double)(long long)v || v >= 1e5 || v <= -1e5))
		snprintf(buf, size, "%.0f", v);
	else
		snprintf(buf, size, "%.6g", v);
	return buf;
}

static void print_json_string(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			printf("\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			printf("\\u%04x", (unsigned char)*s);
		else
			putchar(*s);
	}
	putchar('"');
}

static void print_json(void)
{
	bool first = true;
	char num[32];

	printf("{");
	for (int i = 0; i < nfigures; i++)
		bench_json_member(i, figures[i].name, figures[i].na ? NULL :
				  format_number(num, sizeof(num), figures[i].value));
	printf("%s\"notes\": {", nfigures ? ", " : "");
	for (int i = 0; i < nfigures; i++) {
		if (!figures[i].note)
			continue;
		printf("%s\"%s\": ", first ? "" : ", ", figures[i].name);
		print_json_string(figures[i].note);
		first = false;
	}
	printf("}}\n");
}

static void print_text(void)
{
	char num[32];
	int width = 0;

	for (int i = 0; i < nfigures; i++)
		if ((int)strlen(figures[i].name) > width)
			width = strlen(figures[i].name);
	for (int i = 0; i < nfigures; i++) {
		const struct figure *f = &figures[i];

		printf("%-*s ", width, f->name);
		if (f->na) {
			printf("%10s (%s)\n", "n/a", f->note ? f->note : "unknown");
			continue;
		}
		printf("%10s %s", format_number(num, sizeof(num), f->value), f->unit);
		if (f->note)
			printf(" (%s)", f->note);
		putchar('\n');
	}
}

/* -h: on stdout, success; a mistake: on stderr, exit status 2. */
static void usage(FILE *to, int status)
{
	fprintf(to, "usage: rf-tasks [--json] [--quick] [--tasks N] [--max-threads N] "
		"[--max-fibers N]\n");
	exit(status);
}

int main(int argc, char **argv)
{
	long tasks = 0, max_threads = 100000, max_fibers = 0, room;
	const struct bench_count counts[] = {
		{ "tasks", 0, 1000000, &tasks },
		{ "max-threads", 0, 10000000, &max_threads },
		{ "max-fibers", 0, 100000000, &max_fibers },
	};
	struct figure *tm, *fm, *tc, *fc, *ts, *fs, *tx, *fx;
	bool json = false, quick = false;
	struct budget bud;

	bench_parse_args(argc, argv, "h", counts, sizeof(counts) / sizeof(counts[0]),
			 &json, &quick, usage);
	if (!tasks)
		tasks = quick ? 2000 : 10000;
	if (!max_fibers)
		max_fibers = quick ? 100000 : 1000000;
	room = mem_room();
	bud.seconds = quick ? 3 : 10;
	bud.bytes = room > 0 ? room / 4 : 1L << 30;

	tm = thread_mem(tasks);
	fm = fiber_mem("fiber", tasks, 0);
	fiber_mem("fiber_minstack", tasks, RF_MIN_STACK_SIZE);
	add_ratio("mem_ratio", tm, fm);

	tc = thread_create("thread_create_ns", tasks, CREATE_BATCH);
	fc = fiber_create("fiber_create_ns", tasks, CREATE_BATCH, 0);
	fiber_create("fiber_minstack_create_ns", tasks, CREATE_BATCH, RF_MIN_STACK_SIZE);
	add_ratio("create_ratio", tc, fc);
	tc = thread_create("thread_create_reuse_ns", tasks, 1);
	fc = fiber_create("fiber_create_reuse_ns", tasks, 1, 0);
	add_ratio("create_reuse_ratio", tc, fc);

	ts = thread_switch(quick ? 20000 : 100000);
	fs = fiber_switch(quick ? 200000 : 1000000);
	add_ratio("switch_ratio", ts, fs);

	tx = thread_max("thread_max", "thread_max_ms", 0, max_threads, &bud);
	thread_max("thread64k_max", "thread64k_max_ms", SMALL_THREAD_STACK, max_threads, &bud);
	fx = fiber_max(max_fibers, &bud, fm->na ? 0 : fm->value);
	add_ratio("max_ratio", fx, tx);	/* fibers per thread: the other way round */

	if (json)
		print_json();
	else
		print_text();
	for (int i = 0; i < nfigures; i++)
		free(figures[i].note);
	return 0;
}
