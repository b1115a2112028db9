#!/usr/bin/python3
"""Seed corpus for the fuzz targets, generated (nothing binary is committed).

seeds/model_file: small valid model files (a classification head, an F16 tensor, an s0 stem
with train-time branches) and truncated/garbled copies. seeds/image: every format and pixel
layout the decoders take (PIL-written) plus truncated copies. Usage: make_seeds.py OUTDIR
"""
import io
import os
import sys

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


def main():
    out = sys.argv[1]
    rng = np.random.default_rng(1)
    for sub, seeds in (("model_file", model_seeds(rng)), ("image", image_seeds(rng)),
                       ("eval_json", eval_json_seeds())):
        os.makedirs(os.path.join(out, sub), exist_ok=True)
        for name, data in seeds.items():
            with open(os.path.join(out, sub, name), "wb") as f:
                f.write(data)


if __name__ == "__main__":
    main()
