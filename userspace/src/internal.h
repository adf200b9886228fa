/* SPDX-License-Identifier: MIT */
/*
 * internal.h - what the library's files share and users never see.
 *
 * Names with a double underscore (rf__x) are internal but not static, as in
 * libuv: they are hidden from the shared library's symbol table.
 *
 * A fiber's stack mapping (one mmap per fiber, pooled after use):
 *
 *   high addresses
 *   +----------------------------+  <- base + map_size
 *   | struct rf_fiber            |  the descriptor: the fiber costs no
 *   |  (name, links, saved sp)   |  separate allocation, and a parked fiber
 *   +----------------------------+  whose frames are shallow touches only
 *   | stack frames, growing down |  this top page
 *   |             |              |
 *   |             v              |
 *   |  (untouched: not resident) |
 *   +----------------------------+  <- base + page
 *   | guard page                 |  MADV_GUARD_INSTALL or PROT_NONE: an
 *   +----------------------------+  overflow faults here  <- base
 *   low addresses
 */
#ifndef RF_INTERNAL_H
#define RF_INTERNAL_H

#include <liburing.h>
#include <stdbool.h>
#include <stdint.h>

#include "ringfiber.h"
#include "switch.h"

#define RF_EXPORT __attribute__((visibility("default")))
#define rf__likely(x) __builtin_expect(!!(x), 1)
#define rf__unlikely(x) __builtin_expect(!!(x), 0)


/*
 * How many fiber-to-fiber switches may happen before the worker loop runs
 * again to reap completions and flush prepared requests.  Fibers that park
 * on I/O drain the run queue and reach the loop sooner; this bounds how long
 * fibers that only yield can delay I/O (128 switches: about a microsecond).
 */
#define RF__SWITCH_BUDGET 128

/*
 * io_uring user_data: a pointer with a tag in its low bits (all tagged
 * objects are 8-byte aligned).  0 marks requests whose completion carries
 * nothing to deliver (cancellations, timeout removals).
 */
enum {
	RF__UD_OP = 0,		/* struct rf__wait: the operation itself */
	RF__UD_TIMER = 1,	/* struct rf__wait: its deadline timer */
	RF__UD_ACCEPT = 2,	/* struct rf_acceptor: multishot accept */
	RF__UD_MASK = 7,
};

enum rf__fiber_state {
	RF__READY,		/* in the run queue */
	RF__RUNNING,
	RF__PARKED,		/* waiting for a wake-up */
	RF__DONE,		/* finished; waits to be joined */
};

enum rf__wait_kind {
	/* Woken when the kernel has delivered every completion it owes. */
	RF__WAIT_RING,
	/* Woken by an event (join, acceptor), its timer or a cancel. */
	RF__WAIT_EVENT,
};

struct rf__wait;
typedef void (*rf__unlink_fn)(struct rf__wait *w);

/*
 * struct rf__wait - one blocking call of a parked fiber; lives on its stack.
 * Everything the kernel may read after submission (the deadline's timespec)
 * lives here too, so it stays valid until the last completion.
 */
struct rf__wait {
	struct rf_fiber *fiber;
	int32_t res;			/* the operation's result */
	uint32_t cqe_flags;
	uint8_t kind;			/* enum rf__wait_kind */
	uint8_t pending;		/* completions the kernel still owes */
	bool timed_out;			/* the deadline timer fired */
	bool woken;			/* event waits: already made ready */
	bool cancel_sent;		/* an async cancel targets this wait */
	bool draining;			/* parked until the timer is released */
	rf__unlink_fn unlink;		/* event waits: detach from the source */
	void *source;			/* event waits: what we wait on */
	struct __kernel_timespec ts;	/* the deadline, read by the kernel */
};

struct rf_fiber {
	void *sp;			/* saved stack pointer while not running */
	struct rf_fiber *next;		/* run queue link */
	struct rf_runtime *rt;
	rf_fn fn;
	void *arg;
	void *result;
	struct rf_fiber *joiner;	/* the fiber parked in rf_join() on us */
	struct rf__wait *wait;		/* what we are parked on, if cancellable */
	struct rf_fiber *all_prev, *all_next;	/* every live fiber */
	char *map_base;			/* the stack mapping */
	size_t map_size;
	uint8_t state;			/* enum rf__fiber_state */
	bool detached;
	bool cancelled;
	bool is_main;
	char name[RF_NAME_MAX];
#ifdef __SANITIZE_ADDRESS__
	void *asan_fake_stack;
#endif
};

struct rf__runq {
	struct rf_fiber *head, *tail;
	uint64_t len;
};

/* Free stacks of one mapping size, linked through their top bytes. */
struct rf__stack_bucket {
	size_t map_size;
	void *head;
	unsigned int count;
};

#define RF__STACK_BUCKETS 4

/*
 * struct rf_runtime - one worker: its ring, its run queue, its stacks.
 * Everything a worker owns is here, so that more workers (one per core) are
 * more of these plus what they share.
 */
struct rf_runtime {
	struct rf_fiber *current;	/* running fiber; NULL in the loop */
	void *loop_sp;			/* the worker loop's saved context */
	struct rf__runq runq;
	unsigned int budget;		/* switches left before the loop runs */
	struct rf_fiber *zombie;	/* finished detached fiber to unmap */

	struct io_uring ring;
	unsigned int features;		/* RF_FEAT_* */
	unsigned int flags;		/* RF_RT_* */
	uint64_t inflight;		/* requests whose completion is owed */
	uint64_t unsubmitted;		/* prepared, not yet handed to the kernel */

	struct rf_fiber *all;		/* every fiber not yet freed */
	uint64_t nfibers;		/* ... how many */
	uint64_t nlive;			/* ... of which not finished */
	struct rf_acceptor *acceptors;	/* open acceptors */
	bool running;
	bool deadlock_cancelled;
	pid_t owner_tid;		/* SINGLE_ISSUER: the thread that runs us */
	void *main_result;

	size_t stack_size;		/* usable bytes per fiber by default */
	size_t page_size;
	unsigned int stack_pool_max;
	unsigned int stacks_pooled;
	uint64_t stacks_mapped;
	struct rf__stack_bucket buckets[RF__STACK_BUCKETS];

	void *altstack;			/* signal stack for overflow reports */
	size_t altstack_size;
#ifdef __SANITIZE_ADDRESS__
	void *asan_fake_stack;
	const void *thread_stack_bottom;
	size_t thread_stack_size;
#endif

	uint64_t switches, enters, sqes, cqes;
};

/* The runtime running on this thread, or NULL. */
extern __thread struct rf_runtime *rf__tls_rt __attribute__((tls_model("initial-exec")));

/* sched.c */
void rf__wake(struct rf_fiber *f);
void rf__park(struct rf_runtime *rt);
void rf__loop_switch_to(struct rf_runtime *rt, struct rf_fiber *f);
void rf__release_zombie(struct rf_runtime *rt);
void rf__all_unlink(struct rf_runtime *rt, struct rf_fiber *f);
void rf__cancel_fiber(struct rf_runtime *rt, struct rf_fiber *f);
int rf__spawn(struct rf_runtime *rt, struct rf_fiber **fp, rf_fn fn, void *arg,
	      const struct rf_spawn_attr *attr, bool is_main);

/* stack.c */
int rf__stack_alloc(struct rf_runtime *rt, size_t usable, struct rf_fiber **fp);
void rf__stack_free(struct rf_runtime *rt, struct rf_fiber *f);
void rf__stack_pool_drain(struct rf_runtime *rt);
bool rf__guard_madvise_works(void);
int rf__overflow_handler_install(void);
int rf__altstack_enter(struct rf_runtime *rt);
void rf__altstack_leave(struct rf_runtime *rt);

/* io.c */
struct io_uring_sqe *rf__get_sqe(struct rf_runtime *rt);
void rf__flush(struct rf_runtime *rt, bool wait);
void rf__reap(struct rf_runtime *rt);
void rf__wait_init(struct rf__wait *w, struct rf_fiber *f, enum rf__wait_kind kind);
int rf__wait_event(struct rf_runtime *rt, struct rf__wait *w, int64_t deadline);
void rf__wait_event_wake(struct rf__wait *w, int res);
void rf__cancel_wait(struct rf_runtime *rt, struct rf__wait *w);

/* acceptor.c */
void rf__acceptor_complete(struct rf_runtime *rt, struct rf_acceptor *a,
			   const struct io_uring_cqe *cqe);
void rf__acceptors_destroy(struct rf_runtime *rt);

static inline struct rf_fiber *rf__runq_pop(struct rf__runq *q)
{
	struct rf_fiber *f = q->head;

	if (f) {
		q->head = f->next;
		if (!q->head)
			q->tail = NULL;
		q->len--;
	}
	return f;
}

static inline void rf__runq_push(struct rf__runq *q, struct rf_fiber *f)
{
	f->next = NULL;
	if (q->tail)
		q->tail->next = f;
	else
		q->head = f;
	q->tail = f;
	q->len++;
}

static inline uint64_t rf__ud(const void *p, unsigned int tag)
{
	return (uint64_t)(uintptr_t)p | tag;
}

#endif /* RF_INTERNAL_H */
