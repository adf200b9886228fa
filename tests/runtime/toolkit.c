/* SPDX-License-Identifier: MIT */
/*
 * toolkit.c - the concurrency toolkit and groups seen from outside: mutex
 * exclusion and FIFO hand-off, condition variables (signal, broadcast, the
 * mutex held again after a timeout or a cancellation), semaphore
 * backpressure, wait groups, events, channels (buffered, rendezvous, close
 * and drain), groups (success, failure, deadlines, nesting, cancellation),
 * every waiting call's try variant, timeout and cancellation, wake-ups from
 * a thread that is no fiber, and bad input.
 *
 * Everything runs with two workers, fibers placed on both (rf_spawn_on()),
 * then with one.  Orders are only asserted among pinned fibers of one
 * worker, where cooperative scheduling makes them deterministic; deadlines
 * only end waits, nothing asserts how long anything took.  The program also
 * runs under ThreadSanitizer (make check-tsan): what fibers share without a
 * toolkit lock is accessed with atomics.
 */
#include <pthread.h>

#include "helpers.h"

#define ND RF_NO_DEADLINE

static const struct {
	const char *name;
	unsigned int workers;
} configs[] = {
	{ "2 workers", 2 },
	{ "1 worker", 1 },
};

/* The worker cross-worker fibers go to: 1, or 0 when there is only one. */
static unsigned int other;

#define LOAD(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define STORE(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)
#define INC(p) __atomic_add_fetch((p), 1, __ATOMIC_ACQ_REL)
#define DEC(p) __atomic_sub_fetch((p), 1, __ATOMIC_ACQ_REL)

static int64_t after_ms(int64_t ms)
{
	return rf_deadline_after(ms * MSEC);
}

static void *rc_ptr(int rc)
{
	return (void *)(intptr_t)rc;
}

/* A fiber pinned to the calling fiber's worker: it runs when we yield. */
static struct rf_fiber *spawn_here(rf_fn fn, void *arg)
{
	struct rf_spawn_attr attr = { .name = "here", .pinned = 1 };
	struct rf_fiber *f = NULL;
	int rc = rf_spawn(&f, fn, arg, &attr);

	if (rc) {
		ok(0, "%s", tn("rf_spawn() of a pinned fiber (%d)", rc));
		return NULL;
	}
	return f;
}

/* A fiber on worker @other (pinned, so it stays there). */
static struct rf_fiber *spawn_other(rf_fn fn, void *arg)
{
	struct rf_spawn_attr attr = { .name = "other", .pinned = 1 };
	struct rf_fiber *f = NULL;
	int rc = rf_spawn_on(other, &f, fn, arg, &attr);

	if (rc) {
		ok(0, "%s", tn("rf_spawn_on(%u) (%d)", other, rc));
		return NULL;
	}
	return f;
}

/* A fiber anywhere (not pinned: idle workers may steal it). */
static struct rf_fiber *spawn_any(unsigned int worker, rf_fn fn, void *arg)
{
	struct rf_fiber *f = NULL;
	int rc = rf_spawn_on(worker, &f, fn, arg, NULL);

	if (rc) {
		ok(0, "%s", tn("rf_spawn_on(%u) (%d)", worker, rc));
		return NULL;
	}
	return f;
}

/*
 * The @i-th fiber of a group spread over both workers: the odd ones pinned
 * to worker @other, the even ones on worker 0 where idle workers may steal
 * them.
 */
static struct rf_fiber *spawn_spread(int i, rf_fn fn, void *arg)
{
	return i % 2 ? spawn_other(fn, arg) : spawn_any(0, fn, arg);
}

/* Join @f and return its result as an int; -10000 if that fails. */
static int join_rc(struct rf_fiber *f)
{
	void *res = NULL;
	int rc;

	if (!f)
		return -10000;
	rc = rf_join(f, &res, ND);
	if (rc) {
		ok(0, "%s", tn("rf_join() (%d)", rc));
		return -10000;
	}
	return (int)(intptr_t)res;
}

/* Join the @n fibers in @f; the OR of their join_rc()s. */
static int join_all(struct rf_fiber **f, int n)
{
	int i, rc = 0;

	for (i = 0; i < n; i++)
		rc |= join_rc(f[i]);
	return rc;
}

/* Raise *@max to @n if it is lower. */
static void atomic_max(int *max, int n)
{
	int cur = LOAD(max);

	while (n > cur && !__atomic_compare_exchange_n(max, &cur, n, 0, __ATOMIC_ACQ_REL,
						       __ATOMIC_ACQUIRE))
		;
}

/*
 * Wait until *@counter reaches @n (a fiber on any worker raises it): yield,
 * so that the fibers ready here run, and sleep a little when that was not
 * enough, so that waiting for another worker is no hog for the watchdog.
 */
static void wait_count(int *counter, int n)
{
	while (LOAD(counter) < n) {
		rf_yield();
		if (LOAD(counter) < n)
			rf_sleep(rf_deadline_after(100 * 1000));
	}
}

/* Wait until *@flag is set. */
static void wait_flag(int *flag)
{
	wait_count(flag, 1);
}

/*
 * A fiber made by @spawn (spawn_here() or spawn_other()), returned once it
 * has set *@started: it is about to wait, or waits.
 */
static struct rf_fiber *spawn_started(struct rf_fiber *(*spawn)(rf_fn fn, void *arg), rf_fn fn,
				      void *arg, int *started)
{
	struct rf_fiber *f = spawn(fn, arg);

	if (f)
		wait_flag(started);
	return f;
}

/* A new group with @deadline, or NULL and a failed check named @what. */
static struct rf_group *new_group(int64_t deadline, const char *what)
{
	struct rf_group *g = NULL;

	if (rf_group_create(&g, deadline) != 0) {
		ok(0, "%s", tn("%s", what));
		return NULL;
	}
	return g;
}

/* ----------------------------------------------- every waiting call, alike */

enum { OP_LOCK, OP_COND, OP_SEM, OP_WG, OP_EVENT, OP_SEND, OP_RECV, OP_NR };

static const char *const op_names[OP_NR] = {
	"rf_mutex_lock", "rf_cond_wait", "rf_sem_acquire", "rf_wg_wait",
	"rf_event_wait", "rf_chan_send", "rf_chan_recv",
};

/* What the ops wait on; never made available while one waits. */
static struct rf_mutex held_mx;		/* held by the test */
static struct rf_mutex cond_mx;		/* the waiter's own, for rf_cond_wait() */
static struct rf_cond never_cv;
static struct rf_sem empty_sem;		/* no permit */
static struct rf_waitgroup busy_wg;	/* count 1 */
static struct rf_event never_ev;
static struct rf_chan *lonely;		/* capacity 0, nobody on the other side */

struct op_arg {
	int op;
	int64_t deadline;
	int started;		/* atomic: about to wait */
	int held_after;		/* rf_cond_wait(): the mutex was held on return */
};

static void *op_fiber(void *p)
{
	struct op_arg *a = p;
	void *v = NULL;
	int rc = -10001;

	if (a->op == OP_COND && rf_mutex_lock(&cond_mx, ND) != 0)
		return rc_ptr(-10002);
	STORE(&a->started, 1);
	switch (a->op) {
	case OP_LOCK:
		rc = rf_mutex_lock(&held_mx, a->deadline);
		if (rc == 0)
			rf_mutex_unlock(&held_mx);
		break;
	case OP_COND:
		rc = rf_cond_wait(&never_cv, &cond_mx, a->deadline);
		a->held_after = rf_mutex_trylock(&cond_mx) == -EBUSY;
		rf_mutex_unlock(&cond_mx);
		break;
	case OP_SEM:
		rc = rf_sem_acquire(&empty_sem, a->deadline);
		break;
	case OP_WG:
		rc = rf_wg_wait(&busy_wg, a->deadline);
		break;
	case OP_EVENT:
		rc = rf_event_wait(&never_ev, a->deadline);
		break;
	case OP_SEND:
		rc = rf_chan_send(lonely, &rc, a->deadline);
		break;
	case OP_RECV:
		rc = rf_chan_recv(lonely, &v, a->deadline);
		break;
	}
	return rc_ptr(rc);
}

static void ops_setup(void)
{
	rf_mutex_init(&held_mx);
	rf_mutex_init(&cond_mx);
	rf_cond_init(&never_cv);
	is_int(rf_sem_init(&empty_sem, 0), 0, tn("rf_sem_init(0)"));
	rf_wg_init(&busy_wg);
	is_int(rf_wg_add(&busy_wg, 1), 0, tn("rf_wg_add(1)"));
	rf_event_init(&never_ev);
	is_int(rf_chan_create(&lonely, 0), 0, tn("rf_chan_create(capacity 0)"));
	is_int(rf_mutex_trylock(&held_mx), 0, tn("rf_mutex_trylock() of a free mutex"));
}

/* The try variants fail where waiting would be needed. */
static void test_try_variants(void)
{
	void *v = NULL;

	is_int(rf_mutex_trylock(&held_mx), -EBUSY,
	       tn("rf_mutex_trylock() of a held mutex -> -EBUSY"));
	is_int(rf_sem_tryacquire(&empty_sem), -EAGAIN,
	       tn("rf_sem_tryacquire() without a permit -> -EAGAIN"));
	is_int(rf_chan_trysend(lonely, &v), -EAGAIN,
	       tn("rf_chan_trysend() on a rendezvous channel, no receiver -> -EAGAIN"));
	is_int(rf_chan_tryrecv(lonely, &v), -EAGAIN,
	       tn("rf_chan_tryrecv() on a rendezvous channel, no sender -> -EAGAIN"));
}

static void check_cond_held(const struct op_arg *a, const char *how)
{
	if (a->op == OP_COND)
		ok(a->held_after, "%s", tn("rf_cond_wait() %s: the mutex is held on return", how));
}

/* Each waiting call: deadline, past deadline, cancelled here and there. */
static void test_ops(void)
{
	int op;

	for (op = 0; op < OP_NR; op++) {
		const char *name = op_names[op];
		struct op_arg a;
		struct rf_fiber *f;

		/* a deadline, on the other worker */
		a = (struct op_arg){ .op = op, .deadline = after_ms(5) };
		is_int(join_rc(spawn_other(op_fiber, &a)), -ETIMEDOUT,
		       tn("%s() on worker %u reaches its deadline -> -ETIMEDOUT", name, other));
		check_cond_held(&a, "timed out");

		/* a deadline already past */
		a = (struct op_arg){ .op = op, .deadline = rf_now() - MSEC };
		is_int(join_rc(spawn_here(op_fiber, &a)), -ETIMEDOUT,
		       tn("%s() with a past deadline -> -ETIMEDOUT", name));
		check_cond_held(&a, "with a past deadline");

		/* cancelled while parked (same worker: it parks when we yield) */
		a = (struct op_arg){ .op = op, .deadline = ND };
		f = spawn_here(op_fiber, &a);
		if (f) {
			wait_flag(&a.started);
			is_int(rf_cancel(f), 0, tn("rf_cancel() a fiber parked in %s()", name));
		}
		is_int(join_rc(f), -ECANCELED, tn("%s() of a parked fiber cancelled -> -ECANCELED",
						  name));
		check_cond_held(&a, "cancelled");

		/* cancelled from another worker, parked or about to park */
		a = (struct op_arg){ .op = op, .deadline = ND };
		f = spawn_other(op_fiber, &a);
		if (f) {
			wait_flag(&a.started);
			rf_sleep(after_ms(1));
			is_int(rf_cancel(f), 0, tn("rf_cancel() a fiber on worker %u in %s()",
						    other, name));
		}
		is_int(join_rc(f), -ECANCELED,
		       tn("%s() on worker %u cancelled -> -ECANCELED", name, other));
		check_cond_held(&a, "cancelled across workers");
	}
}

/* Waiters that timed out or were cancelled left nothing behind. */
static void test_ops_aftermath(void)
{
	void *v = NULL;

	is_int(rf_mutex_unlock(&held_mx), 0, tn("rf_mutex_unlock() after the waiters gave up"));
	is_int(rf_mutex_trylock(&held_mx), 0,
	       tn("the mutex is free: it was not handed to a waiter that gave up"));
	is_int(rf_mutex_unlock(&held_mx), 0, tn("rf_mutex_unlock()"));
	is_int(rf_sem_release(&empty_sem), 0, tn("rf_sem_release()"));
	is_int(rf_sem_tryacquire(&empty_sem), 0,
	       tn("the permit is free: it was not handed to a waiter that gave up"));
	is_int(rf_sem_tryacquire(&empty_sem), -EAGAIN, tn("and there was only one"));
	is_int(rf_chan_trysend(lonely, &v), -EAGAIN, tn("no receiver was left on the channel"));
	is_int(rf_chan_tryrecv(lonely, &v), -EAGAIN, tn("no sender was left on the channel"));
	is_int(rf_chan_destroy(lonely), 0, tn("rf_chan_destroy() with nobody waiting"));
	is_int(rf_wg_done(&busy_wg), 0, tn("rf_wg_done()"));
	is_int(rf_wg_wait(&busy_wg, ND), 0, tn("rf_wg_wait() on a zero count -> 0"));
	is_int(rf_event_set(&never_ev), 0, tn("rf_event_set()"));
	is_int(rf_event_wait(&never_ev, ND), 0, tn("rf_event_wait() on a set event -> 0"));
}

/* -------------------------------------------------------------- bad input */

static int task_nothing(void *p)
{
	return 0;
}

static void test_bad_input_in_fiber(void)
{
	struct rf_mutex m = RF_MUTEX_INIT;
	struct rf_cond c = RF_COND_INIT;
	struct rf_chan *ch = NULL;
	struct rf_group *g = NULL;
	void *v;

	is_int(rf_mutex_lock(NULL, ND), -EINVAL, tn("rf_mutex_lock(NULL) -> -EINVAL"));
	is_int(rf_mutex_trylock(NULL), -EINVAL, tn("rf_mutex_trylock(NULL) -> -EINVAL"));
	is_int(rf_mutex_unlock(NULL), -EINVAL, tn("rf_mutex_unlock(NULL) -> -EINVAL"));
	is_int(rf_mutex_unlock(&m), -EPERM, tn("rf_mutex_unlock() of a free mutex -> -EPERM"));
	is_int(rf_cond_wait(NULL, &m, ND), -EINVAL, tn("rf_cond_wait(NULL, m) -> -EINVAL"));
	is_int(rf_cond_wait(&c, NULL, ND), -EINVAL, tn("rf_cond_wait(c, NULL) -> -EINVAL"));
	is_int(rf_cond_wait(&c, &m, ND), -EPERM,
	       tn("rf_cond_wait() with the mutex not locked -> -EPERM"));
	is_int(rf_cond_signal(NULL), -EINVAL, tn("rf_cond_signal(NULL) -> -EINVAL"));
	is_int(rf_cond_broadcast(NULL), -EINVAL, tn("rf_cond_broadcast(NULL) -> -EINVAL"));
	is_int(rf_cond_signal(&c), 0, tn("rf_cond_signal() with no waiter -> 0"));
	is_int(rf_cond_broadcast(&c), 0, tn("rf_cond_broadcast() with no waiter -> 0"));
	is_int(rf_sem_init(NULL, 1), -EINVAL, tn("rf_sem_init(NULL) -> -EINVAL"));
	is_int(rf_sem_acquire(NULL, ND), -EINVAL, tn("rf_sem_acquire(NULL) -> -EINVAL"));
	is_int(rf_sem_tryacquire(NULL), -EINVAL, tn("rf_sem_tryacquire(NULL) -> -EINVAL"));
	is_int(rf_sem_release(NULL), -EINVAL, tn("rf_sem_release(NULL) -> -EINVAL"));
	is_int(rf_wg_add(NULL, 1), -EINVAL, tn("rf_wg_add(NULL) -> -EINVAL"));
	is_int(rf_wg_done(NULL), -EINVAL, tn("rf_wg_done(NULL) -> -EINVAL"));
	is_int(rf_wg_wait(NULL, ND), -EINVAL, tn("rf_wg_wait(NULL) -> -EINVAL"));
	is_int(rf_event_set(NULL), -EINVAL, tn("rf_event_set(NULL) -> -EINVAL"));
	is_int(rf_event_clear(NULL), -EINVAL, tn("rf_event_clear(NULL) -> -EINVAL"));
	is_int(rf_event_is_set(NULL), -EINVAL, tn("rf_event_is_set(NULL) -> -EINVAL"));
	is_int(rf_event_wait(NULL, ND), -EINVAL, tn("rf_event_wait(NULL) -> -EINVAL"));
	is_int(rf_chan_create(NULL, 1), -EINVAL, tn("rf_chan_create(NULL) -> -EINVAL"));
	is_int(rf_chan_create(&ch, 1u << 31), -EINVAL,
	       tn("rf_chan_create(capacity 2^31) -> -EINVAL"));
	is_int(rf_chan_send(NULL, NULL, ND), -EINVAL, tn("rf_chan_send(NULL) -> -EINVAL"));
	is_int(rf_chan_trysend(NULL, NULL), -EINVAL, tn("rf_chan_trysend(NULL) -> -EINVAL"));
	is_int(rf_chan_recv(NULL, &v, ND), -EINVAL, tn("rf_chan_recv(NULL) -> -EINVAL"));
	is_int(rf_chan_tryrecv(NULL, &v), -EINVAL, tn("rf_chan_tryrecv(NULL) -> -EINVAL"));
	is_int(rf_chan_close(NULL), -EINVAL, tn("rf_chan_close(NULL) -> -EINVAL"));
	is_int(rf_chan_destroy(NULL), 0, tn("rf_chan_destroy(NULL) -> 0"));
	if (rf_chan_create(&ch, 1) == 0) {
		is_int(rf_chan_recv(ch, NULL, ND), -EINVAL,
		       tn("rf_chan_recv() into NULL -> -EINVAL"));
		is_int(rf_chan_tryrecv(ch, NULL), -EINVAL,
		       tn("rf_chan_tryrecv() into NULL -> -EINVAL"));
		rf_chan_destroy(ch);
	}
	is_int(rf_group_create(NULL, ND), -EINVAL, tn("rf_group_create(NULL) -> -EINVAL"));
	is_int(rf_group_spawn(NULL, NULL, NULL, NULL), -EINVAL,
	       tn("rf_group_spawn(NULL) -> -EINVAL"));
	is_int(rf_group_cancel(NULL), -EINVAL, tn("rf_group_cancel(NULL) -> -EINVAL"));
	is_int(rf_group_wait(NULL), -EINVAL, tn("rf_group_wait(NULL) -> -EINVAL"));
	if (rf_group_create(&g, ND) == 0) {
		struct rf_spawn_attr tiny = { .stack_size = 1 };

		is_int(rf_group_spawn(g, NULL, NULL, NULL), -EINVAL,
		       tn("rf_group_spawn() of a NULL function -> -EINVAL"));
		is_int(rf_group_spawn(g, task_nothing, NULL, &tiny), -EINVAL,
		       tn("rf_group_spawn() with a 1-byte stack -> rf_spawn()'s -EINVAL"));
		is_int(rf_group_wait(g), 0, tn("rf_group_wait() of an empty group -> 0"));
	}
}

/* ------------------------------------------------------------------ mutex */

static struct rf_mutex fifo_mx;
static int fifo_order[8];
static int fifo_n;			/* written under fifo_mx */

/* A waiter that logs its @id when it gets through; @started: it is about to wait. */
struct order_arg {
	int id;
	int started;
};

static void *fifo_locker(void *p)
{
	struct order_arg *a = p;
	int rc;

	STORE(&a->started, 1);
	rc = rf_mutex_lock(&fifo_mx, ND);
	if (rc)
		return rc_ptr(rc);
	fifo_order[fifo_n++] = a->id;
	return rc_ptr(rf_mutex_unlock(&fifo_mx));
}

/* Unlock hands the mutex to the longest waiter: FIFO, and no barging. */
static void test_mutex_fifo(void)
{
	static const int want[] = { 0, 1, 2, 3, 4 };
	struct order_arg a[5];
	struct rf_fiber *f[5];
	int i, rc = 0;

	rf_mutex_init(&fifo_mx);
	fifo_n = 0;
	is_int(rf_mutex_lock(&fifo_mx, ND), 0, tn("rf_mutex_lock() of a free mutex"));
	for (i = 0; i < 5; i++) {
		a[i] = (struct order_arg){ .id = i };
		/* it is parked on the mutex */
		f[i] = spawn_started(spawn_here, fifo_locker, &a[i], &a[i].started);
	}
	is_int(rf_mutex_unlock(&fifo_mx), 0, tn("rf_mutex_unlock() with 5 waiters"));
	is_int(rf_mutex_trylock(&fifo_mx), -EBUSY,
	       tn("the unlocker cannot take it back: it went to the longest waiter"));
	rc |= join_all(f, 5);
	is_int(rc, 0, tn("every waiter locked and unlocked"));
	is_seq(fifo_order, fifo_n, want, (int)ARRAY_SIZE(want),
	       tn("waiters got the mutex in the order they queued"));
	is_int(rf_mutex_trylock(&fifo_mx), 0, tn("free again after the last one"));
	rf_mutex_unlock(&fifo_mx);
}

/*
 * A gate: a mutex, or a semaphore of a few permits, that fibers on both
 * workers pass @rounds times each while it counts how many are inside.
 */
struct gate {
	struct rf_mutex *mx;	/* the gate is a mutex, or */
	struct rf_sem *sem;	/* a semaphore */
	int rounds;
	long plain_count;	/* mutex only: counted under it, no atomics on purpose */
	int inside, max, entries;	/* atomic */
};

#define GATE_MAX_FIBERS 12

static void *gate_fiber(void *p)
{
	struct gate *g = p;
	int i, n, rc;

	for (i = 0; i < g->rounds; i++) {
		rc = g->mx ? rf_mutex_lock(g->mx, ND) : rf_sem_acquire(g->sem, ND);
		if (rc)
			return rc_ptr(rc);
		n = INC(&g->inside);
		atomic_max(&g->max, n);
		INC(&g->entries);
		/*
		 * Let others queue up behind us; holders of a semaphore also
		 * sleep, so that several of them are inside at once.
		 */
		if (g->mx) {
			g->plain_count++;
			if (i % 8 == 0)
				rf_yield();
		} else if (i % 2) {
			rf_sleep(rf_deadline_after(100 * 1000));
		} else {
			rf_yield();
		}
		DEC(&g->inside);
		rc = g->mx ? rf_mutex_unlock(g->mx) : rf_sem_release(g->sem);
		if (rc)
			return rc_ptr(rc);
	}
	return NULL;
}

/* Run @nfibers gate_fiber()s through @g, some stealable; the OR of their results. */
static int gate_run(struct gate *g, int nfibers)
{
	struct rf_fiber *f[GATE_MAX_FIBERS];
	int i;

	if (nfibers > (int)ARRAY_SIZE(f))
		return -E2BIG;
	g->plain_count = 0;
	STORE(&g->inside, 0);
	STORE(&g->max, 0);
	STORE(&g->entries, 0);
	for (i = 0; i < nfibers; i++)
		f[i] = spawn_spread(i, gate_fiber, g);
	return join_all(f, nfibers);
}

static struct rf_mutex excl_mx = RF_MUTEX_INIT;

#define EXCL_FIBERS 6
#define EXCL_ROUNDS 200

/* Fibers on both workers, some stealable, never two inside at once. */
static void test_mutex_exclusion(void)
{
	struct gate g = { .mx = &excl_mx, .rounds = EXCL_ROUNDS };

	is_int(gate_run(&g, EXCL_FIBERS), 0,
	       tn("%d fibers locked and unlocked %d times each", EXCL_FIBERS, EXCL_ROUNDS));
	is_int(LOAD(&g.max), 1, tn("never more than one fiber inside"));
	is_int(g.plain_count, EXCL_FIBERS * EXCL_ROUNDS,
	       tn("no increment under the mutex was lost"));
}

/* ------------------------------------------------------ condition variable */

static struct rf_mutex pred_mx;
static struct rf_cond pred_cv;
static int pred_ready;			/* under pred_mx */

static void *pred_consumer(void *p)
{
	int rc = 0, held;

	(void)p;
	rc = rf_mutex_lock(&pred_mx, ND);
	if (rc)
		return rc_ptr(rc);
	while (!pred_ready && rc == 0)
		rc = rf_cond_wait(&pred_cv, &pred_mx, ND);
	held = rf_mutex_trylock(&pred_mx) == -EBUSY;
	rf_mutex_unlock(&pred_mx);
	return rc_ptr(rc ? rc : held ? 0 : -10003);
}

/* A predicate changed under the mutex; broadcast wakes waiters everywhere. */
static void test_cond_predicate(void)
{
	struct rf_fiber *f[4];
	int i, rc = 0;

	rf_mutex_init(&pred_mx);
	rf_cond_init(&pred_cv);
	pred_ready = 0;
	for (i = 0; i < 4; i++)
		f[i] = spawn_spread(i, pred_consumer, NULL);
	rf_sleep(after_ms(2));
	is_int(rf_mutex_lock(&pred_mx, ND), 0, tn("producer locks"));
	pred_ready = 1;
	is_int(rf_cond_broadcast(&pred_cv), 0, tn("rf_cond_broadcast()"));
	is_int(rf_mutex_unlock(&pred_mx), 0, tn("producer unlocks"));
	rc |= join_all(f, 4);
	is_int(rc, 0, tn("4 consumers on both workers saw the predicate, holding the mutex"));
}

static struct rf_mutex sig_mx;
static struct rf_cond sig_cv;
static int sig_order[4];
static int sig_n;			/* atomic */

static void *sig_waiter(void *p)
{
	struct order_arg *a = p;
	int rc;

	rc = rf_mutex_lock(&sig_mx, ND);
	if (rc)
		return rc_ptr(rc);
	STORE(&a->started, 1);
	rc = rf_cond_wait(&sig_cv, &sig_mx, ND);
	sig_order[LOAD(&sig_n)] = a->id;
	INC(&sig_n);
	rf_mutex_unlock(&sig_mx);
	return rc_ptr(rc);
}

/* Signal wakes one waiter, the longest; broadcast wakes the rest. */
static void test_cond_signal(void)
{
	static const int want[] = { 0, 1, 2 };
	struct order_arg a[3];
	struct rf_fiber *f[3];
	int i, rc = 0;

	rf_mutex_init(&sig_mx);
	rf_cond_init(&sig_cv);
	STORE(&sig_n, 0);
	for (i = 0; i < 3; i++) {
		a[i] = (struct order_arg){ .id = i };
		f[i] = spawn_started(spawn_here, sig_waiter, &a[i], &a[i].started);
	}
	is_int(rf_cond_signal(&sig_cv), 0, tn("rf_cond_signal() with 3 waiters"));
	wait_count(&sig_n, 1);
	rf_sleep(after_ms(2));
	is_int(LOAD(&sig_n), 1, tn("one waiter woke"));
	is_int(rf_cond_signal(&sig_cv), 0, tn("rf_cond_signal() again"));
	wait_count(&sig_n, 2);
	rf_sleep(after_ms(2));
	is_int(LOAD(&sig_n), 2, tn("one more woke"));
	is_int(rf_cond_broadcast(&sig_cv), 0, tn("rf_cond_broadcast()"));
	rc |= join_all(f, 3);
	is_int(rc, 0, tn("every waiter returned 0"));
	is_seq(sig_order, LOAD(&sig_n), want, (int)ARRAY_SIZE(want),
	       tn("signalled in the order they waited"));
}

static struct rf_mutex re_mx;
static struct rf_cond re_cv;
static int re_released;			/* atomic: the other holder let go */

struct re_arg {
	int started;
	int rc;
	int released_seen;
	int held;
};

static void *re_waiter(void *p)
{
	struct re_arg *a = p;

	STORE(&a->started, 1);
	if (rf_mutex_lock(&re_mx, ND) != 0)	/* queues: the test holds it */
		return rc_ptr(-10004);
	/* unlocking hands the mutex to the test, queued behind us */
	a->rc = rf_cond_wait(&re_cv, &re_mx, rf_now() - MSEC);
	a->released_seen = LOAD(&re_released);
	a->held = rf_mutex_trylock(&re_mx) == -EBUSY;
	rf_mutex_unlock(&re_mx);
	return NULL;
}

/*
 * A timed-out rf_cond_wait() returns only once it holds the mutex again,
 * here only after the fiber that got it meanwhile has let it go.
 */
static void test_cond_timeout_relock(void)
{
	struct re_arg a = { 0 };
	struct rf_fiber *f;

	rf_mutex_init(&re_mx);
	rf_cond_init(&re_cv);
	STORE(&re_released, 0);
	is_int(rf_mutex_lock(&re_mx, ND), 0, tn("lock"));
	f = spawn_started(spawn_here, re_waiter, &a, &a.started);
	rf_yield();
	is_int(rf_mutex_unlock(&re_mx), 0, tn("unlock: handed to the waiter"));
	/* queued now; the waiter's rf_cond_wait() hands it back to us */
	is_int(rf_mutex_lock(&re_mx, ND), 0, tn("lock again, from inside its rf_cond_wait()"));
	rf_sleep(after_ms(2));	/* its deadline has passed: it wants the mutex */
	STORE(&re_released, 1);
	is_int(rf_mutex_unlock(&re_mx), 0, tn("unlock"));
	join_rc(f);
	is_int(a.rc, -ETIMEDOUT, tn("rf_cond_wait() -> -ETIMEDOUT"));
	ok(a.released_seen, "%s", tn("it returned only after the other holder unlocked"));
	ok(a.held, "%s", tn("and it held the mutex on return"));
}

static void *self_cancelled_wait(void *p)
{
	struct rf_mutex m = RF_MUTEX_INIT;
	struct rf_cond c = RF_COND_INIT;
	int *held = p;
	int rc;

	rf_cancel(rf_self());
	if (rf_mutex_trylock(&m) != 0)
		return rc_ptr(-10005);
	rc = rf_cond_wait(&c, &m, ND);
	*held = rf_mutex_trylock(&m) == -EBUSY;
	rf_mutex_unlock(&m);
	return rc_ptr(rc);
}

static void test_cond_cancelled(void)
{
	int held = 0;

	is_int(join_rc(spawn_here(self_cancelled_wait, &held)), -ECANCELED,
	       tn("rf_cond_wait() in a cancelled fiber -> -ECANCELED"));
	ok(held, "%s", tn("with the mutex still held"));
}

/* -------------------------------------------------------------- semaphore */

#define SEM_N 3
#define SEM_FIBERS 12
#define SEM_ROUNDS 10

static struct rf_sem bp_sem;

static void *sem_waiter(void *p)
{
	int *started = p;

	STORE(started, 1);
	return rc_ptr(rf_sem_acquire(&bp_sem, ND));
}

static void test_sem(void)
{
	struct gate g = { .sem = &bp_sem, .rounds = SEM_ROUNDS };
	struct rf_sem big;
	struct rf_fiber *f;
	int i, rc = 0, started = 0;

	is_int(rf_sem_init(&bp_sem, -1), -EINVAL, tn("rf_sem_init(-1) -> -EINVAL"));
	is_int(rf_sem_init(&bp_sem, 2), 0, tn("rf_sem_init(2)"));
	is_int(rf_sem_tryacquire(&bp_sem), 0, tn("rf_sem_tryacquire() 1 of 2"));
	is_int(rf_sem_acquire(&bp_sem, ND), 0, tn("rf_sem_acquire() 2 of 2"));
	is_int(rf_sem_tryacquire(&bp_sem), -EAGAIN, tn("rf_sem_tryacquire() 3 of 2 -> -EAGAIN"));
	is_int(rf_sem_acquire(&bp_sem, after_ms(2)), -ETIMEDOUT,
	       tn("rf_sem_acquire() 3 of 2 with a deadline -> -ETIMEDOUT"));
	is_int(rf_sem_release(&bp_sem), 0, tn("rf_sem_release()"));
	is_int(rf_sem_release(&bp_sem), 0, tn("rf_sem_release()"));

	/* a release hands its permit to the waiter, not to whoever comes next */
	is_int(rf_sem_init(&bp_sem, 0), 0, tn("rf_sem_init(0)"));
	f = spawn_started(spawn_here, sem_waiter, &started, &started);
	is_int(rf_sem_release(&bp_sem), 0, tn("rf_sem_release() with a waiter"));
	is_int(rf_sem_tryacquire(&bp_sem), -EAGAIN,
	       tn("the releaser cannot take the permit back: the waiter has it"));
	is_int(join_rc(f), 0, tn("the waiter's rf_sem_acquire() -> 0"));

	/* backpressure: at most SEM_N inside */
	is_int(rf_sem_init(&bp_sem, SEM_N), 0, tn("rf_sem_init(%d)", SEM_N));
	rc = gate_run(&g, SEM_FIBERS);
	is_int(rc, 0, tn("%d fibers on both workers acquired and released", SEM_FIBERS));
	is_int(LOAD(&g.entries), SEM_FIBERS * SEM_ROUNDS, tn("every round entered"));
	ok(LOAD(&g.max) >= 1 && LOAD(&g.max) <= SEM_N, "%s",
	   tn("never more than %d inside (at most %d were)", SEM_N, LOAD(&g.max)));
	for (i = 0; i < SEM_N; i++)
		rc |= rf_sem_tryacquire(&bp_sem);
	is_int(rc, 0, tn("all %d permits came back", SEM_N));
	is_int(rf_sem_tryacquire(&bp_sem), -EAGAIN, tn("and no more"));

	is_int(rf_sem_init(&big, INT64_MAX), 0, tn("rf_sem_init(INT64_MAX)"));
	is_int(rf_sem_release(&big), -EOVERFLOW,
	       tn("rf_sem_release() past INT64_MAX -> -EOVERFLOW"));
}

/* ------------------------------------------------------------- wait group */

static struct rf_waitgroup wg;
static int wg_finished;

static void *wg_task(void *p)
{
	rf_sleep(after_ms(1));
	INC(&wg_finished);
	return rc_ptr(rf_wg_done(&wg));
}

static void *wg_waiter(void *p)
{
	int rc = rf_wg_wait(&wg, ND);

	/* every task finished before any waiter returned */
	return rc_ptr(rc ? rc : LOAD(&wg_finished) == 3 ? 0 : -10006);
}

static void test_waitgroup(void)
{
	struct rf_fiber *t[3], *w[2];
	int i, rc = 0;

	rf_wg_init(&wg);
	STORE(&wg_finished, 0);
	is_int(rf_wg_wait(&wg, ND), 0, tn("rf_wg_wait() at zero -> 0"));
	is_int(rf_wg_done(&wg), -EINVAL, tn("rf_wg_done() at zero -> -EINVAL"));
	is_int(rf_wg_add(&wg, 2), 0, tn("rf_wg_add(2)"));
	is_int(rf_wg_add(&wg, -3), -EINVAL, tn("rf_wg_add(-3) at 2 -> -EINVAL"));
	is_int(rf_wg_add(&wg, INT64_MAX), -EINVAL, tn("rf_wg_add(INT64_MAX) at 2 -> -EINVAL"));
	is_int(rf_wg_wait(&wg, after_ms(2)), -ETIMEDOUT, tn("rf_wg_wait() at 2 -> -ETIMEDOUT"));
	is_int(rf_wg_add(&wg, -1), 0, tn("rf_wg_add(-1): the count was unchanged by the errors"));
	is_int(rf_wg_done(&wg), 0, tn("rf_wg_done() to zero"));
	is_int(rf_wg_wait(&wg, ND), 0, tn("rf_wg_wait() -> 0"));

	is_int(rf_wg_add(&wg, 3), 0, tn("rf_wg_add(3)"));
	w[0] = spawn_other(wg_waiter, NULL);
	w[1] = spawn_here(wg_waiter, NULL);
	for (i = 0; i < 3; i++)
		t[i] = spawn_spread(i, wg_task, NULL);
	is_int(rf_wg_wait(&wg, ND), 0, tn("rf_wg_wait() for 3 tasks on both workers"));
	is_int(LOAD(&wg_finished), 3, tn("all 3 had finished"));
	rc |= join_all(t, 3);
	is_int(rc, 0, tn("every rf_wg_done() -> 0"));
	rc = join_rc(w[0]) | join_rc(w[1]);
	is_int(rc, 0, tn("both other waiters woke, after the last task"));
}

/* ------------------------------------------------------------------ event */

static struct rf_event ev;

struct ev_arg {
	int started;
};

static void *ev_waiter(void *p)
{
	struct ev_arg *a = p;

	STORE(&a->started, 1);
	return rc_ptr(rf_event_wait(&ev, ND));
}

static void test_event(void)
{
	struct ev_arg a[4];
	struct rf_fiber *f[4];
	int i, rc = 0;

	rf_event_init(&ev);
	is_int(rf_event_is_set(&ev), 0, tn("a new event is not set"));
	is_int(rf_event_wait(&ev, after_ms(2)), -ETIMEDOUT, tn("rf_event_wait() -> -ETIMEDOUT"));
	is_int(rf_event_set(&ev), 0, tn("rf_event_set()"));
	is_int(rf_event_is_set(&ev), 1, tn("set"));
	is_int(rf_event_wait(&ev, ND), 0, tn("rf_event_wait() on a set event -> 0"));
	is_int(rf_event_set(&ev), 0, tn("rf_event_set() again"));
	is_int(rf_event_clear(&ev), 0, tn("rf_event_clear()"));
	is_int(rf_event_is_set(&ev), 0, tn("cleared"));
	is_int(rf_event_wait(&ev, after_ms(1)), -ETIMEDOUT,
	       tn("rf_event_wait() after clear -> -ETIMEDOUT"));

	/* every waiter wakes, even when cleared right after */
	for (i = 0; i < 4; i++) {
		a[i] = (struct ev_arg){ 0 };
		f[i] = i % 2 ? spawn_other(ev_waiter, &a[i]) : spawn_here(ev_waiter, &a[i]);
		if (f[i])
			wait_flag(&a[i].started);
	}
	rf_sleep(after_ms(1));
	is_int(rf_event_set(&ev), 0, tn("rf_event_set() with 4 waiters"));
	if (!other)	/* same worker: all of them are parked, none has run yet */
		is_int(rf_event_clear(&ev), 0, tn("rf_event_clear() before they run"));
	rc |= join_all(f, 4);
	is_int(rc, 0, tn("4 waiters on both workers woke"));
}

/* --------------------------------------------------------------- channels */

static void test_chan_buffered(void)
{
	struct rf_chan *ch = NULL;
	void *v = NULL;
	int x, y, z;

	if (rf_chan_create(&ch, 2) != 0) {
		ok(0, "%s", tn("rf_chan_create(2)"));
		return;
	}
	is_int(rf_chan_tryrecv(ch, &v), -EAGAIN, tn("rf_chan_tryrecv() of an empty channel"));
	is_int(rf_chan_recv(ch, &v, after_ms(2)), -ETIMEDOUT,
	       tn("rf_chan_recv() of an empty channel -> -ETIMEDOUT"));
	is_int(rf_chan_trysend(ch, &x), 0, tn("rf_chan_trysend() 1 of 2"));
	is_int(rf_chan_send(ch, &y, ND), 0, tn("rf_chan_send() 2 of 2"));
	is_int(rf_chan_trysend(ch, &z), -EAGAIN, tn("rf_chan_trysend() 3 of 2 -> -EAGAIN"));
	is_int(rf_chan_send(ch, &z, after_ms(2)), -ETIMEDOUT,
	       tn("rf_chan_send() 3 of 2 -> -ETIMEDOUT"));
	is_int(rf_chan_recv(ch, &v, ND), 0, tn("rf_chan_recv()"));
	ok(v == &x, "%s", tn("first in, first out"));
	is_int(rf_chan_tryrecv(ch, &v), 0, tn("rf_chan_tryrecv()"));
	ok(v == &y, "%s", tn("second"));
	is_int(rf_chan_tryrecv(ch, &v), -EAGAIN, tn("nothing more: the timed-out send left none"));

	/* close: sends fail, receives drain, then fail */
	is_int(rf_chan_trysend(ch, &x), 0, tn("send"));
	is_int(rf_chan_trysend(ch, &y), 0, tn("send"));
	is_int(rf_chan_close(ch), 0, tn("rf_chan_close()"));
	is_int(rf_chan_close(ch), -EPIPE, tn("rf_chan_close() again -> -EPIPE"));
	is_int(rf_chan_send(ch, &z, ND), -EPIPE, tn("rf_chan_send() after close -> -EPIPE"));
	is_int(rf_chan_trysend(ch, &z), -EPIPE, tn("rf_chan_trysend() after close -> -EPIPE"));
	v = NULL;
	is_int(rf_chan_recv(ch, &v, ND), 0, tn("rf_chan_recv() after close drains"));
	ok(v == &x, "%s", tn("the first value"));
	is_int(rf_chan_tryrecv(ch, &v), 0, tn("rf_chan_tryrecv() after close drains"));
	ok(v == &y, "%s", tn("the second value"));
	is_int(rf_chan_recv(ch, &v, ND), -EPIPE, tn("rf_chan_recv() closed and drained -> -EPIPE"));
	is_int(rf_chan_tryrecv(ch, &v), -EPIPE,
	       tn("rf_chan_tryrecv() closed and drained -> -EPIPE"));
	is_int(rf_chan_destroy(ch), 0, tn("rf_chan_destroy()"));
}

struct chan_arg {
	struct rf_chan *ch;
	int id;
	int n;
	int started;
	int done;		/* atomic: the call returned */
	void *got;
};

#define PRODUCERS 3
#define PER_PRODUCER 300

/* Values are id * 100000 + sequence number, from 1. */
static void *producer(void *p)
{
	struct chan_arg *a = p;
	int i, rc;

	for (i = 1; i <= a->n; i++) {
		rc = rf_chan_send(a->ch, (void *)(intptr_t)(a->id * 100000 + i), ND);
		if (rc)
			return rc_ptr(rc);
	}
	return NULL;
}

struct consumer_arg {
	struct rf_chan *ch;
	long sum;
	int count;
	int bad_order;
	int last[PRODUCERS];
};

static void *consumer(void *p)
{
	struct consumer_arg *c = p;
	void *v;
	int rc;

	while ((rc = rf_chan_recv(c->ch, &v, ND)) == 0) {
		long x = (long)(intptr_t)v;
		int id = (int)(x / 100000), seq = (int)(x % 100000);

		if (id < 0 || id >= PRODUCERS || seq <= c->last[id])
			c->bad_order++;
		else
			c->last[id] = seq;
		c->sum += x;
		c->count++;
	}
	return rc_ptr(rc == -EPIPE ? 0 : rc);
}

/* Producers and consumers on both workers; per-producer order is kept. */
static void test_chan_many(unsigned int capacity)
{
	struct chan_arg pa[PRODUCERS];
	struct consumer_arg ca[2];
	struct rf_fiber *pf[PRODUCERS], *cf[2];
	struct rf_chan *ch = NULL;
	long sum = 0, want = 0;
	int i, rc = 0, count = 0, bad = 0;

	if (rf_chan_create(&ch, capacity) != 0) {
		ok(0, "%s", tn("rf_chan_create(%u)", capacity));
		return;
	}
	for (i = 0; i < 2; i++) {
		ca[i] = (struct consumer_arg){ .ch = ch };
		cf[i] = i ? spawn_other(consumer, &ca[i]) : spawn_any(0, consumer, &ca[i]);
	}
	for (i = 0; i < PRODUCERS; i++) {
		pa[i] = (struct chan_arg){ .ch = ch, .id = i, .n = PER_PRODUCER };
		pf[i] = spawn_spread(i, producer, &pa[i]);
		want += (long)i * 100000 * PER_PRODUCER +
			(long)PER_PRODUCER * (PER_PRODUCER + 1) / 2;
	}
	rc |= join_all(pf, PRODUCERS);
	is_int(rc, 0, tn("capacity %u: %d producers sent %d values each", capacity, PRODUCERS,
			 PER_PRODUCER));
	is_int(rf_chan_close(ch), 0, tn("capacity %u: close", capacity));
	rc = 0;
	for (i = 0; i < 2; i++) {
		rc |= join_rc(cf[i]);
		sum += ca[i].sum;
		count += ca[i].count;
		bad += ca[i].bad_order;
	}
	is_int(rc, 0, tn("capacity %u: consumers ended with -EPIPE after the close", capacity));
	is_int(count, PRODUCERS * PER_PRODUCER, tn("capacity %u: every value received once",
						   capacity));
	is_int(sum, want, tn("capacity %u: the values are the ones sent", capacity));
	is_int(bad, 0, tn("capacity %u: each producer's values arrived in order", capacity));
	is_int(rf_chan_destroy(ch), 0, tn("capacity %u: rf_chan_destroy()", capacity));
}

static void *chan_sender(void *p)
{
	struct chan_arg *a = p;
	int rc;

	STORE(&a->started, 1);
	rc = rf_chan_send(a->ch, a->got, ND);
	STORE(&a->done, 1);
	return rc_ptr(rc);
}

static void *chan_receiver(void *p)
{
	struct chan_arg *a = p;
	int rc;

	STORE(&a->started, 1);
	rc = rf_chan_recv(a->ch, &a->got, ND);
	STORE(&a->done, 1);
	return rc_ptr(rc);
}

/* Capacity 0: a send completes only when a receiver takes the value. */
static void test_chan_rendezvous(void)
{
	struct chan_arg a = { 0 }, b = { 0 };
	struct rf_chan *ch = NULL;
	struct rf_fiber *f;
	void *v = NULL;
	int x;

	if (rf_chan_create(&ch, 0) != 0) {
		ok(0, "%s", tn("rf_chan_create(0)"));
		return;
	}
	a = (struct chan_arg){ .ch = ch, .got = &x };
	f = spawn_started(spawn_here, chan_sender, &a, &a.started);	/* parked in its send */
	rf_sleep(after_ms(2));
	is_int(LOAD(&a.done), 0, tn("rendezvous: the send waits for a receiver"));
	is_int(rf_chan_destroy(ch), -EBUSY, tn("rf_chan_destroy() while a sender waits -> -EBUSY"));
	is_int(rf_chan_recv(ch, &v, ND), 0, tn("rendezvous: rf_chan_recv()"));
	ok(v == &x, "%s", tn("rendezvous: the sender's value"));
	is_int(join_rc(f), 0, tn("rendezvous: and then the send returned 0"));

	b = (struct chan_arg){ .ch = ch };
	f = spawn_started(spawn_here, chan_receiver, &b, &b.started);
	is_int(rf_chan_trysend(ch, &x), 0,
	       tn("rendezvous: rf_chan_trysend() to a waiting receiver"));
	is_int(join_rc(f), 0, tn("rendezvous: the receiver got it"));
	ok(b.got == &x, "%s", tn("rendezvous: the value"));

	/* close wakes a waiting receiver and a waiting sender with -EPIPE */
	b = (struct chan_arg){ .ch = ch };
	f = spawn_started(spawn_other, chan_receiver, &b, &b.started);
	rf_sleep(after_ms(1));
	is_int(rf_chan_close(ch), 0, tn("close with a receiver waiting"));
	is_int(join_rc(f), -EPIPE, tn("the waiting receiver -> -EPIPE"));
	is_int(rf_chan_destroy(ch), 0, tn("rf_chan_destroy()"));

	if (rf_chan_create(&ch, 0) != 0)
		return;
	a = (struct chan_arg){ .ch = ch, .got = &x };
	f = spawn_started(spawn_other, chan_sender, &a, &a.started);
	rf_sleep(after_ms(1));
	is_int(rf_chan_close(ch), 0, tn("close with a sender waiting"));
	is_int(join_rc(f), -EPIPE, tn("the waiting sender -> -EPIPE"));
	is_int(rf_chan_tryrecv(ch, &v), -EPIPE, tn("its value was not delivered"));
	is_int(rf_chan_destroy(ch), 0, tn("rf_chan_destroy()"));
}

/* A sender waiting on a full channel completes when a slot frees up. */
static void test_chan_full(void)
{
	struct chan_arg a;
	struct rf_chan *ch = NULL;
	struct rf_fiber *f;
	void *v = NULL;
	int x, y;

	if (rf_chan_create(&ch, 1) != 0) {
		ok(0, "%s", tn("rf_chan_create(1)"));
		return;
	}
	is_int(rf_chan_send(ch, &x, ND), 0, tn("fill the slot"));
	a = (struct chan_arg){ .ch = ch, .got = &y };
	f = spawn_started(spawn_here, chan_sender, &a, &a.started);	/* parked: the channel is full */
	is_int(rf_chan_tryrecv(ch, &v), 0, tn("receive"));
	ok(v == &x, "%s", tn("the buffered value"));
	is_int(rf_chan_tryrecv(ch, &v), 0, tn("receive the waiting sender's value, moved in"));
	ok(v == &y, "%s", tn("its value"));
	is_int(join_rc(f), 0, tn("its send returned 0"));
	is_int(rf_chan_destroy(ch), 0, tn("rf_chan_destroy()"));
}

/* ----------------------------------------------------------------- groups */

static int grp_counter;
static struct rf_event grp_never;	/* never set */

static int task_count(void *p)
{
	if ((intptr_t)p % 2)
		rf_sleep(after_ms(1));
	else
		rf_yield();
	INC(&grp_counter);
	return 0;
}

struct member {
	int rc;			/* what its wait returned; atomic */
	int started;
};

/* Waits for what never happens; records how that ended, returns it. */
static int task_wait_forever(void *p)
{
	struct member *m = p;
	int rc;

	STORE(&m->started, 1);
	rc = rf_event_wait(&grp_never, ND);
	STORE(&m->rc, rc);
	return rc;
}

/*
 * A new group with @deadline and @n members that wait forever (m[0..n-1],
 * spawned with @attr), checked as @what; NULL if the group could not be
 * made.
 */
static struct rf_group *group_of_waiters(int64_t deadline, struct member *m, int n,
					 const struct rf_spawn_attr *attr, const char *what)
{
	struct rf_group *g = new_group(deadline, "rf_group_create()");
	int i, rc = 0;

	if (!g)
		return NULL;
	for (i = 0; i < n && !rc; i++)
		rc = rf_group_spawn(g, task_wait_forever, &m[i], attr);
	is_int(rc, 0, tn("rf_group_spawn() %d members that %s", n, what));
	return g;
}

static int task_fail(void *p)
{
	rf_sleep(after_ms(1));
	return -EIO;
}

static int task_exit(void *p)
{
	rf_exit(rc_ptr(-ENOTCONN));
	return 0;
}

struct spawner_arg {
	struct rf_group *g;
	int n;
};

/* A fiber on the other worker spawning members into a group it did not create. */
static void *group_spawner(void *p)
{
	struct spawner_arg *s = p;
	int i, rc = 0;

	for (i = 0; i < s->n && !rc; i++)
		rc = rf_group_spawn(s->g, task_count, (void *)(intptr_t)i, NULL);
	return rc_ptr(rc);
}

static void *wait_not_creator(void *p)
{
	return rc_ptr(rf_group_wait(p));
}

static void test_group_success(void)
{
	struct spawner_arg s;
	struct rf_group *g = NULL;
	int i, rc = 0;

	STORE(&grp_counter, 0);
	g = new_group(ND, "rf_group_create()");
	if (!g)
		return;
	for (i = 0; i < 8 && !rc; i++)
		rc = rf_group_spawn(g, task_count, (void *)(intptr_t)i, NULL);
	is_int(rc, 0, tn("rf_group_spawn() 8 members"));
	s = (struct spawner_arg){ .g = g, .n = 4 };
	is_int(join_rc(spawn_other(group_spawner, &s)), 0,
	       tn("4 more members spawned from worker %u", other));
	is_int(join_rc(spawn_here(wait_not_creator, g)), -EPERM,
	       tn("rf_group_wait() by another fiber than the creator -> -EPERM"));
	is_int(rf_group_wait(g), 0, tn("rf_group_wait() when all succeed -> 0"));
	is_int(LOAD(&grp_counter), 12, tn("all 12 members ran to the end"));
}

static void test_group_failure(void)
{
	struct member m[3] = { { 0 } };
	struct rf_group *g = group_of_waiters(ND, m, 3, NULL, "wait");
	int i;

	if (!g)
		return;
	is_int(rf_group_spawn(g, task_fail, NULL, NULL), 0,
	       tn("rf_group_spawn() a member that fails"));
	is_int(rf_group_wait(g), -EIO, tn("rf_group_wait() -> the failure, -EIO"));
	for (i = 0; i < 3; i++)
		is_int(LOAD(&m[i].rc), -ECANCELED, tn("member %d was cancelled -> -ECANCELED", i));
}

static void test_group_exit(void)
{
	struct rf_group *g = NULL;

	g = new_group(ND, "rf_group_create()");
	if (!g)
		return;
	is_int(rf_group_spawn(g, task_exit, NULL, NULL), 0,
	       tn("spawn a member that calls rf_exit()"));
	is_int(rf_group_wait(g), -ENOTCONN,
	       tn("rf_group_wait() -> its rf_exit() value as its result"));
}

static void test_group_cancel(void)
{
	struct rf_spawn_attr pinned = { .pinned = 1 };
	struct member m[3] = { { 0 } };
	struct rf_group *g;
	int i;

	/* running members */
	g = group_of_waiters(ND, m, 2, NULL, "wait");
	if (!g)
		return;
	wait_flag(&m[0].started);
	wait_flag(&m[1].started);
	is_int(rf_group_cancel(g), 0, tn("rf_group_cancel()"));
	is_int(rf_group_cancel(g), 0, tn("rf_group_cancel() again"));
	is_int(rf_group_spawn(g, task_count, NULL, NULL), -ECANCELED,
	       tn("rf_group_spawn() into a cancelled group -> -ECANCELED"));
	is_int(rf_group_wait(g), -ECANCELED,
	       tn("rf_group_wait() of a cancelled group -> -ECANCELED"));
	for (i = 0; i < 2; i++)
		is_int(LOAD(&m[i].rc), -ECANCELED, tn("member %d -> -ECANCELED", i));

	/* members that had not started yet when the group was cancelled */
	memset(m, 0, sizeof(m));
	g = group_of_waiters(ND, m, 3, &pinned, "are pinned here");
	if (!g)
		return;
	is_int(LOAD(&m[0].started), 0, tn("they have not started (we did not yield)"));
	is_int(rf_group_cancel(g), 0, tn("rf_group_cancel() before they start"));
	is_int(rf_group_wait(g), -ECANCELED, tn("rf_group_wait() -> -ECANCELED"));
	for (i = 0; i < 3; i++)
		is_int(LOAD(&m[i].rc), -ECANCELED,
		       tn("member %d, started after the cancel, -> -ECANCELED", i));
}

struct creator_arg {
	struct member m[2];
	int waiting;
};

static void *cancelled_creator(void *p)
{
	struct creator_arg *c = p;
	struct rf_group *g = NULL;
	int rc;

	rc = rf_group_create(&g, ND);
	if (rc)
		return rc_ptr(-10007);
	rc = rf_group_spawn(g, task_wait_forever, &c->m[0], NULL);
	rc |= rf_group_spawn(g, task_wait_forever, &c->m[1], NULL);
	STORE(&c->waiting, 1);
	rc = rc ? -10008 : rf_group_wait(g);
	return rc_ptr(rc);
}

/* The creator cancelled while in rf_group_wait(): members are cancelled. */
static void test_group_creator_cancelled(void)
{
	struct creator_arg c = { 0 };
	struct rf_fiber *f;

	f = spawn_here(cancelled_creator, &c);
	if (f) {
		wait_flag(&c.waiting);
		wait_flag(&c.m[0].started);
		wait_flag(&c.m[1].started);
		is_int(rf_cancel(f), 0, tn("rf_cancel() the creator in rf_group_wait()"));
	}
	is_int(join_rc(f), -ECANCELED, tn("its rf_group_wait() -> -ECANCELED"));
	is_int(LOAD(&c.m[0].rc), -ECANCELED, tn("member 0 -> -ECANCELED"));
	is_int(LOAD(&c.m[1].rc), -ECANCELED, tn("member 1 -> -ECANCELED"));
}

static void test_group_deadline(void)
{
	struct member m[2] = { { 0 } };
	struct rf_group *g;
	int i;

	g = group_of_waiters(after_ms(10), m, 2, NULL, "wait forever");
	if (!g)
		return;
	is_int(rf_group_wait(g), -ETIMEDOUT, tn("rf_group_wait() at the deadline -> -ETIMEDOUT"));
	for (i = 0; i < 2; i++)
		ok(LOAD(&m[i].rc) == -ETIMEDOUT || LOAD(&m[i].rc) == -ECANCELED, "%s",
		   tn("member %d ended by the deadline (%d)", i, LOAD(&m[i].rc)));

	/* a group whose members finish in time */
	if (rf_group_create(&g, after_ms(10000)) != 0)
		return;
	is_int(rf_group_spawn(g, task_count, NULL, NULL), 0, tn("spawn a quick member"));
	is_int(rf_group_wait(g), 0, tn("done before the deadline -> 0"));
}

struct capped_arg {
	int rc;
	struct rf_event done;
};

static int task_capped(void *p)
{
	struct capped_arg *c = p;
	int rc = rf_event_wait(&grp_never, ND);

	STORE(&c->rc, rc);
	rf_event_set(&c->done);
	return rc;
}

/*
 * A member's own blocking call with no deadline ends at the group's, while
 * nobody waits on the group yet.
 */
static void test_group_deadline_caps_calls(void)
{
	struct capped_arg c = { .rc = 1 };
	struct rf_group *g = NULL;
	int rc;

	rf_event_init(&c.done);
	g = new_group(after_ms(10), "rf_group_create(deadline)");
	if (!g)
		return;
	is_int(rf_group_spawn(g, task_capped, &c, NULL), 0,
	       tn("spawn a member that waits forever"));
	rc = rf_event_wait(&c.done, after_ms(10000));
	is_int(rc, 0, tn("the member's wait ended without anyone waiting on the group"));
	if (rc)
		rf_group_cancel(g);
	is_int(LOAD(&c.rc), -ETIMEDOUT, tn("its rf_event_wait(RF_NO_DEADLINE) -> -ETIMEDOUT"));
	is_int(rf_group_wait(g), -ETIMEDOUT, tn("rf_group_wait() -> -ETIMEDOUT"));
}

struct nest_arg {
	int64_t inner_deadline;
	int inner_rc;
	struct member m;
	int tolerate;		/* the outer member returns 0 whatever happens */
};

static int task_nest(void *p)
{
	struct nest_arg *n = p;
	struct rf_group *inner = NULL;
	int rc;

	rc = rf_group_create(&inner, n->inner_deadline);
	if (rc)
		return rc;
	rc = rf_group_spawn(inner, task_wait_forever, &n->m, NULL);
	if (rc) {
		rf_group_cancel(inner);
		rf_group_wait(inner);
		return rc;
	}
	n->inner_rc = rf_group_wait(inner);
	return n->tolerate ? 0 : n->inner_rc;
}

static void test_group_nested(void)
{
	struct nest_arg n;
	struct rf_group *g = NULL;

	/* the outer deadline bounds an inner group that asked for a later one */
	n = (struct nest_arg){ .inner_deadline = after_ms(100000) };
	g = new_group(after_ms(10), "rf_group_create(outer)");
	if (!g)
		return;
	is_int(rf_group_spawn(g, task_nest, &n, NULL), 0,
	       tn("spawn a member making an inner group"));
	is_int(rf_group_wait(g), -ETIMEDOUT, tn("outer rf_group_wait() -> -ETIMEDOUT"));
	ok(n.inner_rc == -ETIMEDOUT || n.inner_rc == -ECANCELED, "%s",
	   tn("the inner group ended at the outer deadline (%d)", n.inner_rc));
	ok(LOAD(&n.m.rc) == -ETIMEDOUT || LOAD(&n.m.rc) == -ECANCELED, "%s",
	   tn("and so did its member (%d)", LOAD(&n.m.rc)));

	/* an inner deadline ends only the inner group */
	n = (struct nest_arg){ .inner_deadline = after_ms(5), .tolerate = 1 };
	if (rf_group_create(&g, after_ms(100000)) != 0)
		return;
	is_int(rf_group_spawn(g, task_nest, &n, NULL), 0,
	       tn("spawn a member making an inner group"));
	is_int(rf_group_wait(g), 0, tn("outer rf_group_wait() -> 0 (its member returned 0)"));
	is_int(n.inner_rc, -ETIMEDOUT, tn("the inner group -> -ETIMEDOUT"));
	ok(LOAD(&n.m.rc) == -ETIMEDOUT || LOAD(&n.m.rc) == -ECANCELED, "%s",
	   tn("its member ended at the inner deadline (%d)", LOAD(&n.m.rc)));
}

struct expired_arg {
	struct rf_mutex m;
	struct rf_cond c;
	int started;
	int released;		/* atomic: the test let go of the mutex */
	int released_seen;
	int held;
};

/* In a group whose deadline passes while it waits on a condition. */
static int task_expired_cond(void *p)
{
	struct expired_arg *e = p;
	int rc;

	rc = rf_mutex_lock(&e->m, ND);
	if (rc)
		return rc;
	STORE(&e->started, 1);
	rc = rf_cond_wait(&e->c, &e->m, ND);
	e->released_seen = LOAD(&e->released);
	e->held = rf_mutex_trylock(&e->m) == -EBUSY;
	rf_mutex_unlock(&e->m);
	return rc;
}

/*
 * The group's deadline ends a member's rf_cond_wait(RF_NO_DEADLINE), which
 * still returns only with the mutex, even though the fiber's every wait is
 * now past its deadline.
 */
static void test_group_deadline_cond(void)
{
	struct rf_spawn_attr pinned = { .pinned = 1 };
	struct expired_arg e = { .m = RF_MUTEX_INIT, .c = RF_COND_INIT };
	struct rf_group *g = NULL;

	g = new_group(after_ms(5), "rf_group_create(deadline)");
	if (!g)
		return;
	is_int(rf_group_spawn(g, task_expired_cond, &e, &pinned), 0,
	       tn("spawn a member that waits on a condition"));
	wait_flag(&e.started);
	is_int(rf_mutex_lock(&e.m, ND), 0, tn("take the mutex it waits with"));
	rf_sleep(after_ms(20));		/* its deadline passes: it wants the mutex */
	STORE(&e.released, 1);
	is_int(rf_mutex_unlock(&e.m), 0, tn("let it go"));
	is_int(rf_group_wait(g), -ETIMEDOUT, tn("rf_group_wait() -> -ETIMEDOUT"));
	ok(e.released_seen, "%s", tn("its rf_cond_wait() returned only once it had the mutex"));
	ok(e.held, "%s", tn("and it held the mutex"));
}

static void *sleep_30ms(void *p)
{
	usleep(30 * 1000);
	return NULL;
}

/* Ignores cancellation for a while: rf_blocking() runs to completion. */
static int task_stubborn(void *p)
{
	int rc = rf_blocking(sleep_30ms, NULL, NULL);

	STORE((int *)p, 1);
	return rc;
}

static int task_expired_creator(void *p)
{
	struct rf_group *inner = NULL;
	int rc;

	rf_sleep(after_ms(10));	/* past the outer deadline: -ETIMEDOUT */
	rc = rf_group_create(&inner, ND);
	if (rc)
		return rc;
	rc = rf_group_spawn(inner, task_stubborn, p, NULL);
	if (rc) {
		rf_group_wait(inner);
		return rc;
	}
	rc = rf_group_wait(inner);
	/* it may only return once its member has */
	return rc == -ETIMEDOUT && LOAD((int *)p) ? 0 : rc ? rc : -10011;
}

/*
 * A creator past its own deadline still waits for every member of the
 * group it made, however long they take.
 */
static void test_group_expired_creator(void)
{
	struct rf_group *g = NULL;
	int finished = 0;

	g = new_group(after_ms(5), "rf_group_create(deadline)");
	if (!g)
		return;
	is_int(rf_group_spawn(g, task_expired_creator, &finished, NULL), 0,
	       tn("spawn a member that makes a group after the deadline"));
	is_int(rf_group_wait(g), -ETIMEDOUT, tn("rf_group_wait() -> -ETIMEDOUT"));
	is_int(LOAD(&finished), 1,
	       tn("the inner rf_group_wait() -> -ETIMEDOUT, after its member finished"));
}

/* ------------------------------------------- wake-ups from a plain thread */

static struct rf_mutex th_mx;
static struct rf_sem th_sem;
static struct rf_event th_ev;
static struct rf_waitgroup th_wg;
static struct rf_cond th_cv;
static struct rf_mutex th_cv_mx;
static struct rf_chan *th_ch;
static struct rf_group *th_group;
static int th_parked;			/* atomic: fibers about to wait */
static int th_cv_flag;			/* under th_cv_mx */

static void *th_waiter(void *p)
{
	intptr_t which = (intptr_t)p;
	void *v = NULL;
	int rc = -10009;

	/* about to wait; the rf_cond_wait() one counts itself once it holds the mutex */
	if (which != 5)
		INC(&th_parked);
	switch (which) {
	case 0:
		rc = rf_mutex_lock(&th_mx, ND);	/* held by the test fiber */
		if (rc == 0)
			rc = rf_mutex_unlock(&th_mx);
		break;
	case 1:
		rc = rf_sem_acquire(&th_sem, ND);
		break;
	case 2:
		rc = rf_event_wait(&th_ev, ND);
		break;
	case 3:
		rc = rf_wg_wait(&th_wg, ND);
		break;
	case 4:
		rc = rf_chan_recv(th_ch, &v, ND);
		if (rc == 0 && v != &th_parked)
			rc = -10010;
		break;
	case 5:
		rc = rf_mutex_lock(&th_cv_mx, ND);
		INC(&th_parked);
		while (rc == 0 && !th_cv_flag)
			rc = rf_cond_wait(&th_cv, &th_cv_mx, ND);
		rf_mutex_unlock(&th_cv_mx);
		break;
	}
	return rc_ptr(rc);
}

/* Polls of 100 us: give up after 5 s, so that a failure cannot hang. */
#define POLLS 50000

static void *plain_thread(void *p)
{
	int *rcs = p;
	int n;

	for (n = 0; LOAD(&th_parked) < 6 && n < POLLS; n++)
		usleep(100);
	usleep(2000);	/* most likely all parked by now; correct either way */
	rcs[0] = rf_mutex_unlock(&th_mx);
	rcs[1] = rf_sem_release(&th_sem);
	rcs[2] = rf_event_set(&th_ev);
	rcs[3] = rf_wg_done(&th_wg);
	/* until the receiver waits */
	for (n = 0; (rcs[4] = rf_chan_trysend(th_ch, &th_parked)) == -EAGAIN && n < POLLS; n++)
		usleep(100);
	/* rf_mutex_lock() needs a fiber: a thread sets the flag through trylock */
	for (n = 0; (rcs[5] = rf_mutex_trylock(&th_cv_mx)) != 0 && n < POLLS; n++)
		usleep(100);
	if (rcs[5] == 0) {
		th_cv_flag = 1;
		rcs[5] = rf_cond_signal(&th_cv);
		rf_mutex_unlock(&th_cv_mx);
	}
	rcs[6] = rf_group_spawn(th_group, task_nothing, NULL, NULL) == -EPERM ? 0 : 1;
	rcs[7] = rf_group_wait(th_group) == -EPERM ? 0 : 1;
	rcs[8] = rf_group_cancel(th_group);
	return NULL;
}

static int ticking;			/* atomic: ticker() runs while set */

/*
 * Keeps a timer in flight.  The runtime's deadlock detector sees fibers
 * parked with nothing in flight on any worker as a deadlock and cancels
 * them: it cannot know that a plain thread is about to wake them.
 */
static void *ticker(void *p)
{
	while (LOAD(&ticking))
		rf_sleep(after_ms(1));
	return NULL;
}

static void test_plain_thread_wakes(void)
{
	struct rf_fiber *f[6], *tick;
	int rcs[9] = { 1, 1, 1, 1, 1, 1, 1, 1, 1 };
	struct member m = { 0 };
	pthread_t th;
	intptr_t i;
	int rc = 0;

	rf_mutex_init(&th_mx);
	rf_sem_init(&th_sem, 0);
	rf_event_init(&th_ev);
	rf_wg_init(&th_wg);
	rf_wg_add(&th_wg, 1);
	rf_cond_init(&th_cv);
	rf_mutex_init(&th_cv_mx);
	th_cv_flag = 0;
	STORE(&th_parked, 0);
	if (rf_chan_create(&th_ch, 0) != 0) {
		ok(0, "%s", tn("rf_chan_create()"));
		return;
	}
	is_int(rf_mutex_lock(&th_mx, ND), 0, tn("lock the mutex the thread will unlock"));
	if (rf_group_create(&th_group, ND) != 0) {
		ok(0, "%s", tn("rf_group_create()"));
		return;
	}
	is_int(rf_group_spawn(th_group, task_wait_forever, &m, NULL), 0,
	       tn("a group member the thread will cancel"));
	STORE(&ticking, 1);
	tick = spawn_any(0, ticker, NULL);
	for (i = 0; i < 6; i++)
		f[i] = i % 2 ? spawn_other(th_waiter, (void *)i) : spawn_here(th_waiter, (void *)i);
	if (pthread_create(&th, NULL, plain_thread, rcs) != 0) {
		ok(0, "%s", tn("pthread_create()"));
		return;
	}
	for (i = 0; i < 6; i++)
		is_int(join_rc(f[i]), 0, tn("fiber %d woken by a plain thread", (int)i));
	pthread_join(th, NULL);	/* it is done, or gave up: it made the last wake-up */
	is_int(rf_group_wait(th_group), -ECANCELED,
	       tn("rf_group_wait() of a group a plain thread cancelled -> -ECANCELED"));
	is_int(LOAD(&m.rc), -ECANCELED, tn("its member -> -ECANCELED"));
	STORE(&ticking, 0);
	join_rc(tick);
	for (i = 0; i < 6; i++)
		rc |= rcs[i];
	is_int(rc, 0, tn("unlock, release, set, done, trysend, signal from a plain thread -> 0"));
	is_int(rcs[6], 0, tn("rf_group_spawn() from a plain thread -> -EPERM"));
	is_int(rcs[7], 0, tn("rf_group_wait() from a plain thread -> -EPERM"));
	is_int(rcs[8], 0, tn("rf_group_cancel() from a plain thread -> 0"));
	rf_chan_destroy(th_ch);
}

/* ------------------------------------------------------------------- runs */

static void *body(void *p)
{
	test_bad_input_in_fiber();
	ops_setup();
	test_try_variants();
	test_ops();
	test_ops_aftermath();
	test_mutex_fifo();
	test_mutex_exclusion();
	test_cond_predicate();
	test_cond_signal();
	test_cond_timeout_relock();
	test_cond_cancelled();
	test_sem();
	test_waitgroup();
	test_event();
	test_chan_buffered();
	test_chan_rendezvous();
	test_chan_full();
	test_chan_many(0);
	test_chan_many(4);
	rf_event_init(&grp_never);
	test_group_success();
	test_group_failure();
	test_group_exit();
	test_group_cancel();
	test_group_creator_cancelled();
	test_group_deadline();
	test_group_deadline_caps_calls();
	test_group_nested();
	test_group_deadline_cond();
	test_group_expired_creator();
	test_plain_thread_wakes();
	return NULL;
}

/* The tests run in a pinned fiber, so that its pinned children run in order. */
static void *main_fiber(void *p)
{
	struct rf_spawn_attr attr = { .name = "body", .pinned = 1 };
	struct rf_fiber *f;
	int rc;

	is_int(rf_worker_count(), (long long)(intptr_t)p, tn("rf_worker_count()"));
	other = rf_worker_count() > 1 ? 1 : 0;
	rc = rf_spawn(&f, body, NULL, &attr);
	is_int(rc, 0, tn("spawn the test body"));
	if (rc == 0)
		is_int(rf_join(f, NULL, ND), 0, tn("join the test body"));
	return NULL;
}

/* Outside any fiber: waiting calls refuse, the others work from any thread. */
static void test_outside_fiber(void)
{
	struct rf_mutex m = RF_MUTEX_INIT;
	struct rf_cond c = RF_COND_INIT;
	struct rf_sem s = RF_SEM_INIT(0);
	struct rf_waitgroup w = RF_WAITGROUP_INIT;
	struct rf_event e = RF_EVENT_INIT;
	struct rf_group *g = NULL;
	struct rf_chan *ch = NULL;
	void *v = NULL;
	int x;

	is_int(rf_mutex_trylock(&m), 0, tn("rf_mutex_trylock() outside a fiber"));
	is_int(rf_mutex_lock(&m, ND), -EPERM, tn("rf_mutex_lock() outside a fiber -> -EPERM"));
	is_int(rf_cond_wait(&c, &m, ND), -EPERM, tn("rf_cond_wait() outside a fiber -> -EPERM"));
	is_int(rf_mutex_trylock(&m), -EBUSY, tn("the mutex is still locked"));
	is_int(rf_mutex_unlock(&m), 0, tn("rf_mutex_unlock() outside a fiber"));
	is_int(rf_cond_signal(&c), 0, tn("rf_cond_signal() outside a fiber"));
	is_int(rf_cond_broadcast(&c), 0, tn("rf_cond_broadcast() outside a fiber"));
	is_int(rf_sem_acquire(&s, ND), -EPERM, tn("rf_sem_acquire() outside a fiber -> -EPERM"));
	is_int(rf_sem_release(&s), 0, tn("rf_sem_release() outside a fiber"));
	is_int(rf_sem_tryacquire(&s), 0, tn("rf_sem_tryacquire() outside a fiber"));
	is_int(rf_wg_add(&w, 1), 0, tn("rf_wg_add() outside a fiber"));
	is_int(rf_wg_wait(&w, ND), -EPERM, tn("rf_wg_wait() outside a fiber -> -EPERM"));
	is_int(rf_wg_done(&w), 0, tn("rf_wg_done() outside a fiber"));
	is_int(rf_event_wait(&e, ND), -EPERM, tn("rf_event_wait() outside a fiber -> -EPERM"));
	is_int(rf_event_set(&e), 0, tn("rf_event_set() outside a fiber"));
	is_int(rf_event_is_set(&e), 1, tn("rf_event_is_set() outside a fiber"));
	is_int(rf_event_clear(&e), 0, tn("rf_event_clear() outside a fiber"));
	is_int(rf_chan_create(&ch, 1), 0, tn("rf_chan_create() outside a fiber"));
	if (ch) {
		is_int(rf_chan_send(ch, &x, ND), -EPERM,
		       tn("rf_chan_send() outside a fiber -> -EPERM"));
		is_int(rf_chan_recv(ch, &v, ND), -EPERM,
		       tn("rf_chan_recv() outside a fiber -> -EPERM"));
		is_int(rf_chan_trysend(ch, &x), 0, tn("rf_chan_trysend() outside a fiber"));
		is_int(rf_chan_tryrecv(ch, &v), 0, tn("rf_chan_tryrecv() outside a fiber"));
		ok(v == &x, "%s", tn("the value"));
		is_int(rf_chan_close(ch), 0, tn("rf_chan_close() outside a fiber"));
		is_int(rf_chan_destroy(ch), 0, tn("rf_chan_destroy() outside a fiber"));
	}
	is_int(rf_group_create(&g, ND), -EPERM, tn("rf_group_create() outside a fiber -> -EPERM"));
}

int main(void)
{
	struct rf_runtime_opts opts = { 0 };
	struct rf_stats st;
	size_t i;
	int rc;

	test_watchdog(120);
	ring_or_skip_all();
	test_config_name = "no runtime";
	test_outside_fiber();
	for (i = 0; i < ARRAY_SIZE(configs); i++) {
		test_config_name = configs[i].name;
		opts.workers = configs[i].workers;
		rc = run_main(&opts, main_fiber, (void *)(intptr_t)configs[i].workers, NULL, &st);
		is_clean_run(rc, &st);
	}
	test_config_name = NULL;
	return done_testing();
}
