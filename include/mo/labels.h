/**
 * @file labels.h
 * @brief Label maps (one class index per pixel) and their PNG files.
 *
 * Segmentation results and ground truth are label maps. On disk they are PNGs:
 * - an indexed (palette) PNG, as Pascal VOC ships `SegmentationClass/`: the pixel values
 *   are the labels, the palette only colours them;
 * - an 8-bit grayscale PNG: the grey values are the labels;
 * - an RGB(A) PNG coloured with a palette: each colour is mapped back to its index
 *   (a colour the palette does not have is an error that names the pixel).
 * Written label maps are indexed PNGs with the palette given (the VOC one by default),
 * so viewers show colours and evaluation tools read labels. Decoding uses libpng.
 */
#ifndef MO_LABELS_H
#define MO_LABELS_H

#include "mo/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Label used for "ignore" in Pascal VOC ground truth (object boundaries). */
#define MO_LABEL_IGNORE 255

/**
 * @brief A label map: `data[y * w + x]` is the label of pixel (x, y). Owns `data`;
 *        release with mo_labelmap_free(). A zeroed struct is empty.
 */
typedef struct mo_labelmap {
    uint8_t *data; /**< w * h labels, owned */
    int w;         /**< width */
    int h;         /**< height */
} mo_labelmap;

/** A palette: colour of label i is rgb[i][0..2]. */
typedef struct mo_palette {
    uint8_t rgb[256][3]; /**< R, G, B of each label */
} mo_palette;

/**
 * @brief The Pascal VOC palette (label 0 black, 1 dark red (128, 0, 0), ..., 255 = ignore
 *        colour (224, 224, 192)), built by the devkit's bit-interleaving rule.
 * @param[out] out receives the 256 colours
 */
MO_API void mo_palette_voc(mo_palette *out);

/**
 * @brief Allocate a w x h label map filled with 0.
 * @param[out] out receives the map; free it with mo_labelmap_free()
 * @param w width
 * @param h height
 * @return MO_OK, MO_EINVAL (NULL, w or h < 1), MO_EUNSUPPORTED (over the image size
 *         limits of image.h), MO_ENOMEM. On failure `*out` is zeroed.
 */
MO_API int mo_labelmap_alloc(mo_labelmap *out, int w, int h);

/** @brief Free the labels and zero the struct. Accepts NULL and an empty map.
 *  @param m the map */
MO_API void mo_labelmap_free(mo_labelmap *m);

/** Pixels of one label in a label map (mo_labelmap_count()). */
typedef struct mo_label_count {
    int label;     /**< the label, 0..255 */
    size_t pixels; /**< how many pixels carry it */
} mo_label_count;

/**
 * @brief The labels present in a label map with their pixel counts, most pixels first
 *        (ties: lower label first), e.g. for a legend of the classes in a mask.
 * @param m the label map
 * @param[out] out room for 256 entries
 * @return the number of labels present (0..256), or MO_EINVAL (NULL)
 */
MO_API int mo_labelmap_count(const mo_labelmap *m, mo_label_count out[256]);

/**
 * @brief Read a label PNG (indexed, 8-bit grayscale, or RGB(A) coloured with @p palette).
 * @param path PNG file
 * @param palette colours of RGB label images; NULL means the VOC palette
 * @param[out] out receives the labels; free with mo_labelmap_free(). Zeroed on failure.
 * @return MO_OK, MO_EINVAL, MO_EIO (cannot open/read), MO_EFORMAT (not a PNG, corrupt,
 *         16-bit grayscale, or a colour outside the palette: the message gives x, y),
 *         MO_EUNSUPPORTED (over the size limits), MO_ENOMEM
 */
MO_API int mo_labelmap_load_png(mo_labelmap *out, const char *path, const mo_palette *palette);

/**
 * @brief As mo_labelmap_load_png(), from memory.
 * @param[out] out receives the labels; free with mo_labelmap_free()
 * @param data PNG bytes
 * @param size their number
 * @param palette colours of RGB label images; NULL means the VOC palette
 * @return as mo_labelmap_load_png() (no MO_EIO)
 */
MO_API int mo_labelmap_load_png_memory(mo_labelmap *out, const void *data, size_t size,
                                       const mo_palette *palette);

/**
 * @brief Write @p m as an 8-bit indexed PNG whose palette is @p palette (NULL: VOC).
 * @param m the map
 * @param path file to write
 * @param palette the colours, or NULL
 * @return MO_OK, MO_EINVAL (NULL or empty map), MO_EIO, MO_ENOMEM
 */
MO_API int mo_labelmap_save_png(const mo_labelmap *m, const char *path,
                                const mo_palette *palette);

#ifdef __cplusplus
}
#endif
#endif
