#!/usr/bin/env python3
"""Speed of `mo-eval coco` against pycocotools' COCOeval on one large synthetic set.

Usage:
  /usr/bin/python3 bench/coco_bench.py --mo-eval build/apps/eval/mo-eval \\
      --pycocotools /path/to/cocoapi/PythonAPI [--images 5000] [--dets 100] [--work DIR]

Makes a seeded synthetic ground truth (N images, 80 categories, 1..15 objects each, a few
crowd regions) and a results file (D detections per image: jittered true boxes and random
boxes), then times the whole evaluation in each: pycocotools = COCO(gt) + loadRes +
evaluate + accumulate + summarize in this process; C = one `mo-eval coco` process (reading
both JSON files included). Checks that the 12 numbers are identical and prints
`C: x s, pycocotools: y s, ratio: z`. pycocotools is not part of the project: build it
outside the repository (see tools/coco_reference.py).
"""
import argparse
import contextlib
import io
import json
import os
import random
import subprocess
import sys
import tempfile
import time


def make(n_img, n_det, seed=0):
    r = random.Random(seed)
    cats = [{"id": c + 1 + c // 10, "name": "c%d" % c} for c in range(80)]
    images, anns, res = [], [], []
    aid = 1
    for i in range(n_img):
        W, H = 320 + int(r.random() * 320), 240 + int(r.random() * 240)
        images.append({"id": 1000 + 7 * i, "width": W, "height": H, "file_name": "%d.jpg" % i})
        objs = []
        for _ in range(1 + int(r.random() * 15)):
            w, h = 4 + r.random() * (W / 2), 4 + r.random() * (H / 2)
            x, y = r.random() * (W - w), r.random() * (H - h)
            crowd = int(r.random() < 0.02)
            b = [round(x, 2), round(y, 2), round(w, 2), round(h, 2)]
            a = {"id": aid, "image_id": 1000 + 7 * i, "category_id": cats[int(r.random() * 80)]["id"],
                 "bbox": b, "area": round(w * h * (0.5 + 0.5 * r.random()), 2), "iscrowd": crowd}
            anns.append(a)
            objs.append(a)
            aid += 1
        for k in range(n_det):
            if k < len(objs) * 3:
                o = objs[k % len(objs)]
                x, y, w, h = o["bbox"]
                s = 0.1 + 0.1 * (k // len(objs))
                b = [x + w * s * (2 * r.random() - 1), y + h * s * (2 * r.random() - 1),
                     w * (1 + s * (2 * r.random() - 1)), h * (1 + s * (2 * r.random() - 1))]
                cat = o["category_id"] if r.random() < 0.9 else cats[int(r.random() * 80)]["id"]
            else:
                w, h = 4 + r.random() * (W / 2), 4 + r.random() * (H / 2)
                b = [r.random() * (W - w), r.random() * (H - h), w, h]
                cat = cats[int(r.random() * 80)]["id"]
            res.append({"image_id": 1000 + 7 * i, "category_id": cat,
                        "bbox": [round(v, 2) for v in b], "score": round(r.random(), 4)})
    return {"images": images, "annotations": anns, "categories": cats}, res


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mo-eval", required=True)
    ap.add_argument("--pycocotools", required=True, help="folder holding pycocotools/")
    ap.add_argument("--images", type=int, default=5000)
    ap.add_argument("--dets", type=int, default=100)
    ap.add_argument("--work")
    a = ap.parse_args()
    work = a.work or tempfile.mkdtemp(prefix="mo_coco_bench_")
    os.makedirs(work, exist_ok=True)
    gt_path, res_path = os.path.join(work, "gt.json"), os.path.join(work, "results.json")
    gt, res = make(a.images, a.dets)
    with open(gt_path, "w") as f:
        json.dump(gt, f)
    with open(res_path, "w") as f:
        json.dump(res, f)
    print("%d images, %d categories, %d ground truth boxes, %d detections (%s)" %
          (len(gt["images"]), len(gt["categories"]), len(gt["annotations"]), len(res), work),
          file=sys.stderr)
    del gt, res

    out = os.path.join(work, "c.json")
    t0 = time.perf_counter()
    subprocess.run([a.mo_eval, "coco", "--gt", gt_path, "--results", res_path, "--json", out,
                    "--no-progress"], check=True, stdout=subprocess.DEVNULL)
    tc = time.perf_counter() - t0
    with open(out) as f:
        c_stats = json.load(f)["stats"]
    print("C done in %.2f s; running pycocotools..." % tc, file=sys.stderr)

    sys.path.insert(0, a.pycocotools)
    import numpy as np
    if not hasattr(np, "float"):
        np.float = float
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        cg = COCO(gt_path)
        cd = cg.loadRes(res_path)
        ev = COCOeval(cg, cd, "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    tp = time.perf_counter() - t0
    diff = max(abs(x - y) for x, y in zip(c_stats, ev.stats))
    print("stats: %s (max |C - pycocotools| = %.3g)" %
          ("identical" if list(map(float, ev.stats)) == c_stats else "differ", diff))
    print("C: %.2f s, pycocotools: %.2f s, ratio: %.1f" % (tc, tp, tp / tc))
    return 0 if diff <= 1e-6 else 1


if __name__ == "__main__":
    sys.exit(main())
