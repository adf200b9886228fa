/* SPDX-License-Identifier: MIT */
/*
 * echo-common.h - what echo-server.c and echo-client.c share beyond
 * serve-util.h (number and address parsing, the open file limit, the
 * listening socket): a rate limit for error messages.
 *
 * Each example is one translation unit that includes this file, so every
 * function is static inline: a program that does not use one gets no
 * warning and no copy.  Nothing here needs the runtime: the server's
 * handler runs under every model of serve.h.
 */
#ifndef ECHO_COMMON_H
#define ECHO_COMMON_H

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "serve-util.h"

#define ECHO_NSEC_PER_SEC	1000000000LL

/* CLOCK_MONOTONIC in nanoseconds, the runtime's clock, from any thread. */
static inline int64_t echo_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * ECHO_NSEC_PER_SEC + ts.tv_nsec;
}

/*
 * struct echo_ratelimit - let through a burst of messages per second.
 *
 * When 10,000 connections fail at once (the server died, the descriptor
 * limit was hit) one line each would bury the first, most useful one, and
 * writing them would slow the worker down; the count of those dropped is
 * printed with the next one let through.
 */
#define ECHO_RATELIMIT_BURST 5

struct echo_ratelimit {
	int64_t window_end;		/* echo_now() when a new burst may start */
	unsigned int printed;		/* messages in the current window */
	unsigned long suppressed;	/* messages dropped since last printed */
};

static inline void echo_ratelimited(struct echo_ratelimit *rl,
				    const char *prog, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static inline void echo_ratelimited(struct echo_ratelimit *rl,
				    const char *prog, const char *fmt, ...)
{
	int64_t now = echo_now();
	va_list ap;

	if (now >= rl->window_end) {
		rl->window_end = now + ECHO_NSEC_PER_SEC;
		rl->printed = 0;
	}
	if (rl->printed >= ECHO_RATELIMIT_BURST) {
		rl->suppressed++;
		return;
	}
	rl->printed++;
	fprintf(stderr, "%s: ", prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	if (rl->suppressed)
		fprintf(stderr, " (%lu similar messages suppressed)",
			rl->suppressed);
	fputc('\n', stderr);
	rl->suppressed = 0;
}

/* At exit: say how many messages the last window dropped. */
static inline void echo_ratelimit_flush(struct echo_ratelimit *rl,
					const char *prog, const char *what)
{
	if (rl->suppressed)
		fprintf(stderr, "%s: %lu more %s messages suppressed\n",
			prog, rl->suppressed, what);
	rl->suppressed = 0;
}

#endif /* ECHO_COMMON_H */
