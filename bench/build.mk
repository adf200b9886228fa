# SPDX-License-Identifier: MIT
# bench/build.mk - the benchmarks' programs and drivers (included by
# Makefile).
#
# rf-bench (make bench): the fiber core's figures, with Boost.Context's
# fcontext switch measured as its peer in the same run.
RF_BENCH := $(B)/bench/rf-bench
PROGRAMS += $(RF_BENCH)

# bench-common.o: their command line, compiled once for both.
BENCH_COMMON_O := $(B)/bench/bench-common.o

$(BENCH_COMMON_O): bench/bench-common.c bench/bench-common.h userspace/include/ringfiber.h
	@mkdir -p $(dir $@)
	$(quiet) CC $@
	$(Q)$(CC) $(NATIVE_CFLAGS) $(CFLAGS) -c -o $@ $<

$(RF_BENCH): bench/rf-bench.c bench/bench-common.h $(BENCH_COMMON_O) $(STATIC_LIB)
	@mkdir -p $(dir $@)
	$(quiet) CC $@
	$(Q)$(CC) $(NATIVE_CFLAGS) $(CFLAGS) -o $@ $< $(BENCH_COMMON_O) $(PROGRAM_LIBS) \
		-lboost_context -lpthread

.PHONY: bench
bench: all
	$(Q)$(RF_BENCH)

# rf-tasks: the seeds' "Key Differences" figures (memory per task, creation,
# switch, how many can exist) for OS threads against fibers.
RF_TASKS := $(B)/bench/rf-tasks
PROGRAMS += $(RF_TASKS)

$(RF_TASKS): bench/rf-tasks.c bench/bench-common.h userspace/include/ringfiber.h \
		$(BENCH_COMMON_O) $(STATIC_LIB)
	@mkdir -p $(dir $@)
	$(quiet) CC $@
	$(Q)$(CC) $(NATIVE_CFLAGS) $(CFLAGS) -o $@ $< $(BENCH_COMMON_O) $(PROGRAM_LIBS) -lpthread

# bench-http: httpserver under each --model against nginx and http-floor, with wrk
# (BENCH_HTTP_ARGS, e.g. --quick).  demo: the seeds' "Key Differences"
# table measured, with a Markdown report and plots under results/
# (DEMO_ARGS, e.g. --quick).
.PHONY: bench-http demo
bench-http: all
	bench/bench-http $(BENCH_HTTP_ARGS) $(B)

demo: all
	bench/demo $(DEMO_ARGS) $(B)

# http-floor: the least an io_uring server does per request (multishot
# receive into provided buffers, a fixed answer): bench-http's reference
# for where the client sets the rate.
HTTP_FLOOR := $(B)/bench/http-floor
PROGRAMS += $(HTTP_FLOOR)

$(HTTP_FLOOR): bench/http-floor.c $(SERVE_H) $(SERVE_LIB)
	@mkdir -p $(dir $@)
	$(quiet) CC $@
	$(Q)$(CC) $(SERVE_CFLAGS) $(CFLAGS) -o $@ $< $(SERVE_LIB) $(URING_LIBS)

# The load clients: echo-client (echo-server's) and hogclient (fibserver's
# CPU-hog experiment).  They link libserve.a for its plain helpers and the
# histogram.
LOAD_CLIENTS := $(B)/bench/echo-client $(B)/bench/hogclient
PROGRAMS += $(LOAD_CLIENTS)

$(LOAD_CLIENTS): $(B)/bench/%: bench/%.c $(SERVE_H) $(SERVE_LIB) $(STATIC_LIB)
	@mkdir -p $(dir $@)
	$(quiet) CC $@
	$(Q)$(CC) $(SERVE_CFLAGS) $(CFLAGS) -o $@ $< $(SERVE_LIBS)
