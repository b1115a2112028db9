#!/usr/bin/env python3
"""Deterministic COCO results fixtures made from a ground truth instances JSON.

Usage: make_coco_fixtures.py --gt instances_val2017.json --out DIR
Writes DIR/<name>.json for every fixture below (standard library only, seeded, values
rounded, so every machine writes the same bytes; tests/eval/coco_reference.json keeps
their SHA-256 next to the pycocotools numbers).

  random      random boxes, categories and scores (10..40 per image)
  perturbed   ground truth boxes jittered, some missed, some relabelled, plus clutter
  duplicates  every object detected 1..3 times (duplicates are false positives)
  crowd       detections on crowd regions (ignored when matched) and near them
  ties        quantized scores: many equal scores within and across images
  categories  detections of only a third of the categories, and of categories absent
              from the image, plus ids unknown to the ground truth (ignored)
  many        150..300 detections per image, over 100 in one category
  sizes       boxes whose area sits on the small/medium/large limits (32^2, 96^2)
  perfect     the ground truth itself (crowd excluded) with random scores
"""
import argparse
import json
import math
import os
import random


def rnd(r, lo, hi):
    return lo + (hi - lo) * r.random()


def q(v, d=2):
    return round(v, d)


def box_in(r, w, h, minside=2.0):
    x0, y0 = rnd(r, 0, w - minside), rnd(r, 0, h - minside)
    bw, bh = rnd(r, minside, w - x0), rnd(r, minside, h - y0)
    return [q(x0), q(y0), q(bw), q(bh)]


def jitter(r, b, s):
    x, y, w, h = b
    return [q(x + w * s * (2 * r.random() - 1)), q(y + h * s * (2 * r.random() - 1)),
            q(max(1.0, w * (1 + s * (2 * r.random() - 1)))),
            q(max(1.0, h * (1 + s * (2 * r.random() - 1))))]


def det(img, cat, bbox, score):
    return {"image_id": img, "category_id": cat, "bbox": bbox, "score": score}


def make(gt):
    images = sorted(gt["images"], key=lambda i: i["id"])
    cats = sorted(c["id"] for c in gt["categories"])
    by_img = {}
    for a in gt["annotations"]:
        by_img.setdefault(a["image_id"], []).append(a)
    out = {}

    r = random.Random(1)
    res = []
    for im in images:
        for _ in range(10 + int(r.random() * 31)):
            res.append(det(im["id"], cats[int(r.random() * len(cats))],
                           box_in(r, im["width"], im["height"]), q(r.random(), 4)))
    out["random"] = res

    r = random.Random(2)
    res = []
    for im in images:
        for a in by_img.get(im["id"], []):
            if r.random() < 0.15:
                continue  # missed
            cat = a["category_id"]
            if r.random() < 0.1:
                cat = cats[int(r.random() * len(cats))]
            res.append(det(im["id"], cat, jitter(r, a["bbox"], 0.25), q(r.random(), 4)))
        for _ in range(int(r.random() * 6)):
            res.append(det(im["id"], cats[int(r.random() * len(cats))],
                           box_in(r, im["width"], im["height"]), q(0.3 * r.random(), 4)))
    out["perturbed"] = res

    r = random.Random(3)
    res = []
    for im in images:
        for a in by_img.get(im["id"], []):
            for k in range(1 + int(r.random() * 3)):
                s = q(r.random(), 3) if k == 0 or r.random() < 0.5 else res[-1]["score"]
                res.append(det(im["id"], a["category_id"], jitter(r, a["bbox"], 0.08 * k), s))
    out["duplicates"] = res

    r = random.Random(4)
    res = []
    for im in images:
        for a in by_img.get(im["id"], []):
            if a["iscrowd"]:
                for _ in range(4):
                    x, y, w, h = a["bbox"]
                    sub = [q(x + rnd(r, 0, w / 2)), q(y + rnd(r, 0, h / 2)),
                           q(rnd(r, 2, w / 2)), q(rnd(r, 2, h / 2))]
                    res.append(det(im["id"], a["category_id"], sub, q(r.random(), 4)))
                res.append(det(im["id"], a["category_id"], a["bbox"], 0.99))
            elif r.random() < 0.7:
                res.append(det(im["id"], a["category_id"], jitter(r, a["bbox"], 0.15),
                               q(r.random(), 4)))
    out["crowd"] = res

    r = random.Random(5)
    res = []
    for im in images:
        for a in by_img.get(im["id"], []):
            if r.random() < 0.8:
                res.append(det(im["id"], a["category_id"], jitter(r, a["bbox"], 0.2),
                               q(int(r.random() * 5) / 5, 1)))
        for _ in range(int(r.random() * 4)):
            res.append(det(im["id"], cats[int(r.random() * len(cats))],
                           box_in(r, im["width"], im["height"]), q(int(r.random() * 5) / 5, 1)))
    out["ties"] = res

    r = random.Random(6)
    keep = set(cats[0::3])
    res = []
    for im in images:
        for a in by_img.get(im["id"], []):
            if a["category_id"] in keep:
                res.append(det(im["id"], a["category_id"], jitter(r, a["bbox"], 0.2),
                               q(r.random(), 4)))
        for _ in range(3):
            res.append(det(im["id"], sorted(keep)[int(r.random() * len(keep))],
                           box_in(r, im["width"], im["height"]), q(r.random() * 0.5, 4)))
        res.append(det(im["id"], 1000 + int(r.random() * 5), box_in(r, im["width"], im["height"]),
                       q(r.random(), 4)))
    out["categories"] = res

    r = random.Random(7)
    res = []
    for n, im in enumerate(images):
        mine = by_img.get(im["id"], [])
        for a in mine:
            res.append(det(im["id"], a["category_id"], jitter(r, a["bbox"], 0.1), q(r.random(), 4)))
        main_cat = mine[0]["category_id"] if mine else cats[0]
        for k in range(150 + int(r.random() * 151)):
            cat = main_cat if k % 2 == 0 else cats[int(r.random() * len(cats))]
            res.append(det(im["id"], cat, box_in(r, im["width"], im["height"]),
                           q(r.random(), 5)))
    out["many"] = res

    r = random.Random(8)
    res = []
    sides = [(32, 32), (16, 64), (31.99, 32), (32, 32.01), (96, 96), (48, 192), (95.99, 96),
             (96, 96.01), (8, 8), (200, 150)]
    for im in images:
        for a in by_img.get(im["id"], []):
            x, y, w, h = a["bbox"]
            if r.random() < 0.5:
                res.append(det(im["id"], a["category_id"], [x, y, w, h], q(r.random(), 4)))
            sw, sh = sides[int(r.random() * len(sides))]
            res.append(det(im["id"], a["category_id"], [q(x), q(y), sw, sh], q(r.random(), 4)))
        for _ in range(6):
            sw, sh = sides[int(r.random() * len(sides))]
            res.append(det(im["id"], cats[int(r.random() * len(cats))],
                           [q(rnd(r, 0, max(1, im["width"] - sw))),
                            q(rnd(r, 0, max(1, im["height"] - sh))), sw, sh], q(r.random(), 4)))
    out["sizes"] = res

    r = random.Random(9)
    out["perfect"] = [det(a["image_id"], a["category_id"], a["bbox"], q(r.random(), 4))
                      for a in gt["annotations"] if not a["iscrowd"]]
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gt", required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    with open(a.gt) as f:
        gt = json.load(f)
    os.makedirs(a.out, exist_ok=True)
    for name, res in make(gt).items():
        with open(os.path.join(a.out, name + ".json"), "w") as f:
            json.dump(res, f)


if __name__ == "__main__":
    main()
