/*
 * NMS and soft-NMS unit tests: the cases the issue lists (ties, IoU at the threshold,
 * empty, one box, zero-area and inverted boxes, many boxes of one class, overlapping boxes
 * of different classes), early stopping, NaN scores, and a randomized comparison with a
 * literal transcription of torchvision's CPU algorithm (sort, suppressed flags, i < j loop).
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mo/detect.h"

static int nms(const float *b, const float *s, const int *l, int n, double thr, int *keep)
{
    int nk = -1;
    assert_int_equal(mo_nms(b, s, l, n, thr, 0, keep, &nk), MO_OK);
    return nk;
}

static void test_empty_and_one(void **state)
{
    (void)state;
    int keep[1] = { -1 }, nk = -1;
    assert_int_equal(mo_nms(NULL, NULL, NULL, 0, 0.5, 0, NULL, &nk), MO_OK);
    assert_int_equal(nk, 0);
    const float b[4] = { 1, 2, 3, 4 }, s[1] = { 0.3f };
    assert_int_equal(nms(b, s, NULL, 1, 0.5, keep), 1);
    assert_int_equal(keep[0], 0);
    /* bad arguments */
    assert_int_equal(mo_nms(b, s, NULL, -1, 0.5, 0, keep, &nk), MO_EINVAL);
    assert_int_equal(mo_nms(NULL, s, NULL, 1, 0.5, 0, keep, &nk), MO_EINVAL);
    assert_int_equal(mo_nms(b, s, NULL, 1, 0.5, 0, keep, NULL), MO_EINVAL);
    assert_int_equal(mo_soft_nms(b, (float[]){ 1 }, NULL, 1, 0.0, 0.1, 0, keep, &nk), MO_EINVAL);
}

/* Equal scores keep their input order (torchvision's stable sort), also across classes. */
static void test_ties_stable(void **state)
{
    (void)state;
    float b[8 * 4];
    float s[8] = { 0.5f, 0.9f, 0.5f, 0.5f, 0.9f, 0.1f, 0.5f, 0.9f };
    for (int i = 0; i < 8; i++) { /* disjoint boxes */
        b[4 * i] = 10.0f * i;
        b[4 * i + 1] = 0;
        b[4 * i + 2] = 10.0f * i + 5;
        b[4 * i + 3] = 5;
    }
    int keep[8];
    assert_int_equal(nms(b, s, NULL, 8, 0.5, keep), 8);
    const int want[8] = { 1, 4, 7, 0, 2, 3, 6, 5 };
    assert_memory_equal(keep, want, sizeof(want));

    /* two identical boxes with equal scores: the first one wins */
    const float bb[8] = { 0, 0, 10, 10, 0, 0, 10, 10 }, ss[2] = { 0.7f, 0.7f };
    assert_int_equal(nms(bb, ss, NULL, 2, 0.5, keep), 1);
    assert_int_equal(keep[0], 0);
}

/* IoU exactly equal to the threshold keeps the box (strict >); just above drops it. */
static void test_iou_at_threshold(void **state)
{
    (void)state;
    int keep[2];
    const float s[2] = { 0.9f, 0.8f };
    /* IoU = 50 / 100 = 0.5 exactly */
    const float b[8] = { 0, 0, 100, 1, 0, 0, 50, 1 };
    assert_int_equal(nms(b, s, NULL, 2, 0.5, keep), 2);
    assert_int_equal(nms(b, s, NULL, 2, 0.4999999, keep), 1);
    /* IoU 0.25 / 1 with boxes [0,0,1,1] and [0,0,0.5,0.5]: at 0.25 kept */
    const float c[8] = { 0, 0, 1, 1, 0, 0, 0.5f, 0.5f };
    assert_int_equal(nms(c, s, NULL, 2, 0.25, keep), 2);
    /* torchvision compares the float IoU in double: 55/100 in float is 0.550000012, which
     * is > 0.55 (double), so at SSDLite's threshold this pair is suppressed, as in torch */
    const float d[8] = { 0, 0, 100, 1, 0, 0, 55, 1 };
    assert_int_equal(nms(d, s, NULL, 2, 0.55, keep), 1);
    assert_int_equal(nms(d, s, NULL, 2, (double)0.55f, keep), 2);
}

/* Zero-area boxes have IoU 0 (or NaN against each other): never suppress, never suppressed. */
static void test_zero_area(void **state)
{
    (void)state;
    const float b[16] = {
        5, 5, 5, 5,     /* point */
        5, 5, 5, 5,     /* same point */
        0, 5, 10, 5,    /* horizontal line through it */
        0, 0, 10, 10,   /* a real box containing all of them */
    };
    const float s[4] = { 0.9f, 0.8f, 0.7f, 0.6f };
    int keep[4];
    assert_int_equal(nms(b, s, NULL, 4, 0.0, keep), 4);
    const int want[4] = { 0, 1, 2, 3 };
    assert_memory_equal(keep, want, sizeof(want));
}

/* Inverted boxes (x2 < x1): torchvision's formula, not a special case. Their area is
 * negative and their intersection with anything is 0, so IoU is 0 or -0: kept. */
static void test_inverted(void **state)
{
    (void)state;
    const float b[12] = {
        10, 10, 0, 0,   /* fully inverted: area +100 but no intersection with itself */
        0, 0, 10, 10,
        10, 0, 0, 10,   /* x inverted: area -100 */
    };
    const float s[3] = { 0.9f, 0.8f, 0.7f };
    int keep[3];
    assert_int_equal(nms(b, s, NULL, 3, 0.1, keep), 3);
    /* the same inverted box twice: intersection 0, so both stay */
    const float c[8] = { 10, 10, 0, 0, 10, 10, 0, 0 };
    assert_int_equal(nms(c, s, NULL, 2, 0.1, keep), 2);
}

/* Many boxes of one class: a chain of shifted boxes; greedy NMS keeps every other one. */
static void test_many_one_class(void **state)
{
    (void)state;
    enum { N = 1000 };
    static float b[4 * N], s[N];
    static int lab[N], keep[N];
    for (int i = 0; i < N; i++) {
        /* box i overlaps i+1 with IoU 9/11 > 0.5, and i+2 with IoU 8/12 > 0.5, i+3: 7/13 > .5,
         * i+4: 6/14 < 0.5 */
        b[4 * i] = (float)i;
        b[4 * i + 1] = 0;
        b[4 * i + 2] = (float)i + 10;
        b[4 * i + 3] = 1;
        s[i] = 1.0f - (float)i / N;
        lab[i] = 7;
    }
    const int nk = nms(b, s, lab, N, 0.5, keep);
    assert_int_equal(nk, (N + 3) / 4);
    for (int i = 0; i < nk; i++)
        assert_int_equal(keep[i], 4 * i);
    /* max_keep returns the prefix */
    int nk2;
    assert_int_equal(mo_nms(b, s, lab, N, 0.5, 10, keep, &nk2), MO_OK);
    assert_int_equal(nk2, 10);
    for (int i = 0; i < 10; i++)
        assert_int_equal(keep[i], 4 * i);
}

/* Fully overlapping boxes of different classes: class-wise keeps both, agnostic one. */
static void test_classes(void **state)
{
    (void)state;
    const float b[12] = { 0, 0, 10, 10, 0, 0, 10, 10, 0, 0, 10, 10 };
    const float s[3] = { 0.6f, 0.9f, 0.7f };
    const int lab[3] = { 1, 2, 1 };
    int keep[3];
    assert_int_equal(nms(b, s, lab, 3, 0.5, keep), 2);
    assert_int_equal(keep[0], 1);
    assert_int_equal(keep[1], 2);
    assert_int_equal(nms(b, s, NULL, 3, 0.5, keep), 1);
    assert_int_equal(keep[0], 1);
}

/* NaN scores sort after every number (and keep their order among themselves). */
static void test_nan_scores(void **state)
{
    (void)state;
    float b[16];
    for (int i = 0; i < 4; i++) {
        b[4 * i] = 20.0f * i;
        b[4 * i + 1] = 0;
        b[4 * i + 2] = 20.0f * i + 10;
        b[4 * i + 3] = 10;
    }
    const float s[4] = { NAN, 0.1f, NAN, -1.0f };
    int keep[4];
    assert_int_equal(nms(b, s, NULL, 4, 0.5, keep), 4);
    const int want[4] = { 1, 3, 0, 2 };
    assert_memory_equal(keep, want, sizeof(want));
}

/* ---- randomized comparison with torchvision's algorithm, transcribed literally ---- */

static uint64_t rng = 88172645463325252ull;
static double urand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (double)(rng >> 11) / 9007199254740992.0;
}

static int ref_nms(const float *b, const float *s, const int *lab, int n, double thr, int *keep)
{
    int *order = malloc(sizeof(int) * (size_t)(n + 1));
    char *sup = calloc((size_t)n + 1, 1);
    float *area = malloc(sizeof(float) * (size_t)(n + 1));
    /* stable insertion sort by score, descending */
    for (int i = 0; i < n; i++) {
        int j = i;
        while (j > 0 && s[order[j - 1]] < s[i]) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = i;
    }
    for (int i = 0; i < n; i++)
        area[i] = (b[4 * i + 2] - b[4 * i]) * (b[4 * i + 3] - b[4 * i + 1]);
    int m = 0;
    for (int a = 0; a < n; a++) {
        const int i = order[a];
        if (sup[i])
            continue;
        keep[m++] = i;
        for (int c = a + 1; c < n; c++) {
            const int j = order[c];
            if (sup[j] || (lab && lab[i] != lab[j]))
                continue;
            const float xx1 = fmaxf(b[4 * i], b[4 * j]), yy1 = fmaxf(b[4 * i + 1], b[4 * j + 1]);
            const float xx2 = fminf(b[4 * i + 2], b[4 * j + 2]);
            const float yy2 = fminf(b[4 * i + 3], b[4 * j + 3]);
            const float w = fmaxf(0.0f, xx2 - xx1), h = fmaxf(0.0f, yy2 - yy1);
            const float inter = w * h;
            const float ovr = inter / (area[i] + area[j] - inter);
            if (ovr > thr)
                sup[j] = 1;
        }
    }
    free(order);
    free(sup);
    free(area);
    return m;
}

static void test_random_vs_reference(void **state)
{
    (void)state;
    enum { MAXN = 600 };
    static float b[4 * MAXN], s[MAXN];
    static int lab[MAXN], k1[MAXN], k2[MAXN];
    for (int trial = 0; trial < 300; trial++) {
        const int n = trial < 20 ? trial : (int)(urand() * MAXN);
        const int classes = 1 + (int)(urand() * 4);
        const double thr = trial % 3 == 0 ? 0.55 : urand();
        for (int i = 0; i < n; i++) {
            const float x = (float)(urand() * 100), y = (float)(urand() * 100);
            const float w = (float)(urand() * 40), h = (float)(urand() * 40);
            b[4 * i] = x;
            b[4 * i + 1] = y;
            b[4 * i + 2] = x + w;
            b[4 * i + 3] = y + h;
            s[i] = (float)((int)(urand() * 20)) / 20.0f; /* many ties */
            lab[i] = (int)(urand() * classes);
        }
        for (int agn = 0; agn < 2; agn++) {
            const int *l = agn ? NULL : lab;
            const int m1 = ref_nms(b, s, l, n, thr, k1);
            const int m2 = nms(b, s, l, n, thr, k2);
            assert_int_equal(m1, m2);
            assert_memory_equal(k1, k2, sizeof(int) * (size_t)m1);
            /* max_keep: prefix */
            const int mk = 1 + (int)(urand() * 20);
            int m3;
            assert_int_equal(mo_nms(b, s, l, n, thr, mk, k2, &m3), MO_OK);
            assert_int_equal(m3, m1 < mk ? m1 : mk);
            assert_memory_equal(k1, k2, sizeof(int) * (size_t)m3);
        }
    }
}

/* ---- soft-NMS ---- */

static void test_soft_nms(void **state)
{
    (void)state;
    /* box 1 overlaps box 0 with IoU 0.5, box 2 is disjoint, box 3 another class on box 0 */
    const float b[16] = { 0, 0, 100, 1, 0, 0, 50, 1, 200, 0, 210, 1, 0, 0, 100, 1 };
    float s[4] = { 0.9f, 0.8f, 0.7f, 0.6f };
    const int lab[4] = { 1, 1, 1, 2 };
    int keep[4], nk;
    assert_int_equal(mo_soft_nms(b, s, lab, 4, 0.5, 0.001, 0, keep, &nk), MO_OK);
    assert_int_equal(nk, 4);
    /* 0.8 * exp(-0.25 / 0.5) = 0.485: now after box 2 (0.7) and box 3 (0.6) */
    const int want[4] = { 0, 2, 3, 1 };
    assert_memory_equal(keep, want, sizeof(want));
    assert_float_equal(s[1], 0.8 * exp(-0.5), 1e-6);
    assert_float_equal(s[3], 0.6f, 0); /* other class: untouched */

    /* class-agnostic: box 3 (identical to box 0, IoU 1) decays to 0.6 * exp(-2) = 0.081 */
    float s2[4] = { 0.9f, 0.8f, 0.7f, 0.6f };
    assert_int_equal(mo_soft_nms(b, s2, NULL, 4, 0.5, 0.1, 0, keep, &nk), MO_OK);
    assert_int_equal(nk, 3); /* box 3 fell below 0.1 */
    const int want2[3] = { 0, 2, 1 };
    assert_memory_equal(keep, want2, sizeof(want2));

    /* threshold on the input scores, max_keep, ties by index */
    float s3[4] = { 0.5f, 0.5f, 0.05f, 0.5f };
    assert_int_equal(mo_soft_nms(b, s3, lab, 4, 0.5, 0.1, 2, keep, &nk), MO_OK);
    assert_int_equal(nk, 2);
    assert_int_equal(keep[0], 0);
    assert_int_equal(keep[1], 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_and_one),
        cmocka_unit_test(test_ties_stable),
        cmocka_unit_test(test_iou_at_threshold),
        cmocka_unit_test(test_zero_area),
        cmocka_unit_test(test_inverted),
        cmocka_unit_test(test_many_one_class),
        cmocka_unit_test(test_classes),
        cmocka_unit_test(test_nan_scores),
        cmocka_unit_test(test_random_vs_reference),
        cmocka_unit_test(test_soft_nms),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
