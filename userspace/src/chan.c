// SPDX-License-Identifier: MIT
/*
 * chan.c - channels: a bounded ring buffer of pointers and one queue of
 * parked fibers (wq.c), whose lock guards the buffer too.
 *
 * One queue is enough because its fibers all wait for the same thing: when
 * senders wait, the buffer is full (or the channel is a rendezvous) and no
 * receiver waits; when receivers wait, the buffer is empty and no sender
 * waits.  @waiting says which kind is queued.  Every operation of the other
 * kind first serves the queue, so the queue never holds both: a waiter whose
 * deadline or cancellation won the race may linger on it for an instant,
 * but rf__wq_claim() fails for it, and whoever meets it takes it off.
 *
 * Values are handed over directly where that keeps FIFO order: a sender
 * gives its value to the longest-waiting receiver; a receiver that empties a
 * buffer slot refills it from the longest-waiting sender, whose send then
 * completes; on a rendezvous channel the receiver takes the sender's value
 * from its waiter.  A waker writes into a waiter (rf__waiter.value) only
 * after claiming it, and makes it ready only after releasing the lock
 * (rf__wq_unlock_wake()): the woken fiber may destroy the channel at once.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

enum { RF__CHAN_RECEIVERS, RF__CHAN_SENDERS };

struct rf_chan {
	struct rf_waitq q;	/* its lock guards everything below */
	unsigned int capacity;
	unsigned int head;	/* the oldest buffered value */
	unsigned int count;	/* values buffered */
	unsigned int waiting;	/* RF__CHAN_*: who is on q, if anyone */
	bool closed;
	void **buf;		/* @capacity slots, NULL for a rendezvous */
};

RF_EXPORT int rf_chan_create(struct rf_chan **chp, unsigned int capacity)
{
	struct rf_chan *ch;

	if (!chp || capacity >= (1u << 31))
		return -EINVAL;
	ch = calloc(1, sizeof(*ch));
	if (!ch)
		return -ENOMEM;
	if (capacity) {
		ch->buf = calloc(capacity, sizeof(void *));
		if (!ch->buf) {
			free(ch);
			return -ENOMEM;
		}
	}
	ch->capacity = capacity;
	*chp = ch;
	return 0;
}

static inline void rf__chan_push(struct rf_chan *ch, void *value)
{
	unsigned int tail = ch->head + ch->count;

	if (tail >= ch->capacity)
		tail -= ch->capacity;
	ch->buf[tail] = value;
	ch->count++;
}

static inline void *rf__chan_pop(struct rf_chan *ch)
{
	void *value = ch->buf[ch->head];

	if (++ch->head == ch->capacity)
		ch->head = 0;
	ch->count--;
	return value;
}

/*
 * Claim the longest waiter of kind @kind, off the queue and onto @wl; NULL
 * if none.  The caller hands over, then wakes it with rf__wq_unlock_wake().
 */
static struct rf__waiter *rf__chan_claim(struct rf_chan *ch, unsigned int kind,
					 struct rf__wakelist *wl)
{
	if (ch->waiting != kind)
		return NULL;
	return rf__wq_take_first(&ch->q, wl, 0);
}

/*
 * The send both rf_chan_send() and rf_chan_trysend() make; with @wait false
 * it returns -EAGAIN where it would park.
 */
static int rf__chan_send(struct rf_chan *ch, void *value, bool wait, int64_t deadline)
{
	struct rf__wakelist wl = RF__WAKELIST_INIT;
	struct rf__waiter wt, *rx;

	rf__wq_lock(&ch->q);
	if (ch->closed) {
		rf__wq_unlock(&ch->q);
		return -EPIPE;
	}
	rx = rf__chan_claim(ch, RF__CHAN_RECEIVERS, &wl);
	if (rx) {
		/* a receiver waits only on an empty buffer: no one is overtaken */
		rx->value = value;
		rf__wq_unlock_wake(&ch->q, &wl);
		return 0;
	}
	if (ch->count < ch->capacity) {
		rf__chan_push(ch, value);
		rf__wq_unlock(&ch->q);
		return 0;
	}
	if (!wait) {
		rf__wq_unlock(&ch->q);
		return -EAGAIN;
	}
	ch->waiting = RF__CHAN_SENDERS;
	wt.value = value;
	/* 0: a receiver took the value; -EPIPE: closed before that */
	return rf__wq_park(&ch->q, &wt, deadline, RF_TRACE_CHAN);
}

static int rf__chan_recv(struct rf_chan *ch, void **value, bool wait, int64_t deadline)
{
	struct rf__wakelist wl = RF__WAKELIST_INIT;
	struct rf__waiter wt, *tx;
	int ret;

	rf__wq_lock(&ch->q);
	if (ch->count) {
		*value = rf__chan_pop(ch);
		/* a slot is free: the longest-waiting sender's value takes it */
		tx = rf__chan_claim(ch, RF__CHAN_SENDERS, &wl);
		if (tx)
			rf__chan_push(ch, tx->value);
		rf__wq_unlock_wake(&ch->q, &wl);
		return 0;
	}
	tx = rf__chan_claim(ch, RF__CHAN_SENDERS, &wl);
	if (tx) {
		/* a rendezvous (with a buffer, senders wait only while it is full) */
		*value = tx->value;
		rf__wq_unlock_wake(&ch->q, &wl);
		return 0;
	}
	if (ch->closed) {
		rf__wq_unlock(&ch->q);
		return -EPIPE;
	}
	if (!wait) {
		rf__wq_unlock(&ch->q);
		return -EAGAIN;
	}
	ch->waiting = RF__CHAN_RECEIVERS;
	wt.value = NULL;
	ret = rf__wq_park(&ch->q, &wt, deadline, RF_TRACE_CHAN);
	if (ret == 0)
		*value = wt.value;
	return ret;
}

RF_EXPORT int rf_chan_send(struct rf_chan *ch, void *value, int64_t deadline)
{
	int ret;

	RF__GUARD();
	if (!ch)
		return -EINVAL;
	ret = rf__may_wait();
	if (ret)
		return ret;
	return rf__chan_send(ch, value, true, deadline);
}

RF_EXPORT int rf_chan_trysend(struct rf_chan *ch, void *value)
{
	RF__GUARD();
	if (!ch)
		return -EINVAL;
	return rf__chan_send(ch, value, false, RF_NO_DEADLINE);
}

RF_EXPORT int rf_chan_recv(struct rf_chan *ch, void **value, int64_t deadline)
{
	int ret;

	RF__GUARD();
	if (!ch || !value)
		return -EINVAL;
	ret = rf__may_wait();
	if (ret)
		return ret;
	return rf__chan_recv(ch, value, true, deadline);
}

RF_EXPORT int rf_chan_tryrecv(struct rf_chan *ch, void **value)
{
	RF__GUARD();
	if (!ch || !value)
		return -EINVAL;
	return rf__chan_recv(ch, value, false, RF_NO_DEADLINE);
}

RF_EXPORT int rf_chan_close(struct rf_chan *ch)
{
	struct rf__wakelist wl = RF__WAKELIST_INIT;

	RF__GUARD();
	if (!ch)
		return -EINVAL;
	rf__wq_lock(&ch->q);
	if (ch->closed) {
		rf__wq_unlock(&ch->q);
		return -EPIPE;
	}
	ch->closed = true;
	/*
	 * Waiting receivers mean an empty buffer: they get -EPIPE.  Waiting
	 * senders' values were never taken: they get -EPIPE, and the values
	 * already buffered stay there for receivers to drain.
	 */
	rf__wq_take_all(&ch->q, &wl, -EPIPE);
	rf__wq_unlock_wake(&ch->q, &wl);
	return 0;
}

RF_EXPORT int rf_chan_destroy(struct rf_chan *ch)
{
	unsigned int waiters;

	RF__GUARD();
	if (!ch)
		return 0;
	rf__wq_lock(&ch->q);
	waiters = ch->q.len;
	rf__wq_unlock(&ch->q);
	if (waiters)
		return -EBUSY;
	free(ch->buf);
	free(ch);
	return 0;
}
