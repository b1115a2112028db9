#!/usr/bin/python3
"""Write, read and inspect the SDK's model files (weights/FORMAT.md).

Why this exists: the SDK stores models as safetensors plus our metadata, and there is
no `safetensors` package here, so the format is written and read by hand. The writer
is deterministic (sorted JSON keys, fixed tensor order) so the same tensors and
metadata always give the same bytes, which lets tests and CI compare files by hash.

Layout decisions beyond FORMAT.md:
- Tensors are stored back to back with no gaps: safetensors readers (the reference
  Rust/Python implementation included) reject a data area that is not fully covered.
- The header is padded with spaces so the data area starts at an 8-byte boundary, and
  tensors are ordered so every begin offset is 8-byte aligned whenever sizes allow it:
  first F32 tensors whose byte size is a multiple of 8, then such F16 tensors, then the
  remaining F32, then the remaining F16 (each group by bytewise name). Every begin is
  always a multiple of its element size, as the C loader requires.

Command line:  mofile.py info FILE [--prefix backbone.] [--tensors]
               mofile.py digest FILE [--prefix backbone.]
"""

import argparse
import json
import struct
import sys
import zlib

import numpy as np

FORMAT = "mobileone-sdk"
FORMAT_VERSION = "1"
MAX_HEADER = 64 << 20
_DTYPES = {"F32": np.dtype("<f4"), "F16": np.dtype("<f2")}


class FormatError(ValueError):
    """A file violates weights/FORMAT.md; the message names the field."""


def json_text(value):
    """Deterministic compact JSON, used for the header and for JSON-valued metadata."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False)


def _dtype_name(arr):
    if arr.dtype == np.float16:
        return "F16"
    if arr.dtype == np.float32:
        return "F32"
    raise TypeError("unsupported dtype %s (only float32/float16)" % arr.dtype)


def _as_array(value, fp16=False):
    """Accept numpy arrays, torch tensors or lists; return a C-contiguous LE array."""
    if hasattr(value, "detach"):  # torch tensor, without importing torch here
        value = value.detach().cpu().numpy()
    arr = np.asarray(value)
    if fp16:
        arr = arr.astype(np.float16)
    elif arr.dtype not in (np.float16, np.float32):
        arr = arr.astype(np.float32)
    if arr.ndim > 4:
        raise ValueError("at most 4 dims, got shape %s" % (arr.shape,))
    # astype(order="C"), unlike ascontiguousarray, keeps 0-dim arrays 0-dim
    return arr.astype(_DTYPES[_dtype_name(arr)], order="C", copy=False)


def crc32_hex(data):
    return "%08x" % (zlib.crc32(data) & 0xFFFFFFFF)


def _layout_key(item):
    name, arr = item
    aligned8 = arr.nbytes % 8 == 0
    group = (0 if aligned8 else 2) + (0 if arr.dtype == np.float32 else 1)
    return (group, name.encode("utf-8"))


def dumps(tensors, metadata, fp16=False):
    """Serialize {name: array} and {key: str} metadata to bytes.

    `mo.format`, `mo.format_version` and `mo.crc32` are filled in here; the caller gives
    the rest (`mo.contents` is required). Values that are lists/dicts are stored as
    deterministic JSON text. fp16=True stores every tensor as F16.
    """
    meta = {}
    for key, val in metadata.items():
        if not isinstance(val, str):
            val = json_text(val)
        meta[str(key)] = val
    if "mo.contents" not in meta:
        raise ValueError("metadata needs mo.contents")
    arrays = {name: _as_array(t, fp16) for name, t in tensors.items()}
    for name in arrays:
        if name == "__metadata__" or not name:
            raise ValueError("bad tensor name %r" % name)
    meta["mo.format"] = FORMAT
    meta["mo.format_version"] = FORMAT_VERSION
    meta["mo.crc32"] = json_text({n: crc32_hex(a.tobytes()) for n, a in arrays.items()})

    header = {"__metadata__": meta}
    chunks = []
    offset = 0
    for name, arr in sorted(arrays.items(), key=_layout_key):
        nbytes = arr.nbytes
        header[name] = {"dtype": _dtype_name(arr), "shape": list(arr.shape),
                        "data_offsets": [offset, offset + nbytes]}
        chunks.append(arr.tobytes())
        offset += nbytes
    text = json_text(header).encode("utf-8")
    text += b" " * ((-(8 + len(text))) % 8)
    if len(text) > MAX_HEADER:
        raise ValueError("header larger than 64 MiB")
    return struct.pack("<Q", len(text)) + text + b"".join(chunks)


def write(path, tensors, metadata, fp16=False):
    """Write a model (or vectors) file; returns its size in bytes."""
    data = dumps(tensors, metadata, fp16)
    with open(path, "wb") as f:
        f.write(data)
    return len(data)


def loads(data, verify=True):
    """Parse bytes into ({name: float ndarray}, {key: str}).

    Arrays keep their stored dtype (float32 or float16). With verify=True every rule
    of FORMAT.md that the C loader enforces is checked and FormatError raised.
    """
    if len(data) < 8:
        raise FormatError("file shorter than 8 bytes")
    (n,) = struct.unpack_from("<Q", data, 0)
    if n > len(data) - 8 or n > MAX_HEADER:
        raise FormatError("header length %d out of range" % n)
    try:
        header = json.loads(data[8:8 + n].decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise FormatError("header is not JSON: %s" % e)
    if not isinstance(header, dict):
        raise FormatError("header is not a JSON object")
    meta = header.pop("__metadata__", {})
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        raise FormatError("__metadata__ must map to strings")
    area = memoryview(data)[8 + n:]
    tensors = {}
    spans = []
    for name, info in header.items():
        try:
            dtype = _DTYPES[info["dtype"]]
            shape = [int(d) for d in info["shape"]]
            begin, end = (int(x) for x in info["data_offsets"])
        except (KeyError, TypeError, ValueError):
            raise FormatError("tensor %s: bad dtype/shape/data_offsets" % name)
        if len(shape) > 4 or any(d < 0 for d in shape):
            raise FormatError("tensor %s: bad shape %s" % (name, shape))
        numel = int(np.prod(shape, dtype=np.int64)) if shape else 1
        if numel >= 1 << 40:
            raise FormatError("tensor %s: too many elements" % name)
        if end - begin != numel * dtype.itemsize or not 0 <= begin <= end <= len(area):
            raise FormatError("tensor %s: data_offsets %s do not fit" % (name, [begin, end]))
        if begin % dtype.itemsize:
            raise FormatError("tensor %s: begin %d not aligned" % (name, begin))
        spans.append((begin, end, name))
        tensors[name] = np.frombuffer(area[begin:end], dtype=dtype).reshape(shape)
    spans.sort()
    for (b0, e0, n0), (b1, e1, n1) in zip(spans, spans[1:]):
        if b1 < e0:
            raise FormatError("tensors %s and %s overlap" % (n0, n1))
    if verify:
        if meta.get("mo.format") != FORMAT:
            raise FormatError("mo.format is not %r" % FORMAT)
        if meta.get("mo.format_version") != FORMAT_VERSION:
            raise FormatError("mo.format_version %r unsupported" % meta.get("mo.format_version"))
        try:
            crcs = json.loads(meta["mo.crc32"])
        except (KeyError, ValueError):
            raise FormatError("mo.crc32 missing or not JSON")
        if not isinstance(crcs, dict):
            raise FormatError("mo.crc32 is not a JSON object")
        for name, arr in tensors.items():
            if crcs.get(name) != crc32_hex(arr.tobytes()):
                raise FormatError("mo.crc32: tensor %s missing or mismatched" % name)
        if "mo.contents" not in meta:
            raise FormatError("mo.contents missing")
    return tensors, meta


def read(path, verify=True):
    """Read a file: ({name: ndarray}, {key: str})."""
    with open(path, "rb") as f:
        return loads(f.read(), verify)


def fnv1a64(data):
    h = 0xCBF29CE484222325
    for b in data:
        h ^= b
        h = (h * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def digest(tensors, prefix):
    """FORMAT.md digest: FNV-1a 64 over `name dtype d0,d1,... crc32hex\\n` lines.

    One line per tensor whose name starts with `prefix`, in bytewise name order;
    a 0-dim tensor has an empty dims field. Returns 16 lowercase hex digits.
    Raises ValueError when no tensor has the prefix.
    """
    lines = []
    for name in sorted((n for n in tensors if n.startswith(prefix)), key=lambda s: s.encode("utf-8")):
        arr = _as_array(tensors[name])
        dims = ",".join(str(d) for d in arr.shape)
        lines.append("%s %s %s %s\n" % (name, _dtype_name(arr), dims, crc32_hex(arr.tobytes())))
    if not lines:
        raise ValueError("no tensor starts with %r" % prefix)
    return "%016x" % fnv1a64("".join(lines).encode("utf-8"))


def _main(argv=None):
    ap = argparse.ArgumentParser(description="Inspect .mo.safetensors files.")
    ap.add_argument("command", choices=["info", "digest"])
    ap.add_argument("file")
    ap.add_argument("--prefix", default="backbone.", help="digest prefix (default backbone.)")
    ap.add_argument("--tensors", action="store_true", help="info: list every tensor")
    args = ap.parse_args(argv)
    try:
        tensors, meta = read(args.file)
    except (OSError, FormatError) as e:
        print("error: %s: %s" % (args.file, e), file=sys.stderr)
        return 1
    if args.command == "digest":
        print(digest(tensors, args.prefix))
        return 0
    print("%s: %d tensors, %d parameters" % (args.file, len(tensors),
                                            sum(a.size for a in tensors.values())))
    for key in sorted(meta):
        val = meta[key]
        if key == "mo.crc32" or (key == "cls.classes" and len(val) > 120):
            val = val[:100] + "... (%d chars)" % len(val)
        print("  %s = %s" % (key, val))
    if any(n.startswith(args.prefix) for n in tensors):
        print("  digest(%s) = %s" % (args.prefix, digest(tensors, args.prefix)))
    if args.tensors:
        for name in sorted(tensors):
            a = tensors[name]
            print("  %-50s %s %s" % (name, _dtype_name(a), list(a.shape)))
    return 0


if __name__ == "__main__":
    sys.exit(_main())
