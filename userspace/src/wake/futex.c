// SPDX-License-Identifier: MIT
/*
 * futex.c - wake a sleeping worker with a futex whose wait is kept armed in
 * its ring (IORING_OP_FUTEX_WAIT, Linux 6.7).
 *
 * The worker keeps one FUTEX_WAIT on its futex word (expected value 0) in
 * flight.  A waker sets the word to 1 and calls FUTEX_WAKE: the wait
 * completes and the worker's io_uring_enter() returns.  If the word was
 * already 1 when the wait was armed, the kernel completes it at once with
 * -EAGAIN, which is a wake-up too.  The worker clears the word before it
 * re-arms.
 *
 * A runtime without io_uring uses this back-end too, with no ring: the
 * worker sleeps on the same word with FUTEX_WAIT itself (rf__futex_sleep()),
 * and rf_runtime_shutdown() kicks it as any waker does.
 */
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "compat.h"
#include "internal.h"

#define RF__FUTEX_MATCH_ANY 0xffffffffu

/* A worker's state (rf__wake_priv()). */
struct rf__futex_state {
	uint32_t word;		/* atomic: 1 once a waker has been, 0 when seen */
};

static inline struct rf__futex_state *rf__futex_of(struct rf__worker *wk)
{
	return rf__wake_state(wk, struct rf__futex_state);
}

static int rf__futex_arm(struct rf__worker *wk)
{
	struct io_uring_sqe *sqe = rf__get_sqe_internal(wk);

	if (!sqe)
		return -EBUSY;
	wk->wake_unarmed = false;
	/* liburing 2.3 has no helper: the fields as io_uring/futex.c reads them */
	memset(sqe, 0, sizeof(*sqe));
	sqe->opcode = IORING_OP_FUTEX_WAIT;
	sqe->fd = FUTEX2_SIZE_U32 | FUTEX2_PRIVATE;
	sqe->addr = (uint64_t)(uintptr_t)&rf__futex_of(wk)->word;
	sqe->off = 0;				/* addr2: the expected value */
	sqe->addr3 = RF__FUTEX_MATCH_ANY;	/* the wake mask */
	sqe->user_data = rf__ud(NULL, RF__UD_WAKE);
	return 0;
}

static int rf__futex_setup(struct rf__worker *wk)
{
	__atomic_store_n(&rf__futex_of(wk)->word, 0, __ATOMIC_RELAXED);
	return rf__futex_arm(wk);
}

/*
 * Take our ring's wait off the word before the ring goes, and start the
 * next run with no wake-up.  The ring's exit does cancel the wait, but
 * later, from a kernel worker (io_ring_exit_work()): until then it stays
 * queued on the word, the same word the next run's ring waits on (the
 * worker, and worker 0's thread, outlive the run).  FUTEX_WAKE wakes the
 * oldest waiter first, so a kick of the next run would complete the dead
 * ring's wait instead of the live one, and with wake_pending set no other
 * waker would try again: the worker slept through it for good.  Waking
 * every waiter now unqueues the wait at once (no kicker is left to race:
 * see @teardown); its completion goes to the ring, which is about to go.
 */
static void rf__futex_teardown(struct rf__worker *wk)
{
	uint32_t *word = &rf__futex_of(wk)->word;

	if (wk->has_ring)
		syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
	__atomic_store_n(word, 0, __ATOMIC_RELAXED);
}

/* Async-signal-safe: the hog rescue and rf_runtime_shutdown() kick too. */
static int rf__futex_kick(struct rf__worker *from, struct rf__worker *to)
{
	uint32_t *word = &rf__futex_of(to)->word;
	int saved_errno = errno;

	__atomic_store_n(word, 1, __ATOMIC_SEQ_CST);
	syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
	errno = saved_errno;
	return 0;
}

/* No ring: sleep until kicked. */
void rf__futex_sleep(struct rf__worker *wk)
{
	uint32_t *word = &rf__futex_of(wk)->word;

	syscall(SYS_futex, word, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
	__atomic_store_n(word, 0, __ATOMIC_SEQ_CST);
	__atomic_store_n(&wk->wake_pending, 0, __ATOMIC_SEQ_CST);
}

static void rf__futex_complete(struct rf__worker *wk, const struct io_uring_cqe *cqe)
{
	__atomic_store_n(&rf__futex_of(wk)->word, 0, __ATOMIC_SEQ_CST);
	rf__wake_rearm(wk, rf__futex_arm);
}

const struct rf__wake_ops rf__wake_futex = {
	.name = "futex",
	.needs = RF_FEAT_FUTEX_WAIT,
	.setup = rf__futex_setup,
	.teardown = rf__futex_teardown,
	.kick = rf__futex_kick,
	.complete = rf__futex_complete,
	.arm = rf__futex_arm,
};
