#!/usr/bin/python3
"""Convert a PyTorch checkpoint of MobileOne + SSDLite (tools/ssdlite_ref.py) to model files.

Why this exists: the C SDK reads only our format (weights/FORMAT.md). A detection head is
usually shipped as a head-only file (`mo.contents` ["det"]) next to the backbone file it
was trained with; the head file names that backbone (`mo.variant`, `mo.backbone_digest`)
so the C loader refuses it with any other backbone. Every tensor is checked against the
architecture the checkpoint's configuration describes before anything is written.

  convert_ssdlite.py CKPT.pth det.mo.safetensors                 # head only (default)
  convert_ssdlite.py CKPT.pth det.mo.safetensors --backbone-file s0.mo.safetensors
  convert_ssdlite.py CKPT.pth all.mo.safetensors --combined       # backbone + head
  convert_ssdlite.py CKPT.pth det.mo.safetensors --backbone-out s0.mo.safetensors
  convert_ssdlite.py CKPT.pth det.mo.safetensors --fp16           # F16 head tensors

The checkpoint is what `ssdlite_ref.py random/train` saves ({"state_dict", "config",
"variant"}) or a bare state_dict of that model (SSDLite320 COCO configuration assumed,
variant inferred). Key mapping: backbone.body.* -> backbone.*, backbone.extra.* ->
det.extra.*, head.* -> det.head.*; num_batches_tracked is dropped.
The backbone digest is that of the backbone tensors as this script (or
convert_mobileone.py, for the same weights) writes them in F32; with --backbone-file it is
that file's digest, after checking that the file holds the checkpoint's backbone weights.
Exit status 1 on any validation error.
"""

import argparse
import math
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mobileone_ref as ref  # noqa: E402
import mofile  # noqa: E402
import ssdlite_ref as sref  # noqa: E402


class ConvertError(Exception):
    pass


def read_checkpoint(path):
    """(state_dict, config, variant or None, source or None) from a checkpoint file; the
    source is the "train" record a trainer (tools/train/train_det.py) left in it, as JSON
    for `mo.source` (command, seed, steps, seconds, cache digests)."""
    try:
        obj = torch.load(path, map_location="cpu")
    except Exception as e:  # pickle/zip errors come in many types
        raise ConvertError("cannot read %s: %s" % (path, e))
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        return obj["state_dict"], obj.get("config") or {}, obj.get("variant"), \
            _training_record(obj.get("train"), path)
    if isinstance(obj, dict):
        return obj, {}, None, None
    raise ConvertError("%s holds no state_dict" % path)


def _training_record(rec, path):
    if not isinstance(rec, dict):
        return None
    import json
    rec = {k: v for k, v in rec.items() if k != "log"}  # the loss log stays in the checkpoint
    return json.dumps(dict(rec, checkpoint=os.path.basename(path)), separators=(",", ":"))


def split(sd):
    """Checkpoint keys -> ({Apple backbone name: t}, {det.* name: t})."""
    body, det, other = {}, {}, []
    for k, v in sd.items():
        if not torch.is_tensor(v) or k.endswith("num_batches_tracked"):
            continue
        while k.startswith("module."):
            k = k[len("module."):]
        if k.startswith("backbone.body."):
            body[k[len("backbone.body."):]] = v
        elif k.startswith(("backbone.extra.", "backbone.neck.")):
            det["det." + k[len("backbone."):]] = v
        elif k.startswith("head."):
            det["det." + k] = v
        else:
            other.append(k)
    if other:
        raise ConvertError("unexpected keys (not backbone.body.*, backbone.extra.*, "
                           "backbone.neck.*, head.*): %s"
                           % other[:10])
    return body, det


def validate(sd, config, variant):
    """Check every key and shape against the reference model of this configuration."""
    body, _ = split(sd)
    if not body:
        raise ConvertError("checkpoint has no backbone.body.* tensors")
    form = ref.state_dict_form(body)
    if variant is None:
        hits = []
        for v in ref.VARIANTS:
            missing, unexpected, wrong = ref.check_state_dict(body, v, form)
            if not [k for k in missing if not k.startswith("linear.")] and not unexpected \
                    and not wrong:
                hits.append(v)
        if len(hits) != 1:
            raise ConvertError("cannot infer the MobileOne variant of the backbone (%s); pass "
                               "--variant" % ("fits %s" % hits if hits else "fits none"))
        variant = hits[0]
    try:
        model = sref.build(variant, form == "fused", config)
    except (ValueError, KeyError, TypeError) as e:
        raise ConvertError("configuration %s: %s" % (config, e))
    exp = {k: tuple(v.shape) for k, v in model.state_dict().items()
           if not k.endswith("num_batches_tracked")}
    got = {k: tuple(v.shape) for k, v in sd.items()
           if torch.is_tensor(v) and not k.endswith("num_batches_tracked")}
    missing = sorted(set(exp) - set(got))
    unexpected = sorted(set(got) - set(exp))
    wrong = sorted((k, got[k], exp[k]) for k in set(exp) & set(got) if got[k] != exp[k])
    if missing or unexpected or wrong:
        lines = ["checkpoint does not fit MobileOne-%s + SSDLite (%d classes, extra channels %s, "
                 "aspect ratios %s): %d missing, %d unexpected, %d wrong shape"
                 % (variant, model.config["num_classes"], model.config["extra_channels"],
                    model.config["aspect_ratios"], len(missing), len(unexpected), len(wrong))]
        lines += ["  missing: %s" % k for k in missing[:15]]
        lines += ["  unexpected: %s" % k for k in unexpected[:15]]
        lines += ["  wrong shape: %s is %s, expected %s" % w for w in wrong[:15]]
        raise ConvertError("\n".join(lines))
    return variant, form, model.config


def det_metadata(config):
    cfg = dict(sref.DEFAULT_CONFIG, **config)
    if len(cfg["classes"]) != cfg["num_classes"]:
        raise ConvertError("%d class names for %d classes" % (len(cfg["classes"]),
                                                              cfg["num_classes"]))
    return {
        "det.arch": "ssdlite",
        "det.classes": list(cfg["classes"]),
        "det.num_classes": str(cfg["num_classes"]),
        "det.input_size": list(cfg["input_size"]),
        "det.aspect_ratios": [list(a) for a in cfg["aspect_ratios"]],
        "det.min_ratio": repr(float(cfg["min_ratio"])),
        "det.max_ratio": repr(float(cfg["max_ratio"])),
        "det.extra_channels": list(cfg["extra_channels"]),
        **({"det.neck_channels": list(cfg["neck_channels"])} if any(cfg["neck_channels"])
           else {}),
        "det.bn_eps": repr(float(cfg["bn_eps"])),
        "det.box_weights": [10.0, 10.0, 5.0, 5.0],
        "det.box_clip": repr(math.log(1000.0 / 16)),
        "mo.mean": list(cfg["mean"]),
        "mo.std": list(cfg["std"]),
    }


def backbone_tensors(body):
    return {"backbone." + k: v.detach().to(torch.float32).contiguous() for k, v in body.items()}


def check_backbone_file(path, body, variant):
    """Digest of a backbone model file after checking it holds these backbone weights."""
    try:
        tensors, meta = mofile.read(path)
    except (OSError, mofile.FormatError) as e:
        raise ConvertError("cannot read %s: %s" % (path, e))
    if meta.get("mo.variant") != variant:
        raise ConvertError("%s is MobileOne-%s, the checkpoint's backbone is %s"
                           % (path, meta.get("mo.variant"), variant))
    mine = backbone_tensors(body)
    theirs = {k: v for k, v in tensors.items() if k.startswith("backbone.")}
    if set(mine) != set(theirs):
        raise ConvertError("%s has other backbone tensors than the checkpoint (%d vs %d; "
                           "fused vs unfused?)" % (path, len(theirs), len(mine)))
    for k, v in mine.items():
        a = v.numpy().astype(theirs[k].dtype)
        if a.shape != theirs[k].shape or not np.array_equal(a, theirs[k]):
            raise ConvertError("%s: tensor %s differs from the checkpoint's backbone" % (path, k))
    return mofile.digest(tensors, "backbone.")


def build_files(sd, config, variant, combined=False, backbone_file=None, source=""):
    """{kind: (tensors, metadata)} with kind "det" (head only or combined), and "backbone"."""
    variant, form, cfg = validate(sd, config, variant)
    body, det = split(sd)
    bt = backbone_tensors(body)
    digest = check_backbone_file(backbone_file, body, variant) if backbone_file else \
        mofile.digest(bt, "backbone.")
    bmeta = {"mo.arch": "mobileone", "mo.variant": variant, "mo.backbone_form": form,
             "mo.contents": ["backbone"]}
    if form == "unfused":
        bmeta["mo.bn_eps"] = repr(ref.BN_EPS)
    if source:
        bmeta["mo.source"] = source
    dmeta = det_metadata(cfg)
    dmeta.update({"mo.variant": variant, "mo.backbone_digest": digest,
                  "mo.input_size": list(cfg["input_size"])})
    if source:
        dmeta["mo.source"] = source
    dt = {k: v.detach().to(torch.float32).contiguous() for k, v in det.items()}
    if combined:
        meta = dict(bmeta, **dmeta)
        meta["mo.contents"] = ["backbone", "det"]
        return {"det": (dict(bt, **dt), meta), "backbone": (bt, bmeta)}
    dmeta["mo.contents"] = ["det"]
    return {"det": (dt, dmeta), "backbone": (bt, bmeta)}


def _main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("checkpoint")
    ap.add_argument("out", help="the head file (with --combined: backbone + head)")
    ap.add_argument("--combined", action="store_true", help="one file with backbone and head")
    ap.add_argument("--backbone-file", help="take the digest from this backbone model file "
                    "(checked to hold the checkpoint's backbone)")
    ap.add_argument("--backbone-out", help="also write the backbone alone to this file")
    ap.add_argument("--variant", choices=ref.VARIANTS, help="default: from the checkpoint")
    ap.add_argument("--source", help="mo.source text (default: the checkpoint's training "
                    "record as JSON, else its file name)")
    ap.add_argument("--fp16", action="store_true",
                    help="store the head file's tensors as F16 (half the size)")
    a = ap.parse_args(argv)
    try:
        sd, config, variant, record = read_checkpoint(a.checkpoint)
        source = a.source or record or "converted from %s" % os.path.basename(a.checkpoint)
        files = build_files(sd, config, a.variant or variant, a.combined, a.backbone_file,
                            source)
        tensors, meta = files["det"]
        size = mofile.write(a.out, tensors, meta, a.fp16)
        print("%s: %s, %d tensors, %.3f M params, %d bytes, backbone MobileOne-%s digest %s"
              % (a.out, "backbone + SSDLite head" if a.combined else "SSDLite head",
                 len(tensors), sum(t.numel() for t in tensors.values()) / 1e6, size,
                 meta["mo.variant"], meta["mo.backbone_digest"]))
        if a.backbone_out:
            bt, bmeta = files["backbone"]
            size = mofile.write(a.backbone_out, bt, bmeta)
            print("%s: backbone, %d tensors, %d bytes, digest %s"
                  % (a.backbone_out, len(bt), size, mofile.digest(bt, "backbone.")))
    except (ConvertError, OSError, ValueError) as e:
        print("error: %s" % e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(_main())
