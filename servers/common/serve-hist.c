// SPDX-License-Identifier: MIT
/*
 * serve-hist.c - the clients' latency histogram; see serve-hist.h.
 * Part of libserve.a.
 */
#include <math.h>

#include "serve-hist.h"

static unsigned int hist_index(uint64_t v)
{
	unsigned int shift;

	if (v < 2 * SERVE_HIST_SUB)
		return (unsigned int)v;
	shift = (unsigned int)(63 - __builtin_clzll(v)) - SERVE_HIST_SUB_BITS;
	return shift * SERVE_HIST_SUB + (unsigned int)(v >> shift);
}

/* The largest value that lands in bucket @i: percentiles never flatter. */
static uint64_t hist_highest(unsigned int i)
{
	unsigned int shift;

	if (i < 2 * SERVE_HIST_SUB)
		return i;
	shift = i / SERVE_HIST_SUB - 1;
	return (((uint64_t)(i - shift * SERVE_HIST_SUB) + 1) << shift) - 1;
}

void serve_hist_record(struct serve_hist *h, int64_t v)
{
	uint64_t u = v > 0 ? (uint64_t)v : 0;

	h->count[hist_index(u)]++;
	h->total++;
	if (u > h->max)
		h->max = u;
}

void serve_hist_add(struct serve_hist *to, const struct serve_hist *from)
{
	unsigned int i;

	for (i = 0; i < SERVE_HIST_BUCKETS; i++)
		to->count[i] += from->count[i];
	to->total += from->total;
	if (from->max > to->max)
		to->max = from->max;
}

uint64_t serve_hist_quantile(const struct serve_hist *h, double q)
{
	uint64_t want, seen = 0;
	unsigned int i;

	if (!h->total)
		return 0;
	want = (uint64_t)ceil(q * (double)h->total);
	if (want < 1)
		want = 1;
	for (i = 0; i < SERVE_HIST_BUCKETS; i++) {
		seen += h->count[i];
		if (seen >= want)
			break;
	}
	/* The bucket's top may be above anything actually seen. */
	return i < SERVE_HIST_BUCKETS && hist_highest(i) < h->max ? hist_highest(i) : h->max;
}
