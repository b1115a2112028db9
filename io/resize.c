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
 * kernel.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mo_internal/errors.h"
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

typedef struct lin_index {
    int i0, i1;
    float l0, l1;
} lin_index;

/* torch 1.13's area_pixel_compute_source_index + compute_source_index_and_lambda: the
 * source samples and weights of output index i. The scale is a float ((float)in / out),
 * but the source coordinate and lambda1 are computed in double (torch's CPU acc_type of
 * float), then lambda1 is rounded to float and lambda0 = 1 - lambda1 in float. (Computing
 * the coordinate in float gives weights off by up to ~1e-5 for non-integer scales.) */
static lin_index linear_index(int in, int out, float scale, int i)
{
    if (in == out)
        return (lin_index){ i, i, 1.0f, 0.0f };
    double src = (double)scale * ((double)i + 0.5) - 0.5;
    if (src < 0.0)
        src = 0.0;
    int i0 = (int)src;
    if (i0 > in - 1)
        i0 = in - 1;
    int i1 = i0 + (i0 < in - 1 ? 1 : 0);
    double d1 = src - (double)i0;
    d1 = d1 < 0.0 ? 0.0 : d1 > 1.0 ? 1.0 : d1;
    const float l1 = (float)d1;
    return (lin_index){ i0, i1, 1.0f - l1, l1 };
}

static void linear_indices(lin_index *t, int in, int out)
{
    const float scale = (float)in / (float)out;
    for (int i = 0; i < out; i++)
        t[i] = linear_index(in, out, scale, i);
}

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

    lin_index *ty = malloc(sizeof(*ty) * (size_t)dst->h);
    lin_index *tx = malloc(sizeof(*tx) * (size_t)dst->w);
    if (!ty || !tx) {
        free(ty);
        free(tx);
        return mo_fail(MO_ENOMEM, "mo_tensor_resize_bilinear: out of memory");
    }
    linear_indices(ty, src->h, dst->h);
    linear_indices(tx, src->w, dst->w);

    const int c = src->c;
    for (int y = 0; y < dst->h; y++) {
        const float *r0 = src->data + ty[y].i0 * src->row_stride;
        const float *r1 = src->data + ty[y].i1 * src->row_stride;
        const float h0 = ty[y].l0, h1 = ty[y].l1;
        float *out = dst->data + y * dst->row_stride;
        for (int x = 0; x < dst->w; x++) {
            const float *a = r0 + (ptrdiff_t)tx[x].i0 * c, *b = r0 + (ptrdiff_t)tx[x].i1 * c;
            const float *d = r1 + (ptrdiff_t)tx[x].i0 * c, *e = r1 + (ptrdiff_t)tx[x].i1 * c;
            const float w0 = tx[x].l0, w1 = tx[x].l1;
            for (int ch = 0; ch < c; ch++)
                out[(ptrdiff_t)x * c + ch] =
                    h0 * (w0 * a[ch] + w1 * b[ch]) + h1 * (w0 * d[ch] + w1 * e[ch]);
        }
    }
    free(ty);
    free(tx);
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
    float lut[3][256];
    int err = mo_io_norm_lut(lut, mean, std);
    if (err)
        return err;
    out->c = 3;
    out->row_stride = stride;
    const float sy = (float)img->h / (float)out->h, sx = (float)img->w / (float)out->w;
    for (int y = 0; y < out->h; y++) {
        const lin_index ty = linear_index(img->h, out->h, sy, y);
        const uint8_t *r0 = img->data + (size_t)ty.i0 * img->w * 3;
        const uint8_t *r1 = img->data + (size_t)ty.i1 * img->w * 3;
        float *o = out->data + y * stride;
        for (int x = 0; x < out->w; x++) {
            const lin_index tx = linear_index(img->w, out->w, sx, x);
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
