#!/usr/bin/python3
"""Real-labelled COCO scenes and mosaics for the detection head (issue 12).

Why this exists: the first head (issue 7) saw 1500 single-object ImageNet crops and only
80 real scenes, and it finds almost nothing in COCO scenes (AP 0.059). This script adds
coco128-train (128 COCO train2017 scenes with real boxes, ../shared/data/coco128-train),
holds a validation split of it out (the scenes choices are scored on, with the C tools),
and caches frozen-backbone features of three kinds of 320x320 training records:
  single  augment.py views of one image (view 0 plain), more views for the real scenes
          (coco-mini train2017 + the coco128 training part) than for ImageNet images;
  mosaic  2x2 or 3x3 collages (YOLO's mosaic idea) of randomly cut, flipped,
          colour-jittered training images at random tile sizes, the labels moved with them:
          many objects per record, at smaller scales, in scene-like context;
The cache has cache_features.py's det layout (meta.json, stage3.f16, stage4.f16,
targets.json), so train_det.py reads it. The ImageNet veto (imagenet_coco.py) is applied
here to each source image before it is cut into a record (`meta.json` "vetoed": true, and
train_det.py then leaves the cache alone), because a mosaic mixes several images.

  det_scenes.py split --out /work/data/det/scenes     coco128 -> train / val entries, the
        val split's COCO gt json and an image folder for `mo-eval coco`
  det_scenes.py cache --label-cache /work/data/train-cache --scenes /work/data/det/scenes \
        --out /work/data/det/feat --imagenet-views 4 --scene-views 24 --mosaics 6000

Every random choice is seeded: numpy SeedSequence([seed, kind, index, view]).
"""

import argparse
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
import cache_features as cf  # noqa: E402
import imagenet_coco  # noqa: E402

# COCO category ids in the 0..79 order of the YOLO labels (torchvision's 91 indexing)
COCO80 = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24,
          25, 27, 28, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 46, 47, 48, 49,
          50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63, 64, 65, 67, 70, 72, 73, 74,
          75, 76, 77, 78, 79, 80, 81, 82, 84, 85, 86, 87, 88, 89, 90]
C128 = os.path.join("data", "coco128-train")


def coco128_entries(shared):
    """det.json-style entries (pseudo_label.py's fields) of coco128 with its real boxes."""
    from PIL import Image
    img_dir = os.path.join(shared, C128, "images", "train2017")
    lab_dir = os.path.join(shared, C128, "object_detection", "labels", "train2017")
    out = []
    for name in sorted(os.listdir(img_dir)):
        stem = os.path.splitext(name)[0]
        with Image.open(os.path.join(img_dir, name)) as im:
            w, h = im.size
        boxes, labels = [], []
        p = os.path.join(lab_dir, stem + ".txt")
        if os.path.exists(p):
            with open(p) as f:
                for line in f:
                    v = line.split()
                    if len(v) != 5:
                        continue
                    c, cx, cy, bw, bh = int(v[0]), *map(float, v[1:])
                    x0, y0 = (cx - bw / 2) * w, (cy - bh / 2) * h
                    x1, y1 = (cx + bw / 2) * w, (cy + bh / 2) * h
                    boxes.append([round(max(0.0, x0), 2), round(max(0.0, y0), 2),
                                  round(min(float(w), x1), 2), round(min(float(h), y1), 2)])
                    labels.append(COCO80[c])
        out.append({"file": os.path.join(C128, "images", "train2017", name),
                    "source": "coco128", "width": w, "height": h, "boxes": boxes,
                    "labels": labels, "scores": [1.0] * len(boxes), "origin": ["gt"] * len(boxes),
                    "crowd": [], "uncertain": [], "seg": None})
    return out


def cocomini_entries(shared):
    """det.json-style entries of coco-mini train2017 with its real boxes only (crowd boxes
    as ignore regions), for runs without pseudo_label.py's cache."""
    d = os.path.join(shared, "data", "coco-mini")
    with open(os.path.join(d, "annotations", "instances_train2017.json")) as f:
        js = json.load(f)
    by_img = {}
    for an in js["annotations"]:
        by_img.setdefault(an["image_id"], []).append(an)
    out = []
    for im in sorted(js["images"], key=lambda x: x["file_name"]):
        if not os.path.exists(os.path.join(d, "train2017", im["file_name"])):
            continue
        e = {"file": os.path.join("data", "coco-mini", "train2017", im["file_name"]),
             "source": "coco-train", "width": im["width"], "height": im["height"], "boxes": [],
             "labels": [], "scores": [], "origin": [], "crowd": [], "uncertain": [], "seg": None}
        for an in by_img.get(im["id"], []):
            x, y, w, h = an["bbox"]
            if an.get("iscrowd"):
                e["crowd"].append([x, y, x + w, y + h])
            elif w > 0 and h > 0:
                e["boxes"].append([x, y, x + w, y + h])
                e["labels"].append(an["category_id"])
                e["scores"].append(1.0)
                e["origin"].append("gt")
        out.append(e)
    return out


def _cmd_split(a):
    ents = coco128_entries(a.shared)
    rng = np.random.default_rng(np.random.SeedSequence([a.seed, 128]))
    perm = rng.permutation(len(ents))
    val = sorted(perm[:a.val].tolist())
    train = sorted(perm[a.val:].tolist())
    os.makedirs(os.path.join(a.out, "val_images"), exist_ok=True)
    images, anns = [], []
    for k, i in enumerate(val):
        e = ents[i]
        name = os.path.basename(e["file"])
        images.append({"id": int(os.path.splitext(name)[0]), "file_name": name,
                       "width": e["width"], "height": e["height"]})
        link = os.path.join(a.out, "val_images", name)
        if not os.path.lexists(link):
            os.symlink(os.path.join(a.shared, e["file"]), link)
        for b, c in zip(e["boxes"], e["labels"]):
            w, h = b[2] - b[0], b[3] - b[1]
            anns.append({"id": len(anns) + 1, "image_id": images[-1]["id"], "category_id": c,
                         "bbox": [b[0], b[1], round(w, 2), round(h, 2)],
                         "area": round(w * h, 2), "iscrowd": 0})
    with open(os.path.join(a.shared, "data", "coco-mini", "annotations",
                           "instances_val2017.json")) as f:
        cats = json.load(f)["categories"]
    with open(os.path.join(a.out, "val_gt.json"), "w") as f:
        json.dump({"images": images, "annotations": anns, "categories": cats}, f)
    with open(os.path.join(a.out, "scenes.json"), "w") as f:
        json.dump({"seed": a.seed, "val": [ents[i] for i in val],
                   "train": [ents[i] for i in train]}, f, separators=(",", ":"))
    print("coco128: %d train, %d val images (%d val boxes) -> %s"
          % (len(train), len(val), len(anns), a.out))
    return 0


# --- records ---------------------------------------------------------------------------

def mosaic(samples, rng, aug_cfg, grid, out_size=(320, 320), jitter=0.15):
    """A grid x grid collage of `samples` (grid**2 sample dicts, load_sample form) on an
    out_size canvas. Tile borders are jittered by up to `jitter` of a cell; each tile is an
    augment.scale_jitter window of its sample (flip 0.5, zoom / aspect of aug_cfg), stretched
    to the tile like the detector's input, colour-jittered (p aug_cfg["colour"]).
    Returns a sample dict with image [3, H, W] float in 0..1, boxes, labels, scores, origin,
    ignore (in canvas pixels)."""
    oh, ow = out_size

    def cuts(n, size):
        c = [0.0] + [size * (k + rng.uniform(-jitter, jitter)) / n for k in range(1, n)] + [float(size)]
        return [int(round(x)) for x in c]

    ys, xs = cuts(grid, oh), cuts(grid, ow)
    canvas = torch.empty(3, oh, ow)
    boxes, labels, scores, origin, ignore = [], [], [], [], []
    k = 0
    for r in range(grid):
        for c in range(grid):
            s = samples[k]
            k += 1
            y0, y1, x0, x1 = ys[r], ys[r + 1], xs[c], xs[c + 1]
            s = dict(s, image=s["image"].copy(), boxes=s["boxes"].copy(), ignore=s["ignore"].copy(),
                     seg=None, origin=list(s["origin"]))
            if rng.random() < aug_cfg["flip"]:
                augment.hflip(s)
            augment.scale_jitter(s, rng, dict(aug_cfg, out_size=[y1 - y0, x1 - x0]))
            if rng.random() < aug_cfg["colour"]:
                s["image"] = augment.colour_jitter(s["image"], rng, aug_cfg)
            canvas[:, y0:y1, x0:x1] = s["image"]
            off = np.array([x0, y0, x0, y0], np.float32)
            boxes += list(s["boxes"] + off)
            labels += s["labels"].tolist()
            scores += s["scores"].tolist()
            origin += s["origin"]
            ignore += list(s["ignore"] + off)
    return {"image": canvas, "boxes": np.array(boxes, np.float32).reshape(-1, 4),
            "labels": np.array(labels, np.int64), "scores": np.array(scores, np.float32),
            "origin": origin, "ignore": np.array(ignore, np.float32).reshape(-1, 4), "seg": None}


def vetoed(s, imagenet_class):
    """The sample with imagenet_coco.veto applied (relabelled / to-ignore teacher boxes)."""
    keep, labels, ign = imagenet_coco.veto(s["boxes"].tolist(), s["labels"].tolist(),
                                           s["origin"], imagenet_class)
    keep, ign = np.array(keep, bool), np.array(ign, bool)
    out = dict(s, boxes=s["boxes"][keep], labels=np.array(labels, np.int64)[keep],
               scores=s["scores"][keep], origin=[o for o, k in zip(s["origin"], keep) if k],
               ignore=np.concatenate([s["ignore"], s["boxes"][ign]]).reshape(-1, 4))
    return out, int(sum(1 for x, y, k in zip(labels, s["labels"].tolist(), keep) if x != y and k)), \
        int(ign.sum())


def _cmd_cache(a):
    torch.set_num_threads(a.threads)
    ents = cocomini_entries(a.shared) if a.coco_real else []
    if not a.coco128_only and not a.coco_real:
        with open(os.path.join(a.label_cache, "det.json")) as f:
            ents = [e for e in json.load(f)["images"] if e["source"] not in ("voc",)]
    if any("val2017" in e["file"] for e in ents):
        raise SystemExit("refusing: coco-mini val2017 in the label cache")
    with open(os.path.join(a.scenes, "scenes.json")) as f:
        ents += json.load(f)["train"]
    classes = imagenet_coco.read_labels(a.shared) if a.imagenet_veto else {}
    t0 = time.time()
    samples = []
    veto = {"relabelled": 0, "to_ignore": 0}
    for e in ents:
        s = augment.load_sample(e, a.shared, a.label_cache, with_seg=False)
        k = classes.get(os.path.basename(e["file"]))
        if k is not None:
            s, nr, ni = vetoed(s, k)
            veto["relabelled"] += nr
            veto["to_ignore"] += ni
        samples.append(s)
    scene = [i for i, e in enumerate(ents) if e["source"] in ("coco-train", "coco128")]
    other = [i for i, e in enumerate(ents) if e["source"] not in ("coco-train", "coco128")]
    print("%d images (%d real-labelled scenes), loaded in %.0f s; veto %s"
          % (len(ents), len(scene), time.time() - t0, veto), flush=True)
    # the record plan: (kind, image indices, view)
    plan = []
    scene_set = set(scene)
    single = set(a.single_sources.split(",")) if a.single_sources else None
    nviews = []
    for i in range(len(ents)):
        nv = a.scene_views if i in scene_set else a.imagenet_views
        if single is not None and ents[i]["source"] not in single:
            nv = 0
        nviews.append(nv)
    if a.views_outer:  # view 1 of every image before view 2 of any (a --max-seconds cut stays even)
        plan += [("single", [i], a.first_view + v) for v in range(max(nviews, default=0))
                 for i in range(len(ents)) if v < nviews[i]]
    else:
        for i in range(len(ents)):
            plan += [("single", [i], a.first_view + v) for v in range(nviews[i])]
    for m in range(a.first_mosaic, a.first_mosaic + a.mosaics):
        rng = np.random.default_rng(np.random.SeedSequence([a.seed, 2, m]))
        grid = 3 if rng.random() < a.grid3 else 2
        pick = [int(rng.choice(scene)) if rng.random() < a.scene_frac else int(rng.choice(other))
                for _ in range(grid * grid)]
        plan.append(("mosaic%d" % grid, pick, m))
    bank = augment.InstanceBank(os.path.join(a.shared, "data", "coco-mini"))
    aug = augment.Augmenter(bank)
    plain_cfg = dict(aug.cfg, zoom=[1, 1], aspect=[1, 1], min_visible=0.0, min_box=0.0)
    tile_cfg = dict(aug.cfg, zoom=a.tile_zoom, min_box=a.tile_min_box)
    bb = cf.load_backbone(a.backbone).reparameterize()
    n = len(plan)
    os.makedirs(a.out, exist_ok=True)
    shapes = {"stage3": [n, 256, 20, 20], "stage4": [n, 1024, 10, 10]}
    maps = {k: np.memmap(os.path.join(a.out, k + ".f16"), np.float16, "w+", shape=tuple(v))
            for k, v in shapes.items()}
    records = []
    t_aug = t_bb = 0.0
    t0 = time.time()
    for r, (kind, idx, v) in enumerate(plan):
        if a.max_seconds and time.time() - t0 > a.max_seconds:
            print("--max-seconds %g: stopping after %d of %d records" % (a.max_seconds, r, n), flush=True)
            break
        ta = time.time()
        if kind == "single":
            i = idx[0]
            rng = np.random.default_rng(np.random.SeedSequence([a.seed, 1, i, v]))
            base = samples[i]
            if v == 0:
                s = dict(base, boxes=base["boxes"].copy(), origin=list(base["origin"]))
                augment.scale_jitter(s, rng, plain_cfg)
            else:
                s = aug(base, rng)
        else:
            rng = np.random.default_rng(np.random.SeedSequence([a.seed, 3, v]))
            s = mosaic([samples[i] for i in idx], rng, tile_cfg, int(kind[-1]))
        tb = time.time()
        with torch.no_grad():
            out = bb(cf.normalize(s["image"]), 32)
        for k2 in maps:
            maps[k2][r] = out[k2][0].numpy().astype(np.float16)
        t_bb += time.time() - tb
        t_aug += tb - ta
        records.append({"entry": idx[0], "entries": idx, "kind": kind, "view": v,
                        "boxes": [[round(float(x), 2) for x in b] for b in s["boxes"]],
                        "labels": s["labels"].tolist(),
                        "scores": [round(float(x), 4) for x in s["scores"]],
                        "origin": s["origin"],
                        "ignore": [[round(float(x), 2) for x in b] for b in s["ignore"]]})
        if (r + 1) % 500 == 0:
            el = time.time() - t0
            print("%d/%d records, %.0f s (augment %.0f, backbone %.0f), eta %.0f s"
                  % (r + 1, n, el, t_aug, t_bb, el / (r + 1) * (n - r - 1)), flush=True)
    for m in maps.values():
        m.flush()
    if len(records) < n:  # cut by --max-seconds: the first records are the files' prefix
        n = len(records)
        del maps
        for k, v in shapes.items():
            v[0] = n
            os.truncate(os.path.join(a.out, k + ".f16"), int(np.prod(v)) * 2)
    with open(os.path.join(a.out, "targets.json"), "w") as f:
        json.dump(records, f, separators=(",", ":"))
    with open(os.path.join(a.out, "entries.json"), "w") as f:
        json.dump([e["file"] for e in ents], f)
    total = time.time() - t0
    kinds = {}
    for rec in records:
        kinds.setdefault(rec["kind"], [0, 0])
        kinds[rec["kind"]][0] += 1
        kinds[rec["kind"]][1] += len(rec["boxes"])
    meta = {"task": "det", "input_size": [320, 320], "output_stride": 32, "records": n,
            "images": len(ents), "scene_images": len(scene), "seed": a.seed,
            "views": {"imagenet": a.imagenet_views, "scene": a.scene_views},
            "single_sources": a.single_sources or "all", "mosaics": a.mosaics, "grid3": a.grid3, "scene_frac": a.scene_frac,
            "tile_zoom": a.tile_zoom, "tile_min_box": a.tile_min_box,
            "kinds": {k: {"records": v[0], "boxes": v[1]} for k, v in kinds.items()},
            "augment": aug.cfg, "copy_paste": True, "plain_view0": True,
            "vetoed": bool(a.imagenet_veto), "veto_counts": veto,
            "maps": {k: {"file": k + ".f16", "dtype": "float16", "shape": v} for k, v in shapes.items()},
            "backbone": {"path": a.backbone, "sha256": cf.sha256(a.backbone), "form": "reparameterized"},
            "label_cache_det_json_sha256": None if a.coco128_only or a.coco_real else
            cf.sha256(os.path.join(a.label_cache, "det.json")),
            "first_view": a.first_view, "first_mosaic": a.first_mosaic, "views_outer": a.views_outer,
            "max_seconds": a.max_seconds, "planned_records": len(plan),
            "scenes_json_sha256": cf.sha256(os.path.join(a.scenes, "scenes.json")),
            "bytes": int(sum(np.prod(s) * 2 for s in shapes.values())),
            "seconds": {"total": round(total, 1), "augment": round(t_aug, 1), "backbone": round(t_bb, 1)},
            "threads": a.threads, "command": " ".join(sys.argv)}
    with open(os.path.join(a.out, "meta.json"), "w") as f:
        json.dump(meta, f, indent=1)
    print("%s: %d records %s, %.2f GB, %.0f s (augment %.0f s, backbone %.0f s)"
          % (a.out, n, json.dumps(meta["kinds"]), meta["bytes"] / 1e9, total, t_aug, t_bb))
    return 0


def _cmd_preview(a):
    """A few mosaics as PNGs with their boxes (to look at the labels)."""
    from PIL import Image, ImageDraw
    if a.coco_real:
        ents = cocomini_entries(a.shared)
    else:
        with open(os.path.join(a.label_cache, "det.json")) as f:
            ents = [e for e in json.load(f)["images"] if e["source"] != "voc"]
    with open(os.path.join(a.scenes, "scenes.json")) as f:
        ents += json.load(f)["train"]
    rng = np.random.default_rng(a.seed)
    cfg = dict(augment.DEFAULTS, zoom=a.tile_zoom, min_box=a.tile_min_box)
    os.makedirs(a.out, exist_ok=True)
    for m in range(a.n):
        grid = 2 + m % 2
        idx = rng.choice(len(ents), grid * grid)
        s = mosaic([augment.load_sample(ents[i], a.shared, a.label_cache, False) for i in idx],
                   rng, cfg, grid)
        im = Image.fromarray((s["image"].permute(1, 2, 0).numpy() * 255).astype(np.uint8)).resize((640, 640))
        d = ImageDraw.Draw(im)
        for b, c in zip(s["boxes"], s["labels"]):
            d.rectangle([x * 2 for x in b], outline=(255, 0, 0))
            d.text((b[0] * 2 + 2, b[1] * 2 + 1), str(int(c)), fill=(255, 255, 0))
        for b in s["ignore"]:
            d.rectangle([x * 2 for x in b], outline=(128, 128, 128))
        im.save(os.path.join(a.out, "mosaic%02d.png" % m))
    return 0


def main(argv=None):
    repo = os.path.normpath(os.path.join(HERE, "..", ".."))
    shared = os.environ.get("MO_SHARED", os.path.normpath(os.path.join(repo, "..", "shared")))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shared", default=shared)
    ap.add_argument("--seed", type=int, default=0)
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("split")
    s.add_argument("--out", default=os.path.join(repo, "build", "det-scenes"))
    s.add_argument("--val", type=int, default=32, help="coco128 images held out")
    for name in ("cache", "preview"):
        c = sub.add_parser(name)
        c.add_argument("--label-cache", default=os.path.join(repo, "build", "train-cache"))
        c.add_argument("--scenes", default=os.path.join(repo, "build", "det-scenes"))
        c.add_argument("--tile-zoom", type=float, nargs=2, default=[0.8, 1.6])
        c.add_argument("--tile-min-box", type=float, default=4.0)
        c.add_argument("--coco-real", action="store_true",
                       help="coco-mini train2017 with its real boxes + the coco128 training part "
                            "(no pseudo-label cache, no ImageNet images)")
        if name == "preview":
            c.add_argument("--out", default=os.path.join(repo, "build", "det-preview"))
            c.add_argument("--n", type=int, default=6)
            continue
        c.add_argument("--out", default=os.path.join(repo, "build", "feat-det-scenes"))
        c.add_argument("--backbone", default=os.path.join(shared, "models", "mobileone_s0.pth.tar"))
        c.add_argument("--imagenet-views", type=int, default=4)
        c.add_argument("--scene-views", type=int, default=24)
        c.add_argument("--mosaics", type=int, default=6000)
        c.add_argument("--grid3", type=float, default=0.3, help="share of 3x3 mosaics")
        c.add_argument("--scene-frac", type=float, default=0.5,
                       help="share of mosaic tiles drawn from the real-labelled scenes")
        c.add_argument("--imagenet-veto", action="store_true")
        c.add_argument("--single-sources", default="",
                       help="comma list of sources that get single-image records (default: all; "
                            "mosaics draw from all images either way)")
        c.add_argument("--coco128-only", action="store_true",
                       help="only the coco128 training part (no pseudo-label cache needed)")
        c.add_argument("--threads", type=int, default=1)
        c.add_argument("--first-view", type=int, default=0,
                       help="view numbers (seeds) start here: more views of images another cache has")
        c.add_argument("--first-mosaic", type=int, default=0,
                       help="mosaic numbers (seeds) start here: more mosaics than another cache has")
        c.add_argument("--views-outer", action="store_true",
                       help="single records ordered view by view instead of image by image")
        c.add_argument("--max-seconds", type=float, default=0,
                       help="stop caching after this many seconds (the cache keeps what was done)")
    a = ap.parse_args(argv)
    return {"split": _cmd_split, "cache": _cmd_cache, "preview": _cmd_preview}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
