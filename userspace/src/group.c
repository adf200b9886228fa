// SPDX-License-Identifier: MIT
/*
 * group.c - structured concurrency: a group owns the fibers spawned into it.
 *
 * A member is a detached fiber running rf__group_task(), which links it into
 * the group's member list when it starts and unlinks it when @fn returns (or
 * in rf__group_fiber_done() if it leaves through rf_exit()).  The live count
 * is raised before the fiber is spawned, so the group cannot look finished
 * while a member is still on its way to the run queue; a member that starts
 * after the group was cancelled cancels itself, so rf_group_cancel() needs
 * only the fibers that are linked.
 *
 * One lock, the lock of the queue the creator waits on, guards the whole
 * group.  The last member releases it before it wakes the creator, and the
 * creator frees the group only after taking it and seeing no member left:
 * no member touches the group after the creator can free it.
 *
 * Lock order: a group's lock, then (through rf__cancel_fiber() of a member
 * parked in a queue) that queue's lock, including a child group's.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

struct rf_group {
	struct rf_waitq q;		/* its lock guards the group; the creator waits */
	struct rf__list members;	/* running members, through rf_fiber.grp_link */
	uint64_t live;			/* members spawned and not finished */
	int err;			/* the first failure, or 0 */
	bool cancelled;
	bool waiting;			/* rf_group_wait() has started */
	int64_t deadline;		/* RF_NO_DEADLINE, or absolute */
	struct rf_fiber *creator;
};

/* What a member runs: handed from rf_group_spawn() to rf__group_task(). */
struct rf__group_task {
	struct rf_group *g;
	rf_task_fn fn;
	void *arg;
};

/* Cancel the group (under its lock): @err becomes its failure if it has none. */
static void rf__group_cancel_locked(struct rf_group *g, int err)
{
	struct rf_fiber *f;

	if (!g->err)
		g->err = err;
	if (g->cancelled)
		return;
	g->cancelled = true;
	rf__list_for_each_entry(f, &g->members, grp_link)
		rf__cancel_fiber(rf__tls_wk, f);
}

/* Member @f is done with result @ret: record it, unlink, wake the creator. */
static void rf__group_leave(struct rf_fiber *f, int ret)
{
	struct rf__wakelist wl = RF__WAKELIST_INIT;
	struct rf_group *g = f->group;

	rf__wq_lock(&g->q);
	rf__list_del(&g->members, &f->grp_link);
	f->group = NULL;
	if (ret)
		rf__group_cancel_locked(g, ret);
	if (--g->live == 0)
		rf__wq_take_first(&g->q, &wl, 0);
	rf__wq_unlock_wake(&g->q, &wl);	/* the last touch: the creator may free g now */
}

static void *rf__group_task(void *p)
{
	struct rf__group_task t = *(struct rf__group_task *)p;
	struct rf_fiber *self = rf__cur();
	struct rf_group *g = t.g;
	bool cancelled;
	int ret;

	free(p);
	rf__wq_lock(&g->q);
	self->group = g;
	self->deadline = g->deadline;
	rf__list_add_head(&g->members, &self->grp_link);
	cancelled = g->cancelled;
	rf__wq_unlock(&g->q);
	if (cancelled)
		rf_cancel(self);	/* its blocking calls see it at once */
	ret = t.fn(t.arg);
	rf__group_leave(self, ret);
	return NULL;
}

/*
 * The core calls this as every fiber finishes.  A member that returned has
 * left its group already (f->group is NULL); one that left through
 * rf_exit() is accounted here, its exit value read as the task's result.
 */
void rf__group_fiber_done(struct rf_fiber *f)
{
	if (f && f->group)
		rf__group_leave(f, (int)(intptr_t)f->result);
}

RF_EXPORT int rf_group_create(struct rf_group **gp, int64_t deadline)
{
	struct rf_fiber *cur;
	struct rf_group *g;

	RF__GUARD();
	if (!gp)
		return -EINVAL;
	cur = rf__cur();
	if (!cur)
		return -EPERM;
	g = calloc(1, sizeof(*g));
	if (!g)
		return -ENOMEM;
	if (deadline < 0)
		deadline = RF_NO_DEADLINE;
	/* never past the deadlines of the groups the creator belongs to */
	if (cur->deadline >= 0 && (deadline < 0 || cur->deadline < deadline))
		deadline = cur->deadline;
	g->deadline = deadline;
	g->creator = cur;
	*gp = g;
	return 0;
}

RF_EXPORT int rf_group_spawn(struct rf_group *g, rf_task_fn fn, void *arg,
			     const struct rf_spawn_attr *attr)
{
	struct rf_spawn_attr a = { 0 };
	struct rf__group_task *t;
	int ret;

	RF__GUARD();
	if (!g || !fn)
		return -EINVAL;
	if (!rf__cur())
		return -EPERM;
	if (attr)
		a = *attr;
	a.detached = 1;
	t = malloc(sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->g = g;
	t->fn = fn;
	t->arg = arg;
	rf__wq_lock(&g->q);
	if (g->cancelled || g->waiting) {
		rf__wq_unlock(&g->q);
		free(t);
		return -ECANCELED;
	}
	g->live++;
	rf__wq_unlock(&g->q);
	ret = rf_spawn(NULL, rf__group_task, t, &a);
	if (ret) {
		struct rf__wakelist wl = RF__WAKELIST_INIT;

		free(t);
		rf__wq_lock(&g->q);
		if (--g->live == 0)
			rf__wq_take_first(&g->q, &wl, 0);
		rf__wq_unlock_wake(&g->q, &wl);
	}
	return ret;
}

RF_EXPORT int rf_group_cancel(struct rf_group *g)
{
	RF__GUARD();
	if (!g)
		return -EINVAL;
	rf__wq_lock(&g->q);
	rf__group_cancel_locked(g, -ECANCELED);
	rf__wq_unlock(&g->q);
	return 0;
}

RF_EXPORT int rf_group_wait(struct rf_group *g)
{
	struct rf__waiter wt;
	bool ending = false;	/* cancelled: wait, uncancellable, for the rest */
	int ret;

	RF__GUARD();
	if (!g)
		return -EINVAL;
	if (!rf__cur() || rf__cur() != g->creator)
		return -EPERM;
	rf__wq_lock(&g->q);
	if (g->waiting) {
		rf__wq_unlock(&g->q);
		return -EINVAL;
	}
	g->waiting = true;
	if (rf__load_relaxed(&rf__cur()->cancelled)) {
		/* -ECANCELED unless a failure came first, even with no member left */
		rf__group_cancel_locked(g, -ECANCELED);
		ending = true;
	}
	while (g->live) {
		if (!ending) {
			ret = rf__wq_park(&g->q, &wt, g->deadline, RF_TRACE_JOIN);
			if (ret && ret != -ETIMEDOUT && ret != -ECANCELED) {
				/*
				 * No timer could be armed (no ring: -ENOSYS):
				 * poll the deadline, letting the members run.
				 */
				rf_yield();
				if (g->deadline >= 0 && rf_now() >= g->deadline)
					ret = -ETIMEDOUT;
			}
			if (ret == -ETIMEDOUT || ret == -ECANCELED) {
				/* the deadline, or the creator was cancelled */
				rf__wq_lock(&g->q);
				rf__group_cancel_locked(g, ret);
				ending = true;
				continue;
			}
		} else if (rf__wq_park_nocancel(&g->q, &wt, RF_TRACE_JOIN) != 0) {
			/* the core would not park us: poll, letting members run */
			rf_yield();
		}
		rf__wq_lock(&g->q);
	}
	rf__wq_unlock(&g->q);
	ret = g->err;
	free(g);
	return ret;
}
