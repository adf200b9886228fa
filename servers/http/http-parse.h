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
 *     (the server answers 501).  request-target is origin-form ("/..."),
 *     absolute-form with the http or https scheme ("http://host[:port]/...",
 *     section 3.2.2: a server must accept it; the authority must be a
 *     non-empty host, without userinfo) or, for OPTIONS only,
 *     asterisk-form ("*"); authority-form is refused (400).  Target bytes
 *     are visible ASCII (0x21-0x7e) except '#': a fragment is never sent,
 *     so a '#' is a 400.  The path (req->path: the target up to its query,
 *     or an absolute-form's path, "/" when empty) is what routes.
 *     HTTP-version is "HTTP/" DIGIT "." DIGIT: 1.0 and 1.1 parse, 1.2 to 1.9
 *     are taken as 1.1 (RFC 9110 section 2.5: the highest minor version we
 *     speak), another major version is a 505, anything else a 400.
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
 *   - Transfer-Encoding: a list of transfer codings (several fields add up
 *     in order).  chunked must be the final coding and appear only there
 *     (section 6.3: else the body's length cannot be known: 400); then
 *     req->chunked is set, and req->te_other too if another coding comes
 *     before it (the server cannot decode that: 501).  Transfer-Encoding in
 *     HTTP/1.0 is faulty framing (section 6.1: 400), and together with
 *     Content-Length a 400.  http_chunked_parse() reads such a body.
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
#define HTTP_CHUNK_LINE_MAX	4096	/* a chunk-size line, extensions and CRLF: 400 */

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
	const char *target;		/* "/...", "http://..." or "*", not NUL-terminated */
	size_t target_len;
	const char *path;		/* what routes: the target's path, no query */
	size_t path_len;		/* (points into the buffer, or to "/") */
	const char *authority;		/* absolute-form: its host[:port]; else NULL */
	size_t authority_len;
	int minor;			/* HTTP/1.<minor>: 0 or 1 (1.2-1.9 count as 1) */
	int keep_alive;			/* the connection persists after the answer */
	int has_host;
	const char *host;		/* the Host value, OWS trimmed; NULL if absent */
	size_t host_len;
	int chunked;			/* Transfer-Encoding, chunked last: a chunked body */
	int te_other;			/* ... and another coding before it (501) */
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

/**
 * struct http_chunked - the state of a chunked body being read; zero it
 * before the body's first byte.  The counters are for the caller too.
 * @state: where in the grammar the next byte falls (http-parse.c)
 * @size: data bytes of the current chunk still to come
 * @body: data bytes announced so far (the chunk sizes added up)
 * @line: bytes of the current chunk-size line so far
 * @trailer_bytes: bytes of the trailer section so far
 * @trailers: trailer field lines so far
 */
struct http_chunked {
	int state;
	uint64_t size;
	uint64_t body;
	size_t line;
	size_t trailer_bytes;
	unsigned int trailers;
};

/**
 * http_chunked_parse() - read the next bytes of a chunked body (RFC 9112
 * section 7.1), strictly.
 * @ch: the state; zeroed before the body's first byte
 * @buf: the next bytes received
 * @len: how many
 * @max_body: the most data bytes the body may carry, at most INT64_MAX
 * @used: set to how many of @buf belong to the body
 *
 * Incremental: bytes may come in pieces of any size, and give the same
 * result as all at once.  The data is checked and counted (@ch->body), not
 * returned: httpserver has no route that takes a body.  Line ends are CRLF
 * only (a bare LF inside chunked framing is a 400: parsers that disagree on
 * it smuggle requests).  chunk-size is hex; chunk-ext is *( BWS ";" BWS
 * token [ BWS "=" BWS ( token / quoted-string ) ] ), ignored; a trailer
 * field line is name ":" value as in the head, and ignored.
 *
 * Limits: a chunk-size line (with its CRLF) over HTTP_CHUNK_LINE_MAX bytes
 * is a 400; chunk
 * sizes that add up to more than @max_body are a 413, found as soon as the
 * digit that exceeds it arrives (a size too big for 64 bits is no
 * exception); a trailer section over HTTP_HEADERS_MAX bytes or with more
 * than HTTP_FIELDS_MAX fields is a 431.
 *
 * Return: 1 when the body has ended: *@used is where (the next request
 * starts there); 0 when all of @buf was read and more is needed; -400,
 * -413 or -431 otherwise (*@used is then not set).
 */
int http_chunked_parse(struct http_chunked *ch, const char *buf, size_t len,
		       uint64_t max_body, size_t *used);

#endif /* HTTP_PARSE_H */
