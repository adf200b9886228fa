/* SPDX-License-Identifier: MIT */
/*
 * http-parse.c - httpserver's request-head parser against every rule in
 * servers/http/http-parse.h: what parses, what each refusal
 * answers (400, 414, 431, 505), the limits both on complete heads and on
 * heads still arriving, the keep-alive rules, pipelining, the target's
 * forms and path, the versions taken as 1.1, Transfer-Encoding, the
 * chunked body decoder, and the path decoder.
 *
 * Every input is copied into a buffer of exactly its length, so under
 * ASan a read past the end fails the test.  The parser is compiled into
 * this program (tests/fuzz/build.mk); it needs no runtime.
 */
#include <stdint.h>
#include <stdlib.h>

#include "tap.h"
#include "http-parse.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

static struct http_request req;

/* Parse @len bytes of @s from a heap copy of exactly that size. */
static int parse_n(const char *s, size_t len)
{
	char *copy = malloc(len ? len : 1);
	int rc;

	if (!copy)
		abort();
	memcpy(copy, s, len);
	rc = http_parse_request(copy, len, &req);
	/* Keep the pointers meaningful for the caller: rebase them on @s. */
	if (rc > 0) {
		req.target = s + (req.target - copy);
		req.method_name = s + (req.method_name - copy);
		if (req.host)
			req.host = s + (req.host - copy);
		if (req.path >= copy && req.path < copy + len)
			req.path = s + (req.path - copy);
		if (req.authority)
			req.authority = s + (req.authority - copy);
	}
	free(copy);
	return rc;
}

static int parse(const char *s)
{
	return parse_n(s, strlen(s));
}

/* A growable string for the big inputs. */
struct sbuf {
	char *s;
	size_t len, cap;
};

static void sb_add_n(struct sbuf *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		b->cap = (b->len + n + 1) * 2;
		b->s = realloc(b->s, b->cap);
		if (!b->s)
			abort();
	}
	memcpy(b->s + b->len, s, n);
	b->len += n;
	b->s[b->len] = '\0';
}

static void sb_add(struct sbuf *b, const char *s)
{
	sb_add_n(b, s, strlen(s));
}

static void sb_repeat(struct sbuf *b, char c, size_t n)
{
	while (n--)
		sb_add_n(b, &c, 1);
}

/* @s with its CRLFs shown as " | ", for a check's name. */
static const char *shown(const char *s)
{
	static char buf[256];
	size_t o = 0;

	for (; *s && o + 4 < sizeof(buf); s++) {
		if (*s == '\r')
			continue;
		if (*s == '\n') {
			if (s[1])
				o += (size_t)snprintf(buf + o, sizeof(buf) - o, " | ");
			continue;
		}
		buf[o++] = *s;
	}
	buf[o] = '\0';
	return buf;
}

static void test_simple(void)
{
	static const char get[] = "GET / HTTP/1.1\r\nHost: localhost:8080\r\n\r\n";
	static const char head[] = "HEAD /files/a.txt?x=1 HTTP/1.0\r\n\r\n";
	static const char opts[] = "OPTIONS * HTTP/1.1\r\nHost: [::1]:80\r\n\r\n";
	int rc;

	rc = parse(get);
	is_int(rc, strlen(get), "minimal GET: complete, head_len = its length");
	is_int(req.head_len, strlen(get), "  head_len");
	is_int(req.method, HTTP_GET, "  method GET");
	ok(req.target_len == 1 && req.target[0] == '/', "  target \"/\"");
	is_int(req.minor, 1, "  HTTP/1.1");
	is_int(req.keep_alive, 1, "  1.1 keeps the connection by default");
	is_int(req.has_host, 1, "  has Host");
	ok(req.host_len == 14 && !memcmp(req.host, "localhost:8080", 14), "  Host value");
	is_int(req.content_length, -1, "  no Content-Length: -1");
	is_int(req.chunked, 0, "  not chunked");
	is_int(req.fields, 1, "  one field");

	rc = parse(head);
	is_int(rc, strlen(head), "HEAD, HTTP/1.0 without Host: complete");
	is_int(req.method, HTTP_HEAD, "  method HEAD");
	ok(req.target_len == 16 && !memcmp(req.target, "/files/a.txt?x=1", 16),
	   "  target with query");
	is_int(req.minor, 0, "  HTTP/1.0");
	is_int(req.keep_alive, 0, "  1.0 closes by default");
	is_int(req.has_host, 0, "  no Host");
	is_int(req.fields, 0, "  no fields");

	rc = parse(opts);
	is_int(rc, strlen(opts), "OPTIONS * with an IPv6 Host: complete");
	is_int(req.method, HTTP_OPTIONS, "  method OPTIONS");
	ok(req.target_len == 1 && req.target[0] == '*', "  target \"*\"");

	rc = parse("BREW /pot HTTP/1.1\r\nHost: tea\r\n\r\n");
	ok(rc > 0, "BREW: parses (the server answers 501)");
	is_int(req.method, HTTP_UNKNOWN, "  method HTTP_UNKNOWN");
	ok(req.method_len == 4 && !memcmp(req.method_name, "BREW", 4), "  method token kept");
	rc = parse("get / HTTP/1.1\r\nHost: a\r\n\r\n");
	ok(rc > 0 && req.method == HTTP_UNKNOWN,
	   "lower-case \"get\": methods are case-sensitive, unknown");

	rc = parse("GET / HTTP/1.1\nHost: a\n\n");
	is_int(rc, 24, "bare LF line ends are accepted");
	rc = parse("GET / HTTP/1.1\r\nHost: a\n\r\n");
	is_int(rc, 26, "mixed CRLF and LF");
	rc = parse("\r\n\nGET / HTTP/1.1\r\nHost: a\r\n\r\n");
	is_int(rc, 30, "leading empty lines skipped, counted in head_len");
	rc = parse("\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n");
	is_int(rc, 35, "4 leading empty lines: accepted");
	rc = parse("\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n");
	is_int(rc, -400, "5 leading empty lines: 400");

	rc = parse("GET / HTTP/1.1\r\nHost: a\r\nX-Empty:\r\nX-Ows: \t v  \t\r\n"
		   "X-Obs: caf\xc3\xa9\r\n\r\n");
	ok(rc > 0 && req.fields == 4, "empty value, OWS, obs-text in values: accepted");
	rc = parse("GET / HTTP/1.1\r\nhOsT: a\r\n\r\n");
	ok(rc > 0 && req.has_host, "field names are case-insensitive");
	rc = parse("GET / HTTP/1.1\r\nHost:\r\n\r\n");
	ok(rc > 0 && req.has_host && req.host_len == 0, "an empty Host is allowed");
	rc = parse("POST /form HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello");
	is_int(rc, strlen("POST /form HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n"),
	       "the body is not part of the head");
}

static void test_keep_alive(void)
{
	static const struct {
		const char *version, *fields;
		int want;
	} cases[] = {
		{ "1.1", "", 1 },
		{ "1.1", "Connection: close\r\n", 0 },
		{ "1.1", "Connection: CLOSE\r\n", 0 },
		{ "1.1", "Connection: keep-alive, close\r\n", 0 },
		{ "1.1", "Connection: Upgrade ,\tclose \r\n", 0 },
		{ "1.1", "Connection: keep-alive\r\nConnection: close\r\n", 0 },
		{ "1.1", "Connection: closed\r\n", 1 },
		{ "1.1", "Connection: \"close\"\r\n", 1 },
		{ "1.1", "X-Connection: close\r\n", 1 },
		{ "1.0", "", 0 },
		{ "1.0", "Connection: keep-alive\r\n", 1 },
		{ "1.0", "Connection: Keep-Alive\r\n", 1 },
		{ "1.0", "Connection: foo ,  keep-alive\r\n", 1 },
		{ "1.0", "Connection: ,,keep-alive,,\r\n", 1 },
		{ "1.0", "Connection: keep-alive\r\nConnection: close\r\n", 0 },
		{ "1.0", "Connection: close, keep-alive\r\n", 0 },
		{ "1.0", "Connection: keep-alive-ish\r\n", 0 },
	};
	char buf[256];
	size_t i;
	int rc;

	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		snprintf(buf, sizeof(buf), "GET / HTTP/%s\r\nHost: a\r\n%s\r\n",
			 cases[i].version, cases[i].fields);
		rc = parse(buf);
		ok(rc > 0 && req.keep_alive == cases[i].want,
		   "keep_alive %d: HTTP/%s, \"%s\"", cases[i].want, cases[i].version,
		   shown(cases[i].fields));
	}
}

static void test_pipeline(void)
{
	static const char two[] = "GET /one HTTP/1.1\r\nHost: a\r\n\r\n"
				  "HEAD /two HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
				  "GET /thr";
	int n1, n2, rc;

	n1 = parse(two);
	ok(n1 > 0 && req.target_len == 4 && !memcmp(req.target, "/one", 4),
	   "pipelined: first request");
	n2 = parse(two + n1);
	ok(n2 > 0 && req.method == HTTP_HEAD && req.target_len == 4 &&
	   !memcmp(req.target, "/two", 4) && !req.keep_alive, "pipelined: second from head_len");
	rc = parse(two + n1 + n2);
	is_int(rc, 0, "pipelined: the third is incomplete");
}

/* Every proper prefix of a valid head needs more bytes (returns 0). */
static void test_truncation(void)
{
	static const char *const heads[] = {
		"\r\n\r\nPOST /a/b?c=d HTTP/1.1\r\nHost: example.com:80\r\n"
		"Connection: keep-alive\r\n"
		"Content-Length: 12\r\nX-Obs: \xff\t\r\nAccept: */*\r\n\r\n",
		"GET / HTTP/1.0\nConnection: keep-alive\n\n",
		"OPTIONS * HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
		"BREW /pot HTTP/1.1\r\nHost: x\r\n\n",
	};
	size_t i, k, len;
	int rc, bad;

	for (i = 0; i < ARRAY_SIZE(heads); i++) {
		len = strlen(heads[i]);
		bad = 0;
		for (k = 0; k < len; k++) {
			rc = parse_n(heads[i], k);
			if (rc != 0 && bad++ == 0)
				tap_diag("  prefix of %zu bytes: %d", k, rc);
		}
		rc = parse_n(heads[i], len);
		ok(!bad && rc == (int)len,
		   "head %zu: its %zu proper prefixes need more, all of it parses", i, len);
	}
}

static void test_bad_requests(void)
{
	static const struct {
		const char *what, *req;
		int want;
	} cases[] = {
		{ "leading SP", " GET / HTTP/1.1\r\nHost: a\r\n\r\n", -400 },
		{ "two SP after the method", "GET  / HTTP/1.1\r\nHost: a\r\n\r\n", -400 },
		{ "two SP after the target", "GET /  HTTP/1.1\r\nHost: a\r\n\r\n", -400 },
		{ "HTAB as separator", "GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n", -400 },
		{ "a space in the target", "GET /a b HTTP/1.1\r\nHost: a\r\n\r\n", -400 },
		{ "non-token byte in the method", "GE(T / HTTP/1.1\r\nHost: a\r\n\r\n", -400 },
		{ "empty method", " / HTTP/1.1\r\nHost: a\r\n\r\n", -400 },
		{ "authority-form", "CONNECT a:443 HTTP/1.1\r\nHost: a\r\n\r\n", -400 },
		{ "asterisk for GET", "GET * HTTP/1.1\r\nHost: a\r\n\r\n", -400 },
		{ "asterisk plus more", "OPTIONS *x HTTP/1.1\r\nHost: a\r\n\r\n", -400 },
		{ "DEL in the target", "GET /\x7f HTTP/1.1\r\nHost: a\r\n\r\n", -400 },
		{ "obs-text in the target", "GET /\x80 HTTP/1.1\r\nHost: a\r\n\r\n", -400 },
		{ "control byte in the target", "GET /\x01 HTTP/1.1\r\nHost: a\r\n\r\n", -400 },
		{ "no version (HTTP/0.9)", "GET /\r\n\r\n", -400 },
		{ "trailing SP after the version", "GET / HTTP/1.1 \r\nHost: a\r\n\r\n", -400 },
		{ "lower-case version", "GET / http/1.1\r\nHost: a\r\n\r\n", -400 },
		{ "version with junk", "GET / HTTP/1.1x\r\nHost: a\r\n\r\n", -400 },
		{ "version HTTP/11", "GET / HTTP/11\r\nHost: a\r\n\r\n", -400 },
		{ "version HTTP/1.10", "GET / HTTP/1.10\r\nHost: a\r\n\r\n", -400 },
		{ "version HTTP/1.", "GET / HTTP/1.\r\nHost: a\r\n\r\n", -400 },
		{ "bare CR ends the request line", "GET / HTTP/1.1\rHost: a\r\n\r\n", -400 },
		{ "bare CR in a field", "GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n", -400 },
		{ "bare CR before the end", "GET / HTTP/1.1\r\nHost: a\r\n\r\r\n", -400 },
		{ "empty line of CR CR", "\r\rGET / HTTP/1.1\r\nHost: a\r\n\r\n", -400 },
		{ "1.1 without Host", "GET / HTTP/1.1\r\n\r\n", -400 },
		{ "two Host fields", "GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", -400 },
		{ "Host with a space", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", -400 },
		{ "Host with a slash", "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", -400 },
		{ "Host with userinfo", "GET / HTTP/1.1\r\nHost: u@a\r\n\r\n", -400 },
		{ "whitespace before the colon", "GET / HTTP/1.1\r\nHost : a\r\n\r\n", -400 },
		{ "HTAB before the colon", "GET / HTTP/1.1\r\nHost\t: a\r\n\r\n", -400 },
		{ "obs-fold", "GET / HTTP/1.1\r\nHost: a\r\nX: b\r\n c\r\n\r\n", -400 },
		{ "obs-fold first", "GET / HTTP/1.1\r\n Host: a\r\n\r\n", -400 },
		{ "empty field name", "GET / HTTP/1.1\r\nHost: a\r\n: x\r\n\r\n", -400 },
		{ "no colon", "GET / HTTP/1.1\r\nHost: a\r\nX-Flag\r\n\r\n", -400 },
		{ "non-token byte in a name", "GET / HTTP/1.1\r\nHost: a\r\nX(y): 1\r\n\r\n",
		  -400 },
		{ "control byte in a value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\x01\r\n\r\n",
		  -400 },
		{ "DEL in a value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\x7f\r\n\r\n", -400 },
		{ "Content-Length and Transfer-Encoding",
		  "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n"
		  "Transfer-Encoding: chunked\r\n\r\n",
		  -400 },
		{ "Transfer-Encoding and Content-Length",
		  "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
		  "Content-Length: 3\r\n\r\n",
		  -400 },
		{ "HTTP/2.0", "GET / HTTP/2.0\r\nHost: a\r\n\r\n", -505 },
		{ "HTTP/1.2 without Host (it is 1.1)", "GET / HTTP/1.2\r\n\r\n", -400 },
		{ "a '#' in the target", "GET /#x HTTP/1.1\r\nHost: a\r\n\r\n", -400 },
		{ "a '#' after a query", "GET /a?b#c HTTP/1.1\r\nHost: a\r\n\r\n", -400 },
		{ "HTTP/0.9 spelt out", "GET / HTTP/0.9\r\n\r\n", -505 },
		{ "HTTP/9.9", "GET / HTTP/9.9\r\n\r\n", -505 },
	};
	size_t i;

	for (i = 0; i < ARRAY_SIZE(cases); i++)
		is_int(parse(cases[i].req), cases[i].want, cases[i].what);

	/* NUL bytes need explicit lengths. */
	is_int(parse_n("GET /\0 HTTP/1.1\r\nHost: a\r\n\r\n", 28), -400, "NUL in the target");
	is_int(parse_n("GET / HTTP/1.1\r\nHost: a\r\nX: a\0b\r\n\r\n", 35), -400, "NUL in a value");
	is_int(parse_n("GET / HTTP/1.1\r\nHo\0st: a\r\n\r\n", 29), -400, "NUL in a name");
}

/* Garbage is refused before its line ends. */
static void test_early_refusal(void)
{
	static const struct {
		const char *what, *req;
		int want;
	} cases[] = {
		{ "leading SP, incomplete", " GET", -400 },
		{ "control byte in the target, incomplete", "GET /a\x01", -400 },
		{ "absolute-form begun, incomplete", "GET h", 0 },
		{ "no scheme we know, incomplete", "GET f", -400 },
		{ "a '#' in the target, incomplete", "GET /a#", -400 },
		{ "bad version, incomplete", "GET / HTTP/1.1x", -400 },
		{ "HTTP/2.0, incomplete", "GET / HTTP/2.0", -505 },
		{ "space before colon, incomplete", "GET / HTTP/1.1\r\nHost ", -400 },
		{ "obs-fold, incomplete", "GET / HTTP/1.1\r\nHost: a\r\n\t", -400 },
		{ "NUL-free control in a value, incomplete", "GET / HTTP/1.1\r\nX: \x02", -400 },
		{ "bare CR mid-line, incomplete", "GET / HTTP/1.1\r\nX: a\rb", -400 },
		{ "a CR at the end may be a line end", "GET / HTTP/1.1\r\nX: a\r", 0 },
		{ "request line cut after the version", "GET / HTTP/1.1", 0 },
		{ "CR at the end of the request line", "GET / HTTP/1.1\r", 0 },
	};
	size_t i;

	for (i = 0; i < ARRAY_SIZE(cases); i++)
		is_int(parse(cases[i].req), cases[i].want, cases[i].what);
}

static void test_content_length(void)
{
	static const struct {
		const char *fields;
		int ok;
		int64_t want;
	} cases[] = {
		{ "Content-Length: 42\r\n", 1, 42 },
		{ "Content-Length: 0\r\n", 1, 0 },
		{ "content-length:007\r\n", 1, 7 },
		{ "Content-Length: \t 7 \t\r\n", 1, 7 },
		{ "Content-Length: 9223372036854775807\r\n", 1, INT64_MAX },
		{ "Content-Length: 9223372036854775808\r\n", 0, 0 },
		{ "Content-Length: 99999999999999999999999\r\n", 0, 0 },
		{ "Content-Length: 5\r\nContent-Length: 5\r\n", 0, 0 },
		{ "Content-Length: 5\r\nContent-Length: 6\r\n", 0, 0 },
		{ "Content-Length: 5, 5\r\n", 0, 0 },
		{ "Content-Length: abc\r\n", 0, 0 },
		{ "Content-Length: -1\r\n", 0, 0 },
		{ "Content-Length: +5\r\n", 0, 0 },
		{ "Content-Length: 0x10\r\n", 0, 0 },
		{ "Content-Length: 1 2\r\n", 0, 0 },
		{ "Content-Length:\r\n", 0, 0 },
	};
	char buf[256];
	size_t i;
	int rc;

	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		snprintf(buf, sizeof(buf), "POST / HTTP/1.1\r\nHost: a\r\n%s\r\n", cases[i].fields);
		rc = parse(buf);
		if (cases[i].ok)
			ok(rc > 0 && req.content_length == cases[i].want,
			   "Content-Length %" PRId64 " from \"%s\"", cases[i].want,
			   shown(cases[i].fields));
		else
			ok(rc == -400, "400 for \"%s\" (got %d)", shown(cases[i].fields), rc);
	}

	rc = parse("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n");
	ok(rc > 0 && req.chunked == 1 && req.content_length == -1, "Transfer-Encoding: chunked");
	rc = parse("POST / HTTP/1.1\r\nHost: a\r\ntransfer-encoding: gzip, chunked\r\n\r\n");
	ok(rc > 0 && req.chunked == 1 && req.te_other == 1,
	   "gzip, chunked: chunked framing, and another coding (501)");
}

/* RFC 9112 sections 6.1 and 6.3: chunked last, once; none in HTTP/1.0. */
static void test_transfer_encoding(void)
{
	static const struct {
		const char *version, *fields;
		int rc, other;	/* rc 1: parses, chunked */
	} cases[] = {
		{ "1.1", "Transfer-Encoding: chunked\r\n", 1, 0 },
		{ "1.1", "Transfer-Encoding: CHUNKED\r\n", 1, 0 },
		{ "1.1", "Transfer-Encoding: gzip , chunked\r\n", 1, 1 },
		{ "1.1", "Transfer-Encoding: gzip;level=1, chunked\r\n", 1, 1 },
		{ "1.1", "Transfer-Encoding: , chunked ,\r\n", 1, 0 },
		{ "1.1", "Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n", 1, 1 },
		{ "1.2", "Transfer-Encoding: chunked\r\n", 1, 0 },
		{ "1.1", "Transfer-Encoding: gzip\r\n", -400, 0 },
		{ "1.1", "Transfer-Encoding: chunked, gzip\r\n", -400, 0 },
		{ "1.1", "Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n", -400, 0 },
		{ "1.1", "Transfer-Encoding: chunked, chunked\r\n", -400, 0 },
		{ "1.1", "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n", -400, 0 },
		{ "1.1", "Transfer-Encoding: chunked;x=1\r\n", -400, 0 },
		{ "1.1", "Transfer-Encoding:\r\n", -400, 0 },
		{ "1.1", "Transfer-Encoding: ,\r\n", -400, 0 },
		{ "1.1", "Transfer-Encoding: \"chunked\"\r\n", -400, 0 },
		{ "1.1", "Transfer-Encoding: chunked x\r\n", -400, 0 },
		{ "1.1", "Transfer-Encoding: identity\r\n", -400, 0 },
		{ "1.0", "Transfer-Encoding: chunked\r\n", -400, 0 },
		{ "1.0", "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n", -400, 0 },
	};
	char buf[256];
	size_t i;
	int rc;

	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		snprintf(buf, sizeof(buf), "POST / HTTP/%s\r\nHost: a\r\n%s\r\n",
			 cases[i].version, cases[i].fields);
		rc = parse(buf);
		if (cases[i].rc == 1)
			ok(rc > 0 && req.chunked == 1 && req.te_other == cases[i].other &&
			   req.content_length == -1,
			   "HTTP/%s, \"%s\": chunked%s", cases[i].version, shown(cases[i].fields),
			   cases[i].other ? ", another coding" : "");
		else
			ok(rc == cases[i].rc, "HTTP/%s, \"%s\": %d (got %d)", cases[i].version,
			   shown(cases[i].fields), cases[i].rc, rc);
	}
}

/* The target's forms, what routes (req->path), and the versions. */
static void test_target_forms(void)
{
	static const struct {
		const char *target, *path, *authority;
	} good[] = {
		{ "/", "/", NULL },
		{ "/?a=b", "/", NULL },
		{ "/fib/10?x=1&y", "/fib/10", NULL },
		{ "/files/a.txt?", "/files/a.txt", NULL },
		{ "//a/b", "//a/b", NULL },
		{ "http://example.com/fib/10?q", "/fib/10", "example.com" },
		{ "HTTP://Example.COM:8080/", "/", "Example.COM:8080" },
		{ "https://a", "/", "a" },
		{ "http://a?q=1", "/", "a" },
		{ "http://[::1]:80/x/", "/x/", "[::1]:80" },
		{ "http://127.0.0.1/files/%41", "/files/%41", "127.0.0.1" },
	};
	static const char *const bad[] = {
		"http://", "http:///x", "http://:80/", "http://u@a/", "http://@a/", "ftp://a/",
		"http:/a", "http:a", "httpx://a/", "https//a", "http://a b/", "a:443",
		"http://a/#f", "http://a/b\\c#", "mailto:x@y",
	};
	char buf[256];
	size_t i;
	int rc;

	for (i = 0; i < ARRAY_SIZE(good); i++) {
		snprintf(buf, sizeof(buf), "GET %s HTTP/1.1\r\nHost: h\r\n\r\n", good[i].target);
		rc = parse(buf);
		ok(rc > 0 && req.target_len == strlen(good[i].target) &&
		   req.path_len == strlen(good[i].path) &&
		   !memcmp(req.path, good[i].path, req.path_len) &&
		   (good[i].authority ?
		    req.authority && req.authority_len == strlen(good[i].authority) &&
		    !memcmp(req.authority, good[i].authority, req.authority_len) :
		    !req.authority),
		   "target %s: path %s%s%s", good[i].target, good[i].path,
		   good[i].authority ? ", authority " : "",
		   good[i].authority ? good[i].authority : "");
	}
	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		snprintf(buf, sizeof(buf), "GET %s HTTP/1.1\r\nHost: h\r\n\r\n", bad[i]);
		is_int(parse(buf), -400, bad[i]);
	}
	rc = parse("GET http://a/ HTTP/1.1\r\n\r\n");
	is_int(rc, -400, "absolute-form in HTTP/1.1 still needs Host (RFC 9112 3.2)");
	rc = parse("GET http://a/x HTTP/1.0\r\n\r\n");
	ok(rc > 0 && req.path_len == 2, "absolute-form in HTTP/1.0 without Host");
	rc = parse("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n");
	ok(rc > 0 && req.path_len == 1 && req.path[0] == '*', "asterisk-form: path \"*\"");

	rc = parse("GET / HTTP/1.2\r\nHost: a\r\n\r\n");
	ok(rc > 0 && req.minor == 1 && req.keep_alive == 1,
	   "HTTP/1.2 is taken as HTTP/1.1 (RFC 9110 2.5)");
	rc = parse("GET / HTTP/1.9\r\nHost: a\r\nConnection: close\r\n\r\n");
	ok(rc > 0 && req.minor == 1 && req.keep_alive == 0, "HTTP/1.9 too, with its fields");
}

/* Feed @body to the chunked decoder in pieces of @piece bytes (0: whole). */
static int chunked_n(const char *body, size_t len, size_t piece, uint64_t max,
		     size_t *used, struct http_chunked *ch)
{
	size_t off = 0, n, u = 0;
	char *copy;
	int rc = 0;

	memset(ch, 0, sizeof(*ch));
	*used = 0;
	if (!piece)
		piece = len ? len : 1;
	do {
		n = len - off < piece ? len - off : piece;
		copy = malloc(n ? n : 1);
		if (!copy)
			abort();
		memcpy(copy, body + off, n);
		rc = http_chunked_parse(ch, copy, n, max, &u);
		free(copy);
		if (rc < 0)
			return rc;
		if (u > n)
			return -1;	/* never: used is within the piece */
		*used += u;
		off += n;
	} while (!rc && off < len);
	return rc;
}

static int chunked(const char *body, uint64_t max, size_t *used, struct http_chunked *ch)
{
	return chunked_n(body, strlen(body), 0, max, used, ch);
}

static void test_chunked(void)
{
	static const struct {
		const char *what, *body;
		int rc;
		uint64_t data;
		unsigned int trailers;
	} cases[] = {
		{ "the empty body", "0\r\n\r\n", 1, 0, 0 },
		{ "two chunks", "5\r\nhello\r\n1\r\n!\r\n0\r\n\r\n", 1, 6, 0 },
		{ "hex sizes, any case", "A\r\n0123\r\n4567\r\n0\r\n\r\n", 1, 10, 0 },
		{ "lower-case hex", "a\r\n0123456789\r\n0\r\n\r\n", 1, 10, 0 },
		{ "leading zeros", "0000000000000000000005\r\nhello\r\n000\r\n\r\n", 1, 5, 0 },
		{ "CR and LF in data", "4\r\n\r\n\r\n\r\n0\r\n\r\n", 1, 4, 0 },
		{ "extensions", "5;a=b;c ; d = \"q\\\"\" \t;e=f\r\nhello\r\n0;last\r\n\r\n", 1, 5,
		  0 },
		{ "trailers", "0\r\nX-Sum: 1\r\nEmpty:\r\n\r\n", 1, 0, 2 },
		{ "no digits", "\r\n", -400, 0, 0 },
		{ "not hex", "x\r\n", -400, 0, 0 },
		{ "a sign", "-1\r\n", -400, 0, 0 },
		{ "0x prefix", "0x5\r\n", -400, 0, 0 },
		{ "bare LF after the size", "5\nhello\r\n0\r\n\r\n", -400, 0, 0 },
		{ "bare CR after the size", "5\rhello", -400, 0, 0 },
		{ "SP after the size, no extension", "5 \r\n", -400, 0, 0 },
		{ "empty extension name", "5;\r\n", -400, 0, 0 },
		{ "extension without a value", "5;a=\r\n", -400, 0, 0 },
		{ "two names", "5;a b\r\n", -400, 0, 0 },
		{ "control byte in a quoted value", "5;a=\"\x01\"\r\n", -400, 0, 0 },
		{ "data longer than its size", "5\r\nhello!\r\n0\r\n\r\n", -400, 0, 0 },
		{ "bare LF after the data", "5\r\nhello\n0\r\n\r\n", -400, 0, 0 },
		{ "bare LF at the end", "0\r\n\n", -400, 0, 0 },
		{ "trailer without a colon", "0\r\nX y\r\n\r\n", -400, 0, 0 },
		{ "trailer obs-fold", "0\r\n X: y\r\n\r\n", -400, 0, 0 },
		{ "control byte in a trailer", "0\r\nX: \x01\r\n\r\n", -400, 0, 0 },
		{ "bare LF after a trailer", "0\r\nX: y\n\r\n", -400, 0, 0 },
		{ "over the limit in one chunk", "b\r\n", -413, 0, 0 },
		{ "over the limit in two", "5\r\nhello\r\n6\r\n", -413, 0, 0 },
		{ "a size beyond 64 bits", "10000000000000000\r\n", -413, 0, 0 },
	};
	static const char tail[] = "5\r\nhello\r\n0\r\nT: 1\r\n\r\nGET / HTTP/1.1\r\n";
	struct http_chunked ch;
	struct sbuf b = { 0 };
	size_t i, used, used1, piece;
	int rc, rc1, bad;

	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		rc = chunked(cases[i].body, 10, &used, &ch);
		if (cases[i].rc == 1)
			ok(rc == 1 && used == strlen(cases[i].body) && ch.body == cases[i].data &&
			   ch.trailers == cases[i].trailers,
			   "chunked, %s: ends after %zu bytes, %llu data bytes", cases[i].what,
			   strlen(cases[i].body), (unsigned long long)cases[i].data);
		else
			ok(rc == cases[i].rc, "chunked, %s: %d (got %d)", cases[i].what,
			   cases[i].rc, rc);
	}
	rc = chunked("5\r\nhello\r\n0\r\n\r\n", 5, &used, &ch);
	ok(rc == 1 && ch.body == 5, "chunked: exactly the limit is allowed");
	rc = chunked("7fffffffffffffff\r\n", INT64_MAX, &used, &ch);
	ok(rc == 0 && ch.size == INT64_MAX, "chunked: a size of INT64_MAX under that limit");
	rc = chunked("8000000000000000\r\n", INT64_MAX, &used, &ch);
	is_int(rc, -413, "chunked: INT64_MAX + 1: 413");

	rc = chunked(tail, 100, &used, &ch);
	ok(rc == 1 && used == strlen(tail) - strlen("GET / HTTP/1.1\r\n"),
	   "chunked: what follows the body is not used (the next request)");
	bad = 0;
	for (piece = 1; piece < sizeof(tail); piece++) {
		rc1 = chunked_n(tail, strlen(tail), piece, 100, &used1, &ch);
		if (rc1 != rc || used1 != used)
			bad++;
	}
	ok(!bad, "chunked: in pieces of every size, the same end");
	bad = 0;
	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		rc = chunked(cases[i].body, 10, &used, &ch);
		rc1 = chunked_n(cases[i].body, strlen(cases[i].body), 1, 10, &used1, &ch);
		if (rc != rc1 || (rc == 1 && used != used1)) {
			tap_diag("  %s: %d whole, %d byte by byte", cases[i].what, rc, rc1);
			bad++;
		}
	}
	ok(!bad, "chunked: byte by byte, every case as whole");
	rc = chunked("5\r\nhel", 10, &used, &ch);
	ok(rc == 0 && used == 6 && ch.size == 2, "chunked: incomplete data needs more");

	sb_add(&b, "5;");
	sb_repeat(&b, 'e', HTTP_CHUNK_LINE_MAX - 4);
	sb_add(&b, "\r\nhello\r\n0\r\n\r\n");
	rc = chunked_n(b.s, b.len, 0, 10, &used, &ch);
	ok(rc == 1, "chunked: a size line of HTTP_CHUNK_LINE_MAX bytes with its CRLF");
	b.len = 0;
	sb_add(&b, "5;");
	sb_repeat(&b, 'e', HTTP_CHUNK_LINE_MAX - 3);
	sb_add(&b, "\r\n");
	is_int(chunked_n(b.s, b.len, 0, 10, &used, &ch), -400, "chunked: one byte more: 400");
	b.len = 0;
	sb_add(&b, "0\r\nX: ");
	sb_repeat(&b, 'v', HTTP_HEADERS_MAX);
	sb_add(&b, "\r\n\r\n");
	is_int(chunked_n(b.s, b.len, 0, 10, &used, &ch), -431,
	       "chunked: trailers over HTTP_HEADERS_MAX: 431");
	b.len = 0;
	sb_add(&b, "0\r\n");
	for (i = 0; i <= HTTP_FIELDS_MAX; i++)
		sb_add(&b, "T: 1\r\n");
	sb_add(&b, "\r\n");
	is_int(chunked_n(b.s, b.len, 0, 10, &used, &ch), -431,
	       "chunked: more than HTTP_FIELDS_MAX trailers: 431");
	free(b.s);
}

/* A request whose request line has @content bytes (no line end). */
static void request_line_of(struct sbuf *b, size_t content)
{
	b->len = 0;
	sb_add(b, "GET /");
	sb_repeat(b, 'a', content - strlen("GET / HTTP/1.1"));
	sb_add(b, " HTTP/1.1");
}

static void test_request_line_limit(void)
{
	struct sbuf b = { 0 };
	int rc;

	request_line_of(&b, HTTP_REQUEST_LINE_MAX);
	sb_add(&b, "\r\nHost: a\r\n\r\n");
	rc = parse_n(b.s, b.len);
	ok(rc > 0 && req.target_len == HTTP_REQUEST_LINE_MAX - 13,
	   "request line of HTTP_REQUEST_LINE_MAX bytes: accepted");
	request_line_of(&b, HTTP_REQUEST_LINE_MAX);
	sb_add(&b, "\nHost: a\n\n");
	ok(parse_n(b.s, b.len) > 0, "  with bare LF too");
	request_line_of(&b, HTTP_REQUEST_LINE_MAX);
	sb_add(&b, "\r");
	is_int(parse_n(b.s, b.len), 0, "  incomplete, up to its CR: needs more");

	request_line_of(&b, HTTP_REQUEST_LINE_MAX + 1);
	sb_add(&b, "\r\nHost: a\r\n\r\n");
	is_int(parse_n(b.s, b.len), -414, "one byte more, complete: 414");
	request_line_of(&b, HTTP_REQUEST_LINE_MAX + 1);
	sb_add(&b, "\n");
	is_int(parse_n(b.s, b.len), -414, "  with bare LF: 414");
	request_line_of(&b, HTTP_REQUEST_LINE_MAX + 1);
	is_int(parse_n(b.s, b.len), -414, "  incomplete, as soon as the extra byte arrives: 414");
	request_line_of(&b, HTTP_REQUEST_LINE_MAX);
	is_int(parse_n(b.s, b.len), 0,
	       "  HTTP_REQUEST_LINE_MAX bytes, no line end yet: needs more");

	b.len = 0;
	sb_add(&b, "GET /");
	sb_repeat(&b, 'x', 100000);
	is_int(parse_n(b.s, b.len), -414, "100 kB target, no line end: 414");
	free(b.s);
}

static void test_header_limits(void)
{
	static const char rl[] = "GET / HTTP/1.1\r\n";
	struct sbuf b = { 0 };
	char line[64];
	size_t fill;
	int i;

	/* Field lines of exactly HTTP_HEADERS_MAX bytes with their CRLFs. */
	sb_add(&b, rl);
	sb_add(&b, "Host: a\r\nX: ");
	fill = HTTP_HEADERS_MAX - strlen("Host: a\r\nX: \r\n");
	sb_repeat(&b, 'v', fill);
	sb_add(&b, "\r\n\r\n");
	ok(parse_n(b.s, b.len) > 0, "field lines of HTTP_HEADERS_MAX bytes: accepted");

	b.len = 0;
	sb_add(&b, rl);
	sb_add(&b, "Host: a\r\nX: ");
	sb_repeat(&b, 'v', fill + 1);
	sb_add(&b, "\r\n\r\n");
	is_int(parse_n(b.s, b.len), -431, "one byte more, complete: 431");
	b.len -= 2;
	is_int(parse_n(b.s, b.len), -431, "  before the empty line: 431");
	b.len -= 2;
	is_int(parse_n(b.s, b.len), 0,
	       "  one byte over without its line end: a bare LF would still fit, needs more");
	sb_add(&b, "v");
	is_int(parse_n(b.s, b.len), -431, "  two bytes over, no line end yet: 431");
	b.len = 0;
	sb_add(&b, rl);
	sb_add(&b, "Host: a\r\nX: ");
	sb_repeat(&b, 'v', fill);
	is_int(parse_n(b.s, b.len), 0, "  HTTP_HEADERS_MAX - 2 bytes, no line end: needs more");
	sb_add(&b, "\r\nY");
	is_int(parse_n(b.s, b.len), -431, "  full, and a further field starts: 431");

	b.len = 0;
	sb_add(&b, rl);
	sb_add(&b, "Host: a\r\n");
	for (i = 1; i < HTTP_FIELDS_MAX; i++) {
		snprintf(line, sizeof(line), "X-%d: %d\r\n", i, i);
		sb_add(&b, line);
	}
	sb_add(&b, "\r\n");
	ok(parse_n(b.s, b.len) > 0 && req.fields == HTTP_FIELDS_MAX,
	   "HTTP_FIELDS_MAX fields: accepted");
	b.len -= 2;
	sb_add(&b, "X-last: 1\r\n\r\n");
	is_int(parse_n(b.s, b.len), -431, "one field more, complete: 431");
	b.len -= strlen("-last: 1\r\n\r\n");
	is_int(parse_n(b.s, b.len), -431, "  incomplete, on its first byte: 431");

	b.len = 0;
	sb_add(&b, rl);
	sb_repeat(&b, 'H', 100000);
	is_int(parse_n(b.s, b.len), -431, "100 kB field name, no line end: 431");
	free(b.s);
}

static void test_decode_path(void)
{
	static const struct {
		const char *target, *want;
		int rc;
	} cases[] = {
		{ "/", "/", 1 },
		{ "/a%20b", "/a b", 4 },
		{ "/%2e%2e/etc/passwd", "/../etc/passwd", 14 },
		{ "/x%2Fy", "/x/y", 4 },
		{ "/%4a%4A", "/JJ", 3 },
		{ "/a?b=%zz", "/a", 2 },
		{ "/?", "/", 1 },
		{ "/%3F?q", "/?", 2 },
		{ "/%ff", "/\xff", 2 },
		{ "/%00", NULL, -400 },
		{ "/a%00b", NULL, -400 },
		{ "/%zz", NULL, -400 },
		{ "/%4", NULL, -400 },
		{ "/%", NULL, -400 },
		{ "/%g1", NULL, -400 },
	};
	char out[64];
	size_t i;
	int rc;

	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		memset(out, 0x55, sizeof(out));
		rc = http_decode_path(cases[i].target, strlen(cases[i].target), out, sizeof(out));
		if (cases[i].want)
			ok(rc == cases[i].rc && !strcmp(out, cases[i].want),
			   "decode \"%s\" -> \"%s\"", cases[i].target, cases[i].want);
		else
			ok(rc == cases[i].rc, "decode \"%s\": %d (got %d)", cases[i].target,
			   cases[i].rc, rc);
	}

	is_int(http_decode_path("/a\0b", 4, out, sizeof(out)), -400, "decode a raw NUL: 400");
	memset(out, 0x55, sizeof(out));
	rc = http_decode_path("/abc%41", 7, out, 6);
	ok(rc == 5 && !strcmp(out, "/abcA") && out[6] == 0x55,
	   "decode into exactly its length + 1");
	memset(out, 0x55, sizeof(out));
	rc = http_decode_path("/abc%41", 7, out, 5);
	ok(rc == -414 && out[5] == 0x55, "one byte short: 414, nothing written past outsz");
	is_int(http_decode_path("/", 1, out, 0), -414, "outsz 0: 414");
	rc = http_decode_path("", 0, out, 1);
	ok(rc == 0 && out[0] == '\0', "empty target into 1 byte: \"\"");
}

static void test_names(void)
{
	static const char *const names[] = {
		"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
	};
	static const struct {
		int status;
		const char *reason;
	} reasons[] = {
		{ 200, "OK" }, { 400, "Bad Request" }, { 403, "Forbidden" }, { 404, "Not Found" },
		{ 405, "Method Not Allowed" }, { 408, "Request Timeout" }, { 414, "URI Too Long" },
		{ 431, "Request Header Fields Too Large" }, { 500, "Internal Server Error" },
		{ 501, "Not Implemented" }, { 503, "Service Unavailable" },
		{ 505, "HTTP Version Not Supported" }, { -431, "Request Header Fields Too Large" },
		{ 299, "Unknown" },
	};
	char buf[64];
	size_t i;
	int bad = 0, rc;

	for (i = 0; i < ARRAY_SIZE(names); i++) {
		snprintf(buf, sizeof(buf), "%s / HTTP/1.1\r\nHost: a\r\n\r\n", names[i]);
		rc = parse(buf);
		if (rc <= 0 || req.method != (enum http_method)i ||
		    strcmp(http_method_name(req.method), names[i])) {
			tap_diag("  %s: rc %d, method %d", names[i], rc, req.method);
			bad++;
		}
	}
	ok(!bad, "every known method parses to its enum, and http_method_name() names it");
	is_str(http_method_name(HTTP_UNKNOWN), "UNKNOWN", "http_method_name(HTTP_UNKNOWN)");
	for (i = 0; i < ARRAY_SIZE(reasons); i++)
		is_str(http_reason(reasons[i].status), reasons[i].reason, "http_reason()");
}

int main(void)
{
	test_simple();
	test_keep_alive();
	test_pipeline();
	test_truncation();
	test_bad_requests();
	test_early_refusal();
	test_content_length();
	test_transfer_encoding();
	test_target_forms();
	test_chunked();
	test_request_line_limit();
	test_header_limits();
	test_decode_path();
	test_names();
	tap_plan(tap__n);
	return tap_done();
}
