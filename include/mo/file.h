/**
 * @file file.h
 * @brief Model files: open, validate, read metadata and tensors.
 *
 * A model file (spec: weights/FORMAT.md) is a safetensors file whose metadata says
 * what it holds. mo_file_open() reads it once and validates its whole structure
 * (header, offsets, sizes, dtypes, checksums) before anything uses it. An opened
 * file is immutable and may be shared by threads.
 */
#ifndef MO_FILE_H
#define MO_FILE_H

#include "mo/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/** An open, validated model file (opaque). */
typedef struct mo_file mo_file;

/** Element types a model file may store. Tensors are read back as float32. */
typedef enum mo_dtype {
    MO_DTYPE_F32 = 0, /**< "F32" */
    MO_DTYPE_F16 = 1, /**< "F16", IEEE half */
} mo_dtype;

/** Most dimensions of a stored tensor. */
#define MO_MAX_DIMS 4

/** Description of one tensor in a file. Strings stay valid while the file is open. */
typedef struct mo_tensor_info {
    const char *name;           /**< tensor name */
    mo_dtype dtype;             /**< stored element type */
    int ndim;                   /**< number of dimensions, 0..::MO_MAX_DIMS */
    int64_t shape[MO_MAX_DIMS]; /**< dimensions, outermost first */
    int64_t numel;              /**< number of elements */
} mo_tensor_info;

/**
 * @brief Open and validate a model file.
 * @param[out] out receives the file; the caller closes it with mo_file_close()
 * @param path file name
 * @return MO_OK, MO_EINVAL (NULL argument), MO_EIO (cannot open/read), MO_EFORMAT
 *         (not a model file, wrong version, bad header, offset past the end, checksum
 *         mismatch), MO_ENOMEM. mo_last_error() names the faulty field.
 */
MO_API int mo_file_open(mo_file **out, const char *path);

/**
 * @brief As mo_file_open() on bytes in memory (copied; the caller keeps @p data).
 * @param[out] out receives the file; close it with mo_file_close()
 * @param data the bytes of a model file
 * @param size their number
 * @return as mo_file_open() (no MO_EIO)
 */
MO_API int mo_file_open_memory(mo_file **out, const void *data, size_t size);

/** @brief Close a file and set `*f` to NULL. Accepts NULL and `*f == NULL`.
 *  @param f the file */
MO_API void mo_file_close(mo_file **f);

/**
 * @brief Metadata value for @p key (e.g. "mo.variant"), or NULL when absent.
 * @param f the file
 * @param key the metadata key
 * @return the value; the string lives as long as the file
 */
MO_API const char *mo_file_meta(const mo_file *f, const char *key);

/**
 * @brief A numeric metadata field, validated: the one reader of numbers every head, app and
 *        the pipeline use (weights/FORMAT.md lists the fields and their accepted ranges).
 * @param f the file
 * @param key a numeric field the SDK knows, e.g. "cls.crop", "det.min_ratio", "mo.bn_eps"
 * @param[out] value the number; the field's default when the file lacks it (left unchanged
 *        when the field has no default)
 * @return MO_OK, MO_EINVAL (NULL argument, or @p key is not a numeric field), MO_EFORMAT (not
 *         a number, not finite, outside the field's range, not an integer where one is
 *         needed); mo_last_error() names the field, e.g. "metadata det.box_clip = -100 must
 *         be positive (accepted: 0.001..20)"
 */
MO_API int mo_file_meta_number(const mo_file *f, const char *key, double *value);

/**
 * @brief A metadata field holding a list of exactly @p n numbers (e.g. "mo.mean", "mo.std",
 *        "det.box_weights"), validated as mo_file_meta_number() does each number.
 * @param f the file
 * @param key the field
 * @param[out] v receives @p n values; the field's default when the file lacks it
 * @param n the length of the field's lists
 * @return MO_OK, MO_EINVAL (NULL argument, unknown field, other length), MO_EFORMAT (not a
 *         JSON list of @p n finite numbers, or a value out of range); mo_last_error() names
 *         the field and the index, e.g. "metadata mo.std[1] = -1 must be positive"
 */
MO_API int mo_file_meta_floats(const mo_file *f, const char *key, float *v, int n);

/**
 * @brief The input normalization a model file asks for: `mo.mean` and `mo.std`, each a list of
 *        3 finite numbers (RGB, 0..1 scale; std positive), ImageNet's when absent.
 * @param f the file
 * @param[out] mean receives the 3 means (written only on success)
 * @param[out] std receives the 3 standard deviations (written only on success)
 * @return MO_OK, MO_EINVAL (NULL argument), MO_EFORMAT (malformed or out of range; the
 *         message names the field)
 */
MO_API int mo_file_preprocess(const mo_file *f, float mean[3], float std[3]);

/** @brief Number of tensors in the file. @param f the file @return the count (>= 0) */
MO_API int mo_file_num_tensors(const mo_file *f);

/**
 * @brief Describe tensor number @p index (0 <= index < mo_file_num_tensors()).
 * @param f the file
 * @param index tensor number
 * @param[out] info receives the description
 * @return MO_OK or MO_EINVAL
 */
MO_API int mo_file_tensor_at(const mo_file *f, int index, mo_tensor_info *info);

/**
 * @brief Describe the tensor called @p name.
 * @param f the file
 * @param name tensor name
 * @param[out] info receives the description
 * @return MO_OK, MO_EINVAL, or MO_EFORMAT when the file has no such tensor
 */
MO_API int mo_file_tensor(const mo_file *f, const char *name, mo_tensor_info *info);

/**
 * @brief Read a tensor as float32 into @p dst after checking its shape.
 * @param f the file
 * @param name tensor name
 * @param ndim expected number of dimensions
 * @param shape expected dimensions
 * @param dst receives numel floats (row-major, as stored)
 * @return MO_OK, MO_EINVAL, MO_EFORMAT (missing tensor), MO_EMISMATCH (other shape);
 *         mo_last_error() names the tensor and both shapes
 */
MO_API int mo_file_read_f32(const mo_file *f, const char *name, int ndim,
                            const int64_t *shape, float *dst);

/**
 * @brief Digest of every tensor whose name starts with @p prefix (e.g. "backbone.").
 *
 * 16 lowercase hex digits (see weights/FORMAT.md). A head file records the digest of
 * the backbone it was trained on, so it can be refused with any other backbone.
 * @param f the file
 * @param prefix tensor name prefix
 * @param[out] out receives 16 characters and a terminating NUL
 * @return MO_OK, MO_EINVAL, MO_EFORMAT (no tensor has the prefix)
 */
MO_API int mo_file_digest(const mo_file *f, const char *prefix, char out[17]);

#ifdef __cplusplus
}
#endif
#endif
