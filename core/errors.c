#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "mo_internal/errors.h"
#include "mo_internal/settings.h"

/* Thread-local so concurrent sessions do not overwrite each other's detail. */
static _Thread_local char last_error[512];

const char *mo_strerror(int err)
{
    switch (err) {
    case MO_OK: return "success";
    case MO_EINVAL: return "invalid argument";
    case MO_ENOMEM: return "out of memory";
    case MO_EIO: return "input/output error";
    case MO_EFORMAT: return "corrupt or unsupported file format";
    case MO_EUNSUPPORTED: return "unsupported";
    case MO_EMISMATCH: return "parts do not fit together";
    default: return "unknown error";
    }
}

const char *mo_last_error(void)
{
    return last_error;
}

/* Formatted into a copy first: an argument may be mo_last_error() itself, and vsnprintf
 * into the buffer it reads from is undefined (it doubled prefixes in practice). */
static void vset(const char *fmt, va_list ap)
{
    char buf[sizeof(last_error)];
    vsnprintf(buf, sizeof(buf), fmt, ap);
    memcpy(last_error, buf, sizeof(buf));
}

void mo_set_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vset(fmt, ap);
    va_end(ap);
}

int mo_fail(int err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vset(fmt, ap);
    va_end(ap);
    return err;
}

int mo_fail_prefix(int err, const char *fmt, ...)
{
    char detail[sizeof(last_error)];
    memcpy(detail, last_error, sizeof(detail));
    va_list ap;
    va_start(ap, fmt);
    vset(fmt, ap);
    va_end(ap);
    const size_t n = strlen(last_error);
    snprintf(last_error + n, sizeof(last_error) - n, ": %s", detail);
    return err;
}

const char *mo_version(void)
{
    return MO_VERSION_STRING;
}

unsigned mo_version_number(void)
{
    return MO_VERSION_NUMBER;
}

/* Versioned settings structs (mo_internal/settings.h): the library's defaults are in dst;
 * the caller's struct covers the fields up to its own `size`. */
int mo_settings_take(void *dst, size_t lib_size, const void *src, const size_t *ends, int n,
                     const char *fn, const char *type)
{
    if (!src)
        return MO_OK;
    size_t size;
    memcpy(&size, src, sizeof(size));
    if (size > lib_size)
        return mo_fail(MO_EINVAL, "%s: %s.size is %zu, larger than this library's %zu (a "
                                  "program built against newer headers than the library, "
                                  "or a struct not initialised with its default_settings)",
                       fn, type, size, lib_size);
    if (n < 1 || size < ends[0])
        return mo_fail(MO_EINVAL, "%s: %s.size is %zu, too small for its first setting (%zu "
                                  "bytes; initialise the struct with its default_settings)",
                       fn, type, size, n < 1 ? (size_t)0 : ends[0]);
    size_t covered = ends[0];
    for (int i = 1; i < n && ends[i] <= size; i++)
        covered = ends[i];
    memcpy(dst, src, covered);
    memcpy(dst, &lib_size, sizeof(lib_size));
    return MO_OK;
}

void mo_settings_fill(void *dst, size_t size, const void *def, size_t lib_size)
{
    if (!dst || size < sizeof(size_t))
        return;
    memcpy(dst, def, size < lib_size ? size : lib_size);
    if (size > lib_size)
        memset((char *)dst + lib_size, 0, size - lib_size);
    memcpy(dst, &size, sizeof(size));
}
