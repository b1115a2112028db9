#!/usr/bin/env python3
"""An independent NumPy implementation of the classic Pascal VOC `voc_eval` (written for
this project from the published semantics), used to check `mo-eval voc`.

Usage: voc_reference.py --devkit VOC2007 --set val --det 'dir/comp4_det_val_{}.txt'
Prints JSON {"classes": [{"name", "ap07", "ap"}], "map07", "map"}.

Semantics: per class, every detection of the set sorted by decreasing confidence (equal
confidences: image order of the set file, then line order; the classic code's numpy
quicksort leaves that order unspecified); the ground truth box of the same image and
class with the largest IoU with +1 pixel-inclusive areas (first one on ties); IoU > 0.5:
difficult -> neither TP nor FP, else TP if not yet detected, FP if already; otherwise FP.
npos counts non-difficult boxes; a class without them gets AP -1 (excluded from the mean).
"""
import argparse
import json
import os
import xml.etree.ElementTree as ET

import numpy as np

CLASSES = ["aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair",
           "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep",
           "sofa", "train", "tvmonitor"]


def parse_annotation(path):
    objs = []
    for o in ET.parse(path).getroot().findall("object"):
        bb = o.find("bndbox")
        d = o.find("difficult")
        objs.append({"name": o.find("name").text.strip(),
                     "difficult": int(d.text) if d is not None else 0,
                     "bbox": [float(bb.find(k).text) for k in ("xmin", "ymin", "xmax", "ymax")]})
    return objs


def average_precision(rec, prec, use_07):
    if use_07:
        ap = 0.0
        for t in np.arange(0.0, 1.1, 0.1):
            p = np.max(prec[rec >= t]) if np.sum(rec >= t) else 0
            ap = ap + p / 11.0
        return float(ap)
    mrec = np.concatenate(([0.0], rec, [1.0]))
    mpre = np.concatenate(([0.0], prec, [0.0]))
    for i in range(mpre.size - 1, 0, -1):
        mpre[i - 1] = max(mpre[i - 1], mpre[i])
    i = np.where(mrec[1:] != mrec[:-1])[0]
    return float(np.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1]))


def evaluate_class(cls, ids, annots, det_path, thresh=0.5):
    recs, npos = {}, 0
    for img in ids:
        objs = [o for o in annots[img] if o["name"] == cls]
        diff = np.array([o["difficult"] for o in objs], dtype=bool)
        recs[img] = {"bbox": np.array([o["bbox"] for o in objs]).reshape(-1, 4),
                     "difficult": diff, "det": [False] * len(objs)}
        npos += int(np.sum(~diff))
    lines = []
    if os.path.exists(det_path):
        with open(det_path) as f:
            lines = [l.split() for l in f if l.strip()]
    pos = {img: k for k, img in enumerate(ids)}
    image_ids = [l[0] for l in lines]
    conf = np.array([float(l[1]) for l in lines])
    BB = np.array([[float(v) for v in l[2:]] for l in lines]).reshape(-1, 4)
    order = sorted(range(len(lines)), key=lambda k: (-conf[k], pos[image_ids[k]], k))
    nd = len(order)
    tp, fp = np.zeros(nd), np.zeros(nd)
    for d, k in enumerate(order):
        R = recs[image_ids[k]]
        bb = BB[k].astype(float)
        ovmax = -np.inf
        BBGT = R["bbox"].astype(float)
        if BBGT.size > 0:
            ixmin = np.maximum(BBGT[:, 0], bb[0])
            iymin = np.maximum(BBGT[:, 1], bb[1])
            ixmax = np.minimum(BBGT[:, 2], bb[2])
            iymax = np.minimum(BBGT[:, 3], bb[3])
            iw = np.maximum(ixmax - ixmin + 1.0, 0.0)
            ih = np.maximum(iymax - iymin + 1.0, 0.0)
            inters = iw * ih
            uni = ((bb[2] - bb[0] + 1.0) * (bb[3] - bb[1] + 1.0) +
                   (BBGT[:, 2] - BBGT[:, 0] + 1.0) * (BBGT[:, 3] - BBGT[:, 1] + 1.0) - inters)
            overlaps = inters / uni
            ovmax = np.max(overlaps)
            jmax = int(np.argmax(overlaps))
        if ovmax > thresh:
            if not R["difficult"][jmax]:
                if not R["det"][jmax]:
                    tp[d] = 1.0
                    R["det"][jmax] = True
                else:
                    fp[d] = 1.0
        else:
            fp[d] = 1.0
    if npos == 0:
        return -1.0, -1.0
    fp, tp = np.cumsum(fp), np.cumsum(tp)
    rec = tp / float(npos)
    prec = tp / np.maximum(tp + fp, np.finfo(np.float64).eps)
    return average_precision(rec, prec, True), average_precision(rec, prec, False)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--devkit", required=True)
    ap.add_argument("--set", required=True)
    ap.add_argument("--det", required=True)
    a = ap.parse_args()
    with open(os.path.join(a.devkit, "ImageSets", "Main", a.set + ".txt")) as f:
        ids = [l.split()[0] for l in f if l.strip()]
    annots = {i: parse_annotation(os.path.join(a.devkit, "Annotations", i + ".xml")) for i in ids}
    out = {"classes": []}
    for cls in CLASSES:
        ap07, apall = evaluate_class(cls, ids, annots, a.det.replace("{}", cls))
        out["classes"].append({"name": cls, "ap07": ap07, "ap": apall})
    for key in ("ap07", "ap"):
        v = [c[key] for c in out["classes"] if c[key] >= 0]
        out["map" + key[2:]] = sum(v) / len(v) if v else -1.0
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
