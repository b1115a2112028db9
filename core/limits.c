/* Process-wide input limits (include/mo/limits.h) and the one way the SDK reads files:
 * regular files only, opened without blocking, size checked before anything is allocated. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mo_internal/errors.h"
#include "mo_internal/fileio.h"
#include "mo_internal/settings.h"
#include "mo/limits.h"

/* A macro, not a copy of `defaults`: C (and clang) wants constant initializers. */
#define DEFAULTS { \
    .size = sizeof(mo_limits), \
    .image_max_side = 32768, \
    .image_max_pixels = (int64_t)1 << 26, \
    .jpeg_max_scans = 100, \
    .model_file_bytes = (uint64_t)4 << 30, \
    .image_file_bytes = (uint64_t)256 << 20, \
    .json_file_bytes = (uint64_t)2 << 30, \
    .text_file_bytes = (uint64_t)1 << 30, \
    .max_categories = 4096, \
    .max_images = 10000000, \
    .max_detections = 100000000, \
    .model_memory_bytes = (uint64_t)1 << 30, \
    .session_memory_bytes = (uint64_t)4 << 30, \
}

static const mo_limits defaults = DEFAULTS;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static mo_limits current = DEFAULTS;

void mo_limits_default_sized(mo_limits *l, size_t size)
{
    MO_SETTINGS_FILL(l, size, &defaults);
}

int mo_limits_get_sized(mo_limits *l, size_t size)
{
    if (!l || size < MO_FIELD_END(mo_limits, image_max_side))
        return mo_fail(MO_EINVAL, "mo_limits_get: %s", l ? "size too small for the first limit"
                                                         : "NULL limits");
    pthread_mutex_lock(&lock);
    const mo_limits now = current;
    pthread_mutex_unlock(&lock);
    MO_SETTINGS_FILL(l, size, &now);
    return MO_OK;
}

int mo_limits_set(const mo_limits *in)
{
    /* the caller's fields over the defaults (a caller built against older headers has
     * fewer; the others keep their defaults) */
    static const size_t ends[] = {
        MO_FIELD_END(mo_limits, image_max_side),     MO_FIELD_END(mo_limits, image_max_pixels),
        MO_FIELD_END(mo_limits, jpeg_max_scans),     MO_FIELD_END(mo_limits, model_file_bytes),
        MO_FIELD_END(mo_limits, image_file_bytes),   MO_FIELD_END(mo_limits, json_file_bytes),
        MO_FIELD_END(mo_limits, text_file_bytes),    MO_FIELD_END(mo_limits, max_categories),
        MO_FIELD_END(mo_limits, max_images),         MO_FIELD_END(mo_limits, max_detections),
        MO_FIELD_END(mo_limits, model_memory_bytes),
        MO_FIELD_END(mo_limits, session_memory_bytes)};
    mo_limits taken = defaults;
    int r = MO_SETTINGS_TAKE(&taken, in, ends, "mo_limits_set", "mo_limits");
    if (r)
        return r;
    const mo_limits *l = &taken;
#define POSITIVE(f) \
    if (!(l->f > 0)) return mo_fail(MO_EINVAL, "mo_limits_set: " #f " must be positive")
    POSITIVE(image_max_side);
    POSITIVE(image_max_pixels);
    POSITIVE(jpeg_max_scans);
    POSITIVE(model_file_bytes);
    POSITIVE(image_file_bytes);
    POSITIVE(json_file_bytes);
    POSITIVE(text_file_bytes);
    POSITIVE(max_categories);
    POSITIVE(max_images);
    POSITIVE(max_detections);
    POSITIVE(model_memory_bytes);
    POSITIVE(session_memory_bytes);
#undef POSITIVE
    /* Sides beyond 2^20 would let w * h * channels overflow int arithmetic downstream. */
    if (l->image_max_side > (1 << 20))
        return mo_fail(MO_EINVAL, "mo_limits_set: image_max_side must be at most 2^20");
    pthread_mutex_lock(&lock);
    current = *l;
    pthread_mutex_unlock(&lock);
    return MO_OK;
}

int mo_open_regular(int *fd_out, uint64_t *size, const char *path)
{
    *fd_out = -1;
    /* O_NONBLOCK: opening a FIFO for reading must not wait for a writer; the file type is
     * checked before any read. */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return mo_fail(MO_EIO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st)) {
        int e = errno;
        close(fd);
        return mo_fail(MO_EIO, "%s: cannot stat: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return mo_fail(MO_EIO, "%s: not a regular file (%s)", path,
                       S_ISDIR(st.st_mode) ? "a directory" : S_ISFIFO(st.st_mode) ? "a FIFO" :
                       S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode) ? "a device" : "a special file");
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0) {
        int e = errno;
        close(fd);
        return mo_fail(MO_EIO, "%s: %s", path, strerror(e));
    }
    *fd_out = fd;
    *size = (uint64_t)st.st_size;
    return MO_OK;
}

int mo_fopen_regular(FILE **out, const char *path, uint64_t max_bytes, const char *limit_name)
{
    *out = NULL;
    int fd;
    uint64_t size;
    int r = mo_open_regular(&fd, &size, path);
    if (r)
        return r;
    if (size > max_bytes) {
        close(fd);
        return mo_fail(MO_EUNSUPPORTED, "%s: %llu bytes is over the limit %s (%llu)", path,
                       (unsigned long long)size, limit_name, (unsigned long long)max_bytes);
    }
    FILE *f = fdopen(fd, "rb");
    if (!f) {
        close(fd);
        return mo_fail(MO_ENOMEM, "%s: cannot open a stream", path);
    }
    *out = f;
    return MO_OK;
}

int mo_read_file(const char *path, uint64_t max_bytes, const char *limit_name, uint8_t **data,
                 size_t *size)
{
    *data = NULL;
    *size = 0;
    int fd;
    uint64_t len;
    int r = mo_open_regular(&fd, &len, path);
    if (r)
        return r;
    if (len > max_bytes || len >= SIZE_MAX) {
        close(fd);
        return mo_fail(MO_EUNSUPPORTED, "%s: %llu bytes is over the limit %s (%llu)", path,
                       (unsigned long long)len, limit_name, (unsigned long long)max_bytes);
    }
    /* One extra byte: a NUL for text parsers, and room to notice a file that grew. */
    uint8_t *b = malloc((size_t)len + 1);
    if (!b) {
        close(fd);
        return mo_fail(MO_ENOMEM, "%s: out of memory for %llu bytes", path,
                       (unsigned long long)len);
    }
    size_t n = 0;
    for (;;) {
        ssize_t got = read(fd, b + n, (size_t)len + 1 - n);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            int e = errno;
            free(b);
            close(fd);
            return mo_fail(MO_EIO, "%s: read error: %s", path, strerror(e));
        }
        if (got == 0)
            break;
        n += (size_t)got;
        if (n > len) {
            free(b);
            close(fd);
            return mo_fail(MO_EIO, "%s: the file grew while it was read", path);
        }
    }
    close(fd);
    b[n] = 0;
    *data = b;
    *size = n;
    return MO_OK;
}
