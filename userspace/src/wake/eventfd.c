// SPDX-License-Identifier: MIT
/*
 * eventfd.c - wake a sleeping worker through an eventfd whose read is kept
 * armed in its ring.
 *
 * Each worker registers its eventfd with its ring as a fixed file and keeps
 * one IORING_OP_READ of it in flight.  A waker write(2)s to the eventfd:
 * the read completes, the worker's io_uring_enter() returns, and the worker
 * arms the next read.  Works on any kernel with io_uring and from any
 * thread, ring or not, and needs no descriptor at wake-up time: the
 * msg_ring back-end keeps the same read armed for the wakers that have no
 * ring, and for a MSG_RING that failed.
 */
#include <errno.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "internal.h"

/* A worker's state (rf__wake_priv()), the msg_ring back-end's too. */
struct rf__eventfd_state {
	uint64_t buf;		/* the armed read's buffer */
	int fd;			/* the eventfd, while open */
	bool open;
};

static inline struct rf__eventfd_state *rf__eventfd_of(struct rf__worker *wk)
{
	return rf__wake_state(wk, struct rf__eventfd_state);
}

/* Tagged with the buffer: msg_ring tells this read from its messages. */
int rf__eventfd_arm(struct rf__worker *wk)
{
	struct rf__eventfd_state *st = rf__eventfd_of(wk);
	struct io_uring_sqe *sqe = rf__get_sqe_internal(wk);

	if (!sqe)
		return -EBUSY;
	io_uring_prep_read(sqe, 0, &st->buf, sizeof(st->buf), 0);
	sqe->flags |= IOSQE_FIXED_FILE;
	sqe->user_data = rf__ud(&st->buf, RF__UD_WAKE);
	wk->wake_unarmed = false;
	return 0;
}

/* Is @cqe the completion of @wk's eventfd read (msg_ring: not a message)? */
bool rf__eventfd_is_read(struct rf__worker *wk, const struct io_uring_cqe *cqe)
{
	return cqe->user_data == rf__ud(&rf__eventfd_of(wk)->buf, RF__UD_WAKE);
}

int rf__eventfd_setup(struct rf__worker *wk)
{
	struct rf__eventfd_state *st = rf__eventfd_of(wk);
	int ret;

	st->fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (st->fd < 0)
		return -errno;
	ret = io_uring_register_files(&wk->ring, &st->fd, 1);
	if (!ret)
		ret = rf__eventfd_arm(wk);
	if (ret) {
		close(st->fd);
		st->fd = -1;
		return ret;
	}
	st->open = true;
	return 0;
}

void rf__eventfd_teardown(struct rf__worker *wk)
{
	struct rf__eventfd_state *st = rf__eventfd_of(wk);

	if (!st->open)
		return;
	/*
	 * An rf_blocking() thread that made a fiber of this run ready may
	 * not have written to our eventfd yet (the fiber ran, the run ended
	 * meanwhile).  It drops blocking_busy only after its write: wait for
	 * that, or it would write to whatever gets this descriptor's number.
	 */
	while (__atomic_load_n(&wk->rt->blocking_busy, __ATOMIC_SEQ_CST))
		sched_yield();
	/* the ring's exit cancels the read and drops the fixed file */
	close(st->fd);
	st->fd = -1;
	st->open = false;
}

int rf__eventfd_kick(struct rf__worker *from, struct rf__worker *to)
{
	uint64_t one = 1;
	int saved_errno = errno;	/* the hog rescue kicks from a signal handler */
	int ret = 0;

	/* EAGAIN: the counter is full, the worker is woken anyway */
	if (write(rf__eventfd_of(to)->fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		ret = -errno;
	errno = saved_errno;
	return ret;
}

void rf__eventfd_complete(struct rf__worker *wk, const struct io_uring_cqe *cqe)
{
	rf__wake_rearm(wk, rf__eventfd_arm);
}

const struct rf__wake_ops rf__wake_eventfd = {
	.name = "eventfd",
	.needs = RF_FEAT_RING,
	.setup = rf__eventfd_setup,
	.teardown = rf__eventfd_teardown,
	.kick = rf__eventfd_kick,
	.complete = rf__eventfd_complete,
	.arm = rf__eventfd_arm,
};
