#!/bin/sh
# Copy examples/frame_demo.c out of the tree, compile it against the SDK installed under
# DESTDIR (meson install --destdir DESTDIR) with pkg-config alone, run it on its in-memory
# frame. Usage: example.sh DESTDIR [MODEL [HEAD...]]
set -eu
destdir=$1
shift
here=$(cd "$(dirname "$0")" && pwd)
pcdir=$(dirname "$(find "$destdir" -name mo_pipeline.pc | head -n 1)")
export PKG_CONFIG_PATH="$pcdir" PKG_CONFIG_SYSROOT_DIR="$destdir"
work=$(mktemp -d)
cp "$here/../../examples/frame_demo.c" "$work/"
(cd "$work" && cc -std=c11 -Wall -Wextra -Werror frame_demo.c \
    $(pkg-config --cflags --libs mo_pipeline) -o frame_demo)
LD_LIBRARY_PATH="$destdir$(pkg-config --variable=libdir mo_pipeline | sed "s|^$destdir||")" \
    "$work/frame_demo" "$@"
rm -rf "$work"
