/* SPDX-License-Identifier: MIT */
/*
 * badinput.c - every documented refusal: bad runtime settings, bad spawn
 * arguments, bad I/O arguments, calls that need a fiber made outside one,
 * I/O on a runtime without a ring, and the NULLs the header says are
 * harmless.  A refused call must leave nothing behind: no fiber, no
 * request in flight, no descriptor.
 *
 * Checks that need io_uring are skipped where the runtime gets no ring.
 */
#include <fcntl.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include "helpers.h"

#define ND RF_NO_DEADLINE

static int have_ring;

static void *return_arg(void *arg)
{
	return arg;
}

/* ---------------------------------------------------------- runtime opts */

static void test_runtime_create(void)
{
	static const int cpu_zero[] = { 0 }, cpu_negative[] = { -1 }, cpu_huge[] = { 1 << 20 };
	static const struct {
		const char *what;
		struct rf_runtime_opts opts;
	} bad[] = {
		{ "stack_size 1", { .stack_size = 1 } },
		{ "stack_size RF_MIN_STACK_SIZE - 1", { .stack_size = RF_MIN_STACK_SIZE - 1 } },
		{ "stack_size RF_MAX_STACK_SIZE + 1", { .stack_size = RF_MAX_STACK_SIZE + 1 } },
		{ "stack_size 1 TiB", { .stack_size = (size_t)1 << 40 } },
		{ "stack_size SIZE_MAX", { .stack_size = SIZE_MAX } },
		{ "stack_size SIZE_MAX - 100 (overflows page rounding)",
		  { .stack_size = SIZE_MAX - 100 } },
		{ "ring_entries 3", { .ring_entries = 3 } },
		{ "ring_entries 100", { .ring_entries = 100 } },
		{ "ring_entries 65536", { .ring_entries = 65536 } },
		{ "ring_entries 0x80000000", { .ring_entries = 0x80000000u } },
		{ "flags bit 12 (unknown)", { .flags = 1u << 12 } },
		{ "workers RF_MAX_WORKERS + 1", { .workers = RF_MAX_WORKERS + 1 } },
		{ "wake_backend RF_WAKE_NR", { .wake_backend = RF_WAKE_NR } },
		{ "cpus NULL with ncpus 2", { .ncpus = 2 } },
		{ "cpus without ncpus", { .cpus = cpu_zero } },
		{ "a negative CPU", { .cpus = cpu_negative, .ncpus = 1 } },
		{ "CPU 1 << 20", { .cpus = cpu_huge, .ncpus = 1 } },
		{ "blocking_threads 100000", { .blocking_threads = 100000 } },
		{ "flags bit 31 (unknown)", { .flags = 1u << 31 } },
		{ "slice_ns below RF_MIN_SLICE_NS", { .slice_ns = RF_MIN_SLICE_NS - 1 } },
		{ "slice_ns negative", { .slice_ns = -1 } },
		{ "slice_ns above the default hog_ns", { .slice_ns = RF_DEFAULT_HOG_NS + 1 } },
		{ "slice_ns above hog_ns", { .hog_ns = 1000000, .slice_ns = 1000001 } },
	};
	static const struct {
		const char *what;
		struct rf_runtime_opts opts;
	} good[] = {
		{ "all defaults", { 0 } },
		{ "stack_size RF_MIN_STACK_SIZE", { .stack_size = RF_MIN_STACK_SIZE } },
		{ "stack_size RF_MAX_STACK_SIZE", { .stack_size = RF_MAX_STACK_SIZE } },
		{ "ring_entries 16384", { .ring_entries = 16384 } },
		{ "ring_entries 32768 (the largest)", { .ring_entries = 32768 } },
		{ "ring_entries 2", { .ring_entries = 2 } },
		{ "every known flag",
		  { .flags = RF_RT_NO_DEFER_TASKRUN | RF_RT_NO_COOP_TASKRUN |
			     RF_RT_NO_MULTISHOT_ACCEPT | RF_RT_NO_GUARD_MADVISE |
			     RF_RT_NO_OVERFLOW_HANDLER | RF_RT_NO_RING | RF_RT_NO_PIN |
			     RF_RT_SHUTDOWN_ON_SIGNAL | RF_RT_NO_BUF_RING |
			     RF_RT_NO_MULTISHOT_RECV | RF_RT_NO_PREEMPT } },
		{ "one worker", { .workers = 1 } },
		{ "RF_MAX_WORKERS workers", { .workers = RF_MAX_WORKERS } },
		{ "three workers on CPU 0", { .workers = 3, .cpus = cpu_zero, .ncpus = 1 } },
		{ "the eventfd back-end", { .wake_backend = RF_WAKE_EVENTFD } },
		{ "no idle spin, no watchdog", { .idle_spin_ns = -1, .hog_ns = -1 } },
		{ "slice_ns RF_MIN_SLICE_NS", { .slice_ns = RF_MIN_SLICE_NS } },
		{ "slice_ns = hog_ns", { .hog_ns = 1000000, .slice_ns = 1000000 } },
	};
	struct rf_runtime *rt;
	size_t i;
	int rc;

	is_int(rf_runtime_create(NULL, NULL), -EINVAL, "rf_runtime_create(NULL, ...) -> -EINVAL");
	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		rt = NULL;
		rc = rf_runtime_create(&rt, &bad[i].opts);
		is_int(rc, -EINVAL, tn("rf_runtime_create() with %s -> -EINVAL", bad[i].what));
		if (rc == 0)
			rf_runtime_destroy(rt);
	}
	for (i = 0; i < ARRAY_SIZE(good); i++) {
		rt = NULL;
		rc = rf_runtime_create(&rt, &good[i].opts);
		is_int(rc, 0, tn("rf_runtime_create() with %s -> 0", good[i].what));
		if (rc == 0) {
			is_int(rf_runtime_run(rt, return_arg, NULL, NULL), 0,
			       tn("and it runs a fiber"));
			rf_runtime_destroy(rt);
		}
	}
}

static void test_outside_fiber(void)
{
	struct rf_runtime *rt = NULL;
	struct rf_stats st;
	struct rf_acceptor *a = NULL;
	char c;
	int rc;

	is_int(rf_runtime_stats(NULL, &st), -EINVAL,
	       "rf_runtime_stats(NULL, ...) outside a fiber -> -EINVAL");
	is_int(rf_runtime_worker_stats(NULL, 0, &st), -EINVAL,
	       "rf_runtime_worker_stats(NULL, ...) outside a fiber -> -EINVAL");
	is_int(rf_preempt_disable(), -EPERM, "rf_preempt_disable() outside a fiber -> -EPERM");
	is_int(rf_preempt_enable(), -EPERM, "rf_preempt_enable() outside a fiber -> -EPERM");
	rc = rf_runtime_create(&rt, NULL);
	is_int(rc, 0, "rf_runtime_create()");
	if (rc == 0) {
		is_int(rf_runtime_stats(rt, NULL), -EINVAL,
		       "rf_runtime_stats(rt, NULL) -> -EINVAL");
		is_int(rf_runtime_worker_stats(rt, 0, NULL), -EINVAL,
		       "rf_runtime_worker_stats(rt, 0, NULL) -> -EINVAL");
		is_int(rf_runtime_worker_stats(rt, 1u << 20, &st), -EINVAL,
		       "rf_runtime_worker_stats() of a worker that does not exist -> -EINVAL");
		is_int(rf_runtime_run(rt, NULL, NULL, NULL), -EINVAL,
		       "rf_runtime_run() with a NULL fn -> -EINVAL");
		rf_runtime_destroy(rt);
	}
	is_int(rf_runtime_run(NULL, return_arg, NULL, NULL), -EINVAL,
	       "rf_runtime_run(NULL, ...) -> -EINVAL");
	rf_runtime_destroy(NULL);
	ok(1, "rf_runtime_destroy(NULL) is harmless");
	is_str(rf_fiber_name(NULL), "?", "rf_fiber_name(NULL) is \"?\"");

	is_int(rf_sleep(rf_deadline_after(MSEC)), -EPERM, "rf_sleep() outside a fiber -> -EPERM");
	is_int(rf_nop(ND), -EPERM, "rf_nop() outside a fiber -> -EPERM");
	is_int(rf_read(0, &c, 1, -1, ND), -EPERM, "rf_read() outside a fiber -> -EPERM");
	is_int(rf_acceptor_open(&a, 0, 0), -EPERM, "rf_acceptor_open() outside a fiber -> -EPERM");

	ok(rf_deadline_after(-1) == RF_NO_DEADLINE,
	   "rf_deadline_after(negative) is RF_NO_DEADLINE");
	{
		int64_t t0 = rf_now(), d = rf_deadline_after(5 * MSEC), t1 = rf_now();

		ok(t0 > 0 && d >= t0 + 5 * MSEC && d <= t1 + 5 * MSEC,
		   "rf_deadline_after(5 ms) is rf_now() + 5 ms");
	}
}

/* ------------------------------------------------------- inside a fiber */

static void test_spawn_args(void)
{
	struct rf_spawn_attr tiny = { .stack_size = 1 };
	struct rf_spawn_attr small = { .stack_size = RF_MIN_STACK_SIZE - 1 };
	struct rf_spawn_attr over = { .stack_size = RF_MAX_STACK_SIZE + 1 };
	struct rf_spawn_attr huge = { .stack_size = SIZE_MAX };
	struct rf_spawn_attr min = { .stack_size = RF_MIN_STACK_SIZE };
	struct rf_spawn_attr det = { .detached = 1 };
	struct rf_stats st0 = my_stats(), st;
	struct rf_fiber *f = NULL;
	int rc;

	is_int(rf_spawn(&f, NULL, NULL, NULL), -EINVAL, "rf_spawn() with a NULL fn -> -EINVAL");
	is_int(rf_spawn(NULL, return_arg, NULL, NULL), -EINVAL,
	       "rf_spawn() of a joinable fiber with a NULL handle pointer -> -EINVAL");
	is_int(rf_spawn(&f, return_arg, NULL, &tiny), -EINVAL,
	       "rf_spawn() with stack_size 1 -> -EINVAL");
	is_int(rf_spawn(&f, return_arg, NULL, &small), -EINVAL,
	       "rf_spawn() with stack_size RF_MIN_STACK_SIZE - 1 -> -EINVAL");
	is_int(rf_spawn(&f, return_arg, NULL, &over), -EINVAL,
	       "rf_spawn() with stack_size RF_MAX_STACK_SIZE + 1 -> -EINVAL");
	is_int(rf_spawn(&f, return_arg, NULL, &huge), -EINVAL,
	       "rf_spawn() with stack_size SIZE_MAX -> -EINVAL");
	st = my_stats();
	is_int(st.fibers, st0.fibers, "the refused spawns left no fiber");
	is_int(st.stacks_mapped, st0.stacks_mapped, "and no stack");

	rc = rf_spawn(&f, return_arg, (void *)3, &min);
	is_int(rc, 0, "rf_spawn() with stack_size RF_MIN_STACK_SIZE -> 0");
	if (rc == 0)
		is_int(rf_join(f, NULL, ND), 0, "join it");
	is_int(rf_spawn(NULL, return_arg, NULL, &det), 0,
	       "rf_spawn() of a detached fiber with a NULL handle pointer -> 0");
	rf_yield();

	is_int(rf_join(NULL, NULL, ND), -EINVAL, "rf_join(NULL) -> -EINVAL");
	is_int(rf_detach(NULL), -EINVAL, "rf_detach(NULL) -> -EINVAL");
	is_int(rf_join(rf_self(), NULL, ND), -EDEADLK, "rf_join(rf_self()) -> -EDEADLK");
	is_int(rf_acceptor_close(NULL), 0, "rf_acceptor_close(NULL) -> 0");
	is_int(rf_acceptor_open(NULL, 0, 0), -EINVAL, "rf_acceptor_open(NULL, ...) -> -EINVAL");
}

static void test_io_args(void)
{
	struct rf_acceptor *a = NULL;
	struct rf_stats st;
	struct iovec iov = { .iov_base = NULL, .iov_len = 0 };
	char buf[8];
	int fds0, pfd[2], rc;

	is_int(rf_read(-1, buf, sizeof(buf), -1, ND), -EBADF, "rf_read() on fd -1 -> -EBADF");
	is_int(rf_write(-1, buf, sizeof(buf), -1, ND), -EBADF, "rf_write() on fd -1 -> -EBADF");
	is_int(rf_readv(0, &iov, -1, -1, ND), -EINVAL, "rf_readv() with iovcnt -1 -> -EINVAL");
	is_int(rf_writev(1, &iov, -1, -1, ND), -EINVAL, "rf_writev() with iovcnt -1 -> -EINVAL");
	is_int(rf_sleep(ND), -EINVAL, "rf_sleep(RF_NO_DEADLINE) -> -EINVAL");

	/* An acceptor on something that is not a listening socket. */
	if (!ok(pipe2(pfd, O_CLOEXEC) == 0, "pipe2()"))
		return;
	fds0 = count_open_fds();
	rc = rf_acceptor_open(&a, pfd[0], SOCK_CLOEXEC);
	ok(rc < 0, "rf_acceptor_open() on a pipe fails (%d)", rc);
	if (rc == 0)
		rf_acceptor_close(a);
	rc = rf_acceptor_open(&a, -1, SOCK_CLOEXEC);
	ok(rc < 0, "rf_acceptor_open() on fd -1 fails (%d)", rc);
	if (rc == 0)
		rf_acceptor_close(a);
	st = my_stats();
	is_int(st.inflight, 0, "the refused acceptors left nothing in flight");
	is_int(count_open_fds(), fds0, "and no descriptor");
	close(pfd[0]);
	close(pfd[1]);
	st = my_stats();
	is_int(st.inflight, 0, "nothing in flight after the refused I/O calls");
}

static void *fiber_main(void *arg)
{
	test_spawn_args();
	if (have_ring)
		test_io_args();
	else
		tap_skip(11, "the runtime has no io_uring ring here");
	return NULL;
}

/* ------------------------------------------------------ without a ring */

static void *no_ring_main(void *arg)
{
	struct sockaddr_in sa;
	struct rf_acceptor *a = NULL;
	struct rf_stats st = my_stats();
	struct rf_fiber *f;
	socklen_t len = sizeof(sa);
	char c;
	int lfd, pfd[2], rc;

	is_int(st.features & RF_FEAT_RING, 0, "RF_RT_NO_RING: stats.features has no RF_FEAT_RING");
	is_int(rf_nop(ND), -ENOSYS, "RF_RT_NO_RING: rf_nop() -> -ENOSYS");
	is_int(rf_sleep(rf_deadline_after(MSEC)), -ENOSYS, "RF_RT_NO_RING: rf_sleep() -> -ENOSYS");
	if (ok(pipe2(pfd, O_CLOEXEC) == 0, "pipe2()")) {
		is_int(rf_write(pfd[1], "x", 1, -1, ND), -ENOSYS,
		       "RF_RT_NO_RING: rf_write() -> -ENOSYS");
		is_int(rf_read(pfd[0], &c, 1, -1, ND), -ENOSYS,
		       "RF_RT_NO_RING: rf_read() -> -ENOSYS");
		is_int(rf_poll(pfd[0], 1, ND), -ENOSYS, "RF_RT_NO_RING: rf_poll() -> -ENOSYS");
		close(pfd[0]);
		close(pfd[1]);
	}
	is_int(rf_openat(AT_FDCWD, "/", O_RDONLY, 0, ND), -ENOSYS,
	       "RF_RT_NO_RING: rf_openat() -> -ENOSYS");

	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (ok(lfd >= 0 && bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
		   listen(lfd, 8) == 0 && getsockname(lfd, (struct sockaddr *)&sa, &len) == 0,
	       "a listening socket")) {
		rc = rf_acceptor_open(&a, lfd, 0);
		is_int(rc, -ENOSYS, "RF_RT_NO_RING: rf_acceptor_open() -> -ENOSYS");
		if (rc == 0)
			rf_acceptor_close(a);
		is_int(rf_accept(lfd, NULL, NULL, 0, ND), -ENOSYS,
		       "RF_RT_NO_RING: rf_accept() -> -ENOSYS");
	}
	if (lfd >= 0)
		close(lfd);

	/* Scheduling still works. */
	rc = rf_spawn(&f, return_arg, (void *)5, NULL);
	is_int(rc, 0, "RF_RT_NO_RING: rf_spawn() works");
	if (rc == 0)
		is_int(rf_join(f, NULL, ND), 0, "RF_RT_NO_RING: rf_join() works");
	return NULL;
}

int main(void)
{
	struct rf_runtime *rt = NULL;
	struct rf_stats st;
	int rc;

	test_watchdog(60);
	if (rf_runtime_create(&rt, NULL) == 0) {
		if (rf_runtime_stats(rt, &st) == 0)
			have_ring = !!(st.features & RF_FEAT_RING);
		rf_runtime_destroy(rt);
	}
	if (!have_ring)
		tap_diag("no io_uring ring here: the I/O argument checks are skipped");

	test_runtime_create();
	test_outside_fiber();

	rc = run_flags(0, fiber_main, NULL, NULL, &st);
	is_int(rc, 0, "run the in-fiber checks");
	is_int(st.fibers, 0, "no fiber left");
	is_int(st.inflight, 0, "nothing in flight");

	rc = run_flags(RF_RT_NO_RING, no_ring_main, NULL, NULL, NULL);
	is_int(rc, 0, "run the RF_RT_NO_RING checks");
	return done_testing();
}
