#!/bin/sh
# Compile tests/install/consumer.c against the SDK installed under DESTDIR (meson install
# --destdir DESTDIR) using pkg-config only, then run it. Usage: consumer.sh DESTDIR [MODEL]
set -eu
destdir=$1
here=$(cd "$(dirname "$0")" && pwd)
pcdir=$(dirname "$(find "$destdir" -name mobileone.pc | head -n 1)")
export PKG_CONFIG_PATH="$pcdir" PKG_CONFIG_SYSROOT_DIR="$destdir"
libs="mo_classify mo_detect mo_io"
libs="$libs mo_segment"
work=$(mktemp -d)
cc -std=c11 -Wall -Wextra -Werror $(pkg-config --cflags $libs) "$here/consumer.c" \
    -o "$work/consumer" $(pkg-config --libs $libs)
LD_LIBRARY_PATH="$destdir$(pkg-config --variable=libdir mobileone | sed "s|^$destdir||")" \
    "$work/consumer" ${2:-}
rm -rf "$work"
