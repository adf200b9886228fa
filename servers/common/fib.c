// SPDX-License-Identifier: MIT
/*
 * fib.c - the seeds' Fibonacci numbers, for fibserver, httpserver's /fib/
 * and hogclient; see fib-common.h.  Part of libserve.a.
 */
#include <errno.h>

#include "fib-common.h"
#include "serve.h"

/*
 * noinline: gcc otherwise inlines the function into itself a few levels
 * deep, which makes it 2.5 times faster at -O2 and the time for a given N
 * depend on the compiler's mood; one call per level keeps the cost close to
 * the seeds' algorithm and to the timings hogclient's default N is chosen
 * from (gcc still turns the second call into a loop).
 */
__attribute__((noinline)) uint64_t fib_guarded(unsigned int n, struct fib_guard *g)
{
	if (n <= 2)
		return 1;
	if (n >= FIB_CHECK_N && (g->stopped || (g->stopped = g->give_up(g))))
		return 0;
	return fib_guarded(n - 1, g) + fib_guarded(n - 2, g);
}

int fib_work_give_up(struct fib_guard *g)
{
	struct fib_work *w = (struct fib_work *)g;
	int err = serve_abandoned(w->sc);

	if (!err && serve_now() > w->deadline)
		err = -ETIMEDOUT;
	return err;
}

uint64_t fib_reference(unsigned int n)
{
	uint64_t a = 1, b = 1, t;	/* fib(1), fib(2) */
	unsigned int i;

	for (i = 3; i <= n; i++) {
		t = a + b;
		a = b;
		b = t;
	}
	return b;
}
