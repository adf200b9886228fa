// SPDX-License-Identifier: MIT
/*
 * http-floor - the least work an io_uring server can do per HTTP request:
 * the reference that tells bench-http where its client, not the server,
 * sets the rate.
 *
 * One thread, one ring (SINGLE_ISSUER + DEFER_TASKRUN), a multishot accept,
 * and per connection one multishot receive into a ring of provided buffers:
 * the receive is armed once per connection, not once per request.  Every
 * "\r\n\r\n" received ends a request and gets the same 13-byte answer as
 * httpserver's GET /; the answers to one chunk go out in one send.  It does
 * not parse HTTP (a method, a path, a body mean nothing to it): it is a
 * measuring stick, not a server.  A "Connection: close" line is honoured
 * (the connection is closed once answered), so that a client reading to
 * the end, like bench-http's check, gets its answer and its end.
 *
 * usage: http-floor [ADDR:]PORT   (port 0: any; prints "listening on A:P")
 * A connection whose answer does not go out whole, or whose receive fails,
 * is closed; an accept error that is not transient (see serve-util.h)
 * ends it with status 1; SIGINT/SIGTERM end it with 0.
 */
#include <errno.h>
#include <liburing.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "serve-util.h"	/* the servers' address, limit and listen helpers */

#define ANSWER "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, world\n"
#define ANSWER_LEN (sizeof(ANSWER) - 1)
#define ANSWERS_MAX 64			/* answers one send can carry */
#define BUF_SIZE 2048			/* one provided buffer */
#define BUF_COUNT 16384			/* a power of two, at most 32768 */
#define BUF_GROUP 0
#define RING_ENTRIES 4096

enum { UD_ACCEPT = 1, UD_RECV, UD_SEND };

/* user_data: the descriptor above the kind */
#define UD(kind, fd) (((uint64_t)(uint32_t)(fd) << 8) | (kind))
#define UD_KIND(ud) ((int)((ud) & 0xff))
#define UD_FD(ud) ((int)((ud) >> 8))

/*
 * A descriptor is closed only when the kernel holds no request on it (its
 * receive has ended and no send is in flight), so that its number cannot
 * be reused under a request still pending.
 */
struct conn {
	unsigned char match;	/* bytes of "\r\n\r\n" matched so far */
	signed char line;	/* bytes of "connection: close\r" matched at a
				 * line's start; -1: not this line */
	bool close_seen;	/* in the request being received */
	bool close_after;	/* "Connection: close": close once answered */
	bool receiving;		/* the multishot receive is armed */
	bool closing;		/* shut down: close when nothing is pending */
	unsigned int sends;	/* sends in flight */
};

static struct io_uring ring;
static struct io_uring_buf_ring *bufring;
static char *bufs;
static struct conn *conns;
static int conns_max;
static char answers[ANSWERS_MAX * ANSWER_LEN];
static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static struct io_uring_sqe *sqe_get(void)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);

	if (!sqe) {
		io_uring_submit(&ring);
		sqe = io_uring_get_sqe(&ring);
	}
	return sqe;	/* NULL only if submitting freed nothing */
}

static void maybe_close(int fd)
{
	struct conn *c = &conns[fd];

	if (c->closing && !c->receiving && !c->sends)
		close(fd);
}

/* Stop the connection: its receive ends (0), then it is closed. */
static void shut(int fd)
{
	conns[fd].closing = true;
	shutdown(fd, SHUT_RDWR);
	maybe_close(fd);
}

static void arm_recv(int fd)
{
	struct io_uring_sqe *sqe = sqe_get();

	conns[fd].receiving = sqe != NULL;
	if (!sqe) {
		shut(fd);
		return;
	}
	io_uring_prep_recv_multishot(sqe, fd, NULL, 0, 0);
	sqe->flags |= IOSQE_BUFFER_SELECT;
	sqe->buf_group = BUF_GROUP;
	sqe->user_data = UD(UD_RECV, fd);
}

static void send_answers(int fd, unsigned int n)
{
	struct io_uring_sqe *sqe;

	while (n) {
		unsigned int k = n > ANSWERS_MAX ? ANSWERS_MAX : n;

		sqe = sqe_get();
		if (!sqe) {
			shut(fd);
			return;
		}
		/* the static buffer never changes: sends may overlap */
		io_uring_prep_send(sqe, fd, answers, k * ANSWER_LEN, MSG_NOSIGNAL);
		sqe->user_data = UD(UD_SEND, fd);
		conns[fd].sends++;
		n -= k;
	}
}

/*
 * Count the requests a chunk ends, carrying a partial "\r\n\r\n" (and a
 * partial "Connection: close" line) over to the next chunk.
 */
static unsigned int count_ends(struct conn *c, const char *p, size_t len)
{
	static const char end[4] = { '\r', '\n', '\r', '\n' };
	static const char close_line[] = "connection: close\r";
	unsigned int n = 0, m = c->match;

	for (size_t i = 0; i < len; i++) {
		char ch = p[i];

		if (c->line >= 0) {
			if ((ch | 0x20) == close_line[c->line] || ch == close_line[c->line]) {
				if (++c->line == (int)sizeof(close_line) - 1) {
					c->close_seen = true;
					c->line = -1;
				}
			} else {
				c->line = -1;
			}
		}
		if (ch == '\n')
			c->line = 0;
		if (ch == end[m]) {
			if (++m == 4) {
				n++;
				m = 0;
				if (c->close_seen)
					c->close_after = true;
			}
		} else {
			m = ch == '\r';
		}
	}
	c->match = (unsigned char)m;
	return n;
}

static void recycle(unsigned int bid)
{
	io_uring_buf_ring_add(bufring, bufs + (size_t)bid * BUF_SIZE, BUF_SIZE, (unsigned short)bid,
			      io_uring_buf_ring_mask(BUF_COUNT), 0);
	io_uring_buf_ring_advance(bufring, 1);
}

static void on_recv(int fd, const struct io_uring_cqe *cqe)
{
	struct conn *c = &conns[fd];

	if (!(cqe->flags & IORING_CQE_F_MORE))
		c->receiving = false;
	if (cqe->res > 0 && (cqe->flags & IORING_CQE_F_BUFFER)) {
		unsigned int bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
		const char *p = bufs + (size_t)bid * BUF_SIZE;
		unsigned int n = count_ends(c, p, (size_t)cqe->res);

		recycle(bid);
		if (n && !c->closing)
			send_answers(fd, n);
		/* the kernel may end a multishot receive: arm it again */
		if (!c->receiving && !c->closing)
			arm_recv(fd);
		return;
	}
	if (cqe->res == -ENOBUFS && !c->closing) {
		/* every buffer was taken at once: they come back as we go */
		if (!c->receiving)
			arm_recv(fd);
		return;
	}
	/* 0: the peer closed; < 0: an error */
	c->closing = true;
	maybe_close(fd);
}

static void on_send(int fd, const struct io_uring_cqe *cqe)
{
	struct conn *c = &conns[fd];

	c->sends--;
	/* a failed or short send, or "Connection: close" answered */
	if (cqe->res < 0 || cqe->res % (int)ANSWER_LEN || (c->close_after && !c->sends))
		shut(fd);
	else
		maybe_close(fd);
}

static int arm_accept(int lfd)
{
	struct io_uring_sqe *sqe = sqe_get();

	if (!sqe)
		return -EBUSY;
	io_uring_prep_multishot_accept(sqe, lfd, NULL, NULL, SOCK_CLOEXEC);
	sqe->user_data = UD(UD_ACCEPT, lfd);
	return 0;
}

int main(int argc, char **argv)
{
	struct io_uring_params p = { .flags = IORING_SETUP_SINGLE_ISSUER |
					      IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_CQSIZE,
				     .cq_entries = RING_ENTRIES * 8 };
	struct sockaddr_storage ss;
	socklen_t sslen;
	char name[SERVE_ADDRSTRLEN];
	rlim_t nofile;
	int lfd, ret;

	if (argc != 2 || serve_parse_addr(argv[1], &ss, &sslen, 1) < 0) {
		fprintf(stderr, "usage: http-floor [ADDR:]PORT\n");
		return 2;
	}
	/* as many connections as descriptors: conns[] is indexed by them */
	nofile = serve_raise_nofile("http-floor", 0, "connections", 0);
	conns_max = nofile == 0 || nofile > (1u << 22) ? 1 << 22 : (int)nofile;
	conns = calloc((size_t)conns_max, sizeof(*conns));
	if (!conns) {
		fprintf(stderr, "http-floor: out of memory\n");
		return 1;
	}
	for (int i = 0; i < ANSWERS_MAX; i++)
		memcpy(answers + i * ANSWER_LEN, ANSWER, ANSWER_LEN);

	lfd = serve_listen_named("http-floor", &ss, sslen, name, sizeof(name));
	if (lfd < 0)
		return 1;
	ret = io_uring_queue_init_params(RING_ENTRIES, &ring, &p);
	if (ret < 0) {
		fprintf(stderr, "http-floor: io_uring_queue_init: %s\n", strerror(-ret));
		return 1;
	}
	/* the provided-buffer ring: page-aligned, registered as group 0 */
	{
		struct io_uring_buf_reg reg = { .ring_entries = BUF_COUNT, .bgid = BUF_GROUP };

		if (posix_memalign((void **)&bufring, 4096, BUF_COUNT * sizeof(struct io_uring_buf)) ||
		    !(bufs = malloc((size_t)BUF_COUNT * BUF_SIZE))) {
			fprintf(stderr, "http-floor: out of memory\n");
			return 1;
		}
		reg.ring_addr = (unsigned long)bufring;
		io_uring_buf_ring_init(bufring);
		ret = io_uring_register_buf_ring(&ring, &reg, 0);
		if (ret < 0) {
			fprintf(stderr, "http-floor: provided-buffer ring: %s\n", strerror(-ret));
			return 1;
		}
		for (unsigned int i = 0; i < BUF_COUNT; i++)
			io_uring_buf_ring_add(bufring, bufs + (size_t)i * BUF_SIZE, BUF_SIZE,
					      (unsigned short)i, io_uring_buf_ring_mask(BUF_COUNT), (int)i);
		io_uring_buf_ring_advance(bufring, BUF_COUNT);
	}
	/* no SA_RESTART: a signal ends the wait in io_uring_enter() */
	{
		struct sigaction sa_stop = { .sa_handler = on_signal };

		sigemptyset(&sa_stop.sa_mask);
		sigaction(SIGINT, &sa_stop, NULL);
		sigaction(SIGTERM, &sa_stop, NULL);
		signal(SIGPIPE, SIG_IGN);
	}
	if (arm_accept(lfd) < 0)
		return 1;
	printf("listening on %s\n", name);
	fflush(stdout);

	while (!stop) {
		struct io_uring_cqe *cqe;
		unsigned int head, n = 0;

		ret = io_uring_submit_and_wait(&ring, 1);
		if (ret < 0 && ret != -EINTR && ret != -EAGAIN && ret != -EBUSY) {
			fprintf(stderr, "http-floor: io_uring_enter: %s\n", strerror(-ret));
			return 1;
		}
		io_uring_for_each_cqe(&ring, head, cqe) {
			int fd = UD_FD(cqe->user_data);

			n++;
			switch (UD_KIND(cqe->user_data)) {
			case UD_ACCEPT:
				if (cqe->res >= 0 && cqe->res < conns_max) {
					memset(&conns[cqe->res], 0, sizeof(conns[0]));
					arm_recv(cqe->res);
				} else if (cqe->res >= 0) {
					close(cqe->res);
				} else if (!serve_accept_error_is_transient(-cqe->res)) {
					fprintf(stderr, "http-floor: accept: %s\n", strerror(-cqe->res));
					return 1;
				}
				if (!(cqe->flags & IORING_CQE_F_MORE) && arm_accept(lfd) < 0)
					return 1;
				break;
			case UD_RECV:
				on_recv(fd, cqe);
				break;
			case UD_SEND:
				on_send(fd, cqe);
				break;
			}
		}
		io_uring_cq_advance(&ring, n);
	}
	return 0;
}
