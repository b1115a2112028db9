/*
 * The head's second path for its dense 3x3 convolutions (contracts in seg_internal.h):
 * one accumulating pointwise product (::mo_pw_acc_fn, the table's, weights packed by
 * mo_conv3x3_pack(): one mo_pw_pack() layout per tap) per tap, clipped to where the tap
 * reads the image or over zero padding. The head runs the table's ::mo_conv3x3_fn
 * (aspp.c); this path is the unclipped one (clip = 0) that the tests and bench_segment
 * compare it with.
 */
#include "seg_internal.h"

#include <string.h>

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

void seg_conv3x3_acc(mo_pw_acc_fn *gemm, float *dst, ptrdiff_t ldd, const float *src,
                     ptrdiff_t src_row, int h, int w, int cin, int cout, int rate,
                     const float *bp9, int clip, const float *zeros)
{
    seg_conv3x3_acc_rows(gemm, dst, ldd, src, src_row, h, w, cin, cout, rate, bp9, clip, zeros,
                         0, h);
}

void seg_conv3x3_acc_rows(mo_pw_acc_fn *gemm, float *dst, ptrdiff_t ldd, const float *src,
                          ptrdiff_t src_row, int h, int w, int cin, int cout, int rate,
                          const float *bp9, int clip, const float *zeros, int ry0, int ry1)
{
    const size_t tap_size = mo_pw_packed_size(cin, cout);
    const int packed_rows = src_row == (ptrdiff_t)w * cin;
    for (int t = 0; t < 9; t++) {
        const int dy = (t / 3 - 1) * rate, dx = (t % 3 - 1) * rate;
        const float *bp = bp9 + (size_t)t * tap_size;
        int y0, y1, x0, x1;
        valid_range(h, dy, &y0, &y1);
        valid_range(w, dx, &x0, &x1);
        /* only the output rows [ry0, ry1) */
        if (y0 < ry0)
            y0 = ry0;
        if (y1 > ry1)
            y1 = ry1;
        if (y1 < y0)
            y1 = y0;
        if (clip) {
            if (y0 == y1 || x0 == x1)
                continue; /* this tap reads only padding */
            if (x0 == 0 && x1 == w && packed_rows) {
                /* whole rows: one GEMM over the band of valid rows */
                gemm(dst + (ptrdiff_t)y0 * w * ldd, ldd, src + (ptrdiff_t)(y0 + dy) * src_row,
                     cin, (size_t)(y1 - y0) * (size_t)w, cin, cout, bp);
                continue;
            }
            for (int y = y0; y < y1; y++)
                gemm(dst + ((ptrdiff_t)y * w + x0) * ldd, ldd,
                     src + (ptrdiff_t)(y + dy) * src_row + (ptrdiff_t)(x0 + dx) * cin, cin,
                     (size_t)(x1 - x0), cin, cout, bp);
            continue;
        }
        for (int y = ry0; y < ry1; y++) {
            float *drow = dst + (ptrdiff_t)y * w * ldd;
            if (y < y0 || y >= y1) {
                gemm(drow, ldd, zeros, 0, (size_t)w, cin, cout, bp);
                continue;
            }
            if (x0 > 0)
                gemm(drow, ldd, zeros, 0, (size_t)x0, cin, cout, bp);
            if (x1 > x0)
                gemm(drow + (ptrdiff_t)x0 * ldd, ldd,
                     src + (ptrdiff_t)(y + dy) * src_row + (ptrdiff_t)(x0 + dx) * cin, cin,
                     (size_t)(x1 - x0), cin, cout, bp);
            if (x1 < w)
                gemm(drow + (ptrdiff_t)x1 * ldd, ldd, zeros, 0, (size_t)(w - x1), cin, cout,
                     bp);
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
