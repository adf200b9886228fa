# SPDX-License-Identifier: MIT
# trace/build.mk - schedcmp: its BPF program and loader (included by Makefile).
#
# The libbpf-bootstrap pipeline, one name throughout:
#
#   running kernel's BTF --bpftool--> $(B)/trace/vmlinux.h
#   trace/schedcmp.bpf.c --clang -target bpf--> $(B)/trace/schedcmp.bpf.o
#   schedcmp.bpf.o --bpftool gen skeleton--> $(B)/trace/schedcmp.skel.h
#   trace/schedcmp.c + schedcmp.skel.h --cc -lbpf--> $(B)/trace/schedcmp
#
# vmlinux.h is generated, never committed: CO-RE relocations make the
# object run on other kernels, but the types it is compiled against are
# this kernel's.  Without /sys/kernel/btf/vmlinux there is nothing to
# generate it from, and schedcmp is left out of `make all` (its tests say
# why they skip).  VMLINUX_BTF=path builds against another kernel's BTF;
# a newer BTF file (a reboot into another kernel) regenerates vmlinux.h.

BPFTOOL ?= bpftool
BPF_CLANG ?= clang
LLVM_STRIP ?= llvm-strip
VMLINUX_BTF ?= /sys/kernel/btf/vmlinux
BPF_ARCH := $(patsubst x86_64,x86,$(patsubst aarch64,arm64,$(ARCH)))

SCHEDCMP := $(B)/trace/schedcmp
# -target bpf has no system include path of its own; usdt.bpf.h needs
# <asm/errno.h> from the host's (libbpf-bootstrap's CLANG_BPF_SYS_INCLUDES).
# Deferred (=): the shell runs only when a BPF object is compiled.
BPF_SYS_INCLUDES = $(shell $(BPF_CLANG) -v -E - </dev/null 2>&1 | \
	sed -n '/<...> search starts here:/,/End of search list./{ s| \(/.*\)|-idirafter \1|p }')
SCHEDCMP_BPF_CFLAGS = -g -O2 -Wall -target bpf -D__TARGET_ARCH_$(BPF_ARCH) \
	-I$(B)/trace -Itrace -Iuserspace/include $(BPF_SYS_INCLUDES)

ifneq ($(wildcard $(VMLINUX_BTF)),)
PROGRAMS += $(SCHEDCMP)
else
$(info schedcmp: not built: no kernel BTF at $(VMLINUX_BTF))
endif

$(B)/trace/vmlinux.h: $(VMLINUX_BTF)
	@mkdir -p $(dir $@)
	$(quiet) GEN $@
	$(Q)$(BPFTOOL) btf dump file $(VMLINUX_BTF) format c >$@.tmp && mv $@.tmp $@

# DWARF is stripped (llvm-strip -g) as libbpf-tools do: the BTF stays.
$(B)/trace/schedcmp.bpf.o: trace/schedcmp.bpf.c trace/schedcmp.h \
		userspace/include/ringfiber-trace.h $(B)/trace/vmlinux.h
	$(quiet) BPF $@
	$(Q)$(BPF_CLANG) $(SCHEDCMP_BPF_CFLAGS) -c -o $@ $<
	$(Q)$(LLVM_STRIP) -g $@

$(B)/trace/schedcmp.skel.h: $(B)/trace/schedcmp.bpf.o
	$(quiet) SKEL $@
	$(Q)$(BPFTOOL) gen skeleton $< >$@.tmp && mv $@.tmp $@

# The command line's errors come from libserve.a (serve_usage_error()), as
# the servers' and the load clients' do.
$(SCHEDCMP): trace/schedcmp.c trace/schedcmp.h userspace/include/ringfiber-trace.h \
		$(B)/trace/schedcmp.skel.h $(SERVE_H) $(SERVE_LIB)
	@mkdir -p $(dir $@)
	$(quiet) CC $@
	$(Q)$(CC) $(SERVE_CFLAGS) -Itrace -I$(B)/trace $(CFLAGS) -o $@ $< $(SERVE_LIB) \
		-lbpf -lelf -lz -lm
