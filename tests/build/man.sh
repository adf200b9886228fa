#!/bin/bash
# SPDX-License-Identifier: MIT
#
# man.sh - the man pages: section 3 has a page for every function the
# library exports (userspace/src/ringfiber.map), generated from ringfiber.h
# by kernel-doc (make man); every page of sections 1, 3 and 7 renders with
# neither groff -ww nor man --warnings -l saying a word.
set -u
# shellcheck source=tests/lib/tap.bash
. "$(dirname "$0")/../lib/tap.bash"
B=${RF_BUILD:-build}
man3=$B/man/man3

for tool in groff man; do
	command -v "$tool" >/dev/null ||
		tap_skip_all "$tool not installed (scripts/install-deps: groff-base, man-db)"
done
if ! ls "$man3"/*.3 >/dev/null 2>&1; then
	tap_skip_all "no $man3/*.3: make man not run"
fi
tap_plan 6

funcs=$(sed -n 's/^[[:space:]]*\(rf_[a-z0-9_]*\);$/\1/p' userspace/src/ringfiber.map | sort)
missing=""
for f in $funcs; do
	[ -s "$man3/$f.3" ] || missing="$missing $f"
done
nfuncs=$(echo "$funcs" | wc -l)
[ -n "$funcs" ] && [ -z "$missing" ]
tap_ok $? "section 3: a page for each of the map's $nfuncs functions${missing:+ (missing:$missing)}"

# Each page is the function's own: its NAME line names it, its SYNOPSIS
# has its prototype, and it is in section 3.
wrong=""
for f in $funcs; do
	[ -s "$man3/$f.3" ] || continue
	head -1 "$man3/$f.3" | grep -q "^\.TH \"$f\" 3 " &&
		grep -A1 '^\.SH NAME' "$man3/$f.3" | grep -q "^$f \\\\- " &&
		grep -A1 '^\.SH SYNOPSIS' "$man3/$f.3" | grep -q " $f\$" ||
		wrong="$wrong $f"
done
[ -z "$wrong" ]
tap_ok $? "section 3: each page has .TH NAME 3, its NAME line and its prototype" ||
	tap_diag "not:$wrong"

pages=$(ls "$man3"/*.3 man/*.1 man/*.7)
npages=$(echo "$pages" | wc -l)
# One run each for every page: per page, man -l takes most of a second
# here.  groff names the file of a warning; man reads standard input.
# shellcheck disable=SC2086
out=$(LC_ALL=C.UTF-8 groff -man -ww -z $pages 2>&1)
rc=$?
[ $rc -eq 0 ] && [ -z "$out" ]
tap_ok $? "groff -man -ww -z: no warning on any of $npages pages" || tap_diag "$out"

# man -l as a reader runs it, and with groff's warnings on (man(1) keeps
# them off by default): nothing on stderr, and a NAME section per page.
# shellcheck disable=SC2086
names=$(MANWIDTH=80 man --warnings=w -l $pages 2>"$B/man/.stderr" | grep -c '^NAME')
[ -s "$B/man/.stderr" ]
warned=$?
[ "$names" = "$npages" ] && [ $warned -ne 0 ]
tap_ok $? "man --warnings=w -l: $names of $npages pages rendered, nothing on stderr" || {
	tap_diag_file "$B/man/.stderr" 20
	for p in $pages; do
		MANWIDTH=80 man --warnings=w -l "$p" 2>&1 >/dev/null | grep -q . && tap_diag "in $p"
	done
}
rm -f "$B/man/.stderr"

# Every page's NAME line as mandb reads it for whatis and apropos (lexgrog,
# man-db's parser; lintian's bad-whatis-entry): "name \- description",
# the name alone ("struct rf_buf \- ..." does not parse).
unparsed=""
for p in $pages; do
	lexgrog "$p" >/dev/null 2>&1 || unparsed="$unparsed ${p##*/}"
done
[ -z "$unparsed" ]
tap_ok $? "lexgrog parses the NAME line of every page${unparsed:+ (not:$unparsed)}"

# The hand-written pages: .TH NAME SECTION YYYY-MM-DD, and a NAME line,
# that match the file's name (man finds a page by its file, and shows .TH).
bad=""
for p in man/*.1 man/*.7; do
	name=$(basename "$p")
	sec=${name##*.}
	name=${name%.*}
	upper=$(echo "$name" | tr '[:lower:]' '[:upper:]')
	grep -q "^\.TH $upper $sec [0-9]\{4\}-[0-9][0-9]-[0-9][0-9] " "$p" &&
		grep -A1 '^\.SH NAME' "$p" | grep -q "^$name \\\\- " || bad="$bad $p"
done
[ -z "$bad" ]
tap_ok $? "sections 1 and 7: .TH and NAME match the file's name${bad:+ (not:$bad)}"
tap_done
