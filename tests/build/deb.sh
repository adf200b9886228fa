#!/bin/bash
# SPDX-License-Identifier: MIT
#
# deb.sh DIR - the Debian packages make deb built (DIR: their .debs) on a
# Debian 12 root where nothing of ringfiber is installed: apt installs
# them with what they depend on; a user's program (user-prog.c) builds
# with `cc prog.c $(pkg-config --cflags --libs ringfiber)` and runs
# against the packaged libringfiber.so.0; the tools run; rfwake-dkms's
# installation has DKMS build and install the module for the 6.1 headers
# (linux-headers-amd64), and its purge removes it.
#
# It installs packages system-wide: scripts/fresh-check --only packages
# runs it on a throw-away root, after make deb on another.  Without DIR
# (make check runs every tests/build/*.sh) it skips.
set -u
# shellcheck source=tests/lib/tap.bash
. "$(dirname "$0")/../lib/tap.bash"

[ $# -ge 1 ] || tap_skip_all "installs packages system-wide: scripts/fresh-check --only packages runs it (deb.sh DIR, on a throw-away root)"
[ "$(id -u)" = 0 ] || tap_skip_all "apt-get needs root"
dir=$(cd "$1" && pwd) || exit 1
version=$(sed -n 's/^RINGFIBER_\([0-9]*\.[0-9]*\) {.*/\1/p' userspace/src/ringfiber.map |
	tail -1).0
packages="libringfiber0 libringfiber-dev ringfiber-tools rfwake-dkms"
export DEBIAN_FRONTEND=noninteractive
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
tap_plan 10

debs=()
for p in $packages; do
	debs+=("$(ls "$dir/${p}_$version-"*_*.deb 2>/dev/null | head -n 1)")
done
missing=$(for d in "${debs[@]}"; do [ -f "$d" ] || echo x; done)
[ -z "$missing" ]
tap_ok $? "make deb built the four packages of version $version" "$(ls "$dir")"

# What a user brings: pkg-config, and the 6.1 headers rfwake-dkms builds
# for (first, so that the module is built when rfwake-dkms is configured).
{ apt-get update -qq && apt-get install -y -qq --no-install-recommends pkg-config \
	linux-headers-amd64; } >"$tmp/apt-user.log" 2>&1
tap_ok $? "apt-get install pkg-config linux-headers-amd64" "$(tail -n 20 "$tmp/apt-user.log")"
rel=$(dpkg-query -W -f='${Depends}' linux-headers-amd64 2>/dev/null |
	sed -n 's/^linux-headers-\([^ ,]*\).*/\1/p')

apt-get install -y --no-install-recommends "${debs[@]}" >"$tmp/apt.log" 2>&1
rc=$?
tap_ok $rc "apt-get install ./{$(echo $packages | tr ' ' ,)}_$version-*.deb" \
	"$(tail -n 30 "$tmp/apt.log")"
tap_diag "DKMS while rfwake-dkms was configured:"
sed -n '/^Setting up rfwake-dkms/,/^Setting up\|^Processing/p' "$tmp/apt.log" | head -n 30 |
	sed 's/^/#   /'

[ "$(pkg-config --modversion ringfiber 2>/dev/null)" = "$version" ]
tap_ok $? "pkg-config --modversion ringfiber: $version" "$(pkg-config --modversion ringfiber 2>&1)"

cp "$(dirname "$0")/user-prog.c" "$tmp/prog.c"
# shellcheck disable=SC2046
(cd "$tmp" && cc -Wall -Werror -o prog prog.c $(pkg-config --cflags --libs ringfiber)) \
	>"$tmp/cc.log" 2>&1
tap_ok $? "cc prog.c \$(pkg-config --cflags --libs ringfiber): $(pkg-config --cflags --libs ringfiber)" \
	"$(cat "$tmp/cc.log")"

out=$("$tmp/prog" 2>&1)
rc=$?
# The library ld.so found is the one libringfiber0 installed (through
# /lib/<multiarch>, the same directory on a merged-/usr Debian 12).
lib=$(ldd "$tmp/prog" 2>/dev/null | awk '$1 == "libringfiber.so.0" { print $3 }')
packaged=/usr/lib/$(cc -print-multiarch)/libringfiber.so.0
owner=$(dpkg -S "$packaged" 2>/dev/null | cut -d: -f1)
[ $rc = 0 ] && [ "$out" = ok ] && [ -n "$lib" ] &&
	[ "$(readlink -f "$lib")" = "$(readlink -f "$packaged")" ] && [ "$owner" = libringfiber0 ]
tap_ok $? "it runs against the packaged library ($lib, $packaged of $owner): $out" \
	"exit $rc, output: $out; ld.so: '$lib' -> $(readlink -f "$lib"); $packaged -> $(readlink -f "$packaged"), of '$owner'"

failed=
for b in $(dpkg -L ringfiber-tools | grep '^/usr/bin/'); do
	"$b" --help >/dev/null 2>&1 || failed="$failed ${b##*/}"
done
[ -z "$failed" ] && [ -x /usr/bin/ringfiber-httpserver ] && [ -x /usr/bin/schedcmp ]
tap_ok $? "ringfiber-tools: each program of /usr/bin runs --help${failed:+ (not:$failed)}"

# The module: built by DKMS for the headers' kernel at installation.
status=$(dkms status rfwake 2>&1)
ko=$(ls /lib/modules/"$rel"/updates/dkms/rfwake.ko* 2>/dev/null | head -n 1)
magic=$(modinfo -F vermagic "$ko" 2>/dev/null | cut -d' ' -f1)
echo "$status" | grep -q "^rfwake/$version, $rel, [^:]*: installed" && [ "$magic" = "$rel" ]
tap_ok $? "rfwake-dkms: DKMS built and installed rfwake for $rel ($ko)" \
	"dkms status: $status; module: '$ko', vermagic '$magic'"
tap_diag "dkms status: $status"

apt-get purge -y rfwake-dkms >"$tmp/purge.log" 2>&1 &&
	[ -z "$(dkms status rfwake 2>&1)" ] && [ ! -e "/usr/src/rfwake-$version" ] &&
	[ -z "$(ls /lib/modules/"$rel"/updates/dkms/rfwake.ko* 2>/dev/null)" ]
tap_ok $? "apt-get purge rfwake-dkms removes the module and its DKMS source" \
	"$(tail -n 20 "$tmp/purge.log"; dkms status rfwake 2>&1)"

apt-get purge -y libringfiber0 libringfiber-dev ringfiber-tools >"$tmp/purge2.log" 2>&1 &&
	! pkg-config --exists ringfiber 2>/dev/null && [ ! -e /usr/include/ringfiber.h ]
tap_ok $? "apt-get purge of the other three leaves no ringfiber.pc or header" \
	"$(tail -n 20 "$tmp/purge2.log")"
tap_done
