/* SPDX-License-Identifier: GPL-2.0 */
/*
 * rfwake_compat.h - every difference between the kernels rfwake is built
 * for: Debian 12's 6.1 (6.1.192) and 6.12 (6.12.118, generic and
 * PREEMPT_RT).  The rest of the module is written against the newer API;
 * each difference below says what changed upstream, in which release, and
 * why rfwake cares.  Documentation/rfwake.md, "Kernels", lists what the
 * module can and cannot do on each.
 *
 * Out-of-tree code that supports several kernels has no other way than to
 * test LINUX_VERSION_CODE; it is tested here and nowhere else
 * (scripts/module-check lets checkpatch's LINUX_VERSION_CODE and
 * CONSTANT_COMPARISON warnings about those tests pass for this file only).
 *
 * PREEMPT_RT needs no entry: rfwake takes only spinlock_t locks (which RT
 * turns into sleeping locks) in process context, never raw spinlocks, and
 * disables neither preemption nor interrupts around anything that sleeps.
 */
#ifndef _RFWAKE_COMPAT_H
#define _RFWAKE_COMPAT_H

#include <linux/fs.h>
#include <linux/mm.h>
#include <linux/sched.h>
#include <linux/version.h>

/*
 * 6.8 ("io_uring: split out cmd api into a separate header"): the
 * uring_cmd API (struct io_uring_cmd, io_uring_cmd_done(), ...) moved from
 * <linux/io_uring.h> to <linux/io_uring/cmd.h>.
 */
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 8, 0)
#include <linux/io_uring/cmd.h>
#else
#include <linux/io_uring.h>
#endif

/*
 * 6.5 ("io_uring: Pass whole sqe to commands"): struct io_uring_cmd lost
 * its ->cmd pointer to the SQE's command area; it is reached through
 * io_uring_sqe_cmd(ioucmd->sqe).  rfwake reads its struct rfwake_uring_wait
 * from there.
 */

#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 5, 0)
static inline const void *rfwake_sqe_cmd(const struct io_uring_cmd *ioucmd)
{
	return io_uring_sqe_cmd(ioucmd->sqe);
}
#else
static inline const void *rfwake_sqe_cmd(const struct io_uring_cmd *ioucmd)
{
	return ioucmd->cmd;
}
#endif
#include <linux/io_uring_types.h>

/*
 * 6.3 ("mm: introduce vma->vm_flags wrapper functions"): vma->vm_flags
 * became read-only outside mm; flags are set with vm_flags_set(), which
 * also asserts the mmap lock.  rfwake's mmap sets VM_DONTEXPAND |
 * VM_DONTDUMP on its shared page.
 */
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 3, 0)
static inline void rfwake_vm_flags_set(struct vm_area_struct *vma,
				       vm_flags_t flags)
{
	vm_flags_set(vma, flags);
}
#else
static inline void rfwake_vm_flags_set(struct vm_area_struct *vma,
				       vm_flags_t flags)
{
	vma->vm_flags |= flags;
}
#endif

/*
 * 6.12 ("[tree-wide] finally take no_llseek out"): no_llseek() is gone.  A
 * file without FMODE_LSEEK (which stream_open() clears, as rfwake_open()
 * does) gets -ESPIPE from lseek() with no ->llseek, as no_llseek()
 * returned.  rfwake's device cannot seek.
 */
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 12, 0)
#define RFWAKE_NO_LLSEEK NULL
#else
#define RFWAKE_NO_LLSEEK no_llseek
#endif

/*
 * 6.7 ("io_uring: cancelable uring_cmd"): a driver may mark a uring_cmd
 * cancelable (io_uring_cmd_mark_cancelable()); io_uring then calls
 * ->uring_cmd() again with IO_URING_F_CANCEL when the command's task
 * cancels its requests (exec, exit) or its ring is torn down, and the
 * driver completes it.  6.1 has neither: there the module's monitor guesses
 * from io_uring's private state that io_uring waits for a command
 * (rfwake_cmd_orphaned() in rfwake_main.c reads io_uring_task.in_idle,
 * which later kernels call ->in_cancel, and io_kiocb.task, gone after
 * 6.12).  RFWAKE_CANCELABLE_CMD says which of the two the module uses; on
 * 6.1 the flag is 0 and marking a command does nothing.
 */
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 7, 0)
#define RFWAKE_CANCELABLE_CMD 1
#else
#define RFWAKE_CANCELABLE_CMD 0
#define IO_URING_F_CANCEL 0

static inline void io_uring_cmd_mark_cancelable(struct io_uring_cmd *ioucmd,
						unsigned int issue_flags)
{
}
#endif

/*
 * 6.3 ("block/io_uring: pass in issue_flags for uring_cmd task_work
 * handling"): io_uring_cmd_done() and the task-work callback of
 * io_uring_cmd_complete_in_task() take the caller's issue_flags.
 * Debian's 6.1.192 has it backported (6.1.y stable), so both kernels rfwake
 * supports have it and nothing is needed here; a 6.1 older than the
 * backport does not build.  io_uring_cmd_done()'s res2 is a
 * ssize_t in 6.1 and a u64 in 6.12: rfwake passes the payload's 64 bits,
 * which either type carries.
 */

/*
 * 6.12 (EEVDF's delayed dequeue, "sched/fair: Implement delayed dequeue",
 * 6.12): a fair task that blocks while not eligible is left on the run
 * queue (p->on_rq) with p->se.sched_delayed set until it is picked or
 * woken; a running task is never sched_delayed.  Block notification
 * (rfwake_watch.c) must tell a task that blocked from one that was
 * preempted, in the scheduler's sched_out notifier, with the run-queue lock
 * held: before 6.12, __schedule() has dequeued a blocked task by then
 * (!p->on_rq); from 6.12, also p->se.sched_delayed, the test of 6.12's
 * psi_sched_switch() in __schedule().
 */
static inline bool rfwake_task_blocked(const struct task_struct *p)
{
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 12, 0)
	return !READ_ONCE(p->on_rq) || p->se.sched_delayed;
#else
	return !READ_ONCE(p->on_rq);
#endif
}

#endif /* _RFWAKE_COMPAT_H */
