/* SPDX-License-Identifier: MIT */
/*
 * sched.c - the scheduler seen from outside: FIFO order of spawns and of
 * rf_yield() rounds, what rf_join() and rf_runtime_run() report, names,
 * detached fibers, every rf_join() error, rf_cancel() of fibers parked in a
 * join, calls made outside a fiber, twenty thousand fibers alive at once,
 * and fibers offered for stealing to an idle worker that cannot take them.
 * Deadlock detection is tests/deadlock.c.
 *
 * Only scheduling is used, and every runtime is made with RF_RT_NO_RING,
 * so this program needs no io_uring: it also runs on aarch64 under
 * qemu-user.
 */
#include <pthread.h>
#include <sys/syscall.h>
#include <time.h>

#include "helpers.h"

#define ND RF_NO_DEADLINE
#define MANY_FIBERS 20000

static const struct rt_config configs[] = {
	{ "no ring", RF_RT_NO_RING },
	{ "no ring, mprotect guards", RF_RT_NO_RING | RF_RT_NO_GUARD_MADVISE },
};

/* The event log: fibers append small integers, checks compare sequences. */
static int evlog[128];
static int nev;

static void ev(int e)
{
	if (nev < (int)ARRAY_SIZE(evlog))
		evlog[nev++] = e;
}

static void *log_fiber(void *arg)
{
	ev((int)(intptr_t)arg);
	return NULL;
}

static void *return_arg(void *arg)
{
	return arg;
}

/* Set by a test to let spin_until_released() fibers finish. */
static int released;

static void *spin_until_released(void *arg)
{
	while (!released)
		rf_yield();
	return arg;
}

/* ------------------------------------------------------------- FIFO order */

/*
 * spawn_numbered() - spawn @count fibers of @fn into @f, the i-th with the
 * argument i, stopping at the first failure; *@n says how many were
 * spawned (the caller joins those).  Return: 0 or rf_spawn()'s error.
 */
static int spawn_numbered(struct rf_fiber **f, int count, rf_fn fn, int *n)
{
	int rc = 0;

	for (*n = 0; *n < count; (*n)++) {
		rc = rf_spawn(&f[*n], fn, (void *)(intptr_t)*n, NULL);
		if (rc)
			break;
	}
	return rc;
}

/*
 * Spawned fibers run in spawn order, after the spawner parks; the spawner
 * keeps running first.
 */
static void test_spawn_order(void)
{
	static const int want[] = { 100, 0, 1, 2, 3, 4 };
	struct rf_fiber *f[5];
	int i, n = 0, rc = 0;

	nev = 0;
	rc = spawn_numbered(f, 5, log_fiber, &n);
	is_int(rc, 0, tn("spawn 5 fibers"));
	ev(100);
	for (i = 0; i < n; i++)
		rc |= rf_join(f[i], NULL, ND);
	is_int(rc, 0, tn("join 5 fibers"));
	is_seq(evlog, nev, want, ARRAY_SIZE(want),
	       tn("spawner keeps running, then fibers run in spawn order"));
}

static int yield_rcs;

static void *yield_rounds(void *arg)
{
	int r;

	for (r = 0; r < 3; r++) {
		ev((int)(intptr_t)arg);
		yield_rcs |= rf_yield();
	}
	return NULL;
}

/* rf_yield() lets every other ready fiber run exactly once, in FIFO order. */
static void test_yield_rounds(void)
{
	static const int want[] = {
		100, 0, 1, 2, 100, 0, 1, 2, 100, 0, 1, 2,
	};
	struct rf_stats st0, st1;
	struct rf_fiber *f[3];
	int i, r, n = 0, rc = 0;

	nev = 0;
	yield_rcs = 0;
	st0 = my_stats();
	rc = spawn_numbered(f, 3, yield_rounds, &n);
	is_int(rc, 0, tn("spawn 3 yielding fibers"));
	for (r = 0; r < 3; r++) {
		ev(100);
		yield_rcs |= rf_yield();
	}
	for (i = 0; i < n; i++)
		rc |= rf_join(f[i], NULL, ND);
	is_int(rc, 0, tn("join the yielding fibers"));
	is_int(yield_rcs, 0, tn("rf_yield() returns 0 in a fiber"));
	is_seq(evlog, nev, want, ARRAY_SIZE(want),
	       tn("rf_yield() rounds run every ready fiber once, FIFO"));
	st1 = my_stats();
	ok(st1.switches >= st0.switches + 12, "%s",
	   tn("stats.switches grows with the switches (%" PRIu64 " -> %" PRIu64 ")", st0.switches,
	      st1.switches));
	is_int(rf_yield(), 0, tn("rf_yield() with nobody else ready returns 0"));
}

/* ------------------------------------------------------- results and exit */

static int after_exit_ran;

static void __attribute__((noinline)) exit_from_depth(int depth, void *v)
{
	if (depth == 0)
		rf_exit(v);
	else
		exit_from_depth(depth - 1, v);
	after_exit_ran = 1;
}

static void *exiting_fiber(void *arg)
{
	exit_from_depth(3, arg);
	after_exit_ran = 1;
	return (void *)0xbad;
}

static void test_join_results(void)
{
	struct rf_fiber *f;
	void *res = NULL;
	int rc;

	rc = rf_spawn(&f, return_arg, (void *)0x1234, NULL);
	is_int(rc, 0, tn("spawn a returning fiber"));
	if (rc == 0) {
		is_int(rf_join(f, &res, ND), 0, tn("join it"));
		ok(res == (void *)0x1234, "%s", tn("rf_join() reports the return value (%p)", res));
	}

	after_exit_ran = 0;
	res = NULL;
	rc = rf_spawn(&f, exiting_fiber, (void *)0x4321, NULL);
	is_int(rc, 0, tn("spawn a fiber that calls rf_exit() three calls deep"));
	if (rc == 0) {
		is_int(rf_join(f, &res, ND), 0, tn("join it"));
		ok(res == (void *)0x4321, "%s",
		   tn("rf_join() reports rf_exit()'s value (%p)", res));
		is_int(after_exit_ran, 0, tn("nothing after rf_exit() ran"));
	}

	rc = rf_spawn(&f, return_arg, (void *)0x1, NULL);
	if (rc == 0)
		rc = rf_join(f, NULL, ND);
	is_int(rc, 0, tn("rf_join() with a NULL result pointer"));
}

/* ------------------------------------------------------------------ names */

struct name_probe {
	struct rf_fiber *self;
	char name[64];
};

static void *name_fiber(void *arg)
{
	struct name_probe *p = arg;
	const char *n;

	p->self = rf_self();
	n = rf_fiber_name(rf_self());
	snprintf(p->name, sizeof(p->name), "%s", n ? n : "(null)");
	return NULL;
}

static void test_names(void)
{
	static const char long_name[] = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEF";
	struct name_probe p[4];
	struct rf_spawn_attr attr[4];
	struct rf_fiber *f[4];
	char copied[RF_NAME_MAX];
	char want_long[RF_NAME_MAX];
	int i, rc;

	is_str(rf_fiber_name(rf_self()), "main", tn("the main fiber is named \"main\""));

	snprintf(copied, sizeof(copied), "worker-7");
	memset(attr, 0, sizeof(attr));
	memset(p, 0, sizeof(p));
	attr[0].name = copied;
	attr[1].name = long_name;
	attr[2].name = NULL;
	for (i = 0; i < 4; i++) {
		rc = rf_spawn(&f[i], name_fiber, &p[i], i == 3 ? NULL : &attr[i]);
		if (!ok(rc == 0, "%s", tn("spawn name probe %d", i))) {
			tap_diag("  rf_spawn() returned %d", rc);
			f[i] = NULL;
		}
	}
	/* The name is a copy: changing the caller's string changes nothing. */
	memcpy(copied, "XXXXXXXX", 9);

	if (f[0])
		is_str(rf_fiber_name(f[0]), "worker-7", tn("rf_fiber_name() of a spawned fiber"));
	for (i = 0; i < 4; i++)
		if (f[i])
			rf_join(f[i], NULL, ND);

	is_str(p[0].name, "worker-7", tn("the fiber sees its own name; the name was copied"));
	ok(f[0] && p[0].self == f[0], "%s",
	   tn("rf_self() in a fiber is the handle rf_spawn() gave"));
	memcpy(want_long, long_name, RF_NAME_MAX - 1);
	want_long[RF_NAME_MAX - 1] = '\0';
	is_str(p[1].name, want_long, tn("a long name keeps RF_NAME_MAX - 1 bytes"));
	is_str(p[2].name, "fiber", tn("a NULL name gives \"fiber\""));
	is_str(p[3].name, "fiber", tn("NULL attributes give \"fiber\""));
	ok(rf_self() != NULL && rf_self() != p[0].self, "%s",
	   tn("rf_self() in main is main's own handle"));
}

/* --------------------------------------------------------------- detached */

static int detached_done;

static void *count_and_exit(void *arg)
{
	detached_done++;
	return arg;
}

static void *yield_count_and_exit(void *arg)
{
	rf_yield();
	detached_done++;
	return arg;
}

static void test_detached(void)
{
	struct rf_spawn_attr det = { .detached = 1 };
	struct rf_stats st0, st;
	struct rf_fiber *f;
	int i, rc = 0, spawned = 0;

	detached_done = 0;
	st0 = my_stats();
	for (i = 0; i < 10; i++) {
		rc = rf_spawn(NULL, count_and_exit, NULL, &det);
		if (rc)
			break;
		spawned++;
	}
	is_int(rc, 0, tn("spawn 10 detached fibers with a NULL handle pointer"));
	st = my_stats();
	is_int(st.fibers, st0.fibers + (uint64_t)spawned, tn("stats.fibers counts them"));
	rf_yield();
	is_int(detached_done, spawned, tn("detached fibers ran"));
	st = my_stats();
	is_int(st.fibers, st0.fibers, tn("detached fibers are freed when they exit"));

	/* rf_detach() of a joinable fiber, and what is no longer allowed. */
	detached_done = 0;
	rc = rf_spawn(&f, yield_count_and_exit, NULL, NULL);
	is_int(rc, 0, tn("spawn a joinable fiber"));
	if (rc == 0) {
		is_int(rf_detach(f), 0, tn("rf_detach() a joinable fiber"));
		is_int(rf_detach(f), -EINVAL, tn("rf_detach() twice -> -EINVAL"));
		is_int(rf_join(f, NULL, ND), -EINVAL,
		       tn("rf_join() of a detached fiber -> -EINVAL"));
		for (i = 0; i < 10 && !detached_done; i++)
			rf_yield();
		is_int(detached_done, 1, tn("the rf_detach()ed fiber ran"));
		rf_yield();
		st = my_stats();
		is_int(st.fibers, st0.fibers, tn("and was freed"));
	}

	/* A detached fiber spawned with a handle pointer cannot be joined. */
	released = 0;
	rc = rf_spawn(&f, spin_until_released, NULL, &det);
	is_int(rc, 0, tn("spawn a detached fiber with a handle pointer"));
	if (rc == 0)
		is_int(rf_join(f, NULL, ND), -EINVAL, tn("rf_join() of it -> -EINVAL"));
	released = 1;
	for (i = 0; i < 5; i++)
		rf_yield();
	st = my_stats();
	is_int(st.fibers, st0.fibers, tn("it exited and was freed"));

	/* rf_detach() of a fiber that already exited frees it. */
	rc = rf_spawn(&f, return_arg, NULL, NULL);
	is_int(rc, 0, tn("spawn a fiber that returns at once"));
	if (rc == 0) {
		rf_yield();
		is_int(rf_detach(f), 0, tn("rf_detach() it after it exited"));
		rf_yield();
		st = my_stats();
		is_int(st.fibers, st0.fibers, tn("that frees it"));
	}
}

/* ------------------------------------------------------------ join errors */

struct joiner {
	struct rf_fiber *target;
	int rc;
	int rc2;
	void *res;
	int cancel_self;
	int release_after;
};

static void *joiner_fiber(void *arg)
{
	struct joiner *j = arg;

	if (j->cancel_self)
		j->rc2 = rf_cancel(rf_self());
	j->rc = rf_join(j->target, &j->res, ND);
	if (j->release_after)
		released = 1;
	return (void *)0x77;
}

static void test_join_errors(void)
{
	struct joiner j1 = { 0 }, j2 = { 0 };
	struct rf_fiber *t, *fj1, *fj2;
	int rc;

	is_int(rf_join(rf_self(), NULL, ND), -EDEADLK, tn("rf_join(self) -> -EDEADLK"));
	is_int(rf_join(NULL, NULL, ND), -EINVAL, tn("rf_join(NULL) -> -EINVAL"));

	/*
	 * Second joiner: t spins until released; j1 parks joining t; j2 tries
	 * to join t too and must be refused at once, then releases t.
	 */
	released = 0;
	rc = rf_spawn(&t, spin_until_released, (void *)0x55, NULL);
	j1.target = t;
	j1.rc = j2.rc = 1;
	j2.target = t;
	j2.release_after = 1;
	rc |= rf_spawn(&fj1, joiner_fiber, &j1, NULL);
	rc |= rf_spawn(&fj2, joiner_fiber, &j2, NULL);
	is_int(rc, 0, tn("spawn a target and two joiners"));
	if (rc)
		return;
	is_int(rf_join(fj1, NULL, ND), 0, tn("join the first joiner"));
	is_int(rf_join(fj2, NULL, ND), 0, tn("join the second joiner"));
	is_int(j1.rc, 0, tn("the first joiner's rf_join() succeeds"));
	ok(j1.res == (void *)0x55, "%s", tn("and reports the target's result (%p)", j1.res));
	is_int(j2.rc, -EINVAL, tn("a second joiner of the same fiber -> -EINVAL"));

	/* A fiber somebody is joining cannot be detached. */
	released = 0;
	rc = rf_spawn(&t, spin_until_released, (void *)0x58, NULL);
	j1 = (struct joiner){ .target = t, .rc = 1 };
	if (rc == 0)
		rc = rf_spawn(&fj1, joiner_fiber, &j1, NULL);
	is_int(rc, 0, tn("spawn a target and a joiner"));
	if (rc)
		return;
	rf_yield(); /* the joiner parks in rf_join(t) */
	is_int(rf_detach(t), -EINVAL, tn("rf_detach() of a fiber being joined -> -EINVAL"));
	released = 1;
	is_int(rf_join(fj1, NULL, ND), 0, tn("join the joiner"));
	is_int(j1.rc, 0, tn("its join still succeeds"));
	ok(j1.res == (void *)0x58, "%s", tn("with the result (%p)", j1.res));
}

/* ----------------------------------------------------------- cancellation */

/*
 * spawn_joiner() - spawn @j's fiber into @f to join @target, with j->rc 1
 * until its join returns; check the spawn as @name.  Return: rf_spawn()'s.
 */
static int spawn_joiner(struct rf_fiber **f, struct joiner *j, struct rf_fiber *target,
			const char *name)
{
	int rc;

	j->target = target;
	j->rc = 1;
	rc = rf_spawn(f, joiner_fiber, j, NULL);
	is_int(rc, 0, tn("%s", name));
	return rc;
}

static void test_cancel(void)
{
	struct joiner w = { 0 }, x = { 0 }, y = { 0 };
	struct rf_fiber *t, *fw, *fx, *fy, *z;
	struct rf_stats st0;
	void *res = NULL;
	int rc;

	/* w parks in rf_join(t); main cancels w. */
	released = 0;
	rc = rf_spawn(&t, spin_until_released, (void *)0x56, NULL);
	is_int(rc, 0, tn("spawn a spinning target"));
	if (rc)
		return;
	if (spawn_joiner(&fw, &w, t, "spawn a joiner"))
		return;
	rf_yield(); /* t yields, w parks in rf_join(t) */
	is_int(rf_cancel(fw), 0, tn("rf_cancel() a fiber parked in rf_join()"));
	is_int(rf_join(fw, &res, ND), 0, tn("join the cancelled fiber"));
	ok(res == (void *)0x77, "%s", tn("the cancelled fiber ran to its end (%p)", res));
	is_int(w.rc, -ECANCELED, tn("its parked rf_join() returned -ECANCELED"));

	/* x is cancelled while ready, before it ever ran: only marked. */
	if (spawn_joiner(&fx, &x, t, "spawn another joiner") == 0) {
		is_int(rf_cancel(fx), 0, tn("rf_cancel() a ready fiber"));
		is_int(rf_join(fx, &res, ND), 0, tn("join it"));
		ok(res == (void *)0x77, "%s", tn("a cancelled ready fiber still runs (%p)", res));
		is_int(x.rc, -ECANCELED, tn("its first blocking call returns -ECANCELED"));
	}

	/* y cancels itself, then its blocking call fails at once. */
	y.rc2 = 1;
	y.cancel_self = 1;
	if (spawn_joiner(&fy, &y, t, "spawn a self-cancelling joiner") == 0) {
		is_int(rf_join(fy, NULL, ND), 0, tn("join it"));
		is_int(y.rc2, 0, tn("rf_cancel(rf_self()) -> 0"));
		is_int(y.rc, -ECANCELED, tn("then rf_join() -> -ECANCELED"));
	}

	/* The target was never joined successfully: it is still joinable. */
	released = 1;
	res = NULL;
	is_int(rf_join(t, &res, ND), 0, tn("the target is still joinable after cancelled joins"));
	ok(res == (void *)0x56, "%s", tn("and reports its result (%p)", res));

	/* Cancel of a fiber that exited (not yet joined) -> -EINVAL. */
	st0 = my_stats();
	rc = rf_spawn(&z, return_arg, (void *)0x57, NULL);
	is_int(rc, 0, tn("spawn a fiber that returns at once"));
	if (rc == 0) {
		rf_yield();
		is_int(my_stats().fibers, st0.fibers + 1,
		       tn("an exited, unjoined fiber still counts in stats.fibers"));
		is_int(rf_cancel(z), -EINVAL, tn("rf_cancel() of an exited fiber -> -EINVAL"));
		res = NULL;
		is_int(rf_join(z, &res, ND), 0, tn("it can still be joined"));
		ok(res == (void *)0x57, "%s", tn("with its result (%p)", res));
		is_int(my_stats().fibers, st0.fibers, tn("joining it frees it"));
	}
}

/*
 * Sticky cancellation: a fiber cancelled while parked sees -ECANCELED
 * from that call and from every later blocking call.
 */
static struct rf_fiber *sticky_target;
static int sticky_rc1, sticky_rc2, sticky_rc3;

static void *sticky_fiber(void *arg)
{
	sticky_rc1 = rf_join(sticky_target, NULL, ND);
	sticky_rc2 = rf_join(sticky_target, NULL, ND);
	sticky_rc3 = rf_join(sticky_target, NULL, ND);
	return NULL;
}

static void test_cancel_sticky(void)
{
	struct rf_fiber *s;
	int rc;

	released = 0;
	sticky_rc1 = sticky_rc2 = sticky_rc3 = 1;
	rc = rf_spawn(&sticky_target, spin_until_released, NULL, NULL);
	rc |= rf_spawn(&s, sticky_fiber, NULL, NULL);
	is_int(rc, 0, tn("spawn a target and a joiner"));
	if (rc)
		return;
	rf_yield();
	is_int(rf_cancel(s), 0, tn("cancel the parked joiner"));
	is_int(rf_join(s, NULL, ND), 0, tn("join the joiner"));
	is_int(sticky_rc1, -ECANCELED, tn("parked rf_join() -> -ECANCELED"));
	is_int(sticky_rc2, -ECANCELED, tn("cancel is sticky: the next rf_join() -> -ECANCELED"));
	is_int(sticky_rc3, -ECANCELED, tn("and the one after"));
	released = 1;
	is_int(rf_join(sticky_target, NULL, ND), 0, tn("join the target"));
}

/* ---------------------------------------------------------- many fibers */

static void *times_three(void *arg)
{
	rf_yield();
	return (void *)((intptr_t)arg * 3);
}

static void test_many_fibers(void)
{
	struct rf_fiber **f = calloc(MANY_FIBERS, sizeof(*f));
	long long sum = 0, want = 0;
	int i, n = 0, rc = 0, join_errors = 0;
	struct rf_stats st0, st;

	if (!ok(f != NULL, "%s", tn("calloc")))
		return;
	st0 = my_stats();
	rc = spawn_numbered(f, MANY_FIBERS, times_three, &n);
	is_int(n, MANY_FIBERS, tn("spawn %d fibers", MANY_FIBERS));
	if (rc)
		tap_diag("  rf_spawn() #%d returned %d (%s)", n, rc, strerror(-rc));
	st = my_stats();
	is_int(st.fibers, st0.fibers + (uint64_t)n, tn("stats.fibers counts them all"));
	for (i = 0; i < n; i++) {
		void *res = NULL;

		if (rf_join(f[i], &res, ND) != 0)
			join_errors++;
		sum += (intptr_t)res;
		want += 3LL * i;
	}
	is_int(join_errors, 0, tn("join them all"));
	is_int(sum, want, tn("the sum of their results"));
	st = my_stats();
	is_int(st.fibers, st0.fibers, tn("stats.fibers is back where it was"));
	free(f);
}

/* ------------------------------------------------------ the main fibers */

static void *sched_main(void *arg)
{
	struct rf_runtime *rt = arg;
	struct rf_stats st = my_stats();

	ok(rf_self() != NULL, "%s", tn("rf_self() in the main fiber is not NULL"));
	is_int(st.fibers, 1, tn("stats.fibers is 1 in a lone main fiber"));
	is_int(st.features & RF_FEAT_RING, 0, tn("RF_RT_NO_RING: no RF_FEAT_RING"));
	is_int(st.inflight, 0, tn("stats.inflight is 0"));
	is_int(rf_runtime_run(rt, return_arg, NULL, NULL), -EBUSY,
	       tn("rf_runtime_run() of the running runtime from a fiber -> -EBUSY"));

	test_spawn_order();
	test_yield_rounds();
	test_join_results();
	test_names();
	test_detached();
	test_join_errors();
	test_cancel();
	test_cancel_sticky();
	test_many_fibers();

	st = my_stats();
	is_int(st.fibers, 1, tn("only main is left"));
	return (void *)0xfeed;
}

static void *exit_main(void *arg)
{
	exit_from_depth(2, arg);
	return NULL;
}

/* Detached fibers outlive main: rf_runtime_run() waits for them. */
static int outlived;

static void *outliving_fiber(void *arg)
{
	int i;

	for (i = 0; i < 5; i++)
		rf_yield();
	outlived = 1;
	return NULL;
}

static void *short_main(void *arg)
{
	struct rf_spawn_attr det = { .detached = 1, .name = "outliver" };

	is_int(rf_spawn(NULL, outliving_fiber, NULL, &det), 0, tn("spawn a detached fiber"));
	return NULL;
}

static void *name_of_main(void *arg)
{
	const char *n = rf_fiber_name(rf_self());

	return (void *)(intptr_t)(n && strcmp(n, "main") == 0);
}

/*
 * The checks of sched_main() are of cooperative scheduling: what runs when
 * a fiber yields, parks or exits.  Made without the watchdog, so that no
 * check is ever preempted: on a slow kernel (KASAN under TCG) main's own
 * checks ran for 26 ms without yielding, the watchdog preempted main as a
 * hog, and the ten fibers it had just spawned ran and exited before it
 * counted them.
 */
static void test_runtime(const struct rt_config *cfg)
{
	struct rf_runtime_opts opts = { .flags = cfg->flags, .hog_ns = -1 };
	struct rf_runtime *rt = NULL;
	struct rf_stats st;
	void *res = NULL;
	int rc;

	rc = rf_runtime_create(&rt, &opts);
	is_int(rc, 0, tn("rf_runtime_create()"));
	if (rc)
		return;
	is_int(rf_runtime_run(rt, NULL, NULL, NULL), -EINVAL,
	       tn("rf_runtime_run(NULL fn) -> -EINVAL"));
	rc = rf_runtime_run(rt, sched_main, rt, &res);
	is_int(rc, 0, tn("rf_runtime_run() returns 0"));
	ok(res == (void *)0xfeed, "%s", tn("and reports the main fiber's result (%p)", res));
	ok(rf_self() == NULL, "%s", tn("rf_self() is NULL again after the run"));
	is_int(rf_runtime_stats(rt, &st), 0, tn("rf_runtime_stats() of a runtime outside a fiber"));
	is_int(st.fibers, 0, tn("no fiber is left after the run"));
	is_int(st.inflight, 0, tn("nothing in flight after the run"));

	/* The same runtime runs again; rf_exit() in main gives the result. */
	res = NULL;
	rc = rf_runtime_run(rt, exit_main, (void *)0x99, &res);
	is_int(rc, 0, tn("a second rf_runtime_run() of the same runtime"));
	ok(res == (void *)0x99, "%s", tn("reports rf_exit()'s value of main (%p)", res));
	res = NULL;
	rc = rf_runtime_run(rt, name_of_main, NULL, &res);
	ok(rc == 0 && res == (void *)1, "%s",
	   tn("the main fiber of a later run is named \"main\" too"));
	rf_runtime_destroy(rt);

	/* Detached fibers still running when main returns. */
	outlived = 0;
	rc = run_flags(cfg->flags, short_main, NULL, NULL, &st);
	is_int(rc, 0, tn("main returns before a detached fiber"));
	is_int(outlived, 1, tn("rf_runtime_run() waited for the detached fiber"));
	is_int(st.fibers, 0, tn("and it was freed"));
}

/* ------------------------------------------------ runtimes on threads */

#define THREAD_FIBERS 200
#define THREAD_ROUNDS 50

struct thread_run {
	unsigned int flags;
	int rc;
	long sum;
	int self_was_null;
};

static void *thread_yielder(void *arg)
{
	long sum = 0;
	int r;

	for (r = 0; r < THREAD_ROUNDS; r++) {
		sum += (long)(intptr_t)arg;
		rf_yield();
	}
	return (void *)(intptr_t)sum;
}

static void *thread_main(void *arg)
{
	struct thread_run *tr = arg;
	struct rf_fiber *f[THREAD_FIBERS];
	int i, n = 0;

	for (i = 0; i < THREAD_FIBERS; i++) {
		if (rf_spawn(&f[i], thread_yielder, (void *)(intptr_t)(i + 1), NULL) != 0)
			break;
		n++;
	}
	for (i = 0; i < n; i++) {
		void *res = NULL;

		rf_join(f[i], &res, ND);
		tr->sum += (long)(intptr_t)res;
	}
	return NULL;
}

static void *thread_body(void *arg)
{
	struct thread_run *tr = arg;

	tr->self_was_null = rf_self() == NULL;
	tr->rc = run_flags(tr->flags, thread_main, tr, NULL, NULL);
	return NULL;
}

/* Two threads, each running its own runtime at the same time. */
static void test_threads(const struct rt_config *cfg)
{
	struct thread_run tr[2];
	pthread_t th[2];
	long want = 0;
	int i, started = 0;

	for (i = 1; i <= THREAD_FIBERS; i++)
		want += (long)i * THREAD_ROUNDS;
	memset(tr, 0, sizeof(tr));
	for (i = 0; i < 2; i++) {
		tr[i].flags = cfg->flags;
		tr[i].rc = 1;
		if (pthread_create(&th[i], NULL, thread_body, &tr[i]) != 0)
			break;
		started++;
	}
	is_int(started, 2, tn("start two threads"));
	for (i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	for (i = 0; i < started; i++) {
		is_int(tr[i].rc, 0, tn("thread %d: its runtime ran", i));
		is_int(tr[i].sum, want, tn("thread %d: every fiber's rounds were counted", i));
		ok(tr[i].self_was_null, "%s",
		   tn("thread %d: rf_self() was NULL before its run", i));
	}
}

/* ------------------------------------- offers nobody takes (stealing) */

/*
 * A worker counted idle that the host keeps off its CPU takes nothing that
 * is offered to it.  Worker 1 is made that worker: once it sleeps with
 * nothing to do, a signal handler holds its thread until released.  The
 * yielding fibers on worker 0 must all keep running: before, worker 0
 * published half of its run queue at every pass while the other worker
 * counted idle, and took its own offer back only once its run queue ran
 * dry, which never happens while the fibers yield; the fibers of the
 * first offers waited until all the others had finished.
 */
#define OFFER_FIBERS 16
#define OFFER_ROUNDS 400

/* Set by the handler on worker 1's thread, and by the test to let it go. */
static int held, release_held;
static int offer_progress[OFFER_FIBERS];
static int offer_least_at_first_done = -1;

static void hold_worker(int sig)
{
	struct timespec ms = { 0, 1000 * 1000 };

	(void)sig;
	__atomic_store_n(&held, 1, __ATOMIC_SEQ_CST);
	while (!__atomic_load_n(&release_held, __ATOMIC_SEQ_CST))
		nanosleep(&ms, NULL);
}

static void *report_tid(void *arg)
{
	return (void *)(intptr_t)syscall(SYS_gettid);
}

/* Voluntary context switches of thread @tid, its state in @state; -1 if unreadable. */
static long thread_switches(pid_t tid, char *state)
{
	char path[64], line[128];
	long n = -1;
	FILE *fp;

	snprintf(path, sizeof(path), "/proc/self/task/%d/status", (int)tid);
	fp = fopen(path, "r");
	if (!fp)
		return -1;
	*state = '?';
	while (fgets(line, sizeof(line), fp)) {
		if (!strncmp(line, "State:", 6))
			sscanf(line + 6, " %c", state);
		else if (!strncmp(line, "voluntary_ctxt_switches:", 24))
			n = strtol(line + 24, NULL, 10);
	}
	fclose(fp);
	return n;
}

/*
 * Thread @tid has slept for 20 ms without waking: a worker with no fiber
 * and no idle polling does that only in its idle sleep.  Waits up to 5 s.
 */
static int thread_settled_asleep(pid_t tid)
{
	struct timespec gap = { 0, 20 * 1000 * 1000 };
	int tries;

	for (tries = 0; tries < 250; tries++) {
		char s0, s1;
		long n0 = thread_switches(tid, &s0), n1;

		nanosleep(&gap, NULL);
		n1 = thread_switches(tid, &s1);
		if (n0 >= 0 && n0 == n1 && s0 == 'S' && s1 == 'S')
			return 1;
	}
	return 0;
}

static void *offer_yielder(void *arg)
{
	int i = (int)(intptr_t)arg, r, j, least;

	for (r = 1; r <= OFFER_ROUNDS; r++) {
		offer_progress[i] = r;
		if (r == OFFER_ROUNDS && offer_least_at_first_done < 0) {
			least = r;
			for (j = 0; j < OFFER_FIBERS; j++)
				if (offer_progress[j] < least)
					least = offer_progress[j];
			offer_least_at_first_done = least;
		}
		rf_yield();
	}
	return NULL;
}

static void *offer_main(void *arg)
{
	struct rf_fiber *f[OFFER_FIBERS], *tf;
	void *tid = NULL;
	int64_t t0;
	int i, n = 0;

	(void)arg;
	if (rf_spawn_on(1, &tf, report_tid, NULL, NULL) || rf_join(tf, &tid, ND)) {
		ok(0, "%s", tn("a fiber on worker 1 reports its thread"));
		return NULL;
	}
	if (!thread_settled_asleep((pid_t)(intptr_t)tid)) {
		tap_skip(2, "worker 1's thread was never seen asleep in /proc");
		return NULL;
	}
	if (syscall(SYS_tgkill, getpid(), (pid_t)(intptr_t)tid, SIGUSR1)) {
		tap_skip(2, "cannot signal worker 1's thread");
		return NULL;
	}
	t0 = rf_now();
	while (!__atomic_load_n(&held, __ATOMIC_SEQ_CST) && ms_since(t0) < 5000)
		rf_yield();
	if (!__atomic_load_n(&held, __ATOMIC_SEQ_CST)) {
		__atomic_store_n(&release_held, 1, __ATOMIC_SEQ_CST);
		tap_skip(2, "worker 1's thread did not take the signal in 5 s");
		return NULL;
	}
	for (i = 0; i < OFFER_FIBERS; i++) {
		if (rf_spawn(&f[i], offer_yielder, (void *)(intptr_t)i, NULL))
			break;
		n++;
	}
	is_int(n, OFFER_FIBERS, tn("spawn %d yielding fibers beside a held idle worker",
				   OFFER_FIBERS));
	for (i = 0; i < n; i++)
		rf_join(f[i], NULL, ND);
	__atomic_store_n(&release_held, 1, __ATOMIC_SEQ_CST);
	tap_diag("%s", tn("when the first fiber finished its %d rounds, the last had made %d",
			  OFFER_ROUNDS, offer_least_at_first_done));
	/*
	 * An offer not taken runs at the worker's next pass: a fiber in the
	 * back half at every offer still runs about a third as often as one
	 * in the front half.  Before, a fiber of the first offer made no
	 * round after it (8 of 400 here) until the others had all finished.
	 */
	ok(offer_least_at_first_done >= OFFER_ROUNDS / 4, "%s",
	   tn("no fiber waits in an offer the idle worker cannot take (%d of %d rounds)",
	      offer_least_at_first_done, OFFER_ROUNDS));
	return NULL;
}

static void test_untaken_offer(const struct rt_config *cfg)
{
	struct rf_runtime_opts opts = {
		.flags = cfg->flags | RF_RT_NO_PIN,
		.workers = 2,
		.idle_spin_ns = -1,	/* worker 1 sleeps at once */
		.hog_ns = -1,		/* no rescue: only the loop publishes */
	};
	struct sigaction sa = { .sa_handler = hold_worker }, old;
	struct rf_stats st;
	int rc;

	__atomic_store_n(&held, 0, __ATOMIC_SEQ_CST);
	__atomic_store_n(&release_held, 0, __ATOMIC_SEQ_CST);
	offer_least_at_first_done = -1;
	memset(offer_progress, 0, sizeof(offer_progress));
	sigemptyset(&sa.sa_mask);
	sigaction(SIGUSR1, &sa, &old);
	rc = run_main(&opts, offer_main, NULL, NULL, &st);
	__atomic_store_n(&release_held, 1, __ATOMIC_SEQ_CST);
	sigaction(SIGUSR1, &old, NULL);
	is_clean_run(rc, &st);
}

/* Calls that need a fiber, made from plain thread context. */
static void test_outside_fiber(void)
{
	/* Never a real fiber: the calls must refuse before looking at it. */
	static union {
		char bytes[4096];
		long double align;
	} not_a_fiber;
	struct rf_fiber *bogus = (struct rf_fiber *)&not_a_fiber;
	struct rf_fiber *f = NULL;

	ok(rf_self() == NULL, "rf_self() outside a fiber is NULL");
	is_int(rf_yield(), -EPERM, "rf_yield() outside a fiber -> -EPERM");
	is_int(rf_spawn(&f, return_arg, NULL, NULL), -EPERM,
	       "rf_spawn() outside a fiber -> -EPERM");
	ok(f == NULL, "and gives no handle");
	is_int(rf_join(bogus, NULL, ND), -EPERM, "rf_join() outside a fiber -> -EPERM");
	is_int(rf_cancel(bogus), -EPERM, "rf_cancel() outside a fiber -> -EPERM");
	is_int(rf_detach(bogus), -EPERM, "rf_detach() outside a fiber -> -EPERM");
	rf_exit((void *)1);
	ok(1, "rf_exit() outside a fiber returns");
}

int main(void)
{
	size_t i;

	test_watchdog(120);
	test_outside_fiber();
	for (i = 0; i < ARRAY_SIZE(configs); i++) {
		test_config_name = configs[i].name;
		tap_diag("configuration: %s (flags 0x%x)", configs[i].name, configs[i].flags);
		test_runtime(&configs[i]);
		test_threads(&configs[i]);
		test_untaken_offer(&configs[i]);
	}
	test_config_name = NULL;
	return done_testing();
}
