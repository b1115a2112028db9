#!/usr/bin/python3
"""Training-time augmentation of the pseudo-labelled images (boxes and VOC class maps).

Why this exists: the heads of issue 7 train on ~1600 images, most labelled by teachers;
without the usual augmentations a few epochs over them overfit. The training scripts
build their (cached) backbone inputs through `Augmenter`, which applies, in this order:

  copy-paste    COCO instances of coco-mini train2017 (their polygon / RLE masks decoded
                here, no pycocotools needed) cut out of their image, rescaled, maybe
                mirrored and pasted at a random place; the pasted object adds a box
                (origin "paste") and paints its VOC class (background for the 60 non-VOC
                categories) into the class map; earlier boxes that end up mostly hidden
                are dropped
  flip          horizontal, p = 0.5
  scale jitter  a random window of the image (zoom z, log-uniform in [z_min, z_max], with
                aspect jitter; the image's aspect, stretched to the output like the
                detector's inference resize, or with keep_aspect the output's aspect, as
                segmentation crops) is resampled to the output size: z > 1 crops, z < 1 zooms
                out onto a canvas of the ImageNet mean colour (class map 255 there);
                boxes are clipped and kept when at least `min_visible` of them remains.
                The resampling is the inference one (bilinear, align_corners=False, no
                antialiasing: torchvision GeneralizedRCNNTransform / the C SDK)
  colour jitter brightness, contrast, saturation, hue in random order (torchvision's
                functional ops), p = 0.8

Every random choice comes from a numpy Generator seeded with (seed, image index, view), so
a cache of augmented views is reproducible.

Command line:
  augment.py preview [--n 12] [--out build/aug-preview]   draw augmented samples
  augment.py check-masks                                   mask decoding vs pycocotools
  augment.py selftest [--n 40]                             determinism, label invariants
  augment.py bench [--n 50]                                seconds per sample
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
import torchvision.transforms.functional as TF
from PIL import Image, ImageDraw

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

FILL = (124, 116, 104)  # ImageNet mean, 0..255: zero after normalization
# COCO category id -> VOC class (the same table as tflite_runner.COCO_TO_VOC)
COCO_TO_VOC = {5: 1, 2: 2, 16: 3, 9: 4, 44: 5, 6: 6, 3: 7, 17: 8, 62: 9, 21: 10, 67: 11,
               18: 12, 19: 13, 4: 14, 1: 15, 64: 16, 20: 17, 63: 18, 7: 19, 72: 20}

DEFAULTS = {
    "out_size": [320, 320],          # [h, w]
    "flip": 0.5,
    "zoom": [0.6, 2.0],              # z < 1 zoom out, z > 1 crop in
    "aspect": [0.75, 1.333],
    "keep_aspect": False,            # True: windows have the output's aspect (x jitter)
    "min_visible": 0.35,
    "min_box": 2.0,                  # output pixels
    "colour": 0.8,                   # probability
    "brightness": 0.3, "contrast": 0.3, "saturation": 0.3, "hue": 0.03,
    "paste": 0.5,                    # probability of pasting at all
    "paste_max": 3,                  # 1..paste_max objects
    "paste_size": [0.1, 0.6],        # pasted longer side / target longer side (log-uniform)
    "paste_hidden": 0.7,             # drop a box when this much of it is covered
    "paste_class_balanced": True,
}


# --- mask decoding (COCO polygons, RLE) ---------------------------------------------------

def rle_counts(s):
    """Run lengths of a COCO compressed RLE string: 6-bit groups (char - 48), 5 data bits
    and a continuation bit, the last group's bit 4 is the sign; from the third run on,
    each value is a difference to the run two places earlier."""
    counts, i, n = [], 0, len(s)
    while i < n:
        x, k, more = 0, 0, True
        while more:
            c = ord(s[i]) - 48
            x |= (c & 0x1F) << (5 * k)
            more = bool(c & 0x20)
            i += 1
            k += 1
            if not more and (c & 0x10):
                x |= -1 << (5 * k)
        if len(counts) > 2:
            x += counts[-2]
        counts.append(x)
    return counts


def decode_rle(counts, h, w):
    """[h, w] bool of an RLE (column-major runs, starting with zeros)."""
    if isinstance(counts, str):
        counts = rle_counts(counts)
    flat = np.zeros(h * w, bool)
    pos, val = 0, False
    for c in counts:
        if val:
            flat[pos:pos + c] = True
        pos += c
        val = not val
    return flat.reshape(w, h).T


def polygon_mask(polys, h, w):
    """[h, w] bool of COCO polygons (x, y lists; pixel (i, j) covers [j, j+1) x [i, i+1)):
    a pixel is set when its centre is inside (even-odd rule per polygon, union of the
    polygons of one object). Scanline on the row centres."""
    m = np.zeros((h, w), bool)
    ys = np.arange(h) + 0.5
    for p in polys:
        if len(p) < 6:
            continue
        xy = np.asarray(p, np.float64).reshape(-1, 2)
        x0, y0 = xy[:, 0], xy[:, 1]
        x1, y1 = np.roll(x0, -1), np.roll(y0, -1)
        cross = (ys[:, None] >= np.minimum(y0, y1)) & (ys[:, None] < np.maximum(y0, y1))
        t = (ys[:, None] - y0) / np.where(y1 != y0, y1 - y0, 1.0)
        xc = np.where(cross, x0 + t * (x1 - x0), np.inf)
        xc.sort(1)
        cnt = cross.sum(1)
        for r in np.nonzero(cnt)[0]:
            c = xc[r, :cnt[r]]
            for a, b in zip(c[0::2], c[1::2]):  # pixels with a <= centre < b
                i0, i1 = int(np.ceil(a - 0.5)), int(np.ceil(b - 0.5))
                m[r, max(i0, 0):min(i1, w)] = True
    return m


def ann_mask(ann, h, w):
    seg = ann["segmentation"]
    if isinstance(seg, list):
        return polygon_mask(seg, h, w)
    return decode_rle(seg["counts"], *seg["size"])


# --- samples -------------------------------------------------------------------------------

def load_rgb(path):
    with Image.open(path) as im:
        return np.array(im.convert("RGB"))


def load_sample(entry, shared, cache, with_seg=True):
    """A sample dict from a det.json entry of pseudo_label.py (class map at image size)."""
    img = load_rgb(os.path.join(shared, entry["file"]))
    s = {"image": img,
         "boxes": np.array(entry["boxes"], np.float32).reshape(-1, 4),
         "labels": np.array(entry["labels"], np.int64),
         "scores": np.array(entry["scores"], np.float32),
         "origin": list(entry["origin"]),
         # crowd regions and uncertain teacher boxes: neither object nor background
         "ignore": np.array(entry.get("crowd", []) + entry.get("uncertain", []),
                            np.float32).reshape(-1, 4),
         "seg": None}
    if with_seg and entry.get("seg"):
        with Image.open(os.path.join(cache, entry["seg"])) as im:
            lab = np.array(im)
        if lab.shape != img.shape[:2]:
            lab = np.array(Image.fromarray(lab).resize((img.shape[1], img.shape[0]), Image.NEAREST))
        s["seg"] = lab
    return s


def _subset(s, keep):
    s["boxes"], s["labels"], s["scores"] = s["boxes"][keep], s["labels"][keep], s["scores"][keep]
    s["origin"] = [o for o, k in zip(s["origin"], keep) if k]


def hflip(s):
    w = s["image"].shape[1]
    s["image"] = np.ascontiguousarray(s["image"][:, ::-1])
    if s["seg"] is not None:
        s["seg"] = np.ascontiguousarray(s["seg"][:, ::-1])
    for k in ("boxes", "ignore"):
        b = s[k].copy()
        b[:, 0], b[:, 2] = w - s[k][:, 2], w - s[k][:, 0]
        s[k] = b
    return s


class InstanceBank:
    """Non-crowd COCO instances (area >= min_area) that copy-paste draws from."""

    def __init__(self, coco_dir, split="train2017", min_area=24 * 24):
        with open(os.path.join(coco_dir, "annotations", "instances_%s.json" % split)) as f:
            d = json.load(f)
        self.images = {im["id"]: im for im in d["images"]}
        self.dir = os.path.join(coco_dir, split)
        self.items = [a for a in d["annotations"] if not a.get("iscrowd")
                      and a["area"] >= min_area and a["image_id"] in self.images
                      and os.path.exists(os.path.join(self.dir, self.images[a["image_id"]]["file_name"]))]
        self.by_cat = {}
        for i, a in enumerate(self.items):
            self.by_cat.setdefault(a["category_id"], []).append(i)
        self.cats = sorted(self.by_cat)
        self._cache = {}

    def __len__(self):
        return len(self.items)

    def pick(self, rng, class_balanced=True):
        if class_balanced:
            c = self.cats[rng.integers(len(self.cats))]
            lst = self.by_cat[c]
            return lst[rng.integers(len(lst))]
        return int(rng.integers(len(self.items)))

    def cutout(self, i):
        """(RGB crop [h, w, 3], mask crop [h, w] bool, category id) of instance i."""
        if i not in self._cache:
            a = self.items[i]
            info = self.images[a["image_id"]]
            img = load_rgb(os.path.join(self.dir, info["file_name"]))
            m = ann_mask(a, img.shape[0], img.shape[1])
            ys, xs = np.nonzero(m)
            if len(ys) == 0:
                self._cache[i] = None
            else:
                y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
                self._cache[i] = (img[y0:y1, x0:x1].copy(), m[y0:y1, x0:x1].copy(), a["category_id"])
        return self._cache[i]


def _resize_np(a, size, nearest):
    """Resize an [h, w(, 3)] uint8 / bool array to size (h, w) with Pillow."""
    h, w = size
    if a.dtype == bool:
        return np.array(Image.fromarray(a.astype(np.uint8) * 255).resize((w, h), Image.NEAREST)) > 127
    return np.array(Image.fromarray(a).resize((w, h), Image.NEAREST if nearest else Image.BILINEAR))


def copy_paste(s, bank, rng, cfg):
    """Paste 1..paste_max instances of `bank` onto sample s (in place)."""
    H, W = s["image"].shape[:2]
    n = int(rng.integers(1, cfg["paste_max"] + 1))
    pasted = []  # (mask over the whole image, index into s boxes)
    for _ in range(n):
        cut = bank.cutout(bank.pick(rng, cfg["paste_class_balanced"]))
        if cut is None:
            continue
        img, m, cat = cut
        lo, hi = cfg["paste_size"]
        rel = math.exp(rng.uniform(math.log(lo), math.log(hi)))
        sc = rel * max(H, W) / max(img.shape[:2])
        nh, nw = max(2, int(round(img.shape[0] * sc))), max(2, int(round(img.shape[1] * sc)))
        if nh > H or nw > W:
            f = min(H / nh, W / nw)
            nh, nw = max(2, int(nh * f)), max(2, int(nw * f))
        img, m = _resize_np(img, (nh, nw), False), _resize_np(m, (nh, nw), True)
        if rng.random() < 0.5:
            img, m = img[:, ::-1], m[:, ::-1]
        if not m.any():
            continue
        y0 = int(rng.integers(0, H - nh + 1))
        x0 = int(rng.integers(0, W - nw + 1))
        full = np.zeros((H, W), bool)
        full[y0:y0 + nh, x0:x0 + nw] = m
        region = s["image"][y0:y0 + nh, x0:x0 + nw]
        region[m] = img[m]
        if s["seg"] is not None:
            s["seg"][full] = COCO_TO_VOC.get(cat, 0)
        # existing boxes: drop those mostly hidden now; earlier pastes: shrink to what shows
        keep = np.ones(len(s["boxes"]), bool)
        pidx = {j for _, j in pasted}
        ii = np.cumsum(np.pad(full, ((1, 0), (1, 0))).astype(np.int64), 0).cumsum(1)
        for j, b in enumerate(s["boxes"]):
            if j in pidx:
                continue
            bx0, by0 = int(np.clip(np.floor(b[0]), 0, W)), int(np.clip(np.floor(b[1]), 0, H))
            bx1, by1 = int(np.clip(np.ceil(b[2]), 0, W)), int(np.clip(np.ceil(b[3]), 0, H))
            area = max((bx1 - bx0) * (by1 - by0), 1)
            cov = ii[by1, bx1] - ii[by0, bx1] - ii[by1, bx0] + ii[by0, bx0]
            if cov / area > cfg["paste_hidden"]:
                keep[j] = False
        for pm, j in pasted:
            before = pm.sum()
            pm &= ~full
            ys, xs = np.nonzero(pm)
            if len(ys) < 0.3 * before or len(ys) == 0:
                keep[j] = False
            else:
                s["boxes"][j] = [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
        remap = np.cumsum(keep) - 1
        pasted = [(pm, int(remap[j])) for pm, j in pasted if keep[j]]
        _subset(s, keep)
        ys, xs = np.nonzero(full)
        s["boxes"] = np.concatenate([s["boxes"], np.array(
            [[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]], np.float32)])
        s["labels"] = np.concatenate([s["labels"], [cat]]).astype(np.int64)
        s["scores"] = np.concatenate([s["scores"], [1.0]]).astype(np.float32)
        s["origin"].append("paste")
        pasted.append((full, len(s["boxes"]) - 1))
    return s


def _window(rng, H, W, cfg):
    """(x0, y0, ww, wh) of the scale-jitter window in image pixels (may exceed the image)."""
    zl, zh = cfg["zoom"]
    z = math.exp(rng.uniform(math.log(zl), math.log(zh)))
    al, ah = cfg["aspect"]
    a = math.exp(rng.uniform(math.log(al), math.log(ah)))
    if cfg["keep_aspect"]:  # square-ish windows: no stretching beyond the jitter
        oh, ow = cfg["out_size"]
        side = math.sqrt(W * H) / z
        a *= ow / oh
        ww, wh = max(1, int(round(side * math.sqrt(a)))), max(1, int(round(side / math.sqrt(a))))
    else:  # the image's own aspect: stretched to the output like the detector's input
        ww = max(1, int(round(W / z * math.sqrt(a))))
        wh = max(1, int(round(H / z / math.sqrt(a))))
    x0 = int(rng.integers(min(0, W - ww), max(0, W - ww) + 1))
    y0 = int(rng.integers(min(0, H - wh), max(0, H - wh) + 1))
    return x0, y0, ww, wh


def scale_jitter(s, rng, cfg):
    """Cut the window out (padding with FILL / 255), resample to out_size. The image
    becomes a float tensor [3, h, w] in 0..1."""
    H, W = s["image"].shape[:2]
    oh, ow = cfg["out_size"]
    x0, y0, ww, wh = _window(rng, H, W, cfg)
    ix0, iy0, ix1, iy1 = max(x0, 0), max(y0, 0), min(x0 + ww, W), min(y0 + wh, H)
    canvas = np.empty((wh, ww, 3), np.uint8)
    canvas[:] = FILL
    canvas[iy0 - y0:iy1 - y0, ix0 - x0:ix1 - x0] = s["image"][iy0:iy1, ix0:ix1]
    t = torch.from_numpy(canvas).permute(2, 0, 1)[None].float() / 255.0
    s["image"] = F.interpolate(t, size=(oh, ow), mode="bilinear", align_corners=False)[0]
    if s["seg"] is not None:
        lab = np.full((wh, ww), 255, np.uint8)
        lab[iy0 - y0:iy1 - y0, ix0 - x0:ix1 - x0] = s["seg"][iy0:iy1, ix0:ix1]
        lt = torch.from_numpy(lab)[None, None].float()
        s["seg"] = F.interpolate(lt, size=(oh, ow), mode="nearest")[0, 0].byte().numpy()
    sx, sy = ow / ww, oh / wh
    for k in ("boxes", "ignore"):
        b = s[k]
        if len(b) == 0:
            continue
        area = np.prod(b[:, 2:] - b[:, :2], 1)
        c = b - np.array([x0, y0, x0, y0], np.float32)
        c[:, 0::2] = c[:, 0::2].clip(0, ww)
        c[:, 1::2] = c[:, 1::2].clip(0, wh)
        vis = np.prod(c[:, 2:] - c[:, :2], 1)
        c *= np.array([sx, sy, sx, sy], np.float32)
        if k == "boxes":
            keep = (vis >= cfg["min_visible"] * np.maximum(area, 1e-6)) \
                & ((c[:, 2] - c[:, 0]) >= cfg["min_box"]) & ((c[:, 3] - c[:, 1]) >= cfg["min_box"])
            s[k] = c
            _subset(s, keep)
        else:
            s[k] = c[vis > 0]
    return s


def colour_jitter(img, rng, cfg):
    """img: float tensor [3, h, w] in 0..1."""
    ops = [
        lambda x, f: TF.adjust_brightness(x, f),
        lambda x, f: TF.adjust_contrast(x, f),
        lambda x, f: TF.adjust_saturation(x, f),
    ]
    facs = [rng.uniform(1 - cfg["brightness"], 1 + cfg["brightness"]),
            rng.uniform(1 - cfg["contrast"], 1 + cfg["contrast"]),
            rng.uniform(1 - cfg["saturation"], 1 + cfg["saturation"])]
    hue = rng.uniform(-cfg["hue"], cfg["hue"])
    order = rng.permutation(4)
    for o in order:
        if o < 3:
            img = ops[o](img, facs[o])
        elif hue:
            img = TF.adjust_hue(img, hue)
    return img.clamp(0, 1)


class Augmenter:
    """cfg: DEFAULTS overridden by keyword arguments; bank: InstanceBank or None."""

    def __init__(self, bank=None, **cfg):
        unknown = set(cfg) - set(DEFAULTS)
        if unknown:
            raise KeyError("unknown augmentation settings %s" % sorted(unknown))
        self.cfg = dict(DEFAULTS, **cfg)
        self.bank = bank

    @staticmethod
    def rng(seed, index, view):
        return np.random.default_rng(np.random.SeedSequence([seed, index, view]))

    def __call__(self, s, rng):
        c = self.cfg
        s = dict(s, image=s["image"].copy(), boxes=s["boxes"].copy(),
                 seg=None if s["seg"] is None else s["seg"].copy(), origin=list(s["origin"]))
        if self.bank is not None and len(self.bank) and rng.random() < c["paste"]:
            copy_paste(s, self.bank, rng, c)
        if rng.random() < c["flip"]:
            hflip(s)
        scale_jitter(s, rng, c)
        if rng.random() < c["colour"]:
            s["image"] = colour_jitter(s["image"], rng, c)
        return s


def plain(s, out_size):
    """The inference view (whole image stretched to out_size), for evaluation caches."""
    return scale_jitter(dict(s, boxes=s["boxes"].copy(), origin=list(s["origin"])),
                        np.random.default_rng(0),
                        dict(DEFAULTS, out_size=out_size, zoom=[1, 1], aspect=[1, 1],
                             min_visible=0.0, min_box=0.0))


# --- command line --------------------------------------------------------------------------

def _paths():
    here = os.path.dirname(os.path.abspath(__file__))
    repo = os.path.normpath(os.path.join(here, "..", ".."))
    shared = os.environ.get("MO_SHARED", os.path.normpath(os.path.join(repo, "..", "shared")))
    return repo, shared


def _entries(cache):
    with open(os.path.join(cache, "det.json")) as f:
        return json.load(f)["images"]


def _cmd_preview(a):
    bank = InstanceBank(os.path.join(a.shared, "data", "coco-mini"))
    aug = Augmenter(bank)
    ents = _entries(a.cache)
    pal = np.zeros((256, 3), np.uint8)
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import tflite_runner as tfl
    pal[:] = tfl.voc_palette()
    os.makedirs(a.out, exist_ok=True)
    rng0 = np.random.default_rng(a.seed)
    for k in range(a.n):
        i = int(rng0.integers(len(ents)))
        s = aug(load_sample(ents[i], a.shared, a.cache), Augmenter.rng(a.seed, i, k))
        img = (s["image"].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        if s["seg"] is not None:
            col = pal[s["seg"]]
            img = np.where((s["seg"] > 0)[..., None], (0.55 * img + 0.45 * col).astype(np.uint8), img)
        im = Image.fromarray(img)
        d = ImageDraw.Draw(im)
        for b, l, o in zip(s["boxes"].tolist(), s["labels"].tolist(), s["origin"]):
            colr = {"gt": (0, 255, 0), "teacher": (255, 255, 0), "paste": (255, 0, 255)}[o]
            d.rectangle(b, outline=colr)
            d.text((b[0] + 2, b[1] + 1), str(l), fill=colr)
        p = os.path.join(a.out, "%02d_%s.png" % (k, os.path.splitext(os.path.basename(ents[i]["file"]))[0]))
        im.save(p)
        print(p, len(s["boxes"]), "boxes", s["origin"])
    return 0


def _cmd_check_masks(a):
    sys.path.insert(0, a.pycocotools)
    import pycocotools.mask as cm
    with open(os.path.join(a.shared, "data", "coco-mini", "annotations",
                           "instances_%s.json" % a.split)) as f:
        d = json.load(f)
    ims = {im["id"]: im for im in d["images"]}
    worst_poly, worst_rle, n, ious = 1.0, 1.0, 0, []
    for ann in d["annotations"]:
        im = ims[ann["image_id"]]
        h, w = im["height"], im["width"]
        seg = ann["segmentation"]
        if isinstance(seg, list):
            ref = cm.decode(cm.merge(cm.frPyObjects(seg, h, w))).astype(bool)
        else:
            rle = cm.frPyObjects(seg, h, w) if isinstance(seg["counts"], list) else seg
            ref = cm.decode(rle).astype(bool)
            # also through a compressed string, to test the string decoder
            comp = cm.encode(np.asfortranarray(ref.astype(np.uint8)))
            mine_c = decode_rle(comp["counts"].decode("ascii"), h, w)
            if not (mine_c == ref).all():
                print("compressed RLE mismatch, annotation", ann["id"])
                return 1
        mine = ann_mask(ann, h, w)
        inter, union = (mine & ref).sum(), (mine | ref).sum()
        iou = inter / max(union, 1)
        ious.append(iou)
        if isinstance(seg, list):
            worst_poly = min(worst_poly, iou)
        else:
            worst_rle = min(worst_rle, iou)
        n += 1
    print("%d masks: IoU vs pycocotools: mean %.4f, worst polygon %.4f, worst RLE %.4f "
          "(RLE must be 1)" % (n, float(np.mean(ious)), worst_poly, worst_rle))
    return 0 if worst_rle == 1.0 and worst_poly > 0.75 else 1


def _cmd_selftest(a):
    """Invariants on n augmented samples: same seed -> same output; boxes inside the
    output frame with positive size; labels are COCO ids; class maps in 0..20 or 255;
    flipping twice is the identity."""
    bank = InstanceBank(os.path.join(a.shared, "data", "coco-mini"))
    ents = _entries(a.cache)
    bad = 0
    for seg_mode in (False, True):
        aug = Augmenter(bank, keep_aspect=seg_mode)
        oh, ow = aug.cfg["out_size"]
        for k in range(a.n):
            i = (k * 7919 + 13) % len(ents)
            base = load_sample(ents[i], a.shared, a.cache)
            s1 = aug(base, Augmenter.rng(1, i, k))
            s2 = aug(base, Augmenter.rng(1, i, k))
            ok = torch.equal(s1["image"], s2["image"]) and np.array_equal(s1["boxes"], s2["boxes"]) \
                and np.array_equal(s1["seg"], s2["seg"])
            b = s1["boxes"]
            ok &= tuple(s1["image"].shape) == (3, oh, ow) and s1["seg"].shape == (oh, ow)
            ok &= bool((b[:, 0] >= 0).all() and (b[:, 1] >= 0).all() and (b[:, 2] <= ow).all()
                       and (b[:, 3] <= oh).all() and (b[:, 2] > b[:, 0]).all() and (b[:, 3] > b[:, 1]).all())
            ok &= len(b) == len(s1["labels"]) == len(s1["scores"]) == len(s1["origin"])
            ok &= bool(((s1["labels"] >= 1) & (s1["labels"] <= 90)).all())
            ok &= bool(((s1["seg"] <= 20) | (s1["seg"] == 255)).all())
            t = hflip(hflip(dict(base, boxes=base["boxes"].copy())))
            ok &= np.allclose(t["boxes"], base["boxes"], atol=1e-4) and np.array_equal(t["image"], base["image"])
            if not ok:
                print("FAILED on", ents[i]["file"], "view", k, "keep_aspect", seg_mode)
                bad += 1
    print("%d samples x 2 modes: %s" % (a.n, "FAILED %d" % bad if bad else "all invariants hold"))
    return 1 if bad else 0


def _cmd_bench(a):
    bank = InstanceBank(os.path.join(a.shared, "data", "coco-mini"))
    aug = Augmenter(bank)
    ents = _entries(a.cache)
    t_load = t_aug = 0.0
    for k in range(a.n):
        i = (k * 7919) % len(ents)
        t0 = time.time()
        s = load_sample(ents[i], a.shared, a.cache)
        t1 = time.time()
        aug(s, Augmenter.rng(0, i, 0))
        t2 = time.time()
        t_load += t1 - t0
        t_aug += t2 - t1
    print("%d samples: load %.1f ms, augment %.1f ms per sample" % (a.n, 1000 * t_load / a.n,
                                                                   1000 * t_aug / a.n))
    return 0


def main(argv=None):
    repo, shared = _paths()
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shared", default=shared)
    ap.add_argument("--cache", default=os.path.join(repo, "build", "train-cache"))
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("preview", help="write augmented samples with boxes and class maps")
    p.add_argument("--n", type=int, default=12)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=os.path.join(repo, "build", "aug-preview"))
    c = sub.add_parser("check-masks", help="polygon / RLE decoding vs pycocotools")
    c.add_argument("--pycocotools", default="/work/pycocotools-src/PythonAPI")
    c.add_argument("--split", default="train2017")
    t = sub.add_parser("selftest", help="determinism and label invariants")
    t.add_argument("--n", type=int, default=40)
    b = sub.add_parser("bench", help="time per sample")
    b.add_argument("--n", type=int, default=50)
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    return {"preview": _cmd_preview, "check-masks": _cmd_check_masks, "bench": _cmd_bench,
            "selftest": _cmd_selftest}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
