/**
 * @file segment.h
 * @brief DeepLabV3 semantic segmentation head (torchvision's `DeepLabHead`) on MobileOne.
 *
 * The head runs on the stage4 features of one backbone run (output stride 32, 16 or 8,
 * see mo_backbone_run()):
 *
 * - ASPP: a 1x1 conv, one 3x3 conv per atrous rate r (dilation r, padding r; rates from
 *   the file, default 12, 24, 36) and an image-pooling branch (global average, 1x1 conv,
 *   upsampled back), each with BatchNorm + ReLU to 256 channels; concatenated and
 *   projected by a 1x1 conv + BatchNorm + ReLU (dropout is the identity at inference);
 * - a 3x3 conv + BatchNorm + ReLU, then a 1x1 conv with bias to K class logits;
 * - the logits upsampled bilinearly (`align_corners=False`) to the requested output size
 *   (normally the input size), then argmax per pixel and, on request, softmax
 *   probabilities.
 *
 * BatchNorm is folded into the convolutions when the head is opened. Taps of a dilated
 * 3x3 conv that would read only zero padding are skipped (whole taps when the rate is at
 * least the feature size, and the padded border of every other tap); the result is
 * unchanged, since a skipped tap would have added zeros.
 *
 * A ::mo_seg is immutable after mo_seg_open() and may be shared by threads. Each run uses
 * the scratch workspace of the calling thread's ::mo_session: open the session with
 * `workspace_bytes` at least mo_seg_workspace_size() for the largest input and the
 * smallest output stride it will run. Running never allocates.
 *
 * Model file (weights/FORMAT.md): tensors `seg.<torchvision DeepLabHead key>`, metadata
 * `seg.classes` (JSON list of K names), `seg.rates` (JSON list, default [12,24,36]),
 * `seg.output_stride` (the output stride the head was trained at, default 16),
 * `seg.bn_eps` (default 1e-05). A file without the backbone must name the one the head
 * was trained on (`mo.variant`, `mo.backbone_digest`); a combined file pairs with its own
 * backbone tensors (weights/FORMAT.md, "Pairing a head with its backbone").
 */
#ifndef MO_SEGMENT_H
#define MO_SEGMENT_H

#include "mo/backbone.h"

#ifdef __cplusplus
extern "C" {
#endif

/** A loaded segmentation head (opaque; immutable, shared by threads). */
typedef struct mo_seg mo_seg;

/** Largest number of classes (labels are 8-bit). */
#define MO_SEG_MAX_CLASSES 256
/** Largest number of atrous rates (dilated ASPP branches). */
#define MO_SEG_MAX_RATES 8
/** Largest atrous rate accepted in a model file. */
#define MO_SEG_MAX_RATE 8192
/** Largest output side mo_seg_run() and mo_seg_upsample_argmax() accept. */
#define MO_SEG_MAX_OUTPUT_SIDE 32768

/** Shape of an opened head. */
typedef struct mo_seg_info {
    int num_classes;              /**< K, 1..::MO_SEG_MAX_CLASSES */
    int in_channels;              /**< backbone stage4 channels the head reads */
    int aspp_channels;            /**< channels of each ASPP branch (256 in DeepLabHead) */
    int head_channels;            /**< channels of the 3x3 conv after ASPP (256) */
    int num_rates;                /**< dilated ASPP branches, 1..::MO_SEG_MAX_RATES */
    int rates[MO_SEG_MAX_RATES];  /**< their atrous rates */
    int output_stride;            /**< output stride to run the backbone at (32, 16, 8): the
                                       one the head was trained at (seg.output_stride),
                                       unless mo_seg_settings.output_stride overrides it */
} mo_seg_info;

/**
 * Settings of mo_seg_open(). Initialise with mo_seg_default_settings(); a caller built
 * against older headers keeps its smaller `size` (the "Settings structs" rule in common.h).
 */
typedef struct mo_seg_settings {
    size_t size;        /**< sizeof(mo_seg_settings), set by mo_seg_default_settings() */
    int output_stride;  /**< 0 (default): the stride the head was trained at
                             (seg.output_stride); else 8, 16 or 32, reported by
                             mo_seg_get_info() as the stride to run the backbone at */
} mo_seg_settings;

/** @brief Fill @p s with the defaults. @param[out] s settings to fill (NULL: nothing)
 * @param size the caller's sizeof(mo_seg_settings) (the mo_seg_default_settings() macro passes
 *        it): only the fields that fit are written, `size` included, so a program built
 *        against older headers is not overrun */
MO_API void mo_seg_default_settings_sized(mo_seg_settings *s, size_t size);
/** mo_seg_default_settings_sized() with sizeof the caller's struct. */
#define mo_seg_default_settings(s) mo_seg_default_settings_sized((s), sizeof(*(s)))

/**
 * @brief Load a DeepLabV3 head from @p f and check that it fits @p bb.
 *
 * @p f may hold the head only (`mo.contents` ["seg"]) or the backbone too. BatchNorm is
 * folded and the weights packed here.
 * @param[out] out receives the head; close with mo_seg_close(). NULL on failure.
 * @param f an open model file; it may be closed once this returns
 * @param bb the backbone the head will run on
 * @param s settings, or NULL for defaults
 * @return MO_OK;
 *         MO_EINVAL (NULL argument, settings.size, output_stride not 0, 8, 16 or 32);
 *         MO_EFORMAT (no `seg.` tensors, missing tensor or metadata, malformed
 *         `seg.classes` / `seg.rates` / `seg.output_stride` / `seg.bn_eps` / `mo.mean` /
 *         `mo.std` or a value outside its range (weights/FORMAT.md), a rate of 0 or
 *         below or above ::MO_SEG_MAX_RATE, BatchNorm variance not positive);
 *         MO_EMISMATCH (a tensor's shape does not fit the others, the head's input
 *         channels differ from the backbone's stage4 channels, the class list and the
 *         classifier disagree on K, or the file names another backbone variant or
 *         digest);
 *         MO_EUNSUPPORTED (more than ::MO_SEG_MAX_CLASSES classes or
 *         mo_limits.max_categories, or more than ::MO_SEG_MAX_RATES rates);
 *         MO_ENOMEM.
 *         mo_last_error() names the tensor or key.
 */
MO_API int mo_seg_open(mo_seg **out, const mo_file *f, const mo_backbone *bb,
                       const mo_seg_settings *s);

/** @brief Free the head and set `*seg` to NULL. Accepts NULL and `*seg == NULL`.
 *  @param seg the head */
MO_API void mo_seg_close(mo_seg **seg);

/**
 * @brief Describe the head.
 * @param seg the head
 * @param[out] info receives the description
 * @param size the caller's sizeof(mo_seg_info) (the mo_seg_get_info() macro passes it):
 *        only the fields that fit are written, so a program built against older headers is
 *        not overrun
 * @return MO_OK or MO_EINVAL (NULL argument)
 */
MO_API int mo_seg_get_info_sized(const mo_seg *seg, mo_seg_info *info, size_t size);
/** mo_seg_get_info_sized() with sizeof the caller's struct. */
#define mo_seg_get_info(seg, info) mo_seg_get_info_sized((seg), (info), sizeof(*(info)))

/** @brief Name of class @p i (from the seg.classes metadata).
 *  @param seg the head @param i class index
 *  @return the name, owned by @p seg, or NULL when out of range */
MO_API const char *mo_seg_class_name(const mo_seg *seg, int i);

/**
 * @brief Bytes of session workspace one run needs for inputs up to
 *        @p max_height x @p max_width at output strides down to @p min_output_stride.
 *
 * Pass the result (or the largest over several heads) as `workspace_bytes` to
 * mo_session_open(), with the same maxima.
 * @param seg the head
 * @param max_height largest input height
 * @param max_width largest input width
 * @param min_output_stride smallest output stride (8, 16 or 32)
 * @param[out] bytes receives the size
 * @return MO_OK;
 *         MO_EINVAL (NULL, sizes outside 1..::MO_MAX_INPUT_SIDE, stride not 8, 16 or 32)
 */
MO_API int mo_seg_workspace_size(const mo_seg *seg, int max_height, int max_width,
                                 int min_output_stride, size_t *bytes);

/**
 * @brief Run the head on the features of one backbone run: class logits at feature
 *        resolution (before the upsampling).
 *
 * @param seg the head
 * @param s the session @p f was computed with; its workspace holds the result
 * @param f features of mo_backbone_run() (level[3] is read)
 * @param[out] logits view of h x w x K logits in the session workspace, packed
 *        (`row_stride` = w * K), valid until the next head run on @p s
 * @return MO_OK;
 *         MO_EINVAL (NULL argument, features with other channels than the head reads,
 *         a session workspace smaller than mo_seg_workspace_size() for these features)
 */
MO_API int mo_seg_logits(const mo_seg *seg, mo_session *s, const mo_features *f,
                         mo_tensor *logits);

/**
 * @brief Bilinear upsampling of logits to @p out_h x @p out_w (as torch
 *        `interpolate(mode="bilinear", align_corners=False)`), argmax per pixel and
 *        optionally softmax probabilities.
 *
 * The upsampled logits are never stored: each output pixel interpolates its K values
 * from the 4 neighbours, so no memory beyond the caller's buffers is used. Ties go to
 * the lower class index (as torch.argmax).
 * @param logits h x w x K, K <= ::MO_SEG_MAX_CLASSES (e.g. from mo_seg_logits())
 * @param out_h, out_w output size, 1..::MO_SEG_MAX_OUTPUT_SIDE
 * @param[out] labels out_h rows of @p label_stride bytes; the class index per pixel
 * @param label_stride bytes from one label row to the next (>= out_w)
 * @param[out] probs NULL, or out_h * out_w * K floats: the softmax of the upsampled
 *        logits, pixel (y, x) class k at `probs[(y * out_w + x) * K + k]`
 * @return MO_OK, MO_EINVAL (NULL, sizes out of range, stride too small)
 */
MO_API int mo_seg_upsample_argmax(const mo_tensor *logits, int out_h, int out_w,
                                  uint8_t *labels, ptrdiff_t label_stride, float *probs);

/**
 * @brief mo_seg_logits() then mo_seg_upsample_argmax(): the label map of one run.
 *
 * Normally @p out_h x @p out_w is the size of the backbone input; another size (e.g. the
 * original image when the input was a resized copy) samples the same logits at that
 * resolution.
 * @param seg the head
 * @param s the session @p f was computed with (workspace)
 * @param f features of mo_backbone_run()
 * @param out_h, out_w size of the label map
 * @param[out] labels out_h rows of @p label_stride bytes
 * @param label_stride bytes from one label row to the next (>= out_w)
 * @param[out] probs NULL, or out_h * out_w * K softmax probabilities
 * @return as mo_seg_logits() and mo_seg_upsample_argmax()
 */
MO_API int mo_seg_run(const mo_seg *seg, mo_session *s, const mo_features *f, int out_h,
                      int out_w, uint8_t *labels, ptrdiff_t label_stride, float *probs);

#ifdef __cplusplus
}
#endif
#endif
