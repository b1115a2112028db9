/*
 * AdvSIMD (NEON) fp32 versions of the backbone kernels for AArch64 (contracts in
 * mo_internal/conv.h, the C reference in ../conv.c). AArch64 always has AdvSIMD with a fused
 * multiply-add (vfmaq_f32), and 32 vector registers of 4 floats.
 *
 * All maps are NHWC, so every kernel vectorizes over channels, 4 floats per register.
 * AdvSIMD has no masked loads or stores: channel counts that are not a multiple of 4 (or
 * of MO_PW_NR) go through small zero-padded copies on the stack, or through scalar
 * fmaf() (one fused multiply-add, the rounding of the vector lanes), never by reading or
 * writing past a row.
 *
 * Activation (the `relu` argument): 0 none, non-zero max(x, 0); the value 2 also clamps
 * at 6 (MO_ACT_RELU6). max is vmaxnmq_f32, which returns 0 for a NaN as `v > 0 ? v : 0`
 * does (vmaxq_f32 would pass the NaN on).
 */
#include <arm_neon.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "conv_arm.h"

#define ACT_RELU6 2

#define ALWAYS_INLINE inline __attribute__((always_inline))

static ALWAYS_INLINE float32x4_t activate(float32x4_t v, int relu)
{
    if (relu)
        v = vmaxnmq_f32(v, vdupq_n_f32(0.0f));
    if (relu == ACT_RELU6)
        v = vminq_f32(v, vdupq_n_f32(6.0f));
    return v;
}

static ALWAYS_INLINE float activate1(float v, int relu)
{
    if (relu)
        v = v > 0.0f ? v : 0.0f;
    if (relu == ACT_RELU6)
        v = v < 6.0f ? v : 6.0f;
    return v;
}

/* -------------------------------------------------------------- pointwise */

/*
 * Register tile: PW_MR (6) pixels x MO_PW_NR (16) output channels = 24 accumulators (4
 * per pixel), 6 registers holding 4 input channels of each pixel, and the panel row of
 * the current input channel, loaded one 4-float quarter at a time (2 registers live):
 * all 32 registers. The input channels go 4 at a time: one 16-byte load per pixel feeds
 * 4 input channels through the lane-indexed FMA (vfmaq_laneq_f32), so 4 channels cost
 * 6 input + 16 weight loads for 96 FMAs (4.4 FMAs per load; docs/ARM.md counts them in
 * the generated code). The packed layout is mo_pw_pack()'s, shared with every ISA.
 *
 * Cache blocking as in the C reference: input channels in slices of at most PW_KC (the
 * panel slice, PW_KC x 16 floats = 16 KiB, stays in L1 while a block of pixels passes over
 * it), of equal width (a multiple of 4), pixels in blocks of equal size (whole tiles: no
 * short last block that streams the whole weight matrix for a few pixels) whose input
 * slice stays in L2. Partial sums cross slices through dst (exact float stores and loads). Each element gets
 * bias (or dst) + one FMA per input channel in order: the same bits in every tile size,
 * and from the 4-channel steps and the one-channel remainder alike.
 */
#define PW_MR 6
#define PW_KC 256
#define PW_BLOCK_BYTES (128 * 1024)

/* Load the 16 floats at p into v[0..3]; only nc of them exist when partial (the rest 0). */
static ALWAYS_INLINE void load16(float32x4_t v[4], const float *p, int nc, int partial)
{
    if (partial) {
        float t[MO_PW_NR] = {0};
        memcpy(t, p, (size_t)nc * sizeof(float));
        for (int j = 0; j < 4; j++)
            v[j] = vld1q_f32(t + 4 * j);
    } else {
        for (int j = 0; j < 4; j++)
            v[j] = vld1q_f32(p + 4 * j);
    }
}

static ALWAYS_INLINE void store16(float *p, const float32x4_t v[4], int nc, int partial)
{
    if (partial) {
        float t[MO_PW_NR];
        for (int j = 0; j < 4; j++)
            vst1q_f32(t + 4 * j, v[j]);
        memcpy(p, t, (size_t)nc * sizeof(float));
    } else {
        for (int j = 0; j < 4; j++)
            vst1q_f32(p + 4 * j, v[j]);
    }
}

/* One input channel (lane L of the input registers x[]) onto the m x 16 tile. */
#define PW_STEP(L)                                                                   \
    do {                                                                             \
        const float *restrict wl = w + (L) * MO_PW_NR;                               \
        _Pragma("GCC unroll 4") for (int j = 0; j < 4; j++) {                        \
            const float32x4_t wv = vld1q_f32(wl + 4 * j);                            \
            _Pragma("GCC unroll 6") for (int i = 0; i < m; i++) acc[i][j] =          \
                vfmaq_laneq_f32(acc[i][j], wv, x[i], (L));                           \
        }                                                                            \
    } while (0)

static ALWAYS_INLINE void pw_tile(float *restrict dst, size_t ldd, const float *restrict src,
                                  size_t lds, int k0, int k1, const float *restrict wp,
                                  const float *restrict bias, int nc, int last, int relu,
                                  const int m)
{
    const int partial = nc < MO_PW_NR;
    float32x4_t acc[PW_MR][4];
    if (bias) {
        float32x4_t b[4];
        load16(b, bias, nc, partial);
#pragma GCC unroll 6
        for (int i = 0; i < m; i++)
            for (int j = 0; j < 4; j++)
                acc[i][j] = b[j];
    } else {
#pragma GCC unroll 6
        for (int i = 0; i < m; i++)
            load16(acc[i], dst + i * ldd, nc, partial);
    }
    const float *restrict a = src + k0;
    const float *restrict w = wp + (size_t)k0 * MO_PW_NR;
    int k = k0;
    for (; k + 4 <= k1; k += 4, a += 4, w += 4 * MO_PW_NR) {
        float32x4_t x[PW_MR];
#pragma GCC unroll 6
        for (int i = 0; i < m; i++)
            x[i] = vld1q_f32(a + i * lds);
        PW_STEP(0);
        PW_STEP(1);
        PW_STEP(2);
        PW_STEP(3);
    }
    for (; k < k1; k++, a++, w += MO_PW_NR) {
#pragma GCC unroll 4
        for (int j = 0; j < 4; j++) {
            const float32x4_t wv = vld1q_f32(w + 4 * j);
#pragma GCC unroll 6
            for (int i = 0; i < m; i++)
                acc[i][j] = vfmaq_n_f32(acc[i][j], wv, a[i * lds]);
        }
    }
#pragma GCC unroll 6
    for (int i = 0; i < m; i++) {
        if (last)
            for (int j = 0; j < 4; j++)
                acc[i][j] = activate(acc[i][j], relu);
        store16(dst + i * ldd, acc[i], nc, partial);
    }
}

/* mo_pw_neon and mo_pw_acc_neon: rows ldd / lds floats apart; bias NULL accumulates. */
static void __attribute__((noinline))
pw_run(float *dst, size_t ldd, const float *src, size_t lds, size_t n, int cin, int cout,
       const float *weight, const float *bias, int relu)
{
    const int np = (cout + MO_PW_NR - 1) / MO_PW_NR;
    int kc;
    size_t mb;
    mo_pw_blocking(n, cin, PW_KC, 4, PW_BLOCK_BYTES, PW_MR, &kc, &mb);
    const size_t ci = (size_t)cin;

    for (size_t p0 = 0; p0 < n; p0 += mb) {
        const size_t pend = n - p0 < mb ? n : p0 + mb;
        for (int k0 = 0; k0 < cin; k0 += kc) {
            const int k1 = cin - k0 < kc ? cin : k0 + kc;
            const int first = k0 == 0, last = k1 == cin;
            for (int pj = 0; pj < np; pj++) {
                const float *wp = weight + (size_t)pj * ci * MO_PW_NR;
                const int co = pj * MO_PW_NR;
                const int nc = cout - co < MO_PW_NR ? cout - co : MO_PW_NR;
                const float *b = first && bias ? bias + co : NULL;
                size_t p = p0;
                for (; p + PW_MR <= pend; p += PW_MR)
                    pw_tile(dst + p * ldd + co, ldd, src + p * lds, lds, k0, k1, wp, b, nc,
                            last, relu, PW_MR);
                float *d = dst + p * ldd + co;
                const float *s = src + p * lds;
                switch (pend - p) {
                case 5: pw_tile(d, ldd, s, lds, k0, k1, wp, b, nc, last, relu, 5); break;
                case 4: pw_tile(d, ldd, s, lds, k0, k1, wp, b, nc, last, relu, 4); break;
                case 3: pw_tile(d, ldd, s, lds, k0, k1, wp, b, nc, last, relu, 3); break;
                case 2: pw_tile(d, ldd, s, lds, k0, k1, wp, b, nc, last, relu, 2); break;
                case 1: pw_tile(d, ldd, s, lds, k0, k1, wp, b, nc, last, relu, 1); break;
                default: break;
                }
            }
        }
    }
}

decl_pw_fn(mo_pw_neon)
{
    pw_run(dst, (size_t)cout, src, (size_t)cin, n, cin, cout, weight, bias, relu);
}

decl_pw_acc_fn(mo_pw_acc_neon)
{
    pw_run(dst, (size_t)dst_stride, src, (size_t)src_stride, n, cin, cout, weight, NULL, 0);
}

/* -------------------------------------------------------------- depthwise */

/*
 * Channels [ch, c) of one output pixel (c - ch < 4), scalar: bias, then one fmaf per tap
 * in (ky, kx) order, as the vector lanes do.
 */
static void dw_tail(float *restrict o, int nt, const float *const wt[9],
                    const float *const pt[9], int ch, int c, const float *restrict bias,
                    int relu)
{
    for (; ch < c; ch++) {
        float a = bias[ch];
        for (int t = 0; t < nt; t++)
            a = fmaf(wt[t][ch], pt[t][ch], a);
        o[ch] = activate1(a, relu);
    }
}

/*
 * One output pixel at any position: taps kx in [kx0, kx1) of the rows that exist, summed
 * in (ky, kx) order onto the bias, 16 channels at a time, then 4, then one. Used for the
 * border columns, for rows with a tap row outside the map, and for wide pixels.
 */
static void dw_px(float *restrict o, const float *const rows[3], ptrdiff_t ix, ptrdiff_t d,
                  int kx0, int kx1, int c, const float *restrict w, const float *restrict bias,
                  int relu)
{
    const float *wt[9], *pt[9];
    int nt = 0;
    for (int ky = 0; ky < 3; ky++) {
        if (!rows[ky])
            continue;
        for (int kx = kx0; kx < kx1; kx++, nt++) {
            wt[nt] = w + (size_t)(ky * 3 + kx) * c;
            pt[nt] = rows[ky] + (ix + (kx - 1) * d) * c;
        }
    }
    int ch = 0;
    for (; ch + 16 <= c; ch += 16) {
        float32x4_t a0 = vld1q_f32(bias + ch), a1 = vld1q_f32(bias + ch + 4);
        float32x4_t a2 = vld1q_f32(bias + ch + 8), a3 = vld1q_f32(bias + ch + 12);
        for (int t = 0; t < nt; t++) {
            const float *wc = wt[t] + ch, *pc = pt[t] + ch;
            a0 = vfmaq_f32(a0, vld1q_f32(wc), vld1q_f32(pc));
            a1 = vfmaq_f32(a1, vld1q_f32(wc + 4), vld1q_f32(pc + 4));
            a2 = vfmaq_f32(a2, vld1q_f32(wc + 8), vld1q_f32(pc + 8));
            a3 = vfmaq_f32(a3, vld1q_f32(wc + 12), vld1q_f32(pc + 12));
        }
        vst1q_f32(o + ch, activate(a0, relu));
        vst1q_f32(o + ch + 4, activate(a1, relu));
        vst1q_f32(o + ch + 8, activate(a2, relu));
        vst1q_f32(o + ch + 12, activate(a3, relu));
    }
    for (; ch + 4 <= c; ch += 4) {
        float32x4_t a = vld1q_f32(bias + ch);
        for (int t = 0; t < nt; t++)
            a = vfmaq_f32(a, vld1q_f32(wt[t] + ch), vld1q_f32(pt[t] + ch));
        vst1q_f32(o + ch, activate(a, relu));
    }
    dw_tail(o, nt, wt, pt, ch, c, bias, relu);
}

/*
 * Interior columns [x0, x1) of a row whose three tap rows exist, channels [ch, ch + 4 * nv)
 * (nv = 2 or 1 registers): the 9 x nv weights and the bias stay in registers while the
 * columns pass. Columns go in tiles of DW_XT so that the input they touch stays in L1
 * across channel groups. Same (ky, kx) FMA order as dw_px.
 */
#define DW_XT 16

static ALWAYS_INLINE void dw_interior(float *restrict orow, const float *const rows[3], int x0,
                                      int x1, int stride, ptrdiff_t d, int c,
                                      const float *restrict w, const float *restrict bias,
                                      int relu, int ch, const int nv)
{
    float32x4_t wv[9][2], b[2];
    for (int v = 0; v < nv; v++) {
        for (int t = 0; t < 9; t++)
            wv[t][v] = vld1q_f32(w + (size_t)t * c + ch + 4 * v);
        b[v] = vld1q_f32(bias + ch + 4 * v);
    }
    const ptrdiff_t dc = d * c, sc = (ptrdiff_t)stride * c;
    const float *r0 = rows[0] + (ptrdiff_t)x0 * sc + ch;
    const float *r1 = rows[1] + (ptrdiff_t)x0 * sc + ch;
    const float *r2 = rows[2] + (ptrdiff_t)x0 * sc + ch;
    float *o = orow + (ptrdiff_t)x0 * c + ch;
    for (int x = x0; x < x1; x++, r0 += sc, r1 += sc, r2 += sc, o += c) {
        for (int v = 0; v < nv; v++) {
            const int q = 4 * v;
            float32x4_t acc = b[v];
            acc = vfmaq_f32(acc, wv[0][v], vld1q_f32(r0 - dc + q));
            acc = vfmaq_f32(acc, wv[1][v], vld1q_f32(r0 + q));
            acc = vfmaq_f32(acc, wv[2][v], vld1q_f32(r0 + dc + q));
            acc = vfmaq_f32(acc, wv[3][v], vld1q_f32(r1 - dc + q));
            acc = vfmaq_f32(acc, wv[4][v], vld1q_f32(r1 + q));
            acc = vfmaq_f32(acc, wv[5][v], vld1q_f32(r1 + dc + q));
            acc = vfmaq_f32(acc, wv[6][v], vld1q_f32(r2 - dc + q));
            acc = vfmaq_f32(acc, wv[7][v], vld1q_f32(r2 + q));
            acc = vfmaq_f32(acc, wv[8][v], vld1q_f32(r2 + dc + q));
            vst1q_f32(o + q, activate(acc, relu));
        }
    }
}

/* Channels [ch, c) (fewer than 4) of the interior columns [x0, x1), scalar. */
static void dw_interior_tail(float *restrict orow, const float *const rows[3], int x0, int x1,
                             int stride, ptrdiff_t d, int c, const float *restrict w,
                             const float *restrict bias, int relu, int ch)
{
    const float *wt[9];
    for (int t = 0; t < 9; t++)
        wt[t] = w + (size_t)t * c;
    for (int x = x0; x < x1; x++) {
        const ptrdiff_t ix = (ptrdiff_t)x * stride;
        const float *pt[9];
        for (int t = 0; t < 9; t++)
            pt[t] = rows[t / 3] + (ix + (t % 3 - 1) * d) * c;
        dw_tail(orow + (ptrdiff_t)x * c, 9, wt, pt, ch, c, bias, relu);
    }
}

/*
 * Above this many channels the interior goes pixel by pixel (dw_px, 16 channels at a
 * time, weights from L1), as in the AVX2 kernel: a DW_XT tile of wide pixels no longer
 * fits the L1 ways its lines map to, and one channel group's pass evicts the next's.
 */
#define DW_TILE_MAX_C 160

decl_dw3x3_fn(mo_dw3x3_neon)
{
    const int ow = MO_CONV_OUT(iw, stride);
    int x_lo, x_hi;
    mo_dw_interior(iw, stride, dil, &x_lo, &x_hi);
    const int c8 = c & ~7, c4 = c & ~3;

    for (int y = y0; y < y1; y++) {
        const float *rows[3];
        for (int ky = 0; ky < 3; ky++) {
            const int iy = y * stride + (ky - 1) * dil;
            rows[ky] = iy >= 0 && iy < ih ? src + iy * src_stride : NULL;
        }
        float *orow = dst + y * dst_stride;
        for (int x = 0; x < x_lo; x++) {
            const int ix = x * stride;
            dw_px(orow + (size_t)x * c, rows, ix, dil, 1, ix + dil > iw - 1 ? 2 : 3, c, weight,
                  bias, relu);
        }
        if (rows[0] && rows[2] && c <= DW_TILE_MAX_C) {
            for (int xt = x_lo; xt < x_hi; xt += DW_XT) {
                const int xe = x_hi - xt < DW_XT ? x_hi : xt + DW_XT;
                for (int ch = 0; ch < c8; ch += 8)
                    dw_interior(orow, rows, xt, xe, stride, dil, c, weight, bias, relu, ch, 2);
                if (c8 < c4)
                    dw_interior(orow, rows, xt, xe, stride, dil, c, weight, bias, relu, c8, 1);
                if (c4 < c)
                    dw_interior_tail(orow, rows, xt, xe, stride, dil, c, weight, bias, relu,
                                     c4);
            }
        } else {
            for (int x = x_lo; x < x_hi; x++)
                dw_px(orow + (size_t)x * c, rows, (ptrdiff_t)x * stride, dil, 0, 3, c, weight,
                      bias, relu);
        }
        for (int x = x_hi > x_lo ? x_hi : x_lo; x < ow; x++) {
            const int ix = x * stride;
            dw_px(orow + (size_t)x * c, rows, ix, dil, ix - dil < 0 ? 1 : 0,
                  ix + dil > iw - 1 ? 2 : 3, c, weight, bias, relu);
        }
    }
}

/* ------------------------------------------------------------------- stem */

/*
 * Stem tile: np (up to STEM_PX) output pixels x 16 output channels (16 accumulators),
 * summing the 27 (ky, kx, ci) products in that order onto the bias; taps outside the
 * image (kx outside [kx0, kx1), missing rows) are skipped. w: the weights of this channel
 * group, rows ldw floats apart; b: its 16 biases. The weight row of a tap is loaded once
 * for the pixels of the tile, each input value multiplied by lane (vfmaq_n_f32).
 */
#define STEM_PX 4

static ALWAYS_INLINE void stem_tile(float *restrict o, int cout, const float *const rows[3],
                                    int x, int kx0, int kx1, const float *restrict w,
                                    size_t ldw, const float *restrict b, int relu, int nc,
                                    const int np)
{
    float32x4_t acc[STEM_PX][4];
    const float32x4_t b0 = vld1q_f32(b), b1 = vld1q_f32(b + 4), b2 = vld1q_f32(b + 8),
                      b3 = vld1q_f32(b + 12);
#pragma GCC unroll 4
    for (int j = 0; j < np; j++) {
        acc[j][0] = b0;
        acc[j][1] = b1;
        acc[j][2] = b2;
        acc[j][3] = b3;
    }
    for (int ky = 0; ky < 3; ky++) {
        if (!rows[ky])
            continue;
        for (int kx = kx0; kx < kx1; kx++) {
            const float *p = rows[ky] + (ptrdiff_t)(2 * x - 1 + kx) * 3;
            for (int ci = 0; ci < 3; ci++) {
                const float *wr = w + (size_t)((ky * 3 + kx) * 3 + ci) * ldw;
                const float32x4_t w0 = vld1q_f32(wr), w1 = vld1q_f32(wr + 4),
                                  w2 = vld1q_f32(wr + 8), w3 = vld1q_f32(wr + 12);
#pragma GCC unroll 4
                for (int j = 0; j < np; j++) {
                    const float a = p[6 * j + ci];
                    acc[j][0] = vfmaq_n_f32(acc[j][0], w0, a);
                    acc[j][1] = vfmaq_n_f32(acc[j][1], w1, a);
                    acc[j][2] = vfmaq_n_f32(acc[j][2], w2, a);
                    acc[j][3] = vfmaq_n_f32(acc[j][3], w3, a);
                }
            }
        }
    }
#pragma GCC unroll 4
    for (int j = 0; j < np; j++) {
        float32x4_t v[4];
        for (int q = 0; q < 4; q++)
            v[q] = activate(acc[j][q], relu);
        store16(o + (size_t)(x + j) * cout, v, nc, nc < 16);
    }
}

decl_stem3x3_fn(mo_stem3x3_neon)
{
    const int ow = MO_CONV_OUT(iw, 2);
    /* interior columns: input columns 2x-1 .. 2x+1 all inside */
    const int x_lo = 1 < ow ? 1 : ow;
    int x_hi = iw < 2 ? 0 : (iw - 2) / 2 + 1;
    if (x_hi < x_lo)
        x_hi = x_lo;
    if (x_hi > ow)
        x_hi = ow;

    /* The last group of fewer than 16 channels runs on zero-padded copies of its
     * weights and biases (27 x 16 + 16 floats), so every tile is a full one. */
    const int cfull = cout & ~15;
    float wpad[27 * 16], bpad[16];
    if (cfull < cout) {
        const int nc = cout - cfull;
        memset(wpad, 0, sizeof(wpad));
        memset(bpad, 0, sizeof(bpad));
        for (int t = 0; t < 27; t++)
            memcpy(wpad + t * 16, weight + (size_t)t * cout + cfull, (size_t)nc * sizeof(float));
        memcpy(bpad, bias + cfull, (size_t)nc * sizeof(float));
    }

    for (int y = y0; y < y1; y++) {
        const float *rows[3];
        for (int ky = 0; ky < 3; ky++) {
            const int iy = 2 * y - 1 + ky;
            rows[ky] = iy >= 0 && iy < ih ? src + iy * src_stride : NULL;
        }
        float *orow = dst + y * dst_stride;
        for (int co = 0; co < cout; co += 16) {
            const int full = co < cfull, nc = full ? 16 : cout - co;
            const float *w = full ? weight + co : wpad, *b = full ? bias + co : bpad;
            const size_t ldw = full ? (size_t)cout : 16;
            float *o = orow + co;
            for (int x = 0; x < x_lo; x++) /* x = 0: input column -1 is padding */
                stem_tile(o, cout, rows, x, 1, iw > 1 ? 3 : 2, w, ldw, b, relu, nc, 1);
            int x = x_lo;
            for (; x + STEM_PX <= x_hi; x += STEM_PX)
                stem_tile(o, cout, rows, x, 0, 3, w, ldw, b, relu, nc, STEM_PX);
            for (; x < x_hi; x++)
                stem_tile(o, cout, rows, x, 0, 3, w, ldw, b, relu, nc, 1);
            for (x = x_hi; x < ow; x++) { /* right border: input column 2x+1 == iw */
                const int kx1 = 2 * x + 1 > iw - 1 ? iw - (2 * x - 1) : 3;
                stem_tile(o, cout, rows, x, 0, kx1, w, ldw, b, relu, nc, 1);
            }
        }
    }
}

/* ------------------------------------------------------------------- pool */

/* Pixel by pixel (rows are read in order), sums in dst: the reference's order of additions,
 * so the result is the reference's to the bit. */
decl_gap_fn(mo_gap_neon)
{
    const int c4 = c & ~3;
    memset(dst, 0, (size_t)c * sizeof(*dst));
    for (size_t p = 0; p < n; p++) {
        const float *s = src + p * c;
        int ch = 0;
        for (; ch < c4; ch += 4)
            vst1q_f32(dst + ch, vaddq_f32(vld1q_f32(dst + ch), vld1q_f32(s + ch)));
        for (; ch < c; ch++)
            dst[ch] += s[ch];
    }
    const float inv = n ? 1.0f / (float)n : 0.0f;
    int ch = 0;
    for (; ch < c4; ch += 4)
        vst1q_f32(dst + ch, vmulq_n_f32(vld1q_f32(dst + ch), inv));
    for (; ch < c; ch++)
        dst[ch] *= inv;
}

/* ------------------------------------------------------------ squeeze-excite */

/* sum_i a[i] b[i], 16 products per step in 4 accumulators, then the rest one by one. */
static float dot(const float *restrict a, const float *restrict b, int n)
{
    float32x4_t s0 = vdupq_n_f32(0.0f), s1 = s0, s2 = s0, s3 = s0;
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        s0 = vfmaq_f32(s0, vld1q_f32(a + i), vld1q_f32(b + i));
        s1 = vfmaq_f32(s1, vld1q_f32(a + i + 4), vld1q_f32(b + i + 4));
        s2 = vfmaq_f32(s2, vld1q_f32(a + i + 8), vld1q_f32(b + i + 8));
        s3 = vfmaq_f32(s3, vld1q_f32(a + i + 12), vld1q_f32(b + i + 12));
    }
    for (; i + 4 <= n; i += 4)
        s0 = vfmaq_f32(s0, vld1q_f32(a + i), vld1q_f32(b + i));
    float r = vaddvq_f32(vaddq_f32(vaddq_f32(s0, s1), vaddq_f32(s2, s3)));
    for (; i < n; i++)
        r = fmaf(a[i], b[i], r);
    return r;
}

/* The reference's steps; the two small matrix-vector products as vector dot products
 * (another order of additions), the channel means as mo_gap_neon (the same). */
decl_se_fn(mo_se_neon)
{
    float *m = tmp, *r = tmp + c;
    mo_gap_neon(m, x, n, c);
    for (int j = 0; j < cr; j++) {
        const float a = rb[j] + dot(rw + (size_t)j * c, m, c);
        r[j] = a > 0.0f ? a : 0.0f;
    }
    for (int ch = 0; ch < c; ch++)
        m[ch] = 1.0f / (1.0f + expf(-(eb[ch] + dot(ew + (size_t)ch * cr, r, cr))));
    const int c4 = c & ~3;
    const float32x4_t zero = vdupq_n_f32(0.0f);
    for (size_t p = 0; p < n; p++) {
        float *v = x + p * c;
        int ch = 0;
        for (; ch < c4; ch += 4)
            vst1q_f32(v + ch, vmaxnmq_f32(vmulq_f32(vld1q_f32(v + ch), vld1q_f32(m + ch)), zero));
        for (; ch < c; ch++) {
            const float s = v[ch] * m[ch];
            v[ch] = s > 0.0f ? s : 0.0f;
        }
    }
}
