/*
 * Resizing.
 *
 * mo_image_resize_pil() reproduces Pillow 9.4's `Image.resize(size, Image.BILINEAR)`
 * (libImaging ImagingResample, 8 bits per channel) from its documented behaviour and
 * checked bit for bit against Pillow (tools/preprocess_parity.py):
 *
 * - Separable: a horizontal pass (only if the width changes) then a vertical pass (only
 *   if the height changes). The intermediate image is rounded and clamped to uint8.
 * - For each output index i of a pass from `in` to `out` samples:
 *     scale = in / out, filterscale = max(scale, 1), support = 1 * filterscale
 *     (bilinear = triangle filter of radius 1, widened by the downscale factor: that is
 *     the antialiasing), center = (i + 0.5) * scale,
 *     first = max(0, (int)(center - support + 0.5)),
 *     end = min(in, (int)(center + support + 0.5)),
 *     w_j = tri((j - center + 0.5) / filterscale) for j in [first, end), normalized to
 *     sum 1 (in double), then converted to fixed point with 22 fractional bits, each
 *     weight rounded half away from zero.
 * - A sample is (2^21 + sum w_j * v_j) >> 22 in 32-bit integers, clamped to 0..255.
 * - The horizontal pass only processes the rows the vertical pass will read.
 *
 * mo_tensor_resize_bilinear() is torch.nn.functional.interpolate(mode="bilinear",
 * align_corners=False, antialias=False) on floats, computed in float like torch's CPU
 * kernel: the kernel table's upsample (core/dsp/ops.c, SIMD variants, the same bits), the
 * operator the segmentation head upsamples its logits with. mo_image_resize_pil() is a
 * different operator (Pillow's antialiased filter on uint8, widened when downscaling) and
 * stays here.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mo_internal/conv.h"
#include "mo_internal/errors.h"
#include "mo/cpu.h"
#include "io_internal.h"

#define PRECISION_BITS 22

typedef struct pass_coeffs {
    int ksize;      /* weights stored per output sample */
    int *bounds;    /* per output sample: first input index, number of inputs */
    int32_t *k;     /* out_size * ksize fixed-point weights */
} pass_coeffs;

static double tri_filter(double x)
{
    if (x < 0.0)
        x = -x;
    return x < 1.0 ? 1.0 - x : 0.0;
}

static void coeffs_free(pass_coeffs *c)
{
    free(c->bounds);
    free(c->k);
    c->bounds = NULL;
    c->k = NULL;
}

/* Weights of one pass from in_size samples to out_size samples (box = whole input). */
static int coeffs_make(pass_coeffs *c, int in_size, int out_size)
{
    const double scale = (double)in_size / out_size;
    const double filterscale = scale < 1.0 ? 1.0 : scale;
    const double support = 1.0 * filterscale;
    const int ksize = (int)ceil(support) * 2 + 1;
    double *w = malloc((size_t)ksize * sizeof(*w));
    c->ksize = ksize;
    c->bounds = malloc((size_t)out_size * 2 * sizeof(*c->bounds));
    c->k = malloc((size_t)out_size * (size_t)ksize * sizeof(*c->k));
    if (!w || !c->bounds || !c->k) {
        free(w);
        coeffs_free(c);
        return mo_fail(MO_ENOMEM, "mo_image_resize_pil: out of memory");
    }
    const double ss = 1.0 / filterscale;
    for (int i = 0; i < out_size; i++) {
        const double center = (i + 0.5) * scale;
        int first = (int)(center - support + 0.5);
        if (first < 0)
            first = 0;
        int end = (int)(center + support + 0.5);
        if (end > in_size)
            end = in_size;
        const int n = end - first;
        double sum = 0.0;
        for (int j = 0; j < n; j++) {
            w[j] = tri_filter(((double)(j + first) - center + 0.5) * ss);
            sum += w[j];
        }
        int32_t *k = c->k + (size_t)i * ksize;
        for (int j = 0; j < ksize; j++) {
            double v = 0.0;
            if (j < n)
                v = sum != 0.0 ? w[j] / sum : w[j];
            v *= (double)(1 << PRECISION_BITS);
            k[j] = (int32_t)(v < 0 ? v - 0.5 : v + 0.5);
        }
        c->bounds[2 * i] = first;
        c->bounds[2 * i + 1] = n;
    }
    free(w);
    return MO_OK;
}

static inline uint8_t clip8(int32_t v)
{
    if (v >= (1 << PRECISION_BITS << 8))
        return 255;
    if (v <= 0)
        return 0;
    return (uint8_t)(v >> PRECISION_BITS);
}

/* Rows [row0, row0 + nrows) of src, resampled horizontally to dst (dst->w wide). */
static void pass_horizontal(const mo_image *src, int row0, int nrows, mo_image *dst,
                            const pass_coeffs *c)
{
    for (int y = 0; y < nrows; y++) {
        const uint8_t *in = src->data + (size_t)(row0 + y) * src->w * 3;
        uint8_t *out = dst->data + (size_t)y * dst->w * 3;
        for (int x = 0; x < dst->w; x++) {
            const int first = c->bounds[2 * x], n = c->bounds[2 * x + 1];
            const int32_t *k = c->k + (size_t)x * c->ksize;
            const uint8_t *p = in + (size_t)first * 3;
            int32_t s0 = 1 << (PRECISION_BITS - 1), s1 = s0, s2 = s0;
            for (int j = 0; j < n; j++) {
                s0 += p[3 * j] * k[j];
                s1 += p[3 * j + 1] * k[j];
                s2 += p[3 * j + 2] * k[j];
            }
            out[3 * x] = clip8(s0);
            out[3 * x + 1] = clip8(s1);
            out[3 * x + 2] = clip8(s2);
        }
    }
}

/* Vertical pass; input row indices in c are relative to src row row0. */
static void pass_vertical(const mo_image *src, int row0, mo_image *dst, const pass_coeffs *c)
{
    const size_t stride = (size_t)src->w * 3;
    for (int y = 0; y < dst->h; y++) {
        const int first = c->bounds[2 * y] - row0, n = c->bounds[2 * y + 1];
        const int32_t *k = c->k + (size_t)y * c->ksize;
        const uint8_t *in = src->data + (size_t)first * stride;
        uint8_t *out = dst->data + (size_t)y * dst->w * 3;
        for (size_t x = 0; x < stride; x++) {
            int32_t s = 1 << (PRECISION_BITS - 1);
            for (int j = 0; j < n; j++)
                s += in[(size_t)j * stride + x] * k[j];
            out[x] = clip8(s);
        }
    }
}

MO_API int mo_image_resize_pil(const mo_image *src, int w, int h, mo_image *dst)
{
    validate_input_or_ret(dst != NULL, MO_EINVAL);
    validate_input_or_ret(dst != src, MO_EINVAL);
    memset(dst, 0, sizeof(*dst));
    if (!src || !src->data || src->w < 1 || src->h < 1)
        return mo_fail(MO_EINVAL, "mo_image_resize_pil: empty or NULL source image");
    if (w < 1 || h < 1)
        return mo_fail(MO_EINVAL, "mo_image_resize_pil: invalid size %dx%d", w, h);

    int err = mo_image_alloc(dst, w, h);
    if (err)
        return err;
    const int need_h = w != src->w, need_v = h != src->h;
    if (!need_h && !need_v) {
        memcpy(dst->data, src->data, (size_t)w * h * 3);
        return MO_OK;
    }

    pass_coeffs ch = { 0 }, cv = { 0 };
    mo_image tmp = { 0 };
    if (need_h && (err = coeffs_make(&ch, src->w, w)))
        goto fail;
    if (need_v && (err = coeffs_make(&cv, src->h, h)))
        goto fail;

    if (need_h && need_v) {
        /* Only the input rows the vertical pass reads. */
        const int row0 = cv.bounds[0];
        const int row_end = cv.bounds[2 * (h - 1)] + cv.bounds[2 * (h - 1) + 1];
        if ((err = mo_image_alloc(&tmp, w, row_end - row0)))
            goto fail;
        pass_horizontal(src, row0, row_end - row0, &tmp, &ch);
        pass_vertical(&tmp, row0, dst, &cv);
    } else if (need_h) {
        pass_horizontal(src, 0, src->h, dst, &ch);
    } else {
        pass_vertical(src, 0, dst, &cv);
    }
    coeffs_free(&ch);
    coeffs_free(&cv);
    mo_image_free(&tmp);
    return MO_OK;

fail:
    coeffs_free(&ch);
    coeffs_free(&cv);
    mo_image_free(&tmp);
    mo_image_free(dst);
    return err;
}

/* ---- float bilinear, align_corners=False ---------------------------------------- */

MO_API int mo_tensor_resize_bilinear(const mo_tensor *src, mo_tensor *dst)
{
    validate_input_or_ret(src != NULL && dst != NULL, MO_EINVAL);
    validate_input_or_ret(src->data != NULL && dst->data != NULL, MO_EINVAL);
    if (src->h < 1 || src->w < 1 || src->c < 1 || dst->h < 1 || dst->w < 1)
        return mo_fail(MO_EINVAL, "mo_tensor_resize_bilinear: invalid sizes %dx%dx%d -> %dx%d",
                       src->h, src->w, src->c, dst->h, dst->w);
    if (dst->c != src->c)
        return mo_fail(MO_EINVAL, "mo_tensor_resize_bilinear: channels differ (%d vs %d)",
                       src->c, dst->c);
    if (src->row_stride < (ptrdiff_t)src->w * src->c)
        return mo_fail(MO_EINVAL, "mo_tensor_resize_bilinear: source row_stride too small");
    if (dst->row_stride == 0)
        dst->row_stride = (ptrdiff_t)dst->w * dst->c;
    if (dst->row_stride < (ptrdiff_t)dst->w * dst->c)
        return mo_fail(MO_EINVAL, "mo_tensor_resize_bilinear: destination row_stride too small");

    /* the kernel table's bilinear upsample (mo_internal/ops.h: these indices and weights,
     * these float operations, the same bits on every CPU) */
    mo_conv_dsp dsp;
    mo_conv_dsp_init(&dsp, mo_get_cpu_flags());
    dsp.upsample(dst->data, dst->row_stride, src->data, src->row_stride, src->h, src->w, src->c,
                 dst->h, dst->w, 0, dst->h);
    return MO_OK;
}

/*
 * Normalize then resize, as GeneralizedRCNNTransform: (x / 255 - mean) / std per pixel
 * (the table of mo_image_to_tensor(), exact), then torch's bilinear interpolation of
 * those values: the same source indices and weights as mo_tensor_resize_bilinear(), so
 * no full-size float image is needed in between (and nothing is allocated).
 */
MO_API int mo_preprocess_resize(const mo_image *img, const float mean[3], const float std[3],
                                mo_tensor *out)
{
    validate_input_or_ret(out != NULL, MO_EINVAL);
    return mo_preprocess_resize_rows(img, mean, std, out, 0, out->h);
}

MO_API int mo_preprocess_resize_rows(const mo_image *img, const float mean[3],
                                     const float std[3], mo_tensor *out, int y0, int y1)
{
    validate_input_or_ret(out != NULL && out->data != NULL, MO_EINVAL);
    if (!img || !img->data || img->w < 1 || img->h < 1)
        return mo_fail(MO_EINVAL, "mo_preprocess_resize: empty or NULL image");
    if (out->w < 1 || out->h < 1)
        return mo_fail(MO_EINVAL, "mo_preprocess_resize: invalid output size %dx%d", out->w,
                       out->h);
    const ptrdiff_t stride = out->row_stride ? out->row_stride : (ptrdiff_t)out->w * 3;
    if (stride < (ptrdiff_t)out->w * 3)
        return mo_fail(MO_EINVAL, "mo_preprocess_resize: row_stride %td < %d", stride,
                       out->w * 3);
    if (y0 < 0 || y1 > out->h || y0 > y1)
        return mo_fail(MO_EINVAL, "mo_preprocess_resize_rows: rows %d..%d outside 0..%d", y0,
                       y1, out->h);
    float lut[3][256];
    int err = mo_io_norm_lut(lut, mean, std);
    if (err)
        return err;
    out->c = 3;
    out->row_stride = stride;
    for (int y = y0; y < y1; y++) {
        const mo_ops_lin ty = mo_ops_lin_at(y, img->h, out->h);
        const uint8_t *r0 = img->data + (size_t)ty.i0 * img->w * 3;
        const uint8_t *r1 = img->data + (size_t)ty.i1 * img->w * 3;
        float *o = out->data + y * stride;
        for (int x = 0; x < out->w; x++) {
            const mo_ops_lin tx = mo_ops_lin_at(x, img->w, out->w);
            const uint8_t *a = r0 + (size_t)tx.i0 * 3, *b = r0 + (size_t)tx.i1 * 3;
            const uint8_t *d = r1 + (size_t)tx.i0 * 3, *e = r1 + (size_t)tx.i1 * 3;
            /* torch's Interpolate<2> is (t0 * w0 + t1 * w1) per axis; its AVX2 build (the
             * usual CPU dispatch) contracts that to fma(t0, w0, t1 * w1): bit-identical
             * with that, within an ulp of the non-FMA build. */
            for (int c = 0; c < 3; c++) {
                const float u0 = fmaf(lut[c][a[c]], tx.l0, lut[c][b[c]] * tx.l1);
                const float u1 = fmaf(lut[c][d[c]], tx.l0, lut[c][e[c]] * tx.l1);
                o[3 * x + c] = fmaf(u0, ty.l0, u1 * ty.l1);
            }
        }
    }
    return MO_OK;
}
