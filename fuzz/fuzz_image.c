/* Fuzz target: any bytes as an image file (and as a label PNG); a decoded image is also
 * preprocessed. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "mo/image.h"
#include "mo/labels.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mo_labelmap labels;
    if (!mo_labelmap_load_png_memory(&labels, data, size, NULL))
        mo_labelmap_free(&labels);
    mo_image img = { 0 };
    if (mo_image_load_memory(&img, data, size))
        return 0;
    if ((size_t)img.w * (size_t)img.h <= 1u << 20) { /* keep each run fast */
        static float out[32 * 32 * 3];
        mo_tensor t = { .data = out };
        mo_preprocess_classify(&img, 36, 32, NULL, NULL, &t);
    }
    mo_image_free(&img);
    return 0;
}
