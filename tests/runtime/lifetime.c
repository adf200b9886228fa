/* SPDX-License-Identifier: MIT */
/*
 * lifetime.c - a waiter may free what it waited on as soon as its wait
 * returns, even while the call that woke it is still returning
 * (ringfiber.h, "concurrency toolkit": the lifetime promise).
 *
 * For every primitive, a fiber on worker 1 allocates the object on the
 * heap, waits on it, and frees it the moment its wait returns; a waker (a
 * fiber on worker 0, then a plain thread) makes the wait end.  Thousands of
 * rounds, with both workers and the thread on one CPU (a wake-up then often
 * preempts the waker right after it made the waiter ready, so the waiter
 * frees the object before the waker's call has returned) and on two.  A
 * waker that touches the object after the wake-up is a heap-use-after-free:
 * AddressSanitizer reports it (make check-asan), ThreadSanitizer a race
 * with the free (make check-tsan); the plain build checks the results.
 *
 * The waiter sometimes waits and sometimes finds the object ready at once
 * (the waker came first): the promise holds either way.
 */
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>

#include "helpers.h"

#define ND RF_NO_DEADLINE

#define LOAD(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define STORE(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)
#define XCHG(p, v) __atomic_exchange_n((p), (v), __ATOMIC_ACQ_REL)
#define INC(p) __atomic_add_fetch((p), 1, __ATOMIC_ACQ_REL)

enum {
	K_MUTEX,	/* the waiter locks, the waker's unlock hands it over */
	K_COND,		/* the waker sets a flag under the mutex, signals (then or after) */
	K_SEM,		/* rf_sem_release() gives its permit to the waiter */
	K_WG,		/* rf_wg_done() brings the count to zero */
	K_EVENT,	/* rf_event_set() */
	K_RECV,		/* a send hands its value to the receiver */
	K_SEND,		/* a receive takes the sender's value */
	K_CLOSE,	/* rf_chan_close() ends a receive with -EPIPE */
	K_GROUP,	/* a group's member ends; the waiter's rf_group_wait() frees it */
	K_JOIN,		/* a fiber ends; the waiter's rf_join() frees it */
	K_NR,
};

/* Short names: `lifetime event cond` runs only those kinds. */
static const char *const kind_keys[K_NR] = {
	"mutex", "cond", "sem", "wg", "event", "recv", "send", "close", "group", "join",
};

static const char *const kind_names[K_NR] = {
	"rf_mutex_lock() then free the mutex it holds",
	"rf_cond_wait() then free the condition variable and its mutex",
	"rf_sem_acquire() then free the semaphore",
	"rf_wg_wait() then free the wait group",
	"rf_event_wait() then free the event",
	"rf_chan_recv() then rf_chan_destroy()",
	"rf_chan_send() then rf_chan_destroy()",
	"rf_chan_recv() of a closed channel then rf_chan_destroy()",
	"rf_group_wait() (which frees the group)",
	"rf_join() (which frees the fiber)",
};

/* The kinds whose waker is not the runtime itself. */
static bool has_waker(int kind)
{
	return kind != K_GROUP && kind != K_JOIN;
}

struct cond_obj {
	struct rf_mutex m;
	struct rf_cond c;
	int flag;		/* under m */
};

/* One run: a kind, a waker, some rounds. */
struct run {
	int kind;
	bool thread_waker;	/* a plain thread wakes, not a fiber */
	int rounds;
	int cpu;		/* the thread's CPU, or -1 */
	bool signal_unlocked;	/* K_COND: this round signals after unlocking */
	void *slot;		/* atomic: this round's object, for the waker */
	struct rf_sem published;	/* waiter -> fiber waker: slot is set */
	int bad;		/* atomic: rounds with a wrong result */
	int first_bad_rc;
	int waiting;		/* atomic: the waiter has not finished */
};

static int member_ok(void *p)
{
	return 0;
}

static void *fiber_ok(void *p)
{
	return p;
}

static void publish(struct run *r, void *obj)
{
	STORE(&r->slot, obj);
	if (!r->thread_waker)
		rf_sem_release(&r->published);
}

static void note(struct run *r, int rc, int want)
{
	if (rc != want && INC(&r->bad) == 1)
		r->first_bad_rc = rc;
}

/* One round of the waiter: make the object, wait on it, free it at once. */
static void wait_round(struct run *r)
{
	void *v = NULL;
	int rc;

	switch (r->kind) {
	case K_MUTEX: {
		struct rf_mutex *m = malloc(sizeof(*m));

		rf_mutex_init(m);
		rf_mutex_trylock(m);	/* the waker unlocks it for us */
		publish(r, m);
		rc = rf_mutex_lock(m, ND);
		free(m);		/* held: nobody else will use it */
		note(r, rc, 0);
		break;
	}
	case K_COND: {
		struct cond_obj *o = malloc(sizeof(*o));

		rf_mutex_init(&o->m);
		rf_cond_init(&o->c);
		o->flag = 0;
		rf_mutex_lock(&o->m, ND);
		publish(r, o);
		rc = 0;
		while (rc == 0 && !o->flag)
			rc = rf_cond_wait(&o->c, &o->m, ND);
		rf_mutex_unlock(&o->m);
		free(o);
		note(r, rc, 0);
		break;
	}
	case K_SEM: {
		struct rf_sem *s = malloc(sizeof(*s));

		rf_sem_init(s, 0);
		publish(r, s);
		rc = rf_sem_acquire(s, ND);
		free(s);
		note(r, rc, 0);
		break;
	}
	case K_WG: {
		struct rf_waitgroup *wg = malloc(sizeof(*wg));

		rf_wg_init(wg);
		rf_wg_add(wg, 1);
		publish(r, wg);
		rc = rf_wg_wait(wg, ND);
		free(wg);
		note(r, rc, 0);
		break;
	}
	case K_EVENT: {
		struct rf_event *e = malloc(sizeof(*e));

		rf_event_init(e);
		publish(r, e);
		rc = rf_event_wait(e, ND);
		free(e);
		note(r, rc, 0);
		break;
	}
	case K_RECV:
	case K_SEND:
	case K_CLOSE: {
		struct rf_chan *ch = NULL;

		rc = rf_chan_create(&ch, 0);
		if (rc) {
			note(r, rc, 0);
			break;
		}
		publish(r, ch);
		if (r->kind == K_SEND) {
			rc = rf_chan_send(ch, r, ND);
		} else {
			rc = rf_chan_recv(ch, &v, ND);
			if (rc == 0 && v != r)
				rc = -10001;
		}
		note(r, rf_chan_destroy(ch), 0);
		note(r, rc, r->kind == K_CLOSE ? -EPIPE : 0);
		break;
	}
	case K_GROUP: {
		struct rf_group *g = NULL;

		rc = rf_group_create(&g, ND);
		if (rc == 0)
			rc = rf_group_spawn(g, member_ok, NULL, NULL);
		if (g)
			rc = rc ? rc : rf_group_wait(g);
		note(r, rc, 0);
		break;
	}
	case K_JOIN: {
		struct rf_fiber *f = NULL;

		rc = rf_spawn_on(0, &f, fiber_ok, r, NULL);
		if (rc == 0) {
			rc = rf_join(f, &v, ND);
			if (rc == 0 && v != r)
				rc = -10002;
		}
		note(r, rc, 0);
		break;
	}
	}
}

/* What the waker does to end the round's wait, from a fiber or a thread. */
static void wake_round(struct run *r, void *obj)
{
	int rc = 0, n;

	switch (r->kind) {
	case K_MUTEX:
		rc = rf_mutex_unlock(obj);
		break;
	case K_COND: {
		struct cond_obj *o = obj;

		if (r->thread_waker) {
			/* rf_mutex_lock() needs a fiber */
			while (rf_mutex_trylock(&o->m) != 0)
				sched_yield();
		} else {
			rc = rf_mutex_lock(&o->m, ND);
		}
		o->flag = 1;
		if (r->signal_unlocked) {
			/* the waiter may free both once it has the mutex */
			rc = rc ? rc : rf_mutex_unlock(&o->m);
			rc = rc ? rc : rf_cond_signal(&o->c);
		} else {
			rc = rc ? rc : rf_cond_signal(&o->c);
			rc = rc ? rc : rf_mutex_unlock(&o->m);
		}
		r->signal_unlocked = !r->signal_unlocked;
		break;
	}
	case K_SEM:
		rc = rf_sem_release(obj);
		break;
	case K_WG:
		rc = rf_wg_done(obj);
		break;
	case K_EVENT:
		rc = rf_event_set(obj);
		break;
	case K_RECV:
		if (!r->thread_waker) {
			rc = rf_chan_send(obj, r, ND);
			break;
		}
		for (n = 0; (rc = rf_chan_trysend(obj, r)) == -EAGAIN; n++)
			sched_yield();
		break;
	case K_SEND: {
		void *v = NULL;

		if (!r->thread_waker)
			rc = rf_chan_recv(obj, &v, ND);
		else
			while ((rc = rf_chan_tryrecv(obj, &v)) == -EAGAIN)
				sched_yield();
		if (rc == 0 && v != r)
			rc = -10003;
		break;
	}
	case K_CLOSE:
		rc = rf_chan_close(obj);
		break;
	}
	note(r, rc, 0);
}

static void *waiter(void *p)
{
	struct run *r = p;
	int i;

	for (i = 0; i < r->rounds; i++)
		wait_round(r);
	STORE(&r->waiting, 0);
	return NULL;
}

static void *waker_fiber(void *p)
{
	struct run *r = p;
	int i;

	for (i = 0; i < r->rounds; i++) {
		if (rf_sem_acquire(&r->published, ND) != 0) {
			note(r, -10004, 0);
			break;
		}
		wake_round(r, XCHG(&r->slot, NULL));
	}
	return NULL;
}

static void *waker_thread(void *p)
{
	struct run *r = p;
	int i;

	if (r->cpu >= 0) {
		cpu_set_t set;

		CPU_ZERO(&set);
		CPU_SET(r->cpu, &set);
		pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
	}
	for (i = 0; i < r->rounds; i++) {
		void *obj;

		while (!(obj = XCHG(&r->slot, NULL)))
			sched_yield();
		wake_round(r, obj);
	}
	return NULL;
}

/*
 * Keeps a timer in flight while a plain thread is the waker: the deadlock
 * detector cannot know that a thread will wake the parked waiter.
 */
static void *ticker(void *p)
{
	struct run *r = p;

	while (LOAD(&r->waiting))
		rf_sleep(rf_deadline_after(MSEC));
	return NULL;
}

static void *run_main_fiber(void *p)
{
	static const struct rf_spawn_attr pinned = { .name = "lifetime", .pinned = 1 };
	struct run *r = p;
	struct rf_fiber *w = NULL, *k = NULL, *t = NULL;
	pthread_t th;
	bool thread = false;

	rf_sem_init(&r->published, 0);
	STORE(&r->waiting, 1);
	if (rf_spawn_on(1, &w, waiter, r, &pinned)) {
		note(r, -10005, 0);
		return NULL;
	}
	if (has_waker(r->kind) && !r->thread_waker) {
		if (rf_spawn_on(0, &k, waker_fiber, r, &pinned))
			note(r, -10006, 0);
	} else if (has_waker(r->kind)) {
		if (rf_spawn_on(0, &t, ticker, r, &pinned))
			note(r, -10007, 0);
		thread = pthread_create(&th, NULL, waker_thread, r) == 0;
		if (!thread)
			note(r, -10008, 0);
	}
	rf_join(w, NULL, ND);
	if (k)
		rf_join(k, NULL, ND);
	if (t)
		rf_join(t, NULL, ND);
	if (thread)
		pthread_join(th, NULL);
	return NULL;
}

/* ------------------------------------------------- found ready at once */

/*
 * A call that finds its object ready without waiting (a free mutex or
 * permit, a set event, a zero count) reads what a waker wrote under the
 * object's queue lock, maybe before that waker released it; the caller may
 * free the object as soon as the call returns, so the call must not return
 * before the lock is free.  That window is two instructions wide in a real
 * waker, so this part is white-box: it plays the waker inside its critical
 * section by holding the queue's lock word itself (struct rf_waitq.lock),
 * checks that the call does not return meanwhile, then lets go.
 */
enum { S_TRYLOCK, S_TRYACQUIRE, S_IS_SET, S_LOCK, S_ACQUIRE, S_WG_WAIT, S_EVENT_WAIT, S_NR };

static const char *const settle_names[S_NR] = {
	"rf_mutex_trylock() of a free mutex", "rf_sem_tryacquire() of a free permit",
	"rf_event_is_set() of a set event", "rf_mutex_lock() of a free mutex",
	"rf_sem_acquire() of a free permit", "rf_wg_wait() on a zero count",
	"rf_event_wait() on a set event",
};

struct settle {
	int which;
	struct rf_mutex m;
	struct rf_sem s;
	struct rf_waitgroup wg;
	struct rf_event e;
	int started, returned;	/* atomic */
	int rc;
};

static struct rf_waitq *settle_queue(struct settle *c)
{
	switch (c->which) {
	case S_TRYLOCK:
	case S_LOCK:
		return &c->m.q;
	case S_TRYACQUIRE:
	case S_ACQUIRE:
		return &c->s.q;
	case S_WG_WAIT:
		return &c->wg.q;
	default:
		return &c->e.q;
	}
}

static void *settle_call(void *p)
{
	struct settle *c = p;

	STORE(&c->started, 1);
	switch (c->which) {
	case S_TRYLOCK:
		c->rc = rf_mutex_trylock(&c->m);
		break;
	case S_TRYACQUIRE:
		c->rc = rf_sem_tryacquire(&c->s);
		break;
	case S_IS_SET:
		c->rc = rf_event_is_set(&c->e) == 1 ? 0 : -10010;
		break;
	case S_LOCK:
		c->rc = rf_mutex_lock(&c->m, ND);
		break;
	case S_ACQUIRE:
		c->rc = rf_sem_acquire(&c->s, ND);
		break;
	case S_WG_WAIT:
		c->rc = rf_wg_wait(&c->wg, ND);
		break;
	case S_EVENT_WAIT:
		c->rc = rf_event_wait(&c->e, ND);
		break;
	}
	STORE(&c->returned, 1);
	return NULL;
}

/* Wait @ms: in a fiber without holding its worker, else in the thread. */
static void pause_ms(int ms)
{
	if (rf_self())
		rf_sleep(rf_deadline_after(ms * MSEC));
	else
		usleep(ms * 1000);
}

static void settle_one(int which)
{
	static const struct rf_spawn_attr pinned = { .name = "settle", .pinned = 1 };
	struct settle c = { .which = which };
	struct rf_fiber *f = NULL;
	struct rf_waitq *q = settle_queue(&c);
	pthread_t th;
	bool thread = which <= S_IS_SET;
	int i;

	rf_mutex_init(&c.m);
	rf_sem_init(&c.s, 1);
	rf_wg_init(&c.wg);
	rf_event_init(&c.e);
	rf_event_set(&c.e);
	STORE(&q->lock, 1);	/* a waker made it ready and is still inside */
	if (thread ? pthread_create(&th, NULL, settle_call, &c) != 0 :
		     rf_spawn_on(1, &f, settle_call, &c, &pinned) != 0) {
		STORE(&q->lock, 0);
		ok(0, "%s", tn("start the caller of %s", settle_names[which]));
		return;
	}
	for (i = 0; i < 5000 && !LOAD(&c.started); i++)
		pause_ms(1);
	pause_ms(20);
	ok(!LOAD(&c.returned), "%s",
	   tn("%s does not return while the waker still holds the lock", settle_names[which]));
	STORE(&q->lock, 0);
	if (thread)
		pthread_join(th, NULL);
	else
		rf_join(f, NULL, ND);
	is_int(c.rc, 0, tn("%s -> 0 once the waker let go", settle_names[which]));
}

static void *settle_fibers(void *p)
{
	int which;

	for (which = S_LOCK; which < S_NR; which++)
		settle_one(which);
	return NULL;
}

static void test_settle(void)
{
	/* no watchdog: the caller spins on the other worker on purpose */
	struct rf_runtime_opts opts = { .workers = 2, .hog_ns = -1 };
	int which;

	test_config_name = "found ready";
	for (which = 0; which <= S_IS_SET; which++)
		settle_one(which);
	is_int(run_main(&opts, settle_fibers, NULL, NULL, NULL), 0,
	       tn("rf_runtime_run() -> 0"));
	test_config_name = NULL;
}

/* The first two CPUs this process may run on (-1 where there is none). */
static void two_cpus(int cpu[2])
{
	cpu_set_t set;
	int i, n = 0;

	cpu[0] = cpu[1] = -1;
	if (sched_getaffinity(0, sizeof(set), &set) != 0)
		return;
	for (i = 0; i < CPU_SETSIZE && n < 2; i++)
		if (CPU_ISSET(i, &set))
			cpu[n++] = i;
}

/* Is @kind among those named on the command line (all if none is)? */
static bool wanted(int argc, char **argv, int kind)
{
	int i;

	for (i = 1; i < argc; i++)
		if (strcmp(argv[i], kind_keys[kind]) == 0)
			return true;
	return argc < 2;
}

int main(int argc, char **argv)
{
	int cpu[2], c, kind, thread_waker;
	int rounds = test_quick() ? 1000 : 3000;

	test_watchdog(240);
	ring_or_skip_all();
	two_cpus(cpu);
	for (c = 0; c < 2; c++) {
		/* both workers (and the thread) on one CPU, then on two */
		int cpus[2] = { cpu[0], c ? cpu[1] : cpu[0] };
		struct rf_runtime_opts opts = { .workers = 2, .cpus = cpus, .ncpus = 2,
						.idle_spin_ns = -1 };

		if (cpu[0] < 0 || cpus[1] < 0) {
			tap_skip(1, c ? "fewer than two CPUs here" : "no CPU affinity here");
			continue;
		}
		for (kind = 0; kind < K_NR; kind++) {
			for (thread_waker = 0; thread_waker < 2; thread_waker++) {
				struct run r = { .kind = kind, .thread_waker = thread_waker,
						 .rounds = rounds, .cpu = cpus[1] };
				char name[160];
				int rc;

				if ((thread_waker && !has_waker(kind)) || !wanted(argc, argv, kind))
					continue;
				snprintf(name, sizeof(name), "%s %s, %s", c ? "two CPUs" : "one CPU",
					 thread_waker ? "thread wakes" : "fiber wakes",
					 kind_names[kind]);
				test_config_name = name;
				rc = run_main(&opts, run_main_fiber, &r, NULL, NULL);
				is_int(rc, 0, tn("rf_runtime_run() -> 0"));
				is_int(r.bad, 0, tn("%d rounds, every result as expected", rounds));
				if (r.bad)
					tap_diag("  the first wrong result: %d", r.first_bad_rc);
			}
		}
	}
	test_config_name = NULL;
	test_settle();
	return done_testing();
}
