/**
 * @file image.h
 * @brief Images: decode (JPEG, PNG, BMP, GIF), encode (PNG, JPEG), resize, and
 *        preprocessing into normalized float tensors.
 *
 * Decoding gives what Pillow's `Image.open(path).convert("RGB")` gives, since that
 * is what torchvision pipelines feed their models:
 * - JPEG is decoded by libjpeg-turbo with the settings Pillow uses (islow IDCT,
 *   fancy upsampling), so the pixels are bit-identical to Pillow's. Grayscale is
 *   replicated to RGB; CMYK/YCCK (Adobe, inverted) is converted with Pillow's formula.
 *   EXIF orientation is not applied (Pillow does not apply it either).
 * - PNG (1/2/4/8/16-bit, grayscale, palette, alpha) is decoded by libpng, BMP and GIF
 *   (first frame only) by stb_image. Alpha is dropped, not composited (as convert("RGB") does).
 *   16-bit samples keep their high byte. Known differences from Pillow, all on rare
 *   inputs: 16-bit *grayscale* PNG (Pillow saturates values > 255 to white, we take the
 *   high byte, as Pillow does for 16-bit RGB); a GIF whose first frame is smaller than
 *   its screen and has no transparent colour (outside the frame Pillow gives palette
 *   entry 0, we give the background colour, or black for index 0); 16-bit 5:5:5/5:6:5
 *   BMP (rounding of the 5/6-bit scaling, <= 1 level). GIF transparent pixels get their
 *   palette colour, as in Pillow.
 * The format is recognised from the first bytes, not from the file name.
 *
 * Size limit: an image with a side over ::MO_IMAGE_MAX_SIDE or more than
 * ::MO_IMAGE_MAX_PIXELS pixels is refused with ::MO_EUNSUPPORTED after reading its
 * header and before its pixels are allocated.
 *
 * Preprocessing reproduces torchvision 0.14 on a Pillow image bit for bit:
 * `Resize(256)` (Pillow's antialiased bilinear resample), `CenterCrop(224)`,
 * `ToTensor()`, `Normalize(mean, std)`, into an NHWC ::mo_tensor.
 *
 * Failing calls record a message naming the file or argument, read with mo_last_error().
 * All functions are thread-safe (no shared state).
 */
#ifndef MO_IMAGE_H
#define MO_IMAGE_H

#include "mo/common.h"
#include "mo/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Largest width or height accepted by the decoders and by mo_image_alloc(). */
#define MO_IMAGE_MAX_SIDE 32768
/** Largest number of pixels (w * h) accepted: 2^26 (192 MiB of RGB8). */
#define MO_IMAGE_MAX_PIXELS (1 << 26)

/**
 * @brief An 8-bit RGB image, interleaved (R, G, B per pixel), rows packed.
 *
 * Pixel (x, y) channel c is `data[(y * w + x) * 3 + c]`. The image owns `data`
 * (allocated by this library); release it with mo_image_free(). A zeroed struct is an
 * empty image that mo_image_free() accepts.
 */
typedef struct mo_image {
    uint8_t *data; /**< w * h * 3 bytes, owned */
    int w;         /**< width in pixels */
    int h;         /**< height in pixels */
} mo_image;

/**
 * @brief Allocate an image of @p w x @p h pixels (contents uninitialised).
 * @param[out] out receives the image; free it with mo_image_free()
 * @param w width in pixels
 * @param h height in pixels
 * @return MO_OK, MO_EINVAL (NULL, w or h < 1), MO_EUNSUPPORTED (over the size limit),
 *         MO_ENOMEM. On failure `*out` is zeroed.
 */
MO_API int mo_image_alloc(mo_image *out, int w, int h);

/** @brief Free the pixels of @p img and zero it. Accepts NULL and an empty image.
 *  @param img the image */
MO_API void mo_image_free(mo_image *img);

/**
 * @brief Decode an image file to RGB8 (see the file comment for formats and semantics).
 * @param[out] out receives the image; the caller frees it with mo_image_free().
 *             Zeroed on failure.
 * @param path file name
 * @return MO_OK;
 *         MO_EINVAL (NULL argument);
 *         MO_EIO (the file cannot be opened or read);
 *         MO_EFORMAT (empty, truncated, corrupt, or not JPEG/PNG/BMP/GIF);
 *         MO_EUNSUPPORTED (over ::MO_IMAGE_MAX_SIDE / ::MO_IMAGE_MAX_PIXELS);
 *         MO_ENOMEM.
 *         mo_last_error() names the file and the reason.
 */
MO_API int mo_image_load(mo_image *out, const char *path);

/**
 * @brief As mo_image_load(), from @p size bytes in memory (the caller keeps @p data).
 * @param[out] out receives the image; free it with mo_image_free()
 * @param data encoded image bytes
 * @param size their number
 * @return as mo_image_load() (MO_EFORMAT for size 0); messages say "<memory>"
 */
MO_API int mo_image_load_memory(mo_image *out, const void *data, size_t size);

/**
 * @brief Write @p img as an 8-bit RGB PNG.
 * @param img the image
 * @param path file to write (replaced)
 * @return MO_OK, MO_EINVAL (NULL or empty image), MO_EIO (cannot write @p path),
 *         MO_ENOMEM
 */
MO_API int mo_image_save_png(const mo_image *img, const char *path);

/**
 * @brief Write @p img as a baseline JPEG (libjpeg-turbo: 4:2:0 chroma subsampling,
 *        optimized Huffman tables).
 * @param img the image
 * @param path file to write (replaced)
 * @param quality 1..100
 * @return MO_OK, MO_EINVAL (NULL, empty image, quality out of range), MO_EIO, MO_ENOMEM
 */
MO_API int mo_image_save_jpeg(const mo_image *img, const char *path, int quality);

/**
 * @brief Resize with Pillow's `Image.resize((w, h), Image.BILINEAR)` semantics, bit-exact.
 *
 * Pillow 9.4's separable resample: a triangle filter whose support grows with the
 * downscale factor (antialiasing), 22-bit fixed-point weights, horizontal pass then
 * vertical pass with rounding and clamping to uint8 in between. A pass whose size does
 * not change is skipped.
 * @param src image to resize (not modified)
 * @param w new width (>= 1)
 * @param h new height (>= 1)
 * @param[out] dst receives a new image (free with mo_image_free()); must not be @p src
 * @return MO_OK, MO_EINVAL, MO_EUNSUPPORTED (over the size limit), MO_ENOMEM
 */
MO_API int mo_image_resize_pil(const mo_image *src, int w, int h, mo_image *dst);

/**
 * @brief Output size of torchvision `Resize(short_side)` for a @p w x @p h image:
 *        the shorter side becomes @p short_side, the longer
 *        `int(short_side * long / short)` (truncated).
 * @param w image width
 * @param h image height
 * @param short_side target length of the shorter side
 * @param[out] out_w receives the new width
 * @param[out] out_h receives the new height
 * @return MO_OK or MO_EINVAL
 */
MO_API int mo_resize_short_size(int w, int h, int short_side, int *out_w, int *out_h);

/**
 * @brief Offset of torchvision `CenterCrop`: `int(round((size - crop) / 2.0))` with
 *        Python's round-half-to-even; when @p crop > @p size, minus the left/top padding
 *        torchvision adds, `-((crop - size) // 2)`.
 * @param size image side
 * @param crop crop side
 * @return the offset of the crop's first pixel (negative when padding)
 */
MO_API int mo_center_crop_offset(int size, int crop);

/**
 * @brief Crop, convert to float and normalize: torchvision `ToTensor()` then
 *        `Normalize(mean, std)`, written NHWC.
 *
 * out(y, x, c) = (img(left + x, top + y, c) / 255.0f - mean[c]) / std[c], computed in
 * float exactly as torch does. Pixels outside the image count as 0 (as torchvision
 * pads before cropping).
 * @param img source image
 * @param left column of the first output column (may be negative)
 * @param top row of the first output row (may be negative)
 * @param w output width (>= 1)
 * @param h output height (>= 1)
 * @param mean per-channel mean, or NULL for 0
 * @param std per-channel standard deviation (non-zero), or NULL for 1
 * @param[in,out] out the caller sets `data` (room for h rows of `row_stride` floats)
 *        and `row_stride` (0 means packed, w * 3); the call sets h, w, c = 3 and
 *        row_stride.
 * @return MO_OK, MO_EINVAL (NULL, empty image, w or h < 1, row_stride < w * 3,
 *         a zero std)
 */
MO_API int mo_image_to_tensor(const mo_image *img, int left, int top, int w, int h,
                              const float mean[3], const float std[3], mo_tensor *out);

/**
 * @brief Classification preprocessing, bit-exact with torchvision 0.14 on a Pillow image:
 *        `Resize(resize_short)` (bilinear, antialiased), `CenterCrop(crop)`,
 *        `ToTensor()`, `Normalize(mean, std)`.
 *
 * For ImageNet models: resize_short 256, crop 224, mean (0.485, 0.456, 0.406),
 * std (0.229, 0.224, 0.225). Allocates a temporary resized image.
 * @param img decoded image
 * @param resize_short target length of the shorter side (>= 1)
 * @param crop side of the square centre crop (>= 1)
 * @param mean per-channel mean, or NULL for 0
 * @param std per-channel standard deviation, or NULL for 1
 * @param[in,out] out as for mo_image_to_tensor(): the caller provides `data` with room
 *        for crop rows of `row_stride` floats (crop * crop * 3 floats when packed)
 * @return MO_OK, MO_EINVAL, MO_EUNSUPPORTED (resized image over the size limit),
 *         MO_ENOMEM
 */
MO_API int mo_preprocess_classify(const mo_image *img, int resize_short, int crop,
                                  const float mean[3], const float std[3], mo_tensor *out);

/**
 * @brief Bilinear resize of a float tensor as `torch.nn.functional.interpolate(x,
 *        size=(dst->h, dst->w), mode="bilinear", align_corners=False)` (no antialias).
 *
 * Source coordinate of output index i: `max(0, (i + 0.5) * in / out - 0.5)`, neighbours
 * clamped at the border. Matches torch to float rounding (a few ulp).
 * @param src source tensor (any c >= 1)
 * @param[in,out] dst the caller sets `data`, `h`, `w`, `c` (must equal src->c) and
 *        `row_stride` (0 means packed, w * c); must not overlap @p src
 * @return MO_OK, MO_EINVAL (NULL, sizes < 1, channel mismatch, stride too small)
 */
MO_API int mo_tensor_resize_bilinear(const mo_tensor *src, mo_tensor *dst);

/**
 * @brief Detection preprocessing, as torchvision 0.14's GeneralizedRCNNTransform with a
 *        fixed size (SSD, SSDLite): `ToTensor()`, `Normalize(mean, std)`, then
 *        `interpolate(size=(out->h, out->w), mode="bilinear", align_corners=False)`,
 *        without keeping the aspect ratio.
 *
 * Same source pixels and weights as mo_image_to_tensor() on the whole image followed by
 * mo_tensor_resize_bilinear(), without the full-size float image in between; allocates
 * nothing. Bit-identical with torch 1.13 on CPUs where torch runs its AVX2 kernels (which
 * contract the interpolation into FMAs, as this function does); within 1 ulp otherwise.
 * @param img decoded image (any size)
 * @param mean per-channel mean, or NULL for 0
 * @param std per-channel standard deviation (non-zero), or NULL for 1
 * @param[in,out] out the caller sets `data`, `h`, `w` (e.g. 320 x 320) and `row_stride`
 *        (0 means packed, w * 3); the call sets c = 3 and row_stride
 * @return MO_OK, MO_EINVAL (NULL, empty image, sizes < 1, stride too small, zero std)
 */
MO_API int mo_preprocess_resize(const mo_image *img, const float mean[3], const float std[3],
                                mo_tensor *out);

/**
 * @brief mo_preprocess_resize() for output rows @p y0 .. @p y1 - 1 only, so that bands of
 *        one tensor can be computed on several threads; each row gets exactly the values
 *        of the whole-tensor call.
 * @param img decoded image (any size)
 * @param mean per-channel mean, or NULL for 0
 * @param std per-channel standard deviation (non-zero), or NULL for 1
 * @param[in,out] out as for mo_preprocess_resize(); only rows y0 .. y1 - 1 are written
 * @param y0 first output row, 0 .. out->h
 * @param y1 one past the last output row, y0 .. out->h
 * @return MO_OK, MO_EINVAL (as mo_preprocess_resize(), or rows outside 0 .. out->h)
 */
MO_API int mo_preprocess_resize_rows(const mo_image *img, const float mean[3],
                                     const float std[3], mo_tensor *out, int y0, int y1);

#ifdef __cplusplus
}
#endif
#endif
