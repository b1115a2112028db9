/*
 * Internal: the loader toolkit every head and the backbone load their weights with
 * (core/loader.c), so that a tensor, a BatchNorm, a pairing with the backbone and the
 * metadata of a model are read, checked and refused the same way everywhere
 * (docs/STYLE.md section 3: "loaded by the same toolkit").
 *
 *  - tensors by name, F16 or F32 in the file, read as float32 after a shape check;
 *    every message starts with what is being loaded ("detection head") and names the
 *    tensor, the shape found, the shape expected and why that shape is expected;
 *  - one BatchNorm fold (mo_bn_scale: t = gamma / sqrt(var + eps), shift = beta - mean t in
 *    double), used by the backbone's reparameterization and both heads;
 *  - one conv reader (weight + BatchNorm folded, or weight + bias) in PyTorch layout, to be
 *    packed with the kernel table's packers (mo_dw_pack, mo_pw_pack, mo_pw_pack_strided of
 *    mo_internal/conv.h), the ones the backbone uses;
 *  - a record of the tensors read under the head's prefix, to refuse any other;
 *  - one backbone-pairing rule (mo_pair_check, weights/FORMAT.md "Pairing");
 *  - one model-info struct read through the metadata table (core/meta.c).
 * Exported (heads, the pipeline and the apps are separate libraries), not public.
 */
#ifndef MO_LOADER_INTERNAL_H
#define MO_LOADER_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "mo/file.h"

/* ------------------------------------------------------------------ tensors */

/* One head's (or the backbone's) reading of a file. Zero-initialize, then mo_loader_init. */
typedef struct mo_loader {
    const mo_file *f;
    const char *what;   /* "detection head": starts every message */
    const char *prefix; /* tensors under it must all be read (mo_loader_check_all) */
    double bn_eps;      /* of every BatchNorm read by mo_load_conv */
    char (*seen)[128];  /* names read so far */
    int nseen, cap;
    float *bn;          /* scratch: 4 x cout BatchNorm values */
    size_t bn_cap;
} mo_loader;

MO_API void mo_loader_init(mo_loader *L, const mo_file *f, const char *what, const char *prefix,
                           double bn_eps);
/* Frees the loader's scratch and records (not the file). */
MO_API void mo_loader_release(mo_loader *L);

/*
 * Read tensor `name` (F32 or F16 in the file) as float32 into dst after checking its shape.
 * why (may be NULL) explains the expected shape, e.g. "3 classes x 1024 channels".
 * @return MO_OK; MO_EFORMAT "<what>: tensor <name> is missing"; MO_EMISMATCH
 *         "<what> does not fit: <name> is [a,b], expected [c,d] (<why>)"; MO_ENOMEM
 */
MO_API int mo_load_tensor(mo_loader *L, const char *name, int ndim, const int64_t *shape,
                          float *dst, const char *why);

/*
 * A tensor's shape without reading it: ndim dimensions, each in 1..max_dim.
 * @return MO_OK, MO_EFORMAT (missing), MO_EMISMATCH (other rank or a dimension out of range)
 */
MO_API int mo_load_shape(mo_loader *L, const char *name, int ndim, int64_t max_dim,
                         int64_t *shape);

/*
 * BatchNorm of channel i: t = gamma / sqrt(var + eps), shift = beta - mean t, in double.
 * @return MO_OK, or MO_EFORMAT (no message) when var + eps is not positive or a value is
 *         not finite
 */
MO_API int mo_bn_scale(const float *gamma, const float *beta, const float *mean,
                       const float *var, int i, double eps, double *t, double *shift);

/*
 * Fold a BatchNorm into a conv: w [cout][per] becomes w t (rounded once), b[cout] becomes
 * shift (+ conv_bias t when conv_bias is not NULL). bn holds gamma, beta, mean, var, cout
 * values each. bn_name names the BatchNorm in the message.
 * @return MO_OK, MO_EFORMAT "<bn_name>.running_var[i] + eps = v is not positive ..."
 */
MO_API int mo_bn_fold(float *w, float *b, const float *conv_bias, int cout, size_t per,
                      const float *bn, double eps, const char *bn_name);

/*
 * Read conv "<conv>.weight" [cout][cin_g][k][k] into w (PyTorch layout) and its bias into b:
 * with bn (a prefix such as "det.extra.0.0.1"), BatchNorm "<bn>.{weight,bias,running_mean,
 * running_var}" folded with L->bn_eps; without, the tensor "<conv>.bias". why explains the
 * shape in messages.
 */
MO_API int mo_load_conv(mo_loader *L, const char *conv, const char *bn, int cout, int cin_g,
                        int k, float *w, float *b, const char *why);

/*
 * Every tensor under L->prefix was read; otherwise `code` with
 * "<what> does not fit: the file has tensor <name>, but <hint>".
 */
MO_API int mo_loader_check_all(mo_loader *L, int code, const char *hint); /* sorts L's record */

/* ------------------------------------------------------------------ pairing */

/*
 * The one backbone-pairing rule (weights/FORMAT.md "Pairing"), for a head read from f and a
 * backbone of variant bb_variant and digest bb_digest:
 *  - a file that holds backbone tensors ("backbone." in it) pairs with that backbone: the
 *    digest of those tensors must be bb_digest;
 *  - a head-only file must name its backbone: mo.variant and mo.backbone_digest
 *    (MO_EFORMAT naming the missing field);
 *  - any mo.variant and mo.backbone_digest present must be the backbone's.
 * A head run with another backbone than the one it names: MO_EMISMATCH, "<what> names
 * backbone MobileOne-<v> <digest>, but this backbone is MobileOne-<v> <digest> (...)".
 */
MO_API int mo_pair_check(const mo_file *f, const char *what, const char *bb_variant,
                         const char *bb_digest);

/* ------------------------------------------------------------------ model info */

enum mo_contents_bits {
    MO_HOLDS_BACKBONE = 1,
    MO_HOLDS_CLS = 2,
    MO_HOLDS_DET = 4,
    MO_HOLDS_SEG = 8,
};

/* A model file's metadata, read and validated once through the table of core/meta.c. */
typedef struct mo_model_info {
    unsigned contents;           /* mo_contents_bits of mo.contents (0 when absent) */
    int has_contents;            /* mo.contents present */
    const char *variant;         /* mo.variant, or NULL (lives as long as the file) */
    const char *backbone_digest; /* mo.backbone_digest, or NULL (as long as the file) */
    float mean[3], std[3];       /* mo.mean, mo.std (ImageNet's when absent) */
    int input_h, input_w;        /* the input the model runs at: det.input_size, else
                                    mo.input_size, else 0 x 0 */
    int cls_resize, cls_crop;    /* cls.resize, cls.crop */
    int seg_output_stride;       /* seg.output_stride */
    char **classes;              /* "<head>.classes" when a head was asked for, else NULL;
                                    one block: free(classes), or take it and set NULL */
    int num_classes;
} mo_model_info;

/*
 * Read f's metadata. head: "cls", "det", "seg" (its `<head>.classes` is read and required,
 * and the file must list it in mo.contents) or NULL (no classes). Every field of the table
 * this struct holds is validated; a bad one is MO_EFORMAT naming it (core/meta.c messages).
 * @return MO_OK, MO_EFORMAT, MO_EUNSUPPORTED (class count over max_categories), MO_ENOMEM
 */
MO_API int mo_model_info_read(const mo_file *f, const char *head, mo_model_info *info);

/*
 * What every head's open starts with, in this order: the file lists `head` in mo.contents
 * (MO_EFORMAT "the file holds no <what>"), the pairing rule (mo_pair_check), then the
 * model info with the head's classes (mo_model_info_read). what: "detection head".
 */
MO_API int mo_head_begin(const mo_file *f, const char *head, const char *what,
                         const char *bb_variant, const char *bb_digest, mo_model_info *info);

/* Free what mo_model_info_read allocated (the class names, unless taken). */
MO_API void mo_model_info_release(mo_model_info *info);

#endif
