#!/bin/sh
# Score a DeepLabV3 head with the SDK's own C tools: mo-segment on the 3 VOC samples and
# coco-mini val2017 (never trained on), then mo-eval seg against the label maps that
# `tflite_runner.py targets` writes (real VOC targets; COCO masks rasterized to VOC classes
# as the teacher was scored). Needs a meson build in build/ and ../shared (or MO_SHARED).
#
#   tools/train/score_seg.sh [HEAD] [BACKBONE]     (defaults: weights/deeplab_s0.mo.safetensors,
#                                                   build/models/mobileone_s0.mo.safetensors)
# Writes build/seg-eval/{student-voc,student-coco}/NAME.png and the mo-eval JSON next to them.
# RESIZE=N: run mo-segment --resize N (shorter side N before the network, masks still at
# the image size); outputs in student-{voc,coco}-rN.
set -eu
cd "$(dirname "$0")/../.."
HEAD=${1:-weights/deeplab_s0.mo.safetensors}
MODEL=${2:-build/models/mobileone_s0.mo.safetensors}
SHARED=${MO_SHARED:-$(cd .. && pwd)/shared}
OUT=build/seg-eval
SEG=build/apps/segment/mo-segment
EVAL=build/apps/eval/mo-eval
RESIZE=${RESIZE:-}
OPT= SUF=
[ -n "$RESIZE" ] && OPT="--resize $RESIZE" SUF="-r$RESIZE"
if [ ! -d $OUT/gt-voc ] || [ ! -d $OUT/gt-coco ]; then
    nice /usr/bin/python3 tools/train/tflite_runner.py targets --out $OUT
fi
for set in voc coco; do
    case $set in
        voc) IMAGES=$(ls "$SHARED"/data/voc2012-val-samples/*_image.png) ;;
        coco) IMAGES="$SHARED/data/coco-mini/val2017" ;;
    esac
    P=$OUT/student-$set$SUF
    rm -rf "$P" && mkdir -p "$P"
    # shellcheck disable=SC2086
    nice $SEG --model "$MODEL" --head "$HEAD" --out "$P" --mask-suffix '' $OPT \
        --no-overlay $IMAGES > /dev/null
    echo "== $set: $EVAL seg --gt $OUT/gt-$set --pred $P"
    $EVAL seg --gt $OUT/gt-$set --pred "$P" --json "$P.json"
done
