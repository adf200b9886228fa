#!/bin/bash
# SPDX-License-Identifier: MIT
#
# install.sh - make install into a DESTDIR puts exactly the expected files
# where the directory variables say; a program builds against that tree
# with pkg-config (shared and --static) and runs; every installed program
# has a man page naming each of its long options; make uninstall removes
# every file install wrote.
set -u
# shellcheck source=tests/lib/tap.bash
. "$(dirname "$0")/../lib/tap.bash"
B=${RF_BUILD:-build}
# Not the flags of a make this test runs under (make check): its own.
unset MAKEFLAGS MFLAGS MAKELEVEL

for tool in pkg-config man; do
	command -v "$tool" >/dev/null ||
		tap_skip_all "$tool not installed (scripts/install-deps: pkg-config, man-db)"
done
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
tap_plan 14

node=$(sed -n 's/^RINGFIBER_\([0-9]*\.[0-9]*\) {.*/\1/p' userspace/src/ringfiber.map | tail -1)
version=$node.0
bins="ringfiber-httpserver ringfiber-fibserver ringfiber-echo-server ringfiber-echo-client
ringfiber-hogclient ringfiber-demo"
demo_progs="servers/httpserver servers/fibserver bench/rf-tasks bench/hogclient bench/http-floor"
# schedcmp is built only where the kernel has BTF (trace/build.mk).
if [ -x "$B/trace/schedcmp" ]; then
	bins="$bins schedcmp"
	demo_progs="$demo_progs trace/schedcmp"
fi

# expected PREFIX LIBDIR MANDIR: the files install must write, sorted.
expected() {
	local prefix=$1 libdir=$2 mandir=$3 b
	{
		echo "$libdir/libringfiber.a"
		echo "$libdir/libringfiber.so"
		echo "$libdir/libringfiber.so.${version%%.*}"
		echo "$libdir/libringfiber.so.$version"
		echo "$libdir/pkgconfig/ringfiber.pc"
		echo "$prefix/include/ringfiber.h"
		echo "$prefix/include/ringfiber-trace.h"
		for b in $bins; do
			echo "$prefix/bin/$b"
			echo "$mandir/man1/$b.1"
		done
		for b in trace/*.bt trace/rfbt trace/stackfold; do
			echo "$prefix/share/ringfiber/bpftrace/${b#trace/}"
		done
		for b in demo bench-http idle-conns rfbench.py; do
			echo "$prefix/libexec/ringfiber/$b"
		done
		for b in $demo_progs; do
			echo "$prefix/libexec/ringfiber/build/$b"
		done
		for b in "$B"/man/man3/*.3; do
			echo "$mandir/man3/${b##*/}"
		done
		echo "$mandir/man7/ringfiber.7"
	} | sort
}

# 1: the defaults.
root=$tmp/root
make -s install B="$B" DESTDIR="$root" >"$tmp/install.out" 2>&1
tap_ok $? "make install DESTDIR=...: exit 0" || tap_diag_file "$tmp/install.out" 20
(cd "$root" && find . ! -type d | sed 's|^\.||' | sort) >"$tmp/got"
expected /usr/local /usr/local/lib /usr/local/share/man >"$tmp/want"
diff "$tmp/want" "$tmp/got" >"$tmp/diff"
tap_ok $? "the files are exactly those expected under /usr/local ($(wc -l <"$tmp/want"))" ||
	tap_diag_file "$tmp/diff" 20

lib=$root/usr/local/lib
[ "$(readlink "$lib/libringfiber.so")" = "libringfiber.so.${version%%.*}" ] &&
	[ "$(readlink "$lib/libringfiber.so.${version%%.*}")" = "libringfiber.so.$version" ] &&
	readelf -d "$lib/libringfiber.so.$version" |
	grep -q "SONAME.*\[libringfiber.so.${version%%.*}\]"
tap_ok $? "libringfiber.so -> .so.${version%%.*} (the soname) -> .so.$version"

export PKG_CONFIG_PATH=$lib/pkgconfig PKG_CONFIG_SYSROOT_DIR=$root
[ "$(pkg-config --modversion ringfiber)" = "$version" ] &&
	[ "$(pkg-config --variable=libdir ringfiber)" = "$root/usr/local/lib" ]
tap_ok $? "pkg-config: ringfiber $version, libdir /usr/local/lib"

# A program of a user's (user-prog.c): it says "ok" only if each step did.
cp "$(dirname "$0")/user-prog.c" "$tmp/prog.c"
# shellcheck disable=SC2046
cc -Wall -Werror -o "$tmp/prog-shared" "$tmp/prog.c" $(pkg-config --cflags --libs ringfiber) \
	>"$tmp/cc.out" 2>&1
tap_ok $? "cc prog.c \$(pkg-config --cflags --libs ringfiber)" || tap_diag_file "$tmp/cc.out" 20

out=$(LD_LIBRARY_PATH=$lib "$tmp/prog-shared" 2>&1)
rc=$?
resolved=$(LD_LIBRARY_PATH=$lib ldd "$tmp/prog-shared" 2>/dev/null |
	awk '/libringfiber/ { print $3 }')
[ $rc -eq 0 ] && [ "$out" = ok ] && [ "$resolved" = "$lib/libringfiber.so.${version%%.*}" ]
tap_ok $? "it runs against the installed libringfiber.so (LD_LIBRARY_PATH): $out" ||
	tap_diag "exit $rc, libringfiber resolved to '$resolved'"

# shellcheck disable=SC2046
cc -static -Wall -Werror -o "$tmp/prog-static" "$tmp/prog.c" \
	$(pkg-config --static --cflags --libs ringfiber) >"$tmp/cc.out" 2>&1
tap_ok $? "cc -static prog.c \$(pkg-config --static --cflags --libs ringfiber)" ||
	tap_diag_file "$tmp/cc.out" 20

out=$("$tmp/prog-static" 2>&1)
rc=$?
! readelf -l "$tmp/prog-static" | grep -q INTERP && [ $rc -eq 0 ] && [ "$out" = ok ]
tap_ok $? "the static program has no interpreter and runs: $out" || tap_diag "exit $rc"

# Each program's man page names every long option its --help does.
bad=""
for b in $bins; do
	page=$root/usr/local/share/man/man1/$b.1
	prog=$root/usr/local/bin/$b
	# ringfiber-demo runs /usr/local/libexec/ringfiber/demo: not there yet.
	[ "$b" = ringfiber-demo ] && prog=$root/usr/local/libexec/ringfiber/demo
	opts=$("$prog" --help 2>&1 | grep -oE -- '--[a-z][a-z-]*' | sort -u)
	[ -n "$opts" ] || bad="$bad $b:no-options"
	for o in $opts; do
		sed 's/\\-/-/g' "$page" 2>/dev/null | grep -q -- "$o" || bad="$bad $b:$o"
	done
done
[ -z "$bad" ]
tap_ok $? "each installed program's man page names each long option of its --help" ||
	tap_diag "missing:$bad"

man -M "$root/usr/local/share/man" -w rf_spawn ringfiber.7 ringfiber-httpserver \
	>"$tmp/man.out" 2>&1 &&
	[ "$(grep -c "^$root/usr/local/share/man/man[137]/" "$tmp/man.out")" = 3 ]
tap_ok $? "man -M MANDIR finds rf_spawn(3), ringfiber(7), ringfiber-httpserver(1)" ||
	tap_diag_file "$tmp/man.out" 5

make -s uninstall B="$B" DESTDIR="$root" >"$tmp/uninstall.out" 2>&1
left=$(cd "$root" && find . ! -type d -o -path ./usr/local/share/ringfiber \
	-o -path ./usr/local/libexec/ringfiber)
[ -z "$left" ]
tap_ok $? "make uninstall: no file left, nor share/ringfiber, libexec/ringfiber" ||
	tap_diag "left: $left"

# 2: the directories a Debian package uses, and its multiarch LIBDIR.
triplet=$(cc -dumpmachine)
root=$tmp/root2
make -s install B="$B" DESTDIR="$root" PREFIX=/usr LIBDIR="/usr/lib/$triplet" \
	>"$tmp/install.out" 2>&1
tap_ok $? "make install PREFIX=/usr LIBDIR=/usr/lib/$triplet: exit 0" ||
	tap_diag_file "$tmp/install.out" 20
(cd "$root" && find . ! -type d | sed 's|^\.||' | sort) >"$tmp/got"
expected /usr "/usr/lib/$triplet" /usr/share/man >"$tmp/want"
diff "$tmp/want" "$tmp/got" >"$tmp/diff" &&
	grep -qx "libdir=/usr/lib/$triplet" "$root/usr/lib/$triplet/pkgconfig/ringfiber.pc" &&
	grep -qx 'includedir=/usr/include' "$root/usr/lib/$triplet/pkgconfig/ringfiber.pc" &&
	grep -qx 'exec /usr/libexec/ringfiber/demo /usr/libexec/ringfiber/build "$@"' \
		"$root/usr/bin/ringfiber-demo"
tap_ok $? "the files are where PREFIX and LIBDIR say, as are ringfiber.pc's and the demo's" ||
	tap_diag_file "$tmp/diff" 20

make -s uninstall B="$B" DESTDIR="$root" PREFIX=/usr LIBDIR="/usr/lib/$triplet" \
	>"$tmp/uninstall.out" 2>&1
left=$(cd "$root" && find . ! -type d -o -path ./usr/share/ringfiber \
	-o -path ./usr/libexec/ringfiber)
[ -z "$left" ]
tap_ok $? "make uninstall with the same variables: no file left" || tap_diag "left: $left"
tap_done
