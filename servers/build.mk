# SPDX-License-Identifier: MIT
# servers/build.mk - the servers and libserve.a (included by Makefile).
#
# libserve.a is what the servers and the load clients share, compiled once
# (servers/common/: the model switch, the command line, net helpers, the
# clock, the histogram, fib).  Each server is its own main in servers/NAME/
# linked with libserve.a and the runtime.  The rule set is written once and
# instantiated twice: the plain build in $(B)/servers/ and the ASan+UBSan
# build, over the sanitized runtime, in $(B)/asan/servers/.

SERVE_SRCS := $(addprefix servers/common/,serve.c serve-cli.c serve-util.c \
	serve-hist.c fib.c)
# Defined before the other fragments: a rule's prerequisites are expanded
# when it is read.
SERVE_H := $(wildcard servers/common/*.h)
SERVE_CFLAGS := $(NATIVE_CFLAGS) -Iservers/common
SERVE_LIB := $(B)/servers/libserve.a
SERVE_LIBS := $(SERVE_LIB) $(PROGRAM_LIBS) -lpthread -lm
# The request parser is also built into its unit test and its fuzzer
# (tests/fuzz/build.mk).
HTTP_PARSE_SRC := servers/http/http-parse.c
HTTP_PARSE_H := servers/http/http-parse.h
SERVERS := httpserver fibserver echo-server

# $(call SERVERS_VARIANT,DIR,SANITIZER_FLAGS,RUNTIME_LIB): DIR/obj/ the
# objects, DIR/libserve.a, DIR/httpserver, DIR/fibserver, DIR/echo-server.
define SERVERS_VARIANT
$(1)/obj/%.o: servers/%.c $$(SERVE_H) userspace/include/ringfiber.h
	@mkdir -p $$(dir $$@)
	$$(quiet) CC $$@
	$$(Q)$$(CC) $$(SERVE_CFLAGS) $$(CFLAGS) $(2) -c -o $$@ $$<

$(1)/obj/http/httpserver.o $(1)/obj/http/http-parse.o: $$(HTTP_PARSE_H)

$(1)/libserve.a: $$(patsubst servers/%.c,$(1)/obj/%.o,$$(SERVE_SRCS))
	$$(quiet) AR $$@
	$$(Q)rm -f $$@ && $$(AR) rcs $$@ $$^

$(1)/httpserver: $(1)/obj/http/httpserver.o $(1)/obj/http/http-parse.o
$(1)/fibserver: $(1)/obj/fib/fibserver.o
$(1)/echo-server: $(1)/obj/echo/echo-server.o

$$(addprefix $(1)/,$$(SERVERS)): $(1)/libserve.a $(3)
	$$(quiet) LD $$@
	$$(Q)$$(CC) $$(CFLAGS) $(2) -o $$@ $$(filter %.o,$$^) $(1)/libserve.a $(3) \
		$$(URING_LIBS) -lpthread -lm
endef

$(eval $(call SERVERS_VARIANT,$(B)/servers,,$$(STATIC_LIB)))
$(eval $(call SERVERS_VARIANT,$(B)/asan/servers,$$(ASAN_FLAGS),$$(ASAN_LIB)))

PROGRAMS += $(addprefix $(B)/servers/,$(SERVERS))

# ------------------------------------------- the servers under ASan + UBSan
# The three servers built with AddressSanitizer (LeakSanitizer included) and
# UBSan over the sanitized runtime, and their tests run against them: a
# leak, or any error report, makes a server exit non-zero, and the tests
# require exit 0 after SIGTERM.  The clients (echo-client, hogclient) stay
# the plain build's.
.PHONY: check-servers-asan

# Part of make check-asan (so of make check): about three minutes here.
check-asan: check-servers-asan

check-servers-asan: all $(addprefix $(B)/asan/servers/,$(SERVERS))
	@echo "== the servers under AddressSanitizer + UndefinedBehaviorSanitizer"
	$(Q)RF_BUILD=$(B) RF_SERVERS=$(B)/asan/servers RF_SANITIZED=1 \
		ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
		UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		$(PROVE) tests/servers/httpserver.py tests/servers/fibserver.sh tests/servers/echo.sh \
		tests/servers/churn.py

# The issue's million connections opened and closed, on fibers, against
# echo-server and httpserver (tests/servers/churn.py --count; make check
# runs 50,000 each).  Minutes here: not part of make check.
.PHONY: check-soak
check-soak: all
	@echo "== a million connections opened and closed, against each server"
	$(Q)RF_BUILD=$(B) python3 tests/servers/churn.py --count 1000000
