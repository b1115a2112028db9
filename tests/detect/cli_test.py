#!/usr/bin/python3
"""mo-detect end to end: inputs of every kind, pictures, COCO JSON, options, bad input.

Builds a random MobileOne-S0 backbone file and a random SSDLite head file for it
(tools/ssdlite_ref.py, convert_mobileone.py, convert_ssdlite.py: no ../shared needed),
writes test images with Pillow (64 px, 4000 px, grayscale, palette GIF, 1x1, a corrupt
file, a folder), and checks that
  - every readable image gives a picture (small ones enlarged to 256 px, others as is),
    a corrupt one is reported and the batch goes on (exit status 1),
  - --json writes COCO results (image_id from numeric names or --annotations,
    category_id, bbox [x, y, w, h] inside the image, score above --score), in the order
    of the detections, consistent with the text summary,
  - --no-images / --jpeg / --keep-size / folders behave as documented,
  - a head trained on another backbone, a missing model, bad options fail with status 2
    and a message that says why.
Exits 77 (meson's skip) when torch is absent.

  cli_test.py --detect build/apps/detect/mo-detect --work DIR
"""
import argparse
import json
import os
import shutil
import subprocess
import sys

TOOLS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools")
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what)


def run(args, expect=None):
    p = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if expect is not None and p.returncode != expect:
        failures.append("%s: exit %d, expected %d; stderr: %s"
                        % (" ".join(os.path.basename(a) for a in args[:6]), p.returncode, expect,
                           p.stderr.strip()[:500]))
        print("FAIL:", failures[-1])
    return p


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--detect", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--eval", help="mo-eval: also score mo-detect's JSON on coco-mini")
    ap.add_argument("--shared", help="shared data folder (for --eval)")
    ap.add_argument("--eval-images", type=int, default=0,
                    help="score only the first N coco-mini val2017 images (0: all 79; the "
                    "sanitizer build: 8)")
    a = ap.parse_args()
    try:
        import torch
        from PIL import Image
    except ImportError as e:
        print("SKIP: %s (install python3-torch python3-torchvision python3-pil)" % e)
        return 77
    sys.path.insert(0, TOOLS)
    import convert_mobileone as conv_mo
    import convert_ssdlite as conv_det
    import mobileone_ref as ref
    import mofile
    import ssdlite_ref as sref

    w = a.work
    shutil.rmtree(w, ignore_errors=True)
    os.makedirs(w)
    torch.set_num_threads(1)

    # models: S0 backbone + head for it; a head for an S1 backbone
    files = {}
    for variant, seed in (("s0", 11), ("s1", 12)):
        body = ref.random_model(variant, "fused", seed)
        sd = ref.clean_state_dict(body.state_dict())
        bfile = os.path.join(w, "%s.mo.safetensors" % variant)
        mofile.write(bfile, *conv_mo.build(sd, variant, "fused", source="cli_test"))
        det = sref.random_model(body, seed)
        st = det.state_dict()
        hfile = os.path.join(w, "%s_det.mo.safetensors" % variant)
        mofile.write(hfile, *conv_det.build_files(st, det.config, variant,
                                                  backbone_file=bfile)["det"])
        files[variant] = (bfile, hfile)
    bfile, hfile = files["s0"]

    # images
    src = os.path.join(w, "in")
    os.makedirs(os.path.join(src, "folder"))
    g = torch.Generator().manual_seed(5)

    def noise(wd, ht):
        x = (torch.rand(ht // 8 + 1, wd // 8 + 1, 3, generator=g) * 255).byte().numpy()
        return Image.fromarray(x).resize((wd, ht), Image.BILINEAR)

    noise(64, 43).save(os.path.join(src, "000000000064.png"))
    noise(4000, 2662).save(os.path.join(src, "big.jpg"), quality=85)
    noise(300, 200).convert("L").save(os.path.join(src, "gray.jpg"))
    noise(120, 90).convert("P").save(os.path.join(src, "pal.gif"))
    Image.new("RGB", (1, 1), (10, 200, 30)).save(os.path.join(src, "one.png"))
    with open(os.path.join(src, "broken.jpg"), "wb") as f:
        f.write(b"\xff\xd8\xff\xe0 not really a jpeg" * 3)
    noise(320, 240).save(os.path.join(src, "folder", "b.png"))
    noise(200, 320).save(os.path.join(src, "folder", "a.jpg"))
    with open(os.path.join(src, "folder", "notes.txt"), "w") as f:
        f.write("not an image\n")
    sizes = {"000000000064": (64, 43), "big": (4000, 2662), "gray": (300, 200),
             "pal": (120, 90), "one": (1, 1), "a": (200, 320), "b": (320, 240)}
    drawn = {"000000000064": (256, 172), "big": (4000, 2662), "gray": (300, 200),
             "pal": (360, 270), "one": (256, 256), "a": (200, 320), "b": (320, 240)}
    inputs = [os.path.join(src, n) for n in ("000000000064.png", "big.jpg", "gray.jpg",
                                             "pal.gif", "one.png", "broken.jpg")]
    inputs.append(os.path.join(src, "folder"))

    # the main run
    out = os.path.join(w, "pics")
    js = os.path.join(w, "dets.json")
    p = run([a.detect, "--model", bfile, "--head", hfile, "--out", out, "--score", "0.2",
             "--draw-score", "0.25", "--json", js] + inputs, expect=1)
    check("broken.jpg" in p.stderr, "the corrupt image is named on stderr")
    from PIL import Image as I
    for stem, size in drawn.items():
        path = os.path.join(out, stem + ".png")
        check(os.path.exists(path), "picture %s written" % path)
        if os.path.exists(path):
            with I.open(path) as im:
                check(im.size == size and im.mode == "RGB",
                      "%s is %s %s, expected %s RGB" % (path, im.size, im.mode, size))
    check(not os.path.exists(os.path.join(out, "broken.png")), "no picture for broken.jpg")
    check(not os.path.exists(os.path.join(out, "notes.png")), "text files are not inputs")
    lines = [l for l in p.stdout.splitlines() if not l.startswith(" ")]
    order = [os.path.basename(l.split(":")[0]) for l in lines]
    check(order == ["000000000064.png", "big.jpg", "gray.jpg", "pal.gif", "one.png", "a.jpg",
                    "b.png"], "summary order (folder sorted): %s" % order)
    with open(js) as f:
        res = json.load(f)
    check(isinstance(res, list) and len(res) > 0, "JSON is a non-empty list")
    ids = {}
    for r in res:
        check(set(r) == {"image_id", "category_id", "bbox", "score"}, "COCO result keys %s" % r)
        ids.setdefault(r["image_id"], []).append(r)
        check(r["score"] > 0.2 and 1 <= r["category_id"] <= 90, "score/category %s" % r)
    check(64 in ids, "image_id from the numeric name 000000000064 (ids: %s)" % sorted(ids)[:10])
    # other names get their position (1-based) among the inputs (broken.jpg is 6th)
    check(set(ids) <= {64, 2, 3, 4, 5, 7, 8}, "image ids %s" % sorted(ids))
    for iid, rs in ids.items():
        stem = {64: "000000000064", 2: "big", 3: "gray", 4: "pal", 5: "one", 7: "a",
                8: "b"}.get(iid)
        if not stem:
            continue
        wd, ht = sizes[stem]
        scores = [r["score"] for r in rs]
        check(scores == sorted(scores, reverse=True), "%s: scores in decreasing order" % stem)
        for r in rs:
            x, y, bw, bh = r["bbox"]
            check(-1e-3 <= x and -1e-3 <= y and bw >= 0 and bh >= 0 and
                  x + bw <= wd + 1e-2 and y + bh <= ht + 1e-2, "%s: bbox %s inside %dx%d"
                  % (stem, r["bbox"], wd, ht))
        n_text = [l for l in lines if os.path.basename(l.split(":")[0]).startswith(stem + ".")]
        if n_text:
            n = int(n_text[0].split(",")[1].split()[0])
            check(n == len(rs), "%s: summary says %d detections, JSON has %d" % (stem, n, len(rs)))

    # --annotations maps file names to ids
    ann = os.path.join(w, "ann.json")
    with open(ann, "w") as f:
        json.dump({"images": [{"id": 777, "file_name": "gray.jpg"}]}, f)
    p = run([a.detect, "--model", bfile, "--head", hfile, "--no-images", "--quiet", "--score",
             "0.2", "--annotations", ann, "--json", "-", os.path.join(src, "gray.jpg")],
            expect=0)
    res = json.loads(p.stdout)
    check(res and all(r["image_id"] == 777 for r in res), "--annotations gives id 777")
    # variants of NMS leave valid results; class-agnostic never more than class-wise
    counts = {}
    for opt in ([], ["--class-agnostic"], ["--soft-nms", "0.5"], ["--max-classes", "1"],
                ["--max-dets", "5"]):
        p = run([a.detect, "--model", bfile, "--head", hfile, "--no-images", "--quiet",
                 "--score", "0.2", "--json", "-"] + opt + [os.path.join(src, "gray.jpg")],
                expect=0)
        counts[" ".join(opt)] = len(json.loads(p.stdout))
    check(counts["--class-agnostic"] <= counts[""], "agnostic <= class-wise: %s" % counts)
    check(counts["--max-classes 1"] <= counts[""], "max-classes 1 <= all: %s" % counts)
    check(counts["--max-dets 5"] == min(5, counts[""]), "max-dets 5: %s" % counts)
    # --jpeg, --keep-size
    out2 = os.path.join(w, "pics2")
    run([a.detect, "--model", bfile, "--head", hfile, "--out", out2, "--jpeg", "--keep-size",
         "--quiet", os.path.join(src, "000000000064.png")], expect=0)
    path = os.path.join(out2, "000000000064.jpg")
    check(os.path.exists(path), "--jpeg writes .jpg")
    if os.path.exists(path):
        with I.open(path) as im:
            check(im.size == (64, 43), "--keep-size keeps 64x43, got %s" % (im.size,))
    # the same name twice gets a suffix
    run([a.detect, "--model", bfile, "--head", hfile, "--out", out2, "--quiet",
         os.path.join(src, "folder", "b.png"), os.path.join(src, "folder", "b.png")], expect=0)
    check(os.path.exists(os.path.join(out2, "b-2.png")), "second b.png written as b-2.png")

    # model errors: exit 2 with the reason
    p = run([a.detect, "--model", bfile, "--head", files["s1"][1], "--quiet",
             os.path.join(src, "gray.jpg")], expect=2)
    check("MobileOne-s1" in p.stderr, "head of another backbone named: %s" % p.stderr.strip())
    p = run([a.detect, "--model", bfile, "--quiet", os.path.join(src, "gray.jpg")], expect=2)
    check("no detection head" in p.stderr, "backbone-only file: %s" % p.stderr.strip())
    p = run([a.detect, "--model", os.path.join(w, "missing.mo.safetensors"), "--head", hfile,
             os.path.join(src, "gray.jpg")], expect=2)
    run([a.detect, "--model", bfile, "--head", hfile, "--score", "2", "x.jpg"], expect=2)
    run([a.detect, "--model", bfile, "--head", hfile], expect=2)
    run([a.detect, "--bogus"], expect=2)
    run([a.detect, "--help"], expect=0)
    # the JSON feeds the evaluation tool as it is (ids from the real COCO annotations)
    coco = os.path.join(a.shared or "", "data", "coco-mini")
    gt = os.path.join(coco, "annotations", "instances_val2017.json")
    if a.eval and os.path.exists(gt):
        val = os.path.join(coco, "val2017")
        if a.eval_images > 0:  # a ground truth and a folder of the first N images only
            with open(gt) as f:
                full = json.load(f)
            imgs = sorted(full["images"], key=lambda im: im["file_name"])[:a.eval_images]
            ids = {im["id"] for im in imgs}
            sub = dict(full, images=imgs,
                       annotations=[x for x in full["annotations"] if x["image_id"] in ids])
            gt = os.path.join(w, "instances_first%d.json" % a.eval_images)
            with open(gt, "w") as f:
                json.dump(sub, f)
            sval = os.path.join(w, "val_first%d" % a.eval_images)
            shutil.rmtree(sval, ignore_errors=True)
            os.makedirs(sval)
            for im in imgs:
                shutil.copyfile(os.path.join(val, im["file_name"]),
                                os.path.join(sval, im["file_name"]))
            val = sval
            print("scoring on the first %d of %d coco-mini val2017 images (sanitizer build; "
                  "the release build's mo-detect-cli scores all of them)"
                  % (len(imgs), len(full["images"])))
        res = os.path.join(w, "coco_results.json")
        run([a.detect, "--model", bfile, "--head", hfile, "--no-images", "--quiet",
             "--annotations", gt, "--json", res, val], expect=0)
        p = run([a.eval, "coco", "--gt", gt, "--results", res, "--no-progress"], expect=0)
        check("Average Precision" in p.stdout, "mo-eval read mo-detect's results: %s"
              % (p.stdout + p.stderr)[-300:])
        # mo-eval running the model itself gives the same 12 numbers
        q = run([a.eval, "coco", "--gt", gt, "--model", bfile, "--head", hfile, "--images", val,
                 "--no-progress"], expect=0)
        check(q.stdout == p.stdout, "mo-eval --model equals mo-detect --json + mo-eval: %s vs %s"
              % (q.stdout[-200:], p.stdout[-200:]))
    elif a.eval:
        print("note: %s absent, mo-eval step skipped" % gt)
    print("%d checks failed" % len(failures) if failures else "all mo-detect checks passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
