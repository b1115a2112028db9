/*
 * Internal structures of the MobileOne backbone, shared by mobileone.c (model: tables,
 * loading, reparameterization) and session.c (scratch memory, forward pass).
 */
#ifndef MO_MOBILEONE_INTERNAL_H
#define MO_MOBILEONE_INTERNAL_H

#include "mo/backbone.h"
#include "mo_internal/conv.h"

enum mo_module_type {
    MO_MOD_STEM = 0, /* 3x3 stride 2 on the 3-channel input */
    MO_MOD_DW = 1,   /* depthwise 3x3 */
    MO_MOD_PW = 2,   /* pointwise 1x1 */
};

/* One MobileOneBlock after reparameterization: conv + bias (+ SE) + ReLU. */
typedef struct mo_module {
    int type;   /* enum mo_module_type */
    int stage;  /* 0 (stem) .. 4 */
    int cin, cout;
    int stride; /* of the plain network: 2 for the stem and each stage's first dw, else 1 */
    int se_c;   /* reduced SE channels, 0 without SE */
    float *weight; /* packed for the kernels: mo_stem_pack / mo_dw_pack / mo_pw_pack */
    float *bias;   /* cout */
    float *se_rw, *se_rb, *se_ew, *se_eb; /* [se_c][cout], [se_c], [cout][se_c], [cout] */
} mo_module;

#define MO_MAX_MODULES (1 + 2 * (2 + 8 + 10 + 1))

struct mo_backbone {
    char variant[4];
    char digest[17];
    int width[5];               /* stem, stage1..stage4 channels */
    int nmod;                   /* modules in mod[] */
    int stage_end[5];           /* stage s is mod[stage_end[s-1] .. stage_end[s]) */
    mo_module mod[MO_MAX_MODULES];
    mo_conv_dsp dsp;
    float *mem;                 /* every packed weight, one aligned block */
};

/* Dilation of stage 1..4 at an output stride of 32, 16 or 8 (REFERENCE.md section 3). */
static inline int mo_stage_dilation(int stage, int output_stride)
{
    if (output_stride == 16)
        return stage == 4 ? 2 : 1;
    if (output_stride == 8)
        return stage == 4 ? 4 : stage == 3 ? 2 : 1;
    return 1;
}

/* BatchNorm statistics of one branch, cout floats each. */
typedef struct mo_bn {
    const float *gamma, *beta, *mean, *var;
} mo_bn;

/* Train-time branches of one MobileOneBlock, in PyTorch layouts. */
typedef struct mo_branches {
    int cout;
    int cin_g;               /* input channels per group (in / groups) */
    int k;                   /* kernel size (3 or 1) */
    int nconv;               /* conv branches, >= 0 */
    const float *const *conv_w; /* nconv weights [cout][cin_g][k][k] */
    const mo_bn *conv_bn;       /* nconv */
    const float *scale_w;       /* 1x1 branch [cout][cin_g], or NULL */
    mo_bn scale_bn;
    int has_skip;               /* BN-only identity (needs in == out, stride 1) */
    mo_bn skip_bn;
    double eps;
} mo_branches;

/*
 * Fold the branches into one conv: w [cout][cin_g][k][k] and b [cout] (computed in
 * double, rounded once). t = gamma / sqrt(var + eps), W' = W t, b' = beta - mean t; sum of
 * the conv branches, the 1x1 branch added at the centre tap, the identity as a 1 at the
 * centre tap of input channel (i % cin_g) for output i.
 * @return MO_OK, MO_ENOMEM, MO_EFORMAT (var + eps not positive, or not finite)
 */
int mo_reparam(const mo_branches *br, float *w, float *b);

#endif
