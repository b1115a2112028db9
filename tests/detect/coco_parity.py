#!/usr/bin/python3
"""C detection head against the PyTorch reference (torchvision SSDLite on MobileOne).

The model: the real MobileOne-S0 backbone (../shared/models/mobileone_s0.pth.tar) with
a head file given by --head (the shipped, trained weights/ssdlite_s0.mo.safetensors) or
seeded random extras and head (tools/ssdlite_ref.py, calibrated on 4 coco-mini train
images to logits of RMS 1), converted by tools/convert_mobileone.py (backbone file) and
tools/convert_ssdlite.py (head-only file naming that backbone) and by --combined.
At --score 0.15 random weights leave a few hundred candidates per image (239..584).

For every image of coco-mini/val2017 (79) it compares, and fails beyond:
  raw outputs      max |C - ref| of logits and regression codes <= RAW_TOL * max(1, max|ref|)
  default boxes    max |C - ref| <= 1e-4 px
  detections       same count, labels and order; boxes within 1e-2 px (original image
                   pixels), scores within 1e-5 (C end to end: det_dump). Detections whose
                   reference scores differ by <= 1e-5 may come in either order (float
                   rounding decides, in torch as in C); such swaps are counted.
  post-processing  the C post-processing alone on the reference's raw outputs
                   (det_dump --post-raw): same count, labels, order; boxes 1e-3 px,
                   scores 1e-6
and that the combined file gives the same detections as backbone + head files.
Prints the measured maxima and writes them as JSON (--report). Exits 77 (meson's skip)
with a message when ../shared or torch is absent.

  coco_parity.py --dump build/tests/detect/det_dump --shared ../shared --work DIR
"""
import argparse
import json
import os
import shlex
import subprocess
import sys
import time

# meson sets MESON_EXE_WRAPPER (e.g. qemu-aarch64) when the C side is cross-built
WRAPPER = shlex.split(os.environ.get("MESON_EXE_WRAPPER", ""))
TOOLS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools")
sys.path.append(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import quick  # noqa: E402  (tests/quick.py: MO_TEST_QUICK)
RAW_TOL = 5e-5
ANCHOR_TOL = 1e-4
BOX_TOL, SCORE_TOL = 1e-2, 1e-5
POST_BOX_TOL, POST_SCORE_TOL = 1e-3, 1e-6
SEED = 3
LOGIT_STD = 1.0  # RMS of the random logits: with SCORE, a few hundred candidates per image
SCORE = 0.15


def run(cmd):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if p.returncode:
        sys.exit("FAIL: %s exited with %d: %s" % (" ".join(cmd[:3]), p.returncode, p.stderr))
    return [json.loads(line) for line in p.stdout.splitlines() if line.strip()]


def same_det(x, y, box_tol, score_tol):
    return x[5] == y[5] and abs(x[4] - y[4]) <= score_tol and \
        max(abs(a - b) for a, b in zip(x[:4], y[:4])) <= box_tol


def compare_dets(c, r, box_tol, score_tol):
    """(problem or None, max box diff, max score diff, reordered) of one image.

    Detection i of C must equal detection i of the reference (label, box, score). The one
    exception: detections whose reference scores differ by no more than the score
    tolerance have no defined order (float rounding decides it, in torch as in C), so
    such a detection may match one within that score band instead; those are counted.
    """
    cd, rd = c["dets"], r["dets"]
    if len(cd) != len(rd):
        return ("%d detections vs ref %d" % (len(cd), len(rd)), 0.0, 0.0, 0)
    db = ds = 0.0
    used = [False] * len(rd)
    reordered = 0
    for i, x in enumerate(cd):
        j = i if not used[i] and same_det(x, rd[i], box_tol, score_tol) else None
        if j is None:
            for k in range(len(rd)):
                if not used[k] and abs(rd[k][4] - rd[i][4]) <= score_tol and \
                        same_det(x, rd[k], box_tol, score_tol):
                    j = k
                    reordered += 1
                    break
        if j is None:
            y = rd[i]
            return ("detection %d: label %d score %.7f box %s vs ref label %d score %.7f box %s"
                    % (i, x[5], x[4], [round(v, 2) for v in x[:4]], y[5], y[4],
                       [round(v, 2) for v in y[:4]]), db, ds, reordered)
        used[j] = True
        db = max(db, max(abs(a - b) for a, b in zip(x[:4], rd[j][:4])))
        ds = max(ds, abs(x[4] - rd[j][4]))
    return (None, db, ds, reordered)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dump", required=True, help="tests/detect/det_dump")
    ap.add_argument("--shared", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--score", type=float, default=SCORE)
    ap.add_argument("--images", type=int, default=0, help="only the first N images (0: all)")
    ap.add_argument("--head", help="compare this head file (e.g. the shipped "
                    "weights/ssdlite_s0.mo.safetensors) instead of a seeded random head")
    ap.add_argument("--neck", type=int, nargs=2, metavar=("M3", "M4"),
                    help="the random head with neck blocks of these widths on stage3 / "
                         "stage4 (det.neck_channels)")
    ap.add_argument("--report")
    a = ap.parse_args()
    if quick.on():  # ./test.sh's AArch64 step under qemu
        a.images = min(a.images or 2, 2)
        quick.note("coco-parity" + ("-shipped" if a.head else "-neck" if a.neck else ""),
                   "the first 2 coco-mini val2017 images only, same tolerances")
    ckpt = os.path.join(a.shared, "models", "mobileone_s0.pth.tar")
    coco = os.path.join(a.shared, "data", "coco-mini")
    for p in (ckpt, os.path.join(coco, "val2017")) + ((a.head,) if a.head else ()):
        if not os.path.exists(p):
            print("SKIP: %s absent (see README: obtaining the shared data)" % p)
            return 77
    try:
        import numpy as np
        import torch
    except ImportError as e:
        print("SKIP: %s (install python3-torch python3-torchvision)" % e)
        return 77
    sys.path.insert(0, TOOLS)
    import convert_mobileone as conv_mo
    import convert_ssdlite as conv_det
    import mofile
    import ssdlite_ref as sref

    t_start = time.time()
    # One thread: on a busy machine OpenMP threads spin against each other (the reference
    # took 167 s instead of 33 s with 2 threads on a loaded 2-core box); idle, it costs ~2 s.
    torch.set_num_threads(1)
    os.makedirs(a.work, exist_ok=True)
    val = os.path.join(coco, "val2017")
    images = sorted(os.path.join(val, n) for n in os.listdir(val) if n.endswith(".jpg"))
    if a.images:
        images = images[:a.images]
    train = os.path.join(coco, "train2017")
    calib = sorted(os.path.join(train, n) for n in os.listdir(train))[:4]

    # model, checkpoint, files
    sd = sref.ref.load_checkpoint(ckpt)
    v, form = conv_mo.resolve_variant(sd)
    bfile = os.path.join(a.work, "s0.mo.safetensors")
    mofile.write(bfile, *conv_mo.build(sd, v, form, source="mobileone_s0.pth.tar"))
    if a.head:  # a shipped head file, as it is (F16 or F32): the reference reads the same
        model = sref.from_files(ckpt, a.head, score_thresh=a.score)
        hfile = a.head
    else:
        model = sref.random_model(ckpt, SEED, calib_images=calib, logit_std=LOGIT_STD,
                                  config={"neck_channels": a.neck} if a.neck else None,
                                  score_thresh=a.score)
        files = conv_det.build_files(model.state_dict(), model.config, model.variant,
                                     backbone_file=bfile, source="coco_parity.py seed %d" % SEED)
        hfile = os.path.join(a.work, "det.mo.safetensors")
        mofile.write(hfile, *files["det"])
    cfile = os.path.join(a.work, "combined.mo.safetensors")
    mofile.write(cfile, *conv_det.build_files(model.state_dict(), model.config, model.variant,
                                              combined=True)["det"])

    # reference
    cap = sref.Capture(model)
    ref, raw_ref, n_cand = {}, {}, []
    t0 = time.time()
    for path in images:
        stem = os.path.splitext(os.path.basename(path))[0]
        img = sref.load_image(path)
        st = cap(img)
        lg, rg = st["logits"].numpy(), st["regression"].numpy()
        with open(os.path.join(a.work, stem + ".ref.f32"), "wb") as f:
            f.write(lg.astype(np.float32).tobytes())
            f.write(rg.astype(np.float32).tobytes())
        raw_ref[stem] = (lg, rg)
        p = torch.softmax(st["logits"], -1)[:, 1:]
        n_cand.append(int((p > np.float32(a.score)).sum()))
        d = st["detections"]
        ref[stem] = {"image": stem, "dets": [b + [s, l] for b, s, l in zip(
            d["boxes"].tolist(), d["scores"].tolist(), d["labels"].tolist())]}
        anchors_ref = st["anchors"].numpy()
    t_ref = time.time() - t0

    # C
    t0 = time.time()
    base = WRAPPER + [a.dump, "--backbone", bfile, "--head", hfile, "--out", a.work, "--score",
            repr(a.score)]
    c_all = {x["image"]: x for x in run(base + ["--raw"] + images)}
    t_c = time.time() - t0
    c_post = {x["image"]: x for x in run(base + ["--post-raw"] + images)}
    c_comb = run(WRAPPER + [a.dump, "--backbone", cfile, "--out", a.work, "--score", repr(a.score)]
                 + images[:3])

    failures = []
    anchors_c = np.fromfile(os.path.join(a.work, "anchors.f32"), dtype=np.float32).reshape(-1, 4)
    d_anchor = float(np.abs(anchors_c - anchors_ref).max()) if anchors_c.shape == \
        anchors_ref.shape else float("inf")
    if not d_anchor <= ANCHOR_TOL:
        failures.append("default boxes differ by %g (shapes %s / %s)"
                        % (d_anchor, anchors_c.shape, anchors_ref.shape))
    N, K = raw_ref[next(iter(raw_ref))][0].shape
    d_lg = d_rg = rel_lg = rel_rg = 0.0
    m_lg = m_rg = 0.0
    stats = {"end_to_end": [0.0, 0.0, 0], "post_only": [0.0, 0.0, 0]}
    counts = []
    for path in images:
        stem = os.path.splitext(os.path.basename(path))[0]
        raw = np.fromfile(os.path.join(a.work, stem + ".raw.f32"), dtype=np.float32)
        lg, rg = raw[:N * K].reshape(N, K), raw[N * K:].reshape(N, 4)
        rl, rr = raw_ref[stem]
        e_lg, e_rg = float(np.abs(lg - rl).max()), float(np.abs(rg - rr).max())
        d_lg, d_rg = max(d_lg, e_lg), max(d_rg, e_rg)
        m_lg, m_rg = max(m_lg, float(np.abs(rl).max())), max(m_rg, float(np.abs(rr).max()))
        rel_lg = max(rel_lg, e_lg / max(1.0, float(np.abs(rl).max())))
        rel_rg = max(rel_rg, e_rg / max(1.0, float(np.abs(rr).max())))
        if rel_lg > RAW_TOL or rel_rg > RAW_TOL:
            failures.append("%s: raw outputs differ: logits %.3g, codes %.3g" % (stem, e_lg, e_rg))
        counts.append(len(ref[stem]["dets"]))
        for name, c, bt, stol in (("end_to_end", c_all[stem], BOX_TOL, SCORE_TOL),
                                  ("post_only", c_post[stem], POST_BOX_TOL, POST_SCORE_TOL)):
            prob, db, ds, nre = compare_dets(c, ref[stem], bt, stol)
            stats[name] = [max(stats[name][0], db), max(stats[name][1], ds),
                           stats[name][2] + nre]
            if prob:
                failures.append("%s (%s): %s" % (stem, name, prob))
    for x in c_comb:
        if x["dets"] != c_all[x["image"]]["dets"]:
            failures.append("%s: the combined file gives other detections" % x["image"])

    report = {
        "images": len(images), "score_thresh": a.score,
        "head": a.head or "random, seed %d" % SEED,
        "candidates_per_image": {"min": min(n_cand), "median": sorted(n_cand)[len(n_cand) // 2],
                                 "max": max(n_cand)},
        "detections_per_image": {"min": min(counts), "max": max(counts),
                                 "total": sum(counts)},
        "max_abs_diff": {"logits": d_lg, "regression": d_rg, "anchors_px": d_anchor,
                         "boxes_px": stats["end_to_end"][0], "scores": stats["end_to_end"][1],
                         "post_only_boxes_px": stats["post_only"][0],
                         "post_only_scores": stats["post_only"][1]},
        "near_tie_reorders": {"end_to_end": stats["end_to_end"][2],
                              "post_only": stats["post_only"][2]},
        "max_abs_ref": {"logits": m_lg, "regression": m_rg},
        "raw_rel_diff": {"logits": rel_lg, "regression": rel_rg, "tolerance": RAW_TOL},
        "seconds": {"reference": round(t_ref, 1), "c": round(t_c, 1),
                    "total": round(time.time() - t_start, 1)},
    }
    print(json.dumps(report, indent=1))
    if a.report:
        with open(a.report, "w") as f:
            json.dump(report, f, indent=1)
    for f in failures[:30]:
        print("FAIL", f)
    if len(failures) > 30:
        print("... %d failures in all" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
