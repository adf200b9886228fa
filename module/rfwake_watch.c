// SPDX-License-Identifier: GPL-2.0
/*
 * Block notification: tell a user-space scheduler, at once, that one of its
 * worker threads blocked in the kernel.
 *
 * A thread that calls RFWAKE_IOC_WATCH gets a preempt notifier on itself.
 * The scheduler calls its sched_out at every switch away from the thread,
 * with the run-queue lock held and interrupts off, and its sched_in when
 * the thread runs again.  sched_out tells a block from a preemption by the
 * task's run-queue state (rfwake_task_blocked()), bumps the thread's seq
 * word and, when user space armed it, queues an irq_work: a wake-up there
 * could need the very run-queue lock the scheduler holds.  The irq_work
 * delivers the wake (rfwake_wake()) a moment later, when interrupts are on
 * again: in hard interrupt context, or in the irq_work thread on
 * PREEMPT_RT.  Nothing in the notifier sleeps, allocates or takes a lock.
 *
 * Lifetimes: preempt_notifier_register() and _unregister() edit the
 * current task's list, which its own context switches walk unlocked, so
 * only the watched thread registers (WATCH) and unregisters (UNWATCH) its
 * notifier.  A thread that exits watched is switched out one last time in
 * TASK_DEAD; nobody walks its list after that, and its watch is freed in
 * process context by the module's workqueue.  Each watch holds a reference
 * to its domain's set (the domain outlives the file, inert) and one to the
 * module (no unload while a notifier is registered on any task).
 */
#include <linux/irq_work.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/nospec.h>
#include <linux/percpu.h>
#include <linux/preempt.h>
#include <linux/sched.h>
#include <linux/slab.h>
#include <linux/workqueue.h>

#include "rfwake_compat.h"
#include "rfwake_watch.h"
#include "rfwake_trace.h"

/* Blocks of watched threads, as the sysfs counter "blocks" reports them. */
static DEFINE_PER_CPU(u64, rfwake_watch_blocks);

/* Frees the watches of threads that exited (process context). */
static struct workqueue_struct *rfwake_watch_wq;

/*
 * The scheduler's preempt-notifier static key, turned on by the first
 * WATCH and off at module exit (rfwake_watch_key_get()).
 */
static DEFINE_MUTEX(rfwake_watch_key_lock);
static bool rfwake_watch_key_on;

/**
 * rfwake_watch_set_init() - set up the watch pages of a new domain.
 * @set: the set, in the domain's file.
 * @dom: the domain.
 * @free: frees the domain once neither the file nor a watch holds it.
 *
 * Context: process context; may sleep.
 * Return: 0 or -ENOMEM.
 */
int rfwake_watch_set_init(struct rfwake_watch_set *set,
			  struct rfwake_domain *dom, rfwake_watch_free_t free)
{
	unsigned int i;

	/* armed[] fills the first page, seq[] the second */
	BUILD_BUG_ON(sizeof(u32) * RFWAKE_MAX_WAITERS != PAGE_SIZE);
	BUILD_BUG_ON(RFWAKE_WATCH_OFFSET != PAGE_SIZE);
	memset(set, 0, sizeof(*set));
	for (i = 0; i < ARRAY_SIZE(set->pages); i++) {
		set->pages[i] = alloc_page(GFP_KERNEL_ACCOUNT | __GFP_ZERO);
		if (!set->pages[i]) {
			rfwake_watch_set_destroy(set);
			return -ENOMEM;
		}
	}
	set->armed = page_address(set->pages[0]);
	set->seq = page_address(set->pages[1]);
	set->dom = dom;
	refcount_set(&set->refs, 1);
	set->free = free;
	return 0;
}

/**
 * rfwake_watch_set_destroy() - free the watch pages.
 * @set: the set; no watch holds it.
 *
 * A mapping holds its own references to the pages.
 *
 * Context: process context.
 */
void rfwake_watch_set_destroy(struct rfwake_watch_set *set)
{
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(set->pages); i++) {
		if (set->pages[i])
			__free_page(set->pages[i]);
		set->pages[i] = NULL;
	}
}

/**
 * rfwake_watch_set_close() - the domain's file is released.
 * @set: the set.
 *
 * The watches that remain notify nobody from now on; they keep the domain
 * allocated until their threads unwatch or exit.
 *
 * Context: process context (.release).
 * Return: true when no watch holds the domain: the caller frees it now;
 * false when the end of the last watch will (through @set->free).
 */
bool rfwake_watch_set_close(struct rfwake_watch_set *set)
{
	/* seen by the irq_work before it wakes (rfwake_watch_irq_work()) */
	WRITE_ONCE(set->closed, true);
	return refcount_dec_and_test(&set->refs);
}

/**
 * rfwake_watch_mmap() - map the watch pages.
 * @set: the set.
 * @vma: a shared mapping of 8192 bytes at offset RFWAKE_WATCH_OFFSET.
 *
 * Context: process context (.mmap).
 * Return: 0, -EINVAL for another offset, size or a private mapping, or
 * vm_insert_page()'s error.
 */
int rfwake_watch_mmap(struct rfwake_watch_set *set,
		      struct vm_area_struct *vma)
{
	unsigned int i;
	int ret;

	if (vma->vm_pgoff != RFWAKE_WATCH_OFFSET >> PAGE_SHIFT ||
	    vma->vm_end - vma->vm_start != sizeof(struct rfwake_watch_shared) ||
	    !(vma->vm_flags & VM_SHARED))
		return -EINVAL;
	rfwake_vm_flags_set(vma, VM_DONTEXPAND | VM_DONTDUMP);
	for (i = 0; i < ARRAY_SIZE(set->pages); i++) {
		ret = vm_insert_page(vma, vma->vm_start + i * PAGE_SIZE,
				     set->pages[i]);
		if (ret)
			return ret;
	}
	return 0;
}

static ssize_t rfwake_blocks_show(struct device *dev,
				  struct device_attribute *attr, char *buf)
{
	u64 sum = 0;
	int cpu;

	for_each_possible_cpu(cpu)
		sum += READ_ONCE(*per_cpu_ptr(&rfwake_watch_blocks, cpu));
	return sysfs_emit(buf, "%llu\n", sum);
}

/* /sys/class/misc/rfwake/blocks: root only, as the other counters. */
struct device_attribute rfwake_dev_attr_blocks =
	__ATTR(blocks, 0400, rfwake_blocks_show, NULL);

/**
 * rfwake_watch_init() - module load: the workqueue that frees watches.
 *
 * Context: process context.
 * Return: 0 or -ENOMEM.
 */
int rfwake_watch_init(void)
{
	rfwake_watch_wq = alloc_workqueue("rfwake_watch", 0, 0);
	return rfwake_watch_wq ? 0 : -ENOMEM;
}

/**
 * rfwake_watch_exit() - module unload.
 *
 * Every watch holds a reference to the module, so none is left; the last
 * one may still be returning from its free work, after its module_put():
 * destroying the workqueue waits for it.
 *
 * Context: process context.
 */
void rfwake_watch_exit(void)
{
	destroy_workqueue(rfwake_watch_wq);
#if IS_ENABLED(CONFIG_PREEMPT_NOTIFIERS)
	if (rfwake_watch_key_on)
		preempt_notifier_dec();
#endif
}

#if IS_ENABLED(CONFIG_PREEMPT_NOTIFIERS)

/**
 * struct rfwake_watcher - the watch of one thread.
 * @pn: the preempt notifier, on the thread's list.
 * @set: the domain's set; a reference is held.
 * @watch_id: the thread's words in the watch pages.
 * @notify_id: the waiter woken when the thread blocks.
 * @payload: that wake's payload.
 * @seq: the thread's count of blocks and resumptions (odd: blocked); the
 *       kernel's copy of seq[@watch_id], which user space may overwrite.
 * @blocked: the last switch away from the thread was a block.
 * @dead: the thread was switched out for the last time (TASK_DEAD).
 * @freeing: @free_work was queued (once only).
 * @irq_work: delivers the wake, or queues @free_work when @dead.
 * @free_work: frees the watch of a thread that exited.
 *
 * @seq and @blocked are touched only by the thread's own context switches
 * (and by WATCH, before the notifier is registered).
 */
struct rfwake_watcher {
	struct preempt_notifier pn;
	struct rfwake_watch_set *set;
	u32 watch_id;
	u32 notify_id;
	u64 payload;
	u32 seq;
	bool blocked;
	bool dead;
	atomic_t freeing;
	struct irq_work irq_work;
	struct work_struct free_work;
};

static struct rfwake_watcher *rfwake_pn_watcher(struct preempt_notifier *pn)
{
	return container_of(pn, struct rfwake_watcher, pn);
}

/*
 * The scheduler switches away from the watched thread (current): run-queue
 * lock held, interrupts off.  No wake-up, lock, allocation or sleep here.
 */
static void rfwake_watch_sched_out(struct preempt_notifier *pn,
				   struct task_struct *next)
{
	struct rfwake_watcher *w = rfwake_pn_watcher(pn);
	struct rfwake_watch_set *set = w->set;
	bool notify;

	if (READ_ONCE(current->__state) == TASK_DEAD) {
		/* the last switch: the id is free, the watch freed later */
		clear_bit(w->watch_id, set->used);
		WRITE_ONCE(w->dead, true);
		irq_work_queue(&w->irq_work);
		return;
	}
	if (!rfwake_task_blocked(current))
		return;	/* preempted: still runnable */
	w->blocked = true;
	w->seq++;
	WRITE_ONCE(set->seq[w->watch_id], w->seq);
	this_cpu_inc(rfwake_watch_blocks);
	notify = READ_ONCE(set->armed[w->watch_id]) && !READ_ONCE(set->closed);
	trace_rfwake_block(set->dom->trace_id, w->watch_id, w->seq, notify);
	/* pending already: that wake is still to come, this one merges */
	if (notify)
		irq_work_queue(&w->irq_work);
}

/* The watched thread runs again; preemption off, interrupts on. */
static void rfwake_watch_sched_in(struct preempt_notifier *pn, int cpu)
{
	struct rfwake_watcher *w = rfwake_pn_watcher(pn);

	if (!w->blocked)
		return;
	w->blocked = false;
	w->seq++;
	WRITE_ONCE(w->set->seq[w->watch_id], w->seq);
}

static struct preempt_ops rfwake_watch_ops = {
	.sched_in = rfwake_watch_sched_in,
	.sched_out = rfwake_watch_sched_out,
};

/*
 * Hard interrupt context (PREEMPT_RT: the irq_work thread), soon after
 * sched_out queued it, on the CPU the thread was switched out on.
 * rfwake_wake() locks irqsave for this.  The watch cannot be freed under
 * us: every free waits in irq_work_sync().
 */
static void rfwake_watch_irq_work(struct irq_work *work)
{
	struct rfwake_watcher *w =
		container_of(work, struct rfwake_watcher, irq_work);
	struct rfwake_watch_set *set = w->set;

	if (READ_ONCE(w->dead)) {
		/*
		 * A block's irq_work pending on another CPU may also run
		 * after the last switch and see @dead: queue the free once.
		 */
		if (!atomic_xchg(&w->freeing, 1))
			queue_work(rfwake_watch_wq, &w->free_work);
		return;
	}
	/* the file was released: nobody may be woken through it */
	if (READ_ONCE(set->closed))
		return;
	/* -ENOENT when @notify_id was unregistered: nobody to tell */
	rfwake_wake(set->dom, w->notify_id, w->payload, false);
}

/*
 * Free a watch whose notifier is off its thread's list, or whose thread is
 * dead; drops its references to the domain and to the module, last.
 */
static void rfwake_watcher_free(struct rfwake_watcher *w)
{
	struct rfwake_watch_set *set = w->set;

	irq_work_sync(&w->irq_work);
	/* a dead thread's id was freed at its last switch */
	if (!w->dead)
		clear_bit(w->watch_id, set->used);
	if (refcount_dec_and_test(&set->refs))
		set->free(set);
	kfree(w);
	module_put(THIS_MODULE);
}

/* After the watched thread's last switch (rfwake_watch_irq_work()). */
static void rfwake_watch_free_work(struct work_struct *work)
{
	rfwake_watcher_free(container_of(work, struct rfwake_watcher,
					 free_work));
}

/*
 * Turn the scheduler's notifier calls on, once: preempt_notifier_inc()
 * flips a static key, which patches the scheduler's code and
 * synchronises every CPU (slow, and very slow under emulation); doing that
 * at every WATCH and at every end of a watch would make short-lived
 * watched threads expensive.  Left on until module exit: meanwhile every
 * context switch tests the (usually empty) notifier list of the task.
 */
static void rfwake_watch_key_get(void)
{
	mutex_lock(&rfwake_watch_key_lock);
	if (!rfwake_watch_key_on) {
		preempt_notifier_inc();
		rfwake_watch_key_on = true;
	}
	mutex_unlock(&rfwake_watch_key_lock);
}

/*
 * The calling thread's watch, or NULL.  Only current edits its list, so
 * current may walk it without a lock.
 */
static struct rfwake_watcher *rfwake_watcher_current(void)
{
	struct preempt_notifier *pn;

	hlist_for_each_entry(pn, &current->preempt_notifiers, link)
		if (pn->ops == &rfwake_watch_ops)
			return rfwake_pn_watcher(pn);
	return NULL;
}

/**
 * rfwake_watch_supported() - whether WATCH works on this kernel.
 *
 * Context: any.
 * Return: true with CONFIG_PREEMPT_NOTIFIERS.
 */
bool rfwake_watch_supported(void)
{
	return true;
}

/**
 * rfwake_watch() - watch the calling thread (RFWAKE_IOC_WATCH).
 * @set: the set of the domain whose descriptor the call came through.
 * @arg: the request, copied in.
 *
 * Context: process context, in the thread to watch; may sleep.
 * Return: 0, -EINVAL (flags, reserved, an id out of range, equal ids),
 * -ENOENT (an id not registered), -EBUSY (the thread is watched already,
 * or @arg->watch_id watches another thread), -ENOMEM.
 */
int rfwake_watch(struct rfwake_watch_set *set, const struct rfwake_watch *arg)
{
	struct rfwake_watcher *w;
	u32 id = arg->watch_id;
	int err;

	if (arg->flags || arg->__reserved || id == arg->notify_id)
		return -EINVAL;
	err = rfwake_is_registered(set->dom, id);
	if (!err)
		err = rfwake_is_registered(set->dom, arg->notify_id);
	if (err)
		return err;
	/* in range (checked above): clamp it under speculation too */
	id = array_index_nospec(id, RFWAKE_MAX_WAITERS);
	if (rfwake_watcher_current())
		return -EBUSY;

	w = kzalloc(sizeof(*w), GFP_KERNEL_ACCOUNT);
	if (!w)
		return -ENOMEM;
	if (test_and_set_bit(id, set->used)) {
		kfree(w);
		return -EBUSY;
	}
	/* the file holds one: it cannot drop to zero under us */
	refcount_inc(&set->refs);

	/* .release cannot run during an ioctl: the module is held already */
	__module_get(THIS_MODULE);
	w->set = set;
	w->watch_id = id;
	w->notify_id = arg->notify_id;
	w->payload = arg->payload;
	/* continue the count user space may have kept; even: running */
	w->seq = (READ_ONCE(set->seq[id]) + 1) & ~1U;
	WRITE_ONCE(set->seq[id], w->seq);
	init_irq_work(&w->irq_work, rfwake_watch_irq_work);
	INIT_WORK(&w->free_work, rfwake_watch_free_work);
	preempt_notifier_init(&w->pn, &rfwake_watch_ops);

	/* enables the scheduler's calls (a static key): may sleep */
	rfwake_watch_key_get();
	/* our own switches walk the list: no preemption mid-insert */
	preempt_disable();
	preempt_notifier_register(&w->pn);
	preempt_enable();
	return 0;
}

/**
 * rfwake_unwatch() - end the calling thread's watch (RFWAKE_IOC_UNWATCH).
 *
 * Whichever domain the watch was made in: a thread whose domain was closed
 * (by an exec, say) can still end its watch and be watched again.
 *
 * Context: process context, in the watched thread; may sleep.
 * Return: 0, or -ENOENT when the thread is not watched.
 */
int rfwake_unwatch(void)
{
	struct rfwake_watcher *w = rfwake_watcher_current();

	if (!w)
		return -ENOENT;
	preempt_disable();
	preempt_notifier_unregister(&w->pn);
	preempt_enable();
	/* waits for a wake still pending from the last block */
	rfwake_watcher_free(w);
	return 0;
}

#else /* !CONFIG_PREEMPT_NOTIFIERS */

bool rfwake_watch_supported(void)
{
	return false;
}

int rfwake_watch(struct rfwake_watch_set *set, const struct rfwake_watch *arg)
{
	return -EOPNOTSUPP;
}

int rfwake_unwatch(void)
{
	return -EOPNOTSUPP;
}

#endif /* CONFIG_PREEMPT_NOTIFIERS */
