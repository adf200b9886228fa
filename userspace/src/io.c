// SPDX-License-Identifier: MIT
/*
 * io.c - blocking calls as io_uring requests, and how completions become
 * wake-ups.
 *
 * A blocking call prepares its request (and, with a deadline, an
 * IORING_OP_LINK_TIMEOUT linked to it) in the ring's submission queue and
 * parks.  It does not enter the kernel: the worker loop submits every
 * prepared request of every fiber in one io_uring_enter() when the run queue
 * runs dry.  Each request's user_data points at a struct rf__wait on the
 * parked fiber's stack; the loop counts the completions down and makes the
 * fiber ready when the kernel owes it none, so nothing is pending when the
 * call returns.
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

/* An SQE of @wk's ring, counted as unsubmitted; NULL if even a flush left none. */
static inline struct io_uring_sqe *rf__take_sqe(struct rf__worker *wk)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&wk->ring);

	if (rf__unlikely(!sqe)) {
		/* The submission queue is full: hand it to the kernel now. */
		rf__flush(wk, false);
		sqe = io_uring_get_sqe(&wk->ring);
	}
	if (sqe) {
		wk->unsubmitted++;
		rf__count(&wk->sqes, 1);
	}
	return sqe;
}

struct io_uring_sqe *rf__get_sqe(struct rf__worker *wk)
{
	struct io_uring_sqe *sqe = rf__take_sqe(wk);

	if (sqe)
		rf__count(&wk->inflight, 1);
	return sqe;
}

/* A request of the runtime's own (wake-ups): not counted in inflight. */
struct io_uring_sqe *rf__get_sqe_internal(struct rf__worker *wk)
{
	return rf__take_sqe(wk);
}

/*
 * Enter the kernel once: submit what is prepared and, if @wait, sleep until
 * at least one completion arrives.
 */
void rf__flush(struct rf__worker *wk, bool wait)
{
	int ret;

	rf__count(&wk->enters, 1);
	if (wait)
		ret = io_uring_submit_and_wait(&wk->ring, 1);
	else if (wk->unsubmitted)
		ret = io_uring_submit(&wk->ring);
	else
		ret = io_uring_get_events(&wk->ring);
	(void)ret;	/* -EINTR, -EBUSY: the loop simply comes back */
	wk->unsubmitted = io_uring_sq_ready(&wk->ring);
}

/* A request's linked timeout (event waits' deadlines are timer.c's). */
static void rf__timer_complete(struct rf__worker *wk, struct rf__wait *w, int res)
{
	w->pending--;
	/* -ETIME means it fired and cancelled the op */
	if (res == -ETIME)
		w->timed_out = true;
	if (!w->pending)
		rf__ready(w->fiber);
}

void rf__reap(struct rf__worker *wk)
{
	struct io_uring_cqe *cqe;
	unsigned int head, n = 0;

	io_uring_for_each_cqe(&wk->ring, head, cqe) {
		uint64_t ud = cqe->user_data;
		void *p = (void *)(uintptr_t)(ud & ~(uint64_t)RF__UD_MASK);
		struct rf__wait *w = p;

		switch (ud & RF__UD_MASK) {
		case RF__UD_OP:
			rf__count(&wk->inflight, -1);
			if (!p)
				break;	/* a cancellation's own completion */
			w->res = cqe->res;
			w->cqe_flags = cqe->flags;
			if (!--w->pending)
				rf__ready(w->fiber);
			break;
		case RF__UD_TIMER:
			rf__count(&wk->inflight, -1);
			rf__timer_complete(wk, w, cqe->res);
			break;
		case RF__UD_SOURCE:
			/* the hog rescue cannot take it now: leave it and the rest */
			if (((struct rf__source *)p)->kind == RF__SOURCE_ACCEPT ?
			    !rf__acceptor_complete(wk, p, cqe) : !rf__receiver_complete(wk, p, cqe))
				goto out;
			break;
		case RF__UD_TIMERS:
			rf__timer_fire(wk, cqe);
			break;
		case RF__UD_WAKE:
			/* re-arm first: a kick after the reset must find it armed */
			wk->rt->wake->complete(wk, cqe);
			__atomic_store_n(&wk->wake_pending, 0, __ATOMIC_SEQ_CST);
			break;
		case RF__UD_KICK:
			/* a kick we sent failed: the back-end delivers it otherwise */
			wk->rt->wake->complete(wk, cqe);
			break;
		case RF__UD_STOP:
			rf__stop_complete(wk, cqe);
			break;
		default:
			break;
		}
		n++;
	}
out:
	io_uring_cq_advance(&wk->ring, n);
	rf__count(&wk->cqes, n);
	if (wk->rxpool)
		rf__rxpool_drain(wk);	/* buffers released on other workers */
	if (wk->timers)
		rf__timer_retry(wk);
}

void rf__wait_init(struct rf__wait *w, struct rf_fiber *f, enum rf__wait_kind kind)
{
	memset(w, 0, sizeof(*w));
	w->fiber = f;
	w->kind = kind;
	/* callers that know better (sleep, locks, channels...) say so */
	w->reason = kind == RF__WAIT_RING ? RF_TRACE_IO : RF_TRACE_EVENT;
}

static void rf__set_ts(struct __kernel_timespec *ts, int64_t deadline)
{
	if (deadline < 0)
		deadline = 0;
	ts->tv_sec = deadline / 1000000000;
	ts->tv_nsec = deadline % 1000000000;
}

/*
 * Claim an event wait: the first caller (its waker, its timer or a
 * cancellation, from any thread) gets true and must deliver; the others get
 * false and must leave the wait alone.
 */
bool rf__wait_claim(struct rf__wait *w)
{
	return !__atomic_exchange_n(&w->woken, 1, __ATOMIC_ACQ_REL);
}

/* Deliver @res to a claimed wait and make its fiber ready. */
void rf__wait_deliver(struct rf__wait *w, int res)
{
	w->res = res;
	rf__ready(w->fiber);
}

bool rf__wait_event_wake(struct rf__wait *w, int res)
{
	if (!rf__wait_claim(w))
		return false;
	rf__wait_deliver(w, res);
	return true;
}

/*
 * Park on an event (a fiber's exit, a lock, a connection) with a deadline,
 * in two steps: prepare (put the deadline in the worker's heap, timer.c,
 * and mark the fiber parked) before the wait is made visible to wakers,
 * finish (switch away, then take the deadline out of the heap if it is
 * still there) after.  A waker may claim the wait in between, from another
 * thread: the fiber then simply does not stay parked.  While its deadline
 * is in the heap the fiber is bound to this worker, so it is never stolen
 * before it has taken it out.
 */
int rf__wait_event_prepare(struct rf__worker *wk, struct rf__wait *w, int64_t deadline)
{
	struct rf_fiber *cur = wk->current;

	/* a wait that must not end early (rf_blocking()) ignores the group's deadline */
	if (!w->nocancel)
		deadline = rf__fiber_deadline(cur, deadline);
	if (deadline != RF_NO_DEADLINE) {
		int ret;

		if (!wk->has_ring)
			return -ENOSYS;
		ret = rf__timer_add(wk, w, deadline);
		if (ret)
			return ret;
		cur->bound = true;
	}
	cur->wait = w;
	rf__set_state(cur, RF__PARKED);
	return 0;
}

int rf__wait_event_finish(struct rf__worker *wk, struct rf__wait *w)
{
	struct rf_fiber *cur = wk->current;

	rf__park(wk);
	wk = rf__tls_wk;	/* moved only if no deadline was set */
	/* woken or cancelled before the deadline: no request to undo */
	rf__timer_del(wk, w);
	cur->bound = false;
	cur->wait = NULL;
	return w->res;
}

int rf__wait_event(struct rf__worker *wk, struct rf__wait *w, int64_t deadline)
{
	int ret = rf__wait_event_prepare(wk, w, deadline);

	if (ret) {
		if (w->unlink)
			w->unlink(w);
		return ret;
	}
	return rf__wait_event_finish(wk, w);
}

/* rf_cancel() of a fiber parked in a ring request: ask the kernel to stop it. */
void rf__cancel_wait(struct rf__worker *wk, struct rf__wait *w)
{
	struct io_uring_sqe *sqe;

	if (w->cancel_sent || !w->pending)
		return;
	sqe = rf__get_sqe(wk);
	if (!sqe)
		return;
	io_uring_prep_cancel64(sqe, rf__ud(w, RF__UD_OP), 0);
	sqe->user_data = 0;
	w->cancel_sent = true;
}

/* ---------------------------------------------------------- blocking calls */

/*
 * struct rf__op - one blocking call of the calling fiber, on its stack:
 * rf__op_start() (or rf__op_begin()) makes its request, which the caller
 * prepares in @sqe, and rf__op_finish() parks until it is complete.
 */
struct rf__op {
	struct rf__worker *wk;
	struct rf__wait w;		/* the request's user_data points here */
	struct io_uring_sqe *sqe;	/* the request, for the caller to prepare */
	int64_t deadline;
};

/*
 * Start a call: 0 and @op->sqe, or the error of a call that cannot be made.
 * @deadline is the call's, as given: a deadline makes room for two SQEs,
 * since the request and its linked timeout must be adjacent in the queue.
 * Not @cancellable: a cancelled fiber's call is made all the same.
 */
static int rf__op_begin(struct rf__op *op, int64_t deadline, bool cancellable)
{
	struct rf__worker *wk = rf__tls_wk;
	struct rf_fiber *cur = wk ? wk->current : NULL;

	op->wk = wk;
	op->deadline = deadline;
	if (rf__unlikely(!cur))
		return -EPERM;
	if (rf__unlikely(!wk->has_ring))
		return -ENOSYS;
	if (rf__unlikely(rf__load_relaxed(&cur->cancelled) && cancellable))
		return -ECANCELED;
	if (deadline != RF_NO_DEADLINE && io_uring_sq_space_left(&wk->ring) < 2) {
		rf__flush(wk, false);
		/*
		 * The kernel took nothing: a request alone, its timer in the
		 * next submission, would be an unlinked pair (the timer is
		 * refused, the request never times out).
		 */
		if (rf__unlikely(io_uring_sq_space_left(&wk->ring) < 2))
			return -EBUSY;
	}
	op->sqe = rf__get_sqe(wk);
	if (rf__unlikely(!op->sqe))
		return -EBUSY;
	rf__wait_init(&op->w, cur, RF__WAIT_RING);
	return 0;
}

/*
 * Start a cancellable call with @deadline, capped by the deadlines of the
 * groups the calling fiber belongs to: 0 or a negative errno, as
 * rf__op_begin().
 */
static inline int rf__op_start(struct rf__op *op, int64_t deadline)
{
	struct rf__worker *wk = rf__tls_wk;

	if (wk && wk->current)
		deadline = rf__fiber_deadline(wk->current, deadline);
	return rf__op_begin(op, deadline, true);
}

/* Park until every completion of the request (and its timeout) is in. */
static int rf__op_finish(struct rf__op *op)
{
	struct rf__worker *wk = op->wk;
	struct rf_fiber *cur = wk->current;
	struct rf__wait *w = &op->w;

	op->sqe->user_data = rf__ud(w, RF__UD_OP);
	w->pending = 1;
	if (op->deadline != RF_NO_DEADLINE) {
		struct io_uring_sqe *tsqe;

		op->sqe->flags |= IOSQE_IO_LINK;
		tsqe = rf__get_sqe(wk);	/* room was made in rf__op_begin() */
		rf__set_ts(&w->ts, op->deadline);
		io_uring_prep_link_timeout(tsqe, &w->ts, IORING_TIMEOUT_ABS);
		tsqe->user_data = rf__ud(w, RF__UD_TIMER);
		w->pending = 2;
	}
	cur->wait = w;
	rf__set_state(cur, RF__PARKED);
	rf__park(wk);
	cur->wait = NULL;
	if (w->res == -ECANCELED && w->timed_out)
		return -ETIMEDOUT;
	return w->res;
}

/* read(2) never moves more than this in one call either */
#define RF__MAX_RW 0x7ffff000u

static unsigned int rf__rw_len(size_t len)
{
	return len > RF__MAX_RW ? RF__MAX_RW : (unsigned int)len;
}

/*
 * rf__op_call() - make one blocking call whose request io_uring_prep_rw()
 * describes, as liburing's io_uring_prep_<op>() helpers do: @opcode, @fd,
 * @addr, @len and @off in the fields they name, @op_flags in the word the
 * op reads its flags from (rw_flags, msg_flags, accept_flags, open_flags,
 * fsync_flags, poll32_events: one union in the SQE).
 *
 * Return: the request's result, or rf__op_start()'s error.
 */
static inline int rf__op_call(int opcode, int fd, const void *addr, unsigned int len, __u64 off,
			      __u32 op_flags, int64_t deadline)
{
	struct rf__op op;
	int ret = rf__op_start(&op, deadline);

	if (ret)
		return ret;
	io_uring_prep_rw(opcode, op.sqe, fd, addr, len, off);
	op.sqe->rw_flags = (__kernel_rwf_t)op_flags;
	return rf__op_finish(&op);
}

RF_EXPORT int rf_nop(int64_t deadline)
{
	RF__GUARD();
	return rf__op_call(IORING_OP_NOP, -1, NULL, 0, 0, 0, deadline);
}

/*
 * An event wait that nothing but its deadline or a cancellation ends: a
 * place in the worker's heap of deadlines, no request of its own (timer.c).
 */
RF_EXPORT int rf_sleep(int64_t deadline)
{
	RF__GUARD();
	struct rf__worker *wk = rf__tls_wk;
	struct rf_fiber *cur = wk ? wk->current : NULL;
	int64_t cap;
	struct rf__wait w;
	int ret;

	if (!cur)
		return -EPERM;
	if (deadline == RF_NO_DEADLINE)
		return -EINVAL;
	if (!wk->has_ring)
		return -ENOSYS;
	if (rf__load_relaxed(&cur->cancelled))
		return -ECANCELED;
	rf__wait_init(&w, cur, RF__WAIT_EVENT);
	w.reason = RF_TRACE_SLEEP;
	/* a group's deadline cuts the sleep short, with -ETIMEDOUT */
	cap = rf__fiber_deadline(cur, deadline);
	ret = rf__wait_event(wk, &w, cap);
	if (ret == -ETIMEDOUT)
		return cap == deadline ? 0 : -ETIMEDOUT;
	return ret;
}

RF_EXPORT ssize_t rf_read(int fd, void *buf, size_t len, off_t off, int64_t deadline)
{
	RF__GUARD();
	return rf__op_call(IORING_OP_READ, fd, buf, rf__rw_len(len), (__u64)off, 0, deadline);
}

RF_EXPORT ssize_t rf_write(int fd, const void *buf, size_t len, off_t off, int64_t deadline)
{
	RF__GUARD();
	return rf__op_call(IORING_OP_WRITE, fd, buf, rf__rw_len(len), (__u64)off, 0, deadline);
}

static bool rf__iov_ok(const struct iovec *iov, int iovcnt)
{
	return iovcnt >= 0 && iovcnt <= IOV_MAX && (iov || !iovcnt);
}

RF_EXPORT ssize_t rf_readv(int fd, const struct iovec *iov, int iovcnt, off_t off, int64_t deadline)
{
	RF__GUARD();
	if (!rf__iov_ok(iov, iovcnt))
		return -EINVAL;
	return rf__op_call(IORING_OP_READV, fd, iov, (unsigned int)iovcnt, (__u64)off, 0, deadline);
}

RF_EXPORT ssize_t rf_writev(int fd, const struct iovec *iov, int iovcnt, off_t off, int64_t deadline)
{
	RF__GUARD();
	if (!rf__iov_ok(iov, iovcnt))
		return -EINVAL;
	return rf__op_call(IORING_OP_WRITEV, fd, iov, (unsigned int)iovcnt, (__u64)off, 0,
			   deadline);
}

RF_EXPORT ssize_t rf_recv(int fd, void *buf, size_t len, int flags, int64_t deadline)
{
	RF__GUARD();
	return rf__op_call(IORING_OP_RECV, fd, buf, rf__rw_len(len), 0, (__u32)flags, deadline);
}

RF_EXPORT ssize_t rf_send(int fd, const void *buf, size_t len, int flags, int64_t deadline)
{
	RF__GUARD();
	return rf__op_call(IORING_OP_SEND, fd, buf, rf__rw_len(len), 0,
			   (__u32)(flags | MSG_NOSIGNAL), deadline);
}

/*
 * A vectored send: rf_writev() would do on a socket, but a write(2) to a
 * socket whose peer is gone raises SIGPIPE, which kills a server; sendmsg
 * takes MSG_NOSIGNAL.
 */
RF_EXPORT ssize_t rf_sendmsg(int fd, const struct msghdr *msg, int flags, int64_t deadline)
{
	RF__GUARD();
	if (!msg)
		return -EINVAL;
	return rf__op_call(IORING_OP_SENDMSG, fd, msg, 1, 0, (__u32)(flags | MSG_NOSIGNAL),
			   deadline);
}

/* @addrlen goes in the SQE's off (addr2), as io_uring_prep_accept() puts it */
RF_EXPORT int rf_accept(int fd, struct sockaddr *addr, socklen_t *addrlen, int flags,
			int64_t deadline)
{
	RF__GUARD();
	if (!addr != !addrlen)
		return -EINVAL;
	return rf__op_call(IORING_OP_ACCEPT, fd, addr, 0, (__u64)(uintptr_t)addrlen,
			   (__u32)flags, deadline);
}

RF_EXPORT int rf_connect(int fd, const struct sockaddr *addr, socklen_t addrlen, int64_t deadline)
{
	RF__GUARD();
	if (!addr)
		return -EINVAL;
	return rf__op_call(IORING_OP_CONNECT, fd, addr, 0, addrlen, 0, deadline);
}

RF_EXPORT int rf_openat(int dirfd, const char *path, int flags, mode_t mode, int64_t deadline)
{
	RF__GUARD();
	if (!path)
		return -EINVAL;
	return rf__op_call(IORING_OP_OPENAT, dirfd, path, mode, 0, (__u32)flags, deadline);
}

/*
 * liburing's io_uring_prep_openat2() always passes sizeof(struct open_how);
 * @size is the caller's, so that a program built against a larger
 * struct open_how gets the kernel's own answer (-E2BIG for unknown fields
 * that are set, -EINVAL below the first version's size), as openat2(2)
 * would give it.  The kernel copies *@how when it takes the request, while
 * the fiber is parked, so the caller's struct may live on its stack.
 */
RF_EXPORT int rf_openat2(int dirfd, const char *path, struct open_how *how, size_t size,
			 int64_t deadline)
{
	RF__GUARD();
	if (!path || !how || size > UINT_MAX)
		return -EINVAL;
	return rf__op_call(IORING_OP_OPENAT2, dirfd, path, (unsigned int)size,
			   (__u64)(uintptr_t)how, 0, deadline);
}

/*
 * A close must happen even in a cancelled fiber, or the descriptor leaks;
 * without a ring (or outside a fiber) it falls back to close(2).
 */
RF_EXPORT int rf_close(int fd)
{
	RF__GUARD();
	struct rf__op op;

	if (rf__op_begin(&op, RF_NO_DEADLINE, false))
		return close(fd) == 0 ? 0 : -errno;
	io_uring_prep_close(op.sqe, fd);
	return rf__op_finish(&op);
}

RF_EXPORT int rf_fsync(int fd, int datasync, int64_t deadline)
{
	RF__GUARD();
	return rf__op_call(IORING_OP_FSYNC, fd, NULL, 0, 0, datasync ? IORING_FSYNC_DATASYNC : 0,
			   deadline);
}

/* the mask as io_uring_prep_poll_add() puts it (swapped on big-endian) */
RF_EXPORT int rf_poll(int fd, unsigned int events, int64_t deadline)
{
	RF__GUARD();
	return rf__op_call(IORING_OP_POLL_ADD, fd, NULL, 0, 0, __io_uring_prep_poll_mask(events),
			   deadline);
}
