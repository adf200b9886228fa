// SPDX-License-Identifier: MIT
/*
 * eventfd.c - wake a sleeping worker through an eventfd whose read is kept
 * armed in its ring.
 *
 * Each worker registers its eventfd with its ring as a fixed file and keeps
 * one IORING_OP_READ of it in flight.  A waker write(2)s to the eventfd:
 * the read completes, the worker's io_uring_enter() returns, and the worker
 * arms the next read.  Works on any kernel with io_uring and from any
 * thread, ring or not.
 */
#include <errno.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "internal.h"

static bool rf__eventfd_available(const struct rf_runtime *rt)
{
	return rt->features & RF_FEAT_RING;
}

static int rf__eventfd_arm(struct rf__worker *wk)
{
	struct io_uring_sqe *sqe = rf__get_sqe_internal(wk);

	if (!sqe)
		return -EBUSY;
	io_uring_prep_read(sqe, 0, &wk->wake_buf, sizeof(wk->wake_buf), 0);
	sqe->flags |= IOSQE_FIXED_FILE;
	sqe->user_data = rf__ud(NULL, RF__UD_WAKE);
	return 0;
}

static int rf__eventfd_setup(struct rf__worker *wk)
{
	int ret;

	wk->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (wk->efd < 0)
		return -errno;
	ret = io_uring_register_files(&wk->ring, &wk->efd, 1);
	if (!ret)
		ret = rf__eventfd_arm(wk);
	if (ret) {
		close(wk->efd);
		wk->efd = -1;
	}
	return ret;
}

static void rf__eventfd_teardown(struct rf__worker *wk)
{
	if (wk->efd >= 0) {
		/* the ring's exit cancels the read and drops the fixed file */
		close(wk->efd);
		wk->efd = -1;
	}
}

static void rf__eventfd_kick(struct rf__worker *from, struct rf__worker *to)
{
	uint64_t one = 1;
	ssize_t n = write(to->efd, &one, sizeof(one));

	(void)n;	/* EAGAIN: the counter is full, the worker is woken anyway */
}

static void rf__eventfd_complete(struct rf__worker *wk, const struct io_uring_cqe *cqe)
{
	if (!rf__load_relaxed(&wk->rt->done))
		rf__eventfd_arm(wk);
}

const struct rf__wake_ops rf__wake_eventfd = {
	.name = "eventfd",
	.available = rf__eventfd_available,
	.setup = rf__eventfd_setup,
	.teardown = rf__eventfd_teardown,
	.kick = rf__eventfd_kick,
	.complete = rf__eventfd_complete,
};
