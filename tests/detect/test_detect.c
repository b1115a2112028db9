/*
 * Detection head: loading (in-memory model files), the forward pass against a naive
 * double-precision implementation written from the spec, the post-processing settings on
 * crafted outputs, bad files (each refused with a message naming the mismatch), run-time
 * errors, the ReLU6 kernel mode and the detection preprocessing.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <pthread.h>

#include "mo_internal/conv.h"
#include "detgen.h"
#include "quick.h"
#include "mo/detect.h"
#include "mo/image.h"

#define IN 64   /* network input of the test heads: maps 4, 2, 1, 1, 1, 1 */
#define K 5

/* ------------------------------------------------------------------ fixture */

typedef struct fixture {
    mg_model bbm;
    uint8_t *bb_bytes;
    size_t bb_size;
    mo_file *bbf;
    mo_backbone *bb;
    char digest[17];
} fixture;

static fixture fx;

static int setup(void **state)
{
    (void)state;
    mg_build(&fx.bbm, "s0", 1, "backbone.");
    fx.bb_size = mg_serialize(&fx.bbm, &fx.bb_bytes);
    if (mo_file_open_memory(&fx.bbf, fx.bb_bytes, fx.bb_size) ||
        mo_backbone_open(&fx.bb, fx.bbf, NULL))
        return -1;
    snprintf(fx.digest, sizeof(fx.digest), "%s", mo_backbone_digest(fx.bb));
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    mo_backbone_close(&fx.bb);
    mo_file_close(&fx.bbf);
    free(fx.bb_bytes);
    mg_free(&fx.bbm);
    return 0;
}

static dg_head small_head(void)
{
    dg_head h = { .c3 = 256, .c4 = 1024, .k = K, .nextra = 4, .extra = { 64, 32, 32, 16 } };
    for (int l = 0; l < 6; l++)
        h.anchors[l] = 6;
    return h;
}

/* Metadata of a head file for the fixture's backbone. */
static json_object *head_meta(void)
{
    json_object *m = json_object_new_object();
    dg_meta(m, "mo.contents", "[\"det\"]");
    dg_meta(m, "mo.variant", "s0");
    dg_meta(m, "mo.backbone_digest", fx.digest);
    dg_meta(m, "det.classes", "[\"__background__\",\"cat\",\"dog\",\"car\",\"N/A\"]");
    dg_meta(m, "det.num_classes", "5");
    dg_meta(m, "det.input_size", "[64,64]");
    dg_meta(m, "det.aspect_ratios", "[[2,3],[2,3],[2,3],[2,3],[2,3],[2,3]]");
    dg_meta(m, "det.min_ratio", "0.2");
    dg_meta(m, "det.max_ratio", "0.95");
    dg_meta(m, "det.extra_channels", "[64,32,32,16]");
    dg_meta(m, "det.bn_eps", "0.001");
    return m;
}

/* Serialize and try to open; returns the mo_det_open code, *out the head on success. */
static int open_head(mg_model *hm, json_object *meta, mo_det **out, const mo_det_settings *s)
{
    uint8_t *bytes;
    const size_t size = dg_serialize(hm, meta, &bytes);
    mo_file *f = NULL;
    int r = mo_file_open_memory(&f, bytes, size);
    free(bytes);
    if (r)
        return r;
    mo_det *d = NULL;
    r = mo_det_open(&d, f, fx.bb, s);
    mo_file_close(&f);
    if (out)
        *out = d;
    else
        mo_det_close(&d);
    return r;
}

/* ------------------------------------------------------------------ naive reference */

static float *naive_layer(const mg_model *hm, const char *conv, const char *bn, const float *in,
                          int ih, int iw, int cin, int cout, int dw, int stride, int act6,
                          int *oh, int *ow)
{
    char name[200];
    MG_FMT(name, "%s.weight", conv);
    mg_tensor *w = mg_find((mg_model *)hm, name);
    const int cg = dw ? 1 : cin, kk = dw ? 9 : 1;
    float *wf = malloc(sizeof(float) * (size_t)cout * cg * kk);
    float *bf = malloc(sizeof(float) * (size_t)cout);
    for (int o = 0; o < cout; o++) {
        double t = 1.0, b = 0.0;
        if (bn) {
            mg_tensor *g, *be, *mu, *v;
            MG_FMT(name, "%s.weight", bn);
            g = mg_find((mg_model *)hm, name);
            MG_FMT(name, "%s.bias", bn);
            be = mg_find((mg_model *)hm, name);
            MG_FMT(name, "%s.running_mean", bn);
            mu = mg_find((mg_model *)hm, name);
            MG_FMT(name, "%s.running_var", bn);
            v = mg_find((mg_model *)hm, name);
            t = g->data[o] / sqrt((double)v->data[o] + 0.001);
            b = be->data[o] - mu->data[o] * t;
        } else {
            MG_FMT(name, "%s.bias", conv);
            b = mg_find((mg_model *)hm, name)->data[o];
        }
        for (int i = 0; i < cg * kk; i++)
            wf[(size_t)o * cg * kk + i] = (float)(w->data[(size_t)o * cg * kk + i] * t);
        bf[o] = (float)b;
    }
    const int k = dw ? 3 : 1, pad = dw ? 1 : 0;
    *oh = (ih + 2 * pad - k) / stride + 1;
    *ow = (iw + 2 * pad - k) / stride + 1;
    const size_t n = (size_t)*oh * *ow * cout;
    double *out = malloc(sizeof(double) * n);
    naive_conv(out, NULL, in, (ptrdiff_t)iw * cin, ih, iw, cin, cout, dw ? cin : 1, k, stride,
               pad, 1, wf, bf, act6);
    float *res = malloc(sizeof(float) * n);
    for (size_t i = 0; i < n; i++)
        res[i] = (float)(act6 && out[i] > 6.0 ? 6.0 : out[i]);
    free(out);
    free(wf);
    free(bf);
    return res;
}

static float *dense(const mo_tensor *t)
{
    float *d = malloc(sizeof(float) * (size_t)t->h * t->w * t->c);
    for (int y = 0; y < t->h; y++)
        memcpy(d + (size_t)y * t->w * t->c, t->data + y * t->row_stride,
               sizeof(float) * (size_t)t->w * t->c);
    return d;
}

static void expect_close(const float *got, const float *want, size_t n, const char *what)
{
    double amax = 1.0, emax = 0.0;
    /* Compares, not fmax(): aarch64-linux-gnu-gcc 12.2 stops with an internal compiler
     * error (vect_transform_reduction) vectorising that reduction at -O3 (as in
     * test_segment.c); and a NaN output must fail, which fmax() would drop. */
    for (size_t i = 0; i < n; i++) {
        const double a = fabs(want[i]), e = fabs((double)got[i] - want[i]);
        if (a > amax)
            amax = a;
        if (e > emax || isnan(e))
            emax = e;
    }
    if (!(emax <= 1e-4 * amax))
        fail_msg("%s: max |C - naive| = %g (max |naive| %g)", what, emax, amax);
}

static mo_session *open_session(const mo_det *d, int with_ws)
{
    mo_session_settings ss;
    mo_session_default_settings(&ss);
    ss.max_width = ss.max_height = IN;
    ss.workspace_bytes = with_ws ? mo_det_workspace_size(d) : 0;
    mo_session *s = NULL;
    assert_int_equal(mo_session_open(&s, fx.bb, &ss), MO_OK);
    return s;
}

static void random_input(float *x, int n)
{
    for (int i = 0; i < n; i++)
        x[i] = frand() * 2.0f;
}

/* ------------------------------------------------------------------ tests */

/* The small head built into hm and opened with the default settings (meta: its JSON). */
static mo_det *open_small(mg_model *hm, json_object **meta)
{
    const dg_head h = small_head();
    dg_build(hm, &h);
    *meta = head_meta();
    mo_det *d = NULL;
    assert_int_equal(open_head(hm, *meta, &d, NULL), MO_OK);
    return d;
}

static void test_forward_vs_naive(void **state)
{
    (void)state;
    mg_model hm = { 0 };
    json_object *meta;
    mo_det *d = open_small(&hm, &meta);
    const dg_head h = small_head();
    assert_int_equal(mo_det_num_classes(d), K);
    assert_string_equal(mo_det_class_name(d, 2), "dog");
    assert_null(mo_det_class_name(d, K));
    int w, hh;
    mo_det_input_size(d, &w, &hh);
    assert_int_equal(w, IN);
    assert_int_equal(hh, IN);
    assert_int_equal(mo_det_num_anchors(d), 6 * (16 + 4 + 1 + 1 + 1 + 1));

    mo_session *s = open_session(d, 1);
    static float x[IN * IN * 3];
    random_input(x, IN * IN * 3);
    mo_tensor in = { x, IN, IN, 3, IN * 3 };
    mo_features f;
    assert_int_equal(mo_backbone_run(s, &in, 32, &f), MO_OK);
    mo_det_raw raw;
    assert_int_equal(mo_det_run_raw(d, s, &f, &raw), MO_OK);
    assert_int_equal(raw.num_anchors, mo_det_num_anchors(d));
    assert_int_equal(raw.num_classes, K);

    /* naive: extras, then per map dw + pw */
    float *maps[6];
    int mh[6], mw[6], mc[6];
    maps[0] = dense(&f.level[2]);
    maps[1] = dense(&f.level[3]);
    for (int t = 0; t < 2; t++) {
        mh[t] = f.level[2 + t].h;
        mw[t] = f.level[2 + t].w;
        mc[t] = f.level[2 + t].c;
    }
    char conv[128], bn[128];
    for (int i = 0; i < 4; i++) {
        const float *cur = maps[1 + i];
        int ch = mh[1 + i], cw = mw[1 + i], cc = mc[1 + i], oh, ow;
        float *tmp[3];
        for (int j = 0; j < 3; j++) {
            const int co = j == 2 ? h.extra[i] : h.extra[i] / 2;
            MG_FMT(conv, "det.extra.%d.%d.0", i, j);
            MG_FMT(bn, "det.extra.%d.%d.1", i, j);
            tmp[j] = naive_layer(&hm, conv, bn, cur, ch, cw, cc, co, j == 1, j == 1 ? 2 : 1, 1,
                                 &oh, &ow);
            cur = tmp[j];
            ch = oh;
            cw = ow;
            cc = co;
        }
        free(tmp[0]);
        free(tmp[1]);
        maps[2 + i] = tmp[2];
        mh[2 + i] = ch;
        mw[2 + i] = cw;
        mc[2 + i] = cc;
    }
    size_t first = 0;
    static const char *const head[2] = { "classification", "regression" };
    for (int l = 0; l < 6; l++) {
        for (int hd = 0; hd < 2; hd++) {
            int oh, ow;
            MG_FMT(conv, "det.head.%s_head.module_list.%d.0.0", head[hd], l);
            MG_FMT(bn, "det.head.%s_head.module_list.%d.0.1", head[hd], l);
            float *t = naive_layer(&hm, conv, bn, maps[l], mh[l], mw[l], mc[l], mc[l], 1, 1, 1,
                                   &oh, &ow);
            MG_FMT(conv, "det.head.%s_head.module_list.%d.1", head[hd], l);
            const int cols = hd ? 4 : K;
            float *o = naive_layer(&hm, conv, NULL, t, oh, ow, mc[l], 6 * cols, 0, 1, 0, &oh,
                                   &ow);
            const float *got = (hd ? raw.regression : raw.logits) + first * cols;
            MG_FMT(conv, "map %d %s", l, head[hd]);
            expect_close(got, o, (size_t)oh * ow * 6 * cols, conv);
            free(t);
            free(o);
        }
        first += (size_t)mh[l] * mw[l] * 6;
        free(maps[l]);
    }
    assert_int_equal((int)first, raw.num_anchors);

    /* the whole run: invariants of the result */
    mo_detection det[300];
    int n = -1;
    mo_det_settings set;
    mo_det_default_settings(&set);
    assert_int_equal(mo_det_run(d, s, &f, &set, 640, 480, det, 300, &n), MO_OK);
    assert_true(n > 0 && n <= 300);
    for (int i = 0; i < n; i++) {
        assert_true(det[i].label >= 1 && det[i].label < K);
        assert_true(det[i].x1 >= 0 && det[i].x2 <= 640 && det[i].y1 >= 0 && det[i].y2 <= 480);
        assert_true(det[i].score > 0.001f && det[i].score <= 1.0f);
        if (i)
            assert_true(det[i].score <= det[i - 1].score);
    }
    /* cap below the count: the best ones */
    mo_detection few[3];
    int n3;
    assert_int_equal(mo_det_run(d, s, &f, NULL, 640, 480, few, 3, &n3), MO_OK);
    assert_int_equal(n3, 3);
    assert_memory_equal(few, det, sizeof(few));

    mo_session_close(&s);
    mo_det_close(&d);
    assert_null(d);
    json_object_put(meta);
    mg_free(&hm);
}

/* Post-processing settings on crafted raw outputs (logits 0 = uniform scores 0.2). */
static void test_postprocess_settings(void **state)
{
    (void)state;
    mg_model hm = { 0 };
    const dg_head h = small_head();
    dg_build(&hm, &h);
    json_object *meta = head_meta();
    mo_det *d = NULL;
    mo_det_settings open_set;
    mo_det_default_settings(&open_set);
    open_set.topk_candidates = 50;
    assert_int_equal(open_head(&hm, meta, &d, &open_set), MO_OK);
    mo_session *s = open_session(d, 1);
    const int N = mo_det_num_anchors(d);
    const float *anc = mo_det_anchors(d);
    float *lg = calloc((size_t)N * K, sizeof(float)), *rg = calloc((size_t)N * 4, sizeof(float));
    mo_detection det[400];
    int n;
    mo_det_settings set;
    mo_det_default_settings(&set);
    set.topk_candidates = 50; /* as opened */
    set.score_thresh = 0.5;

    /* nothing above 0.5 */
    assert_int_equal(mo_det_postprocess(d, s, lg, rg, &set, IN, IN, det, 400, &n), MO_OK);
    assert_int_equal(n, 0);
    /* uniform scores 0.2: the threshold is strict (0.2f > 0.2 in float32 is false) */
    set.score_thresh = 0.2;
    assert_int_equal(mo_det_postprocess(d, s, lg, rg, &set, IN, IN, det, 400, &n), MO_OK);
    assert_int_equal(n, 0);

    /* anchor 0 (map 0, cell 0, box 0): class 2 strong; box = anchor clipped, rescaled */
    lg[0 * K + 2] = 8.0f;
    set.score_thresh = 0.5;
    assert_int_equal(mo_det_postprocess(d, s, lg, rg, &set, 640, 320, det, 400, &n), MO_OK);
    assert_int_equal(n, 1);
    assert_int_equal(det[0].label, 2);
    const float e8 = expf(8.0f);
    assert_float_equal(det[0].score, e8 / (e8 + 4.0f), 1e-6);
    assert_float_equal(det[0].x1, fmaxf(anc[0], 0.0f) * 10.0f, 1e-4);
    assert_float_equal(det[0].y1, fmaxf(anc[1], 0.0f) * 5.0f, 1e-4);
    assert_float_equal(det[0].x2, anc[2] * 10.0f, 1e-4);
    assert_float_equal(det[0].y2, anc[3] * 5.0f, 1e-4);

    /* one anchor with two classes at 0.49 each (logits 4, 4 vs 0, 0, 0): class-wise keeps
     * both (same box, two labels); class-agnostic keeps one; max_classes_per_box 1 too */
    memset(lg, 0, sizeof(float) * (size_t)N * K);
    lg[7 * K + 1] = lg[7 * K + 3] = 4.0f;
    set.score_thresh = 0.3;
    assert_int_equal(mo_det_postprocess(d, s, lg, rg, &set, IN, IN, det, 400, &n), MO_OK);
    assert_int_equal(n, 2);
    assert_int_equal(det[0].label, 1); /* tie: the lower class first (stable) */
    assert_int_equal(det[1].label, 3);
    set.class_agnostic = 1;
    assert_int_equal(mo_det_postprocess(d, s, lg, rg, &set, IN, IN, det, 400, &n), MO_OK);
    assert_int_equal(n, 1);
    assert_int_equal(det[0].label, 1);
    set.class_agnostic = 0;
    set.max_classes_per_box = 1;
    lg[7 * K + 3] = 4.1f;
    assert_int_equal(mo_det_postprocess(d, s, lg, rg, &set, IN, IN, det, 400, &n), MO_OK);
    assert_int_equal(n, 1);
    assert_int_equal(det[0].label, 3);
    set.max_classes_per_box = 0;

    /* all 6 boxes of cell 0 of map 0 for class 1: NMS at 0.55 vs soft-NMS vs topk */
    memset(lg, 0, sizeof(float) * (size_t)N * K);
    for (int a = 0; a < 6; a++)
        lg[a * K + 1] = 6.0f - 0.1f * a;
    set.score_thresh = 0.5;
    int n_hard;
    assert_int_equal(mo_det_postprocess(d, s, lg, rg, &set, IN, IN, det, 400, &n_hard), MO_OK);
    assert_true(n_hard >= 1 && n_hard < 6);
    assert_int_equal(det[0].label, 1);
    set.soft_nms_sigma = 2.0; /* mild decay: exp(-iou^2 / 2) per overlapping kept box */
    set.score_thresh = 0.25; /* the other boxes stay at 0.2 */
    assert_int_equal(mo_det_postprocess(d, s, lg, rg, &set, IN, IN, det, 400, &n), MO_OK);
    if (n <= n_hard)
        fail_msg("soft-NMS kept %d boxes, hard NMS %d", n, n_hard);
    assert_true(det[n - 1].score < 0.9f);
    set.score_thresh = 0.5;
    for (int i = 1; i < n; i++)
        assert_true(det[i].score <= det[i - 1].score);
    set.soft_nms_sigma = 0;
    set.topk_candidates = 1;
    assert_int_equal(mo_det_postprocess(d, s, lg, rg, &set, IN, IN, det, 400, &n), MO_OK);
    assert_int_equal(n, 1);
    set.topk_candidates = 50;
    set.detections_per_img = 1;
    set.nms_thresh = 1.0; /* nothing suppressed */
    assert_int_equal(mo_det_postprocess(d, s, lg, rg, &set, IN, IN, det, 400, &n), MO_OK);
    assert_int_equal(n, 1);
    set.detections_per_img = 300;
    assert_int_equal(mo_det_postprocess(d, s, lg, rg, &set, IN, IN, det, 400, &n), MO_OK);
    assert_int_equal(n, 6);

    /* regression codes move the box; huge dw is clamped, then clipped to the image */
    memset(lg, 0, sizeof(float) * (size_t)N * K);
    lg[20 * K + 4] = 8.0f;
    rg[20 * 4 + 2] = 1000.0f;
    assert_int_equal(mo_det_postprocess(d, s, lg, rg, &set, 1, 1, det, 400, &n), MO_OK);
    assert_int_equal(n, 1);
    assert_int_equal(det[0].label, 4);
    assert_float_equal(det[0].x1, 0.0f, 0);
    assert_float_equal(det[0].x2, 1.0f, 0); /* 1x1 original image: everything scales to it */

    /* bad settings and arguments */
    set.topk_candidates = 51; /* above the open-time value that sized the workspace */
    assert_int_equal(mo_det_postprocess(d, s, lg, rg, &set, IN, IN, det, 400, &n), MO_EINVAL);
    assert_non_null(strstr(mo_last_error(), "topk_candidates"));
    mo_det_default_settings(&set);
    set.topk_candidates = 50;
    set.size = 8;
    assert_int_equal(mo_det_postprocess(d, s, lg, rg, &set, IN, IN, det, 400, &n), MO_EINVAL);
    mo_det_default_settings(&set);
    set.topk_candidates = 50;
    set.score_thresh = NAN;
    assert_int_equal(mo_det_postprocess(d, s, lg, rg, &set, IN, IN, det, 400, &n), MO_EINVAL);
    set.score_thresh = 0.5;
    set.soft_nms_sigma = -1;
    assert_int_equal(mo_det_postprocess(d, s, lg, rg, &set, IN, IN, det, 400, &n), MO_EINVAL);
    set.soft_nms_sigma = 0;
    assert_int_equal(mo_det_postprocess(d, s, lg, rg, &set, 0, IN, det, 400, &n), MO_EINVAL);
    assert_int_equal(mo_det_postprocess(d, s, NULL, rg, &set, IN, IN, det, 400, &n), MO_EINVAL);
    assert_int_equal(mo_det_postprocess(d, s, lg, rg, &set, IN, IN, det, 400, NULL), MO_EINVAL);

    free(lg);
    free(rg);
    mo_session_close(&s);
    mo_det_close(&d);
    json_object_put(meta);
    mg_free(&hm);
}

/*
 * Class-wise hard NMS of the post-processing against mo_nms() (the global greedy pass over
 * all candidates with labels) on random raw outputs: many overlapping candidates of a few
 * classes. The candidates are what the post-processing keeps with nothing suppressed
 * (nms_thresh 1, every detection), in its order; mo_nms on them must keep exactly the
 * detections the post-processing returns at each nms_thresh and detections_per_img.
 */
static void test_postprocess_nms_vs_global(void **state)
{
    (void)state;
    mg_model hm = { 0 };
    json_object *meta;
    mo_det *d = open_small(&hm, &meta);
    mo_session *s = open_session(d, 1);
    const int N = mo_det_num_anchors(d);
    float *lg = malloc(sizeof(float) * (size_t)N * K), *rg = malloc(sizeof(float) * (size_t)N * 4);
    const int cap = N * (K - 1);
    mo_detection *all = malloc(sizeof(*all) * (size_t)cap), *got = malloc(sizeof(*got) * (size_t)cap);
    float *box = malloc(sizeof(float) * 4 * (size_t)cap), *score = malloc(sizeof(float) * (size_t)cap);
    int *label = malloc(sizeof(int) * (size_t)cap), *keep = malloc(sizeof(int) * (size_t)cap);
    assert_true(lg && rg && all && got && box && score && label && keep);
    uint32_t r = 99;
    for (int trial = 0; trial < 6; trial++) {
        for (int i = 0; i < N * K; i++) {
            r = r * 1664525u + 1013904223u;
            lg[i] = (float)(r >> 8) / 16777216.0f * 6.0f - 3.0f;
        }
        for (int i = 0; i < N * 4; i++) {
            r = r * 1664525u + 1013904223u;
            rg[i] = (float)(r >> 8) / 16777216.0f - 0.5f;
        }
        mo_det_settings set;
        mo_det_default_settings(&set);
        set.score_thresh = 0.05;
        set.nms_thresh = 1.0;
        set.detections_per_img = cap; /* every candidate */
        int m;
        assert_int_equal(mo_det_postprocess(d, s, lg, rg, &set, IN, IN, all, cap, &m), MO_OK);
        assert_true(m > 50);
        for (int i = 0; i < m; i++) {
            memcpy(box + 4 * i, &all[i].x1, 4 * sizeof(float)); /* x1 y1 x2 y2 in order */
            score[i] = all[i].score;
            label[i] = all[i].label;
        }
        static const double thr[] = {0.3, 0.55};
        static const int dpi[] = {1, 7, 40, 300};
        for (int t = 0; t < 2; t++)
            for (int k = 0; k < 4; k++) {
                set.nms_thresh = thr[t];
                set.detections_per_img = dpi[k];
                int n, nk;
                assert_int_equal(mo_det_postprocess(d, s, lg, rg, &set, IN, IN, got, cap, &n),
                                 MO_OK);
                assert_int_equal(mo_nms(box, score, label, m, thr[t], dpi[k], keep, &nk), MO_OK);
                if (n != nk)
                    fail_msg("trial %d, nms %.2f, max %d: %d detections, mo_nms keeps %d", trial,
                             thr[t], dpi[k], n, nk);
                for (int i = 0; i < n; i++)
                    if (memcmp(&got[i], &all[keep[i]], sizeof(got[i])))
                        fail_msg("trial %d, nms %.2f, max %d: detection %d differs", trial, thr[t],
                                 dpi[k], i);
            }
    }
    free(lg), free(rg), free(all), free(got), free(box), free(score), free(label), free(keep);
    mo_session_close(&s);
    mo_det_close(&d);
    json_object_put(meta);
    mg_free(&hm);
}

/* Expect mo_det_open to fail with `code` and a message containing each of the words. */
static void expect_refused(mg_model *hm, json_object *meta, int code, const char *w1,
                           const char *w2)
{
    mo_det *d = (mo_det *)1;
    const int r = open_head(hm, meta, &d, NULL);
    if (r != code)
        fail_msg("mo_det_open returned %d (%s), expected %d", r, mo_last_error(), code);
    assert_null(d);
    const char *msg = mo_last_error();
    if ((w1 && !strstr(msg, w1)) || (w2 && !strstr(msg, w2)))
        fail_msg("message \"%s\" lacks \"%s\" / \"%s\"", msg, w1, w2 ? w2 : "");
    print_message("refused: %s\n", msg);
}

static void test_bad_files(void **state)
{
    (void)state;
    dg_head h = small_head();
    mg_model hm = { 0 };
    dg_build(&hm, &h);
    json_object *meta = head_meta();

    /* head for another backbone */
    dg_meta(meta, "mo.variant", "s1");
    expect_refused(&hm, meta, MO_EMISMATCH, "MobileOne-s1", "s0");
    dg_meta(meta, "mo.variant", NULL);
    expect_refused(&hm, meta, MO_EFORMAT, "mo.variant", NULL);
    dg_meta(meta, "mo.variant", "s0");
    dg_meta(meta, "mo.backbone_digest", "0123456789abcdef");
    expect_refused(&hm, meta, MO_EMISMATCH, "0123456789abcdef", fx.digest);
    dg_meta(meta, "mo.backbone_digest", NULL);
    expect_refused(&hm, meta, MO_EFORMAT, "mo.backbone_digest", NULL);
    dg_meta(meta, "mo.backbone_digest", fx.digest);
    dg_meta(meta, "mo.contents", "[\"backbone\"]");
    expect_refused(&hm, meta, MO_EFORMAT, "no detection head", NULL);
    dg_meta(meta, "mo.contents", "[\"det\"]");

    /* channels: a head built for MobileOne-s1 (stage3 512, stage4 1280) */
    mg_model other = { 0 };
    dg_head h1 = h;
    h1.c3 = 512;
    dg_build(&other, &h1);
    expect_refused(&other, meta, MO_EMISMATCH, "module_list.0.0.0.weight", "stage3, 256");
    mg_free(&other);
    h1 = h;
    h1.c4 = 1280;
    dg_build(&other, &h1);
    expect_refused(&other, meta, MO_EMISMATCH, "det.extra.0.0.0.weight", "stage4 has 1024");
    mg_free(&other);

    /* maps: metadata says 7, or the file has a 7th map, or fewer extra blocks */
    dg_meta(meta, "det.aspect_ratios", "[[2,3],[2,3],[2,3],[2,3],[2,3],[2,3],[2,3]]");
    expect_refused(&hm, meta, MO_EMISMATCH, "7 feature maps", "has 6");
    dg_meta(meta, "det.aspect_ratios", "[[2,3],[2,3],[2,3],[2,3],[2,3],[2,3]]");
    h1 = h;
    h1.nextra = 5;
    h1.extra[4] = 16;
    h1.anchors[6] = 6;
    dg_build(&other, &h1);
    expect_refused(&other, meta, MO_EMISMATCH, "the file has tensor", "6 maps");
    mg_free(&other);
    dg_meta(meta, "det.extra_channels", "[64,32,32]");
    expect_refused(&hm, meta, MO_EMISMATCH, "6 feature maps", "has 5");
    dg_meta(meta, "det.extra_channels", "[64,32,32,16]");

    /* neck blocks: metadata asks for one the file lacks; the file has one the metadata
     * does not name (its tensors are then unknown); a neck whose inner width is not the
     * metadata's */
    dg_meta(meta, "det.neck_channels", "[8,0]");
    expect_refused(&hm, meta, MO_EFORMAT, "det.neck.0.0.0.weight is missing", NULL);
    dg_meta(meta, "det.neck_channels", NULL);
    h1 = h;
    dg_build(&other, &h1);
    dg_conv_bn(&other, "det.neck.1.0", h.c4, 16, 0);
    dg_conv_bn(&other, "det.neck.1.1", 16, 16, 1);
    dg_conv_bn(&other, "det.neck.1.2", 16, h.c4, 0);
    expect_refused(&other, meta, MO_EMISMATCH, "det.neck.1", "neck widths [0,0]");
    dg_meta(meta, "det.neck_channels", "[0,24]");
    expect_refused(&other, meta, MO_EMISMATCH, "neck block 1 1x1", "1024 -> 24");
    dg_meta(meta, "det.neck_channels", "[0,16]");
    assert_int_equal(open_head(&other, meta, NULL, NULL), MO_OK);
    dg_meta(meta, "det.neck_channels", NULL);
    mg_free(&other);

    /* anchors: ratios [2] only = 4 boxes per location, but the weights predict 6 */
    dg_meta(meta, "det.aspect_ratios", "[[2],[2,3],[2,3],[2,3],[2,3],[2,3]]");
    expect_refused(&hm, meta, MO_EMISMATCH, "4 default boxes per location", "[30,256,1,1]");
    dg_meta(meta, "det.aspect_ratios", "[[2,3],[2,3],[2,3],[2,3],[2,3],[2,3]]");
    /* classes: 4 names for a 5-class head */
    dg_meta(meta, "det.classes", "[\"__background__\",\"a\",\"b\",\"c\"]");
    dg_meta(meta, "det.num_classes", NULL);
    expect_refused(&hm, meta, MO_EMISMATCH, "4 classes", "[30,256,1,1]");
    dg_meta(meta, "det.num_classes", "5");
    expect_refused(&hm, meta, MO_EFORMAT, "det.num_classes", NULL);
    dg_meta(meta, "det.classes", "[\"__background__\",\"cat\",\"dog\",\"car\",\"N/A\"]");

    /* malformed metadata */
    dg_meta(meta, "det.input_size", "[0,64]");
    expect_refused(&hm, meta, MO_EFORMAT, "det.input_size", NULL);
    dg_meta(meta, "det.input_size", "[64,64]");
    dg_meta(meta, "det.aspect_ratios", "[[2,3],\"x\"]");
    expect_refused(&hm, meta, MO_EFORMAT, "det.aspect_ratios", NULL);
    dg_meta(meta, "det.aspect_ratios", "[[2,3],[2,3],[2,3],[2,3],[2,3],[2,3]]");
    dg_meta(meta, "det.min_ratio", "abc");
    expect_refused(&hm, meta, MO_EFORMAT, "det.min_ratio", NULL);
    dg_meta(meta, "det.min_ratio", "0.2");
    dg_meta(meta, "det.classes", "[\"only-background\"]");
    expect_refused(&hm, meta, MO_EFORMAT, "det.classes", NULL);
    dg_meta(meta, "det.classes", "[\"__background__\",\"cat\",\"dog\",\"car\",\"N/A\"]");

    /* tensors: missing, BatchNorm variance not positive */
    mg_tensor *t = mg_find(&hm, "det.head.regression_head.module_list.3.1.bias");
    if (!t)
        abort();
    char saved[128];
    snprintf(saved, sizeof(saved), "%s", t->name);
    snprintf(t->name, sizeof(t->name), "det.head.regression_head.module_list.3.1.bias_");
    expect_refused(&hm, meta, MO_EFORMAT, "module_list.3.1.bias is missing", NULL);
    snprintf(t->name, sizeof(t->name), "%s", saved);
    t = mg_find(&hm, "det.extra.2.1.1.running_var");
    if (!t)
        abort();
    const float v = t->data[3];
    t->data[3] = -1.0f;
    expect_refused(&hm, meta, MO_EFORMAT, "det.extra.2.1.1.running_var[3]", NULL);
    t->data[3] = v;

    /* and it opens again once everything is back */
    assert_int_equal(open_head(&hm, meta, NULL, NULL), MO_OK);
    /* NULL arguments, bad settings */
    mo_det *d = NULL;
    assert_int_equal(mo_det_open(&d, NULL, fx.bb, NULL), MO_EINVAL);
    assert_int_equal(mo_det_open(NULL, fx.bbf, fx.bb, NULL), MO_EINVAL);
    mo_det_settings set;
    mo_det_default_settings(&set);
    set.detections_per_img = 0;
    assert_int_equal(open_head(&hm, meta, NULL, &set), MO_EINVAL);
    mo_det_close(NULL);
    mo_det_close(&d);

    json_object_put(meta);
    mg_free(&hm);
}

/* A combined file (backbone + head) opens against its own backbone. */
static void test_combined_file(void **state)
{
    (void)state;
    mg_model m = { 0 };
    mg_build(&m, "s0", 1, "backbone.");
    mo_file *bf = NULL;
    mo_backbone *bb = NULL;
    uint8_t *bytes;
    size_t size = mg_serialize(&m, &bytes);
    assert_int_equal(mo_file_open_memory(&bf, bytes, size), MO_OK);
    free(bytes);
    assert_int_equal(mo_backbone_open(&bb, bf, NULL), MO_OK);
    const dg_head h = small_head();
    dg_build(&m, &h);
    json_object *meta = head_meta();
    dg_meta(meta, "mo.contents", "[\"backbone\",\"det\"]");
    dg_meta(meta, "mo.arch", "mobileone");
    dg_meta(meta, "mo.backbone_form", "fused");
    dg_meta(meta, "mo.backbone_digest", mo_backbone_digest(bb));
    size = dg_serialize(&m, meta, &bytes);
    mo_file *f = NULL;
    assert_int_equal(mo_file_open_memory(&f, bytes, size), MO_OK);
    free(bytes);
    mo_backbone *bb2 = NULL;
    mo_det *d = NULL;
    assert_int_equal(mo_backbone_open(&bb2, f, NULL), MO_OK);
    assert_string_equal(mo_backbone_digest(bb2), mo_backbone_digest(bb));
    assert_int_equal(mo_det_open(&d, f, bb2, NULL), MO_OK);
    mo_det_close(&d);
    /* the fixture's backbone has other weights: refused */
    assert_int_equal(mo_det_open(&d, f, fx.bb, NULL), MO_EMISMATCH);
    mo_backbone_close(&bb2);
    mo_backbone_close(&bb);
    mo_file_close(&f);
    mo_file_close(&bf);
    json_object_put(meta);
    mg_free(&m);
}

static void test_run_errors(void **state)
{
    (void)state;
    mg_model hm = { 0 };
    const dg_head h = small_head();
    dg_build(&hm, &h);
    json_object *meta = head_meta();
    mo_det *d = NULL;
    assert_int_equal(open_head(&hm, meta, &d, NULL), MO_OK);
    static float x[IN * IN * 3];
    random_input(x, IN * IN * 3);
    mo_features f;
    mo_det_raw raw;
    mo_detection det[10];
    int n;

    /* no workspace, or too small */
    mo_session *s = open_session(d, 0);
    mo_tensor in = { x, IN, IN, 3, IN * 3 };
    assert_int_equal(mo_backbone_run(s, &in, 32, &f), MO_OK);
    assert_int_equal(mo_det_run_raw(d, s, &f, &raw), MO_EINVAL);
    assert_non_null(strstr(mo_last_error(), "workspace"));
    mo_session_close(&s);

    mo_session_settings ss;
    mo_session_default_settings(&ss);
    ss.max_width = ss.max_height = IN;
    ss.min_output_stride = 16;
    ss.workspace_bytes = mo_det_workspace_size(d);
    assert_int_equal(mo_session_open(&s, fx.bb, &ss), MO_OK);
    /* another input size */
    mo_tensor small = { x, 32, 32, 3, 32 * 3 };
    assert_int_equal(mo_backbone_run(s, &small, 32, &f), MO_OK);
    assert_int_equal(mo_det_run(d, s, &f, NULL, 32, 32, det, 10, &n), MO_EINVAL);
    assert_non_null(strstr(mo_last_error(), "64x64 input"));
    /* output stride 16: stage4 keeps stride 16 */
    assert_int_equal(mo_backbone_run(s, &in, 16, &f), MO_OK);
    assert_int_equal(mo_det_run(d, s, &f, NULL, 32, 32, det, 10, &n), MO_EINVAL);
    /* NULL */
    assert_int_equal(mo_det_run_raw(NULL, s, &f, &raw), MO_EINVAL);
    assert_int_equal(mo_det_run(d, s, NULL, NULL, 32, 32, det, 10, &n), MO_EINVAL);
    assert_int_equal(mo_det_workspace_size(NULL), 0);
    /* and it works on the right features */
    assert_int_equal(mo_backbone_run(s, &in, 32, &f), MO_OK);
    assert_int_equal(mo_det_run(d, s, &f, NULL, 1, 1, det, 10, &n), MO_OK);
    mo_session_close(&s);
    mo_det_close(&d);
    json_object_put(meta);
    mg_free(&hm);
}

/* The backbone kernels' ReLU6 mode (used by the head) against a naive clamp. */
static void test_relu6_kernels(void **state)
{
    (void)state;
    mo_conv_dsp dsp;
    mo_conv_dsp_init(&dsp, 0);
    enum { H = 7, W = 9, C = 24, CO = 40 };
    static float in[H * W * C], wdw[C * 9], pdw[C * 9], b[CO], wpw[CO * C];
    static float out[H * W * CO];
    static double ref[H * W * CO];
    float *ppw = malloc(sizeof(float) * mo_pw_packed_size(C, CO));
    for (int i = 0; i < H * W * C; i++)
        in[i] = frand() * 8.0f;
    for (int i = 0; i < C * 9; i++)
        wdw[i] = frand();
    for (int i = 0; i < CO * C; i++)
        wpw[i] = frand();
    for (int i = 0; i < CO; i++)
        b[i] = frand() * 3.0f;
    mo_dw_pack(pdw, wdw, C);
    mo_pw_pack(ppw, wpw, C, CO);
    for (int stride = 1; stride <= 2; stride++) {
        const int oh = (H - 1) / stride + 1, ow = (W - 1) / stride + 1;
        dsp.dw3x3(out, (ptrdiff_t)ow * C, in, W * C, H, W, C, stride, 1, pdw, b, MO_ACT_RELU6, 0,
                  oh);
        naive_conv(ref, NULL, in, W * C, H, W, C, C, C, 3, stride, 1, 1, wdw, b, 1);
        int clamped = 0;
        for (int i = 0; i < oh * ow * C; i++) {
            const double r = ref[i] > 6.0 ? 6.0 : ref[i];
            clamped += ref[i] > 6.0;
            assert_true(fabs(out[i] - r) < 1e-4);
        }
        assert_true(clamped > 0);
    }
    dsp.pw(out, in, (size_t)H * W, C, CO, ppw, b, MO_ACT_RELU6);
    naive_conv(ref, NULL, in, W * C, H, W, C, CO, 1, 1, 1, 0, 1, wpw, b, 1);
    for (int i = 0; i < H * W * CO; i++)
        assert_true(fabs(out[i] - (ref[i] > 6.0 ? 6.0 : ref[i])) < 1e-4);
    /* MO_ACT_NONE leaves negative values */
    dsp.pw(out, in, (size_t)H * W, C, CO, ppw, b, MO_ACT_NONE);
    naive_conv(ref, NULL, in, W * C, H, W, C, CO, 1, 1, 1, 0, 1, wpw, b, 0);
    for (int i = 0; i < H * W * CO; i++)
        assert_true(fabs(out[i] - ref[i]) < 1e-4);
    free(ppw);
}

/* Detection preprocessing: normalize-then-resize equals the two-step io path; 1x1 and
 * large images. */
static void test_preprocess(void **state)
{
    (void)state;
    const float mean[3] = { 0.485f, 0.456f, 0.406f }, std[3] = { 0.229f, 0.224f, 0.225f };
    static float a[320 * 320 * 3], b[320 * 320 * 3];
    const int sizes[][2] = { { 1, 1 }, { 37, 23 }, { 640, 426 }, { 64, 4000 }, { 320, 320 } };
    for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
        mo_image img;
        assert_int_equal(mo_image_alloc(&img, sizes[k][0], sizes[k][1]), MO_OK);
        for (size_t i = 0; i < (size_t)img.w * img.h * 3; i++)
            img.data[i] = (uint8_t)(frand() * 127.5f + 127.5f);
        mo_tensor t = { .data = a, .h = 320, .w = 320 };
        assert_int_equal(mo_preprocess_resize(&img, mean, std, &t), MO_OK);
        assert_int_equal(t.c, 3);
        float *full = malloc(sizeof(float) * (size_t)img.w * img.h * 3);
        mo_tensor ft = { .data = full };
        assert_int_equal(mo_image_to_tensor(&img, 0, 0, img.w, img.h, mean, std, &ft), MO_OK);
        mo_tensor rt = { .data = b, .h = 320, .w = 320, .c = 3 };
        assert_int_equal(mo_tensor_resize_bilinear(&ft, &rt), MO_OK);
        for (int i = 0; i < 320 * 320 * 3; i++)
            if (fabsf(a[i] - b[i]) > 2e-6f)
                fail_msg("%dx%d: element %d: %.9g vs %.9g", img.w, img.h, i, a[i], b[i]);
        if (img.w == 1)
            for (int i = 0; i < 320 * 320 * 3; i++)
                assert_true(fabsf(a[i] - a[i % 3]) < 1e-6f);
        /* bands of rows (as the pipeline's threads compute them): the same bytes, and
         * nothing outside each band is written */
        for (int i = 0; i < 320 * 320 * 3; i++)
            b[i] = -1e30f;
        mo_tensor bt = { .data = b, .h = 320, .w = 320 };
        const int cuts[] = { 0, 1, 77, 78, 200, 320 };
        for (int c = 1; c < 6; c++) {
            assert_int_equal(mo_preprocess_resize_rows(&img, mean, std, &bt, cuts[c - 1],
                                                       cuts[c]), MO_OK);
            for (int i = cuts[c] * 320 * 3; i < 320 * 320 * 3; i++)
                if (b[i] != -1e30f)
                    fail_msg("rows %d..%d wrote element %d", cuts[c - 1], cuts[c], i);
        }
        assert_memory_equal(a, b, sizeof(a));
        free(full);
        mo_image_free(&img);
    }
    mo_image img = { 0 };
    mo_tensor t = { .data = a, .h = 320, .w = 320 };
    assert_int_equal(mo_preprocess_resize(&img, mean, std, &t), MO_EINVAL);
    assert_int_equal(mo_image_alloc(&img, 4, 4), MO_OK);
    t.w = 0;
    assert_int_equal(mo_preprocess_resize(&img, mean, std, &t), MO_EINVAL);
    t.w = 320;
    const float zero[3] = { 1, 0, 1 };
    assert_int_equal(mo_preprocess_resize(&img, mean, zero, &t), MO_EINVAL);
    assert_int_equal(mo_preprocess_resize_rows(&img, mean, zero, &t, 0, 0), MO_EINVAL);
    assert_int_equal(mo_preprocess_resize_rows(&img, mean, std, &t, 0, 321), MO_EINVAL);
    assert_int_equal(mo_preprocess_resize_rows(&img, mean, std, &t, -1, 2), MO_EINVAL);
    assert_int_equal(mo_preprocess_resize_rows(&img, mean, std, &t, 3, 2), MO_EINVAL);
    mo_image_free(&img);
}

/* One model shared by threads, a session each: the same results as one thread. */
typedef struct worker {
    const mo_det *d;
    mo_session *s;
    const float *x;
    mo_detection det[300];
    int n, err;
} worker;

static void *work(void *arg)
{
    worker *w = arg;
    for (int rep = 0; rep < 3 && !w->err; rep++) {
        mo_tensor in = { (float *)w->x, IN, IN, 3, IN * 3 };
        mo_features f;
        w->err = mo_backbone_run(w->s, &in, 32, &f);
        if (!w->err)
            w->err = mo_det_run(w->d, w->s, &f, NULL, 500, 300, w->det, 300, &w->n);
    }
    return NULL;
}

static void test_threads(void **state)
{
    (void)state;
    mg_model hm = { 0 };
    const dg_head h = small_head();
    dg_build(&hm, &h);
    json_object *meta = head_meta();
    mo_det *d = NULL;
    assert_int_equal(open_head(&hm, meta, &d, NULL), MO_OK);
    static float x[IN * IN * 3];
    random_input(x, IN * IN * 3);
    static worker w[3];
    for (int i = 0; i < 3; i++)
        w[i] = (worker){ .d = d, .s = open_session(d, 1), .x = x };
    work(&w[0]); /* serial reference */
    assert_int_equal(w[0].err, MO_OK);
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&t[i], NULL, work, &w[1 + i]), 0);
    for (int i = 0; i < 2; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(w[1 + i].err, MO_OK);
        assert_int_equal(w[1 + i].n, w[0].n);
        assert_memory_equal(w[1 + i].det, w[0].det, sizeof(mo_detection) * (size_t)w[0].n);
    }
    for (int i = 0; i < 3; i++)
        mo_session_close(&w[i].s);
    mo_det_close(&d);
    json_object_put(meta);
    mg_free(&hm);
}

/* The head's convolutions run on the session's pool (output rows): raw outputs and
 * detections of a real-size head (320x320, SSDLite's extra widths) must be the same bits
 * for 1, 2, 3 and 4 threads of one session (MO_TEST_QUICK, e.g. under qemu: 1 and 3, the
 * uneven split). */
static void test_pool_identical(void **state)
{
    (void)state;
    enum { S = 320 };
    mg_model hm = { 0 };
    dg_head h = { .c3 = 256, .c4 = 1024, .k = K, .nextra = 4, .extra = { 512, 256, 256, 128 } };
    for (int l = 0; l < 6; l++)
        h.anchors[l] = 6;
    dg_build(&hm, &h);
    json_object *meta = head_meta();
    dg_meta(meta, "det.input_size", "[320,320]");
    dg_meta(meta, "det.extra_channels", "[512,256,256,128]");
    mo_det *d = NULL;
    assert_int_equal(open_head(&hm, meta, &d, NULL), MO_OK);
    float *x = malloc(sizeof(float) * S * S * 3);
    assert_non_null(x);
    random_input(x, S * S * 3);
    const mo_tensor in = { x, S, S, 3, S * 3 };
    const size_t nl = (size_t)mo_det_num_anchors(d) * K, nr = (size_t)mo_det_num_anchors(d) * 4;
    float *lg1 = malloc(sizeof(float) * nl), *rg1 = malloc(sizeof(float) * nr);
    static mo_detection det1[300], det[300];
    int n1 = 0;
    assert_true(lg1 && rg1);
    const int quick = mo_test_quick();
    if (quick)
        mo_quick_note("det_head", "test_pool_identical: 1 and 3 threads (2 and 4 skipped)");
    for (int t = 1; t <= 4; t++) {
        if (quick && (t == 2 || t == 4))
            continue;
        mo_session_settings ss;
        mo_session_default_settings(&ss);
        ss.max_width = ss.max_height = S;
        ss.workspace_bytes = mo_det_workspace_size(d);
        ss.threads = t;
        mo_session *s = NULL;
        assert_int_equal(mo_session_open(&s, fx.bb, &ss), MO_OK);
        mo_features f;
        assert_int_equal(mo_backbone_run(s, &in, 32, &f), MO_OK);
        mo_det_raw raw;
        assert_int_equal(mo_det_run_raw(d, s, &f, &raw), MO_OK);
        if (t == 1) {
            memcpy(lg1, raw.logits, sizeof(float) * nl);
            memcpy(rg1, raw.regression, sizeof(float) * nr);
        } else {
            if (memcmp(lg1, raw.logits, sizeof(float) * nl))
                fail_msg("%d threads: class logits differ from 1 thread", t);
            if (memcmp(rg1, raw.regression, sizeof(float) * nr))
                fail_msg("%d threads: box regression differs from 1 thread", t);
        }
        int n = 0;
        assert_int_equal(mo_det_run(d, s, &f, NULL, S, S, t == 1 ? det1 : det, 300, &n), MO_OK);
        if (t == 1)
            n1 = n;
        else {
            assert_int_equal(n, n1);
            assert_memory_equal(det, det1, sizeof(mo_detection) * (size_t)n);
        }
        mo_session_close(&s);
    }
    printf("  320x320: %zu logits, %zu box values, %d detections equal for %s threads\n", nl,
           nr, n1, quick ? "1 and 3" : "1..4");
    free(lg1);
    free(rg1);
    free(x);
    mo_det_close(&d);
    json_object_put(meta);
    mg_free(&hm);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_forward_vs_naive),
        cmocka_unit_test(test_postprocess_settings),
        cmocka_unit_test(test_postprocess_nms_vs_global),
        cmocka_unit_test(test_bad_files),
        cmocka_unit_test(test_combined_file),
        cmocka_unit_test(test_run_errors),
        cmocka_unit_test(test_relu6_kernels),
        cmocka_unit_test(test_preprocess),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_pool_identical),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
