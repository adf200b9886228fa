# SPDX-License-Identifier: MIT
# tests/fuzz/build.mk - httpserver's request parser: its unit test and its
# libFuzzer target (included by Makefile).
#
#   make check-fuzz               a short run (FUZZ_CHECK_SECONDS) from the
#                                 seed corpus, in a temporary directory
#   make fuzz [FUZZ_SECONDS=300]  a longer one; the corpus is kept in
#                                 $(B)/fuzz/corpus and grows run after run
#
# A crash leaves its reproducer in $(B)/fuzz/artifacts/ and fails the target.
# libFuzzer is clang's (libclang-rt-14-dev), so the fuzzer is built with
# clang whatever CC is.

HTTP_PARSE_DEPS := $(HTTP_PARSE_SRC) $(HTTP_PARSE_H)

FUZZ_CC ?= clang
FUZZ_BIN := $(B)/fuzz/http-parse-fuzz
FUZZ_FLAGS := -fsanitize=fuzzer $(ASAN_FLAGS)
FUZZ_SECONDS ?= 300
FUZZ_CHECK_SECONDS ?= 20
FUZZ_CORPUS := $(B)/fuzz/corpus
FUZZ_ARTIFACTS := $(B)/fuzz/artifacts

.PHONY: check-fuzz fuzz

# The parser's unit test (tests/servers/http-parse.c) runs with the others.
TEST_BINS += $(B)/tests/http-parse
ASAN_BINS += $(B)/asan/tests/http-parse

# The unit test links the parser instead of the runtime: explicit rules, so
# they win over the Makefile's $(B)/tests/% and $(B)/asan/tests/% patterns.
$(B)/tests/http-parse: tests/servers/http-parse.c tests/lib/tap.h $(HTTP_PARSE_DEPS)
	@mkdir -p $(dir $@)
	$(quiet) CC $@
	$(Q)$(CC) $(NATIVE_CFLAGS) $(TEST_CFLAGS) -Iservers/http $(CFLAGS) -o $@ \
		tests/servers/http-parse.c $(HTTP_PARSE_SRC)

$(B)/asan/tests/http-parse: tests/servers/http-parse.c tests/lib/tap.h $(HTTP_PARSE_DEPS)
	@mkdir -p $(dir $@)
	$(quiet) CC $@
	$(Q)$(CC) $(NATIVE_CFLAGS) $(TEST_CFLAGS) -Iservers/http $(CFLAGS) $(ASAN_FLAGS) \
		-o $@ tests/servers/http-parse.c $(HTTP_PARSE_SRC)

$(FUZZ_BIN): tests/fuzz/http-parse-fuzz.c $(HTTP_PARSE_DEPS)
	@mkdir -p $(dir $@)
	$(quiet) FUZZCC $@
	$(Q)command -v $(FUZZ_CC) >/dev/null || \
		{ echo "$@: $(FUZZ_CC) not found (install clang and libclang-rt-14-dev)"; exit 1; }
	$(Q)$(FUZZ_CC) $(NATIVE_CFLAGS) -Iservers/http $(CFLAGS) $(FUZZ_FLAGS) -o $@ \
		tests/fuzz/http-parse-fuzz.c $(HTTP_PARSE_SRC)

check-fuzz: $(FUZZ_BIN)
	@echo "== http-parse under libFuzzer, $(FUZZ_CHECK_SECONDS) s from the seed corpus"
	$(Q)tests/fuzz/run $(FUZZ_BIN) $(FUZZ_CHECK_SECONDS) "" $(FUZZ_ARTIFACTS)

fuzz: $(FUZZ_BIN)
	@echo "== http-parse under libFuzzer, $(FUZZ_SECONDS) s, corpus $(FUZZ_CORPUS)"
	$(Q)tests/fuzz/run $(FUZZ_BIN) $(FUZZ_SECONDS) $(FUZZ_CORPUS) $(FUZZ_ARTIFACTS)
