#!/usr/bin/python3
"""Pseudo-label every training image with both teachers and merge with the real labels.

Why this exists: issue 7 trains the SSDLite and DeepLabV3 heads on CPU from a few
thousand images of which only coco-mini train2017 (80 images) has real boxes and masks.
The teachers (yolox_teacher.py, tflite_runner.py) label the rest once; training then
reads these small caches instead of running the teachers again.

Training images (paths relative to the shared folder): data/imagenet-val1300/images,
data/imagenet-samples, data/coco-mini/train2017, data/voc2012-val-samples. coco-mini
val2017 is held out for evaluation and refused here.

Merging (recorded per box in `origin`):
  detection  coco-mini train: every non-crowd COCO box is kept ("gt", score 1); crowd
             boxes go to `crowd` (ignore regions). A teacher box ("teacher", its score) is
             added only when its IoU with every real box is <= 0.5 (any class: a teacher
             box on an annotated object is either a duplicate or a wrong class) and at
             most half of it lies in a crowd region. Other images: teacher boxes only.
             Teacher boxes are those YOLOX's demo draws (score >= 0.3 after its NMS at
             score >= 0.1, IoU 0.45); the ones it drops between 0.1 and 0.3 are kept
             apart as `uncertain` (same merge rule): a trainer should neither reward nor
             punish anchors on them (an ImageNet bird the teacher saw at 0.2 is not
             background).
  segmentation  coco-mini train: the real COCO masks rasterized to the 21 VOC classes
             (COCO annotates all 80 categories, which include all 20 VOC ones, so every
             pixel is known: other objects and stuff are background), crowd regions and
             a 2-pixel band along instance outlines = 255. VOC samples: their own targets.
             Other images: the DeepLab teacher's argmax, 255 where its top probability is
             below --seg-min-prob (uncertain pixels do not train).

Output (in --cache, git-ignored; nothing here is committed):
  det.json          {"meta": settings, counts and timings, "images": [{"file", "source",
                    "width", "height", "boxes" [[x1,y1,x2,y2]] in image pixels,
                    "labels" [COCO category id = torchvision 91-class index], "scores",
                    "origin" ["gt"|"teacher"], "crowd" [[x1,y1,x2,y2]], "uncertain"
                    [[x1,y1,x2,y2]], "uncertain_labels", "uncertain_scores", "seg" (PNG path
                    relative to the cache), "seg_origin" ("gt"|"teacher")}]}
  seg/<source>/<stem>.png   uint8 VOC class map (palette PNG, 255 = ignore) at the image
                    size, or scaled (nearest) so its longer side is --seg-max-side

Command line:
  pseudo_label.py [--cache build/train-cache] [--limit N] [--sources coco,voc,...]
"""

import argparse
import contextlib
import io
import json
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tflite_runner as tfl  # noqa: E402
import yolox_teacher as yt  # noqa: E402

SOURCES = {
    "imagenet-val1300": ("data/imagenet-val1300/images", (".jpeg", ".jpg", ".png")),
    "imagenet-samples": ("data/imagenet-samples", (".jpeg", ".jpg", ".png")),
    "coco-train": ("data/coco-mini/train2017", (".jpg",)),
    "voc": ("data/voc2012-val-samples", ("_image.png",)),
}
HELD_OUT = "data/coco-mini/val2017"


def list_images(shared, sources):
    out = []
    for src in sources:
        rel, exts = SOURCES[src]
        d = os.path.join(shared, rel)
        if not os.path.isdir(d):
            print("skipping %s: %s not found" % (src, d), file=sys.stderr)
            continue
        for n in sorted(os.listdir(d)):
            if n.lower().endswith(exts):
                path = os.path.join(rel, n)
                if os.path.normpath(path).startswith(HELD_OUT):
                    raise ValueError("refusing held-out image %s" % path)
                out.append((src, path))
    return out


def iou_matrix(a, b):
    """IoU of every box of a [N,4] with every box of b [M,4] (xyxy, no +1)."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)), np.float32)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), 2)
    area_a = np.prod(a[:, 2:] - a[:, :2], 1)
    area_b = np.prod(b[:, 2:] - b[:, :2], 1)
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-9)


def ioa(a, b):
    """Fraction of each box of a inside each box of b: [N, M]."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)), np.float32)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), 2)
    return inter / np.maximum(np.prod(a[:, 2:] - a[:, :2], 1)[:, None], 1e-9)


def teacher_keep(t_boxes, gt_boxes, crowd, iou_thr=0.5, crowd_thr=0.5):
    """Mask of the teacher boxes that overlap no real box (IoU > iou_thr, any class) and
    lie at most crowd_thr inside a crowd region."""
    keep = np.ones(len(t_boxes), bool)
    if len(gt_boxes) and len(t_boxes):
        keep &= iou_matrix(t_boxes, gt_boxes).max(1) <= iou_thr
    if len(crowd) and len(t_boxes):
        keep &= ioa(t_boxes, crowd).max(1) <= crowd_thr
    return keep


def merge_boxes(gt_boxes, gt_labels, crowd, t_boxes, t_scores, t_labels, iou_thr=0.5):
    """Real boxes win; teacher boxes are added where `teacher_keep`. Returns (boxes,
    labels, scores, origin, number of teacher boxes dropped)."""
    keep = teacher_keep(t_boxes, gt_boxes, crowd, iou_thr)
    boxes = np.concatenate([gt_boxes.reshape(-1, 4), t_boxes[keep].reshape(-1, 4)])
    labels = np.concatenate([gt_labels, t_labels[keep]]).astype(np.int64)
    scores = np.concatenate([np.ones(len(gt_boxes)), t_scores[keep]])
    origin = ["gt"] * len(gt_boxes) + ["teacher"] * int(keep.sum())
    return boxes, labels, scores, origin, int((~keep).sum())


class CocoTrain:
    """Real boxes and VOC-class masks of coco-mini train2017, keyed by file name."""

    def __init__(self, shared, pycocotools_dir):
        sys.path.insert(0, pycocotools_dir)
        from pycocotools.coco import COCO
        with contextlib.redirect_stdout(io.StringIO()):
            self.coco = COCO(os.path.join(shared, "data", "coco-mini", "annotations",
                                          "instances_train2017.json"))
        self.by_name = {im["file_name"]: im["id"] for im in self.coco.dataset["images"]}

    def boxes(self, name):
        i = self.by_name[name]
        b, l, c = [], [], []
        for a in self.coco.loadAnns(self.coco.getAnnIds(imgIds=i, iscrowd=None)):
            x, y, w, h = a["bbox"]
            if a.get("iscrowd"):
                c.append([x, y, x + w, y + h])
            elif w >= 1 and h >= 1:
                b.append([x, y, x + w, y + h])
                l.append(a["category_id"])
        f = lambda v: np.array(v, np.float32).reshape(-1, 4)  # noqa: E731
        return f(b), np.array(l, np.int64), f(c)

    def seg(self, name):
        return tfl.coco_voc_target(self.coco, self.by_name[name], boundary=2)


def save_png(path, lab):
    from PIL import Image
    os.makedirs(os.path.dirname(path), exist_ok=True)
    im = Image.fromarray(lab, mode="P")
    pal = tfl.voc_palette()
    im.putpalette(pal.reshape(-1).tolist())
    im.save(path, optimize=True)


def seg_size(h, w, max_side):
    s = min(1.0, max_side / max(h, w))
    return max(1, int(round(h * s))), max(1, int(round(w * s)))


def resize_nearest(lab, size):
    if lab.shape == tuple(size):
        return lab
    t = torch.from_numpy(lab)[None, None].float()
    return torch.nn.functional.interpolate(t, size=size, mode="nearest")[0, 0].byte().numpy()


def _r(v, nd=2):
    return [round(float(x), nd) for x in v]


def main(argv=None):
    here = os.path.dirname(os.path.abspath(__file__))
    repo = os.path.normpath(os.path.join(here, "..", ".."))
    shared = os.environ.get("MO_SHARED", os.path.normpath(os.path.join(repo, "..", "shared")))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shared", default=shared)
    ap.add_argument("--cache", default=os.path.join(repo, "build", "train-cache"))
    ap.add_argument("--sources", default=",".join(SOURCES),
                    help="comma list of %s" % ", ".join(SOURCES))
    ap.add_argument("--limit", type=int, default=0, help="first N images per source (tests)")
    ap.add_argument("--det-mode", default="label", choices=sorted(yt.MODES))
    ap.add_argument("--uncertain-thr", type=float, default=0.1,
                    help="teacher boxes from here up to the label threshold are 'uncertain'")
    ap.add_argument("--merge-iou", type=float, default=0.5)
    ap.add_argument("--seg-mode", default="letterbox", choices=("letterbox", "stretch"))
    ap.add_argument("--seg-min-prob", type=float, default=0.5)
    ap.add_argument("--seg-max-side", type=int, default=640)
    ap.add_argument("--pycocotools", default="/work/pycocotools-src/PythonAPI")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)

    sources = [s for s in a.sources.split(",") if s]
    for s in sources:
        if s not in SOURCES:
            ap.error("unknown source %s" % s)
    images = list_images(a.shared, sources)
    if a.limit:
        taken = {}
        kept = []
        for src, rel in images:
            taken[src] = taken.get(src, 0) + 1
            if taken[src] <= a.limit:
                kept.append((src, rel))
        images = kept
    det = yt.YoloxTeacher(os.path.join(a.shared, "teachers", "yolox_nano_coco", "yolox_nano.onnx"),
                          a.det_mode, threads=a.threads)
    label_thr = det.score_thr
    det.score_thr = min(a.uncertain_thr, label_thr)  # NMS over all, split below
    seg = tfl.DeepLabTeacher(os.path.join(a.shared, "teachers", "deeplabv3_mnv2_voc_tflite",
                                          "deeplabv3_257_mv_gpu.tflite"), mode=a.seg_mode)
    coco = CocoTrain(a.shared, a.pycocotools) if "coco-train" in sources else None
    os.makedirs(a.cache, exist_ok=True)

    entries = []
    t_det = t_seg = t_io = 0.0
    stats = {s: {"images": 0, "gt": 0, "teacher": 0, "teacher_dropped": 0, "crowd": 0,
                 "uncertain": 0, "no_boxes": 0, "seg_pixels": [0] * 22} for s in sources}
    cls_hist = {}
    t_start = time.time()
    for n, (src, rel) in enumerate(images):
        t0 = time.time()
        rgb = tfl.load_rgb(os.path.join(a.shared, rel))
        h, w = rgb.shape[:2]
        t_io += time.time() - t0
        t0 = time.time()
        tb, ts, tl = det(np.ascontiguousarray(rgb[:, :, ::-1]))
        t_det += time.time() - t0
        sure = ts >= label_thr
        ub, us, ul = tb[~sure], ts[~sure], tl[~sure]
        tb, ts, tl = tb[sure], ts[sure], tl[sure]
        name = os.path.basename(rel)
        if src == "coco-train":
            gb, gl, crowd = coco.boxes(name)
        else:
            gb, gl, crowd = np.zeros((0, 4), np.float32), np.zeros(0, np.int64), np.zeros((0, 4), np.float32)
        boxes, labels, scores, origin, dropped = merge_boxes(gb, gl, crowd, tb, ts, tl, a.merge_iou)
        k = teacher_keep(ub, gb, crowd, a.merge_iou)
        ub, ul, us = ub[k], ul[k], us[k]
        st = stats[src]
        st["images"] += 1
        st["gt"] += len(gb)
        st["teacher"] += origin.count("teacher")
        st["teacher_dropped"] += dropped
        st["crowd"] += len(crowd)
        st["uncertain"] += len(ub)
        st["no_boxes"] += len(boxes) == 0
        for c in labels.tolist():
            cls_hist[c] = cls_hist.get(c, 0) + 1

        sh, sw = seg_size(h, w, a.seg_max_side)
        t0 = time.time()
        if src == "coco-train":
            lab, seg_origin = resize_nearest(coco.seg(name), (sh, sw)), "gt"
        elif src == "voc":
            tgt = os.path.join(a.shared, rel[:-len("_image.png")] + "_target.png")
            lab, seg_origin = resize_nearest(tfl.read_voc_target(tgt), (sh, sw)), "gt"
        else:
            p = seg.probs(rgb, out_size=(sh, sw))
            conf, arg = p.max(0)
            lab = arg.byte().numpy()
            lab[(conf < a.seg_min_prob).numpy()] = 255
            seg_origin = "teacher"
        t_seg += time.time() - t0
        stem = os.path.splitext(name)[0]
        if src == "voc":
            stem = stem[:-len("_image")]
        seg_rel = os.path.join("seg", src, stem + ".png")
        save_png(os.path.join(a.cache, seg_rel), lab)
        cnt = np.bincount(np.where(lab == 255, 21, lab).reshape(-1), minlength=22)
        st["seg_pixels"] = [x + int(y) for x, y in zip(st["seg_pixels"], cnt)]
        entries.append({"file": rel, "source": src, "width": w, "height": h,
                        "boxes": [_r(b, 1) for b in boxes.tolist()],
                        "labels": labels.tolist(), "scores": _r(scores.tolist(), 4),
                        "origin": origin, "crowd": [_r(b, 1) for b in crowd.tolist()],
                        "uncertain": [_r(b, 1) for b in ub.tolist()],
                        "uncertain_labels": ul.tolist(), "uncertain_scores": _r(us.tolist(), 4),
                        "seg": seg_rel, "seg_origin": seg_origin})
        if (n + 1) % 100 == 0 or n + 1 == len(images):
            el = time.time() - t_start
            print("%d/%d images, %.0f s (det %.0f s, seg %.0f s)" % (n + 1, len(images), el,
                                                                   t_det, t_seg), flush=True)
    total = time.time() - t_start
    for st in stats.values():
        px = st.pop("seg_pixels")
        tot = max(sum(px), 1)
        st["seg_ignore_frac"] = round(px[21] / tot, 4)
        st["seg_class_frac"] = {tfl.VOC_CLASSES[i]: round(px[i] / tot, 4)
                                for i in range(21) if px[i]}
    meta = {
        "version": 1,
        "shared": a.shared,
        "sources": sources,
        "det_teacher": {"model": "teachers/yolox_nano_coco/yolox_nano.onnx", "mode": a.det_mode,
                        "score_thr": label_thr, "uncertain_thr": det.score_thr,
                        "nms_thr": det.nms_thr},
        "seg_teacher": {"model": "teachers/deeplabv3_mnv2_voc_tflite/deeplabv3_257_mv_gpu.tflite",
                        "mode": a.seg_mode, "min_prob": a.seg_min_prob,
                        "max_side": a.seg_max_side},
        "merge": {"iou": a.merge_iou, "crowd_ioa": 0.5},
        "counts": stats,
        "class_hist": {str(k): v for k, v in sorted(cls_hist.items())},
        "seconds": {"total": round(total, 1), "det_teacher": round(t_det, 1),
                    "seg_teacher_or_gt": round(t_seg, 1), "decode": round(t_io, 1)},
        "threads": a.threads,
    }
    with open(os.path.join(a.cache, "det.json"), "w") as f:
        json.dump({"meta": meta, "images": entries}, f, separators=(",", ":"))
    print(json.dumps(meta["counts"], indent=1))
    print("boxes: %d (gt %d, teacher %d); %d images; %.0f s total (YOLOX %.0f s, DeepLab/GT %.0f s)"
          % (sum(len(e["boxes"]) for e in entries), sum(s["gt"] for s in stats.values()),
             sum(s["teacher"] for s in stats.values()), len(entries), total, t_det, t_seg))
    print("wrote", os.path.join(a.cache, "det.json"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
