/*
 * AArch64 SIMD variants of the head operators (mo_internal/ops.h), internal. Each gives the bits
 * of its C reference (core/dsp/ops.c); tests/checkdsp compares them exactly.
 */
#ifndef MO_DSP_OPS_ARM_H
#define MO_DSP_OPS_ARM_H

#include "mo_internal/conv.h"

/* ops_neon.c (AdvSIMD) */
decl_gemv_fn(mo_gemv_neon);
decl_upsample_fn(mo_upsample_neon);
decl_upsample_argmax_fn(mo_upsample_argmax_neon);
decl_softmax_fn(mo_softmax_neon);

#endif
