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
