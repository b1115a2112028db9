#!/usr/bin/python3
"""Write DeepLabV3 segmentation heads as SDK model files (weights/FORMAT.md, `seg.` tensors).

Why this exists: the C head reads only our format, and a head must name the backbone it
was trained on (`mo.variant` + `mo.backbone_digest`), so it is converted against that
backbone's model file. The head is torchvision's `DeepLabHead` (state_dict keys of
`DeepLabV3.classifier`), with seeded random weights (for tests, until trained heads exist)
or from a checkpoint.

  convert_deeplab.py --backbone S0.mo.safetensors --random [--seed 0] [--width 256] OUT.mo.safetensors
  convert_deeplab.py --backbone S0.mo.safetensors --checkpoint deeplab.pth OUT.mo.safetensors
      [--rates 12,24,36] [--classes voc|FILE] [--output-stride 16] [--combined] [--fp16]

The checkpoint is a state_dict of a DeepLabV3 (`classifier.*` keys are taken, `aux_*` and
`backbone.*` ignored) or of a DeepLabHead alone, of any ASPP width (taken from the tensor
shapes), optionally as {"model": state_dict, "train": {...}}: that training record
(tools/train/train_seg.py: command, seed, steps, time, cache digest) becomes `mo.source`. `--combined` also copies the backbone
(and any other tensors) of the backbone file, giving one self-contained file.
Random heads: see deeplab_ref.randomize_head_ (BatchNorm statistics calibrated on the
backbone, so masks are noisy but structured).
"""

import argparse
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import deeplab_ref as dl  # noqa: E402
import mobileone_ref as ref  # noqa: E402
import mofile  # noqa: E402


class ConvertError(Exception):
    pass


def voc_classes():
    """torchvision's Pascal VOC category names (21, '__background__' first)."""
    from torchvision.models._meta import _VOC_CATEGORIES
    return list(_VOC_CATEGORIES)


def read_classes(spec):
    if spec in (None, "voc"):
        return voc_classes()
    with open(spec, encoding="utf-8") as f:
        return [line.strip() for line in f if line.strip()]


def head_from_checkpoint(path, in_channels, classes, rates):
    obj = torch.load(path, map_location="cpu")
    record = obj.get("train") if isinstance(obj, dict) else None
    if isinstance(record, dict) and "rates" in record and \
            [int(r) for r in record["rates"]] != [int(r) for r in rates]:
        raise ConvertError("%s was trained with atrous rates %s, not %s (--rates)"
                           % (path, record["rates"], list(rates)))
    if isinstance(obj, dict):
        for key in ("model", "state_dict"):
            if key in obj and isinstance(obj[key], dict):
                obj = obj[key]
    sd = {k: v for k, v in obj.items() if torch.is_tensor(v)}
    if any(k.startswith("classifier.") for k in sd):
        sd = {k[len("classifier."):]: v for k, v in sd.items() if k.startswith("classifier.")}
    sd = {k: v for k, v in sd.items() if not k.endswith("num_batches_tracked")}
    k = sd.get("4.weight")
    if k is None:
        raise ConvertError("%s: no DeepLabHead tensors (4.weight / classifier.4.weight)" % path)
    if classes is None:
        classes = voc_classes() if k.shape[0] == 21 else ["class_%d" % i for i in range(k.shape[0])]
    if "0.convs.0.0.weight" not in sd:
        raise ConvertError("%s: no ASPP tensors (0.convs.0.0.weight)" % path)
    width = dl.head_width(sd)
    head = dl.make_head(in_channels, len(classes), rates, width)
    try:
        missing, unexpected = head.load_state_dict(sd, strict=False)
    except RuntimeError as e:  # shape mismatch
        raise ConvertError("%s does not fit DeepLabHead(%d, %d, width %d): %s"
                           % (path, in_channels, len(classes), width, str(e).strip()[:300]))
    missing = [m for m in missing if not m.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise ConvertError("%s does not fit DeepLabHead(%d, %d, rates %s, width %d): "
                           "missing %s, unexpected %s" % (path, in_channels, len(classes),
                                                          list(rates), width, missing[:5],
                                                          unexpected[:5]))
    return head, classes, record if isinstance(record, dict) else None


def build(backbone_path, head, classes, rates, output_stride, source, combined=False):
    """(tensors, metadata) of the head file."""
    bb_tensors, bb_meta = mofile.read(backbone_path)
    variant = bb_meta.get("mo.variant")
    digest = mofile.digest(bb_tensors, "backbone.")
    tensors = {"seg." + k: v for k, v in dl.head_state_dict(head).items()}
    meta = {
        "mo.variant": variant,
        "mo.backbone_digest": digest,
        "mo.mean": json.loads(bb_meta.get("mo.mean", json.dumps(list(ref.IMAGENET_MEAN)))),
        "mo.std": json.loads(bb_meta.get("mo.std", json.dumps(list(ref.IMAGENET_STD)))),
        "seg.classes": list(classes),
        "seg.rates": [int(r) for r in rates],
        "seg.output_stride": str(output_stride),
        "seg.bn_eps": repr(1e-5),
        "mo.source": source,
    }
    contents = ["seg"]
    if combined:
        for k, v in bb_tensors.items():
            if k.startswith("seg."):
                raise ConvertError("%s already holds a seg. head" % backbone_path)
            tensors[k] = np.array(v)
        for k, v in bb_meta.items():
            if k not in ("mo.crc32", "mo.format", "mo.format_version", "mo.contents"):
                meta.setdefault(k, v)
        contents = json.loads(bb_meta["mo.contents"]) + ["seg"]
    meta["mo.contents"] = contents
    return tensors, meta


def _main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out", help="output .mo.safetensors")
    ap.add_argument("--backbone", required=True, help="model file of the backbone")
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--random", action="store_true", help="seeded random weights")
    src.add_argument("--checkpoint", help="DeepLabV3 / DeepLabHead state_dict (.pth)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--width", type=int, default=dl.DEFAULT_WIDTH,
                    help="ASPP / head channels of a --random head (default 256; a checkpoint's "
                         "width is read from its tensors)")
    ap.add_argument("--rates", default="12,24,36", help="atrous rates (default 12,24,36)")
    ap.add_argument("--classes", default=None, help="'voc' (default) or a file, one name a line")
    ap.add_argument("--output-stride", type=int, default=16, choices=(8, 16, 32),
                    help="output stride the head is meant for (metadata, default 16)")
    ap.add_argument("--combined", action="store_true", help="also copy the backbone file")
    ap.add_argument("--fp16", action="store_true", help="store tensors as F16")
    a = ap.parse_args(argv)
    torch.set_num_threads(max(torch.get_num_threads(), len(os.sched_getaffinity(0))))
    try:
        rates = [int(r) for r in a.rates.split(",") if r.strip()]
        if not rates or any(r < 1 for r in rates):
            raise ConvertError("atrous rates must be positive integers: %s" % a.rates)
        bb = dl.load_backbone(a.backbone)
        cin = ref.widths(bb.variant)[4]
        if a.random:
            classes = read_classes(a.classes)
            head = dl.randomize_head_(dl.make_head(cin, len(classes), rates, a.width), bb, a.seed)
            source = "random DeepLabHead weights, seed %d, tools/convert_deeplab.py" % a.seed
        else:
            classes = read_classes(a.classes) if a.classes else None
            head, classes, record = head_from_checkpoint(a.checkpoint, cin, classes, rates)
            source = "converted from %s" % os.path.basename(a.checkpoint)
            if record:  # a training record (tools/train/train_seg.py): keep it
                source = json.dumps(dict(record, converted_from=os.path.basename(a.checkpoint)),
                                    sort_keys=True)
        tensors, meta = build(a.backbone, head, classes, rates, a.output_stride, source,
                              a.combined)
        size = mofile.write(a.out, tensors, meta, a.fp16)
    except (ConvertError, OSError, ValueError, mofile.FormatError) as e:
        print("error: %s" % e, file=sys.stderr)
        return 1
    print("%s: DeepLabV3 head for MobileOne-%s (digest %s), %d classes, rates %s, %s, "
          "%d bytes" % (a.out, meta["mo.variant"], meta["mo.backbone_digest"], len(classes),
                        rates, "+".join(meta["mo.contents"]), size))
    return 0


if __name__ == "__main__":
    sys.exit(_main())
