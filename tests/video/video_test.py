#!/usr/bin/python3
"""mo-demo --video end to end, on a lossless clip made here.

clip_tool (tests/video/clip_tool.c, FFmpeg's libraries) encodes six coco-mini pictures,
resized to 320 x 240 and turned into I420 with NumPy (BT.601 limited range), as FFV1 in
Matroska at 30000/1001 frames/s with a silent audio track. With the real S0 backbone
(converted from ../shared/models/mobileone_s0.pth.tar as the golden tests do) and the
shipped heads (weights/ssdlite_s0, weights/deeplab_s0) it checks that
  - the output keeps the frame count, size, frame rate and every timestamp, and has no
    audio (FFV1 output, and the default codec in MP4);
  - the detections of frame k in --json equal `mo-detect --json` on the picture of frame
    k: its I420 samples turned into RGB with the documented formula (yuv_ref.py's NumPy
    twin of mo_frame_to_rgb()), saved as PNG. FFV1 is lossless, the pipeline converts
    the I420 frame with that formula and then preprocesses exactly as mo-detect (one
    resize of the RGB picture to the detection input), so the lists are the same: boxes
    within 1e-3 px, scores within 1e-5 (the JSON number formats);
  - --every 3 holds the results of frames 0, 3 between; a 4:4:4 clip (swscale path)
    runs;
  - a corrupt file, a damaged frame, a truncated file, an unknown codec, a zero-frame
    file, an unwritable output and an unknown encoder give exit status 1 and a message
    that names the problem (no crash).
Exits 77 (skip) with the reason without FFmpeg support (-Dvideo), NumPy/PIL/torch or
../shared.

  video_test.py --demo MO_DEMO --detect MO_DETECT --shared DIR --weights DIR --work DIR
                [--clip-tool CLIP_TOOL]
"""
import argparse
import glob
import json
import os
import random
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
TOOLS = os.path.join(HERE, "..", "..", "tools")
W, H, N = 320, 240, 6
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what)
    return cond


def run(args, expect=None):
    p = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if expect is not None and p.returncode != expect:
        check(False, "%s: exit %d, expected %d\n%s%s" % (" ".join(args), p.returncode, expect,
                                                        p.stdout[-2000:], p.stderr[-2000:]))
    return p


def probe(tool, path):
    p = run([tool, "probe", path], 0)
    return json.loads(p.stdout) if p.returncode == 0 else {"streams": [], "times": []}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    for k in ("--demo", "--detect", "--shared", "--weights", "--work"):
        ap.add_argument(k, required=True)
    ap.add_argument("--clip-tool")
    a = ap.parse_args()
    if not a.clip_tool:
        # without FFmpeg, mo-demo says so (usage error) instead of reading the file
        p = run([a.demo, "--model", "m", "--video", "in.mkv", "--out", "o.mkv"])
        if p.returncode != 2 or "without video support" not in p.stderr:
            print("FAIL: mo-demo without video support: exit %d, %s" % (p.returncode, p.stderr))
            return 1
        print("SKIP: built without FFmpeg (meson feature 'video': libavformat-dev "
              "libavcodec-dev libswscale-dev libavutil-dev)")
        return 77
    try:
        import numpy as np
        from PIL import Image
        import torch
    except ImportError as e:
        print("SKIP: %s (install python3-numpy python3-pil python3-torch)" % e)
        return 77
    ckpt = os.path.join(a.shared, "models", "mobileone_s0.pth.tar")
    pics = sorted(glob.glob(os.path.join(a.shared, "data", "coco-mini", "val2017", "*.jpg")))
    det_head = os.path.join(a.weights, "ssdlite_s0.mo.safetensors")
    seg_head = os.path.join(a.weights, "deeplab_s0.mo.safetensors")
    for p in (ckpt, det_head, seg_head):
        if not os.path.exists(p):
            print("SKIP: %s absent (README: the shared data; weights/: the trained heads)" % p)
            return 77
    if len(pics) < N:
        print("SKIP: fewer than %d coco-mini pictures in %s" % (N, a.shared))
        return 77
    sys.path.insert(0, TOOLS)
    sys.path.insert(0, os.path.join(HERE, "..", "pipeline"))
    import convert_mobileone as conv_mo
    import mofile
    import ssdlite_ref as sref
    import yuv_ref

    w = a.work
    shutil.rmtree(w, ignore_errors=True)
    os.makedirs(w)
    torch.set_num_threads(1)
    bfile = os.path.join(w, "s0.mo.safetensors")
    sd = sref.ref.load_checkpoint(ckpt)
    v, form = conv_mo.resolve_variant(sd)
    mofile.write(bfile, *conv_mo.build(sd, v, form, source="mobileone_s0.pth.tar"))
    tool = a.clip_tool
    demo = [a.demo, "--model", bfile, "--det", det_head, "--seg", seg_head]

    # --- the clip: I420 frames of six pictures, and each frame's RGB as PNG
    raw = os.path.join(w, "frames.yuv")
    refs = []
    with open(raw, "wb") as f:
        for k, path in enumerate(pics[:N]):
            x = np.asarray(Image.open(path).convert("RGB").resize((W, H), Image.BILINEAR),
                           np.float64)
            r, g, b = x[..., 0], x[..., 1], x[..., 2]
            y = 16 + 0.257 * r + 0.504 * g + 0.098 * b
            u = (128 - 0.148 * r - 0.291 * g + 0.439 * b).reshape(H // 2, 2, W // 2, 2).mean((1, 3))
            vv = (128 + 0.439 * r - 0.368 * g - 0.071 * b).reshape(H // 2, 2, W // 2, 2).mean((1, 3))
            y, u, vv = (np.clip(np.round(p), 0, 255).astype(np.uint8).ravel() for p in (y, u, vv))
            f.write(y.tobytes() + u.tobytes() + vv.tobytes())
            rgb = yuv_ref.i420_ref(y, np.concatenate([u, vv]), W, H)
            refs.append(os.path.join(w, "%d.png" % (k + 1)))  # mo-detect: image_id k + 1
            Image.fromarray(rgb).save(refs[-1])
    clip = os.path.join(w, "clip.mkv")
    run([tool, "write", clip, str(W), str(H), "30000", "1001", raw, "--audio"], 0)
    src = probe(tool, clip)
    check(len(src["times"]) == N and len(src["streams"]) == 2, "input clip: %s" % src)

    # --- lossless out: frames, size, rate, timestamps, no audio
    out = os.path.join(w, "out.mkv")
    js = os.path.join(w, "out.jsonl")
    p = run(demo + ["--video", clip, "--out", out, "--codec", "ffv1", "--json", js,
                    "--json-score", "0.001"], 0)
    print(p.stdout.strip())
    o = probe(tool, out)
    vs = [s for s in o["streams"] if s["type"] == "video"]
    check(len(o["streams"]) == 1 and len(vs) == 1, "output: one stream, video: %s" % o)
    if vs:
        check((vs[0]["codec"], vs[0]["width"], vs[0]["height"]) == ("ffv1", W, H),
              "output codec and size: %s" % vs[0])
        check(vs[0]["fps"] == src["streams"][0]["fps"], "frame rate kept: %s vs %s"
              % (vs[0]["fps"], src["streams"][0]["fps"]))
    check(len(o["times"]) == N and all(abs(s - t) < 1e-6 for s, t in zip(o["times"], src["times"])),
          "timestamps kept: %s vs %s" % (o["times"], src["times"]))

    # --- detections of each frame == mo-detect on the frame's picture
    with open(js) as f:
        lines = [json.loads(l) for l in f]
    dj = os.path.join(w, "detect.json")
    run([a.detect, "--model", bfile, "--head", det_head, "--json", dj, "--no-images",
         "--quiet"] + refs, 0)
    with open(dj) as f:
        ref = json.load(f)
    check(len(lines) == N, "%d JSON lines, expected %d" % (len(lines), N))
    confident = 0
    for k, l in enumerate(lines):
        check(l["frame"] == k and l["result_of"] == k, "frame index %s" % l["frame"])
        check(abs(l["time"] - src["times"][k]) < 1e-6, "frame %d time %s, clip %s"
              % (k, l["time"], src["times"][k]))
        want = [d for d in ref if d["image_id"] == k + 1]
        got = l["detections"]
        if not check(len(got) == len(want), "frame %d: %d detections, mo-detect %d"
                     % (k, len(got), len(want))):
            continue
        for g, e in zip(got, want):
            ok = (g["category_id"] == e["category_id"] and isinstance(g["name"], str) and
                  all(abs(x - y) <= 1e-3 for x, y in zip(g["bbox"], e["bbox"])) and
                  abs(g["score"] - e["score"]) <= 1e-5)
            if not check(ok, "frame %d: %s != mo-detect %s" % (k, g, e)):
                break
        confident += sum(d["score"] > 0.3 for d in got)
        shares = [c["share"] for c in l["mask_classes"]]
        check(all(0 < s <= 1 for s in shares) and sum(shares) <= 1 + 1e-6,
              "frame %d mask classes %s" % (k, l["mask_classes"]))
    check(confident > 0, "some detections above 0.3 on the coco pictures")
    check(any(l["mask_classes"] for l in lines), "some frame has mask classes")

    # --- --every 3: results of frames 0 and 3 held
    js3 = os.path.join(w, "every3.jsonl")
    run(demo + ["--video", clip, "--out", os.path.join(w, "every3.mkv"), "--codec", "ffv1",
                "--every", "3", "--json", js3, "--json-score", "0.001"], 0)
    with open(js3) as f:
        l3 = [json.loads(l) for l in f]
    check(len(l3) == N and len(probe(tool, os.path.join(w, "every3.mkv"))["times"]) == N,
          "--every 3 keeps every frame")
    for k, l in enumerate(l3):
        held = k - k % 3
        check(l["result_of"] == held and l["detections"] == lines[held]["detections"] and
              l["mask_classes"] == lines[held]["mask_classes"],
              "--every 3, frame %d: results of frame %d" % (k, held))

    # --- other pixel formats (swscale to I420) and the default codec in MP4
    clip444 = os.path.join(w, "clip444.mkv")
    run([tool, "write", clip444, str(W), str(H), "25", "1", raw, "--pix-fmt", "yuv444p"], 0)
    run(demo + ["--video", clip444, "--out", os.path.join(w, "out444.mkv"), "--codec", "ffv1"], 0)
    check(len(probe(tool, os.path.join(w, "out444.mkv"))["times"]) == N, "4:4:4 clip: frames")
    mp4 = os.path.join(w, "out.mp4")
    p = run(demo + ["--video", clip, "--out", mp4], 0)
    o = probe(tool, mp4)
    check(len(o["streams"]) == 1 and o["streams"][0]["codec"] in ("h264", "mpeg4"),
          "default codec in MP4: %s (%s)" % (o["streams"], p.stdout.strip()))
    check(len(o["times"]) == N and all(abs(s - t) < 1e-3 for s, t in zip(o["times"], src["times"])),
          "MP4 timestamps: %s vs %s" % (o["times"], src["times"]))

    # --- broken inputs and outputs: exit 1, the problem named, no crash
    data = open(clip, "rb").read()

    def bad(name, content, words, out_name="bad.mkv", extra=()):
        path = os.path.join(w, name)
        if content is not None:
            with open(path, "wb") as f:
                f.write(content)
        o = os.path.join(w, out_name) if not os.path.isabs(out_name) else out_name
        p = run(demo + ["--video", path, "--out", o] + list(extra))
        check(p.returncode == 1 and words in p.stderr,
              "%s: exit %d (expected 1), stderr %r should say %r"
              % (name, p.returncode, p.stderr.strip(), words))
        return p, o

    random.seed(7)
    bad("random.mkv", bytes(random.randrange(256) for _ in range(20000)), "cannot open video")
    damaged = bytearray(data)  # bytes in the middle of frame data: FFV1's slice CRC fails
    for i in range(len(data) // 2, len(data) // 2 + 1000):
        damaged[i] = random.randrange(256)
    bad("damaged.mkv", bytes(damaged), "corrupt video")
    bad("truncated.mkv", data[: len(data) * 7 // 10], "truncated video")
    i = data.find(b"FFV1")  # Matroska stores FFV1 as a VfW FOURCC: make it unknown
    check(i > 0, "FOURCC found in the clip")
    bad("unknown.mkv", data[:i] + b"ZZZ9" + data[i + 4:], "unknown codec")
    empty = os.path.join(w, "empty.yuv")
    open(empty, "wb").close()
    zero = os.path.join(w, "zero.mkv")
    run([tool, "write", zero, str(W), str(H), "25", "1", empty], 0)
    _, o = bad("zero.mkv", None, "without frames", "zero-out.mkv")
    check(not os.path.exists(o), "no output file for a video without frames")
    bad("clip.mkv", None, "cannot write output", "/nonexistent-dir/out.mkv")
    bad("clip.mkv", None, "unknown codec", "x.mkv", ["--codec", "no-such-codec"])
    run(demo + ["--video", clip], 2)  # no --out: usage

    print("FAILED: %d checks" % len(failures) if failures else "ok")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
