/*
 * AVX-512 (F) version of the pointwise GEMM, the kernel that takes ~90% of a forward pass
 * (contract in ../conv.h, C reference in ../conv.c). Built with -mavx512f; only called
 * when the CPU and OS support it (MO_CPU_AVX512, on top of MO_CPU_AVX2).
 *
 * A panel row of MO_PW_NR = 16 output channels is one zmm register. Register tile: up to
 * PW_MR pixels x 2 panels (32 channels) = 24 accumulators + 2 weight vectors + 1
 * broadcast (27 of 32 registers); per input channel 2 weight loads and 12 broadcasts feed
 * 24 FMAs. A lone last panel takes 1-panel tiles. Partial panels (cout not a multiple of
 * 16) use masked loads and stores.
 *
 * Every output element gets bias + an FMA chain over the input channels in order, sliced
 * at multiples of PW_KC (partial sums go through dst, exactly), whatever its tile or pixel
 * range: splitting a layer over threads gives the same bits. With the same slicing as the
 * AVX2 kernel, the two even agree to the bit.
 */
#include <immintrin.h>
#include <stddef.h>

#include "conv_x86.h"

#define ACT_RELU6 2 /* MO_ACT_RELU6 of the detection head's kernels, see conv_avx2.c */

#define ALWAYS_INLINE inline __attribute__((always_inline))

#define PW_MR 12
#define PW_KC 256
#define PW_BLOCK_BYTES (256 * 1024)

static ALWAYS_INLINE __m512 activate(__m512 v, int relu)
{
    if (relu) /* max(v, 0) returns 0 for NaN, as `v > 0 ? v : 0` does */
        v = _mm512_max_ps(v, _mm512_setzero_ps());
    if (relu == ACT_RELU6)
        v = _mm512_min_ps(v, _mm512_set1_ps(6.0f));
    return v;
}

static ALWAYS_INLINE __mmask16 lanes(int nc)
{
    return nc >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << nc) - 1u);
}

/*
 * m pixels x np panels (1 or 2). dst points at (pixel 0, first channel of the tile);
 * nc0, nc1: valid channels of each panel (16 except in the last one).
 */
static ALWAYS_INLINE void pw_tile(float *restrict dst, size_t cout, const float *restrict src,
                                  size_t cin, int k0, int k1, const float *restrict wp0,
                                  const float *restrict wp1, const float *restrict bias,
                                  int nc0, int nc1, int last, int relu, const int m,
                                  const int np)
{
    const __mmask16 m0 = lanes(nc0), m1 = np > 1 ? lanes(nc1) : 0;
    __m512 acc[PW_MR][2];
    if (bias) {
        const __m512 b0 = _mm512_maskz_loadu_ps(m0, bias);
        const __m512 b1 = np > 1 ? _mm512_maskz_loadu_ps(m1, bias + 16) : _mm512_setzero_ps();
#pragma GCC unroll 12
        for (int i = 0; i < m; i++) {
            acc[i][0] = b0;
            acc[i][1] = b1;
        }
    } else {
#pragma GCC unroll 12
        for (int i = 0; i < m; i++) {
            acc[i][0] = _mm512_maskz_loadu_ps(m0, dst + i * cout);
            acc[i][1] = np > 1 ? _mm512_maskz_loadu_ps(m1, dst + i * cout + 16)
                               : _mm512_setzero_ps();
        }
    }
    const float *restrict a = src + k0;
    const float *restrict w0 = wp0 + (size_t)k0 * MO_PW_NR;
    const float *restrict w1 = np > 1 ? wp1 + (size_t)k0 * MO_PW_NR : w0;
    for (int k = k0; k < k1; k++, a++, w0 += MO_PW_NR, w1 += MO_PW_NR) {
        const __m512 v0 = _mm512_loadu_ps(w0);
        const __m512 v1 = np > 1 ? _mm512_loadu_ps(w1) : v0;
#pragma GCC unroll 12
        for (int i = 0; i < m; i++) {
            const __m512 x = _mm512_set1_ps(a[i * cin]);
            acc[i][0] = _mm512_fmadd_ps(x, v0, acc[i][0]);
            if (np > 1)
                acc[i][1] = _mm512_fmadd_ps(x, v1, acc[i][1]);
        }
    }
#pragma GCC unroll 12
    for (int i = 0; i < m; i++) {
        __m512 r0 = acc[i][0], r1 = acc[i][1];
        if (last) {
            r0 = activate(r0, relu);
            r1 = activate(r1, relu);
        }
        _mm512_mask_storeu_ps(dst + i * cout, m0, r0);
        if (np > 1)
            _mm512_mask_storeu_ps(dst + i * cout + 16, m1, r1);
    }
}

/* Pixels [p, pend) of one panel pair (np = 2) or one panel: full tiles, then the rest. */
static ALWAYS_INLINE void pw_panels(float *dst, size_t cout, const float *src, size_t cin,
                                    size_t p, size_t pend, int k0, int k1, const float *wp0,
                                    const float *wp1, const float *b, int nc0, int nc1,
                                    int last, int relu, const int np)
{
    for (; p + PW_MR <= pend; p += PW_MR)
        pw_tile(dst + p * cout, cout, src + p * cin, cin, k0, k1, wp0, wp1, b, nc0, nc1, last,
                relu, PW_MR, np);
    float *d = dst + p * cout;
    const float *s = src + p * cin;
#define REST(mm) \
    case mm: pw_tile(d, cout, s, cin, k0, k1, wp0, wp1, b, nc0, nc1, last, relu, mm, np); break
    switch (pend - p) {
    REST(11); REST(10); REST(9); REST(8); REST(7); REST(6);
    REST(5); REST(4); REST(3); REST(2); REST(1);
    default: break;
    }
#undef REST
}

decl_pw_fn(mo_pw_avx512)
{
    const int np = (cout + MO_PW_NR - 1) / MO_PW_NR;
    const int kc = cin < PW_KC ? cin : PW_KC;
    size_t mb = PW_BLOCK_BYTES / (sizeof(float) * (size_t)kc);
    mb = mb < PW_MR ? PW_MR : mb / PW_MR * PW_MR;
    const size_t ci = (size_t)cin, co_n = (size_t)cout;
    const size_t panel = ci * MO_PW_NR;

    for (size_t p0 = 0; p0 < n; p0 += mb) {
        const size_t pend = n - p0 < mb ? n : p0 + mb;
        for (int k0 = 0; k0 < cin; k0 += kc) {
            const int k1 = cin - k0 < kc ? cin : k0 + kc;
            const int first = k0 == 0, last = k1 == cin;
            int pj = 0;
            for (; pj + 2 <= np; pj += 2) {
                const int co = pj * MO_PW_NR;
                const int nc1 = cout - co - 16 < 16 ? cout - co - 16 : 16;
                pw_panels(dst + co, co_n, src, ci, p0, pend, k0, k1, weight + pj * panel,
                          weight + (pj + 1) * panel, first ? bias + co : NULL, 16, nc1, last,
                          relu, 2);
            }
            if (pj < np) {
                const int co = pj * MO_PW_NR;
                pw_panels(dst + co, co_n, src, ci, p0, pend, k0, k1, weight + pj * panel, NULL,
                          first ? bias + co : NULL, cout - co, 0, last, relu, 1);
            }
        }
    }
}
