/* Versioned settings structs (include/mo/common.h, "Settings structs"): every public
 * settings struct starts with `size_t size`, set to its sizeof by mo_*_default_settings().
 * A caller built against older headers passes a smaller size; the library then reads only
 * the fields that size covers and keeps its defaults for the rest. */
#ifndef MO_INTERNAL_SETTINGS_H
#define MO_INTERNAL_SETTINGS_H

#include <stddef.h>

#include "mo/common.h"

/* Bytes from the start of struct T to the end of its field f. */
#define MO_FIELD_END(T, f) (offsetof(T, f) + sizeof(((T *)0)->f))

/*
 * Take the caller's settings @p src (NULL: keep @p dst) over the defaults already in
 * @p dst, a struct of @p lib_size bytes whose first field is `size_t size`. @p ends lists,
 * in increasing order, MO_FIELD_END() of every field after `size`; only the fields that
 * end at or before the caller's `size` are copied. dst->size stays lib_size.
 * MO_EINVAL, naming @p fn and @p type, when the caller's size is larger than lib_size
 * (a program built against newer headers than the library) or smaller than ends[0] (it
 * cannot hold the first setting: an uninitialised struct).
 */
MO_API int mo_settings_take(void *dst, size_t lib_size, const void *src, const size_t *ends,
                            int n, const char *fn, const char *type);

/* mo_settings_take() with dst's size and the length of the array ends. */
#define MO_SETTINGS_TAKE(dst, src, ends, fn, type)                                        \
    mo_settings_take((dst), sizeof(*(dst)), (src), (ends),                                \
                     (int)(sizeof(ends) / sizeof((ends)[0])), (fn), (type))

/*
 * Write the library's struct @p def (lib_size bytes, starting with `size_t size`) into the
 * caller's struct of @p size bytes: the bytes both have, zeros past lib_size (a caller built
 * against newer headers; its open then fails on the size) and `size` = @p size. Nothing is
 * written when @p dst is NULL or @p size cannot even hold `size`.
 */
MO_API void mo_settings_fill(void *dst, size_t size, const void *def, size_t lib_size);

/* mo_settings_fill() from a struct of the library's own type. */
#define MO_SETTINGS_FILL(dst, size, def) mo_settings_fill((dst), (size), (def), sizeof(*(def)))

#endif
