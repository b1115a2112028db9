/*
 * Dense 3x3 convolution, AVX2 + FMA (contract: decl_conv3x3_fn in mo_internal/conv.h; the
 * C reference in ../conv3x3.c). Built with -mavx2 -mfma.
 *
 * An implicit GEMM: the output is M = pixels by N = cout, the reduction K = (valid taps) x
 * cin, and the input is read in place (no im2col copy). For each tap, the output pixels
 * where it reads the image form a rectangle (rows x columns); padded taps and padded
 * borders are never computed. A register tile is C3_MR (6) consecutive output pixels of
 * one row x 16 output channels (12 accumulators, 2 weight vectors, 1 broadcast input);
 * consecutive pixels read input pixels `stride` apart, so the tile is a pointwise GEMM tile
 * with an input pixel stride of stride * cin. A row of the rectangle is cut into
 * ceil(n / 6) tiles of equal size (+-1), so no tile is left with 1 or 2 pixels whose
 * FMA chains would wait on latency.
 *
 * Cache blocking (per tap): input channels in slices of C3_KC (the panel slice, 16 KiB,
 * stays in L1 while every tile of a block passes over it), rows of the rectangle in blocks
 * whose input slice stays in L2 while the 16-channel panels pass over it; the weights of
 * a tap are thus read once per block, not once per row.
 *
 * Narrow inputs (cin <= C3_KC, the head's 3x3 conv): no slicing is needed, so the tile
 * keeps its accumulators over all its valid taps (rows cut where a tap starts or stops
 * reading the image), the weights of a panel (9 x cin x 16 floats) staying in L2: the same
 * FMAs in the same order, without the stores and loads between taps (c3_narrow).
 *
 * Order of the sums: each element starts from the bias (written into dst first) or the old
 * dst value, then gets its valid taps in order ky * 3 + kx, each in input-channel slices
 * in order, one FMA per input channel; partial sums cross slices and taps through dst
 * (exact float stores and loads). That depends on (tap, cin) only, never on the tile, the
 * block or the rows [y0, y1) of the call: bit-identical results for any split.
 */
#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#include "conv_x86.h"

#define ALWAYS_INLINE inline __attribute__((always_inline))

#define C3_MR 6
#define C3_KC 256
#define C3_BLOCK_BYTES (96 * 1024)

static const int32_t c3_lane[16] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};

static ALWAYS_INLINE __m256i c3_lanes_below(int n, int off)
{
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n),
                              _mm256_loadu_si256((const __m256i *)(c3_lane + off)));
}

/*
 * m pixels (dst ldd floats apart, src lds apart) x one panel of 16 output channels (nc of
 * them stored): acc = dst; then the taps [0, ntap) one after the other (input offsets soff
 * from each pixel, weight panels wt), each over cin input channels, one FMA per channel;
 * dst = acc. Wide inputs call it per tap and input-channel slice (ntap 1, src and wt moved
 * to the slice); narrow ones (cin <= C3_KC) with all the valid taps of the tile, the whole
 * reduction in registers: the same FMAs in the same order either way.
 */
static ALWAYS_INLINE void c3_tile_taps(float *restrict dst, size_t ldd,
                                       const float *restrict src, size_t lds, int cin,
                                       const ptrdiff_t *soff, const float *const *wt,
                                       int ntap, int nc, const int m)
{
    const int partial = nc < 16;
    const __m256i m0 = c3_lanes_below(nc, 0), m1 = c3_lanes_below(nc, 8);
    __m256 acc[C3_MR][2];
#pragma GCC unroll 6
    for (int i = 0; i < m; i++) {
        if (partial) {
            acc[i][0] = _mm256_maskload_ps(dst + i * ldd, m0);
            acc[i][1] = _mm256_maskload_ps(dst + i * ldd + 8, m1);
        } else {
            acc[i][0] = _mm256_loadu_ps(dst + i * ldd);
            acc[i][1] = _mm256_loadu_ps(dst + i * ldd + 8);
        }
    }
    for (int t = 0; t < ntap; t++) {
        const float *restrict a = src + soff[t];
        const float *restrict w = wt[t];
        for (int k = 0; k < cin; k++, a++, w += 16) {
            const __m256 w0 = _mm256_loadu_ps(w), w1 = _mm256_loadu_ps(w + 8);
#pragma GCC unroll 6
            for (int i = 0; i < m; i++) {
                const __m256 x = _mm256_broadcast_ss(a + i * lds);
                acc[i][0] = _mm256_fmadd_ps(x, w0, acc[i][0]);
                acc[i][1] = _mm256_fmadd_ps(x, w1, acc[i][1]);
            }
        }
    }
#pragma GCC unroll 6
    for (int i = 0; i < m; i++) {
        if (partial) {
            _mm256_maskstore_ps(dst + i * ldd, m0, acc[i][0]);
            _mm256_maskstore_ps(dst + i * ldd + 8, m1, acc[i][1]);
        } else {
            _mm256_storeu_ps(dst + i * ldd, acc[i][0]);
            _mm256_storeu_ps(dst + i * ldd + 8, acc[i][1]);
        }
    }
}

static void c3_row_taps(float *dst, size_t ldd, const float *src, size_t lds, int n, int cin,
                        const ptrdiff_t *soff, const float *const *wt, int ntap, int nc)
{
    const int nt = (n + C3_MR - 1) / C3_MR, base = n / nt, big = n % nt;
    for (int t = 0; t < nt; t++) {
        const int m = base + (t < big);
        switch (m) {
        case 6: c3_tile_taps(dst, ldd, src, lds, cin, soff, wt, ntap, nc, 6); break;
        case 5: c3_tile_taps(dst, ldd, src, lds, cin, soff, wt, ntap, nc, 5); break;
        case 4: c3_tile_taps(dst, ldd, src, lds, cin, soff, wt, ntap, nc, 4); break;
        case 3: c3_tile_taps(dst, ldd, src, lds, cin, soff, wt, ntap, nc, 3); break;
        case 2: c3_tile_taps(dst, ldd, src, lds, cin, soff, wt, ntap, nc, 2); break;
        default: c3_tile_taps(dst, ldd, src, lds, cin, soff, wt, ntap, nc, 1); break;
        }
        dst += (size_t)m * ldd;
        src += (size_t)m * lds;
    }
}

/*
 * cin <= C3_KC: per 16-channel panel (its 9 taps, 9 x cin x 16 floats, stay in L2), per
 * output row, the row cut where a tap starts or stops reading the image (the column
 * ranges of kx = 0 and kx = 2), each run with its list of valid taps in order.
 */
static void c3_narrow(float *dst, ptrdiff_t dst_stride, ptrdiff_t dst_pixel, const float *src,
                      ptrdiff_t src_stride, int ih, int iw, int cin, int cout, int stride,
                      int dil, const float *weight, int y0, int y1)
{
    const int ow = MO_CONV_OUT(iw, stride);
    const size_t tap = mo_pw_packed_size(cin, cout);
    const int np = (cout + 15) / 16;
    const size_t lds = (size_t)stride * (size_t)cin;
    int lo[3], hi[3];
    for (int kx = 0; kx < 3; kx++)
        mo_conv3x3_range(iw, stride, (kx - 1) * dil, &lo[kx], &hi[kx]);
    /* column cuts, sorted */
    int cut[6] = {0, lo[0], hi[0], lo[2], hi[2], ow}, nct = 6;
    for (int i = 1; i < nct; i++)
        for (int j = i; j > 0 && cut[j - 1] > cut[j]; j--) {
            const int tmp = cut[j];
            cut[j] = cut[j - 1];
            cut[j - 1] = tmp;
        }
    for (int pj = 0; pj < np; pj++) {
        const int co = pj * 16, nc = cout - co < 16 ? cout - co : 16;
        for (int y = y0; y < y1; y++) {
            int kyv[3], nky = 0;
            for (int ky = 0; ky < 3; ky++) {
                const int iy = y * stride + (ky - 1) * dil;
                if (iy >= 0 && iy < ih)
                    kyv[nky++] = ky;
            }
            for (int c = 0; c + 1 < nct; c++) {
                const int xa = cut[c], xb = cut[c + 1];
                if (xa >= xb)
                    continue;
                ptrdiff_t soff[9];
                const float *wt[9];
                int ntap = 0;
                for (int i = 0; i < nky; i++)
                    for (int kx = 0; kx < 3; kx++) {
                        if (xa < lo[kx] || xb > hi[kx])
                            continue; /* constant over [xa, xb): the cuts include lo, hi */
                        const int t = kyv[i] * 3 + kx;
                        soff[ntap] = (ptrdiff_t)(kyv[i] - 1) * dil * src_stride +
                                     (ptrdiff_t)(kx - 1) * dil * cin;
                        wt[ntap] = weight + (size_t)t * tap + (size_t)pj * (size_t)cin * 16;
                        ntap++;
                    }
                if (!ntap)
                    continue;
                c3_row_taps(dst + (ptrdiff_t)y * dst_stride + (ptrdiff_t)xa * dst_pixel + co,
                            (size_t)dst_pixel,
                            src + (ptrdiff_t)y * stride * src_stride +
                                (ptrdiff_t)xa * stride * cin,
                            lds, xb - xa, cin, soff, wt, ntap, nc);
            }
        }
    }
}

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
    const __m256 zero = _mm256_setzero_ps(), six = _mm256_set1_ps(6.0f);
    for (int y = y0; y < y1; y++)
        for (int x = 0; x < ow; x++) {
            float *o = dst + (ptrdiff_t)y * dst_stride + (ptrdiff_t)x * dst_pixel;
            int co = 0;
            for (; co + 8 <= cout; co += 8) {
                __m256 v = _mm256_max_ps(_mm256_loadu_ps(o + co), zero);
                if (relu == MO_ACT_RELU6)
                    v = _mm256_min_ps(v, six);
                _mm256_storeu_ps(o + co, v);
            }
            for (; co < cout; co++) {
                float v = o[co] > 0.0f ? o[co] : 0.0f;
                if (relu == MO_ACT_RELU6)
                    v = v < 6.0f ? v : 6.0f;
                o[co] = v;
            }
        }
}

decl_conv3x3_fn(mo_conv3x3_avx2)
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
    if (cin <= C3_KC) {
        c3_narrow(dst, dst_stride, dst_pixel, src, src_stride, ih, iw, cin, cout, stride, dil,
                  weight, y0, y1);
        if (relu)
            c3_act(dst, dst_stride, dst_pixel, ow, cout, relu, y0, y1);
        return;
    }
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
                for (int pj = 0; pj < np; pj++) {
                    const int co = pj * 16, nc = cout - co < 16 ? cout - co : 16;
                    const float *wp = wt + (size_t)pj * (size_t)cin * 16;
                    /* one tap, input channels [k0, k1): the taps' tile with one tap */
                    const ptrdiff_t here = 0;
                    const float *wk = wp + (size_t)k0 * 16;
                    for (int y = r0; y < r1; y++)
                        c3_row_taps(dst + (ptrdiff_t)y * dst_stride +
                                        (ptrdiff_t)xa * dst_pixel + co,
                                    ldd,
                                    src + ((ptrdiff_t)y * stride + dy) * src_stride +
                                        ((ptrdiff_t)xa * stride + dx) * cin + k0,
                                    lds, n, k1 - k0, &here, &wk, 1, nc);
                }
            }
        }
    }
    if (relu)
        c3_act(dst, dst_stride, dst_pixel, ow, cout, relu, y0, y1);
}
