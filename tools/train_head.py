#!/usr/bin/python3
"""Train a detection or segmentation head on your own data, for the shipped frozen backbone.

Why this exists: the shipped heads know COCO's 80 and VOC's 20 classes; an application
usually needs its own. This tool trains the same heads (SSDLite320 / DeepLabV3, the models
of tools/ssdlite_ref.py and tools/deeplab_ref.py) on a user dataset on top of the frozen
MobileOne backbone file (build/models/mobileone_s0.mo.safetensors, what ./demo.sh makes of
../shared/models/mobileone_s0.pth.tar) and writes a head file (weights/FORMAT.md) that the
C apps and the SDK open next to that backbone, with the dataset's class names.

  det  a COCO-format detection dataset: an instances JSON ("images", "annotations" with
       "bbox" [x, y, w, h], "category_id", optional "iscrowd"; "categories" with "id" and
       "name", any ids) and the folder the images' "file_name"s are relative to.
       Classes: "__background__", then the categories in increasing id order; the file
       stores their ids as `det.category_ids`, so `mo-detect --json` and
       `mo-eval coco --gt YOUR.json` report the dataset's own category ids.
       Crowd boxes are ignore regions (neither object nor background).
  seg  images + label PNGs (one per image, same stem, 8-bit class index per pixel, 255 =
       ignore) + a class-names file (one name per line; line i = class index i).

How: the backbone is frozen, so its features are computed once per augmented view and kept
in memory (det: 0.4 MB per view at 320x320, seg: 0.8 MB per view at 320x320); then only
the head trains. Augmentation (tools/train/augment.py, no copy-paste): view 0 is the plain
inference view, the other views flip, zoom / crop, aspect and colour jitter. Recipes:
  det  weights/ssdlite_s0.md: torchvision SSD loss (tools/train/train_det.ssd_loss, IoU-0.5
       matcher, 3:1 hard negatives, crowd boxes ignored), AdamW lr 0.002, weight decay 0.01
       on conv weights, 100 warm-up steps then cosine, batch 16; BatchNorm in train mode.
  seg  weights/deeplab_s0.md: DeepLabHead width 128, rates 6/12/18, output stride 16;
       cross-entropy (ignore 255) at 1/4 of the crop; SGD momentum 0.9, lr 0.01 poly 0.9,
       weight decay 1e-4, batch 16.
Start (--init): by default the shipped head of the task (weights/ssdlite_s0 or deeplab_s0):
its layout (det: the neck blocks its det.neck_channels names), every tensor of the same
shape, and the rows of the class-specific last layer for the classes both files name; the
other classes (and everything with --init none) start fresh.
A --val-fraction of the images (seeded choice) is held out: its loss on the plain views is
printed, and for det --val-json / --train-json write the two splits as COCO files (for
`mo-eval coco`); for seg --val-list writes the held-out stems (for `mo-eval seg --list`).
The file's `mo.source` records the command, seed, steps, split sizes, seconds, the sha256 of
the dataset's JSON / class file and of the sorted list of image + label files with their sizes.

  train_head.py det --coco data/ann.json --images data/images --out my_det.mo.safetensors
  train_head.py seg --images data/img --labels data/lbl --classes data/classes.txt \\
      --out my_seg.mo.safetensors
"""

import argparse
import hashlib
import json
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.normpath(os.path.join(HERE, ".."))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "train"))
IMAGE_EXT = (".jpg", ".jpeg", ".png", ".bmp", ".gif")


class DataError(Exception):
    """The dataset is not what the tool reads; the message says what and where."""


def sha256_bytes(b):
    return hashlib.sha256(b).hexdigest()


def sha256_file(path):
    with open(path, "rb") as f:
        return sha256_bytes(f.read())


def files_digest(paths):
    """sha256 of 'name size' lines of the files, in order (cheap; names and sizes)."""
    lines = "".join("%s %d\n" % (os.path.basename(p), os.path.getsize(p)) for p in paths)
    return sha256_bytes(lines.encode("utf-8"))


# --- datasets ------------------------------------------------------------------------------

def read_coco(path, images_dir):
    """(classes, category ids, samples) of a COCO instances file.

    classes = ["__background__"] + category names in increasing id order; label k (1..)
    is category ids[k - 1]. A sample: {"file", "id", "boxes" xyxy, "labels", "ignore"}.
    Boxes under 1 px a side are dropped; crowd boxes become ignore regions."""
    with open(path, encoding="utf-8") as f:
        ann = json.load(f)
    for key in ("images", "annotations", "categories"):
        if not isinstance(ann.get(key), list):
            raise DataError("%s: no \"%s\" list (not a COCO instances file)" % (path, key))
    cats = {}
    for c in ann["categories"]:
        cid, name = c.get("id"), c.get("name")
        if not isinstance(cid, int) or isinstance(cid, bool) or not 0 <= cid <= 2147483647:
            raise DataError("%s: category id %r is not an integer in 0..2^31-1" % (path, cid))
        if not isinstance(name, str) or not name or "\0" in name:
            raise DataError("%s: category %d has no name" % (path, cid))
        if cid in cats:
            raise DataError("%s: category id %d appears twice" % (path, cid))
        cats[cid] = name
    if not cats:
        raise DataError("%s: no categories" % path)
    ids = sorted(cats)
    label_of = {cid: k + 1 for k, cid in enumerate(ids)}
    per = {}
    for im in ann["images"]:
        if im.get("id") in per:
            raise DataError("%s: image id %r appears twice" % (path, im.get("id")))
        per[im.get("id")] = {"file": os.path.join(images_dir, im["file_name"]), "id": im["id"],
                             "boxes": [], "labels": [], "ignore": []}
    for a in ann["annotations"]:
        s = per.get(a.get("image_id"))
        if s is None:
            raise DataError("%s: annotation %r of unknown image %r" % (path, a.get("id"),
                                                                   a.get("image_id")))
        if a.get("category_id") not in label_of:
            raise DataError("%s: annotation %r has category %r, not in \"categories\""
                            % (path, a.get("id"), a.get("category_id")))
        x, y, w, h = (float(v) for v in a["bbox"])
        if w < 1 or h < 1:
            continue
        if a.get("iscrowd"):
            s["ignore"].append([x, y, x + w, y + h])
        else:
            s["boxes"].append([x, y, x + w, y + h])
            s["labels"].append(label_of[a["category_id"]])
    samples = [per[k] for k in sorted(per, key=lambda i: str(i))]
    missing = [s["file"] for s in samples if not os.path.isfile(s["file"])]
    if missing:
        raise DataError("%d images of %s are missing, e.g. %s" % (len(missing), path, missing[0]))
    if not samples:
        raise DataError("%s lists no images" % path)
    return ["__background__"] + [cats[i] for i in ids], ids, samples


def read_seg(images_dir, labels_dir, classes_file):
    """(classes, samples) of a segmentation dataset: every image with a label PNG of the
    same stem in labels_dir ({"file", "label", "stem"})."""
    with open(classes_file, encoding="utf-8") as f:
        classes = [line.strip() for line in f if line.strip()]
    if not 1 <= len(classes) <= 255:
        raise DataError("%s: %d class names (1..255: labels are 8-bit, 255 = ignore)"
                        % (classes_file, len(classes)))
    labels = {os.path.splitext(n)[0]: os.path.join(labels_dir, n)
              for n in os.listdir(labels_dir) if n.lower().endswith(".png")}
    samples = []
    for n in sorted(os.listdir(images_dir)):
        stem, ext = os.path.splitext(n)
        if ext.lower() in IMAGE_EXT and stem in labels:
            samples.append({"file": os.path.join(images_dir, n), "label": labels[stem],
                            "stem": stem})
    if not samples:
        raise DataError("no image of %s has a label PNG of the same name in %s"
                        % (images_dir, labels_dir))
    return classes, samples


def split(n, fraction, seed):
    """(train indices, val indices): a seeded choice of round(n * fraction) images."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 7]))
    order = rng.permutation(n)
    nv = int(round(n * fraction))
    if fraction > 0 and nv == 0 and n > 1:
        nv = 1
    if nv >= n:
        raise DataError("--val-fraction %g leaves no training image of %d" % (fraction, n))
    return sorted(order[nv:].tolist()), sorted(order[:nv].tolist())


def write_coco_subset(src, samples, idx, path):
    """The instances file restricted to these images (for mo-eval coco --gt)."""
    with open(src, encoding="utf-8") as f:
        ann = json.load(f)
    keep = {samples[i]["id"] for i in idx}
    out = dict(ann, images=[im for im in ann["images"] if im["id"] in keep],
               annotations=[a for a in ann["annotations"] if a["image_id"] in keep])
    with open(path, "w", encoding="utf-8") as f:
        json.dump(out, f)


# --- backbone ------------------------------------------------------------------------------

def load_backbone(path):
    """(MobileOne reference module, Apple-named state_dict without the classifier, variant,
    backbone model file or None) from a model file or an Apple checkpoint."""
    import mobileone_ref as ref
    if path.endswith(".safetensors"):
        import deeplab_ref as dl
        bb = dl.load_backbone(path)
        model_file = path
    else:
        bb = ref.from_state_dict(ref.load_checkpoint(path))
        model_file = None
    bb.eval()
    for p in bb.parameters():
        p.requires_grad_(False)
    sd = {k: v for k, v in bb.state_dict().items()
          if not k.startswith("linear.") and not k.endswith("num_batches_tracked")}
    return bb, sd, bb.variant, model_file


def normalize(img):
    import torch
    import mobileone_ref as ref
    mean = torch.tensor(ref.IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(ref.IMAGENET_STD).view(3, 1, 1)
    return ((img - mean) / std)[None]


def views_of(base, aug, plain_cfg, seed, index, views):
    """View 0 = the plain inference view, views 1.. augmented (seeded per image and view)."""
    import augment
    for v in range(views):
        rng = augment.Augmenter.rng(seed, index, v)
        if v == 0:
            s = dict(base, boxes=base["boxes"].copy(), origin=list(base["origin"]),
                     seg=None if base["seg"] is None else base["seg"].copy())
            yield augment.scale_jitter(s, rng, plain_cfg)
        else:
            yield aug(base, rng)


def base_sample(img, boxes=None, labels=None, ignore=None, seg=None):
    n = 0 if boxes is None else len(boxes)
    return {"image": img, "boxes": np.array(boxes or [], np.float32).reshape(-1, 4),
            "labels": np.array(labels or [], np.int64), "scores": np.ones(n, np.float32),
            "origin": ["real"] * n,
            "ignore": np.array(ignore or [], np.float32).reshape(-1, 4), "seg": seg}


def cache_features(a, bb, samples, idx, load, cfg, os_, taps, views):
    """Backbone features of every view of the samples idx: ({tap: fp16 tensor [N, ...]},
    list of sample dicts without their image, seconds)."""
    import torch
    import augment
    aug = augment.Augmenter(None, **dict(cfg, paste=0.0))
    plain_cfg = dict(aug.cfg, zoom=[1, 1], aspect=[1, 1], min_visible=0.0, min_box=0.0)
    feats = {t: [] for t in taps}
    recs = []
    t0 = time.time()
    for j, i in enumerate(idx):
        base = load(samples[i])
        for s in views_of(base, aug, plain_cfg, a.seed, i, views):
            with torch.no_grad():
                out = bb(normalize(s["image"]), os_)
            for t in taps:
                feats[t].append(out[t][0].to(torch.float16))
            recs.append({k: s[k] for k in ("boxes", "labels", "ignore", "seg")})
        if (j + 1) % 50 == 0:
            print("features: %d/%d images, %.0f s" % (j + 1, len(idx), time.time() - t0),
                  flush=True)
    return {t: torch.stack(v) for t, v in feats.items()}, recs, time.time() - t0


# --- starting from a shipped head ----------------------------------------------------------

def same_class(a, b):
    bg = ("__background__", "background")
    return a == b or (a in bg and b in bg)


def init_from_head(path, prefix, target, classes, cls_keys, backbone_digest):
    """Copy the weights of a head file (e.g. the shipped weights/ssdlite_s0.mo.safetensors)
    into target ({name: tensor}, the model's state_dict keys after `prefix` is mapped):
    every tensor of the same shape as is; the class-specific layers `cls_keys` ({key:
    outputs per location or None}) row by row for the classes whose names both files have
    (the others keep their fresh initialisation). Returns a record for mo.source."""
    import torch
    import mofile
    tensors, meta = mofile.read(path)
    if meta.get("mo.backbone_digest") != backbone_digest:
        raise DataError("--init %s was trained on backbone %s, this one is %s"
                        % (path, meta.get("mo.backbone_digest"), backbone_digest))
    kind = prefix.rstrip(".")
    src_classes = json.loads(meta.get(kind + ".classes", "[]"))
    pairs = [(k, j) for k, c in enumerate(classes) for j, d in enumerate(src_classes)
             if same_class(c, d)]
    seen = {}
    for k, j in pairs:  # first match of each target class
        seen.setdefault(k, j)
    copied = rows = 0
    with torch.no_grad():
        for name, t in target.items():
            src = tensors.get(name)
            if src is None:
                continue
            src = torch.from_numpy(src.astype(np.float32))
            if tuple(src.shape) == tuple(t.shape) and name not in cls_keys:
                t.copy_(src)
                copied += 1
            elif name in cls_keys and src.shape[1:] == t.shape[1:]:
                kt, ks = len(classes), len(src_classes)
                if t.shape[0] % kt or src.shape[0] % ks or t.shape[0] // kt != src.shape[0] // ks:
                    continue
                for a in range(t.shape[0] // kt):
                    for k, j in seen.items():
                        t[a * kt + k] = src[a * ks + j]
                        rows += 1
    names = [classes[k] for k in sorted(seen)] if rows else []
    print("--init %s: %d tensors copied, %d of %d classes from its own (%s)"
          % (path, copied, len(names), len(classes), ", ".join(names)[:200]), flush=True)
    return {"file": os.path.basename(path), "sha256": sha256_file(path),
            "tensors_copied": copied, "classes_copied": names}


def default_init(task):
    p = os.path.join(REPO, "weights", "ssdlite_s0.mo.safetensors" if task == "det"
                     else "deeplab_s0.mo.safetensors")
    return p if os.path.isfile(p) else None


# --- detection -----------------------------------------------------------------------------

def det_model(sd, variant, config, seed):
    """ssdlite_ref's SSD with this backbone and torchvision's SSDLite initialisation of the
    extras and head (as train_det.build_model, for any class list)."""
    import torch
    import mobileone_ref as ref
    import ssdlite_ref as sref
    from torchvision.models.detection.ssdlite import _normal_init
    torch.manual_seed(seed)
    model = sref.build(variant, ref.state_dict_form(sd) == "fused", config)
    model.backbone.body.load_state_dict(sd)
    _normal_init(model.backbone.neck)
    _normal_init(model.backbone.extra)
    _normal_init(model.head)
    for p in model.backbone.body.parameters():
        p.requires_grad_(False)
    return model


def det_batch(feats, recs, idx):
    import torch

    def t(b):
        return torch.from_numpy(np.asarray(b, np.float32).reshape(-1, 4))
    targets = [{"boxes": t(recs[i]["boxes"]),
                "labels": torch.from_numpy(np.asarray(recs[i]["labels"], np.int64)),
                "ignore": t(recs[i]["ignore"])} for i in idx]
    return [feats[k][idx].float() for k in ("stage3", "stage4")], targets


def train_det(a):
    import torch
    import convert_ssdlite as conv
    import mofile
    import train_det as td
    if a.input_size % 32 or not 64 <= a.input_size <= 1024:
        raise DataError("--input-size %d: a multiple of 32 in 64..1024 (the backbone's "
                        "stride; 320 is SSDLite320's)" % a.input_size)
    classes, ids, samples = read_coco(a.coco, a.images)
    tr, va = split(len(samples), a.val_fraction, a.seed)
    if a.val_json:
        write_coco_subset(a.coco, samples, va, a.val_json)
    if a.train_json:
        write_coco_subset(a.coco, samples, tr, a.train_json)
    nbox = sum(len(samples[i]["boxes"]) for i in tr)
    print("%s: %d classes (%s), %d images: %d train (%d boxes), %d val"
          % (a.coco, len(classes) - 1, ", ".join(classes[1:6]) + (", ..." if len(classes) > 6
                                                                  else ""),
             len(samples), len(tr), nbox, len(va)), flush=True)
    if not nbox:
        raise DataError("the training images have no boxes")
    bb, sd, variant, model_file = load_backbone(a.backbone)
    size = [a.input_size, a.input_size]
    config = {"classes": classes, "num_classes": len(classes), "input_size": size}
    if a.init != "none":  # the same neck blocks as the head it starts from (det.neck_channels)
        config["neck_channels"] = json.loads(
            mofile.read(a.init)[1].get("det.neck_channels", "[0, 0]"))
    model = det_model(sd, variant, config, a.seed)
    init = None
    if a.init != "none":
        digest = mofile.digest(mofile.read(model_file)[0], "backbone.") if model_file else \
            mofile.digest({"backbone." + k: v.float().numpy() for k, v in sd.items()},
                          "backbone.")
        _, target = conv.split(model.state_dict())  # the head file's det.* names
        cls_keys = {k for k in target if k.startswith("det.head.classification_head.")
                    and k.endswith((".1.weight", ".1.bias"))
                    and k.count(".") == 6}
        init = init_from_head(a.init, "det.", target, classes, cls_keys, digest)

    import augment

    def load(s):
        return base_sample(augment.load_rgb(s["file"]), s["boxes"], s["labels"], s["ignore"])
    cfg = {"out_size": size}
    feats, recs, t_feat = cache_features(a, bb, samples, tr, load, cfg, 32,
                                         ("stage3", "stage4"), a.views)
    vfeats, vrecs, _ = cache_features(a, bb, samples, va, load, cfg, 32,
                                      ("stage3", "stage4"), 1) if va else (None, [], 0)
    print("features of %d train views (+%d val) in %.0f s" % (len(recs), len(vrecs), t_feat),
          flush=True)

    params = [p for p in model.parameters() if p.requires_grad]
    groups = [{"params": [p for p in params if p.ndim > 1], "weight_decay": a.wd},
              {"params": [p for p in params if p.ndim <= 1], "weight_decay": 0.0}]
    opt = torch.optim.AdamW(groups, lr=a.lr)
    model.train()
    model.backbone.body.eval()
    rng = np.random.Generator(np.random.PCG64(a.seed))
    order = np.empty(0, np.int64)
    anchors = None
    log, run = [], [0.0, 0.0]
    t0 = time.time()
    for step in range(a.steps):
        if len(order) < a.batch:
            order = np.concatenate([order, rng.permutation(len(recs))])
        idx, order = np.sort(order[:a.batch]), order[a.batch:]
        x, targets = det_batch(feats, recs, idx)
        for g in opt.param_groups:
            g["lr"] = td.lr_at(step, a)
        all_feats, out = td.heads_forward(model, *x)
        if anchors is None:
            anchors = td.make_anchors(model, all_feats)
        losses = td.ssd_loss(model, out, anchors, targets)
        loss = losses["bbox_regression"] + losses["classification"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        run[0] += losses["bbox_regression"].item()
        run[1] += losses["classification"].item()
        if (step + 1) % a.log_every == 0 or step + 1 == a.steps:
            n = step % a.log_every + 1
            row = {"step": step + 1, "box": round(run[0] / n, 4), "cls": round(run[1] / n, 4),
                   "seconds": round(time.time() - t0, 1)}
            log.append(row)
            print(json.dumps(row), flush=True)
            run = [0.0, 0.0]
    seconds = time.time() - t0
    model.eval()
    val = None
    if vrecs:
        tot = [0.0, 0.0]
        with torch.no_grad():
            # BN in eval mode: the loss of the model as it is stored
            for lo in range(0, len(vrecs), a.batch):
                idx = np.arange(lo, min(lo + a.batch, len(vrecs)))
                x, targets = det_batch(vfeats, vrecs, idx)
                af, out = td.heads_forward(model, *x)
                ls = td.ssd_loss(model, out, anchors, targets)
                tot[0] += ls["bbox_regression"].item() * len(idx)
                tot[1] += ls["classification"].item() * len(idx)
        val = {"box": round(tot[0] / len(vrecs), 4), "cls": round(tot[1] / len(vrecs), 4)}
        print("val loss (plain views, %d images): %s" % (len(vrecs), json.dumps(val)), flush=True)
    record = {"tool": "tools/train_head.py det", "command": command_line(a), "seed": a.seed,
              "steps": a.steps, "batch": a.batch, "optimizer": "adamw", "lr": a.lr,
              "warmup": a.warmup, "weight_decay": a.wd, "views": a.views,
              "input_size": size, "threads": a.threads, "seconds": round(seconds, 1),
              "feature_seconds": round(t_feat, 1), "images": {"train": len(tr), "val": len(va)},
              "val_fraction": a.val_fraction, "final_loss": log[-1] if log else None,
              "init": init,
              "val_loss": val, "dataset": {"json_sha256": sha256_file(a.coco),
                                           "images_sha256": files_digest(
                                               [s["file"] for s in samples])},
              "backbone_sha256": sha256_file(a.backbone), "torch": torch.__version__}
    source = json.dumps(record, sort_keys=True, separators=(",", ":"))
    try:
        files = conv.build_files(model.state_dict(), model.config, variant,
                                 backbone_file=model_file, source=source)
    except conv.ConvertError as e:
        raise DataError(str(e))
    tensors, meta = files["det"]
    meta["det.category_ids"] = list(ids)
    size_b = mofile.write(a.out, tensors, meta, a.fp16)
    if a.checkpoint:
        torch.save({"state_dict": model.state_dict(), "config": model.config,
                    "variant": variant, "train": dict(record, log=log)}, a.checkpoint)
    print("%s: SSDLite head, %d classes (ids %s), %d bytes, backbone MobileOne-%s digest %s; "
          "%d steps in %.0f s" % (a.out, len(classes), short_list(ids), size_b, variant,
                                  meta["mo.backbone_digest"], a.steps, seconds))
    return 0


# --- segmentation --------------------------------------------------------------------------

def train_seg(a):
    import torch
    import torch.nn.functional as F
    import convert_deeplab as conv
    import deeplab_ref as dl
    import mobileone_ref as ref
    import mofile
    from PIL import Image
    import augment
    classes, samples = read_seg(a.images, a.labels, a.classes)
    k = len(classes)
    tr, va = split(len(samples), a.val_fraction, a.seed)
    if a.val_list:
        with open(a.val_list, "w") as f:
            f.write("".join(samples[i]["stem"] + "\n" for i in va))
    print("%d classes (%s), %d images: %d train, %d val"
          % (k, ", ".join(classes[:6]) + (", ..." if k > 6 else ""), len(samples), len(tr),
             len(va)), flush=True)
    if a.size % 16 or a.size < 32 or a.size % a.loss_size:
        raise DataError("--size must be a multiple of 16 (at least 32) and of --loss-size")
    bb, sd, variant, model_file = load_backbone(a.backbone)
    if model_file is None:
        raise DataError("seg: --backbone must be a model file (.mo.safetensors: ./demo.sh "
                        "makes build/models/mobileone_s0.mo.safetensors)")
    bad = {}

    def load(s):
        img = augment.load_rgb(s["file"])
        with Image.open(s["label"]) as im:
            if im.mode not in ("L", "P"):
                raise DataError("%s: mode %s, not an 8-bit class-index PNG" % (s["label"], im.mode))
            lab = np.array(im)
        if lab.shape != img.shape[:2]:
            raise DataError("%s is %dx%d, its image %dx%d" % (s["label"], lab.shape[1],
                                                              lab.shape[0], img.shape[1],
                                                              img.shape[0]))
        out = (lab >= k) & (lab != 255)
        if out.any():
            bad[s["label"]] = int(lab[out].max())
        return base_sample(img, seg=lab)
    cfg = {"out_size": [a.size, a.size], "keep_aspect": True, "zoom": [0.75, 1.75]}
    feats, recs, t_feat = cache_features(a, bb, samples, tr, load, cfg, 16, ("stage4",), a.views)
    vfeats, vrecs, _ = cache_features(a, bb, samples, va, load, cfg, 16, ("stage4",), 1) \
        if va else (None, [], 0)
    if bad:
        p, v = next(iter(bad.items()))
        raise DataError("%d label files hold class indices >= %d (the class file's length) "
                        "other than 255, e.g. %s: %d" % (len(bad), k, p, v))
    step_px = a.size // a.loss_size

    def labels_of(rs, idx):
        y = np.stack([rs[i]["seg"][step_px // 2::step_px, step_px // 2::step_px] for i in idx])
        return torch.from_numpy(y.astype(np.int64))
    print("features of %d train views (+%d val) in %.0f s" % (len(recs), len(vrecs), t_feat),
          flush=True)
    torch.manual_seed(a.seed)
    rates = [int(r) for r in a.rates.split(",")]
    head = dl.make_head(ref.widths(variant)[4], k, rates, a.width).train()
    init = None
    if a.init != "none":
        digest = mofile.digest(mofile.read(model_file)[0], "backbone.")
        target = {"seg." + n: v for n, v in head.state_dict().items()
                  if not n.endswith("num_batches_tracked")}
        init = init_from_head(a.init, "seg.", target, classes, {"seg.4.weight", "seg.4.bias"},
                              digest)
    opt = torch.optim.SGD(head.parameters(), lr=a.lr, momentum=0.9, weight_decay=a.wd)
    rng = np.random.Generator(np.random.PCG64(a.seed))
    order = np.empty(0, np.int64)
    log, run = [], []
    t0 = time.time()

    def loss_of(x, y):
        out = F.interpolate(head(x), size=(a.loss_size, a.loss_size), mode="bilinear",
                            align_corners=False)
        return F.cross_entropy(out, y, ignore_index=255)
    for step in range(a.steps):
        if len(order) < a.batch:
            order = np.concatenate([order, rng.permutation(len(recs))])
        idx, order = np.sort(order[:a.batch]), order[a.batch:]
        for g in opt.param_groups:
            g["lr"] = a.lr * (1.0 - step / a.steps) ** 0.9
        loss = loss_of(feats["stage4"][idx].float(), labels_of(recs, idx))
        opt.zero_grad()
        loss.backward()
        opt.step()
        run.append(loss.item())
        if (step + 1) % a.log_every == 0 or step + 1 == a.steps:
            log.append({"step": step + 1, "loss": round(float(np.mean(run)), 4),
                        "seconds": round(time.time() - t0, 1)})
            print(json.dumps(log[-1]), flush=True)
            run = []
    seconds = time.time() - t0
    head.eval()
    val = None
    if vrecs:
        tot = 0.0
        with torch.no_grad():
            for lo in range(0, len(vrecs), a.batch):
                idx = np.arange(lo, min(lo + a.batch, len(vrecs)))
                tot += loss_of(vfeats["stage4"][idx].float(), labels_of(vrecs, idx)).item() \
                    * len(idx)
        val = round(tot / len(vrecs), 4)
        print("val loss (plain views, %d images): %.4f" % (len(vrecs), val), flush=True)
    record = {"tool": "tools/train_head.py seg", "command": command_line(a), "seed": a.seed,
              "steps": a.steps, "batch": a.batch, "optimizer": "sgd", "lr": a.lr, "poly": 0.9,
              "momentum": 0.9, "weight_decay": a.wd, "width": a.width, "rates": rates,
              "size": a.size, "loss_size": a.loss_size, "views": a.views,
              "threads": a.threads, "seconds": round(seconds, 1),
              "feature_seconds": round(t_feat, 1), "images": {"train": len(tr), "val": len(va)},
              "val_fraction": a.val_fraction, "final_loss": log[-1]["loss"] if log else None,
              "val_loss": val, "init": init,
              "dataset": {"classes_sha256": sha256_file(a.classes),
                          "files_sha256": files_digest([p for s in samples
                                                        for p in (s["file"], s["label"])])},
              "backbone_sha256": sha256_file(a.backbone), "torch": torch.__version__}
    source = json.dumps(record, sort_keys=True, separators=(",", ":"))
    tensors, meta = conv.build(model_file, head, classes, rates, 16, source)
    size_b = mofile.write(a.out, tensors, meta, a.fp16)
    if a.checkpoint:
        torch.save({"model": head.state_dict(), "train": dict(record, log=log)}, a.checkpoint)
    print("%s: DeepLabV3 head, %d classes, rates %s, %d bytes, backbone MobileOne-%s digest %s; "
          "%d steps in %.0f s" % (a.out, k, rates, size_b, variant, meta["mo.backbone_digest"],
                                  a.steps, seconds))
    return 0


# --- command line --------------------------------------------------------------------------

def short_list(v, n=8):
    return "[%s%s]" % (", ".join(str(x) for x in v[:n]), ", ..." if len(v) > n else "")


def command_line(a):
    return "tools/train_head.py " + " ".join(a.argv)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="task", required=True)
    d = sub.add_parser("det", help="SSDLite detection head on a COCO-format dataset")
    d.add_argument("--coco", required=True, help="COCO instances JSON")
    d.add_argument("--images", required=True, help="folder of the JSON's file_names")
    d.add_argument("--steps", type=int, default=2000)
    d.add_argument("--batch", type=int, default=16)
    d.add_argument("--lr", type=float, default=0.002)
    d.add_argument("--wd", type=float, default=0.01, help="AdamW weight decay (conv weights)")
    d.add_argument("--warmup", type=int, default=100)
    d.add_argument("--views", type=int, default=8,
                   help="views per training image: the plain one + augmented (default 8)")
    d.add_argument("--input-size", type=int, default=320,
                   help="square network input (det.input_size), default 320")
    d.add_argument("--val-json", help="write the held-out images' annotations here")
    d.add_argument("--train-json", help="write the training images' annotations here")
    s = sub.add_parser("seg", help="DeepLabV3 segmentation head on images + label PNGs")
    s.add_argument("--images", required=True, help="folder of images")
    s.add_argument("--labels", required=True,
                   help="folder of label PNGs, same stems, class index per pixel, 255 ignore")
    s.add_argument("--classes", required=True, help="class names, one a line")
    s.add_argument("--steps", type=int, default=1500)
    s.add_argument("--batch", type=int, default=16)
    s.add_argument("--lr", type=float, default=0.01)
    s.add_argument("--wd", type=float, default=1e-4)
    s.add_argument("--views", type=int, default=4,
                   help="views per training image: the plain one + augmented (default 4)")
    s.add_argument("--size", type=int, default=320, help="square training crops (default 320)")
    s.add_argument("--loss-size", type=int, default=80,
                   help="loss resolution, divides --size (default 80)")
    s.add_argument("--width", type=int, default=128, help="ASPP / head channels")
    s.add_argument("--rates", default="6,12,18", help="ASPP atrous rates")
    s.add_argument("--val-list", help="write the held-out stems here (mo-eval seg --list)")
    for p in (d, s):
        p.add_argument("--out", required=True, help="the head file to write")
        p.add_argument("--backbone",
                       default=os.path.join(REPO, "build", "models", "mobileone_s0.mo.safetensors"),
                       help="frozen backbone model file (default: ./demo.sh's "
                            "build/models/mobileone_s0.mo.safetensors)")
        p.add_argument("--val-fraction", type=float, default=0.1,
                       help="images held out (seeded), default 0.1; 0: none")
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--threads", type=int, default=1,
                       help="torch threads (default 1: on a busy machine more threads spin)")
        p.add_argument("--log-every", type=int, default=50)
        p.add_argument("--fp16", action="store_true", help="store the head as F16 (half size)")
        p.add_argument("--checkpoint", help="also save a PyTorch checkpoint with the loss log")
        p.add_argument("--init", default=None,
                       help="start from this head file's weights (same backbone): every "
                            "tensor of the same shape, and the class rows of the classes "
                            "both name; default: the shipped weights/%s when present; "
                            "'none': fresh initialisation" % ("ssdlite_s0.mo.safetensors"
                                                              if p is d else
                                                              "deeplab_s0.mo.safetensors"))
    a = ap.parse_args(argv)
    a.argv = sys.argv[1:] if argv is None else list(argv)
    if a.steps < 1 or a.batch < 1 or a.views < 1 or not 0 <= a.val_fraction < 1:
        ap.error("--steps, --batch and --views must be positive, --val-fraction in [0, 1)")
    if not os.path.isfile(a.backbone):
        print("error: backbone %s absent: run ./demo.sh (it converts ../shared/models/"
              "mobileone_s0.pth.tar) or pass --backbone" % a.backbone, file=sys.stderr)
        return 1
    if a.init is None:
        a.init = default_init(a.task) or "none"
    import torch
    torch.set_num_threads(a.threads)
    try:
        return train_det(a) if a.task == "det" else train_seg(a)
    except (DataError, OSError, ValueError, KeyError) as e:
        print("error: %s" % e, file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
