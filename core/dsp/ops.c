/*
 * Portable C reference of the head operators (contracts in mo_internal/ops.h) and their
 * dispatch. Every SIMD variant reproduces these operations exactly (same order, no FMA).
 */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF /* GCC: -std=c11 does not contract */
#endif
#include "mo_internal/conv.h"

#if defined(MO_HAVE_AVX2)
#include "x86/ops_x86.h"
#endif
#if defined(MO_HAVE_NEON)
#include "arm/ops_arm.h"
#endif

/* ------------------------------------------------------------------- GEMV */

/* The 16-partial-sum dot product of the contract. */
static float dot16(const float *restrict w, const float *restrict x, int k)
{
    float acc[16] = {0};
    const int kend = k / 16 * 16;
    for (int i = 0; i < kend; i += 16)
        for (int j = 0; j < 16; j++)
            acc[j] += w[i + j] * x[i + j];
    for (int h = 8; h > 0; h /= 2)
        for (int j = 0; j < h; j++)
            acc[j] += acc[j + h];
    float s = acc[0];
    for (int i = kend; i < k; i++)
        s += w[i] * x[i];
    return s;
}

decl_gemv_fn(mo_gemv_c)
{
    for (int j = 0; j < n; j++) {
        const float s = dot16(w + (size_t)j * (size_t)k, x, k);
        y[j] = mo_ops_act(s + b[j], act);
    }
}

/* --------------------------------------------------------------- upsample */

decl_upsample_fn(mo_upsample_c)
{
    for (int y = y0; y < y1; y++) {
        const mo_ops_lin ly = mo_ops_lin_at(y, ih, oh);
        const float *r0 = src + (ptrdiff_t)ly.i0 * src_stride;
        const float *r1 = src + (ptrdiff_t)ly.i1 * src_stride;
        float *d = dst + (ptrdiff_t)y * dst_stride;
        for (int x = 0; x < ow; x++) {
            const mo_ops_lin lx = mo_ops_lin_at(x, iw, ow);
            const float *a = r0 + (ptrdiff_t)lx.i0 * c, *b = r0 + (ptrdiff_t)lx.i1 * c;
            const float *p = r1 + (ptrdiff_t)lx.i0 * c, *q = r1 + (ptrdiff_t)lx.i1 * c;
            float *o = d + (ptrdiff_t)x * c;
            for (int ch = 0; ch < c; ch++) {
                const float h0 = a[ch] * lx.l0 + b[ch] * lx.l1;
                const float h1 = p[ch] * lx.l0 + q[ch] * lx.l1;
                o[ch] = h0 * ly.l0 + h1 * ly.l1;
            }
        }
    }
}

decl_upsample_argmax_fn(mo_upsample_argmax_c)
{
    for (int y = y0; y < y1; y++) {
        const mo_ops_lin ly = mo_ops_lin_at(y, ih, oh);
        const float *r0 = src + (ptrdiff_t)ly.i0 * src_stride;
        const float *r1 = src + (ptrdiff_t)ly.i1 * src_stride;
        uint8_t *d = dst + (ptrdiff_t)y * dst_stride;
        for (int x = 0; x < ow; x++) {
            const mo_ops_lin lx = mo_ops_lin_at(x, iw, ow);
            const float *a = r0 + (ptrdiff_t)lx.i0 * c, *b = r0 + (ptrdiff_t)lx.i1 * c;
            const float *p = r1 + (ptrdiff_t)lx.i0 * c, *q = r1 + (ptrdiff_t)lx.i1 * c;
            float best_v = 0.0f;
            int best = 0;
            for (int ch = 0; ch < c; ch++) {
                const float h0 = a[ch] * lx.l0 + b[ch] * lx.l1;
                const float h1 = p[ch] * lx.l0 + q[ch] * lx.l1;
                const float v = h0 * ly.l0 + h1 * ly.l1;
                if (ch == 0 || v > best_v) {
                    best_v = v;
                    best = ch;
                }
            }
            d[x] = (uint8_t)best;
        }
    }
}

/* ---------------------------------------------------------------- softmax */

decl_softmax_fn(mo_softmax_c)
{
    for (size_t r = 0; r < n; r++) {
        const float *x = src + (ptrdiff_t)r * src_stride;
        float *p = dst + (ptrdiff_t)r * dst_rs;
        float m = x[0];
        for (int j = 1; j < k; j++)
            m = x[j] > m ? x[j] : m;
        float acc[16] = {0};
        for (int j = 0; j < k; j++) {
            const float e = mo_ops_exp(x[j] - m);
            p[(ptrdiff_t)j * dst_cs] = e;
            acc[j % 16] += e;
        }
        for (int h = 8; h > 0; h /= 2)
            for (int j = 0; j < h; j++)
                acc[j] += acc[j + h];
        const float inv = 1.0f / acc[0];
        for (int j = 0; j < k; j++)
            p[(ptrdiff_t)j * dst_cs] *= inv;
    }
}

/* ------------------------------------------------------------------- mean */

decl_mean_fn(mo_mean_c)
{
    const double npix = (double)h * (double)w;
    /* blocks of channels, pixels in order within each: each channel's sum is the same
     * sequence of additions, reading rows of the map rather than one float per row */
    enum { CB = 64 };
    double acc[CB];
    for (int ch = c0; ch < c1; ch += CB) {
        const int nc = c1 - ch < CB ? c1 - ch : CB;
        for (int i = 0; i < nc; i++)
            acc[i] = 0.0;
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                const float *r = src + (ptrdiff_t)y * src_stride + (ptrdiff_t)x * c + ch;
                for (int i = 0; i < nc; i++)
                    acc[i] += r[i];
            }
        for (int i = 0; i < nc; i++)
            dst[ch + i] = (float)(acc[i] / npix);
    }
}

/* --------------------------------------------------------------- dispatch */

void mo_ops_dsp_init(mo_conv_dsp *dsp, unsigned cpu_flags)
{
    dsp->gemv = mo_gemv_c;
    dsp->upsample = mo_upsample_c;
    dsp->upsample_argmax = mo_upsample_argmax_c;
    dsp->softmax = mo_softmax_c;
    dsp->mean = mo_mean_c;
    (void)cpu_flags;
#if defined(MO_HAVE_AVX2)
    if (!(cpu_flags & MO_CPU_AVX2))
        return;
    dsp->gemv = mo_gemv_avx2;
    dsp->upsample = mo_upsample_avx2;
    dsp->upsample_argmax = mo_upsample_argmax_avx2;
    dsp->softmax = mo_softmax_avx2;
#endif
#if defined(MO_HAVE_AVX512)
    if (!(cpu_flags & MO_CPU_AVX512))
        return;
    dsp->gemv = mo_gemv_avx512;
    dsp->upsample = mo_upsample_avx512;
    dsp->upsample_argmax = mo_upsample_argmax_avx512;
    dsp->softmax = mo_softmax_avx512;
#endif
#if defined(MO_HAVE_NEON)
    if (!(cpu_flags & MO_CPU_NEON))
        return;
    dsp->gemv = mo_gemv_neon;
    dsp->upsample = mo_upsample_neon;
    dsp->upsample_argmax = mo_upsample_argmax_neon;
    dsp->softmax = mo_softmax_neon;
#endif
}
