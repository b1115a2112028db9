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

A shorter run (test.sh's AArch64 step, under qemu): --sets imagenet-samples --limit 200
--min-agreement 1 --jobs 2 classifies the 200 images of imagenet-samples (and the committed
vectors) with the same rules, plus a top-1 agreement of 100%. A cross-built mo-classify runs through
MESON_EXE_WRAPPER (set by meson test, e.g. qemu-aarch64).

  imagenet_parity.py --classify build/apps/classify/mo-classify --shared ../shared \
      --work build/parity [--report build/parity/report.json] \
      [--sets NAME,...] [--limit N] [--min-agreement A] [--jobs J]
"""
import argparse
import concurrent.futures
import json
import os
import shlex
import subprocess
import sys
import time

WRAPPER = shlex.split(os.environ.get("MESON_EXE_WRAPPER", ""))
TOOLS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools")
sys.path.append(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import quick  # noqa: E402  (tests/quick.py: MO_TEST_QUICK)
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


def run_c(classify, model, paths, jobs=1):
    """mo-classify --json over all paths, in chunks (short command lines), jobs at a time."""
    size = min(400, -(-len(paths) // jobs))

    def chunk(i):
        p = subprocess.run(WRAPPER + [classify, "--model", model, "--top", "5", "--json"]
                           + paths[i:i + size], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True)
        if p.returncode not in (0, 1):
            sys.exit("mo-classify failed (%d): %s" % (p.returncode, p.stderr))
        return json.loads(p.stdout)
    with concurrent.futures.ThreadPoolExecutor(jobs) as ex:
        return [x for part in ex.map(chunk, range(0, len(paths), size)) for x in part]


def run_ref(labels, work, name, limit=None):
    """The reference on the list, or on its first `limit` images (a list file of those)."""
    dst = os.path.join(work, name + ".ref.jsonl")
    root = os.path.dirname(os.path.abspath(labels))
    if limit is not None:
        with open(labels, encoding="utf-8") as f:
            lines = [line for line in f if line.strip()][:limit]
        labels = os.path.join(work, name + ".first%d.txt" % limit)
        with open(labels, "w", encoding="utf-8") as f:
            f.writelines(lines)
    subprocess.run([sys.executable, os.path.join(TOOLS, "ref_classify.py"), "--list", labels,
                    "--root", root, "--out", dst], check=True, stderr=subprocess.DEVNULL)
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
    ap.add_argument("--sets", help="comma-separated: only these sets (default: all)")
    ap.add_argument("--limit", type=int, help="only the first N images of each set")
    ap.add_argument("--jobs", type=int, default=1,
                    help="mo-classify processes at a time (e.g. 2 under qemu, one per core)")
    ap.add_argument("--min-agreement", type=float,
                    help="top-1 agreement required on every set (default: per set, above)")
    a = ap.parse_args()
    if quick.on() and a.sets is None and a.limit is None:  # AArch64 under qemu
        a.sets, a.limit, a.min_agreement, a.jobs = "imagenet-samples", 10, 1.0, max(a.jobs, 2)
        quick.note("imagenet-parity", "the first 10 images of imagenet-samples (and the "
                   "committed vectors) with top-1 agreement 100%, --jobs 2; the 1300 "
                   "val images skipped",
                   "meson test -C BUILD imagenet-parity --test-args \"--sets imagenet-samples "
                   "--limit 200 --min-agreement 1 --jobs 2\" (all 200 under qemu), or without "
                   "MO_TEST_QUICK for both sets")
    names = [x[0] for x in SETS]
    if a.sets and not set(a.sets.split(",")) <= set(names):
        ap.error("--sets: choose from %s" % ",".join(names))
    if a.limit is not None and a.limit < 1:
        ap.error("--limit must be positive")
    if a.jobs < 1:
        ap.error("--jobs must be positive")
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
        if a.sets and name not in a.sets.split(","):
            continue
        if a.min_agreement is not None:
            min_agree = a.min_agreement
        labels = os.path.join(a.shared, rel)
        items = read_labels(labels)
        if a.limit is not None and a.limit < len(items):
            items = items[:a.limit]
        root = os.path.dirname(labels)
        paths = [os.path.join(root, n) if os.path.exists(os.path.join(root, n))
                 else os.path.join(root, "images", n) for n, _ in items]
        t0 = time.time()
        c = run_c(a.classify, model, paths, a.jobs)
        tc = time.time() - t0
        t0 = time.time()
        r = run_ref(labels, a.work, name, a.limit)[:len(items)]
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
