/* SPDX-License-Identifier: MIT */
/*
 * fib-common.h - what fibserver.c and hogclient.c share: the protocol's
 * limits, the reference Fibonacci numbers, "ADDR:PORT" parsing and printing,
 * strict number parsing and the open file limit.
 *
 * The protocol (the seeds' fib server, in C):
 *
 *	request:  decimal N, then "\n" ("\r\n" is accepted too)
 *	answer:   fib(N) in decimal, then "\n"; "error\n" for a bad request
 *
 * with the seeds' definition, fib(n) = n <= 2 ? 1 : fib(n - 1) + fib(n - 2).
 * So fib(0) = fib(1) = fib(2) = 1: the seeds start the sequence at 1, not at
 * 0, and the server answers "1" for "0".  N goes up to FIB_N_MAX.
 *
 * hogclient needs no ringfiber (it is a plain pthread program), so nothing
 * here calls the library.  The helpers are the ones of echo-common.h with a
 * fib_ prefix; each example is self-contained.  Every function is static
 * inline: a program that does not use one gets no warning and no copy.
 */
#ifndef FIB_COMMON_H
#define FIB_COMMON_H

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>

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

/* Used when /proc/sys/fs/nr_open cannot be read: the kernel's default. */
#define FIB_NR_OPEN_DEFAULT	1048576

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

/*
 * The kernel refuses a RLIMIT_NOFILE above fs.nr_open even when the hard
 * limit says "unlimited", so that is as far as raising can go.
 */
static inline rlim_t fib_nr_open(void)
{
	unsigned long long n;
	FILE *f;
	int ok;

	f = fopen("/proc/sys/fs/nr_open", "re");
	if (!f)
		return FIB_NR_OPEN_DEFAULT;
	ok = fscanf(f, "%llu", &n) == 1 && n > 0;
	fclose(f);
	return ok ? (rlim_t)n : FIB_NR_OPEN_DEFAULT;
}

/**
 * fib_raise_nofile() - raise the RLIMIT_NOFILE soft limit to the hard limit.
 * @prog:    program name for messages.
 * @need:    descriptors the program wants; a warning is printed below this.
 * @purpose: what @need descriptors are for, for the warning.
 *
 * Only the soft limit is raised: raising the hard one needs privileges that
 * an example should not assume.  Nothing is printed unless the limit stays
 * below @need; messages go to stderr so that stdout stays machine-readable.
 *
 * Return: the soft limit now in force.
 */
static inline rlim_t fib_raise_nofile(const char *prog, rlim_t need,
				      const char *purpose)
{
	struct rlimit rl;
	rlim_t old, want;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0) {
		fprintf(stderr, "%s: getrlimit(RLIMIT_NOFILE): %s\n",
			prog, strerror(errno));
		return 0;
	}
	old = rl.rlim_cur;
	want = rl.rlim_max;
	if (want == RLIM_INFINITY || want > fib_nr_open())
		want = fib_nr_open();
	if (want > rl.rlim_cur) {
		rl.rlim_cur = want;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0) {
			fprintf(stderr, "%s: setrlimit(RLIMIT_NOFILE, %llu): %s\n",
				prog, (unsigned long long)want, strerror(errno));
			rl.rlim_cur = old;
		}
	}
	if (rl.rlim_cur < need)
		fprintf(stderr,
			"%s: warning: open file limit is %llu, but %s need about %llu;\n"
			"%s: warning: raise the hard limit (ulimit -Hn, or nofile in /etc/security/limits.conf).\n",
			prog, (unsigned long long)rl.rlim_cur, purpose,
			(unsigned long long)need, prog);
	return rl.rlim_cur;
}

/*
 * Strict number parsing: the whole string must be a number in range, so
 * that "-n 4x" or "-n ''" is a usage error instead of a silent 4 or 0.
 */
static inline int fib_parse_ulong(const char *s, unsigned long min,
				  unsigned long max, unsigned long *out)
{
	unsigned long v;
	char *end;

	if (!s || *s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

static inline int fib_parse_seconds(const char *s, double max, double *out)
{
	char *end;
	double v;

	if (!s || !*s || (*s != '.' && (*s < '0' || *s > '9')))
		return -EINVAL;
	errno = 0;
	v = strtod(s, &end);
	if (errno || *end || !isfinite(v) || v <= 0 || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

/**
 * fib_parse_addr() - parse "[ADDR:]PORT" into a socket address.
 * @s:          the text; ADDR is a numeric IPv4 address or an IPv6 address
 *              in brackets ("[::1]:7"); without ADDR, 127.0.0.1.
 * @ss:         filled in.
 * @len:        receives the length of the address.
 * @allow_zero: accept port 0 ("any free port", for a server).
 *
 * Only numeric addresses: a name would need a resolver, and the resolver's
 * blocking I/O would stall a ringfiber worker.
 *
 * Return: 0, or -EINVAL.
 */
static inline int fib_parse_addr(const char *s, struct sockaddr_storage *ss,
				 socklen_t *len, int allow_zero)
{
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	char host[INET6_ADDRSTRLEN + 2];
	const char *port_str, *colon;
	unsigned long port;
	size_t hlen;

	memset(ss, 0, sizeof(*ss));
	if (s[0] == '[') {
		const char *close = strchr(s, ']');

		if (!close || close[1] != ':')
			return -EINVAL;
		hlen = (size_t)(close - s - 1);
		if (hlen == 0 || hlen >= sizeof(host))
			return -EINVAL;
		memcpy(host, s + 1, hlen);
		host[hlen] = '\0';
		port_str = close + 2;
		if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1)
			return -EINVAL;
		sin6->sin6_family = AF_INET6;
		*len = sizeof(*sin6);
	} else {
		colon = strrchr(s, ':');
		if (colon) {
			hlen = (size_t)(colon - s);
			if (hlen == 0 || hlen >= sizeof(host))
				return -EINVAL;
			memcpy(host, s, hlen);
			host[hlen] = '\0';
			port_str = colon + 1;
		} else {
			strcpy(host, "127.0.0.1");
			port_str = s;
		}
		if (inet_pton(AF_INET, host, &sin->sin_addr) != 1)
			return -EINVAL;
		sin->sin_family = AF_INET;
		*len = sizeof(*sin);
	}
	if (fib_parse_ulong(port_str, allow_zero ? 0 : 1, 65535, &port) < 0)
		return -EINVAL;
	if (ss->ss_family == AF_INET6)
		sin6->sin6_port = htons((uint16_t)port);
	else
		sin->sin_port = htons((uint16_t)port);
	return 0;
}

/* "ADDR:PORT", or "[ADDR]:PORT" for IPv6: what fib_parse_addr() reads. */
#define FIB_ADDRSTRLEN (INET6_ADDRSTRLEN + 8)

static inline const char *fib_format_addr(const struct sockaddr_storage *ss,
					  char *buf, size_t size)
{
	const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;
	const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;
	char host[INET6_ADDRSTRLEN];

	if (ss->ss_family == AF_INET6) {
		inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof(host));
		snprintf(buf, size, "[%s]:%u", host, ntohs(sin6->sin6_port));
	} else {
		inet_ntop(AF_INET, &sin->sin_addr, host, sizeof(host));
		snprintf(buf, size, "%s:%u", host, ntohs(sin->sin_port));
	}
	return buf;
}

#endif /* FIB_COMMON_H */
