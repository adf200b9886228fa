// SPDX-License-Identifier: MIT
/*
 * acceptor.c - a multishot accept kept armed on a listening socket.
 *
 * One IORING_OP_ACCEPT with IORING_ACCEPT_MULTISHOT produces a completion
 * per connection until it is cancelled or fails, so a server pays one
 * submission for all its connections.  Connections that complete while no
 * fiber waits are queued here; none is ever dropped.  The request carries no
 * address buffer, so the kernel never writes into the acceptor's memory.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "internal.h"

/* A waiter's result meaning "multishot is unsupported: accept one-shot". */
#define RF__ACCEPT_ONE_SHOT (-0x7fff)

struct rf_acceptor {
	struct rf__source src;		/* RF__SOURCE_ACCEPT: first */
	struct rf__worker *wk;		/* the worker whose ring holds the request */
	struct rf__list_node link;	/* in its worker's list of open acceptors */
	int fd;
	int flags;
	bool armed;		/* a multishot request is in the kernel */
	bool confirmed;		/* the kernel delivered a connection: multishot works */
	bool closing;
	bool busy;		/* a fiber is in rf_acceptor_next() */
	int error;		/* an accept error for the next caller */
	int *queue;		/* accepted, not yet taken: a ring buffer */
	unsigned int head, count, cap;
	struct rf__wait *waiter;	/* fiber in rf_acceptor_next() */
	struct rf__wait *closer;	/* fiber in rf_acceptor_close() */
};

static int rf__acceptor_push(struct rf_acceptor *a, int fd)
{
	if (a->count == a->cap) {
		unsigned int cap = a->cap ? a->cap * 2 : 16;
		int *q = malloc(cap * sizeof(*q));

		if (!q)
			return -ENOMEM;
		for (unsigned int i = 0; i < a->count; i++)
			q[i] = a->queue[(a->head + i) % a->cap];
		free(a->queue);
		a->queue = q;
		a->head = 0;
		a->cap = cap;
	}
	a->queue[(a->head + a->count) % a->cap] = fd;
	a->count++;
	return 0;
}

static int rf__acceptor_pop(struct rf_acceptor *a)
{
	int fd = a->queue[a->head];

	a->head = (a->head + 1) % a->cap;
	a->count--;
	return fd;
}

static void rf__acceptor_deliver(struct rf_acceptor *a, int res)
{
	struct rf__wait *w = a->waiter;

	a->waiter = NULL;
	rf__wait_event_wake(w, res);
}

/*
 * Returns false, taking nothing, when a connection cannot be queued without
 * allocating and we run in the hog rescue (a signal handler: no malloc).
 */
bool rf__acceptor_complete(struct rf__worker *wk, struct rf_acceptor *a,
			   const struct io_uring_cqe *cqe)
{
	int res = cqe->res;

	if (wk->in_signal && res >= 0 && !(a->waiter && !a->count) && a->count == a->cap)
		return false;

	if (!(cqe->flags & IORING_CQE_F_MORE)) {
		/* the request is over: the next rf_acceptor_next() re-arms */
		a->armed = false;
		rf__count(&wk->inflight, -1);
	}
	if (res >= 0) {
		a->confirmed = true;
		if (a->waiter && !a->count) {
			rf__acceptor_deliver(a, res);
		} else if (rf__acceptor_push(a, res)) {
			close(res);	/* no memory to queue it: refuse it */
			a->error = -ENOMEM;
		}
	} else if (res == -EINVAL && !a->confirmed) {
		/*
		 * The socket is known to listen (rf_acceptor_open checked), so
		 * EINVAL here means the kernel predates multishot accept.
		 */
		__atomic_fetch_and(&wk->rt->features, ~RF_FEAT_MULTISHOT_ACCEPT, __ATOMIC_RELAXED);
		if (a->waiter)
			rf__acceptor_deliver(a, RF__ACCEPT_ONE_SHOT);
	} else if (!(res == -ECANCELED && a->closing)) {
		if (a->waiter)
			rf__acceptor_deliver(a, res);
		else
			a->error = res;
	}
	if (!a->armed && a->closer) {
		struct rf__wait *w = a->closer;

		a->closer = NULL;
		rf__wait_event_wake(w, 0);
	}
	return true;
}

static int rf__acceptor_arm(struct rf__worker *wk, struct rf_acceptor *a)
{
	struct io_uring_sqe *sqe = rf__get_sqe(wk);

	if (!sqe)
		return -EBUSY;
	io_uring_prep_multishot_accept(sqe, a->fd, NULL, NULL, a->flags);
	sqe->user_data = rf__ud(a, RF__UD_SOURCE);
	a->armed = true;
	return 0;
}

RF_EXPORT int rf_acceptor_open(struct rf_acceptor **ap, int fd, int flags)
{
	RF__GUARD();
	struct rf__worker *wk = rf__tls_wk;
	struct rf_acceptor *a;
	int listening = 0;
	socklen_t len = sizeof(listening);

	if (!wk || !wk->current)
		return -EPERM;
	if (!wk->has_ring)
		return -ENOSYS;
	if (!ap || fd < 0 || (flags & ~(SOCK_CLOEXEC | SOCK_NONBLOCK)))
		return -EINVAL;
	if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) != 0)
		return -errno;
	if (!listening)
		return -EINVAL;
	a = calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	a->src.kind = RF__SOURCE_ACCEPT;
	a->wk = wk;
	a->fd = fd;
	a->flags = flags;
	if (rf__load_relaxed(&wk->rt->features) & RF_FEAT_MULTISHOT_ACCEPT) {
		/* Armed now: connections queue even before the first next(). */
		int ret = rf__acceptor_arm(wk, a);

		if (ret) {
			free(a);
			return ret;
		}
	}
	rf__list_add_head(&wk->acceptors, &a->link);
	/* the request is in this worker's ring: the fiber stays here */
	wk->current->pinned = true;
	*ap = a;
	return 0;
}

static void rf__acceptor_unlink_waiter(struct rf__wait *w)
{
	struct rf_acceptor *a = w->source;

	a->waiter = NULL;
}

/*
 * For rf_acceptor_next() and rf_acceptor_close() of @a, an acceptor of the
 * calling fiber's runtime: move to @a's worker (*@wkp follows), where its
 * request is, then 0 if @a is free for the call; -EINVAL if it is NULL, not
 * of this runtime or being closed, -EBUSY while another call uses it.
 */
static int rf__acceptor_enter(struct rf__worker **wkp, struct rf_acceptor *a)
{
	struct rf__worker *wk = *wkp;

	if (!a || a->wk->rt != wk->rt)
		return -EINVAL;
	if (a->wk != wk) {
		int ret = rf__migrate(wk, a->wk);

		if (ret)
			return ret;
		*wkp = rf__tls_wk;
	}
	if (a->closing)
		return -EINVAL;
	if (a->busy)
		return -EBUSY;
	return 0;
}

RF_EXPORT int rf_acceptor_next(struct rf_acceptor *a, int64_t deadline)
{
	RF__GUARD();
	struct rf__worker *wk = rf__tls_wk;
	struct rf_fiber *cur = wk ? wk->current : NULL;
	struct rf__wait w;
	int ret;

	if (!cur)
		return -EPERM;
	ret = rf__acceptor_enter(&wk, a);
	if (ret)
		return ret;
	if (rf__load_relaxed(&cur->cancelled))
		return -ECANCELED;
	if (a->count)
		return rf__acceptor_pop(a);
	if (a->error) {
		ret = a->error;
		a->error = 0;
		return ret;
	}
	a->busy = true;
	if (!(rf__load_relaxed(&wk->rt->features) & RF_FEAT_MULTISHOT_ACCEPT)) {
		ret = rf_accept(a->fd, NULL, NULL, a->flags, deadline);
		goto out;
	}
	if (!a->armed) {
		ret = rf__acceptor_arm(wk, a);
		if (ret)
			goto out;
	}
	rf__wait_init(&w, cur, RF__WAIT_EVENT);
	w.reason = RF_TRACE_IO;	/* the accept request */
	w.unlink = rf__acceptor_unlink_waiter;
	w.source = a;
	a->waiter = &w;
	ret = rf__wait_event(wk, &w, deadline);
	if (ret == RF__ACCEPT_ONE_SHOT)
		ret = rf_accept(a->fd, NULL, NULL, a->flags, deadline);
out:
	a->busy = false;
	return ret;
}

static void rf__acceptor_free(struct rf__worker *wk, struct rf_acceptor *a)
{
	rf__list_del(&wk->acceptors, &a->link);
	while (a->count)
		close(rf__acceptor_pop(a));
	free(a->queue);
	free(a);
}

static void rf__acceptor_unlink_closer(struct rf__wait *w)
{
	struct rf_acceptor *a = w->source;

	a->closer = NULL;
}

RF_EXPORT int rf_acceptor_close(struct rf_acceptor *a)
{
	RF__GUARD();
	struct rf__worker *wk = rf__tls_wk;
	struct rf_fiber *cur = wk ? wk->current : NULL;
	int ret;

	if (!a)
		return 0;
	if (!cur)
		return -EPERM;
	ret = rf__acceptor_enter(&wk, a);
	if (ret)
		return ret;
	a->closing = true;
	if (a->armed) {
		struct io_uring_sqe *sqe = rf__get_sqe(wk);

		if (sqe) {
			io_uring_prep_cancel64(sqe, rf__ud(a, RF__UD_SOURCE), 0);
			sqe->user_data = 0;
		}
		/* Wait for the request's last completion, even if cancelled. */
		while (a->armed) {
			struct rf__wait w;

			rf__wait_init(&w, cur, RF__WAIT_EVENT);
			w.reason = RF_TRACE_IO;
			w.unlink = rf__acceptor_unlink_closer;
			w.source = a;
			a->closer = &w;
			rf__wait_event(wk, &w, RF_NO_DEADLINE);
			a->closer = NULL;
		}
	}
	rf__acceptor_free(wk, a);
	return 0;
}

/*
 * The end of a run: the worker's ring is gone (its exit cancelled what acceptors
 * had armed; with no address buffer the kernel writes nothing of ours), so
 * only the queued connections and the memory remain.
 */
void rf__acceptors_destroy(struct rf__worker *wk)
{
	struct rf_acceptor *a, *next;

	rf__list_for_each_entry_safe(a, next, &wk->acceptors, link)
		rf__acceptor_free(wk, a);
}
