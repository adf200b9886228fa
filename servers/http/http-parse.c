/* SPDX-License-Identifier: MIT */
/*
 * http-parse.c - httpserver's HTTP/1.x request-head parser (http-parse.h
 * says what it accepts).
 *
 * The head is cut into lines with memchr() (glibc's is vectorised), each
 * line bounded by what is left of its limit, so a limit is detected from
 * the bytes received without waiting for a line end.  A complete line is
 * checked in full; an incomplete last line is checked as far as it goes,
 * with the same code, so garbage is refused as soon as it arrives.  Byte
 * classes come from one 256-entry table; no call through a pointer, no
 * allocation, no copy.
 */
#include <limits.h>
#include <stdint.h>
#include <string.h>

#include "http-parse.h"

/* Byte classes: a byte may be in several. */
#define C_TOKEN		0x01	/* tchar: a method or field-name byte */
#define C_TARGET	0x02	/* a request-target byte: visible ASCII */
#define C_VALUE		0x04	/* a field-value byte: visible, obs-text, SP, HTAB */
#define C_HOST		0x08	/* a Host byte: reg-name, IP-literal, ':' port */

/* Shorthands for the table only. */
#define X	(C_TOKEN | C_TARGET | C_VALUE | C_HOST)
#define N	(C_TOKEN | C_TARGET | C_VALUE)
#define S	(C_TARGET | C_VALUE | C_HOST)
#define P	(C_TARGET | C_VALUE)
#define V	C_VALUE
#define F	(C_TOKEN | C_VALUE)	/* '#': a fragment has no place in a request */

static const uint8_t http_class[256] = {
	/* 00 */ 0, 0, 0, 0, 0, 0, 0, 0, 0, V, 0, 0, 0, 0, 0, 0,
	/* 10 */ 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	/* 20 */ V, X, P, F, X, X, X, X, S, S, X, X, S, X, X, P,
	/* 30 */ X, X, X, X, X, X, X, X, X, X, S, S, P, S, P, P,
	/* 40 */ P, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
	/* 50 */ X, X, X, X, X, X, X, X, X, X, X, S, P, S, N, X,
	/* 60 */ N, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
	/* 70 */ X, X, X, X, X, X, X, X, X, X, X, P, N, P, X, 0,
	/* 80 */ V, V, V, V, V, V, V, V, V, V, V, V, V, V, V, V,
	/* 90 */ V, V, V, V, V, V, V, V, V, V, V, V, V, V, V, V,
	/* a0 */ V, V, V, V, V, V, V, V, V, V, V, V, V, V, V, V,
	/* b0 */ V, V, V, V, V, V, V, V, V, V, V, V, V, V, V, V,
	/* c0 */ V, V, V, V, V, V, V, V, V, V, V, V, V, V, V, V,
	/* d0 */ V, V, V, V, V, V, V, V, V, V, V, V, V, V, V, V,
	/* e0 */ V, V, V, V, V, V, V, V, V, V, V, V, V, V, V, V,
	/* f0 */ V, V, V, V, V, V, V, V, V, V, V, V, V, V, V, V,
};

#undef X
#undef N
#undef S
#undef P
#undef V
#undef F

/* What the field lines said that only counts once the head is complete. */
struct fields_seen {
	int conn_close;
	int conn_keep_alive;
	int te;			/* a Transfer-Encoding field came */
	unsigned int codings;	/* transfer codings listed, in all TE fields */
	int last_chunked;	/* the last one listed is chunked */
	int early_chunked;	/* chunked came before the last one */
	int other;		/* a coding other than chunked */
};

/* The first byte in [p, end) not of class @cls, or end. */
static inline const char *skip_class(const char *p, const char *end, uint8_t cls)
{
	while (p < end && (http_class[(unsigned char)*p] & cls))
		p++;
	return p;
}

static inline int is_ows(char c)
{
	return c == ' ' || c == '\t';
}

/*
 * Does [s, s + n) equal the lower-case literal @lit, ignoring case?  s holds
 * token bytes only, and no token byte other than a letter becomes another
 * token byte when OR-ed with 0x20.
 */
static inline int token_is(const char *s, size_t n, const char *lit, size_t litlen)
{
	size_t i;

	if (n != litlen)
		return 0;
	for (i = 0; i < n; i++)
		if ((s[i] | 0x20) != lit[i])
			return 0;
	return 1;
}

#define TOKEN_IS(s, n, lit) token_is(s, n, lit, sizeof(lit) - 1)

/* The methods' tokens, case-sensitive (RFC 9110 section 9.1), by enum http_method. */
static const char *const method_names[] = {
	[HTTP_GET] = "GET",
	[HTTP_HEAD] = "HEAD",
	[HTTP_POST] = "POST",
	[HTTP_PUT] = "PUT",
	[HTTP_DELETE] = "DELETE",
	[HTTP_CONNECT] = "CONNECT",
	[HTTP_OPTIONS] = "OPTIONS",
	[HTTP_TRACE] = "TRACE",
	[HTTP_PATCH] = "PATCH",
};

static enum http_method method_of(const char *m, size_t n)
{
	enum http_method i;

	for (i = 0; i < HTTP_UNKNOWN; i++)
		if (strlen(method_names[i]) == n && !memcmp(m, method_names[i], n))
			return i;
	return HTTP_UNKNOWN;
}

/*
 * "HTTP/" DIGIT "." DIGIT in [p, end).  Incomplete (!complete): the bytes
 * so far must be a beginning of that.  HTTP/1.x with x above 1 is taken as
 * 1.1, the highest 1.x we speak (RFC 9110 section 2.5); another major
 * version is a 505.
 */
static int parse_version(const char *p, const char *end, int complete,
			 struct http_request *req)
{
	static const char pattern[] = "HTTP/#.#";	/* '#': a digit */
	size_t n = (size_t)(end - p), i;

	if (n > sizeof(pattern) - 1 || (complete && n != sizeof(pattern) - 1))
		return -400;
	for (i = 0; i < n; i++) {
		if (pattern[i] == '#' ? (unsigned char)(p[i] - '0') > 9 : p[i] != pattern[i])
			return -400;
	}
	if (n < sizeof(pattern) - 1)
		return 0;
	if (p[5] != '1')
		return -505;
	req->minor = p[7] == '0' ? 0 : 1;
	return 0;
}

/*
 * An absolute-form target (RFC 9112 section 3.2.2) in [p, end): "http://" or
 * "https://" (any case), a non-empty authority of Host bytes (no userinfo:
 * '@' is not one), then a path, a query or nothing.  The bytes are already
 * known to be target bytes.  Incomplete (!complete): the bytes so far must
 * be a beginning of that.  Complete: the authority and the path (without
 * the query; "/" when empty) go into @req.
 */
static int parse_absolute(const char *p, const char *end, int complete,
			  struct http_request *req)
{
	static const char scheme[] = "http";
	size_t n = (size_t)(end - p), i, k;
	const char *auth, *q;

	for (i = 0; i < sizeof(scheme) - 1; i++) {
		if (i == n)
			return complete ? -400 : 0;
		if ((p[i] | 0x20) != scheme[i])
			return -400;
	}
	if (i < n && (p[i] | 0x20) == 's')
		i++;
	for (k = 0; k < 3; k++, i++) {
		if (i == n)
			return complete ? -400 : 0;
		if (p[i] != "://"[k])
			return -400;
	}
	auth = p + i;
	q = skip_class(auth, end, C_HOST);
	if (q != end && *q != '/' && *q != '?')
		return -400;
	/* An empty host (RFC 9110 section 4.2.1), or a port without one. */
	if ((q == auth && (q != end || complete)) || (auth < end && *auth == ':'))
		return -400;
	if (!complete)
		return 0;
	req->authority = auth;
	req->authority_len = (size_t)(q - auth);
	if (q == end || *q == '?') {
		req->path = "/";
		req->path_len = 1;
	} else {
		const char *query = memchr(q, '?', (size_t)(end - q));

		req->path = q;
		req->path_len = (size_t)((query ? query : end) - q);
	}
	return 0;
}

/*
 * The request line's content [p, end) (no line end).  Incomplete
 * (!complete): the bytes so far must be a beginning of a valid line.
 * Return: 0 or -400 / -505.
 */
static int parse_request_line(const char *p, const char *end, int complete,
			      struct http_request *req)
{
	const char *q;
	int rc;

	q = skip_class(p, end, C_TOKEN);
	if (q == end)
		return complete ? -400 : 0;
	if (q == p || *q != ' ')
		return -400;
	req->method_name = p;
	req->method_len = (size_t)(q - p);
	req->method = method_of(p, (size_t)(q - p));

	p = q + 1;
	if (p == end)
		return complete ? -400 : 0;
	if (*p == '/') {
		q = skip_class(p + 1, end, C_TARGET);
	} else if (*p == '*') {
		if (req->method != HTTP_OPTIONS)
			return -400;
		q = p + 1;
	} else {
		/* absolute-form; authority-form, a second SP... fail in there */
		q = skip_class(p, end, C_TARGET);
		rc = parse_absolute(p, q, q != end, req);
		if (rc)
			return rc;
	}
	if (q == end)
		return complete ? -400 : 0;
	if (*q != ' ')
		return -400;	/* a byte that is no target byte: SP, '#', control... */
	req->target = p;
	req->target_len = (size_t)(q - p);
	if (!req->path) {
		/* origin-form or asterisk-form: the path is the target up to '?' */
		const char *query = memchr(p, '?', (size_t)(q - p));

		req->path = p;
		req->path_len = (size_t)((query ? query : q) - p);
	}

	return parse_version(q + 1, end, complete, req);
}

/* Content-Length: 1*DIGIT, at most INT64_MAX. */
static int parse_content_length(const char *v, size_t n, int64_t *out)
{
	int64_t x = 0;
	size_t i;

	if (n == 0)
		return -400;
	for (i = 0; i < n; i++) {
		unsigned int d = (unsigned char)v[i] - '0';

		if (d > 9 || x > (INT64_MAX - d) / 10)
			return -400;
		x = x * 10 + d;
	}
	*out = x;
	return 0;
}

/* Connection: a comma list of options; only "close" and "keep-alive" matter. */
static void parse_connection(const char *v, const char *end, struct fields_seen *seen)
{
	while (v < end) {
		const char *comma = memchr(v, ',', (size_t)(end - v));
		const char *e = comma ? comma : end;

		while (v < e && is_ows(*v))
			v++;
		while (e > v && is_ows(e[-1]))
			e--;
		if (TOKEN_IS(v, (size_t)(e - v), "close"))
			seen->conn_close = 1;
		else if (TOKEN_IS(v, (size_t)(e - v), "keep-alive"))
			seen->conn_keep_alive = 1;
		if (!comma)
			break;
		v = comma + 1;
	}
}

/*
 * Transfer-Encoding: a comma list of transfer codings, each a token with
 * optional parameters; the lists of several fields add up in order.  Only
 * the order matters here: chunked last (the framing), chunked nowhere
 * else, and whether any other coding is applied (which we cannot undo).
 */
static int parse_transfer_encoding(const char *v, const char *end, struct fields_seen *seen)
{
	seen->te = 1;
	while (v <= end) {
		const char *comma = memchr(v, ',', (size_t)(end - v));
		const char *e = comma ? comma : end, *name_end;

		while (v < e && is_ows(*v))
			v++;
		while (e > v && is_ows(e[-1]))
			e--;
		if (v < e) {	/* empty list elements are allowed, and ignored */
			name_end = skip_class(v, e, C_TOKEN);
			if (name_end == v || (name_end < e && *name_end != ';' && !is_ows(*name_end)))
				return -400;
			if (seen->last_chunked)
				seen->early_chunked = 1;
			seen->codings++;
			seen->last_chunked = TOKEN_IS(v, (size_t)(name_end - v), "chunked");
			/* chunked takes no parameters */
			if (seen->last_chunked && name_end != e)
				return -400;
			if (!seen->last_chunked)
				seen->other = 1;
		}
		if (!comma)
			break;
		v = comma + 1;
	}
	return 0;
}

/* What a complete field line means to the server. */
static int field_meaning(const char *name, size_t nlen, const char *v, size_t vlen,
			 struct http_request *req, struct fields_seen *seen)
{
	switch (nlen) {
	case 4:
		if (!TOKEN_IS(name, nlen, "host"))
			break;
		if (req->has_host || skip_class(v, v + vlen, C_HOST) != v + vlen)
			return -400;
		req->has_host = 1;
		req->host = v;
		req->host_len = vlen;
		break;
	case 10:
		if (TOKEN_IS(name, nlen, "connection"))
			parse_connection(v, v + vlen, seen);
		break;
	case 14:
		if (!TOKEN_IS(name, nlen, "content-length"))
			break;
		/* A second one is refused even when it agrees: see http-parse.h. */
		if (req->content_length >= 0)
			return -400;
		return parse_content_length(v, vlen, &req->content_length);
	case 17:
		if (TOKEN_IS(name, nlen, "transfer-encoding"))
			return parse_transfer_encoding(v, v + vlen, seen);
		break;
	}
	return 0;
}

/*
 * One field line's content [p, end) (no line end; p < end, *p not CR).
 * Incomplete (!complete): the bytes so far must be a beginning of a valid
 * line.  Return: 0 or -400.
 */
static int parse_field(const char *p, const char *end, int complete,
		       struct http_request *req, struct fields_seen *seen)
{
	const char *colon, *v, *ve;

	/* A name, then the colon: no whitespace before it, no obs-fold. */
	colon = skip_class(p, end, C_TOKEN);
	if (colon == end)
		return complete ? -400 : 0;
	if (colon == p || *colon != ':')
		return -400;
	v = colon + 1;
	ve = skip_class(v, end, C_VALUE);
	if (ve != end)
		return -400;	/* a control byte in the value */
	if (!complete)
		return 0;
	while (v < ve && is_ows(*v))
		v++;
	while (ve > v && is_ows(ve[-1]))
		ve--;
	return field_meaning(p, (size_t)(colon - p), v, (size_t)(ve - v), req, seen);
}

int http_parse_request(const char *buf, size_t len, struct http_request *req)
{
	const char *p = buf, *e = buf + len, *lf, *ce, *hdr, *lim;
	struct fields_seen seen = { 0 };
	unsigned int empty;
	size_t n;
	int rc;

	*req = (struct http_request){ .method = HTTP_UNKNOWN, .content_length = -1 };

	/* Empty lines a client may send between requests (RFC 9112 2.2). */
	for (empty = 0;; empty++) {
		const char *next;

		if (p == e)
			return 0;
		if (*p == '\n') {
			next = p + 1;
		} else if (*p == '\r') {
			if (p + 1 == e)
				return 0;
			if (p[1] != '\n')
				return -400;
			next = p + 2;
		} else {
			break;
		}
		if (empty == HTTP_LEADING_EMPTY_MAX)
			return -400;
		p = next;
	}

	/*
	 * The request line.  With at most HTTP_REQUEST_LINE_MAX bytes of
	 * content its LF is among the next HTTP_REQUEST_LINE_MAX + 2 bytes.
	 */
	n = (size_t)(e - p);
	lf = memchr(p, '\n', n < HTTP_REQUEST_LINE_MAX + 2 ? n : HTTP_REQUEST_LINE_MAX + 2);
	if (!lf) {
		if (n >= HTTP_REQUEST_LINE_MAX + 2 ||
		    (n == HTTP_REQUEST_LINE_MAX + 1 && p[HTTP_REQUEST_LINE_MAX] != '\r'))
			return -414;
		/* A CR at the end may be the start of the line end. */
		ce = e[-1] == '\r' ? e - 1 : e;
		return parse_request_line(p, ce, 0, req);
	}
	ce = lf > p && lf[-1] == '\r' ? lf - 1 : lf;
	if (ce - p > HTTP_REQUEST_LINE_MAX)
		return -414;
	rc = parse_request_line(p, ce, 1, req);
	if (rc)
		return rc;

	/*
	 * Field lines up to the empty line.  Each one's LF must come before
	 * lim for the section to fit HTTP_HEADERS_MAX.
	 */
	hdr = lf + 1;
	lim = hdr + HTTP_HEADERS_MAX;
	for (p = hdr;;) {
		if (p == e)
			return 0;
		if (*p == '\n') {
			p++;
			break;
		}
		if (*p == '\r') {
			if (p + 1 == e)
				return 0;
			if (p[1] != '\n')
				return -400;
			p += 2;
			break;
		}
		/* Not the empty line: one field line more. */
		if (req->fields == HTTP_FIELDS_MAX)
			return -431;
		lf = memchr(p, '\n', (size_t)((e < lim ? e : lim) - p));
		if (!lf) {
			if (e >= lim)
				return -431;
			ce = e[-1] == '\r' ? e - 1 : e;
			return parse_field(p, ce, 0, req, &seen);
		}
		ce = lf[-1] == '\r' ? lf - 1 : lf;
		rc = parse_field(p, ce, 1, req, &seen);
		if (rc)
			return rc;
		req->fields++;
		p = lf + 1;
	}

	if (req->minor == 1 && !req->has_host)
		return -400;
	if (seen.te) {
		/* RFC 9112 6.1: both may be a smuggling attempt; refuse. */
		if (req->content_length >= 0)
			return -400;
		/*
		 * RFC 9112 6.1: in HTTP/1.0, Transfer-Encoding is faulty framing.
		 * 6.3: unless chunked is the final coding, the body's length
		 * cannot be known.  6.1: chunked is applied once.
		 */
		if (req->minor == 0 || !seen.last_chunked || seen.early_chunked)
			return -400;
		req->chunked = 1;
		req->te_other = seen.other;
	}
	req->keep_alive = seen.conn_close ? 0 : req->minor == 1 ? 1 : seen.conn_keep_alive;
	req->head_len = (size_t)(p - buf);
	return (int)req->head_len;
}

const char *http_method_name(enum http_method m)
{
	if ((unsigned int)m >= HTTP_UNKNOWN)
		return "UNKNOWN";
	return method_names[m];
}

const char *http_reason(int status)
{
	if (status < 0)
		status = -status;
	switch (status) {
	case 200: return "OK";
	case 400: return "Bad Request";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 413: return "Content Too Large";
	case 414: return "URI Too Long";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 503: return "Service Unavailable";
	case 505: return "HTTP Version Not Supported";
	}
	return "Unknown";
}

static inline int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c |= 0x20;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

int http_decode_path(const char *target, size_t len, char *out, size_t outsz)
{
	size_t i, o = 0;

	for (i = 0; i < len && target[i] != '?'; i++) {
		unsigned char c = (unsigned char)target[i];

		if (c == '%') {
			int hi, lo;

			if (len - i < 3 || (hi = hex_value(target[i + 1])) < 0 ||
			    (lo = hex_value(target[i + 2])) < 0)
				return -400;
			c = (unsigned char)(hi << 4 | lo);
			i += 2;
		}
		if (c == '\0')
			return -400;
		/* Room for this byte and the NUL after it. */
		if (outsz - o < 2 || o >= INT_MAX - 1)
			return -414;
		out[o++] = (char)c;
	}
	if (outsz == 0)
		return -414;
	out[o] = '\0';
	return (int)o;
}

/* ------------------------------------------------------------ chunked body */

/* The states of struct http_chunked: where in RFC 9112 section 7.1 we are. */
enum {
	CH_SIZE_START,		/* chunk-size: the first HEXDIG */
	CH_SIZE,		/* more HEXDIG, or what follows them */
	CH_EXT_BWS,		/* BWS before ";" */
	CH_EXT_NAME_START,	/* BWS, then chunk-ext-name */
	CH_EXT_NAME,
	CH_EXT_NAME_BWS,	/* BWS after the name: "=" or ";" next */
	CH_EXT_VALUE_START,	/* BWS, then a token or a quoted-string */
	CH_EXT_TOKEN,
	CH_EXT_QUOTED,
	CH_EXT_QUOTED_PAIR,	/* after a backslash */
	CH_EXT_VALUE_END,	/* after the closing quote */
	CH_SIZE_LF,		/* the LF of the chunk-size line */
	CH_DATA,
	CH_DATA_CR,		/* the CRLF after the data */
	CH_DATA_LF,
	CH_TRAILER_START,	/* a trailer field line, or the final CRLF */
	CH_TRAILER_NAME,
	CH_TRAILER_VALUE,
	CH_TRAILER_LF,
	CH_END_LF,		/* the final LF */
	CH_DONE,
};

/* qdtext and the bytes of a quoted-pair: HTAB, SP, visible ASCII, obs-text. */
static inline int is_quoted_byte(unsigned char c)
{
	return c == '\t' || (c >= 0x20 && c != 0x7f);
}

/*
 * What may follow the chunk-size or a chunk-ext-val: BWS and ";" (another
 * chunk-ext), or the CR that ends the line.  Return: 0, or -400.
 */
static int chunk_after_value(struct http_chunked *ch, unsigned char c)
{
	if (c == ';')
		ch->state = CH_EXT_NAME_START;
	else if (is_ows((char)c))
		ch->state = CH_EXT_BWS;
	else if (c == '\r')
		ch->state = CH_SIZE_LF;
	else
		return -400;
	return 0;
}

/* The states where BWS may stand: before ";", a name, "=" or a value. */
#define CH_BWS_STATES	(1u << CH_EXT_BWS | 1u << CH_EXT_NAME_START | \
			 1u << CH_EXT_NAME_BWS | 1u << CH_EXT_VALUE_START)

/*
 * The states that stay where they are on the bytes of a class: in a
 * chunk-ext-name, a chunk-ext-val token, a trailer field's name or value.
 */
static const uint8_t chunk_stay[CH_DONE + 1] = {
	[CH_EXT_NAME] = C_TOKEN,
	[CH_EXT_TOKEN] = C_TOKEN,
	[CH_TRAILER_NAME] = C_TOKEN,
	[CH_TRAILER_VALUE] = C_VALUE,
};

/*
 * The states that, once BWS or the bytes they stay on are passed, take one
 * given byte and nothing else, and the state it leads to.
 */
static const struct {
	unsigned char byte;
	unsigned char next;
} chunk_expect[CH_DONE + 1] = {
	[CH_EXT_BWS] = { ';', CH_EXT_NAME_START },
	[CH_DATA_CR] = { '\r', CH_DATA_LF },
	[CH_DATA_LF] = { '\n', CH_SIZE_START },
	[CH_TRAILER_NAME] = { ':', CH_TRAILER_VALUE },
	[CH_TRAILER_VALUE] = { '\r', CH_TRAILER_LF },
	[CH_END_LF] = { '\n', CH_DONE },
};

int http_chunked_parse(struct http_chunked *ch, const char *buf, size_t len,
		       uint64_t max_body, size_t *used)
{
	const char *p = buf, *e = buf + len;
	uint64_t room;
	unsigned char c;
	size_t take;
	int d;

	while (p < e) {
		if (ch->state == CH_DATA) {
			take = (size_t)(e - p) < ch->size ? (size_t)(e - p) : (size_t)ch->size;
			p += take;
			ch->size -= take;
			if (!ch->size)
				ch->state = CH_DATA_CR;
			continue;
		}
		if (ch->state == CH_DONE)
			break;
		c = (unsigned char)*p++;
		/* The size line's bytes, and the trailer section's, are bounded. */
		if (ch->state < CH_DATA && ++ch->line > HTTP_CHUNK_LINE_MAX)
			return -400;
		if (ch->state >= CH_TRAILER_START && ch->state < CH_END_LF &&
		    ++ch->trailer_bytes > HTTP_HEADERS_MAX)
			return -431;
		if (((1u << ch->state) & CH_BWS_STATES) && is_ows((char)c))
			continue;
		if (http_class[c] & chunk_stay[ch->state])
			continue;
		switch (ch->state) {
		case CH_SIZE_START:
		case CH_SIZE:
			d = hex_value((char)c);
			if (d >= 0) {
				/*
				 * Beyond the limit: known as soon as this digit
				 * (so a size too big for 64 bits is a 413 too).
				 * ch->body <= max_body: the sizes so far passed.
				 */
				room = max_body - ch->body;
				if (ch->size > room / 16 || ch->size * 16 + (uint64_t)d > room)
					return -413;
				ch->size = ch->size * 16 + (uint64_t)d;
				ch->state = CH_SIZE;
			} else if (ch->state == CH_SIZE_START ||
				   chunk_after_value(ch, c) < 0) {
				return -400;
			}
			break;
		case CH_EXT_NAME_START:
			if (!(http_class[c] & C_TOKEN))
				return -400;
			ch->state = CH_EXT_NAME;
			break;
		case CH_EXT_NAME:
		case CH_EXT_NAME_BWS:
			if (c == '=')
				ch->state = CH_EXT_VALUE_START;
			else if (c == ';')
				ch->state = CH_EXT_NAME_START;
			else if (is_ows((char)c))
				ch->state = CH_EXT_NAME_BWS;
			else if (c == '\r' && ch->state == CH_EXT_NAME)
				ch->state = CH_SIZE_LF;
			else
				return -400;
			break;
		case CH_EXT_VALUE_START:
			if (c == '"')
				ch->state = CH_EXT_QUOTED;
			else if (http_class[c] & C_TOKEN)
				ch->state = CH_EXT_TOKEN;
			else
				return -400;
			break;
		case CH_EXT_TOKEN:
		case CH_EXT_VALUE_END:
			if (chunk_after_value(ch, c) < 0)
				return -400;
			break;
		case CH_EXT_QUOTED:
			if (c == '"')
				ch->state = CH_EXT_VALUE_END;
			else if (c == '\\')
				ch->state = CH_EXT_QUOTED_PAIR;
			else if (!is_quoted_byte(c))
				return -400;
			break;
		case CH_EXT_QUOTED_PAIR:
			if (!is_quoted_byte(c))
				return -400;
			ch->state = CH_EXT_QUOTED;
			break;
		case CH_SIZE_LF:
			if (c != '\n')
				return -400;
			ch->line = 0;
			if (ch->size) {
				ch->body += ch->size;
				ch->state = CH_DATA;
			} else {
				ch->state = CH_TRAILER_START;	/* the last chunk */
			}
			break;
		case CH_EXT_BWS:
		case CH_DATA_CR:
		case CH_DATA_LF:
		case CH_TRAILER_NAME:
		case CH_TRAILER_VALUE:
		case CH_END_LF:
			if (c != chunk_expect[ch->state].byte)
				return -400;
			ch->state = chunk_expect[ch->state].next;
			break;
		case CH_TRAILER_START:
			if (c == '\r') {
				ch->state = CH_END_LF;
			} else if (http_class[c] & C_TOKEN) {
				if (ch->trailers == HTTP_FIELDS_MAX)
					return -431;
				ch->state = CH_TRAILER_NAME;
			} else {
				return -400;	/* obs-fold, a bare LF, garbage */
			}
			break;
		case CH_TRAILER_LF:
			if (c != '\n')
				return -400;
			ch->trailers++;
			ch->state = CH_TRAILER_START;
			break;
		}
	}
	*used = (size_t)(p - buf);
	return ch->state == CH_DONE;
}
