#!/bin/sh
# Score a detection checkpoint (train_det.py) with the SDK's C tools: convert it to an fp16
# head file next to the backbone file, then `mo-eval coco` on the coco128 validation split
# (det_scenes.py split: the 32 held-out scenes; all choices are made on it) or, with
# SET=val2017, on coco-mini val2017 (score that once per candidate, at the end).
#
#   tools/train/score_det.sh CKPT.pth OUT.mo.safetensors [SCENES]   (SCENES: the split folder,
#                                                                   default build/det-scenes)
# Needs a meson build in build/ and build/models/mobileone_s0.mo.safetensors.
set -eu
CKPT=$1 HEADF=$2
cd "$(dirname "$0")/../.."
SCENES=${3:-build/det-scenes}
SHARED=${MO_SHARED:-$(cd .. && pwd)/shared}
MODEL=build/models/mobileone_s0.mo.safetensors
case "$CKPT" in
    *.safetensors) [ "$CKPT" = "$HEADF" ] || cp "$CKPT" "$HEADF" ;;
    *) nice /usr/bin/python3 tools/convert_ssdlite.py "$CKPT" "$HEADF" --backbone-file "$MODEL" \
           --fp16 > /dev/null ;;
esac
if [ "${SET:-split}" = val2017 ]; then
    GT=$SHARED/data/coco-mini/annotations/instances_val2017.json IMAGES=$SHARED/data/coco-mini/val2017
else
    GT=$SCENES/val_gt.json IMAGES=$SCENES/val_images
fi
nice build/apps/eval/mo-eval coco --gt "$GT" --model "$MODEL" --head "$HEADF" --images "$IMAGES" \
    ${PERCAT:+--per-category}
