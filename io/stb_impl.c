/*
 * The only translation unit that compiles stb_image and stb_image_write.
 *
 * We compile our own static copy instead of linking Debian's libstb so that we choose
 * the options: PNG, BMP and GIF only (JPEG goes to libjpeg-turbo, see jpeg.c), no stdio
 * (we read files ourselves, so an unreadable file is MO_EIO, not a format error), and
 * every stb symbol stays private to this file.
 *
 * stb reads past the end of its input as zero bytes without failing, so a truncated
 * BMP or GIF would decode "successfully" with black rows. We feed stb through read
 * callbacks and note when it asks for bytes after the end: that image is refused as
 * truncated (Pillow refuses such files too).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errors_internal.h"
#include "io_internal.h"

#define STBI_NO_STDIO
#define STBI_NO_LINEAR
#define STBI_NO_HDR
#define STBI_ONLY_PNG
#define STBI_ONLY_BMP
#define STBI_ONLY_GIF
#define STBI_MAX_DIMENSIONS MO_IMAGE_MAX_SIDE
#define STB_IMAGE_STATIC
#define STB_IMAGE_IMPLEMENTATION

#define STBI_WRITE_NO_STDIO
#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_IMPLEMENTATION

#if defined(__GNUC__)
/* For the whole file: GCC reports stb's unused static declarations at its end. */
#  pragma GCC diagnostic ignored "-Wunused-function"
#  pragma GCC diagnostic push
#  pragma GCC diagnostic ignored "-Wsign-compare"
#  pragma GCC diagnostic ignored "-Wunused-parameter"
#  pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#  pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#endif
#include <stb_image.h>
#include <stb_image_write.h>
#if defined(__GNUC__)
#  pragma GCC diagnostic pop
#endif

/* ---- decoding ------------------------------------------------------------------- */

typedef struct reader {
    const uint8_t *data;
    size_t size;
    size_t pos;
    int past_end; /* stb asked for bytes after the end of the input */
} reader;

static int rd_read(void *user, char *dst, int n)
{
    reader *r = user;
    size_t left = r->size - r->pos;
    size_t k = (size_t)n < left ? (size_t)n : left;
    if (n > 0 && left == 0)
        r->past_end = 1;
    memcpy(dst, r->data + r->pos, k);
    r->pos += k;
    return (int)k;
}

static void rd_skip(void *user, int n)
{
    reader *r = user;
    if (n < 0) { /* stb only skips backwards within what it read */
        size_t back = (size_t)-(long long)n;
        r->pos = back > r->pos ? 0 : r->pos - back;
        return;
    }
    if ((size_t)n > r->size - r->pos) {
        r->past_end = 1;
        r->pos = r->size;
    } else {
        r->pos += (size_t)n;
    }
}

static int rd_eof(void *user)
{
    reader *r = user;
    return r->pos >= r->size;
}

static const stbi_io_callbacks rd_callbacks = { rd_read, rd_skip, rd_eof };

int mo_io_decode_stb(const mo_io_src *src, mo_image *out)
{
    reader r = { src->data, src->size, 0, 0 };
    int w = 0, h = 0, comp = 0;

    /* Header first: check the size before anything is allocated. */
    if (!stbi_info_from_callbacks(&rd_callbacks, &r, &w, &h, &comp)) {
        const char *why = stbi_failure_reason();
        return mo_fail(MO_EFORMAT, "%s: cannot decode image header (%s)", src->name,
                       why ? why : "unknown");
    }
    if (r.past_end)
        return mo_fail(MO_EFORMAT, "%s: truncated image header", src->name);
    int err = mo_io_check_size(src->name, w, h);
    if (err)
        return err;

    r.pos = 0;
    r.past_end = 0;
    int w2 = 0, h2 = 0;
    stbi_uc *px = stbi_load_from_callbacks(&rd_callbacks, &r, &w2, &h2, &comp, 3);
    if (!px) {
        const char *why = stbi_failure_reason();
        if (why && !strcmp(why, "outofmem"))
            return mo_fail(MO_ENOMEM, "%s: out of memory decoding %dx%d image", src->name,
                           w, h);
        if (r.past_end)
            return mo_fail(MO_EFORMAT, "%s: truncated image data (%s)", src->name,
                           why ? why : "unknown");
        return mo_fail(MO_EFORMAT, "%s: corrupt image (%s)", src->name,
                       why ? why : "unknown");
    }
    if (r.past_end) {
        stbi_image_free(px);
        return mo_fail(MO_EFORMAT, "%s: truncated image data", src->name);
    }
    if (w2 != w || h2 != h) { /* cannot happen with stb 2.27; refuse rather than guess */
        stbi_image_free(px);
        return mo_fail(MO_EFORMAT, "%s: inconsistent image size", src->name);
    }

    /* stb allocates with malloc() (default STBI_MALLOC), as mo_image_alloc() does, so
     * the buffer is adopted as is and mo_image_free() releases it. */
    out->data = px;
    out->w = w;
    out->h = h;
    return MO_OK;
}

/* ---- encoding ------------------------------------------------------------------- */

typedef struct writer {
    FILE *f;
    int failed;
    int called;
} writer;

static void wr_func(void *user, void *data, int size)
{
    writer *w = user;
    w->called = 1;
    if (size > 0 && fwrite(data, 1, (size_t)size, w->f) != (size_t)size)
        w->failed = 1;
}

/* Returns MO_OK, MO_ENOMEM (stb failed before writing) or MO_EIO. */
static int wr_result(int ok, const writer *w)
{
    if (!ok)
        return w->called ? MO_EIO : MO_ENOMEM;
    return w->failed ? MO_EIO : MO_OK;
}

int mo_io_write_png(const mo_image *img, void *file)
{
    writer w = { file, 0, 0 };
    int ok = stbi_write_png_to_func(wr_func, &w, img->w, img->h, 3, img->data, img->w * 3);
    return wr_result(ok, &w);
}

int mo_io_write_jpeg(const mo_image *img, void *file, int quality)
{
    writer w = { file, 0, 0 };
    int ok = stbi_write_jpg_to_func(wr_func, &w, img->w, img->h, 3, img->data, quality);
    return wr_result(ok, &w);
}
