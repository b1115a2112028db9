/**
 * @file classify.h
 * @brief Classification head: global average pool, linear layer, softmax, top-k.
 */
#ifndef MO_CLASSIFY_H
#define MO_CLASSIFY_H

#include "mo/backbone.h"

#ifdef __cplusplus
extern "C" {
#endif

/** A loaded classification head (opaque; immutable, shared by threads). */
typedef struct mo_cls mo_cls;

/** One entry of a top-k list. */
typedef struct mo_class_score {
    int index;    /**< class index */
    float prob;   /**< softmax probability */
} mo_class_score;

/**
 * Settings of mo_cls_open(). Initialise with mo_cls_default_settings(); a caller built
 * against older headers keeps its smaller `size` (see the "Settings structs" rule in
 * common.h).
 */
typedef struct mo_cls_settings {
    size_t size;   /**< sizeof(mo_cls_settings), set by mo_cls_default_settings() */
    int resize;    /**< shorter side before the centre crop: 0 (default) takes the file's
                        "cls.resize" (256 without it); else 1..::MO_MAX_INPUT_SIDE */
    int crop;      /**< side of the centre crop: 0 (default) takes the file's "cls.crop"
                        (224 without it); else 1..::MO_MAX_INPUT_SIDE */
} mo_cls_settings;

/** @brief Fill @p s with the defaults. @param[out] s settings to fill (NULL: nothing)
 * @param size the caller's sizeof(mo_cls_settings) (the mo_cls_default_settings() macro passes
 *        it): only the fields that fit are written, `size` included, so a program built
 *        against older headers is not overrun */
MO_API void mo_cls_default_settings_sized(mo_cls_settings *s, size_t size);
/** mo_cls_default_settings_sized() with sizeof the caller's struct. */
#define mo_cls_default_settings(s) mo_cls_default_settings_sized((s), sizeof(*(s)))

/**
 * @brief Load the classification head (tensors "cls.linear.weight", "cls.linear.bias",
 *        metadata "cls.classes") from @p f and check it fits @p bb.
 *
 * Pairing (weights/FORMAT.md, "Pairing a head with its backbone", the rule of every head):
 * a file holding the backbone too pairs with its own backbone tensors; a head-only file
 * must name @p bb with `mo.variant` and `mo.backbone_digest` (MO_EFORMAT without them).
 * @param[out] out receives the head; close it with mo_cls_close()
 * @param f an open model file; it may be closed once this returns
 * @param bb the backbone the head runs on
 * @param s settings, or NULL for defaults
 * @return MO_OK, MO_EINVAL (NULL, settings.size or a setting out of range), MO_ENOMEM, MO_EFORMAT (missing tensor/metadata, or metadata
 *         outside its range: "cls.classes", "cls.resize", "cls.crop", "mo.mean", "mo.std",
 *         see weights/FORMAT.md), MO_EMISMATCH (input width differs from the backbone, or
 *         the head was trained on another backbone, or the file has other "cls."
 *         tensors), MO_EUNSUPPORTED (more classes than
 *         mo_limits.max_categories, or a "cls.crop" whose session would exceed
 *         mo_limits.model_memory_bytes); mo_last_error() names the field
 */
MO_API int mo_cls_open(mo_cls **out, const mo_file *f, const mo_backbone *bb,
                       const mo_cls_settings *s);

/** @brief Free the head and set `*c` to NULL. @param c the head (NULL accepted) */
MO_API void mo_cls_close(mo_cls **c);

/** @brief Number of classes. @param c the head @return the count */
MO_API int mo_cls_num_classes(const mo_cls *c);

/** @brief Name of a class. @param c the head @param i class index
 *  @return the name (owned by @p c), or NULL when out of range */
MO_API const char *mo_cls_class_name(const mo_cls *c, int i);

/**
 * @brief The preprocessing the head's file asks for, read and validated once when the head
 *        was opened (`cls.resize`, `cls.crop`, `mo.mean`, `mo.std`; weights/FORMAT.md),
 *        with the resize and crop of its ::mo_cls_settings when they were set.
 * @param c the head
 * @param[out] resize shorter side before the centre crop, or NULL
 * @param[out] crop side of the centre crop, or NULL
 * @param[out] mean RGB means (0..1 scale), or NULL
 * @param[out] std RGB standard deviations, or NULL
 * @return MO_OK, MO_EINVAL (@p c is NULL)
 */
MO_API int mo_cls_preprocess(const mo_cls *c, int *resize, int *crop, float mean[3],
                             float std[3]);

/**
 * @brief Logits of the features of one run.
 * @param c the head
 * @param f features of mo_backbone_run() (the pooled stage4 is read)
 * @param[out] logits receives mo_cls_num_classes() floats
 * @return MO_OK, MO_EINVAL (NULL, or features of another width)
 */
MO_API int mo_cls_logits(const mo_cls *c, const mo_features *f, float *logits);

/**
 * @brief mo_cls_logits(), recorded as the operation `cls.fc` (kind "gemv") in the
 *        profile of @p s when it profiles (mo_session_set_profile()); the logits are the same.
 * @param c the head
 * @param s the session that ran the backbone (NULL: not recorded)
 * @param f features of mo_backbone_run() on @p s
 * @param[out] logits receives mo_cls_num_classes() floats
 * @return as mo_cls_logits()
 */
MO_API int mo_cls_run(const mo_cls *c, mo_session *s, const mo_features *f, float *logits);

/** @brief In-place numerically stable softmax of @p n values.
 *  @param[in,out] x the values @param n how many */
MO_API void mo_softmax(float *x, int n);

/**
 * @brief The @p k largest of @p n probabilities, highest first (ties: lower index first).
 * @param p n probabilities
 * @param n number of probabilities
 * @param k entries wanted
 * @param[out] out receives min(k, n) entries
 * @return number written, or MO_EINVAL
 */
MO_API int mo_topk(const float *p, int n, int k, mo_class_score *out);

#ifdef __cplusplus
}
#endif
#endif
