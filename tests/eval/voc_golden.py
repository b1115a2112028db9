#!/usr/bin/env python3
"""mo-eval voc against voc_reference.py (an independent NumPy voc_eval) on a VOCdevkit
fixture made from coco-mini (make_voc_fixture.py): per-class and mean AP, VOC2007
11-point and all-point, to 1e-12; 3 shards merged equal the single run; broken inputs
(XML without a box, malformed XML, unknown image in a results file) fail with the file
and line. Exit 77 (skip) with a message when the shared data or NumPy is absent.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mo-eval", required=True)
    ap.add_argument("--shared", required=True)
    ap.add_argument("--work", required=True)
    a = ap.parse_args()
    coco = os.path.join(a.shared, "data", "coco-mini")
    gt = os.path.join(coco, "annotations", "instances_val2017.json")
    if not os.path.exists(gt):
        print("SKIP: %s is absent (shared data, see README)" % gt)
        return 77
    try:
        import numpy  # noqa: F401 (voc_reference.py needs it)
    except ImportError as e:
        print("SKIP: %s (Debian python3-numpy: tools/install-deps.sh)" % e)
        return 77
    shutil.rmtree(a.work, ignore_errors=True)
    subprocess.run([sys.executable, os.path.join(HERE, "make_voc_fixture.py"), "--gt", gt,
                    "--images", os.path.join(coco, "val2017"), "--out", a.work], check=True)
    devkit = os.path.join(a.work, "VOC2007")
    det = os.path.join(a.work, "results", "comp4_det_val_{}.txt")
    p = run([sys.executable, os.path.join(HERE, "voc_reference.py"), "--devkit", devkit, "--set",
             "val", "--det", det], check=True)
    ref = json.loads(p.stdout)
    out = os.path.join(a.work, "c.json")
    p = run([a.mo_eval, "voc", "--devkit", devkit, "--set", "val", "--det", det, "--json", out])
    failed = []
    if p.returncode:
        print(p.stderr)
        return 1
    with open(out) as f:
        got = json.load(f)
    d = 0.0
    for g, r in zip(got["classes"], ref["classes"]):
        assert g["name"] == r["name"]
        d = max(d, abs(g["ap07"] - r["ap07"]), abs(g["ap"] - r["ap"]))
    d = max(d, abs(got["map07"] - ref["map07"]), abs(got["map"] - ref["map"]))
    print("VOC fixture (79 images, 20 classes): mAP(07) C %.6f ref %.6f, mAP C %.6f ref %.6f; "
          "max |C - reference| = %.3g" % (got["map07"], ref["map07"], got["map"], ref["map"], d))
    if not d <= 1e-12:
        failed.append("AP differs")
    states = []
    for s in range(3):
        st = os.path.join(a.work, "shard%d.state" % s)
        run([a.mo_eval, "voc", "--devkit", devkit, "--set", "val", "--det", det, "--shard",
             "%d/3" % s, "--state", st], check=True)
        states.append(st)
    mj = os.path.join(a.work, "merged.json")
    run([a.mo_eval, "merge", "--json", mj] + states, check=True)
    with open(mj) as f:
        if json.load(f) != got:
            failed.append("merged shards differ from the single run")
        else:
            print("3 shards merged: identical to the single run")
    # Broken inputs: the message names the file and the line.
    ids = open(os.path.join(devkit, "ImageSets", "Main", "val.txt")).read().split()
    xml = os.path.join(devkit, "Annotations", ids[0] + ".xml")
    good = open(xml).read()
    cases = [
        ("object without a box", good.replace("<bndbox>", "<box>").replace("</bndbox>", "</box>"),
         "without <bndbox>"),
        ("malformed XML", good.replace("</annotation>", "</annotatio>"), "invalid XML"),
    ]
    for what, text, expect in cases:
        with open(xml, "w") as f:
            f.write(text)
        p = run([a.mo_eval, "voc", "--devkit", devkit, "--set", "val", "--det", det])
        if p.returncode != 1 or expect not in p.stderr or xml + ":" not in p.stderr:
            failed.append("%s: exit %d, %r" % (what, p.returncode, p.stderr))
        else:
            print("%s refused: %s" % (what, p.stderr.strip()))
    with open(xml, "w") as f:
        f.write(good)
    bad = os.path.join(a.work, "bad_{}.txt")
    with open(bad.replace("{}", "person"), "w") as f:
        f.write("%s 0.5 1 1 10 10\nnot_an_image 0.4 1 1 10 10\n" % ids[0])
    p = run([a.mo_eval, "voc", "--devkit", devkit, "--set", "val", "--det", bad])
    if p.returncode != 1 or ":2: image 'not_an_image'" not in p.stderr:
        failed.append("unknown image: exit %d, %r" % (p.returncode, p.stderr))
    else:
        print("unknown image refused: " + p.stderr.strip())
    if failed:
        print("FAILED: " + "; ".join(failed))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
