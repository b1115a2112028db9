/**
 * @file tensor.h
 * @brief Views of float feature maps in NHWC layout (N = 1).
 */
#ifndef MO_TENSOR_H
#define MO_TENSOR_H

#include "mo/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * @brief A float32 image or feature map, height x width x channels, channels contiguous.
 *
 * Element (y, x, ch) is at `data[y * row_stride + x * c + ch]`. `row_stride` counts
 * elements (not bytes) and is >= `w * c`. A tensor never owns its data.
 */
typedef struct mo_tensor {
    float *data;          /**< first element; not owned */
    int h;                /**< rows */
    int w;                /**< columns */
    int c;                /**< channels, contiguous in memory */
    ptrdiff_t row_stride; /**< elements from one row to the next */
} mo_tensor;

#ifdef __cplusplus
}
#endif
#endif
