// SPDX-License-Identifier: MIT
/*
 * setup.c - what rf_runtime_create() learns of the kernel (probing
 * io_uring with a ring made for the purpose, choosing the wake back-end)
 * and what each worker sets up on its own thread at the start of a run
 * (its CPU, its ring, its back-end) and tears down at the end.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "compat.h"
#include "internal.h"

#ifdef __SANITIZE_THREAD__
#include <sanitizer/tsan_interface.h>
#endif

static const struct {
	unsigned int setup, features, unless;
} rf__ring_tries[] = {
	/*
	 * 1. SINGLE_ISSUER + DEFER_TASKRUN (6.1): completions are processed
	 *    only when the worker asks, in its own context, never by
	 *    interrupting it;
	 * 2. COOP_TASKRUN (5.19): no inter-processor interrupt to run task work;
	 * 3. nothing: plain ring (5.5+; IORING_FEAT_NODROP is required).
	 * TASKRUN_FLAG goes with 1 and 2: the kernel raises IORING_SQ_TASKRUN
	 * when completions wait to be processed, so the loop enters only when
	 * needed.  Each worker makes its own ring, on its own thread, at the
	 * start of a run: SINGLE_ISSUER then binds it to that thread.
	 */
	{ IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_TASKRUN_FLAG,
	  RF_FEAT_SINGLE_ISSUER | RF_FEAT_DEFER_TASKRUN, RF_RT_NO_DEFER_TASKRUN },
	{ IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG,
	  RF_FEAT_COOP_TASKRUN, RF_RT_NO_COOP_TASKRUN },
	{ 0, 0, 0 },
};

/*
 * Make a ring with the best setup the kernel takes; with @features already
 * probed, make exactly that one again.
 */
static int rf__ring_init(struct io_uring *ring, unsigned int entries, unsigned int flags,
			 unsigned int *features, bool probe)
{
	int ret = -EINVAL;

	for (size_t i = 0; i < sizeof(rf__ring_tries) / sizeof(rf__ring_tries[0]); i++) {
		unsigned int want = rf__ring_tries[i].features;
		struct io_uring_params p;

		if (flags & rf__ring_tries[i].unless)
			continue;
		if (!probe && (*features & (RF_FEAT_SINGLE_ISSUER | RF_FEAT_COOP_TASKRUN)) !=
			      (want & (RF_FEAT_SINGLE_ISSUER | RF_FEAT_COOP_TASKRUN)))
			continue;
		memset(&p, 0, sizeof(p));
		p.flags = rf__ring_tries[i].setup | IORING_SETUP_CQSIZE;
		if (probe || (*features & RF_FEAT_SUBMIT_ALL))
			p.flags |= IORING_SETUP_SUBMIT_ALL;
		/* the kernel caps the CQ at 2 * IORING_MAX_ENTRIES (65536) */
		p.cq_entries = entries * 4 > 65536 ? 65536 : entries * 4;
		ret = io_uring_queue_init_params(entries, ring, &p);
		if (ret == -EINVAL && probe) {
			/* SUBMIT_ALL is 5.18: try once more without it */
			p.flags &= ~IORING_SETUP_SUBMIT_ALL;
			ret = io_uring_queue_init_params(entries, ring, &p);
		} else if (ret == 0 && probe) {
			*features |= RF_FEAT_SUBMIT_ALL;
		}
		if (ret == 0) {
			if (!(p.features & IORING_FEAT_NODROP)) {
				/* Before 5.5 a full CQ drops completions: fibers would hang. */
				io_uring_queue_exit(ring);
				return -ENOSYS;
			}
			if (probe) {
				*features |= RF_FEAT_RING | want;
				if (p.features & IORING_FEAT_CQE_SKIP)
					*features |= RF_FEAT_CQE_SKIP;
			}
			return 0;
		}
		if (ret == -ENOSYS || ret == -EPERM)
			return ret;	/* no io_uring at all (or disabled by sysctl) */
	}
	return ret;
}

/* Learn what the kernel has, with a ring made for the purpose. */
static int rf__probe(struct rf_runtime *rt)
{
	struct io_uring ring;
	struct io_uring_probe *probe;
	int ret = rf__ring_init(&ring, 8, rt->flags, &rt->features, true);

	if (ret)
		return ret;
	probe = io_uring_get_probe_ring(&ring);
	if (probe) {
		if (io_uring_opcode_supported(probe, IORING_OP_MSG_RING))
			rt->features |= RF_FEAT_MSG_RING;
		if (io_uring_opcode_supported(probe, IORING_OP_FUTEX_WAIT))
			rt->features |= RF_FEAT_FUTEX_WAIT;
		/* a ring like the workers' is what the module has to work with */
		if (io_uring_opcode_supported(probe, IORING_OP_URING_CMD) && rf__rfwake_probe(&ring))
			rt->features |= RF_FEAT_RFWAKE;
		io_uring_free_probe(probe);
	}
	io_uring_queue_exit(&ring);
	return 0;
}

static const struct rf__wake_ops *rf__wake_backends[RF_WAKE_NR] = {
	[RF_WAKE_MSG_RING] = &rf__wake_msg_ring,
	[RF_WAKE_EVENTFD] = &rf__wake_eventfd,
	[RF_WAKE_FUTEX] = &rf__wake_futex,
	[RF_WAKE_RFWAKE] = &rf__wake_rfwake,
};

/*
 * RF_WAKE_AUTO's order of preference: the fastest measured first.  A
 * sleeping worker's wake-up (wake_<be>_nospin_ns in rf-bench) took msg_ring
 * 18.7 us, eventfd 19.3 us and futex 19.5 us on the development VM; rfwake
 * is measured only in the test VM under qemu TCG, where it took 0.6 to 1.23
 * times msg_ring's time (Documentation/scheduler.md).  Until a figure shows
 * it faster, rfwake is used only when asked for (RF_WAKE_BACKEND=rfwake).
 * eventfd works wherever io_uring does, so futex is only ever used when
 * asked for too.
 */
static const unsigned int rf__wake_auto_order[] = {
	RF_WAKE_MSG_RING, RF_WAKE_EVENTFD,
};

/* RF_WAKE_BACKEND (see ringfiber.h): 0 and *want set, or -EINVAL. */
int rf__wake_from_env(unsigned int *want)
{
	const char *name = secure_getenv("RF_WAKE_BACKEND");

	if (!name || !*name)
		return 0;
	if (!strcmp(name, "auto")) {
		*want = RF_WAKE_AUTO;
		return 0;
	}
	for (unsigned int id = RF_WAKE_AUTO + 1; id < RF_WAKE_NR; id++) {
		if (!strcmp(name, rf__wake_backends[id]->name)) {
			*want = id;
			return 0;
		}
	}
	return -EINVAL;
}

static int rf__use_wake(struct rf_runtime *rt, unsigned int id)
{
	const struct rf__wake_ops *ops = rf__wake_backends[id];
	int ret;

	if (!(rt->features & ops->needs))
		return -EOPNOTSUPP;
	if (ops->open) {
		ret = ops->open(rt);
		if (ret)
			return ret;
	}
	rt->wake_id = id;
	rt->wake = ops;
	return 0;
}

static int rf__pick_wake(struct rf_runtime *rt, unsigned int want)
{
	int ret = -EOPNOTSUPP;

	if (want >= RF_WAKE_NR)
		return -EINVAL;
	if (!(rt->features & RF_FEAT_RING)) {
		/* no ring to sleep in: workers sleep on their futex word */
		rt->wake_id = RF_WAKE_FUTEX;
		rt->wake = &rf__wake_futex;
		return 0;
	}
	if (want != RF_WAKE_AUTO)
		return rf__use_wake(rt, want);
	/* one that is there but cannot serve this runtime: the next one */
	for (size_t i = 0; i < sizeof(rf__wake_auto_order) / sizeof(rf__wake_auto_order[0]); i++) {
		ret = rf__use_wake(rt, rf__wake_auto_order[i]);
		if (!ret)
			break;
	}
	return ret;
}

/*
 * What rf_runtime_create() learns of the kernel: rt->features (under the
 * RF_RT_NO_* flags in rt->flags), the overflow handler, and the wake
 * back-end, @want or the first that works.  Without io_uring (or with
 * RF_RT_NO_RING) fibers are scheduled anyway and I/O returns -ENOSYS.
 */
int rf__runtime_probe(struct rf_runtime *rt, unsigned int want)
{
	int ret;

	if (!(rt->flags & RF_RT_NO_GUARD_MADVISE) && rf__guard_madvise_works())
		rt->features |= RF_FEAT_GUARD_MADVISE;
	if (!(rt->flags & RF_RT_NO_OVERFLOW_HANDLER)) {
		ret = rf__overflow_handler_install();
		if (ret)
			return ret;
	}
	if (!(rt->flags & RF_RT_NO_RING)) {
		ret = rf__probe(rt);
		if (ret && ret != -ENOSYS && ret != -EPERM)
			return ret;
		if (ret == 0 && !(rt->flags & RF_RT_NO_MULTISHOT_ACCEPT))
			rt->features |= RF_FEAT_MULTISHOT_ACCEPT;	/* confirmed on first use */
		/* both confirmed on first use too (recv.c) */
		if (ret == 0 && !(rt->flags & RF_RT_NO_BUF_RING)) {
			rt->features |= RF_FEAT_BUF_RING;
			if (!(rt->flags & RF_RT_NO_MULTISHOT_RECV))
				rt->features |= RF_FEAT_MULTISHOT_RECV;
		}
	}
	return rf__pick_wake(rt, want);
}

static int rf__pin(struct rf__worker *wk)
{
	cpu_set_t set;

	if (wk->cpu < 0)
		return 0;
	CPU_ZERO(&set);
	CPU_SET(wk->cpu, &set);
	return -pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

/* On the worker's own thread: its ring, back-end, signal stack. */
int rf__worker_setup(struct rf__worker *wk)
{
	struct rf_runtime *rt = wk->rt;
	int ret;

	rf__tls_wk = wk;
	wk->tid = gettid();
	wk->thread = pthread_self();
	wk->in_user = false;
	ret = rf__pin(wk);
	if (ret)
		return ret;
#ifdef __SANITIZE_ADDRESS__
	{
		pthread_attr_t attr;
		void *addr;

		if (pthread_getattr_np(pthread_self(), &attr) == 0) {
			pthread_attr_getstack(&attr, &addr, &wk->thread_stack_size);
			wk->thread_stack_bottom = addr;
			pthread_attr_destroy(&attr);
		}
	}
#endif
#ifdef __SANITIZE_THREAD__
	wk->tsan_loop_fiber = __tsan_get_current_fiber();
#endif
	if (!(rt->flags & RF_RT_NO_OVERFLOW_HANDLER)) {
		ret = rf__altstack_enter(wk);
		if (ret)
			return ret;
	}
	if (rt->features & RF_FEAT_RING) {
		ret = rf__ring_init(&wk->ring, rt->ring_entries, rt->flags, &rt->features, false);
		if (ret)
			return ret;
		wk->has_ring = true;
		rf__timer_reset(wk);
		ret = rt->wake->setup(wk);
		if (ret)
			return ret;
		ret = rf__stop_arm(wk);
		if (ret)
			return ret;
	}
	ret = rf__preempt_setup(wk);
	if (ret)
		return ret;
	return rf__rescue_setup(wk);
}

void rf__worker_teardown(struct rf__worker *wk)
{
	struct rf_runtime *rt = wk->rt;

	rf__rescue_teardown(wk);
	/* with a ring, while it is still there */
	rt->wake->teardown(wk);
	rf__preempt_teardown(wk);
	if (wk->has_ring) {
		/* the kernel forgets our receive buffers before the ring goes */
		rf__receivers_unregister(wk);
		/* cancels what is still armed: acceptors, receivers, the shutdown's poll */
		io_uring_queue_exit(&wk->ring);
		wk->has_ring = false;
		rf__acceptors_destroy(wk);
		rf__receivers_destroy(wk);
	}
	wk->inflight = 0;
	wk->unsubmitted = 0;
	__atomic_store_n(&wk->parked, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&wk->wake_pending, 0, __ATOMIC_RELAXED);
	rf__altstack_leave(wk);
	rf__tls_wk = NULL;
}
