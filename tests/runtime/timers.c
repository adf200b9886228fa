// SPDX-License-Identifier: MIT
/*
 * timers.c - deadlines: sleeps and event waits with a deadline end at
 * their deadline, never before, in deadline order, unless something ends
 * them first, and ending them early leaves nothing behind.
 *
 * Each worker keeps the deadlines of its sleeping and waiting fibers in a
 * heap, with one kernel timer for the earliest (userspace/src/timer.c):
 * these checks churn that heap from many fibers on two workers, with
 * wake-ups and cancellations from the other worker racing the deadlines.
 * This program also runs under ThreadSanitizer (make check-tsan).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "helpers.h"

#define USEC 1000LL

static unsigned int rnd(unsigned int *s)
{
	*s = *s * 1103515245u + 12345u;
	return *s >> 16;
}

static unsigned int scale(unsigned int n)
{
	return test_quick() ? n / 10 : n;
}

/* ------------------------------------------------- sleeps in any order */

struct churn {
	unsigned int sleeps_each;
	unsigned long done;	/* atomic: sleeps that returned 0 */
	unsigned long early;	/* atomic: of which before their deadline */
	unsigned long other;	/* atomic: sleeps that returned anything else */
};

static void *churn_sleeper(void *arg)
{
	struct churn *c = arg;
	unsigned int seed = (unsigned int)(uintptr_t)rf_self();

	for (unsigned int i = 0; i < c->sleeps_each; i++) {
		/* from 1 ms ago to 3 ms ahead: the earliest changes all the time */
		int64_t dl = rf_now() + (int64_t)(rnd(&seed) % 4000) * USEC - 1000 * USEC;
		int rc = rf_sleep(dl);

		if (rc) {
			__atomic_add_fetch(&c->other, 1, __ATOMIC_RELAXED);
			continue;
		}
		__atomic_add_fetch(&c->done, 1, __ATOMIC_RELAXED);
		if (rf_now() < dl)
			__atomic_add_fetch(&c->early, 1, __ATOMIC_RELAXED);
	}
	return NULL;
}

static void *churn_main(void *arg)
{
	struct churn *c = arg;
	unsigned int n = scale(400);
	struct rf_fiber **f = calloc(n, sizeof(*f));
	int rc = 0;

	if (!f)
		return (void *)1;
	for (unsigned int i = 0; i < n && !rc; i++)
		rc = rf_spawn_on(i % 2, &f[i], churn_sleeper, c, NULL);
	for (unsigned int i = 0; i < n; i++)
		if (f[i])
			rf_join(f[i], NULL, RF_NO_DEADLINE);
	free(f);
	return rc ? (void *)1 : NULL;
}

static void test_churn(void)
{
	struct rf_runtime_opts opts = { .workers = 2 };
	struct churn c = { .sleeps_each = 20 };
	struct rf_stats st;
	void *res = (void *)1;
	unsigned int n = scale(400);
	int rc;

	rc = run_main(&opts, churn_main, &c, &res, &st);
	is_int(rc, 0, "sleeps with random deadlines on two workers: the run returns 0");
	ok(res == NULL, "every sleeper spawned");
	is_int(c.done, (long long)n * c.sleeps_each, "every rf_sleep() returned 0");
	is_int(c.other, 0, "none returned anything else");
	is_int(c.early, 0, "none returned before its deadline");
	is_int(st.inflight, 0, "nothing in flight after the run");
	is_int(st.fibers, 0, "every fiber freed");
}

/* ----------------------------------------------- in order of deadline */

#define ORDERED 200

/*
 * The sleepers wait for the go before they take their deadlines, so that
 * the deadlines start when every sleeper is there: on the debug kernel
 * main was preempted as a hog 90 ms into spawning them, and those spawned
 * after that started past the deadlines they had been given.  One that
 * still starts past its deadline (a slow machine) returns at once, so it
 * is counted apart, and the order is checked among the others.
 */
static int order_log[ORDERED];
static int order_n, order_late;
static struct rf_event order_go = RF_EVENT_INIT;
static int64_t order_base;

static void *ordered_sleeper(void *arg)
{
	int i = (int)(intptr_t)arg;
	/* i's deadline: a permutation of 0..ORDERED-1, 50 µs apart */
	int slot = (i * 73) % ORDERED;
	int64_t deadline;

	rf_event_wait(&order_go, RF_NO_DEADLINE);
	deadline = order_base + slot * 50 * USEC;
	if (rf_now() >= deadline)
		order_late++;
	else if (rf_sleep(deadline) == 0)
		order_log[order_n++] = slot;
	return NULL;
}

static void *ordered_main(void *arg)
{
	struct rf_fiber *f[ORDERED];

	(void)arg;
	for (int i = 0; i < ORDERED; i++)
		if (rf_spawn(&f[i], ordered_sleeper, (void *)(intptr_t)i, NULL))
			return (void *)1;
	rf_yield();	/* one worker: every sleeper waits for the go now */
	order_base = rf_now() + 20 * MSEC;
	rf_event_set(&order_go);
	for (int i = 0; i < ORDERED; i++)
		rf_join(f[i], NULL, RF_NO_DEADLINE);
	return NULL;
}

static int cmp_int(const void *a, const void *b)
{
	return *(const int *)a - *(const int *)b;
}

static void test_order(void)
{
	struct rf_runtime_opts opts = { .workers = 1 };
	int want[ORDERED];
	void *res = (void *)1;

	is_int(run_main(&opts, ordered_main, NULL, &res, NULL), 0,
	       "200 sleepers with deadlines 50 µs apart, spawned out of order: run returns 0");
	is_int(order_n + order_late, ORDERED, "each one slept to its deadline or started late");
	if (order_late)
		tap_diag("%d of %d sleepers started after their deadline", order_late, ORDERED);
	memcpy(want, order_log, sizeof(want));
	qsort(want, (size_t)order_n, sizeof(want[0]), cmp_int);
	if (order_n >= 2)
		is_seq(order_log, order_n, want, order_n,
		       "they woke in the order of their deadlines");
	else
		tap_skip(1, "every sleeper started after its deadline: nothing to order");
}

/* ------------------- in order, with random deadlines and cancellations */

/*
 * One worker: sleepers with random deadlines, a third of them cancelled at
 * random moments, which takes them out of the middle of the heap.  Those
 * that reach their deadline must wake in the order of their deadlines
 * (those that started sleeping only after it, on a loaded machine, wake at
 * once and are left out).
 */
struct shuffled {
	unsigned int n;
	int64_t *deadline;
	struct rf_fiber **f;
	struct rf_event go;
	int64_t *woke;		/* the deadlines, in the order their sleepers woke */
	unsigned int nwoke;
	unsigned int late;	/* sleepers that started after their deadline */
	unsigned int cancelled, other;
};

static struct shuffled *shuffled_now;

static void *shuffled_sleeper(void *arg)
{
	struct shuffled *sh = shuffled_now;
	unsigned int i = (unsigned int)(uintptr_t)arg;
	bool late;
	int rc;

	rf_event_wait(&sh->go, RF_NO_DEADLINE);
	late = rf_now() >= sh->deadline[i];
	rc = rf_sleep(sh->deadline[i]);
	if (rc == 0 && late)
		sh->late++;
	else if (rc == 0)
		sh->woke[sh->nwoke++] = sh->deadline[i];
	else if (rc == -ECANCELED)
		sh->cancelled++;
	else
		sh->other++;
	return NULL;
}

static void *shuffled_main(void *arg)
{
	struct shuffled *sh = arg;
	unsigned int seed = 12345;
	int64_t start;

	shuffled_now = sh;
	for (unsigned int i = 0; i < sh->n; i++)
		if (rf_spawn(&sh->f[i], shuffled_sleeper, (void *)(uintptr_t)i, NULL))
			return (void *)1;
	/* every sleeper waits for the go: the deadlines start from now */
	rf_yield();
	start = rf_now() + 10 * MSEC;
	for (unsigned int i = 0; i < sh->n; i++)
		sh->deadline[i] = start + (int64_t)(rnd(&seed) % 40000) * USEC;
	rf_event_set(&sh->go);
	for (unsigned int i = 0; i < sh->n; i++) {
		if (rnd(&seed) % 3)
			continue;
		rf_sleep(rf_deadline_after((int64_t)(rnd(&seed) % 100) * USEC));
		rf_cancel(sh->f[rnd(&seed) % sh->n]);
	}
	for (unsigned int i = 0; i < sh->n; i++)
		rf_join(sh->f[i], NULL, RF_NO_DEADLINE);
	return NULL;
}

static void test_shuffled(void)
{
	struct rf_runtime_opts opts = { .workers = 1 };
	struct shuffled sh = { .n = scale(2000) };
	unsigned int disorder = 0;
	struct rf_stats st;
	void *res = (void *)1;

	sh.deadline = calloc(sh.n, sizeof(*sh.deadline));
	sh.f = calloc(sh.n, sizeof(*sh.f));
	sh.woke = calloc(sh.n, sizeof(*sh.woke));
	if (!sh.deadline || !sh.f || !sh.woke) {
		ok(0, "calloc()");
		return;
	}
	is_int(run_main(&opts, shuffled_main, &sh, &res, &st), 0,
	       "random deadlines, random cancellations, one worker: the run returns 0");
	ok(res == NULL, "every sleeper spawned");
	for (unsigned int i = 1; i < sh.nwoke; i++)
		disorder += sh.woke[i] < sh.woke[i - 1];
	tap_diag("%u sleepers: %u reached their deadline, %u were cancelled, %u started late",
		 sh.n, sh.nwoke, sh.cancelled, sh.late);
	is_int(sh.nwoke + sh.cancelled + sh.late, sh.n,
	       "each one reached its deadline or was cancelled");
	is_int(sh.other, 0, "none returned anything else");
	is_int(disorder, 0, "those that reached it woke in the order of their deadlines");
	ok(sh.cancelled > 0 && sh.nwoke > 0, "both happened");
	is_int(st.inflight, 0, "nothing in flight after the run");
	free(sh.deadline);
	free(sh.f);
	free(sh.woke);
}

/* ------------------------- woken, cancelled or timed out, from anywhere */

#define RACERS 64

/*
 * Most racers race the meddler; in each eight, one is left alone (it can
 * only time out) and one waits with a far deadline (only the meddler can end
 * it), so that both outcomes are seen however late the meddler runs: under
 * TSan on a loaded host it once started after every short deadline passed.
 */
enum racer_role { RACER_RANDOM, RACER_UNTOUCHED, RACER_FAR };
#define RACER_FAR_NS (60 * 1000 * MSEC)

struct racer {
	struct rf_event ev;
	struct rf_fiber *f;
	int64_t deadline;
	int rc;
	int64_t returned;	/* rf_now() when the call returned */
	enum racer_role role;
	int kind;		/* 0: rf_event_wait() with a deadline, 1: rf_sleep() */
	unsigned int set;	/* atomic: the event was set */
	unsigned int cancelled;	/* atomic: rf_cancel() was called on it */
};

static struct racer racers[RACERS];

static void *racer_fiber(void *arg)
{
	struct racer *r = arg;

	r->rc = r->kind ? rf_sleep(r->deadline) : rf_event_wait(&r->ev, r->deadline);
	r->returned = rf_now();
	return NULL;
}

/* On the other worker: sets events and cancels fibers at random moments. */
static void *meddler(void *arg)
{
	unsigned int seed = (unsigned int)(uintptr_t)arg;

	for (int i = 0; i < RACERS; i++) {
		struct racer *r = &racers[(i * 37) % RACERS];

		if (r->role == RACER_UNTOUCHED)
			continue;
		rf_sleep(rf_deadline_after((int64_t)(rnd(&seed) % 300) * USEC));
		if (rnd(&seed) % 2) {
			__atomic_store_n(&r->cancelled, 1, __ATOMIC_RELAXED);
			rf_cancel(r->f);
		} else {
			__atomic_store_n(&r->set, 1, __ATOMIC_RELAXED);
			rf_event_set(&r->ev);
		}
	}
	return NULL;
}

static void *race_main(void *arg)
{
	unsigned int seed = (unsigned int)(uintptr_t)arg;
	static const struct rf_spawn_attr on0 = { .pinned = 1 };
	struct rf_fiber *m;

	for (int i = 0; i < RACERS; i++) {
		struct racer *r = &racers[i];

		memset(r, 0, sizeof(*r));
		r->role = i % 8 == 0 ? RACER_UNTOUCHED : i % 8 == 1 ? RACER_FAR : RACER_RANDOM;
		/* a far one waits for an event: the meddler may set it or cancel */
		r->kind = r->role == RACER_FAR ? 0 : (int)(rnd(&seed) % 2);
		/* some before the meddler gets to them, some after */
		r->deadline = rf_deadline_after(r->role == RACER_FAR ? RACER_FAR_NS :
						(int64_t)(rnd(&seed) % 20000) * USEC);
		if (rf_spawn_on(0, &r->f, racer_fiber, r, &on0))
			return (void *)1;
	}
	if (rf_spawn_on(1, &m, meddler, (void *)(uintptr_t)seed, &on0))
		return (void *)1;
	rf_join(m, NULL, RF_NO_DEADLINE);
	for (int i = 0; i < RACERS; i++)
		rf_join(racers[i].f, NULL, RF_NO_DEADLINE);
	return NULL;
}

static void test_races(void)
{
	struct rf_runtime_opts opts = { .workers = 2 };
	unsigned int rounds = scale(30), wrong = 0, early = 0;
	unsigned int timed_out = 0, woken = 0, cancelled = 0;
	unsigned int untouched = 0, untouched_timed_out = 0, far = 0, far_ended = 0;
	char last[160] = "";

	for (unsigned int round = 0; round < rounds; round++) {
		struct rf_stats st;
		void *res = (void *)1;
		int rc = run_main(&opts, race_main, (void *)(uintptr_t)(round + 1), &res, &st);

		if (rc || res || st.inflight || st.fibers) {
			wrong++;
			snprintf(last, sizeof(last), "round %u: run %d, %p, inflight %" PRIu64
				 ", fibers %" PRIu64, round, rc, res, st.inflight, st.fibers);
			continue;
		}
		for (int i = 0; i < RACERS; i++) {
			struct racer *r = &racers[i];
			bool deadline_ok = r->returned >= r->deadline;
			int timeout_rc = r->kind ? 0 : -ETIMEDOUT;
			bool good;

			if (r->role == RACER_UNTOUCHED) {
				untouched++;
				untouched_timed_out += r->rc == timeout_rc;
			} else if (r->role == RACER_FAR) {
				far++;
				far_ended += r->rc != timeout_rc;
			}
			if (r->rc == timeout_rc) {
				timed_out++;
				good = deadline_ok;
				if (!good)
					early++;
			} else if (r->rc == -ECANCELED) {
				cancelled++;
				good = r->cancelled;
			} else if (r->rc == 0 && !r->kind) {
				woken++;
				good = r->set;
			} else {
				good = false;
			}
			if (!good) {
				wrong++;
				snprintf(last, sizeof(last), "round %u, %s %d: returned %d (set %u, "
					 "cancelled %u, %" PRId64 " µs after its deadline)", round,
					 r->kind ? "sleeper" : "waiter", i, r->rc, r->set,
					 r->cancelled, (int64_t)((r->returned - r->deadline) / USEC));
			}
		}
	}
	tap_diag("%u rounds of %d waits: %u timed out, %u woken, %u cancelled", rounds, RACERS,
		 timed_out, woken, cancelled);
	is_int(wrong, 0, "each wait ended by its deadline, its event or its cancellation, "
	       "and as that one says; every run left nothing in flight");
	if (wrong)
		tap_diag("  the last wrong one: %s", last);
	is_int(early, 0, "no deadline came early");
	ok(untouched && untouched_timed_out == untouched && far && far_ended == far,
	   "both outcomes happened: the racers left alone timed out (%u of %u), those with a "
	   "60-s deadline were woken or cancelled (%u of %u)", untouched_timed_out, untouched,
	   far_ended, far);
}

int main(void)
{
	ring_or_skip_all();
	test_watchdog(240);
	test_churn();
	test_order();
	test_shuffled();
	test_races();
	return done_testing();
}
