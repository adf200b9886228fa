# SPDX-License-Identifier: MIT
# tests/trace/build.mk - the workloads the tracing tests run (included by Makefile).
#
# build/tests/trace/workload links the runtime statically, so the runtime's
# USDT probes are in the workload's own executable: a tracer attaches to it
# (or to -p PID) without naming the library.

TRACE_WORKLOAD := $(B)/tests/trace/workload
PROGRAMS += $(TRACE_WORKLOAD)

$(TRACE_WORKLOAD): tests/trace/workload.c userspace/include/ringfiber.h $(STATIC_LIB)
	@mkdir -p $(dir $@)
	$(quiet) CC $@
	$(Q)$(CC) $(NATIVE_CFLAGS) $(CFLAGS) -o $@ $< $(PROGRAM_LIBS) -lpthread
