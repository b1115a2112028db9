#!/usr/bin/python3
"""The project's PyTorch reference of the SSDLite detection head on MobileOne
(docs REFERENCE.md section 2).

Why this exists: the C detection head (heads/detect/) is checked against this model on
the same weights and images. It builds torchvision's own `SSD` detector around the
project's MobileOne (tools/mobileone_ref.py), so everything after the backbone is
torchvision 0.14 code, not a re-implementation:
  - transform: `GeneralizedRCNNTransform` with fixed_size (normalize, then bilinear
    interpolate to 320x320, align_corners=False; boxes rescaled back per axis),
  - features: MobileOne stage3 (/16) and stage4 (/32), each optionally through a "neck"
    block (the project's addition, config `neck_channels`: 1x1 to that width + dw 3x3
    stride 1 + 1x1 back, BN + ReLU6 each; torchvision's SSDLite has none), then four
    torchvision SSDLite extra blocks (`ssdlite._extra_block`: 1x1 + dw 3x3 s2 + 1x1,
    BN + ReLU6) from the (neck's) stage4 map,
  - head: `SSDLiteHead` (dw 3x3 + BN + ReLU6, then 1x1 with bias; BN eps 0.001 as
    torchvision's SSDLite norm_layer),
  - default boxes: `DefaultBoxGenerator([[2, 3]] * 6, min_ratio=0.2, max_ratio=0.95)`,
  - decoding: `BoxCoder((10, 10, 5, 5))`, postprocess: `SSD.postprocess_detections`
    (softmax, score > thresh per class, top-k, clip, `batched_nms`, detections per image).

State dict keys (what convert_ssdlite.py maps into a model file):
  backbone.body.<Apple MobileOne name>            -> backbone.<name>
  backbone.neck.{t}.{j}.{0: conv, 1: bn}.*        -> det.neck.{t}.{j}.{0,1}.* (when present)
  backbone.extra.{i}.{j}.{0: conv, 1: bn}.*       -> det.extra.{i}.{j}.{0,1}.*
  head.{classification,regression}_head.module_list.{l}.{0.0 dw conv, 0.1 bn, 1 1x1}.*
                                                  -> det.head.<same>
A checkpoint written by this script is {"state_dict": ..., "config": CONFIG}.

Command line:
  ssdlite_ref.py random --backbone ../shared/models/mobileone_s0.pth.tar --seed 1 --out det.pth
  ssdlite_ref.py detect --model det.pth [--score-thresh 0.3] IMAGE...
  ssdlite_ref.py train --backbone ../shared/models/mobileone_s0.pth.tar \
      --coco ../shared/data/coco-mini --split train2017 --steps 200 --out det.pth
"""

import argparse
import copy
import json
import math
import os
import sys
from collections import OrderedDict
from functools import partial

import torch
import torch.nn as nn

from torchvision.models._meta import _COCO_CATEGORIES
from torchvision.models.detection.anchor_utils import DefaultBoxGenerator
from torchvision.models.detection.ssd import SSD
from torchvision.models.detection.ssdlite import SSDLiteHead, _extra_block

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mobileone_ref as ref  # noqa: E402

# torchvision's SSDLite320 values; every one is a setting of the C head as well.
DEFAULT_CONFIG = {
    "num_classes": 91,
    "classes": list(_COCO_CATEGORIES),
    "input_size": [320, 320],            # [h, w]
    "aspect_ratios": [[2, 3]] * 6,
    "min_ratio": 0.2,
    "max_ratio": 0.95,
    "extra_channels": [512, 256, 256, 128],
    # per backbone tap (stage3, stage4): inner width of a stride-1 block before the head,
    # 0 = none (torchvision's SSDLite has none; a frozen backbone needs it, issue 12)
    "neck_channels": [0, 0],
    "bn_eps": 0.001,
    "mean": list(ref.IMAGENET_MEAN),
    "std": list(ref.IMAGENET_STD),
}
DEFAULT_POSTPROCESS = {"score_thresh": 0.001, "nms_thresh": 0.55, "detections_per_img": 300,
                       "topk_candidates": 300}


class MobileOneSSDFeatures(nn.Module):
    """MobileOne stage3 and stage4 outputs, then the extra blocks: 6 maps for 320x320
    (20, 10, 5, 3, 2, 1). The MobileOne classifier is not part of the detector."""

    def __init__(self, variant, fused, extra_channels, bn_eps, neck_channels=(0, 0)):
        super().__init__()
        self.body = ref.MobileOne(variant, fused=fused)
        del self.body.linear
        norm = partial(nn.BatchNorm2d, eps=bn_eps, momentum=0.03)
        wd = ref.widths(variant)
        # neck: 1x1 c->m, dw 3x3 stride 1, 1x1 m->c (BN + ReLU6 each, as an extra block
        # without the stride); nn.Identity where the width is 0
        self.neck = nn.ModuleList(_neck_block(c, m, norm) if m else nn.Identity()
                                  for c, m in zip((wd[3], wd[4]), neck_channels))
        ins = [wd[4]] + list(extra_channels[:-1])
        self.extra = nn.ModuleList(_extra_block(i, o, norm) for i, o in zip(ins, extra_channels))
        self.out_channels = [wd[3], wd[4]] + list(extra_channels)

    def forward(self, x):
        self.body.set_output_stride(32)
        taps = []
        for i, st in enumerate(self.body.stages()):
            x = st(x)
            if i >= 3:
                taps.append(x)
        return OrderedDict((str(i), v) for i, v in enumerate(self.maps(taps)))

    def maps(self, taps):
        """The head's maps from the backbone's [stage3, stage4]: necks, then the extras
        from the stage4 neck (also what training on cached taps runs)."""
        out = [neck(t) for neck, t in zip(self.neck, taps)]
        x = out[-1]
        for block in self.extra:
            x = block(x)
            out.append(x)
        return out


def _neck_block(c, m, norm):
    act = nn.ReLU6
    return nn.Sequential(
        nn.Sequential(nn.Conv2d(c, m, 1, bias=False), norm(m), act()),
        nn.Sequential(nn.Conv2d(m, m, 3, padding=1, groups=m, bias=False), norm(m), act()),
        nn.Sequential(nn.Conv2d(m, c, 1, bias=False), norm(c), act()))


def build(variant="s0", fused=True, config=None, **postprocess):
    """A torchvision `SSD` with the MobileOne features and an SSDLite head (eval mode)."""
    cfg = dict(DEFAULT_CONFIG, **(config or {}))
    pp = dict(DEFAULT_POSTPROCESS, **postprocess)
    feats = MobileOneSSDFeatures(variant, fused, cfg["extra_channels"], cfg["bn_eps"],
                                 cfg["neck_channels"])
    anchors = DefaultBoxGenerator([list(a) for a in cfg["aspect_ratios"]],
                                  min_ratio=cfg["min_ratio"], max_ratio=cfg["max_ratio"])
    if len(feats.out_channels) != len(anchors.aspect_ratios):
        raise ValueError("%d feature maps but %d aspect-ratio levels"
                         % (len(feats.out_channels), len(anchors.aspect_ratios)))
    norm = partial(nn.BatchNorm2d, eps=cfg["bn_eps"], momentum=0.03)
    head = SSDLiteHead(feats.out_channels, anchors.num_anchors_per_location(),
                       cfg["num_classes"], norm)
    h, w = cfg["input_size"]
    model = SSD(feats, anchors, (w, h), cfg["num_classes"], image_mean=cfg["mean"],
                image_std=cfg["std"], head=head, **pp)
    model.config = cfg
    model.variant = variant
    return model.eval()


def set_postprocess(model, **pp):
    """Change score_thresh / nms_thresh / detections_per_img / topk_candidates."""
    for k, v in pp.items():
        if k not in DEFAULT_POSTPROCESS:
            raise KeyError(k)
        setattr(model, k, v)
    return model


def randomize_(model, seed, logit_std=2.0, reg_std=1.5, calib_input=None):
    """Seeded random extras and head (the backbone is left alone), for tests.

    Convs N(0, sqrt(2/fan_in)); BN gamma in [0.5, 1.5], beta and running_mean in
    [-0.2, 0.2], running_var in [0.5, 2]. Then, on `calib_input` (a normalized 320x320
    batch; seeded noise when None), each conv+BN is scaled by a power of two so its
    output RMS is in [0.7, 1.4] (ReLU6 stays in its useful range), and the final 1x1 of
    every classification / regression block so the logits / codes have an RMS near
    `logit_std` / `reg_std`: random weights then give a spread of scores, so a score
    threshold leaves a few hundred candidates per image. Powers of two keep the result
    independent of float rounding on the calibration input.
    """
    g = torch.Generator().manual_seed(seed)

    def U(shape, lo, hi):
        return torch.rand(shape, generator=g) * (hi - lo) + lo

    def N(shape, std):
        return torch.randn(shape, generator=g) * std

    parts = [model.backbone.neck, model.backbone.extra, model.head]
    with torch.no_grad():
        for part in parts:
            for m in part.modules():
                if isinstance(m, nn.Conv2d):
                    fan_in = m.weight[0].numel()
                    m.weight.copy_(N(m.weight.shape, math.sqrt(2.0 / fan_in)))
                    if m.bias is not None:
                        m.bias.copy_(U(m.bias.shape, -0.2, 0.2))
                elif isinstance(m, nn.BatchNorm2d):
                    c = m.num_features
                    m.weight.copy_(U(c, 0.5, 1.5))
                    m.bias.copy_(U(c, -0.2, 0.2))
                    m.running_mean.copy_(U(c, -0.2, 0.2))
                    m.running_var.copy_(U(c, 0.5, 2.0))
    if calib_input is None:
        calib_input = torch.randn(1, 3, 320, 320, generator=g)
    _calibrate_(model, calib_input, logit_std, reg_std)
    return model


def _pow2(x):
    return 2.0 ** round(math.log2(x))


def _calibrate_block_(block, y):
    """Scale each conv + BN of a neck or extra block to an output RMS in [0.7, 1.4]; returns
    the block's output."""
    for layer in block:
        conv, bn = layer[0], layer[1]
        s = _pow2(bn(conv(y)).pow(2).mean().sqrt().item())
        bn.weight.div_(s)
        bn.bias.div_(s)
        y = layer(y)
    return y


def _calibrate_(model, x, logit_std, reg_std):
    feats_mod = model.backbone
    with torch.no_grad():
        # neck and extras, block by block
        feats_mod.body.set_output_stride(32)
        y = x
        taps = []
        for i, st in enumerate(feats_mod.body.stages()):
            y = st(y)
            if i >= 3:
                taps.append(y)
        taps = [t if isinstance(block, nn.Identity) else _calibrate_block_(block, t)
                for t, block in zip(taps, feats_mod.neck)]
        y = taps[-1]
        for block in feats_mod.extra:
            y = _calibrate_block_(block, y)
            taps.append(y)
        for head, target in ((model.head.classification_head, logit_std),
                             (model.head.regression_head, reg_std)):
            for blk, t in zip(head.module_list, taps):
                conv, bn = blk[0][0], blk[0][1]
                s = _pow2(bn(conv(t)).pow(2).mean().sqrt().item())
                bn.weight.div_(s)
                bn.bias.div_(s)
                out = blk(t)
                s = _pow2(out.pow(2).mean().sqrt().item() / target)
                blk[1].weight.div_(s)
                blk[1].bias.div_(s)


def random_model(backbone, seed, variant=None, config=None, calib_images=None,
                 logit_std=2.0, reg_std=1.5, **postprocess):
    """MobileOne weights + seeded random extras and head. `backbone` is an Apple checkpoint
    path (e.g. the real S0) or a mobileone_ref.MobileOne module (e.g. random weights)."""
    if isinstance(backbone, nn.Module):
        sd = {k: v for k, v in backbone.state_dict().items()
              if not k.startswith("linear.") and not k.endswith("num_batches_tracked")}
        variant = backbone.variant
    else:
        sd = ref.load_checkpoint(backbone)
        variant = variant or ref.infer_variant(sd)
        sd = {k: v for k, v in sd.items() if not k.startswith("linear.")}
    fused = ref.state_dict_form(sd) == "fused"
    model = build(variant, fused, config, **postprocess)
    missing, unexpected = model.backbone.body.load_state_dict(sd, strict=False)
    if missing or unexpected:
        raise ValueError("backbone weights do not fit MobileOne-%s: missing %s, unexpected %s"
                         % (variant, missing[:5], unexpected[:5]))
    x = None
    if calib_images:
        x = torch.stack([model.transform(
            [load_image(p)])[0].tensors[0] for p in calib_images])
    return randomize_(model, seed, logit_std, reg_std, calib_input=x)


def config_from_meta(meta):
    """The build() configuration a head file's `det.*` metadata describes."""
    return {"classes": json.loads(meta["det.classes"]),
            "num_classes": int(meta["det.num_classes"]),
            "input_size": json.loads(meta["det.input_size"]),
            "aspect_ratios": json.loads(meta["det.aspect_ratios"]),
            "min_ratio": float(meta["det.min_ratio"]), "max_ratio": float(meta["det.max_ratio"]),
            "extra_channels": json.loads(meta["det.extra_channels"]),
            "neck_channels": json.loads(meta.get("det.neck_channels", "[0, 0]")),
            "bn_eps": float(meta["det.bn_eps"]),
            "mean": json.loads(meta["mo.mean"]), "std": json.loads(meta["mo.std"])}


def load_head_(model, tensors, what):
    """Put a head file's `det.` tensors (numpy; F16 widened to float32, as the C loader
    does) into `model`; every head tensor must be there and none else."""
    head_sd = {}
    for k, v in tensors.items():
        if k.startswith(("det.extra.", "det.neck.")):
            head_sd["backbone." + k[len("det."):]] = torch.from_numpy(v.astype("float32"))
        elif k.startswith("det.head."):
            head_sd[k[len("det."):]] = torch.from_numpy(v.astype("float32"))
    missing, unexpected = model.load_state_dict(head_sd, strict=False)
    missing = [k for k in missing if not k.startswith("backbone.body.")
               and not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise ValueError("%s: head tensors missing %s, unexpected %s"
                         % (what, missing[:5], unexpected[:5]))
    return model


def from_files(backbone, head_path, **postprocess):
    """The reference detector of an SDK head file (`det.` tensors and `det.*` metadata,
    e.g. weights/ssdlite_s0.mo.safetensors) on `backbone`, an Apple checkpoint path."""
    import mofile
    tensors, meta = mofile.read(head_path)
    if "det.arch" not in meta:
        raise ValueError("%s holds no detection head" % head_path)
    cfg = config_from_meta(meta)
    sd = ref.load_checkpoint(backbone)
    variant = ref.infer_variant(sd)
    if meta.get("mo.variant") != variant:
        raise ValueError("%s is for MobileOne-%s, the backbone is %s"
                         % (head_path, meta.get("mo.variant"), variant))
    sd = {k: v for k, v in sd.items() if not k.startswith("linear.")}
    model = build(variant, ref.state_dict_form(sd) == "fused", cfg, **postprocess)
    model.backbone.body.load_state_dict(sd)
    return load_head_(model, tensors, head_path).eval()


def load_image(path):
    """[3, H, W] float in [0, 1] from Pillow's convert("RGB") (what the C decoder gives)."""
    from PIL import Image
    import torchvision.transforms.functional as TF
    with Image.open(path) as im:
        return TF.to_tensor(im.convert("RGB"))


def save(model, path):
    torch.save({"state_dict": model.state_dict(), "config": model.config,
                "variant": model.variant}, path)


def load(path, **postprocess):
    obj = torch.load(path, map_location="cpu")
    sd = obj["state_dict"]
    fused = any(".reparam_conv." in k for k in sd)
    model = build(obj["variant"], fused, obj.get("config"), **postprocess)
    model.load_state_dict(sd)
    return model


class Capture:
    """Run the detector on one image and keep its intermediate results:
    `input` (normalized, resized [3,h,w]), `logits` [N,K], `regression` [N,4],
    `anchors` [N,4] (xyxy in input pixels), `detections` (boxes xyxy in original pixels,
    scores, labels)."""

    def __init__(self, model):
        self.model = model
        self.store = {}
        model.backbone.register_forward_pre_hook(self._pre_backbone)
        model.head.register_forward_hook(self._head)
        model.anchor_generator.register_forward_hook(self._anchors)

    def _pre_backbone(self, mod, args):
        self.store["input"] = args[0][0]

    def _head(self, mod, args, out):
        self.store["regression"] = out["bbox_regression"][0]
        self.store["logits"] = out["cls_logits"][0]

    def _anchors(self, mod, args, out):
        self.store["anchors"] = out[0]

    def __call__(self, image):
        self.store = {}
        with torch.no_grad():
            det = self.model([image])[0]
        self.store["detections"] = det
        return self.store


def _cmd_random(a):
    calib = sorted(os.path.join(a.calib, n) for n in os.listdir(a.calib))[:4] if a.calib else None
    bb = ref.random_model(a.backbone, "fused", a.seed) if a.backbone in ref.VARIANTS \
        else a.backbone
    model = random_model(bb, a.seed, calib_images=calib)
    save(model, a.out)
    print("%s: MobileOne-%s + random SSDLite head (seed %d), %d classes" %
          (a.out, model.variant, a.seed, model.config["num_classes"]))
    return 0


def _cmd_detect(a):
    model = load(a.model, score_thresh=a.score_thresh)
    names = model.config["classes"]
    for path in a.images:
        with torch.no_grad():
            det = model([load_image(path)])[0]
        print("%s: %d detections" % (path, len(det["scores"])))
        for b, s, l in zip(det["boxes"].tolist(), det["scores"].tolist(), det["labels"].tolist()):
            print("  %-14s %.4f  [%.1f %.1f %.1f %.1f]" % (names[l], s, *b))
    return 0


def _coco_targets(coco_dir, split):
    """[(image path, {"boxes": xyxy, "labels"})] of a COCO split, crowd boxes dropped."""
    with open(os.path.join(coco_dir, "annotations", "instances_%s.json" % split)) as f:
        ann = json.load(f)
    per = {im["id"]: (os.path.join(coco_dir, split, im["file_name"]), [], [])
           for im in ann["images"]}
    for o in ann["annotations"]:
        x, y, w, h = o["bbox"]
        if o.get("iscrowd") or w < 1 or h < 1 or o["image_id"] not in per:
            continue
        per[o["image_id"]][1].append([x, y, x + w, y + h])
        per[o["image_id"]][2].append(o["category_id"])
    out = []
    for p, boxes, labels in per.values():
        if boxes and os.path.exists(p):
            out.append((p, {"boxes": torch.tensor(boxes, dtype=torch.float32),
                            "labels": torch.tensor(labels, dtype=torch.int64)}))
    return out


def _cmd_train(a):
    """Fine-tune extras + head (backbone frozen) with torchvision's SSD losses. A small
    demonstration on coco-mini, not a recipe for a good detector."""
    torch.manual_seed(a.seed)
    model = random_model(a.backbone, a.seed) if not a.init else load(a.init)
    data = _coco_targets(a.coco, a.split)
    if not data:
        print("no annotated images in %s/%s" % (a.coco, a.split), file=sys.stderr)
        return 1
    for p in model.backbone.body.parameters():
        p.requires_grad_(False)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=a.lr, momentum=0.9, weight_decay=4e-5)
    images = [(load_image(p), t) for p, t in data]
    model.train()
    model.backbone.body.eval()  # frozen BN statistics
    for step in range(a.steps):
        batch = [images[(step * a.batch + i) % len(images)] for i in range(a.batch)]
        losses = model([b[0] for b in batch], [copy.deepcopy(b[1]) for b in batch])
        loss = sum(losses.values())
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 10 == 0 or step == a.steps - 1:
            print("step %d: %s" % (step, ", ".join("%s %.3f" % (k, v.item())
                                                   for k, v in losses.items())))
    model.eval()
    save(model, a.out)
    print("wrote", a.out)
    return 0


def _main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("random", help="real backbone + seeded random extras/head")
    r.add_argument("--backbone", default="../shared/models/mobileone_s0.pth.tar",
                   help="Apple checkpoint, or a variant (s0..s4) for random backbone weights")
    r.add_argument("--seed", type=int, default=1)
    r.add_argument("--calib", help="folder of images to calibrate the random head on")
    r.add_argument("--out", required=True)
    d = sub.add_parser("detect", help="run a checkpoint of this script on images")
    d.add_argument("--model", required=True)
    d.add_argument("--score-thresh", type=float, default=DEFAULT_POSTPROCESS["score_thresh"])
    d.add_argument("images", nargs="+")
    t = sub.add_parser("train", help="fine-tune extras + head on a COCO folder")
    t.add_argument("--backbone", default="../shared/models/mobileone_s0.pth.tar")
    t.add_argument("--init", help="start from this checkpoint instead of random")
    t.add_argument("--coco", default="../shared/data/coco-mini")
    t.add_argument("--split", default="train2017")
    t.add_argument("--steps", type=int, default=200)
    t.add_argument("--batch", type=int, default=8)
    t.add_argument("--lr", type=float, default=0.01)
    t.add_argument("--seed", type=int, default=1)
    t.add_argument("--out", required=True)
    a = ap.parse_args(argv)
    return {"random": _cmd_random, "detect": _cmd_detect, "train": _cmd_train}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(_main())
