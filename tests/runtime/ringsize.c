// SPDX-License-Identifier: MIT
/*
 * ringsize.c - every small submission queue size is either refused by
 * rf_runtime_create() with -EINVAL, or works, deadlines included.
 *
 * A call with a deadline queues its request and a linked timer side by
 * side: a queue of one entry cannot hold the pair (before the runtime
 * refused it, every such call hung).  Each size that is accepted runs, on
 * two workers, under each wake-up back-end this machine has (their armed
 * requests share the queue), with the signal read worker 0 keeps armed:
 * requests with deadlines that complete and that time out, event waits with
 * deadlines, more such requests at once than the queue holds, and a
 * cross-worker wake-up.
 */
#include <errno.h>
#include <unistd.h>

#include "helpers.h"

/* More requests with deadlines in flight at once than the queues hold. */
#define MANY 24

static int pipe_rd = -1;

struct result {
	int nop, read, sleep, event, many_timed_out, cross;
};

static void *read_until_deadline(void *arg)
{
	char c;

	(void)arg;
	return (void *)(intptr_t)rf_read(pipe_rd, &c, 1, -1, rf_deadline_after(20 * MSEC));
}

static void *wait_long(void *arg)
{
	return (void *)(intptr_t)rf_event_wait(arg, rf_deadline_after(10000 * MSEC));
}

static void *small_ring_main(void *arg)
{
	struct result *r = arg;
	struct rf_fiber *f[MANY], *waiter;
	struct rf_event ev, never;
	char c;
	void *res;
	int i, n = 0;

	r->nop = rf_nop(rf_deadline_after(1000 * MSEC));
	r->read = (int)rf_read(pipe_rd, &c, 1, -1, rf_deadline_after(10 * MSEC));
	r->sleep = rf_sleep(rf_deadline_after(MSEC));
	rf_event_init(&never);
	r->event = rf_event_wait(&never, rf_deadline_after(10 * MSEC));

	for (i = 0; i < MANY; i++)
		if (rf_spawn(&f[i], read_until_deadline, NULL, NULL) == 0)
			n++;
	r->many_timed_out = 0;
	for (i = 0; i < n; i++)
		if (rf_join(f[i], &res, RF_NO_DEADLINE) == 0 && (intptr_t)res == -ETIMEDOUT)
			r->many_timed_out++;

	rf_event_init(&ev);
	r->cross = -1;
	if (rf_spawn_on(1, &waiter, wait_long, &ev, NULL) == 0) {
		rf_sleep(rf_deadline_after(2 * MSEC));
		rf_event_set(&ev);
		if (rf_join(waiter, &res, RF_NO_DEADLINE) == 0)
			r->cross = (int)(intptr_t)res;
	}
	return NULL;
}

static void run_size(unsigned int entries)
{
	int valid = entries >= 2 && !(entries & (entries - 1));

	for (size_t b = 0; b < ARRAY_SIZE(wake_backends); b++) {
		struct rf_runtime_opts opts = {
			.ring_entries = entries,
			.workers = 2,
			.flags = RF_RT_SHUTDOWN_ON_SIGNAL,
			.wake_backend = wake_backends[b].id,
		};
		struct result r;
		struct rf_runtime *rt = NULL;
		int rc = rf_runtime_create(&rt, &opts);

		if (rc == -EOPNOTSUPP && valid)
			continue;	/* not on this machine */
		if (!valid) {
			/* documented: a power of two from 2 to 32768 */
			ok(rc == -EINVAL, "ring_entries %u: rf_runtime_create() -> -EINVAL (got %d)",
			   entries, rc);
			if (rc)
				return;	/* refused before any back-end is looked at */
			/* accepted anyway: it must then work (the old 1 hung here) */
		} else if (!ok(rc == 0, "ring_entries %u (%s): rf_runtime_create() -> 0 (got %d)",
			       entries, wake_backends[b].name, rc)) {
			continue;
		}
		memset(&r, 0x55, sizeof(r));
		rc = rf_runtime_run(rt, small_ring_main, &r, NULL);
		rf_runtime_destroy(rt);
		ok(rc == 0 && r.nop == 0 && r.read == -ETIMEDOUT && r.sleep == 0 &&
		   r.event == -ETIMEDOUT && r.many_timed_out == MANY && r.cross == 0,
		   "ring_entries %u (%s): deadlines work (run %d, nop %d, read %d, sleep %d, "
		   "event %d, %d of %d timed out, cross-worker %d)", entries, wake_backends[b].name,
		   rc, r.nop, r.read, r.sleep, r.event, r.many_timed_out, MANY, r.cross);
	}
}

int main(void)
{
	int p[2];

	test_watchdog(60);
	ring_or_skip_all();
	if (!ok(pipe(p) == 0, "a pipe nobody writes to"))
		return done_testing();
	pipe_rd = p[0];	/* never written: every read waits for its deadline */
	for (unsigned int n = 1; n <= 17; n++)
		run_size(n);
	run_size(32);
	close(p[0]);
	close(p[1]);
	return done_testing();
}
