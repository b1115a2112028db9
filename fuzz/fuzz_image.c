/* Fuzz target: any bytes as an image file; a decoded image is also preprocessed. (Label
 * PNGs have their own target, fuzz_labels.c.) */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "mo/image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
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
