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

/** @brief A distinct, saturated colour for a class. @param index class index
 *  @return the colour (stable across runs) */
MO_API mo_rgb mo_draw_class_color(int index);

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
