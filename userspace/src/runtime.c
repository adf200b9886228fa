// SPDX-License-Identifier: MIT
/*
 * runtime.c - creating a runtime (probing io_uring), its worker loop, and
 * tearing it down.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

#define RF__DEFAULT_RING_ENTRIES 256
#define RF__MAX_RING_ENTRIES 32768
#define RF__DEFAULT_STACK_POOL 256

#define RF__KNOWN_FLAGS (RF_RT_NO_DEFER_TASKRUN | RF_RT_NO_COOP_TASKRUN | \
			 RF_RT_NO_MULTISHOT_ACCEPT | RF_RT_NO_GUARD_MADVISE | \
			 RF_RT_NO_OVERFLOW_HANDLER | RF_RT_NO_RING)

/*
 * Ask for the best ring the kernel has, dropping one feature at a time:
 *  1. SINGLE_ISSUER + DEFER_TASKRUN (6.1): completions are processed only
 *     when the worker asks, in its own context, never by interrupting it;
 *  2. COOP_TASKRUN (5.19): no inter-processor interrupt to run task work;
 *  3. nothing: plain ring (5.5+; IORING_FEAT_NODROP is required).
 * TASKRUN_FLAG goes with 1 and 2: the kernel raises IORING_SQ_TASKRUN when
 * completions wait to be processed, so the loop enters only when needed.
 * R_DISABLED keeps the ring off until rf_runtime_run(): SINGLE_ISSUER then
 * binds it to the thread that runs the runtime, not the one that made it.
 */
static int rf__ring_setup(struct rf_runtime *rt, unsigned int entries)
{
	static const struct {
		unsigned int setup, features, unless;
	} tries[] = {
		{ IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN |
		  IORING_SETUP_TASKRUN_FLAG | IORING_SETUP_R_DISABLED,
		  RF_FEAT_SINGLE_ISSUER | RF_FEAT_DEFER_TASKRUN, RF_RT_NO_DEFER_TASKRUN },
		{ IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG,
		  RF_FEAT_COOP_TASKRUN, RF_RT_NO_COOP_TASKRUN },
		{ 0, 0, 0 },
	};
	int ret = -EINVAL;

	for (size_t i = 0; i < sizeof(tries) / sizeof(tries[0]); i++) {
		struct io_uring_params p;

		if (rt->flags & tries[i].unless)
			continue;
		memset(&p, 0, sizeof(p));
		p.flags = tries[i].setup | IORING_SETUP_CQSIZE | IORING_SETUP_SUBMIT_ALL;
		/* the kernel caps the CQ at 2 * IORING_MAX_ENTRIES (65536) */
		p.cq_entries = entries * 4 > 65536 ? 65536 : entries * 4;
		ret = io_uring_queue_init_params(entries, &rt->ring, &p);
		if (ret == -EINVAL) {
			/* SUBMIT_ALL is 5.18: try once more without it */
			p.flags &= ~IORING_SETUP_SUBMIT_ALL;
			ret = io_uring_queue_init_params(entries, &rt->ring, &p);
		} else if (ret == 0) {
			rt->features |= RF_FEAT_SUBMIT_ALL;
		}
		if (ret == 0) {
			if (!(p.features & IORING_FEAT_NODROP)) {
				/* Before 5.5 a full CQ drops completions: fibers would hang. */
				io_uring_queue_exit(&rt->ring);
				return -ENOSYS;
			}
			rt->features |= RF_FEAT_RING | tries[i].features;
			if (p.features & IORING_FEAT_CQE_SKIP)
				rt->features |= RF_FEAT_CQE_SKIP;
			return 0;
		}
		if (ret == -ENOSYS || ret == -EPERM)
			return ret;	/* no io_uring at all (or disabled by sysctl) */
	}
	return ret;
}

RF_EXPORT int rf_runtime_create(struct rf_runtime **rtp, const struct rf_runtime_opts *opts)
{
	struct rf_runtime_opts o = { 0 };
	struct rf_runtime *rt;
	int ret;

	if (!rtp)
		return -EINVAL;
	if (opts)
		o = *opts;
	if (o.flags & ~RF__KNOWN_FLAGS)
		return -EINVAL;
	if (!o.stack_size)
		o.stack_size = RF_DEFAULT_STACK_SIZE;
	if (o.stack_size < RF_MIN_STACK_SIZE || o.stack_size > RF_MAX_STACK_SIZE)
		return -EINVAL;
	if (!o.ring_entries)
		o.ring_entries = RF__DEFAULT_RING_ENTRIES;
	if (o.ring_entries > RF__MAX_RING_ENTRIES || (o.ring_entries & (o.ring_entries - 1)))
		return -EINVAL;
	if (!o.stack_pool)
		o.stack_pool = RF__DEFAULT_STACK_POOL;

	rt = calloc(1, sizeof(*rt));
	if (!rt)
		return -ENOMEM;
	rt->flags = o.flags;
	rt->page_size = (size_t)sysconf(_SC_PAGESIZE);
	rt->stack_size = (o.stack_size + rt->page_size - 1) / rt->page_size * rt->page_size;
	rt->stack_pool_max = o.stack_pool;

	if (!(o.flags & RF_RT_NO_GUARD_MADVISE) && rf__guard_madvise_works())
		rt->features |= RF_FEAT_GUARD_MADVISE;
	if (!(o.flags & RF_RT_NO_OVERFLOW_HANDLER)) {
		ret = rf__overflow_handler_install();
		if (ret)
			goto err_free;
	}
	if (!(o.flags & RF_RT_NO_RING)) {
		ret = rf__ring_setup(rt, o.ring_entries);
		if (ret && ret != -ENOSYS && ret != -EPERM)
			goto err_free;
		/* no io_uring: schedule fibers anyway; I/O returns -ENOSYS */
		if (ret == 0 && !(o.flags & RF_RT_NO_MULTISHOT_ACCEPT))
			rt->features |= RF_FEAT_MULTISHOT_ACCEPT;	/* confirmed on first use */
	}
	*rtp = rt;
	return 0;

err_free:
	free(rt);
	return ret;
}

/* Completions are waiting in the kernel (deferred task work, CQ overflow). */
static bool rf__kernel_has_completions(struct rf_runtime *rt)
{
	return IO_URING_READ_ONCE(*rt->ring.sq.kflags) &
	       (IORING_SQ_TASKRUN | IORING_SQ_CQ_OVERFLOW);
}

static void rf__cancel_all(struct rf_runtime *rt)
{
	for (struct rf_fiber *f = rt->all; f; f = f->all_next)
		if (f->state != RF__DONE)
			rf__cancel_fiber(rt, f);
}

/*
 * The worker loop: runs on the thread's own stack whenever the run queue is
 * empty or the switch budget is spent.  It never blocks while a fiber is
 * ready; when none is, it submits and waits in one io_uring_enter().
 */
static int rf__loop(struct rf_runtime *rt)
{
	bool has_ring = rt->features & RF_FEAT_RING;
	int ret = 0;

	while (rt->nlive) {
		if (has_ring)
			rf__reap(rt);
		if (!rt->runq.head) {
			if (!rt->inflight) {
				/*
				 * Every fiber is parked on another fiber and no
				 * request is out: nothing can ever wake them.
				 */
				ret = -EDEADLK;
				if (rt->deadlock_cancelled)
					break;
				rt->deadlock_cancelled = true;
				rf__cancel_all(rt);
				continue;
			}
			rf__flush(rt, true);
			continue;
		}
		if (has_ring && (rt->unsubmitted || rf__kernel_has_completions(rt))) {
			rf__flush(rt, false);
			rf__reap(rt);
		}
		rt->budget = RF__SWITCH_BUDGET;
		rf__loop_switch_to(rt, rf__runq_pop(&rt->runq));
	}
	return ret;
}

/*
 * Once the run is over no fiber is left to call rf_join(): free the
 * finished fibers nobody joined.
 */
static void rf__free_unjoined(struct rf_runtime *rt)
{
	struct rf_fiber *f = rt->all, *next;

	for (; f; f = next) {
		next = f->all_next;
		if (f->state == RF__DONE) {
			rf__all_unlink(rt, f);
			rf__stack_free(rt, f);
		}
	}
}

RF_EXPORT int rf_runtime_run(struct rf_runtime *rt, rf_fn fn, void *arg, void **result)
{
	int ret;

	if (!rt || !fn)
		return -EINVAL;
	if (rt->running || rf__tls_rt)
		return -EBUSY;
	/* The kernel would refuse every submission from another thread. */
	if ((rt->features & RF_FEAT_SINGLE_ISSUER) && rt->owner_tid && rt->owner_tid != gettid())
		return -EINVAL;
	if ((rt->features & RF_FEAT_SINGLE_ISSUER) && (rt->ring.flags & IORING_SETUP_R_DISABLED)) {
		/* liburing 2.3 has no io_uring_enable_rings(): register directly */
		if (syscall(__NR_io_uring_register, rt->ring.ring_fd,
			    IORING_REGISTER_ENABLE_RINGS, NULL, 0) != 0)
			return -errno;
		rt->ring.flags &= ~IORING_SETUP_R_DISABLED;
		rt->owner_tid = gettid();
	}
	ret = rf__spawn(rt, NULL, fn, arg, NULL, true);
	if (ret)
		return ret;
	if (!(rt->flags & RF_RT_NO_OVERFLOW_HANDLER)) {
		ret = rf__altstack_enter(rt);
		if (ret)
			return ret;
	}
#ifdef __SANITIZE_ADDRESS__
	{
		pthread_attr_t attr;
		void *addr;

		if (pthread_getattr_np(pthread_self(), &attr) == 0) {
			pthread_attr_getstack(&attr, &addr, &rt->thread_stack_size);
			rt->thread_stack_bottom = addr;
			pthread_attr_destroy(&attr);
		}
	}
#endif
	rt->running = true;
	rt->deadlock_cancelled = false;
	rf__tls_rt = rt;
	ret = rf__loop(rt);
	rf__free_unjoined(rt);
	rf__tls_rt = NULL;
	rt->running = false;
	rf__altstack_leave(rt);
	if (result)
		*result = rt->main_result;
	return ret;
}

RF_EXPORT void rf_runtime_destroy(struct rf_runtime *rt)
{
	if (!rt || rt->running)
		return;
	if (rt->features & RF_FEAT_RING) {
		io_uring_queue_exit(&rt->ring);
		rf__acceptors_destroy(rt);
	}
	/* Fibers left by a deadlocked run: nothing will ever resume them. */
	while (rt->all) {
		struct rf_fiber *f = rt->all;

		rt->all = f->all_next;
		rf__stack_free(rt, f);
	}
	rf__stack_pool_drain(rt);
	free(rt);
}

RF_EXPORT int rf_runtime_stats(struct rf_runtime *rt, struct rf_stats *st)
{
	if (!rt)
		rt = rf__tls_rt;
	if (!rt || !st)
		return -EINVAL;
	st->features = rt->features;
	st->fibers = rt->nfibers;
	st->inflight = rt->inflight;
	st->switches = rt->switches;
	st->enters = rt->enters;
	st->sqes = rt->sqes;
	st->cqes = rt->cqes;
	st->stacks_mapped = rt->stacks_mapped;
	st->stacks_pooled = rt->stacks_pooled;
	return 0;
}

RF_EXPORT int64_t rf_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

RF_EXPORT int64_t rf_deadline_after(int64_t ns)
{
	if (ns < 0)
		return RF_NO_DEADLINE;
	return rf_now() + ns;
}
