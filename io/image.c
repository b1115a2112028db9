/* mo_image: allocation, loading (format dispatch), saving. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mo_internal/errors.h"
#include "mo_internal/fileio.h"
#include "io_internal.h"

int mo_io_check_size(const char *name, long long w, long long h)
{
    if (w < 1 || h < 1)
        return mo_fail(MO_EFORMAT, "%s: invalid image size %lldx%lld", name, w, h);
    mo_limits lim;
    mo_limits_get(&lim);
    /* The compile-time ceilings hold whatever the limits say: buffers are sized with int. */
    long long side = lim.image_max_side < MO_IMAGE_MAX_SIDE ? lim.image_max_side : MO_IMAGE_MAX_SIDE;
    long long pixels = lim.image_max_pixels < MO_IMAGE_MAX_PIXELS ? lim.image_max_pixels
                                                                   : MO_IMAGE_MAX_PIXELS;
    if (w > side || h > side || w * h > pixels)
        return mo_fail(MO_EUNSUPPORTED,
                       "%s: image of %lldx%lld pixels is over the limit (image_max_side %lld, "
                       "image_max_pixels %lld)",
                       name, w, h, side, pixels);
    return MO_OK;
}

MO_API int mo_image_alloc(mo_image *out, int w, int h)
{
    validate_input_or_ret(out != NULL, MO_EINVAL);
    memset(out, 0, sizeof(*out));
    if (w < 1 || h < 1)
        return mo_fail(MO_EINVAL, "mo_image_alloc: invalid size %dx%d", w, h);
    int err = mo_io_check_size("mo_image_alloc", w, h);
    if (err)
        return err;
    out->data = malloc((size_t)w * (size_t)h * 3);
    if (!out->data)
        return mo_fail(MO_ENOMEM, "mo_image_alloc: out of memory for %dx%d image", w, h);
    out->w = w;
    out->h = h;
    return MO_OK;
}

MO_API void mo_image_free(mo_image *img)
{
    if (!img)
        return;
    free(img->data);
    memset(img, 0, sizeof(*img));
}

static int has_prefix(const uint8_t *d, size_t n, const char *magic, size_t m)
{
    return n >= m && !memcmp(d, magic, m);
}

static int decode(const mo_io_src *src, mo_image *out)
{
    const uint8_t *d = src->data;
    size_t n = src->size;

    if (n == 0)
        return mo_fail(MO_EFORMAT, "%s: empty file", src->name);
    if (has_prefix(d, n, "\xff\xd8\xff", 3))
        return mo_io_decode_jpeg(src, out);
    if (has_prefix(d, n, "\x89PNG\r\n\x1a\n", 8))
        return mo_io_decode_png(src, out);
    if (has_prefix(d, n, "GIF87a", 6) ||
        has_prefix(d, n, "GIF89a", 6) || has_prefix(d, n, "BM", 2))
        return mo_io_decode_stb(src, out);
    /* A prefix of a known signature is a truncated file rather than an unknown one. */
    if ((n < 3 && !memcmp(d, "\xff\xd8\xff", n)) || (n < 8 && !memcmp(d, "\x89PNG\r\n\x1a\n", n)) ||
        (n < 6 && !memcmp(d, "GIF89a", n)) || (n < 6 && !memcmp(d, "GIF87a", n)))
        return mo_fail(MO_EFORMAT, "%s: truncated file (%zu bytes)", src->name, n);
    return mo_fail(MO_EFORMAT, "%s: not a JPEG, PNG, BMP or GIF file", src->name);
}

MO_API int mo_image_load_memory(mo_image *out, const void *data, size_t size)
{
    validate_input_or_ret(out != NULL, MO_EINVAL);
    memset(out, 0, sizeof(*out));
    validate_input_or_ret(data != NULL || size == 0, MO_EINVAL);
    mo_io_src src = { data, size, "<memory>" };
    int err = decode(&src, out);
    if (err)
        mo_image_free(out);
    return err;
}

int mo_io_read_file(const char *path, uint8_t **data, size_t *size)
{
    mo_limits lim;
    mo_limits_get(&lim);
    return mo_read_file(path, lim.image_file_bytes, "image_file_bytes", data, size);
}

MO_API int mo_image_load(mo_image *out, const char *path)
{
    validate_input_or_ret(out != NULL, MO_EINVAL);
    memset(out, 0, sizeof(*out));
    validate_input_or_ret(path != NULL, MO_EINVAL);
    uint8_t *data;
    size_t size;
    int err = mo_io_read_file(path, &data, &size);
    if (err)
        return err;
    mo_io_src src = { data, size, path };
    err = decode(&src, out);
    free(data);
    if (err)
        mo_image_free(out);
    return err;
}

static int check_image(const mo_image *img, const char *fn)
{
    if (!img || !img->data || img->w < 1 || img->h < 1)
        return mo_fail(MO_EINVAL, "%s: empty or NULL image", fn);
    return MO_OK;
}

typedef int (*writer_fn)(const mo_image *img, void *file, int quality);

static int write_png(const mo_image *img, void *file, int quality)
{
    (void)quality;
    return mo_io_write_png(img, file);
}

static int save(const mo_image *img, const char *path, writer_fn fn, int quality)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return mo_fail(MO_EIO, "%s: cannot create: %s", path, strerror(errno));
    int err = fn(img, f, quality);
    if (fclose(f) != 0 && !err)
        err = MO_EIO;
    if (err) {
        remove(path);
        if (err == MO_ENOMEM)
            return mo_fail(err, "%s: out of memory encoding image", path);
        return mo_fail(err, "%s: write error", path);
    }
    return MO_OK;
}

MO_API int mo_image_save_png(const mo_image *img, const char *path)
{
    int err = check_image(img, "mo_image_save_png");
    if (err)
        return err;
    validate_input_or_ret(path != NULL, MO_EINVAL);
    return save(img, path, write_png, 0);
}

MO_API int mo_image_save_jpeg(const mo_image *img, const char *path, int quality)
{
    int err = check_image(img, "mo_image_save_jpeg");
    if (err)
        return err;
    validate_input_or_ret(path != NULL, MO_EINVAL);
    if (quality < 1 || quality > 100)
        return mo_fail(MO_EINVAL, "mo_image_save_jpeg: quality %d not in 1..100", quality);
    if (img->w > 65500 || img->h > 65500)
        return mo_fail(MO_EINVAL, "mo_image_save_jpeg: JPEG sides are limited to 65500");
    return save(img, path, mo_io_write_jpeg, quality);
}
