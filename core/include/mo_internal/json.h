/* Internal: the SDK's one JSON reader (core/json.c), strict RFC 8259, no tree. Reads
 * the model file header and metadata (backbone, heads, pipeline) and the evaluation
 * inputs (eval/). Exported for those libraries, not installed.
 *
 * Every failure is recorded with mo_fail(): MO_EFORMAT ("name:line:col: message") for
 * bad JSON, MO_ENOMEM when an allocation fails (never reported as bad JSON). */
#ifndef MO_JSON_INTERNAL_H
#define MO_JSON_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "mo_internal/errors.h"

/* ------------------------------------------------ a strict streaming JSON reader */

typedef struct mo_jp {
    const char *data, *p, *end;
    const char *name;
    int err, depth;
} mo_jp;

MO_API void mo_jp_init(mo_jp *j, const char *data, size_t size, const char *name);
/* Record "name:line:col: message" for position `at` (first error sticks); returns it. */
MO_API int mo_jp_fail_at(mo_jp *j, const char *at, const char *fmt, ...) MO_PRINTF(3, 4);
/* Next character after white space, or -1 at the end. */
MO_API int mo_jp_peek(mo_jp *j);
/* '[' or '{' */
MO_API int mo_jp_begin(mo_jp *j, char open);
/* 1 when another element follows (after its comma), 0 at the close (consumed) or error. */
MO_API int mo_jp_next(mo_jp *j, char close, int *count);
/* An object key (raw bytes, escapes not decoded) and its ':'. */
MO_API int mo_jp_key(mo_jp *j, const char **key, size_t *len);
/* An object key, decoded and malloc'ed as mo_jp_string_n(), and its ':'. */
MO_API int mo_jp_key_string(mo_jp *j, char **key, size_t *len);
MO_API int mo_jp_number(mo_jp *j, double *v);
/* An integer (or an integral number): *is_int 0 when it is not one. */
MO_API int mo_jp_int(mo_jp *j, int64_t *v, int *is_int);
/* A string, decoded, malloc'ed. */
MO_API int mo_jp_string(mo_jp *j, char **out);
/* The same with its length in bytes (a decoded "\u0000" makes it differ from strlen). */
MO_API int mo_jp_string_n(mo_jp *j, char **out, size_t *len);
/* Consume `lit` (true/false/null) when it is next: 1, else 0. */
MO_API int mo_jp_literal(mo_jp *j, const char *lit);
MO_API int mo_jp_skip(mo_jp *j);
/* Only white space left. */
MO_API int mo_jp_finish(mo_jp *j);

#endif
