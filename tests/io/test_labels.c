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

/* The apps' drawing in io: one class palette, boxes, tag texts, label edges, the legend. */
static void test_draw_legend_boxes(void **state)
{
    (void)state;
    /* 24 distinct colours, repeating by index modulo 24 (negative indices too) */
    for (int i = 0; i < 24; i++) {
        const mo_rgb a = mo_draw_class_color(i), b = mo_draw_class_color(i + 24);
        assert_memory_equal(&a, &b, sizeof(a));
        for (int j = 0; j < i; j++) {
            const mo_rgb c = mo_draw_class_color(j);
            assert_true(a.r != c.r || a.g != c.g || a.b != c.b);
        }
    }
    (void)mo_draw_class_color(-7);
    mo_image img;
    assert_int_equal(mo_image_alloc(&img, 600, 200), MO_OK);
    memset(img.data, 0, 600 * 200 * 3);
    assert_int_equal(mo_draw_box_thickness(&img), 1);
    img.h = 480;
    assert_int_equal(mo_draw_box_thickness(&(mo_image){.w = 600, .h = 480}), 2);
    img.h = 200;
    const mo_rgb c = mo_draw_class_color(3);
    mo_draw_box(&img, 10, 10, 50, 40, 2, c);
    assert_memory_equal(img.data + (10 * 600 + 10) * 3, &c, 3);   /* the colour inside */
    assert_int_equal(img.data[(9 * 600 + 9) * 3], 20);            /* the dark line outside */
    mo_draw_box(&img, -5, -5, 700, 300, 3, c);                     /* clipped */
    /* tag texts: shortened until they fit, never below 2 characters of the name */
    char t[96];
    mo_draw_tag_text(t, sizeof(t), "person", 0.876f, 1, 1000);
    assert_string_equal(t, "person 0.88");
    mo_draw_tag_text(t, sizeof(t), "motorcycle", 0.5f, 2, 60);
    int tw;
    mo_draw_text_size(t, 2, &tw, NULL);
    assert_true(tw + 8 <= 60 || strlen(t) <= strlen("m. 0.50"));
    assert_non_null(strchr(t, '.'));
    mo_draw_tag_text(t, sizeof(t), NULL, 0.5f, 1, 1000);
    assert_string_equal(t, "? 0.50");
    /* label edges: only where the label changes */
    mo_labelmap m;
    mo_palette voc;
    mo_palette_voc(&voc);
    assert_int_equal(mo_labelmap_alloc(&m, 600, 200), MO_OK);
    memset(m.data, 0, 600 * 200);
    memset(img.data, 0, 600 * 200 * 3);
    for (int y = 0; y < 200; y++)
        for (int x = 300; x < 600; x++)
            m.data[y * 600 + x] = 15;
    assert_int_equal(mo_draw_label_edges(&img, &m, &voc, 0), MO_OK);
    assert_int_equal(img.data[(100 * 600 + 299) * 3], (voc.rgb[15][0] + 510) / 3);
    assert_int_equal(img.data[(100 * 600 + 100) * 3], 0);
    assert_int_equal(img.data[(100 * 600 + 400) * 3], 0);
    /* counts: 15 and 0 tie (300 x 200 each): the lower label first */
    mo_label_count cnt[256];
    m.data[0] = 7;
    assert_int_equal(mo_labelmap_count(&m, cnt), 3);
    assert_int_equal(cnt[0].label, 15);
    assert_int_equal(cnt[0].pixels, 300 * 200);
    assert_int_equal(cnt[1].label, 0);
    assert_int_equal(cnt[1].pixels, 300 * 200 - 1);
    assert_int_equal(cnt[2].label, 7);
    assert_int_equal(cnt[2].pixels, 1);
    m.data[0] = 0;
    assert_int_equal(mo_labelmap_count(&m, cnt), 2);
    assert_int_equal(cnt[0].label, 0); /* a tie: the lower label first */
    assert_int_equal(cnt[1].label, 15);
    assert_int_equal(mo_labelmap_count(NULL, cnt), MO_EINVAL);
    m.w = 599;
    assert_int_equal(mo_draw_label_edges(&img, &m, &voc, 0), MO_EINVAL);
    mo_labelmap_free(&m);
    /* legend: height from the layout, wraps to more rows on a narrower strip, draws only
     * inside its strip */
    const mo_legend_entry e[] = {{"person 40%", {255, 0, 0}, 0}, {"background", {0, 0, 0}, 1},
                                 {"a much longer class name 3%", {0, 255, 0}, 0}};
    int minw = 0;
    const int h1 = mo_draw_legend_height(e, 3, 1, 600, &minw); /* one row */
    const int h2 = mo_draw_legend_height(e, 3, 1, minw, NULL); /* one per entry */
    assert_true(h1 > 0 && h2 > h1);
    assert_true(minw > 100 && minw < 300);
    assert_int_equal(mo_draw_legend_height(e, 0, 2, 600, NULL), 0);
    memset(img.data, 0, 600 * 200 * 3);
    mo_draw_legend(&img, 50, e, 3, 1);
    int lit_top = 200, lit_bottom = -1;
    for (int y = 0; y < 200; y++)
        for (int x = 0; x < 600; x++)
            if (img.data[(y * 600 + x) * 3] || img.data[(y * 600 + x) * 3 + 1])
                lit_top = y < lit_top ? y : lit_top, lit_bottom = y;
    assert_true(lit_top >= 50 && lit_bottom < 50 + h1);
    mo_image_free(&img);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_voc_palette),
        cmocka_unit_test(test_roundtrip_indexed),
        cmocka_unit_test(test_bad_files),
        cmocka_unit_test(test_draw_clipping),
        cmocka_unit_test(test_draw_legend_boxes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
