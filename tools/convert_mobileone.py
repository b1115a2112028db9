#!/usr/bin/python3
"""Convert Apple-format MobileOne checkpoints to the SDK's .mo.safetensors format.

Why this exists: the C SDK reads only our format (weights/FORMAT.md), never pickles.
This script validates every tensor against the variant's architecture before writing,
so a wrong or truncated checkpoint fails here with a readable list of the problems
instead of later in C. It also writes seeded random-weight models for tests.

  convert_mobileone.py CHECKPOINT OUT.mo.safetensors [--variant s0] [--fp16] [--classes FILE]
  convert_mobileone.py --random s2 --unfused --seed 7 OUT.mo.safetensors

Backbone tensors go under `backbone.`, `linear.*` under `cls.linear.*`,
`num_batches_tracked` is dropped. Exit status 1 on any validation error.
"""

import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mobileone_ref as ref  # noqa: E402
import mofile  # noqa: E402

DEFAULT_CLASSES = os.path.normpath(os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "data",
    "imagenet-val1300", "synset_words.txt"))


class ConvertError(Exception):
    pass


def read_classes(path):
    """Class names from `wnid name, other names` lines: the text after the wnid
    (a line without a space is taken whole)."""
    names = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            parts = line.split(None, 1)
            names.append(parts[1].strip() if len(parts) == 2 else parts[0])
    return names


def _problems(sd, variant, form):
    """Validation against the reference model's key->shape table. The classifier may
    have any number of classes, but its input width must match the backbone."""
    missing, unexpected, wrong = ref.check_state_dict(sd, variant, form)
    has_cls = "linear.weight" in sd or "linear.bias" in sd
    if not has_cls:  # a backbone-only checkpoint is fine
        missing = [k for k in missing if not k.startswith("linear.")]
    keep = []
    for k, got, exp in wrong:
        if k == "linear.weight" and len(got) == 2 and got[1] == exp[1]:
            continue
        if k == "linear.bias" and len(got) == 1:
            continue
        keep.append((k, got, exp))
    if has_cls and "linear.weight" in sd and "linear.bias" in sd:
        if sd["linear.bias"].shape[0] != sd["linear.weight"].shape[0]:
            keep.append(("linear.bias", tuple(sd["linear.bias"].shape),
                         (sd["linear.weight"].shape[0],)))
    return missing, unexpected, keep


def _report(variant, form, missing, unexpected, wrong, limit=20):
    lines = ["checkpoint does not fit MobileOne-%s (%s): %d missing, %d unexpected, "
             "%d wrong shape" % (variant, form, len(missing), len(unexpected), len(wrong))]
    for title, items in (("missing", missing), ("unexpected", unexpected)):
        for k in items[:limit]:
            lines.append("  %s: %s" % (title, k))
        if len(items) > limit:
            lines.append("  ... and %d more %s" % (len(items) - limit, title))
    for k, got, exp in wrong[:limit]:
        lines.append("  wrong shape: %s is %s, expected %s" % (k, list(got), list(exp)))
    return "\n".join(lines)


def resolve_variant(sd, variant=None):
    """Check `sd` against `variant`, or infer the one variant it fits; ConvertError
    with a readable report otherwise. Returns (variant, form)."""
    try:
        form = ref.state_dict_form(sd)
    except ValueError as e:
        raise ConvertError(str(e))
    if variant:
        if variant not in ref.VARIANTS:
            raise ConvertError("unknown variant %r (s0..s4)" % variant)
        p = _problems(sd, variant, form)
        if any(p):
            raise ConvertError(_report(variant, form, *p))
        return variant, form
    scored = []
    for v in ref.VARIANTS:
        p = _problems(sd, v, form)
        scored.append((sum(len(x) for x in p), v, p))
    fits = [v for n, v, _ in scored if n == 0]
    if len(fits) == 1:
        return fits[0], form
    if len(fits) > 1:
        raise ConvertError("checkpoint fits several variants %s: pass --variant" % fits)
    n, v, p = min(scored)
    raise ConvertError("no variant fits this checkpoint; closest is %s:\n%s"
                       % (v, _report(v, form, *p)))


def build(sd, variant, form, classes=None, source="", fp16=False):
    """(tensors, metadata) of a model file for a validated state_dict."""
    tensors = {}
    for k, v in sd.items():
        v = v.detach().to(torch.float32).contiguous()
        tensors[("cls." + k) if k.startswith("linear.") else ("backbone." + k)] = v
    contents = ["backbone"]
    meta = {
        "mo.arch": "mobileone",
        "mo.variant": variant,
        "mo.backbone_form": form,
        "mo.input_size": [224, 224],
        "mo.mean": list(ref.IMAGENET_MEAN),
        "mo.std": list(ref.IMAGENET_STD),
    }
    if form == "unfused":
        meta["mo.bn_eps"] = repr(ref.BN_EPS)
    if "cls.linear.weight" in tensors:
        k = tensors["cls.linear.weight"].shape[0]
        if classes is None:
            classes = ["class_%d" % i for i in range(k)]
        if len(classes) != k:
            raise ConvertError("%d class names for a %d-class classifier" % (len(classes), k))
        contents.append("cls")
        meta.update({"cls.classes": list(classes), "cls.resize": "256", "cls.crop": "224"})
    meta["mo.contents"] = contents
    if source:
        meta["mo.source"] = source
    if fp16:
        tensors = {n: t.half() for n, t in tensors.items()}
    return tensors, meta


def _main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("paths", nargs="+", metavar="CHECKPOINT OUT",
                    help="CHECKPOINT OUT.mo.safetensors, or only OUT with --random")
    ap.add_argument("--variant", choices=ref.VARIANTS, help="default: inferred from shapes")
    ap.add_argument("--fp16", action="store_true", help="store tensors as F16")
    ap.add_argument("--classes", help="class names, `wnid name, ...` per line "
                    "(default: ../shared/.../synset_words.txt if present, else class_<i>)")
    ap.add_argument("--source", help="mo.source text (default: the checkpoint's file name)")
    ap.add_argument("--random", metavar="VARIANT", choices=ref.VARIANTS,
                    help="write seeded random weights instead of converting")
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--unfused", dest="form", action="store_const", const="unfused")
    g.add_argument("--fused", dest="form", action="store_const", const="fused")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    try:
        if args.random:
            if len(args.paths) != 1:
                ap.error("--random takes only OUT")
            out = args.paths[0]
            form = args.form or "unfused"
            model = ref.random_model(args.random, form, args.seed)
            sd = ref.clean_state_dict(model.state_dict())
            variant = args.random
            source = args.source or ("random weights, seed %d, tools/convert_mobileone.py"
                                     % args.seed)
            # random models are not ImageNet models: generic names unless asked
            classes = read_classes(args.classes) if args.classes else None
        else:
            if len(args.paths) != 2:
                ap.error("need CHECKPOINT and OUT")
            ckpt, out = args.paths
            try:
                sd = ref.load_checkpoint(ckpt)
            except Exception as e:  # pickle/zip errors come in many types
                raise ConvertError("cannot read %s: %s" % (ckpt, e))
            variant, form = resolve_variant(sd, args.variant)
            if args.form and args.form != form:
                raise ConvertError("checkpoint is %s, not %s" % (form, args.form))
            source = args.source or "converted from %s" % os.path.basename(ckpt)
            cpath = args.classes or (DEFAULT_CLASSES if os.path.exists(DEFAULT_CLASSES) else None)
            classes = read_classes(cpath) if cpath else None
        tensors, meta = build(sd, variant, form, classes, source, args.fp16)
        size = mofile.write(out, tensors, meta)
    except (ConvertError, OSError) as e:
        print("error: %s" % e, file=sys.stderr)
        return 1
    print("%s: MobileOne-%s %s, %d tensors, %.3f M params, %s, %d bytes, digest %s" % (
        out, variant, form, len(tensors), sum(t.numel() for t in tensors.values()) / 1e6,
        "F16" if args.fp16 else "F32", size, mofile.digest(tensors, "backbone.")))
    return 0


if __name__ == "__main__":
    sys.exit(_main())
