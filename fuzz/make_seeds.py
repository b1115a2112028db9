#!/usr/bin/python3
"""Seed corpus for the fuzz targets, generated (nothing binary is committed).

seeds/model_file: small valid model files (a classification head, an F16 tensor, an s0 stem
with train-time branches) and truncated/garbled copies. seeds/image: every format and pixel
layout the decoders take (PIL-written) plus truncated copies. seeds/eval_json, voc_xml, voc_det,
eval_state, top1: the inputs of mo-eval (see each fuzz_*.c). Usage: make_seeds.py OUTDIR
"""
import io
import os
import struct
import sys
import zlib

import numpy as np
from PIL import Image

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
import mofile  # noqa: E402


def damaged(data):
    """Truncations and a few flipped bytes: the shapes of damage real files have."""
    out = [data[:n] for n in (0, 1, 7, 8, 9, len(data) // 2, len(data) - 1)]
    for pos in (8, 12, len(data) // 3, len(data) - 5):
        b = bytearray(data)
        b[pos % len(b)] ^= 0xFF
        out.append(bytes(b))
    return out


def model_seeds(rng):
    head = {"cls.linear.weight": rng.standard_normal((3, 8)), "cls.linear.bias": np.zeros(3)}
    stem = {
        "backbone.stage0.rbr_conv.0.conv.weight": rng.standard_normal((48, 3, 3, 3)),
        "backbone.stage0.rbr_scale.conv.weight": rng.standard_normal((48, 3, 1, 1)),
    }
    for br in ("rbr_conv.0.bn", "rbr_scale.bn"):
        for p in ("weight", "bias", "running_mean", "running_var"):
            stem["backbone.stage0.%s.%s" % (br, p)] = rng.random(48) + 0.5
    meta_cls = {"mo.contents": ["cls"], "mo.variant": "s0", "cls.classes": ["a", "b", "c"]}
    meta_bb = {"mo.contents": ["backbone"], "mo.arch": "mobileone", "mo.variant": "s0"}
    files = {
        "cls_head": mofile.dumps(head, meta_cls),
        "cls_head_f16": mofile.dumps(head, meta_cls, fp16=True),
        "s0_stem_unfused": mofile.dumps(stem, meta_bb),
    }
    seeds = dict(files)
    for name, data in files.items():
        for i, d in enumerate(damaged(data)):
            seeds["%s_damaged%d" % (name, i)] = d
    return seeds


def image_seeds(rng):
    rgb = Image.fromarray(rng.integers(0, 256, (13, 17, 3), dtype=np.uint8))
    files = {}
    for name, img, fmt, kw in [
        ("rgb.png", rgb, "PNG", {}),
        ("gray.png", rgb.convert("L"), "PNG", {}),
        ("rgba.png", rgb.convert("RGBA"), "PNG", {}),
        ("palette.png", rgb.convert("P"), "PNG", {}),
        ("gray16.png", Image.fromarray((rng.integers(0, 65536, (9, 5))).astype(np.uint16)),
         "PNG", {}),
        ("baseline.jpg", rgb, "JPEG", {"quality": 80}),
        ("progressive.jpg", rgb, "JPEG", {"progressive": True}),
        ("gray.jpg", rgb.convert("L"), "JPEG", {}),
        ("cmyk.jpg", rgb.convert("CMYK"), "JPEG", {}),
        ("rgb.bmp", rgb, "BMP", {}),
        ("anim.gif", rgb.convert("P"), "GIF", {}),
    ]:
        buf = io.BytesIO()
        img.save(buf, fmt, **kw)
        files[name] = buf.getvalue()
    seeds = dict(files)
    for name, data in files.items():
        for i, d in enumerate(damaged(data)):
            seeds["%s_damaged%d" % (name, i)] = d
    return seeds


def eval_json_seeds():
    """COCO ground truth and results JSON (fuzz_eval_json splits its input at the first NUL:
    ground truth, then results), valid and damaged."""
    gt = (b'{"images": [{"id": 1, "file_name": "a\\u00e9.jpg"}, {"id": 2}], "categories": '
          b'[{"id": 1, "name": "cat"}, {"id": 3}], "annotations": [{"id": 1, "image_id": 1, '
          b'"category_id": 1, "bbox": [1, 2, 30.5, 40], "area": 1200, "iscrowd": 0, '
          b'"segmentation": [[1, 2, 3, 4, 5, 6]]}, {"id": 2, "image_id": 2, "category_id": 3, '
          b'"bbox": [0, 0, 100, 100], "area": 1e4, "iscrowd": true}], "info": {"x": [null, false]}}')
    res = (b'[{"image_id": 1, "category_id": 1, "bbox": [1, 2, 30, 40], "score": 0.9}, '
           b'{"image_id": 2, "category_id": 3, "bbox": [5, 5, 50, 50], "score": 5E-1}, '
           b'{"image_id": 1, "category_id": 9, "bbox": [0, 0, 1, 1], "score": 1}]')
    seeds = {"valid": gt + b"\0" + res, "gt_only": gt, "results_empty": gt + b"\0[]"}
    for i, d in enumerate(damaged(gt + b"\0" + res)):
        seeds["damaged%d" % i] = d
    return seeds


VOC_XML = (b'<?xml version="1.0"?>\n<annotation>\n  <filename>im1.jpg</filename>\n'
           b'  <size><width>100</width><height>80</height><depth>3</depth></size>\n'
           b'  <object><name>cat</name><pose>Left</pose><difficult>0</difficult>\n'
           b'    <bndbox><xmin>1</xmin><ymin>2</ymin><xmax>30.5</xmax><ymax>40</ymax></bndbox>'
           b'</object>\n  <object><name> dog </name><difficult>1</difficult><bndbox><xmin>5'
           b'</xmin><ymin>5</ymin><xmax>9</xmax><ymax>9</ymax></bndbox></object>\n'
           b'  <object><name>unicorn</name><bndbox><xmin>0</xmin><ymin>0</ymin><xmax>1</xmax>'
           b'<ymax>1</ymax></bndbox></object>\n</annotation>\n')


def voc_xml_seeds():
    """VOC annotations: valid, with entities and a DTD, and the shapes of broken ones."""
    seeds = {"valid.xml": VOC_XML,
             "entity.xml": b'<!DOCTYPE annotation [<!ENTITY c "cat">]>\n<annotation><object>'
                           b'<name>&c;</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>2</xmax>'
                           b'<ymax>2</ymax></bndbox></object></annotation>',
             "no_box.xml": b"<annotation><object><name>cat</name></object></annotation>",
             "bad_number.xml": VOC_XML.replace(b"30.5", b"3e999"),
             "difficult2.xml": VOC_XML.replace(b"<difficult>1", b"<difficult>2"),
             "other_root.xml": b"<voc/>", "empty.xml": b"",
             # no object of the 20 classes: no ground truth at all (was NULL + 0 in evaluate)
             "no_class.xml": b"<annotation><object><name>unicorn</name><bndbox><xmin>1</xmin>"
                             b"<ymin>1</ymin><xmax>2</xmax><ymax>2</ymax></bndbox></object>"
                             b"</annotation>"}
    for i, d in enumerate(damaged(VOC_XML)):
        seeds["damaged%d.xml" % i] = d
    return seeds


def voc_det_seeds():
    """ImageSets list, NUL, a comp4_det_*.txt file of class cat."""
    lst = b"im1\nim2 1\n\n  im3\r\nim4\n"
    det = (b"im1 0.9 1 2 30 40\nim1 0.8 50 50 60 70\nim2 0.7 1 1 5 5\nim1 0.9 1 2 30 40\n\n"
           b"im3 1e-3 0 0 0 0\nim4 -1 5 5 1 1\n")
    seeds = {"valid": lst + b"\0" + det, "set_only": lst, "no_dets": lst + b"\0",
             "unknown_image": lst + b"\0zz 0.5 1 1 2 2\n", "nan": lst + b"\0im1 nan 1 1 2 2\n",
             "short_line": lst + b"\0im1 0.5 1 1 2\n", "slash": b"a/b\n\0"}
    for i, d in enumerate(damaged(lst + b"\0" + det)):
        seeds["damaged%d" % i] = d
    return seeds


def state(kind, body):
    """An mo-eval state file, format version 2 (eval/util.c): magic, kind, body, CRC-32."""
    data = b"MOEVAL\0\x02" + struct.pack("<I", kind) + body
    return data + struct.pack("<I", zlib.crc32(data) & 0xFFFFFFFF)


def sstr(s):
    return struct.pack("<I", len(s)) + s


def coco_state(records, ni=3):
    """Categories 1 and 3, images 10.. (ni), records [(image, [(cat, ndt, npig)])]."""
    b = struct.pack("<Q", 0x1234) + struct.pack("<I", 2)
    b += struct.pack("<Q", 1) + sstr(b"cat") + struct.pack("<Q", 3) + sstr(b"")
    b += struct.pack("<I", ni) + b"".join(struct.pack("<Q", 10 + i) for i in range(ni))
    b += struct.pack("<I", len(records))
    for img, cells in records:
        nd = sum(c[1] for c in cells)
        b += struct.pack("<III", img, len(cells), nd)
        for cat, ndt, npig in cells:
            b += struct.pack("<II", cat, ndt) + struct.pack("<4I", *npig)
        b += b"".join(struct.pack("<d", 0.9 - 0.1 * j) for j in range(nd))
        b += bytes((j * 7 + k) % 4 for j in range(nd) for k in range(40))
    return state(1, b)


def voc_state(records, ni=3):
    """Classes cat and dog, images a.., records [(image, [(class, npos, ndet)])]."""
    b = struct.pack("<Q", 0x5678) + struct.pack("<d", 0.5) + struct.pack("<I", 2)
    b += sstr(b"cat") + sstr(b"dog") + struct.pack("<I", ni)
    b += b"".join(sstr(bytes([97 + i])) for i in range(ni))
    b += struct.pack("<I", len(records))
    for img, cells in records:
        nd = sum(c[2] for c in cells)
        b += struct.pack("<III", img, nd, len(cells))
        b += b"".join(struct.pack("<III", cls, npos, ndet) for cls, npos, ndet in cells)
        b += b"".join(struct.pack("<d", 0.5 + 0.1 * j) for j in range(nd))
        b += bytes(j % 3 for j in range(nd))
    return state(2, b)


def seg_state(covered, ni=5, k=3):
    b = struct.pack("<II", k, 256) + b"".join(struct.pack("<Q", (i * 37) % 11)
                                              for i in range(k * k))
    bits = sum(1 << i for i in covered)
    b += struct.pack("<QI", 0x9abc, ni) + bits.to_bytes((ni + 7) // 8, "little")
    return state(3, b)


def eval_state_seeds():
    """State files (fuzz_eval_state recomputes the CRC): one state, or two to merge."""
    c0 = coco_state([(0, [(0, 2, (1, 1, 0, 0)), (1, 1, (0, 0, 0, 0))]), (2, [(1, 0, (2, 0, 2, 0))])])
    c1 = coco_state([(1, [(0, 3, (2, 0, 1, 1))])])
    v0 = voc_state([(0, [(0, 1, 2), (1, 0, 1)]), (2, [(1, 1, 1)])])
    v1 = voc_state([(1, [(0, 0, 1), (1, 3, 2)])])
    s0, s1 = seg_state([0, 2, 4]), seg_state([1, 3])
    seeds = {"coco": c0, "coco_merge": c0 + c1, "coco_overlap": c0 + c0, "coco_missing": c1,
             "voc": v0, "voc_merge": v0 + v1, "voc_overlap": v1 + v1,
             "seg": s0, "seg_merge": s0 + s1, "seg_overlap": s0 + s0, "seg_missing": s1,
             "seg_v1": s0[:7] + b"\x01" + s0[8:], "seg_nolist": seg_state([], ni=0),
             "mixed": c0 + s1}
    for i, d in enumerate(damaged(c0)):
        seeds["coco_damaged%d" % i] = d
    for i, d in enumerate(damaged(v0)):
        seeds["voc_damaged%d" % i] = d
    for i, d in enumerate(damaged(s0 + s1)):
        seeds["seg_damaged%d" % i] = d
    return seeds


def top1_seeds():
    """top1 --list, NUL, --pred (mo-classify --json)."""
    lst = b"a/x.jpg\t1\nb/x.jpg\t2\nwith space.jpg 3\n\nc.jpg\t0\r\n"
    pred = (b'[{"image": "data/val/a/x.jpg", "top": [{"class": 1, "score": 0.9}, {"class": 2}]},'
            b' {"image": "b//./x.jpg", "top": [{"class": 2}]}, {"image": "with space.jpg", '
            b'"top": [{"class": 3}]}, {"image": "c.jpg", "top": [{"class": 5}, {"class": 0}]},'
            b' {"top": []}, {"image": 7}]')
    seeds = {"valid": lst + b"\0" + pred, "list_only": lst,
             "dup": lst + b"\0" + pred[:-1] + b', {"image": "c.jpg", "top": [{"class": 0}]}]',
             "no_top": b"c.jpg\t0\n\0" + b'[{"image": "c.jpg"}]',
             "bad_label": b"a.jpg\t-1\n", "bad_json": lst + b"\0[{]", "root_only": b"/\t1\n\0[]"}
    for i, d in enumerate(damaged(lst + b"\0" + pred)):
        seeds["damaged%d" % i] = d
    return seeds


def main():
    out = sys.argv[1]
    rng = np.random.default_rng(1)
    for sub, seeds in (("model_file", model_seeds(rng)), ("image", image_seeds(rng)),
                       ("eval_json", eval_json_seeds()), ("voc_xml", voc_xml_seeds()),
                       ("voc_det", voc_det_seeds()), ("eval_state", eval_state_seeds()),
                       ("top1", top1_seeds())):
        os.makedirs(os.path.join(out, sub), exist_ok=True)
        for name, data in seeds.items():
            with open(os.path.join(out, sub, name), "wb") as f:
                f.write(data)


if __name__ == "__main__":
    main()
