// SPDX-License-Identifier: MIT
/*
 * user-prog.c - a program of a user's, built against an installed
 * ringfiber with pkg-config (tests/build/install.sh: make install;
 * tests/build/deb.sh: the Debian packages): a fiber that sleeps through
 * io_uring, a channel between two fibers, a join.  It prints "ok" and
 * exits 0 only if each step did.
 */
#include <ringfiber.h>
#include <stdio.h>

static void *producer(void *arg)
{
	struct rf_chan *ch = arg;

	if (rf_sleep(rf_deadline_after(1000000)))
		return "sleep failed";
	return rf_chan_send(ch, "hello", RF_NO_DEADLINE) ? "send failed" : NULL;
}

static void *main_fiber(void *arg)
{
	struct rf_chan *ch;
	struct rf_fiber *f;
	void *got = NULL, *res = "join failed";

	if (rf_chan_create(&ch, 0))
		return "rf_chan_create failed";
	if (rf_spawn(&f, producer, ch, NULL))
		return "rf_spawn failed";
	if (rf_chan_recv(ch, &got, RF_NO_DEADLINE) || !got)
		return "recv failed";
	rf_join(f, &res, RF_NO_DEADLINE);
	rf_chan_destroy(ch);
	return res;
}

int main(void)
{
	struct rf_runtime *rt;
	void *res = "not run";

	if (rf_runtime_create(&rt, NULL))
		return 1;
	rf_runtime_run(rt, main_fiber, NULL, &res);
	rf_runtime_destroy(rt);
	puts(res ? (char *)res : "ok");
	return res != NULL;
}
