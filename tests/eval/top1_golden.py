#!/usr/bin/env python3
"""mo-eval top1 on ../shared/data/imagenet-samples with the real MobileOne-S0 weights:
--model mode against the PyTorch reference counts (top1_reference.json), and --pred mode
on mo-classify --json output against counts made here from that output.
Exit 77 (skip) with a message when the shared data is absent.
"""
import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
TOOLS = os.path.join(HERE, "..", "..", "tools")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mo-eval", required=True)
    ap.add_argument("--classify", required=True)
    ap.add_argument("--shared", required=True)
    ap.add_argument("--work", required=True)
    a = ap.parse_args()
    ckpt = os.path.join(a.shared, "models", "mobileone_s0.pth.tar")
    data = os.path.join(a.shared, "data", "imagenet-samples")
    for p in (ckpt, data):
        if not os.path.exists(p):
            print("SKIP: %s is absent (shared data, see README)" % p)
            return 77
    os.makedirs(a.work, exist_ok=True)
    model = os.path.join(a.work, "mobileone_s0.mo.safetensors")
    if not os.path.exists(model):
        subprocess.run([sys.executable, os.path.join(TOOLS, "convert_mobileone.py"), ckpt, model],
                       check=True, stdout=subprocess.DEVNULL)
    with open(os.path.join(HERE, "top1_reference.json")) as f:
        ref = json.load(f)
    out = os.path.join(a.work, "model.json")
    subprocess.run([a.mo_eval, "top1", "--model", model, "--list", os.path.join(data, "labels.txt"),
                    "--root", data, "--json", out], check=True)
    with open(out) as f:
        got = json.load(f)
    failed = []
    print("--model: %d images, top-1 %d, top-5 %d (PyTorch reference: %d, %d)" %
          (got["images"], got["correct1"], got["correct5"], ref["correct1"], ref["correct5"]))
    if (got["images"], got["correct1"], got["correct5"]) != (ref["images"], ref["correct1"],
                                                             ref["correct5"]):
        failed.append("--model counts differ from the PyTorch reference")
    # --pred on mo-classify --json output of the first 40 images.
    lines = [l for l in open(os.path.join(data, "labels.txt")) if l.strip()][:40]
    sub = os.path.join(a.work, "labels40.txt")
    with open(sub, "w") as f:
        f.writelines(lines)
    files = [l.rsplit("\t", 1)[0] for l in lines]
    labels = [int(l.rsplit("\t", 1)[1]) for l in lines]
    p = subprocess.run([a.classify, "--model", model, "--top", "5", "--json"] +
                       [os.path.join(data, x) for x in files], check=True, capture_output=True,
                       text=True)
    pred = json.loads(p.stdout)
    pj = os.path.join(a.work, "pred.json")
    with open(pj, "w") as f:
        json.dump(pred, f)
    c1 = sum(e["top"][0]["class"] == y for e, y in zip(pred, labels))
    c5 = sum(y in [t["class"] for t in e["top"]] for e, y in zip(pred, labels))
    out = os.path.join(a.work, "pred_result.json")
    subprocess.run([a.mo_eval, "top1", "--pred", pj, "--list", sub, "--root", data, "--json", out],
                   check=True)
    with open(out) as f:
        got = json.load(f)
    print("--pred: 40 images, top-1 %d, top-5 %d (counted from mo-classify: %d, %d)" %
          (got["correct1"], got["correct5"], c1, c5))
    if (got["images"], got["correct1"], got["correct5"]) != (40, c1, c5):
        failed.append("--pred counts differ")
    if failed:
        print("FAILED: " + "; ".join(failed))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
