// SPDX-License-Identifier: MIT
/*
 * sched.c - fibers: spawn, switch, park/wake, join, exit, cancel.
 *
 * A fiber that stops running (it yields, parks on I/O or exits) switches
 * straight to the next ready fiber: one rf__switch, no trip through the
 * worker loop.  Only when the run queue is empty, or RF__SWITCH_BUDGET
 * switches have passed, does it switch to the loop (runtime.c), which reaps
 * completions, submits what fibers prepared, and waits when nothing is ready.
 */
#include <errno.h>
#include <string.h>

#include "internal.h"

#ifdef __SANITIZE_ADDRESS__
#include <sanitizer/common_interface_defs.h>
#endif

__thread struct rf_runtime *rf__tls_rt __attribute__((tls_model("initial-exec")));

#ifdef __SANITIZE_ADDRESS__
/*
 * AddressSanitizer must be told which stack is in use, or it takes a fiber
 * stack for garbage and reports false errors.
 */
static void rf__asan_start(struct rf_runtime *rt, struct rf_fiber *from, struct rf_fiber *to)
{
	void **fake = from ? &from->asan_fake_stack : &rt->asan_fake_stack;

	if (from && from->state == RF__DONE)
		fake = NULL;	/* this stack is going away for good */
	if (to)
		__sanitizer_start_switch_fiber(fake, to->map_base + rt->page_size,
					       to->map_size - rt->page_size);
	else
		__sanitizer_start_switch_fiber(fake, rt->thread_stack_bottom,
					       rt->thread_stack_size);
}

static void rf__asan_finish(struct rf_runtime *rt, struct rf_fiber *self)
{
	__sanitizer_finish_switch_fiber(self ? self->asan_fake_stack : rt->asan_fake_stack,
					NULL, NULL);
}
#else
static inline void rf__asan_start(struct rf_runtime *rt, struct rf_fiber *from, struct rf_fiber *to) {}
static inline void rf__asan_finish(struct rf_runtime *rt, struct rf_fiber *self) {}
#endif

/* Switch from @from (NULL: the loop) to @to (NULL: the loop). */
static inline void rf__context_switch(struct rf_runtime *rt, struct rf_fiber *from,
				      struct rf_fiber *to)
{
	void **save = from ? &from->sp : &rt->loop_sp;
	void *load = to ? to->sp : rt->loop_sp;

	rt->current = to;
	if (to)
		to->state = RF__RUNNING;
	rt->switches++;
	rf__asan_start(rt, from, to);
	rf__switch(save, load);
	/* Running as @from again, resumed by some other context. */
	rf__asan_finish(rt, from);
	if (rt->zombie)
		rf__release_zombie(rt);
}

void rf__release_zombie(struct rf_runtime *rt)
{
	struct rf_fiber *f = rt->zombie;

	rt->zombie = NULL;
	rf__stack_free(rt, f);
}

void rf__loop_switch_to(struct rf_runtime *rt, struct rf_fiber *f)
{
	rf__context_switch(rt, NULL, f);
}

/*
 * Give the CPU away: the caller has already queued itself (yield), put
 * itself where a wake-up will find it (park), or finished (exit).
 */
void rf__park(struct rf_runtime *rt)
{
	struct rf_fiber *cur = rt->current, *next = NULL;

	if (rt->budget)
		next = rf__runq_pop(&rt->runq);
	if (next == cur) {
		/* a yield with nobody else ready */
		cur->state = RF__RUNNING;
		return;
	}
	if (next)
		rt->budget--;
	rf__context_switch(rt, cur, next);
}

void rf__wake(struct rf_fiber *f)
{
	f->state = RF__READY;
	rf__runq_push(&f->rt->runq, f);
}

static void rf__all_link(struct rf_runtime *rt, struct rf_fiber *f)
{
	f->all_prev = NULL;
	f->all_next = rt->all;
	if (rt->all)
		rt->all->all_prev = f;
	rt->all = f;
	rt->nfibers++;
}

void rf__all_unlink(struct rf_runtime *rt, struct rf_fiber *f)
{
	if (f->all_prev)
		f->all_prev->all_next = f->all_next;
	else
		rt->all = f->all_next;
	if (f->all_next)
		f->all_next->all_prev = f->all_prev;
	rt->nfibers--;
}

static __attribute__((noreturn)) void rf__fiber_finish(struct rf_fiber *f, void *result)
{
	struct rf_runtime *rt = f->rt;

	f->result = result;
	f->state = RF__DONE;
	rt->nlive--;
	if (f->is_main)
		rt->main_result = result;
	if (f->detached) {
		/* Our stack is in use until the switch: the next context unmaps it. */
		rf__all_unlink(rt, f);
		rt->zombie = f;
	} else if (f->joiner) {
		struct rf_fiber *joiner = f->joiner;

		f->joiner = NULL;
		rf__wait_event_wake(joiner->wait, 0);
	}
	rf__park(rt);
	__builtin_unreachable();
}

/* Entered from rf__fiber_start on the fiber's own stack. */
static void rf__fiber_main(void *arg)
{
	struct rf_fiber *f = arg;
	struct rf_runtime *rt = f->rt;

	rf__asan_finish(rt, f);
	if (rt->zombie)
		rf__release_zombie(rt);
	rf__fiber_finish(f, f->fn(f->arg));
}

int rf__spawn(struct rf_runtime *rt, struct rf_fiber **fp, rf_fn fn, void *arg,
	      const struct rf_spawn_attr *attr, bool is_main)
{
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

	ret = rf__stack_alloc(rt, size, &f);
	if (ret)
		return ret;
	f->next = NULL;
	f->rt = rt;
	f->fn = fn;
	f->arg = arg;
	f->result = NULL;
	f->joiner = NULL;
	f->wait = NULL;
	f->detached = detached;
	f->cancelled = false;
	f->is_main = is_main;
	strncpy(f->name, name, RF_NAME_MAX - 1);
	f->name[RF_NAME_MAX - 1] = '\0';
#ifdef __SANITIZE_ADDRESS__
	f->asan_fake_stack = NULL;
#endif
	f->sp = rf__ctx_init(f, rf__fiber_main, f);
	rf__all_link(rt, f);
	rt->nlive++;
	rf__wake(f);
	if (fp)
		*fp = f;
	return 0;
}

static inline struct rf_fiber *rf__self_in(struct rf_runtime **rtp)
{
	struct rf_runtime *rt = rf__tls_rt;

	*rtp = rt;
	return rt ? rt->current : NULL;
}

RF_EXPORT int rf_spawn(struct rf_fiber **fp, rf_fn fn, void *arg, const struct rf_spawn_attr *attr)
{
	struct rf_runtime *rt;

	if (!rf__self_in(&rt))
		return -EPERM;
	return rf__spawn(rt, fp, fn, arg, attr, false);
}

RF_EXPORT int rf_yield(void)
{
	struct rf_runtime *rt;
	struct rf_fiber *cur = rf__self_in(&rt);

	if (!cur)
		return -EPERM;
	if (!rt->runq.head) {
		if (!rt->inflight)
			return 0;	/* nothing else can become ready */
		rt->budget = 0;		/* let the loop reap completions */
	}
	cur->state = RF__READY;
	rf__runq_push(&rt->runq, cur);
	rf__park(rt);
	return 0;
}

RF_EXPORT void rf_exit(void *result)
{
	struct rf_runtime *rt;
	struct rf_fiber *cur = rf__self_in(&rt);

	if (cur)
		rf__fiber_finish(cur, result);
}

RF_EXPORT struct rf_fiber *rf_self(void)
{
	struct rf_runtime *rt;

	return rf__self_in(&rt);
}

RF_EXPORT const char *rf_fiber_name(const struct rf_fiber *f)
{
	return f ? f->name : "?";
}

static void rf__join_unlink(struct rf__wait *w)
{
	struct rf_fiber *target = w->source;

	target->joiner = NULL;
}

RF_EXPORT int rf_join(struct rf_fiber *f, void **result, int64_t deadline)
{
	struct rf_runtime *rt;
	struct rf_fiber *cur = rf__self_in(&rt);

	if (!cur)
		return -EPERM;
	if (f == cur)
		return -EDEADLK;
	if (!f || f->rt != rt || f->detached || f->joiner)
		return -EINVAL;
	if (cur->cancelled)
		return -ECANCELED;
	if (f->state != RF__DONE) {
		struct rf__wait w;
		int ret;

		rf__wait_init(&w, cur, RF__WAIT_EVENT);
		w.unlink = rf__join_unlink;
		w.source = f;
		f->joiner = cur;
		ret = rf__wait_event(rt, &w, deadline);
		if (ret < 0)
			return ret;
	}
	if (result)
		*result = f->result;
	rf__all_unlink(rt, f);
	rf__stack_free(rt, f);
	return 0;
}

RF_EXPORT int rf_detach(struct rf_fiber *f)
{
	struct rf_runtime *rt;
	struct rf_fiber *cur = rf__self_in(&rt);

	if (!cur)
		return -EPERM;
	if (!f || f->rt != rt || f->detached || f->joiner)
		return -EINVAL;
	if (f->state == RF__DONE) {
		/* Nobody will join it: free it now. */
		rf__all_unlink(rt, f);
		rf__stack_free(rt, f);
		return 0;
	}
	f->detached = true;
	return 0;
}

void rf__cancel_fiber(struct rf_runtime *rt, struct rf_fiber *f)
{
	struct rf__wait *w = f->wait;

	f->cancelled = true;
	if (f->state != RF__PARKED || !w)
		return;
	if (w->kind == RF__WAIT_EVENT) {
		if (!w->woken) {
			if (w->unlink)
				w->unlink(w);
			rf__wait_event_wake(w, -ECANCELED);
		}
	} else {
		rf__cancel_wait(rt, w);
	}
}

RF_EXPORT int rf_cancel(struct rf_fiber *f)
{
	struct rf_runtime *rt;
	struct rf_fiber *cur = rf__self_in(&rt);

	if (!cur)
		return -EPERM;
	if (!f || f->rt != rt || f->state == RF__DONE)
		return -EINVAL;
	rf__cancel_fiber(rt, f);
	return 0;
}
