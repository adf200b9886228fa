/* SPDX-License-Identifier: MIT */
/*
 * watch.c - block notification: RFWAKE_IOC_WATCH and RFWAKE_IOC_UNWATCH.
 *
 * A watched thread that blocks in the kernel makes its seq word odd and,
 * when its armed word is set, wakes the standby waiter it named; when it
 * runs again, seq is even.  The checks: a thread blocked reading an empty
 * pipe wakes the standby (whose WAIT has a deadline, so a module that never
 * wakes fails instead of hanging) while seq is odd; disarmed, it wakes
 * nobody and seq still moves; a thread that is only preempted (pinned to
 * one CPU with a thread that computes too) wakes nobody and seq stays; the
 * errors; a watched thread that exits, before or after its domain is
 * closed, leaves no reference behind (the module's refcnt) and nothing in
 * the kernel log (the VM checks it); a closed domain's watch wakes nobody.
 *
 * `watch --bench [N]` measures instead of testing (TAP diagnostics only):
 * the time from a watched thread's blocking read() to the standby's WAIT
 * returning (N blocks; the two threads on one CPU, then on two; beside it,
 * a baseline: a WAKE ioctl instead of the block), and the cost of watching
 * (nothing armed) on a futex ping-pong between two threads on one CPU,
 * watched and unwatched runs interleaved.
 */
#include "rfwake_test.h"

#include <linux/futex.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/resource.h>

/* The standby's WAIT gives up after this: a module that never wakes fails. */
#define NOTIFY_PATIENCE	(5 * SEC)
/* How long a WAIT must stay unwoken to show that nothing woke it. */
#define QUIET		(300 * MSEC)
/* How long the preempted thread computes. */
#define COMPUTE		(500 * MSEC)

static int fd;
static volatile struct rfwake_watch_shared *pages;
static uint32_t standby, worker_id;

static int watch(int dfd, uint32_t watch_id, uint32_t notify_id, uint64_t payload)
{
	struct rfwake_watch w = {
		.watch_id = watch_id, .notify_id = notify_id, .payload = payload,
	};

	return rfw_ioctl(dfd, RFWAKE_IOC_WATCH, &w);
}

static int unwatch(int dfd)
{
	return rfw_ioctl(dfd, RFWAKE_IOC_UNWATCH, NULL);
}

static volatile struct rfwake_watch_shared *map_pages(int dfd)
{
	void *p = mmap(NULL, sizeof(struct rfwake_watch_shared), PROT_READ | PROT_WRITE,
		       MAP_SHARED, dfd, RFWAKE_WATCH_OFFSET);

	return p == MAP_FAILED ? NULL : p;
}

static uint32_t seq_of(volatile struct rfwake_watch_shared *p, uint32_t id)
{
	return __atomic_load_n(&p->seq[id], __ATOMIC_ACQUIRE);
}

/* The module's reference count: one per open domain and one per watch. */
static long module_refcnt(void)
{
	FILE *f = fopen("/sys/module/rfwake/refcnt", "re");
	long v = -1;

	if (!f)
		return -1;
	if (fscanf(f, "%ld", &v) != 1)
		v = -1;
	fclose(f);
	return v;
}

/* Poll until the module's refcnt is @want (watches are freed by a work). */
static long refcnt_settles(long want)
{
	int64_t end = now_ns() + RFW_PATIENCE;
	long got;

	do {
		got = module_refcnt();
		if (got == want)
			break;
		sleep_ns(10 * MSEC);
	} while (now_ns() < end);
	return got;
}

/*
 * A worker: watches itself through @dfd, sets its armed word, then blocks
 * in read(@rfd) until the test writes a byte, records what it saw, and
 * unwatches.
 */
struct worker {
	int dfd;
	volatile struct rfwake_watch_shared *p;
	uint32_t watch_id, notify_id;
	uint64_t payload;
	uint32_t armed;
	int pipe[2];
	pthread_t thread;
	volatile pid_t tid;
	volatile int watched;	/* 1: WATCH done (ret in @watch_ret) */
	int watch_ret;
	uint32_t seq_before;	/* seq after WATCH */
	uint32_t seq_after;	/* seq after the read returned */
	int unwatch_ret;
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	char c;

	w->watch_ret = watch(w->dfd, w->watch_id, w->notify_id, w->payload);
	if (w->p) {
		w->p->armed[w->watch_id] = w->armed;
		w->seq_before = seq_of(w->p, w->watch_id);
	}
	__atomic_store_n(&w->tid, rfw_gettid(), __ATOMIC_RELEASE);
	__atomic_store_n(&w->watched, 1, __ATOMIC_RELEASE);
	if (read(w->pipe[0], &c, 1) != 1)
		w->watch_ret = -EIO;
	if (w->p)
		w->seq_after = seq_of(w->p, w->watch_id);
	if (w->watch_ret == 0)
		w->unwatch_ret = unwatch(w->dfd);
	return NULL;
}

/* Start @w; returns 1 once it is blocked in read(). */
static int worker_start(struct worker *w)
{
	if (pipe2(w->pipe, O_CLOEXEC) != 0 || pthread_create(&w->thread, NULL, worker_main, w)) {
		printf("Bail out! pipe or pthread_create failed\n");
		exit(1);
	}
	while (!__atomic_load_n(&w->watched, __ATOMIC_ACQUIRE))
		sleep_ns(100 * 1000);
	return wait_blocked_in(getpid(), w->tid, SYS_read);
}

static void worker_release(struct worker *w)
{
	if (write(w->pipe[1], "x", 1) != 1)
		printf("Bail out! write to the worker's pipe failed\n");
	pthread_join(w->thread, NULL);
	close(w->pipe[0]);
	close(w->pipe[1]);
}

/* Drop wakes that earlier checks may have left pending on the standby. */
static void drain_standby(void)
{
	while (rfw_poll_wake(fd, standby, NULL, NULL) == 0)
		;
}

static void test_info(void)
{
	struct rfwake_info info;

	is_err(rfw_info(fd, &info), 0, "INFO");
	ok(info.features & RFWAKE_FEAT_WATCH, "INFO reports RFWAKE_FEAT_WATCH (features %#x)",
	   info.features);
}

static void test_armed_block_notifies(void)
{
	struct worker w = {
		.dfd = fd, .p = pages, .watch_id = worker_id, .notify_id = standby,
		.payload = 0x5a, .armed = 1,
	};
	uint64_t payload = 0;
	uint32_t count = 0, seq;
	int blocked, rc;

	drain_standby();
	blocked = worker_start(&w);
	is_err(w.watch_ret, 0, "armed: WATCH");
	rc = rfw_wait_for(fd, standby, NOTIFY_PATIENCE, &payload, &count);
	is_err(rc, 0, "armed: the standby's WAIT is woken when the watched thread blocks");
	is_int(payload, 0x5a, "armed: the wake carries the watch's payload");
	ok(count >= 1, "armed: count %u", count);
	ok(blocked, "armed: the watched thread sleeps in read()");
	seq = seq_of(pages, worker_id);
	ok(seq & 1, "armed: seq is odd while the thread is blocked (%u)", seq);
	ok(seq > w.seq_before, "armed: seq moved from %u to %u", w.seq_before, seq);
	worker_release(&w);
	ok(!(w.seq_after & 1) && w.seq_after > seq,
	   "armed: seq is even once the thread runs again (%u after %u)", w.seq_after, seq);
	is_err(w.unwatch_ret, 0, "armed: UNWATCH");
}

static void test_disarmed_block_is_quiet(void)
{
	struct worker w = {
		.dfd = fd, .p = pages, .watch_id = worker_id, .notify_id = standby,
		.payload = 1, .armed = 0,
	};
	uint32_t seq;
	int blocked;

	drain_standby();
	blocked = worker_start(&w);
	is_err(w.watch_ret, 0, "disarmed: WATCH");
	ok(blocked, "disarmed: the watched thread sleeps in read()");
	is_err(rfw_wait_for(fd, standby, QUIET, NULL, NULL), -ETIMEDOUT,
	       "disarmed: a block wakes nobody");
	seq = seq_of(pages, worker_id);
	ok(seq & 1, "disarmed: seq is odd while the thread is blocked (%u)", seq);
	worker_release(&w);
	ok(!(w.seq_after & 1) && w.seq_after >= w.seq_before + 2,
	   "disarmed: seq moved on: %u -> %u", w.seq_before, w.seq_after);
	is_err(w.unwatch_ret, 0, "disarmed: UNWATCH");
}

/* Preemption only: two threads that never block take turns on one CPU. */
struct spinner {
	int cpu;
	int do_watch;
	pthread_t thread;
	int affinity_ret;
	int watch_ret;
	uint32_t seq_before, seq_after;
	long nivcsw;		/* involuntary switches while computing */
	long nvcsw;		/* voluntary ones (blocks) */
};

static void *spinner_main(void *arg)
{
	struct spinner *s = arg;
	struct rusage before, after;
	cpu_set_t set;
	int64_t end;

	CPU_ZERO(&set);
	CPU_SET(s->cpu, &set);
	/* before WATCH: moving to another CPU blocks (the migration waits) */
	s->affinity_ret = sched_setaffinity(0, sizeof(set), &set) ? -errno : 0;
	if (s->do_watch) {
		s->watch_ret = watch(fd, worker_id, standby, 2);
		pages->armed[worker_id] = 1;
		s->seq_before = seq_of(pages, worker_id);
	}
	getrusage(RUSAGE_THREAD, &before);
	end = now_ns() + COMPUTE;	/* the vDSO: no system call */
	while (now_ns() < end)
		;
	getrusage(RUSAGE_THREAD, &after);
	s->nivcsw = after.ru_nivcsw - before.ru_nivcsw;
	s->nvcsw = after.ru_nvcsw - before.ru_nvcsw;
	if (s->do_watch) {
		s->seq_after = seq_of(pages, worker_id);
		pages->armed[worker_id] = 0;
		unwatch(fd);
	}
	return NULL;
}

static void test_preempted_is_quiet(void)
{
	struct spinner a = { .cpu = 0, .do_watch = 1 }, b = { .cpu = 0 };

	drain_standby();
	if (pthread_create(&b.thread, NULL, spinner_main, &b) ||
	    pthread_create(&a.thread, NULL, spinner_main, &a)) {
		printf("Bail out! pthread_create failed\n");
		exit(1);
	}
	pthread_join(a.thread, NULL);
	pthread_join(b.thread, NULL);
	is_err(a.affinity_ret, 0, "preempted: pinned to CPU 0");
	is_err(b.affinity_ret, 0, "preempted: the other thread too");
	is_err(a.watch_ret, 0, "preempted: WATCH");
	if (a.nivcsw == 0)
		tap_diag("the watched thread was never preempted (%ld voluntary switches)",
			 a.nvcsw);
	ok(a.nivcsw > 0, "preempted: the watched thread was preempted %ld times", a.nivcsw);
	/*
	 * A voluntary switch would be a block (e.g. a page fault waiting):
	 * then seq and the wake are right to move, and this check says so.
	 */
	is_int(a.nvcsw, 0, "preempted: the watched thread never blocked");
	is_int(a.seq_after, a.seq_before, "preempted: seq did not move");
	is_err(rfw_poll_wake(fd, standby, NULL, NULL), -EAGAIN,
	       "preempted: preemption woke nobody");
}

static void *watch_twice_main(void *arg)
{
	int *ret = arg;

	ret[0] = watch(fd, worker_id, standby, 0);
	ret[1] = watch(fd, worker_id + 1, standby, 0);
	ret[2] = unwatch(fd);
	ret[3] = unwatch(fd);
	ret[4] = watch(fd, worker_id, standby, 0);
	ret[5] = unwatch(fd);
	return NULL;
}

/* A thread that holds @worker_id while the main thread tries it too. */
static void *hold_id_main(void *arg)
{
	int *ret = arg;
	struct timespec ts = { 0, 0 };

	ret[0] = watch(fd, worker_id, standby, 0);
	__atomic_store_n(&ret[2], 1, __ATOMIC_RELEASE);
	while (!__atomic_load_n(&ret[3], __ATOMIC_ACQUIRE))
		nanosleep(&ts, NULL);
	ret[1] = unwatch(fd);
	return NULL;
}

static void test_errors(void)
{
	struct rfwake_watch w = { .watch_id = worker_id, .notify_id = standby };
	int twice[6], hold[4] = { 0 };
	uint32_t spare;
	pthread_t t;
	void *p;
	int ro;

	w.flags = 1;
	is_err(rfw_ioctl(fd, RFWAKE_IOC_WATCH, &w), -EINVAL, "WATCH: unknown flags");
	w.flags = 0;
	w.__reserved = 1;
	is_err(rfw_ioctl(fd, RFWAKE_IOC_WATCH, &w), -EINVAL, "WATCH: reserved field set");
	is_err(watch(fd, worker_id, worker_id, 0), -EINVAL, "WATCH: watch_id == notify_id");
	is_err(watch(fd, RFWAKE_MAX_WAITERS, standby, 0), -EINVAL, "WATCH: watch_id out of range");
	is_err(watch(fd, worker_id, UINT32_MAX, 0), -EINVAL, "WATCH: notify_id out of range");
	spare = rfw_register(fd);
	rfw_unregister(fd, spare);
	is_err(watch(fd, worker_id, spare, 0), -ENOENT, "WATCH: notify_id not registered");
	is_err(watch(fd, spare, standby, 0), -ENOENT, "WATCH: watch_id not registered");
	is_err(unwatch(fd), -ENOENT, "UNWATCH: the thread is not watched");

	ro = open(RFW_DEV, O_RDONLY | O_CLOEXEC);
	if (ro >= 0) {
		is_err(watch(ro, worker_id, standby, 0), -EBADF, "WATCH: read-only descriptor");
		is_err(unwatch(ro), -EBADF, "UNWATCH: read-only descriptor");
		close(ro);
	} else {
		tap_skip(2, "cannot open the device read-only");
	}

	p = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, RFWAKE_WATCH_OFFSET);
	ok(p == MAP_FAILED && errno == EINVAL, "mmap: the watch pages are 8192 bytes");
	p = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, RFWAKE_WATCH_OFFSET);
	ok(p == MAP_FAILED && errno == EINVAL, "mmap: the watch pages must be shared");

	/* a second id for watch_twice_main's second WATCH */
	is_int(rfw_register(fd), worker_id + 1, "a waiter after the worker's");
	pthread_create(&t, NULL, watch_twice_main, twice);
	pthread_join(t, NULL);
	is_err(twice[0], 0, "WATCH");
	is_err(twice[1], -EBUSY, "WATCH again (another id): the thread is watched already");
	is_err(twice[2], 0, "UNWATCH");
	is_err(twice[3], -ENOENT, "UNWATCH again");
	is_err(twice[4], 0, "WATCH after UNWATCH");
	is_err(twice[5], 0, "UNWATCH after that");
	rfw_unregister(fd, worker_id + 1);

	pthread_create(&t, NULL, hold_id_main, hold);
	while (!__atomic_load_n(&hold[2], __ATOMIC_ACQUIRE))
		sleep_ns(MSEC);
	is_err(hold[0], 0, "another thread watches the worker's id");
	is_err(watch(fd, worker_id, standby, 0), -EBUSY, "WATCH: the id watches another thread");
	__atomic_store_n(&hold[3], 1, __ATOMIC_RELEASE);
	pthread_join(t, NULL);
	is_err(hold[1], 0, "that thread UNWATCHes");
	is_err(watch(fd, worker_id, standby, 0), 0, "then the id is free");
	is_err(unwatch(fd), 0, "UNWATCH");
}

/* A domain of its own, for the tests that close it. */
struct domain {
	int fd;
	uint32_t standby, id;
	volatile struct rfwake_watch_shared *p;
};

static int domain_open(struct domain *d)
{
	d->fd = rfw_open();
	if (d->fd < 0)
		return d->fd;
	d->standby = rfw_register(d->fd);
	d->id = rfw_register(d->fd);
	d->p = map_pages(d->fd);
	return d->p ? 0 : -errno;
}

static void domain_close(struct domain *d)
{
	munmap((void *)d->p, sizeof(*d->p));
	close(d->fd);
}

static void *exit_watched_main(void *arg)
{
	struct domain *d = arg;
	long ret = watch(d->fd, d->id, d->standby, 1);

	d->p->armed[d->id] = 1;
	return (void *)ret;
}

static void test_exit_watched(void)
{
	long base = module_refcnt(), watched;
	struct domain d;
	pthread_t t;
	void *ret;

	is_err(domain_open(&d), 0, "exit: a second domain");
	pthread_create(&t, NULL, exit_watched_main, &d);
	pthread_join(t, &ret);
	is_err((int)(long)ret, 0, "exit: the thread was watched");
	/* the thread exits watched: its watch is freed by a work */
	watched = refcnt_settles(base + 1);
	is_int(watched, base + 1, "exit: the exited thread's watch is freed (module refcnt)");
	domain_close(&d);
	is_int(refcnt_settles(base), base, "exit: then the domain is closed (module refcnt)");
}

/*
 * A thread whose domain is closed while it is watched: it blocks in read()
 * (domain open: the standby is woken), the test closes the domain, then it
 * sleeps twice more (blocks that must wake nobody) and exits watched.
 */
struct closed_blocker {
	struct domain d;
	int pipe[2];
	volatile pid_t tid;
	int watch_ret;
	long long blocks_base;	/* the blocks counter before the close */
};

static void *closed_blocker_main(void *arg)
{
	struct closed_blocker *c = arg;
	char ch;

	c->watch_ret = watch(c->d.fd, c->d.id, c->d.standby, 1);
	c->d.p->armed[c->d.id] = 1;
	__atomic_store_n(&c->tid, rfw_gettid(), __ATOMIC_RELEASE);
	if (read(c->pipe[0], &ch, 1) != 1)
		c->watch_ret = -EIO;
	/*
	 * Two blocks after the close.  A 1 ms nanosleep need not block: a
	 * vCPU the host keeps off its CPU for longer finds the timer expired
	 * before schedule() (6.12 under TCG once counted one block of two).
	 */
	for (int i = 0; i < 1000 && rfw_counter("blocks") < c->blocks_base + 2; i++)
		sleep_ns(MSEC);
	return NULL;
}

static void test_closed_then_blocks(void)
{
	long base = module_refcnt(), wakes, blocks;
	struct closed_blocker c;
	pthread_t t;
	int rc;

	memset(&c, 0, sizeof(c));
	is_err(domain_open(&c.d), 0, "closed: a second domain");
	if (pipe2(c.pipe, O_CLOEXEC) || pthread_create(&t, NULL, closed_blocker_main, &c)) {
		printf("Bail out! pipe or pthread_create failed\n");
		exit(1);
	}
	rc = rfw_wait_for(c.d.fd, c.d.standby, NOTIFY_PATIENCE, NULL, NULL);
	is_err(rc, 0, "closed: the domain's standby is woken while it is open");
	ok(wait_blocked_in(getpid(), c.tid, SYS_read), "closed: the thread sleeps in read()");
	is_err(c.watch_ret, 0, "closed: WATCH");
	wakes = rfw_counter("wakes");
	blocks = rfw_counter("blocks");
	c.blocks_base = blocks;
	domain_close(&c.d);
	is_int(module_refcnt(), base + 1, "closed: the live watch still holds the module");
	if (write(c.pipe[1], "x", 1) != 1)
		printf("Bail out! write to the thread's pipe failed\n");
	pthread_join(t, NULL);
	close(c.pipe[0]);
	close(c.pipe[1]);
	ok(rfw_counter("blocks") >= blocks + 2, "closed: the thread blocked after the close (%lld -> %lld)",
	   (long long)blocks, rfw_counter("blocks"));
	is_int(rfw_counter("wakes") - wakes, 0, "closed: a closed domain's watch wakes nobody");
	is_int(refcnt_settles(base), base,
	       "closed: the thread exited watched: watch and domain freed (module refcnt)");
}

/*
 * UNWATCH through another domain ends a closed domain's watch (an exec
 * that closed it, say), and the thread can be watched again.
 */
struct elsewhere {
	struct domain d;
	volatile int step;	/* 1: watched; 2: the test closed the domain */
	int ret[3];
};

static void *unwatch_elsewhere_main(void *arg)
{
	struct elsewhere *e = arg;

	e->ret[0] = watch(e->d.fd, e->d.id, e->d.standby, 1);
	__atomic_store_n(&e->step, 1, __ATOMIC_RELEASE);
	while (__atomic_load_n(&e->step, __ATOMIC_ACQUIRE) != 2)
		sleep_ns(MSEC);
	e->ret[1] = unwatch(fd);
	e->ret[2] = watch(fd, worker_id, standby, 0);
	unwatch(fd);
	return NULL;
}

static void test_unwatch_elsewhere(void)
{
	long base = module_refcnt();
	struct elsewhere e;
	pthread_t t;

	memset(&e, 0, sizeof(e));
	is_err(domain_open(&e.d), 0, "elsewhere: a second domain");
	pthread_create(&t, NULL, unwatch_elsewhere_main, &e);
	while (__atomic_load_n(&e.step, __ATOMIC_ACQUIRE) != 1)
		sleep_ns(MSEC);
	domain_close(&e.d);
	__atomic_store_n(&e.step, 2, __ATOMIC_RELEASE);
	pthread_join(t, NULL);
	is_err(e.ret[0], 0, "elsewhere: WATCH");
	is_err(e.ret[1], 0, "elsewhere: UNWATCH through another domain ends a closed domain's watch");
	is_err(e.ret[2], 0, "elsewhere: then WATCH works");
	is_int(refcnt_settles(base), base, "elsewhere: the closed domain is freed");
}

/* ----------------------------------------------------------------- bench */

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

static int64_t pct(int64_t *v, int n, int p)
{
	qsort(v, n, sizeof(*v), cmp_i64);
	return v[(n - 1) * p / 100];
}

/* Pin the calling thread to @cpu; 0 or -errno. */
static int pin(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return sched_setaffinity(0, sizeof(set), &set) ? -errno : 0;
}

struct lat_worker {
	int cpu;
	int explicit;		/* baseline: WAKE the standby, then block unwatched */
	int pipe[2];
	int rounds;
	volatile int64_t blocked_at;	/* CLOCK_MONOTONIC just before read() */
	int ret;
};

static void *lat_main(void *arg)
{
	struct lat_worker *l = arg;
	char c;
	int i;

	l->ret = pin(l->cpu);
	if (l->ret == 0 && !l->explicit)
		l->ret = watch(fd, worker_id, standby, 1);
	pages->armed[worker_id] = 1;
	for (i = 0; i < l->rounds && l->ret == 0; i++) {
		__atomic_store_n(&l->blocked_at, now_ns(), __ATOMIC_RELEASE);
		if (l->explicit)
			rfw_wake(fd, standby, 1);
		if (read(l->pipe[0], &c, 1) != 1)
			l->ret = -EIO;
	}
	pages->armed[worker_id] = 0;
	if (!l->explicit)
		unwatch(fd);
	return NULL;
}

/* The standby (this thread) on CPU 0, the watched worker on @cpu. */
static void bench_latency(int rounds, int cpu, int explicit)
{
	struct lat_worker l = { .rounds = rounds, .cpu = cpu, .explicit = explicit };
	int64_t *lat = calloc(rounds, sizeof(*lat));
	pthread_t t;
	int i, n = 0;

	if (!lat || pipe2(l.pipe, O_CLOEXEC))
		return;
	drain_standby();
	pin(0);
	pthread_create(&t, NULL, lat_main, &l);
	for (i = 0; i < rounds; i++) {
		if (rfw_wait_for(fd, standby, NOTIFY_PATIENCE, NULL, NULL) != 0)
			break;
		lat[n++] = now_ns() - __atomic_load_n(&l.blocked_at, __ATOMIC_ACQUIRE);
		/* let the worker sleep for good before releasing it */
		if (write(l.pipe[1], "x", 1) != 1)
			break;
	}
	pthread_join(t, NULL);
	if (n)
		tap_diag("%s -> standby's WAIT returns, %s CPU: %d, median %lld us, p10 %lld us, p90 %lld us",
			 explicit ? "WAKE ioctl (baseline)" : "block", cpu ? "another" : "the same", n, (long long)pct(lat, n, 50) / 1000, (long long)pct(lat, n, 10) / 1000,
			 (long long)pct(lat, n, 90) / 1000);
	close(l.pipe[0]);
	close(l.pipe[1]);
	free(lat);
}

/* futex ping-pong: two threads hand a turn back and forth. */
struct pingpong {
	volatile uint32_t turn;
	int rounds;
	int do_watch;
};

static struct pingpong pp;
static uint32_t pp_ids[2];

static void pp_play(int me)
{
	int i;

	for (i = 0; i < pp.rounds; i++) {
		uint32_t t;

		while ((t = __atomic_load_n(&pp.turn, __ATOMIC_ACQUIRE)) != (uint32_t)me)
			syscall(SYS_futex, &pp.turn, FUTEX_WAIT_PRIVATE, t, NULL, NULL, 0);
		__atomic_store_n(&pp.turn, !me, __ATOMIC_RELEASE);
		syscall(SYS_futex, &pp.turn, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
	}
}

static void *pp_main(void *arg)
{
	int me = (int)(long)arg;

	/* one CPU: switches, no idle CPU to wake (slow and erratic under TCG) */
	pin(0);
	if (pp.do_watch && watch(fd, pp_ids[me], standby, 0) != 0)
		return NULL;
	pp_play(me);
	if (pp.do_watch)
		unwatch(fd);
	return NULL;
}

static int64_t pingpong_run(int rounds, int do_watch)
{
	pthread_t t[2];
	int64_t start;

	pp.turn = 0;
	pp.rounds = rounds;
	pp.do_watch = do_watch;
	start = now_ns();
	pthread_create(&t[0], NULL, pp_main, (void *)0L);
	pthread_create(&t[1], NULL, pp_main, (void *)1L);
	pthread_join(t[0], NULL);
	pthread_join(t[1], NULL);
	return (now_ns() - start) / rounds;
}

static void bench_cost(int rounds, int runs)
{
	int64_t *plain = calloc(runs, sizeof(int64_t)), *watched = calloc(runs, sizeof(int64_t));
	long long blocks = rfw_counter("blocks");
	int i;

	pp_ids[0] = rfw_register(fd);
	pp_ids[1] = rfw_register(fd);
	for (i = 0; i < runs; i++) {
		plain[i] = pingpong_run(rounds, 0);
		watched[i] = pingpong_run(rounds, 1);
	}
	tap_diag("futex ping-pong, ns per round trip, %d runs of %d each, interleaved:", runs,
		 rounds);
	tap_diag("  not watched: median %lld, min %lld, max %lld", (long long)pct(plain, runs, 50),
		 (long long)pct(plain, runs, 0), (long long)pct(plain, runs, 100));
	tap_diag("  watched, nothing armed: median %lld, min %lld, max %lld",
		 (long long)pct(watched, runs, 50), (long long)pct(watched, runs, 0),
		 (long long)pct(watched, runs, 100));
	tap_diag("  blocks counted meanwhile: %lld", rfw_counter("blocks") - blocks);
	free(plain);
	free(watched);
}

int main(int argc, char **argv)
{
	struct rfwake_info info;

	setvbuf(stdout, NULL, _IOLBF, 0);
	fd = rfw_open_or_skip();
	test_watchdog(argc > 1 ? 600 : 120);
	standby = rfw_register(fd);
	worker_id = rfw_register(fd);
	if (rfw_info(fd, &info) == 0 && !(info.features & RFWAKE_FEAT_WATCH) &&
	    !rfw_required()) {
		tap_skip_all("the module has no block notification (RFWAKE_FEAT_WATCH)");
		return 0;
	}
	pages = map_pages(fd);
	if (!pages) {
		/* the checks below need the pages: a module without them fails */
		printf("Bail out! mmap of the watch pages: %s\n", strerror(errno));
		return 1;
	}

	if (argc > 1 && strcmp(argv[1], "--bench") == 0) {
		int n = argc > 2 ? atoi(argv[2]) : 200;

		bench_latency(n, 0, 0);
		bench_latency(n, 0, 1);
		bench_latency(n, 1, 0);
		bench_latency(n, 1, 1);
		bench_cost(2000, 15);
		tap_plan(0);
		return 0;
	}

	test_info();
	test_armed_block_notifies();
	test_disarmed_block_is_quiet();
	test_preempted_is_quiet();
	test_errors();
	test_exit_watched();
	test_closed_then_blocks();
	test_unwatch_elsewhere();

	tap_plan(tap__n);
	return tap_done();
}
