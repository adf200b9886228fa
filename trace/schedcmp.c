// SPDX-License-Identifier: MIT
/*
 * schedcmp - compare one process's kernel scheduling with its fibers'.
 *
 * Loads trace/schedcmp.bpf.c (through its bpftool skeleton), points it at one
 * process, and prints, once per interval, its OS threads and its ringfiber
 * fibers side by side: switches per second, run-queue latency (mean, p50,
 * p99 and a log2 histogram), the mean time a switch costs, and the time
 * spent parked by reason.  The threads come from the scheduler's
 * tracepoints, the fibers from the runtime's "batch" USDT probe (see
 * userspace/include/ringfiber-trace.h and Documentation/tracing.md).
 *
 * Usage: schedcmp [-i INTERVAL] [-c COUNT] [--json] [-F | --syscalls] -p PID
 *        schedcmp [-i INTERVAL] [-c COUNT] [--json] [-F | --syscalls] -- CMD ...
 *        schedcmp [OPTIONS] -p PID [INTERVAL [COUNT]]	(bcc's order)
 *
 * With a command, schedcmp starts it held on a pipe, attaches, lets it
 * exec, and traces it until it exits; it then prints the last (partial)
 * interval and exits with the command's exit status.  With -p it traces a
 * running process until Ctrl-C, COUNT intervals, or the process's exit.
 *
 * The percentiles are estimates from the log2 histogram: the bucket holding
 * the percentile is exact, the value inside it is interpolated linearly, so
 * it is off by less than the bucket's width (a factor of two).  The means
 * are exact.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <linux/types.h>

#include "ringfiber-trace.h"
#include "schedcmp.h"
#include "schedcmp.skel.h"
#include "serve-util.h"

#define NSEC_PER_SEC	1000000000LL
#define MAX_INTERVAL_S	86400.0

/* How long, and how often, to look for the probes behind a wrapper command. */
#define FOLLOW_MS	2000
#define FOLLOW_POLL_US	2000

/* How often to look for the target's exit where pidfd_open() is missing. */
#define EXIT_POLL_MS	100

/* Width of the histogram bars, in characters. */
#define BAR_WIDTH	16

static const char *const fiber_reasons[] = { RF_TRACE_REASON_NAMES };
static const char *const thread_states[] = { SCHEDCMP_TSTATE_NAMES };

_Static_assert(sizeof(fiber_reasons) / sizeof(fiber_reasons[0]) == RF_TRACE_REASONS,
	       "a name for every enum rf_trace_reason");
_Static_assert(sizeof(thread_states) / sizeof(thread_states[0]) == SCHEDCMP_TSTATES,
	       "a name for every enum schedcmp_tstate");

/* The fibers' row of reasons this schedcmp has no name for (a newer library's). */
#define FIBER_REASON_OTHER_NAME "other"

static struct env {
	const char *prog;
	pid_t pid;		/* -p, or the command's once forked */
	char **cmd;		/* after --, or NULL */
	double interval;	/* seconds; 0: one report at the end */
	long count;		/* intervals; 0: no limit */
	bool json;
	bool verbose;
	bool fibers_only;	/* -F: no thread tracepoints */
	bool no_syscalls;	/* no raw_syscalls tracepoints: unless --syscalls */
} env = { .prog = "schedcmp", .no_syscalls = true };

static volatile sig_atomic_t exiting;

/*
 * Records the target's workers had taken but not handed over when schedcmp
 * stopped tracing a process that lives on (count_unflushed()): lost at
 * detach, reported with the last interval.
 */
static __u64 lost_detach;

/* libbpf's warnings, muted while schedcmp probes for what it may attach. */
static bool libbpf_quiet;

static void usage(FILE *f)
{
	fprintf(f,
		"usage: %s [-i INTERVAL] [-c COUNT] [--json] [-F | --syscalls]\n"
		"                (-p PID | -- CMD [ARGS...])\n"
		"       %s [OPTIONS] -p PID [INTERVAL [COUNT]]\n"
		"       %s [OPTIONS] [INTERVAL [COUNT]] -- CMD [ARGS...]\n"
		"Compare a process's OS threads (scheduler tracepoints) with its ringfiber\n"
		"fibers (the runtime's ringfiber:batch probe), side by side, per interval.\n"
		"\n"
		"  -p, --pid PID         trace this running process until Ctrl-C or its exit\n"
		"  -- CMD [ARGS...]      run CMD, traced from its first instruction, until it\n"
		"                        exits; schedcmp then exits with CMD's status.  If CMD\n"
		"                        has no probes (a wrapper: taskset, nice, env), what\n"
		"                        it execs is traced\n"
		"  INTERVAL [COUNT]      as -i INTERVAL and -c COUNT (bcc's tools' order)\n"
		"  -i, --interval SECS   print every SECS seconds, fractions allowed (default:\n"
		"                        once, at the end)\n"
		"  -c, --count N         stop after N intervals (needs -i)\n"
		"  -j, --json            one JSON object per interval per line\n"
		"  -F, --fibers-only     leave the threads out: no scheduler or syscall\n"
		"                        tracepoints (the least overhead)\n"
		"      --syscalls        also time the threads' switches, through the sys_enter\n"
		"                        and sys_exit tracepoints: while they are attached,\n"
		"                        every system call of every task on the machine is\n"
		"                        slower, the load generator's too (Documentation/\n"
		"                        tracing.md, \"What tracing costs\")\n"
		"      --no-syscalls     the default: no system-call tracepoints\n"
		"  -v, --verbose         show libbpf's debug messages\n"
		"  -h, --help            show this help\n"
		"\n"
		"Per side: switches (threads: switches out of a target thread; fibers: switches\n"
		"into a fiber) and the involuntary ones among them (a thread switched out still\n"
		"runnable; a fiber the runtime preempted), run-queue latency (threads: wake-up\n"
		"or preemption -> running; fibers: ready -> chosen) as a mean, p50 and p99, and\n"
		"a log2 histogram in ns; the mean time per switch (fibers: the records'\n"
		"switch_ns; threads, with --syscalls: the on-CPU time of system calls that\n"
		"slept, i.e. syscall time minus time off the CPU, an upper bound on the switch),\n"
		"lost records (fibers: at attach, in between, at detach), and time parked by\n"
		"reason (fibers: park -> ready by enum rf_trace_reason; threads: switch-out ->\n"
		"wake-up by state S or D, and switch-out -> switch-in for a preempted thread).\n"
		"p50 and p99 are estimated from the log2 histogram (interpolated within the\n"
		"bucket); means are exact.\n"
		"\n"
		"examples:\n"
		"  %s -p 1234                 # trace PID 1234 until Ctrl-C, one summary\n"
		"  %s -p 1234 1 10            # ten 1-second intervals (-i 1 -c 10)\n"
		"  %s --json -- ./echo-server 8080   # run it, JSON lines\n"
		"  %s -i 0.5 -- build/tests/trace/workload fiber-pingpong -n 100000\n",
		env.prog, env.prog, env.prog, env.prog, env.prog, env.prog, env.prog);
}

/* A bad command line: serve_usage_error(), as every server and client. */
#define fail_usage(...) serve_usage_error(env.prog, usage, __VA_ARGS__)

/* Is @s a number, as an interval or count would be (not a command)? */
static bool is_number(const char *s)
{
	char *end;

	errno = 0;
	strtod(s, &end);
	return !errno && end != s && !*end;
}

static void set_interval(const char *arg, bool twice)
{
	char *end;

	if (twice)
		fail_usage("the interval is given twice (-i and %s)", arg);
	errno = 0;
	env.interval = strtod(arg, &end);
	if (errno || end == arg || *end || !(env.interval >= 0.001) ||
	    env.interval > MAX_INTERVAL_S)
		fail_usage("invalid interval: %s (0.001 to %.0f seconds)", arg, MAX_INTERVAL_S);
}

static void set_count(const char *arg, bool twice)
{
	char *end;
	long v;

	if (twice)
		fail_usage("the count is given twice (-c and %s)", arg);
	errno = 0;
	v = strtol(arg, &end, 10);
	if (errno || end == arg || *end || v <= 0)
		fail_usage("invalid count: %s", arg);
	env.count = v;
}

static void parse_args(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "pid", required_argument, NULL, 'p' },
		{ "interval", required_argument, NULL, 'i' },
		{ "count", required_argument, NULL, 'c' },
		{ "json", no_argument, NULL, 'j' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "fibers-only", no_argument, NULL, 'F' },
		{ "no-syscalls", no_argument, NULL, 'S' },
		{ "syscalls", no_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	bool syscalls_on = false, syscalls_off = false, interval_given = false, count_given = false;
	char *end;
	long v;
	int c;

	if (argc > 0 && argv[0][0])
		env.prog = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
	opterr = 0;
	/* "+": stop at the first non-option, the command's name. */
	while ((c = getopt_long(argc, argv, "+p:i:c:jvFh", opts, NULL)) != -1) {
		switch (c) {
		case 'p':
			errno = 0;
			v = strtol(optarg, &end, 10);
			if (errno || end == optarg || *end || v <= 0 || v > INT_MAX)
				fail_usage("invalid PID: %s", optarg);
			env.pid = (pid_t)v;
			break;
		case 'i':
			set_interval(optarg, interval_given);
			interval_given = true;
			break;
		case 'c':
			set_count(optarg, count_given);
			count_given = true;
			break;
		case 'j':
			env.json = true;
			break;
		case 'v':
			env.verbose = true;
			break;
		case 'F':
			env.fibers_only = true;
			break;
		case 'S':
			env.no_syscalls = true;
			syscalls_off = true;
			break;
		case 's':
			env.no_syscalls = false;
			syscalls_on = true;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			if (optopt && strchr("pic", optopt))
				fail_usage("option -%c needs an argument", optopt);
			fail_usage("unknown option: %s", argv[optind - 1]);
		}
	}
	/*
	 * bcc's positional [interval [count]], before a command's "--" if
	 * there is one.  Without -p, a first argument that is not a number is
	 * the command, "--" or not.
	 */
	if (optind < argc && strcmp(argv[optind - 1], "--")) {
		int npos = 0;

		while (optind < argc && npos < 2 && is_number(argv[optind])) {
			if (npos++ == 0)
				set_interval(argv[optind++], interval_given);
			else
				set_count(argv[optind++], count_given);
		}
		if (optind < argc && !strcmp(argv[optind], "--"))
			optind++;
		else if (optind < argc && (env.pid || npos))
			fail_usage("unexpected argument: %s (a command comes after --)",
				   argv[optind]);
	}
	if (optind < argc)
		env.cmd = &argv[optind];
	if (!env.pid && !env.cmd)
		fail_usage("give a process: -p PID, or -- CMD [ARGS...]");
	if (env.pid && env.cmd)
		fail_usage("-p PID and a command exclude each other (extra argument: %s)",
			   env.cmd[0]);
	if (env.count && !env.interval)
		fail_usage("-c COUNT needs -i INTERVAL");
	if (syscalls_on && syscalls_off)
		fail_usage("--syscalls and --no-syscalls exclude each other");
	if (env.fibers_only && syscalls_on)
		fail_usage("-F leaves out every thread tracepoint: --syscalls contradicts it");
}

static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (level == LIBBPF_DEBUG && !env.verbose)
		return 0;
	if (libbpf_quiet && !env.verbose)
		return 0;
	return vfprintf(stderr, fmt, ap);
}

static void on_signal(int sig)
{
	exiting = 1;
}

static long long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * NSEC_PER_SEC + ts.tv_nsec;
}

/* ------------------------------------------------------------ the target */

/* The path execv() will run for @name, as execvp() would find it. */
static char *find_command(const char *name)
{
	const char *path = getenv("PATH"), *p, *colon;
	char *full;
	size_t len;

	if (strchr(name, '/'))
		return strdup(name);
	if (!path || !*path)
		path = "/usr/local/bin:/bin:/usr/bin";
	for (p = path; ; p = colon + 1) {
		colon = strchr(p, ':');
		len = colon ? (size_t)(colon - p) : strlen(p);
		if (asprintf(&full, "%.*s%s%s", (int)len, p, len ? "/" : "", name) < 0)
			return NULL;
		if (access(full, X_OK) == 0)
			return full;
		free(full);
		if (!colon)
			return NULL;
	}
}

/*
 * Fork the command, held before its exec until release_command(): it reads
 * one byte from @hold_fd.  A pipe of CLOEXEC descriptors tells the parent
 * whether the exec failed (it carries errno) or succeeded (it closes).
 */
struct command {
	pid_t pid;
	int hold_fd;		/* write end: one byte releases the child */
	int err_fd;		/* read end: errno of a failed exec, or EOF */
};

static int start_command(struct command *c, const char *path, char **argv)
{
	int hold[2], err[2], e;
	char go;

	if (pipe2(hold, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0) {
		fprintf(stderr, "%s: pipe: %s\n", env.prog, strerror(errno));
		return -1;
	}
	c->pid = fork();
	if (c->pid < 0) {
		fprintf(stderr, "%s: fork: %s\n", env.prog, strerror(errno));
		return -1;
	}
	if (c->pid == 0) {
		close(hold[1]);
		close(err[0]);
		if (read(hold[0], &go, 1) != 1)
			_exit(127);	/* schedcmp gave up: not an error of ours */
		execv(path, argv);
		e = errno;
		if (write(err[1], &e, sizeof(e)) < 0)
			_exit(127);
		_exit(127);
	}
	close(hold[0]);
	close(err[1]);
	c->hold_fd = hold[1];
	c->err_fd = err[0];
	return 0;
}

/* Let the child exec; returns 0 once it did, or the exec's errno. */
static int release_command(struct command *c)
{
	int e = 0;
	ssize_t n;

	if (write(c->hold_fd, "g", 1) != 1)
		e = errno;
	close(c->hold_fd);
	c->hold_fd = -1;
	if (!e) {
		do
			n = read(c->err_fd, &e, sizeof(e));
		while (n < 0 && errno == EINTR);
		if (n != sizeof(e))
			e = 0;
	}
	close(c->err_fd);
	c->err_fd = -1;
	return e;
}

/* The thread group @pid belongs to, or -1 if there is no such task. */
static pid_t read_tgid(pid_t pid)
{
	char path[64], line[256];
	pid_t tgid = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	f = fopen(path, "re");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "Tgid: %d", &tgid) == 1)
			break;
	fclose(f);
	return tgid;
}

static void read_comm(pid_t pid, char *buf, size_t len)
{
	char path[64];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/comm", pid);
	buf[0] = '\0';
	f = fopen(path, "re");
	if (!f)
		return;
	if (fgets(buf, (int)len, f))
		buf[strcspn(buf, "\n")] = '\0';
	fclose(f);
}

/* ------------------------------------------------------------ attaching */

/* Can the kernel attach a tp_btf program to @name (libbpf-tools' test)? */
static bool probe_tp_btf(const char *name)
{
	LIBBPF_OPTS(bpf_prog_load_opts, opts, .expected_attach_type = BPF_TRACE_RAW_TP);
	struct bpf_insn insns[] = {
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = 0 },
		{ .code = BPF_JMP | BPF_EXIT },
	};
	int fd, id;

	id = libbpf_find_vmlinux_btf_id(name, BPF_TRACE_RAW_TP);
	if (id <= 0)
		return false;
	opts.attach_btf_id = id;
	fd = bpf_prog_load(BPF_PROG_TYPE_TRACING, NULL, "GPL", insns, 2, &opts);
	if (fd >= 0)
		close(fd);
	return fd >= 0;
}

/* Does this kernel's sched_switch pass prev_state (5.18 on)? */
static bool sched_switch_has_prev_state(void)
{
	const struct btf_type *t;
	struct btf *btf;
	bool yes = false;
	int id;

	btf = btf__load_vmlinux_btf();
	if (libbpf_get_error(btf))
		return false;
	id = btf__find_by_name_kind(btf, "btf_trace_sched_switch", BTF_KIND_TYPEDEF);
	if (id > 0) {
		t = btf__type_by_id(btf, btf__resolve_type(btf, id));
		if (t && btf_is_ptr(t))
			t = btf__type_by_id(btf, t->type);
		/* void *, preempt, prev, next, prev_state */
		yes = t && btf_is_func_proto(t) && btf_vlen(t) >= 5;
	}
	btf__free(btf);
	return yes;
}

/* Keep the tp_btf programs where they attach, else their raw_tp twins. */
static bool choose_programs(struct schedcmp_bpf *obj)
{
	struct {
		const char *tp;
		struct bpf_program *btf, *raw;
	} pairs[] = {
		{ "sched_wakeup", obj->progs.sched_wakeup_btf, obj->progs.sched_wakeup_raw },
		{ "sched_wakeup_new", obj->progs.sched_wakeup_new_btf,
		  obj->progs.sched_wakeup_new_raw },
		{ "sched_switch", obj->progs.sched_switch_btf, obj->progs.sched_switch_raw },
		{ "sys_enter", obj->progs.sys_enter_btf, obj->progs.sys_enter_raw },
		{ "sys_exit", obj->progs.sys_exit_btf, obj->progs.sys_exit_raw },
	};
	bool all_btf = true;
	size_t i;

	for (i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
		bool btf = probe_tp_btf(pairs[i].tp), on = !env.fibers_only;

		if (env.no_syscalls && !strncmp(pairs[i].tp, "sys_", 4))
			on = false;
		bpf_program__set_autoload(pairs[i].btf, on && btf);
		bpf_program__set_autoload(pairs[i].raw, on && !btf);
		all_btf &= btf;
	}
	return all_btf;
}

static int attach_tracepoints(struct schedcmp_bpf *obj)
{
	struct {
		struct bpf_program *prog;
		struct bpf_link **link;
	} progs[] = {
		{ obj->progs.sched_wakeup_btf, &obj->links.sched_wakeup_btf },
		{ obj->progs.sched_wakeup_new_btf, &obj->links.sched_wakeup_new_btf },
		{ obj->progs.sched_switch_btf, &obj->links.sched_switch_btf },
		{ obj->progs.sys_enter_btf, &obj->links.sys_enter_btf },
		{ obj->progs.sys_exit_btf, &obj->links.sys_exit_btf },
		{ obj->progs.sched_wakeup_raw, &obj->links.sched_wakeup_raw },
		{ obj->progs.sched_wakeup_new_raw, &obj->links.sched_wakeup_new_raw },
		{ obj->progs.sched_switch_raw, &obj->links.sched_switch_raw },
		{ obj->progs.sys_enter_raw, &obj->links.sys_enter_raw },
		{ obj->progs.sys_exit_raw, &obj->links.sys_exit_raw },
	};
	size_t i;

	for (i = 0; i < sizeof(progs) / sizeof(progs[0]); i++) {
		if (!bpf_program__autoload(progs[i].prog))
			continue;
		*progs[i].link = bpf_program__attach(progs[i].prog);
		if (!*progs[i].link) {
			fprintf(stderr, "%s: cannot attach %s: %s\n", env.prog,
				bpf_program__section_name(progs[i].prog), strerror(errno));
			return -1;
		}
	}
	return 0;
}

/*
 * A mapped file of @pid whose name ends in "/libringfiber.so" or contains
 * "/libringfiber.so.", for a program that links the runtime dynamically.
 */
static char *find_mapped_runtime(pid_t pid)
{
	char path[64], *line = NULL, *file, *found = NULL;
	size_t cap = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/maps", pid);
	f = fopen(path, "re");
	if (!f)
		return NULL;
	while (!found && getline(&line, &cap, f) > 0) {
		line[strcspn(line, "\n")] = '\0';
		file = strchr(line, '/');
		if (!file)
			continue;
		if (strstr(file, "/libringfiber.so.") ||
		    (strlen(file) > 16 && !strcmp(file + strlen(file) - 16, "/libringfiber.so")))
			found = strdup(file);
	}
	free(line);
	fclose(f);
	return found;
}

/*
 * Attach the batch program to ringfiber:batch in @binary, or in the
 * libringfiber.so @pid has mapped.  Returns the file it attached to (to be
 * freed), or NULL with a note on stderr: the fibers are then not traced.
 */
static char *attach_batch(struct schedcmp_bpf *obj, pid_t pid, const char *binary,
			  bool may_look_in_maps, bool quiet)
{
	char *lib, *where = NULL;
	struct bpf_link *link;

	libbpf_quiet = true;
	link = bpf_program__attach_usdt(obj->progs.rf_batch, pid, binary,
					"ringfiber", "batch", NULL);
	if (link) {
		where = strdup(binary);
	} else if (may_look_in_maps && (lib = find_mapped_runtime(pid))) {
		link = bpf_program__attach_usdt(obj->progs.rf_batch, pid, lib,
						"ringfiber", "batch", NULL);
		if (link)
			where = lib;
		else
			free(lib);
	}
	libbpf_quiet = false;
	if (link && !where) {
		bpf_link__destroy(link);
		link = NULL;
	}
	obj->links.rf_batch = link;
	if (!link && !quiet)
		fprintf(stderr, "%s: %s: no ringfiber:batch probe%s: %s\n",
			env.prog, binary,
			may_look_in_maps ? " (nor in a mapped libringfiber.so)" : "",
			env.fibers_only ? "nothing to trace with -F" : "tracing threads only");
	return where;
}

/*
 * The records @pid's workers took after the last one they handed to us,
 * once we have detached (so the runtime has stopped recording, unless
 * another tracer keeps it on): read from each worker's buffer (the batch
 * probe's @records, kept in the wseq map with the number its next record
 * should carry), the records at its start carry the numbers of the last
 * ones taken.  A worker that handed over no batch while traced is not in
 * the map.
 */
static __u64 count_unflushed(struct schedcmp_bpf *obj, pid_t pid)
{
	int fd = bpf_map__fd(obj->maps.wseq);
	__u64 key, next_key, *prev = NULL, total = 0;
	struct schedcmp_wseq ws;
	char *buf = NULL;
	size_t size;
	int i;

	while (bpf_map_get_next_key(fd, prev, &next_key) == 0) {
		struct iovec local, remote;
		__u32 expect = 0, first = 0;

		key = next_key;
		prev = &key;
		if (bpf_map_lookup_elem(fd, &key, &ws) || !ws.next ||
		    ws.record_size < sizeof(struct rf_trace_rec) || ws.record_size > 4096)
			continue;
		size = (size_t)RF_TRACE_BATCH * ws.record_size;
		free(buf);
		buf = malloc(size);
		if (!buf)
			break;
		local = (struct iovec){ .iov_base = buf, .iov_len = size };
		remote = (struct iovec){ .iov_base = (void *)(uintptr_t)key, .iov_len = size };
		if (process_vm_readv(pid, &local, 1, &remote, 1, 0) != (ssize_t)size)
			continue;	/* gone, or that worker's memory is */
		/* The records from the buffer's start, numbered one after the other. */
		for (i = 0; i < RF_TRACE_BATCH; i++) {
			struct rf_trace_rec r;

			memcpy(&r, buf + (size_t)i * ws.record_size, sizeof(r));
			if (r.type != RF_TRACE_REC_RUN || !r.seq || (i && r.seq != expect))
				break;
			if (!i)
				first = r.seq;
			expect = r.seq + 1 ? r.seq + 1 : 1;
		}
		/*
		 * Numbered from ws.next on, they are what we were not handed,
		 * with the batches fired in between (while the probe was
		 * being detached, say); numbered before it, the buffer holds
		 * only records we had.
		 */
		if (i && first - ws.next < 0x80000000u)
			total += (__u64)(first - ws.next) - (first < ws.next) + (__u64)i;
	}
	free(buf);
	return total;
}

/*
 * The command @path had no ringfiber:batch probe: a wrapper (taskset, env,
 * nice, a shell's exec) that execs the program, or a program that links
 * libringfiber.so, mapped once it runs.  Follow it for FOLLOW_MS: each
 * executable @pid comes to run, and a libringfiber.so it maps, is tried.
 * Returns where the probe was attached, or NULL after saying what to do.
 */
static char *follow_command(struct schedcmp_bpf *obj, pid_t pid, const char *path)
{
	char link[64], exe[PATH_MAX], last[PATH_MAX] = "", *lib, *where = NULL;
	long long end = now_ns() + FOLLOW_MS * 1000000LL;
	ssize_t n;

	snprintf(link, sizeof(link), "/proc/%d/exe", pid);
	while (!where && now_ns() < end) {
		n = readlink(link, exe, sizeof(exe) - 1);
		if (n <= 0)
			break;		/* it has exited */
		exe[n] = '\0';
		if (strcmp(exe, last)) {
			strcpy(last, exe);
			where = attach_batch(obj, pid, exe, false, true);
		}
		if (!where && (lib = find_mapped_runtime(pid))) {
			where = attach_batch(obj, pid, lib, false, true);
			free(lib);
		}
		if (!where)
			usleep(FOLLOW_POLL_US);
	}
	if (where && strcmp(where, path))
		fprintf(stderr, "%s: %s has no ringfiber:batch probe: tracing the fibers of "
			"what it runs, %s, from the moment it was found\n", env.prog, path,
			where);
	else if (!where)
		fprintf(stderr, "%s: no ringfiber:batch probe in %s, nor in what it ran in "
			"the next %d ms: if it is a wrapper that forks the program (a shell "
			"script, say), start the program under %s directly, or trace it with "
			"-p PID; %s\n", env.prog, path, FOLLOW_MS, env.prog,
			env.fibers_only ? "nothing to trace with -F" : "tracing threads only");
	return where;
}

/* --------------------------------------------------------------- counters */

#define SIDE_WORDS (sizeof(struct schedcmp_side) / sizeof(__u64))
#define STATS_WORDS (sizeof(struct schedcmp_stats) / sizeof(__u64))

/* Sum the per-CPU copies of the stats map into @out. */
static int read_stats(struct schedcmp_bpf *obj, struct schedcmp_stats *out, void *percpu,
		      int ncpus)
{
	size_t stride = (sizeof(struct schedcmp_stats) + 7) & ~(size_t)7;
	__u64 *dst = (__u64 *)out;
	__u32 zero = 0;
	int cpu;
	size_t w;

	if (bpf_map_lookup_elem(bpf_map__fd(obj->maps.stats), &zero, percpu)) {
		fprintf(stderr, "%s: cannot read the counters: %s\n", env.prog, strerror(errno));
		return -1;
	}
	memset(out, 0, sizeof(*out));
	for (cpu = 0; cpu < ncpus; cpu++) {
		const __u64 *src = (const __u64 *)((char *)percpu + cpu * stride);

		for (w = 0; w < STATS_WORDS; w++)
			dst[w] += src[w];
	}
	return 0;
}

static void diff_stats(struct schedcmp_stats *d, const struct schedcmp_stats *cur,
		       const struct schedcmp_stats *prev)
{
	const __u64 *c = (const __u64 *)cur, *p = (const __u64 *)prev;
	__u64 *o = (__u64 *)d;
	size_t w;

	for (w = 0; w < STATS_WORDS; w++)
		o[w] = c[w] - p[w];
}

/* Slot @k's bounds in ns: [lo, hi). */
static void slot_bounds(int k, double *lo, double *hi)
{
	*lo = k == 0 ? 0 : ldexp(1, k);
	*hi = ldexp(1, k + 1);
}

/*
 * The @p quantile (0 < p < 1) of the histogram, interpolated linearly in
 * its bucket; NAN when it is empty.
 */
static double hist_quantile(const __u64 *hist, double p)
{
	double total = 0, want, cum = 0, lo, hi;
	int k;

	for (k = 0; k < SCHEDCMP_SLOTS; k++)
		total += (double)hist[k];
	if (total == 0)
		return NAN;
	want = p * total;
	for (k = 0; k < SCHEDCMP_SLOTS; k++) {
		if (!hist[k])
			continue;
		if (cum + (double)hist[k] >= want) {
			slot_bounds(k, &lo, &hi);
			return lo + (hi - lo) * (want - cum) / (double)hist[k];
		}
		cum += (double)hist[k];
	}
	slot_bounds(SCHEDCMP_SLOTS - 1, &lo, &hi);
	return hi;
}

/* Summary figures of a set of latencies. */
struct lat_figures {
	double mean, p50, p99;
};

static void lat_figures(const struct schedcmp_lat *l, struct lat_figures *f)
{
	f->mean = l->count ? (double)l->sum_ns / (double)l->count : NAN;
	f->p50 = hist_quantile(l->hist, 0.50);
	f->p99 = hist_quantile(l->hist, 0.99);
}

/* Summary figures of one side over one interval. */
struct figures {
	double per_s, sw_mean;
	struct lat_figures rq, rq_runnable;
};

static void figures(const struct schedcmp_side *s, double secs, struct figures *f)
{
	f->per_s = secs > 0 ? (double)s->switches / secs : NAN;
	f->sw_mean = s->sw_count ? (double)s->sw_sum_ns / (double)s->sw_count : NAN;
	lat_figures(&s->rq, &f->rq);
	lat_figures(&s->rq_runnable, &f->rq_runnable);
}

/* ------------------------------------------------------------------ text */

/* @ns with a unit and three significant digits, at most 6 characters. */
static const char *fmt_ns(double ns, char *buf, size_t len)
{
	static const char *const units[] = { "ns", "us", "ms", "s" };
	int u = 0;

	if (isnan(ns)) {
		snprintf(buf, len, "-");
		return buf;
	}
	while (u < 3 && ns >= 999.5) {
		ns /= 1000;
		u++;
	}
	if (u == 0 || ns >= 99.95)
		snprintf(buf, len, "%.0f%s", ns, units[u]);
	else if (ns >= 9.995)
		snprintf(buf, len, "%.1f%s", ns, units[u]);
	else
		snprintf(buf, len, "%.2f%s", ns, units[u]);
	return buf;
}

static const char *fmt_u64(__u64 v, char *buf, size_t len)
{
	snprintf(buf, len, "%llu", (unsigned long long)v);
	return buf;
}

static void bar(char *out, __u64 v, __u64 max)
{
	int n = max ? (int)((v * BAR_WIDTH + max - 1) / max) : 0;

	if (n > BAR_WIDTH)
		n = BAR_WIDTH;
	memset(out, '*', (size_t)n);
	memset(out + n, ' ', (size_t)(BAR_WIDTH - n));
	out[BAR_WIDTH] = '\0';
}

static void print_row(const char *label, const char *t, const char *f)
{
	printf("%-34s %14s %14s\n", label, t, f);
}

/* Rows of two sides' numbers: @fmt makes the text of a value. */
#define ROW_NS(label, tv, fv) \
	print_row(label, fmt_ns(tv, a, sizeof(a)), fmt_ns(fv, b, sizeof(b)))
#define ROW_U64(label, tv, fv) \
	print_row(label, fmt_u64(tv, a, sizeof(a)), fmt_u64(fv, b, sizeof(b)))

static void print_hists(const struct schedcmp_side *t, const struct schedcmp_side *f)
{
	char lo[16], hi[16], range[40], tb[BAR_WIDTH + 1], fb[BAR_WIDTH + 1];
	__u64 tmax = 0, fmax = 0;
	int k, first = -1, last = -1;
	double l, h;

	for (k = 0; k < SCHEDCMP_SLOTS; k++) {
		if (t->rq.hist[k] || f->rq.hist[k]) {
			if (first < 0)
				first = k;
			last = k;
		}
		if (t->rq.hist[k] > tmax)
			tmax = t->rq.hist[k];
		if (f->rq.hist[k] > fmax)
			fmax = f->rq.hist[k];
	}
	if (first < 0)
		return;
	printf("\nrun-queue latency        threads                    fibers\n");
	printf("%-16s %9s %-*s %9s %s\n", "range", "count", BAR_WIDTH + 2,
	       "distribution", "count", "distribution");
	for (k = first; k <= last; k++) {
		slot_bounds(k, &l, &h);
		snprintf(range, sizeof(range), "%s .. %s", fmt_ns(l, lo, sizeof(lo)),
			 fmt_ns(h, hi, sizeof(hi)));
		bar(tb, t->rq.hist[k], tmax);
		bar(fb, f->rq.hist[k], fmax);
		printf("%-16s %9llu |%s| %9llu |%s|\n", range,
		       (unsigned long long)t->rq.hist[k], tb,
		       (unsigned long long)f->rq.hist[k], fb);
	}
}

/*
 * One side's half of a row of the parked table: 35 columns.  An untimed
 * row (the fibers' "unknown": parked before tracing began) has a count only.
 */
static void print_parked_cell(const char *name, __u64 count, __u64 ns, bool timed, bool last)
{
	char c[24], tot[16], mean[16];

	if (!name)
		printf("%-35s", "");
	else if (!count || !timed)
		printf("%-10s %6s %8s %8s", name, fmt_u64(count, c, sizeof(c)), "-", "-");
	else
		printf("%-10s %6s %8s %8s", name, fmt_u64(count, c, sizeof(c)),
		       fmt_ns((double)ns, tot, sizeof(tot)),
		       fmt_ns((double)ns / (double)count, mean, sizeof(mean)));
	fputs(last ? "\n" : "  ", stdout);
}

static void print_parked(const struct schedcmp_side *t, const struct schedcmp_side *f)
{
	bool other = f->parked_count[SCHEDCMP_REASON_OTHER] != 0;
	__u64 sum = 0;
	int r;

	for (r = 0; r < SCHEDCMP_REASONS; r++)
		sum += t->parked_count[r] + f->parked_count[r];
	if (!sum)
		return;
	printf("\ntime parked         threads                        fibers\n");
	printf("%-10s %6s %8s %8s  %-10s %6s %8s %8s\n", "state", "count", "total", "mean",
	       "reason", "count", "total", "mean");
	for (r = 0; r < RF_TRACE_REASONS || r < SCHEDCMP_TSTATES; r++) {
		if (r < SCHEDCMP_TSTATES)
			print_parked_cell(thread_states[r], t->parked_count[r],
					  t->parked_ns[r], true, false);
		else
			print_parked_cell(NULL, 0, 0, true, false);
		if (r < RF_TRACE_REASONS)
			print_parked_cell(fiber_reasons[r], f->parked_count[r],
					  f->parked_ns[r], r != RF_TRACE_REASON_UNKNOWN, true);
		else
			putchar('\n');
	}
	/* Only where a newer library used a reason this table does not name. */
	if (other) {
		print_parked_cell(NULL, 0, 0, true, false);
		print_parked_cell(FIBER_REASON_OTHER_NAME, f->parked_count[SCHEDCMP_REASON_OTHER],
				  f->parked_ns[SCHEDCMP_REASON_OTHER], true, true);
	}
}

static void print_text(const struct schedcmp_stats *d, double secs, bool fibers_on,
		       bool final)
{
	const struct schedcmp_side *t = &d->threads, *f = &d->fibers;
	struct figures ft, ff;
	char a[32], b[32], ts[16], head[96];
	time_t now = time(NULL);
	struct tm tm;
	int n;

	figures(t, secs, &ft);
	figures(f, secs, &ff);
	localtime_r(&now, &tm);
	strftime(ts, sizeof(ts), "%H:%M:%S", &tm);
	n = snprintf(head, sizeof(head), "--- %s  %.3f s%s ", ts, secs,
		     final ? " (last)" : "");
	printf("\n%s%.*s\n", head, n < 64 ? 64 - n : 0,
	       "----------------------------------------------------------------");
	print_row("", env.fibers_only ? "threads (off)" : "threads",
		  fibers_on ? "fibers" : "fibers (off)");
	ROW_U64("switches", t->switches, f->switches);
	print_row("switches/s", fmt_u64((__u64)llround(ft.per_s), a, sizeof(a)),
		  fmt_u64((__u64)llround(ff.per_s), b, sizeof(b)));
	ROW_U64("  involuntary (preempted)", t->involuntary, f->involuntary);
	ROW_U64("run-queue latency: count", t->rq.count, f->rq.count);
	ROW_NS("  mean", ft.rq.mean, ff.rq.mean);
	ROW_NS("  p50 (estimated)", ft.rq.p50, ff.rq.p50);
	ROW_NS("  p99 (estimated)", ft.rq.p99, ff.rq.p99);
	ROW_U64(" after preempt/yield: count", t->rq_runnable.count, f->rq_runnable.count);
	ROW_NS("  mean", ft.rq_runnable.mean, ff.rq_runnable.mean);
	ROW_NS("  p50 (estimated)", ft.rq_runnable.p50, ff.rq_runnable.p50);
	ROW_U64("time per switch: count", t->sw_count, f->sw_count);
	ROW_NS("  mean", ft.sw_mean, ff.sw_mean);
	if (fibers_on) {
		snprintf(b, sizeof(b), "%llu/%llu/%llu", (unsigned long long)f->lost_attach,
			 (unsigned long long)f->lost_between,
			 (unsigned long long)(final ? lost_detach : 0));
		print_row("lost records: attach/mid/detach", "-", b);
	}
	if (f->unknown || f->bad || t->bad) {
		snprintf(b, sizeof(b), "%llu+%llu", (unsigned long long)f->unknown,
			 (unsigned long long)f->bad);
		print_row("unknown+bad records", fmt_u64(t->bad, a, sizeof(a)), b);
	}
	print_hists(t, f);
	print_parked(t, f);
}

/* ------------------------------------------------------------------ JSON */

static void json_num(const char *key, double v)
{
	if (isnan(v))
		printf("\"%s\":null,", key);
	else
		printf("\"%s\":%.1f,", key, v);
}

/* The histogram's non-empty buckets, each with its bounds [lo_ns, hi_ns). */
static void json_hist(const __u64 *hist)
{
	bool first = true;
	double lo, hi;
	int k;

	printf("\"hist\":[");
	for (k = 0; k < SCHEDCMP_SLOTS; k++) {
		if (!hist[k])
			continue;
		slot_bounds(k, &lo, &hi);
		printf("%s{\"lo_ns\":%.0f,\"hi_ns\":%.0f,\"count\":%llu}", first ? "" : ",",
		       lo, hi, (unsigned long long)hist[k]);
		first = false;
	}
	printf("]");
}

static void json_side(const struct schedcmp_side *s, double secs, bool threads, bool final)
{
	const char *const *names = threads ? thread_states : fiber_reasons;
	int k, n = threads ? SCHEDCMP_TSTATES : RF_TRACE_REASONS;
	struct figures fg;

	figures(s, secs, &fg);
	printf("{\"switches\":%llu,", (unsigned long long)s->switches);
	json_num("switches_per_s", fg.per_s);
	printf("\"involuntary\":%llu,", (unsigned long long)s->involuntary);
	printf("\"rq_count\":%llu,", (unsigned long long)s->rq.count);
	json_num("rq_mean_ns", fg.rq.mean);
	json_num("rq_p50_ns", fg.rq.p50);
	json_num("rq_p99_ns", fg.rq.p99);
	json_hist(s->rq.hist);
	printf(",\"rq_runnable\":{\"count\":%llu,", (unsigned long long)s->rq_runnable.count);
	json_num("mean_ns", fg.rq_runnable.mean);
	json_num("p50_ns", fg.rq_runnable.p50);
	json_num("p99_ns", fg.rq_runnable.p99);
	json_hist(s->rq_runnable.hist);
	printf("},\"switch_count\":%llu,", (unsigned long long)s->sw_count);
	json_num("switch_mean_ns", fg.sw_mean);
	printf("\"parked\":{");
	for (k = 0; k < n; k++) {
		printf("%s\"%s\":{\"count\":%llu,", k ? "," : "", names[k],
		       (unsigned long long)s->parked_count[k]);
		/* Parked before tracing began: how long is unknown. */
		if (!threads && k == RF_TRACE_REASON_UNKNOWN)
			printf("\"ns\":null}");
		else
			printf("\"ns\":%llu}", (unsigned long long)s->parked_ns[k]);
	}
	/* Only where a newer library used a reason this schedcmp does not name. */
	if (!threads && s->parked_count[SCHEDCMP_REASON_OTHER])
		printf(",\"%s\":{\"count\":%llu,\"ns\":%llu}", FIBER_REASON_OTHER_NAME,
		       (unsigned long long)s->parked_count[SCHEDCMP_REASON_OTHER],
		       (unsigned long long)s->parked_ns[SCHEDCMP_REASON_OTHER]);
	printf("},");
	if (!threads) {
		printf("\"batches\":%llu,\"unknown\":%llu,", (unsigned long long)s->batches,
		       (unsigned long long)s->unknown);
		printf("\"lost_attach\":%llu,\"lost_between\":%llu,\"lost_detach\":%llu,",
		       (unsigned long long)s->lost_attach, (unsigned long long)s->lost_between,
		       (unsigned long long)(final ? lost_detach : 0));
	}
	printf("\"bad\":%llu}", (unsigned long long)s->bad);
}

static void print_json(const struct schedcmp_stats *d, double secs, bool fibers_on,
		       bool final, int seq)
{
	struct timespec rt;

	clock_gettime(CLOCK_REALTIME, &rt);
	printf("{\"interval\":%d,\"time\":%lld.%03ld,\"interval_s\":%.3f,\"pid\":%d,"
	       "\"final\":%s,\"threads_traced\":%s,\"fibers_traced\":%s,\"threads\":",
	       seq, (long long)rt.tv_sec, rt.tv_nsec / 1000000, secs, env.pid,
	       final ? "true" : "false", env.fibers_only ? "false" : "true",
	       fibers_on ? "true" : "false");
	json_side(&d->threads, secs, true, final);
	printf(",\"fibers\":");
	json_side(&d->fibers, secs, false, final);
	printf("}\n");
}

/* ------------------------------------------------------------------ main */

/* Is the target gone?  Reaps it (and keeps its status) when it is ours. */
static bool target_exited(pid_t pid, bool child, int *status)
{
	pid_t r;

	if (child) {
		r = waitpid(pid, status, WNOHANG);
		return r == pid || (r < 0 && errno == ECHILD);
	}
	return kill(pid, 0) < 0 && errno == ESRCH;
}

static int pidfd_open_compat(pid_t pid)
{
#ifdef SYS_pidfd_open
	return (int)syscall(SYS_pidfd_open, pid, 0);
#else
	errno = ENOSYS;
	return -1;
#endif
}

int main(int argc, char **argv)
{
	struct command cmd = { .pid = 0, .hold_fd = -1, .err_fd = -1 };
	struct schedcmp_stats *cur = NULL, *prev = NULL, *delta = NULL;
	struct schedcmp_bpf *obj = NULL;
	char *cmd_path = NULL, *usdt_at = NULL, comm[32], exe[PATH_MAX];
	long long last, next, t;
	bool tp_btf, done = false, gone = false;
	int err = 1, ncpus, pidfd = -1, status = 0, seq = 0, e;
	void *percpu = NULL;
	struct sigaction sa;
	ssize_t n;
	pid_t tgid;

	parse_args(argc, argv);

	if (geteuid() != 0) {
		fprintf(stderr, "%s: must be run as root: loading BPF programs and "
			"attaching them to tracepoints and uprobes needs CAP_BPF, "
			"CAP_PERFMON and CAP_SYS_ADMIN\n", env.prog);
		return 1;
	}
	if (access("/sys/kernel/btf/vmlinux", R_OK) != 0) {
		fprintf(stderr, "%s: this kernel has no BTF (/sys/kernel/btf/vmlinux): "
			"CO-RE needs a kernel built with CONFIG_DEBUG_INFO_BTF=y\n", env.prog);
		return 1;
	}

	if (env.cmd) {
		cmd_path = find_command(env.cmd[0]);
		if (!cmd_path) {
			fprintf(stderr, "%s: %s: command not found\n", env.prog, env.cmd[0]);
			return 127;
		}
		if (access(cmd_path, X_OK) != 0) {
			e = errno;
			fprintf(stderr, "%s: cannot run %s: %s\n", env.prog, cmd_path,
				strerror(e));
			free(cmd_path);
			return e == ENOENT ? 127 : 126;
		}
		if (start_command(&cmd, cmd_path, env.cmd) < 0)
			goto cleanup;
		env.pid = cmd.pid;
	} else {
		tgid = read_tgid(env.pid);
		if (tgid < 0) {
			fprintf(stderr, "%s: no process %d\n", env.prog, env.pid);
			return 1;
		}
		if (tgid != env.pid) {
			fprintf(stderr, "%s: %d is a thread of process %d: tracing %d\n",
				env.prog, env.pid, tgid, tgid);
			env.pid = tgid;
		}
	}

	libbpf_set_print(libbpf_print);

	obj = schedcmp_bpf__open();
	if (!obj) {
		fprintf(stderr, "%s: cannot open the BPF object: %s\n", env.prog,
			strerror(errno));
		goto cleanup;
	}
	obj->rodata->targ_tgid = env.pid;
	obj->rodata->targ_prev_state_arg = sched_switch_has_prev_state();
	tp_btf = choose_programs(obj);

	e = schedcmp_bpf__load(obj);
	if (e) {
		fprintf(stderr, "%s: cannot load the BPF programs: %s\n", env.prog,
			strerror(-e));
		goto cleanup;
	}
	if (attach_tracepoints(obj))
		goto cleanup;

	if (env.cmd) {
		/* If CMD is a wrapper, the probes come with what it runs. */
		usdt_at = attach_batch(obj, env.pid, cmd_path, false, true);
	} else {
		char link[64];

		snprintf(link, sizeof(link), "/proc/%d/exe", env.pid);
		n = readlink(link, exe, sizeof(exe) - 1);
		if (n <= 0) {
			fprintf(stderr, "%s: cannot read /proc/%d/exe: %s\n", env.prog,
				env.pid, strerror(errno));
			goto cleanup;
		}
		exe[n] = '\0';
		usdt_at = attach_batch(obj, env.pid, exe, true, false);
	}

	if (env.fibers_only && !usdt_at && !env.cmd)
		goto cleanup;

	ncpus = libbpf_num_possible_cpus();
	if (ncpus <= 0) {
		fprintf(stderr, "%s: cannot count the CPUs: %s\n", env.prog, strerror(-ncpus));
		goto cleanup;
	}
	percpu = calloc((size_t)ncpus, (sizeof(struct schedcmp_stats) + 7) & ~(size_t)7);
	cur = calloc(1, sizeof(*cur));
	prev = calloc(1, sizeof(*prev));
	delta = calloc(1, sizeof(*delta));
	if (!percpu || !cur || !prev || !delta) {
		fprintf(stderr, "%s: out of memory\n", env.prog);
		goto cleanup;
	}

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	if (env.cmd) {
		e = release_command(&cmd);
		if (e) {
			fprintf(stderr, "%s: cannot run %s: %s\n", env.prog, cmd_path,
				strerror(e));
			waitpid(cmd.pid, NULL, 0);
			cmd.pid = 0;
			err = e == ENOENT ? 127 : 126;
			goto cleanup;
		}
		if (!usdt_at)
			usdt_at = follow_command(obj, env.pid, cmd_path);
		if (env.fibers_only && !usdt_at)
			goto cleanup;	/* waits for the command */
	}
	read_comm(env.pid, comm, sizeof(comm));
	/* Text mode: the banner leads stdout; --json keeps stdout to JSON. */
	fprintf(env.json ? stderr : stdout,
		"Tracing pid %d (%s) %s.\n"
		"threads: %s; fibers: %s%s\n", env.pid, comm,
		env.cmd ? "until it exits" : "until it exits or Ctrl-C",
		env.fibers_only ? "not traced" :
		env.no_syscalls ? (tp_btf ? "sched tracepoints (tp_btf)" :
			"sched tracepoints (raw_tp)") :
		tp_btf ? "sched and syscall tracepoints (tp_btf)" :
			 "sched and syscall tracepoints (raw_tp)",
		usdt_at ? "ringfiber:batch in " : "not traced", usdt_at ? usdt_at : "");
	if (!env.fibers_only && !env.no_syscalls)
		fprintf(stderr, "%s: --syscalls: while schedcmp runs, every system call of every "
			"task on this machine takes the slow path through the sys_enter and "
			"sys_exit tracepoints\n", env.prog);
	fflush(env.json ? stderr : stdout);
	/* One write per interval: lines never mix with the command's output. */
	setvbuf(stdout, NULL, _IOFBF, 1 << 16);

	pidfd = pidfd_open_compat(env.pid);
	last = now_ns();
	next = env.interval ? last + (long long)(env.interval * NSEC_PER_SEC) : LLONG_MAX;
	err = 0;
	while (!done) {
		struct pollfd pfd = { .fd = pidfd, .events = POLLIN };
		long long wait_ms;

		t = now_ns();
		wait_ms = next == LLONG_MAX ? -1 : (next - t + 999999) / 1000000;
		if (wait_ms < 0 && next != LLONG_MAX)
			wait_ms = 0;
		if (pidfd < 0 && (wait_ms < 0 || wait_ms > EXIT_POLL_MS))
			wait_ms = EXIT_POLL_MS;
		if (wait_ms > INT_MAX)
			wait_ms = INT_MAX;
		if (!exiting)
			poll(&pfd, pidfd >= 0 ? 1 : 0, (int)wait_ms);
		if (target_exited(env.pid, env.cmd != NULL, &status)) {
			gone = true;
			if (env.cmd)
				cmd.pid = 0;	/* reaped */
		}
		t = now_ns();
		if (!exiting && !gone && t < next)
			continue;
		done = exiting || gone || (env.count && seq + 1 >= env.count);
		/*
		 * We leave a process that lives on: what its workers hold is
		 * lost.  Detached first, the runtime stops recording (unless
		 * another tracer keeps it on), so the count and the last
		 * interval's figures see the same records.
		 */
		if (done && !gone && obj->links.rf_batch) {
			bpf_link__destroy(obj->links.rf_batch);
			obj->links.rf_batch = NULL;
			lost_detach = count_unflushed(obj, env.pid);
		}
		if (read_stats(obj, cur, percpu, ncpus)) {
			err = 1;
			break;
		}
		diff_stats(delta, cur, prev);
		*prev = *cur;
		seq++;
		if (env.json)
			print_json(delta, (double)(t - last) / NSEC_PER_SEC, usdt_at != NULL,
				   done, seq);
		else
			print_text(delta, (double)(t - last) / NSEC_PER_SEC, usdt_at != NULL,
				   done);
		fflush(stdout);
		last = t;
		if (env.interval)
			while (next <= t)
				next += (long long)(env.interval * NSEC_PER_SEC);
	}
	if (gone && env.cmd) {
		if (WIFEXITED(status)) {
			err = WEXITSTATUS(status);
		} else if (WIFSIGNALED(status)) {
			fprintf(stderr, "%s: %s killed by signal %d\n", env.prog, env.cmd[0],
				WTERMSIG(status));
			err = 128 + WTERMSIG(status);
		}
	}

cleanup:
	if (cmd.hold_fd >= 0)
		close(cmd.hold_fd);	/* the held child reads EOF and exits */
	if (cmd.err_fd >= 0)
		close(cmd.err_fd);
	if (cmd.pid > 0 && err && !done)
		waitpid(cmd.pid, NULL, 0);
	if (pidfd >= 0)
		close(pidfd);
	schedcmp_bpf__destroy(obj);
	free(percpu);
	free(cur);
	free(prev);
	free(delta);
	free(cmd_path);
	free(usdt_at);
	return err;
}
