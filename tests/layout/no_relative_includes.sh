#!/bin/sh
# Fails when a C source or header of the SDK includes a file by a relative path with `..`
# (#include "../backbone/x.h"): a header shared between folders comes through the include
# directory of its library's meson dependency (core's include/mo_internal/, ...), a test
# helper through tests/ ("detect/detgen.h"). Usage: no_relative_includes.sh SOURCE_ROOT
# Build directories (any folder with meson-private/ in it) and hidden folders are skipped.
set -eu
[ $# -eq 1 ] || { echo "usage: $0 SOURCE_ROOT" >&2; exit 2; }
root=$1
[ -f "$root/meson.build" ] || { echo "FAIL: $root is not the source root" >&2; exit 2; }
hits=$(mktemp)
trap 'rm -f "$hits"' EXIT
checked=0
for d in "$root"/*/; do
    d=${d%/}
    [ -d "$d/meson-private" ] && continue
    checked=$((checked + 1))
    grep -rnE --include='*.c' --include='*.h' \
        '^[[:space:]]*#[[:space:]]*include[[:space:]]*["<][^">]*\.\./' "$d" >>"$hits" || true
done
[ "$checked" -gt 0 ] || { echo "FAIL: no source folder under $root" >&2; exit 1; }
if [ -s "$hits" ]; then
    sed "s|^$root/||" "$hits"
    echo "FAIL: $(wc -l <"$hits") #include by a relative path (above); include through a meson dependency's include directory instead" >&2
    exit 1
fi
echo "no relative #include in $checked source folders"
