/*
 * AVX-512 (F) versions of the convolutions: pointwise GEMM (~85% of a forward pass),
 * depthwise and stem (contracts in mo_internal/conv.h, C reference in ../conv.c). Built with
 * -mavx512f; only called when the CPU and OS support it (MO_CPU_AVX512, on top of
 * MO_CPU_AVX2). The pooling and squeeze-excite stay with AVX2.
 *
 * Pointwise:
 * A panel row of MO_PW_NR = 16 output channels is one zmm register. Register tile: up to
 * PW_MR pixels x 2 panels (32 channels) = 24 accumulators + 2 weight vectors + 1
 * broadcast (27 of 32 registers); per input channel 2 weight loads and 12 broadcasts feed
 * 24 FMAs. A lone last panel takes 1-panel tiles. Partial panels (cout not a multiple of
 * 16) use masked loads and stores.
 *
 * Every output element gets bias + an FMA chain over the input channels in order, cut into
 * at most PW_KC-wide slices of equal width (partial sums go through dst, exactly),
 * whatever its tile, block or pixel range: splitting a layer over threads gives the same
 * bits. Pixel blocks are of equal size, whole tiles (as in conv_avx2.c: no short last
 * block streaming the whole weight matrix for a few pixels). The full tiles of a panel
 * pair prefetch the next pair's rows of the slice into L2 (at 7x7 a pair has only 4-5
 * tiles to hide its weights' misses behind: s2 stage4.1, 640 -> 2048, 0.88 ms from 1.10),
 * and the pixels after the last full tile go with it as two register tiles.
 */
#include <immintrin.h>
#include <stddef.h>

#include "conv_x86.h"

#define ACT_RELU6 2 /* MO_ACT_RELU6 of the detection head's kernels, see conv_avx2.c */

#define ALWAYS_INLINE inline __attribute__((always_inline))

#define PW_MR 12
/* Input channels per slice: up to 1024 in one, so a tile's accumulators stay in registers
 * for the whole sum (with 256, each slice edge stored and reloaded 24 accumulators per
 * tile, from L3 once a layer's output outgrows L2: s3 at 224, 1 thread, whole run 21.9 ->
 * 21.3 ms, s1 9.7 -> 9.5 ms, medians of 3 alternated rounds). */
#define PW_KC 1024
#define PW_BLOCK_BYTES (256 * 1024)
/* The next panels' rows of a slice are prefetched by the first PW_PF_TILES full tiles of a
 * panel pair, tile t taking every PW_PF_TILES-th row from row t (see pw_panels). */
#define PW_PF_TILES 16

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
                                  const int np, const float *restrict pf0,
                                  const float *restrict pf1, int pf_first, int pf_every)
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
    int pf_in = pf_first + 1;
    for (int k = k0; k < k1; k++, a++, w0 += MO_PW_NR, w1 += MO_PW_NR) {
        if (pf_every && --pf_in == 0) { /* a row of the next panels, into L2 */
            pf_in = pf_every;
            _mm_prefetch((const char *)(pf0 + (size_t)(k - k0) * MO_PW_NR), _MM_HINT_T1);
            _mm_prefetch((const char *)(pf1 + (size_t)(k - k0) * MO_PW_NR), _MM_HINT_T1);
        }
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

/*
 * Fewer than PW_MR pixels (the end of a pixel range): the same FMA sequence per element as
 * pw_tile, with the pixel count a run-time value (accumulators on the stack). Kept apart
 * so that only the full tile is expanded for a constant size: eleven more expansions made
 * the file take minutes to compile with clang's sanitizers.
 */
static void __attribute__((noinline))
pw_tile_rest(float *restrict dst, size_t cout, const float *restrict src, size_t cin, int k0,
             int k1, const float *restrict wp0, const float *restrict wp1,
             const float *restrict bias, int nc0, int nc1, int last, int relu, int m, int np)
{
    const __mmask16 mk[2] = {lanes(nc0), np > 1 ? lanes(nc1) : 0};
    __m512 acc[PW_MR][2];
    for (int i = 0; i < m; i++)
        for (int v = 0; v < np; v++)
            acc[i][v] = bias ? _mm512_maskz_loadu_ps(mk[v], bias + 16 * v)
                             : _mm512_maskz_loadu_ps(mk[v], dst + i * cout + 16 * v);
    const float *const wp[2] = {wp0, wp1};
    for (int k = k0; k < k1; k++)
        for (int v = 0; v < np; v++) {
            const __m512 wv = _mm512_loadu_ps(wp[v] + (size_t)k * MO_PW_NR);
            for (int i = 0; i < m; i++)
                acc[i][v] = _mm512_fmadd_ps(_mm512_set1_ps(src[i * cin + k]), wv, acc[i][v]);
        }
    for (int i = 0; i < m; i++)
        for (int v = 0; v < np; v++)
            _mm512_mask_storeu_ps(dst + i * cout + 16 * v, mk[v],
                                  last ? activate(acc[i][v], relu) : acc[i][v]);
}

/*
 * A tile of PW_MR / 2 <= m <= PW_MR pixels, still in registers: the pixels left over after
 * the full tiles, with the last full tile, are cut into two such tiles. Left to the rest
 * loop, 1 pixel (49 = 4 x 12 + 1 at 7x7) took about as long as a full tile, its
 * accumulators on the stack (store-forward latency per FMA), and 4 (196 = 16 x 12 + 4 at
 * 14x14) longer. Same FMA sequence per element as pw_tile.
 */
static void __attribute__((noinline))
pw_tile_mid(float *restrict dst, size_t cout, const float *restrict src, size_t cin, int k0,
            int k1, const float *restrict wp0, const float *restrict wp1,
            const float *restrict bias, int nc0, int nc1, int last, int relu, int m, int np)
{
#define PW_MID(M, NP)                                                                      \
    case (NP) * 16 + (M):                                                                  \
        pw_tile(dst, cout, src, cin, k0, k1, wp0, wp1, bias, nc0, nc1, last, relu, M, NP,  \
                NULL, NULL, 0, 0);                                                         \
        return;
    switch (np * 16 + m) {
        PW_MID(6, 1) PW_MID(7, 1) PW_MID(8, 1) PW_MID(9, 1) PW_MID(10, 1) PW_MID(11, 1)
        PW_MID(12, 1) /* 23 left: 12 + 11 */
        PW_MID(6, 2) PW_MID(7, 2) PW_MID(8, 2) PW_MID(9, 2) PW_MID(10, 2) PW_MID(11, 2)
        PW_MID(12, 2)
    default:
        pw_tile_rest(dst, cout, src, cin, k0, k1, wp0, wp1, bias, nc0, nc1, last, relu, m, np);
    }
#undef PW_MID
}

/* Pixels [p, pend) of one panel pair (np = 2) or one panel: full tiles, then the rest
 * (with the last full tile, as two register tiles when there is one, see pw_tile_mid). */
static ALWAYS_INLINE void pw_panels(float *dst, size_t cout, const float *src, size_t cin,
                                    size_t p, size_t pend, int k0, int k1, const float *wp0,
                                    const float *wp1, const float *b, int nc0, int nc1,
                                    int last, int relu, const int np, const float *pf0,
                                    const float *pf1)
{
    const size_t r = (pend - p) % PW_MR;
    const size_t full_end = r && pend - p > PW_MR ? pend - PW_MR - r : pend - r;
    /* The full tiles share the prefetch of the next panels' rows k0..k1: tile t of T (at
     * most PW_PF_TILES) takes rows t, t + T, ... Before, the first tile took them all:
     * in-network, the weights come from DRAM, and s2's pointwise layers (1 thread, sum of
     * mo-bench medians) took 12.8 ms that way, 12.6 this way. */
    const int ntiles = p < full_end ? (int)((full_end - p) / PW_MR) : 0;
    const int every = ntiles < PW_PF_TILES ? ntiles : PW_PF_TILES;
    for (int t = 0; p < full_end; p += PW_MR, t++)
        pw_tile(dst + p * cout, cout, src + p * cin, cin, k0, k1, wp0, wp1, b, nc0, nc1, last,
                relu, PW_MR, np, pf0, pf1, t, t < every ? every : 0);
    while (p < pend) {
        const size_t left = pend - p;
        const int m = left > PW_MR ? (int)(left + 1) / 2 : (int)left;
        pw_tile_mid(dst + p * cout, cout, src + p * cin, cin, k0, k1, wp0, wp1, b, nc0, nc1,
                    last, relu, m, np);
        p += (size_t)m;
    }
}

/* mo_pw_avx512 and mo_pw_acc_avx512: rows ldd / lds floats apart; bias NULL accumulates. */
static void __attribute__((noinline))
pw_run(float *dst, size_t ldd, const float *src, size_t lds, size_t n, int cin,
                   int cout, const float *weight, const float *bias, int relu)
{
    const int np = (cout + MO_PW_NR - 1) / MO_PW_NR;
    int kc;
    size_t mb;
    mo_pw_blocking(n, cin, PW_KC, 1, PW_BLOCK_BYTES, PW_MR, &kc, &mb);
    const size_t panel = (size_t)cin * MO_PW_NR;

    for (size_t p0 = 0; p0 < n; p0 += mb) {
        const size_t pend = n - p0 < mb ? n : p0 + mb;
        for (int k0 = 0; k0 < cin; k0 += kc) {
            const int k1 = cin - k0 < kc ? cin : k0 + kc;
            const int first = k0 == 0, last = k1 == cin;
            int pj = 0;
            for (; pj + 2 <= np; pj += 2) {
                const int co = pj * MO_PW_NR;
                const int nc1 = cout - co - 16 < 16 ? cout - co - 16 : 16;
                /* next panels (rows k0.. of panels pj + 2, pj + 3; or the current ones) */
                const size_t row0 = (size_t)k0 * MO_PW_NR;
                const float *pf0 = weight + (pj + 2 < np ? pj + 2 : pj) * panel + row0;
                const float *pf1 = weight + (pj + 3 < np ? pj + 3 : pj + 1) * panel + row0;
                pw_panels(dst + co, ldd, src, lds, p0, pend, k0, k1, weight + pj * panel,
                          weight + (pj + 1) * panel, first && bias ? bias + co : NULL, 16, nc1,
                          last, relu, 2, pf0, pf1);
            }
            if (pj < np) {
                const int co = pj * MO_PW_NR;
                const float *pf0 = weight + pj * panel + (size_t)k0 * MO_PW_NR;
                pw_panels(dst + co, ldd, src, lds, p0, pend, k0, k1, weight + pj * panel, NULL,
                          first && bias ? bias + co : NULL, cout - co, 0, last, relu, 1, pf0,
                          pf0);
            }
        }
    }
}

decl_pw_fn(mo_pw_avx512)
{
    pw_run(dst, (size_t)cout, src, (size_t)cin, n, cin, cout, weight, bias, relu);
}

decl_pw_acc_fn(mo_pw_acc_avx512)
{
    pw_run(dst, (size_t)dst_stride, src, (size_t)src_stride, n, cin, cout, weight, NULL, 0);
}

/* -------------------------------------------------------------- depthwise */

/*
 * One output pixel at any position: taps kx in [kx0, kx1) of the rows that exist, summed
 * in (ky, kx) order onto the bias, 16 channels (one zmm, one cache line) at a time; the
 * last group masked. Used for the border columns and for rows with a tap row outside the
 * map.
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
    for (int ch = 0; ch < c; ch += 16) {
        const __mmask16 m = lanes(c - ch);
        __m512 a = _mm512_maskz_loadu_ps(m, bias + ch);
        for (int t = 0; t < nt; t++)
            a = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, wt[t] + ch),
                                _mm512_maskz_loadu_ps(m, pt[t] + ch), a);
        _mm512_mask_storeu_ps(o + ch, m, activate(a, relu));
    }
}

/* bias + the 9 taps (rows p, q, s; columns 0, 1, 2) in (ky, kx) order, as dw_px */
static ALWAYS_INLINE __m512 dw_taps(__m512 a, const __m512 wv[9], __m512 p0, __m512 p1,
                                    __m512 p2, __m512 q0, __m512 q1, __m512 q2, __m512 s0,
                                    __m512 s1, __m512 s2)
{
    a = _mm512_fmadd_ps(wv[0], p0, a);
    a = _mm512_fmadd_ps(wv[1], p1, a);
    a = _mm512_fmadd_ps(wv[2], p2, a);
    a = _mm512_fmadd_ps(wv[3], q0, a);
    a = _mm512_fmadd_ps(wv[4], q1, a);
    a = _mm512_fmadd_ps(wv[5], q2, a);
    a = _mm512_fmadd_ps(wv[6], s0, a);
    a = _mm512_fmadd_ps(wv[7], s1, a);
    return _mm512_fmadd_ps(wv[8], s2, a);
}

/*
 * Interior columns [x0, x1) of a row whose three tap rows exist, for the 16 channels at
 * ch (mask m): the 9 weights and the bias stay in registers while the columns pass. A
 * group covers whole cache lines, so no line is needed by two passes (unlike 8-channel
 * groups, where wide maps evict lines between the passes: see conv_avx2.c). Same FMA
 * order as dw_px.
 */
static ALWAYS_INLINE void dw_interior(float *restrict orow, const float *const rows[3], int x0,
                                      int x1, int stride, ptrdiff_t d, int c,
                                      const float *restrict w, const float *restrict bias,
                                      int relu, int ch, __mmask16 m)
{
    __m512 wv[9];
    for (int t = 0; t < 9; t++)
        wv[t] = _mm512_maskz_loadu_ps(m, w + (size_t)t * c + ch);
    const __m512 b = _mm512_maskz_loadu_ps(m, bias + ch);
    const ptrdiff_t dc = d * c, sc = (ptrdiff_t)stride * c;
    const float *r0 = rows[0] + (ptrdiff_t)x0 * sc + ch;
    const float *r1 = rows[1] + (ptrdiff_t)x0 * sc + ch;
    const float *r2 = rows[2] + (ptrdiff_t)x0 * sc + ch;
    float *o = orow + (ptrdiff_t)x0 * c + ch;
    if (stride == 1) {
        /* Sliding window: the 3 x 3 inputs of a pixel stay in registers, and the next
         * pixel of the same phase (x + d) loads one new column: 3 loads per output instead
         * of 9 (1.3-1.7x faster at s0-s4 shapes). Dilated maps go phase by phase (x = x0 +
         * r, x0 + r + d, ...). Same FMA order. */
        for (int r = 0; r < d && x0 + r < x1; r++) {
            const float *u0 = r0 + (ptrdiff_t)r * c, *u1 = r1 + (ptrdiff_t)r * c;
            const float *u2 = r2 + (ptrdiff_t)r * c;
            float *ou = o + (ptrdiff_t)r * c;
            __m512 p0 = _mm512_maskz_loadu_ps(m, u0 - dc), p1 = _mm512_maskz_loadu_ps(m, u0);
            __m512 q0 = _mm512_maskz_loadu_ps(m, u1 - dc), q1 = _mm512_maskz_loadu_ps(m, u1);
            __m512 s0 = _mm512_maskz_loadu_ps(m, u2 - dc), s1 = _mm512_maskz_loadu_ps(m, u2);
            for (int x = x0 + r; x < x1; x += (int)d, u0 += dc, u1 += dc, u2 += dc, ou += dc) {
                const __m512 p2 = _mm512_maskz_loadu_ps(m, u0 + dc);
                const __m512 q2 = _mm512_maskz_loadu_ps(m, u1 + dc);
                const __m512 s2 = _mm512_maskz_loadu_ps(m, u2 + dc);
                const __m512 a = dw_taps(b, wv, p0, p1, p2, q0, q1, q2, s0, s1, s2);
                _mm512_mask_storeu_ps(ou, m, activate(a, relu));
                p0 = p1, p1 = p2, q0 = q1, q1 = q2, s0 = s1, s1 = s2;
            }
        }
        return;
    }
    if (stride == 2 && d == 1 && x1 > x0) { /* window of 3 columns, steps of 2: one kept */
        __m512 p0 = _mm512_maskz_loadu_ps(m, r0 - c), q0 = _mm512_maskz_loadu_ps(m, r1 - c);
        __m512 s0 = _mm512_maskz_loadu_ps(m, r2 - c);
        for (int x = x0; x < x1; x++, r0 += sc, r1 += sc, r2 += sc, o += c) {
            const __m512 p1 = _mm512_maskz_loadu_ps(m, r0), p2 = _mm512_maskz_loadu_ps(m, r0 + c);
            const __m512 q1 = _mm512_maskz_loadu_ps(m, r1), q2 = _mm512_maskz_loadu_ps(m, r1 + c);
            const __m512 s1 = _mm512_maskz_loadu_ps(m, r2), s2 = _mm512_maskz_loadu_ps(m, r2 + c);
            const __m512 a = dw_taps(b, wv, p0, p1, p2, q0, q1, q2, s0, s1, s2);
            _mm512_mask_storeu_ps(o, m, activate(a, relu));
            p0 = p2, q0 = q2, s0 = s2;
        }
        return;
    }
    for (int x = x0; x < x1; x++, r0 += sc, r1 += sc, r2 += sc, o += c) {
        const __m512 a = dw_taps(b, wv, _mm512_maskz_loadu_ps(m, r0 - dc),
                                 _mm512_maskz_loadu_ps(m, r0), _mm512_maskz_loadu_ps(m, r0 + dc),
                                 _mm512_maskz_loadu_ps(m, r1 - dc), _mm512_maskz_loadu_ps(m, r1),
                                 _mm512_maskz_loadu_ps(m, r1 + dc),
                                 _mm512_maskz_loadu_ps(m, r2 - dc), _mm512_maskz_loadu_ps(m, r2),
                                 _mm512_maskz_loadu_ps(m, r2 + dc));
        _mm512_mask_storeu_ps(o, m, activate(a, relu));
    }
}

/*
 * The same columns pixel by pixel, weights read from L1, every line used right after it is
 * loaded. Two cases:
 * - channel counts that are a multiple of 1024: pixels 4 KiB apart (or 8, 12 KiB...) map
 *   onto one L1 set, and a pass of dw_interior over a row evicts the lines its next columns
 *   reuse (measured: 1.3x slower than this at 14x14x1024; at 512 channels the tiles win);
 * - stride 2 over 64 or more channels: its input was just written by a layer that did not
 *   leave it in L1, and dw_interior's passes (one per 16 channels) each read one line of
 *   every input pixel, a stride of 8c bytes; here the rows are read in order (in-network,
 *   s2 at 224, 1 thread, mo-bench medians: stage1.0 0.129 -> 0.100 ms, stage2.0 0.056 ->
 *   0.045, stage3.0 0.044 -> 0.033; at 48 channels, s0's stage2.0, the passes win:
 *   0.010 against 0.015 ms).
 * Same FMA order per element as dw_interior and dw_px.
 */
static void dw_interior_px(float *restrict orow, const float *const rows[3], int x0, int x1,
                           int stride, ptrdiff_t d, int c, const float *restrict w,
                           const float *restrict bias, int relu)
{
    const ptrdiff_t dc = d * c, sc = (ptrdiff_t)stride * c;
    const size_t cs = (size_t)c;
    for (int x = x0; x < x1; x++) {
        const float *r0 = rows[0] + (ptrdiff_t)x * sc, *r1 = rows[1] + (ptrdiff_t)x * sc,
                    *r2 = rows[2] + (ptrdiff_t)x * sc;
        const float *const p[9] = {r0 - dc, r0, r0 + dc, r1 - dc, r1, r1 + dc,
                                   r2 - dc, r2, r2 + dc};
        float *o = orow + (ptrdiff_t)x * c;
        int ch = 0;
        for (; ch + 32 <= c; ch += 32) {
            __m512 a0 = _mm512_loadu_ps(bias + ch), a1 = _mm512_loadu_ps(bias + ch + 16);
#pragma GCC unroll 9
            for (int t = 0; t < 9; t++) {
                a0 = _mm512_fmadd_ps(_mm512_loadu_ps(w + t * cs + ch), _mm512_loadu_ps(p[t] + ch),
                                     a0);
                a1 = _mm512_fmadd_ps(_mm512_loadu_ps(w + t * cs + ch + 16),
                                     _mm512_loadu_ps(p[t] + ch + 16), a1);
            }
            _mm512_storeu_ps(o + ch, activate(a0, relu));
            _mm512_storeu_ps(o + ch + 16, activate(a1, relu));
        }
        for (; ch < c; ch += 16) { /* the last 16 or fewer channels */
            const __mmask16 m = lanes(c - ch);
            __m512 a = _mm512_maskz_loadu_ps(m, bias + ch);
#pragma GCC unroll 9
            for (int t = 0; t < 9; t++)
                a = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, w + t * cs + ch),
                                    _mm512_maskz_loadu_ps(m, p[t] + ch), a);
            _mm512_mask_storeu_ps(o + ch, m, activate(a, relu));
        }
    }
}

decl_dw3x3_fn(mo_dw3x3_avx512)
{
    const int ow = MO_CONV_OUT(iw, stride);
    int x_lo, x_hi;
    mo_dw_interior(iw, stride, dil, &x_lo, &x_hi);

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
        if (rows[0] && rows[2] && (c % 1024 == 0 || (stride == 2 && dil == 1 && c >= 64))) {
            dw_interior_px(orow, rows, x_lo, x_hi, stride, dil, c, weight, bias, relu);
        } else if (rows[0] && rows[2]) {
            for (int ch = 0; ch < c; ch += 16)
                dw_interior(orow, rows, x_lo, x_hi, stride, dil, c, weight, bias, relu, ch,
                            lanes(c - ch));
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
 * Stem tile: np output pixels x nv groups of 16 output channels (np * nv <= 24
 * accumulators), summing the (ky, kx, ci) products in that order onto the bias; taps
 * outside the image (kx outside [kx0, kx1), missing rows) are skipped. Each weight row
 * is loaded once per tile, each input value broadcast once.
 */
#define STEM_ACC 24

static ALWAYS_INLINE void stem_tile(float *restrict o, int cout, const float *const rows[3],
                                    int x, int kx0, int kx1, const float *restrict w,
                                    const float *restrict bias, int relu, int co, const int np,
                                    const int nv)
{
    __mmask16 m[4];
    __m512 acc[STEM_ACC];
#pragma GCC unroll 4
    for (int v = 0; v < nv; v++) {
        m[v] = lanes(cout - co - 16 * v);
        const __m512 b = _mm512_maskz_loadu_ps(m[v], bias + co + 16 * v);
#pragma GCC unroll 24
        for (int j = 0; j < np; j++)
            acc[j * nv + v] = b;
    }
    for (int ky = 0; ky < 3; ky++) {
        if (!rows[ky])
            continue;
        for (int kx = kx0; kx < kx1; kx++) {
            const float *p = rows[ky] + (ptrdiff_t)(2 * x - 1 + kx) * 3;
            for (int ci = 0; ci < 3; ci++) {
                const float *wr = w + (size_t)((ky * 3 + kx) * 3 + ci) * cout + co;
                __m512 wv[4];
#pragma GCC unroll 4
                for (int v = 0; v < nv; v++)
                    wv[v] = _mm512_maskz_loadu_ps(m[v], wr + 16 * v);
#pragma GCC unroll 24
                for (int j = 0; j < np; j++) {
                    const __m512 a = _mm512_set1_ps(p[6 * j + ci]);
#pragma GCC unroll 4
                    for (int v = 0; v < nv; v++)
                        acc[j * nv + v] = _mm512_fmadd_ps(a, wv[v], acc[j * nv + v]);
                }
            }
        }
    }
#pragma GCC unroll 24
    for (int j = 0; j < np; j++) {
        float *oj = o + (size_t)(x + j) * cout + co;
#pragma GCC unroll 4
        for (int v = 0; v < nv; v++)
            _mm512_mask_storeu_ps(oj + 16 * v, m[v], activate(acc[j * nv + v], relu));
    }
}

/* One pixel, nv at run time: borders and the end of a row (kept out of line, see
 * pw_tile_rest). Same sequence per element as the tiles. */
static void __attribute__((noinline))
stem_px(float *restrict o, int cout, const float *const rows[3], int x, int kx0, int kx1,
        const float *restrict w, const float *restrict bias, int relu, int co, int nv)
{
    for (int v = 0; v < nv; v++) {
        const __mmask16 m = lanes(cout - co - 16 * v);
        __m512 acc = _mm512_maskz_loadu_ps(m, bias + co + 16 * v);
        for (int ky = 0; ky < 3; ky++) {
            if (!rows[ky])
                continue;
            for (int kx = kx0; kx < kx1; kx++) {
                const float *p = rows[ky] + (ptrdiff_t)(2 * x - 1 + kx) * 3;
                for (int ci = 0; ci < 3; ci++)
                    acc = _mm512_fmadd_ps(
                        _mm512_set1_ps(p[ci]),
                        _mm512_maskz_loadu_ps(m, w + (size_t)((ky * 3 + kx) * 3 + ci) * cout +
                                                     co + 16 * v),
                        acc);
            }
        }
        _mm512_mask_storeu_ps(o + (size_t)x * cout + co + 16 * v, m, activate(acc, relu));
    }
}

/* One output row for channels [co, co + 16 nv): borders, full tiles of NP pixels, rest. */
#define STEM_ROW(NP, NV)                                                                   \
    do {                                                                                   \
        for (int x = 0; x < x_lo; x++)                                                     \
            stem_px(orow, cout, rows, x, 1, iw > 1 ? 3 : 2, weight, bias, relu, co, NV);   \
        int x = x_lo;                                                                      \
        for (; x + (NP) <= x_hi; x += (NP))                                                \
            stem_tile(orow, cout, rows, x, 0, 3, weight, bias, relu, co, NP, NV);          \
        for (; x < x_hi; x++)                                                              \
            stem_px(orow, cout, rows, x, 0, 3, weight, bias, relu, co, NV);                \
        for (x = x_hi; x < ow; x++) {                                                      \
            const int kx1 = 2 * x + 1 > iw - 1 ? iw - (2 * x - 1) : 3;                     \
            stem_px(orow, cout, rows, x, 0, kx1, weight, bias, relu, co, NV);              \
        }                                                                                  \
    } while (0)

decl_stem3x3_fn(mo_stem3x3_avx512)
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
        /* channel groups of 64 (4 zmm x 6 pixels), then what is left: 48 (3 x 8), 32
         * (2 x 12), 16 (1 x 24 would be too many live values: 1 x 16) */
        int co = 0;
        for (; cout - co > 48; co += 64)
            STEM_ROW(6, 4);
        if (cout - co > 32)
            STEM_ROW(8, 3);
        else if (cout - co > 16)
            STEM_ROW(12, 2);
        else if (cout - co > 0)
            STEM_ROW(16, 1);
    }
}
