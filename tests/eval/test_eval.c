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
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <zlib.h>

#include "mo/eval.h"
#include "mo/limits.h"
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

/* The whole grid: precision, recall and scores at their pycocotools positions. */
static void coco_arrays(void **state)
{
    (void)state;
    mo_coco_eval *ev = open_gt();
    /* two categories: precision and scores T*R*K*A*M, recall T*K*A*M */
    enum { N5 = MO_COCO_NUM_IOU * MO_COCO_NUM_RECALL * 2 * MO_COCO_NUM_AREAS * MO_COCO_NUM_MAXDETS,
           N4 = MO_COCO_NUM_IOU * 2 * MO_COCO_NUM_AREAS * MO_COCO_NUM_MAXDETS };
    static double p[N5], rc[N4], sc[N5];
    assert_int_equal(mo_coco_eval_arrays(ev, p, rc, sc), MO_EINVAL); /* not accumulated */
    const mo_coco_det d[] = { /* as coco_hand: hit 0.9, false positive 0.8, hit 0.7 */
        { 7, 1, { 100, 100, 20, 20 }, 0.7 },
        { 7, 1, { 400, 400, 20, 20 }, 0.8 },
        { 7, 1, { 10, 10, 50, 50 }, 0.9 },
    };
    assert_int_equal(mo_coco_eval_add_detections(ev, d, 3), MO_OK);
    double s[12];
    run_all(ev, s);
    assert_int_equal(mo_coco_eval_arrays(ev, p, rc, sc), MO_OK);
    const int K = 2, A = MO_COCO_NUM_AREAS, M = MO_COCO_NUM_MAXDETS, R = MO_COCO_NUM_RECALL;
#define P_AT(t, r, k, a, m) ((((((t) * R + (r)) * K + (k)) * A + (a)) * M) + (m))
#define R_AT(t, k, a, m) (((((t) * K + (k)) * A + (a)) * M) + (m))
    const double p23 = 2.0 / (3.0 + 2.220446049250313e-16), p1 = 1 / (1 + 2.220446049250313e-16);
    for (int r = 0; r < R; r++) {
        assert_true(p[P_AT(0, r, 0, 0, 2)] == (r <= 50 ? p1 : p23));
        /* the score of the detection where the recall threshold is reached */
        assert_true(sc[P_AT(0, r, 0, 0, 2)] == (r <= 50 ? 0.9 : 0.7));
        assert_true(p[P_AT(0, r, 1, 0, 2)] == 0 && sc[P_AT(0, r, 1, 0, 2)] == 0); /* dog */
        assert_true(p[P_AT(0, r, 1, 1, 2)] == -1); /* no small dog */
        /* maxDets 1: the 0.9 hit alone, recall .5 */
        assert_true(p[P_AT(0, r, 0, 0, 0)] == (r <= 50 ? p1 : 0));
    }
    assert_true(rc[R_AT(0, 0, 0, 2)] == 1 && rc[R_AT(0, 0, 0, 0)] == 0.5);
    assert_true(rc[R_AT(0, 1, 0, 2)] == 0 && rc[R_AT(0, 1, 1, 2)] == -1);
    /* the category AP is the mean of its precision row (all IoU thresholds) */
    assert_true(fabs(mo_coco_eval_category_ap(ev, 0, 0) - (51 * p1 + 50 * p23) / 101) < 1e-15);
    mo_coco_eval_close(&ev);
    /* maxDets 1 keeps the best of each image: the 0.92 one of image 3 drops out, so the
     * hit (0.9) is the second kept detection, read at recall thresholds .01 to .5. */
    ev = open_gt();
    const mo_coco_det d1[] = {
        { 7, 1, { 10, 10, 50, 50 }, 0.9 },
        { 3, 1, { 110, 100, 20, 20 }, 0.95 },
        { 3, 1, { 150, 100, 20, 20 }, 0.92 },
    };
    assert_int_equal(mo_coco_eval_add_detections(ev, d1, 3), MO_OK);
    run_all(ev, s);
    assert_int_equal(mo_coco_eval_arrays(ev, p, rc, sc), MO_OK);
    assert_true(sc[P_AT(0, 0, 0, 0, 0)] == 0.95);
    for (int r = 1; r <= 50; r++)
        assert_true(sc[P_AT(0, r, 0, 0, 0)] == 0.9 && sc[P_AT(0, r, 0, 0, 2)] == 0.9);
    assert_true(sc[P_AT(0, 51, 0, 0, 0)] == 0 && rc[R_AT(0, 0, 0, 0)] == 0.5);
#undef P_AT
#undef R_AT
    assert_int_equal(mo_coco_eval_arrays(ev, NULL, NULL, NULL), MO_OK);
    assert_int_equal(mo_coco_eval_arrays(NULL, p, rc, sc), MO_EINVAL);
    mo_coco_eval_close(&ev);
}

/* pycocotools' params.imgIds: a subset of the images gives what a ground truth of only
 * those images (and their detections) gives. */
static void coco_select(void **state)
{
    (void)state;
    const mo_coco_det d[] = {
        { 7, 1, { 100, 100, 20, 20 }, 0.7 },  { 7, 1, { 400, 400, 20, 20 }, 0.8 },
        { 7, 1, { 12, 10, 50, 50 }, 0.9 },    { 3, 1, { 110, 100, 20, 20 }, 0.95 },
        { 3, 2, { 0, 10, 200, 100 }, 0.6 },   { 7, 2, { 5, 5, 50, 50 }, 0.99 },
    };
    const char *gt7 =
        "{\"images\": [{\"id\": 7}], \"categories\": [{\"id\": 2}, {\"id\": 1}],\n"
        " \"annotations\": [\n"
        "  {\"id\": 1, \"image_id\": 7, \"category_id\": 1, \"bbox\": [10, 10, 50, 50], \"area\": 2500},\n"
        "  {\"id\": 2, \"image_id\": 7, \"category_id\": 1, \"bbox\": [100, 100, 20, 20], \"area\": 400}]}";
    mo_coco_eval *only7 = NULL;
    assert_int_equal(mo_coco_eval_open_memory(&only7, gt7, strlen(gt7), "gt7"), MO_OK);
    const mo_coco_det d7[] = { d[0], d[1], d[2], d[5] };
    assert_int_equal(mo_coco_eval_add_detections(only7, d7, 4), MO_OK);
    double want[12], got[12], all[12];
    run_all(only7, want);
    const size_t n = (size_t)MO_COCO_NUM_IOU * MO_COCO_NUM_RECALL * 2 * MO_COCO_NUM_AREAS *
                     MO_COCO_NUM_MAXDETS;
    static double pw[(size_t)MO_COCO_NUM_IOU * MO_COCO_NUM_RECALL * 2 * MO_COCO_NUM_AREAS *
                     MO_COCO_NUM_MAXDETS], pg[sizeof(pw) / sizeof(pw[0])];
    assert_int_equal(mo_coco_eval_arrays(only7, pw, NULL, NULL), MO_OK);

    mo_coco_eval *ev = open_gt();
    assert_int_equal(mo_coco_eval_add_detections(ev, d, 6), MO_OK);
    run_all(ev, all);
    const int64_t ids[] = { 12345, 7, 7 }; /* unknown ids select nothing; repeats are fine */
    assert_int_equal(mo_coco_eval_select_images(ev, ids, 3), MO_OK);
    assert_int_equal(mo_coco_eval_stats(ev, got), MO_EINVAL); /* selecting invalidates */
    assert_int_equal(mo_coco_eval_accumulate(ev), MO_OK);     /* image 3 is left out */
    assert_int_equal(mo_coco_eval_stats(ev, got), MO_OK);
    for (int i = 0; i < 12; i++)
        assert_true(got[i] == want[i]);
    assert_true(got[0] != all[0]);
    assert_int_equal(mo_coco_eval_arrays(ev, pg, NULL, NULL), MO_OK);
    assert_memory_equal(pg, pw, n * sizeof(double));
    /* Freshly opened with the selection first: image 3 need not be evaluated at all. */
    mo_coco_eval_close(&ev);
    ev = open_gt();
    assert_int_equal(mo_coco_eval_add_detections(ev, d, 6), MO_OK);
    assert_int_equal(mo_coco_eval_select_images(ev, ids + 1, 1), MO_OK);
    run_all(ev, got);
    for (int i = 0; i < 12; i++)
        assert_true(got[i] == want[i]);
    /* Back to every image: image 3 was never evaluated. */
    assert_int_equal(mo_coco_eval_select_images(ev, NULL, 0), MO_OK);
    expect_error(mo_coco_eval_accumulate(ev), MO_EINVAL, "image 3 has not been evaluated");
    run_all(ev, got);
    for (int i = 0; i < 12; i++)
        assert_true(got[i] == all[i]);
    /* No image: -1 everywhere. */
    assert_int_equal(mo_coco_eval_select_images(ev, ids, 0), MO_OK);
    run_all(ev, got);
    for (int i = 0; i < 12; i++)
        assert_true(got[i] == -1);
    assert_int_equal(mo_coco_eval_select_images(NULL, ids, 1), MO_EINVAL);
    mo_coco_eval_close(&ev);
    mo_coco_eval_close(&only7);
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

/* ------------------------------------------------------------------------- limits */

/* gt_json with `extra` more categories without annotations (ids 1000...). */
static char *gt_with_categories(int extra)
{
    const char *cut = strstr(gt_json, "{\"id\": 2, \"name\": \"dog\"}");
    size_t head = (size_t)(cut - gt_json), cap = strlen(gt_json) + (size_t)extra * 32 + 1;
    char *s = malloc(cap);
    assert_non_null(s);
    memcpy(s, gt_json, head);
    size_t n = head;
    for (int k = 0; k < extra; k++)
        n += (size_t)snprintf(s + n, cap - n, "{\"id\": %d}, ", 1000 + k);
    strcpy(s + n, cut);
    return s;
}

/* Categories nothing refers to cost no memory in accumulate (they cost 97 KB each, 10 GB
 * for 100k, before); over max_categories the ground truth is refused naming the limit. */
static void coco_many_categories(void **state)
{
    (void)state;
    const mo_coco_det d[] = {
        { 7, 1, { 10, 10, 50, 50 }, 0.9 }, { 7, 1, { 100, 100, 25, 20 }, 0.8 },
        { 3, 2, { 0, 0, 200, 90 }, 0.7 },  { 3, 1000, { 5, 5, 9, 9 }, 0.6 },
    };
    mo_coco_eval *ev = open_gt();
    double ref[12], got[12], pr_ref[101], pr_got[101];
    assert_int_equal(mo_coco_eval_add_detections(ev, d, 4), MO_OK);
    run_all(ev, ref);
    assert_int_equal(mo_coco_eval_pr_curve(ev, -1, 3, pr_ref), MO_OK);
    mo_coco_eval_close(&ev);

    enum { EXTRA = 30000 };
    char *gt = gt_with_categories(EXTRA);
    expect_error(mo_coco_eval_open_memory(&ev, gt, strlen(gt), "big.json"), MO_EUNSUPPORTED,
                 "max_categories");
    mo_limits lim;
    mo_limits_get(&lim);
    lim.max_categories = 100000;
    assert_int_equal(mo_limits_set(&lim), MO_OK);
    assert_int_equal(mo_coco_eval_open_memory(&ev, gt, strlen(gt), "big.json"), MO_OK);
    assert_int_equal(mo_coco_eval_num_categories(ev), EXTRA + 2);
    assert_int_equal(mo_coco_eval_add_detections(ev, d, 4), MO_OK);
    run_all(ev, got);
    for (int i = 0; i < 12; i++)
        assert_true(got[i] == ref[i]); /* bit for bit: the same values in the same order */
    assert_int_equal(mo_coco_eval_pr_curve(ev, -1, 3, pr_got), MO_OK);
    assert_memory_equal(pr_got, pr_ref, sizeof(pr_ref));
    /* category 1000 has a detection and no ground truth: -1 as in pycocotools; 1001 nothing */
    assert_true(mo_coco_eval_category_ap(ev, 2, -1) == -1);
    assert_true(mo_coco_eval_category_ap(ev, 3, -1) == -1);
    assert_int_equal(mo_coco_eval_pr_curve(ev, 3, 0, pr_got), MO_OK);
    assert_true(pr_got[0] == -1 && pr_got[100] == -1);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    if (ru.ru_maxrss > 1024 * 1024) { /* KiB: 30k categories took 2.9 GB before */
        print_error("peak RSS %ld KiB for %d empty categories\n", ru.ru_maxrss, EXTRA);
        fail();
    }
    mo_coco_eval_close(&ev);
    free(gt);

    /* Detections over max_detections, VOC classes over max_categories, seg lists over
     * max_images. */
    ev = open_gt();
    lim.max_detections = 3;
    lim.max_categories = 2;
    assert_int_equal(mo_limits_set(&lim), MO_OK);
    expect_error(mo_coco_eval_add_detections(ev, d, 4), MO_EUNSUPPORTED, "max_detections");
    mo_coco_eval_close(&ev);
    lim.max_images = 1;
    assert_int_equal(mo_limits_set(&lim), MO_OK);
    expect_error(mo_coco_eval_open_memory(&ev, gt_json, strlen(gt_json), "gt.json"),
                 MO_EUNSUPPORTED, "max_images");
    const char *classes[] = { "cat", "dog", "bird" };
    mo_voc_eval *voc = NULL;
    expect_error(mo_voc_eval_open(&voc, tmpdir, "val", classes, 3), MO_EUNSUPPORTED,
                 "max_categories");
    mo_seg_eval *seg = NULL;
    assert_int_equal(mo_seg_eval_open(&seg, 2, 255), MO_OK);
    const char *ids[] = { "a", "b" };
    expect_error(mo_seg_eval_set_images(seg, ids, 2, 0, 1), MO_EUNSUPPORTED, "max_images");
    mo_seg_eval_close(&seg);
    expect_error(mo_seg_eval_open(&seg, 3, 255), MO_EUNSUPPORTED, "max_categories");
    assert_int_equal(mo_limits_set(NULL), MO_OK);
}

/* VOC with many classes and images: a record per image holds only the classes the image has
 * (it held every class: 2000 images x 50000 classes were 1.2 GB). */
static void voc_many_classes(void **state)
{
    (void)state;
    enum { IMAGES = 2000, CLASSES = 50000 };
    char dir[256], p[300];
    snprintf(dir, sizeof(dir), "%s/vocbig", tmpdir);
    mkdir(dir, 0755);
    snprintf(p, sizeof(p), "%s/Annotations", dir);
    mkdir(p, 0755);
    snprintf(p, sizeof(p), "%s/ImageSets", dir);
    mkdir(p, 0755);
    snprintf(p, sizeof(p), "%s/ImageSets/Main", dir);
    mkdir(p, 0755);
    snprintf(p, sizeof(p), "%s/ImageSets/Main/val.txt", dir);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    for (int i = 0; i < IMAGES; i++) {
        char id[16];
        snprintf(id, sizeof(id), "i%d", i);
        fprintf(f, "%s\n", id);
        write_xml(dir, id, i % 2 ? OBJ("c7", 0, 1, 1, 10, 10) : OBJ("c3", 0, 1, 1, 10, 10));
    }
    fclose(f);
    char **names = malloc(sizeof(char *) * CLASSES);
    assert_non_null(names);
    for (int c = 0; c < CLASSES; c++) {
        names[c] = malloc(12);
        snprintf(names[c], 12, "c%d", c);
    }
    mo_limits lim;
    mo_limits_get(&lim);
    lim.max_categories = CLASSES;
    assert_int_equal(mo_limits_set(&lim), MO_OK);
    mo_voc_eval *ev = NULL;
    assert_int_equal(mo_voc_eval_open(&ev, dir, "val", (const char *const *)names, CLASSES),
                     MO_OK);
    /* c7: a hit in every odd image; c3: a miss in every even one */
    for (int i = 0; i < IMAGES; i++) {
        mo_voc_det d = { i, i % 2 ? 7 : 3, 0.5, { 1, 1, 10, 10 } };
        if (i % 2 == 0)
            d.box[0] = 9;
        assert_int_equal(mo_voc_eval_add_detections(ev, &d, 1), MO_OK);
    }
    assert_int_equal(mo_voc_eval_evaluate(ev, 0.5, 0, 2, NULL, NULL), MO_OK);
    assert_int_equal(mo_voc_eval_save_state(ev, tmp_path("vocbig0")), MO_OK);
    mo_voc_eval_close(&ev);
    assert_int_equal(mo_voc_eval_open(&ev, dir, "val", (const char *const *)names, CLASSES),
                     MO_OK);
    for (int i = 0; i < IMAGES; i++) {
        mo_voc_det d = { i, i % 2 ? 7 : 3, 0.5, { 1, 1, 10, 10 } };
        if (i % 2 == 0)
            d.box[0] = 9;
        assert_int_equal(mo_voc_eval_add_detections(ev, &d, 1), MO_OK);
    }
    assert_int_equal(mo_voc_eval_evaluate(ev, 0.5, 1, 2, NULL, NULL), MO_OK);
    assert_int_equal(mo_voc_eval_load_state(ev, tmp_path("vocbig0")), MO_OK);
    assert_int_equal(mo_voc_eval_accumulate(ev), MO_OK);
    assert_true(mo_voc_eval_ap(ev, 7, 0) == 1.0);
    assert_true(mo_voc_eval_ap(ev, 3, 0) == 0.0);
    assert_true(mo_voc_eval_ap(ev, 4, 0) == -1);
    assert_true(mo_voc_eval_map(ev, 0) == 0.5);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    if (ru.ru_maxrss > 512 * 1024) {
        print_error("peak RSS %ld KiB for %d images x %d classes\n", ru.ru_maxrss, IMAGES,
                    CLASSES);
        fail();
    }
    mo_voc_eval_close(&ev);
    for (int c = 0; c < CLASSES; c++)
        free(names[c]);
    free(names);
    assert_int_equal(mo_limits_set(NULL), MO_OK);
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
    /* an ignore field of 2^31 is refused (it was also stored as (int)2^31 - 1: signed
     * overflow, found by fuzz_eval_state under UBSan) */
    {
        FILE *f = fopen(tmp_path("seg1"), "rb");
        assert_non_null(f);
        uint8_t buf[4096];
        const size_t n = fread(buf, 1, sizeof(buf), f);
        fclose(f);
        const uint8_t k_ig[8] = { 3, 0, 0, 0, 0, 1, 0, 0 }; /* k = 3, ignore 255 + 1 */
        size_t at = 0;
        while (at + 8 <= n && memcmp(buf + at, k_ig, 8))
            at++;
        assert_true(at + 8 <= n);
        buf[at + 4] = buf[at + 5] = buf[at + 6] = 0;
        buf[at + 7] = 0x80;
        uint32_t crc = (uint32_t)crc32(crc32(0L, Z_NULL, 0), buf, (uInt)(n - 4)); /* trailer */
        for (int i = 0; i < 4; i++)
            buf[n - 4 + i] = (uint8_t)(crc >> (8 * i));
        f = fopen(tmp_path("seg_bad"), "wb");
        assert_non_null(f);
        assert_int_equal(fwrite(buf, 1, n, f), n);
        fclose(f);
        expect_error(mo_seg_eval_open_state(&b, tmp_path("seg_bad")), MO_EFORMAT,
                     "ignore label");
        assert_null(b);
    }
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
        cmocka_unit_test(coco_states),  cmocka_unit_test(coco_arrays),
        cmocka_unit_test(coco_select),  cmocka_unit_test(voc_basic),
        cmocka_unit_test(seg_basic),    cmocka_unit_test(topk_and_plot),
        cmocka_unit_test(coco_many_categories),
        cmocka_unit_test(voc_many_classes),
        cmocka_unit_test(pr_plot_pixels),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmpdir);
    return failed;
}
