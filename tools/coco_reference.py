#!/usr/bin/env python3
"""Reference numbers of pycocotools' COCOeval (bbox) for COCO results files.

pycocotools is not part of the project: build it outside the repository from its public
source (cocodataset/cocoapi, PythonAPI) with Debian's cython3 and python3-numpy:
    cd cocoapi/PythonAPI && /usr/bin/python3 setup.py build_ext --inplace
then point --pycocotools at that PythonAPI folder.

Usage:
  coco_reference.py --pycocotools DIR --gt instances.json --results a.json b.json ...
      [--out reference.json] [--label-gt PATH]
Prints, and writes with --out, JSON: per results file (by base name without .json) its
SHA-256, the 12 stats, and per-category AP (mean of precision[:, :, k, area all,
maxDets 100] over the values > -1, as detectron2 reports it), AP50 and AP75.
"""
import argparse
import contextlib
import hashlib
import io
import json
import os
import sys
import time


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pycocotools", required=True, help="folder holding pycocotools/")
    ap.add_argument("--gt", required=True)
    ap.add_argument("--results", nargs="+", required=True)
    ap.add_argument("--out")
    ap.add_argument("--label-gt", help="ground truth path to record (default: --gt)")
    a = ap.parse_args()
    sys.path.insert(0, a.pycocotools)
    import numpy as np
    if not hasattr(np, "float"):  # pycocotools' accumulate() uses np.float (numpy < 1.24)
        np.float = float
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(a.gt)
    out = {"command": " ".join(["/usr/bin/python3"] + sys.argv), "gt": a.label_gt or a.gt,
           "fixtures": {}}
    for path in a.results:
        name = os.path.basename(path)[:-5] if path.endswith(".json") else os.path.basename(path)
        with open(path, "rb") as f:
            sha = hashlib.sha256(f.read()).hexdigest()
        t0 = time.time()
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            dt = gt.loadRes(path)
            ev = COCOeval(gt, dt, "bbox")
            ev.evaluate()
            ev.accumulate()
            ev.summarize()
        p = ev.eval["precision"]
        cats = {}
        for k, cid in enumerate(ev.params.catIds):
            v = []
            for t in (slice(None), slice(0, 1), slice(5, 6)):
                s = p[t, :, k, 0, -1]
                s = s[s > -1]
                v.append(float(np.mean(s)) if s.size else -1.0)
            cats[str(cid)] = v
        summary = [l for l in buf.getvalue().splitlines() if l.startswith(" Average")]
        out["fixtures"][name] = {"sha256": sha, "stats": [float(x) for x in ev.stats],
                                 "summary": summary, "categories": cats,
                                 "seconds": round(time.time() - t0, 3)}
        print("%-12s AP %.6f  AP50 %.6f  AR100 %.6f  (%.2f s)" %
              (name, ev.stats[0], ev.stats[1], ev.stats[8], time.time() - t0), file=sys.stderr)
    text = json.dumps(out, indent=1)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text + "\n")
    else:
        print(text)


if __name__ == "__main__":
    main()
