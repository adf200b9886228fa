/* SPDX-License-Identifier: MIT */
/*
 * fib-common.h - what fibserver.c and hogclient.c share: the protocol's
 * limits, the reference Fibonacci numbers, "ADDR:PORT" parsing and printing,
 * strict number parsing and the open file limit; and the servers' guarded
 * recursion, which httpserver's /fib/ shares too.
 *
 * The protocol (the seeds' fib server, in C):
 *
 *	request:  decimal N, then "\n" ("\r\n" is accepted too)
 *	answer:   fib(N) in decimal, then "\n"; "error\n" for a bad request,
 *	          or one that would compute longer than FIB_TIME_MAX_NS
 *
 * with the seeds' definition, fib(n) = n <= 2 ? 1 : fib(n - 1) + fib(n - 2).
 * So fib(0) = fib(1) = fib(2) = 1: the seeds start the sequence at 1, not at
 * 0, and the server answers "1" for "0".  N goes up to FIB_N_MAX.
 *
 * hogclient needs no ringfiber (it is a plain pthread program), so nothing
 * here calls the library; number and address parsing and the open file
 * limit come from serve-util.h, which the servers share.  Every function is
 * static inline: a program that does not use one gets no warning and no
 * copy.
 */
#ifndef FIB_COMMON_H
#define FIB_COMMON_H

#include <stdint.h>
#include <time.h>

#include "serve-util.h"

/*
 * The largest N: fib(92) = 7540113804746346429 is the last one below
 * INT64_MAX, so an answer fits any 64-bit integer type a client may parse
 * it into.  The naive recursion would take centuries for it, though: the
 * time grows by the golden ratio (1.618) per step of N.
 */
#define FIB_N_MAX		92

/* Longest request line, without its "\n" (and "\r"), in bytes. */
#define FIB_LINE_MAX		32

/*
 * The server's receive buffer per connection.  A line that does not end
 * within it is not a request but garbage or an attack: the connection is
 * closed.  Lines of FIB_LINE_MAX + 1 to FIB_BUF_SIZE - 1 bytes end in
 * time to be answered "error\n", as every other malformed line is.
 */
#define FIB_BUF_SIZE		1024

/* Longest answer: 19 digits of fib(92) and "\n"; "error\n" is shorter. */
#define FIB_ANSWER_MAX		20

#define FIB_NSEC_PER_SEC	1000000000LL

/*
 * The longest a server computes one fib(N): fib(92) by the naive
 * recursion would take centuries, and a computation holds its worker or
 * thread all along.  Beyond this the request is answered "error\n"
 * (httpserver: 503, and --work-timeout sets it).  fib(47), hogclient's
 * heavy request, takes about 5 s.
 */
#define FIB_TIME_MAX_NS		(60 * FIB_NSEC_PER_SEC)

/*
 * fib_guarded() asks its guard whether to go on in the calls with n at
 * least this: fib(30) is 832,040, so once in about 1.6 million calls, a few
 * milliseconds apart here.  Often enough that a server stops promptly,
 * seldom enough that the question (a poll(2) and a clock read) costs
 * nothing next to the recursion.
 */
#define FIB_CHECK_N		30

/**
 * struct fib_guard - when fib_guarded() gives up.
 * @give_up: asked every few milliseconds of computation: 0 to go on, or a
 *           non-zero reason (a negative errno) to stop.
 * @stopped: the first non-zero answer; once set, the result is garbage.
 */
struct fib_guard {
	int (*give_up)(struct fib_guard *g);
	int stopped;
};

/*
 * fib_guarded() - the seeds' fib(@n), recursion and all, for the servers.
 * It never yields and makes no blocking call: a fiber computing fib(45)
 * holds its worker for seconds (a thread computing it is preempted by the
 * kernel like any other), which is the CPU-hog experiment.  Asking @g is
 * not yielding (see FIB_CHECK_N): it lets the computation end when nobody
 * wants it any more, or when it has run too long.
 *
 * noinline: gcc otherwise inlines the function into itself a few levels
 * deep, which makes it 2.5 times faster at -O2 and the time for a given N
 * depend on the compiler's mood; one call per level keeps the cost close to
 * the seeds' algorithm and to the timings hogclient's default N is chosen
 * from (gcc still turns the second call into a loop).  unused: hogclient,
 * which includes this header too, does not call it.
 */
static __attribute__((noinline, unused)) uint64_t fib_guarded(unsigned int n,
							       struct fib_guard *g)
{
	if (n <= 2)
		return 1;
	if (n >= FIB_CHECK_N && (g->stopped || (g->stopped = g->give_up(g))))
		return 0;
	return fib_guarded(n - 1, g) + fib_guarded(n - 2, g);
}

/*
 * fib_reference() - the seeds' fib(@n), by iteration: what the answers are
 * checked against, in microseconds where the server's recursion takes
 * seconds.  @n <= FIB_N_MAX.
 */
static inline uint64_t fib_reference(unsigned int n)
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

/* CLOCK_MONOTONIC in nanoseconds. */
static inline int64_t fib_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * FIB_NSEC_PER_SEC + ts.tv_nsec;
}

#endif /* FIB_COMMON_H */
