#!/usr/bin/python3
"""The project's PyTorch reference of DeepLabV3 on MobileOne (docs REFERENCE.md section 3).

Why this exists: the C segmentation head (heads/segment/) is checked against this model on
the same weights and input tensors. It is torchvision 0.14's own `DeepLabV3` with its own
`DeepLabHead` / `ASPP` modules (imported, not re-implemented), on the project's MobileOne
reference (tools/mobileone_ref.py) run at output stride 32, 16 or 8 (dilated stages). Only
the glue is written here: the backbone adapter, loading weights from our model files,
seeded random head weights with non-trivial BatchNorm, and the preprocessing.

Input handling (the C app mo-segment does the same): the image is decoded as Pillow's
`convert("RGB")`, scaled to [0, 1] and normalized with the ImageNet mean/std at its own
size (any size, no padding); or, with `resize`, first resized so its shorter side is
`resize` (torchvision `Resize`, Pillow bilinear with antialiasing), as torchvision's
`SemanticSegmentation` eval preset does. The logits are upsampled bilinearly
(align_corners=False) to the network input size, as `DeepLabV3.forward` does, or to any
other size (the original image size after a resize).

Command line:
  deeplab_ref.py run --model S0.mo.safetensors --head HEAD.mo.safetensors [--os 16] IMAGE...
      prints, per image, its size, the logits' range and the classes present
  deeplab_ref.py check --model S0.mo.safetensors --head HEAD.mo.safetensors IMAGE
      the split forward used by the tests equals torchvision's DeepLabV3.forward
"""

import argparse
import math
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torchvision.models.segmentation.deeplabv3 import ASPP, DeepLabHead, DeepLabV3

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mobileone_ref as ref  # noqa: E402
import mofile  # noqa: E402

DEFAULT_RATES = (12, 24, 36)
OUTPUT_STRIDES = (32, 16, 8)


class MobileOneFeatures(nn.Module):
    """The backbone as torchvision's segmentation models expect it: {"out": stage4}."""

    def __init__(self, mobileone, output_stride=16):
        super().__init__()
        self.body = mobileone
        self.output_stride = output_stride

    def forward(self, x):
        return {"out": self.body(x, self.output_stride)["stage4"]}


DEFAULT_WIDTH = 256


def make_head(in_channels, num_classes, rates=DEFAULT_RATES, width=DEFAULT_WIDTH):
    """torchvision's DeepLabHead; other atrous rates swap in torchvision's ASPP with them,
    another `width` (ASPP and head channels, DeepLabHead's 256) rebuilds its layers with
    that width (the state_dict keys stay DeepLabHead's in both cases)."""
    head = DeepLabHead(in_channels, num_classes)
    if width != DEFAULT_WIDTH:
        head[0] = ASPP(in_channels, list(rates), out_channels=width)
        head[1] = nn.Conv2d(width, width, 3, padding=1, bias=False)
        head[2] = nn.BatchNorm2d(width)
        head[4] = nn.Conv2d(width, num_classes, 1)
    elif tuple(rates) != DEFAULT_RATES:
        head[0] = ASPP(in_channels, list(rates))
    return head.eval()


def head_width(state_dict):
    """ASPP / head channel width of a DeepLabHead state_dict (keys without `seg.` /
    `classifier.`): the output channels of the ASPP's 1x1 branch."""
    return int(state_dict["0.convs.0.0.weight"].shape[0])


def make_model(backbone, head, output_stride=16):
    """torchvision DeepLabV3 around the MobileOne reference."""
    return DeepLabV3(MobileOneFeatures(backbone, output_stride), head).eval()


def _bns(head):
    return [m for m in head.modules() if isinstance(m, nn.BatchNorm2d)]


def randomize_head_(head, backbone, seed, calib_size=(96, 128), logit_std=3.0):
    """Seeded random weights with non-trivial BatchNorm, calibrated on the backbone.

    Convs get He-normal weights. Each BatchNorm gets gamma in [0.5, 1.5], beta in
    [-0.3, 0.3], and running statistics near the real ones of its input on a fixed random
    image (mean + U(-0.25, 0.25) std, var * U(0.5, 2)), rounded to 1/64 and to powers of
    2^(1/8) so reruns on other machines give the same bytes. Then every post-ReLU map is
    O(1), ReLU cuts about half of it, and the classifier is scaled so logits have about
    `logit_std` spread: random but spatially structured masks.
    """
    g = torch.Generator().manual_seed(seed)

    def U(n, lo, hi):
        return torch.rand(n, generator=g, dtype=torch.float64) * (hi - lo) + lo

    x = torch.randn(1, 3, calib_size[0], calib_size[1],
                    generator=torch.Generator().manual_seed(seed + 1))
    with torch.no_grad():
        for m in head.modules():
            if isinstance(m, nn.Conv2d):
                fan_in = m.in_channels * m.kernel_size[0] * m.kernel_size[1]
                m.weight.copy_(torch.randn(m.weight.shape, generator=g, dtype=torch.float64)
                               * math.sqrt(2.0 / fan_in))
                if m.bias is not None:
                    m.bias.copy_(U(m.out_channels, -0.5, 0.5))
        for bn in _bns(head):
            c = bn.num_features
            bn.weight.copy_(U(c, 0.5, 1.5))
            bn.bias.copy_(U(c, -0.3, 0.3))
        # Calibrate the statistics in forward order: hooks see each BN's input.
        feats = backbone(x, 16)["stage4"]
        stats = {}

        def hook(mod, inp, _out):
            stats[mod] = inp[0]

        for bn in _bns(head):
            bn.reset_running_stats()  # mean 0, var 1 while the earlier ones are calibrated
        for bn in _bns(head):
            h = bn.register_forward_hook(hook)
            head(feats)
            h.remove()
            t = stats[bn].double()
            c = bn.num_features
            mean = t.mean(dim=(0, 2, 3))
            if t.shape[2] * t.shape[3] > 1:
                var = t.var(dim=(0, 2, 3), unbiased=False).clamp_min(1e-4)
            else:  # the pooling branch sees one pixel: take the spread across channels
                var = t.var().clamp_min(1e-4).expand(c).clone()
            mean = mean + U(c, -0.25, 0.25) * var.sqrt()
            var = var * U(c, 0.5, 2.0)
            bn.running_mean.copy_(torch.round(mean * 64) / 64)
            bn.running_var.copy_(2.0 ** (torch.round(torch.log2(var) * 8) / 8))
        cls = head[4]
        std = head(feats).double().std().item()
        scale = 2.0 ** round(math.log2(logit_std / max(std, 1e-6)))
        cls.weight.mul_(scale)
    return head


def head_state_dict(head):
    """{name: tensor} without num_batches_tracked (what a model file stores)."""
    return {k: v.detach().float().contiguous() for k, v in head.state_dict().items()
            if not k.endswith("num_batches_tracked")}


def load_backbone(path):
    """MobileOne reference with the `backbone.` tensors of a model file (its classifier,
    unused here, from `cls.linear.*` or zeros)."""
    tensors, meta = mofile.read(path)
    sd = {k[len("backbone."):]: torch.from_numpy(v.astype(np.float32))
          for k, v in tensors.items() if k.startswith("backbone.")}
    if not sd:
        raise ValueError("%s has no backbone. tensors" % path)
    variant = meta.get("mo.variant")
    if "cls.linear.weight" in tensors and "cls.linear.bias" in tensors:
        for k in ("weight", "bias"):
            sd["linear." + k] = torch.from_numpy(tensors["cls.linear." + k].astype(np.float32))
    else:
        sd["linear.weight"] = torch.zeros(1, ref.widths(variant)[4])
        sd["linear.bias"] = torch.zeros(1)
    return ref.from_state_dict(sd, variant).eval()


def load_head(path, in_channels):
    """(head, metadata) from the `seg.` tensors and `seg.*` metadata of a model file."""
    import json
    tensors, meta = mofile.read(path)
    sd = {k[len("seg."):]: torch.from_numpy(v.astype(np.float32))
          for k, v in tensors.items() if k.startswith("seg.")}
    classes = json.loads(meta["seg.classes"])
    rates = json.loads(meta.get("seg.rates", "[12, 24, 36]"))
    if "0.convs.0.0.weight" not in sd:
        raise ValueError("%s: no seg.0.convs.0.0.weight tensor" % path)
    head = make_head(in_channels, len(classes), rates, head_width(sd))
    eps = float(meta.get("seg.bn_eps", "1e-05"))
    for bn in _bns(head):
        bn.eps = eps
    missing, unexpected = head.load_state_dict(sd, strict=False)
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise ValueError("%s: head tensors missing %s, unexpected %s" % (path, missing[:5],
                                                                        unexpected[:5]))
    return head.eval(), meta


def load_image(path, resize=None):
    """Normalized [1, 3, H, W] input (see the module comment) and the original (w, h)."""
    from PIL import Image
    import torchvision.transforms as T
    with Image.open(path) as im:
        im = im.convert("RGB")
    size = im.size
    tf = [T.Resize(resize)] if resize else []
    tf += [T.ToTensor(), T.Normalize(ref.IMAGENET_MEAN, ref.IMAGENET_STD)]
    return T.Compose(tf)(im)[None], size


def forward(model, x, output_stride, out_size=None):
    """(logits at feature resolution [K, h, w], upsampled logits [K, H, W], labels [H, W]).

    Exactly DeepLabV3.forward (`_SimpleSegmentationModel`): backbone "out", classifier,
    bilinear interpolate with align_corners=False to the input size, or to out_size (H, W).
    """
    model.backbone.output_stride = output_stride
    with torch.no_grad():
        low = model.classifier(model.backbone(x)["out"])
        size = tuple(out_size) if out_size else x.shape[-2:]
        up = F.interpolate(low, size=size, mode="bilinear", align_corners=False)
    return low[0], up[0], up[0].argmax(0).to(torch.uint8)


def _cmd_run(a):
    bb = load_backbone(a.model)
    head, meta = load_head(a.head, ref.widths(bb.variant)[4])
    model = make_model(bb, head)
    for path in a.images:
        x, (w, h) = load_image(path, a.resize)
        low, _, lab = forward(model, x, a.os, (h, w) if a.resize else None)
        present = torch.unique(lab).tolist()
        print("%s: %dx%d, logits %s [%.3f, %.3f], classes %s" % (
            path, w, h, list(low.shape), low.min().item(), low.max().item(), present))
    return 0


def _cmd_check(a):
    bb = load_backbone(a.model)
    head, _ = load_head(a.head, ref.widths(bb.variant)[4])
    model = make_model(bb, head)
    x, _ = load_image(a.images[0])
    worst = 0.0
    for s in OUTPUT_STRIDES:
        _, up, _ = forward(model, x, s)
        with torch.no_grad():
            full = model(x)["out"][0]
        worst = max(worst, (full - up).abs().max().item())
    print("split forward vs DeepLabV3.forward: max abs diff %.3g" % worst)
    return 0 if worst == 0.0 else 1


def _main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("cmd", choices=["run", "check"])
    ap.add_argument("--model", required=True, help="model file with the backbone")
    ap.add_argument("--head", required=True, help="model file with the seg. head")
    ap.add_argument("--os", type=int, default=16, choices=OUTPUT_STRIDES)
    ap.add_argument("--resize", type=int, default=None, help="shorter side (default: none)")
    ap.add_argument("images", nargs="+")
    a = ap.parse_args(argv)
    torch.set_num_threads(max(torch.get_num_threads(), len(os.sched_getaffinity(0))))
    return _cmd_run(a) if a.cmd == "run" else _cmd_check(a)


if __name__ == "__main__":
    sys.exit(_main())
