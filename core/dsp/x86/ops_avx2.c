/*
 * AVX2 variants of the head operators (contracts in mo_internal/ops.h): the bits of the C
 * reference (core/dsp/ops.c), with separate multiplies and adds (no FMA) in its order.
 */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif
#include <immintrin.h>
#include <string.h>

#include "ops_x86.h"

/* Lanes [0, n) set, n in 0..8. */
static inline __m256i tail_mask(int n)
{
    const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), idx);
}

/* ------------------------------------------------------------------- GEMV */

/* acc[0..15] (lanes of a, then b) halved pairwise: h = 8, 4, 2, 1. */
static inline float reduce16(__m256 a, __m256 b)
{
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

decl_gemv_fn(mo_gemv_avx2)
{
    const int kend = k / 16 * 16;
    int j = 0;
    for (; j + 4 <= n; j += 4) {
        const float *w0 = w + (size_t)j * k, *w1 = w0 + k, *w2 = w1 + k, *w3 = w2 + k;
        __m256 a0 = _mm256_setzero_ps(), b0 = a0, a1 = a0, b1 = a0, a2 = a0, b2 = a0,
               a3 = a0, b3 = a0;
        for (int i = 0; i < kend; i += 16) {
            const __m256 xa = _mm256_loadu_ps(x + i), xb = _mm256_loadu_ps(x + i + 8);
            a0 = _mm256_add_ps(a0, _mm256_mul_ps(_mm256_loadu_ps(w0 + i), xa));
            b0 = _mm256_add_ps(b0, _mm256_mul_ps(_mm256_loadu_ps(w0 + i + 8), xb));
            a1 = _mm256_add_ps(a1, _mm256_mul_ps(_mm256_loadu_ps(w1 + i), xa));
            b1 = _mm256_add_ps(b1, _mm256_mul_ps(_mm256_loadu_ps(w1 + i + 8), xb));
            a2 = _mm256_add_ps(a2, _mm256_mul_ps(_mm256_loadu_ps(w2 + i), xa));
            b2 = _mm256_add_ps(b2, _mm256_mul_ps(_mm256_loadu_ps(w2 + i + 8), xb));
            a3 = _mm256_add_ps(a3, _mm256_mul_ps(_mm256_loadu_ps(w3 + i), xa));
            b3 = _mm256_add_ps(b3, _mm256_mul_ps(_mm256_loadu_ps(w3 + i + 8), xb));
        }
        y[j] = mo_ops_act(tail_dot(reduce16(a0, b0), w0, x, kend, k) + b[j], act);
        y[j + 1] = mo_ops_act(tail_dot(reduce16(a1, b1), w1, x, kend, k) + b[j + 1], act);
        y[j + 2] = mo_ops_act(tail_dot(reduce16(a2, b2), w2, x, kend, k) + b[j + 2], act);
        y[j + 3] = mo_ops_act(tail_dot(reduce16(a3, b3), w3, x, kend, k) + b[j + 3], act);
    }
    for (; j < n; j++) {
        const float *w0 = w + (size_t)j * k;
        __m256 a0 = _mm256_setzero_ps(), b0 = a0;
        for (int i = 0; i < kend; i += 16) {
            a0 = _mm256_add_ps(a0, _mm256_mul_ps(_mm256_loadu_ps(w0 + i), _mm256_loadu_ps(x + i)));
            b0 = _mm256_add_ps(b0, _mm256_mul_ps(_mm256_loadu_ps(w0 + i + 8),
                                                 _mm256_loadu_ps(x + i + 8)));
        }
        y[j] = mo_ops_act(tail_dot(reduce16(a0, b0), w0, x, kend, k) + b[j], act);
    }
}

/* --------------------------------------------------------------- upsample */

decl_upsample_fn(mo_upsample_avx2)
{
    const int cv = c / 8 * 8;
    const __m256i m = tail_mask(c - cv);
    for (int y = y0; y < y1; y++) {
        const mo_ops_lin ly = mo_ops_lin_at(y, ih, oh);
        const float *r0 = src + (ptrdiff_t)ly.i0 * src_stride;
        const float *r1 = src + (ptrdiff_t)ly.i1 * src_stride;
        float *d = dst + (ptrdiff_t)y * dst_stride;
        const __m256 vy0 = _mm256_set1_ps(ly.l0), vy1 = _mm256_set1_ps(ly.l1);
        for (int x = 0; x < ow; x++) {
            const mo_ops_lin lx = mo_ops_lin_at(x, iw, ow);
            const float *a = r0 + (ptrdiff_t)lx.i0 * c, *b = r0 + (ptrdiff_t)lx.i1 * c;
            const float *p = r1 + (ptrdiff_t)lx.i0 * c, *q = r1 + (ptrdiff_t)lx.i1 * c;
            float *o = d + (ptrdiff_t)x * c;
            const __m256 vx0 = _mm256_set1_ps(lx.l0), vx1 = _mm256_set1_ps(lx.l1);
#define UP_BODY(LOAD)                                                                      \
    do {                                                                                   \
        const __m256 h0 = _mm256_add_ps(_mm256_mul_ps(LOAD(a), vx0), _mm256_mul_ps(LOAD(b), vx1)); \
        const __m256 h1 = _mm256_add_ps(_mm256_mul_ps(LOAD(p), vx0), _mm256_mul_ps(LOAD(q), vx1)); \
        v = _mm256_add_ps(_mm256_mul_ps(h0, vy0), _mm256_mul_ps(h1, vy1));                 \
    } while (0)
            __m256 v;
            int ch = 0;
            for (; ch < cv; ch += 8) {
#define LD(ptr) _mm256_loadu_ps((ptr) + ch)
                UP_BODY(LD);
#undef LD
                _mm256_storeu_ps(o + ch, v);
            }
            if (ch < c) {
#define LD(ptr) _mm256_maskload_ps((ptr) + ch, m)
                UP_BODY(LD);
#undef LD
                _mm256_maskstore_ps(o + ch, m, v);
            }
#undef UP_BODY
        }
    }
}

/*
 * Fused upsample + argmax: output columns in chunks of cw (a multiple of 8); for each
 * chunk the two source rows an output row needs are interpolated along x once, channel-
 * major (h[ch][x]), and reused by every output row between the same two source rows; the
 * vertical blend and the argmax then run 8 output pixels per vector. Same operations per
 * value as the reference, so the same labels.
 */
enum { UA_BUF = 4096, UA_MAXCW = 64 };

static void ua_fill(float *h, const float *row, int c, int cw, const int *i0, const int *i1,
                    const float *l0, const float *l1)
{
    for (int x = 0; x < cw; x += 8) {
        const __m256i g0 = _mm256_loadu_si256((const __m256i *)(i0 + x));
        const __m256i g1 = _mm256_loadu_si256((const __m256i *)(i1 + x));
        const __m256 w0 = _mm256_loadu_ps(l0 + x), w1 = _mm256_loadu_ps(l1 + x);
        for (int ch = 0; ch < c; ch++) {
            const __m256 a = _mm256_i32gather_ps(row + ch, g0, 4);
            const __m256 b = _mm256_i32gather_ps(row + ch, g1, 4);
            _mm256_storeu_ps(h + (size_t)ch * cw + x,
                             _mm256_add_ps(_mm256_mul_ps(a, w0), _mm256_mul_ps(b, w1)));
        }
    }
}

decl_upsample_argmax_fn(mo_upsample_argmax_avx2)
{
    float buf[2][UA_BUF];
    int i0[UA_MAXCW], i1[UA_MAXCW];
    float l0[UA_MAXCW], l1[UA_MAXCW];
    int32_t lab[8];
    int cw = UA_BUF / c / 8 * 8;
    if (cw > UA_MAXCW)
        cw = UA_MAXCW;
    for (int x0 = 0; x0 < ow; x0 += cw) {
        const int nx = ow - x0 < cw ? ow - x0 : cw;
        const int cwp = (nx + 7) / 8 * 8;
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
            const __m256 wy0 = _mm256_set1_ps(ly.l0), wy1 = _mm256_set1_ps(ly.l1);
            uint8_t *d = dst + (ptrdiff_t)y * dst_stride + x0;
            int x = 0;
            /* four vectors at a time: the compare + blend chain of one vector is latency */
            for (; x + 32 <= cwp; x += 32) {
                __m256 best[4];
                __m256i bi[4];
                for (int u = 0; u < 4; u++) {
                    best[u] = _mm256_add_ps(_mm256_mul_ps(_mm256_loadu_ps(h0 + x + 8 * u), wy0),
                                            _mm256_mul_ps(_mm256_loadu_ps(h1 + x + 8 * u), wy1));
                    bi[u] = _mm256_setzero_si256();
                }
                for (int ch = 1; ch < c; ch++) {
                    const float *p0 = h0 + (size_t)ch * cwp + x, *p1 = h1 + (size_t)ch * cwp + x;
                    const __m256i vc = _mm256_set1_epi32(ch);
                    for (int u = 0; u < 4; u++) {
                        const __m256 v = _mm256_add_ps(_mm256_mul_ps(_mm256_loadu_ps(p0 + 8 * u), wy0),
                                                       _mm256_mul_ps(_mm256_loadu_ps(p1 + 8 * u), wy1));
                        const __m256 gt = _mm256_cmp_ps(v, best[u], _CMP_GT_OQ);
                        best[u] = _mm256_blendv_ps(best[u], v, gt);
                        bi[u] = _mm256_blendv_epi8(bi[u], vc, _mm256_castps_si256(gt));
                    }
                }
                for (int u = 0; u < 4; u++) {
                    _mm256_storeu_si256((__m256i *)lab, bi[u]);
                    const int m = nx - x - 8 * u < 8 ? nx - x - 8 * u : 8;
                    for (int t = 0; t < m; t++)
                        d[x + 8 * u + t] = (uint8_t)lab[t];
                }
            }
            for (; x < cwp; x += 8) {
                const float *p0 = h0 + x, *p1 = h1 + x;
                __m256 best = _mm256_add_ps(_mm256_mul_ps(_mm256_loadu_ps(p0), wy0),
                                            _mm256_mul_ps(_mm256_loadu_ps(p1), wy1));
                __m256i bi = _mm256_setzero_si256();
                for (int ch = 1; ch < c; ch++) {
                    const __m256 v = _mm256_add_ps(
                        _mm256_mul_ps(_mm256_loadu_ps(p0 + (size_t)ch * cwp), wy0),
                        _mm256_mul_ps(_mm256_loadu_ps(p1 + (size_t)ch * cwp), wy1));
                    const __m256 gt = _mm256_cmp_ps(v, best, _CMP_GT_OQ);
                    best = _mm256_blendv_ps(best, v, gt);
                    bi = _mm256_blendv_epi8(bi, _mm256_set1_epi32(ch), _mm256_castps_si256(gt));
                }
                _mm256_storeu_si256((__m256i *)lab, bi);
                const int m = nx - x < 8 ? nx - x : 8;
                for (int t = 0; t < m; t++)
                    d[x + t] = (uint8_t)lab[t];
            }
        }
    }
}

/* ---------------------------------------------------------------- softmax */

/* mo_ops_exp() on 8 lanes, the same operations. */
static inline __m256 exp8(__m256 x)
{
    const __m256 zero = _mm256_setzero_ps();
    const __m256 nan = _mm256_cmp_ps(x, x, _CMP_UNORD_Q);
    const __m256 lo = _mm256_cmp_ps(x, _mm256_set1_ps(MO_OPS_EXP_LO), _CMP_LT_OQ);
    const __m256 xc = _mm256_max_ps(_mm256_min_ps(x, zero), _mm256_set1_ps(MO_OPS_EXP_LO));
    const __m256 t = _mm256_add_ps(_mm256_mul_ps(xc, _mm256_set1_ps(MO_OPS_LOG2E)),
                                   _mm256_set1_ps(0.5f));
    const __m256 n = _mm256_floor_ps(t);
    __m256 r = _mm256_sub_ps(xc, _mm256_mul_ps(n, _mm256_set1_ps(MO_OPS_LN2_HI)));
    r = _mm256_sub_ps(r, _mm256_mul_ps(n, _mm256_set1_ps(MO_OPS_LN2_LO)));
    __m256 p = _mm256_mul_ps(_mm256_set1_ps(MO_OPS_P7), r);
    p = _mm256_mul_ps(_mm256_add_ps(p, _mm256_set1_ps(MO_OPS_P6)), r);
    p = _mm256_mul_ps(_mm256_add_ps(p, _mm256_set1_ps(MO_OPS_P5)), r);
    p = _mm256_mul_ps(_mm256_add_ps(p, _mm256_set1_ps(MO_OPS_P4)), r);
    p = _mm256_mul_ps(_mm256_add_ps(p, _mm256_set1_ps(MO_OPS_P3)), r);
    p = _mm256_mul_ps(_mm256_add_ps(p, _mm256_set1_ps(0.5f)), r);
    p = _mm256_mul_ps(_mm256_add_ps(p, _mm256_set1_ps(1.0f)), r);
    p = _mm256_add_ps(p, _mm256_set1_ps(1.0f));
    const __m256i e = _mm256_cvtps_epi32(n);
    const __m256i z = _mm256_setzero_si256();
    const __m256i e1 = _mm256_sub_epi32(z, _mm256_srli_epi32(_mm256_sub_epi32(z, e), 1));
    const __m256i e2 = _mm256_sub_epi32(e, e1);
    const __m256i bias = _mm256_set1_epi32(127);
    p = _mm256_mul_ps(p, _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(e1, bias), 23)));
    p = _mm256_mul_ps(p, _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(e2, bias), 23)));
    p = _mm256_andnot_ps(lo, p);
    return _mm256_blendv_ps(p, x, nan);
}

static inline void put8(float *p, ptrdiff_t cs, int j, __m256 v, int m)
{
    if (cs == 1) {
        if (m == 8)
            _mm256_storeu_ps(p + j, v);
        else
            _mm256_maskstore_ps(p + j, tail_mask(m), v);
        return;
    }
    float t[8];
    _mm256_storeu_ps(t, v);
    for (int i = 0; i < m; i++)
        p[(ptrdiff_t)(j + i) * cs] = t[i];
}

static inline __m256 get8(const float *p, ptrdiff_t cs, int j, int m)
{
    if (cs == 1)
        return m == 8 ? _mm256_loadu_ps(p + j) : _mm256_maskload_ps(p + j, tail_mask(m));
    float t[8] = {0};
    for (int i = 0; i < m; i++)
        t[i] = p[(ptrdiff_t)(j + i) * cs];
    return _mm256_loadu_ps(t);
}

/* exp(x_j - max) of one row into p[j * cs] (p may be x when cs == 1); returns 1 / sum. */
static inline float row_exp(float *p, ptrdiff_t cs, const float *x, int k)
{
    const __m256 x0 = _mm256_set1_ps(x[0]);
    __m256 mv = x0;
    for (int j = 0; j < k; j += 8) {
        const int m = k - j < 8 ? k - j : 8;
        __m256 v = m == 8 ? _mm256_loadu_ps(x + j)
                          : _mm256_blendv_ps(x0, _mm256_maskload_ps(x + j, tail_mask(m)),
                                             _mm256_castsi256_ps(tail_mask(m)));
        mv = _mm256_max_ps(v, mv); /* v > m ? v : m, as the reference */
    }
    __m128 t = _mm_max_ps(_mm256_extractf128_ps(mv, 1), _mm256_castps256_ps128(mv));
    t = _mm_max_ps(_mm_movehl_ps(t, t), t);
    t = _mm_max_ss(_mm_shuffle_ps(t, t, 1), t);
    const __m256 mx = _mm256_set1_ps(_mm_cvtss_f32(t));
    __m256 acc[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()};
    for (int j = 0; j < k; j += 8) {
        const int m = k - j < 8 ? k - j : 8;
        const __m256 v = m == 8 ? _mm256_loadu_ps(x + j) : _mm256_maskload_ps(x + j, tail_mask(m));
        __m256 e = exp8(_mm256_sub_ps(v, mx));
        if (m < 8)
            e = _mm256_and_ps(e, _mm256_castsi256_ps(tail_mask(m)));
        put8(p, cs, j, e, m);
        acc[(j / 8) & 1] = _mm256_add_ps(acc[(j / 8) & 1], e);
    }
    return 1.0f / reduce16(acc[0], acc[1]);
}

static inline void row_scale(float *p, ptrdiff_t cs, int k, float inv)
{
    const __m256 v = _mm256_set1_ps(inv);
    for (int j = 0; j < k; j += 8) {
        const int m = k - j < 8 ? k - j : 8;
        put8(p, cs, j, _mm256_mul_ps(get8(p, cs, j, m), v), m);
    }
}

/* Strided output (class-major): 8 rows at a time through a tile, then one vector store per
 * class when the rows are adjacent (dst_rs == 1). */
enum { SM_TILE = 8192 };

decl_softmax_fn(mo_softmax_avx2)
{
    const int kt = (k + 7) / 8 * 8;
    if (dst_cs == 1 || 8 * kt > SM_TILE) {
        for (size_t r = 0; r < n; r++) {
            float *p = dst + (ptrdiff_t)r * dst_rs;
            row_scale(p, dst_cs, k, row_exp(p, dst_cs, src + (ptrdiff_t)r * src_stride, k));
        }
        return;
    }
    float tile[SM_TILE];
    const __m256i idx = _mm256_mullo_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
                                           _mm256_set1_epi32(kt));
    for (size_t r0 = 0; r0 < n; r0 += 8) {
        const int g = n - r0 < 8 ? (int)(n - r0) : 8;
        for (int r = 0; r < g; r++) {
            float *e = tile + (size_t)r * kt;
            row_scale(e, 1, k, row_exp(e, 1, src + (ptrdiff_t)(r0 + r) * src_stride, k));
        }
        float *p = dst + (ptrdiff_t)r0 * dst_rs;
        if (g == 8 && dst_rs == 1) {
            for (int j = 0; j < k; j++)
                _mm256_storeu_ps(p + (ptrdiff_t)j * dst_cs, _mm256_i32gather_ps(tile + j, idx, 4));
            continue;
        }
        for (int r = 0; r < g; r++)
            for (int j = 0; j < k; j++)
                p[(ptrdiff_t)r * dst_rs + (ptrdiff_t)j * dst_cs] = tile[(size_t)r * kt + j];
    }
}
