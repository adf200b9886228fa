# SPDX-License-Identifier: MIT
# userspace/examples/http/build.mk - httpserver (included by Makefile).
#
# The server links the model switch (serve.o) and the request parser; the
# parser is also built into its unit test and its fuzzer (tests/fuzz/build.mk).

HTTP_PARSE_SRC := userspace/examples/http/http-parse.c
HTTPSERVER := $(B)/examples/httpserver
EXAMPLES += $(HTTPSERVER)

$(HTTPSERVER): userspace/examples/http/httpserver.c $(HTTP_PARSE_SRC) \
		userspace/examples/http/http-parse.h userspace/examples/serve/serve.h \
		userspace/examples/serve/serve-util.h userspace/examples/fibserver/fib-common.h \
		$(SERVE_OBJ) $(STATIC_LIB)
	@mkdir -p $(dir $@)
	$(quiet) CC $@
	$(Q)$(CC) $(NATIVE_CFLAGS) -Iuserspace/examples/serve -Iuserspace/examples/http \
		-Iuserspace/examples/fibserver \
		$(CFLAGS) -o $@ userspace/examples/http/httpserver.c $(HTTP_PARSE_SRC) \
		$(SERVE_OBJ) $(PROGRAM_LIBS) -lpthread

# ------------------------------------------- the servers under ASan + UBSan
# The three servers built with AddressSanitizer (LeakSanitizer included) and
# UBSan over the sanitized runtime, and their tests run against them: a
# leak, or any error report, makes a server exit non-zero, and the tests
# require exit 0 after SIGTERM.  The clients (echo-client, hogclient) stay
# the plain build's.
ASAN_EXAMPLES_DIR := $(B)/asan/examples
ASAN_SERVERS := $(ASAN_EXAMPLES_DIR)/httpserver $(ASAN_EXAMPLES_DIR)/fibserver \
	$(ASAN_EXAMPLES_DIR)/echo-server
ASAN_SERVE_OBJ := $(ASAN_EXAMPLES_DIR)/serve.o

.PHONY: check-servers-asan

$(ASAN_SERVE_OBJ): userspace/examples/serve/serve.c $(SERVE_H) userspace/include/ringfiber.h
	@mkdir -p $(dir $@)
	$(quiet) CC $@
	$(Q)$(CC) $(EXAMPLE_CFLAGS) $(CFLAGS) $(ASAN_FLAGS) -c -o $@ $<

$(ASAN_EXAMPLES_DIR)/httpserver: userspace/examples/http/httpserver.c $(HTTP_PARSE_SRC) \
		userspace/examples/http/http-parse.h $(SERVE_H) \
		userspace/examples/fibserver/fib-common.h $(ASAN_SERVE_OBJ) $(ASAN_LIB)
	@mkdir -p $(dir $@)
	$(quiet) CC $@
	$(Q)$(CC) $(EXAMPLE_CFLAGS) -Iuserspace/examples/http -Iuserspace/examples/fibserver \
		$(CFLAGS) $(ASAN_FLAGS) -o $@ userspace/examples/http/httpserver.c \
		$(HTTP_PARSE_SRC) $(ASAN_SERVE_OBJ) $(ASAN_LIB) $(URING_LIBS) -lpthread

$(ASAN_EXAMPLES_DIR)/fibserver: userspace/examples/fibserver/fibserver.c \
		userspace/examples/fibserver/fib-common.h $(SERVE_H) $(ASAN_SERVE_OBJ) $(ASAN_LIB)
	@mkdir -p $(dir $@)
	$(quiet) CC $@
	$(Q)$(CC) $(EXAMPLE_CFLAGS) $(CFLAGS) $(ASAN_FLAGS) -o $@ $< $(ASAN_SERVE_OBJ) \
		$(ASAN_LIB) $(URING_LIBS) -lpthread -lm

$(ASAN_EXAMPLES_DIR)/echo-server: userspace/examples/echo/echo-server.c \
		userspace/examples/echo/echo-common.h $(SERVE_H) $(ASAN_SERVE_OBJ) $(ASAN_LIB)
	@mkdir -p $(dir $@)
	$(quiet) CC $@
	$(Q)$(CC) $(EXAMPLE_CFLAGS) $(CFLAGS) $(ASAN_FLAGS) -o $@ $< $(ASAN_SERVE_OBJ) \
		$(ASAN_LIB) $(URING_LIBS) -lpthread -lm

# Part of make check-asan (so of make check): about two minutes here.
check-asan: check-servers-asan

check-servers-asan: all $(ASAN_SERVERS)
	@echo "== the servers under AddressSanitizer + UndefinedBehaviorSanitizer"
	$(Q)RF_BUILD=$(B) RF_SERVERS=$(ASAN_EXAMPLES_DIR) RF_SANITIZED=1 \
		ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
		UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		$(PROVE) tests/httpserver.py tests/fibserver.sh tests/echo.sh
