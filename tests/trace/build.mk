# SPDX-License-Identifier: MIT
# tests/trace/build.mk - the workloads the tracing tests run (included by Makefile).
#
# build/tests/trace/workload links the runtime statically, so the runtime's
# USDT probes are in the workload's own executable: a tracer attaches to it
# (or to -p PID) without naming the library.  It takes libserve.a's plain
# helpers (strict numbers, the usage error, the clock) as the clients do.

TRACE_WORKLOAD := $(B)/tests/trace/workload
PROGRAMS += $(TRACE_WORKLOAD)

$(TRACE_WORKLOAD): tests/trace/workload.c userspace/include/ringfiber.h $(SERVE_H) \
		$(SERVE_LIB) $(STATIC_LIB)
	@mkdir -p $(dir $@)
	$(quiet) CC $@
	$(Q)$(CC) $(SERVE_CFLAGS) $(CFLAGS) -o $@ $< $(SERVE_LIBS)
