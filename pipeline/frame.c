/*
 * Frames in caller memory to packed RGB8: channel reordering for the packed formats and
 * BT.601 limited-range YUV 4:2:0 (NV12, NV21, I420) in OpenCV's 20-bit fixed point
 * (include/mo/pipeline.h states the formula; tests/pipeline/yuv_ref.py is its NumPy twin).
 */
#include "mo/pipeline.h"

#include <stdlib.h>

#include "mo_internal/errors.h"
#include "pipeline_internal.h"

enum { CY = 1220542, CVR = 1673527, CVG = -852492, CUG = -409993, CUB = 2116026 };

static inline uint8_t clamp8(int v)
{
    return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
}

int mo_frame_check(const mo_frame *f, ptrdiff_t rgb_stride, const char *fn)
{
    validate_input_or_ret(f, MO_EINVAL);
    if (f->width < 1 || f->height < 1 || f->width > MO_MAX_INPUT_SIDE ||
        f->height > MO_MAX_INPUT_SIDE)
        return mo_fail(MO_EINVAL, "%s: frame %dx%d outside 1x1..%dx%d", fn, f->width,
                       f->height, MO_MAX_INPUT_SIDE, MO_MAX_INPUT_SIDE);
    if (rgb_stride < (ptrdiff_t)f->width * 3)
        return mo_fail(MO_EINVAL, "%s: output stride %td < 3 * width", fn, rgb_stride);
    int bpp;
    switch (f->format) {
    case MO_FRAME_RGB: case MO_FRAME_BGR: bpp = 3; break;
    case MO_FRAME_RGBA: case MO_FRAME_BGRA: bpp = 4; break;
    case MO_FRAME_NV12: case MO_FRAME_NV21: case MO_FRAME_I420: bpp = 1; break;
    default: return mo_fail(MO_EINVAL, "%s: unknown frame format %d", fn, f->format);
    }
    if (!f->data[0] || f->stride[0] < (ptrdiff_t)f->width * bpp)
        return mo_fail(MO_EINVAL, "%s: plane 0 missing or stride %td < %d * width", fn,
                       f->stride[0], bpp);
    /* chroma: one interleaved plane (NV12/NV21) or two planes of (width + 1) / 2 (I420) */
    const int planar = f->format == MO_FRAME_I420;
    const ptrdiff_t cw = planar ? (f->width + 1) / 2 : 2 * ((f->width + 1) / 2);
    for (int i = 1; bpp == 1 && i <= 1 + planar; i++)
        if (!f->data[i] || f->stride[i] < cw)
            return mo_fail(MO_EINVAL, "%s: chroma plane %d missing or stride %td < %td", fn,
                           i, f->stride[i], cw);
    return MO_OK;
}

int mo_frame_to_rgb(const mo_frame *f, uint8_t *rgb, ptrdiff_t rgb_stride)
{
    validate_input_or_ret(rgb, MO_EINVAL);
    int r = mo_frame_check(f, rgb_stride, "mo_frame_to_rgb");
    if (r)
        return r;
    mo_frame_rgb_rows(f, rgb, rgb_stride, 0, f->height);
    return MO_OK;
}

void mo_frame_rgb_rows(const mo_frame *f, uint8_t *rgb, ptrdiff_t rgb_stride, int y0, int y1)
{
    const int w = f->width;
    if (f->format == MO_FRAME_NV12 || f->format == MO_FRAME_NV21 ||
        f->format == MO_FRAME_I420) {
        /* One loop for the three layouts: U and V are read at `step` bytes per chroma
         * column from their own base and row stride (NV12/NV21: the same plane, one
         * byte apart; I420: planes 1 and 2). */
        const int nv21 = f->format == MO_FRAME_NV21, i420 = f->format == MO_FRAME_I420;
        const uint8_t *ub = f->data[1] + nv21, *vb = i420 ? f->data[2] : f->data[1] + !nv21;
        const ptrdiff_t us = f->stride[1], vs = i420 ? f->stride[2] : f->stride[1];
        const int step = i420 ? 1 : 2;
        for (int y = y0; y < y1; y++) {
            const uint8_t *yr = f->data[0] + (ptrdiff_t)y * f->stride[0];
            const uint8_t *ur = ub + (ptrdiff_t)(y / 2) * us, *vr = vb + (ptrdiff_t)(y / 2) * vs;
            uint8_t *o = rgb + (ptrdiff_t)y * rgb_stride;
            for (int x = 0; x < w; x++) {
                const int yy = yr[x] - 16;
                const int c = (yy > 0 ? yy : 0) * CY;
                const int d = ur[step * (x / 2)] - 128, e = vr[step * (x / 2)] - 128;
                o[3 * x + 0] = clamp8((c + CVR * e + (1 << 19)) >> 20);
                o[3 * x + 1] = clamp8((c + CVG * e + CUG * d + (1 << 19)) >> 20);
                o[3 * x + 2] = clamp8((c + CUB * d + (1 << 19)) >> 20);
            }
        }
        return;
    }
    const int bpp = f->format == MO_FRAME_RGB || f->format == MO_FRAME_BGR ? 3 : 4;
    const int swap = f->format == MO_FRAME_BGR || f->format == MO_FRAME_BGRA;
    for (int y = y0; y < y1; y++) {
        const uint8_t *in = f->data[0] + (ptrdiff_t)y * f->stride[0];
        uint8_t *o = rgb + (ptrdiff_t)y * rgb_stride;
        for (int x = 0; x < w; x++, in += bpp) {
            o[3 * x + 0] = in[swap ? 2 : 0];
            o[3 * x + 1] = in[1];
            o[3 * x + 2] = in[swap ? 0 : 2];
        }
    }
}

int mo_frame_to_image(const mo_frame *f, mo_image *out)
{
    validate_input_or_ret(f && out, MO_EINVAL);
    int r = mo_frame_check(f, (ptrdiff_t)(f->width > 0 ? f->width : 0) * 3, "mo_frame_to_image");
    if (r)
        return r;
    if ((r = mo_image_alloc(out, f->width, f->height)))
        return r;
    return mo_frame_to_rgb(f, out->data, (ptrdiff_t)f->width * 3);
}
