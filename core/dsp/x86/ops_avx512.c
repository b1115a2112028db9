/*
 * AVX-512F variants of the head operators (contracts in mo_internal/ops.h): the bits of
 * the C reference (core/dsp/ops.c), with separate multiplies and adds (no FMA) in its
 * order; one 16-lane vector is the reference's 16 partial sums.
 */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif
#include <immintrin.h>
#include <string.h>

#include "ops_x86.h"

static inline __mmask16 tail16(int n) /* lanes [0, n), n in 0..16 */
{
    return (__mmask16)((1u << n) - 1u);
}

/* The 16 partial sums of a vector halved pairwise (h = 8, 4, 2, 1). */
static inline float reduce16(__m512 v)
{
    const __m256 a = _mm512_castps512_ps256(v);
    const __m256 b = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1));
    const __m256 s8 = _mm256_add_ps(a, b);
    __m128 t = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps(s8, 1));
    t = _mm_add_ps(t, _mm_movehl_ps(t, t));
    t = _mm_add_ss(t, _mm_shuffle_ps(t, t, 1));
    return _mm_cvtss_f32(t);
}

static inline float tail_dot(float s, const float *w, const float *x, int i, int k)
{
    for (; i < k; i++)
        s += w[i] * x[i];
    return s;
}

/* ------------------------------------------------------------------- GEMV */

#define GEMV_PF_ROWS 8

decl_gemv_fn(mo_gemv_avx512)
{
    const int kend = k / 16 * 16;
    int j = 0;
    for (; j + 4 <= n; j += 4) {
        const float *w0 = w + (size_t)j * k, *w1 = w0 + k, *w2 = w1 + k, *w3 = w2 + k;
        __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        /* The 4 rows GEMV_PF_ROWS ahead, into L1: a classifier's weights come from DRAM
         * (s2's 1000 x 2048: 0.29 -> 0.27 ms in-network) */
        const float *pf = j + GEMV_PF_ROWS + 4 <= n ? w0 + (size_t)GEMV_PF_ROWS * k : NULL;
        for (int i = 0; i < kend; i += 16) {
            if (pf) {
                _mm_prefetch((const char *)(pf + i), _MM_HINT_T0);
                _mm_prefetch((const char *)(pf + k + i), _MM_HINT_T0);
                _mm_prefetch((const char *)(pf + 2 * k + i), _MM_HINT_T0);
                _mm_prefetch((const char *)(pf + 3 * k + i), _MM_HINT_T0);
            }
            const __m512 xv = _mm512_loadu_ps(x + i);
            a0 = _mm512_add_ps(a0, _mm512_mul_ps(_mm512_loadu_ps(w0 + i), xv));
            a1 = _mm512_add_ps(a1, _mm512_mul_ps(_mm512_loadu_ps(w1 + i), xv));
            a2 = _mm512_add_ps(a2, _mm512_mul_ps(_mm512_loadu_ps(w2 + i), xv));
            a3 = _mm512_add_ps(a3, _mm512_mul_ps(_mm512_loadu_ps(w3 + i), xv));
        }
        y[j] = mo_ops_act(tail_dot(reduce16(a0), w0, x, kend, k) + b[j], act);
        y[j + 1] = mo_ops_act(tail_dot(reduce16(a1), w1, x, kend, k) + b[j + 1], act);
        y[j + 2] = mo_ops_act(tail_dot(reduce16(a2), w2, x, kend, k) + b[j + 2], act);
        y[j + 3] = mo_ops_act(tail_dot(reduce16(a3), w3, x, kend, k) + b[j + 3], act);
    }
    for (; j < n; j++) {
        const float *w0 = w + (size_t)j * k;
        __m512 a0 = _mm512_setzero_ps();
        for (int i = 0; i < kend; i += 16)
            a0 = _mm512_add_ps(a0, _mm512_mul_ps(_mm512_loadu_ps(w0 + i), _mm512_loadu_ps(x + i)));
        y[j] = mo_ops_act(tail_dot(reduce16(a0), w0, x, kend, k) + b[j], act);
    }
}

/* --------------------------------------------------------------- upsample */

decl_upsample_fn(mo_upsample_avx512)
{
    for (int y = y0; y < y1; y++) {
        const mo_ops_lin ly = mo_ops_lin_at(y, ih, oh);
        const float *r0 = src + (ptrdiff_t)ly.i0 * src_stride;
        const float *r1 = src + (ptrdiff_t)ly.i1 * src_stride;
        float *d = dst + (ptrdiff_t)y * dst_stride;
        const __m512 vy0 = _mm512_set1_ps(ly.l0), vy1 = _mm512_set1_ps(ly.l1);
        for (int x = 0; x < ow; x++) {
            const mo_ops_lin lx = mo_ops_lin_at(x, iw, ow);
            const float *a = r0 + (ptrdiff_t)lx.i0 * c, *b = r0 + (ptrdiff_t)lx.i1 * c;
            const float *p = r1 + (ptrdiff_t)lx.i0 * c, *q = r1 + (ptrdiff_t)lx.i1 * c;
            float *o = d + (ptrdiff_t)x * c;
            const __m512 vx0 = _mm512_set1_ps(lx.l0), vx1 = _mm512_set1_ps(lx.l1);
            for (int ch = 0; ch < c; ch += 16) {
                const __mmask16 m = tail16(c - ch < 16 ? c - ch : 16);
                const __m512 z = _mm512_setzero_ps();
                const __m512 h0 = _mm512_add_ps(_mm512_mul_ps(_mm512_mask_loadu_ps(z, m, a + ch), vx0),
                                                _mm512_mul_ps(_mm512_mask_loadu_ps(z, m, b + ch), vx1));
                const __m512 h1 = _mm512_add_ps(_mm512_mul_ps(_mm512_mask_loadu_ps(z, m, p + ch), vx0),
                                                _mm512_mul_ps(_mm512_mask_loadu_ps(z, m, q + ch), vx1));
                _mm512_mask_storeu_ps(o + ch, m,
                                      _mm512_add_ps(_mm512_mul_ps(h0, vy0), _mm512_mul_ps(h1, vy1)));
            }
        }
    }
}

/* Fused upsample + argmax, as ops_avx2.c with 16 output pixels per vector. */
enum { UA_BUF = 4096, UA_MAXCW = 64 };

static void ua_fill(float *h, const float *row, int c, int cw, const int *i0, const int *i1,
                    const float *l0, const float *l1)
{
    for (int x = 0; x < cw; x += 16) {
        const __m512i g0 = _mm512_loadu_si512(i0 + x), g1 = _mm512_loadu_si512(i1 + x);
        const __m512 w0 = _mm512_loadu_ps(l0 + x), w1 = _mm512_loadu_ps(l1 + x);
        for (int ch = 0; ch < c; ch++) {
            const __m512 a = _mm512_i32gather_ps(g0, row + ch, 4);
            const __m512 b = _mm512_i32gather_ps(g1, row + ch, 4);
            _mm512_storeu_ps(h + (size_t)ch * cw + x,
                             _mm512_add_ps(_mm512_mul_ps(a, w0), _mm512_mul_ps(b, w1)));
        }
    }
}

decl_upsample_argmax_fn(mo_upsample_argmax_avx512)
{
    float buf[2][UA_BUF];
    int i0[UA_MAXCW], i1[UA_MAXCW];
    float l0[UA_MAXCW], l1[UA_MAXCW];
    int32_t lab[16];
    int cw = UA_BUF / c / 16 * 16;
    if (cw > UA_MAXCW)
        cw = UA_MAXCW;
    for (int x0 = 0; x0 < ow; x0 += cw) {
        const int nx = ow - x0 < cw ? ow - x0 : cw;
        const int cwp = (nx + 15) / 16 * 16;
        for (int x = 0; x < cwp; x++) {
            const mo_ops_lin lx = mo_ops_lin_at(x0 + (x < nx ? x : nx - 1), iw, ow);
            i0[x] = lx.i0 * c;
            i1[x] = lx.i1 * c;
            l0[x] = lx.l0;
            l1[x] = lx.l1;
        }
        float *h0 = buf[0], *h1 = buf[1];
        int cur0 = -1, cur1 = -1;
        for (int y = y0; y < y1; y++) {
            const mo_ops_lin ly = mo_ops_lin_at(y, ih, oh);
            if (ly.i0 != cur0) {
                if (ly.i0 == cur1) {
                    float *t = h0;
                    h0 = h1;
                    h1 = t;
                    cur1 = -1;
                } else {
                    ua_fill(h0, src + (ptrdiff_t)ly.i0 * src_stride, c, cwp, i0, i1, l0, l1);
                }
                cur0 = ly.i0;
            }
            if (ly.i1 != cur1) {
                if (ly.i1 == cur0)
                    memcpy(h1, h0, sizeof(float) * (size_t)c * cwp);
                else
                    ua_fill(h1, src + (ptrdiff_t)ly.i1 * src_stride, c, cwp, i0, i1, l0, l1);
                cur1 = ly.i1;
            }
            const __m512 wy0 = _mm512_set1_ps(ly.l0), wy1 = _mm512_set1_ps(ly.l1);
            uint8_t *d = dst + (ptrdiff_t)y * dst_stride + x0;
            for (int x = 0; x < cwp; x += 16) {
                const float *p0 = h0 + x, *p1 = h1 + x;
                __m512 best = _mm512_add_ps(_mm512_mul_ps(_mm512_loadu_ps(p0), wy0),
                                            _mm512_mul_ps(_mm512_loadu_ps(p1), wy1));
                __m512i bi = _mm512_setzero_si512();
                for (int ch = 1; ch < c; ch++) {
                    const __m512 v = _mm512_add_ps(
                        _mm512_mul_ps(_mm512_loadu_ps(p0 + (size_t)ch * cwp), wy0),
                        _mm512_mul_ps(_mm512_loadu_ps(p1 + (size_t)ch * cwp), wy1));
                    const __mmask16 gt = _mm512_cmp_ps_mask(v, best, _CMP_GT_OQ);
                    best = _mm512_mask_blend_ps(gt, best, v);
                    bi = _mm512_mask_blend_epi32(gt, bi, _mm512_set1_epi32(ch));
                }
                _mm512_storeu_si512(lab, bi);
                const int m = nx - x < 16 ? nx - x : 16;
                for (int t = 0; t < m; t++)
                    d[x + t] = (uint8_t)lab[t];
            }
        }
    }
}

/* ---------------------------------------------------------------- softmax */

static inline __m512 exp16(__m512 x)
{
    const __m512 zero = _mm512_setzero_ps();
    const __mmask16 nan = _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q);
    const __mmask16 lo = _mm512_cmp_ps_mask(x, _mm512_set1_ps(MO_OPS_EXP_LO), _CMP_LT_OQ);
    const __m512 xc = _mm512_max_ps(_mm512_min_ps(x, zero), _mm512_set1_ps(MO_OPS_EXP_LO));
    const __m512 t = _mm512_add_ps(_mm512_mul_ps(xc, _mm512_set1_ps(MO_OPS_LOG2E)),
                                   _mm512_set1_ps(0.5f));
    const __m512 n = _mm512_roundscale_ps(t, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_sub_ps(xc, _mm512_mul_ps(n, _mm512_set1_ps(MO_OPS_LN2_HI)));
    r = _mm512_sub_ps(r, _mm512_mul_ps(n, _mm512_set1_ps(MO_OPS_LN2_LO)));
    __m512 p = _mm512_mul_ps(_mm512_set1_ps(MO_OPS_P7), r);
    p = _mm512_mul_ps(_mm512_add_ps(p, _mm512_set1_ps(MO_OPS_P6)), r);
    p = _mm512_mul_ps(_mm512_add_ps(p, _mm512_set1_ps(MO_OPS_P5)), r);
    p = _mm512_mul_ps(_mm512_add_ps(p, _mm512_set1_ps(MO_OPS_P4)), r);
    p = _mm512_mul_ps(_mm512_add_ps(p, _mm512_set1_ps(MO_OPS_P3)), r);
    p = _mm512_mul_ps(_mm512_add_ps(p, _mm512_set1_ps(0.5f)), r);
    p = _mm512_mul_ps(_mm512_add_ps(p, _mm512_set1_ps(1.0f)), r);
    p = _mm512_add_ps(p, _mm512_set1_ps(1.0f));
    const __m512i e = _mm512_cvtps_epi32(n);
    const __m512i z = _mm512_setzero_si512();
    const __m512i e1 = _mm512_sub_epi32(z, _mm512_srli_epi32(_mm512_sub_epi32(z, e), 1));
    const __m512i e2 = _mm512_sub_epi32(e, e1);
    const __m512i bias = _mm512_set1_epi32(127);
    p = _mm512_mul_ps(p, _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(e1, bias), 23)));
    p = _mm512_mul_ps(p, _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(e2, bias), 23)));
    p = _mm512_mask_blend_ps(lo, p, zero);
    return _mm512_mask_blend_ps(nan, p, x);
}

static inline void put16(float *p, ptrdiff_t cs, int j, __m512 v, int m)
{
    if (cs == 1) {
        _mm512_mask_storeu_ps(p + j, tail16(m), v);
        return;
    }
    float t[16];
    _mm512_storeu_ps(t, v);
    for (int i = 0; i < m; i++)
        p[(ptrdiff_t)(j + i) * cs] = t[i];
}

static inline __m512 get16(const float *p, ptrdiff_t cs, int j, int m)
{
    if (cs == 1)
        return _mm512_maskz_loadu_ps(tail16(m), p + j);
    float t[16] = {0};
    for (int i = 0; i < m; i++)
        t[i] = p[(ptrdiff_t)(j + i) * cs];
    return _mm512_loadu_ps(t);
}

/* exp(x_j - max) of one row into p[j * cs] (p may be x when cs == 1); returns 1 / sum. */
static inline float row_exp(float *p, ptrdiff_t cs, const float *x, int k)
{
    const __m512 x0 = _mm512_set1_ps(x[0]);
    __m512 mv = x0;
    for (int j = 0; j < k; j += 16) {
        const int m = k - j < 16 ? k - j : 16;
        mv = _mm512_max_ps(_mm512_mask_loadu_ps(x0, tail16(m), x + j), mv);
    }
    const __m256 a = _mm512_castps512_ps256(mv);
    const __m256 b = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(mv), 1));
    const __m256 m8 = _mm256_max_ps(b, a);
    __m128 t = _mm_max_ps(_mm256_extractf128_ps(m8, 1), _mm256_castps256_ps128(m8));
    t = _mm_max_ps(_mm_movehl_ps(t, t), t);
    t = _mm_max_ss(_mm_shuffle_ps(t, t, 1), t);
    const __m512 mx = _mm512_set1_ps(_mm_cvtss_f32(t));
    __m512 acc = _mm512_setzero_ps();
    for (int j = 0; j < k; j += 16) {
        const int m = k - j < 16 ? k - j : 16;
        const __mmask16 mk = tail16(m);
        const __m512 e =
            _mm512_maskz_mov_ps(mk, exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(mk, x + j), mx)));
        put16(p, cs, j, e, m);
        acc = _mm512_add_ps(acc, e);
    }
    return 1.0f / reduce16(acc);
}

static inline void row_scale(float *p, ptrdiff_t cs, int k, float inv)
{
    const __m512 v = _mm512_set1_ps(inv);
    for (int j = 0; j < k; j += 16) {
        const int m = k - j < 16 ? k - j : 16;
        put16(p, cs, j, _mm512_mul_ps(get16(p, cs, j, m), v), m);
    }
}

/* Strided output (class-major): 16 rows at a time through a tile, then one vector store
 * per class when the rows are adjacent (dst_rs == 1). */
enum { SM_TILE = 16384 };

decl_softmax_fn(mo_softmax_avx512)
{
    const int kt = (k + 15) / 16 * 16;
    if (dst_cs == 1 || 16 * kt > SM_TILE) {
        for (size_t r = 0; r < n; r++) {
            float *p = dst + (ptrdiff_t)r * dst_rs;
            row_scale(p, dst_cs, k, row_exp(p, dst_cs, src + (ptrdiff_t)r * src_stride, k));
        }
        return;
    }
    float tile[SM_TILE];
    const __m512i idx = _mm512_mullo_epi32(
        _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
        _mm512_set1_epi32(kt));
    for (size_t r0 = 0; r0 < n; r0 += 16) {
        const int g = n - r0 < 16 ? (int)(n - r0) : 16;
        for (int r = 0; r < g; r++) {
            float *e = tile + (size_t)r * kt;
            row_scale(e, 1, k, row_exp(e, 1, src + (ptrdiff_t)(r0 + r) * src_stride, k));
        }
        float *p = dst + (ptrdiff_t)r0 * dst_rs;
        if (g == 16 && dst_rs == 1) {
            for (int j = 0; j < k; j++)
                _mm512_storeu_ps(p + (ptrdiff_t)j * dst_cs, _mm512_i32gather_ps(idx, tile + j, 4));
            continue;
        }
        for (int r = 0; r < g; r++)
            for (int j = 0; j < k; j++)
                p[(ptrdiff_t)r * dst_rs + (ptrdiff_t)j * dst_cs] = tile[(size_t)r * kt + j];
    }
}
