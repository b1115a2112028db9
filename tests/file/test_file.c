/* Model file loader: valid files open, every kind of damage is refused with a message. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <zlib.h>

#include "mo/file.h"
#include "mo/limits.h"

#include <sys/stat.h>
#include <unistd.h>

/* Builds a safetensors image in memory: two tensors "a" (F32 [2,3]) and "b" (F16 [2]). */
typedef struct blob {
    uint8_t *p;
    size_t n;
} blob;

static const float a_vals[6] = { 1, -2, 3.5f, 0, 1e-3f, 65504 };
static const uint16_t b_vals[2] = { 0x3c00 /* 1.0 */, 0xc000 /* -2.0 */ };

static blob build(const char *format, const char *version, const char *b_shape, int b_end,
                  int bad_crc, const char *extra_meta)
{
    uint8_t data[28];
    memcpy(data, a_vals, 24);
    memcpy(data + 24, b_vals, 4);
    unsigned ca = (unsigned)crc32(0, data, 24), cb = (unsigned)crc32(0, data + 24, 4);
    if (bad_crc)
        ca ^= 1;
    char crc[128];
    snprintf(crc, sizeof(crc), "{\\\"a\\\": \\\"%08x\\\", \\\"b\\\": \\\"%08x\\\"}", ca, cb);
    char hdr[1024];
    int hn = snprintf(hdr, sizeof(hdr),
                      "{\"__metadata__\": {\"mo.format\": \"%s\", \"mo.format_version\": \"%s\", "
                      "\"mo.crc32\": \"%s\"%s}, "
                      "\"a\": {\"dtype\": \"F32\", \"shape\": [2, 3], \"data_offsets\": [0, 24]}, "
                      "\"b\": {\"dtype\": \"F16\", \"shape\": %s, \"data_offsets\": [24, %d]}}   ",
                      format, version, crc, extra_meta ? extra_meta : "", b_shape, b_end);
    blob r;
    r.n = 8 + (size_t)hn + sizeof(data);
    r.p = malloc(r.n);
    for (int i = 0; i < 8; i++)
        r.p[i] = (uint8_t)((uint64_t)hn >> (8 * i));
    memcpy(r.p + 8, hdr, (size_t)hn);
    memcpy(r.p + 8 + hn, data, sizeof(data));
    return r;
}

static blob good(void)
{
    return build("mobileone-sdk", "1", "[2]", 28, 0, ", \"cls.classes\": \"[]\"");
}

static int open_blob(blob b, mo_file **f)
{
    int r = mo_file_open_memory(f, b.p, b.n);
    free(b.p);
    return r;
}

static void test_valid(void **state)
{
    (void)state;
    mo_file *f = NULL;
    assert_int_equal(open_blob(good(), &f), MO_OK);
    assert_int_equal(mo_file_num_tensors(f), 2);
    assert_string_equal(mo_file_meta(f, "cls.classes"), "[]");
    assert_null(mo_file_meta(f, "nope"));
    float a[6], b[2];
    int64_t sa[2] = { 2, 3 }, sb[1] = { 2 };
    assert_int_equal(mo_file_read_f32(f, "a", 2, sa, a), MO_OK);
    assert_memory_equal(a, a_vals, sizeof(a));
    assert_int_equal(mo_file_read_f32(f, "b", 1, sb, b), MO_OK);
    assert_true(b[0] == 1.0f && b[1] == -2.0f);
    mo_tensor_info info;
    assert_int_equal(mo_file_tensor(f, "b", &info), MO_OK);
    assert_int_equal(info.dtype, MO_DTYPE_F16);
    assert_int_equal(info.numel, 2);
    char d1[17], d2[17];
    assert_int_equal(mo_file_digest(f, "a", d1), MO_OK);
    assert_int_equal(mo_file_digest(f, "", d2), MO_OK);
    assert_int_equal((int)strlen(d1), 16);
    assert_string_not_equal(d1, d2);
    assert_int_equal(mo_file_digest(f, "zz", d1), MO_EFORMAT);
    mo_file_close(&f);
    assert_null(f);
    mo_file_close(&f); /* closing twice is harmless */
}

static void test_shape_and_missing(void **state)
{
    (void)state;
    mo_file *f = NULL;
    assert_int_equal(open_blob(good(), &f), MO_OK);
    float a[6];
    int64_t wrong[2] = { 3, 2 };
    assert_int_equal(mo_file_read_f32(f, "a", 2, wrong, a), MO_EMISMATCH);
    assert_non_null(strstr(mo_last_error(), "[2, 3]"));
    assert_non_null(strstr(mo_last_error(), "[3, 2]"));
    assert_int_equal(mo_file_read_f32(f, "missing", 2, wrong, a), MO_EFORMAT);
    assert_non_null(strstr(mo_last_error(), "missing"));
    assert_int_equal(mo_file_tensor(f, "missing", NULL), MO_EFORMAT);
    mo_file_close(&f);
}

static void expect_refused(blob b, int code, const char *word)
{
    mo_file *f = (mo_file *)0x1;
    assert_int_equal(open_blob(b, &f), code);
    assert_null(f);
    if (!strstr(mo_last_error(), word))
        fail_msg("message '%s' lacks '%s'", mo_last_error(), word);
}

static void test_wrong_magic_and_version(void **state)
{
    (void)state;
    expect_refused(build("other", "1", "[2]", 28, 0, NULL), MO_EFORMAT, "mo.format");
    expect_refused(build("mobileone-sdk", "2", "[2]", 28, 0, NULL), MO_EFORMAT, "version 2");
}

static void test_offsets_and_sizes(void **state)
{
    (void)state;
    expect_refused(build("mobileone-sdk", "1", "[2]", 40, 0, NULL), MO_EFORMAT, "outside");
    expect_refused(build("mobileone-sdk", "1", "[3]", 28, 0, NULL), MO_EFORMAT, "bytes for");
    expect_refused(build("mobileone-sdk", "1", "[-2]", 28, 0, NULL), MO_EFORMAT, "dim 0");
    expect_refused(build("mobileone-sdk", "1", "[1,1,1,1,2]", 28, 0, NULL), MO_EFORMAT, "dims");
    expect_refused(build("mobileone-sdk", "1", "[2]", 28, 1, NULL), MO_EFORMAT, "checksum");
}

/* A header given whole; CRC_A / CRC_B in it are replaced by the checksums of a and b. */
static blob build_raw(const char *tmpl)
{
    uint8_t data[28];
    memcpy(data, a_vals, 24);
    memcpy(data + 24, b_vals, 4);
    char ca[9], cb[9], hdr[2048];
    snprintf(ca, sizeof(ca), "%08x", (unsigned)crc32(0, data, 24));
    snprintf(cb, sizeof(cb), "%08x", (unsigned)crc32(0, data + 24, 4));
    size_t hn = 0;
    for (const char *t = tmpl; *t && hn + 9 < sizeof(hdr);) {
        const int is_a = !strncmp(t, "CRC_A", 5), is_b = !strncmp(t, "CRC_B", 5);
        if (is_a || is_b) {
            memcpy(hdr + hn, is_a ? ca : cb, 8);
            hn += 8;
            t += 5;
        } else {
            hdr[hn++] = *t++;
        }
    }
    blob r;
    r.n = 8 + hn + sizeof(data);
    r.p = malloc(r.n);
    for (int i = 0; i < 8; i++)
        r.p[i] = (uint8_t)((uint64_t)hn >> (8 * i));
    memcpy(r.p + 8, hdr, hn);
    memcpy(r.p + 8 + hn, data, sizeof(data));
    return r;
}

#define META_ "\"__metadata__\": {\"mo.format\": \"mobileone-sdk\", \"mo.format_version\": \"1\""
#define CRC_ ", \"mo.crc32\": \"{\\\"a\\\": \\\"CRC_A\\\", \\\"b\\\": \\\"CRC_B\\\"}\""
#define A_ "\"a\": {\"dtype\": \"F32\", \"shape\": [2, 3], \"data_offsets\": [0, 24]}"
#define B_ "\"b\": {\"dtype\": \"F16\", \"shape\": [2], \"data_offsets\": [24, 28]}"

/* The header is read strictly: what json-c's tree silently merged or cut (a repeated key,
 * a NUL inside a string) is refused, escapes are decoded the same way everywhere. */
static void test_header_strictness(void **state)
{
    (void)state;
    mo_file *f = NULL;
    assert_int_equal(open_blob(build_raw("{" META_ CRC_ "}, " A_ ", " B_ "}"), &f), MO_OK);
    mo_file_close(&f);
    /* "\u0061" is "a": the tensor and its mo.crc32 entry name it differently */
    assert_int_equal(open_blob(build_raw("{" META_ CRC_ "}, \"\\u0061\": {\"dtype\": \"F32\", "
                                         "\"shape\": [2, 3], \"data_offsets\": [0, 24]}, " B_
                                         "}"), &f), MO_OK);
    assert_int_equal(mo_file_tensor(f, "a", NULL), MO_OK);
    mo_file_close(&f);
    expect_refused(build_raw("{" META_ CRC_ ", \"mo.format\": \"mobileone-sdk\"}, " A_ ", " B_
                             "}"), MO_EFORMAT, "'mo.format' appears twice");
    expect_refused(build_raw("{" META_ CRC_ "}, " A_ ", " B_ ", " META_ CRC_ "}}"), MO_EFORMAT,
                   "__metadata__ appears twice");
    expect_refused(build_raw("{" META_ CRC_ "}, " A_ ", " B_ ", " A_ "}"), MO_EFORMAT,
                   "'a' appears twice");
    expect_refused(build_raw("{" META_ ", \"mo.crc32\": \"{\\\"a\\\": \\\"CRC_A\\\", \\\"a\\\": "
                             "\\\"CRC_A\\\"}\"}, " A_ ", " B_ "}"), MO_EFORMAT, "twice");
    expect_refused(build_raw("{" META_ CRC_ ", \"mo.variant\": \"s0\\u0000x\"}, " A_ ", " B_
                             "}"), MO_EFORMAT, "NUL");
    expect_refused(build_raw("{" META_ CRC_ "}, " A_ ", " B_ "}\n"), MO_EFORMAT, "trailing");
    expect_refused(build_raw("{" META_ CRC_ "}, " A_ ", " B_ ",}"), MO_EFORMAT, "not valid JSON");
    expect_refused(build_raw("{" META_ CRC_ ", \"x\": 1}, " A_ ", " B_ "}"), MO_EFORMAT,
                   "'x' is not a string");
}

static void test_truncated_everywhere(void **state)
{
    (void)state;
    blob g = good();
    for (size_t n = 0; n < g.n; n++) {
        mo_file *f = NULL;
        int r = mo_file_open_memory(&f, g.p, n);
        assert_int_equal(r, MO_EFORMAT);
        assert_null(f);
        assert_true(strlen(mo_last_error()) > 0);
    }
    free(g.p);
}

static void test_garbled(void **state)
{
    (void)state;
    blob g = good();
    /* Flip every byte in turn: the loader either refuses or (when the flip lands in
     * padding) opens; it never crashes, and a flipped data byte is a checksum error. */
    for (size_t i = 0; i < g.n; i++) {
        g.p[i] ^= 0x5a;
        mo_file *f = NULL;
        int r = mo_file_open_memory(&f, g.p, g.n);
        if (i >= g.n - 28)
            assert_int_equal(r, MO_EFORMAT);
        if (r == MO_OK)
            mo_file_close(&f);
        g.p[i] ^= 0x5a;
    }
    uint8_t huge[16] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f };
    mo_file *f = NULL;
    assert_int_equal(mo_file_open_memory(&f, huge, sizeof(huge)), MO_EFORMAT);
    free(g.p);
}

static void test_io_errors(void **state)
{
    (void)state;
    mo_file *f = NULL;
    assert_int_equal(mo_file_open(&f, "/nonexistent/model.safetensors"), MO_EIO);
    assert_non_null(strstr(mo_last_error(), "/nonexistent/model.safetensors"));
    assert_int_equal(mo_file_open(&f, "/"), MO_EIO);
    assert_int_equal(mo_file_open(NULL, "x"), MO_EINVAL);
    assert_int_equal(mo_file_open(&f, NULL), MO_EINVAL);
    char path[] = "/tmp/mo_test_empty_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    fclose(fdopen(fd, "w"));
    assert_int_equal(mo_file_open(&f, path), MO_EFORMAT);
    assert_non_null(strstr(mo_last_error(), path));
    remove(path);
}

/* A FIFO, a device or a directory is refused at once: before the fix a FIFO blocked the open
 * forever waiting for a writer, and /dev/zero was read without bound. */
static void test_special_files(void **state)
{
    (void)state;
    char dir[] = "/tmp/mo_test_fifo_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char fifo[64];
    snprintf(fifo, sizeof(fifo), "%s/model.safetensors", dir);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    mo_file *f = NULL;
    assert_int_equal(mo_file_open(&f, fifo), MO_EIO);
    assert_non_null(strstr(mo_last_error(), "FIFO"));
    assert_int_equal(mo_file_open(&f, "/dev/zero"), MO_EIO);
    assert_non_null(strstr(mo_last_error(), "not a regular file"));
    assert_int_equal(mo_file_open(&f, dir), MO_EIO);
    assert_null(f);
    unlink(fifo);
    rmdir(dir);
}

/* Field by field: padding bytes of a struct copy are unspecified (ASan builds differ). */
static int limits_equal(const mo_limits *a, const mo_limits *b)
{
    return a->image_max_side == b->image_max_side && a->image_max_pixels == b->image_max_pixels &&
           a->jpeg_max_scans == b->jpeg_max_scans && a->model_file_bytes == b->model_file_bytes &&
           a->image_file_bytes == b->image_file_bytes && a->json_file_bytes == b->json_file_bytes &&
           a->text_file_bytes == b->text_file_bytes && a->max_categories == b->max_categories &&
           a->max_images == b->max_images && a->max_detections == b->max_detections &&
           a->model_memory_bytes == b->model_memory_bytes &&
           a->session_memory_bytes == b->session_memory_bytes;
}

/* model_file_bytes is checked before the file is read; invalid limits are refused whole. */
static void test_limits(void **state)
{
    (void)state;
    mo_limits def, lim;
    mo_limits_default(&def);
    mo_limits_get(&lim);
    assert_true(limits_equal(&def, &lim));
    blob b = good();
    char path[] = "/tmp/mo_test_limit_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *fp = fdopen(fd, "wb");
    assert_int_equal(fwrite(b.p, 1, b.n, fp), b.n);
    fclose(fp);
    mo_file *f = NULL;
    assert_int_equal(mo_file_open(&f, path), MO_OK);
    mo_file_close(&f);
    lim.model_file_bytes = b.n - 1;
    assert_int_equal(mo_limits_set(&lim), MO_OK);
    assert_int_equal(mo_file_open(&f, path), MO_EUNSUPPORTED);
    assert_non_null(strstr(mo_last_error(), "model_file_bytes"));
    lim.model_file_bytes = b.n;
    assert_int_equal(mo_limits_set(&lim), MO_OK);
    assert_int_equal(mo_file_open(&f, path), MO_OK);
    mo_file_close(&f);
    mo_limits bad = lim;
    bad.max_images = 0;
    assert_int_equal(mo_limits_set(&bad), MO_EINVAL);
    assert_non_null(strstr(mo_last_error(), "max_images"));
    bad = lim;
    bad.image_max_side = (1 << 20) + 1;
    assert_int_equal(mo_limits_set(&bad), MO_EINVAL);
    mo_limits now;
    mo_limits_get(&now);
    assert_true(limits_equal(&now, &lim));
    assert_int_equal(mo_limits_set(NULL), MO_OK);
    mo_limits_get(&now);
    assert_true(limits_equal(&now, &def));
    remove(path);
    free(b.p);
}

static void test_strerror(void **state)
{
    (void)state;
    for (int e = MO_EMISMATCH; e <= MO_OK; e++)
        assert_string_not_equal(mo_strerror(e), "unknown error");
    assert_string_equal(mo_strerror(-1000), "unknown error");
    assert_non_null(mo_version());
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid),
        cmocka_unit_test(test_shape_and_missing),
        cmocka_unit_test(test_wrong_magic_and_version),
        cmocka_unit_test(test_offsets_and_sizes),
        cmocka_unit_test(test_header_strictness),
        cmocka_unit_test(test_truncated_everywhere),
        cmocka_unit_test(test_garbled),
        cmocka_unit_test(test_io_errors),
        cmocka_unit_test(test_special_files),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_strerror),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
