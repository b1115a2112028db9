/*
 * Backbone API tests on model files built in memory (tests/backbone/modelgen.h):
 * every variant opens in both forms with the widths of REFERENCE.md, runs at every
 * output stride with the expected map sizes, and refuses bad input with the documented
 * code: unknown variant, missing tensor, wrong shape, fused and train-time tensors mixed
 * in one module, stray tensors, bad BatchNorm data, inputs larger than the session,
 * output strides below the session minimum, NULL arguments.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mo/backbone.h"
#include "modelgen.h"

/* --------------------------------------------------------------- helpers */

/* Serialize m, open it as a file and a backbone; returns mo_backbone_open's code. */
static int open_model(const mg_model *m, mo_file **f, mo_backbone **bb,
                      const mo_backbone_settings *s)
{
    uint8_t *buf;
    const size_t n = mg_serialize(m, &buf);
    int ret = mo_file_open_memory(f, buf, n);
    free(buf);
    if (ret != MO_OK) {
        print_error("mo_file_open_memory: %s (%s)\n", mo_strerror(ret), mo_last_error());
        fail();
    }
    *bb = NULL;
    return mo_backbone_open(bb, *f, s);
}

/* Expect open to fail with `code` and mo_last_error() to contain `word`. */
static void expect_refused(const mg_model *m, int code, const char *word)
{
    mo_file *f = NULL;
    mo_backbone *bb = (mo_backbone *)&bb; /* must be reset to NULL */
    const int ret = open_model(m, &f, &bb, NULL);
    if (ret != code || (word && !strstr(mo_last_error(), word))) {
        print_error("expected %s with \"%s\", got %s: %s\n", mo_strerror(code), word ? word : "",
                    mo_strerror(ret), mo_last_error());
        fail();
    }
    printf("  refused as expected, %s: %s\n", mo_strerror(ret), mo_last_error());
    assert_null(bb);
    mo_file_close(&f);
}

static float *random_input(int h, ptrdiff_t stride)
{
    float *x = malloc(sizeof(float) * (size_t)h * (size_t)stride);
    assert_non_null(x);
    for (size_t i = 0; i < (size_t)h * (size_t)stride; i++)
        x[i] = frand() * 2.0f;
    return x;
}

static mo_session *open_session(const mo_backbone *bb, int h, int w, int min_os)
{
    mo_session_settings s;
    mo_session_default_settings(&s);
    s.max_height = h;
    s.max_width = w;
    s.min_output_stride = min_os;
    mo_session *ss = NULL;
    assert_int_equal(mo_session_open(&ss, bb, &s), MO_OK);
    assert_non_null(ss);
    return ss;
}

static int out_size(int n, int times) /* n halved (rounding up) `times` times */
{
    while (times-- > 0)
        n = (n + 1) / 2;
    return n;
}

/* Run at every output stride and check sizes, strides, channels and finiteness. */
static void check_runs(const mo_backbone *bb, const struct mg_variant *v, int h, int w)
{
    mo_session *ss = open_session(bb, h, w, 8);
    float *x = random_input(h, (ptrdiff_t)w * 3);
    mo_tensor in = {x, h, w, 3, (ptrdiff_t)w * 3};
    static const int strides[3] = {32, 16, 8};
    for (int i = 0; i < 3; i++) {
        const int os = strides[i];
        mo_features f;
        memset(&f, 0, sizeof(f));
        const int ret = mo_backbone_run(ss, &in, os, &f);
        if (ret != MO_OK)
            fail_msg("run %s os %d: %s (%s)", v->name, os, mo_strerror(ret), mo_last_error());
        for (int l = 0; l < MO_NUM_LEVELS; l++) {
            /* stage l+1 halves the map l+2 times in all, unless dilated */
            int halvings = l + 2;
            int nominal = 4 << l;
            if (nominal > os) {
                nominal = os;
                halvings = os == 16 ? 4 : 3;
            }
            assert_int_equal(f.stride[l], nominal);
            assert_int_equal(f.level[l].h, out_size(h, halvings));
            assert_int_equal(f.level[l].w, out_size(w, halvings));
            assert_int_equal(f.level[l].c, v->width[l + 1]);
            assert_int_equal(f.level[l].row_stride, (ptrdiff_t)f.level[l].w * f.level[l].c);
            const size_t n = (size_t)f.level[l].h * f.level[l].w * f.level[l].c;
            for (size_t j = 0; j < n; j++)
                if (!(f.level[l].data[j] >= 0.0f && f.level[l].data[j] < 1e30f))
                    fail_msg("%s os %d level %d: element %zu is %g (not ReLU output)", v->name,
                             os, l, j, f.level[l].data[j]);
        }
        assert_non_null(f.pooled);
        for (int c = 0; c < v->width[4]; c++) {
            double s = 0;
            const mo_tensor *t = &f.level[3];
            for (int p = 0; p < t->h * t->w; p++)
                s += t->data[(size_t)p * t->c + c];
            s /= t->h * t->w;
            assert_true(fabs(s - f.pooled[c]) <= 1e-5 * (1.0 + fabs(s)));
        }
    }
    free(x);
    mo_session_close(&ss);
    assert_null(ss);
}

/* ------------------------------------------------------------------ tests */

static void test_variants(void **state)
{
    (void)state;
    for (int i = 0; i < 5; i++) {
        const struct mg_variant *v = &mg_variants[i];
        for (int fused = 1; fused >= 0; fused--) {
            if (!fused && i > 0 && i < 4)
                continue; /* train-time form: s0 (k = 4) and s4 (SE) cover the cases */
            mg_model m;
            mg_build(&m, v->name, fused, "backbone.");
            mo_file *f = NULL;
            mo_backbone *bb = NULL;
            const int ret = open_model(&m, &f, &bb, NULL);
            if (ret != MO_OK)
                fail_msg("%s %s: %s (%s)", v->name, m.form, mo_strerror(ret), mo_last_error());
            assert_string_equal(mo_backbone_variant(bb), v->name);
            for (int l = 0; l < MO_NUM_LEVELS; l++)
                assert_int_equal(mo_backbone_channels(bb, l), v->width[l + 1]);
            char digest[17];
            assert_int_equal(mo_file_digest(f, "backbone.", digest), MO_OK);
            assert_string_equal(mo_backbone_digest(bb), digest);
            mo_file_close(&f); /* the backbone does not need the file any more */
            check_runs(bb, v, 37, 53);
            mo_backbone_close(&bb);
            assert_null(bb);
            mg_free(&m);
        }
    }
}

static void test_tiny_inputs(void **state)
{
    (void)state;
    mg_model m;
    mg_build(&m, "s0", 1, "backbone.");
    mo_file *f = NULL;
    mo_backbone *bb = NULL;
    assert_int_equal(open_model(&m, &f, &bb, NULL), MO_OK);
    static const int sizes[][2] = {{1, 1}, {2, 2}, {1, 7}, {7, 1}, {3, 5}, {33, 31}};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
        check_runs(bb, &mg_variants[0], sizes[i][0], sizes[i][1]);
    mo_backbone_close(&bb);
    mo_file_close(&f);
    mg_free(&m);
}

/* Stages before the dilated ones do not depend on the output stride; the input row
 * stride and earlier runs of other sizes on the same session change nothing. */
static void test_consistency(void **state)
{
    (void)state;
    mg_model m;
    mg_build(&m, "s0", 1, "backbone.");
    mo_file *f = NULL;
    mo_backbone *bb = NULL;
    assert_int_equal(open_model(&m, &f, &bb, NULL), MO_OK);
    const int h = 45, w = 38;
    mo_session *s1 = open_session(bb, 64, 64, 8), *s2 = open_session(bb, h, w, 8);
    float *x = random_input(h, (ptrdiff_t)w * 3);
    const ptrdiff_t padded = (ptrdiff_t)w * 3 + 7;
    float *xp = random_input(h, padded);
    for (int y = 0; y < h; y++)
        memcpy(xp + y * padded, x + (size_t)y * w * 3, sizeof(float) * (size_t)w * 3);
    mo_tensor in = {x, h, w, 3, (ptrdiff_t)w * 3}, inp = {xp, h, w, 3, padded};

    float *keep[MO_NUM_LEVELS];
    size_t nkeep[MO_NUM_LEVELS];
    mo_features a, b;
    assert_int_equal(mo_backbone_run(s2, &in, 32, &a), MO_OK);
    for (int l = 0; l < MO_NUM_LEVELS; l++) {
        nkeep[l] = (size_t)a.level[l].h * a.level[l].w * a.level[l].c;
        keep[l] = malloc(sizeof(float) * nkeep[l]);
        assert_non_null(keep[l]);
        memcpy(keep[l], a.level[l].data, sizeof(float) * nkeep[l]);
    }
    /* another session, a bigger input first, then a padded row stride */
    float *big = random_input(64, 64 * 3);
    mo_tensor inb = {big, 64, 64, 3, 64 * 3};
    assert_int_equal(mo_backbone_run(s1, &inb, 8, &b), MO_OK);
    assert_int_equal(mo_backbone_run(s1, &inp, 32, &b), MO_OK);
    for (int l = 0; l < MO_NUM_LEVELS; l++)
        assert_memory_equal(b.level[l].data, keep[l], sizeof(float) * nkeep[l]);
    /* OS 16: stages 1-3 unchanged; OS 8: stages 1-2 unchanged */
    assert_int_equal(mo_backbone_run(s1, &in, 16, &b), MO_OK);
    for (int l = 0; l < 3; l++)
        assert_memory_equal(b.level[l].data, keep[l], sizeof(float) * nkeep[l]);
    assert_int_equal(mo_backbone_run(s1, &in, 8, &b), MO_OK);
    for (int l = 0; l < 2; l++)
        assert_memory_equal(b.level[l].data, keep[l], sizeof(float) * nkeep[l]);
    /* the level views of a session stay put across runs of one size */
    assert_int_equal(mo_backbone_run(s2, &in, 32, &b), MO_OK);
    for (int l = 0; l < MO_NUM_LEVELS; l++)
        assert_ptr_equal(a.level[l].data, b.level[l].data);

    for (int l = 0; l < MO_NUM_LEVELS; l++)
        free(keep[l]);
    free(x);
    free(xp);
    free(big);
    mo_session_close(&s1);
    mo_session_close(&s2);
    mo_backbone_close(&bb);
    mo_file_close(&f);
    mg_free(&m);
}

static void test_bad_variant(void **state)
{
    (void)state;
    mg_model m;
    mg_build(&m, "s0", 1, "backbone.");
    snprintf(m.variant, sizeof(m.variant), "s5");
    expect_refused(&m, MO_EUNSUPPORTED, "s5");
    snprintf(m.variant, sizeof(m.variant), "S0");
    expect_refused(&m, MO_EUNSUPPORTED, "S0");
    m.variant[0] = '\0'; /* no mo.variant at all */
    expect_refused(&m, MO_EFORMAT, "mo.variant");
    snprintf(m.variant, sizeof(m.variant), "s0");
    m.arch = "resnet";
    expect_refused(&m, MO_EUNSUPPORTED, "resnet");
    m.arch = NULL; /* mo.arch absent: accepted */
    mo_file *f = NULL;
    mo_backbone *bb = NULL;
    assert_int_equal(open_model(&m, &f, &bb, NULL), MO_OK);
    mo_backbone_close(&bb);
    mo_file_close(&f);
    /* s1 weights labelled s0: the shapes give it away */
    mg_free(&m);
    mg_build(&m, "s1", 1, "backbone.");
    snprintf(m.variant, sizeof(m.variant), "s0");
    expect_refused(&m, MO_EMISMATCH, "stage0.reparam_conv.weight");
    mg_free(&m);
}

static void test_missing_tensor(void **state)
{
    (void)state;
    mg_model m;
    mg_build(&m, "s0", 1, "backbone.");
    assert_int_equal(mg_remove(&m, "backbone.stage2.3.reparam_conv.bias"), 1);
    expect_refused(&m, MO_EFORMAT, "backbone.stage2.3.reparam_conv.bias");
    mg_free(&m);

    mg_build(&m, "s0", 1, "backbone.");
    assert_int_equal(mg_remove(&m, "backbone.stage3.4."), 2); /* a whole module */
    expect_refused(&m, MO_EFORMAT, "backbone.stage3.4.");
    mg_free(&m);

    mg_build(&m, "s0", 0, "backbone.");
    assert_int_equal(mg_remove(&m, "backbone.stage1.2.rbr_skip.running_var"), 1);
    expect_refused(&m, MO_EFORMAT, "backbone.stage1.2.rbr_skip.running_var");
    mg_free(&m);

    mg_build(&m, "s0", 0, "backbone.");
    assert_int_equal(mg_remove(&m, "backbone.stage4.1.rbr_conv.3."), 5); /* k = 4 needs 4 */
    expect_refused(&m, MO_EFORMAT, "backbone.stage4.1.rbr_conv.3.conv.weight");
    mg_free(&m);

    mg_build(&m, "s4", 1, "backbone.");
    assert_int_equal(mg_remove(&m, "backbone.stage3.19.se.expand.bias"), 1);
    expect_refused(&m, MO_EFORMAT, "backbone.stage3.19.se.expand.bias");
    mg_free(&m);
}

static void test_wrong_shape(void **state)
{
    (void)state;
    mg_model m;
    mg_build(&m, "s0", 1, "backbone.");
    mg_add(&m, "backbone.stage0.reparam_conv.weight", 4, 48, 3, 1, 1, -1, 1);
    expect_refused(&m, MO_EMISMATCH, "backbone.stage0.reparam_conv.weight");
    mg_free(&m);

    mg_build(&m, "s0", 1, "backbone.");
    mg_add(&m, "backbone.stage4.1.reparam_conv.bias", 1, 1023, 0, 0, 0, -1, 1);
    expect_refused(&m, MO_EMISMATCH, "backbone.stage4.1.reparam_conv.bias");
    mg_free(&m);

    mg_build(&m, "s0", 0, "backbone.");
    mg_add(&m, "backbone.stage2.5.rbr_conv.1.bn.running_mean", 2, 128, 1, 0, 0, -1, 1);
    expect_refused(&m, MO_EMISMATCH, "backbone.stage2.5.rbr_conv.1.bn.running_mean");
    mg_free(&m);

    mg_build(&m, "s4", 1, "backbone.");
    mg_add(&m, "backbone.stage4.0.se.reduce.weight", 4, 57, 896, 1, 1, -1, 1);
    expect_refused(&m, MO_EMISMATCH, "backbone.stage4.0.se.reduce.weight");
    mg_free(&m);
}

static void test_mixed(void **state)
{
    (void)state;
    mg_model m;
    /* fused module with a train-time branch in it */
    mg_build(&m, "s0", 1, "backbone.");
    mg_bn(&m, "backbone.stage1.3.rbr_skip.", 48);
    expect_refused(&m, MO_EFORMAT, "mixes");
    mg_free(&m);
    /* train-time module with a reparam_conv in it */
    mg_build(&m, "s0", 0, "backbone.");
    mg_add(&m, "backbone.stage0.reparam_conv.weight", 4, 48, 3, 3, 3, -1, 1);
    mg_add(&m, "backbone.stage0.reparam_conv.bias", 1, 48, 0, 0, 0, -1, 1);
    expect_refused(&m, MO_EFORMAT, "mixes");
    mg_free(&m);
    /* modules of different forms in one file: each module is read as it is */
    mg_model u;
    mg_build(&m, "s0", 1, "backbone.");
    mg_build(&u, "s0", 0, "backbone.");
    assert_int_equal(mg_remove(&m, "backbone.stage2.3."), 2);
    for (int i = 0; i < u.n; i++)
        if (!strncmp(u.t[i].name, "backbone.stage2.3.", 18)) {
            const mg_tensor *t = &u.t[i];
            memcpy(mg_add(&m, t->name, t->ndim, t->shape[0], t->shape[1], t->shape[2],
                          t->shape[3], 0, 0)->data, t->data, sizeof(float) * (size_t)mg_numel(t));
        }
    mo_file *f = NULL;
    mo_backbone *bb = NULL;
    assert_int_equal(open_model(&m, &f, &bb, NULL), MO_OK);
    mo_backbone_close(&bb);
    mo_file_close(&f);
    mg_free(&u);
    mg_free(&m);
}

static void test_stray(void **state)
{
    (void)state;
    mg_model m;
    mg_build(&m, "s0", 1, "backbone.");
    mg_add(&m, "backbone.stage4.2.reparam_conv.bias", 1, 1024, 0, 0, 0, -1, 1);
    expect_refused(&m, MO_EFORMAT, "backbone.stage4.2.reparam_conv.bias");
    mg_free(&m);

    mg_build(&m, "s0", 1, "backbone.");
    mg_add(&m, "backbone.stage3.19.se.reduce.bias", 1, 16, 0, 0, 0, -1, 1); /* no SE in s0 */
    expect_refused(&m, MO_EFORMAT, "se");
    mg_free(&m);

    mg_build(&m, "s0", 0, "backbone.");
    mg_add(&m, "backbone.stage1.1.rbr_conv.4.conv.weight", 4, 48, 48, 1, 1, -1, 1);
    expect_refused(&m, MO_EFORMAT, "backbone.stage1.1.");
    mg_free(&m);

    mg_build(&m, "s0", 0, "backbone.");
    mg_bn(&m, "backbone.stage1.0.rbr_skip.", 48); /* stride 2: no identity branch */
    expect_refused(&m, MO_EFORMAT, "backbone.stage1.0.");
    mg_free(&m);

    mg_build(&m, "s0", 1, "backbone.");
    mg_add(&m, "backbone.stage1.1.reparam_conv.extra", 1, 4, 0, 0, 0, -1, 1);
    expect_refused(&m, MO_EFORMAT, "backbone.stage1.1.");
    mg_free(&m);

    mg_build(&m, "s0", 1, "backbone.");
    mg_add(&m, "backbone.linear.weight", 2, 10, 1024, 0, 0, -1, 1);
    expect_refused(&m, MO_EFORMAT, "backbone.linear.weight");
    mg_free(&m);

    /* tensors outside the prefix are not the backbone's business */
    mg_build(&m, "s0", 1, "backbone.");
    mg_add(&m, "cls.linear.weight", 2, 10, 1024, 0, 0, -1, 1);
    mg_add(&m, "backbonex.foo", 1, 3, 0, 0, 0, -1, 1);
    mo_file *f = NULL;
    mo_backbone *bb = NULL;
    assert_int_equal(open_model(&m, &f, &bb, NULL), MO_OK);
    mo_backbone_close(&bb);
    mo_file_close(&f);
    mg_free(&m);
}

static void test_batchnorm_data(void **state)
{
    (void)state;
    mg_model m;
    mg_build(&m, "s0", 0, "backbone.");
    m.bn_eps = "abc";
    expect_refused(&m, MO_EFORMAT, "mo.bn_eps");
    m.bn_eps = "-1e-5";
    expect_refused(&m, MO_EFORMAT, "mo.bn_eps");
    m.bn_eps = "1e-5x";
    expect_refused(&m, MO_EFORMAT, "mo.bn_eps");
    m.bn_eps = "0.001";
    mo_file *f = NULL;
    mo_backbone *bb = NULL;
    assert_int_equal(open_model(&m, &f, &bb, NULL), MO_OK);
    mo_backbone_close(&bb);
    mo_file_close(&f);
    m.bn_eps = NULL;
    mg_tensor *t = mg_find(&m, "backbone.stage2.4.rbr_skip.running_var");
    assert_non_null(t);
    t->data[7] = -1.0f;
    expect_refused(&m, MO_EFORMAT, "backbone.stage2.4.");
    mg_free(&m);
}

static void test_prefix(void **state)
{
    (void)state;
    mg_model m;
    mg_build(&m, "s1", 1, "net.body.");
    mo_backbone_settings s;
    mo_backbone_default_settings(&s);
    assert_int_equal(s.size, sizeof(s));
    assert_string_equal(s.prefix, "backbone.");
    mo_file *f = NULL;
    mo_backbone *bb = NULL;
    assert_int_equal(open_model(&m, &f, &bb, NULL), MO_EFORMAT); /* default prefix */
    assert_null(bb);
    mo_file_close(&f);
    s.prefix = "net.body.";
    assert_int_equal(open_model(&m, &f, &bb, &s), MO_OK);
    assert_int_equal(mo_backbone_channels(bb, 3), 1280);
    mo_backbone_close(&bb);
    mo_file_close(&f);
    s.size = sizeof(s) - 1;
    assert_int_equal(open_model(&m, &f, &bb, &s), MO_EINVAL);
    mo_file_close(&f);
    mg_free(&m);
}

static void test_session_args(void **state)
{
    (void)state;
    mg_model m;
    mg_build(&m, "s0", 1, "backbone.");
    mo_file *f = NULL;
    mo_backbone *bb = NULL;
    assert_int_equal(open_model(&m, &f, &bb, NULL), MO_OK);

    mo_session_settings s;
    mo_session_default_settings(&s);
    assert_int_equal(s.size, sizeof(s));
    assert_int_equal(s.max_height, 224);
    assert_int_equal(s.max_width, 224);
    assert_int_equal(s.min_output_stride, 32);

    mo_session *ss = (mo_session *)&ss;
    assert_int_equal(mo_session_open(NULL, bb, NULL), MO_EINVAL);
    assert_int_equal(mo_session_open(&ss, NULL, NULL), MO_EINVAL);
    assert_null(ss);
    const struct { int h, w, os; size_t size; } bad[] = {
        {0, 10, 32, sizeof(s)}, {10, 0, 32, sizeof(s)}, {-5, 10, 32, sizeof(s)},
        {MO_MAX_INPUT_SIDE + 1, 10, 32, sizeof(s)}, {10, MO_MAX_INPUT_SIDE + 1, 32, sizeof(s)},
        {10, 10, 4, sizeof(s)}, {10, 10, 64, sizeof(s)}, {10, 10, 12, sizeof(s)},
        {10, 10, 32, sizeof(s) + 8}, {10, 10, 32, 0},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        mo_session_settings b = s;
        b.max_height = bad[i].h;
        b.max_width = bad[i].w;
        b.min_output_stride = bad[i].os;
        b.size = bad[i].size;
        assert_int_equal(mo_session_open(&ss, bb, &b), MO_EINVAL);
        assert_null(ss);
    }
    assert_int_equal(mo_session_open(&ss, bb, NULL), MO_OK); /* defaults: 224, OS 32 */
    float *x = random_input(225, 225 * 3);
    mo_features out;
    mo_tensor in = {x, 224, 224, 3, 224 * 3};
    assert_int_equal(mo_backbone_run(ss, &in, 32, &out), MO_OK);
    assert_int_equal(out.level[3].h, 7);
    /* output stride below the session minimum */
    assert_int_equal(mo_backbone_run(ss, &in, 16, &out), MO_EINVAL);
    assert_non_null(strstr(mo_last_error(), "minimum"));
    assert_int_equal(mo_backbone_run(ss, &in, 8, &out), MO_EINVAL);
    mo_session_close(&ss);
    assert_null(ss);
    mo_session_close(&ss); /* NULL is fine */
    mo_session_close(NULL);

    ss = open_session(bb, 100, 120, 16);
    in = (mo_tensor){x, 100, 120, 3, 120 * 3};
    assert_int_equal(mo_backbone_run(ss, &in, 16, &out), MO_OK);
    assert_int_equal(mo_backbone_run(ss, &in, 32, &out), MO_OK);
    assert_int_equal(mo_backbone_run(ss, &in, 8, &out), MO_EINVAL);
    const struct { int h, w, c; ptrdiff_t stride; int os; } bad_run[] = {
        {101, 120, 3, 120 * 3, 32}, /* larger than the session */
        {100, 121, 3, 121 * 3, 32},
        {0, 120, 3, 120 * 3, 32},
        {100, 0, 3, 120 * 3, 32},
        {100, 120, 4, 120 * 4, 32}, /* not RGB */
        {100, 120, 1, 120, 32},
        {100, 120, 3, 120 * 3 - 1, 32}, /* rows overlap */
        {100, 120, 3, 120 * 3, 12}, /* no such output stride */
        {100, 120, 3, 120 * 3, 64},
        {100, 120, 3, 120 * 3, 0},
    };
    for (size_t i = 0; i < sizeof(bad_run) / sizeof(bad_run[0]); i++) {
        mo_tensor t = {x, bad_run[i].h, bad_run[i].w, bad_run[i].c, bad_run[i].stride};
        assert_int_equal(mo_backbone_run(ss, &t, bad_run[i].os, &out), MO_EINVAL);
    }
    assert_int_equal(mo_backbone_run(NULL, &in, 32, &out), MO_EINVAL);
    assert_int_equal(mo_backbone_run(ss, NULL, 32, &out), MO_EINVAL);
    assert_int_equal(mo_backbone_run(ss, &in, 32, NULL), MO_EINVAL);
    mo_tensor nodata = {NULL, 100, 120, 3, 120 * 3};
    assert_int_equal(mo_backbone_run(ss, &nodata, 32, &out), MO_EINVAL);
    mo_session_close(&ss);

    free(x);
    mo_backbone_close(&bb);
    mo_file_close(&f);
    mg_free(&m);
}

static void test_null_args(void **state)
{
    (void)state;
    mo_backbone *bb = (mo_backbone *)&bb;
    assert_int_equal(mo_backbone_open(NULL, NULL, NULL), MO_EINVAL);
    assert_int_equal(mo_backbone_open(&bb, NULL, NULL), MO_EINVAL);
    assert_null(bb);
    mo_backbone_close(NULL);
    mo_backbone_close(&bb);
    assert_null(mo_backbone_variant(NULL));
    assert_null(mo_backbone_digest(NULL));
    assert_int_equal(mo_backbone_channels(NULL, 0), MO_EINVAL);
    mo_backbone_default_settings(NULL);
    mo_session_default_settings(NULL);

    mg_model m;
    mg_build(&m, "s0", 1, "backbone.");
    mo_file *f = NULL;
    assert_int_equal(open_model(&m, &f, &bb, NULL), MO_OK);
    assert_int_equal(mo_backbone_channels(bb, -1), MO_EINVAL);
    assert_int_equal(mo_backbone_channels(bb, MO_NUM_LEVELS), MO_EINVAL);
    assert_int_equal(mo_backbone_channels(bb, 0), 48);
    mo_backbone_close(&bb);
    mo_file_close(&f);
    mg_free(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_variants),
        cmocka_unit_test(test_tiny_inputs),
        cmocka_unit_test(test_consistency),
        cmocka_unit_test(test_bad_variant),
        cmocka_unit_test(test_missing_tensor),
        cmocka_unit_test(test_wrong_shape),
        cmocka_unit_test(test_mixed),
        cmocka_unit_test(test_stray),
        cmocka_unit_test(test_batchnorm_data),
        cmocka_unit_test(test_prefix),
        cmocka_unit_test(test_session_args),
        cmocka_unit_test(test_null_args),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
