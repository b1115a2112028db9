#!/usr/bin/env python3
"""Speed of the mo_eval Python package against pycocotools' COCOeval, in one process.

Usage:
  MO_EVAL_LIB=build/eval PYTHONPATH=python /usr/bin/python3 bench/pyeval_bench.py \\
      --pycocotools /path/to/cocoapi/PythonAPI [--images 5000] [--dets 100] [--work DIR]
      [--mo-eval build/apps/eval/mo-eval]

The synthetic set of bench/coco_bench.py (seeded: N images, 80 categories, D detections
per image). Both sides run what a training loop runs after its inference loop, from the
same inputs: the ground truth file and the detections as a list of result dicts in
memory. pycocotools: COCO(gt) + loadRes(list) + COCOeval + evaluate + accumulate +
summarize. mo_eval: the same with `from mo_eval import COCOeval` on that pycocotools COCO
pair (the one-line change), and again from the path and list directly. Checks that the
12 stats and eval['precision'] / ['recall'] are identical, prints the times and ratios.
With --mo-eval, also times the `mo-eval coco` process on the same set written to files.
"""
import argparse
import contextlib
import io
import json
import os
import subprocess
import sys
import tempfile
import time
import types

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from coco_bench import make  # noqa: E402 (the same synthetic set as the C benchmark)


def timed(f):
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        r = f()
    return r, time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pycocotools", required=True, help="folder holding pycocotools/")
    ap.add_argument("--images", type=int, default=5000)
    ap.add_argument("--dets", type=int, default=100)
    ap.add_argument("--work")
    ap.add_argument("--mo-eval", help="also time this mo-eval executable on the same set")
    a = ap.parse_args()
    import numpy as np
    import mo_eval
    sys.path.insert(0, a.pycocotools)
    if not hasattr(np, "float"):
        np.float = float
    try:
        import matplotlib  # noqa: F401 (pycocotools.coco imports it for drawing only)
    except ImportError:
        for n in ("matplotlib", "matplotlib.pyplot", "matplotlib.collections",
                  "matplotlib.patches"):
            m = types.ModuleType(n)
            m.PatchCollection = m.Polygon = None
            sys.modules[n] = m
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    work = a.work or tempfile.mkdtemp(prefix="mo_pyeval_bench_")
    os.makedirs(work, exist_ok=True)
    gt_path = os.path.join(work, "gt.json")
    gt, res = make(a.images, a.dets)
    with open(gt_path, "w") as f:
        json.dump(gt, f)
    print("%d images, %d categories, %d ground truth boxes, %d detections; mo_eval with %s" %
          (len(gt["images"]), len(gt["categories"]), len(gt["annotations"]), len(res),
           mo_eval.library_path()))
    del gt
    tc = None
    if a.mo_eval:
        res_path = os.path.join(work, "results.json")
        with open(res_path, "w") as f:
            json.dump(res, f)
        t0 = time.perf_counter()
        subprocess.run([a.mo_eval, "coco", "--gt", gt_path, "--results", res_path,
                        "--no-progress"], check=True, stdout=subprocess.DEVNULL)
        tc = time.perf_counter() - t0

    def pyco():
        cg = COCO(gt_path)
        cd = cg.loadRes(res)
        E = COCOeval(cg, cd, "bbox")
        E.evaluate()
        E.accumulate()
        E.summarize()
        return E, cg, cd

    def ours(g, d):
        def run():
            E = mo_eval.COCOeval(g, d, "bbox")
            E.evaluate()
            E.accumulate()
            E.summarize()
            return E
        return run

    (P, cg, cd), tp = timed(pyco)
    # The one-line change: the loop still builds pycocotools' COCO pair; only the
    # evaluation moves (COCO + loadRes are timed apart so the sides compare).
    (_, tload) = timed(lambda: COCO(gt_path).loadRes(res))
    M1, t1 = timed(ours(cg, cd))
    M2, t2 = timed(ours(gt_path, res))
    ok = True
    for name, M in (("COCO objects", M1), ("path + list", M2)):
        same = (np.array_equal(P.stats, M.stats) and
                all(np.array_equal(P.eval[k], M.eval[k]) for k in ("precision", "recall")))
        ok &= same
        print("mo_eval (%s): stats and arrays %s pycocotools'" %
              (name, "identical to" if same else "DIFFER from"))
    if not ok:
        print("max |stats difference| = %.3g" % max(
            float(np.max(np.abs(P.stats - M.stats))) for M in (M1, M2)))
    print("pycocotools: %.2f s (COCO + loadRes %.2f s, COCOeval %.2f s)" % (tp, tload, tp - tload))
    print("mo_eval on the COCO objects: %.2f s -> COCOeval part %.1fx faster, whole %.1fx" %
          (t1, (tp - tload) / t1, tp / (tload + t1)))
    print("mo_eval from path + list:    %.2f s -> %.1fx faster than pycocotools" % (t2, tp / t2))
    if tc is not None:
        print("mo-eval coco process (files): %.2f s" % tc)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
