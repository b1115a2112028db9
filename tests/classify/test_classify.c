/* Classification head: logits, pairing with the right backbone only, bad head files,
 * softmax and top-k. Model files are built in memory (tests/backbone/modelgen.h). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "modelgen.h"
#include "mo/classify.h"
#include "mo/cpu.h"

static mo_file *open_mg(mg_model *m)
{
    uint8_t *bytes;
    size_t n = mg_serialize(m, &bytes);
    mo_file *f = NULL;
    assert_int_equal(mo_file_open_memory(&f, bytes, n), MO_OK);
    free(bytes);
    return f;
}

/* An s0 backbone file with a 3-class head in the same file. */
static void build_combined(mg_model *m, int k, int c)
{
    mg_build(m, "s0", 1, "backbone.");
    mg_add(m, "cls.linear.weight", 2, k, c, 0, 0, -1, 1);
    mg_add(m, "cls.linear.bias", 1, k, 0, 0, 0, -1, 1);
    m->meta[0][0] = "cls.classes";
    m->meta[0][1] = "[\"cat\", \"dog\", \"a \\\"quoted\\\" name\"]";
    m->contents = "[\"backbone\", \"cls\"]";
}

static void test_logits(void **state)
{
    (void)state;
    mg_model m;
    build_combined(&m, 3, 1024);
    mo_file *f = open_mg(&m);
    mo_backbone *bb = NULL;
    mo_cls *cls = NULL;
    mo_session *s = NULL;
    assert_int_equal(mo_backbone_open(&bb, f, NULL), MO_OK);
    assert_int_equal(mo_cls_open(&cls, f, bb, NULL), MO_OK);
    assert_int_equal(mo_cls_num_classes(cls), 3);
    assert_string_equal(mo_cls_class_name(cls, 2), "a \"quoted\" name");
    assert_null(mo_cls_class_name(cls, 3));
    assert_null(mo_cls_class_name(cls, -1));
    assert_int_equal(mo_session_open(&s, bb, NULL), MO_OK);
    float *x = calloc(64 * 64 * 3, sizeof(float));
    for (int i = 0; i < 64 * 64 * 3; i++)
        x[i] = (float)((i * 37) % 101) / 50.0f - 1.0f;
    mo_tensor t = { x, 64, 64, 3, 64 * 3 };
    mo_features feats;
    assert_int_equal(mo_backbone_run(s, &t, 32, &feats), MO_OK);
    float logits[3];
    assert_int_equal(mo_cls_logits(cls, &feats, logits), MO_OK);
    const mg_tensor *w = mg_find(&m, "cls.linear.weight"), *b = mg_find(&m, "cls.linear.bias");
    for (int k = 0; k < 3; k++) {
        double ref = b->data[k];
        for (int c = 0; c < 1024; c++)
            ref += (double)w->data[k * 1024 + c] * feats.pooled[c];
        assert_true(fabs(ref - logits[k]) <= 1e-4 * (1 + fabs(ref)));
    }
    feats.level[3].c = 512; /* features of another width are refused */
    assert_int_equal(mo_cls_logits(cls, &feats, logits), MO_EINVAL);
    assert_int_equal(mo_cls_logits(cls, NULL, logits), MO_EINVAL);
    free(x);
    mo_session_close(&s);
    mo_cls_close(&cls);
    assert_null(cls);
    mo_cls_close(&cls);
    mo_backbone_close(&bb);
    mo_file_close(&f);
    mg_free(&m);
}

/* The linear layer on the kernel table's GEMV (16 partial sums, no FMA): a 1000-class head's
 * logits are the same bits for 1..4 threads of a session (classes split over the pool), from
 * mo_cls_logits(), and with the SIMD kernels masked off (mo_set_cpu_flags_mask(0)). */
static void test_gemv_identical(void **state)
{
    (void)state;
    enum { K = 1000, C = 1024, S = 64 };
    mg_model m;
    mg_build(&m, "s0", 1, "backbone.");
    mg_add(&m, "cls.linear.weight", 2, K, C, 0, 0, -1, 1);
    mg_add(&m, "cls.linear.bias", 1, K, 0, 0, 0, -1, 1);
    char *names = malloc(8 * K + 8);
    assert_non_null(names);
    size_t o = 0;
    names[o++] = '[';
    for (int i = 0; i < K; i++)
        o += (size_t)sprintf(names + o, "%s\"c%d\"", i ? "," : "", i);
    names[o++] = ']';
    names[o] = 0;
    m.meta[0][0] = "cls.classes";
    m.meta[0][1] = names;
    m.contents = "[\"backbone\", \"cls\"]";
    mo_file *f = open_mg(&m);
    mo_backbone *bb = NULL;
    mo_cls *cls = NULL;
    assert_int_equal(mo_backbone_open(&bb, f, NULL), MO_OK);
    assert_int_equal(mo_cls_open(&cls, f, bb, NULL), MO_OK);
    float *x = malloc(sizeof(float) * S * S * 3);
    static float ref[K], got[K];
    assert_non_null(x);
    for (int i = 0; i < S * S * 3; i++)
        x[i] = (float)((i * 53) % 97) / 48.0f - 1.0f;
    const mo_tensor t = { x, S, S, 3, S * 3 };
    mo_features feats;
    for (int th = 1; th <= 4; th++) {
        mo_session_settings ss;
        mo_session_default_settings(&ss);
        ss.threads = th;
        mo_session *s = NULL;
        assert_int_equal(mo_session_open(&s, bb, &ss), MO_OK);
        assert_int_equal(mo_backbone_run(s, &t, 32, &feats), MO_OK);
        assert_int_equal(mo_cls_run(cls, s, &feats, th == 1 ? ref : got), MO_OK);
        if (th > 1 && memcmp(ref, got, sizeof(ref)))
            fail_msg("%d threads: logits differ from 1 thread", th);
        if (th == 1) {
            assert_int_equal(mo_cls_logits(cls, &feats, got), MO_OK);
            assert_memory_equal(ref, got, sizeof(ref));
            /* the C reference GEMV on the same pooled features */
            mo_cls *cls_c = NULL;
            mo_set_cpu_flags_mask(0);
            assert_int_equal(mo_cls_open(&cls_c, f, bb, NULL), MO_OK);
            mo_set_cpu_flags_mask(~0u);
            assert_int_equal(mo_cls_logits(cls_c, &feats, got), MO_OK);
            if (memcmp(ref, got, sizeof(ref)))
                fail_msg("C reference GEMV differs from the dispatched one (cpu flags 0x%x)",
                         mo_get_cpu_flags());
            mo_cls_close(&cls_c);
        }
        mo_session_close(&s);
    }
    free(x);
    free(names);
    mo_cls_close(&cls);
    mo_backbone_close(&bb);
    mo_file_close(&f);
    mg_free(&m);
}

/* A head-only file names its backbone; another backbone is refused. */
static void test_pairing(void **state)
{
    (void)state;
    mg_model mb;
    mg_build(&mb, "s0", 1, "backbone.");
    mo_file *fb = open_mg(&mb);
    mo_backbone *bb = NULL;
    assert_int_equal(mo_backbone_open(&bb, fb, NULL), MO_OK);
    const char *digest = mo_backbone_digest(bb);
    assert_int_equal((int)strlen(digest), 16);

    mg_model mh = { 0 };
    snprintf(mh.variant, sizeof(mh.variant), "s0");
    mh.contents = "[\"cls\"]";
    mg_add(&mh, "cls.linear.weight", 2, 2, 1024, 0, 0, -1, 1);
    mg_add(&mh, "cls.linear.bias", 1, 2, 0, 0, 0, -1, 1);
    mh.meta[0][0] = "cls.classes";
    mh.meta[0][1] = "[\"x\", \"y\"]";
    mh.meta[1][0] = "mo.backbone_digest";
    mh.meta[1][1] = digest;
    mo_file *fh = open_mg(&mh);
    mo_cls *cls = NULL;
    assert_int_equal(mo_cls_open(&cls, fh, bb, NULL), MO_OK);
    mo_cls_close(&cls);
    mo_file_close(&fh);

    mh.meta[1][1] = "0123456789abcdef";
    fh = open_mg(&mh);
    assert_int_equal(mo_cls_open(&cls, fh, bb, NULL), MO_EMISMATCH);
    assert_non_null(strstr(mo_last_error(), "0123456789abcdef"));
    assert_null(cls);
    mo_file_close(&fh);

    mh.meta[1][1] = digest;
    snprintf(mh.variant, sizeof(mh.variant), "s1");
    fh = open_mg(&mh);
    assert_int_equal(mo_cls_open(&cls, fh, bb, NULL), MO_EMISMATCH);
    assert_non_null(strstr(mo_last_error(), "s1"));
    mo_file_close(&fh);

    mo_backbone_close(&bb);
    mo_file_close(&fb);
    mg_free(&mb);
    mg_free(&mh);
}

static void expect_head_refused(mg_model *m, int code, const char *word)
{
    mo_file *f = open_mg(m);
    mo_backbone *bb = NULL;
    mo_cls *cls = (mo_cls *)0x1;
    assert_int_equal(mo_backbone_open(&bb, f, NULL), MO_OK);
    assert_int_equal(mo_cls_open(&cls, f, bb, NULL), code);
    assert_null(cls);
    if (!strstr(mo_last_error(), word))
        fail_msg("message '%s' lacks '%s'", mo_last_error(), word);
    mo_backbone_close(&bb);
    mo_file_close(&f);
}

static void test_bad_heads(void **state)
{
    (void)state;
    mg_model m;
    build_combined(&m, 3, 512); /* input width is not the backbone's 1024 */
    expect_head_refused(&m, MO_EMISMATCH, "1024");
    mg_free(&m);
    build_combined(&m, 4, 1024); /* 4 outputs, 3 names */
    expect_head_refused(&m, MO_EMISMATCH, "3 classes");
    mg_free(&m);
    build_combined(&m, 3, 1024);
    m.meta[0][1] = "{\"not\": \"a list\"}";
    expect_head_refused(&m, MO_EFORMAT, "cls.classes");
    m.meta[0][1] = "[1, 2, 3]";
    expect_head_refused(&m, MO_EFORMAT, "cls.classes[0]");
    m.meta[0][0] = "other.key";
    expect_head_refused(&m, MO_EFORMAT, "cls.classes");
    mg_free(&m);
    build_combined(&m, 3, 1024);
    mg_remove(&m, "cls.linear.bias");
    expect_head_refused(&m, MO_EFORMAT, "cls.linear.bias");
    mg_free(&m);
    assert_int_equal(mo_cls_open(NULL, NULL, NULL, NULL), MO_EINVAL);
}

static void test_softmax_topk(void **state)
{
    (void)state;
    float p[6] = { 1000, 999, 1000, -1e30f, 0, 998 };
    mo_softmax(p, 6);
    double sum = 0;
    for (int i = 0; i < 6; i++) {
        assert_true(isfinite(p[i]) && p[i] >= 0);
        sum += p[i];
    }
    assert_true(fabs(sum - 1) < 1e-6);
    mo_class_score top[8];
    assert_int_equal(mo_topk(p, 6, 3, top), 3);
    assert_int_equal(top[0].index, 0); /* tie with index 2: lower index first */
    assert_int_equal(top[1].index, 2);
    assert_int_equal(top[2].index, 1);
    assert_int_equal(mo_topk(p, 6, 8, top), 6);
    assert_int_equal(top[4].index, 3); /* both underflow to 0: tie, lower index first */
    assert_int_equal(top[5].index, 4);
    assert_int_equal(mo_topk(p, 6, 0, top), 0);
    assert_int_equal(mo_topk(NULL, 6, 1, top), MO_EINVAL);
    const float same[4] = { 0.25f, 0.25f, 0.25f, 0.25f };
    assert_int_equal(mo_topk(same, 4, 2, top), 2);
    assert_int_equal(top[0].index, 0);
    assert_int_equal(top[1].index, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_logits),
        cmocka_unit_test(test_gemv_identical),
        cmocka_unit_test(test_pairing),
        cmocka_unit_test(test_bad_heads),
        cmocka_unit_test(test_softmax_topk),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
