/*
 * Frames in caller memory to packed RGB8: channel reordering for the packed formats and
 * BT.601 limited-range YUV 4:2:0 (NV12, NV21) in OpenCV's 20-bit fixed point
 * (include/mo/pipeline.h states the formula; tests/pipeline/yuv_ref.py is its NumPy twin).
 */
#include "mo/pipeline.h"

#include <stdlib.h>

#include "../backbone/errors_internal.h"

enum { CY = 1220542, CVR = 1673527, CVG = -852492, CUG = -409993, CUB = 2116026 };

static inline uint8_t clamp8(int v)
{
    return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
}

static int frame_check(const mo_frame *f, ptrdiff_t rgb_stride, const char *fn)
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
    case MO_FRAME_NV12: case MO_FRAME_NV21: bpp = 1; break;
    default: return mo_fail(MO_EINVAL, "%s: unknown frame format %d", fn, f->format);
    }
    if (!f->data[0] || f->stride[0] < (ptrdiff_t)f->width * bpp)
        return mo_fail(MO_EINVAL, "%s: plane 0 missing or stride %td < %d * width", fn,
                       f->stride[0], bpp);
    if (bpp == 1 && (!f->data[1] || f->stride[1] < (ptrdiff_t)2 * ((f->width + 1) / 2)))
        return mo_fail(MO_EINVAL, "%s: chroma plane missing or stride %td < %d", fn,
                       f->stride[1], 2 * ((f->width + 1) / 2));
    return MO_OK;
}

int mo_frame_to_rgb(const mo_frame *f, uint8_t *rgb, ptrdiff_t rgb_stride)
{
    validate_input_or_ret(rgb, MO_EINVAL);
    int r = frame_check(f, rgb_stride, "mo_frame_to_rgb");
    if (r)
        return r;
    const int w = f->width, h = f->height;
    if (f->format == MO_FRAME_NV12 || f->format == MO_FRAME_NV21) {
        const int ui = f->format == MO_FRAME_NV12 ? 0 : 1, vi = 1 - ui;
        for (int y = 0; y < h; y++) {
            const uint8_t *yr = f->data[0] + (ptrdiff_t)y * f->stride[0];
            const uint8_t *cr = f->data[1] + (ptrdiff_t)(y / 2) * f->stride[1];
            uint8_t *o = rgb + (ptrdiff_t)y * rgb_stride;
            for (int x = 0; x < w; x++) {
                const int yy = yr[x] - 16;
                const int c = (yy > 0 ? yy : 0) * CY;
                const int d = cr[2 * (x / 2) + ui] - 128, e = cr[2 * (x / 2) + vi] - 128;
                o[3 * x + 0] = clamp8((c + CVR * e + (1 << 19)) >> 20);
                o[3 * x + 1] = clamp8((c + CVG * e + CUG * d + (1 << 19)) >> 20);
                o[3 * x + 2] = clamp8((c + CUB * d + (1 << 19)) >> 20);
            }
        }
        return MO_OK;
    }
    const int bpp = f->format == MO_FRAME_RGB || f->format == MO_FRAME_BGR ? 3 : 4;
    const int swap = f->format == MO_FRAME_BGR || f->format == MO_FRAME_BGRA;
    for (int y = 0; y < h; y++) {
        const uint8_t *in = f->data[0] + (ptrdiff_t)y * f->stride[0];
        uint8_t *o = rgb + (ptrdiff_t)y * rgb_stride;
        for (int x = 0; x < w; x++, in += bpp) {
            o[3 * x + 0] = in[swap ? 2 : 0];
            o[3 * x + 1] = in[1];
            o[3 * x + 2] = in[swap ? 0 : 2];
        }
    }
    return MO_OK;
}

int mo_frame_to_image(const mo_frame *f, mo_image *out)
{
    validate_input_or_ret(f && out, MO_EINVAL);
    int r = frame_check(f, (ptrdiff_t)(f->width > 0 ? f->width : 0) * 3, "mo_frame_to_image");
    if (r)
        return r;
    if ((r = mo_image_alloc(out, f->width, f->height)))
        return r;
    return mo_frame_to_rgb(f, out->data, (ptrdiff_t)f->width * 3);
}
