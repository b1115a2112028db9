/*
 * Convolution kernels of the MobileOne backbone (internal, not installed).
 *
 * After reparameterization a MobileOne network is a 3x3 stem on 3 channels, then
 * alternating depthwise 3x3 and pointwise 1x1 convolutions, each with a bias and a
 * ReLU, some with squeeze-excite (SE) between the conv and the ReLU. These are the
 * only kernels it needs. All maps are NHWC float32 (channels contiguous).
 *
 * Each kernel type is declared once with a decl_*_fn macro (as dav1d's decl_cdef_fn)
 * and reached through ::mo_conv_dsp. The portable C versions (suffix _c, conv.c) are
 * the specification: an optimized version must give the same result up to float
 * rounding (tests/backbone/test_conv.c and later checkdsp compare them).
 *
 * Adding a SIMD version: write core/dsp/<arch>/conv_<isa>.c defining e.g.
 * mo_pw_avx2 with the same signature, declare it below, and add two lines to
 * mo_conv_dsp_init() guarded by the matching cpu flag.
 *
 * Activation: the `relu` argument of every kernel is a ::mo_act mode. MO_ACT_RELU6
 * (min(max(x, 0), 6), for the SSDLite head) is the ReLU followed by a clamp at 6.
 *
 * Exports: mo_conv_dsp_init() and the packing functions are MO_API (but not in a public
 * header) so that the head libraries run their convolutions on the same kernels, SIMD
 * versions included; the kernels themselves are reached through ::mo_conv_dsp.
 *
 * Threading: the stem and depthwise kernels compute output rows [y0, y1) only, and the
 * pointwise kernel any run of pixels, so a caller can split one layer over threads
 * without another entry point.
 */
#ifndef MO_DSP_CONV_H
#define MO_DSP_CONV_H

#include <stddef.h>

#include "mo/common.h"

/** Activation applied by a kernel after the bias (the `relu` argument). */
enum mo_act {
    MO_ACT_NONE = 0,  /* identity */
    MO_ACT_RELU = 1,  /* max(x, 0) */
    MO_ACT_RELU6 = 2, /* min(max(x, 0), 6) */
};

/* Output size of a 3x3 conv with padding == dilation, or of a 1x1 conv, at this stride. */
#define MO_CONV_OUT(n, stride) (((n) - 1) / (stride) + 1)

/* Output columns [*x_lo, *x_hi) of a 3x3 depthwise conv whose taps all fall inside the row
 * (x*stride - dil >= 0 and x*stride + dil <= iw - 1): the kernels' unchecked interior. */
static inline void mo_dw_interior(int iw, int stride, int dil, int *x_lo, int *x_hi)
{
    const int ow = MO_CONV_OUT(iw, stride);
    int lo = (dil + stride - 1) / stride;
    int hi = iw - 1 - dil >= 0 ? (iw - 1 - dil) / stride + 1 : 0;
    if (lo > ow)
        lo = ow;
    if (hi > ow)
        hi = ow;
    *x_lo = lo;
    *x_hi = hi < lo ? lo : hi;
}

/**
 * Stem: 3x3 conv on a 3-channel image, stride 2, padding 1, + bias, + optional ReLU.
 * @param dst    output, MO_CONV_OUT(ih, 2) x MO_CONV_OUT(iw, 2) x cout
 * @param dst_stride elements from one output row to the next (>= ow * cout)
 * @param src    input, ih x iw x 3
 * @param src_stride elements from one input row to the next (>= iw * 3)
 * @param weight packed [ky][kx][ci][cout] = 27 x cout floats (mo_stem_pack())
 * @param bias   cout floats
 * @param relu   activation, enum mo_act (MO_ACT_NONE leaves the conv output as it is)
 * @param y0,y1  output rows to compute, 0 <= y0 <= y1 <= oh
 */
#define decl_stem3x3_fn(name) \
    void (name)(float *dst, ptrdiff_t dst_stride, const float *src, ptrdiff_t src_stride, \
                int ih, int iw, int cout, const float *weight, const float *bias, int relu, \
                int y0, int y1)
typedef decl_stem3x3_fn(mo_stem3x3_fn);

/**
 * Depthwise 3x3 conv (groups = channels), stride 1 or 2, dilation d, padding d,
 * + bias, + optional ReLU. Output size MO_CONV_OUT(ih, stride) x MO_CONV_OUT(iw, stride).
 * @param weight packed [ky][kx][c] = 9 x c floats (mo_dw_pack())
 * @param stride 1 or 2
 * @param dil    dilation >= 1 (also the padding); any value, even beyond the map size
 * @param y0,y1  output rows to compute
 * dst and src must not overlap.
 */
#define decl_dw3x3_fn(name) \
    void (name)(float *dst, ptrdiff_t dst_stride, const float *src, ptrdiff_t src_stride, \
                int ih, int iw, int c, int stride, int dil, const float *weight, \
                const float *bias, int relu, int y0, int y1)
typedef decl_dw3x3_fn(mo_dw3x3_fn);

/* Columns of output channels per panel of packed pointwise weights. */
#define MO_PW_NR 16

/*
 * Cache blocking shared by the SIMD pointwise kernels: input channels in equal slices of at
 * most kc_max (*kc, rounded up to a multiple of k_align), pixels in equal blocks of whole
 * mr-pixel tiles (*mb) whose input slice fills about block_bytes, so no short last block
 * streams the whole weight matrix for a few pixels. Only the traversal depends on it: each
 * element's sum is the same sequence whatever the blocking.
 */
static inline void mo_pw_blocking(size_t n, int cin, int kc_max, int k_align,
                                  size_t block_bytes, int mr, int *kc, size_t *mb)
{
    const int nks = (cin + kc_max - 1) / kc_max;
    const int k = nks > 1 ? ((cin + nks - 1) / nks + k_align - 1) / k_align * k_align : cin;
    size_t m = block_bytes / (sizeof(float) * (size_t)(k > 0 ? k : 1));
    m = m < (size_t)mr ? (size_t)mr : m / (size_t)mr * (size_t)mr;
    if (n > m) { /* equal blocks, whole tiles */
        const size_t nb = (n + m - 1) / m;
        m = ((n + nb - 1) / nb + (size_t)mr - 1) / (size_t)mr * (size_t)mr;
    }
    *kc = k;
    *mb = m;
}

/**
 * Pointwise 1x1 conv as a GEMM: dst[p][co] = bias[co] + sum_ci src[p][ci] * W[co][ci],
 * + activation (enum mo_act), over @p n contiguous pixels (rows of cin and cout floats).
 * @param weight packed by mo_pw_pack(): ceil(cout / MO_PW_NR) panels, each cin rows of
 *               MO_PW_NR output channels (zero beyond cout), so the loop over output
 *               channels reads contiguous memory.
 * dst and src must not overlap.
 */
#define decl_pw_fn(name) \
    void (name)(float *dst, const float *src, size_t n, int cin, int cout, \
                const float *weight, const float *bias, int relu)
typedef decl_pw_fn(mo_pw_fn);

/**
 * Pointwise 1x1 conv added onto strided rows, no bias, no activation (the segmentation
 * head: ASPP branches written side by side into one buffer, a dilated 3x3 conv as one
 * such product per tap): dst[p * dst_stride + co] += sum_ci src[p * src_stride + ci] *
 * W[co][ci] for p < n, co < cout; the rest of each dst row is left alone.
 * @param dst_stride elements from one output row to the next (>= cout)
 * @param src_stride elements from one input row to the next; 0: every pixel reads the
 *                   same cin floats (zero padding)
 * @param weight packed by mo_pw_pack(), as for decl_pw_fn
 * Every element gets the operations of decl_pw_fn with its old dst value as the bias, so
 * writing the bias into dst first and then calling this gives the bits of ::mo_pw_fn.
 * dst and src must not overlap.
 */
#define decl_pw_acc_fn(name) \
    void (name)(float *dst, ptrdiff_t dst_stride, const float *src, ptrdiff_t src_stride, \
                size_t n, int cin, int cout, const float *weight)
typedef decl_pw_acc_fn(mo_pw_acc_fn);

/**
 * Squeeze-excite on a conv output, followed by the block's ReLU, in place:
 * m = mean over pixels of x; r = relu(rb + rw m); e = sigmoid(eb + ew r);
 * x[p][ch] = relu(x[p][ch] * e[ch]).
 * @param x   n pixels of c floats
 * @param rw  reduce weights [cr][c], rb [cr]; ew expand weights [c][cr], eb [c]
 * @param tmp scratch of c + cr floats
 */
#define decl_se_fn(name) \
    void (name)(float *x, size_t n, int c, int cr, const float *rw, const float *rb, \
                const float *ew, const float *eb, float *tmp)
typedef decl_se_fn(mo_se_fn);

/** Global average pool: dst[ch] = mean over the n pixels of src (rows of c floats). */
#define decl_gap_fn(name) void (name)(float *dst, const float *src, size_t n, int c)
typedef decl_gap_fn(mo_gap_fn);

/*
 * Dense 3x3 convolution (all input channels to all output channels), stride 1 or 2,
 * dilation dil, padding dil, over output rows [y0, y1), written into strided rows (the
 * segmentation head: ASPP branches side by side in one concatenation buffer):
 *   dst[y * dst_stride + x * dst_pixel + co] =
 *       act(start + sum over the taps (ky, kx) that read the image, in order ky * 3 + kx,
 *                   sum over ci in order of src[iy * src_stride + ix * cin + ci] * W)
 * with iy = y * stride + (ky - 1) * dil, ix = x * stride + (kx - 1) * dil, start = bias[co]
 * (bias non-NULL) or the old dst value (bias NULL: the accumulating form). Taps that fall
 * in the padding are skipped, not multiplied by zero. Output size MO_CONV_OUT(ih, stride)
 * x MO_CONV_OUT(iw, stride); elements co >= cout of each dst pixel are left alone.
 * @param weight packed by mo_conv3x3_pack(): the 9 taps one after the other, each as
 *               mo_pw_pack() packs a 1x1 conv (mo_pw_packed_size(cin, cout) floats)
 * @param relu   activation (enum mo_act) applied to the final sum
 * Every output element gets the same operations whatever [y0, y1) and wherever it lies in
 * the map, so rows can be split between threads with bit-identical results: its start
 * value, then for each valid tap in order and each ci in order one multiply-add (fused in
 * the SIMD variants).
 * dst and src must not overlap.
 */
#define decl_conv3x3_fn(name) \
    void (name)(float *dst, ptrdiff_t dst_stride, ptrdiff_t dst_pixel, const float *src, \
                ptrdiff_t src_stride, int ih, int iw, int cin, int cout, int stride, int dil, \
                const float *weight, const float *bias, int relu, int y0, int y1)
typedef decl_conv3x3_fn(mo_conv3x3_fn);

/* Output positions [*lo, *hi) of a row (or column) of n inputs at this stride whose tap at
 * offset off (= (k - 1) * dil) reads the image: 0 <= o * stride + off <= n - 1. */
static inline void mo_conv3x3_range(int n, int stride, int off, int *lo, int *hi)
{
    const int on = MO_CONV_OUT(n, stride);
    int l = off >= 0 ? 0 : (-off + stride - 1) / stride;
    int h = n - 1 - off >= 0 ? (n - 1 - off) / stride + 1 : 0;
    if (h > on)
        h = on;
    if (l > h)
        l = h;
    *lo = l;
    *hi = h;
}
#include "mo_internal/ops.h" /* head operators: GEMV, upsample, softmax (core/dsp/ops.c) */

typedef struct mo_conv_dsp {
    mo_stem3x3_fn *stem3x3;
    mo_dw3x3_fn *dw3x3;
    mo_pw_fn *pw;
    mo_pw_acc_fn *pw_acc;
    mo_se_fn *se;
    mo_gap_fn *gap;
    mo_conv3x3_fn *conv3x3; /* dense 3x3, see decl_conv3x3_fn (core/dsp/conv3x3.c) */
    /* head operators (mo_internal/ops.h, core/dsp/ops.c) */
    mo_gemv_fn *gemv;
    mo_upsample_fn *upsample;
    mo_upsample_argmax_fn *upsample_argmax;
    mo_softmax_fn *softmax;
    mo_mean_fn *mean;
} mo_conv_dsp;

/* CPU feature bits for mo_conv_dsp_init(); none is used by the C reference yet. */
enum {
    MO_CPU_SSE41 = 1u << 0,
    MO_CPU_AVX2 = 1u << 1, /* with FMA */
    MO_CPU_AVX512 = 1u << 2,
    MO_CPU_NEON = 1u << 8,
    MO_CPU_DOTPROD = 1u << 9, /* detected, no kernel yet */
    MO_CPU_FP16 = 1u << 10,   /* detected, no kernel yet */
};

/** Fill @p dsp with the best kernels allowed by @p cpu_flags (0: the C reference). */
MO_API void mo_conv_dsp_init(mo_conv_dsp *dsp, unsigned cpu_flags);

decl_stem3x3_fn(mo_stem3x3_c);
decl_dw3x3_fn(mo_dw3x3_c);
decl_pw_fn(mo_pw_c);
decl_pw_acc_fn(mo_pw_acc_c);
decl_se_fn(mo_se_c);
decl_gap_fn(mo_gap_c);
decl_gemv_fn(mo_gemv_c);
decl_upsample_fn(mo_upsample_c);
decl_upsample_argmax_fn(mo_upsample_argmax_c);
decl_softmax_fn(mo_softmax_c);
decl_mean_fn(mo_mean_c);
/* Sets the head operators of @p dsp (core/dsp/ops.c); called by mo_conv_dsp_init(). */
void mo_ops_dsp_init(mo_conv_dsp *dsp, unsigned cpu_flags);

/* Weight packing from PyTorch layouts; done once when a model is opened. */

/** [cout][3][3][3] -> [3][3][3][cout]. dst holds 27 * cout floats. */
MO_API void mo_stem_pack(float *dst, const float *w, int cout);
/** [c][1][3][3] -> [3][3][c]. dst holds 9 * c floats. */
MO_API void mo_dw_pack(float *dst, const float *w, int c);
/** Floats of packed pointwise weights: ceil(cout / MO_PW_NR) * MO_PW_NR * cin. */
MO_API size_t mo_pw_packed_size(int cin, int cout);
/** [cout][cin] (a [cout][cin][1][1] conv weight) -> panels, see decl_pw_fn. */
MO_API void mo_pw_pack(float *dst, const float *w, int cin, int cout);
/** As mo_pw_pack() from a strided source: element (input i, output j) is w[j * sn + i * sk]
 *  (mo_pw_pack is sn = cin, sk = 1; tap t of a [cout][cin][3][3] conv: w + t, sn = 9 cin,
 *  sk = 9). Panels past cout are zero. */
MO_API void mo_pw_pack_strided(float *dst, const float *w, int cin, int cout, ptrdiff_t sn,
                               ptrdiff_t sk);

/* Dense 3x3 conv (core/dsp/conv3x3.c). */
decl_conv3x3_fn(mo_conv3x3_c);
/** Set dsp->conv3x3 for @p cpu_flags (called by mo_conv_dsp_init()). */
void mo_conv3x3_dsp_init(mo_conv_dsp *dsp, unsigned cpu_flags);
/** Floats of packed dense 3x3 weights: 9 * mo_pw_packed_size(cin, cout). */
MO_API size_t mo_conv3x3_packed_size(int cin, int cout);
/** [cout][cin][3][3] -> 9 taps (ky * 3 + kx) of mo_pw_pack() panels, see decl_conv3x3_fn. */
MO_API void mo_conv3x3_pack(float *dst, const float *w, int cin, int cout);

#endif
