/**
 * @file pipeline.h
 * @brief Multi-task pipeline: one backbone, any set of heads (classification, detection,
 *        segmentation), one call per frame; frames from memory (RGB, BGR, RGBA, BGRA,
 *        NV12, NV21, I420).
 *
 * What is shared and what is recomputed (default, `share_backbone = 1`):
 *
 * - Detection and segmentation read one **shared pass**: the frame is converted to RGB8,
 *   normalized and resized (bilinear, no aspect ratio kept: mo_preprocess_resize(), the
 *   detection preprocessing) to the shared input size, which is the detection head's
 *   input size (320 x 320 for SSDLite320), or `shared_width` x `shared_height` without a
 *   detection head. The backbone runs once on it at output stride 32: stem and stages
 *   1..4 feed detection. A segmentation head trained at output stride 16 (8) then gets
 *   only stage4 (stages 3 and 4) recomputed, dilated, from the shared stage3 (stage2)
 *   output with mo_backbone_run_from(); the result is identical to a full dilated run.
 *   The label map is sampled back at the frame's size.
 * - Classification keeps its own exact preprocessing by default (Pillow-exact resize of
 *   the short side, centre crop, as mo-classify; torchvision's ImageNet evaluation), which
 *   is a different input, so it gets its own backbone pass (224 x 224: the cheapest of
 *   the passes). With `classify_shared = 1` it reads the pooled stage4 of the shared pass
 *   instead (no extra pass; the whole frame stretched to the shared size is classified,
 *   so the scores differ from mo-classify's).
 * - Heads run one after the other on the session's workspace, each layer on the session's
 *   threads (mo_session_open()).
 *
 * With `share_backbone = 0` every head gets its own conversion, preprocessing and full
 * backbone pass (what three separate apps would do): the baseline bench/bench_pipeline
 * compares against. Results are identical between the two modes.
 *
 * Threads: a ::mo_pipeline is immutable once opened and may be shared by threads; each
 * thread runs it through its own ::mo_pipeline_session.
 *
 * Frames: any size from 1 x 1 up to ::MO_MAX_INPUT_SIDE a side. YUV 4:2:0 (NV12: Y plane,
 * then one plane of interleaved U,V samples; NV21: V,U; I420: Y, U and V planes, what
 * video decoders give as `yuv420p`) is converted with BT.601 limited range, the integer
 * formula of OpenCV's `COLOR_YUV2RGB_NV12` (see mo_frame_to_rgb()); the three layouts
 * give identical RGB for the same samples.
 */
#ifndef MO_PIPELINE_H
#define MO_PIPELINE_H

#include "mo/backbone.h"
#include "mo/classify.h"
#include "mo/detect.h"
#include "mo/image.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Pixel formats of a ::mo_frame. */
typedef enum mo_frame_format {
    MO_FRAME_RGB = 0,  /**< 3 bytes per pixel, R G B */
    MO_FRAME_BGR = 1,  /**< 3 bytes per pixel, B G R */
    MO_FRAME_RGBA = 2, /**< 4 bytes per pixel, R G B A (alpha ignored) */
    MO_FRAME_BGRA = 3, /**< 4 bytes per pixel, B G R A (alpha ignored) */
    MO_FRAME_NV12 = 4, /**< YUV 4:2:0: Y plane, then interleaved U V at half resolution */
    MO_FRAME_NV21 = 5, /**< YUV 4:2:0: Y plane, then interleaved V U at half resolution */
    MO_FRAME_I420 = 6  /**< YUV 4:2:0 planar: Y plane, U plane, V plane (U and V at half
                            resolution); FFmpeg's `yuv420p` */
} mo_frame_format;

/**
 * @brief A picture in caller memory; never owned by the SDK.
 *
 * Packed formats use plane 0 only: `height` rows of `stride[0]` bytes. NV12/NV21 use
 * plane 0 for luma (`height` rows of at least `width` bytes) and plane 1 for chroma
 * (`(height + 1) / 2` rows of at least `2 * ((width + 1) / 2)` bytes); pixel (x, y)
 * takes the chroma pair at column `2 * (x / 2)` of chroma row `y / 2`. I420 uses plane 0
 * for luma as NV12, plane 1 for U and plane 2 for V (each `(height + 1) / 2` rows of at
 * least `(width + 1) / 2` bytes); pixel (x, y) takes column `x / 2` of row `y / 2` of each.
 */
typedef struct mo_frame {
    int format;             /**< a ::mo_frame_format */
    int width;              /**< pixels per row, >= 1 */
    int height;             /**< rows, >= 1 */
    const uint8_t *data[3]; /**< planes (plane 1: NV12/NV21/I420 chroma; plane 2: I420 V) */
    ptrdiff_t stride[3];    /**< bytes from one row of a plane to the next */
} mo_frame;

/**
 * @brief Convert a frame to packed RGB8 (no allocation).
 *
 * YUV: `c = max(Y - 16, 0) * 1220542`, `d = U - 128`, `e = V - 128`,
 * `R = (c + 1673527 e + 2^19) >> 20`, `G = (c - 852492 e - 409993 d + 2^19) >> 20`,
 * `B = (c + 2116026 d + 2^19) >> 20`, each clamped to 0..255 (BT.601 limited range:
 * 1.164 (Y - 16) + 1.596 (V - 128) etc. in 20-bit fixed point, as OpenCV's
 * `cvtColor(COLOR_YUV2RGB_NV12)`). Packed formats are reordered; alpha is dropped.
 * @param f the frame
 * @param[out] rgb room for `f->height` rows of @p rgb_stride bytes
 * @param rgb_stride bytes from one output row to the next (>= 3 * width)
 * @return MO_OK, MO_EINVAL (NULL, unknown format, size out of 1..::MO_MAX_INPUT_SIDE,
 *         a stride too small)
 */
MO_API int mo_frame_to_rgb(const mo_frame *f, uint8_t *rgb, ptrdiff_t rgb_stride);

/**
 * @brief Convert a frame to a new RGB8 ::mo_image (mo_frame_to_rgb() into a fresh image).
 * @param f the frame
 * @param[out] out receives the image; free it with mo_image_free()
 * @return MO_OK, MO_EINVAL (as mo_frame_to_rgb()), MO_ENOMEM
 */
MO_API int mo_frame_to_image(const mo_frame *f, mo_image *out);

/** A backbone and its heads (opaque; immutable, shared by threads). */
typedef struct mo_pipeline mo_pipeline;
/** Per-thread run state of a pipeline (opaque). */
typedef struct mo_pipeline_session mo_pipeline_session;

/** Largest top-k list of a ::mo_pipeline_result. */
#define MO_PIPELINE_MAX_TOPK 16

/** Settings of mo_pipeline_open(). Initialise with mo_pipeline_default_settings(). */
typedef struct mo_pipeline_settings {
    size_t size;          /**< sizeof(mo_pipeline_settings), for ABI checks */
    int share_backbone;   /**< 1 (default): one shared pass (see the file comment);
                               0: one full pass per head (the baseline) */
    int classify_shared;  /**< 0 (default): classification on its own exact crop;
                               1: on the pooled stage4 of the shared pass */
    int classify;         /**< 1 (default): run the classification head of the backbone
                               file when it has one (cls. tensors); 0: do not */
    int shared_width;     /**< shared input size without a detection head; default 512 */
    int shared_height;    /**< see shared_width; default 512 */
    int seg_output_stride; /**< 0 (default): the stride the segmentation head was trained
                                at; else 8, 16 or 32 */
    int top_k;            /**< classes in the top-k list, 1..::MO_PIPELINE_MAX_TOPK; 5 */
    int threads;          /**< threads of each session's backbone passes, the calling
                               thread included (mo_session_settings.threads): 1
                               (default), 0 = one per CPU, at most ::MO_MAX_THREADS; the
                               results do not depend on it. A session may set its own
                               (mo_pipeline_session_settings.threads) */
} mo_pipeline_settings;

/** @brief Fill @p s with the defaults. @param[out] s settings to fill
 * @param size the caller's sizeof(mo_pipeline_settings) (the mo_pipeline_default_settings() macro passes
 *        it): only the fields that fit are written, `size` included, so a program built
 *        against older headers is not overrun */
MO_API void mo_pipeline_default_settings_sized(mo_pipeline_settings *s, size_t size);
/** mo_pipeline_default_settings_sized() with sizeof the caller's struct. */
#define mo_pipeline_default_settings(s) mo_pipeline_default_settings_sized((s), sizeof(*(s)))

/**
 * @brief Open a backbone and its heads.
 *
 * The backbone comes from @p backbone_file (which may also hold a classification head,
 * used when `classify` is set). Each head file is opened and its kind read from its
 * `mo.contents` metadata (`"cls"`, `"det"` or `"seg"`); each is checked against the
 * backbone it names (variant and digest, see mo_det_open()). At most one head of each kind.
 * @param[out] out receives the pipeline (NULL on failure); close with mo_pipeline_close()
 * @param backbone_file path of the backbone model file
 * @param head_files paths of head files (may be NULL when @p n is 0)
 * @param n number of head files, at most one per head kind (0..3 today)
 * @param s settings, or NULL for defaults
 * @return MO_OK; MO_EINVAL (NULL, bad settings, two heads of one kind, a file that holds
 *         no head, segmentation support not built in); MO_EIO, MO_EFORMAT,
 *         MO_EUNSUPPORTED (files; the session the heads need together over
 *         mo_limits.model_memory_bytes); MO_EMISMATCH (a head of another backbone); MO_ENOMEM.
 *         mo_last_error() names the file.
 */
MO_API int mo_pipeline_open(mo_pipeline **out, const char *backbone_file,
                            const char *const *head_files, int n,
                            const mo_pipeline_settings *s);

/** @brief Free the pipeline and set `*p` to NULL; no session of it may remain open.
 *  Accepts NULL. @param p the pipeline */
MO_API void mo_pipeline_close(mo_pipeline **p);

/** @brief The backbone. @param p the pipeline @return owned by @p p; NULL when @p p is */
MO_API const mo_backbone *mo_pipeline_backbone(const mo_pipeline *p);

/** @brief The classification head. @param p the pipeline
 *  @return owned by @p p; NULL when the pipeline has none */
MO_API const mo_cls *mo_pipeline_cls(const mo_pipeline *p);

/** @brief The detection head. @param p the pipeline @return owned by @p p, or NULL */
MO_API const mo_det *mo_pipeline_det(const mo_pipeline *p);

/**
 * @brief Name of segmentation class @p i.
 * @param p the pipeline
 * @param i class index
 * @return the name, owned by @p p; NULL without a segmentation head or out of range
 */
MO_API const char *mo_pipeline_seg_class_name(const mo_pipeline *p, int i);

/** @brief Number of segmentation classes. @param p the pipeline
 *  @return the count, 0 without a segmentation head */
MO_API int mo_pipeline_seg_num_classes(const mo_pipeline *p);

/**
 * Settings of mo_pipeline_session_open(). Initialise with
 * mo_pipeline_session_default_settings(); a caller built against older headers keeps its
 * smaller `size` (the "Settings structs" rule in common.h).
 */
typedef struct mo_pipeline_session_settings {
    size_t size;   /**< sizeof(mo_pipeline_session_settings), set by the default_settings */
    int threads;   /**< threads of this session's backbone passes and heads, the calling
                        thread included (mo_session_settings.threads): -1 (default) takes
                        mo_pipeline_settings.threads; 0 = one per CPU; 1..::MO_MAX_THREADS.
                        The results do not depend on it. */
} mo_pipeline_session_settings;

/** @brief Fill @p s with the defaults. @param[out] s settings to fill (NULL: nothing)
 * @param size the caller's sizeof(mo_pipeline_session_settings) (the mo_pipeline_session_default_settings() macro passes
 *        it): only the fields that fit are written, `size` included, so a program built
 *        against older headers is not overrun */
MO_API void mo_pipeline_session_default_settings_sized(mo_pipeline_session_settings *s, size_t size);
/** mo_pipeline_session_default_settings_sized() with sizeof the caller's struct. */
#define mo_pipeline_session_default_settings(s) mo_pipeline_session_default_settings_sized((s), sizeof(*(s)))

/**
 * @brief Open a per-thread session: backbone session, head workspace (the largest of the
 *        heads' `*_workspace_size()`), input tensors; all allocated here.
 * @param[out] out receives the session; close with mo_pipeline_session_close()
 * @param p the pipeline; must outlive the session
 * @param s settings, or NULL for defaults
 * @return MO_OK, MO_EINVAL (NULL, settings.size, threads out of range), MO_ENOMEM
 *         (memory, or the backbone's worker threads could not be started)
 */
MO_API int mo_pipeline_session_open(mo_pipeline_session **out, const mo_pipeline *p,
                                    const mo_pipeline_session_settings *s);

/** @brief Free a session and set `*s` to NULL. Accepts NULL. @param s the session */
MO_API void mo_pipeline_session_close(mo_pipeline_session **s);

/**
 * @brief Outputs of one run. The caller provides the buffers (detections, labels) and
 *        their capacities; the run fills the rest.
 */
typedef struct mo_pipeline_result {
    size_t size;                 /**< sizeof(mo_pipeline_result), set by the caller */
    /* classification */
    int num_top;                 /**< entries in @c top (0: no classification head) */
    mo_class_score top[MO_PIPELINE_MAX_TOPK]; /**< best classes, highest first */
    /* detection */
    mo_detection *detections;    /**< caller array, or NULL to skip detection output */
    int det_capacity;            /**< room in @c detections */
    int num_detections;          /**< written: min(capacity, detections), highest first */
    /* segmentation */
    uint8_t *labels;             /**< caller buffer of frame height rows of
                                      @c label_stride bytes, or NULL to skip */
    ptrdiff_t label_stride;      /**< bytes per label row, >= frame width */
    int has_labels;              /**< 1 when @c labels was written */
    /* timing of this run, milliseconds (monotonic clock) */
    double ms_convert;           /**< frame to RGB8 */
    double ms_preprocess;        /**< normalization and resizing of every input */
    double ms_backbone;          /**< every backbone pass, recomputed stages included */
    double ms_heads;             /**< the heads and their post-processing */
    double ms_total;             /**< the whole call */
} mo_pipeline_result;

/**
 * @brief Run every head on one frame (see the file comment for what is shared).
 *
 * Never allocates, except for a frame larger than any before on this session (its RGB8
 * copy grows; a packed ::MO_FRAME_RGB frame, `stride[0]` = 3 x width, is read in place
 * without a copy) and the temporary resized image of the classification preprocessing.
 * @param s the calling thread's session
 * @param frame the frame (see ::mo_frame)
 * @param[in,out] out the caller sets `size`, `detections`/`det_capacity` and
 *        `labels`/`label_stride` (NULL to skip a head's output; the head still runs when
 *        another output needs its pass); the call sets the rest. A struct of older headers
 *        (a smaller `size`, the settings rule of common.h) gets the fields it has; bytes
 *        past its `size` are neither read nor written.
 * @return MO_OK; MO_EINVAL (NULL, bad frame, `out->size` above sizeof(mo_pipeline_result) or
 *         below the end of `num_top`, label stride below
 *         the frame width, negative capacity); MO_ENOMEM; MO_EUNSUPPORTED (frame over
 *         the size limits of the preprocessing)
 */
MO_API int mo_pipeline_run(mo_pipeline_session *s, const mo_frame *frame,
                           mo_pipeline_result *out);

#ifdef __cplusplus
}
#endif
#endif
