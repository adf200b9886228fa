// SPDX-License-Identifier: MIT
/*
 * stack.c - fiber stacks: guarded mappings, the pool, overflow reports.
 *
 * Each fiber gets one anonymous mapping (MAP_NORESERVE: only pages the fiber
 * touches cost memory) with a guard page at its low end and the fiber's
 * descriptor at its high end (the picture is in internal.h).  Freed stacks go
 * to a small per-worker pool, so spawning a fiber is usually a list pop.
 *
 * The guard page: on Linux >= 6.13 MADV_GUARD_INSTALL marks it in the page
 * tables without splitting the mapping, so a stack is one VMA and adjacent
 * stacks even merge into one.  Older kernels get mprotect(PROT_NONE), which
 * splits each stack into two VMAs: vm.max_map_count (65530 by default) then
 * caps a process at about 32,000 fiber stacks, and mmap/mprotect fail with
 * ENOMEM beyond that (see Documentation/fiber-core.md).
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "compat.h"
#include "internal.h"

/* The descriptor's share of the mapping's top, kept cache-line aligned. */
#define RF__DESC_SIZE ((sizeof(struct rf_fiber) + 63) & ~(size_t)63)

static size_t rf__round_up(size_t n, size_t to)
{
	return (n + to - 1) / to * to;
}

static int rf__guard_madvise_state;	/* 0 unknown, 1 works, -1 does not */

bool rf__guard_madvise_works(void)
{
	int state = __atomic_load_n(&rf__guard_madvise_state, __ATOMIC_RELAXED);
	long page = sysconf(_SC_PAGESIZE);
	void *p;

	if (state)
		return state > 0;
	p = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		return false;	/* unknown: ask again next time */
	state = madvise(p, page, MADV_GUARD_INSTALL) == 0 ? 1 : -1;
	munmap(p, 2 * page);
	__atomic_store_n(&rf__guard_madvise_state, state, __ATOMIC_RELAXED);
	return state > 0;
}

static struct rf_fiber *rf__desc_of(char *base, size_t map_size)
{
	return (struct rf_fiber *)(base + map_size - RF__DESC_SIZE);
}

static struct rf__stack_bucket *rf__bucket(struct rf__worker *wk, size_t map_size, bool create)
{
	struct rf__stack_bucket *free_slot = NULL;

	for (int i = 0; i < RF__STACK_BUCKETS; i++) {
		struct rf__stack_bucket *b = &wk->buckets[i];

		if (b->map_size == map_size)
			return b;
		if (!b->count && !free_slot)
			free_slot = b;
	}
	if (create && free_slot) {
		free_slot->map_size = map_size;
		free_slot->head = NULL;
		return free_slot;
	}
	return NULL;
}

int rf__stack_alloc(struct rf__worker *wk, size_t usable, struct rf_fiber **fp)
{
	size_t page = wk->page_size;
	size_t map_size = page + rf__round_up(usable + RF__DESC_SIZE, page);
	struct rf__stack_bucket *b = rf__bucket(wk, map_size, false);
	struct rf_fiber *f;
	char *base;

	if (b && b->head) {
		/* A pooled stack: its top bytes hold the link to the next one. */
		f = b->head;
		b->head = *(void **)f;
		b->count--;
		rf__count(&wk->stacks_pooled, -1);
		*fp = f;
		return 0;
	}

	base = mmap(NULL, map_size, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
	if (base == MAP_FAILED)
		return errno == EAGAIN ? -EAGAIN : -ENOMEM;
	if (!(wk->rt->features & RF_FEAT_GUARD_MADVISE) ||
	    madvise(base, page, MADV_GUARD_INSTALL) != 0) {
		/* mprotect splits the VMA: this is where max_map_count bites */
		if (mprotect(base, page, PROT_NONE) != 0) {
			int err = errno;

			munmap(base, map_size);
			return err == EAGAIN ? -EAGAIN : -ENOMEM;
		}
	}
	f = rf__desc_of(base, map_size);
	f->map_base = base;
	f->map_size = map_size;
	rf__count(&wk->stacks_mapped, 1);
	*fp = f;
	return 0;
}

static void rf__stack_unmap(struct rf__worker *wk, char *base, size_t map_size)
{
	munmap(base, map_size);
	rf__count(&wk->stacks_mapped, -1);
}

void rf__stack_free(struct rf__worker *wk, struct rf_fiber *f)
{
	char *base = f->map_base;
	size_t map_size = f->map_size;
	struct rf__stack_bucket *b;

	if (wk->stacks_pooled < wk->stack_pool_max) {
		b = rf__bucket(wk, map_size, true);
		if (b) {
			/*
			 * Keep map_base/map_size in the descriptor (they are
			 * not overwritten by the link) for the next user.
			 */
			*(void **)f = b->head;
			b->head = f;
			b->count++;
			rf__count(&wk->stacks_pooled, 1);
			return;
		}
	}
	rf__stack_unmap(wk, base, map_size);
}

void rf__stack_pool_drain(struct rf__worker *wk)
{
	for (int i = 0; i < RF__STACK_BUCKETS; i++) {
		struct rf__stack_bucket *b = &wk->buckets[i];

		while (b->head) {
			struct rf_fiber *f = b->head;

			b->head = *(void **)f;
			rf__stack_unmap(wk, f->map_base, f->map_size);
		}
		b->count = 0;
	}
	rf__store_relaxed(&wk->stacks_pooled, 0);
}

/* ------------------------------------------------------ overflow reports */

static struct sigaction rf__old_segv;
static pthread_once_t rf__segv_once = PTHREAD_ONCE_INIT;
static int rf__segv_err;

/* async-signal-safe output: write(2) of strings and hex/decimal numbers */
void rf__put(const char *s)
{
	ssize_t unused = write(STDERR_FILENO, s, strlen(s));

	(void)unused;
}

void rf__put_num(unsigned long long v, unsigned int radix)
{
	char buf[24];
	int i = sizeof(buf) - 1;

	buf[i] = '\0';
	do {
		buf[--i] = "0123456789abcdef"[v % radix];
		v /= radix;
	} while (v && i > 0);
	rf__put(buf + i);
}

/*
 * Install @handler (an SA_SIGINFO one, with @flags too and no signal
 * blocked while it runs) for @sig; the previous action in *@old if @old.
 * 0 or a negative errno.
 */
int rf__sigaction_install(int sig, void (*handler)(int, siginfo_t *, void *), int flags,
			  struct sigaction *old)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = handler;
	sa.sa_flags = SA_SIGINFO | flags;
	sigemptyset(&sa.sa_mask);
	return sigaction(sig, &sa, old) ? -errno : 0;
}

static void rf__segv_handler(int sig, siginfo_t *si, void *uc)
{
	struct rf__worker *wk = rf__tls_wk;
	struct rf_fiber *f = wk ? wk->current : NULL;

	if (f) {
		char *addr = si->si_addr;
		char *guard = f->map_base;
		/*
		 * A frame larger than a page can jump the guard: count a fault
		 * up to 64 KiB below the mapping as this fiber's overflow too.
		 */
		if (addr < guard + wk->page_size && addr + 65536 >= guard) {
			rf__put("ringfiber: stack overflow in fiber \"");
			rf__put(f->name);
			rf__put("\" (stack ");
			rf__put_num(f->map_size - wk->page_size, 10);
			rf__put(" bytes, fault at 0x");
			rf__put_num((uintptr_t)addr, 16);
			rf__put("); aborting\n");
			abort();
		}
	}
	/* Not ours: hand it to whoever was there before us. */
	if ((rf__old_segv.sa_flags & SA_SIGINFO) && rf__old_segv.sa_sigaction) {
		rf__old_segv.sa_sigaction(sig, si, uc);
	} else if (rf__old_segv.sa_handler != SIG_DFL && rf__old_segv.sa_handler != SIG_IGN) {
		rf__old_segv.sa_handler(sig);
	} else {
		/* Default action: return and let the access fault again, fatally. */
		signal(SIGSEGV, SIG_DFL);
	}
}

static void rf__segv_install(void)
{
	rf__segv_err = rf__sigaction_install(SIGSEGV, rf__segv_handler, SA_ONSTACK | SA_NODEFER,
					     &rf__old_segv);
}

int rf__overflow_handler_install(void)
{
	pthread_once(&rf__segv_once, rf__segv_install);
	return rf__segv_err;
}

/*
 * The handler cannot run on the stack that overflowed: give the worker
 * thread an alternate signal stack unless it has one already.
 */
int rf__altstack_enter(struct rf__worker *wk)
{
	stack_t old, ss;
	size_t size = 64 * 1024;
	void *p;

	if (sigaltstack(NULL, &old) != 0)
		return -errno;
	if (!(old.ss_flags & SS_DISABLE))
		return 0;
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return -ENOMEM;
	ss.ss_sp = p;
	ss.ss_size = size;
	ss.ss_flags = 0;
	if (sigaltstack(&ss, NULL) != 0) {
		int err = -errno;

		munmap(p, size);
		return err;
	}
	wk->altstack = p;
	wk->altstack_size = size;
	return 0;
}

void rf__altstack_leave(struct rf__worker *wk)
{
	stack_t ss = { .ss_flags = SS_DISABLE };

	if (!wk->altstack)
		return;
	sigaltstack(&ss, NULL);
	munmap(wk->altstack, wk->altstack_size);
	wk->altstack = NULL;
}
