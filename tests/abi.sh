#!/bin/bash
# SPDX-License-Identifier: MIT
#
# abi.sh - libringfiber.so exports exactly the functions ringfiber.h declares,
# each with a symbol version, and nothing internal (rf__*, liburing's).
set -u
B=${RF_BUILD:-build}
lib="$B/libringfiber.so"
header=userspace/include/ringfiber.h

if ! command -v nm >/dev/null; then
	echo "1..0 # SKIP nm (binutils) not installed"
	exit 0
fi
echo "1..4"
n=0 fail=0
check() {
	n=$((n + 1))
	if [ "$1" = 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; fail=1; fi
}

declared=$(grep -oE '\brf_[a-z0-9_]+\(' "$header" | tr -d '(' | sort -u)
exported=$(nm -D --defined-only "$lib" | awk '$2 == "T" { print $3 }' | sort -u)

[ -n "$declared" ]
check $? "the header declares functions ($(echo "$declared" | wc -l))"

missing=$(comm -23 <(echo "$declared") <(echo "$exported" | sed 's/@.*//' | sort -u))
[ -z "$missing" ]
check $? "every declared function is exported${missing:+ (missing: $(echo $missing))}"

extra=$(comm -13 <(echo "$declared") <(echo "$exported" | sed 's/@.*//' | sort -u))
[ -z "$extra" ]
check $? "nothing else is exported${extra:+ (extra: $(echo $extra))}"

unversioned=$(echo "$exported" | grep -v '@@RINGFIBER_' || true)
[ -z "$unversioned" ]
check $? "every export carries a RINGFIBER_ version${unversioned:+ ($unversioned)}"
exit $fail
