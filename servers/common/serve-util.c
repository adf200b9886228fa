// SPDX-License-Identifier: MIT
/*
 * serve-util.c - what the servers and their clients share: strict number
 * parsing, "[ADDR:]PORT" parsing and printing, the open file limit, a
 * listening socket, how to take accept(2)'s errors, the clock, a rate
 * limit for messages and the usage error.  Part of libserve.a; documented
 * in serve-util.h.  No ringfiber here: hogclient is a plain program.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "serve-util.h"

/* listen(2) backlog of the servers; the kernel caps it at net.core.somaxconn. */
#define SERVE_BACKLOG			4096

/* Used when /proc/sys/fs/nr_open cannot be read: the kernel's default. */
#define SERVE_NR_OPEN_DEFAULT		1048576

int serve_parse_ulong(const char *s, unsigned long min,
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

int serve_parse_digits(const char *s, size_t len, unsigned long max, unsigned long *out)
{
	unsigned long v = 0, d;
	size_t i;

	if (!len)
		return -EINVAL;
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		d = (unsigned long)(s[i] - '0');
		/* v * 10 + d <= max, without overflowing */
		if (d > max || v > (max - d) / 10)
			return -EINVAL;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

int serve_parse_seconds(const char *s, double max, double *out)
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

int serve_parse_addr(const char *s, struct sockaddr_storage *ss,
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

const char *serve_format_addr(const struct sockaddr_storage *ss,
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

void serve_parse_target(struct serve_target *t, const char *prog, void (*usage)(FILE *f),
			const char *syntax, int argc, char **argv, int first)
{
	if (argc - first > 1)
		serve_usage_error(prog, usage, "too many arguments");
	if (argc - first < 1)
		serve_usage_error(prog, usage, "missing %s", syntax);
	if (serve_parse_addr(argv[first], &t->addr, &t->len, 0) < 0)
		serve_usage_error(prog, usage, "bad address '%s': want %s, PORT 1-65535",
				  argv[first], syntax);
	serve_format_addr(&t->addr, t->name, sizeof(t->name));
}

void serve_client_args(int argc, char **argv, const char *prog, void (*usage)(FILE *f),
		       const struct serve_client_opt *opts, int *json,
		       const char *syntax, struct serve_target *t)
{
	/* the options with a value, --json, --help and the end */
	struct option longopts[SERVE_CLIENT_OPTS_MAX + 3];
	char shortopts[2 * SERVE_CLIENT_OPTS_MAX + 2];
	const struct serve_client_opt *o;
	size_t n = 0, s = 0;
	int opt, err;

	for (o = opts; o->name; o++) {
		if (n == SERVE_CLIENT_OPTS_MAX)
			abort();	/* the client's own table: a bug, not a user's mistake */
		longopts[n++] = (struct option){ o->name, required_argument, NULL, o->opt };
		shortopts[s++] = (char)o->opt;
		shortopts[s++] = ':';
	}
	longopts[n++] = (struct option){ "json", no_argument, NULL, 'j' };
	longopts[n++] = (struct option){ "help", no_argument, NULL, 'h' };
	longopts[n] = (struct option){ NULL, 0, NULL, 0 };
	shortopts[s++] = 'h';
	shortopts[s] = '\0';

	while ((opt = getopt_long(argc, argv, shortopts, longopts, NULL)) != -1) {
		if (opt == 'j') {
			*json = 1;
			continue;
		}
		for (o = opts; o->name && o->opt != opt; o++)
			;
		if (!o->name)
			serve_usage_exit(usage, opt);	/* -h, or getopt's '?' */
		if (o->count)
			err = serve_parse_ulong(optarg, o->min, o->max, o->count);
		else
			err = serve_parse_seconds(optarg, (double)o->max, o->seconds);
		if (err < 0)
			serve_usage_error(prog, usage, "bad %s '%s'%s", o->what, optarg,
					  o->hint ? o->hint : "");
	}
	serve_parse_target(t, prog, usage, syntax, argc, argv, optind);
}

rlim_t serve_nr_open(void)
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

rlim_t serve_raise_nofile(const char *prog, rlim_t need,
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
 * A blocking, close-on-exec TCP socket bound to @ss and listening, with
 * SO_REUSEADDR (a restart must not wait for old connections' TIME_WAIT)
 * and, if @reuseport, SO_REUSEPORT.  A descriptor or a negative errno.
 */
static int listen_on(const struct sockaddr_storage *ss, socklen_t len, int v6only,
		     int reuseport, int backlog)
{
	int fd, one = 1;

	fd = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0)
		goto fail;
	if (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0)
		goto fail;
	if (v6only >= 0 && ss->ss_family == AF_INET6 &&
	    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof(v6only)) < 0)
		goto fail;
	if (bind(fd, (const struct sockaddr *)ss, len) < 0)
		goto fail;
	if (backlog && listen(fd, backlog) < 0)
		goto fail;
	return fd;

fail:
	one = -errno;
	close(fd);
	return one;
}

static int port_of(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)ss)->sin_port);
	if (ss->ss_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
	return -1;
}

int serve_listen(const struct sockaddr_storage *ss, socklen_t len)
{
	int probe;

	/*
	 * SO_REUSEPORT lets serve_listen_again() give each fiber worker a
	 * socket of its own, but it would also let a second server of the
	 * same user bind a port in use and take half of its connections.  So
	 * a given port is first bound without it, as before, which fails
	 * with EADDRINUSE if anything listens there.  Port 0 needs no probe:
	 * the kernel never picks a port in use, SO_REUSEPORT or not.
	 */
	if (port_of(ss) != 0) {
		probe = listen_on(ss, len, -1, 0, 0);
		if (probe < 0)
			return probe;
		close(probe);
	}
	return listen_on(ss, len, -1, 1, SERVE_BACKLOG);
}

int serve_listen_again(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss), olen = sizeof(int);
	int on = 0, v6only = -1;

	if (getsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, &olen) < 0)
		return -errno;
	if (!on)
		return -EOPNOTSUPP;
	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
		return -errno;
	olen = sizeof(v6only);
	if (ss.ss_family == AF_INET6 &&
	    getsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, &olen) < 0)
		return -errno;
	return listen_on(&ss, len, v6only, 1, SERVE_BACKLOG);
}

int serve_listen_named(const char *prog, struct sockaddr_storage *ss,
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

int serve_accept_error_is_transient(int err)
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

int serve_accept_error_is_exhaustion(int err)
{
	return err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM;
}

void serve_set_nodelay(int fd)
{
	int one = 1;

	/*
	 * A large message arrives in pieces and goes back in pieces, and
	 * answers are small writes; Nagle would hold one back for the
	 * client's delayed ACK (40 ms).
	 */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

int64_t serve_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * SERVE_NSEC_PER_SEC + ts.tv_nsec;
}

void serve_ratelimited(struct serve_ratelimit *rl, const char *prog, const char *fmt, ...)
{
	int64_t now = serve_now();
	va_list ap;

	if (now >= rl->window_end) {
		rl->window_end = now + SERVE_NSEC_PER_SEC;
		rl->printed = 0;
	}
	if (rl->printed >= SERVE_RATELIMIT_BURST) {
		rl->suppressed++;
		return;
	}
	rl->printed++;
	fprintf(stderr, "%s: ", prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	if (rl->suppressed)
		fprintf(stderr, " (%lu similar messages suppressed)", rl->suppressed);
	fputc('\n', stderr);
	rl->suppressed = 0;
}

void serve_ratelimit_flush(struct serve_ratelimit *rl, const char *prog, const char *what)
{
	if (rl->suppressed)
		fprintf(stderr, "%s: %lu more %s messages suppressed\n",
			prog, rl->suppressed, what);
	rl->suppressed = 0;
}

void serve_usage_error(const char *prog, void (*usage)(FILE *f), const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	usage(stderr);
	exit(2);
}

void serve_usage_exit(void (*usage)(FILE *f), int opt)
{
	if (opt == 'h') {
		usage(stdout);
		exit(0);
	}
	usage(stderr);
	exit(2);
}
