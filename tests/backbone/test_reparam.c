/*
 * Reparameterization test: tiny train-time MobileOne modules built by hand (k conv
 * branches + BN, 1x1 scale branch + BN, BN identity), run branch by branch with a naive
 * convolution in double, and compared with one naive conv using the weights and bias
 * that mo_reparam() fused. Also under dilation (3x3 with dilation d and padding d, the
 * 1x1 branch unchanged), at stride 2, with groups between 1 and channels, and a custom eps.
 *
 * Tolerance: 1e-5 * (1 + sum |w x|) of the fused conv per element (the fused weights
 * are rounded to float once).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mobileone_internal.h"
#include "naive.h"

typedef struct mod_case {
    int cin, cout, groups, k, nconv, scale, skip, stride, dil, h, w;
    double eps;
} mod_case;

static float *rnd(size_t n, float lo, float hi)
{
    float *b = malloc((n ? n : 1) * sizeof(float));
    assert_non_null(b);
    for (size_t i = 0; i < n; i++)
        b[i] = lo + (frand() + 1.0f) * 0.5f * (hi - lo);
    return b;
}

static void rnd_bn(mo_bn *bn, int c, float **own)
{
    own[0] = rnd(c, 0.5f, 1.5f);   /* gamma */
    own[1] = rnd(c, -0.2f, 0.2f);  /* beta */
    own[2] = rnd(c, -0.2f, 0.2f);  /* mean */
    own[3] = rnd(c, 0.5f, 2.0f);   /* var */
    *bn = (mo_bn){own[0], own[1], own[2], own[3]};
}

/* acc += BN(y) */
static void add_bn(double *acc, const double *y, size_t npix, int c, const mo_bn *bn,
                   double eps)
{
    for (size_t p = 0; p < npix; p++)
        for (int ch = 0; ch < c; ch++) {
            const double v = y[p * c + ch];
            acc[p * c + ch] += bn->gamma[ch] * (v - bn->mean[ch]) / sqrt(bn->var[ch] + eps) +
                               bn->beta[ch];
        }
}

static void run_case(const mod_case *mc)
{
    const int cg = mc->cin / mc->groups, kk = mc->k * mc->k, c = mc->cout;
    const int pad = mc->dil * (mc->k / 2);
    const int oh = MO_CONV_OUT(mc->h, mc->stride), ow = MO_CONV_OUT(mc->w, mc->stride);
    const size_t npix = (size_t)oh * ow;
    float *x = rnd((size_t)mc->h * mc->w * mc->cin, -1.0f, 1.0f);
    float *bn_own[16][4];
    int nown = 0;

    const float *conv_w[8];
    mo_bn conv_bn[8];
    float *wown[8];
    for (int i = 0; i < mc->nconv; i++) {
        wown[i] = rnd((size_t)c * cg * kk, -1.0f, 1.0f);
        conv_w[i] = wown[i];
        rnd_bn(&conv_bn[i], c, bn_own[nown++]);
    }
    mo_branches br = {.cout = c, .cin_g = cg, .k = mc->k, .nconv = mc->nconv,
                      .conv_w = conv_w, .conv_bn = conv_bn, .has_skip = mc->skip,
                      .eps = mc->eps};
    float *scale_w = NULL;
    if (mc->scale) {
        scale_w = rnd((size_t)c * cg, -1.0f, 1.0f);
        br.scale_w = scale_w;
        rnd_bn(&br.scale_bn, c, bn_own[nown++]);
    }
    if (mc->skip)
        rnd_bn(&br.skip_bn, c, bn_own[nown++]);

    /* branches, naively */
    double *sum = calloc(npix * c, sizeof(double)), *y = malloc(sizeof(double) * npix * c);
    assert_true(sum && y);
    for (int i = 0; i < mc->nconv; i++) {
        naive_conv(y, NULL, x, (ptrdiff_t)mc->w * mc->cin, mc->h, mc->w, mc->cin, c, mc->groups,
                   mc->k, mc->stride, pad, mc->dil, conv_w[i], NULL, 0);
        add_bn(sum, y, npix, c, &conv_bn[i], mc->eps);
    }
    if (mc->scale) {
        naive_conv(y, NULL, x, (ptrdiff_t)mc->w * mc->cin, mc->h, mc->w, mc->cin, c, mc->groups,
                   1, mc->stride, 0, 1, scale_w, NULL, 0);
        add_bn(sum, y, npix, c, &br.scale_bn, mc->eps);
    }
    if (mc->skip) {
        assert_int_equal(mc->stride, 1);
        assert_int_equal(mc->cin, mc->cout);
        for (size_t p = 0; p < npix * c; p++)
            y[p] = x[p];
        add_bn(sum, y, npix, c, &br.skip_bn, mc->eps);
    }

    /* fused */
    float *fw = malloc(sizeof(float) * (size_t)c * cg * kk), *fb = malloc(sizeof(float) * c);
    double *fy = malloc(sizeof(double) * npix * c), *mag = malloc(sizeof(double) * npix * c);
    assert_true(fw && fb && fy && mag);
    assert_int_equal(mo_reparam(&br, fw, fb), MO_OK);
    naive_conv(fy, mag, x, (ptrdiff_t)mc->w * mc->cin, mc->h, mc->w, mc->cin, c, mc->groups,
               mc->k, mc->stride, pad, mc->dil, fw, fb, 0);
    double worst = 0;
    for (size_t i = 0; i < npix * c; i++) {
        const double d = fabs(fy[i] - sum[i]);
        if (!(d <= 1e-5 * (1.0 + mag[i]))) {
            print_error("cin %d cout %d groups %d k %d nconv %d scale %d skip %d stride %d "
                        "dil %d: element %zu fused %.9g branches %.9g\n", mc->cin, mc->cout,
                        mc->groups, mc->k, mc->nconv, mc->scale, mc->skip, mc->stride, mc->dil,
                        i, fy[i], sum[i]);
            fail();
        }
        if (d > worst)
            worst = d;
    }

    free(x); free(sum); free(y); free(fw); free(fb); free(fy); free(mag); free(scale_w);
    for (int i = 0; i < mc->nconv; i++)
        free(wown[i]);
    for (int i = 0; i < nown; i++)
        for (int j = 0; j < 4; j++)
            free(bn_own[i][j]);
}

static void test_depthwise(void **state)
{
    (void)state;
    /* cin cout groups k nconv scale skip stride dil h w eps */
    const mod_case cases[] = {
        {5, 5, 5, 3, 3, 1, 1, 1, 1, 6, 7, 1e-5},  /* s0-like dw, stride 1 */
        {5, 5, 5, 3, 4, 1, 1, 1, 2, 6, 7, 1e-5},  /* dilated */
        {5, 5, 5, 3, 4, 1, 1, 1, 4, 5, 5, 1e-5},  /* dilation beyond the map */
        {8, 8, 8, 3, 1, 1, 1, 1, 1, 1, 1, 1e-5},  /* 1x1 map */
        {6, 6, 6, 3, 4, 1, 0, 2, 1, 7, 9, 1e-5},  /* first block of a stage: stride 2 */
        {6, 6, 6, 3, 1, 1, 0, 2, 1, 2, 2, 1e-3},  /* one branch, 2x2 map, custom eps */
        {4, 4, 4, 3, 0, 0, 1, 1, 1, 3, 4, 1e-5},  /* identity only */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        run_case(&cases[i]);
}

static void test_pointwise(void **state)
{
    (void)state;
    const mod_case cases[] = {
        {6, 6, 1, 1, 2, 0, 1, 1, 1, 4, 5, 1e-5},   /* in == out: identity at channel i */
        {4, 7, 1, 1, 4, 0, 0, 1, 1, 3, 3, 1e-5},   /* widening, no identity */
        {16, 16, 1, 1, 4, 0, 1, 1, 1, 2, 3, 1e-5},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        run_case(&cases[i]);
}

static void test_stem_and_groups(void **state)
{
    (void)state;
    const mod_case cases[] = {
        {3, 5, 1, 3, 1, 1, 0, 2, 1, 9, 8, 1e-5},   /* stem: 1 branch + scale, stride 2 */
        {4, 4, 2, 3, 2, 1, 1, 1, 1, 5, 6, 1e-5},   /* groups 2: identity at i % 2 */
        {6, 6, 3, 3, 2, 1, 1, 1, 2, 5, 6, 1e-5},   /* groups 3, dilated */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        run_case(&cases[i]);
}

static void test_bad_variance(void **state)
{
    (void)state;
    const float w[4] = {1, 1, 1, 1}, gamma[1] = {1}, beta[1] = {0}, mean[1] = {0};
    const float *conv_w[1] = {w};
    float out_w[1], out_b[1];
    const float bad_vars[] = {-1.0f, -2e-5f, 0.0f, NAN, INFINITY};
    for (size_t i = 0; i < sizeof(bad_vars) / sizeof(bad_vars[0]); i++) {
        mo_bn bn = {gamma, beta, mean, &bad_vars[i]};
        mo_branches br = {.cout = 1, .cin_g = 1, .k = 1, .nconv = 1, .conv_w = conv_w,
                          .conv_bn = &bn, .eps = i == 2 ? 0.0 : 1e-5};
        assert_int_equal(mo_reparam(&br, out_w, out_b), MO_EFORMAT);
    }
    /* var = 0 with eps > 0 is fine */
    const float zero[1] = {0};
    mo_bn bn = {gamma, beta, mean, zero};
    mo_branches br = {.cout = 1, .cin_g = 1, .k = 1, .nconv = 1, .conv_w = conv_w,
                      .conv_bn = &bn, .eps = 1e-4};
    assert_int_equal(mo_reparam(&br, out_w, out_b), MO_OK);
    assert_float_equal(out_w[0], 100.0f, 1e-3f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_depthwise),
        cmocka_unit_test(test_pointwise),
        cmocka_unit_test(test_stem_and_groups),
        cmocka_unit_test(test_bad_variance),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
