// SPDX-License-Identifier: GPL-2.0
/*
 * rfwake - fast cross-thread wake-ups for ringfiber.
 *
 * /dev/rfwake is a misc device.  Each open file is a wake domain
 * (rfwake_core.c): threads register as waiters and get small ids, and any
 * holder of the file can wake them.  This file is the device's face: the
 * ioctl ABI of <linux/rfwake.h>, the io_uring command that lets a thread
 * parked in io_uring_enter() be woken by a thread with no ring, poll, the
 * shared page of waiter states, and the counters in sysfs.
 *
 * Everything that comes from user space is copied once into kernel memory
 * and checked there: reserved fields must be zero, unknown flags and
 * commands are refused, ids are bounds-checked under speculation by the core.
 */
#include <linux/compat.h>
#include <linux/fs.h>
#include <linux/miscdevice.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/overflow.h>
#include <linux/poll.h>
#include <linux/sched.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>
#include <linux/time_namespace.h>
#include <linux/uaccess.h>
#include <linux/workqueue.h>

#include "rfwake_compat.h"
#include "rfwake_core.h"
#include "rfwake_watch.h"

static ushort mode = 0600;
module_param(mode, ushort, 0444);
MODULE_PARM_DESC(mode, "permissions of /dev/rfwake (default 0600)");

static uint max_waiters = RFWAKE_MAX_WAITERS;
module_param(max_waiters, uint, 0444);
MODULE_PARM_DESC(max_waiters, "waiters per domain, 1..1024 (default 1024)");

/* Batches up to this size are copied to the stack instead of kmalloc'ed. */
#define RFWAKE_BATCH_ONSTACK 8

/* How often armed commands are checked for ones nobody can complete. */
#define RFWAKE_MONITOR_PERIOD HZ

/**
 * struct rfwake_file - an open /dev/rfwake: a domain and its shared page.
 * @dom: the waiters.
 * @page: the shared page (struct rfwake_shared), mapped by mmap().
 * @file: the file, for the monitor (no reference: armed commands hold one).
 * @narmed: io_uring commands armed and not yet completed.
 * @nmaps: mappings of the shared page; each holds a reference to the file.
 * @unrefs: bumped before a command or a mapping drops its reference to the
 *          file, so that rfwake_reap() can tell that its count changed.
 * @monitor: completes the commands nobody can complete any more (see
 *           rfwake_reap()); runs while commands are armed.
 * @watches: the watched threads and the watch pages (rfwake_watch.c); they
 *           keep the struct allocated after .release.
 */
struct rfwake_file {
	struct rfwake_domain dom;
	struct page *page;
	struct file *file;
	atomic_t narmed;
	atomic_t nmaps;
	atomic_t unrefs;
	struct delayed_work monitor;
	struct rfwake_watch_set watches;
};

/* The command's state lives in io_uring_cmd's pdu: no allocation per wait. */
static struct rfwake_async *rfwake_cmd_async(struct io_uring_cmd *ioucmd)
{
	BUILD_BUG_ON(sizeof(struct rfwake_async) > sizeof(ioucmd->pdu));
	return (struct rfwake_async *)ioucmd->pdu;
}

static struct io_uring_cmd *rfwake_async_cmd(struct rfwake_async *async)
{
	return (struct io_uring_cmd *)((u8 *)async -
				       offsetof(struct io_uring_cmd, pdu));
}

/*
 * Runs in the submitter's task (task work), where io_uring wants its
 * completions posted.  It must not touch the rfwake_file: with a fixed
 * file the domain may already be gone.
 */
static void rfwake_cmd_task_work(struct io_uring_cmd *ioucmd,
				 unsigned int issue_flags)
{
	struct rfwake_async *async = rfwake_cmd_async(ioucmd);

	io_uring_cmd_done(ioucmd, async->res, (ssize_t)async->payload,
			  issue_flags);
}

/* rfwake_domain_ops.complete: a waker, an unregister or a close. */
static void rfwake_cmd_complete(struct rfwake_async *async)
{
	struct io_uring_cmd *ioucmd = rfwake_async_cmd(async);
	struct rfwake_file *rf = ioucmd->file->private_data;

	atomic_dec(&rf->narmed);
	/* before the request drops its file (fput() orders it: rfwake_reap()) */
	atomic_inc(&rf->unrefs);
	/*
	 * Completing in the submitter's task also wakes it when it sleeps
	 * in io_uring_enter(), whichever thread called WAKE.
	 */
	io_uring_cmd_complete_in_task(ioucmd, rfwake_cmd_task_work);
}

static const struct rfwake_domain_ops rfwake_file_ops = {
	.complete = rfwake_cmd_complete,
};

/*
 * Whether the driver must complete a command now, because nobody will read
 * its completion or io_uring waits for it (and 6.1 cannot ask the driver
 * to cancel it):
 *  - its submitter is exiting, or its process is (an SQPOLL thread waits
 *    for its commands before it exits, so there only the group exit shows);
 *  - its submitter is cancelling all its requests: exec
 *    (begin_new_exec() -> io_uring_task_cancel()) and an SQPOLL thread that
 *    stops (killed by the de_thread() of an exec in its process) wait in
 *    io_uring_cancel_generic() until every request of the task is done.
 *    ->in_idle is set for the whole wait; ->io_uring is freed only after
 *    it, when the task has no request left, so not while this command is
 *    armed;
 *  - its ring is being torn down: the last close of the ring kills the
 *    ring's ->refs (io_ring_ctx_wait_and_kill()), one of which each request
 *    holds, and io_ring_exit_work() polls every 50 ms for them all to be
 *    put, and WARNs after 5 minutes.
 *
 * 6.1 only: from 6.7 a driver marks the command cancelable
 * (io_uring_cmd_mark_cancelable()) and io_uring calls ->uring_cmd with
 * IO_URING_F_CANCEL when the task cancels its requests (exec, exit) or the
 * ring is torn down, so this guesswork from io_uring's internals
 * (->in_idle is called ->in_cancel later; later still, req->task is gone)
 * gives way to completing the command named by that call.
 */
#if !RFWAKE_CANCELABLE_CMD
static bool rfwake_cmd_orphaned(const struct rfwake_async *async,
				void *unused)
{
	struct io_uring_cmd *ioucmd =
		rfwake_async_cmd((struct rfwake_async *)async);
	/* the request holds references to its task and its ring */
	struct io_kiocb *req = cmd_to_io_kiocb(ioucmd);
	struct task_struct *task = req->task;
	struct io_uring_task *tctx = READ_ONCE(task->io_uring);

	if ((READ_ONCE(task->flags) & PF_EXITING) ||
	    (READ_ONCE(task->signal->flags) & SIGNAL_GROUP_EXIT))
		return true;
	if (tctx && atomic_read(&tctx->in_idle))
		return true;
	return percpu_ref_is_dying(&req->ctx->refs);
}
#endif

/**
 * struct rfwake_refs - references to the file held by armed commands.
 * @by_fd: commands submitted on a descriptor: each holds a reference
 *         (6.1's io_file_get_normal() takes it, the request's end drops it).
 * @rings: the rings of the commands submitted through a registered file,
 *         each once: such a command holds no reference of its own
 *         (io_file_get_fixed()); its ring's table of registered files holds
 *         one for all of them, and keeps it while a request uses it.
 * @nrings: entries in @rings.
 * @max: room in @rings.
 */
struct rfwake_refs {
	u32 by_fd;
	u32 nrings;
	u32 max;
	const struct io_ring_ctx **rings;
};

/* rfwake_visit_armed(): count the reference of one armed command. */
static void rfwake_count_ref(const struct rfwake_async *async, void *arg)
{
	const struct io_kiocb *req =
		cmd_to_io_kiocb(rfwake_async_cmd((struct rfwake_async *)async));
	struct rfwake_refs *refs = arg;
	u32 i;

	if (!(req->flags & REQ_F_FIXED_FILE)) {
		refs->by_fd++;
		return;
	}
	for (i = 0; i < refs->nrings; i++)
		if (refs->rings[i] == req->ctx)
			return;
	/* one command per waiter: never full */
	if (refs->nrings < refs->max)
		refs->rings[refs->nrings++] = req->ctx;
}

/*
 * 6.1 cannot cancel a uring_cmd, and an armed command holds a reference to
 * the file (or its ring's table of registered files does), so .release
 * never runs while one is armed and the ring's own teardown waits for it.
 * Like ublk, the driver completes its commands itself (-ECANCELED) when
 * nobody can complete them any more:
 *  - io_uring waits for them (exit, exec, ring close): on 6.1 found by
 *    rfwake_cmd_orphaned(); from 6.7 io_uring says so itself
 *    (rfwake_uring_cmd_cancel()) and this rule is not needed;
 *  - no descriptor is left: every reference to the file is held by an armed
 *    command, by the ring of commands armed through a registered file, or
 *    by a mapping of the shared page (struct rfwake_refs), so nobody can
 *    WAKE them.  A reference not seen here (a ring that registered the file
 *    but has no command armed through it) keeps them armed.
 * The references are counted while commands come and go: a count during
 * which one was dropped (@unrefs moved) may include a command or mapping
 * whose reference is gone, and is not trusted.
 * @closing: called from .flush, whose descriptor still holds a reference.
 */
static void rfwake_reap(struct rfwake_file *rf, bool closing)
{
	struct rfwake_refs refs = { .max = rf->dom.max_waiters };
	long others, nrefs;
	int unrefs;

#if !RFWAKE_CANCELABLE_CMD
	rfwake_cancel_armed_if(&rf->dom, -ECANCELED, rfwake_cmd_orphaned,
			       NULL);
#endif

	refs.rings = kmalloc_array(refs.max, sizeof(*refs.rings), GFP_KERNEL);
	if (!refs.rings)
		return;	/* the monitor tries again */
	unrefs = atomic_read(&rf->unrefs);
	smp_rmb();	/* @unrefs before the references it guards */
	rfwake_visit_armed(&rf->dom, rfwake_count_ref, &refs);
	others = (long)refs.by_fd + refs.nrings + atomic_read(&rf->nmaps);
	nrefs = file_count(rf->file);
	smp_rmb();	/* pairs with the full barrier of fput() after the bump */
	if (atomic_read(&rf->unrefs) == unrefs && nrefs <= others + closing)
		rfwake_cancel_armed(&rf->dom, -ECANCELED);
	kfree(refs.rings);
}

static void rfwake_monitor(struct work_struct *work)
{
	struct rfwake_file *rf = container_of(to_delayed_work(work),
					      struct rfwake_file, monitor);

	rfwake_reap(rf, false);
	if (atomic_read(&rf->narmed))
		schedule_delayed_work(&rf->monitor, RFWAKE_MONITOR_PERIOD);
}

/*
 * Free an open file's state: at .release, or after it when the last
 * watched thread unwatches or exits (rfwake_watch_set_close()).
 */
static void rfwake_file_free(struct rfwake_watch_set *set)
{
	struct rfwake_file *rf = container_of(set, struct rfwake_file,
					      watches);

	/* Armed commands hold the file: none can be left, but be sure. */
	rfwake_domain_destroy(&rf->dom);
	rfwake_watch_set_destroy(&rf->watches);
	/* A mapping holds its own reference to the page. */
	__free_page(rf->page);
	kvfree(rf);
}

static int rfwake_open(struct inode *inode, struct file *file)
{
	struct rfwake_file *rf;
	int ret;

	rf = kvzalloc(sizeof(*rf), GFP_KERNEL_ACCOUNT);
	if (!rf)
		return -ENOMEM;
	rf->page = alloc_page(GFP_KERNEL_ACCOUNT | __GFP_ZERO);
	if (!rf->page) {
		ret = -ENOMEM;
		goto err_free_file;
	}
	ret = rfwake_domain_init(&rf->dom, max_waiters,
				 page_address(rf->page), &rfwake_file_ops);
	if (ret)
		goto err_free_page;
	ret = rfwake_watch_set_init(&rf->watches, &rf->dom, rfwake_file_free);
	if (ret)
		goto err_free_page;
	rf->file = file;
	atomic_set(&rf->narmed, 0);
	atomic_set(&rf->nmaps, 0);
	atomic_set(&rf->unrefs, 0);
	INIT_DELAYED_WORK(&rf->monitor, rfwake_monitor);
	file->private_data = rf;
	return stream_open(inode, file);

err_free_page:
	__free_page(rf->page);
err_free_file:
	kvfree(rf);
	return ret;
}

static int rfwake_release(struct inode *inode, struct file *file)
{
	struct rfwake_file *rf = file->private_data;

	cancel_delayed_work_sync(&rf->monitor);
	/* A watched thread keeps the domain, which no longer wakes anyone. */
	if (rfwake_watch_set_close(&rf->watches))
		rfwake_file_free(&rf->watches);
	return 0;
}

/*
 * Called at every close() of a descriptor of the file, and for each one
 * when a process exits: the moment to reap at once rather than at the
 * monitor's next round.
 */
static int rfwake_flush(struct file *file, fl_owner_t id)
{
	struct rfwake_file *rf = file->private_data;

	if (atomic_read(&rf->narmed))
		rfwake_reap(rf, true);
	return 0;
}

/* An ioctl's argument, copied in once by rfwake_ioctl(). */
union rfwake_ioc_arg {
	struct rfwake_info info;
	struct rfwake_register reg;
	struct rfwake_unregister unreg;
	struct rfwake_wait wait;
	struct rfwake_target target;
	struct rfwake_wake_batch batch;
	struct rfwake_swap swap;
	struct rfwake_watch watch;
};

static int rfwake_ioc_info(struct rfwake_file *rf, union rfwake_ioc_arg *arg,
			   void __user *uarg)
{
	struct rfwake_info *info = &arg->info;

	memset(info, 0, sizeof(*info));
	info->abi_version = RFWAKE_ABI_VERSION;
	info->max_waiters = rf->dom.max_waiters;
	info->nwaiters = rfwake_nwaiters(&rf->dom);
	info->features = RFWAKE_FEAT_POLL | RFWAKE_FEAT_MMAP;
	if (IS_ENABLED(CONFIG_IO_URING))
		info->features |= RFWAKE_FEAT_URING_CMD;
	if (rfwake_watch_supported())
		info->features |= RFWAKE_FEAT_WATCH;
	return 0;
}

static int rfwake_ioc_register(struct rfwake_file *rf,
			       union rfwake_ioc_arg *arg, void __user *uarg)
{
	struct rfwake_register *reg = &arg->reg;
	u32 id;
	int ret;

	ret = rfwake_register(&rf->dom, reg->flags, &id);
	if (ret)
		return ret;
	memset(reg, 0, sizeof(*reg));
	reg->id = id;
	if (copy_to_user(uarg, reg, sizeof(*reg))) {
		/* the caller cannot learn the id: do not leak it */
		rfwake_unregister(&rf->dom, id);
		return -EFAULT;
	}
	return 0;
}

static int rfwake_ioc_unregister(struct rfwake_file *rf,
				 union rfwake_ioc_arg *arg, void __user *uarg)
{
	if (arg->unreg.flags)
		return -EINVAL;
	return rfwake_unregister(&rf->dom, arg->unreg.id);
}

/*
 * A user deadline in ns on the caller's CLOCK_MONOTONIC, as a time of the
 * host's CLOCK_MONOTONIC, on which the timer runs; KTIME_MAX and beyond mean
 * "never".  In a time namespace the two clocks differ by the namespace's
 * offset.  timens_ktime_to_host() converts, but a module cannot call it on
 * 6.1: it calls do_timens_ktime_to_host() and reads init_time_ns, neither
 * exported.  The inline timens_add_monotonic() reads the caller's offset
 * (zero outside a time namespace and without CONFIG_TIME_NS), and the rest
 * is do_timens_ktime_to_host(): a deadline before the offset has passed.
 */
static ktime_t rfwake_deadline(u64 deadline_ns)
{
	struct timespec64 offset = {};
	ktime_t host;

	if (deadline_ns >= KTIME_MAX)
		return KTIME_MAX;
	timens_add_monotonic(&offset);
	/* a negative offset may carry a far deadline past KTIME_MAX */
	if (check_sub_overflow((s64)deadline_ns, timespec64_to_ktime(offset),
			       &host))
		return KTIME_MAX;
	return host < 0 ? 0 : host;
}

/* The result is written into the caller's struct, the rest as it came. */
static int rfwake_ioc_wait(struct rfwake_file *rf, union rfwake_ioc_arg *arg,
			   void __user *uarg)
{
	struct rfwake_wait *wait = &arg->wait;

	if (wait->__reserved)
		return -EINVAL;
	return rfwake_wait(&rf->dom, wait->id, wait->flags,
			   rfwake_deadline(wait->deadline_ns), &wait->payload,
			   &wait->count);
}

static int rfwake_ioc_wake(struct rfwake_file *rf, union rfwake_ioc_arg *arg,
			   void __user *uarg)
{
	if (arg->target.__reserved)
		return -EINVAL;
	return rfwake_wake(&rf->dom, arg->target.id, arg->target.payload,
			   false);
}

static int rfwake_ioc_wake_batch(struct rfwake_file *rf,
				 union rfwake_ioc_arg *arg, void __user *uarg)
{
	struct rfwake_target onstack[RFWAKE_BATCH_ONSTACK];
	struct rfwake_wake_batch *batch = &arg->batch;
	struct rfwake_target *targets;
	void __user *utargets;
	size_t size;
	int ret;

	if (batch->flags || batch->__reserved || batch->count == 0 ||
	    batch->count > RFWAKE_MAX_BATCH)
		return -EINVAL;
	/* count <= RFWAKE_MAX_BATCH: the product cannot overflow */
	size = (size_t)batch->count * sizeof(*targets);
	utargets = u64_to_user_ptr(batch->targets);
	if (batch->count <= RFWAKE_BATCH_ONSTACK) {
		targets = onstack;
		if (copy_from_user(targets, utargets, size))
			return -EFAULT;
	} else {
		targets = memdup_user(utargets, size);
		if (IS_ERR(targets))
			return PTR_ERR(targets);
	}
	ret = rfwake_wake_batch(&rf->dom, targets, batch->count);
	if (targets != onstack)
		kfree(targets);
	if (ret < 0)
		return ret;
	/* the wakes are delivered whether or not @woken can be written */
	batch->woken = ret;
	if (put_user(batch->woken, (u32 __user *)(uarg +
			offsetof(struct rfwake_wake_batch, woken))))
		return -EFAULT;
	return ret;
}

/*
 * As for WAIT, the result is written into the caller's struct.  When the
 * wait half fails, the wake is out: RFWAKE_SWAP_WAKE_DONE goes into the
 * caller's @flags, so that the call the kernel restarts after a signal
 * (SA_RESTART, a stop, ptrace, the freezer), or the caller repeats, only
 * waits and does not wake the target a second time.  Where that cannot be
 * written, a signal ends the call with -EINTR instead of a restart.
 */
static int rfwake_ioc_swap(struct rfwake_file *rf, union rfwake_ioc_arg *arg,
			   void __user *uarg)
{
	struct rfwake_swap *swap = &arg->swap;
	u32 __user *uflags = uarg + offsetof(struct rfwake_swap, flags);
	int ret;

	ret = rfwake_swap(&rf->dom, swap->wake_id, swap->wake_payload,
			  swap->wait_id, swap->flags,
			  rfwake_deadline(swap->deadline_ns), &swap->payload,
			  &swap->count);
	/* the core fails with these only after the wake (rfwake_swap()) */
	if (ret != -ERESTARTSYS && ret != -ETIMEDOUT && ret != -EIDRM)
		return ret;
	if (swap->flags & RFWAKE_SWAP_WAKE_DONE)
		return ret;
	if (put_user(swap->flags | RFWAKE_SWAP_WAKE_DONE, uflags))
		return ret == -ERESTARTSYS ? -EINTR : ret;
	return ret;
}

static int rfwake_ioc_watch(struct rfwake_file *rf, union rfwake_ioc_arg *arg,
			    void __user *uarg)
{
	return rfwake_watch(&rf->watches, &arg->watch);
}

/* The calling thread's watch, made through this domain or another. */
static int rfwake_ioc_unwatch(struct rfwake_file *rf,
			      union rfwake_ioc_arg *arg, void __user *uarg)
{
	return rfwake_unwatch();
}

/**
 * struct rfwake_ioctl_desc - an ioctl command and its handler.
 * @cmd: the command; its size and direction say what rfwake_ioctl() copies
 *       in (_IOC_WRITE) before the handler runs.
 * @copy_out: when the handler returns 0, rfwake_ioctl() copies the argument
 *            back; the others write their output themselves.
 * @handler: serves the command on the argument copied in; @uarg is the
 *           caller's copy.
 */
struct rfwake_ioctl_desc {
	unsigned int cmd;
	bool copy_out;
	int (*handler)(struct rfwake_file *rf, union rfwake_ioc_arg *arg,
		       void __user *uarg);
};

static const struct rfwake_ioctl_desc rfwake_ioctls[] = {
	{ RFWAKE_IOC_INFO, true, rfwake_ioc_info },
	/* REGISTER unregisters the id when it cannot be written */
	{ RFWAKE_IOC_REGISTER, false, rfwake_ioc_register },
	{ RFWAKE_IOC_UNREGISTER, false, rfwake_ioc_unregister },
	{ RFWAKE_IOC_WAIT, true, rfwake_ioc_wait },
	{ RFWAKE_IOC_WAKE, false, rfwake_ioc_wake },
	/* WAKE_BATCH writes @woken only, and returns it */
	{ RFWAKE_IOC_WAKE_BATCH, false, rfwake_ioc_wake_batch },
	{ RFWAKE_IOC_SWAP, true, rfwake_ioc_swap },
	{ RFWAKE_IOC_WATCH, false, rfwake_ioc_watch },
	{ RFWAKE_IOC_UNWATCH, false, rfwake_ioc_unwatch },
};

static long rfwake_ioctl(struct file *file, unsigned int cmd,
			 unsigned long arg)
{
	struct rfwake_file *rf = file->private_data;
	void __user *uarg = (void __user *)arg;
	const struct rfwake_ioctl_desc *desc = NULL;
	union rfwake_ioc_arg karg;
	unsigned int i;
	int ret;

	for (i = 0; i < ARRAY_SIZE(rfwake_ioctls); i++)
		if (rfwake_ioctls[i].cmd == cmd)
			desc = &rfwake_ioctls[i];
	if (!desc)
		return -ENOTTY;
	/*
	 * Every command but INFO registers, wakes or waits: a write to the
	 * domain's state, refused on a descriptor opened without write
	 * access, as write(2) is (Documentation/rfwake.md, security model).
	 */
	if (cmd != RFWAKE_IOC_INFO && !(file->f_mode & FMODE_WRITE))
		return -EBADF;
	/* a known command's size is that of its member of karg */
	if ((_IOC_DIR(cmd) & _IOC_WRITE) &&
	    copy_from_user(&karg, uarg, _IOC_SIZE(cmd)))
		return -EFAULT;
	ret = desc->handler(rf, &karg, uarg);
	if (ret || !desc->copy_out)
		return ret;
	return copy_to_user(uarg, &karg, _IOC_SIZE(cmd)) ? -EFAULT : 0;
}

/*
 * 6.7+: io_uring cancels a command marked cancelable (rfwake_uring_cmd())
 * by calling ->uring_cmd with IO_URING_F_CANCEL, with the ring's lock held,
 * when the command's task execs or exits or its ring is torn down; the
 * driver must complete it.  Unless a wake, an unregister or the monitor
 * took it first: then the completion is on its way as task work, which
 * io_uring runs while it waits for the task's requests.
 */
static int rfwake_uring_cmd_cancel(struct io_uring_cmd *ioucmd,
				   unsigned int issue_flags)
{
	struct rfwake_async *async = rfwake_cmd_async(ioucmd);
	struct rfwake_file *rf = ioucmd->file->private_data;

	if (!rfwake_disarm(&rf->dom, async, -ECANCELED))
		return 0;
	atomic_dec(&rf->narmed);
	/* before the request drops its file (as rfwake_cmd_complete()) */
	atomic_inc(&rf->unrefs);
	io_uring_cmd_done(ioucmd, -ECANCELED, 0, issue_flags);
	return 0;
}

/*
 * IORING_OP_URING_CMD: RFWAKE_URING_CMD_WAIT arms a wait that completes
 * with a CQE when the waiter is woken.  Errors found at issue are returned
 * directly (io_uring posts them); a completion found at issue (a pending
 * wake) is posted with io_uring_cmd_done() as ublk does.
 */
static int rfwake_uring_cmd(struct io_uring_cmd *ioucmd,
			    unsigned int issue_flags)
{
	const struct rfwake_uring_wait *sqe_cmd = rfwake_sqe_cmd(ioucmd);
	struct rfwake_async *async = rfwake_cmd_async(ioucmd);
	struct rfwake_file *rf = ioucmd->file->private_data;
	u32 id, flags;
	u64 reserved;
	int ret;

	if (issue_flags & IO_URING_F_CANCEL)
		return rfwake_uring_cmd_cancel(ioucmd, issue_flags);
	if (ioucmd->cmd_op != RFWAKE_URING_CMD_WAIT)
		return -ENOTTY;
	/* arming a wait is a write, as the WAIT ioctl is */
	if (!(ioucmd->file->f_mode & FMODE_WRITE))
		return -EBADF;
	/* The SQE is shared with user space: read each field once. */
	id = READ_ONCE(sqe_cmd->id);
	flags = READ_ONCE(sqe_cmd->flags);
	reserved = READ_ONCE(sqe_cmd->__reserved);
	if (reserved || flags & ~RFWAKE_URING_COUNT_ONLY)
		return -EINVAL;
	/* The payload needs the second half of a 32-byte CQE. */
	if (!(issue_flags & IO_URING_F_CQE32) &&
	    !(flags & RFWAKE_URING_COUNT_ONLY))
		return -EINVAL;

	memset(async, 0, sizeof(*async));
	async->owner = current->tgid;	/* for tests and debugging */
	/*
	 * 6.7+: before the command can be completed, since a completion
	 * takes it off io_uring's list of cancelable commands.  From here on
	 * it is completed with io_uring_cmd_done() even on an error.
	 */
	io_uring_cmd_mark_cancelable(ioucmd, issue_flags);
	atomic_inc(&rf->narmed);
	ret = rfwake_arm(&rf->dom, id, async);
	if (ret == 0) {
		/* a no-op while the monitor is queued */
		schedule_delayed_work(&rf->monitor, RFWAKE_MONITOR_PERIOD);
		return -EIOCBQUEUED;
	}
	atomic_dec(&rf->narmed);
	if (ret < 0) {
		if (!RFWAKE_CANCELABLE_CMD)
			return ret;
		async->res = ret;
		async->payload = 0;
	}
	io_uring_cmd_done(ioucmd, async->res, (ssize_t)async->payload,
			  issue_flags);
	return -EIOCBQUEUED;
}

static __poll_t rfwake_poll(struct file *file, poll_table *wait)
{
	struct rfwake_file *rf = file->private_data;

	poll_wait(file, &rf->dom.poll_wq, wait);
	return rfwake_any_pending(&rf->dom) ? EPOLLIN | EPOLLRDNORM : 0;
}

/* Mappings hold file references: count them for rfwake_reap(). */
static void rfwake_vm_open(struct vm_area_struct *vma)
{
	struct rfwake_file *rf = vma->vm_private_data;

	atomic_inc(&rf->nmaps);
}

static void rfwake_vm_close(struct vm_area_struct *vma)
{
	struct rfwake_file *rf = vma->vm_private_data;

	atomic_dec(&rf->nmaps);
	/* before remove_vma() drops the file (fput() orders it) */
	atomic_inc(&rf->unrefs);
}

static const struct vm_operations_struct rfwake_vm_ops = {
	.open = rfwake_vm_open,
	.close = rfwake_vm_close,
};

/*
 * One shared page at offset 0; shared, so the waiter states are live.  At
 * RFWAKE_WATCH_OFFSET, the two watch pages (rfwake_watch_mmap()).
 */
static int rfwake_mmap(struct file *file, struct vm_area_struct *vma)
{
	struct rfwake_file *rf = file->private_data;
	int ret;

	if (vma->vm_pgoff == RFWAKE_WATCH_OFFSET >> PAGE_SHIFT) {
		ret = rfwake_watch_mmap(&rf->watches, vma);
		if (ret)
			return ret;
		goto mapped;
	}
	if (vma->vm_pgoff != 0 || vma->vm_end - vma->vm_start != PAGE_SIZE ||
	    !(vma->vm_flags & VM_SHARED))
		return -EINVAL;
	rfwake_vm_flags_set(vma, VM_DONTEXPAND | VM_DONTDUMP);
	ret = vm_insert_page(vma, vma->vm_start, rf->page);
	if (ret)
		return ret;
mapped:
	/* ->open is not called for the first mapping, only for copies */
	vma->vm_ops = &rfwake_vm_ops;
	vma->vm_private_data = rf;
	atomic_inc(&rf->nmaps);
	return 0;
}

static const struct file_operations rfwake_fops = {
	.owner = THIS_MODULE,
	.open = rfwake_open,
	.release = rfwake_release,
	.flush = rfwake_flush,
	.unlocked_ioctl = rfwake_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.uring_cmd = rfwake_uring_cmd,
	.poll = rfwake_poll,
	.mmap = rfwake_mmap,
	.llseek = RFWAKE_NO_LLSEEK,
};

/*
 * The counters in /sys/class/misc/rfwake/, one number per file
 * (Documentation/ABI/testing/sysfs-class-misc-rfwake).  Root only: they
 * show every domain's activity, whoever opened it.
 */
#define RFWAKE_STAT_FIELD(field) { #field, offsetof(struct rfwake_stats, field) }

static const struct {
	const char *name;
	size_t offset;
} rfwake_stat_fields[] = {
	RFWAKE_STAT_FIELD(wakes),
	RFWAKE_STAT_FIELD(wakes_pended),
	RFWAKE_STAT_FIELD(waits),
	RFWAKE_STAT_FIELD(waits_slept),
	RFWAKE_STAT_FIELD(swaps),
	RFWAKE_STAT_FIELD(timeouts),
	RFWAKE_STAT_FIELD(interrupted),
	RFWAKE_STAT_FIELD(cmds_armed),
	RFWAKE_STAT_FIELD(cmds_completed),
	RFWAKE_STAT_FIELD(cmds_canceled),
};

static ssize_t rfwake_stat_show(struct device *dev,
				struct device_attribute *attr, char *buf)
{
	struct rfwake_stats s;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(rfwake_stat_fields); i++) {
		if (strcmp(attr->attr.name, rfwake_stat_fields[i].name))
			continue;
		rfwake_stats_read(&s);
		return sysfs_emit(buf, "%llu\n",
				  *(u64 *)((u8 *)&s + rfwake_stat_fields[i].offset));
	}
	return -EINVAL;
}

#define RFWAKE_STAT_ATTR(field) \
	static struct device_attribute dev_attr_##field = \
		__ATTR(field, 0400, rfwake_stat_show, NULL)

RFWAKE_STAT_ATTR(wakes);
RFWAKE_STAT_ATTR(wakes_pended);
RFWAKE_STAT_ATTR(waits);
RFWAKE_STAT_ATTR(waits_slept);
RFWAKE_STAT_ATTR(swaps);
RFWAKE_STAT_ATTR(timeouts);
RFWAKE_STAT_ATTR(interrupted);
RFWAKE_STAT_ATTR(cmds_armed);
RFWAKE_STAT_ATTR(cmds_completed);
RFWAKE_STAT_ATTR(cmds_canceled);

static struct attribute *rfwake_attrs[] = {
	&dev_attr_wakes.attr,
	&dev_attr_wakes_pended.attr,
	&dev_attr_waits.attr,
	&dev_attr_waits_slept.attr,
	&dev_attr_swaps.attr,
	&dev_attr_timeouts.attr,
	&dev_attr_interrupted.attr,
	&dev_attr_cmds_armed.attr,
	&dev_attr_cmds_completed.attr,
	&dev_attr_cmds_canceled.attr,
	&rfwake_dev_attr_blocks.attr,
	NULL,
};
ATTRIBUTE_GROUPS(rfwake);

static struct miscdevice rfwake_misc = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = RFWAKE_DEVICE_NAME,
	.fops = &rfwake_fops,
	.groups = rfwake_groups,
};

static int __init rfwake_init(void)
{
	int ret;

	if (mode & ~0666) {
		pr_err("rfwake: mode %#o: only read/write bits are allowed\n",
		       mode);
		return -EINVAL;
	}
	if (max_waiters == 0 || max_waiters > RFWAKE_MAX_WAITERS) {
		pr_err("rfwake: max_waiters %u is not in 1..%u\n",
		       max_waiters, RFWAKE_MAX_WAITERS);
		return -EINVAL;
	}
	rfwake_misc.mode = mode;
	ret = rfwake_watch_init();
	if (ret)
		return ret;
	ret = misc_register(&rfwake_misc);
	if (ret)
		rfwake_watch_exit();
	return ret;
}

static void __exit rfwake_exit(void)
{
	misc_deregister(&rfwake_misc);
	rfwake_watch_exit();
}

module_init(rfwake_init);
module_exit(rfwake_exit);

MODULE_DESCRIPTION("rfwake: fast cross-thread wake-ups for the ringfiber runtime");
MODULE_AUTHOR("ringfiber");
MODULE_LICENSE("GPL");
