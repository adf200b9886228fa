/* SPDX-License-Identifier: MIT */
/*
 * stack.c - fiber stacks: the sizes asked for are usable, memory is
 * committed only when touched, the pool bounds what stays mapped, an
 * overflow is reported with the fiber's name (in both guard modes), and
 * running out of mappings fails cleanly.
 *
 * Whatever may crash runs in a forked child; the parent checks how the
 * child ended and what it wrote to stderr.
 */
#include <fcntl.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include "helpers.h"

#define ND RF_NO_DEADLINE
#define KiB 1024UL
#define MiB (1024 * KiB)

static size_t page_size;

/* ------------------------------------------------------ children and ends */

struct child_end {
	int status;
	char err[8192];
};

/*
 * run_child() - run @fn(@arg) in a forked child whose stderr is captured;
 * the child's exit code is what @fn returns.
 */
static void run_child(int (*fn)(void *), void *arg, struct child_end *ce)
{
	size_t len = 0;
	int p[2];
	pid_t pid;

	memset(ce, 0, sizeof(*ce));
	ce->status = -1;
	fflush(stdout);
	fflush(stderr);
	if (pipe2(p, O_CLOEXEC) != 0)
		return;
	pid = fork();
	if (pid < 0) {
		close(p[0]);
		close(p[1]);
		return;
	}
	if (pid == 0) {
		struct rlimit no_core = { 0, 0 };

		dup2(p[1], STDERR_FILENO);
		setrlimit(RLIMIT_CORE, &no_core);
		alarm(30);
		_exit(fn(arg));
	}
	close(p[1]);
	for (;;) {
		ssize_t n = read(p[0], ce->err + len, sizeof(ce->err) - 1 - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
		if (len == sizeof(ce->err) - 1) {
			char sink[512];

			while (read(p[0], sink, sizeof(sink)) > 0)
				;
			break;
		}
	}
	ce->err[len] = '\0';
	close(p[0]);
	while (waitpid(pid, &ce->status, 0) < 0 && errno == EINTR)
		;
}

static void diag_end(const struct child_end *ce)
{
	if (ce->status == -1)
		tap_diag("  the child could not be started");
	else if (WIFEXITED(ce->status))
		tap_diag("  the child exited with %d", WEXITSTATUS(ce->status));
	else if (WIFSIGNALED(ce->status))
		tap_diag("  the child was killed by signal %d (%s)", WTERMSIG(ce->status),
			 strsignal(WTERMSIG(ce->status)));
	if (ce->err[0])
		tap_diag("  its stderr: %.600s", ce->err);
}

static int exited_zero(const struct child_end *ce)
{
	return ce->status != -1 && WIFEXITED(ce->status) && WEXITSTATUS(ce->status) == 0;
}

/* ------------------------------------------------------ using the stack */

/*
 * use_stack() - recurse until @want bytes below @top are in use, touching
 * every frame; returns how deep it got.  Frames are measured by address,
 * so the depth does not depend on the compiler's frame sizes.
 */
static size_t __attribute__((noinline)) use_stack(const char *top, size_t want)
{
	volatile char pad[1024];
	size_t used;

	pad[0] = 1;
	pad[sizeof(pad) - 1] = 1;
	used = (size_t)(top - (const char *)pad);
	if (used < want)
		used = use_stack(top, want);
	return used + (size_t)pad[0] - 1;
}

static void *deep_fiber(void *arg)
{
	size_t want = (size_t)arg;

	return (void *)use_stack(__builtin_frame_address(0), want);
}

struct deep_case {
	const char *what;
	size_t rt_stack;    /* runtime's stack_size, 0 = default */
	size_t spawn_stack; /* attr.stack_size, 0 = runtime's */
	size_t want;	    /* bytes of stack to use */
	int in_main;	    /* recurse in the main fiber itself */
	const char *name;
	unsigned int flags;
};

static const struct deep_case *cur_case;

static void *deep_main(void *arg)
{
	const struct deep_case *dc = cur_case;
	struct rf_spawn_attr attr = { .stack_size = dc->spawn_stack, .name = dc->name };
	struct rf_fiber *f;
	void *res = NULL;

	if (dc->in_main)
		return deep_fiber((void *)dc->want);
	if (rf_spawn(&f, deep_fiber, (void *)dc->want, &attr) != 0)
		return NULL;
	if (rf_join(f, &res, ND) != 0)
		return NULL;
	return res;
}

/* Child: exit 0 if the fiber used dc->want bytes of stack and returned. */
static int deep_child(void *arg)
{
	const struct deep_case *dc = arg;
	struct rf_runtime_opts opts = { .stack_size = dc->rt_stack, .flags = dc->flags };
	struct rf_runtime *rt = NULL;
	void *res = NULL;

	cur_case = dc;
	if (rf_runtime_create(&rt, &opts) != 0)
		return 2;
	if (rf_runtime_run(rt, deep_main, NULL, &res) != 0)
		return 3;
	rf_runtime_destroy(rt);
	return (size_t)res >= dc->want ? 0 : 4;
}

static void test_stack_sizes(void)
{
	static const struct deep_case cases[] = {
		{ .what = "default 64 KiB stack: 48 KiB usable", .want = 48 * KiB },
		{ .what = "runtime stack_size 256 KiB: 224 KiB usable",
		  .rt_stack = 256 * KiB,
		  .want = 224 * KiB },
		{ .what = "spawn stack_size 256 KiB: 224 KiB usable",
		  .spawn_stack = 256 * KiB,
		  .want = 224 * KiB },
		{ .what = "spawn stack_size 1 MiB on a 256 KiB runtime: 960 KiB usable",
		  .rt_stack = 256 * KiB,
		  .spawn_stack = MiB,
		  .want = 960 * KiB },
		{ .what = "main fiber with runtime stack_size 256 KiB: 224 KiB usable",
		  .rt_stack = 256 * KiB,
		  .want = 224 * KiB,
		  .in_main = 1 },
		{ .what = "stack_size 100000 (rounded up to pages): 90000 bytes usable",
		  .rt_stack = 100000,
		  .want = 90000 },
		{ .what = "mprotect guards, 256 KiB: 224 KiB usable",
		  .rt_stack = 256 * KiB,
		  .want = 224 * KiB,
		  .flags = RF_RT_NO_GUARD_MADVISE },
	};
	struct child_end ce;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		run_child(deep_child, (void *)&cases[i], &ce);
		if (!ok(exited_zero(&ce), "%s", cases[i].what))
			diag_end(&ce);
	}
}

/* ------------------------------------------- memory committed on touch */

struct residency {
	int rc_before, rc_after;
	int resident_before, resident_after;
	int pages;
};

static int count_resident(uintptr_t lo, size_t len, int *rc)
{
	unsigned char vec[256];
	size_t i, n = len / page_size;
	int resident = 0;

	if (n > sizeof(vec)) {
		*rc = -E2BIG;
		return -1;
	}
	*rc = mincore((void *)lo, len, vec) == 0 ? 0 : -errno;
	for (i = 0; *rc == 0 && i < n; i++)
		resident += vec[i] & 1;
	return resident;
}

static void *residency_main(void *arg)
{
	struct residency *r = arg;
	uintptr_t top = (uintptr_t)__builtin_frame_address(0) & ~(page_size - 1);
	size_t len = 192 * KiB;

	/* Below the current frame's page: 192 KiB of a fresh 256 KiB stack. */
	r->pages = (int)(len / page_size);
	r->resident_before = count_resident(top - len, len, &r->rc_before);
	use_stack(__builtin_frame_address(0), 128 * KiB);
	r->resident_after = count_resident(top - len, len, &r->rc_after);
	return NULL;
}

static void test_residency(void)
{
	struct rf_runtime_opts opts = { .stack_size = 256 * KiB };
	struct residency r = { 0 };
	int rc;

	rc = run_main(&opts, residency_main, &r, NULL, NULL);
	is_int(rc, 0, "run a fiber with a 256 KiB stack that probes it with mincore(2)");
	is_int(r.rc_before, 0, "mincore(2) of the stack below the frame works");
	ok(r.resident_before >= 0 && r.resident_before <= 8,
	   "an untouched stack is not committed: %d of %d pages resident", r.resident_before,
	   r.pages);
	is_int(r.rc_after, 0, "mincore(2) after using 128 KiB of stack");
	ok(r.resident_after >= 30, "touching the stack commits it: %d of %d pages resident",
	   r.resident_after, r.pages);
}

/* ------------------------------------------------------------------ pool */

static void *return_arg(void *arg)
{
	return arg;
}

struct pool_result {
	int errors;
	uint64_t max_mapped;
	struct rf_stats end;
};

static void *sequential_main(void *arg)
{
	struct pool_result *pr = arg;
	struct rf_spawn_attr big = { .stack_size = 256 * KiB };
	int i;

	for (i = 0; i < 10000; i++) {
		struct rf_fiber *f;
		struct rf_stats st;
		void *res = NULL;

		if (rf_spawn(&f, return_arg, (void *)(intptr_t)i, i % 10 == 9 ? &big : NULL) != 0) {
			pr->errors++;
			continue;
		}
		st = my_stats();
		if (st.stacks_mapped > pr->max_mapped)
			pr->max_mapped = st.stacks_mapped;
		if (rf_join(f, &res, ND) != 0 || res != (void *)(intptr_t)i)
			pr->errors++;
	}
	pr->end = my_stats();
	return NULL;
}

static void *concurrent_main(void *arg)
{
	struct pool_result *pr = arg;
	struct rf_fiber *f[300];
	int i, n = 0;

	for (i = 0; i < 300; i++) {
		if (rf_spawn(&f[n], return_arg, (void *)(intptr_t)i, NULL) != 0) {
			pr->errors++;
			continue;
		}
		n++;
	}
	pr->max_mapped = my_stats().stacks_mapped;
	for (i = 0; i < n; i++)
		if (rf_join(f[i], NULL, ND) != 0)
			pr->errors++;
	pr->end = my_stats();
	return NULL;
}

/*
 * Run @fn as the main fiber with @opts and a zeroed @pr: a check named
 * @name that the run returned 0, one that every spawn and join worked.
 */
static void run_pool(const struct rf_runtime_opts *opts, rf_fn fn, struct pool_result *pr,
		     const char *name)
{
	int rc;

	memset(pr, 0, sizeof(*pr));
	rc = run_main(opts, fn, pr, NULL, NULL);
	is_int(rc, 0, name);
	is_int(pr->errors, 0, "every spawn and join worked");
}

static void test_pool(void)
{
	/*
	 * One worker: the pool is per worker, and with two a stolen fiber's
	 * stack would return to the other worker's pool, so the sums checked
	 * below could reach twice the limit.
	 */
	struct rf_runtime_opts opts = { .workers = 1 };
	struct pool_result pr;

	run_pool(&opts, sequential_main, &pr, "spawn and join 10,000 fibers one after another");
	ok(pr.max_mapped >= 2 && pr.max_mapped <= 4,
	   "stacks are reused: at most %" PRIu64 " mapped at once", pr.max_mapped);
	ok(pr.end.stacks_pooled >= 1, "a freed stack waits in the pool (%" PRIu64 ")",
	   pr.end.stacks_pooled);
	is_int(pr.end.stacks_mapped, 1 + pr.end.stacks_pooled,
	       "mapped stacks = main's + pooled ones");

	run_pool(&opts, concurrent_main, &pr, "spawn 300 fibers at once, join them");
	ok(pr.max_mapped >= 301, "301 stacks mapped while they live (%" PRIu64 ")", pr.max_mapped);
	ok(pr.end.stacks_pooled <= 256,
	   "the pool keeps at most 256 stacks by default (%" PRIu64 ")", pr.end.stacks_pooled);
	is_int(pr.end.stacks_mapped, 1 + pr.end.stacks_pooled, "the rest were unmapped");

	opts.stack_pool = 4;
	run_pool(&opts, concurrent_main, &pr, "the same with stack_pool 4");
	ok(pr.end.stacks_pooled <= 4, "the pool keeps at most 4 stacks (%" PRIu64 ")",
	   pr.end.stacks_pooled);
	is_int(pr.end.stacks_mapped, 1 + pr.end.stacks_pooled, "the rest were unmapped");
}

/* -------------------------------------------------------------- overflow */

static volatile int recursion_limit; /* 0: none; keeps the compiler honest */

static int __attribute__((noinline)) recurse_forever(int depth)
{
	volatile char pad[256];

	pad[0] = (char)depth;
	if (recursion_limit && depth > recursion_limit)
		return 0;
	return recurse_forever(depth + 1) + pad[0];
}

static void *overflow_fiber(void *arg)
{
	return (void *)(intptr_t)recurse_forever(0);
}

struct overflow_case {
	const char *what;
	unsigned int flags;
	const char *name; /* spawn a fiber of this name; NULL: main overflows */
	size_t rt_stack;
	size_t spawn_stack;
	size_t use; /* 0: recurse forever; else use_stack() this much */
	int want_signal;
	const char *want_name; /* must be in stderr */
	int on_thread;	       /* run the runtime on a second thread */
	int null_write;	       /* not an overflow: a write through NULL */
};

static const struct overflow_case *cur_overflow;

static void *null_write_fiber(void *arg)
{
	*(volatile int *)arg = 1;
	return NULL;
}

static void *overflow_main(void *arg)
{
	const struct overflow_case *oc = cur_overflow;
	struct rf_spawn_attr attr = { .name = oc->name, .stack_size = oc->spawn_stack };
	struct rf_fiber *f;

	if (!oc->name)
		return overflow_fiber(NULL);
	if (oc->null_write) {
		if (rf_spawn(&f, null_write_fiber, NULL, &attr) != 0)
			return NULL;
	} else {
		rf_fn fn = oc->use ? deep_fiber : overflow_fiber;

		if (rf_spawn(&f, fn, (void *)oc->use, &attr) != 0)
			return NULL;
	}
	rf_join(f, NULL, ND);
	return NULL;
}

static void *overflow_thread(void *arg)
{
	const struct overflow_case *oc = arg;
	struct rf_runtime_opts opts = { .flags = oc->flags, .stack_size = oc->rt_stack };
	struct rf_runtime *rt = NULL;

	if (rf_runtime_create(&rt, &opts) != 0)
		return (void *)2;
	rf_runtime_run(rt, overflow_main, NULL, NULL);
	rf_runtime_destroy(rt);
	return NULL; /* survived: the overflow was not caught */
}

static int overflow_child(void *arg)
{
	const struct overflow_case *oc = arg;
	pthread_t th;
	void *res = NULL;

	cur_overflow = oc;
	if (!oc->on_thread)
		return (int)(intptr_t)overflow_thread(arg);
	if (pthread_create(&th, NULL, overflow_thread, arg) != 0)
		return 5;
	pthread_join(th, &res);
	return (int)(intptr_t)res;
}

static void test_overflow(void)
{
	static const struct overflow_case cases[] = {
		{ .what = "default guards",
		  .name = "deep-recursion",
		  .want_signal = SIGABRT,
		  .want_name = "deep-recursion" },
		{ .what = "mprotect guards",
		  .flags = RF_RT_NO_GUARD_MADVISE,
		  .name = "deep-recursion",
		  .want_signal = SIGABRT,
		  .want_name = "deep-recursion" },
		{ .what = "the main fiber", .want_signal = SIGABRT, .want_name = "main" },
		{ .what = "a 64 KiB spawn stack on a 1 MiB runtime, 128 KiB used",
		  .name = "small-stack",
		  .rt_stack = MiB,
		  .spawn_stack = 64 * KiB,
		  .use = 128 * KiB,
		  .want_signal = SIGABRT,
		  .want_name = "small-stack" },
		{ .what = "a runtime on a second thread",
		  .name = "deep-recursion",
		  .want_signal = SIGABRT,
		  .want_name = "deep-recursion",
		  .on_thread = 1 },
		{ .what = "no overflow handler",
		  .flags = RF_RT_NO_OVERFLOW_HANDLER,
		  .name = "deep-recursion",
		  .want_signal = SIGSEGV },
		{ .what = "none: a write through NULL is an ordinary SIGSEGV",
		  .name = "deep-recursion",
		  .want_signal = SIGSEGV,
		  .null_write = 1 },
	};
	struct child_end ce;
	size_t i;

	if (test_sanitized()) {
		tap_skip((int)ARRAY_SIZE(cases) * 3,
			 "stack overflow tests overflow a stack on purpose: not under ASan");
		return;
	}
	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		const struct overflow_case *oc = &cases[i];
		int sig;

		run_child(overflow_child, (void *)oc, &ce);
		sig = WIFSIGNALED(ce.status) ? WTERMSIG(ce.status) : 0;
		if (!ok(ce.status != -1 && WIFSIGNALED(ce.status) && sig == oc->want_signal,
			"overflow (%s): the process dies of %s", oc->what,
			strsignal(oc->want_signal)))
			diag_end(&ce);
		if (oc->want_name) {
			if (!ok(strstr(ce.err, "stack overflow") != NULL,
				"overflow (%s): stderr says \"stack overflow\"", oc->what))
				diag_end(&ce);
			if (!ok(strstr(ce.err, oc->want_name) != NULL,
				"overflow (%s): stderr names the fiber \"%s\"", oc->what,
				oc->want_name))
				diag_end(&ce);
		} else {
			if (!ok(strstr(ce.err, "deep-recursion") == NULL &&
				    strstr(ce.err, "stack overflow") == NULL,
				"overflow (%s): no overflow report", oc->what))
				diag_end(&ce);
			ok(WIFSIGNALED(ce.status) && WTERMSIG(ce.status) != SIGABRT,
			   "overflow (%s): not an abort", oc->what);
		}
	}
}

/* ------------------------------------------------------ out of mappings */

#define MAX_SPAWNS 4096

struct exhaustion {
	int done;
	int huge_rc;
	uint64_t huge_fibers_before, huge_fibers_after;
	uint64_t huge_mapped_before, huge_mapped_after;
	int spawned;
	int fail_rc;
	uint64_t fibers_before, fibers_after;
	uint64_t mapped_before, mapped_after;
	int join_errors;
	int again_rc;
};

static struct exhaustion *exh; /* shared with the child */

static long vm_bytes(void)
{
	long pages = 0;
	FILE *f = fopen("/proc/self/statm", "r");

	if (!f)
		return -1;
	if (fscanf(f, "%ld", &pages) != 1)
		pages = -1;
	fclose(f);
	return pages < 0 ? -1 : pages * (long)page_size;
}

static void *exhaust_main(void *arg)
{
	struct rf_fiber **f = arg;
	struct rf_spawn_attr mib = { .stack_size = MiB };
	struct rf_spawn_attr huge = { .stack_size = RF_MAX_STACK_SIZE };
	struct rf_fiber *g;
	struct rf_stats st;
	struct rlimit as;
	long vm = vm_bytes();
	int i, rc = 0;

	if (vm < 0)
		return NULL;
	as.rlim_cur = (rlim_t)vm + 64 * MiB;
	as.rlim_max = RLIM_INFINITY;
	if (setrlimit(RLIMIT_AS, &as) != 0)
		return NULL;

	st = my_stats();
	exh->huge_fibers_before = st.fibers;
	exh->huge_mapped_before = st.stacks_mapped;
	exh->huge_rc = rf_spawn(&g, return_arg, NULL, &huge);
	st = my_stats();
	exh->huge_fibers_after = st.fibers;
	exh->huge_mapped_after = st.stacks_mapped;
	if (exh->huge_rc == 0)
		rf_join(g, NULL, ND);

	for (i = 0; i < MAX_SPAWNS; i++) {
		st = my_stats();
		exh->fibers_before = st.fibers;
		exh->mapped_before = st.stacks_mapped;
		rc = rf_spawn(&f[i], return_arg, (void *)(intptr_t)i, &mib);
		if (rc)
			break;
	}
	st = my_stats();
	exh->fibers_after = st.fibers;
	exh->mapped_after = st.stacks_mapped;
	exh->spawned = i;
	exh->fail_rc = rc;

	for (i = 0; i < exh->spawned; i++) {
		void *res = NULL;

		if (rf_join(f[i], &res, ND) != 0 || res != (void *)(intptr_t)i)
			exh->join_errors++;
	}
	/* The joined fibers' memory is free again: spawning works again. */
	exh->again_rc = rf_spawn(&g, return_arg, NULL, NULL);
	if (exh->again_rc == 0)
		rf_join(g, NULL, ND);
	exh->done = 1;
	return NULL;
}

static int exhaust_child(void *arg)
{
	struct rf_fiber **f = calloc(MAX_SPAWNS, sizeof(*f));
	struct rf_runtime *rt = NULL;

	if (!f || rf_runtime_create(&rt, NULL) != 0)
		return 2;
	rf_runtime_run(rt, exhaust_main, f, NULL);
	rf_runtime_destroy(rt);
	return exh->done ? 0 : 3;
}

static void test_exhaustion(void)
{
	struct child_end ce;

	if (test_sanitized()) {
		tap_skip(10, "RLIMIT_AS means nothing next to ASan's shadow memory");
		return;
	}
	exh = mmap(NULL, sizeof(*exh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (exh == MAP_FAILED) {
		ok(0, "mmap a shared page");
		return;
	}
	memset(exh, 0, sizeof(*exh));
	run_child(exhaust_child, NULL, &ce);
	if (!ok(exited_zero(&ce), "a child limited by RLIMIT_AS spawns until rf_spawn() fails"))
		diag_end(&ce);
	ok(exh->huge_rc == -ENOMEM || exh->huge_rc == -EAGAIN,
	   "a RF_MAX_STACK_SIZE (1 GiB) stack over the limit -> -ENOMEM or -EAGAIN (%d)",
	   exh->huge_rc);
	ok(exh->huge_fibers_after == exh->huge_fibers_before &&
	       exh->huge_mapped_after == exh->huge_mapped_before,
	   "the failed spawn left stats.fibers and stats.stacks_mapped alone");
	ok(exh->spawned > 0 && exh->spawned < MAX_SPAWNS,
	   "some 1 MiB fibers were spawned before the limit (%d)", exh->spawned);
	ok(exh->fail_rc == -ENOMEM || exh->fail_rc == -EAGAIN,
	   "then rf_spawn() -> -ENOMEM or -EAGAIN (%d)", exh->fail_rc);
	is_int(exh->fibers_after, exh->fibers_before, "the failed spawn left stats.fibers alone");
	is_int(exh->mapped_after, exh->mapped_before,
	       "the failed spawn left stats.stacks_mapped alone");
	is_int(exh->join_errors, 0, "every fiber spawned before the failure joins with its result");
	is_int(exh->again_rc, 0, "after the joins, rf_spawn() works again");
	ok(exh->done, "the child's main fiber got to its end");
	munmap(exh, sizeof(*exh));
}

int main(void)
{
	struct rf_runtime *rt = NULL;
	struct rf_stats st;

	page_size = (size_t)sysconf(_SC_PAGESIZE);
	test_watchdog(120);
	if (rf_runtime_create(&rt, NULL) == 0 && rf_runtime_stats(rt, &st) == 0)
		tap_diag("features 0x%x: guard pages by %s", st.features,
			 st.features & RF_FEAT_GUARD_MADVISE ? "MADV_GUARD_INSTALL" : "mprotect()");
	rf_runtime_destroy(rt);

	test_stack_sizes();
	test_residency();
	test_pool();
	test_overflow();
	test_exhaustion();
	return done_testing();
}
