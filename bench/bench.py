#!/usr/bin/python3
"""Whole-network benchmark: the C SDK against ONNX Runtime on the same model, the same
input and the same thread count (issue 11).

  /usr/bin/python3 bench/bench.py [--rows cls,det,seg,pipeline] [--variants s0,...,s4]
      [--seg-os 16,32] [--threads 1,2] [--runs 10] [--rounds 3] [--warmup 2]
      [--build build] [--c-kernels] [--tol 1e-3] [--json bench/out/bench.json]

Rows (each at every --threads count):
  cls       MobileOne s0..s4 backbone + classifier, 224x224 input (tabby_cat.jpg), logits;
  det       SSDLite320 (weights/ssdlite_s0.mo.safetensors on the S0 backbone), up to the
            raw outputs: class logits [3234 x 91] and box codes [3234 x 4];
  det_nms   the same plus the SDK's post-processing (softmax, score 0.01, top-k, decoding,
            NMS), timed against ONNX Runtime's raw time (ONNX Runtime has no such step);
  seg16, seg32  DeepLabV3 (weights/deeplab_s0.mo.safetensors) on 512x512 at output
            stride 16 and 32: ONNX Runtime up to the upsampled logits [21 x 512 x 512], the
            SDK up to its label map (upsampling and argmax fused: it has no upsampled-logits
            output);
  pipeline  mo_pipeline_run on a 1280x720 NV12 frame with the classifier, detection and
            segmentation heads: SDK only (ONNX Runtime has no equivalent: no NV12
            conversion, no shared backbone pass, no post-processing).

Steps, all under bench/out/ (not tracked):
  1. model files: s0 from Apple's checkpoint (tools/convert_mobileone.py), s1..s4 with
     seeded random fused weights; the heads' backbone is <build>/models/mobileone_s0.mo.
     safetensors (./demo.sh), else the same conversion in bench/out/s0.mo.safetensors;
  2. ONNX: each model file is read back (tools/mofile.py) into the project's PyTorch
     reference (tools/mobileone_ref.py, ssdlite_ref.py, deeplab_ref.py; fused backbone)
     and exported with torch.onnx.export (opset 13, constant folding), cached under
     bench/out/onnx/ by a digest of the files and the export settings;
  3. inputs: tabby_cat.jpg preprocessed as torchvision does (cls); a COCO photo (det) and
     a VOC photo (seg) normalized and resized bilinearly; the COCO photo at 1280x720 as
     NV12 (BT.601 limited range) for the pipeline; seeded random when a photo is absent;
  4. onnxruntime-node (pinned in bench/package.json) is installed into bench/node_modules
     by npm when missing; only its bundled CPU binaries are used;
  5. correctness first, at 1 thread: the SDK's outputs against ONNX Runtime's and
     PyTorch's (tolerance below); a row that fails is not timed and says so. After each
     timed C round its outputs must equal the 1-thread ones bit for bit (the SDK's
     promise); a difference is reported;
  6. timing: C (bench/mo_bench, public API) and ONNX Runtime (bench/ort_bench.js) run
     alternately, each round in a fresh process of each (the first engine alternating),
     --rounds rounds of --runs timed forwards after --warmup; min and median over all
     runs, the C/ORT ratio of the medians (< 1: C is faster), and per round the ratio of
     the two medians (their median, range, the rounds C won and a sign-test p in the
     JSON; bench/pool_runs.py pools the rounds of several runs). Each process of either
     engine is pinned to the first THREADS CPUs this script may use (sched_setaffinity,
     inherited by every thread; --no-pin leaves it to the scheduler): unpinned, a
     1-thread run that the scheduler moves to the other core loses its L2 contents, and
     medians on this 2-core machine swung between two levels (s2 at 1 thread: 13.3 or
     16 ms, alternating from one process to the next; pinned 13.1-13.6 ms);
  7. GFLOP/s: the analytic FLOPs of the SDK's profile (mo_session_profile: 2 x multiply-
     adds per op) over the median, for both engines; % of peak: over the fp32 FMA peak
     that apps/bench/mo-bench measures here per thread, times the threads;
  8. peak RSS of each process: VmHWM of /proc/self/status, read by each (getrusage and
     process.resourceUsage().maxRSS would report this script's own peak, with torch:
     Linux keeps ru_maxrss across exec); the node runtime with the ORT library and no
     model takes base_rss_kb, in the JSON.

Tolerance: float outputs agree when max |a - b| <= tol * max(1, max |PyTorch output|),
tol = 1e-3 (--tol), for C vs ORT and C vs PyTorch (segmentation: C's feature-resolution
logits vs PyTorch's, ORT's upsampled logits vs PyTorch's, and every C label must be an
argmax of ORT's upsampled logits within that tolerance). Detections (det_nms) are matched
to torchvision's postprocess_detections on the PyTorch raw outputs (same label, IoU >=
0.99, |score difference| <= 1e-3); at most 1% of them may be unmatched (ties at the score
threshold or the top-k cut).

The machine may be shared: the load average is printed with the results.
"""

import argparse
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
OUT = os.path.join(HERE, "out")
sys.path.insert(0, os.path.join(ROOT, "tools"))
sys.path.insert(0, HERE)  # pool_runs

import mofile  # noqa: E402
from pool_runs import sign_test_p  # noqa: E402  (bench/: the pooling of several runs)

with open(os.path.join(HERE, "package.json")) as _f:
    ORT_VERSION = json.load(_f)["dependencies"]["onnxruntime-node"]
OPSET = 13
REL_TOL = 1e-3
DET_SCORE = 0.01
EXPORT_TAG = "bench-export-1"  # change to invalidate the cached ONNX files


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def run(cmd, **kw):
    log("$ " + " ".join(cmd))
    kw.setdefault("stdout", sys.stderr)  # stdout is for the results
    return subprocess.run(cmd, check=True, **kw)


def shared_dir():
    return os.environ.get("MO_SHARED") or os.path.normpath(os.path.join(ROOT, "..", "shared"))


def file_digest(*paths, extra=""):
    h = hashlib.sha256(extra.encode())
    for p in paths:
        with open(p, "rb") as f:
            h.update(f.read())
    return h.hexdigest()[:12]


# ------------------------------------------------------------------ model files

def make_model(variant, seed):
    """Backbone + classifier file of a variant; its path or None (S0 without checkpoint)."""
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


def head_backbone(build_dir, seed):
    """The S0 backbone the shipped heads run on."""
    p = os.path.join(build_dir, "models", "mobileone_s0.mo.safetensors")
    return p if os.path.exists(p) else make_model("s0", seed)


# ------------------------------------------------------------------ PyTorch references

def backbone_ref(path):
    """The fused MobileOne reference with a model file's backbone (and classifier)."""
    import deeplab_ref
    return deeplab_ref.load_backbone(path).reparameterize().eval()


def cls_module(path):
    import torch

    class Logits(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, x):
            return self.m(x, 32)["logits"]

    return Logits(backbone_ref(path)).eval()


def det_model(bb_path, head_path):
    """torchvision SSD of tools/ssdlite_ref.py with the file's backbone and head."""
    import ssdlite_ref
    tensors, meta = mofile.read(head_path)
    cfg = ssdlite_ref.config_from_meta(meta)
    bb = backbone_ref(bb_path)
    model = ssdlite_ref.build(bb.variant, True, cfg, score_thresh=DET_SCORE)
    body_sd = {k: v for k, v in bb.state_dict().items() if not k.startswith("linear.")}
    model.backbone.body.load_state_dict(body_sd)
    ssdlite_ref.load_head_(model, tensors, head_path)
    return model.eval(), cfg


def det_module(ssd):
    import torch

    class DetRaw(torch.nn.Module):
        """Normalized input -> (class logits [1, N, K], box codes [1, N, 4])."""

        def __init__(self, ssd):
            super().__init__()
            self.features = ssd.backbone
            self.head = ssd.head

        def forward(self, x):
            out = self.head(list(self.features(x).values()))
            return out["cls_logits"], out["bbox_regression"]

    return DetRaw(ssd).eval()


def det_postprocess(ssd, x, logits, reg):
    """torchvision's SSD.postprocess_detections on raw outputs: n x 6 (box, score, label)."""
    import torch
    from torchvision.models.detection.image_list import ImageList
    h, w = x.shape[-2:]
    with torch.no_grad():
        feats = list(ssd.backbone(torch.from_numpy(x)).values())
        anchors = ssd.anchor_generator(ImageList(torch.from_numpy(x), [(h, w)]), feats)
        det = ssd.postprocess_detections(
            {"cls_logits": torch.from_numpy(logits)[None],
             "bbox_regression": torch.from_numpy(reg)[None]}, anchors, [(h, w)])[0]
    return np.concatenate([det["boxes"].numpy(), det["scores"].numpy()[:, None],
                           det["labels"].numpy()[:, None].astype(np.float32)], 1)


def seg_module(bb_path, head_path, os_, size):
    import torch
    import torch.nn.functional as F
    import deeplab_ref
    import mobileone_ref
    bb = backbone_ref(bb_path)
    head, _ = deeplab_ref.load_head(head_path, mobileone_ref.widths(bb.variant)[4])
    model = deeplab_ref.make_model(bb, head, os_)

    class SegUp(torch.nn.Module):
        """Normalized input -> logits upsampled to the input size [1, K, H, W]."""

        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, x):
            low = self.m.classifier(self.m.backbone(x)["out"])
            return F.interpolate(low, size=size, mode="bilinear", align_corners=False)

    return SegUp(model).eval(), model


def export_onnx(name, module, x, inputs, output_names):
    """ONNX file of `module` on input x (cached by the digest of `inputs`)."""
    import torch
    d = os.path.join(OUT, "onnx")
    os.makedirs(d, exist_ok=True)
    path = os.path.join(d, "%s-%s.onnx" % (name, file_digest(
        *inputs, extra="%s %s %s opset%d %s" % (EXPORT_TAG, name, x.shape, OPSET,
                                               torch.__version__))))
    if not os.path.exists(path):
        tmp = path + ".tmp"
        with torch.no_grad():
            torch.onnx.export(module, torch.from_numpy(x), tmp, input_names=["input"],
                              output_names=output_names, opset_version=OPSET,
                              do_constant_folding=True)
        os.replace(tmp, path)
    return path


def torch_out(module, x):
    import torch
    with torch.no_grad():
        y = module(torch.from_numpy(x))
    if isinstance(y, tuple):
        return [t.numpy()[0] for t in y]
    return [y.numpy()[0]]


# ------------------------------------------------------------------ inputs

def _photo(*rel):
    p = os.path.join(shared_dir(), "data", *rel)
    return p if os.path.exists(p) else None


def normalized(path, h, w, seed):
    """1 x 3 x h x w float32: the photo in [0, 1], ImageNet-normalized, resized bilinearly
    (align_corners=False, as torchvision's detection transform); seeded random without it."""
    if path is None:
        return np.random.default_rng(seed).standard_normal((1, 3, h, w)).astype(np.float32), \
            "random normal (seed %d)" % seed
    import torch.nn.functional as F
    import mobileone_ref as ref
    from PIL import Image
    import torchvision.transforms.functional as TF
    with Image.open(path) as im:
        t = TF.to_tensor(im.convert("RGB"))
    t = TF.normalize(t, ref.IMAGENET_MEAN, ref.IMAGENET_STD)
    t = F.interpolate(t[None], size=(h, w), mode="bilinear", align_corners=False)
    return np.ascontiguousarray(t.numpy(), dtype=np.float32), os.path.basename(path)


def cls_input(seed):
    import mobileone_ref as ref
    p = _photo("images", "tabby_cat.jpg")
    if p is None:
        return normalized(None, 224, 224, seed)
    return np.ascontiguousarray(ref.preprocess(p).numpy()[None], dtype=np.float32), \
        os.path.basename(p)


def save_input(name, x):
    """NCHW file for ORT, NHWC for C."""
    nchw = os.path.join(OUT, "%s.nchw.f32" % name)
    nhwc = os.path.join(OUT, "%s.nhwc.f32" % name)
    x.tofile(nchw)
    np.ascontiguousarray(x[0].transpose(1, 2, 0)).tofile(nhwc)
    return nchw, nhwc


def nv12_frame(path, w, h, seed):
    """The photo resized to w x h (Pillow bilinear) as NV12, BT.601 limited range."""
    if path is None:
        rgb = np.random.default_rng(seed).integers(0, 256, (h, w, 3)).astype(np.float64)
        src = "random RGB (seed %d)" % seed
    else:
        from PIL import Image
        with Image.open(path) as im:
            rgb = np.asarray(im.convert("RGB").resize((w, h), Image.BILINEAR), np.float64)
        src = os.path.basename(path)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    y = 16 + (65.481 * r + 128.553 * g + 24.966 * b) / 255
    u = 128 + (-37.797 * r - 74.203 * g + 112.0 * b) / 255
    v = 128 + (112.0 * r - 93.786 * g - 18.214 * b) / 255
    hh, ww = (h + 1) // 2, (w + 1) // 2
    pad = lambda a: np.pad(a, ((0, 2 * hh - h), (0, 2 * ww - w)), mode="edge")  # noqa: E731
    sub = lambda a: pad(a).reshape(hh, 2, ww, 2).mean((1, 3))  # noqa: E731
    uv = np.stack([sub(u), sub(v)], -1).reshape(hh, 2 * ww)
    data = np.concatenate([np.clip(np.rint(y), 0, 255).ravel(),
                           np.clip(np.rint(uv), 0, 255).ravel()]).astype(np.uint8)
    path_out = os.path.join(OUT, "frame_%dx%d.nv12" % (w, h))
    data.tofile(path_out)
    return path_out, src


# ------------------------------------------------------------------ engines

def ensure_ort():
    mod = os.path.join(HERE, "node_modules", "onnxruntime-node")
    if not os.path.isdir(mod):
        if not shutil.which("npm"):
            sys.exit("npm not found: apt-get install npm (or nodejs)")
        env = dict(os.environ, ONNXRUNTIME_NODE_INSTALL="skip")  # CPU binaries are bundled
        run(["npm", "install", "--prefix", HERE, "--no-audit", "--no-fund",
             "--no-package-lock"], env=env)


def build_c(build_dir):
    if not os.path.isdir(build_dir):
        run(["meson", "setup", build_dir, "--buildtype=release"], cwd=ROOT)
    run(["ninja", "-C", build_dir, "bench/mo_bench", "apps/bench/mo-bench"], cwd=ROOT,
        stdout=subprocess.DEVNULL)
    return os.path.join(build_dir, "bench", "mo_bench"), \
        os.path.join(build_dir, "apps", "bench", "mo-bench")


PIN = True  # --no-pin: False


def pin_cpus(threads):
    """The CPUs an engine running `threads` threads is pinned to (None: not pinned)."""
    if not PIN or not hasattr(os, "sched_getaffinity"):
        return None
    allowed = sorted(os.sched_getaffinity(0))
    return allowed[:threads] if threads <= len(allowed) else None


def _json_line(cmd, env=None, threads=0):
    cpus = pin_cpus(threads) if threads else None
    p = subprocess.run(cmd, capture_output=True, text=True, env=env,
                       preexec_fn=(lambda: os.sched_setaffinity(0, cpus)) if cpus else None)
    if p.returncode:
        raise RuntimeError("%s failed (%d): %s" % (os.path.basename(cmd[0]) if cmd[0] != "node"
                                                   else cmd[1], p.returncode,
                                                   p.stderr.strip()[-500:]))
    return json.loads(p.stdout.strip().splitlines()[-1])


class CRun:
    """bench/mo_bench with a fixed task, model and input."""

    def __init__(self, exe, c_kernels, args):
        self.exe, self.args = exe, list(args) + (["--c"] if c_kernels else [])

    def __call__(self, threads, runs, warmup, out):
        return _json_line([self.exe] + self.args + ["--threads", str(threads), "--runs",
                                                    str(runs), "--warmup", str(warmup),
                                                    "--out", out], threads=threads)


class OrtRun:
    def __init__(self, onnx, nchw, h, w):
        self.onnx, self.nchw, self.h, self.w = onnx, nchw, h, w

    def __call__(self, threads, runs, warmup, out):
        env = dict(os.environ, NODE_PATH=os.path.join(HERE, "node_modules"))
        return _json_line(["node", os.path.join(HERE, "ort_bench.js"), self.onnx, self.nchw,
                           str(self.h), str(self.w), str(threads), str(runs), str(warmup),
                           out], env=env, threads=threads)


def fma_peak(mo_bench_app, model):
    """fp32 FMA GFLOP/s of one thread, as apps/bench/mo-bench measures it (0: not measured)."""
    try:
        j = _json_line([mo_bench_app, "--model", model, "--runs", "1", "--warmup", "0",
                        "--json"])
        return float(j.get("fma_peak_gflops_per_thread", 0.0))
    except (RuntimeError, ValueError) as e:
        log("peak not measured: %s" % e)
        return 0.0


def read_f32(path):
    return np.fromfile(path, np.float32)


def read_bytes(path):
    with open(path, "rb") as f:
        return f.read()


# ------------------------------------------------------------------ checks

def max_diff(a, b):
    a, b = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    if a.shape != b.shape:
        return float("inf")
    return float(np.abs(a - b).max()) if a.size else 0.0


def tol_of(ref_out):
    return REL_TOL * max(1.0, float(np.abs(ref_out).max()))


def set_tolerance(rel):
    global REL_TOL
    REL_TOL = rel


def match_dets(a, b):
    """Greedy match of detections a to b (same label, IoU >= 0.99, |score diff| <= 1e-3):
    (unmatched count, max score difference of the matched)."""
    used = np.zeros(len(b), bool)
    unmatched, worst = 0, 0.0
    for d in a:
        best, best_iou = -1, 0.99
        for j in np.nonzero(~used & (b[:, 5] == d[5]))[0] if len(b) else []:
            e = b[j]
            iw = max(0.0, min(d[2], e[2]) - max(d[0], e[0]))
            ih = max(0.0, min(d[3], e[3]) - max(d[1], e[1]))
            inter = iw * ih
            union = (d[2] - d[0]) * (d[3] - d[1]) + (e[2] - e[0]) * (e[3] - e[1]) - inter
            iou = inter / union if union > 0 else 0.0
            if iou >= best_iou and abs(d[4] - e[4]) <= 1e-3:
                best, best_iou = j, iou
        if best < 0:
            unmatched += 1
        else:
            used[best] = True
            worst = max(worst, abs(float(d[4] - b[best][4])))
    return unmatched + int((~used).sum()), worst


# ------------------------------------------------------------------ rows

class Row:
    def __init__(self, key, title, c, ort=None, ort_from=None, c_outputs=()):
        self.key, self.title, self.c, self.ort = key, title, c, ort
        self.ort_from = ort_from  # key of the row whose ORT times this row shows
        self.c_outputs = c_outputs  # suffixes of the C outputs checked across threads
        self.check_ok, self.notes, self.results = True, [], {}


def prefix(name):
    return os.path.join(OUT, "res", name)


def build_rows(args, exe, build_dir):
    """Models, ONNX files, inputs and correctness checks; returns the rows."""
    rows, want = [], set(args.rows.split(","))
    variants = [v for v in args.variants.split(",") if v]
    if "cls" in want:
        x, src = cls_input(args.seed)
        nchw, nhwc = save_input("cls224", x)
        for v in variants:
            model = make_model(v, args.seed)
            if not model:
                continue
            mod = cls_module(model)
            onnx = export_onnx("cls_" + v, mod, x, [model], ["logits"])
            (pt,) = torch_out(mod, x)
            row = Row("cls_" + v, "%s backbone + classifier, 224 (%s)" % (v, src),
                      CRun(exe, args.c_kernels, ["--task", "cls", "--model", model, "--input",
                                                 nhwc, "--size", "224x224"]),
                      OrtRun(onnx, nchw, 224, 224), c_outputs=(".logits.f32",))
            row.c(1, 1, 0, prefix(row.key + ".chk"))
            row.ort(1, 1, 0, prefix(row.key + ".ort"))
            c_l = read_f32(prefix(row.key + ".chk") + ".logits.f32")
            o_l = read_f32(prefix(row.key + ".ort") + ".logits.f32")
            tol = tol_of(pt)
            d_co, d_cp, d_op = max_diff(c_l, o_l), max_diff(c_l, pt), max_diff(o_l, pt)
            row.check_ok = max(d_co, d_cp) <= tol
            row.notes.append("max|C-ORT| %.2e, max|C-PyTorch| %.2e, max|ORT-PyTorch| %.2e "
                             "(tolerance %.2e); top-1 C/ORT/PyTorch %d/%d/%d"
                             % (d_co, d_cp, d_op, tol, int(c_l.argmax()), int(o_l.argmax()),
                                int(pt.argmax())))
            rows.append(row)

    bb = None
    if want & {"det", "seg", "pipeline"}:
        bb = head_backbone(build_dir, args.seed)
        if not bb:
            log("no S0 backbone: detection, segmentation and pipeline rows skipped")
            return rows
    det_head = os.path.join(ROOT, "weights", "ssdlite_s0.mo.safetensors")
    seg_head = os.path.join(ROOT, "weights", "deeplab_s0.mo.safetensors")

    if "det" in want:
        ssd, cfg = det_model(bb, det_head)
        h, w = cfg["input_size"]
        x, src = normalized(_photo("coco-mini", "val2017", "000000165518.jpg"), h, w,
                            args.seed)
        nchw, nhwc = save_input("det%d" % h, x)
        mod = det_module(ssd)
        onnx = export_onnx("ssdlite_s0", mod, x, [bb, det_head], ["cls_logits",
                                                                   "bbox_regression"])
        pt_l, pt_r = torch_out(mod, x)
        base = ["--model", bb, "--head", det_head, "--input", nhwc, "--size", "%dx%d" % (h, w),
                "--score", str(DET_SCORE)]
        raw = Row("det", "SSDLite%d s0, raw outputs (%s)" % (h, src),
                  CRun(exe, args.c_kernels, ["--task", "det"] + base), OrtRun(onnx, nchw, h, w),
                  c_outputs=(".logits.f32", ".reg.f32"))
        post = Row("det_nms", "SSDLite%d s0, C + decode + NMS (score %g) vs ORT raw"
                   % (h, DET_SCORE), CRun(exe, args.c_kernels, ["--task", "det-post"] + base),
                   ort_from="det", c_outputs=(".dets.f32",))
        raw.c(1, 1, 0, prefix("det.chk"))
        raw.ort(1, 1, 0, prefix("det.ort"))
        c_l, c_r = read_f32(prefix("det.chk") + ".logits.f32"), read_f32(prefix("det.chk") +
                                                                          ".reg.f32")
        o_l = read_f32(prefix("det.ort") + ".cls_logits.f32")
        o_r = read_f32(prefix("det.ort") + ".bbox_regression.f32")
        tl, tr = tol_of(pt_l), tol_of(pt_r)
        d = [max_diff(c_l, o_l), max_diff(c_l, pt_l), max_diff(o_l, pt_l),
             max_diff(c_r, o_r), max_diff(c_r, pt_r), max_diff(o_r, pt_r)]
        raw.check_ok = max(d[0], d[1]) <= tl and max(d[3], d[4]) <= tr
        raw.notes.append("logits max|C-ORT| %.2e, |C-PyTorch| %.2e, |ORT-PyTorch| %.2e "
                         "(tolerance %.2e); box codes %.2e, %.2e, %.2e (tolerance %.2e)"
                         % (d[0], d[1], d[2], tl, d[3], d[4], d[5], tr))
        post.c(1, 1, 0, prefix("det_nms.chk"))
        c_d = read_f32(prefix("det_nms.chk") + ".dets.f32").reshape(-1, 6)
        t_d = det_postprocess(ssd, x, pt_l, pt_r)
        miss, worst = match_dets(c_d, t_d)
        allowed = int(0.01 * max(len(c_d), len(t_d)))
        post.check_ok = raw.check_ok and miss <= allowed
        post.notes.append("%d detections (C), %d (torchvision postprocess_detections on the "
                          "PyTorch raw outputs); unmatched %d (allowed %d), max score diff "
                          "%.1e" % (len(c_d), len(t_d), miss, allowed, worst))
        rows += [raw, post]

    if "seg" in want:
        h = w = 512
        x, src = normalized(_photo("voc2012-val-samples", "1_image.png"), h, w, args.seed)
        nchw, nhwc = save_input("seg%d" % h, x)
        for os_ in [int(s) for s in args.seg_os.split(",") if s]:
            key = "seg%d" % os_
            mod, model = seg_module(bb, seg_head, os_, (h, w))
            onnx = export_onnx("deeplab_s0_os%d" % os_, mod, x, [bb, seg_head], ["logits"])
            import deeplab_ref
            import torch
            pt_low, pt_up, _ = deeplab_ref.forward(model, torch.from_numpy(x), os_)
            pt_low, pt_up = pt_low.numpy(), pt_up.numpy()
            row = Row(key, "DeepLabV3 s0, %dx%d, output stride %d (%s)" % (h, w, os_, src),
                      CRun(exe, args.c_kernels, ["--task", "seg", "--model", bb, "--head",
                                                 seg_head, "--input", nhwc, "--size",
                                                 "%dx%d" % (h, w), "--os", str(os_)]),
                      OrtRun(onnx, nchw, h, w), c_outputs=(".labels.u8",))
            row.c(1, 1, 0, prefix(key + ".chk"))
            row.ort(1, 1, 0, prefix(key + ".ort"))
            k = pt_up.shape[0]
            c_lab = np.frombuffer(read_bytes(prefix(key + ".chk") + ".labels.u8"),
                                  np.uint8).reshape(h, w)
            c_low = read_f32(prefix(key + ".chk") + ".low.f32").reshape(
                pt_low.shape[1], pt_low.shape[2], k).transpose(2, 0, 1)
            o_up = read_f32(prefix(key + ".ort") + ".logits.f32").reshape(k, h, w)
            t_low, t_up = tol_of(pt_low), tol_of(pt_up)
            d_low, d_up = max_diff(c_low, pt_low), max_diff(o_up, pt_up)
            gap = o_up.max(0) - np.take_along_axis(o_up, c_lab[None].astype(np.int64), 0)[0]
            n_diff = int((c_lab != o_up.argmax(0)).sum())
            row.check_ok = d_low <= t_low and d_up <= t_up and float(gap.max()) <= t_up
            row.notes.append("logits before upsampling max|C-PyTorch| %.2e (tolerance %.2e); "
                             "upsampled max|ORT-PyTorch| %.2e (tolerance %.2e); C labels vs "
                             "ORT argmax: %d of %d pixels differ, worst logit gap %.2e "
                             "(tolerance %.2e); labels vs PyTorch argmax: %d differ"
                             % (d_low, t_low, d_up, t_up, n_diff, h * w, float(gap.max()),
                                t_up, int((c_lab != pt_up.argmax(0)).sum())))
            rows.append(row)

    if "pipeline" in want:
        fw, fh = (int(v) for v in args.frame.split("x"))
        frame, src = nv12_frame(_photo("coco-mini", "val2017", "000000165518.jpg"), fw, fh,
                                args.seed)
        row = Row("pipeline", "pipeline: cls + SSDLite + DeepLabV3 on %dx%d NV12 (%s), "
                  "SDK only" % (fw, fh, src),
                  CRun(exe, args.c_kernels, ["--task", "pipeline", "--model", bb, "--head",
                                             det_head, "--head", seg_head, "--input", frame,
                                             "--frame", "%dx%d" % (fw, fh)]))
        r = row.c(1, 1, 0, prefix("pipeline.chk"))
        row.notes.append("no ONNX Runtime equivalent (NV12 conversion, shared backbone pass "
                         "and post-processing are the SDK's); one run: %d detections "
                         "(score 0.001, the pipeline's default), top-1 class %d, label map %s"
                         % (r["detections"], r["top1"], "yes" if r["has_labels"] else "no"))
        rows.append(row)
    return rows


def time_rows(rows, args, threads):
    for t in threads:
        groups = []  # rows timed together (det and det_nms share ORT's times)
        for r in rows:
            if r.ort_from:
                next(g for g in groups if g[0].key == r.ort_from).append(r)
            else:
                groups.append([r])
        for g in groups:
            lead = g[0]
            if not lead.check_ok:
                continue
            ct = {r.key: [] for r in g if r.check_ok}
            ot, c_rss, o_rss, o_base, same = [], {}, [], [], {r.key: True for r in g}
            # per-round medians: the paired ratio compares each round's C with the ORT run
            # next to it, so a load change between rounds moves both sides
            c_rounds, o_rounds = {r.key: [] for r in g}, []
            for rnd in range(args.rounds):
                steps = [("c", r) for r in g if r.check_ok]
                if lead.ort:
                    steps = steps + [("ort", lead)] if rnd % 2 == 0 else \
                        [("ort", lead)] + steps
                for kind, r in steps:
                    if kind == "c":
                        res = r.c(t, args.runs, args.warmup, prefix(r.key + ".t"))
                        ct[r.key] += res["times_ms"]
                        c_rounds[r.key].append(float(np.median(res["times_ms"])))
                        c_rss[r.key] = max(c_rss.get(r.key, 0), res["max_rss_kb"])
                        r.results.setdefault(t, {})["mflop"] = res["mflop"]
                        r.results[t]["mflop_dense"] = res.get("mflop_dense", res["mflop"])
                        if "median_split_ms" in res:
                            r.results[t]["split_ms"] = res["median_split_ms"]
                        for suf in r.c_outputs:
                            if read_bytes(prefix(r.key + ".t") + suf) != \
                                    read_bytes(prefix(r.key + ".chk") + suf):
                                same[r.key] = False
                    else:
                        res = r.ort(t, args.runs, args.warmup, prefix(r.key + ".ort_t"))
                        ot += res["times_ms"]
                        o_rounds.append(float(np.median(res["times_ms"])))
                        o_rss.append(res["max_rss_kb"])
                        o_base.append(res["base_rss_kb"])
            for r in g:
                if not r.check_ok:
                    continue
                res = r.results.setdefault(t, {})
                res.update(c_min=min(ct[r.key]), c_med=float(np.median(ct[r.key])),
                           c_rss_kb=c_rss[r.key], c_times=ct[r.key],
                           c_same_as_1_thread=same[r.key])
                if ot:
                    res.update(o_min=min(ot), o_med=float(np.median(ot)), o_rss_kb=max(o_rss),
                               o_base_rss_kb=max(o_base), o_times=ot)
                    n = min(len(c_rounds[r.key]), len(o_rounds))
                    per_round = [c_rounds[r.key][i] / o_rounds[i] for i in range(n)]
                    res["paired"] = float(np.median(per_round))
                    res["paired_rounds"] = per_round
                    res["c_faster_rounds"] = sum(1 for x in per_round if x < 1.0)
                    res["sign_p"] = sign_test_p(res["c_faster_rounds"], n)
                log("%s, %d thread(s): C %.2f / %.2f ms%s" % (
                    r.key, t, res["c_min"], res["c_med"],
                    ", ORT %.2f / %.2f ms" % (res["o_min"], res["o_med"]) if ot else ""))


def git_commit():
    """HEAD of the checkout that was measured, '+' when it has uncommitted changes; None
    outside git."""
    try:
        head = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "-uno"],
                               capture_output=True, text=True, check=True).stdout.strip()
        return head + ("+" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return None


def loadavg():
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "?"


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def report(rows, args, threads, peak, meta):
    print("# C SDK vs ONNX Runtime %s (CPU EP), same ONNX-exported PyTorch reference, same "
          "input, same threads" % ORT_VERSION)
    print()
    print("%s, %d CPUs; load average before %s, after %s; fp32 FMA peak measured %.1f "
          "GFLOP/s per thread (apps/bench/mo-bench); %d rounds x %d runs per engine and row "
          "(+%d warm-up per round), engines alternated, %s; C: bench/mo_bench%s"
          % (meta["cpu"], os.cpu_count() or 0, meta["load_before"], meta["load_after"], peak,
             args.rounds, args.runs, args.warmup,
             "each process pinned to the first N CPUs for N threads" if PIN else "not pinned",
             " (C reference kernels)" if args.c_kernels else ""))
    print()
    print("| row | thr | C ms min / med | ORT ms min / med | C/ORT | paired C/ORT | MFLOP | "
          "C GFLOP/s (% peak) | ORT GFLOP/s (% peak) | RSS MB C / ORT |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        for t in threads:
            res = r.results.get(t)
            if not r.check_ok:
                print("| %s | %d | not timed: outputs disagree | | | | | | | |" % (r.key, t))
                continue
            if not res or "c_med" not in res:
                continue
            o = r.ort or r.ort_from
            src = next((x for x in rows if x.key == r.ort_from), None) if r.ort_from else r
            ores = src.results.get(t, {}) if src else {}
            mf = res.get("mflop", 0.0)

            def gf(ms):
                g = mf / ms if ms > 0 and mf > 0 else 0.0
                return "%.1f (%.0f%%)" % (g, 100 * g / (peak * t)) if peak > 0 else "%.1f" % g
            c_cell = "%.2f / %.2f" % (res["c_min"], res["c_med"])
            if o and "o_med" in ores:
                o_cell = "%.2f / %.2f" % (ores["o_min"], ores["o_med"])
                ratio = "%.2f" % (res["c_med"] / ores["o_med"])
                paired = "%.2f [%.2f-%.2f] %d/%d" % (
                    res["paired"], min(res["paired_rounds"]), max(res["paired_rounds"]),
                    res["c_faster_rounds"], len(res["paired_rounds"])) \
                    if "paired" in res else "n/a"
                o_gf = gf(ores["o_med"])
                rss = "%.0f / %.0f" % (res["c_rss_kb"] / 1024, ores["o_rss_kb"] / 1024)
            else:
                o_cell, ratio, o_gf, paired = "n/a", "n/a", "n/a", "n/a"
                rss = "%.0f / n/a" % (res["c_rss_kb"] / 1024)
            flag = "" if res["c_same_as_1_thread"] else " (C outputs differ from 1 thread!)"
            print("| %s | %d | %s | %s | %s%s | %s | %.0f | %s | %s | %s |"
                  % (r.key, t, c_cell, o_cell, ratio, " (raw)" if r.ort_from else "", paired, mf,
                     gf(res["c_med"]), o_gf, rss, ) + flag)
    print()
    print("Rows:")
    for r in rows:
        notes = list(r.notes)
        src = next((x for x in rows if x.key == r.ort_from), r)
        for t in threads:
            res, ores = r.results.get(t, {}), src.results.get(t, {})
            dense = res.get("mflop_dense", 0.0)
            if dense > 1.01 * res.get("mflop", dense) and "o_med" in ores:
                notes.append("%d thread(s): the dense count (every dilated tap, as ORT runs "
                             "them) is %.0f MFLOP, ORT %.1f GFLOP/s on it"
                             % (t, dense, dense / ores["o_med"]))
            sp = res.get("split_ms")
            if sp:
                notes.append("%d thread(s), medians of the last round: convert %.1f, "
                             "preprocess %.1f, backbone passes %.1f, heads %.1f ms"
                             % (t, sp["convert"], sp["preprocess"], sp["backbone"], sp["heads"]))
        if "c_med" in r.results.get(1, {}) and "c_med" in r.results.get(2, {}):
            a, b = r.results[1], r.results[2]
            su = "1 -> 2 threads: C %.2fx (by medians), %.2fx (by minima)" % (
                a["c_med"] / b["c_med"], a["c_min"] / b["c_min"])
            oa, ob = src.results.get(1, {}), src.results.get(2, {})
            if "o_med" in oa and "o_med" in ob:
                su += ", ORT %.2fx" % (oa["o_med"] / ob["o_med"])
            notes.append(su)
        print("- %s: %s. %s%s" % (r.key, r.title, "; ".join(notes),
                                  "" if r.check_ok else " -> NOT TIMED (outputs disagree)"))
    print()
    print("C/ORT: ratio of the medians (< 1: the SDK is faster); paired C/ORT: the median over "
          "rounds of each round's C median over the ORT median of the same round, [lowest-highest] "
          "of those per-round ratios, and in how many rounds C was faster (if the engines were "
          "equally fast, 5 of 5 would happen by chance with p = 0.031, 8 of 8 with p = 0.004; "
          "the JSON has each row's sign_p). MFLOP: the SDK's analytic "
          "count (mo_session_profile; the segmentation head counts only the dilated taps that "
          "read the image, so ORT executes more than this: see the dense count in the notes), "
          "used for both engines' GFLOP/s. RSS: peak resident set of each process%s."
          % (" (node alone with ORT loaded: about %.0f MB)" % meta["ort_base_mb"]
             if meta.get("ort_base_mb") else ""))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", default="cls,det,seg,pipeline",
                    help="any of cls, det (raw and +NMS), seg, pipeline")
    ap.add_argument("--variants", default="s0,s1,s2,s3,s4", help="of the cls rows")
    ap.add_argument("--seg-os", default="16,32", help="output strides of the seg rows")
    ap.add_argument("--frame", default="1280x720", help="NV12 frame of the pipeline row")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--runs", type=int, default=10, help="timed runs per round and engine")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1, help="of the random s1..s4 weights")
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--c-kernels", action="store_true",
                    help="C reference kernels only (mo_set_cpu_flags_mask(0))")
    ap.add_argument("--tol", type=float, default=REL_TOL,
                    help="relative tolerance of the output checks (see above)")
    ap.add_argument("--no-pin", action="store_true",
                    help="leave both engines' processes to the scheduler (see step 6)")
    ap.add_argument("--json", default=os.path.join(OUT, "bench.json"))
    args = ap.parse_args(argv)
    set_tolerance(args.tol)
    global PIN
    PIN = not args.no_pin
    threads = [int(t) for t in args.threads.split(",") if t]
    t_start = time.time()

    os.makedirs(os.path.join(OUT, "res"), exist_ok=True)
    ensure_ort()
    exe, app = build_c(args.build)
    rows = build_rows(args, exe, args.build)
    if not rows:
        sys.exit("no rows")
    peak_model = head_backbone(args.build, args.seed) or make_model("s1", args.seed)
    load_before = loadavg()
    peaks = [fma_peak(app, peak_model)]
    time_rows(rows, args, threads)
    peaks.append(fma_peak(app, peak_model))
    peak = max(peaks)
    bases = [res.get("o_base_rss_kb", 0) for r in rows for res in r.results.values()]
    meta = {"cpu": cpu_name(), "load_before": load_before, "load_after": loadavg(),
            "ort_base_mb": max(bases) / 1024 if bases else 0.0}
    report(rows, args, threads, peak, meta)

    doc = {"onnxruntime_node": ORT_VERSION, "opset": OPSET, "cpu": meta["cpu"],
           "cpus": os.cpu_count(), "load_before": load_before, "load_after": meta["load_after"],
           "fma_peak_gflops_per_thread": peaks, "rounds": args.rounds, "runs": args.runs,
           "warmup": args.warmup, "c_kernels": args.c_kernels, "tolerance_rel": REL_TOL,
           "pinned": PIN, "commit": git_commit(),
           "command": " ".join([os.path.relpath(sys.argv[0], ROOT)] + sys.argv[1:]),
           "seconds": round(time.time() - t_start, 1),
           "rows": [{"key": r.key, "title": r.title, "checked": r.check_ok, "notes": r.notes,
                     "ort_times_from": r.ort_from,
                     "threads": {str(t): v for t, v in r.results.items()}} for r in rows]}
    os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
    with open(args.json, "w") as f:
        json.dump(doc, f, indent=1)
    log("JSON: %s (%.0f s)" % (args.json, time.time() - t_start))
    return 0


if __name__ == "__main__":
    sys.exit(main())
