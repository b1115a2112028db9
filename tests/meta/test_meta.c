/*
 * Model metadata validated once (core/meta.c), the same way by every reader: each bad
 * field of a classification, detection and segmentation head and of a backbone file is
 * refused at open with its code and a message naming the field, through the head's own
 * open and through the pipeline's head detection (which probes mo.contents). Also: the
 * memory a head's metadata implies against mo_limits.model_memory_bytes, the class count
 * against max_categories, the public readers, and mo_fail() given mo_last_error() itself.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "mo_internal/errors.h"
#include "detect/detgen.h"
#include "segment/seggen.h"
#include "mo/classify.h"
#include "mo/detect.h"
#include "mo/limits.h"
#include "mo/pipeline.h"
#include "mo/segment.h"

enum kind { CLS, DET, SEG, BACKBONE };
static const char *const kind_name[] = {"cls", "det", "seg", "backbone"};

static mg_model bbm;
static mo_file *bbf;
static mo_backbone *bb;
static char digest[17], dir[64], bb_path[128];

static void write_file(const char *path, const uint8_t *b, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(b, 1, n, f), n);
    fclose(f);
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/mo-meta-XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    mg_build(&bbm, "s0", 1, "backbone.");
    uint8_t *bytes;
    const size_t n = mg_serialize(&bbm, &bytes);
    snprintf(bb_path, sizeof(bb_path), "%s/bb.safetensors", dir);
    FILE *f = fopen(bb_path, "wb");
    if (!f || fwrite(bytes, 1, n, f) != n)
        return -1;
    fclose(f);
    if (mo_file_open_memory(&bbf, bytes, n) || mo_backbone_open(&bb, bbf, NULL))
        return -1;
    free(bytes);
    snprintf(digest, sizeof(digest), "%s", mo_backbone_digest(bb));
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    mo_backbone_close(&bb);
    mo_file_close(&bbf);
    mg_free(&bbm);
    unlink(bb_path);
    rmdir(dir);
    return 0;
}

/* A valid file of the kind, with key set to value (NULL: removed); *n its size. */
static uint8_t *build(enum kind kind, const char *key, const char *value, size_t *n)
{
    mg_model m;
    memset(&m, 0, sizeof(m));
    const char *kv[40];
    int k = 0;
#define KV(a, b) (kv[k++] = (a), kv[k++] = (b))
    const char *contents = NULL;
    if (kind == BACKBONE) {
        KV("mo.mean", "[0.485,0.456,0.406]");
    } else {
        KV("mo.variant", "s0");
        KV("mo.backbone_digest", digest);
        KV("mo.backbone_form", NULL);
    }
    if (kind == CLS) {
        mg_add(&m, "cls.linear.weight", 2, 3, 1024, 0, 0, -1, 1);
        mg_add(&m, "cls.linear.bias", 1, 3, 0, 0, 0, -1, 1);
        contents = "[\"cls\"]";
        KV("cls.classes", "[\"a\",\"b\",\"c\"]");
        KV("cls.crop", "64");
    } else if (kind == DET) {
        dg_head h = {.c3 = 256, .c4 = 1024, .k = 5, .nextra = 4, .extra = {64, 32, 32, 16}};
        for (int l = 0; l < 6; l++)
            h.anchors[l] = 6;
        dg_build(&m, &h);
        contents = "[\"det\"]";
        KV("det.classes", "[\"__background__\",\"cat\",\"dog\",\"car\",\"N/A\"]");
        KV("det.num_classes", "5");
        KV("det.input_size", "[64,64]");
        KV("det.extra_channels", "[64,32,32,16]");
        KV("det.box_weights", "[10,10,5,5]");
    } else if (kind == SEG) {
        static const head_spec sh = {1024, 16, 12, 5, 3, {2, 4, 6}};
        add_head(&m, &sh);
        contents = "[\"seg\"]";
        KV("seg.classes", "[\"bg\",\"a\",\"b\",\"c\",\"d\"]");
        KV("seg.rates", "[2,4,6]");
    }
    KV(key, value);
    kv[k] = NULL;
#undef KV
    uint8_t *bytes;
    *n = serialize_with_meta(kind == BACKBONE ? &bbm : &m, contents, kv, &bytes);
    mg_free(&m);
    return bytes;
}

/* Open bytes as the kind (against the fixture's backbone); the code of the open. */
static int open_kind(enum kind kind, const uint8_t *bytes, size_t n)
{
    mo_file *f = NULL;
    int r = mo_file_open_memory(&f, bytes, n);
    if (r)
        return r;
    if (kind == CLS) {
        mo_cls *c = NULL;
        r = mo_cls_open(&c, f, bb, NULL);
        mo_cls_close(&c);
    } else if (kind == DET) {
        mo_det *d = NULL;
        r = mo_det_open(&d, f, bb, NULL);
        mo_det_close(&d);
    } else if (kind == SEG) {
        mo_seg *s = NULL;
        r = mo_seg_open(&s, f, bb, NULL);
        mo_seg_close(&s);
    } else {
        mo_backbone *b = NULL;
        r = mo_backbone_open(&b, f, NULL);
        mo_backbone_close(&b);
    }
    mo_file_close(&f);
    return r;
}

/* The pipeline on the fixture's backbone with this head file (or this backbone file). */
static int open_pipeline(enum kind kind, const uint8_t *bytes, size_t n)
{
    char path[160];
    snprintf(path, sizeof(path), "%s/%s.safetensors", dir, kind_name[kind]);
    write_file(path, bytes, n);
    mo_pipeline *p = NULL;
    const char *heads[1] = {path};
    const int r = kind == BACKBONE ? mo_pipeline_open(&p, path, NULL, 0, NULL)
                                   : mo_pipeline_open(&p, bb_path, heads, 1, NULL);
    mo_pipeline_close(&p);
    unlink(path);
    return r;
}

typedef struct bad_case {
    enum kind kind;
    const char *key, *value;
    int code;
    const char *words; /* expected in the message */
} bad_case;

static const bad_case cases[] = {
    /* detection: silent garbage before (NaN boxes, 0x0 boxes), the UB message */
    {DET, "det.min_ratio", "1e308", MO_EFORMAT, "metadata det.min_ratio = 1e+308 must be"},
    {DET, "det.min_ratio", "-1", MO_EFORMAT, "metadata det.min_ratio = -1 must be positive"},
    {DET, "det.max_ratio", "0", MO_EFORMAT, "det.max_ratio = 0 must be positive"},
    {DET, "det.box_weights", "[1e-40,10,5,5]", MO_EFORMAT, "det.box_weights[0] = 1e-40"},
    {DET, "det.box_weights", "[10,10,5,1e9]", MO_EFORMAT, "det.box_weights[3] = 1e+09"},
    {DET, "det.box_weights", "[10,10,5]", MO_EFORMAT, "det.box_weights = [10,10,5] is not"},
    {DET, "det.box_clip", "-100", MO_EFORMAT, "det.box_clip = -100 must be positive"},
    {DET, "det.box_clip", "1e30", MO_EFORMAT, "det.box_clip = 1e+30"},
    {DET, "det.scales", "[0,0,0,0,0,0,0]", MO_EFORMAT, "det.scales[0] = 0 must be positive"},
    {DET, "det.scales", "[0.1,0.2]", MO_EFORMAT, "metadata det.scales / det.aspect_ratios: "
                                                 "anchor config: 2 scales for 6 levels"},
    {DET, "det.aspect_ratios", "[[2,3],[2,3],[2,3],[2,3],[2,3],[0,3]]", MO_EFORMAT,
     "det.aspect_ratios[5][0] = 0 must be positive"},
    {DET, "det.aspect_ratios", "[[2,3],[2,NaN]]", MO_EFORMAT, "det.aspect_ratios = [[2,3],"},
    /* cut short: the parser must stop at the end of the text (ASan builds see overreads) */
    {DET, "det.aspect_ratios", "[[2,3],[2", MO_EFORMAT, "det.aspect_ratios = [[2,3],[2 is not"},
    {DET, "det.aspect_ratios", "[[2,3],", MO_EFORMAT, "det.aspect_ratios = [[2,3], is not"},
    {DET, "det.box_weights", "[10,", MO_EFORMAT, "det.box_weights = [10, is not"},
    {DET, "det.classes", "[\"bg\",\"x", MO_EFORMAT, "det.classes[1] is not a JSON string"},
    {DET, "det.classes", "[\"bg\",", MO_EFORMAT, "det.classes = [\"bg\", is not"},
    {DET, "det.bn_eps", "1e30", MO_EFORMAT, "det.bn_eps = 1e+30"},
    {DET, "det.bn_eps", "-1", MO_EFORMAT, "det.bn_eps = -1"},
    {DET, "det.clip_anchors", "2", MO_EFORMAT, "det.clip_anchors = 2 must be an integer"},
    {DET, "det.num_classes", "5.5", MO_EFORMAT, "det.num_classes = 5.5 must be an integer"},
    {DET, "det.extra_channels", "[63,32,32,16]", MO_EFORMAT, "det.extra_channels[0] = 63 must "
                                                            "be an even integer"},
    {DET, "det.neck_channels", "[32]", MO_EFORMAT, "det.neck_channels = [32] is not"},
    {DET, "det.neck_channels", "[32,-1]", MO_EFORMAT, "det.neck_channels[1] = -1"},
    {DET, "det.neck_channels", "[32,7.5]", MO_EFORMAT, "det.neck_channels[1] = 7.5 must be an "
                                                      "integer"},
    {DET, "det.neck_channels", "[32,65537]", MO_EFORMAT, "det.neck_channels[1] = 65537"},
    {DET, "det.input_size", "[64,0]", MO_EFORMAT, "det.input_size[1] = 0 must be positive"},
    {DET, "det.input_size", "[64.5,64]", MO_EFORMAT, "det.input_size[0] = 64.5"},
    {DET, "det.input_size", "[4096,4096]", MO_EUNSUPPORTED, "det.input_size: a 4096x4096 "
                                                            "input needs"},
    {DET, "det.input_size", "[8192,8192]", MO_EUNSUPPORTED, "over the limit model_memory_bytes"},
    {DET, "det.classes", "[\"bg\",7,\"x\"]", MO_EFORMAT, "det.classes[1] is not a JSON string"},
    {DET, "det.classes", "[\"bg\\u0000\",\"x\"]", MO_EFORMAT, "det.classes[0] is not a JSON string"},
    /* dataset category ids (tools/train_head.py): one per class after the background */
    {DET, "det.category_ids", "[1,2,3]", MO_EFORMAT, "det.category_ids lists 3 ids, but "
                                                     "det.classes has 4 classes"},
    {DET, "det.category_ids", "[1,2,3,4,5]", MO_EFORMAT, "lists 5 ids"},
    {DET, "det.category_ids", "[7,0,3,7]", MO_EFORMAT, "det.category_ids lists id 7 twice"},
    {DET, "det.category_ids", "[1,2,3,-1]", MO_EFORMAT, "det.category_ids[3] = -1 must be an "
                                                        "integer"},
    {DET, "det.category_ids", "[1,2.5,3,4]", MO_EFORMAT, "det.category_ids[1] = 2.5"},
    {DET, "det.category_ids", "[1,2,3,3e9]", MO_EFORMAT, "det.category_ids[3] = 3e+09"},
    {DET, "det.category_ids", "[1,2,3,", MO_EFORMAT, "det.category_ids = [1,2,3, is not"},
    {DET, "det.category_ids", "[1,2,\"x\",4]", MO_EFORMAT, "is not a JSON list of integers"},
    {DET, "det.category_ids", "[]", MO_EFORMAT, "det.category_ids = [] is not"},
    {DET, "mo.mean", "[NaN,0.456,0.406]", MO_EFORMAT, "metadata mo.mean = [NaN,0.456,0.406]"},
    {DET, "mo.std", "[0.229,-1,0.225]", MO_EFORMAT, "metadata mo.std[1] = -1 must be positive"},
    {DET, "mo.contents", "[\"det\"", MO_EFORMAT, "mo.contents"},
    /* segmentation */
    {SEG, "seg.bn_eps", "1e30", MO_EFORMAT, "seg.bn_eps = 1e+30"},
    {SEG, "seg.bn_eps", "-0.5", MO_EFORMAT, "seg.bn_eps = -0.5"},
    {SEG, "seg.output_stride", "12", MO_EFORMAT, "seg.output_stride = 12 must be 8, 16 or 32"},
    {SEG, "seg.rates", "[2,0,6]", MO_EFORMAT, "seg.rates[1] = 0 must be positive"},
    {SEG, "seg.classes", "[\"bg\",\"a\",\"b\",\"c\",1]", MO_EFORMAT, "seg.classes[4]"},
    {SEG, "mo.mean", "[NaN,0.456,0.406]", MO_EFORMAT, "mo.mean"},
    {SEG, "mo.mean", "[1e400,0.456,0.406]", MO_EFORMAT, "mo.mean[0] = inf"},
    {SEG, "mo.std", "[0.229,-1,0.225]", MO_EFORMAT, "metadata mo.std[1] = -1 must be positive"},
    {SEG, "mo.std", "[0.229,0,0.225]", MO_EFORMAT, "metadata mo.std[1] = 0 must be positive"},
    /* classification */
    {CLS, "cls.crop", "4096", MO_EUNSUPPORTED, "cls.crop: a 4096x4096 input needs"},
    {CLS, "cls.crop", "0", MO_EFORMAT, "cls.crop = 0 must be positive"},
    {CLS, "cls.crop", "224px", MO_EFORMAT, "cls.crop = \"224px\" is not a number"},
    {CLS, "cls.resize", "1e9", MO_EFORMAT, "cls.resize = 1e+09"},
    {CLS, "mo.std", "[0.229,-1,0.225]", MO_EFORMAT, "metadata mo.std[1] = -1 must be positive"},
    {CLS, "cls.classes", "[]", MO_EFORMAT, "cls.classes lists 0 names"},
    /* the backbone's own file */
    {BACKBONE, "mo.bn_eps", "1e30", MO_EFORMAT, "metadata mo.bn_eps = 1e+30"},
    {BACKBONE, "mo.bn_eps", "nan", MO_EFORMAT, "mo.bn_eps = \"nan\" is not a number"},
    {BACKBONE, "mo.mean", "[NaN,0.456,0.406]", MO_EFORMAT, "metadata mo.mean"},
    {BACKBONE, "mo.mean", "[0.4,0.4]", MO_EFORMAT, "mo.mean = [0.4,0.4] is not a JSON list of 3"},
    {BACKBONE, "mo.std", "[0.229,-1,0.225]", MO_EFORMAT, "metadata mo.std[1] = -1 must be "
                                                        "positive"},
};

static void check_refusal(const bad_case *c, int r, const char *how)
{
    const char *msg = mo_last_error();
    if (r != c->code || !strstr(msg, c->words))
        fail_msg("%s %s with %s = %s: got %d \"%s\", expected %d with \"%s\"", how,
                 kind_name[c->kind], c->key, c->value, r, msg, c->code, c->words);
    /* context is added once: no doubled prefix (mo_fail with mo_last_error() was UB) */
    const char *again = strstr(msg, c->words);
    if (strchr(c->words, ' ') && strstr(again + 1, c->words))
        fail_msg("%s: message repeats itself: \"%s\"", how, msg);
}

static void test_bad_fields(void **state)
{
    (void)state;
    /* every kind opens as built */
    for (int k = CLS; k <= BACKBONE; k++) {
        size_t n;
        uint8_t *b = build((enum kind)k, "mo.source", "test", &n);
        if (open_kind((enum kind)k, b, n) != MO_OK)
            fail_msg("valid %s file refused: %s", kind_name[k], mo_last_error());
        if (k != BACKBONE && open_pipeline((enum kind)k, b, n) != MO_OK)
            fail_msg("pipeline refused a valid %s head: %s", kind_name[k], mo_last_error());
        free(b);
    }
    int pipelined = 0;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const bad_case *c = &cases[i];
        size_t n;
        uint8_t *b = build(c->kind, c->key, c->value, &n);
        check_refusal(c, open_kind(c->kind, b, n), "open");
        print_message("  %s %s = %s: %s\n", kind_name[c->kind], c->key, c->value,
                      mo_last_error());
        /* the pipeline: heads, and one backbone file (each write is 20 MB) */
        if (c->kind != BACKBONE || !strcmp(c->key, "mo.std")) {
            check_refusal(c, open_pipeline(c->kind, b, n), "pipeline");
            pipelined++;
        }
        free(b);
    }
    assert_true(pipelined > 40);
}

/* model_memory_bytes is what decides, not a fixed bound: a small limit refuses an input the
 * default accepts; max_categories bounds class lists. */
static void test_limits(void **state)
{
    (void)state;
    mo_limits lim;
    mo_limits_default(&lim);
    size_t n;
    uint8_t *det = build(DET, "det.input_size", "[512,512]", &n);
    assert_int_equal(open_kind(DET, det, n), MO_OK);
    lim.model_memory_bytes = 16u << 20;
    assert_int_equal(mo_limits_set(&lim), MO_OK);
    assert_int_equal(open_kind(DET, det, n), MO_EUNSUPPORTED);
    assert_non_null(strstr(mo_last_error(), "(16 MiB)"));
    assert_int_equal(open_pipeline(DET, det, n), MO_EUNSUPPORTED);
    assert_non_null(strstr(mo_last_error(), "det.input_size"));
    free(det);
    uint8_t *cls = build(CLS, "cls.crop", "512", &n);
    assert_int_equal(open_kind(CLS, cls, n), MO_EUNSUPPORTED);
    assert_non_null(strstr(mo_last_error(), "cls.crop"));
    free(cls);
    mo_limits_default(&lim);
    lim.max_categories = 4;
    assert_int_equal(mo_limits_set(&lim), MO_OK);
    det = build(DET, "mo.source", "x", &n);
    assert_int_equal(open_kind(DET, det, n), MO_EUNSUPPORTED);
    assert_non_null(strstr(mo_last_error(), "det.classes lists 5 names, over the limit "
                                            "max_categories 4"));
    free(det);
    assert_int_equal(mo_limits_set(NULL), MO_OK);
}

/* det.category_ids maps class i to a dataset id (mo_det_category_id); without it the id is
 * the class index (torchvision's COCO indexing). */
static void test_category_ids(void **state)
{
    (void)state;
    for (int with = 0; with < 2; with++) {
        size_t n;
        uint8_t *b = build(DET, with ? "det.category_ids" : "mo.source",
                           with ? " [ 7, 0,3 ,12 ]" : "x", &n);
        mo_file *f = NULL;
        assert_int_equal(mo_file_open_memory(&f, b, n), MO_OK);
        free(b);
        mo_det *d = NULL;
        assert_int_equal(mo_det_open(&d, f, bb, NULL), MO_OK);
        static const int ids[5] = {-1, 7, 0, 3, 12};
        for (int i = 0; i < 5; i++)
            assert_int_equal(mo_det_category_id(d, i), with || i == 0 ? ids[i] : i);
        assert_int_equal(mo_det_category_id(d, 5), -1);
        assert_int_equal(mo_det_category_id(d, -1), -1);
        assert_int_equal(mo_det_category_id(NULL, 1), -1);
        mo_det_close(&d);
        mo_file_close(&f);
    }
}

/* The public readers: defaults, values, refusals, unknown keys. */
static void test_readers(void **state)
{
    (void)state;
    size_t n;
    uint8_t *b = build(DET, "det.box_clip", "2.5", &n);
    mo_file *f = NULL;
    assert_int_equal(mo_file_open_memory(&f, b, n), MO_OK);
    free(b);
    double v = -1;
    assert_int_equal(mo_file_meta_number(f, "det.box_clip", &v), MO_OK);
    assert_true(v == 2.5);
    assert_int_equal(mo_file_meta_number(f, "det.min_ratio", &v), MO_OK); /* default */
    assert_true(v == 0.2);
    assert_int_equal(mo_file_meta_number(f, "cls.crop", &v), MO_OK);
    assert_true(v == 224);
    v = 7;
    assert_int_equal(mo_file_meta_number(f, "mo.nothing", &v), MO_EINVAL);
    assert_int_equal(mo_file_meta_number(f, "mo.mean", &v), MO_EINVAL); /* a list */
    assert_true(v == 7);
    float w[4], mean[3], std[3];
    assert_int_equal(mo_file_meta_floats(f, "det.box_weights", w, 4), MO_OK);
    assert_true(w[0] == 10 && w[3] == 5);
    assert_int_equal(mo_file_meta_floats(f, "det.box_weights", w, 3), MO_EINVAL);
    assert_int_equal(mo_file_preprocess(f, mean, std), MO_OK);
    assert_true(mean[0] == 0.485f && std[2] == 0.225f);
    assert_int_equal(mo_file_preprocess(NULL, mean, std), MO_EINVAL);
    mo_file_close(&f);

    /* refused values leave the outputs alone */
    b = build(CLS, "mo.std", "[0.5,0.5,-0.5]", &n);
    assert_int_equal(mo_file_open_memory(&f, b, n), MO_OK);
    free(b);
    mean[0] = std[0] = 42;
    assert_int_equal(mo_file_preprocess(f, mean, std), MO_EFORMAT);
    assert_string_equal(mo_last_error(), "metadata mo.std[2] = -0.5 must be positive "
                                         "(accepted: 1e-06..1000)");
    assert_true(mean[0] == 42 && std[0] == 42);
    mo_file_close(&f);

    /* names with escapes, as Python's json.dumps writes them */
    b = build(CLS, "cls.classes", "[\"caf\\u00e9\", \"\\ud83d\\ude00 \\\"q\\\"\", \"t\\tab\"]",
              &n);
    assert_int_equal(mo_file_open_memory(&f, b, n), MO_OK);
    free(b);
    mo_cls *c = NULL;
    assert_int_equal(mo_cls_open(&c, f, bb, NULL), MO_OK);
    assert_string_equal(mo_cls_class_name(c, 0), "caf\xc3\xa9");
    assert_string_equal(mo_cls_class_name(c, 1), "\xf0\x9f\x98\x80 \"q\"");
    assert_string_equal(mo_cls_class_name(c, 2), "t\tab");
    mo_cls_close(&c);
    mo_file_close(&f);
}

/* mo_fail may be given mo_last_error() itself; mo_fail_prefix adds context once. */
static void test_error_prefix(void **state)
{
    (void)state;
    mo_set_error("g: detail");
    assert_int_equal(mo_fail(MO_EFORMAT, "model file: %s", mo_last_error()), MO_EFORMAT);
    assert_string_equal(mo_last_error(), "model file: g: detail");
    mo_set_error("inner %d", 7);
    assert_int_equal(mo_fail_prefix(MO_EIO, "%s/%s", "dir", "x.mo"), MO_EIO);
    assert_string_equal(mo_last_error(), "dir/x.mo: inner 7");
}

/* One pairing rule (weights/FORMAT.md "Pairing"): every head refuses a head-only file that
 * names no backbone digest, or another one, with the same code and message, through its own
 * open and through the pipeline. */
static void test_pairing_same(void **state)
{
    (void)state;
    char want[160];
    for (int k = CLS; k <= SEG; k++) {
        size_t n;
        uint8_t *b = build((enum kind)k, "mo.backbone_digest", NULL, &n);
        assert_int_equal(open_kind((enum kind)k, b, n), MO_EFORMAT);
        if (!strstr(mo_last_error(), "a head-only file must name its backbone (metadata "
                                     "mo.backbone_digest is missing)"))
            fail_msg("%s: \"%s\"", kind_name[k], mo_last_error());
        assert_int_equal(open_pipeline((enum kind)k, b, n), MO_EFORMAT);
        assert_non_null(strstr(mo_last_error(), "mo.backbone_digest is missing"));
        free(b);
        b = build((enum kind)k, "mo.backbone_digest", "0123456789abcdef", &n);
        assert_int_equal(open_kind((enum kind)k, b, n), MO_EMISMATCH);
        snprintf(want, sizeof(want), "names backbone MobileOne-s0 0123456789abcdef, but this "
                 "backbone is MobileOne-s0 %s", digest);
        if (!strstr(mo_last_error(), want))
            fail_msg("%s: \"%s\"", kind_name[k], mo_last_error());
        assert_int_equal(open_pipeline((enum kind)k, b, n), MO_EMISMATCH);
        assert_non_null(strstr(mo_last_error(), want));
        free(b);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_fields),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_category_ids),
        cmocka_unit_test(test_readers),
        cmocka_unit_test(test_error_prefix),
        cmocka_unit_test(test_pairing_same),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
