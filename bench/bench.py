#!/usr/bin/python3
"""Whole-network benchmark: the C SDK (backbone + classifier) against ONNX Runtime on the
same model, the same 224x224 input and the same thread count.

  /usr/bin/python3 bench/bench.py [--variants s0,s1,s2,s3,s4] [--threads 1,2] [--runs 30]
                                  [--rounds 3] [--build build] [--c-kernels]

Steps, all under bench/out/ (not tracked):
  1. models: MobileOne-S0 with Apple's weights (../shared/models/mobileone_s0.pth.tar, or
     $MO_SHARED/models/...) converted by tools/convert_mobileone.py; s1..s4 with seeded
     random weights (convert_mobileone.py --random VARIANT --fused --seed 1);
  2. ONNX: each model file is read back (tools/mofile.py), loaded into the PyTorch
     reference (tools/mobileone_ref.py), fused (reparameterize) and exported with
     torch.onnx.export: input [1,3,224,224] -> logits, output stride 32;
  3. the input: tabby_cat.jpg preprocessed as torchvision does (random when the image is
     absent), stored NHWC for C and NCHW for ONNX Runtime;
  4. onnxruntime-node (pinned in bench/package.json) is installed into bench/node_modules
     by npm when missing; only its bundled CPU binaries are used;
  5. correctness first: logits of C, ONNX Runtime and PyTorch must agree (max abs
     difference <= 1e-3 * max(1, max |logit|)) or the variant is not timed;
  6. timing: per variant and thread count, C (bench/mo_bench) and ONNX Runtime
     (bench/ort_bench.js) run alternately for --rounds rounds of --runs forward passes
     each (after warm-up), each in its own process; the table shows the best and the
     median over all runs, and the C/ORT ratio of the medians (< 1: C is faster).

The machine may be shared: the load average is printed with the results.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
OUT = os.path.join(HERE, "out")
sys.path.insert(0, os.path.join(ROOT, "tools"))

import mofile  # noqa: E402
import mobileone_ref as ref  # noqa: E402

with open(os.path.join(HERE, "package.json")) as _f:
    ORT_VERSION = json.load(_f)["dependencies"]["onnxruntime-node"]
H = W = 224


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def run(cmd, **kw):
    log("$ " + " ".join(cmd))
    kw.setdefault("stdout", sys.stderr)  # stdout is for the results
    return subprocess.run(cmd, check=True, **kw)


def shared_dir():
    return os.environ.get("MO_SHARED") or os.path.normpath(os.path.join(ROOT, "..", "shared"))


def make_model(variant, seed):
    """Model file for a variant; returns its path or None (S0 without the checkpoint)."""
    path = os.path.join(OUT, "%s.mo.safetensors" % variant)
    if os.path.exists(path):
        return path
    conv = [sys.executable, os.path.join(ROOT, "tools", "convert_mobileone.py")]
    if variant == "s0":
        ckpt = os.path.join(shared_dir(), "models", "mobileone_s0.pth.tar")
        if not os.path.exists(ckpt):
            log("s0: %s not found, skipped" % ckpt)
            return None
        run(conv + [ckpt, path])
    else:
        run(conv + ["--random", variant, "--fused", "--seed", str(seed), path])
    return path


def reference_model(path):
    """The PyTorch reference with the file's weights, fused, in eval mode."""
    import torch
    tensors, _ = mofile.read(path)
    sd = {}
    for name, arr in tensors.items():
        key = name[len("backbone."):] if name.startswith("backbone.") else \
            name[len("cls."):] if name.startswith("cls.") else None
        if key is not None:
            sd[key] = torch.from_numpy(np.array(arr, dtype=np.float32))
    return ref.from_state_dict(sd).reparameterize().eval()


class _Logits:
    """nn.Module wrapper built lazily (torch imported only when needed)."""

    @staticmethod
    def wrap(model):
        import torch

        class Logits(torch.nn.Module):
            def __init__(self, m):
                super().__init__()
                self.m = m

            def forward(self, x):
                return self.m(x, 32)["logits"]

        return Logits(model).eval()


def export_onnx(path, model, x_nchw):
    """ONNX file of the fused model; returns (onnx path, PyTorch logits)."""
    import torch
    onnx_path = path.replace(".mo.safetensors", ".onnx")
    wrapped = _Logits.wrap(model)
    x = torch.from_numpy(x_nchw)
    with torch.no_grad():
        logits = wrapped(x).numpy()[0]
        if not os.path.exists(onnx_path):
            torch.onnx.export(wrapped, x, onnx_path, input_names=["input"],
                              output_names=["logits"], opset_version=13,
                              do_constant_folding=True)
    return onnx_path, logits


def make_input():
    """1 x 3 x H x W float32: tabby_cat.jpg preprocessed, or seeded random."""
    img = os.path.join(shared_dir(), "data", "images", "tabby_cat.jpg")
    if os.path.exists(img):
        x = ref.preprocess(img).numpy()[None]
        src = os.path.basename(img)
    else:
        x = np.random.default_rng(1).standard_normal((1, 3, H, W)).astype(np.float32)
        src = "random normal (seed 1)"
    x = np.ascontiguousarray(x, dtype=np.float32)
    nchw = os.path.join(OUT, "input.nchw.f32")
    nhwc = os.path.join(OUT, "input.nhwc.f32")
    x.tofile(nchw)
    np.ascontiguousarray(x[0].transpose(1, 2, 0)).tofile(nhwc)
    return x, nchw, nhwc, src


def ensure_ort():
    mod = os.path.join(HERE, "node_modules", "onnxruntime-node")
    if not os.path.isdir(mod):
        if not shutil.which("npm"):
            sys.exit("npm not found: apt-get install npm (or nodejs)")
        env = dict(os.environ, ONNXRUNTIME_NODE_INSTALL="skip")  # CPU binaries are bundled
        run(["npm", "install", "--prefix", HERE, "--no-audit", "--no-fund",
             "--no-package-lock"], env=env)


def build_c(build_dir):
    exe = os.path.join(build_dir, "bench", "mo_bench")
    if not os.path.isdir(build_dir):
        run(["meson", "setup", build_dir, "--buildtype=release"], cwd=ROOT)
    run(["ninja", "-C", build_dir, "bench/mo_bench"], cwd=ROOT, stdout=subprocess.DEVNULL)
    return exe


def c_run(exe, model, nhwc, threads, runs, warmup, logits_out, c_kernels):
    cmd = [exe, "--model", model, "--input", nhwc, "--size", "%dx%d" % (H, W), "--threads",
           str(threads), "--runs", str(runs), "--warmup", str(warmup), "--logits", logits_out]
    if c_kernels:
        cmd.append("--c")
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def ort_run(onnx, nchw, threads, runs, warmup, logits_out):
    cmd = ["node", os.path.join(HERE, "ort_bench.js"), onnx, nchw, str(H), str(W),
           str(threads), str(runs), str(warmup), logits_out]
    env = dict(os.environ, NODE_PATH=os.path.join(HERE, "node_modules"))
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout
    return json.loads(out.strip().splitlines()[-1])


def loadavg():
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "?"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--variants", default="s0,s1,s2,s3,s4")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--runs", type=int, default=30, help="timed runs per round and side")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1, help="of the random s1..s4 weights")
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--c-kernels", action="store_true",
                    help="C reference kernels only (mo_set_cpu_flags_mask(0))")
    args = ap.parse_args(argv)
    variants = [v for v in args.variants.split(",") if v]
    threads = [int(t) for t in args.threads.split(",") if t]

    os.makedirs(OUT, exist_ok=True)
    ensure_ort()
    exe = build_c(args.build)
    x, nchw, nhwc, src = make_input()

    rows, notes = [], []
    load_before = loadavg()
    for v in variants:
        model = make_model(v, args.seed)
        if not model:
            continue
        onnx, pt_logits = export_onnx(model, reference_model(model), x)
        lc = os.path.join(OUT, "%s.c.logits.f32" % v)
        lo = os.path.join(OUT, "%s.ort.logits.f32" % v)
        # correctness first, single short runs
        c_run(exe, model, nhwc, 1, 1, 0, lc, args.c_kernels)
        ort_run(onnx, nchw, 1, 1, 0, lo)
        c_l, o_l = np.fromfile(lc, np.float32), np.fromfile(lo, np.float32)
        scale = max(1.0, float(np.abs(pt_logits).max()))
        d_co = float(np.abs(c_l - o_l).max())
        d_cp = float(np.abs(c_l - pt_logits).max())
        d_op = float(np.abs(o_l - pt_logits).max())
        top = (int(c_l.argmax()), int(o_l.argmax()), int(pt_logits.argmax()))
        notes.append("%s: max|C-ORT| %.2e, max|C-PyTorch| %.2e, max|ORT-PyTorch| %.2e "
                     "(max|logit| %.2f), top-1 C/ORT/PyTorch %d/%d/%d"
                     % (v, d_co, d_cp, d_op, scale, *top))
        log(notes[-1])
        if max(d_co, d_cp) > 1e-3 * scale:
            sys.exit("%s: outputs disagree, not timing" % v)
        for t in threads:
            ct, ot = [], []
            for _ in range(args.rounds):
                ct += c_run(exe, model, nhwc, t, args.runs, args.warmup, lc,
                            args.c_kernels)["times_ms"]
                ot += ort_run(onnx, nchw, t, args.runs, args.warmup, lo)["times_ms"]
            c_min, c_med = min(ct), float(np.median(ct))
            o_min, o_med = min(ot), float(np.median(ot))
            rows.append((v, t, c_min, c_med, o_min, o_med))
            log("%s %d thread(s): C %.2f / %.2f ms, ORT %.2f / %.2f ms (min / median)"
                % (v, t, c_min, c_med, o_min, o_med))

    print("MobileOne backbone + classifier, %dx%d input (%s), output stride 32" % (H, W, src))
    print("C: bench/mo_bench%s; ORT: onnxruntime-node %s, CPU EP; %d rounds x %d runs per "
          "side, wall clock per forward" % (" (C reference kernels)" if args.c_kernels else "",
                                            ORT_VERSION, args.rounds, args.runs))
    print("load average before %s, after %s (2-core machine, shared)" % (load_before, loadavg()))
    print()
    print("| variant | threads | C ms (min / median) | ORT ms (min / median) | C/ORT (median) |")
    print("|---|---|---|---|---|")
    for v, t, c_min, c_med, o_min, o_med in rows:
        print("| %s | %d | %.2f / %.2f | %.2f / %.2f | %.2f |"
              % (v, t, c_min, c_med, o_min, o_med, c_med / o_med))
    print()
    for n in notes:
        print(n)
    return 0


if __name__ == "__main__":
    sys.exit(main())
