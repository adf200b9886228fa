// SPDX-License-Identifier: MIT
/*
 * msg_ring.c - wake a sleeping worker with IORING_OP_MSG_RING (Linux 5.18).
 *
 * A waker that is a worker posts a completion straight into the sleeper's
 * ring from its own ring: the sleeper's io_uring_enter() returns with it.
 * The request is flagged IOSQE_CQE_SKIP_SUCCESS, so the waker's ring gets a
 * completion only if it failed; that completion names the sleeper
 * (RF__UD_KICK), and the waker then wakes it through its eventfd instead.
 *
 * Every worker also keeps an eventfd read armed, as the eventfd back-end
 * does (eventfd.c).  A thread with no ring (the rf_blocking() pool, a
 * program's own thread calling rf_event_set()) writes to that eventfd: one
 * system call, no lock, and no descriptor to make at wake-up time.  (It
 * used to borrow a process-wide ring made on first use, under a mutex: made
 * while the process was out of descriptors, that ring failed for good, and
 * every wake-up from such a thread was lost from then on.)  A waker that
 * finds no SQE in its own ring writes to the eventfd too.  So no way of
 * waking a worker depends on a descriptor made after the run started.
 * The worker's state is the eventfd back-end's: a message needs none.
 */
#include <errno.h>

#include "internal.h"

static int rf__msg_ring_kick(struct rf__worker *from, struct rf__worker *to)
{
	struct io_uring_sqe *sqe;

	if (!from || !from->has_ring || !(sqe = rf__get_sqe_internal(from)))
		return rf__eventfd_kick(from, to);
	io_uring_prep_msg_ring(sqe, to->ring.ring_fd, 0, rf__ud(NULL, RF__UD_WAKE), 0);
	sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
	sqe->user_data = rf__ud(to, RF__UD_KICK);
	/* now, not at the next flush: the sleeper's latency is the point */
	rf__flush(from, false);
	return 0;
}

static void rf__msg_ring_complete(struct rf__worker *wk, const struct io_uring_cqe *cqe)
{
	struct rf__worker *to;

	if ((cqe->user_data & RF__UD_MASK) == RF__UD_KICK) {
		/*
		 * A MSG_RING of ours failed (the kernel could not queue the
		 * message: -ENOMEM, or on older kernels -EOVERFLOW when the
		 * sleeper's CQ was full).  Its wake_pending is still set, so
		 * no other waker will try: wake it through its eventfd.
		 */
		to = (struct rf__worker *)(uintptr_t)(cqe->user_data & ~(uint64_t)RF__UD_MASK);
		__atomic_fetch_add(&to->wake_errors, 1, __ATOMIC_RELAXED);
		rf__eventfd_kick(wk, to);
		return;
	}
	/* a message needs nothing; the eventfd read is armed again */
	if (rf__eventfd_is_read(wk, cqe))
		rf__eventfd_complete(wk, cqe);
}

const struct rf__wake_ops rf__wake_msg_ring = {
	.name = "msg_ring",
	.needs = RF_FEAT_MSG_RING,
	.setup = rf__eventfd_setup,
	.teardown = rf__eventfd_teardown,
	.kick = rf__msg_ring_kick,
	.complete = rf__msg_ring_complete,
	.arm = rf__eventfd_arm,
};
