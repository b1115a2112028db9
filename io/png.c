/* PNG decoding to RGB8 through libpng, with Pillow's convert("RGB") semantics: palette
 * colours (transparency ignored), alpha dropped (not composited), grey replicated,
 * 1/2/4-bit greys scaled to 0..255, 16-bit samples keep their high byte. */
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mo_internal/errors.h"
#include "png_internal.h"

static void on_error(png_structp png, png_const_charp msg)
{
    mo_png_io *io = png_get_error_ptr(png);
    snprintf(io->msg, sizeof(io->msg), "%s", msg);
    png_longjmp(png, 1);
}

static void on_warning(png_structp png, png_const_charp msg)
{
    (void)png;
    (void)msg; /* benign: unknown or damaged ancillary chunks */
}

static void read_bytes(png_structp png, png_bytep dst, size_t n)
{
    mo_png_io *io = png_get_io_ptr(png);
    if (n > io->src->size - io->pos)
        png_error(png, "truncated file");
    memcpy(dst, io->src->data + io->pos, n);
    io->pos += n;
}

png_structp mo_png_create_reader(mo_png_io *io)
{
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, io, on_error, on_warning);
    if (png)
        png_set_read_fn(png, io, read_bytes);
    return png;
}

png_structp mo_png_create_writer(mo_png_io *io)
{
    return png_create_write_struct(PNG_LIBPNG_VER_STRING, io, on_error, on_warning);
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

int mo_io_decode_png(const mo_io_src *src, mo_image *out)
{
    /* IHDR is always the first chunk, at a fixed place: refuse absurd sizes before libpng
     * reads further (it would report a later damage instead of the size). */
    if (src->size >= 24 && !memcmp(src->data + 12, "IHDR", 4)) {
        int err = mo_io_check_size(src->name, be32(src->data + 16), be32(src->data + 20));
        if (err)
            return err;
    }
    mo_png_io r = { .src = src };
    png_structp png = mo_png_create_reader(&r);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!info) {
        png_destroy_read_struct(&png, NULL, NULL);
        return mo_fail(MO_ENOMEM, "%s: out of memory", src->name);
    }
    png_bytep *volatile rows = NULL; /* volatile: set between setjmp and a longjmp */
    int err = MO_OK;
    if (setjmp(png_jmpbuf(png))) {
        err = mo_fail(MO_EFORMAT, "%s: corrupt PNG (%s)", src->name, r.msg);
        goto done;
    }
    /* Sizes are checked against the SDK's limits below, before any pixel is allocated. */
    png_set_user_limits(png, 0x7fffffff, 0x7fffffff);
    png_read_info(png, info);
    png_uint_32 w = png_get_image_width(png, info), h = png_get_image_height(png, info);
    if ((err = mo_io_check_size(src->name, w, h)))
        goto done;
    int type = png_get_color_type(png, info);
    if (type == PNG_COLOR_TYPE_PALETTE)
        png_set_palette_to_rgb(png);
    if (type == PNG_COLOR_TYPE_GRAY && png_get_bit_depth(png, info) < 8)
        png_set_expand_gray_1_2_4_to_8(png);
    png_set_strip_16(png);
    png_set_strip_alpha(png);
    if (png_get_valid(png, info, PNG_INFO_tRNS))
        png_set_tRNS(png, info, NULL, 0, NULL); /* colour-key transparency: keep colours */
    if (type == PNG_COLOR_TYPE_GRAY || type == PNG_COLOR_TYPE_GRAY_ALPHA)
        png_set_gray_to_rgb(png);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    if (png_get_rowbytes(png, info) != (size_t)w * 3) {
        err = mo_fail(MO_EFORMAT, "%s: unexpected PNG layout", src->name);
        goto done;
    }
    if ((err = mo_image_alloc(out, (int)w, (int)h)))
        goto done;
    if (!(rows = malloc(sizeof(png_bytep) * h))) {
        err = mo_fail(MO_ENOMEM, "%s: out of memory", src->name);
        goto done;
    }
    for (png_uint_32 y = 0; y < h; y++)
        rows[y] = out->data + (size_t)y * w * 3;
    png_read_image(png, rows);
    png_read_end(png, NULL); /* a file cut after its pixels is refused too */
done:
    png_destroy_read_struct(&png, &info, NULL);
    free(rows);
    return err;
}
