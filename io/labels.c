/* Label maps as PNG files, through libpng (indexed PNGs keep their raw indices, which a
 * generic RGB decoder would expand into colours). */
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mo_internal/errors.h"
#include "png_internal.h"
#include "mo/labels.h"

void mo_palette_voc(mo_palette *out)
{
    if (!out)
        return;
    /* Pascal VOC devkit rule: bits of the label spread over the colour bits, MSB first. */
    for (int i = 0; i < 256; i++) {
        int r = 0, g = 0, b = 0, c = i;
        for (int j = 0; j < 8; j++) {
            r |= (c & 1) << (7 - j);
            g |= ((c >> 1) & 1) << (7 - j);
            b |= ((c >> 2) & 1) << (7 - j);
            c >>= 3;
        }
        out->rgb[i][0] = (uint8_t)r;
        out->rgb[i][1] = (uint8_t)g;
        out->rgb[i][2] = (uint8_t)b;
    }
}

int mo_labelmap_alloc(mo_labelmap *out, int w, int h)
{
    validate_input_or_ret(out, MO_EINVAL);
    memset(out, 0, sizeof(*out));
    validate_input_or_ret(w >= 1 && h >= 1, MO_EINVAL);
    int err = mo_io_check_size("label map", w, h);
    if (err)
        return err;
    if (!(out->data = calloc((size_t)w * (size_t)h, 1)))
        return mo_fail(MO_ENOMEM, "out of memory for a %dx%d label map", w, h);
    out->w = w;
    out->h = h;
    return MO_OK;
}

void mo_labelmap_free(mo_labelmap *m)
{
    if (!m)
        return;
    free(m->data);
    memset(m, 0, sizeof(*m));
}

/* Map an RGB image back to labels through the palette (first matching entry wins). */
static int rgb_to_labels(const mo_io_src *src, uint8_t *rgb, int w, int h, int channels,
                         const mo_palette *pal, uint8_t *labels)
{
    /* 24-bit colour -> label lookup, built once per image with a tiny open hash. */
    enum { SLOTS = 1024 };
    uint32_t keys[SLOTS];
    int16_t vals[SLOTS];
    memset(vals, -1, sizeof(vals));
    for (int i = 255; i >= 0; i--) {
        uint32_t k = (uint32_t)pal->rgb[i][0] << 16 | (uint32_t)pal->rgb[i][1] << 8 | pal->rgb[i][2];
        uint32_t s = (k * 2654435761u) >> 22;
        while (vals[s] >= 0 && keys[s] != k)
            s = (s + 1) & (SLOTS - 1);
        keys[s] = k;
        vals[s] = (int16_t)i; /* lower labels overwrite: first matching entry wins */
    }
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            const uint8_t *p = rgb + ((size_t)y * (size_t)w + (size_t)x) * (size_t)channels;
            uint32_t k = (uint32_t)p[0] << 16 | (uint32_t)p[1] << 8 | p[2];
            uint32_t s = (k * 2654435761u) >> 22;
            while (vals[s] >= 0 && keys[s] != k)
                s = (s + 1) & (SLOTS - 1);
            if (vals[s] < 0)
                return mo_fail(MO_EFORMAT,
                               "%s: pixel (%d, %d) has colour (%d, %d, %d), which is not in the "
                               "label palette",
                               src->name, x, y, p[0], p[1], p[2]);
            labels[(size_t)y * (size_t)w + (size_t)x] = (uint8_t)vals[s];
        }
    return MO_OK;
}

static int decode_labels(const mo_io_src *src, mo_labelmap *out, const mo_palette *palette)
{
    if (src->size < 8 || png_sig_cmp(src->data, 0, 8))
        return mo_fail(MO_EFORMAT, "%s: not a PNG file", src->name);
    mo_png_io r = { .src = src };
    png_structp png = mo_png_create_reader(&r);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!info) {
        png_destroy_read_struct(&png, NULL, NULL);
        return mo_fail(MO_ENOMEM, "%s: out of memory", src->name);
    }
    /* volatile: modified between setjmp and a possible longjmp */
    uint8_t *volatile rgb = NULL;
    png_bytep *volatile rows = NULL;
    int err = MO_OK;
    if (setjmp(png_jmpbuf(png))) {
        err = mo_fail(MO_EFORMAT, "%s: corrupt PNG (%s)", src->name, r.msg);
        goto done;
    }
    png_read_info(png, info);
    png_uint_32 w = png_get_image_width(png, info), h = png_get_image_height(png, info);
    int type = png_get_color_type(png, info), depth = png_get_bit_depth(png, info);
    if ((err = mo_io_check_size(src->name, w, h)))
        goto done;
    if (type == PNG_COLOR_TYPE_GRAY && depth == 16) {
        err = mo_fail(MO_EFORMAT, "%s: 16-bit grayscale labels are not supported", src->name);
        goto done;
    }
    int as_rgb = !(type == PNG_COLOR_TYPE_PALETTE || type == PNG_COLOR_TYPE_GRAY);
    if (depth < 8)
        png_set_packing(png); /* 1/2/4-bit indices or greys -> one byte each, unscaled */
    if (as_rgb) {
        png_set_strip_16(png);
        png_set_gray_to_rgb(png);
        png_set_strip_alpha(png);
    }
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    size_t rowbytes = png_get_rowbytes(png, info);
    if (rowbytes != (size_t)w * (as_rgb ? 3 : 1)) {
        err = mo_fail(MO_EFORMAT, "%s: unexpected PNG layout", src->name);
        goto done;
    }
    if ((err = mo_labelmap_alloc(out, (int)w, (int)h)))
        goto done;
    uint8_t *pixels = out->data;
    if (as_rgb && !(pixels = rgb = malloc(rowbytes * h))) {
        err = mo_fail(MO_ENOMEM, "%s: out of memory", src->name);
        goto done;
    }
    if (!(rows = malloc(sizeof(png_bytep) * h))) {
        err = mo_fail(MO_ENOMEM, "%s: out of memory", src->name);
        goto done;
    }
    for (png_uint_32 y = 0; y < h; y++)
        rows[y] = pixels + rowbytes * y;
    png_read_image(png, rows);
    png_read_end(png, NULL); /* a file cut after its pixels is still refused */
    if (as_rgb) {
        mo_palette voc;
        if (!palette)
            mo_palette_voc(&voc);
        err = rgb_to_labels(src, rgb, (int)w, (int)h, 3, palette ? palette : &voc, out->data);
    }
done:
    png_destroy_read_struct(&png, &info, NULL);
    free(rows);
    free(rgb);
    if (err)
        mo_labelmap_free(out);
    return err;
}

int mo_labelmap_load_png_memory(mo_labelmap *out, const void *data, size_t size,
                                const mo_palette *palette)
{
    validate_input_or_ret(out, MO_EINVAL);
    memset(out, 0, sizeof(*out));
    validate_input_or_ret(data || !size, MO_EINVAL);
    mo_io_src src = { data, size, "<memory>" };
    return decode_labels(&src, out, palette);
}

int mo_labelmap_load_png(mo_labelmap *out, const char *path, const mo_palette *palette)
{
    validate_input_or_ret(out, MO_EINVAL);
    memset(out, 0, sizeof(*out));
    validate_input_or_ret(path, MO_EINVAL);
    uint8_t *data;
    size_t size;
    int err = mo_io_read_file(path, &data, &size);
    if (err)
        return err;
    mo_io_src src = { data, size, path };
    err = decode_labels(&src, out, palette);
    free(data);
    return err;
}

int mo_labelmap_save_png(const mo_labelmap *m, const char *path, const mo_palette *pal)
{
    validate_input_or_ret(m && m->data && m->w > 0 && m->h > 0 && path, MO_EINVAL);
    mo_palette voc;
    mo_palette_voc(&voc);
    const mo_palette *palette = pal ? pal : &voc;
    png_color colors[256]; /* filled before setjmp: nothing below changes it */
    for (int i = 0; i < 256; i++) {
        colors[i].red = palette->rgb[i][0];
        colors[i].green = palette->rgb[i][1];
        colors[i].blue = palette->rgb[i][2];
    }
    FILE *f = fopen(path, "wb");
    if (!f)
        return mo_fail(MO_EIO, "%s: cannot create", path);
    mo_png_io r = { 0 };
    png_structp png = mo_png_create_writer(&r);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    int err = MO_OK;
    if (!info) {
        err = mo_fail(MO_ENOMEM, "%s: out of memory", path);
        goto done;
    }
    if (setjmp(png_jmpbuf(png))) {
        err = mo_fail(MO_EIO, "%s: cannot write PNG (%s)", path, r.msg);
        goto done;
    }
    png_init_io(png, f);
    png_set_IHDR(png, info, (png_uint_32)m->w, (png_uint_32)m->h, 8, PNG_COLOR_TYPE_PALETTE,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_set_PLTE(png, info, colors, 256);
    png_write_info(png, info);
    for (int y = 0; y < m->h; y++)
        png_write_row(png, m->data + (size_t)y * (size_t)m->w);
    png_write_end(png, info);
done:
    png_destroy_write_struct(&png, &info);
    if (fclose(f) && !err)
        err = mo_fail(MO_EIO, "%s: write error", path);
    if (err)
        remove(path);
    return err;
}

int mo_labelmap_count(const mo_labelmap *m, mo_label_count out[256])
{
    validate_input_or_ret(m && out && (m->data || (size_t)m->w * (size_t)m->h == 0), MO_EINVAL);
    size_t count[256] = {0};
    const size_t n = (size_t)m->w * (size_t)m->h;
    for (size_t i = 0; i < n; i++)
        count[m->data[i]]++;
    int k = 0;
    for (int l = 0; l < 256; l++) /* in label order, then a stable sort by count */
        if (count[l]) {
            int at = k++;
            while (at > 0 && out[at - 1].pixels < count[l]) {
                out[at] = out[at - 1];
                at--;
            }
            out[at] = (mo_label_count){l, count[l]};
        }
    return k;
}
