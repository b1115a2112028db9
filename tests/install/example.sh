#!/bin/sh
# Copy examples/frame_demo.c out of the tree, compile it against the SDK installed under
# DESTDIR (meson install --destdir DESTDIR) with pkg-config alone, run it on its in-memory
# frame with MODEL and the HEAD files: every head given must give its output.
# Usage: example.sh DESTDIR MODEL [HEAD...], or example.sh DESTDIR --no-model (frame
# conversion only, said so on the output).
set -eu
[ $# -ge 2 ] || { echo "usage: $0 DESTDIR MODEL [HEAD...] | DESTDIR --no-model" >&2; exit 2; }
destdir=$1
shift
if [ "$1" = --no-model ]; then
    echo "NOTE: example.sh: no model given, only the frame conversion runs"
    shift
else
    for f in "$@"; do
        [ -f "$f" ] || { echo "FAIL: example.sh: model $f is not a file" >&2; exit 1; }
    done
fi
here=$(cd "$(dirname "$0")" && pwd)
pcdir=$(dirname "$(find "$destdir" -name mo_pipeline.pc | head -n 1)")
export PKG_CONFIG_PATH="$pcdir" PKG_CONFIG_SYSROOT_DIR="$destdir"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "$here/../../examples/frame_demo.c" "$work/"
(cd "$work" && cc -std=c11 -Wall -Wextra -Werror frame_demo.c \
    $(pkg-config --cflags --libs mo_pipeline) -o frame_demo)
LD_LIBRARY_PATH="$destdir$(pkg-config --variable=libdir mo_pipeline | sed "s|^$destdir||")" \
    "$work/frame_demo" "$@" >"$work/out" ||
    { cat "$work/out"; echo "FAIL: $(basename "$0"): the program failed" >&2; exit 1; }
cat "$work/out"
# what each model must have printed: classes with a model, boxes / labels with the heads
if [ $# -ge 1 ]; then
    grep -q "^class 1\. " "$work/out" || { echo "FAIL: example.sh: no classes printed" >&2; exit 1; }
fi
for f in "$@"; do # the heads by what their header says they hold (mo.contents)
    contents=$(head -c 1048576 "$f" | tr -d '\\' | grep -ao '"mo.contents":"\[[^]]*\]' | head -n 1)
    case $contents in
    *'"det"'*) grep -q "^box " "$work/out" || { echo "FAIL: example.sh: no box from $f" >&2; exit 1; } ;;
    esac
    case $contents in
    *'"seg"'*) grep -q "^label at the centre: " "$work/out" || { echo "FAIL: example.sh: no labels from $f" >&2; exit 1; } ;;
    esac
done
