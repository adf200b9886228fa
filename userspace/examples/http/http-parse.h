/* SPDX-License-Identifier: MIT */
/*
 * http-parse.h - a strict HTTP/1.x request-head parser for httpserver.
 *
 * No Debian 12 package ships a maintained C HTTP parser (llhttp and
 * picohttpparser are not packaged), so httpserver carries this one.  It
 * parses in place: nothing is allocated or copied, the request keeps
 * pointers into the caller's buffer, and there is no state between calls.
 * The server calls it again on the same buffer each time bytes arrive, so a
 * head that comes in N pieces is scanned N times; heads are at most
 * ~16 KiB (the limits below), which keeps that cheap.
 *
 * What it accepts (RFC 9112, strictly):
 *
 *   [ *4 empty lines ] request-line *( field-line ) empty-line
 *
 *   - Line ends are CRLF or a bare LF (RFC 9112 section 2.2 lets a
 *     recipient accept a bare LF); a CR not followed by LF is a 400.
 *   - Up to HTTP_LEADING_EMPTY_MAX empty lines before the request line are
 *     skipped (section 2.2) and counted in head_len; one more is a 400.
 *   - request-line = method SP request-target SP HTTP-version, exactly one
 *     SP each.  method is a token (case-sensitive); a well-formed method
 *     that is not one of enum http_method is HTTP_UNKNOWN, not an error
 *     (the server answers 501).  request-target is origin-form ("/...") or,
 *     for OPTIONS only, asterisk-form ("*"); absolute-form and
 *     authority-form are refused (400).  Target bytes are visible ASCII
 *     (0x21-0x7e).  HTTP-version is "HTTP/" DIGIT "." DIGIT: 1.0 and 1.1
 *     parse, any other well-formed version is a 505, anything else a 400.
 *   - field-line = field-name ":" OWS field-value OWS.  The name is a
 *     token with no whitespace before the colon; the value is visible
 *     ASCII, obs-text (0x80-0xff), SP and HTAB: any other control byte
 *     (NUL, CR alone, DEL...) is a 400.  A line starting with SP or HTAB
 *     (obs-fold) is a 400.
 *   - Host: required in HTTP/1.1; more than one, or a value with bytes
 *     outside a host[:port] (RFC 3986 reg-name, IP-literal, port), is 400.
 *   - Content-Length: 1*DIGIT up to INT64_MAX.  A second Content-Length
 *     field, even with the same value, or a list ("5, 5") is a 400: RFC
 *     9110 section 8.6 lets a recipient reject those, and that leaves no
 *     room for a disagreement between two parsers (request smuggling).
 *   - Transfer-Encoding: any value sets chunked (the server answers 501);
 *     Transfer-Encoding together with Content-Length is a 400.
 *   - Connection: a comma list, case-insensitive; "close" ends the
 *     connection after the answer and wins over "keep-alive", which keeps
 *     an HTTP/1.0 connection open.  HTTP/1.1 persists by default.
 *
 * Limits: a request line longer than HTTP_REQUEST_LINE_MAX bytes (not
 * counting its line end) is a 414; field lines (with their line ends, not
 * counting the final empty line) longer than HTTP_HEADERS_MAX bytes in all,
 * or more than HTTP_FIELDS_MAX of them, are a 431.  Both are reported as
 * soon as the bytes received prove them, before the line end arrives.
 *
 * Incremental use: parsing is prefix-consistent.  When a buffer parses
 * complete (return n > 0), any longer buffer starting with it gives the same
 * n and the same request; when a buffer gives an error, any longer one
 * gives an error too; 0 means every byte seen so far can still start a
 * valid request.  tests/fuzz/http-parse-fuzz.c checks these properties.
 */
#ifndef HTTP_PARSE_H
#define HTTP_PARSE_H

#include <stddef.h>
#include <stdint.h>

#define HTTP_REQUEST_LINE_MAX	8192	/* longer: 414 */
#define HTTP_HEADERS_MAX	8192	/* field-line bytes after the request line: 431 */
#define HTTP_FIELDS_MAX		100	/* more field lines: 431 */
#define HTTP_LEADING_EMPTY_MAX	4	/* empty lines skipped before a request line */

enum http_method {
	HTTP_GET,
	HTTP_HEAD,
	HTTP_POST,
	HTTP_PUT,
	HTTP_DELETE,
	HTTP_CONNECT,
	HTTP_OPTIONS,
	HTTP_TRACE,
	HTTP_PATCH,
	HTTP_UNKNOWN,		/* a well-formed token that is none of the above */
};

/* One parsed request head; the pointers point into the parsed buffer. */
struct http_request {
	enum http_method method;
	const char *method_name;	/* the method token as received ... */
	size_t method_len;		/* ... (useful for HTTP_UNKNOWN) */
	const char *target;		/* "/..." or "*", not NUL-terminated */
	size_t target_len;
	int minor;			/* HTTP/1.<minor>: 0 or 1 */
	int keep_alive;			/* the connection persists after the answer */
	int has_host;
	const char *host;		/* the Host value, OWS trimmed; NULL if absent */
	size_t host_len;
	int chunked;			/* Transfer-Encoding present (any value) */
	int64_t content_length;		/* -1 if absent */
	unsigned int fields;		/* field lines */
	size_t head_len;		/* all of it: leading empty lines to the empty line */
};

/**
 * http_parse_request() - parse one request head at the start of a buffer.
 * @buf: the bytes received so far; need not be NUL-terminated
 * @len: how many
 * @req: filled in when the head is complete; the pointers in it point into
 *       @buf
 *
 * Context: any; reads @buf[0..@len) only, allocates nothing, keeps no state.
 * Return: the head's length (> 0, req->head_len; the body or the next
 * pipelined request starts there) when the head is complete; 0 when more
 * bytes are needed and nothing seen so far is invalid or over a limit;
 * -400, -414, -431 or -505 (the HTTP status to answer, negated) otherwise.
 * An unknown but well-formed method is not an error: req->method is
 * HTTP_UNKNOWN.
 */
int http_parse_request(const char *buf, size_t len, struct http_request *req);

/**
 * http_method_name() - the method's token, "GET" ...; "UNKNOWN" for
 * HTTP_UNKNOWN or a value out of range (req->method_name has the token).
 */
const char *http_method_name(enum http_method m);

/**
 * http_reason() - the reason phrase for @status ("OK", "Bad Request"...).
 * @status: an HTTP status; a negated one (a parser return) works too
 *
 * Return: a static string, never NULL: "Unknown" for a status the server
 * does not use.
 */
const char *http_reason(int status);

/**
 * http_decode_path() - percent-decode the path of an origin-form target.
 * @target: the request target (req->target)
 * @len: its length
 * @out: where the decoded path goes, NUL-terminated
 * @outsz: the size of @out
 *
 * Decodes up to the first '?' (the query is dropped).  Dot segments are
 * left alone: the server confines the path with openat2(RESOLVE_BENEATH)
 * instead of trusting a textual clean-up.  Writes at most @outsz bytes.
 *
 * Return: the decoded length (out[return] == '\0'); -400 for a '%' not
 * followed by two hex digits, or a NUL byte raw or decoded ("%00");
 * -414 when the decoded path and its NUL do not fit in @outsz.
 */
int http_decode_path(const char *target, size_t len, char *out, size_t outsz);

#endif /* HTTP_PARSE_H */
