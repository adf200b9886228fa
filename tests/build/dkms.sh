#!/bin/bash
# SPDX-License-Identifier: MIT
#
# dkms.sh - rfwake under DKMS: `make install-dkms` writes the source tree
# DKMS wants (rfwake-VERSION/ with dkms.conf, VERSION the library's), and
# `dkms add`, then for each kernel of RF_DKMS_KERNELS (default "6.1 6.12",
# the kernels make check-vm boots) `dkms build -k RELEASE` and `dkms
# install` work; the module DKMS built carries that kernel's vermagic,
# loads in the test VM (scripts/vm) booting that kernel and passes the
# module's ABI tests there (tests/rfwake/abi, RFWAKE_REQUIRE=1); `dkms
# remove` takes it all away.
#
# DKMS works in private trees under a temporary directory (--dkmstree,
# --sourcetree, --installtree, and --no-depmod), so the machine's own
# /var/lib/dkms, /usr/src and /lib/modules are left alone; only DKMS's
# signing key, /var/lib/dkms/mok.{key,pub}, is made on the first build if
# the machine has none, as any DKMS build does.  Skips, saying why,
# without root (dkms refuses), dkms or a kernel's headers; the VM check
# skips without qemu or the kernel's image.
set -u
# shellcheck source=tests/lib/tap.bash
. "$(dirname "$0")/../lib/tap.bash"
B=${RF_BUILD:-build}
unset MAKEFLAGS MFLAGS MAKELEVEL

[ "$(id -u)" = 0 ] || tap_skip_all "dkms add/build/install need root"
command -v dkms >/dev/null || tap_skip_all "dkms not installed (scripts/install-deps: dkms)"
kernels=${RF_DKMS_KERNELS:-6.1 6.12}
version=$(sed -n 's/^RINGFIBER_\([0-9]*\.[0-9]*\) {.*/\1/p' userspace/src/ringfiber.map |
	tail -1).0

tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
dkms_trees=(--dkmstree "$tmp/dkms" --sourcetree "$tmp/src" --installtree "$tmp/lib/modules")
mkdir -p "$tmp/dkms" "$tmp/lib/modules"
n_kernels=$(echo $kernels | wc -w)
tap_plan $((3 + 4 * n_kernels + 1))

# dkms_do LOG ARGS...: dkms ARGS in the private trees, its output in LOG.
dkms_do() {
	local log=$1
	shift
	nice -n 19 dkms "$@" "${dkms_trees[@]}" >"$log" 2>&1
}

make -s install-dkms INSTALL_DEPS= DESTDIR="$tmp" DKMS_SOURCE_TREE=/src >"$tmp/install.log" 2>&1
tap_ok $? "make install-dkms writes the DKMS source tree" "$(tail -n 20 "$tmp/install.log")"
src=$tmp/src/rfwake-$version

# Every file Kbuild compiles or includes is there, in module/'s layout.
missing=
for f in Kbuild $(cd module && ls *.c *.h include/uapi/linux/*.h); do
	case $f in *.mod.c) continue ;; esac
	cmp -s "module/$f" "$src/$f" || missing="$missing $f"
done
conf_version=$(sed -n 's/^PACKAGE_VERSION="\(.*\)"$/\1/p' "$src/dkms.conf" 2>/dev/null)
tap_ok $([ -z "$missing" ] && [ "$conf_version" = "$version" ]; echo $?) \
	"rfwake-$version/ holds module/'s sources and dkms.conf with PACKAGE_VERSION $version" \
	"missing or different:${missing:- none}; PACKAGE_VERSION: '$conf_version'"

dkms_do "$tmp/add.log" add "rfwake/$version"
tap_ok $? "dkms add rfwake/$version" "$(tail -n 20 "$tmp/add.log")"

for k in $kernels; do
	rel=$(scripts/kdir --release "$k")
	if [ -z "$rel" ] || [ ! -f "/lib/modules/$rel/build/Makefile" ]; then
		tap_skip "no build tree of kernel $k (/lib/modules/RELEASE/build: linux-headers of $k, scripts/install-deps)" 4
		continue
	fi
	mkdir -p "$tmp/lib/modules/$rel"
	dkms_do "$tmp/build-$k.log" build "rfwake/$version" -k "$rel"
	tap_ok $? "$k: dkms build -k $rel" "$(tail -n 30 "$tmp/build-$k.log"; \
		cat "$tmp/dkms/rfwake/$version/build/make.log" 2>/dev/null | tail -n 30)"
	# Compressed as the kernel's own modules are (6.12: rfwake.ko.xz).
	built=$(ls "$tmp/dkms/rfwake/$version/$rel/$(uname -m)/module/"rfwake.ko* 2>/dev/null |
		head -n 1)
	magic=$(modinfo -F vermagic "$built" 2>/dev/null | cut -d' ' -f1)
	tap_ok $([ "$magic" = "$rel" ]; echo $?) "$k: the module DKMS built is for $rel" \
		"vermagic of '$built': '$magic'"
	dkms_do "$tmp/install-$k.log" install --no-depmod "rfwake/$version" -k "$rel" &&
		cmp -s "$built" "$tmp/lib/modules/$rel/updates/dkms/${built##*/}"
	tap_ok $? "$k: dkms install puts it in /lib/modules/$rel/updates/dkms (private tree)" \
		"$(tail -n 20 "$tmp/install-$k.log")"
	why=
	command -v qemu-system-x86_64 >/dev/null || why="qemu-system-x86_64 not installed"
	command -v busybox >/dev/null || why="busybox not installed (busybox-static)"
	[ -r "/boot/vmlinuz-$rel" ] || why="no readable /boot/vmlinuz-$rel (linux-image-$rel)"
	[ -x "$B/tests/rfwake/abi" ] || why="$B/tests/rfwake/abi not built (make)"
	# The VM's busybox insmod takes the module uncompressed.
	ko=$tmp/rfwake-$k.ko
	case $built in
	*.ko) cp "$built" "$ko" ;;
	*.ko.xz) xz -dc "$built" >"$ko" ;;
	*.ko.gz) gzip -dc "$built" >"$ko" ;;
	*.ko.zst) zstd -qdc "$built" >"$ko" ;;
	esac 2>/dev/null
	[ -s "$ko" ] || why="no module built, or it cannot be decompressed: '$built'"
	if [ -n "$why" ]; then
		tap_skip "$why"
		continue
	fi
	scripts/vm --build "$B" --module "$ko" --env RFWAKE_REQUIRE=1 --timeout 600 \
		-- "$B/tests/rfwake/abi" >"$tmp/vm-$k.tap" 2>"$tmp/vm-$k.err"
	rc=$?
	grep -q '^not ok' "$tmp/vm-$k.tap" && rc=1
	tap_ok $rc "$k: loads in the VM ($rel) and passes tests/rfwake/abi" \
		"$(grep '^not ok' "$tmp/vm-$k.tap" | head -n 20; tail -n 20 "$tmp/vm-$k.err")"
	tap_diag "$k: tests/rfwake/abi in the VM: $(grep -c '^ok' "$tmp/vm-$k.tap") ok," \
		"$(grep -c '^not ok' "$tmp/vm-$k.tap") not ok"
done

dkms_do "$tmp/remove.log" remove "rfwake/$version" --all &&
	[ -z "$(find "$tmp/lib/modules" -name 'rfwake.ko*')" ] &&
	[ ! -e "$tmp/dkms/rfwake/$version" ]
tap_ok $? "dkms remove rfwake/$version --all removes the builds and the installed modules" \
	"$(tail -n 20 "$tmp/remove.log"; find "$tmp/lib/modules" "$tmp/dkms" 2>/dev/null | head)"
tap_done
