// SPDX-License-Identifier: MIT
/*
 * serve-cli.c - the servers' common command line and their "listening on"
 * line; see serve.h.  Part of libserve.a.
 */
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ringfiber.h"		/* RF_MAX_WORKERS */
#include "serve.h"

#define usage_error(cli, ...) serve_usage_error((cli)->o->prog, (cli)->usage, __VA_ARGS__)

int serve_cli_option(struct serve_cli *cli, int opt, const char *arg)
{
	struct serve_opts *o = cli->o;
	unsigned long v;

	switch (opt) {
	case 'w':
		if (serve_parse_ulong(arg, 1, SERVE_MAX_WORKERS, &v) < 0)
			usage_error(cli, "bad worker count '%s': want 1-%d", arg,
				    SERVE_MAX_WORKERS);
		o->workers = (unsigned int)v;
		return 1;
	case 'm':
		if (serve_parse_model(arg, &o->model) < 0)
			usage_error(cli, "unknown model '%s': want fibers, threads or pool", arg);
		return 1;
	case 'c':
		if (serve_parse_ulong(arg, 1, SERVE_MAX_CONNS, &o->max_conns) < 0)
			usage_error(cli, "bad connection cap '%s': want 1-%d", arg,
				    SERVE_MAX_CONNS);
		cli->max_conns_given = 1;
		return 1;
	case 'n':
		if (serve_parse_ulong(arg, 1, ULONG_MAX, &o->max_accepts) < 0)
			usage_error(cli, "bad connection count '%s'", arg);
		return 1;
	case 'q':
		o->quiet = 1;
		return 1;
	case SERVE_OPT_NO_PREEMPT:
		o->no_preempt = 1;
		return 1;
	case SERVE_OPT_SLICE_US:
		/* the runtime's range, with its default hog threshold (serve's) */
		if (serve_parse_ulong(arg, RF_MIN_SLICE_NS / 1000, RF_DEFAULT_HOG_NS / 1000,
				      &v) < 0)
			usage_error(cli, "bad time slice '%s': want %d-%d microseconds", arg,
				    RF_MIN_SLICE_NS / 1000, RF_DEFAULT_HOG_NS / 1000);
		o->slice_ns = (int64_t)v * 1000;
		return 1;
	case 'h':
	case '?':	/* getopt said why */
		serve_usage_exit(cli->usage, opt);
	default:
		return 0;
	}
}

void serve_cli_args(struct serve_cli *cli, int argc, char **argv)
{
	struct serve_opts *o = cli->o;

	if (argc - optind != 1)
		usage_error(cli, "%s", argc - optind ? "too many arguments" :
			    "missing [ADDR:]PORT");
	if (serve_parse_addr(argv[optind], &cli->addr, &cli->addr_len, 1) < 0)
		usage_error(cli, "bad address '%s': want [ADDR:]PORT, PORT 0-65535",
			    argv[optind]);
	if (o->workers && o->model == SERVE_THREADS)
		usage_error(cli, "-w does not apply to --model=threads (a thread per connection)");
	if (o->model == SERVE_FIBERS && o->workers > RF_MAX_WORKERS)
		usage_error(cli, "bad worker count '%u': at most %d for fibers", o->workers,
			    RF_MAX_WORKERS);
	if (o->model != SERVE_FIBERS && (o->no_preempt || o->slice_ns))
		usage_error(cli, "%s applies to --model=fibers only (the kernel schedules "
			    "threads)", o->no_preempt ? "--no-preempt" : "--slice-us");
	if (o->no_preempt && o->slice_ns)
		usage_error(cli, "--slice-us has no use with --no-preempt (nothing is preempted)");
}

void serve_cli_usage(FILE *f, const char *prog, const char *what, const char *refused)
{
	fprintf(f,
		"usage: %s [OPTIONS] [ADDR:]PORT\n"
		"%s"
		"\n"
		"  ADDR                 numeric IPv4 address, or IPv6 in brackets (default 127.0.0.1)\n"
		"  PORT                 TCP port; 0 picks a free one\n"
		"  -w, --workers N      fibers: runtime workers, at most %d (default: one per CPU);\n"
		"                       pool: threads, at most %d (default: min(32, CPUs + 4));\n"
		"                       not with threads (a thread per connection)\n"
		"  -m, --model M        fibers (default), threads or pool\n"
		"  -c, --max-conns N    at most N connections open; beyond, %s\n"
		"  -n COUNT             exit once COUNT connections have been accepted and closed\n"
		"  -q, --quiet          print only the listening line, warnings and errors\n"
		"  --no-preempt         fibers: never preempt a fiber: a CPU-bound one keeps its\n"
		"                       worker until it is done (default: one that has run %d ms\n"
		"                       is preempted while others wait, then every time slice)\n"
		"  --slice-us N         fibers: that time slice, %d-%d microseconds (default %d)\n"
		"  -h, --help           show this help\n",
		prog, what, RF_MAX_WORKERS, SERVE_MAX_WORKERS, refused,
		RF_DEFAULT_HOG_NS / 1000000, RF_MIN_SLICE_NS / 1000, RF_DEFAULT_HOG_NS / 1000,
		RF_DEFAULT_SLICE_NS / 1000);
}

int serve_cli_listen(struct serve_cli *cli)
{
	const struct serve_opts *o = cli->o;
	unsigned int n;
	int fd;

	fd = serve_listen_named(o->prog, &cli->addr, cli->addr_len, cli->name,
				sizeof(cli->name));
	if (fd < 0)
		return -1;
	printf("listening on %s\n", cli->name);
	fflush(stdout);
	if (!o->quiet) {
		n = serve_workers(o);
		if (o->model == SERVE_THREADS)
			fprintf(stderr, "%s: serving with a thread per connection (threads)\n",
				o->prog);
		else
			fprintf(stderr, "%s: serving with %u %s%s (%s)\n", o->prog, n,
				o->model == SERVE_POOL ? "thread" : "worker", n == 1 ? "" : "s",
				serve_model_name(o->model));
	}
	return fd;
}

int serve_cli_main(struct serve_opts *o, void (*usage)(FILE *f), int argc, char **argv)
{
	static const struct option longopts[] = {
		SERVE_CLI_LONGOPTS,
		{ NULL, 0, NULL, 0 },
	};
	struct serve_cli cli = { .o = o, .usage = usage };
	int opt, err, listen_fd;

	while ((opt = getopt_long(argc, argv, SERVE_CLI_SHORTOPTS, longopts, NULL)) != -1)
		serve_cli_option(&cli, opt, optarg);
	serve_cli_args(&cli, argc, argv);

	serve_raise_nofile(o->prog, SERVE_TARGET_CONNECTIONS + SERVE_FD_MARGIN,
			   "10,000 connections", !o->quiet);

	listen_fd = serve_cli_listen(&cli);
	if (listen_fd < 0)
		exit(1);

	err = serve_run(listen_fd, o);
	close(listen_fd);
	return err;
}

int serve_cli_status(const struct serve_opts *o, int err, void (*summary)(void))
{
	if (err < 0) {
		fprintf(stderr, "%s: %s\n", o->prog, strerror(-err));
		return 1;
	}
	if (!o->quiet)
		summary();
	return 0;
}
