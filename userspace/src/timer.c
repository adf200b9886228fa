// SPDX-License-Identifier: MIT
/*
 * timer.c - the deadlines of a worker's sleeps and event waits, and the one
 * kernel timer that serves them all.
 *
 * A fiber in rf_sleep(), or in an event wait with a deadline (a join, a
 * lock, a channel, an acceptor), puts its struct rf__wait in its worker's
 * heap of deadlines; the worker keeps a single IORING_OP_TIMEOUT armed for
 * the earliest.  Ending a wait early (a wake-up, a cancellation, a
 * shutdown) only takes it out of the heap, in user space: no request goes
 * to the kernel.  One timeout per wait would cost a removal or a
 * cancellation per early end, and the kernel finds the timeout to remove
 * by walking its ring's list of timeouts: cancelling n sleeping fibers was
 * quadratic (Documentation/fiber-core.md has the figures).
 *
 * The heap is a binary min-heap whose nodes are the waits themselves, on
 * their fibers' stacks, linked by pointers (as libuv's timer heap is): a
 * complete binary tree whose node number n is reached from the root by the
 * bits of n.  Nothing is allocated, and an insert or a removal costs
 * O(log n) in the worst case, touching O(log n) waits (a pairing heap,
 * tried first, is O(log n) only amortized: one removal there melded
 * 100,000 siblings, 35 ms in one fiber).  Only the worker's own thread
 * touches the heap (a fiber with a deadline is bound to its worker until
 * its wait is out of the heap): from fibers, from the loop, and from the
 * hog rescue, which only runs when the interrupted fiber is in its own
 * code.
 *
 * The kernel timer is moved earlier when an earlier deadline comes (a
 * TIMEOUT_REMOVE of the old one and a new TIMEOUT, both in the worker's
 * ring, where they are the only timeouts to search); it is left alone when
 * the earliest wait goes, and fires early once for nothing.  Its user_data
 * carries a generation number, so that a replaced timer's completion is
 * told from the live one's.  It is the runtime's own request, not counted
 * in inflight; each wait in the heap is counted instead, so that
 * rf_stats.inflight and deadlock detection see the fibers that a deadline
 * will wake.
 */
#include <errno.h>
#include <stdint.h>

#include "internal.h"

#define RF__TIMER_NONE INT64_MAX

static uint64_t rf__timer_ud(uint64_t gen)
{
	return gen << 3 | RF__UD_TIMERS;
}

static struct rf__wait *rf__tnode_wait(struct rf__tnode *n)
{
	return rf__container_of(n, struct rf__wait, tm);
}

static bool rf__tnode_before(struct rf__tnode *a, struct rf__tnode *b)
{
	return rf__tnode_wait(a)->deadline < rf__tnode_wait(b)->deadline;
}

/*
 * The slot of node number @n (1 is the root, 2 and 3 its children, ...):
 * the bits of @n below the top one, read from the top, say left (0) or
 * right (1) at each level.  *@parentp gets the node above the slot.
 */
static struct rf__tnode **rf__heap_slot(struct rf__worker *wk, unsigned int n,
					struct rf__tnode **parentp)
{
	struct rf__tnode **slot = &wk->timers, *parent = NULL;
	int bit = 31 - __builtin_clz(n);

	while (--bit >= 0) {
		parent = *slot;
		slot = n >> bit & 1 ? &parent->right : &parent->left;
	}
	*parentp = parent;
	return slot;
}

/* @n's children point back at @n. */
static inline void rf__tnode_adopt(struct rf__tnode *n)
{
	if (n->left)
		n->left->parent = n;
	if (n->right)
		n->right->parent = n;
}

/* @n has taken @old's place below n->parent: that parent (or the root) points at @n. */
static inline void rf__tnode_replace(struct rf__worker *wk, struct rf__tnode *old,
				     struct rf__tnode *n)
{
	if (!n->parent)
		wk->timers = n;
	else if (n->parent->left == old)
		n->parent->left = n;
	else
		n->parent->right = n;
}

/* Exchange @child with its @parent: the links move, the waits stay put. */
static void rf__heap_swap(struct rf__worker *wk, struct rf__tnode *parent, struct rf__tnode *child)
{
	struct rf__tnode t = *parent, *sibling;

	*parent = *child;
	*child = t;
	parent->parent = child;
	if (child->left == child) {
		child->left = parent;
		sibling = child->right;
	} else {
		child->right = parent;
		sibling = child->left;
	}
	if (sibling)
		sibling->parent = child;
	rf__tnode_adopt(parent);
	rf__tnode_replace(wk, parent, child);
}

static void rf__heap_up(struct rf__worker *wk, struct rf__tnode *n)
{
	while (n->parent && rf__tnode_before(n, n->parent))
		rf__heap_swap(wk, n->parent, n);
}

static void rf__heap_down(struct rf__worker *wk, struct rf__tnode *n)
{
	for (;;) {
		struct rf__tnode *least = n;

		if (n->left && rf__tnode_before(n->left, least))
			least = n->left;
		if (n->right && rf__tnode_before(n->right, least))
			least = n->right;
		if (least == n)
			return;
		rf__heap_swap(wk, n, least);
	}
}

/* Put @w in @wk's heap, at the next free slot of the bottom row, then up. */
static void rf__heap_insert(struct rf__worker *wk, struct rf__wait *w)
{
	struct rf__tnode *n = &w->tm, *parent;
	struct rf__tnode **slot = rf__heap_slot(wk, wk->ntimers + 1, &parent);

	n->left = n->right = NULL;
	n->parent = parent;
	*slot = n;
	wk->ntimers++;
	rf__heap_up(wk, n);
}

/* Take @w, which is in @wk's heap, out of it: the last node takes its place. */
static void rf__heap_remove(struct rf__worker *wk, struct rf__wait *w)
{
	struct rf__tnode *n = &w->tm, *last, *parent;
	struct rf__tnode **slot = rf__heap_slot(wk, wk->ntimers, &parent);

	last = *slot;
	*slot = NULL;
	wk->ntimers--;
	if (last != n) {
		*last = *n;
		rf__tnode_adopt(last);
		rf__tnode_replace(wk, n, last);
		/* it came from the bottom: it may belong lower, or (elsewhere) higher */
		rf__heap_down(wk, last);
		rf__heap_up(wk, last);
	}
	n->left = n->right = n->parent = NULL;
	w->pending = 0;
	/* nothing on this worker is owed to it now: it may be stolen again */
	w->fiber->bound = false;
	rf__count(&wk->inflight, -1);
}

/* The wait with the earliest deadline, or NULL. */
static struct rf__wait *rf__heap_first(struct rf__worker *wk)
{
	return wk->timers ? rf__tnode_wait(wk->timers) : NULL;
}

/* Set the kernel timer to @deadline, replacing the one armed.  0 or -EBUSY. */
static int rf__timer_arm(struct rf__worker *wk, int64_t deadline)
{
	bool replace = wk->timer_armed != RF__TIMER_NONE;
	struct io_uring_sqe *sqe;

	/* both requests or neither: the removal alone would leave no timer */
	if (io_uring_sq_space_left(&wk->ring) < 2u)
		rf__flush(wk, false);
	if (io_uring_sq_space_left(&wk->ring) < 2u)
		return -EBUSY;
	if (replace) {
		sqe = rf__get_sqe_internal(wk);
		io_uring_prep_timeout_remove(sqe, rf__timer_ud(wk->timer_gen), 0);
		sqe->user_data = rf__ud(NULL, RF__UD_IGNORE);
	}
	if (deadline < 0)
		deadline = 0;
	/* read by the kernel when it takes the request, which comes first */
	wk->timer_ts.tv_sec = deadline / 1000000000;
	wk->timer_ts.tv_nsec = deadline % 1000000000;
	sqe = rf__get_sqe_internal(wk);
	io_uring_prep_timeout(sqe, &wk->timer_ts, 0, IORING_TIMEOUT_ABS);
	sqe->user_data = rf__timer_ud(++wk->timer_gen);
	wk->timer_armed = deadline;
	return 0;
}

/* Arm for the earliest deadline if the kernel timer would come later. */
static int rf__timer_update(struct rf__worker *wk)
{
	struct rf__wait *first = rf__heap_first(wk);

	if (!first || first->deadline >= wk->timer_armed)
		return 0;
	return rf__timer_arm(wk, first->deadline);
}

int rf__timer_add(struct rf__worker *wk, struct rf__wait *w, int64_t deadline)
{
	int ret;

	w->deadline = deadline;
	rf__heap_insert(wk, w);
	w->pending = 1;
	rf__count(&wk->inflight, 1);
	ret = rf__timer_update(wk);
	if (ret)
		rf__heap_remove(wk, w);
	return ret;
}

void rf__timer_del(struct rf__worker *wk, struct rf__wait *w)
{
	if (w->pending)
		rf__heap_remove(wk, w);
}

/*
 * The kernel timer's completion.  A replaced timer's (removed, or fired
 * before the removal reached it) says nothing: the live one is set no
 * later.  The live one's ends every wait whose deadline has passed, then
 * the timer is armed again for the earliest left.
 */
void rf__timer_fire(struct rf__worker *wk, const struct io_uring_cqe *cqe)
{
	struct rf__wait *w;
	int64_t now;

	if (cqe->user_data >> 3 != wk->timer_gen)
		return;
	wk->timer_armed = RF__TIMER_NONE;
	now = rf_now();
	while ((w = rf__heap_first(wk)) && w->deadline <= now) {
		rf__heap_remove(wk, w);
		if (rf__wait_claim(w)) {
			/* the deadline came first: detach before the fiber can run */
			if (w->unlink)
				w->unlink(w);
			w->timed_out = true;
			rf__wait_deliver(w, -ETIMEDOUT);
		}
		/* else a waker or a cancellation has it, and readies the fiber */
	}
	rf__timer_update(wk);
}

/* After the reaping: a timer that could not be armed for want of room. */
void rf__timer_retry(struct rf__worker *wk)
{
	rf__timer_update(wk);
}

void rf__timer_reset(struct rf__worker *wk)
{
	wk->timers = NULL;
	wk->ntimers = 0;
	wk->timer_armed = RF__TIMER_NONE;
}
