#!/usr/bin/python3
"""The shipped detection head's COCO AP: C equals the PyTorch reference, and the card holds.

weights/ssdlite_s0.md quotes box AP / AP50 on the held-out coco-mini val2017 (79 images,
never trained on), measured C side by `mo-eval coco --model --head --images` (torchvision's
evaluation settings: score > 0.001, NMS 0.55, 300 detections per image). This test
  1. runs exactly that command on the shipped head,
  2. runs the PyTorch reference (tools/ssdlite_ref.py: torchvision SSD on the same head file)
     on the same images, writes its detections as a COCO results file and scores it with
     `mo-eval coco --results` (mo-eval equals pycocotools: tests/eval),
and fails when the two AP / AP50 differ by more than AP_TOL (float32 C vs torch changes a
few near-threshold detections, not the AP) or when the C numbers differ from those in
weights/ssdlite_s0.metrics.json (what the card quotes) by more than CARD_TOL.
Exits 77 (meson's skip) with a message when ../shared, torch or the head file is absent.

  shipped_ap.py --eval build/apps/eval/mo-eval --shared ../shared --work DIR \\
      --head weights/ssdlite_s0.mo.safetensors --expect weights/ssdlite_s0.metrics.json
"""
import argparse
import json
import os
import subprocess
import sys
import time

TOOLS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools")
AP_TOL = 2e-3
CARD_TOL = 5e-4  # the card rounds to 4 decimals


def mo_eval(cmd, out_json):
    p = subprocess.run(cmd + ["--json", out_json], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True)
    if p.returncode:
        sys.exit("FAIL: %s exited with %d: %s" % (" ".join(cmd[:2]), p.returncode, p.stderr))
    with open(out_json) as f:
        r = json.load(f)
    return dict(zip(r["names"], r["stats"]))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--eval", required=True, help="mo-eval")
    ap.add_argument("--shared", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--head", required=True)
    ap.add_argument("--expect", required=True, help="the card's numbers (JSON)")
    a = ap.parse_args()
    ckpt = os.path.join(a.shared, "models", "mobileone_s0.pth.tar")
    coco = os.path.join(a.shared, "data", "coco-mini")
    gt = os.path.join(coco, "annotations", "instances_val2017.json")
    for p in (ckpt, gt, a.head, a.expect):
        if not os.path.exists(p):
            print("SKIP: %s absent (README: the shared data; weights/: the trained heads)" % p)
            return 77
    try:
        import torch
    except ImportError as e:
        print("SKIP: %s (install python3-torch python3-torchvision)" % e)
        return 77
    sys.path.insert(0, TOOLS)
    import convert_mobileone as conv_mo
    import mofile
    import ssdlite_ref as sref

    torch.set_num_threads(1)  # see coco_parity.py: OpenMP threads spin on a busy machine
    os.makedirs(a.work, exist_ok=True)
    with open(a.expect) as f:
        expect = json.load(f)["coco-mini val2017"]
    sd = sref.ref.load_checkpoint(ckpt)
    v, form = conv_mo.resolve_variant(sd)
    bfile = os.path.join(a.work, "s0.mo.safetensors")
    mofile.write(bfile, *conv_mo.build(sd, v, form, source="mobileone_s0.pth.tar"))

    t0 = time.time()
    c = mo_eval([a.eval, "coco", "--gt", gt, "--model", bfile, "--head", a.head,
                 "--images", os.path.join(coco, "val2017")], os.path.join(a.work, "c.json"))
    t_c = time.time() - t0

    t0 = time.time()
    model = sref.from_files(ckpt, a.head)  # torchvision's eval post-processing defaults
    with open(gt) as f:
        images = json.load(f)["images"]
    results = []
    for im in images:
        with torch.no_grad():
            d = model([sref.load_image(os.path.join(coco, "val2017", im["file_name"]))])[0]
        for (x1, y1, x2, y2), s, lab in zip(d["boxes"].tolist(), d["scores"].tolist(),
                                            d["labels"].tolist()):
            results.append({"image_id": im["id"], "category_id": lab,
                            "bbox": [x1, y1, x2 - x1, y2 - y1], "score": s})
    res_path = os.path.join(a.work, "reference_results.json")
    with open(res_path, "w") as f:
        json.dump(results, f)
    r = mo_eval([a.eval, "coco", "--gt", gt, "--results", res_path],
                os.path.join(a.work, "reference.json"))
    t_ref = time.time() - t0

    report = {"images": len(images), "reference_detections": len(results),
              "c": {k: c[k] for k in ("AP", "AP50", "AP75")},
              "reference": {k: r[k] for k in ("AP", "AP50", "AP75")},
              "card": {k: expect[k] for k in ("AP", "AP50")},
              "seconds": {"c": round(t_c, 1), "reference": round(t_ref, 1)}}
    print(json.dumps(report, indent=1))
    fails = []
    for k in ("AP", "AP50"):
        if abs(c[k] - r[k]) > AP_TOL:
            fails.append("%s: C %.4f vs reference %.4f (tolerance %g)" % (k, c[k], r[k], AP_TOL))
        if abs(c[k] - expect[k]) > CARD_TOL:
            fails.append("%s: C %.4f but %s says %.4f (tolerance %g): update the card"
                         % (k, c[k], a.expect, expect[k], CARD_TOL))
    for f in fails:
        print("FAIL", f)
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
