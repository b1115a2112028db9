/*
 * Dense 3x3 convolution, AVX-512F (contract: decl_conv3x3_fn in mo_internal/conv.h; the C
 * reference in ../conv3x3.c). Built with -mavx512f -mavx2 -mfma. The scheme of
 * conv3x3_avx2.c (read its comment) with one zmm register per pixel and panel: a register
 * tile is C3_MR (12) consecutive output pixels of one row x 2 panels of 16 output channels
 * (24 accumulators, 2 weight vectors, broadcast inputs; a lone last panel alone), partial
 * panels through lane masks. The order of the sums is the AVX2 variant's (one FMA per
 * input channel, taps in order, partial sums through dst), so both give the same bits.
 */
#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#include "conv_x86.h"

#define ALWAYS_INLINE inline __attribute__((always_inline))

#define C3_MR 12
#define C3_KC 256
#define C3_BLOCK_BYTES (96 * 1024)

/*
 * m pixels (dst ldd floats apart, src lds apart) x np (1 or 2) panels of 16 output
 * channels (nc0 / nc1 of them stored), input channels [k0, k1): acc = dst; acc += src . w;
 * dst = acc. Two panels share each broadcast input: 24 accumulators, 2 weight loads and
 * 12 broadcasts per 24 FMAs (one panel: 13 loads per 12 FMAs, load-bound; the ASPP rate-6
 * conv of DeepLabV3 OS32 at 1 thread ran at 139 GFLOP/s).
 */
static ALWAYS_INLINE void c3_tile(float *restrict dst, size_t ldd, const float *restrict src,
                                  size_t lds, int k0, int k1, const float *restrict wp0,
                                  const float *restrict wp1, int nc0, int nc1, const int m,
                                  const int np)
{
    const __mmask16 m0 = (__mmask16)((1u << nc0) - 1u);
    const __mmask16 m1 = np > 1 ? (__mmask16)((1u << nc1) - 1u) : 0;
    __m512 acc[C3_MR][2];
#pragma GCC unroll 12
    for (int i = 0; i < m; i++) {
        acc[i][0] = _mm512_maskz_loadu_ps(m0, dst + i * ldd);
        acc[i][1] = np > 1 ? _mm512_maskz_loadu_ps(m1, dst + i * ldd + 16) : acc[i][0];
    }
    const float *restrict a = src + k0;
    const float *restrict w0 = wp0 + (size_t)k0 * 16;
    const float *restrict w1 = np > 1 ? wp1 + (size_t)k0 * 16 : w0;
    for (int k = k0; k < k1; k++, a++, w0 += 16, w1 += 16) {
        const __m512 v0 = _mm512_loadu_ps(w0);
        const __m512 v1 = np > 1 ? _mm512_loadu_ps(w1) : v0;
#pragma GCC unroll 12
        for (int i = 0; i < m; i++) {
            const __m512 x = _mm512_set1_ps(a[i * lds]);
            acc[i][0] = _mm512_fmadd_ps(x, v0, acc[i][0]);
            if (np > 1)
                acc[i][1] = _mm512_fmadd_ps(x, v1, acc[i][1]);
        }
    }
#pragma GCC unroll 12
    for (int i = 0; i < m; i++) {
        _mm512_mask_storeu_ps(dst + i * ldd, m0, acc[i][0]);
        if (np > 1)
            _mm512_mask_storeu_ps(dst + i * ldd + 16, m1, acc[i][1]);
    }
}

#define C3_CASE(M)                                                                          \
    case M:                                                                                 \
        if (np > 1)                                                                         \
            c3_tile(dst, ldd, src, lds, k0, k1, wp0, wp1, nc0, nc1, M, 2);                  \
        else                                                                                \
            c3_tile(dst, ldd, src, lds, k0, k1, wp0, wp0, nc0, 0, M, 1);                    \
        break;

/* A run of n output pixels of one row, cut into tiles of equal size (+-1, at most C3_MR),
 * for np (1 or 2) panels. */
static void c3_row(float *dst, size_t ldd, const float *src, size_t lds, int n, int k0,
                   int k1, const float *wp0, const float *wp1, int nc0, int nc1, int np)
{
    const int nt = (n + C3_MR - 1) / C3_MR, base = n / nt, big = n % nt;
    for (int t = 0; t < nt; t++) {
        const int m = base + (t < big);
        switch (m) {
            C3_CASE(12) C3_CASE(11) C3_CASE(10) C3_CASE(9) C3_CASE(8) C3_CASE(7)
            C3_CASE(6) C3_CASE(5) C3_CASE(4) C3_CASE(3) C3_CASE(2)
        default: /* 1 */
            C3_CASE(1)
        }
        dst += (size_t)m * ldd;
        src += (size_t)m * lds;
    }
}
#undef C3_CASE

/* Start values and activation of rows [y0, y1). */
static void c3_fill(float *dst, ptrdiff_t dst_stride, ptrdiff_t dst_pixel, int ow, int cout,
                    const float *bias, int y0, int y1)
{
    for (int y = y0; y < y1; y++)
        for (int x = 0; x < ow; x++)
            memcpy(dst + (ptrdiff_t)y * dst_stride + (ptrdiff_t)x * dst_pixel, bias,
                   (size_t)cout * sizeof(float));
}

static void c3_act(float *dst, ptrdiff_t dst_stride, ptrdiff_t dst_pixel, int ow, int cout,
                   int relu, int y0, int y1)
{
    const __m512 zero = _mm512_setzero_ps(), six = _mm512_set1_ps(6.0f);
    for (int y = y0; y < y1; y++)
        for (int x = 0; x < ow; x++) {
            float *o = dst + (ptrdiff_t)y * dst_stride + (ptrdiff_t)x * dst_pixel;
            int co = 0;
            for (; co + 16 <= cout; co += 16) {
                __m512 v = _mm512_max_ps(_mm512_loadu_ps(o + co), zero);
                if (relu == MO_ACT_RELU6)
                    v = _mm512_min_ps(v, six);
                _mm512_storeu_ps(o + co, v);
            }
            for (; co < cout; co++) {
                float v = o[co] > 0.0f ? o[co] : 0.0f;
                if (relu == MO_ACT_RELU6)
                    v = v < 6.0f ? v : 6.0f;
                o[co] = v;
            }
        }
}

decl_conv3x3_fn(mo_conv3x3_avx512)
{
    if (y1 <= y0)
        return;
    const int ow = MO_CONV_OUT(iw, stride);
    const size_t tap = mo_pw_packed_size(cin, cout);
    const int np = (cout + 15) / 16;
    const int kc = cin < C3_KC ? cin : C3_KC;
    const size_t lds = (size_t)stride * (size_t)cin, ldd = (size_t)dst_pixel;
    if (bias)
        c3_fill(dst, dst_stride, dst_pixel, ow, cout, bias, y0, y1);
    for (int t = 0; t < 9; t++) {
        const int dy = (t / 3 - 1) * dil, dx = (t % 3 - 1) * dil;
        int ya, yb, xa, xb;
        mo_conv3x3_range(ih, stride, dy, &ya, &yb);
        mo_conv3x3_range(iw, stride, dx, &xa, &xb);
        ya = ya > y0 ? ya : y0;
        yb = yb < y1 ? yb : y1;
        if (ya >= yb || xa >= xb)
            continue; /* this tap reads only padding in these rows */
        const int n = xb - xa;
        int rb = (int)(C3_BLOCK_BYTES / (sizeof(float) * (size_t)kc * (size_t)n));
        rb = rb < 1 ? 1 : rb;
        const float *wt = weight + (size_t)t * tap;
        for (int r0 = ya; r0 < yb; r0 += rb) {
            const int r1 = yb - r0 < rb ? yb : r0 + rb;
            for (int k0 = 0; k0 < cin; k0 += kc) {
                const int k1 = cin - k0 < kc ? cin : k0 + kc;
                for (int pj = 0; pj < np; pj += 2) { /* panel pairs, a lone last one */
                    const int co = pj * 16, nc0 = cout - co < 16 ? cout - co : 16;
                    const int two = pj + 1 < np ? 2 : 1;
                    const int nc1 = two > 1 ? (cout - co - 16 < 16 ? cout - co - 16 : 16) : 0;
                    const float *wp = wt + (size_t)pj * (size_t)cin * 16;
                    for (int y = r0; y < r1; y++)
                        c3_row(dst + (ptrdiff_t)y * dst_stride + (ptrdiff_t)xa * dst_pixel + co,
                               ldd,
                               src + ((ptrdiff_t)y * stride + dy) * src_stride +
                                   ((ptrdiff_t)xa * stride + dx) * cin,
                               lds, n, k0, k1, wp, wp + (size_t)cin * 16, nc0, nc1, two);
                }
            }
        }
    }
    if (relu)
        c3_act(dst, dst_stride, dst_pixel, ow, cout, relu, y0, y1);
}
