/* SPDX-License-Identifier: MIT */
/*
 * serve-hist.h - the clients' latency histogram (echo-client, hogclient):
 * log-linear, like HdrHistogram's.
 *
 * Values are nanoseconds.  Below 2 * SERVE_HIST_SUB each value has its own
 * bucket; above, each power of two [2^k, 2^(k+1)) is cut into
 * SERVE_HIST_SUB equal buckets, so a bucket is at most 1/SERVE_HIST_SUB =
 * 1.6% of its values wide, whatever their magnitude, and 59 * 64 counters
 * cover all of uint64:
 *
 *	value v, k = floor(log2 v) >= SUB_BITS, shift = k - SUB_BITS:
 *	index = shift * SUB + (v >> shift)		(v >> shift in [64, 128))
 *	small v (k < SUB_BITS + 1):  index = v
 *
 * No locks: a histogram belongs to one thread (or to the fibers of one
 * worker); threads keep one each and add them up at the end.
 */
#ifndef SERVE_HIST_H
#define SERVE_HIST_H

#include <stdint.h>

#define SERVE_HIST_SUB_BITS	6
#define SERVE_HIST_SUB		(1u << SERVE_HIST_SUB_BITS)
#define SERVE_HIST_BUCKETS	((64 - SERVE_HIST_SUB_BITS + 1) * SERVE_HIST_SUB)

struct serve_hist {
	uint64_t count[SERVE_HIST_BUCKETS];
	uint64_t total;		/* values recorded */
	uint64_t max;		/* exact largest value */
};

/* serve_hist_record() - count @v; a negative @v (a clock step) counts as 0. */
void serve_hist_record(struct serve_hist *h, int64_t v);

/* serve_hist_add() - add @from's counts to @to's. */
void serve_hist_add(struct serve_hist *to, const struct serve_hist *from);

/*
 * serve_hist_quantile() - the value below which a fraction @q of the
 * recorded values fall: the top of its bucket, so that percentiles never
 * flatter, but never above the largest value seen.  0 when empty.
 */
uint64_t serve_hist_quantile(const struct serve_hist *h, double q);

#endif /* SERVE_HIST_H */
