// SPDX-License-Identifier: MIT
/*
 * recv.c - receiving into buffers the kernel picks: receivers and each
 * worker's pool of receive buffers.
 *
 * The pool (struct rf__rxpool) is one mapping of count * size bytes per
 * worker, set up by the worker's first receiver in a run.  Where the
 * kernel has provided-buffer rings (5.19) the pool is registered as buffer
 * group 0 of the worker's ring, and a receive request with
 * IOSQE_BUFFER_SELECT takes the next free buffer when data arrives: a
 * connection that waits holds no buffer.  Where it also has multishot
 * receive (6.0), one request per connection stays armed and produces a
 * completion per arrival.  Elsewhere the pool is a stack of free buffers
 * and the receiver polls, then recv()s into one.
 *
 * A buffer's life: in the ring (or on the free stack), then lent from the
 * completion that filled it (queued in its receiver, then the fiber's)
 * until rf_buf_release() puts it back.  lent[] says which, so that a
 * buffer is never given back twice: the kernel would fill it while a fiber
 * still reads it.  Only the owning worker's thread touches the ring or the
 * free stack; a release from another thread pushes the buffer on an
 * atomic stack (returned) that the owner drains after reaping.
 *
 * A receiver queues what completes while its fiber does something else:
 * data (a buffer and its length) and, last, the end of the stream or an
 * error.  When the pool is dry the kernel ends a multishot request with
 * -ENOBUFS; a fiber that waits on such a receiver waits on the pool's
 * starved list until a buffer comes back, then arms again.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>

#include "internal.h"

/* The buffer group of every worker's pool: each worker has a ring of its own. */
#define RF__RX_BGID 0

/* A waiter's result: something changed, look again. */
#define RF__RX_LOOK 1

#define RF__RX_MIN_SIZE 64
#define RF__RX_MAX_SIZE (1u << 20)
#define RF__RX_MAX_COUNT 32768
#define RF__RX_INLINE 4
/* Parked receivers' fibers started per pass of the loop (rf__rx_unpark()). */
#define RF__RX_START_BATCH 64

enum rf__rx_mode {
	RF__RX_MULTISHOT,	/* one multishot recv per connection, ring buffers */
	RF__RX_ONESHOT,		/* one recv with buffer select per call */
	RF__RX_POLL,		/* poll, then recv(2) into a free buffer */
};

struct rf__rxpool {
	struct rf__worker *wk;
	char *mem;			/* count * size bytes */
	size_t size, map_size;
	unsigned int count;
	unsigned int nlent;		/* owner only: buffers not in the ring / free stack */
	enum rf__rx_mode mode;		/* what new receivers of this worker do */
	struct io_uring_buf_ring *br;	/* NULL: RF__RX_POLL */
	size_t br_size;
	uint32_t *free_ids;		/* RF__RX_POLL: the free stack */
	unsigned int nfree;
	uint8_t *lent;			/* atomic: 1 while lent */
	uint32_t *ret_next;		/* the returned stack's links */
	uint32_t returned;		/* atomic: returned stack's top, id + 1; 0 empty */
	struct rf__list starved;	/* receivers whose fiber waits for a buffer */
	struct rf__list parked;		/* rf_receiver_park()ed: no fiber until data */
	struct rf__list starting;	/* parked, something there: fibers to start */
	unsigned int nparked;
};

struct rf__rx_ent {
	int32_t res;		/* > 0: bytes in buffer @bid; else the end or an error */
	uint32_t bid;
};

struct rf_receiver {
	struct rf__source src;		/* RF__SOURCE_RECV: first */
	struct rf__worker *wk;
	struct rf__list_node link;	/* in its worker's list of receivers */
	struct rf__list_node starved_link;
	int fd;
	enum rf__rx_mode mode;
	bool armed;		/* a request of ours is in the kernel */
	bool confirmed;		/* the kernel delivered data: the mode works */
	bool on_starved;
	bool closing;
	bool busy;		/* a fiber is in rf_receiver_recv() */
	bool ended;		/* the end or an error was delivered: @end says which */
	int end;
	/*
	 * Data the kernel delivered that could not be queued (no memory): the
	 * stream has a hole, so it ends with this error after what is queued,
	 * and what comes later is dropped.
	 */
	int lost;
	struct rf__rx_ent *q;	/* what completed, not yet taken: a ring buffer */
	unsigned int head, count, cap;
	struct rf__rx_ent inline_q[RF__RX_INLINE];
	struct rf__wait *waiter;	/* fiber in rf_receiver_recv() */
	struct rf__wait *closer;	/* fiber in rf_receiver_close() */
	/* rf_receiver_park(): the fiber to start when there is something */
	rf_fn park_fn;
	void *park_arg;
	struct rf_spawn_attr park_attr;
	struct rf__list_node park_link;
	struct rf__list *park_list;	/* the pool's parked or starting list, or NULL */
};

/* ------------------------------------------------------------------- pool */

static char *rf__rx_addr(struct rf__rxpool *p, unsigned int bid)
{
	return p->mem + (size_t)bid * p->size;
}

static void rf__rx_ring_add(struct rf__rxpool *p, unsigned int bid)
{
	io_uring_buf_ring_add(p->br, rf__rx_addr(p, bid), (unsigned int)p->size,
			      (unsigned short)bid, io_uring_buf_ring_mask(p->count), 0);
	io_uring_buf_ring_advance(p->br, 1);
}

static void rf__rx_unpark(struct rf__worker *wk, struct rf_receiver *r);
static void rf__rx_start_some(struct rf__worker *wk, struct rf__rxpool *p);

/* A buffer the owner's thread holds goes back; a fiber starved of one may arm. */
static void rf__rx_recycle(struct rf__rxpool *p, unsigned int bid)
{
	struct rf_receiver *r;

	p->nlent--;
	if (p->br)
		rf__rx_ring_add(p, bid);
	else
		p->free_ids[p->nfree++] = bid;
	r = rf__list_first_entry(&p->starved, struct rf_receiver, starved_link);
	if (r) {
		rf__list_del(&p->starved, &r->starved_link);
		r->on_starved = false;
		if (r->waiter) {
			struct rf__wait *w = r->waiter;

			r->waiter = NULL;
			rf__wait_event_wake(w, RF__RX_LOOK);
		}
	}
}

/* The kernel (or recv(2)) filled @bid: it is lent from now on. */
static void rf__rx_lend(struct rf__rxpool *p, unsigned int bid)
{
	p->nlent++;
	__atomic_store_n(&p->lent[bid], 1, __ATOMIC_RELAXED);
}

/*
 * Work for the loop: parked receivers' fibers to start, buffers released on
 * other threads (seq_cst: read after the parked flag is raised, see
 * rf__has_work()).
 */
bool rf__rxpool_has_work(struct rf__worker *wk)
{
	return !rf__list_empty(&wk->rxpool->starting) ||
	       __atomic_load_n(&wk->rxpool->returned, __ATOMIC_SEQ_CST) != 0;
}

void rf__rxpool_drain(struct rf__worker *wk)
{
	struct rf__rxpool *p = wk->rxpool;
	uint32_t top;

	if (wk->in_signal)
		return;		/* the hog rescue's signal handler: no spawn, no mmap */
	if (!rf__list_empty(&p->starting))
		rf__rx_start_some(wk, p);
	if (!rf__load_relaxed(&p->returned))
		return;
	top = __atomic_exchange_n(&p->returned, 0, __ATOMIC_ACQUIRE);
	while (top) {
		unsigned int bid = top - 1;

		top = p->ret_next[bid];
		rf__rx_recycle(p, bid);
	}
}

static void *rf__rx_map(size_t size)
{
	void *m = mmap(NULL, size, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	return m == MAP_FAILED ? NULL : m;
}

static void rf__rxpool_free(struct rf__rxpool *p)
{
	if (p->mem)
		munmap(p->mem, p->map_size);
	if (p->br)
		munmap(p->br, p->br_size);
	free(p->free_ids);
	free(p->lent);
	free(p->ret_next);
	free(p);
}

/*
 * Register @p's buffers as the ring's buffer group: 0, or -EINVAL where
 * the kernel has no provided-buffer rings (the caller falls back).
 */
static int rf__rxpool_register(struct rf__worker *wk, struct rf__rxpool *p)
{
	struct io_uring_buf_reg reg = { 0 };
	int ret;

	p->br_size = (p->count * sizeof(struct io_uring_buf) + wk->page_size - 1) &
		     ~(wk->page_size - 1);
	p->br = rf__rx_map(p->br_size);
	if (!p->br)
		return -ENOMEM;
	io_uring_buf_ring_init(p->br);
	reg.ring_addr = (uint64_t)(uintptr_t)p->br;
	reg.ring_entries = p->count;
	reg.bgid = RF__RX_BGID;
	ret = io_uring_register_buf_ring(&wk->ring, &reg, 0);
	if (ret) {
		munmap(p->br, p->br_size);
		p->br = NULL;
		return ret;
	}
	for (unsigned int i = 0; i < p->count; i++)
		io_uring_buf_ring_add(p->br, rf__rx_addr(p, i), (unsigned int)p->size,
				      (unsigned short)i, io_uring_buf_ring_mask(p->count), (int)i);
	io_uring_buf_ring_advance(p->br, (int)p->count);
	return 0;
}

static int rf__rxpool_setup(struct rf__worker *wk)
{
	struct rf_runtime *rt = wk->rt;
	struct rf__rxpool *p = calloc(1, sizeof(*p));
	unsigned int feat = rf__load_relaxed(&rt->features);
	int ret = -ENOMEM;

	if (!p)
		return -ENOMEM;
	p->wk = wk;
	p->size = rt->rx_size;
	p->count = rt->rx_count;
	p->map_size = p->size * p->count;
	p->mem = rf__rx_map(p->map_size);
	p->lent = calloc(p->count, sizeof(*p->lent));
	p->ret_next = calloc(p->count, sizeof(*p->ret_next));
	if (!p->mem || !p->lent || !p->ret_next)
		goto fail;
	p->mode = RF__RX_POLL;
	if (feat & RF_FEAT_BUF_RING) {
		ret = rf__rxpool_register(wk, p);
		if (ret == 0) {
			p->mode = (feat & RF_FEAT_MULTISHOT_RECV) ? RF__RX_MULTISHOT
								  : RF__RX_ONESHOT;
		} else if (ret == -EINVAL) {
			/* before 5.19: no provided-buffer rings, and so no multishot recv */
			__atomic_fetch_and(&rt->features, ~(RF_FEAT_BUF_RING | RF_FEAT_MULTISHOT_RECV),
					   __ATOMIC_RELAXED);
		} else {
			goto fail;
		}
	}
	if (p->mode == RF__RX_POLL) {
		p->free_ids = malloc(p->count * sizeof(*p->free_ids));
		ret = -ENOMEM;
		if (!p->free_ids)
			goto fail;
		/* the lowest first: the same few buffers stay hot */
		for (unsigned int i = 0; i < p->count; i++)
			p->free_ids[i] = p->count - 1 - i;
		p->nfree = p->count;
	}
	wk->rxpool = p;
	return 0;
fail:
	rf__rxpool_free(p);
	return ret;
}

/* ---------------------------------------------------------------- receiver */

static int rf__rx_push(struct rf_receiver *r, int32_t res, uint32_t bid)
{
	if (r->count == r->cap) {
		unsigned int cap = r->cap * 2;
		struct rf__rx_ent *q = malloc(cap * sizeof(*q));

		if (!q)
			return -ENOMEM;
		for (unsigned int i = 0; i < r->count; i++)
			q[i] = r->q[(r->head + i) % r->cap];
		if (r->q != r->inline_q)
			free(r->q);
		r->q = q;
		r->head = 0;
		r->cap = cap;
	}
	r->q[(r->head + r->count) % r->cap] = (struct rf__rx_ent){ res, bid };
	r->count++;
	return 0;
}

static struct rf__rx_ent rf__rx_pop(struct rf_receiver *r)
{
	struct rf__rx_ent e = r->q[r->head];

	r->head = (r->head + 1) % r->cap;
	r->count--;
	return e;
}

static void rf__rx_wake(struct rf_receiver *r)
{
	struct rf__wait *w = r->waiter;

	if (w) {
		r->waiter = NULL;
		rf__wait_event_wake(w, RF__RX_LOOK);
	}
}

/*
 * A completion of @r's request.  Returns false, taking nothing, when it
 * cannot be queued without allocating and we run in the hog rescue (a
 * signal handler: no malloc).
 */
bool rf__receiver_complete(struct rf__worker *wk, struct rf_receiver *r,
			   const struct io_uring_cqe *cqe)
{
	struct rf__rxpool *p = wk->rxpool;
	int res = cqe->res;
	bool has_buf = cqe->flags & IORING_CQE_F_BUFFER;
	unsigned int bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;

	if (wk->in_signal && !r->closing && r->count == r->cap)
		return false;
	if (!(cqe->flags & IORING_CQE_F_MORE)) {
		/* the request is over: the next rf_receiver_recv() arms again */
		r->armed = false;
		rf__count(&wk->inflight, -1);
	}
	if (r->mode == RF__RX_POLL) {
		/* rf_receiver_park()'s poll: readable, closed or an error; recv() says which */
		if (r->park_fn)
			rf__rx_unpark(wk, r);
		goto out;
	}
	if (has_buf)
		rf__rx_lend(p, bid);
	if (res > 0 && has_buf) {
		r->confirmed = true;
		if (r->closing || r->lost || rf__rx_push(r, res, bid)) {
			/* nobody will read it, or it cannot be queued: see @lost */
			__atomic_store_n(&p->lent[bid], 0, __ATOMIC_RELAXED);
			rf__rx_recycle(p, bid);
			if (!r->closing && !r->lost)
				r->lost = -ENOMEM;
		}
	} else if (res == -ENOBUFS) {
		/* the pool was dry: a waiting fiber waits for a buffer, then arms */
	} else if (res == -EINVAL && !r->confirmed && r->mode == RF__RX_MULTISHOT) {
		/* a kernel with buffer rings but no multishot recv (5.19) */
		__atomic_fetch_and(&wk->rt->features, ~RF_FEAT_MULTISHOT_RECV, __ATOMIC_RELAXED);
		p->mode = RF__RX_ONESHOT;
		r->mode = RF__RX_ONESHOT;
	} else if (!r->closing && !r->lost) {
		/*
		 * 0: the end of the stream; < 0: the socket's error; > 0 without
		 * a buffer: -EIO.  Should it not queue (no memory), the next
		 * receive asks the socket again, which says the same.
		 */
		rf__rx_push(r, res > 0 ? -EIO : res, 0);
	}
	if (!r->closing)
		rf__rx_wake(r);
	if (r->park_fn && (r->count || r->lost || !r->armed))
		rf__rx_unpark(wk, r);	/* data, the end, or -ENOBUFS: its fiber arms again */
out:
	if (!r->armed && r->closer) {
		struct rf__wait *w = r->closer;

		r->closer = NULL;
		rf__wait_event_wake(w, 0);
	}
	return true;
}

static int rf__rx_arm(struct rf__worker *wk, struct rf_receiver *r)
{
	struct io_uring_sqe *sqe = rf__get_sqe(wk);

	if (!sqe)
		return -EBUSY;
	if (r->mode == RF__RX_MULTISHOT)
		io_uring_prep_recv_multishot(sqe, r->fd, NULL, 0, 0);
	else
		io_uring_prep_recv(sqe, r->fd, NULL, (size_t)wk->rxpool->size, 0);
	sqe->flags |= IOSQE_BUFFER_SELECT;
	sqe->buf_group = RF__RX_BGID;
	sqe->user_data = rf__ud(r, RF__UD_SOURCE);
	r->armed = true;
	return 0;
}

RF_EXPORT int rf_receiver_open(struct rf_receiver **rp, int fd)
{
	RF__GUARD();
	struct rf__worker *wk = rf__tls_wk;
	struct rf_receiver *r;

	if (!wk || !wk->current)
		return -EPERM;
	if (!wk->has_ring)
		return -ENOSYS;
	if (!rp || fd < 0)
		return -EINVAL;
	if (!wk->rxpool) {
		int ret = rf__rxpool_setup(wk);

		if (ret)
			return ret;
	}
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->src.kind = RF__SOURCE_RECV;
	r->wk = wk;
	r->fd = fd;
	r->mode = wk->rxpool->mode;
	r->q = r->inline_q;
	r->cap = RF__RX_INLINE;
	rf__list_add_head(&wk->receivers, &r->link);
	/* its request is in this worker's ring, its buffers in this worker's pool */
	wk->current->pinned = true;
	*rp = r;
	return 0;
}

static void rf__rx_unlink_waiter(struct rf__wait *w)
{
	struct rf_receiver *r = w->source;

	r->waiter = NULL;
}

/* As rf__acceptor_enter(): move to @r's worker, then 0 if @r is free for the call. */
static int rf__rx_enter(struct rf__worker **wkp, struct rf_receiver *r)
{
	struct rf__worker *wk = *wkp;

	if (!r || r->wk->rt != wk->rt)
		return -EINVAL;
	if (r->wk != wk) {
		int ret = rf__migrate(wk, r->wk);

		if (ret)
			return ret;
		*wkp = rf__tls_wk;
	}
	if (r->closing)
		return -EINVAL;
	if (r->busy)
		return -EBUSY;
	return 0;
}

static void rf__rx_fill(struct rf__rxpool *p, struct rf_buf *b, unsigned int bid, size_t len)
{
	b->data = rf__rx_addr(p, bid);
	b->len = len;
	b->owner = p;
	b->id = bid;
}

/*
 * RF__RX_POLL: recv(2) what is there into a free buffer, and poll while
 * nothing is: > 0 bytes in *@b, 0, a negative errno; -ENOBUFS when no
 * buffer is free (the caller waits for one).
 */
static ssize_t rf__rx_poll_recv(struct rf__worker *wk, struct rf_receiver *r, struct rf_buf *b,
				int64_t deadline)
{
	struct rf__rxpool *p = wk->rxpool;
	unsigned int bid;
	ssize_t n;
	int ret;

	for (;;) {
		if (!p->nfree)
			return -ENOBUFS;
		bid = p->free_ids[--p->nfree];
		n = recv(r->fd, rf__rx_addr(p, bid), p->size, MSG_DONTWAIT);
		if (n > 0) {
			rf__rx_lend(p, bid);
			rf__rx_fill(p, b, bid, (size_t)n);
			return n;
		}
		p->free_ids[p->nfree++] = bid;
		if (n == 0)
			return 0;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return -errno;
		ret = rf_poll(r->fd, POLLIN, deadline);
		if (ret < 0)
			return ret;
	}
}

RF_EXPORT ssize_t rf_receiver_recv(struct rf_receiver *r, struct rf_buf *b, int64_t deadline)
{
	RF__GUARD();
	struct rf__worker *wk = rf__tls_wk;
	struct rf_fiber *cur = wk ? wk->current : NULL;
	struct rf__rxpool *p;
	struct rf__wait w;
	ssize_t ret;

	if (!cur)
		return -EPERM;
	ret = rf__rx_enter(&wk, r);
	if (ret)
		return ret;
	if (!b)
		return -EINVAL;
	if (r->park_fn)
		return -EBUSY;	/* parked: its own fiber will receive */
	p = wk->rxpool;
	r->busy = true;
	for (;;) {
		if (r->count) {
			struct rf__rx_ent e = rf__rx_pop(r);

			if (e.res > 0) {
				rf__rx_fill(p, b, e.bid, (size_t)e.res);
				ret = e.res;
				break;
			}
			r->ended = true;
			r->end = e.res;
		}
		if (!r->count && r->lost && !r->ended) {
			r->ended = true;
			r->end = r->lost;
		}
		if (r->ended) {
			ret = r->end;
			break;
		}
		if (rf__load_relaxed(&cur->cancelled)) {
			ret = -ECANCELED;
			break;
		}
		if (r->mode == RF__RX_POLL) {
			ret = rf__rx_poll_recv(wk, r, b, deadline);
			if (ret != -ENOBUFS) {
				if (ret <= 0 && ret != -ETIMEDOUT && ret != -ECANCELED) {
					r->ended = true;	/* the end, or the socket's error */
					r->end = (int)ret;
				}
				break;
			}
			/* every buffer is lent: wait for one below */
		} else if (!r->armed && p->nlent < p->count) {
			ret = rf__rx_arm(wk, r);
			if (ret)
				break;
		}
		/* wait for a completion or, the pool being dry, for a buffer */
		if (!r->armed && !r->on_starved) {
			rf__list_add_tail(&p->starved, &r->starved_link);
			r->on_starved = true;
		}
		rf__wait_init(&w, cur, RF__WAIT_EVENT);
		w.reason = RF_TRACE_IO;
		w.unlink = rf__rx_unlink_waiter;
		w.source = r;
		r->waiter = &w;
		ret = rf__wait_event(wk, &w, deadline);
		if (ret != RF__RX_LOOK)
			break;
	}
	if (r->on_starved && ret != RF__RX_LOOK) {
		rf__list_del(&p->starved, &r->starved_link);
		r->on_starved = false;
	}
	r->busy = false;
	return ret;
}

/*
 * Parked @r has something to deliver: its fiber is to start.  Not now: a
 * reap that brings a thousand completions would map a thousand stacks at
 * once, most beyond the pool, and unmap them again when they end.  The
 * receiver joins the worker's starting list instead, and each pass of the
 * loop starts at most RF__RX_START_BATCH of them (rf__rx_start_some()), in
 * the order their data came: fibers that answer and park again hand their
 * stacks straight on.  Owner's thread; never spawns, so the hog rescue's
 * signal handler may call it.
 */
static void rf__rx_unpark(struct rf__worker *wk, struct rf_receiver *r)
{
	struct rf__rxpool *p = wk->rxpool;

	if (r->park_list != &p->parked)
		return;		/* starting already */
	rf__list_del(r->park_list, &r->park_link);
	r->park_list = &p->starting;
	rf__list_add_tail(r->park_list, &r->park_link);
}

/*
 * Start the fibers of up to RF__RX_START_BATCH receivers of the starting
 * list.  One that cannot start (no memory for a stack) stays first in the
 * list for the next pass: its connection is not dropped.
 */
static void rf__rx_start_some(struct rf__worker *wk, struct rf__rxpool *p)
{
	for (unsigned int n = 0; n < RF__RX_START_BATCH; n++) {
		struct rf_receiver *r = rf__list_first_entry(&p->starting, struct rf_receiver,
							     park_link);
		struct rf_spawn_attr attr;

		if (!r)
			return;
		attr = r->park_attr;
		attr.detached = 1;
		attr.pinned = 1;
		if (rf__spawn(wk, wk, NULL, r->park_fn, r->park_arg, &attr, false))
			return;
		rf__list_del(&p->starting, &r->park_link);
		r->park_list = NULL;
		r->park_fn = NULL;
		p->nparked--;
		/* the fiber now counts as live: the receiver's place holder goes */
		__atomic_sub_fetch(&wk->rt->nlive, 1, __ATOMIC_ACQ_REL);
	}
}

static int rf__rx_arm_poll(struct rf__worker *wk, struct rf_receiver *r)
{
	struct io_uring_sqe *sqe = rf__get_sqe(wk);

	if (!sqe)
		return -EBUSY;
	io_uring_prep_poll_add(sqe, r->fd, POLLIN);
	sqe->user_data = rf__ud(r, RF__UD_SOURCE);
	r->armed = true;
	return 0;
}

RF_EXPORT int rf_receiver_park(struct rf_receiver *r, rf_fn fn, void *arg,
			       const struct rf_spawn_attr *attr)
{
	RF__GUARD();
	struct rf__worker *wk = rf__tls_wk;
	struct rf__rxpool *p;
	int ret;

	if (!wk || !wk->current)
		return -EPERM;
	ret = rf__rx_enter(&wk, r);
	if (ret)
		return ret;
	if (!fn)
		return -EINVAL;
	if (attr && attr->stack_size &&
	    (attr->stack_size < RF_MIN_STACK_SIZE || attr->stack_size > RF_MAX_STACK_SIZE))
		return -EINVAL;
	if (r->park_fn)
		return -EBUSY;
	p = wk->rxpool;
	r->park_fn = fn;
	r->park_arg = arg;
	r->park_attr = attr ? *attr : (struct rf_spawn_attr){ 0 };
	r->park_list = &p->parked;
	rf__list_add_tail(r->park_list, &r->park_link);
	p->nparked++;
	/* counted as a live fiber until its fiber starts: the run waits for it */
	__atomic_add_fetch(&wk->rt->nlive, 1, __ATOMIC_ACQ_REL);
	if (r->count || r->ended || r->lost || (rf__load(&wk->rt->run_state) & RF__RUN_STOP)) {
		rf__rx_unpark(wk, r);	/* something is there already (or the run stops) */
		return 0;
	}
	if (!r->armed) {
		if (r->mode == RF__RX_POLL)
			ret = rf__rx_arm_poll(wk, r);
		else if (p->nlent < p->count)
			ret = rf__rx_arm(wk, r);
		else
			ret = -ENOBUFS;
		if (ret) {
			/* no request to wake it (no SQE, a dry pool): a fiber waits instead */
			rf__rx_unpark(wk, r);
		}
	}
	return 0;
}

/* The run is being shut down: start every parked receiver's fiber, cancelled. */
void rf__receivers_unpark_all(struct rf__worker *wk)
{
	struct rf__rxpool *p = wk->rxpool;
	struct rf_receiver *r, *next;

	rf__list_for_each_entry_safe(r, next, &p->parked, park_link)
		rf__rx_unpark(wk, r);
}

bool rf__receivers_parked(struct rf__worker *wk)
{
	return wk->rxpool->nparked != 0;
}

RF_EXPORT int rf_buf_release(struct rf_buf *b)
{
	RF__GUARD();
	struct rf__worker *wk = rf__tls_wk;
	struct rf__rxpool *p;
	unsigned int bid;
	uint32_t top;

	if (!b || !b->owner)
		return -EINVAL;
	p = b->owner;
	bid = b->id;
	if (bid >= p->count || b->data != rf__rx_addr(p, bid))
		return -EINVAL;
	if (!__atomic_exchange_n(&p->lent[bid], 0, __ATOMIC_ACQ_REL))
		return -EINVAL;
	b->owner = NULL;
	if (wk == p->wk && !wk->in_signal) {
		rf__rx_recycle(p, bid);
		return 0;
	}
	/*
	 * Another thread's buffer: its worker puts it back after its next
	 * reap.  The first one on the stack wakes the worker if it sleeps: a
	 * fiber there may wait for a buffer (the parking protocol, as for a
	 * fiber made ready: seq_cst push, then rf__kick() reads parked).
	 */
	top = __atomic_load_n(&p->returned, __ATOMIC_RELAXED);
	do {
		p->ret_next[bid] = top;
	} while (!__atomic_compare_exchange_n(&p->returned, &top, bid + 1, true,
					      __ATOMIC_SEQ_CST, __ATOMIC_RELAXED));
	if (!top)
		rf__kick(wk, p->wk);
	return 0;
}

static void rf__rx_unlink_closer(struct rf__wait *w)
{
	struct rf_receiver *r = w->source;

	r->closer = NULL;
}

/* Give back what was queued and never taken, then free @r. */
static void rf__receiver_free(struct rf__worker *wk, struct rf_receiver *r, bool recycle)
{
	struct rf__rxpool *p = wk->rxpool;

	while (r->count) {
		struct rf__rx_ent e = rf__rx_pop(r);

		if (e.res > 0 && recycle) {
			__atomic_store_n(&p->lent[e.bid], 0, __ATOMIC_RELAXED);
			rf__rx_recycle(p, e.bid);
		}
	}
	if (r->on_starved)
		rf__list_del(&p->starved, &r->starved_link);
	if (r->park_list)	/* a run that ended parked (deadlocked): no fiber will come */
		rf__list_del(r->park_list, &r->park_link);
	rf__list_del(&wk->receivers, &r->link);
	if (r->q != r->inline_q)
		free(r->q);
	free(r);
}

RF_EXPORT int rf_receiver_close(struct rf_receiver *r)
{
	RF__GUARD();
	struct rf__worker *wk = rf__tls_wk;
	struct rf_fiber *cur = wk ? wk->current : NULL;
	int ret;

	if (!r)
		return 0;
	if (!cur)
		return -EPERM;
	ret = rf__rx_enter(&wk, r);
	if (ret)
		return ret;
	if (r->park_fn)
		return -EBUSY;
	r->closing = true;
	if (r->armed) {
		struct io_uring_sqe *sqe = rf__get_sqe(wk);

		if (sqe) {
			io_uring_prep_cancel64(sqe, rf__ud(r, RF__UD_SOURCE), 0);
			sqe->user_data = 0;
		}
		/* Wait for the request's last completion, even if cancelled. */
		while (r->armed) {
			struct rf__wait w;

			rf__wait_init(&w, cur, RF__WAIT_EVENT);
			w.reason = RF_TRACE_IO;
			w.unlink = rf__rx_unlink_closer;
			w.source = r;
			r->closer = &w;
			rf__wait_event(wk, &w, RF_NO_DEADLINE);
			r->closer = NULL;
		}
	}
	rf__receiver_free(wk, r, true);
	return 0;
}

RF_EXPORT int rf_runtime_recv_buffers(struct rf_runtime *rt, size_t size, unsigned int count)
{
	RF__GUARD();
	if (!rt || size < RF__RX_MIN_SIZE || size > RF__RX_MAX_SIZE || !count ||
	    count > RF__RX_MAX_COUNT || (count & (count - 1)))
		return -EINVAL;
	if (rf__load(&rt->run_state) & RF__RUN_ON)
		return -EBUSY;
	rt->rx_size = size;
	rt->rx_count = count;
	return 0;
}

/*
 * The end of a run, before the ring goes: the kernel forgets the pool's
 * buffers, so that no receive still armed can write into them once they
 * are unmapped.  Armed requests then end with -ENOBUFS or are cancelled.
 */
void rf__receivers_unregister(struct rf__worker *wk)
{
	struct rf__rxpool *p = wk->rxpool;

	if (p && p->br)
		io_uring_unregister_buf_ring(&wk->ring, RF__RX_BGID);
}

/* After the ring is gone: free what receivers were left open, and the pool. */
void rf__receivers_destroy(struct rf__worker *wk)
{
	struct rf_receiver *r, *next;

	if (!wk->rxpool)
		return;
	rf__list_for_each_entry_safe(r, next, &wk->receivers, link)
		rf__receiver_free(wk, r, false);
	rf__rxpool_free(wk->rxpool);
	wk->rxpool = NULL;
}
