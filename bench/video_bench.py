#!/usr/bin/python3
"""Frames/s of mo-demo --video, the whole loop (decode + pipeline + draw + encode), on a
1280x720 clip made from coco-mini pictures (H.264 in Matroska, 25 frames/s, written by
tests/video/clip_tool; --clip-codec ffv1 for lossless), with 1 and 2 threads (--threads:
backbone passes and codecs). Prints wall-clock frames/s, mo-demo's time per stage and
the CPU time per frame (user + system, which a busy machine inflates less).

  /usr/bin/python3 bench/video_bench.py --build build --model s0.mo.safetensors \
      [--frames 50] [--threads 1 2] [--out-ext mp4]
Heads: weights/ssdlite_s0.mo.safetensors and weights/deeplab_s0.mo.safetensors."""
import argparse
import glob
import os
import re
import resource
import subprocess
import sys
import tempfile

import numpy as np
from PIL import Image

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--model", required=True)
    ap.add_argument("--shared", default=os.path.join(ROOT, "..", "shared"))
    ap.add_argument("--frames", type=int, default=50)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--out-ext", default="mp4", help="output container (default codec: H.264)")
    ap.add_argument("--clip-codec", default="libx264")
    a = ap.parse_args()
    tool = os.path.join(a.build, "tests", "video", "clip_tool")
    demo = os.path.join(a.build, "apps", "demo", "mo-demo")
    pics = sorted(glob.glob(os.path.join(a.shared, "data", "coco-mini", "val2017", "*.jpg")))
    if not os.path.exists(tool) or not pics:
        sys.exit("needs %s (built with the video feature) and coco-mini pictures" % tool)
    w, h = 1280, 720
    with tempfile.TemporaryDirectory() as d:
        raw = os.path.join(d, "f.yuv")
        with open(raw, "wb") as f:
            for k in range(a.frames):
                x = np.asarray(Image.open(pics[k % len(pics)]).convert("RGB").resize((w, h)),
                               np.float64)
                r, g, b = x[..., 0], x[..., 1], x[..., 2]
                planes = (16 + 0.257 * r + 0.504 * g + 0.098 * b,
                          (128 - 0.148 * r - 0.291 * g + 0.439 * b)[::2, ::2],
                          (128 + 0.439 * r - 0.368 * g - 0.071 * b)[::2, ::2])
                for p in planes:
                    f.write(np.clip(np.round(p), 0, 255).astype(np.uint8).tobytes())
        clip = os.path.join(d, "clip.mkv")
        subprocess.run([tool, "write", clip, str(w), str(h), "25", "1", raw, "--codec",
                        a.clip_codec], check=True, stdout=subprocess.DEVNULL)
        print("clip: %d frames %dx%d %s; mo-demo --det ssdlite_s0 --seg deeplab_s0 (+ the "
              "backbone's classification head), out .%s" % (a.frames, w, h, a.clip_codec,
                                                         a.out_ext))
        for t in a.threads:
            out = os.path.join(d, "out.%s" % a.out_ext)
            r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
            p = subprocess.run([demo, "--model", a.model,
                                "--det", os.path.join(ROOT, "weights", "ssdlite_s0.mo.safetensors"),
                                "--seg", os.path.join(ROOT, "weights", "deeplab_s0.mo.safetensors"),
                                "--video", clip, "--out", out, "--threads", str(t)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            if p.returncode:
                sys.exit(p.stderr)
            r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = (r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime) / a.frames
            m = re.search(r"\(([^)]*)\), ([0-9.]+) s, ([0-9.]+) frames/s; (.*)", p.stdout)
            print("threads %d: %s frames/s (%s s, encoder %s; %s); CPU %.0f ms per frame"
                  % (t, m.group(3), m.group(2), m.group(1), m.group(4), 1e3 * cpu))
    print("load average: %.1f %.1f %.1f on %d CPUs" % (os.getloadavg() + (os.cpu_count(),)))


if __name__ == "__main__":
    main()
