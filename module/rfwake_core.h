/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Wake domains and waiters, independent of the misc device.
 *
 * rfwake_core.c holds all of rfwake's logic: id allocation, pending-wake
 * accounting, sleeping and waking, hand-off and teardown.  rfwake_main.c
 * wraps it in a character device (ioctl, io_uring command, poll, mmap) and
 * rfwake_kunit.c tests it directly, with kernel threads and fake commands.
 */
#ifndef _RFWAKE_CORE_H
#define _RFWAKE_CORE_H

#include <linux/ktime.h>
#include <linux/spinlock.h>
#include <linux/types.h>
#include <linux/wait.h>
#include <linux/rfwake.h>

/**
 * struct rfwake_async - a WAIT that completes by callback (an io_uring command).
 * @next: used by rfwake_cancel_armed() to collect completions.
 * @owner: the owner's tag (rfwake_main.c: the submitter's thread-group id);
 *         rfwake_cancel_armed_if() selects commands by it.
 * @res: out: @count, or a negative errno.
 * @payload: out: the OR of the merged wakes' payloads.
 * @count: out: the number of wakes merged (at most RFWAKE_COUNT_MAX).
 * @__pad: keeps the struct at 32 bytes.
 *
 * It fits io_uring_cmd's 32-byte pdu, where rfwake_main.c keeps it.
 */
struct rfwake_async {
	struct rfwake_async *next;
	u32 owner;
	s32 res;
	u64 payload;
	u32 count;
	u32 __pad;
};

/**
 * struct rfwake_domain_ops - what the owner of a domain is told.
 * @complete: an armed rfwake_async got its result (in @res, @count and
 *            @payload).  Called with no rfwake lock held, in process
 *            context, or in hard interrupt context when a block
 *            notification (rfwake_watch.c) wakes the waiter: it must not
 *            sleep.
 */
struct rfwake_domain_ops {
	void (*complete)(struct rfwake_async *async);
};

struct rfwake_waiter;

/**
 * struct rfwake_domain - the waiters of one open file of /dev/rfwake.
 * @lock: protects @ids, @nwaiters and the allocation of @slots.
 * @max_waiters: ids are below this (at most RFWAKE_MAX_WAITERS).
 * @nwaiters: registered waiters.
 * @ids: allocated ids.
 * @slots: the waiter of each id; allocated on first use, reused after
 *         unregister and freed with the domain, so a pointer read here stays
 *         valid for the domain's lifetime.
 * @shared: the shared page's words (struct rfwake_shared), or NULL.
 * @poll_wq: poll/epoll waiters of the domain.
 * @npending: waiters with a pending wake (poll reports EPOLLIN when > 0).
 * @ops: callbacks.
 * @trace_id: a number that names the domain in trace events.
 */
struct rfwake_domain {
	spinlock_t lock;	/* ids, nwaiters, slot allocation */
	u32 max_waiters;
	u32 nwaiters;
	unsigned long ids[BITS_TO_LONGS(RFWAKE_MAX_WAITERS)];
	struct rfwake_waiter *slots[RFWAKE_MAX_WAITERS];
	u32 *shared;
	wait_queue_head_t poll_wq;
	atomic_t npending;
	const struct rfwake_domain_ops *ops;
	u64 trace_id;
};

/**
 * struct rfwake_stats - module-wide counters, summed over CPUs when read.
 * @wakes: wakes delivered, one per target.
 * @wakes_pended: wakes that found nobody waiting and were left pending.
 * @waits: WAIT and SWAP waits started.
 * @waits_slept: waits that went to sleep (nothing was pending).
 * @swaps: SWAP calls that delivered their wake.
 * @timeouts: waits ended by their deadline.
 * @interrupted: waits ended by a signal.
 * @cmds_armed: io_uring WAIT commands issued on a waiter.
 * @cmds_completed: commands completed by a wake (at once or later).
 * @cmds_canceled: commands completed by unregister, close or exit.
 *
 * Every field counts events since the module was loaded.
 */
struct rfwake_stats {
	u64 wakes;
	u64 wakes_pended;
	u64 waits;
	u64 waits_slept;
	u64 swaps;
	u64 timeouts;
	u64 interrupted;
	u64 cmds_armed;
	u64 cmds_completed;
	u64 cmds_canceled;
};

/* Counters as read by the sysfs attributes. */
void rfwake_stats_read(struct rfwake_stats *sum);

int rfwake_domain_init(struct rfwake_domain *dom, u32 max_waiters, u32 *shared,
		       const struct rfwake_domain_ops *ops);
void rfwake_domain_destroy(struct rfwake_domain *dom);

int rfwake_register(struct rfwake_domain *dom, u32 flags, u32 *id);
int rfwake_unregister(struct rfwake_domain *dom, u32 id);
u32 rfwake_nwaiters(struct rfwake_domain *dom);

int rfwake_wake(struct rfwake_domain *dom, u32 id, u64 payload, bool sync);
int rfwake_wake_batch(struct rfwake_domain *dom,
		      const struct rfwake_target *targets, u32 count);

int rfwake_wait(struct rfwake_domain *dom, u32 id, u32 flags, ktime_t deadline,
		u64 *payload, u32 *count);
int rfwake_swap(struct rfwake_domain *dom, u32 wake_id, u64 wake_payload,
		u32 wait_id, u32 flags, ktime_t deadline, u64 *payload,
		u32 *count);

int rfwake_arm(struct rfwake_domain *dom, u32 id, struct rfwake_async *async);
unsigned int rfwake_cancel_armed(struct rfwake_domain *dom, int res);
unsigned int rfwake_cancel_armed_if(struct rfwake_domain *dom, int res,
				    bool (*match)(const struct rfwake_async *async,
						  void *arg),
				    void *arg);
bool rfwake_disarm(struct rfwake_domain *dom, struct rfwake_async *async,
		   int res);
bool rfwake_any_pending(struct rfwake_domain *dom);
void rfwake_visit_armed(struct rfwake_domain *dom,
			void (*fn)(const struct rfwake_async *async, void *arg),
			void *arg);

int rfwake_is_registered(struct rfwake_domain *dom, u32 id);

#if IS_ENABLED(CONFIG_RFWAKE_KUNIT_TEST)
int rfwake_kunit_set_pending(struct rfwake_domain *dom, u32 id, u32 pending);
#endif

#endif /* _RFWAKE_CORE_H */
