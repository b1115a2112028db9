#!/usr/bin/python3
"""C classification (mo-classify) against the PyTorch reference on real images.

Converts Apple's MobileOne-S0 checkpoint, classifies every image of imagenet-val1300 and
imagenet-samples with both, and fails when
  - C and PyTorch top-1 agree on fewer than 99.5% of the 1300 val images, or
  - they disagree on any of the 200 samples whose reference top-2 margin exceeds 0.02.
It also checks the committed vectors tests/data/reference_top5.jsonl (reference top-5 and
top-2 probabilities on five images, made by `tools/ref_classify.py IMAGES` with the real S0
weights): the regenerated reference and the C app must both still give them, so a drift in
Debian's torch/torchvision or in tools/ fails as loudly as a C regression.
Prints both models' top-1/top-5 accuracy and the agreement, and writes them as JSON
(--report). Exits 77 (meson's skip) with a message when ../shared is absent.

  imagenet_parity.py --classify build/apps/classify/mo-classify --shared ../shared \
      --work build/parity [--report build/parity/report.json]
"""
import argparse
import json
import os
import subprocess
import sys
import time

TOOLS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools")
SETS = [  # (name, labels file, min top-1 agreement, margin rule)
    ("imagenet-val1300", "data/imagenet-val1300/labels.txt", 0.995, False),
    ("imagenet-samples", "data/imagenet-samples/labels.txt", None, True),
]


def read_labels(path):
    items = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\r\n")
            if line.strip():
                name, label = line.split("\t", 1) if "\t" in line else line.rsplit(None, 1)
                items.append((name.strip(), int(label)))
    return items


def run_c(classify, model, paths):
    """mo-classify --json over all paths (in chunks to keep command lines short)."""
    out = []
    for i in range(0, len(paths), 400):
        p = subprocess.run([classify, "--model", model, "--top", "5", "--json"] + paths[i:i + 400],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if p.returncode not in (0, 1):
            sys.exit("mo-classify failed (%d): %s" % (p.returncode, p.stderr))
        out += json.loads(p.stdout)
    return out


def run_ref(labels, work, name):
    dst = os.path.join(work, name + ".ref.jsonl")
    subprocess.run([sys.executable, os.path.join(TOOLS, "ref_classify.py"), "--list", labels,
                    "--out", dst], check=True, stderr=subprocess.DEVNULL)
    with open(dst) as f:
        return [json.loads(line) for line in f]


def check_committed(a, model):
    """C and the regenerated reference against the committed top-5 vectors."""
    committed_path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data",
                                  "reference_top5.jsonl")
    with open(committed_path) as f:
        committed = [json.loads(line) for line in f]
    paths = [os.path.join(a.shared, x["image"]) for x in committed]
    ref = subprocess.run([sys.executable, os.path.join(TOOLS, "ref_classify.py")] + paths,
                         check=True, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    ref = [json.loads(line) for line in ref.stdout.splitlines()]
    c = run_c(a.classify, model, paths)
    ok = True
    for want, r, got in zip(committed, ref, c):
        c_top = [t["class"] for t in got.get("top", [])]
        c_p = [t["prob"] for t in got.get("top", [])][:2]
        problems = []
        if r["top5"] != want["top5"] or max(abs(x - y) for x, y in
                                            zip(r["probs_top2"], want["probs_top2"])) > 1e-5:
            problems.append("reference drifted: %s %s" % (r["top5"], r["probs_top2"]))
        if c_top != want["top5"] or max(abs(x - y) for x, y in zip(c_p, want["probs_top2"])) > 1e-5:
            problems.append("C differs: %s %s" % (c_top, c_p))
        for pr in problems:
            print("FAIL committed vector %s: %s (committed %s %s)" % (
                want["image"], pr, want["top5"], want["probs_top2"]))
        ok &= not problems
    print("committed vectors: %d images, %s" % (len(committed), "all equal" if ok else "MISMATCH"))
    return ok


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--classify", required=True)
    ap.add_argument("--shared", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--report")
    a = ap.parse_args()
    ckpt = os.path.join(a.shared, "models", "mobileone_s0.pth.tar")
    if not os.path.exists(ckpt):
        print("SKIP: %s absent (see README: obtaining the shared data)" % ckpt)
        return 77
    os.makedirs(a.work, exist_ok=True)
    model = os.path.join(a.work, "mobileone_s0.mo.safetensors")
    subprocess.run([sys.executable, os.path.join(TOOLS, "convert_mobileone.py"), ckpt, model],
                   check=True, stdout=subprocess.DEVNULL)
    report, ok = {}, True
    ok &= check_committed(a, model)
    for name, rel, min_agree, margin_rule in SETS:
        labels = os.path.join(a.shared, rel)
        items = read_labels(labels)
        root = os.path.dirname(labels)
        paths = [os.path.join(root, n) if os.path.exists(os.path.join(root, n))
                 else os.path.join(root, "images", n) for n, _ in items]
        t0 = time.time()
        c = run_c(a.classify, model, paths)
        tc = time.time() - t0
        t0 = time.time()
        r = run_ref(labels, a.work, name)
        tr = time.time() - t0
        assert len(c) == len(r) == len(items), "result counts differ"
        n = len(items)
        errors = [x for x in c if "error" in x]
        stats = {"images": n, "c_errors": len(errors), "c_seconds": round(tc, 1),
                 "ref_seconds": round(tr, 1)}
        agree = sum(1 for x, y in zip(c, r) if "top" in x and x["top"][0]["class"] == y["top5"][0])
        stats["top1_agreement"] = agree / n
        for who, tops in (("c", [[t["class"] for t in x.get("top", [])] for x in c]),
                          ("ref", [y["top5"] for y in r])):
            stats[who + "_top1"] = sum(t[:1] == [lab] for t, (_, lab) in zip(tops, items)) / n
            stats[who + "_top5"] = sum(lab in t[:5] for t, (_, lab) in zip(tops, items)) / n
        stats["max_top1_prob_diff"] = max(
            (abs(x["top"][0]["prob"] - y["probs_top2"][0]) for x, y in zip(c, r)
             if "top" in x and x["top"][0]["class"] == y["top5"][0]), default=0.0)
        failed = []
        if errors:
            failed.append("%d images failed in C: %s" % (len(errors), errors[0]))
        if min_agree is not None and stats["top1_agreement"] < min_agree:
            failed.append("top-1 agreement %.4f < %.3f" % (stats["top1_agreement"], min_agree))
        if margin_rule:
            clear = [(x, y) for x, y in zip(c, r) if y["probs_top2"][0] - y["probs_top2"][1] > 0.02]
            bad = [y["image"] for x, y in clear
                   if "top" not in x or x["top"][0]["class"] != y["top5"][0]]
            stats["clear_margin_images"] = len(clear)
            stats["clear_margin_disagreements"] = len(bad)
            if bad:
                failed.append("disagree on clear-margin images: %s" % bad[:5])
        print("%s: %s" % (name, json.dumps(stats)))
        for f in failed:
            print("FAIL %s: %s" % (name, f))
        ok &= not failed
        report[name] = stats
    if a.report:
        with open(a.report, "w") as f:
            json.dump(report, f, indent=1)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
