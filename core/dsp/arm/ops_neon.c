/*
 * AdvSIMD variants of the head operators (contracts in mo_internal/ops.h): the bits of the
 * C reference (core/dsp/ops.c), with separate multiplies and adds (vmulq + vaddq, never
 * vfmaq) in its order; four 4-lane vectors are the reference's 16 partial sums.
 */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif
#include <arm_neon.h>
#include <string.h>

#include "ops_arm.h"

/* acc[0..15] = lanes of a0, a1, a2, a3, halved pairwise (h = 8, 4, 2, 1). */
static inline float reduce16(float32x4_t a0, float32x4_t a1, float32x4_t a2, float32x4_t a3)
{
    a0 = vaddq_f32(a0, a2);
    a1 = vaddq_f32(a1, a3);
    a0 = vaddq_f32(a0, a1);
    const float32x2_t t = vadd_f32(vget_low_f32(a0), vget_high_f32(a0));
    return vget_lane_f32(t, 0) + vget_lane_f32(t, 1);
}

static inline float tail_dot(float s, const float *w, const float *x, int i, int k)
{
    for (; i < k; i++)
        s += w[i] * x[i];
    return s;
}

/* ------------------------------------------------------------------- GEMV */

decl_gemv_fn(mo_gemv_neon)
{
    const int kend = k / 16 * 16;
    int j = 0;
    for (; j + 2 <= n; j += 2) {
        const float *w0 = w + (size_t)j * k, *w1 = w0 + k;
        float32x4_t a0 = vdupq_n_f32(0.0f), a1 = a0, a2 = a0, a3 = a0;
        float32x4_t b0 = a0, b1 = a0, b2 = a0, b3 = a0;
        for (int i = 0; i < kend; i += 16) {
            const float32x4_t x0 = vld1q_f32(x + i), x1 = vld1q_f32(x + i + 4);
            const float32x4_t x2 = vld1q_f32(x + i + 8), x3 = vld1q_f32(x + i + 12);
            a0 = vaddq_f32(a0, vmulq_f32(vld1q_f32(w0 + i), x0));
            a1 = vaddq_f32(a1, vmulq_f32(vld1q_f32(w0 + i + 4), x1));
            a2 = vaddq_f32(a2, vmulq_f32(vld1q_f32(w0 + i + 8), x2));
            a3 = vaddq_f32(a3, vmulq_f32(vld1q_f32(w0 + i + 12), x3));
            b0 = vaddq_f32(b0, vmulq_f32(vld1q_f32(w1 + i), x0));
            b1 = vaddq_f32(b1, vmulq_f32(vld1q_f32(w1 + i + 4), x1));
            b2 = vaddq_f32(b2, vmulq_f32(vld1q_f32(w1 + i + 8), x2));
            b3 = vaddq_f32(b3, vmulq_f32(vld1q_f32(w1 + i + 12), x3));
        }
        y[j] = mo_ops_act(tail_dot(reduce16(a0, a1, a2, a3), w0, x, kend, k) + b[j], act);
        y[j + 1] = mo_ops_act(tail_dot(reduce16(b0, b1, b2, b3), w1, x, kend, k) + b[j + 1], act);
    }
    for (; j < n; j++) {
        const float *w0 = w + (size_t)j * k;
        float32x4_t a0 = vdupq_n_f32(0.0f), a1 = a0, a2 = a0, a3 = a0;
        for (int i = 0; i < kend; i += 16) {
            a0 = vaddq_f32(a0, vmulq_f32(vld1q_f32(w0 + i), vld1q_f32(x + i)));
            a1 = vaddq_f32(a1, vmulq_f32(vld1q_f32(w0 + i + 4), vld1q_f32(x + i + 4)));
            a2 = vaddq_f32(a2, vmulq_f32(vld1q_f32(w0 + i + 8), vld1q_f32(x + i + 8)));
            a3 = vaddq_f32(a3, vmulq_f32(vld1q_f32(w0 + i + 12), vld1q_f32(x + i + 12)));
        }
        y[j] = mo_ops_act(tail_dot(reduce16(a0, a1, a2, a3), w0, x, kend, k) + b[j], act);
    }
}

/* --------------------------------------------------------------- upsample */

decl_upsample_fn(mo_upsample_neon)
{
    const int cv = c / 4 * 4;
    for (int y = y0; y < y1; y++) {
        const mo_ops_lin ly = mo_ops_lin_at(y, ih, oh);
        const float *r0 = src + (ptrdiff_t)ly.i0 * src_stride;
        const float *r1 = src + (ptrdiff_t)ly.i1 * src_stride;
        float *d = dst + (ptrdiff_t)y * dst_stride;
        const float32x4_t vy0 = vdupq_n_f32(ly.l0), vy1 = vdupq_n_f32(ly.l1);
        for (int x = 0; x < ow; x++) {
            const mo_ops_lin lx = mo_ops_lin_at(x, iw, ow);
            const float *a = r0 + (ptrdiff_t)lx.i0 * c, *b = r0 + (ptrdiff_t)lx.i1 * c;
            const float *p = r1 + (ptrdiff_t)lx.i0 * c, *q = r1 + (ptrdiff_t)lx.i1 * c;
            float *o = d + (ptrdiff_t)x * c;
            const float32x4_t vx0 = vdupq_n_f32(lx.l0), vx1 = vdupq_n_f32(lx.l1);
            int ch = 0;
            for (; ch < cv; ch += 4) {
                const float32x4_t h0 = vaddq_f32(vmulq_f32(vld1q_f32(a + ch), vx0),
                                                 vmulq_f32(vld1q_f32(b + ch), vx1));
                const float32x4_t h1 = vaddq_f32(vmulq_f32(vld1q_f32(p + ch), vx0),
                                                 vmulq_f32(vld1q_f32(q + ch), vx1));
                vst1q_f32(o + ch, vaddq_f32(vmulq_f32(h0, vy0), vmulq_f32(h1, vy1)));
            }
            for (; ch < c; ch++) {
                const float h0 = a[ch] * lx.l0 + b[ch] * lx.l1;
                const float h1 = p[ch] * lx.l0 + q[ch] * lx.l1;
                o[ch] = h0 * ly.l0 + h1 * ly.l1;
            }
        }
    }
}

/* Fused upsample + argmax, as ops_avx2.c with 4 output pixels per vector (the
 * interpolation along x is scalar: no gather). */
enum { UA_BUF = 4096, UA_MAXCW = 64 };

static void ua_fill(float *h, const float *row, int c, int cw, const int *i0, const int *i1,
                    const float *l0, const float *l1)
{
    for (int ch = 0; ch < c; ch++) {
        float *o = h + (size_t)ch * cw;
        for (int x = 0; x < cw; x++)
            o[x] = row[i0[x] + ch] * l0[x] + row[i1[x] + ch] * l1[x];
    }
}

decl_upsample_argmax_fn(mo_upsample_argmax_neon)
{
    float buf[2][UA_BUF];
    int i0[UA_MAXCW], i1[UA_MAXCW];
    float l0[UA_MAXCW], l1[UA_MAXCW];
    uint32_t lab[4];
    int cw = UA_BUF / c / 4 * 4;
    if (cw > UA_MAXCW)
        cw = UA_MAXCW;
    for (int x0 = 0; x0 < ow; x0 += cw) {
        const int nx = ow - x0 < cw ? ow - x0 : cw;
        const int cwp = (nx + 3) / 4 * 4;
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
            const float32x4_t wy0 = vdupq_n_f32(ly.l0), wy1 = vdupq_n_f32(ly.l1);
            uint8_t *d = dst + (ptrdiff_t)y * dst_stride + x0;
            for (int x = 0; x < cwp; x += 4) {
                const float *p0 = h0 + x, *p1 = h1 + x;
                float32x4_t best = vaddq_f32(vmulq_f32(vld1q_f32(p0), wy0),
                                             vmulq_f32(vld1q_f32(p1), wy1));
                uint32x4_t bi = vdupq_n_u32(0);
                for (int ch = 1; ch < c; ch++) {
                    const float32x4_t v =
                        vaddq_f32(vmulq_f32(vld1q_f32(p0 + (size_t)ch * cwp), wy0),
                                  vmulq_f32(vld1q_f32(p1 + (size_t)ch * cwp), wy1));
                    const uint32x4_t gt = vcgtq_f32(v, best);
                    best = vbslq_f32(gt, v, best);
                    bi = vbslq_u32(gt, vdupq_n_u32((uint32_t)ch), bi);
                }
                vst1q_u32(lab, bi);
                const int m = nx - x < 4 ? nx - x : 4;
                for (int t = 0; t < m; t++)
                    d[x + t] = (uint8_t)lab[t];
            }
        }
    }
}

/* ---------------------------------------------------------------- softmax */

static inline float32x4_t exp4(float32x4_t x)
{
    const float32x4_t zero = vdupq_n_f32(0.0f), lov = vdupq_n_f32(MO_OPS_EXP_LO);
    const uint32x4_t num = vceqq_f32(x, x);
    const uint32x4_t lo = vcltq_f32(x, lov);
    float32x4_t xc = vbslq_f32(vcltq_f32(x, zero), x, zero); /* NaN -> 0 */
    xc = vbslq_f32(vcltq_f32(xc, lov), lov, xc);
    const float32x4_t t = vaddq_f32(vmulq_f32(xc, vdupq_n_f32(MO_OPS_LOG2E)), vdupq_n_f32(0.5f));
    const float32x4_t n = vrndmq_f32(t);
    float32x4_t r = vsubq_f32(xc, vmulq_f32(n, vdupq_n_f32(MO_OPS_LN2_HI)));
    r = vsubq_f32(r, vmulq_f32(n, vdupq_n_f32(MO_OPS_LN2_LO)));
    float32x4_t p = vmulq_f32(vdupq_n_f32(MO_OPS_P7), r);
    p = vmulq_f32(vaddq_f32(p, vdupq_n_f32(MO_OPS_P6)), r);
    p = vmulq_f32(vaddq_f32(p, vdupq_n_f32(MO_OPS_P5)), r);
    p = vmulq_f32(vaddq_f32(p, vdupq_n_f32(MO_OPS_P4)), r);
    p = vmulq_f32(vaddq_f32(p, vdupq_n_f32(MO_OPS_P3)), r);
    p = vmulq_f32(vaddq_f32(p, vdupq_n_f32(0.5f)), r);
    p = vmulq_f32(vaddq_f32(p, vdupq_n_f32(1.0f)), r);
    p = vaddq_f32(p, vdupq_n_f32(1.0f));
    const int32x4_t e = vcvtq_s32_f32(n);
    const int32x4_t z = vdupq_n_s32(0);
    const int32x4_t e1 = vsubq_s32(
        z, vreinterpretq_s32_u32(vshrq_n_u32(vreinterpretq_u32_s32(vsubq_s32(z, e)), 1)));
    const int32x4_t e2 = vsubq_s32(e, e1);
    const int32x4_t bias = vdupq_n_s32(127);
    p = vmulq_f32(p, vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(e1, bias), 23)));
    p = vmulq_f32(p, vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(e2, bias), 23)));
    p = vbslq_f32(lo, zero, p);
    return vbslq_f32(num, p, x);
}

static inline float32x4_t get4(const float *p, ptrdiff_t cs, int j, int m, float fill)
{
    if (cs == 1 && m == 4)
        return vld1q_f32(p + j);
    float t[4] = {fill, fill, fill, fill};
    for (int i = 0; i < m; i++)
        t[i] = p[(ptrdiff_t)(j + i) * cs];
    return vld1q_f32(t);
}

static inline void put4(float *p, ptrdiff_t cs, int j, float32x4_t v, int m)
{
    if (cs == 1 && m == 4) {
        vst1q_f32(p + j, v);
        return;
    }
    float t[4];
    vst1q_f32(t, v);
    for (int i = 0; i < m; i++)
        p[(ptrdiff_t)(j + i) * cs] = t[i];
}

/* exp(x_j - max) of one row into p[j * cs] (p may be x when cs == 1); returns 1 / sum. */
static inline float row_exp(float *p, ptrdiff_t cs, const float *x, int k)
{
    float32x4_t mv = vdupq_n_f32(x[0]);
    for (int j = 0; j < k; j += 4) {
        const int m = k - j < 4 ? k - j : 4;
        const float32x4_t v = get4(x, 1, j, m, x[0]);
        mv = vbslq_f32(vcgtq_f32(v, mv), v, mv); /* v > m ? v : m, as the reference */
    }
    float mx = vgetq_lane_f32(mv, 0);
    const float m1 = vgetq_lane_f32(mv, 1), m2 = vgetq_lane_f32(mv, 2), m3 = vgetq_lane_f32(mv, 3);
    mx = m1 > mx ? m1 : mx;
    mx = m2 > mx ? m2 : mx;
    mx = m3 > mx ? m3 : mx;
    const float32x4_t mxv = vdupq_n_f32(mx);
    float32x4_t acc[4] = {vdupq_n_f32(0.0f), vdupq_n_f32(0.0f), vdupq_n_f32(0.0f),
                          vdupq_n_f32(0.0f)};
    for (int j = 0; j < k; j += 4) {
        const int m = k - j < 4 ? k - j : 4;
        float32x4_t e = exp4(vsubq_f32(get4(x, 1, j, m, 0.0f), mxv));
        if (m < 4) {
            float t[4];
            vst1q_f32(t, e);
            for (int i = m; i < 4; i++)
                t[i] = 0.0f;
            e = vld1q_f32(t);
        }
        put4(p, cs, j, e, m);
        acc[(j / 4) & 3] = vaddq_f32(acc[(j / 4) & 3], e);
    }
    return 1.0f / reduce16(acc[0], acc[1], acc[2], acc[3]);
}

static inline void row_scale(float *p, ptrdiff_t cs, int k, float inv)
{
    const float32x4_t v = vdupq_n_f32(inv);
    for (int j = 0; j < k; j += 4) {
        const int m = k - j < 4 ? k - j : 4;
        put4(p, cs, j, vmulq_f32(get4(p, cs, j, m, 0.0f), v), m);
    }
}

/* Strided output (class-major): 4 rows at a time through a tile, then 4 adjacent stores per
 * class when the rows are adjacent (dst_rs == 1). */
enum { SM_TILE = 4096 };

decl_softmax_fn(mo_softmax_neon)
{
    const int kt = (k + 3) / 4 * 4;
    if (dst_cs == 1 || 4 * kt > SM_TILE) {
        for (size_t r = 0; r < n; r++) {
            float *p = dst + (ptrdiff_t)r * dst_rs;
            row_scale(p, dst_cs, k, row_exp(p, dst_cs, src + (ptrdiff_t)r * src_stride, k));
        }
        return;
    }
    float tile[SM_TILE];
    for (size_t r0 = 0; r0 < n; r0 += 4) {
        const int g = n - r0 < 4 ? (int)(n - r0) : 4;
        for (int r = 0; r < g; r++) {
            float *e = tile + (size_t)r * kt;
            row_scale(e, 1, k, row_exp(e, 1, src + (ptrdiff_t)(r0 + r) * src_stride, k));
        }
        float *p = dst + (ptrdiff_t)r0 * dst_rs;
        for (int j = 0; j < k; j++)
            for (int r = 0; r < g; r++)
                p[(ptrdiff_t)r * dst_rs + (ptrdiff_t)j * dst_cs] = tile[(size_t)r * kt + j];
    }
}
