#!/usr/bin/python3
"""tools/train_head.py end to end on a tiny user dataset made from coco128 (issue 12).

det: two coco128 classes (person, car) from its YOLO labels become a COCO instances file
     with ids of our own (car 4, person 17: not COCO's 3 and 1, and in another order than
     the YOLO indices) in the work folder; train_head.py det trains a few steps, starting
     from the shipped weights/ssdlite_s0.mo.safetensors (its default --init), at input 160,
     and writes the head; then it checks
       - the file: det.classes ["__background__", "car", "person"], det.category_ids
         [4, 17], mo.source holding the command, the seed, the dataset JSON's sha256 and
         the init record (the rows of background, car and person copied);
       - mo-detect opens it with the backbone and prints / writes only the dataset's class
         names and category ids;
       - mo-eval coco --gt (the training split) --model --head --images scores it, and the
         PyTorch reference (tools/ssdlite_ref.from_files on the same file, its labels
         mapped through det.category_ids) scored by mo-eval --results gives the same AP /
         AP50 within shipped_ap.AP_TOL; the C AP50 is above MIN_AP50 (the head learnt the
         boxes of its own training images; a wrong id mapping scores 0);
       - tests/detect/coco_parity.py --head FILE: C raw outputs, default boxes and
         detections equal the reference on coco-mini val images (its tolerances).
seg: the same two classes from coco128's semantic masks (panoptic ids 1 person, 3 car;
     other classes background, unlabeled 255) as label PNGs + a class file; train_head.py
     seg (ASPP width 32, --init none: the shipped head's width is 128), then seg.classes,
     mo-segment --json naming only those classes, mo-eval seg on the held-out list, and
     tests/segment/seg_parity.py --head FILE (output stride 16).
Exit 77 (meson's skip) with the reason when ../shared's coco128 / checkpoint or torch is
absent; 1 on any failure.

  train_head_test.py --detect mo-detect --segment mo-segment --eval mo-eval \\
      --det-dump det_dump --seg-dump seg_dump --shared ../shared --work DIR
"""
import argparse
import json
import os
import shlex
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.normpath(os.path.join(HERE, "..", ".."))
TOOLS = os.path.join(REPO, "tools")
PY = sys.executable
WRAPPER = shlex.split(os.environ.get("MESON_EXE_WRAPPER", ""))
# the two classes: coco128 YOLO index -> (our category id, name); panoptic id -> seg class
DET_CLASSES = {2: 4, 0: 17}
SEG_CLASSES = {1: 1, 3: 2}          # panoptic person -> 1, car -> 2; 0 (unlabeled) -> 255
MIN_AP50 = 0.05


def run(cmd, what, ok=(0,)):
    t0 = time.time()
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if p.returncode not in ok:
        print(p.stdout[-3000:])
        print(p.stderr[-3000:])
        raise SystemExit("FAIL: %s exited with %d" % (what, p.returncode))
    print("  %s: %.1f s" % (what, time.time() - t0), flush=True)
    return p


def yolo_names(path):
    names = {}
    with open(path) as f:
        inside = False
        for line in f:
            if line.startswith("names:"):
                inside = True
            elif inside and line.startswith("  ") and ":" in line:
                k, v = line.split(":", 1)
                names[int(k)] = v.strip().strip("'\"")
            elif inside and line.strip():
                inside = False
    return names


def make_coco(c128, out, limit):
    """The COCO instances file of the images with a box of DET_CLASSES (first `limit`)."""
    from PIL import Image
    names = yolo_names(os.path.join(c128, "object_detection", "config.yaml"))
    lab_dir = os.path.join(c128, "object_detection", "labels", "train2017")
    img_dir = os.path.join(c128, "images", "train2017")
    images, anns = [], []
    for n in sorted(os.listdir(lab_dir)):
        with open(os.path.join(lab_dir, n)) as f:
            rows = [r.split() for r in f if r.strip()]
        rows = [r for r in rows if int(r[0]) in DET_CLASSES]
        if not rows or len(images) == limit:
            continue
        file_name = n[:-4] + ".jpg"
        if not os.path.exists(os.path.join(img_dir, file_name)):
            continue  # coco128 has a few labels without their image
        with Image.open(os.path.join(img_dir, file_name)) as im:
            w, h = im.size
        iid = len(images) + 1
        images.append({"id": iid, "file_name": file_name, "width": w, "height": h})
        for r in rows:
            cx, cy, bw, bh = (float(v) for v in r[1:5])
            box = [(cx - bw / 2) * w, (cy - bh / 2) * h, bw * w, bh * h]
            anns.append({"id": len(anns) + 1, "image_id": iid, "bbox": box, "iscrowd": 0,
                         "area": box[2] * box[3], "category_id": DET_CLASSES[int(r[0])]})
    cats = [{"id": cid, "name": names[k]} for k, cid in DET_CLASSES.items()]
    with open(out, "w") as f:
        json.dump({"images": images, "annotations": anns, "categories": cats}, f)
    return img_dir, {cid: names[k] for k, cid in DET_CLASSES.items()}


def make_seg(c128, work, limit):
    """Label PNGs (background 0, person 1, car 2, unlabeled 255) of the first `limit`
    masks that show a person or a car, and the class file."""
    import numpy as np
    from PIL import Image
    mdir = os.path.join(c128, "semantic_segmentation", "masks", "train2017")
    ldir = os.path.join(work, "seg-labels")
    os.makedirs(ldir, exist_ok=True)
    n = 0
    for name in sorted(os.listdir(mdir)):
        with Image.open(os.path.join(mdir, name)) as im:
            m = np.array(im)
        if not np.isin(m, list(SEG_CLASSES)).any():
            continue
        lab = np.zeros(m.shape, np.uint8)
        lab[m == 0] = 255
        for src, dst in SEG_CLASSES.items():
            lab[m == src] = dst
        Image.fromarray(lab).save(os.path.join(ldir, name))
        n += 1
        if n == limit:
            break
    classes = os.path.join(work, "seg-classes.txt")
    with open(classes, "w") as f:
        f.write("background\nperson\ncar\n")
    return os.path.join(c128, "images", "train2017"), ldir, classes


def test_det(a, bfile, ckpt, c128, fails):
    sys.path.insert(0, os.path.join(REPO, "tests", "detect"))
    sys.path.insert(0, TOOLS)
    import mofile
    import shipped_ap
    import ssdlite_ref as sref
    import torch
    w = a.work
    ann = os.path.join(w, "det.json")
    img_dir, id_names = make_coco(c128, ann, a.det_images)
    head = os.path.join(w, "det.mo.safetensors")
    train_json, val_json = os.path.join(w, "det-train.json"), os.path.join(w, "det-val.json")
    run([PY, os.path.join(TOOLS, "train_head.py"), "det", "--coco", ann, "--images", img_dir,
         "--backbone", bfile, "--out", head, "--steps", str(a.det_steps), "--batch", "8",
         "--views", "1", "--input-size", "160", "--val-fraction", "0.2", "--train-json", train_json,
         "--val-json", val_json, "--warmup", "10", "--lr", "0.004", "--log-every", "20",
         "--seed", "0", "--threads", "1"], "train_head.py det")

    # the file
    _, meta = mofile.read(head)
    classes = json.loads(meta["det.classes"])
    ids = json.loads(meta["det.category_ids"])
    src = json.loads(meta["mo.source"])
    exp_classes = ["__background__"] + [id_names[i] for i in sorted(id_names)]
    if classes != exp_classes or ids != sorted(id_names):
        fails.append("det file: classes %s ids %s, expected %s %s"
                     % (classes, ids, exp_classes, sorted(id_names)))
    if src.get("seed") != 0 or "train_head.py det" not in src.get("command", "") or \
            src.get("dataset", {}).get("json_sha256") != mofile_sha(ann):
        fails.append("det file: mo.source lacks the command, seed or dataset digest: %s"
                     % meta["mo.source"][:300])
    # started from the shipped COCO head (train_head.py's default --init): the rows of the
    # classes both files name (car, person, background) were copied
    init = src.get("init") or {}
    if init.get("file") != "ssdlite_s0.mo.safetensors" or \
            init.get("classes_copied") != ["__background__", "car", "person"]:
        fails.append("det file: mo.source init record %s, expected the shipped head with the "
                     "classes __background__, car, person" % init)
    print("  det file: classes %s, category ids %s, init %s (%s)"
          % (classes, ids, init.get("file"), init.get("classes_copied")))

    # mo-detect names the dataset's classes and writes its ids
    with open(val_json) as f:
        val = json.load(f)
    val_imgs = [os.path.join(img_dir, im["file_name"]) for im in val["images"][:3]]
    res = os.path.join(w, "det-results.json")
    p = run(WRAPPER + [a.detect, "--model", bfile, "--head", head, "--no-images",
                       "--score", "0.01", "--draw-score", "0", "--json", res,
                       "--annotations", val_json] + val_imgs, "mo-detect")
    shown = [ln.split()[0] for ln in p.stdout.splitlines() if ln.startswith("  ")]
    with open(res) as f:
        cats = {r["category_id"] for r in json.load(f)}
    if not shown or set(shown) - set(classes[1:]) or not cats or cats - set(ids):
        fails.append("mo-detect printed classes %s and category ids %s (expected within %s, %s)"
                     % (sorted(set(shown)), sorted(cats), classes[1:], ids))
    print("  mo-detect: printed classes %s, category ids %s" % (sorted(set(shown)),
                                                                sorted(cats)))

    # mo-eval coco on the training split: C against the reference
    with open(train_json) as f:
        train = json.load(f)
    c = shipped_ap.mo_eval([a.eval, "coco", "--gt", train_json, "--model", bfile,
                            "--head", head, "--images", img_dir], os.path.join(w, "c-ap.json"))
    torch.set_num_threads(1)
    model = sref.from_files(ckpt, head)
    results = []
    for im in train["images"]:
        with torch.no_grad():
            d = model([sref.load_image(os.path.join(img_dir, im["file_name"]))])[0]
        for (x1, y1, x2, y2), s, lab in zip(d["boxes"].tolist(), d["scores"].tolist(),
                                            d["labels"].tolist()):
            results.append({"image_id": im["id"], "category_id": ids[lab - 1],
                            "bbox": [x1, y1, x2 - x1, y2 - y1], "score": s})
    rpath = os.path.join(w, "ref-results.json")
    with open(rpath, "w") as f:
        json.dump(results, f)
    r = shipped_ap.mo_eval([a.eval, "coco", "--gt", train_json, "--results", rpath],
                           os.path.join(w, "ref-ap.json"))
    print("  mo-eval coco (training split, %d images): C AP %.4f AP50 %.4f, reference AP %.4f "
          "AP50 %.4f" % (len(train["images"]), c["AP"], c["AP50"], r["AP"], r["AP50"]))
    for k in ("AP", "AP50"):
        if abs(c[k] - r[k]) > shipped_ap.AP_TOL:
            fails.append("mo-eval coco %s: C %.4f vs reference %.4f (tolerance %g)"
                         % (k, c[k], r[k], shipped_ap.AP_TOL))
    if not c["AP50"] > MIN_AP50:
        fails.append("mo-eval coco AP50 %.4f on the training images is not above %g"
                     % (c["AP50"], MIN_AP50))

    # C outputs equal the reference on this file (coco_parity.py's comparison)
    p = run([PY, os.path.join(REPO, "tests", "detect", "coco_parity.py"), "--dump", a.det_dump,
             "--shared", a.shared, "--head", head, "--score", "0.01", "--images",
             str(a.parity_images), "--work", os.path.join(w, "det-parity")],
            "coco_parity.py --head", ok=(0, 1))
    if p.returncode:
        fails.append("coco_parity.py on the trained head: %s"
                     % [ln for ln in p.stdout.splitlines() if ln.startswith("FAIL")][:5])
    else:
        rep = json.loads(p.stdout[:p.stdout.rindex("}") + 1])
        print("  coco_parity: %d images, %d detections, max diff logits %.2g, boxes %.2g px, "
              "scores %.2g" % (rep["images"], rep["detections_per_image"]["total"],
                               rep["max_abs_diff"]["logits"], rep["max_abs_diff"]["boxes_px"],
                               rep["max_abs_diff"]["scores"]))


def mofile_sha(path):
    import hashlib
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def test_seg(a, bfile, c128, fails):
    sys.path.insert(0, TOOLS)
    import mofile
    w = a.work
    img_dir, ldir, cfile = make_seg(c128, w, a.seg_images)
    head = os.path.join(w, "seg.mo.safetensors")
    vlist = os.path.join(w, "seg-val.txt")
    run([PY, os.path.join(TOOLS, "train_head.py"), "seg", "--images", img_dir, "--labels", ldir,
         "--classes", cfile, "--backbone", bfile, "--out", head, "--steps",
         str(a.seg_steps), "--batch", "4", "--views", "1", "--size", "160", "--loss-size", "40",
         "--width", "32", "--init", "none",
         "--val-fraction", "0.25", "--val-list", vlist, "--log-every", "10", "--seed", "0",
         "--threads", "1"], "train_head.py seg")
    _, meta = mofile.read(head)
    classes = json.loads(meta["seg.classes"])
    if classes != ["background", "person", "car"] or \
            "train_head.py seg" not in json.loads(meta["mo.source"]).get("command", ""):
        fails.append("seg file: classes %s, mo.source %s" % (classes, meta["mo.source"][:200]))
    print("  seg file: classes %s" % classes)
    with open(vlist) as f:
        stems = [s.strip() for s in f if s.strip()]
    pred = os.path.join(w, "seg-pred")
    p = run(WRAPPER + [a.segment, "--model", bfile, "--head", head, "--out", pred,
                       "--mask-suffix", "", "--no-overlay", "--json"]
            + [os.path.join(img_dir, s + ".jpg") for s in stems], "mo-segment")
    names = {c["name"] for r in json.loads(p.stdout) for c in r.get("classes", [])}
    if not names or names - set(classes):
        fails.append("mo-segment named classes %s, expected within %s" % (sorted(names), classes))
    print("  mo-segment: classes named %s" % sorted(names))
    p = run(WRAPPER + [a.eval, "seg", "--gt", ldir, "--pred", pred, "--list", vlist,
                       "--classes", "3"], "mo-eval seg")
    print("  " + " | ".join(ln.strip() for ln in p.stdout.splitlines() if "mIoU" in ln))
    report = os.path.join(w, "seg-parity.json")
    p = run([PY, os.path.join(REPO, "tests", "segment", "seg_parity.py"), "--dump", a.seg_dump,
             "--shared", a.shared, "--head", head, "--strides", "16", "--limit-coco", "1",
             "--limit-voc", "0", "--report", report, "--work", os.path.join(w, "seg-parity")],
            "seg_parity.py --head", ok=(0, 1))
    if p.returncode:
        fails.append("seg_parity.py on the trained head: %s" % p.stdout[-600:])
    else:
        with open(report) as f:
            st = json.load(f)["strides"]["16"]
        print("  seg_parity (output stride 16, 1 image): max abs logit diff %.2g, labels agree "
              "on %d of %d pixels" % (st["max_abs_logit_diff"], st["agree_pixels"],
                                      st["pixels"]))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    for k in ("detect", "segment", "eval", "det-dump", "seg-dump", "shared", "work"):
        ap.add_argument("--" + k, required=True)
    ap.add_argument("--det-images", type=int, default=40)
    ap.add_argument("--det-steps", type=int, default=40)
    ap.add_argument("--seg-images", type=int, default=16)
    ap.add_argument("--seg-steps", type=int, default=20)
    ap.add_argument("--parity-images", type=int, default=3)
    ap.add_argument("--only", choices=["det", "seg"])
    a = ap.parse_args()
    ckpt = os.path.join(a.shared, "models", "mobileone_s0.pth.tar")
    c128 = os.path.join(a.shared, "data", "coco128-train")
    for p in (ckpt, os.path.join(c128, "object_detection", "labels"),
              os.path.join(c128, "semantic_segmentation", "masks"),
              os.path.join(a.shared, "data", "coco-mini", "val2017")):
        if not os.path.exists(p):
            print("SKIP: %s absent (README: obtaining the shared data)" % p)
            return 77
    try:
        import numpy  # noqa: F401
        import PIL  # noqa: F401
        import torch  # noqa: F401
        import torchvision  # noqa: F401
    except ImportError as e:
        print("SKIP: %s (install python3-torch python3-torchvision python3-pil)" % e)
        return 77
    t0 = time.time()
    os.makedirs(a.work, exist_ok=True)
    sys.path.insert(0, TOOLS)
    import convert_mobileone
    bfile = os.path.join(a.work, "mobileone_s0.mo.safetensors")
    if convert_mobileone._main([ckpt, bfile]):
        raise SystemExit("FAIL: convert_mobileone.py")
    fails = []
    if a.only != "seg":
        print("det:")
        test_det(a, bfile, ckpt, c128, fails)
    if a.only != "det":
        print("seg:")
        test_seg(a, bfile, c128, fails)
    print("%.1f s" % (time.time() - t0))
    for f in fails:
        print("FAIL", f)
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
