"""NV12/NV21/I420 (and the packed formats) against a NumPy reference of the documented formula:
BT.601 limited range in OpenCV's 20-bit fixed point (include/mo/pipeline.h):
    c = max(Y - 16, 0) * 1220542, d = U - 128, e = V - 128
    R = (c + 1673527 e + 2^19) >> 20; G = (c - 852492 e - 409993 d + 2^19) >> 20;
    B = (c + 2116026 d + 2^19) >> 20; clamped to 0..255.
Usage: yuv_ref.py FRAME_DUMP. Exits 77 (skip) without NumPy."""
import os
import shlex
import subprocess
import sys
import tempfile

try:
    import numpy as np
except ImportError:
    print("SKIP: NumPy not installed")
    sys.exit(77)


def nv_ref(y, c, w, h, nv21):
    c = c.reshape((h + 1) // 2, -1)[:, : 2 * ((w + 1) // 2)]
    u, v = (c[:, 1::2], c[:, 0::2]) if nv21 else (c[:, 0::2], c[:, 1::2])
    u = np.repeat(np.repeat(u, 2, 0), 2, 1)[:h, :w].astype(np.int64) - 128
    v = np.repeat(np.repeat(v, 2, 0), 2, 1)[:h, :w].astype(np.int64) - 128
    cy = np.maximum(y.reshape(h, w).astype(np.int64) - 16, 0) * 1220542
    r = (cy + 1673527 * v + (1 << 19)) >> 20
    g = (cy - 852492 * v - 409993 * u + (1 << 19)) >> 20
    b = (cy + 2116026 * u + (1 << 19)) >> 20
    return np.clip(np.stack([r, g, b], -1), 0, 255).astype(np.uint8)


def i420_ref(y, c, w, h):
    """I420 (U plane, then V plane) through the NV12 reference: the same samples."""
    n = ((w + 1) // 2) * ((h + 1) // 2)
    nv = np.empty(2 * n, np.uint8)
    nv[0::2], nv[1::2] = c[:n], c[n:]
    return nv_ref(y, nv, w, h, False)


def main():
    # meson sets MESON_EXE_WRAPPER (e.g. qemu-aarch64) when frame_dump is cross-built
    exe = shlex.split(os.environ.get("MESON_EXE_WRAPPER", "")) + [sys.argv[1]]
    rng = np.random.default_rng(6)
    bad = 0
    with tempfile.TemporaryDirectory() as d:
        for (w, h) in [(1, 1), (2, 2), (3, 5), (64, 48), (97, 33), (640, 360)]:
            for fmt in range(7):
                if fmt >= 4:  # 4 NV12, 5 NV21, 6 I420: as many chroma samples each
                    y = rng.integers(0, 256, w * h, dtype=np.uint8)
                    c = rng.integers(0, 256, 2 * ((w + 1) // 2) * ((h + 1) // 2), dtype=np.uint8)
                    raw = np.concatenate([y, c])
                    ref = i420_ref(y, c, w, h) if fmt == 6 else nv_ref(y, c, w, h, fmt == 5)
                else:
                    bpp = 3 if fmt < 2 else 4
                    raw = rng.integers(0, 256, w * h * bpp, dtype=np.uint8)
                    px = raw.reshape(h, w, bpp)[..., :3]
                    ref = px[..., ::-1] if fmt in (1, 3) else px
                src, dst = os.path.join(d, "in"), os.path.join(d, "out")
                raw.tofile(src)
                subprocess.run(exe + [str(fmt), str(w), str(h), src, dst], check=True)
                got = np.fromfile(dst, np.uint8).reshape(h, w, 3)
                n = int((got != ref).sum())
                if n:
                    print(f"format {fmt} {w}x{h}: {n} values differ")
                    bad += 1
    print("FAIL" if bad else "ok: every format and size bit-exact with the NumPy reference")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
