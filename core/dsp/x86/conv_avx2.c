/*
 * AVX2 + FMA versions of the backbone kernels (contracts in mo_internal/conv.h, the C reference in
 * ../conv.c). Built with -mavx2 -mfma; only called when the CPU has both.
 *
 * All maps are NHWC, so every kernel vectorizes over channels, 8 floats per register.
 * Channel counts that are not a multiple of 8 (or of MO_PW_NR) are handled with masked
 * loads and stores, never by reading or writing past a row.
 *
 * Activation (the `relu` argument): 0 none, non-zero max(x, 0); the value 2 also clamps
 * at 6 (MO_ACT_RELU6 of the detection head's kernels). Written for every value the
 * references may take, so the variants stay valid when the reference grows that mode.
 */
#include <immintrin.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "conv_x86.h"

#define ACT_RELU6 2

#define ALWAYS_INLINE inline __attribute__((always_inline))

static const int32_t lane_index[16] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};

/* Lanes j with off + j < n set (all ones), the others clear. */
static ALWAYS_INLINE __m256i lanes_below(int n, int off)
{
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n),
                              _mm256_loadu_si256((const __m256i *)(lane_index + off)));
}

static ALWAYS_INLINE __m256 activate(__m256 v, int relu)
{
    if (relu) /* max(v, 0) returns 0 for NaN, as `v > 0 ? v : 0` does */
        v = _mm256_max_ps(v, _mm256_setzero_ps());
    if (relu == ACT_RELU6)
        v = _mm256_min_ps(v, _mm256_set1_ps(6.0f));
    return v;
}

/* Load / store 8 floats, or the lanes of mask only when partial. */
static ALWAYS_INLINE __m256 load8(const float *p, int partial, __m256i mask)
{
    return partial ? _mm256_maskload_ps(p, mask) : _mm256_loadu_ps(p);
}

static ALWAYS_INLINE void store8(float *p, __m256 v, int partial, __m256i mask)
{
    if (partial)
        _mm256_maskstore_ps(p, mask, v);
    else
        _mm256_storeu_ps(p, v);
}

/* -------------------------------------------------------------- pointwise */

/*
 * Register tile: PW_MR pixels x MO_PW_NR (16) output channels = 12 accumulators, plus
 * two weight vectors and one broadcast input (15 of the 16 ymm registers). Per input
 * channel: 2 weight loads, 6 broadcasts, 12 FMAs.
 *
 * Cache blocking: input channels in at most PW_KC-wide slices of equal width (the panel
 * slice, up to PW_KC x 16 floats = 32 KiB, is read from L1/L2 while a block of pixels
 * passes over it), pixels in blocks of equal size whose input slice stays in L2
 * (PW_BLOCK_BYTES; equal blocks: no short block at the end that streams the whole weight
 * matrix for a few pixels). Partial sums cross slices through dst (exact float stores and
 * loads), so every output element gets the same FMA sequence, in whichever tile, block or
 * pixel range it lies.
 *
 * Zen 3 (EPYC, 32 KiB L1d, 512 KiB L2 per core), one thread, against PW_KC 256 and
 * unequal blocks: checkdsp --bench 196 px 640 -> 640 45 -> 48.6 GMAC/s, pw_acc 1024 px
 * 1024 -> 256 40 -> 47.5 (peak 51.8); 3-5% on 196 px 896 -> 896, 784 px 448 -> 448 and
 * 1024 px 1024 -> 1024 (fewer passes over dst, the tile's setup and stores spread over
 * more FMAs); cin <= 256 unchanged.
 */
#define PW_MR 6
#define PW_KC 512
#define PW_BLOCK_BYTES (192 * 1024)

static ALWAYS_INLINE void pw_tile(float *restrict dst, size_t cout, const float *restrict src,
                                  size_t cin, int k0, int k1, const float *restrict wp,
                                  const float *restrict bias, int nc, int last, int relu,
                                  const int m)
{
    const int partial = nc < MO_PW_NR;
    const __m256i m0 = lanes_below(nc, 0), m1 = lanes_below(nc, 8);
    __m256 acc[PW_MR][2];
    if (bias) {
        const __m256 b0 = load8(bias, partial, m0), b1 = load8(bias + 8, partial, m1);
#pragma GCC unroll 6
        for (int i = 0; i < m; i++) {
            acc[i][0] = b0;
            acc[i][1] = b1;
        }
    } else {
#pragma GCC unroll 6
        for (int i = 0; i < m; i++) {
            acc[i][0] = load8(dst + i * cout, partial, m0);
            acc[i][1] = load8(dst + i * cout + 8, partial, m1);
        }
    }
    const float *restrict a = src + k0;
    const float *restrict w = wp + (size_t)k0 * MO_PW_NR;
    for (int k = k0; k < k1; k++, a++, w += MO_PW_NR) {
        const __m256 w0 = _mm256_loadu_ps(w), w1 = _mm256_loadu_ps(w + 8);
#pragma GCC unroll 6
        for (int i = 0; i < m; i++) {
            const __m256 x = _mm256_broadcast_ss(a + i * cin);
            acc[i][0] = _mm256_fmadd_ps(x, w0, acc[i][0]);
            acc[i][1] = _mm256_fmadd_ps(x, w1, acc[i][1]);
        }
    }
#pragma GCC unroll 6
    for (int i = 0; i < m; i++) {
        __m256 v0 = acc[i][0], v1 = acc[i][1];
        if (last) {
            v0 = activate(v0, relu);
            v1 = activate(v1, relu);
        }
        store8(dst + i * cout, v0, partial, m0);
        store8(dst + i * cout + 8, v1, partial, m1);
    }
}

/* mo_pw_avx2 and mo_pw_acc_avx2: rows ldd / lds floats apart; bias NULL accumulates. */
static void __attribute__((noinline))
pw_run(float *dst, size_t ldd, const float *src, size_t lds, size_t n, int cin,
                   int cout, const float *weight, const float *bias, int relu)
{
    const int np = (cout + MO_PW_NR - 1) / MO_PW_NR;
    int kc;
    size_t mb;
    mo_pw_blocking(n, cin, PW_KC, 1, PW_BLOCK_BYTES, PW_MR, &kc, &mb);
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

decl_pw_fn(mo_pw_avx2)
{
    pw_run(dst, (size_t)cout, src, (size_t)cin, n, cin, cout, weight, bias, relu);
}

decl_pw_acc_fn(mo_pw_acc_avx2)
{
    pw_run(dst, (size_t)dst_stride, src, (size_t)src_stride, n, cin, cout, weight, NULL, 0);
}

/* -------------------------------------------------------------- depthwise */

/*
 * One output pixel at any position: taps kx in [kx0, kx1) of the rows that exist, summed
 * in (ky, kx) order onto the bias, 16 channels at a time. Used for the border columns and
 * for rows with a tap row outside the map.
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
        __m256 a0 = _mm256_loadu_ps(bias + ch), a1 = _mm256_loadu_ps(bias + ch + 8);
        for (int t = 0; t < nt; t++) {
            a0 = _mm256_fmadd_ps(_mm256_loadu_ps(wt[t] + ch), _mm256_loadu_ps(pt[t] + ch), a0);
            a1 = _mm256_fmadd_ps(_mm256_loadu_ps(wt[t] + ch + 8), _mm256_loadu_ps(pt[t] + ch + 8),
                                 a1);
        }
        _mm256_storeu_ps(o + ch, activate(a0, relu));
        _mm256_storeu_ps(o + ch + 8, activate(a1, relu));
    }
    for (; ch < c; ch += 8) {
        const int partial = c - ch < 8;
        const __m256i mask = lanes_below(c - ch, 0);
        __m256 a = load8(bias + ch, partial, mask);
        for (int t = 0; t < nt; t++)
            a = _mm256_fmadd_ps(load8(wt[t] + ch, partial, mask), load8(pt[t] + ch, partial, mask),
                                a);
        store8(o + ch, activate(a, relu), partial, mask);
    }
}

/*
 * Interior columns [x0, x1) of a row whose three tap rows exist: for each group of 8
 * channels the 9 weights and the bias stay in registers while the columns pass. Columns
 * go in tiles of DW_XT so that the input they touch stays in L1 across channel groups.
 * Same (ky, kx) FMA order as dw_px.
 */
#define DW_XT 16

static ALWAYS_INLINE void dw_interior(float *restrict orow, const float *const rows[3], int x0,
                                      int x1, int stride, ptrdiff_t d, int c,
                                      const float *restrict w, const float *restrict bias,
                                      int relu, int partial, int ch, __m256i mask)
{
    const __m256 w00 = load8(w + 0 * (size_t)c + ch, partial, mask);
    const __m256 w01 = load8(w + 1 * (size_t)c + ch, partial, mask);
    const __m256 w02 = load8(w + 2 * (size_t)c + ch, partial, mask);
    const __m256 w10 = load8(w + 3 * (size_t)c + ch, partial, mask);
    const __m256 w11 = load8(w + 4 * (size_t)c + ch, partial, mask);
    const __m256 w12 = load8(w + 5 * (size_t)c + ch, partial, mask);
    const __m256 w20 = load8(w + 6 * (size_t)c + ch, partial, mask);
    const __m256 w21 = load8(w + 7 * (size_t)c + ch, partial, mask);
    const __m256 w22 = load8(w + 8 * (size_t)c + ch, partial, mask);
    const __m256 b = load8(bias + ch, partial, mask);
    const ptrdiff_t dc = d * c, sc = (ptrdiff_t)stride * c;
    const float *r0 = rows[0] + (ptrdiff_t)x0 * sc + ch;
    const float *r1 = rows[1] + (ptrdiff_t)x0 * sc + ch;
    const float *r2 = rows[2] + (ptrdiff_t)x0 * sc + ch;
    float *o = orow + (ptrdiff_t)x0 * c + ch;
    for (int x = x0; x < x1; x++, r0 += sc, r1 += sc, r2 += sc, o += c) {
        __m256 acc = b;
        acc = _mm256_fmadd_ps(w00, load8(r0 - dc, partial, mask), acc);
        acc = _mm256_fmadd_ps(w01, load8(r0, partial, mask), acc);
        acc = _mm256_fmadd_ps(w02, load8(r0 + dc, partial, mask), acc);
        acc = _mm256_fmadd_ps(w10, load8(r1 - dc, partial, mask), acc);
        acc = _mm256_fmadd_ps(w11, load8(r1, partial, mask), acc);
        acc = _mm256_fmadd_ps(w12, load8(r1 + dc, partial, mask), acc);
        acc = _mm256_fmadd_ps(w20, load8(r2 - dc, partial, mask), acc);
        acc = _mm256_fmadd_ps(w21, load8(r2, partial, mask), acc);
        acc = _mm256_fmadd_ps(w22, load8(r2 + dc, partial, mask), acc);
        store8(o, activate(acc, relu), partial, mask);
    }
}

/*
 * The same columns, pixel by pixel, 16 channels (one cache line) at a time, weights read
 * from L1: for more than DW_TILE_MAX_C channels. With wide pixels, a tile of dw_interior
 * (3 rows of DW_XT + 2 pixels, every line used by two passes of 8 channels) no longer
 * fits the L1 ways its lines map to (pixels 4 KiB apart share a set), and a pass evicts
 * what the next one needs. Same FMA sequence per element as dw_interior and dw_px.
 */
#define DW_TILE_MAX_C 160

static void dw_interior_px(float *restrict orow, const float *const rows[3], int x0, int x1,
                           int stride, ptrdiff_t d, int c, const float *restrict w,
                           const float *restrict bias, int relu)
{
    const ptrdiff_t dc = d * c, sc = (ptrdiff_t)stride * c;
    const size_t cs = (size_t)c;
    for (int x = x0; x < x1; x++) {
        const float *r0 = rows[0] + (ptrdiff_t)x * sc, *r1 = rows[1] + (ptrdiff_t)x * sc,
                    *r2 = rows[2] + (ptrdiff_t)x * sc;
        float *o = orow + (ptrdiff_t)x * c;
        int ch = 0;
        for (; ch + 16 <= c; ch += 16) {
            __m256 a0 = _mm256_loadu_ps(bias + ch), a1 = _mm256_loadu_ps(bias + ch + 8);
#define TAP(t, p)                                                                          \
    a0 = _mm256_fmadd_ps(_mm256_loadu_ps(w + (t) * cs + ch), _mm256_loadu_ps((p) + ch), a0); \
    a1 = _mm256_fmadd_ps(_mm256_loadu_ps(w + (t) * cs + ch + 8), _mm256_loadu_ps((p) + ch + 8), a1)
            TAP(0, r0 - dc); TAP(1, r0); TAP(2, r0 + dc);
            TAP(3, r1 - dc); TAP(4, r1); TAP(5, r1 + dc);
            TAP(6, r2 - dc); TAP(7, r2); TAP(8, r2 + dc);
#undef TAP
            _mm256_storeu_ps(o + ch, activate(a0, relu));
            _mm256_storeu_ps(o + ch + 8, activate(a1, relu));
        }
        for (; ch < c; ch += 8) {
            const int partial = c - ch < 8;
            const __m256i mask = lanes_below(c - ch, 0);
            __m256 a = load8(bias + ch, partial, mask);
            const float *const p[9] = {r0 - dc, r0, r0 + dc, r1 - dc, r1, r1 + dc,
                                       r2 - dc, r2, r2 + dc};
            for (int t = 0; t < 9; t++)
                a = _mm256_fmadd_ps(load8(w + t * cs + ch, partial, mask),
                                    load8(p[t] + ch, partial, mask), a);
            store8(o + ch, activate(a, relu), partial, mask);
        }
    }
}

decl_dw3x3_fn(mo_dw3x3_avx2)
{
    const int ow = MO_CONV_OUT(iw, stride);
    int x_lo, x_hi;
    mo_dw_interior(iw, stride, dil, &x_lo, &x_hi);
    const int cfull = c & ~7;

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
        if (rows[0] && rows[2] && c > DW_TILE_MAX_C) {
            dw_interior_px(orow, rows, x_lo, x_hi, stride, dil, c, weight, bias, relu);
        } else if (rows[0] && rows[2]) {
            for (int xt = x_lo; xt < x_hi; xt += DW_XT) {
                const int xe = x_hi - xt < DW_XT ? x_hi : xt + DW_XT;
                const __m256i none = _mm256_setzero_si256();
                for (int ch = 0; ch < cfull; ch += 8)
                    dw_interior(orow, rows, xt, xe, stride, dil, c, weight, bias, relu, 0, ch,
                                none);
                if (cfull < c)
                    dw_interior(orow, rows, xt, xe, stride, dil, c, weight, bias, relu, 1,
                                cfull, lanes_below(c - cfull, 0));
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
 * Stem tile: STEM_PX output pixels x 16 output channels (8 accumulators), summing the 27
 * (ky, kx, ci) products in that order onto the bias; taps outside the image (kx outside
 * [kx0, kx1), missing rows) are skipped. The weight row of a tap is loaded once for the
 * pixels of the tile, each input value broadcast once per channel group.
 */
#define STEM_PX 4

static ALWAYS_INLINE void stem_tile(float *restrict o, int cout, const float *const rows[3],
                                    int x, int kx0, int kx1, const float *restrict w,
                                    const float *restrict bias, int relu, int co, const int np)
{
    const int nc = cout - co < 16 ? cout - co : 16;
    const int partial = nc < 16, two = nc > 8;
    const __m256i m0 = lanes_below(nc, 0), m1 = lanes_below(nc, 8);
    const __m256 b0 = load8(bias + co, partial, m0);
    const __m256 b1 = two ? load8(bias + co + 8, partial, m1) : _mm256_setzero_ps();
    __m256 acc[STEM_PX][2];
#pragma GCC unroll 4
    for (int j = 0; j < np; j++) {
        acc[j][0] = b0;
        acc[j][1] = b1;
    }
    for (int ky = 0; ky < 3; ky++) {
        if (!rows[ky])
            continue;
        for (int kx = kx0; kx < kx1; kx++) {
            const float *p = rows[ky] + (ptrdiff_t)(2 * x - 1 + kx) * 3;
            for (int ci = 0; ci < 3; ci++) {
                const float *wr = w + (size_t)((ky * 3 + kx) * 3 + ci) * cout + co;
                const __m256 w0 = load8(wr, partial, m0);
                const __m256 w1 = two ? load8(wr + 8, partial, m1) : _mm256_setzero_ps();
#pragma GCC unroll 4
                for (int j = 0; j < np; j++) {
                    const __m256 a = _mm256_broadcast_ss(p + 6 * j + ci);
                    acc[j][0] = _mm256_fmadd_ps(a, w0, acc[j][0]);
                    acc[j][1] = _mm256_fmadd_ps(a, w1, acc[j][1]);
                }
            }
        }
    }
#pragma GCC unroll 4
    for (int j = 0; j < np; j++) {
        float *oj = o + (size_t)(x + j) * cout + co;
        store8(oj, activate(acc[j][0], relu), partial, m0);
        if (two)
            store8(oj + 8, activate(acc[j][1], relu), partial, m1);
    }
}

decl_stem3x3_fn(mo_stem3x3_avx2)
{
    const int ow = MO_CONV_OUT(iw, 2);
    /* interior columns: input columns 2x-1 .. 2x+1 all inside */
    const int x_lo = 1 < ow ? 1 : ow;
    int x_hi = iw < 2 ? 0 : (iw - 2) / 2 + 1;
    if (x_hi < x_lo)
        x_hi = x_lo;
    if (x_hi > ow)
        x_hi = ow;

    for (int y = y0; y < y1; y++) {
        const float *rows[3];
        for (int ky = 0; ky < 3; ky++) {
            const int iy = 2 * y - 1 + ky;
            rows[ky] = iy >= 0 && iy < ih ? src + iy * src_stride : NULL;
        }
        float *orow = dst + y * dst_stride;
        for (int co = 0; co < cout; co += 16) {
            for (int x = 0; x < x_lo; x++) /* x = 0: input column -1 is padding */
                stem_tile(orow, cout, rows, x, 1, iw > 1 ? 3 : 2, weight, bias, relu, co, 1);
            int x = x_lo;
            for (; x + STEM_PX <= x_hi; x += STEM_PX)
                stem_tile(orow, cout, rows, x, 0, 3, weight, bias, relu, co, STEM_PX);
            for (; x < x_hi; x++)
                stem_tile(orow, cout, rows, x, 0, 3, weight, bias, relu, co, 1);
            for (x = x_hi; x < ow; x++) { /* right border: input column 2x+1 == iw */
                const int kx1 = 2 * x + 1 > iw - 1 ? iw - (2 * x - 1) : 3;
                stem_tile(orow, cout, rows, x, 0, kx1, weight, bias, relu, co, 1);
            }
        }
    }
}

/* ------------------------------------------------------------------- pool */

/* Pixel by pixel (rows are read in order), sums in dst: the reference's order of additions,
 * so the result is the reference's to the bit. */
decl_gap_fn(mo_gap_avx2)
{
    const __m256i none = _mm256_setzero_si256(), tail = lanes_below(c & 7, 0);
    const int cfull = c & ~7;
    memset(dst, 0, (size_t)c * sizeof(*dst));
    for (size_t p = 0; p < n; p++) {
        const float *s = src + p * c;
        int ch = 0;
        for (; ch < cfull; ch += 8)
            _mm256_storeu_ps(dst + ch, _mm256_add_ps(_mm256_loadu_ps(dst + ch),
                                                     _mm256_loadu_ps(s + ch)));
        if (ch < c)
            store8(dst + ch, _mm256_add_ps(load8(dst + ch, 1, tail), load8(s + ch, 1, tail)), 1,
                   tail);
    }
    const __m256 inv = _mm256_set1_ps(n ? 1.0f / (float)n : 0.0f);
    for (int ch = 0; ch < c; ch += 8) {
        const int partial = c - ch < 8;
        store8(dst + ch, _mm256_mul_ps(load8(dst + ch, partial, partial ? tail : none), inv),
               partial, partial ? tail : none);
    }
}

/* ------------------------------------------------------------ squeeze-excite */

/* sum_i a[i] b[i], 32 products per step in 4 accumulators, then the rest one by one. */
static float dot(const float *restrict a, const float *restrict b, int n)
{
    __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    int i = 0;
    for (; i + 32 <= n; i += 32) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
        s2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16), s2);
        s3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24), s3);
    }
    for (; i + 8 <= n; i += 8)
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    const __m256 s = _mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3));
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_movehdup_ps(h));
    float r = _mm_cvtss_f32(h);
    for (; i < n; i++)
        r += a[i] * b[i];
    return r;
}

/* The reference's steps; the two small matrix-vector products as vector dot products
 * (another order of additions), the channel means as mo_gap_avx2 (the same). */
decl_se_fn(mo_se_avx2)
{
    float *m = tmp, *r = tmp + c;
    mo_gap_avx2(m, x, n, c);
    for (int j = 0; j < cr; j++) {
        const float a = rb[j] + dot(rw + (size_t)j * c, m, c);
        r[j] = a > 0.0f ? a : 0.0f;
    }
    for (int ch = 0; ch < c; ch++)
        m[ch] = 1.0f / (1.0f + expf(-(eb[ch] + dot(ew + (size_t)ch * cr, r, cr))));
    const int cfull = c & ~7;
    const __m256i tail = lanes_below(c & 7, 0);
    const __m256 zero = _mm256_setzero_ps();
    for (size_t p = 0; p < n; p++) {
        float *v = x + p * c;
        int ch = 0;
        for (; ch < cfull; ch += 8)
            _mm256_storeu_ps(v + ch, _mm256_max_ps(_mm256_mul_ps(_mm256_loadu_ps(v + ch),
                                                                 _mm256_loadu_ps(m + ch)),
                                                   zero));
        if (ch < c)
            store8(v + ch, _mm256_max_ps(_mm256_mul_ps(load8(v + ch, 1, tail),
                                                       load8(m + ch, 1, tail)), zero),
                   1, tail);
    }
}
