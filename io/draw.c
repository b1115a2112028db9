/* Drawing primitives for the demo apps. Everything clips; nothing allocates. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "mo_internal/errors.h"
#include "mo/draw.h"

#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wsign-compare"
#endif
#include <stb_easy_font.h>
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

static int clampi(int v, int lo, int hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

void mo_draw_fill_rect(mo_image *img, int x0, int y0, int x1, int y1, mo_rgb c, float alpha)
{
    if (!img || !img->data)
        return;
    x0 = clampi(x0, 0, img->w);
    x1 = clampi(x1, 0, img->w);
    y0 = clampi(y0, 0, img->h);
    y1 = clampi(y1, 0, img->h);
    int a = (int)(clampi((int)(alpha * 256.0f + 0.5f), 0, 256));
    const int col[3] = { c.r, c.g, c.b };
    for (int y = y0; y < y1; y++) {
        uint8_t *p = img->data + ((size_t)y * (size_t)img->w + (size_t)x0) * 3;
        if (a == 256) {
            /* Opaque: the old pixels do not count, so they are not read (a canvas fresh from
             * mo_image_alloc() is uninitialised; blending it, even times 0, spread
             * undefined values through every later read: valgrind's 531k reports). */
            for (int x = x0; x < x1; x++, p += 3)
                p[0] = c.r, p[1] = c.g, p[2] = c.b;
            continue;
        }
        for (int x = x0; x < x1; x++, p += 3)
            for (int k = 0; k < 3; k++)
                p[k] = (uint8_t)((p[k] * (256 - a) + col[k] * a + 128) >> 8);
    }
}

void mo_draw_rect(mo_image *img, int x0, int y0, int x1, int y1, int t, mo_rgb c)
{
    if (t < 1)
        t = 1;
    mo_draw_fill_rect(img, x0, y0, x1, y0 + t, c, 1);
    mo_draw_fill_rect(img, x0, y1 - t, x1, y1, c, 1);
    mo_draw_fill_rect(img, x0, y0 + t, x0 + t, y1 - t, c, 1);
    mo_draw_fill_rect(img, x1 - t, y0 + t, x1, y1 - t, c, 1);
}

/* stb_easy_font lays glyphs out in a 10-pixel-high cell whose ink starts one row down. */
enum { GLYPH_H = 8, GLYPH_TOP = 1 };

void mo_draw_text_size(const char *text, int scale, int *w, int *h)
{
    if (scale < 1)
        scale = 1;
    int tw = text ? stb_easy_font_width((char *)text) : 0;
    if (w)
        *w = tw * scale;
    if (h)
        *h = GLYPH_H * scale;
}

void mo_draw_text(mo_image *img, int x, int y, const char *text, int scale, mo_rgb c)
{
    if (!img || !img->data || !text)
        return;
    if (scale < 1)
        scale = 1;
    /* Draw in chunks so the quad buffer stays small and on the stack. */
    char chunk[64];
    size_t len = strlen(text);
    int pen = x;
    for (size_t off = 0; off < len; off += sizeof(chunk) - 1) {
        size_t n = len - off < sizeof(chunk) - 1 ? len - off : sizeof(chunk) - 1;
        memcpy(chunk, text + off, n);
        chunk[n] = 0;
        static const unsigned char white[4] = { 255, 255, 255, 255 };
        float quads[64 * 40 * 4 * 4]; /* 4 vertices x (x, y, z, colour) per quad */
        int nq = stb_easy_font_print(0, 0, chunk, (unsigned char *)white, quads, sizeof(quads));
        for (int q = 0; q < nq; q++) {
            const float *v = quads + q * 16; /* vertices 0 and 2 are opposite corners */
            int qx0 = (int)v[0], qy0 = (int)v[1], qx1 = (int)v[8], qy1 = (int)v[9];
            mo_draw_fill_rect(img, pen + qx0 * scale, y + (qy0 - GLYPH_TOP) * scale,
                              pen + qx1 * scale, y + (qy1 - GLYPH_TOP) * scale, c, 1);
        }
        pen += stb_easy_font_width(chunk) * scale;
    }
}

int mo_draw_text_scale(const mo_image *img)
{
    if (!img)
        return 1;
    int side = img->w > img->h ? img->w : img->h;
    int s = side / 400 + 1; /* about 2% of the longer side per line of text */
    return s > 8 ? 8 : s;
}

void mo_draw_tag(mo_image *img, int x, int y, const char *text, int scale, mo_rgb bg)
{
    if (!img || !img->data || !text)
        return;
    int tw, th;
    mo_draw_text_size(text, scale, &tw, &th);
    int pad = 2 * scale, w = tw + 2 * pad, h = th + 2 * pad;
    int top = y - h >= 0 ? y - h : y; /* above the point, else below it */
    int left = x + w > img->w ? img->w - w : x;
    if (left < 0)
        left = 0;
    if (top + h > img->h)
        top = img->h - h > 0 ? img->h - h : 0;
    mo_draw_fill_rect(img, left, top, left + w, top + h, bg, 1);
    /* Rec. 601 luma decides black or white text. */
    int luma = (299 * bg.r + 587 * bg.g + 114 * bg.b) / 1000;
    mo_rgb fg = luma > 140 ? (mo_rgb){ 0, 0, 0 } : (mo_rgb){ 255, 255, 255 };
    mo_draw_text(img, left + pad, top + pad, text, scale, fg);
}

mo_rgb mo_draw_class_color(int index)
{
    static const mo_rgb pal[24] = {
        { 230, 25, 75 },   { 60, 180, 75 },   { 255, 200, 20 },  { 0, 130, 200 },
        { 245, 130, 48 },  { 145, 30, 180 },  { 70, 240, 240 },  { 240, 50, 230 },
        { 190, 235, 40 },  { 250, 160, 190 }, { 0, 128, 128 },   { 200, 150, 255 },
        { 170, 110, 40 },  { 255, 250, 160 }, { 128, 0, 0 },     { 120, 255, 180 },
        { 128, 128, 0 },   { 255, 215, 180 }, { 0, 0, 128 },     { 255, 99, 71 },
        { 30, 144, 255 },  { 154, 205, 50 },  { 218, 112, 214 }, { 255, 140, 0 },
    };
    return pal[(unsigned)index % 24u];
}

int mo_draw_box_thickness(const mo_image *img)
{
    if (!img)
        return 1;
    const int side = img->w < img->h ? img->w : img->h;
    return side < 125 ? 1 : (side + 125) / 250;
}

void mo_draw_box(mo_image *img, int x0, int y0, int x1, int y1, int thickness, mo_rgb c)
{
    mo_draw_rect(img, x0 - 1, y0 - 1, x1 + 1, y1 + 1, 1, (mo_rgb){ 20, 20, 20 });
    mo_draw_rect(img, x0, y0, x1, y1, thickness, c);
}

void mo_draw_tag_text(char *buf, size_t size, const char *name, float score, int scale,
                      int max_w)
{
    if (!buf || !size)
        return;
    char n[64];
    snprintf(n, sizeof(n), "%s", name ? name : "?");
    for (size_t len = strlen(n);; len--) {
        snprintf(buf, size, "%s %.2f", n, score);
        int w;
        mo_draw_text_size(buf, scale, &w, NULL);
        if (w + 4 * scale <= max_w || len <= 2)
            return;
        n[len - 2] = '.';
        n[len - 1] = 0;
    }
}

int mo_draw_label_edges(mo_image *img, const mo_labelmap *m, const mo_palette *p, int skip)
{
    validate_input_or_ret(img && img->data && m && m->data && p, MO_EINVAL);
    if (img->w != m->w || img->h != m->h)
        return mo_fail(MO_EINVAL, "label map %dx%d does not match the image %dx%d", m->w,
                       m->h, img->w, img->h);
    for (int y = 0; y < m->h; y++)
        for (int x = 0; x < m->w; x++) {
            const int l = m->data[(size_t)y * m->w + x];
            const int r = x + 1 < m->w ? m->data[(size_t)y * m->w + x + 1] : l;
            const int d = y + 1 < m->h ? m->data[(size_t)(y + 1) * m->w + x] : l;
            if (l == r && l == d)
                continue;
            const int c = l != skip ? l : r != skip ? r : d;
            uint8_t *px = img->data + ((size_t)y * img->w + x) * 3;
            for (int k = 0; k < 3; k++)
                px[k] = (uint8_t)((p->rgb[c][k] + 255 * 2) / 3);
        }
    return MO_OK;
}

/* The legend's metrics at a text scale. */
typedef struct legend_metrics {
    int th, pad, sw, gap, row_h;
} legend_metrics;

static legend_metrics legend_at(int scale)
{
    legend_metrics L;
    mo_draw_text_size("Ag", scale, NULL, &L.th);
    L.pad = 3 * scale;
    L.sw = L.th + 2 * scale;
    L.gap = 4 * scale;
    L.row_h = L.sw + 2 * L.pad;
    return L;
}

static int entry_width(const mo_legend_entry *e, const legend_metrics *L, int scale)
{
    int tw = 0;
    mo_draw_text_size(e->text ? e->text : "", scale, &tw, NULL);
    return L->sw + L->pad + tw;
}

/* Lay the entries out over width pixels, drawing them on img unless it is NULL.
 * Returns the number of rows. */
static int legend_flow(mo_image *img, int y0, const mo_legend_entry *e, int n, int scale,
                       int width)
{
    const legend_metrics L = legend_at(scale);
    const int avail = width - L.pad;
    const mo_rgb frame = { 200, 200, 200 }, white = { 255, 255, 255 };
    int rows = 1, x = L.pad;
    for (int i = 0; i < n; i++) {
        const int ew = entry_width(&e[i], &L, scale);
        if (x > L.pad && x + ew > avail) {
            rows++;
            x = L.pad;
        }
        if (img) {
            const int sy = y0 + L.pad + (rows - 1) * L.row_h + L.pad;
            if (e[i].outline) {
                mo_draw_rect(img, x, sy, x + L.sw, sy + L.sw, scale, frame);
            } else {
                mo_draw_fill_rect(img, x, sy, x + L.sw, sy + L.sw, e[i].color, 1.0f);
                mo_draw_rect(img, x, sy, x + L.sw, sy + L.sw, 1, frame);
            }
            mo_draw_text(img, x + L.sw + L.pad, sy + (L.sw - L.th) / 2, e[i].text ? e[i].text : "",
                         scale, white);
        }
        x += ew + L.gap;
    }
    return rows;
}

int mo_draw_legend_height(const mo_legend_entry *e, int n, int scale, int width, int *min_width)
{
    if (scale < 1)
        scale = 1;
    const legend_metrics L = legend_at(scale);
    int widest = 0;
    for (int i = 0; e && i < n; i++) {
        const int w = entry_width(&e[i], &L, scale) + 2 * L.pad;
        widest = w > widest ? w : widest;
    }
    if (min_width)
        *min_width = widest;
    if (!e || n <= 0)
        return 0;
    return legend_flow(NULL, 0, e, n, scale, width) * L.row_h + L.pad;
}

void mo_draw_legend(mo_image *img, int y0, const mo_legend_entry *e, int n, int scale)
{
    if (!img || !img->data || !e || n <= 0)
        return;
    legend_flow(img, y0, e, n, scale < 1 ? 1 : scale, img->w);
}

int mo_draw_labels(mo_image *img, const mo_labelmap *labels, const mo_palette *palette,
                   float alpha, int skip_label)
{
    validate_input_or_ret(img && img->data && labels && labels->data && palette, MO_EINVAL);
    if (img->w != labels->w || img->h != labels->h)
        return mo_fail(MO_EINVAL, "label map %dx%d does not match the image %dx%d", labels->w,
                       labels->h, img->w, img->h);
    int a = clampi((int)(alpha * 256.0f + 0.5f), 0, 256);
    size_t n = (size_t)img->w * (size_t)img->h;
    for (size_t i = 0; i < n; i++) {
        int l = labels->data[i];
        if (l == skip_label)
            continue;
        uint8_t *p = img->data + i * 3;
        for (int k = 0; k < 3; k++) /* opaque: not read, as in mo_draw_fill_rect() */
            p[k] = (uint8_t)(a == 256 ? palette->rgb[l][k]
                                      : (p[k] * (256 - a) + palette->rgb[l][k] * a + 128) >> 8);
    }
    return MO_OK;
}
