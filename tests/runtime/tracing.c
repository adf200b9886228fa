// SPDX-License-Identifier: MIT
/*
 * tracing.c - the runtime's own side of tracing, without a tracer.
 *
 * The tracers' tests (tests/trace/) need root and BPF.  This one checks
 * what the runtime does by itself: rf_stats.runs, the count every tracer is
 * compared with, and the timed switch path that a tracer turns on, run
 * across workers under ThreadSanitizer (make check-tsan): the ready stamp
 * is written by the waker's thread and read by the worker that runs the
 * fiber.
 *
 * White-box in one place: the kernel raises a probe's semaphore when a
 * uprobe is attached; here the test raises it itself, so the runtime takes
 * its timestamps and fills its trace records while no tracer traps (the
 * probe sites stay no-ops).
 *
 * And the probes themselves, as a tracer finds them: the ".note.stapsdt"
 * notes of this executable (which links the runtime statically) hold every
 * probe that userspace/include/ringfiber-trace.h documents, each with its
 * semaphore and its number of arguments, and no other.
 */
#include <elf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"

/* userspace/src/trace.c: shared by the ready, run, park and batch probes. */
extern volatile unsigned short ringfiber_run_semaphore;

#define YIELDERS 4

struct yield_arg {
	int rounds;
};

static void *yielder(void *p)
{
	const struct yield_arg *a = p;

	for (int i = 0; i < a->rounds; i++)
		rf_yield();
	return NULL;
}

/* YIELDERS fibers yield to each other on one worker; main joins them. */
static void *yield_main(void *p)
{
	struct rf_fiber *f[YIELDERS];
	int spawned = 0;

	for (int i = 0; i < YIELDERS; i++)
		if (rf_spawn(&f[i], yielder, p, NULL) == 0)
			spawned++;
	for (int i = 0; i < spawned; i++)
		rf_join(f[i], NULL, RF_NO_DEADLINE);
	return (void *)(intptr_t)spawned;
}

struct pingpong {
	struct rf_chan *ping, *pong;
	int rounds;
	int bad;
};

static void *pinger(void *p)
{
	struct pingpong *pp = p;

	for (intptr_t i = 0; i < pp->rounds; i++) {
		void *v = NULL;

		if (rf_chan_send(pp->ping, (void *)(i + 1), RF_NO_DEADLINE) ||
		    rf_chan_recv(pp->pong, &v, RF_NO_DEADLINE) || v != (void *)(i + 2))
			pp->bad++;
	}
	return NULL;
}

static void *ponger(void *p)
{
	struct pingpong *pp = p;

	for (int i = 0; i < pp->rounds; i++) {
		void *v = NULL;

		if (rf_chan_recv(pp->ping, &v, RF_NO_DEADLINE) ||
		    rf_chan_send(pp->pong, (char *)v + 1, RF_NO_DEADLINE))
			pp->bad++;
	}
	return NULL;
}

static void *blocking_job(void *p)
{
	return p;
}

/* Ping-pong across two workers, a sleep and an offloaded call: every stamp. */
static void *cross_main(void *p)
{
	struct pingpong *pp = p;
	struct rf_fiber *a, *b;
	void *r = NULL;

	if (rf_chan_create(&pp->ping, 0) || rf_chan_create(&pp->pong, 0))
		return (void *)-1;
	if (rf_spawn_on(0, &a, pinger, pp, NULL) || rf_spawn_on(1, &b, ponger, pp, NULL))
		return (void *)-1;
	rf_sleep(rf_deadline_after(MSEC));
	if (rf_blocking(blocking_job, pp, &r) || r != pp)
		pp->bad++;
	rf_join(a, NULL, RF_NO_DEADLINE);
	rf_join(b, NULL, RF_NO_DEADLINE);
	rf_chan_destroy(pp->ping);
	rf_chan_destroy(pp->pong);
	return NULL;
}

/* The probes of ringfiber-trace.h's list, and how many arguments each has. */
static const struct {
	const char *name;
	int nargs;
} probes[] = {
	{ "spawn", 3 }, { "ready", 4 }, { "run", 6 }, { "park", 3 }, { "exit", 2 },
	{ "kick", 2 }, { "idle", 1 }, { "resume", 2 }, { "steal", 3 }, { "hog", 3 },
	{ "preempt", 2 }, { "batch", 4 },
};

#define NPROBES (sizeof(probes) / sizeof(probes[0]))

struct probe_seen {
	int sites;		/* notes of this probe */
	int with_semaphore;	/* of them, with a semaphore */
	int nargs;		/* the arguments of the last one; -1 if they differ */
};

/* This executable, whole, in memory; NULL (and *len 0) if it cannot be read. */
static unsigned char *read_self(size_t *len)
{
	FILE *f = fopen("/proc/self/exe", "rb");
	unsigned char *buf = NULL;
	long n;

	*len = 0;
	if (!f)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) > 0 && fseek(f, 0, SEEK_SET) == 0) {
		buf = malloc((size_t)n);
		if (buf && fread(buf, 1, (size_t)n, f) == (size_t)n) {
			*len = (size_t)n;
		} else {
			free(buf);
			buf = NULL;
		}
	}
	fclose(f);
	return buf;
}

/* Arguments in a note's argument string: "8@%rdi -4@$0" has two. */
static int count_args(const char *a)
{
	int n = 0;

	while (*a) {
		while (*a == ' ')
			a++;
		if (!*a)
			break;
		n++;
		while (*a && *a != ' ')
			a++;
	}
	return n;
}

/*
 * Walk the stapsdt notes (type 3, name "stapsdt"; the descriptor holds the
 * probe's address, the base, the semaphore's address, then provider, name
 * and argument strings).  Returns the ringfiber notes of unknown names.
 */
static int scan_notes(const unsigned char *img, size_t len, struct probe_seen *seen, int *notes)
{
	const Elf64_Ehdr *eh = (const void *)img;
	const Elf64_Shdr *sh, *strs;
	int unknown = 0;

	*notes = 0;
	if (len < sizeof(*eh) || memcmp(eh->e_ident, ELFMAG, SELFMAG) ||
	    eh->e_ident[EI_CLASS] != ELFCLASS64 || eh->e_shoff + (uint64_t)eh->e_shnum *
	    sizeof(*sh) > len || eh->e_shstrndx >= eh->e_shnum)
		return 0;
	sh = (const void *)(img + eh->e_shoff);
	strs = &sh[eh->e_shstrndx];
	for (unsigned int i = 0; i < eh->e_shnum; i++) {
		uint64_t off = sh[i].sh_offset, end = off + sh[i].sh_size;

		if (sh[i].sh_type != SHT_NOTE || strs->sh_offset + sh[i].sh_name >= len ||
		    strcmp((const char *)img + strs->sh_offset + sh[i].sh_name, ".note.stapsdt") ||
		    end > len)
			continue;
		while (off + sizeof(Elf64_Nhdr) <= end) {
			const Elf64_Nhdr *nh = (const void *)(img + off);
			uint64_t name = off + sizeof(*nh);
			uint64_t desc = name + ((nh->n_namesz + 3) & ~3u);
			uint64_t next = desc + ((nh->n_descsz + 3) & ~3u);
			const char *provider, *probe, *args, *limit;
			uint64_t semaphore;
			size_t k;

			if (next > end || nh->n_descsz < 3 * 8 + 3)
				break;
			off = next;
			if (nh->n_type != 3 || nh->n_namesz != 8 ||
			    memcmp(img + name, "stapsdt", 8))
				continue;
			(*notes)++;
			memcpy(&semaphore, img + desc + 16, 8);
			limit = (const char *)img + desc + nh->n_descsz;
			provider = (const char *)img + desc + 24;
			probe = provider + strnlen(provider, (size_t)(limit - provider)) + 1;
			if (probe >= limit)
				continue;
			args = probe + strnlen(probe, (size_t)(limit - probe)) + 1;
			if (args >= limit || memchr(args, 0, (size_t)(limit - args)) == NULL ||
			    strcmp(provider, "ringfiber"))
				continue;
			for (k = 0; k < NPROBES; k++)
				if (!strcmp(probe, probes[k].name))
					break;
			if (k == NPROBES) {
				tap_diag("ringfiber:%s is not in ringfiber-trace.h's list", probe);
				unknown++;
				continue;
			}
			if (seen[k].sites && seen[k].nargs != count_args(args))
				seen[k].nargs = -1;
			else
				seen[k].nargs = count_args(args);
			seen[k].sites++;
			if (semaphore)
				seen[k].with_semaphore++;
		}
	}
	return unknown;
}

static void check_probe_notes(void)
{
	struct probe_seen seen[NPROBES] = { { 0 } };
	unsigned char *img;
	size_t len;
	int notes, unknown;

	img = read_self(&len);
	ok(img != NULL, "notes: this executable can be read");
	if (!img)
		return;
	unknown = scan_notes(img, len, seen, &notes);
	ok(notes > 0, "notes: %d stapsdt notes in .note.stapsdt", notes);
	for (size_t k = 0; k < NPROBES; k++)
		ok(seen[k].sites > 0 && seen[k].with_semaphore == seen[k].sites &&
		   seen[k].nargs == probes[k].nargs,
		   "ringfiber:%s: %d sites, all with a semaphore (%d), %d arguments (got %d)",
		   probes[k].name, seen[k].sites, seen[k].with_semaphore, probes[k].nargs,
		   seen[k].nargs);
	is_int(unknown, 0, "notes: no ringfiber probe that ringfiber-trace.h does not list");
	free(img);
}

static void check_yield_runs(const char *what)
{
	struct yield_arg a = { .rounds = test_quick() ? 200 : 2000 };
	uint64_t want = (uint64_t)YIELDERS * (uint64_t)a.rounds;
	struct rf_runtime_opts opts = { .workers = 1 };
	struct rf_stats st;
	void *res = NULL;
	int rc = run_main(&opts, yield_main, &a, &res, &st);

	is_int(rc, 0, tn("%s: the yield run ends", what));
	is_int((intptr_t)res, YIELDERS, tn("%s: %d yielders ran", what, YIELDERS));
	/*
	 * Each yield with another fiber ready is one switch into a fiber; the
	 * last yields of the last fiber find nobody and switch nowhere; the
	 * first runs, main's and the loop's rounds add a few.
	 */
	ok(st.runs >= want - YIELDERS && st.runs <= want + 4 * YIELDERS + 64,
	   "%s: rf_stats.runs %llu counts the %llu yields (+ first runs)", what,
	   (unsigned long long)st.runs, (unsigned long long)want);
	ok(st.runs <= st.switches, "%s: runs (%llu) <= switches (%llu)", what,
	   (unsigned long long)st.runs, (unsigned long long)st.switches);
}

static void check_cross(const char *what)
{
	struct rf_runtime_opts opts = { .workers = 2 };
	struct pingpong pp = { .rounds = test_quick() ? 200 : 2000 };
	struct rf_stats st;
	void *res = NULL;
	int rc = run_main(&opts, cross_main, &pp, &res, &st);

	is_int(rc, 0, tn("%s: the cross-worker run ends", what));
	ok(res == NULL && pp.bad == 0, "%s: every value crossed intact", what);
	ok(st.runs >= (uint64_t)pp.rounds,
	   "%s: %d round trips took at least as many runs (%llu)", what, pp.rounds,
	   (unsigned long long)st.runs);
}

int main(void)
{
	test_watchdog(120);

	check_probe_notes();

	check_yield_runs("untraced");
	check_cross("untraced");

	ringfiber_run_semaphore = 1;	/* as if a tracer attached to "batch" */
	check_yield_runs("timed");
	check_cross("timed");
	ringfiber_run_semaphore = 0;
	return done_testing();
}
