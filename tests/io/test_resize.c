/*
 * Unit tests of resizing and preprocessing (io/resize.c, io/preprocess.c).
 *
 * Reference values: hand-derived where noted, otherwise printed by Pillow 9.4
 * (`Image.fromarray(a).resize((w, h), Image.BILINEAR)`) and torch 1.13
 * (`F.interpolate(x, size, mode="bilinear", align_corners=False)`).
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mo/image.h"

static mo_image image_from(const uint8_t *rgb, int w, int h)
{
    mo_image img;
    assert_int_equal(mo_image_alloc(&img, w, h), MO_OK);
    memcpy(img.data, rgb, (size_t)w * h * 3);
    return img;
}

static void expect_resize(const uint8_t *src, int sw, int sh, int w, int h, const uint8_t *want)
{
    mo_image in = image_from(src, sw, sh), out;
    assert_int_equal(mo_image_resize_pil(&in, w, h, &out), MO_OK);
    assert_int_equal(out.w, w);
    assert_int_equal(out.h, h);
    assert_memory_equal(out.data, want, (size_t)w * h * 3);
    mo_image_free(&out);
    mo_image_free(&in);
}

static void test_resize_hand(void **state)
{
    (void)state;
    /* 4 -> 2 (scale 2, support 2). Output 0: centre 1.0, inputs 0..2 with triangle
     * weights tri((j - 1 + 0.5) / 2) = 0.75, 0.75, 0.25 -> 3/7, 3/7, 1/7:
     * R = (0*3 + 100*3 + 200) / 7 = 71.4 -> 71. Output 1: centre 3.0, inputs 1..3,
     * weights 1/7, 3/7, 3/7: R = (100 + 600 + 765) / 7 = 209.3 -> 209. */
    const uint8_t row4[12] = { 0, 0, 0, 100, 50, 25, 200, 150, 255, 255, 1, 2 };
    const uint8_t row2[6] = { 71, 43, 47, 209, 72, 114 };
    expect_resize(row4, 4, 1, 2, 1, row2);

    /* 2 -> 4 (upscale: support 1). Centres 0.25, 0.75, 1.25, 1.75: weights
     * (1), (0.75, 0.25), (0.25, 0.75), (1) -> 0, 25, 75, 100. */
    const uint8_t up2[6] = { 0, 10, 255, 100, 20, 0 };
    const uint8_t up4[12] = { 0, 10, 255, 25, 13, 191, 75, 18, 64, 100, 20, 0 };
    expect_resize(up2, 2, 1, 4, 1, up4);

    /* the same along columns: the vertical pass alone */
    expect_resize(row4, 1, 4, 1, 2, row2);
    expect_resize(up2, 1, 2, 1, 4, up4);

    /* same size: a copy */
    expect_resize(row4, 2, 2, 2, 2, row4);

    /* constant image stays constant at any size */
    uint8_t flat[5 * 7 * 3], want[13 * 2 * 3];
    memset(flat, 173, sizeof(flat));
    memset(want, 173, sizeof(want));
    expect_resize(flat, 5, 7, 13, 2, want);
}

/* 7x5 random image (numpy default_rng(7)) and Pillow's results. */
static const uint8_t src75[] = {
    241, 160, 175, 229, 148, 198, 213, 57, 14, 76, 72, 223, 233, 1, 127, 210, 33, 204, 30,
    119, 209, 77, 87, 71, 184, 65, 253, 113, 122, 129, 149, 141, 130, 254, 206, 202, 179,
    159, 87, 253, 119, 55, 216, 41, 219, 156, 29, 11, 113, 9, 36, 131, 248, 119, 206, 234,
    210, 161, 112, 131, 68, 127, 97, 63, 254, 3, 24, 49, 248, 177, 225, 51, 184, 94, 125, 0,
    158, 212, 169, 39, 136, 68, 247, 225, 47, 130, 240, 216, 181, 163, 10, 189, 121, 23, 62,
    138, 186, 129, 156, 223, 175, 92, 164, 153, 27,
};
static const uint8_t pil_3x4[] = {
    205, 121, 153, 164, 78, 150, 169, 82, 167, 146, 62, 132, 160, 156, 136, 186, 150, 115,
    111, 105, 107, 137, 148, 127, 114, 141, 164, 102, 163, 166, 93, 124, 137, 170, 153, 108,
};
static const uint8_t pil_11x2[] = {
    160, 107, 135, 172, 96, 155, 182, 82, 170, 158, 81, 98, 139, 102, 100, 123, 141, 157,
    188, 144, 172, 214, 134, 168, 188, 106, 140, 155, 116, 128, 132, 127, 121, 93, 159, 131,
    107, 126, 147, 121, 94, 159, 111, 140, 99, 111, 146, 93, 119, 121, 128, 118, 151, 169,
    136, 151, 173, 179, 110, 125, 142, 148, 122, 107, 184, 125,
};

static void test_resize_pillow(void **state)
{
    (void)state;
    expect_resize(src75, 7, 5, 3, 4, pil_3x4);   /* both passes, downscale */
    expect_resize(src75, 7, 5, 11, 2, pil_11x2); /* upscale x, downscale y */
}

static void test_resize_errors(void **state)
{
    (void)state;
    mo_image in = image_from(src75, 7, 5), out, empty = { 0 };
    assert_int_equal(mo_image_resize_pil(&in, 0, 5, &out), MO_EINVAL);
    assert_null(out.data);
    assert_int_equal(mo_image_resize_pil(&in, 5, -1, &out), MO_EINVAL);
    assert_int_equal(mo_image_resize_pil(&empty, 5, 5, &out), MO_EINVAL);
    assert_int_equal(mo_image_resize_pil(NULL, 5, 5, &out), MO_EINVAL);
    assert_int_equal(mo_image_resize_pil(&in, 5, 5, NULL), MO_EINVAL);
    assert_int_equal(mo_image_resize_pil(&in, 40000, 5, &out), MO_EUNSUPPORTED);
    mo_image_free(&in);
}

static void test_short_side_and_crop(void **state)
{
    (void)state;
    int w, h;
    assert_int_equal(mo_resize_short_size(500, 375, 256, &w, &h), MO_OK);
    assert_int_equal(w, 341); /* int(256 * 500 / 375) = int(341.33) */
    assert_int_equal(h, 256);
    assert_int_equal(mo_resize_short_size(375, 500, 256, &w, &h), MO_OK);
    assert_int_equal(w, 256);
    assert_int_equal(h, 341);
    assert_int_equal(mo_resize_short_size(300, 300, 256, &w, &h), MO_OK);
    assert_int_equal(w, 256);
    assert_int_equal(h, 256);
    assert_int_equal(mo_resize_short_size(68, 56, 256, &w, &h), MO_OK);
    assert_int_equal(w, 310); /* int(256 * 68 / 56) = int(310.86) */
    assert_int_equal(h, 256);
    assert_int_equal(mo_resize_short_size(0, 5, 256, &w, &h), MO_EINVAL);

    /* int(round((size - crop) / 2.0)), Python rounds halves to even */
    assert_int_equal(mo_center_crop_offset(256, 224), 16);
    assert_int_equal(mo_center_crop_offset(257, 224), 16); /* 16.5 -> 16 */
    assert_int_equal(mo_center_crop_offset(259, 224), 18); /* 17.5 -> 18 */
    assert_int_equal(mo_center_crop_offset(225, 224), 0);  /* 0.5 -> 0 */
    assert_int_equal(mo_center_crop_offset(227, 224), 2);  /* 1.5 -> 2 */
    assert_int_equal(mo_center_crop_offset(341, 224), 58); /* 58.5 -> 58 */
    assert_int_equal(mo_center_crop_offset(224, 224), 0);
    /* crop larger than the image: torchvision pads (crop - size) // 2 first */
    assert_int_equal(mo_center_crop_offset(200, 224), -12);
    assert_int_equal(mo_center_crop_offset(201, 224), -11);
}

static void test_to_tensor(void **state)
{
    (void)state;
    const uint8_t px[2 * 2 * 3] = { 0, 128, 255, 10, 20, 30, 40, 50, 60, 70, 80, 90 };
    mo_image img = image_from(px, 2, 2);
    const float mean[3] = { 0.485f, 0.456f, 0.406f }, std[3] = { 0.229f, 0.224f, 0.225f };
    float data[3 * 4 * 3];
    mo_tensor t = { .data = data };
    /* 3 x 3 window starting at (-1, 0): column 0 and row 2 are padding (value 0) */
    assert_int_equal(mo_image_to_tensor(&img, -1, 0, 3, 3, mean, std, &t), MO_OK);
    assert_int_equal(t.h, 3);
    assert_int_equal(t.w, 3);
    assert_int_equal(t.c, 3);
    assert_int_equal(t.row_stride, 9);
    for (int y = 0; y < 3; y++)
        for (int x = 0; x < 3; x++)
            for (int c = 0; c < 3; c++) {
                int sx = x - 1, sy = y;
                int v = (sx >= 0 && sy < 2) ? px[(sy * 2 + sx) * 3 + c] : 0;
                float want = ((float)v / 255.0f - mean[c]) / std[c];
                assert_true(data[y * 9 + x * 3 + c] == want); /* exact, same float ops */
            }

    /* no normalization: v / 255; row stride larger than the row */
    t = (mo_tensor){ .data = data, .row_stride = 12 };
    assert_int_equal(mo_image_to_tensor(&img, 0, 0, 2, 2, NULL, NULL, &t), MO_OK);
    assert_int_equal(t.row_stride, 12);
    assert_true(data[2] == 1.0f);
    assert_true(data[1] == 128.0f / 255.0f);
    assert_true(data[12 + 3 + 2] == 90.0f / 255.0f);

    t = (mo_tensor){ .data = data, .row_stride = 5 };
    assert_int_equal(mo_image_to_tensor(&img, 0, 0, 2, 2, NULL, NULL, &t), MO_EINVAL);
    const float zero[3] = { 1, 0, 1 };
    t = (mo_tensor){ .data = data };
    assert_int_equal(mo_image_to_tensor(&img, 0, 0, 2, 2, NULL, zero, &t), MO_EINVAL);
    assert_int_equal(mo_image_to_tensor(&img, 0, 0, 0, 2, NULL, NULL, &t), MO_EINVAL);
    mo_image_free(&img);
}

static void test_preprocess_classify(void **state)
{
    (void)state;
    /* A 300x200 image: Resize(64) -> 96x64, CenterCrop(48) at (24, 8). A constant image
     * stays constant; a horizontal ramp shows the crop offset. */
    mo_image img;
    assert_int_equal(mo_image_alloc(&img, 300, 200), MO_OK);
    for (int y = 0; y < 200; y++)
        for (int x = 0; x < 300; x++) {
            uint8_t *p = img.data + (y * 300 + x) * 3;
            p[0] = 90;
            p[1] = (uint8_t)(x * 255 / 299);
            p[2] = 200;
        }
    float *data = malloc(48 * 48 * 3 * sizeof(float));
    mo_tensor t = { .data = data };
    const float mean[3] = { 0.5f, 0.5f, 0.5f }, std[3] = { 0.25f, 0.25f, 0.25f };
    assert_int_equal(mo_preprocess_classify(&img, 64, 48, mean, std, &t), MO_OK);
    assert_int_equal(t.h, 48);
    assert_int_equal(t.w, 48);
    assert_int_equal(t.c, 3);
    assert_int_equal(t.row_stride, 48 * 3);
    const float r = (90.0f / 255.0f - 0.5f) / 0.25f, b = (200.0f / 255.0f - 0.5f) / 0.25f;
    for (int i = 0; i < 48 * 48; i++) {
        assert_true(data[3 * i] == r);
        assert_true(data[3 * i + 2] == b);
    }
    /* green: increasing along x, same on every row, centred (middle ~ 0.5 -> ~0) */
    for (int x = 1; x < 48; x++)
        assert_true(data[3 * x + 1] >= data[3 * (x - 1) + 1]);
    assert_true(data[3 * 47 + 1] == data[47 * 144 + 3 * 47 + 1]);
    assert_true(fabsf(data[3 * 24 + 1]) < 0.1f);

    assert_int_equal(mo_preprocess_classify(&img, 0, 48, mean, std, &t), MO_EINVAL);
    assert_int_equal(mo_preprocess_classify(NULL, 64, 48, mean, std, &t), MO_EINVAL);
    free(data);
    mo_image_free(&img);
}

/* torch.arange(24).reshape(1,3,4,2) (NHWC h=3, w=4, c=2) * 0.37 - 2, interpolated. */
static const float t_in[24] = {
    -2.0f, -1.63f, -1.26f, -0.89f, -0.52f, -0.15f, 0.22f, 0.59f, 0.96f, 1.33f, 1.70f, 2.07f,
    2.44f, 2.81f, 3.18f, 3.55f, 3.92f, 4.29f, 4.66f, 5.03f, 5.40f, 5.77f, 6.14f, 6.51f,
};
static const float t_5x3[30] = {
    -1.87666667f, -1.50666666f, -0.889999926f, -0.519999921f, 0.0966667682f, 0.466666877f,
    -0.69266659f, -0.322666615f, 0.294000179f, 0.664000213f, 1.28066695f, 1.65066695f,
    1.08333349f, 1.4533335f, 2.07000017f, 2.4400003f, 3.05666709f, 3.42666698f,
    2.85933352f, 3.22933364f, 3.84600019f, 4.21600056f, 4.83266735f, 5.20266724f,
    4.04333353f, 4.41333342f, 5.03000021f, 5.4000001f, 6.01666689f, 6.38666677f,
};
static const float t_2x7[28] = {
    -1.25999999f, -0.889999986f, -0.995714188f, -0.625714242f, -0.572857082f, -0.202857062f,
    -0.149999887f, 0.220000118f, 0.272857249f, 0.642857254f, 0.695714474f, 1.06571448f,
    0.960000157f, 1.33000016f, 3.18000007f, 3.54999995f, 3.44428563f, 3.81428576f,
    3.86714268f, 4.23714304f, 4.28999996f, 4.66000032f, 4.71285772f, 5.08285761f,
    5.13571453f, 5.50571442f, 5.40000057f, 5.77000046f,
};
static const float t_1x1[2] = { 2.07000017f, 2.44000006f };

static void expect_bilinear(int h, int w, const float *want)
{
    float in[24], out[64];
    for (int i = 0; i < 24; i++)
        in[i] = (float)i * 0.37f - 2.0f;
    mo_tensor src = { in, 3, 4, 2, 8 };
    mo_tensor dst = { out, h, w, 2, 0 };
    assert_int_equal(mo_tensor_resize_bilinear(&src, &dst), MO_OK);
    assert_int_equal(dst.row_stride, w * 2);
    for (int i = 0; i < h * w * 2; i++)
        if (fabsf(out[i] - want[i]) > 2e-6f)
            fail_msg("%dx%d: element %d = %.9g, torch %.9g", h, w, i, out[i], want[i]);
}

static void test_tensor_bilinear(void **state)
{
    (void)state;
    for (int i = 0; i < 24; i++)
        assert_true(fabsf(((float)i * 0.37f - 2.0f) - t_in[i]) < 1e-6f);
    expect_bilinear(5, 3, t_5x3);
    expect_bilinear(2, 7, t_2x7);
    expect_bilinear(1, 1, t_1x1);
    expect_bilinear(3, 4, t_in); /* same size: identity */

    /* strided destination, channel mismatch */
    float in[24] = { 0 }, out[100];
    mo_tensor src = { in, 3, 4, 2, 8 };
    mo_tensor dst = { out, 2, 2, 2, 10 };
    assert_int_equal(mo_tensor_resize_bilinear(&src, &dst), MO_OK);
    dst = (mo_tensor){ out, 2, 2, 3, 0 };
    assert_int_equal(mo_tensor_resize_bilinear(&src, &dst), MO_EINVAL);
    dst = (mo_tensor){ out, 2, 2, 2, 3 };
    assert_int_equal(mo_tensor_resize_bilinear(&src, &dst), MO_EINVAL);
    src.row_stride = 4;
    dst = (mo_tensor){ out, 2, 2, 2, 0 };
    assert_int_equal(mo_tensor_resize_bilinear(&src, &dst), MO_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resize_hand),
        cmocka_unit_test(test_resize_pillow),
        cmocka_unit_test(test_resize_errors),
        cmocka_unit_test(test_short_side_and_crop),
        cmocka_unit_test(test_to_tensor),
        cmocka_unit_test(test_preprocess_classify),
        cmocka_unit_test(test_tensor_bilinear),
    };
    return cmocka_run_group_tests_name("io_resize", tests, NULL, NULL);
}
