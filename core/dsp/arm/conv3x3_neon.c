/*
 * Dense 3x3 convolution, AArch64 AdvSIMD (contract: decl_conv3x3_fn in mo_internal/conv.h;
 * the C reference in ../conv3x3.c). The scheme of x86/conv3x3_avx2.c (read its comment):
 * per tap, the rectangle of output pixels where it reads the image, rows in L2-sized
 * blocks, input channels in slices of C3_KC, 16-channel panels, rows cut into tiles of
 * equal size. A register tile is C3_MR (6) pixels x 16 output channels = 24 accumulators
 * (4 per pixel), 6 registers holding 4 input channels of each pixel, and the weights
 * loaded a quarter row at a time: 4 input channels per step through the lane-indexed FMA
 * (vfmaq_laneq_f32), the rest one at a time. Each element gets one FMA per input channel
 * in order, whichever the step, so the bits do not depend on the tile or the split.
 */
#include <arm_neon.h>
#include <stdint.h>
#include <string.h>

#include "conv_arm.h"

#define ALWAYS_INLINE inline __attribute__((always_inline))

#define C3_MR 6
#define C3_KC 256
#define C3_BLOCK_BYTES (96 * 1024)

/* One input channel (lane L of x[]) onto the m x 16 tile. */
#define C3_STEP(L)                                                                   \
    do {                                                                             \
        const float *restrict wl = w + (L) * 16;                                     \
        _Pragma("GCC unroll 4") for (int j = 0; j < 4; j++) {                        \
            const float32x4_t wv = vld1q_f32(wl + 4 * j);                            \
            _Pragma("GCC unroll 6") for (int i = 0; i < m; i++) acc[i][j] =          \
                vfmaq_laneq_f32(acc[i][j], wv, x[i], (L));                           \
        }                                                                            \
    } while (0)

/*
 * m pixels (dst ldd floats apart, src lds apart) x one panel of 16 output channels (nc
 * of them stored), input channels [k0, k1): acc = dst; acc += src . w; dst = acc.
 */
static ALWAYS_INLINE void c3_tile(float *restrict dst, size_t ldd, const float *restrict src,
                                  size_t lds, int k0, int k1, const float *restrict wp,
                                  int nc, const int m)
{
    const int partial = nc < 16;
    float32x4_t acc[C3_MR][4];
#pragma GCC unroll 6
    for (int i = 0; i < m; i++) {
        if (partial) {
            float t[16] = {0};
            memcpy(t, dst + i * ldd, (size_t)nc * sizeof(float));
            for (int j = 0; j < 4; j++)
                acc[i][j] = vld1q_f32(t + 4 * j);
        } else {
            for (int j = 0; j < 4; j++)
                acc[i][j] = vld1q_f32(dst + i * ldd + 4 * j);
        }
    }
    const float *restrict a = src + k0;
    const float *restrict w = wp + (size_t)k0 * 16;
    int k = k0;
    for (; k + 4 <= k1; k += 4, a += 4, w += 64) {
        float32x4_t x[C3_MR];
#pragma GCC unroll 6
        for (int i = 0; i < m; i++)
            x[i] = vld1q_f32(a + i * lds);
        C3_STEP(0);
        C3_STEP(1);
        C3_STEP(2);
        C3_STEP(3);
    }
    for (; k < k1; k++, a++, w += 16) {
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
        if (partial) {
            float t[16];
            for (int j = 0; j < 4; j++)
                vst1q_f32(t + 4 * j, acc[i][j]);
            memcpy(dst + i * ldd, t, (size_t)nc * sizeof(float));
        } else {
            for (int j = 0; j < 4; j++)
                vst1q_f32(dst + i * ldd + 4 * j, acc[i][j]);
        }
    }
}

/* A run of n output pixels of one row, cut into tiles of equal size (+-1, at most C3_MR). */
static void c3_row(float *dst, size_t ldd, const float *src, size_t lds, int n, int k0,
                   int k1, const float *wp, int nc)
{
    const int nt = (n + C3_MR - 1) / C3_MR, base = n / nt, big = n % nt;
    for (int t = 0; t < nt; t++) {
        const int m = base + (t < big);
        switch (m) {
        case 6: c3_tile(dst, ldd, src, lds, k0, k1, wp, nc, 6); break;
        case 5: c3_tile(dst, ldd, src, lds, k0, k1, wp, nc, 5); break;
        case 4: c3_tile(dst, ldd, src, lds, k0, k1, wp, nc, 4); break;
        case 3: c3_tile(dst, ldd, src, lds, k0, k1, wp, nc, 3); break;
        case 2: c3_tile(dst, ldd, src, lds, k0, k1, wp, nc, 2); break;
        default: c3_tile(dst, ldd, src, lds, k0, k1, wp, nc, 1); break;
        }
        dst += (size_t)m * ldd;
        src += (size_t)m * lds;
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
    for (int y = y0; y < y1; y++)
        for (int x = 0; x < ow; x++) {
            float *o = dst + (ptrdiff_t)y * dst_stride + (ptrdiff_t)x * dst_pixel;
            int co = 0;
            for (; co < cout; co++) {
                float v = o[co] > 0.0f ? o[co] : 0.0f;
                if (relu == MO_ACT_RELU6)
                    v = v < 6.0f ? v : 6.0f;
                o[co] = v;
            }
        }
}

decl_conv3x3_fn(mo_conv3x3_neon)
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
                for (int pj = 0; pj < np; pj++) {
                    const int co = pj * 16, nc = cout - co < 16 ? cout - co : 16;
                    const float *wp = wt + (size_t)pj * (size_t)cin * 16;
                    for (int y = r0; y < r1; y++)
                        c3_row(dst + (ptrdiff_t)y * dst_stride + (ptrdiff_t)xa * dst_pixel + co,
                               ldd,
                               src + ((ptrdiff_t)y * stride + dy) * src_stride +
                                   ((ptrdiff_t)xa * stride + dx) * cin,
                               lds, n, k0, k1, wp, nc);
                }
            }
        }
    }
    if (relu)
        c3_act(dst, dst_stride, dst_pixel, ow, cout, relu, y0, y1);
}
