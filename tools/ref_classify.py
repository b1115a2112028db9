#!/usr/bin/python3
"""Classify images with the PyTorch reference and the real S0 checkpoint.

Why this exists: the C classify app is compared image by image with this reference
(same checkpoint, torchvision preprocessing: Resize 256 antialiased, CenterCrop 224,
ImageNet normalization). Output is one JSON line per image, in input order:
  {"image": NAME, "top5": [i, ...], "probs_top2": [p1, p2]}   (+ "label" when known)
Images run in batches of 25, so the 1300 images of
imagenet-val1300 take about 10 s on 2 cores with a warm disk cache (~50 s cold).

  ref_classify.py IMAGE...                      # names as given
  ref_classify.py --list ../shared/data/imagenet-val1300/labels.txt --out ref.jsonl
  ref_classify.py --list ../shared/data/imagenet-samples/labels.txt
A labels file has `file class` (space) or `file<TAB>class` lines; images are looked up
next to it or in its images/ folder. Accuracy and timing go to stderr.
"""

import argparse
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mobileone_ref as ref  # noqa: E402

_SHARED = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                        "..", "..", "shared"))


def read_labels(path):
    """[(file, class)] from `file class` or `file<TAB>class` lines (names may have spaces)."""
    items = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            name, label = line.split("\t", 1) if "\t" in line else line.rsplit(None, 1)
            items.append((name.strip(), int(label)))
    return items


def _resolve(root, name):
    for cand in (os.path.join(root, name), os.path.join(root, "images", name)):
        if os.path.exists(cand):
            return cand
    raise FileNotFoundError("%s not found in %s or %s/images" % (name, root, root))


class _Images(torch.utils.data.Dataset):
    def __init__(self, paths):
        self.paths = paths

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        return ref.preprocess(self.paths[i])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("images", nargs="*", help="image files (or use --list)")
    ap.add_argument("--list", help="labels file: `file class` or `file<TAB>class` lines")
    ap.add_argument("--root", help="image folder for --list (default: the list's folder)")
    ap.add_argument("--checkpoint", default=os.path.join(_SHARED, "models", "mobileone_s0.pth.tar"))
    ap.add_argument("--variant", help="default: inferred from the checkpoint")
    ap.add_argument("--out", help="write JSON lines here (default: stdout)")
    ap.add_argument("--batch", type=int, default=25)
    ap.add_argument("--workers", type=int, default=0,
                    help="decoding processes (0: decode in-process; fastest on 2 cores)")
    args = ap.parse_args(argv)

    if args.list:
        root = args.root or os.path.dirname(os.path.abspath(args.list))
        items = read_labels(args.list)
        names = [n for n, _ in items]
        labels = [c for _, c in items]
        paths = [_resolve(root, n) for n in names]
    elif args.images:
        names = paths = list(args.images)
        labels = [None] * len(paths)
    else:
        ap.error("give images or --list")

    torch.set_num_threads(max(torch.get_num_threads(), len(os.sched_getaffinity(0))))
    model = ref.from_state_dict(ref.load_checkpoint(args.checkpoint), args.variant)
    loader = torch.utils.data.DataLoader(_Images(paths), batch_size=args.batch,
                                         num_workers=args.workers)
    out = open(args.out, "w", encoding="utf-8") if args.out else sys.stdout
    t0 = time.time()
    n = top1 = top5 = 0
    try:
        with torch.no_grad():
            for batch in loader:
                probs = torch.softmax(model(batch)["logits"].double(), dim=1)
                p, idx = torch.topk(probs, 5, dim=1)
                for j in range(batch.shape[0]):
                    rec = {"image": names[n], "top5": idx[j].tolist(),
                           "probs_top2": [round(float(p[j, 0]), 6), round(float(p[j, 1]), 6)]}
                    if labels[n] is not None:
                        rec["label"] = labels[n]
                        top1 += labels[n] == rec["top5"][0]
                        top5 += labels[n] in rec["top5"]
                    out.write(json.dumps(rec) + "\n")
                    n += 1
    finally:
        if out is not sys.stdout:
            out.close()
    dt = time.time() - t0
    msg = "%d images in %.1f s (%.1f ms/image)" % (n, dt, 1000.0 * dt / max(n, 1))
    if n and labels[0] is not None:
        msg += ", top-1 %.2f%%, top-5 %.2f%%" % (100.0 * top1 / n, 100.0 * top5 / n)
    print(msg, file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
