#!/bin/sh
# Compile tests/install/consumer.c against the SDK installed under DESTDIR (meson install
# --destdir DESTDIR) using pkg-config only, then run it on MODEL (a backbone with its
# classification head): it must load and classify. Usage: consumer.sh DESTDIR MODEL, or
# consumer.sh DESTDIR --no-model to build and link only (said so on the output).
set -eu
[ $# -eq 2 ] || { echo "usage: $0 DESTDIR MODEL|--no-model" >&2; exit 2; }
destdir=$1
model=$2
if [ "$model" = --no-model ]; then
    echo "NOTE: consumer.sh: no model given, only building and linking"
    model=""
elif [ ! -f "$model" ]; then
    echo "FAIL: consumer.sh: model $model is not a file" >&2
    exit 1
fi
here=$(cd "$(dirname "$0")" && pwd)
pcdir=$(dirname "$(find "$destdir" -name mobileone.pc | head -n 1)")
export PKG_CONFIG_PATH="$pcdir" PKG_CONFIG_SYSROOT_DIR="$destdir"
libs="mo_classify mo_detect mo_io"
libs="$libs mo_segment"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cc -std=c11 -Wall -Wextra -Werror $(pkg-config --cflags $libs) "$here/consumer.c" \
    -o "$work/consumer" $(pkg-config --libs $libs)
LD_LIBRARY_PATH="$destdir$(pkg-config --variable=libdir mobileone | sed "s|^$destdir||")" \
    "$work/consumer" $model >"$work/out" ||
    { cat "$work/out"; echo "FAIL: $(basename "$0"): the program failed" >&2; exit 1; }
cat "$work/out"
if [ -n "$model" ] && ! grep -q "^ran " "$work/out"; then
    echo "FAIL: consumer.sh: the consumer did not run the model" >&2
    exit 1
fi
