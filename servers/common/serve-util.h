/* SPDX-License-Identifier: MIT */
/*
 * serve-util.h - what the servers and their clients share: strict number
 * parsing, "[ADDR:]PORT" parsing and printing, the open file limit, a
 * listening socket, how to take accept(2)'s errors, the clock, a rate limit
 * for messages and the usage error.
 *
 * Compiled once, in serve-util.c, into libserve.a, which every server and
 * client links.  No ringfiber here: hogclient is a plain pthread program,
 * and a server uses this for its command line before it picks a model.
 */
#ifndef SERVE_UTIL_H
#define SERVE_UTIL_H

#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/socket.h>

/*
 * The servers are meant to hold 10,000 connections; each is one
 * descriptor, and a process needs a few more of its own (stdio, the
 * listening socket, the rings), hence the margin.
 */
#define SERVE_TARGET_CONNECTIONS	10000
#define SERVE_FD_MARGIN			100

/*
 * serve_parse_ulong() - strict number parsing: the whole of @s must be a
 * decimal number from @min to @max, so that "-c 10k" or "-c ''" is a usage
 * error instead of a silent 10 or 0.  Return: 0 (*@out set), or -EINVAL.
 */
int serve_parse_ulong(const char *s, unsigned long min,
		      unsigned long max, unsigned long *out);

/*
 * serve_parse_digits() - a number in a request: the whole of @s[0..@len)
 * decimal digits (no sign, no spaces; leading zeros are fine), at most
 * @max.  Return: 0 (*@out set), or -EINVAL.
 */
int serve_parse_digits(const char *s, size_t len, unsigned long max, unsigned long *out);

/*
 * serve_parse_seconds() - a positive duration in seconds, fractions
 * allowed ("0.2", ".5"), at most @max.  Return: 0, or -EINVAL.
 */
int serve_parse_seconds(const char *s, double max, double *out);

/**
 * serve_parse_addr() - parse "[ADDR:]PORT" into a socket address.
 * @s:          the text; ADDR is a numeric IPv4 address or an IPv6 address
 *              in brackets ("[::1]:7"); without ADDR, 127.0.0.1.
 * @ss:         filled in.
 * @len:        receives the length of the address.
 * @allow_zero: accept port 0 ("any free port", for a server).
 *
 * Only numeric addresses: a name would need a resolver, and the resolver's
 * blocking I/O would stall a fiber's worker.
 *
 * Return: 0, or -EINVAL.
 */
int serve_parse_addr(const char *s, struct sockaddr_storage *ss,
		     socklen_t *len, int allow_zero);

/* "ADDR:PORT", or "[ADDR]:PORT" for IPv6: what serve_parse_addr() reads. */
#define SERVE_ADDRSTRLEN (INET6_ADDRSTRLEN + 8)

/* serve_format_addr() - @ss as serve_parse_addr() reads it, in @buf; returns @buf. */
const char *serve_format_addr(const struct sockaddr_storage *ss,
			      char *buf, size_t size);

/**
 * struct serve_target - the server a client talks to.
 * @addr: from serve_parse_addr().
 * @len:  its length.
 * @name: @addr as "ADDR:PORT", for messages.
 */
struct serve_target {
	struct sockaddr_storage addr;
	socklen_t len;
	char name[SERVE_ADDRSTRLEN];
};

/*
 * serve_parse_target() - a client's one operand, after its options: exactly
 * one address in @argv[@first..@argc), its port not 0, into @t.  @syntax
 * is how the usage spells it ("ADDR:PORT", "[ADDR:]PORT").  Anything else is
 * a usage error (serve_usage_error(@prog, @usage, ...)): exit status 2.
 */
void serve_parse_target(struct serve_target *t, const char *prog, void (*usage)(FILE *f),
			const char *syntax, int argc, char **argv, int first);

/**
 * struct serve_client_opt - an option of a load client that takes a value.
 * @opt:     its letter: -@opt VALUE, and getopt's value for --@name VALUE.
 * @name:    its long name.
 * @what:    what the value is, for the message "bad WHAT 'VALUE'".
 * @hint:    the rest of that message (": want 0-92"), or NULL.
 * @min:     a count's least value.
 * @max:     a count's greatest, or a duration's longest, in seconds.
 * @count:   where a count goes (serve_parse_ulong()); NULL for a duration,
 * @seconds: where a duration goes (serve_parse_seconds()).
 */
struct serve_client_opt {
	int opt;
	const char *name;
	const char *what;
	const char *hint;
	unsigned long min, max;
	unsigned long *count;
	double *seconds;
};

#define SERVE_CLIENT_OPTS_MAX	8

/**
 * serve_client_args() - the whole command line of a load client.
 * @prog:   the program's name, for messages.
 * @usage:  its help: after -h on stdout, exit status 0; after a bad
 *          command line (a message first) on stderr, exit status 2.
 * @opts:   its options with a value, at most SERVE_CLIENT_OPTS_MAX, in the
 *          order of its help, ended by one without a @name.
 * @json:   set to 1 by --json.
 * @syntax: how @usage spells the address ("ADDR:PORT", "[ADDR:]PORT").
 * @t:      the one address after the options (serve_parse_target()).
 */
void serve_client_args(int argc, char **argv, const char *prog, void (*usage)(FILE *f),
		       const struct serve_client_opt *opts, int *json,
		       const char *syntax, struct serve_target *t);

/*
 * The kernel refuses a RLIMIT_NOFILE above fs.nr_open even when the hard
 * limit says "unlimited", so that is as far as raising can go.
 */
rlim_t serve_nr_open(void);

/**
 * serve_raise_nofile() - raise the RLIMIT_NOFILE soft limit to the hard limit.
 * @prog:    program name for messages.
 * @need:    descriptors the program wants; a warning is printed below this.
 * @purpose: what @need descriptors are for, for the warning.
 * @verbose: print the limit obtained on stderr.
 *
 * Only the soft limit is raised: raising the hard one needs privileges that
 * an example should not assume.  Messages go to stderr so that stdout stays
 * machine-readable; the warning lines all contain "warning:", which the
 * tests allow under -q.
 *
 * Return: the soft limit now in force.
 */
rlim_t serve_raise_nofile(const char *prog, rlim_t need,
			  const char *purpose, int verbose);

/*
 * serve_listen() - a listening TCP socket on @ss, blocking, close-on-exec,
 * with SO_REUSEADDR, SO_REUSEPORT (for serve_listen_again()) and a
 * SERVE_BACKLOG backlog: what serve_run() takes.  A port already in use
 * is still EADDRINUSE: another server cannot join the socket unasked.
 * Return: the descriptor, or a negative errno.
 */
int serve_listen(const struct sockaddr_storage *ss, socklen_t len);

/*
 * serve_listen_again() - another listening socket in the SO_REUSEPORT
 * group of listening socket @fd (same address, family and IPV6_V6ONLY;
 * blocking, close-on-exec, a SERVE_BACKLOG backlog): the kernel spreads
 * new connections over the group's sockets by a hash of their addresses.
 * serve_run() makes one for each fiber worker but the first.
 * Return: the descriptor, -EOPNOTSUPP if @fd has no SO_REUSEPORT (it
 * cannot be shared), or another negative errno.
 */
int serve_listen_again(int fd);

/*
 * serve_listen_named() - serve_listen() on @ss, then the address actually
 * bound (the port the kernel picked for port 0) back into @ss and, as
 * "ADDR:PORT", into @name (@size bytes, SERVE_ADDRSTRLEN is enough).  What
 * every server does before it says "listening on ...".
 * Return: the descriptor, or -1 after printing why, prefixed by @prog.
 */
int serve_listen_named(const char *prog, struct sockaddr_storage *ss,
		       socklen_t len, char *name, size_t size);

/*
 * serve_accept_error_is_transient() - accept(2) errors that say nothing
 * about the listening socket: the process or the system is out of
 * something (descriptors, buffers), or one pending connection went bad
 * (Linux reports the network errors of the new socket through accept, and
 * its man page says to retry on them).  The rest mean the listening socket
 * (or, for fibers, its io_uring request) is unusable.
 */
int serve_accept_error_is_transient(int err);

/*
 * serve_accept_error_is_exhaustion() - out of descriptors or memory: back
 * off rather than retry at once.
 */
int serve_accept_error_is_exhaustion(int err);

/* serve_set_nodelay() - TCP_NODELAY on @fd; failing only costs latency. */
void serve_set_nodelay(int fd);

#define SERVE_NSEC_PER_SEC		1000000000LL

/*
 * serve_now() - CLOCK_MONOTONIC now, in nanoseconds, from any thread: the
 * runtime's clock (rf_now()), without the runtime.  The one clock of the
 * servers and clients; httpserver's idle watchdog alone reads the coarse
 * clock, once per request on the hot path (see coarse_now() there).
 */
int64_t serve_now(void);

/*
 * struct serve_ratelimit - let through a burst of SERVE_RATELIMIT_BURST
 * messages per second.
 *
 * When 10,000 connections fail at once (the server died, the descriptor
 * limit was hit) one line each would bury the first, most useful one, and
 * writing them would slow the worker down; the count of those dropped is
 * printed with the next one let through.  Not thread-safe: a caller on
 * several threads holds a lock around it (it never parks a fiber).
 */
#define SERVE_RATELIMIT_BURST	5

struct serve_ratelimit {
	int64_t window_end;		/* serve_now() when a new burst may start */
	unsigned int printed;		/* messages in the current window */
	unsigned long suppressed;	/* messages dropped since last printed */
};

/* serve_ratelimited() - "@prog: " and the message on stderr, unless @rl drops it. */
void serve_ratelimited(struct serve_ratelimit *rl, const char *prog, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* serve_ratelimit_flush() - at exit: say how many @what messages the last window dropped. */
void serve_ratelimit_flush(struct serve_ratelimit *rl, const char *prog, const char *what);

/*
 * serve_usage_error() - a bad command line: "@prog: " and the message on
 * stderr, then @usage(stderr), then exit status 2, as every server and
 * client does.
 */
void serve_usage_error(const char *prog, void (*usage)(FILE *f), const char *fmt, ...)
	__attribute__((format(printf, 3, 4), noreturn));

/*
 * serve_usage_exit() - what a getopt loop does with an option the program
 * does not take itself: after -h (@opt 'h'), @usage on stdout and exit
 * status 0; after anything else (getopt's '?': it has said what was
 * wrong), @usage on stderr and exit status 2.
 */
void serve_usage_exit(void (*usage)(FILE *f), int opt) __attribute__((noreturn));

#endif /* SERVE_UTIL_H */
