#!/bin/sh
# Installs what test.sh's AArch64 step needs on Debian 12 (only what is missing): the cross
# compiler, qemu-user (runs the arm64 tests) and the SDK's dependencies as arm64 multiarch
# packages, which cross/aarch64-linux-gnu.ini points pkg-config at. Adds the arm64
# architecture to dpkg first if it is absent.
set -eu
pkgs="gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user
      libjpeg62-turbo-dev:arm64 libpng-dev:arm64 libjson-c-dev:arm64 zlib1g-dev:arm64
      libcmocka-dev:arm64 libxml2-dev:arm64 libstb-dev:arm64"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
    echo "adding the arm64 architecture (dpkg --add-architecture arm64)"
    $SUDO dpkg --add-architecture arm64
fi
missing=""
for p in $pkgs; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "installing:$missing"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing
