# SPDX-License-Identifier: MIT
#
# ringfiber top-level Makefile.
#
#   make            library (static + shared), servers, benchmarks, tests
#   make deps       install the Debian packages that are missing (as root;
#                   make demo and make check do it first, plain make never)
#   make check      every test (TAP, under prove), then the unit tests again
#                   with ASan+UBSan and TSan, the aarch64 tests under
#                   qemu-user, the module's style checks, its KUnit suite,
#                   and the module's and the runtime's tests in a VM
#   make module     module/rfwake.ko (KDIR=... for another kernel)
#   make modules    one rfwake.ko per kernel (6.1, 6.12, 6.12-rt), in $(B)/module-<kver>/
#   make bench      rf-bench
#   make bench-http httpserver (fibers, threads, pool) against nginx and
#                   http-floor under wrk
#   make demo       the seeds' threads-vs-green-threads table, measured here
#                   (DEMO_ARGS=--quick for the short run)
#   make fuzz       the HTTP parser under libFuzzer (FUZZ_SECONDS=300)
#   make V=1        show full commands
#
# The kernel module is built by Kbuild (module/Kbuild); this file only hands
# `make module` to it.

# The library's version: the newest node of userspace/src/ringfiber.map
# (RINGFIBER_MAJOR.MINOR), read from it so that the two cannot disagree.
VERSION_NODE := $(lastword $(shell sed -n 's/^RINGFIBER_\([0-9]*\.[0-9]*\) {.*/\1/p' \
	userspace/src/ringfiber.map))
VERSION_MAJOR := $(firstword $(subst ., ,$(VERSION_NODE)))
VERSION_MINOR := $(lastword $(subst ., ,$(VERSION_NODE)))
VERSION := $(VERSION_MAJOR).$(VERSION_MINOR).0

CC ?= cc
AR ?= ar
B ?= build
AARCH64_CC ?= aarch64-linux-gnu-gcc

# Quiet by default, like liburing's Makefile.quiet and Kbuild.
ifeq ($(V),1)
Q :=
quiet = @true
else
Q := @
quiet = @printf '  %-7s %s\n'
endif
MAKEFLAGS += --no-print-directory

ARCH := $(shell $(CC) -dumpmachine | cut -d- -f1)

WARN := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
	-Wno-unused-parameter -Wpointer-arith -Wformat=2
CFLAGS ?= -O2 -g
BASE_CFLAGS := -std=gnu11 $(WARN) -D_GNU_SOURCE -Iuserspace/include -Imodule/include/uapi
NATIVE_CFLAGS := $(BASE_CFLAGS) -Iuserspace/src/arch/$(ARCH)
A64_CFLAGS := $(BASE_CFLAGS) -Iuserspace/src/arch/aarch64
# The library's internal headers are for the library only.
LIB_CFLAGS := -fPIC -fvisibility=hidden -Iuserspace/src
URING_LIBS := -luring

LIB_SRCS := userspace/src/runtime.c userspace/src/setup.c userspace/src/loop.c \
	userspace/src/deadlock.c userspace/src/shutdown.c \
	userspace/src/sched.c userspace/src/steal.c \
	userspace/src/watchdog.c userspace/src/preempt.c userspace/src/stack.c userspace/src/io.c \
	userspace/src/acceptor.c userspace/src/recv.c userspace/src/wq.c userspace/src/sync.c \
	userspace/src/chan.c userspace/src/group.c userspace/src/blocking.c \
	userspace/src/fls.c userspace/src/trace.c userspace/src/timer.c \
	userspace/src/wake/msg_ring.c \
	userspace/src/wake/eventfd.c userspace/src/wake/futex.c \
	userspace/src/wake/rfwake.c \
	userspace/src/rescue.c
ARCH_SRCS = userspace/src/arch/$(1)/switch.S userspace/src/arch/$(1)/preempt.S

# The objects of the library in build directory $(1) for architecture $(2).
LIB_OBJS_IN = $(patsubst userspace/src/%,$(1)/obj/%.o,$(LIB_SRCS) $(call ARCH_SRCS,$(2)))
LIB_HDRS := userspace/include/ringfiber.h $(wildcard userspace/src/*.h userspace/src/*/*.h \
	userspace/src/arch/*/*.h) \
	module/include/uapi/linux/rfwake.h
TEST_HDRS := tests/lib/tap.h tests/lib/helpers.h
# The C tests' shared headers, included as "tap.h" and "helpers.h".
TEST_CFLAGS := -Itests/lib

# --------------------------------------------------------------- native build
LIB_OBJS := $(call LIB_OBJS_IN,$(B),$(ARCH))
STATIC_LIB := $(B)/libringfiber.a
SHARED_LIB := $(B)/libringfiber.so.$(VERSION)
SONAME := libringfiber.so.$(VERSION_MAJOR)

# One folder of tests per area: runtime/ (the library's unit tests, C),
# servers/, bench/, build/; trace/, fuzz/ and rfwake/ have their own goals.
# Every C test's program is $(B)/tests/NAME.
TEST_SRCS := $(sort $(wildcard tests/runtime/*.c))
TEST_BINS := $(patsubst tests/runtime/%.c,$(B)/tests/%,$(TEST_SRCS))
TEST_SCRIPTS := $(sort $(foreach d,runtime servers bench build,$(wildcard tests/$(d)/*.sh \
	tests/$(d)/*.py)))
# The module's user-space tests: they run inside the test VM (tests/rfwake/vm.sh).
RFWAKE_TEST_SRCS := $(sort $(wildcard tests/rfwake/*.c))
RFWAKE_TEST_BINS := $(patsubst tests/%.c,$(B)/tests/%,$(RFWAKE_TEST_SRCS))
ASAN_BINS := $(patsubst tests/runtime/%.c,$(B)/asan/tests/%,$(TEST_SRCS))
ASAN_LIB := $(B)/asan/libringfiber.a
ASAN_FLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all

# Concurrency tests, again under ThreadSanitizer (make check-tsan).
TSAN_TESTS := stress toolkit blocking fls tracing lifetime wakelimit shutdown timers deadlock recv \
	preempt preempt_sync
TSAN_LIB := $(B)/tsan/libringfiber.a
TSAN_BINS := $(patsubst %,$(B)/tsan/tests/%,$(TSAN_TESTS))
TSAN_FLAGS := -fsanitize=thread -fno-omit-frame-pointer

# Tests that need no io_uring; they also run on aarch64 under qemu-user.
PORTABLE_TESTS := switch sched deadlock
AARCH64_BINS := $(patsubst %,$(B)/aarch64/tests/%,$(PORTABLE_TESTS))
# Preemption needs libc as a shared object (rf__preempt_supported()): these
# aarch64 tests are linked with libc dynamic (liburing static) and run with
# the cross toolchain's libc.  qemu's -L alone would mix two builds of glibc:
# ld.so from the prefix, but libc.so.6 from the host's /lib/aarch64-linux-gnu
# (libc6:arm64, which liburing-dev:arm64 pulls in), whose _rtld_global
# differs (GLIBC_PRIVATE): pthread_create() then loops for ever.
A64_DYN_TESTS := preempt
AARCH64_DYN_BINS := $(patsubst %,$(B)/aarch64-dyn/tests/%,$(A64_DYN_TESTS))
A64_SYSROOT ?= /usr/aarch64-linux-gnu
QEMU_A64_DYN := qemu-aarch64 -L $(A64_SYSROOT) -E LD_LIBRARY_PATH=$(A64_SYSROOT)/lib \
	-E RF_TEST_QUICK=1
# qemu saves the SVE registers in every signal frame; with 2048-bit vectors
# they no longer fit in __reserved[] and the frame has an EXTRA_MAGIC record.
QEMU_A64_SVE2048 := $(QEMU_A64_DYN) -cpu max,sve-default-vector-length=256

PROGRAM_LIBS := $(STATIC_LIB) $(URING_LIBS)
MODULE_KO := module/rfwake.ko
# The kernels the VM suite boots, each with its own rfwake.ko: Debian 12's
# 6.1, 6.12 and 6.12 PREEMPT_RT (scripts/kdir KVER finds the build tree).
# Kbuild builds in the sources' directory, so each kernel gets a copy of
# module/'s sources in $(B)/module-<kver>/ (make modules, below); cp -p
# keeps their times, so a rebuild compiles only what changed.
# make check boots all three (VM_KERNELS=6.12 for one).
VM_KERNELS ?= 6.1 6.12 6.12-rt
ALL_VM_KERNELS := 6.1 6.12 6.12-rt
VM_MODULES := $(foreach k,$(VM_KERNELS),$(B)/module-$(k)/rfwake.ko)

.PHONY: all lib check check-unit check-asan check-tsan check-aarch64 check-trace bench demo deps \
	clean module module-clean module-check kunit kunit-rt check-vm install-deps modules
.DEFAULT_GOAL := all

# The programs.  Each area's fragment adds its programs to PROGRAMS, the
# one list `all` builds; a fragment never adds a prerequisite to `all`
# itself.  servers/build.mk comes first: libserve.a's variables are
# expanded in the others' prerequisites, which make reads at once.
PROGRAMS :=
include servers/build.mk
include bench/build.mk
include trace/build.mk
include tests/trace/build.mk
include tests/fuzz/build.mk

all: lib $(PROGRAMS) $(TEST_BINS) $(RFWAKE_TEST_BINS)

lib: $(STATIC_LIB) $(SHARED_LIB)

# The packages (scripts/install-deps) must be there before anything compiles,
# whatever order the goals' prerequisites come in: a fragment's own
# `all: X`, read before `all: deps ...`, once built X first, and under -j a
# prerequisite listed first is not built first anyway.  So the check is a
# makefile, $(DEPS_STAMP), which make remakes before it builds any goal
# (GNU make: "How Makefiles Are Remade"); it is written once every package
# is there, and checked again when scripts/install-deps changes.
# `make deps`, `make demo`, `make check` and `make bench-http` (wrk and
# nginx) install what is missing (as root: apt-get; otherwise they print
# the command and stop); any other goal
# (plain `make` too) never runs apt-get: it prints the command and goes on.
DEPS_STAMP := $(B)/.deps-ok.mk
# INSTALL_DEPS: tests/build/build-deps.sh puts a stub here.
INSTALL_DEPS ?= scripts/install-deps
DEPS_INSTALL_GOALS := deps demo check bench-http
ifneq ($(filter $(DEPS_INSTALL_GOALS),$(MAKECMDGOALS)),)
DEPS_INSTALL := 1
include $(DEPS_STAMP)
else ifneq ($(filter-out clean module-clean,$(or $(MAKECMDGOALS),all)),)
DEPS_INSTALL := 0
-include $(DEPS_STAMP)
endif

$(DEPS_STAMP): $(INSTALL_DEPS)
	@mkdir -p $(dir $@)
	$(Q)RF_NO_INSTALL=$(if $(filter 1,$(DEPS_INSTALL)),0,1) $(INSTALL_DEPS) || { \
		test "$(DEPS_INSTALL)" = 1 || echo "make: going on without them" \
			"(\`make deps\` installs them)" >&2; \
		exit 1; }
	$(Q)echo '# scripts/install-deps found every package' >$@

# Install what is missing (apt-get as root; prints the command otherwise).
deps:
	$(Q)scripts/install-deps

# One rule set per build of the library and the unit tests: native, ASan +
# UBSan, TSan, aarch64.  $(call LIB_VARIANT,DIR,CC,CFLAGS,ARCH,TAG,TEST_LDFLAGS):
# DIR/obj/ the objects, DIR/libringfiber.a, DIR/tests/NAME from
# tests/runtime/NAME.c;
# CFLAGS has the variant's -I for its arch and its sanitizer; TAG marks the
# quiet output (CC-A64).
define LIB_VARIANT
$(1)/obj/%.c.o: userspace/src/%.c $$(LIB_HDRS)
	@mkdir -p $$(dir $$@)
	$$(quiet) CC$(5) $$@
	$$(Q)$(2) $(3) $$(LIB_CFLAGS) $$(CFLAGS) -c -o $$@ $$<

$(1)/obj/%.S.o: userspace/src/%.S
	@mkdir -p $$(dir $$@)
	$$(quiet) AS$(5) $$@
	$$(Q)$(2) $$(LIB_CFLAGS) -c -o $$@ $$<

$(1)/libringfiber.a: $$(call LIB_OBJS_IN,$(1),$(4))
	$$(quiet) AR$(5) $$@
	$$(Q)rm -f $$@ && $$(AR) rcs $$@ $$^

$(1)/tests/%: tests/runtime/%.c $$(TEST_HDRS) $(1)/libringfiber.a
	@mkdir -p $$(dir $$@)
	$$(quiet) CC$(5) $$@
	$$(Q)$(2) $(3) $$(TEST_CFLAGS) $$(CFLAGS) $(6) -o $$@ $$< $(1)/libringfiber.a $$(URING_LIBS) -lpthread
endef

$(eval $(call LIB_VARIANT,$(B),$$(CC),$$(NATIVE_CFLAGS),$(ARCH),,))
$(eval $(call LIB_VARIANT,$(B)/asan,$$(CC),$$(NATIVE_CFLAGS) $$(ASAN_FLAGS),$(ARCH),,))
$(eval $(call LIB_VARIANT,$(B)/tsan,$$(CC),$$(NATIVE_CFLAGS) $$(TSAN_FLAGS),$(ARCH),,))
$(eval $(call LIB_VARIANT,$(B)/aarch64,$$(AARCH64_CC),$$(A64_CFLAGS),aarch64,-A64,-static))
# preempt.c sets the rounding mode with fesetround(), which is in libm.
$(B)/tests/preempt $(B)/asan/tests/preempt $(B)/tsan/tests/preempt: URING_LIBS += -lm

$(B)/aarch64-dyn/tests/%: tests/runtime/%.c $(TEST_HDRS) $(B)/aarch64/libringfiber.a
	@mkdir -p $(dir $@)
	$(quiet) CC-A64 $@
	$(Q)$(AARCH64_CC) $(A64_CFLAGS) $(TEST_CFLAGS) $(CFLAGS) -o $@ $< $(B)/aarch64/libringfiber.a \
		-Wl,-Bstatic $(URING_LIBS) -Wl,-Bdynamic -lm -lpthread

$(SHARED_LIB): $(LIB_OBJS) userspace/src/ringfiber.map
	$(quiet) LD $@
	$(Q)$(CC) -shared $(LDFLAGS) -Wl,-soname,$(SONAME) \
		-Wl,--version-script=userspace/src/ringfiber.map \
		-o $@ $(LIB_OBJS) $(URING_LIBS)
	$(Q)ln -sf $(notdir $@) $(B)/$(SONAME)
	$(Q)ln -sf $(SONAME) $(B)/libringfiber.so

# The module's tests need no library: their own rule, which wins over the
# variants' $(B)/tests/% (a shorter stem).
$(B)/tests/rfwake/%: tests/rfwake/%.c $(wildcard tests/rfwake/*.h) $(TEST_HDRS) \
		module/include/uapi/linux/rfwake.h
	@mkdir -p $(dir $@)
	$(quiet) CC $@
	$(Q)$(CC) $(NATIVE_CFLAGS) $(TEST_CFLAGS) $(CFLAGS) -o $@ $< $(URING_LIBS) -lpthread

# ------------------------------------------------------------------ checks
TEST_TIMEOUT ?= 300
PROVE := prove --timer -e 'scripts/run-test $(TEST_TIMEOUT)'

VM_TEST_TIMEOUT ?= 900

check: all module
	$(Q)$(MAKE) check-unit check-asan check-tsan check-aarch64 check-fuzz check-trace module-check kunit check-vm

check-unit: all
	@echo "== tests ($(ARCH))"
	$(Q)RF_BUILD=$(B) $(PROVE) $(TEST_BINS) $(TEST_SCRIPTS)

# The tracing tools against workloads with known counts (root, BTF and
# tracepoints needed; each test skips with the reason where they are missing).
check-trace: all
	@echo "== tracing tools (bpftrace scripts, schedcmp) against known workloads"
	$(Q)RF_BUILD=$(B) $(PROVE) $(sort $(wildcard tests/trace/*.sh))

# In qemu booting each of Debian's kernels of VM_KERNELS with its own build
# of rfwake loaded (TCG where KVM is missing): the module's ABI tests and
# fuzz run, and the runtime's tests with the rfwake back-end and with the
# default one (scripts/vm-init/suite).  Every kernel runs, then the first
# failure fails the target.
check-vm: all $(VM_MODULES)
	$(Q)rc=0; for k in $(VM_KERNELS); do \
		echo "== rfwake and the runtime's tests in a VM (scripts/vm), kernel $$k"; \
		RF_BUILD=$(B) RF_VM_MODULE=$(B)/module-$$k/rfwake.ko \
			prove --timer -e 'scripts/run-test $(VM_TEST_TIMEOUT)' tests/rfwake/vm.sh || rc=1; \
	done; exit $$rc

# The same suite on the debug kernel (scripts/vm-debug.config: KASAN,
# lockdep, DEBUG_OBJECTS, hung tasks; scripts/vm --debug-kernel), built once
# per machine by scripts/debug-kernel into ~/.cache/ringfiber first, so that
# the time limit is the suite's.  Not in `make check`: the kernel's build and
# the suite under TCG take too long for CI (Documentation/rfwake.md, Tests).
VM_DEBUG_TEST_TIMEOUT ?= 3600
.PHONY: check-vm-debug
check-vm-debug: all
	@echo "== rfwake and the runtime's tests in a VM on the debug kernel (scripts/vm --debug-kernel)"
	$(Q)scripts/debug-kernel >/dev/null
	$(Q)RF_BUILD=$(B) prove --timer -e 'scripts/run-test $(VM_DEBUG_TEST_TIMEOUT)' \
		tests/rfwake/vm-debug.sh

check-asan: $(ASAN_BINS)
	@echo "== unit tests under AddressSanitizer + UndefinedBehaviorSanitizer"
	$(Q)RF_BUILD=$(B) RF_SANITIZED=1 ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
		UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 $(PROVE) $(ASAN_BINS)

check-tsan: $(TSAN_BINS)
	@echo "== concurrency tests under ThreadSanitizer"
	$(Q)RF_BUILD=$(B) RF_SANITIZED=1 TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
		$(PROVE) $(TSAN_BINS)

check-aarch64: $(AARCH64_BINS) $(AARCH64_DYN_BINS)
	@echo "== aarch64 switch/scheduler tests under qemu-user"
	$(Q)RF_BUILD=$(B) $(PROVE) -e 'scripts/run-test $(TEST_TIMEOUT) qemu-aarch64' $(AARCH64_BINS)
	@echo "== aarch64 preemption (libc dynamic) under qemu-user"
	$(Q)RF_BUILD=$(B) $(PROVE) -e 'scripts/run-test $(TEST_TIMEOUT) $(QEMU_A64_DYN)' \
		$(AARCH64_DYN_BINS)
	@echo "== the same with 2048-bit SVE vectors (signal frames with an EXTRA_MAGIC record)"
	$(Q)RF_BUILD=$(B) $(PROVE) -e 'scripts/run-test $(TEST_TIMEOUT) $(QEMU_A64_SVE2048)' \
		$(AARCH64_DYN_BINS)

# ------------------------------------------------------------- kernel module
# KDIR: given, else the running kernel's build tree, else Debian's
# linux-headers-amd64 (installed by scripts/install-deps).
KDIR ?= $(shell scripts/kdir)
MODULE_SRCS := $(filter-out %.mod.c,$(wildcard module/*.c module/*.h \
	module/include/uapi/linux/*.h)) \
	module/Kbuild

module: $(MODULE_KO)

$(MODULE_KO): $(MODULE_SRCS)
	$(Q)test -n "$(KDIR)" || { echo "module: no kernel build tree (set KDIR)"; exit 1; }
	$(Q)$(MAKE) -C $(KDIR) M=$(CURDIR)/module $(if $(V),V=$(V)) modules

# One rfwake.ko per kernel of ALL_VM_KERNELS (defined at the top: check-vm's
# prerequisites are expanded where make reads them).
modules: $(foreach k,$(ALL_VM_KERNELS),$(B)/module-$(k)/rfwake.ko)

$(B)/module-%/rfwake.ko: $(MODULE_SRCS)
	$(Q)kdir=$$(scripts/kdir $*); test -n "$$kdir" || { \
		echo "module: no build tree for kernel $* (scripts/kdir $*; scripts/install-deps)"; \
		exit 1; }; \
	mkdir -p $(@D) && (cd module && cp -p --parents $(MODULE_SRCS:module/%=%) $(abspath $(@D))/) && \
	$(MAKE) -C $$kdir M=$(abspath $(@D)) $(if $(V),V=$(V)) modules

# checkpatch.pl --strict and kernel-doc on the module's sources.
module-check:
	@echo "== rfwake: checkpatch --strict, kernel-doc"
	$(Q)RF_BUILD=$(B) prove --timer -e sh scripts/module-check

# The core's KUnit suite on each kernel of KUNIT_KERNELS, every kernel even
# after a failure: UML built from Debian's linux-source-6.1 and
# linux-source-6.12, and 6.12 PREEMPT_RT, an x86_64 kernel under qemu (UML
# cannot be RT; its cold build is the longest of the three: about 16
# minutes on 2 vCPUs, Documentation/rfwake.md "Tests").
KUNIT_KERNELS ?= 6.1 6.12 6.12-rt
kunit:
	$(Q)rc=0; for k in $(KUNIT_KERNELS); do \
		case $$k in *-rt) how="x86_64, qemu" ;; *) how=UML ;; esac; \
		echo "== rfwake: KUnit ($$how, $$k)"; \
		RF_BUILD=$(B) scripts/kunit --kernel=$$k || rc=1; \
	done; exit $$rc

# 6.12 PREEMPT_RT alone.
kunit-rt:
	$(Q)$(MAKE) kunit KUNIT_KERNELS=6.12-rt

module-clean:
	$(Q)test -z "$(KDIR)" || $(MAKE) -C $(KDIR) M=$(CURDIR)/module clean

clean: module-clean
	$(quiet) CLEAN $(B)
	$(Q)rm -rf $(B)

# ------------------------------------------------------------ man pages
# Section 3, one page per function of ringfiber.h (every symbol of the map)
# and one per documented struct, from the header's kernel-doc comments by
# the kernel's own scripts/kernel-doc -man, taken from Debian's
# linux-source (scripts/install-deps).  kernel-doc writes the kernel's
# section 9 and manual names in .TH: the sed puts ours there, and every
# page gets a SEE ALSO ringfiber(7); a struct's NAME line names it alone
# (rf_buf \- ...), as mandb's parser, lexgrog, wants it for whatis and
# apropos.  Sections 1 and 7 are written by hand
# (man/).  -Werror: a function or member left undescribed fails the build.
KDOC_TARBALL ?= $(lastword $(sort $(wildcard /usr/src/linux-source-*.tar.xz)))
KERNEL_DOC := $(B)/man/kernel-doc
MAN_FUNCS := $(shell sed -n 's/^[[:space:]]*\(rf_[a-z0-9_]*\);$$/\1/p' userspace/src/ringfiber.map)
# The documented structs users fill in or read; rf_waitq is private.
MAN_STRUCTS := $(filter-out rf_waitq,$(shell sed -n \
	's/^ \* struct \(rf_[a-z0-9_]*\) - .*/\1/p; s/^\/\*\* struct \(rf_[a-z0-9_]*\) - .*/\1/p' \
	userspace/include/ringfiber.h))
MAN3_PAGES := $(patsubst %,$(B)/man/man3/%.3,$(MAN_FUNCS) $(MAN_STRUCTS))
MAN1_PAGES := $(wildcard man/*.1)
MAN7_PAGES := $(wildcard man/*.7)
# The pages' date: the header's last commit (reproducible), else today.
MAN_DATE := $(shell git log -1 --format=%cI -- userspace/include/ringfiber.h 2>/dev/null)

.PHONY: man
man: $(MAN3_PAGES)

$(KERNEL_DOC): $(KDOC_TARBALL)
	$(Q)test -n "$(KDOC_TARBALL)" || { echo "man: no /usr/src/linux-source-*.tar.xz" \
		"(scripts/install-deps installs linux-source-6.1)" >&2; exit 1; }
	@mkdir -p $(dir $@)
	$(quiet) UNTAR $@
	$(Q)tar -xJOf $(KDOC_TARBALL) \
		$(basename $(basename $(notdir $(KDOC_TARBALL))))/scripts/kernel-doc >$@.tmp
	$(Q)mv $@.tmp $@

$(B)/man/man3/%.3: userspace/include/ringfiber.h $(KERNEL_DOC)
	@mkdir -p $(dir $@)
	$(quiet) KDOC $@
	$(Q)$(if $(MAN_DATE),KBUILD_BUILD_TIMESTAMP=$(MAN_DATE)) perl $(KERNEL_DOC) -man -Werror \
		-function $* $< >$@.tmp
	$(Q)grep -q '^\.TH' $@.tmp || { echo "$@: kernel-doc documents no $*" >&2; exit 1; }
	$(Q)sed -i 's/^\.TH "[^"]*" 9 "\(struct \)\{0,1\}[^"]*" "\([^"]*\)" .*/.TH "$*" 3 "\2"'` \
		`' "ringfiber $(VERSION)" "ringfiber Manual"/' $@.tmp
	$(Q)printf '.SH "SEE ALSO"\n.BR ringfiber (7)\n' >>$@.tmp
	$(Q)sed -i '/^\.SH NAME$$/{n;s/^struct \($*\) \\- /\1 \\- /}' $@.tmp
	$(Q)mv $@.tmp $@

# ------------------------------------------------------- install, uninstall
# GNU's directory variables (DESTDIR for staging, as packaging does):
#   make install PREFIX=/usr LIBDIR=/usr/lib/x86_64-linux-gnu
# The servers and load clients get a ringfiber- prefix in BINDIR (their
# names are generic); schedcmp (when built: it needs the kernel's BTF)
# keeps its own.  The bpftrace scripts go to DATADIR/ringfiber/bpftrace.
# make demo's driver finds its programs in a build directory and its
# helpers beside itself: LIBEXECDIR/ringfiber holds the drivers and, in
# build/, the programs they run, laid out as in the tree's build/;
# BINDIR/ringfiber-demo runs it with that directory.
PREFIX ?= /usr/local
EXEC_PREFIX ?= $(PREFIX)
BINDIR ?= $(EXEC_PREFIX)/bin
LIBDIR ?= $(EXEC_PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
DATAROOTDIR ?= $(PREFIX)/share
DATADIR ?= $(DATAROOTDIR)
MANDIR ?= $(DATAROOTDIR)/man
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
BPFTRACEDIR ?= $(DATADIR)/ringfiber/bpftrace
LIBEXECDIR ?= $(EXEC_PREFIX)/libexec
DEMO_DIR := $(LIBEXECDIR)/ringfiber
INSTALL ?= install

# build path:installed name
INSTALL_PROGRAMS := servers/httpserver:ringfiber-httpserver \
	servers/fibserver:ringfiber-fibserver servers/echo-server:ringfiber-echo-server \
	bench/echo-client:ringfiber-echo-client bench/hogclient:ringfiber-hogclient \
	$(if $(filter $(SCHEDCMP),$(PROGRAMS)),trace/schedcmp:schedcmp)
INSTALL_BIN_NAMES := $(foreach p,$(INSTALL_PROGRAMS),$(lastword $(subst :, ,$(p)))) \
	ringfiber-demo
DEMO_SCRIPTS := bench/demo bench/bench-http bench/idle-conns bench/rfbench.py
DEMO_PROGRAMS := servers/httpserver servers/fibserver bench/rf-tasks bench/hogclient \
	bench/http-floor $(if $(filter $(SCHEDCMP),$(PROGRAMS)),trace/schedcmp)
DEMO_WRAPPER := $(B)/ringfiber-demo
INSTALL_HEADERS := userspace/include/ringfiber.h userspace/include/ringfiber-trace.h
BPFTRACE_SCRIPTS := $(sort $(wildcard trace/*.bt))
# What runs them (rfbt: one PID, tracefs, the target's exit) and folds
# fiberoffcpu.bt's stacks (stackfold), beside them: rfbt finds the scripts
# by name in its own directory.
BPFTRACE_TOOLS := trace/rfbt trace/stackfold
# The man pages of programs that are not installed stay out.
INSTALL_MAN1 := $(filter $(patsubst %,man/%.1,$(INSTALL_BIN_NAMES)),$(MAN1_PAGES))
PC_FILE := $(B)/ringfiber.pc

# Every path install writes, DESTDIR aside: uninstall removes these.
INSTALLED_FILES := $(LIBDIR)/$(notdir $(SHARED_LIB)) $(LIBDIR)/$(SONAME) \
	$(LIBDIR)/libringfiber.so $(LIBDIR)/libringfiber.a $(PKGCONFIGDIR)/ringfiber.pc \
	$(addprefix $(INCLUDEDIR)/,$(notdir $(INSTALL_HEADERS))) \
	$(addprefix $(BINDIR)/,$(INSTALL_BIN_NAMES)) \
	$(addprefix $(DEMO_DIR)/,$(notdir $(DEMO_SCRIPTS))) \
	$(addprefix $(DEMO_DIR)/build/,$(DEMO_PROGRAMS)) \
	$(addprefix $(BPFTRACEDIR)/,$(notdir $(BPFTRACE_SCRIPTS) $(BPFTRACE_TOOLS))) \
	$(addprefix $(MANDIR)/man3/,$(notdir $(MAN3_PAGES))) \
	$(addprefix $(MANDIR)/man1/,$(notdir $(INSTALL_MAN1))) \
	$(addprefix $(MANDIR)/man7/,$(notdir $(MAN7_PAGES)))

.PHONY: install uninstall FORCE

# Written again when a directory or the version changes (FORCE; replaced
# only when it differs).
$(PC_FILE): userspace/ringfiber.pc.in FORCE
	@mkdir -p $(dir $@)
	$(Q)sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' \
		-e 's|@INCLUDEDIR@|$(INCLUDEDIR)|' -e 's|@VERSION@|$(VERSION)|' $< >$@.tmp
	$(Q)if cmp -s $@.tmp $@; then rm $@.tmp; else mv $@.tmp $@; fi

# The wrapper names DEMO_DIR: written again when it changes.
$(DEMO_WRAPPER): FORCE
	@mkdir -p $(dir $@)
	$(Q)printf '%s\n' '#!/bin/sh' \
		'# ringfiber-demo - make demo with the installed programs (ringfiber-demo(1)).' \
		'exec $(DEMO_DIR)/demo $(DEMO_DIR)/build "$$@"' >$@.tmp
	$(Q)if cmp -s $@.tmp $@; then rm $@.tmp; else mv $@.tmp $@; fi

# What install installs, built (debian/rules builds it in its build step).
.PHONY: installable
installable: lib $(addprefix $(B)/,$(foreach p,$(INSTALL_PROGRAMS),$(firstword $(subst :, ,$(p))))) \
		$(addprefix $(B)/,$(DEMO_PROGRAMS)) $(DEMO_WRAPPER) man $(PC_FILE)

install: installable
	$(quiet) INSTALL "$(DESTDIR)$(PREFIX)"
	$(Q)$(INSTALL) -d "$(DESTDIR)$(LIBDIR)" "$(DESTDIR)$(PKGCONFIGDIR)" \
		"$(DESTDIR)$(INCLUDEDIR)" "$(DESTDIR)$(BINDIR)" "$(DESTDIR)$(BPFTRACEDIR)" \
		"$(DESTDIR)$(MANDIR)/man1" "$(DESTDIR)$(MANDIR)/man3" "$(DESTDIR)$(MANDIR)/man7"
	$(Q)$(INSTALL) -m 644 $(SHARED_LIB) $(STATIC_LIB) "$(DESTDIR)$(LIBDIR)/"
	$(Q)ln -sf $(notdir $(SHARED_LIB)) "$(DESTDIR)$(LIBDIR)/$(SONAME)"
	$(Q)ln -sf $(SONAME) "$(DESTDIR)$(LIBDIR)/libringfiber.so"
	$(Q)$(INSTALL) -m 644 $(PC_FILE) "$(DESTDIR)$(PKGCONFIGDIR)/"
	$(Q)$(INSTALL) -m 644 $(INSTALL_HEADERS) "$(DESTDIR)$(INCLUDEDIR)/"
	$(Q)for p in $(INSTALL_PROGRAMS); do \
		$(INSTALL) -m 755 "$(B)/$${p%%:*}" "$(DESTDIR)$(BINDIR)/$${p#*:}" || exit; \
	done
	$(Q)$(INSTALL) -m 755 $(DEMO_WRAPPER) "$(DESTDIR)$(BINDIR)/"
	$(Q)$(INSTALL) -d "$(DESTDIR)$(DEMO_DIR)" \
		$(addprefix "$(DESTDIR)$(DEMO_DIR)/build/,$(addsuffix ",$(sort $(dir $(DEMO_PROGRAMS)))))
	$(Q)$(INSTALL) -m 755 $(filter-out %.py,$(DEMO_SCRIPTS)) "$(DESTDIR)$(DEMO_DIR)/"
	$(Q)$(INSTALL) -m 644 $(filter %.py,$(DEMO_SCRIPTS)) "$(DESTDIR)$(DEMO_DIR)/"
	$(Q)for p in $(DEMO_PROGRAMS); do \
		$(INSTALL) -m 755 "$(B)/$$p" "$(DESTDIR)$(DEMO_DIR)/build/$$p" || exit; \
	done
	$(Q)$(INSTALL) -m 755 $(BPFTRACE_SCRIPTS) $(BPFTRACE_TOOLS) "$(DESTDIR)$(BPFTRACEDIR)/"
	$(Q)$(INSTALL) -m 644 $(MAN3_PAGES) "$(DESTDIR)$(MANDIR)/man3/"
	$(Q)$(if $(INSTALL_MAN1),$(INSTALL) -m 644 $(INSTALL_MAN1) "$(DESTDIR)$(MANDIR)/man1/")
	$(Q)$(if $(MAN7_PAGES),$(INSTALL) -m 644 $(MAN7_PAGES) "$(DESTDIR)$(MANDIR)/man7/")

# What install wrote, and the directories that are ringfiber's own; the
# shared ones (bin, lib, man/man3...) stay, as GNU's standards ask.
uninstall:
	$(quiet) UNINST "$(DESTDIR)$(PREFIX)"
	$(Q)rm -f $(addprefix "$(DESTDIR),$(addsuffix ",$(INSTALLED_FILES)))
	$(Q)rmdir "$(DESTDIR)$(BPFTRACEDIR)" 2>/dev/null || true
	$(Q)rmdir "$(DESTDIR)$(DATADIR)/ringfiber" 2>/dev/null || true
	$(Q)for d in $(sort $(dir $(DEMO_PROGRAMS))); do \
		rmdir "$(DESTDIR)$(DEMO_DIR)/build/$$d" 2>/dev/null || true; \
	done
	$(Q)rmdir "$(DESTDIR)$(DEMO_DIR)/build" "$(DESTDIR)$(DEMO_DIR)" 2>/dev/null || true

# The man pages' test (tests/build/man.sh) checks what make man wrote.
check-unit: man

# ------------------------------------------------------------------ DKMS
# The module's sources as DKMS wants them (dkms(8)): DKMS_SOURCE_TREE/
# rfwake-VERSION/ holds module/dkms.conf, its version put in, and
# module/'s Kbuild and sources in their layout (include/uapi/linux/).
# Then `dkms add rfwake/VERSION`, `dkms build`, `dkms install`
# (Documentation/development.md, "DKMS").  The rfwake-dkms package
# installs the same tree (debian/rules).
DKMS_SOURCE_TREE ?= /usr/src
DKMS_DIR := $(DKMS_SOURCE_TREE)/rfwake-$(VERSION)

.PHONY: install-dkms uninstall-dkms
install-dkms:
	$(quiet) INSTALL "$(DESTDIR)$(DKMS_DIR)"
	$(Q)$(INSTALL) -d "$(DESTDIR)$(DKMS_DIR)"
	$(Q)cd module && for f in $(MODULE_SRCS:module/%=%); do \
		$(INSTALL) -D -m 644 "$$f" "$(DESTDIR)$(DKMS_DIR)/$$f" || exit; \
	done
	$(Q)sed 's/#MODULE_VERSION#/$(VERSION)/' module/dkms.conf >"$(DESTDIR)$(DKMS_DIR)/dkms.conf"

uninstall-dkms:
	$(quiet) UNINST "$(DESTDIR)$(DKMS_DIR)"
	$(Q)rm -rf "$(DESTDIR)$(DKMS_DIR)"

# ------------------------------------------------------- Debian packages
# make deb: libringfiber0, libringfiber-dev, ringfiber-tools and
# rfwake-dkms (debian/), built by dpkg-buildpackage -us -uc -b in a copy of
# the tree (its files that git tracks or does not ignore) in
# $(B)/deb/ringfiber-VERSION/, so that the .debs, which dpkg-buildpackage
# writes beside the tree it builds, land in $(B)/deb/; then lintian on
# the .changes, which fails on an error.  The packaging tools and the
# Build-Depends: scripts/install-deps --packaging (as root it installs them).
DEB_DIR := $(B)/deb
DEB_TREE := $(DEB_DIR)/ringfiber-$(VERSION)

.PHONY: deb
deb:
	$(Q)scripts/install-deps --packaging
	$(Q)rm -rf $(DEB_DIR) && mkdir -p $(DEB_TREE)
	$(Q)git ls-files -z --cached --others --exclude-standard | \
		tar --null -T - --ignore-failed-read -cf - | tar -C $(DEB_TREE) -xf -
	$(Q)cd $(DEB_TREE) && dpkg-buildpackage -us -uc -b
	$(Q)lintian --fail-on error $(DEB_DIR)/ringfiber_*.changes
	@ls $(DEB_DIR)/*.deb
