/* SPDX-License-Identifier: MIT */
/*
 * net.c - TCP over loopback through the ring: acceptors (multishot and
 * one-shot), rf_accept(), rf_connect(), rf_send()/rf_recv(), their deadlines
 * and errors, and that an acceptor gives back everything it holds.
 *
 * Only 127.0.0.1 and ports picked by the kernel (port 0) are used.
 * Needs io_uring; skipped as a whole where the runtime gets no ring.
 */
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>

#include "helpers.h"

#define ND RF_NO_DEADLINE
#define SOON(ms) rf_deadline_after((ms)*MSEC)

static const struct rt_config configs[] = {
	{ "default", 0 },
	{ "one-shot accept", RF_RT_NO_MULTISHOT_ACCEPT },
};

static volatile sig_atomic_t sigpipes;

static void count_sigpipe(int sig)
{
	sigpipes++;
}

static uint64_t inflight_now(void)
{
	return my_stats().inflight;
}

static struct sockaddr_in loopback(uint16_t port)
{
	struct sockaddr_in sa;

	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = port;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	return sa;
}

/* A listening socket on 127.0.0.1 at a port the kernel picks. */
static int make_listener(uint16_t *port)
{
	struct sockaddr_in sa = loopback(0);
	socklen_t len = sizeof(sa);
	int fd, one = 1;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(fd, 128) != 0 ||
	    getsockname(fd, (struct sockaddr *)&sa, &len) != 0) {
		int err = -errno;

		close(fd);
		return err;
	}
	*port = sa.sin_port;
	return fd;
}

/* A socket connected to @port with rf_connect(), or a negative errno. */
static int connect_to(uint16_t port)
{
	struct sockaddr_in sa = loopback(port);
	int fd, rc;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	rc = rf_connect(fd, (struct sockaddr *)&sa, sizeof(sa), SOON(5000));
	if (rc != 0) {
		close(fd);
		return rc;
	}
	return fd;
}

static ssize_t send_all(int fd, const char *p, size_t len)
{
	size_t off = 0;

	while (off < len) {
		ssize_t n = rf_send(fd, p + off, len - off, 0, SOON(5000));

		if (n <= 0)
			return n < 0 ? n : -EIO;
		off += (size_t)n;
	}
	return (ssize_t)off;
}

static ssize_t recv_all(int fd, char *p, size_t len)
{
	size_t off = 0;

	while (off < len) {
		ssize_t n = rf_recv(fd, p + off, len - off, 0, SOON(5000));

		if (n < 0)
			return n;
		if (n == 0)
			break;
		off += (size_t)n;
	}
	return (ssize_t)off;
}

/* ------------------------------------------------------------------- echo */

#define NCLIENTS 16
#define CHUNK 4096
#define NCHUNKS 8

static void *echo_conn(void *arg)
{
	int fd = (int)(intptr_t)arg;
	char buf[CHUNK];
	long total = 0;
	ssize_t n;

	for (;;) {
		n = rf_recv(fd, buf, sizeof(buf), 0, SOON(10000));
		if (n <= 0)
			break;
		if (send_all(fd, buf, (size_t)n) != n) {
			n = -EIO;
			break;
		}
		total += n;
	}
	rf_close(fd);
	return (void *)(intptr_t)(n < 0 ? n : total);
}

struct server {
	struct rf_acceptor *a;
	int accept_errors;
	int spawn_errors;
};

static void *echo_server(void *arg)
{
	struct server *s = arg;
	struct rf_fiber *conn[NCLIENTS];
	long total = 0;
	int i, n = 0;

	for (i = 0; i < NCLIENTS; i++) {
		int fd = rf_acceptor_next(s->a, SOON(10000));

		if (fd < 0) {
			tap_diag("  rf_acceptor_next() -> %d", fd);
			s->accept_errors++;
			break;
		}
		if (rf_spawn(&conn[n], echo_conn, (void *)(intptr_t)fd, NULL) != 0) {
			s->spawn_errors++;
			close(fd);
			continue;
		}
		n++;
	}
	for (i = 0; i < n; i++) {
		void *res = NULL;

		rf_join(conn[i], &res, ND);
		if ((intptr_t)res < 0)
			tap_diag("  an echo connection ended with %ld", (long)(intptr_t)res);
		else
			total += (intptr_t)res;
	}
	return (void *)(intptr_t)total;
}

struct client {
	uint16_t port;
	int id;
	long verified;
	int err;
};

static void *echo_client(void *arg)
{
	struct client *c = arg;
	char out[CHUNK], in[CHUNK];
	int fd, k;
	size_t i;

	fd = connect_to(c->port);
	if (fd < 0) {
		c->err = fd;
		return NULL;
	}
	for (k = 0; k < NCHUNKS; k++) {
		for (i = 0; i < sizeof(out); i++)
			out[i] = (char)(c->id * 31 + k * 7 + (int)i);
		if (send_all(fd, out, sizeof(out)) != (ssize_t)sizeof(out)) {
			c->err = -EIO;
			break;
		}
		if (recv_all(fd, in, sizeof(in)) != (ssize_t)sizeof(in)) {
			c->err = -EIO;
			break;
		}
		if (memcmp(in, out, sizeof(in)) != 0) {
			c->err = -EBADMSG;
			break;
		}
		c->verified += (long)sizeof(in);
	}
	rf_close(fd);
	return NULL;
}

static void test_echo(void)
{
	struct client c[NCLIENTS];
	struct rf_fiber *fc[NCLIENTS], *fs;
	struct server s = { 0 };
	uint16_t port;
	void *res = NULL;
	int lfd, i, n = 0, rc, bad = 0;
	long verified = 0;

	lfd = make_listener(&port);
	if (!ok(lfd >= 0, "%s", tn("listen on 127.0.0.1 (%d)", lfd)))
		return;
	rc = rf_acceptor_open(&s.a, lfd, SOCK_CLOEXEC);
	is_int(rc, 0, tn("rf_acceptor_open()"));
	if (rc) {
		close(lfd);
		return;
	}
	rc = rf_spawn(&fs, echo_server, &s, NULL);
	is_int(rc, 0, tn("spawn the echo server"));
	for (i = 0; rc == 0 && i < NCLIENTS; i++) {
		c[i] = (struct client){ .port = port, .id = i };
		if (rf_spawn(&fc[i], echo_client, &c[i], NULL) != 0)
			break;
		n++;
	}
	is_int(n, rc == 0 ? NCLIENTS : 0, tn("spawn %d clients", NCLIENTS));
	for (i = 0; i < n; i++) {
		rf_join(fc[i], NULL, ND);
		if (c[i].err || c[i].verified != CHUNK * NCHUNKS) {
			tap_diag("  client %d: error %d, %ld bytes verified", i, c[i].err,
				 c[i].verified);
			bad++;
		}
		verified += c[i].verified;
	}
	is_int(bad, 0, tn("every client got its bytes echoed back"));
	is_int(verified, (long)NCLIENTS * CHUNK * NCHUNKS, tn("bytes verified"));
	if (rc == 0) {
		rf_join(fs, &res, ND);
		is_int((intptr_t)res, (long)n * CHUNK * NCHUNKS, tn("bytes the server echoed"));
		is_int(s.accept_errors + s.spawn_errors, 0, tn("the server accepted every client"));
	}
	is_int(rf_acceptor_close(s.a), 0, tn("rf_acceptor_close()"));
	no_inflight("rf_acceptor_close()");
	close(lfd);
}

/* ------------------------------------------------------ acceptor details */

#define QUEUED 32

/* Connections made before anyone waits come out in order of arrival. */
static void test_queued(void)
{
	struct rf_acceptor *a = NULL;
	int cfd[QUEUED], got[QUEUED], want[QUEUED];
	uint16_t port;
	int lfd, i, nc = 0, ng = 0, rc, flag_errors = 0;

	lfd = make_listener(&port);
	if (!ok(lfd >= 0, "%s", tn("listen (%d)", lfd)))
		return;
	rc = rf_acceptor_open(&a, lfd, SOCK_CLOEXEC | SOCK_NONBLOCK);
	is_int(rc, 0, tn("rf_acceptor_open(SOCK_CLOEXEC | SOCK_NONBLOCK)"));
	if (rc) {
		close(lfd);
		return;
	}
	for (i = 0; i < QUEUED; i++) {
		unsigned char b = (unsigned char)i;

		cfd[nc] = connect_to(port);
		if (cfd[nc] < 0)
			break;
		if (rf_send(cfd[nc], &b, 1, 0, SOON(5000)) != 1) {
			close(cfd[nc]);
			break;
		}
		nc++;
		want[i] = i;
	}
	is_int(nc, QUEUED, tn("connect %d clients before anyone waits", QUEUED));
	rf_sleep(SOON(10)); /* let them all land in the acceptor */
	for (i = 0; i < nc; i++) {
		unsigned char b = 0xff;
		int fd = rf_acceptor_next(a, SOON(5000));

		if (fd < 0) {
			tap_diag("  rf_acceptor_next() -> %d", fd);
			break;
		}
		if (rf_recv(fd, &b, 1, 0, SOON(5000)) != 1)
			tap_diag("  no byte on accepted connection %d", i);
		got[ng++] = b;
		if (!(fcntl(fd, F_GETFL) & O_NONBLOCK) || !(fcntl(fd, F_GETFD) & FD_CLOEXEC))
			flag_errors++;
		rf_close(fd);
	}
	is_seq(got, ng, want, nc, tn("queued connections are delivered in order of arrival"));
	is_int(flag_errors, 0, tn("accepted sockets have O_NONBLOCK and FD_CLOEXEC"));
	for (i = 0; i < nc; i++)
		rf_close(cfd[i]);
	is_int(rf_acceptor_close(a), 0, tn("rf_acceptor_close()"));
	no_inflight("rf_acceptor_close() of a drained acceptor");
	close(lfd);
}

struct waiter {
	struct rf_acceptor *a;
	int64_t deadline_ms;
	int rc;
};

static void *acceptor_waiter(void *arg)
{
	struct waiter *w = arg;

	w->rc = rf_acceptor_next(w->a, w->deadline_ms ? SOON(w->deadline_ms) : ND);
	return NULL;
}

static void test_acceptor_waiting(void)
{
	struct waiter w1 = { .deadline_ms = 5000, .rc = 1 }, w2 = { .deadline_ms = 5000, .rc = 1 };
	struct waiter wc = { .deadline_ms = 0, .rc = 1 };
	struct rf_acceptor *a = NULL;
	struct rf_fiber *f1, *f2, *fc;
	uint64_t before, after;
	int64_t t0, dl;
	uint16_t port;
	int lfd, rc, cfd, fd;

	lfd = make_listener(&port);
	if (!ok(lfd >= 0, "%s", tn("listen (%d)", lfd)))
		return;
	rc = rf_acceptor_open(&a, lfd, SOCK_CLOEXEC);
	is_int(rc, 0, tn("rf_acceptor_open()"));
	if (rc) {
		close(lfd);
		return;
	}

	/* A deadline with nobody connecting. */
	rf_nop(ND); /* the armed request, if any, is in the kernel now */
	before = inflight_now();
	tap_diag("%s: %" PRIu64 " request(s) in flight for an idle acceptor", tn("acceptor"),
		 before);
	t0 = rf_now();
	dl = SOON(20);
	is_int(rf_acceptor_next(a, dl), -ETIMEDOUT,
	       tn("rf_acceptor_next() with no client -> -ETIMEDOUT"));
	ok(rf_now() >= dl, "%s", tn("not before the deadline (%" PRId64 " ms)", ms_since(t0)));
	after = inflight_now();
	is_int(after, before, tn("only the acceptor's own request is left in flight"));

	/*
	 * The timed-out wait left no waiter behind: a connection arriving now
	 * queues (it does not wake this fiber's next sleep) and is handed
	 * over by the next call.
	 */
	cfd = connect_to(port);
	ok(cfd >= 0, "%s", tn("connect after the timeout (%d)", cfd));
	t0 = rf_now();
	dl = SOON(30);
	is_int(rf_sleep(dl), 0, tn("rf_sleep(30 ms) meanwhile"));
	ok(rf_now() >= dl, "%s", tn("sleeps its whole time (%" PRId64 " ms)", ms_since(t0)));
	fd = rf_acceptor_next(a, SOON(5000));
	ok(fd >= 0, "%s", tn("rf_acceptor_next() hands the connection over (%d)", fd));
	if (fd >= 0)
		rf_close(fd);
	if (cfd >= 0)
		rf_close(cfd);

	/* Two waiters: the second is refused; close is refused while one waits. */
	w1.a = a;
	rc = rf_spawn(&f1, acceptor_waiter, &w1, NULL);
	is_int(rc, 0, tn("spawn a waiter"));
	if (rc == 0) {
		w2.a = a;
		rc = rf_spawn(&f2, acceptor_waiter, &w2, NULL);
		is_int(rc, 0, tn("spawn a second waiter"));
		rf_yield(); /* the first parks, the second is refused */
		is_int(rf_acceptor_close(a), -EBUSY,
		       tn("rf_acceptor_close() while a fiber waits -> -EBUSY"));
		cfd = connect_to(port);
		ok(cfd >= 0, "%s", tn("connect a client (%d)", cfd));
		rf_join(f1, NULL, ND);
		if (rc == 0)
			rf_join(f2, NULL, ND);
		ok(w1.rc >= 0, "%s", tn("the first waiter gets the connection (%d)", w1.rc));
		if (rc == 0)
			is_int(w2.rc, -EBUSY, tn("a second waiter on one acceptor -> -EBUSY"));
		if (w1.rc >= 0)
			rf_close(w1.rc);
		if (cfd >= 0)
			rf_close(cfd);
	}

	/* A waiter cancelled while parked; the acceptor stays usable. */
	wc.a = a;
	rc = rf_spawn(&fc, acceptor_waiter, &wc, NULL);
	is_int(rc, 0, tn("spawn a waiter without deadline"));
	if (rc == 0) {
		rf_sleep(SOON(10));
		is_int(rf_cancel(fc), 0, tn("rf_cancel() it"));
		rf_join(fc, NULL, ND);
		is_int(wc.rc, -ECANCELED, tn("its rf_acceptor_next() -> -ECANCELED"));
		is_int(inflight_now(), before,
		       tn("only the acceptor's own request is left in flight"));
	}
	cfd = connect_to(port);
	fd = rf_acceptor_next(a, SOON(5000));
	ok(cfd >= 0 && fd >= 0, "%s", tn("the acceptor still accepts (%d, %d)", cfd, fd));
	if (fd >= 0) {
		ok(fcntl(fd, F_GETFD) & FD_CLOEXEC, "%s", tn("SOCK_CLOEXEC was applied"));
		rf_close(fd);
	}
	if (cfd >= 0)
		rf_close(cfd);

	is_int(rf_acceptor_close(a), 0, tn("rf_acceptor_close()"));
	no_inflight("rf_acceptor_close()");
	close(lfd);
}

/* ------------------------------------------------- accept errors (EMFILE) */

/*
 * With no descriptor left, the kernel's accept fails with EMFILE and the
 * connection stays in the backlog: rf_acceptor_next() reports -EMFILE, and
 * once descriptors are free again the same acceptor hands it over.
 */
static void test_acceptor_emfile(void)
{
	struct sockaddr_in sa;
	struct rf_acceptor *a = NULL;
	struct rlimit old, lim;
	uint16_t port;
	char b = 0;
	int lfd, cfd, probe, rc, fd;

	lfd = make_listener(&port);
	if (!ok(lfd >= 0, "%s", tn("listen (%d)", lfd)))
		return;
	sa = loopback(port);
	cfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	probe = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (cfd < 0 || probe < 0 || getrlimit(RLIMIT_NOFILE, &old) != 0) {
		ok(0, "%s", tn("set up the EMFILE test"));
		goto out;
	}
	close(probe);

	/*
	 * No descriptor below the lowest free one: every new one fails.  The
	 * kernel reads the limit when an accept request is prepared, so it is
	 * lowered before the acceptor arms its request.
	 */
	lim = old;
	lim.rlim_cur = (rlim_t)probe;
	setrlimit(RLIMIT_NOFILE, &lim);
	rc = rf_acceptor_open(&a, lfd, SOCK_CLOEXEC);
	if (rc == 0)
		rc = rf_connect(cfd, (struct sockaddr *)&sa, sizeof(sa), SOON(5000));
	fd = rc == 0 ? rf_acceptor_next(a, SOON(2000)) : rc;
	setrlimit(RLIMIT_NOFILE, &old);
	is_int(rc, 0, tn("open an acceptor and connect while out of descriptors"));
	is_int(fd, -EMFILE, tn("rf_acceptor_next() reports the kernel's -EMFILE"));
	if (fd >= 0)
		rf_close(fd);

	fd = a ? rf_acceptor_next(a, SOON(2000)) : -EBADF;
	ok(fd >= 0, "%s",
	   tn("with descriptors free again the acceptor hands the connection over (%d)", fd));
	if (fd >= 0) {
		rf_send(cfd, "e", 1, 0, SOON(2000));
		is_int(rf_recv(fd, &b, 1, 0, SOON(2000)), 1, tn("and it works"));
		rf_close(fd);
	}
out:
	if (cfd >= 0)
		rf_close(cfd);
	if (a)
		is_int(rf_acceptor_close(a), 0, tn("rf_acceptor_close()"));
	no_inflight("the EMFILE test");
	close(lfd);
}

/* ------------------------------------------------- an acceptor left open */

static int leftover_lfd;
static uint16_t leftover_port;
static int leftover_cfd = -1;

static void *leftover_main(void *arg)
{
	struct rf_acceptor *a = NULL;
	int rc;

	rc = rf_acceptor_open(&a, leftover_lfd, SOCK_CLOEXEC);
	is_int(rc, 0, tn("rf_acceptor_open(), never to be closed"));
	if (rc)
		return NULL;
	leftover_cfd = connect_to(leftover_port);
	ok(leftover_cfd >= 0, "%s", tn("a connection that is never taken (%d)", leftover_cfd));
	rf_sleep(SOON(10));
	return NULL;
}

static void test_acceptor_left_open(void)
{
	struct rf_runtime_opts opts = { .flags = test_config_flags };
	struct rf_runtime *rt = NULL;
	int fds_before, fds_after, rc;

	leftover_lfd = make_listener(&leftover_port);
	if (!ok(leftover_lfd >= 0, "%s", tn("listen (%d)", leftover_lfd)))
		return;
	fds_before = count_open_fds();
	rc = rf_runtime_create(&rt, &opts);
	is_int(rc, 0, tn("rf_runtime_create()"));
	if (rc) {
		close(leftover_lfd);
		return;
	}
	rc = rf_runtime_run(rt, leftover_main, NULL, NULL);
	is_int(rc, 0, tn("main exits with its acceptor open: rf_runtime_run() -> 0"));
	rf_runtime_destroy(rt);
	if (leftover_cfd >= 0)
		close(leftover_cfd);
	leftover_cfd = -1;
	fds_after = count_open_fds();
	is_int(fds_after, fds_before,
	       tn("rf_runtime_destroy() closed the ring and the untaken connection"));
	close(leftover_lfd);
}

/* ------------------------------------------------ one-shot and streams */

struct accepter {
	int lfd;
	int rc;
	struct sockaddr_in peer;
	socklen_t len;
};

static void *accept_fiber(void *arg)
{
	struct accepter *ac = arg;

	ac->len = sizeof(ac->peer);
	ac->rc =
	    rf_accept(ac->lfd, (struct sockaddr *)&ac->peer, &ac->len, SOCK_CLOEXEC, SOON(5000));
	return NULL;
}

/* rf_accept() one connection; *cfd gets the client end. */
static int accept_pair(int lfd, uint16_t port, int *cfd, struct accepter *ac)
{
	struct rf_fiber *f;
	int rc;

	memset(ac, 0, sizeof(*ac));
	ac->lfd = lfd;
	ac->rc = 1;
	rc = rf_spawn(&f, accept_fiber, ac, NULL);
	if (rc)
		return rc;
	*cfd = connect_to(port);
	rf_join(f, NULL, ND);
	if (*cfd < 0) {
		if (ac->rc >= 0)
			close(ac->rc);
		return *cfd;
	}
	if (ac->rc < 0)
		close(*cfd);
	return ac->rc;
}

static void test_streams(void)
{
	struct accepter ac;
	struct sockaddr_in local;
	socklen_t len = sizeof(local);
	char buf[4096];
	uint16_t port;
	int64_t t0, dl;
	ssize_t n = 0;
	int lfd, sfd, cfd = -1, i;

	lfd = make_listener(&port);
	if (!ok(lfd >= 0, "%s", tn("listen (%d)", lfd)))
		return;

	sfd = accept_pair(lfd, port, &cfd, &ac);
	ok(sfd >= 0, "%s", tn("rf_accept() + rf_connect() (%d)", sfd));
	if (sfd < 0) {
		close(lfd);
		return;
	}
	getsockname(cfd, (struct sockaddr *)&local, &len);
	ok(ac.len == sizeof(struct sockaddr_in) && ac.peer.sin_family == AF_INET &&
	       ac.peer.sin_addr.s_addr == htonl(INADDR_LOOPBACK) &&
	       ac.peer.sin_port == local.sin_port,
	   "%s", tn("rf_accept() reports the client's address"));
	ok(fcntl(sfd, F_GETFD) & FD_CLOEXEC, "%s", tn("rf_accept() applied SOCK_CLOEXEC"));

	is_int(rf_send(cfd, "ping", 4, 0, SOON(5000)), 4, tn("rf_send()"));
	memset(buf, 0, sizeof(buf));
	is_int(recv_all(sfd, buf, 4), 4, tn("rf_recv()"));
	is_str(buf, "ping", tn("the bytes arrive"));

	/* A deadline on an idle connection; the timed-out recv takes nothing. */
	t0 = rf_now();
	dl = SOON(20);
	is_int(rf_recv(sfd, buf, sizeof(buf), 0, dl), -ETIMEDOUT,
	       tn("rf_recv() on an idle connection with a 20 ms deadline -> -ETIMEDOUT"));
	ok(rf_now() >= dl, "%s", tn("not before the deadline (%" PRId64 " ms)", ms_since(t0)));
	no_inflight("a timed-out rf_recv()");
	is_int(rf_send(cfd, "x", 1, 0, SOON(5000)), 1, tn("send a byte after the timeout"));
	memset(buf, 0, sizeof(buf));
	is_int(rf_recv(sfd, buf, sizeof(buf), 0, SOON(5000)), 1, tn("the next rf_recv() gets it"));

	/* Peer close: end of stream. */
	is_int(rf_close(cfd), 0, tn("the client closes"));
	is_int(rf_recv(sfd, buf, sizeof(buf), 0, SOON(5000)), 0,
	       tn("rf_recv() after the peer closed -> 0"));
	rf_close(sfd);

	/* Sending to a closed peer fails with an error, not SIGPIPE. */
	sfd = accept_pair(lfd, port, &cfd, &ac);
	ok(sfd >= 0, "%s", tn("another connection (%d)", sfd));
	if (sfd >= 0) {
		rf_close(sfd);
		memset(buf, 'p', sizeof(buf));
		for (i = 0; i < 200; i++) {
			n = rf_send(cfd, buf, sizeof(buf), 0, SOON(5000));
			if (n < 0)
				break;
			rf_sleep(SOON(1));
		}
		ok(n == -EPIPE || n == -ECONNRESET, "%s",
		   tn("rf_send() to a closed peer -> -EPIPE or -ECONNRESET (%zd after %d sends)", n,
		      i));
		/* After the reset is reported, sends fail with EPIPE (SIGPIPE's case). */
		n = rf_send(cfd, buf, sizeof(buf), 0, SOON(5000));
		is_int(n, -EPIPE, tn("the next rf_send() -> -EPIPE"));
		is_int(sigpipes, 0, tn("no SIGPIPE was raised (MSG_NOSIGNAL)"));
		rf_close(cfd);
	}
	close(lfd);
	no_inflight("stream I/O");
}

static void test_refused(void)
{
	struct sockaddr_in sa = loopback(0);
	socklen_t len = sizeof(sa);
	int s, fd, rc;

	/* A port that was just bound and let go has no listener. */
	s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (!ok(s >= 0 && bind(s, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
		    getsockname(s, (struct sockaddr *)&sa, &len) == 0,
		"%s", tn("find a free port"))) {
		if (s >= 0)
			close(s);
		return;
	}
	close(s);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	rc = rf_connect(fd, (struct sockaddr *)&sa, sizeof(sa), SOON(5000));
	is_int(rc, -ECONNREFUSED, tn("rf_connect() to a closed port -> -ECONNREFUSED"));
	close(fd);
	no_inflight("a refused rf_connect()");
}

/* ------------------------------------------------------------------ main */

static void *net_main(void *arg)
{
	struct rf_stats st = my_stats();
	int multishot = !!(st.features & RF_FEAT_MULTISHOT_ACCEPT);

	tap_diag("%s: features 0x%x, multishot accept %s", tn("ring"), st.features,
		 multishot ? "in use" : "not in use");
	if (test_config_flags & RF_RT_NO_MULTISHOT_ACCEPT)
		is_int(multishot, 0, tn("RF_RT_NO_MULTISHOT_ACCEPT: no RF_FEAT_MULTISHOT_ACCEPT"));

	test_echo();
	test_queued();
	test_acceptor_waiting();
	test_acceptor_emfile();
	test_streams();
	test_refused();
	return NULL;
}

int main(void)
{
	test_watchdog(120);
	ring_or_skip_all();
	signal(SIGPIPE, count_sigpipe);
	run_configs(configs, ARRAY_SIZE(configs), net_main, NULL, test_acceptor_left_open);
	return done_testing();
}
