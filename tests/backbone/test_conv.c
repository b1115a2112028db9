/*
 * Kernel tests: every kernel of core/dsp/conv.c (through mo_conv_dsp) against a naive
 * direct convolution written here in double precision.
 *
 * Tolerance: each output element must be within 1e-5 * (1 + sum_i |w_i x_i|) of the naive
 * result, where the sum runs over the products that make the element (a standard bound
 * for float dot products, scaled down to what float32 accumulation actually reaches).
 * Sizes include 1x1 and 2x2 maps, odd sizes at stride 2, dilations 2, 4 and 5 larger than
 * the map, channel counts that are not multiples of the vector width or of MO_PW_NR,
 * padded row strides, and split row ranges (as threads would call the kernels).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>

#include <cmocka.h>

#include "mo_internal/conv.h"
#include "mo/cpu.h"
#include "naive.h"

#define TOL 1e-5

static float *rand_buf(size_t n)
{
    float *b = malloc((n ? n : 1) * sizeof(float));
    assert_non_null(b);
    for (size_t i = 0; i < n; i++)
        b[i] = frand();
    return b;
}

/* Compare an oh x ow x c map (row stride dst_stride) with the naive result. */
static double check_map(const float *got, ptrdiff_t stride, int oh, int ow, int c,
                        const double *ref, const double *mag, const char *what)
{
    double worst = 0.0;
    for (int y = 0; y < oh; y++)
        for (int x = 0; x < ow; x++)
            for (int ch = 0; ch < c; ch++) {
                const size_t o = ((size_t)y * ow + x) * c + ch;
                const double d = fabs((double)got[y * stride + x * c + ch] - ref[o]);
                const double tol = TOL * (1.0 + mag[o]);
                if (!(d <= tol)) {
                    print_error("%s: (%d,%d,%d) got %.9g want %.9g (diff %g > tol %g)\n", what,
                                y, x, ch, got[y * stride + x * c + ch], ref[o], d, tol);
                    fail();
                }
                if (d / (1.0 + mag[o]) > worst)
                    worst = d / (1.0 + mag[o]);
            }
    return worst;
}

static mo_conv_dsp dsp;

static int setup(void **state)
{
    (void)state;
    mo_conv_dsp_init(&dsp, 0);
    return 0;
}

/* ------------------------------------------------------------------ stem */

static void run_stem(int ih, int iw, int cout, int relu, int pad_in, int pad_out, int split)
{
    const int oh = MO_CONV_OUT(ih, 2), ow = MO_CONV_OUT(iw, 2);
    const ptrdiff_t ss = (ptrdiff_t)iw * 3 + pad_in, ds = (ptrdiff_t)ow * cout + pad_out;
    float *src = rand_buf((size_t)ih * ss);
    float *w = rand_buf((size_t)cout * 27), *b = rand_buf(cout);
    float *wp = malloc(sizeof(float) * 27 * cout);
    float *dst = malloc(sizeof(float) * (size_t)oh * ds);
    double *ref = malloc(sizeof(double) * (size_t)oh * ow * cout);
    double *mag = malloc(sizeof(double) * (size_t)oh * ow * cout);
    assert_true(wp && dst && ref && mag);
    for (size_t i = 0; i < (size_t)oh * ds; i++)
        dst[i] = NAN;
    mo_stem_pack(wp, w, cout);
    if (split) {
        const int ym = oh / 2;
        dsp.stem3x3(dst, ds, src, ss, ih, iw, cout, wp, b, relu, ym, oh);
        dsp.stem3x3(dst, ds, src, ss, ih, iw, cout, wp, b, relu, 0, ym);
    } else {
        dsp.stem3x3(dst, ds, src, ss, ih, iw, cout, wp, b, relu, 0, oh);
    }
    naive_conv(ref, mag, src, ss, ih, iw, 3, cout, 1, 3, 2, 1, 1, w, b, relu);
    char what[96];
    snprintf(what, sizeof(what), "stem %dx%d cout %d relu %d", ih, iw, cout, relu);
    check_map(dst, ds, oh, ow, cout, ref, mag, what);
    free(src); free(w); free(b); free(wp); free(dst); free(ref); free(mag);
}

static void test_stem(void **state)
{
    (void)state;
    static const int sizes[][2] = {{1, 1}, {2, 2}, {1, 2}, {2, 1}, {3, 3}, {4, 4}, {5, 7},
                                   {7, 5}, {8, 9}, {17, 16}, {33, 31}, {64, 64}};
    static const int couts[] = {1, 5, 48, 64};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
        for (size_t j = 0; j < sizeof(couts) / sizeof(couts[0]); j++)
            run_stem(sizes[i][0], sizes[i][1], couts[j], (int)(i + j) & 1, (int)j * 3,
                     (int)i % 3, (int)i & 1);
    for (int r = 0; r < 20; r++)
        run_stem(irand(1, 40), irand(1, 40), irand(1, 70), r & 1, irand(0, 5), irand(0, 5),
                 r & 2);
}

/* ------------------------------------------------------------- depthwise */

static void run_dw(int ih, int iw, int c, int stride, int dil, int relu, int pad_in,
                   int pad_out, int split)
{
    const int oh = MO_CONV_OUT(ih, stride), ow = MO_CONV_OUT(iw, stride);
    const ptrdiff_t ss = (ptrdiff_t)iw * c + pad_in, ds = (ptrdiff_t)ow * c + pad_out;
    float *src = rand_buf((size_t)ih * ss);
    float *w = rand_buf((size_t)c * 9), *b = rand_buf(c);
    float *wp = malloc(sizeof(float) * 9 * c);
    float *dst = malloc(sizeof(float) * (size_t)oh * ds);
    double *ref = malloc(sizeof(double) * (size_t)oh * ow * c);
    double *mag = malloc(sizeof(double) * (size_t)oh * ow * c);
    assert_true(wp && dst && ref && mag);
    for (size_t i = 0; i < (size_t)oh * ds; i++)
        dst[i] = NAN;
    mo_dw_pack(wp, w, c);
    if (split) {
        const int y1 = oh / 3, y2 = 2 * oh / 3;
        dsp.dw3x3(dst, ds, src, ss, ih, iw, c, stride, dil, wp, b, relu, y2, oh);
        dsp.dw3x3(dst, ds, src, ss, ih, iw, c, stride, dil, wp, b, relu, 0, y1);
        dsp.dw3x3(dst, ds, src, ss, ih, iw, c, stride, dil, wp, b, relu, y1, y2);
    } else {
        dsp.dw3x3(dst, ds, src, ss, ih, iw, c, stride, dil, wp, b, relu, 0, oh);
    }
    naive_conv(ref, mag, src, ss, ih, iw, c, c, c, 3, stride, dil, dil, w, b, relu);
    char what[128];
    snprintf(what, sizeof(what), "dw %dx%d c %d stride %d dil %d relu %d", ih, iw, c, stride,
             dil, relu);
    check_map(dst, ds, oh, ow, c, ref, mag, what);
    free(src); free(w); free(b); free(wp); free(dst); free(ref); free(mag);
}

static void test_dw(void **state)
{
    (void)state;
    static const int sizes[][2] = {{1, 1}, {2, 2}, {1, 3}, {3, 1}, {3, 3}, {4, 5},
                                   {5, 5}, {7, 9}, {9, 7}, {12, 12}, {15, 14}};
    static const int chans[] = {1, 3, 8, 37, 48};
    static const int sd[][2] = {{1, 1}, {2, 1}, {1, 2}, {1, 4}, {1, 5}, {2, 2}};
    int n = 0;
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
        for (size_t j = 0; j < sizeof(chans) / sizeof(chans[0]); j++)
            for (size_t k = 0; k < sizeof(sd) / sizeof(sd[0]); k++, n++)
                run_dw(sizes[i][0], sizes[i][1], chans[j], sd[k][0], sd[k][1], n & 1,
                       (n % 3) * 2, n % 2, n % 5 == 0);
    for (int r = 0; r < 30; r++) {
        const int stride = irand(1, 2);
        run_dw(irand(1, 30), irand(1, 30), irand(1, 64), stride, stride == 2 ? 1 : irand(1, 6),
               r & 1, irand(0, 4), irand(0, 4), r & 2);
    }
}

/* ------------------------------------------------------------- pointwise */

static void run_pw(int n, int cin, int cout, int relu)
{
    float *src = rand_buf((size_t)n * cin);
    float *w = rand_buf((size_t)cout * cin), *b = rand_buf(cout);
    float *wp = malloc(sizeof(float) * mo_pw_packed_size(cin, cout));
    float *dst = malloc(sizeof(float) * (size_t)n * cout);
    double *ref = malloc(sizeof(double) * (size_t)n * cout);
    double *mag = malloc(sizeof(double) * (size_t)n * cout);
    assert_true(wp && dst && ref && mag);
    for (size_t i = 0; i < (size_t)n * cout; i++)
        dst[i] = NAN;
    mo_pw_pack(wp, w, cin, cout);
    dsp.pw(dst, src, (size_t)n, cin, cout, wp, b, relu);
    naive_conv(ref, mag, src, (ptrdiff_t)n * cin, 1, n, cin, cout, 1, 1, 1, 0, 1, w, b, relu);
    char what[96];
    snprintf(what, sizeof(what), "pw n %d cin %d cout %d relu %d", n, cin, cout, relu);
    check_map(dst, (ptrdiff_t)n * cout, 1, n, cout, ref, mag, what);
    free(src); free(w); free(b); free(wp); free(dst); free(ref); free(mag);
}

static void test_pw(void **state)
{
    (void)state;
    static const int ns[] = {1, 2, 3, 4, 5, 7, 8, 49, 197};
    static const int cins[] = {1, 3, 16, 48, 255, 256, 257, 600};
    static const int couts[] = {1, 7, 15, 16, 17, 48, 100};
    int k = 0;
    for (size_t i = 0; i < sizeof(ns) / sizeof(ns[0]); i++)
        for (size_t j = 0; j < sizeof(cins) / sizeof(cins[0]); j++)
            for (size_t l = 0; l < sizeof(couts) / sizeof(couts[0]); l++, k++)
                run_pw(ns[i], cins[j], couts[l], k & 1);
    /* a pixel count that spans several cache blocks */
    run_pw(3001, 48, 48, 1);
    run_pw(1029, 1024, 33, 0);
    for (int r = 0; r < 20; r++)
        run_pw(irand(1, 300), irand(1, 700), irand(1, 90), r & 1);
}

/* ----------------------------------------------------------- SE and pool */

static void run_se(int n, int c, int cr)
{
    float *x = rand_buf((size_t)n * c), *x0 = malloc(sizeof(float) * (size_t)n * c);
    float *rw = rand_buf((size_t)cr * c), *rb = rand_buf(cr);
    float *ew = rand_buf((size_t)c * cr), *eb = rand_buf(c);
    float *tmp = malloc(sizeof(float) * (size_t)(c + cr));
    double *m = calloc((size_t)c, sizeof(double)), *r = calloc((size_t)cr, sizeof(double));
    assert_true(x0 && tmp && m && r);
    memcpy(x0, x, sizeof(float) * (size_t)n * c);
    dsp.se(x, (size_t)n, c, cr, rw, rb, ew, eb, tmp);
    for (int p = 0; p < n; p++)
        for (int ch = 0; ch < c; ch++)
            m[ch] += x0[(size_t)p * c + ch] / n;
    for (int j = 0; j < cr; j++) {
        double a = rb[j];
        for (int ch = 0; ch < c; ch++)
            a += (double)rw[(size_t)j * c + ch] * m[ch];
        r[j] = a > 0 ? a : 0;
    }
    for (int ch = 0; ch < c; ch++) {
        double a = eb[ch];
        for (int j = 0; j < cr; j++)
            a += (double)ew[(size_t)ch * cr + j] * r[j];
        const double e = 1.0 / (1.0 + exp(-a));
        for (int p = 0; p < n; p++) {
            double v = x0[(size_t)p * c + ch] * e;
            v = v > 0 ? v : 0;
            const double d = fabs(v - x[(size_t)p * c + ch]);
            if (!(d <= 1e-5 * (1.0 + fabs(v)))) {
                print_error("se n %d c %d cr %d: (%d,%d) got %g want %g\n", n, c, cr, p, ch,
                            x[(size_t)p * c + ch], v);
                fail();
            }
        }
    }
    free(x); free(x0); free(rw); free(rb); free(ew); free(eb); free(tmp); free(m); free(r);
}

static void test_se(void **state)
{
    (void)state;
    run_se(1, 16, 1);
    run_se(4, 64, 4);
    run_se(49, 1024, 64);
    run_se(196, 896, 56);
    run_se(7, 33, 2);
}

static void test_gap(void **state)
{
    (void)state;
    static const int cases[][2] = {{1, 1}, {1, 1024}, {49, 1024}, {3, 7}, {4096, 48}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const int n = cases[i][0], c = cases[i][1];
        float *src = rand_buf((size_t)n * c), *dst = malloc(sizeof(float) * c);
        assert_non_null(dst);
        dsp.gap(dst, src, (size_t)n, c);
        for (int ch = 0; ch < c; ch++) {
            double s = 0;
            for (int p = 0; p < n; p++)
                s += src[(size_t)p * c + ch];
            s /= n;
            assert_true(fabs(s - dst[ch]) <= 1e-6);
        }
        free(src); free(dst);
    }
}

static void test_dsp_init(void **state)
{
    (void)state;
    mo_conv_dsp d;
    memset(&d, 0, sizeof(d));
    mo_conv_dsp_init(&d, 0);
    assert_ptr_equal(d.stem3x3, mo_stem3x3_c);
    assert_ptr_equal(d.dw3x3, mo_dw3x3_c);
    assert_ptr_equal(d.pw, mo_pw_c);
    assert_ptr_equal(d.pw_acc, mo_pw_acc_c);
    assert_ptr_equal(d.se, mo_se_c);
    assert_ptr_equal(d.gap, mo_gap_c);
    mo_conv_dsp_init(&d, ~0u); /* every flag: never leaves a pointer unset */
    assert_non_null(d.stem3x3);
    assert_non_null(d.dw3x3);
    assert_non_null(d.pw);
    assert_non_null(d.pw_acc);
    assert_non_null(d.se);
    assert_non_null(d.gap);
}

/*
 * AArch64 builds with the NEON kernels (option simd; MO_HAVE_NEON comes from
 * backbone/meson.build): NEON is detected, replaces every entry of the table, and a mask
 * without it gives the C reference back.
 */
static void test_dsp_init_neon(void **state)
{
    (void)state;
#if defined(MO_HAVE_NEON)
    assert_true(mo_get_cpu_flags() & MO_CPU_FLAG_NEON);
    mo_conv_dsp d;
    mo_conv_dsp_init(&d, mo_get_cpu_flags());
    assert_ptr_not_equal(d.stem3x3, mo_stem3x3_c);
    assert_ptr_not_equal(d.dw3x3, mo_dw3x3_c);
    assert_ptr_not_equal(d.pw, mo_pw_c);
    assert_ptr_not_equal(d.pw_acc, mo_pw_acc_c);
    assert_ptr_not_equal(d.se, mo_se_c);
    assert_ptr_not_equal(d.gap, mo_gap_c);
    mo_set_cpu_flags_mask(~(unsigned)MO_CPU_FLAG_NEON);
    assert_int_equal(mo_get_cpu_flags() & MO_CPU_FLAG_NEON, 0);
    mo_conv_dsp_init(&d, mo_get_cpu_flags());
    mo_set_cpu_flags_mask(~0u);
    assert_ptr_equal(d.stem3x3, mo_stem3x3_c);
    assert_ptr_equal(d.dw3x3, mo_dw3x3_c);
    assert_ptr_equal(d.pw, mo_pw_c);
    assert_ptr_equal(d.pw_acc, mo_pw_acc_c);
    assert_ptr_equal(d.se, mo_se_c);
    assert_ptr_equal(d.gap, mo_gap_c);
#else
    skip(); /* not an AArch64 build with the NEON kernels */
#endif
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dsp_init),
        cmocka_unit_test(test_dsp_init_neon),
        cmocka_unit_test(test_stem),
        cmocka_unit_test(test_dw),
        cmocka_unit_test(test_pw),
        cmocka_unit_test(test_se),
        cmocka_unit_test(test_gap),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
