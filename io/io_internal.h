/* Internal interface between the io sources (not installed). */
#ifndef MO_IO_INTERNAL_H
#define MO_IO_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "mo/image.h"

/* Source name used in messages: the file name, or "<memory>". */
typedef struct mo_io_src {
    const uint8_t *data;
    size_t size;
    const char *name;
} mo_io_src;

/* Check a decoded size against the limits; sets the error message. */
int mo_io_check_size(const char *name, long long w, long long h);

/* Read a whole regular file of at most mo_limits.image_file_bytes into a malloc'ed buffer;
 * sets the error message. */
int mo_io_read_file(const char *path, uint8_t **data, size_t *size);

/* JPEG through libjpeg-turbo (jpeg.c). On success *out owns its pixels. */
int mo_io_decode_jpeg(const mo_io_src *src, mo_image *out);

/* PNG through libpng (png.c). */
int mo_io_decode_png(const mo_io_src *src, mo_image *out);

/* BMP and GIF through stb_image (stb_impl.c). */
int mo_io_decode_stb(const mo_io_src *src, mo_image *out);

/* Encoders: write to an open FILE; return MO_OK, MO_EIO or MO_ENOMEM (no message). */
int mo_io_write_png(const mo_image *img, void *file);                /* stb_impl.c */
int mo_io_write_jpeg(const mo_image *img, void *file, int quality);  /* jpeg.c */

/* ToTensor + Normalize of every uint8 value per channel, in torch's float steps
 * (preprocess.c). mean/std NULL mean 0/1. MO_EINVAL (with a message) for a zero std. */
int mo_io_norm_lut(float lut[3][256], const float mean[3], const float std[3]);

#endif
