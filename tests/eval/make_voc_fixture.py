#!/usr/bin/env python3
"""A VOCdevkit-layout fixture made from COCO ground truth (standard library only, seeded).

Usage: make_voc_fixture.py --gt instances_val2017.json --images DIR --out DIR
Writes DIR/VOC2007/{Annotations/<id>.xml, ImageSets/Main/val.txt, JPEGImages/<id>.jpg
(symlinks)} with the objects of the 20 VOC classes (COCO names mapped: airplane ->
aeroplane, motorcycle -> motorbike, couch -> sofa, ...), 1-based inclusive pixel boxes;
crowd regions and boxes under 24x24 pixels are marked difficult, plus 1 in 10 others.
Also DIR/results/comp4_det_val_<class>.txt: jittered true boxes, duplicates, detections
on difficult objects, random false positives and equal scores (3 decimals), for every
class but 'sheep' (no file: no detections).
"""
import argparse
import json
import os
import random

COCO_TO_VOC = {
    "airplane": "aeroplane", "bicycle": "bicycle", "bird": "bird", "boat": "boat",
    "bottle": "bottle", "bus": "bus", "car": "car", "cat": "cat", "chair": "chair",
    "cow": "cow", "dining table": "diningtable", "dog": "dog", "horse": "horse",
    "motorcycle": "motorbike", "person": "person", "potted plant": "pottedplant",
    "sheep": "sheep", "couch": "sofa", "train": "train", "tv": "tvmonitor",
}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gt", required=True)
    ap.add_argument("--images", required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    with open(a.gt) as f:
        gt = json.load(f)
    cat_name = {c["id"]: COCO_TO_VOC.get(c["name"]) for c in gt["categories"]}
    root = os.path.join(a.out, "VOC2007")
    for d in ("Annotations", "ImageSets/Main", "JPEGImages"):
        os.makedirs(os.path.join(root, d), exist_ok=True)
    os.makedirs(os.path.join(a.out, "results"), exist_ok=True)
    by_img = {}
    for an in gt["annotations"]:
        by_img.setdefault(an["image_id"], []).append(an)
    r = random.Random(11)
    ids, dets = [], {c: [] for c in COCO_TO_VOC.values()}
    for im in sorted(gt["images"], key=lambda i: i["id"]):
        stem = os.path.splitext(im["file_name"])[0]
        ids.append(stem)
        W, H = im["width"], im["height"]
        link = os.path.join(root, "JPEGImages", im["file_name"])
        if not os.path.lexists(link):
            os.symlink(os.path.abspath(os.path.join(a.images, im["file_name"])), link)
        objs = []
        for an in by_img.get(im["id"], []):
            name = cat_name.get(an["category_id"])
            if not name:
                continue
            x, y, w, h = an["bbox"]
            x1, y1 = int(x) + 1, int(y) + 1
            x2, y2 = max(x1, int(x + w)), max(y1, int(y + h))
            diff = an["iscrowd"] or (w < 24 and h < 24) or r.random() < 0.1
            objs.append((name, x1, y1, x2, y2, int(bool(diff))))
        lines = ["<annotation>", "\t<folder>VOC2007</folder>",
                 "\t<filename>%s</filename>" % im["file_name"],
                 "\t<size>", "\t\t<width>%d</width>" % W, "\t\t<height>%d</height>" % H,
                 "\t\t<depth>3</depth>", "\t</size>"]
        for k, (name, x1, y1, x2, y2, diff) in enumerate(objs):
            lines += ["\t<object>", "\t\t<name>%s</name>" % name, "\t\t<pose>Unspecified</pose>",
                      "\t\t<truncated>0</truncated>"]
            if k % 7 != 3:  # some objects have no <difficult> (read as 0)... unless difficult
                lines.append("\t\t<difficult>%d</difficult>" % diff)
            elif diff:
                lines.append("\t\t<difficult>1</difficult>")
            lines += ["\t\t<bndbox>", "\t\t\t<xmin>%d</xmin>" % x1, "\t\t\t<ymin>%d</ymin>" % y1,
                      "\t\t\t<xmax>%d</xmax>" % x2, "\t\t\t<ymax>%d</ymax>" % y2, "\t\t</bndbox>",
                      "\t</object>"]
        lines.append("</annotation>")
        with open(os.path.join(root, "Annotations", stem + ".xml"), "w") as f:
            f.write("\n".join(lines) + "\n")
        # Detections.
        for name, x1, y1, x2, y2, diff in objs:
            if r.random() < 0.2:
                continue
            for k in range(1 + (r.random() < 0.3) + (r.random() < 0.1)):
                s = 0.15 * (x2 - x1 + 1) * k + 2
                j = [round(v + s * (2 * r.random() - 1), 1) for v in (x1, y1, x2, y2)]
                score = round(r.random(), 3) if r.random() < 0.8 else 0.5
                dets[name].append((stem, score, j))
        for _ in range(int(r.random() * 4)):
            name = list(COCO_TO_VOC.values())[int(r.random() * 20)]
            x1, y1 = r.random() * (W - 20), r.random() * (H - 20)
            x2, y2 = x1 + 10 + r.random() * (W - x1 - 10), y1 + 10 + r.random() * (H - y1 - 10)
            dets[name].append((stem, round(0.6 * r.random(), 3),
                               [round(x1, 1), round(y1, 1), round(x2, 1), round(y2, 1)]))
    with open(os.path.join(root, "ImageSets", "Main", "val.txt"), "w") as f:
        f.write("\n".join(ids) + "\n")
    for name, ds in dets.items():
        if name == "sheep":
            continue
        r.shuffle(ds)
        with open(os.path.join(a.out, "results", "comp4_det_val_%s.txt" % name), "w") as f:
            for stem, score, b in ds:
                f.write("%s %.3f %.1f %.1f %.1f %.1f\n" % (stem, score, *b))


if __name__ == "__main__":
    main()
