#!/usr/bin/python3
"""valgrind memcheck on every app over a few tiny images: 0 errors, 0 definite or indirect
leaks (issue 15). Runs mo-classify, mo-detect, mo-segment, mo-demo, mo-bench and every mo-eval
subcommand (coco on a results file and on a detection model, voc, seg, top1 with --model
and --pred, sharded coco + merge), each once, including a failing image (missing, corrupt)
so error paths are checked too.

Models: the random S0 backbone and heads of tests/apps/appmodels.py with the inputs shrunk
(classification crop 32, detection input 64 x 64) so the whole run stays short (about a
minute of CPU on an idle machine). valgrind's own error exit code is 99, apart from the
apps' 1 (some input failed) and 2 (usage or model error).

The runs are independent (each its own output; the sharded coco states before the merge):
--jobs of them at a time (default 2). CI (meson test, ./test.sh) runs memcheck without
--track-origins, which about doubles the time and only adds where an uninitialised value
came from; the full check, with origins (what to run when this test reports an error):

  /usr/bin/python3 tests/valgrind/apps_valgrind.py --apps build/apps \
      --work build/tests/valgrind/work --track-origins

  apps_valgrind.py --apps BUILD/apps --work DIR [--jobs N] [--track-origins]
Exits 77 (skip) without valgrind or torch.
"""
import concurrent.futures
import threading
import argparse
import json
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "apps"))

VALGRIND = ["valgrind", "-q", "--error-exitcode=99", "--leak-check=full",
            "--errors-for-leak-kinds=definite,indirect", "--show-leak-kinds=definite,indirect",
            "--num-callers=30"]
FAILS = []
RUNS = []  # futures of the runs started
POOL = None  # --jobs runs at a time
LOCK = threading.Lock()


def vrun_now(name, cmd, code):
    t0 = time.monotonic()
    p = subprocess.run(VALGRIND + cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True, timeout=600)
    dt = time.monotonic() - t0
    ok = p.returncode == code
    with LOCK:  # one run's lines together
        print("%s: %s (exit %d, expected %d, %.1f s)" % ("ok" if ok else "FAIL", name,
                                                         p.returncode, code, dt))
        if not ok:
            FAILS.append(name)
            print("  command: %s\n%s%s" % (" ".join(cmd), p.stdout[-2000:],
                                            p.stderr[-20000:]))
        sys.stdout.flush()
    return p.stdout


def vrun(name, cmd, code=0):
    """Starts one app under memcheck; returns its future (.result(): its stdout)."""
    f = POOL.submit(vrun_now, name, cmd, code)
    RUNS.append(f)
    return f


def voc_xml(objects, w, h):
    objs = "".join(
        "<object><name>%s</name><difficult>%d</difficult><bndbox><xmin>%d</xmin>"
        "<ymin>%d</ymin><xmax>%d</xmax><ymax>%d</ymax></bndbox></object>" % o for o in objects)
    return ("<annotation><size><width>%d</width><height>%d</height><depth>3</depth></size>%s"
            "</annotation>" % (w, h, objs))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--apps", required=True, help="the build's apps folder")
    ap.add_argument("--work", required=True)
    ap.add_argument("--jobs", type=int, default=2, help="runs at a time (default 2)")
    ap.add_argument("--track-origins", action="store_true",
                    help="memcheck --track-origins=yes (about twice the time; CI runs without)")
    a = ap.parse_args()
    if a.jobs < 1:
        ap.error("--jobs must be positive")
    global POOL
    if a.track_origins:
        VALGRIND.append("--track-origins=yes")
    POOL = concurrent.futures.ThreadPoolExecutor(a.jobs)
    print("valgrind %s, %d run(s) at a time%s" % (" ".join(VALGRIND[1:]), a.jobs,
          "" if a.track_origins else " (without --track-origins: the full check is "
          "tests/valgrind/apps_valgrind.py --track-origins, see its docstring)"))
    if not shutil.which("valgrind"):
        print("SKIP: valgrind not found (apt-get install valgrind)")
        return 77
    try:
        import numpy as np
        import torch  # noqa: F401  (the models are made with it)
        from PIL import Image
    except ImportError as e:
        print("SKIP: %s (install python3-torch python3-numpy python3-pil)" % e)
        return 77
    import appmodels
    w = a.work
    m = appmodels.make_small(w)
    for sub in os.listdir(w):
        if sub != "models":
            p = os.path.join(w, sub)
            shutil.rmtree(p) if os.path.isdir(p) else os.remove(p)
    app = lambda n: os.path.join(a.apps, n.split("-")[1], n)
    out = lambda n: os.path.join(w, "out-" + n)

    # tiny images: PNG, JPEG, progressive JPEG, grayscale; a corrupt one and a missing one
    imgs = os.path.join(w, "images")
    os.makedirs(imgs)
    rng = np.random.default_rng(7)
    sizes = {"a.png": (40, 30), "b.jpg": (36, 28), "c.jpg": (24, 32)}
    for n, (iw, ih) in sizes.items():
        x = Image.fromarray(rng.integers(0, 256, (ih, iw, 3), dtype=np.uint8))
        x.save(os.path.join(imgs, n), **({"progressive": True} if n == "c.jpg" else {}))
    Image.fromarray(rng.integers(0, 256, (20, 30), dtype=np.uint8)).save(
        os.path.join(imgs, "d.png"))
    sizes["d.png"] = (30, 20)
    bad = os.path.join(w, "bad.jpg")
    with open(os.path.join(imgs, "a.png"), "rb") as f:
        data = f.read()
    with open(bad, "wb") as f:
        f.write(data[: len(data) // 2])
    missing = os.path.join(w, "missing.png")
    one = os.path.join(imgs, "a.png")

    vrun("mo-classify", [app("mo-classify"), "--model", m["backbone"], "--json", one,
                         os.path.join(imgs, "b.jpg"), bad], 1)
    vrun("mo-detect", [app("mo-detect"), "--model", m["backbone"], "--head", m["det"],
                       "--out", out("det"), "--json", os.path.join(w, "det.json"), imgs,
                       missing], 1)
    vrun("mo-segment", [app("mo-segment"), "--model", m["backbone"], "--head", m["seg"],
                        "--out", out("seg"), "--raw", "--json", imgs, bad], 1)
    # mo-demo-images: mo-demo built without FFmpeg when the video feature is on (valgrind 3.19
    # dies on an instruction in a constructor of a library FFmpeg pulls in; apps/demo)
    demo = app("mo-demo-images") if os.path.exists(app("mo-demo-images")) else app("mo-demo")
    vrun("mo-demo", [demo, "--model", m["backbone"], "--det", m["det"], "--seg",
                     m["seg"], "--out", out("demo"), one, os.path.join(imgs, "c.jpg"),
                     missing], 1)

    # mo-bench: every head with the profile on (stage 4 again at the segmentation stride),
    # JSON output; an image that cannot be read
    vrun("mo-bench", [app("mo-bench"), "--model", m["backbone"], "--cls", "--det", m["det"],
                      "--seg", m["seg"], "--runs", "2", "--warmup", "1", "--no-peak", "--json"])
    vrun("mo-bench --image bad", [app("mo-bench"), "--model", m["backbone"], "--cls",
                                  "--image", bad, "--runs", "1", "--no-peak"], 1)

    # mo-eval coco: a ground truth of the four images, results near it
    names = sorted(sizes)
    gt = {"images": [], "annotations": [], "categories": [
        {"id": 1, "name": "person", "supercategory": "person"},
        {"id": 3, "name": "car", "supercategory": "vehicle"}]}
    res = []
    for i, n in enumerate(names):
        iw, ih = sizes[n]
        gt["images"].append({"id": i + 1, "file_name": n, "width": iw, "height": ih})
        for k, cat in enumerate((1, 3)):
            box = [2.0 + 3 * k, 3.0 + k, iw / 2.0, ih / 3.0]
            gt["annotations"].append({"id": len(gt["annotations"]) + 1, "image_id": i + 1,
                                      "category_id": cat, "bbox": box,
                                      "area": box[2] * box[3], "iscrowd": 0})
            res.append({"image_id": i + 1, "category_id": cat, "score": 0.9 - 0.1 * k,
                        "bbox": [box[0] + 1, box[1], box[2], box[3] - 1]})
            res.append({"image_id": i + 1, "category_id": cat, "score": 0.3,
                        "bbox": [0.0, 0.0, 5.0, 5.0]})
    gt_path, res_path = os.path.join(w, "gt.json"), os.path.join(w, "res.json")
    with open(gt_path, "w") as f:
        json.dump(gt, f)
    with open(res_path, "w") as f:
        json.dump(res, f)
    ev = app("mo-eval")
    vrun("mo-eval coco", [ev, "coco", "--gt", gt_path, "--results", res_path,
                          "--per-category", "--json", os.path.join(w, "coco.json"),
                          "--plot", os.path.join(w, "coco.png")])
    vrun("mo-eval coco --model", [ev, "coco", "--gt", gt_path, "--model", m["backbone"],
                                  "--head", m["det"], "--images", imgs])
    states, shards = [], []
    for s in range(2):
        states.append(os.path.join(w, "coco%d.state" % s))
        shards.append(vrun("mo-eval coco --shard %d/2" % s,
                           [ev, "coco", "--gt", gt_path, "--results", res_path, "--shard",
                            "%d/2" % s, "--state", states[-1]]))
    # the merge reads the states: it waits for both shards (queued before it, so they have
    # a worker by the time it has one)
    merge = [ev, "merge"] + states + ["--per-category"]
    RUNS.append(POOL.submit(lambda: (concurrent.futures.wait(shards),
                                     vrun_now("mo-eval merge", merge, 0))))

    # mo-eval voc: a devkit of two images
    dev = os.path.join(w, "VOC2007")
    for sub in ("Annotations", "ImageSets/Main"):
        os.makedirs(os.path.join(dev, sub))
    objs = {"000001": [("person", 0, 3, 4, 30, 25), ("car", 0, 10, 2, 35, 20)],
            "000002": [("dog", 0, 1, 1, 20, 20), ("person", 1, 5, 5, 15, 18)]}
    for i, o in objs.items():
        with open(os.path.join(dev, "Annotations", i + ".xml"), "w") as f:
            f.write(voc_xml(o, 40, 30))
    with open(os.path.join(dev, "ImageSets", "Main", "test.txt"), "w") as f:
        f.write("000001\n000002\n")
    det_dir = os.path.join(w, "voc-det")
    os.makedirs(det_dir)
    for cls, lines in (("person", ["000001 0.9 3 4 29 25", "000002 0.5 5 5 15 18",
                                   "000002 0.4 20 20 30 28"]),
                       ("car", ["000001 0.8 11 2 35 21"]), ("dog", ["000002 0.7 1 2 20 19"])):
        with open(os.path.join(det_dir, "comp4_det_test_%s.txt" % cls), "w") as f:
            f.write("\n".join(lines) + "\n")
    vrun("mo-eval voc", [ev, "voc", "--devkit", dev, "--set", "test", "--det",
                         os.path.join(det_dir, "comp4_det_test_{}.txt"),
                         "--json", os.path.join(w, "voc.json"),
                         "--plot", os.path.join(w, "voc.png")])

    # mo-eval seg: ground truth and predictions as label PNGs (palette and grayscale)
    sg, sp = os.path.join(w, "seg-gt"), os.path.join(w, "seg-pred")
    os.makedirs(sg)
    os.makedirs(sp)
    for k in range(3):
        lab = rng.integers(0, 21, (12, 16), dtype=np.uint8)
        lab[0, :3] = 255  # ignored
        g = Image.fromarray(lab, "L").convert("P")
        g.putpalette(sum(([i, i, i] for i in range(256)), []))
        g.save(os.path.join(sg, "%d.png" % k))
        pred = lab.copy()
        pred[5:, 4:] = (pred[5:, 4:] + 1) % 21
        pred[0, :3] = 0
        Image.fromarray(pred, "L").save(os.path.join(sp, "%d.png" % k))
    vrun("mo-eval seg", [ev, "seg", "--gt", sg, "--pred", sp, "--classes", "21",
                         "--json", os.path.join(w, "seg.json")])

    # mo-eval top1: a list of the images, with the model and with a predictions file
    lst, pred = os.path.join(w, "labels.txt"), os.path.join(w, "pred.json")
    with open(lst, "w") as f:
        f.write("".join("%s %d\n" % (n, i) for i, n in enumerate(names)))
    with open(pred, "w") as f:  # mo-classify --json's layout
        json.dump([{"image": n, "top": [{"class": (i * 3 + k) % 8} for k in range(5)]}
                   for i, n in enumerate(names)], f)
    vrun("mo-eval top1 --model", [ev, "top1", "--list", lst, "--root", imgs, "--model",
                                  m["backbone"], "--json", os.path.join(w, "top1.json")])
    vrun("mo-eval top1 --pred", [ev, "top1", "--list", lst, "--pred", pred])

    for f in RUNS:
        f.result()  # re-raises what a run raised (e.g. its timeout)
    POOL.shutdown()
    if FAILS:
        print("%d run(s) failed under valgrind: %s" % (len(FAILS), ", ".join(FAILS)))
        return 1
    print("all runs clean under valgrind")
    return 0


if __name__ == "__main__":
    sys.exit(main())
