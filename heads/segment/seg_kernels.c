/*
 * Kernels of the segmentation head (contracts in seg_internal.h): an accumulating GEMM
 * over NHWC rows with packed weights, and a dense 3x3 convolution with dilation as one
 * such GEMM per tap, run only where the tap reads the image.
 *
 * Portable C written for the compiler's vectorizer (inner loops over SEG_NR contiguous
 * output channels, restrict pointers). On x86-64 GCC also builds an AVX2 clone of the
 * GEMM micro-kernel, picked at load time by the CPU (target_clones). Without FMA
 * contraction (ISO C mode) both give the same bits: the clone only widens the loop
 * over output channels, and every output still sums its products in the same order.
 */
#include "seg_internal.h"

#include <string.h>

#define SEG_MR 4           /* pixels per micro-tile */
#define SEG_KC 256         /* input channels per slice: a panel slice is 16 KiB */
#define SEG_MB 64          /* pixels per block: a block's input slice is 64 KiB */

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__has_attribute)
#  if __has_attribute(target_clones)
#    define SEG_CLONES __attribute__((target_clones("avx2", "default")))
#  endif
#endif
#ifndef SEG_CLONES
#  define SEG_CLONES
#endif

size_t seg_packed_size(int k, int n)
{
    return (size_t)((n + SEG_NR - 1) / SEG_NR) * SEG_NR * (size_t)k;
}

void seg_pack(float *dst, const float *w, int k, int n, ptrdiff_t sn, ptrdiff_t sk)
{
    const int np = (n + SEG_NR - 1) / SEG_NR;
    for (int p = 0; p < np; p++) {
        float *panel = dst + (size_t)p * k * SEG_NR;
        for (int i = 0; i < k; i++)
            for (int jj = 0; jj < SEG_NR; jj++) {
                const int j = p * SEG_NR + jj;
                panel[(size_t)i * SEG_NR + jj] = j < n ? w[j * sn + i * sk] : 0.0f;
            }
    }
}

/* SEG_MR rows x SEG_NR columns of c += a[:, k0:k1] * panel[k0:k1, :]; nc columns kept. */
SEG_CLONES
static void tile_mr(float *restrict c, ptrdiff_t ldc, const float *a, ptrdiff_t lda, int k0,
                    int k1, const float *restrict b, int nc)
{
    float acc[SEG_MR][SEG_NR];
    for (int i = 0; i < SEG_MR; i++) {
        for (int j = 0; j < SEG_NR; j++)
            acc[i][j] = 0.0f;
        memcpy(acc[i], c + i * ldc, (size_t)nc * sizeof(float));
    }
    const float *a0 = a, *a1 = a + lda, *a2 = a + 2 * lda, *a3 = a + 3 * lda;
    for (int k = k0; k < k1; k++) {
        const float *restrict w = b + (size_t)k * SEG_NR;
        const float x0 = a0[k], x1 = a1[k], x2 = a2[k], x3 = a3[k];
        for (int j = 0; j < SEG_NR; j++) {
            acc[0][j] += x0 * w[j];
            acc[1][j] += x1 * w[j];
            acc[2][j] += x2 * w[j];
            acc[3][j] += x3 * w[j];
        }
    }
    for (int i = 0; i < SEG_MR; i++)
        memcpy(c + i * ldc, acc[i], (size_t)nc * sizeof(float));
}

/* One row. */
static void tile_1(float *restrict c, const float *a, int k0, int k1, const float *restrict b,
                   int nc)
{
    float acc[SEG_NR];
    for (int j = 0; j < SEG_NR; j++)
        acc[j] = 0.0f;
    memcpy(acc, c, (size_t)nc * sizeof(float));
    for (int k = k0; k < k1; k++) {
        const float *restrict w = b + (size_t)k * SEG_NR;
        const float x = a[k];
        for (int j = 0; j < SEG_NR; j++)
            acc[j] += x * w[j];
    }
    memcpy(c, acc, (size_t)nc * sizeof(float));
}

void seg_gemm_acc(float *c, ptrdiff_t ldc, const float *a, ptrdiff_t lda, size_t m, int k,
                  int n, const float *bp)
{
    const int np = (n + SEG_NR - 1) / SEG_NR;
    for (size_t i0 = 0; i0 < m; i0 += SEG_MB) {
        const size_t i1 = m - i0 < SEG_MB ? m : i0 + SEG_MB;
        for (int k0 = 0; k0 < k; k0 += SEG_KC) {
            const int k1 = k - k0 < SEG_KC ? k : k0 + SEG_KC;
            for (int p = 0; p < np; p++) {
                const float *b = bp + (size_t)p * k * SEG_NR;
                const int j0 = p * SEG_NR;
                const int nc = n - j0 < SEG_NR ? n - j0 : SEG_NR;
                size_t i = i0;
                for (; i + SEG_MR <= i1; i += SEG_MR)
                    tile_mr(c + (ptrdiff_t)i * ldc + j0, ldc, a + (ptrdiff_t)i * lda, lda, k0,
                            k1, b, nc);
                for (; i < i1; i++)
                    tile_1(c + (ptrdiff_t)i * ldc + j0, a + (ptrdiff_t)i * lda, k0, k1, b, nc);
            }
        }
    }
}

/* Range [lo, hi) of output positions o in 0..n-1 with 0 <= o + d < n. */
static void valid_range(int n, int d, int *lo, int *hi)
{
    *lo = d < 0 ? -d : 0;
    *hi = d > 0 ? n - d : n;
    if (*lo > n)
        *lo = n;
    if (*hi < *lo)
        *hi = *lo;
}

void seg_conv3x3_acc(float *dst, ptrdiff_t ldd, const float *src, ptrdiff_t src_row, int h,
                     int w, int cin, int cout, int rate, const float *bp9, int clip,
                     const float *zeros)
{
    const size_t tap_size = seg_packed_size(cin, cout);
    const int packed_rows = src_row == (ptrdiff_t)w * cin;
    for (int t = 0; t < 9; t++) {
        const int dy = (t / 3 - 1) * rate, dx = (t % 3 - 1) * rate;
        const float *bp = bp9 + (size_t)t * tap_size;
        int y0, y1, x0, x1;
        valid_range(h, dy, &y0, &y1);
        valid_range(w, dx, &x0, &x1);
        if (clip) {
            if (y0 == y1 || x0 == x1)
                continue; /* this tap reads only padding */
            if (x0 == 0 && x1 == w && packed_rows) {
                /* whole rows: one GEMM over the band of valid rows */
                seg_gemm_acc(dst + (ptrdiff_t)y0 * w * ldd, ldd,
                             src + (ptrdiff_t)(y0 + dy) * src_row, cin,
                             (size_t)(y1 - y0) * (size_t)w, cin, cout, bp);
                continue;
            }
            for (int y = y0; y < y1; y++)
                seg_gemm_acc(dst + ((ptrdiff_t)y * w + x0) * ldd, ldd,
                             src + (ptrdiff_t)(y + dy) * src_row + (ptrdiff_t)(x0 + dx) * cin,
                             cin, (size_t)(x1 - x0), cin, cout, bp);
            continue;
        }
        for (int y = 0; y < h; y++) {
            float *drow = dst + (ptrdiff_t)y * w * ldd;
            if (y < y0 || y >= y1) {
                seg_gemm_acc(drow, ldd, zeros, 0, (size_t)w, cin, cout, bp);
                continue;
            }
            if (x0 > 0)
                seg_gemm_acc(drow, ldd, zeros, 0, (size_t)x0, cin, cout, bp);
            if (x1 > x0)
                seg_gemm_acc(drow + (ptrdiff_t)x0 * ldd, ldd,
                             src + (ptrdiff_t)(y + dy) * src_row + (ptrdiff_t)(x0 + dx) * cin,
                             cin, (size_t)(x1 - x0), cin, cout, bp);
            if (x1 < w)
                seg_gemm_acc(drow + (ptrdiff_t)x1 * ldd, ldd, zeros, 0, (size_t)(w - x1), cin,
                             cout, bp);
        }
    }
}

uint64_t seg_conv3x3_macs(int h, int w, int cin, int cout, int rate, int mode)
{
    uint64_t pix = 0;
    for (int t = 0; t < 9; t++) {
        int y0, y1, x0, x1;
        valid_range(h, (t / 3 - 1) * rate, &y0, &y1);
        valid_range(w, (t % 3 - 1) * rate, &x0, &x1);
        const uint64_t n = (uint64_t)(y1 - y0) * (uint64_t)(x1 - x0);
        if (mode == SEG_TAPS_ALL || (mode == SEG_TAPS_WHOLE && n))
            pix += (uint64_t)h * (uint64_t)w;
        else if (mode == SEG_TAPS_CLIP)
            pix += n;
    }
    return pix * (uint64_t)cin * (uint64_t)cout;
}
