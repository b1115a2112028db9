#!/usr/bin/python3
"""Weighted average of detection heads trained from the same start (issue 12).

Why this exists: fine-tuning the issue-7 head on the ~180 real scenes fits them, and
averaging the weights of such fine-tunes with each other or with their start ("model soups",
WiSE-FT) is a training-free way to trade in-domain fit for what the start knew. Inputs are
train_det.py checkpoints or SDK head files (.mo.safetensors, fp16 widened as the C loader
does); every floating tensor of the extras and head (BN running statistics included) is
averaged, the frozen backbone is taken as it is. The output is a checkpoint that
convert_ssdlite.py reads; its "train" record (-> `mo.source`) lists each input's sha256,
weight and, for checkpoints, their own training records (command, seed, cache digests).

  blend_det.py OUT.pth A.pth B.mo.safetensors [...] [--weights 0.5 0.5 ...]
"""

import argparse
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, ".."))
import ssdlite_ref as sref  # noqa: E402
from cache_features import sha256  # noqa: E402


def main(argv=None):
    repo = os.path.normpath(os.path.join(HERE, "..", ".."))
    shared = os.environ.get("MO_SHARED", os.path.normpath(os.path.join(repo, "..", "shared")))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out")
    ap.add_argument("inputs", nargs="+")
    ap.add_argument("--weights", type=float, nargs="+", help="default: equal weights")
    ap.add_argument("--backbone", default=os.path.join(shared, "models", "mobileone_s0.pth.tar"),
                    help="the backbone checkpoint (to open .mo.safetensors head files)")
    a = ap.parse_args(argv)
    w = a.weights or [1.0 / len(a.inputs)] * len(a.inputs)
    if len(w) != len(a.inputs):
        raise SystemExit("%d weights for %d inputs" % (len(w), len(a.inputs)))
    sds, base, records = [], None, []
    for p in a.inputs:
        if p.endswith(".safetensors"):
            sds.append(sref.from_files(a.backbone, p).state_dict())
            records.append(None)
        else:
            obj = torch.load(p, map_location="cpu")
            sds.append(obj["state_dict"])
            base = base or obj
            rec = obj.get("train")
            records.append(rec and {k: v for k, v in rec.items() if k != "log"})
    if base is None:
        raise SystemExit("at least one input must be a train_det.py checkpoint (config, variant)")
    avg = {}
    for k, v in base["state_dict"].items():
        if k.startswith("backbone.body.") or not v.is_floating_point():
            avg[k] = v
        else:
            avg[k] = sum(wi * sd[k].to(torch.float32) for wi, sd in zip(w, sds)).to(v.dtype)
    train = {"command": "tools/train/blend_det.py " + " ".join(sys.argv[1:] if argv is None else argv),
             "blend": [{"file": os.path.basename(p), "sha256": sha256(p), "weight": wi, "train": r}
                       for p, wi, r in zip(a.inputs, w, records)],
             "torch": torch.__version__}
    torch.save({"state_dict": avg, "config": base["config"], "variant": base["variant"],
                "train": train}, a.out)
    print("%s: %s" % (a.out, ", ".join("%g x %s" % (wi, os.path.basename(p))
                                      for p, wi in zip(a.inputs, w))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
