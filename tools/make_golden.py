#!/usr/bin/python3
"""Write golden model + vector files that the C tests compare against.

Why this exists: the C backbone must reproduce tools/mobileone_ref.py on the same
weights and input. This script writes, per case, a model file (random seeded weights,
fused or unfused) and a vectors file with the reference input and outputs, both in
our format, so the C tests need no Python. It runs in CI, so it is kept fast.

Cases (all seeded, so reruns on one machine give identical files):
  {v}_{form}           v in s0..s4, form in unfused/fused, input 64x96
  s0_fused_224         the s0_fused model on a 224x224 input (vectors only)
  s1_fused_f16         weights stored as F16; outputs computed from the F16 values
  s0_real_tabby        the real S0 checkpoint (converted) on tabby_cat.jpg preprocessed by
                       torchvision; skipped with a message when ../shared is absent

Vectors file (metadata mo.contents = [], mo.vectors = 1; tensors float32, NHWC):
  input            [H, W, 3]   normalized input
  os{S}.stage{L}   [h, w, c]   stage L (1..4) output at output stride S (32, 16, 8)
  logits           [K]         classifier on the OS-32 stage4 output
  fused.logits     [K]         unfused cases: logits of the reference's reparameterized model
A manifest `golden.json` lists every case.

  make_golden.py --out DIR [--variants s0,s1] [--no-real]
"""

import argparse
import copy
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import convert_mobileone as conv  # noqa: E402
import mobileone_ref as ref  # noqa: E402
import mofile  # noqa: E402

_SHARED = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                        "..", "..", "shared"))
OUTPUT_STRIDES = (32, 16, 8)


def random_input(h, w, seed):
    """A 'normalized-like' input: uniform [0,1] RGB normalized with ImageNet mean/std."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(3, h, w, generator=g)
    mean = torch.tensor(ref.IMAGENET_MEAN).reshape(3, 1, 1)
    std = torch.tensor(ref.IMAGENET_STD).reshape(3, 1, 1)
    return ((x - mean) / std)[None]


def nhwc(t):
    return t[0].permute(1, 2, 0).contiguous()


def vectors(model, x, fused_model=None):
    """Reference outputs of `model` on NCHW `x`, as {name: tensor} in NHWC."""
    out = {"input": nhwc(x)}
    with torch.no_grad():
        for s in OUTPUT_STRIDES:
            r = model(x, s)
            for lvl in range(1, 5):
                out["os%d.stage%d" % (s, lvl)] = nhwc(r["stage%d" % lvl])
            if s == 32:
                out["logits"] = r["logits"][0].contiguous()
        if fused_model is not None:
            out["fused.logits"] = fused_model(x, 32)["logits"][0].contiguous()
    return out


class Writer:
    def __init__(self, out):
        self.out = out
        self.cases = []
        self.total = 0

    def file(self, name, tensors, meta, fp16=False):
        path = os.path.join(self.out, name)
        size = mofile.write(path, tensors, meta, fp16)
        self.total += size
        print("  %-40s %8.1f KiB" % (name, size / 1024.0))
        return size

    def model(self, name, model, source, classes=None, fp16=False):
        sd = ref.clean_state_dict(model.state_dict())
        tensors, meta = conv.build(sd, model.variant, model.form, classes, source, fp16)
        self.file(name, tensors, meta)
        return mofile.digest(tensors, "backbone.")

    def case(self, case, model_file, digest, variant, form, x, vecs, extra=None):
        meta = {"mo.contents": [], "mo.vectors": "1", "vec.case": case,
                "vec.model": model_file, "vec.backbone_digest": digest,
                "vec.variant": variant, "vec.form": form,
                "vec.input_size": [x.shape[2], x.shape[3]],
                "vec.output_strides": list(OUTPUT_STRIDES)}
        meta.update(extra or {})
        name = case + ".vectors.safetensors"
        self.file(name, vecs, meta)
        entry = {"case": case, "model": model_file, "vectors": name, "variant": variant,
                 "form": form, "height": x.shape[2], "width": x.shape[3],
                 "backbone_digest": digest}
        for k, v in (extra or {}).items():  # metadata strings -> typed JSON values
            entry[k[4:]] = int(v) if k in ("vec.seed", "vec.top1") else \
                float(v) if k == "vec.top1_prob" else v
        self.cases.append(entry)


def _f16_round_(model):
    """Round every parameter/buffer to F16 and back, as a C reader of F16 files sees it."""
    with torch.no_grad():
        for t in list(model.parameters()) + list(model.buffers()):
            if t.is_floating_point():
                t.copy_(t.half().float())
    return model


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True, help="output directory (created)")
    ap.add_argument("--variants", default=",".join(ref.VARIANTS))
    ap.add_argument("--forms", default="unfused,fused")
    ap.add_argument("--height", type=int, default=64)
    ap.add_argument("--width", type=int, default=96)
    ap.add_argument("--seed", type=int, default=100, help="base seed")
    ap.add_argument("--checkpoint", default=os.path.join(_SHARED, "models", "mobileone_s0.pth.tar"))
    ap.add_argument("--image", default=os.path.join(_SHARED, "data", "images", "tabby_cat.jpg"))
    ap.add_argument("--no-real", action="store_true", help="skip the real-checkpoint case")
    ap.add_argument("--no-extra", action="store_true", help="skip the 224 and F16 cases")
    args = ap.parse_args(argv)

    torch.set_num_threads(max(torch.get_num_threads(), len(os.sched_getaffinity(0))))
    os.makedirs(args.out, exist_ok=True)
    t0 = time.time()
    w = Writer(args.out)
    variants = [v for v in args.variants.split(",") if v]
    forms = [f for f in args.forms.split(",") if f]
    for v in variants:
        if v not in ref.VARIANTS:
            ap.error("unknown variant %s" % v)
        for form in forms:
            seed = args.seed + 2 * ref.VARIANTS.index(v) + (form == "fused")
            case = "%s_%s" % (v, form)
            model_file = case + ".mo.safetensors"
            model = ref.random_model(v, form, seed)
            digest = w.model(model_file, model, "random weights, seed %d, tools/make_golden.py" % seed)
            x = random_input(args.height, args.width, seed + 1000)
            fused = copy.deepcopy(model).reparameterize() if form == "unfused" else None
            w.case(case, model_file, digest, v, form, x, vectors(model, x, fused),
                   {"vec.seed": str(seed)})
            if v == "s0" and form == "fused" and not args.no_extra:
                x = random_input(224, 224, seed + 2000)
                w.case("s0_fused_224", model_file, digest, v, form, x, vectors(model, x),
                       {"vec.seed": str(seed)})

    if not args.no_extra and "s1" in variants:
        seed = args.seed + 50
        model = _f16_round_(ref.random_model("s1", "fused", seed))
        sd = ref.clean_state_dict(model.state_dict())
        tensors, meta = conv.build(sd, "s1", "fused", None,
                                   "random weights, seed %d, F16, tools/make_golden.py" % seed,
                                   fp16=True)
        w.file("s1_fused_f16.mo.safetensors", tensors, meta)
        digest = mofile.digest(tensors, "backbone.")
        x = random_input(args.height, args.width, seed + 1000)
        w.case("s1_fused_f16", "s1_fused_f16.mo.safetensors", digest, "s1", "fused", x,
               vectors(model, x), {"vec.seed": str(seed), "vec.dtype": "F16"})

    skipped = {}  # in the manifest, so a test can tell a case not made from a lost one
    if args.no_real:
        skipped["real"] = "--no-real"
    else:
        if not (os.path.exists(args.checkpoint) and os.path.exists(args.image)):
            skipped["real"] = "%s or %s is absent" % (args.checkpoint, args.image)
            print("skipping the real-checkpoint case: %s" % skipped["real"])
        else:
            sd = ref.load_checkpoint(args.checkpoint)
            v, form = conv.resolve_variant(sd)
            classes = (conv.read_classes(conv.DEFAULT_CLASSES)
                       if os.path.exists(conv.DEFAULT_CLASSES) else None)
            tensors, meta = conv.build(sd, v, form, classes,
                                       "converted from %s" % os.path.basename(args.checkpoint))
            model_file = "%s_real.mo.safetensors" % v
            w.file(model_file, tensors, meta)
            digest = mofile.digest(tensors, "backbone.")
            model = ref.from_state_dict(sd, v)
            x = ref.preprocess(args.image)[None]
            vecs = vectors(model, x)
            p = torch.softmax(vecs["logits"].double(), 0)
            top = int(p.argmax())
            stem = os.path.splitext(os.path.basename(args.image))[0]
            w.case("%s_real_%s" % (v, stem.split("_")[0]), model_file, digest, v, form, x, vecs,
                   {"vec.image": os.path.basename(args.image), "vec.top1": str(top),
                    "vec.top1_prob": "%.6f" % float(p[top])})
            print("  real %s: top1 %d prob %.4f" % (os.path.basename(args.image), top, float(p[top])))

    with open(os.path.join(args.out, "golden.json"), "w") as f:
        f.write(json.dumps({"cases": w.cases, "skipped": skipped}, indent=1, sort_keys=True)
                + "\n")
    print("%d cases, %.1f MiB in %s, %.1f s" % (len(w.cases), w.total / 2.0**20, args.out,
                                              time.time() - t0))
    return 0


if __name__ == "__main__":
    sys.exit(main())
