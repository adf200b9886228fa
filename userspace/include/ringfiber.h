/* SPDX-License-Identifier: MIT */
/*
 * ringfiber.h - fibers (green threads) whose every I/O goes through io_uring.
 *
 * A runtime owns one worker per CPU (configurable): an OS thread pinned to
 * its CPU, with its own run queue of fibers and its own io_uring ring.
 * Fibers are cooperatively scheduled in FIFO order on their worker; a fiber
 * that starts an I/O operation parks until the operation's completion
 * arrives, and the worker runs the next ready fiber meanwhile.  When no
 * fiber is ready the worker takes ready fibers from a busy worker (work
 * stealing), spins briefly, then submits every prepared request in one
 * io_uring_enter() and sleeps.
 *
 * Conventions (the same for every function below):
 *  - errors are returned as negative errno values, never through errno;
 *  - functions marked "fiber context" must be called from a fiber running on
 *    a runtime and return -EPERM otherwise;
 *  - every blocking call takes an absolute CLOCK_MONOTONIC deadline in
 *    nanoseconds (see rf_now()), or RF_NO_DEADLINE.  A call that reaches its
 *    deadline returns -ETIMEDOUT; a call in a fiber that was cancelled
 *    (rf_cancel(), rf_runtime_shutdown(), its group) returns -ECANCELED,
 *    even one that would not have to wait (the exceptions are listed at
 *    rf_cancel()).  Either way the call returns only once
 *    the kernel has let go of every request it made: nothing stays pending
 *    in the ring and no buffer of the caller is touched afterwards.
 *
 * The design is described in Documentation/fiber-core.md (a fiber's memory,
 * the switch, the worker loop, how a completion becomes a wake-up) and
 * Documentation/scheduler.md (workers, wake-ups, stealing, the toolkit).
 *
 * "The seeds", named below, are the articles ringfiber started from: they
 * compare OS threads with green threads (their examples are Python), and
 * some primitives here are their patterns (a semaphore for backpressure, a
 * producer/consumer queue, a task group).
 */
#ifndef RINGFIBER_H
#define RINGFIBER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/uio.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Deadline value meaning "wait for as long as it takes". */
#define RF_NO_DEADLINE ((int64_t)-1)

/** Default usable stack size of a fiber, in bytes (plus one guard page). */
#define RF_DEFAULT_STACK_SIZE (64 * 1024)

/** Smallest stack size accepted by the runtime and rf_spawn(). */
#define RF_MIN_STACK_SIZE (16 * 1024)

/** Largest stack size accepted (1 GiB): more is a mistake, not a need. */
#define RF_MAX_STACK_SIZE ((size_t)1 << 30)

/** Longest fiber name kept, including the terminating NUL. */
#define RF_NAME_MAX 32

struct rf_runtime;
struct rf_fiber;
struct rf_acceptor;
struct rf_receiver;
struct rf_group;
struct rf_chan;
struct open_how;		/* <linux/openat2.h>, for rf_openat2() */

/** Entry point of a fiber; its return value is what rf_join() reports. */
typedef void *(*rf_fn)(void *arg);

/*
 * Feature switches for struct rf_runtime_opts.flags.  By default the runtime
 * probes the kernel and uses everything it offers; these turn one feature off
 * so that the fallback path can be used (and tested) on a kernel that has the
 * feature.
 */
enum {
	/** Do not ask for IORING_SETUP_SINGLE_ISSUER/DEFER_TASKRUN. */
	RF_RT_NO_DEFER_TASKRUN = 1u << 0,
	/** Do not ask for IORING_SETUP_COOP_TASKRUN/TASKRUN_FLAG. */
	RF_RT_NO_COOP_TASKRUN = 1u << 1,
	/** Use one-shot accept even where multishot accept exists. */
	RF_RT_NO_MULTISHOT_ACCEPT = 1u << 2,
	/** Guard stacks with mprotect() even where MADV_GUARD_INSTALL exists. */
	RF_RT_NO_GUARD_MADVISE = 1u << 3,
	/** Do not install the SIGSEGV handler that names overflowing fibers. */
	RF_RT_NO_OVERFLOW_HANDLER = 1u << 4,
	/**
	 * Run without an io_uring ring: every I/O call returns -ENOSYS, and
	 * so does every wait with a deadline (see the concurrency toolkit).
	 */
	RF_RT_NO_RING = 1u << 5,
	/** Do not pin worker threads to CPUs. */
	RF_RT_NO_PIN = 1u << 6,
	/**
	 * Graceful shutdown: while rf_runtime_run() runs, SIGINT and SIGTERM
	 * shut the run down as rf_runtime_shutdown() does, and
	 * rf_stats.signal says which came first.  For the run the runtime
	 * installs its own handler for both (the program's dispositions are
	 * put back when the last run with this flag ends) and unblocks them
	 * in the thread that calls rf_runtime_run(), whose mask the workers
	 * inherit: a signal sent to the process always has a thread to land
	 * on, and whichever thread it lands on, the program's own included,
	 * the handler only shuts the run down.  A signal sent to one thread
	 * (pthread_kill()) does so if that thread does not block it.  During
	 * the run the program must not change the two signals' dispositions
	 * or block them in a fiber.  One signal shuts down every run with the
	 * flag in progress.  One that arrives as the last of them ends, too
	 * late for it, is raised again once the program's disposition and
	 * mask are back.  Works with and without a ring.
	 */
	RF_RT_SHUTDOWN_ON_SIGNAL = 1u << 7,
	/**
	 * Receivers (rf_receiver_open()) without a provided-buffer ring: each
	 * rf_receiver_recv() polls the socket and recv()s into a buffer of a
	 * pool the runtime keeps itself, as on kernels before 5.19.
	 */
	RF_RT_NO_BUF_RING = 1u << 8,
	/**
	 * Receivers make one receive request per rf_receiver_recv() (the
	 * kernel still picks the buffer) instead of one multishot receive
	 * per connection, as on kernels before 6.0.
	 */
	RF_RT_NO_MULTISHOT_RECV = 1u << 9,
	/**
	 * Never preempt a fiber: a fiber runs until it gives its worker back,
	 * and a CPU hog is only reported and worked around (the fibers queued
	 * behind it go to other workers), as before preemption existed.  See
	 * rf_preempt_disable() for what preemption means.
	 */
	RF_RT_NO_PREEMPT = 1u << 10,
	/**
	 * Rescue the fibers of a worker blocked in the kernel: a fiber that
	 * makes a blocking system call (or calls a library that does) without
	 * rf_blocking() stops its worker's thread; with this flag the module
	 * rfwake (Documentation/rfwake.md, "Block notification") tells the
	 * watchdog's monitor thread at once, and when the blocked worker has
	 * ready fibers or completions, the monitor sends its thread the
	 * runtime's signal (SIGURG, SI_QUEUE).  The handler suspends the
	 * blocked fiber inside its call, as preemption suspends a hog (see
	 * rf_preempt_disable()), where the call is one of libc's plain system
	 * call wrappers (read(), write(), recv(), accept(), nanosleep(),
	 * poll(), ...) made from the fiber's own code: the worker runs its
	 * other fibers, and the suspended one goes back into its call when
	 * the worker has nothing else to do.  Elsewhere (inside stdio, malloc,
	 * a pthread mutex, the runtime; a fiber that may not be preempted;
	 * RF_RT_NO_PREEMPT) the handler hands the worker's movable ready
	 * fibers to the other workers, as for a hog.  Calls the kernel
	 * restarts after a handler installed with SA_RESTART (read(), write(),
	 * accept(), ...) do not notice; calls signal(7) lists as never
	 * restarted (nanosleep(), poll(), epoll_wait(), ...) may return EINTR
	 * early, as POSIX allows on any signal: loop on the deadline.
	 * rf_runtime_create() fails with -EOPNOTSUPP where /dev/rfwake is
	 * missing or lacks RFWAKE_FEAT_WATCH, and with -EINVAL with a
	 * negative hog_ns (no monitor); rf_runtime_run() fails with -EBUSY
	 * where one of its threads is already watched (RFWAKE_IOC_WATCH: a
	 * thread watches for one domain at a time, e.g. a run of a second
	 * runtime with the flag started from inside a first one's worker
	 * thread).  The environment variable
	 * RF_BLOCK_RESCUE=1 (read with secure_getenv()) sets the flag for
	 * every runtime of the process made with the watchdog; where it
	 * cannot be honoured the runtime says why on stderr, once, and runs
	 * without it.
	 * rf_stats.features has RF_FEAT_BLOCK_RESCUE when it is on.
	 */
	RF_RT_BLOCK_RESCUE = 1u << 11,
};

/*
 * Cross-worker wake-up back-ends (struct rf_runtime_opts.wake_backend): how
 * a worker that sleeps in io_uring_enter() is woken when another thread
 * makes one of its fibers ready.  See Documentation/scheduler.md.
 * New back-ends are appended: the values are ABI.
 */
enum {
	RF_WAKE_AUTO = 0,	/* the fastest measured: MSG_RING, else eventfd */
	RF_WAKE_MSG_RING,	/* IORING_OP_MSG_RING from the waker's ring (5.18) */
	RF_WAKE_EVENTFD,	/* eventfd read kept armed in the ring */
	RF_WAKE_FUTEX,		/* IORING_OP_FUTEX_WAIT kept armed (6.7) */
	RF_WAKE_RFWAKE,		/* uring_cmd WAIT on /dev/rfwake kept armed (module) */
	RF_WAKE_NR,
};

/**
 * struct rf_runtime_opts - runtime settings; zero means "the default".
 * @stack_size:  usable stack bytes of each fiber (default
 *               RF_DEFAULT_STACK_SIZE, rounded up to whole pages, from
 *               RF_MIN_STACK_SIZE to RF_MAX_STACK_SIZE). Memory is
 *               committed only when touched.
 * @stack_pool:  how many free stacks each worker keeps for reuse (default
 *               256; a stack returns to the pool of the worker its fiber
 *               ended on).
 * @ring_entries: submission queue size (default 256, a power of two from 2
 *               to 32768; 1 is -EINVAL: a request and its linked deadline
 *               timer are queued together); the completion queue is four
 *               times larger (at most 65536).
 * @flags:       RF_RT_* switches.
 * @workers:     how many workers (default: one per CPU in @cpus, or per CPU
 *               the process may run on); at most RF_MAX_WORKERS.
 * @cpus:        the CPU of each worker (worker i runs on @cpus[i % @ncpus]);
 *               NULL: the CPUs of the process's affinity mask, in order,
 *               except that fewer workers than those CPUs are not pinned
 *               (the kernel places them: two one-worker processes must
 *               not both land on the first CPU).
 * @ncpus:       entries in @cpus.
 * @wake_backend: RF_WAKE_*; one the kernel lacks makes rf_runtime_create()
 *               fail with -EOPNOTSUPP.  The environment variable
 *               RF_WAKE_BACKEND (auto, msg_ring, eventfd, futex or rfwake;
 *               unset or empty: not used) overrides it, for every runtime
 *               of the process: an unknown name makes rf_runtime_create()
 *               fail with -EINVAL, a back-end this machine lacks with
 *               -EOPNOTSUPP.  It is read with secure_getenv(), so a
 *               set-user-ID program ignores it.  Without a ring
 *               (RF_RT_NO_RING, or no io_uring) workers sleep on a futex
 *               whatever is asked.
 * @idle_spin_ns: how long an idle worker polls for work before it sleeps
 *               in the kernel; 0 = the default (RF_DEFAULT_IDLE_SPIN_NS),
 *               negative = never poll.
 * @hog_ns:      a fiber running this long without giving up the CPU is
 *               reported once and counted (stats.hogs), then preempted
 *               (see rf_preempt_disable()) or, where it may not be, the
 *               fibers queued behind it are handed to other workers; 0 =
 *               the default (RF_DEFAULT_HOG_NS), negative = no watchdog
 *               (and so no preemption).  The time is its worker thread's
 *               CPU time (to within hog_ns / 4): time the kernel kept that
 *               thread preempted, or asleep in a system call, does not
 *               count.
 * @blocking_threads: threads of the rf_blocking() pool (default 4), started
 *               on first use.
 * @slice_ns:    once a fiber has been caught hogging, how long it may run
 *               at a time while other fibers of its worker wait: the
 *               worker looks every @slice_ns (wall-clock time) and
 *               preempts it if anything else is ready.  The preempted
 *               hog runs again once nothing else of its worker is ready,
 *               or after a slice; then it runs at least a quarter of a
 *               slice before it may be stopped again.  While every look finds nothing else ready
 *               the worker looks less often, doubling the wait up to 16
 *               slices; a preemption brings it back to one slice.  0 = the
 *               default (RF_DEFAULT_SLICE_NS), from RF_MIN_SLICE_NS to
 *               @hog_ns; anything else is -EINVAL.
 */
struct rf_runtime_opts {
	size_t stack_size;
	unsigned int stack_pool;
	unsigned int ring_entries;
	unsigned int flags;
	unsigned int workers;
	const int *cpus;
	unsigned int ncpus;
	unsigned int wake_backend;
	int64_t idle_spin_ns;
	int64_t hog_ns;
	unsigned int blocking_threads;
	int64_t slice_ns;
};

/** Most workers one runtime may have. */
#define RF_MAX_WORKERS 256

/** Default idle polling time of a worker before it sleeps (see scheduler.md). */
#define RF_DEFAULT_IDLE_SPIN_NS (50 * 1000)

/** Default hog threshold: 10 ms of CPU time without a switch. */
#define RF_DEFAULT_HOG_NS (10 * 1000 * 1000)

/** Default time slice of a fiber caught hogging (see scheduler.md). */
#define RF_DEFAULT_SLICE_NS (100 * 1000)

/** Shortest time slice: each look costs a timer signal (about 2 us here). */
#define RF_MIN_SLICE_NS (20 * 1000)

/**
 * struct rf_spawn_attr - per-fiber settings for rf_spawn(); zero = default.
 * @name:       shown in diagnostics (stack overflow reports); copied, at
 *              most RF_NAME_MAX - 1 bytes kept; NULL gives "fiber".
 * @stack_size: usable stack bytes for this fiber; 0 = the runtime's size.
 * @detached:   non-zero: nobody joins this fiber; its resources are freed
 *              when it exits, and rf_spawn() may be given a NULL @fp.
 * @pinned:     non-zero: the fiber always runs on the worker it was placed
 *              on; idle workers never steal it.
 * @no_preempt: non-zero: the fiber is never preempted, as if it had called
 *              rf_preempt_disable() first (for code that takes pthread
 *              mutexes or keeps per-thread state: see rf_preempt_disable()).
 */
struct rf_spawn_attr {
	const char *name;
	size_t stack_size;
	int detached;
	int pinned;
	int no_preempt;
};

/*
 * Features the runtime found and uses (struct rf_stats.features).
 */
enum {
	RF_FEAT_RING = 1u << 0,            /* an io_uring ring exists */
	RF_FEAT_SINGLE_ISSUER = 1u << 1,   /* IORING_SETUP_SINGLE_ISSUER */
	RF_FEAT_DEFER_TASKRUN = 1u << 2,   /* IORING_SETUP_DEFER_TASKRUN */
	RF_FEAT_COOP_TASKRUN = 1u << 3,    /* IORING_SETUP_COOP_TASKRUN */
	RF_FEAT_MULTISHOT_ACCEPT = 1u << 4, /* IORING_ACCEPT_MULTISHOT */
	RF_FEAT_GUARD_MADVISE = 1u << 5,   /* MADV_GUARD_INSTALL guard pages */
	RF_FEAT_CQE_SKIP = 1u << 6,        /* IOSQE_CQE_SKIP_SUCCESS */
	RF_FEAT_SUBMIT_ALL = 1u << 7,      /* IORING_SETUP_SUBMIT_ALL */
	RF_FEAT_MSG_RING = 1u << 8,        /* IORING_OP_MSG_RING */
	RF_FEAT_FUTEX_WAIT = 1u << 9,      /* IORING_OP_FUTEX_WAIT */
	RF_FEAT_RFWAKE = 1u << 10,         /* /dev/rfwake: ABI 1 with uring_cmd */
	RF_FEAT_BUF_RING = 1u << 11,       /* IORING_REGISTER_PBUF_RING: receivers' buffers */
	RF_FEAT_MULTISHOT_RECV = 1u << 12, /* IORING_RECV_MULTISHOT: one receive per connection */
	RF_FEAT_PREEMPT = 1u << 13,        /* hogs are preempted (rf_preempt_disable()) */
	RF_FEAT_BLOCK_RESCUE = 1u << 14,   /* RF_RT_BLOCK_RESCUE: blocked workers are rescued */
};

/**
 * struct rf_stats - counters of one runtime, for tests and tuning.
 * @features:  RF_FEAT_* bits in use.
 * @fibers:    fibers that exist now (running, ready, parked or unjoined).
 * @inflight:  io_uring requests submitted or prepared whose completion has
 *             not been reaped yet, and fibers waiting for a deadline (in
 *             rf_sleep(), or an event wait with a deadline: one each).
 *             Zero whenever no fiber is inside a blocking call and no
 *             acceptor is open.
 * @switches:  fiber context switches so far.
 * @enters:    io_uring_enter() system calls made by the worker.
 * @sqes:      requests submitted.
 * @cqes:      completions reaped.
 * @stacks_mapped: stacks mapped now (in use plus pooled).
 * @stacks_pooled: stacks waiting in the pool.
 * @workers:   workers of the runtime.
 * @wake_backend: the RF_WAKE_* back-end in use.
 * @remote_wakes: fibers made ready by another thread than their worker's.
 * @wake_calls: of those, how many had to wake a sleeping worker through the
 *             back-end (the rest found it awake and cost no system call).
 * @sleeps:    times a worker went to sleep in the kernel with nothing to do.
 * @steals:    fibers taken by an idle worker from another worker.
 * @hogs:      fibers reported by the watchdog for running too long (a
 *             preempted fiber that runs hog_ns again without a switch is
 *             reported again).
 * @blocking_calls: rf_blocking() calls completed.
 * @signal:    the signal that shut the last run down, or 0.
 * @runs:      of @switches, those into a fiber (the rest returned to a
 *             worker's loop): the number of times a fiber started or resumed
 *             running, which is what the "run" probe and the trace records
 *             count (Documentation/tracing.md).
 * @wake_errors: wake-ups of a sleeping worker that the back-end failed to
 *             send its own way: each was sent another way where one exists
 *             (msg_ring: through the worker's eventfd), or left to the next
 *             waker (rfwake, whose first failure is also printed on stderr);
 *             and re-arms of a worker's wake-up request that found no room
 *             in its ring (the worker retries before it sleeps).  0 when all
 *             is well.
 * @preemptions: fibers suspended by preemption (each one switch, reason
 *             "preempt" in the trace records and the "preempt" probe).
 * @preempt_deferred: times a hog was due to be preempted but stood where it
 *             may not be (inside the runtime, libc or another shared
 *             library, a region of rf_preempt_disable(), too little stack):
 *             the worker tried again a slice later.
 * @preempt_ticks: ticks of the workers' slice timers (each a timer
 *             interrupt and a signal) while a caught hog ran: those that
 *             preempted it, those deferred, and those that found nothing
 *             else to run (after which the timer ticks less and less often,
 *             up to every 16 slices; see rf_runtime_opts.slice_ns).
 * @block_rescues: RF_RT_BLOCK_RESCUE's requests that a worker blocked in a
 *             fiber's system call handled (each a signal): those that
 *             suspended the blocked fiber or handed its ready fibers to
 *             other workers, and those that could do neither (the worker
 *             is then left alone until it switches fibers).
 *
 * Every counter is the sum over the workers (rf_runtime_worker_stats()
 * gives one worker's); the rf_stats of a running runtime read from another
 * thread are approximate.
 */
struct rf_stats {
	unsigned int features;
	uint64_t fibers;
	uint64_t inflight;
	uint64_t switches;
	uint64_t enters;
	uint64_t sqes;
	uint64_t cqes;
	uint64_t stacks_mapped;
	uint64_t stacks_pooled;
	unsigned int workers;
	unsigned int wake_backend;
	uint64_t remote_wakes;
	uint64_t wake_calls;
	uint64_t sleeps;
	uint64_t steals;
	uint64_t hogs;
	uint64_t blocking_calls;
	int signal;
	uint64_t runs;
	uint64_t wake_errors;
	uint64_t preemptions;
	uint64_t preempt_deferred;
	uint64_t preempt_ticks;
	uint64_t block_rescues;
};

/* ---------------------------------------------------------------- runtime */

/**
 * rf_runtime_create() - make a runtime and its workers.
 * @rtp:  where the new runtime is stored.
 * @opts: settings, or NULL for the defaults.
 *
 * The workers (@opts->workers, by default one per CPU the process may run
 * on) are made here; each makes its thread and its ring at the start of
 * every run (rf_runtime_run()).  Probes io_uring and uses the best features
 * the kernel has (see Documentation/fiber-core.md for the list and the
 * fallbacks), and picks the wake back-end (RF_WAKE_*).  If the
 * kernel has no io_uring (ENOSYS, or disabled by kernel.io_uring_disabled)
 * the runtime still schedules fibers but I/O calls return -ENOSYS, and so
 * do waits with a deadline (as with RF_RT_NO_RING).
 *
 * Return: 0, -EINVAL for bad settings, -ENOMEM, -EMFILE or -ENFILE when
 * no file descriptor is free (for the ring it probes the kernel with, and
 * closes again, or for the eventfd rf_runtime_shutdown() writes, which a
 * runtime with a ring keeps), -EOPNOTSUPP when the wake back-end asked for
 * is not available here, or the ring's setup error.
 */
int rf_runtime_create(struct rf_runtime **rtp, const struct rf_runtime_opts *opts);

/**
 * rf_runtime_run() - run @fn as the main fiber until every fiber is done.
 * @rt:     the runtime; must not already be running.
 * @fn:     entry point of the main fiber, named "main", on worker 0.
 * @arg:    passed to @fn.
 * @result: if not NULL, receives the main fiber's result.
 *
 * The calling thread becomes worker 0; the other workers are threads
 * started for the run.  Every worker sets up its ring when the run starts
 * and tears it down when it ends, so any thread may run a runtime, one run
 * after another.  Returns when no fiber is left, detached ones included.
 * If every remaining fiber is parked on something that can never happen (a
 * join cycle; an acceptor nobody connects to is *not* such a case), the
 * runtime cancels them all once; the call then returns -EDEADLK after they
 * finish.  The runtime knows its own wakers (fibers, the rf_blocking() pool,
 * the ring): a program whose own threads wake fibers (rf_event_set() from a
 * pthread) must keep something in flight meanwhile, or it is taken for a
 * deadlock.
 *
 * Every worker needs file descriptors for the run: one for its ring, one
 * more with the eventfd wake back-end, and worker 0 a signalfd with
 * RF_RT_SHUTDOWN_ON_SIGNAL (none without a ring).
 *
 * Return: 0, -EINVAL (NULL @rt or @fn), -EBUSY if @rt (or another runtime)
 * is already running on this thread, -EDEADLK, -EAGAIN/-ENOMEM when a
 * worker's thread or ring could not be made, -EMFILE/-ENFILE when no file
 * descriptor was free for a worker's ring or wake-up, or the error of
 * spawning the main fiber.  A run that failed to start leaves @rt as it
 * was: it may run again once descriptors are free.
 */
int rf_runtime_run(struct rf_runtime *rt, rf_fn fn, void *arg, void **result);

/**
 * rf_runtime_destroy() - free a runtime that is not running.
 * @rt: the runtime, or NULL.
 *
 * Frees every stack, the ring and the runtime itself.
 */
void rf_runtime_destroy(struct rf_runtime *rt);

/**
 * rf_runtime_stats() - read a runtime's counters.
 * @rt: the runtime, or NULL for the runtime of the calling fiber.
 * @st: filled in.
 *
 * Return: 0, or -EINVAL.
 */
int rf_runtime_stats(struct rf_runtime *rt, struct rf_stats *st);

/**
 * rf_runtime_worker_stats() - read the counters of one worker.
 * @rt:     the runtime, or NULL for the runtime of the calling fiber.
 * @worker: index from 0 to the number of workers - 1.
 * @st:     filled in as by rf_runtime_stats(), with this worker's share of
 *          every counter (@workers is 1; @features, @wake_backend and
 *          @signal are the runtime's).
 *
 * Return: 0, or -EINVAL (no runtime, no such worker, NULL @st).
 */
int rf_runtime_worker_stats(struct rf_runtime *rt, unsigned int worker, struct rf_stats *st);

/**
 * rf_runtime_shutdown() - cancel every fiber of a running runtime.
 * @rt: the runtime, or NULL for the calling fiber's.
 *
 * Callable from any thread, and async-signal-safe: a signal handler may
 * call it (it keeps errno).  The call itself only marks the run, marks the
 * calling fiber cancelled if it is one of the run's, and wakes the workers
 * (one write(2) to an eventfd, or without a ring one futex wake per
 * worker); it returns at once.  The first worker to wake then cancels every
 * fiber, as rf_cancel() does: the blocking call each fiber is parked in
 * returns -ECANCELED, and so does every later one, in fibers spawned after
 * the call too: they start cancelled (a spawn that races the call is
 * either cancelled by it or starts cancelled).  The fibers finish, the
 * workers drain and tear their rings down, and rf_runtime_run() returns.
 * This is what SIGINT/SIGTERM do under RF_RT_SHUTDOWN_ON_SIGNAL.
 *
 * Return: 0 (also when the run was already being shut down), -EINVAL (no
 * runtime), -ESRCH (not running: rf_runtime_run() has not started yet or
 * is returning; a call made then never stops a later run).
 */
int rf_runtime_shutdown(struct rf_runtime *rt);

/**
 * rf_worker_id() - index of the worker the calling fiber runs on (0 for the
 * first), or -EPERM outside a fiber.  A fiber that is not pinned may run
 * on another worker after any blocking call or yield.
 */
int rf_worker_id(void);

/**
 * rf_worker_count() - workers of the calling fiber's runtime, or -EPERM.
 */
int rf_worker_count(void);

/* --------------------------------------------------------------- lifecycle */

/**
 * rf_spawn() - create a fiber on the calling fiber's worker (fiber context).
 * @fp:   receives the fiber handle to join; may be NULL only if detached.
 * @fn:   entry point.
 * @arg:  passed to @fn.
 * @attr: settings, or NULL for defaults.
 *
 * The new fiber is appended to the run queue; the caller keeps running.
 *
 * Return: 0, -EINVAL (NULL @fn, stack size outside RF_MIN_STACK_SIZE..
 * RF_MAX_STACK_SIZE, NULL @fp for a joinable fiber), -EPERM outside a fiber, -ENOMEM or -EAGAIN when no stack could be
 * mapped (often vm.max_map_count: see Documentation/fiber-core.md).
 * Nothing is leaked on failure.
 */
int rf_spawn(struct rf_fiber **fp, rf_fn fn, void *arg, const struct rf_spawn_attr *attr);

/**
 * rf_spawn_on() - rf_spawn() onto worker @worker (fiber context).
 * @worker: index from 0 to rf_worker_count() - 1.
 * @fp:     as for rf_spawn().
 * @fn:     as for rf_spawn().
 * @arg:    as for rf_spawn().
 * @attr:   as for rf_spawn().
 *
 * The fiber is queued on that worker (woken if it sleeps).  Unless
 * @attr->pinned, an idle worker may still steal it before it runs.
 *
 * Return: as rf_spawn(), and -EINVAL for a worker that does not exist.
 */
int rf_spawn_on(unsigned int worker, struct rf_fiber **fp, rf_fn fn, void *arg,
		const struct rf_spawn_attr *attr);

/**
 * rf_join() - wait for a fiber to finish and free it (fiber context).
 * @f:        a joinable fiber of the same runtime (on any worker).
 * @result:   if not NULL, receives what the fiber returned or passed to
 *            rf_exit().
 * @deadline: absolute rf_now() time, or RF_NO_DEADLINE.
 *
 * After a successful join @f is gone: joining it again, or passing it to
 * any call, is undefined.  The descriptor lives at the top of the fiber's
 * stack mapping, which goes back to a pool and is reused by the next fiber
 * spawned there (a stale handle then names that fiber) or is unmapped;
 * telling a stale handle from a live one would take a generation count in
 * every handle.  A second rf_join() or rf_detach() made before the memory
 * is reused returns -EINVAL, which catches the common mistake but is no
 * guarantee.  After -ETIMEDOUT or -ECANCELED @f is still joinable.
 *
 * Return: 0, -EINVAL (NULL, detached, or already being joined), -EDEADLK
 * (joining yourself), -ETIMEDOUT, -ECANCELED, -EPERM, -ENOSYS (a deadline
 * without a ring: see the concurrency toolkit).
 */
int rf_join(struct rf_fiber *f, void **result, int64_t deadline);

/**
 * rf_detach() - let @f free itself when it exits (fiber context).
 * @f: a joinable fiber nobody is joining yet.
 *
 * Once it has exited, @f is as gone as after rf_join() (see there).
 *
 * Return: 0, -EINVAL, -EPERM.
 */
int rf_detach(struct rf_fiber *f);

/**
 * rf_yield() - let every other ready fiber run once, then continue.
 *
 * Cheap enough to call in a hot loop: with no I/O to flush it is a queue
 * operation and one context switch.
 *
 * Return: 0, or -EPERM outside a fiber.
 */
int rf_yield(void);

/**
 * rf_preempt_disable() - keep the calling fiber from being preempted.
 *
 * A fiber that runs longer than the hog threshold (rf_runtime_opts.hog_ns,
 * 10 ms of CPU time by default) without giving its worker back is
 * preempted: the worker suspends it where it stands, runs its other ready
 * fibers, and resumes it later on the same worker (never another: compiled
 * code may hold a thread-local address in a register), with every register
 * as it was, general-purpose, flags and the full FP/SIMD state.  From then
 * on it is preempted again every rf_runtime_opts.slice_ns while anything
 * else of its worker is ready.  A signal (SIGURG) does it, so a fiber is
 * only ever stopped at an instruction of its own program's code:
 *  - never inside the runtime, libc, or any other shared library, nor while
 *    a call into one of them is under way (a qsort() comparator, a
 *    dl_iterate_phdr() callback): the worker tries again a slice later;
 *  - never between rf_preempt_disable() and the matching rf_preempt_enable(),
 *    nor in a fiber spawned with rf_spawn_attr.no_preempt, nor in a runtime
 *    made with RF_RT_NO_PREEMPT;
 *  - only in a program linked dynamically with libc (a static one cannot
 *    tell libc's code from its own: preemption is off there), and not in
 *    a build under ThreadSanitizer, which holds signals back and hands the
 *    handler a copy of the context (RF_FEAT_PREEMPT tells).
 * So in a preemptible fiber everything the runtime offers, and every libc
 * call, behaves as without preemption.  What changes is the fiber's own
 * code: other fibers of the same worker may run between any two of its
 * instructions.  Data they share without a lock must then be shared as
 * between threads (atomics or rf_mutex), thread-local variables included.
 * A pthread mutex (or any lock of the kernel thread: a spinlock, flockfile())
 * held across such an instruction is held by the worker thread: another
 * fiber of that worker that takes it waits forever (its owner cannot run
 * until it is let go), or gets EDEADLK from an error-checking mutex.  Code
 * that takes such a lock must run with preemption disabled.
 *
 * Calls nest; each rf_preempt_disable() needs one rf_preempt_enable().
 * Blocking calls and rf_yield() are allowed inside.  Both cost a few
 * instructions and no system call.
 *
 * Return: 0, -EPERM outside a fiber, -EOVERFLOW past 2^32 - 1 levels.
 */
int rf_preempt_disable(void);

/**
 * rf_preempt_enable() - undo one rf_preempt_disable().
 *
 * Once the last level is undone the fiber may be preempted again; if it
 * has been running too long meanwhile, that happens at the next slice.
 *
 * Return: 0, -EPERM outside a fiber, -EINVAL if preemption was not disabled.
 */
int rf_preempt_enable(void);

/**
 * rf_exit() - finish the calling fiber with @result (fiber context).
 * @result: what rf_join() reports.
 *
 * Does not return.  Outside a fiber it returns without doing anything.
 * Nothing on the fiber's stack is unwound: do not exit with a lock held or
 * memory only the stack knows about.
 */
void rf_exit(void *result);

/**
 * rf_self() - the calling fiber, or NULL outside a fiber.
 */
struct rf_fiber *rf_self(void);

/**
 * rf_fiber_name() - the name given at spawn; "?" for NULL.
 * @f: a fiber.
 */
const char *rf_fiber_name(const struct rf_fiber *f);

/**
 * rf_cancel() - cancel a fiber of the calling fiber's runtime (fiber context).
 * @f: the fiber, on any worker; may be the caller.
 *
 * Sticky: the blocking call @f is parked in returns -ECANCELED as soon as
 * the kernel has released it, and every later blocking call of @f returns
 * -ECANCELED at once and does nothing, even one that would not have to wait
 * (a free mutex or permit, a set event, a zero count, a channel with room
 * or a value, data already readable, a finished fiber to join, an
 * rf_blocking() job).  The exceptions are what a cancelled fiber needs to
 * clean up: rf_close() and rf_acceptor_close() still close;
 * rf_group_wait() still cancels the group's fibers, waits for them and
 * frees the group (it returns -ECANCELED unless a failure came first);
 * rf_cond_wait() returns -ECANCELED with the mutex still held; the try
 * variants (rf_mutex_trylock(), rf_sem_tryacquire(), rf_chan_trysend(),
 * rf_chan_tryrecv()) never wait and still work.  Calls that never wait
 * (unlocking, releasing, setting, spawning, rf_yield()) are no blocking
 * calls and work as usual.  If the parked request completed before the
 * cancellation reached it, its result is returned instead, so no
 * transferred data is lost.  A fiber that is
 * running or ready is only marked.  A fiber parked on another worker's
 * ring is cancelled by that worker, which the call asks to do and does not
 * wait for.
 *
 * Return: 0, -EINVAL if @f has already exited, -EPERM.
 */
int rf_cancel(struct rf_fiber *f);

/**
 * rf_now() - CLOCK_MONOTONIC now, in nanoseconds: the deadlines' clock.
 */
int64_t rf_now(void);

/**
 * rf_deadline_after() - the deadline @ns nanoseconds from now.
 * @ns: a duration; negative gives RF_NO_DEADLINE.  One that reaches past
 *      INT64_MAX (rf_deadline_after(INT64_MAX)) gives INT64_MAX, a
 *      deadline that is never reached.
 */
int64_t rf_deadline_after(int64_t ns);

/**
 * rf_sleep() - park the calling fiber until @deadline (fiber context).
 * @deadline: absolute rf_now() time; a past one returns at once.
 *
 * Return: 0 when the deadline is reached, -ECANCELED, -EINVAL for
 * RF_NO_DEADLINE, -EPERM, -ENOSYS without a ring.
 */
int rf_sleep(int64_t deadline);

/* --------------------------------------------------------------------- I/O */
/*
 * Each function below prepares one io_uring request, parks the calling fiber
 * (fiber context) until its completion, and returns what the kernel
 * returned: a byte count, a file descriptor, or 0, as the synchronous system
 * call of the same name would, but as a negative errno instead of -1/errno.
 * Each also returns -ETIMEDOUT at @deadline, -ECANCELED after rf_cancel(),
 * -EPERM outside a fiber, -ENOSYS if the runtime has no ring, and -EBUSY
 * if the ring's submission queue stays full (the kernel takes none of it).
 * Offsets of -1 mean "the file position", as with read(2)/write(2).
 */

/**
 * rf_read() - pread(2) through io_uring (fiber context).
 * @fd:       the file.
 * @buf:      where the bytes go.
 * @len:      at most this many.
 * @off:      the file offset, or -1 to read at (and move) the file position.
 * @deadline: absolute rf_now() time, or RF_NO_DEADLINE.
 *
 * Return: the bytes read (0 at the end of the file), or a negative errno:
 * pread(2)'s, and -ETIMEDOUT at @deadline, -ECANCELED after rf_cancel(),
 * -EPERM outside a fiber, -ENOSYS without a ring, -EBUSY when the ring's
 * submission queue stays full.
 */
ssize_t rf_read(int fd, void *buf, size_t len, off_t off, int64_t deadline);

/**
 * rf_write() - pwrite(2) through io_uring (fiber context).
 * @fd:       the file.
 * @buf:      the bytes.
 * @len:      how many.
 * @off:      the file offset, or -1 to write at (and move) the file position.
 * @deadline: absolute rf_now() time, or RF_NO_DEADLINE.
 *
 * Return: the bytes written, or a negative errno: pwrite(2)'s, and -ETIMEDOUT
 * at @deadline, -ECANCELED after rf_cancel(), -EPERM outside a fiber, -ENOSYS
 * without a ring, -EBUSY when the ring's submission queue stays full.
 */
ssize_t rf_write(int fd, const void *buf, size_t len, off_t off, int64_t deadline);

/**
 * rf_readv() - preadv(2) through io_uring (fiber context).
 * @fd:       the file.
 * @iov:      the buffers; they must stay valid until the call returns.
 * @iovcnt:   how many.
 * @off:      the file offset, or -1 for the file position.
 * @deadline: absolute rf_now() time, or RF_NO_DEADLINE.
 *
 * Return: the bytes read, or a negative errno: preadv(2)'s, and -ETIMEDOUT at
 * @deadline, -ECANCELED after rf_cancel(), -EPERM outside a fiber, -ENOSYS
 * without a ring, -EBUSY when the ring's submission queue stays full.
 */
ssize_t rf_readv(int fd, const struct iovec *iov, int iovcnt, off_t off, int64_t deadline);

/**
 * rf_writev() - pwritev(2) through io_uring (fiber context).
 * @fd:       the file.
 * @iov:      the buffers; they must stay valid until the call returns.
 * @iovcnt:   how many.
 * @off:      the file offset, or -1 for the file position.
 * @deadline: absolute rf_now() time, or RF_NO_DEADLINE.
 *
 * On a socket whose peer has gone this raises SIGPIPE, as writev(2) does:
 * rf_sendmsg() does not.
 *
 * Return: the bytes written, or a negative errno: pwritev(2)'s, and -ETIMEDOUT
 * at @deadline, -ECANCELED after rf_cancel(), -EPERM outside a fiber, -ENOSYS
 * without a ring, -EBUSY when the ring's submission queue stays full.
 */
ssize_t rf_writev(int fd, const struct iovec *iov, int iovcnt, off_t off, int64_t deadline);

/**
 * rf_recv() - recv(2) through io_uring (fiber context).
 * @fd:       a connected socket.
 * @buf:      where the bytes go.
 * @len:      at most this many.
 * @flags:    recv(2)'s MSG_* flags.
 * @deadline: absolute rf_now() time, or RF_NO_DEADLINE.
 *
 * Return: the bytes received (0 when the peer has closed), or a negative
 * errno: recv(2)'s, and -ETIMEDOUT at @deadline, -ECANCELED after rf_cancel(),
 * -EPERM outside a fiber, -ENOSYS without a ring, -EBUSY when the ring's
 * submission queue stays full.
 */
ssize_t rf_recv(int fd, void *buf, size_t len, int flags, int64_t deadline);

/**
 * rf_send() - send(2) through io_uring (fiber context).
 * @fd:       a connected socket.
 * @buf:      the bytes.
 * @len:      how many.
 * @flags:    send(2)'s MSG_* flags; MSG_NOSIGNAL is always added.
 * @deadline: absolute rf_now() time, or RF_NO_DEADLINE.
 *
 * Return: the bytes sent, or a negative errno: send(2)'s (-EPIPE, not
 * SIGPIPE, when the peer has gone), and -ETIMEDOUT at @deadline, -ECANCELED after rf_cancel(),
 * -EPERM outside a fiber, -ENOSYS without a ring, -EBUSY when the ring's
 * submission queue stays full.
 */
ssize_t rf_send(int fd, const void *buf, size_t len, int flags, int64_t deadline);

/**
 * rf_sendmsg() - sendmsg(2) through io_uring (fiber context).
 * @fd:       a socket.
 * @msg:      the message; it and what it points to must stay valid until
 *            the call returns.
 * @flags:    sendmsg(2)'s MSG_* flags; MSG_NOSIGNAL is always added.
 * @deadline: absolute rf_now() time, or RF_NO_DEADLINE.
 *
 * A vectored send that, unlike rf_writev() on a socket, cannot raise SIGPIPE.
 *
 * Return: the bytes sent, or a negative errno: sendmsg(2)'s, and -ETIMEDOUT at
 * @deadline, -ECANCELED after rf_cancel(), -EPERM outside a fiber, -ENOSYS
 * without a ring, -EBUSY when the ring's submission queue stays full.
 */
ssize_t rf_sendmsg(int fd, const struct msghdr *msg, int flags, int64_t deadline);

/**
 * rf_accept() - accept4(2) through io_uring, one connection per call
 * (fiber context).
 * @fd:       a listening socket.
 * @addr:     receives the peer's address, or NULL.
 * @addrlen:  its size, in and out, as for accept4(2); NULL with @addr.
 * @flags:    accept4(2)'s SOCK_NONBLOCK and SOCK_CLOEXEC.
 * @deadline: absolute rf_now() time, or RF_NO_DEADLINE.
 *
 * A server with many connections is better served by rf_acceptor_open().
 *
 * Return: the new connection's descriptor, or a negative errno:
 * accept4(2)'s, and -ETIMEDOUT at @deadline, -ECANCELED after rf_cancel(),
 * -EPERM outside a fiber, -ENOSYS without a ring, -EBUSY when the ring's
 * submission queue stays full.
 */
int rf_accept(int fd, struct sockaddr *addr, socklen_t *addrlen, int flags, int64_t deadline);

/**
 * rf_connect() - connect(2) through io_uring (fiber context).
 * @fd:       a socket.
 * @addr:     the address to connect to.
 * @addrlen:  its size.
 * @deadline: absolute rf_now() time, or RF_NO_DEADLINE.
 *
 * Return: 0, or a negative errno: connect(2)'s, and -ETIMEDOUT at @deadline, -ECANCELED after rf_cancel(),
 * -EPERM outside a fiber, -ENOSYS without a ring, -EBUSY when the ring's
 * submission queue stays full.
 */
int rf_connect(int fd, const struct sockaddr *addr, socklen_t addrlen, int64_t deadline);

/**
 * rf_openat() - openat(2) through io_uring (fiber context).
 * @dirfd:    directory @path is relative to, or AT_FDCWD.
 * @path:     the file.
 * @flags:    openat(2)'s O_* flags.
 * @mode:     the new file's mode with O_CREAT or O_TMPFILE.
 * @deadline: absolute rf_now() time, or RF_NO_DEADLINE.
 *
 * Return: a descriptor, or a negative errno: openat(2)'s, and those every
 * I/O call returns.
 */
int rf_openat(int dirfd, const char *path, int flags, mode_t mode, int64_t deadline);

/**
 * rf_openat2() - openat2(2) through io_uring (Linux 5.6) (fiber context).
 * @dirfd:    directory @path is relative to, or AT_FDCWD.
 * @path:     the file.
 * @how:      flags, mode and RESOLVE_* flags (<linux/openat2.h>);
 *            RESOLVE_BENEATH keeps @path inside @dirfd, which is how a
 *            server confines the files it serves.
 * @size:     sizeof(*@how), as openat2(2) takes it.
 * @deadline: absolute rf_now() time, or RF_NO_DEADLINE.
 *
 * Return: a descriptor, or a negative errno: -EXDEV when @path leaves @dirfd
 * under RESOLVE_BENEATH, -EINVAL for a NULL @path or @how or a @size the kernel
 * does not know, -E2BIG for fields it does not know, and -ETIMEDOUT at
 * @deadline, -ECANCELED after rf_cancel(), -EPERM outside a fiber, -ENOSYS
 * without a ring, -EBUSY when the ring's submission queue stays full.
 */
int rf_openat2(int dirfd, const char *path, struct open_how *how, size_t size,
	       int64_t deadline);

/**
 * rf_close() - close(2) through io_uring.
 * @fd: the descriptor.
 *
 * No deadline: a close always completes, even in a cancelled fiber.
 * Outside a fiber or without a ring it calls close(2) directly, so a
 * descriptor is never leaked.
 *
 * Return: 0, or close(2)'s negative errno.
 */
int rf_close(int fd);

/**
 * rf_fsync() - fsync(2), or fdatasync(2), through io_uring (fiber context).
 * @fd:       the file.
 * @datasync: non-zero for fdatasync(2).
 * @deadline: absolute rf_now() time, or RF_NO_DEADLINE.
 *
 * Return: 0, or a negative errno: fsync(2)'s, and -ETIMEDOUT at @deadline, -ECANCELED after rf_cancel(),
 * -EPERM outside a fiber, -ENOSYS without a ring, -EBUSY when the ring's
 * submission queue stays full.
 */
int rf_fsync(int fd, int datasync, int64_t deadline);

/**
 * rf_poll() - wait until @fd has one of @events (fiber context).
 * @fd:       the descriptor.
 * @events:   POLLIN, POLLOUT, ... as for poll(2).
 * @deadline: absolute rf_now() time, or RF_NO_DEADLINE.
 *
 * Return: the revents mask (> 0), or a negative errno: -ETIMEDOUT at @deadline, -ECANCELED after rf_cancel(),
 * -EPERM outside a fiber, -ENOSYS without a ring, -EBUSY when the ring's
 * submission queue stays full.
 */
int rf_poll(int fd, unsigned int events, int64_t deadline);

/**
 * rf_nop() - one IORING_OP_NOP round trip: the cost of the machinery itself
 * (fiber context).
 * @deadline: absolute rf_now() time, or RF_NO_DEADLINE.
 *
 * Return: 0, or a negative errno: -ETIMEDOUT at @deadline, -ECANCELED after rf_cancel(),
 * -EPERM outside a fiber, -ENOSYS without a ring, -EBUSY when the ring's
 * submission queue stays full.
 */
int rf_nop(int64_t deadline);

/* ---------------------------------------------------------------- acceptor */
/*
 * An acceptor keeps one multishot accept request armed on a listening
 * socket, so a stream of connections costs one submission, not one per
 * connection.  Connections that arrive while no fiber is waiting queue in
 * the acceptor.  On kernels without multishot accept (before 5.19), or with
 * RF_RT_NO_MULTISHOT_ACCEPT, each rf_acceptor_next() makes one accept request
 * instead; the API is the same.
 */

/**
 * rf_acceptor_open() - start accepting on listening socket @fd (fiber context).
 * @ap:    receives the acceptor.
 * @fd:    a listening socket; it stays owned by the caller.
 * @flags: accept4(2) flags for new sockets (SOCK_CLOEXEC, SOCK_NONBLOCK).
 *
 * The acceptor lives on the calling fiber's worker (its request is in that
 * worker's ring), so the calling fiber is pinned there from now on, and a
 * fiber on another worker that calls rf_acceptor_next() or
 * rf_acceptor_close() moves to that worker first (-EINVAL if it is pinned
 * elsewhere).  Other workers may open acceptors of their own on the same
 * socket: the kernel gives each connection to one of them.
 *
 * Return: 0, -EINVAL, -ENOMEM, -EPERM, -ENOSYS.
 */
int rf_acceptor_open(struct rf_acceptor **ap, int fd, int flags);

/**
 * rf_acceptor_next() - the next accepted connection (fiber context).
 * @a:        the acceptor.
 * @deadline: absolute deadline or RF_NO_DEADLINE.
 *
 * Only one fiber may wait on an acceptor at a time.
 *
 * Return: a connected socket, or -ETIMEDOUT, -ECANCELED, -EBUSY (another
 * fiber is waiting), or the accept error the kernel reported (for example
 * -EMFILE; the acceptor stays usable).
 */
int rf_acceptor_next(struct rf_acceptor *a, int64_t deadline);

/**
 * rf_acceptor_close() - stop accepting and free @a (fiber context).
 * @a: the acceptor, or NULL.
 *
 * Cancels the armed request, waits until the kernel has released it, and
 * closes connections that were accepted but never taken.  The listening
 * socket is not closed.  An acceptor left open when its fiber exits is
 * closed by rf_runtime_destroy().
 *
 * Return: 0, -EBUSY if a fiber is waiting in rf_acceptor_next(), -EPERM.
 */
int rf_acceptor_close(struct rf_acceptor *a);

/* ---------------------------------------------------------------- receiver */
/*
 * A receiver waits for data on a connected socket without a buffer of its
 * own: the kernel picks a buffer from its worker's pool when data arrives
 * and the fiber borrows it until rf_buf_release().  An idle connection holds
 * no buffer, only its receiver (about 100 bytes) and, where the kernel has
 * them (6.0+), one multishot receive request armed for the connection's
 * life, so that a request costs one completion and no submission.  Data
 * that arrives while no fiber waits queues in the receiver, in order.
 *
 * Where the kernel lacks multishot receive (or with
 * RF_RT_NO_MULTISHOT_RECV), each rf_receiver_recv() makes one receive
 * request in which the kernel still picks the buffer; where it lacks
 * provided-buffer rings (before 5.19, or with RF_RT_NO_BUF_RING), the
 * receiver polls the socket and recv()s into a buffer of a pool the
 * runtime keeps.  The calls and their results are the same on every path;
 * rf_stats.features says which one is used (RF_FEAT_BUF_RING,
 * RF_FEAT_MULTISHOT_RECV).
 *
 * The pool is finite (rf_runtime_recv_buffers()): a fiber may hold several
 * buffers at once, a partial request across receives, say, but every
 * buffer it holds is one the kernel cannot fill for another connection.
 * When the pool runs dry, receivers wait until a buffer comes back; data
 * waits in the socket meanwhile and nothing is lost.  Copy out what must
 * be kept long and release early.  A buffer the kernel filled is never
 * handed to it again before rf_buf_release(): while a fiber holds it, no
 * receive writes into it.
 */

/**
 * struct rf_buf - received bytes in a buffer the runtime lends.
 * @data:  the first byte.
 * @len:   how many bytes (at least 1).
 * @owner: the runtime's: the pool the buffer belongs to.
 * @id:    the runtime's: which buffer of the pool.
 *
 * Valid from rf_receiver_recv() until rf_buf_release(), within one
 * rf_runtime_run(); release every buffer exactly once.
 */
struct rf_buf {
	char *data;
	size_t len;
	void *owner;
	unsigned int id;
};

/**
 * rf_receiver_open() - start receiving on connected socket @fd (fiber context).
 * @rp: receives the receiver.
 * @fd: a connected stream socket; it stays owned by the caller, who closes
 *      it after rf_receiver_close().
 *
 * Like an acceptor, a receiver lives on the calling fiber's worker, whose
 * ring holds its request and whose pool lends its buffers, so the calling
 * fiber is pinned there from now on; a fiber on another worker that uses
 * the receiver moves there first (-EINVAL if it is pinned elsewhere).  The
 * first receiver of a worker in a run sets the worker's pool up.  Nothing
 * is submitted before the first rf_receiver_recv().
 *
 * Return: 0, -EINVAL (@rp NULL, @fd negative), -ENOMEM, -EPERM (not in a
 * fiber), -ENOSYS (no ring).
 */
int rf_receiver_open(struct rf_receiver **rp, int fd);

/**
 * rf_receiver_recv() - wait for data on @r's socket (fiber context).
 * @r:        the receiver.
 * @b:        where the lent buffer is described; untouched unless the
 *            return value is positive.
 * @deadline: absolute rf_now() time, or RF_NO_DEADLINE.
 *
 * Only one fiber may wait on a receiver at a time.  After the end of the
 * stream or an error, every later call returns the same again.
 *
 * Return: the number of bytes in *@b (> 0; the caller owns the buffer until
 * rf_buf_release()), 0 at the end of the stream (the peer closed, or the
 * socket was shut down for reading), -ETIMEDOUT, -ECANCELED, -EBUSY
 * (another fiber waits on @r), -EINVAL (@b NULL, @r closing or of another
 * runtime), -EPERM, the socket's error (-ECONNRESET, ...), or -ENOMEM
 * after data that arrived but could not be queued for lack of memory (the
 * stream has a hole: close the connection).
 */
ssize_t rf_receiver_recv(struct rf_receiver *r, struct rf_buf *b, int64_t deadline);

/**
 * rf_receiver_park() - wait for @r's next data without a fiber (fiber context).
 * @r:    the receiver; no fiber may wait on it.
 * @fn:   what to start when data, the end of the stream or an error is
 *        there for rf_receiver_recv().
 * @arg:  @fn's argument.
 * @attr: the fiber's name and stack size, or NULL; it is always detached
 *        and pinned to @r's worker.  @attr->name must stay valid until the
 *        fiber starts (a string literal).
 *
 * Hands @r to its worker: the calling fiber stops receiving on it and
 * usually returns right after, so its stack goes back to the pool.  An idle
 * connection then costs its receiver and whatever @arg points to, no stack:
 * a server that parks between requests holds stacks only for connections
 * that are being served.  When something is there, the worker starts
 * @fn(@arg), which owns @r again (rf_receiver_recv() returns at once).  If
 * something is there already, the fiber starts now.  A parked receiver
 * counts as a live fiber: rf_runtime_run() does not return while one waits,
 * and a shutdown starts its fiber at once, cancelled, so that it cleans up.
 * While parked, rf_receiver_recv() and rf_receiver_close() return -EBUSY.
 *
 * Return: 0, -EBUSY (a fiber waits on @r, or it is parked), -EINVAL (@fn
 * NULL, a bad stack size, @r closing or of another runtime), -EPERM.
 */
int rf_receiver_park(struct rf_receiver *r, rf_fn fn, void *arg,
		     const struct rf_spawn_attr *attr);

/**
 * rf_buf_release() - give a lent buffer back to its pool.
 * @b: a buffer rf_receiver_recv() filled; its @owner is cleared.
 *
 * May be called by any fiber of the run: on the buffer's own worker it
 * goes back at once (and a receiver waiting for a buffer gets it), from
 * another worker it goes back at its worker's next pass through the loop.
 *
 * Return: 0, or -EINVAL for a buffer that is not lent (NULL, never filled,
 * already released).
 */
int rf_buf_release(struct rf_buf *b);

/**
 * rf_receiver_close() - stop receiving and free @r (fiber context).
 * @r: the receiver, or NULL.
 *
 * Cancels its request if one is armed, waits until the kernel has let it
 * go, and gives back the buffers of data nobody took (the data is lost:
 * close a receiver when the connection ends).  The socket is not closed.
 * Buffers already lent stay valid until released.  A receiver left open
 * when the run ends is freed by the run's end.
 *
 * Return: 0, -EBUSY if a fiber is waiting in rf_receiver_recv(), -EINVAL,
 * -EPERM.
 */
int rf_receiver_close(struct rf_receiver *r);

/** Default receive buffers per worker (rf_runtime_recv_buffers()). */
#define RF_DEFAULT_RECV_BUFS 2048
/** Default size of a receive buffer: a request head of a few KiB fits. */
#define RF_DEFAULT_RECV_BUF_SIZE 4096

/**
 * rf_runtime_recv_buffers() - size the receive buffer pools of @rt.
 * @rt:    a runtime that is not running.
 * @size:  bytes per buffer, from 64 to 1 MiB.
 * @count: buffers per worker, a power of two from 1 to 32768.
 *
 * Each worker that opens a receiver maps @count * @size bytes of address
 * space; a buffer costs memory once the kernel has filled it.
 * The default is RF_DEFAULT_RECV_BUFS buffers of RF_DEFAULT_RECV_BUF_SIZE.
 *
 * Return: 0, -EINVAL, -EBUSY (running).
 */
int rf_runtime_recv_buffers(struct rf_runtime *rt, size_t size, unsigned int count);


/* ------------------------------------------------------ concurrency toolkit */
/*
 * Fiber-blocking synchronization: a call that has to wait parks the calling
 * fiber, never the worker thread, and works between fibers on different
 * workers.  Every waiting call has a try variant (never waits, -EBUSY or
 * -EAGAIN instead) and takes an absolute @deadline (-ETIMEDOUT when it is
 * reached; RF_NO_DEADLINE waits for as long as it takes).  A waiting call of
 * a cancelled fiber returns -ECANCELED, even where it would not have to
 * wait; the try variants still work.  Waiters are woken in FIFO order.
 *
 * Deadlines are timed by the worker's ring.  Without one (RF_RT_NO_RING, or
 * a kernel without io_uring) a call that has to wait and has a deadline,
 * its own or that of a group its fiber belongs to, returns -ENOSYS at once
 * instead of waiting: rf_mutex_lock(), rf_cond_wait() (the mutex still
 * held), rf_sem_acquire(), rf_wg_wait(), rf_event_wait(), rf_chan_send(),
 * rf_chan_recv() and rf_join().  Waits with RF_NO_DEADLINE, and calls that
 * need not wait, work as usual; rf_group_wait() polls its group's deadline
 * instead (yielding), and rf_sleep() returns -ENOSYS.
 *
 * The objects below may live anywhere (static, on a fiber's stack, in the
 * heap); zero-filled (or RF_*_INIT) is a valid initial state, nothing needs
 * destroying, and their fields are private.  They must not be copied, and
 * must not be freed while a fiber waits on them or a call on them may still
 * start.  Once a call on an object has returned, the object may be freed
 * (or its memory reused) if no other fiber or thread will touch it again,
 * even if the call that made it return has not returned yet: a fiber whose
 * rf_wg_wait() returned may free the wait group while the last rf_wg_done()
 * is still returning, one whose rf_mutex_lock() returned may free the mutex
 * it holds, one whose rf_event_is_set() says 1 may free the event, and the
 * same for every call here and for rf_chan_destroy() after a channel call.
 * The semantics are in Documentation/scheduler.md.
 */

/* A list and a link in one (private: the library's list.h; in struct rf_waitq). */
struct rf__list_node {
	struct rf__list_node *next, *prev;
};

struct rf__list {
	struct rf__list_node *first, *last;
};

/** struct rf_waitq - a lock and a FIFO of parked fibers (private). */
struct rf_waitq {
	unsigned int lock;
	unsigned int len;
	struct rf__list waiters;
};

/**
 * struct rf_mutex - a mutual exclusion lock for fibers.
 *
 * Fair: rf_mutex_unlock() hands the mutex to the longest waiter, so no
 * fiber starves.  Not recursive; any fiber may unlock it.
 */
struct rf_mutex {
	/* private: */
	struct rf_waitq q;
	unsigned int locked;
};
#define RF_MUTEX_INIT { { 0, 0, { 0, 0 } }, 0 }

/**
 * rf_mutex_init() - make @m an unlocked mutex.
 * @m: the mutex (RF_MUTEX_INIT initializes a static one).
 */
void rf_mutex_init(struct rf_mutex *m);

/**
 * rf_mutex_lock() - lock @m, parking while another fiber holds it (fiber
 * context).
 * @m:        the mutex.
 * @deadline: absolute rf_now() time, or RF_NO_DEADLINE.
 *
 * Return: 0, -ETIMEDOUT at @deadline, -ECANCELED after rf_cancel(),
 * -EINVAL for NULL, -EPERM outside a fiber, -ENOSYS for a deadline without
 * a ring.
 */
int rf_mutex_lock(struct rf_mutex *m, int64_t deadline);

/**
 * rf_mutex_trylock() - lock @m if nobody holds it; callable from any thread.
 * @m: the mutex.
 *
 * Return: 0, -EBUSY when it is held, -EINVAL for NULL.
 */
int rf_mutex_trylock(struct rf_mutex *m);

/**
 * rf_mutex_unlock() - unlock @m, or hand it to the first waiter; callable
 * from any thread.
 * @m: the mutex.
 *
 * Return: 0, -EPERM if @m is not locked, -EINVAL for NULL.
 */
int rf_mutex_unlock(struct rf_mutex *m);

/**
 * struct rf_cond - a condition variable used with an rf_mutex.
 */
struct rf_cond {
	/* private: */
	struct rf_waitq q;
};
#define RF_COND_INIT { { 0, 0, { 0, 0 } } }

/**
 * rf_cond_init() - make @c a condition variable with no waiters.
 * @c: the condition variable (RF_COND_INIT initializes a static one).
 */
void rf_cond_init(struct rf_cond *c);

/**
 * rf_cond_wait() - unlock @m, park until signalled, lock @m again (fiber
 * context).
 * @c:        the condition variable.
 * @m:        the mutex the caller holds.
 * @deadline: absolute rf_now() time, or RF_NO_DEADLINE.
 *
 * The mutex is held again when the call returns, whatever it returns (as
 * with pthread_cond_timedwait).  Spurious wake-ups do not happen, but as
 * always the predicate must be checked in a loop.
 *
 * Return: 0, -ETIMEDOUT, -ECANCELED, -EINVAL, -EPERM (@m not locked or
 * outside a fiber), -ENOSYS (a deadline without a ring).
 */
int rf_cond_wait(struct rf_cond *c, struct rf_mutex *m, int64_t deadline);

/**
 * rf_cond_signal() - wake the longest waiter of @c, if any.
 * @c: the condition variable.
 *
 * Return: 0, -EINVAL for NULL.
 */
int rf_cond_signal(struct rf_cond *c);

/**
 * rf_cond_broadcast() - wake every waiter of @c.
 * @c: the condition variable.
 *
 * Return: 0, -EINVAL for NULL.
 */
int rf_cond_broadcast(struct rf_cond *c);

/**
 * struct rf_sem - a counting semaphore (the seeds' backpressure pattern:
 * at most N fibers inside a section).
 */
struct rf_sem {
	/* private: */
	struct rf_waitq q;
	int64_t count;
};
#define RF_SEM_INIT(n) { { 0, 0, { 0, 0 } }, (n) }

/**
 * rf_sem_init() - make @s a semaphore with @count permits.
 * @s:     the semaphore (RF_SEM_INIT(n) initializes a static one).
 * @count: the permits, >= 0.
 *
 * Return: 0, -EINVAL for NULL or a negative @count.
 */
int rf_sem_init(struct rf_sem *s, int64_t count);

/**
 * rf_sem_acquire() - take a permit, parking until one is free (fiber
 * context).
 * @s:        the semaphore.
 * @deadline: absolute rf_now() time, or RF_NO_DEADLINE.
 *
 * Return: 0, -ETIMEDOUT at @deadline, -ECANCELED after rf_cancel(),
 * -EINVAL for NULL, -EPERM outside a fiber, -ENOSYS for a deadline without
 * a ring.
 */
int rf_sem_acquire(struct rf_sem *s, int64_t deadline);

/**
 * rf_sem_tryacquire() - take a permit if one is free.
 * @s: the semaphore.
 *
 * Return: 0, -EAGAIN when none is free, -EINVAL for NULL.
 */
int rf_sem_tryacquire(struct rf_sem *s);

/**
 * rf_sem_release() - give a permit back (to the longest waiter, if any);
 * callable from any thread.
 * @s: the semaphore.
 *
 * Return: 0, -EINVAL for NULL, -EOVERFLOW when the count is at its maximum.
 */
int rf_sem_release(struct rf_sem *s);

/**
 * struct rf_waitgroup - wait for a set of tasks to finish (Go's
 * sync.WaitGroup): rf_wg_add() before starting them, rf_wg_done() as each
 * ends, rf_wg_wait() until the count is zero.
 */
struct rf_waitgroup {
	/* private: */
	struct rf_waitq q;
	int64_t count;
};
#define RF_WAITGROUP_INIT { { 0, 0, { 0, 0 } }, 0 }

/**
 * rf_wg_init() - make @wg a wait group with a count of zero.
 * @wg: the wait group (RF_WAITGROUP_INIT initializes a static one).
 */
void rf_wg_init(struct rf_waitgroup *wg);

/**
 * rf_wg_add() - add @delta to the count of @wg; at zero every waiter is
 * woken.
 * @wg:    the wait group.
 * @delta: may be negative.
 *
 * Return: 0, -EINVAL for NULL or when the count would go negative (it is
 * left unchanged).
 */
int rf_wg_add(struct rf_waitgroup *wg, int64_t delta);

/**
 * rf_wg_done() - rf_wg_add(@wg, -1).
 * @wg: the wait group.
 *
 * Return: as rf_wg_add().
 */
int rf_wg_done(struct rf_waitgroup *wg);

/**
 * rf_wg_wait() - park until the count of @wg is zero (fiber context).
 * @wg:       the wait group.
 * @deadline: absolute rf_now() time, or RF_NO_DEADLINE.
 *
 * Return: 0, -ETIMEDOUT at @deadline, -ECANCELED after rf_cancel(),
 * -EINVAL for NULL, -EPERM outside a fiber, -ENOSYS for a deadline without
 * a ring.
 */
int rf_wg_wait(struct rf_waitgroup *wg, int64_t deadline);

/**
 * struct rf_event - a flag fibers wait for (asyncio.Event): set wakes every
 * waiter and stays set until cleared.
 */
struct rf_event {
	/* private: */
	struct rf_waitq q;
	unsigned int set;
};
#define RF_EVENT_INIT { { 0, 0, { 0, 0 } }, 0 }

/**
 * rf_event_init() - make @e an event that is not set.
 * @e: the event (RF_EVENT_INIT initializes a static one).
 */
void rf_event_init(struct rf_event *e);

/**
 * rf_event_set() - set @e and wake every waiter.
 * @e: the event.
 *
 * Return: 0, -EINVAL for NULL.
 */
int rf_event_set(struct rf_event *e);

/**
 * rf_event_clear() - clear @e.
 * @e: the event.
 *
 * Return: 0, -EINVAL for NULL.
 */
int rf_event_clear(struct rf_event *e);

/**
 * rf_event_is_set() - whether @e is set.
 * @e: the event.
 *
 * Return: 1 if set, 0 if not, -EINVAL for NULL.
 */
int rf_event_is_set(struct rf_event *e);

/**
 * rf_event_wait() - park until @e is set; returns at once if it is (fiber
 * context).
 * @e:        the event.
 * @deadline: absolute rf_now() time, or RF_NO_DEADLINE.
 *
 * Return: 0, -ETIMEDOUT at @deadline, -ECANCELED after rf_cancel(),
 * -EINVAL for NULL, -EPERM outside a fiber, -ENOSYS for a deadline without
 * a ring.
 */
int rf_event_wait(struct rf_event *e, int64_t deadline);

/*
 * Channels: a bounded FIFO of pointers between fibers (the seeds'
 * producer/consumer Queue, Go's chan).  Capacity 0 is a rendezvous: a send
 * completes only when a receiver takes the value.  After rf_chan_close(),
 * sends fail with -EPIPE and receives drain what is buffered, then fail
 * with -EPIPE.
 */

/**
 * rf_chan_create() - a channel holding up to @capacity values.
 * @chp:      receives the channel.
 * @capacity: below 2^31; 0 makes a rendezvous channel.
 *
 * Return: 0, -EINVAL, -ENOMEM.
 */
int rf_chan_create(struct rf_chan **chp, unsigned int capacity);

/**
 * rf_chan_send() - send @value, parking while the channel is full (fiber
 * context).
 * @ch:       the channel.
 * @value:    any pointer, NULL included.
 * @deadline: absolute rf_now() time, or RF_NO_DEADLINE.
 *
 * Return: 0, -EPIPE when the channel is closed, -ETIMEDOUT at @deadline, -ECANCELED after rf_cancel(), -EINVAL
 * for NULL, -EPERM outside a fiber, -ENOSYS for a deadline without a ring.
 */
int rf_chan_send(struct rf_chan *ch, void *value, int64_t deadline);

/**
 * rf_chan_trysend() - send @value if that needs no waiting.
 * @ch:    the channel.
 * @value: any pointer.
 *
 * Return: 0, -EAGAIN when it would wait, -EPIPE when the channel is closed,
 * -EINVAL for NULL @ch.
 */
int rf_chan_trysend(struct rf_chan *ch, void *value);

/**
 * rf_chan_recv() - receive into *@value, parking while the channel is empty
 * (fiber context).
 * @ch:       the channel.
 * @value:    receives the value.
 * @deadline: absolute rf_now() time, or RF_NO_DEADLINE.
 *
 * Return: 0, -EPIPE when the channel is closed and drained, -ETIMEDOUT at @deadline, -ECANCELED after rf_cancel(), -EINVAL
 * for NULL, -EPERM outside a fiber, -ENOSYS for a deadline without a ring.
 */
int rf_chan_recv(struct rf_chan *ch, void **value, int64_t deadline);

/**
 * rf_chan_tryrecv() - receive into *@value if a value is ready.
 * @ch:    the channel.
 * @value: receives the value.
 *
 * Return: 0, -EAGAIN when none is ready, -EPIPE when the channel is closed
 * and drained, -EINVAL for NULL.
 */
int rf_chan_tryrecv(struct rf_chan *ch, void **value);

/**
 * rf_chan_close() - close @ch and wake every waiter.
 * @ch: the channel.
 *
 * Sends then fail with -EPIPE; receives drain what is buffered, then fail
 * with -EPIPE.
 *
 * Return: 0, -EPIPE when already closed, -EINVAL for NULL.
 */
int rf_chan_close(struct rf_chan *ch);

/**
 * rf_chan_destroy() - free @ch.
 * @ch: the channel, or NULL.
 *
 * Return: 0, -EBUSY while a fiber waits on it.
 */
int rf_chan_destroy(struct rf_chan *ch);

/* ---------------------------------------------------- structured concurrency */
/*
 * A group owns the fibers spawned into it (the seeds' TaskGroup): waiting on
 * the group joins them all; when one fails (returns non-zero) or the group
 * is cancelled, the others are cancelled.  A group's deadline cancels it
 * when reached, and bounds every blocking call of its fibers: a fiber's
 * calls, and the groups it creates, never wait past the deadlines of the
 * groups it belongs to (asyncio.timeout nested in a TaskGroup).
 */

/** Entry point of a group fiber: 0 for success, a negative errno for failure. */
typedef int (*rf_task_fn)(void *arg);

/**
 * rf_group_create() - a new empty group (fiber context).
 * @gp:       receives the group.
 * @deadline: absolute deadline of the group, or RF_NO_DEADLINE; capped by
 *            the calling fiber's own deadline.
 * Return: 0, -EINVAL, -ENOMEM, -EPERM.
 */
int rf_group_create(struct rf_group **gp, int64_t deadline);

/**
 * rf_group_spawn() - start @fn(@arg) as a fiber of @g (fiber context).
 * @g:    the group.
 * @fn:   the fiber's entry point: 0 for success, a negative errno for failure.
 * @arg:  passed to @fn.
 * @attr: as for rf_spawn(); its @detached is ignored (the group joins).
 *
 * Return: 0, -ECANCELED (the group is already cancelled or waited on),
 * and rf_spawn()'s errors.
 */
int rf_group_spawn(struct rf_group *g, rf_task_fn fn, void *arg, const struct rf_spawn_attr *attr);

/**
 * rf_group_cancel() - cancel every fiber of @g (any fiber may call it).
 * @g: the group.
 *
 * Return: 0, -EINVAL.
 */
int rf_group_cancel(struct rf_group *g);

/**
 * rf_group_wait() - wait until every fiber of @g has finished, then free @g.
 * @g: the group; only its creator may wait, once.
 *
 * Return: 0 if every fiber returned 0; otherwise the first failure: a
 * fiber's non-zero result, -ETIMEDOUT if the group's deadline was reached,
 * -ECANCELED if it was cancelled (by rf_group_cancel() or because the
 * waiting fiber was: a fiber cancelled before the call still cancels the
 * group's fibers, waits for them and frees @g).  -EINVAL or -EPERM leave
 * @g alone.
 */
int rf_group_wait(struct rf_group *g);

/* ------------------------------------------------------------ blocking work */

/**
 * rf_blocking() - run @fn(@arg) on the runtime's thread pool and park the
 * calling fiber until it returns (asyncio's run_in_executor).
 * @fn:     the function.
 * @arg:    passed to @fn.
 * @result: if not NULL, receives @fn's return value.
 *
 * For calls that block a thread and have no io_uring form (getaddrinfo, a
 * legacy library, a long computation): the workers keep running fibers.
 * @fn runs to completion even if the fiber is cancelled meanwhile (nothing
 * can stop a blocked thread safely); the cancellation shows at the fiber's
 * next blocking call.  A fiber cancelled before the call gets -ECANCELED
 * and @fn does not run.  The pool's threads start on first use and end with
 * the run.
 *
 * Return: 0 once @fn has returned, -ECANCELED (cancelled before the call),
 * -EINVAL (NULL @fn), -EPERM, -EAGAIN or -ENOMEM when no pool thread could
 * be started.
 */
int rf_blocking(rf_fn fn, void *arg, void **result);

/* ------------------------------------------------------ fiber-local storage */

/** How many fiber-local keys may exist at once in the process. */
#define RF_KEYS_MAX 16

/** A fiber-local storage key (threading.local, pthread_key_t for fibers). */
typedef unsigned int rf_key_t;

/**
 * rf_key_create() - a new key; every fiber's value for it starts as NULL.
 * @key:        receives the key.
 * @destructor: if not NULL, called with a fiber's non-NULL value when that
 *              fiber finishes (in the fiber, before it is joined).
 *
 * Return: 0, -EINVAL, -EAGAIN (RF_KEYS_MAX keys exist, or a deleted key's
 * slot cannot be reused yet because some fiber still holds a value in it).
 */
int rf_key_create(rf_key_t *key, void (*destructor)(void *));

/**
 * rf_key_delete() - free @key; the fibers' values are not destroyed.
 * @key: a key rf_key_create() made.
 *
 * Return: 0, -EINVAL for a key that does not exist.
 */
int rf_key_delete(rf_key_t key);

/**
 * rf_getspecific() - the calling fiber's value for @key.
 * @key: the key.
 *
 * Return: the value; NULL if none was set, for a key that does not exist,
 * or outside a fiber.
 */
void *rf_getspecific(rf_key_t key);

/**
 * rf_setspecific() - set the calling fiber's value for @key.
 * @key:   the key.
 * @value: the value.
 *
 * Return: 0, -EINVAL for a key that does not exist, -EPERM outside a fiber.
 */
int rf_setspecific(rf_key_t key, const void *value);

#ifdef __cplusplus
}
#endif

#endif /* RINGFIBER_H */
