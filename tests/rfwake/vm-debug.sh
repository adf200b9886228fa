#!/bin/bash
# SPDX-License-Identifier: MIT
#
# vm-debug.sh - the VM suite of tests/rfwake/vm.sh (scripts/vm-init/suite:
# the module's ABI tests, the runtime's tests with and without the rfwake
# back-end, the kernel log check) on the debug kernel: KASAN, lockdep,
# DEBUG_OBJECTS, hung-task detection (scripts/vm-debug.config), with
# rfwake.ko built against it (scripts/vm --debug-kernel).  `make
# check-vm-debug` runs it after building that kernel, so that the time
# limit here is the suite's alone.
#
# Skips, saying why, where the VM cannot run.  RF_VM_TIMEOUT (seconds,
# default 3300) bounds the VM run; keep it below the runner's limit
# (VM_DEBUG_TEST_TIMEOUT in the Makefile).
set -u
# shellcheck source=tests/lib/tap.bash
. "$(dirname "$0")/../lib/tap.bash"
B=${RF_BUILD:-build}
tarball=${KUNIT_TARBALL:-/usr/src/linux-source-6.1.tar.xz}
limit=${RF_VM_TIMEOUT:-3300}

command -v qemu-system-x86_64 >/dev/null ||
	tap_skip_all "qemu-system-x86_64 not installed (qemu-system-x86)"
command -v busybox >/dev/null || tap_skip_all "busybox not installed (busybox-static)"
command -v cpio >/dev/null || tap_skip_all "cpio not installed"
[ -r "$tarball" ] || tap_skip_all "no $tarball to build the debug kernel from (linux-source-6.1)"

# As vm.sh: scripts/vm's own failures become a Bail out, the stream is kept
# in $B/vm/suite-debug.tap, and the failed checks go to stderr too.
mkdir -p "$B/vm"
scripts/vm --debug-kernel --build "$B" --timeout "$limit" | tee "$B/vm/suite-debug.tap"
rc=${PIPESTATUS[0]}
if [ "$rc" != 0 ]; then
	awk '/^# Subtest: / { label = substr($0, 12) }
	     /^    not ok/ { print "vm-debug.sh: " label ": " substr($0, 5); diag = 1; next }
	     diag && /^    #/ { print "vm-debug.sh:   " substr($0, 5); next }
	     { diag = 0 }
	     /^not ok/ || /^# kernel: / { print "vm-debug.sh: " $0 }' "$B/vm/suite-debug.tap" >&2
fi
case $rc in
0 | 1) exit $rc ;;
124) echo "Bail out! the VM ran past ${limit}s (see $B/vm/console.log)" ;;
125) echo "Bail out! the VM died without an exit status (see $B/vm/console.log)" ;;
*) echo "Bail out! scripts/vm --debug-kernel failed with status $rc" ;;
esac
exit 1
