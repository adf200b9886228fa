/* SPDX-License-Identifier: MIT */
/*
 * serve-util.h - what the example servers and their clients share: strict
 * number parsing, "[ADDR:]PORT" parsing and printing, the open file limit,
 * a listening socket, and how to take accept(2)'s errors.
 *
 * No ringfiber here: hogclient and echo-client are plain programs, and a
 * server includes this for its command line before it picks a model.
 * Every function is static inline: each example is one translation unit
 * (plus serve.o), and a program that does not use a helper gets no warning
 * and no copy.  The names are stable: echo-server, echo-client, fibserver,
 * hogclient and httpserver all use them.
 */
#ifndef SERVE_UTIL_H
#define SERVE_UTIL_H

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

/*
 * The servers are meant to hold 10,000 connections; each is one
 * descriptor, and a process needs a few more of its own (stdio, the
 * listening socket, the rings), hence the margin.
 */
#define SERVE_TARGET_CONNECTIONS	10000
#define SERVE_FD_MARGIN			100

/* listen(2) backlog of the servers; the kernel caps it at net.core.somaxconn. */
#define SERVE_BACKLOG			4096

/* Used when /proc/sys/fs/nr_open cannot be read: the kernel's default. */
#define SERVE_NR_OPEN_DEFAULT		1048576

/*
 * serve_parse_ulong() - strict number parsing: the whole of @s must be a
 * decimal number from @min to @max, so that "-c 10k" or "-c ''" is a usage
 * error instead of a silent 10 or 0.  Return: 0 (*@out set), or -EINVAL.
 */
static inline int serve_parse_ulong(const char *s, unsigned long min,
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

/*
 * serve_parse_seconds() - a positive duration in seconds, fractions
 * allowed ("0.2", ".5"), at most @max.  Return: 0, or -EINVAL.
 */
static inline int serve_parse_seconds(const char *s, double max, double *out)
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
static inline int serve_parse_addr(const char *s, struct sockaddr_storage *ss,
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
	if (serve_parse_ulong(port_str, allow_zero ? 0 : 1, 65535, &port) < 0)
		return -EINVAL;
	if (ss->ss_family == AF_INET6)
		sin6->sin6_port = htons((uint16_t)port);
	else
		sin->sin_port = htons((uint16_t)port);
	return 0;
}

/* "ADDR:PORT", or "[ADDR]:PORT" for IPv6: what serve_parse_addr() reads. */
#define SERVE_ADDRSTRLEN (INET6_ADDRSTRLEN + 8)

/* serve_format_addr() - @ss as serve_parse_addr() reads it, in @buf; returns @buf. */
static inline const char *serve_format_addr(const struct sockaddr_storage *ss,
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

/*
 * The kernel refuses a RLIMIT_NOFILE above fs.nr_open even when the hard
 * limit says "unlimited", so that is as far as raising can go.
 */
static inline rlim_t serve_nr_open(void)
{
	unsigned long long n;
	FILE *f;
	int ok;

	f = fopen("/proc/sys/fs/nr_open", "re");
	if (!f)
		return SERVE_NR_OPEN_DEFAULT;
	ok = fscanf(f, "%llu", &n) == 1 && n > 0;
	fclose(f);
	return ok ? (rlim_t)n : SERVE_NR_OPEN_DEFAULT;
}

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
static inline rlim_t serve_raise_nofile(const char *prog, rlim_t need,
					const char *purpose, int verbose)
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
	if (want == RLIM_INFINITY || want > serve_nr_open())
		want = serve_nr_open();
	if (want > rl.rlim_cur) {
		rl.rlim_cur = want;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0) {
			fprintf(stderr, "%s: setrlimit(RLIMIT_NOFILE, %llu): %s\n",
				prog, (unsigned long long)want, strerror(errno));
			rl.rlim_cur = old;
		}
	}
	if (verbose) {
		fprintf(stderr, "%s: open file limit %llu (was %llu, hard limit ",
			prog, (unsigned long long)rl.rlim_cur,
			(unsigned long long)old);
		if (rl.rlim_max == RLIM_INFINITY)
			fprintf(stderr, "unlimited)\n");
		else
			fprintf(stderr, "%llu)\n", (unsigned long long)rl.rlim_max);
	}
	if (rl.rlim_cur < need)
		fprintf(stderr,
			"%s: warning: open file limit is %llu, but %s need about %llu;\n"
			"%s: warning: connections beyond the limit fail with EMFILE.\n"
			"%s: warning: raise the hard limit (ulimit -Hn, or nofile in /etc/security/limits.conf).\n",
			prog, (unsigned long long)rl.rlim_cur, purpose,
			(unsigned long long)need, prog, prog);
	return rl.rlim_cur;
}

/*
 * serve_listen() - a listening TCP socket on @ss, blocking, close-on-exec,
 * with SO_REUSEADDR and a SERVE_BACKLOG backlog: what serve_run() takes.
 * Return: the descriptor, or a negative errno.
 */
static inline int serve_listen(const struct sockaddr_storage *ss, socklen_t len)
{
	int fd, one = 1;

	fd = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* Restarting the server must not wait for old connections' TIME_WAIT. */
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0)
		goto fail;
	if (bind(fd, (const struct sockaddr *)ss, len) < 0)
		goto fail;
	if (listen(fd, SERVE_BACKLOG) < 0)
		goto fail;
	return fd;

fail:
	one = -errno;
	close(fd);
	return one;
}

/*
 * serve_listen_named() - serve_listen() on @ss, then the address actually
 * bound (the port the kernel picked for port 0) back into @ss and, as
 * "ADDR:PORT", into @name (@size bytes, SERVE_ADDRSTRLEN is enough).  What
 * every server does before it says "listening on ...".
 * Return: the descriptor, or -1 after printing why, prefixed by @prog.
 */
static inline int serve_listen_named(const char *prog, struct sockaddr_storage *ss,
				     socklen_t len, char *name, size_t size)
{
	int fd = serve_listen(ss, len);

	if (fd < 0) {
		fprintf(stderr, "%s: cannot listen on %s: %s\n", prog,
			serve_format_addr(ss, name, size), strerror(-fd));
		return -1;
	}
	len = sizeof(*ss);
	if (getsockname(fd, (struct sockaddr *)ss, &len) < 0) {
		fprintf(stderr, "%s: getsockname: %s\n", prog, strerror(errno));
		close(fd);
		return -1;
	}
	serve_format_addr(ss, name, size);
	return fd;
}

/*
 * serve_accept_error_is_transient() - accept(2) errors that say nothing
 * about the listening socket: the process or the system is out of
 * something (descriptors, buffers), or one pending connection went bad
 * (Linux reports the network errors of the new socket through accept, and
 * its man page says to retry on them).  The rest mean the listening socket
 * (or, for fibers, its io_uring request) is unusable.
 */
static inline int serve_accept_error_is_transient(int err)
{
	switch (err) {
	case EBADF:
	case EINVAL:
	case ENOTSOCK:
	case EOPNOTSUPP:
	case EFAULT:
	case ENOSYS:
	case EBUSY:
	case ECANCELED:
		return 0;
	default:
		return 1;
	}
}

/*
 * serve_accept_error_is_exhaustion() - out of descriptors or memory: back
 * off rather than retry at once.
 */
static inline int serve_accept_error_is_exhaustion(int err)
{
	return err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM;
}

/* serve_set_nodelay() - TCP_NODELAY on @fd; failing only costs latency. */
static inline void serve_set_nodelay(int fd)
{
	int one = 1;

	/*
	 * A large message arrives in pieces and goes back in pieces, and
	 * answers are small writes; Nagle would hold one back for the
	 * client's delayed ACK (40 ms).
	 */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

#endif /* SERVE_UTIL_H */
