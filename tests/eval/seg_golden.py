#!/usr/bin/env python3
"""mo-eval seg against a NumPy reference of the dataset-wide confusion matrix metrics.

Two sets, label PNGs written under --work:
  voc   the 3 Pascal VOC samples: ground truth = the palette-coloured RGB targets as they
        are (boundaries 255), predictions = the targets shifted, with blocks relabelled
        (indexed PNGs, 21 classes)
  coco  label maps rasterized from the coco-mini val2017 polygons (category index 1..80 in
        id order, 0 background; crowd RLE regions = 255 ignore), predictions = the maps
        shifted, objects relabelled or dropped, noise blocks (81 classes)
For each: confusion matrix (exact), IoU per class, mIoU, pixel accuracy and mean class
accuracy (np.nanmean) must match to 1e-12; then 2 shards merged must equal the single
run; a prediction of the wrong size must fail with both file names.
Exit 77 (skip) with a message when the shared data, NumPy or Pillow is absent.
"""
import argparse
import json
import os
import subprocess
import sys

try:
    import numpy as np
    from PIL import Image, ImageDraw
except ImportError as e:  # a counted skip (77), never a silent pass
    print("SKIP: %s (Debian python3-numpy python3-pil: tools/install-deps.sh)" % e)
    sys.exit(77)


def voc_palette():
    pal = np.zeros((256, 3), np.uint8)
    for i in range(256):
        c, r, g, b = i, 0, 0, 0
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        pal[i] = (r, g, b)
    return pal


PAL = voc_palette()


def read_labels(path):
    im = Image.open(path)
    if im.mode in ("P", "L"):
        return np.array(im)
    rgb = np.array(im.convert("RGB")).astype(np.int64)
    key = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
    pk = (PAL[:, 0].astype(np.int64) << 16) | (PAL[:, 1].astype(np.int64) << 8) | PAL[:, 2]
    lut = {int(k): i for i, k in reversed(list(enumerate(pk)))}
    out = np.vectorize(lambda k: lut[int(k)], otypes=[np.uint8])(key)
    return out


def save_indexed(labels, path):
    im = Image.fromarray(labels.astype(np.uint8), mode="P")
    im.putpalette(PAL.reshape(-1).tolist())
    im.save(path)


def perturb(gt, k, rng):
    p = gt.copy()
    p = np.roll(p, (int(rng.integers(-6, 7)), int(rng.integers(-6, 7))), axis=(0, 1))
    h, w = p.shape
    for _ in range(4):
        y, x = int(rng.integers(0, h)), int(rng.integers(0, w))
        p[y:y + int(rng.integers(5, h // 6 + 6)), x:x + int(rng.integers(5, w // 6 + 6))] = \
            int(rng.integers(0, k))
    present = [v for v in np.unique(p) if v not in (0, 255)]
    for v in present:
        r = rng.random()
        if r < 0.15:
            p[p == v] = 0
        elif r < 0.3:
            p[p == v] = int(rng.integers(0, k))
    p[p == 255] = 0
    noise = rng.random(p.shape) < 0.01
    p[noise] = rng.integers(0, k, size=int(noise.sum()))
    return p.astype(np.uint8)


def reference(pairs, k, ignore=255):
    cm = np.zeros((k, k), np.int64)
    for g, p in pairs:
        g, p = read_labels(g).astype(np.int64), read_labels(p).astype(np.int64)
        m = g != ignore
        cm += np.bincount(g[m] * k + p[m], minlength=k * k).reshape(k, k)
    diag = np.diag(cm)
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = diag / (cm.sum(1) + cm.sum(0) - diag)
        acc = diag / cm.sum(1)
    return {"confusion": cm.tolist(), "iou": iou, "acc": acc, "miou": np.nanmean(iou),
            "pixel_acc": diag.sum() / cm.sum(), "mean_class_acc": np.nanmean(acc)}


def make_voc(shared, out, rng):
    src = os.path.join(shared, "data", "voc2012-val-samples")
    ids = sorted(f[:-11] for f in os.listdir(src) if f.endswith("_target.png"))
    for d in ("gt", "pred"):
        os.makedirs(os.path.join(out, d), exist_ok=True)
    for i in ids:
        g = os.path.join(out, "gt", i + ".png")
        if not os.path.lexists(g):
            os.symlink(os.path.join(src, i + "_target.png"), g)
        save_indexed(perturb(read_labels(g), 21, rng), os.path.join(out, "pred", i + ".png"))
    return ids, 21


def make_coco(shared, out, rng):
    with open(os.path.join(shared, "data", "coco-mini", "annotations", "instances_val2017.json")) as f:
        gt = json.load(f)
    cat_index = {c: i + 1 for i, c in enumerate(sorted(c["id"] for c in gt["categories"]))}
    by_img = {}
    for a in gt["annotations"]:
        by_img.setdefault(a["image_id"], []).append(a)
    for d in ("gt", "pred"):
        os.makedirs(os.path.join(out, d), exist_ok=True)
    ids = []
    for im in sorted(gt["images"], key=lambda i: i["id"]):
        w, h = im["width"], im["height"]
        canvas = Image.new("L", (w, h), 0)
        draw = ImageDraw.Draw(canvas)
        crowd = np.zeros((h, w), bool)
        for a in sorted(by_img.get(im["id"], []), key=lambda a: -a["area"]):
            seg = a["segmentation"]
            if isinstance(seg, list):
                for poly in seg:
                    if len(poly) >= 6:
                        draw.polygon([(poly[j], poly[j + 1]) for j in range(0, len(poly), 2)],
                                     fill=cat_index[a["category_id"]])
            elif isinstance(seg["counts"], list):  # uncompressed RLE, column-major
                flat = np.zeros(seg["size"][0] * seg["size"][1], bool)
                pos, val = 0, False
                for c in seg["counts"]:
                    flat[pos:pos + c] = val
                    pos, val = pos + c, not val
                crowd |= flat.reshape(seg["size"][1], seg["size"][0]).T
        labels = np.array(canvas)
        labels[crowd] = 255
        stem = str(im["id"])
        ids.append(stem)
        save_indexed(labels, os.path.join(out, "gt", stem + ".png"))
        save_indexed(perturb(labels, 81, rng), os.path.join(out, "pred", stem + ".png"))
    return ids, 81


def compare(name, got, ref):
    if got["confusion"] != ref["confusion"]:
        return float("inf")
    d = 0.0
    for key in ("iou", "acc"):
        for g, r in zip(got[key], ref[key]):
            if (g is None) != bool(np.isnan(r)):
                return float("inf")
            if g is not None:
                d = max(d, abs(g - r))
    for key in ("miou", "pixel_acc", "mean_class_acc"):
        d = max(d, abs(got[key] - float(ref[key])))
    return d


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mo-eval", required=True)
    ap.add_argument("--shared", required=True)
    ap.add_argument("--work", required=True)
    a = ap.parse_args()
    need = [os.path.join(a.shared, "data", "voc2012-val-samples"),
            os.path.join(a.shared, "data", "coco-mini", "annotations", "instances_val2017.json")]
    for p in need:
        if not os.path.exists(p):
            print("SKIP: %s is absent (shared data, see README)" % p)
            return 77
    failed = []
    rng = np.random.default_rng(5)
    for name, make in (("voc", make_voc), ("coco", make_coco)):
        out = os.path.join(a.work, name)
        ids, k = make(a.shared, out, rng)
        ref = reference([(os.path.join(out, "gt", i + ".png"), os.path.join(out, "pred", i + ".png"))
                         for i in ids], k)
        js = os.path.join(out, "result.json")
        p = subprocess.run([a.mo_eval, "seg", "--gt", os.path.join(out, "gt"), "--pred",
                            os.path.join(out, "pred"), "--classes", str(k), "--json", js],
                           capture_output=True, text=True)
        if p.returncode:
            failed.append("%s: mo-eval failed: %s" % (name, p.stderr.strip()))
            continue
        with open(js) as f:
            got = json.load(f)
        d = compare(name, got, ref)
        print("%-5s %2d images, %d classes: mIoU %.6f (NumPy %.6f), pixel acc %.6f, "
              "mean class acc %.6f; max |C - NumPy| = %.3g" %
              (name, len(ids), k, got["miou"], ref["miou"], got["pixel_acc"],
               got["mean_class_acc"], d))
        if not d <= 1e-12:
            failed.append(name)
        # Shards merged = single run.
        states = []
        for s in range(2):
            st = os.path.join(out, "shard%d.state" % s)
            subprocess.run([a.mo_eval, "seg", "--gt", os.path.join(out, "gt"), "--pred",
                            os.path.join(out, "pred"), "--classes", str(k), "--shard",
                            "%d/2" % s, "--state", st], check=True)
            states.append(st)
        mj = os.path.join(out, "merged.json")
        subprocess.run([a.mo_eval, "merge", "--json", mj] + states, check=True,
                       capture_output=True)
        with open(mj) as f:
            if json.load(f) != got:
                failed.append("%s: merged shards differ from the single run" % name)
    # A prediction of the wrong size.
    out = os.path.join(a.work, "voc")
    bad = os.path.join(a.work, "badpred")
    os.makedirs(bad, exist_ok=True)
    first = sorted(os.listdir(os.path.join(out, "gt")))[0]
    save_indexed(np.zeros((10, 12), np.uint8), os.path.join(bad, first))
    lst = os.path.join(a.work, "badpred.txt")  # a regular file: pipes are refused
    with open(lst, "w") as f:
        f.write(first[:-4] + "\n")
    p = subprocess.run([a.mo_eval, "seg", "--gt", os.path.join(out, "gt"), "--pred", bad,
                        "--list", lst], capture_output=True, text=True)
    if p.returncode != 1 or "12x10" not in p.stderr or first not in p.stderr:
        failed.append("wrong-size prediction: exit %d, %r" % (p.returncode, p.stderr))
    else:
        print("wrong-size prediction refused: " + p.stderr.strip())
    if failed:
        print("FAILED: " + "; ".join(failed))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
