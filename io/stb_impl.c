/*
 * The only translation unit that compiles stb_image and stb_image_write (PNG only:
 * JPEG is written by libjpeg-turbo, see jpeg.c).
 *
 * We compile our own static copy instead of linking Debian's libstb so that we choose
 * the options: BMP and GIF only (JPEG goes to libjpeg-turbo, jpeg.c; PNG to libpng, png.c), no stdio
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

#include "mo_internal/errors.h"
#include "io_internal.h"

#define STBI_NO_STDIO
#define STBI_NO_LINEAR
#define STBI_NO_HDR
#define STBI_ONLY_BMP
#define STBI_ONLY_GIF
/* stb's own limit stays above ours so that mo_io_check_size() decides (MO_EUNSUPPORTED). */
#define STBI_MAX_DIMENSIONS (1 << 24)
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

static int decode_stb(const mo_io_src *src, mo_image *out);

/*
 * GIF: Pillow's convert("RGB") of the first frame maps every index through the palette,
 * the transparent one included, and fills the screen outside the frame with the
 * transparent index (else index 0). stb leaves transparent pixels black and fills the
 * outside with the background index (black when it is 0). To get Pillow's pixels we
 * decode a copy in which the first frame's Graphic Control Extension has its
 * transparency flag cleared and the screen's background index is set to the
 * transparent index. (Remaining difference: outside a frame smaller than the screen
 * with fill index 0, stb gives black where Pillow gives palette entry 0.)
 * Returns a patched malloc'ed copy, or NULL when nothing needs patching or on any
 * parse problem (stb then reports the error).
 */
static uint8_t *gif_patch_transparency(const uint8_t *d, size_t n)
{
    if (n < 13)
        return NULL;
    size_t p = 13;
    if (d[10] & 0x80)
        p += (size_t)3 << ((d[10] & 7) + 1);
    while (p < n && d[p] == 0x21) { /* extensions before the first image descriptor */
        if (p + 1 >= n)
            return NULL;
        if (d[p + 1] == 0xF9 && p + 7 < n && d[p + 2] == 4 && (d[p + 3] & 1)) {
            uint8_t *copy = malloc(n);
            if (!copy)
                return NULL;
            memcpy(copy, d, n);
            copy[p + 3] &= (uint8_t)~1u; /* no transparency */
            copy[11] = d[p + 6];         /* fill = the transparent index */
            return copy;
        }
        p += 2;
        for (;;) { /* sub-blocks */
            if (p >= n)
                return NULL;
            size_t len = d[p];
            p += 1 + len;
            if (len == 0)
                break;
        }
    }
    return NULL;
}

int mo_io_decode_stb(const mo_io_src *src, mo_image *out)
{
    uint8_t *patched = NULL;
    if (src->size >= 6 && !memcmp(src->data, "GIF", 3))
        patched = gif_patch_transparency(src->data, src->size);
    int err;
    if (patched) {
        mo_io_src s2 = { patched, src->size, src->name };
        err = decode_stb(&s2, out);
        free(patched);
    } else {
        err = decode_stb(src, out);
    }
    return err;
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
}

/* Size from the fixed-position header fields, so that a huge image is refused as
 * MO_EUNSUPPORTED even where stb's own checks would fail first (it refuses PNGs over
 * 2^30 bytes and then reports only "unknown image type"). Returns 1 when found. */
static int peek_size(const uint8_t *d, size_t n, long long *w, long long *h)
{
    if (n >= 24 && d[0] == 0x89 && !memcmp(d + 12, "IHDR", 4)) {
        *w = be32(d + 16);
        *h = be32(d + 20);
        return 1;
    }
    if (n >= 10 && d[0] == 'G') {
        *w = d[6] | d[7] << 8;
        *h = d[8] | d[9] << 8;
        return 1;
    }
    if (n >= 26 && d[0] == 'B') {
        uint32_t hsz = le32(d + 14);
        if (hsz == 12) { /* OS/2 BITMAPCOREHEADER: 16-bit sizes */
            *w = d[18] | d[19] << 8;
            *h = d[20] | d[21] << 8;
        } else {
            *w = (int32_t)le32(d + 18);
            *h = llabs((long long)(int32_t)le32(d + 22));
        }
        return 1;
    }
    return 0;
}

static int decode_stb(const mo_io_src *src, mo_image *out)
{
    reader r = { src->data, src->size, 0, 0 };
    int w = 0, h = 0, comp = 0;
    long long pw, ph;

    if (peek_size(src->data, src->size, &pw, &ph) && pw > 0 && ph > 0) {
        int err = mo_io_check_size(src->name, pw, ph);
        if (err)
            return err;
    }

    /* Header first: check the size before anything is allocated. */
    if (!stbi_info_from_callbacks(&rd_callbacks, &r, &w, &h, &comp)) {
        const char *why = stbi_failure_reason();
        if (why && !strcmp(why, "too large"))
            return mo_fail(MO_EUNSUPPORTED, "%s: image dimensions too large", src->name);
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
