#!/bin/bash
# SPDX-License-Identifier: MIT
#
# debian.sh - debian/ agrees with the one source of the version and the
# ABI, userspace/src/ringfiber.map: debian/changelog's upstream version is
# the map's newest node (the Makefile's VERSION, what make install and
# make install-dkms name), and debian/libringfiber0.symbols lists exactly
# the map's symbols, each with the version of its node (what dpkg-
# gensymbols -c4 then holds the built library to, in make deb).
set -u
# shellcheck source=tests/lib/tap.bash
. "$(dirname "$0")/../lib/tap.bash"
map=userspace/src/ringfiber.map
tap_plan 2

node=$(sed -n 's/^RINGFIBER_\([0-9]*\.[0-9]*\) {.*/\1/p' "$map" | tail -1)
version=$node.0
# The first line: "ringfiber (UPSTREAM-REVISION) unstable; ...".
deb_version=$(sed -n '1s/^ringfiber (\([^)]*\)).*/\1/p' debian/changelog 2>/dev/null)
upstream=${deb_version%-*}
[ -n "$node" ] && [ "$upstream" = "$version" ]
tap_ok $? "debian/changelog's version $deb_version is the map's $version" \
	"map: $version; debian/changelog: '$deb_version' (dch -v $version-1, or a new node in the map)"

# symbols PATH: the map as a symbols file's lines, " NAME@NODE VERSION"
# for each symbol and node (a symbol-versioned library exports each
# node's name too), sorted.
symbols() {
	awk '/^RINGFIBER_[0-9]+\.[0-9]+ \{/ { node = $1; print " " node "@" node " " substr(node, 11); next }
	     node && /^[ \t]+rf_[a-z0-9_]+;/ { s = $1; sub(/;$/, "", s); print " " s "@" node " " substr(node, 11) }' \
		"$1" | LC_ALL=C sort
}
expected=$( {
	echo "libringfiber.so.0 libringfiber0 #MINVER#"
	echo "* Build-Depends-Package: libringfiber-dev"
	symbols "$map"
})
diff=$(diff -u <(echo "$expected") debian/libringfiber0.symbols 2>&1)
tap_ok $? "debian/libringfiber0.symbols is the map's $(grep -c '^[[:space:]]*rf_' "$map") symbols, each with its node's version" \
	"$diff"
tap_done
