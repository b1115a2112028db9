/*
 * Unit tests of image decoding and encoding (io/image.c, jpeg.c, stb_impl.c).
 *
 * Test images are built here: PNGs by hand with zlib (every bit depth / colour type),
 * BMPs by hand, JPEGs with mo_image_save_jpeg(), and one GIF made by Pillow (embedded
 * with the RGB Pillow decodes from it).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include <cmocka.h>
#include <jpeglib.h>
#include <time.h>
#include <zlib.h>

#include "mo/image.h"
#include "mo/limits.h"

/* ---- allocation tracking (glibc): the size limit must refuse before allocating ---- */

#if defined(__GLIBC__) && !defined(__SANITIZE_ADDRESS__)
#define HAVE_MALLOC_TRACKING 1
extern void *__libc_malloc(size_t n);
extern void *__libc_calloc(size_t n, size_t m);
extern void *__libc_realloc(void *p, size_t n);
extern void __libc_free(void *p);

static size_t largest_request;

static void note(size_t n)
{
    if (n > largest_request)
        largest_request = n;
}

void *malloc(size_t n)
{
    note(n);
    return __libc_malloc(n);
}

void *calloc(size_t n, size_t m)
{
    note(n * m);
    return __libc_calloc(n, m);
}

void *realloc(void *p, size_t n)
{
    note(n);
    return __libc_realloc(p, n);
}

void free(void *p)
{
    __libc_free(p);
}
#endif

/* ---- helpers ----------------------------------------------------------------------- */

static char tmpdir[64];

static int setup(void **state)
{
    (void)state;
    strcpy(tmpdir, "/tmp/mo_io_test_XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static const char *tmp_path(const char *name)
{
    static char path[256];
    snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
    return path;
}

static void write_file(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

static uint8_t *read_file(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *d = malloc((size_t)len);
    assert_non_null(d);
    assert_int_equal(fread(d, 1, (size_t)len, f), (size_t)len);
    fclose(f);
    *n = (size_t)len;
    return d;
}

typedef struct buf {
    uint8_t *d;
    size_t n, cap;
} buf;

static void put(buf *b, const void *p, size_t n)
{
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->d = realloc(b->d, b->cap);
        assert_non_null(b->d);
    }
    memcpy(b->d + b->n, p, n);
    b->n += n;
}

static void put_be32(buf *b, uint32_t v)
{
    uint8_t x[4] = { (uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v };
    put(b, x, 4);
}

static void put_le(buf *b, uint32_t v, int bytes)
{
    for (int i = 0; i < bytes; i++) {
        uint8_t x = (uint8_t)(v >> (8 * i));
        put(b, &x, 1);
    }
}

static void png_chunk(buf *b, const char *type, const void *data, size_t n)
{
    put_be32(b, (uint32_t)n);
    size_t start = b->n;
    put(b, type, 4);
    if (n)
        put(b, data, n);
    put_be32(b, (uint32_t)crc32(0, b->d + start, (uInt)(n + 4)));
}

/* A PNG from packed scanlines (without filter bytes). */
static buf make_png(uint32_t w, uint32_t h, int depth, int ctype, const uint8_t *rows,
                    size_t row_bytes, const uint8_t *plte, size_t nplte, const uint8_t *trns,
                    size_t ntrns)
{
    buf b = { 0 };
    put(&b, "\x89PNG\r\n\x1a\n", 8);
    uint8_t ihdr[13];
    for (int i = 0; i < 4; i++) {
        ihdr[i] = (uint8_t)(w >> (24 - 8 * i));
        ihdr[4 + i] = (uint8_t)(h >> (24 - 8 * i));
    }
    ihdr[8] = (uint8_t)depth;
    ihdr[9] = (uint8_t)ctype;
    ihdr[10] = ihdr[11] = ihdr[12] = 0;
    png_chunk(&b, "IHDR", ihdr, 13);
    if (plte)
        png_chunk(&b, "PLTE", plte, nplte);
    if (trns)
        png_chunk(&b, "tRNS", trns, ntrns);
    if (rows) {
        size_t raw_n = (row_bytes + 1) * h;
        uint8_t *raw = malloc(raw_n);
        for (uint32_t y = 0; y < h; y++) {
            raw[y * (row_bytes + 1)] = 0;
            memcpy(raw + y * (row_bytes + 1) + 1, rows + y * row_bytes, row_bytes);
        }
        uLongf zn = compressBound((uLong)raw_n);
        uint8_t *z = malloc(zn);
        assert_int_equal(compress(z, &zn, raw, (uLong)raw_n), Z_OK);
        png_chunk(&b, "IDAT", z, zn);
        free(z);
        free(raw);
    }
    png_chunk(&b, "IEND", NULL, 0);
    return b;
}

/* A BMP: bpp 24 (rgb = w*h*3, RGB order) or 8 (rgb = indices, pal = 256 RGB). */
static buf make_bmp(int w, int h, int bpp, const uint8_t *px, const uint8_t *pal)
{
    buf b = { 0 };
    int row = ((w * bpp + 31) / 32) * 4;
    int npal = bpp == 8 ? 256 : 0;
    uint32_t off = 14 + 40 + 4 * npal;
    put(&b, "BM", 2);
    put_le(&b, off + (uint32_t)(row * h), 4);
    put_le(&b, 0, 4);
    put_le(&b, off, 4);
    put_le(&b, 40, 4);
    put_le(&b, (uint32_t)w, 4);
    put_le(&b, (uint32_t)h, 4); /* positive: bottom-up */
    put_le(&b, 1, 2);
    put_le(&b, (uint32_t)bpp, 2);
    put_le(&b, 0, 4); /* BI_RGB */
    put_le(&b, (uint32_t)(row * h), 4);
    put_le(&b, 2835, 4);
    put_le(&b, 2835, 4);
    put_le(&b, (uint32_t)npal, 4);
    put_le(&b, 0, 4);
    for (int i = 0; i < npal; i++) {
        uint8_t q[4] = { pal[3 * i + 2], pal[3 * i + 1], pal[3 * i], 0 };
        put(&b, q, 4);
    }
    for (int y = h - 1; y >= 0; y--) {
        uint8_t line[256] = { 0 };
        for (int x = 0; x < w; x++) {
            if (bpp == 24) {
                const uint8_t *p = px + (y * w + x) * 3;
                line[3 * x] = p[2];
                line[3 * x + 1] = p[1];
                line[3 * x + 2] = p[0];
            } else {
                line[x] = px[y * w + x];
            }
        }
        put(&b, line, (size_t)row);
    }
    return b;
}

/* 4x3 GIF89a written by Pillow 9.4 (palette red, green, blue, (200,100,50), index 2
 * transparent) and Image.open(...).convert("RGB") of it. */
static const uint8_t gif_bytes[] = {
    0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x04, 0x00, 0x03, 0x00, 0x81, 0x00, 0x00, 0xff, 0x00,
    0x00, 0x00, 0xff, 0x00, 0x00, 0x00, 0xff, 0xc8, 0x64, 0x32, 0x21, 0xf9, 0x04, 0x01, 0x00,
    0x00, 0x02, 0x00, 0x2c, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x03, 0x00, 0x00, 0x08, 0x0e,
    0x00, 0x01, 0x04, 0x10, 0x30, 0x60, 0x80, 0x80, 0x00, 0x02, 0x07, 0x0a, 0x08, 0x08, 0x00,
    0x3b,
};
static const uint8_t gif_rgb[] = {
    255, 0, 0, 0, 255, 0, 0, 0, 255, 200, 100, 50, 200, 100, 50, 0, 0, 255,
    0, 255, 0, 255, 0, 0, 0, 255, 0, 0, 255, 0, 0, 0, 255, 0, 0, 255,
};

static void expect_image(const mo_image *img, int w, int h, const uint8_t *rgb)
{
    assert_int_equal(img->w, w);
    assert_int_equal(img->h, h);
    assert_non_null(img->data);
    assert_memory_equal(img->data, rgb, (size_t)w * h * 3);
}

static void load_mem_ok(const buf *b, mo_image *img)
{
    int err = mo_image_load_memory(img, b->d, b->n);
    if (err)
        fail_msg("decode failed: %s: %s", mo_strerror(err), mo_last_error());
}

/* ---- decoding ---------------------------------------------------------------------- */

static void test_png_rgb8_roundtrip(void **state)
{
    (void)state;
    mo_image img;
    assert_int_equal(mo_image_alloc(&img, 5, 3), MO_OK);
    for (int i = 0; i < 5 * 3 * 3; i++)
        img.data[i] = (uint8_t)(i * 17 + 3);
    const char *p = tmp_path("rt.png");
    assert_int_equal(mo_image_save_png(&img, p), MO_OK);
    mo_image back;
    assert_int_equal(mo_image_load(&back, p), MO_OK);
    expect_image(&back, 5, 3, img.data);
    mo_image_free(&back);
    mo_image_free(&img);
    assert_null(img.data);
    assert_int_equal(img.w, 0);
}

static void test_png_gray8(void **state)
{
    (void)state;
    const uint8_t g[6] = { 0, 1, 127, 128, 254, 255 };
    buf b = make_png(3, 2, 8, 0, g, 3, NULL, 0, NULL, 0);
    mo_image img;
    load_mem_ok(&b, &img);
    uint8_t want[18];
    for (int i = 0; i < 6; i++)
        want[3 * i] = want[3 * i + 1] = want[3 * i + 2] = g[i];
    expect_image(&img, 3, 2, want);
    mo_image_free(&img);
    free(b.d);
}

static void test_png_gray_low_depths(void **state)
{
    (void)state;
    /* 1-bit: 1 0 1 1 0 -> 255 0 255 255 0 ; 2-bit: 0..3 -> 0, 85, 170, 255;
     * 4-bit: 15, 1 -> 255, 17 */
    const uint8_t one[1] = { 0xB0 };
    buf b = make_png(5, 1, 1, 0, one, 1, NULL, 0, NULL, 0);
    mo_image img;
    load_mem_ok(&b, &img);
    const uint8_t w1[15] = { 255, 255, 255, 0, 0, 0, 255, 255, 255, 255, 255, 255, 0, 0, 0 };
    expect_image(&img, 5, 1, w1);
    mo_image_free(&img);
    free(b.d);

    const uint8_t two[1] = { 0x1B }; /* 00 01 10 11 */
    b = make_png(4, 1, 2, 0, two, 1, NULL, 0, NULL, 0);
    load_mem_ok(&b, &img);
    const uint8_t w2[12] = { 0, 0, 0, 85, 85, 85, 170, 170, 170, 255, 255, 255 };
    expect_image(&img, 4, 1, w2);
    mo_image_free(&img);
    free(b.d);

    const uint8_t four[1] = { 0xF1 };
    b = make_png(2, 1, 4, 0, four, 1, NULL, 0, NULL, 0);
    load_mem_ok(&b, &img);
    const uint8_t w4[6] = { 255, 255, 255, 17, 17, 17 };
    expect_image(&img, 2, 1, w4);
    mo_image_free(&img);
    free(b.d);
}

static void test_png_16bit(void **state)
{
    (void)state;
    /* 16-bit samples keep their high byte. */
    const uint8_t rgb16[12] = { 0x12, 0x34, 0xAB, 0xCD, 0xFF, 0xFF, 0x00, 0xFF, 0x80, 0x00, 0x7F, 0xFF };
    buf b = make_png(2, 1, 16, 2, rgb16, 12, NULL, 0, NULL, 0);
    mo_image img;
    load_mem_ok(&b, &img);
    const uint8_t w[6] = { 0x12, 0xAB, 0xFF, 0x00, 0x80, 0x7F };
    expect_image(&img, 2, 1, w);
    mo_image_free(&img);
    free(b.d);

    const uint8_t g16[4] = { 0xBE, 0xEF, 0x01, 0x02 };
    b = make_png(2, 1, 16, 0, g16, 4, NULL, 0, NULL, 0);
    load_mem_ok(&b, &img);
    const uint8_t wg[6] = { 0xBE, 0xBE, 0xBE, 0x01, 0x01, 0x01 };
    expect_image(&img, 2, 1, wg);
    mo_image_free(&img);
    free(b.d);

    /* RGBA 16: alpha dropped */
    const uint8_t rgba16[8] = { 0x10, 0, 0x20, 0, 0x30, 0, 0x00, 0x00 };
    b = make_png(1, 1, 16, 6, rgba16, 8, NULL, 0, NULL, 0);
    load_mem_ok(&b, &img);
    const uint8_t wa[3] = { 0x10, 0x20, 0x30 };
    expect_image(&img, 1, 1, wa);
    mo_image_free(&img);
    free(b.d);
}

static void test_png_palette(void **state)
{
    (void)state;
    const uint8_t plte[9] = { 10, 20, 30, 40, 50, 60, 250, 251, 252 };
    const uint8_t trns[2] = { 0, 128 }; /* transparency is ignored, as in convert("RGB") */
    const uint8_t idx8[4] = { 2, 0, 1, 2 };
    const uint8_t want[12] = { 250, 251, 252, 10, 20, 30, 40, 50, 60, 250, 251, 252 };
    mo_image img;

    buf b = make_png(2, 2, 8, 3, idx8, 2, plte, 9, NULL, 0);
    load_mem_ok(&b, &img);
    expect_image(&img, 2, 2, want);
    mo_image_free(&img);
    free(b.d);

    b = make_png(2, 2, 8, 3, idx8, 2, plte, 9, trns, 2);
    load_mem_ok(&b, &img);
    expect_image(&img, 2, 2, want);
    mo_image_free(&img);
    free(b.d);

    const uint8_t idx2[2] = { 0x80, 0x60 }; /* 2-bit: 2 0 | 1 2 */
    b = make_png(2, 2, 2, 3, idx2, 1, plte, 9, trns, 2);
    load_mem_ok(&b, &img);
    expect_image(&img, 2, 2, want);
    mo_image_free(&img);
    free(b.d);
}

static void test_png_alpha(void **state)
{
    (void)state;
    const uint8_t rgba[8] = { 1, 2, 3, 0, 200, 100, 50, 255 };
    buf b = make_png(2, 1, 8, 6, rgba, 8, NULL, 0, NULL, 0);
    mo_image img;
    load_mem_ok(&b, &img);
    const uint8_t w[6] = { 1, 2, 3, 200, 100, 50 };
    expect_image(&img, 2, 1, w);
    mo_image_free(&img);
    free(b.d);

    const uint8_t la[4] = { 77, 0, 199, 255 };
    b = make_png(2, 1, 8, 4, la, 4, NULL, 0, NULL, 0);
    load_mem_ok(&b, &img);
    const uint8_t wl[6] = { 77, 77, 77, 199, 199, 199 };
    expect_image(&img, 2, 1, wl);
    mo_image_free(&img);
    free(b.d);

    /* grayscale with tRNS colour key */
    const uint8_t g[2] = { 5, 9 };
    const uint8_t key[2] = { 0, 5 };
    b = make_png(2, 1, 8, 0, g, 2, NULL, 0, key, 2);
    load_mem_ok(&b, &img);
    const uint8_t wk[6] = { 5, 5, 5, 9, 9, 9 };
    expect_image(&img, 2, 1, wk);
    mo_image_free(&img);
    free(b.d);
}

static void test_bmp(void **state)
{
    (void)state;
    uint8_t px[3 * 2 * 3];
    for (int i = 0; i < 18; i++)
        px[i] = (uint8_t)(i * 13 + 1);
    buf b = make_bmp(3, 2, 24, px, NULL); /* 9-byte rows padded to 12 */
    mo_image img;
    load_mem_ok(&b, &img);
    expect_image(&img, 3, 2, px);
    mo_image_free(&img);
    free(b.d);

    uint8_t pal[256 * 3];
    for (int i = 0; i < 256; i++) {
        pal[3 * i] = (uint8_t)i;
        pal[3 * i + 1] = (uint8_t)(255 - i);
        pal[3 * i + 2] = (uint8_t)(i * 7);
    }
    const uint8_t idx[6] = { 0, 9, 255, 128, 3, 77 };
    b = make_bmp(3, 2, 8, idx, pal);
    load_mem_ok(&b, &img);
    uint8_t want[18];
    for (int i = 0; i < 6; i++)
        memcpy(want + 3 * i, pal + 3 * idx[i], 3);
    expect_image(&img, 3, 2, want);
    mo_image_free(&img);
    free(b.d);
}

static void test_gif_first_frame(void **state)
{
    (void)state;
    mo_image img;
    assert_int_equal(mo_image_load_memory(&img, gif_bytes, sizeof(gif_bytes)), MO_OK);
    expect_image(&img, 4, 3, gif_rgb); /* transparent index keeps its palette colour */
    mo_image_free(&img);

    const char *p = tmp_path("a.gif");
    write_file(p, gif_bytes, sizeof(gif_bytes));
    assert_int_equal(mo_image_load(&img, p), MO_OK);
    expect_image(&img, 4, 3, gif_rgb);
    mo_image_free(&img);
}

static void smooth_image(mo_image *img, int w, int h)
{
    assert_int_equal(mo_image_alloc(img, w, h), MO_OK);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            uint8_t *p = img->data + (y * w + x) * 3;
            p[0] = (uint8_t)(x * 255 / (w - 1));
            p[1] = (uint8_t)(y * 255 / (h - 1));
            p[2] = (uint8_t)((x + y) * 255 / (w + h - 2));
        }
}

static int max_abs_diff(const mo_image *a, const mo_image *b)
{
    int m = 0;
    for (size_t i = 0; i < (size_t)a->w * a->h * 3; i++) {
        int d = abs((int)a->data[i] - (int)b->data[i]);
        if (d > m)
            m = d;
    }
    return m;
}

static void test_jpeg_roundtrip(void **state)
{
    (void)state;
    mo_image img, back;
    smooth_image(&img, 40, 24);
    const int qualities[2] = { 95, 75 };
    for (int q = 0; q < 2; q++) {
        const char *p = tmp_path("rt.jpg");
        assert_int_equal(mo_image_save_jpeg(&img, p, qualities[q]), MO_OK);
        assert_int_equal(mo_image_load(&back, p), MO_OK);
        assert_int_equal(back.w, 40);
        assert_int_equal(back.h, 24);
        int d = max_abs_diff(&img, &back);
        assert_true(d <= (qualities[q] > 90 ? 8 : 20));
        mo_image_free(&back);

        /* Same bytes through memory give the same pixels. */
        size_t n;
        uint8_t *data = read_file(p, &n);
        mo_image mem, file;
        assert_int_equal(mo_image_load_memory(&mem, data, n), MO_OK);
        assert_int_equal(mo_image_load(&file, p), MO_OK);
        expect_image(&mem, file.w, file.h, file.data);
        mo_image_free(&mem);
        mo_image_free(&file);
        free(data);
    }
    assert_int_equal(mo_image_save_jpeg(&img, tmp_path("x.jpg"), 0), MO_EINVAL);
    assert_int_equal(mo_image_save_jpeg(&img, tmp_path("x.jpg"), 101), MO_EINVAL);
    mo_image_free(&img);
}

/* ---- progressive JPEG scans (libjpeg-turbo directly, as the reference) ------------------ */

/* A w x h progressive JPEG (jpeg_simple_progression: 10 scans for YCbCr) of a textured
 * picture, in memory. */
static uint8_t *encode_progressive(int w, int h, size_t *n)
{
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr e;
    c.err = jpeg_std_error(&e);
    jpeg_create_compress(&c);
    unsigned char *out = NULL;
    unsigned long size = 0;
    jpeg_mem_dest(&c, &out, &size);
    c.image_width = (JDIMENSION)w;
    c.image_height = (JDIMENSION)h;
    c.input_components = 3;
    c.in_color_space = JCS_RGB;
    jpeg_set_defaults(&c);
    jpeg_set_quality(&c, 90, TRUE);
    jpeg_simple_progression(&c);
    jpeg_start_compress(&c, TRUE);
    uint8_t *row = malloc((size_t)w * 3);
    assert_non_null(row);
    uint32_t rng = 12345;
    while (c.next_scanline < c.image_height) {
        for (int x = 0; x < w * 3; x++) {
            rng = rng * 1664525u + 1013904223u;
            row[x] = (uint8_t)((x * 7 + (int)c.next_scanline * 3) + (int)(rng >> 28));
        }
        JSAMPROW r[1] = { row };
        jpeg_write_scanlines(&c, r, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    free(row);
    /* a copy from our allocator: the test frees it with free() */
    uint8_t *d = malloc(size);
    assert_non_null(d);
    memcpy(d, out, size);
    free(out);
    *n = size;
    return d;
}

/* The pixels libjpeg-turbo gives with the settings io/jpeg.c uses, without any monitor. */
static void decode_reference(const uint8_t *d, size_t n, mo_image *img)
{
    struct jpeg_decompress_struct c;
    struct jpeg_error_mgr e;
    c.err = jpeg_std_error(&e);
    jpeg_create_decompress(&c);
    jpeg_mem_src(&c, d, (unsigned long)n);
    assert_int_equal(jpeg_read_header(&c, TRUE), JPEG_HEADER_OK);
    c.out_color_space = JCS_RGB;
    c.dct_method = JDCT_ISLOW;
    c.do_fancy_upsampling = TRUE;
    c.do_block_smoothing = TRUE;
    jpeg_start_decompress(&c);
    assert_int_equal(mo_image_alloc(img, (int)c.output_width, (int)c.output_height), MO_OK);
    while (c.output_scanline < c.output_height) {
        JSAMPROW r[1] = { img->data + (size_t)c.output_scanline * c.output_width * 3 };
        assert_int_equal(jpeg_read_scanlines(&c, r, 1), 1);
    }
    jpeg_finish_decompress(&c);
    jpeg_destroy_decompress(&c);
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* A progressive JPEG whose scans are replayed many times used to be decoded scan after
 * scan (87 s for a 624 KB file declaring 8192 x 8192); over mo_limits.jpeg_max_scans it is
 * refused, quickly, naming the limit. Normal progressive files decode as before. */
static void test_jpeg_scan_limit(void **state)
{
    (void)state;
    size_t n;
    uint8_t *jpg = encode_progressive(320, 240, &n);
    mo_image img, ref;
    decode_reference(jpg, n, &ref);
    assert_int_equal(mo_image_load_memory(&img, jpg, n), MO_OK);
    expect_image(&img, ref.w, ref.h, ref.data); /* bit-exact */
    mo_image_free(&img);

    /* Its 10 scans against the limit: 10 decode, 9 are refused. */
    mo_limits lim;
    mo_limits_get(&lim);
    lim.jpeg_max_scans = 10;
    assert_int_equal(mo_limits_set(&lim), MO_OK);
    assert_int_equal(mo_image_load_memory(&img, jpg, n), MO_OK);
    expect_image(&img, ref.w, ref.h, ref.data);
    mo_image_free(&img);
    lim.jpeg_max_scans = 9;
    assert_int_equal(mo_limits_set(&lim), MO_OK);
    assert_int_equal(mo_image_load_memory(&img, jpg, n), MO_EUNSUPPORTED);
    assert_non_null(strstr(mo_last_error(), "jpeg_max_scans 9"));
    assert_int_equal(mo_limits_set(NULL), MO_OK);

    /* Replay everything between the frame header (SOF2) and EOI (tables and scans) 2000
     * times: 20,000 scans. */
    size_t pos = 2, body = 0;
    while (pos + 4 <= n && !body) {
        assert_int_equal(jpg[pos], 0xFF);
        const int marker = jpg[pos + 1];
        const size_t len = (size_t)jpg[pos + 2] << 8 | jpg[pos + 3];
        pos += 2 + len;
        if (marker == 0xC2)
            body = pos;
    }
    assert_true(body > 0 && jpg[n - 2] == 0xFF && jpg[n - 1] == 0xD9);
    enum { REPLAYS = 2000 };
    const size_t scans = n - 2 - body;
    uint8_t *big = malloc(body + REPLAYS * scans + 2);
    assert_non_null(big);
    memcpy(big, jpg, body);
    for (int i = 0; i < REPLAYS; i++)
        memcpy(big + body + (size_t)i * scans, jpg + body, scans);
    memcpy(big + body + REPLAYS * scans, "\xFF\xD9", 2);
    const size_t big_n = body + REPLAYS * scans + 2;
    double t0 = now_s();
    int err = mo_image_load_memory(&img, big, big_n);
    double dt = now_s() - t0;
    if (err != MO_EUNSUPPORTED)
        fail_msg("20,000 scans: expected MO_EUNSUPPORTED, got %d after %.1f s (%s)", err, dt,
                 mo_last_error());
    assert_null(img.data);
    assert_non_null(strstr(mo_last_error(), "jpeg_max_scans 100"));
    assert_non_null(strstr(mo_last_error(), "<memory>"));
    if (dt > 5.0) /* 101 scans of 320 x 240 take milliseconds; 20,000 take seconds */
        fail_msg("refusing took %.1f s", dt);
    /* the same through a file: the message names it */
    const char *p = tmp_path("scans.jpg");
    write_file(p, big, big_n);
    assert_int_equal(mo_image_load(&img, p), MO_EUNSUPPORTED);
    assert_non_null(strstr(mo_last_error(), p));
    free(big);
    mo_image_free(&ref);
    free(jpg);
}

static void test_save_errors(void **state)
{
    (void)state;
    mo_image img, empty = { 0 };
    smooth_image(&img, 4, 4);
    assert_int_equal(mo_image_save_png(&img, "/nonexistent-dir/x.png"), MO_EIO);
    assert_non_null(strstr(mo_last_error(), "/nonexistent-dir/x.png"));
    assert_int_equal(mo_image_save_jpeg(&img, "/nonexistent-dir/x.jpg", 90), MO_EIO);
    assert_int_equal(mo_image_save_png(&empty, tmp_path("e.png")), MO_EINVAL);
    assert_int_equal(mo_image_save_png(NULL, tmp_path("e.png")), MO_EINVAL);
    assert_int_equal(mo_image_save_png(&img, NULL), MO_EINVAL);
    mo_image_free(&img);
}

/* ---- errors ------------------------------------------------------------------------ */

static void test_missing_and_empty(void **state)
{
    (void)state;
    mo_image img;
    const char *p = tmp_path("does-not-exist.png");
    assert_int_equal(mo_image_load(&img, p), MO_EIO);
    assert_null(img.data);
    assert_non_null(strstr(mo_last_error(), p));

    p = tmp_path("empty.jpg");
    write_file(p, "", 0);
    assert_int_equal(mo_image_load(&img, p), MO_EFORMAT);
    assert_non_null(strstr(mo_last_error(), p));
    assert_non_null(strstr(mo_last_error(), "empty"));

    assert_int_equal(mo_image_load_memory(&img, "", 0), MO_EFORMAT);
    assert_int_equal(mo_image_load_memory(&img, NULL, 0), MO_EFORMAT);

    p = tmp_path("text.png");
    write_file(p, "hello, world\n", 13);
    assert_int_equal(mo_image_load(&img, p), MO_EFORMAT);
    assert_non_null(strstr(mo_last_error(), p));
    assert_non_null(strstr(mo_last_error(), "not a"));

    /* a directory cannot be read */
    assert_int_equal(mo_image_load(&img, tmpdir), MO_EIO);

    assert_int_equal(mo_image_load(NULL, p), MO_EINVAL);
    assert_int_equal(mo_image_load(&img, NULL), MO_EINVAL);
    assert_int_equal(mo_image_load_memory(NULL, "x", 1), MO_EINVAL);
    assert_int_equal(mo_image_alloc(&img, 0, 5), MO_EINVAL);
    mo_image_free(NULL);
}

/* Every prefix shorter than n - slack must fail with MO_EFORMAT and a message. */
static void expect_truncations_fail(const uint8_t *d, size_t n, size_t slack, const char *what)
{
    for (size_t len = 0; len + slack < n; len++) {
        mo_image img;
        int err = mo_image_load_memory(&img, d, len);
        if (err != MO_EFORMAT)
            fail_msg("%s truncated to %zu of %zu bytes: got %d (%s)", what, len, n, err,
                     mo_last_error());
        assert_null(img.data);
        assert_non_null(strstr(mo_last_error(), "<memory>"));
    }
    /* the last bytes (end markers) may be missing: any result, no crash */
    for (size_t len = n - slack; len < n; len++) {
        mo_image img;
        int err = mo_image_load_memory(&img, d, len);
        assert_true(err == MO_OK || err == MO_EFORMAT);
        mo_image_free(&img);
    }
}

static void test_truncated(void **state)
{
    (void)state;
    uint8_t px[24];
    for (int i = 0; i < 24; i++)
        px[i] = (uint8_t)(i * 11);
    buf png = make_png(4, 2, 8, 2, px, 12, NULL, 0, NULL, 0);
    expect_truncations_fail(png.d, png.n, 4, "PNG"); /* IEND's CRC is not read */
    free(png.d);

    buf bmp = make_bmp(3, 2, 24, px, NULL);
    expect_truncations_fail(bmp.d, bmp.n, 0, "BMP");
    free(bmp.d);

    expect_truncations_fail(gif_bytes, sizeof(gif_bytes), 1, "GIF"); /* trailer unread */

    mo_image img;
    smooth_image(&img, 33, 17);
    const char *p = tmp_path("t.jpg");
    assert_int_equal(mo_image_save_jpeg(&img, p, 85), MO_OK);
    mo_image_free(&img);
    size_t n;
    uint8_t *jpg = read_file(p, &n);
    expect_truncations_fail(jpg, n, 2, "JPEG"); /* EOI missing is a warning */

    /* and through a file, with the file named */
    write_file(p, jpg, n / 2);
    assert_int_equal(mo_image_load(&img, p), MO_EFORMAT);
    assert_non_null(strstr(mo_last_error(), p));
    assert_non_null(strstr(mo_last_error(), "truncated"));
    free(jpg);
}

static uint32_t rng_state = 12345;
static uint32_t rnd(void)
{
    rng_state = rng_state * 1664525u + 1013904223u;
    return rng_state >> 8;
}

/* Corrupted files never crash and give MO_OK, MO_EFORMAT or MO_EUNSUPPORTED. */
static void fuzz_bytes(const uint8_t *d, size_t n, int rounds)
{
    uint8_t *c = malloc(n);
    for (int r = 0; r < rounds; r++) {
        memcpy(c, d, n);
        int flips = 1 + (int)(rnd() % 4);
        for (int f = 0; f < flips; f++)
            c[rnd() % n] = (uint8_t)rnd();
        if (r % 2 == 0)
            memcpy(c, d, n < 3 ? n : 3); /* keep the signature half of the time */
        mo_image img;
        int err = mo_image_load_memory(&img, c, n);
        assert_true(err == MO_OK || err == MO_EFORMAT || err == MO_EUNSUPPORTED);
        if (err == MO_OK) {
            assert_non_null(img.data);
            assert_true(img.w >= 1 && img.h >= 1);
            assert_true((long long)img.w * img.h <= MO_IMAGE_MAX_PIXELS);
        } else {
            assert_null(img.data);
            assert_true(mo_last_error()[0] != '\0');
        }
        mo_image_free(&img);
    }
    free(c);
}

static void test_garbled(void **state)
{
    (void)state;
    mo_image img;
    smooth_image(&img, 24, 16);
    const char *p = tmp_path("g.jpg");
    assert_int_equal(mo_image_save_jpeg(&img, p, 80), MO_OK);
    size_t n;
    uint8_t *jpg = read_file(p, &n);

    /* Deterministic: SOF0 precision byte 8 -> 3 is rejected by libjpeg (no exit()). */
    uint8_t *bad = malloc(n);
    memcpy(bad, jpg, n);
    size_t sof = 0;
    for (size_t i = 2; i + 1 < n; i++)
        if (bad[i] == 0xFF && bad[i + 1] == 0xC0) {
            sof = i;
            break;
        }
    assert_true(sof > 0);
    bad[sof + 4] = 3;
    write_file(p, bad, n);
    mo_image out;
    assert_int_equal(mo_image_load(&out, p), MO_EFORMAT);
    assert_non_null(strstr(mo_last_error(), p));

    /* PNG whose zlib stream is garbage */
    uint8_t px[12] = { 0 };
    buf png = make_png(2, 2, 8, 2, px, 6, NULL, 0, NULL, 0);
    for (size_t i = 8 + 25 + 8; i < png.n - 16; i++)
        png.d[i] ^= 0x5A;
    assert_int_equal(mo_image_load_memory(&out, png.d, png.n), MO_EFORMAT);
    free(png.d);

    /* random corruption of every format */
    fuzz_bytes(jpg, n, 600);
    png = make_png(5, 4, 8, 2, (const uint8_t *)"abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz", 15, NULL, 0, NULL, 0);
    fuzz_bytes(png.d, png.n, 600);
    free(png.d);
    buf bmp = make_bmp(3, 2, 24, px, NULL);
    fuzz_bytes(bmp.d, bmp.n, 600);
    free(bmp.d);
    fuzz_bytes(gif_bytes, sizeof(gif_bytes), 600);

    free(bad);
    free(jpg);
    mo_image_free(&img);
}

/* Only regular files are read: a FIFO named like an image used to block forever, /dev/zero
 * was read for 1 GiB. The runtime limits image_file_bytes and image_max_pixels apply. */
static void test_special_files_and_limits(void **state)
{
    (void)state;
    mo_image img;
    const char *p = tmp_path("fifo.jpg");
    unlink(p);
    assert_int_equal(mkfifo(p, 0600), 0);
    assert_int_equal(mo_image_load(&img, p), MO_EIO);
    assert_non_null(strstr(mo_last_error(), "FIFO"));
    unlink(p);
    assert_int_equal(mo_image_load(&img, "/dev/zero"), MO_EIO);
    assert_non_null(strstr(mo_last_error(), "not a regular file"));

    smooth_image(&img, 16, 8);
    p = tmp_path("limits.png");
    assert_int_equal(mo_image_save_png(&img, p), MO_OK);
    mo_image_free(&img);
    mo_limits lim;
    mo_limits_get(&lim);
    lim.image_max_pixels = 16 * 8 - 1;
    assert_int_equal(mo_limits_set(&lim), MO_OK);
    assert_int_equal(mo_image_load(&img, p), MO_EUNSUPPORTED);
    assert_non_null(strstr(mo_last_error(), "image_max_pixels"));
    assert_int_equal(mo_image_alloc(&img, 16, 8), MO_EUNSUPPORTED);
    mo_limits_default(&lim);
    lim.image_file_bytes = 10;
    assert_int_equal(mo_limits_set(&lim), MO_OK);
    assert_int_equal(mo_image_load(&img, p), MO_EUNSUPPORTED);
    assert_non_null(strstr(mo_last_error(), "image_file_bytes"));
    assert_int_equal(mo_limits_set(NULL), MO_OK);
    assert_int_equal(mo_image_load(&img, p), MO_OK);
    mo_image_free(&img);
}

static void expect_oversize(const uint8_t *d, size_t n, const char *what)
{
    mo_image img;
#ifdef HAVE_MALLOC_TRACKING
    largest_request = 0;
#endif
    int err = mo_image_load_memory(&img, d, n);
    if (err != MO_EUNSUPPORTED)
        fail_msg("%s: expected MO_EUNSUPPORTED, got %d (%s)", what, err, mo_last_error());
    assert_null(img.data);
    assert_true(strstr(mo_last_error(), "limit") || strstr(mo_last_error(), "large"));
#ifdef HAVE_MALLOC_TRACKING
    /* header-sized allocations only; the pixels would need gigabytes */
    if (largest_request > (1u << 20))
        fail_msg("%s: allocated %zu bytes before refusing", what, largest_request);
#endif
}

static void test_oversize(void **state)
{
    (void)state;
    /* PNG: a side over the limit, then sides within it but too many pixels. */
    buf b = make_png(40000, 8, 8, 2, NULL, 0, NULL, 0, NULL, 0);
    expect_oversize(b.d, b.n, "PNG 40000x8");
    free(b.d);
    b = make_png(20000, 20000, 8, 0, NULL, 0, NULL, 0, NULL, 0);
    expect_oversize(b.d, b.n, "PNG 20000x20000");
    free(b.d);
    const uint8_t plte[3] = { 1, 2, 3 };
    b = make_png(30000, 30000, 8, 3, NULL, 0, plte, 3, NULL, 0);
    expect_oversize(b.d, b.n, "PNG palette 30000x30000");
    free(b.d);

    /* BMP header claiming 30000 x 30000 */
    uint8_t px[6] = { 0 };
    b = make_bmp(1, 2, 24, px, NULL);
    b.d[18] = 0x30, b.d[19] = 0x75, b.d[22] = 0x30, b.d[23] = 0x75; /* 30000 */
    expect_oversize(b.d, b.n, "BMP 30000x30000");
    free(b.d);

    /* GIF screen 30000 x 30000 */
    uint8_t gif[sizeof(gif_bytes)];
    memcpy(gif, gif_bytes, sizeof(gif));
    gif[6] = 0x30, gif[7] = 0x75, gif[8] = 0x30, gif[9] = 0x75;
    expect_oversize(gif, sizeof(gif), "GIF 30000x30000");

    /* JPEG: patch the SOF0 size of a real file to 30000 x 30000, and 8 x 40000 */
    mo_image img;
    smooth_image(&img, 16, 8);
    const char *p = tmp_path("big.jpg");
    assert_int_equal(mo_image_save_jpeg(&img, p, 80), MO_OK);
    mo_image_free(&img);
    size_t n;
    uint8_t *jpg = read_file(p, &n);
    size_t sof = 0;
    for (size_t i = 2; i + 1 < n; i++)
        if (jpg[i] == 0xFF && jpg[i + 1] == 0xC0) {
            sof = i;
            break;
        }
    assert_true(sof > 0);
    jpg[sof + 5] = 0x75, jpg[sof + 6] = 0x30, jpg[sof + 7] = 0x75, jpg[sof + 8] = 0x30;
    expect_oversize(jpg, n, "JPEG 30000x30000");
    jpg[sof + 5] = 0x00, jpg[sof + 6] = 0x08, jpg[sof + 7] = 0x9C, jpg[sof + 8] = 0x40;
    expect_oversize(jpg, n, "JPEG 40000x8");
    write_file(p, jpg, n);
    assert_int_equal(mo_image_load(&img, p), MO_EUNSUPPORTED);
    assert_non_null(strstr(mo_last_error(), p));
    free(jpg);

    assert_int_equal(mo_image_alloc(&img, MO_IMAGE_MAX_SIDE + 1, 1), MO_EUNSUPPORTED);
    assert_int_equal(mo_image_alloc(&img, 16384, 8192), MO_EUNSUPPORTED);
    assert_null(img.data);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_png_rgb8_roundtrip),
        cmocka_unit_test(test_png_gray8),
        cmocka_unit_test(test_png_gray_low_depths),
        cmocka_unit_test(test_png_16bit),
        cmocka_unit_test(test_png_palette),
        cmocka_unit_test(test_png_alpha),
        cmocka_unit_test(test_bmp),
        cmocka_unit_test(test_gif_first_frame),
        cmocka_unit_test(test_jpeg_roundtrip),
        cmocka_unit_test(test_jpeg_scan_limit),
        cmocka_unit_test(test_save_errors),
        cmocka_unit_test(test_missing_and_empty),
        cmocka_unit_test(test_special_files_and_limits),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_garbled),
        cmocka_unit_test(test_oversize),
    };
    return cmocka_run_group_tests_name("io_image", tests, setup, teardown);
}
