/*
 * One model shared by NT threads, each with its own session, each on other images: the
 * backbone (every feature level), the classification, detection (raw outputs and final
 * boxes) and segmentation (logits and labels) heads, then the pipeline with all three
 * heads; every output equal to the bit to a one-thread run of the same image. Half of
 * the sessions run their backbone layers on 2 threads (the session's worker pool).
 *
 * Written for ThreadSanitizer (./test.sh runs it in a -Db_sanitize=thread build: a data
 * race in a model, head or pipeline shared between threads fails it there), and small
 * enough for it: generated S0 models (random weights) on 64 x 64 inputs.
 * Models are written to a temporary directory (the pipeline opens files).
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "detect/detgen.h"
#include "segment/seggen.h"
#include "mo/pipeline.h"

#define NT 8       /* threads */
#define NIMG 8     /* images; thread t runs image (t + r) % NIMG in round r */
#define ROUNDS 2
#define IN 64      /* backbone input side (the detection head's input size) */
#define NCLS 7
#define SEG_K 5
#define DET_CAP 100
enum { PW = 77, PH = 45 }; /* pipeline frames */

static char dir[64], bb_path[128], det_path[128], seg_path[128];
static float *images[NIMG];   /* IN x IN x 3 normalized inputs */
static uint8_t *frames[NIMG]; /* PW x PH RGB8 frames */

static void write_file(const char *path, const uint8_t *b, size_t n)
{
    FILE *f = fopen(path, "wb");
    SG_CHECK(f);
    SG_CHECK(fwrite(b, 1, n, f) == n);
    SG_CHECK(!fclose(f));
}

/* Backbone + classification head, detection head, segmentation head (output stride 16). */
static void write_models(void)
{
    mg_model bbm;
    mg_build_cls7(&bbm);
    bbm.meta[1][0] = "cls.resize";
    bbm.meta[1][1] = "72";
    bbm.meta[2][0] = "cls.crop";
    bbm.meta[2][1] = "64";
    uint8_t *bytes;
    size_t n = mg_serialize(&bbm, &bytes);
    write_file(bb_path, bytes, n);
    mo_file *f = NULL;
    mo_backbone *bb = NULL;
    SG_CHECK(!mo_file_open_memory(&f, bytes, n) && !mo_backbone_open(&bb, f, NULL));
    char digest[17];
    snprintf(digest, sizeof(digest), "%s", mo_backbone_digest(bb));
    mo_backbone_close(&bb);
    mo_file_close(&f);
    free(bytes);
    mg_free(&bbm);

    mg_model hm;
    json_object *m = dg_small_head(&hm, digest);
    n = dg_serialize(&hm, m, &bytes);
    write_file(det_path, bytes, n);
    free(bytes);
    json_object_put(m);
    mg_free(&hm);

    mg_model sm;
    const head_spec sh = small_seg_head(&sm, SEG_K);
    n = serialize_seg_head(&sm, &sh, digest, "16", &bytes);
    write_file(seg_path, bytes, n);
    free(bytes);
    mg_free(&sm);
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/mo-threads-XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    snprintf(bb_path, sizeof(bb_path), "%s/bb.safetensors", dir);
    snprintf(det_path, sizeof(det_path), "%s/det.safetensors", dir);
    snprintf(seg_path, sizeof(seg_path), "%s/seg.safetensors", dir);
    write_models();
    for (int i = 0; i < NIMG; i++) {
        images[i] = malloc(sizeof(float) * IN * IN * 3);
        frames[i] = malloc(PW * PH * 3);
        SG_CHECK(images[i] && frames[i]);
        for (int j = 0; j < IN * IN * 3; j++)
            images[i][j] = frand() * 2.0f;
        uint32_t st = 12345u + 977u * (uint32_t)i;
        for (int j = 0; j < PW * PH * 3; j++) {
            st = st * 1103515245u + 12345u;
            frames[i][j] = (uint8_t)(((st >> 16) & 0xff) / 2 + (j / 3) % PW);
        }
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    remove(bb_path);
    remove(det_path);
    remove(seg_path);
    rmdir(dir);
    for (int i = 0; i < NIMG; i++) {
        free(images[i]);
        free(frames[i]);
    }
    return 0;
}

/* ------------------------------------------------------- backbone and heads */

typedef struct model {
    mo_file *bbf, *detf, *segf;
    mo_backbone *bb;
    mo_cls *cls;
    mo_det *det;
    mo_seg *seg;
    size_t workspace;
} model;

/* Everything one image gives, copied out of the session. */
typedef struct result {
    float *level[MO_NUM_LEVELS]; /* stride-32 run */
    size_t nlevel[MO_NUM_LEVELS];
    float cls[NCLS];
    float *det_raw; /* logits then regression */
    size_t ndet_raw;
    mo_detection det[DET_CAP];
    int ndet;
    float *seg_logits;
    size_t nseg;
    uint8_t labels[IN * IN];
} result;

static void free_result(result *r)
{
    for (int l = 0; l < MO_NUM_LEVELS; l++)
        free(r->level[l]);
    free(r->det_raw);
    free(r->seg_logits);
    memset(r, 0, sizeof(*r));
}

static float *dup_floats(const float *a, size_t n, const float *b, size_t nb)
{
    float *p = malloc(sizeof(float) * (n + nb + 1));
    if (p) {
        memcpy(p, a, sizeof(float) * n);
        if (nb)
            memcpy(p + n, b, sizeof(float) * nb);
    }
    return p;
}

/* One image through the backbone and every head; MO_OK or the first error. Runs in the
 * worker threads: no cmocka assertion here. */
static int run_image(const model *m, mo_session *s, const float *img, result *r)
{
    const mo_tensor in = {(float *)img, IN, IN, 3, IN * 3};
    mo_features f;
    int ret = mo_backbone_run(s, &in, 32, &f);
    if (ret)
        return ret;
    for (int l = 0; l < MO_NUM_LEVELS; l++) {
        const mo_tensor *t = &f.level[l];
        r->nlevel[l] = (size_t)t->h * t->w * t->c;
        if (!(r->level[l] = dup_floats(t->data, r->nlevel[l], NULL, 0)))
            return MO_ENOMEM;
    }
    if ((ret = mo_cls_logits(m->cls, &f, r->cls)))
        return ret;
    mo_det_raw raw;
    if ((ret = mo_det_run_raw(m->det, s, &f, &raw)))
        return ret;
    const size_t nl = (size_t)raw.num_anchors * raw.num_classes, nr = (size_t)raw.num_anchors * 4;
    r->ndet_raw = nl + nr;
    if (!(r->det_raw = dup_floats(raw.logits, nl, raw.regression, nr)))
        return MO_ENOMEM;
    if ((ret = mo_det_run(m->det, s, &f, NULL, IN, IN, r->det, DET_CAP, &r->ndet)))
        return ret;
    if ((ret = mo_backbone_run(s, &in, 16, &f)))
        return ret;
    mo_tensor logits;
    if ((ret = mo_seg_logits(m->seg, s, &f, &logits)))
        return ret;
    r->nseg = (size_t)logits.h * logits.w * logits.c;
    if (!(r->seg_logits = dup_floats(logits.data, r->nseg, NULL, 0)))
        return MO_ENOMEM;
    return mo_seg_run(m->seg, s, &f, IN, IN, r->labels, IN, NULL);
}

static int open_session(const model *m, int threads, mo_session **s)
{
    mo_session_settings ss;
    mo_session_default_settings(&ss);
    ss.max_height = ss.max_width = IN;
    ss.min_output_stride = 16;
    ss.workspace_bytes = m->workspace;
    ss.threads = threads;
    return mo_session_open(s, m->bb, &ss);
}

/* 0 when equal to the bit, else prints what differs. */
static int same(const result *a, const result *b, const char *what)
{
    int bad = 0;
#define CMP(cond, name) \
    if (!(cond)) { print_error("%s: %s: not those of the one-thread run\n", what, name); bad = 1; }
    for (int l = 0; l < MO_NUM_LEVELS; l++)
        CMP(a->nlevel[l] == b->nlevel[l] &&
                !memcmp(a->level[l], b->level[l], sizeof(float) * a->nlevel[l]),
            "a feature level");
    CMP(!memcmp(a->cls, b->cls, sizeof(a->cls)), "the classification logits");
    CMP(a->ndet_raw == b->ndet_raw && !memcmp(a->det_raw, b->det_raw, sizeof(float) * a->ndet_raw),
        "the raw detection outputs");
    CMP(a->ndet == b->ndet && !memcmp(a->det, b->det, sizeof(mo_detection) * (size_t)a->ndet),
        "the detections");
    CMP(a->nseg == b->nseg && !memcmp(a->seg_logits, b->seg_logits, sizeof(float) * a->nseg),
        "the segmentation logits");
    CMP(!memcmp(a->labels, b->labels, sizeof(a->labels)), "the label map");
#undef CMP
    return bad;
}

typedef struct worker {
    const model *m;
    int t;
    int rc;
    result res[ROUNDS];
} worker;

static void *worker_run(void *v)
{
    worker *w = v;
    mo_session *s = NULL;
    w->rc = open_session(w->m, 1 + (w->t & 1), &s);
    for (int r = 0; !w->rc && r < ROUNDS; r++)
        w->rc = run_image(w->m, s, images[(w->t + r) % NIMG], &w->res[r]);
    mo_session_close(&s);
    return NULL;
}

static void test_heads_shared(void **state)
{
    (void)state;
    model m = {0};
    assert_int_equal(mo_file_open(&m.bbf, bb_path), MO_OK);
    assert_int_equal(mo_file_open(&m.detf, det_path), MO_OK);
    assert_int_equal(mo_file_open(&m.segf, seg_path), MO_OK);
    assert_int_equal(mo_backbone_open(&m.bb, m.bbf, NULL), MO_OK);
    assert_int_equal(mo_cls_open(&m.cls, m.bbf, m.bb, NULL), MO_OK);
    assert_int_equal(mo_det_open(&m.det, m.detf, m.bb, NULL), MO_OK);
    assert_int_equal(mo_seg_open(&m.seg, m.segf, m.bb, NULL), MO_OK);
    size_t segws = 0;
    assert_int_equal(mo_seg_workspace_size(m.seg, IN, IN, 16, &segws), MO_OK);
    m.workspace = mo_det_workspace_size(m.det);
    if (segws > m.workspace)
        m.workspace = segws;

    /* references: one session, one thread, image by image */
    static result ref[NIMG];
    mo_session *s = NULL;
    assert_int_equal(open_session(&m, 1, &s), MO_OK);
    for (int i = 0; i < NIMG; i++) {
        assert_int_equal(run_image(&m, s, images[i], &ref[i]), MO_OK);
        assert_true(ref[i].ndet > 0); /* something to compare */
    }
    mo_session_close(&s);
    /* the images differ, so a thread reading another's buffers would be seen */
    assert_memory_not_equal(ref[0].seg_logits, ref[1].seg_logits, sizeof(float) * ref[0].nseg);

    static worker w[NT];
    pthread_t th[NT];
    for (int t = 0; t < NT; t++) {
        w[t] = (worker){.m = &m, .t = t};
        assert_int_equal(pthread_create(&th[t], NULL, worker_run, &w[t]), 0);
    }
    int bad = 0;
    for (int t = 0; t < NT; t++) {
        assert_int_equal(pthread_join(th[t], NULL), 0);
        if (w[t].rc) {
            print_error("thread %d: %s (%s)\n", t, mo_strerror(w[t].rc), mo_last_error());
            bad = 1;
        }
        for (int r = 0; !w[t].rc && r < ROUNDS; r++) {
            char what[64];
            snprintf(what, sizeof(what), "thread %d, image %d", t, (t + r) % NIMG);
            bad |= same(&w[t].res[r], &ref[(t + r) % NIMG], what);
        }
        for (int r = 0; r < ROUNDS; r++)
            free_result(&w[t].res[r]);
    }
    for (int i = 0; i < NIMG; i++)
        free_result(&ref[i]);
    mo_seg_close(&m.seg);
    mo_det_close(&m.det);
    mo_cls_close(&m.cls);
    mo_backbone_close(&m.bb);
    mo_file_close(&m.segf);
    mo_file_close(&m.detf);
    mo_file_close(&m.bbf);
    assert_false(bad);
}

/* ------------------------------------------------------------ the pipeline */

typedef struct pipe_out {
    mo_pipeline_result res;
    mo_detection det[DET_CAP];
    uint8_t lab[PW * PH];
} pipe_out;

static int pipe_run(mo_pipeline_session *s, int img, pipe_out *o)
{
    const mo_frame fr = {.format = MO_FRAME_RGB, .width = PW, .height = PH,
                         .data = {frames[img]}, .stride = {PW * 3}};
    o->res = (mo_pipeline_result){.size = sizeof(o->res), .detections = o->det,
                                  .det_capacity = DET_CAP, .labels = o->lab,
                                  .label_stride = PW};
    return mo_pipeline_run(s, &fr, &o->res);
}

static int pipe_same(const pipe_out *a, const pipe_out *b)
{
    return a->res.num_top == b->res.num_top &&
           !memcmp(a->res.top, b->res.top, sizeof(mo_class_score) * (size_t)a->res.num_top) &&
           a->res.num_detections == b->res.num_detections &&
           !memcmp(a->det, b->det, sizeof(mo_detection) * (size_t)a->res.num_detections) &&
           a->res.has_labels && b->res.has_labels && !memcmp(a->lab, b->lab, sizeof(a->lab));
}

typedef struct pipe_worker {
    const mo_pipeline *p;
    int t;
    int rc;
    pipe_out out[ROUNDS];
} pipe_worker;

static void *pipe_worker_run(void *v)
{
    pipe_worker *w = v;
    mo_pipeline_session *s = NULL;
    w->rc = mo_pipeline_session_open(&s, w->p, NULL);
    for (int r = 0; !w->rc && r < ROUNDS; r++)
        w->rc = pipe_run(s, (w->t + r) % NIMG, &w->out[r]);
    mo_pipeline_session_close(&s);
    return NULL;
}

static void test_pipeline_shared(void **state)
{
    (void)state;
    const char *heads[] = {det_path, seg_path};
    mo_pipeline *p = NULL;
    assert_int_equal(mo_pipeline_open(&p, bb_path, heads, 2, NULL), MO_OK);
    static pipe_out ref[NIMG];
    mo_pipeline_session *s = NULL;
    assert_int_equal(mo_pipeline_session_open(&s, p, NULL), MO_OK);
    for (int i = 0; i < NIMG; i++) {
        assert_int_equal(pipe_run(s, i, &ref[i]), MO_OK);
        assert_true(ref[i].res.num_top > 0 && ref[i].res.num_detections > 0 &&
                    ref[i].res.has_labels);
    }
    mo_pipeline_session_close(&s);
    static pipe_worker w[NT];
    pthread_t th[NT];
    for (int t = 0; t < NT; t++) {
        w[t] = (pipe_worker){.p = p, .t = t};
        assert_int_equal(pthread_create(&th[t], NULL, pipe_worker_run, &w[t]), 0);
    }
    int bad = 0;
    for (int t = 0; t < NT; t++) {
        assert_int_equal(pthread_join(th[t], NULL), 0);
        if (w[t].rc) {
            print_error("pipeline thread %d: %s\n", t, mo_strerror(w[t].rc));
            bad = 1;
        }
        for (int r = 0; !w[t].rc && r < ROUNDS; r++)
            if (!pipe_same(&w[t].out[r], &ref[(t + r) % NIMG])) {
                print_error("pipeline thread %d, image %d: differs from the one-thread run\n",
                            t, (t + r) % NIMG);
                bad = 1;
            }
    }
    mo_pipeline_close(&p);
    assert_false(bad);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_heads_shared),
        cmocka_unit_test(test_pipeline_shared),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
