/* Label PNGs (libpng) and drawing primitives. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "mo/draw.h"
#include "mo/labels.h"

static char tmp[64];

static const char *tmpname(const char *suffix)
{
    snprintf(tmp, sizeof(tmp), "/tmp/mo_test_labels_%d%s", (int)getpid(), suffix);
    return tmp;
}

static void test_voc_palette(void **state)
{
    (void)state;
    mo_palette p;
    mo_palette_voc(&p);
    const uint8_t expect[][4] = { { 0, 0, 0, 0 },       { 1, 128, 0, 0 },   { 2, 0, 128, 0 },
                                  { 15, 192, 128, 128 }, { 20, 0, 64, 128 }, { 255, 224, 224, 192 } };
    for (size_t i = 0; i < sizeof(expect) / sizeof(expect[0]); i++)
        assert_memory_equal(p.rgb[expect[i][0]], &expect[i][1], 3);
}

static void test_roundtrip_indexed(void **state)
{
    (void)state;
    mo_labelmap m, back;
    assert_int_equal(mo_labelmap_alloc(&m, 7, 5), MO_OK);
    for (int i = 0; i < 35; i++)
        m.data[i] = (uint8_t)(i % 3 == 0 ? 255 : i % 21);
    const char *path = tmpname(".png");
    assert_int_equal(mo_labelmap_save_png(&m, path, NULL), MO_OK);
    assert_int_equal(mo_labelmap_load_png(&back, path, NULL), MO_OK);
    assert_int_equal(back.w, 7);
    assert_int_equal(back.h, 5);
    assert_memory_equal(back.data, m.data, 35);
    /* The same labels drawn in VOC colours as an RGB PNG read back to the same labels. */
    mo_palette voc;
    mo_palette_voc(&voc);
    mo_image rgb;
    assert_int_equal(mo_image_alloc(&rgb, 7, 5), MO_OK);
    for (int i = 0; i < 35; i++)
        memcpy(rgb.data + 3 * i, voc.rgb[m.data[i]], 3);
    assert_int_equal(mo_image_save_png(&rgb, path), MO_OK);
    mo_labelmap_free(&back);
    assert_int_equal(mo_labelmap_load_png(&back, path, NULL), MO_OK);
    assert_memory_equal(back.data, m.data, 35);
    /* A colour outside the palette is an error naming the pixel. */
    rgb.data[3 * 9 + 0] = 1;
    rgb.data[3 * 9 + 1] = 2;
    rgb.data[3 * 9 + 2] = 3;
    assert_int_equal(mo_image_save_png(&rgb, path), MO_OK);
    mo_labelmap_free(&back);
    assert_int_equal(mo_labelmap_load_png(&back, path, NULL), MO_EFORMAT);
    assert_non_null(strstr(mo_last_error(), "(2, 1)"));
    assert_null(back.data);
    remove(path);
    mo_image_free(&rgb);
    mo_labelmap_free(&m);
    mo_labelmap_free(&back);
}

static void test_bad_files(void **state)
{
    (void)state;
    mo_labelmap m;
    assert_int_equal(mo_labelmap_load_png(&m, "/nonexistent.png", NULL), MO_EIO);
    assert_int_equal(mo_labelmap_load_png_memory(&m, "abc", 3, NULL), MO_EFORMAT);
    mo_labelmap src;
    assert_int_equal(mo_labelmap_alloc(&src, 40, 30), MO_OK);
    for (int i = 0; i < 1200; i++)
        src.data[i] = (uint8_t)(i * 7);
    const char *path = tmpname("_t.png");
    assert_int_equal(mo_labelmap_save_png(&src, path, NULL), MO_OK);
    FILE *f = fopen(path, "rb");
    uint8_t buf[4096];
    size_t n = fread(buf, 1, sizeof(buf), f);
    fclose(f);
    remove(path);
    for (size_t cut = 0; cut < n; cut++) { /* every truncation fails cleanly */
        int r = mo_labelmap_load_png_memory(&m, buf, cut, NULL);
        assert_int_equal(r, MO_EFORMAT);
        assert_null(m.data);
    }
    for (size_t i = 8; i < n; i++) { /* garbling never crashes */
        buf[i] ^= 0x41;
        if (!mo_labelmap_load_png_memory(&m, buf, n, NULL))
            mo_labelmap_free(&m);
        buf[i] ^= 0x41;
    }
    assert_int_equal(mo_labelmap_load_png_memory(&m, buf, n, NULL), MO_OK);
    assert_memory_equal(m.data, src.data, 1200);
    mo_labelmap_free(&m);
    mo_labelmap_free(&src);
    assert_int_equal(mo_labelmap_alloc(&m, 0, 5), MO_EINVAL);
    assert_int_equal(mo_labelmap_save_png(&m, "/nonexistent/dir/x.png", NULL), MO_EINVAL);
}

static void test_draw_clipping(void **state)
{
    (void)state;
    mo_image img;
    assert_int_equal(mo_image_alloc(&img, 20, 10), MO_OK);
    memset(img.data, 0, 600);
    mo_rgb red = { 255, 0, 0 };
    mo_draw_fill_rect(&img, -100, -100, 1000000, 1000000, red, 1);
    for (int i = 0; i < 200; i++)
        assert_true(img.data[3 * i] == 255 && img.data[3 * i + 1] == 0);
    mo_draw_fill_rect(&img, 0, 0, 20, 10, (mo_rgb){ 0, 0, 255 }, 0.5f);
    assert_int_equal(img.data[0], 128);
    assert_int_equal(img.data[2], 128);
    int w, h;
    mo_draw_text_size("person 0.91", 2, &w, &h);
    assert_true(w > 40 && h == 16);
    /* Tags at every corner and far outside stay inside the image. */
    const int pts[][2] = { { 0, 0 }, { 19, 9 }, { -50, 4 }, { 300, -20 }, { 10, 5 } };
    for (size_t i = 0; i < 5; i++)
        mo_draw_tag(&img, pts[i][0], pts[i][1], "a long label that is wider than the image", 3,
                    red);
    mo_draw_text(&img, -5, -5, "clipped text", 4, red);
    mo_draw_rect(&img, 2, 2, 18, 8, 2, (mo_rgb){ 0, 255, 0 });
    mo_labelmap m;
    mo_palette voc;
    mo_palette_voc(&voc);
    assert_int_equal(mo_labelmap_alloc(&m, 20, 10), MO_OK);
    m.data[0] = 1;
    assert_int_equal(mo_draw_labels(&img, &m, &voc, 1.0f, 0), MO_OK);
    assert_memory_equal(img.data, voc.rgb[1], 3);
    mo_labelmap_free(&m);
    assert_int_equal(mo_labelmap_alloc(&m, 5, 5), MO_OK);
    assert_int_equal(mo_draw_labels(&img, &m, &voc, 0.5f, 0), MO_EINVAL);
    mo_labelmap_free(&m);
    mo_image_free(&img);
    mo_rgb a = mo_draw_class_color(1), b = mo_draw_class_color(2);
    assert_true(a.r != b.r || a.g != b.g || a.b != b.b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_voc_palette),
        cmocka_unit_test(test_roundtrip_indexed),
        cmocka_unit_test(test_bad_files),
        cmocka_unit_test(test_draw_clipping),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
