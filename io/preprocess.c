/*
 * torchvision-compatible preprocessing: Resize(short) + CenterCrop + ToTensor +
 * Normalize, bit-exact with torchvision 0.14 on a Pillow image.
 *
 * ToTensor divides the uint8 value by 255 in float32, Normalize then subtracts the
 * float32 mean and divides by the float32 std, one rounding each. A table of the 256
 * possible results per channel, computed with the same float operations, is therefore
 * exact (do not replace the divisions by reciprocal multiplications).
 */
#include <stdlib.h>
#include <string.h>

#include "mo_internal/errors.h"
#include "io_internal.h"

MO_API int mo_resize_short_size(int w, int h, int short_side, int *out_w, int *out_h)
{
    validate_input_or_ret(out_w != NULL && out_h != NULL, MO_EINVAL);
    if (w < 1 || h < 1 || short_side < 1)
        return mo_fail(MO_EINVAL, "mo_resize_short_size: invalid sizes %dx%d -> %d", w, h,
                       short_side);
    /* torchvision: short, long = (w, h) if w <= h else (h, w);
     * new_long = int(size * long / short)  (Python float division, truncated) */
    const int sh = w <= h ? w : h, lo = w <= h ? h : w;
    const double nl = (double)short_side * (double)lo / (double)sh;
    if (nl >= 2147483647.0)
        return mo_fail(MO_EINVAL, "mo_resize_short_size: result too large");
    const int new_long = (int)nl;
    if (w <= h) {
        *out_w = short_side;
        *out_h = new_long;
    } else {
        *out_w = new_long;
        *out_h = short_side;
    }
    return MO_OK;
}

MO_API int mo_center_crop_offset(int size, int crop)
{
    if (crop > size) /* torchvision pads (crop - size) // 2 on the left/top first */
        return -((crop - size) / 2);
    /* int(round((size - crop) / 2.0)): round half to even */
    const int d = size - crop;
    int q = d / 2;
    if ((d & 1) && (q & 1))
        q++;
    return q;
}

int mo_io_norm_lut(float lut[3][256], const float mean[3], const float std[3])
{
    for (int c = 0; c < 3; c++) {
        const float m = mean ? mean[c] : 0.0f;
        const float s = std ? std[c] : 1.0f;
        if (s == 0.0f)
            return mo_fail(MO_EINVAL, "normalization: std[%d] is zero", c);
        for (int v = 0; v < 256; v++) {
            volatile float t = (float)v / 255.0f; /* force float rounding of each step */
            volatile float u = t - m;
            lut[c][v] = u / s;
        }
    }
    return MO_OK;
}

MO_API int mo_image_to_tensor(const mo_image *img, int left, int top, int w, int h,
                              const float mean[3], const float std[3], mo_tensor *out)
{
    validate_input_or_ret(out != NULL && out->data != NULL, MO_EINVAL);
    if (!img || !img->data || img->w < 1 || img->h < 1)
        return mo_fail(MO_EINVAL, "mo_image_to_tensor: empty or NULL image");
    if (w < 1 || h < 1)
        return mo_fail(MO_EINVAL, "mo_image_to_tensor: invalid size %dx%d", w, h);
    ptrdiff_t stride = out->row_stride ? out->row_stride : (ptrdiff_t)w * 3;
    if (stride < (ptrdiff_t)w * 3)
        return mo_fail(MO_EINVAL, "mo_image_to_tensor: row_stride %td < %d", stride, w * 3);

    float lut[3][256];
    int err = mo_io_norm_lut(lut, mean, std);
    if (err)
        return err;

    out->h = h;
    out->w = w;
    out->c = 3;
    out->row_stride = stride;
    for (int y = 0; y < h; y++) {
        float *o = out->data + (ptrdiff_t)y * stride;
        const long long sy = (long long)top + y;
        if (sy < 0 || sy >= img->h) {
            for (int x = 0; x < w; x++)
                for (int c = 0; c < 3; c++)
                    o[3 * x + c] = lut[c][0];
            continue;
        }
        const uint8_t *row = img->data + (size_t)sy * img->w * 3;
        for (int x = 0; x < w; x++) {
            const long long sx = (long long)left + x;
            if (sx < 0 || sx >= img->w) {
                for (int c = 0; c < 3; c++)
                    o[3 * x + c] = lut[c][0];
            } else {
                const uint8_t *p = row + sx * 3;
                o[3 * x] = lut[0][p[0]];
                o[3 * x + 1] = lut[1][p[1]];
                o[3 * x + 2] = lut[2][p[2]];
            }
        }
    }
    return MO_OK;
}

MO_API int mo_preprocess_classify(const mo_image *img, int resize_short, int crop,
                                  const float mean[3], const float std[3], mo_tensor *out)
{
    validate_input_or_ret(out != NULL && out->data != NULL, MO_EINVAL);
    if (!img || !img->data || img->w < 1 || img->h < 1)
        return mo_fail(MO_EINVAL, "mo_preprocess_classify: empty or NULL image");
    if (resize_short < 1 || crop < 1)
        return mo_fail(MO_EINVAL, "mo_preprocess_classify: invalid resize %d / crop %d",
                       resize_short, crop);
    int rw, rh;
    int err = mo_resize_short_size(img->w, img->h, resize_short, &rw, &rh);
    if (err)
        return err;
    mo_image resized;
    err = mo_image_resize_pil(img, rw, rh, &resized);
    if (err)
        return err;
    err = mo_image_to_tensor(&resized, mo_center_crop_offset(rw, crop),
                             mo_center_crop_offset(rh, crop), crop, crop, mean, std, out);
    mo_image_free(&resized);
    return err;
}
