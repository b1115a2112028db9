/*
 * The loader toolkit (core/loader.c): the BatchNorm fold against a computation written out
 * here, tensor shape and missing-tensor refusals with their messages, the conv reader, the
 * record of what was read, every case of the backbone-pairing rule, and the model info.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mo_internal/loader.h"
#include "segment/seggen.h"

/* A file of m's tensors with mo.contents `contents` and the key/value pairs kv. */
static mo_file *open_file(const mg_model *m, const char *contents, const char *const *kv)
{
    uint8_t *bytes;
    const size_t n = serialize_with_meta(m, contents, kv, &bytes);
    mo_file *f = NULL;
    assert_int_equal(mo_file_open_memory(&f, bytes, n), MO_OK);
    free(bytes);
    return f;
}

static void set(mg_tensor *t, const float *v)
{
    memcpy(t->data, v, sizeof(float) * (size_t)mg_numel(t));
}

static void expect_msg(const char *word)
{
    if (!strstr(mo_last_error(), word))
        fail_msg("message \"%s\" lacks \"%s\"", mo_last_error(), word);
}

/* Values chosen so that every step is exact in float: t = gamma / sqrt(var + eps). */
static void test_bn_fold_exact(void **state)
{
    (void)state;
    /* channel 0: gamma 2, var 3 + eps 1 -> t = 1; channel 1: gamma 3, var 15 + 1 -> t = 0.75 */
    const float bn[8] = {2, 3, /* gamma */ 0.5f, -1, /* beta */ 1, 2, /* mean */ 3, 15 /* var */};
    float w[6] = {1, 2, 3, 4, -8, 0.5f}, b[2];
    assert_int_equal(mo_bn_fold(w, b, NULL, 2, 3, bn, 1.0, "bn"), MO_OK);
    const float we[6] = {1, 2, 3, 3, -6, 0.375f};
    for (int i = 0; i < 6; i++)
        assert_true(w[i] == we[i]);
    assert_true(b[0] == -0.5f); /* 0.5 - 1 * 1 */
    assert_true(b[1] == -2.5f); /* -1 - 2 * 0.75 */
    /* with a conv bias c: b = beta + (c - mean) t */
    float w2[6] = {1, 2, 3, 4, -8, 0.5f}, b2[2];
    const float cb[2] = {1, 2};
    assert_int_equal(mo_bn_fold(w2, b2, cb, 2, 3, bn, 1.0, "bn"), MO_OK);
    assert_true(b2[0] == 0.5f);  /* 0.5 + (1 - 1) * 1 */
    assert_true(b2[1] == -1.0f); /* -1 + (2 - 2) * 0.75 */
}

/* A general case: the fold rounds once from double, as written out here. */
static void test_bn_fold_double(void **state)
{
    (void)state;
    const int cout = 3, per = 4;
    const float g[3] = {1.5f, -0.3f, 0.9f}, be[3] = {0.1f, 0.2f, -0.7f},
                mu[3] = {-0.25f, 1.75f, 0.03f}, va[3] = {0.7f, 2.1f, 1e-4f};
    float bn[12], w[12], b[3], w0[12];
    for (int i = 0; i < 3; i++) {
        bn[i] = g[i];
        bn[3 + i] = be[i];
        bn[6 + i] = mu[i];
        bn[9 + i] = va[i];
    }
    for (int i = 0; i < 12; i++)
        w0[i] = w[i] = (float)(i - 5) * 0.37f;
    const double eps = 1e-5;
    assert_int_equal(mo_bn_fold(w, b, NULL, cout, per, bn, eps, "bn"), MO_OK);
    for (int o = 0; o < cout; o++) {
        const double t = (double)g[o] / sqrt((double)va[o] + eps);
        for (int j = 0; j < per; j++)
            assert_true(w[o * per + j] == (float)((double)w0[o * per + j] * t));
        assert_true(b[o] == (float)((double)be[o] - (double)mu[o] * t));
    }
    /* the per-channel scale is the same function the backbone's reparameterization uses */
    double t, shift;
    assert_int_equal(mo_bn_scale(g, be, mu, va, 2, eps, &t, &shift), MO_OK);
    assert_true(t == (double)g[2] / sqrt((double)va[2] + eps));
    assert_true(shift == (double)be[2] - (double)mu[2] * t);
}

static void test_bn_fold_refused(void **state)
{
    (void)state;
    float bn[8] = {1, 1, 0, 0, 0, 0, 1, -1}, w[2] = {1, 1}, b[2];
    assert_int_equal(mo_bn_fold(w, b, NULL, 2, 1, bn, 1e-5, "head.bn"), MO_EFORMAT);
    expect_msg("head.bn.running_var[1]");
    bn[7] = 1;
    bn[0] = NAN; /* gamma of channel 0 */
    assert_int_equal(mo_bn_fold(w, b, NULL, 2, 1, bn, 1e-5, "head.bn"), MO_EFORMAT);
    expect_msg("channel 0");
    bn[0] = 1;
    bn[6] = 0; /* var 0, eps 0 */
    assert_int_equal(mo_bn_fold(w, b, NULL, 2, 1, bn, 0.0, "head.bn"), MO_EFORMAT);
}

static void test_tensor_shapes(void **state)
{
    (void)state;
    mg_model m = {0};
    mg_add(&m, "h.w", 2, 2, 3, 0, 0, -1, 1);
    mg_add(&m, "h.big", 4, 2, 70000, 1, 1, -1, 1);
    mo_file *f = open_file(&m, "[\"cls\"]", NULL);
    mo_loader L;
    mo_loader_init(&L, f, "test head", "h.", 1e-5);
    float dst[6];
    const int64_t good[2] = {2, 3}, bad[2] = {3, 2}, rank[3] = {2, 3, 1};
    assert_int_equal(mo_load_tensor(&L, "h.w", 2, bad, dst, "3 classes x 2 channels"),
                     MO_EMISMATCH);
    expect_msg("test head does not fit: h.w is [2,3], expected [3,2] (3 classes x 2 channels)");
    assert_int_equal(mo_load_tensor(&L, "h.w", 3, rank, dst, NULL), MO_EMISMATCH);
    expect_msg("h.w is [2,3], expected [2,3,1]");
    assert_int_equal(mo_load_tensor(&L, "h.nope", 2, good, dst, NULL), MO_EFORMAT);
    expect_msg("test head: tensor h.nope is missing");
    /* nothing read yet: every h. tensor is a stray */
    assert_int_equal(mo_loader_check_all(&L, MO_EMISMATCH, "hint"), MO_EMISMATCH);
    assert_int_equal(mo_load_tensor(&L, "h.w", 2, good, dst, NULL), MO_OK);
    for (int i = 0; i < 6; i++)
        assert_true(dst[i] == m.t[0].data[i]);
    int64_t shape[4];
    assert_int_equal(mo_load_shape(&L, "h.w", 2, 65536, shape), MO_OK);
    assert_true(shape[0] == 2 && shape[1] == 3);
    assert_int_equal(mo_load_shape(&L, "h.w", 4, 65536, shape), MO_EMISMATCH);
    assert_int_equal(mo_load_shape(&L, "h.big", 4, 65536, shape), MO_EMISMATCH);
    expect_msg("h.big has dimension 70000");
    /* h.big was never read: named, with the caller's code and hint */
    assert_int_equal(mo_loader_check_all(&L, MO_EFORMAT, "the head has no such tensor"),
                     MO_EFORMAT);
    expect_msg("test head does not fit: the file has tensor h.big, but the head has no such");
    mo_loader_release(&L);
    mo_file_close(&f);
    mg_free(&m);
}

/* The conv reader: weight + BatchNorm folded with the loader's eps, or weight + bias. */
static void test_load_conv(void **state)
{
    (void)state;
    mg_model m = {0};
    mg_add(&m, "h.0.weight", 4, 2, 1, 1, 1, -1, 1);
    mg_add(&m, "h.1.weight", 1, 2, 0, 0, 0, -1, 1);
    mg_add(&m, "h.1.bias", 1, 2, 0, 0, 0, -1, 1);
    mg_add(&m, "h.1.running_mean", 1, 2, 0, 0, 0, -1, 1);
    mg_add(&m, "h.1.running_var", 1, 2, 0, 0, 0, -1, 1);
    mg_add(&m, "h.2.weight", 4, 3, 2, 1, 1, -1, 1);
    mg_add(&m, "h.2.bias", 1, 3, 0, 0, 0, -1, 1);
    set(mg_find(&m, "h.0.weight"), (const float[]){4, -2});
    set(mg_find(&m, "h.1.weight"), (const float[]){2, 3});
    set(mg_find(&m, "h.1.bias"), (const float[]){0.5f, -1});
    set(mg_find(&m, "h.1.running_mean"), (const float[]){1, 2});
    set(mg_find(&m, "h.1.running_var"), (const float[]){3, 15});
    mo_file *f = open_file(&m, "[\"cls\"]", NULL);
    mo_loader L;
    mo_loader_init(&L, f, "test head", "h.", 1.0);
    float w[6], b[3];
    assert_int_equal(mo_load_conv(&L, "h.0", "h.1", 2, 1, 1, w, b, NULL), MO_OK);
    assert_true(w[0] == 4.0f && w[1] == -1.5f);  /* t = 1, 0.75 */
    assert_true(b[0] == -0.5f && b[1] == -2.5f); /* beta - mean t */
    assert_int_equal(mo_load_conv(&L, "h.2", NULL, 3, 1, 1, w, b, "x"), MO_EMISMATCH);
    expect_msg("h.2.weight is [3,2,1,1], expected [3,1,1,1] (x)");
    assert_int_equal(mo_load_conv(&L, "h.2", NULL, 3, 2, 1, w, b, NULL), MO_OK);
    assert_true(b[2] == mg_find(&m, "h.2.bias")->data[2]);
    assert_int_equal(mo_loader_check_all(&L, MO_EFORMAT, "-"), MO_OK);
    /* the BatchNorm's eps is the loader's: 0 makes var 3 -> t = 2 / sqrt(3) */
    mo_loader_release(&L);
    mo_loader_init(&L, f, "test head", "h.", 0.0);
    assert_int_equal(mo_load_conv(&L, "h.0", "h.1", 2, 1, 1, w, b, NULL), MO_OK);
    assert_true(w[0] == (float)(4.0 * (2.0 / sqrt(3.0))));
    /* a BatchNorm tensor missing is named */
    mo_loader_release(&L);
    mo_file_close(&f);
    mg_remove(&m, "h.1.running_var");
    f = open_file(&m, "[\"cls\"]", NULL);
    mo_loader_init(&L, f, "test head", "h.", 1.0);
    assert_int_equal(mo_load_conv(&L, "h.0", "h.1", 2, 1, 1, w, b, NULL), MO_EFORMAT);
    expect_msg("tensor h.1.running_var is missing");
    mo_loader_release(&L);
    mo_file_close(&f);
    mg_free(&m);
}

/* Every case of the pairing rule (weights/FORMAT.md "Pairing"). */
static void test_pairing(void **state)
{
    (void)state;
    const char *const other = "0123456789abcdef", *const mine = "fedcba9876543210";
    mg_model head = {0};
    mg_add(&head, "h.w", 1, 2, 0, 0, 0, -1, 1);
    /* head-only: names its backbone by variant and digest */
    mo_file *f = open_file(&head, "[\"cls\"]",
                           (const char *[]){"mo.variant", "s0", "mo.backbone_digest", mine,
                                            "mo.backbone_form", NULL, NULL});
    assert_int_equal(mo_pair_check(f, "test head", "s0", mine), MO_OK);
    assert_int_equal(mo_pair_check(f, "test head", "s0", other), MO_EMISMATCH);
    expect_msg("test head names backbone MobileOne-s0 fedcba9876543210, but this backbone is "
               "MobileOne-s0 0123456789abcdef");
    assert_int_equal(mo_pair_check(f, "test head", "s1", mine), MO_EMISMATCH);
    expect_msg("MobileOne-s1");
    mo_file_close(&f);
    /* head-only without the digest, or without the variant: the file is incomplete */
    f = open_file(&head, "[\"cls\"]", (const char *[]){"mo.variant", "s0", "mo.backbone_form",
                                                       NULL, NULL});
    assert_int_equal(mo_pair_check(f, "test head", "s0", mine), MO_EFORMAT);
    expect_msg("mo.backbone_digest is missing");
    mo_file_close(&f);
    f = open_file(&head, "[\"cls\"]", (const char *[]){"mo.backbone_digest", mine,
                                                       "mo.backbone_form", NULL, NULL});
    assert_int_equal(mo_pair_check(f, "test head", "s0", mine), MO_EFORMAT);
    expect_msg("mo.variant is missing");
    mo_file_close(&f);

    /* a file with backbone tensors pairs with that backbone, named or not */
    mg_add(&head, "backbone.stage0.reparam_conv.weight", 4, 2, 3, 3, 3, -1, 1);
    f = open_file(&head, "[\"backbone\",\"cls\"]",
                  (const char *[]){"mo.variant", "s0", "mo.backbone_form", NULL, NULL});
    char own[17];
    assert_int_equal(mo_file_digest(f, "backbone.", own), MO_OK);
    assert_int_equal(mo_pair_check(f, "test head", "s0", own), MO_OK);
    assert_int_equal(mo_pair_check(f, "test head", "s0", other), MO_EMISMATCH);
    expect_msg(own);
    mo_file_close(&f);
    /* ... and a digest it names must agree: a file naming another backbone than its own
     * is refused with either */
    f = open_file(&head, "[\"backbone\",\"cls\"]",
                  (const char *[]){"mo.variant", "s0", "mo.backbone_digest", other,
                                   "mo.backbone_form", NULL, NULL});
    assert_int_equal(mo_pair_check(f, "test head", "s0", own), MO_EMISMATCH);
    assert_int_equal(mo_pair_check(f, "test head", "s0", other), MO_EMISMATCH);
    mo_file_close(&f);
    f = open_file(&head, "[\"backbone\",\"cls\"]",
                  (const char *[]){"mo.variant", "s0", "mo.backbone_digest", own,
                                   "mo.backbone_form", NULL, NULL});
    assert_int_equal(mo_pair_check(f, "test head", "s0", own), MO_OK);
    mo_file_close(&f);
    mg_free(&head);
}

static void test_model_info(void **state)
{
    (void)state;
    mg_model m = {0};
    mg_add(&m, "h.w", 1, 2, 0, 0, 0, -1, 1);
    mo_file *f = open_file(&m, "[\"det\"]",
                           (const char *[]){"det.classes", "[\"bg\",\"a\",\"b\"]", NULL});
    mo_model_info info;
    assert_int_equal(mo_model_info_read(f, "det", &info), MO_OK);
    assert_int_equal(info.contents, MO_HOLDS_DET);
    assert_int_equal(info.num_classes, 3);
    assert_string_equal(info.classes[2], "b");
    assert_int_equal(info.input_h, 320); /* det.input_size default */
    assert_int_equal(info.cls_crop, 224);
    assert_int_equal(info.cls_resize, 256);
    assert_int_equal(info.seg_output_stride, 16);
    assert_true(info.mean[0] == 0.485f && info.std[2] == 0.225f);
    mo_model_info_release(&info);
    assert_null(info.classes);
    /* a head the file does not hold */
    assert_int_equal(mo_model_info_read(f, "seg", &info), MO_EFORMAT);
    expect_msg("no segmentation head");
    mo_file_close(&f);
    /* values, and a bad one named */
    f = open_file(&m, "[\"backbone\",\"cls\"]",
                  (const char *[]){"cls.classes", "[\"x\"]", "cls.crop", "192", "mo.std",
                                   "[0.5,0.5,0.5]", "mo.input_size", "[200,300]", NULL});
    assert_int_equal(mo_model_info_read(f, NULL, &info), MO_OK);
    assert_int_equal(info.contents, MO_HOLDS_BACKBONE | MO_HOLDS_CLS);
    assert_null(info.classes);
    assert_int_equal(info.cls_crop, 192);
    assert_int_equal(info.input_h, 200);
    assert_int_equal(info.input_w, 300);
    assert_true(info.std[1] == 0.5f);
    mo_file_close(&f);
    f = open_file(&m, "[\"cls\"]", (const char *[]){"cls.classes", "[\"x\"]", "cls.crop", "0",
                                                    NULL});
    assert_int_equal(mo_model_info_read(f, "cls", &info), MO_EFORMAT);
    expect_msg("cls.crop = 0 must be positive");
    assert_null(info.classes);
    mo_file_close(&f);
    mg_free(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bn_fold_exact),   cmocka_unit_test(test_bn_fold_double),
        cmocka_unit_test(test_bn_fold_refused), cmocka_unit_test(test_tensor_shapes),
        cmocka_unit_test(test_load_conv),       cmocka_unit_test(test_pairing),
        cmocka_unit_test(test_model_info),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
