/*
 * Default boxes and box decoding against values printed by torchvision 0.14
 * (DefaultBoxGenerator, BoxCoder.decode_single), compared bit for bit, plus bad configs.
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

typedef struct want_box {
    int index;
    const char *v[4]; /* torchvision's float32 values, printed with %.9g (round-trips) */
} want_box;

static void expect_boxes(const float *boxes, const want_box *w, int n)
{
    for (int i = 0; i < n; i++)
        for (int k = 0; k < 4; k++) {
            const float want = strtof(w[i].v[k], NULL), got = boxes[4 * w[i].index + k];
            if (got != want)
                fail_msg("box %d[%d] = %.9g, torchvision %.9g", w[i].index, k, got, want);
        }
}

static void test_ssdlite320(void **state)
{
    (void)state;
    mo_anchor_config c;
    mo_anchor_config_default(&c);
    const int g[6] = { 20, 10, 5, 3, 2, 1 };
    static float boxes[3234 * 4];
    int n = -1;
    assert_int_equal(mo_anchors_per_location(&c, 0), 6);
    assert_int_equal(mo_anchors_generate(&c, g, g, 320, 320, boxes, 3234, &n), MO_OK);
    assert_int_equal(n, 3234);
    static const want_box w[] = {
        { 0, { "-24", "-24", "40", "40" } },
        { 1, { "-34.3320198", "-34.3320198", "50.3320236", "50.3320236" } },
        { 2, { "-37.254837", "-14.6274185", "53.254837", "30.6274185" } },
        { 3, { "-14.6274185", "-37.254837", "30.6274185", "53.254837" } },
        { 7, { "-18.3320198", "-34.3320198", "66.3320236", "50.3320236" } },
        { 2400, { "-40", "-40", "72", "72" } },
        { 3228, { "8.00000191", "8.00000191", "312", "312" } },
        { 3229, { "4.05129433", "4.05129433", "315.94873", "315.94873" } },
        { 3233, { "72.2427521", "0", "247.757248", "320" } },
    };
    expect_boxes(boxes, w, (int)(sizeof(w) / sizeof(w[0])));
    /* too small a buffer: the count is still reported */
    assert_int_equal(mo_anchors_generate(&c, g, g, 320, 320, boxes, 3000, &n), MO_EINVAL);
    assert_int_equal(n, 3234);
}

/* Two maps, other ratios, a non-square image and grid (torchvision: scales 0.1, 0.6, 1). */
static void test_custom(void **state)
{
    (void)state;
    mo_anchor_config c = {.size = sizeof(c)};
    c.num_levels = 2;
    c.num_ratios[0] = 1;
    c.ratios[0][0] = 1.5;
    c.num_ratios[1] = 3;
    c.ratios[1][0] = 2;
    c.ratios[1][1] = 3;
    c.ratios[1][2] = 4;
    c.min_ratio = 0.1;
    c.max_ratio = 0.6;
    c.clip = 1;
    const int gh[2] = { 3, 2 }, gw[2] = { 5, 3 };
    float boxes[108 * 4];
    int n;
    assert_int_equal(mo_anchors_generate(&c, gh, gw, 300, 500, boxes, 108, &n), MO_OK);
    assert_int_equal(n, 108);
    static const want_box w[] = {
        { 0, { "25", "35.0000038", "75", "65" } },
        { 1, { "-11.2372417", "13.2576561", "111.237244", "86.7423477" } },
        { 2, { "19.3813801", "37.752552", "80.6186218", "62.2474518" } },
        { 3, { "29.5875854", "31.628828", "70.4124146", "68.3711777" } },
        { 5, { "88.7627563", "13.2576561", "211.237259", "86.7423477" } },
        { 13, { "288.762756", "13.2576561", "411.237244", "86.7423477" } },
        { 59, { "429.587585", "231.62883", "470.412415", "268.371155" } },
        { 60, { "-66.6666718", "-15.0000038", "233.333344", "165" } },
        { 61, { "-110.315834", "-41.1895027", "276.982513", "191.189499" } },
        { 65, { "-3.26920295", "-75", "169.935883", "225" } },
        { 66, { "-166.666656", "29.9999981", "333.333344", "120" } },
        { 67, { "8.33333302", "-75", "158.333328", "225" } },
        { 107, { "341.666626", "75", "491.666687", "375" } },
    };
    expect_boxes(boxes, w, (int)(sizeof(w) / sizeof(w[0])));

    /* explicit scales equal to the computed ones give the same boxes */
    float again[108 * 4];
    c.num_scales = 3;
    c.scales[0] = 0.1;
    c.scales[1] = 0.6;
    c.scales[2] = 1.0;
    assert_int_equal(mo_anchors_generate(&c, gh, gw, 300, 500, again, 108, &n), MO_OK);
    assert_memory_equal(boxes, again, sizeof(again));
}

/* One map: torchvision's scales are [min, max]. */
static void test_one_level(void **state)
{
    (void)state;
    mo_anchor_config c = {.size = sizeof(c)};
    c.num_levels = 1;
    c.num_ratios[0] = 1;
    c.ratios[0][0] = 2;
    c.min_ratio = 0.3;
    c.max_ratio = 0.9;
    c.clip = 1;
    const int g[1] = { 2 };
    float boxes[16 * 4];
    int n;
    assert_int_equal(mo_anchors_generate(&c, g, g, 64, 64, boxes, 16, &n), MO_OK);
    assert_int_equal(n, 16);
    static const want_box w[] = {
        { 0, { "6.39999962", "6.39999962", "25.6000004", "25.6000004" } },
        { 1, { "-0.627687454", "-0.627687454", "32.6276855", "32.6276855" } },
        { 2, { "2.42354965", "9.21177483", "29.5764503", "22.7882252" } },
        { 3, { "9.21177483", "2.42354965", "22.7882252", "29.5764503" } },
    };
    expect_boxes(boxes, w, 4);
}

static void test_bad_config(void **state)
{
    (void)state;
    mo_anchor_config c;
    float boxes[64];
    int n;
    const int g[8] = { 1, 1, 1, 1, 1, 1, 1, 1 }, z[8] = { 0 };
    mo_anchor_config_default(&c);
    assert_int_equal(mo_anchors_generate(&c, z, g, 320, 320, boxes, 16, &n), MO_EINVAL);
    assert_int_equal(mo_anchors_generate(&c, g, g, 0, 320, boxes, 16, &n), MO_EINVAL);
    assert_int_equal(mo_anchors_generate(NULL, g, g, 320, 320, boxes, 16, &n), MO_EINVAL);
    c.num_levels = 0;
    assert_int_equal(mo_anchors_generate(&c, g, g, 320, 320, boxes, 16, &n), MO_EINVAL);
    c.num_levels = MO_DET_MAX_LEVELS + 1;
    assert_int_equal(mo_anchors_generate(&c, g, g, 320, 320, boxes, 16, &n), MO_EINVAL);
    assert_int_equal(mo_anchors_per_location(&c, 9), MO_EINVAL);
    mo_anchor_config_default(&c);
    c.ratios[2][1] = -3;
    assert_int_equal(mo_anchors_generate(&c, g, g, 320, 320, boxes, 16, &n), MO_EINVAL);
    assert_non_null(strstr(mo_last_error(), "level 2"));
    mo_anchor_config_default(&c);
    c.num_ratios[0] = MO_DET_MAX_RATIOS + 1;
    assert_int_equal(mo_anchors_generate(&c, g, g, 320, 320, boxes, 16, &n), MO_EINVAL);
    mo_anchor_config_default(&c);
    c.num_scales = 3; /* needs 7 */
    assert_int_equal(mo_anchors_generate(&c, g, g, 320, 320, boxes, 16, &n), MO_EINVAL);
    mo_anchor_config_default(&c);
    c.min_ratio = NAN;
    assert_int_equal(mo_anchors_generate(&c, g, g, 320, 320, boxes, 16, &n), MO_EINVAL);
}

/* BoxCoder((10, 10, 5, 5)).decode_single, torchvision's values; the last case hits the
 * dw/dh clamp at log(1000/16) (a box of side 1 becomes 62.5). */
static void test_decode(void **state)
{
    (void)state;
    const float anchors[12] = { 10, 20, 50, 100, 0, 0, 0, 0, 5, 5, 6, 6 };
    const float codes[12] = { 1, -2, 0.5f, -1, 3, 3, 3, 3, 0, 0, 30, 100 };
    const float w[4] = { 10, 10, 5, 5 };
    float boxes[12];
    assert_int_equal(mo_box_decode(codes, anchors, 3, w, logf(1000.0f / 16), boxes), MO_OK);
    static const want_box want[] = {
        { 0, { "11.8965797", "11.2507706", "56.1034203", "76.7492294" } },
        { 1, { "0", "0", "0", "0" } },
        { 2, { "-25.7500019", "-25.7500019", "36.75", "36.75" } },
    };
    expect_boxes(boxes, want, 3);
    /* zero codes give the anchor back; in place works */
    float io[8] = { 0, 0, 0, 0, 0, 0, 0, 0 };
    const float anc[8] = { 1, 2, 3, 4, -8, -6, 8, 6 };
    assert_int_equal(mo_box_decode(io, anc, 2, w, 4.0f, io), MO_OK);
    assert_memory_equal(io, anc, sizeof(anc));
    assert_int_equal(mo_box_decode(NULL, anc, 0, w, 4.0f, NULL), MO_OK);
    assert_int_equal(mo_box_decode(NULL, anc, 1, w, 4.0f, io), MO_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ssdlite320),
        cmocka_unit_test(test_custom),
        cmocka_unit_test(test_one_level),
        cmocka_unit_test(test_bad_config),
        cmocka_unit_test(test_decode),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
