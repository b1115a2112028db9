/* Internal: record the detail of an error for mo_last_error(). Shared by every SDK library. */
#ifndef MO_ERRORS_INTERNAL_H
#define MO_ERRORS_INTERNAL_H

#include "mo/common.h"

#if defined(__GNUC__)
#  define MO_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#  define MO_PRINTF(a, b)
#endif

/* Exported (heads and io are separate libraries) but not in the public headers. */
MO_API void mo_set_error(const char *fmt, ...) MO_PRINTF(1, 2);

/* Set the detail and return err, so callers can write `return mo_fail(MO_EFORMAT, ...)`. */
MO_API int mo_fail(int err, const char *fmt, ...) MO_PRINTF(2, 3);

/* Put "<formatted prefix>: " before the detail already recorded and return err, e.g.
 * `return mo_fail_prefix(ret, "%s", path)`. The one way to add context to an error. */
MO_API int mo_fail_prefix(int err, const char *fmt, ...) MO_PRINTF(2, 3);

#define validate_input_or_ret(x, r) \
    do { if (!(x)) return mo_fail((r), "%s: invalid argument (%s)", __func__, #x); } while (0)

#endif
