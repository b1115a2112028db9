/*
 * Head operators of the kernel table (internal, included by mo_internal/conv.h): GEMV
 * (fully connected), a global mean in double, bilinear upsampling (torch F.interpolate, mode='bilinear',
 * align_corners=False) to floats or fused with an argmax to labels, and softmax over rows.
 *
 * Reached through ::mo_conv_dsp like the convolutions; C references in core/dsp/ops.c, SIMD
 * variants in core/dsp/x86/ops_avx2.c, ops_avx512.c and core/dsp/arm/ops_neon.c, each held to
 * its reference by tests/checkdsp.
 *
 * Unlike the convolutions, these kernels give the SAME BITS in every variant: each output
 * element is one fixed sequence of float multiplies and adds (no FMA; the files are built
 * with contraction off), the sums run in 16 interleaved partial sums that every vector
 * width reproduces (lane j takes elements j, j + 16, ...; then pairwise halving), and the
 * exponential is a fixed polynomial (mo_ops_exp below). So a label map, a softmax or a
 * classifier's logits do not depend on the CPU, its flags or the number of threads.
 */
#ifndef MO_DSP_OPS_H
#define MO_DSP_OPS_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

/**
 * GEMV (fully connected layer): y[j] = act(b[j] + sum_i w[j * k + i] * x[i]) for j < n.
 * The sum: 16 partial sums acc[i % 16] over i < k / 16 * 16 in order, halved pairwise
 * (acc[j] += acc[j + h] for h = 8, 4, 2, 1), then the remaining i in order, then the bias.
 * @param w   n rows of k floats (PyTorch's [out][in] layout, no packing)
 * @param act enum mo_act (MO_ACT_RELU: s < 0 ? 0 : s, NaN kept)
 * Rows are independent: a caller splits n over threads by offsetting y, w and b.
 */
#define decl_gemv_fn(name) \
    void (name)(float *y, const float *w, const float *b, const float *x, int n, int k, int act)
typedef decl_gemv_fn(mo_gemv_fn);

/**
 * Bilinear upsampling of an NHWC map, as torch's upsample_bilinear2d with
 * align_corners=False and no scale factor, in float: for output (y, x), source rows
 * i0, i1 with weights ly0, ly1 and columns j0, j1 with lx0, lx1 (mo_ops_lin()),
 * dst = (s[i0][j0] lx0 + s[i0][j1] lx1) ly0 + (s[i1][j0] lx0 + s[i1][j1] lx1) ly1.
 * @param dst        oh x ow x c, row stride dst_stride floats (>= ow * c); rows [y0, y1)
 * @param src        ih x iw x c, row stride src_stride floats (>= iw * c)
 */
#define decl_upsample_fn(name) \
    void (name)(float *dst, ptrdiff_t dst_stride, const float *src, ptrdiff_t src_stride, \
                int ih, int iw, int c, int oh, int ow, int y0, int y1)
typedef decl_upsample_fn(mo_upsample_fn);

/**
 * The same upsampling fused with an argmax over the c <= 256 channels: dst[y][x] = the
 * first channel whose value is above every earlier one (v > best, as a scalar loop: a NaN
 * never wins after channel 0). The values are those of ::mo_upsample_fn, bit for bit.
 * @param dst labels, rows [y0, y1) of ow bytes, row stride dst_stride bytes
 */
#define decl_upsample_argmax_fn(name) \
    void (name)(uint8_t *dst, ptrdiff_t dst_stride, const float *src, ptrdiff_t src_stride, \
                int ih, int iw, int c, int oh, int ow, int y0, int y1)
typedef decl_upsample_argmax_fn(mo_upsample_argmax_fn);
#define MO_UPSAMPLE_ARGMAX_MAX_C 256

/**
 * Softmax of n rows of k >= 1 floats: m = max (as a scalar loop from x[0]), e_j =
 * mo_ops_exp(x_j - m), s = the sum of the e_j in the 16-partial-sum order of
 * ::mo_gemv_fn, p_j = e_j * (1 / s).
 * Row r is read at src + r * src_stride, written at dst + r * dst_rs + j * dst_cs
 * (dst_cs = 1: rows of probabilities; dst_rs = 1, dst_cs = n_total: class-major, as the
 * detection head scans them). In place is allowed when dst == src with dst_cs == 1 and
 * dst_rs == src_stride.
 */
#define decl_softmax_fn(name) \
    void (name)(float *dst, ptrdiff_t dst_rs, ptrdiff_t dst_cs, const float *src, \
                ptrdiff_t src_stride, size_t n, int k)
typedef decl_softmax_fn(mo_softmax_fn);

/**
 * Global mean of an h x w map, channels [c0, c1) of c: dst[ch] = (float)(sum / (h * w)),
 * the sum in double over the pixels in row-major order (so a large map loses nothing and
 * every channel's sum is one fixed sequence, whatever [c0, c1)).
 * @param src h rows of w pixels of c floats, row stride src_stride floats (>= w * c)
 * C only: the segmentation head's pooling branch; its cost is one read of the map.
 */
#define decl_mean_fn(name) \
    void (name)(float *dst, const float *src, ptrdiff_t src_stride, int h, int w, int c, \
                int c0, int c1)
typedef decl_mean_fn(mo_mean_fn);

/* ------------------------------------------------ shared by every variant */

/* Source index pair and weights of output position i, as torch 1.13's CPU kernel
 * (area_pixel_compute_source_index + compute_source_index_and_lambda): the scale is
 * (float)in / out, the source coordinate and lambda1 are computed in double (the CPU
 * acc_type of float), lambda1 is rounded to float and lambda0 = 1 - lambda1 in float.
 * io/resize.c's mo_tensor_resize_bilinear() is this operator. */
typedef struct mo_ops_lin {
    int i0, i1;
    float l0, l1;
} mo_ops_lin;

static inline mo_ops_lin mo_ops_lin_at(int i, int in, int out)
{
    if (in == out)
        return (mo_ops_lin){i, i, 1.0f, 0.0f};
    const float scale = (float)in / (float)out;
    double src = (double)scale * ((double)i + 0.5) - 0.5;
    if (src < 0.0)
        src = 0.0;
    int i0 = (int)src;
    if (i0 > in - 1)
        i0 = in - 1;
    double d1 = src - (double)i0;
    d1 = d1 < 0.0 ? 0.0 : d1 > 1.0 ? 1.0 : d1;
    const float l1 = (float)d1;
    return (mo_ops_lin){i0, i0 + (i0 < in - 1), 1.0f - l1, l1};
}

/*
 * exp(x) for x <= 0 (softmax arguments x - max), the same bits in every variant:
 * n = floor(x log2(e) + 1/2), r = (x - n ln2_hi) - n ln2_lo (ln2_hi has 9 significant
 * bits: n ln2_hi is exact), p = Taylor polynomial of degree 7 by Horner (|r| <= 0.35:
 * truncation below 0.1 ulp), result p 2^e1 2^e2 with e1 = n / 2 (toward zero), e2 = n - e1,
 * both normal, so a subnormal result is rounded once. x < -104 gives 0 (exp(x) < 2^-150),
 * x > 0 is taken as 0, NaN stays NaN. About 1 ulp from the exact value.
 */
#define MO_OPS_LOG2E 1.44269504088896341f
#define MO_OPS_LN2_HI 0.693359375f
#define MO_OPS_LN2_LO (-2.12194440054690583e-4f)
#define MO_OPS_EXP_LO (-104.0f)
#define MO_OPS_P7 (1.0f / 5040.0f)
#define MO_OPS_P6 (1.0f / 720.0f)
#define MO_OPS_P5 (1.0f / 120.0f)
#define MO_OPS_P4 (1.0f / 24.0f)
#define MO_OPS_P3 (1.0f / 6.0f)

static inline float mo_ops_pow2i(int e) /* 2^e, -126 <= e <= 127 */
{
    union {
        uint32_t u;
        float f;
    } v = {(uint32_t)(e + 127) << 23};
    return v.f;
}

static inline float mo_ops_exp(float x)
{
    if (x != x)
        return x;
    if (x < MO_OPS_EXP_LO)
        return 0.0f;
    if (x > 0.0f)
        x = 0.0f;
    float t = x * MO_OPS_LOG2E;
    t = t + 0.5f;
    const float n = floorf(t);
    float r = x - n * MO_OPS_LN2_HI;
    r = r - n * MO_OPS_LN2_LO;
    float p = MO_OPS_P7 * r;
    p = (p + MO_OPS_P6) * r;
    p = (p + MO_OPS_P5) * r;
    p = (p + MO_OPS_P4) * r;
    p = (p + MO_OPS_P3) * r;
    p = (p + 0.5f) * r;
    p = (p + 1.0f) * r;
    p = p + 1.0f;
    const int e = (int)n, e1 = -((-e) >> 1), e2 = e - e1;
    p = p * mo_ops_pow2i(e1);
    return p * mo_ops_pow2i(e2);
}

static inline float mo_ops_act(float s, int act)
{
    if (act >= 1 && s < 0.0f)
        s = 0.0f;
    if (act == 2 && s > 6.0f)
        s = 6.0f;
    return s;
}

#endif
