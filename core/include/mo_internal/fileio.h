/* Internal: the one way SDK libraries read input files (core/limits.c). Regular files
 * only (a FIFO, device or directory is refused without blocking), size checked against a
 * limit of include/mo/limits.h before anything is allocated. Exported for io, eval, heads. */
#ifndef MO_FILEIO_INTERNAL_H
#define MO_FILEIO_INTERNAL_H

#include <stdint.h>
#include <stdio.h>

#include "mo/common.h"
#include "mo/limits.h"

/* Open a regular file for reading: *fd and its size. MO_EIO with a message otherwise. */
MO_API int mo_open_regular(int *fd, uint64_t *size, const char *path);

/* Same, as a stdio stream, refusing files over max_bytes (limit_name names the limit). */
MO_API int mo_fopen_regular(FILE **out, const char *path, uint64_t max_bytes,
                            const char *limit_name);

/* Whole regular file into a malloc'ed buffer with a NUL after the last byte (size excludes
 * it); over max_bytes: MO_EUNSUPPORTED naming limit_name. */
MO_API int mo_read_file(const char *path, uint64_t max_bytes, const char *limit_name,
                        uint8_t **data, size_t *size);

#endif
