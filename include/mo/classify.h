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

typedef struct mo_cls mo_cls;

/** One entry of a top-k list. */
typedef struct mo_class_score {
    int index;    /**< class index */
    float prob;   /**< softmax probability */
} mo_class_score;

/**
 * @brief Load the classification head (tensors "cls.linear.weight", "cls.linear.bias",
 *        metadata "cls.classes") from @p f and check it fits @p bb.
 * @return MO_OK, MO_EINVAL, MO_ENOMEM, MO_EFORMAT (missing tensor/metadata),
 *         MO_EMISMATCH (input width differs from the backbone, or the file names
 *         another backbone)
 */
MO_API int mo_cls_open(mo_cls **out, const mo_file *f, const mo_backbone *bb);

/** @brief Free the head and set `*c` to NULL. */
MO_API void mo_cls_close(mo_cls **c);

/** @brief Number of classes. */
MO_API int mo_cls_num_classes(const mo_cls *c);

/** @brief Name of class @p i, or NULL when out of range. */
MO_API const char *mo_cls_class_name(const mo_cls *c, int i);

/**
 * @brief Logits of the features of one run.
 * @param logits receives mo_cls_num_classes() floats
 * @return MO_OK, MO_EINVAL (NULL, or features of another width)
 */
MO_API int mo_cls_logits(const mo_cls *c, const mo_features *f, float *logits);

/** @brief In-place numerically stable softmax of @p n values. */
MO_API void mo_softmax(float *x, int n);

/**
 * @brief The @p k largest of @p n probabilities, highest first (ties: lower index first).
 * @param out receives min(k, n) entries
 * @return number written, or MO_EINVAL
 */
MO_API int mo_topk(const float *p, int n, int k, mo_class_score *out);

#ifdef __cplusplus
}
#endif
#endif
