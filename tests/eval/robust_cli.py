#!/usr/bin/env python3
"""mo-eval on hostile and tricky inputs (issue 15), with synthetic data only (stdlib Python):

* a FIFO and /dev/zero given as each eval input (COCO ground truth and results, VOC image
  set, annotation and detection file, seg list, top1 list and predictions, merge states):
  refused within the timeout with "not a regular file";
* COCO ground truth with 100k categories: refused naming max_categories;
* seg states: the same shard twice and a missing shard refused, the two shards merged equal
  the single run, a state of format version 1 refused naming the version;
* top1 --pred: a/x.jpg and b/x.jpg are two images (top-1 1.0), two predictions for one image
  refused, 20k images matched exactly (correctness; the time is only bounded by the timeout).
"""
import argparse
import json
import os
import shlex
import shutil
import struct
import subprocess
import sys
import zlib

TIMEOUT = 20  # seconds per run: a blocking open or an endless read fails the test


# meson sets MESON_EXE_WRAPPER (e.g. qemu-aarch64) when mo-eval is cross-built
WRAPPER = shlex.split(os.environ.get("MESON_EXE_WRAPPER", ""))


def run(cmd, **kw):
    try:
        return subprocess.run(WRAPPER + cmd, capture_output=True, text=True, timeout=TIMEOUT, **kw)
    except subprocess.TimeoutExpired:
        return None


def png_gray(path, rows):
    """An 8-bit grayscale PNG (label map) of the list of rows of ints."""
    h, w = len(rows), len(rows[0])
    raw = b"".join(b"\0" + bytes(r) for r in rows)

    def chunk(tag, data):
        return (struct.pack(">I", len(data)) + tag + data +
                struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF))
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


class Check:
    def __init__(self):
        self.failed = []

    def refused(self, what, cmd, needle):
        p = run(cmd)
        if p is None:
            self.failed.append("%s: still running after %d s" % (what, TIMEOUT))
        elif p.returncode == 0 or needle not in p.stderr:
            self.failed.append("%s: exit %d, %r (wanted %r)" % (what, p.returncode,
                                                                 p.stderr.strip(), needle))
        else:
            print("ok  %-44s %s" % (what, p.stderr.strip().splitlines()[-1][:110]))

    def ok(self, what, cmd):
        p = run(cmd)
        if p is None or p.returncode:
            self.failed.append("%s: %s" % (what, "timeout" if p is None else p.stderr.strip()))
            return None
        return p


def special_inputs(mo, w, c):
    """Every eval input as a FIFO and as /dev/zero (directly or through a symlink)."""
    gt = os.path.join(w, "gt.json")
    with open(gt, "w") as f:
        json.dump({"images": [{"id": 1, "file_name": "a.jpg"}], "categories": [{"id": 1}],
                   "annotations": []}, f)
    lst = os.path.join(w, "list.txt")
    with open(lst, "w") as f:
        f.write("a.jpg\t1\n")
    fifo = os.path.join(w, "fifo")
    os.mkfifo(fifo)
    for name, bad in (("FIFO", fifo), ("/dev/zero", "/dev/zero")):
        msg = "not a regular file"
        c.refused("coco --gt " + name, [mo, "coco", "--gt", bad, "--results", gt], msg)
        c.refused("coco --results " + name, [mo, "coco", "--gt", gt, "--results", bad], msg)
        c.refused("seg --list " + name, [mo, "seg", "--gt", w, "--pred", w, "--list", bad], msg)
        c.refused("top1 --list " + name, [mo, "top1", "--list", bad, "--pred", gt], msg)
        c.refused("top1 --pred " + name, [mo, "top1", "--list", lst, "--pred", bad], msg)
        c.refused("merge " + name, [mo, "merge", bad], msg)
        # VOC: the paths come from the devkit; each one in turn is the special file.
        for part in ("set", "xml", "det"):
            dk = os.path.join(w, "voc-%s-%s" % (part, "fifo" if bad == fifo else "zero"))
            for sub in ("ImageSets/Main", "Annotations", "results"):
                os.makedirs(os.path.join(dk, sub))
            st = os.path.join(dk, "ImageSets", "Main", "val.txt")
            xml = os.path.join(dk, "Annotations", "im1.xml")
            det = os.path.join(dk, "results", "det_cat.txt")
            target = {"set": st, "xml": xml, "det": det}[part]
            for p in (st, xml, det):
                if p == target:
                    os.symlink(bad, p)
                elif p == st:
                    open(p, "w").write("im1\n")
                elif p == xml:
                    open(p, "w").write("<annotation><object><name>cat</name><bndbox><xmin>1"
                                       "</xmin><ymin>1</ymin><xmax>9</xmax><ymax>9</ymax>"
                                       "</bndbox></object></annotation>")
                else:
                    open(p, "w").write("im1 0.9 1 1 9 9\n")
            c.refused("voc %s %s" % (part, name),
                      [mo, "voc", "--devkit", dk, "--set", "val", "--det",
                       os.path.join(dk, "results", "det_{}.txt")], msg)


def coco_categories(mo, w, c):
    gt = os.path.join(w, "cats100k.json")
    with open(gt, "w") as f:
        json.dump({"images": [{"id": 1}], "categories": [{"id": i} for i in range(1, 100001)],
                   "annotations": []}, f)
    c.refused("coco 100k categories", [mo, "coco", "--gt", gt, "--results", gt], "max_categories")


def seg_shards(mo, w, c):
    gtd, prd = os.path.join(w, "seg-gt"), os.path.join(w, "seg-pred")
    os.makedirs(gtd)
    os.makedirs(prd)
    for i in range(4):  # a different confusion per image: a lost or doubled shard shows
        png_gray(os.path.join(gtd, "im%d.png" % i), [[i % 3, 1, 2, 255]] * 3)
        png_gray(os.path.join(prd, "im%d.png" % i), [[1, 1, (i * 2) % 3, 0]] * 3)
    base = [mo, "seg", "--gt", gtd, "--pred", prd, "--classes", "3"]
    single = os.path.join(w, "seg-single.json")
    c.ok("seg single run", base + ["--json", single])
    st = [os.path.join(w, "seg%d.state" % s) for s in range(2)]
    for s in range(2):
        c.ok("seg shard %d/2" % s, base + ["--shard", "%d/2" % s, "--state", st[s]])
    merged = os.path.join(w, "seg-merged.json")
    if c.ok("seg merge of both shards", [mo, "merge", "--json", merged] + st):
        if json.load(open(merged)) != json.load(open(single)):
            c.failed.append("seg: merged shards differ from the single run")
    c.refused("seg merge of one shard twice", [mo, "merge", st[0], st[0]], "already counted")
    c.refused("seg merge without shard 1", [mo, "merge", st[0]], "a shard is missing")
    # Another list: the digest differs.
    lst = os.path.join(w, "seg-list.txt")
    open(lst, "w").write("im0\nim1\nim2\n")
    other = os.path.join(w, "seg-other.state")
    c.ok("seg shard of another list", base + ["--list", lst, "--shard", "1/2", "--state", other])
    c.refused("seg merge across lists", [mo, "merge", st[0], other], "another image list")
    # Format version 1 (before the image coverage): byte 7 of the magic, CRC-32 made valid.
    data = bytearray(open(st[0], "rb").read())
    data[7] = 1
    data[-4:] = struct.pack("<I", zlib.crc32(bytes(data[:-4])) & 0xFFFFFFFF)
    old = os.path.join(w, "seg-v1.state")
    open(old, "wb").write(bytes(data))
    c.refused("seg state of format version 1", [mo, "merge", old], "format version 1")


def top1(mo, w, c):
    root = os.path.join(w, "top1")
    os.makedirs(root)  # its real path resolves absolute and working-folder paths
    lst = os.path.join(w, "top1-list.txt")
    open(lst, "w").write("a/x.jpg\t1\nb/x.jpg\t2\n")
    pred = os.path.join(w, "top1-pred.json")
    json.dump([{"image": os.path.join(root, "a", "x.jpg"), "top": [{"class": 1}, {"class": 2}]},
               {"image": root + "//b/./x.jpg", "top": [{"class": 2}, {"class": 1}]}],
              open(pred, "w"))
    js = os.path.join(w, "top1.json")
    if c.ok("top1 a/x.jpg and b/x.jpg", [mo, "top1", "--list", lst, "--root", root, "--pred", pred,
                                         "--json", js]):
        got = json.load(open(js))
        if (got["images"], got["correct1"]) != (2, 2):
            c.failed.append("top1 a/x.jpg, b/x.jpg: %r, wanted 2 of 2" % got)
        else:
            print("ok  top1 a/x.jpg and b/x.jpg: top-1 %.1f" % got["top1"])
    # Relative to --root as written (mo-classify run inside the root).
    json.dump([{"image": "b/x.jpg", "top": [{"class": 2}]}, {"image": "a/x.jpg",
               "top": [{"class": 0}]}], open(pred, "w"))
    if c.ok("top1 paths relative to --root", [mo, "top1", "--list", lst, "--root", root, "--pred",
                                              pred, "--json", js]):
        got = json.load(open(js))
        if (got["images"], got["correct1"]) != (2, 1):
            c.failed.append("top1 relative paths: %r, wanted 1 of 2" % got)
    # Relative to the working folder, --root absolute.
    json.dump([{"image": "top1/b/x.jpg", "top": [{"class": 2}]}, {"image": "./top1/a//x.jpg",
               "top": [{"class": 1}]}], open(pred, "w"))
    p = run([mo, "top1", "--list", lst, "--root", os.path.abspath(root), "--pred", pred,
             "--json", js], cwd=w)
    if p is None or p.returncode or json.load(open(js))["correct1"] != 2:
        c.failed.append("top1 paths relative to the working folder: %s" %
                        ("timeout" if p is None else p.stderr.strip() or open(js).read()))
    else:
        print("ok  top1 paths relative to the working folder")
    json.dump([{"image": "a/x.jpg", "top": [{"class": 1}]}, {"image": "b/x.jpg",
               "top": [{"class": 2}]}, {"image": "./a/x.jpg", "top": [{"class": 3}]}],
              open(pred, "w"))
    c.refused("top1 two predictions for a/x.jpg", [mo, "top1", "--list", lst, "--pred", pred],
              "both predict a/x.jpg")
    json.dump([{"image": "c/x.jpg", "top": [{"class": 1}]}, {"image": "b/x.jpg",
               "top": [{"class": 2}]}], open(pred, "w"))
    c.refused("top1 no prediction for a/x.jpg", [mo, "top1", "--list", lst, "--pred", pred],
              "no prediction for a/x.jpg")
    # 20k images, predictions in another order; every third one wrong.
    n = 20000
    files = ["d%03d/img%05d.jpg" % (i % 97, i) for i in range(n)]
    with open(lst, "w") as f:
        for i, p in enumerate(files):
            f.write("%s\t%d\n" % (p, i % 1000))
    preds = [{"image": os.path.join(root, p), "top": [{"class": i % 1000 if i % 3 else 1000},
                                                      {"class": i % 1000}]}
             for i, p in enumerate(files)]
    json.dump(preds[::-1], open(pred, "w"))
    if c.ok("top1 20k images", [mo, "top1", "--list", lst, "--root", root, "--pred", pred,
                                "--json", js]):
        got = json.load(open(js))
        want = (n, sum(1 for i in range(n) if i % 3), n)
        if (got["images"], got["correct1"], got["correct5"]) != want:
            c.failed.append("top1 20k: %r, wanted %r" % (got, want))
        else:
            print("ok  top1 20k images: %d of %d top-1" % (got["correct1"], n))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mo-eval", required=True)
    ap.add_argument("--work", required=True)
    a = ap.parse_args()
    a.mo_eval = os.path.abspath(a.mo_eval)  # some runs change the working folder
    shutil.rmtree(a.work, ignore_errors=True)
    os.makedirs(a.work)
    c = Check()
    special_inputs(a.mo_eval, a.work, c)
    coco_categories(a.mo_eval, a.work, c)
    seg_shards(a.mo_eval, a.work, c)
    top1(a.mo_eval, a.work, c)
    if c.failed:
        print("FAILED:\n  " + "\n  ".join(c.failed))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
