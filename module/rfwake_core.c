// SPDX-License-Identifier: GPL-2.0
/*
 * Wake domains and waiters: the logic of rfwake.
 *
 * A domain owns up to max_waiters waiters, each named by a small id.  A
 * waiter is a slot that one thread at a time sleeps on (WAIT, SWAP) or that
 * one io_uring command at a time is armed on.  A wake that finds nobody
 * waiting stays pending on the slot; further wakes coalesce into it (count
 * and OR of payloads), so a slot never needs more memory than its own struct
 * and a domain's memory is bounded by max_waiters whatever its users do.
 *
 * Locking: dom->lock guards id allocation; each waiter's wait-queue lock
 * guards that waiter's state, including its armed command.  The order is
 * dom->lock, then a waiter's lock.  Wakes take only the target's lock, so
 * wakers of different waiters do not contend.
 */
#include <linux/bitmap.h>
#include <linux/errno.h>
#include <linux/hrtimer.h>
#include <linux/nospec.h>
#include <linux/percpu.h>
#include <linux/sched.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>

#include "rfwake_core.h"

#define CREATE_TRACE_POINTS
#include "rfwake_trace.h"

/**
 * struct rfwake_waiter - one id of a domain.
 * @wq: the sleeping thread, if any; wq.lock guards every field below.
 * @id: the waiter's id.
 * @registered: the id is allocated.
 * @sleeping: a thread sleeps in rfwake_wait() on this waiter.
 * @pending: wakes not yet consumed (saturates at RFWAKE_COUNT_MAX).
 * @payload: OR of the pending wakes' payloads.
 * @armed: an armed io_uring command, or NULL.
 */
struct rfwake_waiter {
	wait_queue_head_t wq;
	u32 id;
	bool registered;
	bool sleeping;
	u32 pending;
	u64 payload;
	struct rfwake_async *armed;
};

static DEFINE_PER_CPU(struct rfwake_stats, rfwake_stats);
static atomic64_t rfwake_next_trace_id = ATOMIC64_INIT(0);

#define rfwake_count(field) this_cpu_inc(rfwake_stats.field)

/* A count of wakes is also a CQE's res: it must never read as an errno. */
static_assert(RFWAKE_COUNT_MAX == INT_MAX);

/**
 * rfwake_stats_read() - sum the module's counters over all CPUs.
 * @sum: where to store the sums.
 *
 * Context: any.  The sums are not a consistent snapshot: each counter is
 * read on its own while others may be counting.
 */
void rfwake_stats_read(struct rfwake_stats *sum)
{
	int cpu;

	memset(sum, 0, sizeof(*sum));
	for_each_possible_cpu(cpu) {
		const struct rfwake_stats *s = per_cpu_ptr(&rfwake_stats, cpu);

		sum->wakes += READ_ONCE(s->wakes);
		sum->wakes_pended += READ_ONCE(s->wakes_pended);
		sum->waits += READ_ONCE(s->waits);
		sum->waits_slept += READ_ONCE(s->waits_slept);
		sum->swaps += READ_ONCE(s->swaps);
		sum->timeouts += READ_ONCE(s->timeouts);
		sum->interrupted += READ_ONCE(s->interrupted);
		sum->cmds_armed += READ_ONCE(s->cmds_armed);
		sum->cmds_completed += READ_ONCE(s->cmds_completed);
		sum->cmds_canceled += READ_ONCE(s->cmds_canceled);
	}
}

static void rfwake_set_state(struct rfwake_domain *dom, u32 id, u32 state)
{
	if (dom->shared)
		WRITE_ONCE(dom->shared[id], state);
}

/**
 * rfwake_domain_init() - set up an empty domain.
 * @dom: zeroed or uninitialised memory for the domain.
 * @max_waiters: ids are allocated below this; 1..RFWAKE_MAX_WAITERS.
 * @shared: the shared page's words (RFWAKE_MAX_WAITERS of them), or NULL.
 * @ops: callbacks; @ops->complete is required if commands are armed.
 *
 * Context: any.
 * Return: 0, or -EINVAL for a bad @max_waiters.
 */
int rfwake_domain_init(struct rfwake_domain *dom, u32 max_waiters, u32 *shared,
		       const struct rfwake_domain_ops *ops)
{
	if (max_waiters == 0 || max_waiters > RFWAKE_MAX_WAITERS)
		return -EINVAL;
	memset(dom, 0, sizeof(*dom));
	spin_lock_init(&dom->lock);
	dom->max_waiters = max_waiters;
	dom->shared = shared;
	init_waitqueue_head(&dom->poll_wq);
	atomic_set(&dom->npending, 0);
	dom->ops = ops;
	dom->trace_id = atomic64_inc_return(&rfwake_next_trace_id);
	return 0;
}

/*
 * Look up a registered waiter.  The slot pointer stays valid for the
 * domain's life (slots are freed only by rfwake_domain_destroy()), but the
 * waiter may be unregistered at any time: callers check ->registered under
 * the waiter's lock.  The id comes from user space: clamp it under
 * speculation before it indexes the array.
 */
static struct rfwake_waiter *rfwake_lookup(struct rfwake_domain *dom, u32 id,
					   int *err)
{
	struct rfwake_waiter *w;

	if (id >= dom->max_waiters) {
		*err = -EINVAL;
		return NULL;
	}
	id = array_index_nospec(id, dom->max_waiters);
	/* pairs with smp_store_release() in rfwake_register() */
	w = smp_load_acquire(&dom->slots[id]);
	if (!w) {
		*err = -ENOENT;
		return NULL;
	}
	return w;
}

/*
 * Whether the free id @bit may be handed out again: a thread that slept on
 * its previous registration must have left first.  rfwake_unregister() woke
 * it, but until it runs it still sleeps there; were the id reused before,
 * it would find its waiter registered again, go back to sleep on the new
 * owner's id and take the new owner's wakes, and the new owner's own WAIT
 * would be -EBUSY.  dom->lock is held, so nobody can start waiting on the
 * unregistered id meanwhile: the answer can only turn from false to true.
 */
static bool rfwake_id_reusable(struct rfwake_domain *dom, unsigned long bit)
{
	struct rfwake_waiter *w = dom->slots[bit];
	bool sleeping;

	if (!w)
		return true;
	spin_lock_irq(&w->wq.lock);
	sleeping = w->sleeping;
	spin_unlock_irq(&w->wq.lock);
	return !sleeping;
}

/**
 * rfwake_register() - allocate a waiter id.
 * @dom: the domain.
 * @flags: must be 0.
 * @id: out: the lowest free id.
 *
 * An id is free once it is unregistered and the thread that slept on it,
 * if any, has left (with -EIDRM).
 *
 * Context: process context; may sleep (allocates the waiter on first use
 * of an id).
 * Return: 0, -EINVAL for unknown flags, -ENOSPC when every id is taken,
 * -EAGAIN when the only ids not taken still have a thread of their
 * previous registration leaving them, -ENOMEM.
 */
int rfwake_register(struct rfwake_domain *dom, u32 flags, u32 *id)
{
	struct rfwake_waiter *fresh = NULL, *w;
	bool leaving = false;
	unsigned long bit;

	if (flags)
		return -EINVAL;
	/*
	 * Allocate before taking the lock; the spare is freed if the id's
	 * waiter already exists.
	 */
	fresh = kzalloc(sizeof(*fresh), GFP_KERNEL_ACCOUNT);
	if (!fresh)
		return -ENOMEM;

	spin_lock(&dom->lock);
	for_each_clear_bit(bit, dom->ids, dom->max_waiters) {
		if (rfwake_id_reusable(dom, bit))
			break;
		leaving = true;
	}
	if (bit >= dom->max_waiters) {
		spin_unlock(&dom->lock);
		kfree(fresh);
		return leaving ? -EAGAIN : -ENOSPC;
	}
	__set_bit(bit, dom->ids);
	dom->nwaiters++;
	w = dom->slots[bit];
	if (!w) {
		init_waitqueue_head(&fresh->wq);
		fresh->id = bit;
		w = fresh;
		fresh = NULL;
	}
	spin_lock_irq(&w->wq.lock);
	w->registered = true;
	w->pending = 0;
	w->payload = 0;
	spin_unlock_irq(&w->wq.lock);
	if (!dom->slots[bit]) {
		/* pairs with smp_load_acquire() in rfwake_lookup() */
		smp_store_release(&dom->slots[bit], w);
	}
	rfwake_set_state(dom, bit, RFWAKE_STATE_RUNNING);
	spin_unlock(&dom->lock);

	kfree(fresh);
	*id = bit;
	return 0;
}

/* Take a waiter's pending wakes; its lock is held. */
static void rfwake_consume(struct rfwake_domain *dom, struct rfwake_waiter *w,
			   u64 *payload, u32 *count)
{
	*payload = w->payload;
	*count = w->pending;
	w->payload = 0;
	w->pending = 0;
	atomic_dec(&dom->npending);
}

/* Drop a waiter's pending wakes, if any; its lock is held. */
static void rfwake_drop_pending(struct rfwake_domain *dom,
				struct rfwake_waiter *w)
{
	u64 payload;
	u32 count;

	if (w->pending)
		rfwake_consume(dom, w, &payload, &count);
}

/**
 * rfwake_unregister() - free a waiter id.
 * @dom: the domain.
 * @id: the id.
 *
 * A thread sleeping on @id returns -EIDRM, an armed command completes with
 * -EIDRM, and pending wakes are dropped.
 *
 * Context: process context.
 * Return: 0, -EINVAL for an id out of range, -ENOENT for a free id.
 */
int rfwake_unregister(struct rfwake_domain *dom, u32 id)
{
	struct rfwake_async *async = NULL;
	struct rfwake_waiter *w;
	int err;

	w = rfwake_lookup(dom, id, &err);
	if (!w)
		return err;

	spin_lock(&dom->lock);
	spin_lock_irq(&w->wq.lock);
	if (!w->registered) {
		spin_unlock_irq(&w->wq.lock);
		spin_unlock(&dom->lock);
		return -ENOENT;
	}
	w->registered = false;
	rfwake_drop_pending(dom, w);
	if (w->armed) {
		async = w->armed;
		w->armed = NULL;
		async->res = -EIDRM;
		async->count = 0;
		async->payload = 0;
	}
	if (w->sleeping)
		wake_up_locked(&w->wq);
	spin_unlock_irq(&w->wq.lock);
	__clear_bit(w->id, dom->ids);
	dom->nwaiters--;
	rfwake_set_state(dom, w->id, RFWAKE_STATE_RUNNING);
	spin_unlock(&dom->lock);

	if (async) {
		rfwake_count(cmds_canceled);
		dom->ops->complete(async);
	}
	return 0;
}

/**
 * rfwake_nwaiters() - the number of registered waiters.
 * @dom: the domain.
 *
 * Context: any.
 * Return: the count at the time of the call.
 */
u32 rfwake_nwaiters(struct rfwake_domain *dom)
{
	return READ_ONCE(dom->nwaiters);
}

/*
 * Deliver one wake to a waiter whose lock is held.  Returns 1 when a sleeper
 * was woken or a command completed (then *done is set and must be passed to
 * ops->complete after the lock is dropped), 0 when the wake stays pending.
 */
static int rfwake_deliver(struct rfwake_domain *dom, struct rfwake_waiter *w,
			  u64 payload, bool sync, struct rfwake_async **done)
{
	int woke = 0;

	if (w->pending == 0)
		atomic_inc(&dom->npending);
	/* returned as an int too (a CQE's res): it stops at INT_MAX */
	if (w->pending < RFWAKE_COUNT_MAX)
		w->pending++;
	w->payload |= payload;
	rfwake_set_state(dom, w->id, RFWAKE_STATE_RUNNING);

	if (w->armed) {
		struct rfwake_async *async = w->armed;

		w->armed = NULL;
		rfwake_consume(dom, w, &async->payload, &async->count);
		async->res = async->count;
		*done = async;
		woke = 1;
	} else if (w->sleeping && w->pending == 1) {
		/*
		 * Only the first wake wakes the sleeper; later ones merge
		 * into it until the sleeper runs and consumes them.  WF_SYNC
		 * tells the scheduler the waker is about to sleep, so the
		 * wakee may take the waker's CPU instead of a remote one.
		 */
		if (sync)
			__wake_up_locked_sync_key(&w->wq, TASK_INTERRUPTIBLE, NULL);
		else
			wake_up_locked(&w->wq);
		woke = 1;
	}
	rfwake_count(wakes);
	if (!woke)
		rfwake_count(wakes_pended);
	trace_rfwake_wake(dom->trace_id, w->id, payload, woke);
	return woke;
}

/* After a wake that left something pending: tell poll/epoll waiters. */
static void rfwake_poll_notify(struct rfwake_domain *dom)
{
	if (wq_has_sleeper(&dom->poll_wq))
		wake_up_interruptible_poll(&dom->poll_wq, EPOLLIN | EPOLLRDNORM);
}

static void rfwake_complete_async(struct rfwake_domain *dom,
				  struct rfwake_async *async)
{
	rfwake_count(cmds_completed);
	dom->ops->complete(async);
}

/**
 * rfwake_wake() - wake one waiter.
 * @dom: the domain.
 * @id: the waiter.
 * @payload: ORed into the waiter's payload.
 * @sync: give the scheduler the sync hint (the caller is about to sleep).
 *
 * Context: any but NMI: process context, or the hard interrupt in which
 * rfwake_watch.c's irq_work delivers a block notification on kernels
 * without PREEMPT_RT (hence irqsave; ops->complete runs there too).
 * Return: 1 when a sleeping thread was woken or an armed command completed,
 * 0 when the wake was left pending, -EINVAL or -ENOENT for a bad id.
 */
int rfwake_wake(struct rfwake_domain *dom, u32 id, u64 payload, bool sync)
{
	struct rfwake_async *done = NULL;
	struct rfwake_waiter *w;
	unsigned long irqflags;
	int err, woke;

	w = rfwake_lookup(dom, id, &err);
	if (!w)
		return err;
	spin_lock_irqsave(&w->wq.lock, irqflags);
	if (!w->registered) {
		spin_unlock_irqrestore(&w->wq.lock, irqflags);
		return -ENOENT;
	}
	woke = rfwake_deliver(dom, w, payload, sync, &done);
	spin_unlock_irqrestore(&w->wq.lock, irqflags);

	if (done)
		rfwake_complete_async(dom, done);
	else if (!woke)
		rfwake_poll_notify(dom);
	return woke;
}

/**
 * rfwake_wake_batch() - wake several waiters in one call.
 * @dom: the domain.
 * @targets: the targets; kernel memory (copied in by the caller).
 * @count: the number of targets, 1..RFWAKE_MAX_BATCH.
 *
 * Every target is checked first: a bad id or a non-zero reserved field
 * fails the call before any target is woken.  An id that is unregistered by
 * another thread between the check and its wake is skipped.
 *
 * Context: process context.
 * Return: the number of targets that were sleeping or armed, or -EINVAL,
 * -ENOENT.
 */
int rfwake_wake_batch(struct rfwake_domain *dom,
		      const struct rfwake_target *targets, u32 count)
{
	bool pended = false;
	int err, woken = 0;
	u32 i;

	if (count == 0 || count > RFWAKE_MAX_BATCH)
		return -EINVAL;
	for (i = 0; i < count; i++) {
		struct rfwake_waiter *w;

		if (targets[i].__reserved)
			return -EINVAL;
		w = rfwake_lookup(dom, targets[i].id, &err);
		if (!w)
			return err;
		if (!READ_ONCE(w->registered))
			return -ENOENT;
	}
	for (i = 0; i < count; i++) {
		struct rfwake_async *done = NULL;
		struct rfwake_waiter *w;
		int woke = 0;

		w = rfwake_lookup(dom, targets[i].id, &err);
		spin_lock_irq(&w->wq.lock);
		if (w->registered)
			woke = rfwake_deliver(dom, w, targets[i].payload,
					      false, &done);
		else
			woke = -ENOENT;
		spin_unlock_irq(&w->wq.lock);
		if (done)
			rfwake_complete_async(dom, done);
		if (woke > 0)
			woken++;
		else if (woke == 0)
			pended = true;
	}
	if (pended)
		rfwake_poll_notify(dom);
	return woken;
}

/*
 * Look up waiter @id for the caller to wait on, and take its lock
 * (interrupts off).  Returns the waiter, locked; or NULL with *@err set
 * (-EINVAL, -ENOENT, -EBUSY: someone else waits on it) and no lock held.
 */
static struct rfwake_waiter *rfwake_lock_waitable(struct rfwake_domain *dom,
						  u32 id, int *err)
{
	struct rfwake_waiter *w;

	w = rfwake_lookup(dom, id, err);
	if (!w)
		return NULL;
	spin_lock_irq(&w->wq.lock);
	if (!w->registered)
		*err = -ENOENT;
	else if (w->sleeping || w->armed)
		*err = -EBUSY;
	else
		return w;
	spin_unlock_irq(&w->wq.lock);
	return NULL;
}

/*
 * The sleeping half of WAIT and SWAP; @w's lock is held on entry and exit
 * (interrupts off), nothing is pending and nobody else waits on @w.
 */
static int rfwake_sleep(struct rfwake_domain *dom, struct rfwake_waiter *w,
			u32 flags, ktime_t deadline)
{
	DECLARE_WAITQUEUE(wait, current);
	bool expired = false;
	int ret = 0;

	w->sleeping = true;
	rfwake_set_state(dom, w->id, RFWAKE_STATE_PARKED);
	__add_wait_queue(&w->wq, &wait);
	rfwake_count(waits_slept);
	for (;;) {
		set_current_state(TASK_INTERRUPTIBLE);
		if (w->pending || !w->registered)
			break;
		if (expired) {
			ret = -ETIMEDOUT;
			break;
		}
		if (signal_pending(current)) {
			ret = -ERESTARTSYS;
			break;
		}
		spin_unlock_irq(&w->wq.lock);
		if (flags & RFWAKE_WAIT_DEADLINE) {
			ktime_t expires = deadline;

			if (!schedule_hrtimeout_range(&expires,
						      current->timer_slack_ns,
						      HRTIMER_MODE_ABS))
				expired = true;
		} else {
			schedule();
		}
		spin_lock_irq(&w->wq.lock);
	}
	__set_current_state(TASK_RUNNING);
	__remove_wait_queue(&w->wq, &wait);
	w->sleeping = false;
	rfwake_set_state(dom, w->id, RFWAKE_STATE_RUNNING);
	return ret;
}

/* WAIT on a waiter whose lock is held and that passed the checks. */
static int rfwake_wait_locked(struct rfwake_domain *dom,
			      struct rfwake_waiter *w, u32 flags,
			      ktime_t deadline, u64 *payload, u32 *count)
{
	int ret = 0;

	rfwake_count(waits);
	trace_rfwake_wait_begin(dom->trace_id, w->id);
	if (!w->pending) {
		if (flags & RFWAKE_WAIT_NONBLOCK)
			ret = -EAGAIN;
		else
			ret = rfwake_sleep(dom, w, flags, deadline);
	}
	/* A wake that raced with a signal or the deadline wins. */
	if (w->pending) {
		rfwake_consume(dom, w, payload, count);
		ret = 0;
	} else if (!w->registered) {
		ret = -EIDRM;
	} else if (ret == -ETIMEDOUT) {
		rfwake_count(timeouts);
	} else if (ret == -ERESTARTSYS) {
		rfwake_count(interrupted);
	}
	trace_rfwake_wait_end(dom->trace_id, w->id, ret, ret ? 0 : *count,
			      ret ? 0 : *payload);
	return ret;
}

#define RFWAKE_WAIT_FLAGS (RFWAKE_WAIT_DEADLINE | RFWAKE_WAIT_NONBLOCK)

/**
 * rfwake_wait() - wait on a waiter until it is woken.
 * @dom: the domain.
 * @id: the waiter.
 * @flags: RFWAKE_WAIT_DEADLINE, RFWAKE_WAIT_NONBLOCK.
 * @deadline: absolute CLOCK_MONOTONIC time, with RFWAKE_WAIT_DEADLINE.
 * @payload: out: the OR of the consumed wakes' payloads.
 * @count: out: the number of wakes consumed.
 *
 * Context: process context; sleeps.
 * Return: 0 with @payload and @count set; -EINVAL (flags or id), -ENOENT,
 * -EBUSY (someone else waits on @id), -EAGAIN (NONBLOCK, nothing pending),
 * -ETIMEDOUT, -ERESTARTSYS (a signal), -EIDRM (unregistered meanwhile).
 */
int rfwake_wait(struct rfwake_domain *dom, u32 id, u32 flags, ktime_t deadline,
		u64 *payload, u32 *count)
{
	struct rfwake_waiter *w;
	int err;

	if (flags & ~RFWAKE_WAIT_FLAGS)
		return -EINVAL;
	w = rfwake_lock_waitable(dom, id, &err);
	if (!w)
		return err;
	err = rfwake_wait_locked(dom, w, flags, deadline, payload, count);
	spin_unlock_irq(&w->wq.lock);
	return err;
}

#define RFWAKE_SWAP_FLAGS (RFWAKE_SWAP_DEADLINE | RFWAKE_SWAP_NOSYNC | \
			   RFWAKE_SWAP_WAKE_DONE)

/**
 * rfwake_swap() - wake one waiter and wait on another in one call.
 * @dom: the domain.
 * @wake_id: the waiter to wake.
 * @wake_payload: the payload of that wake.
 * @wait_id: the waiter to wait on (the caller's own).
 * @flags: RFWAKE_SWAP_DEADLINE, RFWAKE_SWAP_NOSYNC, RFWAKE_SWAP_WAKE_DONE.
 * @deadline: absolute CLOCK_MONOTONIC time, with RFWAKE_SWAP_DEADLINE.
 * @payload: out: as for rfwake_wait().
 * @count: out: as for rfwake_wait().
 *
 * Both ids are checked before the wake is delivered, so a call that fails
 * with -EINVAL, -ENOENT or -EBUSY has woken nobody.  The wait half then
 * behaves as rfwake_wait(); when it fails (-ETIMEDOUT, -ERESTARTSYS,
 * -EIDRM), the wake was still delivered.  With RFWAKE_SWAP_WAKE_DONE the
 * wake was delivered by an earlier call (the one a signal interrupted):
 * @wake_id and @wake_payload are ignored and only the wait half runs.
 * The caller's waiter is marked busy before the target is woken, so the
 * target's answer cannot be lost between the two halves.
 *
 * Context: process context; sleeps.
 * Return: as rfwake_wait(); -EINVAL also when @wake_id == @wait_id.
 */
int rfwake_swap(struct rfwake_domain *dom, u32 wake_id, u64 wake_payload,
		u32 wait_id, u32 flags, ktime_t deadline, u64 *payload,
		u32 *count)
{
	struct rfwake_waiter *self, *target;
	struct rfwake_async *done = NULL;
	int err, woke;

	if (flags & ~RFWAKE_SWAP_FLAGS || wake_id == wait_id)
		return -EINVAL;
	/*
	 * A restart of a SWAP whose wake is out: waking again would deliver
	 * it twice.  The target is not looked up: it may be gone by now.
	 */
	if (flags & RFWAKE_SWAP_WAKE_DONE)
		return rfwake_wait(dom, wait_id, flags & RFWAKE_SWAP_DEADLINE,
				   deadline, payload, count);
	target = rfwake_lookup(dom, wake_id, &err);
	if (!target)
		return err;

	/*
	 * Claim our own waiter first (sleeping = true keeps other waiters
	 * off it), then wake the target: its reply lands in our pending
	 * count even if it comes before we sleep.
	 */
	self = rfwake_lock_waitable(dom, wait_id, &err);
	if (!self)
		return err;
	self->sleeping = true;
	spin_unlock_irq(&self->wq.lock);

	spin_lock_irq(&target->wq.lock);
	if (target->registered)
		woke = rfwake_deliver(dom, target, wake_payload,
				      !(flags & RFWAKE_SWAP_NOSYNC), &done);
	else
		woke = -ENOENT;
	spin_unlock_irq(&target->wq.lock);
	/* the target may be served by io_uring or poll: tell it before we sleep */
	if (done)
		rfwake_complete_async(dom, done);
	else if (woke == 0)
		rfwake_poll_notify(dom);

	spin_lock_irq(&self->wq.lock);
	self->sleeping = false;
	if (woke < 0) {
		spin_unlock_irq(&self->wq.lock);
		return woke;
	}
	rfwake_count(swaps);
	trace_rfwake_swap(dom->trace_id, wake_id, wait_id);
	err = rfwake_wait_locked(dom, self, flags & RFWAKE_SWAP_DEADLINE,
				 deadline, payload, count);
	spin_unlock_irq(&self->wq.lock);
	return err;
}

/**
 * rfwake_arm() - arm an asynchronous wait (an io_uring command) on a waiter.
 * @dom: the domain.
 * @id: the waiter.
 * @async: the command's state; stays owned by the domain until completed.
 *
 * When a wake is already pending it is consumed at once and the command is
 * not armed; otherwise the first wake of @id, rfwake_unregister() or
 * rfwake_cancel_armed() completes it through @dom->ops->complete.
 *
 * Context: process context.
 * Return: 0 when armed, 1 when completed at once (@async filled in,
 * ops->complete not called), -EINVAL, -ENOENT or -EBUSY.
 */
int rfwake_arm(struct rfwake_domain *dom, u32 id, struct rfwake_async *async)
{
	struct rfwake_waiter *w;
	int err;

	w = rfwake_lock_waitable(dom, id, &err);
	if (!w)
		return err;
	rfwake_count(cmds_armed);
	if (w->pending) {
		rfwake_consume(dom, w, &async->payload, &async->count);
		async->res = async->count;
		rfwake_count(cmds_completed);
		err = 1;
	} else {
		w->armed = async;
		rfwake_set_state(dom, w->id, RFWAKE_STATE_PARKED);
		err = 0;
	}
	spin_unlock_irq(&w->wq.lock);
	return err;
}

/**
 * rfwake_cancel_armed_if() - complete some armed commands of a domain.
 * @dom: the domain.
 * @res: the result they complete with (a negative errno).
 * @match: selects the commands to complete; NULL selects all.  Called with
 *         a waiter's lock held: it must not sleep.
 * @arg: passed to @match.
 *
 * Context: process context.
 * Return: the number of commands completed.
 */
unsigned int rfwake_cancel_armed_if(struct rfwake_domain *dom, int res,
				    bool (*match)(const struct rfwake_async *async,
						  void *arg),
				    void *arg)
{
	struct rfwake_async *done = NULL;
	unsigned int n = 0;
	u32 id;

	for (id = 0; id < dom->max_waiters; id++) {
		/* pairs with smp_store_release() in rfwake_register() */
		struct rfwake_waiter *w = smp_load_acquire(&dom->slots[id]);
		struct rfwake_async *async;

		if (!w)
			continue;
		spin_lock_irq(&w->wq.lock);
		async = w->armed;
		if (async && (!match || match(async, arg))) {
			async->res = res;
			async->count = 0;
			async->payload = 0;
			async->next = done;
			done = async;
			w->armed = NULL;
			rfwake_set_state(dom, id, RFWAKE_STATE_RUNNING);
		}
		spin_unlock_irq(&w->wq.lock);
	}

	while (done) {
		struct rfwake_async *async = done;

		done = async->next;
		rfwake_count(cmds_canceled);
		dom->ops->complete(async);
		n++;
	}
	return n;
}

/**
 * rfwake_cancel_armed() - complete every armed command of a domain.
 * @dom: the domain.
 * @res: the result they complete with (a negative errno).
 *
 * Context: process context.
 * Return: the number of commands completed.
 */
unsigned int rfwake_cancel_armed(struct rfwake_domain *dom, int res)
{
	return rfwake_cancel_armed_if(dom, res, NULL, NULL);
}

/**
 * rfwake_disarm() - take one armed command back from its waiter.
 * @dom: the domain.
 * @async: the command, armed on some waiter of @dom or already completed.
 * @res: the result it gets (a negative errno) when it was still armed.
 *
 * For a caller that completes the command itself (io_uring's cancellation
 * of a uring_cmd, which must complete it in the call): unlike
 * rfwake_cancel_armed_if(), @dom->ops->complete is not called.  A command
 * that a wake, an unregister or a cancel has already taken is left alone:
 * whoever took it completes it.
 *
 * Context: process context.
 * Return: true when @async was armed and is now the caller's to complete
 * (@res, @count and @payload set), false when someone else took it.
 */
bool rfwake_disarm(struct rfwake_domain *dom, struct rfwake_async *async,
		   int res)
{
	u32 id;

	for (id = 0; id < dom->max_waiters; id++) {
		/* pairs with smp_store_release() in rfwake_register() */
		struct rfwake_waiter *w = smp_load_acquire(&dom->slots[id]);
		bool mine;

		/* a command is armed on one waiter: skip the others unlocked */
		if (!w || READ_ONCE(w->armed) != async)
			continue;
		spin_lock_irq(&w->wq.lock);
		mine = w->armed == async;
		if (mine) {
			async->res = res;
			async->count = 0;
			async->payload = 0;
			w->armed = NULL;
			rfwake_set_state(dom, id, RFWAKE_STATE_RUNNING);
			rfwake_count(cmds_canceled);
		}
		spin_unlock_irq(&w->wq.lock);
		return mine;
	}
	return false;
}

/**
 * rfwake_visit_armed() - look at every armed command of a domain.
 * @dom: the domain.
 * @fn: called for each command armed when its waiter is visited, with that
 *      waiter's lock held: it must not sleep nor call into the domain.
 * @arg: passed to @fn.
 *
 * No snapshot: commands may be armed and completed while the waiters are
 * visited.
 *
 * Context: process context.
 */
void rfwake_visit_armed(struct rfwake_domain *dom,
			void (*fn)(const struct rfwake_async *async, void *arg),
			void *arg)
{
	u32 id;

	for (id = 0; id < dom->max_waiters; id++) {
		/* pairs with smp_store_release() in rfwake_register() */
		struct rfwake_waiter *w = smp_load_acquire(&dom->slots[id]);

		if (!w)
			continue;
		spin_lock_irq(&w->wq.lock);
		if (w->armed)
			fn(w->armed, arg);
		spin_unlock_irq(&w->wq.lock);
	}
}

/**
 * rfwake_any_pending() - whether some waiter has a wake pending.
 * @dom: the domain.
 *
 * Context: any.
 * Return: true when a wake is pending (what poll reports as EPOLLIN).
 */
bool rfwake_any_pending(struct rfwake_domain *dom)
{
	return atomic_read(&dom->npending) > 0;
}

/**
 * rfwake_domain_destroy() - complete armed commands and free the waiters.
 * @dom: the domain; no thread may be inside a call on it.
 *
 * Context: process context.
 */
void rfwake_domain_destroy(struct rfwake_domain *dom)
{
	u32 id;

	rfwake_cancel_armed(dom, -ECANCELED);
	for (id = 0; id < dom->max_waiters; id++) {
		WARN_ON_ONCE(dom->slots[id] && dom->slots[id]->sleeping);
		kfree(dom->slots[id]);
		dom->slots[id] = NULL;
	}
}

/**
 * rfwake_is_registered() - whether an id is a registered waiter.
 * @dom: the domain.
 * @id: the id, from user space.
 *
 * The answer may be stale when the caller uses it: another thread may
 * register or unregister @id meanwhile.
 *
 * Context: any.
 * Return: 0 when @id is registered, -EINVAL when it is out of range,
 * -ENOENT when it is free.
 */
int rfwake_is_registered(struct rfwake_domain *dom, u32 id)
{
	struct rfwake_waiter *w;
	int err;

	w = rfwake_lookup(dom, id, &err);
	if (!w)
		return err;
	return READ_ONCE(w->registered) ? 0 : -ENOENT;
}

#if IS_ENABLED(CONFIG_RFWAKE_KUNIT_TEST)
/**
 * rfwake_kunit_set_pending() - set a waiter's count of pending wakes.
 * @dom: the domain.
 * @id: a registered waiter.
 * @pending: the count to store; 0 drops the pending wakes.
 *
 * For the KUnit suite only, built with it: it sets counts (2^31 wakes)
 * that waking would take hours to reach.
 *
 * Context: process context.
 * Return: 0, -EINVAL or -ENOENT for a bad id.
 */
int rfwake_kunit_set_pending(struct rfwake_domain *dom, u32 id, u32 pending)
{
	struct rfwake_waiter *w;
	int err;

	w = rfwake_lookup(dom, id, &err);
	if (!w)
		return err;
	spin_lock_irq(&w->wq.lock);
	if (w->registered) {
		if (!w->pending && pending)
			atomic_inc(&dom->npending);
		else if (w->pending && !pending)
			atomic_dec(&dom->npending);
		w->pending = pending;
		err = 0;
	} else {
		err = -ENOENT;
	}
	spin_unlock_irq(&w->wq.lock);
	return err;
}
#endif
