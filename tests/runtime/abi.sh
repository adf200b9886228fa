#!/bin/bash
# SPDX-License-Identifier: MIT
#
# abi.sh - libringfiber.so exports exactly the functions ringfiber.h declares,
# each with a symbol version, and nothing internal (rf__*, liburing's).
set -u
# shellcheck source=tests/lib/tap.bash
. "$(dirname "$0")/../lib/tap.bash"
B=${RF_BUILD:-build}
lib="$B/libringfiber.so"
header=userspace/include/ringfiber.h

if ! command -v nm >/dev/null; then
	tap_skip_all "nm (binutils) not installed"
fi
tap_plan 4

declared=$(grep -oE '\brf_[a-z0-9_]+\(' "$header" | tr -d '(' | sort -u)
exported=$(nm -D --defined-only "$lib" | awk '$2 == "T" { print $3 }' | sort -u)

[ -n "$declared" ]
tap_ok $? "the header declares functions ($(echo "$declared" | wc -l))"

missing=$(comm -23 <(echo "$declared") <(echo "$exported" | sed 's/@.*//' | sort -u))
[ -z "$missing" ]
tap_ok $? "every declared function is exported${missing:+ (missing: $(echo $missing))}"

extra=$(comm -13 <(echo "$declared") <(echo "$exported" | sed 's/@.*//' | sort -u))
[ -z "$extra" ]
tap_ok $? "nothing else is exported${extra:+ (extra: $(echo $extra))}"

unversioned=$(echo "$exported" | grep -v '@@RINGFIBER_' || true)
[ -z "$unversioned" ]
tap_ok $? "every export carries a RINGFIBER_ version${unversioned:+ ($unversioned)}"
tap_done
