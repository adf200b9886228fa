// SPDX-License-Identifier: MIT
/*
 * bench-common.c - what rf-bench and rf-tasks share that is not on a
 * measured path, compiled once: their command line and the members of
 * their JSON object.  See bench-common.h.
 */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "bench-common.h"

/* getopt's value for a count without a one-letter form: past any char. */
#define BENCH_COUNT_OPT		256

/*
 * A count on the command line: the whole of @s a decimal number from 1 to
 * @max.  Return: 0 (*@out set), or -EINVAL.
 */
static int parse_count(const char *s, long max, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < 1 || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

static int count_opt(const struct bench_count *counts, size_t i)
{
	return counts[i].short_opt ? counts[i].short_opt : BENCH_COUNT_OPT + (int)i;
}

void bench_parse_args(int argc, char **argv, const char *shortopts,
		      const struct bench_count *counts, size_t ncounts,
		      bool *json, bool *quick, void (*usage)(FILE *to, int status))
{
	/* --json, --quick, the counts, --help: the order of the usage lines */
	struct option longopts[BENCH_MAX_COUNTS + 4] = {
		{ "json", no_argument, NULL, 'j' },
		{ "quick", no_argument, NULL, 'q' },
	};
	size_t i, n = 2;
	int opt;

	if (ncounts > BENCH_MAX_COUNTS)
		abort();	/* a benchmark's own table: a bug, not a user's mistake */
	for (i = 0; i < ncounts; i++)
		longopts[n++] = (struct option){ counts[i].name, required_argument, NULL,
						 count_opt(counts, i) };
	longopts[n] = (struct option){ "help", no_argument, NULL, 'h' };

	while ((opt = getopt_long(argc, argv, shortopts, longopts, NULL)) != -1) {
		if (opt == 'j') {
			*json = true;
			continue;
		}
		if (opt == 'q') {
			*quick = true;
			continue;
		}
		if (opt == 'h')
			usage(stdout, 0);
		for (i = 0; i < ncounts && opt != count_opt(counts, i); i++)
			;
		if (i == ncounts || parse_count(optarg, counts[i].max, counts[i].value) < 0)
			usage(stderr, 2);
	}
	if (optind != argc)
		usage(stderr, 2);
}

void bench_json_member(int i, const char *name, const char *value)
{
	printf("%s\"%s\": %s", i ? ", " : "", name, value ? value : "null");
}
