// SPDX-License-Identifier: MIT
/*
 * sched.c - fibers: spawn, switch, park/ready, inboxes, join, exit, cancel.
 *
 * A fiber that stops running (it yields, parks on I/O or exits) switches
 * straight to the next ready fiber of its worker: one rf__switch, no trip
 * through the worker loop.  Only when the run queue is empty, or
 * RF__SWITCH_BUDGET switches have passed, does it switch to the loop
 * (loop.c), which drains the inbox, reaps completions, submits what
 * fibers prepared, steals, and sleeps when nothing is ready.
 *
 * The one rule for where a fiber runs next: a fiber is made ready on the
 * worker it parked on (f->wk).  If that is the calling thread's worker, it
 * goes on the run queue; otherwise into that worker's inbox, a lock-free
 * stack the worker drains between fibers, and the worker is woken through
 * the wake back-end only if it sleeps (rf__kick()).  Idle workers may then
 * steal it (steal.c).
 */
#include <errno.h>
#include <string.h>

#include "internal.h"

#ifdef __SANITIZE_ADDRESS__
#include <sanitizer/common_interface_defs.h>
#endif
#ifdef __SANITIZE_THREAD__
#include <sanitizer/tsan_interface.h>
#endif

__thread struct rf__worker *rf__tls_wk __attribute__((tls_model("initial-exec")));

#ifdef __SANITIZE_ADDRESS__
/*
 * AddressSanitizer must be told which stack is in use, or it takes a fiber
 * stack for garbage and reports false errors.
 */
static void rf__asan_start(struct rf__worker *wk, struct rf_fiber *from, struct rf_fiber *to)
{
	void **fake = from ? &from->asan_fake_stack : &wk->asan_fake_stack;

	if (from && rf__state(from) == RF__DONE)
		fake = NULL;	/* this stack is going away for good */
	if (to)
		__sanitizer_start_switch_fiber(fake, to->map_base + wk->page_size,
					       to->map_size - wk->page_size);
	else
		__sanitizer_start_switch_fiber(fake, wk->thread_stack_bottom,
					       wk->thread_stack_size);
}

static void rf__asan_finish(struct rf__worker *wk, struct rf_fiber *self)
{
	__sanitizer_finish_switch_fiber(self ? self->asan_fake_stack : wk->asan_fake_stack,
					NULL, NULL);
}
#else
static inline void rf__asan_start(struct rf__worker *wk, struct rf_fiber *from, struct rf_fiber *to) {}
static inline void rf__asan_finish(struct rf__worker *wk, struct rf_fiber *self) {}
#endif

/* ThreadSanitizer follows stacks switched by hand only when told. */
static inline void rf__tsan_switch(struct rf__worker *wk, struct rf_fiber *to)
{
#ifdef __SANITIZE_THREAD__
	__tsan_switch_to_fiber(to ? to->tsan_fiber : wk->tsan_loop_fiber, 0);
#endif
}

/*
 * Switch from @from (NULL: the loop) to @to (NULL: the loop).  When it
 * returns, @from runs again, perhaps on another worker (it was stolen).
 */
static inline void rf__context_switch(struct rf__worker *wk, struct rf_fiber *from,
				      struct rf_fiber *to)
{
	void **save = from ? &from->sp : &wk->loop_sp;
	void *load = to ? to->sp : wk->loop_sp;

	if (rf__trace_switches())
		rf__trace_switch_out(wk, from);
	rf__store_relaxed(&wk->current, to);	/* the watchdog reads it */
	if (to)
		rf__set_state(to, RF__RUNNING);
	else
		rf__count(&wk->loop_switches, 1);	/* runs = switches - these */
	rf__count(&wk->switches, 1);
	rf__store_relaxed(&wk->run_seq, wk->run_seq + 1);
	rf__asan_start(wk, from, to);
	rf__tsan_switch(wk, to);
	rf__switch(save, load);
	/* Running as @from again, resumed by some worker's thread. */
	wk = rf__tls_wk;
	rf__asan_finish(wk, from);
	if (wk->zombie || wk->handoff)
		rf__after_switch(wk);
	if (from && rf__trace_switches())
		rf__trace_switch_in(wk, from, false);
}

void rf__fiber_put(struct rf__worker *wk, struct rf_fiber *f)
{
	if (__atomic_sub_fetch(&f->refs, 1, __ATOMIC_ACQ_REL) == 0) {
#ifdef __SANITIZE_THREAD__
		__tsan_destroy_fiber(f->tsan_fiber);
#endif
		rf__stack_free(wk, f);
	}
}

/*
 * What the previous context left to do once its stack was no longer in
 * use: release a finished fiber, or hand a migrating one to its new worker
 * (not before: that worker could resume it while it was still switching).
 */
void rf__after_switch(struct rf__worker *wk)
{
	struct rf_fiber *f = wk->zombie;

	if (f) {
		wk->zombie = NULL;
		rf__fiber_put(wk, f);
	}
	f = wk->handoff;
	if (f) {
		struct rf__worker *to = f->wk;

		wk->handoff = NULL;
		f->wake_msg.kind = RF__MSG_WAKE;
		rf__inbox_push(to, &f->wake_msg);
		rf__kick(wk, to);
	}
}

/* Move the calling fiber to worker @to; returns running there. */
int rf__migrate(struct rf__worker *wk, struct rf__worker *to)
{
	struct rf_fiber *cur = wk->current;

	if (to == wk)
		return 0;
	if (cur->pinned || cur->bound)
		return -EINVAL;
	rf__store(&cur->wk, to);
	rf__set_state(cur, RF__READY);
	wk->handoff = cur;
	rf__park(wk);
	return 0;
}

void rf__loop_switch_to(struct rf__worker *wk, struct rf_fiber *f)
{
	rf__context_switch(wk, NULL, f);
}

/*
 * Give the CPU away: the caller has already queued itself (yield), put
 * itself where a wake-up will find it (park), or finished (exit).
 */
void rf__park(struct rf__worker *wk)
{
	struct rf_fiber *cur = wk->current, *next = NULL;

	if (wk->budget)
		next = rf__runq_pop(&wk->runq);
	if (next == cur) {
		/* a yield with nobody else ready, or woken before it parked */
		rf__set_state(cur, RF__RUNNING);
		return;
	}
	if (next)
		wk->budget--;
	rf__context_switch(wk, cur, next);
}

/* ------------------------------------------------------------ inboxes */

/* Push @m on @to's inbox (any thread). True if the inbox was empty. */
bool rf__inbox_push(struct rf__worker *to, struct rf__msg *m)
{
	struct rf__msg *old = rf__load_relaxed(&to->inbox);

	do {
		m->next = old;
	} while (!__atomic_compare_exchange_n(&to->inbox, &old, m, true, __ATOMIC_SEQ_CST,
					      __ATOMIC_RELAXED));
	return old == NULL;
}

/*
 * Wake @to if it sleeps, after something was put where it looks (its
 * inbox, a stealable queue, rt->done).  The waker's push and this load of
 * @to->parked, and the sleeper's store of parked and its re-check of the
 * inbox, are sequentially consistent: one of the two sees the other, so a
 * wake-up is never lost.  wake_pending makes one back-end wake-up serve
 * every waker until the sleeper has consumed it.
 */
void rf__kick(struct rf__worker *from, struct rf__worker *to)
{
	if (!__atomic_load_n(&to->parked, __ATOMIC_SEQ_CST))
		return;
	if (__atomic_exchange_n(&to->wake_pending, 1, __ATOMIC_SEQ_CST))
		return;
	__atomic_fetch_add(&to->wake_calls, 1, __ATOMIC_RELAXED);
	RF__PROBE(kick, 2, from ? (int)from->id : -1, to->id);
	if (rf__unlikely(to->rt->wake->kick(from, to) < 0)) {
		/*
		 * Nothing was sent, so nothing will clear wake_pending: left
		 * set, it would turn away every later waker for good.
		 */
		__atomic_fetch_add(&to->wake_errors, 1, __ATOMIC_RELAXED);
		__atomic_store_n(&to->wake_pending, 0, __ATOMIC_SEQ_CST);
	}
}

/*
 * Make a parked fiber ready, from any thread (the wait's owner decided it
 * may: see rf__wait_claim()).
 */
void rf__ready(struct rf_fiber *f)
{
	struct rf__worker *self = rf__tls_wk;
	struct rf__worker *home = rf__load_relaxed(&f->wk);

	rf__trace_ready(f, home, self);
	rf__set_state(f, RF__READY);
	if (home == self) {
		rf__runq_push(&self->runq, f);
		return;
	}
	f->wake_msg.kind = RF__MSG_WAKE;
	rf__inbox_push(home, &f->wake_msg);
	__atomic_fetch_add(&home->remote_wakes, 1, __ATOMIC_RELAXED);
	rf__kick(self, home);
}

/* Ask @f's worker to cancel the request @f is parked in (any thread). */
static void rf__send_cancel(struct rf__worker *from, struct rf_fiber *f)
{
	struct rf__worker *to;

	if (__atomic_exchange_n(&f->cancel_queued, 1, __ATOMIC_ACQ_REL))
		return;		/* one is on its way: it will see the flag */
	__atomic_add_fetch(&f->refs, 1, __ATOMIC_RELAXED);
	to = rf__load_relaxed(&f->wk);
	f->cancel_msg.kind = RF__MSG_CANCEL;
	rf__inbox_push(to, &f->cancel_msg);
	rf__kick(from, to);
}

/*
 * Cancel what @f is parked in; on @f's own worker, @f not running.  Only
 * this worker touches @f->wait and the ring request it describes.
 */
void rf__cancel_here(struct rf__worker *wk, struct rf_fiber *f)
{
	struct rf__wait *w;

	/*
	 * Only a parked fiber's wait is ours to read: a ready one may be
	 * running on the worker that has just stolen it, clearing f->wait.
	 */
	if (rf__state(f) != RF__PARKED)
		return;
	w = f->wait;
	if (!w || w->nocancel)
		return;
	if (w->kind == RF__WAIT_EVENT) {
		if (rf__wait_claim(w)) {
			if (w->unlink)
				w->unlink(w);
			rf__wait_deliver(w, -ECANCELED);
		}
	} else {
		rf__cancel_wait(wk, w);
	}
}

/*
 * Mark @f cancelled and stop what it waits for.  @wk is the calling
 * thread's worker (NULL on a thread that is none).  The caller guarantees
 * @f is not freed meanwhile (it holds a handle, or a list lock).
 */
void rf__cancel_fiber(struct rf__worker *wk, struct rf_fiber *f)
{
	__atomic_store_n(&f->cancelled, 1, __ATOMIC_SEQ_CST);
	if (rf__state(f) == RF__DONE || (wk && f == wk->current))
		return;
	/*
	 * Seen as ours, @f is only marked if it is ready: a worker that has
	 * just stolen it must then see the mark when it runs it (the fence
	 * in rf__take() pairs with this load).
	 */
	if (wk && __atomic_load_n(&f->wk, __ATOMIC_SEQ_CST) == wk)
		rf__cancel_here(wk, f);
	else
		rf__send_cancel(wk, f);
}

/* Take every message of the inbox, oldest first (the caller's worker). */
void rf__inbox_drain(struct rf__worker *wk)
{
	struct rf__msg *m, *fifo = NULL;

	if (!rf__load_relaxed(&wk->inbox))
		return;
	m = __atomic_exchange_n(&wk->inbox, NULL, __ATOMIC_ACQUIRE);
	while (m) {		/* the stack is newest first: reverse it */
		struct rf__msg *next = m->next;

		m->next = fifo;
		fifo = m;
		m = next;
	}
	while (fifo) {
		struct rf__msg *next = fifo->next;
		struct rf_fiber *f;

		if (fifo->kind == RF__MSG_WAKE) {
			f = rf__container_of(fifo, struct rf_fiber, wake_msg);
			rf__runq_push(&wk->runq, f);
		} else {
			f = rf__container_of(fifo, struct rf_fiber, cancel_msg);
			__atomic_store_n(&f->cancel_queued, 0, __ATOMIC_RELEASE);
			if (rf__load_relaxed(&f->wk) != wk) {
				/* it moved: wherever it parks, that worker cancels */
				if (rf__state(f) != RF__DONE)
					rf__send_cancel(wk, f);
			} else {
				rf__cancel_here(wk, f);
			}
			rf__fiber_put(wk, f);
		}
		fifo = next;
	}
}

/* ------------------------------------------------------------ lifecycle */

static void rf__all_link(struct rf__worker *wk, struct rf_fiber *f)
{
	rf__spin_lock(&wk->all_lock);
	f->list_wk = wk;
	rf__list_add_head(&wk->all, &f->all_link);
	rf__spin_unlock(&wk->all_lock);
	__atomic_add_fetch(&wk->nfibers, 1, __ATOMIC_RELAXED);
}

void rf__all_unlink(struct rf_fiber *f)
{
	struct rf__worker *wk = f->list_wk;

	rf__spin_lock(&wk->all_lock);
	rf__list_del(&wk->all, &f->all_link);
	rf__spin_unlock(&wk->all_lock);
	__atomic_sub_fetch(&wk->nfibers, 1, __ATOMIC_RELAXED);
}

static __attribute__((noreturn)) void rf__fiber_finish(struct rf_fiber *f, void *result)
{
	struct rf__worker *wk = rf__tls_wk;
	struct rf_runtime *rt = f->rt;
	bool detached;

	wk->in_user = false;
	f->result = result;
	rf__fls_destroy(f);
	rf__group_fiber_done(f);
	wk = rf__tls_wk;	/* destructors may have parked */
	if (f->is_main)
		rt->main_result = result;

	rf__wq_lock(&f->join_q);
	f->finished = true;
	detached = f->detached;
	if (!detached)
		rf__wq_wake_first(&f->join_q, 0);
	rf__wq_unlock(&f->join_q);
	rf__set_state(f, RF__DONE);
	if (detached) {
		rf__all_unlink(f);
		__atomic_sub_fetch(&f->refs, 1, __ATOMIC_ACQ_REL);	/* the handle */
	}
	RF__PROBE(exit, 2, f, wk->id);
	/* Our stack is in use until the switch: the next context drops it. */
	wk->zombie = f;
	if (__atomic_sub_fetch(&rt->nlive, 1, __ATOMIC_ACQ_REL) == 0)
		rf__run_over(rt);
	rf__park(wk);
	__builtin_unreachable();
}

/* Entered from rf__fiber_start on the fiber's own stack. */
static void rf__fiber_main(void *arg)
{
	struct rf_fiber *f = arg;
	struct rf__worker *wk = rf__tls_wk;
	void *result;

	rf__asan_finish(wk, f);
	if (wk->zombie || wk->handoff)
		rf__after_switch(wk);
	if (rf__trace_switches())
		rf__trace_switch_in(wk, f, true);
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	wk->in_user = true;
	result = f->fn(f->arg);
	rf__fiber_finish(f, result);
}

int64_t rf__fiber_deadline(const struct rf_fiber *f, int64_t deadline)
{
	if (f->deadline < 0)
		return deadline;
	if (deadline < 0 || f->deadline < deadline)
		return f->deadline;
	return deadline;
}

int rf__spawn(struct rf__worker *wk, struct rf__worker *on, struct rf_fiber **fp, rf_fn fn,
	      void *arg, const struct rf_spawn_attr *attr, bool is_main)
{
	struct rf_runtime *rt = wk->rt;
	bool detached = is_main || (attr && attr->detached);
	size_t size = rt->stack_size;
	const char *name = is_main ? "main" : "fiber";
	struct rf_fiber *f;
	int ret;

	if (!fn || (!detached && !fp))
		return -EINVAL;
	if (attr && attr->stack_size) {
		size = attr->stack_size;
		if (size < RF_MIN_STACK_SIZE || size > RF_MAX_STACK_SIZE)
			return -EINVAL;
	}
	if (attr && attr->name)
		name = attr->name;

	ret = rf__stack_alloc(wk, size, &f);
	if (ret)
		return ret;
	f->next = NULL;
	f->wk = on;
	f->rt = rt;
	f->fn = fn;
	f->arg = arg;
	f->result = NULL;
	memset(&f->join_q, 0, sizeof(f->join_q));
	f->finished = false;
	f->detached = detached;
	f->wait = NULL;
	f->refs = 2;
	f->cancel_queued = 0;
	f->cancelled = 0;	/* a shutdown may set it from rf__all_link() on */
	f->is_main = is_main;
	f->pinned = attr && attr->pinned;
	f->bound = false;
	f->no_preempt = attr && attr->no_preempt;
	f->preempted = false;
	f->preempt_off = 0;
	/* only a group's fibers carry a deadline (group.c sets it) */
	f->deadline = RF_NO_DEADLINE;
	f->group = NULL;
	f->grp_link.next = f->grp_link.prev = NULL;
	memset(f->fls, 0, sizeof(f->fls));
	strncpy(f->name, name, RF_NAME_MAX - 1);
	f->name[RF_NAME_MAX - 1] = '\0';
	f->tr_ready_ns = 0;
	f->tr_park_ns = 0;
	f->tr_reason = RF_TRACE_NEW;
#ifdef __SANITIZE_ADDRESS__
	f->asan_fake_stack = NULL;
#endif
#ifdef __SANITIZE_THREAD__
	f->tsan_fiber = __tsan_create_fiber(0);
#endif
	f->sp = rf__ctx_init(f, rf__fiber_main, f);
	/* a pooled stack still says DONE, which a shutdown's walk would skip */
	rf__set_state(f, RF__READY);
	rf__all_link(wk, f);
	/*
	 * After rf_runtime_shutdown() every new fiber starts cancelled, with
	 * no window: the shutdown sets RF__RUN_STOP before it walks the lists
	 * under their locks, so either its walk finds @f, linked above, or
	 * the walk took our list's lock first and we see the bit now.
	 */
	if (rf__load(&rt->run_state) & RF__RUN_STOP)
		__atomic_store_n(&f->cancelled, 1, __ATOMIC_SEQ_CST);
	__atomic_add_fetch(&rt->nlive, 1, __ATOMIC_ACQ_REL);
	RF__PROBE(spawn, 3, f, on->id, f->name);
	if (fp)
		*fp = f;
	/* last: on another worker it may run (and finish) at once */
	rf__ready(f);
	return 0;
}

static inline struct rf_fiber *rf__self_in(struct rf__worker **wkp)
{
	struct rf__worker *wk = rf__tls_wk;

	*wkp = wk;
	return wk ? wk->current : NULL;
}

RF_EXPORT int rf_spawn(struct rf_fiber **fp, rf_fn fn, void *arg, const struct rf_spawn_attr *attr)
{
	RF__GUARD();
	struct rf__worker *wk;

	if (!rf__self_in(&wk))
		return -EPERM;
	return rf__spawn(wk, wk, fp, fn, arg, attr, false);
}

RF_EXPORT int rf_spawn_on(unsigned int worker, struct rf_fiber **fp, rf_fn fn, void *arg,
			  const struct rf_spawn_attr *attr)
{
	RF__GUARD();
	struct rf__worker *wk;

	if (!rf__self_in(&wk))
		return -EPERM;
	if (worker >= wk->rt->nworkers)
		return -EINVAL;
	return rf__spawn(wk, wk->rt->workers[worker], fp, fn, arg, attr, false);
}

RF_EXPORT int rf_yield(void)
{
	RF__GUARD();
	struct rf__worker *wk;
	struct rf_fiber *cur = rf__self_in(&wk);

	if (!cur)
		return -EPERM;
	if (!wk->runq.head) {
		if (!wk->inflight && !rf__load_relaxed(&wk->inbox) && !wk->preempted.head &&
		    !rf__load_relaxed(&wk->steal_len)) {
			/*
			 * nothing else can become ready here (a preempted fiber
			 * waits for the loop to queue it, and so does one the
			 * hog rescue published); still a yield for the watchdog
			 */
			rf__store_relaxed(&wk->run_seq, wk->run_seq + 1);
			return 0;
		}
		wk->budget = 0;		/* let the loop reap and drain */
	}
	rf__set_state(cur, RF__READY);
	rf__runq_push(&wk->runq, cur);
	rf__park(wk);
	return 0;
}

RF_EXPORT void rf_exit(void *result)
{
	struct rf__worker *wk;
	struct rf_fiber *cur = rf__self_in(&wk);

	if (cur)
		rf__fiber_finish(cur, result);
}

RF_EXPORT struct rf_fiber *rf_self(void)
{
	struct rf__worker *wk;

	return rf__self_in(&wk);
}

RF_EXPORT const char *rf_fiber_name(const struct rf_fiber *f)
{
	return f ? f->name : "?";
}

RF_EXPORT int rf_worker_id(void)
{
	struct rf__worker *wk;

	if (!rf__self_in(&wk))
		return -EPERM;
	return (int)wk->id;
}

RF_EXPORT int rf_worker_count(void)
{
	struct rf__worker *wk;

	if (!rf__self_in(&wk))
		return -EPERM;
	return (int)wk->rt->nworkers;
}

/* Free a finished fiber nobody else will touch through its handle. */
static void rf__fiber_reap_handle(struct rf__worker *wk, struct rf_fiber *f)
{
	rf__all_unlink(f);
	rf__fiber_put(wk, f);
}

/*
 * For rf_join() and rf_detach(): 0 with @f's join queue locked if @f is a
 * fiber of @wk's runtime whose handle is unspent (not detached, not joined
 * nor being joined), else -EINVAL.
 */
static int rf__handle_lock(struct rf__worker *wk, struct rf_fiber *f)
{
	if (!f || f->rt != wk->rt)
		return -EINVAL;
	rf__wq_lock(&f->join_q);
	if (f->detached || f->join_q.len) {
		rf__wq_unlock(&f->join_q);
		return -EINVAL;
	}
	return 0;
}

RF_EXPORT int rf_join(struct rf_fiber *f, void **result, int64_t deadline)
{
	RF__GUARD();
	struct rf__worker *wk;
	struct rf_fiber *cur = rf__self_in(&wk);
	int ret;

	if (!cur)
		return -EPERM;
	if (f == cur)
		return -EDEADLK;
	ret = rf__handle_lock(wk, f);
	if (ret)
		return ret;
	if (rf__load_relaxed(&cur->cancelled)) {
		rf__wq_unlock(&f->join_q);
		return -ECANCELED;
	}
	if (!f->finished) {
		struct rf__waiter wt;

		ret = rf__wq_park(&f->join_q, &wt, deadline, RF_TRACE_JOIN);
		if (ret < 0)
			return ret;
		wk = rf__tls_wk;
	} else {
		rf__wq_unlock(&f->join_q);
	}
	if (result)
		*result = f->result;
	/*
	 * The handle is spent: a second rf_join() or rf_detach() of it gets
	 * -EINVAL for as long as the memory is not reused (ringfiber.h: no
	 * promise, a mistake caught where it is cheap).
	 */
	f->detached = true;
	rf__fiber_reap_handle(wk, f);
	return 0;
}

RF_EXPORT int rf_detach(struct rf_fiber *f)
{
	RF__GUARD();
	struct rf__worker *wk;
	struct rf_fiber *cur = rf__self_in(&wk);
	bool finished;
	int ret;

	if (!cur)
		return -EPERM;
	ret = rf__handle_lock(wk, f);
	if (ret)
		return ret;
	f->detached = true;
	finished = f->finished;
	rf__wq_unlock(&f->join_q);
	if (finished)
		rf__fiber_reap_handle(wk, f);	/* nobody will join it: free it now */
	return 0;
}

RF_EXPORT int rf_cancel(struct rf_fiber *f)
{
	RF__GUARD();
	struct rf__worker *wk;
	struct rf_fiber *cur = rf__self_in(&wk);

	if (!cur)
		return -EPERM;
	if (!f || f->rt != wk->rt || rf__state(f) == RF__DONE)
		return -EINVAL;
	rf__cancel_fiber(wk, f);
	return 0;
}
