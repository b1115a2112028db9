/*
 * Segmentation head unit tests (no PyTorch, no shared data):
 * - kernels: the accumulating GEMM (the backbone's pw_acc, C and SIMD, with the head's
 *   packing) and the dilated 3x3 conv against a naive double conv,
 *   on odd sizes and rates below, at and beyond the map size; skipping padded taps gives
 *   bit-identical results; the multiply-add count at 512x512; the dense 3x3 kernel of the
 *   table (stride 1 and 2, strided output) against the naive conv;
 * - upsampling + argmax against a naive implementation of torch's bilinear formula;
 * - the whole head (mo_seg_logits, mo_seg_run) on real backbone features against a naive
 *   double DeepLabHead with unfolded BatchNorm, for several rate sets;
 * - loading and bad input: head/backbone mismatches (channels, classes, variant, digest),
 *   rates of 0 or below, too many classes or rates, missing or stray tensors, bad
 *   BatchNorm, absurd sizes, small workspaces, NULL arguments.
 * Model files are built in memory (tests/backbone/modelgen.h) with the seg. tensors and
 * metadata added here.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mo/cpu.h"
#include "mo/segment.h"
#include "seg_internal.h"
#include "seggen.h"
#include "quick.h"

/* The test backbone: random fused s0, opened once. */
static mo_file *bb_file;
static mo_backbone *bb;

static int setup_backbone(void **state)
{
    (void)state;
    mg_model m;
    mg_build(&m, "s0", 1, "backbone.");
    uint8_t *buf;
    const size_t n = mg_serialize(&m, &buf);
    mg_free(&m);
    if (mo_file_open_memory(&bb_file, buf, n) || mo_backbone_open(&bb, bb_file, NULL))
        return -1;
    free(buf);
    return 0;
}

static int teardown_backbone(void **state)
{
    (void)state;
    mo_backbone_close(&bb);
    mo_file_close(&bb_file);
    return 0;
}

/* A head file: the tensors of `h`, metadata naming the test backbone, classes and rates,
 * with edits: `kv` pairs override (NULL value removes), `edit` may change the tensors. */
static mo_file *head_file(const head_spec *h, const char *const *kv, void (*edit)(mg_model *))
{
    mg_model m;
    memset(&m, 0, sizeof(m));
    add_head(&m, h);
    if (edit)
        edit(&m);
    char *classes = class_list(h->k), *rates = rate_list(h);
    const char *base[] = {"mo.variant", "s0", "mo.backbone_digest", mo_backbone_digest(bb),
                          "seg.classes", classes, "seg.rates", rates, "mo.backbone_form", NULL,
                          NULL};
    const char *all[64];
    int n = 0;
    for (int i = 0; base[i]; i += 2) {
        all[n++] = base[i];
        all[n++] = base[i + 1];
    }
    for (int i = 0; kv && kv[i]; i += 2) {
        all[n++] = kv[i];
        all[n++] = kv[i + 1];
    }
    all[n] = NULL;
    uint8_t *buf;
    const size_t size = serialize_with_meta(&m, "[\"seg\"]", all, &buf);
    mo_file *f = NULL;
    const int r = mo_file_open_memory(&f, buf, size);
    if (r)
        fail_msg("head file: %s (%s)", mo_strerror(r), mo_last_error());
    free(buf);
    free(classes);
    free(rates);
    mg_free(&m);
    return f;
}

static const head_spec small_head = {1024, 16, 12, 5, 3, {12, 24, 36}};

/* --------------------------------------------------------------- kernels */

static float *rand_buf(size_t n, float scale)
{
    float *p = malloc(sizeof(float) * (n ? n : 1));
    assert_non_null(p);
    for (size_t i = 0; i < n; i++)
        p[i] = frand() * scale;
    return p;
}

/* The kernels the head runs on: the C reference, and the best variant for this CPU. */
static void dsp_levels(mo_conv_dsp d[2])
{
    mo_conv_dsp_init(&d[0], 0);
    mo_conv_dsp_init(&d[1], mo_get_cpu_flags());
}

/* The accumulating pointwise kernel with weights packed by mo_pw_pack_strided(), strided rows. */
static void test_gemm(void **state)
{
    (void)state;
    static const int cases[][3] = {{1, 1, 1},   {3, 5, 7},     {4, 16, 16},  {5, 17, 33},
                                   {9, 300, 21}, {130, 257, 40}, {67, 513, 256}};
    mo_conv_dsp d[2];
    dsp_levels(d);
    for (size_t t = 0; t < sizeof(cases) / sizeof(cases[0]) * 4; t++) {
        const int m = cases[t / 4][0], k = cases[t / 4][1], n = cases[t / 4][2];
        const int zero_lda = t & 1, lvl = (t >> 1) & 1;
        const ptrdiff_t lda = zero_lda ? 0 : k + 3, ldc = n + 5;
        float *a = rand_buf((size_t)m * (k + 3), 1.0f), *w = rand_buf((size_t)n * k, 1.0f);
        float *c = rand_buf((size_t)m * ldc, 1.0f);
        float *bp = malloc(sizeof(float) * mo_pw_packed_size(k, n));
        double *ref = malloc(sizeof(double) * (size_t)m * ldc);
        assert_true(bp && ref);
        for (size_t i = 0; i < (size_t)m * ldc; i++)
            ref[i] = c[i];
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
                for (int l = 0; l < k; l++)
                    ref[(size_t)i * ldc + j] += (double)a[i * lda + l] * w[(size_t)j * k + l];
        mo_pw_pack_strided(bp, w, k, n, k, 1);
        d[lvl].pw_acc(c, ldc, a, lda, (size_t)m, k, n, bp);
        for (int i = 0; i < m; i++)
            for (int j = 0; j < ldc; j++) {
                const double e = fabs(c[(size_t)i * ldc + j] - ref[(size_t)i * ldc + j]);
                if (e > 1e-5 * (1.0 + sqrt((double)k)))
                    fail_msg("gemm %dx%dx%d lda %td (%s): (%d,%d) off by %g", m, k, n, lda,
                             lvl ? "simd" : "c", i, j, e);
            }
        free(a);
        free(w);
        free(c);
        free(bp);
        free(ref);
    }
}

/* The dilated 3x3 conv (clipped) against naive_conv; the unclipped run is bit-identical. */
static void test_conv3x3(void **state)
{
    (void)state;
    static const int cases[][5] = {
        /* h, w, cin, cout, rate */
        {1, 1, 3, 5, 1},   {5, 7, 8, 16, 1},  {9, 6, 19, 21, 2}, {12, 12, 16, 17, 5},
        {12, 12, 16, 17, 11}, {12, 12, 16, 17, 12}, {12, 13, 33, 16, 36}, {17, 9, 10, 40, 8},
        {20, 15, 24, 8, 12},
    };
    mo_conv_dsp dsp[2];
    dsp_levels(dsp);
    for (size_t t = 0; t < sizeof(cases) / sizeof(cases[0]); t++) {
        const int h = cases[t][0], w = cases[t][1], cin = cases[t][2], cout = cases[t][3],
                  r = cases[t][4];
        const ptrdiff_t src_row = (ptrdiff_t)w * cin + (t % 2 ? 5 : 0); /* padded rows too */
        const ptrdiff_t ldd = cout + 3;
        float *src = rand_buf((size_t)h * src_row, 1.0f);
        float *wt = rand_buf((size_t)cout * cin * 9, 0.3f);
        float *bp = malloc(sizeof(float) * 9 * mo_pw_packed_size(cin, cout));
        float *zeros = calloc((size_t)cin, sizeof(float));
        float *d1 = calloc((size_t)h * w * ldd, sizeof(float));
        float *d2 = calloc((size_t)h * w * ldd, sizeof(float));
        double *ref = malloc(sizeof(double) * (size_t)h * w * cout);
        double *mag = malloc(sizeof(double) * (size_t)h * w * cout);
        assert_true(bp && zeros && d1 && d2 && ref && mag);
        for (int i = 0; i < 9; i++)
            mo_pw_pack_strided(bp + (size_t)i * mo_pw_packed_size(cin, cout), wt + i, cin, cout,
                     (ptrdiff_t)9 * cin, 9);
        for (size_t i = 0; i < (size_t)h * w * ldd; i++)
            d1[i] = d2[i] = (float)(i % 7) * 0.25f; /* accumulates onto existing values */
        naive_conv(ref, mag, src, src_row, h, w, cin, cout, 1, 3, 1, r, r, wt, NULL, 0);
        mo_pw_acc_fn *gemm = dsp[t % 2].pw_acc; /* C and SIMD kernels in turn */
        seg_conv3x3_acc(gemm, d1, ldd, src, src_row, h, w, cin, cout, r, bp, 1, zeros);
        seg_conv3x3_acc(gemm, d2, ldd, src, src_row, h, w, cin, cout, r, bp, 0, zeros);
        for (int p = 0; p < h * w; p++)
            for (int co = 0; co < cout; co++) {
                const size_t o = (size_t)p * ldd + co, q = (size_t)p * cout + co;
                const double want = ref[q] + (double)(o % 7) * 0.25;
                if (fabs(d1[o] - want) > 1e-6 * (1.0 + mag[q]) * 8)
                    fail_msg("conv %dx%d cin %d cout %d rate %d: pixel %d ch %d: %g vs %g", h,
                             w, cin, cout, r, p, co, d1[o], want);
                if (d1[o] != d2[o])
                    fail_msg("rate %d: skipping padded taps changed pixel %d ch %d: %a vs %a", r,
                             p, co, d1[o], d2[o]);
            }
        free(src);
        free(wt);
        free(bp);
        free(zeros);
        free(d1);
        free(d2);
        free(ref);
        free(mag);
    }
}

/* The dense 3x3 kernel of the table (mo_conv_dsp.conv3x3, C and SIMD) against naive_conv:
 * stride 1 and 2, rates below, at and beyond the map, strided output pixels (a branch in
 * a concatenation buffer), the bias argument or start values in dst, ReLU; the padding of
 * each output pixel is left alone. */
static void test_conv3x3_kernel(void **state)
{
    (void)state;
    static const int cases[][6] = {
        /* h, w, cin, cout, rate, stride */
        {1, 1, 3, 5, 1, 1},    {5, 7, 8, 16, 1, 2},    {9, 6, 19, 21, 2, 1},
        {12, 12, 16, 17, 5, 2}, {12, 12, 16, 17, 12, 1}, {12, 13, 33, 16, 36, 1},
        {17, 9, 10, 40, 8, 2},  {20, 15, 300, 8, 3, 1},  {13, 11, 64, 33, 6, 2},
    };
    mo_conv_dsp dsp[2];
    dsp_levels(dsp);
    for (size_t t = 0; t < sizeof(cases) / sizeof(cases[0]) * 2; t++) {
        const int *c = cases[t / 2];
        const int h = c[0], w = c[1], cin = c[2], cout = c[3], r = c[4], st = c[5];
        const int lvl = (int)(t % 2), use_bias = (int)((t / 2) % 2), relu = (int)(t / 2 % 3 == 1);
        const int oh = MO_CONV_OUT(h, st), ow = MO_CONV_OUT(w, st);
        const ptrdiff_t src_row = (ptrdiff_t)w * cin + (t % 3 ? 5 : 0);
        const ptrdiff_t ldd = cout + 3, drow = (ptrdiff_t)ow * ldd + 2;
        float *src = rand_buf((size_t)h * src_row, 1.0f);
        float *wt = rand_buf((size_t)cout * cin * 9, 0.3f), *bias = rand_buf((size_t)cout, 1.0f);
        float *wp = malloc(sizeof(float) * mo_conv3x3_packed_size(cin, cout));
        float *d = malloc(sizeof(float) * (size_t)oh * drow);
        double *ref = malloc(sizeof(double) * (size_t)oh * ow * cout);
        double *mag = malloc(sizeof(double) * (size_t)oh * ow * cout);
        assert_true(wp && d && ref && mag);
        mo_conv3x3_pack(wp, wt, cin, cout);
        for (size_t i = 0; i < (size_t)oh * drow; i++)
            d[i] = (float)(i % 7) * 0.25f;
        naive_conv(ref, mag, src, src_row, h, w, cin, cout, 1, 3, st, r, r, wt, NULL, 0);
        dsp[lvl].conv3x3(d, drow, ldd, src, src_row, h, w, cin, cout, st, r, wp,
                         use_bias ? bias : NULL, relu ? MO_ACT_RELU : MO_ACT_NONE, 0, oh);
        for (int y = 0; y < oh; y++)
            for (int x = 0; x < ow; x++)
                for (int co = 0; co < (int)ldd; co++) {
                    const size_t o = (size_t)y * drow + (size_t)x * ldd + co;
                    const float old = (float)(o % 7) * 0.25f;
                    if (co >= cout) {
                        if (d[o] != old)
                            fail_msg("conv3x3 wrote pixel padding at (%d,%d) %d", y, x, co);
                        continue;
                    }
                    const size_t q = ((size_t)y * ow + x) * cout + co;
                    double want = ref[q] + (use_bias ? bias[co] : old);
                    if (relu && want < 0)
                        want = 0;
                    if (fabs(d[o] - want) > 1e-6 * (1.0 + mag[q]) * 8)
                        fail_msg("conv3x3 %dx%d cin %d cout %d rate %d stride %d (%s): (%d,%d) "
                                 "ch %d: %g vs %g", h, w, cin, cout, r, st,
                                 lvl ? "simd" : "c", y, x, co, d[o], want);
                }
        for (int y = 0; y < oh; y++) /* row padding */
            for (ptrdiff_t i = (ptrdiff_t)ow * ldd; i < drow; i++)
                assert_true(d[(size_t)y * drow + i] == (float)(((size_t)y * drow + i) % 7) * 0.25f);
        free(src);
        free(wt);
        free(bias);
        free(wp);
        free(d);
        free(ref);
        free(mag);
    }
}

/* Work of the dilated ASPP branches at 512x512 (S0: 1024 -> 256, rates 12/24/36). */
static void test_tap_saving_512(void **state)
{
    (void)state;
    static const int rates[3] = {12, 24, 36};
    printf("  ASPP dilated branches at 512x512 (1024 -> 256 ch, rates 12/24/36), GMAC:\n");
    for (int os = 8; os <= 32; os *= 2) {
        const int n = 512 / os;
        uint64_t all = 0, whole = 0, clip = 0;
        for (int i = 0; i < 3; i++) {
            const uint64_t a = seg_conv3x3_macs(n, n, 1024, 256, rates[i], SEG_TAPS_ALL);
            const uint64_t b = seg_conv3x3_macs(n, n, 1024, 256, rates[i], SEG_TAPS_WHOLE);
            const uint64_t c = seg_conv3x3_macs(n, n, 1024, 256, rates[i], SEG_TAPS_CLIP);
            assert_true(c <= b && b <= a);
            assert_int_equal(a, (uint64_t)9 * n * n * 1024 * 256);
            if (rates[i] >= n) /* only the centre tap reads the map */
                assert_int_equal(b, (uint64_t)n * n * 1024 * 256);
            all += a;
            whole += b;
            clip += c;
        }
        printf("    OS %2d (%2dx%-2d): all taps %.3f, whole padded taps skipped %.3f (-%.1f%%), "
               "padded borders clipped too %.3f (-%.1f%%)\n",
               os, n, n, all / 1e9, whole / 1e9, 100.0 * (double)(all - whole) / (double)all,
               clip / 1e9, 100.0 * (double)(all - clip) / (double)all);
    }
    /* 32x32 by hand: rate 12 keeps all 9 taps, 24 too, 36 only the centre: 19 of 27 */
    uint64_t w = 0;
    for (int i = 0; i < 3; i++)
        w += seg_conv3x3_macs(32, 32, 1, 1, rates[i], SEG_TAPS_WHOLE);
    assert_int_equal(w, (uint64_t)19 * 32 * 32);
}

/* ---------------------------------------------------------- upsampling */

/* torch's bilinear source index (align_corners=False), in double for the reference. */
static void src_index(int i, int in, int out, int *i0, int *i1, double *l1)
{
    if (in == out) {
        *i0 = *i1 = i;
        *l1 = 0;
        return;
    }
    double s = (double)in / out * (i + 0.5) - 0.5;
    if (s < 0)
        s = 0;
    *i0 = (int)s;
    if (*i0 > in - 1)
        *i0 = in - 1;
    *i1 = *i0 + (*i0 < in - 1);
    *l1 = s - *i0;
}

static void test_upsample_argmax(void **state)
{
    (void)state;
    static const int cases[][5] = {/* ih, iw, k, oh, ow */
                                   {1, 1, 3, 5, 4},   {4, 5, 21, 4, 5},  {3, 4, 21, 25, 31},
                                   {7, 5, 2, 50, 33}, {8, 8, 256, 9, 15}, {6, 9, 1, 12, 18},
                                   {10, 12, 7, 5, 6}};
    for (size_t t = 0; t < sizeof(cases) / sizeof(cases[0]); t++) {
        const int ih = cases[t][0], iw = cases[t][1], k = cases[t][2], oh = cases[t][3],
                  ow = cases[t][4];
        const ptrdiff_t rs = (ptrdiff_t)iw * k + 2;
        float *lg = rand_buf((size_t)ih * rs, 4.0f);
        uint8_t *lab = malloc((size_t)oh * (ow + 3));
        float *probs = malloc(sizeof(float) * (size_t)oh * ow * k);
        double *v = malloc(sizeof(double) * (size_t)k);
        assert_true(lab && probs && v);
        mo_tensor in = {lg, ih, iw, k, rs};
        assert_int_equal(mo_seg_upsample_argmax(&in, oh, ow, lab, ow + 3, probs), MO_OK);
        for (int y = 0; y < oh; y++)
            for (int x = 0; x < ow; x++) {
                int y0, y1, x0, x1;
                double ly, lx;
                src_index(y, ih, oh, &y0, &y1, &ly);
                src_index(x, iw, ow, &x0, &x1, &lx);
                int best = 0;
                double second = -1e300;
                for (int c = 0; c < k; c++) {
                    const float *r0 = lg + y0 * rs, *r1 = lg + y1 * rs;
                    v[c] = (1 - ly) * ((1 - lx) * r0[x0 * k + c] + lx * r0[x1 * k + c]) +
                           ly * ((1 - lx) * r1[x0 * k + c] + lx * r1[x1 * k + c]);
                }
                for (int c = 1; c < k; c++)
                    if (v[c] > v[best])
                        best = c;
                for (int c = 0; c < k; c++)
                    if (c != best && v[c] > second)
                        second = v[c];
                if (v[best] - second > 1e-4) /* clear winner */
                    assert_int_equal(lab[y * (ow + 3) + x], best);
                double sum = 0, z = 0; /* the softmax's denominator, once per pixel */
                const float *p = probs + ((size_t)y * ow + x) * k;
                for (int j = 0; j < k; j++)
                    z += exp(v[j] - v[best]);
                for (int c = 0; c < k; c++) {
                    const double e = exp(v[c] - v[best]);
                    if (fabs(p[c] - e / z) > 1e-5)
                        fail_msg("probs (%d,%d) class %d: %g vs %g", y, x, c, p[c], e / z);
                    sum += p[c];
                }
                assert_true(fabs(sum - 1.0) < 1e-5);
            }
        free(lg);
        free(lab);
        free(probs);
        free(v);
    }
    /* a 1x1 map is constant; same size is a copy; ties go to the lower index */
    float one[3] = {0.5f, 2.0f, 2.0f};
    mo_tensor t1 = {one, 1, 1, 3, 3};
    uint8_t lab[12];
    assert_int_equal(mo_seg_upsample_argmax(&t1, 3, 4, lab, 4, NULL), MO_OK);
    for (int i = 0; i < 12; i++)
        assert_int_equal(lab[i], 1);
}

/* ------------------------------------------------------ the whole head */

/* Naive double DeepLabHead on features x (h x w x cin), BatchNorm unfolded, from the file. */
typedef struct dconv {
    float *w, *g, *b, *m, *v, *bias;
} dconv;

static float *read_t(const mo_file *f, const char *name)
{
    mo_tensor_info info;
    assert_int_equal(mo_file_tensor(f, name, &info), MO_OK);
    float *p = malloc(sizeof(float) * (size_t)info.numel);
    assert_non_null(p);
    assert_int_equal(mo_file_read_f32(f, name, info.ndim, info.shape, p), MO_OK);
    return p;
}

static dconv read_dconv(const mo_file *f, const char *wname, const char *bn)
{
    dconv c = {0};
    char n[160];
    c.w = read_t(f, wname);
    if (!bn)
        return c;
    MG_FMT(n, "%sweight", bn);
    c.g = read_t(f, n);
    MG_FMT(n, "%sbias", bn);
    c.b = read_t(f, n);
    MG_FMT(n, "%srunning_mean", bn);
    c.m = read_t(f, n);
    MG_FMT(n, "%srunning_var", bn);
    c.v = read_t(f, n);
    return c;
}

static void free_dconv(dconv *c)
{
    free(c->w);
    free(c->g);
    free(c->b);
    free(c->m);
    free(c->v);
}

/* conv (naive, double) + BN + ReLU: out (h x w x cout) from in (h x w x cin, double). */
static void ref_layer(double *out, const double *in, int h, int w, int cin, int cout, int ks,
                      int dil, const dconv *c, const float *bias, int relu)
{
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int co = 0; co < cout; co++) {
                double s = bias ? bias[co] : 0.0;
                for (int ky = 0; ky < ks; ky++)
                    for (int kx = 0; kx < ks; kx++) {
                        const int iy = y + (ky - ks / 2) * dil, ix = x + (kx - ks / 2) * dil;
                        if (iy < 0 || iy >= h || ix < 0 || ix >= w)
                            continue;
                        const double *p = in + ((size_t)iy * w + ix) * cin;
                        const float *wr = c->w + (size_t)co * cin * ks * ks + ky * ks + kx;
                        for (int ci = 0; ci < cin; ci++)
                            s += p[ci] * wr[(size_t)ci * ks * ks];
                    }
                if (c->g)
                    s = (s - c->m[co]) / sqrt((double)c->v[co] + 1e-5) * c->g[co] + c->b[co];
                out[((size_t)y * w + x) * cout + co] = relu && s < 0 ? 0 : s;
            }
}

static double *ref_head(const mo_file *f, const head_spec *hs, const mo_tensor *x)
{
    const int h = x->h, w = x->w, cin = hs->cin, a = hs->a, nb = hs->nr + 2;
    const size_t P = (size_t)h * w;
    double *in = malloc(sizeof(double) * P * cin), *cat = malloc(sizeof(double) * P * nb * a);
    double *br = malloc(sizeof(double) * P * a), *proj = malloc(sizeof(double) * P * a);
    double *hc = malloc(sizeof(double) * P * hs->hc), *out = malloc(sizeof(double) * P * hs->k);
    double *pool = calloc((size_t)cin, sizeof(double)), pb[256];
    assert_true(in && cat && br && proj && hc && out && pool && a <= 256);
    for (int y = 0; y < h; y++)
        for (int xx = 0; xx < w; xx++)
            for (int c = 0; c < cin; c++) {
                const double v = x->data[y * x->row_stride + (ptrdiff_t)xx * cin + c];
                in[((size_t)y * w + xx) * cin + c] = v;
                pool[c] += v / (double)P;
            }
    char wn[96], bn[96];
    for (int b = 0; b < nb; b++) {
        if (b < nb - 1) {
            MG_FMT(wn, "seg.0.convs.%d.0.weight", b);
            MG_FMT(bn, "seg.0.convs.%d.1.", b);
            dconv c = read_dconv(f, wn, bn);
            ref_layer(br, in, h, w, cin, a, b ? 3 : 1, b ? hs->rates[b - 1] : 1, &c, NULL, 1);
            free_dconv(&c);
        } else { /* pooling: 1x1 map, then broadcast (the bilinear upsampling of 1x1) */
            MG_FMT(wn, "seg.0.convs.%d.1.weight", b);
            MG_FMT(bn, "seg.0.convs.%d.2.", b);
            dconv c = read_dconv(f, wn, bn);
            ref_layer(pb, pool, 1, 1, cin, a, 1, 1, &c, NULL, 1);
            for (size_t p = 0; p < P; p++)
                memcpy(br + p * a, pb, sizeof(double) * (size_t)a);
            free_dconv(&c);
        }
        for (size_t p = 0; p < P; p++)
            memcpy(cat + p * nb * a + (size_t)b * a, br + p * a, sizeof(double) * (size_t)a);
    }
    dconv pc = read_dconv(f, "seg.0.project.0.weight", "seg.0.project.1.");
    ref_layer(proj, cat, h, w, nb * a, a, 1, 1, &pc, NULL, 1);
    dconv hcv = read_dconv(f, "seg.1.weight", "seg.2.");
    ref_layer(hc, proj, h, w, a, hs->hc, 3, 1, &hcv, NULL, 1);
    dconv cl = read_dconv(f, "seg.4.weight", NULL);
    float *bias = read_t(f, "seg.4.bias");
    ref_layer(out, hc, h, w, hs->hc, hs->k, 1, 1, &cl, bias, 0);
    free_dconv(&pc);
    free_dconv(&hcv);
    free_dconv(&cl);
    free(bias);
    free(in);
    free(cat);
    free(br);
    free(proj);
    free(hc);
    free(pool);
    return out;
}

static mo_session *open_session(const mo_seg *seg, int h, int w, int os)
{
    mo_session_settings ss;
    mo_session_default_settings(&ss);
    ss.max_height = h;
    ss.max_width = w;
    ss.min_output_stride = os;
    assert_int_equal(mo_seg_workspace_size(seg, h, w, os, &ss.workspace_bytes), MO_OK);
    mo_session *s = NULL;
    assert_int_equal(mo_session_open(&s, bb, &ss), MO_OK);
    return s;
}

static void check_head(const head_spec *hs, int h, int w, int os)
{
    mo_file *f = head_file(hs, NULL, NULL);
    mo_seg *seg = NULL;
    int r = mo_seg_open(&seg, f, bb, NULL);
    if (r)
        fail_msg("open: %s (%s)", mo_strerror(r), mo_last_error());
    mo_seg_info info;
    assert_int_equal(mo_seg_get_info(seg, &info), MO_OK);
    assert_int_equal(info.num_classes, hs->k);
    assert_int_equal(info.in_channels, hs->cin);
    assert_int_equal(info.aspp_channels, hs->a);
    assert_int_equal(info.head_channels, hs->hc);
    assert_int_equal(info.num_rates, hs->nr);
    for (int i = 0; i < hs->nr; i++)
        assert_int_equal(info.rates[i], hs->rates[i]);
    assert_int_equal(info.output_stride, 16);
    /* a caller built against older headers (the struct up to num_classes) is not overrun */
    unsigned char old[sizeof(mo_seg_info) + 8];
    memset(old, 0xA5, sizeof(old));
    assert_int_equal(mo_seg_get_info_sized(seg, (mo_seg_info *)(void *)old, sizeof(int)), MO_OK);
    assert_memory_equal(old, &info.num_classes, sizeof(int));
    for (size_t i = sizeof(int); i < sizeof(old); i++)
        assert_int_equal(old[i], 0xA5);
    char last[16];
    MG_FMT(last, "c%d", hs->k - 1);
    assert_string_equal(mo_seg_class_name(seg, hs->k - 1), last);
    assert_null(mo_seg_class_name(seg, hs->k));

    mo_session *s = open_session(seg, h, w, os);
    float *img = rand_buf((size_t)h * w * 3, 2.0f);
    mo_tensor in = {img, h, w, 3, (ptrdiff_t)w * 3};
    mo_features feats;
    assert_int_equal(mo_backbone_run(s, &in, os, &feats), MO_OK);
    mo_tensor lg;
    r = mo_seg_logits(seg, s, &feats, &lg);
    if (r)
        fail_msg("logits: %s (%s)", mo_strerror(r), mo_last_error());
    const mo_tensor *x = &feats.level[3];
    assert_int_equal(lg.h, x->h);
    assert_int_equal(lg.w, x->w);
    assert_int_equal(lg.c, hs->k);
    double *ref = ref_head(f, hs, x);
    double maxref = 0, maxd = 0;
    /* Compares, not fmax(): aarch64-linux-gnu-gcc 12.2 (Debian 12.2.0-14) stops with an
     * internal compiler error (vect_transform_reduction, tree-vect-loop.cc:7457) vectorising
     * an fmax() reduction of a float - double difference at -O3; and fmax() would drop a
     * NaN logit, which must fail. */
    for (size_t i = 0; i < (size_t)lg.h * lg.w * lg.c; i++) {
        const double r = fabs(ref[i]), d = fabs(lg.data[i] - ref[i]);
        if (r > maxref)
            maxref = r;
        if (d > maxd || isnan(d))
            maxd = d;
    }
    printf("  %dx%d os %d (features %dx%d), rates", h, w, os, x->h, x->w);
    for (int i = 0; i < hs->nr; i++)
        printf(" %d", hs->rates[i]);
    printf(": max |logit| %.3f, max diff %.2e\n", maxref, maxd);
    assert_true(maxd <= 1e-4 * (1.0 + maxref));

    /* the unclipped path gives the same bits */
    float *keep = malloc(sizeof(float) * (size_t)lg.h * lg.w * lg.c);
    assert_non_null(keep);
    memcpy(keep, lg.data, sizeof(float) * (size_t)lg.h * lg.w * lg.c);
    float *ws = mo_session_workspace(s, NULL);
    const float *l2 = seg_forward(seg, NULL, x, ws, 0);
    for (size_t i = 0; i < (size_t)lg.h * lg.w * lg.c; i++)
        if (keep[i] != l2[i])
            fail_msg("unclipped logit %zu: %a vs %a", i, l2[i], keep[i]);

    /* mo_seg_run = logits + upsample_argmax at the input size */
    uint8_t *lab = malloc((size_t)h * w), *lab2 = malloc((size_t)h * w);
    assert_true(lab && lab2);
    assert_int_equal(mo_seg_run(seg, s, &feats, h, w, lab, w, NULL), MO_OK);
    mo_tensor lt = {keep, lg.h, lg.w, lg.c, lg.row_stride};
    assert_int_equal(mo_seg_upsample_argmax(&lt, h, w, lab2, w, NULL), MO_OK);
    assert_memory_equal(lab, lab2, (size_t)h * w);

    free(lab);
    free(lab2);
    free(keep);
    free(ref);
    free(img);
    mo_session_close(&s);
    mo_seg_close(&seg);
    assert_null(seg);
    mo_file_close(&f);
}

static void test_head_vs_naive(void **state)
{
    (void)state;
    check_head(&small_head, 97, 130, 8);  /* 13x17 features: 12 partly, 24/36 centre only */
    check_head(&small_head, 64, 64, 32);  /* 2x2 */
    const head_spec dense = {1024, 8, 16, 3, 2, {1, 3}};
    check_head(&dense, 72, 88, 8);        /* 9x11 with small rates: every tap partly used */
    const head_spec four = {1024, 8, 8, 2, 4, {2, 4, 6, 8}};
    check_head(&four, 50, 41, 16);        /* 4x3, four rates */
}

/* ------------------------------------------------------------- bad input */

static void expect_open_fails(mo_file *f, int code, const char *word)
{
    mo_seg *seg = (mo_seg *)&seg; /* must come back NULL */
    const int r = mo_seg_open(&seg, f, bb, NULL);
    if (r != code || (word && !strstr(mo_last_error(), word)))
        fail_msg("expected %s with \"%s\", got %s: %s", mo_strerror(code), word ? word : "",
                 mo_strerror(r), mo_last_error());
    printf("  refused as expected, %s: %s\n", mo_strerror(r), mo_last_error());
    assert_null(seg);
    mo_file_close(&f);
}

static void drop_proj_bn_var(mg_model *m)
{
    assert_int_equal(mg_remove(m, "seg.0.project.1.running_var"), 1);
}

static void negative_var(mg_model *m)
{
    mg_tensor *t = mg_find(m, "seg.2.running_var");
    t->data[3] = -2.0f;
}

static void stray_tensor(mg_model *m)
{
    mg_add(m, "seg.0.convs.0.1.num_batches_tracked", 0, 0, 0, 0, 0, 0, 0);
}

static void wrong_cls_shape(mg_model *m)
{
    mg_add(m, "seg.4.bias", 1, 6, 0, 0, 0, 0, 1);
}

static void test_bad_heads(void **state)
{
    (void)state;
    head_spec h = small_head;
    /* input channels: a head made for another backbone width */
    h.cin = 512;
    expect_open_fails(head_file(&h, NULL, NULL), MO_EMISMATCH, "reads 512 channels");
    h = small_head;
    /* class count: list and classifier disagree */
    expect_open_fails(head_file(&h, (const char *[]){"seg.classes", "[\"a\",\"b\"]", NULL}, NULL),
                      MO_EMISMATCH, "lists 2 classes");
    expect_open_fails(head_file(&h, NULL, wrong_cls_shape), MO_EMISMATCH, "seg.4.bias");
    expect_open_fails(head_file(&h, (const char *[]){"seg.classes", "[]", NULL}, NULL),
                      MO_EFORMAT, "seg.classes");
    expect_open_fails(head_file(&h, (const char *[]){"seg.classes", NULL, NULL}, NULL),
                      MO_EFORMAT, "seg.classes is missing");
    /* rates */
    static const char *const bad_rates[] = {"[0,24,36]", "[12,-24,36]", "[12,24,1.5]",
                                            "[12,24,\"36\"]", "[]", "12", "[12,24,99999]"};
    for (size_t i = 0; i < sizeof(bad_rates) / sizeof(bad_rates[0]); i++)
        expect_open_fails(head_file(&h, (const char *[]){"seg.rates", bad_rates[i], NULL}, NULL),
                          MO_EFORMAT, "seg.rates");
    expect_open_fails(head_file(&h, (const char *[]){"seg.rates", "[1,2,3,4,5,6,7,8,9]", NULL},
                                NULL),
                      MO_EUNSUPPORTED, "at most 8");
    /* rates that do not fit the tensors (3 dilated branches stored) */
    expect_open_fails(head_file(&h, (const char *[]){"seg.rates", "[12,24]", NULL}, NULL),
                      MO_EMISMATCH, "seg.0.convs.3.1.weight");
    expect_open_fails(head_file(&h, (const char *[]){"seg.rates", "[6,12,24,36]", NULL}, NULL),
                      MO_EFORMAT, "missing");
    /* too many classes */
    head_spec many = small_head;
    many.k = 257;
    expect_open_fails(head_file(&many, NULL, NULL), MO_EUNSUPPORTED, "at most 256");
    /* the backbone it names */
    expect_open_fails(head_file(&h, (const char *[]){"mo.variant", "s1", NULL}, NULL),
                      MO_EMISMATCH, "MobileOne-s1");
    expect_open_fails(head_file(&h, (const char *[]){"mo.backbone_digest", "0123456789abcdef",
                                                     NULL},
                                NULL),
                      MO_EMISMATCH, "0123456789abcdef");
    expect_open_fails(head_file(&h, (const char *[]){"mo.backbone_digest", NULL, NULL}, NULL),
                      MO_EFORMAT, "mo.backbone_digest");
    /* other metadata */
    expect_open_fails(head_file(&h, (const char *[]){"seg.output_stride", "4", NULL}, NULL),
                      MO_EFORMAT, "seg.output_stride");
    expect_open_fails(head_file(&h, (const char *[]){"seg.bn_eps", "abc", NULL}, NULL),
                      MO_EFORMAT, "seg.bn_eps");
    expect_open_fails(head_file(&h, (const char *[]){"mo.contents", "[\"cls\"]", NULL}, NULL),
                      MO_EFORMAT, "no segmentation head");
    /* tensors */
    expect_open_fails(head_file(&h, NULL, drop_proj_bn_var), MO_EFORMAT,
                      "seg.0.project.1.running_var");
    expect_open_fails(head_file(&h, NULL, negative_var), MO_EFORMAT, "seg.2.");
    expect_open_fails(head_file(&h, NULL, stray_tensor), MO_EFORMAT, "num_batches_tracked");
    /* the backbone file holds no head */
    mo_seg *seg = NULL;
    assert_int_equal(mo_seg_open(&seg, bb_file, bb, NULL), MO_EFORMAT);
    assert_int_equal(mo_seg_open(NULL, bb_file, bb, NULL), MO_EINVAL);
    assert_int_equal(mo_seg_open(&seg, NULL, bb, NULL), MO_EINVAL);
    mo_seg_close(NULL);
    mo_seg_close(&seg);
}

static void test_bad_runs(void **state)
{
    (void)state;
    mo_file *f = head_file(&small_head, NULL, NULL);
    mo_seg *seg = NULL;
    assert_int_equal(mo_seg_open(&seg, f, bb, NULL), MO_OK);
    size_t bytes;
    /* absurd sizes */
    static const int bad[][3] = {{0, 10, 16},     {10, 0, 16},      {-5, 10, 16},
                                 {8193, 10, 16},  {10, 100000, 16}, {10, 10, 4},
                                 {10, 10, 0},     {10, 10, 64}};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(mo_seg_workspace_size(seg, bad[i][0], bad[i][1], bad[i][2], &bytes),
                         MO_EINVAL);
        printf("  refused as expected: %s\n", mo_last_error());
    }
    assert_int_equal(mo_seg_workspace_size(NULL, 10, 10, 16, &bytes), MO_EINVAL);
    assert_int_equal(mo_seg_workspace_size(seg, 8192, 8192, 8, &bytes), MO_OK);
    assert_true(bytes > (size_t)1024 * 1024 * 16 * 4);

    /* a session without (or with too small) a workspace */
    mo_session *s = NULL;
    mo_session_settings ss;
    mo_session_default_settings(&ss);
    ss.max_height = ss.max_width = 64;
    assert_int_equal(mo_session_open(&s, bb, &ss), MO_OK);
    float *img = rand_buf(64 * 64 * 3, 1.0f);
    mo_tensor in = {img, 64, 64, 3, 64 * 3};
    mo_features feats;
    assert_int_equal(mo_backbone_run(s, &in, 32, &feats), MO_OK);
    mo_tensor lg;
    assert_int_equal(mo_seg_logits(seg, s, &feats, &lg), MO_EINVAL);
    assert_non_null(strstr(mo_last_error(), "workspace"));
    mo_session_close(&s);
    assert_int_equal(mo_seg_workspace_size(seg, 32, 32, 32, &ss.workspace_bytes), MO_OK);
    assert_int_equal(mo_session_open(&s, bb, &ss), MO_OK); /* 64x64 input, 32x32 workspace */
    assert_int_equal(mo_backbone_run(s, &in, 32, &feats), MO_OK);
    assert_int_equal(mo_seg_logits(seg, s, &feats, &lg), MO_EINVAL);
    printf("  refused as expected: %s\n", mo_last_error());
    mo_session_close(&s);

    s = open_session(seg, 64, 64, 32);
    assert_int_equal(mo_backbone_run(s, &in, 32, &feats), MO_OK);
    mo_features wrong = feats;
    wrong.level[3].c = 512;
    assert_int_equal(mo_seg_logits(seg, s, &wrong, &lg), MO_EINVAL);
    assert_int_equal(mo_seg_logits(seg, s, NULL, &lg), MO_EINVAL);
    assert_int_equal(mo_seg_logits(NULL, s, &feats, &lg), MO_EINVAL);
    assert_int_equal(mo_seg_logits(seg, NULL, &feats, &lg), MO_EINVAL);
    assert_int_equal(mo_seg_logits(seg, s, &feats, &lg), MO_OK);
    uint8_t lab[16];
    static const int bad_out[][3] = {{0, 4, 4}, {4, 0, 4}, {40000, 4, 4}, {4, 40000, 40000},
                                     {4, 4, 3}};
    for (size_t i = 0; i < sizeof(bad_out) / sizeof(bad_out[0]); i++)
        assert_int_equal(mo_seg_upsample_argmax(&lg, bad_out[i][0], bad_out[i][1], lab,
                                                bad_out[i][2], NULL),
                         MO_EINVAL);
    assert_int_equal(mo_seg_upsample_argmax(&lg, 4, 4, NULL, 4, NULL), MO_EINVAL);
    assert_int_equal(mo_seg_upsample_argmax(NULL, 4, 4, lab, 4, NULL), MO_EINVAL);
    mo_tensor k0 = lg;
    k0.c = 0;
    assert_int_equal(mo_seg_upsample_argmax(&k0, 4, 4, lab, 4, NULL), MO_EINVAL);
    assert_int_equal(mo_seg_run(seg, s, &feats, 4, 4, lab, 4, NULL), MO_OK);
    assert_int_equal(mo_seg_get_info_sized(seg, NULL, sizeof(mo_seg_info)), MO_EINVAL);
    free(img);
    mo_session_close(&s);
    mo_seg_close(&seg);
    mo_file_close(&f);
}

/* ------------------------------------------------------------- threads */

/* The head runs on the session's pool (rows of the feature map, channels of the mean,
 * rows of the upsampled output): logits, labels and probabilities must be the same bits
 * for 1, 2, 3 and 4 threads (MO_TEST_QUICK, e.g. under qemu: 1 and 3, the uneven split). */
static void check_threads(const head_spec *hs, int h, int w, int os)
{
    mo_file *f = head_file(hs, NULL, NULL);
    mo_seg *seg = NULL;
    assert_int_equal(mo_seg_open(&seg, f, bb, NULL), MO_OK);
    float *img = rand_buf((size_t)h * w * 3, 2.0f);
    mo_tensor in = {img, h, w, 3, (ptrdiff_t)w * 3};
    float *logits1 = NULL, *probs1 = NULL, *probs = malloc(sizeof(float) * (size_t)h * w * hs->k);
    uint8_t *lab1 = NULL, *lab = malloc((size_t)h * w);
    size_t nl = 0;
    assert_true(probs && lab);
    const int quick = mo_test_quick();
    for (int t = 1; t <= 4; t++) {
        if (quick && (t == 2 || t == 4))
            continue;
        mo_session_settings ss;
        mo_session_default_settings(&ss);
        ss.max_height = h;
        ss.max_width = w;
        ss.min_output_stride = os;
        ss.threads = t;
        assert_int_equal(mo_seg_workspace_size(seg, h, w, os, &ss.workspace_bytes), MO_OK);
        mo_session *s = NULL;
        assert_int_equal(mo_session_open(&s, bb, &ss), MO_OK);
        mo_features feats;
        assert_int_equal(mo_backbone_run(s, &in, os, &feats), MO_OK);
        mo_tensor lg;
        assert_int_equal(mo_seg_logits(seg, s, &feats, &lg), MO_OK);
        assert_int_equal(mo_seg_run(seg, s, &feats, h, w, lab, w, probs), MO_OK);
        if (t == 1) {
            nl = (size_t)lg.h * lg.w * lg.c;
            logits1 = malloc(sizeof(float) * nl);
            probs1 = malloc(sizeof(float) * (size_t)h * w * hs->k);
            lab1 = malloc((size_t)h * w);
            assert_true(logits1 && probs1 && lab1);
            memcpy(logits1, lg.data, sizeof(float) * nl);
            memcpy(probs1, probs, sizeof(float) * (size_t)h * w * hs->k);
            memcpy(lab1, lab, (size_t)h * w);
        } else {
            if (memcmp(logits1, lg.data, sizeof(float) * nl))
                fail_msg("%d threads: logits differ from 1 thread", t);
            if (memcmp(lab1, lab, (size_t)h * w))
                fail_msg("%d threads: labels differ from 1 thread", t);
            if (memcmp(probs1, probs, sizeof(float) * (size_t)h * w * hs->k))
                fail_msg("%d threads: probabilities differ from 1 thread", t);
        }
        mo_session_close(&s);
    }
    printf("  %dx%d os %d: logits (%zu), labels, probabilities equal for %s threads\n", h, w,
           os, nl, quick ? "1 and 3" : "1..4");
    free(logits1);
    free(probs1);
    free(lab1);
    free(probs);
    free(lab);
    free(img);
    mo_seg_close(&seg);
    mo_file_close(&f);
}

static void test_threads_identical(void **state)
{
    (void)state;
    /* Small inputs with rates that still read the image at every tap: the test also runs
     * under qemu in CI, where 512x512 took minutes. */
    const head_spec hs = {1024, 32, 48, 21, 3, {2, 4, 6}};
    if (mo_test_quick())
        mo_quick_note("segment", "test_threads_identical: 1 and 3 threads (2 and 4 skipped)");
    check_threads(&hs, 256, 256, 16); /* 16x16 features */
    check_threads(&hs, 161, 129, 8);  /* 21x17: uneven rows per chunk */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gemm),
        cmocka_unit_test(test_conv3x3),
        cmocka_unit_test(test_conv3x3_kernel),
        cmocka_unit_test(test_tap_saving_512),
        cmocka_unit_test(test_upsample_argmax),
        cmocka_unit_test(test_head_vs_naive),
        cmocka_unit_test(test_bad_heads),
        cmocka_unit_test(test_bad_runs),
        cmocka_unit_test(test_threads_identical),
    };
    return cmocka_run_group_tests(tests, setup_backbone, teardown_backbone);
}
