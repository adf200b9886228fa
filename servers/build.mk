# SPDX-License-Identifier: MIT
# servers/build.mk - httpserver (included by Makefile).
#
# The server links libserve.a (the model switch, the common command line)
# and the request parser; the parser is also built into its unit test and
# its fuzzer (tests/fuzz/build.mk).

HTTP_PARSE_SRC := servers/http/http-parse.c
HTTPSERVER := $(B)/servers/httpserver
EXAMPLES += $(HTTPSERVER)

$(HTTPSERVER): servers/http/httpserver.c $(HTTP_PARSE_SRC) \
		servers/http/http-parse.h $(SERVE_H) $(SERVE_LIB) $(STATIC_LIB)
	@mkdir -p $(dir $@)
	$(quiet) CC $@
	$(Q)$(CC) $(EXAMPLE_CFLAGS) -Iservers/http $(CFLAGS) -o $@ \
		servers/http/httpserver.c $(HTTP_PARSE_SRC) $(SERVE_LIBS)

# ------------------------------------------- the servers under ASan + UBSan
# The three servers built with AddressSanitizer (LeakSanitizer included) and
# UBSan over the sanitized runtime, and their tests run against them: a
# leak, or any error report, makes a server exit non-zero, and the tests
# require exit 0 after SIGTERM.  The clients (echo-client, hogclient) stay
# the plain build's.
ASAN_EXAMPLES_DIR := $(B)/asan/servers
ASAN_SERVERS := $(ASAN_EXAMPLES_DIR)/httpserver $(ASAN_EXAMPLES_DIR)/fibserver \
	$(ASAN_EXAMPLES_DIR)/echo-server
ASAN_SERVE_LIB := $(ASAN_EXAMPLES_DIR)/libserve.a
ASAN_SERVE_LIBS := $(ASAN_SERVE_LIB) $(ASAN_LIB) $(URING_LIBS) -lpthread -lm

.PHONY: check-servers-asan

$(ASAN_EXAMPLES_DIR)/obj/%.o: servers/%.c $(SERVE_H) userspace/include/ringfiber.h
	@mkdir -p $(dir $@)
	$(quiet) CC $@
	$(Q)$(CC) $(EXAMPLE_CFLAGS) $(CFLAGS) $(ASAN_FLAGS) -c -o $@ $<

$(ASAN_SERVE_LIB): $(patsubst servers/%.c,$(ASAN_EXAMPLES_DIR)/obj/%.o,$(SERVE_SRCS))
	$(quiet) AR $@
	$(Q)rm -f $@ && $(AR) rcs $@ $^

$(ASAN_EXAMPLES_DIR)/httpserver: servers/http/httpserver.c $(HTTP_PARSE_SRC) \
		servers/http/http-parse.h $(SERVE_H) $(ASAN_SERVE_LIB) $(ASAN_LIB)
	@mkdir -p $(dir $@)
	$(quiet) CC $@
	$(Q)$(CC) $(EXAMPLE_CFLAGS) -Iservers/http $(CFLAGS) $(ASAN_FLAGS) -o $@ \
		servers/http/httpserver.c $(HTTP_PARSE_SRC) $(ASAN_SERVE_LIBS)

$(ASAN_EXAMPLES_DIR)/fibserver: servers/fib/fibserver.c $(SERVE_H) \
		$(ASAN_SERVE_LIB) $(ASAN_LIB)
	@mkdir -p $(dir $@)
	$(quiet) CC $@
	$(Q)$(CC) $(EXAMPLE_CFLAGS) $(CFLAGS) $(ASAN_FLAGS) -o $@ $< $(ASAN_SERVE_LIBS)

$(ASAN_EXAMPLES_DIR)/echo-server: servers/echo/echo-server.c $(SERVE_H) \
		$(ASAN_SERVE_LIB) $(ASAN_LIB)
	@mkdir -p $(dir $@)
	$(quiet) CC $@
	$(Q)$(CC) $(EXAMPLE_CFLAGS) $(CFLAGS) $(ASAN_FLAGS) -o $@ $< $(ASAN_SERVE_LIBS)

# Part of make check-asan (so of make check): about two minutes here.
check-asan: check-servers-asan

check-servers-asan: all $(ASAN_SERVERS)
	@echo "== the servers under AddressSanitizer + UndefinedBehaviorSanitizer"
	$(Q)RF_BUILD=$(B) RF_SERVERS=$(ASAN_EXAMPLES_DIR) RF_SANITIZED=1 \
		ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
		UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		$(PROVE) tests/httpserver.py tests/fibserver.sh tests/echo.sh
