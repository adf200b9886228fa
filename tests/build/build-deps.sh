#!/bin/bash
# SPDX-License-Identifier: MIT
#
# build-deps.sh - the Makefile checks the packages (scripts/install-deps)
# before it compiles anything, even when a makefile fragment puts its
# program first in `all` (as bench/build.mk once did, so that a
# fresh Debian 12 compiled before installing liburing-dev); make demo and
# make check install, other goals only print the command and go on.
#
# INSTALL_DEPS= replaces scripts/install-deps with a stub that records how it
# was called and reports a package missing: nothing is installed, and no
# root is needed.  Each make runs in its own build directory (B=).
set -u
# shellcheck source=tests/lib/tap.bash
. "$(dirname "$0")/../lib/tap.bash"
# The make check run below must not run this test again (it would, were
# the packages not checked first).
if [ -n "${RF_IN_BUILD_DEPS_TEST:-}" ]; then
	tap_skip_all "run by itself (a make check of tests/build/build-deps.sh)"
fi
export RF_IN_BUILD_DEPS_TEST=1
# Not the flags of a make this test runs under (make check): its own.
unset MAKEFLAGS MFLAGS MAKELEVEL
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT

printf '%s\n' '#!/bin/sh' \
	'echo "RF_NO_INSTALL=${RF_NO_INSTALL:-unset}" >>"$STUB_LOG"' \
	'echo "install-deps (stub): missing: rf-test-package" >&2' \
	'exit 1' >"$tmp/stub"
chmod +x "$tmp/stub"

# The fragment, read before the Makefile: its `all:` comes first.
printf '%s\n' "all: $tmp/first.o" "$tmp/first.o:" \
	"	\$(CC) -c -x c -o \$@ /dev/null" >"$tmp/first.mk"

# mk NAME MAKE-ARGS...: make with the fragment and the stub, B=$tmp/NAME.
mk() {
	local name=$1
	shift
	rm -f "$tmp/first.o"
	STUB_LOG=$tmp/$name.calls timeout 120 make -f "$tmp/first.mk" -f Makefile \
		B="$tmp/$name" INSTALL_DEPS="$tmp/stub" "$@" >"$tmp/$name.out" 2>&1
}

show() {
	tap_diag_file "$tmp/$1.out" 20
}

tap_plan 9

for goal in demo check bench-http; do
	mk "$goal" -j2 "$goal"
	rc=$?
	[ $rc -ne 0 ] && [ "$(cat "$tmp/$goal.calls" 2>/dev/null)" = RF_NO_INSTALL=0 ]
	tap_ok $? "make -j2 $goal: install-deps asked to install (RF_NO_INSTALL=0), make failed (exit $rc)"
	[ ! -e "$tmp/first.o" ] && [ ! -e "$tmp/$goal/obj" ]
	tap_ok $? "make -j2 $goal: nothing compiled before the packages (a fragment's program first in all)" ||
		show "$goal"
done

mk plain "$tmp/first.o"
rc=$?
[ "$(cat "$tmp/plain.calls" 2>/dev/null)" = RF_NO_INSTALL=1 ]
tap_ok $? "plain make: install-deps only checks (RF_NO_INSTALL=1)"
[ $rc -eq 0 ] && [ -e "$tmp/first.o" ] && grep -q 'rf-test-package' "$tmp/plain.out" &&
	grep -q 'going on without them' "$tmp/plain.out"
tap_ok $? "plain make: prints what is missing, says it goes on, and builds (exit $rc)" || show plain

# KDIR= : no Kbuild clean, which would delete the tree's module and objects.
mk clean clean KDIR=
[ ! -e "$tmp/clean.calls" ]
tap_ok $? "make clean: no package check"
tap_done
