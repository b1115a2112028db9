#!/usr/bin/env python3
"""mo-eval coco against pycocotools' numbers (tests/eval/coco_reference.json).

Generates the fixtures with make_coco_fixtures.py (checking their SHA-256 against the
reference), runs `mo-eval coco --json` on each, and compares the 12 stats and every
per-category AP / AP50 / AP75 (tolerance 1e-6; the maximum difference is printed) and the
summary lines (text equality). Then evaluates one fixture in 3 shards and checks that
`mo-eval merge` gives bit-identical JSON to the single run.
Exit 77 (skip) with a message when the shared data is absent.
"""
import argparse
import hashlib
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mo-eval", required=True)
    ap.add_argument("--shared", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--reference", default=os.path.join(HERE, "coco_reference.json"))
    a = ap.parse_args()
    with open(a.reference) as f:
        ref = json.load(f)
    gt = os.path.join(a.shared, "data", ref["gt"])
    if not os.path.exists(gt):
        print("SKIP: %s is absent (shared data, see README)" % gt)
        return 77
    fx = os.path.join(a.work, "fixtures")
    subprocess.run([sys.executable, os.path.join(HERE, "make_coco_fixtures.py"), "--gt", gt,
                    "--out", fx], check=True)
    worst, failed = 0.0, []
    for name, r in sorted(ref["fixtures"].items()):
        path = os.path.join(fx, name + ".json")
        with open(path, "rb") as f:
            if hashlib.sha256(f.read()).hexdigest() != r["sha256"]:
                failed.append("%s: fixture differs from the one of the reference" % name)
                continue
        out = os.path.join(a.work, name + ".out.json")
        p = subprocess.run([a.mo_eval, "coco", "--gt", gt, "--results", path, "--json", out],
                           capture_output=True, text=True)
        if p.returncode:
            failed.append("%s: mo-eval failed: %s" % (name, p.stderr.strip()))
            continue
        with open(out) as f:
            got = json.load(f)
        d = max(abs(x - y) for x, y in zip(got["stats"], r["stats"]))
        for c in got["categories"]:
            want = r["categories"][str(c["id"])]
            d = max(d, abs(c["AP"] - want[0]), abs(c["AP50"] - want[1]), abs(c["AP75"] - want[2]))
        lines = [l for l in p.stdout.splitlines() if l.startswith(" Average")]
        same_text = lines == r["summary"]
        exact = got["stats"] == r["stats"]
        print("%-12s max |C - pycocotools| = %.3g%s%s" % (
            name, d, " (bit-identical stats)" if exact else "",
            "" if same_text else "  SUMMARY TEXT DIFFERS"))
        worst = max(worst, d)
        if d > 1e-6 or not same_text:
            failed.append(name)
    # Shards merged = single run.
    name = "perturbed"
    single = os.path.join(a.work, name + ".out.json")
    states = []
    for i in range(3):
        st = os.path.join(a.work, "shard%d.state" % i)
        subprocess.run([a.mo_eval, "coco", "--gt", gt, "--results", os.path.join(fx, name + ".json"),
                        "--shard", "%d/3" % i, "--state", st], check=True)
        states.append(st)
    merged = os.path.join(a.work, "merged.json")
    subprocess.run([a.mo_eval, "merge", "--json", merged] + states[::-1], check=True,
                   capture_output=True)
    with open(single) as f1, open(merged) as f2:
        if json.load(f1) != json.load(f2):
            failed.append("merge of 3 shards differs from the single run")
        else:
            print("3 shards merged: identical to the single run")
    print("max |C - pycocotools| over all fixtures: %.3g" % worst)
    if failed:
        print("FAILED: " + "; ".join(failed))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
