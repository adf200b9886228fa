/* SPDX-License-Identifier: MIT */
/*
 * deadlock.c - deadlock detection: the one join-cycle test of the tree, on
 * every kind of runtime.
 *
 * Also run under ThreadSanitizer (the two-worker cycles) and on aarch64
 * under qemu-user (the configurations without a ring; those with one skip
 * where the runtime gets none).
 */
#include "helpers.h"

#define ND RF_NO_DEADLINE

/*
 * A join cycle (a joins b, b joins a) is a deadlock once nothing else can
 * happen: the runtime cancels the cycle once and rf_runtime_run() says
 * -EDEADLK.  The same test on every kind of runtime: without a ring (the
 * only ones qemu-user can run), with a ring under each set of ring flags,
 * where a 20 ms sleeper must finish first, untouched, and on two workers,
 * the cycle spread across them.
 */
struct cycle_config {
	const char *name;
	unsigned int flags;
	unsigned int workers;
};

static const struct cycle_config cycle_configs[] = {
	{ "no ring", RF_RT_NO_RING, 1 },
	{ "no ring, mprotect guards", RF_RT_NO_RING | RF_RT_NO_GUARD_MADVISE, 1 },
	{ "no ring, 2 workers", RF_RT_NO_RING, 2 },
	{ "ring", 0, 1 },
	{ "ring, no DEFER_TASKRUN", RF_RT_NO_DEFER_TASKRUN, 1 },
	{ "ring, no DEFER_TASKRUN, no COOP_TASKRUN",
	  RF_RT_NO_DEFER_TASKRUN | RF_RT_NO_COOP_TASKRUN, 1 },
	{ "ring, 2 workers", 0, 2 },
};

static struct rf_fiber *cyc_a, *cyc_b;
static int cyc_rc_a, cyc_rc_b, cyc_sleep_rc;

static void *cyc_a_fn(void *arg)
{
	cyc_rc_a = rf_join(cyc_b, NULL, ND);
	return NULL;
}

static void *cyc_b_fn(void *arg)
{
	cyc_rc_b = rf_join(cyc_a, NULL, ND);
	return NULL;
}

static void *cyc_sleeper(void *arg)
{
	cyc_sleep_rc = rf_sleep(rf_deadline_after(20 * MSEC));
	return NULL;
}

/* a on the first worker, b on the last, and with a ring the sleeper. */
static void *cycle_main(void *arg)
{
	const struct cycle_config *cfg = arg;
	struct rf_spawn_attr det = { .detached = 1 };
	int rc;

	rc = rf_spawn_on(0, &cyc_a, cyc_a_fn, NULL, NULL);
	rc |= rf_spawn_on(cfg->workers - 1, &cyc_b, cyc_b_fn, NULL, NULL);
	if (!(cfg->flags & RF_RT_NO_RING)) {
		rc |= rf_spawn(NULL, cyc_sleeper, NULL, &det);
		is_int(rc, 0, tn("spawn two fibers that join each other, and a 20 ms sleeper"));
	} else {
		is_int(rc, 0, tn("spawn two fibers that join each other"));
	}
	return NULL;
}

static void test_join_cycle(const struct cycle_config *cfg)
{
	struct rf_runtime_opts opts = { .flags = cfg->flags, .workers = cfg->workers };
	int with_ring = !(cfg->flags & RF_RT_NO_RING);
	struct rf_stats st;
	int rc;

	if (with_ring && !runtime_has_ring(&opts)) {
		/* spawn, run, sleeper, the joins (one check on 2 workers), fibers */
		tap_skip(cfg->workers == 1 ? 6 : 5, tn("no io_uring ring here"));
		return;
	}
	cyc_rc_a = cyc_rc_b = cyc_sleep_rc = 1;
	rc = run_main(&opts, cycle_main, (void *)cfg, NULL, &st);
	is_int(rc, -EDEADLK, tn("a join cycle: rf_runtime_run() -> -EDEADLK"));
	if (with_ring)
		is_int(cyc_sleep_rc, 0, tn("the sleeper was not taken for part of the deadlock"));
	if (cfg->workers == 1) {
		is_int(cyc_rc_a, -ECANCELED, tn("the first fiber of the cycle was cancelled"));
		is_int(cyc_rc_b, -ECANCELED, tn("the second fiber of the cycle was cancelled"));
	} else {
		/* Both are cancelled; one may see the other finish first. */
		ok((cyc_rc_a == -ECANCELED || cyc_rc_a == 0) &&
		   (cyc_rc_b == -ECANCELED || cyc_rc_b == 0) &&
		   (cyc_rc_a == -ECANCELED || cyc_rc_b == -ECANCELED), "%s",
		   tn("the cycle was cancelled, both joins returned (%d, %d)", cyc_rc_a, cyc_rc_b));
	}
	is_int(st.fibers, 0, tn("no fiber is left after the run"));
}

int main(void)
{
	size_t i;

	test_watchdog(120);
	for (i = 0; i < ARRAY_SIZE(cycle_configs); i++) {
		test_config_name = cycle_configs[i].name;
		test_join_cycle(&cycle_configs[i]);
	}
	test_config_name = NULL;
	return done_testing();
}
