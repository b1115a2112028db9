/**
 * @file limits.h
 * @brief Limits on what the SDK accepts from files: sizes, pixels, counts and memory.
 *
 * One process-wide set of limits, read by every loader, decoder, evaluator and app of the
 * SDK, so that a hostile or broken input is refused with ::MO_EUNSUPPORTED and a message
 * naming the limit (e.g. "limit image_max_pixels") before the SDK allocates or works for it.
 * The defaults are safe for a phone-sized process and generous for real data (COCO, VOC,
 * ImageNet, every MobileOne variant); raise them with mo_limits_set() where a use needs more.
 * `docs/LIMITS.md` lists each limit with its default and what it guards.
 *
 * Thread safety: mo_limits_get() may be called from any thread at any time. Call
 * mo_limits_set() before opening models or files on other threads; a file being opened while
 * the limits change is checked against either the old or the new set.
 */
#ifndef MO_LIMITS_H
#define MO_LIMITS_H

#include "mo/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Limits on inputs. Every field must be positive; sizes are in bytes. */
typedef struct mo_limits {
    size_t size;                 /**< sizeof(mo_limits), set by mo_limits_default() and
                                      mo_limits_get() */
    int image_max_side;          /**< widest or tallest image decoded (default 32768) */
    int64_t image_max_pixels;    /**< most pixels (w * h) of an image (default 2^26) */
    int jpeg_max_scans;          /**< most scans of a progressive JPEG (default 100) */
    uint64_t model_file_bytes;   /**< largest model file (default 4 GiB) */
    uint64_t image_file_bytes;   /**< largest image or label PNG file (default 256 MiB) */
    uint64_t json_file_bytes;    /**< largest JSON file: COCO ground truth, results (default 2 GiB) */
    uint64_t text_file_bytes;    /**< largest other text file: VOC XML, detections, lists, state files (default 1 GiB) */
    int64_t max_categories;      /**< most categories or classes in a dataset or head (default 4096) */
    int64_t max_images;          /**< most images in an evaluation (default 10,000,000) */
    int64_t max_detections;      /**< most detections in an evaluation (default 100,000,000) */
    uint64_t model_memory_bytes; /**< most memory a model's metadata may make a session or head ask for (default 1 GiB) */
    uint64_t session_memory_bytes; /**< most memory one backbone session may allocate, head workspace included (default 4 GiB) */
} mo_limits;

/**
 * @brief The built-in defaults.
 * @param l filled with the defaults (not NULL)
 * @param size the caller's sizeof(mo_limits) (the mo_limits_default() macro passes
 *        it): only the fields that fit are written, `size` included, so a program built
 *        against older headers is not overrun
 */
MO_API void mo_limits_default_sized(mo_limits *l, size_t size);
/** mo_limits_default_sized() with sizeof the caller's struct. */
#define mo_limits_default(l) mo_limits_default_sized((l), sizeof(*(l)))

/**
 * @brief The limits in force now (the defaults until mo_limits_set() is called).
 * @param l filled with the current limits (not NULL)
 * @param size the caller's sizeof(mo_limits) (the mo_limits_get() macro passes it): only
 *        the fields that fit are written, `size` included
 * @return ::MO_OK, or ::MO_EINVAL for a NULL @p l or a @p size that cannot hold the first
 *         limit
 */
MO_API int mo_limits_get_sized(mo_limits *l, size_t size);
/** mo_limits_get_sized() with sizeof the caller's struct. */
#define mo_limits_get(l) mo_limits_get_sized((l), sizeof(*(l)))

/**
 * @brief Replace the process-wide limits.
 * @param l the new limits, initialised with mo_limits_default() or mo_limits_get() (its
 *        `size` says which fields the caller has: the others keep their defaults); NULL
 *        restores the defaults
 * @return ::MO_OK, or ::MO_EINVAL (the limits in force are unchanged) when a field is not
 *         positive or image_max_side exceeds 2^20 (mo_last_error() names the field), or
 *         when `size` is larger than this library's struct or too small for the first limit
 */
MO_API int mo_limits_set(const mo_limits *l);

#ifdef __cplusplus
}
#endif
#endif
