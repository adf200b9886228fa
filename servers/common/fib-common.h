/* SPDX-License-Identifier: MIT */
/*
 * fib-common.h - what fibserver.c and hogclient.c share: the protocol's
 * limits and the reference Fibonacci numbers; and the servers' guarded
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
 * here calls the library.  The two functions are compiled once, in fib.c,
 * into libserve.a; number and address parsing, the clock and the open file
 * limit come from serve-util.h, which the servers and clients share.
 */
#ifndef FIB_COMMON_H
#define FIB_COMMON_H

#include <stdint.h>

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
#define FIB_TIME_MAX_NS		(60 * SERVE_NSEC_PER_SEC)

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

struct serve_conn;

/**
 * struct fib_work - a computation for a connection, and its guard.
 * @guard:    first: fib_guarded() hands it back; .give_up = fib_work_give_up.
 * @sc:       the connection.
 * @deadline: serve_now() time beyond which it gives up.
 */
struct fib_work {
	struct fib_guard guard;
	struct serve_conn *sc;
	int64_t deadline;
};

/*
 * fib_work_give_up() - the servers' guard: go on while serve_abandoned()
 * says the answer is wanted, and until the deadline (then -ETIMEDOUT).
 */
int fib_work_give_up(struct fib_guard *g);

/*
 * fib_guarded() - the seeds' fib(@n), recursion and all, for the servers.
 * It never yields and makes no blocking call: a fiber computing fib(45)
 * holds its worker for seconds (a thread computing it is preempted by the
 * kernel like any other), which is the CPU-hog experiment.  Asking @g is
 * not yielding (see FIB_CHECK_N): it lets the computation end when nobody
 * wants it any more, or when it has run too long.
 */
uint64_t fib_guarded(unsigned int n, struct fib_guard *g);

/*
 * fib_reference() - the seeds' fib(@n), by iteration: what the answers are
 * checked against, in microseconds where the server's recursion takes
 * seconds.  @n <= FIB_N_MAX.
 */
uint64_t fib_reference(unsigned int n);

#endif /* FIB_COMMON_H */
