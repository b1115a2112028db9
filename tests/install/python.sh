#!/bin/sh
# Import the mo_eval Python package from the SDK installed under DESTDIR (meson install
# --destdir DESTDIR), with libmo_eval found through LD_LIBRARY_PATH, and evaluate a tiny
# set with it. Usage: python.sh DESTDIR
set -eu
destdir=$(cd "$1" && pwd)
pkg=$(find "$destdir" -type d -name mo_eval -path '*-packages/*' | head -n 1)
lib=$(find "$destdir" -name 'libmo_eval.so.*' | head -n 1)
[ -n "$pkg" ] || { echo "FAIL: no mo_eval package under $destdir" >&2; exit 1; }
[ -n "$lib" ] || { echo "FAIL: no libmo_eval under $destdir" >&2; exit 1; }
cd /   # nothing of the source tree on sys.path
env -u MO_EVAL_LIB PYTHONPATH="$(dirname "$pkg")" LD_LIBRARY_PATH="$(dirname "$lib")" \
    /usr/bin/python3 - "$destdir" <<'PY'
import sys
import mo_eval
from mo_eval import COCOeval
assert mo_eval.__file__.startswith(sys.argv[1]), mo_eval.__file__
gt = {"images": [{"id": 1}], "categories": [{"id": 3, "name": "c"}],
      "annotations": [{"id": 1, "image_id": 1, "category_id": 3, "bbox": [10, 10, 40, 40],
                       "area": 1600, "iscrowd": 0}]}
E = COCOeval(gt, [{"image_id": 1, "category_id": 3, "bbox": [10, 10, 40, 40], "score": .9}],
             "bbox")
E.evaluate(); E.accumulate(); E.summarize()
assert E.stats[8] == 1.0 and E.eval["precision"].shape == (10, 101, 1, 4, 3), E.stats
print("installed mo_eval OK: %s with %s" % (mo_eval.__file__, mo_eval.library_path()))
PY
