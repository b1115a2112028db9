/*
 * Internal: model metadata, read and validated in one place (core/meta.c).
 *
 * Every metadata field the SDK reads has one entry in meta.c's table: its kind, its accepted
 * range and its default. The heads, the pipeline and (through the public mo_file_meta_number,
 * mo_file_meta_floats and mo_file_preprocess of mo/file.h) the apps read fields only through
 * these functions, so a value is accepted or refused the same way everywhere: a value that
 * makes no sense is MO_EFORMAT with a message naming the field, e.g.
 * "metadata mo.std[1] = -1 must be positive". Exported (heads and the pipeline are separate
 * libraries) but not in the public headers. The memory check of a model's metadata
 * (mo_meta_check_memory) sizes a backbone session: it is in libmobileone
 * (mo_internal/backbone.h).
 */
#ifndef MO_META_INTERNAL_H
#define MO_META_INTERNAL_H

#include <stddef.h>

#include "mo/backbone.h"
#include "mo/file.h"

/*
 * JSON list of numbers under key, checked against the table (length, range, integers).
 * Absent: the field's default, or *n = 0 when it has none. v has room for max values.
 * Returns MO_OK, MO_EFORMAT (malformed or out of range), MO_EINVAL (key not in the table or
 * max below the field's longest list).
 */
MO_API int mo_meta_list(const mo_file *f, const char *key, double *v, int max, int *n);

/*
 * JSON list of lists of numbers (det.aspect_ratios): v is [max_outer][max_inner], *nouter
 * lists of ninner[i] values. Absent: *nouter = 0.
 */
MO_API int mo_meta_nested(const mo_file *f, const char *key, double *v, int max_outer,
                          int max_inner, int *nouter, int *ninner);

/*
 * Class names under key (a JSON list of strings): *names is one malloc'ed block holding the
 * *n pointers and the strings (free(*names) releases all). More names than
 * mo_limits.max_categories is MO_EUNSUPPORTED naming the limit; a missing key is
 * MO_EFORMAT. MO_ENOMEM when the block cannot be allocated.
 */
MO_API int mo_meta_names(const mo_file *f, const char *key, char ***names, int *n);

/*
 * JSON list of integers of any length under key (det.category_ids), each within the table's
 * range, no value twice: *ids is malloc'ed (free it), *n its length. Absent: *ids NULL,
 * *n 0. More values than mo_limits.max_categories is MO_EUNSUPPORTED; MO_ENOMEM.
 */
MO_API int mo_meta_ids(const mo_file *f, const char *key, int **ids, int *n);

/* Does the list mo.contents name `what`? *found 1 or 0; MO_EFORMAT when mo.contents is
 * missing or malformed (its message names it), MO_ENOMEM. */
MO_API int mo_meta_contains(const mo_file *f, const char *what, int *found);

#endif
