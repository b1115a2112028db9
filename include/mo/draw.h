/**
 * @file draw.h
 * @brief Drawing on RGB8 images for the demos: rectangles, text, label tags, mask overlays.
 *
 * Every primitive clips to the image, so any coordinates are safe. Text uses
 * stb_easy_font's built-in ASCII glyphs (printable characters 32..126), scaled by an
 * integer factor; mo_draw_text_scale() picks one readable at the image's size.
 */
#ifndef MO_DRAW_H
#define MO_DRAW_H

#include "mo/common.h"
#include "mo/image.h"
#include "mo/labels.h"

#ifdef __cplusplus
extern "C" {
#endif

/** An 8-bit RGB colour. */
typedef struct mo_rgb {
    uint8_t r; /**< red */
    uint8_t g; /**< green */
    uint8_t b; /**< blue */
} mo_rgb;

/**
 * @brief Blend a filled rectangle [x0, x1) x [y0, y1) over the image (clipped to it).
 * @param img the image
 * @param x0,y0 first corner (inclusive)
 * @param x1,y1 second corner (exclusive)
 * @param c colour
 * @param alpha opacity in 0..1 (1 paints over)
 */
MO_API void mo_draw_fill_rect(mo_image *img, int x0, int y0, int x1, int y1, mo_rgb c,
                              float alpha);

/**
 * @brief Outline of the rectangle [x0, x1) x [y0, y1), @p thickness pixels inwards.
 * @param img the image
 * @param x0,y0 first corner
 * @param x1,y1 second corner
 * @param thickness line width in pixels
 * @param c colour
 */
MO_API void mo_draw_rect(mo_image *img, int x0, int y0, int x1, int y1, int thickness,
                         mo_rgb c);

/**
 * @brief Size in pixels of @p text drawn at integer @p scale (>= 1).
 * @param text the text
 * @param scale pixel size of the font
 * @param[out] w receives the width (may be NULL)
 * @param[out] h receives the height (may be NULL)
 */
MO_API void mo_draw_text_size(const char *text, int scale, int *w, int *h);

/**
 * @brief Draw @p text with its top-left corner at (x, y).
 * @param img the image
 * @param x,y top-left corner
 * @param text the text
 * @param scale pixel size of the font
 * @param c colour
 */
MO_API void mo_draw_text(mo_image *img, int x, int y, const char *text, int scale, mo_rgb c);

/** @brief A text scale that reads well on an image of this size.
 *  @param img the image @return the scale (>= 1) */
MO_API int mo_draw_text_scale(const mo_image *img);

/**
 * @brief A filled tag holding @p text, drawn just above the point (x, y) (or below it
 *        when there is no room above), shifted to stay inside the image. Text is black
 *        or white, whichever contrasts with @p bg.
 * @param img the image
 * @param x,y the point the tag is attached to
 * @param text the text
 * @param scale pixel size of the font
 * @param bg tag colour
 */
MO_API void mo_draw_tag(mo_image *img, int x, int y, const char *text, int scale, mo_rgb bg);

/**
 * @brief The SDK's one class palette for boxes and tags: 24 well separated, saturated
 *        colours, by index modulo 24 (consecutive indices always differ; COCO's frequent
 *        classes person, car, chair, cup, bottle and dining table all get different ones).
 *        Label maps use ::mo_palette (mo_palette_voc()), the colours of their PNG files.
 * @param index class index (any int)
 * @return the colour (stable across runs and versions)
 */
MO_API mo_rgb mo_draw_class_color(int index);

/** @brief A line thickness for boxes that reads well on an image of this size:
 *         1 below 125 pixels on the shorter side, 2 at 480, 12 at 3000.
 *  @param img the image @return the thickness (>= 1) */
MO_API int mo_draw_box_thickness(const mo_image *img);

/**
 * @brief A detection box: the outline of [x0, x1) x [y0, y1) in @p c, @p thickness pixels
 *        inwards, with a dark one-pixel line just outside so it stays visible on bright
 *        backgrounds.
 * @param img the image
 * @param x0,y0 first corner
 * @param x1,y1 second corner
 * @param thickness line width (mo_draw_box_thickness())
 * @param c colour (mo_draw_class_color())
 */
MO_API void mo_draw_box(mo_image *img, int x0, int y0, int x1, int y1, int thickness,
                        mo_rgb c);

/**
 * @brief The text of a box tag, "name 0.87", the name shortened (ending in '.') until the
 *        tag (mo_draw_tag()) fits in @p max_w pixels or the name has 2 characters left.
 * @param[out] buf receives the text
 * @param size bytes of @p buf
 * @param name class name (NULL: "?")
 * @param score the score, printed with 2 decimals
 * @param scale text scale of the tag
 * @param max_w widest tag wanted, in pixels
 */
MO_API void mo_draw_tag_text(char *buf, size_t size, const char *name, float score, int scale,
                             int max_w);

/**
 * @brief Outline the boundaries of a label map: pixels whose label differs from the right
 *        or lower neighbour get their class colour, lightened (one third colour, two thirds
 *        white). Where the pixel's label is @p skip_label the neighbour's colour is used.
 * @param img the image, of the label map's size
 * @param labels the label map
 * @param palette colour per label
 * @param skip_label label without a colour of its own (-1: none)
 * @return MO_OK, or MO_EINVAL when sizes differ or an argument is NULL
 */
MO_API int mo_draw_label_edges(mo_image *img, const mo_labelmap *labels,
                               const mo_palette *palette, int skip_label);

/** One entry of a legend: a swatch and its text. */
typedef struct mo_legend_entry {
    const char *text; /**< e.g. "person 12%" */
    mo_rgb color;     /**< the swatch colour */
    int outline;      /**< 1: an empty frame instead of a filled swatch (an untinted class) */
} mo_legend_entry;

/**
 * @brief Lay out a legend: entries "[swatch] text" flowing left to right over @p width
 *        pixels, as many rows as needed (an entry wider than the strip gets a row of its own).
 * @param e the entries
 * @param n how many
 * @param scale text scale
 * @param width width of the strip in pixels
 * @param[out] min_width receives the narrowest strip that fits the widest entry (may be NULL)
 * @return the strip's height in pixels (0 when @p n is 0)
 */
MO_API int mo_draw_legend_height(const mo_legend_entry *e, int n, int scale, int width,
                                 int *min_width);

/**
 * @brief Draw a legend (laid out as mo_draw_legend_height() over the image's width) with
 *        its top at row @p y0, over whatever is there (fill the strip first for a panel).
 *        Text is light: draw it on a dark strip.
 * @param img the image
 * @param y0 top row of the strip
 * @param e the entries
 * @param n how many
 * @param scale text scale
 */
MO_API void mo_draw_legend(mo_image *img, int y0, const mo_legend_entry *e, int n, int scale);

/**
 * @brief Blend label colours over the image: pixel = (1 - alpha) * pixel + alpha * colour,
 *        except where the label equals @p skip_label (e.g. 0 = background; -1 skips none).
 * @param img the image
 * @param labels a label map of the image's size
 * @param palette colour per label
 * @param alpha opacity, 0..1
 * @param skip_label label left untinted
 * @return MO_OK, or MO_EINVAL when sizes differ or an argument is NULL
 */
MO_API int mo_draw_labels(mo_image *img, const mo_labelmap *labels, const mo_palette *palette,
                          float alpha, int skip_label);

#ifdef __cplusplus
}
#endif
#endif
