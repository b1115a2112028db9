#!/usr/bin/python3
"""C segmentation head against the PyTorch reference on real images and the real S0 backbone.

Converts Apple's MobileOne-S0 checkpoint, writes a DeepLabV3 head with seeded random
weights (non-trivial BatchNorm, tools/convert_deeplab.py), runs the C head (seg_dump) and
the reference (tools/deeplab_ref.py: torchvision's DeepLabV3/DeepLabHead on the project's
MobileOne) on the COCO-mini val images and the VOC samples at every requested output
stride, and fails when, at any output stride,
  - a logit at feature resolution differs by more than --logit-tol * max(1, max |logit|)
    of its image, or
  - the label maps agree on fewer than --min-agree of all pixels, or on fewer than
    --min-image-agree of the pixels of any one image.
Prints per output stride: images, pixels, max abs logit difference, the largest relative
one, overall and worst per-image label agreement, times; writes them as JSON (--report).
Exits 77 (meson's skip) with a message when ../shared is absent.

With --head FILE the C head and the reference both load that head file (a trained head,
e.g. weights/deeplab_s0.mo.safetensors, converted against the backbone file that
tools/convert_mobileone.py makes of the same checkpoint) instead of the random one; the
test is skipped (77) with a message when FILE does not exist.

  seg_parity.py --dump build/tests/segment/seg_dump --shared ../shared --work build/segparity
      [--strides 8,16,32] [--limit-coco N] [--limit-voc N] [--resize N] [--report FILE] [--head FILE]
"""
import argparse
import glob
import json
import os
import shlex
import subprocess
import sys
import time

# meson sets MESON_EXE_WRAPPER (e.g. qemu-aarch64) when the C side is cross-built
WRAPPER = shlex.split(os.environ.get("MESON_EXE_WRAPPER", ""))
TOOLS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools")
sys.path.insert(0, TOOLS)
sys.path.append(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import quick  # noqa: E402  (tests/quick.py: MO_TEST_QUICK)


def image_list(shared, limit_coco, limit_voc=None):
    coco = sorted(glob.glob(os.path.join(shared, "data", "coco-mini", "val2017", "*.jpg")))
    voc = sorted(glob.glob(os.path.join(shared, "data", "voc2012-val-samples", "*_image.png")))
    if limit_coco is not None:
        # spread the subset over the sorted list rather than taking the first ones
        step = max(1, len(coco) // max(1, limit_coco))
        coco = coco[::step][:limit_coco]
    if limit_voc is not None:
        voc = voc[:limit_voc]
    return coco + voc, len(coco), len(voc)


def run_c(dump, model, head, os_, out, images, resize):
    os.makedirs(out, exist_ok=True)
    cmd = WRAPPER + [dump, "--model", model, "--head", head, "--os", str(os_), "--out", out]
    if resize:
        cmd += ["--resize", str(resize)]
    p = subprocess.run(cmd + images, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if p.returncode not in (0, 1):
        sys.exit("seg_dump failed (%d): %s" % (p.returncode, p.stderr))
    rows = {}
    for line in p.stdout.splitlines():
        f = line.split(None, 2)
        rows[int(f[0])] = line.split() if f[1] != "error" else f[2]
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dump", required=True, help="tests/segment/seg_dump")
    ap.add_argument("--shared", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--strides", default="8,16,32")
    ap.add_argument("--limit-coco", type=int, default=None,
                    help="use N of the 79 COCO images (spread over the list)")
    ap.add_argument("--limit-voc", type=int, default=None,
                    help="use the first N of the 3 VOC samples (default all)")
    ap.add_argument("--resize", type=int, default=None,
                    help="shorter side before the network (labels at the original size)")
    ap.add_argument("--logit-tol", type=float, default=1e-4)
    ap.add_argument("--min-agree", type=float, default=0.999)
    ap.add_argument("--min-image-agree", type=float, default=0.995)
    ap.add_argument("--report")
    ap.add_argument("--head", help="head file to test instead of a seeded random head")
    a = ap.parse_args()
    if quick.on():  # ./test.sh's AArch64 step under qemu
        a.limit_coco, a.resize = 0, a.resize or 256
        quick.note("seg-parity" + ("-shipped" if a.head else ""),
                   "the VOC samples only (COCO images skipped), resized to %d, same "
                   "tolerances" % a.resize)
    if a.head and not os.path.exists(a.head):
        print("SKIP: %s absent (no trained head in this checkout)" % a.head)
        return 77
    ckpt = os.path.join(a.shared, "models", "mobileone_s0.pth.tar")
    images, ncoco, nvoc = image_list(a.shared, a.limit_coco, a.limit_voc)
    if not os.path.exists(ckpt) or not images:
        print("SKIP: %s or the coco-mini / voc2012-val-samples images absent "
              "(see README: obtaining the shared data)" % ckpt)
        return 77

    try:
        import numpy as np
        import torch
    except ImportError as e:  # a counted skip (77), never a silent pass
        print("SKIP: %s (Debian python3-numpy python3-torch: tools/install-deps.sh)" % e)
        return 77
    import deeplab_ref as dl
    import mobileone_ref as ref
    torch.set_num_threads(max(torch.get_num_threads(), len(os.sched_getaffinity(0))))

    os.makedirs(a.work, exist_ok=True)
    model = os.path.join(a.work, "mobileone_s0.mo.safetensors")
    head = a.head or os.path.join(a.work, "deeplab_s0_random.mo.safetensors")
    import convert_deeplab
    import convert_mobileone
    if convert_mobileone._main([ckpt, model]) or (not a.head and convert_deeplab._main(
            ["--backbone", model, "--random", "--seed", "0", head])):
        sys.exit("model conversion failed")
    bb = dl.load_backbone(model)
    net = dl.make_model(bb, dl.load_head(head, ref.widths(bb.variant)[4])[0])
    inputs = [dl.load_image(p, a.resize) for p in images]

    report = {"images": len(images), "coco": ncoco, "voc": nvoc, "resize": a.resize,
              "head": head, "strides": {}}
    ok = True
    for os_ in [int(s) for s in a.strides.split(",")]:
        out = os.path.join(a.work, "os%d" % os_)
        t0 = time.time()
        rows = run_c(a.dump, model, head, os_, out, images, a.resize)
        tc = time.time() - t0
        t0 = time.time()
        st = {"pixels": 0, "agree_pixels": 0, "max_abs_logit_diff": 0.0,
              "max_rel_logit_diff": 0.0, "max_abs_logit": 0.0, "worst_image_agree": 1.0,
              "worst_image": None, "c_errors": 0}
        failures = []
        for i, (path, (x, (w, h))) in enumerate(zip(images, inputs)):
            row = rows.get(i)
            if not isinstance(row, list):
                st["c_errors"] += 1
                failures.append("%s: C failed: %s" % (path, row))
                continue
            low, _, lab = dl.forward(net, x, os_, (h, w) if a.resize else None)
            k, fh, fw = low.shape
            cl = np.fromfile(os.path.join(out, "%d.logits" % i), np.float32)
            cb = np.fromfile(os.path.join(out, "%d.labels" % i), np.uint8)
            if cl.size != fh * fw * k or cb.size != h * w:
                failures.append("%s: C output sizes differ from the reference" % path)
                continue
            rl = low.permute(1, 2, 0).numpy()
            d = float(np.abs(cl.reshape(fh, fw, k) - rl).max())
            scale = max(1.0, float(np.abs(rl).max()))
            agree = int((cb.reshape(h, w) == lab.numpy()).sum())
            st["pixels"] += h * w
            st["agree_pixels"] += agree
            st["max_abs_logit_diff"] = max(st["max_abs_logit_diff"], d)
            st["max_rel_logit_diff"] = max(st["max_rel_logit_diff"], d / scale)
            st["max_abs_logit"] = max(st["max_abs_logit"], float(np.abs(rl).max()))
            if agree / (h * w) < st["worst_image_agree"]:
                st["worst_image_agree"] = agree / (h * w)
                st["worst_image"] = os.path.basename(path)
            if d > a.logit_tol * scale:
                failures.append("%s: logit diff %.3g > %.1g * %.3g" % (path, d, a.logit_tol,
                                                                      scale))
            if agree / (h * w) < a.min_image_agree:
                failures.append("%s: labels agree on %.5f < %.4f" % (path, agree / (h * w),
                                                                   a.min_image_agree))
        st["agreement"] = st["agree_pixels"] / max(1, st["pixels"])
        st["c_seconds"] = round(tc, 1)
        st["ref_seconds"] = round(time.time() - t0, 1)
        if st["agreement"] < a.min_agree:
            failures.append("overall label agreement %.6f < %.4f" % (st["agreement"],
                                                                    a.min_agree))
        print("output stride %d: %s" % (os_, json.dumps(st)))
        for f in failures[:10]:
            print("FAIL os%d: %s" % (os_, f))
        ok &= not failures
        report["strides"][os_] = st
    if a.report:
        with open(a.report, "w") as f:
            json.dump(report, f, indent=1)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
