#!/usr/bin/python3
"""The project's PyTorch reference of MobileOne s0..s4 (docs REFERENCE.md section 1).

Why this exists: every C result of the SDK is checked against this model on the same
weights and input, so it implements the spec literally and nothing more: train-time
blocks (k conv branches + 1x1 scale + BN identity, optional SE), the exact
reparameterization into one conv with bias, the dilated output-stride 16/8 modes, and
loading of Apple-format state_dicts (fused or unfused). Module names equal Apple's, so
`state_dict()` keys are Apple's keys.

Command line (self checks):
  mobileone_ref.py classify --checkpoint CKPT IMAGE...   top-5 with the real weights
  mobileone_ref.py check-reparam [--variants s0,s1]      unfused vs reparameterized
"""

import argparse
import functools
import math
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

VARIANTS = ("s0", "s1", "s2", "s3", "s4")
# width multipliers w0..w3, conv branches k, squeeze-excite
_SPEC = {
    "s0": ((0.75, 1.0, 1.0, 2.0), 4, False),
    "s1": ((1.5, 1.5, 2.0, 2.5), 1, False),
    "s2": ((1.5, 2.0, 2.5, 4.0), 1, False),
    "s3": ((2.0, 2.5, 3.0, 4.0), 1, False),
    "s4": ((3.0, 3.5, 3.5, 4.0), 1, True),
}
STAGE_BLOCKS = (2, 8, 10, 1)
STAGE_BASE = (64, 128, 256, 512)
SE_RATIO = 0.0625
BN_EPS = 1e-5
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# output stride -> dilation of stage1..stage4 (REFERENCE.md section 3)
STAGE_DILATION = {32: (1, 1, 1, 1), 16: (1, 1, 1, 2), 8: (1, 1, 2, 4)}


def widths(variant):
    """(stem, stage1, stage2, stage3, stage4) channel counts."""
    w, _, _ = _SPEC[variant]
    return (min(64, int(64 * w[0])),) + tuple(int(b * m) for b, m in zip(STAGE_BASE, w))


def conv_branches(variant):
    return _SPEC[variant][1]


def has_se(variant):
    return _SPEC[variant][2]


class SE(nn.Module):
    """Squeeze-excite: global mean, 1x1 reduce + ReLU, 1x1 expand + sigmoid, scale."""

    def __init__(self, c):
        super().__init__()
        r = int(c * SE_RATIO)
        self.reduce = nn.Conv2d(c, r, 1, bias=True)
        self.expand = nn.Conv2d(r, c, 1, bias=True)

    def forward(self, x):
        s = x.mean(dim=(2, 3), keepdim=True)
        s = torch.sigmoid(self.expand(F.relu(self.reduce(s))))
        return x * s


def _conv_bn(cin, cout, kernel, groups):
    m = nn.Sequential()
    m.add_module("conv", nn.Conv2d(cin, cout, kernel, bias=False, groups=groups))
    m.add_module("bn", nn.BatchNorm2d(cout, eps=BN_EPS))
    return m


def _bn(x, bn):
    """Inference BatchNorm with running stats, whatever the module's train flag."""
    return F.batch_norm(x, bn.running_mean, bn.running_var, bn.weight, bn.bias,
                        False, 0.0, bn.eps)


def _fold_bn(weight, bn):
    """W' = W * t per output channel, b' = beta - mean * t, t = gamma / sqrt(var + eps)."""
    t = bn.weight.double() / torch.sqrt(bn.running_var.double() + bn.eps)
    w = weight.double() * t.reshape(-1, 1, 1, 1)
    b = bn.bias.double() - bn.running_mean.double() * t
    return w, b


class MobileOneBlock(nn.Module):
    """One MobileOne conv: train-time branches or, once fused, `reparam_conv`.

    The stride/padding/dilation actually used come from `set_dilation()`, so the same
    weights run plain or dilated (every kxk conv: stride 1, dilation d, padding d*(k//2);
    1x1 convs keep stride and dilation 1 in a dilated stage).
    """

    def __init__(self, cin, cout, kernel, stride, groups, k, se, fused):
        super().__init__()
        self.cin, self.cout, self.kernel, self.groups = cin, cout, kernel, groups
        self.stride = stride
        self.run_stride, self.run_dilation = stride, 1
        if fused:
            self.reparam_conv = nn.Conv2d(cin, cout, kernel, groups=groups, bias=True)
        else:
            self.rbr_conv = nn.ModuleList(_conv_bn(cin, cout, kernel, groups) for _ in range(k))
            if kernel > 1:
                self.rbr_scale = _conv_bn(cin, cout, 1, groups)
            if cin == cout and stride == 1:
                self.rbr_skip = nn.BatchNorm2d(cout, eps=BN_EPS)
        if se:
            self.se = SE(cout)

    @property
    def fused(self):
        return hasattr(self, "reparam_conv")

    def set_dilation(self, d):
        self.run_dilation = d
        self.run_stride = self.stride if d == 1 else 1

    def forward(self, x):
        y = self.pre_activation(x)
        if hasattr(self, "se"):
            y = self.se(y)
        return F.relu(y)

    def pre_activation(self, x):
        """Sum of the branches (or the fused conv), before SE and ReLU."""
        s, d = self.run_stride, self.run_dilation
        if self.kernel == 1:
            d = 1
        pad = d * (self.kernel // 2)
        if self.fused:
            y = F.conv2d(x, self.reparam_conv.weight, self.reparam_conv.bias, s, pad, d,
                         self.groups)
        else:
            y = 0
            for br in self.rbr_conv:
                y = y + _bn(F.conv2d(x, br.conv.weight, None, s, pad, d, self.groups), br.bn)
            if hasattr(self, "rbr_scale"):
                y = y + _bn(F.conv2d(x, self.rbr_scale.conv.weight, None, s, 0, 1, self.groups),
                            self.rbr_scale.bn)
            if hasattr(self, "rbr_skip"):
                y = y + _bn(x, self.rbr_skip)
        return y

    def scale_output_(self, alpha):
        """Multiply the pre-activation by `alpha` (exactly, for a power of two)."""
        with torch.no_grad():
            if self.fused:
                self.reparam_conv.weight.mul_(alpha)
                self.reparam_conv.bias.mul_(alpha)
                return
            bns = [br.bn for br in self.rbr_conv]
            bns += [self.rbr_scale.bn] if hasattr(self, "rbr_scale") else []
            bns += [self.rbr_skip] if hasattr(self, "rbr_skip") else []
            for bn in bns:
                bn.weight.mul_(alpha)
                bn.bias.mul_(alpha)

    def fused_kernel(self):
        """(weight, bias) of the single equivalent conv, computed in float64."""
        if self.fused:
            return self.reparam_conv.weight.double(), self.reparam_conv.bias.double()
        k = self.kernel
        c = k // 2  # centre tap
        w = torch.zeros(self.cout, self.cin // self.groups, k, k, dtype=torch.float64)
        b = torch.zeros(self.cout, dtype=torch.float64)
        for br in self.rbr_conv:
            bw, bb = _fold_bn(br.conv.weight, br.bn)
            w += bw
            b += bb
        if hasattr(self, "rbr_scale"):
            bw, bb = _fold_bn(self.rbr_scale.conv.weight, self.rbr_scale.bn)
            w[:, :, c, c] += bw[:, :, 0, 0]
            b += bb
        if hasattr(self, "rbr_skip"):
            ident = torch.zeros_like(w)
            per_group = self.cin // self.groups
            for i in range(self.cout):
                ident[i, i % per_group, c, c] = 1.0
            bw, bb = _fold_bn(ident, self.rbr_skip)
            w += bw
            b += bb
        return w, b

    def reparameterize(self):
        """Replace the branches by `reparam_conv` (weight + bias) in place."""
        if self.fused:
            return
        w, b = self.fused_kernel()
        conv = nn.Conv2d(self.cin, self.cout, self.kernel, groups=self.groups, bias=True)
        with torch.no_grad():
            conv.weight.copy_(w.float())
            conv.bias.copy_(b.float())
        for name in ("rbr_conv", "rbr_scale", "rbr_skip"):
            if hasattr(self, name):
                delattr(self, name)
        self.reparam_conv = conv


class MobileOne(nn.Module):
    """MobileOne backbone + classifier. forward(x, output_stride) returns a dict with
    `stage0`..`stage4` feature maps (NCHW) and `logits` (global mean of stage4 -> linear)."""

    def __init__(self, variant="s0", fused=False, num_classes=1000):
        super().__init__()
        if variant not in _SPEC:
            raise ValueError("unknown variant %r (s0..s4)" % variant)
        self.variant = variant
        k = conv_branches(variant)
        se = has_se(variant)
        wd = widths(variant)
        self.stage0 = MobileOneBlock(3, wd[0], 3, 2, 1, 1, False, fused)
        cin = wd[0]
        for s in range(4):
            cout, n = wd[s + 1], STAGE_BLOCKS[s]
            # SE on the last 5 blocks of stage3 and on all of stage4 (s4 only)
            n_se = (n // 2 if s == 2 else n if s == 3 else 0) if se else 0
            mods = []
            for b in range(n):
                use_se = b >= n - n_se
                stride = 2 if b == 0 else 1
                mods.append(MobileOneBlock(cin, cin, 3, stride, cin, k, use_se, fused))
                mods.append(MobileOneBlock(cin, cout, 1, 1, 1, k, use_se, fused))
                cin = cout
            setattr(self, "stage%d" % (s + 1), nn.Sequential(*mods))
        self.linear = nn.Linear(cin, num_classes)
        self.eval()

    def stages(self):
        return [getattr(self, "stage%d" % i) for i in range(5)]

    @property
    def form(self):
        return "fused" if self.stage0.fused else "unfused"

    def set_output_stride(self, output_stride):
        dil = STAGE_DILATION[output_stride]
        for s in range(1, 5):
            for m in getattr(self, "stage%d" % s):
                m.set_dilation(dil[s - 1])

    def forward(self, x, output_stride=32):
        self.set_output_stride(output_stride)
        out = {}
        for i, st in enumerate(self.stages()):
            x = st(x)
            out["stage%d" % i] = x
        out["logits"] = self.linear(x.mean(dim=(2, 3)))
        return out

    def reparameterize(self):
        """Fuse every block in place (no-op on a fused model); returns self."""
        for m in self.modules():
            if isinstance(m, MobileOneBlock):
                m.reparameterize()
        return self


@functools.lru_cache(maxsize=None)
def _expected_shapes(variant, form):
    m = MobileOne(variant, fused=(form == "fused"))
    return tuple((k, tuple(v.shape)) for k, v in m.state_dict().items()
                 if not k.endswith("num_batches_tracked"))


def expected_shapes(variant, form):
    """{Apple key: shape} of a checkpoint of this variant/form (no num_batches_tracked),
    read off the reference model itself so the table cannot drift from it."""
    return dict(_expected_shapes(variant, form))


def clean_state_dict(obj):
    """Apple checkpoint object -> {key: tensor}: unwrap `state_dict`/`model`, strip
    `module.` prefixes (DataParallel), drop `num_batches_tracked`."""
    if isinstance(obj, dict):
        for key in ("state_dict", "model"):
            if key in obj and isinstance(obj[key], dict):
                obj = obj[key]
                break
    out = {}
    for k, v in obj.items():
        if not torch.is_tensor(v):
            continue
        while k.startswith("module."):
            k = k[len("module."):]
        if k.endswith("num_batches_tracked"):
            continue
        out[k] = v
    return out


def load_checkpoint(path):
    """Read a `.pth(.tar)` and return its cleaned state_dict."""
    obj = torch.load(path, map_location="cpu")
    return clean_state_dict(obj)


def state_dict_form(sd):
    """'fused', 'unfused', or raise ValueError for a mix / no backbone."""
    fused = any(".reparam_conv." in "." + k for k in sd)
    unfused = any(".rbr_" in "." + k for k in sd)
    if fused and unfused:
        raise ValueError("checkpoint mixes fused (reparam_conv) and unfused (rbr_*) modules")
    if not fused and not unfused:
        raise ValueError("checkpoint has neither reparam_conv nor rbr_* keys")
    return "fused" if fused else "unfused"


def check_state_dict(sd, variant, form=None):
    """Compare keys/shapes with the variant; returns (missing, unexpected, wrong_shape)."""
    form = form or state_dict_form(sd)
    exp = expected_shapes(variant, form)
    missing = sorted(k for k in exp if k not in sd)
    unexpected = sorted(k for k in sd if k not in exp)
    wrong = sorted((k, tuple(sd[k].shape), exp[k]) for k in exp
                   if k in sd and tuple(sd[k].shape) != exp[k])
    return missing, unexpected, wrong


def infer_variant(sd):
    """Variant whose key/shape table matches `sd` exactly; ValueError if none or several."""
    form = state_dict_form(sd)
    hits = [v for v in VARIANTS if check_state_dict(sd, v, form) == ([], [], [])]
    if len(hits) != 1:
        raise ValueError("cannot infer the variant: %s" %
                         ("no variant matches" if not hits else "matches %s" % hits))
    return hits[0]


def from_state_dict(sd, variant=None):
    """Build a MobileOne (fused or unfused as the weights are) and load `sd` strictly."""
    sd = clean_state_dict(sd)
    variant = variant or infer_variant(sd)
    form = state_dict_form(sd)
    missing, unexpected, wrong = check_state_dict(sd, variant, form)
    if missing or unexpected or wrong:
        raise ValueError("state_dict does not fit %s (%s): missing %s, unexpected %s, "
                         "wrong shape %s" % (variant, form, missing[:5], unexpected[:5], wrong[:5]))
    nc = sd["linear.weight"].shape[0]
    m = MobileOne(variant, fused=(form == "fused"), num_classes=nc)
    m.load_state_dict(sd, strict=False)
    return m


def randomize_(model, seed, gain=1.0):
    """Seeded random weights with non-trivial BatchNorm statistics, for tests.

    Conv weights are scaled by the number of branches so activations stay O(1) through
    all 28 blocks; BN: gamma in [0.5, 1.5], beta and running_mean in [-0.2, 0.2],
    running_var in [0.5, 2]; SE and linear get small random biases.
    """
    g = torch.Generator().manual_seed(seed)

    def U(shape, lo, hi):
        return torch.rand(shape, generator=g, dtype=torch.float64) * (hi - lo) + lo

    def N(shape, std):
        return torch.randn(shape, generator=g, dtype=torch.float64) * std

    with torch.no_grad():
        for name, m in model.named_modules():
            if isinstance(m, MobileOneBlock):
                fan_in = (m.cin // m.groups) * m.kernel * m.kernel
                if m.fused:
                    m.reparam_conv.weight.copy_(N(m.reparam_conv.weight.shape,
                                                  gain * math.sqrt(2.0 / fan_in)))
                    m.reparam_conv.bias.copy_(U(m.cout, -0.2, 0.2))
                    bns = []
                else:
                    nb = len(m.rbr_conv) + hasattr(m, "rbr_scale") + hasattr(m, "rbr_skip")
                    std = gain * math.sqrt(2.0 / (fan_in * nb))
                    for br in m.rbr_conv:
                        br.conv.weight.copy_(N(br.conv.weight.shape, std))
                    bns = [br.bn for br in m.rbr_conv]
                    if hasattr(m, "rbr_scale"):
                        fi = m.cin // m.groups
                        m.rbr_scale.conv.weight.copy_(N(m.rbr_scale.conv.weight.shape,
                                                        gain * math.sqrt(2.0 / (fi * nb))))
                        bns.append(m.rbr_scale.bn)
                    if hasattr(m, "rbr_skip"):
                        bns.append(m.rbr_skip)
                for bn in bns:
                    c = bn.num_features
                    bn.weight.copy_(U(c, 0.5, 1.5))
                    bn.bias.copy_(U(c, -0.2, 0.2))
                    bn.running_mean.copy_(U(c, -0.2, 0.2))
                    bn.running_var.copy_(U(c, 0.5, 2.0))
                if hasattr(m, "se"):
                    r, c = m.se.reduce.weight.shape[:2]
                    m.se.reduce.weight.copy_(N(m.se.reduce.weight.shape, math.sqrt(2.0 / c)))
                    m.se.reduce.bias.copy_(U(r, -0.2, 0.2))
                    m.se.expand.weight.copy_(N(m.se.expand.weight.shape, math.sqrt(1.0 / r)))
                    m.se.expand.bias.copy_(U(c, 0.0, 1.0))
        c = model.linear.in_features
        model.linear.weight.copy_(N(model.linear.weight.shape, math.sqrt(1.0 / c)))
        model.linear.bias.copy_(U(model.linear.out_features, -0.2, 0.2))
    return model


def calibrate_(model, seed=12345, size=(64, 64)):
    """Keep random activations O(1) through all 28 blocks: scale each block's
    branches by a power of two so its pre-activation RMS on a fixed random input is
    in [0.7, 1.4]. Powers of two keep this exact and reproducible across machines."""
    x = torch.randn(1, 3, size[0], size[1], generator=torch.Generator().manual_seed(seed))
    model.set_output_stride(32)
    with torch.no_grad():
        for st in model.stages():
            for m in (st if isinstance(st, nn.Sequential) else [st]):
                rms = m.pre_activation(x).double().pow(2).mean().sqrt().item()
                m.scale_output_(2.0 ** -round(math.log2(rms)))
                x = m(x)
    return model


def random_model(variant, form, seed):
    """A seeded random model; the fused form is the reparameterization of a random
    unfused one, so its biases and kernels look like real fused weights."""
    m = calibrate_(randomize_(MobileOne(variant, fused=False), seed))
    if form == "fused":
        m.reparameterize()
    return m


def preprocess(path, resize=256, crop=224):
    """torchvision preprocessing of the spec: shorter side to 256 (PIL bilinear,
    antialiased), centre crop 224, [0,1], ImageNet mean/std. Returns [3,H,W]."""
    from PIL import Image
    import torchvision.transforms as T
    tf = T.Compose([T.Resize(resize), T.CenterCrop(crop), T.ToTensor(),
                    T.Normalize(IMAGENET_MEAN, IMAGENET_STD)])
    with Image.open(path) as im:
        return tf(im.convert("RGB"))


def _cmd_classify(args):
    model = from_state_dict(load_checkpoint(args.checkpoint), args.variant)
    for path in args.images:
        with torch.no_grad():
            p = torch.softmax(model(preprocess(path)[None])["logits"][0].double(), 0)
        top = torch.topk(p, 5)
        print("%s: %s" % (path, ", ".join("%d:%.4f" % (i, v) for v, i in
                                          zip(top.values.tolist(), top.indices.tolist()))))
    return 0


def _cmd_check_reparam(args):
    """Unfused vs reparameterized (and train-time vs fused per output stride)."""
    worst = 0.0
    for v in args.variants.split(","):
        m = random_model(v, "unfused", args.seed)
        x = torch.randn(1, 3, args.height, args.width, generator=torch.Generator().manual_seed(1))
        f = random_model(v, "unfused", args.seed).reparameterize()
        parts = []
        with torch.no_grad():
            for os_ in (32, 16, 8):
                a, b = m(x, os_), f(x, os_)
                d_l = (a["logits"] - b["logits"]).abs().max().item()
                d_f = max(((a[k] - b[k]).abs().max() / a[k].abs().max()).item()
                          for k in ("stage1", "stage2", "stage3", "stage4"))
                parts.append("os%d logits %.2e (|logits| max %.2f) feat rel %.2e" %
                             (os_, d_l, a["logits"].abs().max().item(), d_f))
                worst = max(worst, d_l)
        print("%s: %s" % (v, "; ".join(parts)))
    print("max abs logit diff over all: %.3e" % worst)
    return 0 if worst < args.tol else 1


def _main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("classify", help="classify images with a checkpoint")
    c.add_argument("--checkpoint", default="../shared/models/mobileone_s0.pth.tar")
    c.add_argument("--variant", default=None, help="default: inferred from the weights")
    c.add_argument("images", nargs="+")
    r = sub.add_parser("check-reparam", help="unfused vs reparameterized on random weights")
    r.add_argument("--variants", default=",".join(VARIANTS))
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--height", type=int, default=96)
    r.add_argument("--width", type=int, default=128)
    r.add_argument("--tol", type=float, default=1e-3)
    args = ap.parse_args(argv)
    torch.set_num_threads(max(1, torch.get_num_threads(), _cpus()))
    return _cmd_classify(args) if args.cmd == "classify" else _cmd_check_reparam(args)


def _cpus():
    import os
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1


if __name__ == "__main__":
    sys.exit(_main())
