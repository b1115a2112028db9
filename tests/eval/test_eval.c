/*
 * libmo_eval unit tests on small hand-made inputs: COCO AP values worked out by hand
 * (perfect, a false positive between two hits, crowd regions, maxDets, empty sets), JSON
 * errors with their positions, sharded states (merge = single run, overlap, missing shard,
 * corruption), Pascal VOC (difficult, duplicates, both AP variants, XML errors),
 * segmentation (metrics, refused labels), top-k counters and the PR plot.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "mo/eval.h"
#include "mo/image.h"

static char tmpdir[64];

static const char *tmp_path(const char *name)
{
    static char buf[8][256];
    static int k;
    k = (k + 1) % 8;
    snprintf(buf[k], sizeof(buf[k]), "%s/%s", tmpdir, name);
    return buf[k];
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void expect_error(int ret, int code, const char *word)
{
    assert_int_equal(ret, code);
    if (!strstr(mo_last_error(), word)) {
        print_error("message '%s' lacks '%s'\n", mo_last_error(), word);
        fail();
    }
}

/* Two images (ids 7, 3), categories 1 and 2; image 3 has a crowd region of category 1. */
static const char *gt_json =
    "{\"images\": [{\"id\": 7, \"file_name\": \"a.jpg\"}, {\"id\": 3, \"file_name\": \"b.jpg\"}],\n"
    " \"categories\": [{\"id\": 2, \"name\": \"dog\"}, {\"id\": 1, \"name\": \"cat\"}],\n"
    " \"annotations\": [\n"
    "  {\"id\": 1, \"image_id\": 7, \"category_id\": 1, \"bbox\": [10, 10, 50, 50], \"area\": 2500, \"iscrowd\": 0},\n"
    "  {\"id\": 2, \"image_id\": 7, \"category_id\": 1, \"bbox\": [100, 100, 20, 20], \"area\": 400, \"iscrowd\": 0},\n"
    "  {\"id\": 3, \"image_id\": 3, \"category_id\": 2, \"bbox\": [0, 0, 200, 100], \"area\": 20000, \"iscrowd\": 0},\n"
    "  {\"id\": 4, \"image_id\": 3, \"category_id\": 1, \"bbox\": [300, 0, 100, 100], \"area\": 10000, \"iscrowd\": 1},\n"
    "  {\"id\": 5, \"image_id\": 99, \"category_id\": 1, \"bbox\": [0, 0, 1, 1], \"area\": 1, \"iscrowd\": 0}\n"
    " ]}\n";

static mo_coco_eval *open_gt(void)
{
    mo_coco_eval *ev = NULL;
    int r = mo_coco_eval_open_memory(&ev, gt_json, strlen(gt_json), "gt.json");
    if (r) {
        print_error("%s\n", mo_last_error());
        fail();
    }
    return ev;
}

static void run_all(mo_coco_eval *ev, double stats[12])
{
    assert_int_equal(mo_coco_eval_evaluate(ev, 0, 1, NULL, NULL), MO_OK);
    assert_int_equal(mo_coco_eval_accumulate(ev), MO_OK);
    assert_int_equal(mo_coco_eval_stats(ev, stats), MO_OK);
}

static void coco_lists(void **state)
{
    (void)state;
    mo_coco_eval *ev = open_gt();
    assert_int_equal(mo_coco_eval_num_images(ev), 2);
    assert_int_equal(mo_coco_eval_image_id(ev, 0), 3);
    assert_string_equal(mo_coco_eval_image_file(ev, 0), "b.jpg");
    assert_int_equal(mo_coco_eval_num_categories(ev), 2);
    assert_int_equal(mo_coco_eval_category_id(ev, 0), 1);
    assert_string_equal(mo_coco_eval_category_name(ev, 1), "dog");
    assert_int_equal(mo_coco_eval_image_id(ev, 2), -1);
    assert_null(mo_coco_eval_category_name(ev, -1));
    mo_coco_eval_close(&ev);
    assert_null(ev);
    mo_coco_eval_close(NULL);
}

static void coco_perfect(void **state)
{
    (void)state;
    mo_coco_eval *ev = open_gt();
    const mo_coco_det d[] = {
        { 7, 1, { 10, 10, 50, 50 }, 0.9 },
        { 7, 1, { 100, 100, 20, 20 }, 0.8 },
        { 3, 2, { 0, 0, 200, 100 }, 0.7 },
        { 3, 1, { 310, 10, 50, 50 }, 0.95 }, /* inside the crowd region: ignored */
        { 3, 5, { 0, 0, 5, 5 }, 0.5 },       /* unknown category: ignored */
    };
    assert_int_equal(mo_coco_eval_add_detections(ev, d, 5), MO_OK);
    assert_int_equal(mo_coco_eval_num_ignored(ev), 1);
    double s[12];
    run_all(ev, s);
    assert_true(s[0] == 1.0 && s[1] == 1.0 && s[2] == 1.0);
    /* small: the 20x20 box alone, precision 1 / (1 + eps) as pycocotools computes it */
    assert_true(s[3] == 1 / (1 + 2.220446049250313e-16));
    assert_true(s[4] == s[3]); /* medium: the 50x50 box */
    assert_true(s[5] == s[3]); /* large: the dog */
    assert_true(s[6] == 0.75); /* AR@1: cat 1/2 in image 7 (mean over cats 0.5, 1) */
    assert_true(s[8] == 1.0);
    assert_true(mo_coco_eval_category_ap(ev, 0, -1) == 1.0);
    double pr[101];
    assert_int_equal(mo_coco_eval_pr_curve(ev, -1, 0, pr), MO_OK);
    assert_true(fabs(pr[100] - 1) < 1e-15);
    mo_coco_eval_close(&ev);
}

static void coco_hand(void **state)
{
    (void)state;
    mo_coco_eval *ev = open_gt();
    /* cat: hit (0.9), false positive (0.8), hit (0.7) -> recall .5, .5, 1 and precision
     * 1, .5, 2/3 (monotone: 1, 2/3, 2/3); 51 recall thresholds <= .5 give 1, 50 give 2/3. */
    const mo_coco_det d[] = {
        { 7, 1, { 100, 100, 20, 20 }, 0.7 },
        { 7, 1, { 400, 400, 20, 20 }, 0.8 },
        { 7, 1, { 10, 10, 50, 50 }, 0.9 },
    };
    assert_int_equal(mo_coco_eval_add_detections(ev, d, 3), MO_OK);
    double s[12];
    run_all(ev, s);
    const double p23 = 2.0 / (3.0 + 2.220446049250313e-16);
    const double cat = (51 + 50 * p23) / 101;
    /* dog has ground truth and no detection: AP 0; mean over the two categories. */
    assert_true(fabs(mo_coco_eval_category_ap(ev, 0, -1) - cat) < 1e-15);
    assert_true(mo_coco_eval_category_ap(ev, 1, -1) == 0);
    assert_true(fabs(s[0] - cat / 2) < 1e-15);
    /* maxDets 1: only the 0.9 hit in image 7 -> recall .5 for cat, 0 for dog */
    assert_true(fabs(s[6] - 0.25) < 1e-15);
    /* small: the 20x20 box only (the 50x50 one is ignored, so is its detection) */
    assert_true(s[3] < 1 && s[3] > 0);
    mo_coco_eval_print(ev, stdout, 1);
    mo_coco_eval_close(&ev);
}

static void coco_empty(void **state)
{
    (void)state;
    mo_coco_eval *ev = open_gt();
    double s[12];
    run_all(ev, s); /* no detections at all: AP 0 where there is ground truth */
    assert_true(s[0] == 0 && s[8] == 0);
    mo_coco_eval_close(&ev);
    const char *none = "{\"images\": [{\"id\": 1}], \"categories\": [{\"id\": 1}], \"annotations\": []}";
    assert_int_equal(mo_coco_eval_open_memory(&ev, none, strlen(none), "none"), MO_OK);
    run_all(ev, s); /* no ground truth at all: -1 everywhere */
    for (int i = 0; i < 12; i++)
        assert_true(s[i] == -1);
    mo_coco_eval_close(&ev);
    /* no images at all (fuzz_eval_json found qsort on a NULL array here, UB) */
    const char *no_images = "{\"images\": [], \"categories\": [{\"id\": 1}], \"annotations\": []}";
    assert_int_equal(mo_coco_eval_open_memory(&ev, no_images, strlen(no_images), "no images"),
                     MO_OK);
    assert_int_equal(mo_coco_eval_num_images(ev), 0);
    run_all(ev, s);
    assert_true(s[0] == -1);
    mo_coco_eval_close(&ev);
}

static void coco_maxdets(void **state)
{
    (void)state;
    mo_coco_eval *ev = open_gt();
    /* 150 false positives above the true box: cut by maxDets 100, so recall 0 for it. */
    mo_coco_det d[151];
    for (int i = 0; i < 150; i++)
        d[i] = (mo_coco_det){ 3, 2, { 500 + i, 500, 10, 10 }, 0.9 };
    d[150] = (mo_coco_det){ 3, 2, { 0, 0, 200, 100 }, 0.5 };
    assert_int_equal(mo_coco_eval_add_detections(ev, d, 151), MO_OK);
    mo_coco_eval_evaluate(ev, 0, 1, NULL, NULL);
    mo_coco_eval_accumulate(ev);
    assert_true(mo_coco_eval_category_ap(ev, 1, -1) == 0);
    mo_coco_eval_close(&ev);
    ev = open_gt();
    d[100] = d[150]; /* 100 false positives then the hit: the hit is the 101st */
    assert_int_equal(mo_coco_eval_add_detections(ev, d, 101), MO_OK);
    mo_coco_eval_evaluate(ev, 0, 1, NULL, NULL);
    mo_coco_eval_accumulate(ev);
    assert_true(mo_coco_eval_category_ap(ev, 1, -1) == 0);
    mo_coco_eval_close(&ev);
}

static void coco_json_errors(void **state)
{
    (void)state;
    mo_coco_eval *ev = NULL;
    const char *bad = "{\"images\": [\n{\"id\": 1,}\n]}";
    expect_error(mo_coco_eval_open_memory(&ev, bad, strlen(bad), "x.json"), MO_EFORMAT, "x.json:2:");
    assert_null(ev);
    const char *trunc = "{\"images\": [";
    expect_error(mo_coco_eval_open_memory(&ev, trunc, strlen(trunc), "t.json"), MO_EFORMAT,
                 "unexpected end");
    const char *noarea = "{\"images\": [{\"id\": 1}], \"categories\": [{\"id\": 1}],\n"
                         " \"annotations\": [{\"id\": 1},\n  {\"id\": 2, \"image_id\": 1, "
                         "\"category_id\": 1, \"bbox\": [0, 0, 1, 1]}]}";
    expect_error(mo_coco_eval_open_memory(&ev, noarea, strlen(noarea), "g.json"), MO_EFORMAT,
                 "annotations[0]: missing key \"image_id\"");
    const char *noarea2 = "{\"images\": [{\"id\": 1}], \"categories\": [{\"id\": 1}],\n"
                          " \"annotations\": [\n  {\"id\": 2, \"image_id\": 1, "
                          "\"category_id\": 1, \"bbox\": [0, 0, 1, 1]}]}";
    expect_error(mo_coco_eval_open_memory(&ev, noarea2, strlen(noarea2), "g.json"), MO_EFORMAT,
                 "g.json:3:3: annotations[0]: missing key \"area\"");
    const char *noimages = "{\"categories\": [], \"annotations\": []}";
    expect_error(mo_coco_eval_open_memory(&ev, noimages, strlen(noimages), "n.json"), MO_EFORMAT,
                 "\"images\"");
    expect_error(mo_coco_eval_open(&ev, tmp_path("absent.json")), MO_EIO, "absent.json");

    ev = open_gt();
    write_file(tmp_path("r1.json"), "[{\"image_id\": 7, \"category_id\": 1, \"bbox\": [0, 0, 1, 1], \"score\": 1},\n"
                                    " {\"image_id\": 8, \"category_id\": 1, \"bbox\": [0, 0, 1, 1], \"score\": 1}]");
    expect_error(mo_coco_eval_load_results(ev, tmp_path("r1.json")), MO_EFORMAT,
                 "r1.json:2:2: results[1]: image_id 8 is not in the ground truth");
    write_file(tmp_path("r2.json"), "[{\"image_id\": 7, \"category_id\": 1, \"bbox\": [0, 0, 1], \"score\": 1}]");
    expect_error(mo_coco_eval_load_results(ev, tmp_path("r2.json")), MO_EFORMAT, "4 numbers");
    write_file(tmp_path("r3.json"), "{\"image_id\": 7}");
    expect_error(mo_coco_eval_load_results(ev, tmp_path("r3.json")), MO_EFORMAT, "JSON array");
    write_file(tmp_path("r4.json"), "[{\"image_id\": 7, \"category_id\": 1, \"bbox\": [0, 0, 1, 1], \"score\": \"x\"}]");
    expect_error(mo_coco_eval_load_results(ev, tmp_path("r4.json")), MO_EFORMAT, "\"score\" is not a number");
    write_file(tmp_path("r5.json"), "[]");
    assert_int_equal(mo_coco_eval_load_results(ev, tmp_path("r5.json")), MO_OK);
    const mo_coco_det nan_det = { 7, 1, { 0, 0, 1, 1 }, NAN };
    expect_error(mo_coco_eval_add_detections(ev, &nan_det, 1), MO_EINVAL, "finite");
    const mo_coco_det bad_img = { 70, 1, { 0, 0, 1, 1 }, 1 };
    expect_error(mo_coco_eval_add_detections(ev, &bad_img, 1), MO_EINVAL, "image id 70");
    assert_int_equal(mo_coco_eval_accumulate(ev), MO_EINVAL); /* not evaluated */
    double s[12];
    assert_int_equal(mo_coco_eval_stats(ev, s), MO_EINVAL);
    mo_coco_eval_close(&ev);
    assert_int_equal(mo_coco_eval_open(NULL, "x"), MO_EINVAL);
}

static void coco_states(void **state)
{
    (void)state;
    const mo_coco_det d[] = {
        { 7, 1, { 100, 100, 20, 20 }, 0.7 }, { 7, 1, { 400, 400, 20, 20 }, 0.7 },
        { 7, 1, { 12, 10, 50, 50 }, 0.9 },   { 3, 2, { 0, 0, 150, 100 }, 0.7 },
        { 3, 1, { 310, 0, 50, 50 }, 0.7 },
    };
    mo_coco_eval *single = open_gt();
    mo_coco_eval_add_detections(single, d, 5);
    double want[12], got[12];
    run_all(single, want);
    mo_coco_eval_close(&single);
    for (int s = 0; s < 2; s++) {
        mo_coco_eval *ev = open_gt();
        mo_coco_eval_add_detections(ev, d, 5);
        assert_int_equal(mo_coco_eval_evaluate(ev, s, 2, NULL, NULL), MO_OK);
        expect_error(mo_coco_eval_accumulate(ev), MO_EINVAL, "not been evaluated");
        assert_int_equal(mo_coco_eval_save_state(ev, tmp_path(s ? "s1" : "s0")), MO_OK);
        mo_coco_eval_close(&ev);
    }
    mo_coco_eval *m = NULL;
    assert_int_equal(mo_coco_eval_open_state(&m, tmp_path("s1")), MO_OK);
    assert_int_equal(mo_coco_eval_num_categories(m), 2);
    assert_string_equal(mo_coco_eval_category_name(m, 1), "dog");
    expect_error(mo_coco_eval_load_state(m, tmp_path("s1")), MO_EMISMATCH, "already evaluated");
    assert_int_equal(mo_coco_eval_load_state(m, tmp_path("s0")), MO_OK);
    assert_int_equal(mo_coco_eval_accumulate(m), MO_OK);
    mo_coco_eval_stats(m, got);
    assert_memory_equal(want, got, sizeof(want));
    expect_error(mo_coco_eval_evaluate(m, 0, 1, NULL, NULL), MO_EINVAL, "state");
    mo_coco_eval_close(&m);

    /* Another ground truth refuses the state. */
    const char *other = "{\"images\": [{\"id\": 7}, {\"id\": 3}], \"categories\": [{\"id\": 1}, {\"id\": 2}], \"annotations\": []}";
    assert_int_equal(mo_coco_eval_open_memory(&m, other, strlen(other), "other"), MO_OK);
    expect_error(mo_coco_eval_load_state(m, tmp_path("s0")), MO_EMISMATCH, "another ground truth");
    mo_coco_eval_close(&m);

    /* Corruption: one flipped byte (CRC), truncation, another kind, not a state. */
    FILE *f = fopen(tmp_path("s0"), "rb");
    assert_non_null(f);
    unsigned char buf[65536];
    size_t n = fread(buf, 1, sizeof(buf), f);
    fclose(f);
    buf[n / 2] ^= 1;
    f = fopen(tmp_path("bad"), "wb");
    fwrite(buf, 1, n, f);
    fclose(f);
    expect_error(mo_coco_eval_open_state(&m, tmp_path("bad")), MO_EFORMAT, "CRC");
    f = fopen(tmp_path("bad"), "wb");
    fwrite(buf, 1, 10, f);
    fclose(f);
    expect_error(mo_coco_eval_open_state(&m, tmp_path("bad")), MO_EFORMAT, "not an mo-eval state");
    mo_seg_eval *seg;
    mo_seg_eval_open(&seg, 3, -1);
    mo_seg_eval_save_state(seg, tmp_path("seg.state"));
    mo_seg_eval_close(&seg);
    expect_error(mo_coco_eval_open_state(&m, tmp_path("seg.state")), MO_EFORMAT, "a seg state");
    assert_null(m);
}

/* ------------------------------------------------------------------------------ VOC */

static void write_xml(const char *dir, const char *id, const char *objects)
{
    char path[512], text[4096];
    snprintf(path, sizeof(path), "%s/Annotations/%s.xml", dir, id);
    snprintf(text, sizeof(text), "<annotation>\n<filename>%s.jpg</filename>\n%s</annotation>\n", id,
             objects);
    write_file(path, text);
}

#define OBJ(name, diff, x1, y1, x2, y2)                                                          \
    "<object><name>" name "</name><difficult>" #diff "</difficult><bndbox><xmin>" #x1            \
    "</xmin><ymin>" #y1 "</ymin><xmax>" #x2 "</xmax><ymax>" #y2 "</ymax></bndbox></object>\n"

static void voc_basic(void **state)
{
    (void)state;
    char dir[256], p[300];
    snprintf(dir, sizeof(dir), "%s/voc", tmpdir);
    mkdir(dir, 0755);
    snprintf(p, sizeof(p), "%s/Annotations", dir);
    mkdir(p, 0755);
    snprintf(p, sizeof(p), "%s/ImageSets", dir);
    mkdir(p, 0755);
    snprintf(p, sizeof(p), "%s/ImageSets/Main", dir);
    mkdir(p, 0755);
    snprintf(p, sizeof(p), "%s/ImageSets/Main/val.txt", dir);
    write_file(p, "a\nb\n\n");
    write_xml(dir, "a", OBJ("cat", 0, 1, 1, 10, 10) OBJ("cat", 1, 50, 50, 60, 60)
                            "<object><name>dog</name><bndbox><xmin>1</xmin><ymin>1</ymin>"
                            "<xmax>5</xmax><ymax>5</ymax></bndbox></object>\n");
    write_xml(dir, "b", OBJ("cat", 0, 1, 1, 20, 20) OBJ("person", 0, 1, 1, 20, 20));
    const char *classes[] = { "cat", "dog", "bird" };
    mo_voc_eval *ev = NULL;
    assert_int_equal(mo_voc_eval_open(&ev, dir, "val", classes, 3), MO_OK);
    assert_int_equal(mo_voc_eval_num_images(ev), 2);
    assert_int_equal(mo_voc_eval_image_index(ev, "b"), 1);
    /* cat: hit a (0.9), difficult hit (0.8: neither), duplicate of a (0.7: FP), hit b (0.6)
     * -> tp 1,1,1,2 fp 0,0,1,1; npos 2: recall .5,.5,.5,1, precision 1,1,.5,2/3. */
    const mo_voc_det d[] = {
        { 0, 0, 0.9, { 1, 1, 10, 10 } },   { 0, 0, 0.8, { 50, 50, 60, 60 } },
        { 0, 0, 0.7, { 1, 1, 10, 11 } },   { 1, 0, 0.6, { 1, 1, 20, 20 } },
        { 0, 1, 0.5, { 1, 1, 5, 5 } },
    };
    assert_int_equal(mo_voc_eval_add_detections(ev, d, 5), MO_OK);
    assert_int_equal(mo_voc_eval_evaluate(ev, 0.5, 0, 1, NULL, NULL), MO_OK);
    assert_int_equal(mo_voc_eval_accumulate(ev), MO_OK);
    /* all-point: .5 * 1 + .5 * 2/3; 11-point: 6 * 1 + 5 * 2/3, / 11 */
    assert_true(fabs(mo_voc_eval_ap(ev, 0, 0) - (0.5 + 0.5 * 2 / 3.0)) < 1e-12);
    assert_true(fabs(mo_voc_eval_ap(ev, 0, 1) - (6 + 5 * 2 / 3.0) / 11) < 1e-12);
    assert_true(mo_voc_eval_ap(ev, 1, 0) == 1.0);
    assert_true(mo_voc_eval_ap(ev, 2, 0) == -1); /* bird: no ground truth */
    assert_true(fabs(mo_voc_eval_map(ev, 0) - (mo_voc_eval_ap(ev, 0, 0) + 1) / 2) < 1e-15);
    const double *rec, *prec;
    size_t n;
    assert_int_equal(mo_voc_eval_pr_curve(ev, 0, &rec, &prec, &n), MO_OK);
    assert_int_equal(n, 4);
    assert_true(rec[3] == 1.0);
    mo_voc_eval_close(&ev);

    /* Errors: a detection file with an unknown image, an object without a box, no set. */
    assert_int_equal(mo_voc_eval_open(&ev, dir, "val", classes, 3), MO_OK);
    write_file(tmp_path("det.txt"), "a 0.5 1 1 2 2\n\nzz 0.4 1 1 2 2\n");
    expect_error(mo_voc_eval_load_detections(ev, 0, tmp_path("det.txt")), MO_EFORMAT, "det.txt:3:");
    write_file(tmp_path("det.txt"), "a 0.5 1 1 2\n");
    expect_error(mo_voc_eval_load_detections(ev, 0, tmp_path("det.txt")), MO_EFORMAT, "det.txt:1:");
    mo_voc_eval_close(&ev);
    write_xml(dir, "b", "<object><name>cat</name>\n<difficult>0</difficult></object>\n");
    expect_error(mo_voc_eval_open(&ev, dir, "val", classes, 3), MO_EFORMAT, "b.xml:3:");
    write_xml(dir, "b", "<object><name>cat</name><bndbox><xmin>1</xmin></bndbox></object>\n");
    expect_error(mo_voc_eval_open(&ev, dir, "val", classes, 3), MO_EFORMAT, "<ymin>");
    write_xml(dir, "b", "<object><name>cat</name>");
    expect_error(mo_voc_eval_open(&ev, dir, "val", classes, 3), MO_EFORMAT, "invalid XML");
    expect_error(mo_voc_eval_open(&ev, dir, "test", classes, 3), MO_EIO, "test.txt");
    assert_null(ev);
}

/* ------------------------------------------------------------------------------ seg */

static void seg_basic(void **state)
{
    (void)state;
    mo_seg_eval *ev = NULL;
    assert_int_equal(mo_seg_eval_open(&ev, 3, 255), MO_OK);
    const uint8_t gt[] = { 0, 0, 1, 1, 255, 2 }, pred[] = { 0, 1, 1, 1, 2, 0 };
    assert_int_equal(mo_seg_eval_add(ev, gt, pred, 6, 3, "x"), MO_OK);
    mo_seg_metrics m;
    double iou[3], acc[3];
    assert_int_equal(mo_seg_eval_metrics(ev, &m, iou, acc), MO_OK);
    /* cm: [0]: 1 0 0... rows gt: 0 -> {0:1, 1:1}; 1 -> {1:2}; 2 -> {0:1} */
    assert_true(iou[0] == 1.0 / 3 && iou[1] == 2.0 / 3 && iou[2] == 0);
    assert_true(acc[0] == 0.5 && acc[1] == 1 && acc[2] == 0);
    assert_int_equal(m.pixels, 5);
    assert_true(m.pixel_acc == 3.0 / 5);
    assert_int_equal(m.num_present, 3);
    const uint8_t bad_gt[] = { 0, 7 }, bad_pred[] = { 0, 0 };
    expect_error(mo_seg_eval_add(ev, bad_gt, bad_pred, 2, 1, "g.png"), MO_EFORMAT,
                 "g.png: pixel (0, 1): ground truth label 7");
    const uint8_t ok_gt[] = { 0, 1 }, bad_pred2[] = { 0, 3 };
    expect_error(mo_seg_eval_add(ev, ok_gt, bad_pred2, 2, 2, "p.png"), MO_EFORMAT,
                 "p.png: pixel (1, 0): predicted label 3");
    assert_int_equal(mo_seg_eval_metrics(ev, &m, NULL, NULL), MO_OK);
    assert_int_equal(m.pixels, 5); /* nothing counted from refused pairs */
    assert_int_equal(mo_seg_eval_save_state(ev, tmp_path("seg1")), MO_OK);
    mo_seg_eval *b = NULL;
    assert_int_equal(mo_seg_eval_open_state(&b, tmp_path("seg1")), MO_OK);
    assert_int_equal(mo_seg_eval_load_state(b, tmp_path("seg1")), MO_OK);
    assert_int_equal(mo_seg_eval_metrics(b, &m, iou, NULL), MO_OK);
    assert_int_equal(m.pixels, 10);
    assert_true(iou[1] == 2.0 / 3);
    mo_seg_eval_close(&b);
    mo_seg_eval_open(&b, 4, 255);
    expect_error(mo_seg_eval_load_state(b, tmp_path("seg1")), MO_EMISMATCH, "3 classes");
    mo_seg_eval_close(&b);
    expect_error(mo_seg_eval_add_files(ev, tmp_path("nope.png"), tmp_path("nope2.png")), MO_EIO,
                 "nope.png");
    mo_seg_eval_close(&ev);
    assert_int_equal(mo_seg_eval_open(&ev, 0, 255), MO_EINVAL);
    assert_int_equal(mo_seg_eval_open(&ev, 256, 255), MO_EINVAL);
}

static void topk_and_plot(void **state)
{
    (void)state;
    mo_topk_eval t = { 0 };
    const int r1[] = { 3, 1, 2 }, r2[] = { 5, 6, 7, 8, 9, 1 };
    assert_int_equal(mo_topk_eval_add(&t, 3, r1, 3), MO_OK);
    assert_int_equal(mo_topk_eval_add(&t, 1, r1, 3), MO_OK);
    assert_int_equal(mo_topk_eval_add(&t, 1, r2, 6), MO_OK);
    assert_true(mo_topk_eval_accuracy(&t, 1) == 1.0 / 3);
    assert_true(mo_topk_eval_accuracy(&t, 2) == 2.0 / 3);
    assert_true(mo_topk_eval_accuracy(&t, 5) == 2.0 / 3);
    assert_true(mo_topk_eval_accuracy(&t, 6) == 1.0);
    assert_true(mo_topk_eval_accuracy(&t, 0) == -1);
    mo_topk_eval u = t;
    mo_topk_eval_merge(&u, &t);
    assert_int_equal(u.total, 6);
    assert_int_equal(mo_topk_eval_add(&t, 1, r1, 0), MO_EINVAL);

    const double x[] = { 0, 0.5, 1 }, y[] = { 1, 0.8, -1 };
    const double *xs[] = { x }, *ys[] = { y };
    const size_t n[] = { 3 };
    const char *names[] = { "cat" };
    assert_int_equal(mo_eval_plot_pr(tmp_path("pr.png"), 1, xs, ys, n, names, "title"), MO_OK);
    struct stat st;
    assert_int_equal(stat(tmp_path("pr.png"), &st), 0);
    assert_true(st.st_size > 1000);
    assert_int_equal(mo_eval_plot_pr(tmp_path("pr.png"), 0, xs, ys, n, NULL, NULL), MO_EINVAL);
}

/* ------------------------------------------------------------- PR plot */

/* Distance from (x, y) to the segment (ax, ay)-(bx, by). */
static double seg_dist(double x, double y, double ax, double ay, double bx, double by)
{
    const double dx = bx - ax, dy = by - ay, l2 = dx * dx + dy * dy;
    double t = l2 > 0 ? ((x - ax) * dx + (y - ay) * dy) / l2 : 0;
    t = t < 0 ? 0 : t > 1 ? 1 : t;
    return hypot(x - (ax + t * dx), y - (ay + t * dy));
}

static int is_rgb(const mo_image *im, int x, int y, const uint8_t rgb[3])
{
    if (x < 0 || y < 0 || x >= im->w || y >= im->h)
        return 0;
    return !memcmp(im->data + ((size_t)y * im->w + x) * 3, rgb, 3);
}

/*
 * The PNG decoded: the plot frame found from its black lines, then for each curve (in the
 * colours of plot.c's palette, matplotlib's first two) every segment between two drawn
 * points is covered by pixels of its colour, and every pixel of that colour inside the
 * frame lies on one of those segments: nothing drawn across the point skipped for its
 * negative precision, nothing at a wrong place. Outside the frame only the legend (right
 * of the frame) has them.
 */
static void pr_plot_pixels(void **state)
{
    (void)state;
    enum { NC = 2, NP = 6 };
    static const double r[NC][NP] = {{0, 0.2, 0.4, 0.6, 0.8, 1.0}, {0, 0.3, 0.5, 0.7, 0.9, 1.0}};
    static const double p[NC][NP] = {{1, 0.95, 0.85, -1, 0.7, 0.6}, {0.5, 0.45, 0.3, 0.2, 0.1, 0.05}};
    static const uint8_t col[NC][3] = {{31, 119, 180}, {255, 127, 14}};
    const double *xs[NC] = {r[0], r[1]}, *ys[NC] = {p[0], p[1]};
    const size_t n[NC] = {NP, NP};
    const char *names[NC] = {"cat", "dog"};
    assert_int_equal(mo_eval_plot_pr(tmp_path("pr2.png"), NC, xs, ys, n, names, "title"), MO_OK);
    mo_image im;
    assert_int_equal(mo_image_load(&im, tmp_path("pr2.png")), MO_OK);

    /* the frame: the columns and rows that are mostly black */
    const uint8_t black[3] = {0, 0, 0};
    int left = -1, right = -1, top = -1, bottom = -1;
    for (int x = 0; x < im.w; x++) {
        int k = 0;
        for (int y = 0; y < im.h; y++)
            k += is_rgb(&im, x, y, black);
        if (k > im.h / 2) {
            left = left < 0 ? x : left;
            right = x;
        }
    }
    for (int y = 0; y < im.h; y++) {
        int k = 0;
        for (int x = 0; x < im.w; x++)
            k += is_rgb(&im, x, y, black);
        if (k > im.w / 3) {
            top = top < 0 ? y : top;
            bottom = y;
        }
    }
    assert_true(left >= 0 && right > left + 100 && top >= 0 && bottom > top + 100);
#define PXX(v) (left + (v) * (right - left))
#define PXY(v) (top + (1 - (v)) * (bottom - top))

    for (int c = 0; c < NC; c++) {
        /* every drawn segment covered (the line is 2 px wide) */
        for (int j = 1; j < NP; j++) {
            if (p[c][j] < 0 || p[c][j - 1] < 0)
                continue;
            for (int t = 0; t <= 20; t++) {
                const double x = PXX(r[c][j - 1] + (r[c][j] - r[c][j - 1]) * t / 20);
                const double y = PXY(p[c][j - 1] + (p[c][j] - p[c][j - 1]) * t / 20);
                int found = 0;
                for (int dy = -2; dy <= 2 && !found; dy++)
                    for (int dx = -2; dx <= 2 && !found; dx++)
                        found = is_rgb(&im, (int)lround(x) + dx, (int)lround(y) + dy, col[c]);
                if (!found)
                    fail_msg("curve %d: no pixel of its colour at (%.0f, %.0f), segment %d", c,
                             x, y, j);
            }
        }
        /* and nothing else of its colour */
        long legend = 0;
        for (int y = 0; y < im.h; y++)
            for (int x = 0; x < im.w; x++) {
                if (!is_rgb(&im, x, y, col[c]))
                    continue;
                if (x > right + 2) {
                    legend++;
                    continue;
                }
                double best = 1e9;
                for (int j = 1; j < NP; j++)
                    if (p[c][j] >= 0 && p[c][j - 1] >= 0) {
                        const double d = seg_dist(x, y, PXX(r[c][j - 1]), PXY(p[c][j - 1]),
                                                  PXX(r[c][j]), PXY(p[c][j]));
                        best = d < best ? d : best;
                    }
                if (best > 2.0)
                    fail_msg("curve %d: pixel (%d, %d) of its colour is %.1f px from the curve",
                             c, x, y, best);
            }
        assert_true(legend > 0);
    }
#undef PXX
#undef PXY
    mo_image_free(&im);
}

int main(void)
{
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/mo_eval_test_XXXXXX");
    if (!mkdtemp(tmpdir))
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(coco_lists),   cmocka_unit_test(coco_perfect),
        cmocka_unit_test(coco_hand),    cmocka_unit_test(coco_empty),
        cmocka_unit_test(coco_maxdets), cmocka_unit_test(coco_json_errors),
        cmocka_unit_test(coco_states),  cmocka_unit_test(voc_basic),
        cmocka_unit_test(seg_basic),    cmocka_unit_test(topk_and_plot),
        cmocka_unit_test(pr_plot_pixels),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmpdir);
    return failed;
}
