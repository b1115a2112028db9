#!/usr/bin/python3
"""Train the SSDLite extras + head on cached frozen-backbone features (issue 7).

Why this exists: the SDK's detection head (heads/detect/) has no public weights for a
MobileOne backbone, so it is distilled here from the YOLOX-Nano teacher's pseudo-labels and
coco-mini train's real boxes (pseudo_label.py), on the real MobileOne-S0 features of
augmented views (cache_features.py det). The model is tools/ssdlite_ref.py's torchvision
`SSD` (so the checkpoint is what convert_ssdlite.py reads and what the parity tests
compare C against); only its extras and head are trained.

Loss: torchvision's `SSD.compute_loss` (IoU-0.5 `SSDMatcher`, 3:1 hard-negative mining,
smooth L1 on `BoxCoder((10, 10, 5, 5))` codes), with one change: an anchor that matches no
label but overlaps an ignore box (a crowd region or an `uncertain` 0.10-0.30 teacher box)
by IoU > 0.5 is neither positive nor a negative candidate. Records without any label add
no loss (as in torchvision: their negative count is 3 x 0).

Command line (the recipe of weights/ssdlite_s0.md):
  train_det.py --feat build/feat-det --steps 1580 --seed 0 --out build/det/ssdlite_s0.pth
The checkpoint holds {"state_dict", "config", "variant", "train"}: "train" has the command,
seed, steps, seconds, losses and the sha256 of the cache's meta.json.
"""

import argparse
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from torchvision.models.detection.image_list import ImageList
from torchvision.models.detection.ssdlite import _normal_init
from torchvision.ops import box_iou

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, ".."))
import mobileone_ref as ref  # noqa: E402
import ssdlite_ref as sref  # noqa: E402
from cache_features import sha256  # noqa: E402  (one file-digest helper)



class FeatureCache:
    """The det cache: fp16 stage3 / stage4 memmaps and per-record targets."""

    def __init__(self, folder, relabel=None):
        with open(os.path.join(folder, "meta.json")) as f:
            self.meta = json.load(f)
        if self.meta.get("vetoed"):
            relabel = None  # det_scenes.py applied the ImageNet veto before augmenting
        if self.meta["task"] != "det":
            raise ValueError("%s is a %s cache, not det" % (folder, self.meta["task"]))
        self.maps = {k: np.memmap(os.path.join(folder, v["file"]), np.float16, "r",
                                  shape=tuple(v["shape"])) for k, v in self.meta["maps"].items()}
        with open(os.path.join(folder, "targets.json")) as f:
            recs = json.load(f)
        self.n = self.meta["records"]
        if len(recs) != self.n:
            raise ValueError("%d targets for %d records" % (len(recs), self.n))

        def boxes(lst):
            return torch.tensor(lst, dtype=torch.float32).reshape(-1, 4)

        if relabel:
            recs = [relabel(r) for r in recs]

        self.targets = [{"boxes": boxes(r["boxes"]),
                         "labels": torch.tensor(r["labels"], dtype=torch.int64),
                         "ignore": boxes(r["ignore"])} for r in recs]
        self.meta_sha256 = sha256(os.path.join(folder, "meta.json"))

    def batch(self, idx):
        idx = np.sort(idx)  # memmap reads in file order
        feats = [torch.from_numpy(self.maps[k][idx].astype(np.float32)) for k in ("stage3", "stage4")]
        return feats, [self.targets[i] for i in idx]


class Caches:
    """Several det caches (e.g. views 0-3 and views 4-11 of the same images) as one."""

    def __init__(self, folders, relabel=None, repeat=None):
        self.parts = [FeatureCache(f, relabel) for f in folders]
        self.starts = np.cumsum([0] + [c.n for c in self.parts])
        self.n = int(self.starts[-1])
        self.meta_sha256 = [c.meta_sha256 for c in self.parts]
        # one pass: every record of cache i repeat[i] times (oversampling small real sets)
        self.repeat = list(repeat or [1] * len(self.parts))
        if len(self.repeat) != len(self.parts):
            raise ValueError("%d --repeat values for %d caches" % (len(self.repeat), len(self.parts)))
        self.pass_index = np.concatenate(
            [np.tile(np.arange(lo, hi), r) for lo, hi, r in
             zip(self.starts[:-1], self.starts[1:], self.repeat)]).astype(np.int64)

    def batch(self, idx):
        idx = np.sort(idx)
        feats, targets = [[], []], []
        for c, lo, hi in zip(self.parts, self.starts[:-1], self.starts[1:]):
            sel = idx[(idx >= lo) & (idx < hi)] - lo
            if len(sel):
                f, t = c.batch(sel)
                feats[0].append(f[0])
                feats[1].append(f[1])
                targets += t
        return [torch.cat(f) for f in feats], targets


def heads_forward(model, stage3, stage4):
    """SSD's feature list (necks, extras) and head outputs, from cached maps."""
    feats = model.backbone.maps([stage3, stage4])
    return feats, model.head(feats)


def make_anchors(model, feats):
    """The model's default boxes for its input size (xyxy in input pixels), as SSD.forward
    computes them."""
    h, w = model.config["input_size"]
    images = ImageList(torch.zeros(1, 3, h, w), [(h, w)])
    with torch.no_grad():
        return model.anchor_generator(images, [f[:1] for f in feats])[0]


def ssd_loss(model, head_out, anchors, targets):
    """torchvision SSD.compute_loss with ignore regions (module comment)."""
    cls_logits = head_out["cls_logits"]
    bbox_reg = head_out["bbox_regression"]
    n_fg = 0
    bbox_loss = []
    cls_targets = []
    ignored = []
    for t, reg, logit in zip(targets, bbox_reg, cls_logits):
        n_anch = anchors.shape[0]
        if t["boxes"].numel():
            matched = model.proposal_matcher(box_iou(t["boxes"], anchors))
        else:
            matched = torch.full((n_anch,), -1, dtype=torch.int64)
        fg = torch.where(matched >= 0)[0]
        n_fg += fg.numel()
        target_reg = model.box_coder.encode_single(t["boxes"][matched[fg]], anchors[fg])
        bbox_loss.append(F.smooth_l1_loss(reg[fg], target_reg, reduction="sum"))
        gt = torch.zeros(n_anch, dtype=torch.int64)
        gt[fg] = t["labels"][matched[fg]]
        cls_targets.append(gt)
        ign = torch.zeros(n_anch, dtype=torch.bool)
        if t["ignore"].numel():
            ign = box_iou(t["ignore"], anchors).max(0).values > 0.5
            ign[fg] = False
        ignored.append(ign)
    cls_targets = torch.stack(cls_targets)
    ignored = torch.stack(ignored)
    k = cls_logits.size(-1)
    cls_loss = F.cross_entropy(cls_logits.reshape(-1, k), cls_targets.reshape(-1),
                               reduction="none").view(cls_targets.shape)
    fg_mask = cls_targets > 0
    num_neg = model.neg_to_pos_ratio * fg_mask.sum(1, keepdim=True)
    neg_loss = cls_loss.clone()
    neg_loss[fg_mask | ignored] = -float("inf")
    _, order = neg_loss.sort(1, descending=True)
    bg_mask = (order.sort(1)[1] < num_neg) & ~fg_mask & ~ignored
    denom = max(1, n_fg)
    return {"bbox_regression": torch.stack(bbox_loss).sum() / denom,
            "classification": (cls_loss[fg_mask].sum() + cls_loss[bg_mask].sum()) / denom}


def build_model(backbone_path, seed, config=None):
    """ssdlite_ref's SSD with the real backbone and torchvision's SSDLite initialisation
    (normal(0, 0.03) convs, zero biases) of the extras and head."""
    torch.manual_seed(seed)
    sd = ref.load_checkpoint(backbone_path)
    variant = ref.infer_variant(sd)
    sd = {k: v for k, v in sd.items() if not k.startswith("linear.")}
    model = sref.build(variant, ref.state_dict_form(sd) == "fused", config)
    missing, unexpected = model.backbone.body.load_state_dict(sd, strict=False)
    if missing or unexpected:
        raise ValueError("backbone: missing %s, unexpected %s" % (missing[:5], unexpected[:5]))
    _normal_init(model.backbone.extra)
    _normal_init(model.backbone.neck)
    _normal_init(model.head)
    for p in model.backbone.body.parameters():
        p.requires_grad_(False)
    return model


def imagenet_veto(a):
    """A record filter that checks the teacher's animal boxes on ImageNet images against
    the image's ImageNet class (imagenet_coco.py); counts go to a.veto_counts."""
    import imagenet_coco
    with open(os.path.join(a.label_cache, "det.json")) as f:
        files = [e["file"] for e in json.load(f)["images"]]
    classes = imagenet_coco.read_labels(a.shared)
    a.veto_counts = {"relabelled": 0, "to_ignore": 0}

    def relabel(rec):
        k = classes.get(os.path.basename(files[rec["entry"]]))
        if k is None:
            return rec
        keep, labels, ign = imagenet_coco.veto(rec["boxes"], rec["labels"], rec["origin"], k)
        a.veto_counts["relabelled"] += sum(1 for x, y in zip(labels, rec["labels"]) if x != y)
        a.veto_counts["to_ignore"] += sum(ign)
        return dict(rec, boxes=[b for b, k2 in zip(rec["boxes"], keep) if k2],
                    labels=[x for x, k2 in zip(labels, keep) if k2],
                    ignore=rec["ignore"] + [b for b, i in zip(rec["boxes"], ign) if i])

    return relabel


def init_from(model, path, backbone):
    """Start the extras and head from a trained head: an SDK head file (.mo.safetensors,
    fp16 widened as the C loader does) or a train_det.py checkpoint. Returns its sha256."""
    if path.endswith(".safetensors"):
        sd = sref.from_files(backbone, path).state_dict()
    else:
        sd = torch.load(path, map_location="cpu")["state_dict"]
    sd = {k: v for k, v in sd.items() if not k.startswith("backbone.body.")}
    missing, unexpected = model.load_state_dict(sd, strict=False)
    missing = [k for k in missing if not k.startswith("backbone.body.")]
    if missing or unexpected:
        raise ValueError("--init %s: missing %s, unexpected %s" % (path, missing[:5], unexpected[:5]))
    return sha256(path)


def lr_at(step, a):
    """Linear warm-up, then cosine decay to 0."""
    if step < a.warmup:
        return a.lr * (step + 1) / a.warmup
    t = (step - a.warmup) / max(1, a.steps - a.warmup)
    return a.lr * 0.5 * (1 + math.cos(math.pi * t))


def train(a):
    torch.set_num_threads(a.threads)
    cache = Caches(a.feat, imagenet_veto(a) if a.imagenet_veto else None, a.repeat)
    if a.imagenet_veto:
        print("imagenet veto: %s" % json.dumps(a.veto_counts), flush=True)
    config = {}
    if a.min_ratio is not None:
        config["min_ratio"] = a.min_ratio
    if a.neck:
        config["neck_channels"] = a.neck
    model = build_model(a.backbone, a.seed, config)
    init_sha = init_from(model, a.init, a.backbone) if a.init else None
    model.train()
    model.backbone.body.eval()
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.ndim > 1]
    no_decay = [p for p in params if p.ndim <= 1]  # BN and biases, as torchvision's recipe
    groups = [{"params": decay, "weight_decay": a.wd},
              {"params": no_decay, "weight_decay": 0.0}]
    if a.opt == "sgd":
        opt = torch.optim.SGD(groups, lr=a.lr, momentum=0.9)
    else:
        opt = torch.optim.AdamW(groups, lr=a.lr)
    rng = np.random.Generator(np.random.PCG64(a.seed))
    order = np.empty(0, dtype=np.int64)
    anchors = None
    log = []
    t0 = time.time()
    run = {"bbox_regression": 0.0, "classification": 0.0}
    for step in range(a.steps):
        if len(order) < a.batch:
            order = np.concatenate([order, rng.permutation(cache.pass_index)])
        idx, order = order[:a.batch], order[a.batch:]
        feats, targets = cache.batch(idx)
        for g in opt.param_groups:
            g["lr"] = lr_at(step, a)
        all_feats, out = heads_forward(model, *feats)
        if anchors is None:
            anchors = make_anchors(model, all_feats)
        losses = ssd_loss(model, out, anchors, targets)
        loss = losses["bbox_regression"] + losses["classification"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        for k in run:
            run[k] += losses[k].item()
        if (step + 1) % a.log_every == 0 or step + 1 == a.steps:
            n = (step % a.log_every) + 1
            row = {"step": step + 1, "lr": round(lr_at(step, a), 6),
                   "bbox": round(run["bbox_regression"] / n, 4),
                   "cls": round(run["classification"] / n, 4),
                   "seconds": round(time.time() - t0, 1)}
            log.append(row)
            print(json.dumps(row), flush=True)
            run = {k: 0.0 for k in run}
        if a.save_every and (step + 1) % a.save_every == 0 and step + 1 < a.steps:
            torch.save({"state_dict": model.state_dict(), "config": model.config,
                        "variant": model.variant, "train": {"step": step + 1}},
                       "%s.step%d" % (a.out, step + 1))
    model.eval()
    seconds = time.time() - t0
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    obj = {"state_dict": model.state_dict(), "config": model.config, "variant": model.variant,
           "train": {"command": "tools/train/train_det.py " + " ".join(a.argv), "seed": a.seed,
                     "steps": a.steps, "batch": a.batch, "optimizer": a.opt, "lr": a.lr,
                     "imagenet_veto": getattr(a, "veto_counts", None), "warmup": a.warmup,
                     "weight_decay": a.wd, "threads": a.threads, "seconds": round(seconds, 1),
                     "cache_meta_sha256": cache.meta_sha256, "repeat": cache.repeat,
                     "config": {k: model.config[k]
                                for k in ("min_ratio", "max_ratio", "neck_channels")},
                     "log": log,
                     "init": a.init and {"file": os.path.basename(a.init), "sha256": init_sha},
                     "torch": torch.__version__}}
    torch.save(obj, a.out)
    print("%s: %d steps in %.0f s" % (a.out, a.steps, seconds))
    return 0


def main(argv=None):
    repo = os.path.normpath(os.path.join(HERE, "..", ".."))
    shared = os.environ.get("MO_SHARED", os.path.normpath(os.path.join(repo, "..", "shared")))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--feat", nargs="+", default=[os.path.join(repo, "build", "feat-det")],
                    help="cache_features.py det output folder(s)")
    ap.add_argument("--backbone", default=os.path.join(shared, "models", "mobileone_s0.pth.tar"))
    ap.add_argument("--steps", type=int, default=1580)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=0.02)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--wd", type=float, default=4e-5)
    ap.add_argument("--opt", choices=["sgd", "adamw"], default="sgd")
    ap.add_argument("--imagenet-veto", action="store_true",
                    help="check the teacher's animal boxes on ImageNet images against their "
                         "ImageNet class (tools/train/imagenet_coco.py)")
    ap.add_argument("--label-cache", default=os.path.join(repo, "build", "train-cache"),
                    help="pseudo_label.py output (det.json: record entry -> image file)")
    ap.add_argument("--shared", default=shared)
    ap.add_argument("--init", help="start extras + head from this head file (.mo.safetensors) "
                                    "or train_det.py checkpoint instead of the random init")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeat", type=int, nargs="+",
                    help="per --feat cache: how many times each record comes in one pass (default 1)")
    ap.add_argument("--min-ratio", type=float,
                    help="smallest default-box scale (det.min_ratio; default ssdlite_ref's 0.2)")
    ap.add_argument("--neck", type=int, nargs=2, metavar=("M3", "M4"),
                    help="inner widths of the stride-1 blocks on stage3 / stage4 before the "
                         "head (det.neck_channels; default none)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--log-every", type=int, default=50)
    ap.add_argument("--save-every", type=int, default=0,
                    help="also save OUT.stepN checkpoints every N steps (BN stats as they are)")
    ap.add_argument("--out", default=os.path.join(repo, "build", "det", "ssdlite_s0.pth"))
    a = ap.parse_args(argv)
    a.argv = sys.argv[1:] if argv is None else list(argv)
    return train(a)


if __name__ == "__main__":
    sys.exit(main())
