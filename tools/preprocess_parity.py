#!/usr/bin/python3
"""Compare the C image pipeline (libmo_io) with Pillow + torchvision.

For every image of a directory (default ../shared/data/imagenet-samples), runs

    Image.open(p).convert("RGB")                                    -> decode
    Resize(256), CenterCrop(224)                                    -> 8-bit levels
    ToTensor(), Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))  -> tensor

with torchvision and the same through tests/io/preprocess_dump (built by meson), then
reports the max and mean absolute differences: decode and crop in 8-bit levels, the
tensor after normalization in float units and in levels (difference * std * 255).

    /usr/bin/python3 tools/preprocess_parity.py --build build
    /usr/bin/python3 tools/preprocess_parity.py --build build \
        --dir ../shared/data/imagenet-val1300/images

Exit status 1 if any difference exceeds --max-levels (default 0: bit-exact expected),
77 (skipped) when the directory does not exist.
Needs Pillow, numpy, torch and torchvision (Debian: python3-pil python3-torchvision).
"""
import argparse
import os
import subprocess
import sys
import tempfile

try:
    import numpy as np
    import torch
    from PIL import Image
    from torchvision import transforms
except ImportError as e:  # meson's "skipped" (77) with the reason, never a silent pass
    print("SKIP: %s (Debian python3-numpy python3-pil python3-torchvision: "
          "tools/install-deps.sh)" % e)
    sys.exit(77)

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
EXTS = (".jpeg", ".jpg", ".png", ".bmp", ".gif")


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dir", default=os.path.join(root, "..", "shared", "data", "imagenet-samples"))
    ap.add_argument("--build", default=os.path.join(root, "build"), help="meson build directory")
    ap.add_argument("--dumper", help="path of preprocess_dump (default BUILD/tests/io/preprocess_dump)")
    ap.add_argument("--resize", type=int, default=256)
    ap.add_argument("--crop", type=int, default=224)
    ap.add_argument("--max-levels", type=float, default=0.0,
                    help="fail when a decode/crop difference exceeds this many levels")
    ap.add_argument("--verbose", "-v", action="store_true", help="one line per image")
    args = ap.parse_args()

    dumper = args.dumper or os.path.join(args.build, "tests", "io", "preprocess_dump")
    if not os.path.exists(dumper):
        sys.exit(f"{dumper} not found: build with meson first (or pass --dumper)")
    if not os.path.isdir(args.dir):
        print(f"SKIP: {args.dir} not found")
        return 77  # meson's "skipped"
    files = sorted(os.path.join(args.dir, f) for f in os.listdir(args.dir)
                   if f.lower().endswith(EXTS))
    if not files:
        sys.exit(f"no images in {args.dir}")

    to_levels = transforms.Compose([transforms.Resize(args.resize), transforms.CenterCrop(args.crop)])
    to_tensor = transforms.Compose([transforms.ToTensor(), transforms.Normalize(MEAN, STD)])
    std = np.array(STD, np.float64)

    stats = {k: [0.0, 0.0, 0] for k in ("decode", "levels", "tensor", "tensor_lv")}
    exact = {"decode": 0, "levels": 0, "tensor": 0}
    errors = 0

    def acc(key, d):
        s = stats[key]
        s[0] = max(s[0], float(d.max()) if d.size else 0.0)
        s[1] += float(d.sum())
        s[2] += d.size

    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([dumper, tmp, str(args.resize), str(args.crop)] + files, check=True)
        for i, path in enumerate(files):
            name = os.path.basename(path)
            base = os.path.join(tmp, str(i))
            if os.path.exists(base + ".err"):
                print(f"{name}: C error: {open(base + '.err').read().strip()}")
                errors += 1
                continue
            img = Image.open(path).convert("RGB")
            raw = np.fromfile(base + ".rgb", np.uint8)
            w, h = np.frombuffer(raw[:8].tobytes(), np.int32)
            dec = raw[8:].reshape(h, w, 3).astype(np.int32)
            ref_dec = np.asarray(img).astype(np.int32)
            if ref_dec.shape != dec.shape:
                print(f"{name}: decoded size {dec.shape} vs Pillow {ref_dec.shape}")
                errors += 1
                continue
            d_dec = np.abs(dec - ref_dec)

            crop = to_levels(img)
            ref_lv = np.asarray(crop).astype(np.int32)
            lv = np.fromfile(base + ".u8", np.uint8).reshape(args.crop, args.crop, 3).astype(np.int32)
            d_lv = np.abs(lv - ref_lv)

            ref_t = to_tensor(crop).permute(1, 2, 0).contiguous().numpy()  # NHWC
            t = np.fromfile(base + ".f32", np.float32).reshape(args.crop, args.crop, 3)
            d_t = np.abs(t.astype(np.float64) - ref_t.astype(np.float64))

            acc("decode", d_dec)
            acc("levels", d_lv)
            acc("tensor", d_t)
            acc("tensor_lv", d_t * std * 255.0)
            exact["decode"] += int(d_dec.max() == 0)
            exact["levels"] += int(d_lv.max() == 0)
            exact["tensor"] += int(np.array_equal(t, ref_t))
            if args.verbose:
                print(f"{name}: {img.size[0]}x{img.size[1]} mode={Image.open(path).mode} "
                      f"decode max {d_dec.max()} levels max {d_lv.max()} tensor max {d_t.max():.3g}")

    n = len(files) - errors
    print(f"images: {len(files)} in {args.dir} ({errors} failed)")
    print(f"pipeline: Resize({args.resize}) CenterCrop({args.crop}) ToTensor Normalize{MEAN}{STD}")

    def line(label, key, unit, fmt):
        mx, total, cnt = stats[key]
        mean = total / cnt if cnt else 0.0
        ex = f", bit-exact on {exact[key]}/{n} images" if key in exact else ""
        print(f"{label:34s} max {mx:{fmt}} mean {mean:{fmt}} {unit}{ex}")

    line("decode vs Image.convert('RGB'):", "decode", "levels", ".6g")
    line("resize+crop, 8-bit:", "levels", "levels", ".6g")
    line("normalized tensor:", "tensor", "", ".3g")
    line("normalized tensor, in levels:", "tensor_lv", "levels", ".3g")
    bad = errors or stats["decode"][0] > args.max_levels or stats["levels"][0] > args.max_levels
    print("RESULT:", "FAIL" if bad else "PASS")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
