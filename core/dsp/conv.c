/*
 * Portable C reference of the backbone kernels (see mo_internal/conv.h for the contracts).
 *
 * Written so that a compiler vectorizes them at -O3 without intrinsics: every inner
 * loop runs over contiguous channels with restrict pointers, and borders (padding) are
 * resolved once per pixel or per row, never per element.
 */
#include "mo_internal/conv.h"

#include <math.h>
#include <string.h>

#if defined(MO_HAVE_AVX2)
#include "x86/conv_x86.h" /* built with -mavx2 -mfma: core/dsp/x86/meson.build */
#endif
#if defined(MO_HAVE_NEON)
#include "arm/conv_arm.h" /* AArch64 AdvSIMD: core/dsp/arm/meson.build */
#endif

/* ---------------------------------------------------------------- packing */

void mo_stem_pack(float *dst, const float *w, int cout)
{
    /* w[co][ci][ky][kx] -> dst[(ky*3 + kx)*3 + ci][co] */
    for (int co = 0; co < cout; co++)
        for (int ci = 0; ci < 3; ci++)
            for (int t = 0; t < 9; t++)
                dst[(size_t)(t * 3 + ci) * cout + co] = w[((size_t)co * 3 + ci) * 9 + t];
}

void mo_dw_pack(float *dst, const float *w, int c)
{
    for (int ch = 0; ch < c; ch++)
        for (int t = 0; t < 9; t++)
            dst[(size_t)t * c + ch] = w[(size_t)ch * 9 + t];
}

size_t mo_pw_packed_size(int cin, int cout)
{
    return (size_t)((cout + MO_PW_NR - 1) / MO_PW_NR) * MO_PW_NR * (size_t)cin;
}

void mo_pw_pack_strided(float *dst, const float *w, int cin, int cout, ptrdiff_t sn,
                        ptrdiff_t sk)
{
    const int np = (cout + MO_PW_NR - 1) / MO_PW_NR;
    for (int p = 0; p < np; p++) {
        float *panel = dst + (size_t)p * cin * MO_PW_NR;
        for (int ci = 0; ci < cin; ci++)
            for (int j = 0; j < MO_PW_NR; j++) {
                const int co = p * MO_PW_NR + j;
                panel[(size_t)ci * MO_PW_NR + j] = co < cout ? w[co * sn + ci * sk] : 0.0f;
            }
    }
}

void mo_pw_pack(float *dst, const float *w, int cin, int cout)
{
    mo_pw_pack_strided(dst, w, cin, cout, cin, 1);
}

/* ------------------------------------------------------------------- stem */

/* One output pixel of the stem: taps kx in [kx0, kx1) of the rows that exist. */
static inline void stem_px(float *restrict o, const float *const rows[3], int ix, int kx0,
                           int kx1, int cout, const float *restrict w,
                           const float *restrict bias, int relu)
{
    for (int co = 0; co < cout; co++)
        o[co] = bias[co];
    for (int ky = 0; ky < 3; ky++) {
        if (!rows[ky])
            continue;
        for (int kx = kx0; kx < kx1; kx++) {
            const float *p = rows[ky] + (ptrdiff_t)(ix + kx) * 3;
            const float *restrict w0 = w + (size_t)((ky * 3 + kx) * 3) * cout;
            const float *restrict w1 = w0 + cout, *restrict w2 = w1 + cout;
            const float a0 = p[0], a1 = p[1], a2 = p[2];
            for (int co = 0; co < cout; co++)
                o[co] += a0 * w0[co] + a1 * w1[co] + a2 * w2[co];
        }
    }
    if (relu)
        for (int co = 0; co < cout; co++)
            o[co] = o[co] > 0.0f ? o[co] : 0.0f;
    if (relu == MO_ACT_RELU6)
        for (int co = 0; co < cout; co++)
            o[co] = o[co] < 6.0f ? o[co] : 6.0f;
}

decl_stem3x3_fn(mo_stem3x3_c)
{
    const int ow = MO_CONV_OUT(iw, 2);
    /* interior columns: input columns 2x-1 .. 2x+1 all inside */
    const int x_lo = 1 < ow ? 1 : ow;
    int x_hi = (iw - 2) / 2 + 1; /* last x with 2x+1 <= iw-1, plus one */
    if (iw < 2)
        x_hi = 0;
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
        for (int x = 0; x < ow; x++) {
            if (x == x_lo && x < x_hi) {
                for (; x < x_hi; x++)
                    stem_px(orow + (size_t)x * cout, rows, 2 * x - 1, 0, 3, cout, weight,
                            bias, relu);
                if (x >= ow)
                    break;
            }
            const int ix = 2 * x - 1;
            const int kx0 = ix < 0 ? -ix : 0;
            const int kx1 = ix + 3 > iw ? iw - ix : 3;
            stem_px(orow + (size_t)x * cout, rows, ix, kx0, kx1, cout, weight, bias, relu);
        }
    }
}

/* -------------------------------------------------------------- depthwise */

/* Accumulate the taps kx in [kx0, kx1) of one input row into o. */
static inline void dw_row_taps(float *restrict o, const float *r, ptrdiff_t ix, int d, int kx0,
                               int kx1, int c, const float *restrict wrow)
{
    if (kx0 == 0 && kx1 == 3) {
        const float *restrict p0 = r + (ix - d) * c;
        const float *restrict p1 = r + ix * c;
        const float *restrict p2 = r + (ix + d) * c;
        const float *restrict w0 = wrow, *restrict w1 = wrow + c, *restrict w2 = wrow + 2 * c;
        for (int ch = 0; ch < c; ch++)
            o[ch] += w0[ch] * p0[ch] + w1[ch] * p1[ch] + w2[ch] * p2[ch];
        return;
    }
    for (int kx = kx0; kx < kx1; kx++) {
        const float *restrict p = r + (ix + (ptrdiff_t)(kx - 1) * d) * c;
        const float *restrict w = wrow + (size_t)kx * c;
        for (int ch = 0; ch < c; ch++)
            o[ch] += w[ch] * p[ch];
    }
}

static inline void dw_px(float *restrict o, const float *const rows[3], ptrdiff_t ix, int d,
                         int kx0, int kx1, int c, const float *restrict w,
                         const float *restrict bias, int relu)
{
    memcpy(o, bias, (size_t)c * sizeof(*o));
    for (int ky = 0; ky < 3; ky++)
        if (rows[ky])
            dw_row_taps(o, rows[ky], ix, d, kx0, kx1, c, w + (size_t)ky * 3 * c);
    if (relu)
        for (int ch = 0; ch < c; ch++)
            o[ch] = o[ch] > 0.0f ? o[ch] : 0.0f;
    if (relu == MO_ACT_RELU6)
        for (int ch = 0; ch < c; ch++)
            o[ch] = o[ch] < 6.0f ? o[ch] : 6.0f;
}

decl_dw3x3_fn(mo_dw3x3_c)
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
        for (int x = 0; x < ow; x++) {
            if (x == x_lo && x < x_hi) {
                for (; x < x_hi; x++)
                    dw_px(orow + (size_t)x * c, rows, (ptrdiff_t)x * stride, dil, 0, 3, c,
                          weight, bias, relu);
                if (x >= ow)
                    break;
            }
            const int ix = x * stride;
            int kx0 = 0, kx1 = 3;
            if (ix - dil < 0)
                kx0 = 1;
            if (ix + dil > iw - 1)
                kx1 = 2;
            dw_px(orow + (size_t)x * c, rows, ix, dil, kx0, kx1, c, weight, bias, relu);
        }
    }
}

/* -------------------------------------------------------------- pointwise */

/*
 * Blocking: MO_PW_NR output channels (one panel) x PW_MR pixels of accumulators stay
 * in registers while k runs over a slice of PW_KC input channels; the panel slice
 * (PW_KC x MO_PW_NR floats, 16 KiB) stays in L1 while every pixel of a block of pixels
 * passes over it, and the block's input slice stays in L2.
 */
#define PW_MR 4
#define PW_KC 256
#define PW_BLOCK_BYTES (96 * 1024)

static inline void pw_tile_full(float *restrict dst, ptrdiff_t ldd, const float *restrict src,
                                ptrdiff_t lds, int k0, int k1, const float *restrict wp,
                                const float *restrict bias, int nc, int last, int relu)
{
    float acc[PW_MR][MO_PW_NR];
    if (bias) {
        for (int i = 0; i < PW_MR; i++)
            for (int j = 0; j < MO_PW_NR; j++)
                acc[i][j] = j < nc ? bias[j] : 0.0f;
    } else {
        for (int i = 0; i < PW_MR; i++)
            for (int j = 0; j < MO_PW_NR; j++)
                acc[i][j] = j < nc ? dst[i * ldd + j] : 0.0f;
    }
    const float *s0 = src, *s1 = src + lds, *s2 = src + 2 * lds, *s3 = src + 3 * lds;
    for (int k = k0; k < k1; k++) {
        const float *restrict w = wp + (size_t)k * MO_PW_NR;
        const float a0 = s0[k], a1 = s1[k], a2 = s2[k], a3 = s3[k];
        for (int j = 0; j < MO_PW_NR; j++) {
            acc[0][j] += a0 * w[j];
            acc[1][j] += a1 * w[j];
            acc[2][j] += a2 * w[j];
            acc[3][j] += a3 * w[j];
        }
    }
    if (last && relu)
        for (int i = 0; i < PW_MR; i++)
            for (int j = 0; j < MO_PW_NR; j++)
                acc[i][j] = acc[i][j] > 0.0f ? acc[i][j] : 0.0f;
    if (last && relu == MO_ACT_RELU6)
        for (int i = 0; i < PW_MR; i++)
            for (int j = 0; j < MO_PW_NR; j++)
                acc[i][j] = acc[i][j] < 6.0f ? acc[i][j] : 6.0f;
    if (nc == MO_PW_NR) {
        for (int i = 0; i < PW_MR; i++)
            memcpy(dst + i * ldd, acc[i], sizeof(acc[i]));
    } else {
        for (int i = 0; i < PW_MR; i++)
            memcpy(dst + i * ldd, acc[i], (size_t)nc * sizeof(float));
    }
}

/* Remainder pixels, one at a time. */
static inline void pw_tile_1(float *restrict dst, const float *restrict src, int k0, int k1,
                             const float *restrict wp, const float *restrict bias, int nc,
                             int last, int relu)
{
    float acc[MO_PW_NR];
    for (int j = 0; j < MO_PW_NR; j++)
        acc[j] = j < nc ? (bias ? bias[j] : dst[j]) : 0.0f;
    for (int k = k0; k < k1; k++) {
        const float *restrict w = wp + (size_t)k * MO_PW_NR;
        const float a = src[k];
        for (int j = 0; j < MO_PW_NR; j++)
            acc[j] += a * w[j];
    }
    if (last && relu)
        for (int j = 0; j < MO_PW_NR; j++)
            acc[j] = acc[j] > 0.0f ? acc[j] : 0.0f;
    if (last && relu == MO_ACT_RELU6)
        for (int j = 0; j < MO_PW_NR; j++)
            acc[j] = acc[j] < 6.0f ? acc[j] : 6.0f;
    memcpy(dst, acc, (size_t)nc * sizeof(float));
}

/*
 * Both pointwise entry points: rows of dst ldd floats apart, of src lds apart (0: every
 * pixel reads the same row). bias NULL: the sums start from dst (the accumulating form).
 */
static void pw_run(float *dst, ptrdiff_t ldd, const float *src, ptrdiff_t lds, size_t n,
                   int cin, int cout, const float *weight, const float *bias, int relu)
{
    const int np = (cout + MO_PW_NR - 1) / MO_PW_NR;
    const int kc = cin < PW_KC ? cin : PW_KC;
    size_t mb = PW_BLOCK_BYTES / (sizeof(float) * (size_t)kc);
    mb = mb < PW_MR ? PW_MR : mb / PW_MR * PW_MR;

    for (size_t p0 = 0; p0 < n; p0 += mb) {
        const size_t pn = n - p0 < mb ? n - p0 : mb;
        for (int k0 = 0; k0 < cin; k0 += kc) {
            const int k1 = cin - k0 < kc ? cin : k0 + kc;
            const int first = k0 == 0, last = k1 == cin;
            for (int pj = 0; pj < np; pj++) {
                const float *wp = weight + (size_t)pj * cin * MO_PW_NR;
                const int co = pj * MO_PW_NR;
                const int nc = cout - co < MO_PW_NR ? cout - co : MO_PW_NR;
                const float *b = first && bias ? bias + co : NULL;
                size_t p = p0;
                for (; p + PW_MR <= p0 + pn; p += PW_MR)
                    pw_tile_full(dst + (ptrdiff_t)p * ldd + co, ldd, src + (ptrdiff_t)p * lds,
                                 lds, k0, k1, wp, b, nc, last, relu);
                for (; p < p0 + pn; p++)
                    pw_tile_1(dst + (ptrdiff_t)p * ldd + co, src + (ptrdiff_t)p * lds, k0, k1,
                              wp, b, nc, last, relu);
            }
        }
    }
}

decl_pw_fn(mo_pw_c)
{
    pw_run(dst, cout, src, cin, n, cin, cout, weight, bias, relu);
}

decl_pw_acc_fn(mo_pw_acc_c)
{
    pw_run(dst, dst_stride, src, src_stride, n, cin, cout, weight, NULL, MO_ACT_NONE);
}

/* ------------------------------------------------------------ SE and pool */

decl_gap_fn(mo_gap_c)
{
    for (int ch = 0; ch < c; ch++)
        dst[ch] = 0.0f;
    for (size_t p = 0; p < n; p++) {
        const float *restrict s = src + p * c;
        for (int ch = 0; ch < c; ch++)
            dst[ch] += s[ch];
    }
    const float inv = n ? 1.0f / (float)n : 0.0f;
    for (int ch = 0; ch < c; ch++)
        dst[ch] *= inv;
}

decl_se_fn(mo_se_c)
{
    float *m = tmp, *r = tmp + c;
    mo_gap_c(m, x, n, c);
    for (int j = 0; j < cr; j++) {
        const float *restrict w = rw + (size_t)j * c;
        float acc = rb[j];
        for (int ch = 0; ch < c; ch++)
            acc += w[ch] * m[ch];
        r[j] = acc > 0.0f ? acc : 0.0f;
    }
    for (int ch = 0; ch < c; ch++) {
        const float *restrict w = ew + (size_t)ch * cr;
        float acc = eb[ch];
        for (int j = 0; j < cr; j++)
            acc += w[j] * r[j];
        m[ch] = 1.0f / (1.0f + expf(-acc));
    }
    for (size_t p = 0; p < n; p++) {
        float *restrict v = x + p * c;
        for (int ch = 0; ch < c; ch++) {
            const float s = v[ch] * m[ch];
            v[ch] = s > 0.0f ? s : 0.0f;
        }
    }
}

/* --------------------------------------------------------------- dispatch */

void mo_conv_dsp_init(mo_conv_dsp *dsp, unsigned cpu_flags)
{
    dsp->stem3x3 = mo_stem3x3_c;
    dsp->dw3x3 = mo_dw3x3_c;
    dsp->pw = mo_pw_c;
    dsp->pw_acc = mo_pw_acc_c;
    dsp->se = mo_se_c;
    dsp->gap = mo_gap_c;
    mo_conv3x3_dsp_init(dsp, cpu_flags); /* dense 3x3: conv3x3.c */
    mo_ops_dsp_init(dsp, cpu_flags); /* head operators, core/dsp/ops.c */
    (void)cpu_flags;
#if defined(MO_HAVE_AVX2)
    if (!(cpu_flags & MO_CPU_AVX2))
        return;
    dsp->stem3x3 = mo_stem3x3_avx2;
    dsp->dw3x3 = mo_dw3x3_avx2;
    dsp->pw = mo_pw_avx2;
    dsp->pw_acc = mo_pw_acc_avx2;
    dsp->gap = mo_gap_avx2;
    dsp->se = mo_se_avx2;
#endif
#if defined(MO_HAVE_AVX512)
    if (!(cpu_flags & MO_CPU_AVX512))
        return;
    dsp->stem3x3 = mo_stem3x3_avx512;
    dsp->dw3x3 = mo_dw3x3_avx512;
    dsp->pw = mo_pw_avx512;
    dsp->pw_acc = mo_pw_acc_avx512;
#endif
#if defined(MO_HAVE_NEON)
    if (!(cpu_flags & MO_CPU_NEON))
        return;
    dsp->stem3x3 = mo_stem3x3_neon;
    dsp->dw3x3 = mo_dw3x3_neon;
    dsp->pw = mo_pw_neon;
    dsp->pw_acc = mo_pw_acc_neon;
    dsp->se = mo_se_neon;
    dsp->gap = mo_gap_neon;
#endif
}
