/*
 * Per-operation profile of a session (mo_session_set_profile): off by default, the op list
 * of the backbone and every head (count per stage, names, shapes), FLOPs against the
 * analytic count, times non-negative and within the run's wall time, outputs identical with
 * and without profiling, the record bound, argument checks.
 *
 * Models are generated (random weights) in memory.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "detect/detgen.h"
#include "segment/seggen.h"
#include "mo/mo.h"

#define IN 64
#define NCLS 7

static uint8_t *bb_bytes, *det_bytes, *seg_bytes;
static size_t bb_n, det_n, seg_n;
static float *input; /* IN x IN x 3 */

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

static int setup(void **state)
{
    (void)state;
    mg_model bbm;
    mg_build_cls7(&bbm);
    bb_n = mg_serialize(&bbm, &bb_bytes);
    mg_free(&bbm);
    mo_file *f;
    mo_backbone *bb;
    if (mo_file_open_memory(&f, bb_bytes, bb_n) || mo_backbone_open(&bb, f, NULL))
        return -1;
    char digest[17];
    snprintf(digest, sizeof(digest), "%s", mo_backbone_digest(bb));
    mo_backbone_close(&bb);
    mo_file_close(&f);

    mg_model hm;
    json_object *m = dg_small_head(&hm, digest);
    det_n = dg_serialize(&hm, m, &det_bytes);
    json_object_put(m);
    mg_free(&hm);

    mg_model sm;
    const head_spec sh = small_seg_head(&sm, 5);
    seg_n = serialize_seg_head(&sm, &sh, digest, "16", &seg_bytes);
    mg_free(&sm);

    input = malloc(sizeof(float) * IN * IN * 3);
    uint32_t st = 777;
    for (int i = 0; i < IN * IN * 3; i++) {
        st = st * 1103515245u + 12345u;
        input[i] = (float)((st >> 8) & 0xffff) / 16384.0f - 2.0f;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    free(bb_bytes);
    free(det_bytes);
    free(seg_bytes);
    free(input);
    return 0;
}

typedef struct models {
    mo_file *f, *fd, *fs;
    mo_backbone *bb;
    mo_cls *cls;
    mo_det *det;
    mo_seg *seg;
    mo_session *s;
} models;

static void open_models(models *m, int threads)
{
    memset(m, 0, sizeof(*m));
    assert_int_equal(mo_file_open_memory(&m->f, bb_bytes, bb_n), MO_OK);
    assert_int_equal(mo_backbone_open(&m->bb, m->f, NULL), MO_OK);
    assert_int_equal(mo_cls_open(&m->cls, m->f, m->bb, NULL), MO_OK);
    assert_int_equal(mo_file_open_memory(&m->fd, det_bytes, det_n), MO_OK);
    assert_int_equal(mo_det_open(&m->det, m->fd, m->bb, NULL), MO_OK);
    assert_int_equal(mo_file_open_memory(&m->fs, seg_bytes, seg_n), MO_OK);
    assert_int_equal(mo_seg_open(&m->seg, m->fs, m->bb, NULL), MO_OK);
    mo_session_settings ss;
    mo_session_default_settings(&ss);
    ss.max_height = ss.max_width = IN;
    ss.min_output_stride = 16;
    ss.threads = threads;
    size_t seg_ws = 0;
    assert_int_equal(mo_seg_workspace_size(m->seg, IN, IN, 16, &seg_ws), MO_OK);
    const size_t det_ws = mo_det_workspace_size(m->det);
    ss.workspace_bytes = det_ws > seg_ws ? det_ws : seg_ws;
    assert_int_equal(mo_session_open(&m->s, m->bb, &ss), MO_OK);
}

static void close_models(models *m)
{
    mo_session_close(&m->s);
    mo_seg_close(&m->seg);
    mo_det_close(&m->det);
    mo_cls_close(&m->cls);
    mo_backbone_close(&m->bb);
    mo_file_close(&m->fs);
    mo_file_close(&m->fd);
    mo_file_close(&m->f);
}

/* Everything one frame produces, for the on/off comparison. */
typedef struct outputs {
    float pooled[1024], level3[4 * 4 * 256], logits[NCLS];
    mo_detection det[50];
    int ndet;
    uint8_t labels[IN * IN];
} outputs;

/* Backbone at 32, classifier, detection, stages 4 again at 16, segmentation. */
static void run_all(models *m, outputs *o)
{
    mo_features f;
    const mo_tensor in = {input, IN, IN, 3, IN * 3};
    assert_int_equal(mo_backbone_run(m->s, &in, 32, &f), MO_OK);
    memcpy(o->pooled, f.pooled, sizeof(o->pooled));
    memcpy(o->level3, f.level[2].data, sizeof(o->level3));
    assert_int_equal(mo_cls_run(m->cls, m->s, &f, o->logits), MO_OK);
    assert_int_equal(mo_det_run(m->det, m->s, &f, NULL, IN, IN, o->det, 50, &o->ndet), MO_OK);
    assert_int_equal(mo_backbone_run_from(m->s, &f, 2, 16, &f), MO_OK);
    assert_int_equal(mo_seg_run(m->seg, m->s, &f, IN, IN, o->labels, IN, NULL), MO_OK);
}

static void test_off_by_default(void **state)
{
    (void)state;
    models m;
    open_models(&m, 1);
    outputs o;
    run_all(&m, &o);
    const mo_op_profile *ops = (const mo_op_profile *)&m; /* must be overwritten */
    int n = -1, dropped = -1;
    assert_int_equal(mo_session_profile(m.s, &ops, &n, &dropped), MO_OK);
    assert_null(ops);
    assert_int_equal(n, 0);
    assert_int_equal(dropped, 0);
    close_models(&m);
}

static int count_prefix(const mo_op_profile *ops, int n, const char *model, const char *prefix)
{
    int c = 0;
    for (int i = 0; i < n; i++)
        c += !strcmp(ops[i].model, model) && !strncmp(ops[i].name, prefix, strlen(prefix));
    return c;
}

static const mo_op_profile *find(const mo_op_profile *ops, int n, const char *model,
                                 const char *name)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(ops[i].model, model) && !strcmp(ops[i].name, name))
            return &ops[i];
    fail_msg("no operation %s %s", model, name);
    return NULL;
}

static void check_shape(const mo_op_profile *o, int h, int w, int c)
{
    if (o->h != h || o->w != w || o->c != c)
        fail_msg("%s: %dx%dx%d, expected %dx%dx%d", o->name, o->h, o->w, o->c, h, w, c);
}

static void check_flops(const mo_op_profile *o, double expect)
{
    if (o->flops != expect)
        fail_msg("%s: %.0f FLOPs, expected %.0f", o->name, o->flops, expect);
}

static void check_ops(const mo_op_profile *ops, int n)
{
    /* MobileOne-S0: blocks per stage 2, 8, 10, 1, each a depthwise and a pointwise module */
    static const int blocks[4] = {2, 8, 10, 1}, width[4] = {48, 128, 256, 1024};
    assert_int_equal(count_prefix(ops, n, "backbone", "stem"), 1);
    int nb = 1;
    for (int st = 1; st <= 4; st++) {
        char pre[16];
        snprintf(pre, sizeof(pre), "stage%d.", st);
        assert_int_equal(count_prefix(ops, n, "backbone", pre), 2 * blocks[st - 1]);
        nb += 2 * blocks[st - 1];
        const int side = IN >> (st + 1);
        for (int j = 0; j < 2 * blocks[st - 1]; j++) {
            const mo_op_profile *o = &ops[nb - 2 * blocks[st - 1] + j];
            char name[40];
            snprintf(name, sizeof(name), "stage%d.%d.%s", st, j, j % 2 ? "pw" : "dw");
            assert_string_equal(o->name, name);
            assert_string_equal(o->kind, j % 2 ? "pw" : "dw3x3");
            const int c = j == 0 ? (st > 1 ? width[st - 2] : 48) : width[st - 1];
            check_shape(o, side, side, c);
        }
    }
    assert_string_equal(ops[nb].name, "gap");
    nb++;
    assert_int_equal(count_prefix(ops, n, "backbone", ""), nb); /* every backbone op, in order */
    for (int i = 0; i < nb; i++)
        assert_string_equal(ops[i].model, "backbone");
    /* analytic counts: 2 x output pixels x cout x (taps x cin / group) */
    check_shape(&ops[0], 32, 32, 48);
    check_flops(&ops[0], 2.0 * 32 * 32 * 48 * 27);
    check_flops(find(ops, n, "backbone", "stage1.0.dw"), 2.0 * 16 * 16 * 48 * 9);
    check_flops(find(ops, n, "backbone", "stage2.1.pw"), 2.0 * 8 * 8 * 128 * 48);
    check_flops(find(ops, n, "backbone", "stage4.1.pw"), 2.0 * 2 * 2 * 1024 * 256);
    check_flops(find(ops, n, "backbone", "gap"), 2.0 * 2 * 1024);
    check_shape(find(ops, n, "backbone", "gap"), 1, 1, 1024);

    /* classifier: one GEMV */
    assert_int_equal(count_prefix(ops, n, "cls", ""), 1);
    const mo_op_profile *fc = find(ops, n, "cls", "cls.fc");
    check_shape(fc, 1, 1, NCLS);
    check_flops(fc, 2.0 * NCLS * 1024 + NCLS);

    /* detection: 3 convs per extra block (4), 4 per level (6), softmax, decode, topk, NMS */
    assert_int_equal(count_prefix(ops, n, "det", "det.extra"), 12);
    assert_int_equal(count_prefix(ops, n, "det", "det.level"), 24);
    assert_int_equal(count_prefix(ops, n, "det", ""), 40);
    const mo_op_profile *e = find(ops, n, "det", "det.extra0.pw1");
    check_shape(e, 2, 2, 64 / 2);
    check_flops(e, 2.0 * 2 * 2 * 1024 * 32);
    const mo_op_profile *l0 = find(ops, n, "det", "det.level0.cls_dw");
    check_shape(l0, 4, 4, 256);
    check_flops(l0, 2.0 * 4 * 4 * 256 * 9);
    check_shape(find(ops, n, "det", "det.level0.cls_pw"), 4, 4, 6 * 5);
    check_shape(find(ops, n, "det", "det.level1.reg_pw"), 2, 2, 6 * 4);
    find(ops, n, "det", "det.nms");

    /* stage 4 again at output stride 16: the dilated modules and the pooling */
    assert_int_equal(count_prefix(ops, n, "backbone/16", ""), 3);
    check_shape(find(ops, n, "backbone/16", "stage4.1.pw"), 4, 4, 1024);

    /* segmentation: pooling branch, 1x1, 3 rates, ReLU, projection, head, classifier,
     * upsampling */
    assert_int_equal(count_prefix(ops, n, "seg", ""), 10);
    check_flops(find(ops, n, "seg", "seg.aspp.b0"), 2.0 * 4 * 4 * 1024 * 16);
    /* rate 6 on a 4 x 4 map: only the centre tap reads the image */
    check_flops(find(ops, n, "seg", "seg.aspp.rate6"), 2.0 * 4 * 4 * 1024 * 16);
    /* rate 2: per axis the three taps cover 2 + 4 + 2 positions */
    check_flops(find(ops, n, "seg", "seg.aspp.rate2"), 2.0 * (8 * 8) * 1024 * 16);
    check_flops(find(ops, n, "seg", "seg.proj"), 2.0 * 4 * 4 * 64 * 16);
    check_flops(find(ops, n, "seg", "seg.cls"), 2.0 * 4 * 4 * 12 * 5);
    check_shape(find(ops, n, "seg", "seg.upsample_argmax"), IN, IN, 1);
    assert_int_equal(n, nb + 1 + 40 + 3 + 10);
}

static void test_op_list(void **state)
{
    (void)state;
    for (int threads = 1; threads <= 2; threads++) {
        models m;
        open_models(&m, threads);
        assert_int_equal(mo_session_set_profile(m.s, 1), MO_OK);
        outputs o;
        for (int r = 0; r < 2; r++) { /* the second run starts a new list */
            const double t0 = now_ms();
            run_all(&m, &o);
            const double wall = now_ms() - t0;
            const mo_op_profile *ops;
            int n, dropped;
            assert_int_equal(mo_session_profile(m.s, &ops, &n, &dropped), MO_OK);
            assert_int_equal(dropped, 0);
            assert_non_null(ops);
            check_ops(ops, n);
            double sum = 0.0;
            for (int i = 0; i < n; i++) {
                assert_true(ops[i].ms >= 0.0);
                assert_true(ops[i].flops >= 0.0);
                sum += ops[i].ms;
            }
            if (!(sum > 0.0 && sum <= wall))
                fail_msg("operations sum to %.4f ms, the run took %.4f ms", sum, wall);
        }
        close_models(&m);
    }
}

static void test_identical(void **state)
{
    (void)state;
    models m;
    open_models(&m, 2);
    static outputs a, b, c;
    run_all(&m, &a);
    assert_int_equal(mo_session_set_profile(m.s, 1), MO_OK);
    run_all(&m, &b);
    assert_int_equal(mo_session_set_profile(m.s, 0), MO_OK);
    run_all(&m, &c);
    assert_memory_equal(&a, &b, sizeof(a));
    assert_memory_equal(&a, &c, sizeof(a));
    /* off again: the next run starts an empty list */
    const mo_op_profile *ops;
    int n;
    assert_int_equal(mo_session_profile(m.s, &ops, &n, NULL), MO_OK);
    assert_int_equal(n, 0);
    close_models(&m);
}

static void test_bound_and_args(void **state)
{
    (void)state;
    models m;
    open_models(&m, 1);
    assert_int_equal(mo_session_set_profile(NULL, 1), MO_EINVAL);
    const mo_op_profile *ops;
    int n, dropped;
    assert_int_equal(mo_session_profile(NULL, &ops, &n, NULL), MO_EINVAL);
    assert_int_equal(mo_session_profile(m.s, NULL, &n, NULL), MO_EINVAL);
    assert_int_equal(mo_session_profile(m.s, &ops, NULL, NULL), MO_EINVAL);
    mo_session_profile_reset(NULL);
    assert_int_equal(mo_session_set_profile(m.s, 1), MO_OK);
    assert_int_equal(mo_session_set_profile(m.s, 1), MO_OK); /* again: keeps its records */
    mo_features f;
    const mo_tensor in = {input, IN, IN, 3, IN * 3};
    assert_int_equal(mo_backbone_run(m.s, &in, 32, &f), MO_OK);
    float logits[NCLS];
    /* heads appended without a new backbone run: the list stops at its capacity */
    for (int i = 0; i < 1000; i++)
        assert_int_equal(mo_cls_run(m.cls, m.s, &f, logits), MO_OK);
    assert_int_equal(mo_session_profile(m.s, &ops, &n, &dropped), MO_OK);
    assert_int_equal(n, 43 + 1 + 256); /* backbone modules, pooling, the heads' reserve */
    assert_int_equal(n + dropped, 44 + 1000);
    assert_string_equal(ops[n - 1].name, "cls.fc");
    mo_session_profile_reset(m.s);
    assert_int_equal(mo_session_profile(m.s, &ops, &n, &dropped), MO_OK);
    assert_int_equal(n, 0);
    assert_int_equal(dropped, 0);
    assert_null(ops);
    /* a NULL session: the logits, nothing recorded */
    float l2[NCLS];
    assert_int_equal(mo_cls_run(m.cls, NULL, &f, l2), MO_OK);
    assert_memory_equal(logits, l2, sizeof(l2));
    close_models(&m);
}

/* MobileOne-S4: squeeze-excite in the last 5 blocks of stage 3 and in stage 4, both modules
 * of each block, recorded right after its module. */
static void test_se(void **state)
{
    (void)state;
    mg_model bbm;
    mg_build(&bbm, "s4", 1, "backbone.");
    uint8_t *bytes;
    const size_t nb = mg_serialize(&bbm, &bytes);
    mg_free(&bbm);
    mo_file *f;
    mo_backbone *bb;
    mo_session *s;
    assert_int_equal(mo_file_open_memory(&f, bytes, nb), MO_OK);
    free(bytes);
    assert_int_equal(mo_backbone_open(&bb, f, NULL), MO_OK);
    mo_session_settings ss;
    mo_session_default_settings(&ss);
    ss.max_height = ss.max_width = IN;
    assert_int_equal(mo_session_open(&s, bb, &ss), MO_OK);
    assert_int_equal(mo_session_set_profile(s, 1), MO_OK);
    mo_features feats;
    const mo_tensor in = {input, IN, IN, 3, IN * 3};
    assert_int_equal(mo_backbone_run(s, &in, 32, &feats), MO_OK);
    const mo_op_profile *ops;
    int n, nse = 0;
    assert_int_equal(mo_session_profile(s, &ops, &n, NULL), MO_OK);
    for (int i = 1; i < n; i++) {
        if (strcmp(ops[i].kind, "se"))
            continue;
        nse++;
        /* same stage and module as the op before it, same shape */
        const char *dot = strrchr(ops[i - 1].name, '.');
        assert_non_null(dot);
        assert_int_equal(strncmp(ops[i].name, ops[i - 1].name, (size_t)(dot - ops[i - 1].name)),
                         0);
        assert_string_equal(strrchr(ops[i].name, '.'), ".se");
        check_shape(&ops[i], ops[i - 1].h, ops[i - 1].w, ops[i - 1].c);
        /* mean and scaling (one FLOP per element each), two FC layers of c x c/16 */
        const double c = ops[i].c, npix = (double)ops[i].h * ops[i].w;
        check_flops(&ops[i], 2.0 * npix * c + 4.0 * c * (c / 16));
    }
    assert_int_equal(nse, 12);
    assert_int_equal(n, 1 + 2 * (2 + 8 + 10 + 1) + 12 + 1);
    mo_session_close(&s);
    mo_backbone_close(&bb);
    mo_file_close(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_off_by_default),
        cmocka_unit_test(test_op_list),
        cmocka_unit_test(test_identical),
        cmocka_unit_test(test_bound_and_args),
        cmocka_unit_test(test_se),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
