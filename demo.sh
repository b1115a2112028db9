#!/bin/sh
# Set-up and main demo on a fresh Debian 12 machine: installs the packages, builds the SDK,
# converts Apple's MobileOne-S0 checkpoint into the SDK's model format and classifies a photo.
set -eu
cd "$(dirname "$0")"
SHARED=${MO_SHARED:-$(cd .. && pwd)/shared}
CKPT=$SHARED/models/mobileone_s0.pth.tar
MODEL=build/models/mobileone_s0.mo.safetensors
IMAGE=${1:-$SHARED/data/images/tabby_cat.jpg}
# Photos for the detection + segmentation demo: the arguments, or tabby_cat.jpg and held-out
# photos with people, animals and vehicles (the heads never trained on these: weights/*.md).
if [ $# -gt 0 ]; then
    PHOTOS="$*"
else
    V=$SHARED/data/coco-mini/val2017 P=$SHARED/data/voc2012-val-samples
    PHOTOS=
    for f in "$IMAGE" $P/1_image.png $P/23_image.png $P/114_image.png $V/000000165518.jpg \
        $V/000000214753.jpg $V/000000423617.jpg $V/000000022892.jpg $V/000000269196.jpg \
        $V/000000217285.jpg; do
        if [ -f "$f" ]; then PHOTOS="$PHOTOS $f"; fi
    done
fi

tools/install-deps.sh
[ -d build ] || meson setup build --buildtype=release
ninja -C build

if [ ! -f "$CKPT" ]; then
    cat >&2 <<MSG
$CKPT is missing. Download Apple's MobileOne-S0 ImageNet checkpoint (ml-mobileone,
fused form, sha256 cfaa38ac746a3870cc4b014830559886962e17b15dd8eba58c4f107941c85972):
  mkdir -p $SHARED/models && curl -L -o $CKPT \\
    https://docs-assets.developer.apple.com/ml-research/datasets/mobileone/mobileone_s0.pth.tar
(the train-time form, mobileone_s0_unfused.pth.tar from the same place, works too), then run
./demo.sh again; MO_SHARED=/other/dir ./demo.sh reads DIR/models/mobileone_s0.pth.tar instead.
To convert any Apple checkpoint by hand:
  /usr/bin/python3 tools/convert_mobileone.py mobileone_s0.pth.tar $MODEL
MSG
    exit 1
fi
if [ ! -f "$MODEL" ] || [ "$CKPT" -nt "$MODEL" ]; then
    mkdir -p build/models
    /usr/bin/python3 tools/convert_mobileone.py "$CKPT" "$MODEL"
fi
build/apps/classify/mo-classify --model "$MODEL" --top 5 "$IMAGE"

# With detection and segmentation heads (trained heads go to weights/; MO_DET / MO_SEG
# name others): every head on one backbone pass, one composite picture per image.
DET=${MO_DET:-weights/ssdlite_s0.mo.safetensors}
SEG=${MO_SEG:-weights/deeplab_s0.mo.safetensors}
set --
[ -f "$DET" ] && set -- "$@" --det "$DET"
[ -f "$SEG" ] && set -- "$@" --seg "$SEG"
if [ $# -gt 0 ]; then
    # shellcheck disable=SC2086 # PHOTOS is a list of paths without spaces
    build/apps/demo/mo-demo --model "$MODEL" "$@" --out build/demo $PHOTOS
    echo "pictures (boxes, colour masks, top classes): build/demo/*.png"
else
    echo "(no head files at $DET / $SEG: see README, 'Multi-task pipeline', for mo-demo)"
fi
