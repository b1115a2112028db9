#!/bin/sh
# Installs the Debian 12 packages the SDK, its tests and its tools need (only what is missing).
set -eu
pkgs="build-essential meson ninja-build pkg-config libstb-dev libcmocka-dev zlib1g-dev
      libjson-c-dev libjpeg62-turbo-dev libpng-dev libxml2-dev clang libclang-rt-14-dev valgrind python3-torch python3-torchvision python3-numpy python3-pil doxygen
      libavformat-dev libavcodec-dev libswscale-dev libavutil-dev"
missing=""
for p in $pkgs; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "installing:$missing"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing
