#!/usr/bin/python3
"""Writes the committed seed corpus of fuzz_labels (fuzz/corpus/labels/): tiny label PNGs of
every layout io/labels.c reads (indexed 1/2/4/8-bit, grayscale 1..8-bit, RGB and RGBA in
the VOC colours, grey + alpha, 16-bit RGB, Adam7-interlaced) and the ones it refuses
(16-bit grey, a colour outside the palette, pixels cut short). PNGs are assembled here with
zlib, so every bit depth and the interlace flag can be chosen.
Usage: make_label_seeds.py [OUTDIR]  (default: fuzz/corpus/labels next to this file)"""
import os
import struct
import sys
import zlib


def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(
        ">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def voc(i):
    r = g = b = 0
    for j in range(8):
        r |= (i & 1) << (7 - j)
        g |= ((i >> 1) & 1) << (7 - j)
        b |= ((i >> 2) & 1) << (7 - j)
        i >>= 3
    return r, g, b


def pack_row(samples, depth):
    """Samples (ints) of one row to bytes at a bit depth of 1..16."""
    if depth == 16:
        return b"".join(struct.pack(">H", s) for s in samples)
    if depth == 8:
        return bytes(samples)
    out, acc, n = bytearray(), 0, 0
    for s in samples:
        acc = (acc << depth) | s
        n += depth
        if n == 8:
            out.append(acc)
            acc, n = 0, 0
    if n:
        out.append(acc << (8 - n))
    return bytes(out)


ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2),
         (0, 1, 1, 2)]


def png(w, h, ctype, depth, pixel, plte=None, trns=None, interlace=0):
    """pixel(x, y) -> tuple of samples."""
    raw = bytearray()
    passes = ADAM7 if interlace else [(0, 0, 1, 1)]
    for x0, y0, dx, dy in passes:
        xs = range(x0, w, dx)
        if not len(xs):
            continue
        for y in range(y0, h, dy):
            raw.append(0)  # filter: none
            raw += pack_row([s for x in xs for s in pixel(x, y)], depth)
    out = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, ctype, 0,
                                                            0, interlace))
    if plte:
        out += chunk(b"PLTE", bytes(c for rgb in plte for c in rgb))
    if trns:
        out += chunk(b"tRNS", trns)
    return out + chunk(b"IDAT", zlib.compress(bytes(raw), 9)) + chunk(b"IEND", b"")


def seeds():
    lab = lambda x, y: (x * 3 + y * 5) % 21
    pal = [voc(i) for i in range(256)]
    s = {}
    s["indexed8.png"] = png(13, 7, 3, 8, lambda x, y: (lab(x, y),), pal)
    s["indexed8_short_palette.png"] = png(5, 4, 3, 8, lambda x, y: (lab(x, y),), pal[:21])
    for d in (1, 2, 4):
        s["indexed%d.png" % d] = png(11, 5, 3, d, lambda x, y, d=d: (lab(x, y) % (1 << d),),
                                     pal[: 1 << d])
    for d in (1, 2, 4, 8):
        s["gray%d.png" % d] = png(9, 6, 0, d, lambda x, y, d=d: (lab(x, y) % (1 << d),))
    s["gray16_refused.png"] = png(4, 3, 0, 16, lambda x, y: (lab(x, y) * 300,))
    s["rgb_voc.png"] = png(10, 6, 2, 8, lambda x, y: voc(lab(x, y)))
    s["rgb_voc_255.png"] = png(6, 4, 2, 8, lambda x, y: voc(255 if x == y else lab(x, y)))
    s["rgb_unknown_colour.png"] = png(6, 4, 2, 8, lambda x, y: (1, 2, 3) if x == 5 and y == 3
                                      else voc(lab(x, y)))
    s["rgb16_voc.png"] = png(5, 3, 2, 16, lambda x, y: tuple(c * 257 for c in voc(lab(x, y))))
    s["rgba_voc.png"] = png(7, 5, 6, 8, lambda x, y: voc(lab(x, y)) + (200,))
    s["gray_alpha.png"] = png(6, 5, 4, 8, lambda x, y: (lab(x, y), 255))
    s["indexed8_trns.png"] = png(6, 5, 3, 8, lambda x, y: (lab(x, y),), pal[:21], b"\x00\x80")
    s["indexed8_interlaced.png"] = png(17, 11, 3, 8, lambda x, y: (lab(x, y),), pal,
                                       interlace=1)
    s["rgb_interlaced.png"] = png(9, 9, 2, 8, lambda x, y: voc(lab(x, y)), interlace=1)
    s["one_pixel.png"] = png(1, 1, 3, 8, lambda x, y: (0,), pal[:1])
    full = s["indexed8.png"]
    s["truncated_idat.png"] = full[: len(full) - 30]
    return s


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "corpus", "labels")
    os.makedirs(out, exist_ok=True)
    for name, data in sorted(seeds().items()):
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
