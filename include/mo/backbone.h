/**
 * @file backbone.h
 * @brief The MobileOne backbone (s0..s4): load, reparameterize, run.
 *
 * A ::mo_backbone is immutable after mo_backbone_open() and may be shared by any
 * number of threads. Each thread runs it through its own ::mo_session, which owns
 * all scratch memory (sized once at open: running never allocates).
 */
#ifndef MO_BACKBONE_H
#define MO_BACKBONE_H

#include "mo/common.h"
#include "mo/file.h"
#include "mo/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/** A loaded, reparameterized backbone (opaque; immutable, shared by threads). */
typedef struct mo_backbone mo_backbone;
/** Per-thread run state of a backbone: feature maps and scratch memory (opaque). */
typedef struct mo_session mo_session;

/** Feature levels of a run (outputs of stages 1..4). */
#define MO_NUM_LEVELS 4

/**
 * @brief Feature maps of one run: stage1..stage4 outputs (nominal strides 4, 8, 16, 32).
 *
 * Views into session memory, valid until the next run on the same session.
 * With output stride 16 the stage4 map keeps stride 16; with 8, stage3 and stage4 keep 8.
 */
typedef struct mo_features {
    mo_tensor level[MO_NUM_LEVELS]; /**< level[i] is the output of stage i+1 */
    int stride[MO_NUM_LEVELS];      /**< input pixels per feature pixel, per level */
    const float *pooled;            /**< global average of level[3], level[3].c floats */
} mo_features;

/** Settings for mo_backbone_open(). Initialise with mo_backbone_default_settings(). */
typedef struct mo_backbone_settings {
    size_t size;          /**< sizeof(mo_backbone_settings), for ABI checks */
    const char *prefix;   /**< tensor name prefix in the file; default "backbone." */
} mo_backbone_settings;

/** @brief Fill @p s with defaults. @param[out] s settings to fill (NULL: nothing)
 * @param size the caller's sizeof(mo_backbone_settings) (the mo_backbone_default_settings() macro passes
 *        it): only the fields that fit are written, `size` included, so a program built
 *        against older headers is not overrun */
MO_API void mo_backbone_default_settings_sized(mo_backbone_settings *s, size_t size);
/** mo_backbone_default_settings_sized() with sizeof the caller's struct. */
#define mo_backbone_default_settings(s) mo_backbone_default_settings_sized((s), sizeof(*(s)))

/**
 * @brief Build a backbone from a model file holding fused (`reparam_conv`) or
 *        train-time (`rbr_conv`, `rbr_scale`, `rbr_skip`) weights.
 *
 * The variant comes from the file's "mo.variant" metadata; every tensor is checked
 * against the architecture. Train-time branches are folded (BatchNorm with "mo.bn_eps",
 * default 1e-5; 1x1 padded to 3x3; identity) into one conv per block here. Each module
 * is fused or train-time on its own: a module holding both kinds of tensors is refused
 * (a file whose modules differ in form is accepted). Every tensor under the prefix must
 * belong to the variant; tensors outside the prefix (e.g. "cls.") are ignored.
 * @param[out] out receives the backbone (NULL on failure); close with mo_backbone_close()
 * @param f an open model file; it may be closed once this returns
 * @param s settings, or NULL for defaults
 * @return MO_OK, MO_EINVAL (NULL, settings.size), MO_ENOMEM, MO_EFORMAT (missing tensor or
 *         "mo.variant", tensor the variant does not have, fused and train-time tensors in
 *         one module, "mo.bn_eps", "mo.mean" or "mo.std" malformed or outside its range
 *         (weights/FORMAT.md), running_var + eps <= 0), MO_EMISMATCH (tensor
 *         shape), MO_EUNSUPPORTED (unknown variant, "mo.arch" other than "mobileone");
 *         mo_last_error() names the tensor or field
 */
MO_API int mo_backbone_open(mo_backbone **out, const mo_file *f,
                            const mo_backbone_settings *s);

/** @brief Free a backbone and set `*bb` to NULL. No session of it may remain open.
 *  @param bb the backbone (NULL and `*bb == NULL` accepted) */
MO_API void mo_backbone_close(mo_backbone **bb);

/** @brief Variant name. @param bb the backbone @return "s0".."s4", NULL when @p bb is NULL */
MO_API const char *mo_backbone_variant(const mo_backbone *bb);

/** @brief Channels of a feature level. @param bb the backbone @param level 0..3
 *  @return the channels, or MO_EINVAL (NULL, level out of range) */
MO_API int mo_backbone_channels(const mo_backbone *bb, int level);

/** @brief Digest of the backbone weights it was built from (see mo_file_digest()).
 *  @param bb the backbone
 *  @return 16 hex digits owned by @p bb; NULL when @p bb is NULL */
MO_API const char *mo_backbone_digest(const mo_backbone *bb);

/** Settings for mo_session_open(). Initialise with mo_session_default_settings(). */
typedef struct mo_session_settings {
    size_t size;               /**< sizeof(mo_session_settings) */
    int max_height;            /**< largest input height the session accepts; default 224 */
    int max_width;             /**< largest input width; default 224 */
    int min_output_stride;     /**< smallest output stride runs will ask for (8, 16, 32); default 32 */
    size_t workspace_bytes;    /**< scratch for the heads run with this session, allocated at
                                    open (e.g. the largest of the heads' `*_workspace_size()`);
                                    default 0 */
    int threads;               /**< threads that run each backbone and head layer, the
                                    calling thread included: 1 (default) runs everything
                                    on the caller;
                                    n > 1 starts n - 1 workers at open; 0 = one per CPU the
                                    process may use; at most MO_MAX_THREADS. See
                                    mo_session_open() for the rules. */
} mo_session_settings;

/** @brief Fill @p s with defaults. @param[out] s settings to fill (NULL: nothing)
 * @param size the caller's sizeof(mo_session_settings) (the mo_session_default_settings() macro passes
 *        it): only the fields that fit are written, `size` included, so a program built
 *        against older headers is not overrun */
MO_API void mo_session_default_settings_sized(mo_session_settings *s, size_t size);
/** mo_session_default_settings_sized() with sizeof the caller's struct. */
#define mo_session_default_settings(s) mo_session_default_settings_sized((s), sizeof(*(s)))

/** Largest input side a session accepts. */
#define MO_MAX_INPUT_SIDE 8192

/** Most threads a session runs (mo_session_settings.threads). */
#define MO_MAX_THREADS 64

/**
 * @brief Open a per-thread session on @p bb, allocating all scratch memory.
 *
 * Threads: with `threads` > 1 the session starts `threads` - 1 worker threads here, owned
 * by the session and joined by mo_session_close(). mo_backbone_run() then splits every
 * layer's output rows (pixels, for the 1x1 convolutions) between the calling thread and
 * the workers, and returns when all are done; the features are bit-identical for every
 * thread count (also 1). Between layers the workers spin briefly, then sleep until the
 * next run: a run makes no allocation. Rules:
 * - a session, threaded or not, is still used by one thread at a time (the workers are
 *   internal); to run several images at once, open one session per calling thread;
 * - the threads of all sessions running at the same time should not exceed the CPUs, or
 *   they wait for each other;
 * - the heads' convolutions (mo_seg_logits(), mo_seg_run() with its upsampling, the
 *   detection head's convolutions) run on the same threads, split by output rows (the
 *   segmentation head's pooled mean by channels), with outputs bit-identical for every
 *   thread count; the detection post-processing (softmax, decoding, NMS) runs on the
 *   calling thread.
 * @param[out] out receives the session; close it with mo_session_close() before @p bb
 * @param bb the backbone the session runs
 * @param s settings or NULL for defaults
 * @return MO_OK, MO_EINVAL (sizes outside 1..MO_MAX_INPUT_SIDE, bad stride, threads
 *         outside 0..MO_MAX_THREADS), MO_EUNSUPPORTED (the buffers and workspace would
 *         exceed mo_limits.session_memory_bytes; checked before allocating), MO_ENOMEM
 *         (memory, or the workers could not be started)
 */
MO_API int mo_session_open(mo_session **out, const mo_backbone *bb,
                           const mo_session_settings *s);

/**
 * @brief The session's head workspace: `workspace_bytes` bytes, 64-byte aligned, owned by
 *        the session. Heads use it as scratch during their run; it never holds features.
 * @param s the session
 * @param[out] bytes receives its size (may be NULL)
 * @return the workspace, or NULL when the session was opened without one
 */
MO_API void *mo_session_workspace(mo_session *s, size_t *bytes);

/**
 * @brief Threads the session runs each layer on (the caller included): the `threads`
 *        setting, with 0 resolved to the CPU count. 1 when it has no workers.
 * @param s the session
 * @return the count, or MO_EINVAL when @p s is NULL
 */
MO_API int mo_session_threads(const mo_session *s);

/**
 * @brief Free a session (stopping its threads) and set `*s` to NULL.
 * @param s the session (NULL accepted)
 */
MO_API void mo_session_close(mo_session **s);

/**
 * @brief Run the backbone on a normalized 3-channel input.
 * @param s the calling thread's session; it holds the features
 * @param input h x w x 3, h and w within the session's maxima
 * @param output_stride 32 (plain), 16 or 8 (dilated stage4 / stages 3-4); not below
 *        the session's min_output_stride
 * @param[out] out feature views, valid until the next run on @p s. Every stride-2 conv
 *        maps a side n to ceil(n / 2) (padding 1), so level i has sides
 *        ceil(h / out->stride[i]) x ceil(w / out->stride[i]) for any h, w >= 1; in a
 *        dilated stage every 3x3 conv runs at stride 1 with dilation = padding = 2 or 4.
 * @return MO_OK or MO_EINVAL (NULL, not 3 channels, row_stride < 3 w, size above the
 *         session's maxima, output stride not 8/16/32 or below min_output_stride)
 */
MO_API int mo_backbone_run(mo_session *s, const mo_tensor *input, int output_stride,
                           mo_features *out);

/**
 * @brief Recompute the stages after feature level @p level at another output stride,
 *        reusing levels 0..@p level of an earlier run on the same session.
 *
 * Heads that share one input but need different output strides (detection at 32,
 * segmentation at 16 or 8) run the stem and the early stages once: e.g. after
 * mo_backbone_run() at stride 32, `mo_backbone_run_from(s, &f32, 2, 16, &f16)` runs only
 * stage4, dilated. The result is identical to mo_backbone_run() at @p output_stride on
 * the same input (the kept stages are undilated at both strides).
 *
 * The recomputed levels (@p level + 1 ..) and `pooled` are written to the session's
 * buffers, so the views of @p in above @p level become invalid (they then show the new
 * maps); levels 0..@p level stay valid and are shared by both.
 * @param s the session that computed @p in
 * @param in features of the latest mo_backbone_run() (or of this function) on @p s:
 *        levels 0..@p level are read and must not have been overwritten by another run
 * @param level last kept level, 0..2; every stage up to level + 1 must be undilated at
 *        @p output_stride (16: level <= 2; 8: level <= 1)
 * @param output_stride 32, 16 or 8, not below the session's min_output_stride
 * @param[out] out features: levels 0..@p level as in @p in, the rest recomputed (may be
 *        @p in itself)
 * @return MO_OK or MO_EINVAL (NULL, level out of range or dilated at this stride, bad
 *         stride, @p in not computed by this session or not of this backbone)
 */
MO_API int mo_backbone_run_from(mo_session *s, const mo_features *in, int level,
                                int output_stride, mo_features *out);

/* ------------------------------------------------------------------ profiling */

/**
 * @brief One operation of a profiled run (see mo_session_set_profile()).
 *
 * Names: the backbone's `stem`, `stageS.M.dw` / `stageS.M.pw` (stage S = 1..4, module M
 * counted from 0 inside the stage), `stageS.M.se`, `gap`; the heads prefix theirs with
 * `cls.`, `det.` or `seg.`.
 */
typedef struct mo_op_profile {
    char model[12]; /**< "backbone", "cls", "det" or "seg"; "backbone/16" (or /8, /32)
                         for the stages mo_backbone_run_from() recomputes */
    char name[40];  /**< the operation, e.g. "stage2.3.pw", "det.level1.cls_dw" */
    char kind[16];  /**< "conv3x3", "dw3x3", "pw", "se", "gap", "gemv", "conv3x3_dil", ... */
    int h;          /**< output height (1 for a vector, 0 for a list) */
    int w;          /**< output width (1 for a vector, 0 for a list) */
    int c;          /**< output channels, or the vector's / list's length */
    double flops;   /**< 2 x multiply-adds (adds and multiplies outside a product count
                         one each); 0 for data movement, box decoding, sorting and NMS.
                         The backbone's and the detection head's 3x3 convs count all 9
                         taps; the segmentation head's count the taps it runs (those
                         that read the image, not the padding: at large dilation rates
                         most taps of a small map are skipped) */
    double ms;      /**< wall time on the calling thread, the pool's workers included */
} mo_op_profile;

/**
 * @brief Turn per-operation profiling of a session on or off (off after mo_session_open()).
 *
 * When on, every operation the backbone runs on @p s, and every operation of a head run
 * with @p s (mo_cls_run(), mo_det_run_raw(), mo_det_postprocess(), mo_seg_logits(),
 * mo_seg_run()), appends one ::mo_op_profile to the session's list; mo_backbone_run()
 * starts a new list, mo_backbone_run_from() and the heads append to it. The first call
 * with @p on allocates the records (the backbone's operations plus 256 for the heads);
 * runs never allocate. When off, a run costs one branch per operation and the outputs are
 * bit-identical either way. Timing reads the monotonic clock twice per operation.
 * @param s the session
 * @param on nonzero to record, 0 to stop (the records stay allocated until close)
 * @return MO_OK, MO_EINVAL (NULL) or MO_ENOMEM
 */
MO_API int mo_session_set_profile(mo_session *s, int on);

/**
 * @brief The operations recorded since the latest mo_backbone_run() (or
 *        mo_session_profile_reset()), in execution order.
 * @param s the session
 * @param[out] ops receives the records (owned by @p s; valid until the next run, reset or
 *        close); NULL when nothing was recorded
 * @param[out] n receives their count
 * @param[out] dropped receives the operations not recorded because the list was full
 *        (may be NULL)
 * @return MO_OK or MO_EINVAL (NULL @p s, @p ops or @p n)
 */
MO_API int mo_session_profile(const mo_session *s, const mo_op_profile **ops, int *n,
                              int *dropped);

/**
 * @brief Empty the session's profile list (the setting is kept).
 * @param s the session (NULL accepted)
 */
MO_API void mo_session_profile_reset(mo_session *s);

#ifdef __cplusplus
}
#endif
#endif
