// SPDX-License-Identifier: MIT
/*
 * msg_ring.c - wake a sleeping worker with IORING_OP_MSG_RING (Linux 5.18).
 *
 * The waker posts a completion straight into the sleeper's ring from its
 * own ring: the sleeper's io_uring_enter() returns with it, and nothing has
 * to be armed beforehand.  The request is flagged IOSQE_CQE_SKIP_SUCCESS,
 * so the waker's ring gets no completion unless it failed.  A thread with
 * no ring of its own (the rf_blocking() pool) borrows a process-wide ring
 * made for the purpose, under a mutex.
 */
#include <errno.h>
#include <pthread.h>

#include "internal.h"

static bool rf__msg_ring_available(const struct rf_runtime *rt)
{
	return rt->features & RF_FEAT_MSG_RING;
}

static int rf__msg_ring_setup(struct rf__worker *wk)
{
	return 0;	/* nothing to arm: the message is the wake-up */
}

static void rf__msg_ring_teardown(struct rf__worker *wk)
{
}

static void rf__msg_ring_prep(struct io_uring_sqe *sqe, struct rf__worker *to)
{
	io_uring_prep_msg_ring(sqe, to->ring.ring_fd, 0, rf__ud(NULL, RF__UD_WAKE), 0);
	sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
	sqe->user_data = rf__ud(NULL, RF__UD_IGNORE);
}

static pthread_mutex_t rf__borrowed_lock = PTHREAD_MUTEX_INITIALIZER;
static struct io_uring rf__borrowed_ring;
static int rf__borrowed_state;	/* 0 not made, 1 ready, < 0 the error */

static void rf__msg_ring_kick_foreign(struct rf__worker *to)
{
	struct io_uring_sqe *sqe;
	struct io_uring_cqe *cqe;

	pthread_mutex_lock(&rf__borrowed_lock);
	if (!rf__borrowed_state) {
		int ret = io_uring_queue_init(4, &rf__borrowed_ring, 0);

		rf__borrowed_state = ret ? ret : 1;
	}
	if (rf__borrowed_state > 0) {
		sqe = io_uring_get_sqe(&rf__borrowed_ring);
		rf__msg_ring_prep(sqe, to);
		io_uring_submit(&rf__borrowed_ring);
		/* only a failure posts a completion: drop it */
		while (io_uring_peek_cqe(&rf__borrowed_ring, &cqe) == 0)
			io_uring_cqe_seen(&rf__borrowed_ring, cqe);
	}
	pthread_mutex_unlock(&rf__borrowed_lock);
}

static void rf__msg_ring_kick(struct rf__worker *from, struct rf__worker *to)
{
	struct io_uring_sqe *sqe;

	if (!from || !from->has_ring) {
		rf__msg_ring_kick_foreign(to);
		return;
	}
	sqe = rf__get_sqe_internal(from);
	if (!sqe)
		return;		/* the SQ is full even after a flush: cannot happen */
	rf__msg_ring_prep(sqe, to);
	/* now, not at the next flush: the sleeper's latency is the point */
	rf__flush(from, false);
}

static void rf__msg_ring_complete(struct rf__worker *wk, const struct io_uring_cqe *cqe)
{
}

const struct rf__wake_ops rf__wake_msg_ring = {
	.name = "msg_ring",
	.available = rf__msg_ring_available,
	.setup = rf__msg_ring_setup,
	.teardown = rf__msg_ring_teardown,
	.kick = rf__msg_ring_kick,
	.complete = rf__msg_ring_complete,
};
