// SPDX-License-Identifier: GPL-2.0
/*
 * KUnit tests for rfwake's core (rfwake_core.c), without the device.
 *
 * Each test gets a fresh domain of RFWAKE_TEST_WAITERS ids with a shared
 * page, so it can see when a waiter is parked.  Races are played between
 * kernel threads; io_uring commands are played by struct rfwake_test_async,
 * whose completion callback records what it was given (and may answer, as
 * the worker that reaps the command's CQE would).
 *
 * Nothing may hang, even when a check fails: every wait that a test expects
 * to be woken carries a deadline, threads report their results in their own
 * struct (checked by the test once they finished) instead of calling KUnit,
 * and rfwake_test_exit() stops every thread (kthread_stop() interrupts a
 * sleeping wait) before it destroys the domain.  Anything the core may still
 * point to after a failed assertion (threads, commands) is allocated with
 * kunit_kzalloc(), which is freed only after rfwake_test_exit().
 */
#include <kunit/test.h>

#include <linux/delay.h>
#include <linux/irq_work.h>
#include <linux/kthread.h>
#include <linux/sched.h>
#include <linux/sched/signal.h>
#include <linux/sched/task.h>
#include <linux/wait.h>

#include "rfwake_core.h"
#include "rfwake_watch.h"

#define RFWAKE_TEST_WAITERS	8
#define RFWAKE_TEST_THREADS	4
/* Hand-offs in each ping-pong test. */
#define RFWAKE_TEST_ROUNDS	1000
/* Wakes thrown at a waiter with short deadlines, or at re-armed commands. */
#define RFWAKE_TEST_WAKES	4000
/* A wait that is expected to be woken gives up after this long... */
#define RFWAKE_TEST_WOKEN_MS	5000
/* ...and a thread's whole job must be done within this. */
#define RFWAKE_TEST_JOIN_MS	30000
/* How long a thread may take to park on its waiter. */
#define RFWAKE_TEST_PARK_MS	2000

/**
 * struct rfwake_test_async - a fake io_uring command.
 * @async: what the core sees.
 * @completions: how many times ops->complete ran for it.
 * @in_task: ops->complete ran in process context...
 * @irqs_on: ...with interrupts enabled (so under no waiter's lock).
 * @reply_dom: when set, ops->complete wakes @reply_id there, as a worker
 *             that gets the command's CQE and answers would.
 * @reply_id: the waiter to answer.
 * @reply_payload: the answer's payload.
 * @reply_ret: what that rfwake_wake() returned.
 * @done: completed by ops->complete.
 */
struct rfwake_test_async {
	struct rfwake_async async;
	atomic_t completions;
	bool in_task;
	bool irqs_on;
	struct rfwake_domain *reply_dom;
	u32 reply_id;
	u64 reply_payload;
	int reply_ret;
	struct completion done;
};

/**
 * struct rfwake_test_thread - a kernel thread that waits and wakes.
 * @task: the thread; a reference is held until rfwake_test_exit().
 * @done: completed when @fn returned.
 * @fn: the thread's job; returns 0 or the first unexpected result.
 * @dom: the domain.
 * @self: the waiter the thread waits on.
 * @peer: the waiter the thread wakes.
 * @flags: wait flags, for jobs that take them.
 * @deadline: the deadline, for jobs that take one.
 * @use_swap: ping-pong with rfwake_swap() instead of wake + wait.
 * @signal_self: rfwake_test_wait_signalled() signals itself before waiting.
 * @stop: set by the test to end an open-ended job.
 * @rounds: how many rounds to play.
 * @ret: @fn's result.
 * @round: the rounds completed.
 * @count: the last wait's count.
 * @payload: the last wait's payload.
 * @woke: wakes that found a sleeper (rfwake_wake() returned 1).
 * @results: rfwake_test_wait_loop(): waits ended by 0, -ETIMEDOUT, -EIDRM
 *           and -ENOENT.
 */
struct rfwake_test_thread {
	struct task_struct *task;
	struct completion done;
	int (*fn)(struct rfwake_test_thread *t);
	struct rfwake_domain *dom;
	u32 self;
	u32 peer;
	u32 flags;
	ktime_t deadline;
	bool use_swap;
	bool signal_self;
	bool stop;
	unsigned int rounds;
	int ret;
	unsigned int round;
	u32 count;
	u64 payload;
	unsigned int woke;
	unsigned int results[4];
};

/**
 * struct rfwake_test_ctx - one test's fixture.
 * @dom: the domain, RFWAKE_TEST_WAITERS ids.
 * @dom_ready: @dom is initialised and must be destroyed.
 * @shared: the shared page's words for @dom.
 * @threads: started threads, stopped by rfwake_test_exit().
 * @nthreads: entries in @threads.
 * @poll_entry: a fake poll/epoll waiter on @dom->poll_wq, when added.
 * @poll_woken: wakes seen by @poll_entry.
 * @poll_seen: woken when @poll_entry is.
 */
struct rfwake_test_ctx {
	struct rfwake_domain *dom;
	bool dom_ready;
	u32 *shared;
	struct rfwake_test_thread *threads[RFWAKE_TEST_THREADS];
	unsigned int nthreads;
	struct wait_queue_entry *poll_entry;
	atomic_t poll_woken;
	wait_queue_head_t poll_seen;
};

static void rfwake_test_complete(struct rfwake_async *async)
{
	struct rfwake_test_async *ta =
		container_of(async, struct rfwake_test_async, async);

	ta->in_task = in_task();
	ta->irqs_on = !irqs_disabled();
	if (ta->reply_dom)
		ta->reply_ret = rfwake_wake(ta->reply_dom, ta->reply_id,
					    ta->reply_payload, false);
	atomic_inc(&ta->completions);
	complete(&ta->done);
}

static const struct rfwake_domain_ops rfwake_test_ops = {
	.complete = rfwake_test_complete,
};

static struct rfwake_test_async *rfwake_test_async_new(struct kunit *test)
{
	struct rfwake_test_async *ta;

	ta = kunit_kzalloc(test, sizeof(*ta), GFP_KERNEL);
	KUNIT_ASSERT_NOT_ERR_OR_NULL(test, ta);
	init_completion(&ta->done);
	return ta;
}

static ktime_t rfwake_test_after_ms(unsigned int ms)
{
	return ktime_add_ms(ktime_get(), ms);
}

/* Registers a waiter; the ids of a fresh domain come out 0, 1, 2, ... */
static u32 rfwake_test_register(struct kunit *test, struct rfwake_domain *dom)
{
	u32 id = U32_MAX;

	KUNIT_ASSERT_EQ(test, rfwake_register(dom, 0, &id), 0);
	return id;
}

/* Registers a waiter and leaves a wake with @payload pending on it. */
static u32 rfwake_test_register_pending(struct kunit *test,
					struct rfwake_domain *dom, u64 payload)
{
	u32 id = rfwake_test_register(test, dom);

	KUNIT_ASSERT_EQ(test, rfwake_wake(dom, id, payload, false), 0);
	return id;
}

/* Takes what is pending on @id, or returns -EAGAIN. */
static int rfwake_test_take(struct rfwake_domain *dom, u32 id, u64 *payload,
			    u32 *count)
{
	return rfwake_wait(dom, id, RFWAKE_WAIT_NONBLOCK, 0, payload, count);
}

/*
 * Takes what is pending on @id and expects @count wakes, merged into
 * @payload.
 */
static void rfwake_test_expect_taken(struct kunit *test,
				     struct rfwake_domain *dom, u32 id,
				     u32 count, u64 payload)
{
	u64 got_payload = 0;
	u32 got_count = 0;

	KUNIT_EXPECT_EQ_MSG(test, rfwake_test_take(dom, id, &got_payload,
						   &got_count),
			    0, "waiter %u", id);
	KUNIT_EXPECT_EQ_MSG(test, got_count, count, "waiter %u", id);
	KUNIT_EXPECT_EQ_MSG(test, got_payload, payload, "waiter %u", id);
}

/* Polls the shared page until @id's waiter is parked, for at most a while. */
static bool rfwake_test_await_parked(struct rfwake_test_ctx *ctx, u32 id)
{
	unsigned long end = jiffies + msecs_to_jiffies(RFWAKE_TEST_PARK_MS);

	while (READ_ONCE(ctx->shared[id]) != RFWAKE_STATE_PARKED) {
		if (time_after(jiffies, end))
			return false;
		usleep_range(100, 200);
	}
	return true;
}

static int rfwake_test_threadfn(void *data)
{
	struct rfwake_test_thread *t = data;

	t->ret = t->fn(t);
	complete(&t->done);
	return 0;
}

/*
 * Creates a thread for @fn; it runs once rfwake_test_go() is called, so the
 * test can fill in the rest of its job first.
 */
static struct rfwake_test_thread *
rfwake_test_thread_new(struct kunit *test,
		       int (*fn)(struct rfwake_test_thread *t), u32 self,
		       u32 peer, unsigned int rounds)
{
	struct rfwake_test_ctx *ctx = test->priv;
	struct rfwake_test_thread *t;
	struct task_struct *task;

	KUNIT_ASSERT_LT(test, ctx->nthreads, RFWAKE_TEST_THREADS);
	t = kunit_kzalloc(test, sizeof(*t), GFP_KERNEL);
	KUNIT_ASSERT_NOT_ERR_OR_NULL(test, t);
	init_completion(&t->done);
	t->fn = fn;
	t->dom = ctx->dom;
	t->self = self;
	t->peer = peer;
	t->rounds = rounds;

	task = kthread_create(rfwake_test_threadfn, t, "rfwake_test/%u", self);
	KUNIT_ASSERT_FALSE(test, IS_ERR(task));
	/* Keeps the task_struct for kthread_stop() once the thread exited. */
	get_task_struct(task);
	t->task = task;
	ctx->threads[ctx->nthreads++] = t;
	return t;
}

static void rfwake_test_go(struct rfwake_test_thread *t)
{
	wake_up_process(t->task);
}

/*
 * Starts a thread whose job @fn waits once on @id, with a deadline that
 * leaves the test time to end the wait itself, and returns once it sleeps.
 */
static struct rfwake_test_thread *
rfwake_test_sleeper(struct kunit *test,
		    int (*fn)(struct rfwake_test_thread *t), u32 id)
{
	struct rfwake_test_thread *t;

	t = rfwake_test_thread_new(test, fn, id, id, 1);
	t->flags = RFWAKE_WAIT_DEADLINE;
	t->deadline = rfwake_test_after_ms(RFWAKE_TEST_WOKEN_MS);
	rfwake_test_go(t);
	KUNIT_ASSERT_TRUE(test, rfwake_test_await_parked(test->priv, id));
	return t;
}

/*
 * rfwake_test_sleeper() whose thread cannot run again until
 * rfwake_test_let_run(): it is bound to the test's CPU, and the test goes on
 * there as a real-time task once the thread sleeps, which a normal task does
 * not preempt.  For the checks of what happens before a woken sleeper has
 * left: UML runs one thread at a time and never preempts, but a PREEMPT_RT
 * kernel on two CPUs runs the woken sleeper at once, elsewhere or instead.
 */
static struct rfwake_test_thread *
rfwake_test_sleeper_held(struct kunit *test,
			 int (*fn)(struct rfwake_test_thread *t), u32 id)
{
	unsigned int cpu = cpumask_first(cpu_online_mask);
	struct rfwake_test_thread *t;

	KUNIT_ASSERT_EQ(test, set_cpus_allowed_ptr(current, cpumask_of(cpu)),
			0);
	t = rfwake_test_thread_new(test, fn, id, id, 1);
	kthread_bind(t->task, cpu);
	t->flags = RFWAKE_WAIT_DEADLINE;
	t->deadline = rfwake_test_after_ms(RFWAKE_TEST_WOKEN_MS);
	rfwake_test_go(t);
	/* sleeps while it polls: the thread gets the CPU meanwhile */
	KUNIT_ASSERT_TRUE(test, rfwake_test_await_parked(test->priv, id));
	sched_set_fifo_low(current);
	return t;
}

/* The test is a normal task on any CPU again: a held sleeper may run. */
static void rfwake_test_let_run(void)
{
	sched_set_normal(current, 0);
	set_cpus_allowed_ptr(current, cpu_possible_mask);
}

/* Waits for a thread's job to end; false when it took too long. */
static bool rfwake_test_join(struct rfwake_test_thread *t)
{
	return wait_for_completion_timeout(&t->done,
			msecs_to_jiffies(RFWAKE_TEST_JOIN_MS)) != 0;
}

/* A thread's job: one wait on @self with @flags and @deadline. */
static int rfwake_test_wait_once(struct rfwake_test_thread *t)
{
	return rfwake_wait(t->dom, t->self, t->flags, t->deadline, &t->payload,
			   &t->count);
}

/*
 * A thread's job: one wait on @self that a signal may interrupt; with
 * @signal_self the signal is already pending when the wait starts.
 */
static int rfwake_test_wait_signalled(struct rfwake_test_thread *t)
{
	int ret;

	allow_signal(SIGUSR1);
	if (t->signal_self)
		send_sig(SIGUSR1, current, 1);
	ret = rfwake_wait(t->dom, t->self, t->flags, t->deadline, &t->payload,
			  &t->count);
	flush_signals(current);
	return ret;
}

/*
 * A thread's job: short waits on @self until told to stop, while the test
 * unregisters and registers @self under it.
 */
static int rfwake_test_wait_loop(struct rfwake_test_thread *t)
{
	static const int expected[] = { 0, -ETIMEDOUT, -EIDRM, -ENOENT };
	unsigned int i;
	int ret;

	while (!READ_ONCE(t->stop) && !kthread_should_stop()) {
		ret = rfwake_wait(t->dom, t->self, RFWAKE_WAIT_DEADLINE,
				  ktime_add_us(ktime_get(), 200), &t->payload,
				  &t->count);
		for (i = 0; i < ARRAY_SIZE(expected); i++)
			if (ret == expected[i])
				break;
		if (i == ARRAY_SIZE(expected))
			return ret;
		t->results[i]++;
		t->round++;
		/* -ENOENT returns at once: let the test run */
		if (ret == -ENOENT)
			usleep_range(20, 40);
	}
	return 0;
}

/* Sends @send to t->peer and waits for the answer on t->self. */
static int rfwake_test_send_recv(struct rfwake_test_thread *t, u64 send)
{
	ktime_t deadline = rfwake_test_after_ms(RFWAKE_TEST_WOKEN_MS);
	int ret;

	if (t->use_swap)
		return rfwake_swap(t->dom, t->peer, send, t->self,
				   RFWAKE_SWAP_DEADLINE, deadline, &t->payload,
				   &t->count);
	ret = rfwake_wake(t->dom, t->peer, send, false);
	if (ret < 0)
		return ret;
	return rfwake_wait(t->dom, t->self, RFWAKE_WAIT_DEADLINE, deadline,
			   &t->payload, &t->count);
}

/*
 * Ping-pong, first player: sends 2r in round r and expects 2r + 1 back as a
 * single wake.  A lost wake times out, a duplicated or merged one shows up
 * in count or payload.
 */
static int rfwake_test_ping(struct rfwake_test_thread *t)
{
	int ret;

	for (t->round = 0; t->round < t->rounds; t->round++) {
		if (kthread_should_stop())
			return -EINTR;
		ret = rfwake_test_send_recv(t, 2ULL * t->round);
		if (ret)
			return ret;
		if (t->count != 1 || t->payload != 2ULL * t->round + 1)
			return -EPROTO;
	}
	return 0;
}

/* Ping-pong, second player: answers 2r + 1 to 2r. */
static int rfwake_test_pong(struct rfwake_test_thread *t)
{
	ktime_t deadline = rfwake_test_after_ms(RFWAKE_TEST_WOKEN_MS);
	int ret;

	t->round = 0;
	ret = rfwake_wait(t->dom, t->self, RFWAKE_WAIT_DEADLINE, deadline,
			  &t->payload, &t->count);
	if (ret)
		return ret;
	if (t->count != 1 || t->payload != 0)
		return -EPROTO;
	for (t->round = 0; t->round + 1 < t->rounds; t->round++) {
		if (kthread_should_stop())
			return -EINTR;
		ret = rfwake_test_send_recv(t, 2ULL * t->round + 1);
		if (ret)
			return ret;
		if (t->count != 1 || t->payload != 2ULL * (t->round + 1))
			return -EPROTO;
	}
	/* The last answer: nothing more comes back. */
	ret = rfwake_wake(t->dom, t->peer, 2ULL * t->round + 1, false);
	if (ret < 0)
		return ret;
	t->round++;
	return 0;
}

/*
 * Wakes t->peer t->rounds times with payload bit (i % 64), letting the
 * waiter run now and then, so that some wakes find it asleep, some find it
 * timing out and some find it away.
 */
static int rfwake_test_waker(struct rfwake_test_thread *t)
{
	int ret;

	for (t->round = 0; t->round < t->rounds; t->round++) {
		if (kthread_should_stop())
			return -EINTR;
		ret = rfwake_wake(t->dom, t->peer, BIT_ULL(t->round % 64),
				  t->round % 2);
		if (ret < 0)
			return ret;
		t->woke += ret;
		/*
		 * Sleeping is slow where timers tick (UML: 10 ms), so most
		 * rounds only offer the CPU to the woken waiter, and some
		 * wakes follow each other to find it woken but not yet run.
		 */
		if (t->round % 64 == 0)
			usleep_range(10, 50);
		else if (t->round % 3 == 2)
			cond_resched();
	}
	return 0;
}

static int rfwake_test_poll_wake(struct wait_queue_entry *entry,
				 unsigned int mode, int sync, void *key)
{
	struct rfwake_test_ctx *ctx = entry->private;

	atomic_inc(&ctx->poll_woken);
	wake_up(&ctx->poll_seen);
	return 0;
}

/* Plays an epoll waiter on the domain: rfwake_poll_notify() wakes it. */
static void rfwake_test_watch_poll(struct kunit *test)
{
	struct rfwake_test_ctx *ctx = test->priv;
	struct wait_queue_entry *entry;

	entry = kunit_kzalloc(test, sizeof(*entry), GFP_KERNEL);
	KUNIT_ASSERT_NOT_ERR_OR_NULL(test, entry);
	init_waitqueue_func_entry(entry, rfwake_test_poll_wake);
	entry->private = ctx;
	add_wait_queue(&ctx->dom->poll_wq, entry);
	ctx->poll_entry = entry;
}

static int rfwake_test_init(struct kunit *test)
{
	struct rfwake_test_ctx *ctx;
	int ret;

	ctx = kunit_kzalloc(test, sizeof(*ctx), GFP_KERNEL);
	if (!ctx)
		return -ENOMEM;
	ctx->dom = kunit_kzalloc(test, sizeof(*ctx->dom), GFP_KERNEL);
	ctx->shared = kunit_kcalloc(test, RFWAKE_MAX_WAITERS,
				    sizeof(*ctx->shared), GFP_KERNEL);
	if (!ctx->dom || !ctx->shared)
		return -ENOMEM;
	init_waitqueue_head(&ctx->poll_seen);
	ret = rfwake_domain_init(ctx->dom, RFWAKE_TEST_WAITERS, ctx->shared,
				 &rfwake_test_ops);
	if (ret)
		return ret;
	ctx->dom_ready = true;
	test->priv = ctx;
	return 0;
}

static void rfwake_test_exit(struct kunit *test)
{
	struct rfwake_test_ctx *ctx = test->priv;
	unsigned int i;

	if (!ctx)
		return;
	/*
	 * kthread_stop() makes signal_pending() true for the thread, so one
	 * sleeping in rfwake_wait() returns -ERESTARTSYS and its job ends.
	 */
	for (i = 0; i < ctx->nthreads; i++) {
		kthread_stop(ctx->threads[i]->task);
		put_task_struct(ctx->threads[i]->task);
	}
	ctx->nthreads = 0;
	if (ctx->poll_entry)
		remove_wait_queue(&ctx->dom->poll_wq, ctx->poll_entry);
	if (ctx->dom_ready)
		rfwake_domain_destroy(ctx->dom);
}

static void rfwake_test_domain_init_limits(struct kunit *test)
{
	struct rfwake_domain *dom;

	dom = kunit_kzalloc(test, sizeof(*dom), GFP_KERNEL);
	KUNIT_ASSERT_NOT_ERR_OR_NULL(test, dom);

	/* max_waiters must be 1..RFWAKE_MAX_WAITERS. */
	KUNIT_EXPECT_EQ(test, rfwake_domain_init(dom, 0, NULL, &rfwake_test_ops),
			-EINVAL);
	KUNIT_EXPECT_EQ(test, rfwake_domain_init(dom, RFWAKE_MAX_WAITERS + 1,
						 NULL, &rfwake_test_ops),
			-EINVAL);

	KUNIT_ASSERT_EQ(test, rfwake_domain_init(dom, 1, NULL, &rfwake_test_ops),
			0);
	/* One id, no shared page: id 0, then full. */
	KUNIT_EXPECT_EQ(test, rfwake_test_register(test, dom), 0);
	KUNIT_EXPECT_EQ(test, rfwake_nwaiters(dom), 1);
	rfwake_domain_destroy(dom);
}

static void rfwake_test_register_lowest_free(struct kunit *test)
{
	struct rfwake_test_ctx *ctx = test->priv;
	struct rfwake_domain *dom = ctx->dom;
	u32 i, id;

	for (i = 0; i < RFWAKE_TEST_WAITERS; i++)
		KUNIT_EXPECT_EQ(test, rfwake_test_register(test, dom), i);

	/* ids 0..7 taken: no room for a ninth, and id is left alone */
	id = 1234;
	KUNIT_EXPECT_EQ(test, rfwake_register(dom, 0, &id), -ENOSPC);
	KUNIT_EXPECT_EQ(test, id, 1234);
	KUNIT_EXPECT_EQ(test, rfwake_nwaiters(dom), RFWAKE_TEST_WAITERS);

	KUNIT_EXPECT_EQ(test, rfwake_unregister(dom, 5), 0);
	KUNIT_EXPECT_EQ(test, rfwake_unregister(dom, 2), 0);
	/* free: 2, 5 - the lowest comes back first */
	KUNIT_EXPECT_EQ(test, rfwake_nwaiters(dom), RFWAKE_TEST_WAITERS - 2);
	KUNIT_EXPECT_EQ(test, rfwake_test_register(test, dom), 2);
	KUNIT_EXPECT_EQ(test, rfwake_test_register(test, dom), 5);
	KUNIT_EXPECT_EQ(test, rfwake_register(dom, 0, &id), -ENOSPC);
}

static void rfwake_test_register_every_id(struct kunit *test)
{
	struct rfwake_test_ctx *ctx = test->priv;
	struct rfwake_domain *dom = ctx->dom;
	u32 i, id;

	/* The fixture's domain is small; this test wants the largest. */
	ctx->dom_ready = false;
	rfwake_domain_destroy(dom);
	KUNIT_ASSERT_EQ(test, rfwake_domain_init(dom, RFWAKE_MAX_WAITERS,
						 ctx->shared, &rfwake_test_ops),
			0);
	ctx->dom_ready = true;

	for (i = 0; i < RFWAKE_MAX_WAITERS; i++) {
		KUNIT_ASSERT_EQ(test, rfwake_register(dom, 0, &id), 0);
		KUNIT_ASSERT_EQ(test, id, i);
	}
	/* all RFWAKE_MAX_WAITERS ids taken */
	KUNIT_EXPECT_EQ(test, rfwake_register(dom, 0, &id), -ENOSPC);
	KUNIT_EXPECT_EQ(test, rfwake_nwaiters(dom), RFWAKE_MAX_WAITERS);

	/* the last id (in the last bitmap word) is reusable */
	KUNIT_EXPECT_EQ(test, rfwake_unregister(dom, RFWAKE_MAX_WAITERS - 1), 0);
	KUNIT_EXPECT_EQ(test, rfwake_unregister(dom, RFWAKE_MAX_WAITERS), -EINVAL);
	KUNIT_EXPECT_EQ(test, rfwake_test_register(test, dom),
			RFWAKE_MAX_WAITERS - 1);
}

/*
 * Swaps that fail before their wake goes out, for a bad wait id or flags:
 * @a is registered, @gone was and is not any more.
 */
static void rfwake_test_bad_swaps(struct kunit *test, u32 a, u32 gone)
{
	struct rfwake_test_ctx *ctx = test->priv;
	const u32 past_end = RFWAKE_TEST_WAITERS;
	const struct {
		u32 wake_id;
		u32 wait_id;
		u32 flags;
		int ret;
	} swaps[] = {
		{ a, a, 0, -EINVAL },
		{ a, past_end, 0, -EINVAL },
		{ a, gone, 0, -ENOENT },
		{ gone, a, 0, -ENOENT },
		{ past_end, a, 0, -EINVAL },
		{ gone, a, RFWAKE_WAIT_NONBLOCK, -EINVAL },
	};
	u32 i, count = 0;
	u64 payload = 0;

	for (i = 0; i < ARRAY_SIZE(swaps); i++)
		KUNIT_EXPECT_EQ_MSG(test, rfwake_swap(ctx->dom, swaps[i].wake_id, 1,
						      swaps[i].wait_id,
						      swaps[i].flags, 0,
						      &payload, &count),
				    swaps[i].ret, "swap %u to %u, flags %#x",
				    swaps[i].wake_id, swaps[i].wait_id,
				    swaps[i].flags);
}

static void rfwake_test_bad_ids(struct kunit *test)
{
	struct rfwake_test_ctx *ctx = test->priv;
	struct rfwake_domain *dom = ctx->dom;
	struct rfwake_test_async *ta = rfwake_test_async_new(test);
	const u32 past_end = RFWAKE_TEST_WAITERS;
	u32 a, gone, never = 6, count = 0;
	u64 payload = 0;

	a = rfwake_test_register(test, dom);
	gone = rfwake_test_register(test, dom);
	KUNIT_ASSERT_EQ(test, rfwake_unregister(dom, gone), 0);

	/* id >= max_waiters: -EINVAL, whatever the call */
	KUNIT_EXPECT_EQ(test, rfwake_unregister(dom, past_end), -EINVAL);
	KUNIT_EXPECT_EQ(test, rfwake_unregister(dom, U32_MAX), -EINVAL);
	KUNIT_EXPECT_EQ(test, rfwake_wake(dom, past_end, 1, false), -EINVAL);
	KUNIT_EXPECT_EQ(test, rfwake_test_take(dom, past_end, &payload, &count),
			-EINVAL);
	KUNIT_EXPECT_EQ(test, rfwake_arm(dom, U32_MAX, &ta->async), -EINVAL);

	/* in range but free: never used, or unregistered */
	KUNIT_EXPECT_EQ(test, rfwake_unregister(dom, never), -ENOENT);
	KUNIT_EXPECT_EQ(test, rfwake_unregister(dom, gone), -ENOENT);
	KUNIT_EXPECT_EQ(test, rfwake_wake(dom, never, 1, false), -ENOENT);
	KUNIT_EXPECT_EQ(test, rfwake_wake(dom, gone, 1, false), -ENOENT);
	KUNIT_EXPECT_EQ(test, rfwake_test_take(dom, gone, &payload, &count),
			-ENOENT);
	KUNIT_EXPECT_EQ(test, rfwake_arm(dom, gone, &ta->async), -ENOENT);

	rfwake_test_bad_swaps(test, a, gone);
	/* none of these calls woke a */
	KUNIT_EXPECT_FALSE(test, rfwake_any_pending(dom));
	KUNIT_EXPECT_EQ(test, rfwake_test_take(dom, a, &payload, &count),
			-EAGAIN);
	/* nothing was armed */
	KUNIT_EXPECT_EQ(test, rfwake_cancel_armed(dom, -ECANCELED), 0);
	KUNIT_EXPECT_EQ(test, atomic_read(&ta->completions), 0);
}

/**
 * enum rfwake_test_call - the calls that rfwake_test_bad_flags() plays.
 * @RFWAKE_TEST_REGISTER: rfwake_register().
 * @RFWAKE_TEST_WAIT: rfwake_wait() on a waiter with a wake pending.
 * @RFWAKE_TEST_SWAP: rfwake_swap() to another waiter, waiting on that one.
 */
enum rfwake_test_call {
	RFWAKE_TEST_REGISTER,
	RFWAKE_TEST_WAIT,
	RFWAKE_TEST_SWAP,
};

/**
 * struct rfwake_test_bad_flag - a call given flags it does not know.
 * @name: the parameter's description.
 * @call: the call.
 * @flags: its flags.
 */
struct rfwake_test_bad_flag {
	const char *name;
	enum rfwake_test_call call;
	u32 flags;
};

static const struct rfwake_test_bad_flag rfwake_test_bad_flag_cases[] = {
	/* every flag of register is reserved */
	{ "register 1", RFWAKE_TEST_REGISTER, 1 },
	{ "register BIT(31)", RFWAKE_TEST_REGISTER, BIT(31) },
	{ "wait BIT(2)", RFWAKE_TEST_WAIT, BIT(2) },
	{ "wait BIT(31) | NONBLOCK", RFWAKE_TEST_WAIT,
	  BIT(31) | RFWAKE_WAIT_NONBLOCK },
	/* swap knows DEADLINE and NOSYNC only */
	{ "swap BIT(31)", RFWAKE_TEST_SWAP, BIT(31) },
};

static void rfwake_test_bad_flag_desc(const struct rfwake_test_bad_flag *bad,
				      char *desc)
{
	strscpy(desc, bad->name, KUNIT_PARAM_DESC_SIZE);
}

KUNIT_ARRAY_PARAM(rfwake_test_bad_flag, rfwake_test_bad_flag_cases,
		  rfwake_test_bad_flag_desc);

/*
 * A call given flags it does not know fails with -EINVAL and changes
 * nothing: no waiter registered, no wake sent, a pending wake not consumed.
 */
static void rfwake_test_bad_flags(struct kunit *test)
{
	const struct rfwake_test_bad_flag *bad = test->param_value;
	struct rfwake_test_ctx *ctx = test->priv;
	struct rfwake_domain *dom = ctx->dom;
	u32 a, b, id = 1234, count = 0;
	u64 payload = 0;
	int ret;

	a = rfwake_test_register_pending(test, dom, 1);
	b = rfwake_test_register(test, dom);
	switch (bad->call) {
	case RFWAKE_TEST_REGISTER:
		ret = rfwake_register(dom, bad->flags, &id);
		break;
	case RFWAKE_TEST_WAIT:
		ret = rfwake_wait(dom, a, bad->flags, 0, &payload, &count);
		break;
	default:
		ret = rfwake_swap(dom, b, 1, a, bad->flags, 0, &payload,
				  &count);
		break;
	}
	KUNIT_EXPECT_EQ(test, ret, -EINVAL);
	/* nothing registered, and id left alone */
	KUNIT_EXPECT_EQ(test, id, 1234);
	KUNIT_EXPECT_EQ(test, rfwake_nwaiters(dom), 2);
	/* b got no wake, and a's wake is still there */
	KUNIT_EXPECT_EQ(test, rfwake_test_take(dom, b, &payload, &count),
			-EAGAIN);
	rfwake_test_expect_taken(test, dom, a, 1, 1);
}

static void rfwake_test_wakes_coalesce(struct kunit *test)
{
	struct rfwake_test_ctx *ctx = test->priv;
	struct rfwake_domain *dom = ctx->dom;
	u32 a, count = 0;
	u64 payload = 0;

	a = rfwake_test_register(test, dom);
	KUNIT_EXPECT_FALSE(test, rfwake_any_pending(dom));
	KUNIT_EXPECT_EQ(test, rfwake_test_take(dom, a, &payload, &count),
			-EAGAIN);

	/* nobody waits: each wake is left pending (0) */
	KUNIT_EXPECT_EQ(test, rfwake_wake(dom, a, 0x1, false), 0);
	KUNIT_EXPECT_EQ(test, rfwake_wake(dom, a, 0x2, true), 0);
	KUNIT_EXPECT_EQ(test, rfwake_wake(dom, a, 0x8000000000000000ULL, false),
			0);
	KUNIT_EXPECT_EQ(test, rfwake_wake(dom, a, 0, false), 0);
	KUNIT_EXPECT_TRUE(test, rfwake_any_pending(dom));

	/* four wakes merged into one wait: count 4, payloads ORed */
	rfwake_test_expect_taken(test, dom, a, 4, 0x8000000000000003ULL);

	/* consumed: nothing left */
	KUNIT_EXPECT_FALSE(test, rfwake_any_pending(dom));
	KUNIT_EXPECT_EQ(test, rfwake_test_take(dom, a, &payload, &count),
			-EAGAIN);

	/* a blocking wait takes a pending wake at once, deadline or not */
	KUNIT_EXPECT_EQ(test, rfwake_wake(dom, a, 0x10, false), 0);
	KUNIT_EXPECT_EQ(test, rfwake_wait(dom, a, 0, 0, &payload, &count), 0);
	KUNIT_EXPECT_EQ(test, count, 1);
	KUNIT_EXPECT_EQ(test, payload, 0x10);
}

static void rfwake_test_any_pending(struct kunit *test)
{
	struct rfwake_test_ctx *ctx = test->priv;
	struct rfwake_domain *dom = ctx->dom;
	u32 a, b, count = 0;
	u64 payload = 0;

	a = rfwake_test_register_pending(test, dom, 1);
	b = rfwake_test_register_pending(test, dom, 2);

	/* pending: a, b */
	KUNIT_EXPECT_TRUE(test, rfwake_any_pending(dom));
	KUNIT_EXPECT_EQ(test, rfwake_test_take(dom, a, &payload, &count), 0);
	/* pending: b */
	KUNIT_EXPECT_TRUE(test, rfwake_any_pending(dom));
	KUNIT_EXPECT_EQ(test, rfwake_test_take(dom, b, &payload, &count), 0);
	KUNIT_EXPECT_EQ(test, payload, 2);
	/* pending: none */
	KUNIT_EXPECT_FALSE(test, rfwake_any_pending(dom));
}

static void rfwake_test_unregister_drops_pending(struct kunit *test)
{
	struct rfwake_test_ctx *ctx = test->priv;
	struct rfwake_domain *dom = ctx->dom;
	u32 a, count = 0;
	u64 payload = 0;

	a = rfwake_test_register_pending(test, dom, 1);
	KUNIT_ASSERT_EQ(test, rfwake_unregister(dom, a), 0);

	/* the wake died with the waiter */
	KUNIT_EXPECT_FALSE(test, rfwake_any_pending(dom));
	/* the id comes back to the next register, without the old wake */
	KUNIT_EXPECT_EQ(test, rfwake_test_register(test, dom), a);
	KUNIT_EXPECT_EQ(test, rfwake_test_take(dom, a, &payload, &count),
			-EAGAIN);
	KUNIT_EXPECT_EQ(test, ctx->shared[a], RFWAKE_STATE_RUNNING);
}

static void rfwake_test_pending_notifies_poll(struct kunit *test)
{
	struct rfwake_test_ctx *ctx = test->priv;
	struct rfwake_domain *dom = ctx->dom;
	struct rfwake_target targets[1] = { { .payload = 1 } };
	u32 a;

	a = rfwake_test_register(test, dom);
	targets[0].id = a;
	rfwake_test_watch_poll(test);

	/* a wake left pending is what poll reports: its waiters are told */
	KUNIT_EXPECT_EQ(test, rfwake_wake(dom, a, 1, false), 0);
	KUNIT_EXPECT_EQ(test, atomic_read(&ctx->poll_woken), 1);
	KUNIT_EXPECT_EQ(test, rfwake_wake_batch(dom, targets, 1), 0);
	KUNIT_EXPECT_EQ(test, atomic_read(&ctx->poll_woken), 2);
}

static void rfwake_test_deadline_past(struct kunit *test)
{
	struct rfwake_test_ctx *ctx = test->priv;
	struct rfwake_domain *dom = ctx->dom;
	ktime_t past = ktime_sub_ms(ktime_get(), 1);
	u32 a, b, count = 0;
	u64 payload = 0;

	a = rfwake_test_register(test, dom);
	b = rfwake_test_register(test, dom);

	/* nothing pending, deadline passed: -ETIMEDOUT at once */
	KUNIT_EXPECT_EQ(test, rfwake_wait(dom, a, RFWAKE_WAIT_DEADLINE, past,
					  &payload, &count),
			-ETIMEDOUT);
	KUNIT_EXPECT_EQ(test, rfwake_wait(dom, a, RFWAKE_WAIT_DEADLINE, 0,
					  &payload, &count),
			-ETIMEDOUT);
	KUNIT_EXPECT_EQ(test, ctx->shared[a], RFWAKE_STATE_RUNNING);

	/* a pending wake beats a passed deadline */
	KUNIT_ASSERT_EQ(test, rfwake_wake(dom, a, 0x4, false), 0);
	KUNIT_EXPECT_EQ(test, rfwake_wait(dom, a, RFWAKE_WAIT_DEADLINE, past,
					  &payload, &count),
			0);
	KUNIT_EXPECT_EQ(test, count, 1);
	KUNIT_EXPECT_EQ(test, payload, 0x4);

	/* a swap whose wait times out has still delivered its wake */
	KUNIT_EXPECT_EQ(test, rfwake_swap(dom, b, 0x8, a, RFWAKE_SWAP_DEADLINE,
					  past, &payload, &count),
			-ETIMEDOUT);
	rfwake_test_expect_taken(test, dom, b, 1, 0x8);
}

static void rfwake_test_deadline_sleeps_until(struct kunit *test)
{
	struct rfwake_test_ctx *ctx = test->priv;
	struct rfwake_domain *dom = ctx->dom;
	ktime_t deadline;
	u32 a, count = 0;
	u64 payload = 0;

	a = rfwake_test_register(test, dom);
	deadline = rfwake_test_after_ms(20);

	/* nobody wakes a: the wait ends at its deadline, not before */
	KUNIT_EXPECT_EQ(test, rfwake_wait(dom, a, RFWAKE_WAIT_DEADLINE, deadline,
					  &payload, &count),
			-ETIMEDOUT);
	KUNIT_EXPECT_GE(test, ktime_get(), deadline);
	KUNIT_EXPECT_EQ(test, ctx->shared[a], RFWAKE_STATE_RUNNING);
}

static void rfwake_test_deadline_needs_flag(struct kunit *test)
{
	struct rfwake_test_ctx *ctx = test->priv;
	struct rfwake_test_thread *t;
	u32 a;

	a = rfwake_test_register(test, ctx->dom);
	t = rfwake_test_thread_new(test, rfwake_test_wait_once, a, a, 1);
	/* a deadline in the past, but no RFWAKE_WAIT_DEADLINE: ignored */
	t->flags = 0;
	t->deadline = 1;
	rfwake_test_go(t);
	KUNIT_ASSERT_TRUE(test, rfwake_test_await_parked(ctx, a));
	msleep(20);

	/* still asleep 20 ms after parking */
	KUNIT_EXPECT_FALSE(test, completion_done(&t->done));
	KUNIT_EXPECT_EQ(test, rfwake_wake(ctx->dom, a, 0x3, false), 1);
	KUNIT_ASSERT_TRUE(test, rfwake_test_join(t));
	KUNIT_EXPECT_EQ(test, t->ret, 0);
	KUNIT_EXPECT_EQ(test, t->count, 1);
	KUNIT_EXPECT_EQ(test, t->payload, 0x3);
}

static void rfwake_test_wake_sleeper(struct kunit *test)
{
	struct rfwake_test_ctx *ctx = test->priv;
	struct rfwake_domain *dom = ctx->dom;
	struct rfwake_test_async *ta = rfwake_test_async_new(test);
	struct rfwake_test_thread *t;
	u32 a, b, count = 0;
	u64 payload = 0;

	a = rfwake_test_register(test, dom);
	b = rfwake_test_register(test, dom);
	t = rfwake_test_sleeper(test, rfwake_test_wait_once, a);

	/* t sleeps on a: every other claim on a is -EBUSY */
	KUNIT_EXPECT_EQ(test, rfwake_wait(dom, a, RFWAKE_WAIT_DEADLINE,
					  rfwake_test_after_ms(10), &payload,
					  &count),
			-EBUSY);
	KUNIT_EXPECT_EQ(test, rfwake_test_take(dom, a, &payload, &count),
			-EBUSY);
	KUNIT_EXPECT_EQ(test, rfwake_arm(dom, a, &ta->async), -EBUSY);
	/* ...and a swap that would wait on a wakes nobody */
	KUNIT_EXPECT_EQ(test, rfwake_swap(dom, b, 1, a, 0, 0, &payload, &count),
			-EBUSY);
	KUNIT_EXPECT_FALSE(test, rfwake_any_pending(dom));

	/* the wake finds a sleeper (1) and hands it the payload */
	KUNIT_EXPECT_EQ(test, rfwake_wake(dom, a, 0x5, false), 1);
	KUNIT_ASSERT_TRUE(test, rfwake_test_join(t));
	KUNIT_EXPECT_EQ(test, t->ret, 0);
	KUNIT_EXPECT_EQ(test, t->count, 1);
	KUNIT_EXPECT_EQ(test, t->payload, 0x5);
	KUNIT_EXPECT_EQ(test, ctx->shared[a], RFWAKE_STATE_RUNNING);
	KUNIT_EXPECT_FALSE(test, rfwake_any_pending(dom));
}

static void rfwake_test_wake_woken_sleeper(struct kunit *test)
{
	struct rfwake_test_ctx *ctx = test->priv;
	struct rfwake_domain *dom = ctx->dom;
	struct rfwake_test_thread *t;
	u32 a, count = 0, total;
	u64 payload = 0, payloads;

	a = rfwake_test_register(test, dom);
	t = rfwake_test_sleeper(test, rfwake_test_wait_once, a);

	/* t sleeps on a: the first wake wakes it (1) */
	KUNIT_EXPECT_EQ(test, rfwake_wake(dom, a, 0x1, false), 1);
	/*
	 * t is woken already, whether it has run yet or not: the second wake
	 * merges into what t takes, or stays pending for t's next wait (0).
	 */
	KUNIT_EXPECT_EQ(test, rfwake_wake(dom, a, 0x2, false), 0);
	KUNIT_ASSERT_TRUE(test, rfwake_test_join(t));
	KUNIT_EXPECT_EQ(test, t->ret, 0);

	/* both wakes reached a, taken together or one by one */
	total = t->count;
	payloads = t->payload;
	if (rfwake_test_take(dom, a, &payload, &count) == 0) {
		total += count;
		payloads |= payload;
	}
	KUNIT_EXPECT_EQ(test, total, 2);
	KUNIT_EXPECT_EQ(test, payloads, 0x3);
}

static void rfwake_test_unregister_sleeper(struct kunit *test)
{
	struct rfwake_test_ctx *ctx = test->priv;
	struct rfwake_test_thread *t;
	u32 a;

	a = rfwake_test_register(test, ctx->dom);
	t = rfwake_test_sleeper(test, rfwake_test_wait_once, a);

	/* the sleeper leaves with -EIDRM, long before its deadline */
	KUNIT_EXPECT_EQ(test, rfwake_unregister(ctx->dom, a), 0);
	KUNIT_ASSERT_TRUE(test, rfwake_test_join(t));
	KUNIT_EXPECT_EQ(test, t->ret, -EIDRM);
	KUNIT_EXPECT_LT(test, ktime_get(), t->deadline);
	KUNIT_EXPECT_EQ(test, rfwake_nwaiters(ctx->dom), 0);
}

static void rfwake_test_signal_interrupts(struct kunit *test)
{
	struct rfwake_test_ctx *ctx = test->priv;
	struct rfwake_domain *dom = ctx->dom;
	struct rfwake_test_thread *t;
	u32 a, count = 0;
	u64 payload = 0;

	a = rfwake_test_register(test, dom);
	t = rfwake_test_sleeper(test, rfwake_test_wait_signalled, a);

	/* a signal ends the sleep with -ERESTARTSYS, long before the deadline */
	send_sig(SIGUSR1, t->task, 1);
	KUNIT_ASSERT_TRUE(test, rfwake_test_join(t));
	KUNIT_EXPECT_EQ(test, t->ret, -ERESTARTSYS);
	KUNIT_EXPECT_LT(test, ktime_get(), t->deadline);
	KUNIT_EXPECT_EQ(test, ctx->shared[a], RFWAKE_STATE_RUNNING);
	/* the waiter is free again, with nothing pending */
	KUNIT_EXPECT_EQ(test, rfwake_test_take(dom, a, &payload, &count),
			-EAGAIN);
}

static void rfwake_test_signal_loses_to_wake(struct kunit *test)
{
	struct rfwake_test_ctx *ctx = test->priv;
	struct rfwake_domain *dom = ctx->dom;
	struct rfwake_test_thread *t;
	u32 a;

	a = rfwake_test_register_pending(test, dom, 0x6);
	t = rfwake_test_thread_new(test, rfwake_test_wait_signalled, a, a, 1);
	t->flags = RFWAKE_WAIT_DEADLINE;
	t->deadline = rfwake_test_after_ms(RFWAKE_TEST_WOKEN_MS);
	t->signal_self = true;
	rfwake_test_go(t);
	KUNIT_ASSERT_TRUE(test, rfwake_test_join(t));

	/* a wake was pending when the signalled thread waited: the wake wins */
	KUNIT_EXPECT_EQ(test, t->ret, 0);
	KUNIT_EXPECT_EQ(test, t->count, 1);
	KUNIT_EXPECT_EQ(test, t->payload, 0x6);
	KUNIT_EXPECT_FALSE(test, rfwake_any_pending(dom));
}

/*
 * Register @want again after rfwake_unregister(): while a thread that slept
 * on it is still leaving, rfwake_register() hands out another id, which is
 * given back, and the caller retries until @want is free.  How long the
 * leaving thread takes to run depends on the scheduler (a PREEMPT_RT guest
 * under qemu can keep it off the CPU for milliseconds), so nothing here
 * assumes a time; RFWAKE_TEST_WOKEN_MS only ends a test whose waiter never
 * leaves.  Return: 0, or the error that ended the attempts.
 */
static int rfwake_test_reregister(struct rfwake_domain *dom, u32 want)
{
	ktime_t stuck = rfwake_test_after_ms(RFWAKE_TEST_WOKEN_MS);
	u32 id;
	int err;

	for (;;) {
		err = rfwake_register(dom, 0, &id);
		if (err)
			return err;
		if (id == want)
			return 0;
		err = rfwake_unregister(dom, id);
		if (err)
			return err;
		if (ktime_after(ktime_get(), stuck))
			return -ETIMEDOUT;
		usleep_range(20, 100);
	}
}

static void rfwake_test_unregister_vs_waiter(struct kunit *test)
{
	struct rfwake_test_ctx *ctx = test->priv;
	struct rfwake_domain *dom = ctx->dom;
	struct rfwake_test_thread *t;
	unsigned int i, bad = 0;
	u32 a, id;

	a = rfwake_test_register(test, dom);
	t = rfwake_test_thread_new(test, rfwake_test_wait_loop, a, a, 0);
	rfwake_test_go(t);
	for (i = 0; i < 200; i++) {
		if (rfwake_unregister(dom, a))
			bad++;
		/* let t see the waiter gone, asleep or not (UML is not preemptive) */
		usleep_range(20 + i % 50, 100);
		/* a comes back once t has left it (the sleep above need not do) */
		if (rfwake_test_reregister(dom, a))
			bad++;
		if (i % 2 && rfwake_wake(dom, a, 1, false) < 0)
			bad++;
		usleep_range(20 + i % 50, 100);
	}
	WRITE_ONCE(t->stop, true);
	KUNIT_ASSERT_TRUE(test, rfwake_test_join(t));

	/* only wake, timeout, removal and "not registered" were seen */
	KUNIT_EXPECT_EQ(test, bad, 0);
	KUNIT_EXPECT_EQ_MSG(test, t->ret, 0, "after %u waits", t->round);
	kunit_info(test, "%u waits: %u woken, %u timed out, %u EIDRM, %u ENOENT\n",
		   t->round, t->results[0], t->results[1], t->results[2],
		   t->results[3]);
}

static void rfwake_test_stats(struct kunit *test)
{
	struct rfwake_test_ctx *ctx = test->priv;
	struct rfwake_domain *dom = ctx->dom;
	struct rfwake_test_async *ta0 = rfwake_test_async_new(test);
	struct rfwake_test_async *ta1 = rfwake_test_async_new(test);
	struct rfwake_stats before, after;
	u32 a, b, count = 0;
	u64 payload = 0;

	a = rfwake_test_register(test, dom);
	b = rfwake_test_register(test, dom);
	rfwake_stats_read(&before);
	KUNIT_EXPECT_EQ(test, rfwake_wake(dom, a, 1, false), 0);
	KUNIT_EXPECT_EQ(test, rfwake_wake(dom, a, 1, false), 0);
	KUNIT_EXPECT_EQ(test, rfwake_test_take(dom, a, &payload, &count), 0);
	KUNIT_EXPECT_EQ(test, rfwake_wait(dom, a, RFWAKE_WAIT_DEADLINE,
					  rfwake_test_after_ms(10), &payload,
					  &count),
			-ETIMEDOUT);
	KUNIT_EXPECT_EQ(test, rfwake_arm(dom, a, &ta0->async), 0);
	KUNIT_EXPECT_EQ(test, rfwake_wake(dom, a, 1, false), 1);
	KUNIT_EXPECT_EQ(test, rfwake_arm(dom, a, &ta1->async), 0);
	KUNIT_EXPECT_EQ(test, rfwake_cancel_armed(dom, -ECANCELED), 1);
	KUNIT_EXPECT_EQ(test, rfwake_swap(dom, b, 1, a, RFWAKE_SWAP_DEADLINE,
					  rfwake_test_after_ms(10), &payload,
					  &count),
			-ETIMEDOUT);
	rfwake_stats_read(&after);

	/* wakes: 2 pended on a, 1 to a command, 1 pended on b by the swap */
	KUNIT_EXPECT_EQ(test, after.wakes - before.wakes, 4);
	KUNIT_EXPECT_EQ(test, after.wakes_pended - before.wakes_pended, 3);
	/* waits: the take, the timed-out wait, the swap's; two slept */
	KUNIT_EXPECT_EQ(test, after.waits - before.waits, 3);
	KUNIT_EXPECT_EQ(test, after.waits_slept - before.waits_slept, 2);
	KUNIT_EXPECT_EQ(test, after.swaps - before.swaps, 1);
	KUNIT_EXPECT_EQ(test, after.timeouts - before.timeouts, 2);
	KUNIT_EXPECT_EQ(test, after.interrupted - before.interrupted, 0);
	/* commands: two armed, one completed by the wake, one canceled */
	KUNIT_EXPECT_EQ(test, after.cmds_armed - before.cmds_armed, 2);
	KUNIT_EXPECT_EQ(test, after.cmds_completed - before.cmds_completed, 1);
	KUNIT_EXPECT_EQ(test, after.cmds_canceled - before.cmds_canceled, 1);
}

static void rfwake_test_pingpong(struct kunit *test, bool use_swap)
{
	struct rfwake_test_ctx *ctx = test->priv;
	struct rfwake_test_thread *ping, *pong;
	u32 a, b, count = 0;
	u64 payload = 0;

	a = rfwake_test_register(test, ctx->dom);
	b = rfwake_test_register(test, ctx->dom);
	pong = rfwake_test_thread_new(test, rfwake_test_pong, b, a,
				      RFWAKE_TEST_ROUNDS);
	ping = rfwake_test_thread_new(test, rfwake_test_ping, a, b,
				      RFWAKE_TEST_ROUNDS);
	pong->use_swap = use_swap;
	ping->use_swap = use_swap;
	rfwake_test_go(pong);
	rfwake_test_go(ping);

	KUNIT_ASSERT_TRUE(test, rfwake_test_join(ping));
	KUNIT_ASSERT_TRUE(test, rfwake_test_join(pong));
	/* every round answered exactly once, in order */
	KUNIT_EXPECT_EQ_MSG(test, ping->ret, 0, "round %u count %u payload %llu",
			    ping->round, ping->count, ping->payload);
	KUNIT_EXPECT_EQ_MSG(test, pong->ret, 0, "round %u count %u payload %llu",
			    pong->round, pong->count, pong->payload);
	KUNIT_EXPECT_EQ(test, ping->round, RFWAKE_TEST_ROUNDS);
	KUNIT_EXPECT_EQ(test, pong->round, RFWAKE_TEST_ROUNDS);
	/* no wake left over on either side */
	KUNIT_EXPECT_FALSE(test, rfwake_any_pending(ctx->dom));
	KUNIT_EXPECT_EQ(test, rfwake_test_take(ctx->dom, a, &payload, &count),
			-EAGAIN);
	KUNIT_EXPECT_EQ(test, rfwake_test_take(ctx->dom, b, &payload, &count),
			-EAGAIN);
}

static void rfwake_test_pingpong_swap(struct kunit *test)
{
	rfwake_test_pingpong(test, true);
}

static void rfwake_test_pingpong_wake_wait(struct kunit *test)
{
	rfwake_test_pingpong(test, false);
}

static void rfwake_test_waker_vs_deadlines(struct kunit *test)
{
	struct rfwake_test_ctx *ctx = test->priv;
	struct rfwake_domain *dom = ctx->dom;
	unsigned long end = jiffies + msecs_to_jiffies(RFWAKE_TEST_JOIN_MS);
	unsigned int got = 0, waits = 0, timeouts = 0;
	struct rfwake_test_thread *waker;
	u64 payloads = 0, payload;
	u32 a, count;
	int ret = 0;

	a = rfwake_test_register(test, dom);
	waker = rfwake_test_thread_new(test, rfwake_test_waker, a, a,
				       RFWAKE_TEST_WAKES);
	rfwake_test_go(waker);

	/*
	 * Deadlines of 0 to 100 us: many waits time out just as a wake comes
	 * in.  A wake that races with the deadline must win or stay pending,
	 * never vanish, so the counts add up to exactly the wakes sent.
	 */
	while (got < RFWAKE_TEST_WAKES && !time_after(jiffies, end)) {
		ktime_t deadline = ktime_add_us(ktime_get(), (waits % 3) * 50);

		count = 0;
		payload = 0;
		ret = rfwake_wait(dom, a, RFWAKE_WAIT_DEADLINE, deadline,
				  &payload, &count);
		waits++;
		if (ret == -ETIMEDOUT) {
			timeouts++;
			continue;
		}
		if (ret)
			break;
		got += count;
		payloads |= payload;
	}

	KUNIT_ASSERT_TRUE(test, rfwake_test_join(waker));
	KUNIT_EXPECT_EQ(test, waker->ret, 0);
	KUNIT_EXPECT_EQ(test, ret, 0);
	/* every wake counted once, every payload bit seen */
	KUNIT_EXPECT_EQ(test, got, RFWAKE_TEST_WAKES);
	KUNIT_EXPECT_EQ(test, payloads, ~0ULL);
	KUNIT_EXPECT_FALSE(test, rfwake_any_pending(dom));
	kunit_info(test, "%u waits, %u timed out, %u wakes found a sleeper\n",
		   waits, timeouts, waker->woke);
}

static void rfwake_test_arm_then_wake(struct kunit *test)
{
	struct rfwake_test_ctx *ctx = test->priv;
	struct rfwake_domain *dom = ctx->dom;
	struct rfwake_test_async *ta = rfwake_test_async_new(test);
	struct rfwake_test_async *other = rfwake_test_async_new(test);
	u32 a, count = 0;
	u64 payload = 0;

	a = rfwake_test_register(test, dom);
	KUNIT_ASSERT_EQ(test, rfwake_arm(dom, a, &ta->async), 0);

	/* armed, parked, not completed; a holds no second waiter */
	KUNIT_EXPECT_EQ(test, atomic_read(&ta->completions), 0);
	KUNIT_EXPECT_EQ(test, ctx->shared[a], RFWAKE_STATE_PARKED);
	KUNIT_EXPECT_EQ(test, rfwake_arm(dom, a, &other->async), -EBUSY);
	KUNIT_EXPECT_EQ(test, rfwake_test_take(dom, a, &payload, &count),
			-EBUSY);

	/* the wake completes the command (1), in process context, unlocked */
	KUNIT_EXPECT_EQ(test, rfwake_wake(dom, a, 0x30, false), 1);
	KUNIT_EXPECT_EQ(test, atomic_read(&ta->completions), 1);
	KUNIT_EXPECT_EQ(test, ta->async.res, 1);
	KUNIT_EXPECT_EQ(test, ta->async.count, 1);
	KUNIT_EXPECT_EQ(test, ta->async.payload, 0x30);
	KUNIT_EXPECT_TRUE(test, ta->in_task);
	KUNIT_EXPECT_TRUE(test, ta->irqs_on);
	KUNIT_EXPECT_EQ(test, ctx->shared[a], RFWAKE_STATE_RUNNING);
	KUNIT_EXPECT_FALSE(test, rfwake_any_pending(dom));

	/* the command is gone: the next wake pends */
	KUNIT_EXPECT_EQ(test, rfwake_wake(dom, a, 0x1, false), 0);
	KUNIT_EXPECT_EQ(test, atomic_read(&ta->completions), 1);
	KUNIT_EXPECT_EQ(test, atomic_read(&other->completions), 0);
	KUNIT_EXPECT_EQ(test, rfwake_cancel_armed(dom, -ECANCELED), 0);
}

static void rfwake_test_arm_pending(struct kunit *test)
{
	struct rfwake_test_ctx *ctx = test->priv;
	struct rfwake_domain *dom = ctx->dom;
	struct rfwake_test_async *ta = rfwake_test_async_new(test);
	u32 a;

	a = rfwake_test_register_pending(test, dom, 0x1);
	KUNIT_ASSERT_EQ(test, rfwake_wake(dom, a, 0x4, false), 0);

	/* two wakes pending: the command completes at once, no callback */
	KUNIT_EXPECT_EQ(test, rfwake_arm(dom, a, &ta->async), 1);
	KUNIT_EXPECT_EQ(test, ta->async.res, 2);
	KUNIT_EXPECT_EQ(test, ta->async.count, 2);
	KUNIT_EXPECT_EQ(test, ta->async.payload, 0x5);
	KUNIT_EXPECT_EQ(test, atomic_read(&ta->completions), 0);
	KUNIT_EXPECT_FALSE(test, rfwake_any_pending(dom));
	KUNIT_EXPECT_EQ(test, ctx->shared[a], RFWAKE_STATE_RUNNING);
	/* and it is not armed */
	KUNIT_EXPECT_EQ(test, rfwake_cancel_armed(dom, -ECANCELED), 0);
	KUNIT_EXPECT_EQ(test, atomic_read(&ta->completions), 0);
}

static void rfwake_test_arm_unregister(struct kunit *test)
{
	struct rfwake_test_ctx *ctx = test->priv;
	struct rfwake_domain *dom = ctx->dom;
	struct rfwake_test_async *ta = rfwake_test_async_new(test);
	u32 a;

	a = rfwake_test_register(test, dom);
	KUNIT_ASSERT_EQ(test, rfwake_arm(dom, a, &ta->async), 0);
	KUNIT_ASSERT_EQ(test, rfwake_unregister(dom, a), 0);

	/* completed once with -EIDRM, and not armed any more */
	KUNIT_EXPECT_EQ(test, atomic_read(&ta->completions), 1);
	KUNIT_EXPECT_EQ(test, ta->async.res, -EIDRM);
	KUNIT_EXPECT_TRUE(test, ta->in_task);
	KUNIT_EXPECT_TRUE(test, ta->irqs_on);
	KUNIT_EXPECT_EQ(test, rfwake_cancel_armed(dom, -ECANCELED), 0);
	KUNIT_EXPECT_EQ(test, atomic_read(&ta->completions), 1);
	KUNIT_EXPECT_EQ(test, ctx->shared[a], RFWAKE_STATE_RUNNING);
}

static void rfwake_test_cancel_armed(struct kunit *test)
{
	struct rfwake_test_ctx *ctx = test->priv;
	struct rfwake_domain *dom = ctx->dom;
	struct rfwake_test_async *ta[2];
	u32 id[3], i;

	for (i = 0; i < ARRAY_SIZE(id); i++)
		id[i] = rfwake_test_register(test, dom);
	for (i = 0; i < ARRAY_SIZE(ta); i++) {
		ta[i] = rfwake_test_async_new(test);
		KUNIT_ASSERT_EQ(test, rfwake_arm(dom, id[i], &ta[i]->async), 0);
	}
	/* id[2] has a pending wake and no command */
	KUNIT_ASSERT_EQ(test, rfwake_wake(dom, id[2], 1, false), 0);

	/* two armed: both complete with the given result, once */
	KUNIT_EXPECT_EQ(test, rfwake_cancel_armed(dom, -ECANCELED), 2);
	for (i = 0; i < ARRAY_SIZE(ta); i++) {
		KUNIT_EXPECT_EQ(test, atomic_read(&ta[i]->completions), 1);
		KUNIT_EXPECT_EQ(test, ta[i]->async.res, -ECANCELED);
		KUNIT_EXPECT_TRUE(test, ta[i]->irqs_on);
		KUNIT_EXPECT_EQ(test, ctx->shared[id[i]], RFWAKE_STATE_RUNNING);
	}
	/* nothing armed now; the pending wake was left alone */
	KUNIT_EXPECT_EQ(test, rfwake_cancel_armed(dom, -ECANCELED), 0);
	KUNIT_EXPECT_TRUE(test, rfwake_any_pending(dom));
	/* a wake after the cancel pends instead of reaching the command */
	KUNIT_EXPECT_EQ(test, rfwake_wake(dom, id[0], 1, false), 0);
	for (i = 0; i < ARRAY_SIZE(ta); i++)
		KUNIT_EXPECT_EQ(test, atomic_read(&ta[i]->completions), 1);
}

static void rfwake_test_destroy_cancels(struct kunit *test)
{
	struct rfwake_test_ctx *ctx = test->priv;
	struct rfwake_domain *dom = ctx->dom;
	struct rfwake_test_async *ta[3];
	u32 i, id;

	for (i = 0; i < ARRAY_SIZE(ta); i++) {
		ta[i] = rfwake_test_async_new(test);
		id = rfwake_test_register(test, dom);
		KUNIT_ASSERT_EQ(test, rfwake_arm(dom, id, &ta[i]->async), 0);
	}
	/* a waiter with a pending wake and one with nothing: freed too */
	rfwake_test_register_pending(test, dom, 1);
	rfwake_test_register(test, dom);

	ctx->dom_ready = false;
	rfwake_domain_destroy(dom);

	/* each armed command completed exactly once, with -ECANCELED */
	for (i = 0; i < ARRAY_SIZE(ta); i++) {
		KUNIT_EXPECT_EQ(test, atomic_read(&ta[i]->completions), 1);
		KUNIT_EXPECT_EQ(test, ta[i]->async.res, -ECANCELED);
		KUNIT_EXPECT_TRUE(test, ta[i]->irqs_on);
	}
}

static void rfwake_test_wake_batch(struct kunit *test)
{
	struct rfwake_test_ctx *ctx = test->priv;
	struct rfwake_domain *dom = ctx->dom;
	struct rfwake_test_async *ta = rfwake_test_async_new(test);
	struct rfwake_target targets[3] = {};
	u32 a, b, c, count = 0;
	u64 payload = 0;

	a = rfwake_test_register(test, dom);
	b = rfwake_test_register(test, dom);
	c = rfwake_test_register(test, dom);
	KUNIT_ASSERT_EQ(test, rfwake_arm(dom, c, &ta->async), 0);
	targets[0] = (struct rfwake_target){ .id = a, .payload = 0x1 };
	targets[1] = (struct rfwake_target){ .id = c, .payload = 0x2 };
	targets[2] = (struct rfwake_target){ .id = a, .payload = 0x4 };

	/* a is named twice (both wakes merge), c is armed: one woken */
	KUNIT_EXPECT_EQ(test, rfwake_wake_batch(dom, targets, 3), 1);
	KUNIT_EXPECT_EQ(test, atomic_read(&ta->completions), 1);
	KUNIT_EXPECT_EQ(test, ta->async.res, 1);
	KUNIT_EXPECT_EQ(test, ta->async.payload, 0x2);
	rfwake_test_expect_taken(test, dom, a, 2, 0x5);
	KUNIT_EXPECT_EQ(test, rfwake_test_take(dom, b, &payload, &count),
			-EAGAIN);
	KUNIT_EXPECT_FALSE(test, rfwake_any_pending(dom));

	/* bad counts */
	KUNIT_EXPECT_EQ(test, rfwake_wake_batch(dom, targets, 0), -EINVAL);
	KUNIT_EXPECT_EQ(test, rfwake_wake_batch(dom, targets,
						RFWAKE_MAX_BATCH + 1),
			-EINVAL);

	/* a bad last target fails the batch before a or b is woken */
	targets[1].id = b;
	targets[2].__reserved = 1;
	KUNIT_EXPECT_EQ(test, rfwake_wake_batch(dom, targets, 3), -EINVAL);
	targets[2].__reserved = 0;
	targets[2].id = RFWAKE_TEST_WAITERS;
	KUNIT_EXPECT_EQ(test, rfwake_wake_batch(dom, targets, 3), -EINVAL);
	targets[2].id = RFWAKE_TEST_WAITERS - 1;
	KUNIT_EXPECT_EQ(test, rfwake_wake_batch(dom, targets, 3), -ENOENT);
	KUNIT_EXPECT_FALSE(test, rfwake_any_pending(dom));
}

static void rfwake_test_swap_to_armed(struct kunit *test)
{
	struct rfwake_test_ctx *ctx = test->priv;
	struct rfwake_domain *dom = ctx->dom;
	struct rfwake_test_async *ta = rfwake_test_async_new(test);
	ktime_t deadline;
	u32 a, b, count = 0;
	u64 payload = 0;
	int ret;

	a = rfwake_test_register(test, dom);
	b = rfwake_test_register(test, dom);
	/* b is an io_uring worker whose command answers a when it completes */
	ta->reply_dom = dom;
	ta->reply_id = a;
	ta->reply_payload = 0x80;
	KUNIT_ASSERT_EQ(test, rfwake_arm(dom, b, &ta->async), 0);

	/*
	 * The swap must complete b's command before it sleeps on a: b's
	 * answer is the only thing that can wake a.
	 */
	deadline = rfwake_test_after_ms(500);
	ret = rfwake_swap(dom, b, 0x40, a, RFWAKE_SWAP_DEADLINE, deadline,
			  &payload, &count);
	KUNIT_EXPECT_EQ(test, ret, 0);
	KUNIT_EXPECT_EQ(test, count, 1);
	KUNIT_EXPECT_EQ(test, payload, 0x80);
	KUNIT_EXPECT_EQ(test, atomic_read(&ta->completions), 1);
	KUNIT_EXPECT_EQ(test, ta->async.res, 1);
	KUNIT_EXPECT_EQ(test, ta->async.payload, 0x40);
	/* the answer found a claimed by the swap, asleep or about to be */
	KUNIT_EXPECT_GE(test, ta->reply_ret, 0);
}

static void rfwake_test_swap_notifies_poll(struct kunit *test)
{
	struct rfwake_test_ctx *ctx = test->priv;
	struct rfwake_domain *dom = ctx->dom;
	struct rfwake_test_thread *t;
	long left;
	u32 a, b;

	a = rfwake_test_register(test, dom);
	b = rfwake_test_register(test, dom);
	rfwake_test_watch_poll(test);
	/* t swaps: wakes b, which nobody waits on, and sleeps on a */
	t = rfwake_test_thread_new(test, rfwake_test_ping, a, b, 1);
	t->use_swap = true;
	rfwake_test_go(t);

	/*
	 * b's wake is pending, so poll must report it while t sleeps: this
	 * test plays the epoll user that sees it and answers a.
	 */
	left = wait_event_timeout(ctx->poll_seen, atomic_read(&ctx->poll_woken),
				  msecs_to_jiffies(2000));
	KUNIT_EXPECT_GT(test, left, 0);
	KUNIT_EXPECT_TRUE(test, rfwake_any_pending(dom));
	KUNIT_EXPECT_GE(test, rfwake_wake(dom, a, 1, false), 0);
	KUNIT_ASSERT_TRUE(test, rfwake_test_join(t));
	KUNIT_EXPECT_EQ(test, t->ret, 0);
	KUNIT_EXPECT_EQ(test, t->round, 1);
}

/*
 * A waker thread against a loop that arms a command, takes its result and
 * re-arms: each wake must reach exactly one command, whether it completes an
 * armed one or is found pending by the next rfwake_arm().
 */
static void rfwake_test_arm_vs_waker(struct kunit *test)
{
	struct rfwake_test_ctx *ctx = test->priv;
	struct rfwake_domain *dom = ctx->dom;
	unsigned long woken = msecs_to_jiffies(RFWAKE_TEST_WOKEN_MS);
	unsigned long end = jiffies + msecs_to_jiffies(RFWAKE_TEST_JOIN_MS);
	unsigned int got = 0, callbacks = 0, at_once = 0;
	struct rfwake_test_thread *waker;
	struct rfwake_test_async *ta;
	u64 payloads = 0;
	int ret = 0;
	u32 a;

	a = rfwake_test_register(test, dom);
	waker = rfwake_test_thread_new(test, rfwake_test_waker, a, a,
				       RFWAKE_TEST_WAKES);
	rfwake_test_go(waker);
	while (got < RFWAKE_TEST_WAKES && !time_after(jiffies, end)) {
		ta = rfwake_test_async_new(test);
		ret = rfwake_arm(dom, a, &ta->async);
		if (ret == 0) {
			if (!wait_for_completion_timeout(&ta->done, woken))
				break;
			callbacks++;
		} else if (ret == 1) {
			at_once++;
		} else {
			break;
		}
		if (ta->async.res <= 0)
			break;
		got += ta->async.count;
		payloads |= ta->async.payload;
		/* a command's memory is kunit-managed: bound it */
		kunit_kfree(test, ta);
	}

	KUNIT_ASSERT_TRUE(test, rfwake_test_join(waker));
	KUNIT_EXPECT_EQ(test, waker->ret, 0);
	KUNIT_EXPECT_GE(test, ret, 0);
	/* every wake counted once; nothing left armed or pending */
	KUNIT_EXPECT_EQ(test, got, RFWAKE_TEST_WAKES);
	KUNIT_EXPECT_EQ(test, payloads, ~0ULL);
	KUNIT_EXPECT_EQ(test, rfwake_cancel_armed(dom, -ECANCELED), 0);
	KUNIT_EXPECT_FALSE(test, rfwake_any_pending(dom));
	kunit_info(test, "%u completed by a wake, %u at once\n", callbacks,
		   at_once);
}

/*
 * The count of merged wakes goes back as an s32 too (an io_uring CQE's res),
 * so it saturates at RFWAKE_COUNT_MAX: 2^31 wakes must not come back as a
 * negative res, an errno.  The count is set near the limit directly; 2^31
 * wakes would take hours.
 */
static void rfwake_test_count_saturates(struct kunit *test)
{
	struct rfwake_test_ctx *ctx = test->priv;
	struct rfwake_domain *dom = ctx->dom;
	struct rfwake_test_async *ta = rfwake_test_async_new(test);
	u32 a, i;

	a = rfwake_test_register(test, dom);

	/* 2^31 - 2 wakes pending, three more: 2^31 + 1 */
	KUNIT_ASSERT_EQ(test, rfwake_kunit_set_pending(dom, a,
						       RFWAKE_COUNT_MAX - 1), 0);
	for (i = 0; i < 3; i++)
		KUNIT_EXPECT_EQ(test, rfwake_wake(dom, a, BIT(i), false), 0);
	KUNIT_EXPECT_EQ(test, rfwake_arm(dom, a, &ta->async), 1);
	KUNIT_EXPECT_GT_MSG(test, ta->async.res, 0, "a count read as an errno");
	KUNIT_EXPECT_EQ(test, ta->async.res, RFWAKE_COUNT_MAX);
	KUNIT_EXPECT_EQ(test, ta->async.count, RFWAKE_COUNT_MAX);
	KUNIT_EXPECT_EQ(test, ta->async.payload, 0x7);
	KUNIT_EXPECT_FALSE(test, rfwake_any_pending(dom));

	/* WAIT reports the same saturated count */
	KUNIT_ASSERT_EQ(test, rfwake_kunit_set_pending(dom, a,
						       RFWAKE_COUNT_MAX - 1), 0);
	for (i = 0; i < 3; i++)
		KUNIT_EXPECT_EQ(test, rfwake_wake(dom, a, BIT(i + 3), false), 0);
	rfwake_test_expect_taken(test, dom, a, RFWAKE_COUNT_MAX, 0x38);
	KUNIT_EXPECT_FALSE(test, rfwake_any_pending(dom));
}

/*
 * A thread sleeps on a, and a is unregistered and registered again before
 * that thread has run (rfwake_test_sleeper_held() keeps it from running).
 * The sleeper must leave with -EIDRM, and the new registration
 * must be the new owner's alone: its WAIT is not -EBUSY and its wakes do
 * not reach the old sleeper.
 */
static void rfwake_test_register_vs_leaving_sleeper(struct kunit *test)
{
	struct rfwake_test_ctx *ctx = test->priv;
	struct rfwake_domain *dom = ctx->dom;
	struct rfwake_test_thread *t;
	u32 a, b = U32_MAX, count = 0;
	u64 payload = 0;

	a = rfwake_test_register(test, dom);
	t = rfwake_test_sleeper_held(test, rfwake_test_wait_once, a);

	KUNIT_EXPECT_EQ(test, rfwake_unregister(dom, a), 0);
	KUNIT_ASSERT_EQ(test, rfwake_register(dom, 0, &b), 0);
	/* the sleeper is still there, so its id was not handed out */
	KUNIT_EXPECT_NE(test, b, a);
	/* nobody else waits on the new owner's id */
	KUNIT_EXPECT_EQ(test, rfwake_test_take(dom, b, &payload, &count),
			-EAGAIN);
	/* nobody sleeps on it either: its wake stays pending for its owner */
	KUNIT_EXPECT_EQ(test, rfwake_wake(dom, b, 0x9, false), 0);
	rfwake_test_let_run();

	KUNIT_ASSERT_TRUE(test, rfwake_test_join(t));
	KUNIT_EXPECT_EQ(test, t->ret, -EIDRM);
	KUNIT_EXPECT_LT(test, ktime_get(), t->deadline);
	rfwake_test_expect_taken(test, dom, b, 1, 0x9);
	kunit_info(test, "the sleeper left id %u, the new owner got %u\n", a, b);
}

/*
 * The same when the sleeper's id is the only one not taken: REGISTER must
 * not hand it out while the sleeper is still there (-EAGAIN), and hands it
 * out once the sleeper left.
 */
static void rfwake_test_register_full_but_leaving(struct kunit *test)
{
	struct rfwake_test_ctx *ctx = test->priv;
	struct rfwake_domain *dom = ctx->dom;
	struct rfwake_test_thread *t;
	u32 i, id;

	for (i = 0; i < RFWAKE_TEST_WAITERS; i++)
		KUNIT_ASSERT_EQ(test, rfwake_test_register(test, dom), i);
	t = rfwake_test_sleeper_held(test, rfwake_test_wait_once, 3);

	KUNIT_EXPECT_EQ(test, rfwake_unregister(dom, 3), 0);
	id = 1234;
	KUNIT_EXPECT_EQ(test, rfwake_register(dom, 0, &id), -EAGAIN);
	KUNIT_EXPECT_EQ(test, id, 1234);
	KUNIT_EXPECT_EQ(test, rfwake_nwaiters(dom), RFWAKE_TEST_WAITERS - 1);
	rfwake_test_let_run();

	KUNIT_ASSERT_TRUE(test, rfwake_test_join(t));
	KUNIT_EXPECT_EQ(test, t->ret, -EIDRM);
	/* the sleeper has left: id 3 is free again, and then the domain full */
	KUNIT_EXPECT_EQ(test, rfwake_test_register(test, dom), 3);
	KUNIT_EXPECT_EQ(test, rfwake_register(dom, 0, &id), -ENOSPC);
}

/* rfwake_visit_armed(): records the commands it is shown. */
struct rfwake_test_visit {
	const struct rfwake_async *seen[RFWAKE_TEST_WAITERS];
	unsigned int n;
	bool irqs_off;
};

static void rfwake_test_visit_one(const struct rfwake_async *async, void *arg)
{
	struct rfwake_test_visit *v = arg;

	v->irqs_off = irqs_disabled();
	if (v->n < ARRAY_SIZE(v->seen))
		v->seen[v->n++] = async;
}

/* rfwake_visit_armed() shows each armed command once, and nothing else. */
static void rfwake_test_visit_armed(struct kunit *test)
{
	struct rfwake_test_ctx *ctx = test->priv;
	struct rfwake_domain *dom = ctx->dom;
	struct rfwake_test_async *ta = rfwake_test_async_new(test);
	struct rfwake_test_async *tb = rfwake_test_async_new(test);
	struct rfwake_test_visit v = {};
	u32 a, b, c;

	a = rfwake_test_register(test, dom);
	b = rfwake_test_register(test, dom);
	c = rfwake_test_register_pending(test, dom, 0x1);
	rfwake_visit_armed(dom, rfwake_test_visit_one, &v);
	KUNIT_EXPECT_EQ(test, v.n, 0);

	KUNIT_ASSERT_EQ(test, rfwake_arm(dom, a, &ta->async), 0);
	KUNIT_ASSERT_EQ(test, rfwake_arm(dom, b, &tb->async), 0);
	rfwake_visit_armed(dom, rfwake_test_visit_one, &v);
	KUNIT_ASSERT_EQ(test, v.n, 2);
	KUNIT_EXPECT_PTR_EQ(test, v.seen[0], &ta->async);
	KUNIT_EXPECT_PTR_EQ(test, v.seen[1], &tb->async);
	/* under the waiter's lock (which leaves interrupts on with PREEMPT_RT) */
	if (!IS_ENABLED(CONFIG_PREEMPT_RT))
		KUNIT_EXPECT_TRUE(test, v.irqs_off);

	/* a completed command is not shown any more */
	KUNIT_EXPECT_EQ(test, rfwake_wake(dom, a, 0x2, false), 1);
	v.n = 0;
	rfwake_visit_armed(dom, rfwake_test_visit_one, &v);
	KUNIT_ASSERT_EQ(test, v.n, 1);
	KUNIT_EXPECT_PTR_EQ(test, v.seen[0], &tb->async);
	KUNIT_EXPECT_EQ(test, rfwake_cancel_armed(dom, -ECANCELED), 1);
	rfwake_test_expect_taken(test, dom, c, 1, 0x1);
}

/*
 * rfwake_disarm() takes back the one command it is given, without calling
 * ops->complete (io_uring's cancellation completes it), and leaves alone a
 * command that a wake took first: that one is completed once, by the wake.
 */
static void rfwake_test_disarm(struct kunit *test)
{
	struct rfwake_test_ctx *ctx = test->priv;
	struct rfwake_domain *dom = ctx->dom;
	struct rfwake_test_async *ta = rfwake_test_async_new(test);
	struct rfwake_test_async *tb = rfwake_test_async_new(test);
	struct rfwake_stats before, after;
	u32 a, b;

	a = rfwake_test_register(test, dom);
	b = rfwake_test_register(test, dom);
	KUNIT_ASSERT_EQ(test, rfwake_arm(dom, a, &ta->async), 0);
	KUNIT_ASSERT_EQ(test, rfwake_arm(dom, b, &tb->async), 0);
	KUNIT_EXPECT_EQ(test, ctx->shared[b], RFWAKE_STATE_PARKED);

	rfwake_stats_read(&before);
	KUNIT_EXPECT_TRUE(test, rfwake_disarm(dom, &tb->async, -ECANCELED));
	rfwake_stats_read(&after);
	KUNIT_EXPECT_EQ(test, tb->async.res, -ECANCELED);
	KUNIT_EXPECT_EQ(test, atomic_read(&tb->completions), 0);
	KUNIT_EXPECT_EQ(test, ctx->shared[b], RFWAKE_STATE_RUNNING);
	KUNIT_EXPECT_EQ(test, after.cmds_canceled - before.cmds_canceled, 1);
	/* only that one: a's command is still armed */
	KUNIT_EXPECT_EQ(test, ctx->shared[a], RFWAKE_STATE_PARKED);
	/* once: a second call finds it gone */
	KUNIT_EXPECT_FALSE(test, rfwake_disarm(dom, &tb->async, -ECANCELED));
	/* a wake of b now pends: nothing is armed on it */
	KUNIT_EXPECT_EQ(test, rfwake_wake(dom, b, 0x4, false), 0);
	rfwake_test_expect_taken(test, dom, b, 1, 0x4);

	/* a wake took a's command first: disarm leaves it to the wake */
	KUNIT_EXPECT_EQ(test, rfwake_wake(dom, a, 0x8, false), 1);
	KUNIT_EXPECT_EQ(test, atomic_read(&ta->completions), 1);
	KUNIT_EXPECT_FALSE(test, rfwake_disarm(dom, &ta->async, -ECANCELED));
	KUNIT_EXPECT_EQ(test, ta->async.res, 1);
	KUNIT_EXPECT_EQ(test, ta->async.payload, 0x8);
	KUNIT_EXPECT_EQ(test, atomic_read(&ta->completions), 1);
	KUNIT_EXPECT_EQ(test, rfwake_cancel_armed(dom, -ECANCELED), 0);
}

/**
 * struct rfwake_test_irq_wake - rfwake_wake() called from a hard interrupt.
 * @work: a HARD irq_work: hard interrupt context on every kernel.
 * @dom: the domain.
 * @id: the waiter to wake.
 * @payload: the wake's payload.
 * @ret: what rfwake_wake() returned.
 * @in_hardirq: the call ran in hard interrupt context.
 * @irqs_off_after: interrupts were still off when it returned.
 *
 * This is how block notification (rfwake_watch.c) delivers its wakes on
 * kernels without PREEMPT_RT.
 */
struct rfwake_test_irq_wake {
	struct irq_work work;
	struct rfwake_domain *dom;
	u32 id;
	u64 payload;
	int ret;
	bool in_hardirq;
	bool irqs_off_after;
};

static void rfwake_test_irq_wake_fn(struct irq_work *work)
{
	struct rfwake_test_irq_wake *iw =
		container_of(work, struct rfwake_test_irq_wake, work);

	iw->in_hardirq = in_hardirq();
	iw->ret = rfwake_wake(iw->dom, iw->id, iw->payload, false);
	iw->irqs_off_after = irqs_disabled();
}

/* Calls rfwake_wake(@dom, @id, @payload) in a hard interrupt and waits. */
static void rfwake_test_wake_in_irq(struct kunit *test,
				    struct rfwake_test_irq_wake *iw,
				    struct rfwake_domain *dom, u32 id,
				    u64 payload)
{
	iw->work = IRQ_WORK_INIT_HARD(rfwake_test_irq_wake_fn);
	iw->dom = dom;
	iw->id = id;
	iw->payload = payload;
	iw->ret = INT_MIN;
	KUNIT_ASSERT_TRUE(test, irq_work_queue(&iw->work));
	irq_work_sync(&iw->work);
	KUNIT_EXPECT_TRUE(test, iw->in_hardirq);
	/* spin_unlock_irq() there would have turned interrupts on */
	KUNIT_EXPECT_TRUE(test, iw->irqs_off_after);
}

static void rfwake_test_wake_from_hardirq(struct kunit *test)
{
	struct rfwake_test_ctx *ctx = test->priv;
	struct rfwake_domain *dom = ctx->dom;
	struct rfwake_test_async *ta = rfwake_test_async_new(test);
	struct rfwake_test_irq_wake *iw;
	struct rfwake_test_thread *t;
	u32 a, b, c;

	/*
	 * With PREEMPT_RT a wait queue's lock sleeps, so no wake may come from
	 * a hard interrupt; block notification's irq_work runs in a thread there.
	 */
	if (IS_ENABLED(CONFIG_PREEMPT_RT))
		kunit_skip(test, "PREEMPT_RT: rfwake_wake() is never called in a hard interrupt");
	iw = kunit_kzalloc(test, sizeof(*iw), GFP_KERNEL);
	KUNIT_ASSERT_NOT_ERR_OR_NULL(test, iw);
	a = rfwake_test_register(test, dom);
	b = rfwake_test_register(test, dom);
	c = rfwake_test_register(test, dom);

	/* a sleeper gets the payload */
	t = rfwake_test_sleeper(test, rfwake_test_wait_once, a);
	rfwake_test_wake_in_irq(test, iw, dom, a, 0x30);
	KUNIT_EXPECT_EQ(test, iw->ret, 1);
	KUNIT_ASSERT_TRUE(test, rfwake_test_join(t));
	KUNIT_EXPECT_EQ(test, t->ret, 0);
	KUNIT_EXPECT_EQ(test, t->count, 1);
	KUNIT_EXPECT_EQ(test, t->payload, 0x30);

	/* an armed command completes, its callback called in the interrupt */
	KUNIT_ASSERT_EQ(test, rfwake_arm(dom, b, &ta->async), 0);
	rfwake_test_wake_in_irq(test, iw, dom, b, 0x4);
	KUNIT_EXPECT_EQ(test, iw->ret, 1);
	KUNIT_EXPECT_EQ(test, atomic_read(&ta->completions), 1);
	KUNIT_EXPECT_FALSE(test, ta->in_task);
	KUNIT_EXPECT_EQ(test, ta->async.res, 1);
	KUNIT_EXPECT_EQ(test, ta->async.payload, 0x4);

	/* nobody waiting: the wake stays pending and merges */
	rfwake_test_wake_in_irq(test, iw, dom, c, 0x1);
	KUNIT_EXPECT_EQ(test, iw->ret, 0);
	rfwake_test_wake_in_irq(test, iw, dom, c, 0x2);
	KUNIT_EXPECT_EQ(test, iw->ret, 0);
	rfwake_test_expect_taken(test, dom, c, 2, 0x3);
}

#if IS_ENABLED(CONFIG_PREEMPT_NOTIFIERS)
/**
 * struct rfwake_test_watched - a kernel thread that watches itself.
 * @set: the watch set.
 * @watch_id: its words.
 * @notify_id: the standby.
 * @go: the test lets the thread on (it blocks on this first).
 * @done: the thread's job ended.
 * @unwatch: end the watch (else exit watched).
 * @watch_ret: rfwake_watch()'s result.
 * @unwatch_ret: rfwake_unwatch()'s result.
 * @seq_running: seq[@watch_id] once it ran again.
 */
struct rfwake_test_watched {
	struct rfwake_watch_set *set;
	u32 watch_id;
	u32 notify_id;
	struct completion go;
	struct completion done;
	bool unwatch;
	int watch_ret;
	int unwatch_ret;
	u32 seq_running;
};

static int rfwake_test_watched_fn(void *data)
{
	struct rfwake_test_watched *tw = data;
	struct rfwake_watch arg = {
		.watch_id = tw->watch_id,
		.notify_id = tw->notify_id,
		.payload = 0x50,
	};

	tw->watch_ret = rfwake_watch(tw->set, &arg);
	WRITE_ONCE(tw->set->armed[tw->watch_id], 1);
	/* blocks: the notifier sees this thread switched out, not runnable */
	wait_for_completion_timeout(&tw->go,
				    msecs_to_jiffies(RFWAKE_TEST_JOIN_MS));
	tw->seq_running = READ_ONCE(tw->set->seq[tw->watch_id]);
	WRITE_ONCE(tw->set->armed[tw->watch_id], 0);
	if (tw->unwatch)
		tw->unwatch_ret = rfwake_unwatch();
	complete(&tw->done);
	return 0;
}

static void rfwake_test_set_free(struct rfwake_watch_set *set)
{
}

/*
 * The whole path of a block notification, on UML: a watched kernel thread
 * blocks, the standby's wait returns with the watch's payload while seq is
 * odd; seq is even once the thread runs; the watch of a thread that exits
 * watched is freed (its reference to the set dropped).
 */
static void rfwake_test_watch_block(struct kunit *test)
{
	struct rfwake_test_ctx *ctx = test->priv;
	struct rfwake_domain *dom = ctx->dom;
	struct rfwake_test_watched *tw;
	struct rfwake_watch_set *set;
	struct task_struct *task;
	unsigned long end, joined;
	int pass, ret;
	u32 standby, id, count = 0, seq;
	u64 payload = 0;

	set = kunit_kzalloc(test, sizeof(*set), GFP_KERNEL);
	tw = kunit_kzalloc(test, sizeof(*tw), GFP_KERNEL);
	KUNIT_ASSERT_NOT_ERR_OR_NULL(test, set);
	KUNIT_ASSERT_NOT_ERR_OR_NULL(test, tw);
	KUNIT_ASSERT_EQ(test, rfwake_watch_set_init(set, dom,
						    rfwake_test_set_free), 0);
	standby = rfwake_test_register(test, dom);
	id = rfwake_test_register(test, dom);

	for (pass = 0; pass < 2; pass++) {
		init_completion(&tw->go);
		init_completion(&tw->done);
		tw->set = set;
		tw->watch_id = id;
		tw->notify_id = standby;
		tw->unwatch = pass == 0;
		task = kthread_run(rfwake_test_watched_fn, tw, "rfwake_watch/%d",
				   pass);
		KUNIT_ASSERT_FALSE(test, IS_ERR(task));

		ret = rfwake_wait(dom, standby, RFWAKE_WAIT_DEADLINE,
				  rfwake_test_after_ms(RFWAKE_TEST_WOKEN_MS),
				  &payload, &count);
		seq = READ_ONCE(set->seq[id]);
		complete(&tw->go);
		joined = msecs_to_jiffies(RFWAKE_TEST_JOIN_MS);
		joined = wait_for_completion_timeout(&tw->done, joined);
		KUNIT_ASSERT_TRUE(test, joined);
		KUNIT_EXPECT_EQ(test, tw->watch_ret, 0);
		KUNIT_EXPECT_EQ_MSG(test, ret, 0, "pass %d", pass);
		KUNIT_EXPECT_EQ(test, payload, 0x50);
		KUNIT_EXPECT_TRUE_MSG(test, seq & 1, "seq %u while blocked", seq);
		KUNIT_EXPECT_FALSE_MSG(test, tw->seq_running & 1,
				       "seq %u once running", tw->seq_running);
		if (tw->unwatch) {
			KUNIT_EXPECT_EQ(test, tw->unwatch_ret, 0);
			KUNIT_EXPECT_EQ(test, refcount_read(&set->refs), 1);
		}
	}
	/* the second thread exited watched: a work frees its watch */
	end = jiffies + msecs_to_jiffies(RFWAKE_TEST_JOIN_MS);
	while (refcount_read(&set->refs) != 1 && time_before(jiffies, end))
		msleep(20);
	KUNIT_EXPECT_EQ(test, refcount_read(&set->refs), 1);
	if (rfwake_watch_set_close(set))
		rfwake_watch_set_destroy(set);
}
#endif

static struct kunit_case rfwake_test_cases[] = {
	KUNIT_CASE(rfwake_test_domain_init_limits),
	KUNIT_CASE(rfwake_test_register_lowest_free),
	KUNIT_CASE(rfwake_test_register_every_id),
	KUNIT_CASE_PARAM(rfwake_test_bad_flags, rfwake_test_bad_flag_gen_params),
	KUNIT_CASE(rfwake_test_bad_ids),
	KUNIT_CASE(rfwake_test_wakes_coalesce),
	KUNIT_CASE(rfwake_test_any_pending),
	KUNIT_CASE(rfwake_test_unregister_drops_pending),
	KUNIT_CASE(rfwake_test_pending_notifies_poll),
	KUNIT_CASE(rfwake_test_deadline_past),
	KUNIT_CASE(rfwake_test_deadline_sleeps_until),
	KUNIT_CASE(rfwake_test_deadline_needs_flag),
	KUNIT_CASE(rfwake_test_wake_sleeper),
	KUNIT_CASE(rfwake_test_wake_woken_sleeper),
	KUNIT_CASE(rfwake_test_unregister_sleeper),
	KUNIT_CASE(rfwake_test_signal_interrupts),
	KUNIT_CASE(rfwake_test_signal_loses_to_wake),
	KUNIT_CASE(rfwake_test_unregister_vs_waiter),
	KUNIT_CASE(rfwake_test_stats),
	KUNIT_CASE(rfwake_test_pingpong_swap),
	KUNIT_CASE(rfwake_test_pingpong_wake_wait),
	KUNIT_CASE(rfwake_test_waker_vs_deadlines),
	KUNIT_CASE(rfwake_test_arm_then_wake),
	KUNIT_CASE(rfwake_test_arm_pending),
	KUNIT_CASE(rfwake_test_arm_unregister),
	KUNIT_CASE(rfwake_test_cancel_armed),
	KUNIT_CASE(rfwake_test_destroy_cancels),
	KUNIT_CASE(rfwake_test_wake_batch),
	KUNIT_CASE(rfwake_test_swap_to_armed),
	KUNIT_CASE(rfwake_test_swap_notifies_poll),
	KUNIT_CASE(rfwake_test_arm_vs_waker),
	KUNIT_CASE(rfwake_test_count_saturates),
	KUNIT_CASE(rfwake_test_register_vs_leaving_sleeper),
	KUNIT_CASE(rfwake_test_register_full_but_leaving),
	KUNIT_CASE(rfwake_test_visit_armed),
	KUNIT_CASE(rfwake_test_disarm),
	KUNIT_CASE(rfwake_test_wake_from_hardirq),
#if IS_ENABLED(CONFIG_PREEMPT_NOTIFIERS)
	KUNIT_CASE(rfwake_test_watch_block),
#endif
	{}
};

static struct kunit_suite rfwake_test_suite = {
	.name = "rfwake",
	.init = rfwake_test_init,
	.exit = rfwake_test_exit,
	.test_cases = rfwake_test_cases,
};

kunit_test_suite(rfwake_test_suite);
