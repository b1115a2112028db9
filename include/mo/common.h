/**
 * @file common.h
 * @brief Error codes, export macro and version of the MobileOne vision SDK.
 *
 * Every call that can fail returns an `int`: ::MO_OK (0) on success or one of the
 * negative `MO_E*` codes below. mo_strerror() turns a code into a message.
 *
 * Settings structs: every `open` call takes a pointer to its settings struct
 * (::mo_backbone_settings, ::mo_session_settings, ::mo_cls_settings, ::mo_det_settings,
 * ::mo_seg_settings, ::mo_pipeline_settings, ::mo_pipeline_session_settings), or NULL for
 * the defaults. Each struct starts with `size_t size`, which its `*_default_settings()`
 * sets to the struct's `sizeof` in the headers the program was built with; initialise
 * the struct with it, then change fields. New fields are only ever appended, and a
 * version that adds fields grows `sizeof` (padding included). So a program built against
 * older headers passes a smaller `size`: the library reads only the fields that `size`
 * covers (a field counts when it ends at or before `size`) and takes its defaults for the
 * rest. A `size` larger than the library's struct (a program built against newer headers
 * than the library it runs with) or too small to hold the first setting after `size` is
 * ::MO_EINVAL, and mo_last_error() names the struct and both sizes.
 *
 * The other way round, a call that fills a caller's struct (`*_default_settings()`,
 * mo_limits_default(), mo_limits_get(), mo_anchor_config_default(), mo_seg_get_info()) is
 * a macro over a `*_sized` function that passes `sizeof` from the caller's headers: the
 * library writes only that many bytes, so an older program's smaller struct is not overrun.
 */
#ifndef MO_COMMON_H
#define MO_COMMON_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** @brief Marks a function exported from the SDK's shared libraries (hidden otherwise). */
#if defined(_WIN32)
#  define MO_API __declspec(dllexport)
#elif defined(__GNUC__)
#  define MO_API __attribute__((visibility("default")))
#else
#  define MO_API
#endif

/** Error codes returned by every fallible SDK call. */
enum mo_error {
    MO_OK = 0,            /**< success */
    MO_EINVAL = -1,       /**< invalid argument (NULL pointer, size out of range, bad option) */
    MO_ENOMEM = -2,       /**< an allocation failed */
    MO_EIO = -3,          /**< a file could not be opened, read or written */
    MO_EFORMAT = -4,      /**< a file is corrupt, truncated or not of the expected format */
    MO_EUNSUPPORTED = -5, /**< valid input the SDK does not handle (e.g. unknown variant) */
    MO_EMISMATCH = -6,    /**< parts that must fit together do not (head vs backbone, shapes) */
};

/**
 * @brief Message for an error code.
 * @param err a value returned by an SDK call
 * @return a static string; never NULL (unknown codes give "unknown error")
 */
MO_API const char *mo_strerror(int err);

/**
 * @brief Detail of the last error raised on the calling thread.
 *
 * Loaders and decoders record which file, tensor or field was wrong; the text is
 * thread-local and stays valid until the next failing SDK call on the same thread.
 * @return a string, empty when there is no detail; never NULL
 */
MO_API const char *mo_last_error(void);

/**
 * @brief SDK version of the library loaded at run time.
 * @return "MAJOR.MINOR.PATCH", a static string
 */
MO_API const char *mo_version(void);

/**
 * @brief SDK version of the library loaded at run time, as a number to compare with
 *        ::MO_VERSION_NUMBER of the headers a program was built with.
 * @return (MAJOR << 16) | (MINOR << 8) | PATCH
 */
MO_API unsigned mo_version_number(void);

/** Major version of these headers: changes when the ABI breaks. */
#define MO_VERSION_MAJOR 0
/** Minor version of these headers: additions that keep the ABI. */
#define MO_VERSION_MINOR 1
/** Patch version of these headers: fixes only. */
#define MO_VERSION_PATCH 0
/** The headers' version as one number, as mo_version_number() returns it. */
#define MO_VERSION_NUMBER ((MO_VERSION_MAJOR << 16) | (MO_VERSION_MINOR << 8) | MO_VERSION_PATCH)

#ifdef __cplusplus
}
#endif
#endif
