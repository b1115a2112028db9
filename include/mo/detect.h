/**
 * @file detect.h
 * @brief SSDLite detection head on the MobileOne stride-16 and stride-32 maps:
 *        default boxes, box decoding, NMS, and the whole head (torchvision 0.14 semantics).
 *
 * What a run computes (docs REFERENCE.md section 2, torchvision's `SSD` with an
 * `SSDLiteHead`): where the file names them (`det.neck_channels`, weights/FORMAT.md), a
 * neck block on the stride-16 and / or stride-32 map (1x1 conv to m, depthwise 3x3 stride
 * 1, 1x1 conv back, each with BatchNorm and ReLU6); four extra blocks on the stride-32 map
 * (1x1 conv to out/2, depthwise 3x3 stride 2, 1x1 conv to out, each with BatchNorm and
 * ReLU6), then on each of the six
 * maps a classification and a regression block (depthwise 3x3 + BatchNorm + ReLU6, then
 * a 1x1 conv with bias), default boxes, decoding with weights (10, 10, 5, 5), softmax,
 * per-class score threshold and top-k, clipping, class-wise NMS, the best
 * `detections_per_img`, and rescaling to the original image. BatchNorm is folded into the
 * convolutions when the head is opened.
 *
 * Input: the backbone runs (output stride 32) on the image resized to the head's input
 * size (320x320 for SSDLite320) without keeping the aspect ratio: see
 * mo_preprocess_resize() in image.h, with mo_det_normalization().
 *
 * Threads: a ::mo_det is immutable once opened and may be shared by threads. A run uses
 * only the ::mo_session's workspace as scratch (open the session with
 * `workspace_bytes >= mo_det_workspace_size()`), so running never allocates.
 *
 * The building blocks (default boxes, box decoding, NMS, soft-NMS) are pure functions on
 * caller arrays, usable without a model.
 */
#ifndef MO_DETECT_H
#define MO_DETECT_H

#include "mo/backbone.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Most feature maps a head may have. */
#define MO_DET_MAX_LEVELS 8
/** Most aspect ratios per feature map (each gives two boxes: w/h and h/w). */
#define MO_DET_MAX_RATIOS 4

/* ------------------------------------------------------------------ NMS */

/**
 * @brief Greedy non-maximum suppression, as torchvision's `nms` / `batched_nms`.
 *
 * Boxes are visited in decreasing score; a box is kept unless a kept box of the same
 * label overlaps it with IoU > @p iou_thresh (strictly greater: an IoU equal to the
 * threshold keeps the box). Equal scores keep their input order (a stable sort, as
 * torchvision's CPU kernel). IoU is computed in float as torchvision does:
 * `inter / (area_i + area_j - inter)` with `area = (x2 - x1) * (y2 - y1)` and the
 * intersection sides clamped at 0, then compared in double with @p iou_thresh. So a
 * zero-area box has IoU 0 (or NaN against another zero-area box) and is never
 * suppressed nor suppresses; an inverted box (x2 < x1 or y2 < y1) has a negative area
 * and gives whatever that formula gives (torchvision does not check either). NaN scores
 * sort last.
 *
 * @param boxes n boxes, x1 y1 x2 y2 each
 * @param scores n scores
 * @param labels n class labels, or NULL for class-agnostic NMS (every box one class)
 * @param n number of boxes (>= 0)
 * @param iou_thresh boxes with IoU > iou_thresh against a kept box of their label go
 * @param max_keep stop after this many kept boxes (<= 0: no limit). The result is the
 *        prefix of the unlimited result, so this only saves time.
 * @param[out] keep room for n indices (also used as scratch); receives the indices of
 *        the kept boxes, highest score first
 * @param[out] n_keep number of kept boxes
 * @return MO_OK, MO_EINVAL (NULL array with n > 0, n < 0, NULL n_keep)
 */
MO_API int mo_nms(const float *boxes, const float *scores, const int *labels, int n,
                  double iou_thresh, int max_keep, int *keep, int *n_keep);

/**
 * @brief Gaussian soft-NMS (Bodla et al., "Soft-NMS", ICCV 2017).
 *
 * Instead of dropping overlapping boxes, it lowers their scores: repeatedly take the
 * remaining box with the highest (current) score, keep it, and multiply the score of
 * every remaining box of the same label by `exp(-iou^2 / sigma)`; boxes whose score is
 * no longer > @p score_thresh are dropped. Ties are taken in input order. The kept
 * boxes come out in decreasing current score.
 *
 * @param boxes n boxes, x1 y1 x2 y2
 * @param[in,out] scores n scores; kept boxes get their decayed score, others are
 *        left with whatever value they had when dropped
 * @param labels n labels or NULL (class-agnostic)
 * @param n number of boxes
 * @param sigma Gaussian width (> 0), 0.5 in the paper
 * @param score_thresh boxes must keep a score > this
 * @param max_keep stop after this many (<= 0: no limit)
 * @param[out] keep room for n ints; receives kept indices
 * @param[out] n_keep number kept
 * @return MO_OK, MO_EINVAL (NULL arrays, n < 0, sigma <= 0)
 */
MO_API int mo_soft_nms(const float *boxes, float *scores, const int *labels, int n,
                       double sigma, double score_thresh, int max_keep, int *keep,
                       int *n_keep);

/* -------------------------------------------------------- default boxes */

/**
 * @brief Default boxes (anchors) of SSD, as torchvision's `DefaultBoxGenerator`
 *        (steps = None: the grid of each map spans the whole input).
 */
typedef struct mo_anchor_config {
    size_t size;                                 /**< sizeof(mo_anchor_config), set by
                                                      mo_anchor_config_default() */
    int num_levels;                              /**< feature maps, 1..MO_DET_MAX_LEVELS */
    int num_ratios[MO_DET_MAX_LEVELS];           /**< aspect ratios of each map, 0..MO_DET_MAX_RATIOS */
    double ratios[MO_DET_MAX_LEVELS][MO_DET_MAX_RATIOS]; /**< e.g. {2, 3} (> 0) */
    double min_ratio;                            /**< smallest scale, default 0.2 */
    double max_ratio;                            /**< largest scale, default 0.95 */
    int num_scales;                              /**< 0: scales from min/max_ratio; else
                                                      num_levels + 1 explicit scales */
    double scales[MO_DET_MAX_LEVELS + 1];        /**< explicit scales, when num_scales > 0 */
    int clip;                                    /**< clamp w and h to [0, 1]; default 1 */
} mo_anchor_config;

/** @brief SSDLite320 defaults: 6 maps, ratios {2, 3} each, scales 0.2 .. 0.95, clip.
 *  @param[out] c the configuration to fill
 * @param size the caller's sizeof(mo_anchor_config) (the mo_anchor_config_default() macro passes
 *        it): only the fields that fit are written, `size` included, so a program built
 *        against older headers is not overrun */
MO_API void mo_anchor_config_default_sized(mo_anchor_config *c, size_t size);
/** mo_anchor_config_default_sized() with sizeof the caller's struct. */
#define mo_anchor_config_default(c) mo_anchor_config_default_sized((c), sizeof(*(c)))

/**
 * @brief Boxes per location of map @p level: 2 + 2 * num_ratios[level].
 * @param c the configuration
 * @param level map index
 * @return the count, or MO_EINVAL (NULL, level out of range)
 */
MO_API int mo_anchors_per_location(const mo_anchor_config *c, int level);

/**
 * @brief Generate the default boxes of every map, xyxy in input pixels.
 *
 * Scales: with L maps, `s_k = min + (max - min) * k / (L - 1)` for k < L and 1.0 after
 * (L = 1: min, max). Per location of map k the boxes are (s_k, s_k),
 * (sqrt(s_k s_{k+1}), same), then for each ratio r: (s_k sqrt(r), s_k / sqrt(r)) and the
 * swapped pair; w and h clamped to [0, 1] when `clip`. Centre of cell (i, j):
 * ((j + 0.5) / grid_w, (i + 0.5) / grid_h). Box = (centre -/+ size / 2) * (image_w,
 * image_h), in float32 like torchvision. Order: map, row, column, box.
 *
 * @param c the configuration
 * @param grid_h,grid_w rows and columns of each of the c->num_levels maps (>= 1)
 * @param image_h,image_w input size in pixels (>= 1)
 * @param[out] out room for 4 * cap floats
 * @param cap capacity in boxes
 * @param[out] n receives the number of boxes (also when cap is too small)
 * @return MO_OK, MO_EINVAL (bad config or sizes, cap too small: *n says how many are needed)
 */
MO_API int mo_anchors_generate(const mo_anchor_config *c, const int *grid_h,
                               const int *grid_w, int image_h, int image_w, float *out,
                               int cap, int *n);

/* ------------------------------------------------------------ decoding */

/**
 * @brief Decode regression codes against default boxes, as torchvision's
 *        `BoxCoder.decode_single` (no +1 anywhere), in float32.
 *
 * w = x2 - x1, cx = x1 + 0.5 w (same for y); dx = code0 / wx, dy = code1 / wy,
 * dw = min(code2 / ww, clip), dh = min(code3 / wh, clip); centre + d * size,
 * size * exp(d); corners centre -/+ 0.5 size.
 * @param codes n x 4 codes (dx, dy, dw, dh)
 * @param anchors n x 4 boxes, xyxy
 * @param n number of boxes (>= 0)
 * @param weights (wx, wy, ww, wh); SSD uses (10, 10, 5, 5)
 * @param clip upper bound of dw and dh; torchvision: log(1000 / 16)
 * @param[out] boxes n x 4 decoded xyxy (may alias @p codes)
 * @return MO_OK or MO_EINVAL
 */
MO_API int mo_box_decode(const float *codes, const float *anchors, int n,
                         const float weights[4], float clip, float *boxes);

/* --------------------------------------------------------------- head */

/** A loaded detection head (opaque; immutable, shared by threads). */
typedef struct mo_det mo_det;

/** One detection. */
typedef struct mo_detection {
    float x1;             /**< left edge, in pixels of the original image */
    float y1;             /**< top edge */
    float x2;             /**< right edge */
    float y2;             /**< bottom edge */
    float score;          /**< class probability (soft-NMS: the decayed score) */
    int label;            /**< class index, 1 .. num_classes - 1 (0 is background) */
} mo_detection;

/**
 * Post-processing settings. Initialise with mo_det_default_settings(): torchvision's
 * SSDLite320 values, which reproduce torchvision exactly. The variants (class-agnostic
 * NMS, soft-NMS, at most N classes per box) are off by default.
 */
typedef struct mo_det_settings {
    size_t size;             /**< sizeof(mo_det_settings), for ABI checks */
    double score_thresh;     /**< keep a class score > this (compared in float32); 0.001 */
    int topk_candidates;     /**< per class, keep the best this many after the threshold; 300 */
    double nms_thresh;       /**< NMS drops IoU > this; 0.55 */
    int detections_per_img;  /**< keep the best this many after NMS; 300 */
    /** 0 (default): NMS per class, as torchvision's batched_nms. 1: one NMS over all
     *  classes, so a box also suppresses overlapping boxes of other classes (one
     *  label per object, when classes are mutually exclusive). */
    int class_agnostic;
    /** 0 (default): hard NMS. > 0: Gaussian soft-NMS with this sigma (0.5 is the
     *  paper's value) instead: overlapping boxes are down-weighted by
     *  exp(-iou^2 / sigma) rather than dropped, and dropped only when their score is no
     *  longer > score_thresh (nms_thresh is then unused). Helps crowded scenes. */
    double soft_nms_sigma;
    /** 0 (default): no limit (an anchor may yield a box for every class above the
     *  threshold). N > 0: each anchor proposes only its N highest-scoring classes, so
     *  one object does not come out as several labels. */
    int max_classes_per_box;
} mo_det_settings;

/** @brief Fill @p s with the defaults (torchvision's SSDLite320 values).
 *  @param[out] s settings to fill
 * @param size the caller's sizeof(mo_det_settings) (the mo_det_default_settings() macro passes
 *        it): only the fields that fit are written, `size` included, so a program built
 *        against older headers is not overrun */
MO_API void mo_det_default_settings_sized(mo_det_settings *s, size_t size);
/** mo_det_default_settings_sized() with sizeof the caller's struct. */
#define mo_det_default_settings(s) mo_det_default_settings_sized((s), sizeof(*(s)))

/**
 * @brief Load a detection head (tensors and metadata under "det.", weights/FORMAT.md)
 *        from @p f and check that it fits @p bb.
 *
 * @p f may hold the head only (`mo.contents` ["det"]) or backbone and head. The head is
 * paired with @p bb by the rule every head follows (weights/FORMAT.md, "Pairing a head
 * with its backbone"): a combined file's own backbone tensors must be @p bb; a head-only
 * file must name @p bb with `mo.variant` and `mo.backbone_digest`.
 * Default boxes are generated here for the file's input size.
 * @param[out] out receives the head; close with mo_det_close()
 * @param f an open model file; it may be closed once this returns
 * @param bb the backbone the head runs on
 * @param s settings used by mo_det_run() when it is given none (NULL: defaults); they
 *        also size the workspace (topk_candidates)
 * @return MO_OK; MO_EINVAL (NULL, bad settings or settings.size); MO_ENOMEM; MO_EFORMAT (no `det`
 *         in mo.contents, missing or malformed metadata or tensor, metadata outside its
 *         range (weights/FORMAT.md), BatchNorm variance not positive); MO_EUNSUPPORTED
 *         (more classes than mo_limits.max_categories, or a det.input_size whose session,
 *         input and workspace would exceed mo_limits.model_memory_bytes); MO_EMISMATCH (the head names another backbone, or its channels,
 *         number of maps or anchors per location do not fit the backbone or its own
 *         configuration); mo_last_error() names the tensor or key and both values.
 */
MO_API int mo_det_open(mo_det **out, const mo_file *f, const mo_backbone *bb,
                       const mo_det_settings *s);

/** @brief Free the head and set `*d` to NULL. Accepts NULL. @param d the head */
MO_API void mo_det_close(mo_det **d);

/** @brief Number of classes K, background (index 0) included.
 *  @param d the head @return K */
MO_API int mo_det_num_classes(const mo_det *d);

/** @brief Name of class @p i (0 is the background).
 *  @param d the head @param i class index
 *  @return the name, owned by @p d, or NULL when out of range */
MO_API const char *mo_det_class_name(const mo_det *d, int i);

/** @brief Dataset category id of class @p i, for COCO results files and `mo-eval coco`:
 *  the file's `det.category_ids[i - 1]` (a head trained on a user dataset,
 *  tools/train_head.py), or @p i itself when the file has none (torchvision's 91-class COCO
 *  indexing, where class index = COCO category id).
 *  @param d the head @param i class index, 1 .. K - 1
 *  @return the id (>= 0), or -1 for the background (0), an index out of range or NULL */
MO_API int mo_det_category_id(const mo_det *d, int i);

/** @brief Network input size (the backbone input), e.g. 320 x 320.
 *  @param d the head @param[out] width receives the width @param[out] height receives the height */
MO_API void mo_det_input_size(const mo_det *d, int *width, int *height);

/** @brief Per-channel mean and std (RGB, 0..1 scale) of the input normalization.
 *  @param d the head @param[out] mean receives 3 means @param[out] std receives 3 deviations */
MO_API void mo_det_normalization(const mo_det *d, float mean[3], float std[3]);

/** @brief Number of default boxes. @param d the head @return N (3234 for SSDLite320) */
MO_API int mo_det_num_anchors(const mo_det *d);

/** @brief The default boxes. @param d the head
 *  @return N x 4 floats xyxy in input pixels; owned by @p d */
MO_API const float *mo_det_anchors(const mo_det *d);

/**
 * @brief Bytes of session workspace a run needs (for mo_session_settings.workspace_bytes).
 * @param d the head
 * @return the size in bytes
 */
MO_API size_t mo_det_workspace_size(const mo_det *d);

/** Raw head outputs of one image: views into the session workspace. */
typedef struct mo_det_raw {
    int num_anchors;          /**< N */
    int num_classes;          /**< K */
    const float *logits;      /**< N x K class logits (before softmax) */
    const float *regression;  /**< N x 4 codes (dx, dy, dw, dh), before the box weights */
} mo_det_raw;

/**
 * @brief Extra blocks and heads on the features of one backbone run (no post-processing).
 * @param d the head
 * @param s the session that computed @p f; its workspace is used
 * @param f features of mo_backbone_run() at output stride 32 on an input of
 *        mo_det_input_size()
 * @param[out] out views valid until the next run on @p s
 * @return MO_OK; MO_EINVAL (NULL, features of another size or width, workspace of @p s
 *         missing or smaller than mo_det_workspace_size())
 */
MO_API int mo_det_run_raw(const mo_det *d, mo_session *s, const mo_features *f,
                          mo_det_raw *out);

/**
 * @brief Post-processing of raw outputs: softmax, threshold, top-k, decoding, clipping,
 *        NMS, best detections, rescaling to an @p image_w x @p image_h image.
 *
 * @p logits and @p regression may be the views of mo_det_run_raw() on the same session
 * or any caller arrays of that shape (e.g. outputs of another implementation).
 * @param d the head
 * @param s the calling thread's session (workspace)
 * @param logits N x K class logits
 * @param regression N x 4 box codes
 * @param settings NULL for those given to mo_det_open(); a smaller `size` (older headers)
 *        takes the open-time values for the fields it does not cover
 * @param image_w,image_h size of the original image (boxes are scaled per axis)
 * @param[out] out room for @p cap detections, highest score first
 * @param cap capacity of @p out
 * @param[out] n number written: min(cap, number of detections)
 * @return MO_OK; MO_EINVAL (NULL, sizes < 1, bad settings or settings.size, topk_candidates
 *         above the open-time value, workspace too small)
 */
MO_API int mo_det_postprocess(const mo_det *d, mo_session *s, const float *logits,
                              const float *regression, const mo_det_settings *settings,
                              int image_w, int image_h, mo_detection *out, int cap, int *n);

/**
 * @brief mo_det_run_raw() then mo_det_postprocess(): the detections of one image.
 * @param d the head
 * @param s the session that computed @p f
 * @param f features of mo_backbone_run() (output stride 32, input of mo_det_input_size())
 * @param settings NULL for those given to mo_det_open()
 * @param image_w,image_h size of the original image
 * @param[out] out room for @p cap detections, highest score first
 * @param cap capacity of @p out
 * @param[out] n number written
 * @return as the two calls
 */
MO_API int mo_det_run(const mo_det *d, mo_session *s, const mo_features *f,
                      const mo_det_settings *settings, int image_w, int image_h,
                      mo_detection *out, int cap, int *n);

#ifdef __cplusplus
}
#endif
#endif
