#!/bin/bash
# SPDX-License-Identifier: MIT
#
# vm.sh - the tests that need the rfwake module, in a qemu VM (scripts/vm):
# the module's ABI tests (tests/rfwake/), then the runtime's own tests with
# RF_WAKE_BACKEND=rfwake and with the default back-end, then the kernel log
# check.  Each program is a subtest of one TAP stream (scripts/vm-init/suite).
#
# Skips, saying why, where the VM cannot run: no qemu, no module built, no
# kernel image for it.  `make check` builds the module first, so in CI the
# VM really runs.  RF_VM_TIMEOUT (seconds, default 840) bounds the whole VM
# run; keep it below the runner's limit (scripts/run-test) so that a hang is
# reported here and not by the runner killing us.  RF_VM_MODULE (default
# module/rfwake.ko) is the module to load: the VM boots the kernel it was
# built for (make check-vm runs this once per kernel: $B/module-<kver>/).
set -u
# shellcheck source=tests/lib/tap.bash
. "$(dirname "$0")/../lib/tap.bash"
B=${RF_BUILD:-build}
module=${RF_VM_MODULE:-module/rfwake.ko}

command -v qemu-system-x86_64 >/dev/null ||
	tap_skip_all "qemu-system-x86_64 not installed (qemu-system-x86)"
command -v busybox >/dev/null || tap_skip_all "busybox not installed (busybox-static)"
command -v cpio >/dev/null || tap_skip_all "cpio not installed"
command -v modinfo >/dev/null || tap_skip_all "modinfo not installed (kmod)"
[ -f "$module" ] || tap_skip_all "$module not built (make module)"
ver=$(modinfo -F vermagic "$module" | cut -d' ' -f1)
[ -e "/boot/vmlinuz-$ver" ] ||
	tap_skip_all "no /boot/vmlinuz-$ver to load $module into (linux-image-$ver)"
[ -r "/boot/vmlinuz-$ver" ] || tap_skip_all "/boot/vmlinuz-$ver is not readable by $(id -un)"

# scripts/vm's own failures (124: timeout, 125: no exit status) become a
# Bail out and status 1: run-test takes 124 for its own timeout.
# The stream is also kept in $B/vm/suite-<kernel release>.tap, the console
# in console-<release>.log; on a failure the failed
# checks of each subtest (indented, so prove hides them) and their
# diagnostics go to stderr too, which prove shows: a CI log then says what
# failed, not only which program.
mkdir -p "$B/vm"
tap=$B/vm/suite-$ver.tap
scripts/vm --build "$B" --module "$module" --timeout "${RF_VM_TIMEOUT:-840}" | tee "$tap"
rc=${PIPESTATUS[0]}
cp -f "$B/vm/console.log" "$B/vm/console-$ver.log" 2>/dev/null
if [ "$rc" != 0 ]; then
	awk '/^# Subtest: / { label = substr($0, 12) }
	     /^    not ok/ { print "vm.sh: " label ": " substr($0, 5); diag = 1; next }
	     diag && /^    #/ { print "vm.sh:   " substr($0, 5); next }
	     { diag = 0 }
	     /^not ok/ { print "vm.sh: " $0 }' "$tap" >&2
fi
case $rc in
0 | 1) exit $rc ;;
124) echo "Bail out! the VM ran past ${RF_VM_TIMEOUT:-840}s (see $B/vm/console-$ver.log)" ;;
125) echo "Bail out! the VM died without an exit status (see $B/vm/console-$ver.log)" ;;
*) echo "Bail out! scripts/vm failed with status $rc" ;;
esac
exit 1
