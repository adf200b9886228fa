/* SPDX-License-Identifier: MIT */
/*
 * http-parse-fuzz.c - libFuzzer target for httpserver's request-head parser
 * (servers/http/http-parse.c).
 *
 * Beyond "no crash, no sanitizer report" it checks what the server relies
 * on when it re-parses a buffer as bytes arrive:
 *
 *   - the return is 0, a length in (0, len], or -400/-414/-431/-505;
 *   - a complete head: head_len is the return, the target lies inside the
 *     buffer, is "/..." or "http[s]://..." in visible ASCII without '#', or
 *     "*" for OPTIONS; the path lies inside the target (or is "/"), has no
 *     '?'; and the fields agree with the header's rules (Host in 1.1, not
 *     both Content-Length and Transfer-Encoding, no chunked in 1.0, at
 *     most HTTP_FIELDS_MAX fields...);
 *   - prefix consistency: parsing exactly the head gives the same request;
 *     a prefix that parses complete is the same head as the whole input's;
 *     a prefix refused means the whole input is refused too;
 *   - http_decode_path() never writes past outsz (the output buffer is a
 *     heap block of exactly outsz bytes, so ASan sees an overflow) and
 *     returns a NUL-terminated string with no NUL inside;
 *   - http_chunked_parse(), on the whole input and on what follows a
 *     chunked head, with a limit taken from the input: the return is 0, 1,
 *     -400, -413 or -431; the same, at the same byte, whether the bytes
 *     come at once, one by one (in 61-byte pieces past 2 KiB) or in two
 *     pieces split anywhere; 0 uses
 *     every byte; the data counted never exceeds the limit.
 *
 * Each prefix is parsed from its own heap copy of exactly its length, so
 * a read past the end of the prefix is caught too.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http-parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                            \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "http-parse-fuzz: %s:%d: check failed: %s\n", \
				__FILE__, __LINE__, #cond);                    \
			abort();                                               \
		}                                                              \
	} while (0)

static int valid_return(int rc, size_t len)
{
	if (rc > 0)
		return (size_t)rc <= len;
	return rc == 0 || rc == -400 || rc == -414 || rc == -431 || rc == -505;
}

/* Parse buf[0..len) from a heap copy of exactly len bytes. */
static int parse_copy(const char *buf, size_t len, struct http_request *r)
{
	char *copy = malloc(len ? len : 1);
	int rc;

	CHECK(copy);
	memcpy(copy, buf, len);
	rc = http_parse_request(copy, len, r);
	CHECK(valid_return(rc, len));
	if (rc > 0) {
		/* Rebase the pointers on buf, before the copy goes. */
		CHECK(r->target >= copy && r->target + r->target_len <= copy + rc);
		CHECK(r->path);
		if (r->path >= copy && r->path < copy + rc)
			CHECK(r->path >= r->target &&
			      r->path + r->path_len <= r->target + r->target_len);
		else
			CHECK(r->path_len == 1 && r->path[0] == '/');	/* the static "/" */
		if (r->authority)
			CHECK(r->authority > r->target &&
			      r->authority + r->authority_len <= r->target + r->target_len);
		CHECK(r->method_name >= copy && r->method_name + r->method_len <= copy + rc);
		r->target = buf + (r->target - copy);
		r->method_name = buf + (r->method_name - copy);
		if (r->host) {
			CHECK(r->host >= copy && r->host + r->host_len <= copy + rc);
			r->host = buf + (r->host - copy);
		}
		if (r->path >= copy && r->path < copy + rc)
			r->path = buf + (r->path - copy);
		if (r->authority)
			r->authority = buf + (r->authority - copy);
	}
	free(copy);
	return rc;
}

static int same_request(const struct http_request *a, const struct http_request *b)
{
	return a->method == b->method && a->method_name == b->method_name &&
	       a->method_len == b->method_len && a->target == b->target &&
	       a->target_len == b->target_len && a->minor == b->minor &&
	       a->keep_alive == b->keep_alive && a->has_host == b->has_host &&
	       a->host == b->host && a->host_len == b->host_len &&
	       a->chunked == b->chunked && a->content_length == b->content_length &&
	       a->te_other == b->te_other && a->path == b->path &&
	       a->path_len == b->path_len && a->authority == b->authority &&
	       a->authority_len == b->authority_len &&
	       a->fields == b->fields && a->head_len == b->head_len;
}

/*
 * An independent count of the head's lines against the limits: the request
 * line's length, the field lines' bytes and number, and that the head ends
 * with its empty line.
 */
static void check_limits(const char *h, size_t n, const struct http_request *r)
{
	size_t i = 0, end, fields = 0, field_bytes = 0;
	const char *lf;

	while (h[i] == '\n' || h[i] == '\r')
		i += h[i] == '\r' ? 2 : 1;
	CHECK(i <= HTTP_LEADING_EMPTY_MAX * 2);
	lf = memchr(h + i, '\n', n - i);
	CHECK(lf);
	end = (size_t)(lf - h);
	CHECK(end - i - (h[end - 1] == '\r') <= HTTP_REQUEST_LINE_MAX);
	for (i = end + 1;; i = end + 1) {
		lf = memchr(h + i, '\n', n - i);
		CHECK(lf);
		end = (size_t)(lf - h);
		if (end == i || (end == i + 1 && h[i] == '\r'))
			break;
		fields++;
		field_bytes += end + 1 - i;
	}
	CHECK(end + 1 == n);
	CHECK(fields == r->fields);
	CHECK(fields <= HTTP_FIELDS_MAX && field_bytes <= HTTP_HEADERS_MAX);
}

static void check_complete(const char *buf, int rc, const struct http_request *r)
{
	static const char *const known[] = {
		"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
	};
	size_t i;

	CHECK(r->head_len == (size_t)rc);
	CHECK((unsigned int)r->method <= HTTP_UNKNOWN);
	CHECK(r->method_len > 0);
	CHECK(r->minor == 0 || r->minor == 1);
	CHECK(r->keep_alive == 0 || r->keep_alive == 1);
	CHECK(r->has_host || r->minor == 0);
	CHECK(!r->has_host == !r->host);
	CHECK(r->content_length >= -1);
	CHECK(!(r->chunked && r->content_length >= 0));
	CHECK(!r->chunked || r->minor == 1);
	CHECK(!r->te_other || r->chunked);
	CHECK(r->fields <= HTTP_FIELDS_MAX);
	CHECK(r->target_len > 0 && r->target_len <= HTTP_REQUEST_LINE_MAX);
	if (r->target[0] == '*')
		CHECK(r->target_len == 1 && r->method == HTTP_OPTIONS);
	else if (r->target[0] != '/')
		CHECK(r->authority && r->authority_len > 0 && r->target_len >= 8 &&
		      (r->target[0] | 0x20) == 'h');
	for (i = 0; i < r->target_len; i++)
		CHECK(r->target[i] >= 0x21 && r->target[i] <= 0x7e && r->target[i] != '#');
	CHECK(r->path_len > 0 && (r->path[0] == '/' || r->path[0] == '*'));
	CHECK(!memchr(r->path, '?', r->path_len));
	check_limits(buf, (size_t)rc, r);
	/* The method: its enum names exactly the token received. */
	for (i = 0; i < HTTP_UNKNOWN; i++) {
		int same = r->method_len == strlen(known[i]) &&
			   !memcmp(r->method_name, known[i], r->method_len);

		CHECK(same == (r->method == (enum http_method)i));
	}
}

static void check_decode(const char *t, size_t len, size_t outsz)
{
	char *out = malloc(outsz ? outsz : 1);
	int rc;

	CHECK(out);
	rc = http_decode_path(t, len, outsz ? out : NULL, outsz);
	CHECK(rc >= 0 || rc == -400 || rc == -414);
	if (rc >= 0) {
		CHECK((size_t)rc < outsz);
		CHECK(out[rc] == '\0');
		CHECK(strlen(out) == (size_t)rc);
		CHECK(rc <= (int)len);
	}
	free(out);
}

/* http_chunked_parse() on a heap copy of exactly buf[0..len). */
static int chunked_copy(struct http_chunked *ch, const char *buf, size_t len, uint64_t max,
			size_t *used)
{
	char *copy = malloc(len ? len : 1);
	int rc;

	CHECK(copy);
	memcpy(copy, buf, len);
	*used = (size_t)-1;
	rc = http_chunked_parse(ch, copy, len, max, used);
	free(copy);
	CHECK(rc == 0 || rc == 1 || rc == -400 || rc == -413 || rc == -431);
	if (rc >= 0)
		CHECK(*used <= len && (rc == 1 || *used == len));
	if (rc >= 0)
		CHECK(ch->body <= max && ch->trailers <= HTTP_FIELDS_MAX);
	return rc;
}

/* buf[0..len) in pieces of @piece bytes, or split once at @split. */
static int chunked_pieces(const char *buf, size_t len, uint64_t max, size_t piece,
			  size_t split, size_t *used)
{
	struct http_chunked ch = { 0 };
	size_t off = 0, n, u;
	int rc = 0;

	*used = 0;
	while (off < len && !rc) {
		n = piece ? piece : (off < split ? split - off : len - off);
		if (n > len - off)
			n = len - off;
		rc = chunked_copy(&ch, buf + off, n, max, &u);
		if (rc < 0)
			return rc;
		*used += u;
		off += n;
	}
	return rc;
}

static void check_chunked(const char *buf, size_t len, uint64_t max)
{
	struct http_chunked ch = { 0 };
	size_t used, u;
	int rc, prc;

	rc = chunked_copy(&ch, buf, len, max, &used);
	/* byte by byte (a heap copy each), or in small pieces for long inputs */
	prc = chunked_pieces(buf, len, max, len <= 2048 ? 1 : 61, 0, &u);
	CHECK(prc == rc && (rc < 0 || u == used));
	prc = chunked_pieces(buf, len, max, 0, len ? (unsigned char)buf[len - 1] % len : 0, &u);
	CHECK(prc == rc && (rc < 0 || u == used));
	if (rc == 1) {
		/* Exactly the body: the same end. */
		memset(&ch, 0, sizeof(ch));
		prc = chunked_copy(&ch, buf, used, max, &u);
		CHECK(prc == 1 && u == used);
	}
}

/*
 * buf[0..k) against the whole input's result @rc: complete means the same
 * head as the whole's; refused means the whole is refused too.
 */
static void check_prefix(const char *buf, size_t k, int rc, const struct http_request *whole)
{
	struct http_request part;
	int prc = parse_copy(buf, k, &part);

	if (prc > 0)
		CHECK(prc == rc && same_request(&part, whole));
	else if (prc < 0)
		CHECK(rc < 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *buf = (const char *)data;
	struct http_request whole, part;
	size_t k, step;
	int rc, prc;

	rc = parse_copy(buf, size, &whole);
	if (rc > 0) {
		check_complete(buf, rc, &whole);
		/* Exactly the head: the same request. */
		prc = parse_copy(buf, (size_t)rc, &part);
		CHECK(prc == rc && same_request(&part, &whole));
		check_decode(whole.target, whole.target_len, whole.target_len + 1);
		check_decode(whole.target, whole.target_len,
			     size ? data[size - 1] % (whole.target_len + 2) : 0);
	}

	/*
	 * Prefixes: every one of a short input, about 64 spread over a long
	 * one, those around the request-line limit, and the last few.
	 */
	step = size <= 512 ? 1 : size / 64;
	for (k = 0; k < size; k += step)
		check_prefix(buf, k, rc, &whole);
	/* Around the request-line limit, where the early 414 is decided. */
	for (k = HTTP_REQUEST_LINE_MAX - 2; k < size && k < HTTP_REQUEST_LINE_MAX + 12; k++)
		check_prefix(buf, k, rc, &whole);
	for (k = size > 4 ? size - 4 : 0; k < size; k++)
		check_prefix(buf, k, rc, &whole);

	/* The decoder on raw bytes, with an outsz from the input. */
	if (size)
		check_decode(buf + 1, size - 1, (unsigned char)buf[0]);

	/*
	 * The chunked decoder: on what follows a chunked head, and on the
	 * raw input, with a small limit (from the input) and a huge one.
	 */
	if (rc > 0 && whole.chunked)
		check_chunked(buf + rc, size - (size_t)rc, 1024);
	check_chunked(buf, size, size ? (unsigned char)buf[0] * 16u : 0);
	check_chunked(buf, size, INT64_MAX);
	return 0;
}
