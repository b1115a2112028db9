/* Internal: libpng plumbing shared by the image (png.c) and label map (labels.c) decoders. */
#ifndef MO_PNG_INTERNAL_H
#define MO_PNG_INTERNAL_H

#include <png.h>

#include "io_internal.h"

/* Error text and input position of one libpng read or write. */
typedef struct mo_png_io {
    const mo_io_src *src; /* NULL when writing */
    size_t pos;
    char msg[200];
} mo_png_io;

/* A read struct whose errors longjmp with their text in io->msg, reading from io->src.
 * NULL when out of memory. */
png_structp mo_png_create_reader(mo_png_io *io);

/* A write struct with the same error handling. */
png_structp mo_png_create_writer(mo_png_io *io);

#endif
