// SPDX-License-Identifier: MIT
/*
 * preempt.c - suspending a CPU hog where it stands, and resuming it later.
 *
 * The watchdog (watchdog.c) finds a fiber that has run hog_ns of CPU time
 * without entering the runtime and sends its worker thread SIGURG.  The
 * handler runs on the worker's signal stack, in the middle of the fiber's
 * code.  If the fiber may be stopped there (rf__preempt_tick()), the
 * handler does not switch away itself: it copies its own signal frame (the
 * kernel's record of every register, the FP/SIMD state and the signal
 * mask) onto the fiber's stack, below what the interrupted code uses, and
 * edits the context it returns to so that the fiber "calls"
 * rf__preempt_trampoline() (arch/<arch>/preempt.S) on its own stack.
 * There, in ordinary code, rf__preempted() queues the fiber and yields the
 * worker.  When the fiber is run again, the trampoline hands the copied
 * frame to rt_sigreturn, and the kernel restores it exactly as it was.
 * This is Go's asynchronous preemption (an injected call), except that the
 * kernel, not our own assembly, saves and restores the registers, so
 * whatever state the kernel knows (AVX-512, PKRU, SVE) comes back whole.
 * Documentation/scheduler.md says why this design and not "KLT switching".
 *
 * The other design choice is where a fiber may be stopped.  Signal-yield is
 * only safe where the code interrupted holds nothing the worker's other
 * fibers could need.  The rules, checked in this order:
 *  - the fiber is in its own code (wk->in_user, as for the hog rescue):
 *    never inside the runtime;
 *  - preemption is not disabled for it (rf_preempt_disable(), no_preempt);
 *  - the interrupted instruction is in the executable's own code, not in
 *    libc, the dynamic loader, the vDSO or any other shared object (their
 *    locks: malloc's arenas, stdio, the loader's);
 *  - no call into such an object is under way further up the stack (a
 *    qsort() comparator, a dl_iterate_phdr() callback): a word of the
 *    fiber's stack that could be a return address into one is checked by
 *    unwinding the fiber's frames (rf__stack_has_foreign_frame());
 *  - its stack has room for the frame and the yield below the red zone.
 * A signal that fails a rule changes nothing; the slice timer tries again.
 *
 * The time slice.  Once caught, a hog would otherwise run hog_ns again
 * before the watchdog looks.  So its worker arms a per-thread POSIX timer
 * (SIGEV_THREAD_ID, SIGURG, every slice_ns) while a caught hog runs: at each
 * tick, if anything else of the worker is ready (its run queue, inbox,
 * ring), the hog is preempted.  The others then run, and so does whatever
 * becomes ready while they do, for up to a slice; the hog then runs at
 * least a quarter of a slice (its minimum run) before a tick may stop it
 * again.  The timer keeps its phase across preemptions, ticks less and
 * less often while it finds nothing else to run, and stops when it finds
 * another fiber running or the worker idle (rf__slice_*() below say why:
 * a tick is not cheap in a virtual machine).  A runtime with no hog pays
 * nothing: no timer runs, the switch path has no new work.
 */
#include <dlfcn.h>
#include <errno.h>
#include <link.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <unwind.h>

#include "internal.h"
#include "sigframe.h"

#define RF__PREEMPT_SIGNAL SIGURG

/*
 * Stack a preemption needs below the moved frame: rf__preempted() and the
 * switch it makes, with room to spare (ASan's frames are larger).
 */
#ifdef __SANITIZE_ADDRESS__
#define RF__PREEMPT_STACK_NEED 8192
#else
#define RF__PREEMPT_STACK_NEED 2048
#endif

/* Code ranges of loaded objects, in address order. */
#define RF__MAX_CODE_RANGES 256

enum rf__code_kind {
	RF__CODE_OTHER,		/* libc, the loader, the vDSO, any other object */
	RF__CODE_OWN,		/* the executable's: preemptible */
	/*
	 * The runtime's, when it is a shared object of its own: never
	 * preempted (a fiber in it is not in_user, or in a call that touches
	 * nothing shared), but its frames under a fiber's code are no hazard.
	 */
	RF__CODE_RUNTIME,
};

struct rf__code_range {
	uintptr_t lo, hi;
	uint8_t kind;		/* enum rf__code_kind */
};

/*
 * The map of code the handler consults.  Rebuilt (by rf__preempt_refresh())
 * when objects are loaded or unloaded; @gen is odd while that happens, and
 * a handler that sees it change refuses to preempt (a seqlock: the handler
 * never waits).
 */
static struct {
	uint32_t gen;
	unsigned int n;
	struct rf__code_range r[RF__MAX_CODE_RANGES];
	unsigned long long adds, subs;	/* dl_iterate_phdr()'s counters when built */
	bool libc_shared;	/* libc is a shared object, not in the executable */
	bool complete;		/* every object's code fitted in r[] */
} rf__code;

static pthread_mutex_t rf__code_lock = PTHREAD_MUTEX_INITIALIZER;

struct rf__code_build {
	unsigned int n;
	struct rf__code_range r[RF__MAX_CODE_RANGES];
	bool first, libc_shared, complete;
};

/* Does the object of @info hold address @a in one of its segments? */
static bool rf__object_has(const struct dl_phdr_info *info, uintptr_t a)
{
	for (unsigned int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		uintptr_t lo = info->dlpi_addr + ph->p_vaddr;

		if (ph->p_type == PT_LOAD && a >= lo && a - lo < ph->p_memsz)
			return true;
	}
	return false;
}

static int rf__code_collect(struct dl_phdr_info *info, size_t size, void *arg)
{
	struct rf__code_build *b = arg;
	uint8_t kind = RF__CODE_OTHER;

	if (b->first)	/* the first object is the executable */
		kind = RF__CODE_OWN;
	else if (rf__object_has(info, (uintptr_t)rf__preempted))
		kind = RF__CODE_RUNTIME;
	b->first = false;
	if (info->dlpi_name && strstr(info->dlpi_name, "/libc.so"))
		b->libc_shared = true;
	if (info->dlpi_name && !strncmp(info->dlpi_name, "libc.so", 7))
		b->libc_shared = true;
	for (unsigned int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];

		if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_X))
			continue;
		if (b->n == RF__MAX_CODE_RANGES) {
			b->complete = false;
			return 0;
		}
		b->r[b->n].lo = info->dlpi_addr + ph->p_vaddr;
		b->r[b->n].hi = info->dlpi_addr + ph->p_vaddr + ph->p_memsz;
		b->r[b->n].kind = kind;
		b->n++;
	}
	return 0;
}

static int rf__code_counters(struct dl_phdr_info *info, size_t size, void *arg)
{
	unsigned long long *c = arg;

	c[0] = info->dlpi_adds;
	c[1] = info->dlpi_subs;
	return 1;	/* the counters are the same in every entry: stop */
}

static int rf__range_cmp(const void *a, const void *b)
{
	const struct rf__code_range *x = a, *y = b;

	return x->lo < y->lo ? -1 : x->lo > y->lo;
}

/*
 * Read the map of loaded code again if objects were loaded or unloaded
 * since it was built.  Called when a runtime is made and by the watchdog
 * before it signals a hog; never from a signal handler.
 */
void rf__preempt_refresh(void)
{
	static struct rf__code_build b;	/* under rf__code_lock: too big for a stack */
	unsigned long long c[2] = { 0, 0 };

	dl_iterate_phdr(rf__code_counters, c);
	pthread_mutex_lock(&rf__code_lock);
	if (rf__load_relaxed(&rf__code.gen) && c[0] == rf__code.adds && c[1] == rf__code.subs) {
		pthread_mutex_unlock(&rf__code_lock);
		return;
	}
	memset(&b, 0, sizeof(b));
	b.first = true;
	b.complete = true;
	dl_iterate_phdr(rf__code_collect, &b);
	qsort(b.r, b.n, sizeof(b.r[0]), rf__range_cmp);

	/* odd: no read of the map may start or finish while it changes */
	__atomic_add_fetch(&rf__code.gen, 1, __ATOMIC_ACQ_REL);
	rf__code.n = b.n;
	memcpy(rf__code.r, b.r, sizeof(b.r[0]) * b.n);
	rf__code.libc_shared = b.libc_shared;
	rf__code.complete = b.complete;
	rf__code.adds = c[0];
	rf__code.subs = c[1];
	__atomic_add_fetch(&rf__code.gen, 1, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&rf__code_lock);
}

/*
 * Can this program be preempted at all?  Not under ThreadSanitizer (it
 * defers asynchronous signals to its own safe points and hands the handler
 * a copy of the context, so the context cannot be redirected), and not
 * when libc is linked into the executable (its code cannot be told from
 * the program's).
 */
static _Unwind_Reason_Code rf__unwind_nothing(struct _Unwind_Context *ctx, void *arg);

bool rf__preempt_supported(void)
{
#if defined(__SANITIZE_THREAD__) || !(defined(__x86_64__) || defined(__aarch64__))
	return false;
#else
	/* the unwinder's one-time set-up (and its PLT entry), not in a handler */
	_Unwind_Backtrace(rf__unwind_nothing, NULL);
	rf__preempt_refresh();
	return rf__code.libc_shared && rf__code.complete;
#endif
}

/* The range holding @pc, or NULL: a binary search (signal-safe). */
static const struct rf__code_range *rf__code_find(uintptr_t pc)
{
	unsigned int lo = 0, hi = rf__code.n;

	while (lo < hi) {
		unsigned int mid = (lo + hi) / 2;
		const struct rf__code_range *r = &rf__code.r[mid];

		if (pc < r->lo)
			hi = mid;
		else if (pc >= r->hi)
			lo = mid + 1;
		else
			return r;
	}
	return NULL;
}

/* Could @w be a return address into another object's code? */
static bool rf__foreign_return(uintptr_t w)
{
	const struct rf__code_range *r = rf__code_find(w);

	return r && r->kind == RF__CODE_OTHER && w - r->lo >= 8 && rf__is_return_address(w);
}

/*
 * Does the fiber's stack from @sp to @hi hold a return address into
 * another object?  It reads every word, ASan's redzones of live frames
 * included: not ASan's business.
 */
__attribute__((no_sanitize_address))
static bool rf__stack_has_foreign_return(uintptr_t sp, uintptr_t hi)
{
	for (uintptr_t p = sp & ~(uintptr_t)7; p + 8 <= hi; p += 8)
		if (rf__foreign_return(*(const volatile uintptr_t *)p))
			return true;
	return false;
}

/*
 * The scan above reads words, not frames: a return address that a call
 * long finished left in a slot its caller's frame never wrote again (a
 * printf() before the computation) looks like a live one.  When it finds
 * one, the stack is unwound frame by frame from the signal frame, with the
 * compiler's unwinder and the objects' unwind tables: the verdict is then
 * exact.  libgcc's unwinder finds a table with _dl_find_object() (glibc
 * 2.35, GCC 12), which takes no lock, so it may run in a signal handler;
 * its one-time set-up runs first outside one (rf__preempt_supported()).
 */
struct rf__unwind_walk {
	uintptr_t lo, hi;	/* the fiber's stack */
	bool foreign;		/* a frame of another object's code */
	bool on_fiber;		/* reached the fiber's frames */
};

static _Unwind_Reason_Code rf__unwind_frame(struct _Unwind_Context *ctx, void *arg)
{
	struct rf__unwind_walk *w = arg;
	uintptr_t cfa = _Unwind_GetCFA(ctx);
	const struct rf__code_range *r;
	int before = 0;
	uintptr_t ip = _Unwind_GetIPInfo(ctx, &before);

	/*
	 * Past the outermost frame (rf__fiber_start's return address is
	 * undefined): libgcc calls us once more with no address, then ends.
	 */
	if (!ip)
		return _URC_NO_REASON;
	/* the handler's own frames and the kernel's signal frame: not the fiber's */
	if (cfa < w->lo || cfa > w->hi) {
		if (!w->on_fiber)
			return _URC_NO_REASON;
		w->foreign = true;	/* off the fiber's stack again: not ours to judge */
		return _URC_NORMAL_STOP;
	}
	w->on_fiber = true;
	r = rf__code_find(before ? ip : ip - 1);
	if (!r || r->kind == RF__CODE_OTHER) {
		w->foreign = true;
		return _URC_NORMAL_STOP;
	}
	return _URC_NO_REASON;
}

static _Unwind_Reason_Code rf__unwind_nothing(struct _Unwind_Context *ctx, void *arg)
{
	return _URC_NORMAL_STOP;
}

/* Is a call into another object under way on the fiber's stack [lo, hi)? */
static bool rf__stack_has_foreign_frame(uintptr_t lo, uintptr_t hi)
{
	struct rf__unwind_walk w = { .lo = lo, .hi = hi };
	_Unwind_Reason_Code rc = _Unwind_Backtrace(rf__unwind_frame, &w);

	/*
	 * Safe only if the walk reached the fiber's outermost frame through
	 * its own and the runtime's frames.  A frame with no unwind table, or
	 * a walk we stopped, ends otherwise (a callback that stops makes
	 * _Unwind_Backtrace() fail): unknown, so not safe.
	 */
	return rc != _URC_END_OF_STACK || w.foreign || !w.on_fiber;
}

/*
 * May the fiber interrupted with context @uc, whose stack is [@lo, @hi), be
 * stopped here?  Checks the code and the stack (the caller checked the
 * fiber's own state).
 */
static bool rf__preempt_safe_here(const ucontext_t *uc, uintptr_t lo, uintptr_t hi)
{
	uint32_t gen = __atomic_load_n(&rf__code.gen, __ATOMIC_ACQUIRE);
	const struct rf__code_range *r;
	uintptr_t sp = rf__uc_sp(uc);
	bool ok = false;

	if (gen & 1)
		return false;
	r = rf__code_find(rf__uc_pc(uc));
	if (!r || r->kind != RF__CODE_OWN)
		goto out;
	if ((rf__uc_link_reg(uc) && rf__foreign_return(rf__uc_link_reg(uc))) ||
	    rf__stack_has_foreign_return(sp, hi)) {
		if (rf__stack_has_foreign_frame(lo, hi))
			goto out;
	}
	ok = true;
out:
	/*
	 * A read that does not modify (Boehm's seqlock reader): its release
	 * keeps the map's reads above before it, where a plain load would not.
	 */
	return ok && __atomic_fetch_add(&rf__code.gen, 0, __ATOMIC_ACQ_REL) == gen;
}

/*
 * RF_RT_BLOCK_RESCUE (rescue.c) suspends a fiber blocked in a system call
 * the same way, but there the interrupted instruction is in libc, by
 * definition.  Safe only where the blocked call holds nothing the worker's
 * other fibers could need: libc's plain system-call wrappers, called from
 * the fiber's own code.  Their entry points, looked up in libc itself
 * (not through the executable's PLT), before any handler runs
 * (rf__preempt_block_calls_init()); a frame is one of them when its
 * function starts there (_Unwind_GetRegionStart()).  Not in the list, and
 * so never suspended: anything that takes a lock or keeps per-thread state
 * around its system call (stdio, malloc, pthread mutexes and condition
 * variables, semaphores, the resolver).
 */
static const char *const rf__block_call_names[] = {
	"read", "write", "readv", "writev", "pread64", "pwrite64", "preadv", "pwritev",
	"recv", "recvfrom", "recvmsg", "send", "sendto", "sendmsg", "accept", "accept4",
	"connect", "nanosleep", "clock_nanosleep", "usleep", "sleep", "poll", "ppoll",
	"select", "pselect", "epoll_wait", "epoll_pwait", "wait", "waitpid", "wait4",
	"waitid", "open", "open64", "openat", "openat64", "fsync", "fdatasync", "pause",
};

static uintptr_t rf__block_calls[sizeof(rf__block_call_names) / sizeof(rf__block_call_names[0])];
static pthread_once_t rf__block_calls_once = PTHREAD_ONCE_INIT;

static void rf__block_calls_find(void)
{
	void *libc = dlopen("libc.so.6", RTLD_LAZY | RTLD_NOLOAD);

	if (!libc)
		return;		/* none: nothing blocked is ever suspended */
	for (size_t i = 0; i < sizeof(rf__block_calls) / sizeof(rf__block_calls[0]); i++)
		rf__block_calls[i] = (uintptr_t)dlsym(libc, rf__block_call_names[i]);
	dlclose(libc);
}

/* Outside any handler, before the first block rescue (rescue.c). */
void rf__preempt_block_calls_init(void)
{
	pthread_once(&rf__block_calls_once, rf__block_calls_find);
}

static bool rf__is_block_call(uintptr_t start)
{
	for (size_t i = 0; start && i < sizeof(rf__block_calls) / sizeof(rf__block_calls[0]); i++)
		if (rf__block_calls[i] == start)
			return true;
	return false;
}

struct rf__block_walk {
	uintptr_t lo, hi;	/* the fiber's stack */
	bool on_fiber;		/* reached the fiber's frames */
	bool own;		/* reached the fiber's own code */
	bool bad;		/* a frame that may hold something */
};

static _Unwind_Reason_Code rf__block_frame(struct _Unwind_Context *ctx, void *arg)
{
	struct rf__block_walk *w = arg;
	uintptr_t cfa = _Unwind_GetCFA(ctx);
	const struct rf__code_range *r;
	int before = 0;
	uintptr_t ip = _Unwind_GetIPInfo(ctx, &before);

	if (!ip)
		return _URC_NO_REASON;
	if (cfa < w->lo || cfa > w->hi) {
		if (!w->on_fiber)
			return _URC_NO_REASON;	/* the handler's frames, the kernel's */
		w->bad = true;
		return _URC_NORMAL_STOP;
	}
	w->on_fiber = true;
	r = rf__code_find(before ? ip : ip - 1);
	if (r && r->kind != RF__CODE_OTHER) {
		w->own = true;
		return _URC_NO_REASON;
	}
	/* libc's wrappers, innermost, and nothing foreign under the fiber's code */
	if (w->own || !rf__is_block_call(_Unwind_GetRegionStart(ctx))) {
		w->bad = true;
		return _URC_NORMAL_STOP;
	}
	return _URC_NO_REASON;
}

/* Is @pc at, or just after, a system call instruction? */
static bool rf__at_syscall(uintptr_t pc)
{
#if defined(__x86_64__)
	const volatile unsigned char *b = (const volatile unsigned char *)pc;

	/* restarted: at "syscall" (0f 05); not restarted (EINTR): just after it */
	return (b[0] == 0x0f && b[1] == 0x05) || (b[-2] == 0x0f && b[-1] == 0x05);
#elif defined(__aarch64__)
	const volatile uint32_t *i = (const volatile uint32_t *)pc;

	return i[0] == 0xd4000001 || i[-1] == 0xd4000001;	/* svc #0 */
#else
	return false;
#endif
}

/*
 * May the fiber interrupted with context @uc in a blocking system call be
 * suspended there?  Its stack is [@lo, @hi).
 */
static bool rf__blocked_safe_here(const ucontext_t *uc, uintptr_t lo, uintptr_t hi)
{
	uint32_t gen = __atomic_load_n(&rf__code.gen, __ATOMIC_ACQUIRE);
	struct rf__block_walk w = { .lo = lo, .hi = hi };
	const struct rf__code_range *r;
	bool ok = false;

	if (gen & 1)
		return false;
	r = rf__code_find(rf__uc_pc(uc));
	if (!r || r->kind != RF__CODE_OTHER || !rf__at_syscall(rf__uc_pc(uc)))
		goto out;
	ok = _Unwind_Backtrace(rf__block_frame, &w) == _URC_END_OF_STACK && !w.bad && w.own;
out:
	return ok && __atomic_fetch_add(&rf__code.gen, 0, __ATOMIC_ACQ_REL) == gen;
}

/*
 * Copy @len bytes word by word: no call to memcpy(), which ASan
 * intercepts, and the fiber's stack below its sp is not ASan's business.
 */
__attribute__((no_sanitize_address))
static void rf__copy_words(uintptr_t to, uintptr_t from, size_t len)
{
	volatile uint64_t *d = (volatile uint64_t *)to;
	const volatile uint64_t *s = (const volatile uint64_t *)from;

	for (size_t i = 0; i < len / 8; i++)
		d[i] = s[i];
	for (size_t i = len & ~(size_t)7; i < len; i++)
		((volatile unsigned char *)to)[i] = ((const volatile unsigned char *)from)[i];
}

/*
 * Is anything but the running fiber waiting for the worker, other than
 * hogs preempted before (wk->preempted)?
 */
static bool rf__worker_has_work(struct rf__worker *wk)
{
	if (wk->runq.head || rf__load_relaxed(&wk->inbox))
		return true;
	if (wk->has_ring && (io_uring_cq_ready(&wk->ring) || rf__kernel_has_completions(wk)))
		return true;
	return wk->rxpool && rf__rxpool_has_work(wk);
}

/*
 * The least a resumed hog runs before it may be stopped again: a quarter
 * of a slice.  However fast what waits keeps coming, the hog gets on.
 */
static int64_t rf__min_run_ns(const struct rf__worker *wk)
{
	return wk->rt->slice_ns / 4;
}

/*
 * Ticks that find nothing else to run stretch the timer's period, doubling
 * it up to this many slices: a hog alone on its worker would otherwise pay
 * for a tick every slice for as long as it runs (a timer interrupt and a
 * signal: 28 us in a virtual machine we measured, where a slice is 100 us).
 * The price is the wait of the first fiber that becomes ready after a
 * quiet spell: at most this many slices.
 */
#define RF__SLICE_STRETCH_MAX 16

/* Arm the slice timer: its first tick @first_ns after @now, then every @period_ns. */
static void rf__slice_arm(struct rf__worker *wk, int64_t now, int64_t first_ns,
			  int64_t period_ns)
{
	struct itimerspec its = {
		.it_value = rf__timespec(first_ns),
		.it_interval = rf__timespec(period_ns),
	};

	if (timer_settime(wk->slice_timer, 0, &its, NULL) == 0) {
		wk->slice_armed = true;
		wk->slice_next_ns = now + first_ns;
		wk->slice_period_ns = period_ns;
	}
}

/*
 * The slice timer: tick for the fiber running now, or stop.  Once armed,
 * it keeps its phase: a preemption does not arm it again (a system call,
 * and reprogramming the clock costs a virtual machine an exit: 11 us of
 * the 28 us a tick cost where we measured).
 */
static void rf__slice_set(struct rf__worker *wk, bool on)
{
	struct itimerspec its = { 0 };

	if (!wk->slice_timer_ok)
		return;
	if (on) {
		wk->slice_seq = rf__load_relaxed(&wk->run_seq);
		if (!wk->slice_armed)
			rf__slice_arm(wk, rf__trace_now(), wk->rt->slice_ns, wk->rt->slice_ns);
		return;
	}
	if (wk->slice_armed && timer_settime(wk->slice_timer, 0, &its, NULL) == 0)
		wk->slice_armed = false;
}

/*
 * A tick found nothing else to run.  Right after a resume, the fibers that
 * ran meanwhile are often about to be ready again (their clients answer):
 * look again once the hog's minimum run is over.  Otherwise wait longer
 * each time (RF__SLICE_STRETCH_MAX).
 */
static void rf__slice_idle_tick(struct rf__worker *wk)
{
	int64_t slice = wk->rt->slice_ns, period = wk->slice_period_ns;

	if (!wk->slice_armed)
		return;
	if (wk->slice_recheck) {
		wk->slice_recheck = false;
		rf__slice_arm(wk, rf__trace_now(), rf__min_run_ns(wk), slice);
	} else if (period < slice * RF__SLICE_STRETCH_MAX) {
		rf__slice_arm(wk, rf__trace_now(), 2 * period, 2 * period);
	}
}

/*
 * A preempted hog resumes at @now: tick for it from here, every slice.
 * The timer ticks on in its phase when its next tick leaves the hog at
 * least its minimum run; when it would come sooner, the stopped timer
 * ticks for the first time when that run is over.
 */
static void rf__slice_resume(struct rf__worker *wk, int64_t now)
{
	int64_t slice = wk->rt->slice_ns, min_run = rf__min_run_ns(wk);
	int64_t first = min_run;

	wk->slice_seq = rf__load_relaxed(&wk->run_seq);
	if (!wk->slice_timer_ok)
		return;
	wk->slice_recheck = true;
	if (wk->slice_armed) {
		int64_t period = wk->slice_period_ns;

		/* the timer's ticks: slice_next_ns + k * period */
		if (wk->slice_next_ns < now)
			wk->slice_next_ns += (now - wk->slice_next_ns + period - 1) / period * period;
		first = wk->slice_next_ns - now;
		if (period == slice && first >= min_run)
			return;
		/* stretched: back to one slice, from the tick it would have had */
		first = first < min_run ? min_run : first > slice ? slice : first;
	}
	rf__slice_arm(wk, now, first, slice);
}

/*
 * rf__preempt_tick() - from the SIGURG handler: @f, running on @wk, is a
 * hog (the watchdog timed it, or the slice timer ticked for it).  Preempt
 * it if anything else is ready and it may be stopped here; otherwise keep
 * the slice timer ticking so that the worker looks again soon.  @si, @ucv:
 * the handler's arguments.
 *
 * Return: true if the handler's return now enters rf__preempted().
 */
static bool rf__suspend(struct rf__worker *wk, struct rf_fiber *f, siginfo_t *si, void *ucv,
			bool blocked);

bool rf__preempt_tick(struct rf__worker *wk, struct rf_fiber *f, siginfo_t *si, void *ucv)
{
	if (!wk->preempt_on || f->no_preempt)
		return false;
	/*
	 * Requests that fibers prepared just before the hog ran (a fiber that
	 * parks switches straight to the next one, with no trip through the
	 * loop that submits) are still ours: hand them to the kernel, or
	 * their completions, which the tick looks for, would never come.
	 */
	if (wk->has_ring && wk->unsubmitted)
		rf__flush(wk, false);
	if (!rf__worker_has_work(wk)) {
		rf__slice_set(wk, true);
		if (!wk->preempted.head) {
			if (si && si->si_code == SI_TIMER)
				rf__slice_idle_tick(wk);
			return false;
		}
		/*
		 * Only other hogs wait, preempted before: they take turns of
		 * a whole slice each, not the quarter a hog is sure of when
		 * fresh work keeps coming.
		 */
		if (rf__trace_now() - wk->slice_start_ns < wk->rt->slice_ns)
			return false;
	}
	wk->slice_recheck = false;
	/*
	 * The timer was set so as not to tick before the resumed hog's
	 * minimum run is over (rf__slice_resume()); a tick pending at the
	 * resume, or one sent by the monitor, may still come sooner.
	 */
	if (rf__trace_now() - wk->slice_start_ns < rf__min_run_ns(wk) / 2)
		return false;	/* resumed too recently to have got on */
	if (rf__suspend(wk, f, si, ucv, false))
		return true;
	rf__count(&wk->preempt_deferred, 1);
	rf__slice_set(wk, true);
	return false;
}

/*
 * rf__preempt_blocked() - from the SIGURG handler, at the request of the
 * block rescue (rescue.c): @f, running on @wk, is blocked in a system call
 * in libc.  Suspend it as a preempted fiber where that is safe
 * (rf__blocked_safe_here()): the handler's return then enters the
 * trampoline, the worker runs its other fibers, and when @f runs again
 * the kernel's frame is restored as it was: at the system call
 * instruction when the kernel restarts the call (SA_RESTART), or just
 * after it with EINTR.  Return: true if suspended.
 */
bool rf__preempt_blocked(struct rf__worker *wk, struct rf_fiber *f, siginfo_t *si, void *ucv)
{
	if (!wk->preempt_on || f->no_preempt)
		return false;
	if (wk->has_ring && wk->unsubmitted)
		rf__flush(wk, false);	/* as for a hog: their completions are what we wait for */
	return rf__suspend(wk, f, si, ucv, true);
}

/*
 * Move the handler's frame onto @f's stack and make the handler return
 * into the trampoline, if @f may be stopped where @ucv says (@blocked: in
 * a blocking system call).  Return: true if so.
 */
static bool rf__suspend(struct rf__worker *wk, struct rf_fiber *f, siginfo_t *si, void *ucv,
			bool blocked)
{
	ucontext_t *uc = ucv;
	uintptr_t lo = (uintptr_t)f->map_base + wk->page_size, hi = (uintptr_t)f;
	uintptr_t sp = rf__uc_sp(uc), start, dest;
	size_t len;

	if (f->preempt_off || sp < lo || sp >= hi || !rf__sigframe_span(si, uc, &start, &len))
		return false;
	/*
	 * Between the trampoline's store to in_user and its rt_sigreturn:
	 * stopping the fiber there would resume the outer frame later with
	 * the mask and altstack rf__preempted() gave it before this second
	 * stop.
	 */
	if (rf__uc_pc(uc) >= (uintptr_t)rf__preempt_trampoline &&
	    rf__uc_pc(uc) < (uintptr_t)rf__preempt_trampoline_end)
		return false;
	dest = (sp - RF_ARCH_RED_ZONE - len) & ~(uintptr_t)(RF_ARCH_FRAME_ALIGN - 1);
	dest += start & (RF_ARCH_FRAME_ALIGN - 1);
	if (dest + len > sp - RF_ARCH_RED_ZONE)
		dest -= RF_ARCH_FRAME_ALIGN;
	if (dest < lo + RF__PREEMPT_STACK_NEED)
		return false;
	if (blocked ? !rf__blocked_safe_here(uc, lo, hi) : !rf__preempt_safe_here(uc, lo, hi))
		return false;
	f->rescued = blocked;
	rf__copy_words(dest, start, len);
	rf__sigframe_moved(dest, (intptr_t)(dest - start));
	rf__uc_redirect(uc, (uintptr_t)rf__preempt_trampoline, (dest - 64) & ~(uintptr_t)15, dest);
	/*
	 * From here the fiber is in the runtime: a tick that comes before
	 * rf__preempted() runs (one pending when the handler returns is
	 * delivered at the trampoline's first instruction) must not preempt
	 * the trampoline again.
	 */
	wk->in_user = false;
	return true;
}

/*
 * rf__preempted() - the preempted fiber, in ordinary code on its own stack
 * (from the trampoline): give the worker to the fibers that wait, come
 * back, and return to the trampoline, which restores @frame.
 *
 * Return: the worker's in_user flag, which the trampoline sets just before
 * rt_sigreturn.  Set here, a tick landing on this function's last
 * instructions could preempt the fiber again, and the outer frame would
 * later restore the mask and altstack of this resume, not of the next.
 */
volatile bool *rf__preempted(void *frame)
{
	struct rf__worker *wk = rf__tls_wk;
	struct rf_fiber *f = wk->current;

	wk->in_user = false;
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	if (f->rescued) {
		/*
		 * Suspended in a blocking call (rescue.c): it runs again once
		 * the worker has nothing else to do (rf__loop()), and then
		 * usually blocks again.
		 */
		f->preempted = true;
		rf__fpctl_set(wk->fpctl);
		rf__set_state(f, RF__READY);
		rf__runq_push(&wk->rescued, f);
		wk->budget = 0;
		rf__park(wk);
		f->preempted = false;
		goto resumed;
	}
	rf__count(&wk->preemptions, 1);
	RF__PROBE(preempt, 2, f, wk->id);
	/*
	 * Not on the run queue yet: the loop reaps first and runs what the
	 * ring completed, and queues this fiber once a pass finds nothing
	 * else ready, or once it has waited a slice (rf__loop()).
	 */
	f->preempted = true;
	/*
	 * The fiber's rounding mode and the like come back with its frame;
	 * the fibers that run meanwhile get the worker's, as when it blocks.
	 */
	rf__fpctl_set(wk->fpctl);
	rf__set_state(f, RF__READY);
	if (!wk->preempted.head)
		wk->preempted_at_ns = rf__trace_now();
	rf__runq_push(&wk->preempted, f);
	wk->budget = 0;
	rf__park(wk);
	/* never stolen while preempted: still on the same worker, same thread */
	f->preempted = false;
resumed:
	/*
	 * rt_sigreturn will restore the signal mask and the alternate signal
	 * stack the frame saved; give it the thread's of now, which another
	 * fiber may have changed.  @frame is the copy's start.
	 */
	syscall(SYS_rt_sigprocmask, SIG_BLOCK, NULL, rf__sigframe_mask((uintptr_t)frame),
		_NSIG / 8);
	syscall(SYS_sigaltstack, NULL, rf__sigframe_altstack((uintptr_t)frame));
	/*
	 * A tick pending now is delivered while in_user is false, and
	 * ignored; the next leaves the fiber its minimum run: a hog always
	 * gets on, even when a preemption and the fibers that ran meanwhile
	 * took longer than a slice.  A fiber suspended in a blocking call is
	 * no hog: no slice for it (each tick would interrupt its call).
	 */
	if (!f->rescued) {
		wk->slice_start_ns = rf__trace_now();
		rf__slice_resume(wk, wk->slice_start_ns);
	}
	f->rescued = false;
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	return &wk->in_user;
}

/* The loop, after reaping: the preempted fibers' turn, behind what is ready. */
void rf__preempt_requeue(struct rf__worker *wk)
{
	struct rf_fiber *f;

	while ((f = rf__runq_pop(&wk->preempted)) != NULL)
		rf__runq_push(&wk->runq, f);
}

/* On the worker's thread, at the start of a run. */
int rf__preempt_setup(struct rf__worker *wk)
{
	struct sigevent sev = { 0 };

	wk->preempt_on = rf__load_relaxed(&wk->rt->features) & RF_FEAT_PREEMPT;
	wk->slice_armed = false;
	wk->fpctl = rf__fpctl_get();
	wk->slice_timer_ok = false;
	if (!wk->preempt_on)
		return 0;
	sev.sigev_notify = SIGEV_THREAD_ID;
	sev.sigev_signo = RF__PREEMPT_SIGNAL;
	sev._sigev_un._tid = wk->tid;
	/* without the timer the watchdog's own period is the slice */
	wk->slice_timer_ok = timer_create(CLOCK_MONOTONIC, &sev, &wk->slice_timer) == 0;
	return 0;
}

void rf__preempt_teardown(struct rf__worker *wk)
{
	if (wk->slice_timer_ok)
		timer_delete(wk->slice_timer);
	wk->slice_timer_ok = false;
	wk->slice_armed = false;
}

/*
 * Stop the slice timer if the fiber it ticks for is no longer running.  A
 * preempted hog's timer keeps its phase while the others run for less than
 * a slice; a tick that finds them still running stops it (each tick costs
 * them a timer interrupt and a signal), and the hog's resume arms it again.
 */
void rf__preempt_stale_tick(struct rf__worker *wk)
{
	if (wk->slice_armed && rf__load_relaxed(&wk->run_seq) != wk->slice_seq)
		rf__slice_set(wk, false);
}

RF_EXPORT int rf_preempt_disable(void)
{
	struct rf_fiber *f = rf__cur();

	if (!f)
		return -EPERM;
	if (f->preempt_off == UINT32_MAX)
		return -EOVERFLOW;
	f->preempt_off++;
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	return 0;
}

RF_EXPORT int rf_preempt_enable(void)
{
	struct rf_fiber *f = rf__cur();

	if (!f)
		return -EPERM;
	if (!f->preempt_off)
		return -EINVAL;
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	f->preempt_off--;
	return 0;
}
