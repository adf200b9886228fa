// SPDX-License-Identifier: MIT
/*
 * hog.c - a fiber that computes without yielding does not starve the
 * others: the watchdog reports it once, and the fibers queued behind it on
 * its worker run on the other worker meanwhile.
 *
 * Not run under ThreadSanitizer: TSan delays signals until the interrupted
 * thread makes a call it intercepts, which a hog never does.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "helpers.h"

#define HOG_MS 300

static int hog_running;			/* atomic */
static int ticks_during[2];		/* atomic: ticker wake-ups while the hog ran */
static volatile uint64_t sink;

static void *hog(void *arg)
{
	int64_t end = rf_now() + HOG_MS * MSEC;
	uint64_t n = 0;

	__atomic_store_n(&hog_running, 1, __ATOMIC_SEQ_CST);
	while (rf_now() < end)
		n++;		/* no yield, no blocking call */
	sink = n;
	__atomic_store_n(&hog_running, 0, __ATOMIC_SEQ_CST);
	return NULL;
}

static int ticker_first_worker = -1;

static void *ticker(void *arg)
{
	ticker_first_worker = rf_worker_id();
	for (int i = 0; i < 2 * HOG_MS; i++) {
		if (rf_sleep(rf_deadline_after(MSEC)) != 0)
			break;
		if (__atomic_load_n(&hog_running, __ATOMIC_SEQ_CST))
			__atomic_add_fetch(&ticks_during[rf_worker_id() & 1], 1, __ATOMIC_RELAXED);
	}
	return NULL;
}

static void *hog_main(void *arg)
{
	static const struct rf_spawn_attr hog_attr = { .name = "the-hog" };
	struct rf_fiber *h, *t;

	/*
	 * The ticker parks in a sleep on this worker's ring first; the hog then
	 * runs here.  The ticker's completion waits in this worker's ring: only
	 * the watchdog's rescue can get it to the other worker.
	 */
	if (rf_spawn(&t, ticker, NULL, NULL))
		return (void *)1;
	rf_yield();
	if (rf_spawn(&h, hog, NULL, &hog_attr))
		return (void *)1;
	rf_join(h, NULL, RF_NO_DEADLINE);
	rf_join(t, NULL, RF_NO_DEADLINE);
	return NULL;
}

/* Run with stderr going to a file; return what was written there. */
static int run_capturing(const struct rf_runtime_opts *opts, struct rf_stats *st, char *out,
			 size_t outlen)
{
	char path[] = "/tmp/rf-hog-XXXXXX";
	int fd = mkstemp(path), saved = dup(STDERR_FILENO), rc;
	ssize_t n;

	out[0] = '\0';
	if (fd < 0 || saved < 0)
		return -errno;
	unlink(path);
	fflush(stderr);
	dup2(fd, STDERR_FILENO);
	memset(ticks_during, 0, sizeof(ticks_during));
	rc = run_main(opts, hog_main, NULL, NULL, st);
	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	close(saved);
	n = pread(fd, out, outlen - 1, 0);
	out[n > 0 ? n : 0] = '\0';
	close(fd);
	return rc;
}

int main(void)
{
	struct rf_runtime_opts opts = { .workers = 2, .hog_ns = 20 * MSEC };
	struct rf_stats st;
	char out[1024];
	int rc;

	test_watchdog(60);
	ring_or_skip_all();

	rc = run_capturing(&opts, &st, out, sizeof(out));
	is_int(rc, 0, "2 workers: the run with a hog ends");
	is_int((int)st.hogs, 1, "the watchdog counted the hog once");
	ok(strstr(out, "\"the-hog\"") && strstr(out, "on worker 0") && strstr(out, " ms "),
	   "it reported the fiber's name, its worker and how long (%s)", out);
	is_int(ticker_first_worker, 0, "the ticker first parked on the hog's worker");
	ok(ticks_during[1] > 0, "the fiber queued behind it ran on worker 1 meanwhile (%d ticks)",
	   ticks_during[1]);
	is_int(ticks_during[0], 0, "and not on the hog's worker");

	opts.workers = 1;
	rc = run_capturing(&opts, &st, out, sizeof(out));
	is_int(rc, 0, "1 worker: the run ends");
	is_int((int)st.hogs, 1, "the hog is reported with one worker too");
	is_int(ticks_during[0] + ticks_during[1], 0, "nobody else can run meanwhile");

	opts.workers = 2;
	opts.hog_ns = -1;
	rc = run_capturing(&opts, &st, out, sizeof(out));
	is_int(rc, 0, "no watchdog: the run ends");
	is_int((int)st.hogs, 0, "nothing reported");
	is_str(out, "", "nothing printed");
	return done_testing();
}
