#!/usr/bin/python3
"""Run a float TF-Lite model in PyTorch, with TF-Lite's own op semantics.

Why this exists: the segmentation teacher of issue 7 (DeepLabV3-MobileNetV2, VOC, in
../shared/teachers/deeplabv3_mnv2_voc_tflite) ships only as a .tflite flatbuffer and no
TF-Lite runtime is packaged for Debian 12. This tool reads the flatbuffer with the
`flatbuffers` runtime (python3-flatbuffers) through a few accessors of its own for the
TF-Lite schema tables it needs (Model, SubGraph, Tensor, Buffer, Operator, OperatorCode
and the builtin options of the ops below), and maps every operator to PyTorch:

  CONV_2D, DEPTHWISE_CONV_2D   SAME padding as TF computes it (the odd pixel of the total
                               padding goes after: bottom/right), dilation, stride,
                               fused activation (NONE, RELU, RELU_N1_TO_1, RELU6, TANH)
  AVERAGE_POOL_2D, MAX_POOL_2D SAME padding with the padded cells left out of the average
                               (TF-Lite counts only in-image cells)
  ADD, MUL, SUB                with fused activation, broadcasting on NHWC shapes
  CONCATENATION                on any axis (NHWC axis numbering)
  RESIZE_BILINEAR              the three TF samplings: align_corners, half_pixel_centers,
                               and the legacy one (src = dst * in/out, no offset)
  RESHAPE, SOFTMAX, LOGISTIC, RELU, RELU6, PAD, MEAN, ARG_MAX

Activations are kept NCHW inside (4-D tensors); the public interface is NHWC like
TF-Lite's. `check` verifies the resize and SAME-padding mappings against direct
implementations of TF's formulas.

Command line:
  tflite_runner.py dump [MODEL.tflite] [-v]        tensors, ops and options
  tflite_runner.py check                           self checks of the op semantics
  tflite_runner.py voc [MODEL.tflite] [--coco-val] DeepLab teacher on the VOC samples
                                                   (and on coco-mini val2017 masks)
  tflite_runner.py targets [--out DIR] [--teacher] label PNGs for `mo-eval seg`: the VOC
                                                   samples' real targets and coco-mini
                                                   val2017 rasterized as `voc --coco-val`
                                                   does (optionally the teacher's argmax)
"""

import argparse
import json
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

import flatbuffers
from flatbuffers import number_types as NT

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

# --- TF-Lite schema: the enum values and table field numbers this reader uses -------------

TENSOR_TYPES = {0: np.float32, 1: np.float16, 2: np.int32, 3: np.uint8, 4: np.int64,
                6: np.bool_, 7: np.int16, 9: np.int8, 10: np.float64}
OPS = {0: "ADD", 1: "AVERAGE_POOL_2D", 2: "CONCATENATION", 3: "CONV_2D",
       4: "DEPTHWISE_CONV_2D", 5: "DEPTH_TO_SPACE", 6: "DEQUANTIZE", 9: "FULLY_CONNECTED",
       14: "LOGISTIC", 17: "MAX_POOL_2D", 18: "MUL", 19: "RELU", 20: "RELU_N1_TO_1",
       21: "RELU6", 22: "RESHAPE", 23: "RESIZE_BILINEAR", 25: "SOFTMAX", 28: "TANH",
       32: "CUSTOM", 34: "PAD", 39: "TRANSPOSE", 40: "MEAN", 41: "SUB", 43: "SQUEEZE",
       56: "ARG_MAX"}
ACTIVATIONS = {0: None, 1: "RELU", 2: "RELU_N1_TO_1", 3: "RELU6", 4: "TANH"}
PADDING = {0: "SAME", 1: "VALID"}

# Per op: expected BuiltinOptions union type and the option fields as
# (name, field id, kind, default). Kinds: b = uint8/bool, i = int32, f = float32,
# iv = vector of int32.
_B, _I, _F, _IV = "b", "i", "f", "iv"
OPTIONS = {
    "CONV_2D": (1, [("padding", 0, _B, 0), ("stride_w", 1, _I, 0), ("stride_h", 2, _I, 0),
                    ("activation", 3, _B, 0), ("dilation_w", 4, _I, 1),
                    ("dilation_h", 5, _I, 1)]),
    "DEPTHWISE_CONV_2D": (2, [("padding", 0, _B, 0), ("stride_w", 1, _I, 0),
                              ("stride_h", 2, _I, 0), ("depth_multiplier", 3, _I, 0),
                              ("activation", 4, _B, 0), ("dilation_w", 5, _I, 1),
                              ("dilation_h", 6, _I, 1)]),
    "AVERAGE_POOL_2D": (5, [("padding", 0, _B, 0), ("stride_w", 1, _I, 0),
                            ("stride_h", 2, _I, 0), ("filter_w", 3, _I, 0),
                            ("filter_h", 4, _I, 0), ("activation", 5, _B, 0)]),
    "SOFTMAX": (9, [("beta", 0, _F, 0.0)]),
    "CONCATENATION": (10, [("axis", 0, _I, 0), ("activation", 1, _B, 0)]),
    "ADD": (11, [("activation", 0, _B, 0)]),
    "RESIZE_BILINEAR": (15, [("align_corners", 2, _B, 0), ("half_pixel_centers", 3, _B, 0)]),
    "RESHAPE": (17, [("new_shape", 0, _IV, None)]),
    "MUL": (21, [("activation", 0, _B, 0)]),
    "PAD": (22, []),
    "MEAN": (27, [("keep_dims", 0, _B, 0)]),
    "SUB": (28, [("activation", 0, _B, 0)]),
    "ARG_MAX": (40, [("output_type", 0, _B, 0)]),
}
OPTIONS["MAX_POOL_2D"] = OPTIONS["AVERAGE_POOL_2D"]


class _Table:
    """A flatbuffer table: field numbers in, Python values out (None when absent)."""

    def __init__(self, buf, pos):
        self.t = flatbuffers.table.Table(buf, pos)

    def _slot(self, field):
        return self.t.Offset(4 + 2 * field)

    def scalar(self, field, flags, default):
        o = self._slot(field)
        return self.t.Get(flags, self.t.Pos + o) if o else default

    def u8(self, field, default=0):
        return self.scalar(field, NT.Uint8Flags, default)

    def i8(self, field, default=0):
        return self.scalar(field, NT.Int8Flags, default)

    def i32(self, field, default=0):
        return self.scalar(field, NT.Int32Flags, default)

    def u32(self, field, default=0):
        return self.scalar(field, NT.Uint32Flags, default)

    def u64(self, field, default=0):
        return self.scalar(field, NT.Uint64Flags, default)

    def f32(self, field, default=0.0):
        return self.scalar(field, NT.Float32Flags, default)

    def string(self, field):
        o = self._slot(field)
        return self.t.String(self.t.Pos + o).decode("utf-8") if o else None

    def table(self, field):
        o = self._slot(field)
        return _Table(self.t.Bytes, self.t.Indirect(self.t.Pos + o)) if o else None

    def tables(self, field):
        o = self._slot(field)
        if not o:
            return []
        n, start = self.t.VectorLen(o), self.t.Vector(o)
        return [_Table(self.t.Bytes, self.t.Indirect(start + 4 * i)) for i in range(n)]

    def array(self, field, flags):
        o = self._slot(field)
        if not o:
            return None
        return self.t.GetVectorAsNumpy(flags, o)


class Model:
    """The parts of a .tflite file needed to run its first subgraph.

    tensors: list of dicts (name, shape, dtype, data: numpy array or None);
    ops: list of dicts (op, inputs, outputs, options); inputs / outputs: tensor indices.
    """

    def __init__(self, path):
        with open(path, "rb") as f:
            buf = bytearray(f.read())
        if buf[4:8] != b"TFL3":
            raise ValueError("%s: not a TF-Lite flatbuffer (identifier %r)" % (path, bytes(buf[4:8])))
        root = _Table(buf, flatbuffers.encode.Get(NT.UOffsetTFlags.packer_type, buf, 0))
        self.version = root.u32(0)
        self.description = root.string(3)
        codes = []
        for oc in root.tables(1):
            code = max(oc.i8(0), oc.i32(3))  # deprecated_builtin_code, builtin_code
            codes.append(OPS.get(code, "BUILTIN_%d" % code) if code != 32
                         else "CUSTOM:" + (oc.string(1) or ""))
        buffers = []
        for b in root.tables(4):
            if b.u64(1) or b.u64(2):
                raise ValueError("buffers stored outside the flatbuffer are not supported")
            d = b.array(0, NT.Uint8Flags)
            buffers.append(None if d is None or len(d) == 0 else bytes(d))
        subgraphs = root.tables(2)
        if len(subgraphs) != 1:
            raise ValueError("%d subgraphs; this runner handles one" % len(subgraphs))
        sg = subgraphs[0]
        self.tensors = []
        for t in sg.tables(0):
            shape = t.array(0, NT.Int32Flags)
            shape = [] if shape is None else [int(s) for s in shape]
            ttype = t.u8(1)
            if ttype not in TENSOR_TYPES:
                raise ValueError("tensor type %d not supported" % ttype)
            dtype = TENSOR_TYPES[ttype]
            q = t.table(4)  # QuantizationParameters: field 2 = scale
            if dtype not in (np.float32, np.float16, np.int32, np.int64) and q is not None \
                    and q.array(2, NT.Float32Flags) is not None:
                raise ValueError("quantized tensor %s: float models only" % t.string(3))
            raw = buffers[t.u32(2)] if t.u32(2) < len(buffers) else None
            data = None
            if raw is not None:
                data = np.frombuffer(raw, dtype=dtype).reshape(shape).copy()
            self.tensors.append({"name": t.string(3), "shape": shape, "dtype": dtype,
                                 "data": data})
        self.inputs = [int(i) for i in sg.array(1, NT.Int32Flags)]
        self.outputs = [int(i) for i in sg.array(2, NT.Int32Flags)]
        self.ops = []
        for o in sg.tables(3):
            name = codes[o.u32(0)]
            ins = o.array(1, NT.Int32Flags)
            outs = o.array(2, NT.Int32Flags)
            self.ops.append({"op": name, "inputs": [int(i) for i in ins],
                             "outputs": [int(i) for i in outs],
                             "options": _options(name, o)})

    def op_counts(self):
        counts = {}
        for o in self.ops:
            counts[o["op"]] = counts.get(o["op"], 0) + 1
        return counts


def _options(name, op):
    """Builtin options of `op` (table field 4, union type in field 3) as a dict."""
    if name not in OPTIONS:
        return {}
    want, fields = OPTIONS[name]
    kind = op.u8(3)
    tab = op.table(4)
    if tab is None:
        vals = {n: d for n, _, _, d in fields}
    else:
        if kind != want:
            raise ValueError("%s with options type %d (expected %d)" % (name, kind, want))
        vals = {}
        for n, fid, k, d in fields:
            if k == _B:
                vals[n] = tab.u8(fid, d)
            elif k == _I:
                vals[n] = tab.i32(fid, d)
            elif k == _F:
                vals[n] = tab.f32(fid, d)
            else:
                a = tab.array(fid, NT.Int32Flags)
                vals[n] = d if a is None else [int(x) for x in a]
    if "activation" in vals:
        if vals["activation"] not in ACTIVATIONS:
            raise ValueError("%s: fused activation %d not supported" % (name, vals["activation"]))
        vals["activation"] = ACTIVATIONS[vals["activation"]]
    if "padding" in vals:
        vals["padding"] = PADDING[vals["padding"]]
    for b in ("align_corners", "half_pixel_centers", "keep_dims"):
        if b in vals:
            vals[b] = bool(vals[b])
    return vals


# --- op semantics ------------------------------------------------------------------------

def activation(x, act):
    if act is None:
        return x
    if act == "RELU":
        return F.relu(x)
    if act == "RELU6":
        return x.clamp(0.0, 6.0)
    if act == "RELU_N1_TO_1":
        return x.clamp(-1.0, 1.0)
    if act == "TANH":
        return torch.tanh(x)
    raise ValueError(act)


def same_pads(size, kernel, stride, dilation):
    """(before, after) padding of TF's SAME along one axis: the output is ceil(in/stride),
    the total padding is split with the extra pixel after."""
    out = -(-size // stride)
    eff = (kernel - 1) * dilation + 1
    total = max((out - 1) * stride + eff - size, 0)
    return total // 2, total - total // 2


def _pad_nchw(x, kh, kw, sh, sw, dh, dw, padding):
    if padding == "VALID":
        return x
    t, b = same_pads(x.shape[2], kh, sh, dh)
    l, r = same_pads(x.shape[3], kw, sw, dw)
    if t or b or l or r:
        x = F.pad(x, (l, r, t, b))
    return x


def conv2d(x, w_ohwi, bias, o):
    """CONV_2D: x NCHW, filter [out, kh, kw, in] as stored by TF-Lite."""
    w = torch.from_numpy(w_ohwi).permute(0, 3, 1, 2).contiguous()
    kh, kw = w.shape[2], w.shape[3]
    x = _pad_nchw(x, kh, kw, o["stride_h"], o["stride_w"], o["dilation_h"], o["dilation_w"],
                  o["padding"])
    b = None if bias is None else torch.from_numpy(bias)
    y = F.conv2d(x, w, b, stride=(o["stride_h"], o["stride_w"]),
                 dilation=(o["dilation_h"], o["dilation_w"]))
    return activation(y, o["activation"])


def depthwise_conv2d(x, w_1hwc, bias, o):
    """DEPTHWISE_CONV_2D: filter [1, kh, kw, in*multiplier]; output channel c*m+j reads
    input channel c (PyTorch's grouped-conv order, groups = in)."""
    cin = x.shape[1]
    w = torch.from_numpy(w_1hwc)[0].permute(2, 0, 1).unsqueeze(1).contiguous()
    if w.shape[0] != cin * max(o["depth_multiplier"], 1):
        raise ValueError("depthwise filter %s for %d input channels" % (list(w.shape), cin))
    kh, kw = w.shape[2], w.shape[3]
    x = _pad_nchw(x, kh, kw, o["stride_h"], o["stride_w"], o["dilation_h"], o["dilation_w"],
                  o["padding"])
    b = None if bias is None else torch.from_numpy(bias)
    y = F.conv2d(x, w, b, stride=(o["stride_h"], o["stride_w"]),
                 dilation=(o["dilation_h"], o["dilation_w"]), groups=cin)
    return activation(y, o["activation"])


def pool2d(x, o, kind):
    kh, kw, sh, sw = o["filter_h"], o["filter_w"], o["stride_h"], o["stride_w"]
    if o["padding"] == "VALID":
        y = (F.avg_pool2d if kind == "avg" else F.max_pool2d)(x, (kh, kw), (sh, sw))
    else:
        t, b = same_pads(x.shape[2], kh, sh, 1)
        l, r = same_pads(x.shape[3], kw, sw, 1)
        if kind == "max":
            y = F.max_pool2d(F.pad(x, (l, r, t, b), value=float("-inf")), (kh, kw), (sh, sw))
        else:  # average over the cells inside the image only
            s = F.avg_pool2d(F.pad(x, (l, r, t, b)), (kh, kw), (sh, sw), divisor_override=1)
            ones = F.pad(torch.ones_like(x[:1, :1]), (l, r, t, b))
            n = F.avg_pool2d(ones, (kh, kw), (sh, sw), divisor_override=1)
            y = s / n
    return activation(y, o["activation"])


def _resize_coords(out, inp, align_corners, half_pixel):
    """Lower / upper source index and weight of TF-Lite's bilinear resize along one axis
    (scale and coordinates in float32 as its kernel computes them)."""
    if align_corners and out > 1:
        scale = np.float32(inp - 1) / np.float32(out - 1)
    else:
        scale = np.float32(inp) / np.float32(out)
    d = np.arange(out, dtype=np.float32)
    src = (d + np.float32(0.5)) * scale - np.float32(0.5) if half_pixel else d * scale
    lo = np.maximum(np.floor(src), 0).astype(np.int64)
    hi = np.minimum(np.ceil(src), inp - 1).astype(np.int64)
    w = (src - lo).astype(np.float32)
    return torch.from_numpy(lo), torch.from_numpy(hi), torch.from_numpy(w)


def resize_bilinear(x, size, align_corners=False, half_pixel_centers=False):
    """RESIZE_BILINEAR on NCHW `x` to `size` = (h, w): out = (1-wy)*((1-wx)*a + wx*b) + ..."""
    oh, ow = int(size[0]), int(size[1])
    y0, y1, wy = _resize_coords(oh, x.shape[2], align_corners, half_pixel_centers)
    x0, x1, wx = _resize_coords(ow, x.shape[3], align_corners, half_pixel_centers)
    top = x[:, :, y0]
    bot = x[:, :, y1]
    wy = wy.view(1, 1, -1, 1)
    wx = wx.view(1, 1, 1, -1)
    tl, tr = top[..., x0], top[..., x1]
    bl, br = bot[..., x0], bot[..., x1]
    t = tl + (tr - tl) * wx
    b = bl + (br - bl) * wx
    return t + (b - t) * wy


# NHWC axis -> NCHW axis for 4-D tensors
_NHWC_TO_NCHW = {0: 0, 1: 2, 2: 3, 3: 1}


def _nchw(a):
    """A constant numpy tensor in the runner's internal layout (4-D: NHWC -> NCHW)."""
    t = torch.from_numpy(np.ascontiguousarray(a))
    if t.dim() == 4:
        t = t.permute(0, 3, 1, 2)
    return t


def _broadcastable(a, b):
    """Binary-op operands in internal layout; a rank-1 / rank-3 NHWC operand against a
    4-D NCHW one is reshaped to broadcast on channels (TF broadcasting on the last axes)."""
    def fix(t, other):
        if other.dim() == 4 and t.dim() < 4:
            nhwc = t.reshape((1,) * (4 - t.dim()) + tuple(t.shape))
            return nhwc.permute(0, 3, 1, 2)
        return t
    return fix(a, b), fix(b, a)


class Interpreter:
    """Runs a parsed Model on float32 NHWC inputs; returns NHWC outputs."""

    def __init__(self, model):
        self.m = model

    def const(self, i):
        return None if i < 0 else self.m.tensors[i]["data"]

    def run(self, *inputs, keep=()):
        """inputs: NHWC float arrays / tensors. keep: tensor indices to return as well."""
        m = self.m
        vals = {}
        for idx, x in zip(m.inputs, inputs):
            x = torch.as_tensor(x, dtype=torch.float32)
            if list(x.shape[1:]) != m.tensors[idx]["shape"][1:]:
                raise ValueError("input %s: shape %s, model wants %s" % (
                    m.tensors[idx]["name"], list(x.shape), m.tensors[idx]["shape"]))
            vals[idx] = x.permute(0, 3, 1, 2) if x.dim() == 4 else x

        def get(i):
            if i in vals:
                return vals[i]
            d = m.tensors[i]["data"]
            if d is None:
                raise ValueError("tensor %d (%s) used before it is computed" % (i, m.tensors[i]["name"]))
            return _nchw(d.astype(np.float32) if d.dtype == np.float16 else d)

        with torch.no_grad():
            for op in m.ops:
                name, o, ins = op["op"], op["options"], op["inputs"]
                if name == "CONV_2D":
                    y = conv2d(get(ins[0]), self.const(ins[1]), self.const(ins[2]) if len(ins) > 2 else None, o)
                elif name == "DEPTHWISE_CONV_2D":
                    y = depthwise_conv2d(get(ins[0]), self.const(ins[1]), self.const(ins[2]) if len(ins) > 2 else None, o)
                elif name == "AVERAGE_POOL_2D":
                    y = pool2d(get(ins[0]), o, "avg")
                elif name == "MAX_POOL_2D":
                    y = pool2d(get(ins[0]), o, "max")
                elif name in ("ADD", "MUL", "SUB"):
                    a, b = _broadcastable(get(ins[0]), get(ins[1]))
                    y = {"ADD": torch.add, "MUL": torch.mul, "SUB": torch.sub}[name](a, b)
                    y = activation(y, o["activation"])
                elif name == "CONCATENATION":
                    xs = [get(i) for i in ins]
                    ax = o["axis"] % xs[0].dim()
                    if xs[0].dim() == 4:
                        ax = _NHWC_TO_NCHW[ax]
                    y = activation(torch.cat(xs, ax), o["activation"])
                elif name == "RESIZE_BILINEAR":
                    size = self.const(ins[1])
                    if size is None:
                        size = get(ins[1]).numpy()
                    y = resize_bilinear(get(ins[0]), size, o["align_corners"],
                                        o["half_pixel_centers"])
                elif name == "RESHAPE":
                    x = get(ins[0])
                    shape = o.get("new_shape")
                    if len(ins) > 1 and self.const(ins[1]) is not None:
                        shape = [int(s) for s in self.const(ins[1])]
                    if x.dim() == 4:
                        x = x.permute(0, 2, 3, 1)
                    y = x.reshape(shape)
                    if y.dim() == 4:
                        y = y.permute(0, 3, 1, 2)
                elif name == "SOFTMAX":
                    x = get(ins[0])
                    y = torch.softmax(x * o["beta"], 1 if x.dim() == 4 else -1)
                elif name == "LOGISTIC":
                    y = torch.sigmoid(get(ins[0]))
                elif name in ("RELU", "RELU6", "RELU_N1_TO_1", "TANH"):
                    y = activation(get(ins[0]), name)
                elif name == "PAD":
                    x = get(ins[0])
                    p = self.const(ins[1])  # [[before, after]] per NHWC axis
                    if x.dim() == 4:
                        p = p[[0, 3, 1, 2]]
                    y = F.pad(x, [int(v) for pair in p[::-1] for v in pair])
                elif name == "MEAN":
                    x = get(ins[0])
                    axes = [int(a) % 4 for a in np.atleast_1d(self.const(ins[1]))]
                    y = x.mean(dim=[_NHWC_TO_NCHW[a] for a in axes], keepdim=True)
                    if not o.get("keep_dims", False):
                        raise ValueError("MEAN without keep_dims is not supported")
                elif name == "ARG_MAX":
                    x = get(ins[0])
                    ax = int(np.atleast_1d(self.const(ins[1]))[0]) % 4
                    y = x.argmax(_NHWC_TO_NCHW[ax]).to(torch.int64)
                    vals[op["outputs"][0]] = y  # already NHW, no channel axis
                    continue
                else:
                    raise NotImplementedError("op %s" % name)
                vals[op["outputs"][0]] = y
        out = []
        for idx in list(m.outputs) + list(keep):
            v = vals[idx]
            out.append(v.permute(0, 2, 3, 1) if v.dim() == 4 else v)
        return out


# --- self checks -------------------------------------------------------------------------

def _check():
    """Resize and SAME padding against literal implementations of TF's formulas."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, 3, 5, 7, generator=g)
    bad = 0
    # align_corners / half-pixel are PyTorch's align_corners True / False
    for size in ((9, 13), (17, 17), (3, 4)):
        a = resize_bilinear(x, size, align_corners=True)
        b = F.interpolate(x, size=size, mode="bilinear", align_corners=True)
        c = resize_bilinear(x, size, half_pixel_centers=True)
        d = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
        e1, e2 = (a - b).abs().max().item(), (c - d).abs().max().item()
        print("resize %s: align_corners vs torch %.2g, half_pixel vs torch %.2g" % (size, e1, e2))
        bad += e1 > 1e-5 or e2 > 1e-5
    # legacy sampling, literal loop
    xs = x[0, 0].numpy()
    size = (8, 11)
    r = resize_bilinear(x, size)[0, 0].numpy()
    sy, sx = np.float32(5) / np.float32(8), np.float32(7) / np.float32(11)
    ref = np.zeros(size, np.float32)
    for i in range(size[0]):
        for j in range(size[1]):
            fy, fx = i * sy, j * sx
            y0, x0 = int(np.floor(fy)), int(np.floor(fx))
            y1, x1 = min(y0 + 1, 4), min(x0 + 1, 6)
            dy, dx = fy - y0, fx - x0
            ref[i, j] = (xs[y0, x0] * (1 - dy) * (1 - dx) + xs[y0, x1] * (1 - dy) * dx
                         + xs[y1, x0] * dy * (1 - dx) + xs[y1, x1] * dy * dx)
    e = np.abs(ref - r).max()
    print("resize legacy (no flags) vs literal loop: %.2g" % e)
    bad += e > 1e-5
    # SAME padding: 3x3 stride 2 on 8 pixels pads (0, 1); stride 1 dilation 2 pads (2, 2)
    cases = [((8, 3, 2, 1), (0, 1)), ((7, 3, 2, 1), (1, 1)), ((9, 3, 1, 2), (2, 2)),
             ((33, 1, 1, 1), (0, 0)), ((257, 3, 2, 1), (1, 1))]
    for args, want in cases:
        got = same_pads(*args)
        print("SAME pads in=%d k=%d s=%d d=%d: %s" % (args + (got,)))
        bad += got != want
    # SAME average pool ignores padded cells: 3x3 s1 on ones is all ones
    o = {"filter_h": 3, "filter_w": 3, "stride_h": 1, "stride_w": 1, "padding": "SAME",
         "activation": None}
    p = pool2d(torch.ones(1, 2, 4, 5), o, "avg")
    print("SAME avg pool of ones: min %.3g max %.3g" % (p.min().item(), p.max().item()))
    bad += abs(p.min().item() - 1) > 1e-6
    print("FAILED" if bad else "all checks passed")
    return 1 if bad else 0


# --- the DeepLab teacher -------------------------------------------------------------------

VOC_CLASSES = ("background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car",
               "cat", "chair", "cow", "diningtable", "dog", "horse", "motorbike", "person",
               "pottedplant", "sheep", "sofa", "train", "tvmonitor")


def voc_palette():
    """The Pascal VOC colour map: 256 RGB entries, bit-interleaved from the class index."""
    pal = np.zeros((256, 3), np.uint8)
    for i in range(256):
        c, r, g, b = i, 0, 0, 0
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        pal[i] = (r, g, b)
    return pal


def read_voc_target(path):
    """[H, W] uint8 class map (255 = ignore) of a VOC target, palette-indexed or RGB."""
    from PIL import Image
    with Image.open(path) as im:
        if im.mode == "P":
            return np.array(im)
        rgb = np.array(im.convert("RGB")).astype(np.int32)
    key = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
    pal = voc_palette().astype(np.int32)
    lut = {int((p[0] << 16) | (p[1] << 8) | p[2]): i for i, p in enumerate(pal)
           if i < 21 or i == 255}
    out = np.full(key.shape, 255, np.uint8)
    unknown = np.ones(key.shape, bool)
    for k, cls in lut.items():
        sel = key == k
        out[sel] = cls
        unknown &= ~sel
    if unknown.any():
        raise ValueError("%s: %d pixels with colours outside the VOC palette" % (path, unknown.sum()))
    return out


class DeepLabTeacher:
    """The TF-Lite DeepLabV3 as a per-image segmenter.

    Preprocessing as the model expects: RGB, (x - 127.5) / 127.5, 257x257. `mode`
    "letterbox" keeps the aspect ratio (longer side 257, the rest padded with 127.5, i.e.
    zero after normalization, as DeepLab pads with the mean pixel), "stretch" resizes the
    whole image to 257x257. The image is resized with bilinear align_corners=True (DeepLab's
    own input resizing); class probabilities are taken back to the image size with bilinear
    align_corners=True on the logits. `flip` averages the probabilities with those of the
    mirrored image.
    """

    SIZE = 257

    def __init__(self, path, mode="letterbox", flip=False):
        self.model = Model(path)
        self.run_ = Interpreter(self.model)
        shp = self.model.tensors[self.model.inputs[0]]["shape"]
        self.size = shp[1]
        self.mode = mode
        self.flip = flip

    def _net(self, x):
        return self.run_.run(x.permute(0, 2, 3, 1))[0].permute(0, 3, 1, 2)

    def probs(self, rgb, out_size=None):
        """[21, H, W] float32 class probabilities of an [H, W, 3] uint8 RGB image (or at
        `out_size` = (H', W'), the same frame at another resolution)."""
        h, w = rgb.shape[:2]
        s = self.size
        img = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None].float()
        if self.mode == "stretch":
            th, tw = s, s
        else:
            r = s / max(h, w)
            th, tw = max(1, int(round(h * r))), max(1, int(round(w * r)))
        x = F.interpolate(img, size=(th, tw), mode="bilinear", align_corners=True)
        x = (x - 127.5) / 127.5
        x = F.pad(x, (0, s - tw, 0, s - th))  # zero = the mean pixel after normalization
        p = torch.softmax(self._net(x), 1)
        if self.flip:
            # the mirrored image, padded on its right like the original: mirror its
            # valid columns back before averaging
            pf = torch.softmax(self._net(F.pad(torch.flip(x[..., :tw], [3]), (0, s - tw))), 1)
            p = 0.5 * (p[..., :tw] + torch.flip(pf[..., :tw], [3]))
        # the output grid is the input grid (257 x 257): crop the valid region and map it
        # back to the image size in the same align_corners frame
        p = p[..., :th, :tw]
        return F.interpolate(p, size=tuple(out_size or (h, w)), mode="bilinear",
                             align_corners=True)[0]


def confusion(pred, gt, k=21):
    sel = gt != 255
    return np.bincount(k * gt[sel].astype(np.int64) + pred[sel].astype(np.int64),
                       minlength=k * k).reshape(k, k)


def seg_metrics(conf):
    """Pixel accuracy, mIoU over classes present (in GT or prediction), per-class IoU
    (REFERENCE.md section 4)."""
    diag = np.diag(conf).astype(np.float64)
    union = conf.sum(0) + conf.sum(1) - diag
    present = union > 0
    iou = np.where(present, diag / np.maximum(union, 1), np.nan)
    return {"pixel_acc": float(diag.sum() / max(conf.sum(), 1)),
            "miou": float(np.nanmean(iou)) if present.any() else float("nan"),
            "iou": {VOC_CLASSES[i]: round(float(iou[i]), 4) for i in range(len(iou)) if present[i]}}


# COCO category id -> VOC class index (the 20 VOC classes all exist in COCO)
COCO_TO_VOC = {5: 1, 2: 2, 16: 3, 9: 4, 44: 5, 6: 6, 3: 7, 17: 8, 62: 9, 21: 10, 67: 11,
               18: 12, 19: 13, 4: 14, 1: 15, 64: 16, 20: 17, 63: 18, 7: 19, 72: 20}


def coco_voc_target(coco, img_id, boundary=3):
    """VOC-style [H, W] target rasterized from COCO instance masks: VOC classes painted
    (larger instances first, so smaller ones stay on top), other COCO objects and
    unlabelled pixels are background, crowd regions and a `boundary`-pixel band along
    every instance outline are 255 (VOC's own targets ignore object boundaries)."""
    info = coco.loadImgs(img_id)[0]
    h, w = info["height"], info["width"]
    out = np.zeros((h, w), np.uint8)
    ign = np.zeros((h, w), bool)
    anns = sorted(coco.loadAnns(coco.getAnnIds(imgIds=img_id, iscrowd=None)),
                  key=lambda a: -a["area"])
    k = 2 * boundary + 1
    for a in anns:
        m = coco.annToMask(a).astype(bool)
        if a.get("iscrowd"):
            ign |= m
            continue
        out[m] = COCO_TO_VOC.get(a["category_id"], 0)
        ys, xs = np.nonzero(m)
        if boundary and len(ys):
            # outline band = dilation minus erosion, computed on the mask's box only
            y0, y1 = max(ys.min() - boundary, 0), min(ys.max() + boundary + 1, h)
            x0, x1 = max(xs.min() - boundary, 0), min(xs.max() + boundary + 1, w)
            mt = torch.from_numpy(m[None, None, y0:y1, x0:x1].astype(np.float32))
            dil = F.max_pool2d(mt, k, 1, boundary)
            ero = -F.max_pool2d(-mt, k, 1, boundary)
            ign[y0:y1, x0:x1] |= ((dil - ero)[0, 0] > 0).numpy()
    out[ign] = 255
    return out


def load_rgb(path):
    from PIL import Image
    with Image.open(path) as im:
        return np.array(im.convert("RGB"))


def _cmd_voc(a):
    t0 = time.time()
    teacher = DeepLabTeacher(a.model, mode=a.mode, flip=a.flip)
    print("parsed %s: %d tensors, %d ops in %.2f s" % (a.model, len(teacher.model.tensors),
                                                      len(teacher.model.ops), time.time() - t0))
    report = {}
    voc = os.path.join(a.shared, "data", "voc2012-val-samples")
    conf = np.zeros((21, 21), np.int64)
    t0 = time.time()
    names = sorted(n[:-len("_image.png")] for n in os.listdir(voc) if n.endswith("_image.png"))
    for n in names:
        rgb = load_rgb(os.path.join(voc, n + "_image.png"))
        gt = read_voc_target(os.path.join(voc, n + "_target.png"))
        pred = teacher.probs(rgb).argmax(0).numpy()
        c = confusion(pred, gt)
        conf += c
        m = seg_metrics(c)
        print("VOC %-4s %dx%d: pixel acc %.4f, mIoU %.4f  %s" % (
            n, rgb.shape[1], rgb.shape[0], m["pixel_acc"], m["miou"], m["iou"]))
    m = seg_metrics(conf)
    print("VOC samples (%d images, one confusion matrix): pixel acc %.4f, mIoU %.4f (%.2f s)"
          % (len(names), m["pixel_acc"], m["miou"], time.time() - t0))
    report["voc_samples"] = m
    if a.coco_val:
        sys.path.insert(0, a.pycocotools)
        from pycocotools.coco import COCO
        import contextlib
        import io
        with contextlib.redirect_stdout(io.StringIO()):
            coco = COCO(os.path.join(a.shared, "data", "coco-mini", "annotations",
                                     "instances_val2017.json"))
        conf = np.zeros((21, 21), np.int64)
        t0 = time.time()
        ids = sorted(coco.getImgIds())
        for i in ids:
            info = coco.loadImgs(i)[0]
            p = os.path.join(a.shared, "data", "coco-mini", "val2017", info["file_name"])
            if not os.path.exists(p):
                continue
            gt = coco_voc_target(coco, i)
            pred = teacher.probs(load_rgb(p)).argmax(0).numpy()
            conf += confusion(pred, gt)
        m = seg_metrics(conf)
        print("coco-mini val2017 (%d images, VOC classes rasterized from COCO masks): "
              "pixel acc %.4f, mIoU %.4f (%.1f s)" % (len(ids), m["pixel_acc"], m["miou"],
                                                      time.time() - t0))
        print("  per class IoU:", m["iou"])
        report["coco_val_voc"] = m
    if a.json:
        with open(a.json, "w") as f:
            json.dump(report, f, indent=1)
    return 0


def write_label_png(path, lab):
    """Indexed PNG in the VOC palette: the pixel values are the labels (255 = ignore)."""
    from PIL import Image
    im = Image.fromarray(np.ascontiguousarray(lab, dtype=np.uint8), mode="P")
    im.putpalette(voc_palette().astype(np.uint8).reshape(-1).tolist())
    im.save(path)


def _cmd_targets(a):
    """Label maps for the C evaluator (`mo-eval seg --gt DIR --pred DIR`), named by the
    image's file name without extension (what `mo-segment --mask-suffix ''` writes):
      OUT/gt-voc/NAME.png    the VOC samples' real targets (NAME = 1_image, ...)
      OUT/gt-coco/NAME.png   coco-mini val2017, coco_voc_target() exactly as `voc
                             --coco-val` scores the teacher (3-px outline band and crowd
                             = 255, other COCO classes = background)
    With --teacher also OUT/teacher-voc/ and OUT/teacher-coco/: the teacher's argmax
    (letterbox), to check that mo-eval reproduces the teacher's numbers on these files."""
    sys.path.insert(0, a.pycocotools)
    from pycocotools.coco import COCO
    import contextlib
    import io
    t0 = time.time()
    teacher = DeepLabTeacher(a.model) if a.teacher else None
    jobs = []
    voc = os.path.join(a.shared, "data", "voc2012-val-samples")
    for n in sorted(n[:-len("_image.png")] for n in os.listdir(voc) if n.endswith("_image.png")):
        jobs.append(("voc", n + "_image", os.path.join(voc, n + "_image.png"),
                     lambda n=n: read_voc_target(os.path.join(voc, n + "_target.png"))))
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO(os.path.join(a.shared, "data", "coco-mini", "annotations",
                                 "instances_val2017.json"))
    for i in sorted(coco.getImgIds()):
        info = coco.loadImgs(i)[0]
        p = os.path.join(a.shared, "data", "coco-mini", "val2017", info["file_name"])
        if os.path.exists(p):
            jobs.append(("coco", os.path.splitext(info["file_name"])[0], p,
                         lambda i=i: coco_voc_target(coco, i)))
    counts = {}
    for kind, name, img, target in jobs:
        for d in ["gt-" + kind] + (["teacher-" + kind] if teacher else []):
            os.makedirs(os.path.join(a.out, d), exist_ok=True)
        gt = target()
        write_label_png(os.path.join(a.out, "gt-" + kind, name + ".png"), gt)
        if teacher:
            pred = teacher.probs(load_rgb(img)).argmax(0).numpy().astype(np.uint8)
            write_label_png(os.path.join(a.out, "teacher-" + kind, name + ".png"), pred)
        counts[kind] = counts.get(kind, 0) + 1
    print("%s: %s label maps%s (%.1f s)" % (a.out, counts, " + teacher predictions" if teacher
                                            else "", time.time() - t0))
    return 0


def _cmd_dump(a):
    m = Model(a.model)
    print("%s: schema version %d, description %r" % (a.model, m.version, m.description))
    for i in m.inputs + m.outputs:
        t = m.tensors[i]
        print("%s %d %s %s %s" % ("input " if i in m.inputs else "output", i, t["name"],
                                 t["shape"], np.dtype(t["dtype"]).name))
    print("ops:", json.dumps(m.op_counts()))
    if a.verbose:
        for k, op in enumerate(m.ops):
            shapes = [m.tensors[i]["shape"] if i >= 0 else None for i in op["inputs"]]
            print("%3d %-18s in %s -> %s %s" % (k, op["op"], shapes,
                                                m.tensors[op["outputs"][0]]["shape"],
                                                json.dumps(op["options"])))
    params = sum(t["data"].size for t in m.tensors if t["data"] is not None)
    print("constant elements: %d" % params)
    return 0


def _main(argv=None):
    here = os.path.dirname(os.path.abspath(__file__))
    shared = os.environ.get("MO_SHARED", os.path.normpath(os.path.join(here, "..", "..", "..", "shared")))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    default_model = os.path.join(shared, "teachers", "deeplabv3_mnv2_voc_tflite",
                                 "deeplabv3_257_mv_gpu.tflite")
    d = sub.add_parser("dump", help="list the model's tensors and ops")
    d.add_argument("model", nargs="?", default=default_model)
    d.add_argument("-v", "--verbose", action="store_true")
    sub.add_parser("check", help="self checks of the op semantics")
    v = sub.add_parser("voc", help="DeepLab teacher vs VOC sample targets")
    v.add_argument("model", nargs="?", default=default_model)
    v.add_argument("--shared", default=shared)
    v.add_argument("--mode", choices=("letterbox", "stretch"), default="letterbox")
    v.add_argument("--flip", action="store_true", help="average with the mirrored image")
    v.add_argument("--coco-val", action="store_true",
                   help="also score coco-mini val2017 against masks rasterized to VOC classes")
    v.add_argument("--pycocotools", default="/work/pycocotools-src/PythonAPI")
    v.add_argument("--json", help="write the numbers here")
    t = sub.add_parser("targets", help="label PNGs of the VOC samples and coco-mini val2017 "
                                       "for mo-eval seg")
    t.add_argument("model", nargs="?", default=default_model)
    t.add_argument("--shared", default=shared)
    t.add_argument("--out", default=os.path.normpath(os.path.join(here, "..", "..", "build",
                                                                  "seg-eval")))
    t.add_argument("--teacher", action="store_true", help="also the teacher's predictions")
    t.add_argument("--pycocotools", default="/work/pycocotools-src/PythonAPI")
    a = ap.parse_args(argv)
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    if a.cmd == "dump":
        return _cmd_dump(a)
    if a.cmd == "check":
        return _check()
    if a.cmd == "targets":
        return _cmd_targets(a)
    return _cmd_voc(a)


if __name__ == "__main__":
    sys.exit(_main())
