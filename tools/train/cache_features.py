#!/usr/bin/python3
"""Cache the frozen MobileOne backbone's features of augmented training views.

Why this exists: issue 7 trains only the extras and heads; the backbone (the real
MobileOne-S0 from ../shared/models, never committed) is frozen, so its forward pass is
the same in every epoch. Running it once per augmented view (augment.py) and storing the
maps the heads read turns a training epoch into a pass over small fp16 arrays. The price
is that augmentation is fixed per view: V views per image give V different
flips / scales / colours / pastes, and the trainer cycles over them.

  det  input 320x320 (REFERENCE.md section 2, the image stretched like the inference
       resize), output stride 32: stage3 [256, 20, 20] and stage4 [1024, 10, 10]; targets
       = boxes (in the 320 frame), COCO category ids, scores, origins, ignore boxes
  seg  input --size square crops (keep_aspect windows), output stride 16 (stage4 dilated,
       REFERENCE.md section 3): stage4 [1024, size/16, size/16]; targets = the VOC class
       map at the input size (255 = ignore)

View 0 of every image is the plain inference view (no flip / jitter / paste) unless
--no-plain; views 1.. are augmented with seeds (seed, image index, view).

Output folder (git-ignored, e.g. build/feat-det): meta.json (settings, backbone sha256,
shapes, seconds), one raw fp16 file per feature map (`<name>.f16`, C order [N, C, H, W],
open with numpy.memmap), det: targets.json (per record: entry index in det.json, view,
boxes, labels, scores, origin, ignore); seg: labels.u8 [N, size, size].

Command line:
  cache_features.py det --views 4 --out build/feat-det
  cache_features.py seg --views 3 --size 320 --out build/feat-seg
  cache_features.py det --views 8 --first-view 4 --out build/feat-det2   (views 4..11)
  cache_features.py verify   view 0 of a det cache vs the reference's inference input
  cache_features.py bench    backbone seconds per view and seconds per training step of
                             torchvision's SSDLite extras+head and DeepLabHead (the modules
                             tools/ssdlite_ref.py and tools/deeplab_ref.py build on) on
                             features of these shapes: the numbers of tools/train/README.md
"""

import argparse
import hashlib
import json
import os
import sys
import time

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, ".."))
import augment  # noqa: E402
import mobileone_ref as ref  # noqa: E402


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
    return h.hexdigest()


def load_backbone(path):
    m = ref.from_state_dict(ref.load_checkpoint(path)).eval()
    for p in m.parameters():
        p.requires_grad_(False)
    return m


def normalize(img):
    """[3, H, W] in 0..1 -> ImageNet-normalized [1, 3, H, W]."""
    mean = torch.tensor(ref.IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(ref.IMAGENET_STD).view(3, 1, 1)
    return ((img - mean) / std)[None]


TASKS = {
    # task: (output stride, [(tap name, channels, stride)])
    "det": (32, [("stage3", 256, 16), ("stage4", 1024, 32)]),
    "seg": (16, [("stage4", 1024, 16)]),
}


def _cmd_cache(a):
    torch.manual_seed(a.seed)
    with open(os.path.join(a.cache, "det.json")) as f:
        ents = json.load(f)["images"]
    excl = set(a.exclude.split(",")) if a.exclude else set()
    idx = [i for i, e in enumerate(ents) if e["source"] not in excl]
    if a.limit:
        idx = idx[:a.limit]
    size = 320 if a.task == "det" else a.size
    os_, taps = TASKS[a.task]
    cfg = {"out_size": [size, size]}
    if a.task == "seg":
        cfg.update(keep_aspect=True, zoom=[0.75, 1.75])
        if getattr(a, "zoom", None):  # seg_data.py's real scenes: around their native scale
            cfg.update(zoom=[float(z) for z in a.zoom.split(",")])
    bank = None if a.no_paste else augment.InstanceBank(os.path.join(a.shared, "data", "coco-mini"))
    aug = augment.Augmenter(bank, **cfg)
    plain_cfg = dict(aug.cfg, zoom=[1, 1], aspect=[1, 1], min_visible=0.0, min_box=0.0)
    bb = load_backbone(a.backbone)
    n = len(idx) * a.views
    os.makedirs(a.out, exist_ok=True)
    shapes = {name: [n, c, size // st, size // st] for name, c, st in taps}
    maps = {name: np.memmap(os.path.join(a.out, name + ".f16"), np.float16, "w+",
                            shape=tuple(shp)) for name, shp in shapes.items()}
    labels = None
    if a.task == "seg":
        labels = np.memmap(os.path.join(a.out, "labels.u8"), np.uint8, "w+", shape=(n, size, size))
    records = []
    t_aug = t_bb = 0.0
    t0 = time.time()
    k = 0
    for vi, i in enumerate(idx):
        base = augment.load_sample(ents[i], a.shared, a.cache, with_seg=(a.task == "seg"))
        for v in range(a.first_view, a.first_view + a.views):
            ta = time.time()
            rng = augment.Augmenter.rng(a.seed, i, v)
            if v == 0 and not a.no_plain:
                s = dict(base, boxes=base["boxes"].copy(), origin=list(base["origin"]),
                         seg=None if base["seg"] is None else base["seg"].copy())
                augment.scale_jitter(s, rng, plain_cfg)
            else:
                s = aug(base, rng)
            tb = time.time()
            with torch.no_grad():
                out = bb(normalize(s["image"]), os_)
            for name in maps:
                maps[name][k] = out[name][0].numpy().astype(np.float16)
            if labels is not None:
                labels[k] = s["seg"]
            t_bb += time.time() - tb
            t_aug += tb - ta
            records.append({"entry": i, "view": v,
                            "boxes": [[round(float(x), 2) for x in b] for b in s["boxes"]],
                            "labels": s["labels"].tolist(),
                            "scores": [round(float(x), 4) for x in s["scores"]],
                            "origin": s["origin"],
                            "ignore": [[round(float(x), 2) for x in b] for b in s["ignore"]]})
            k += 1
        if (vi + 1) % 100 == 0:
            print("%d/%d images, %.0f s" % (vi + 1, len(idx), time.time() - t0), flush=True)
    for m in maps.values():
        m.flush()
    if labels is not None:
        labels.flush()
    if a.task == "det":
        with open(os.path.join(a.out, "targets.json"), "w") as f:
            json.dump(records, f, separators=(",", ":"))
    total = time.time() - t0
    nbytes = sum(np.prod(s) * 2 for s in shapes.values()) + (n * size * size if labels is not None else 0)
    meta = {"task": a.task, "input_size": [size, size], "output_stride": os_,
            "records": n, "images": len(idx), "views": a.views, "first_view": a.first_view,
            "plain_view0": not a.no_plain and a.first_view == 0,
            "seed": a.seed, "augment": aug.cfg, "copy_paste": bank is not None,
            "exclude_sources": sorted(excl),
            "maps": {k2: {"file": k2 + ".f16", "dtype": "float16", "shape": v2}
                     for k2, v2 in shapes.items()},
            "labels": {"file": "labels.u8", "shape": [n, size, size]} if labels is not None else None,
            "backbone": {"path": os.path.relpath(a.backbone, a.shared) if a.backbone.startswith(a.shared) else a.backbone,
                         "sha256": sha256(a.backbone)},
            "label_cache_meta": json.load(open(os.path.join(a.cache, "det.json")))["meta"]["seconds"],
            "bytes": int(nbytes),
            "seconds": {"total": round(total, 1), "augment": round(t_aug, 1),
                        "backbone": round(t_bb, 1)},
            "threads": torch.get_num_threads(),
            "command": " ".join(sys.argv)}
    with open(os.path.join(a.out, "meta.json"), "w") as f:
        json.dump(meta, f, indent=1)
    print("%s: %d records (%d images x %d views), %.2f GB, %.0f s (augment %.0f s, backbone %.0f s)"
          % (a.out, n, len(idx), a.views, nbytes / 1e9, total, t_aug, t_bb))
    return 0


def _cmd_verify(a):
    """View 0 of a det cache against the reference inference input: torchvision's
    GeneralizedRCNNTransform (normalize, bilinear to 320x320, as SSD runs it) then the
    backbone; the difference must be fp16 rounding only."""
    from torchvision.models.detection.transform import GeneralizedRCNNTransform
    with open(os.path.join(a.dir, "meta.json")) as f:
        meta = json.load(f)
    if meta["task"] != "det" or not meta["plain_view0"]:
        print("verify needs a det cache with plain view 0")
        return 1
    with open(os.path.join(a.cache, "det.json")) as f:
        ents = json.load(f)["images"]
    with open(os.path.join(a.dir, "targets.json")) as f:
        recs = json.load(f)
    maps = {k: np.memmap(os.path.join(a.dir, v["file"]), np.float16, "r", shape=tuple(v["shape"]))
            for k, v in meta["maps"].items()}
    size = meta["input_size"]
    tr = GeneralizedRCNNTransform(size[0], size[0], list(ref.IMAGENET_MEAN), list(ref.IMAGENET_STD),
                                  size_divisible=1, fixed_size=tuple(size[::-1])).eval()
    bb = load_backbone(a.backbone)
    worst = 0.0
    checked = 0
    for r, rec in enumerate(recs):
        if rec["view"] != 0:
            continue
        img = torch.from_numpy(augment.load_rgb(os.path.join(a.shared, ents[rec["entry"]]["file"])))
        x = tr([img.permute(2, 0, 1).float() / 255.0])[0].tensors
        with torch.no_grad():
            out = bb(x, meta["output_stride"])
        for k, m in maps.items():
            ref_map = out[k][0].numpy()
            err = np.abs(ref_map - m[r].astype(np.float32)).max() / max(np.abs(ref_map).max(), 1e-6)
            worst = max(worst, float(err))
        checked += 1
        if checked >= a.n:
            break
    print("%d plain views vs GeneralizedRCNNTransform + backbone: worst relative error %.2e"
          % (checked, worst))
    return 0 if worst < 2e-3 else 1


def _time(fn, reps):
    """Median seconds of reps calls after a warm-up (the machine is shared: the median
    is less noisy than the mean)."""
    fn()
    ts = []
    for _ in range(reps):
        t0 = time.time()
        fn()
        ts.append(time.time() - t0)
    return float(np.median(ts))


def _cmd_bench(a):
    """Seconds per backbone view and per training step of the heads (batch a.batch)."""
    from functools import partial
    import torch.nn as nn
    from torchvision.models.detection.ssdlite import SSDLiteHead, _extra_block
    from torchvision.models.segmentation.deeplabv3 import ASPP
    torch.manual_seed(0)
    res = {"threads": torch.get_num_threads(), "batch": a.batch}
    bb = load_backbone(a.backbone)
    for size, os_ in ((320, 32), (320, 16), (256, 16), (384, 16)):
        x = torch.randn(1, 3, size, size)
        with torch.no_grad():
            res["backbone_%d_os%d_s" % (size, os_)] = round(_time(lambda: bb(x, os_), a.reps), 4)
    # detection: extras + SSDLite head on [256, 20, 20] + [1024, 10, 10]
    norm = partial(nn.BatchNorm2d, eps=0.001, momentum=0.03)
    ins, outs = [1024, 512, 256, 256], [512, 256, 256, 128]
    extras = nn.ModuleList(_extra_block(i, o, norm) for i, o in zip(ins, outs))
    head = SSDLiteHead([256, 1024] + outs, [6] * 6, 91, norm)
    params = list(extras.parameters()) + list(head.parameters())
    opt = torch.optim.SGD(params, lr=0.01, momentum=0.9)
    f3 = torch.randn(a.batch, 256, 20, 20)
    f4 = torch.randn(a.batch, 1024, 10, 10)

    def det_step():
        feats = [f3, f4]
        y = f4
        for e in extras:
            y = e(y)
            feats.append(y)
        out = head(feats)
        loss = out["cls_logits"].logsumexp(-1).mean() + out["bbox_regression"].abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()

    res["det_step_s"] = round(_time(det_step, a.reps), 4)
    res["det_params"] = sum(p.numel() for p in params)
    # segmentation: DeepLabHead (ASPP width w, rates) on [1024, s/16, s/16], loss at s x s
    for size, width, rates, loss_div in ((320, 256, (12, 24, 36), 1), (320, 256, (6, 12, 18), 1),
                                         (320, 256, (6, 12, 18), 4), (320, 128, (6, 12, 18), 4),
                                         (256, 256, (6, 12, 18), 4), (384, 128, (6, 12, 18), 4)):
        # DeepLabHead's layers with every 256 replaced by the width
        hd = nn.Sequential(ASPP(1024, list(rates), out_channels=width),
                           nn.Conv2d(width, width, 3, padding=1, bias=False),
                           nn.BatchNorm2d(width), nn.ReLU(), nn.Conv2d(width, 21, 1))
        o2 = torch.optim.SGD(hd.parameters(), lr=0.01, momentum=0.9)
        f = torch.randn(a.batch, 1024, size // 16, size // 16)
        ls = size // loss_div  # loss on labels at 1/loss_div of the input (nearest)
        lab = torch.randint(0, 21, (a.batch, ls, ls))
        hd.train()

        def seg_step():
            y = hd(f)
            y = torch.nn.functional.interpolate(y, size=(ls, ls), mode="bilinear",
                                                align_corners=False)
            loss = torch.nn.functional.cross_entropy(y, lab, ignore_index=255)
            o2.zero_grad()
            loss.backward()
            o2.step()

        key = "seg_%d_w%d_r%s_loss%d" % (size, width, "-".join(map(str, rates)), ls)
        res[key + "_step_s"] = round(_time(seg_step, a.reps), 4)
        res[key + "_params"] = sum(p.numel() for p in hd.parameters())
    print(json.dumps(res, indent=1))
    return 0


def main(argv=None):
    repo = os.path.normpath(os.path.join(HERE, "..", ".."))
    shared = os.environ.get("MO_SHARED", os.path.normpath(os.path.join(repo, "..", "shared")))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shared", default=shared)
    ap.add_argument("--backbone", default=os.path.join(shared, "models", "mobileone_s0.pth.tar"))
    ap.add_argument("--threads", type=int, default=2)
    sub = ap.add_subparsers(dest="cmd", required=True)
    for t in ("det", "seg"):
        p = sub.add_parser(t, help="cache %s features" % t)
        p.add_argument("--cache", default=os.path.join(repo, "build", "train-cache"),
                       help="pseudo_label.py output")
        p.add_argument("--out", default=os.path.join(repo, "build", "feat-" + t))
        p.add_argument("--views", type=int, default=4 if t == "det" else 3)
        p.add_argument("--size", type=int, default=320)
        p.add_argument("--first-view", type=int, default=0,
                       help="views first..first+views-1 (more views of an existing cache, "
                            "in a second folder: the seeds are per view)")
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--limit", type=int, default=0)
        p.add_argument("--exclude", default="voc",
                       help="sources left out (default: voc, whose 3 real targets stay for "
                            "evaluating the student)")
        p.add_argument("--no-plain", action="store_true")
        p.add_argument("--no-paste", action="store_true")
        if t == "seg":
            p.add_argument("--zoom", default=None,
                           help="Z_MIN,Z_MAX of the seg windows (default 0.75,1.75)")
    v = sub.add_parser("verify", help="det cache view 0 == the reference's inference input")
    v.add_argument("--cache", default=os.path.join(repo, "build", "train-cache"))
    v.add_argument("--dir", default=os.path.join(repo, "build", "feat-det"))
    v.add_argument("--n", type=int, default=20)
    b = sub.add_parser("bench", help="time the backbone and the heads' training steps")
    b.add_argument("--batch", type=int, default=16)
    b.add_argument("--reps", type=int, default=3)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    if a.cmd == "bench":
        return _cmd_bench(a)
    if a.cmd == "verify":
        return _cmd_verify(a)
    a.task = a.cmd
    return _cmd_cache(a)


if __name__ == "__main__":
    sys.exit(main())
