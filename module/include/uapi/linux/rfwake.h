/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * The user-space ABI of /dev/rfwake, ringfiber's wake-up device.
 *
 * One header is shared by the module, the ringfiber library and the tests.
 * Documentation/rfwake.md describes every command; the rules:
 *
 *  - Every struct has a fixed size made of __u32/__u64, explicitly padded;
 *    pointers travel as __u64.  Reserved fields must be zero and unknown
 *    flags are rejected with -EINVAL, so they can be given a meaning later.
 *  - An open file of /dev/rfwake is a wake domain.  Waiters are registered
 *    in a domain and named by a small id (0 .. RFWAKE_MAX_WAITERS - 1); only
 *    holders of the file can wake them.
 *  - A descriptor opened without write access may use RFWAKE_IOC_INFO and
 *    poll; every other command registers, wakes or waits, a write to the
 *    domain, and fails with -EBADF (as write(2) would).
 *  - Wakes that arrive while their waiter is not waiting stay pending and
 *    coalesce: the next wait returns at once with the number of wakes merged
 *    (count) and the bitwise OR of their payloads.
 */
#ifndef _UAPI_LINUX_RFWAKE_H
#define _UAPI_LINUX_RFWAKE_H

#include <linux/const.h>
#include <linux/ioctl.h>
#include <linux/types.h>

#define RFWAKE_DEVICE_NAME	"rfwake"	/* /dev/rfwake */
#define RFWAKE_ABI_VERSION	1

/* 0xBB is unused in Documentation/userspace-api/ioctl/ioctl-number.rst. */
#define RFWAKE_IOC_MAGIC	0xBB

/* Waiters per domain (the module's max_waiters may lower it); ids are below. */
#define RFWAKE_MAX_WAITERS	1024
/* Targets in one RFWAKE_IOC_WAKE_BATCH. */
#define RFWAKE_MAX_BATCH	RFWAKE_MAX_WAITERS
/*
 * The count of merged wakes saturates here (INT32_MAX), so that it is the
 * same in struct rfwake_wait, struct rfwake_swap and a CQE's s32 res, where
 * it must stay positive: wakes beyond it are merged but not counted.
 */
#define RFWAKE_COUNT_MAX	0x7fffffff

/*
 * The shared page: mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)
 * maps one word per waiter id.  The kernel stores RFWAKE_STATE_PARKED when the
 * waiter sleeps in WAIT/SWAP or has a uring_cmd WAIT armed, and
 * RFWAKE_STATE_RUNNING with every wake.  A waker that reads RUNNING after
 * publishing its message (with a full barrier in between) may skip the
 * syscall.  A waiter may store PARKED itself before re-checking its condition
 * and calling WAIT, which makes that skip safe (Documentation/rfwake.md).
 * The kernel only ever writes the page; it never trusts what it holds.
 */
#define RFWAKE_STATE_RUNNING	0
#define RFWAKE_STATE_PARKED	1

struct rfwake_shared {
	__u32 state[RFWAKE_MAX_WAITERS];
};

/* RFWAKE_IOC_INFO: what this module supports. */
struct rfwake_info {
	__u32 abi_version;	/* out: RFWAKE_ABI_VERSION */
	__u32 max_waiters;	/* out: waiters this domain may register */
	__u32 nwaiters;		/* out: waiters registered now */
	__u32 features;		/* out: RFWAKE_FEAT_* */
	__u64 __reserved[2];	/* out: zero */
};

#define RFWAKE_FEAT_URING_CMD	_BITUL(0)	/* RFWAKE_URING_CMD_WAIT */
#define RFWAKE_FEAT_POLL	_BITUL(1)	/* poll/epoll on the domain */
#define RFWAKE_FEAT_MMAP	_BITUL(2)	/* the shared page */
#define RFWAKE_FEAT_WATCH	_BITUL(3)	/* RFWAKE_IOC_WATCH (block notification) */

/*
 * RFWAKE_IOC_REGISTER: add a waiter; flags must be 0; the id comes back.
 * -ENOSPC when every id is taken; -EAGAIN when the only free ids are still
 * being left by a thread that slept on them when they were unregistered.
 */
struct rfwake_register {
	__u32 flags;		/* in: 0 */
	__u32 id;		/* out: the lowest free id */
};

/*
 * RFWAKE_IOC_UNREGISTER: remove a waiter.  A thread sleeping on it returns
 * -EIDRM, an armed uring_cmd completes with -EIDRM, pending wakes are dropped.
 */
struct rfwake_unregister {
	__u32 id;
	__u32 flags;		/* in: 0 */
};

#define RFWAKE_WAIT_DEADLINE	_BITUL(0)	/* deadline_ns is set */
#define RFWAKE_WAIT_NONBLOCK	_BITUL(1)	/* take a pending wake or -EAGAIN */

/*
 * RFWAKE_IOC_WAIT: sleep on waiter @id until it is woken.
 * Returns 0 with @payload and @count filled in, or -ETIMEDOUT when the
 * absolute CLOCK_MONOTONIC @deadline_ns passed (the caller's clock: in a time
 * namespace, the namespace's), -EAGAIN (NONBLOCK),
 * -EINTR on a signal (restarted under SA_RESTART: the deadline is absolute),
 * -EBUSY when another thread or a uring_cmd already waits on @id,
 * -EIDRM when the waiter was unregistered meanwhile.
 */
struct rfwake_wait {
	__u32 id;
	__u32 flags;		/* in: RFWAKE_WAIT_* */
	__u64 deadline_ns;	/* in: absolute CLOCK_MONOTONIC, with DEADLINE */
	__u64 payload;		/* out: OR of the merged wakes' payloads */
	__u32 count;		/* out: wakes merged, 1 .. RFWAKE_COUNT_MAX */
	__u32 __reserved;	/* in: 0 */
};

/*
 * RFWAKE_IOC_WAKE: wake waiter @id with @payload.  Returns 1 when a sleeping
 * thread or an armed uring_cmd was woken, 0 when the wake was left pending.
 */
struct rfwake_target {
	__u32 id;
	__u32 __reserved;	/* in: 0 */
	__u64 payload;
};

/*
 * RFWAKE_IOC_WAKE_BATCH: wake @count targets in one call.  Every target is
 * checked before any is woken: one bad target fails the call and wakes none.
 * Returns the number of targets that were sleeping or armed (also in @woken).
 * A target named twice gets both wakes (merged).
 */
struct rfwake_wake_batch {
	__u64 targets;		/* in: pointer to struct rfwake_target[count] */
	__u32 count;		/* in: 1 .. RFWAKE_MAX_BATCH */
	__u32 flags;		/* in: 0 */
	__u32 woken;		/* out */
	__u32 __reserved;	/* in: 0 */
};

#define RFWAKE_SWAP_DEADLINE	RFWAKE_WAIT_DEADLINE
#define RFWAKE_SWAP_NOSYNC	_BITUL(2)	/* wake without the WF_SYNC hint */
#define RFWAKE_SWAP_WAKE_DONE	_BITUL(3)	/* in/out: the wake is out, only wait */

/*
 * RFWAKE_IOC_SWAP: wake @wake_id with @wake_payload and wait on @wait_id,
 * in one call.  The wake uses the scheduler's sync hint (the waker is about
 * to sleep) unless RFWAKE_SWAP_NOSYNC.  @wake_id == @wait_id is -EINVAL.
 * The wait half behaves as RFWAKE_IOC_WAIT; when it fails (-EINTR,
 * -ETIMEDOUT, -EIDRM) the wake has been delivered, exactly once: the kernel
 * then sets RFWAKE_SWAP_WAKE_DONE in the caller's @flags, and a SWAP with
 * that flag skips the wake and only waits.  That is what makes a restart
 * after a signal (SA_RESTART, SIGSTOP/SIGCONT, ptrace) wait without waking
 * the target again, and what a caller that repeats the call with the same
 * struct after -EINTR gets.  On success @flags is left as it was passed.
 */
struct rfwake_swap {
	__u32 wake_id;
	__u32 wait_id;
	__u64 wake_payload;
	__u64 deadline_ns;	/* in: absolute CLOCK_MONOTONIC, with DEADLINE */
	__u32 flags;		/* in: RFWAKE_SWAP_* */
	__u32 count;		/* out: as in struct rfwake_wait */
	__u64 payload;		/* out: as in struct rfwake_wait */
};

#define RFWAKE_IOC_INFO		_IOR(RFWAKE_IOC_MAGIC, 0x00, struct rfwake_info)
#define RFWAKE_IOC_REGISTER	_IOWR(RFWAKE_IOC_MAGIC, 0x01, struct rfwake_register)
#define RFWAKE_IOC_UNREGISTER	_IOW(RFWAKE_IOC_MAGIC, 0x02, struct rfwake_unregister)
#define RFWAKE_IOC_WAIT		_IOWR(RFWAKE_IOC_MAGIC, 0x03, struct rfwake_wait)
#define RFWAKE_IOC_WAKE		_IOW(RFWAKE_IOC_MAGIC, 0x04, struct rfwake_target)
#define RFWAKE_IOC_WAKE_BATCH	_IOWR(RFWAKE_IOC_MAGIC, 0x05, struct rfwake_wake_batch)
#define RFWAKE_IOC_SWAP		_IOWR(RFWAKE_IOC_MAGIC, 0x06, struct rfwake_swap)

/*
 * Block notification (Documentation/rfwake.md): a thread that calls
 * RFWAKE_IOC_WATCH is watched until it calls RFWAKE_IOC_UNWATCH or exits.
 * Whenever the scheduler switches it out while it is not runnable (it
 * blocked in the kernel: a sleeping system call, a page fault waiting for
 * I/O, a lock; not a preemption), the module makes seq[@watch_id] odd and,
 * when armed[@watch_id] is non-zero, wakes waiter @notify_id with @payload
 * as RFWAKE_IOC_WAKE would (from interrupt context, a moment after the
 * switch); when the thread runs again, seq[@watch_id] becomes even.
 * Both ids must be registered waiters of the domain and differ; an id
 * watches one thread at a time.  Errors: -EINVAL (an id out of range, equal
 * ids, flags or reserved non-zero), -ENOENT (an id not registered), -EBUSY
 * (the thread is already watched, by any domain, or @watch_id already
 * watches another thread), -EOPNOTSUPP (a kernel without
 * CONFIG_PREEMPT_NOTIFIERS; RFWAKE_FEAT_WATCH is then clear).
 * RFWAKE_IOC_UNWATCH ends the calling thread's watch, whichever domain it
 * was made in; -ENOENT when the thread is not watched.  Once the domain's
 * last descriptor is closed its watches notify nobody.
 */
struct rfwake_watch {
	__u32 watch_id;		/* in: names this thread's words in the watch pages */
	__u32 notify_id;	/* in: the waiter woken when the thread blocks */
	__u64 payload;		/* in: that wake's payload (e.g. a bit per worker) */
	__u32 flags;		/* in: 0 */
	__u32 __reserved;	/* in: 0 */
};

/*
 * The watch pages: mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
 * RFWAKE_WATCH_OFFSET).  User space writes armed[]; the kernel only reads it
 * (one load per block).  The kernel writes seq[] (+1 when the thread blocks,
 * so odd while it is blocked; +1 when it runs again) and never reads it back
 * except once, at WATCH, to continue from its value (made even).
 */
#define RFWAKE_WATCH_OFFSET	4096

struct rfwake_watch_shared {
	__u32 armed[RFWAKE_MAX_WAITERS];	/* user: non-zero = notify */
	__u32 seq[RFWAKE_MAX_WAITERS];		/* kernel: odd = blocked now */
};

#define RFWAKE_IOC_WATCH	_IOW(RFWAKE_IOC_MAGIC, 0x07, struct rfwake_watch)
#define RFWAKE_IOC_UNWATCH	_IO(RFWAKE_IOC_MAGIC, 0x08)

/*
 * io_uring: IORING_OP_URING_CMD on the domain's fd with cmd_op
 * RFWAKE_URING_CMD_WAIT and struct rfwake_uring_wait in the SQE's command
 * area (sqe->cmd, 16 bytes).  The command is armed on waiter @id and completes
 * when any thread wakes @id: cqe->res is the number of wakes merged
 * (1 .. RFWAKE_COUNT_MAX) and, on a ring set up with IORING_SETUP_CQE32,
 * cqe->big_cqe[0] is the payload.
 * A ring without CQE32 must pass RFWAKE_URING_COUNT_ONLY (the payload is then
 * not delivered) or the command fails with -EINVAL.  Errors in cqe->res:
 * -EBUSY (a thread or command already waits on @id), -EIDRM (unregistered),
 * -ECANCELED (the domain's last descriptor was closed).  There is no deadline:
 * bound the wait with io_uring_enter's own timeout.
 */
#define RFWAKE_URING_COUNT_ONLY	_BITUL(0)

struct rfwake_uring_wait {
	__u32 id;
	__u32 flags;		/* in: RFWAKE_URING_* */
	__u64 __reserved;	/* in: 0 */
};

#define RFWAKE_URING_CMD_WAIT	_IOR(RFWAKE_IOC_MAGIC, 0x10, struct rfwake_uring_wait)

#endif /* _UAPI_LINUX_RFWAKE_H */
