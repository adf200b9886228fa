/* SPDX-License-Identifier: MIT */
/*
 * internal.h - what the library's files share and users never see.
 *
 * Names with a double underscore (rf__x) are internal but not static, as in
 * libuv: they are hidden from the shared library's symbol table.
 *
 * A runtime (struct rf_runtime) is a set of workers (struct rf__worker), one
 * OS thread each, with its own ring, run queue and stack pool.  What only a
 * worker's own thread touches is plain memory; what other threads touch (its
 * inbox, its parked flag, its stealable queue) is accessed with atomics and
 * kept on cache lines of its own.  Documentation/scheduler.md has the rules.
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
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "ringfiber.h"
#include "ringfiber-trace.h"
#include "list.h"
#include "switch.h"

#define RF_EXPORT __attribute__((visibility("default")))
#define rf__likely(x) __builtin_expect(!!(x), 1)
#define rf__unlikely(x) __builtin_expect(!!(x), 0)
#define RF__CACHELINE 64
#define rf__container_of(ptr, type, member) \
	((type *)(void *)((char *)(ptr) - __builtin_offsetof(type, member)))

/* Shorthands for the atomics other threads see (GCC builtins, as liburing). */
#define rf__load(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define rf__load_relaxed(p) __atomic_load_n((p), __ATOMIC_RELAXED)
#define rf__store(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)
#define rf__store_relaxed(p, v) __atomic_store_n((p), (v), __ATOMIC_RELAXED)
/* A counter only its owner writes but others read. */
#define rf__count(p, n) rf__store_relaxed((p), rf__load_relaxed(p) + (n))

/*
 * @t + @ns nanoseconds, saturated: a time that would overflow is INT64_MAX
 * (never reached), not a wrapped one in the past.
 */
static inline int64_t rf__time_add(int64_t t, int64_t ns)
{
	int64_t sum;

	if (__builtin_add_overflow(t, ns, &sum))
		return ns > 0 ? INT64_MAX : INT64_MIN;
	return sum;
}

/* A non-negative duration in ns as a struct timespec (timers, sleeps). */
static inline struct timespec rf__timespec(int64_t ns)
{
	return (struct timespec){ .tv_sec = ns / 1000000000, .tv_nsec = ns % 1000000000 };
}

static inline void rf__cpu_relax(void)
{
#if defined(__x86_64__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield" ::: "memory");
#endif
}

/*
 * How many fiber-to-fiber switches may happen before the worker loop runs
 * again to reap completions, drain the inbox and flush prepared requests.
 * Fibers that park on I/O drain the run queue and reach the loop sooner;
 * this bounds how long fibers that only yield can delay I/O (128 switches:
 * about a microsecond).
 */
#define RF__SWITCH_BUDGET 128

/*
 * Loop passes an offer of stealable fibers may wait while no worker is
 * idle before its worker takes it back (loop.c): long enough for a worker
 * about to run dry, short enough that yielding fibers cannot starve it.
 */
#define RF__OFFER_PASSES 64

/*
 * io_uring user_data: a pointer with a tag in its low bits (all tagged
 * objects are 8-byte aligned).  A NULL pointer with RF__UD_OP marks a
 * request whose completion carries nothing to deliver but is counted in
 * inflight (rf_cancel()'s cancellations); RF__UD_IGNORE marks internal
 * requests that are not counted (the timer's removals).
 * Documentation/fiber-core.md has the table.
 */
enum {
	RF__UD_OP = 0,		/* struct rf__wait: the operation itself */
	RF__UD_TIMER = 1,	/* struct rf__wait: its deadline timer */
	RF__UD_SOURCE = 2,	/* struct rf__source: a multishot request (accept, recv) */
	RF__UD_WAKE = 3,	/* the wake back-end's request or message */
	RF__UD_TIMERS = 4,	/* the worker's timer (timer.c); a generation, no pointer */
	RF__UD_IGNORE = 5,	/* internal, not counted in inflight */
	RF__UD_KICK = 6,	/* struct rf__worker: a kick sent to it came back */
	RF__UD_STOP = 7,	/* the poll of rt->stop_fd: rf_runtime_shutdown() */
	RF__UD_MASK = 7,
};

/*
 * struct rf__source - the first member of every object that keeps a
 * multishot request armed (an acceptor, a receiver): what RF__UD_SOURCE's
 * pointer points at, and which of them it is.
 */
enum rf__source_kind {
	RF__SOURCE_ACCEPT,	/* struct rf_acceptor */
	RF__SOURCE_RECV,	/* struct rf_receiver */
};

struct rf__source {
	enum rf__source_kind kind;
};

enum rf__fiber_state {
	RF__READY,		/* in a run queue, inbox or stealable queue */
	RF__RUNNING,
	RF__PARKED,		/* waiting for a wake-up */
	RF__DONE,		/* finished; waits to be joined */
};

enum rf__wait_kind {
	/* Woken when the kernel has delivered every completion it owes. */
	RF__WAIT_RING,
	/*
	 * Woken by an event (join, lock, channel, acceptor; none for a sleep),
	 * its deadline (the worker's heap of them, timer.c) or a cancel.
	 */
	RF__WAIT_EVENT,
};

struct rf__wait;
typedef void (*rf__unlink_fn)(struct rf__wait *w);

/* A node of a worker's heap of deadlines (timer.c). */
struct rf__tnode {
	struct rf__tnode *left, *right, *parent;
};

/*
 * struct rf__wait - one blocking call of a parked fiber; lives on its stack.
 * Everything the kernel may read after submission (the deadline's timespec)
 * lives here too, so it stays valid until the last completion.
 *
 * Ring waits are only ever touched by the worker whose ring holds the
 * request.  Event waits may be woken from any thread: whoever wins the
 * @woken exchange (0 -> 1) delivers the result and makes the fiber ready;
 * everyone else leaves the wait alone.  An event wait with a deadline is in
 * its worker's heap of deadlines while @pending is 1 (only that worker's
 * thread touches the heap links).
 */
struct rf__wait {
	struct rf_fiber *fiber;
	int32_t res;			/* the operation's result */
	uint32_t cqe_flags;
	uint8_t kind;			/* enum rf__wait_kind */
	uint8_t pending;		/* completions owed; event waits: in the heap */
	bool timed_out;			/* the deadline timer fired */
	uint8_t woken;			/* event waits: atomic, see above */
	bool cancel_sent;		/* an async cancel targets this wait */
	bool nocancel;			/* rf_cancel() leaves this wait alone */
	uint8_t reason;			/* enum rf_trace_reason: what a tracer is told */
	rf__unlink_fn unlink;		/* event waits: detach from the source */
	void *source;			/* event waits: what we wait on */
	struct __kernel_timespec ts;	/* ring waits: the deadline, read by the kernel */
	int64_t deadline;		/* event waits: the deadline, in the heap */
	struct rf__tnode tm;		/* its place there */
};

/*
 * A message in a worker's inbox.  Each fiber embeds two: the one that makes
 * it ready there, and the one that asks its worker to cancel it.
 */
enum { RF__MSG_WAKE, RF__MSG_CANCEL };

struct rf__msg {
	struct rf__msg *next;
	uint8_t kind;
};

struct rf__worker;

struct rf_fiber {
	void *sp;			/* saved stack pointer while not running */
	struct rf_fiber *next;		/* run queue / stealable queue link */
	struct rf__worker *wk;		/* the worker it runs (or last ran) on */
	struct rf_runtime *rt;
	rf_fn fn;
	void *arg;
	void *result;
	struct rf_waitq join_q;		/* the fiber in rf_join(), at most one */
	bool finished;			/* under join_q's lock: has exited */
	bool detached;			/* under join_q's lock */
	struct rf__wait *wait;		/* what we are parked on (own worker only) */
	struct rf__list_node all_link;	/* in list_wk's list of every fiber */
	struct rf__worker *list_wk;	/* whose all-list holds us */
	char *map_base;			/* the stack mapping */
	size_t map_size;
	struct rf__msg wake_msg, cancel_msg;
	/*
	 * atomic: one for the handle (dropped by join, detach or a detached
	 * exit), one while the stack is in use (dropped after the fiber has
	 * switched away for the last time), one per queued cancel_msg.  The
	 * stack is freed when the last goes.
	 */
	uint32_t refs;
	uint32_t cancel_queued;		/* atomic: cancel_msg is in an inbox */
	uint8_t state;			/* atomic: enum rf__fiber_state */
	uint8_t cancelled;		/* atomic */
	bool is_main;
	bool pinned;			/* never stolen */
	bool bound;			/* wk's ring or heap of deadlines still holds us */
	bool no_preempt;		/* rf_spawn_attr.no_preempt */
	/*
	 * Suspended by preemption (preempt.c) and not yet resumed: it must
	 * resume on wk, so it is never published or stolen.
	 */
	bool preempted;
	bool rescued;			/* ... by the block rescue, in a system call (rescue.c) */
	uint32_t preempt_off;		/* rf_preempt_disable() levels */
	int64_t deadline;		/* cap of every blocking call (groups) */
	struct rf_group *group;		/* the group we belong to, or NULL */
	struct rf__list_node grp_link;	/* in the group's list of members */
	/* tracing (trace.h): 0 = not measured */
	int64_t tr_ready_ns;		/* when it was made ready */
	int64_t tr_park_ns;		/* when it stopped running */
	uint8_t tr_reason;		/* enum rf_trace_reason: why it stopped */
	void *fls[RF_KEYS_MAX];		/* fiber-local storage */
	char name[RF_NAME_MAX];
#ifdef __SANITIZE_ADDRESS__
	void *asan_fake_stack;
#endif
#ifdef __SANITIZE_THREAD__
	void *tsan_fiber;
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

/* A spinlock: every critical section guarded by one is a few instructions. */
typedef unsigned int rf__spinlock_t;

static inline void rf__spin_lock(rf__spinlock_t *l)
{
	while (__atomic_exchange_n(l, 1, __ATOMIC_ACQUIRE))
		while (rf__load_relaxed(l))
			rf__cpu_relax();
}

static inline bool rf__spin_trylock(rf__spinlock_t *l)
{
	return !rf__load_relaxed(l) && !__atomic_exchange_n(l, 1, __ATOMIC_ACQUIRE);
}

static inline void rf__spin_unlock(rf__spinlock_t *l)
{
	__atomic_store_n(l, 0, __ATOMIC_RELEASE);
}

/*
 * Room for a wake back-end's state of a worker (rf__wake_priv()): with
 * parked and wake_pending it fills one cache line.
 */
#define RF__WAKE_PRIV_SIZE 48

/*
 * struct rf__worker - one worker: its thread, ring, run queue and stacks.
 */
struct rf__worker {
	/* --- the worker's own thread only --- */
	struct rf_fiber *current;	/* running fiber; NULL in the loop */
	void *loop_sp;			/* the worker loop's saved context */
	struct rf__runq runq;
	unsigned int budget;		/* switches left before the loop runs */
	struct rf_fiber *zombie;	/* finished fiber whose stack to release */
	struct rf_fiber *handoff;	/* fiber moving to another worker */
	struct rf_runtime *rt;
	unsigned int id;

	struct io_uring ring;
	bool has_ring;
	uint64_t inflight;		/* requests whose completion is owed */
	uint64_t unsubmitted;		/* prepared, not yet handed to the kernel */
	struct rf__list acceptors;	/* open acceptors */
	struct rf__list receivers;	/* open receivers (recv.c) */
	struct rf__rxpool *rxpool;	/* receive buffers, from the first receiver on */
	/* timer.c: the deadlines of event waits and sleeps, one kernel timer */
	struct rf__tnode *timers;	/* a binary min-heap's root: the earliest */
	unsigned int ntimers;		/* waits in it */
	int64_t timer_armed;		/* the kernel timer's deadline, INT64_MAX: none */
	uint64_t timer_gen;		/* its generation, in its user_data */
	struct __kernel_timespec timer_ts;

	size_t page_size;
	unsigned int stack_pool_max;
	unsigned int stacks_pooled;
	struct rf__stack_bucket buckets[RF__STACK_BUCKETS];

	void *altstack;			/* signal stack for overflow reports */
	size_t altstack_size;
	bool in_signal;			/* the hog rescue is running */
	/* preempt.c */
	bool preempt_on;		/* the runtime preempts (RF_FEAT_PREEMPT) */
	bool slice_timer_ok;		/* slice_timer exists */
	bool slice_armed;		/* it ticks, for the fiber of run_seq slice_seq */
	uint64_t slice_seq;
	timer_t slice_timer;		/* SIGURG to this thread every slice_ns */
	uint64_t fpctl;			/* FP control words at the start of the run */
	int64_t slice_start_ns;		/* when the last preempted fiber resumed */
	int64_t slice_next_ns;		/* the timer's next tick, or one before it */
	int64_t slice_period_ns;	/* its period: slice_ns, or more while idle */
	bool slice_recheck;		/* the first tick after a resume has yet to come */
	struct rf__runq preempted;	/* suspended, queued after the next reap */
	struct rf__runq rescued;	/* suspended in a blocking call: run when idle */
	int64_t preempted_at_ns;	/* when the first of them was preempted */
	/*
	 * The fiber running now is in its own code, not the library's: the
	 * hog rescue may interrupt it (see rf__guard_enter()).
	 */
	volatile bool in_user;
	bool wake_unarmed;		/* the back-end's request could not be re-armed */
	unsigned int steal_from;	/* where the next steal attempt starts */
	unsigned int offer_passes;	/* loop passes an offer waited, nobody idle */
	uint64_t hog_reported_seq;	/* run_seq of the last hog reported */
	/* tracing (trace.c): the batch of records not yet handed to a tracer */
	int64_t tr_chosen_ns;		/* when the fiber being switched to was chosen */
	/* the runtime's tr_since_ns when this worker last timed a switch, or 0 */
	int64_t tr_since_ns;
	uint32_t tr_seq;		/* the last record's seq (rf_trace_rec) */
	unsigned int tr_nrec;
	struct rf_trace_rec tr_buf[RF_TRACE_BATCH];
#ifdef __SANITIZE_ADDRESS__
	void *asan_fake_stack;
	const void *thread_stack_bottom;
	size_t thread_stack_size;
#endif
#ifdef __SANITIZE_THREAD__
	void *tsan_loop_fiber;
#endif

	/* --- read by other threads (owner writes with rf__count) --- */
	uint64_t switches, loop_switches, enters, sqes, cqes, sleeps, steals, remote_wakes;
	uint64_t stacks_mapped, nfibers;
	uint64_t hogs, preemptions, preempt_deferred, preempt_ticks;
	uint64_t run_seq;		/* bumped at every switch (hog watchdog) */
	uint64_t hog_ns_seen;		/* watchdog -> rescue: how long it ran */
	uint64_t hog_seq;		/* watchdog -> rescue: the run_seq it timed */
	pthread_t thread;
	pid_t tid;
	int cpu;

	/* --- written by other threads --- */
	struct rf__msg *inbox __attribute__((aligned(RF__CACHELINE)));
	uint64_t wake_calls;
	uint64_t wake_errors;		/* kicks (or re-arms) of ours that failed */

	/* The parking protocol: see rf__kick() and Documentation/scheduler.md. */
	uint32_t parked __attribute__((aligned(RF__CACHELINE)));
	uint32_t wake_pending;
	/* the wake back-end's own state of this worker: see rf__wake_priv() */
	uint64_t wake_priv[RF__WAKE_PRIV_SIZE / sizeof(uint64_t)];

	/* Fibers any idle worker may take. */
	rf__spinlock_t steal_lock __attribute__((aligned(RF__CACHELINE)));
	uint32_t steal_len;		/* atomic, read without the lock */
	struct rf_fiber *steal_head, *steal_tail;

	/* The list of every fiber spawned here (join, deadlock, teardown). */
	rf__spinlock_t all_lock __attribute__((aligned(RF__CACHELINE)));
	struct rf__list all;		/* through rf_fiber.all_link */

	/* rescue.c: RF_RT_BLOCK_RESCUE (NULL, 0 without it) */
	uint32_t *rescue_armed;		/* our armed[] word in the watch pages */
	uint32_t *rescue_seq;		/* our seq[] word: odd while blocked */
	uint32_t rescue_id;		/* our waiter id in the rescue domain */
	bool rescue_watched;		/* this run's thread is watched */
	uint32_t rescue_req __attribute__((aligned(RF__CACHELINE)));	/* atomic: asked, not yet run */
	uint64_t rescue_stuck_seq;	/* atomic: the run_seq a rescue could not help */
	uint64_t block_rescues;		/* the handler's rescues (stats) */
};

/*
 * struct rf__wake_ops - a cross-worker wake-up back-end (userspace/src/wake/).
 *
 * A worker that has nothing to do sleeps in io_uring_enter(); a back-end is
 * the way another thread makes that call return.
 * @name:      "msg_ring", "eventfd", "futex", "rfwake" (RF_WAKE_BACKEND).
 * @needs:     the RF_FEAT_* bit rt->features (probed) must have for it.
 * @open:      optional, in rf_runtime_create() once chosen: what the workers
 *             share.  0 or a negative errno (RF_WAKE_AUTO then tries the
 *             next back-end).
 * @close:     optional, in rf_runtime_destroy(): undo @open.
 * @setup:     on the worker's thread, after its ring exists: make what it
 *             needs and arm its request.  0 or a negative errno.
 * @teardown:  undo @setup (the ring, if any, is still there); no thread
 *             kicks this worker any more.  At the end of every run, also
 *             where @setup was not called (no ring) or failed: it undoes
 *             only what is there.
 * @kick:      wake worker @to; @from is the calling thread's worker, or
 *             NULL on a thread that is none (the rf_blocking() pool).  0,
 *             or a negative errno when the wake-up could not be sent at
 *             all (rf__kick() counts it and lets the next waker try).
 *             Never a new descriptor: a kick must work at the process's
 *             descriptor limit.
 * @complete:  the worker reaped a completion tagged RF__UD_WAKE (re-arm),
 *             or RF__UD_KICK (a kick it sent failed: deliver it another way).
 *             A re-arm that finds no SQE sets wk->wake_unarmed.
 * @arm:       optional: arm the worker's request again after a re-arm found
 *             no SQE; 0 or a negative errno.  The worker does not sleep
 *             while wake_unarmed is set: no kick could wake it.
 */
struct rf__wake_ops {
	const char *name;
	unsigned int needs;
	int (*open)(struct rf_runtime *rt);
	void (*close)(struct rf_runtime *rt);
	int (*setup)(struct rf__worker *wk);
	void (*teardown)(struct rf__worker *wk);
	int (*kick)(struct rf__worker *from, struct rf__worker *to);
	void (*complete)(struct rf__worker *wk, const struct io_uring_cqe *cqe);
	int (*arm)(struct rf__worker *wk);
};

_Static_assert(__builtin_offsetof(struct rf__worker, wake_priv) + RF__WAKE_PRIV_SIZE <=
	       __builtin_offsetof(struct rf__worker, parked) + RF__CACHELINE,
	       "a back-end's state shares the cache line of parked");

/*
 * A wake back-end's state of worker @wk: each back-end (userspace/src/wake/) defines
 * its own struct, checks that it fits in RF__WAKE_PRIV_SIZE, and reaches it
 * through this; the worker knows nothing of it.  It lies in the worker, on
 * the cache line that wakers write anyway (parked, wake_pending): a kick
 * reads it with no pointer to follow, and nothing is allocated for it.
 * Zero-filled before the runtime's first run.
 */
static inline void *rf__wake_priv(struct rf__worker *wk)
{
	return wk->wake_priv;
}

/* @wk's wake_priv as a back-end's @type of state, checked at build time to fit. */
#define rf__wake_state(wk, type) ({							\
	_Static_assert(sizeof(type) <= RF__WAKE_PRIV_SIZE,				\
		       #type " fits in the worker's wake_priv");			\
	(type *)rf__wake_priv(wk);							\
})

/* A re-arm of @wk's request failed: the worker stays awake until it is armed. */
static inline void rf__wake_unarmed(struct rf__worker *wk)
{
	wk->wake_unarmed = true;
	__atomic_fetch_add(&wk->wake_errors, 1, __ATOMIC_RELAXED);
}

extern const struct rf__wake_ops rf__wake_msg_ring;
extern const struct rf__wake_ops rf__wake_eventfd;
extern const struct rf__wake_ops rf__wake_futex;
extern const struct rf__wake_ops rf__wake_rfwake;

/* wake/rfwake.c: does /dev/rfwake work on a ring like @ring (the caller's)? */
bool rf__rfwake_probe(struct io_uring *ring);

/* wake/eventfd.c: a worker's eventfd and its armed read, msg_ring's fallback too. */
int rf__eventfd_setup(struct rf__worker *wk);
void rf__eventfd_teardown(struct rf__worker *wk);
int rf__eventfd_arm(struct rf__worker *wk);
int rf__eventfd_kick(struct rf__worker *from, struct rf__worker *to);
bool rf__eventfd_is_read(struct rf__worker *wk, const struct io_uring_cqe *cqe);
void rf__eventfd_complete(struct rf__worker *wk, const struct io_uring_cqe *cqe);

/* wake/futex.c: with no ring at all, a worker sleeps on its futex word. */
void rf__futex_sleep(struct rf__worker *wk);

struct rf__pool;

/* struct rf_runtime.run_state */
enum {
	RF__RUN_ON = 1u << 0,		/* rf_runtime_run() is running */
	RF__RUN_STOP = 1u << 1,		/* rf_runtime_shutdown() was called for it */
	RF__RUN_STOPPED = 1u << 2,	/* a worker has cancelled every fiber since */
	RF__RUN_ONE = 1u << 3,		/* one run, in the count above the bits */
};

/*
 * struct rf_runtime - the workers and what they share.
 */
struct rf_runtime {
	unsigned int nworkers;
	struct rf__worker **workers;
	int *cpus;			/* cpus[i]: worker i's CPU, -1 unpinned */
	unsigned int features;		/* RF_FEAT_*, probed at create */
	unsigned int flags;		/* RF_RT_* */
	unsigned int ring_entries;
	size_t stack_size;		/* usable bytes per fiber by default */
	size_t page_size;
	int64_t idle_spin_ns;		/* < 0: never */
	int64_t hog_ns;			/* < 0: no watchdog */
	int64_t slice_ns;		/* preempt.c: a caught hog's time slice */
	unsigned int blocking_threads;
	size_t rx_size;			/* receive buffers: bytes each (recv.c) */
	unsigned int rx_count;		/* and how many per worker */
	unsigned int wake_id;		/* RF_WAKE_* */
	const struct rf__wake_ops *wake;
	int wake_fd;			/* rfwake back-end: the wake domain, or -1 */
	uint32_t wake_reported;		/* atomic: a back-end failure was reported */

	/*
	 * atomic: RF__RUN_* bits, with the number of runs started above them
	 * so that a shutdown meant for one run never lands on the next.
	 */
	uint32_t run_state;
	int stop_fd;			/* eventfd that rf_runtime_shutdown() writes, or -1 */
	struct rf_runtime *sig_next;	/* runs RF_RT_SHUTDOWN_ON_SIGNAL serves (shutdown.c) */
	void *main_result;
	void *start;			/* rf_runtime_run()'s start barrier */

	/* shared while running */
	uint64_t nlive __attribute__((aligned(RF__CACHELINE)));	/* atomic */
	uint32_t done;			/* atomic: the run is over */
	uint32_t nidle __attribute__((aligned(RF__CACHELINE)));	/* atomic */
	int signal;			/* the signal that shut us down */

	/* deadlock detection: workers asleep with nothing in flight */
	pthread_mutex_t quiet_lock;
	unsigned int nquiet;
	bool deadlock_cancelled;
	bool deadlocked;

	/* hog watchdog */
	pthread_t monitor;
	bool monitor_started;
	uint32_t monitor_parked;	/* atomic: it sleeps until a worker wakes */

	/* rescue.c: RF_RT_BLOCK_RESCUE; rescue_fd -1 without it */
	int rescue_fd;			/* the rescue's rfwake domain */
	int rescue_epfd;		/* the monitor's epoll: the domain */
	void *rescue_pages;		/* struct rfwake_watch_shared, mapped */
	uint32_t rescue_monitor_id;	/* the monitor's waiter: woken by blocks */

	struct rf__pool *pool;		/* rf_blocking() threads */
	pthread_mutex_t pool_lock;
	uint64_t blocking_calls;	/* atomic */
	uint64_t blocking_busy;		/* atomic: jobs queued or running */

	/*
	 * tracing (trace.c), atomic: when a tracer began timing switches, 0
	 * while none does.  A fiber's stamp older than this is stale.
	 */
	int64_t tr_since_ns;
};

/* wake/: after @wk's request completed: arm it again with @arm, unless the run ends. */
static inline void rf__wake_rearm(struct rf__worker *wk, int (*arm)(struct rf__worker *wk))
{
	if (!rf__load_relaxed(&wk->rt->done) && arm(wk))
		rf__wake_unarmed(wk);
}

/* The worker running on this thread, or NULL. */
extern __thread struct rf__worker *rf__tls_wk __attribute__((tls_model("initial-exec")));

/*
 * Entering the library from a fiber's own code: mark the worker "not in
 * user code" so the hog rescue (a signal handler, watchdog.c) leaves its
 * state alone; on leaving, restore what it was.  Every exported function
 * that touches a worker's state starts with RF__GUARD().
 */
static inline bool rf__guard_enter(void)
{
	struct rf__worker *wk = rf__tls_wk;
	bool prev = false;

	if (wk) {
		prev = wk->in_user;
		wk->in_user = false;
		__atomic_signal_fence(__ATOMIC_SEQ_CST);
	}
	return prev;
}

static inline void rf__guard_leave(const bool *prev)
{
	struct rf__worker *wk = rf__tls_wk;	/* we may have moved */

	if (wk) {
		__atomic_signal_fence(__ATOMIC_SEQ_CST);
		wk->in_user = *prev;
	}
}

#define RF__GUARD() \
	bool rf__guard_prev __attribute__((cleanup(rf__guard_leave), unused)) = rf__guard_enter()

/* The fiber running on this thread, or NULL. */
static inline struct rf_fiber *rf__cur(void)
{
	struct rf__worker *wk = rf__tls_wk;

	return wk ? wk->current : NULL;
}

/*
 * Whether the calling fiber may wait: -EPERM outside a fiber, -ECANCELED
 * once it is cancelled, even where the call would not have to wait (every
 * blocking call does, ringfiber.h), else 0.
 */
static inline int rf__may_wait(void)
{
	struct rf_fiber *cur = rf__cur();

	if (!cur)
		return -EPERM;
	return rf__load_relaxed(&cur->cancelled) ? -ECANCELED : 0;
}

/* sched.c */
void rf__ready(struct rf_fiber *f);
void rf__park(struct rf__worker *wk);
void rf__loop_switch_to(struct rf__worker *wk, struct rf_fiber *f);
void rf__after_switch(struct rf__worker *wk);
int rf__migrate(struct rf__worker *wk, struct rf__worker *to);
void rf__all_unlink(struct rf_fiber *f);
void rf__fiber_put(struct rf__worker *wk, struct rf_fiber *f);
void rf__cancel_fiber(struct rf__worker *wk, struct rf_fiber *f);
void rf__cancel_here(struct rf__worker *wk, struct rf_fiber *f);
void rf__inbox_drain(struct rf__worker *wk);
bool rf__inbox_push(struct rf__worker *to, struct rf__msg *m);
void rf__kick(struct rf__worker *from, struct rf__worker *to);
int rf__spawn(struct rf__worker *wk, struct rf__worker *on, struct rf_fiber **fp, rf_fn fn,
	      void *arg, const struct rf_spawn_attr *attr, bool is_main);
int64_t rf__fiber_deadline(const struct rf_fiber *f, int64_t deadline);

/* steal.c */
void rf__publish(struct rf__worker *wk, bool all);
bool rf__steal(struct rf__worker *wk);
void rf__reclaim(struct rf__worker *wk);
bool rf__stealable_anywhere(struct rf_runtime *rt);
void rf__kick_idle(struct rf__worker *from);

/* stack.c */
int rf__stack_alloc(struct rf__worker *wk, size_t usable, struct rf_fiber **fp);
void rf__stack_free(struct rf__worker *wk, struct rf_fiber *f);
void rf__stack_pool_drain(struct rf__worker *wk);
bool rf__guard_madvise_works(void);
void rf__put(const char *s);
void rf__put_num(unsigned long long v, unsigned int radix);
int rf__sigaction_install(int sig, void (*handler)(int, siginfo_t *, void *), int flags,
			  struct sigaction *old);
int rf__overflow_handler_install(void);
int rf__altstack_enter(struct rf__worker *wk);
void rf__altstack_leave(struct rf__worker *wk);

/* io.c */
struct io_uring_sqe *rf__get_sqe(struct rf__worker *wk);
struct io_uring_sqe *rf__get_sqe_internal(struct rf__worker *wk);
void rf__flush(struct rf__worker *wk, bool wait);
void rf__reap(struct rf__worker *wk);
void rf__wait_init(struct rf__wait *w, struct rf_fiber *f, enum rf__wait_kind kind);
int rf__wait_event_prepare(struct rf__worker *wk, struct rf__wait *w, int64_t deadline);
int rf__wait_event_finish(struct rf__worker *wk, struct rf__wait *w);
int rf__wait_event(struct rf__worker *wk, struct rf__wait *w, int64_t deadline);
bool rf__wait_claim(struct rf__wait *w);
void rf__wait_deliver(struct rf__wait *w, int res);
bool rf__wait_event_wake(struct rf__wait *w, int res);
void rf__cancel_wait(struct rf__worker *wk, struct rf__wait *w);

/* timer.c */
int rf__timer_add(struct rf__worker *wk, struct rf__wait *w, int64_t deadline);
void rf__timer_del(struct rf__worker *wk, struct rf__wait *w);
void rf__timer_fire(struct rf__worker *wk, const struct io_uring_cqe *cqe);
void rf__timer_retry(struct rf__worker *wk);
void rf__timer_reset(struct rf__worker *wk);

/* acceptor.c */
bool rf__acceptor_complete(struct rf__worker *wk, struct rf_acceptor *a,
			   const struct io_uring_cqe *cqe);
void rf__acceptors_destroy(struct rf__worker *wk);

/* recv.c */
struct rf_receiver;
bool rf__receiver_complete(struct rf__worker *wk, struct rf_receiver *r,
			   const struct io_uring_cqe *cqe);
void rf__rxpool_drain(struct rf__worker *wk);
bool rf__rxpool_has_work(struct rf__worker *wk);
void rf__receivers_unregister(struct rf__worker *wk);
bool rf__receivers_parked(struct rf__worker *wk);
void rf__receivers_unpark_all(struct rf__worker *wk);
void rf__receivers_destroy(struct rf__worker *wk);

/* watchdog.c */
int rf__watchdog_start(struct rf_runtime *rt);
void rf__watchdog_stop(struct rf_runtime *rt);
void rf__monitor_kick(struct rf_runtime *rt);

/*
 * A worker is no longer parked (loop.c): after its store of parked = 0, a
 * monitor that went to sleep because every worker was parked must wake
 * (watchdog.c).  One load when it does not sleep.
 */
static inline void rf__unpark(struct rf__worker *wk)
{
	__atomic_store_n(&wk->parked, 0, __ATOMIC_SEQ_CST);
	if (__builtin_expect(__atomic_load_n(&wk->rt->monitor_parked, __ATOMIC_SEQ_CST), 0))
		rf__monitor_kick(wk->rt);
}

/* rescue.c */
bool rf__rescue_from_env(void);
int rf__rescue_open(struct rf_runtime *rt, bool quiet_fallback);
void rf__rescue_close(struct rf_runtime *rt);
int rf__rescue_setup(struct rf__worker *wk);
void rf__rescue_teardown(struct rf__worker *wk);
bool rf__rescue_signal(struct rf__worker *wk, siginfo_t *si, void *uc);
void rf__rescue_mon_wait(struct rf_runtime *rt, int64_t ns);

/*
 * A worker's idle sleep is not a block to report (loop.c): armed[] is 0
 * around it.  Plain stores: only the worker's own context switches read it.
 */
static inline void rf__rescue_arm(struct rf__worker *wk, uint32_t on)
{
	if (wk->rescue_armed)
		__atomic_store_n(wk->rescue_armed, on, __ATOMIC_RELAXED);
}

/* preempt.c */
bool rf__preempt_supported(void);
void rf__preempt_refresh(void);
int rf__preempt_setup(struct rf__worker *wk);
void rf__preempt_teardown(struct rf__worker *wk);
bool rf__preempt_tick(struct rf__worker *wk, struct rf_fiber *f, siginfo_t *si, void *uc);
void rf__preempt_stale_tick(struct rf__worker *wk);
void rf__preempt_requeue(struct rf__worker *wk);
void rf__preempt_block_calls_init(void);
bool rf__preempt_blocked(struct rf__worker *wk, struct rf_fiber *f, siginfo_t *si, void *uc);
volatile bool *rf__preempted(void *frame);

/* runtime.c */
void rf__run_over(struct rf_runtime *rt);
void rf__for_each_fiber(struct rf_runtime *rt, struct rf__worker *self,
			void (*fn)(struct rf__worker *, struct rf_fiber *));
void rf__cancel_one(struct rf__worker *self, struct rf_fiber *f);

/* setup.c */
int rf__wake_from_env(unsigned int *want);
int rf__runtime_probe(struct rf_runtime *rt, unsigned int want);
int rf__worker_setup(struct rf__worker *wk);
void rf__worker_teardown(struct rf__worker *wk);

/* loop.c */
void rf__loop(struct rf__worker *wk);

/* deadlock.c */
bool rf__quiet_enter(struct rf__worker *wk);
void rf__quiet_leave(struct rf__worker *wk);

/* shutdown.c */
bool rf__stop_pending(struct rf_runtime *rt);
void rf__stop_fibers(struct rf__worker *wk);
int rf__stop_open(struct rf_runtime *rt);
int rf__stop_arm(struct rf__worker *wk);
void rf__stop_complete(struct rf__worker *wk, const struct io_uring_cqe *cqe);
int rf__signals_take(struct rf_runtime *rt, sigset_t *old);
int rf__signals_give(struct rf_runtime *rt);

/* blocking.c */
void rf__pool_stop(struct rf_runtime *rt);

/* fls.c */
void rf__fls_destroy(struct rf_fiber *f);

/* group.c */
void rf__group_fiber_done(struct rf_fiber *f);

/*
 * struct rf__waiter - a fiber parked in a struct rf_waitq (sync.c, chan.c).
 * Lives on the parked fiber's stack.
 * @w:     the event wait; whoever wins w.woken owns the hand-off.
 * @link:  in the queue (under the queue's lock), then in a wakelist.
 * @q:     the queue, or NULL once taken off it.
 * @value: what a channel hands over, or any per-primitive datum.
 */
struct rf__waiter {
	struct rf__wait w;
	struct rf__list_node link;
	struct rf_waitq *q;
	void *value;
};

/*
 * struct rf__wakelist - waiters a waker claimed under a queue's lock, made
 * ready only after it has released the lock (rf__wq_unlock_wake()): the
 * woken fibers may free the queue's object at once.  Linked through
 * rf__waiter.link, oldest first.
 */
struct rf__wakelist {
	struct rf__list waiters;
};

#define RF__WAKELIST_INIT { { NULL, NULL } }

/* wq.c: the queue of parked fibers every primitive is built on. */
void rf__wq_lock(struct rf_waitq *q);
void rf__wq_unlock(struct rf_waitq *q);
struct rf__waiter *rf__wq_first(struct rf_waitq *q);
void rf__wq_remove(struct rf_waitq *q, struct rf__waiter *wt);
int rf__wq_park(struct rf_waitq *q, struct rf__waiter *wt, int64_t deadline, uint8_t reason);
int rf__wq_park_nocancel(struct rf_waitq *q, struct rf__waiter *wt, uint8_t reason);
bool rf__wq_claim(struct rf__waiter *wt);
void rf__wq_deliver(struct rf__waiter *wt, int res);
bool rf__wq_wake(struct rf__waiter *wt, int res);
struct rf__waiter *rf__wq_wake_first(struct rf_waitq *q, int res);
struct rf__waiter *rf__wq_take_first(struct rf_waitq *q, struct rf__wakelist *wl, int res);
void rf__wq_take_all(struct rf_waitq *q, struct rf__wakelist *wl, int res);
void rf__wq_unlock_wake(struct rf_waitq *q, struct rf__wakelist *wl);

/*
 * rf__wq_settle() - for a waiting call that found its object ready without
 * parking (a free mutex or permit, a set event, a zero count): the waker
 * that made it so wrote that state under @q's lock and may still be in its
 * critical section.  Wait until the lock is released, the waker's last touch
 * of the object, so that our caller may free the object once we return.
 * Never call it with @q's lock held.
 */
static inline void rf__wq_settle(struct rf_waitq *q)
{
	while (rf__load(&q->lock))
		rf__cpu_relax();
}

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

/* Completions are waiting in the kernel (deferred task work, CQ overflow). */
static inline bool rf__kernel_has_completions(struct rf__worker *wk)
{
	return IO_URING_READ_ONCE(*wk->ring.sq.kflags) &
	       (IORING_SQ_TASKRUN | IORING_SQ_CQ_OVERFLOW);
}

static inline uint64_t rf__ud(const void *p, unsigned int tag)
{
	return (uint64_t)(uintptr_t)p | tag;
}

static inline uint8_t rf__state(const struct rf_fiber *f)
{
	return rf__load(&f->state);
}

static inline void rf__set_state(struct rf_fiber *f, uint8_t s)
{
	rf__store(&f->state, s);
}

#include "trace.h"

#endif /* RF_INTERNAL_H */
