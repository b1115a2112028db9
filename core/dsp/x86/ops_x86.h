/*
 * x86 SIMD variants of the head operators (mo_internal/ops.h), internal. Each gives the bits
 * of its C reference (core/dsp/ops.c); tests/checkdsp compares them exactly.
 */
#ifndef MO_DSP_OPS_X86_H
#define MO_DSP_OPS_X86_H

#include "mo_internal/conv.h"

/* ops_avx2.c (-mavx2 -mfma; no FMA is used) */
decl_gemv_fn(mo_gemv_avx2);
decl_upsample_fn(mo_upsample_avx2);
decl_upsample_argmax_fn(mo_upsample_argmax_avx2);
decl_softmax_fn(mo_softmax_avx2);

/* ops_avx512.c (-mavx512f) */
decl_gemv_fn(mo_gemv_avx512);
decl_upsample_fn(mo_upsample_avx512);
decl_upsample_argmax_fn(mo_upsample_argmax_avx512);
decl_softmax_fn(mo_softmax_avx512);

#endif
