/* SPDX-License-Identifier: MIT */
/*
 * contract.c - what ringfiber.h promises at its edges: deadlines that reach
 * past INT64_MAX.
 *
 * Checks that need io_uring are skipped where the runtime gets no ring.
 */
#include <sys/socket.h>

#include "helpers.h"

#define ND RF_NO_DEADLINE

#define LOAD(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define STORE(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)

static int have_ring;

/* ------------------------------------------------------- far deadlines */

static struct rf_event far_ev;
static int far_fds[2];

static void *far_setter(void *p)
{
	rf_sleep(rf_deadline_after(5 * MSEC));
	rf_event_set(&far_ev);
	return NULL;
}

static void *far_writer(void *p)
{
	rf_sleep(rf_deadline_after(5 * MSEC));
	return (void *)(intptr_t)rf_send(far_fds[1], "x", 1, 0, ND);
}

static void *far_sleeper(void *p)
{
	return (void *)(intptr_t)rf_sleep(rf_deadline_after(INT64_MAX));
}

static void *far_main(void *p)
{
	struct rf_fiber *f = NULL;
	char c = 0;
	void *res = NULL;

	rf_event_init(&far_ev);
	if (rf_spawn(&f, far_setter, NULL, NULL) == 0) {
		is_int(rf_event_wait(&far_ev, rf_deadline_after(INT64_MAX)), 0,
		       "rf_event_wait(rf_deadline_after(INT64_MAX)) waits for the event");
		rf_join(f, NULL, ND);
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, far_fds) == 0) {
		if (rf_spawn(&f, far_writer, NULL, NULL) == 0) {
			is_int(rf_recv(far_fds[0], &c, 1, 0, rf_deadline_after(INT64_MAX)), 1,
			       "rf_recv(rf_deadline_after(INT64_MAX)) waits for the data");
			rf_join(f, NULL, ND);
		}
		close(far_fds[0]);
		close(far_fds[1]);
	} else {
		ok(0, "socketpair()");
	}
	if (rf_spawn(&f, far_sleeper, NULL, NULL) == 0) {
		rf_sleep(rf_deadline_after(5 * MSEC));
		is_int(rf_cancel(f), 0, "rf_sleep(rf_deadline_after(INT64_MAX)) is still asleep");
		rf_join(f, &res, ND);
		is_int((intptr_t)res, -ECANCELED, "and ends only when cancelled -> -ECANCELED");
	}
	return NULL;
}

static void *sleep_2ms(void *p)
{
	return (void *)(intptr_t)rf_sleep(rf_deadline_after(2 * MSEC));
}

static void test_far_deadlines(void)
{
	struct rf_runtime_opts spin = { .workers = 1, .idle_spin_ns = INT64_MAX };
	int64_t now = rf_now();
	void *res = NULL;

	ok(rf_deadline_after(INT64_MAX) == INT64_MAX,
	   "rf_deadline_after(INT64_MAX) is INT64_MAX, not a wrapped past time");
	ok(rf_deadline_after(INT64_MAX - now / 2) == INT64_MAX,
	   "rf_deadline_after() of a duration reaching just past INT64_MAX is INT64_MAX");
	ok(rf_deadline_after(INT64_MAX - 2 * now - MSEC) > now,
	   "rf_deadline_after() of a long duration that fits is in the future");
	if (!have_ring) {
		tap_skip(6, "no io_uring ring here");
		return;
	}
	is_int(run_flags(0, far_main, NULL, NULL, NULL), 0, "rf_runtime_run() -> 0");
	/* an idle worker computes when to stop polling: now + idle_spin_ns */
	is_int(run_main(&spin, sleep_2ms, NULL, &res, NULL), 0,
	       "a run with idle_spin_ns INT64_MAX -> 0");
	is_int((intptr_t)res, 0, "its fiber slept 2 ms -> 0");
}

int main(void)
{
	struct rf_runtime *rt = NULL;
	struct rf_stats st;

	test_watchdog(120);
	if (rf_runtime_create(&rt, NULL) == 0 && rf_runtime_stats(rt, &st) == 0)
		have_ring = !!(st.features & RF_FEAT_RING);
	rf_runtime_destroy(rt);
	test_far_deadlines();
	return done_testing();
}
