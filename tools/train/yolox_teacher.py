#!/usr/bin/python3
"""YOLOX-Nano (COCO) as the detection teacher, run in OpenCV DNN.

Why this exists: issue 7 pseudo-labels the training images with this detector and wants
its own COCO numbers next to the student's. Everything follows the model's published
contract (../shared/README.md): 416x416 input, the image resized with its aspect ratio
kept (cv2.INTER_LINEAR, size int(w*r) x int(h*r)) into the top-left corner of a canvas of
114, raw 0..255 BGR, NCHW; output [1, 3549, 85] per anchor point of the stride 8/16/32
grids (row-major, x fastest): (x, y) grid-relative, log (w, h), then objectness and 80
class probabilities (already sigmoids). Decoding (x+gx)*s, (y+gy)*s, exp(w)*s, exp(h)*s.

Post-processing is YOLOX's own: each box takes its best class, score = obj * cls, keep
score >= threshold, class-wise NMS. Two settings of YOLOX itself:
  eval   threshold 0.01, NMS IoU 0.65 (its COCO evaluator) -> for AP
  label  threshold 0.30, NMS IoU 0.45 (its demo)           -> for pseudo-labels
The 80 outputs are the COCO categories in id order; `category_id` is the COCO id,
which is also the torchvision 91-class index (REFERENCE.md section 2).

Command line:
  yolox_teacher.py eval [--mode eval|label] [--json OUT]   AP on coco-mini val2017
  yolox_teacher.py detect IMAGE...                          print detections
"""

import argparse
import contextlib
import io
import json
import os
import sys
import time

import cv2
import numpy as np
import torch
import torchvision

# COCO category ids of the 80 classes, in the order of the detector's outputs
COCO80_IDS = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23,
              24, 25, 27, 28, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 46, 47,
              48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63, 64, 65, 67, 70,
              72, 73, 74, 75, 76, 77, 78, 79, 80, 81, 82, 84, 85, 86, 87, 88, 89, 90)
MODES = {"eval": (0.01, 0.65), "label": (0.30, 0.45)}
SIZE = 416
STRIDES = (8, 16, 32)


def _grids(size=SIZE):
    g, s = [], []
    for st in STRIDES:
        n = size // st
        yv, xv = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
        g.append(np.stack([xv, yv], -1).reshape(-1, 2))
        s.append(np.full((n * n, 1), st))
    return np.concatenate(g).astype(np.float32), np.concatenate(s).astype(np.float32)


class YoloxTeacher:
    def __init__(self, path, mode="label", threads=2):
        cv2.setNumThreads(threads)
        self.net = cv2.dnn.readNetFromONNX(path)
        self.grid, self.stride = _grids()
        self.score_thr, self.nms_thr = MODES[mode]

    def raw(self, bgr):
        """Decoded [3549, 4] xyxy boxes in image pixels, [3549] obj, [3549, 80] cls."""
        h, w = bgr.shape[:2]
        r = min(SIZE / h, SIZE / w)
        canvas = np.full((SIZE, SIZE, 3), 114, np.uint8)
        nw, nh = int(w * r), int(h * r)
        canvas[:nh, :nw] = cv2.resize(bgr, (nw, nh), interpolation=cv2.INTER_LINEAR)
        self.net.setInput(cv2.dnn.blobFromImage(canvas))  # NCHW float32, no scaling
        out = self.net.forward()[0]
        xy = (out[:, :2] + self.grid) * self.stride
        wh = np.exp(out[:, 2:4]) * self.stride
        boxes = np.concatenate([xy - wh / 2, xy + wh / 2], 1) / r
        return boxes, out[:, 4], out[:, 5:]

    def __call__(self, bgr):
        """(boxes [N, 4] xyxy in image pixels, scores [N], COCO category ids [N]),
        sorted by score; boxes clipped to the image."""
        boxes, obj, cls = self.raw(bgr)
        best = cls.argmax(1)
        scores = obj * cls[np.arange(len(best)), best]
        keep = scores >= self.score_thr
        boxes, scores, best = boxes[keep], scores[keep], best[keep]
        if len(scores):
            k = torchvision.ops.batched_nms(torch.from_numpy(boxes), torch.from_numpy(scores),
                                            torch.from_numpy(best), self.nms_thr).numpy()
            boxes, scores, best = boxes[k], scores[k], best[k]
        h, w = bgr.shape[:2]
        boxes = boxes.copy()
        boxes[:, 0::2] = boxes[:, 0::2].clip(0, w)
        boxes[:, 1::2] = boxes[:, 1::2].clip(0, h)
        return boxes, scores, np.array([COCO80_IDS[c] for c in best], np.int64)


def load_bgr(path):
    """[H, W, 3] uint8 BGR as Pillow decodes it (no EXIF rotation: COCO boxes refer to the
    stored pixel grid, and the C decoder does not rotate either)."""
    from PIL import Image
    with Image.open(path) as im:
        return np.ascontiguousarray(np.array(im.convert("RGB"))[:, :, ::-1])


def coco_eval(gt_json, dets, img_ids, pycocotools_dir):
    """pycocotools COCOeval (bbox) -> the 12 summary numbers and the printed summary."""
    sys.path.insert(0, pycocotools_dir)
    if not hasattr(np, "float"):  # older pycocotools use the alias numpy 1.24 removed
        np.float = float
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        gt = COCO(gt_json)
        dt = gt.loadRes(dets) if dets else None
        if dt is None:
            return [0.0] * 12, "no detections"
        ev = COCOeval(gt, dt, "bbox")
        ev.params.imgIds = sorted(img_ids)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return [float(s) for s in ev.stats], buf.getvalue()


def precision_recall(gt_json, dets, img_ids, iou_thr=0.5):
    """Precision and recall of a detection list at IoU >= iou_thr, same class, greedy in
    score order, crowd GT ignored (a pseudo-label quality figure, not COCO AP)."""
    with open(gt_json) as f:
        anns = json.load(f)["annotations"]
    ids = set(img_ids)
    gts, crowd = {}, {}
    for o in anns:
        if o["image_id"] not in ids:
            continue
        x, y, w, h = o["bbox"]
        (crowd if o.get("iscrowd") else gts).setdefault((o["image_id"], o["category_id"]), []).append(
            [x, y, x + w, y + h])
    used = {k: np.zeros(len(v), bool) for k, v in gts.items()}
    tp = fp = 0
    for d in sorted(dets, key=lambda d: -d["score"]):
        k = (d["image_id"], d["category_id"])
        x, y, w, h = d["bbox"]
        b = np.array([x, y, x + w, y + h])
        g = np.array(gts.get(k, []), np.float64).reshape(-1, 4)
        if len(g):
            lt, rb = np.maximum(g[:, :2], b[:2]), np.minimum(g[:, 2:], b[2:])
            inter = np.prod(np.clip(rb - lt, 0, None), 1)
            iou = inter / (np.prod(g[:, 2:] - g[:, :2], 1) + w * h - inter)
            iou[used[k]] = -1
            j = int(iou.argmax())
            if iou[j] >= iou_thr:
                used[k][j] = True
                tp += 1
                continue
        fp += 1
    n_gt = sum(len(v) for v in gts.values())
    return tp / max(tp + fp, 1), tp / max(n_gt, 1)


def _cmd_eval(a):
    with open(os.path.join(a.coco, "annotations", "instances_%s.json" % a.split)) as f:
        images = json.load(f)["images"]
    teacher = YoloxTeacher(a.model, a.mode)
    dets, ids = [], []
    t0 = time.time()
    for im in images:
        p = os.path.join(a.coco, a.split, im["file_name"])
        if not os.path.exists(p):
            continue
        ids.append(im["id"])
        boxes, scores, cats = teacher(load_bgr(p))
        for b, s, c in zip(boxes.tolist(), scores.tolist(), cats.tolist()):
            dets.append({"image_id": im["id"], "category_id": c,
                         "bbox": [round(b[0], 3), round(b[1], 3), round(b[2] - b[0], 3),
                                  round(b[3] - b[1], 3)], "score": round(s, 5)})
    dt = time.time() - t0
    stats, text = coco_eval(os.path.join(a.coco, "annotations", "instances_%s.json" % a.split),
                            dets, ids, a.pycocotools)
    print("\n".join(l for l in text.splitlines() if l.startswith(" Average")) or text)
    prec, rec = precision_recall(os.path.join(a.coco, "annotations", "instances_%s.json" % a.split),
                                 dets, ids)
    print("YOLOX-Nano on coco-mini %s (%d images, mode %s: score >= %.2f, NMS %.2f): "
          "%d detections, AP %.4f, AP50 %.4f; at IoU 0.5 precision %.3f recall %.3f "
          "(%.1f s, %.0f ms/image)"
          % (a.split, len(ids), a.mode, teacher.score_thr, teacher.nms_thr, len(dets),
             stats[0], stats[1], prec, rec, dt, 1000 * dt / max(len(ids), 1)))
    if a.results:  # for `mo-eval coco --results`: the teacher scored by the SDK's own tool
        with open(a.results, "w") as f:
            json.dump(dets, f)
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"split": a.split, "images": len(ids), "mode": a.mode,
                       "score_thr": teacher.score_thr, "nms_thr": teacher.nms_thr,
                       "detections": len(dets), "stats": stats, "precision50": prec,
                       "recall50": rec}, f, indent=1)
    return 0


def _cmd_detect(a):
    teacher = YoloxTeacher(a.model, a.mode)
    for p in a.images:
        boxes, scores, cats = teacher(load_bgr(p))
        print("%s: %d detections" % (p, len(scores)))
        for b, s, c in zip(boxes.tolist(), scores.tolist(), cats.tolist()):
            print("  cat %2d  %.3f  [%.1f %.1f %.1f %.1f]" % (c, s, *b))
    return 0


def _main(argv=None):
    here = os.path.dirname(os.path.abspath(__file__))
    shared = os.environ.get("MO_SHARED", os.path.normpath(os.path.join(here, "..", "..", "..", "shared")))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=os.path.join(shared, "teachers", "yolox_nano_coco",
                                                    "yolox_nano.onnx"))
    ap.add_argument("--mode", choices=sorted(MODES), default=None,
                    help="threshold/NMS setting (default: eval for eval, label for detect)")
    sub = ap.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("eval", help="COCO AP with pycocotools")
    e.add_argument("--coco", default=os.path.join(shared, "data", "coco-mini"))
    e.add_argument("--split", default="val2017")
    e.add_argument("--pycocotools", default="/work/pycocotools-src/PythonAPI")
    e.add_argument("--json")
    e.add_argument("--results", help="also write the detections as a COCO results file")
    d = sub.add_parser("detect", help="print detections")
    d.add_argument("images", nargs="+")
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    if a.mode is None:
        a.mode = "eval" if a.cmd == "eval" else "label"
    return _cmd_eval(a) if a.cmd == "eval" else _cmd_detect(a)


if __name__ == "__main__":
    sys.exit(_main())
