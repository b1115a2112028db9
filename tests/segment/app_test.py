#!/usr/bin/python3
"""mo-segment end to end: outputs, their agreement with the PyTorch reference, input and
error rules.

- The mask PNG is an 8-bit indexed PNG whose palette is Pascal VOC's; Pillow reads it back
  as labels (mode "P"), and so does `mo-eval seg` (with --mask-suffix ''), equal to the
  raw PGM label map and, on at least 99.9% of the
  pixels, to the reference (tools/deeplab_ref.py) on the same image at the same output
  stride; also with --resize (labels at the original size).
- The overlay is the image plus a legend strip below it; --json lists every input in
  order, with class fractions summing to 1.
- A directory stands for its sorted image files (our own *_mask.png outputs skipped);
  equal file names get distinct output names; a corrupt file, a missing file and an image
  over --max-side fail alone (exit 1); usage errors, an unreadable model and a head for
  another backbone exit 2 with a message.
Uses the real S0 backbone and the VOC samples when ../shared is present (either missing
there fails the test), else a random backbone; plus synthetic images. Exits 77 (skip)
without NumPy, torch or Pillow.

  app_test.py --app build/apps/segment/mo-segment --work build/segapp [--shared ../shared]
      [--eval build/apps/eval/mo-eval]
"""
import argparse
import json
import os
import shutil
import subprocess
import sys

TOOLS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools")
sys.path.insert(0, TOOLS)

FAILS = []


def check(cond, what):
    print("%s: %s" % ("ok" if cond else "FAIL", what))
    if not cond:
        FAILS.append(what)
    return cond


def voc_palette():
    """The VOC devkit's colour map, written out here from its bit rule."""
    pal = []
    for i in range(256):
        r = g = b = 0
        c = i
        for j in range(8):
            r |= (c & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        pal += [r, g, b]
    return pal


def run(cmd):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return p.returncode, p.stdout, p.stderr


def read_pgm(path):
    import numpy as np
    with open(path, "rb") as f:
        data = f.read()
    parts = data.split(b"\n", 3)
    assert parts[0] == b"P5" and parts[2] == b"255", "not an 8-bit binary PGM"
    w, h = (int(x) for x in parts[1].split())
    return np.frombuffer(parts[3], np.uint8).reshape(h, w)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--app", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--shared", default=None)
    ap.add_argument("--eval", default=None, help="mo-eval, to read the masks back")
    ap.add_argument("--quick", action="store_true",
                    help="one VOC image and no mo-eval part (for sanitizer builds)")
    a = ap.parse_args()
    try:
        import numpy as np
        import torch
        from PIL import Image
    except ImportError as e:  # a counted skip (77), never a silent pass
        print("SKIP: %s (Debian python3-numpy python3-torch python3-pil: "
              "tools/install-deps.sh)" % e)
        return 77
    import deeplab_ref as dl
    import mobileone_ref as ref
    torch.set_num_threads(max(torch.get_num_threads(), len(os.sched_getaffinity(0))))

    if os.path.isdir(a.work):
        shutil.rmtree(a.work)
    os.makedirs(a.work)
    import convert_deeplab
    import convert_mobileone
    import mofile
    w = lambda *p: os.path.join(a.work, *p)  # noqa: E731
    ckpt = os.path.join(a.shared or "", "models", "mobileone_s0.pth.tar")
    voc = os.path.join(a.shared or "", "data", "voc2012-val-samples")
    if a.shared and os.path.isdir(a.shared):  # present: what it should hold must be there
        for p in [ckpt] + [os.path.join(voc, i + "_image.png") for i in ("1", "23", "114")]:
            if not os.path.exists(p):
                print("FAIL: %s is absent although %s exists" % (p, a.shared))
                return 1
    model, head, other = w("s0.mo.safetensors"), w("head.mo.safetensors"), w("other.mo.safetensors")
    quiet = open(os.devnull, "w")
    sys.stdout, stdout = quiet, sys.stdout  # the converters print a line each
    try:
        if a.shared and os.path.exists(ckpt):
            assert convert_mobileone._main([ckpt, model]) == 0
            kind = "real MobileOne-S0"
        else:
            assert convert_mobileone._main(["--random", "s0", "--fused", model]) == 0
            kind = "random MobileOne-S0 (no %s)" % ckpt
        conv = ["--random", "--seed", "1", "--backbone", model]
        assert convert_deeplab._main(conv + [head]) == 0
        assert convert_deeplab._main(conv + ["--combined", w("combined.mo")]) == 0
    finally:
        sys.stdout = stdout
    print("backbone: " + kind)
    # the same head naming another backbone
    t, meta = mofile.read(head)
    meta["mo.backbone_digest"] = "0123456789abcdef"
    mofile.write(other, t, {k: v for k, v in meta.items()
                            if k not in ("mo.crc32", "mo.format", "mo.format_version")})
    # the head with normalization that makes no sense (it used to run, exit 0)
    t, meta = mofile.read(head)
    bad_heads = []
    for n, (key, value) in enumerate((("mo.mean", "[NaN,0.456,0.406]"),
                                      ("mo.std", "[0.229,-1,0.225]"))):
        bad_heads.append(w("bad%d.mo.safetensors" % n))
        mofile.write(bad_heads[-1], t, dict(
            {k: v for k, v in meta.items()
             if k not in ("mo.crc32", "mo.format", "mo.format_version")}, **{key: value}))

    # inputs: VOC samples, synthetic images of odd sizes and kinds, a duplicate name
    os.makedirs(w("in", "dup"))
    rng = np.random.default_rng(0)
    imgs = []
    for n in ("1_image.png", "23_image.png", "114_image.png")[:1 if a.quick else 3]:
        if os.path.exists(os.path.join(voc, n)):
            imgs.append(os.path.join(voc, n))
    yy, xx = np.mgrid[0:61, 0:97]
    smooth = np.stack([xx * 2.5, yy * 4, (xx + yy) * 1.6], -1).astype(np.uint8)
    Image.fromarray(smooth).save(w("in", "ramp.png"))
    Image.fromarray(rng.integers(0, 255, (80, 50), np.uint8)).save(w("in", "gray.jpg"),
                                                                  quality=90)
    Image.fromarray(rng.integers(0, 255, (1, 1, 3), np.uint8)).save(w("in", "dot.png"))
    shutil.copy(w("in", "ramp.png"), w("in", "dup", "ramp.png"))
    Image.fromarray(rng.integers(0, 255, (560, 600, 3), np.uint8)).save(w("in", "big.png"))
    with open(w("in", "broken.jpg"), "wb") as f:
        f.write(b"\xff\xd8\xff\xe0 not really a jpeg")
    imgs += [w("in", "ramp.png"), w("in", "gray.jpg"), w("in", "dot.png"), w("in", "dup", "ramp.png")]
    bad = [w("in", "broken.jpg"), w("in", "missing.png"), w("in", "big.png")]

    # one run: --raw --json, OS 16, with failures among the inputs
    rc, out, err = run([a.app, "--model", model, "--head", head, "--out", w("out"), "--raw",
                        "--json", "--max-side", "520"] + imgs[:2] + bad + imgs[2:])
    check(rc == 1, "exit 1 when some images fail (got %d)" % rc)
    res = json.loads(out)
    order = imgs[:2] + bad + imgs[2:]
    check([r["image"] for r in res] == order, "--json lists every input in order")
    errs = {r["image"]: r.get("error") for r in res}
    check(all(errs[p] for p in bad) and not any(errs[p] for p in imgs),
          "exactly the broken, missing and too-large inputs fail")
    check("max-side" in (errs.get(bad[2]) or ""), "too large names --max-side: %s" % errs.get(bad[2]))
    check(all(p in err for p in bad), "failures reported on stderr")
    stems = sorted(os.path.basename(r["mask"]) for r in res if "mask" in r)
    check("ramp_mask.png" in stems and "ramp-2_mask.png" in stems,
          "equal names get distinct outputs: %s" % stems)

    bb = dl.load_backbone(model)
    net = dl.make_model(bb, dl.load_head(head, ref.widths(bb.variant)[4])[0])
    pal = voc_palette()
    for r in res:
        if "error" in r:
            continue
        m = Image.open(r["mask"])
        lab = np.array(m)
        x, (iw, ih) = dl.load_image(r["image"])
        _, _, rl = dl.forward(net, x, 16)
        agree = float((lab == rl.numpy()).mean())
        name = os.path.basename(r["image"])
        check(m.mode == "P" and m.size == (iw, ih) and (r["width"], r["height"]) == (iw, ih),
              "%s: mask is an indexed %dx%d PNG" % (name, iw, ih))
        check(m.getpalette()[:3 * 21] == pal[:3 * 21], "%s: mask palette is VOC's" % name)
        check(np.array_equal(read_pgm(r["labels"]), lab), "%s: raw PGM equals the mask" % name)
        check(agree >= 0.999, "%s: labels agree with the reference on %.5f" % (name, agree))
        ov = Image.open(r["overlay"])
        check(ov.mode == "RGB" and ov.size[0] >= iw and ov.size[1] > ih,
              "%s: overlay %s = image + legend strip (at least as wide as its entries)" % (name, ov.size))
        fr = [c["fraction"] for c in r["classes"]]
        present = sorted(int(v) for v in np.unique(lab))
        check(abs(sum(fr) - 1) < 1e-9 and sorted(c["class"] for c in r["classes"]) == present
              and fr == sorted(fr, reverse=True),
              "%s: JSON classes are the labels present, largest first" % name)

    # --resize: network on the resized image, labels at the original size
    probe = imgs[0]
    rc, out, err = run([a.app, "--model", w("combined.mo"), "--out", w("out_rs"), "--resize",
                        "72", "--os", "8", "--json", probe])
    r = json.loads(out)[0] if rc == 0 else {}
    if check(rc == 0 and "mask" in r, "--resize with a combined model file (%s)" % err.strip()):
        lab = np.array(Image.open(r["mask"]))
        x, (iw, ih) = dl.load_image(probe, 72)
        _, _, rl = dl.forward(net, x, 8, (ih, iw))
        check(lab.shape == (ih, iw), "--resize: mask at the original size %dx%d" % (iw, ih))
        check(float((lab == rl.numpy()).mean()) >= 0.999,
              "--resize: labels agree with the reference on %.5f" % float((lab == rl.numpy()).mean()))

    # a directory: sorted image files, our outputs skipped, sub-directories not entered
    Image.fromarray(smooth).save(w("in", "zz_mask.png"))
    rc, out, err = run([a.app, "--model", model, "--head", head, "--out", w("out_dir"), "--json",
                        "--os", "32", "--no-overlay", w("in")])
    got = [os.path.basename(r["image"]) for r in json.loads(out)] if out.strip() else []
    check(got == ["big.png", "broken.jpg", "dot.png", "gray.jpg", "ramp.png"],
          "directory expands to its sorted images, *_mask.png skipped: %s" % got)
    check(rc == 1 and not os.path.exists(w("out_dir", "ramp_overlay.png")),
          "--no-overlay writes no overlay; broken.jpg fails (exit %d)" % rc)

    # masks named as VOC's SegmentationClass: mo-eval seg reads them as predictions
    ids = [i for i in ("1", "23", "114") if os.path.exists(os.path.join(voc, i + "_image.png"))]
    if a.eval and ids and not a.quick:
        for d in ("img", "gt"):
            os.makedirs(w("eval", d))
        for i in ids:
            shutil.copy(os.path.join(voc, i + "_image.png"), w("eval", "img", i + ".png"))
            shutil.copy(os.path.join(voc, i + "_target.png"), w("eval", "gt", i + ".png"))
        rc, out, err = run([a.app, "--model", model, "--head", head, "--mask-suffix", "",
                            "--no-overlay", "--out", w("eval", "pred"), w("eval", "img")])
        check(rc == 0 and sorted(os.listdir(w("eval", "pred"))) == sorted(i + ".png" for i in ids),
              "--mask-suffix '' writes ID.png masks")
        rc, out, err = run([a.eval, "seg", "--gt", w("eval", "gt"), "--pred", w("eval", "pred"),
                            "--classes", "21", "--json", w("eval", "seg.json")])
        if check(rc == 0, "mo-eval seg reads the masks (%s)" % err.strip()):
            with open(w("eval", "seg.json")) as f:
                ev = json.load(f)
            colour = {tuple(pal[3 * i:3 * i + 3]): i for i in range(256)}  # VOC targets are RGB
            hit = tot = 0
            for i in ids:
                g = np.array(Image.open(w("eval", "gt", i + ".png")).convert("RGB"))
                key = (g[..., 0].astype(np.int64) << 16) | (g[..., 1].astype(np.int64) << 8) | g[..., 2]
                u, inv = np.unique(key, return_inverse=True)
                gt = np.array([colour[(k >> 16, (k >> 8) & 255, k & 255)] for k in u])[inv]
                gt = gt.reshape(key.shape)
                pr = np.array(Image.open(w("eval", "pred", i + ".png")))
                valid = gt != 255
                hit += int((gt == pr)[valid].sum())
                tot += int(valid.sum())
            check(ev["pixels"] == tot and abs(ev["pixel_acc"] - hit / tot) < 1e-12,
                  "mo-eval pixel accuracy %.6f over %d pixels = ours" % (ev["pixel_acc"], tot))
        rc, out, err = run([a.app, "--model", model, "--head", head, "--mask-suffix", "",
                            "--out", w("eval", "img"), w("eval", "img", ids[0] + ".png")])
        check(rc == 1 and "overwrite" in err, "an output that would overwrite its input is refused")

    # errors that stop before any image: exit 2 with a message
    for args, word in (([], "usage"),
                       (["--model", model, "--os", "12", probe], "--os"),
                       (["--model", model, "--alpha", "2", probe], "--alpha"),
                       (["--model", model, "--max-side", "0", probe], "--max-side"),
                       (["--model", w("nope.mo"), probe], "nope.mo"),
                       (["--model", model, probe], "no segmentation head"),
                       (["--model", model, "--head", other, probe], "names backbone"),
                       (["--model", model, "--head", bad_heads[0], probe],
                        "mo.mean = [NaN,0.456,0.406]"),
                       (["--model", model, "--head", bad_heads[1], probe],
                        "mo.std[1] = -1 must be positive"),
                       (["--model", model, "--bogus", probe], "unknown option")):
        rc, out, err = run([a.app] + args)
        check(rc == 2 and word in err, "exit 2 and '%s' for %s (got %d: %s)" % (
            word, " ".join(os.path.basename(x) for x in args) or "no arguments", rc,
            err.strip().splitlines()[0] if err.strip() else ""))
    if FAILS:
        print("%d check(s) failed" % len(FAILS))
        return 1
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
